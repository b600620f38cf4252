//! The background task of `resa serve` that keeps one directory in sync.
//!
//! Every `every`, an incremental sync (full when due: see
//! [`super::sync::full_sync_reason`]). After a failure it retries sooner,
//! with a doubling delay capped at `every`, so a DC back from maintenance is
//! used again within minutes without hammering one that stays down.

use std::time::Duration;

use tokio::sync::watch;

use super::settings::DirectorySettings;
use super::sync::sync_once_with_clock;
use crate::clock::SharedClock;
use crate::store::Store;

/// The first retry delay after a failed sync.
const FIRST_RETRY: Duration = Duration::from_secs(30);

/// The wait before the next attempt after `failures` failures in a row.
pub fn retry_delay(failures: u32, every: Duration) -> Duration {
    if failures == 0 {
        return every;
    }
    let factor = 1u32.checked_shl(failures.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
    FIRST_RETRY.saturating_mul(factor).min(every)
}

/// Syncs `settings` until `stop` holds `true` (or its sender is dropped).
/// A sync in progress when asked to stop is abandoned: its transaction is
/// rolled back, so the store keeps the previous sync's data.
pub async fn run(
    store: Store,
    settings: DirectorySettings,
    every: Duration,
    clock: SharedClock,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    while !*stop.borrow() {
        let name = settings.name.clone();
        let sync = sync_once_with_clock(&store, &settings, false, clock.as_ref(), |p| {
            tracing::debug!(directory.name = %name, "{p}");
        });
        let outcome = tokio::select! {
            outcome = sync => outcome,
            _ = stop.changed() => return,
        };
        // sync_once already logged the outcome and recorded any error.
        failures = match outcome {
            Ok(_) => 0,
            Err(_) => failures.saturating_add(1),
        };
        tokio::select! {
            _ = tokio::time::sleep(retry_delay(failures, every)) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_the_period() {
        let every = Duration::from_secs(300);
        let secs: Vec<u64> = (0..7).map(|f| retry_delay(f, every).as_secs()).collect();
        assert_eq!(secs, [300, 30, 60, 120, 240, 300, 300]);
        assert_eq!(retry_delay(u32::MAX, every), every);
    }
}
