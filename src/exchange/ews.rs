//! The [`Exchange`] port over EWS: one [`Client`] per Exchange endpoint,
//! acting as each resource mailbox through impersonation.

use super::{CalendarEntry, ChangePage, Exchange, ExchangeError, FolderChange, MeetingMessage, ReplyKind};
use crate::ews::client::{CallOptions, Client};
use crate::ews::item::{BaseShape, Shape};
use crate::ews::ops::create_item::{CreateItem, ResponseObjectKind};
use crate::ews::ops::delete_item::{DeleteItem, DeleteType};
use crate::ews::ops::find_item::{CalendarView, FindItem};
use crate::ews::ops::get_item::{GetItem, ItemRef};
use crate::ews::ops::sync_folder_items::{Change, MAX_CHANGES_LIMIT, SyncFolderItems};
use crate::ews::types::{DistinguishedFolder, FolderRef, ItemId};
use crate::ews::{EwsError, ResponseCode, soap::Impersonation};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

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
}

impl EwsExchange {
    pub fn new(client: Arc<Client>, impersonation: bool, default_tz: Tz) -> Self {
        EwsExchange {
            client,
            impersonation,
            default_tz,
            metrics: None,
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
        let op = CreateItem::meeting(item, Some(self.folder(mailbox, DistinguishedFolder::Calendar)));
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
}
