//! EWS wire items turned into resa's meeting messages: UID, sequence,
//! organiser, attendees, and times or recurrence in the meeting's zone.

use super::{MeetingMessage, MessageKind};
use crate::domain::When;
use crate::domain::recurrence::{DaySelector, ModifiedOccurrence, Pattern, Recurrence, RecurrenceRange, WeekIndex};
use crate::ews::item::{Item, ItemKind};
use crate::ews::types::{self as wire, DayOfWeek, DayOfWeekIndex, Month, RoutingType};
use chrono::Weekday;
use chrono_tz::Tz;
use std::collections::BTreeSet;

/// The meeting's zone: the item's own (2010+ StartTimeZone, 2007
/// MeetingTimeZone), else the resource's.
fn zone_of(item: &Item, fallback: Tz) -> Tz {
    item.start_time_zone
        .as_ref()
        .and_then(|z| z.iana())
        .or_else(|| item.meeting_time_zone.as_ref().and_then(|z| z.iana()))
        .unwrap_or(fallback)
}

fn weekday(d: DayOfWeek) -> Option<Weekday> {
    Some(match d {
        DayOfWeek::Monday => Weekday::Mon,
        DayOfWeek::Tuesday => Weekday::Tue,
        DayOfWeek::Wednesday => Weekday::Wed,
        DayOfWeek::Thursday => Weekday::Thu,
        DayOfWeek::Friday => Weekday::Fri,
        DayOfWeek::Saturday => Weekday::Sat,
        DayOfWeek::Sunday => Weekday::Sun,
        DayOfWeek::Day | DayOfWeek::Weekday | DayOfWeek::WeekendDay => return None,
    })
}

fn selector(d: DayOfWeek) -> DaySelector {
    match d {
        DayOfWeek::Day => DaySelector::AnyDay,
        DayOfWeek::Weekday => DaySelector::WorkDay,
        DayOfWeek::WeekendDay => DaySelector::WeekendDay,
        other => weekday(other).map(DaySelector::Day).unwrap_or(DaySelector::AnyDay),
    }
}

fn index(i: DayOfWeekIndex) -> WeekIndex {
    match i {
        DayOfWeekIndex::First => WeekIndex::First,
        DayOfWeekIndex::Second => WeekIndex::Second,
        DayOfWeekIndex::Third => WeekIndex::Third,
        DayOfWeekIndex::Fourth => WeekIndex::Fourth,
        DayOfWeekIndex::Last => WeekIndex::Last,
    }
}

fn month(m: Month) -> u32 {
    Month::ALL
        .iter()
        .position(|x| *x == m)
        .map(|p| p as u32 + 1)
        .unwrap_or(1)
}

/// The domain's recurrence for an EWS series whose first occurrence is
/// `item.start`–`item.end`.
pub fn recurrence(item: &Item, r: &wire::Recurrence, fallback: Tz) -> Option<Recurrence> {
    let (start, end) = (item.start?, item.end?);
    let tz = zone_of(item, fallback);
    let local_start = start.with_timezone(&tz);
    let pattern = match &r.pattern {
        wire::RecurrencePattern::Daily { interval } => Pattern::Daily { interval: *interval },
        wire::RecurrencePattern::Weekly {
            interval,
            days_of_week,
            first_day_of_week,
        } => Pattern::Weekly {
            interval: *interval,
            days: days_of_week.iter().filter_map(|d| weekday(*d)).collect(),
            first_day_of_week: first_day_of_week.and_then(weekday).unwrap_or(Weekday::Sun),
        },
        wire::RecurrencePattern::AbsoluteMonthly { interval, day_of_month } => Pattern::AbsoluteMonthly {
            interval: *interval,
            day_of_month: *day_of_month,
        },
        wire::RecurrencePattern::RelativeMonthly {
            interval,
            days_of_week,
            day_of_week_index,
        } => Pattern::RelativeMonthly {
            interval: *interval,
            day: selector(*days_of_week),
            index: index(*day_of_week_index),
        },
        wire::RecurrencePattern::AbsoluteYearly { day_of_month, month: m } => Pattern::AbsoluteYearly {
            month: month(*m),
            day_of_month: *day_of_month,
        },
        wire::RecurrencePattern::RelativeYearly {
            days_of_week,
            day_of_week_index,
            month: m,
        } => Pattern::RelativeYearly {
            month: month(*m),
            day: selector(*days_of_week),
            index: index(*day_of_week_index),
        },
    };
    let (start_date, range) = match &r.range {
        wire::RecurrenceRange::NoEnd { start } => (*start, RecurrenceRange::NoEnd),
        wire::RecurrenceRange::EndDate { start, end } => (*start, RecurrenceRange::EndDate(*end)),
        wire::RecurrenceRange::Numbered { start, count } => (*start, RecurrenceRange::Numbered(*count)),
    };
    let deleted: BTreeSet<_> = item
        .deleted_occurrences
        .iter()
        .map(|d| d.with_timezone(&tz).date_naive())
        .collect();
    let modified = item
        .modified_occurrences
        .iter()
        .map(|m| ModifiedOccurrence {
            original_start: m.original_start,
            start: m.start,
            end: m.end,
        })
        .collect();
    Some(Recurrence {
        pattern,
        range,
        start_date,
        start_time: local_start.time(),
        duration: end - start,
        tz,
        deleted,
        modified,
    })
}

fn wire_day(d: Weekday) -> DayOfWeek {
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

/// The EWS form of a series resa creates (daily or weekly, as the web site
/// books them); `None` for the other patterns, which resa only reads.
pub fn wire_recurrence(r: &Recurrence) -> Option<wire::Recurrence> {
    let pattern = match &r.pattern {
        Pattern::Daily { interval } => wire::RecurrencePattern::Daily { interval: *interval },
        Pattern::Weekly {
            interval,
            days,
            first_day_of_week,
        } => wire::RecurrencePattern::Weekly {
            interval: *interval,
            days_of_week: days.iter().map(|d| wire_day(*d)).collect(),
            first_day_of_week: Some(wire_day(*first_day_of_week)),
        },
        _ => return None,
    };
    let start = r.start_date;
    let range = match r.range {
        RecurrenceRange::NoEnd => wire::RecurrenceRange::NoEnd { start },
        RecurrenceRange::EndDate(end) => wire::RecurrenceRange::EndDate { start, end },
        RecurrenceRange::Numbered(count) => wire::RecurrenceRange::Numbered { start, count },
    };
    Some(wire::Recurrence { pattern, range })
}

/// The organiser as resa matches it: an SMTP address, or `EX:` and the legacy DN.
pub fn organiser(item: &Item) -> Option<String> {
    let mb = item
        .organizer
        .as_ref()
        .or(item.from.as_ref())
        .or(item.sender.as_ref())?;
    let address = mb.email_address.as_deref()?.trim();
    if address.is_empty() {
        return None;
    }
    Some(match mb.routing_type {
        Some(RoutingType::Ex) => format!("EX:{address}"),
        _ => address.to_owned(),
    })
}

/// The meeting's UID: the UID property when the server sends it (2007 SP1
/// and later), else the clean global object id in hexadecimal, which is what
/// the UID is made from.
pub fn uid(item: &Item) -> Option<String> {
    item.uid.clone().or_else(|| {
        item.clean_global_object_id()
            .or_else(|| item.global_object_id())
            .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect())
    })
}

/// Converts an item read from a resource mailbox.
pub fn meeting_message(item: &Item, fallback: Tz) -> Option<MeetingMessage> {
    let item_id = item.item_id.as_ref()?.id.clone();
    let kind = match item.kind {
        ItemKind::MeetingRequest => MessageKind::Request,
        ItemKind::MeetingCancellation => MessageKind::Cancellation,
        ItemKind::MeetingResponse => MessageKind::Response,
        _ => MessageKind::Other,
    };
    let when = match (&item.recurrence, item.start, item.end) {
        (Some(r), _, _) => recurrence(item, r, fallback).map(|r| When::Series(Box::new(r))),
        (None, Some(start), Some(end)) => Some(When::Single { start, end }),
        _ => None,
    };
    let attendees = item.required_attendees.len() + item.optional_attendees.len();
    Some(MeetingMessage {
        item_id,
        kind,
        uid: uid(item),
        sequence: item.appointment_sequence_number.map(|n| n as i32).unwrap_or(0),
        organiser: organiser(item),
        organiser_name: item.organizer.as_ref().and_then(|m| m.name.clone()),
        subject: item.subject.clone(),
        attendees: u32::try_from(attendees).unwrap_or(u32::MAX),
        when,
        recurrence_id: item.recurrence_id,
        received_at: item.date_time_received,
        forwarded_by: forwarded_by(item),
        destination: item
            .body
            .as_ref()
            .and_then(|b| crate::domain::territory::destination_line(&b.content)),
    })
}

/// The sender of a meeting request that is not its organiser: Exchange
/// keeps the organiser on a forwarded invitation and puts whoever forwarded
/// it in From.
fn forwarded_by(item: &Item) -> Option<String> {
    if item.kind != ItemKind::MeetingRequest {
        return None;
    }
    let organizer = item.organizer.as_ref()?;
    let organiser = organizer.email_address.as_deref()?.trim();
    let from = item.from.as_ref().or(item.sender.as_ref())?;
    // An SMTP address and a legacy DN cannot be compared: say nothing.
    if from.routing_type != organizer.routing_type {
        return None;
    }
    let address = from.email_address.as_deref()?.trim();
    if address.is_empty() || address.eq_ignore_ascii_case(organiser) {
        return None;
    }
    Some(match from.routing_type {
        Some(RoutingType::Ex) => format!("EX:{address}"),
        _ => address.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::types::{Mailbox, TimeZoneDefinition};
    use chrono::{NaiveDate, TimeZone, Utc};

    fn series() -> Item {
        let mut item = Item::new(ItemKind::MeetingRequest);
        item.item_id = Some(wire::ItemId::new("AAMk="));
        item.uid = Some("040000008200E00074C5B7101A82E008".into());
        item.appointment_sequence_number = Some(3);
        item.start = Some(Utc.with_ymd_and_hms(2026, 3, 24, 8, 0, 0).single().expect("valid"));
        item.end = Some(Utc.with_ymd_and_hms(2026, 3, 24, 9, 0, 0).single().expect("valid"));
        item.start_time_zone = Some(TimeZoneDefinition::new("Romance Standard Time"));
        item.organizer = Some(Mailbox {
            name: Some("Alice".into()),
            email_address: Some("/o=PC/ou=Exchange/cn=Recipients/cn=alice".into()),
            routing_type: Some(RoutingType::Ex),
            mailbox_type: None,
        });
        item.recurrence = Some(wire::Recurrence {
            pattern: wire::RecurrencePattern::Weekly {
                interval: 1,
                days_of_week: vec![DayOfWeek::Tuesday, DayOfWeek::Thursday],
                first_day_of_week: Some(DayOfWeek::Monday),
            },
            range: wire::RecurrenceRange::Numbered {
                start: NaiveDate::from_ymd_opt(2026, 3, 24).expect("date"),
                count: 4,
            },
        });
        item.deleted_occurrences = vec![Utc.with_ymd_and_hms(2026, 3, 26, 8, 0, 0).single().expect("valid")];
        item
    }

    #[test]
    fn a_weekly_series_keeps_its_local_time_across_the_march_change() {
        let m = meeting_message(&series(), chrono_tz::UTC).expect("converted");
        assert_eq!(m.kind, MessageKind::Request);
        assert_eq!(m.sequence, 3);
        assert_eq!(
            m.organiser.as_deref(),
            Some("EX:/o=PC/ou=Exchange/cn=Recipients/cn=alice")
        );
        let Some(When::Series(r)) = m.when else {
            panic!("not a series")
        };
        assert_eq!(r.tz, chrono_tz::Europe::Paris, "the Windows zone name is mapped");
        let exp = r
            .expand(Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).single().expect("valid"))
            .expect("expands");
        let starts: Vec<String> = exp
            .occurrences
            .iter()
            .map(|o| {
                o.start
                    .with_timezone(&chrono_tz::Europe::Paris)
                    .format("%d/%m %H:%M")
                    .to_string()
            })
            .collect();
        // 26 March deleted; 29 March is the change to summer time.
        assert_eq!(starts, vec!["24/03 09:00", "31/03 09:00", "02/04 09:00"]);
    }

    #[test]
    fn the_uid_falls_back_to_the_clean_global_object_id() {
        let mut item = series();
        item.uid = None;
        item.extended_properties.push(wire::ExtendedProperty::binary(
            wire::ExtendedFieldUri::clean_global_object_id(),
            &[0x04, 0x00, 0xAB],
        ));
        assert_eq!(uid(&item).as_deref(), Some("0400AB"));
    }
}
