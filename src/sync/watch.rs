//! Change detection: what wakes a mailbox worker.
//!
//! Exchange 2010 SP1 and later: streaming subscriptions, grouped. One task
//! per group of at most [`WatchPacing::group_size`] leased mailboxes of an
//! endpoint subscribes each mailbox's Inbox and Calendar with the group's
//! anchor mailbox in `X-AnchorMailbox` and `X-PreferServerAffinity`, keeps
//! the `X-BackEndOverrideCookie` Exchange returns (the EWS client does), and
//! holds one GetStreamingEvents connection for the whole group, as
//! Microsoft documents for grouped subscriptions. An event sets a flag on
//! the mailbox's [`Signal`] and wakes its worker: an Inbox event runs the
//! SyncFolderItems pass, a Calendar event a reconciliation.
//!
//! Exchange 2007 SP1: a pull subscription per mailbox, read by the worker
//! itself with GetEvents at each tick ([`PullWatch`]).
//!
//! Whenever a subscription is lost (the connection dropped, the server
//! restarted, ErrorSubscriptionNotFound, an expired watermark,
//! ErrorInvalidSubscription) it is made again and the mailbox gets a
//! catch-up pass: its Inbox is read from the stored SyncState, which
//! Exchange keeps apart from subscriptions, so every change since the last
//! pass is seen, and its calendar is reconciled. When subscriptions keep
//! failing ([`WatchPacing::max_failures`] in a row) the mailboxes fall back
//! to polling with jitter until a subscription works again.
//!
//! The groups follow the leased set: the lease loop hands each group its
//! members after every round ([`Groups::update`]); a group whose members
//! changed unsubscribes the departed, subscribes the newcomers and reopens
//! its connection with the new set.

use super::SyncContext;
use crate::exchange::{EventBatch, EventStream as _, Exchange, ExchangeError, Subscription, WatchedFolder};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// How change detection is paced.
#[derive(Debug, Clone)]
pub struct WatchPacing {
    /// Subscriptions at all; off means polling only.
    pub enabled: bool,
    /// GetStreamingEvents' ConnectionTimeout, in minutes (1 to 30).
    pub stream_minutes: u32,
    /// Mailboxes per streaming connection (Exchange allows 200).
    pub group_size: usize,
    /// Between two SyncFolderItems passes of a mailbox that a working
    /// subscription covers (a safety net: events are what wake it).
    pub safety_sync: StdDuration,
    /// Between two reconciliations of a watched mailbox without calendar
    /// events.
    pub safety_reconcile: StdDuration,
    /// Calendar events trigger a reconciliation at most this often.
    pub reconcile_gap: StdDuration,
    /// Subscription failures in a row before the mailboxes are polled.
    pub max_failures: u32,
    /// First wait before subscribing again after a failure; doubles up to
    /// `retry_max`.
    pub retry: StdDuration,
    pub retry_max: StdDuration,
}

impl Default for WatchPacing {
    /// The idle cost per mailbox-hour: one safety sync every three hours,
    /// one reconciliation every four, and two connections per group of 200
    /// an hour: about 0.6 EWS call, under DESIGN.md's budget of one.
    fn default() -> Self {
        WatchPacing {
            enabled: true,
            stream_minutes: 30,
            group_size: 200,
            safety_sync: StdDuration::from_secs(3 * 3600),
            safety_reconcile: StdDuration::from_secs(4 * 3600),
            reconcile_gap: StdDuration::from_secs(60),
            max_failures: 3,
            retry: StdDuration::from_secs(1),
            retry_max: StdDuration::from_secs(300),
        }
    }
}

impl WatchPacing {
    fn backoff(&self, failures: u32) -> StdDuration {
        self.retry.saturating_mul(1 << failures.min(16)).min(self.retry_max)
    }
}

/// What one mailbox worker is woken for. Flags survive until the worker
/// takes them, so a wake-up is never lost.
#[derive(Debug, Default)]
pub struct Signal {
    notify: Notify,
    inbox: AtomicBool,
    calendar: AtomicBool,
    catch_up: AtomicBool,
    watched: AtomicBool,
}

/// The flags a worker took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wake {
    pub inbox: bool,
    pub calendar: bool,
    /// A subscription was (re)made: read the Inbox and reconcile.
    pub catch_up: bool,
}

impl Signal {
    pub fn inbox(&self) {
        self.inbox.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    pub fn calendar(&self) {
        self.calendar.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    pub fn catch_up(&self) {
        self.catch_up.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn folder(&self, folder: WatchedFolder) {
        match folder {
            WatchedFolder::Inbox => self.inbox(),
            WatchedFolder::Calendar => self.calendar(),
        }
    }

    /// Marks the mailbox covered (or not) by a working subscription, which
    /// sets its worker's pace; true when that changed.
    pub fn set_watched(&self, on: bool, metrics: &crate::metrics::Metrics) -> bool {
        let changed = self.watched.swap(on, Ordering::SeqCst) != on;
        if changed {
            metrics.mailboxes_watched(if on { 1 } else { -1 });
            self.notify.notify_one();
        }
        changed
    }

    pub fn is_watched(&self) -> bool {
        self.watched.load(Ordering::SeqCst)
    }

    pub fn take(&self) -> Wake {
        Wake {
            inbox: self.inbox.swap(false, Ordering::SeqCst),
            calendar: self.calendar.swap(false, Ordering::SeqCst),
            catch_up: self.catch_up.swap(false, Ordering::SeqCst),
        }
    }

    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// A leased mailbox as a streaming group knows it.
#[derive(Debug, Clone)]
pub struct Member {
    pub resource_id: Uuid,
    pub smtp: String,
    pub signal: Arc<Signal>,
}

struct Group {
    /// Lower-case addresses of the members; the anchor is one of them.
    members: BTreeMap<String, Member>,
    anchor: String,
    tx: watch::Sender<Vec<Member>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Group {
    /// The member list a task works with: the anchor first.
    fn list(&self) -> Vec<Member> {
        let mut out: Vec<Member> = self.members.get(&self.anchor).cloned().into_iter().collect();
        out.extend(
            self.members
                .iter()
                .filter(|(k, _)| **k != self.anchor)
                .map(|(_, m)| m.clone()),
        );
        out
    }
}

/// The streaming groups of one endpoint.
#[derive(Default)]
pub struct Groups {
    groups: Vec<Group>,
}

impl Groups {
    /// Makes the groups follow `leased` (this endpoint's leased mailboxes
    /// that stream): departed members leave their group, newcomers fill the
    /// groups with room or a new one, and every group whose members changed
    /// is told. A group whose anchor left starts over under a new anchor.
    pub fn update<E: Exchange>(
        &mut self,
        ctx: &Arc<SyncContext<E>>,
        endpoint: &str,
        leased: Vec<Member>,
        pacing: &WatchPacing,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
    ) {
        let mut wanted: BTreeMap<String, Member> = leased.into_iter().map(|m| (m.smtp.to_lowercase(), m)).collect();
        let mut changed = vec![false; self.groups.len()];
        let mut orphans = Vec::new();
        for (i, g) in self.groups.iter_mut().enumerate() {
            let before = g.members.len();
            g.members.retain(|k, _| wanted.contains_key(k));
            changed[i] = g.members.len() != before;
            if !g.members.contains_key(&g.anchor) {
                // The anchor left: its server no longer routes this group.
                orphans.extend(std::mem::take(&mut g.members).into_values());
                changed[i] = true;
            }
            for k in g.members.keys() {
                wanted.remove(k);
            }
        }
        // Groups left empty stop (and unsubscribe what they held).
        let mut kept = Vec::new();
        let mut kept_changed = Vec::new();
        for (g, c) in self.groups.drain(..).zip(changed) {
            if g.members.is_empty() {
                g.cancel.cancel();
            } else {
                kept.push(g);
                kept_changed.push(c);
            }
        }
        self.groups = kept;
        let mut changed = kept_changed;
        let mut newcomers: Vec<Member> = orphans.into_iter().chain(wanted.into_values()).collect();
        newcomers.sort_by_key(|m| m.smtp.to_lowercase());
        for m in newcomers {
            let key = m.smtp.to_lowercase();
            let size = pacing.group_size.max(1);
            if let Some(i) = self.groups.iter().position(|g| g.members.len() < size) {
                self.groups[i].members.insert(key, m);
                changed[i] = true;
            } else {
                let (tx, rx) = watch::channel(Vec::new());
                let token = cancel.child_token();
                let task = tracker.spawn(run_group(
                    ctx.clone(),
                    endpoint.to_owned(),
                    rx,
                    pacing.clone(),
                    token.clone(),
                ));
                self.groups.push(Group {
                    members: BTreeMap::from([(key.clone(), m)]),
                    anchor: key,
                    tx,
                    cancel: token,
                    task,
                });
                changed.push(true);
            }
        }
        for (g, c) in self.groups.iter().zip(changed) {
            if c {
                tracing::debug!(endpoint = %endpoint, anchor = %g.anchor, members = g.members.len(), "watch.group_changed");
                let _ = g.tx.send(g.list());
            }
        }
    }

    /// Stops every group (each unsubscribes what it held, through the
    /// client it started with) and gives the tasks, to know when they have
    /// let go of their mailboxes: a reloaded client's groups start only then,
    /// so an old group never marks a mailbox unwatched after a new one
    /// marked it watched.
    pub fn stop(self) -> Vec<tokio::task::JoinHandle<()>> {
        self.groups
            .into_iter()
            .map(|g| {
                g.cancel.cancel();
                g.task
            })
            .collect()
    }

    /// Members per group, for tests and logs.
    pub fn sizes(&self) -> Vec<usize> {
        self.groups.iter().map(|g| g.members.len()).collect()
    }
}

/// How a streaming connection ended.
enum Ended {
    Stop,
    /// The member list changed: rebuild the group.
    Members,
    /// The server closed it after its ConnectionTimeout: open another.
    Closed,
    /// Some subscriptions are gone: make them again.
    Lost,
    /// The connection broke.
    Dropped(String),
}

struct Subscribed {
    sub: Subscription,
    member: Member,
}

/// One streaming group: subscriptions of its members, one connection.
async fn run_group<E: Exchange>(
    ctx: Arc<SyncContext<E>>,
    endpoint: String,
    mut members_rx: watch::Receiver<Vec<Member>>,
    pacing: WatchPacing,
    cancel: CancellationToken,
) {
    let Ok(ex) = ctx.exchange(&endpoint) else {
        return;
    };
    let metrics = ctx.metrics.clone();
    // By lower-case address.
    let mut subs: HashMap<String, Subscribed> = HashMap::new();
    let mut anchor: Option<String> = None;
    let mut failures = 0u32;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let members: Vec<Member> = members_rx.borrow_and_update().clone();
        let group_anchor = members.first().map(|m| m.smtp.clone());
        if group_anchor != anchor {
            // Another anchor routes to another server: subscribe everything
            // again there.
            for (_, s) in subs.drain() {
                let _ = ex.unsubscribe(&s.member.smtp, &s.sub.id, anchor.as_deref()).await;
            }
            anchor = group_anchor;
        }
        let Some(anchor_smtp) = anchor.clone() else {
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = members_rx.changed() => if r.is_err() { break } else { continue },
            }
        };
        let present: HashMap<String, &Member> = members.iter().map(|m| (m.smtp.to_lowercase(), m)).collect();
        let departed: Vec<String> = subs.keys().filter(|k| !present.contains_key(*k)).cloned().collect();
        for k in departed {
            if let Some(s) = subs.remove(&k) {
                s.member.signal.set_watched(false, &metrics);
                let _ = ex.unsubscribe(&s.member.smtp, &s.sub.id, Some(&anchor_smtp)).await;
            }
        }
        let mut failed: Option<ExchangeError> = None;
        for m in &members {
            let key = m.smtp.to_lowercase();
            if subs.contains_key(&key) {
                continue;
            }
            match ex.subscribe(&m.smtp, true, Some(&anchor_smtp)).await {
                Ok(sub) => {
                    // Changes before the subscription existed are read now.
                    m.signal.catch_up();
                    subs.insert(key, Subscribed { sub, member: m.clone() });
                }
                Err(e) => {
                    tracing::warn!(mailbox.smtp = %m.smtp, error = %e, "watch.subscribe_failed");
                    failed = Some(e);
                    break;
                }
            }
        }
        let opened = match failed {
            Some(e) => Err(e),
            None => {
                let ids: Vec<String> = subs.values().map(|s| s.sub.id.clone()).collect();
                ex.open_stream(&anchor_smtp, &ids, pacing.stream_minutes).await
            }
        };
        let ended = match opened {
            Ok(mut stream) => {
                for s in subs.values() {
                    s.member.signal.set_watched(true, &metrics);
                }
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break Ended::Stop,
                        r = members_rx.changed() => {
                            tracing::debug!(anchor = %anchor_smtp, dropped = r.is_err(), "watch.members");
                            break if r.is_err() { Ended::Stop } else { Ended::Members }
                        }
                        next = stream.next() => match next {
                            Some(Ok(batch)) => {
                                failures = 0;
                                if let Some(ended) = dispatch(&batch, &mut subs, &metrics) {
                                    break ended;
                                }
                            }
                            Some(Err(ExchangeError::SubscriptionLost)) => {
                                // The server knows none of them (restarted):
                                // all are made again, each followed by a
                                // catch-up pass.
                                for s in subs.values() {
                                    metrics.subscription_rebuilt();
                                    tracing::info!(mailbox.smtp = %s.member.smtp, "watch.subscription_lost");
                                }
                                subs.clear();
                                break Ended::Lost;
                            }
                            Some(Err(e)) => break Ended::Dropped(e.to_string()),
                            None => break Ended::Dropped("connection closed by the server".into()),
                        },
                    }
                }
            }
            Err(ExchangeError::SubscriptionLost) => {
                for s in subs.values() {
                    metrics.subscription_rebuilt();
                    tracing::info!(mailbox.smtp = %s.member.smtp, "watch.subscription_lost");
                }
                subs.clear();
                Ended::Lost
            }
            Err(e) => {
                tracing::warn!(endpoint = %endpoint, anchor = %anchor_smtp, error = %e, "watch.stream_failed");
                Ended::Dropped(e.to_string())
            }
        };
        match ended {
            Ended::Stop => break,
            Ended::Members | Ended::Closed => {}
            Ended::Lost => {
                // Made again at once; a server that keeps losing them is
                // treated as failing.
                failures += 1;
                if failures >= pacing.max_failures {
                    fall_back(&members, &metrics);
                    if wait(&pacing, failures, &cancel).await {
                        break;
                    }
                }
            }
            Ended::Dropped(error) => {
                metrics.stream_dropped();
                failures += 1;
                tracing::info!(endpoint = %endpoint, anchor = %anchor_smtp, error = %error, "watch.stream_dropped");
                // Events may have been lost with the connection.
                for s in subs.values() {
                    s.member.signal.catch_up();
                }
                if failures >= pacing.max_failures {
                    fall_back(&members, &metrics);
                }
                if wait(&pacing, failures - 1, &cancel).await {
                    break;
                }
            }
        }
    }
    tracing::debug!(endpoint = %endpoint, anchor = anchor.as_deref().unwrap_or(""), cancelled = cancel.is_cancelled(), "watch.group_stopped");
    // Stopping: the subscriptions end with the group, within a bound so a
    // dead server never holds the shutdown.
    let unsubscribe = async {
        for s in subs.values() {
            s.member.signal.set_watched(false, &metrics);
            let _ = ex.unsubscribe(&s.member.smtp, &s.sub.id, anchor.as_deref()).await;
        }
    };
    let _ = tokio::time::timeout(StdDuration::from_secs(5), unsubscribe).await;
    for s in subs.values() {
        s.member.signal.set_watched(false, &metrics);
    }
}

/// Sends each event to its mailbox's worker; says how the connection ends
/// when the batch ends it.
fn dispatch(
    batch: &EventBatch,
    subs: &mut HashMap<String, Subscribed>,
    metrics: &crate::metrics::Metrics,
) -> Option<Ended> {
    for e in &batch.events {
        if let Some(s) = subs.values().find(|s| s.sub.id == e.subscription_id)
            && let Some(folder) = s.sub.folder(&e.folder_id)
        {
            s.member.signal.folder(folder);
        }
    }
    if !batch.lost.is_empty() {
        subs.retain(|_, s| {
            let lost = batch.lost.contains(&s.sub.id);
            if lost {
                metrics.subscription_rebuilt();
                tracing::info!(mailbox.smtp = %s.member.smtp, "watch.subscription_lost");
            }
            !lost
        });
        return Some(Ended::Lost);
    }
    batch.closed.then_some(Ended::Closed)
}

fn fall_back(members: &[Member], metrics: &crate::metrics::Metrics) {
    for m in members {
        if m.signal.set_watched(false, metrics) {
            tracing::warn!(mailbox.smtp = %m.smtp, "watch.polling_fallback");
        }
    }
}

/// Waits before trying again; true when the group is stopping.
async fn wait(pacing: &WatchPacing, failures: u32, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(pacing.backoff(failures)) => false,
    }
}

/// A mailbox worker's pull subscription (Exchange 2007 SP1).
#[derive(Debug, Default)]
pub struct PullWatch {
    sub: Option<Subscription>,
    failures: u32,
}

impl PullWatch {
    /// Subscribes when needed, then reads the events since the last read
    /// into `signal`. Returns false when subscriptions fail and the worker
    /// should poll this time.
    pub async fn read<E: Exchange>(
        &mut self,
        ex: &E,
        smtp: &str,
        signal: &Signal,
        pacing: &WatchPacing,
        metrics: &crate::metrics::Metrics,
    ) -> bool {
        // Twice at most: a lost subscription is made again at once.
        for _ in 0..2 {
            let Some(sub) = self.sub.as_mut() else {
                return self.subscribe(ex, smtp, signal, pacing, metrics).await;
            };
            let mut lost = false;
            // A bounded number of reads: `more` is rare and a flood waits
            // for the next tick.
            for _ in 0..10 {
                match ex.pull_events(smtp, sub).await {
                    Ok(batch) => {
                        for e in &batch.events {
                            if let Some(f) = sub.folder(&e.folder_id) {
                                signal.folder(f);
                            }
                        }
                        if !batch.more {
                            break;
                        }
                    }
                    Err(ExchangeError::SubscriptionLost) => {
                        lost = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(mailbox.smtp = %smtp, error = %e, "watch.pull_failed");
                        self.failures += 1;
                        if self.failures >= pacing.max_failures && signal.set_watched(false, metrics) {
                            tracing::warn!(mailbox.smtp = %smtp, "watch.polling_fallback");
                        }
                        return false;
                    }
                }
            }
            if !lost {
                self.failures = 0;
                signal.set_watched(true, metrics);
                return true;
            }
            // The new subscription's catch-up pass reads what the lost one
            // missed.
            metrics.subscription_rebuilt();
            tracing::info!(mailbox.smtp = %smtp, "watch.subscription_lost");
            self.sub = None;
        }
        false
    }

    async fn subscribe<E: Exchange>(
        &mut self,
        ex: &E,
        smtp: &str,
        signal: &Signal,
        pacing: &WatchPacing,
        metrics: &crate::metrics::Metrics,
    ) -> bool {
        match ex.subscribe(smtp, false, None).await {
            Ok(s) => {
                self.sub = Some(s);
                self.failures = 0;
                signal.set_watched(true, metrics);
                // What happened before the subscription is read now.
                signal.catch_up();
                true
            }
            Err(e) => {
                self.failures += 1;
                tracing::warn!(mailbox.smtp = %smtp, failures = self.failures, error = %e, "watch.subscribe_failed");
                if self.failures >= pacing.max_failures && signal.set_watched(false, metrics) {
                    tracing::warn!(mailbox.smtp = %smtp, "watch.polling_fallback");
                }
                false
            }
        }
    }

    /// Ends the subscription (the worker stops).
    pub async fn close<E: Exchange>(&mut self, ex: &E, smtp: &str) {
        if let Some(sub) = self.sub.take() {
            let _ = tokio::time::timeout(StdDuration::from_secs(5), ex.unsubscribe(smtp, &sub.id, None)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_is_kept_until_taken() {
        let s = Signal::default();
        s.inbox();
        s.calendar();
        assert_eq!(
            s.take(),
            Wake {
                inbox: true,
                calendar: true,
                catch_up: false
            }
        );
        assert_eq!(s.take(), Wake::default());
    }

    #[test]
    fn retries_back_off_up_to_the_bound() {
        let p = WatchPacing {
            retry: StdDuration::from_secs(1),
            retry_max: StdDuration::from_secs(10),
            ..WatchPacing::default()
        };
        assert_eq!(p.backoff(0), StdDuration::from_secs(1));
        assert_eq!(p.backoff(2), StdDuration::from_secs(4));
        assert_eq!(p.backoff(30), StdDuration::from_secs(10));
    }
}
