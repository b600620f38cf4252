//! Web bookings made real in Exchange: the web site's [`WebBookingSink`]
//! over the [`Exchange`] port.

use super::{Exchange, NewMeeting};
use crate::store::Store;
use crate::web::sink::{BookingSinkError, SinkFuture, WebBookingSink, WebMeeting};
use std::collections::HashMap;

/// Creates each accepted or held web booking in its resource's calendar, the
/// agent invited, so Outlook shows it like any other meeting.
pub struct ExchangeBookingSink<E: Exchange> {
    pub store: Store,
    pub exchanges: HashMap<String, E>,
}

impl<E: Exchange> WebBookingSink for ExchangeBookingSink<E> {
    fn create_meeting<'a>(&'a self, meeting: &'a WebMeeting) -> SinkFuture<'a> {
        Box::pin(async move {
            if meeting.outcome == "decline" {
                return Ok(());
            }
            let resource = self
                .store
                .resource_by_mailbox(&meeting.resource_mailbox)
                .await
                .map_err(|e| BookingSinkError::Unavailable(e.to_string()))?
                .ok_or_else(|| BookingSinkError::Refused(format!("no resource {}", meeting.resource_mailbox)))?;
            let exchange = self
                .exchanges
                .get(&resource.exchange_endpoint)
                .ok_or_else(|| BookingSinkError::Refused(format!("no [[exchange]] {}", resource.exchange_endpoint)))?;
            let new = NewMeeting {
                uid: meeting.uid.clone(),
                subject: meeting.subject.clone(),
                body: meeting.message.clone(),
                start: meeting.start,
                end: meeting.end,
                attendee: meeting.organiser_address.clone(),
                tentative: meeting.outcome == "hold",
            };
            exchange
                .create_meeting(&meeting.resource_mailbox, &new)
                .await
                .map_err(|e| {
                    if e.is_retryable() {
                        BookingSinkError::Unavailable(e.to_string())
                    } else {
                        BookingSinkError::Refused(e.to_string())
                    }
                })
        })
    }
}
