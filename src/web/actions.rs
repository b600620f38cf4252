//! What the site does, shared by its pages and its JSON API: book a
//! resource, cancel a booking, approve or refuse a held one. Each checks the
//! user's rights on the server; the callers only read their input and shape
//! the answer (a redirection or JSON).

use crate::domain::When;
use crate::domain::recurrence::Recurrence;
use crate::store::bookings::Source;
use crate::store::cancel::{WebCancel, WebCancelled};
use crate::store::circuits::{Answered, PendingApproval, Verdict};
use crate::store::requests::{IncomingRequest, Recorded};
use crate::store::web::{HeldBooking, ManagerVerdict, ResourceRow};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::session::{Role, User};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The longest comment kept with a cancellation or an approval.
pub const COMMENT_MAX: usize = 2000;

/// A booking asked from the site.
#[derive(Debug, Clone)]
pub struct BookInput {
    pub resource: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub recurrence: Option<Recurrence>,
    pub subject: String,
    pub attendees: u32,
}

/// What the engine decided for a booking asked from the site.
#[derive(Debug, Clone)]
pub struct Booked {
    pub booking_id: Uuid,
    /// "accept", "accept_partially", "decline" or "hold".
    pub outcome: &'static str,
    /// The decision's text, as the organiser reads it.
    pub message: String,
    /// The reason codes of a decline or a hold.
    pub reasons: Vec<&'static str>,
    /// An accepted or held booking's meeting waits in the outbox, to be
    /// created in the resource's Exchange calendar (`sync::outbox`).
    pub queued: bool,
}

/// Decides a booking with the rule engine, as the user; an accepted or held
/// one is queued, in the decision's transaction, for creation in Exchange.
pub async fn book(state: &WebState, user: &User, input: BookInput) -> Result<Booked> {
    if input.end <= input.start {
        return Err(WebError::BadRequest("end before start".into()));
    }
    let Some(resource) = state.store.resource_row(input.resource).await? else {
        return Err(WebError::NotFound);
    };
    let Some((name, Some(address))) = state.store.person_contact(user.person_id).await? else {
        return Err(WebError::Forbidden);
    };
    let subject: String = input.subject.trim().chars().take(255).collect();
    let now = state.clock.now();
    let uid = format!("resa-web-{}", Uuid::new_v4());
    let request = IncomingRequest {
        resource_id: resource.id,
        uid,
        sequence: 0,
        source: Source::Web,
        organiser_address: address.clone(),
        organiser_name: Some(name),
        subject: (!subject.is_empty()).then(|| subject.clone()),
        attendees: input.attendees.max(1),
        when: match &input.recurrence {
            Some(r) => When::Series(Box::new(r.clone())),
            None => When::Single {
                start: input.start,
                end: input.end,
            },
        },
        exchange_item_id: None,
        requested_at: now,
    };
    let recorded = state.store.record_request(&request, now).await?;
    let Recorded::Decided {
        booking_id,
        decision,
        message,
        ..
    } = recorded
    else {
        return Err(WebError::Internal("a new web booking was already decided".into()));
    };
    let queued = decision.kind() != "decline";
    if queued {
        state.outbox_queued();
    }
    tracing::info!(booking.id = %booking_id, decision = decision.kind(), "web: booking decided");
    Ok(Booked {
        booking_id,
        outcome: decision.kind(),
        reasons: decision.reason_codes(),
        message,
        queued,
    })
}

/// Whether the user may see and act on a booking: its organiser, an admin,
/// or a manager of its resource.
pub async fn may_see(state: &WebState, user: &User, organiser: Option<Uuid>, resource: Uuid) -> Result<bool> {
    if organiser == Some(user.person_id) || user.role == Role::Admin {
        return Ok(true);
    }
    if user.role < Role::Manager {
        return Ok(false);
    }
    Ok(match state.store.resource_row(resource).await? {
        Some(r) => user.manages(&r),
        None => false,
    })
}

/// Cancels a booking (its organiser, or a manager of its resource, who may
/// leave a comment for the organiser); false when it was already over.
/// Someone who may not see it gets `NotFound`, as if it did not exist.
pub async fn cancel(state: &WebState, user: &User, id: Uuid, comment: &str) -> Result<bool> {
    let Some(b) = state.store.booking_detail(id).await? else {
        return Err(WebError::NotFound);
    };
    if !may_see(state, user, b.organiser_person_id, b.resource_id).await? {
        return Err(WebError::NotFound);
    }
    let comment: String = comment.trim().chars().take(COMMENT_MAX).collect();
    let now = state.clock.now();
    let done = state
        .store
        .cancel_on_web(&WebCancel {
            booking_id: b.id,
            by: user.person_id,
            by_name: &user.name,
            comment: &comment,
            now,
        })
        .await?;
    let WebCancelled::Done { told_organiser } = done else {
        return Ok(false);
    };
    state.outbox_queued();
    state
        .store
        .record_audit(
            now,
            &user.person_id.to_string(),
            "booking.cancel",
            "booking",
            Some(&id.to_string()),
            serde_json::json!({
                "channel": "web",
                "source": b.source,
                "by_manager": b.organiser_person_id != Some(user.person_id),
                "organiser_told": told_organiser,
            }),
        )
        .await?;
    Ok(true)
}

/// Approve or refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    Approve,
    Refuse,
}

/// Answers a held booking: as an approver of its running circuit, or as a
/// manager of its resource when it has none. False when it was no longer
/// waiting.
pub async fn decide(state: &WebState, user: &User, id: Uuid, approval: Approval, comment: &str) -> Result<bool> {
    let comment: String = comment.chars().take(COMMENT_MAX).collect();
    let now = state.clock.now();
    if state.store.has_running_circuit(id).await? {
        let verdict = match approval {
            Approval::Approve => Verdict::Approve,
            Approval::Refuse => Verdict::Refuse,
        };
        return match state
            .store
            .answer_circuit(id, user.person_id, verdict, "web", &comment, now)
            .await?
        {
            Answered::Applied(_) => Ok(true),
            Answered::NotAnApprover => Err(WebError::Forbidden),
            Answered::Over | Answered::NoCircuit => Ok(false),
        };
    }
    if user.role < Role::Manager {
        return Err(WebError::Forbidden);
    }
    let Some(b) = state.store.booking_detail(id).await? else {
        return Err(WebError::NotFound);
    };
    let Some(resource) = state.store.resource_row(b.resource_id).await? else {
        return Err(WebError::NotFound);
    };
    if !user.manages(&resource) {
        return Err(WebError::Forbidden);
    }
    let verdict = match approval {
        Approval::Approve => ManagerVerdict::Approve,
        Approval::Refuse => ManagerVerdict::Refuse,
    };
    Ok(state
        .store
        .decide_held_booking(id, verdict, user.person_id, &comment, now)
        .await?)
}

/// The resources the user manages (`User::manages`), for their approval
/// queue and their blackouts.
pub async fn managed_resources(state: &WebState, user: &User) -> Result<Vec<ResourceRow>> {
    Ok(state
        .store
        .list_resources()
        .await?
        .into_iter()
        .filter(|r| user.manages(r))
        .collect())
}

/// What waits for the user's answer: the steps of validation circuits
/// where they are an approver (any role), then, for managers and admins,
/// the held bookings of their resources that no circuit handles.
pub async fn approval_queue(state: &WebState, user: &User) -> Result<(Vec<PendingApproval>, Vec<HeldBooking>)> {
    let circuits = state.store.pending_approvals(Some(user.person_id)).await?;
    let held = match user.role {
        Role::Admin => state.store.held_bookings(None).await?,
        Role::Manager => {
            let ids: Vec<Uuid> = managed_resources(state, user).await?.iter().map(|r| r.id).collect();
            state.store.held_bookings(Some(&ids)).await?
        }
        Role::Agent => Vec::new(),
    };
    let mut outside = Vec::with_capacity(held.len());
    for h in held {
        if !state.store.has_running_circuit(h.id).await? {
            outside.push(h);
        }
    }
    Ok((circuits, outside))
}
