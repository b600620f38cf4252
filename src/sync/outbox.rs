//! The outbox worker: sends the commands written with each decision, with
//! retries and backoff, exactly once in effect.

use super::{SyncContext, SyncError};
use crate::exchange::{Exchange, ExchangeError, NewMeeting, ReplyKind};
use crate::store::sync::OutboxCommand;
use chrono::Duration;

/// Attempts before a command is given up and shown as dead on the web site.
pub const MAX_ATTEMPTS: i32 = 12;

/// The pause before attempt `attempts + 1`: exponential from 5 s, at most an
/// hour, with a server-asked pause taking precedence.
pub fn retry_delay(attempts: i32, server: Option<std::time::Duration>) -> Duration {
    if let Some(b) = server {
        return Duration::from_std(b).unwrap_or(Duration::hours(1));
    }
    let secs = 5i64.saturating_mul(1i64 << attempts.clamp(0, 10));
    Duration::seconds(secs.min(3600))
}

/// What happened to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Done,
    /// The request was no longer in the mailbox: answered before a crash, or
    /// withdrawn by the organiser. Nothing was sent again.
    AlreadyGone,
    Retry,
    Dead,
}

impl<E: Exchange> SyncContext<E> {
    /// Sends up to `limit` due commands, claimed for `ttl` (another instance
    /// takes over what is left if this one dies); returns what became of each.
    pub async fn run_outbox(&self, limit: i64, ttl: Duration) -> Result<Vec<(i64, Sent)>, SyncError> {
        let now = self.clock.now();
        let commands = self.store.claim_outbox(&self.instance, limit, now, ttl).await?;
        let mut out = Vec::with_capacity(commands.len());
        for c in commands {
            let sent = self.send(&c).await?;
            out.push((c.id, sent));
        }
        if let Ok(depth) = self.store.outbox_depth().await {
            self.metrics.set_outbox_depth(depth);
        }
        Ok(out)
    }

    async fn send(&self, c: &OutboxCommand) -> Result<Sent, SyncError> {
        let result = match self.exchanges.get(&c.endpoint) {
            None => Err(ExchangeError::Permanent(format!(
                "no [[exchange]] named {}",
                c.endpoint
            ))),
            Some(exchange) => self.effect(exchange, c).await,
        };
        let now = self.clock.now();
        match result {
            Ok(()) => {
                self.store.outbox_done(c.id, &self.instance, now, None).await?;
                self.metrics.outbox_sent();
                tracing::info!(outbox.id = c.id, outbox.kind = %c.kind, mailbox.smtp = %c.mailbox, "outbox.sent");
                Ok(Sent::Done)
            }
            Err(ExchangeError::ItemNotFound) => {
                self.store
                    .outbox_done(
                        c.id,
                        &self.instance,
                        now,
                        Some("the meeting request is no longer in the mailbox"),
                    )
                    .await?;
                tracing::info!(outbox.id = c.id, mailbox.smtp = %c.mailbox, "outbox.already_gone");
                Ok(Sent::AlreadyGone)
            }
            Err(e) => {
                self.metrics.outbox_failed();
                let server = match &e {
                    ExchangeError::Busy { back_off } => {
                        self.metrics.backoff();
                        *back_off
                    }
                    _ => None,
                };
                let give_up = c.attempts + 1 >= MAX_ATTEMPTS;
                let retry_at = (!give_up).then(|| now + retry_delay(c.attempts, server));
                self.store
                    .outbox_failed(c.id, &self.instance, &e.to_string(), retry_at)
                    .await?;
                tracing::warn!(outbox.id = c.id, mailbox.smtp = %c.mailbox, error = %e, dead = give_up, "outbox.failed");
                Ok(if give_up { Sent::Dead } else { Sent::Retry })
            }
        }
    }

    async fn effect(&self, exchange: &E, c: &OutboxCommand) -> Result<(), ExchangeError> {
        match c.kind.as_str() {
            "cancel_meeting" => return cancel_meeting(exchange, c).await,
            "create_meeting" => return create_meeting(exchange, c).await,
            _ => {}
        }
        // Messages, and final answers of validation circuits (sent to the
        // meeting in the calendar, its request being gone), are sent there.
        if let Some(result) = super::approvals::effect(exchange, c).await {
            return result;
        }
        let kind = match c.kind.as_str() {
            "accept" => ReplyKind::Accept,
            "tentative" => ReplyKind::Tentative,
            "decline" => ReplyKind::Decline,
            other => {
                return Err(ExchangeError::Permanent(format!(
                    "outbox command {other} is not supported yet"
                )));
            }
        };
        let item = c.payload["reference_item_id"]
            .as_str()
            .ok_or_else(|| ExchangeError::Permanent("reply without reference_item_id".into()))?;
        let body = c.payload["body"].as_str().unwrap_or_default();
        exchange.reply(&c.mailbox, item, kind, body).await
    }
}

/// A booking made on the web site (`store::requests`), created in its
/// resource calendar with its organiser invited. A meeting with its UID
/// already there was created before a crash, and is not created again.
async fn create_meeting<E: Exchange>(exchange: &E, c: &OutboxCommand) -> Result<(), ExchangeError> {
    let meeting: NewMeeting = serde_json::from_value(c.payload.clone())
        .map_err(|e| ExchangeError::Permanent(format!("a meeting to create that cannot be read: {e}")))?;
    let entries = exchange
        .calendar(
            &c.mailbox,
            meeting.start - Duration::hours(1),
            meeting.end + Duration::hours(1),
        )
        .await?;
    if entries.iter().any(|e| e.uid.as_deref() == Some(meeting.uid.as_str())) {
        tracing::info!(outbox.id = c.id, mailbox.smtp = %c.mailbox, "outbox.meeting_already_there");
        return Ok(());
    }
    exchange.create_meeting(&c.mailbox, &meeting).await
}

/// A booking cancelled on the web site (`store::cancel`): its meeting is
/// found in the resource calendar by UID, then cancelled (the resource
/// organised it: its attendee gets the cancellation) or declined (the
/// resource was invited from Outlook: the organiser gets the refusal). Either
/// way Exchange takes it out of the resource calendar, which is what makes a
/// retry after a crash harmless: a meeting no longer there was dealt with
/// already, and nothing is sent again.
async fn cancel_meeting<E: Exchange>(exchange: &E, c: &OutboxCommand) -> Result<(), ExchangeError> {
    let p = &c.payload;
    let uid = p["calendar_uid"]
        .as_str()
        .ok_or_else(|| ExchangeError::Permanent("cancellation without calendar_uid".into()))?;
    let (Some(start), Some(end)) = (super::approvals::time(&p["start"]), super::approvals::time(&p["end"])) else {
        return Err(ExchangeError::Permanent("cancellation without its times".into()));
    };
    let by_resource = p["organised"].as_str() == Some(crate::store::cancel::ORGANISED_BY_RESOURCE);
    let body = p["body"].as_str().unwrap_or_default();
    let entries = exchange
        .calendar(&c.mailbox, start - Duration::hours(1), end + Duration::hours(1))
        .await?;
    // A series shows once per occurrence; each item is answered once.
    let mut items: Vec<String> = Vec::new();
    for e in entries {
        if e.uid.as_deref() == Some(uid) && !items.contains(&e.item_id) {
            items.push(e.item_id);
        }
    }
    if items.is_empty() {
        return Err(ExchangeError::ItemNotFound);
    }
    for item in items {
        let done = if by_resource {
            exchange.cancel_meeting(&c.mailbox, &item, body).await
        } else {
            exchange.reply(&c.mailbox, &item, ReplyKind::Decline, body).await
        };
        match done {
            // Gone meanwhile (answering one occurrence took the series).
            Ok(()) | Err(ExchangeError::ItemNotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps_and_yields_to_the_server() {
        assert_eq!(retry_delay(0, None), Duration::seconds(5));
        assert_eq!(retry_delay(3, None), Duration::seconds(40));
        assert_eq!(retry_delay(30, None), Duration::hours(1));
        assert_eq!(
            retry_delay(0, Some(std::time::Duration::from_millis(2500))),
            Duration::milliseconds(2500)
        );
    }
}
