//! Directory sync, organiser matching, grants and login against a real Samba
//! AD DC started by `.ci/samba-ad.sh start` (one DC, two OUs standing for the
//! two organisations). The script writes the connection details to a file
//! named by RESA_TEST_AD_ENV; without it these tests FAIL, they never skip.
//!
//! Tests run in parallel against the same DC, each with its own database, so
//! a test that changes the directory changes only objects no other test reads.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Mod};
use resa::clock::{Clock, SystemClock};
use resa::directory::{
    DirectoryError, DirectorySettings, Organiser, Secret, SyncProgress, directory_status, login, resolve_organiser,
    search_groups, sync_once,
};
use resa::store::Store;
use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant};

use crate::harness::test_db;

struct AdEnv(HashMap<String, String>);

impl AdEnv {
    fn load() -> AdEnv {
        let path = std::env::var("RESA_TEST_AD_ENV").unwrap_or_else(|_| {
            panic!(
                "RESA_TEST_AD_ENV is not set: these tests need the test Active Directory. \
                 Start it as root with `.ci/samba-ad.sh start` and export the line it prints \
                 (RESA_TEST_AD_ENV=/tmp/resa-samba-ad/env)."
            )
        });
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("RESA_TEST_AD_ENV={path}: cannot read it ({e}); is the test AD running?"));
        let vars = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        AdEnv(vars)
    }

    fn get(&self, key: &str) -> String {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} missing from the RESA_TEST_AD_ENV file"))
    }

    fn base(&self) -> String {
        self.get("RESA_TEST_AD_BASE_DN")
    }

    /// Plaine Commune: its OU, read over LDAPS.
    fn plaine_commune(&self) -> DirectorySettings {
        let base = self.base();
        let mut s = DirectorySettings::new(
            "plaine-commune",
            self.get("RESA_TEST_AD_LDAPS_URL"),
            self.get("RESA_TEST_AD_PC_BIND_DN"),
            Secret::from_file(&PathBuf::from(self.get("RESA_TEST_AD_PC_PASSWORD_FILE"))).expect("password file"),
            format!("OU=Agents,OU=PlaineCommune,{base}"),
            format!("OU=Groupes,OU=PlaineCommune,{base}"),
        );
        s.ca_file = Some(PathBuf::from(self.get("RESA_TEST_AD_CA_FILE")));
        s.netbios_domain = Some(self.get("RESA_TEST_AD_NETBIOS"));
        s.page_size = 3; // several pages even with a handful of people
        s.timeout = Duration::from_secs(10);
        s
    }

    /// Saint-Denis: its OU, read over StartTLS with its own account.
    fn saint_denis(&self) -> DirectorySettings {
        let base = self.base();
        let mut s = DirectorySettings::new(
            "saint-denis",
            self.get("RESA_TEST_AD_STARTTLS_URL"),
            self.get("RESA_TEST_AD_SD_BIND_DN"),
            Secret::from_file(&PathBuf::from(self.get("RESA_TEST_AD_SD_PASSWORD_FILE"))).expect("password file"),
            format!("OU=Agents,OU=SaintDenis,{base}"),
            format!("OU=Groupes,OU=SaintDenis,{base}"),
        );
        s.starttls = true;
        s.ca_file = Some(PathBuf::from(self.get("RESA_TEST_AD_CA_FILE")));
        s.netbios_domain = Some(self.get("RESA_TEST_AD_NETBIOS"));
        s.timeout = Duration::from_secs(10);
        s
    }

    fn user_password(&self) -> Secret {
        Secret::new(self.get("RESA_TEST_AD_USER_PASSWORD"))
    }

    /// A connection bound as the domain's administrator, to change the
    /// directory the way an AD admin would.
    async fn admin(&self) -> Admin {
        let ca = std::fs::read(self.get("RESA_TEST_AD_CA_FILE")).expect("CA file");
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert.expect("PEM")).expect("CA");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let settings = LdapConnSettings::new().set_config(Arc::new(config));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.get("RESA_TEST_AD_LDAPS_URL"))
            .await
            .expect("admin connection");
        let driver = tokio::spawn(async move { conn.drive().await });
        ldap.simple_bind(
            &self.get("RESA_TEST_AD_ADMIN_DN"),
            &self.get("RESA_TEST_AD_ADMIN_PASSWORD"),
        )
        .await
        .expect("admin bind")
        .success()
        .expect("admin bind accepted");
        Admin { ldap, driver }
    }

    async fn admin_modify(&self, dn: &str, mods: Vec<Mod<String>>) -> u32 {
        let mut admin = self.admin().await;
        admin.ldap.modify(dn, mods).await.expect("modify").rc
    }
}

struct Admin {
    ldap: ldap3::Ldap,
    driver: tokio::task::JoinHandle<ldap3::result::Result<()>>,
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Admin {
    async fn add(&mut self, dn: &str, attrs: &[(&str, &[&str])]) {
        let attrs = attrs
            .iter()
            .map(|(k, vs)| (*k, vs.iter().copied().collect::<HashSet<&str>>()))
            .collect();
        let res = self.ldap.add(dn, attrs).await.expect("add");
        assert_eq!(res.rc, 0, "adding {dn}: {res}");
    }

    async fn delete(&mut self, dn: &str) {
        let res = self.ldap.delete(dn).await.expect("delete");
        assert_eq!(res.rc, 0, "deleting {dn}: {res}");
    }
}

async fn sync(store: &Store, settings: &DirectorySettings, full: bool) -> resa::directory::SyncReport {
    let mut events = Vec::new();
    let report = sync_once(store, settings, full, |p| events.push(p))
        .await
        .unwrap_or_else(|e| panic!("sync of {} failed: {e}", settings.name));
    assert!(
        events.iter().any(|e| matches!(e, SyncProgress::Applied(_))),
        "{events:?}"
    );
    report
}

async fn person(store: &Store, directory: &str, account: &str) -> resa::store::directory::PersonRef {
    store
        .person_by_account(directory, account)
        .await
        .expect("query")
        .unwrap_or_else(|| panic!("{account} not synced into {directory}"))
}

async fn group_names(store: &Store, person_id: uuid::Uuid) -> Vec<String> {
    store
        .groups_of_person(person_id)
        .await
        .expect("query")
        .into_iter()
        .map(|g| g.name)
        .collect()
}

#[tokio::test]
async fn nested_groups_grant_rights_and_a_removal_is_seen_by_the_next_incremental_sync() {
    let env = AdEnv::load();
    let pc = env.plaine_commune();
    let base = env.base();
    let informatique = format!("CN=PC-Informatique,OU=Groupes,OU=PlaineCommune,{base}");
    let eric = format!("CN=Eric Lefebvre,OU=Agents,OU=PlaineCommune,{base}");
    // A previous run may have left eric out; put him back (AD answers 68,
    // entryAlreadyExists, when he is already a member).
    let rc = env
        .admin_modify(
            &informatique,
            vec![Mod::Add("member".into(), HashSet::from([eric.clone()]))],
        )
        .await;
    assert!(matches!(rc, 0 | 20 | 68), "re-adding eric: rc {rc}");

    let db = test_db().await;
    let store = db.store();
    let report = sync(store, &pc, true).await;
    assert!(report.full);
    assert!(report.people_read >= 7, "{report:?}");

    // alice is in PC-Informatique, in PC-DSI, in PC-Reservants-Salles.
    let alice = person(store, "plaine-commune", "alice.martin").await;
    assert_eq!(
        group_names(store, alice.id).await,
        ["PC-DSI", "PC-Informatique", "PC-Reservants-Salles", "PC-Vehicules"]
    );
    // bob is in a cycle (A contains B contains A): both apply, and the sync ended.
    let bob = person(store, "plaine-commune", "bob.durand").await;
    assert_eq!(group_names(store, bob.id).await, ["PC-Cycle-A", "PC-Cycle-B"]);

    let top = store
        .group_by_account("plaine-commune", "PC-Reservants-Salles")
        .await
        .expect("query")
        .expect("group synced");
    let grant = store
        .create_grant(&NewGrant {
            subject: GrantSubject::Group(top.id),
            scope: GrantScope::Global,
            role: GrantRole::Book,
            created_by: None,
        })
        .await
        .expect("grant");
    let eric_p = person(store, "plaine-commune", "eric.lefebvre").await;
    for (who, id) in [("alice", alice.id), ("eric", eric_p.id)] {
        let grants = store.grants_for_person(id).await.expect("grants");
        assert_eq!(grants.iter().map(|g| g.id).collect::<Vec<_>>(), [grant], "{who}");
        assert_eq!(grants[0].role, GrantRole::Book);
    }
    assert!(store.grants_for_person(bob.id).await.expect("grants").is_empty());

    // The AD admin takes eric out of PC-Informatique: that changes the
    // group's uSNChanged, not eric's, and the incremental sync must see it.
    let rc = env
        .admin_modify(
            &informatique,
            vec![Mod::Delete("member".into(), HashSet::from([eric.clone()]))],
        )
        .await;
    assert_eq!(rc, 0, "removing eric");
    let report = sync(store, &pc, false).await;
    assert!(!report.full, "{report:?}");
    assert!(
        report.groups_read >= 1 && report.groups_read < 7,
        "only changed groups are read: {report:?}"
    );
    assert!(store.grants_for_person(eric_p.id).await.expect("grants").is_empty());
    assert_eq!(group_names(store, eric_p.id).await, Vec::<String>::new());
    assert_eq!(store.grants_for_person(alice.id).await.expect("grants").len(), 1);

    // Grant storage: listed, then deleted once.
    assert_eq!(store.list_grants().await.expect("list").len(), 1);
    assert!(store.delete_grant(grant).await.expect("delete"));
    assert!(!store.delete_grant(grant).await.expect("delete again"));

    env.admin_modify(&informatique, vec![Mod::Add("member".into(), HashSet::from([eric]))])
        .await;
}

#[tokio::test]
async fn smtp_aliases_and_legacy_dns_resolve_to_the_right_person() {
    let env = AdEnv::load();
    let (mut pc, sd) = (env.plaine_commune(), env.saint_denis());
    pc.attributes.licence_classes = Some("carLicense".into());
    let db = test_db().await;
    let store = db.store();
    sync(store, &pc, true).await;
    sync(store, &sd, true).await;

    let cases = [
        ("alice.martin@plainecommune.test", Some("alice.martin")),
        ("A.Martin@PlaineCommune.TEST", Some("alice.martin")),
        ("SMTP:alice.martin@ville-stdenis.test", Some("alice.martin")),
        ("Alice Martin <a.martin@plainecommune.test>", Some("alice.martin")),
        (
            "/o=Plaine Commune/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=alice.martin",
            Some("alice.martin"),
        ),
        (
            "EX:/O=PLAINE COMMUNE/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS/CN=BOB.DURAND",
            Some("bob.durand"),
        ),
        // A former legacy DN kept as an X500 proxy address.
        (
            "/o=Ancienne Org/ou=First Administrative Group/cn=Recipients/cn=amartin",
            Some("alice.martin"),
        ),
        // From `mail` alone (no proxyAddresses).
        ("eric.lefebvre@plainecommune.test", Some("eric.lefebvre")),
        ("h.fournier@pierrefitte.test", Some("helene.fournier")),
        ("nobody@plainecommune.test", None),
        ("/o=Plaine Commune/cn=Recipients/cn=nobody", None),
        ("not an address", None),
    ];
    for (raw, want) in cases {
        let got = resolve_organiser(store, raw).await.expect("resolve");
        let got = match got {
            Organiser::Known(p) => Some(p.sam_account_name),
            Organiser::Unknown => None,
        };
        assert_eq!(got.as_deref(), want, "{raw}");
    }
    let helene = match resolve_organiser(store, "helene.fournier@saint-denis.test")
        .await
        .expect("resolve")
    {
        Organiser::Known(p) => p,
        Organiser::Unknown => panic!("helene unknown"),
    };
    assert_eq!(helene.directory_name, "saint-denis");
    assert_eq!(helene.primary_smtp.as_deref(), Some("helene.fournier@saint-denis.test"));

    // Manager DN -> person; disabled flag from userAccountControl.
    let alice = person(store, "plaine-commune", "alice.martin").await;
    let denis = person(store, "plaine-commune", "denis.moreau").await;
    assert_eq!(alice.manager_id, Some(denis.id));
    assert!(person(store, "plaine-commune", "claire.petit").await.disabled);
    // Driving licence classes from the configured attribute, normalised.
    assert_eq!(store.licence_classes(alice.id).await.expect("q"), ["B", "BE"]);
    assert!(store.licence_classes(denis.id).await.expect("q").is_empty());
    assert!(!alice.disabled);

    // The two organisations are two directories, neither reading the other's OU.
    assert!(
        store
            .person_by_account("saint-denis", "alice.martin")
            .await
            .expect("q")
            .is_none()
    );
    let status = directory_status(store, &[pc, sd], SystemClock.now()).await;
    let status = status.expect("status");
    assert_eq!(status.len(), 2);
    assert!(status.iter().all(|s| !s.stale), "{status:?}");
    assert!(status[0].people_disabled >= 1, "{status:?}");
    assert_eq!(status[1].people_active, 2, "{status:?}");
}

#[tokio::test]
async fn login_binds_as_the_user_and_fails_cleanly_otherwise() {
    let env = AdEnv::load();
    let dirs = [env.plaine_commune(), env.saint_denis()];
    let good = env.user_password();

    for name in [
        "alice.martin",
        "RESA\\alice.martin",
        "alice.martin@resa.example.test",
        "Alice.Martin@PlaineCommune.test",
    ] {
        let user = login(&dirs, name, &good)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(user.sam_account_name, "alice.martin", "{name}");
        assert_eq!(user.directory, "plaine-commune");
    }
    // Saint-Denis is reached over StartTLS.
    let helene = login(&dirs, "helene.fournier", &good).await.expect("helene");
    assert_eq!(helene.directory, "saint-denis");

    // One wrong password, then the right one (which resets AD's bad-password
    // count, so reruns never lock bob out).
    let wrong = login(&dirs, "bob.durand", &Secret::new("not-the-password")).await;
    assert!(matches!(wrong, Err(DirectoryError::InvalidCredentials)), "{wrong:?}");
    login(&dirs, "bob.durand", &good)
        .await
        .expect("bob with the right password");

    type Expected = fn(&DirectoryError) -> bool;
    let refused: &[(&str, Expected)] = &[
        ("denis.moreau", |e| matches!(e, DirectoryError::AccountLocked)),
        ("claire.petit", |e| matches!(e, DirectoryError::AccountDisabled)),
        ("gilles.roux", |e| matches!(e, DirectoryError::AccountExpired)),
        ("ines.girard", |e| matches!(e, DirectoryError::MustChangePassword)),
        ("nobody.here", |e| matches!(e, DirectoryError::InvalidCredentials)),
        // LDAP injection attempts find nothing and fail like a wrong password.
        ("*)(uid=*", |e| matches!(e, DirectoryError::InvalidCredentials)),
        ("*", |e| matches!(e, DirectoryError::InvalidCredentials)),
        ("alice*", |e| matches!(e, DirectoryError::InvalidCredentials)),
        ("alice.martin)(|(sAMAccountName=*", |e| {
            matches!(e, DirectoryError::InvalidCredentials)
        }),
        ("*@resa.example.test", |e| {
            matches!(e, DirectoryError::InvalidCredentials)
        }),
        ("OTHERDOMAIN\\alice.martin", |e| {
            matches!(e, DirectoryError::InvalidCredentials)
        }),
    ];
    for (name, expected) in refused {
        let got = login(&dirs, name, &good).await;
        match got {
            Err(e) => {
                assert!(expected(&e), "{name}: {e:?}");
                assert!(!e.message_fr().is_empty() && !e.message_en().is_empty());
            }
            Ok(u) => panic!("{name} logged in as {u:?}"),
        }
    }
    // An empty password would be an anonymous bind that AD accepts.
    let empty = login(&dirs, "alice.martin", &Secret::new("")).await;
    assert!(matches!(empty, Err(DirectoryError::InvalidCredentials)), "{empty:?}");
}

#[tokio::test]
async fn live_group_search_escapes_the_text() {
    let env = AdEnv::load();
    let pc = env.plaine_commune();
    let hits = search_groups(&pc, "reservants").await.expect("search");
    assert_eq!(
        hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["PC-Reservants-Salles"]
    );
    let all = search_groups(&pc, "PC-").await.expect("search");
    assert_eq!(all.len(), 6, "{all:?}");
    for hostile in ["*", "*)(objectClass=*", ")(cn=PC-DSI"] {
        assert!(
            search_groups(&pc, hostile).await.expect("search").is_empty(),
            "{hostile}"
        );
    }
}

#[tokio::test]
async fn a_directory_that_is_down_keeps_known_people_and_says_stale() {
    let env = AdEnv::load();
    let pc = env.plaine_commune();
    let db = test_db().await;
    let store = db.store();
    sync(store, &pc, true).await;
    let alice = person(store, "plaine-commune", "alice.martin").await;
    let alice_groups = group_names(store, alice.id).await;

    // Same directory, wrong port: nothing listens there.
    let mut down = pc.clone();
    down.url = "ldaps://127.0.0.1:1".into();
    down.timeout = Duration::from_secs(3);
    let err = sync_once(store, &down, false, |_| {})
        .await
        .expect_err("the directory is down");
    assert!(matches!(err, DirectoryError::Unreachable { .. }), "{err:?}");
    assert!(err.is_unavailable());

    match resolve_organiser(store, "a.martin@plainecommune.test")
        .await
        .expect("resolve")
    {
        Organiser::Known(p) => assert_eq!(p.id, alice.id),
        Organiser::Unknown => panic!("alice forgotten while the directory is down"),
    }
    assert_eq!(group_names(store, alice.id).await, alice_groups);

    let status = directory_status(store, std::slice::from_ref(&down), SystemClock.now())
        .await
        .expect("status");
    assert!(status[0].stale, "{status:?}");
    assert!(
        status[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("unreachable")),
        "{status:?}"
    );
    assert!(status[0].people_active >= 5, "{status:?}");

    let login_down = login(std::slice::from_ref(&down), "alice.martin", &env.user_password()).await;
    assert!(
        matches!(login_down, Err(DirectoryError::Unreachable { .. })),
        "{login_down:?}"
    );

    // A server whose certificate does not chain to the configured CA (here:
    // the system's roots) is a TLS error, not an outage, and nothing is read.
    let mut untrusted = pc.clone();
    untrusted.ca_file = None;
    let err = sync_once(store, &untrusted, false, |_| {})
        .await
        .expect_err("certificate not trusted");
    assert!(matches!(err, DirectoryError::Tls { .. }), "{err:?}");

    // The next successful sync clears the stale flag.
    sync(store, &pc, false).await;
    let status = directory_status(store, &[pc], SystemClock.now()).await.expect("status");
    assert!(!status[0].stale, "{status:?}");
}

#[tokio::test]
async fn people_missing_at_full_sync_are_deleted_and_their_future_bookings_reported() {
    let env = AdEnv::load();
    let base = env.base();
    // A directory of its own (an OU made for this run), so the deletion
    // cannot disturb the tests that read OU=Agents at the same time.
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let ou = format!("OU=tmp-{tag},OU=PlaineCommune,{base}");
    let sam = format!("tmp-{tag}");
    let dn = format!("CN={sam},{ou}");
    let smtp = format!("{sam}@plainecommune.test");
    let mut admin = env.admin().await;
    admin.add(&ou, &[("objectClass", &["organizationalUnit"])]).await;
    admin
        .add(
            &dn,
            &[
                ("objectClass", &["user"]),
                ("sAMAccountName", &[&sam]),
                ("displayName", &["Temporaire"]),
                ("proxyAddresses", &[&format!("SMTP:{smtp}")]),
            ],
        )
        .await;
    let mut tmp = env.plaine_commune();
    tmp.name = format!("tmp-{tag}");
    tmp.user_base_dn = ou.clone();
    tmp.group_base_dn = ou.clone();

    let db = test_db().await;
    let store = db.store();
    sync(store, &tmp, true).await;
    let pc = env.plaine_commune();
    sync(store, &pc, true).await;
    let leaver = person(store, &tmp.name, &sam).await;
    let claire = person(store, "plaine-commune", "claire.petit").await;
    assert!(claire.disabled);
    let alice = person(store, "plaine-commune", "alice.martin").await;

    // One future booking each for the leaver, claire (disabled) and alice.
    let now = SystemClock.now();
    sqlx::query(
        "WITH o AS (INSERT INTO organisations (slug, name) VALUES ('pc', 'Plaine Commune') RETURNING id),
              s AS (INSERT INTO sites (organisation_id, slug, name) SELECT id, 'siege', 'Siège' FROM o RETURNING id),
              t AS (INSERT INTO resource_types (slug, category, name_fr, name_en)
                    VALUES ('salle', 'room', 'Salle', 'Room') RETURNING id)
         INSERT INTO resources (site_id, resource_type_id, name, mailbox_smtp, exchange_endpoint)
         SELECT s.id, t.id, 'Salle Cézanne', 'salle.cezanne@plainecommune.test', 'main' FROM s, t",
    )
    .execute(db.pool())
    .await
    .expect("catalogue");
    for (i, who) in [leaver.id, claire.id, alice.id].into_iter().enumerate() {
        let start = now + chrono::Duration::days(1 + i as i64);
        sqlx::query(
            "WITH b AS (
                 INSERT INTO bookings (resource_id, uid, source, organiser_person_id, organiser_address,
                                       subject, status, requested_at)
                 SELECT id, $1, 'exchange', $2, 'x@plainecommune.test', 'Réunion', 'accepted', $3 FROM resources
                 RETURNING id, resource_id)
             INSERT INTO occurrences (booking_id, resource_id, original_start, period, blocked, status)
             SELECT id, resource_id, $4, tstzrange($4, $5), tstzrange($4, $5), 'accepted' FROM b",
        )
        .bind(format!("uid-{i}"))
        .bind(who)
        .bind(now)
        .bind(start)
        .bind(start + chrono::Duration::hours(1))
        .execute(db.pool())
        .await
        .expect("booking");
    }

    admin.delete(&dn).await;
    let report = sync(store, &tmp, true).await;
    admin.delete(&ou).await;
    assert_eq!(report.applied.people_deleted, 1, "{report:?}");
    assert_eq!(report.inactive_organiser_bookings, 2, "{report:?}");

    let gone = store
        .person_by_guid(&tmp.name, leaver.object_guid)
        .await
        .expect("query")
        .expect("kept, marked deleted");
    assert!(gone.deleted_at.is_some());
    assert_eq!(
        resolve_organiser(store, &smtp).await.expect("resolve"),
        Organiser::Unknown
    );
    assert!(store.grants_for_person(gone.id).await.expect("grants").is_empty());

    let orphaned = store.future_bookings_of_inactive_people(now).await.expect("report");
    let who: Vec<(uuid::Uuid, bool)> = orphaned.iter().map(|b| (b.person_id, b.deleted_at.is_some())).collect();
    assert_eq!(who, [(leaver.id, true), (claire.id, false)]);
    assert!(orphaned[1].disabled);
}

#[tokio::test]
async fn incremental_sync_reads_new_changed_and_deleted_objects() {
    let env = AdEnv::load();
    let base = env.base();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let ou = format!("OU=inc-{tag},OU=PlaineCommune,{base}");
    let user = |n: &str| format!("CN=inc-{tag}-{n},{ou}");
    let mut admin = env.admin().await;
    admin.add(&ou, &[("objectClass", &["organizationalUnit"])]).await;
    let first = user("a");
    let sam_a = format!("inc-{tag}-a");
    admin
        .add(&first, &[("objectClass", &["user"]), ("sAMAccountName", &[&sam_a])])
        .await;
    let mut dir = env.plaine_commune();
    dir.name = format!("inc-{tag}");
    dir.user_base_dn = ou.clone();
    dir.group_base_dn = ou.clone();

    let db = test_db().await;
    let store = db.store();
    assert!(sync(store, &dir, false).await.full, "the first sync is always full");
    let a = person(store, &dir.name, &sam_a).await;

    // Enable a (NORMAL_ACCOUNT | PASSWD_NOTREQD), add b and a group holding both.
    let rc = env
        .admin_modify(
            &first,
            vec![Mod::Replace(
                "userAccountControl".into(),
                HashSet::from(["544".to_string()]),
            )],
        )
        .await;
    assert_eq!(rc, 0);
    let sam_b = format!("inc-{tag}-b");
    admin
        .add(&user("b"), &[("objectClass", &["user"]), ("sAMAccountName", &[&sam_b])])
        .await;
    let group = format!("CN=inc-{tag}-g,{ou}");
    let (first_ref, second_ref) = (first.as_str(), user("b"));
    admin
        .add(
            &group,
            &[
                ("objectClass", &["group"]),
                ("sAMAccountName", &[&format!("inc-{tag}-g")]),
                ("member", &[first_ref, &second_ref]),
            ],
        )
        .await;

    let report = sync(store, &dir, false).await;
    assert!(!report.full, "{report:?}");
    assert_eq!((report.people_read, report.groups_read), (2, 1), "{report:?}");
    let a_now = person(store, &dir.name, &sam_a).await;
    assert_eq!(a_now.id, a.id);
    assert!(!a_now.disabled, "enabling was read");
    let b = person(store, &dir.name, &sam_b).await;
    assert_eq!(group_names(store, b.id).await, [format!("inc-{tag}-g")]);

    // Nothing changed: an incremental sync reads nothing.
    let report = sync(store, &dir, false).await;
    assert_eq!((report.people_read, report.groups_read), (0, 0), "{report:?}");

    // A deleted group cannot be read by an incremental sync, but its GUID
    // is missing from the list of GUIDs read at each sync: its rights go.
    admin.delete(&group).await;
    let report = sync(store, &dir, false).await;
    assert!(!report.full, "{report:?}");
    assert_eq!(report.applied.groups_deleted, 1, "{report:?}");
    assert!(group_names(store, b.id).await.is_empty());
    let report = sync(store, &dir, true).await;
    assert_eq!(report.applied.groups_deleted, 0, "already retired: {report:?}");

    // Deleting a user leaves the uSNChanged of their groups as it was (on
    // Samba at least); the GUID listing notices the user is gone.
    admin.delete(&user("b")).await;
    let report = sync(store, &dir, false).await;
    assert!(!report.full, "{report:?}");
    assert_eq!(report.applied.people_deleted, 1, "{report:?}");
    let b_gone = store
        .person_by_guid(&dir.name, b.object_guid)
        .await
        .expect("q")
        .expect("kept");
    assert!(b_gone.deleted_at.is_some());

    admin.delete(&first).await;
    admin.delete(&ou).await;
}

#[tokio::test]
async fn the_sync_worker_syncs_and_stops_when_told() {
    let env = AdEnv::load();
    let mut pc = env.plaine_commune();
    pc.name = "worker".into();
    let db = test_db().await;
    let store = db.store().clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(resa::directory::worker::run(
        store.clone(),
        pc,
        Duration::from_secs(3600),
        resa::clock::system(),
        stopped,
    ));
    let mut synced = false;
    for _ in 0..100 {
        let row = store.directory_by_name("worker").await.expect("query");
        if row.and_then(|r| r.last_sync_at).is_some() {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(synced, "the worker did not sync within 20 s");
    stop.send(true).expect("worker listening");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the worker stops promptly")
        .expect("the worker did not panic");
}

#[tokio::test]
async fn the_directory_sync_command_reads_both_directories_and_shows_its_progress() {
    let env = AdEnv::load();
    let db = test_db().await;
    db.store()
        .create_organisation("plaine-commune", "Plaine Commune")
        .await
        .expect("org");
    db.store()
        .create_organisation("saint-denis", "Ville de Saint-Denis")
        .await
        .expect("org");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = env.base();
    let config = format!(
        r#"version = 1
[database]
url = "{db}"

[[directory]]
name = "plaine-commune"
organisation = "plaine-commune"
url = "{ldaps}"
ca_file = "{ca}"
bind_dn = "{pc_dn}"
bind_password_file = "{pc_pw}"
user_base_dn = "OU=Agents,OU=PlaineCommune,{base}"
group_base_dn = "OU=Groupes,OU=PlaineCommune,{base}"

[[directory]]
name = "saint-denis"
organisation = "saint-denis"
url = "{starttls}"
starttls = true
ca_file = "{ca}"
bind_dn = "{sd_dn}"
bind_password_file = "{sd_pw}"
user_base_dn = "OU=Agents,OU=SaintDenis,{base}"
group_base_dn = "OU=Groupes,OU=SaintDenis,{base}"
"#,
        db = db.url,
        ldaps = env.get("RESA_TEST_AD_LDAPS_URL"),
        starttls = env.get("RESA_TEST_AD_STARTTLS_URL"),
        ca = env.get("RESA_TEST_AD_CA_FILE"),
        pc_dn = env.get("RESA_TEST_AD_PC_BIND_DN"),
        pc_pw = env.get("RESA_TEST_AD_PC_PASSWORD_FILE"),
        sd_dn = env.get("RESA_TEST_AD_SD_BIND_DN"),
        sd_pw = env.get("RESA_TEST_AD_SD_PASSWORD_FILE"),
    );
    let file = dir.path().join("resa.toml");
    std::fs::write(&file, config).expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resa"))
        .args(["directory", "sync", "--once", "--full", "--config"])
        .arg(&file)
        .env_remove("RESA_LANG")
        .output()
        .expect("resa runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("plaine-commune : connecté ; synchronisation complète"),
        "{stdout}"
    );
    assert!(stdout.contains("saint-denis : terminé"), "{stdout}");
    let counts = db.store().directory_counts().await.expect("counts");
    assert_eq!(counts.len(), 2);
    assert!(counts.iter().all(|c| c.people_active > 0), "{counts:?}");
}

/// Driving licences from a directory attribute (`carLicense` here; a site
/// would use e.g. extensionAttribute5) in the configured format: a valid one
/// gets the car, an expired one is declined with the licence reason, an
/// unreadable one is reported in the directory status without failing the
/// sync, and a manager's entry stands unless the directory is told to win.
#[tokio::test]
async fn licences_from_the_directory_attribute_decide_who_may_take_a_car() {
    use crate::vehicles::{decide, fleet_at, monday, request, tue};
    use resa::domain::vehicles::{DriverLicence, LicenceClass, LicenceFormat};
    use resa::store::vehicles::LicenceSource;
    let env = AdEnv::load();
    let base = env.base();
    // An OU of its own, so the people added here disturb no other test.
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let ou = format!("OU=permis-{tag},OU=PlaineCommune,{base}");
    let mut admin = env.admin().await;
    admin.add(&ou, &[("objectClass", &["organizationalUnit"])]).await;
    let people = [
        ("valide", "B;2031-05-01"),
        ("expire", "B;2024-01-31"),
        ("illisible", "B;2031-13-45"),
        ("gestion", "B;2030-01-01"),
    ];
    let mut dns = Vec::new();
    for (who, licence) in people {
        let sam = format!("{who}-{tag}");
        let dn = format!("CN={sam},{ou}");
        admin
            .add(
                &dn,
                &[
                    ("objectClass", &["user"]),
                    ("sAMAccountName", &[&sam]),
                    ("displayName", &[&format!("Conducteur {who}")]),
                    ("proxyAddresses", &[&format!("SMTP:{sam}@plainecommune.test")]),
                    ("carLicense", &[licence]),
                ],
            )
            .await;
        dns.push(dn);
    }
    let mut settings = env.plaine_commune();
    settings.name = format!("permis-{tag}");
    settings.user_base_dn = ou.clone();
    settings.group_base_dn = ou.clone();
    settings.attributes.licence_classes = Some("carLicense".into());
    settings.licence_format = LicenceFormat::parse("CLASSES;YYYY-MM-DD").expect("format");

    let db = test_db().await;
    let store = db.store();
    sync(store, &settings, true).await;
    let id_of = |who: &str| format!("{who}-{tag}");
    let valid = person(store, &settings.name, &id_of("valide")).await;
    let unreadable = person(store, &settings.name, &id_of("illisible")).await;
    let managed = person(store, &settings.name, &id_of("gestion")).await;
    assert_eq!(
        store.driver_licence(valid.id).await.expect("licence"),
        Some(DriverLicence {
            classes: vec![LicenceClass::B],
            expires_on: chrono::NaiveDate::from_ymd_opt(2031, 5, 1),
        })
    );
    let source: Option<String> = sqlx::query_scalar("SELECT licence_source FROM people WHERE id = $1")
        .bind(valid.id)
        .fetch_one(db.pool())
        .await
        .expect("source");
    assert_eq!(source.as_deref(), Some("directory"));

    // The unreadable value is in the directory status; the sync went through.
    assert_eq!(store.driver_licence(unreadable.id).await.expect("licence"), None);
    let status = directory_status(store, std::slice::from_ref(&settings), SystemClock.now())
        .await
        .expect("status");
    assert_eq!(status[0].licence_problems, 1, "{status:?}");
    assert!(
        !status[0].stale,
        "an unreadable licence does not fail the sync: {status:?}"
    );
    let problems = status[0].problems();
    assert!(
        problems.contains("Conducteur illisible") && problems.contains("date illisible « 2031-13-45 »"),
        "{problems}"
    );

    // A car needing a B licence: the valid driver gets it, the expired one
    // is declined with the licence reason.
    let org = store.create_organisation("pc", "Plaine Commune").await.expect("org");
    let site = store
        .create_site(org.id, "mairie", "Mairie", "Europe/Paris")
        .await
        .expect("site");
    let fleet = fleet_at(store, site.id).await;
    let address = |who: &str| format!("{who}-{tag}@plainecommune.test");
    let (_, kind, message) = decide(
        store,
        &request(fleet.clio, "ok", &address("valide"), "Tournée", tue(9, 0), tue(11, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept", "{message}");
    let (_, kind, message) = decide(
        store,
        &request(fleet.clio, "old", &address("expire"), "Tournée", tue(14, 0), tue(15, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "decline", "{message}");
    assert!(
        message.contains("Votre permis de conduire a expiré le mercredi 31 janvier 2024"),
        "{message}"
    );

    // A manager's entry stands against the directory by default...
    let by_manager = DriverLicence {
        classes: vec![LicenceClass::BE],
        expires_on: chrono::NaiveDate::from_ymd_opt(2035, 12, 31),
    };
    store
        .set_driver_licence(managed.id, &by_manager, LicenceSource::Manager, SystemClock.now())
        .await
        .expect("manager's licence");
    sync(store, &settings, true).await;
    assert_eq!(
        store.driver_licence(managed.id).await.expect("licence"),
        Some(by_manager)
    );
    // ...and gives way when the configuration says the directory wins.
    settings.licence_overrides_manager = true;
    sync(store, &settings, true).await;
    assert_eq!(
        store.driver_licence(managed.id).await.expect("licence"),
        Some(DriverLicence {
            classes: vec![LicenceClass::B],
            expires_on: chrono::NaiveDate::from_ymd_opt(2030, 1, 1),
        })
    );

    // Fixed in the directory: the problem is gone at the next sync.
    env.admin_modify(
        &dns[2],
        vec![Mod::Replace(
            "carLicense".into(),
            HashSet::from(["B;2031-12-31".to_owned()]),
        )],
    )
    .await;
    sync(store, &settings, true).await;
    let status = directory_status(store, std::slice::from_ref(&settings), SystemClock.now())
        .await
        .expect("status");
    assert_eq!(status[0].licence_problems, 0, "{status:?}");
    assert_eq!(
        store
            .driver_licence(unreadable.id)
            .await
            .expect("licence")
            .and_then(|l| l.expires_on),
        chrono::NaiveDate::from_ymd_opt(2031, 12, 31)
    );

    for dn in &dns {
        admin.delete(dn).await;
    }
    admin.delete(&ou).await;
}
