//! Reconciliation: compares a resource's calendar in Exchange with the slots
//! the store says it holds, and records the differences for the web site.
//!
//! Items that did not come through resa (someone with rights on the mailbox
//! edited the calendar), slots resa accepted that vanished from Exchange, and
//! meetings whose times differ are all reported; none is changed silently.

use super::{SyncContext, SyncError};
use crate::exchange::Exchange;
use crate::store::sync::{Drift, Mailbox};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

/// How far ahead a reconciliation pass looks.
pub const WINDOW_DAYS: i64 = 90;

/// The meeting's UID as stored: an occurrence-specific request is kept as
/// `uid#recurrence-id`, which Exchange knows by the series' UID.
fn series_uid(uid: &str) -> &str {
    uid.split('#').next().unwrap_or(uid)
}

impl<E: Exchange> SyncContext<E> {
    /// Compares one mailbox's calendar with the store; returns the number of
    /// new differences.
    pub async fn reconcile(&self, mailbox: &Mailbox) -> Result<usize, SyncError> {
        let exchange = self
            .exchanges
            .get(&mailbox.endpoint)
            .ok_or_else(|| SyncError::UnknownEndpoint(mailbox.endpoint.clone()))?;
        let now = self.clock.now();
        let (from, to) = (now, now + Duration::days(WINDOW_DAYS));
        let calendar = exchange.calendar(&mailbox.smtp, from, to).await?;
        let held = self.store.held_slots_detail(mailbox.resource_id, from, to).await?;
        let found = differences(&calendar, &held);
        let added = self.store.record_drift(mailbox.resource_id, &found, now).await?;
        if added > 0 {
            tracing::warn!(mailbox.smtp = %mailbox.smtp, drift.new = added, "reconcile.drift");
        }
        Ok(added)
    }
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// The differences between what Exchange shows and what the store holds.
pub fn differences(calendar: &[crate::exchange::CalendarEntry], held: &[crate::store::sync::HeldSlot]) -> Vec<Drift> {
    let mut out = Vec::new();
    for e in calendar {
        let known = e
            .uid
            .as_deref()
            .is_some_and(|u| held.iter().any(|h| series_uid(&h.uid) == u));
        if !known {
            out.push(Drift {
                kind: "unknown_item",
                uid: e.uid.clone(),
                exchange_item_id: Some(e.item_id.clone()),
                details: json!({ "start": instant(e.start), "end": instant(e.end), "subject": e.subject }),
            });
        }
    }
    for h in held {
        let same_uid: Vec<_> = calendar
            .iter()
            .filter(|e| e.uid.as_deref() == Some(series_uid(&h.uid)))
            .collect();
        if same_uid.iter().any(|e| e.start == h.start && e.end == h.end) {
            continue;
        }
        if same_uid.is_empty() {
            // An answer still in the outbox is not in Exchange yet.
            if !h.reply_pending {
                out.push(Drift {
                    kind: "missing_item",
                    uid: Some(h.uid.clone()),
                    exchange_item_id: None,
                    details: json!({ "start": instant(h.start), "end": instant(h.end), "booking": h.booking_id }),
                });
            }
        } else if !same_uid.iter().any(|e| e.start <= h.start && h.end <= e.end) && !h.reply_pending {
            out.push(Drift {
                kind: "time_mismatch",
                uid: Some(h.uid.clone()),
                exchange_item_id: same_uid.first().map(|e| e.item_id.clone()),
                details: json!({
                    "start": instant(h.start),
                    "end": instant(h.end),
                    "exchange": same_uid.iter().map(|e| json!({ "start": instant(e.start), "end": instant(e.end) })).collect::<Vec<_>>(),
                    "booking": h.booking_id,
                }),
            });
        }
    }
    out
}
