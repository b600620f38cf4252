//! `resa bench` end to end, small: it must still work (every request of the
//! mix answered, figures read from the daemon's process and metrics, the
//! micro-measurements and exchangelib's reference parse), not be fast.

use std::process::Command;

fn exchangelib_python() -> String {
    std::env::var("RESA_EXCHANGELIB_PYTHON")
        .expect("RESA_EXCHANGELIB_PYTHON must name a Python with exchangelib (see .ci/exchangelib-venv.sh)")
}

#[test]
fn a_small_benchmark_measures_every_figure() {
    let work = tempfile::tempdir().expect("temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_resa"))
        .args([
            "bench",
            "--mailboxes",
            "30",
            "--duration",
            "6",
            "--idle",
            "3",
            "--rate",
            "20",
            "--burst",
            "40",
            "--poll-interval",
            "1",
            "--report-bookings",
            "20000",
            "--json",
            "--exchangelib-python",
        ])
        .arg(exchangelib_python())
        .arg("--work-dir")
        .arg(work.path().join("bench"))
        .output()
        .expect("resa bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "resa bench failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on standard output");

    let run = &report["runs"][0];
    assert_eq!(run["mailboxes"], 30);
    let steady = &run["steady"];
    // Every kind of the mix was sent, and every request but the
    // cancellations got its answer in the organiser's Inbox.
    let sent = steady["sent"].as_object().expect("sent by kind");
    assert!(sent.contains_key("single") && sent.contains_key("series"), "{sent:?}");
    let answered = steady["latency_ms"]["count"].as_u64().expect("count");
    assert!(answered >= 60, "only {answered} answers: {stderr}");
    assert_eq!(steady["unanswered"], 0, "{stderr}");
    let p50 = steady["latency_ms"]["p50"].as_f64().expect("p50");
    let p99 = steady["latency_ms"]["p99"].as_f64().expect("p99");
    assert!(p50 > 0.0 && p99 >= p50, "p50 {p50} p99 {p99}");
    assert!(steady["decisions"].as_u64().expect("decisions") >= answered);
    assert!(steady["cpu_ms_per_decision"].as_f64().expect("cpu") > 0.0);
    assert!(steady["ews_calls"]["CreateItem"].as_u64().unwrap_or(0) > 0, "{steady}");
    // The burst was answered in full.
    assert_eq!(run["saturation"]["answered"], 40);
    assert!(run["saturation"]["decisions_per_sec"].as_f64().expect("throughput") > 0.0);
    // The daemon's own process was measured.
    assert!(run["rss_mb"].as_f64().expect("rss") > 1.0);
    assert!(run["threads"].as_u64().expect("threads") >= 1);
    assert!(run["idle"]["window_secs"].as_f64().expect("idle window") >= 3.0);

    let micro = &report["micro"];
    let names: Vec<&str> = micro["timings"]
        .as_array()
        .expect("timings")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for expected in ["SyncFolderItems 512", "réunion simple", "2 ans", "10 000 réservations"] {
        assert!(
            names.iter().any(|n| n.contains(expected)),
            "no {expected:?} in {names:?}"
        );
    }
    let reports = micro["reports"].as_array().expect("report timings");
    assert_eq!(reports.len(), 8, "{}", micro["reports_missing"]);
    assert!(reports.iter().all(|r| r["median_ms"].as_f64().unwrap_or(0.0) > 0.0));
    assert!(
        micro["exchangelib"]["median_ms"].as_f64().unwrap_or(0.0) > 0.0,
        "exchangelib: {}",
        micro["exchangelib_missing"]
    );

    // And the table for people names the budgets.
    let out = Command::new(env!("CARGO_BIN_EXE_resa"))
        .args([
            "bench",
            "--mailboxes",
            "10",
            "--duration",
            "2",
            "--idle",
            "1",
            "--burst",
            "5",
            "--poll-interval",
            "1",
            "--no-micro",
        ])
        .arg("--work-dir")
        .arg(work.path().join("table"))
        .output()
        .expect("resa bench runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("latence p99 (ms)") && table.contains("< 2 ms"),
        "{table}"
    );
    assert!(
        !work.path().join("table").exists(),
        "the work directory is removed at the end"
    );
}
