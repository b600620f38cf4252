//! The benchmark's results: JSON (`--json`) and a table for people, each
//! figure beside its budget from the design.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The budgets of DESIGN.md.
pub const BUDGET_P99_MS: f64 = 1000.0;
pub const BUDGET_CPU_MS_PER_DECISION: f64 = 2.0;
pub const BUDGET_RSS_MB: f64 = 200.0;
pub const BUDGET_IDLE_CALLS_PER_MAILBOX_HOUR: f64 = 1.0;
pub const BUDGET_REPORT_MS: f64 = 300.0;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub runs: Vec<LoadRun>,
    pub micro: Option<Micro>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    pub duration_secs: u64,
    pub idle_secs: u64,
    pub rate: u32,
    pub burst: usize,
    pub poll_interval_secs: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_mb: u64,
    pub kernel: String,
    /// `release` or `debug`: figures from a debug build mean little.
    pub build: &'static str,
    /// Load average when the benchmark started (others may share the machine).
    pub load_average: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim())
            })
            .unwrap_or("unknown")
            .to_owned();
        let memory_mb = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb / 1024)
            .unwrap_or(0);
        Machine {
            cpu_model,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_mb,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            build: if cfg!(debug_assertions) { "debug" } else { "release" },
            load_average: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        // Nearest rank.
        let at = |p: f64| {
            let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        Percentiles {
            count: v.len(),
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: v[v.len() - 1],
        }
    }
}

/// EWS calls counted by the daemon, by operation.
pub type Calls = BTreeMap<String, u64>;

pub fn total(calls: &Calls) -> u64 {
    calls.values().sum()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Idle {
    pub window_secs: f64,
    pub ews_calls: Calls,
    pub calls_per_mailbox_hour: f64,
    pub daemon_cpu_secs: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Steady {
    pub target_rate: u32,
    pub achieved_rate: f64,
    /// Requests sent, by kind of the mix.
    pub sent: BTreeMap<String, u64>,
    /// Latency of every answered request (cancellations get no answer).
    pub latency_ms: Percentiles,
    pub latency_by_kind_ms: BTreeMap<String, Percentiles>,
    /// Requests still without an answer when the phase ended (plus a grace
    /// period).
    pub unanswered: usize,
    pub decisions: u64,
    pub daemon_cpu_secs: f64,
    pub cpu_ms_per_decision: f64,
    pub ews_calls: Calls,
    pub ews_calls_per_decision: f64,
    /// The daemon's own measure, from reading a request to recording its
    /// decision (mean): the rest of the latency is detection and the reply.
    pub daemon_record_ms_mean: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Saturation {
    pub burst: usize,
    pub answered: usize,
    /// From the first request landing to the last answer.
    pub elapsed_secs: f64,
    pub decisions_per_sec: f64,
    pub daemon_cpu_secs: f64,
    pub cpu_ms_per_decision: f64,
    pub ews_calls_per_decision: f64,
    pub latency_ms: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadRun {
    pub mailboxes: usize,
    /// How the daemon learns of new mail (its configuration).
    pub change_detection: String,
    pub setup_secs: f64,
    /// From starting the daemon to every mailbox synchronised once.
    pub warmup_secs: f64,
    pub idle: Idle,
    pub steady: Steady,
    pub saturation: Saturation,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    pub threads: u64,
    /// The daemon's own counters at the end (outbox, subscriptions, errors).
    pub daemon_counters: BTreeMap<String, u64>,
}

impl LoadRun {
    pub fn summary_line(&self) -> String {
        format!(
            "{} boîtes : p99 {:.0} ms, {:.2} ms CPU/décision, {:.0} Mo, {:.2} appels EWS/boîte·h au repos, {:.0} décisions/s",
            self.mailboxes,
            self.steady.latency_ms.p99,
            self.steady.cpu_ms_per_decision,
            self.rss_mb,
            self.idle.calls_per_mailbox_hour,
            self.saturation.decisions_per_sec,
        )
    }
}

/// One timed operation: median and fastest of `iterations` runs.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub name: String,
    pub iterations: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    /// What was measured, in a few words.
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Micro {
    pub timings: Vec<Timing>,
    /// The report queries over 1 million bookings, each with its budget.
    pub reports: Vec<Timing>,
    /// Why the report queries were not measured, when they were not.
    pub reports_missing: Option<String>,
    pub exchangelib: Option<Timing>,
    pub exchangelib_missing: Option<String>,
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "DÉPASSÉ / OVER" }
}

impl Report {
    pub fn new(machine: Machine, opts: &super::BenchOptions) -> Self {
        Report {
            machine,
            settings: Settings {
                duration_secs: opts.duration_secs,
                idle_secs: opts.idle_secs,
                rate: opts.rate,
                burst: opts.burst,
                poll_interval_secs: opts.poll_interval_secs,
            },
            runs: Vec::new(),
            micro: None,
        }
    }

    /// The table printed for people.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(
            s,
            "Machine : {} × {}, {} Mo, Linux {}, build {}, charge {}",
            m.cpus, m.cpu_model, m.memory_mb, m.kernel, m.build, m.load_average
        );
        let st = &self.settings;
        let _ = writeln!(
            s,
            "Réglages / settings : {} req/s pendant {} s, repos {} s, rafale {} requêtes, poll {} s",
            st.rate, st.duration_secs, st.idle_secs, st.burst, st.poll_interval_secs
        );
        let _ = writeln!(s);
        // Columns as wide as the widest cell (the change detection names its
        // mode and counts), with at least two spaces between them.
        let width = self
            .runs
            .iter()
            .map(|r| r.change_detection.chars().count() + 2)
            .fold(16, usize::max);
        let header: String = self
            .runs
            .iter()
            .map(|r| format!("{:>width$}", format!("{} boîtes", r.mailboxes)))
            .collect();
        let _ = writeln!(s, "{:<46}{header}   budget", "mesure / measure");
        let row = |s: &mut String, name: &str, values: Vec<String>, budget: &str| {
            let _ = writeln!(
                s,
                "{:<46}{}   {}",
                name,
                values.iter().map(|v| format!("{v:>width$}")).collect::<String>(),
                budget
            );
        };
        let runs = &self.runs;
        row(
            &mut s,
            "détection des changements",
            runs.iter().map(|r| r.change_detection.clone()).collect(),
            "",
        );
        row(
            &mut s,
            "latence p50 (ms)",
            runs.iter().map(|r| format!("{:.0}", r.steady.latency_ms.p50)).collect(),
            "",
        );
        row(
            &mut s,
            "latence p95 (ms)",
            runs.iter().map(|r| format!("{:.0}", r.steady.latency_ms.p95)).collect(),
            "",
        );
        row(
            &mut s,
            "latence p99 (ms)",
            runs.iter().map(|r| format!("{:.0}", r.steady.latency_ms.p99)).collect(),
            "< 1000 ms à 10 000",
        );
        row(
            &mut s,
            "réponses reçues / answered",
            runs.iter()
                .map(|r| {
                    format!(
                        "{}/{}",
                        r.steady.latency_ms.count,
                        r.steady.latency_ms.count + r.steady.unanswered
                    )
                })
                .collect(),
            "",
        );
        row(
            &mut s,
            "démon : lecture → décision (ms, moyenne)",
            runs.iter()
                .map(|r| format!("{:.1}", r.steady.daemon_record_ms_mean))
                .collect(),
            "",
        );
        row(
            &mut s,
            "débit atteint / achieved (req/s)",
            runs.iter().map(|r| format!("{:.1}", r.steady.achieved_rate)).collect(),
            "",
        );
        row(
            &mut s,
            "saturation (décisions/s)",
            runs.iter()
                .map(|r| format!("{:.0}", r.saturation.decisions_per_sec))
                .collect(),
            "",
        );
        row(
            &mut s,
            "CPU démon / décision (ms), charge",
            runs.iter()
                .map(|r| format!("{:.2}", r.steady.cpu_ms_per_decision))
                .collect(),
            "< 2 ms",
        );
        row(
            &mut s,
            "CPU démon / décision (ms), saturation",
            runs.iter()
                .map(|r| format!("{:.2}", r.saturation.cpu_ms_per_decision))
                .collect(),
            "< 2 ms",
        );
        row(
            &mut s,
            "mémoire résidente / RSS (Mo)",
            runs.iter().map(|r| format!("{:.0}", r.rss_mb)).collect(),
            "< 200 Mo à 10 000",
        );
        row(
            &mut s,
            "pic RSS / peak (Mo)",
            runs.iter().map(|r| format!("{:.0}", r.peak_rss_mb)).collect(),
            "",
        );
        row(
            &mut s,
            "appels EWS / boîte·heure au repos",
            runs.iter()
                .map(|r| format!("{:.2}", r.idle.calls_per_mailbox_hour))
                .collect(),
            "≤ 1",
        );
        row(
            &mut s,
            "appels EWS / décision en charge",
            runs.iter()
                .map(|r| format!("{:.2}", r.steady.ews_calls_per_decision))
                .collect(),
            "",
        );
        row(
            &mut s,
            "démarrage : tout synchronisé (s)",
            runs.iter().map(|r| format!("{:.1}", r.warmup_secs)).collect(),
            "",
        );
        let _ = writeln!(s);
        for r in runs {
            let verdicts = [
                (
                    "p99",
                    r.mailboxes < 10_000 || r.steady.latency_ms.p99 < BUDGET_P99_MS && r.steady.unanswered == 0,
                ),
                (
                    "CPU",
                    r.steady.cpu_ms_per_decision < BUDGET_CPU_MS_PER_DECISION
                        && r.saturation.cpu_ms_per_decision < BUDGET_CPU_MS_PER_DECISION,
                ),
                ("RSS", r.mailboxes < 10_000 || r.rss_mb < BUDGET_RSS_MB),
                (
                    "idle",
                    r.idle.calls_per_mailbox_hour <= BUDGET_IDLE_CALLS_PER_MAILBOX_HOUR,
                ),
            ];
            let _ = writeln!(
                s,
                "{} boîtes : {}",
                r.mailboxes,
                verdicts
                    .iter()
                    .map(|(n, ok)| format!("{n} {}", mark(*ok)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let ops = |c: &Calls| c.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(s, "  repos {:.0} s : {}", r.idle.window_secs, ops(&r.idle.ews_calls));
            let _ = writeln!(s, "  charge : {}", ops(&r.steady.ews_calls));
            let _ = writeln!(s, "  compteurs / counters : {}", ops(&r.daemon_counters));
            let _ = writeln!(
                s,
                "  envoyées : {}",
                r.steady
                    .sent
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (kind, p) in &r.steady.latency_by_kind_ms {
                let _ = writeln!(
                    s,
                    "  {kind:<12} n={:<6} p50 {:>7.0} ms  p99 {:>7.0} ms",
                    p.count, p.p50, p.p99
                );
            }
        }
        if let Some(micro) = &self.micro {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "{:<58} {:>12} {:>12}",
                "micro-mesure / micro-measurement", "médiane ms", "min ms"
            );
            for t in micro.timings.iter().chain(micro.exchangelib.iter()) {
                let _ = writeln!(s, "{:<58} {:>12.3} {:>12.3}", t.name, t.median_ms, t.min_ms);
            }
            for t in &micro.reports {
                let _ = writeln!(
                    s,
                    "{:<58} {:>12.3} {:>12.3}   < 300 ms {}",
                    t.name,
                    t.median_ms,
                    t.min_ms,
                    mark(t.median_ms < BUDGET_REPORT_MS)
                );
            }
            if let Some(why) = &micro.reports_missing {
                let _ = writeln!(s, "rapports / reports : {why}");
            }
            if let Some(why) = &micro.exchangelib_missing {
                let _ = writeln!(s, "exchangelib : {why}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::{LoadRun, Percentiles, Report};

    #[test]
    fn table_columns_stay_apart_and_aligned_when_a_cell_is_wide() {
        let run = |mailboxes: usize| LoadRun {
            mailboxes,
            change_detection: format!("streaming {mailboxes}/{mailboxes}"),
            ..LoadRun::default()
        };
        let report = Report {
            machine: Default::default(),
            settings: Default::default(),
            runs: vec![run(100), run(1000), run(10000)],
            micro: None,
        };
        let table = report.table();
        let line = |start: &str| {
            table
                .lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no line {start} in\n{table}"))
                .to_owned()
        };
        let detection = line("détection");
        assert!(
            detection.contains("streaming 100/100  ") && detection.contains("1000/1000  streaming 10000/10000"),
            "{detection}"
        );
        // Every column ends where its header ends.
        let header = line("mesure");
        let p50 = line("latence p50");
        let end_of = |l: &str, cell: &str| l.find(cell).map(|i| l[..i + cell.len()].chars().count());
        assert_eq!(end_of(&header, "10000 boîtes"), end_of(&detection, "10000/10000"));
        assert_eq!(end_of(&header, "10000 boîtes"), Some(p50.trim_end().chars().count()));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v);
        assert_eq!((p.count, p.p50, p.p95, p.p99, p.max), (100, 50.0, 95.0, 99.0, 100.0));
        let one = Percentiles::of(&[7.0]);
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert_eq!(Percentiles::of(&[]).count, 0);
    }
}
