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
