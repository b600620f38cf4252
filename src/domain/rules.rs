//! The individual checks of the rule engine, one function per rule.
//!
//! Each function looks at one occurrence (or the whole request) and returns
//! the reasons it fails, empty when it passes. They know nothing of the
//! order in which rules run or how failures combine: that is
//! [`super::decision`]'s job.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::holidays::{Blackout, french_public_holiday};
use super::policy::{
    EffectivePolicy, Quota, QuotaLimit, QuotaPeriod, QuotaSubject, Resolved, Scope, ScopeChain, WeeklyHours,
};
use super::reason::{Reason, ReasonKind};
use super::recurrence::{Occurrence, duration_seconds};

/// A slot already held on the resource (booked, or held for approval).
///
/// Its occupied range is `[start - buffer_before, end + buffer_after)`, with
/// the buffers that applied when it was booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occupied {
    pub booking: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(with = "duration_seconds")]
    pub buffer_before: Duration,
    #[serde(with = "duration_seconds")]
    pub buffer_after: Duration,
    /// Shown on conflicts only when the policy allows it.
    pub organiser_name: Option<String>,
}

impl Occupied {
    pub fn occupied_range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.start - self.buffer_before, self.end + self.buffer_after)
    }
}

/// An occurrence booked by someone, on any resource, counted by quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaBooking {
    pub booking: Uuid,
    pub organiser: Uuid,
    /// The organiser's groups, nested membership included.
    pub organiser_groups: Vec<Uuid>,
    /// The booked resource's scopes: a quota set at a scope counts only
    /// bookings of resources inside that scope.
    pub resource: ScopeChain,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Whether two half-open intervals overlap.
pub fn overlaps(a: (DateTime<Utc>, DateTime<Utc>), b: (DateTime<Utc>, DateTime<Utc>)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The occupied range of a requested occurrence under `policy`.
pub fn requested_range(policy: &EffectivePolicy, occ: &Occurrence) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        occ.start - minutes(policy.buffer_before_minutes.value),
        occ.end + minutes(policy.buffer_after_minutes.value),
    )
}

pub fn minutes(m: u32) -> Duration {
    Duration::minutes(i64::from(m))
}

/// `min_notice`: the occurrence must start at least N minutes after `now`;
/// with no notice set it must at least not be over.
pub fn min_notice(policy: &EffectivePolicy, now: DateTime<Utc>, occ: &Occurrence) -> Option<Reason> {
    let r = &policy.min_notice_minutes;
    let fails = match r.value {
        0 => occ.end <= now,
        n => occ.start < now + minutes(n),
    };
    fails.then(|| {
        Reason::new(
            ReasonKind::MinNotice {
                min_minutes: r.value,
                start: occ.start,
            },
            r.scope,
        )
    })
}

/// `min_duration` and `max_duration`.
pub fn duration(policy: &EffectivePolicy, occ: &Occurrence) -> Vec<Reason> {
    let actual = (occ.end - occ.start).num_minutes();
    let mut out = Vec::new();
    let min = &policy.min_duration_minutes;
    if actual < i64::from(min.value) {
        out.push(Reason::new(
            ReasonKind::MinDuration {
                min_minutes: min.value,
                actual_minutes: actual,
            },
            min.scope,
        ));
    }
    let max = &policy.max_duration_minutes;
    if actual > i64::from(max.value) {
        out.push(Reason::new(
            ReasonKind::MaxDuration {
                max_minutes: max.value,
                actual_minutes: actual,
            },
            max.scope,
        ));
    }
    out
}

/// The local days an interval touches, each with the seconds-of-day range
/// it covers on that day (`to` is 86,400 when it runs past midnight).
fn local_days(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(NaiveDate, u32, u32)> {
    let s: NaiveDateTime = start.with_timezone(&tz).naive_local();
    let e: NaiveDateTime = end.with_timezone(&tz).naive_local();
    let mut out = Vec::new();
    let mut day = s.date();
    // A guard against absurd intervals: no booking spans more than ~3 years.
    for _ in 0..1100 {
        let Some(next) = day.succ_opt() else { break };
        let from = if day == s.date() {
            s.time().num_seconds_from_midnight()
        } else {
            0
        };
        let to = if e < next.and_time(NaiveTime::MIN) {
            e.time().num_seconds_from_midnight()
        } else {
            86_400
        };
        if from < to {
            out.push((day, from, to));
        }
        if e <= next.and_time(NaiveTime::MIN) {
            break;
        }
        day = next;
    }
    out
}

/// Whether the occurrence lies inside the weekly hours, day by day.
pub fn fits_hours(hours: &WeeklyHours, tz: Tz, occ: &Occurrence) -> bool {
    local_days(tz, occ.start, occ.end)
        .into_iter()
        .all(|(d, from, to)| hours.covers(d.weekday(), from, to))
}

/// `outside_opening_hours`.
pub fn opening_hours(policy: &EffectivePolicy, tz: Tz, occ: &Occurrence) -> Option<Reason> {
    let r = &policy.opening_hours;
    (!fits_hours(&r.value, tz, occ)).then(|| {
        Reason::new(
            ReasonKind::OutsideOpeningHours {
                start: occ.start,
                end: occ.end,
            },
            r.scope,
        )
    })
}

/// `outside_work_hours`, when `work_hours_only` is set.
pub fn work_hours(policy: &EffectivePolicy, tz: Tz, occ: &Occurrence) -> Option<Reason> {
    if !policy.work_hours_only.value {
        return None;
    }
    let r = &policy.work_hours;
    (!fits_hours(&r.value, tz, occ)).then(|| {
        Reason::new(
            ReasonKind::OutsideWorkHours {
                start: occ.start,
                end: occ.end,
            },
            // The rule is switched on by `work_hours_only`; the hours may
            // come from elsewhere, so report the more specific of the two.
            policy.work_hours_only.scope.max(r.scope),
        )
    })
}

/// `public_holiday`, when the resource closes on public holidays.
pub fn public_holiday(policy: &EffectivePolicy, tz: Tz, occ: &Occurrence) -> Option<Reason> {
    let r = &policy.closed_on_public_holidays;
    if !r.value {
        return None;
    }
    local_days(tz, occ.start, occ.end).into_iter().find_map(|(date, _, _)| {
        french_public_holiday(date).map(|holiday| Reason::new(ReasonKind::PublicHoliday { date, holiday }, r.scope))
    })
}

/// `blackout`: the first blackout of the resource's chain overlapping the
/// occurrence (by start, for a stable answer).
pub fn blackout(blackouts: &[Blackout], chain: &ScopeChain, occ: &Occurrence) -> Option<Reason> {
    blackouts
        .iter()
        .filter(|b| chain.contains(&b.scope) && b.overlaps(occ.start, occ.end))
        .min_by(|a, b| (a.start, a.end, a.scope, &a.reason).cmp(&(b.start, b.end, b.scope, &b.reason)))
        .map(|b| {
            Reason::new(
                ReasonKind::Blackout {
                    start: b.start,
                    end: b.end,
                    reason: b.reason.clone(),
                },
                b.scope,
            )
        })
}

/// The occupancy of a resource sorted by occupied start, for finding the
/// slots overlapping an interval without scanning them all (a series of a
/// year against a busy calendar would otherwise cost occurrences × slots).
#[derive(Debug)]
pub struct OccupancyIndex<'a> {
    /// (occupied start, occupied end, slot), sorted.
    slots: Vec<(DateTime<Utc>, DateTime<Utc>, &'a Occupied)>,
    /// The longest occupied range: no slot starting earlier than a query's
    /// start minus this can reach the query.
    longest: Duration,
}

impl<'a> OccupancyIndex<'a> {
    /// Indexes `occupancy`, leaving out the booking being replaced.
    pub fn new(occupancy: &'a [Occupied], replaces: Option<Uuid>) -> Self {
        let mut slots: Vec<_> = occupancy
            .iter()
            .filter(|o| Some(o.booking) != replaces)
            .map(|o| {
                let (s, e) = o.occupied_range();
                (s, e, o)
            })
            .collect();
        slots.sort_by_key(|(s, e, o)| (*s, *e, o.booking));
        let longest = slots
            .iter()
            .map(|(s, e, _)| *e - *s)
            .max()
            .unwrap_or_else(Duration::zero);
        Self { slots, longest }
    }

    /// The slots whose occupied range overlaps `range`.
    pub fn overlapping(&self, range: (DateTime<Utc>, DateTime<Utc>)) -> impl Iterator<Item = &'a Occupied> + '_ {
        let floor = range.0 - self.longest;
        let first = self.slots.partition_point(|(s, _, _)| *s < floor);
        self.slots[first..]
            .iter()
            .take_while(move |(s, _, _)| *s < range.1)
            .filter(move |(_, e, _)| *e > range.0)
            .map(|(_, _, o)| *o)
    }
}

/// `conflict`: occupied slots overlapping the occurrence, buffers included
/// on both sides.
pub fn conflicts(policy: &EffectivePolicy, index: &OccupancyIndex<'_>, occ: &Occurrence, scope: Scope) -> Vec<Reason> {
    let mine = requested_range(policy, occ);
    let show = policy.show_organiser_on_conflict.value;
    let mut hits: Vec<&Occupied> = index.overlapping(mine).collect();
    hits.sort_by_key(|o| (o.start, o.end, o.booking));
    hits.into_iter()
        .map(|o| {
            Reason::new(
                ReasonKind::Conflict {
                    start: o.start,
                    end: o.end,
                    organiser: if show { o.organiser_name.clone() } else { None },
                },
                scope,
            )
        })
        .collect()
}

/// A calendar period: (year, month, day), (ISO year, week, 0) or (year, month, 0).
type PeriodKey = (i32, u32, u32);

/// Per period: booked minutes, booked count, requested minutes, requested count.
type Tally = (i64, u32, i64, u32);

/// The calendar period an instant falls in, in the resource's time zone.
fn period_key(period: QuotaPeriod, tz: Tz, t: DateTime<Utc>) -> PeriodKey {
    let d = t.with_timezone(&tz).date_naive();
    match period {
        QuotaPeriod::Day => (d.year(), d.month(), d.day()),
        QuotaPeriod::Week => (d.iso_week().year(), d.iso_week().week(), 0),
        QuotaPeriod::Month => (d.year(), d.month(), 0),
    }
}

/// Quotas for a known organiser: one reason per quota and period exceeded
/// (hours and count), or per occurrence for concurrent bookings.
///
/// A quota set at a scope counts only bookings of resources in that scope.
/// Person quotas count the organiser's own bookings; group quotas apply to
/// members of the group and count the bookings of all its members.
pub fn quotas(
    quotas: &Resolved<Vec<Quota>>,
    organiser: Uuid,
    groups: &[Uuid],
    bookings: &[QuotaBooking],
    replaces: Option<Uuid>,
    tz: Tz,
    occs: &[Occurrence],
) -> Vec<Reason> {
    let mut out = Vec::new();
    for q in &quotas.value {
        let counted: Vec<&QuotaBooking> = match q.subject {
            QuotaSubject::Person => bookings.iter().filter(|b| b.organiser == organiser).collect(),
            QuotaSubject::Group(g) if groups.contains(&g) => {
                bookings.iter().filter(|b| b.organiser_groups.contains(&g)).collect()
            }
            QuotaSubject::Group(_) => continue,
        };
        let counted: Vec<&QuotaBooking> = counted
            .into_iter()
            .filter(|b| Some(b.booking) != replaces && b.resource.contains(&quotas.scope))
            .collect();
        match q.limit {
            QuotaLimit::Hours(limit) | QuotaLimit::Count(limit) => {
                let mut periods: BTreeMap<PeriodKey, Tally> = BTreeMap::new();
                for o in occs {
                    let e = periods.entry(period_key(q.period, tz, o.start)).or_default();
                    e.2 += (o.end - o.start).num_minutes();
                    e.3 += 1;
                }
                for b in &counted {
                    if let Some(e) = periods.get_mut(&period_key(q.period, tz, b.start)) {
                        e.0 += (b.end - b.start).num_minutes();
                        e.1 += 1;
                    }
                }
                for (booked_m, booked_n, req_m, req_n) in periods.into_values() {
                    let kind = match q.limit {
                        QuotaLimit::Hours(_) if booked_m + req_m > i64::from(limit) * 60 => ReasonKind::QuotaHours {
                            limit_hours: limit,
                            period: q.period,
                            booked_minutes: booked_m,
                            requested_minutes: req_m,
                        },
                        QuotaLimit::Count(_) if booked_n.saturating_add(req_n) > limit => ReasonKind::QuotaCount {
                            limit,
                            period: q.period,
                            booked: booked_n,
                            requested: req_n,
                        },
                        _ => continue,
                    };
                    out.push(Reason::new(kind, quotas.scope));
                }
            }
            QuotaLimit::Concurrent(limit) => {
                for o in occs {
                    let overlapping = counted
                        .iter()
                        .filter(|b| overlaps((o.start, o.end), (b.start, b.end)))
                        .count();
                    let overlapping = u32::try_from(overlapping).unwrap_or(u32::MAX);
                    if overlapping.saturating_add(1) > limit {
                        out.push(Reason::new(
                            ReasonKind::QuotaConcurrent { limit, overlapping },
                            quotas.scope,
                        ));
                    }
                }
            }
        }
    }
    out
}
