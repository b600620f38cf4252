//! Pure booking logic: policies, rights, recurrence, decisions, circuits.
//!
//! Invariant: this module imports no I/O crate (no sqlx, quick-xml, ldap3,
//! reqwest, axum, tokio). It takes `now`, the request, the effective policy and
//! the existing occupancy, and returns a decision.
