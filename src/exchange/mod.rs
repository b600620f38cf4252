//! The port through which the rest of resa reaches Exchange, and its EWS
//! adapter ([`ews::EwsExchange`]). A Microsoft Graph adapter can implement the
//! same trait for Exchange Online.
//!
//! The port speaks resa's language: meeting messages with a UID, a sequence
//! number, an organiser and a [`When`]; replies with a text. Wire details
//! (item shapes, change keys, SOAP) stay in the adapter.

pub mod convert;
pub mod ews;

use crate::domain::When;
use chrono::{DateTime, Utc};
use std::future::Future;

/// What a meeting message asks of the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Cancellation,
    /// An attendee's answer copied to the resource (it is filed, not decided).
    Response,
    /// Any other mail: filed, never decided.
    Other,
}

/// A message in a resource mailbox, as the sync layer needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingMessage {
    pub item_id: String,
    pub kind: MessageKind,
    /// The meeting's UID; `None` on mail that is not about a meeting.
    pub uid: Option<String>,
    pub sequence: i32,
    /// SMTP address, or `EX:` + legacy DN when Exchange gives that.
    pub organiser: Option<String>,
    pub organiser_name: Option<String>,
    pub subject: Option<String>,
    /// People invited, resources excluded.
    pub attendees: u32,
    /// `None` when the message carries no usable times.
    pub when: Option<When>,
    /// Set when the request is about one occurrence of a series.
    pub recurrence_id: Option<DateTime<Utc>>,
    /// The item resa answers (the request itself).
    pub received_at: Option<DateTime<Utc>>,
    /// Who sent the request when it is not the organiser: an attendee who
    /// forwarded the invitation (the organiser stays the booker).
    pub forwarded_by: Option<String>,
    /// A vehicle trip's destination, from a "Destination :" line of the body.
    pub destination: Option<String>,
}

/// A message sent from a resource mailbox (notifications, approval requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub to: Vec<String>,
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// Outlook voting buttons, in order (PidLidVerbStream); empty for none.
    pub voting: Vec<String>,
}

/// A mail read from a resource mailbox: an approver's answer, or anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    pub item_id: String,
    /// The sender's SMTP address (or `EX:` and the legacy DN).
    pub from: Option<String>,
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// `IPM.Note`, `IPM.Note.Rules.OofTemplate.Microsoft` (automatic reply)…
    pub item_class: Option<String>,
}

/// How the resource answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Accept,
    Tentative,
    Decline,
}

/// A change seen in a folder since the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderChange {
    /// A new or changed item, by id.
    Upsert(String),
    Delete(String),
}

/// One page of folder changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    pub changes: Vec<FolderChange>,
    /// The state to store and send next time.
    pub sync_state: String,
    /// More changes wait: ask again at once.
    pub more: bool,
}

/// A calendar entry of a resource mailbox, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEntry {
    pub item_id: String,
    pub uid: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub subject: Option<String>,
    /// The resource's own answer: accepted, tentative…
    pub response: Option<String>,
}

/// A meeting resa creates in a resource calendar (a booking made on the web
/// site; the outbox carries it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewMeeting {
    pub uid: String,
    pub subject: String,
    pub body: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub attendee: String,
    /// Held for approval: shown as tentative.
    pub tentative: bool,
    /// A series (daily or weekly, booked on the web): `start`–`end` is its
    /// first occurrence.
    pub recurrence: Option<crate::domain::recurrence::Recurrence>,
}

/// How an endpoint tells resa that something changed in a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifications {
    /// Streaming subscriptions, many mailboxes per connection (Exchange
    /// 2010 SP1 and later).
    Streaming,
    /// Pull subscriptions read with one call per mailbox (Exchange 2007 SP1).
    Pull,
    /// None: the mailbox is polled.
    None,
}

/// The folders resa watches in a resource mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchedFolder {
    /// Meeting messages arrive here.
    Inbox,
    /// Direct edits of the resource's calendar show here (reconciliation).
    Calendar,
}

/// A subscription to a mailbox's Inbox and Calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    /// Pull subscriptions only: where the next read starts.
    pub watermark: Option<String>,
    /// The folders' ids, to tell events apart.
    pub inbox_folder: String,
    pub calendar_folder: String,
}

impl Subscription {
    /// Which watched folder a folder id is.
    pub fn folder(&self, folder_id: &str) -> Option<WatchedFolder> {
        if folder_id == self.inbox_folder {
            Some(WatchedFolder::Inbox)
        } else if folder_id == self.calendar_folder {
            Some(WatchedFolder::Calendar)
        } else {
            None
        }
    }
}

/// An event, reduced to what resa acts on: something changed in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderEvent {
    pub subscription_id: String,
    /// The parent folder's id of the item (or folder) the event is about.
    pub folder_id: String,
}

/// What one read of a pull subscription or one envelope of a stream holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBatch {
    pub events: Vec<FolderEvent>,
    /// Subscriptions the server no longer knows: rebuild them.
    pub lost: Vec<String>,
    /// Pull: more events wait, read again at once.
    pub more: bool,
    /// Stream: the server ended the connection normally; open a new one.
    pub closed: bool,
}

/// An open streaming connection.
pub trait EventStream: Send {
    /// The next batch; `None` when the connection ended without saying so
    /// (dropped).
    fn next(&mut self) -> impl Future<Output = Option<Result<EventBatch, ExchangeError>>> + Send;
}

/// A stream type for ports that have no streaming notifications.
pub struct NoStream;

impl EventStream for NoStream {
    async fn next(&mut self) -> Option<Result<EventBatch, ExchangeError>> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The stored sync state is no longer valid: resync from scratch.
    #[error("sync state no longer valid")]
    InvalidSyncState,
    /// The subscription is gone (server restart, expired, watermark too
    /// old): subscribe again and read the mailbox from its SyncState.
    #[error("subscription lost")]
    SubscriptionLost,
    /// The item is gone (already answered, deleted by someone).
    #[error("item not found")]
    ItemNotFound,
    /// Exchange asks to wait; the call may be retried later.
    #[error("server busy")]
    Busy { back_off: Option<std::time::Duration> },
    /// The network or the server failed; the call may be retried later.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Anything else: configuration, access rights, protocol.
    #[error("{0}")]
    Permanent(String),
}

impl ExchangeError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ExchangeError::Busy { .. } | ExchangeError::Transient(_))
    }
}

/// What resa needs from Exchange, per resource mailbox.
pub trait Exchange: Send + Sync + 'static {
    /// Changes in the mailbox's Inbox since `state` (from scratch when `None`).
    fn inbox_changes(
        &self,
        mailbox: &str,
        state: Option<&str>,
    ) -> impl Future<Output = Result<ChangePage, ExchangeError>> + Send;

    /// The meeting messages behind item ids, in the same order; ids that no
    /// longer exist are left out.
    fn meeting_messages(
        &self,
        mailbox: &str,
        item_ids: &[String],
    ) -> impl Future<Output = Result<Vec<MeetingMessage>, ExchangeError>> + Send;

    /// Answers a meeting request as the resource, with a text for the organiser.
    fn reply(
        &self,
        mailbox: &str,
        item_id: &str,
        kind: ReplyKind,
        body: &str,
    ) -> impl Future<Output = Result<(), ExchangeError>> + Send;

    /// Removes a processed message from the Inbox (a cancellation, a
    /// response, other mail), so the Inbox holds only what waits.
    fn remove(&self, mailbox: &str, item_id: &str) -> impl Future<Output = Result<(), ExchangeError>> + Send;

    /// Sends a message as the resource mailbox (saved in its Sent Items).
    fn send_message(
        &self,
        mailbox: &str,
        message: &OutgoingMessage,
    ) -> impl Future<Output = Result<(), ExchangeError>> + Send {
        let _ = (mailbox, message);
        async { Err(ExchangeError::Permanent("this endpoint cannot send messages".into())) }
    }

    /// Reads a mail of the mailbox with its text body; `None` when it is gone.
    fn read_mail(
        &self,
        mailbox: &str,
        item_id: &str,
    ) -> impl Future<Output = Result<Option<MailMessage>, ExchangeError>> + Send {
        let _ = (mailbox, item_id);
        async { Ok(None) }
    }

    /// Creates a meeting in the resource's calendar, organised by the
    /// resource, with `attendee` invited (a booking made on the web site, so
    /// that Outlook shows it). `uid` ties it to the booking.
    fn create_meeting(
        &self,
        mailbox: &str,
        meeting: &NewMeeting,
    ) -> impl Future<Output = Result<(), ExchangeError>> + Send;

    /// Cancels a meeting the resource organised (a web booking cancelled on
    /// the site): Exchange sends the attendees a cancellation with `body`.
    fn cancel_meeting(
        &self,
        mailbox: &str,
        item_id: &str,
        body: &str,
    ) -> impl Future<Output = Result<(), ExchangeError>> + Send;

    /// The resource's calendar between two instants.
    fn calendar(
        &self,
        mailbox: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<CalendarEntry>, ExchangeError>> + Send;

    /// How this endpoint reports changes.
    fn notifications(&self) -> Notifications {
        Notifications::None
    }

    /// Subscribes to the mailbox's Inbox and Calendar, streaming or pull.
    /// `anchor` names the mailbox whose server hosts a group of streaming
    /// subscriptions (affinity), so that one connection can carry them all.
    fn subscribe(
        &self,
        mailbox: &str,
        streaming: bool,
        anchor: Option<&str>,
    ) -> impl Future<Output = Result<Subscription, ExchangeError>> + Send {
        let _ = (mailbox, streaming, anchor);
        async { Err(ExchangeError::Permanent("no notifications on this endpoint".into())) }
    }

    /// Reads a pull subscription's events and moves its watermark.
    fn pull_events(
        &self,
        mailbox: &str,
        subscription: &mut Subscription,
    ) -> impl Future<Output = Result<EventBatch, ExchangeError>> + Send {
        let _ = (mailbox, subscription);
        async { Err(ExchangeError::Permanent("no notifications on this endpoint".into())) }
    }

    /// Ends a subscription (best effort: a lost one is already ended).
    fn unsubscribe(
        &self,
        mailbox: &str,
        subscription_id: &str,
        anchor: Option<&str>,
    ) -> impl Future<Output = Result<(), ExchangeError>> + Send {
        let _ = (mailbox, subscription_id, anchor);
        async { Ok(()) }
    }

    type Stream: EventStream;

    /// Opens one streaming connection for subscriptions made with the same
    /// `anchor`, kept open by the server for `minutes` (1 to 30).
    fn open_stream(
        &self,
        anchor: &str,
        subscription_ids: &[String],
        minutes: u32,
    ) -> impl Future<Output = Result<Self::Stream, ExchangeError>> + Send;
}
