//! From the simulator's state to EWS wire types: opaque ids (items,
//! folders, SyncStates) and items as GetItem, FindItem and
//! SyncFolderItems return them.
//!
//! Ids are base64 text that carries the mailbox and item number, so the
//! server can find an item from its id alone, as Exchange's ids carry the
//! mailbox GUID. Clients must treat them as opaque, and do.

use base64::Engine as _;
use chrono::{Datelike, Offset, TimeZone, Utc, Weekday};

use super::state::{FolderKind, ItemClass, MailboxInfo, Meeting, ResponseKind, Routing, StoredItem, World};
use crate::domain::recurrence::{self as dom, Occurrence};
use crate::ews::ServerVersion;
use crate::ews::item::{
    BaseShape, CalendarItemType, Item, ItemKind, LegacyFreeBusyStatus, MeetingRequestType, PropertyPath, Shape,
};
use crate::ews::types::{
    self as wire, Attendee, Body, DayOfWeek, DayOfWeekIndex, ExtendedFieldUri, ExtendedProperty, ItemId, Mailbox,
    MailboxType, MeetingTimeZone, Month, OccurrenceInfo, Recurrence, RecurrencePattern, RecurrenceRange, ResponseType,
    RoutingType, TimeZoneDefinition, XsDuration,
};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()?;
    String::from_utf8(raw).ok()
}

/// What an item id designates: an item, or one occurrence of a series
/// (`occurrence` is the 1-based instance index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey {
    pub smtp: String,
    pub no: u64,
    pub occurrence: Option<u32>,
}

pub fn item_id(smtp: &str, no: u64, occurrence: Option<u32>) -> String {
    b64(&format!("I.{no}.{}.{smtp}", occurrence.unwrap_or(0)))
}

pub fn parse_item_id(id: &str) -> Option<ItemKey> {
    let text = unb64(id)?;
    let mut parts = text.splitn(4, '.');
    if parts.next()? != "I" {
        return None;
    }
    let no = parts.next()?.parse().ok()?;
    let occ: u32 = parts.next()?.parse().ok()?;
    let smtp = parts.next()?.to_owned();
    Some(ItemKey {
        smtp,
        no,
        occurrence: (occ > 0).then_some(occ),
    })
}

pub fn change_key(item: &StoredItem) -> String {
    b64(&format!("CK.{}.{}", item.no, item.version))
}

pub fn folder_id(smtp: &str, folder: FolderKind) -> ItemId {
    ItemId {
        id: b64(&format!("F.{}.{smtp}", folder.distinguished())),
        change_key: Some(b64("FCK.1")),
    }
}

pub fn parse_folder_id(id: &str) -> Option<(String, FolderKind)> {
    let text = unb64(id)?;
    let mut parts = text.splitn(3, '.');
    if parts.next()? != "F" {
        return None;
    }
    let folder = FolderKind::from_distinguished(parts.next()?)?;
    Some((parts.next()?.to_owned(), folder))
}

pub fn sync_state(epoch: u64, smtp: &str, folder: FolderKind, seq: u64) -> String {
    b64(&format!("S1.{epoch}.{}.{seq}.{smtp}", folder.distinguished()))
}

/// The counter in a SyncState, when it was issued by this world for this
/// folder.
pub fn parse_sync_state(s: &str, epoch: u64, smtp: &str, folder: FolderKind) -> Option<u64> {
    let text = unb64(s)?;
    let mut parts = text.splitn(5, '.');
    (parts.next()? == "S1").then_some(())?;
    (parts.next()?.parse::<u64>().ok()? == epoch).then_some(())?;
    (parts.next()? == folder.distinguished()).then_some(())?;
    let seq = parts.next()?.parse().ok()?;
    (parts.next()? == smtp).then_some(seq)
}

/// A mailbox as items show it: SMTP, or EX with the legacy DN.
pub fn mailbox(world: &World, smtp: &str) -> Mailbox {
    match world.resolve(smtp) {
        Some(info) => mailbox_of(info),
        None => Mailbox {
            name: Some(smtp.to_owned()),
            email_address: Some(smtp.to_owned()),
            routing_type: Some(RoutingType::Smtp),
            mailbox_type: Some(MailboxType::OneOff),
        },
    }
}

pub fn mailbox_of(info: &MailboxInfo) -> Mailbox {
    let (address, routing) = match info.routing {
        Routing::Smtp => (info.smtp.clone(), RoutingType::Smtp),
        Routing::Ex => (info.legacy_dn.clone(), RoutingType::Ex),
    };
    Mailbox {
        name: Some(info.name.clone()),
        email_address: Some(address),
        routing_type: Some(routing),
        mailbox_type: Some(MailboxType::Mailbox),
    }
}

fn response_type(r: ResponseKind) -> ResponseType {
    match r {
        ResponseKind::Unknown => ResponseType::Unknown,
        ResponseKind::Organizer => ResponseType::Organizer,
        ResponseKind::Tentative => ResponseType::Tentative,
        ResponseKind::Accept => ResponseType::Accept,
        ResponseKind::Decline => ResponseType::Decline,
        ResponseKind::NoResponseReceived => ResponseType::NoResponseReceived,
    }
}

fn attendees(world: &World, list: &[super::state::AttendeeState]) -> Vec<Attendee> {
    list.iter()
        .map(|a| Attendee {
            mailbox: mailbox(world, &a.smtp),
            response_type: Some(response_type(a.response)),
            last_response_time: a.last_response_time,
        })
        .collect()
}

fn weekday(d: Weekday) -> DayOfWeek {
    match d {
        Weekday::Mon => DayOfWeek::Monday,
        Weekday::Tue => DayOfWeek::Tuesday,
        Weekday::Wed => DayOfWeek::Wednesday,
        Weekday::Thu => DayOfWeek::Thursday,
        Weekday::Fri => DayOfWeek::Friday,
        Weekday::Sat => DayOfWeek::Saturday,
        Weekday::Sun => DayOfWeek::Sunday,
    }
}

fn selector(d: dom::DaySelector) -> DayOfWeek {
    match d {
        dom::DaySelector::Day(w) => weekday(w),
        dom::DaySelector::AnyDay => DayOfWeek::Day,
        dom::DaySelector::WorkDay => DayOfWeek::Weekday,
        dom::DaySelector::WeekendDay => DayOfWeek::WeekendDay,
    }
}

fn index(i: dom::WeekIndex) -> DayOfWeekIndex {
    match i {
        dom::WeekIndex::First => DayOfWeekIndex::First,
        dom::WeekIndex::Second => DayOfWeekIndex::Second,
        dom::WeekIndex::Third => DayOfWeekIndex::Third,
        dom::WeekIndex::Fourth => DayOfWeekIndex::Fourth,
        dom::WeekIndex::Last => DayOfWeekIndex::Last,
    }
}

fn month(m: u32) -> Month {
    Month::ALL
        .get((m.max(1) - 1) as usize)
        .copied()
        .unwrap_or(Month::January)
}

/// The EWS Recurrence element of a domain series.
pub fn recurrence(r: &dom::Recurrence) -> Recurrence {
    let pattern = match &r.pattern {
        dom::Pattern::Daily { interval } => RecurrencePattern::Daily { interval: *interval },
        dom::Pattern::Weekly {
            interval,
            days,
            first_day_of_week,
        } => RecurrencePattern::Weekly {
            interval: *interval,
            days_of_week: days.iter().copied().map(weekday).collect(),
            first_day_of_week: Some(weekday(*first_day_of_week)),
        },
        dom::Pattern::AbsoluteMonthly { interval, day_of_month } => RecurrencePattern::AbsoluteMonthly {
            interval: *interval,
            day_of_month: *day_of_month,
        },
        dom::Pattern::RelativeMonthly {
            interval,
            day,
            index: i,
        } => RecurrencePattern::RelativeMonthly {
            interval: *interval,
            days_of_week: selector(*day),
            day_of_week_index: index(*i),
        },
        dom::Pattern::AbsoluteYearly { month: m, day_of_month } => RecurrencePattern::AbsoluteYearly {
            day_of_month: *day_of_month,
            month: month(*m),
        },
        dom::Pattern::RelativeYearly {
            month: m,
            day,
            index: i,
        } => RecurrencePattern::RelativeYearly {
            days_of_week: selector(*day),
            day_of_week_index: index(*i),
            month: month(*m),
        },
    };
    let range = match r.range {
        dom::RecurrenceRange::NoEnd => RecurrenceRange::NoEnd { start: r.start_date },
        dom::RecurrenceRange::EndDate(end) => RecurrenceRange::EndDate {
            start: r.start_date,
            end,
        },
        dom::RecurrenceRange::Numbered(count) => RecurrenceRange::Numbered {
            start: r.start_date,
            count,
        },
    };
    Recurrence { pattern, range }
}

/// The 2007 MeetingTimeZone: the Windows name and the standard offset.
fn meeting_time_zone(m: &Meeting) -> MeetingTimeZone {
    let tz = m.tz();
    let january = Utc
        .with_ymd_and_hms(m.start.year(), 1, 15, 12, 0, 0)
        .single()
        .unwrap_or(m.start);
    let offset = tz
        .offset_from_utc_datetime(&january.naive_utc())
        .fix()
        .local_minus_utc();
    MeetingTimeZone {
        time_zone_name: wire::iana_to_windows(&m.time_zone).map(str::to_owned),
        base_offset: Some(XsDuration(chrono::TimeDelta::seconds(-i64::from(offset)))),
        standard: None,
        daylight: None,
    }
}

/// The exceptions of a series, with the occurrence ids GetItem accepts.
fn modified_occurrences(smtp: &str, no: u64, m: &Meeting) -> Vec<OccurrenceInfo> {
    m.modified_occurrences
        .iter()
        .filter_map(|x| {
            let window = chrono::Duration::days(1);
            let all = m
                .occurrences(x.original_start - window, x.original_start + window)
                .ok()?;
            let o = all.iter().find(|o| o.original_start == x.original_start)?;
            Some(OccurrenceInfo {
                item_id: ItemId::new(item_id(smtp, no, Some(o.index + 1))),
                start: x.start,
                end: x.end,
                original_start: x.original_start,
            })
        })
        .collect()
}

/// Whether a shape asks for anything beyond the id.
fn wants_properties(shape: &Shape) -> bool {
    shape.base_shape != BaseShape::IdOnly || !shape.additional_properties.is_empty()
}

fn wants_extended(shape: &Shape, uri: &ExtendedFieldUri) -> bool {
    shape.additional_properties.iter().any(|p| match p {
        PropertyPath::Extended(e) => e.same_property(uri),
        PropertyPath::Field(_) => false,
    })
}

/// Renders an item (or one occurrence of it) for a response.
pub fn item(
    world: &World,
    owner: &MailboxInfo,
    stored: &StoredItem,
    occurrence: Option<&Occurrence>,
    shape: &Shape,
    version: ServerVersion,
) -> Item {
    let kind = match stored.class {
        ItemClass::CalendarItem => ItemKind::CalendarItem,
        ItemClass::MeetingRequest => ItemKind::MeetingRequest,
        ItemClass::MeetingResponse(_) => ItemKind::MeetingResponse,
        ItemClass::MeetingCancellation => ItemKind::MeetingCancellation,
        ItemClass::Message => ItemKind::Message,
    };
    let mut out = Item::new(kind);
    out.item_id = Some(ItemId {
        id: item_id(&owner.smtp, stored.no, occurrence.map(|o| o.index + 1)),
        change_key: Some(change_key(stored)),
    });
    if !wants_properties(shape) {
        return out;
    }
    out.parent_folder_id = Some(folder_id(&owner.smtp, stored.folder));
    out.item_class = Some(stored.class.message_class().to_owned());
    out.subject = Some(stored.subject.clone());
    out.body = Some(Body::text(stored.body.clone()));
    out.date_time_received = Some(stored.received);
    out.date_time_sent = Some(stored.received);
    out.date_time_created = Some(stored.received);
    out.last_modified_time = Some(stored.modified);
    out.reminder_is_set = Some(false);
    let is_message = stored.class != ItemClass::CalendarItem;
    if is_message {
        out.sender = stored.from.as_deref().map(|s| mailbox(world, s));
        out.from = out.sender.clone();
        out.to_recipients = stored.to.iter().map(|s| mailbox(world, s)).collect();
        out.is_read = Some(stored.is_read);
        out.is_response_requested = Some(stored.class == ItemClass::MeetingRequest);
    }
    let Some(m) = &stored.meeting else {
        return out;
    };
    let series = m.series().ok().flatten();
    // Identity of the meeting across mailboxes.
    let clean = super::state::goid_for_uid(&m.uid);
    // The GlobalObjectId of one occurrence carries its original date.
    let instance = occurrence
        .map(|o| o.original_start)
        .or(stored.recurrence_id)
        .map(|t| t.with_timezone(&m.tz()).date_naive());
    let mut goid = clean.clone();
    if let (Some(d), Some(bytes)) = (instance, goid.get_mut(16..20)) {
        let year = u16::try_from(d.year()).unwrap_or(0).to_be_bytes();
        bytes.copy_from_slice(&[
            year[0],
            year[1],
            u8::try_from(d.month()).unwrap_or(0),
            u8::try_from(d.day()).unwrap_or(0),
        ]);
    }
    for (uri, bytes) in [
        (ExtendedFieldUri::global_object_id(), goid),
        (ExtendedFieldUri::clean_global_object_id(), clean),
    ] {
        if wants_extended(shape, &uri) {
            out.extended_properties.push(ExtendedProperty::binary(uri, &bytes));
        }
    }
    out.uid = Some(m.uid.clone());
    out.date_time_stamp = Some(stored.received);
    if is_message {
        out.associated_calendar_item_id = stored.associated.and_then(|no| {
            let mb = world.mailbox(&owner.smtp).ok()?;
            let cal = mb.items.get(&no)?;
            Some(ItemId {
                id: item_id(&owner.smtp, no, None),
                change_key: Some(change_key(cal)),
            })
        });
        out.is_delegated = Some(false);
        out.is_out_of_date = Some(false);
        out.has_been_processed = Some(true);
        out.response_type = Some(match stored.class {
            ItemClass::MeetingResponse(r) => response_type(r.response()),
            _ => ResponseType::NoResponseReceived,
        });
    }
    if stored.class == ItemClass::MeetingRequest {
        out.meeting_request_type = Some(if stored.is_update {
            MeetingRequestType::FullUpdate
        } else {
            MeetingRequestType::NewMeetingRequest
        });
        out.intended_free_busy_status = Some(LegacyFreeBusyStatus::Busy);
    }
    // A message about one occurrence shows that occurrence's times.
    let exception = stored.recurrence_id.map(|rid| {
        m.modified_occurrences
            .iter()
            .find(|x| x.original_start == rid)
            .map(|x| (x.start, x.end))
            .unwrap_or((rid, rid + (m.end - m.start)))
    });
    let (start, end) = match (occurrence, exception) {
        (Some(o), _) => (o.start, o.end),
        (None, Some(times)) => times,
        (None, None) => (m.start, m.end),
    };
    if let Some(rid) = stored.recurrence_id {
        out.recurrence_id = Some(rid);
    }
    out.start = Some(start);
    out.end = Some(end);
    out.location = m.location.clone();
    if matches!(stored.class, ItemClass::CalendarItem | ItemClass::MeetingRequest) {
        let mine = stored.my_response.unwrap_or(ResponseKind::NoResponseReceived);
        out.is_all_day_event = Some(false);
        out.legacy_free_busy_status = Some(if m.cancelled {
            LegacyFreeBusyStatus::Free
        } else {
            match mine {
                ResponseKind::Organizer | ResponseKind::Accept => LegacyFreeBusyStatus::Busy,
                _ => LegacyFreeBusyStatus::Tentative,
            }
        });
        out.is_meeting = Some(m.attendees().next().is_some());
        out.is_cancelled = Some(m.cancelled);
        out.meeting_request_was_sent = Some(mine == ResponseKind::Organizer && m.attendees().next().is_some());
        if stored.class == ItemClass::CalendarItem {
            out.is_response_requested = Some(true);
            out.my_response_type = Some(response_type(mine));
        } else {
            out.my_response_type = Some(ResponseType::NoResponseReceived);
        }
        out.organizer = Some(mailbox(world, &m.organizer));
        out.required_attendees = attendees(world, &m.required);
        out.optional_attendees = attendees(world, &m.optional);
        out.resources = attendees(world, &m.resources);
        out.appointment_sequence_number = Some(m.sequence);
        out.appointment_state = Some(if m.cancelled {
            7
        } else if m.attendees().next().is_some() {
            if mine == ResponseKind::Organizer { 1 } else { 3 }
        } else {
            0
        });
        if let Some(rid) = stored.recurrence_id {
            out.is_recurring = Some(true);
            out.calendar_item_type = Some(CalendarItemType::Exception);
            out.original_start = Some(rid);
        } else if let Some(o) = occurrence {
            // Exchange marks occurrences, not masters, as recurring.
            out.is_recurring = Some(true);
            out.calendar_item_type = Some(if o.modified {
                CalendarItemType::Exception
            } else {
                CalendarItemType::Occurrence
            });
            out.original_start = Some(o.original_start);
            out.recurrence_id = Some(o.original_start);
        } else if let Some(r) = &series {
            out.is_recurring = Some(stored.class == ItemClass::MeetingRequest);
            out.calendar_item_type = Some(CalendarItemType::RecurringMaster);
            out.recurrence = Some(recurrence(r));
            out.deleted_occurrences = m.deleted_occurrences.clone();
            out.modified_occurrences = modified_occurrences(&owner.smtp, stored.no, m);
        } else {
            out.is_recurring = Some(false);
            out.calendar_item_type = Some(CalendarItemType::Single);
        }
        if version >= ServerVersion::Exchange2010_SP2 {
            let tz = wire::iana_to_windows(&m.time_zone).map(TimeZoneDefinition::new);
            out.start_time_zone = tz.clone();
            out.end_time_zone = tz;
        } else {
            out.meeting_time_zone = Some(meeting_time_zone(m));
        }
    } else if stored.recurrence_id.is_some() {
        out.calendar_item_type = Some(CalendarItemType::Exception);
    } else if let Some(r) = &series {
        out.recurrence = Some(recurrence(r));
        out.calendar_item_type = Some(CalendarItemType::RecurringMaster);
    } else {
        out.calendar_item_type = Some(CalendarItemType::Single);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = item_id("salle@x.fr", 42, Some(3));
        assert_eq!(
            parse_item_id(&id),
            Some(ItemKey {
                smtp: "salle@x.fr".into(),
                no: 42,
                occurrence: Some(3)
            })
        );
        let f = folder_id("salle@x.fr", FolderKind::Inbox);
        assert_eq!(parse_folder_id(&f.id), Some(("salle@x.fr".into(), FolderKind::Inbox)));
        let s = sync_state(9, "salle@x.fr", FolderKind::Inbox, 12);
        assert_eq!(parse_sync_state(&s, 9, "salle@x.fr", FolderKind::Inbox), Some(12));
        assert_eq!(parse_sync_state(&s, 8, "salle@x.fr", FolderKind::Inbox), None);
        assert_eq!(parse_sync_state(&s, 9, "salle@x.fr", FolderKind::Calendar), None);
        assert_eq!(parse_item_id("garbage"), None);
    }
}
