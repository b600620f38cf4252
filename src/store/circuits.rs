//! Validation circuits: their versioned definitions, the run of a held
//! booking through its circuit, the approvers' answers, and the periodic job
//! that sends reminders, escalates and applies the final outcome.
//!
//! A circuit is edited as a new version; a booking's run keeps the version it
//! started with, with its approvers resolved to people at the start (groups,
//! the organiser's manager, the resource's managers), so later edits change
//! nothing for it. The pure [`crate::domain::circuit`] engine decides; this
//! module stores its progress and carries out its effects in the same
//! transaction: approval requests, single-use links, messages and the final
//! answer queued in the outbox, the decision and the audit.

use super::notify::{self as n, BookingFacts, OutgoingMail, booking_facts, lang_code, parse_lang, queue_mail};
use super::{Result, Store, StoreError};
use crate::domain::circuit::{
    self, Circuit, CircuitChoice, CircuitContext, Condition, Delay, Effect, Event, FinalOutcome, Progress, Quorum, Step,
};
use crate::domain::reason::Lang;
use crate::domain::{Decision, DecisionInput, Organiser, Outcome, ScopeChain};
use crate::notify::Event as Msg;
use crate::notify::links::{LinkSigner, token_hash};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Postgres, Row, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Who approves, as written in a circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApproverDef {
    Person { person: Uuid },
    Group { group: Uuid },
    OrganiserManager,
    ResourceManagers,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDef {
    pub quorum: Quorum,
    pub deadline_hours: Option<i32>,
    pub reminder_hours: Option<i32>,
    pub backup: Option<Uuid>,
    pub approvers: Vec<ApproverDef>,
}

/// A circuit version as an admin writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitDef {
    pub name: String,
    pub label_fr: Option<String>,
    pub label_en: Option<String>,
    pub priority: i32,
    pub conditions: Vec<Condition>,
    pub deadline_hours: Option<i32>,
    pub final_outcome: FinalOutcome,
    pub steps: Vec<StepDef>,
}

impl CircuitDef {
    /// The problems that make the definition unusable, as message keys.
    pub fn problems(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push("circuits.error.name");
        }
        if self.steps.is_empty() {
            out.push("circuits.error.no_step");
        }
        if self.steps.iter().any(|s| s.approvers.is_empty() && s.backup.is_none()) {
            out.push("circuits.error.no_approver");
        }
        let positive = |h: Option<i32>| h.is_none_or(|h| h > 0);
        if !positive(self.deadline_hours)
            || self
                .steps
                .iter()
                .any(|s| !positive(s.deadline_hours) || !positive(s.reminder_hours))
        {
            out.push("circuits.error.hours");
        }
        out
    }

    pub fn label(&self, lang: Lang) -> String {
        let l = match lang {
            Lang::Fr => self.label_fr.as_deref(),
            Lang::En => self.label_en.as_deref(),
        };
        l.filter(|s| !s.trim().is_empty()).unwrap_or(&self.name).to_owned()
    }
}

/// A circuit with its latest version.
#[derive(Debug, Clone)]
pub struct CircuitSummary {
    pub id: Uuid,
    pub active: bool,
    pub version_id: Uuid,
    pub version: i32,
    pub def: CircuitDef,
}

/// How an approver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Refuse,
    /// Away (automatic reply): the step goes to its backup.
    Absent,
}

/// What became of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// Recorded; the effect says what followed.
    Applied(Effect),
    /// The person has no say at the circuit's current step.
    NotAnApprover,
    /// The circuit is over (decided, expired, or the booking cancelled).
    Over,
    /// The booking has no circuit running.
    NoCircuit,
}

/// Why a link is refused, for the landing page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Not signed by resa, or never issued.
    Invalid,
    Expired,
    AlreadyUsed,
}

/// What the landing page of a valid link shows.
#[derive(Debug, Clone)]
pub struct LinkView {
    pub facts: BookingFacts,
    pub approver_name: String,
    pub circuit: String,
    pub step: String,
    pub reasons: Vec<String>,
}

/// A pending approval on the web queue.
#[derive(Debug, Clone)]
pub struct PendingApproval {
    pub booking_id: Uuid,
    pub facts: BookingFacts,
    pub approver: Uuid,
    pub approver_name: String,
    pub circuit: String,
    /// "1/2".
    pub step: String,
    pub reasons: Vec<String>,
}

/// A booking's run as stored.
struct Run {
    booking_id: Uuid,
    version_id: Uuid,
    circuit: Circuit,
    step_ids: Vec<Uuid>,
    progress: Progress,
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn hours(h: Option<i32>) -> Option<Delay> {
    h.filter(|h| *h > 0).map(|h| Delay(Duration::hours(i64::from(h))))
}

fn approver_row(a: &ApproverDef) -> (&'static str, Option<Uuid>, Option<Uuid>) {
    match a {
        ApproverDef::Person { person } => ("person", Some(*person), None),
        ApproverDef::Group { group } => ("group", None, Some(*group)),
        ApproverDef::OrganiserManager => ("organiser_manager", None, None),
        ApproverDef::ResourceManagers => ("resource_managers", None, None),
    }
}

async fn load_def(tx: &mut Transaction<'_, Postgres>, version_id: Uuid) -> Result<(CircuitDef, Vec<Uuid>)> {
    let v = sqlx::query(
        "SELECT c.name, v.label_fr, v.label_en, v.priority, v.conditions, v.deadline_hours, v.final_outcome
         FROM circuit_versions v JOIN circuits c ON c.id = v.circuit_id WHERE v.id = $1",
    )
    .bind(version_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("circuit version {version_id}")))?;
    let conditions: serde_json::Value = v.try_get("conditions")?;
    let conditions: Vec<Condition> =
        serde_json::from_value(conditions).map_err(|e| StoreError::Invalid(format!("circuit conditions: {e}")))?;
    let outcome: String = v.try_get("final_outcome")?;
    let steps = sqlx::query(
        "SELECT id, quorum, deadline_hours, reminder_hours, backup_person_id FROM circuit_steps
         WHERE circuit_version_id = $1 ORDER BY position",
    )
    .bind(version_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut defs = Vec::new();
    let mut ids = Vec::new();
    for s in steps {
        let id: Uuid = s.try_get("id")?;
        let approvers = sqlx::query(
            "SELECT kind, person_id, group_id FROM circuit_step_approvers WHERE step_id = $1
             ORDER BY kind, person_id, group_id",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        let mut list = Vec::new();
        for a in approvers {
            let kind: String = a.try_get("kind")?;
            let person: Option<Uuid> = a.try_get("person_id")?;
            let group: Option<Uuid> = a.try_get("group_id")?;
            list.push(match (kind.as_str(), person, group) {
                ("person", Some(person), _) => ApproverDef::Person { person },
                ("group", _, Some(group)) => ApproverDef::Group { group },
                ("organiser_manager", _, _) => ApproverDef::OrganiserManager,
                _ => ApproverDef::ResourceManagers,
            });
        }
        let quorum: String = s.try_get("quorum")?;
        defs.push(StepDef {
            quorum: if quorum == "all" { Quorum::All } else { Quorum::One },
            deadline_hours: s.try_get("deadline_hours")?,
            reminder_hours: s.try_get("reminder_hours")?,
            backup: s.try_get("backup_person_id")?,
            approvers: list,
        });
        ids.push(id);
    }
    Ok((
        CircuitDef {
            name: v.try_get("name")?,
            label_fr: v.try_get("label_fr")?,
            label_en: v.try_get("label_en")?,
            priority: v.try_get("priority")?,
            conditions,
            deadline_hours: v.try_get("deadline_hours")?,
            final_outcome: if outcome == "accept" {
                FinalOutcome::Accept
            } else {
                FinalOutcome::Decline
            },
            steps: defs,
        },
        ids,
    ))
}

/// The people a step's approvers stand for, for this organiser and resource.
async fn resolve(
    tx: &mut Transaction<'_, Postgres>,
    approvers: &[ApproverDef],
    organiser: Option<Uuid>,
    chain: &ScopeChain,
) -> Result<Vec<Uuid>> {
    let mut out: Vec<Uuid> = Vec::new();
    for a in approvers {
        let found: Vec<Uuid> = match a {
            ApproverDef::Person { person } => vec![*person],
            ApproverDef::Group { group } => {
                sqlx::query_scalar("SELECT person_id FROM person_groups WHERE group_id = $1 ORDER BY person_id")
                    .bind(group)
                    .fetch_all(&mut **tx)
                    .await?
            }
            ApproverDef::OrganiserManager => match organiser {
                Some(p) => sqlx::query_scalar::<_, Option<Uuid>>("SELECT manager_id FROM people WHERE id = $1")
                    .bind(p)
                    .fetch_optional(&mut **tx)
                    .await?
                    .flatten()
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            },
            ApproverDef::ResourceManagers => {
                sqlx::query_scalar(
                    "SELECT DISTINCT coalesce(g.subject_person_id, pg.person_id) FROM grants g
                     LEFT JOIN person_groups pg ON pg.group_id = g.subject_group_id
                     WHERE g.role = 'manage' AND coalesce(g.subject_person_id, pg.person_id) IS NOT NULL
                       AND (g.scope_kind = 'global' OR g.organisation_id = $1
                            OR (g.scope_kind = 'site' AND g.site_id = $2)
                            OR (g.scope_kind = 'site_type' AND g.site_id = $2 AND g.resource_type_id = $3)
                            OR (g.scope_kind = 'resource_type' AND g.resource_type_id = $3)
                            OR g.resource_id = $4)",
                )
                .bind(chain.organisation)
                .bind(chain.site)
                .bind(chain.resource_type)
                .bind(chain.resource)
                .fetch_all(&mut **tx)
                .await?
            }
        };
        for p in found {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    // People gone from the directory cannot answer.
    let active: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM people WHERE id = ANY($1) AND deleted_at IS NULL AND NOT disabled")
            .bind(&out)
            .fetch_all(&mut **tx)
            .await?;
    out.retain(|p| active.contains(p));
    Ok(out)
}

async fn person_name(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<String> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT display_name FROM people WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or_else(|| id.to_string()),
    )
}

/// A person's address and language, for messages.
async fn person_contact(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<(Option<String>, Lang)> {
    let row = sqlx::query(
        "SELECT coalesce(p.preferred_language, 'fr') AS lang,
                (SELECT a.address FROM person_addresses a WHERE a.person_id = p.id
                 ORDER BY a.is_primary DESC, a.address LIMIT 1) AS smtp
         FROM people p WHERE p.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some(r) => (r.try_get("smtp")?, parse_lang(&r.try_get::<String, _>("lang")?)),
        None => (None, Lang::Fr),
    })
}

/// The reasons the booking was held, in a language, from its last hold decision.
async fn hold_reasons(tx: &mut Transaction<'_, Postgres>, booking_id: Uuid, lang: Lang) -> Result<Vec<String>> {
    let reasons: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT reasons FROM decisions WHERE booking_id = $1 AND outcome = 'hold' ORDER BY id DESC LIMIT 1",
    )
    .bind(booking_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(reasons
        .and_then(|r| r.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r[lang_code(lang)].as_str().map(str::to_owned))
        .collect())
}

fn reasons_text(reasons: &[String], lang: Lang) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let head = match lang {
        Lang::Fr => "Règles qui demandent une approbation :",
        Lang::En => "Rules asking for approval:",
    };
    let mut out = head.to_owned();
    for r in reasons {
        out.push_str("\n- ");
        out.push_str(r);
    }
    out
}

async fn names(tx: &mut Transaction<'_, Postgres>, people: &[Uuid]) -> Result<String> {
    let mut out = Vec::new();
    for p in people {
        out.push(person_name(tx, *p).await?);
    }
    Ok(out.join(", "))
}

async fn load_run(tx: &mut Transaction<'_, Postgres>, booking_id: Uuid, lock: bool) -> Result<Option<Run>> {
    let sql = if lock {
        "SELECT circuit_version_id, circuit, step_ids, progress FROM circuit_runs
         WHERE booking_id = $1 AND finished_at IS NULL FOR UPDATE"
    } else {
        "SELECT circuit_version_id, circuit, step_ids, progress FROM circuit_runs
         WHERE booking_id = $1 AND finished_at IS NULL"
    };
    let Some(r) = sqlx::query(sql).bind(booking_id).fetch_optional(&mut **tx).await? else {
        return Ok(None);
    };
    let circuit: serde_json::Value = r.try_get("circuit")?;
    let progress: serde_json::Value = r.try_get("progress")?;
    Ok(Some(Run {
        booking_id,
        version_id: r.try_get("circuit_version_id")?,
        circuit: serde_json::from_value(circuit).map_err(|e| StoreError::Invalid(format!("circuit run: {e}")))?,
        step_ids: r.try_get("step_ids")?,
        progress: serde_json::from_value(progress).map_err(|e| StoreError::Invalid(format!("circuit run: {e}")))?,
    }))
}

async fn save_progress(
    tx: &mut Transaction<'_, Postgres>,
    run: &Run,
    outcome: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE circuit_runs SET progress = $2, next_due_at = $3,
                finished_at = CASE WHEN $4::text IS NULL THEN NULL ELSE $5 END, outcome = $4
         WHERE booking_id = $1",
    )
    .bind(run.booking_id)
    .bind(to_json(&run.progress)?)
    .bind(circuit::next_due(&run.circuit, &run.progress))
    .bind(outcome)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The circuit's name in a language.
async fn circuit_label(tx: &mut Transaction<'_, Postgres>, version_id: Uuid, lang: Lang) -> Result<String> {
    let r = sqlx::query(
        "SELECT c.name, v.label_fr, v.label_en FROM circuit_versions v JOIN circuits c ON c.id = v.circuit_id
         WHERE v.id = $1",
    )
    .bind(version_id)
    .fetch_one(&mut **tx)
    .await?;
    let label: Option<String> = r.try_get(if lang == Lang::En { "label_en" } else { "label_fr" })?;
    Ok(label.filter(|l| !l.trim().is_empty()).unwrap_or(r.try_get("name")?))
}

/// What the hook after a decision needs.
pub struct Decided<'a> {
    pub booking_id: Uuid,
    pub decision: &'a Decision,
    pub input: &'a DecisionInput,
    /// The organiser's language.
    pub lang: Lang,
    /// The decision's own text (with its reasons) in that language.
    pub message: String,
    /// A vehicle trip whose destination lies outside the territory.
    pub outside_territory: bool,
    pub now: DateTime<Utc>,
}

/// Called in the transaction that records a decision: ends a circuit that
/// ran for an earlier version of the booking, starts the circuit of a held
/// one, queues the vehicle pickup instructions, and returns the text of the
/// reply to the organiser, rendered from the event's template with the
/// decision's text (which names each rule and the level that set it) and,
/// for a hold, the circuit and its approvers.
pub async fn after_decision(
    tx: &mut Transaction<'_, Postgres>,
    signer: Option<&LinkSigner>,
    d: Decided<'_>,
) -> Result<String> {
    close_run(tx, d.booking_id, "cancelled", d.now).await?;
    let facts = booking_facts(tx, d.booking_id).await?;
    let mut vars = facts.vars(d.lang);
    vars.insert("decision", d.message.clone());
    let event = match &d.decision.outcome {
        Outcome::Accept => Msg::Accepted,
        Outcome::AcceptPartially { .. } => Msg::PartiallyAccepted,
        Outcome::Decline { .. } => Msg::Declined,
        Outcome::Hold { circuit, .. } => {
            match start_circuit(
                tx,
                signer,
                &facts,
                *circuit,
                d.input,
                d.decision,
                d.outside_territory,
                d.now,
            )
            .await?
            {
                Some((version, approvers)) => {
                    vars.insert("circuit", circuit_label(tx, version, d.lang).await?);
                    vars.insert("approvers", names(tx, &approvers).await?);
                }
                None => {
                    vars.insert(
                        "circuit",
                        match d.lang {
                            Lang::Fr => "validation par un gestionnaire".into(),
                            Lang::En => "approval by a manager".into(),
                        },
                    );
                    vars.insert(
                        "approvers",
                        match d.lang {
                            Lang::Fr => "les gestionnaires de la ressource".into(),
                            Lang::En => "the resource's managers".into(),
                        },
                    );
                }
            }
            Msg::Held
        }
    };
    if matches!(d.decision.outcome, Outcome::Accept | Outcome::AcceptPartially { .. }) && facts.category == "vehicle" {
        queue_pickup(tx, &facts, d.now).await?;
    }
    let rendered = n::render_in(tx, event, d.lang, &vars).await?;
    Ok(rendered.body)
}

/// Sends a vehicle's pickup instructions to the organiser, once per booking.
async fn queue_pickup(tx: &mut Transaction<'_, Postgres>, facts: &BookingFacts, now: DateTime<Utc>) -> Result<()> {
    let Some(to) = facts.organiser_smtp.clone() else {
        return Ok(());
    };
    let instructions: Option<String> = sqlx::query_scalar(
        "SELECT value_text FROM resource_attributes WHERE resource_id = $1 AND key = 'pickup_instructions'",
    )
    .bind(facts.resource_id)
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    let lang = facts.organiser_lang;
    let mut vars = facts.vars(lang);
    vars.insert(
        "instructions",
        instructions.unwrap_or_else(|| match lang {
            Lang::Fr => "adressez-vous à l'accueil du site.".into(),
            Lang::En => "ask at the site's reception.".into(),
        }),
    );
    let rendered = n::render_in(tx, Msg::PickupInstructions, lang, &vars).await?;
    let mail = OutgoingMail {
        to: vec![to],
        rendered,
        lang,
        voting: false,
        event: Msg::PickupInstructions,
    };
    queue_mail(
        tx,
        facts.resource_id,
        Some(facts.booking_id),
        &format!("pickup:{}", facts.booking_id),
        &mail,
        now,
    )
    .await
}

/// Ends a running circuit without an outcome of its own (the booking was
/// updated or cancelled).
pub(super) async fn close_run(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: Uuid,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let closed = sqlx::query(
        "UPDATE circuit_runs SET finished_at = $2, outcome = $3, next_due_at = NULL
         WHERE booking_id = $1 AND finished_at IS NULL",
    )
    .bind(booking_id)
    .bind(now)
    .bind(outcome)
    .execute(&mut **tx)
    .await?;
    if closed.rows_affected() > 0 {
        sqlx::query("UPDATE approval_requests SET status = 'superseded' WHERE booking_id = $1 AND status = 'pending'")
            .bind(booking_id)
            .execute(&mut **tx)
            .await?;
        // A new run starts afresh.
        sqlx::query("DELETE FROM circuit_runs WHERE booking_id = $1")
            .bind(booking_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The latest version of every active circuit, as the conditions choose
/// among them, and each circuit's latest version by circuit id.
pub(super) async fn candidates(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<(Vec<CircuitChoice>, BTreeMap<Uuid, Uuid>)> {
    let latest = sqlx::query(
        "SELECT DISTINCT ON (v.circuit_id) v.id, v.circuit_id, v.priority, v.conditions
         FROM circuit_versions v JOIN circuits c ON c.id = v.circuit_id
         WHERE c.active ORDER BY v.circuit_id, v.version DESC",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut candidates = Vec::new();
    let mut by_circuit = BTreeMap::new();
    for r in latest {
        let id: Uuid = r.try_get("id")?;
        by_circuit.insert(r.try_get::<Uuid, _>("circuit_id")?, id);
        let conditions: serde_json::Value = r.try_get("conditions")?;
        let Ok(conditions) = serde_json::from_value::<Vec<Condition>>(conditions) else {
            tracing::warn!(circuit_version = %id, "circuit.conditions_unreadable");
            continue;
        };
        candidates.push(CircuitChoice {
            circuit_version: id,
            priority: r.try_get("priority")?,
            conditions,
        });
    }
    Ok((candidates, by_circuit))
}

/// Chooses and starts the circuit of a held booking. `None` when no circuit
/// applies: the booking then waits on the managers' queue.
#[allow(clippy::too_many_arguments)]
async fn start_circuit(
    tx: &mut Transaction<'_, Postgres>,
    signer: Option<&LinkSigner>,
    facts: &BookingFacts,
    named: Option<Uuid>,
    input: &DecisionInput,
    decision: &Decision,
    outside_territory: bool,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, Vec<Uuid>)>> {
    let (candidates, by_circuit) = candidates(tx).await?;
    let mut context = CircuitContext::of(input, &decision.occurrences);
    context.outside_territory = outside_territory;
    let chosen = match named.and_then(|c| by_circuit.get(&c).copied()) {
        Some(v) => Some(v),
        None => circuit::choose_circuit(&candidates, &context),
    };
    let Some(version_id) = chosen else {
        return Ok(None);
    };
    let (def, step_ids) = load_def(tx, version_id).await?;
    let organiser = match &input.request.organiser {
        Organiser::Known { person, .. } => Some(*person),
        _ => None,
    };
    let mut steps = Vec::new();
    for s in &def.steps {
        steps.push(Step {
            approvers: resolve(tx, &s.approvers, organiser, &input.resource.chain).await?,
            quorum: s.quorum,
            reminder: hours(s.reminder_hours),
            deadline: hours(s.deadline_hours),
            backup: s.backup,
        });
    }
    let circuit = Circuit {
        steps,
        deadline: hours(def.deadline_hours),
        final_outcome: def.final_outcome,
    };
    let Ok((progress, effect)) = circuit.start(now) else {
        // Nobody to ask (an empty group, no manager in the directory): the
        // managers' queue takes the booking rather than a circuit that can
        // only expire.
        tracing::warn!(booking.id = %facts.booking_id, circuit_version = %version_id, "circuit.no_approver");
        return Ok(None);
    };
    let mut run = Run {
        booking_id: facts.booking_id,
        version_id,
        circuit,
        step_ids,
        progress,
    };
    sqlx::query(
        "INSERT INTO circuit_runs (booking_id, circuit_version_id, circuit, step_ids, progress, started_at, next_due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run.booking_id)
    .bind(version_id)
    .bind(to_json(&run.circuit)?)
    .bind(&run.step_ids)
    .bind(to_json(&run.progress)?)
    .bind(now)
    .bind(circuit::next_due(&run.circuit, &run.progress))
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE bookings SET circuit_version_id = $2 WHERE id = $1")
        .bind(run.booking_id)
        .bind(version_id)
        .execute(&mut **tx)
        .await?;
    let asked = match &effect {
        Effect::AskApprovers { approvers, .. } => approvers.clone(),
        Effect::EscalateTo { backup, .. } => vec![*backup],
        _ => Vec::new(),
    };
    carry_out(tx, signer, &mut run, effect, None, now).await?;
    Ok(Some((version_id, asked)))
}

/// Who decided, for the final messages.
struct Finisher {
    person: Option<Uuid>,
    comment: String,
}

/// Asks `people` to approve step `step` (a first request, an escalation or a
/// reminder): request rows, a fresh single-use link each, and the message.
async fn ask(
    tx: &mut Transaction<'_, Postgres>,
    signer: Option<&LinkSigner>,
    run: &Run,
    step: usize,
    people: &[Uuid],
    event: Msg,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(step_id) = run.step_ids.get(step).copied() else {
        return Ok(());
    };
    let facts = booking_facts(tx, run.booking_id).await?;
    let step_deadline = run
        .circuit
        .steps
        .get(step)
        .and_then(|s| s.deadline)
        .map(|Delay(d)| now + d);
    let circuit_deadline = run.circuit.deadline.map(|Delay(d)| run.progress.circuit_started + d);
    // A link lasts as long as the answer can matter: the step's or circuit's
    // deadline, else the booking's start, else a week.
    let expires = [step_deadline, circuit_deadline, facts.first.map(|f| f.0)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + Duration::days(7))
        .max(now + Duration::hours(1));
    for (i, person) in people.iter().enumerate() {
        let request_id: Uuid = sqlx::query_scalar(
            "INSERT INTO approval_requests (booking_id, step_id, approver_person_id, status, requested_at, deadline_at)
             VALUES ($1, $2, $3, 'pending', $4, $5)
             ON CONFLICT (booking_id, step_id, approver_person_id)
             DO UPDATE SET status = CASE WHEN approval_requests.status = 'delegated' THEN 'delegated' ELSE 'pending' END,
                           reminded_at = CASE WHEN $6 THEN $4 ELSE approval_requests.reminded_at END
             RETURNING id",
        )
        .bind(run.booking_id)
        .bind(step_id)
        .bind(person)
        .bind(now)
        .bind(step_deadline)
        .bind(event == Msg::ApprovalReminder)
        .fetch_one(&mut **tx)
        .await?;
        let (smtp, lang) = person_contact(tx, *person).await?;
        let Some(smtp) = smtp else {
            tracing::warn!(person = %person, booking.id = %run.booking_id, "circuit.approver_without_address");
            continue;
        };
        let mut vars = facts.vars(lang);
        vars.insert("circuit", circuit_label(tx, run.version_id, lang).await?);
        vars.insert("step", format!("{}/{}", step + 1, run.circuit.steps.len()));
        vars.insert("approvers", names(tx, people).await?);
        let reasons = hold_reasons(tx, run.booking_id, lang).await?;
        vars.insert("decision", reasons_text(&reasons, lang));
        vars.insert(
            "deadline",
            expires.with_timezone(&facts.tz).format("%d/%m/%Y %H:%M").to_string(),
        );
        if let Some(signer) = signer
            && let Some(token) = signer.mint(request_id, expires)
        {
            sqlx::query("INSERT INTO approval_links (token_hash, approval_request_id, expires_at) VALUES ($1, $2, $3)")
                .bind(token_hash(&token))
                .bind(request_id)
                .bind(expires)
                .execute(&mut **tx)
                .await?;
            vars.insert("link", signer.url(&token));
        }
        let mut rendered = n::render_in(tx, event, lang, &vars).await?;
        // Answers are matched by the reference: it stays in the subject
        // whatever the template says.
        let reference = crate::notify::reference(run.booking_id);
        if !rendered.subject.contains(&reference) {
            rendered.subject = format!("{} {reference}", rendered.subject);
        }
        let mail = OutgoingMail {
            to: vec![smtp],
            rendered,
            lang,
            voting: true,
            event,
        };
        let key = format!("{}:{request_id}:{}:{i}", event.as_str(), now.timestamp_micros());
        queue_mail(tx, facts.resource_id, Some(run.booking_id), &key, &mail, now).await?;
    }
    Ok(())
}

/// Carries out what the engine said, then stores the progress.
async fn carry_out(
    tx: &mut Transaction<'_, Postgres>,
    signer: Option<&LinkSigner>,
    run: &mut Run,
    effect: Effect,
    by: Option<Finisher>,
    now: DateTime<Utc>,
) -> Result<()> {
    let outcome = match &effect {
        Effect::AskApprovers { step, approvers } => {
            ask(tx, signer, run, *step, approvers, Msg::ApprovalRequest, now).await?;
            None
        }
        Effect::EscalateTo { step, backup } => {
            if let Some(step_id) = run.step_ids.get(*step) {
                sqlx::query(
                    "UPDATE approval_requests SET escalated_at = $3 WHERE booking_id = $1 AND step_id = $2
                       AND status = 'pending'",
                )
                .bind(run.booking_id)
                .bind(step_id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            ask(tx, signer, run, *step, &[*backup], Msg::ApprovalRequest, now).await?;
            None
        }
        Effect::Remind { step, approvers } => {
            ask(tx, signer, run, *step, approvers, Msg::ApprovalReminder, now).await?;
            None
        }
        Effect::Approved => {
            finish(
                tx,
                run,
                true,
                by.unwrap_or(Finisher {
                    person: None,
                    comment: String::new(),
                }),
                false,
                now,
            )
            .await?;
            Some("approved")
        }
        Effect::Refused { by: who } => {
            let f = by.unwrap_or(Finisher {
                person: Some(*who),
                comment: String::new(),
            });
            finish(tx, run, false, f, false, now).await?;
            Some("refused")
        }
        Effect::Expired { outcome } => {
            let accept = *outcome == FinalOutcome::Accept;
            finish(
                tx,
                run,
                accept,
                Finisher {
                    person: None,
                    comment: String::new(),
                },
                true,
                now,
            )
            .await?;
            Some(if accept { "expired_accept" } else { "expired_decline" })
        }
        Effect::Nothing => None,
    };
    save_progress(tx, run, outcome, now).await
}

/// The circuit's end: the booking accepted or declined, the decision logged,
/// the final answer queued for Exchange with the organiser's message.
async fn finish(
    tx: &mut Transaction<'_, Postgres>,
    run: &Run,
    accept: bool,
    by: Finisher,
    expired: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let held: Option<(String, i32)> =
        sqlx::query_as("SELECT uid, sequence FROM bookings WHERE id = $1 AND status = 'held' FOR UPDATE")
            .bind(run.booking_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some((uid, sequence)) = held else {
        return Ok(());
    };
    let status = if accept { "accepted" } else { "declined" };
    sqlx::query("UPDATE bookings SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(run.booking_id)
        .bind(status)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE occurrences SET status = $2 WHERE booking_id = $1 AND status = 'held'")
        .bind(run.booking_id)
        .bind(status)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE approval_requests SET status = $2 WHERE booking_id = $1 AND status IN ('pending', 'delegated')",
    )
    .bind(run.booking_id)
    .bind(if expired { "expired" } else { "superseded" })
    .execute(&mut **tx)
    .await?;
    let facts = booking_facts(tx, run.booking_id).await?;
    let lang = facts.organiser_lang;
    let approver = match by.person {
        Some(p) => person_name(tx, p).await?,
        None => match lang {
            Lang::Fr => "le délai du circuit".into(),
            Lang::En => "the circuit's deadline".into(),
        },
    };
    let (code, fr, en) = match (accept, expired) {
        (true, false) => (
            "circuit_approved",
            "Approuvée par le circuit de validation.",
            "Approved by the approval circuit.",
        ),
        (false, false) => (
            "circuit_refused",
            "Refusée dans le circuit de validation.",
            "Refused in the approval circuit.",
        ),
        (true, true) => (
            "circuit_expired_accept",
            "Personne n'a répondu avant la fin du circuit : la demande est acceptée, comme configuré.",
            "Nobody answered before the circuit's deadline: the request is accepted, as configured.",
        ),
        (false, true) => (
            "circuit_expired_decline",
            "Personne n'a répondu avant la fin du circuit : la demande est refusée, comme configuré.",
            "Nobody answered before the circuit's deadline: the request is declined, as configured.",
        ),
    };
    let mut reasons = vec![json!({ "code": code, "fr": fr, "en": en })];
    if !by.comment.is_empty() {
        reasons.push(json!({ "code": "approver_comment", "fr": by.comment, "en": by.comment }));
    }
    let decision_id: i64 = sqlx::query_scalar(
        "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, reasons, inputs, decided_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'circuit') RETURNING id",
    )
    .bind(run.booking_id)
    .bind(facts.resource_id)
    .bind(&uid)
    .bind(sequence)
    .bind(now)
    .bind(if accept { "approve" } else { "refuse" })
    .bind(json!(reasons))
    .bind(json!({ "circuit_version": run.version_id, "by": by.person, "expired": expired }))
    .fetch_one(&mut **tx)
    .await?;
    let mut vars = facts.vars(lang);
    vars.insert("circuit", circuit_label(tx, run.version_id, lang).await?);
    vars.insert("approver", approver);
    let comment = if expired {
        match lang {
            Lang::Fr => fr.to_owned(),
            Lang::En => en.to_owned(),
        }
    } else {
        by.comment.clone()
    };
    vars.insert("comment", comment);
    let event = if accept { Msg::Approved } else { Msg::Refused };
    let rendered = n::render_in(tx, event, lang, &vars).await?;
    if facts.exchange_item_id.is_some() {
        // The request was answered "tentative" when held, and Exchange
        // removed it from the Inbox then: the final answer goes to the
        // meeting in the resource's calendar, found by its UID.
        let (base_uid, occurrence) = match uid.split_once('#') {
            Some((u, _)) => (u.to_owned(), true),
            None => (uid.clone(), false),
        };
        sqlx::query(
            "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(facts.resource_id)
        .bind(run.booking_id)
        .bind(if accept { "accept" } else { "decline" })
        .bind(format!("circuit:{}:{decision_id}", run.booking_id))
        .bind(json!({
            "calendar_uid": base_uid,
            "occurrence": occurrence,
            "start": facts.first.map(|f| f.0),
            "end": facts.last_end,
            "body": rendered.body,
            "language": lang_code(lang),
            "decision_id": decision_id,
        }))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    } else if let Some(to) = facts.organiser_smtp.clone() {
        let mail = OutgoingMail {
            to: vec![to],
            rendered,
            lang,
            voting: false,
            event,
        };
        queue_mail(
            tx,
            facts.resource_id,
            Some(run.booking_id),
            &format!("circuit:{}:{decision_id}", run.booking_id),
            &mail,
            now,
        )
        .await?;
    }
    Ok(())
}

/// One person's answer, as given.
struct Given<'a> {
    person: Uuid,
    verdict: Verdict,
    /// An `approvals.channel` value.
    channel: &'a str,
    comment: &'a str,
}

/// Applies one person's answer to a booking's circuit.
async fn answer_in(
    tx: &mut Transaction<'_, Postgres>,
    signer: Option<&LinkSigner>,
    booking_id: Uuid,
    given: Given<'_>,
    now: DateTime<Utc>,
) -> Result<Answered> {
    let Given {
        person,
        verdict,
        channel,
        comment,
    } = given;
    let Some(mut run) = load_run(tx, booking_id, true).await? else {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM circuit_runs WHERE booking_id = $1)")
            .bind(booking_id)
            .fetch_one(&mut **tx)
            .await?;
        return Ok(if any { Answered::Over } else { Answered::NoCircuit });
    };
    let still_held: bool = sqlx::query_scalar("SELECT status = 'held' FROM bookings WHERE id = $1")
        .bind(booking_id)
        .fetch_one(&mut **tx)
        .await?;
    if !still_held {
        close_run(tx, booking_id, "cancelled", now).await?;
        return Ok(Answered::Over);
    }
    let step_index = run.progress.step;
    let (Some(step), Some(step_id)) = (
        run.circuit.steps.get(step_index).cloned(),
        run.step_ids.get(step_index).copied(),
    ) else {
        return Ok(Answered::Over);
    };
    if !circuit::deciders(&step, &run.progress).contains(&person) {
        return Ok(Answered::NotAnApprover);
    }
    let event = match verdict {
        Verdict::Approve => Event::Approve(person),
        Verdict::Refuse => Event::Refuse(person),
        Verdict::Absent => Event::Absent(person),
    };
    let effect = circuit::advance(&run.circuit, &mut run.progress, event, now);
    let comment = comment.trim().chars().take(2000).collect::<String>();
    let status = match verdict {
        Verdict::Approve => "approved",
        Verdict::Refuse => "refused",
        Verdict::Absent => "delegated",
    };
    let request_id: Uuid = sqlx::query_scalar(
        "INSERT INTO approval_requests (booking_id, step_id, approver_person_id, status, requested_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (booking_id, step_id, approver_person_id) DO UPDATE SET status = EXCLUDED.status
         RETURNING id",
    )
    .bind(booking_id)
    .bind(step_id)
    .bind(person)
    .bind(status)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    if verdict != Verdict::Absent {
        sqlx::query(
            "INSERT INTO approvals (approval_request_id, outcome, channel, actor_person_id, comment, decided_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(request_id)
        .bind(status)
        .bind(channel)
        .bind(person)
        .bind((!comment.is_empty()).then_some(comment.as_str()))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    // The step is behind us: the others' requests for it are moot.
    if run.progress.step != step_index || run.progress.finished {
        sqlx::query(
            "UPDATE approval_requests SET status = 'superseded' WHERE booking_id = $1 AND step_id = $2
               AND status = 'pending'",
        )
        .bind(booking_id)
        .bind(step_id)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, object_kind, object_id, details)
         VALUES ($1, $2, $3, 'booking', $4, $5)",
    )
    .bind(now)
    .bind(person.to_string())
    .bind(format!("circuit.{status}"))
    .bind(booking_id.to_string())
    .bind(json!({ "channel": channel, "comment": comment, "step": step_index + 1 }))
    .execute(&mut **tx)
    .await?;
    carry_out(
        tx,
        signer,
        &mut run,
        effect.clone(),
        Some(Finisher {
            person: Some(person),
            comment,
        }),
        now,
    )
    .await?;
    Ok(Answered::Applied(effect))
}

impl Store {
    /// Saves a circuit: a new circuit, or a new version of `existing` (the
    /// bookings under way keep theirs).
    pub async fn save_circuit(
        &self,
        existing: Option<Uuid>,
        def: &CircuitDef,
        by: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<(Uuid, Uuid)> {
        if let Some(p) = def.problems().first() {
            return Err(StoreError::Invalid((*p).to_owned()));
        }
        let mut tx = self.pool().begin().await?;
        let circuit_id: Uuid = match existing {
            None => {
                sqlx::query_scalar("INSERT INTO circuits (name, created_at) VALUES ($1, $2) RETURNING id")
                    .bind(def.name.trim())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?
            }
            Some(id) => sqlx::query_scalar("UPDATE circuits SET name = $2 WHERE id = $1 RETURNING id")
                .bind(id)
                .bind(def.name.trim())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("circuit {id}")))?,
        };
        let version: i32 =
            sqlx::query_scalar("SELECT coalesce(max(version), 0) + 1 FROM circuit_versions WHERE circuit_id = $1")
                .bind(circuit_id)
                .fetch_one(&mut *tx)
                .await?;
        let version_id: Uuid = sqlx::query_scalar(
            "INSERT INTO circuit_versions (circuit_id, version, conditions, priority, deadline_hours, final_outcome,
                                           created_at, created_by, label_fr, label_en)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(circuit_id)
        .bind(version)
        .bind(to_json(&def.conditions)?)
        .bind(def.priority)
        .bind(def.deadline_hours)
        .bind(match def.final_outcome {
            FinalOutcome::Accept => "accept",
            FinalOutcome::Decline => "decline",
        })
        .bind(now)
        .bind(by)
        .bind(&def.label_fr)
        .bind(&def.label_en)
        .fetch_one(&mut *tx)
        .await?;
        for (i, s) in def.steps.iter().enumerate() {
            let step_id: Uuid = sqlx::query_scalar(
                "INSERT INTO circuit_steps (circuit_version_id, position, quorum, deadline_hours, reminder_hours,
                                            backup_person_id)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(version_id)
            .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .bind(match s.quorum {
                Quorum::One => "one",
                Quorum::All => "all",
            })
            .bind(s.deadline_hours)
            .bind(s.reminder_hours)
            .bind(s.backup)
            .fetch_one(&mut *tx)
            .await?;
            for a in &s.approvers {
                let (kind, person, group) = approver_row(a);
                sqlx::query(
                    "INSERT INTO circuit_step_approvers (step_id, kind, person_id, group_id) VALUES ($1, $2, $3, $4)",
                )
                .bind(step_id)
                .bind(kind)
                .bind(person)
                .bind(group)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, object_kind, object_id, details)
             VALUES ($1, $2, 'circuit.save', 'circuit', $3, $4)",
        )
        .bind(now)
        .bind(by.map(|b| b.to_string()).unwrap_or_else(|| "system".into()))
        .bind(circuit_id.to_string())
        .bind(json!({ "version": version, "definition": to_json(def)? }))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((circuit_id, version_id))
    }

    /// Every circuit with its latest version.
    pub async fn circuits(&self) -> Result<Vec<CircuitSummary>> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(
            "SELECT DISTINCT ON (c.id) c.id, c.active, v.id AS version_id, v.version
             FROM circuits c JOIN circuit_versions v ON v.circuit_id = c.id
             ORDER BY c.id, v.version DESC",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let version_id: Uuid = r.try_get("version_id")?;
            let (def, _) = load_def(&mut tx, version_id).await?;
            out.push(CircuitSummary {
                id: r.try_get("id")?,
                active: r.try_get("active")?,
                version_id,
                version: r.try_get("version")?,
                def,
            });
        }
        tx.commit().await?;
        out.sort_by_key(|c| c.def.name.to_lowercase());
        Ok(out)
    }

    pub async fn set_circuit_active(&self, id: Uuid, active: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE circuits SET active = $2 WHERE id = $1")
            .bind(id)
            .bind(active)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// An approver's answer, from Outlook (vote, reply, automatic reply) or
    /// the web queue. `channel` is an `approvals.channel` value.
    pub async fn answer_circuit(
        &self,
        booking_id: Uuid,
        person: Uuid,
        verdict: Verdict,
        channel: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Answered> {
        let mut tx = self.pool().begin().await?;
        let given = Given {
            person,
            verdict,
            channel,
            comment,
        };
        let out = answer_in(&mut tx, self.link_signer(), booking_id, given, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Checks a link without using it, for its landing page.
    pub async fn approval_link(&self, token: &str, now: DateTime<Utc>) -> Result<Result<LinkView, LinkRefusal>> {
        let Some(signer) = self.link_signer() else {
            return Ok(Err(LinkRefusal::Invalid));
        };
        match signer.verify(token, now) {
            Ok(_) => {}
            Err(crate::notify::links::LinkError::Expired) => return Ok(Err(LinkRefusal::Expired)),
            Err(_) => return Ok(Err(LinkRefusal::Invalid)),
        }
        let mut tx = self.pool().begin().await?;
        let Some(r) = sqlx::query(
            "SELECT l.used_at, ar.booking_id, ar.approver_person_id, ar.status
             FROM approval_links l JOIN approval_requests ar ON ar.id = l.approval_request_id
             WHERE l.token_hash = $1",
        )
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Err(LinkRefusal::Invalid));
        };
        if r.try_get::<Option<DateTime<Utc>>, _>("used_at")?.is_some() {
            return Ok(Err(LinkRefusal::AlreadyUsed));
        }
        let booking_id: Uuid = r.try_get("booking_id")?;
        let person: Uuid = r.try_get("approver_person_id")?;
        let facts = booking_facts(&mut tx, booking_id).await?;
        let (_, lang) = person_contact(&mut tx, person).await?;
        let run = load_run(&mut tx, booking_id, false).await?;
        let (circuit, step) = match &run {
            Some(run) => (
                circuit_label(&mut tx, run.version_id, lang).await?,
                format!("{}/{}", run.progress.step + 1, run.circuit.steps.len()),
            ),
            None => (String::new(), String::new()),
        };
        let view = LinkView {
            approver_name: person_name(&mut tx, person).await?,
            reasons: hold_reasons(&mut tx, booking_id, lang).await?,
            facts,
            circuit,
            step,
        };
        tx.commit().await?;
        Ok(Ok(view))
    }

    /// Uses a link to answer: the link is spent in the same transaction as
    /// the answer, so it serves once.
    pub async fn answer_by_link(
        &self,
        token: &str,
        verdict: Verdict,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Answered, LinkRefusal>> {
        let Some(signer) = self.link_signer() else {
            return Ok(Err(LinkRefusal::Invalid));
        };
        match signer.verify(token, now) {
            Ok(_) => {}
            Err(crate::notify::links::LinkError::Expired) => return Ok(Err(LinkRefusal::Expired)),
            Err(_) => return Ok(Err(LinkRefusal::Invalid)),
        }
        let mut tx = self.pool().begin().await?;
        let used = sqlx::query(
            "UPDATE approval_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING approval_request_id",
        )
        .bind(token_hash(token))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(used) = used else {
            let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM approval_links WHERE token_hash = $1)")
                .bind(token_hash(token))
                .fetch_one(&mut *tx)
                .await?;
            return Ok(Err(if known {
                LinkRefusal::AlreadyUsed
            } else {
                LinkRefusal::Invalid
            }));
        };
        let request_id: Uuid = used.try_get("approval_request_id")?;
        let (booking_id, person): (Uuid, Uuid) =
            sqlx::query_as("SELECT booking_id, approver_person_id FROM approval_requests WHERE id = $1")
                .bind(request_id)
                .fetch_one(&mut *tx)
                .await?;
        let given = Given {
            person,
            verdict,
            channel: "link",
            comment,
        };
        let out = answer_in(&mut tx, Some(signer), booking_id, given, now).await?;
        tx.commit().await?;
        Ok(Ok(out))
    }

    /// The answers awaited from `person` (every one when `None`), for the web queue.
    pub async fn pending_approvals(&self, person: Option<Uuid>) -> Result<Vec<PendingApproval>> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(
            "SELECT DISTINCT ON (ar.booking_id, ar.approver_person_id) ar.booking_id, ar.approver_person_id
             FROM approval_requests ar
             JOIN circuit_runs cr ON cr.booking_id = ar.booking_id AND cr.finished_at IS NULL
             JOIN bookings b ON b.id = ar.booking_id AND b.status = 'held'
             WHERE ar.status = 'pending' AND ($1::uuid IS NULL OR ar.approver_person_id = $1)
             ORDER BY ar.booking_id, ar.approver_person_id",
        )
        .bind(person)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let booking_id: Uuid = r.try_get("booking_id")?;
            let approver: Uuid = r.try_get("approver_person_id")?;
            let Some(run) = load_run(&mut tx, booking_id, false).await? else {
                continue;
            };
            let (_, lang) = person_contact(&mut tx, approver).await?;
            out.push(PendingApproval {
                booking_id,
                facts: booking_facts(&mut tx, booking_id).await?,
                approver,
                approver_name: person_name(&mut tx, approver).await?,
                circuit: circuit_label(&mut tx, run.version_id, lang).await?,
                step: format!("{}/{}", run.progress.step + 1, run.circuit.steps.len()),
                reasons: hold_reasons(&mut tx, booking_id, lang).await?,
            });
        }
        tx.commit().await?;
        out.sort_by_key(|p| p.facts.first.map(|f| f.0));
        Ok(out)
    }

    /// Whether a booking is in a running circuit (its approvals then go
    /// through the circuit, not the managers' one-step queue).
    pub async fn has_running_circuit(&self, booking_id: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM circuit_runs WHERE booking_id = $1 AND finished_at IS NULL)",
        )
        .bind(booking_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// The recorded answers of a booking's circuit: (outcome, channel, who, comment, when).
    pub async fn circuit_answers(
        &self,
        booking_id: Uuid,
    ) -> Result<Vec<(String, String, Option<String>, Option<String>, DateTime<Utc>)>> {
        Ok(sqlx::query_as(
            "SELECT a.outcome, a.channel, p.display_name, a.comment, a.decided_at
             FROM approvals a JOIN approval_requests ar ON ar.id = a.approval_request_id
             LEFT JOIN people p ON p.id = a.actor_person_id
             WHERE ar.booking_id = $1 ORDER BY a.decided_at, a.id",
        )
        .bind(booking_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The periodic job: organisers get their reminder the day before a
    /// booking; circuits whose booking is no longer held end; those due get
    /// their reminder, escalation or final outcome. Each circuit in
    /// its own transaction, locked so that two instances never both act.
    /// Returns how many circuits were moved on.
    pub async fn circuits_tick(&self, now: DateTime<Utc>) -> Result<usize> {
        // Reminders before bookings ride on the same periodic step.
        self.booking_reminders(now).await?;
        let stale: Vec<Uuid> = sqlx::query_scalar(
            "SELECT cr.booking_id FROM circuit_runs cr JOIN bookings b ON b.id = cr.booking_id
             WHERE cr.finished_at IS NULL AND b.status <> 'held'",
        )
        .fetch_all(self.pool())
        .await?;
        for booking_id in stale {
            let mut tx = self.pool().begin().await?;
            close_run(&mut tx, booking_id, "cancelled", now).await?;
            tx.commit().await?;
        }
        let mut moved = 0;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut tx = self.pool().begin().await?;
            let due: Option<Uuid> = sqlx::query_scalar(
                "SELECT booking_id FROM circuit_runs WHERE finished_at IS NULL AND next_due_at <= $1
                 ORDER BY next_due_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(booking_id) = due else {
                break;
            };
            // A circuit moved on is not due again at the same instant; if it
            // were, leave it to the next round rather than spin.
            if !seen.insert(booking_id) {
                break;
            }
            let Some(mut run) = load_run(&mut tx, booking_id, true).await? else {
                break;
            };
            let effect = circuit::advance(&run.circuit, &mut run.progress, Event::Tick, now);
            tracing::info!(booking.id = %booking_id, effect = ?effect, "circuit.tick");
            carry_out(&mut tx, self.link_signer(), &mut run, effect, None, now).await?;
            tx.commit().await?;
            moved += 1;
        }
        Ok(moved)
    }
}

impl Store {
    /// `directory:account` of people and groups, by id, for the circuit editor.
    pub async fn accounts_by_id(&self, ids: &[Uuid]) -> Result<BTreeMap<Uuid, String>> {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT p.id, d.name || ':' || p.sam_account_name FROM people p JOIN directories d ON d.id = p.directory_id
             WHERE p.id = ANY($1)
             UNION ALL
             SELECT g.id, d.name || ':' || g.sam_account_name FROM groups g JOIN directories d ON d.id = g.directory_id
             WHERE g.id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }
}
