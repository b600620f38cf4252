//! Recurring meetings as Exchange describes them, and their expansion.
//!
//! [`Recurrence`] mirrors EWS: a pattern (daily, weekly, absolute or relative
//! monthly and yearly), a range (no end, end date, numbered), a start date,
//! a local start time, a duration, an IANA time zone, deleted occurrences and
//! modified occurrences. [`Recurrence::expand`] turns it into UTC intervals
//! up to a bound. Expansion is done here rather than with the `rrule` crate
//! because EWS semantics differ from RFC 5545 in places that matter (day 31
//! of a 30-day month falls on the last day, numbered ranges count deleted
//! occurrences), and because it keeps the local start time across daylight
//! saving changes by construction: each occurrence is a local date and time
//! converted to UTC on its own. [`Recurrence::from_rrule`] reads an RFC 5545
//! RRULE into the same type, for the simulator's control API.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::DomainError;

/// Upper bound on the occurrences one expansion may produce, so that a
/// daily series with a far horizon cannot exhaust memory.
pub const MAX_EXPANDED: usize = 5_000;

/// Upper bound on the periods (days, weeks, months, years) walked from the
/// start date, so that a series claiming to start centuries ago costs
/// bounded time even when its occurrences before `from` are skipped.
pub const MAX_PERIODS: u64 = 200_000;

/// Which days a relative pattern picks from (EWS `DayOfWeekType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaySelector {
    Day(Weekday),
    /// Any day of the month.
    AnyDay,
    /// Monday to Friday.
    WorkDay,
    /// Saturday and Sunday.
    WeekendDay,
}

impl DaySelector {
    pub fn matches(self, wd: Weekday) -> bool {
        match self {
            DaySelector::Day(d) => d == wd,
            DaySelector::AnyDay => true,
            DaySelector::WorkDay => !matches!(wd, Weekday::Sat | Weekday::Sun),
            DaySelector::WeekendDay => matches!(wd, Weekday::Sat | Weekday::Sun),
        }
    }
}

/// Which of the matching days of the month (EWS `DayOfWeekIndexType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeekIndex {
    First,
    Second,
    Third,
    Fourth,
    Last,
}

/// The repeating part of a recurrence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pattern {
    Daily {
        interval: u32,
    },
    Weekly {
        interval: u32,
        days: Vec<Weekday>,
        first_day_of_week: Weekday,
    },
    /// Day 29 to 31 falls on the last day of shorter months, as in Outlook.
    AbsoluteMonthly {
        interval: u32,
        day_of_month: u32,
    },
    RelativeMonthly {
        interval: u32,
        day: DaySelector,
        index: WeekIndex,
    },
    AbsoluteYearly {
        month: u32,
        day_of_month: u32,
    },
    RelativeYearly {
        month: u32,
        day: DaySelector,
        index: WeekIndex,
    },
}

/// When a recurrence stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum RecurrenceRange {
    NoEnd,
    /// The last local date on which an occurrence may start.
    EndDate(NaiveDate),
    /// The number of pattern occurrences, deleted ones included.
    Numbered(u32),
}

/// An occurrence moved or resized by the organiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModifiedOccurrence {
    /// The start the pattern gave it; matched by its local date.
    pub original_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A recurring meeting as carried by EWS.
///
/// Serialises to JSON for the store (`bookings.recurrence`), with the
/// duration in seconds and the time zone by its IANA name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub pattern: Pattern,
    pub range: RecurrenceRange,
    /// The first local date the pattern may produce.
    pub start_date: NaiveDate,
    /// The local start time of each occurrence.
    pub start_time: NaiveTime,
    #[serde(with = "duration_seconds")]
    pub duration: Duration,
    /// Stored by its IANA name.
    #[serde(with = "tz_name")]
    pub tz: Tz,
    /// Local dates of deleted occurrences.
    pub deleted: BTreeSet<NaiveDate>,
    pub modified: Vec<ModifiedOccurrence>,
}

/// One concrete occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Occurrence {
    /// Position in the pattern, from 0, deleted occurrences included.
    pub index: u32,
    pub original_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub modified: bool,
}

/// The occurrences before a bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// Occurrences starting before the bound, in pattern order.
    pub occurrences: Vec<Occurrence>,
    /// Whether the series has occurrences at or after the bound.
    pub beyond: bool,
}

/// The UTC instant of a local date and time.
///
/// In the autumn overlap the earlier instant is taken; in the spring gap
/// the offset in force before the gap is used, which moves 02:30 to 03:30
/// in Paris, as Outlook does.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => {
            let offset = tz.offset_from_utc_datetime(&(local - Duration::days(1)));
            let secs = i64::from(offset.fix().local_minus_utc());
            Utc.from_utc_datetime(&(local - Duration::seconds(secs)))
        }
    }
}

fn last_day_of_month(year: i32, month: u32) -> Option<u32> {
    let (ny, nm) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1)?.pred_opt().map(|d| d.day())
}

fn clamped_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    let last = last_day_of_month(year, month)?;
    NaiveDate::from_ymd_opt(year, month, day.min(last))
}

fn relative_date(year: i32, month: u32, day: DaySelector, index: WeekIndex) -> Option<NaiveDate> {
    let last = last_day_of_month(year, month)?;
    let matching: Vec<NaiveDate> = (1..=last)
        .filter_map(|d| NaiveDate::from_ymd_opt(year, month, d))
        .filter(|d| day.matches(d.weekday()))
        .collect();
    match index {
        WeekIndex::First => matching.first().copied(),
        WeekIndex::Second => matching.get(1).copied(),
        WeekIndex::Third => matching.get(2).copied(),
        WeekIndex::Fourth => matching.get(3).copied(),
        WeekIndex::Last => matching.last().copied(),
    }
}

/// Adds `k` months to a (year, month) pair.
fn add_months(year: i32, month: u32, k: u64) -> Option<(i32, u32)> {
    let total = i64::from(year) * 12 + i64::from(month) - 1 + i64::try_from(k).ok()?;
    let y = i32::try_from(total.div_euclid(12)).ok()?;
    let m = u32::try_from(total.rem_euclid(12)).ok()? + 1;
    Some((y, m))
}

impl Recurrence {
    /// Rejects patterns that cannot produce occurrences.
    pub fn validate(&self) -> Result<(), DomainError> {
        let interval_ok = match &self.pattern {
            Pattern::Daily { interval }
            | Pattern::Weekly { interval, .. }
            | Pattern::AbsoluteMonthly { interval, .. }
            | Pattern::RelativeMonthly { interval, .. } => *interval >= 1,
            Pattern::AbsoluteYearly { .. } | Pattern::RelativeYearly { .. } => true,
        };
        if !interval_ok {
            return Err(DomainError::InvalidRecurrence("interval must be at least 1"));
        }
        match &self.pattern {
            Pattern::Weekly { days, .. } if days.is_empty() => {
                return Err(DomainError::InvalidRecurrence("weekly pattern without days"));
            }
            Pattern::AbsoluteMonthly { day_of_month, .. } if !(1..=31).contains(day_of_month) => {
                return Err(DomainError::InvalidRecurrence("day of month out of 1..=31"));
            }
            Pattern::AbsoluteYearly { month, day_of_month }
                if !(1..=12).contains(month) || !(1..=31).contains(day_of_month) =>
            {
                return Err(DomainError::InvalidRecurrence("month or day out of range"));
            }
            Pattern::RelativeYearly { month, .. } if !(1..=12).contains(month) => {
                return Err(DomainError::InvalidRecurrence("month out of 1..=12"));
            }
            _ => {}
        }
        if self.duration <= Duration::zero() {
            return Err(DomainError::InvalidRecurrence("duration must be positive"));
        }
        if self.range == RecurrenceRange::Numbered(0) {
            return Err(DomainError::InvalidRecurrence("numbered range of zero"));
        }
        Ok(())
    }

    /// The pattern dates of period `k` (day, week, month or year number
    /// `k` counted in intervals from the start), on or after the start date.
    fn period_dates(&self, k: u64) -> Option<Vec<NaiveDate>> {
        let start = self.start_date;
        let dates = match &self.pattern {
            Pattern::Daily { interval } => {
                let days = i64::try_from(k.checked_mul(u64::from(*interval))?).ok()?;
                vec![start.checked_add_signed(Duration::try_days(days)?)?]
            }
            Pattern::Weekly {
                interval,
                days,
                first_day_of_week,
            } => {
                let back = i64::from(start.weekday().days_since(*first_day_of_week));
                let weeks = i64::try_from(k.checked_mul(u64::from(*interval))?).ok()?;
                let week_start = start
                    .checked_sub_signed(Duration::try_days(back)?)?
                    .checked_add_signed(Duration::try_weeks(weeks)?)?;
                let mut offsets: Vec<u32> = days.iter().map(|d| d.days_since(*first_day_of_week)).collect();
                offsets.sort_unstable();
                offsets.dedup();
                let mut out = Vec::with_capacity(offsets.len());
                for off in offsets {
                    out.push(week_start.checked_add_signed(Duration::try_days(i64::from(off))?)?);
                }
                out
            }
            Pattern::AbsoluteMonthly { interval, day_of_month } => {
                let (y, m) = add_months(start.year(), start.month(), k.checked_mul(u64::from(*interval))?)?;
                vec![clamped_date(y, m, *day_of_month)?]
            }
            Pattern::RelativeMonthly { interval, day, index } => {
                let (y, m) = add_months(start.year(), start.month(), k.checked_mul(u64::from(*interval))?)?;
                vec![relative_date(y, m, *day, *index)?]
            }
            Pattern::AbsoluteYearly { month, day_of_month } => {
                let y = start.year().checked_add(i32::try_from(k).ok()?)?;
                vec![clamped_date(y, *month, *day_of_month)?]
            }
            Pattern::RelativeYearly { month, day, index } => {
                let y = start.year().checked_add(i32::try_from(k).ok()?)?;
                vec![relative_date(y, *month, *day, *index)?]
            }
        };
        Some(dates.into_iter().filter(|d| *d >= start).collect())
    }

    /// The occurrences whose start is before `until`.
    ///
    /// Errors on an invalid pattern or when more than [`MAX_EXPANDED`]
    /// occurrences fall before the bound.
    pub fn expand(&self, until: DateTime<Utc>) -> Result<Expansion, DomainError> {
        self.expand_window(DateTime::<Utc>::MIN_UTC, until)
    }

    /// The occurrences that end after `from` and start before `until`.
    ///
    /// Occurrences ending by `from` are skipped without counting towards
    /// [`MAX_EXPANDED`], so a series running for years can still be
    /// evaluated from today.
    pub fn expand_window(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Expansion, DomainError> {
        self.validate()?;
        let mut occurrences = Vec::new();
        let mut beyond = false;
        let mut index: u32 = 0;
        // Modified occurrences by the local date the pattern gave them.
        let moved: BTreeMap<NaiveDate, &ModifiedOccurrence> = self
            .modified
            .iter()
            .map(|m| (m.original_start.with_timezone(&self.tz).date_naive(), m))
            .collect();
        // Dates this far before `from` cannot end after it (two days cover
        // any UTC offset), so they are counted without the cost of a time
        // zone conversion: a series running for years stays cheap.
        let skip_before = from
            .checked_sub_signed(self.duration)
            .and_then(|t| t.checked_sub_signed(Duration::days(2)))
            .map(|t| t.date_naive());
        'periods: for k in 0u64.. {
            if k > MAX_PERIODS {
                return Err(DomainError::InvalidRecurrence("series starts too long ago"));
            }
            let Some(dates) = self.period_dates(k) else {
                // The calendar ran out (year 262143): nothing lies beyond.
                break;
            };
            for date in dates {
                if let RecurrenceRange::Numbered(n) = self.range
                    && index >= n
                {
                    break 'periods;
                }
                if let RecurrenceRange::EndDate(end) = self.range
                    && date > end
                {
                    break 'periods;
                }
                if skip_before.is_some_and(|d| date < d) && !moved.contains_key(&date) {
                    index = index.saturating_add(1);
                    continue;
                }
                let original_start = local_to_utc(self.tz, date.and_time(self.start_time));
                if original_start >= until {
                    beyond = true;
                    break 'periods;
                }
                let this = index;
                index = index.saturating_add(1);
                if self.deleted.contains(&date) {
                    continue;
                }
                let occ = match moved.get(&date) {
                    Some(m) => Occurrence {
                        index: this,
                        original_start,
                        start: m.start,
                        end: m.end,
                        modified: true,
                    },
                    None => Occurrence {
                        index: this,
                        original_start,
                        start: original_start,
                        end: original_start + self.duration,
                        modified: false,
                    },
                };
                if occ.start >= until {
                    beyond = true;
                    continue;
                }
                if occ.end <= from {
                    continue;
                }
                if occurrences.len() >= MAX_EXPANDED {
                    return Err(DomainError::InvalidRecurrence("too many occurrences"));
                }
                occurrences.push(occ);
            }
        }
        Ok(Expansion { occurrences, beyond })
    }

    /// Reads an RFC 5545 RRULE (with or without the `RRULE:` prefix).
    ///
    /// `start` is the local start of the first occurrence (DTSTART) in `tz`.
    /// Supported: FREQ DAILY, WEEKLY, MONTHLY, YEARLY; INTERVAL; COUNT;
    /// UNTIL; BYDAY (with an ordinal for monthly and yearly); BYMONTHDAY;
    /// BYMONTH; BYSETPOS; WKST. Anything EWS cannot carry is an error.
    pub fn from_rrule(rule: &str, start: NaiveDateTime, duration: Duration, tz: Tz) -> Result<Self, DomainError> {
        let err = |part: &str, problem: &'static str| DomainError::RruleParse {
            part: part.to_owned(),
            problem,
        };
        let body = rule.trim();
        let body = body.strip_prefix("RRULE:").unwrap_or(body);
        let mut freq = None;
        let mut interval: u32 = 1;
        let mut count = None;
        let mut until = None;
        let mut by_day: Vec<(Option<i32>, Weekday)> = Vec::new();
        let mut by_month_day = None;
        let mut by_month = None;
        let mut by_set_pos = None;
        let mut wkst = Weekday::Mon;
        for part in body.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| err(part, "expected NAME=VALUE"))?;
            match name.to_ascii_uppercase().as_str() {
                "FREQ" => freq = Some(value.to_ascii_uppercase()),
                "INTERVAL" => {
                    interval = value.parse().map_err(|_| err(part, "not a number"))?;
                }
                "COUNT" => count = Some(value.parse::<u32>().map_err(|_| err(part, "not a number"))?),
                "UNTIL" => until = Some(parse_until(value, tz).ok_or_else(|| err(part, "bad date"))?),
                "BYDAY" => {
                    for d in value.split(',') {
                        by_day.push(parse_by_day(d).ok_or_else(|| err(part, "bad day"))?);
                    }
                }
                // -1 is the last day of the month, which EWS writes as day 31.
                "BYMONTHDAY" if value == "-1" => by_month_day = Some(31),
                "BYMONTHDAY" => {
                    by_month_day = Some(value.parse::<u32>().map_err(|_| err(part, "one positive day only"))?);
                }
                "BYMONTH" => by_month = Some(value.parse::<u32>().map_err(|_| err(part, "one month only"))?),
                "BYSETPOS" => by_set_pos = Some(value.parse::<i32>().map_err(|_| err(part, "one position only"))?),
                "WKST" => wkst = parse_weekday(value).ok_or_else(|| err(part, "bad day"))?,
                _ => return Err(err(part, "unsupported rule part")),
            }
        }
        let relative = |part: &str| -> Result<(DaySelector, WeekIndex), DomainError> {
            let ordinal = by_day.iter().find_map(|(n, _)| *n).or(by_set_pos);
            let index = match ordinal {
                Some(1) => WeekIndex::First,
                Some(2) => WeekIndex::Second,
                Some(3) => WeekIndex::Third,
                Some(4) => WeekIndex::Fourth,
                Some(-1) => WeekIndex::Last,
                _ => return Err(err(part, "ordinal must be 1 to 4 or -1")),
            };
            let days: BTreeSet<u32> = by_day.iter().map(|(_, d)| d.num_days_from_monday()).collect();
            let day = match (days.len(), by_day.first()) {
                (1, Some((_, d))) => DaySelector::Day(*d),
                (7, _) => DaySelector::AnyDay,
                (5, _) if days.iter().all(|d| *d < 5) => DaySelector::WorkDay,
                (2, _) if days.iter().all(|d| *d >= 5) => DaySelector::WeekendDay,
                _ => return Err(err(part, "day set EWS cannot express")),
            };
            Ok((day, index))
        };
        let date = start.date();
        let ordinals = by_day.iter().any(|(n, _)| n.is_some());
        if ordinals && matches!(freq.as_deref(), Some("DAILY" | "WEEKLY")) {
            return Err(err(body, "BYDAY ordinals need FREQ=MONTHLY or YEARLY"));
        }
        let pattern = match freq.as_deref() {
            Some("DAILY") if by_day.is_empty() => Pattern::Daily { interval },
            // Outlook's "every weekday" is a daily rule with BYDAY.
            Some("DAILY") if interval == 1 => Pattern::Weekly {
                interval: 1,
                days: by_day.iter().map(|(_, d)| *d).collect(),
                first_day_of_week: wkst,
            },
            Some("WEEKLY") => Pattern::Weekly {
                interval,
                days: if by_day.is_empty() {
                    vec![date.weekday()]
                } else {
                    by_day.iter().map(|(_, d)| *d).collect()
                },
                first_day_of_week: wkst,
            },
            Some("MONTHLY") if by_day.is_empty() => Pattern::AbsoluteMonthly {
                interval,
                day_of_month: by_month_day.unwrap_or(date.day()),
            },
            Some("MONTHLY") => {
                let (day, index) = relative(body)?;
                Pattern::RelativeMonthly { interval, day, index }
            }
            Some("YEARLY") if interval != 1 => {
                return Err(err(body, "EWS yearly rules have no interval"));
            }
            Some("YEARLY") if by_day.is_empty() => Pattern::AbsoluteYearly {
                month: by_month.unwrap_or(date.month()),
                day_of_month: by_month_day.unwrap_or(date.day()),
            },
            Some("YEARLY") => {
                let (day, index) = relative(body)?;
                Pattern::RelativeYearly {
                    month: by_month.unwrap_or(date.month()),
                    day,
                    index,
                }
            }
            Some(_) => return Err(err(body, "unsupported FREQ")),
            None => return Err(err(body, "missing FREQ")),
        };
        let range = match (count, until) {
            (Some(_), Some(_)) => return Err(err(body, "COUNT and UNTIL together")),
            (Some(n), None) => RecurrenceRange::Numbered(n),
            (None, Some(u)) => {
                // An UNTIL earlier in the day than the start time excludes
                // that day, as RFC 5545 compares full date-times.
                let d = if u.time() < start.time() {
                    u.date().pred_opt().ok_or_else(|| err(body, "bad UNTIL"))?
                } else {
                    u.date()
                };
                RecurrenceRange::EndDate(d)
            }
            (None, None) => RecurrenceRange::NoEnd,
        };
        let rec = Recurrence {
            pattern,
            range,
            start_date: date,
            start_time: start.time(),
            duration,
            tz,
            deleted: BTreeSet::new(),
            modified: Vec::new(),
        };
        rec.validate()?;
        Ok(rec)
    }

    /// Writes the pattern and range as an RFC 5545 RRULE (without prefix).
    ///
    /// Absolute monthly days above 28 are written as such, although RFC 5545
    /// skips short months where EWS falls back to the last day.
    pub fn to_rrule(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let relative = |day: DaySelector, index: WeekIndex| -> Vec<String> {
            let days = match day {
                DaySelector::Day(d) => weekday_code(d).to_owned(),
                DaySelector::AnyDay => "MO,TU,WE,TH,FR,SA,SU".to_owned(),
                DaySelector::WorkDay => "MO,TU,WE,TH,FR".to_owned(),
                DaySelector::WeekendDay => "SA,SU".to_owned(),
            };
            let pos = match index {
                WeekIndex::First => 1,
                WeekIndex::Second => 2,
                WeekIndex::Third => 3,
                WeekIndex::Fourth => 4,
                WeekIndex::Last => -1,
            };
            vec![format!("BYDAY={days}"), format!("BYSETPOS={pos}")]
        };
        match &self.pattern {
            Pattern::Daily { interval } => {
                parts.push("FREQ=DAILY".into());
                parts.push(format!("INTERVAL={interval}"));
            }
            Pattern::Weekly {
                interval,
                days,
                first_day_of_week,
            } => {
                parts.push("FREQ=WEEKLY".into());
                parts.push(format!("INTERVAL={interval}"));
                let codes: Vec<&str> = days.iter().map(|d| weekday_code(*d)).collect();
                parts.push(format!("BYDAY={}", codes.join(",")));
                parts.push(format!("WKST={}", weekday_code(*first_day_of_week)));
            }
            Pattern::AbsoluteMonthly { interval, day_of_month } => {
                parts.push("FREQ=MONTHLY".into());
                parts.push(format!("INTERVAL={interval}"));
                parts.push(format!("BYMONTHDAY={day_of_month}"));
            }
            Pattern::RelativeMonthly { interval, day, index } => {
                parts.push("FREQ=MONTHLY".into());
                parts.push(format!("INTERVAL={interval}"));
                parts.extend(relative(*day, *index));
            }
            Pattern::AbsoluteYearly { month, day_of_month } => {
                parts.push("FREQ=YEARLY".into());
                parts.push(format!("BYMONTH={month}"));
                parts.push(format!("BYMONTHDAY={day_of_month}"));
            }
            Pattern::RelativeYearly { month, day, index } => {
                parts.push("FREQ=YEARLY".into());
                parts.push(format!("BYMONTH={month}"));
                parts.extend(relative(*day, *index));
            }
        }
        match self.range {
            RecurrenceRange::NoEnd => {}
            RecurrenceRange::EndDate(d) => parts.push(format!("UNTIL={}", d.format("%Y%m%d"))),
            RecurrenceRange::Numbered(n) => parts.push(format!("COUNT={n}")),
        }
        parts.join(";")
    }
}

fn weekday_code(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_uppercase().as_str() {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

/// `MO`, `2TU`, `-1FR`, `+3WE`.
fn parse_by_day(s: &str) -> Option<(Option<i32>, Weekday)> {
    let s = s.trim();
    let split = s.len().checked_sub(2)?;
    let (num, day) = (s.get(..split)?, s.get(split..)?);
    let ordinal = if num.is_empty() {
        None
    } else {
        Some(num.trim_start_matches('+').parse::<i32>().ok()?)
    };
    Some((ordinal, parse_weekday(day)?))
}

/// UNTIL as a local date-time in `tz`: a DATE, a floating DATE-TIME, or a
/// UTC DATE-TIME ending in `Z`.
fn parse_until(s: &str, tz: Tz) -> Option<NaiveDateTime> {
    if let Some(utc) = s.strip_suffix('Z') {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok()?;
        return Some(Utc.from_utc_datetime(&t).with_timezone(&tz).naive_local());
    }
    if s.len() == 8 {
        // A bare date includes the whole day.
        return NaiveDate::parse_from_str(s, "%Y%m%d").ok()?.and_hms_opt(23, 59, 59);
    }
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S").ok()
}

/// Serde for a duration as whole seconds.
pub(crate) mod duration_seconds {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = i64::deserialize(d)?;
        Duration::try_seconds(secs).ok_or_else(|| serde::de::Error::custom("duration out of range"))
    }
}

/// Serde for a time zone as its IANA name.
pub(crate) mod tz_name {
    use super::*;

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<Tz>()
            .map_err(|_| serde::de::Error::custom(format!("unknown time zone `{name}`")))
    }
}
