//! Validation circuits: choosing one for a held request and moving it on.
//!
//! A circuit is a list of steps; each step has approvers (people, already
//! resolved from groups and roles by the caller), a quorum (one or all), an
//! optional reminder, deadline and backup approver. [`choose_circuit`] picks
//! the circuit whose conditions all match the request, highest priority
//! first. [`advance`] applies one event (an approval, a refusal, or the
//! passing of time) to a circuit's [`Progress`] and says what must happen
//! (notify the next approvers, remind, escalate, finish). It is pure: the
//! caller stores the progress and carries out the effects.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::decision::{DecisionInput, When};
use super::error::DomainError;
use super::policy::ScopeChain;
use super::reason::ResourceKind;
use super::recurrence::{Occurrence, duration_seconds};
use super::rules;

/// A condition for choosing a circuit (stored as JSON in
/// `circuit_versions.conditions`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Organisation {
        id: Uuid,
    },
    Site {
        id: Uuid,
    },
    ResourceType {
        id: Uuid,
    },
    Resource {
        id: Uuid,
    },
    ResourceKind {
        resource_kind: ResourceKind,
    },
    /// An occurrence lasts longer than this.
    LongerThan {
        minutes: u32,
    },
    /// An occurrence falls outside the resource's working hours.
    OutsideWorkHours,
    Recurring,
    MoreAttendeesThan {
        count: u32,
    },
    RequesterInGroup {
        group: Uuid,
    },
    RequesterNotInGroup {
        group: Uuid,
    },
    /// The request has more occurrences than this (a long series).
    MoreOccurrencesThan {
        count: u32,
    },
    /// A vehicle trip whose destination lies outside the territory.
    OutsideTerritory,
}

/// What conditions are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitContext {
    pub chain: ScopeChain,
    pub kind: ResourceKind,
    pub groups: Vec<Uuid>,
    pub longest_minutes: i64,
    pub outside_work_hours: bool,
    pub recurring: bool,
    pub attendees: u32,
    /// Occurrences the decision holds.
    pub occurrences: u32,
    /// Set by the caller for a vehicle trip declared outside the territory.
    pub outside_territory: bool,
}

impl CircuitContext {
    /// The context of a decided request, from its input and the occurrences
    /// the decision holds.
    pub fn of(input: &DecisionInput, occurrences: &[Occurrence]) -> Self {
        let p = &input.policy;
        let groups = match &input.request.organiser {
            super::decision::Organiser::Known { groups, .. } => groups.clone(),
            _ => Vec::new(),
        };
        Self {
            chain: input.resource.chain.clone(),
            kind: input.resource.kind,
            groups,
            longest_minutes: occurrences
                .iter()
                .map(|o| (o.end - o.start).num_minutes())
                .max()
                .unwrap_or(0),
            outside_work_hours: occurrences
                .iter()
                .any(|o| !rules::fits_hours(&p.work_hours.value, input.resource.tz, o)),
            recurring: matches!(input.request.when, When::Series(_)),
            attendees: input.request.attendees,
            occurrences: u32::try_from(occurrences.len()).unwrap_or(u32::MAX),
            outside_territory: false,
        }
    }
}

impl Condition {
    pub fn matches(&self, ctx: &CircuitContext) -> bool {
        match self {
            Condition::Organisation { id } => ctx.chain.organisation == Some(*id),
            Condition::Site { id } => ctx.chain.site == Some(*id),
            Condition::ResourceType { id } => ctx.chain.resource_type == Some(*id),
            Condition::Resource { id } => ctx.chain.resource == *id,
            Condition::ResourceKind { resource_kind } => ctx.kind == *resource_kind,
            Condition::LongerThan { minutes } => ctx.longest_minutes > i64::from(*minutes),
            Condition::OutsideWorkHours => ctx.outside_work_hours,
            Condition::Recurring => ctx.recurring,
            Condition::MoreAttendeesThan { count } => ctx.attendees > *count,
            Condition::RequesterInGroup { group } => ctx.groups.contains(group),
            Condition::RequesterNotInGroup { group } => !ctx.groups.contains(group),
            Condition::MoreOccurrencesThan { count } => ctx.occurrences > *count,
            Condition::OutsideTerritory => ctx.outside_territory,
        }
    }
}

/// A circuit version that may be chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitChoice {
    pub circuit_version: Uuid,
    pub priority: i32,
    /// All must match; an empty list matches everything.
    pub conditions: Vec<Condition>,
}

/// The matching circuit of highest priority (ties: smallest id, so the
/// choice does not depend on the order the store lists them in).
pub fn choose_circuit(candidates: &[CircuitChoice], ctx: &CircuitContext) -> Option<Uuid> {
    candidates
        .iter()
        .filter(|c| c.conditions.iter().all(|cond| cond.matches(ctx)))
        .max_by_key(|c| (c.priority, std::cmp::Reverse(c.circuit_version)))
        .map(|c| c.circuit_version)
}

/// How many approvers of a step must approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quorum {
    One,
    All,
}

/// What happens when the circuit's deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalOutcome {
    Decline,
    Accept,
}

/// One step, with its approvers resolved to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub approvers: Vec<Uuid>,
    pub quorum: Quorum,
    /// Sent once to those who have not answered, this long after the step began.
    pub reminder: Option<Delay>,
    /// After this long, the step escalates to the backup, or the circuit
    /// ends with its final outcome when there is none.
    pub deadline: Option<Delay>,
    pub backup: Option<Uuid>,
}

/// A delay, serialised in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Delay(#[serde(with = "duration_seconds")] pub Duration);

/// A circuit version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Circuit {
    pub steps: Vec<Step>,
    /// The whole circuit's deadline, from its start.
    pub deadline: Option<Delay>,
    pub final_outcome: FinalOutcome,
}

/// Where a request is in its circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub step: usize,
    pub circuit_started: DateTime<Utc>,
    pub step_started: DateTime<Utc>,
    pub approved_by: BTreeSet<Uuid>,
    pub reminded: bool,
    pub escalated: bool,
    /// Set once the circuit has ended; later events are ignored.
    pub finished: bool,
}

/// Something that happened to a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "person", rename_all = "snake_case")]
pub enum Event {
    Approve(Uuid),
    Refuse(Uuid),
    /// The person is away (an automatic reply): the step goes to its backup.
    Absent(Uuid),
    /// Time passed: check reminders and deadlines at `now`.
    Tick,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Ask these people to approve step `step`.
    AskApprovers {
        step: usize,
        approvers: Vec<Uuid>,
    },
    Remind {
        step: usize,
        approvers: Vec<Uuid>,
    },
    EscalateTo {
        step: usize,
        backup: Uuid,
    },
    /// Every step approved: accept the held slots.
    Approved,
    Refused {
        by: Uuid,
    },
    /// The deadline passed with nobody deciding.
    Expired {
        outcome: FinalOutcome,
    },
    /// The event changed nothing (not an approver, already answered,
    /// circuit finished, nothing due yet).
    Nothing,
}

impl Circuit {
    /// Rejects circuits that could never finish by approval.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.steps.is_empty() {
            return Err(DomainError::InvalidCircuit("a circuit needs at least one step"));
        }
        if self.steps.iter().any(|s| s.approvers.is_empty() && s.backup.is_none()) {
            return Err(DomainError::InvalidCircuit("a step has neither approvers nor backup"));
        }
        Ok(())
    }

    /// Starts the circuit at `now`.
    pub fn start(&self, now: DateTime<Utc>) -> Result<(Progress, Effect), DomainError> {
        self.validate()?;
        let progress = Progress {
            step: 0,
            circuit_started: now,
            step_started: now,
            approved_by: BTreeSet::new(),
            reminded: false,
            escalated: false,
            finished: false,
        };
        let effect = self.ask(0);
        Ok((progress, effect))
    }

    fn ask(&self, step: usize) -> Effect {
        match self.steps.get(step) {
            Some(s) if s.approvers.is_empty() => match s.backup {
                Some(backup) => Effect::EscalateTo { step, backup },
                None => Effect::Nothing,
            },
            Some(s) => Effect::AskApprovers {
                step,
                approvers: s.approvers.clone(),
            },
            None => Effect::Approved,
        }
    }
}

/// The people whose answer counts at the current step.
pub fn deciders(step: &Step, progress: &Progress) -> Vec<Uuid> {
    let mut out = step.approvers.clone();
    if let Some(b) = step.backup
        && (progress.escalated || step.approvers.is_empty())
        && !out.contains(&b)
    {
        out.push(b);
    }
    out
}

/// Applies one event at `now`.
pub fn advance(circuit: &Circuit, progress: &mut Progress, event: Event, now: DateTime<Utc>) -> Effect {
    if progress.finished {
        return Effect::Nothing;
    }
    let Some(step) = circuit.steps.get(progress.step) else {
        progress.finished = true;
        return Effect::Approved;
    };
    let finish = |progress: &mut Progress, effect: Effect| {
        progress.finished = true;
        effect
    };
    match event {
        Event::Refuse(who) => {
            if deciders(step, progress).contains(&who) {
                finish(progress, Effect::Refused { by: who })
            } else {
                Effect::Nothing
            }
        }
        Event::Approve(who) => {
            if !deciders(step, progress).contains(&who) || !progress.approved_by.insert(who) {
                return Effect::Nothing;
            }
            // The backup decides alone once the step has escalated to them.
            let by_backup = step.backup == Some(who) && !step.approvers.contains(&who);
            let done = by_backup
                || match step.quorum {
                    Quorum::One => true,
                    Quorum::All => step.approvers.iter().all(|a| progress.approved_by.contains(a)),
                };
            if !done {
                return Effect::Nothing;
            }
            progress.step += 1;
            progress.step_started = now;
            progress.approved_by.clear();
            progress.reminded = false;
            progress.escalated = false;
            match circuit.ask(progress.step) {
                Effect::Approved => finish(progress, Effect::Approved),
                Effect::EscalateTo { step, backup } => {
                    progress.escalated = true;
                    Effect::EscalateTo { step, backup }
                }
                other => other,
            }
        }
        Event::Absent(who) => {
            if !step.approvers.contains(&who) || progress.escalated {
                return Effect::Nothing;
            }
            match step.backup {
                Some(backup) if backup != who => {
                    progress.escalated = true;
                    progress.step_started = now;
                    progress.reminded = false;
                    Effect::EscalateTo {
                        step: progress.step,
                        backup,
                    }
                }
                _ => Effect::Nothing,
            }
        }
        Event::Tick => {
            if let Some(Delay(d)) = circuit.deadline
                && now >= progress.circuit_started + d
            {
                return finish(
                    progress,
                    Effect::Expired {
                        outcome: circuit.final_outcome,
                    },
                );
            }
            if let Some(Delay(d)) = step.deadline
                && now >= progress.step_started + d
            {
                return match step.backup {
                    Some(backup) if !progress.escalated => {
                        progress.escalated = true;
                        // The backup gets a full step deadline of their own.
                        progress.step_started = now;
                        progress.reminded = false;
                        Effect::EscalateTo {
                            step: progress.step,
                            backup,
                        }
                    }
                    _ => finish(
                        progress,
                        Effect::Expired {
                            outcome: circuit.final_outcome,
                        },
                    ),
                };
            }
            if let Some(Delay(d)) = step.reminder
                && !progress.reminded
                && now >= progress.step_started + d
            {
                progress.reminded = true;
                let pending: Vec<Uuid> = deciders(step, progress)
                    .into_iter()
                    .filter(|a| !progress.approved_by.contains(a))
                    .collect();
                return Effect::Remind {
                    step: progress.step,
                    approvers: pending,
                };
            }
            Effect::Nothing
        }
    }
}

/// When the circuit next needs a [`Event::Tick`]: the earliest of the
/// circuit's deadline, the step's deadline and its reminder not yet sent.
/// `None` once finished or when nothing is timed.
pub fn next_due(circuit: &Circuit, progress: &Progress) -> Option<DateTime<Utc>> {
    if progress.finished {
        return None;
    }
    let step = circuit.steps.get(progress.step)?;
    let mut due: Vec<DateTime<Utc>> = Vec::new();
    if let Some(Delay(d)) = circuit.deadline {
        due.push(progress.circuit_started + d);
    }
    if let Some(Delay(d)) = step.deadline {
        due.push(progress.step_started + d);
    }
    if let Some(Delay(d)) = step.reminder
        && !progress.reminded
    {
        due.push(progress.step_started + d);
    }
    due.into_iter().min()
}

#[cfg(test)]
mod more_tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).single().expect("valid")
    }

    const A: Uuid = Uuid::from_u128(1);
    const BACKUP: Uuid = Uuid::from_u128(9);

    fn circuit() -> Circuit {
        Circuit {
            steps: vec![Step {
                approvers: vec![A],
                quorum: Quorum::One,
                reminder: Some(Delay(Duration::hours(4))),
                deadline: Some(Delay(Duration::hours(24))),
                backup: Some(BACKUP),
            }],
            deadline: Some(Delay(Duration::hours(72))),
            final_outcome: FinalOutcome::Decline,
        }
    }

    #[test]
    fn an_absent_approver_hands_the_step_to_the_backup_who_decides_alone() {
        let c = circuit();
        let (mut p, _) = c.start(t0()).expect("starts");
        assert_eq!(
            advance(&c, &mut p, Event::Absent(A), t0()),
            Effect::EscalateTo {
                step: 0,
                backup: BACKUP
            }
        );
        // A second automatic reply changes nothing.
        assert_eq!(advance(&c, &mut p, Event::Absent(A), t0()), Effect::Nothing);
        assert_eq!(advance(&c, &mut p, Event::Approve(BACKUP), t0()), Effect::Approved);
    }

    #[test]
    fn the_next_due_time_is_the_reminder_then_the_step_deadline() {
        let c = circuit();
        let (mut p, _) = c.start(t0()).expect("starts");
        assert_eq!(next_due(&c, &p), Some(t0() + Duration::hours(4)));
        advance(&c, &mut p, Event::Tick, t0() + Duration::hours(4));
        assert_eq!(next_due(&c, &p), Some(t0() + Duration::hours(24)));
        advance(&c, &mut p, Event::Refuse(A), t0() + Duration::hours(5));
        assert_eq!(next_due(&c, &p), None);
    }

    #[test]
    fn long_series_and_trips_outside_the_territory_are_conditions() {
        let ctx = CircuitContext {
            chain: ScopeChain {
                organisation: None,
                site: None,
                resource_type: None,
                resource: Uuid::nil(),
            },
            kind: ResourceKind::Vehicle,
            groups: vec![],
            longest_minutes: 60,
            outside_work_hours: false,
            recurring: true,
            attendees: 1,
            occurrences: 12,
            outside_territory: true,
        };
        assert!(Condition::MoreOccurrencesThan { count: 10 }.matches(&ctx));
        assert!(!Condition::MoreOccurrencesThan { count: 12 }.matches(&ctx));
        assert!(Condition::OutsideTerritory.matches(&ctx));
    }
}
