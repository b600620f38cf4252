//! The control API under `/_sim/` (JSON): tests and the demo create
//! mailboxes, act as Outlook users (invite, update, cancel, reply), look at
//! what a mailbox holds, and set faults. No authentication: the simulator
//! listens on loopback only. `CONTROL_API.md` is its reference.

use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc, Weekday};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::faults::FaultRule;
use super::server::{Body, full};
use super::state::{FolderKind, ItemClass, MailboxInfo, MailboxKind, MeetingChanges, MeetingInput, Reply, Routing};
use super::{Shared, SimError};
use crate::domain::recurrence as dom;
use crate::ews::types::{self as wire, DayOfWeek, DayOfWeekIndex, RecurrencePattern, RecurrenceRange};

const MAX_BODY: usize = 1024 * 1024;

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    full(
        status,
        Some("application/json"),
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn error_response(e: &SimError) -> Response<Body> {
    let status = match e {
        SimError::NoMailbox(_) | SimError::NoItem(_) => StatusCode::NOT_FOUND,
        SimError::Conflict(_) | SimError::Cancelled(_) => StatusCode::CONFLICT,
        SimError::Invalid(_) | SimError::BadSyncState | SimError::Seed { .. } => StatusCode::BAD_REQUEST,
        SimError::AccessDenied(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_response(status, &json!({ "error": e.to_string() }))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, SimError> {
    serde_json::from_slice(body).map_err(|e| SimError::Invalid(format!("JSON body: {e}")))
}

/// Answers one `/_sim/...` request.
pub async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return json_response(StatusCode::PAYLOAD_TOO_LARGE, &json!({"error": "body too large"})),
    };
    let segments: Vec<&str> = path
        .trim_start_matches("/_sim")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let result = match (&method, segments.as_slice()) {
        (&Method::GET, ["health"]) => Ok((StatusCode::OK, json!({"ok": true, "version": shared.version.as_str()}))),
        (&Method::GET, ["mailboxes"]) => Ok((StatusCode::OK, list_mailboxes(shared))),
        (&Method::POST, ["mailboxes"]) => add_mailbox(shared, &body),
        (&Method::GET, ["mailboxes", smtp, folder]) => list_folder(shared, smtp, folder),
        (&Method::POST, ["invite"]) => invite(shared, &body),
        (&Method::POST, ["update"]) => update(shared, &body),
        (&Method::POST, ["cancel"]) => cancel(shared, &body),
        (&Method::POST, ["forward"]) => forward(shared, &body),
        (&Method::POST, ["reply"]) => reply(shared, &body),
        (&Method::POST, ["message"]) => message(shared, &body),
        (&Method::GET, ["faults"]) => Ok((StatusCode::OK, faults_json(shared))),
        (&Method::POST, ["faults"]) => set_faults(shared, &body),
        (&Method::GET, ["calls"]) => Ok((StatusCode::OK, calls_json(shared))),
        (&Method::DELETE, ["calls"]) => {
            shared.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
            Ok((StatusCode::OK, calls_json(shared)))
        }
        (&Method::GET, ["subscriptions"]) => Ok((StatusCode::OK, subscriptions_json(shared))),
        (&Method::POST, ["streams", "drop"]) => {
            shared.drop_streams();
            Ok((StatusCode::OK, subscriptions_json(shared)))
        }
        (&Method::POST, ["restart"]) => {
            shared.restart();
            Ok((StatusCode::OK, subscriptions_json(shared)))
        }
        (&Method::DELETE, ["faults"]) => {
            shared.faults.lock().unwrap_or_else(|e| e.into_inner()).rules.clear();
            Ok((StatusCode::OK, faults_json(shared)))
        }
        _ => Err(SimError::NoItem(format!("{method} {path}"))),
    };
    match result {
        Ok((status, v)) => json_response(status, &v),
        Err(e) => error_response(&e),
    }
}

type Answer = Result<(StatusCode, Value), SimError>;

fn list_mailboxes(shared: &Shared) -> Value {
    shared.read(|w| {
        let list: Vec<&MailboxInfo> = w.mailboxes.values().map(|m| &m.info).collect();
        json!({ "mailboxes": list, "room_lists": w.room_lists })
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMailbox {
    smtp: String,
    name: String,
    kind: MailboxKind,
    #[serde(default)]
    legacy_dn: Option<String>,
    #[serde(default)]
    routing: Routing,
}

fn add_mailbox(shared: &Shared, body: &Bytes) -> Answer {
    let m: NewMailbox = parse(body)?;
    let smtp = m.smtp.to_lowercase();
    shared.mutate(|w| {
        w.add_mailbox(MailboxInfo {
            smtp: m.smtp,
            name: m.name,
            kind: m.kind,
            legacy_dn: m.legacy_dn.unwrap_or_default(),
            routing: m.routing,
        })
    })?;
    Ok((StatusCode::CREATED, json!({ "smtp": smtp })))
}

/// One item as the control API lists it.
#[derive(Serialize)]
struct ItemView {
    id: String,
    kind: &'static str,
    /// Accept, Tentative or Decline for a MeetingResponse.
    response: Option<&'static str>,
    subject: String,
    body: String,
    from: Option<String>,
    uid: Option<String>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    sequence: Option<u32>,
    is_cancelled: Option<bool>,
    my_response: Option<super::state::ResponseKind>,
    recurrence: Option<String>,
    attendees: Vec<super::state::AttendeeState>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    voting: Vec<String>,
}

fn list_folder(shared: &Shared, smtp: &str, folder: &str) -> Answer {
    let kind = FolderKind::from_distinguished(folder)
        .filter(|k| *k != FolderKind::Root)
        .ok_or_else(|| SimError::NoItem(format!("folder {folder}")))?;
    shared.read(|w| {
        let mb = w.mailbox(smtp)?;
        let items: Vec<ItemView> = mb
            .items
            .values()
            .filter(|i| i.folder == kind)
            .map(|i| {
                let (kind, response) = match i.class {
                    ItemClass::CalendarItem => ("CalendarItem", None),
                    ItemClass::MeetingRequest => ("MeetingRequest", None),
                    ItemClass::MeetingResponse(Reply::Accept) => ("MeetingResponse", Some("Accept")),
                    ItemClass::MeetingResponse(Reply::Tentative) => ("MeetingResponse", Some("Tentative")),
                    ItemClass::MeetingResponse(Reply::Decline) => ("MeetingResponse", Some("Decline")),
                    ItemClass::MeetingCancellation => ("MeetingCancellation", None),
                    ItemClass::Message => ("Message", None),
                };
                let m = i.meeting.as_ref();
                ItemView {
                    id: super::render::item_id(&mb.info.smtp, i.no, None),
                    kind,
                    response,
                    subject: i.subject.clone(),
                    body: i.body.clone(),
                    from: i.from.clone(),
                    uid: m.map(|m| m.uid.clone()),
                    start: m.map(|m| m.start),
                    end: m.map(|m| m.end),
                    sequence: m.map(|m| m.sequence),
                    is_cancelled: m.map(|m| m.cancelled),
                    my_response: i.my_response,
                    recurrence: m.and_then(|m| m.recurrence.clone()),
                    attendees: m.map(|m| m.attendees().cloned().collect()).unwrap_or_default(),
                    voting: i.voting.clone(),
                }
            })
            .collect();
        Ok((StatusCode::OK, json!({ "items": items })))
    })
}

/// A time zone given as IANA or Windows id.
fn zone(s: Option<&str>) -> Result<chrono_tz::Tz, SimError> {
    match s {
        None => Ok(chrono_tz::Europe::Paris),
        Some(s) => s
            .parse::<chrono_tz::Tz>()
            .ok()
            .or_else(|| wire::windows_to_iana(s))
            .ok_or_else(|| SimError::Invalid(format!("unknown time zone {s:?}"))),
    }
}

/// RFC 3339, or a local time without offset read in `tz`.
fn instant(s: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, SimError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .map(|n| dom::local_to_utc(tz, n))
        .map_err(|_| SimError::Invalid(format!("bad time {s:?}: use RFC 3339")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invite {
    #[serde(rename = "as")]
    organizer: String,
    subject: String,
    start: String,
    end: String,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    attendees: Vec<String>,
    #[serde(default)]
    optional: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    recurrence: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    uid: Option<String>,
}

fn invite(shared: &Shared, body: &Bytes) -> Answer {
    let i: Invite = parse(body)?;
    let tz = zone(i.time_zone.as_deref())?;
    let input = MeetingInput {
        uid: i.uid,
        subject: i.subject,
        body: i.body.unwrap_or_default(),
        location: i.location,
        start: instant(&i.start, tz)?,
        end: instant(&i.end, tz)?,
        time_zone: tz.name().to_owned(),
        required: i.attendees,
        optional: i.optional,
        resources: i.resources,
        recurrence: i.recurrence,
    };
    let now = shared.clock.now();
    let uid = shared.mutate(|w| w.invite(&i.organizer, input, now))?;
    Ok((StatusCode::OK, json!({ "uid": uid })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    #[serde(rename = "as")]
    organizer: String,
    uid: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    attendees: Option<Vec<String>>,
    #[serde(default)]
    optional: Option<Vec<String>>,
    #[serde(default)]
    resources: Option<Vec<String>>,
    /// A new RRULE; an empty string makes the meeting single.
    #[serde(default)]
    recurrence: Option<String>,
    #[serde(default)]
    delete_occurrences: Vec<String>,
    /// The original start of the one occurrence that `start` and `end`
    /// move (an exception); the rest of the series stays.
    #[serde(default)]
    occurrence: Option<String>,
}

fn update(shared: &Shared, body: &Bytes) -> Answer {
    let u: Update = parse(body)?;
    let tz = zone(u.time_zone.as_deref())?;
    let now = shared.clock.now();
    let start = u.start.as_deref().map(|s| instant(s, tz)).transpose()?;
    let end = u.end.as_deref().map(|s| instant(s, tz)).transpose()?;
    let deletions = u
        .delete_occurrences
        .iter()
        .map(|s| instant(s, tz))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(original) = &u.occurrence {
        let original = instant(original, tz)?;
        let (Some(start), Some(end)) = (start, end) else {
            return Err(SimError::Invalid("moving an occurrence needs start and end".into()));
        };
        shared.mutate(|w| w.update_occurrence(&u.organizer, &u.uid, original, start, end, now))?;
        return Ok((StatusCode::OK, json!({ "uid": u.uid })));
    }
    let changes = MeetingChanges {
        subject: u.subject,
        body: u.body,
        location: u.location,
        start,
        end,
        required: u.attendees,
        optional: u.optional,
        resources: u.resources,
        recurrence: u.recurrence.map(|r| (!r.trim().is_empty()).then_some(r)),
    };
    let whole = changes != MeetingChanges::default();
    shared.mutate(|w| {
        for d in &deletions {
            w.delete_occurrence(&u.organizer, &u.uid, *d, now)?;
        }
        if whole || deletions.is_empty() {
            w.update(&u.organizer, &u.uid, changes, now)?;
        }
        Ok(())
    })?;
    Ok((StatusCode::OK, json!({ "uid": u.uid })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cancel {
    #[serde(rename = "as")]
    organizer: String,
    uid: String,
}

fn cancel(shared: &Shared, body: &Bytes) -> Answer {
    let c: Cancel = parse(body)?;
    let now = shared.clock.now();
    shared.mutate(|w| w.cancel(&c.organizer, &c.uid, now))?;
    Ok((StatusCode::OK, json!({ "uid": c.uid })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Forward {
    #[serde(rename = "as")]
    attendee: String,
    uid: String,
    to: Vec<String>,
}

/// An attendee forwards the invitation (to a room, say).
fn forward(shared: &Shared, body: &Bytes) -> Answer {
    let f: Forward = parse(body)?;
    let now = shared.clock.now();
    shared.mutate(|w| w.forward(&f.attendee, &f.uid, &f.to, now))?;
    Ok((StatusCode::OK, json!({ "uid": f.uid })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    #[serde(rename = "as")]
    attendee: String,
    uid: String,
    response: Reply,
    #[serde(default)]
    body: String,
}

fn reply(shared: &Shared, body: &Bytes) -> Answer {
    let r: ReplyBody = parse(body)?;
    let now = shared.clock.now();
    shared.mutate(|w| w.reply_by_uid(&r.attendee, &r.uid, r.response, &r.body, now))?;
    Ok((StatusCode::OK, json!({ "uid": r.uid })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    #[serde(rename = "as")]
    from: String,
    to: Vec<String>,
    subject: String,
    #[serde(default)]
    body: String,
}

fn message(shared: &Shared, body: &Bytes) -> Answer {
    let m: Message = parse(body)?;
    let now = shared.clock.now();
    shared.mutate(|w| w.send_message(&m.from, &m.to, &m.subject, &m.body, now))?;
    Ok((StatusCode::OK, json!({})))
}

/// EWS requests received, by operation.
fn calls_json(shared: &Shared) -> Value {
    let calls = shared.calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
    json!({ "total": calls.values().sum::<u64>(), "calls": calls })
}

/// Live subscriptions and open streaming connections.
fn subscriptions_json(shared: &Shared) -> Value {
    let subs: Vec<Value> = shared
        .subscriptions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .subs
        .iter()
        .map(|(id, s)| json!({ "id": id, "mailbox": s.smtp, "streaming": s.streaming, "backend": s.backend }))
        .collect();
    let streams: Vec<Value> = shared
        .streams
        .list()
        .into_iter()
        .map(|(anchor, n)| json!({ "anchor": anchor, "subscriptions": n }))
        .collect();
    json!({ "subscriptions": subs, "streams": streams })
}

fn faults_json(shared: &Shared) -> Value {
    let f = shared.faults.lock().unwrap_or_else(|e| e.into_inner()).clone();
    json!({ "faults": f.rules })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFaults {
    /// Removes every rule first.
    #[serde(default)]
    clear: bool,
    #[serde(default)]
    faults: Vec<FaultRule>,
}

fn set_faults(shared: &Shared, body: &Bytes) -> Answer {
    let s: SetFaults = parse(body)?;
    {
        let mut f = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        if s.clear {
            f.rules.clear();
        }
        f.rules.extend(s.faults);
    }
    Ok((StatusCode::OK, faults_json(shared)))
}

fn weekday(d: DayOfWeek) -> Option<Weekday> {
    Some(match d {
        DayOfWeek::Monday => Weekday::Mon,
        DayOfWeek::Tuesday => Weekday::Tue,
        DayOfWeek::Wednesday => Weekday::Wed,
        DayOfWeek::Thursday => Weekday::Thu,
        DayOfWeek::Friday => Weekday::Fri,
        DayOfWeek::Saturday => Weekday::Sat,
        DayOfWeek::Sunday => Weekday::Sun,
        _ => return None,
    })
}

fn selector(d: DayOfWeek) -> dom::DaySelector {
    match d {
        DayOfWeek::Day => dom::DaySelector::AnyDay,
        DayOfWeek::Weekday => dom::DaySelector::WorkDay,
        DayOfWeek::WeekendDay => dom::DaySelector::WeekendDay,
        other => dom::DaySelector::Day(weekday(other).unwrap_or(Weekday::Mon)),
    }
}

fn index(i: DayOfWeekIndex) -> dom::WeekIndex {
    match i {
        DayOfWeekIndex::First => dom::WeekIndex::First,
        DayOfWeekIndex::Second => dom::WeekIndex::Second,
        DayOfWeekIndex::Third => dom::WeekIndex::Third,
        DayOfWeekIndex::Fourth => dom::WeekIndex::Fourth,
        DayOfWeekIndex::Last => dom::WeekIndex::Last,
    }
}

fn month_number(m: wire::Month) -> u32 {
    wire::Month::ALL
        .iter()
        .position(|x| *x == m)
        .map_or(1, |p| p as u32 + 1)
}

/// The RRULE of an EWS Recurrence (what a client sent in CreateItem).
pub fn rrule_of(
    r: &wire::Recurrence,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<String, SimError> {
    let pattern = match &r.pattern {
        RecurrencePattern::Daily { interval } => dom::Pattern::Daily { interval: *interval },
        RecurrencePattern::Weekly {
            interval,
            days_of_week,
            first_day_of_week,
        } => dom::Pattern::Weekly {
            interval: *interval,
            days: days_of_week.iter().filter_map(|d| weekday(*d)).collect(),
            first_day_of_week: first_day_of_week.and_then(weekday).unwrap_or(Weekday::Mon),
        },
        RecurrencePattern::AbsoluteMonthly { interval, day_of_month } => dom::Pattern::AbsoluteMonthly {
            interval: *interval,
            day_of_month: *day_of_month,
        },
        RecurrencePattern::RelativeMonthly {
            interval,
            days_of_week,
            day_of_week_index,
        } => dom::Pattern::RelativeMonthly {
            interval: *interval,
            day: selector(*days_of_week),
            index: index(*day_of_week_index),
        },
        RecurrencePattern::AbsoluteYearly { day_of_month, month } => dom::Pattern::AbsoluteYearly {
            month: month_number(*month),
            day_of_month: *day_of_month,
        },
        RecurrencePattern::RelativeYearly {
            days_of_week,
            day_of_week_index,
            month,
        } => dom::Pattern::RelativeYearly {
            month: month_number(*month),
            day: selector(*days_of_week),
            index: index(*day_of_week_index),
        },
    };
    let (start_date, range) = match r.range {
        RecurrenceRange::NoEnd { start } => (start, dom::RecurrenceRange::NoEnd),
        RecurrenceRange::EndDate { start, end } => (start, dom::RecurrenceRange::EndDate(end)),
        RecurrenceRange::Numbered { start, count } => (start, dom::RecurrenceRange::Numbered(count)),
    };
    let series = dom::Recurrence {
        pattern,
        range,
        start_date,
        start_time: start.with_timezone(&tz).time(),
        duration: end - start,
        tz,
        deleted: Default::default(),
        modified: Vec::new(),
    };
    series
        .validate()
        .map_err(|e| SimError::Invalid(format!("recurrence: {e}")))?;
    Ok(series.to_rrule())
}
