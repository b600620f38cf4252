//! Feature tests of the rule engine: a table of cases (request, policies,
//! occupancy → decision kind and reason codes), then rendering, rights,
//! recurrence, holidays and properties.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Europe::Paris;
use uuid::Uuid;

use super::decision::{
    BookingRequest, Decision, DecisionInput, Organiser, Outcome, ResourceInfo, Rule, Verdict, When, decide,
};
use super::holidays::{Blackout, PublicHoliday, easter_sunday, french_public_holiday, french_public_holidays};
use super::policy::{
    DefaultRight, EffectivePolicy, HorizonMode, Policy, Quota, QuotaLimit, QuotaPeriod, QuotaSubject, Scope,
    ScopeChain, TimeRange, UnknownOrganiser, WeeklyHours,
};
use super::reason::{Lang, Reason, ReasonKind, RenderContext, ResourceKind, format_date, format_minutes, format_time};
use super::recurrence::{
    DaySelector, ModifiedOccurrence, Occurrence, Pattern, Recurrence, RecurrenceRange, WeekIndex, local_to_utc,
};
use super::rights::{Grant, Principal, Right, RightSource, Role, Subject, resolve_right};
use super::rules::{Occupied, QuotaBooking};

const ORG: Uuid = Uuid::from_u128(0x0a);
const SITE: Uuid = Uuid::from_u128(0x5a);
const SITE2: Uuid = Uuid::from_u128(0x5b);
const TYPE: Uuid = Uuid::from_u128(0x7a);
const RES: Uuid = Uuid::from_u128(0x7e);
const RES2: Uuid = Uuid::from_u128(0x7f);
const PERSON: Uuid = Uuid::from_u128(0x9a);
const OTHER: Uuid = Uuid::from_u128(0x9b);
const GROUP: Uuid = Uuid::from_u128(0x6a);

fn paris(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
    local_to_utc(Paris, date.and_hms_opt(h, mi, 0).expect("valid time"))
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
}

fn chain() -> ScopeChain {
    ScopeChain {
        organisation: Some(ORG),
        site: Some(SITE),
        resource_type: Some(TYPE),
        resource: RES,
    }
}

fn other_chain() -> ScopeChain {
    ScopeChain {
        organisation: Some(ORG),
        site: Some(SITE2),
        resource_type: None,
        resource: RES2,
    }
}

fn occupied(start: DateTime<Utc>, end: DateTime<Utc>, name: &str) -> Occupied {
    Occupied {
        booking: Uuid::from_u128(0xb0 + u128::from(start.hour())),
        start,
        end,
        buffer_before: Duration::zero(),
        buffer_after: Duration::zero(),
        organiser_name: Some(name.to_owned()),
    }
}

/// A weekly series on `day` at `time` Paris time, one hour long.
fn weekly(start: NaiveDate, day: Weekday, time: NaiveTime, range: RecurrenceRange) -> Recurrence {
    Recurrence {
        pattern: Pattern::Weekly {
            interval: 1,
            days: vec![day],
            first_day_of_week: Weekday::Mon,
        },
        range,
        start_date: start,
        start_time: time,
        duration: Duration::hours(1),
        tz: Paris,
        deleted: BTreeSet::new(),
        modified: Vec::new(),
    }
}

/// Policies by scope plus the rest of the input; the policy is resolved
/// from the layers when the case runs.
struct Fx {
    layers: Vec<(Scope, Policy)>,
    input: DecisionInput,
}

impl Fx {
    /// Monday 2 March 2026, 08:00 in Paris; a known person asks for room
    /// RES on Tuesday 3 March 2026 from 14:00 to 15:00 for 5 people.
    fn new() -> Self {
        Fx {
            layers: Vec::new(),
            input: DecisionInput {
                now: paris(2026, 3, 2, 8, 0),
                request: BookingRequest {
                    organiser: Organiser::Known {
                        person: PERSON,
                        groups: vec![GROUP],
                    },
                    attendees: 5,
                    when: When::Single {
                        start: paris(2026, 3, 3, 14, 0),
                        end: paris(2026, 3, 3, 15, 0),
                    },
                    replaces: None,
                },
                resource: ResourceInfo {
                    chain: chain(),
                    kind: ResourceKind::Room,
                    capacity: Some(10),
                    tz: Paris,
                },
                policy: EffectivePolicy::builtin(),
                grants: Vec::new(),
                occupancy: Vec::new(),
                quota_bookings: Vec::new(),
                blackouts: Vec::new(),
                licence: None,
            },
        }
    }

    fn set(&mut self, scope: Scope, f: impl FnOnce(&mut Policy)) {
        let mut p = Policy::default();
        f(&mut p);
        self.layers.push((scope, p));
    }

    fn single(&mut self, start: DateTime<Utc>, end: DateTime<Utc>) {
        self.input.request.when = When::Single { start, end };
    }

    fn series(&mut self, rec: Recurrence) {
        self.input.request.when = When::Series(Box::new(rec));
    }

    fn run(mut self) -> Decision {
        self.input.policy =
            EffectivePolicy::resolve(&self.input.resource.chain, self.layers.iter().map(|(s, p)| (*s, p)));
        decide(&self.input)
    }
}

struct Case {
    name: &'static str,
    setup: fn(&mut Fx),
    kind: &'static str,
    codes: &'static [&'static str],
    /// The scope expected on the first reason, when it matters.
    scope: Option<Scope>,
}

fn tuesday_series(fx: &mut Fx, count: u32) {
    fx.series(weekly(
        date(2026, 3, 3),
        Weekday::Tue,
        hm(14, 0),
        RecurrenceRange::Numbered(count),
    ));
}

const CASES: &[Case] = &[
    Case {
        name: "plain request is accepted",
        setup: |_| {},
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "single meeting on a booked slot",
        setup: |fx| {
            fx.input
                .occupancy
                .push(occupied(paris(2026, 3, 3, 14, 30), paris(2026, 3, 3, 15, 30), "X"))
        },
        kind: "decline",
        codes: &["conflict"],
        scope: Some(Scope::Resource(RES)),
    },
    Case {
        name: "back-to-back meetings without buffers",
        setup: |fx| {
            fx.input
                .occupancy
                .push(occupied(paris(2026, 3, 3, 13, 0), paris(2026, 3, 3, 14, 0), "X"))
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "buffer before set on the site makes back-to-back a conflict",
        setup: |fx| {
            fx.input
                .occupancy
                .push(occupied(paris(2026, 3, 3, 13, 0), paris(2026, 3, 3, 14, 0), "X"));
            fx.set(Scope::Site(SITE), |p| p.buffer_before_minutes = Some(15));
        },
        kind: "decline",
        codes: &["conflict"],
        scope: None,
    },
    Case {
        name: "the other booking's own buffer after counts too",
        setup: |fx| {
            let mut o = occupied(paris(2026, 3, 3, 13, 0), paris(2026, 3, 3, 14, 0), "X");
            o.buffer_after = Duration::minutes(10);
            fx.input.occupancy.push(o);
        },
        kind: "decline",
        codes: &["conflict"],
        scope: None,
    },
    Case {
        name: "an update does not conflict with the booking it replaces",
        setup: |fx| {
            let o = occupied(paris(2026, 3, 3, 14, 0), paris(2026, 3, 3, 15, 0), "X");
            fx.input.request.replaces = Some(o.booking);
            fx.input.occupancy.push(o);
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "max duration set on the resource type",
        setup: |fx| fx.set(Scope::ResourceType(TYPE), |p| p.max_duration_minutes = Some(30)),
        kind: "decline",
        codes: &["max_duration"],
        scope: Some(Scope::ResourceType(TYPE)),
    },
    Case {
        name: "the resource overrides the site's max duration",
        setup: |fx| {
            fx.set(Scope::Site(SITE), |p| p.max_duration_minutes = Some(30));
            fx.set(Scope::Resource(RES), |p| p.max_duration_minutes = Some(600));
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "a policy of another site does not apply",
        setup: |fx| fx.set(Scope::Site(SITE2), |p| p.max_duration_minutes = Some(30)),
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "min duration set on the organisation",
        setup: |fx| fx.set(Scope::Organisation(ORG), |p| p.min_duration_minutes = Some(90)),
        kind: "decline",
        codes: &["min_duration"],
        scope: Some(Scope::Organisation(ORG)),
    },
    Case {
        name: "min notice set globally",
        setup: |fx| fx.set(Scope::Global, |p| p.min_notice_minutes = Some(2 * 24 * 60)),
        kind: "decline",
        codes: &["min_notice"],
        scope: Some(Scope::Global),
    },
    Case {
        name: "a meeting already over",
        setup: |fx| fx.single(paris(2026, 3, 1, 14, 0), paris(2026, 3, 1, 15, 0)),
        kind: "decline",
        codes: &["min_notice"],
        scope: None,
    },
    Case {
        name: "booking window",
        setup: |fx| {
            fx.set(Scope::Resource(RES), |p| p.booking_window_days = Some(30));
            fx.single(paris(2026, 5, 5, 14, 0), paris(2026, 5, 5, 15, 0));
        },
        kind: "decline",
        codes: &["booking_window"],
        scope: Some(Scope::Resource(RES)),
    },
    Case {
        name: "outside opening hours",
        setup: |fx| {
            let mornings = WeeklyHours::uniform(
                &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
                TimeRange::hm((8, 0), (12, 0)).expect("valid range"),
            );
            fx.set(Scope::Site(SITE), |p| p.opening_hours = Some(mornings));
        },
        kind: "decline",
        codes: &["outside_opening_hours"],
        scope: Some(Scope::Site(SITE)),
    },
    Case {
        name: "adjacent opening ranges are merged",
        setup: |fx| {
            let h = WeeklyHours {
                tuesday: vec![
                    TimeRange::hm((8, 0), (14, 30)).expect("valid range"),
                    TimeRange::hm((14, 30), (18, 0)).expect("valid range"),
                ],
                ..WeeklyHours::default()
            };
            fx.set(Scope::Site(SITE), |p| p.opening_hours = Some(h));
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "Easter Monday when closed on public holidays",
        setup: |fx| {
            fx.set(Scope::Organisation(ORG), |p| p.closed_on_public_holidays = Some(true));
            fx.single(paris(2026, 4, 6, 10, 0), paris(2026, 4, 6, 11, 0));
        },
        kind: "decline",
        codes: &["public_holiday"],
        scope: Some(Scope::Organisation(ORG)),
    },
    Case {
        name: "Easter Monday when open on public holidays",
        setup: |fx| fx.single(paris(2026, 4, 6, 10, 0), paris(2026, 4, 6, 11, 0)),
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "blackout on the site",
        setup: |fx| {
            fx.input.blackouts.push(Blackout {
                start: paris(2026, 3, 3, 0, 0),
                end: paris(2026, 3, 4, 0, 0),
                reason: "Travaux".into(),
                scope: Scope::Site(SITE),
            })
        },
        kind: "decline",
        codes: &["blackout"],
        scope: Some(Scope::Site(SITE)),
    },
    Case {
        name: "blackout on another site",
        setup: |fx| {
            fx.input.blackouts.push(Blackout {
                start: paris(2026, 3, 3, 0, 0),
                end: paris(2026, 3, 4, 0, 0),
                reason: "Travaux".into(),
                scope: Scope::Site(SITE2),
            })
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "work hours only",
        setup: |fx| {
            fx.set(Scope::Global, |p| p.work_hours_only = Some(true));
            fx.single(paris(2026, 3, 3, 19, 0), paris(2026, 3, 3, 20, 0));
        },
        kind: "decline",
        codes: &["outside_work_hours"],
        scope: None,
    },
    Case {
        name: "capacity enforced",
        setup: |fx| {
            fx.set(Scope::ResourceType(TYPE), |p| p.enforce_capacity = Some(true));
            fx.input.request.attendees = 12;
        },
        kind: "decline",
        codes: &["capacity"],
        scope: Some(Scope::ResourceType(TYPE)),
    },
    Case {
        name: "capacity not enforced",
        setup: |fx| fx.input.request.attendees = 12,
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "recurring meetings not allowed",
        setup: |fx| {
            fx.set(Scope::Resource(RES), |p| p.allow_recurring = Some(false));
            tuesday_series(fx, 3);
        },
        kind: "decline",
        codes: &["recurring_not_allowed"],
        scope: None,
    },
    Case {
        name: "max occurrences",
        setup: |fx| {
            fx.set(Scope::Global, |p| p.max_occurrences = Some(3));
            tuesday_series(fx, 5);
        },
        kind: "decline",
        codes: &["max_occurrences"],
        scope: None,
    },
    Case {
        name: "series with conflicts within the limits",
        setup: |fx| {
            fx.set(Scope::Global, |p| {
                p.conflict_max_count = Some(1);
                p.conflict_max_percent = Some(20);
            });
            tuesday_series(fx, 5);
            fx.input
                .occupancy
                .push(occupied(paris(2026, 3, 10, 14, 0), paris(2026, 3, 10, 15, 0), "X"));
        },
        kind: "accept_partially",
        codes: &["conflict"],
        scope: None,
    },
    Case {
        name: "series with too many conflicts",
        setup: |fx| {
            tuesday_series(fx, 5);
            fx.input
                .occupancy
                .push(occupied(paris(2026, 3, 10, 14, 0), paris(2026, 3, 10, 15, 0), "X"));
        },
        kind: "decline",
        codes: &["series_conflicts", "conflict"],
        scope: None,
    },
    Case {
        name: "series beyond the horizon is declined",
        setup: |fx| {
            fx.set(Scope::Global, |p| p.series_horizon_days = Some(30));
            fx.series(weekly(
                date(2026, 3, 3),
                Weekday::Tue,
                hm(14, 0),
                RecurrenceRange::NoEnd,
            ));
        },
        kind: "decline",
        codes: &["horizon"],
        scope: None,
    },
    Case {
        name: "series beyond the horizon is truncated",
        setup: |fx| {
            fx.set(Scope::Global, |p| {
                p.series_horizon_days = Some(30);
                p.horizon_mode = Some(HorizonMode::Truncate);
            });
            fx.series(weekly(
                date(2026, 3, 3),
                Weekday::Tue,
                hm(14, 0),
                RecurrenceRange::NoEnd,
            ));
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "series starting beyond the horizon is declined even when truncating",
        setup: |fx| {
            fx.set(Scope::Global, |p| {
                p.series_horizon_days = Some(30);
                p.horizon_mode = Some(HorizonMode::Truncate);
            });
            fx.series(weekly(
                date(2026, 6, 2),
                Weekday::Tue,
                hm(14, 0),
                RecurrenceRange::Numbered(3),
            ));
        },
        kind: "decline",
        codes: &["horizon"],
        scope: None,
    },
    Case {
        name: "a series whose first occurrence is too soon loses only that one",
        setup: |fx| {
            fx.set(Scope::Global, |p| p.min_notice_minutes = Some(2 * 24 * 60));
            tuesday_series(fx, 3);
        },
        kind: "accept_partially",
        codes: &["min_notice"],
        scope: None,
    },
    Case {
        name: "a modified occurrence moved onto a booked slot",
        setup: |fx| {
            fx.set(Scope::Global, |p| {
                p.conflict_max_count = Some(1);
                p.conflict_max_percent = Some(50);
            });
            let mut rec = weekly(date(2026, 3, 3), Weekday::Tue, hm(14, 0), RecurrenceRange::Numbered(3));
            rec.modified.push(ModifiedOccurrence {
                original_start: paris(2026, 3, 10, 14, 0),
                start: paris(2026, 3, 11, 9, 0),
                end: paris(2026, 3, 11, 10, 0),
            });
            fx.series(rec);
            fx.input
                .occupancy
                .push(occupied(paris(2026, 3, 11, 9, 30), paris(2026, 3, 11, 10, 30), "X"));
        },
        kind: "accept_partially",
        codes: &["conflict"],
        scope: None,
    },
    Case {
        name: "series hitting Easter Monday is accepted partially",
        setup: |fx| {
            fx.set(Scope::Global, |p| p.closed_on_public_holidays = Some(true));
            fx.series(weekly(
                date(2026, 3, 30),
                Weekday::Mon,
                hm(10, 0),
                RecurrenceRange::Numbered(3),
            ));
        },
        kind: "accept_partially",
        codes: &["public_holiday"],
        scope: None,
    },
    Case {
        name: "person quota in hours per week",
        setup: |fx| {
            let q = Quota {
                subject: QuotaSubject::Person,
                period: QuotaPeriod::Week,
                limit: QuotaLimit::Hours(2),
            };
            fx.set(Scope::Global, |p| p.quotas = Some(vec![q]));
            fx.input.quota_bookings.push(QuotaBooking {
                booking: Uuid::from_u128(0xc1),
                organiser: PERSON,
                organiser_groups: vec![GROUP],
                resource: other_chain(),
                start: paris(2026, 3, 4, 10, 0),
                end: paris(2026, 3, 4, 11, 30),
            });
        },
        kind: "decline",
        codes: &["quota_hours"],
        scope: Some(Scope::Global),
    },
    Case {
        name: "group quota in count per day, used by another member",
        setup: |fx| {
            let q = Quota {
                subject: QuotaSubject::Group(GROUP),
                period: QuotaPeriod::Day,
                limit: QuotaLimit::Count(1),
            };
            fx.set(Scope::Organisation(ORG), |p| p.quotas = Some(vec![q]));
            fx.input.quota_bookings.push(QuotaBooking {
                booking: Uuid::from_u128(0xc2),
                organiser: OTHER,
                organiser_groups: vec![GROUP],
                resource: other_chain(),
                start: paris(2026, 3, 3, 9, 0),
                end: paris(2026, 3, 3, 10, 0),
            });
        },
        kind: "decline",
        codes: &["quota_count"],
        scope: Some(Scope::Organisation(ORG)),
    },
    Case {
        name: "quota on a site does not count bookings elsewhere",
        setup: |fx| {
            let q = Quota {
                subject: QuotaSubject::Person,
                period: QuotaPeriod::Day,
                limit: QuotaLimit::Count(1),
            };
            fx.set(Scope::Site(SITE), |p| p.quotas = Some(vec![q]));
            fx.input.quota_bookings.push(QuotaBooking {
                booking: Uuid::from_u128(0xc3),
                organiser: PERSON,
                organiser_groups: vec![GROUP],
                resource: other_chain(),
                start: paris(2026, 3, 3, 9, 0),
                end: paris(2026, 3, 3, 10, 0),
            });
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "concurrent bookings quota",
        setup: |fx| {
            let q = Quota {
                subject: QuotaSubject::Person,
                period: QuotaPeriod::Day,
                limit: QuotaLimit::Concurrent(1),
            };
            fx.set(Scope::Global, |p| p.quotas = Some(vec![q]));
            fx.input.quota_bookings.push(QuotaBooking {
                booking: Uuid::from_u128(0xc4),
                organiser: PERSON,
                organiser_groups: vec![],
                resource: other_chain(),
                start: paris(2026, 3, 3, 14, 30),
                end: paris(2026, 3, 3, 15, 30),
            });
        },
        kind: "decline",
        codes: &["quota_concurrent"],
        scope: None,
    },
    Case {
        name: "external organiser not allowed",
        setup: |fx| fx.input.request.organiser = Organiser::External,
        kind: "decline",
        codes: &["external_not_allowed"],
        scope: Some(Scope::Global),
    },
    Case {
        name: "external organiser allowed on the resource",
        setup: |fx| {
            fx.set(Scope::Resource(RES), |p| p.allow_external_organisers = Some(true));
            fx.input.request.organiser = Organiser::External;
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "unknown organiser declined by default",
        setup: |fx| fx.input.request.organiser = Organiser::Unknown,
        kind: "decline",
        codes: &["unknown_organiser"],
        scope: None,
    },
    Case {
        name: "unknown organiser held",
        setup: |fx| {
            fx.set(Scope::Organisation(ORG), |p| {
                p.unknown_organiser = Some(UnknownOrganiser::Hold)
            });
            fx.input.request.organiser = Organiser::Unknown;
        },
        kind: "hold",
        codes: &["unknown_organiser"],
        scope: Some(Scope::Organisation(ORG)),
    },
    Case {
        name: "unknown organiser held even when nobody has a default right",
        setup: |fx| {
            fx.set(Scope::Global, |p| {
                p.unknown_organiser = Some(UnknownOrganiser::Hold);
                p.default_right = Some(DefaultRight::None);
            });
            fx.input.request.organiser = Organiser::Unknown;
        },
        kind: "hold",
        codes: &["unknown_organiser"],
        scope: None,
    },
    Case {
        name: "a group deny beats a person grant",
        setup: |fx| {
            fx.input.grants = vec![
                grant(1, Subject::Group(GROUP), Scope::Site(SITE), Role::Deny),
                grant(2, Subject::Person(PERSON), Scope::Resource(RES), Role::Book),
            ]
        },
        kind: "decline",
        codes: &["denied"],
        scope: Some(Scope::Site(SITE)),
    },
    Case {
        name: "no grant and no default right",
        setup: |fx| fx.set(Scope::Organisation(ORG), |p| p.default_right = Some(DefaultRight::None)),
        kind: "decline",
        codes: &["no_right"],
        scope: Some(Scope::Organisation(ORG)),
    },
    Case {
        name: "a view grant does not allow booking",
        setup: |fx| fx.input.grants = vec![grant(1, Subject::Group(GROUP), Scope::Global, Role::View)],
        kind: "decline",
        codes: &["no_right"],
        scope: None,
    },
    Case {
        name: "a group grant gives the right the default refuses",
        setup: |fx| {
            fx.set(Scope::Global, |p| p.default_right = Some(DefaultRight::None));
            fx.input.grants = vec![grant(1, Subject::Group(GROUP), Scope::Organisation(ORG), Role::Book)];
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "a person Request grant beats a group Book grant",
        setup: |fx| {
            fx.input.grants = vec![
                grant(1, Subject::Person(PERSON), Scope::Global, Role::Request),
                grant(2, Subject::Group(GROUP), Scope::Resource(RES), Role::Book),
            ]
        },
        kind: "hold",
        codes: &["needs_approval"],
        scope: Some(Scope::Global),
    },
    Case {
        name: "a request out of policy is declined, not held",
        setup: |fx| {
            fx.set(Scope::Global, |p| {
                p.default_right = Some(DefaultRight::Request);
                p.max_duration_minutes = Some(30);
            });
        },
        kind: "decline",
        codes: &["max_duration"],
        scope: None,
    },
    Case {
        name: "a manager bypasses rules when allowed",
        setup: |fx| {
            fx.set(Scope::Global, |p| {
                p.managers_bypass_rules = Some(true);
                p.max_duration_minutes = Some(30);
            });
            fx.input.grants = vec![grant(1, Subject::Person(PERSON), Scope::Resource(RES), Role::Manage)];
        },
        kind: "accept",
        codes: &[],
        scope: None,
    },
    Case {
        name: "a manager is still checked against conflicts",
        setup: |fx| {
            fx.set(Scope::Global, |p| p.managers_bypass_rules = Some(true));
            fx.input.grants = vec![grant(1, Subject::Person(PERSON), Scope::Resource(RES), Role::Manage)];
            fx.input
                .occupancy
                .push(occupied(paris(2026, 3, 3, 14, 0), paris(2026, 3, 3, 15, 0), "X"));
        },
        kind: "decline",
        codes: &["conflict"],
        scope: None,
    },
    Case {
        name: "end before start",
        setup: |fx| fx.single(paris(2026, 3, 3, 15, 0), paris(2026, 3, 3, 14, 0)),
        kind: "decline",
        codes: &["invalid_request"],
        scope: None,
    },
    Case {
        name: "a series overlapping itself conflicts with itself",
        setup: |fx| {
            let mut rec = weekly(date(2026, 3, 3), Weekday::Tue, hm(14, 0), RecurrenceRange::Numbered(2));
            rec.duration = Duration::days(8);
            fx.set(Scope::Global, |p| p.max_duration_minutes = Some(20_000));
            fx.series(rec);
        },
        kind: "decline",
        codes: &["series_conflicts", "conflict"],
        scope: None,
    },
];

fn grant(n: u128, subject: Subject, scope: Scope, role: Role) -> Grant {
    Grant {
        id: Uuid::from_u128(0x1000 + n),
        subject,
        scope,
        role,
    }
}

#[test]
fn decision_table() {
    let mut failures = Vec::new();
    for case in CASES {
        let mut fx = Fx::new();
        (case.setup)(&mut fx);
        let d = fx.run();
        let codes = d.reason_codes();
        if d.kind() != case.kind || codes != case.codes {
            failures.push(format!(
                "{}: got {} {:?}, want {} {:?}",
                case.name,
                d.kind(),
                codes,
                case.kind,
                case.codes
            ));
            continue;
        }
        if let Some(scope) = case.scope {
            let first = match &d.outcome {
                Outcome::Decline { reasons, .. } | Outcome::Hold { reasons, .. } => reasons.first(),
                _ => None,
            };
            if first.map(|r| r.scope) != Some(scope) {
                failures.push(format!(
                    "{}: scope {:?}, want {scope:?}",
                    case.name,
                    first.map(|r| r.scope)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn partial_acceptance_lists_the_declined_date_and_keeps_the_others() {
    let mut fx = Fx::new();
    fx.set(Scope::Global, |p| {
        p.conflict_max_count = Some(1);
        p.conflict_max_percent = Some(20);
    });
    tuesday_series(&mut fx, 5);
    fx.input
        .occupancy
        .push(occupied(paris(2026, 3, 10, 14, 0), paris(2026, 3, 10, 15, 0), "X"));
    let d = fx.run();
    let Outcome::AcceptPartially { declined } = &d.outcome else {
        panic!("expected a partial acceptance, got {:?}", d.outcome)
    };
    assert_eq!(declined.len(), 1);
    assert_eq!(declined[0].start, paris(2026, 3, 10, 14, 0));
    assert_eq!(d.occurrences.len(), 4);
    assert!(d.occurrences.iter().all(|o| o.start != paris(2026, 3, 10, 14, 0)));
}

#[test]
fn truncation_keeps_the_occurrences_inside_the_horizon() {
    let mut fx = Fx::new();
    fx.set(Scope::Global, |p| {
        p.series_horizon_days = Some(30);
        p.horizon_mode = Some(HorizonMode::Truncate);
    });
    fx.series(weekly(
        date(2026, 3, 3),
        Weekday::Tue,
        hm(14, 0),
        RecurrenceRange::NoEnd,
    ));
    let d = fx.run();
    let starts: Vec<_> = d.occurrences.iter().map(|o| o.start).collect();
    let want: Vec<_> = [3, 10, 17, 24, 31].iter().map(|d| paris(2026, 3, *d, 14, 0)).collect();
    assert_eq!(starts, want);
}

#[test]
fn explanation_names_each_rule_with_its_scope() {
    let mut fx = Fx::new();
    fx.set(Scope::ResourceType(TYPE), |p| p.max_duration_minutes = Some(30));
    let d = fx.run();
    let dur = d
        .checks
        .iter()
        .find(|c| c.rule == Rule::Duration)
        .expect("duration checked");
    assert_eq!((dur.scope, dur.verdict), (Scope::ResourceType(TYPE), Verdict::Fail));
    let hours = d
        .checks
        .iter()
        .find(|c| c.rule == Rule::OpeningHours)
        .expect("hours checked");
    assert_eq!(hours.verdict, Verdict::Pass);
    let right = d.right.expect("right resolved");
    assert_eq!((right.right, right.source), (Right::Book, RightSource::Default));
}

#[test]
fn held_request_names_the_circuit() {
    let circuit = Uuid::from_u128(0xc1c);
    let mut fx = Fx::new();
    fx.set(Scope::Site(SITE), |p| {
        p.default_right = Some(DefaultRight::Request);
        p.approval_circuit = Some(Some(circuit));
    });
    let d = fx.run();
    assert!(matches!(d.outcome, Outcome::Hold { circuit: Some(c), .. } if c == circuit));
    assert_eq!(d.occurrences.len(), 1);
}

// ---- inheritance ----

#[test]
fn each_field_comes_from_the_most_specific_scope_that_set_it() {
    let levels = [
        Scope::Global,
        Scope::Organisation(ORG),
        Scope::Site(SITE),
        Scope::ResourceType(TYPE),
        Scope::Resource(RES),
    ];
    for (i, scope) in levels.iter().enumerate() {
        // Every level up to `scope` sets the field; the last one must win.
        let layers: Vec<(Scope, Policy)> = levels[..=i]
            .iter()
            .rev()
            .enumerate()
            .map(|(n, s)| {
                (
                    *s,
                    Policy {
                        max_duration_minutes: Some(100 + u32::try_from(n).expect("small")),
                        ..Policy::default()
                    },
                )
            })
            .collect();
        let eff = EffectivePolicy::resolve(&chain(), layers.iter().map(|(s, p)| (*s, p)));
        assert_eq!(eff.max_duration_minutes.scope, *scope);
        assert_eq!(eff.max_duration_minutes.value, 100);
        assert!(!eff.max_duration_minutes.builtin);
        assert!(eff.min_duration_minutes.builtin);
        assert_eq!(eff.min_duration_minutes.scope, Scope::Global);
    }
}

#[test]
fn policy_round_trips_through_json_and_rejects_unknown_fields() {
    let p = Policy {
        max_duration_minutes: Some(240),
        horizon_mode: Some(HorizonMode::Truncate),
        quotas: Some(vec![Quota {
            subject: QuotaSubject::Group(GROUP),
            period: QuotaPeriod::Week,
            limit: QuotaLimit::Hours(10),
        }]),
        opening_hours: Some(WeeklyHours::office()),
        ..Policy::default()
    };
    let json = serde_json::to_string(&p).expect("serialises");
    assert!(
        !json.contains("min_duration_minutes"),
        "unset fields are omitted: {json}"
    );
    let back: Policy = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, p);
    assert!(serde_json::from_str::<Policy>(r#"{"max_duraton_minutes": 5}"#).is_err());
    assert_eq!(
        serde_json::from_str::<Policy>("{}").expect("empty policy"),
        Policy::default()
    );
}

// ---- rights ----

#[test]
fn rights_rules() {
    let principal = Principal {
        person: Some(PERSON),
        groups: vec![GROUP],
    };
    let default = EffectivePolicy::builtin().default_right;
    let right = |grants: &[Grant]| resolve_right(grants, &principal, &chain(), &default);

    assert_eq!(right(&[]).right, Right::Book);
    assert_eq!(right(&[]).source, RightSource::Default);
    // The most specific group grant wins among groups.
    let r = right(&[
        grant(1, Subject::Group(GROUP), Scope::Global, Role::Book),
        grant(2, Subject::Group(GROUP), Scope::Resource(RES), Role::Request),
    ]);
    assert_eq!((r.right, r.scope), (Right::Request, Scope::Resource(RES)));
    // Grants on other resources or to other people are ignored.
    let r = right(&[
        grant(1, Subject::Person(OTHER), Scope::Global, Role::Deny),
        grant(2, Subject::Person(PERSON), Scope::Resource(RES2), Role::Deny),
        grant(3, Subject::Group(GROUP), Scope::Global, Role::Manage),
    ]);
    assert_eq!(r.right, Right::Manage);
    assert_eq!(
        r.source,
        RightSource::Grant {
            grant: Uuid::from_u128(0x1003),
            subject: Subject::Group(GROUP)
        }
    );
    // Deny wins whatever its kind and scope.
    let r = right(&[
        grant(1, Subject::Person(PERSON), Scope::Resource(RES), Role::Manage),
        grant(2, Subject::Group(GROUP), Scope::Global, Role::Deny),
    ]);
    assert_eq!(r.right, Right::Denied);
}

// ---- holidays ----

#[test]
fn easter_dates() {
    for (y, m, d) in [
        (2024, 3, 31),
        (2025, 4, 20),
        (2026, 4, 5),
        (2038, 4, 25),
        (2019, 4, 21),
        (2000, 4, 23),
        (1818, 3, 22),
        (2285, 3, 22),
    ] {
        assert_eq!(easter_sunday(y), Some(date(y, m, d)), "Easter {y}");
    }
}

#[test]
fn french_holidays_2026() {
    let days: Vec<NaiveDate> = french_public_holidays(2026).into_iter().map(|(d, _)| d).collect();
    let want = [
        date(2026, 1, 1),
        date(2026, 4, 6),
        date(2026, 5, 1),
        date(2026, 5, 8),
        date(2026, 5, 14),
        date(2026, 5, 25),
        date(2026, 7, 14),
        date(2026, 8, 15),
        date(2026, 11, 1),
        date(2026, 11, 11),
        date(2026, 12, 25),
    ];
    assert_eq!(days, want);
    assert_eq!(french_public_holiday(date(2026, 5, 14)), Some(PublicHoliday::Ascension));
    assert_eq!(french_public_holiday(date(2026, 5, 15)), None);
}

// ---- texts ----

fn fr() -> RenderContext {
    RenderContext::default()
}

fn en() -> RenderContext {
    RenderContext {
        lang: Lang::En,
        ..RenderContext::default()
    }
}

#[test]
fn texts_in_french_and_english() {
    let conflict = |organiser: Option<&str>| {
        Reason::new(
            ReasonKind::Conflict {
                start: paris(2026, 3, 3, 14, 0),
                end: paris(2026, 3, 3, 15, 0),
                organiser: organiser.map(str::to_owned),
            },
            Scope::Resource(RES),
        )
    };
    let named = conflict(Some("Service Urbanisme"));
    assert_eq!(
        named.render(&fr()),
        "La salle est réservée de 14 h à 15 h par Service Urbanisme"
    );
    assert_eq!(
        named.render(&en()),
        "The room is booked from 14:00 to 15:00 by Service Urbanisme"
    );
    assert_eq!(
        conflict(None).render(&fr()),
        "La salle est déjà réservée de 14 h à 15 h"
    );
    assert_eq!(
        conflict(None).render(&en()),
        "The room is already booked from 14:00 to 15:00"
    );

    let max = Reason::new(
        ReasonKind::MaxDuration {
            max_minutes: 240,
            actual_minutes: 300,
        },
        Scope::Global,
    );
    assert_eq!(max.code(), "max_duration");
    assert_eq!(max.render(&fr()), "Durée maximale : 4 h");
    assert_eq!(max.render(&en()), "Maximum duration: 4 h");

    let holiday = Reason::new(
        ReasonKind::PublicHoliday {
            date: date(2026, 4, 6),
            holiday: PublicHoliday::EasterMonday,
        },
        Scope::Global,
    );
    assert_eq!(
        holiday.render(&fr()),
        "Fermé le jour férié du lundi 6 avril 2026 (Lundi de Pâques)"
    );
    assert_eq!(
        holiday.render(&en()),
        "Closed on the public holiday of Monday 6 April 2026 (Easter Monday)"
    );

    let hours = Reason::new(
        ReasonKind::OutsideOpeningHours {
            start: paris(2026, 3, 3, 19, 30),
            end: paris(2026, 3, 3, 20, 0),
        },
        Scope::Global,
    );
    assert_eq!(
        hours.render(&fr()),
        "En dehors des heures d'ouverture : le mardi 3 mars 2026 de 19 h 30 à 20 h"
    );
    assert_eq!(
        hours.render(&en()),
        "Outside opening hours: on Tuesday 3 March 2026 from 19:30 to 20:00"
    );

    let car = RenderContext {
        kind: ResourceKind::Vehicle,
        ..fr()
    };
    assert_eq!(
        conflict(None).render(&car),
        "Le véhicule est déjà réservé de 14 h à 15 h"
    );
}

#[test]
fn french_formats() {
    assert_eq!(format_time(Lang::Fr, hm(14, 0)), "14 h");
    assert_eq!(format_time(Lang::Fr, hm(14, 30)), "14 h 30");
    assert_eq!(format_time(Lang::Fr, hm(9, 5)), "9 h 05");
    assert_eq!(format_time(Lang::En, hm(9, 5)), "09:05");
    assert_eq!(format_date(Lang::Fr, date(2026, 3, 3)), "mardi 3 mars 2026");
    assert_eq!(format_date(Lang::Fr, date(2026, 3, 1)), "dimanche 1er mars 2026");
    assert_eq!(format_date(Lang::En, date(2026, 3, 3)), "Tuesday 3 March 2026");
    assert_eq!(format_minutes(Lang::Fr, 90), "1 h 30");
    assert_eq!(format_minutes(Lang::En, 90), "1 h 30 min");
    assert_eq!(format_minutes(Lang::Fr, 45), "45 min");
}

#[test]
fn reason_serialises_with_its_code_and_scope() {
    let r = Reason::new(
        ReasonKind::Capacity {
            capacity: 10,
            attendees: 12,
        },
        Scope::Site(SITE),
    );
    let v = serde_json::to_value(&r).expect("serialises");
    assert_eq!(v["code"], "capacity");
    assert_eq!(v["capacity"], 10);
    assert_eq!(v["scope"]["kind"], "site");
}

// ---- recurrence ----

fn rec(pattern: Pattern, start: NaiveDate, time: NaiveTime, range: RecurrenceRange) -> Recurrence {
    Recurrence {
        pattern,
        range,
        start_date: start,
        start_time: time,
        duration: Duration::hours(1),
        tz: Paris,
        deleted: BTreeSet::new(),
        modified: Vec::new(),
    }
}

fn far() -> DateTime<Utc> {
    paris(2040, 1, 1, 0, 0)
}

fn local_dates(r: &Recurrence) -> Vec<NaiveDate> {
    r.expand(far())
        .expect("expands")
        .occurrences
        .iter()
        .map(|o| o.start.with_timezone(&Paris).date_naive())
        .collect()
}

fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    date(y, m, d).and_hms_opt(h, 0, 0).expect("valid").and_utc()
}

#[test]
fn weekly_series_keeps_local_time_across_both_dst_changes() {
    // Sundays at 09:00, on the very days of the changes.
    let r = weekly(
        date(2026, 3, 22),
        Weekday::Sun,
        hm(9, 0),
        RecurrenceRange::EndDate(date(2026, 11, 1)),
    );
    let occs = r.expand(far()).expect("expands").occurrences;
    let start = |d: NaiveDate| {
        occs.iter()
            .find(|o| o.start.with_timezone(&Paris).date_naive() == d)
            .map(|o| o.start)
    };
    assert_eq!(start(date(2026, 3, 22)), Some(utc(2026, 3, 22, 8)));
    assert_eq!(start(date(2026, 3, 29)), Some(utc(2026, 3, 29, 7)));
    assert_eq!(start(date(2026, 10, 18)), Some(utc(2026, 10, 18, 7)));
    assert_eq!(start(date(2026, 10, 25)), Some(utc(2026, 10, 25, 8)));
    assert_eq!(start(date(2026, 11, 1)), Some(utc(2026, 11, 1, 8)));
    assert_eq!(occs.len(), 33);
    for o in &occs {
        assert_eq!(o.start.with_timezone(&Paris).time(), hm(9, 0));
        assert_eq!(o.end - o.start, Duration::hours(1));
    }
}

#[test]
fn a_start_in_the_spring_gap_moves_forward() {
    let r = rec(
        Pattern::Daily { interval: 1 },
        date(2026, 3, 28),
        hm(2, 30),
        RecurrenceRange::Numbered(3),
    );
    let starts: Vec<_> = r
        .expand(far())
        .expect("expands")
        .occurrences
        .iter()
        .map(|o| o.start)
        .collect();
    let at = |d, h, m| date(2026, 3, d).and_hms_opt(h, m, 0).expect("valid").and_utc();
    assert_eq!(starts, vec![at(28, 1, 30), at(29, 1, 30), at(30, 0, 30)]);
}

#[test]
fn monthly_and_yearly_patterns() {
    let r = rec(
        Pattern::AbsoluteMonthly {
            interval: 1,
            day_of_month: 31,
        },
        date(2026, 1, 1),
        hm(10, 0),
        RecurrenceRange::Numbered(4),
    );
    assert_eq!(
        local_dates(&r),
        vec![
            date(2026, 1, 31),
            date(2026, 2, 28),
            date(2026, 3, 31),
            date(2026, 4, 30)
        ]
    );

    let r = rec(
        Pattern::RelativeMonthly {
            interval: 1,
            day: DaySelector::Day(Weekday::Fri),
            index: WeekIndex::Last,
        },
        date(2026, 1, 1),
        hm(10, 0),
        RecurrenceRange::Numbered(3),
    );
    assert_eq!(
        local_dates(&r),
        vec![date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]
    );

    let r = rec(
        Pattern::RelativeMonthly {
            interval: 1,
            day: DaySelector::WorkDay,
            index: WeekIndex::First,
        },
        date(2026, 2, 1),
        hm(10, 0),
        RecurrenceRange::Numbered(3),
    );
    assert_eq!(
        local_dates(&r),
        vec![date(2026, 2, 2), date(2026, 3, 2), date(2026, 4, 1)]
    );

    let r = rec(
        Pattern::RelativeYearly {
            month: 11,
            day: DaySelector::Day(Weekday::Thu),
            index: WeekIndex::Fourth,
        },
        date(2026, 1, 1),
        hm(10, 0),
        RecurrenceRange::Numbered(2),
    );
    assert_eq!(local_dates(&r), vec![date(2026, 11, 26), date(2027, 11, 25)]);

    let r = rec(
        Pattern::AbsoluteYearly {
            month: 2,
            day_of_month: 29,
        },
        date(2026, 1, 1),
        hm(10, 0),
        RecurrenceRange::Numbered(3),
    );
    assert_eq!(
        local_dates(&r),
        vec![date(2026, 2, 28), date(2027, 2, 28), date(2028, 2, 29)]
    );
}

#[test]
fn weekly_interval_starts_counting_from_the_week_of_the_start_date() {
    let r = rec(
        Pattern::Weekly {
            interval: 2,
            days: vec![Weekday::Thu, Weekday::Mon],
            first_day_of_week: Weekday::Mon,
        },
        date(2026, 3, 4),
        hm(10, 0),
        RecurrenceRange::Numbered(4),
    );
    assert_eq!(
        local_dates(&r),
        vec![
            date(2026, 3, 5),
            date(2026, 3, 16),
            date(2026, 3, 19),
            date(2026, 3, 30)
        ]
    );
    let r = weekly(
        date(2026, 3, 3),
        Weekday::Tue,
        hm(14, 0),
        RecurrenceRange::EndDate(date(2026, 3, 17)),
    );
    assert_eq!(
        local_dates(&r),
        vec![date(2026, 3, 3), date(2026, 3, 10), date(2026, 3, 17)]
    );
}

#[test]
fn deleted_and_modified_occurrences() {
    let mut r = weekly(date(2026, 3, 3), Weekday::Tue, hm(14, 0), RecurrenceRange::Numbered(4));
    r.deleted.insert(date(2026, 3, 10));
    r.modified.push(ModifiedOccurrence {
        original_start: paris(2026, 3, 17, 14, 0),
        start: paris(2026, 3, 18, 10, 0),
        end: paris(2026, 3, 18, 11, 0),
    });
    let occs = r.expand(far()).expect("expands").occurrences;
    let got: Vec<(u32, DateTime<Utc>, bool)> = occs.iter().map(|o| (o.index, o.start, o.modified)).collect();
    assert_eq!(
        got,
        vec![
            (0, paris(2026, 3, 3, 14, 0), false),
            (2, paris(2026, 3, 18, 10, 0), true),
            (3, paris(2026, 3, 24, 14, 0), false),
        ]
    );
}

#[test]
fn expansion_stops_at_the_bound_and_says_so() {
    let r = weekly(date(2026, 3, 3), Weekday::Tue, hm(14, 0), RecurrenceRange::NoEnd);
    let exp = r.expand(paris(2026, 3, 17, 14, 0)).expect("expands");
    assert_eq!(exp.occurrences.len(), 2);
    assert!(exp.beyond);
    let r = weekly(date(2026, 3, 3), Weekday::Tue, hm(14, 0), RecurrenceRange::Numbered(2));
    assert!(!r.expand(far()).expect("expands").beyond);
    // A daily series running since 2000 is evaluated from today without
    // hitting the expansion limit.
    let r = rec(
        Pattern::Daily { interval: 1 },
        date(2000, 1, 1),
        hm(9, 0),
        RecurrenceRange::NoEnd,
    );
    let exp = r
        .expand_window(paris(2026, 3, 2, 12, 0), paris(2026, 3, 5, 12, 0))
        .expect("expands");
    let got: Vec<_> = exp.occurrences.iter().map(|o| (o.index, o.start)).collect();
    assert_eq!(
        got,
        vec![
            (9558, paris(2026, 3, 3, 9, 0)),
            (9559, paris(2026, 3, 4, 9, 0)),
            (9560, paris(2026, 3, 5, 9, 0))
        ]
    );
}

#[test]
fn invalid_patterns_are_errors() {
    let mut r = rec(
        Pattern::Daily { interval: 0 },
        date(2026, 3, 3),
        hm(9, 0),
        RecurrenceRange::NoEnd,
    );
    assert!(r.expand(far()).is_err());
    r.pattern = Pattern::Weekly {
        interval: 1,
        days: vec![],
        first_day_of_week: Weekday::Mon,
    };
    assert!(r.validate().is_err());
    r.pattern = Pattern::Daily { interval: 1 };
    assert!(r.expand(far()).is_err(), "too many occurrences");
    r.start_date = date(1000, 1, 1);
    assert!(
        r.expand_window(paris(2026, 3, 2, 0, 0), paris(2026, 3, 9, 0, 0))
            .is_err(),
        "too long ago"
    );
}

#[test]
fn rrule_strings() {
    let start = date(2026, 3, 2).and_time(hm(9, 0));
    let parse = |s: &str| Recurrence::from_rrule(s, start, Duration::hours(1), Paris);
    let r = parse("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;COUNT=6").expect("parses");
    assert_eq!(
        r.pattern,
        Pattern::Weekly {
            interval: 2,
            days: vec![Weekday::Mon, Weekday::Wed],
            first_day_of_week: Weekday::Mon
        }
    );
    assert_eq!(r.range, RecurrenceRange::Numbered(6));
    let r = parse("FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20261231T000000Z").expect("parses");
    assert_eq!(
        r.pattern,
        Pattern::RelativeMonthly {
            interval: 1,
            day: DaySelector::Day(Weekday::Fri),
            index: WeekIndex::Last
        }
    );
    // 00:00Z is 01:00 in Paris, before 09:00: the last day is excluded.
    assert_eq!(r.range, RecurrenceRange::EndDate(date(2026, 12, 30)));
    let r = parse("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1").expect("parses");
    assert!(matches!(
        r.pattern,
        Pattern::RelativeMonthly {
            day: DaySelector::WorkDay,
            index: WeekIndex::First,
            ..
        }
    ));
    let r = parse("FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=14;UNTIL=20300714").expect("parses");
    assert_eq!(
        r.pattern,
        Pattern::AbsoluteYearly {
            month: 7,
            day_of_month: 14
        }
    );
    assert_eq!(r.range, RecurrenceRange::EndDate(date(2030, 7, 14)));
    assert_eq!(
        parse("FREQ=MONTHLY;BYMONTHDAY=-1").expect("parses").pattern,
        Pattern::AbsoluteMonthly {
            interval: 1,
            day_of_month: 31
        }
    );
    assert!(matches!(
        parse("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR").expect("parses").pattern,
        Pattern::Weekly { .. }
    ));
    for bad in [
        "FREQ=HOURLY",
        "INTERVAL=2",
        "FREQ=WEEKLY;BYHOUR=9",
        "FREQ=MONTHLY;BYDAY=MO,WE;BYSETPOS=1",
        "FREQ=DAILY;COUNT=x",
    ] {
        assert!(parse(bad).is_err(), "{bad} should be rejected");
    }
}

// ---- properties ----

mod props {
    use super::*;
    use proptest::prelude::*;

    fn weekday(n: u8) -> Weekday {
        match n % 7 {
            0 => Weekday::Mon,
            1 => Weekday::Tue,
            2 => Weekday::Wed,
            3 => Weekday::Thu,
            4 => Weekday::Fri,
            5 => Weekday::Sat,
            _ => Weekday::Sun,
        }
    }

    /// A request: day offset from now, start in quarter hours from 06:00,
    /// length in quarter hours, number of weekly occurrences (1 = single),
    /// buffers before and after in minutes.
    type Req = (i64, u32, u32, u32, u32, u32);

    fn req() -> impl Strategy<Value = Req> {
        (0i64..10, 0u32..48, 1u32..12, 1u32..4, 0u32..3, 0u32..3)
    }

    fn input_for(r: Req, occupancy: Vec<Occupied>, conflict_max: u32) -> DecisionInput {
        let (day, q_start, q_len, count, bb, ba) = r;
        let mut fx = Fx::new();
        let day0 = date(2026, 3, 3) + Duration::days(day);
        let start_time = hm(6 + q_start / 4, (q_start % 4) * 15);
        let start = local_to_utc(Paris, day0.and_time(start_time));
        let len = Duration::minutes(i64::from(q_len) * 15);
        if count == 1 {
            fx.single(start, start + len);
        } else {
            let mut rec = weekly(day0, day0.weekday(), start_time, RecurrenceRange::Numbered(count));
            rec.duration = len;
            fx.series(rec);
        }
        fx.set(Scope::Global, |p| {
            p.buffer_before_minutes = Some(bb * 10);
            p.buffer_after_minutes = Some(ba * 10);
            p.conflict_max_count = Some(conflict_max);
            p.conflict_max_percent = Some(50);
        });
        fx.input.occupancy = occupancy;
        fx.input.policy = EffectivePolicy::resolve(&fx.input.resource.chain, fx.layers.iter().map(|(s, p)| (*s, p)));
        fx.input
    }

    proptest! {
        #[test]
        fn decisions_are_deterministic(r in req(), others in proptest::collection::vec(req(), 0..6), rot in 0usize..6) {
            let occupancy: Vec<Occupied> = others.iter().map(|o| {
                let start = local_to_utc(Paris, (date(2026, 3, 3) + Duration::days(o.0)).and_time(hm(6 + o.1 / 4, (o.1 % 4) * 15)));
                occupied(start, start + Duration::minutes(i64::from(o.2) * 15), "X")
            }).collect();
            let input = input_for(r, occupancy, 1);
            prop_assert_eq!(decide(&input), decide(&input.clone()));
            // The order in which the store lists slots does not matter.
            let mut reordered = input.clone();
            reordered.occupancy.reverse();
            reordered.occupancy.rotate_left(rot % (others.len() + 1).max(1));
            prop_assert_eq!(decide(&input), decide(&reordered));
        }

        #[test]
        fn accepted_occurrences_never_overlap(reqs in proptest::collection::vec(req(), 1..25), conflict_max in 0u32..3) {
            let mut occupancy: Vec<Occupied> = Vec::new();
            for (n, r) in reqs.into_iter().enumerate() {
                let input = input_for(r, occupancy.clone(), conflict_max);
                let d = decide(&input);
                if matches!(d.outcome, Outcome::Decline { .. }) {
                    prop_assert!(d.occurrences.is_empty());
                }
                for o in &d.occurrences {
                    occupancy.push(Occupied {
                        booking: Uuid::from_u128(n as u128),
                        start: o.start,
                        end: o.end,
                        buffer_before: Duration::minutes(i64::from(input.policy.buffer_before_minutes.value)),
                        buffer_after: Duration::minutes(i64::from(input.policy.buffer_after_minutes.value)),
                        organiser_name: None,
                    });
                }
            }
            for (i, a) in occupancy.iter().enumerate() {
                for b in &occupancy[i + 1..] {
                    let (a0, a1) = a.occupied_range();
                    let (b0, b1) = b.occupied_range();
                    prop_assert!(a1 <= b0 || b1 <= a0, "{:?} overlaps {:?}", a, b);
                }
            }
        }

        #[test]
        fn weekly_series_keep_their_local_start_time(
            day in 0i64..365, days in proptest::collection::btree_set(0u8..7, 1..4),
            hour in 6u32..23, quarter in 0u32..4, count in 1u32..60,
        ) {
            let start = date(2026, 1, 1) + Duration::days(day);
            let time = hm(hour, quarter * 15);
            let r = rec(
                Pattern::Weekly { interval: 1, days: days.iter().map(|d| weekday(*d)).collect(), first_day_of_week: Weekday::Mon },
                start, time, RecurrenceRange::Numbered(count),
            );
            let occs = r.expand(far()).expect("expands").occurrences;
            prop_assert_eq!(occs.len(), count as usize);
            for o in occs {
                prop_assert_eq!(o.start.with_timezone(&Paris).time(), time);
                prop_assert!(days.contains(&(o.start.with_timezone(&Paris).weekday().num_days_from_monday() as u8)));
            }
        }

        #[test]
        fn a_window_is_the_full_expansion_cut_at_its_start(
            start_day in 0i64..2000, from_day in 0i64..2400, interval in 1u32..4, hour in 0u32..24,
            hours_long in 1i64..60, monthly in proptest::bool::ANY,
        ) {
            let pattern = if monthly {
                Pattern::AbsoluteMonthly { interval, day_of_month: 31 }
            } else {
                Pattern::Daily { interval }
            };
            let mut r = rec(pattern, date(2020, 1, 1) + Duration::days(start_day), hm(hour, 30), RecurrenceRange::NoEnd);
            r.duration = Duration::hours(hours_long);
            let from = paris(2020, 1, 1, 0, 0) + Duration::days(from_day) + Duration::minutes(37);
            let until = from + Duration::days(40);
            let full: Vec<Occurrence> = r.expand(until).expect("expands").occurrences.into_iter().filter(|o| o.end > from).collect();
            let window = r.expand_window(from, until).expect("expands").occurrences;
            prop_assert_eq!(window, full);
        }

        #[test]
        fn rrule_round_trips(kind in 0u8..6, interval in 1u32..4, day in 1u32..32, month in 1u32..13,
                             wd in 0u8..7, idx in 0u8..5, count in proptest::option::of(1u32..30)) {
            let index = [WeekIndex::First, WeekIndex::Second, WeekIndex::Third, WeekIndex::Fourth, WeekIndex::Last][idx as usize];
            let sel = [DaySelector::Day(weekday(wd)), DaySelector::AnyDay, DaySelector::WorkDay, DaySelector::WeekendDay][(wd % 4) as usize];
            let pattern = match kind {
                0 => Pattern::Daily { interval },
                1 => Pattern::Weekly { interval, days: vec![weekday(wd), weekday(wd + 3)], first_day_of_week: weekday(idx) },
                2 => Pattern::AbsoluteMonthly { interval, day_of_month: day },
                3 => Pattern::RelativeMonthly { interval, day: sel, index },
                4 => Pattern::AbsoluteYearly { month, day_of_month: day },
                _ => Pattern::RelativeYearly { month, day: sel, index },
            };
            let range = count.map_or(RecurrenceRange::EndDate(date(2027, 6, 30)), RecurrenceRange::Numbered);
            let r = rec(pattern, date(2026, 3, 2), hm(9, 0), range);
            let back = Recurrence::from_rrule(&r.to_rrule(), date(2026, 3, 2).and_time(hm(9, 0)), Duration::hours(1), Paris)
                .expect("parses its own output");
            prop_assert_eq!(back, r);
        }
    }
}

#[test]
fn messages_list_the_declined_occurrences() {
    let mut fx = Fx::new();
    fx.set(Scope::Global, |p| {
        p.conflict_max_count = Some(1);
        p.conflict_max_percent = Some(20);
        p.show_organiser_on_conflict = Some(true);
    });
    tuesday_series(&mut fx, 5);
    fx.input.occupancy.push(occupied(
        paris(2026, 3, 10, 14, 0),
        paris(2026, 3, 10, 15, 0),
        "Service Urbanisme",
    ));
    let d = fx.run();
    assert_eq!(
        d.message(&fr()),
        "Votre demande est acceptée, sauf pour les occurrences suivantes :\n\
         - mardi 10 mars 2026 à 14 h : La salle est réservée de 14 h à 15 h par Service Urbanisme"
    );
    assert_eq!(
        d.message(&en()),
        "Your request is accepted, except for the following occurrences:\n\
         - Tuesday 10 March 2026 at 14:00: The room is booked from 14:00 to 15:00 by Service Urbanisme"
    );
    let mut fx = Fx::new();
    fx.set(Scope::Global, |p| p.max_duration_minutes = Some(30));
    assert_eq!(
        fx.run().message(&fr()),
        "Votre demande est refusée :\n- Durée maximale : 30 min"
    );
}

#[test]
fn policy_validation() {
    assert!(Policy::default().validate().is_ok());
    let bad = [
        Policy {
            conflict_max_percent: Some(101),
            ..Policy::default()
        },
        Policy {
            min_duration_minutes: Some(60),
            max_duration_minutes: Some(30),
            ..Policy::default()
        },
        Policy {
            opening_hours: Some(WeeklyHours::uniform(
                &[Weekday::Mon],
                TimeRange::hm((18, 0), (8, 0)).expect("valid"),
            )),
            ..Policy::default()
        },
    ];
    for p in bad {
        assert!(p.validate().is_err(), "{p:?}");
    }
    // Midnight as an end is the end of the day, not an empty range.
    let night = WeeklyHours::uniform(&[Weekday::Sat], TimeRange::hm((20, 0), (0, 0)).expect("valid"));
    assert!(night.validate().is_ok());
}

#[test]
fn decisions_round_trip_through_json_for_the_audit_log() {
    let mut fx = Fx::new();
    fx.set(Scope::Global, |p| {
        p.conflict_max_count = Some(1);
        p.conflict_max_percent = Some(20);
        p.show_organiser_on_conflict = Some(true);
    });
    tuesday_series(&mut fx, 5);
    fx.input.occupancy.push(occupied(
        paris(2026, 3, 10, 14, 0),
        paris(2026, 3, 10, 15, 0),
        "Service Urbanisme",
    ));
    let d = fx.run();
    let json = serde_json::to_string(&d).expect("serialises");
    let back: Decision = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, d);
}

#[test]
fn whole_day_blackouts_read_as_dates() {
    let blackout = |end_day: u32| {
        Reason::new(
            ReasonKind::Blackout {
                start: paris(2026, 3, 3, 0, 0),
                end: paris(2026, 3, end_day, 0, 0),
                reason: "Travaux".into(),
            },
            Scope::Site(SITE),
        )
    };
    assert_eq!(
        blackout(4).render(&fr()),
        "La salle est indisponible le mardi 3 mars 2026 : Travaux"
    );
    assert_eq!(
        blackout(6).render(&fr()),
        "La salle est indisponible du mardi 3 mars 2026 au jeudi 5 mars 2026 : Travaux"
    );
    assert_eq!(
        blackout(6).render(&en()),
        "The room is unavailable from Tuesday 3 March 2026 to Thursday 5 March 2026: Travaux"
    );
    let late = Reason::new(
        ReasonKind::Conflict {
            start: paris(2026, 3, 3, 22, 0),
            end: paris(2026, 3, 4, 9, 15),
            organiser: None,
        },
        Scope::Resource(RES),
    );
    assert_eq!(
        late.render(&fr()),
        "La salle est déjà réservée du mardi 3 mars 2026 à 22 h au mercredi 4 mars 2026 à 9 h 15"
    );
    assert_eq!(
        late.render(&en()),
        "The room is already booked from Tuesday 3 March 2026 at 22:00 to Wednesday 4 March 2026 at 09:15"
    );
}

#[test]
fn recurrence_round_trips_through_json() {
    let mut r = weekly(date(2026, 3, 3), Weekday::Tue, hm(14, 0), RecurrenceRange::Numbered(4));
    r.deleted.insert(date(2026, 3, 10));
    r.modified.push(ModifiedOccurrence {
        original_start: paris(2026, 3, 17, 14, 0),
        start: paris(2026, 3, 18, 10, 0),
        end: paris(2026, 3, 18, 11, 0),
    });
    let v = serde_json::to_value(&r).expect("serialises");
    assert_eq!(v["tz"], "Europe/Paris");
    assert_eq!(v["duration"], 3600);
    assert_eq!(v["pattern"]["kind"], "weekly");
    let back: Recurrence = serde_json::from_value(v).expect("deserialises");
    assert_eq!(back, r);
    let mut bad = serde_json::to_value(&r).expect("serialises");
    bad["tz"] = "Mars/Olympus_Mons".into();
    assert!(serde_json::from_value::<Recurrence>(bad).is_err());
}

#[test]
fn a_decision_replays_from_its_logged_inputs() {
    let mut fx = Fx::new();
    fx.set(Scope::Site(SITE), |p| p.buffer_after_minutes = Some(15));
    tuesday_series(&mut fx, 3);
    fx.input
        .occupancy
        .push(occupied(paris(2026, 3, 10, 14, 0), paris(2026, 3, 10, 15, 0), "X"));
    fx.input.policy = EffectivePolicy::resolve(&fx.input.resource.chain, fx.layers.iter().map(|(s, p)| (*s, p)));
    let logged = serde_json::to_string(&fx.input).expect("serialises");
    let replayed: DecisionInput = serde_json::from_str(&logged).expect("deserialises");
    assert_eq!(replayed, fx.input);
    assert_eq!(decide(&replayed), decide(&fx.input));
}

// ---- circuits ----

mod circuits {
    use super::*;
    use crate::domain::circuit::*;

    const A: Uuid = Uuid::from_u128(0xa1);
    const B: Uuid = Uuid::from_u128(0xa2);
    const C: Uuid = Uuid::from_u128(0xa3);
    const BACKUP: Uuid = Uuid::from_u128(0xa9);

    fn hours(h: i64) -> Option<Delay> {
        Some(Delay(Duration::hours(h)))
    }

    fn step(approvers: &[Uuid], quorum: Quorum) -> Step {
        Step {
            approvers: approvers.to_vec(),
            quorum,
            reminder: None,
            deadline: None,
            backup: None,
        }
    }

    fn t0() -> DateTime<Utc> {
        paris(2026, 3, 2, 9, 0)
    }

    #[test]
    fn two_steps_one_then_all() {
        let c = Circuit {
            steps: vec![step(&[A, B], Quorum::One), step(&[B, C], Quorum::All)],
            deadline: None,
            final_outcome: FinalOutcome::Decline,
        };
        let (mut p, first) = c.start(t0()).expect("valid circuit");
        assert_eq!(
            first,
            Effect::AskApprovers {
                step: 0,
                approvers: vec![A, B]
            }
        );
        assert_eq!(
            advance(&c, &mut p, Event::Approve(C), t0()),
            Effect::Nothing,
            "C is not in step 1"
        );
        assert_eq!(
            advance(&c, &mut p, Event::Approve(A), t0()),
            Effect::AskApprovers {
                step: 1,
                approvers: vec![B, C]
            }
        );
        assert_eq!(
            advance(&c, &mut p, Event::Approve(B), t0()),
            Effect::Nothing,
            "C still has to approve"
        );
        assert_eq!(
            advance(&c, &mut p, Event::Approve(B), t0()),
            Effect::Nothing,
            "twice is once"
        );
        assert_eq!(advance(&c, &mut p, Event::Approve(C), t0()), Effect::Approved);
        assert!(p.finished);
        assert_eq!(advance(&c, &mut p, Event::Refuse(C), t0()), Effect::Nothing);
    }

    #[test]
    fn one_refusal_ends_the_circuit() {
        let c = Circuit {
            steps: vec![step(&[A, B], Quorum::All)],
            deadline: None,
            final_outcome: FinalOutcome::Accept,
        };
        let (mut p, _) = c.start(t0()).expect("valid circuit");
        assert_eq!(advance(&c, &mut p, Event::Approve(A), t0()), Effect::Nothing);
        assert_eq!(advance(&c, &mut p, Event::Refuse(B), t0()), Effect::Refused { by: B });
    }

    #[test]
    fn reminder_then_escalation_then_expiry() {
        let mut s = step(&[A], Quorum::One);
        s.reminder = hours(24);
        s.deadline = hours(48);
        s.backup = Some(BACKUP);
        let c = Circuit {
            steps: vec![s],
            deadline: None,
            final_outcome: FinalOutcome::Decline,
        };
        let (mut p, _) = c.start(t0()).expect("valid circuit");
        assert_eq!(
            advance(&c, &mut p, Event::Tick, t0() + Duration::hours(23)),
            Effect::Nothing
        );
        assert_eq!(
            advance(&c, &mut p, Event::Tick, t0() + Duration::hours(24)),
            Effect::Remind {
                step: 0,
                approvers: vec![A]
            }
        );
        assert_eq!(
            advance(&c, &mut p, Event::Tick, t0() + Duration::hours(25)),
            Effect::Nothing,
            "reminded once"
        );
        assert_eq!(
            advance(&c, &mut p, Event::Tick, t0() + Duration::hours(48)),
            Effect::EscalateTo {
                step: 0,
                backup: BACKUP
            }
        );
        assert_eq!(
            advance(&c, &mut p, Event::Tick, t0() + Duration::hours(96)),
            Effect::Expired {
                outcome: FinalOutcome::Decline
            }
        );
    }

    #[test]
    fn the_backup_decides_alone_after_escalation() {
        let mut s = step(&[A, B], Quorum::All);
        s.deadline = hours(48);
        s.backup = Some(BACKUP);
        let c = Circuit {
            steps: vec![s],
            deadline: hours(24 * 7),
            final_outcome: FinalOutcome::Accept,
        };
        let (mut p, _) = c.start(t0()).expect("valid circuit");
        assert_eq!(
            advance(&c, &mut p, Event::Approve(BACKUP), t0()),
            Effect::Nothing,
            "not escalated yet"
        );
        advance(&c, &mut p, Event::Tick, t0() + Duration::hours(48));
        assert_eq!(
            advance(&c, &mut p, Event::Approve(BACKUP), t0() + Duration::hours(49)),
            Effect::Approved
        );
    }

    #[test]
    fn the_circuit_deadline_gives_the_final_outcome() {
        let c = Circuit {
            steps: vec![step(&[A], Quorum::One)],
            deadline: hours(72),
            final_outcome: FinalOutcome::Accept,
        };
        let (mut p, _) = c.start(t0()).expect("valid circuit");
        assert_eq!(
            advance(&c, &mut p, Event::Tick, t0() + Duration::hours(72)),
            Effect::Expired {
                outcome: FinalOutcome::Accept
            }
        );
        assert!(
            Circuit {
                steps: vec![],
                deadline: None,
                final_outcome: FinalOutcome::Accept
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn the_matching_circuit_of_highest_priority_is_chosen() {
        let mut fx = Fx::new();
        fx.single(paris(2026, 3, 3, 17, 0), paris(2026, 3, 3, 20, 0));
        let d = decide(&fx.input);
        let ctx = CircuitContext::of(&fx.input, &d.occurrences);
        assert!(ctx.outside_work_hours);
        assert_eq!(ctx.longest_minutes, 180);
        let choice = |id: u128, priority: i32, conditions: Vec<Condition>| CircuitChoice {
            circuit_version: Uuid::from_u128(id),
            priority,
            conditions,
        };
        let candidates = vec![
            choice(1, 0, vec![]),
            choice(2, 10, vec![Condition::Site { id: SITE2 }]),
            choice(
                3,
                5,
                vec![
                    Condition::OutsideWorkHours,
                    Condition::RequesterInGroup { group: GROUP },
                ],
            ),
            choice(4, 5, vec![Condition::LongerThan { minutes: 120 }]),
            choice(5, 20, vec![Condition::Recurring]),
        ];
        assert_eq!(choose_circuit(&candidates, &ctx), Some(Uuid::from_u128(3)));
        assert_eq!(choose_circuit(&candidates[..1], &ctx), Some(Uuid::from_u128(1)));
        let json = serde_json::to_string(&candidates[2].conditions).expect("serialises");
        assert_eq!(
            json,
            format!(r#"[{{"kind":"outside_work_hours"}},{{"kind":"requester_in_group","group":"{GROUP}"}}]"#)
        );
    }
}

#[test]
fn the_domain_imports_no_io_crate_and_reads_no_clock() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let forbidden = [
        "sqlx",
        "tokio",
        "reqwest",
        "axum",
        "quick_xml",
        "ldap3",
        "Utc::now",
        "SystemTime",
    ];
    for entry in std::fs::read_dir(&dir).expect("src/domain is readable") {
        let path = entry.expect("directory entry").path();
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source is readable");
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for word in forbidden {
                assert!(!line.contains(word), "{} uses {word}: {line}", path.display());
            }
        }
    }
}
