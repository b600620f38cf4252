//! Injected faults: what a real Exchange does on a bad day, per mailbox or
//! for everyone, set from the seed or from `POST /_sim/faults`.
//!
//! A rule matches a request by mailbox (the impersonated or own mailbox)
//! and operation; it fires `count` times (forever when absent) or inside
//! an outage window.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Waits before answering normally.
    Latency { ms: u64 },
    /// A SOAP fault ErrorServerBusy with BackOffMilliseconds, HTTP 500.
    ServerBusy { back_off_ms: u64 },
    /// A bare HTTP status (500, 503) with no SOAP envelope.
    Http { status: u16 },
    /// The connection closes halfway through the response body.
    Reset,
    /// SyncFolderItems answers ErrorInvalidSyncStateData.
    InvalidSyncState,
    /// HTTP 503 for every EWS request between `from` and `until`.
    Outage {
        #[serde(default)]
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    },
}

/// One rule. (serde cannot deny unknown fields through `flatten`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(flatten)]
    pub fault: FaultKind,
    /// Only requests acting on this mailbox; every request when absent.
    #[serde(default)]
    pub mailbox: Option<String>,
    /// Only this operation (`SyncFolderItems`); every one when absent.
    #[serde(default)]
    pub operation: Option<String>,
    /// How many times it fires; without limit when absent.
    #[serde(default)]
    pub count: Option<u32>,
}

/// The active rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    pub rules: Vec<FaultRule>,
}

impl Faults {
    pub fn new(rules: Vec<FaultRule>) -> Self {
        Self { rules }
    }

    /// The faults that fire for this request, consuming their counts.
    /// Latency comes first so that a slow answer can also be an error.
    pub fn take(&mut self, mailbox: Option<&str>, operation: &str, now: DateTime<Utc>) -> Vec<FaultKind> {
        let mut fired = Vec::new();
        for r in &mut self.rules {
            if r.count == Some(0) {
                continue;
            }
            if let Some(m) = &r.mailbox
                && mailbox.is_none_or(|x| !x.eq_ignore_ascii_case(m))
            {
                continue;
            }
            if let Some(op) = &r.operation
                && !op.eq_ignore_ascii_case(operation)
            {
                continue;
            }
            if let FaultKind::Outage { from, until } = &r.fault
                && (now >= *until || from.is_some_and(|f| now < f))
            {
                continue;
            }
            if let Some(c) = r.count.as_mut() {
                *c -= 1;
            }
            fired.push(r.fault.clone());
        }
        self.rules.retain(|r| r.count != Some(0));
        fired.sort_by_key(|f| !matches!(f, FaultKind::Latency { .. }));
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_mailboxes_and_windows() {
        let rules: Vec<FaultRule> = serde_json::from_str(
            r#"[{"kind":"server_busy","back_off_ms":250,"mailbox":"salle@x.fr","count":1},
                {"kind":"latency","ms":5,"operation":"GetItem"},
                {"kind":"outage","until":"2026-01-01T00:00:00Z"}]"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut f = Faults::new(rules);
        let now = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert!(f.take(Some("bob@x.fr"), "SyncFolderItems", now).is_empty());
        assert_eq!(
            f.take(Some("SALLE@x.fr"), "GetItem", now),
            vec![FaultKind::Latency { ms: 5 }, FaultKind::ServerBusy { back_off_ms: 250 }]
        );
        assert_eq!(
            f.take(Some("salle@x.fr"), "GetItem", now),
            vec![FaultKind::Latency { ms: 5 }]
        );
    }
}
