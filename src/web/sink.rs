//! The port through which a booking made on the web site becomes a meeting in
//! the resource's Exchange calendar (with the agent as attendee, so Outlook
//! shows it too). The daemon provides the Exchange adapter; the site itself
//! only decides and records, then hands the meeting over.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use uuid::Uuid;

/// A meeting to create in a resource calendar, already decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebMeeting {
    pub booking_id: Uuid,
    pub uid: String,
    pub resource_id: Uuid,
    pub resource_mailbox: String,
    pub organiser_person_id: Uuid,
    pub organiser_address: String,
    pub subject: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// "accept", "accept_partially", "decline" or "hold".
    pub outcome: String,
    /// The decision's text for the organiser, in their language.
    pub message: String,
    /// A series: `start`–`end` is its first occurrence.
    pub recurrence: Option<crate::domain::recurrence::Recurrence>,
}

#[derive(Debug, thiserror::Error)]
pub enum BookingSinkError {
    #[error("exchange unavailable: {0}")]
    Unavailable(String),
    #[error("exchange refused the meeting: {0}")]
    Refused(String),
}

/// A boxed future, so the trait can be used as `Arc<dyn WebBookingSink>`.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BookingSinkError>> + Send + 'a>>;

/// Creates web bookings in Exchange, and wakes the outbox worker when the
/// site queued a command for Exchange (a cancellation, a message): those
/// leave through the outbox like every other Exchange effect, never from here.
pub trait WebBookingSink: Send + Sync + 'static {
    fn create_meeting<'a>(&'a self, meeting: &'a WebMeeting) -> SinkFuture<'a>;

    /// The site committed outbox commands: the worker of this process, if
    /// any, sends them now rather than at its next idle tick.
    fn outbox_queued(&self) {}
}

/// Does nothing: for a site run without Exchange (tests, a first install).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopBookingSink;

impl WebBookingSink for NoopBookingSink {
    fn create_meeting<'a>(&'a self, _meeting: &'a WebMeeting) -> SinkFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// Keeps every meeting it is given, for tests.
#[derive(Debug, Default)]
pub struct RecordingBookingSink {
    meetings: Mutex<Vec<WebMeeting>>,
}

impl RecordingBookingSink {
    pub fn meetings(&self) -> Vec<WebMeeting> {
        self.meetings.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl WebBookingSink for RecordingBookingSink {
    fn create_meeting<'a>(&'a self, meeting: &'a WebMeeting) -> SinkFuture<'a> {
        Box::pin(async move {
            self.meetings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(meeting.clone());
            Ok(())
        })
    }
}
