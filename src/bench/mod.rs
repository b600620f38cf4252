//! `resa bench`: how fast resa is and where its cost goes, measured the same
//! way every time.
//!
//! For each mailbox count asked, a fresh database on a private PostgreSQL
//! cluster, the Exchange simulator in this process with that many room
//! mailboxes, and the daemon as a child process (`resa serve`, so its CPU
//! time and memory are its own, read from `/proc`). Then three phases:
//! idle (EWS calls per mailbox-hour), a steady request rate with a realistic
//! mix (decision latency, CPU and EWS calls per decision), and a burst
//! (saturation throughput). Latency runs from the moment the request lands
//! in the room's Inbox to the moment the organiser's Inbox holds the answer,
//! both read from the simulator's own timestamps of those items.
//!
//! Then micro-measurements of the pieces a decision is made of
//! ([`micro`]) and, as a reference point, the same 512-change
//! SyncFolderItems response parsed by exchangelib.

pub mod load;
pub mod micro;
pub mod report;

use crate::devdb::Cluster;
use crate::store::Store;
use sqlx::Connection as _;
use std::path::PathBuf;

pub use report::Report;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// One load run per count.
    pub mailboxes: Vec<usize>,
    /// Length of the steady phase, seconds.
    pub duration_secs: u64,
    /// Length of the idle phase, seconds.
    pub idle_secs: u64,
    /// Requests per second in the steady phase.
    pub rate: u32,
    /// Requests sent at once for the saturation phase.
    pub burst: usize,
    /// `poll_interval_seconds` of the daemon's configuration (used when it
    /// polls, the last fallback of change detection).
    pub poll_interval_secs: u64,
    /// The `resa` binary run as the daemon (`resa serve`).
    pub resa_bin: PathBuf,
    /// Skip the micro-measurements (the CI check runs the load only once).
    pub micro: bool,
    /// Bookings generated for the report queries.
    pub report_bookings: u64,
    /// Only the report queries (`resa bench --only reports`).
    pub only_reports: bool,
    /// Python of a virtualenv with exchangelib, for the reference parse.
    pub exchangelib_python: Option<PathBuf>,
    /// Where the cluster, the daemon's configuration and logs go; removed
    /// at the end unless `keep` is set.
    pub work_dir: PathBuf,
    pub keep: bool,
}

/// Errors end the benchmark with a message; partial results are printed
/// as they come.
pub type BenchResult<T> = Result<T, String>;

pub(crate) fn err<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{context}: {e}")
}

/// Runs everything asked and returns the report.
pub async fn run(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> BenchResult<Report> {
    std::fs::create_dir_all(&opts.work_dir).map_err(err("work directory"))?;
    let work = opts.work_dir.canonicalize().map_err(err("work directory"))?;
    let pg_dir = work.join("pg");
    progress("PostgreSQL…");
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&pg_dir))
        .await
        .map_err(err("PostgreSQL"))?
        .map_err(err("PostgreSQL"))?;
    let mut report = Report::new(report::Machine::read(), opts);
    if opts.only_reports {
        let (timings, reports, reports_missing) = match micro::reports(&cluster, opts.report_bookings, progress).await {
            Ok((build, reports)) => (build, reports, None),
            Err(e) => (Vec::new(), Vec::new(), Some(e)),
        };
        report.micro = Some(report::Micro {
            timings,
            reports,
            reports_missing,
            exchangelib: None,
            exchangelib_missing: Some("--only reports".to_owned()),
        });
        drop(cluster);
        if !opts.keep {
            let _ = std::fs::remove_dir_all(&work);
        }
        return Ok(report);
    }
    for &n in &opts.mailboxes {
        progress(&format!("{n} boîtes / mailboxes…"));
        let db = fresh_database(&cluster, &format!("bench_{n}")).await?;
        let run = load::run(opts, &cluster, &db, n, &work, progress).await?;
        progress(&run.summary_line());
        report.runs.push(run);
    }
    if opts.micro {
        progress("micro-mesures / micro-measurements…");
        let db = fresh_database(&cluster, "bench_micro").await?;
        let store = Store::connect(&cluster.url(&db), 4).await.map_err(err("PostgreSQL"))?;
        store.migrate().await.map_err(err("migration"))?;
        report.micro = Some(
            micro::run(
                &store,
                &cluster,
                opts.report_bookings,
                &work,
                opts.exchangelib_python.as_deref(),
                progress,
            )
            .await?,
        );
        store.pool().close().await;
    }
    drop(cluster);
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(report)
}

/// Creates a database on the cluster (new with each run, like the demo's
/// own `CREATE DATABASE`); returns its name.
pub(crate) async fn fresh_database(cluster: &Cluster, name: &str) -> BenchResult<String> {
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .map_err(err("PostgreSQL"))?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .map_err(err("PostgreSQL"))?;
    let _ = admin.close().await;
    Ok(name.to_owned())
}
