//! The integration-test harness: one private PostgreSQL cluster per test run,
//! started from the installed binaries on first use, and one fresh database per
//! test, copied from a migrated template.
//!
//! Nothing is skipped: when PostgreSQL is not installed the first test that
//! needs a database fails and says what to install.

use resa::devdb::Cluster;
use resa::directory::entry::{PersonRecord, SmtpAddress};
use resa::store::Store;
use sqlx::Connection;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::OnceCell;

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static TEMPLATE: OnceCell<()> = OnceCell::const_new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

const TEMPLATE_DB: &str = "resa_template";

/// Where this run's cluster lives: under `target/` as long as the server's
/// user can reach it there, else in the system's temporary directory.
fn cluster_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let base = if resa::devdb::reachable_by_others(&target.join("pg-test")) {
        target.join("pg-test")
    } else {
        std::env::temp_dir().join("resa-pg-test")
    };
    // Data directories of earlier runs are stale once the process that
    // started them is gone (their servers stopped with it); those of test
    // runs still going on are left alone.
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let pid = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("run-"))
                .map(str::to_owned);
            let alive = pid.is_some_and(|p| std::path::Path::new("/proc").join(p).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    base.join(format!("run-{}", std::process::id()))
}

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| match Cluster::start(&cluster_dir()) {
        Ok(c) => c,
        Err(e) => panic!("cannot start the test PostgreSQL cluster: {e}"),
    })
}

/// A fresh, migrated database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
    store: Store,
}

impl TestDb {
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        self.store.pool()
    }
}

pub async fn test_db() -> TestDb {
    let cluster = cluster();
    TEMPLATE
        .get_or_init(|| async {
            let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
                .await
                .expect("connect to the test cluster");
            sqlx::query(&format!("CREATE DATABASE {TEMPLATE_DB}"))
                .execute(&mut admin)
                .await
                .expect("create the template database");
            let store = Store::connect(&cluster.url(TEMPLATE_DB), 2)
                .await
                .expect("connect to the template");
            store.migrate().await.expect("migrations apply to an empty database");
            store.pool().close().await;
            admin.close().await.expect("close");
        })
        .await;
    let name = format!("t{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("connect to the test cluster");
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
        .execute(&mut admin)
        .await
        .expect("create a test database from the template");
    admin.close().await.expect("close");
    let url = cluster.url(&name);
    let store = Store::connect(&url, 20).await.expect("connect to the test database");
    TestDb { name, url, store }
}

/// A directory person as a sync would read it: `sam@…` is the primary
/// address, with a legacy Exchange DN ending in `cn=sam`.
pub fn person(guid: u128, sam: &str, name: &str, mail: &str) -> PersonRecord {
    PersonRecord {
        object_guid: uuid::Uuid::from_u128(guid),
        dn: format!("CN={name},OU=Agents,DC=pc,DC=local"),
        sam_account_name: sam.into(),
        user_principal_name: Some(format!("{sam}@pc.local")),
        display_name: name.into(),
        department: None,
        manager_dn: None,
        legacy_exchange_dn: Some(format!("/o=PC/ou=Exchange/cn=Recipients/cn={sam}")),
        x500_addresses: Vec::new(),
        addresses: vec![SmtpAddress {
            address: mail.into(),
            primary: true,
        }],
        disabled: false,
        usn_changed: Some(1),
    }
}

/// Plaine Commune's head office with one meeting room, "Salle Cézanne".
pub struct RoomFixture {
    pub organisation: uuid::Uuid,
    pub site: uuid::Uuid,
    pub room: resa::store::catalogue::Resource,
}

/// Creates the organisation, its site, the room type and the room, whose
/// mailbox is `mailbox` on the Exchange endpoint `endpoint`.
pub async fn room_fixture(store: &Store, mailbox: &str, endpoint: &str, capacity: i32) -> RoomFixture {
    use resa::store::catalogue::{Category, NewResource};
    let org = store
        .create_organisation("plaine-commune", "Plaine Commune")
        .await
        .expect("org");
    let site = store
        .create_site(org.id, "siege", "Siège", "Europe/Paris")
        .await
        .expect("site");
    let kind = store
        .create_resource_type("salle", Category::Room, "Salle", "Room")
        .await
        .expect("type");
    let room = store
        .create_resource(&NewResource {
            site_id: site.id,
            resource_type_id: kind.id,
            name: "Salle Cézanne",
            mailbox_smtp: mailbox,
            exchange_endpoint: endpoint,
            capacity: Some(capacity),
        })
        .await
        .expect("room");
    RoomFixture {
        organisation: org.id,
        site: site.id,
        room,
    }
}
