//! Web bookings made real in Exchange: the web site's [`WebBookingSink`]
//! over the [`Exchange`] port.

use super::{Exchange, ExchangeError, NewMeeting};
use crate::store::Store;
use crate::web::sink::{BookingSinkError, SinkFuture, WebBookingSink, WebMeeting};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// Creates each accepted or held web booking in its resource's calendar, the
/// agent invited, so Outlook shows it like any other meeting. Cancellations
/// go through the outbox (`sync::outbox`); this only wakes its worker.
pub struct ExchangeBookingSink<E: Exchange> {
    pub store: Store,
    pub exchanges: HashMap<String, E>,
    /// The outbox worker of this process (`Daemon::outbox_wake`), if any.
    pub outbox_wake: Option<Arc<Notify>>,
}

fn sink_error(e: ExchangeError) -> BookingSinkError {
    if e.is_retryable() {
        BookingSinkError::Unavailable(e.to_string())
    } else {
        BookingSinkError::Refused(e.to_string())
    }
}

impl<E: Exchange> ExchangeBookingSink<E> {
    async fn exchange_of(&self, mailbox: &str) -> Result<&E, BookingSinkError> {
        let resource = self
            .store
            .resource_by_mailbox(mailbox)
            .await
            .map_err(|e| BookingSinkError::Unavailable(e.to_string()))?
            .ok_or_else(|| BookingSinkError::Refused(format!("no resource {mailbox}")))?;
        self.exchanges
            .get(&resource.exchange_endpoint)
            .ok_or_else(|| BookingSinkError::Refused(format!("no [[exchange]] {}", resource.exchange_endpoint)))
    }
}

impl<E: Exchange> WebBookingSink for ExchangeBookingSink<E> {
    fn create_meeting<'a>(&'a self, meeting: &'a WebMeeting) -> SinkFuture<'a> {
        Box::pin(async move {
            if meeting.outcome == "decline" {
                return Ok(());
            }
            let exchange = self.exchange_of(&meeting.resource_mailbox).await?;
            let new = NewMeeting {
                uid: meeting.uid.clone(),
                subject: meeting.subject.clone(),
                body: meeting.message.clone(),
                start: meeting.start,
                end: meeting.end,
                attendee: meeting.organiser_address.clone(),
                tentative: meeting.outcome == "hold",
                recurrence: meeting.recurrence.clone(),
            };
            exchange
                .create_meeting(&meeting.resource_mailbox, &new)
                .await
                .map_err(sink_error)
        })
    }

    fn outbox_queued(&self) {
        if let Some(wake) = &self.outbox_wake {
            wake.notify_one();
        }
    }
}
