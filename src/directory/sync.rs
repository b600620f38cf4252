//! Reading a directory into the store: full or incremental (by uSNChanged),
//! with progress reports for the `resa directory sync --once` command.
//!
//! Incremental sync reads the people and groups whose uSNChanged passed the
//! stored watermark. A membership change is a change of the GROUP (its
//! `member` attribute), so it is seen there. What incremental sync cannot read
//! is what no longer exists: deleted objects are found by listing all group
//! and people GUIDs (cheap) at each sync; the periodic full sync re-reads
//! everything, in case an incremental change was missed.
//!
//! Everything is read from LDAP first, then applied in one transaction, so a
//! directory that fails halfway leaves the last synced data untouched and
//! decisions go on with it. A failure is recorded on the directory's row.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::DirectoryError;
use super::entry::{
    GroupRecord, PersonRecord, group_from_entry, licence_values, object_guid_of, person_from_entry, ranged_values,
};
use super::filter::changed_since;
use super::ldap::Session;
use super::settings::{DirectorySettings, MASS_DELETION_FRACTION, MASS_DELETION_MIN};
use crate::clock::{Clock, SystemClock};
use crate::store::Store;
use crate::store::directory::{AppliedSync, DirectoryLicence, DirectoryRow, LicencesApplied, SyncBatch};

/// What a sync is doing, for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProgress {
    /// Connected and bound; `full` may differ from what was asked (see
    /// [`FullReason`]).
    Connected {
        full: bool,
        highest_usn: Option<i64>,
    },
    FullSyncForced(FullReason),
    /// Running count of people read, after each page.
    PeopleRead(usize),
    GroupsRead(usize),
    /// An entry that could not be used (no GUID, no name); the sync goes on.
    Skipped {
        dn: String,
        reason: &'static str,
    },
    Applied(AppliedSync),
    /// Future bookings whose organiser is disabled or deleted.
    InactiveOrganiserBookings(usize),
    /// Driving licences read from the licence attribute.
    Licences(LicencesApplied),
}

impl std::fmt::Display for SyncProgress {
    /// One line of `resa directory sync --once` output, in French like the
    /// rest of the operator interface.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncProgress::Connected { full, highest_usn } => {
                let kind = if *full { "complète" } else { "incrémentale" };
                match highest_usn {
                    Some(usn) => write!(f, "connecté ; synchronisation {kind} (USN du serveur {usn})"),
                    None => write!(f, "connecté ; synchronisation {kind}"),
                }
            }
            SyncProgress::FullSyncForced(reason) => {
                let why = match reason {
                    FullReason::FirstSync => "première synchronisation",
                    FullReason::Periodic => "synchronisation complète périodique due",
                    FullReason::ServerChanged => "un autre contrôleur de domaine répond",
                    FullReason::NoUsn => "le serveur ne publie pas de highestCommittedUSN",
                };
                write!(f, "synchronisation complète : {why}")
            }
            SyncProgress::PeopleRead(n) => write!(f, "personnes lues : {n}"),
            SyncProgress::GroupsRead(n) => write!(f, "groupes lus : {n}"),
            SyncProgress::Skipped { dn, reason } => write!(f, "entrée ignorée ({reason}) : {dn}"),
            SyncProgress::Applied(a) => {
                write!(
                    f,
                    "enregistré : {} personnes, {} groupes, {} personnes supprimées, {} groupes supprimés",
                    a.people_written, a.groups_written, a.people_deleted, a.groups_deleted
                )?;
                match a.transitive_memberships {
                    0 => write!(f, " ; appartenances inchangées"),
                    n => write!(f, " ; {n} appartenances (imbrication résolue)"),
                }
            }
            SyncProgress::Licences(l) => {
                write!(
                    f,
                    "permis : {} enregistrés, {} effacés, {} saisis par un gestionnaire conservés",
                    l.written, l.cleared, l.kept_manager
                )?;
                if l.malformed > 0 {
                    write!(
                        f,
                        " ; attention : {} valeur(s) illisible(s), voir l'état des annuaires",
                        l.malformed
                    )?;
                }
                Ok(())
            }
            SyncProgress::InactiveOrganiserBookings(n) => write!(
                f,
                "attention : {n} réservation(s) à venir d'agents désactivés ou supprimés"
            ),
        }
    }
}

/// Why an incremental sync became a full one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullReason {
    /// Never synced: there is no watermark.
    FirstSync,
    /// The periodic full sync is due (only a full sync notices deletions).
    Periodic,
    /// Another DC answered: USNs are per DC, the watermark means nothing there.
    ServerChanged,
    /// The server publishes no highestCommittedUSN (not an AD).
    NoUsn,
}

/// The outcome of one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub directory: String,
    pub full: bool,
    pub people_read: usize,
    pub groups_read: usize,
    pub skipped: usize,
    pub applied: AppliedSync,
    pub highest_usn: Option<i64>,
    /// Future bookings whose organiser is disabled or deleted (all
    /// directories), listed by `Store::future_bookings_of_inactive_people`.
    pub inactive_organiser_bookings: usize,
}

/// Syncs one directory once. With `full = false` it reads only what changed
/// since the last sync, unless a full sync is due or needed.
pub async fn sync_once(
    store: &Store,
    settings: &DirectorySettings,
    full: bool,
    progress: impl FnMut(SyncProgress),
) -> Result<SyncReport, DirectoryError> {
    sync_once_with_clock(store, settings, full, &SystemClock, progress).await
}

/// [`sync_once`] with the clock given, for tests and the runtime.
pub async fn sync_once_with_clock(
    store: &Store,
    settings: &DirectorySettings,
    full: bool,
    clock: &dyn Clock,
    mut progress: impl FnMut(SyncProgress),
) -> Result<SyncReport, DirectoryError> {
    let row = store
        .ensure_directory_of(&settings.name, settings.organisation.as_deref())
        .await?;
    match read_and_apply(store, settings, &row, full, clock, &mut progress).await {
        Ok(report) => {
            tracing::info!(
                directory.name = %settings.name,
                sync.full = report.full,
                sync.people = report.people_read,
                sync.groups = report.groups_read,
                sync.deleted = report.applied.people_deleted,
                "directory synced"
            );
            Ok(report)
        }
        Err(e) => {
            tracing::warn!(directory.name = %settings.name, error = %e, "directory sync failed; keeping the last synced data");
            if let Err(record) = store.record_directory_error(row.id, &e.to_string(), clock.now()).await {
                tracing::warn!(directory.name = %settings.name, error = %record, "could not record the sync error");
            }
            Err(e)
        }
    }
}

/// Whether a sync asked as incremental must be full, before asking the server.
pub fn full_sync_reason(row: &DirectoryRow, settings: &DirectorySettings, now: DateTime<Utc>) -> Option<FullReason> {
    if row.highest_usn.is_none() {
        return Some(FullReason::FirstSync);
    }
    let interval = chrono::Duration::from_std(settings.full_sync_interval).unwrap_or(chrono::Duration::MAX);
    match row.last_full_sync_at {
        None => Some(FullReason::FirstSync),
        Some(at) if now.signed_duration_since(at) >= interval => Some(FullReason::Periodic),
        Some(_) => None,
    }
}

async fn read_and_apply(
    store: &Store,
    settings: &DirectorySettings,
    row: &DirectoryRow,
    asked_full: bool,
    clock: &dyn Clock,
    progress: &mut impl FnMut(SyncProgress),
) -> Result<SyncReport, DirectoryError> {
    let mut full = asked_full;
    if !full && let Some(reason) = full_sync_reason(row, settings, clock.now()) {
        progress(SyncProgress::FullSyncForced(reason));
        full = true;
    }
    let mut session = Session::service(settings).await?;
    // The watermark is read BEFORE the searches: a change made while they run
    // is then read again next time rather than missed.
    let root = session.root_dse().await?;
    if !full {
        let reason = match (&root.highest_committed_usn, &root.server_id) {
            (None, _) => Some(FullReason::NoUsn),
            (Some(_), server) if server.as_deref() != row.usn_server.as_deref() => Some(FullReason::ServerChanged),
            _ => None,
        };
        if let Some(reason) = reason {
            progress(SyncProgress::FullSyncForced(reason));
            full = true;
        }
    }
    progress(SyncProgress::Connected {
        full,
        highest_usn: root.highest_committed_usn,
    });
    let since = if full { None } else { row.highest_usn };
    let names = &settings.attributes;
    let mut skipped = 0;

    let user_filter = match since {
        Some(usn) => changed_since(&settings.user_filter, &names.usn_changed, usn),
        None => settings.user_filter.clone(),
    };
    let mut user_attrs = vec![
        names.object_guid.as_str(),
        &names.account_name,
        &names.user_principal_name,
        &names.mail,
        &names.proxy_addresses,
        &names.legacy_exchange_dn,
        &names.display_name,
        "cn",
        &names.department,
        &names.manager,
        &names.user_account_control,
        &names.usn_changed,
    ];
    if let Some(licence) = &names.licence_classes {
        user_attrs.push(licence);
    }
    let entries = session
        .paged_search(
            &settings.user_base_dn,
            &user_filter,
            &user_attrs,
            settings.page_size,
            |n| progress(SyncProgress::PeopleRead(n)),
        )
        .await?;
    let mut people: Vec<PersonRecord> = Vec::with_capacity(entries.len());
    let mut licences: Vec<(Uuid, DirectoryLicence)> = Vec::new();
    for e in &entries {
        match person_from_entry(e, names) {
            Ok(p) => {
                if let Some(attr) = &names.licence_classes {
                    let licence = match settings.licence_format.join(&licence_values(e, attr)) {
                        None => DirectoryLicence::Absent,
                        Some(value) => match settings.licence_format.read(&value) {
                            Ok(l) => DirectoryLicence::Valid(l),
                            Err(why) => {
                                tracing::warn!(
                                    directory.name = %settings.name, ldap.dn = %e.dn, value = %value, reason = %why,
                                    "unreadable driving licence attribute; the known licence stays"
                                );
                                DirectoryLicence::Malformed {
                                    value,
                                    reason: why.to_string(),
                                }
                            }
                        },
                    };
                    licences.push((p.object_guid, licence));
                }
                people.push(p)
            }
            Err(s) => {
                skipped += 1;
                tracing::warn!(directory.name = %settings.name, ldap.dn = %s.dn, reason = s.reason, "entry skipped");
                progress(SyncProgress::Skipped {
                    dn: s.dn,
                    reason: s.reason,
                });
            }
        }
    }

    let group_filter = match since {
        Some(usn) => changed_since(&settings.group_filter, &names.usn_changed, usn),
        None => settings.group_filter.clone(),
    };
    let group_attrs = [
        names.object_guid.as_str(),
        &names.account_name,
        &names.group_name,
        &names.group_description,
        &names.member,
        &names.usn_changed,
    ];
    let entries = session
        .paged_search(
            &settings.group_base_dn,
            &group_filter,
            &group_attrs,
            settings.page_size,
            |n| progress(SyncProgress::GroupsRead(n)),
        )
        .await?;
    let mut groups: Vec<GroupRecord> = Vec::with_capacity(entries.len());
    for e in &entries {
        match group_from_entry(e, names) {
            Ok(mut g) => {
                // Large groups come in ranges of values; read the rest.
                if let Some((mut members, next)) = ranged_values(e, &names.member) {
                    if let Some(start) = next {
                        members.extend(session.read_range(&e.dn, &names.member, start).await?);
                    }
                    g.member_dns = members;
                }
                groups.push(g);
            }
            Err(s) => {
                skipped += 1;
                tracing::warn!(directory.name = %settings.name, ldap.dn = %s.dn, reason = s.reason, "entry skipped");
                progress(SyncProgress::Skipped {
                    dn: s.dn,
                    reason: s.reason,
                });
            }
        }
    }
    // Incremental sync cannot see a deleted object (it is no longer there to
    // be read), yet a deleted group's members would keep its rights until
    // the next full sync, and deleting a user does not change the uSNChanged
    // of the groups it leaves. Listing every GUID (one attribute, a few
    // thousand values) is cheap, so it is done at each incremental sync.
    let present = match since {
        Some(_) => {
            let guid = [names.object_guid.as_str()];
            let people = session
                .paged_search(
                    &settings.user_base_dn,
                    &settings.user_filter,
                    &guid,
                    settings.page_size,
                    |_| {},
                )
                .await?;
            let groups = session
                .paged_search(
                    &settings.group_base_dn,
                    &settings.group_filter,
                    &guid,
                    settings.page_size,
                    |_| {},
                )
                .await?;
            let guids = |entries: Vec<ldap3::SearchEntry>| -> HashSet<Uuid> {
                entries
                    .iter()
                    .filter_map(|e| object_guid_of(e, &names.object_guid))
                    .collect()
            };
            Some((guids(people), guids(groups)))
        }
        None => None,
    };
    session.unbind().await;

    // Whatever the kind of sync, the people and groups it will mark deleted
    // are checked against the mass-deletion guard before anything is written.
    let (present_people, present_groups) = match present {
        Some(sets) => sets,
        None => (
            people.iter().map(|p| p.object_guid).collect(),
            groups.iter().map(|g| g.object_guid).collect(),
        ),
    };
    let known_people = store.live_person_guids(row.id).await?;
    let known_groups = store.live_group_guids(row.id).await?;
    let people_to_retire = guard_mass_deletion(settings, &known_people, &present_people)?;
    let groups_to_retire = guard_mass_deletion(settings, &known_groups, &present_groups)?;

    let batch = SyncBatch {
        full,
        people: &people,
        groups: &groups,
        highest_usn: root.highest_committed_usn,
        usn_server: root.server_id.as_deref(),
    };
    let now = clock.now();
    let mut applied = store.apply_directory_sync(row.id, batch, now).await?;
    if names.licence_classes.is_some() {
        let done = store
            .apply_directory_licences(row.id, &licences, settings.licence_overrides_manager, now)
            .await?;
        if done != LicencesApplied::default() {
            progress(SyncProgress::Licences(done));
        }
    }
    if !full && people_to_retire + groups_to_retire > 0 {
        let present_people: Vec<Uuid> = present_people.into_iter().collect();
        let present_groups: Vec<Uuid> = present_groups.into_iter().collect();
        let (people_gone, groups_gone) = store
            .retire_missing(row.id, &present_people, &present_groups, now)
            .await?;
        applied.people_deleted += people_gone;
        applied.groups_deleted += groups_gone;
    }
    progress(SyncProgress::Applied(applied));
    // People just disabled or deleted may still hold future bookings: say so
    // at each sync until a manager has dealt with them.
    let orphaned = store.future_bookings_of_inactive_people(now).await?;
    if !orphaned.is_empty() {
        tracing::warn!(
            directory.name = %settings.name,
            bookings = orphaned.len(),
            "future bookings whose organiser is disabled or deleted"
        );
        progress(SyncProgress::InactiveOrganiserBookings(orphaned.len()));
    }
    Ok(SyncReport {
        directory: settings.name.clone(),
        full,
        people_read: people.len(),
        groups_read: groups.len(),
        skipped,
        applied,
        highest_usn: root.highest_committed_usn,
        inactive_organiser_bookings: orphaned.len(),
    })
}

/// Counts the known objects missing from `present`, and refuses when that
/// is a large share of them (see [`DirectorySettings::allow_mass_deletion`]).
fn guard_mass_deletion(
    settings: &DirectorySettings,
    known: &[Uuid],
    present: &HashSet<Uuid>,
) -> Result<usize, DirectoryError> {
    let would_delete = known.iter().filter(|g| !present.contains(g)).count();
    if is_mass_deletion(would_delete, known.len()) && !settings.allow_mass_deletion {
        return Err(DirectoryError::MassDeletion {
            directory: settings.name.clone(),
            would_delete,
            known: known.len(),
        });
    }
    Ok(would_delete)
}

pub(crate) fn is_mass_deletion(would_delete: usize, known: usize) -> bool {
    would_delete > MASS_DELETION_MIN && (would_delete as f64) > MASS_DELETION_FRACTION * (known as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Secret;
    use chrono::TimeZone;

    fn row(usn: Option<i64>, full_at: Option<DateTime<Utc>>) -> DirectoryRow {
        DirectoryRow {
            id: uuid::Uuid::nil(),
            name: "pc".into(),
            highest_usn: usn,
            usn_server: None,
            last_full_sync_at: full_at,
            last_sync_at: full_at,
            last_error: None,
            last_error_at: None,
        }
    }

    #[test]
    fn mass_deletion_threshold() {
        assert!(!is_mass_deletion(10, 10));
        assert!(!is_mass_deletion(20, 3000));
        assert!(is_mass_deletion(3000, 3000));
        assert!(is_mass_deletion(700, 3000));
        assert!(!is_mass_deletion(500, 3000));
    }

    #[test]
    fn full_sync_when_first_or_due() {
        let s = DirectorySettings::new("pc", "ldaps://dc", "cn=x", Secret::new("p"), "ou=a", "ou=b");
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).single().expect("valid");
        assert_eq!(full_sync_reason(&row(None, None), &s, t0), Some(FullReason::FirstSync));
        assert_eq!(
            full_sync_reason(&row(Some(5), Some(t0)), &s, t0 + chrono::Duration::hours(1)),
            None
        );
        assert_eq!(
            full_sync_reason(&row(Some(5), Some(t0)), &s, t0 + chrono::Duration::hours(24)),
            Some(FullReason::Periodic)
        );
    }
}
