//! LDAP directories (one Active Directory, or one OU of it, per organisation):
//! people, groups and nested membership synced into the store; organiser
//! matching; live group search; login by bind.
//!
//! Decisions never ask LDAP: they read what the last sync stored, so a
//! directory that is down slows nothing and changes no decision; its status
//! says "stale" until a sync succeeds again. Only login and the admin's group
//! search talk to the directory live.

pub mod entry;
mod error;
pub mod filter;
pub mod guid;
mod ldap;
pub mod login;
pub mod membership;
pub mod organiser;
pub mod search;
pub mod settings;
pub mod sync;
pub mod worker;

use chrono::{DateTime, Utc};

pub use error::DirectoryError;
pub use login::{LoginName, LoginUser, login, parse_login_name};
pub use organiser::{OrganiserAddress, parse_organiser};
pub use search::{GroupHit, search_groups};
pub use settings::{AttributeNames, DirectorySettings, Secret};
pub use sync::{FullReason, SyncProgress, SyncReport, sync_once, sync_once_with_clock};

use crate::store::Store;
use crate::store::directory::PersonRef;

/// Who an organiser address designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Organiser {
    Known(Box<PersonRef>),
    /// Not a person of any directory (an external sender, a typo, a deleted
    /// account): the rules for external organisers apply.
    Unknown,
}

/// Resolves an organiser address from a meeting request (SMTP alias or
/// legacy Exchange DN) to one person, from synced data only.
pub async fn resolve_organiser(store: &Store, raw: &str) -> Result<Organiser, DirectoryError> {
    let Some(address) = parse_organiser(raw) else {
        return Ok(Organiser::Unknown);
    };
    Ok(match store.resolve_organiser(&address).await? {
        Some(person) => Organiser::Known(Box::new(person)),
        None => Organiser::Unknown,
    })
}

/// The health of one configured directory, for the web site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryStatus {
    pub name: String,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_full_sync_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub people_active: i64,
    pub people_disabled: i64,
    pub people_deleted: i64,
    pub groups: i64,
    /// True when decisions run on data older than `stale_after`, or when the
    /// last attempt failed: the admin should look.
    pub stale: bool,
    /// People whose licence attribute could not be read (their known
    /// licence stays), and the first few: "name : « value » : why".
    pub licence_problems: i64,
    pub licence_problem_examples: Vec<String>,
}

impl DirectoryStatus {
    /// The last error and the unreadable licences, in one French line for
    /// the status page; empty when all is well.
    pub fn problems(&self) -> String {
        let mut parts: Vec<String> = self.last_error.iter().cloned().collect();
        if self.licence_problems > 0 {
            parts.push(format!(
                "{} permis illisible(s) dans l'annuaire : {}",
                self.licence_problems,
                self.licence_problem_examples.join(" ; ")
            ));
        }
        parts.join(" — ")
    }
}

/// Whether a directory's data is stale at `now`.
pub fn is_stale(
    last_sync_at: Option<DateTime<Utc>>,
    last_error_at: Option<DateTime<Utc>>,
    stale_after: std::time::Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(synced) = last_sync_at else {
        return true;
    };
    let limit = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
    now.signed_duration_since(synced) > limit || last_error_at.is_some_and(|e| e > synced)
}

/// The status of each configured directory, in configuration order.
pub async fn directory_status(
    store: &Store,
    directories: &[DirectorySettings],
    now: DateTime<Utc>,
) -> Result<Vec<DirectoryStatus>, DirectoryError> {
    let counts = store.directory_counts().await?;
    let mut examples = std::collections::HashMap::new();
    for c in counts.iter().filter(|c| c.licence_problems > 0) {
        let found = store.licence_problems(c.directory.id, 5).await?;
        let lines: Vec<String> = found.into_iter().map(|(who, why)| format!("{who} : {why}")).collect();
        examples.insert(c.directory.id, lines);
    }
    Ok(directories
        .iter()
        .map(|s| match counts.iter().find(|c| c.directory.name == s.name) {
            Some(c) => DirectoryStatus {
                name: s.name.clone(),
                last_sync_at: c.directory.last_sync_at,
                last_full_sync_at: c.directory.last_full_sync_at,
                last_error: c.directory.last_error.clone(),
                last_error_at: c.directory.last_error_at,
                people_active: c.people_active,
                people_disabled: c.people_disabled,
                people_deleted: c.people_deleted,
                groups: c.groups,
                stale: is_stale(c.directory.last_sync_at, c.directory.last_error_at, s.stale_after, now),
                licence_problems: c.licence_problems,
                licence_problem_examples: examples.remove(&c.directory.id).unwrap_or_default(),
            },
            None => DirectoryStatus {
                name: s.name.clone(),
                last_sync_at: None,
                last_full_sync_at: None,
                last_error: None,
                last_error_at: None,
                people_active: 0,
                people_disabled: 0,
                people_deleted: 0,
                groups: 0,
                stale: true,
                licence_problems: 0,
                licence_problem_examples: Vec::new(),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::time::Duration;

    #[test]
    fn staleness() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).single().expect("valid");
        let h = chrono::Duration::hours;
        let two_hours = Duration::from_secs(7200);
        assert!(is_stale(None, None, two_hours, t0));
        assert!(!is_stale(Some(t0), None, two_hours, t0 + h(1)));
        assert!(is_stale(Some(t0), None, two_hours, t0 + h(3)));
        assert!(is_stale(Some(t0), Some(t0 + h(1)), two_hours, t0 + h(1)));
        assert!(!is_stale(Some(t0 + h(1)), Some(t0), two_hours, t0 + h(1)));
    }
}
