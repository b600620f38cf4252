//! The admin's editor of validation circuits. Saving an existing circuit
//! makes a new version: bookings already in the circuit keep theirs.
//!
//! Approvers are written one per line: `pc:carol` (a person, by directory
//! and account), `groupe:pc:GG-Resa-Valideurs` (every member of an AD group),
//! `responsable` (the organiser's manager in the directory) or
//! `gestionnaires` (the people who manage the resource). Each is checked
//! against the directories when saved.

use super::{Base, render, see_other};
use crate::domain::circuit::{Condition, FinalOutcome, Quorum};
use crate::domain::reason::ResourceKind;
use crate::store::circuits::{ApproverDef, CircuitDef, StepDef};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

/// Step slots in the form; a slot left empty is no step.
const SLOTS: usize = 4;

struct Line {
    id: Uuid,
    name: String,
    version: i32,
    active: bool,
    steps: usize,
    conditions: usize,
}

#[derive(Template)]
#[template(path = "circuits.html")]
struct ListPage {
    base: Base,
    lines: Vec<Line>,
}

#[derive(Debug, Deserialize)]
pub struct FlashQuery {
    msg: Option<String>,
}

pub async fn list(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let lines = state
        .store
        .circuits()
        .await?
        .into_iter()
        .map(|c| Line {
            id: c.id,
            name: c.def.name,
            version: c.version,
            active: c.active,
            steps: c.def.steps.len(),
            conditions: c.def.conditions.len(),
        })
        .collect();
    render(&ListPage {
        base: Base::new(&ctx, "circuits.title").with_flash(q.msg.as_deref()),
        lines,
    })
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct StepSlot {
    n: usize,
    approvers: String,
    all: bool,
    deadline: String,
    reminder: String,
    backup: String,
}

/// The form's values, as typed.
#[derive(Default)]
struct Values {
    name: String,
    label_fr: String,
    label_en: String,
    priority: String,
    deadline: String,
    accept_at_deadline: bool,
    kind: String,
    site: String,
    resource_type: String,
    longer_than: String,
    outside_hours: bool,
    recurring: bool,
    more_occurrences: String,
    requester_group: String,
    outside_territory: bool,
    steps: Vec<StepSlot>,
}

#[derive(Template)]
#[template(path = "circuit_form.html")]
struct FormPage {
    base: Base,
    action: String,
    v: Values,
    kinds: Vec<Choice>,
    sites: Vec<Choice>,
    types: Vec<Choice>,
    errors: Vec<String>,
}

fn hours(h: Option<i32>) -> String {
    h.map(|h| h.to_string()).unwrap_or_default()
}

/// The form's values of a saved circuit.
async fn values_of(state: &WebState, def: &CircuitDef) -> Result<Values> {
    let mut ids = Vec::new();
    for s in &def.steps {
        ids.extend(s.backup);
        for a in &s.approvers {
            match a {
                ApproverDef::Person { person } => ids.push(*person),
                ApproverDef::Group { group } => ids.push(*group),
                _ => {}
            }
        }
    }
    for c in &def.conditions {
        if let Condition::RequesterInGroup { group } = c {
            ids.push(*group);
        }
    }
    let accounts = state.store.accounts_by_id(&ids).await?;
    let account = |id: &Uuid| accounts.get(id).cloned().unwrap_or_else(|| id.to_string());
    let mut v = Values {
        name: def.name.clone(),
        label_fr: def.label_fr.clone().unwrap_or_default(),
        label_en: def.label_en.clone().unwrap_or_default(),
        priority: def.priority.to_string(),
        deadline: hours(def.deadline_hours),
        accept_at_deadline: def.final_outcome == FinalOutcome::Accept,
        ..Values::default()
    };
    for c in &def.conditions {
        match c {
            Condition::ResourceKind { resource_kind } => {
                v.kind = match resource_kind {
                    ResourceKind::Room => "room",
                    ResourceKind::Vehicle => "vehicle",
                    _ => "equipment",
                }
                .into()
            }
            Condition::Site { id } => v.site = id.to_string(),
            Condition::ResourceType { id } => v.resource_type = id.to_string(),
            Condition::LongerThan { minutes } => v.longer_than = minutes.to_string(),
            Condition::OutsideWorkHours => v.outside_hours = true,
            Condition::Recurring => v.recurring = true,
            Condition::MoreOccurrencesThan { count } => v.more_occurrences = count.to_string(),
            Condition::RequesterInGroup { group } => v.requester_group = account(group),
            Condition::OutsideTerritory => v.outside_territory = true,
            _ => {}
        }
    }
    for (i, s) in def.steps.iter().enumerate() {
        let lines: Vec<String> = s
            .approvers
            .iter()
            .map(|a| match a {
                ApproverDef::Person { person } => account(person),
                ApproverDef::Group { group } => format!("groupe:{}", account(group)),
                ApproverDef::OrganiserManager => "responsable".into(),
                ApproverDef::ResourceManagers => "gestionnaires".into(),
            })
            .collect();
        v.steps.push(StepSlot {
            n: i + 1,
            approvers: lines.join("\n"),
            all: s.quorum == Quorum::All,
            deadline: hours(s.deadline_hours),
            reminder: hours(s.reminder_hours),
            backup: s.backup.as_ref().map(account).unwrap_or_default(),
        });
    }
    Ok(v)
}

fn pad_steps(v: &mut Values) {
    while v.steps.len() < SLOTS {
        let n = v.steps.len() + 1;
        v.steps.push(StepSlot {
            n,
            approvers: String::new(),
            all: false,
            deadline: String::new(),
            reminder: String::new(),
            backup: String::new(),
        });
    }
}

async fn form_page(
    state: &WebState,
    ctx: &Ctx,
    action: String,
    mut v: Values,
    errors: Vec<String>,
) -> Result<FormPage> {
    pad_steps(&mut v);
    let lang = ctx.lang;
    let choice = |value: String, label: String, current: &str| Choice {
        selected: value == current,
        value,
        label,
    };
    let any = lang.text("circuits.any").to_owned();
    let mut kinds = vec![choice(String::new(), any.clone(), &v.kind)];
    for (value, key) in [
        ("room", "circuits.kind.room"),
        ("vehicle", "circuits.kind.vehicle"),
        ("equipment", "circuits.kind.equipment"),
    ] {
        kinds.push(choice(value.into(), lang.text(key).into(), &v.kind));
    }
    let mut sites = vec![choice(String::new(), any.clone(), &v.site)];
    for s in state.store.list_sites().await? {
        sites.push(choice(
            s.id.to_string(),
            format!("{} — {}", s.organisation_name, s.name),
            &v.site,
        ));
    }
    let mut types = vec![choice(String::new(), any, &v.resource_type)];
    for t in state.store.list_resource_types().await? {
        let name = if lang == crate::web::i18n::Lang::En {
            t.name_en
        } else {
            t.name_fr
        };
        types.push(choice(t.id.to_string(), name, &v.resource_type));
    }
    Ok(FormPage {
        base: Base::new(ctx, "circuits.edit"),
        action,
        v,
        kinds,
        sites,
        types,
        errors,
    })
}

pub async fn new_form(State(state): State<WebState>, ctx: Ctx) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let v = Values {
        priority: "0".into(),
        ..Values::default()
    };
    render(&form_page(&state, &ctx, "/admin/circuits/new".into(), v, Vec::new()).await?)
}

pub async fn edit_form(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let Some(c) = state.store.circuits().await?.into_iter().find(|c| c.id == id) else {
        return Err(WebError::NotFound);
    };
    let v = values_of(&state, &c.def).await?;
    render(&form_page(&state, &ctx, format!("/admin/circuits/{id}"), v, Vec::new()).await?)
}

/// Reads the form into values (to show again) and, when every line is
/// understood, a definition.
async fn read_form(
    state: &WebState,
    ctx: &Ctx,
    form: &[(String, String)],
) -> Result<(Values, Result<CircuitDef, Vec<String>>)> {
    let map: HashMap<&str, &str> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let get = |k: &str| map.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let on = |k: &str| map.contains_key(k);
    let lang = ctx.lang;
    let mut errors: Vec<String> = Vec::new();
    let mut v = Values {
        name: get("name"),
        label_fr: get("label_fr"),
        label_en: get("label_en"),
        priority: get("priority"),
        deadline: get("deadline"),
        accept_at_deadline: get("final_outcome") == "accept",
        kind: get("kind"),
        site: get("site"),
        resource_type: get("resource_type"),
        longer_than: get("longer_than"),
        outside_hours: on("outside_hours"),
        recurring: on("recurring"),
        more_occurrences: get("more_occurrences"),
        requester_group: get("requester_group"),
        outside_territory: on("outside_territory"),
        steps: Vec::new(),
    };
    let number = |errors: &mut Vec<String>, field: &str, text: &str| -> Option<i32> {
        if text.is_empty() {
            return None;
        }
        match text.parse::<i32>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errors.push(format!("{} : {field}", lang.text("circuits.error.number")));
                None
            }
        }
    };
    let person = |text: &str| {
        let text = text.to_owned();
        async move {
            let Some((dir, sam)) = text.split_once(':') else {
                return Ok::<_, WebError>(None);
            };
            Ok(state
                .store
                .person_by_account(dir.trim(), sam.trim())
                .await?
                .map(|p| p.id))
        }
    };
    let group = |text: &str| {
        let text = text.to_owned();
        async move {
            let Some((dir, sam)) = text.split_once(':') else {
                return Ok::<_, WebError>(None);
            };
            Ok(state
                .store
                .group_by_account(dir.trim(), sam.trim())
                .await?
                .map(|g| g.id))
        }
    };
    let mut conditions = Vec::new();
    match v.kind.as_str() {
        "room" => conditions.push(Condition::ResourceKind {
            resource_kind: ResourceKind::Room,
        }),
        "vehicle" => conditions.push(Condition::ResourceKind {
            resource_kind: ResourceKind::Vehicle,
        }),
        "equipment" => conditions.push(Condition::ResourceKind {
            resource_kind: ResourceKind::Equipment,
        }),
        _ => {}
    }
    if let Ok(id) = Uuid::parse_str(&v.site) {
        conditions.push(Condition::Site { id });
    }
    if let Ok(id) = Uuid::parse_str(&v.resource_type) {
        conditions.push(Condition::ResourceType { id });
    }
    if let Some(m) = number(&mut errors, lang.text("circuits.longer_than"), &v.longer_than) {
        conditions.push(Condition::LongerThan {
            minutes: m.unsigned_abs(),
        });
    }
    if v.outside_hours {
        conditions.push(Condition::OutsideWorkHours);
    }
    if v.recurring {
        conditions.push(Condition::Recurring);
    }
    if let Some(n) = number(&mut errors, lang.text("circuits.more_occurrences"), &v.more_occurrences) {
        conditions.push(Condition::MoreOccurrencesThan {
            count: n.unsigned_abs(),
        });
    }
    if !v.requester_group.is_empty() {
        match group(&v.requester_group).await? {
            Some(g) => conditions.push(Condition::RequesterInGroup { group: g }),
            None => errors.push(format!("{} {}", lang.text("circuits.error.group"), v.requester_group)),
        }
    }
    if v.outside_territory {
        conditions.push(Condition::OutsideTerritory);
    }
    let mut steps = Vec::new();
    for n in 1..=SLOTS {
        let slot = StepSlot {
            n,
            approvers: map
                .get(format!("step{n}_approvers").as_str())
                .map(|s| s.replace("\r\n", "\n"))
                .unwrap_or_default(),
            all: get(&format!("step{n}_quorum")) == "all",
            deadline: get(&format!("step{n}_deadline")),
            reminder: get(&format!("step{n}_reminder")),
            backup: get(&format!("step{n}_backup")),
        };
        let lines: Vec<String> = slot
            .approvers
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        if !lines.is_empty() || !slot.backup.is_empty() {
            let mut approvers = Vec::new();
            for line in &lines {
                let lower = line.to_lowercase();
                let found = match lower.as_str() {
                    "responsable" | "manager" => Some(ApproverDef::OrganiserManager),
                    "gestionnaires" | "managers" => Some(ApproverDef::ResourceManagers),
                    _ => match lower.strip_prefix("groupe:").or_else(|| lower.strip_prefix("group:")) {
                        Some(_) => {
                            let rest = line.split_once(':').map(|(_, r)| r).unwrap_or_default();
                            group(rest).await?.map(|g| ApproverDef::Group { group: g })
                        }
                        None => person(line).await?.map(|p| ApproverDef::Person { person: p }),
                    },
                };
                match found {
                    Some(a) => approvers.push(a),
                    None => errors.push(format!("{} {n} : {line}", lang.text("circuits.error.approver"))),
                }
            }
            let backup = if slot.backup.is_empty() {
                None
            } else {
                let b = person(&slot.backup).await?;
                if b.is_none() {
                    errors.push(format!("{} {n} : {}", lang.text("circuits.error.backup"), slot.backup));
                }
                b
            };
            steps.push(StepDef {
                quorum: if slot.all { Quorum::All } else { Quorum::One },
                deadline_hours: number(
                    &mut errors,
                    &format!("{} {n}", lang.text("circuits.step_deadline")),
                    &slot.deadline,
                ),
                reminder_hours: number(
                    &mut errors,
                    &format!("{} {n}", lang.text("circuits.step_reminder")),
                    &slot.reminder,
                ),
                backup,
                approvers,
            });
        }
        v.steps.push(slot);
    }
    let priority = v.priority.parse::<i32>().unwrap_or_else(|_| {
        if !v.priority.is_empty() {
            errors.push(format!(
                "{} : {}",
                lang.text("circuits.error.number"),
                lang.text("circuits.priority")
            ));
        }
        0
    });
    let def = CircuitDef {
        name: v.name.clone(),
        label_fr: Some(v.label_fr.clone()).filter(|s| !s.is_empty()),
        label_en: Some(v.label_en.clone()).filter(|s| !s.is_empty()),
        priority,
        conditions,
        deadline_hours: number(&mut errors, lang.text("circuits.deadline"), &v.deadline),
        final_outcome: if v.accept_at_deadline {
            FinalOutcome::Accept
        } else {
            FinalOutcome::Decline
        },
        steps,
    };
    errors.extend(def.problems().into_iter().map(|k| lang.text(k).to_owned()));
    Ok((v, if errors.is_empty() { Ok(def) } else { Err(errors) }))
}

async fn save(state: WebState, ctx: Ctx, existing: Option<Uuid>, form: Vec<(String, String)>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let action = match existing {
        Some(id) => format!("/admin/circuits/{id}"),
        None => "/admin/circuits/new".into(),
    };
    let (values, def) = read_form(&state, &ctx, &form).await?;
    let def = match def {
        Ok(d) => d,
        Err(errors) => {
            let page = form_page(&state, &ctx, action, values, errors).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    match state
        .store
        .save_circuit(existing, &def, Some(user.person_id), state.clock.now())
        .await
    {
        Ok(_) => Ok(see_other("/admin/circuits?msg=circuits.saved")),
        Err(crate::store::StoreError::Duplicate(_)) => {
            let errors = vec![ctx.lang.text("circuits.error.duplicate").to_owned()];
            let page = form_page(&state, &ctx, action, values, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
        Err(crate::store::StoreError::NotFound(_)) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}

pub async fn create(
    State(state): State<WebState>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response> {
    save(state, ctx, None, form).await
}

pub async fn update(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response> {
    save(state, ctx, Some(id), form).await
}

#[derive(Debug, Deserialize)]
pub struct ActiveForm {
    active: String,
}

pub async fn set_active(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<ActiveForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let active = form.active == "true";
    if !state.store.set_circuit_active(id, active).await? {
        return Err(WebError::NotFound);
    }
    state
        .store
        .record_audit(
            state.clock.now(),
            &user.person_id.to_string(),
            if active {
                "circuit.activate"
            } else {
                "circuit.deactivate"
            },
            "circuit",
            Some(&id.to_string()),
            serde_json::json!({}),
        )
        .await?;
    Ok(see_other("/admin/circuits?msg=circuits.saved"))
}
