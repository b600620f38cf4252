//! Scopes, policies and their inheritance.
//!
//! A [`Policy`] is what an admin sets at one [`Scope`]: every field is an
//! `Option`, `None` meaning "inherit". [`EffectivePolicy::resolve`] folds the
//! policies of a resource's [`ScopeChain`] from the most general scope to the
//! most specific one, so the most specific value wins, and remembers which
//! scope set each value so that every reason can name it.

use chrono::{NaiveTime, Weekday};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::DomainError;

/// Where a policy, a grant or a blackout applies.
///
/// The derived order is the inheritance order: global, then organisation,
/// site, resource type and resource (variants are declared in that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    Global,
    Organisation(Uuid),
    Site(Uuid),
    ResourceType(Uuid),
    Resource(Uuid),
}

impl Scope {
    /// A stable name for the level, used in explanations and logs.
    pub fn level(&self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Organisation(_) => "organisation",
            Scope::Site(_) => "site",
            Scope::ResourceType(_) => "resource_type",
            Scope::Resource(_) => "resource",
        }
    }
}

/// The scopes a resource belongs to, from the most general to itself.
///
/// Shared resources (cars shared by both organisations) have no organisation
/// and possibly no site, hence the options.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScopeChain {
    pub organisation: Option<Uuid>,
    pub site: Option<Uuid>,
    pub resource_type: Option<Uuid>,
    pub resource: Uuid,
}

impl ScopeChain {
    /// A chain with only the resource itself (and the global scope).
    pub fn resource_only(resource: Uuid) -> Self {
        Self {
            organisation: None,
            site: None,
            resource_type: None,
            resource,
        }
    }

    /// The scopes of the chain, general first.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut out = vec![Scope::Global];
        out.extend(self.organisation.map(Scope::Organisation));
        out.extend(self.site.map(Scope::Site));
        out.extend(self.resource_type.map(Scope::ResourceType));
        out.push(Scope::Resource(self.resource));
        out
    }

    /// Whether something set at `scope` applies to this resource.
    pub fn contains(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Global => true,
            Scope::Organisation(id) => self.organisation == Some(*id),
            Scope::Site(id) => self.site == Some(*id),
            Scope::ResourceType(id) => self.resource_type == Some(*id),
            Scope::Resource(id) => self.resource == *id,
        }
    }
}

/// What to do with the occurrences of a series beyond the scheduling horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HorizonMode {
    /// Decline the whole series.
    Decline,
    /// Accept the occurrences inside the horizon, drop the rest.
    Truncate,
}

/// How to treat an organiser who is not found in any directory but whose
/// address is in a local domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOrganiser {
    /// Decline with `unknown_organiser`.
    Decline,
    /// Hold the request for approval.
    Hold,
    /// Decide with the default right, as for a known person without grants.
    DefaultRight,
}

/// What a person with no applicable grant may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultRight {
    Book,
    Request,
    None,
}

/// A range of local time within one day, `[start, end)`.
///
/// An `end` of 00:00 means midnight at the end of the day, so that
/// `00:00–00:00` is the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl TimeRange {
    /// The whole day.
    pub const ALL_DAY: TimeRange = TimeRange {
        start: NaiveTime::MIN,
        end: NaiveTime::MIN,
    };

    /// A range from hour and minute pairs; `None` if a time is invalid.
    pub fn hm(start: (u32, u32), end: (u32, u32)) -> Option<Self> {
        Some(Self {
            start: NaiveTime::from_hms_opt(start.0, start.1, 0)?,
            end: NaiveTime::from_hms_opt(end.0, end.1, 0)?,
        })
    }

    /// Start and end as seconds since midnight, with midnight as an end
    /// counted as 86,400 so comparisons stay simple.
    pub fn seconds(&self) -> (u32, u32) {
        use chrono::Timelike;
        let s = self.start.num_seconds_from_midnight();
        let e = match self.end.num_seconds_from_midnight() {
            0 => 86_400,
            e => e,
        };
        (s, e)
    }
}

/// 08:00 to 18:00, evaluated at compile time so it cannot fail at run time.
const OFFICE_HOURS: TimeRange = match (NaiveTime::from_hms_opt(8, 0, 0), NaiveTime::from_hms_opt(18, 0, 0)) {
    (Some(start), Some(end)) => TimeRange { start, end },
    _ => panic!("08:00 and 18:00 are valid times"),
};

/// Open ranges for each day of the week, in the resource's time zone.
///
/// A day with an empty list is closed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeeklyHours {
    pub monday: Vec<TimeRange>,
    pub tuesday: Vec<TimeRange>,
    pub wednesday: Vec<TimeRange>,
    pub thursday: Vec<TimeRange>,
    pub friday: Vec<TimeRange>,
    pub saturday: Vec<TimeRange>,
    pub sunday: Vec<TimeRange>,
}

impl WeeklyHours {
    /// Open every day, all day.
    pub fn always() -> Self {
        Self::uniform(
            &[
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            TimeRange::ALL_DAY,
        )
    }

    /// The same range on the given days, closed on the others.
    pub fn uniform(days: &[Weekday], range: TimeRange) -> Self {
        let mut out = Self::default();
        for d in days {
            out.day_mut(*d).push(range);
        }
        out
    }

    /// Monday to Friday, 08:00 to 18:00: the built-in working hours.
    pub fn office() -> Self {
        Self::uniform(
            &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            OFFICE_HOURS,
        )
    }

    /// The ranges of one weekday.
    pub fn day(&self, d: Weekday) -> &[TimeRange] {
        match d {
            Weekday::Mon => &self.monday,
            Weekday::Tue => &self.tuesday,
            Weekday::Wed => &self.wednesday,
            Weekday::Thu => &self.thursday,
            Weekday::Fri => &self.friday,
            Weekday::Sat => &self.saturday,
            Weekday::Sun => &self.sunday,
        }
    }

    fn day_mut(&mut self, d: Weekday) -> &mut Vec<TimeRange> {
        match d {
            Weekday::Mon => &mut self.monday,
            Weekday::Tue => &mut self.tuesday,
            Weekday::Wed => &mut self.wednesday,
            Weekday::Thu => &mut self.thursday,
            Weekday::Fri => &mut self.friday,
            Weekday::Sat => &mut self.saturday,
            Weekday::Sun => &mut self.sunday,
        }
    }

    /// Rejects ranges that end before they start.
    pub fn validate(&self) -> Result<(), DomainError> {
        let days = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ];
        for d in days {
            if self.day(d).iter().any(|r| {
                let (s, e) = r.seconds();
                s >= e
            }) {
                return Err(DomainError::InvalidPolicy("a time range ends before it starts"));
            }
        }
        Ok(())
    }

    /// Whether `[from, to)` seconds of day `d` lie inside one open range.
    ///
    /// Adjacent ranges (08:00–12:00 and 12:00–18:00) are merged first, so a
    /// meeting across their boundary is accepted.
    pub fn covers(&self, d: Weekday, from: u32, to: u32) -> bool {
        let mut ranges: Vec<(u32, u32)> = self.day(d).iter().map(TimeRange::seconds).collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged.iter().any(|&(s, e)| s <= from && to <= e)
    }
}

/// Who a quota counts bookings for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum QuotaSubject {
    /// Each organiser separately.
    Person,
    /// All members of the group together (applies only to its members).
    Group(Uuid),
}

/// The calendar period a quota is counted over, in the resource's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    Month,
}

/// The limit of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum QuotaLimit {
    /// Total booked hours per period.
    Hours(u32),
    /// Number of occurrences per period.
    Count(u32),
    /// Bookings overlapping in time (the period is not used).
    Concurrent(u32),
}

/// One quota rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub subject: QuotaSubject,
    pub period: QuotaPeriod,
    pub limit: QuotaLimit,
}

/// A value of the effective policy and the scope that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved<T> {
    pub value: T,
    pub scope: Scope,
    /// True when nobody set it and the built-in default applies.
    pub builtin: bool,
}

// One list of fields generates the stored `Policy`, the resolved
// `EffectivePolicy` and the inheritance fold, so the three cannot drift.
macro_rules! policy_fields {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $default:expr ; )*) => {
        /// The rules set at one scope; `None` inherits from the scope above.
        ///
        /// Stored as JSONB: unknown fields are rejected so that a typo in an
        /// admin's policy is an error rather than a silently ignored rule.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Policy {
            $( $(#[$doc])* #[serde(skip_serializing_if = "Option::is_none")] pub $name: Option<$ty>, )*
        }

        /// Every rule resolved for one resource, with the scope that set it.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct EffectivePolicy {
            $( $(#[$doc])* pub $name: Resolved<$ty>, )*
        }

        impl EffectivePolicy {
            /// Folds the policies that apply to `chain`, general to specific.
            ///
            /// Policies set at scopes outside the chain are ignored; when two
            /// policies share a scope the later one in `layers` wins.
            pub fn resolve<'a>(
                chain: &ScopeChain,
                layers: impl IntoIterator<Item = (Scope, &'a Policy)>,
            ) -> Self {
                let mut layers: Vec<(Scope, &Policy)> =
                    layers.into_iter().filter(|(s, _)| chain.contains(s)).collect();
                // Stable, so equal scopes keep their given order.
                layers.sort_by_key(|(s, _)| *s);
                $(
                    let mut $name = Resolved { value: $default, scope: Scope::Global, builtin: true };
                    for (scope, p) in &layers {
                        if let Some(v) = &p.$name {
                            $name = Resolved { value: v.clone(), scope: *scope, builtin: false };
                        }
                    }
                )*
                Self { $( $name, )* }
            }

            /// The built-in defaults alone.
            pub fn builtin() -> Self {
                Self::resolve(&ScopeChain::resource_only(Uuid::nil()), std::iter::empty())
            }
        }
    };
}

policy_fields! {
    /// A request whose first occurrence starts more than this many days
    /// after `now` is declined (`booking_window`).
    booking_window_days: u32 = 180;
    /// Occurrences of a series starting more than this many days after
    /// `now` are beyond the scheduling horizon.
    series_horizon_days: u32 = 365;
    /// What to do with occurrences beyond the horizon.
    horizon_mode: HorizonMode = HorizonMode::Decline;
    /// Minimum time between `now` and the start of an occurrence.
    min_notice_minutes: u32 = 0;
    /// Shortest allowed occurrence.
    min_duration_minutes: u32 = 0;
    /// Longest allowed occurrence (Exchange's default is 24 hours).
    max_duration_minutes: u32 = 1440;
    /// When the resource can be used at all, per weekday, local time.
    opening_hours: WeeklyHours = WeeklyHours::always();
    /// Whether the resource is closed on French public holidays.
    closed_on_public_holidays: bool = false;
    /// Whether occurrences must also fit `work_hours`.
    work_hours_only: bool = false;
    /// The resource's working hours, used when `work_hours_only` is set.
    work_hours: WeeklyHours = WeeklyHours::office();
    /// Time kept free before each booking (setup).
    buffer_before_minutes: u32 = 0;
    /// Time kept free after each booking (cleaning, charging a car).
    buffer_after_minutes: u32 = 0;
    /// Whether more attendees than the resource's capacity is a decline.
    enforce_capacity: bool = false;
    /// Whether recurring meetings are accepted at all.
    allow_recurring: bool = true;
    /// Largest number of occurrences in a series; 0 means no limit.
    max_occurrences: u32 = 0;
    /// Largest share (percent) of conflicting occurrences that still lets
    /// a series be accepted partially.
    conflict_max_percent: u8 = 0;
    /// Largest number of conflicting occurrences that still lets a series
    /// be accepted partially.
    conflict_max_count: u32 = 0;
    /// Quotas; the list is inherited as a whole, not merged.
    quotas: Vec<Quota> = Vec::new();
    /// Whether organisers outside the directory or the local domains may book.
    allow_external_organisers: bool = false;
    /// What to do with a local-domain organiser missing from the directory.
    unknown_organiser: UnknownOrganiser = UnknownOrganiser::Decline;
    /// Whether the organiser of a conflicting booking is named in a decline.
    show_organiser_on_conflict: bool = false;
    /// The right of a person without any applicable grant.
    default_right: DefaultRight = DefaultRight::Book;
    /// Whether people with the Manage right skip every rule except conflicts
    /// and the series horizon.
    managers_bypass_rules: bool = false;
    /// The validation circuit suggested when a request is held.
    approval_circuit: Option<Uuid> = None;
    /// Minutes after the start within which the organiser must check in
    /// (on the web site) or the occurrence is released; 0: no check-in.
    check_in_minutes: u32 = 0;
    /// Whether a vehicle's trip details (destination, distance, passengers)
    /// must be given before pickup.
    require_trip_details: bool = false;
    /// Minutes after a vehicle's or item's booking ends before a missing
    /// return is reported as overdue.
    return_grace_minutes: u32 = 15;
}

impl Policy {
    /// Checks values that serde accepts but that make no sense, so an
    /// admin's mistake is refused when saved rather than at decision time.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.conflict_max_percent.is_some_and(|p| p > 100) {
            return Err(DomainError::InvalidPolicy("conflict_max_percent above 100"));
        }
        if let (Some(min), Some(max)) = (self.min_duration_minutes, self.max_duration_minutes)
            && min > max
        {
            return Err(DomainError::InvalidPolicy(
                "min_duration_minutes above max_duration_minutes",
            ));
        }
        if let Some(h) = &self.opening_hours {
            h.validate()?;
        }
        if let Some(h) = &self.work_hours {
            h.validate()?;
        }
        if self.quotas.iter().flatten().any(|q| {
            matches!(
                q.limit,
                QuotaLimit::Hours(0) | QuotaLimit::Count(0) | QuotaLimit::Concurrent(0)
            )
        }) {
            return Err(DomainError::InvalidPolicy(
                "a quota of zero forbids every booking; use a Deny grant",
            ));
        }
        Ok(())
    }
}
