//! The JSON API (`/api/v1/...`): the same reads as the pages, for scripts and
//! other tools, with the same session and roles; its OpenAPI document is
//! served at `/api/openapi.json`.

use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::session::{Ctx, Role};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

const OPENAPI: &str = include_str!("openapi.json");

pub async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Agent => "agent",
        Role::Manager => "manager",
        Role::Admin => "admin",
    }
}

pub async fn me(ctx: Ctx) -> Result<Json<Value>> {
    let user = ctx.require(Role::Agent)?;
    Ok(Json(json!({
        "person_id": user.person_id,
        "name": user.name,
        "role": role_name(user.role),
        "language": ctx.lang.code(),
    })))
}

pub async fn bookings(State(state): State<WebState>, ctx: Ctx) -> Result<Json<Value>> {
    let user = ctx.require(Role::Agent)?;
    let rows = state.store.bookings_of_organiser(user.person_id, 500).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|b| {
            json!({
                "id": b.id,
                "resource_id": b.resource_id,
                "resource_name": b.resource_name,
                "subject": b.subject,
                "status": b.status,
                "source": b.source,
                "first_start": b.first_start,
                "first_end": b.first_end,
                "occurrences": b.occurrences,
                "last_outcome": b.last_outcome,
                "last_reasons": b.last_reasons,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn booking(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    let user = ctx.require(Role::Agent)?;
    let Some(b) = state.store.booking_detail(id).await? else {
        return Err(WebError::NotFound);
    };
    let allowed = b.organiser_person_id == Some(user.person_id)
        || match state.store.resource_row(b.resource_id).await? {
            Some(r) => user.manages(&r),
            None => false,
        };
    if !allowed {
        return Err(WebError::NotFound);
    }
    let occurrences: Vec<Value> = state
        .store
        .occurrences_of(id)
        .await?
        .into_iter()
        .map(|o| json!({ "start": o.start, "end": o.end, "status": o.status }))
        .collect();
    let decisions: Vec<Value> = state
        .store
        .decisions_of(id)
        .await?
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "sequence": d.sequence,
                "decided_at": d.decided_at,
                "outcome": d.outcome,
                "decided_by": d.decided_by,
                "reasons": d.reasons,
                "explanation": d.explanation,
                "policy": d.inputs.get("policy"),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": b.id,
        "uid": b.uid,
        "resource_id": b.resource_id,
        "resource_name": b.resource_name,
        "organiser_address": b.organiser_address,
        "organiser_name": b.organiser_name,
        "subject": b.subject,
        "attendee_count": b.attendee_count,
        "status": b.status,
        "source": b.source,
        "requested_at": b.requested_at,
        "occurrences": occurrences,
        "decisions": decisions,
    })))
}

pub async fn resources(State(state): State<WebState>, ctx: Ctx) -> Result<Json<Value>> {
    ctx.require(Role::Agent)?;
    let resources: Vec<_> = state
        .store
        .list_resources()
        .await?
        .into_iter()
        .filter(|r| r.active)
        .collect();
    let ids: Vec<Uuid> = resources.iter().map(|r| r.id).collect();
    let equipment = state.store.equipment_of(&ids).await?;
    let items: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let pieces: Vec<&str> = equipment
                .get(&r.id)
                .map(|list| list.iter().map(|e| e.key.as_str()).collect())
                .unwrap_or_default();
            json!({
                "equipment": pieces,
                "id": r.id,
                "name": r.name,
                "mailbox": r.mailbox_smtp,
                "capacity": r.capacity,
                "category": r.category,
                "type": { "id": r.resource_type_id, "name_fr": r.type_name_fr, "name_en": r.type_name_en },
                "site": { "id": r.site_id, "name": r.site_name },
                "organisation": { "id": r.organisation_id, "name": r.organisation_name },
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn organisations(State(state): State<WebState>, ctx: Ctx) -> Result<Json<Value>> {
    ctx.require(Role::Agent)?;
    let items: Vec<Value> = state
        .store
        .organisation_summaries()
        .await?
        .into_iter()
        .map(|o| {
            json!({
                "id": o.id,
                "slug": o.slug,
                "name": o.name,
                "sites": o.sites,
                "resources": o.resources,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Every site with its time zone, its own opening hours (`null`: inherited)
/// and its local holidays.
pub async fn sites(State(state): State<WebState>, ctx: Ctx) -> Result<Json<Value>> {
    ctx.require(Role::Agent)?;
    let mut items = Vec::new();
    for s in state.store.site_details(None).await? {
        let hours = state
            .store
            .policy_at(crate::domain::Scope::Site(s.id))
            .await?
            .and_then(|p| p.get("opening_hours").cloned())
            .unwrap_or(Value::Null);
        let holidays: Vec<Value> = state
            .store
            .site_holidays(s.id)
            .await?
            .into_iter()
            .map(|h| json!({ "day": h.day, "name": h.name }))
            .collect();
        items.push(json!({
            "id": s.id,
            "organisation": { "id": s.organisation_id, "name": s.organisation_name },
            "slug": s.slug,
            "name": s.name,
            "address": s.address,
            "time_zone": s.time_zone,
            "resources": s.resources,
            "opening_hours": hours,
            "holidays": holidays,
        }));
    }
    Ok(Json(json!({ "items": items })))
}

pub async fn resource_types(State(state): State<WebState>, ctx: Ctx) -> Result<Json<Value>> {
    ctx.require(Role::Agent)?;
    let items: Vec<Value> = state
        .store
        .type_summaries()
        .await?
        .into_iter()
        .map(|t| {
            json!({
                "id": t.id,
                "slug": t.slug,
                "category": t.category,
                "name_fr": t.name_fr,
                "name_en": t.name_en,
                "resources": t.resources,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

// ------------------------------------------------------------------ actions
//
// POST requests carry the session cookie and the session's CSRF token in the
// `X-CSRF-Token` header, like every form of the site; bodies are JSON.

/// A JSON body read into `T`; a body that does not fit is a 400 saying why.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}").map_err(|e| WebError::BadRequest(e.to_string()));
    }
    serde_json::from_slice(bytes).map_err(|e| WebError::BadRequest(format!("JSON body: {e}")))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BookBody {
    resource_id: Uuid,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    attendees: Option<u32>,
}

/// Books a resource: the rule engine decides at once, as for a booking on
/// the site; 201 with the decision (which may be a decline, with its reasons).
pub async fn book(State(state): State<WebState>, ctx: Ctx, bytes: axum::body::Bytes) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let b: BookBody = body(&bytes)?;
    if b.end <= b.start {
        return Err(WebError::BadRequest("end must be after start".into()));
    }
    if b.end - b.start > chrono::Duration::days(31) {
        return Err(WebError::BadRequest("a booking lasts 31 days at most".into()));
    }
    let booked = crate::web::actions::book(
        &state,
        user,
        crate::web::actions::BookInput {
            resource: b.resource_id,
            start: b.start,
            end: b.end,
            recurrence: None,
            subject: b.subject,
            attendees: b.attendees.unwrap_or(1),
        },
    )
    .await?;
    let answer = json!({
        "booking_id": booked.booking_id,
        "outcome": booked.outcome,
        "reasons": booked.reasons,
        "message": booked.message,
        "exchange": if booked.queued { "queued" } else { "none" },
    });
    Ok((axum::http::StatusCode::CREATED, Json(answer)).into_response())
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    #[serde(default)]
    comment: String,
}

/// Cancels a booking (its organiser, or a manager of its resource with an
/// optional comment for the organiser).
pub async fn cancel(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>> {
    let user = ctx.require(Role::Agent)?;
    let b: CommentBody = body(&bytes)?;
    let cancelled = crate::web::actions::cancel(&state, user, id, &b.comment).await?;
    Ok(Json(json!({ "booking_id": id, "cancelled": cancelled })))
}

/// What waits for the user's answer.
pub async fn approvals(State(state): State<WebState>, ctx: Ctx) -> Result<Json<Value>> {
    let user = ctx.require(Role::Agent)?;
    let (circuits, held) = crate::web::actions::approval_queue(&state, user).await?;
    let circuits: Vec<Value> = circuits
        .into_iter()
        .map(|p| {
            json!({
                "booking_id": p.booking_id,
                "resource_name": p.facts.resource,
                "organiser": p.facts.organiser,
                "subject": p.facts.subject,
                "start": p.facts.first.map(|(s, _)| s),
                "end": p.facts.first.map(|(_, e)| e),
                "circuit": p.circuit,
                "step": p.step,
            })
        })
        .collect();
    let held: Vec<Value> = held
        .into_iter()
        .map(|h| {
            json!({
                "booking_id": h.id,
                "resource_id": h.resource_id,
                "resource_name": h.resource_name,
                "organiser": h.organiser,
                "subject": h.subject,
                "start": h.first_start,
                "end": h.first_end,
                "reasons": h.last_reasons,
            })
        })
        .collect();
    Ok(Json(json!({ "circuits": circuits, "held": held })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    verdict: String,
    #[serde(default)]
    comment: String,
}

/// Approves or refuses a held booking, as one of its approvers or a
/// manager of its resource.
pub async fn decide(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>> {
    let user = ctx.require(Role::Agent)?;
    let b: DecideBody = body(&bytes)?;
    let approval = match b.verdict.as_str() {
        "approve" => crate::web::actions::Approval::Approve,
        "refuse" => crate::web::actions::Approval::Refuse,
        _ => return Err(WebError::BadRequest("verdict is approve or refuse".into())),
    };
    let done = crate::web::actions::decide(&state, user, id, approval, &b.comment).await?;
    Ok(Json(json!({ "booking_id": id, "done": done })))
}
