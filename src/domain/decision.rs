//! The decision: runs every rule over a request and combines the verdicts.
//!
//! [`decide`] is a pure function of [`DecisionInput`]: equal inputs give
//! equal decisions (no clock, no hash-order iteration). Rules fall in three
//! groups, and the grouping is what the combination relies on:
//!
//! - request rules (organiser, rights, recurring allowed, max occurrences,
//!   booking window, horizon, capacity) decline the whole request;
//! - hard occurrence rules (durations, opening and working hours, quotas)
//!   decline the whole request when any occurrence breaks them, because the
//!   request itself is out of policy;
//! - soft occurrence rules (public holidays, blackouts, minimum notice for a
//!   series, conflicts) decline single occurrences of a series, which is then
//!   accepted partially; conflicts alone are bounded by `conflict_max_count`
//!   and `conflict_max_percent`, as in Exchange. A single meeting is
//!   declined by any of them.
//!
//! A request that passes but comes from someone with only the Request right
//! (or an unknown organiser under the Hold policy) is held for approval.
//! Occurrences of a series that already ended at `now` are not evaluated
//! (an update to a running series) and are not in the result.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use resa::domain::decision::*;
//! use resa::domain::policy::{EffectivePolicy, Policy, Scope, ScopeChain};
//! use resa::domain::reason::{RenderContext, ResourceKind};
//! use uuid::Uuid;
//!
//! let (site, room, person) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
//! let chain = ScopeChain { organisation: None, site: Some(site), resource_type: None, resource: room };
//! let site_rules = Policy { max_duration_minutes: Some(240), ..Policy::default() };
//! let input = DecisionInput {
//!     now: Utc.with_ymd_and_hms(2026, 3, 2, 7, 0, 0).unwrap(),
//!     request: BookingRequest {
//!         organiser: Organiser::Known { person, groups: vec![] },
//!         attendees: 4,
//!         when: When::Single {
//!             start: Utc.with_ymd_and_hms(2026, 3, 3, 13, 0, 0).unwrap(),
//!             end: Utc.with_ymd_and_hms(2026, 3, 3, 18, 0, 0).unwrap(),
//!         },
//!         replaces: None,
//!     },
//!     policy: EffectivePolicy::resolve(&chain, [(Scope::Site(site), &site_rules)]),
//!     resource: ResourceInfo { chain, kind: ResourceKind::Room, capacity: Some(8), tz: chrono_tz::Europe::Paris },
//!     grants: vec![],
//!     occupancy: vec![],
//!     quota_bookings: vec![],
//!     blackouts: vec![],
//!     licence: None,
//! };
//! let decision = decide(&input);
//! assert_eq!(decision.kind(), "decline");
//! assert_eq!(decision.reason_codes(), ["max_duration"]);
//! assert_eq!(decision.message(&RenderContext::default()), "Votre demande est refusée :\n- Durée maximale : 4 h");
//! ```

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::holidays::Blackout;
use super::policy::{EffectivePolicy, HorizonMode, Scope, ScopeChain, UnknownOrganiser};
use super::reason::{InvalidRequest, Lang, Reason, ReasonKind, RenderContext, ResourceKind, format_instant};
use super::recurrence::{Occurrence, Recurrence, tz_name};
use super::rights::{Grant, Principal, Right, RightDecision, resolve_right};
use super::rules::{self, Occupied, QuotaBooking};
use super::vehicles::LicenceCheck;

/// Who sent the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Organiser {
    /// Found in a directory.
    Known {
        person: Uuid,
        /// All groups, nested membership included, from both directories.
        groups: Vec<Uuid>,
    },
    /// An address in a local domain that no directory knows.
    Unknown,
    /// An address outside the local domains.
    External,
}

/// When the meeting takes place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    Single { start: DateTime<Utc>, end: DateTime<Utc> },
    Series(Box<Recurrence>),
}

/// A meeting request, as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingRequest {
    pub organiser: Organiser,
    /// People invited (required and optional), resources excluded.
    pub attendees: u32,
    pub when: When,
    /// The booking this request updates: its slots are not conflicts.
    pub replaces: Option<Uuid>,
}

/// The resource asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceInfo {
    pub chain: ScopeChain,
    pub kind: ResourceKind,
    pub capacity: Option<u32>,
    /// Where opening hours and periods are read (Europe/Paris by default).
    #[serde(with = "tz_name")]
    pub tz: Tz,
}

/// Everything a decision depends on.
///
/// Serialisable so that the decision log can keep the inputs and a
/// decision can be replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionInput {
    pub now: DateTime<Utc>,
    pub request: BookingRequest,
    pub resource: ResourceInfo,
    pub policy: EffectivePolicy,
    /// Grants; those of other scopes or subjects are ignored.
    pub grants: Vec<Grant>,
    /// Slots already held on this resource.
    pub occupancy: Vec<Occupied>,
    /// Bookings counted by quotas (the organiser's, and their groups').
    pub quota_bookings: Vec<QuotaBooking>,
    /// Blackouts; those of other scopes are ignored.
    pub blackouts: Vec<Blackout>,
    /// The licence the vehicle needs and the organiser's, for a vehicle
    /// that needs one; `None` for anything else.
    #[serde(default)]
    pub licence: Option<LicenceCheck>,
}

/// The rules, for the explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Validity,
    Organiser,
    Rights,
    RecurringAllowed,
    MaxOccurrences,
    BookingWindow,
    Horizon,
    Capacity,
    MinNotice,
    Duration,
    OpeningHours,
    WorkHours,
    PublicHolidays,
    Blackouts,
    Quotas,
    Conflicts,
    Licence,
}

/// How one rule went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not evaluated: a manager allowed to bypass rules.
    Bypassed,
    /// Does not apply to this request (horizon for a single meeting).
    NotApplicable,
}

/// One line of the explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleCheck {
    pub rule: Rule,
    pub scope: Scope,
    pub verdict: Verdict,
}

/// An occurrence that is not accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclinedOccurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub original_start: DateTime<Utc>,
    pub reasons: Vec<Reason>,
}

/// The answer sent to the organiser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Accept,
    AcceptPartially {
        declined: Vec<DeclinedOccurrence>,
    },
    /// `declined` details each failing occurrence of a series.
    Decline {
        reasons: Vec<Reason>,
        declined: Vec<DeclinedOccurrence>,
    },
    /// Held for approval; the slots are held meanwhile.
    Hold {
        reasons: Vec<Reason>,
        circuit: Option<Uuid>,
        declined: Vec<DeclinedOccurrence>,
    },
}

/// The outcome, the occurrences it accepts (or holds), the right that
/// applied and the explanation, rule by rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// Occurrences to write as booked (Accept, AcceptPartially) or held (Hold).
    pub occurrences: Vec<Occurrence>,
    pub right: Option<RightDecision>,
    pub checks: Vec<RuleCheck>,
}

impl Decision {
    /// "accept", "accept_partially", "decline" or "hold".
    pub fn kind(&self) -> &'static str {
        match self.outcome {
            Outcome::Accept => "accept",
            Outcome::AcceptPartially { .. } => "accept_partially",
            Outcome::Decline { .. } => "decline",
            Outcome::Hold { .. } => "hold",
        }
    }

    /// The codes of the top-level reasons, then of declined occurrences,
    /// without repeats, in order of first appearance.
    pub fn reason_codes(&self) -> Vec<&'static str> {
        let (top, declined): (&[Reason], &[DeclinedOccurrence]) = match &self.outcome {
            Outcome::Accept => (&[], &[]),
            Outcome::AcceptPartially { declined } => (&[], declined),
            Outcome::Decline { reasons, declined } | Outcome::Hold { reasons, declined, .. } => (reasons, declined),
        };
        let mut out = Vec::new();
        for code in top
            .iter()
            .chain(declined.iter().flat_map(|d| d.reasons.iter()))
            .map(Reason::code)
        {
            if !out.contains(&code) {
                out.push(code);
            }
        }
        out
    }
}

/// How many declined occurrences a message lists before summarising.
const LISTED_OCCURRENCES: usize = 20;

impl DeclinedOccurrence {
    /// "mardi 10 mars 2026 à 14 h : La salle est déjà réservée de 14 h à 15 h".
    pub fn render(&self, ctx: &RenderContext) -> String {
        let texts: Vec<String> = self.reasons.iter().map(|r| r.render(ctx)).collect();
        let sep = match ctx.lang {
            Lang::Fr => " : ",
            Lang::En => ": ",
        };
        format!(
            "{}{sep}{}",
            format_instant(ctx.lang, ctx.tz, self.start),
            texts.join(" ; ")
        )
    }
}

impl Decision {
    /// The plain-text body of the response sent to the organiser.
    pub fn message(&self, ctx: &RenderContext) -> String {
        let fr = ctx.lang == Lang::Fr;
        let mut lines: Vec<String> = Vec::new();
        let (head, reasons, declined): (&str, &[Reason], &[DeclinedOccurrence]) = match &self.outcome {
            Outcome::Accept => (
                if fr {
                    "Votre demande est acceptée."
                } else {
                    "Your request is accepted."
                },
                &[],
                &[],
            ),
            Outcome::AcceptPartially { declined } => (
                if fr {
                    "Votre demande est acceptée, sauf pour les occurrences suivantes :"
                } else {
                    "Your request is accepted, except for the following occurrences:"
                },
                &[],
                declined,
            ),
            Outcome::Decline { reasons, declined } => (
                if fr {
                    "Votre demande est refusée :"
                } else {
                    "Your request is declined:"
                },
                reasons,
                declined,
            ),
            Outcome::Hold { reasons, declined, .. } => (
                if fr {
                    "Votre demande est en attente d'approbation :"
                } else {
                    "Your request is awaiting approval:"
                },
                reasons,
                declined,
            ),
        };
        lines.push(head.to_owned());
        lines.extend(reasons.iter().map(|r| format!("- {}", r.render(ctx))));
        if !declined.is_empty() && !matches!(self.outcome, Outcome::AcceptPartially { .. }) {
            lines.push(
                if fr {
                    "Occurrences concernées :"
                } else {
                    "Occurrences concerned:"
                }
                .to_owned(),
            );
        }
        lines.extend(
            declined
                .iter()
                .take(LISTED_OCCURRENCES)
                .map(|d| format!("- {}", d.render(ctx))),
        );
        if declined.len() > LISTED_OCCURRENCES {
            let more = declined.len() - LISTED_OCCURRENCES;
            lines.push(if fr {
                format!("- … et {more} autres")
            } else {
                format!("- … and {more} more")
            });
        }
        lines.join("\n")
    }
}

/// Collects verdicts and reasons while the rules run.
struct Run {
    checks: Vec<RuleCheck>,
}

impl Run {
    fn record(&mut self, rule: Rule, scope: Scope, verdict: Verdict) {
        self.checks.push(RuleCheck { rule, scope, verdict });
    }

    fn pass_fail(&mut self, rule: Rule, scope: Scope, failed: bool) {
        self.record(rule, scope, if failed { Verdict::Fail } else { Verdict::Pass });
    }
}

fn invalid(problem: InvalidRequest, checks: Vec<RuleCheck>) -> Decision {
    Decision {
        outcome: Outcome::Decline {
            reasons: vec![Reason::new(ReasonKind::InvalidRequest { problem }, Scope::Global)],
            declined: Vec::new(),
        },
        occurrences: Vec::new(),
        right: None,
        checks,
    }
}

/// Keeps the first reason of each code, in order.
fn first_per_code(reasons: impl IntoIterator<Item = Reason>) -> Vec<Reason> {
    let mut out: Vec<Reason> = Vec::new();
    for r in reasons {
        if !out.iter().any(|o| o.code() == r.code()) {
            out.push(r);
        }
    }
    out
}

/// Decides a request. See the module documentation for how rules combine.
pub fn decide(input: &DecisionInput) -> Decision {
    let p = &input.policy;
    let now = input.now;
    let req = &input.request;
    let res = &input.resource;
    let tz = res.tz;
    let mut run = Run { checks: Vec::new() };

    // Occurrences: one for a single meeting, the expansion up to the horizon
    // for a series.
    let horizon_end = now + Duration::days(i64::from(p.series_horizon_days.value));
    let (mut occs, beyond, is_series) = match &req.when {
        When::Single { start, end } => {
            if end <= start {
                run.record(Rule::Validity, Scope::Global, Verdict::Fail);
                return invalid(InvalidRequest::EndNotAfterStart, run.checks);
            }
            let occ = Occurrence {
                index: 0,
                original_start: *start,
                start: *start,
                end: *end,
                modified: false,
            };
            (vec![occ], false, false)
        }
        When::Series(rec) => match rec.expand_window(now, horizon_end) {
            Ok(exp) => (exp.occurrences, exp.beyond, true),
            Err(_) => {
                run.record(Rule::Validity, Scope::Global, Verdict::Fail);
                return invalid(InvalidRequest::Recurrence, run.checks);
            }
        },
    };
    if occs.iter().any(|o| o.end <= o.start) {
        run.record(Rule::Validity, Scope::Global, Verdict::Fail);
        return invalid(InvalidRequest::EndNotAfterStart, run.checks);
    }
    run.record(Rule::Validity, Scope::Global, Verdict::Pass);
    occs.sort_by_key(|o| (o.start, o.end, o.index));

    let mut request_reasons: Vec<Reason> = Vec::new();
    let mut hold_reasons: Vec<Reason> = Vec::new();

    // Organiser.
    let principal = match &req.organiser {
        Organiser::Known { person, groups } => {
            run.record(Rule::Organiser, Scope::Global, Verdict::Pass);
            Principal {
                person: Some(*person),
                groups: groups.clone(),
            }
        }
        Organiser::External => {
            let r = &p.allow_external_organisers;
            run.pass_fail(Rule::Organiser, r.scope, !r.value);
            if !r.value {
                request_reasons.push(Reason::new(ReasonKind::ExternalNotAllowed, r.scope));
            }
            Principal::default()
        }
        Organiser::Unknown => {
            let r = &p.unknown_organiser;
            match r.value {
                UnknownOrganiser::Decline => {
                    run.record(Rule::Organiser, r.scope, Verdict::Fail);
                    request_reasons.push(Reason::new(ReasonKind::UnknownOrganiser, r.scope));
                }
                UnknownOrganiser::Hold => {
                    run.record(Rule::Organiser, r.scope, Verdict::Pass);
                    hold_reasons.push(Reason::new(ReasonKind::UnknownOrganiser, r.scope));
                }
                UnknownOrganiser::DefaultRight => run.record(Rule::Organiser, r.scope, Verdict::Pass),
            }
            Principal::default()
        }
    };

    // Rights.
    let right = resolve_right(&input.grants, &principal, &res.chain, &p.default_right);
    // An unknown organiser under the Hold policy goes to an approver even
    // when the default right alone would refuse: that is what Hold asks for.
    let held_unknown = req.organiser == Organiser::Unknown && p.unknown_organiser.value == UnknownOrganiser::Hold;
    match right.right {
        Right::Denied => request_reasons.push(Reason::new(ReasonKind::Denied, right.scope)),
        Right::None | Right::View if held_unknown => {}
        Right::None | Right::View => request_reasons.push(Reason::new(ReasonKind::NoRight, right.scope)),
        Right::Request => hold_reasons.push(Reason::new(ReasonKind::NeedsApproval, right.scope)),
        Right::Book | Right::Manage => {}
    }
    run.pass_fail(Rule::Rights, right.scope, !right.right.may_request() && !held_unknown);
    let bypass = right.right == Right::Manage && p.managers_bypass_rules.value;
    let bypass_scope = p.managers_bypass_rules.scope;

    // Request rules.
    if bypass {
        for rule in [
            Rule::RecurringAllowed,
            Rule::MaxOccurrences,
            Rule::BookingWindow,
            Rule::Capacity,
        ] {
            run.record(rule, bypass_scope, Verdict::Bypassed);
        }
    } else {
        let r = &p.allow_recurring;
        if is_series {
            run.pass_fail(Rule::RecurringAllowed, r.scope, !r.value);
            if !r.value {
                request_reasons.push(Reason::new(ReasonKind::RecurringNotAllowed, r.scope));
            }
        } else {
            run.record(Rule::RecurringAllowed, r.scope, Verdict::NotApplicable);
        }

        let r = &p.max_occurrences;
        let requested = u32::try_from(occs.len()).unwrap_or(u32::MAX);
        let too_many = is_series && r.value > 0 && requested > r.value;
        if is_series {
            run.pass_fail(Rule::MaxOccurrences, r.scope, too_many);
        } else {
            run.record(Rule::MaxOccurrences, r.scope, Verdict::NotApplicable);
        }
        if too_many {
            request_reasons.push(Reason::new(
                ReasonKind::MaxOccurrences {
                    max: r.value,
                    requested,
                },
                r.scope,
            ));
        }

        let r = &p.booking_window_days;
        let limit = now + Duration::days(i64::from(r.value));
        let first = occs.first().map(|o| o.start);
        let late = first.filter(|s| *s > limit);
        run.pass_fail(Rule::BookingWindow, r.scope, late.is_some());
        if let Some(start) = late {
            request_reasons.push(Reason::new(ReasonKind::BookingWindow { days: r.value, start }, r.scope));
        }

        let r = &p.enforce_capacity;
        let over = match res.capacity {
            Some(c) if r.value && req.attendees > c => Some(c),
            _ => None,
        };
        run.pass_fail(Rule::Capacity, r.scope, over.is_some());
        if let Some(capacity) = over {
            request_reasons.push(Reason::new(
                ReasonKind::Capacity {
                    capacity,
                    attendees: req.attendees,
                },
                r.scope,
            ));
        }
    }

    // The licence is the law, not a house rule: managers need one too.
    match &input.licence {
        Some(check) => {
            let last_end = occs.iter().map(|o| o.end).max();
            let last_day = last_end.map(|e| (e - Duration::seconds(1)).with_timezone(&tz).date_naive());
            let failed = last_day.and_then(|d| super::vehicles::licence(check, d));
            run.pass_fail(Rule::Licence, Scope::Resource(res.chain.resource), failed.is_some());
            if let Some(kind) = failed {
                request_reasons.push(Reason::new(kind, Scope::Resource(res.chain.resource)));
            }
        }
        None => run.record(Rule::Licence, Scope::Global, Verdict::NotApplicable),
    }

    // The horizon is checked even for managers: occurrences beyond it were
    // never expanded, so they cannot be booked.
    let r = &p.series_horizon_days;
    if !is_series {
        run.record(Rule::Horizon, r.scope, Verdict::NotApplicable);
    } else if beyond && (p.horizon_mode.value == HorizonMode::Decline || occs.is_empty()) {
        // Truncating a series that starts beyond the horizon would accept
        // nothing and call it a success: decline it in either mode.
        run.record(Rule::Horizon, r.scope.max(p.horizon_mode.scope), Verdict::Fail);
        request_reasons.push(Reason::new(ReasonKind::Horizon { days: r.value }, r.scope));
    } else {
        run.record(Rule::Horizon, r.scope.max(p.horizon_mode.scope), Verdict::Pass);
    }

    // Occurrence rules: per occurrence, hard reasons and soft reasons.
    let mut hard: Vec<Vec<Reason>> = vec![Vec::new(); occs.len()];
    let mut soft: Vec<Vec<Reason>> = vec![Vec::new(); occs.len()];
    let mut conflicted = vec![false; occs.len()];

    if bypass {
        for rule in [
            Rule::MinNotice,
            Rule::Duration,
            Rule::OpeningHours,
            Rule::WorkHours,
            Rule::PublicHolidays,
            Rule::Blackouts,
            Rule::Quotas,
        ] {
            run.record(rule, bypass_scope, Verdict::Bypassed);
        }
    } else {
        let mut any = false;
        for (i, o) in occs.iter().enumerate() {
            // Occurrences of a running series that already started are not
            // judged on notice: only the ones still to come are.
            if is_series && o.start <= now {
                continue;
            }
            if let Some(r) = rules::min_notice(p, now, o) {
                any = true;
                if is_series { soft[i].push(r) } else { hard[i].push(r) }
            }
        }
        run.pass_fail(Rule::MinNotice, p.min_notice_minutes.scope, any);

        let mut any = false;
        for (i, o) in occs.iter().enumerate() {
            let rs = rules::duration(p, o);
            any |= !rs.is_empty();
            hard[i].extend(rs);
        }
        let scope = p.min_duration_minutes.scope.max(p.max_duration_minutes.scope);
        run.pass_fail(Rule::Duration, scope, any);

        let mut any = false;
        for (i, o) in occs.iter().enumerate() {
            if let Some(r) = rules::opening_hours(p, tz, o) {
                any = true;
                hard[i].push(r);
            }
        }
        run.pass_fail(Rule::OpeningHours, p.opening_hours.scope, any);

        let mut any = false;
        for (i, o) in occs.iter().enumerate() {
            if let Some(r) = rules::work_hours(p, tz, o) {
                any = true;
                hard[i].push(r);
            }
        }
        run.pass_fail(Rule::WorkHours, p.work_hours_only.scope, any);

        let mut any = false;
        for (i, o) in occs.iter().enumerate() {
            if let Some(r) = rules::public_holiday(p, tz, o) {
                any = true;
                soft[i].push(r);
            }
        }
        run.pass_fail(Rule::PublicHolidays, p.closed_on_public_holidays.scope, any);

        let mut any = false;
        let mut scope = Scope::Global;
        for (i, o) in occs.iter().enumerate() {
            if let Some(r) = rules::blackout(&input.blackouts, &res.chain, o) {
                any = true;
                scope = scope.max(r.scope);
                soft[i].push(r);
            }
        }
        run.pass_fail(Rule::Blackouts, scope, any);

        // Quotas count only for known people: they need a person to count.
        let r = &p.quotas;
        match &req.organiser {
            Organiser::Known { person, groups } if !r.value.is_empty() => {
                let rs = rules::quotas(r, *person, groups, &input.quota_bookings, req.replaces, tz, &occs);
                run.pass_fail(Rule::Quotas, r.scope, !rs.is_empty());
                request_reasons.extend(first_per_code(rs));
            }
            _ => run.record(Rule::Quotas, r.scope, Verdict::NotApplicable),
        }
    }

    // Conflicts, with the occupancy and with earlier occurrences of the same
    // series. Occurrences already declined for another soft reason do not
    // take a slot, so they are not compared with later ones.
    let conflict_scope = Scope::Resource(res.chain.resource);
    let mut any = false;
    // Occurrences are sorted by start and share the same buffers, so an
    // occurrence overlaps an earlier kept one exactly when it overlaps the
    // kept one that ends last.
    let index = rules::OccupancyIndex::new(&input.occupancy, req.replaces);
    let mut last_kept: Option<Occupied> = None;
    for (i, o) in occs.iter().enumerate() {
        let mut rs = rules::conflicts(p, &index, o, conflict_scope);
        let own = rules::requested_range(p, o);
        if let Some(t) = &last_kept
            && rules::overlaps(own, t.occupied_range())
        {
            rs.push(Reason::new(
                ReasonKind::Conflict {
                    start: t.start,
                    end: t.end,
                    organiser: None,
                },
                conflict_scope,
            ));
        }
        if rs.is_empty() && soft[i].is_empty() && last_kept.as_ref().is_none_or(|t| o.end > t.end) {
            last_kept = Some(Occupied {
                booking: Uuid::nil(),
                start: o.start,
                end: o.end,
                buffer_before: rules::minutes(p.buffer_before_minutes.value),
                buffer_after: rules::minutes(p.buffer_after_minutes.value),
                organiser_name: None,
            });
        }
        if !rs.is_empty() {
            any = true;
            conflicted[i] = true;
            soft[i].extend(rs);
        }
    }
    run.pass_fail(Rule::Conflicts, conflict_scope, any);

    // Combine.
    let declined: Vec<DeclinedOccurrence> = occs
        .iter()
        .enumerate()
        .filter(|(i, _)| !hard[*i].is_empty() || !soft[*i].is_empty())
        .map(|(i, o)| DeclinedOccurrence {
            start: o.start,
            end: o.end,
            original_start: o.original_start,
            reasons: hard[i].iter().chain(soft[i].iter()).cloned().collect(),
        })
        .collect();
    let hard_reasons = first_per_code(hard.iter().flatten().cloned());
    let decline = |mut reasons: Vec<Reason>, declined: Vec<DeclinedOccurrence>, run: Run| Decision {
        outcome: {
            reasons.dedup();
            Outcome::Decline {
                reasons,
                declined: if is_series { declined } else { Vec::new() },
            }
        },
        occurrences: Vec::new(),
        right: Some(right),
        checks: run.checks,
    };

    if !request_reasons.is_empty() || !hard_reasons.is_empty() {
        let mut reasons = request_reasons;
        reasons.extend(hard_reasons);
        if !is_series {
            reasons.extend(soft.iter().flatten().cloned());
        }
        return decline(reasons, declined, run);
    }
    if !is_series {
        let reasons: Vec<Reason> = soft.iter().flatten().cloned().collect();
        if !reasons.is_empty() {
            return decline(reasons, declined, run);
        }
    } else {
        let total = u32::try_from(occs.len()).unwrap_or(u32::MAX);
        let conflicts = u32::try_from(conflicted.iter().filter(|c| **c).count()).unwrap_or(u32::MAX);
        let max_count = p.conflict_max_count.value;
        let max_percent = p.conflict_max_percent.value;
        let within = conflicts <= max_count && u64::from(conflicts) * 100 <= u64::from(max_percent) * u64::from(total);
        if conflicts > 0 && !within {
            let scope = p.conflict_max_count.scope.max(p.conflict_max_percent.scope);
            let reason = Reason::new(
                ReasonKind::SeriesConflicts {
                    conflicts,
                    occurrences: total,
                    max_count,
                    max_percent,
                },
                scope,
            );
            return decline(vec![reason], declined, run);
        }
        if !occs.is_empty() && declined.len() == occs.len() {
            let reasons = first_per_code(soft.iter().flatten().cloned());
            return decline(reasons, declined, run);
        }
    }

    let accepted: Vec<Occurrence> = occs
        .iter()
        .enumerate()
        .filter(|(i, _)| hard[*i].is_empty() && soft[*i].is_empty())
        .map(|(_, o)| *o)
        .collect();
    let outcome = if !hold_reasons.is_empty() {
        Outcome::Hold {
            reasons: hold_reasons,
            circuit: p.approval_circuit.value,
            declined,
        }
    } else if declined.is_empty() {
        Outcome::Accept
    } else {
        Outcome::AcceptPartially { declined }
    };
    Decision {
        outcome,
        occurrences: accepted,
        right: Some(right),
        checks: run.checks,
    }
}
