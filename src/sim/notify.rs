//! Notifications: pull subscriptions (Subscribe + GetEvents with
//! watermarks), streaming subscriptions (Subscribe + GetStreamingEvents,
//! whose HTTP response stays open and carries one SOAP envelope per chunk
//! until ConnectionTimeout minutes have passed), and Unsubscribe.
//!
//! Events are derived from the same per-folder change counters that
//! SyncFolderItems reads: a subscription remembers, per folder, the counter
//! up to which it has reported, and a watermark encodes those counters.
//! So events and syncs can never disagree.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::SimError;
use super::render;
use super::state::{FolderKind, ItemClass, SyncChange, World};
use crate::ews::ServerVersion;
use crate::ews::xml::{NS_SOAP, XmlWriter};

/// Exchange's bounds for GetStreamingEvents' ConnectionTimeout (minutes).
pub const CONNECTION_TIMEOUT_MINUTES: std::ops::RangeInclusive<u32> = 1..=30;

/// One subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub account: usize,
    pub smtp: String,
    pub folders: Vec<FolderKind>,
    /// `NewMailEvent`, `CreatedEvent`... as the request named them.
    pub event_types: Vec<String>,
    /// Per folder, the change counter reported so far.
    pub seqs: BTreeMap<FolderKind, u64>,
    pub streaming: bool,
    /// The back end of a grouped streaming subscription (made with
    /// X-PreferServerAffinity): connections must be routed there.
    pub backend: Option<String>,
}

/// Every live subscription, by id.
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub subs: HashMap<String, Subscription>,
    next: u64,
}

impl Subscriptions {
    pub fn add(&mut self, sub: Subscription) -> String {
        self.next += 1;
        let id = base64::engine::general_purpose::STANDARD.encode(format!("SUB.{}.{}", self.next, sub.smtp));
        self.subs.insert(id.clone(), sub);
        id
    }
}

/// The open streaming connections, for the control API and injected drops.
#[derive(Debug, Default)]
pub struct OpenStreams {
    open: std::sync::Mutex<BTreeMap<u64, (Option<String>, usize)>>,
    next: std::sync::atomic::AtomicU64,
}

/// Removes its connection from [`OpenStreams`] when the connection ends.
pub struct StreamGuard {
    streams: std::sync::Arc<OpenStreams>,
    id: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.streams
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl OpenStreams {
    /// Records a connection: its anchor and how many subscriptions it carries.
    pub fn open(&self, anchor: Option<String>, subscriptions: usize) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (anchor, subscriptions));
        id
    }

    pub fn guard(self: &std::sync::Arc<Self>, id: u64) -> StreamGuard {
        StreamGuard {
            streams: self.clone(),
            id,
        }
    }

    /// `(anchor, subscriptions)` of each open connection.
    pub fn list(&self) -> Vec<(Option<String>, usize)> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Encodes per-folder counters as an opaque watermark.
pub fn watermark(epoch: u64, seqs: &BTreeMap<FolderKind, u64>) -> String {
    let parts: Vec<String> = seqs.iter().map(|(f, s)| format!("{}:{s}", f.distinguished())).collect();
    base64::engine::general_purpose::STANDARD.encode(format!("W.{epoch}.{}", parts.join(",")))
}

pub fn parse_watermark(w: &str, epoch: u64) -> Option<BTreeMap<FolderKind, u64>> {
    let raw = base64::engine::general_purpose::STANDARD.decode(w.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let rest = text.strip_prefix(&format!("W.{epoch}."))?;
    let mut out = BTreeMap::new();
    for p in rest.split(',').filter(|p| !p.is_empty()) {
        let (f, s) = p.split_once(':')?;
        out.insert(FolderKind::from_distinguished(f)?, s.parse().ok()?);
    }
    Some(out)
}

/// One event to report.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub item_id: crate::ews::types::ItemId,
    pub parent: crate::ews::types::ItemId,
    pub time: DateTime<Utc>,
}

/// The events of a subscription's folders since its counters, and the
/// counters after them.
pub fn events_since(
    world: &World,
    sub: &Subscription,
    now: DateTime<Utc>,
) -> Result<(Vec<Event>, BTreeMap<FolderKind, u64>), SimError> {
    let mb = world.mailbox(&sub.smtp)?;
    // Any change in the world wakes every stream, so most calls find their
    // folders unchanged: answer those without reading the folders (with
    // 10,000 subscribed mailboxes this was most of the simulator's work).
    if sub
        .folders
        .iter()
        .all(|f| sub.seqs.get(f).copied().unwrap_or(0) == mb.seq(*f))
    {
        return Ok((Vec::new(), sub.seqs.clone()));
    }
    let wanted = |k: &str| sub.event_types.is_empty() || sub.event_types.iter().any(|t| t == k);
    let mut events = Vec::new();
    let mut seqs = sub.seqs.clone();
    for folder in &sub.folders {
        let since = sub.seqs.get(folder).copied().unwrap_or(0);
        let r = world.sync(&sub.smtp, *folder, since, usize::MAX)?;
        seqs.insert(*folder, r.seq);
        let parent = render::folder_id(&sub.smtp, *folder);
        for c in r.changes {
            let (kinds, no): (&[&'static str], u64) = match c {
                SyncChange::Create(no) => {
                    let mail = *folder == FolderKind::Inbox
                        && mb.items.get(&no).is_some_and(|i| i.class != ItemClass::CalendarItem);
                    if mail {
                        (&["CreatedEvent", "NewMailEvent"], no)
                    } else {
                        (&["CreatedEvent"], no)
                    }
                }
                SyncChange::Update(no) => (&["ModifiedEvent"], no),
                SyncChange::Delete(no) => (&["DeletedEvent"], no),
            };
            let change_key = mb.items.get(&no).map(render::change_key);
            for k in kinds.iter().filter(|k| wanted(k)) {
                events.push(Event {
                    kind: k,
                    item_id: crate::ews::types::ItemId {
                        id: render::item_id(&sub.smtp, no, None),
                        change_key: change_key.clone(),
                    },
                    parent: parent.clone(),
                    time: mb.items.get(&no).map_or(now, |i| i.modified),
                });
            }
        }
    }
    Ok((events, seqs))
}

/// Writes one `t:Notification`'s content (after SubscriptionId).
pub fn write_events(w: &mut XmlWriter, events: &[Event], watermark: Option<&str>) -> Result<(), crate::ews::EwsError> {
    if events.is_empty() {
        if let Some(wm) = watermark {
            w.start("t:StatusEvent", &[])?;
            w.text_elem("t:Watermark", wm)?;
            w.end("t:StatusEvent")?;
        }
        return Ok(());
    }
    for e in events {
        let name = format!("t:{}", e.kind);
        w.start(&name, &[])?;
        if let Some(wm) = watermark {
            w.text_elem("t:Watermark", wm)?;
        }
        w.text_elem("t:TimeStamp", &crate::ews::xml::fmt_datetime(&e.time))?;
        e.item_id.write_as(w, "t:ItemId")?;
        e.parent.write_as(w, "t:ParentFolderId")?;
        w.end(&name)?;
    }
    Ok(())
}

/// One chunk of a streaming response: a whole envelope.
pub fn streaming_envelope(
    version: ServerVersion,
    info: &crate::ews::soap::ServerVersionInfo,
    notifications: &[(String, Vec<Event>)],
    status: &str,
) -> Result<Bytes, crate::ews::EwsError> {
    use crate::ews::xml::Wire as _;
    let mut w = XmlWriter::new(version);
    w.decl()?;
    w.start("s:Envelope", &[("xmlns:s", NS_SOAP)])?;
    w.start("s:Header", &[])?;
    info.write(&mut w)?;
    w.end("s:Header")?;
    w.start("s:Body", &[])?;
    w.start_payload("m:GetStreamingEventsResponse", &[])?;
    w.start("m:ResponseMessages", &[])?;
    w.start("m:GetStreamingEventsResponseMessage", &[("ResponseClass", "Success")])?;
    w.text_elem("m:ResponseCode", "NoError")?;
    if !notifications.is_empty() {
        w.start("m:Notifications", &[])?;
        for (id, events) in notifications {
            w.start("m:Notification", &[])?;
            w.text_elem("t:SubscriptionId", id)?;
            write_events(&mut w, events, None)?;
            w.end("m:Notification")?;
        }
        w.end("m:Notifications")?;
    }
    w.text_elem("m:ConnectionStatus", status)?;
    w.end("m:GetStreamingEventsResponseMessage")?;
    w.end("m:ResponseMessages")?;
    w.end("m:GetStreamingEventsResponse")?;
    w.end("s:Body")?;
    w.end("s:Envelope")?;
    Ok(Bytes::from(w.into_bytes()))
}

/// How long a simulated minute lasts: a real minute, or less in tests.
pub fn minutes(minute: Duration, n: u32) -> Duration {
    minute.saturating_mul(n)
}
