//! The simulated Exchange organisation: mailboxes, their folders and items,
//! the per-folder change counters that SyncFolderItems reads, and the
//! meeting transport (invitations, responses, updates, cancellations).
//!
//! Everything here is plain data behind one lock held by the server, with
//! `now` passed in, so the semantics are testable without HTTP. Items keep
//! the meeting as a snapshot ([`Meeting`]) of what the message carried when
//! it was delivered, as Exchange does: an old meeting request keeps its old
//! times after an update.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::SimError;
use crate::domain::recurrence::{Occurrence, Recurrence};

/// What a mailbox is, as Exchange's RecipientTypeDetails says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxKind {
    User,
    Room,
    Equipment,
}

/// How a mailbox's address appears in items (Organizer, From, attendees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Routing {
    /// `RoutingType` SMTP with the primary SMTP address.
    #[default]
    Smtp,
    /// `RoutingType` EX with the legacy Exchange DN, as Exchange shows many
    /// internal senders; clients must resolve it with ResolveNames.
    Ex,
}

/// A mailbox's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxInfo {
    /// Lower-cased primary SMTP address: the key everywhere.
    pub smtp: String,
    pub name: String,
    pub kind: MailboxKind,
    pub legacy_dn: String,
    #[serde(default)]
    pub routing: Routing,
}

/// The folders the simulator models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FolderKind {
    Root,
    Inbox,
    Calendar,
    SentItems,
    DeletedItems,
}

impl FolderKind {
    pub const ALL: [FolderKind; 5] = [
        FolderKind::Root,
        FolderKind::Inbox,
        FolderKind::Calendar,
        FolderKind::SentItems,
        FolderKind::DeletedItems,
    ];

    /// The distinguished folder name (`t:DistinguishedFolderId/@Id`).
    pub fn distinguished(self) -> &'static str {
        match self {
            FolderKind::Root => "root",
            FolderKind::Inbox => "inbox",
            FolderKind::Calendar => "calendar",
            FolderKind::SentItems => "sentitems",
            FolderKind::DeletedItems => "deleteditems",
        }
    }

    pub fn from_distinguished(s: &str) -> Option<Self> {
        Some(match s {
            "root" | "msgfolderroot" => FolderKind::Root,
            "inbox" => FolderKind::Inbox,
            "calendar" => FolderKind::Calendar,
            "sentitems" => FolderKind::SentItems,
            "deleteditems" => FolderKind::DeletedItems,
            _ => return None,
        })
    }

    pub fn display_name(self) -> &'static str {
        match self {
            FolderKind::Root => "Top of Information Store",
            FolderKind::Inbox => "Inbox",
            FolderKind::Calendar => "Calendar",
            FolderKind::SentItems => "Sent Items",
            FolderKind::DeletedItems => "Deleted Items",
        }
    }
}

/// An attendee's answer, as `t:ResponseTypeType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseKind {
    Unknown,
    Organizer,
    Tentative,
    Accept,
    Decline,
    NoResponseReceived,
}

/// The three answers an attendee can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Accept,
    Tentative,
    Decline,
}

impl Reply {
    pub fn response(self) -> ResponseKind {
        match self {
            Reply::Accept => ResponseKind::Accept,
            Reply::Tentative => ResponseKind::Tentative,
            Reply::Decline => ResponseKind::Decline,
        }
    }

    /// The subject prefix Exchange (English locale) gives a response.
    fn subject_prefix(self) -> &'static str {
        match self {
            Reply::Accept => "Accepted: ",
            Reply::Tentative => "Tentative: ",
            Reply::Decline => "Declined: ",
        }
    }
}

/// One attendee of a meeting and what they answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendeeState {
    pub smtp: String,
    pub response: ResponseKind,
    pub last_response_time: Option<DateTime<Utc>>,
}

impl AttendeeState {
    fn invited(smtp: &str) -> Self {
        Self {
            smtp: smtp.to_owned(),
            response: ResponseKind::NoResponseReceived,
            last_response_time: None,
        }
    }
}

/// An exception of a series: the occurrence that the pattern put at
/// `original_start` now runs from `start` to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifiedOccurrence {
    pub original_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A meeting as one message or calendar item carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    pub uid: String,
    pub subject: String,
    pub body: String,
    pub location: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// IANA zone of the organizer (`Europe/Paris`).
    pub time_zone: String,
    pub organizer: String,
    pub required: Vec<AttendeeState>,
    pub optional: Vec<AttendeeState>,
    pub resources: Vec<AttendeeState>,
    pub sequence: u32,
    /// RFC 5545 RRULE of a recurring series (DTSTART is `start`).
    pub recurrence: Option<String>,
    /// Original starts of deleted occurrences.
    #[serde(default)]
    pub deleted_occurrences: Vec<DateTime<Utc>>,
    /// Occurrences moved or resized by the organizer (exceptions).
    #[serde(default)]
    pub modified_occurrences: Vec<ModifiedOccurrence>,
    pub cancelled: bool,
    pub created: DateTime<Utc>,
}

impl Meeting {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::Europe::Paris)
    }

    /// Every attendee address, required, optional and resources.
    pub fn attendees(&self) -> impl Iterator<Item = &AttendeeState> {
        self.required.iter().chain(&self.optional).chain(&self.resources)
    }

    fn attendee_mut(&mut self, smtp: &str) -> Option<&mut AttendeeState> {
        self.required
            .iter_mut()
            .chain(self.optional.iter_mut())
            .chain(self.resources.iter_mut())
            .find(|a| a.smtp == smtp)
    }

    /// The series as the domain models it, for expansion and for the EWS
    /// Recurrence element.
    pub fn series(&self) -> Result<Option<Recurrence>, SimError> {
        let Some(rule) = &self.recurrence else {
            return Ok(None);
        };
        let tz = self.tz();
        let local = self.start.with_timezone(&tz).naive_local();
        let mut r = Recurrence::from_rrule(rule, local, self.end - self.start, tz)
            .map_err(|e| SimError::Invalid(format!("recurrence: {e}")))?;
        for d in &self.deleted_occurrences {
            r.deleted.insert(d.with_timezone(&tz).date_naive());
        }
        r.modified = self
            .modified_occurrences
            .iter()
            .map(|m| crate::domain::recurrence::ModifiedOccurrence {
                original_start: m.original_start,
                start: m.start,
                end: m.end,
            })
            .collect();
        Ok(Some(r))
    }

    /// The occurrences overlapping a window (one for a single meeting).
    pub fn occurrences(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<Occurrence>, SimError> {
        match self.series()? {
            Some(r) => Ok(r
                .expand_window(from, until)
                .map_err(|e| SimError::Invalid(format!("recurrence: {e}")))?
                .occurrences),
            None if self.start < until && self.end > from => Ok(vec![Occurrence {
                index: 0,
                original_start: self.start,
                start: self.start,
                end: self.end,
                modified: false,
            }]),
            None => Ok(Vec::new()),
        }
    }
}

/// Which item element an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemClass {
    CalendarItem,
    MeetingRequest,
    MeetingResponse(Reply),
    MeetingCancellation,
    Message,
}

impl ItemClass {
    /// The MAPI message class.
    pub fn message_class(self) -> &'static str {
        match self {
            ItemClass::CalendarItem => "IPM.Appointment",
            ItemClass::MeetingRequest => "IPM.Schedule.Meeting.Request",
            ItemClass::MeetingResponse(Reply::Accept) => "IPM.Schedule.Meeting.Resp.Pos",
            ItemClass::MeetingResponse(Reply::Tentative) => "IPM.Schedule.Meeting.Resp.Tent",
            ItemClass::MeetingResponse(Reply::Decline) => "IPM.Schedule.Meeting.Resp.Neg",
            ItemClass::MeetingCancellation => "IPM.Schedule.Meeting.Canceled",
            ItemClass::Message => "IPM.Note",
        }
    }
}

/// One item in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredItem {
    /// Unique in the whole simulator; part of the EWS ItemId.
    pub no: u64,
    pub folder: FolderKind,
    pub class: ItemClass,
    /// Raised on every change; the ChangeKey is derived from it.
    pub version: u32,
    pub created_seq: u64,
    pub modified_seq: u64,
    pub subject: String,
    pub body: String,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub received: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub is_read: bool,
    pub meeting: Option<Meeting>,
    /// Calendar items: the owner's answer.
    pub my_response: Option<ResponseKind>,
    /// Meeting messages: the calendar item they belong to.
    pub associated: Option<u64>,
    /// Meeting requests: NewMeetingRequest or FullUpdate.
    pub is_update: bool,
    /// Meeting messages about one occurrence of a series: its original start.
    #[serde(default)]
    pub recurrence_id: Option<DateTime<Utc>>,
    /// Messages: the voting buttons Outlook shows (from PidLidVerbStream).
    #[serde(default)]
    pub voting: Vec<String>,
}

/// What is left of a deleted or moved item: enough for SyncFolderItems to
/// report a Delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub no: u64,
    pub folder: FolderKind,
    pub created_seq: u64,
    pub deleted_seq: u64,
}

/// One mailbox and its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxState {
    pub info: MailboxInfo,
    pub items: BTreeMap<u64, StoredItem>,
    pub tombstones: Vec<Tombstone>,
    /// The change counter of each folder.
    pub seqs: BTreeMap<FolderKind, u64>,
}

impl MailboxState {
    fn new(info: MailboxInfo) -> Self {
        Self {
            info,
            items: BTreeMap::new(),
            tombstones: Vec::new(),
            seqs: BTreeMap::new(),
        }
    }

    fn bump(&mut self, folder: FolderKind) -> u64 {
        let s = self.seqs.entry(folder).or_insert(0);
        *s += 1;
        *s
    }

    pub fn seq(&self, folder: FolderKind) -> u64 {
        self.seqs.get(&folder).copied().unwrap_or(0)
    }

    /// Marks an item changed: new ChangeKey and a new place in the folder's
    /// change order.
    fn touch(&mut self, no: u64, now: DateTime<Utc>) {
        let Some(folder) = self.items.get(&no).map(|i| i.folder) else {
            return;
        };
        let seq = self.bump(folder);
        if let Some(item) = self.items.get_mut(&no) {
            item.version += 1;
            item.modified_seq = seq;
            item.modified = now;
        }
    }

    fn remove(&mut self, no: u64) -> Option<StoredItem> {
        let item = self.items.remove(&no)?;
        let deleted_seq = self.bump(item.folder);
        self.tombstones.push(Tombstone {
            no,
            folder: item.folder,
            created_seq: item.created_seq,
            deleted_seq,
        });
        Some(item)
    }

    /// The calendar item of a meeting, by UID.
    pub fn calendar_item(&self, uid: &str) -> Option<&StoredItem> {
        self.items.values().find(|i| {
            i.folder == FolderKind::Calendar
                && i.class == ItemClass::CalendarItem
                && i.meeting.as_ref().is_some_and(|m| m.uid == uid)
        })
    }

    fn calendar_item_no(&self, uid: &str) -> Option<u64> {
        self.calendar_item(uid).map(|i| i.no)
    }
}

/// A change SyncFolderItems reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncChange {
    Create(u64),
    Update(u64),
    Delete(u64),
}

/// The answer to a sync: changes in order, the new counter, and whether
/// everything up to the folder's current state is included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub changes: Vec<SyncChange>,
    pub seq: u64,
    pub includes_last: bool,
}

/// What an organizer sends when inviting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeetingInput {
    pub uid: Option<String>,
    pub subject: String,
    pub body: String,
    pub location: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub time_zone: String,
    pub required: Vec<String>,
    pub optional: Vec<String>,
    pub resources: Vec<String>,
    pub recurrence: Option<String>,
}

/// Fields an organizer may change in an update; `None` keeps the value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeetingChanges {
    pub subject: Option<String>,
    pub body: Option<String>,
    pub location: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub required: Option<Vec<String>>,
    pub optional: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub recurrence: Option<Option<String>>,
}

/// A login that may use EWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `DOMAIN\user`, `user@domain` or an SMTP address.
    pub login: String,
    pub password: String,
    /// The ApplicationImpersonation role.
    pub impersonation: bool,
    /// The account's own mailbox, if it has one.
    pub mailbox: Option<String>,
}

impl Account {
    /// Whether a login name (as NTLM or Basic sends it) is this account.
    pub fn matches(&self, user: &str, domain: &str) -> bool {
        let mine = self.login.to_lowercase();
        let user = user.to_lowercase();
        let domain = domain.to_lowercase();
        let bare = mine.rsplit('\\').next().unwrap_or(&mine).to_owned();
        let sam = bare.split('@').next().unwrap_or(&bare).to_owned();
        let given_bare = user.rsplit('\\').next().unwrap_or(&user).to_owned();
        let given_sam = given_bare.split('@').next().unwrap_or(&given_bare);
        mine == user
            || (!domain.is_empty() && mine == format!("{domain}\\{user}"))
            || bare == given_bare
            || sam == given_sam
    }
}

/// A room list (a distribution group of rooms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    pub smtp: String,
    pub name: String,
    pub rooms: Vec<String>,
}

/// The whole organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    pub mailboxes: BTreeMap<String, MailboxState>,
    pub room_lists: Vec<RoomList>,
    pub accounts: Vec<Account>,
    pub next_item: u64,
    /// Changes whenever the world is rebuilt, so that SyncStates from an
    /// earlier simulator run are refused as Exchange refuses foreign ones.
    pub epoch: u64,
}

/// Normalises an address the way Exchange compares them.
pub fn norm(smtp: &str) -> String {
    smtp.trim().to_lowercase()
}

impl World {
    pub fn new(epoch: u64) -> Self {
        Self {
            mailboxes: BTreeMap::new(),
            room_lists: Vec::new(),
            accounts: Vec::new(),
            next_item: 1,
            epoch,
        }
    }

    pub fn add_mailbox(&mut self, mut info: MailboxInfo) -> Result<(), SimError> {
        info.smtp = norm(&info.smtp);
        if !info.smtp.contains('@') {
            return Err(SimError::Invalid(format!("{:?} is not an SMTP address", info.smtp)));
        }
        if self.mailboxes.contains_key(&info.smtp) {
            return Err(SimError::Conflict(format!("mailbox {} exists", info.smtp)));
        }
        if info.legacy_dn.is_empty() {
            let alias = info.smtp.split('@').next().unwrap_or_default();
            info.legacy_dn =
                format!("/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={alias}");
        }
        self.mailboxes.insert(info.smtp.clone(), MailboxState::new(info));
        Ok(())
    }

    pub fn mailbox(&self, smtp: &str) -> Result<&MailboxState, SimError> {
        self.mailboxes
            .get(&norm(smtp))
            .ok_or_else(|| SimError::NoMailbox(smtp.to_owned()))
    }

    fn mailbox_mut(&mut self, smtp: &str) -> Result<&mut MailboxState, SimError> {
        self.mailboxes
            .get_mut(&norm(smtp))
            .ok_or_else(|| SimError::NoMailbox(smtp.to_owned()))
    }

    /// Finds a mailbox by SMTP address or legacy DN, case-insensitively.
    pub fn resolve(&self, address: &str) -> Option<&MailboxInfo> {
        let a = norm(address);
        let a = a.strip_prefix("smtp:").unwrap_or(&a);
        // The map is keyed by the normalised SMTP address: look there first,
        // and scan for a legacy DN only when that misses.
        if let Some(m) = self.mailboxes.get(a) {
            return Some(&m.info);
        }
        self.mailboxes
            .values()
            .map(|m| &m.info)
            .find(|i| i.smtp == a || i.legacy_dn.to_lowercase() == a)
    }

    /// Adds an item to a folder and returns its number.
    fn put(&mut self, smtp: &str, mut item: StoredItem) -> Result<u64, SimError> {
        let no = self.next_item;
        self.next_item += 1;
        let mb = self.mailbox_mut(smtp)?;
        let seq = mb.bump(item.folder);
        item.no = no;
        item.created_seq = seq;
        item.modified_seq = seq;
        mb.items.insert(no, item);
        Ok(no)
    }

    fn blank(folder: FolderKind, class: ItemClass, now: DateTime<Utc>) -> StoredItem {
        StoredItem {
            no: 0,
            folder,
            class,
            version: 1,
            created_seq: 0,
            modified_seq: 0,
            subject: String::new(),
            body: String::new(),
            from: None,
            to: Vec::new(),
            received: now,
            modified: now,
            is_read: false,
            meeting: None,
            my_response: None,
            associated: None,
            is_update: false,
            recurrence_id: None,
            voting: Vec::new(),
        }
    }

    /// An organizer sends a meeting: their calendar item, then a request in
    /// each known attendee's Inbox and a tentative item in their calendar.
    /// Unknown (external) attendees are kept on the item but get nothing.
    pub fn invite(&mut self, organizer: &str, input: MeetingInput, now: DateTime<Utc>) -> Result<String, SimError> {
        let organizer = norm(organizer);
        self.mailbox(&organizer)?;
        if input.end <= input.start {
            return Err(SimError::Invalid("end must be after start".into()));
        }
        let uid = input
            .uid
            .clone()
            .unwrap_or_else(|| new_uid(self.next_item ^ (self.epoch << 32), now));
        if self.mailbox(&organizer)?.calendar_item(&uid).is_some() {
            return Err(SimError::Conflict(format!("meeting {uid} exists")));
        }
        let list = |v: &[String]| v.iter().map(|s| AttendeeState::invited(&norm(s))).collect::<Vec<_>>();
        let meeting = Meeting {
            uid: uid.clone(),
            subject: input.subject,
            body: input.body,
            location: input.location,
            start: input.start,
            end: input.end,
            time_zone: input.time_zone,
            organizer: organizer.clone(),
            required: list(&input.required),
            optional: list(&input.optional),
            resources: list(&input.resources),
            sequence: 0,
            recurrence: input.recurrence,
            deleted_occurrences: Vec::new(),
            modified_occurrences: Vec::new(),
            cancelled: false,
            created: now,
        };
        // An invalid RRULE must fail the invitation, not a later read.
        meeting.series()?;
        let mut item = Self::blank(FolderKind::Calendar, ItemClass::CalendarItem, now);
        item.subject = meeting.subject.clone();
        item.body = meeting.body.clone();
        item.my_response = Some(ResponseKind::Organizer);
        item.is_read = true;
        item.meeting = Some(meeting.clone());
        self.put(&organizer, item)?;
        let recipients: Vec<String> = meeting.attendees().map(|a| a.smtp.clone()).collect();
        for smtp in recipients {
            self.deliver_request(&smtp, &meeting, false, now)?;
        }
        Ok(uid)
    }

    /// Puts a meeting request in an attendee's Inbox and creates or updates
    /// their calendar item. Attendees without a mailbox here are skipped.
    fn deliver_request(
        &mut self,
        smtp: &str,
        meeting: &Meeting,
        is_update: bool,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        self.deliver_request_for(smtp, meeting, is_update, None, now)
    }

    /// Delivers a request for the whole meeting, or for the occurrence that
    /// started at `recurrence_id` when given.
    fn deliver_request_for(
        &mut self,
        smtp: &str,
        meeting: &Meeting,
        is_update: bool,
        recurrence_id: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        if !self.mailboxes.contains_key(smtp) || smtp == meeting.organizer {
            return Ok(());
        }
        let existing = self.mailbox(smtp)?.calendar_item_no(&meeting.uid);
        let cal_no = match existing {
            Some(no) => {
                let mb = self.mailbox_mut(smtp)?;
                if let Some(item) = mb.items.get_mut(&no) {
                    let moved = item
                        .meeting
                        .as_ref()
                        .is_some_and(|m| m.start != meeting.start || m.end != meeting.end);
                    item.subject = meeting.subject.clone();
                    item.body = meeting.body.clone();
                    item.meeting = Some(meeting.clone());
                    // A new time needs a new answer; other changes keep it.
                    if moved {
                        item.my_response = Some(ResponseKind::NoResponseReceived);
                    }
                }
                mb.touch(no, now);
                no
            }
            None => {
                let mut item = Self::blank(FolderKind::Calendar, ItemClass::CalendarItem, now);
                item.subject = meeting.subject.clone();
                item.body = meeting.body.clone();
                item.my_response = Some(ResponseKind::NoResponseReceived);
                item.meeting = Some(meeting.clone());
                self.put(smtp, item)?
            }
        };
        let mut req = Self::blank(FolderKind::Inbox, ItemClass::MeetingRequest, now);
        req.subject = meeting.subject.clone();
        req.body = meeting.body.clone();
        req.from = Some(meeting.organizer.clone());
        req.to = meeting.required.iter().map(|a| a.smtp.clone()).collect();
        req.meeting = Some(meeting.clone());
        req.associated = Some(cal_no);
        req.is_update = is_update;
        req.recurrence_id = recurrence_id;
        self.put(smtp, req)?;
        Ok(())
    }

    /// Tells an attendee that one occurrence is cancelled: their series
    /// loses it and a MeetingCancellation names it by RecurrenceId.
    fn deliver_occurrence_cancellation(
        &mut self,
        smtp: &str,
        meeting: &Meeting,
        original_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        if !self.mailboxes.contains_key(smtp) || smtp == meeting.organizer {
            return Ok(());
        }
        let cal = self.mailbox(smtp)?.calendar_item_no(&meeting.uid);
        if let Some(no) = cal {
            let mb = self.mailbox_mut(smtp)?;
            if let Some(item) = mb.items.get_mut(&no) {
                item.meeting = Some(meeting.clone());
            }
            mb.touch(no, now);
        }
        let mut msg = Self::blank(FolderKind::Inbox, ItemClass::MeetingCancellation, now);
        msg.subject = format!("Canceled: {}", meeting.subject);
        msg.body = meeting.body.clone();
        msg.from = Some(meeting.organizer.clone());
        msg.to = vec![smtp.to_owned()];
        msg.meeting = Some(meeting.clone());
        msg.associated = cal;
        msg.recurrence_id = Some(original_start);
        self.put(smtp, msg)?;
        Ok(())
    }

    fn deliver_cancellation(&mut self, smtp: &str, meeting: &Meeting, now: DateTime<Utc>) -> Result<(), SimError> {
        if !self.mailboxes.contains_key(smtp) || smtp == meeting.organizer {
            return Ok(());
        }
        let cal = self.mailbox(smtp)?.calendar_item_no(&meeting.uid);
        if let Some(no) = cal {
            let mb = self.mailbox_mut(smtp)?;
            if let Some(item) = mb.items.get_mut(&no) {
                item.subject = format!("Canceled: {}", meeting.subject);
                let mut m = meeting.clone();
                m.cancelled = true;
                item.meeting = Some(m);
            }
            mb.touch(no, now);
        }
        let mut msg = Self::blank(FolderKind::Inbox, ItemClass::MeetingCancellation, now);
        msg.subject = format!("Canceled: {}", meeting.subject);
        msg.body = meeting.body.clone();
        msg.from = Some(meeting.organizer.clone());
        msg.to = vec![smtp.to_owned()];
        let mut m = meeting.clone();
        m.cancelled = true;
        msg.meeting = Some(m);
        msg.associated = cal;
        self.put(smtp, msg)?;
        Ok(())
    }

    fn organizer_item(&self, organizer: &str, uid: &str) -> Result<u64, SimError> {
        let mb = self.mailbox(organizer)?;
        match mb.calendar_item(uid) {
            Some(i) if i.meeting.as_ref().is_some_and(|m| m.organizer == mb.info.smtp) => Ok(i.no),
            Some(_) => Err(SimError::Invalid(format!("{organizer} is not the organizer of {uid}"))),
            None => Err(SimError::NoItem(format!("meeting {uid} in {organizer}'s calendar"))),
        }
    }

    /// The organizer changes a meeting: sequence raised, a new request to
    /// every attendee, a cancellation to those removed.
    pub fn update(
        &mut self,
        organizer: &str,
        uid: &str,
        changes: MeetingChanges,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let organizer = norm(organizer);
        let no = self.organizer_item(&organizer, uid)?;
        let mb = self.mailbox_mut(&organizer)?;
        let Some(item) = mb.items.get_mut(&no) else {
            return Err(SimError::NoItem(uid.to_owned()));
        };
        let Some(meeting) = item.meeting.as_mut() else {
            return Err(SimError::NoItem(uid.to_owned()));
        };
        let before = meeting.clone();
        let keep = |old: &[AttendeeState], new: Option<Vec<String>>| -> Vec<AttendeeState> {
            match new {
                None => old.to_vec(),
                Some(list) => list
                    .iter()
                    .map(|s| {
                        let s = norm(s);
                        old.iter()
                            .find(|a| a.smtp == s)
                            .cloned()
                            .unwrap_or_else(|| AttendeeState::invited(&s))
                    })
                    .collect(),
            }
        };
        if let Some(s) = changes.subject {
            meeting.subject = s;
        }
        if let Some(b) = changes.body {
            meeting.body = b;
        }
        if let Some(l) = changes.location {
            meeting.location = Some(l);
        }
        if let Some(s) = changes.start {
            meeting.start = s;
        }
        if let Some(e) = changes.end {
            meeting.end = e;
        }
        if let Some(r) = changes.recurrence {
            meeting.recurrence = r;
        }
        meeting.required = keep(&before.required, changes.required);
        meeting.optional = keep(&before.optional, changes.optional);
        meeting.resources = keep(&before.resources, changes.resources);
        if meeting.end <= meeting.start {
            *meeting = before;
            return Err(SimError::Invalid("end must be after start".into()));
        }
        if let Err(e) = meeting.series() {
            *meeting = before;
            return Err(e);
        }
        let moved =
            meeting.start != before.start || meeting.end != before.end || meeting.recurrence != before.recurrence;
        if moved {
            for a in meeting
                .required
                .iter_mut()
                .chain(meeting.optional.iter_mut())
                .chain(meeting.resources.iter_mut())
            {
                a.response = ResponseKind::NoResponseReceived;
                a.last_response_time = None;
            }
        }
        meeting.sequence += 1;
        let after = meeting.clone();
        item.subject = after.subject.clone();
        item.body = after.body.clone();
        mb.touch(no, now);
        let removed: Vec<String> = before
            .attendees()
            .filter(|a| !after.attendees().any(|b| b.smtp == a.smtp))
            .map(|a| a.smtp.clone())
            .collect();
        for smtp in removed {
            self.deliver_cancellation(&smtp, &after, now)?;
        }
        let recipients: Vec<String> = after.attendees().map(|a| a.smtp.clone()).collect();
        for smtp in recipients {
            self.deliver_request(&smtp, &after, true, now)?;
        }
        Ok(())
    }

    /// An attendee forwards the invitation they hold to `to` (a room, say):
    /// each recipient gets a MeetingRequest whose Organizer is still the
    /// organiser and whose From is the forwarder, as Exchange delivers it.
    pub fn forward(&mut self, from: &str, uid: &str, to: &[String], now: DateTime<Utc>) -> Result<(), SimError> {
        let from = norm(from);
        let no = self
            .mailbox(&from)?
            .calendar_item_no(uid)
            .ok_or_else(|| SimError::NoItem(format!("{from} holds no meeting {uid}")))?;
        let meeting = self
            .mailbox(&from)?
            .items
            .get(&no)
            .and_then(|i| i.meeting.clone())
            .ok_or_else(|| SimError::NoItem(uid.to_owned()))?;
        for smtp in to {
            let smtp = norm(smtp);
            self.deliver_request_for(&smtp, &meeting, false, None, now)?;
            let mb = self.mailbox_mut(&smtp)?;
            if let Some(req) = mb.items.values_mut().rev().find(|i| {
                i.folder == FolderKind::Inbox
                    && i.class == ItemClass::MeetingRequest
                    && i.meeting.as_ref().is_some_and(|m| m.uid == uid)
            }) {
                req.from = Some(from.clone());
            }
        }
        Ok(())
    }

    /// Checks that `original_start` is an occurrence of the organizer's
    /// series and returns the item number.
    fn series_item(&self, organizer: &str, uid: &str, original_start: DateTime<Utc>) -> Result<u64, SimError> {
        let no = self.organizer_item(organizer, uid)?;
        let m = self
            .mailbox(organizer)?
            .items
            .get(&no)
            .and_then(|i| i.meeting.clone())
            .ok_or_else(|| SimError::NoItem(uid.to_owned()))?;
        if m.recurrence.is_none() {
            return Err(SimError::Invalid(format!("meeting {uid} is not recurring")));
        }
        let window = Duration::days(1);
        let found = m
            .occurrences(original_start - window, original_start + window)?
            .iter()
            .any(|o| o.original_start == original_start);
        if !found {
            return Err(SimError::NoItem(format!("occurrence {original_start} of {uid}")));
        }
        Ok(no)
    }

    /// The organizer moves one occurrence: an exception on the series, and
    /// a meeting request for that occurrence (with its RecurrenceId) to
    /// every attendee.
    pub fn update_occurrence(
        &mut self,
        organizer: &str,
        uid: &str,
        original_start: DateTime<Utc>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let organizer = norm(organizer);
        if end <= start {
            return Err(SimError::Invalid("end must be after start".into()));
        }
        let no = self.series_item(&organizer, uid, original_start)?;
        let mb = self.mailbox_mut(&organizer)?;
        let Some(m) = mb.items.get_mut(&no).and_then(|i| i.meeting.as_mut()) else {
            return Err(SimError::NoItem(uid.to_owned()));
        };
        m.modified_occurrences.retain(|x| x.original_start != original_start);
        m.modified_occurrences.push(ModifiedOccurrence {
            original_start,
            start,
            end,
        });
        let after = m.clone();
        mb.touch(no, now);
        let recipients: Vec<String> = after.attendees().map(|a| a.smtp.clone()).collect();
        for smtp in recipients {
            self.deliver_request_for(&smtp, &after, true, Some(original_start), now)?;
        }
        Ok(())
    }

    /// The organizer deletes one occurrence: it joins the series'
    /// deleted occurrences, and each attendee gets a cancellation for it.
    pub fn delete_occurrence(
        &mut self,
        organizer: &str,
        uid: &str,
        original_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let organizer = norm(organizer);
        let no = self.series_item(&organizer, uid, original_start)?;
        let mb = self.mailbox_mut(&organizer)?;
        let Some(m) = mb.items.get_mut(&no).and_then(|i| i.meeting.as_mut()) else {
            return Err(SimError::NoItem(uid.to_owned()));
        };
        m.modified_occurrences.retain(|x| x.original_start != original_start);
        m.deleted_occurrences.push(original_start);
        let after = m.clone();
        mb.touch(no, now);
        let recipients: Vec<String> = after.attendees().map(|a| a.smtp.clone()).collect();
        for smtp in recipients {
            self.deliver_occurrence_cancellation(&smtp, &after, original_start, now)?;
        }
        Ok(())
    }

    /// The organizer cancels: their item goes, each attendee gets a
    /// MeetingCancellation and their calendar item is marked cancelled.
    pub fn cancel(&mut self, organizer: &str, uid: &str, now: DateTime<Utc>) -> Result<(), SimError> {
        let organizer = norm(organizer);
        let no = self.organizer_item(&organizer, uid)?;
        let mb = self.mailbox_mut(&organizer)?;
        let Some(mut meeting) = mb.remove(no).and_then(|i| i.meeting) else {
            return Err(SimError::NoItem(uid.to_owned()));
        };
        meeting.sequence += 1;
        meeting.cancelled = true;
        let recipients: Vec<String> = meeting.attendees().map(|a| a.smtp.clone()).collect();
        for smtp in recipients {
            self.deliver_cancellation(&smtp, &meeting, now)?;
        }
        Ok(())
    }

    /// An attendee answers the meeting with this UID (from the control API,
    /// where there is no item id at hand).
    pub fn reply_by_uid(
        &mut self,
        attendee: &str,
        uid: &str,
        reply: Reply,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let attendee = norm(attendee);
        let mb = self.mailbox(&attendee)?;
        // The latest request for the meeting, else its calendar item.
        let target = mb
            .items
            .values()
            .filter(|i| {
                i.class == ItemClass::MeetingRequest
                    && i.folder == FolderKind::Inbox
                    && i.meeting.as_ref().is_some_and(|m| m.uid == uid)
            })
            .map(|i| i.no)
            .max()
            .or_else(|| mb.calendar_item_no(uid))
            .ok_or_else(|| SimError::NoItem(format!("meeting {uid} in {attendee}'s mailbox")))?;
        self.reply(&attendee, target, reply, Some(body), now)
    }

    /// An attendee answers a meeting request or calendar item: a
    /// MeetingResponse in the organizer's Inbox with the body, the
    /// attendee's status on the organizer's item, the attendee's own item
    /// updated (removed on decline), the request moved to Deleted Items and
    /// a copy of the response in Sent Items.
    pub fn reply(
        &mut self,
        attendee: &str,
        item_no: u64,
        reply: Reply,
        body: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let attendee = norm(attendee);
        let mb = self.mailbox(&attendee)?;
        let item = mb
            .items
            .get(&item_no)
            .ok_or_else(|| SimError::NoItem(format!("item {item_no}")))?;
        let meeting = match (&item.class, &item.meeting) {
            (ItemClass::MeetingRequest | ItemClass::CalendarItem, Some(m)) => m.clone(),
            _ => {
                return Err(SimError::Invalid(
                    "only a meeting request or a calendar item can be answered".into(),
                ));
            }
        };
        if meeting.cancelled {
            return Err(SimError::Cancelled(meeting.uid));
        }
        if meeting.organizer == attendee {
            return Err(SimError::Invalid(
                "the organizer cannot answer their own meeting".into(),
            ));
        }
        let request_no = (item.class == ItemClass::MeetingRequest).then_some(item.no);
        let cal_no = mb.calendar_item_no(&meeting.uid);
        // The attendee's side.
        let mb = self.mailbox_mut(&attendee)?;
        if let Some(no) = cal_no {
            if reply == Reply::Decline {
                mb.remove(no);
            } else {
                if let Some(i) = mb.items.get_mut(&no) {
                    i.my_response = Some(reply.response());
                }
                mb.touch(no, now);
            }
        }
        if let Some(no) = request_no
            && let Some(mut moved) = mb.remove(no)
        {
            moved.folder = FolderKind::DeletedItems;
            moved.is_read = true;
            moved.associated = if reply == Reply::Decline { None } else { cal_no };
            self.put(&attendee, moved)?;
        }
        let subject = format!("{}{}", reply.subject_prefix(), meeting.subject);
        let mut sent = Self::blank(FolderKind::SentItems, ItemClass::MeetingResponse(reply), now);
        sent.subject = subject.clone();
        sent.body = body.unwrap_or_default().to_owned();
        sent.from = Some(attendee.clone());
        sent.to = vec![meeting.organizer.clone()];
        sent.is_read = true;
        sent.meeting = Some(meeting.clone());
        self.put(&attendee, sent)?;
        // The organizer's side, when the organizer is a mailbox here.
        if !self.mailboxes.contains_key(&meeting.organizer) {
            return Ok(());
        }
        let org = meeting.organizer.clone();
        let org_cal = self.mailbox(&org)?.calendar_item_no(&meeting.uid);
        if let Some(no) = org_cal {
            let mb = self.mailbox_mut(&org)?;
            if let Some(m) = mb.items.get_mut(&no).and_then(|i| i.meeting.as_mut())
                && let Some(a) = m.attendee_mut(&attendee)
            {
                a.response = reply.response();
                a.last_response_time = Some(now);
            }
            mb.touch(no, now);
        }
        let mut resp = Self::blank(FolderKind::Inbox, ItemClass::MeetingResponse(reply), now);
        resp.subject = subject;
        resp.body = body.unwrap_or_default().to_owned();
        resp.from = Some(attendee.clone());
        resp.to = vec![org.clone()];
        resp.meeting = Some(meeting);
        resp.associated = org_cal;
        self.put(&org, resp)?;
        Ok(())
    }

    /// Sends a plain message: a copy in each known recipient's Inbox and in
    /// the sender's Sent Items.
    pub fn send_message(
        &mut self,
        from: &str,
        to: &[String],
        subject: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, SimError> {
        self.send_voting_message(from, to, subject, body, &[], now)
    }

    /// Sends a message with Outlook voting buttons (none when `voting` is
    /// empty), as [`World::send_message`].
    pub fn send_voting_message(
        &mut self,
        from: &str,
        to: &[String],
        subject: &str,
        body: &str,
        voting: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, SimError> {
        let from = norm(from);
        self.mailbox(&from)?;
        let to: Vec<String> = to.iter().map(|s| norm(s)).collect();
        let mut msg = Self::blank(FolderKind::Inbox, ItemClass::Message, now);
        msg.subject = subject.to_owned();
        msg.body = body.to_owned();
        msg.from = Some(from.clone());
        msg.to = to.clone();
        msg.voting = voting.to_vec();
        for r in &to {
            if self.mailboxes.contains_key(r) {
                self.put(r, msg.clone())?;
            }
        }
        msg.folder = FolderKind::SentItems;
        msg.is_read = true;
        self.put(&from, msg)
    }

    /// Saves a calendar item without sending anything (an appointment, or
    /// a meeting saved with SendToNone).
    pub fn save_appointment(&mut self, owner: &str, input: MeetingInput, now: DateTime<Utc>) -> Result<u64, SimError> {
        let owner = norm(owner);
        if input.end <= input.start {
            return Err(SimError::Invalid("end must be after start".into()));
        }
        let list = |v: &[String]| v.iter().map(|s| AttendeeState::invited(&norm(s))).collect::<Vec<_>>();
        let meeting = Meeting {
            uid: input
                .uid
                .clone()
                .unwrap_or_else(|| new_uid(self.next_item ^ (self.epoch << 32), now)),
            subject: input.subject,
            body: input.body,
            location: input.location,
            start: input.start,
            end: input.end,
            time_zone: input.time_zone,
            organizer: owner.clone(),
            required: list(&input.required),
            optional: list(&input.optional),
            resources: list(&input.resources),
            sequence: 0,
            recurrence: input.recurrence,
            deleted_occurrences: Vec::new(),
            modified_occurrences: Vec::new(),
            cancelled: false,
            created: now,
        };
        meeting.series()?;
        let mut item = Self::blank(FolderKind::Calendar, ItemClass::CalendarItem, now);
        item.subject = meeting.subject.clone();
        item.body = meeting.body.clone();
        item.my_response = Some(ResponseKind::Organizer);
        item.is_read = true;
        item.meeting = Some(meeting);
        self.put(&owner, item)
    }

    /// Deletes an item (DeleteItem). An organizer's meeting with
    /// `send_cancellations` is cancelled for everyone.
    pub fn delete_item(
        &mut self,
        owner: &str,
        no: u64,
        send_cancellations: bool,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let owner = norm(owner);
        let mb = self.mailbox(&owner)?;
        let item = mb
            .items
            .get(&no)
            .ok_or_else(|| SimError::NoItem(format!("item {no}")))?;
        if send_cancellations
            && item.class == ItemClass::CalendarItem
            && let Some(m) = &item.meeting
            && m.organizer == owner
            && m.attendees().next().is_some()
        {
            let uid = m.uid.clone();
            return self.cancel(&owner, &uid, now);
        }
        self.mailbox_mut(&owner)?.remove(no);
        Ok(())
    }

    /// The changes in a folder after counter `since`, at most `max`.
    pub fn sync(&self, smtp: &str, folder: FolderKind, since: u64, max: usize) -> Result<SyncResult, SimError> {
        let mb = self.mailbox(smtp)?;
        let current = mb.seq(folder);
        if since > current {
            return Err(SimError::BadSyncState);
        }
        // (last change, created, item, alive)
        let mut entries: Vec<(u64, u64, u64, bool)> = mb
            .items
            .values()
            .filter(|i| i.folder == folder && i.modified_seq > since)
            .map(|i| (i.modified_seq, i.created_seq, i.no, true))
            .chain(
                mb.tombstones
                    .iter()
                    .filter(|t| t.folder == folder && t.deleted_seq > since)
                    .map(|t| (t.deleted_seq, t.created_seq, t.no, false)),
            )
            .collect();
        entries.sort_unstable();
        let mut changes = Vec::new();
        let mut seq = since;
        let mut includes_last = true;
        for (last, created, no, alive) in entries {
            if changes.len() >= max {
                includes_last = false;
                break;
            }
            seq = last;
            match (alive, created > since) {
                (true, true) => changes.push(SyncChange::Create(no)),
                (true, false) => changes.push(SyncChange::Update(no)),
                // Created and deleted since the last sync: nothing to say.
                (false, true) => {}
                (false, false) => changes.push(SyncChange::Delete(no)),
            }
        }
        if includes_last {
            seq = current;
        }
        Ok(SyncResult {
            changes,
            seq,
            includes_last,
        })
    }
}

/// A new meeting UID shaped like Outlook's: the hex of a GlobalObjectId
/// with a unique payload: the item counter salted with the epoch, so two
/// simulators on one clock never hand out the same UID.
pub fn new_uid(salt: u64, now: DateTime<Utc>) -> String {
    let mut data = Vec::with_capacity(16);
    data.extend_from_slice(&salt.to_le_bytes());
    data.extend_from_slice(&now.timestamp_nanos_opt().unwrap_or_default().to_le_bytes());
    let goid = global_object_id(&data, None);
    goid.iter().map(|b| format!("{b:02X}")).collect()
}

/// The PidLidGlobalObjectId header: class id and the instance date bytes.
const GOID_CLASS: [u8; 16] = [
    0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0, 0x08,
];

/// Builds a GlobalObjectId (MS-OXOCAL 2.2.1.27) around `data`, with the
/// instance date of an occurrence when given.
pub fn global_object_id(data: &[u8], instance: Option<chrono::NaiveDate>) -> Vec<u8> {
    use chrono::Datelike;
    let mut v = GOID_CLASS.to_vec();
    match instance {
        Some(d) => {
            let year = u16::try_from(d.year()).unwrap_or(0);
            v.extend_from_slice(&year.to_be_bytes());
            v.push(u8::try_from(d.month()).unwrap_or(0));
            v.push(u8::try_from(d.day()).unwrap_or(0));
        }
        None => v.extend_from_slice(&[0; 4]),
    }
    v.extend_from_slice(&[0; 8]); // creation time
    v.extend_from_slice(&[0; 8]); // reserved
    v.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// The GlobalObjectId bytes for a UID: Outlook UIDs are its hex; any other
/// UID is wrapped in the `vCal-Uid` form Exchange uses for iCalendar UIDs.
pub fn goid_for_uid(uid: &str) -> Vec<u8> {
    let hex: Option<Vec<u8>> = uid
        .len()
        .is_multiple_of(2)
        .then(|| {
            (0..uid.len())
                .step_by(2)
                .map(|i| uid.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect()
        })
        .flatten();
    match hex {
        Some(b) if b.starts_with(&GOID_CLASS) => b,
        _ => {
            let mut data = b"vCal-Uid\x01\x00\x00\x00".to_vec();
            data.extend_from_slice(uid.as_bytes());
            data.push(0);
            global_object_id(&data, None)
        }
    }
}

/// A default duration when a client gives only a start.
pub fn default_duration() -> Duration {
    Duration::minutes(30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).single().unwrap_or_default()
    }

    fn world() -> World {
        let mut w = World::new(7);
        for (smtp, kind) in [
            ("alice@x.fr", MailboxKind::User),
            ("salle@x.fr", MailboxKind::Room),
            ("bob@x.fr", MailboxKind::User),
        ] {
            w.add_mailbox(MailboxInfo {
                smtp: smtp.into(),
                name: smtp.into(),
                kind,
                legacy_dn: String::new(),
                routing: Routing::Smtp,
            })
            .ok();
        }
        w
    }

    fn input() -> MeetingInput {
        MeetingInput {
            subject: "Réunion".into(),
            body: "Ordre du jour".into(),
            start: t(9),
            end: t(10),
            time_zone: "Europe/Paris".into(),
            required: vec!["bob@x.fr".into()],
            resources: vec!["Salle@x.fr".into()],
            ..MeetingInput::default()
        }
    }

    fn classes(w: &World, smtp: &str, folder: FolderKind) -> Vec<ItemClass> {
        w.mailbox(smtp)
            .map(|m| {
                m.items
                    .values()
                    .filter(|i| i.folder == folder)
                    .map(|i| i.class)
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn invitation_reply_and_sync() {
        let mut w = world();
        let uid = w.invite("alice@x.fr", input(), t(8)).unwrap_or_default();
        assert_eq!(
            classes(&w, "salle@x.fr", FolderKind::Inbox),
            vec![ItemClass::MeetingRequest]
        );
        assert_eq!(
            classes(&w, "salle@x.fr", FolderKind::Calendar),
            vec![ItemClass::CalendarItem]
        );
        let first = w.sync("salle@x.fr", FolderKind::Inbox, 0, 10).ok();
        assert!(matches!(
            first.as_ref().map(|r| r.changes.as_slice()),
            Some([SyncChange::Create(_)])
        ));
        let seq = first.map(|r| r.seq).unwrap_or_default();
        assert!(w.reply_by_uid("salle@x.fr", &uid, Reply::Accept, "OK", t(8)).is_ok());
        assert_eq!(
            classes(&w, "alice@x.fr", FolderKind::Inbox),
            vec![ItemClass::MeetingResponse(Reply::Accept)]
        );
        let org = w
            .mailbox("alice@x.fr")
            .ok()
            .and_then(|m| m.calendar_item(&uid))
            .cloned();
        let status = org
            .and_then(|i| i.meeting)
            .and_then(|m| m.resources.first().map(|a| a.response));
        assert_eq!(status, Some(ResponseKind::Accept));
        // The request left the Inbox: a Delete for the room's next sync.
        let next = w.sync("salle@x.fr", FolderKind::Inbox, seq, 10).ok();
        assert!(matches!(next.map(|r| r.changes), Some(c) if matches!(c.as_slice(), [SyncChange::Delete(_)])));
    }

    #[test]
    fn decline_removes_and_update_raises_sequence() {
        let mut w = world();
        let uid = w.invite("alice@x.fr", input(), t(8)).unwrap_or_default();
        assert!(w.reply_by_uid("bob@x.fr", &uid, Reply::Decline, "non", t(8)).is_ok());
        assert!(classes(&w, "bob@x.fr", FolderKind::Calendar).is_empty());
        let changes = MeetingChanges {
            start: Some(t(11)),
            end: Some(t(12)),
            ..MeetingChanges::default()
        };
        assert!(w.update("alice@x.fr", &uid, changes, t(9)).is_ok());
        let cal = w
            .mailbox("salle@x.fr")
            .ok()
            .and_then(|m| m.calendar_item(&uid))
            .cloned();
        assert_eq!(
            cal.and_then(|i| i.meeting).map(|m| (m.sequence, m.start)),
            Some((1, t(11)))
        );
        assert_eq!(classes(&w, "salle@x.fr", FolderKind::Inbox).len(), 2);
        assert!(w.cancel("alice@x.fr", &uid, t(10)).is_ok());
        assert!(classes(&w, "salle@x.fr", FolderKind::Inbox).contains(&ItemClass::MeetingCancellation));
    }

    #[test]
    fn paged_sync_reports_everything_once() {
        let mut w = world();
        for _ in 0..5 {
            w.invite("alice@x.fr", input(), t(8)).ok();
        }
        let mut seq = 0;
        let mut seen = 0;
        loop {
            let r = w
                .sync("salle@x.fr", FolderKind::Inbox, seq, 2)
                .unwrap_or_else(|e| panic!("{e}"));
            seen += r.changes.len();
            seq = r.seq;
            if r.includes_last {
                break;
            }
        }
        assert_eq!(seen, 5);
        assert!(w.sync("salle@x.fr", FolderKind::Inbox, seq + 1, 2).is_err());
    }

    #[test]
    fn uids_round_trip_to_goids() {
        let uid = new_uid(3, t(1));
        assert_eq!(
            goid_for_uid(&uid)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>(),
            uid
        );
        assert!(goid_for_uid("abc@example").ends_with(b"abc@example\0"));
    }
}
