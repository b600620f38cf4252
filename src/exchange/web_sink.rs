//! Web bookings made real in Exchange: the web site's [`WebBookingSink`]
//! over the [`Exchange`] port.

use super::{Exchange, ExchangeError, NewMeeting, ReplyKind};
use crate::store::Store;
use crate::web::sink::{BookingSinkError, CancelledMeeting, Organised, SinkFuture, WebBookingSink, WebMeeting};
use std::collections::HashMap;

/// Creates each accepted or held web booking in its resource's calendar, the
/// agent invited, so Outlook shows it like any other meeting; and takes a
/// booking cancelled on the site out of the calendar, telling its organiser.
pub struct ExchangeBookingSink<E: Exchange> {
    pub store: Store,
    pub exchanges: HashMap<String, E>,
}

fn sink_error(e: ExchangeError) -> BookingSinkError {
    if e.is_retryable() {
        BookingSinkError::Unavailable(e.to_string())
    } else {
        BookingSinkError::Refused(e.to_string())
    }
}

/// A series' UID as Exchange knows it (resa keys one occurrence of a series
/// as `uid#date`).
fn series_uid(uid: &str) -> &str {
    uid.split('#').next().unwrap_or(uid)
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

    /// Finds the meeting in the resource calendar by its UID, then cancels
    /// it (the resource organised it) or declines it (the resource was
    /// invited from Outlook): either way the other side's mailbox is told,
    /// and Exchange takes it out of the resource calendar. A meeting already
    /// gone is not an error.
    fn cancel_meeting<'a>(&'a self, meeting: &'a CancelledMeeting) -> SinkFuture<'a> {
        Box::pin(async move {
            let exchange = self.exchange_of(&meeting.resource_mailbox).await?;
            let entries = exchange
                .calendar(&meeting.resource_mailbox, meeting.start, meeting.end)
                .await
                .map_err(sink_error)?;
            let uid = series_uid(&meeting.uid);
            // A series shows once per occurrence; each item is answered once.
            let mut items: Vec<String> = Vec::new();
            for e in entries {
                if e.uid.as_deref() == Some(uid) && !items.contains(&e.item_id) {
                    items.push(e.item_id);
                }
            }
            for item in items {
                let done = match meeting.organised {
                    Organised::ByResource => {
                        exchange
                            .cancel_meeting(&meeting.resource_mailbox, &item, &meeting.message)
                            .await
                    }
                    Organised::ByOrganiser => {
                        exchange
                            .reply(&meeting.resource_mailbox, &item, ReplyKind::Decline, &meeting.message)
                            .await
                    }
                };
                match done {
                    // Gone meanwhile (an earlier occurrence took the series).
                    Ok(()) | Err(ExchangeError::ItemNotFound) => {}
                    Err(e) => return Err(sink_error(e)),
                }
            }
            Ok(())
        })
    }
}
