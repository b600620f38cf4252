//! A configuration reload (SIGHUP) while the daemon runs: a new Exchange
//! endpoint, a new polling interval and a new change detection apply without
//! a restart, and a file with problems is refused while the daemon goes on.

use crate::daemon::{ALICE, BOB, ROOM, Rig, SIM_MINUTE, response_of, rig, seed, test_watch, wait_streams};
use resa::clock::SharedClock;
use resa::config::{self, SecretSource};
use resa::ews::soap::ServerVersion;
use resa::metrics::Metrics;
use resa::runtime::{self, Daemon, Pacing, Reload};
use resa::sim::{SimHandle, SimOptions, Simulator};
use resa::sync::SyncContext;
use resa::sync::watch::WatchPacing;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A configuration with one endpoint, `sim`, at `ews_url`.
fn config_text(ews_url: &str, poll_seconds: u64, detection: &str) -> String {
    format!(
        r#"version = 1

[database]
url = "postgres://resa@127.0.0.1:5432/resa"

[log]
level = "info"

[[exchange]]
name = "sim"
url = "{ews_url}"
version = "Exchange2010_SP2"
auth = "ntlm"
domain = "PC"
username = "svc-resa"
password_file = "ews.pwd"
change_detection = "{detection}"
poll_interval_seconds = {poll_seconds}
"#
    )
}

struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    daemon: Daemon,
    reload: Reload,
}

/// A daemon started from the configuration `text`, as `resa serve` starts
/// it, on the rig's database and clock.
fn start(r: &Rig, text: &str, watch: WatchPacing) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ews.pwd"), "S3rvice!\n").expect("password file");
    let path = dir.path().join("resa.toml");
    std::fs::write(&path, text).expect("config");
    let cfg = config::load(&path).unwrap_or_else(|p| panic!("{p}"));
    let secrets = SecretSource::system(dir.path().to_owned());
    let clock: SharedClock = Arc::new(r.clock.clone());
    let metrics = Arc::new(Metrics::default());
    let exchanges = runtime::exchanges(&cfg, &secrets, clock.clone())
        .expect("clients")
        .into_iter()
        .map(|(name, ex)| (name, ex.with_metrics(metrics.clone())))
        .collect();
    let ctx = SyncContext {
        store: r.db.store().clone(),
        exchanges,
        clock: clock.clone(),
        instance: "a".into(),
        metrics: metrics.clone(),
    };
    let pacing = Pacing {
        lease: chrono::Duration::seconds(3),
        outbox_idle: Duration::from_millis(100),
        reconcile: Duration::from_millis(300),
        ..Pacing::from_config(&cfg)
    };
    let (daemon, reloader) = Daemon::start_live(ctx, pacing, watch, runtime::detection(&cfg));
    let reload = Reload::new(&path, cfg, secrets, clock, metrics, reloader);
    Running {
        _dir: dir,
        path,
        daemon,
        reload,
    }
}

/// Another simulator on the rig's clock, seeded alike: another Exchange.
async fn another_exchange(r: &Rig) -> SimHandle {
    let mut opts = SimOptions::new("127.0.0.1:0", seed(), ServerVersion::Exchange2010_SP2);
    opts.minute = SIM_MINUTE;
    opts.clock = Arc::new(r.clock.clone());
    Simulator::start(opts).await.expect("second simulator starts")
}

/// The meeting responses in a mailbox of `sim`.
/// What a simulator's control API answers at `path`.
async fn control_json(http: &reqwest::Client, sim: &SimHandle, path: &str) -> Value {
    http.get(format!("{}{path}", sim.control_url()))
        .send()
        .await
        .expect("control API answers")
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).expect("json"))
        .expect("body")
}

async fn responses_in(http: &reqwest::Client, sim: &SimHandle, smtp: &str) -> Vec<Value> {
    let v = control_json(http, sim, &format!("/mailboxes/{smtp}/inbox")).await;
    v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i["kind"] == "MeetingResponse")
        .collect()
}

async fn decisions(r: &Rig) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(r.db.pool())
        .await
        .expect("decisions")
}

fn rewrite(path: &Path, text: &str) {
    std::fs::write(path, text).expect("rewrite the configuration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_the_daemon_to_another_exchange_without_losing_or_doubling_an_answer() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let mut running = start(&r, &config_text(&r.sim.ews_url(), 1, "auto"), test_watch());
    wait_streams(&r, 1).await;
    r.invite(ALICE, "Avant", "2026-12-01T09:00:00", "2026-12-01T10:00:00")
        .await;
    assert_eq!(response_of(&r.responses(ALICE, 1).await, "Avant")["response"], "Accept");

    // The endpoint now points to another server.
    let b = another_exchange(&r).await;
    rewrite(&running.path, &config_text(&b.ews_url(), 1, "auto"));
    let done = running.reload.apply().await.expect("the new file is taken");
    assert!(
        done.applied
            .iter()
            .any(|l| l.starts_with("[[exchange]] sim: a new EWS client")),
        "{done:?}"
    );
    assert!(done.needs_restart.is_empty(), "{done:?}");
    let Rig {
        sim: a,
        db,
        room,
        http,
        clock,
    } = r;
    let r = Rig {
        sim: b,
        db,
        room,
        http,
        clock,
    };
    // The streaming connection moved: one on the new server, none left on
    // the old one.
    wait_streams(&r, 1).await;
    let mut old_streams = usize::MAX;
    for _ in 0..100 {
        let v = control_json(&r.http, &a, "/subscriptions").await;
        old_streams = v["streams"].as_array().map_or(0, Vec::len);
        if old_streams == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(old_streams, 0, "the old server still holds a streaming connection");

    r.invite(ALICE, "Après", "2026-12-02T09:00:00", "2026-12-02T10:00:00")
        .await;
    let got = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&got, "Après")["response"], "Accept");
    // Each request has exactly one answer, on its own server.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(responses_in(&r.http, &r.sim, ALICE).await.len(), 1);
    assert_eq!(responses_in(&r.http, &a, ALICE).await.len(), 1);
    assert_eq!(decisions(&r).await, 2);
    // The web site's bookings go to the new server too.
    let start = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 12, 4, 9, 0, 0)
        .single()
        .expect("valid");
    r.web_booking("web-apres-rechargement", "Réservée sur le site", start)
        .await;
    running.daemon.outbox_wake().notify_one();
    assert_eq!(crate::daemon::wait_in_calendar(&r, "Réservée sur le site").await, 1);
    let old = control_json(&r.http, &a, &format!("/mailboxes/{ROOM}/calendar")).await;
    assert!(
        old["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|i| i["subject"] != "Réservée sur le site")),
        "nothing reaches the old server: {old}"
    );

    // A file with a problem is refused and the daemon keeps its settings.
    rewrite(
        &running.path,
        &config_text(&r.sim.ews_url(), 1, "auto").replace("auth = \"ntlm\"", "auth = \"kerberos\""),
    );
    let refused = running.reload.apply().await.expect_err("a wrong value is refused");
    assert!(refused.contains("auth"), "{refused}");
    r.invite(BOB, "Toujours là", "2026-12-03T09:00:00", "2026-12-03T10:00:00")
        .await;
    assert_eq!(
        response_of(&r.responses(BOB, 1).await, "Toujours là")["response"],
        "Accept"
    );
    // Two invitations and the web booking before, this one now.
    assert_eq!(decisions(&r).await, 4);
    running.daemon.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_polling_interval_and_a_new_change_detection_apply_at_the_next_round() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    // Polled hourly, no subscription.
    let mut running = start(&r, &config_text(&r.sim.ews_url(), 3600, "poll"), test_watch());
    // The first pass (at start) is over once the Inbox state is saved.
    for _ in 0..100 {
        let saved: Option<bool> =
            sqlx::query_scalar("SELECT inbox_sync_state IS NOT NULL FROM mailbox_sync WHERE resource_id = $1")
                .bind(r.room)
                .fetch_optional(r.db.pool())
                .await
                .expect("sync state");
        if saved == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.invite(ALICE, "Lent", "2026-12-01T09:00:00", "2026-12-01T10:00:00")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        responses_in(&r.http, &r.sim, ALICE).await.is_empty(),
        "nothing should answer before the next hourly poll"
    );

    rewrite(&running.path, &config_text(&r.sim.ews_url(), 1, "poll"));
    let done = running.reload.apply().await.expect("the new file is taken");
    assert!(
        done.applied
            .iter()
            .any(|l| l == "polling every 1 s from the next round"),
        "{done:?}"
    );
    // The same client: nothing was rebuilt.
    assert!(!done.applied.iter().any(|l| l.starts_with("[[exchange]]")), "{done:?}");
    assert_eq!(response_of(&r.responses(ALICE, 1).await, "Lent")["response"], "Accept");

    // Subscriptions on: the mailbox is streamed from its next round.
    rewrite(&running.path, &config_text(&r.sim.ews_url(), 3600, "auto"));
    running.reload.apply().await.expect("the new file is taken");
    wait_streams(&r, 1).await;
    r.invite(BOB, "Vite", "2026-12-02T09:00:00", "2026-12-02T10:00:00")
        .await;
    assert_eq!(response_of(&r.responses(BOB, 1).await, "Vite")["response"], "Accept");
    assert_eq!(responses_in(&r.http, &r.sim, ALICE).await.len(), 1);
    running.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_resa_serve_use_the_new_exchange_endpoint() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ews.pwd"), "S3rvice!\n").expect("password file");
    let path = dir.path().join("resa.toml");
    let text = |ews: &str| {
        config_text(ews, 1, "auto")
            .replace("postgres://resa@127.0.0.1:5432/resa", &r.db.url)
            .replace(
                "[log]",
                "[web]\nlisten = \"127.0.0.1:0\"\nsecure_cookies = false\n\n[log]",
            )
    };
    rewrite(&path, &text(&r.sim.ews_url()));
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_resa"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("resa serve starts");
    r.invite(ALICE, "Avant", "2026-12-01T09:00:00", "2026-12-01T10:00:00")
        .await;
    assert_eq!(response_of(&r.responses(ALICE, 1).await, "Avant")["response"], "Accept");

    let b = another_exchange(&r).await;
    rewrite(&path, &text(&b.ews_url()));
    let pid = child.id().expect("pid");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    let Rig {
        sim: a,
        db,
        room,
        http,
        clock,
    } = r;
    let r = Rig {
        sim: b,
        db,
        room,
        http,
        clock,
    };
    r.invite(ALICE, "Après", "2026-12-02T09:00:00", "2026-12-02T10:00:00")
        .await;
    assert_eq!(response_of(&r.responses(ALICE, 1).await, "Après")["response"], "Accept");
    assert_eq!(responses_in(&r.http, &a, ALICE).await.len(), 1);
    let logged = std::fs::read_to_string(dir.path().join("serve.log")).expect("log");
    assert!(logged.contains("config.reloaded"), "{logged}");
    assert!(!logged.contains("S3rvice!"), "a secret reached the log");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("resa serve stops")
        .expect("status");
    assert!(status.success(), "{status}");
    a.shutdown().await;
}

/// `[[directory]]` pointing at `url` (nothing listens there: the sync task
/// only logs that the directory cannot be reached).
fn directory_text(url: &str) -> String {
    format!(
        r#"
[[directory]]
name = "pc"
organisation = "plaine-commune"
url = "{url}"
starttls = false
bind_dn = "CN=svc-resa,OU=Comptes de service,DC=pc,DC=local"
bind_password_file = "ews.pwd"
user_base_dn = "OU=Agents,DC=pc,DC=local"
group_base_dn = "OU=Groupes,DC=pc,DC=local"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_gives_the_web_login_the_new_directory_settings() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let before = format!(
        "{}{}",
        config_text(&r.sim.ews_url(), 1, "auto"),
        directory_text("ldaps://127.0.0.1:1")
    );
    let mut running = start(&r, &before, test_watch());
    let cfg = config::load(&running.path).unwrap_or_else(|p| panic!("{p}"));
    let secrets = SecretSource::system(running._dir.path().to_owned());
    let plan = runtime::directory_plan(&cfg, &secrets).expect("plan");
    let web = resa::web::Directories::new(plan.iter().map(|d| d.settings.clone()).collect());
    let clock: SharedClock = Arc::new(r.clock.clone());
    let mut tasks = runtime::DirectoryTasks::new(r.db.store().clone(), clock);
    tasks.follow(plan).await;
    running.reload = running.reload.with_directories(tasks, web.clone());
    assert_eq!(web.get()[0].url, "ldaps://127.0.0.1:1");

    let after = format!(
        "{}{}",
        config_text(&r.sim.ews_url(), 1, "auto"),
        directory_text("ldaps://127.0.0.2:1")
    );
    std::fs::write(&running.path, after).expect("new config");
    let done = running.reload.apply().await.expect("reloaded");
    assert_eq!(web.get()[0].url, "ldaps://127.0.0.2:1");
    assert!(
        done.applied
            .iter()
            .any(|a| a.contains("web login uses the new LDAP settings")),
        "{done:?}"
    );
    assert!(!done.needs_restart.iter().any(|n| n.contains("directory")), "{done:?}");
    if let Some(tasks) = running.reload.directories.take() {
        tasks.stop().await;
    }
    running.daemon.shutdown().await;
}
