//! The daemon's counters, rendered in the Prometheus text format at
//! `/metrics`. Plain atomics: a handful of series does not need a registry.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (seconds) of the decision latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Default)]
pub struct Metrics {
    decisions: Mutex<Vec<(String, u64)>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    ews_calls: Mutex<Vec<((String, String), u64)>>,
    backoffs: AtomicU64,
    outbox_sent: AtomicU64,
    outbox_failed: AtomicU64,
    messages_filed: AtomicU64,
    mailboxes_leased: AtomicI64,
    outbox_depth: AtomicI64,
    sync_errors: AtomicU64,
    subscriptions_rebuilt: AtomicU64,
    streams_dropped: AtomicU64,
    mailboxes_watched: AtomicI64,
}

fn bump<K: PartialEq + Clone>(list: &Mutex<Vec<(K, u64)>>, key: &K) {
    let mut l = list.lock().unwrap_or_else(|e| e.into_inner());
    match l.iter_mut().find(|(k, _)| k == key) {
        Some((_, n)) => *n += 1,
        None => l.push((key.clone(), 1)),
    }
}

impl Metrics {
    pub fn decision(&self, outcome: &str, latency: std::time::Duration) {
        bump(&self.decisions, &outcome.to_owned());
        let secs = latency.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn ews_call(&self, operation: &str, outcome: &str) {
        bump(&self.ews_calls, &(operation.to_owned(), outcome.to_owned()));
    }

    pub fn backoff(&self) {
        self.backoffs.fetch_add(1, Ordering::Relaxed);
    }

    pub fn outbox_sent(&self) {
        self.outbox_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn outbox_failed(&self) {
        self.outbox_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn message_filed(&self) {
        self.messages_filed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sync_error(&self) {
        self.sync_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_mailboxes_leased(&self, n: usize) {
        self.mailboxes_leased
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// A subscription the server lost was made again.
    pub fn subscription_rebuilt(&self) {
        self.subscriptions_rebuilt.fetch_add(1, Ordering::Relaxed);
    }

    /// A streaming connection ended without the server closing it.
    pub fn stream_dropped(&self) {
        self.streams_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Mailboxes covered by a working subscription gained (+1) or lost (-1).
    pub fn mailboxes_watched(&self, delta: i64) {
        self.mailboxes_watched.fetch_add(delta, Ordering::Relaxed);
    }

    /// EWS calls made so far, by operation (every outcome).
    pub fn ews_calls_by_operation(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for ((op, _), n) in self.ews_calls.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            *out.entry(op.clone()).or_insert(0) += n;
        }
        out
    }

    pub fn set_outbox_depth(&self, n: i64) {
        self.outbox_depth.store(n, Ordering::Relaxed);
    }

    /// Decisions taken so far, by outcome.
    pub fn decisions_total(&self) -> u64 {
        self.decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, n)| n)
            .sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# HELP resa_decisions_total Decisions taken, by outcome.");
        let _ = writeln!(s, "# TYPE resa_decisions_total counter");
        for (outcome, n) in self.decisions.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(s, "resa_decisions_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP resa_decision_latency_seconds From reading a request to recording its decision."
        );
        let _ = writeln!(s, "# TYPE resa_decision_latency_seconds histogram");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let n = self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(s, "resa_decision_latency_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(s, "resa_decision_latency_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(s, "resa_decision_latency_seconds_sum {sum}");
        let _ = writeln!(s, "resa_decision_latency_seconds_count {count}");
        let _ = writeln!(s, "# HELP resa_ews_calls_total EWS calls, by operation and outcome.");
        let _ = writeln!(s, "# TYPE resa_ews_calls_total counter");
        for ((op, outcome), n) in self.ews_calls.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                s,
                "resa_ews_calls_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        for (name, help, kind, v) in [
            (
                "resa_ews_backoffs_total",
                "Pauses asked by Exchange (ErrorServerBusy).",
                "counter",
                self.backoffs.load(Ordering::Relaxed) as i64,
            ),
            (
                "resa_outbox_sent_total",
                "Outbox commands that took effect.",
                "counter",
                self.outbox_sent.load(Ordering::Relaxed) as i64,
            ),
            (
                "resa_outbox_failures_total",
                "Outbox attempts that failed.",
                "counter",
                self.outbox_failed.load(Ordering::Relaxed) as i64,
            ),
            (
                "resa_messages_filed_total",
                "Mails in resource mailboxes filed without a decision.",
                "counter",
                self.messages_filed.load(Ordering::Relaxed) as i64,
            ),
            (
                "resa_sync_errors_total",
                "Mailbox syncs that failed.",
                "counter",
                self.sync_errors.load(Ordering::Relaxed) as i64,
            ),
            (
                "resa_mailboxes_leased",
                "Mailboxes this instance serves.",
                "gauge",
                self.mailboxes_leased.load(Ordering::Relaxed),
            ),
            (
                "resa_subscriptions_rebuilt_total",
                "Subscriptions made again after Exchange lost them.",
                "counter",
                self.subscriptions_rebuilt.load(Ordering::Relaxed) as i64,
            ),
            (
                "resa_streams_dropped_total",
                "Streaming connections that ended without the server closing them.",
                "counter",
                self.streams_dropped.load(Ordering::Relaxed) as i64,
            ),
            (
                "resa_mailboxes_watched",
                "Mailboxes covered by a working subscription (the others are polled).",
                "gauge",
                self.mailboxes_watched.load(Ordering::Relaxed),
            ),
            (
                "resa_outbox_depth",
                "Outbox commands waiting.",
                "gauge",
                self.outbox_depth.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} {kind}");
            let _ = writeln!(s, "{name} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.decision("accept", Duration::from_millis(30));
        m.decision("decline", Duration::from_millis(300));
        m.ews_call("GetItem", "ok");
        let text = m.render();
        assert!(text.contains("resa_decisions_total{outcome=\"accept\"} 1"));
        assert!(text.contains("resa_decision_latency_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("resa_decision_latency_seconds_bucket{le=\"0.5\"} 2"));
        assert!(text.contains("resa_decision_latency_seconds_count 2"));
        assert!(text.contains("resa_ews_calls_total{operation=\"GetItem\",outcome=\"ok\"} 1"));
        assert_eq!(m.decisions_total(), 2);
    }
}
