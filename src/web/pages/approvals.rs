//! The approval pages: the queue (answers awaited by validation circuits,
//! and held bookings for their resources' managers), the landing page of
//! single-use approval links, and the blackouts managers declare.

use super::bookings::FlashQuery;
use super::{Base, reason_texts, render, see_other, span};
use crate::domain::Scope;
use crate::store::circuits::{Answered, LinkRefusal, Verdict};
use crate::web::WebState;
use crate::web::actions::{self, Approval};
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
struct HeldLine {
    id: Uuid,
    resource: String,
    organiser: String,
    subject: String,
    when: String,
    reasons: Vec<String>,
}

/// A booking waiting for this person's answer in its validation circuit.
struct CircuitLine {
    id: Uuid,
    resource: String,
    organiser: String,
    subject: String,
    when: String,
    circuit: String,
    step: String,
    reasons: Vec<String>,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    base: Base,
    circuit_lines: Vec<CircuitLine>,
    lines: Vec<HeldLine>,
}

/// The approval queue: the answers a circuit awaits from this person (any
/// role: an approver need not manage resources), then, for managers, the
/// held bookings of their resources that no circuit handles.
pub async fn queue(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let lang = ctx.lang;
    let no_subject = || lang.text("bookings.no_subject").to_owned();
    let (pending, held) = actions::approval_queue(&state, user).await?;
    let circuit_lines = pending
        .into_iter()
        .map(|p| CircuitLine {
            id: p.booking_id,
            when: match p.facts.first {
                Some((s, e)) => span(lang, p.facts.tz.name(), s, e),
                None => "—".into(),
            },
            resource: p.facts.resource,
            organiser: p.facts.organiser,
            subject: if p.facts.subject.is_empty() {
                no_subject()
            } else {
                p.facts.subject
            },
            circuit: p.circuit,
            step: p.step,
            reasons: p.reasons,
        })
        .collect();
    let mut lines = Vec::new();
    for h in held {
        lines.push(HeldLine {
            id: h.id,
            resource: h.resource_name,
            organiser: h.organiser,
            subject: h.subject.unwrap_or_else(no_subject),
            when: match (h.first_start, h.first_end) {
                (Some(s), Some(e)) => span(lang, &h.time_zone, s, e),
                _ => "—".into(),
            },
            reasons: reason_texts(lang, &h.last_reasons),
        });
    }
    render(&ApprovalsPage {
        base: Base::new(&ctx, "approvals.title").with_flash(q.msg.as_deref()),
        circuit_lines,
        lines,
    })
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    verdict: String,
    #[serde(default)]
    comment: String,
}

/// An answer from the queue. A booking in a circuit takes the answer of one
/// of its current approvers (recorded with the channel `web`); any other held
/// booking, a manager's of the resource.
pub async fn decide(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<DecideForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let approval = match form.verdict.as_str() {
        "approve" => Approval::Approve,
        "refuse" => Approval::Refuse,
        _ => return Err(WebError::BadRequest(ctx.lang.text("error.bad_request").into())),
    };
    let done = actions::decide(&state, user, id, approval, &form.comment).await?;
    Ok(see_other(if done {
        "/approvals?msg=approvals.done"
    } else {
        "/approvals?msg=approvals.gone"
    }))
}

/// The landing page of a single-use approval link.
#[derive(Template)]
#[template(path = "circuit_link.html")]
struct LinkPage {
    base: Base,
    token: String,
    /// The request, while the link may be used.
    view: Option<LinkLine>,
    /// Why the link cannot (or can no longer) be used, or that it was.
    message: Option<&'static str>,
    done: bool,
}

struct LinkLine {
    approver: String,
    resource: String,
    organiser: String,
    subject: String,
    when: String,
    circuit: String,
    step: String,
    reasons: Vec<String>,
}

fn refusal(r: LinkRefusal) -> (StatusCode, &'static str) {
    match r {
        LinkRefusal::Invalid => (StatusCode::FORBIDDEN, "link.invalid"),
        LinkRefusal::Expired => (StatusCode::GONE, "link.expired"),
        LinkRefusal::AlreadyUsed => (StatusCode::GONE, "link.used"),
    }
}

fn link_page(
    ctx: &Ctx,
    token: &str,
    status: StatusCode,
    message: Option<&'static str>,
    done: bool,
) -> Result<Response> {
    let page = LinkPage {
        base: Base::new(ctx, "link.title"),
        token: token.to_owned(),
        view: None,
        message: message.map(|k| ctx.lang.text(k)),
        done,
    };
    Ok((status, render(&page)?).into_response())
}

/// Shows what the link is about and asks for the answer. Opening it spends
/// nothing (mail filters open links); only the form's POST does. No login is
/// needed: the signed, single-use token stands for the approver.
pub async fn link(State(state): State<WebState>, ctx: Ctx, Path(token): Path<String>) -> Result<Response> {
    let lang = ctx.lang;
    match state.store.approval_link(&token, state.clock.now()).await? {
        Ok(v) => render(&LinkPage {
            base: Base::new(&ctx, "link.title"),
            token,
            view: Some(LinkLine {
                approver: v.approver_name,
                when: match v.facts.first {
                    Some((s, e)) => span(lang, v.facts.tz.name(), s, e),
                    None => "—".into(),
                },
                resource: v.facts.resource,
                organiser: v.facts.organiser,
                subject: v.facts.subject,
                circuit: v.circuit,
                step: v.step,
                reasons: v.reasons,
            }),
            message: None,
            done: false,
        }),
        Err(r) => {
            let (status, key) = refusal(r);
            link_page(&ctx, &token, status, Some(key), false)
        }
    }
}

pub async fn link_answer(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(token): Path<String>,
    Form(form): Form<DecideForm>,
) -> Result<Response> {
    let verdict = match form.verdict.as_str() {
        "approve" => Verdict::Approve,
        "refuse" => Verdict::Refuse,
        _ => return Err(WebError::BadRequest(ctx.lang.text("error.bad_request").into())),
    };
    let comment: String = form.comment.chars().take(2000).collect();
    match state
        .store
        .answer_by_link(&token, verdict, &comment, state.clock.now())
        .await?
    {
        Ok(Answered::Applied(_)) => link_page(&ctx, &token, StatusCode::OK, Some("link.done"), true),
        Ok(Answered::NotAnApprover | Answered::Over | Answered::NoCircuit) => {
            link_page(&ctx, &token, StatusCode::CONFLICT, Some("approvals.gone"), false)
        }
        Err(r) => {
            let (status, key) = refusal(r);
            link_page(&ctx, &token, status, Some(key), false)
        }
    }
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
    let resources = actions::managed_resources(state, user).await?;
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
