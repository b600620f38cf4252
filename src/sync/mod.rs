//! Mailbox workers: read each resource mailbox's Inbox, turn meeting
//! messages into decisions, and send the answers through the outbox.
//!
//! Order of effects, and why nothing is lost or doubled:
//! 1. changes are read from the stored SyncState;
//! 2. each request is decided and recorded with its reply command in one
//!    transaction (a request seen twice, same UID and sequence, is recognised
//!    and not decided again);
//! 3. only then is the new SyncState saved. A crash between 2 and 3 reads the
//!    same changes again, which step 2 recognises.
//!
//! The outbox worker sends replies; a reply whose meeting request is gone
//! from the mailbox has already taken effect (Exchange removes a request once
//! it is answered), so a command retried after a crash is never sent twice.

pub mod approvals;
pub mod outbox;
pub mod reconcile;
pub mod watch;

use crate::clock::SharedClock;
use crate::exchange::{Exchange, ExchangeError, FolderChange, MeetingMessage, MessageKind};
use crate::metrics::Metrics;
use crate::store::bookings::Source;
use crate::store::requests::{IncomingRequest, Recorded};
use crate::store::sync::Mailbox;
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything a worker needs.
pub struct SyncContext<E: Exchange> {
    pub store: Store,
    /// One Exchange per configured endpoint, by name.
    pub exchanges: HashMap<String, E>,
    pub clock: SharedClock,
    /// This instance's name in leases.
    pub instance: String,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no [[exchange]] named {0} in the configuration")]
    UnknownEndpoint(String),
    #[error("Exchange: {0}")]
    Exchange(#[from] ExchangeError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("the lease on the mailbox was lost")]
    LeaseLost,
}

/// What one pass over a mailbox did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub decided: usize,
    pub cancelled: usize,
    pub filed: usize,
    /// The stored SyncState was refused and the Inbox read from scratch.
    pub resynced: bool,
}

impl<E: Exchange> SyncContext<E> {
    pub(crate) fn exchange(&self, endpoint: &str) -> Result<&E, SyncError> {
        self.exchanges
            .get(endpoint)
            .ok_or_else(|| SyncError::UnknownEndpoint(endpoint.to_owned()))
    }

    /// Reads every change waiting in the mailbox's Inbox and acts on it.
    pub async fn sync_mailbox(&self, mailbox: &Mailbox) -> Result<PassReport, SyncError> {
        let exchange = self.exchange(&mailbox.endpoint)?;
        let mut report = PassReport::default();
        let mut state = if mailbox.resync_requested {
            None
        } else {
            mailbox.inbox_sync_state.clone()
        };
        loop {
            let page = match exchange.inbox_changes(&mailbox.smtp, state.as_deref()).await {
                Ok(p) => p,
                Err(ExchangeError::InvalidSyncState) if state.is_some() => {
                    // Exchange forgot the state (mailbox moved, state expired):
                    // read everything again; decisions already taken are
                    // recognised by UID and sequence.
                    tracing::warn!(mailbox.smtp = %mailbox.smtp, "sync.state_invalid");
                    report.resynced = true;
                    state = None;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let ids: Vec<String> = page
                .changes
                .iter()
                .filter_map(|c| match c {
                    FolderChange::Upsert(id) => Some(id.clone()),
                    FolderChange::Delete(_) => None,
                })
                .collect();
            // GetItem in slices, as Exchange limits the ids per call.
            for chunk in ids.chunks(50) {
                let messages = exchange.meeting_messages(&mailbox.smtp, chunk).await?;
                for m in messages {
                    self.process(exchange, mailbox, &m, &mut report).await?;
                }
            }
            let now = self.clock.now();
            if !self
                .store
                .save_inbox_state(&self.instance, mailbox.resource_id, Some(&page.sync_state), now)
                .await?
            {
                return Err(SyncError::LeaseLost);
            }
            state = Some(page.sync_state);
            if !page.more {
                break;
            }
        }
        Ok(report)
    }

    /// A message about one occurrence of a series: when the series is
    /// booked on this resource, the occurrence is moved (and decided again
    /// for its new slot) or cancelled in the stored series. False when the
    /// series is not booked here.
    async fn occurrence_message(
        &self,
        exchange: &E,
        mailbox: &Mailbox,
        m: &MeetingMessage,
        uid: &str,
        original_start: chrono::DateTime<chrono::Utc>,
        report: &mut PassReport,
    ) -> Result<bool, SyncError> {
        use crate::store::occurrences::OccurrenceChange;
        let started = crate::clock::monotonic();
        let now = self.clock.now();
        let change = match (&m.kind, &m.when) {
            (MessageKind::Request, Some(crate::domain::When::Single { start, end })) => {
                self.store
                    .move_occurrence(
                        mailbox.resource_id,
                        uid,
                        original_start,
                        *start,
                        *end,
                        m.sequence,
                        &m.item_id,
                        now,
                    )
                    .await?
            }
            (MessageKind::Cancellation, _) => {
                self.store
                    .cancel_occurrence(mailbox.resource_id, uid, original_start, m.sequence, now)
                    .await?
            }
            _ => return Ok(false),
        };
        match change {
            OccurrenceChange::NoSeries => return Ok(false),
            OccurrenceChange::Moved {
                booking_id,
                accepted,
                held,
            } => {
                let outcome = match (accepted, held) {
                    (false, _) => "decline",
                    (true, true) => "hold",
                    (true, false) => "accept",
                };
                self.metrics.decision(outcome, started.elapsed());
                tracing::info!(
                    mailbox.smtp = %mailbox.smtp,
                    booking.uid = %uid,
                    booking.id = %booking_id,
                    booking.occurrence = %original_start,
                    decision.outcome = outcome,
                    "decision.occurrence"
                );
                report.decided += 1;
            }
            OccurrenceChange::Cancelled { booking_id } => {
                tracing::info!(
                    mailbox.smtp = %mailbox.smtp,
                    booking.uid = %uid,
                    booking.id = %booking_id,
                    booking.occurrence = %original_start,
                    "cancellation.occurrence"
                );
                report.cancelled += 1;
                exchange.remove(&mailbox.smtp, &m.item_id).await?;
            }
            OccurrenceChange::Unchanged { .. } => {
                // A message read twice: its answer is already queued (a
                // request) or it needs none (a cancellation).
                if m.kind == MessageKind::Cancellation {
                    exchange.remove(&mailbox.smtp, &m.item_id).await?;
                }
            }
        }
        Ok(true)
    }

    async fn process(
        &self,
        exchange: &E,
        mailbox: &Mailbox,
        m: &MeetingMessage,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        let started = crate::clock::monotonic();
        if let (Some(rid), Some(uid)) = (m.recurrence_id, &m.uid)
            && self.occurrence_message(exchange, mailbox, m, uid, rid, report).await?
        {
            return Ok(());
        }
        match (&m.kind, &m.uid, &m.when, &m.organiser) {
            (MessageKind::Request, Some(uid), Some(when), Some(organiser)) => {
                let now = self.clock.now();
                // A request about one occurrence of a series not booked
                // here (the resource was invited to that occurrence alone)
                // is kept apart under its own key.
                let uid = match m.recurrence_id {
                    Some(rid) => format!("{uid}#{}", rid.format("%Y%m%dT%H%M%SZ")),
                    None => uid.clone(),
                };
                let req = IncomingRequest {
                    resource_id: mailbox.resource_id,
                    uid,
                    sequence: m.sequence,
                    source: Source::Exchange,
                    organiser_address: organiser.clone(),
                    organiser_name: m.organiser_name.clone(),
                    subject: m.subject.clone(),
                    attendees: m.attendees,
                    when: when.clone(),
                    exchange_item_id: Some(m.item_id.clone()),
                    requested_at: m.received_at.unwrap_or(now),
                };
                match self
                    .store
                    .record_request_to(&req, m.destination.as_deref(), now)
                    .await?
                {
                    Recorded::Decided {
                        booking_id,
                        decision_id,
                        decision,
                        ..
                    } => {
                        let outcome = decision.kind();
                        let codes = decision.reason_codes().join(",");
                        self.metrics.decision(outcome, started.elapsed());
                        tracing::info!(
                            mailbox.smtp = %mailbox.smtp,
                            booking.uid = %req.uid,
                            booking.id = %booking_id,
                            booking.sequence = req.sequence,
                            decision.id = decision_id,
                            decision.outcome = outcome,
                            decision.reasons = %codes,
                            organiser = %organiser,
                            "decision"
                        );
                        if let Some(by) = &m.forwarded_by {
                            // Decided as the organiser's request; who
                            // forwarded it is kept in the audit log.
                            tracing::info!(booking.uid = %req.uid, booking.id = %booking_id, forwarded_by = %by, "request.forwarded");
                            self.store
                                .record_audit(
                                    now,
                                    by,
                                    "booking.forwarded",
                                    "booking",
                                    Some(&booking_id.to_string()),
                                    serde_json::json!({ "uid": req.uid, "organiser": organiser, "mailbox": mailbox.smtp }),
                                )
                                .await?;
                        }
                        report.decided += 1;
                    }
                    Recorded::AlreadyDecided { .. } => {}
                    Recorded::Stale { .. } => {
                        // An older version of a meeting already decided at a
                        // newer sequence: it needs no answer.
                        exchange.remove(&mailbox.smtp, &m.item_id).await?;
                        report.filed += 1;
                    }
                }
            }
            (MessageKind::Cancellation, Some(uid), _, _) => {
                let now = self.clock.now();
                let uid = match m.recurrence_id {
                    Some(rid) => format!("{uid}#{}", rid.format("%Y%m%dT%H%M%SZ")),
                    None => uid.clone(),
                };
                if self
                    .store
                    .cancel_request(mailbox.resource_id, &uid, m.sequence, now)
                    .await?
                {
                    tracing::info!(mailbox.smtp = %mailbox.smtp, booking.uid = %uid, "cancellation");
                    report.cancelled += 1;
                }
                exchange.remove(&mailbox.smtp, &m.item_id).await?;
            }
            _ => {
                // An approver's answer to an approval request (a vote, a
                // reply, an automatic reply) is applied to its circuit.
                if m.kind == MessageKind::Other && approvals::handle(self, exchange, mailbox, m).await? {
                    report.filed += 1;
                    return Ok(());
                }
                // Responses copied to the resource, ordinary mail, or a request
                // without usable times: filed, never decided.
                tracing::info!(
                    mailbox.smtp = %mailbox.smtp,
                    item.kind = ?m.kind,
                    item.subject = m.subject.as_deref().unwrap_or(""),
                    "message.filed"
                );
                exchange.remove(&mailbox.smtp, &m.item_id).await?;
                self.metrics.message_filed();
                report.filed += 1;
            }
        }
        Ok(())
    }
}
