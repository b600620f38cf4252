//! Notification events, shared by GetEvents, GetStreamingEvents and push
//! SendNotification.

use chrono::{DateTime, Utc};

use crate::ews::error::EwsError;
use crate::ews::soap::ServerVersion;
use crate::ews::types::{ItemId, wire_enum};
use crate::ews::xml::{Element, XmlWriter, fmt_datetime, parse_bool};

wire_enum!(
    /// `t:NotificationEventTypeType`: what a subscription listens to.
    EventType {
        Copied = "CopiedEvent",
        Created = "CreatedEvent",
        Deleted = "DeletedEvent",
        Modified = "ModifiedEvent",
        Moved = "MovedEvent",
        NewMail = "NewMailEvent",
        FreeBusyChanged = "FreeBusyChangedEvent",
        Status = "StatusEvent",
    }
);

/// The item or folder an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTarget {
    Item(ItemId),
    Folder(ItemId),
}

/// One event. `Status` events carry only a watermark (a heartbeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    pub watermark: Option<String>,
    pub time_stamp: Option<DateTime<Utc>>,
    pub target: Option<EventTarget>,
    pub parent_folder_id: Option<ItemId>,
    /// Moved and Copied events: where it was.
    pub old_target: Option<EventTarget>,
    pub old_parent_folder_id: Option<ItemId>,
    /// Modified events on folders.
    pub unread_count: Option<u32>,
}

impl Event {
    pub fn status(watermark: impl Into<String>) -> Self {
        Self {
            kind: EventType::Status,
            watermark: Some(watermark.into()),
            time_stamp: None,
            target: None,
            parent_folder_id: None,
            old_target: None,
            old_parent_folder_id: None,
            unread_count: None,
        }
    }

    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let name = format!("t:{}", self.kind.as_str());
        w.start(&name, &[])?;
        w.opt_text("t:Watermark", self.watermark.as_ref())?;
        if self.kind != EventType::Status {
            if let Some(t) = &self.time_stamp {
                w.text_elem("t:TimeStamp", &fmt_datetime(t))?;
            }
            match &self.target {
                Some(EventTarget::Item(id)) => id.write_as(w, "t:ItemId")?,
                Some(EventTarget::Folder(id)) => id.write_as(w, "t:FolderId")?,
                None => {}
            }
            if let Some(p) = &self.parent_folder_id {
                p.write_as(w, "t:ParentFolderId")?;
            }
            match &self.old_target {
                Some(EventTarget::Item(id)) => id.write_as(w, "t:OldItemId")?,
                Some(EventTarget::Folder(id)) => id.write_as(w, "t:OldFolderId")?,
                None => {}
            }
            if let Some(p) = &self.old_parent_folder_id {
                p.write_as(w, "t:OldParentFolderId")?;
            }
            w.opt_text("t:UnreadCount", self.unread_count.as_ref())?;
        }
        w.end(&name)
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let id = |n: &str| el.child(n).map(ItemId::read).transpose();
        let target = match (id("ItemId")?, id("FolderId")?) {
            (Some(i), _) => Some(EventTarget::Item(i)),
            (None, Some(f)) => Some(EventTarget::Folder(f)),
            _ => None,
        };
        let old_target = match (id("OldItemId")?, id("OldFolderId")?) {
            (Some(i), _) => Some(EventTarget::Item(i)),
            (None, Some(f)) => Some(EventTarget::Folder(f)),
            _ => None,
        };
        Ok(Self {
            kind: el.name.parse()?,
            watermark: el.child_text("Watermark").map(str::to_owned),
            time_stamp: el.child_datetime("TimeStamp")?,
            target,
            parent_folder_id: id("ParentFolderId")?,
            old_target,
            old_parent_folder_id: id("OldParentFolderId")?,
            unread_count: el.child_parse("UnreadCount")?,
        })
    }
}

/// `m:Notification` / `t:Notification`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notification {
    pub subscription_id: String,
    /// Pull and push only.
    pub previous_watermark: Option<String>,
    /// Pull and push only: call GetEvents again at once when true.
    pub more_events: Option<bool>,
    pub events: Vec<Event>,
}

impl Notification {
    /// Writes the notification; `name` is `m:Notification` in responses.
    pub fn write_as(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        w.start(name, &[])?;
        w.text_elem("t:SubscriptionId", &self.subscription_id)?;
        w.opt_text("t:PreviousWatermark", self.previous_watermark.as_ref())?;
        w.opt_bool("t:MoreEvents", self.more_events)?;
        for e in &self.events {
            // FreeBusyChangedEvent does not exist in the 2007 schema.
            if e.kind == EventType::FreeBusyChanged && w.version < ServerVersion::Exchange2010_SP2 {
                continue;
            }
            e.write(w)?;
        }
        w.end(name)
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        let mut events = Vec::new();
        for c in &el.children {
            if c.name.parse::<EventType>().is_ok() {
                events.push(Event::read(c)?);
            }
        }
        Ok(Self {
            subscription_id: el.child_text("SubscriptionId").unwrap_or_default().to_owned(),
            previous_watermark: el.child_text("PreviousWatermark").map(str::to_owned),
            more_events: el.child_text("MoreEvents").map(parse_bool).transpose()?,
            events,
        })
    }
}

/// Writes `<t:EventTypes>`, leaving out types the version lacks.
pub fn write_event_types(w: &mut XmlWriter, types: &[EventType]) -> Result<(), EwsError> {
    w.start("t:EventTypes", &[])?;
    for t in types {
        match t {
            // StatusEvent is never requested; Exchange sends it on its own.
            EventType::Status => continue,
            EventType::FreeBusyChanged if w.version < ServerVersion::Exchange2010_SP2 => continue,
            _ => w.text_elem("t:EventType", t.as_str())?,
        }
    }
    w.end("t:EventTypes")
}

pub fn read_event_types(el: &Element) -> Result<Vec<EventType>, EwsError> {
    match el.child("EventTypes") {
        None => Ok(Vec::new()),
        Some(list) => list.children_named("EventType").map(|e| e.text().parse()).collect(),
    }
}
