//! "Mes réservations", the decision explainer and cancelling.

use super::{Base, instant, reason_texts, render, see_other, span};
use crate::web::WebState;
use crate::web::actions;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

/// (rule code, French, English), in the engine's order.
const RULES: &[(&str, &str, &str)] = &[
    ("validity", "Validité de la demande", "Request validity"),
    ("organiser", "Organisateur connu", "Known organiser"),
    ("rights", "Droits de l'organisateur", "Organiser's rights"),
    (
        "recurring_allowed",
        "Réunions périodiques permises",
        "Recurring meetings allowed",
    ),
    ("max_occurrences", "Nombre d'occurrences", "Number of occurrences"),
    ("booking_window", "Délai maximal de réservation", "Booking window"),
    ("horizon", "Horizon des séries", "Series horizon"),
    ("capacity", "Capacité", "Capacity"),
    ("min_notice", "Préavis minimal", "Minimum notice"),
    ("duration", "Durée", "Duration"),
    ("opening_hours", "Heures d'ouverture", "Opening hours"),
    ("work_hours", "Heures de travail", "Working hours"),
    ("public_holidays", "Jours fériés", "Public holidays"),
    ("blackouts", "Fermetures", "Blackouts"),
    ("quotas", "Quotas", "Quotas"),
    ("conflicts", "Conflits", "Conflicts"),
    ("licence", "Permis de conduire", "Driving licence"),
];

/// (policy field, French, English).
const POLICY_FIELDS: &[(&str, &str, &str)] = &[
    (
        "booking_window_days",
        "Réservation au plus tôt (jours à l'avance)",
        "Booking window (days ahead)",
    ),
    (
        "series_horizon_days",
        "Horizon des séries (jours)",
        "Series horizon (days)",
    ),
    ("horizon_mode", "Au-delà de l'horizon", "Beyond the horizon"),
    (
        "min_notice_minutes",
        "Préavis minimal (minutes)",
        "Minimum notice (minutes)",
    ),
    (
        "min_duration_minutes",
        "Durée minimale (minutes)",
        "Minimum duration (minutes)",
    ),
    (
        "max_duration_minutes",
        "Durée maximale (minutes)",
        "Maximum duration (minutes)",
    ),
    ("opening_hours", "Heures d'ouverture", "Opening hours"),
    (
        "closed_on_public_holidays",
        "Fermée les jours fériés",
        "Closed on public holidays",
    ),
    ("work_hours_only", "Heures de travail seulement", "Working hours only"),
    ("work_hours", "Heures de travail", "Working hours"),
    (
        "buffer_before_minutes",
        "Battement avant (minutes)",
        "Buffer before (minutes)",
    ),
    (
        "buffer_after_minutes",
        "Battement après (minutes)",
        "Buffer after (minutes)",
    ),
    ("enforce_capacity", "Capacité imposée", "Capacity enforced"),
    (
        "allow_recurring",
        "Réunions périodiques permises",
        "Recurring meetings allowed",
    ),
    (
        "max_occurrences",
        "Occurrences au plus (0 : sans limite)",
        "Most occurrences (0: no limit)",
    ),
    (
        "conflict_max_percent",
        "Conflits tolérés (%)",
        "Conflicts tolerated (%)",
    ),
    (
        "conflict_max_count",
        "Conflits tolérés (nombre)",
        "Conflicts tolerated (count)",
    ),
    ("quotas", "Quotas", "Quotas"),
    (
        "allow_external_organisers",
        "Organisateurs externes permis",
        "External organisers allowed",
    ),
    ("unknown_organiser", "Organisateur inconnu", "Unknown organiser"),
    (
        "show_organiser_on_conflict",
        "Nommer l'organisateur en conflit",
        "Name the conflicting organiser",
    ),
    ("default_right", "Droit par défaut", "Default right"),
    (
        "managers_bypass_rules",
        "Les gestionnaires passent outre les règles",
        "Managers bypass the rules",
    ),
    ("approval_circuit", "Circuit de validation", "Approval circuit"),
];

fn label(table: &[(&str, &'static str, &'static str)], key: &str, lang: Lang) -> String {
    match table.iter().find(|(k, _, _)| *k == key) {
        Some((_, fr, en)) => match lang {
            Lang::Fr => (*fr).to_owned(),
            Lang::En => (*en).to_owned(),
        },
        None => key.to_owned(),
    }
}

/// The label of a rule of the engine.
pub fn rule_label(key: &str, lang: Lang) -> String {
    label(RULES, key, lang)
}

/// The label of a policy field.
pub fn policy_field_label(key: &str, lang: Lang) -> String {
    label(POLICY_FIELDS, key, lang)
}

/// "Site « Siège »" for a serialised scope (`{"kind": "site", "id": ...}`).
pub fn scope_label(scope: &serde_json::Value, names: &HashMap<Uuid, String>, lang: Lang) -> String {
    let kind = scope.get("kind").and_then(|v| v.as_str()).unwrap_or("global");
    let level = lang.text(&format!("scope.{kind}"));
    let name = scope
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<Uuid>().ok())
        .and_then(|id| names.get(&id));
    match name {
        Some(n) => format!("{level} « {n} »"),
        None => level.to_owned(),
    }
}

/// Weekly hours (`{"monday": [{"start": "08:00:00", "end": "18:00:00"}], ...}`)
/// as "lun. 8:00–18:00 ; mar. …", or `None` when `v` is not such an object.
fn weekly_hours(v: &serde_json::Value, lang: Lang) -> Option<String> {
    const DAYS: [(&str, &str, &str); 7] = [
        ("monday", "lun.", "Mon"),
        ("tuesday", "mar.", "Tue"),
        ("wednesday", "mer.", "Wed"),
        ("thursday", "jeu.", "Thu"),
        ("friday", "ven.", "Fri"),
        ("saturday", "sam.", "Sat"),
        ("sunday", "dim.", "Sun"),
    ];
    let o = v.as_object()?;
    if o.is_empty() || !o.keys().all(|k| DAYS.iter().any(|(d, _, _)| d == k)) {
        return None;
    }
    let short = |t: &str| t.strip_suffix(":00").unwrap_or(t).to_owned();
    let parts: Vec<String> = DAYS
        .iter()
        .map(|(key, fr, en)| {
            let day = if lang == Lang::Fr { fr } else { en };
            let ranges: Vec<String> = o
                .get(*key)
                .and_then(|r| r.as_array())
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let (s, e) = (r.get("start")?.as_str()?, r.get("end")?.as_str()?);
                    Some(if s == "00:00:00" && e == "00:00:00" {
                        lang.text("policy.all_day").to_owned()
                    } else {
                        format!("{}–{}", short(s), short(e))
                    })
                })
                .collect();
            if ranges.is_empty() {
                format!("{day} {}", lang.text("policy.closed"))
            } else {
                format!("{day} {}", ranges.join(", "))
            }
        })
        .collect();
    Some(parts.join(" ; "))
}

/// A value of a policy, readable.
pub fn policy_value(v: &serde_json::Value, lang: Lang) -> String {
    if let Some(hours) = weekly_hours(v, lang) {
        return hours;
    }
    match v {
        serde_json::Value::Bool(true) => lang.text("yes").to_owned(),
        serde_json::Value::Bool(false) => lang.text("no").to_owned(),
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// One line of a policy table.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub key: String,
    pub label: String,
    pub value: String,
    pub origin: String,
    pub here: bool,
}

/// The lines of an effective policy (serialised `EffectivePolicy`), each
/// with where its value comes from, relative to `here`.
pub fn policy_rows(
    effective: &serde_json::Value,
    here: &serde_json::Value,
    names: &HashMap<Uuid, String>,
    lang: Lang,
) -> Vec<PolicyRow> {
    let Some(fields) = effective.as_object() else {
        return Vec::new();
    };
    let mut rows: Vec<PolicyRow> = fields
        .iter()
        .map(|(key, resolved)| {
            let scope = resolved.get("scope").cloned().unwrap_or(serde_json::Value::Null);
            let builtin = resolved.get("builtin").and_then(|v| v.as_bool()).unwrap_or(false);
            let is_here = !builtin && &scope == here;
            let origin = if builtin {
                lang.text("policy.builtin").to_owned()
            } else if is_here {
                lang.text("policy.set_here").to_owned()
            } else {
                format!("{} {}", lang.text("policy.inherited"), scope_label(&scope, names, lang))
            };
            PolicyRow {
                key: key.clone(),
                label: policy_field_label(key, lang),
                value: policy_value(resolved.get("value").unwrap_or(&serde_json::Value::Null), lang),
                origin,
                here: is_here,
            }
        })
        .collect();
    let order = |k: &str| POLICY_FIELDS.iter().position(|(f, _, _)| *f == k).unwrap_or(usize::MAX);
    rows.sort_by_key(|r| order(&r.key));
    rows
}

struct BookingLine {
    id: Uuid,
    resource: String,
    subject: String,
    when: String,
    status: String,
    status_class: String,
    reasons: Vec<String>,
}

#[derive(Template)]
#[template(path = "bookings.html")]
struct BookingsPage {
    base: Base,
    lines: Vec<BookingLine>,
}

#[derive(Debug, Deserialize)]
pub struct FlashQuery {
    pub msg: Option<String>,
}

pub async fn my_bookings(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let lang = ctx.lang;
    let rows = state.store.bookings_of_organiser(user.person_id, 200).await?;
    let lines = rows
        .into_iter()
        .map(|b| {
            let mut when = match (b.first_start, b.first_end) {
                (Some(s), Some(e)) => span(lang, &b.time_zone, s, e),
                _ => "—".to_owned(),
            };
            if b.occurrences > 1 {
                when.push_str(&format!(
                    " (+{} {})",
                    b.occurrences - 1,
                    lang.text("bookings.occurrences")
                ));
            }
            BookingLine {
                id: b.id,
                resource: b.resource_name,
                subject: b.subject.unwrap_or_else(|| lang.text("bookings.no_subject").to_owned()),
                when,
                status: lang.text(&format!("status.{}", b.status)).to_owned(),
                status_class: format!("status-{}", b.status),
                reasons: reason_texts(lang, &b.last_reasons),
            }
        })
        .collect();
    render(&BookingsPage {
        base: Base::new(&ctx, "bookings.title").with_flash(q.msg.as_deref()),
        lines,
    })
}

struct CheckLine {
    rule: String,
    verdict: String,
    verdict_class: String,
    scope: String,
}

struct DecisionView {
    outcome: String,
    decided_at: String,
    decided_by: String,
    reasons: Vec<String>,
    checks: Vec<CheckLine>,
}

struct OccurrenceLine {
    when: String,
    status: String,
}

#[derive(Template)]
#[template(path = "explain.html")]
struct ExplainPage {
    base: Base,
    id: Uuid,
    resource: String,
    subject: String,
    organiser: String,
    attendees: String,
    source: String,
    requested_at: String,
    status: String,
    status_class: String,
    occurrences: Vec<OccurrenceLine>,
    decisions: Vec<DecisionView>,
    policy: Vec<PolicyRow>,
    can_cancel: bool,
    /// Someone else's booking: the canceller may write to its organiser.
    cancel_comment: bool,
}

/// Whether `user` may see (and cancel) a booking: its organiser, a manager
/// of its resource, or an admin.
pub async fn explain(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Query(q): Query<FlashQuery>,
) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let lang = ctx.lang;
    let Some(b) = state.store.booking_detail(id).await? else {
        return Err(WebError::NotFound);
    };
    // Someone else's booking is "not found" rather than "forbidden", so ids
    // cannot be probed.
    if !actions::may_see(&state, user, b.organiser_person_id, b.resource_id).await? {
        return Err(WebError::NotFound);
    }
    let names = state.store.object_names().await?;
    let occurrences = state
        .store
        .occurrences_of(id)
        .await?
        .into_iter()
        .map(|o| OccurrenceLine {
            when: span(lang, &b.time_zone, o.start, o.end),
            status: lang.text(&format!("status.{}", o.status)).to_owned(),
        })
        .collect();
    let rows = state.store.decisions_of(id).await?;
    // The policy the latest engine decision used; today's when none is logged.
    let logged_policy = rows
        .iter()
        .rev()
        .find_map(|d| d.inputs.get("policy").filter(|p| p.is_object()).cloned());
    let effective = match logged_policy {
        Some(p) => p,
        None => serde_json::to_value(state.store.effective_policy_of(b.resource_id).await?)
            .map_err(|e| WebError::Internal(e.to_string()))?,
    };
    let here = serde_json::json!({ "kind": "resource", "id": b.resource_id });
    let policy = policy_rows(&effective, &here, &names, lang);
    let decisions = rows
        .iter()
        .map(|d| DecisionView {
            outcome: lang.text(&format!("outcome.{}", d.outcome)).to_owned(),
            decided_at: instant(lang, &b.time_zone, d.decided_at),
            decided_by: lang.text(&format!("decided_by.{}", d.decided_by)).to_owned(),
            reasons: reason_texts(lang, &d.reasons),
            checks: d
                .explanation
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let verdict = c.get("verdict").and_then(|v| v.as_str()).unwrap_or("not_applicable");
                    CheckLine {
                        rule: rule_label(c.get("rule").and_then(|v| v.as_str()).unwrap_or("?"), lang),
                        verdict: lang.text(&format!("verdict.{verdict}")).to_owned(),
                        verdict_class: format!("verdict-{verdict}"),
                        scope: scope_label(c.get("scope").unwrap_or(&serde_json::Value::Null), &names, lang),
                    }
                })
                .collect(),
        })
        .collect();
    let can_cancel = matches!(b.status.as_str(), "accepted" | "partially_accepted" | "held");
    render(&ExplainPage {
        base: Base::new(&ctx, "explain.title").with_flash(q.msg.as_deref()),
        id: b.id,
        resource: b.resource_name,
        subject: b.subject.unwrap_or_else(|| lang.text("bookings.no_subject").to_owned()),
        organiser: match b.organiser_name {
            Some(n) => format!("{n} <{}>", b.organiser_address),
            None => b.organiser_address,
        },
        attendees: b.attendee_count.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
        source: lang.text(&format!("source.{}", b.source)).to_owned(),
        requested_at: instant(lang, &b.time_zone, b.requested_at),
        status: lang.text(&format!("status.{}", b.status)).to_owned(),
        status_class: format!("status-{}", b.status),
        occurrences,
        decisions,
        policy,
        can_cancel,
        cancel_comment: b.organiser_person_id != Some(user.person_id),
    })
}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    /// A manager's word for the organiser; ignored from the organiser.
    #[serde(default)]
    comment: String,
}

/// Cancels a booking: its organiser, a manager of its resource or an admin.
/// The store frees the slots and queues, in the same transaction, what
/// Exchange must do (the outbox worker of this process is woken to send it)
/// and, when someone else than the organiser cancels, the organiser's
/// message with who, when and the comment.
pub async fn cancel(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<CancelForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    actions::cancel(&state, user, id, &form.comment).await?;
    Ok(see_other("/bookings?msg=bookings.cancelled"))
}

// ------------------------------------------------- managed resources' calendar

struct CalendarEntryLine {
    booking: Uuid,
    when: String,
    subject: String,
    organiser: String,
    status: String,
}

struct CalendarResource {
    name: String,
    site: String,
    entries: Vec<CalendarEntryLine>,
}

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarPage {
    base: Base,
    from: String,
    previous: String,
    next: String,
    period: String,
    resources: Vec<CalendarResource>,
}

#[derive(Debug, Deserialize)]
pub struct CalendarQuery {
    /// The first day shown (YYYY-MM-DD); today by default.
    from: Option<String>,
}

/// The days the managers' calendar shows at once.
const CALENDAR_DAYS: i64 = 7;

/// The calendars of the resources the manager manages (all of them for an
/// admin): every slot held over a week, with its subject and organiser.
pub async fn calendar(State(state): State<WebState>, ctx: Ctx, Query(q): Query<CalendarQuery>) -> Result<Response> {
    use chrono::{NaiveDate, NaiveTime, TimeZone};
    let user = ctx.require(Role::Manager)?;
    let lang = ctx.lang;
    let paris = chrono_tz::Europe::Paris;
    let today = state.clock.now().with_timezone(&paris).date_naive();
    let from = match q.from.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => today,
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| WebError::BadRequest(lang.text("calendar.invalid").into()))?,
    };
    let to = from + chrono::Duration::days(CALENDAR_DAYS);
    let instant_of = |d: NaiveDate| {
        paris
            .from_local_datetime(&d.and_time(NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let (Some(start), Some(end)) = (instant_of(from), instant_of(to)) else {
        return Err(WebError::BadRequest(lang.text("calendar.invalid").into()));
    };
    let mine: Vec<crate::store::web::ResourceRow> = state
        .store
        .list_resources()
        .await?
        .into_iter()
        .filter(|r| user.manages(r))
        .collect();
    let ids: Vec<Uuid> = mine.iter().map(|r| r.id).collect();
    let rows = if ids.is_empty() {
        Vec::new()
    } else {
        state.store.calendar_of(&ids, start, end).await?
    };
    let resources = mine
        .into_iter()
        .map(|r| CalendarResource {
            entries: rows
                .iter()
                .filter(|e| e.resource_id == r.id)
                .map(|e| CalendarEntryLine {
                    booking: e.booking_id,
                    when: span(lang, &r.time_zone, e.start, e.end),
                    subject: e
                        .subject
                        .clone()
                        .unwrap_or_else(|| lang.text("bookings.no_subject").to_owned()),
                    organiser: e.organiser.clone().unwrap_or_default(),
                    status: lang.text(&format!("status.{}", e.status)).to_owned(),
                })
                .collect(),
            name: r.name,
            site: r.site_name,
        })
        .collect();
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    render(&CalendarPage {
        base: Base::new(&ctx, "calendar.title"),
        from: day(from),
        previous: day(from - chrono::Duration::days(CALENDAR_DAYS)),
        next: day(to),
        period: format!(
            "{} – {}",
            from.format("%d/%m/%Y"),
            (to - chrono::Duration::days(1)).format("%d/%m/%Y")
        ),
        resources,
    })
}
