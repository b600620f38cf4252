//! Bad days: Exchange throttling, a long outage, and a daemon killed in the
//! middle of a batch. Afterwards every request has exactly one answer.

use crate::daemon::{ALICE, Rig, rig};
use resa::clock::Clock as _;
use resa::ews::soap::ServerVersion;
use serde_json::json;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Invites `n` meetings from Alice on distinct slots of December 2026.
async fn invite_many(r: &Rig, prefix: &str, n: u32) {
    for i in 0..n {
        let day = 7 + i / 8;
        let hour = 8 + i % 8;
        r.invite(
            ALICE,
            &format!("{prefix} {i}"),
            &format!("2026-12-{day:02}T{hour:02}:00:00"),
            &format!("2026-12-{day:02}T{hour:02}:45:00"),
        )
        .await;
    }
}

/// Waits for Alice to hold `n` responses, then checks that each meeting
/// got exactly one.
async fn exactly_one_answer_each(r: &Rig, prefix: &str, n: usize) {
    let got = r.responses(ALICE, n).await;
    // Late duplicates would arrive after the last expected answer.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut per_subject: HashMap<String, usize> = HashMap::new();
    for item in r.inbox(ALICE).await {
        if item["kind"] == "MeetingResponse"
            && let Some(s) = item["subject"].as_str()
            && s.contains(prefix)
        {
            *per_subject.entry(s.to_owned()).or_default() += 1;
        }
    }
    assert!(got.len() >= n);
    assert_eq!(per_subject.len(), n, "{per_subject:?}");
    assert!(
        per_subject.values().all(|c| *c == 1),
        "an answer was doubled: {per_subject:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_server_busy_faults_delays_answers_but_loses_and_doubles_none() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    r.control(
        "/faults",
        json!({ "faults": [
            { "kind": "server_busy", "back_off_ms": 200, "count": 25 },
            { "kind": "http", "status": 503, "operation": "CreateItem", "count": 3 },
            { "kind": "reset", "operation": "GetItem", "count": 2 },
        ]}),
    )
    .await;
    let daemon = r.daemon(r.db.store(), "a");
    invite_many(&r, "Tempête", 6).await;
    exactly_one_answer_each(&r, "Tempête", 6).await;
    let leftover = r.control("/faults", json!({})).await;
    // No answer can get through before each fault has fired all its times
    // (every request meets them first), so none is left.
    let left: i64 = leftover["faults"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["count"].as_i64()).sum())
        .unwrap_or_default();
    assert_eq!(left, 0, "every fault fired: {leftover}");
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_minute_outage_is_waited_out_and_every_request_answered_once() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let daemon = r.daemon(r.db.store(), "a");
    let until = r.clock.now() + chrono::Duration::minutes(10);
    r.control("/faults", json!({ "faults": [{ "kind": "outage", "until": until }] }))
        .await;
    invite_many(&r, "Panne", 4).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        r.inbox(ALICE).await.iter().all(|i| i["kind"] != "MeetingResponse"),
        "nothing gets through during the outage"
    );
    let errors: Option<String> = sqlx::query_scalar("SELECT last_error FROM mailbox_sync")
        .fetch_one(r.db.pool())
        .await
        .expect("sync state");
    assert!(errors.is_some(), "the failing mailbox is shown with its error");
    // Ten minutes pass.
    r.clock.advance(chrono::Duration::minutes(11));
    exactly_one_answer_each(&r, "Panne", 4).await;
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

/// A daemon whose clock jumps past its leases (a suspended virtual machine,
/// a long pause): its worker finds the lease lapsed and stops, the lease is
/// taken again at the next round, and a new worker answers what came in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_paused_past_its_leases_takes_its_mailboxes_back() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    // Leases renewed every 3 s, mailboxes polled every 100 ms: after the
    // jump, the worker sees the lapsed lease long before the renewal.
    let pacing = resa::runtime::Pacing {
        lease: chrono::Duration::seconds(9),
        poll: Duration::from_millis(100),
        outbox_idle: Duration::from_millis(100),
        reconcile: Duration::from_millis(300),
    };
    let watch = resa::sync::watch::WatchPacing {
        enabled: false,
        ..crate::daemon::test_watch()
    };
    let daemon = r.daemon_paced(r.db.store(), "a", pacing, watch);
    r.invite(ALICE, "Avant", "2026-12-14T10:00:00", "2026-12-14T10:45:00")
        .await;
    r.responses(ALICE, 1).await;
    r.clock.advance(chrono::Duration::hours(1));
    invite_many(&r, "Après", 2).await;
    r.responses(ALICE, 3).await;
    exactly_one_answer_each(&r, "Après", 2).await;
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

fn serve(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_resa"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RESA_TEST_EWS_PASSWORD", "S3rvice!")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("resa serve starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_batch_is_replaced_and_nothing_is_lost_or_doubled() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("resa.toml");
    std::fs::write(
        &config,
        format!(
            r#"version = 1
[database]
url = "{db}"
[web]
listen = "127.0.0.1:0"
[[exchange]]
name = "sim"
url = "{ews}"
version = "Exchange2010_SP2"
auth = "ntlm"
username = "svc-resa"
domain = "PC"
password_env = "RESA_TEST_EWS_PASSWORD"
poll_interval_seconds = 1
[log]
format = "json"
[daemon]
lease_seconds = 10
"#,
            db = r.db.url,
            ews = r.sim.ews_url()
        ),
    )
    .expect("config");
    // Slow answers widen the window in which the kill lands mid-batch.
    r.control(
        "/faults",
        json!({ "faults": [{ "kind": "latency", "ms": 150, "operation": "CreateItem" }] }),
    )
    .await;
    let mut first = serve(&config);
    invite_many(&r, "Coupure", 12).await;
    // Kill it once it has answered some, but not all.
    let mut answered = 0;
    for _ in 0..300 {
        answered = r
            .inbox(ALICE)
            .await
            .iter()
            .filter(|i| i["kind"] == "MeetingResponse")
            .count();
        if answered >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let _ = first.wait();
    assert!(
        answered < 12,
        "the kill came too late to be mid-batch ({answered} answered)"
    );
    let mut second = serve(&config);
    exactly_one_answer_each(&r, "Coupure", 12).await;
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(r.db.pool())
        .await
        .expect("decisions");
    assert_eq!(decisions, 12, "each request decided once");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("stop");
    let status = second.wait().expect("exit");
    assert!(status.success(), "a SIGTERM stops the daemon cleanly: {status}");
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_streaming_connections_and_a_server_restart_lose_and_double_nothing() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    // No polling to fall back on: what the drops lose, the watch path must
    // find again by itself.
    let daemon = r.daemon_with(
        r.db.store(),
        "a",
        Duration::from_secs(3600),
        crate::daemon::test_watch(),
    );
    crate::daemon::wait_streams(&r, 1).await;
    for (batch, prefix) in ["Coupure A", "Coupure B", "Coupure C"].iter().enumerate() {
        invite_many(&r, prefix, 4).await;
        // The connection breaks while requests arrive.
        r.control("/streams/drop", json!({})).await;
        if batch == 1 {
            r.control("/streams/drop", json!({})).await;
        }
    }
    // Exchange restarts: every subscription is forgotten.
    r.control("/restart", json!({})).await;
    invite_many(&r, "Coupure D", 4).await;
    exactly_one_answer_each(&r, "Coupure", 16).await;
    let text = daemon.metrics.render();
    assert!(!text.contains("resa_streams_dropped_total 0"), "{text}");
    assert!(!text.contains("resa_subscriptions_rebuilt_total 0"), "{text}");
    crate::daemon::wait_streams(&r, 1).await;
    daemon.shutdown().await;
    r.sim.shutdown().await;
}
