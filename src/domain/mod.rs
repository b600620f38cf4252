//! Pure booking logic: policies, rights, recurrence, decisions, circuits.
//!
//! Invariant: this module imports no I/O crate (no sqlx, quick-xml, ldap3,
//! reqwest, axum, tokio) and never reads the clock. It takes `now`, the
//! request, the effective policy and the existing occupancy, and returns a
//! decision.
//!
//! Map: [`policy`] owns scopes and inheritance, [`holidays`] the French
//! public holidays and blackouts, [`rights`] turns grants into a right,
//! [`recurrence`] expands EWS series and reads RRULEs, [`reason`] names and
//! renders every reason in French and English, [`rules`] holds the checks one
//! by one, [`decision`] runs them and combines the verdicts, and [`circuit`]
//! chooses and advances the validation circuit of a held request.

pub mod circuit;
pub mod decision;
pub mod error;
pub mod holidays;
pub mod policy;
pub mod reason;
pub mod recurrence;
pub mod rights;
pub mod rules;
pub mod territory;
pub mod vehicles;

pub use decision::{BookingRequest, Decision, DecisionInput, Organiser, Outcome, ResourceInfo, When, decide};
pub use error::DomainError;
pub use policy::{EffectivePolicy, Policy, Scope, ScopeChain};
pub use reason::{Lang, Reason, ReasonKind, RenderContext};

#[cfg(test)]
mod tests;
