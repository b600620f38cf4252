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

/// Who organised a meeting cancelled on the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Organised {
    /// Booked on the site: the resource organised the meeting, so it cancels
    /// it and the agent gets a cancellation.
    ByResource,
    /// Booked in Outlook: the resource is an attendee, so it declines and the
    /// organiser gets the refusal in their mailbox.
    ByOrganiser,
}

/// A booking cancelled on the site, to take out of the resource calendar
/// and to tell the other side about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelledMeeting {
    pub booking_id: Uuid,
    pub uid: String,
    pub resource_id: Uuid,
    pub resource_mailbox: String,
    pub organised: Organised,
    /// From the first occurrence's start to the last one's end.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The text sent with the cancellation or the refusal.
    pub message: String,
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

/// Creates (and cancels) web bookings in Exchange.
pub trait WebBookingSink: Send + Sync + 'static {
    fn create_meeting<'a>(&'a self, meeting: &'a WebMeeting) -> SinkFuture<'a>;

    /// Takes a cancelled booking's meeting out of the resource calendar and
    /// tells the organiser; nothing by default, for sinks that create nothing.
    fn cancel_meeting<'a>(&'a self, _meeting: &'a CancelledMeeting) -> SinkFuture<'a> {
        Box::pin(async { Ok(()) })
    }
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
    cancelled: Mutex<Vec<CancelledMeeting>>,
}

impl RecordingBookingSink {
    pub fn meetings(&self) -> Vec<WebMeeting> {
        self.meetings.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn cancelled(&self) -> Vec<CancelledMeeting> {
        self.cancelled.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

    fn cancel_meeting<'a>(&'a self, meeting: &'a CancelledMeeting) -> SinkFuture<'a> {
        Box::pin(async move {
            self.cancelled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(meeting.clone());
            Ok(())
        })
    }
}
