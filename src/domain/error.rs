//! The one error type of the domain.
//!
//! Error policy: the domain returns `DomainError` only for inputs it cannot
//! interpret at all (a malformed RRULE, an impossible recurrence pattern).
//! Requests that are well formed but break a rule are not errors: they get a
//! `Decision` with reasons, because the organiser must always get an answer.

use thiserror::Error;

/// Everything that can go wrong in pure booking logic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A recurrence pattern that cannot produce occurrences as given.
    #[error("invalid recurrence: {0}")]
    InvalidRecurrence(&'static str),
    /// An RRULE string that could not be parsed into a supported recurrence.
    #[error("cannot parse RRULE part `{part}`: {problem}")]
    RruleParse {
        /// The offending `NAME=VALUE` part (or the whole rule).
        part: String,
        /// Why it was rejected.
        problem: &'static str,
    },
    /// A policy value that serde accepts but that cannot be applied.
    #[error("invalid policy: {0}")]
    InvalidPolicy(&'static str),
    /// A validation circuit that could never be completed.
    #[error("invalid circuit: {0}")]
    InvalidCircuit(&'static str),
    /// A date that does not exist (31 February, a year out of range).
    #[error("invalid date: {0}")]
    InvalidDate(&'static str),
}
