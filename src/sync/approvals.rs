//! Approvers' answers read from a resource mailbox, and the messages and
//! final answers of validation circuits sent from it.
//!
//! An answer is recognised by the reference resa puts in every approval
//! message's subject, which Outlook keeps in a vote, a reply and an automatic
//! reply. Its sender must be one of the current step's approvers (or the
//! step's backup once it has escalated); anything else is filed like other
//! mail, unread by the circuit.

use super::{SyncContext, SyncError};
use crate::exchange::{Exchange, ExchangeError, MeetingMessage, OutgoingMessage, ReplyKind};
use crate::notify::mail::{Answer, VOTING, read_answer};
use crate::store::circuits::{Answered, Verdict};
use crate::store::sync::{Mailbox, OutboxCommand};
use chrono::{DateTime, Duration, Utc};

/// Applies the message if it answers an approval request; `true` when it
/// did (the message is then removed from the Inbox).
pub async fn handle<E: Exchange>(
    ctx: &SyncContext<E>,
    exchange: &E,
    mailbox: &Mailbox,
    m: &MeetingMessage,
) -> Result<bool, SyncError> {
    let Some(booking_id) = m.subject.as_deref().and_then(crate::notify::find_reference) else {
        return Ok(false);
    };
    let Some(mail) = exchange.read_mail(&mailbox.smtp, &m.item_id).await? else {
        return Ok(false);
    };
    let Some((answer, channel)) = read_answer(&mail.subject, &mail.body, mail.item_class.as_deref(), None) else {
        tracing::info!(mailbox.smtp = %mailbox.smtp, booking.id = %booking_id, "approval.unreadable_answer");
        return Ok(false);
    };
    let Some(from) = mail.from.clone().or_else(|| m.organiser.clone()) else {
        return Ok(false);
    };
    let person = match crate::directory::parse_organiser(&from) {
        Some(address) => ctx.store.resolve_organiser(&address).await?,
        None => None,
    };
    let Some(person) = person else {
        tracing::warn!(mailbox.smtp = %mailbox.smtp, booking.id = %booking_id, from = %from, "approval.unknown_sender");
        return Ok(false);
    };
    let (verdict, comment) = match answer {
        Answer::Approve { comment } => (Verdict::Approve, comment),
        Answer::Refuse { comment } => (Verdict::Refuse, comment),
        Answer::Absent => (Verdict::Absent, String::new()),
    };
    let now = ctx.clock.now();
    let outcome = ctx
        .store
        .answer_circuit(booking_id, person.id, verdict, channel.as_str(), &comment, now)
        .await?;
    tracing::info!(
        mailbox.smtp = %mailbox.smtp,
        booking.id = %booking_id,
        approver = %person.id,
        approval.verdict = ?verdict,
        approval.channel = channel.as_str(),
        approval.outcome = ?outcome,
        "approval.answer"
    );
    if outcome == Answered::NoCircuit {
        return Ok(false);
    }
    exchange.remove(&mailbox.smtp, &m.item_id).await?;
    Ok(true)
}

pub(super) fn time(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Sends the outbox commands of circuits and notifications: `message`, and
/// the final answer of a circuit (`calendar_uid` in the payload). `None` for
/// any other command.
pub async fn effect<E: Exchange>(exchange: &E, c: &OutboxCommand) -> Option<Result<(), ExchangeError>> {
    let p = &c.payload;
    if c.kind == "message" {
        let to: Vec<String> = p["to"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if to.is_empty() {
            return Some(Err(ExchangeError::Permanent("message without recipient".into())));
        }
        let message = OutgoingMessage {
            to,
            subject: p["subject"].as_str().unwrap_or_default().to_owned(),
            body: p["body"].as_str().unwrap_or_default().to_owned(),
            voting: if p["voting"].as_bool().unwrap_or(false) {
                VOTING.iter().map(|s| (*s).to_owned()).collect()
            } else {
                Vec::new()
            },
        };
        return Some(exchange.send_message(&c.mailbox, &message).await);
    }
    let uid = p["calendar_uid"].as_str()?;
    let kind = match c.kind.as_str() {
        "accept" => ReplyKind::Accept,
        // A booking held after its acceptance (trip details outside the
        // territory): the meeting turns tentative while the circuit runs.
        "tentative" => ReplyKind::Tentative,
        "decline" => ReplyKind::Decline,
        _ => return None,
    };
    let (Some(start), Some(end)) = (time(&p["start"]), time(&p["end"])) else {
        return Some(Err(ExchangeError::Permanent("circuit answer without its times".into())));
    };
    let body = p["body"].as_str().unwrap_or_default();
    let entries = match exchange
        .calendar(&c.mailbox, start - Duration::hours(1), end + Duration::hours(1))
        .await
    {
        Ok(e) => e,
        Err(e) => return Some(Err(e)),
    };
    let Some(entry) = entries
        .iter()
        .filter(|e| e.uid.as_deref() == Some(uid))
        .min_by_key(|e| (e.start - start).num_seconds().abs())
    else {
        // The meeting is gone from the calendar (cancelled, or answered
        // "decline" before a crash): nothing left to answer.
        return Some(Err(ExchangeError::ItemNotFound));
    };
    Some(exchange.reply(&c.mailbox, &entry.item_id, kind, body).await)
}
