//! The [`Exchange`] port over EWS: one [`Client`] per Exchange endpoint,
//! acting as each resource mailbox through impersonation.

use super::{
    CalendarEntry, ChangePage, EventBatch, Exchange, ExchangeError, FolderChange, FolderEvent, MeetingMessage,
    Notifications, ReplyKind, Subscription,
};
use crate::ews::client::{CallOptions, Client};
use crate::ews::item::{BaseShape, Shape};
use crate::ews::ops::create_item::{CreateItem, ResponseObjectKind};
use crate::ews::ops::delete_item::{DeleteItem, DeleteType};
use crate::ews::ops::find_item::{CalendarView, FindItem};
use crate::ews::ops::get_events::GetEvents;
use crate::ews::ops::get_folder::GetFolder;
use crate::ews::ops::get_item::{GetItem, ItemRef};
use crate::ews::ops::get_streaming_events::GetStreamingEvents;
use crate::ews::ops::notification::{EventTarget, EventType, Notification};
use crate::ews::ops::subscribe::{Subscribe, SubscriptionKind};
use crate::ews::ops::sync_folder_items::{Change, MAX_CHANGES_LIMIT, SyncFolderItems};
use crate::ews::ops::unsubscribe::Unsubscribe;
use crate::ews::soap::Operation as _;
use crate::ews::types::{DistinguishedFolder, FolderRef, ItemId};
use crate::ews::{EwsError, ResponseCode, soap::Impersonation};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

/// EWS for one endpoint.
#[derive(Clone)]
pub struct EwsExchange {
    client: Arc<Client>,
    /// Act as each mailbox (ExchangeImpersonation); off when the service
    /// account has delegate rights instead.
    impersonation: bool,
    /// The zone of meetings that name none.
    default_tz: Tz,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Inbox and Calendar folder ids by mailbox (lower case), to tell
    /// notification events apart; folder ids never change.
    folder_ids: Arc<Mutex<HashMap<String, (String, String)>>>,
}

impl EwsExchange {
    pub fn new(client: Arc<Client>, impersonation: bool, default_tz: Tz) -> Self {
        EwsExchange {
            client,
            impersonation,
            default_tz,
            metrics: None,
            folder_ids: Arc::default(),
        }
    }

    /// Counts every call, by operation and outcome, in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs an operation and counts it.
    async fn call<O: crate::ews::soap::Operation>(&self, mailbox: &str, op: &O) -> Result<O::Response, EwsError> {
        let result = self.client.call(op, &self.opts(mailbox)).await;
        if let Some(m) = &self.metrics {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) if e.back_off().is_some() => "busy",
                Err(e) if e.is_transient() => "transient",
                Err(_) => "error",
            };
            m.ews_call(O::NAME, outcome);
        }
        result
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Options for a call on `mailbox` routed to `anchor`'s server, asking
    /// for the affinity cookie Exchange returns for grouped subscriptions.
    fn grouped_opts(&self, mailbox: &str, anchor: Option<&str>) -> CallOptions {
        match anchor {
            None => self.opts(mailbox),
            Some(a) => CallOptions {
                anchor_mailbox: Some(a.to_owned()),
                prefer_server_affinity: true,
                ..self.opts(mailbox)
            },
        }
    }

    fn count(&self, operation: &str, result: Result<(), &EwsError>) {
        if let Some(m) = &self.metrics {
            let outcome = match result {
                Ok(()) => "ok",
                Err(e) if e.back_off().is_some() => "busy",
                Err(e) if e.is_transient() => "transient",
                Err(_) => "error",
            };
            m.ews_call(operation, outcome);
        }
    }

    /// The ids of the mailbox's Inbox and Calendar, asked once and kept.
    async fn watched_folders(&self, mailbox: &str, anchor: Option<&str>) -> Result<(String, String), ExchangeError> {
        let key = mailbox.to_lowercase();
        if let Some(ids) = self.folder_ids.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(ids.clone());
        }
        let op = GetFolder {
            folder_shape: Shape::new(BaseShape::IdOnly),
            folder_ids: vec![
                self.folder(mailbox, DistinguishedFolder::Inbox),
                self.folder(mailbox, DistinguishedFolder::Calendar),
            ],
        };
        let opts = self.grouped_opts(mailbox, anchor);
        let result = self.client.call(&op, &opts).await;
        self.count(GetFolder::NAME, result.as_ref().map(|_| ()));
        let mut ids = Vec::new();
        for m in result.map_err(map_err)?.0.messages {
            let folders = m.into_result().map_err(map_err)?;
            ids.extend(folders.folders.into_iter().filter_map(|f| f.folder_id.map(|i| i.id)));
        }
        let [inbox, calendar] = <[String; 2]>::try_from(ids)
            .map_err(|_| ExchangeError::Permanent("GetFolder did not return the Inbox and the Calendar".into()))?;
        let mut cache = self.folder_ids.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= 100_000 {
            cache.clear();
        }
        cache.insert(key, (inbox.clone(), calendar.clone()));
        Ok((inbox, calendar))
    }

    fn opts(&self, mailbox: &str) -> CallOptions {
        CallOptions {
            impersonation: self
                .impersonation
                .then(|| Impersonation::PrimarySmtpAddress(mailbox.to_owned())),
            anchor_mailbox: Some(mailbox.to_owned()),
            ..CallOptions::default()
        }
    }

    /// A folder of `mailbox`: with impersonation the distinguished folder
    /// needs no owner; without it, the mailbox is named.
    fn folder(&self, mailbox: &str, id: DistinguishedFolder) -> FolderRef {
        if self.impersonation {
            FolderRef::distinguished(id)
        } else {
            FolderRef::distinguished_in(id, mailbox)
        }
    }
}

fn map_err(e: EwsError) -> ExchangeError {
    match e.response_code() {
        Some(ResponseCode::ErrorInvalidSyncStateData) => {
            return ExchangeError::InvalidSyncState;
        }
        Some(
            ResponseCode::ErrorSubscriptionNotFound
            | ResponseCode::ErrorInvalidSubscription
            | ResponseCode::ErrorExpiredSubscription
            | ResponseCode::ErrorInvalidWatermark
            | ResponseCode::ErrorInvalidPullSubscriptionId
            | ResponseCode::ErrorSubscriptionUnsubscribed
            | ResponseCode::ErrorMissedNotificationEvents,
        ) => return ExchangeError::SubscriptionLost,
        Some(ResponseCode::ErrorItemNotFound) => return ExchangeError::ItemNotFound,
        Some(ResponseCode::ErrorServerBusy) => return ExchangeError::Busy { back_off: e.back_off() },
        _ => {}
    }
    if e.is_transient() {
        ExchangeError::Transient(e.to_string())
    } else {
        ExchangeError::Permanent(e.to_string())
    }
}

impl Exchange for EwsExchange {
    async fn inbox_changes(&self, mailbox: &str, state: Option<&str>) -> Result<ChangePage, ExchangeError> {
        let op = SyncFolderItems {
            item_shape: Shape::new(BaseShape::IdOnly),
            folder: self.folder(mailbox, DistinguishedFolder::Inbox),
            sync_state: state.map(str::to_owned),
            ignore: Vec::new(),
            max_changes_returned: MAX_CHANGES_LIMIT,
        };
        let result = self
            .call(mailbox, &op)
            .await
            .and_then(|r| r.into_single())
            .map_err(map_err)?;
        let changes = result
            .changes
            .into_iter()
            .filter_map(|c| match c {
                Change::Create(item) | Change::Update(item) => item.item_id.map(|i| FolderChange::Upsert(i.id)),
                Change::Delete(id) => Some(FolderChange::Delete(id.id)),
                Change::ReadFlagChange { .. } => None,
            })
            .collect();
        Ok(ChangePage {
            changes,
            sync_state: result.sync_state,
            more: !result.includes_last_item_in_range,
        })
    }

    async fn meeting_messages(&self, mailbox: &str, item_ids: &[String]) -> Result<Vec<MeetingMessage>, ExchangeError> {
        if item_ids.is_empty() {
            return Ok(Vec::new());
        }
        let op = GetItem {
            item_shape: Shape::meeting(),
            item_ids: item_ids.iter().map(|id| ItemRef::Id(ItemId::new(id.clone()))).collect(),
        };
        let response = self.call(mailbox, &op).await.map_err(map_err)?;
        let mut out = Vec::new();
        for message in response.0.messages {
            match message.into_result() {
                Ok(items) => out.extend(
                    items
                        .items
                        .iter()
                        .filter_map(|i| super::convert::meeting_message(i, self.default_tz)),
                ),
                // Gone since the sync (answered or deleted meanwhile).
                Err(e) if matches!(e.response_code(), Some(ResponseCode::ErrorItemNotFound)) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(out)
    }

    async fn reply(&self, mailbox: &str, item_id: &str, kind: ReplyKind, body: &str) -> Result<(), ExchangeError> {
        let kind = match kind {
            ReplyKind::Accept => ResponseObjectKind::Accept,
            ReplyKind::Tentative => ResponseObjectKind::TentativelyAccept,
            ReplyKind::Decline => ResponseObjectKind::Decline,
        };
        let op = CreateItem::respond(kind, ItemId::new(item_id), Some(body));
        self.call(mailbox, &op)
            .await
            .and_then(|r| r.into_single())
            .map_err(map_err)?;
        Ok(())
    }

    async fn remove(&self, mailbox: &str, item_id: &str) -> Result<(), ExchangeError> {
        let op = DeleteItem {
            delete_type: DeleteType::MoveToDeletedItems,
            send_meeting_cancellations: None,
            item_ids: vec![ItemRef::Id(ItemId::new(item_id))],
        };
        match self.call(mailbox, &op).await.and_then(|r| r.into_single()) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.response_code(), Some(ResponseCode::ErrorItemNotFound)) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn send_message(&self, mailbox: &str, message: &super::OutgoingMessage) -> Result<(), ExchangeError> {
        use crate::ews::item::{Item, ItemKind};
        use crate::ews::types::{Body, Mailbox};
        let mut item = Item::new(ItemKind::Message);
        item.subject = Some(message.subject.clone());
        item.body = Some(Body::text(message.body.clone()));
        item.to_recipients = message.to.iter().map(|a| Mailbox::smtp(a.clone())).collect();
        if !message.voting.is_empty() {
            let labels: Vec<&str> = message.voting.iter().map(String::as_str).collect();
            item.extended_properties
                .push(crate::ews::voting::voting_property(&labels));
        }
        let op = CreateItem::send_message(item);
        self.call(mailbox, &op)
            .await
            .and_then(|r| r.into_single())
            .map_err(map_err)?;
        Ok(())
    }

    async fn read_mail(&self, mailbox: &str, item_id: &str) -> Result<Option<super::MailMessage>, ExchangeError> {
        let op = GetItem {
            item_shape: Shape::meeting(),
            item_ids: vec![ItemRef::Id(ItemId::new(item_id))],
        };
        let item = match self.call(mailbox, &op).await.and_then(|r| r.into_single()) {
            Ok(items) => items.items.into_iter().next(),
            Err(e) if matches!(e.response_code(), Some(ResponseCode::ErrorItemNotFound)) => None,
            Err(e) => return Err(map_err(e)),
        };
        Ok(item.map(|i| super::MailMessage {
            item_id: item_id.to_owned(),
            from: super::convert::organiser(&i),
            subject: i.subject.clone().unwrap_or_default(),
            body: i.body.as_ref().map(|b| b.content.clone()).unwrap_or_default(),
            item_class: i.item_class.clone(),
        }))
    }

    async fn create_meeting(&self, mailbox: &str, meeting: &super::NewMeeting) -> Result<(), ExchangeError> {
        use crate::ews::item::{Item, ItemKind};
        use crate::ews::types::{Attendee, Body, Mailbox};
        let mut item = Item::new(ItemKind::CalendarItem);
        item.subject = Some(meeting.subject.clone());
        item.body = Some(Body::text(meeting.body.clone()));
        item.start = Some(meeting.start);
        item.end = Some(meeting.end);
        item.uid = Some(meeting.uid.clone());
        item.required_attendees = vec![Attendee::new(Mailbox::smtp(meeting.attendee.clone()))];
        if meeting.tentative {
            item.legacy_free_busy_status = Some(crate::ews::item::LegacyFreeBusyStatus::Tentative);
        }
        if let Some(r) = &meeting.recurrence {
            item.recurrence = Some(
                super::convert::wire_recurrence(r)
                    .ok_or_else(|| ExchangeError::Permanent("this recurrence cannot be sent to Exchange".into()))?,
            );
            // The pattern is read in the meeting's zone.
            let windows = crate::ews::types::iana_to_windows(r.tz.name())
                .ok_or_else(|| ExchangeError::Permanent(format!("no Windows zone for {}", r.tz.name())))?;
            if self.client.config().version >= crate::ews::soap::ServerVersion::Exchange2010_SP2 {
                item.start_time_zone = Some(crate::ews::types::TimeZoneDefinition::new(windows));
                item.end_time_zone = Some(crate::ews::types::TimeZoneDefinition::new(windows));
            } else {
                item.meeting_time_zone = Some(crate::ews::types::MeetingTimeZone {
                    time_zone_name: Some(windows.to_owned()),
                    base_offset: None,
                    standard: None,
                    daylight: None,
                });
            }
        }
        let op = CreateItem::meeting(item, Some(self.folder(mailbox, DistinguishedFolder::Calendar)));
        self.call(mailbox, &op)
            .await
            .and_then(|r| r.into_single())
            .map_err(map_err)?;
        Ok(())
    }

    async fn cancel_meeting(&self, mailbox: &str, item_id: &str, body: &str) -> Result<(), ExchangeError> {
        let op = CreateItem::respond(ResponseObjectKind::CancelCalendarItem, ItemId::new(item_id), Some(body));
        self.call(mailbox, &op)
            .await
            .and_then(|r| r.into_single())
            .map_err(map_err)?;
        Ok(())
    }

    async fn calendar(
        &self,
        mailbox: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<CalendarEntry>, ExchangeError> {
        let op = FindItem {
            item_shape: Shape::new(BaseShape::AllProperties),
            calendar_view: CalendarView {
                start,
                end,
                max_entries_returned: None,
            },
            parent_folder_ids: vec![self.folder(mailbox, DistinguishedFolder::Calendar)],
        };
        let result = self
            .call(mailbox, &op)
            .await
            .and_then(|r| r.into_single())
            .map_err(map_err)?;
        Ok(result
            .items
            .into_iter()
            .filter_map(|i| {
                Some(CalendarEntry {
                    item_id: i.item_id.as_ref()?.id.clone(),
                    uid: super::convert::uid(&i),
                    start: i.start?,
                    end: i.end?,
                    subject: i.subject.clone(),
                    response: i.my_response_type.map(|r| r.as_str().to_owned()),
                })
            })
            .collect())
    }

    fn notifications(&self) -> Notifications {
        if self.client.config().version.has_streaming() {
            Notifications::Streaming
        } else {
            Notifications::Pull
        }
    }

    async fn subscribe(
        &self,
        mailbox: &str,
        streaming: bool,
        anchor: Option<&str>,
    ) -> Result<Subscription, ExchangeError> {
        let (inbox_folder, calendar_folder) = self.watched_folders(mailbox, anchor).await?;
        let op = Subscribe {
            kind: if streaming {
                SubscriptionKind::Streaming
            } else {
                SubscriptionKind::Pull {
                    timeout_minutes: PULL_TIMEOUT_MINUTES,
                }
            },
            folder_ids: vec![
                self.folder(mailbox, DistinguishedFolder::Inbox),
                self.folder(mailbox, DistinguishedFolder::Calendar),
            ],
            event_types: vec![
                EventType::NewMail,
                EventType::Created,
                EventType::Modified,
                EventType::Deleted,
                EventType::Moved,
            ],
            watermark: None,
        };
        let opts = self.grouped_opts(mailbox, anchor);
        let result = self.client.call(&op, &opts).await;
        self.count(Subscribe::NAME, result.as_ref().map(|_| ()));
        let sub = result.and_then(|r| r.into_single()).map_err(map_err)?;
        Ok(Subscription {
            id: sub.subscription_id,
            watermark: sub.watermark,
            inbox_folder,
            calendar_folder,
        })
    }

    async fn pull_events(&self, mailbox: &str, subscription: &mut Subscription) -> Result<EventBatch, ExchangeError> {
        let Some(watermark) = subscription.watermark.clone() else {
            return Err(ExchangeError::SubscriptionLost);
        };
        let op = GetEvents {
            subscription_id: subscription.id.clone(),
            watermark,
        };
        let n = self
            .call(mailbox, &op)
            .await
            .and_then(|r| r.into_single())
            .map_err(map_err)?
            .notification;
        let mut batch = EventBatch {
            more: n.more_events.unwrap_or(false),
            ..EventBatch::default()
        };
        // The last watermark is where the next read starts.
        if let Some(w) = n.events.iter().rev().find_map(|e| e.watermark.clone()) {
            subscription.watermark = Some(w);
        }
        batch.events = folder_events(&n);
        Ok(batch)
    }

    async fn unsubscribe(
        &self,
        mailbox: &str,
        subscription_id: &str,
        anchor: Option<&str>,
    ) -> Result<(), ExchangeError> {
        let op = Unsubscribe {
            subscription_id: subscription_id.to_owned(),
        };
        let opts = self.grouped_opts(mailbox, anchor);
        let result = self.client.call(&op, &opts).await;
        self.count(Unsubscribe::NAME, result.as_ref().map(|_| ()));
        match result.and_then(|r| r.into_single()).map_err(map_err) {
            Ok(()) | Err(ExchangeError::SubscriptionLost) => Ok(()),
            Err(e) => Err(e),
        }
    }

    type Stream = EwsEventStream;

    async fn open_stream(
        &self,
        anchor: &str,
        subscription_ids: &[String],
        minutes: u32,
    ) -> Result<EwsEventStream, ExchangeError> {
        let op = GetStreamingEvents {
            subscription_ids: subscription_ids.to_vec(),
            connection_timeout_minutes: minutes.clamp(1, 30),
        };
        // The connection is routed like the subscriptions were (same anchor,
        // the server's affinity cookie), and may stay open its whole
        // ConnectionTimeout plus a margin.
        let opts = CallOptions {
            impersonation: None,
            anchor_mailbox: Some(anchor.to_owned()),
            prefer_server_affinity: true,
            timeout: Some(StdDuration::from_secs(u64::from(minutes.clamp(1, 30)) * 60 + 60)),
            ..CallOptions::default()
        };
        let result = self.client.open_stream(&op, &opts).await;
        self.count(GetStreamingEvents::NAME, result.as_ref().map(|_| ()));
        Ok(EwsEventStream {
            inner: result.map_err(map_err)?,
        })
    }
}

/// Pull subscriptions expire after this many minutes without a read; resa
/// reads far more often, so only a stopped daemon lets one expire.
const PULL_TIMEOUT_MINUTES: u32 = 1440;

/// The events of a notification that name a parent folder.
fn folder_events(n: &Notification) -> Vec<FolderEvent> {
    n.events
        .iter()
        .filter(|e| e.kind != EventType::Status)
        .filter_map(|e| {
            // A moved item counts for the folder it left too.
            let parent = e.parent_folder_id.as_ref().or(match &e.target {
                Some(EventTarget::Folder(f)) => Some(f),
                _ => None,
            })?;
            Some(FolderEvent {
                subscription_id: n.subscription_id.clone(),
                folder_id: parent.id.clone(),
            })
        })
        .chain(n.events.iter().filter_map(|e| {
            e.old_parent_folder_id.as_ref().map(|p| FolderEvent {
                subscription_id: n.subscription_id.clone(),
                folder_id: p.id.clone(),
            })
        }))
        .collect()
}

/// An open GetStreamingEvents response.
pub struct EwsEventStream {
    inner: crate::ews::client::EventStream,
}

impl super::EventStream for EwsEventStream {
    async fn next(&mut self) -> Option<Result<EventBatch, ExchangeError>> {
        let envelope = self.inner.next().await?;
        Some(envelope.map_err(map_err).map(|m| EventBatch {
            events: m.notifications.iter().flat_map(folder_events).collect(),
            lost: m.error_subscription_ids.clone(),
            more: false,
            closed: matches!(
                m.connection_status,
                Some(crate::ews::ops::get_streaming_events::ConnectionStatus::Closed)
            ),
        }))
    }
}
