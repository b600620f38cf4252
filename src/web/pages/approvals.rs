//! The managers' pages: the approval queue of held bookings and the
//! blackouts of the resources they manage.

use super::bookings::FlashQuery;
use super::{Base, reason_texts, render, see_other, span};
use crate::domain::Scope;
use crate::store::web::{ManagerVerdict, ResourceRow};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::session::{Ctx, Role, User};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// The resources `user` manages.
async fn managed(state: &WebState, user: &User) -> Result<Vec<ResourceRow>> {
    Ok(state
        .store
        .list_resources()
        .await?
        .into_iter()
        .filter(|r| user.manages(r))
        .collect())
}

struct HeldLine {
    id: Uuid,
    resource: String,
    organiser: String,
    subject: String,
    when: String,
    reasons: Vec<String>,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    base: Base,
    lines: Vec<HeldLine>,
}

pub async fn queue(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let lang = ctx.lang;
    let held = if user.role == Role::Admin {
        state.store.held_bookings(None).await?
    } else {
        let ids: Vec<Uuid> = managed(&state, user).await?.iter().map(|r| r.id).collect();
        state.store.held_bookings(Some(&ids)).await?
    };
    let lines = held
        .into_iter()
        .map(|h| HeldLine {
            id: h.id,
            resource: h.resource_name,
            organiser: h.organiser,
            subject: h.subject.unwrap_or_else(|| lang.text("bookings.no_subject").to_owned()),
            when: match (h.first_start, h.first_end) {
                (Some(s), Some(e)) => span(lang, &h.time_zone, s, e),
                _ => "—".into(),
            },
            reasons: reason_texts(lang, &h.last_reasons),
        })
        .collect();
    render(&ApprovalsPage {
        base: Base::new(&ctx, "approvals.title").with_flash(q.msg.as_deref()),
        lines,
    })
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    verdict: String,
    #[serde(default)]
    comment: String,
}

pub async fn decide(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<DecideForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let verdict = match form.verdict.as_str() {
        "approve" => ManagerVerdict::Approve,
        "refuse" => ManagerVerdict::Refuse,
        _ => return Err(WebError::BadRequest(ctx.lang.text("error.bad_request").into())),
    };
    let Some(b) = state.store.booking_detail(id).await? else {
        return Err(WebError::NotFound);
    };
    let Some(resource) = state.store.resource_row(b.resource_id).await? else {
        return Err(WebError::NotFound);
    };
    if !user.manages(&resource) {
        return Err(WebError::Forbidden);
    }
    let comment: String = form.comment.chars().take(2000).collect();
    let done = state
        .store
        .decide_held_booking(id, verdict, user.person_id, &comment, state.clock.now())
        .await?;
    Ok(see_other(if done {
        "/approvals?msg=approvals.done"
    } else {
        "/approvals?msg=approvals.gone"
    }))
}

struct BlackoutLine {
    resource: String,
    when: String,
    reason: String,
}

struct ResourceChoice {
    id: Uuid,
    label: String,
}

#[derive(Template)]
#[template(path = "blackouts.html")]
struct BlackoutsPage {
    base: Base,
    resources: Vec<ResourceChoice>,
    lines: Vec<BlackoutLine>,
    error: Option<&'static str>,
    reason: String,
}

async fn blackouts_page(
    state: &WebState,
    ctx: &Ctx,
    user: &User,
    error: Option<&'static str>,
    reason: String,
) -> Result<BlackoutsPage> {
    let lang = ctx.lang;
    let resources = managed(state, user).await?;
    let ids: Vec<Uuid> = resources.iter().map(|r| r.id).collect();
    let lines = state
        .store
        .blackouts_of(&ids, state.clock.now())
        .await?
        .into_iter()
        .map(|b| BlackoutLine {
            resource: b.resource_name,
            when: span(lang, "Europe/Paris", b.start, b.end),
            reason: b.reason,
        })
        .collect();
    Ok(BlackoutsPage {
        base: Base::new(ctx, "blackouts.title"),
        resources: resources
            .iter()
            .map(|r| ResourceChoice {
                id: r.id,
                label: super::admin::resource_label(r),
            })
            .collect(),
        lines,
        error,
        reason,
    })
}

pub async fn blackouts(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let mut page = blackouts_page(&state, &ctx, user, None, String::new()).await?;
    page.base = page.base.with_flash(q.msg.as_deref());
    render(&page)
}

#[derive(Debug, Deserialize)]
pub struct BlackoutForm {
    resource: Uuid,
    start: String,
    end: String,
    reason: String,
}

/// A `datetime-local` value read in the resource's time zone.
pub fn local_datetime(s: &str, zone: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M").ok()?;
    super::tz(zone)
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

pub async fn create_blackout(
    State(state): State<WebState>,
    ctx: Ctx,
    Form(form): Form<BlackoutForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let Some(resource) = state.store.resource_row(form.resource).await? else {
        return Err(WebError::NotFound);
    };
    if !user.manages(&resource) {
        return Err(WebError::Forbidden);
    }
    let reason = form.reason.trim();
    let period = match (
        local_datetime(&form.start, &resource.time_zone),
        local_datetime(&form.end, &resource.time_zone),
    ) {
        (Some(s), Some(e)) if e > s && !reason.is_empty() => (s, e),
        _ => {
            let page = blackouts_page(
                &state,
                &ctx,
                user,
                Some(ctx.lang.text("blackouts.invalid")),
                form.reason.clone(),
            )
            .await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    let now = state.clock.now();
    let id = state
        .store
        .create_blackout(Scope::Resource(resource.id), period.0, period.1, reason, now)
        .await?;
    state
        .store
        .record_audit(
            now,
            &user.person_id.to_string(),
            "blackout.create",
            "blackout",
            Some(&id.to_string()),
            serde_json::json!({ "resource": resource.id, "start": period.0, "end": period.1, "reason": reason }),
        )
        .await?;
    Ok(see_other("/blackouts?msg=blackouts.created"))
}
