//! The daemon's wiring: builds the Exchange clients from the configuration,
//! runs the lease loop, one worker per leased mailbox, the outbox worker and
//! the HTTP listener, and stops them all cleanly.
//!
//! Every task is tracked; shutdown (SIGTERM, SIGINT) cancels them, waits for
//! each to finish its current step, then hands the leases back so another
//! instance takes over at once instead of at the lease expiry.

use crate::clock::SharedClock;
use crate::config::{self, ChangeDetection, Config, ExchangeAuth, ExchangeVersion, Secret, SecretSource};
use crate::ews::client::{Auth, Client, ClientConfig, OAuth2ClientCredentials};
use crate::ews::ntlm::NtlmCredentials;
use crate::ews::soap::ServerVersion;
use crate::exchange::ews::EwsExchange;
use crate::exchange::{Exchange, Notifications};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::sync::SyncContext;
use crate::sync::watch::{Groups, Member, PullWatch, Signal, WatchPacing};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Duration;
use rand::Rng as _;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// How the daemon's loops are paced.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub lease: Duration,
    /// Between two passes over one mailbox when nothing wakes it earlier.
    pub poll: StdDuration,
    /// Between two outbox rounds when the last one found nothing.
    pub outbox_idle: StdDuration,
    /// Between two reconciliations of one mailbox's calendar.
    pub reconcile: StdDuration,
}

impl Pacing {
    pub fn from_config(cfg: &Config) -> Self {
        let poll = cfg
            .exchange
            .iter()
            .map(|e| e.poll_interval_seconds)
            .min()
            .unwrap_or(300)
            .max(1);
        Pacing {
            lease: Duration::seconds(i64::try_from(cfg.daemon.lease_seconds).unwrap_or(60)),
            poll: StdDuration::from_secs(poll),
            outbox_idle: StdDuration::from_secs(1),
            reconcile: StdDuration::from_secs(15 * 60),
        }
    }
}

/// What a configuration reload changes in a running daemon: the Exchange
/// clients (inside the context), the pacing and the change detection. The
/// loops read the current value at their round boundaries, so a step in
/// flight ends with the settings it started with and the next one uses the
/// new ones; a reload also wakes them, so a long wait is cut short.
pub struct Live<E: Exchange> {
    pub ctx: Arc<SyncContext<E>>,
    pub pacing: Pacing,
    pub watch: WatchPacing,
    /// Change detection an endpoint's configuration asks for; absent:
    /// what the server offers.
    pub detection: HashMap<String, ChangeDetection>,
    /// Counts, per endpoint, the times its client was replaced: a worker or
    /// a streaming group built on an older client moves to the new one.
    pub clients: HashMap<String, u64>,
}

impl<E: Exchange> Live<E> {
    /// How a mailbox of `endpoint` learns of changes.
    pub fn mode(&self, endpoint: &str) -> Notifications {
        let Some(ex) = self.ctx.exchanges.get(endpoint) else {
            return Notifications::None;
        };
        if !self.watch.enabled {
            return Notifications::None;
        }
        match self.detection.get(endpoint).copied().unwrap_or_default() {
            // Streaming where the server has it (2010 SP1 on), else pull.
            ChangeDetection::Auto | ChangeDetection::Streaming => ex.notifications(),
            ChangeDetection::Pull => Notifications::Pull,
            ChangeDetection::Poll => Notifications::None,
        }
    }

    fn client(&self, endpoint: &str) -> u64 {
        self.clients.get(endpoint).copied().unwrap_or(0)
    }
}

/// Changes a running daemon's [`Live`] settings (SIGHUP, tests).
pub struct Reloader<E: Exchange> {
    tx: tokio::sync::watch::Sender<Arc<Live<E>>>,
}

impl<E: Exchange + Clone> Reloader<E> {
    /// The settings the loops read now.
    pub fn current(&self) -> Arc<Live<E>> {
        self.tx.borrow().clone()
    }

    /// Follows the settings as reloads change them.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Live<E>>> {
        self.tx.subscribe()
    }

    /// Replaces the clients of the endpoints in `replaced` (new ones
    /// included), drops those of `removed`, and sets the pacing and the
    /// change detection, all at once.
    pub fn apply(
        &self,
        replaced: HashMap<String, E>,
        removed: &[String],
        pacing: Pacing,
        watch: WatchPacing,
        detection: HashMap<String, ChangeDetection>,
    ) {
        self.tx.send_modify(|live| {
            let old = &live.ctx;
            let mut clients = live.clients.clone();
            let ctx = if replaced.is_empty() && removed.is_empty() {
                old.clone()
            } else {
                let mut exchanges = old.exchanges.clone();
                for name in removed {
                    exchanges.remove(name);
                    *clients.entry(name.clone()).or_default() += 1;
                }
                for (name, ex) in replaced {
                    exchanges.insert(name.clone(), ex);
                    *clients.entry(name).or_default() += 1;
                }
                Arc::new(SyncContext {
                    store: old.store.clone(),
                    exchanges,
                    clock: old.clock.clone(),
                    instance: old.instance.clone(),
                    metrics: old.metrics.clone(),
                })
            };
            // The lease length stays what it was: the instance's leases
            // were taken with it.
            let pacing = Pacing {
                lease: live.pacing.lease,
                ..pacing
            };
            *live = Arc::new(Live {
                ctx,
                pacing,
                watch,
                detection,
                clients,
            });
        });
    }
}

/// Waits for the next reload; never, once nothing can reload any more.
async fn reloaded<T>(rx: &mut tokio::sync::watch::Receiver<T>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The EWS clients of the configuration, by endpoint name.
pub fn exchanges(
    cfg: &Config,
    secrets: &SecretSource,
    clock: SharedClock,
) -> Result<HashMap<String, EwsExchange>, String> {
    let default_tz: chrono_tz::Tz = cfg.time_zone.parse().unwrap_or(chrono_tz::Europe::Paris);
    let mut out = HashMap::new();
    for ex in &cfg.exchange {
        out.insert(
            ex.name.clone(),
            exchange_client(ex, default_tz, secrets, clock.clone())?,
        );
    }
    Ok(out)
}

/// The EWS client of one `[[exchange]]` block, its secrets read now.
pub fn exchange_client(
    ex: &config::Exchange,
    default_tz: chrono_tz::Tz,
    secrets: &SecretSource,
    clock: SharedClock,
) -> Result<EwsExchange, String> {
    let version = match ex.version {
        ExchangeVersion::Exchange2007Sp1 => ServerVersion::Exchange2007_SP1,
        ExchangeVersion::Exchange2010Sp2 => ServerVersion::Exchange2010_SP2,
        ExchangeVersion::Exchange2013Sp1 => ServerVersion::Exchange2013_SP1,
        ExchangeVersion::Exchange2016 => ServerVersion::Exchange2016,
    };
    let secret = |file: &Option<std::path::PathBuf>, env: &Option<String>| {
        secrets
            .read(file.as_deref(), env.as_deref())
            .map(|s| s.expose().to_owned())
            .map_err(|(_, en)| format!("exchange {}: {en}", ex.name))
    };
    let auth = match ex.auth {
        ExchangeAuth::Ntlm => Auth::Ntlm(NtlmCredentials {
            domain: ex.domain.clone().unwrap_or_default(),
            user: ex.username.clone().unwrap_or_default(),
            password: secret(&ex.password_file, &ex.password_env)?,
            workstation: "RESA".into(),
        }),
        ExchangeAuth::Basic => Auth::Basic {
            user: ex.username.clone().unwrap_or_default(),
            password: secret(&ex.password_file, &ex.password_env)?,
        },
        ExchangeAuth::Oauth2 => {
            let tenant = ex.tenant_id.clone().unwrap_or_default();
            let token_url = url::Url::parse(&format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"))
                .map_err(|e| format!("exchange {}: {e}", ex.name))?;
            Auth::OAuth2(OAuth2ClientCredentials {
                token_url,
                client_id: ex.client_id.clone().unwrap_or_default(),
                client_secret: secret(&ex.client_secret_file, &ex.client_secret_env)?,
                scope: "https://outlook.office365.com/.default".into(),
            })
        }
    };
    let mut cc = ClientConfig::new(ex.url.clone(), version, auth);
    cc.max_concurrency = usize::try_from(ex.max_concurrency).unwrap_or(8).max(1);
    cc.timeout = StdDuration::from_secs(ex.timeout_seconds.max(1));
    if let Some(ca) = &ex.ca_file {
        let path = secrets.base_dir.join(ca);
        cc.ca_pem = Some(std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    let client = Client::new(cc, clock).map_err(|e| format!("exchange {}: {e}", ex.name))?;
    Ok(EwsExchange::new(Arc::new(client), ex.impersonation, default_tz))
}

/// A running daemon's handles, for tests and for `resa demo`.
pub struct Daemon {
    pub instance: String,
    cancel: CancellationToken,
    tracker: TaskTracker,
    store: Store,
    pub metrics: Arc<Metrics>,
    outbox_wake: Arc<Notify>,
}

impl Daemon {
    /// Starts the lease loop, the mailbox workers and the outbox worker,
    /// with change detection paced by default.
    pub fn start<E: Exchange>(ctx: SyncContext<E>, pacing: Pacing) -> Daemon {
        Daemon::start_with(ctx, pacing, WatchPacing::default())
    }

    /// Starts the daemon with change detection paced as given.
    pub fn start_with<E: Exchange>(ctx: SyncContext<E>, pacing: Pacing, watch: WatchPacing) -> Daemon {
        Daemon::start_live(ctx, pacing, watch, HashMap::new()).0
    }

    /// Starts the daemon and gives what changes its settings while it runs
    /// (a configuration reload).
    pub fn start_live<E: Exchange>(
        ctx: SyncContext<E>,
        pacing: Pacing,
        watch: WatchPacing,
        detection: HashMap<String, ChangeDetection>,
    ) -> (Daemon, Reloader<E>) {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let ctx = Arc::new(ctx);
        let instance = ctx.instance.clone();
        let store = ctx.store.clone();
        let metrics = ctx.metrics.clone();
        let (tx, live) = tokio::sync::watch::channel(Arc::new(Live {
            ctx: ctx.clone(),
            pacing: pacing.clone(),
            watch,
            detection,
            clients: HashMap::new(),
        }));
        // Rung by a mailbox worker that queued answers, so they leave at
        // once rather than at the outbox worker's next idle tick.
        let outbox_wake = Arc::new(Notify::new());
        tracker.spawn(lease_loop(
            live.clone(),
            pacing.lease,
            outbox_wake.clone(),
            cancel.clone(),
            tracker.clone(),
        ));
        tracker.spawn(vehicles_loop(ctx, cancel.clone()));
        tracker.spawn(outbox_loop(live, outbox_wake.clone(), cancel.clone()));
        let daemon = Daemon {
            instance,
            cancel,
            tracker,
            store,
            metrics,
            outbox_wake,
        };
        (daemon, Reloader { tx })
    }

    /// What wakes the outbox worker: rung by the web site (same process)
    /// after it queued a command, so it leaves at once.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.outbox_wake.clone()
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops every task after its current step and hands the leases back.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if let Err(e) = self.store.release_leases(&self.instance).await {
            tracing::warn!(error = %e, "shutdown.release_leases");
        }
    }

    /// Stops without handing anything back, as a crashed process would.
    pub async fn abandon(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "resa".into())
}

/// A fresh instance name: host and a random suffix.
pub fn instance_name() -> String {
    format!("{}-{}", hostname(), &Uuid::new_v4().simple().to_string()[..8])
}

async fn lease_loop<E: Exchange>(
    mut live_rx: tokio::sync::watch::Receiver<Arc<Live<E>>>,
    lease: Duration,
    outbox_wake: Arc<Notify>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let host = hostname();
    // One worker per leased mailbox, stopped when the lease goes, and its
    // wake-up signal, shared with the streaming group that covers it.
    let mut workers: HashMap<Uuid, Worker> = HashMap::new();
    // Streaming groups, by endpoint, with the client and the pacing they
    // were built with.
    let mut groups: HashMap<String, (Groups, (u64, String))> = HashMap::new();
    // Groups of a replaced client, still unsubscribing through it.
    let mut retiring: HashMap<String, Vec<tokio::task::JoinHandle<()>>> = HashMap::new();
    loop {
        let live = live_rx.borrow_and_update().clone();
        let ctx = &live.ctx;
        let now = ctx.clock.now();
        let round = async {
            ctx.store.heartbeat(&ctx.instance, &host, now).await?;
            ctx.store.register_mailboxes().await?;
            let live = ctx.store.live_instances(now, lease).await?.max(1);
            let total: i64 = ctx.store.active_mailbox_count().await?;
            let share = (total + live - 1) / live;
            ctx.store.claim_mailboxes(&ctx.instance, share.max(1), now, lease).await
        };
        match round.await {
            Ok(mailboxes) => {
                ctx.metrics.set_mailboxes_leased(mailboxes.len());
                let held: Vec<Uuid> = mailboxes.iter().map(|m| m.resource_id).collect();
                workers.retain(|id, w| {
                    let keep = held.contains(id);
                    if !keep {
                        w.token.cancel();
                    }
                    keep
                });
                let mut streamed: HashMap<String, Vec<Member>> = HashMap::new();
                for m in mailboxes {
                    let mode = live.mode(&m.endpoint);
                    let signal = match workers.get(&m.resource_id) {
                        Some(w) if !w.task.is_finished() => w.signal.clone(),
                        ended => {
                            // A worker ends when it finds its lease lapsed
                            // (the clock jumped, or renewals were late):
                            // the lease being held again, another one takes
                            // over, with the same signal, so the streaming
                            // group's wake-ups still reach it.
                            let signal = match ended {
                                Some(w) => {
                                    tracing::info!(mailbox.smtp = %m.smtp, "sync.worker_restarted");
                                    w.signal.clone()
                                }
                                None => Arc::new(Signal::default()),
                            };
                            let token = cancel.child_token();
                            let task = tracker.spawn(mailbox_loop(
                                live_rx.clone(),
                                m.resource_id,
                                Wakes {
                                    mailbox: signal.clone(),
                                    outbox: outbox_wake.clone(),
                                },
                                token.clone(),
                            ));
                            workers.insert(
                                m.resource_id,
                                Worker {
                                    token,
                                    signal: signal.clone(),
                                    task,
                                },
                            );
                            signal
                        }
                    };
                    // A resync asked on the web site is done now, not at the
                    // next event or safety pass, which can be hours away.
                    if m.resync_requested {
                        signal.catch_up();
                    }
                    if mode == Notifications::Streaming {
                        streamed.entry(m.endpoint.clone()).or_default().push(Member {
                            resource_id: m.resource_id,
                            smtp: m.smtp.clone(),
                            signal,
                        });
                    }
                }
                // Every endpoint's groups follow its leased set, including
                // an endpoint that lost all its mailboxes.
                let endpoints: std::collections::BTreeSet<String> =
                    groups.keys().chain(streamed.keys()).cloned().collect();
                let watch_key = format!("{:?}", live.watch);
                for endpoint in endpoints {
                    let members = streamed.remove(&endpoint).unwrap_or_default();
                    let built = (live.client(&endpoint), watch_key.clone());
                    if groups.get(&endpoint).is_some_and(|(_, b)| *b != built)
                        && let Some((old, _)) = groups.remove(&endpoint)
                    {
                        // A reload replaced the client or the pacing: the
                        // connections of the old one close, and the groups
                        // open again on the new one once they are gone (the
                        // mailboxes are polled meanwhile).
                        tracing::info!(endpoint = %endpoint, "watch.groups_restarted");
                        retiring.entry(endpoint.clone()).or_default().extend(old.stop());
                    }
                    if let Some(old) = retiring.get_mut(&endpoint) {
                        old.retain(|t| !t.is_finished());
                        if !old.is_empty() {
                            continue;
                        }
                        retiring.remove(&endpoint);
                    }
                    groups
                        .entry(endpoint.clone())
                        .or_insert_with(|| (Groups::default(), built))
                        .0
                        .update(ctx, &endpoint, members, &live.watch, &tracker, &cancel);
                }
            }
            Err(e) => tracing::warn!(error = %e, "lease.round_failed"),
        }
        // Renew well before the expiry; look again soon while old groups
        // let go of their mailboxes.
        let mut every = (lease / 3).to_std().unwrap_or(StdDuration::from_secs(10));
        for tasks in retiring.values_mut() {
            tasks.retain(|t| !t.is_finished());
        }
        retiring.retain(|_, tasks| !tasks.is_empty());
        if !retiring.is_empty() {
            every = every.min(StdDuration::from_millis(100));
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = reloaded(&mut live_rx) => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// A mailbox worker as the lease loop keeps it.
struct Worker {
    token: CancellationToken,
    signal: Arc<Signal>,
    task: tokio::task::JoinHandle<()>,
}

/// What wakes a mailbox worker (events, catch-ups) and what it wakes (the
/// outbox worker, when it queued answers).
struct Wakes {
    mailbox: Arc<Signal>,
    outbox: Arc<Notify>,
}

/// One leased mailbox's worker. It reads the Inbox (SyncFolderItems) when
/// an event says so, when a subscription was (re)made, or, without a
/// working subscription, at each poll (with jitter); it reconciles the
/// calendar after calendar events (at most every `reconcile_gap`) and on a
/// slower safety timer. Each round takes the settings of the moment: after
/// a reload that replaced its endpoint's client, it ends its pull
/// subscription through the old client and reads the Inbox and the calendar
/// through the new one at once.
async fn mailbox_loop<E: Exchange>(
    mut live_rx: tokio::sync::watch::Receiver<Arc<Live<E>>>,
    resource_id: Uuid,
    wakes: Wakes,
    cancel: CancellationToken,
) {
    let Wakes {
        mailbox: signal,
        outbox: outbox_wake,
    } = wakes;
    let mut mode = Notifications::None;
    let mut failures = 0u32;
    let mut pull = PullWatch::default();
    // The client this worker last used: endpoint, its generation, and the
    // context that holds it (to end a pull subscription through it).
    let mut bound: Option<(String, u64, Arc<SyncContext<E>>)> = None;
    let mut smtp: Option<String> = None;
    let mut synced: Option<std::time::Instant> = None;
    let mut reconciled: Option<std::time::Instant> = None;
    // Work owed: cleared only when done, so a failed pass is tried again.
    let mut owe_sync = true;
    let mut owe_reconcile = true;
    let mut pending_calendar = false;
    let mut timer = false;
    loop {
        let live = live_rx.borrow_and_update().clone();
        let ctx = live.ctx.clone();
        let watch = &live.watch;
        let poll = live.pacing.poll;
        let now = ctx.clock.now();
        let wake = signal.take();
        owe_sync |= wake.inbox || wake.catch_up;
        owe_reconcile |= wake.catch_up;
        pending_calendar |= wake.calendar;
        let pass = async {
            let Some(mailbox) = ctx.store.leased_mailbox(&ctx.instance, resource_id, now).await? else {
                return Ok::<_, crate::sync::SyncError>(false);
            };
            smtp = Some(mailbox.smtp.clone());
            let client = live.client(&mailbox.endpoint);
            let new_mode = live.mode(&mailbox.endpoint);
            let moved = bound
                .as_ref()
                .is_some_and(|(endpoint, generation, _)| *endpoint != mailbox.endpoint || *generation != client);
            if moved || new_mode != mode {
                if let Some((endpoint, _, old)) = &bound
                    && let Ok(ex) = old.exchange(endpoint)
                {
                    pull.close(ex, &mailbox.smtp).await;
                }
                pull = PullWatch::default();
                if mode == Notifications::Pull {
                    signal.set_watched(false, &ctx.metrics);
                }
                if moved {
                    // Another client, maybe another server: whatever
                    // happened meanwhile is read through the new one.
                    tracing::info!(mailbox.smtp = %mailbox.smtp, endpoint = %mailbox.endpoint, "sync.client_replaced");
                    owe_sync = true;
                    owe_reconcile = true;
                }
                mode = new_mode;
            }
            bound = Some((mailbox.endpoint.clone(), client, ctx.clone()));
            if mode == Notifications::Pull && timer {
                let ex = ctx.exchange(&mailbox.endpoint)?;
                if !pull.read(ex, &mailbox.smtp, &signal, watch, &ctx.metrics).await {
                    // No working subscription this time: poll.
                    owe_sync = true;
                }
                let more = signal.take();
                owe_sync |= more.inbox || more.catch_up;
                owe_reconcile |= more.catch_up;
                pending_calendar |= more.calendar;
            }
            let watched = signal.is_watched();
            let since = |t: Option<std::time::Instant>| t.map_or(StdDuration::MAX, |t| t.elapsed());
            if timer && !watched && mode != Notifications::Pull {
                owe_sync = true;
            }
            if watched && since(synced) >= watch.safety_sync {
                owe_sync = true;
            }
            let reconcile_every = if watched {
                watch.safety_reconcile
            } else {
                live.pacing.reconcile
            };
            if since(reconciled) >= reconcile_every || (pending_calendar && since(reconciled) >= watch.reconcile_gap) {
                owe_reconcile = true;
            }
            if owe_sync {
                let report = ctx.sync_mailbox(&mailbox).await?;
                if report != crate::sync::PassReport::default() {
                    outbox_wake.notify_one();
                }
                owe_sync = false;
                synced = Some(crate::clock::monotonic());
            }
            if owe_reconcile {
                ctx.reconcile(&mailbox).await?;
                owe_reconcile = false;
                pending_calendar = false;
                reconciled = Some(crate::clock::monotonic());
            }
            Ok(true)
        };
        let wait = match pass.await {
            Ok(true) => {
                failures = 0;
                let since = |t: Option<std::time::Instant>| t.map_or(StdDuration::ZERO, |t| t.elapsed());
                if signal.is_watched() && mode == Notifications::Streaming {
                    // Events wake the worker; the timer is the safety net.
                    let mut w = watch
                        .safety_sync
                        .saturating_sub(since(synced))
                        .min(watch.safety_reconcile.saturating_sub(since(reconciled)));
                    if pending_calendar {
                        w = w.min(watch.reconcile_gap.saturating_sub(since(reconciled)));
                    }
                    w.max(StdDuration::from_millis(10))
                } else {
                    // Jitter spreads the polls of many mailboxes over the
                    // interval.
                    poll.mul_f64(rand::rng().random_range(0.8..1.2))
                }
            }
            // The lease went elsewhere, or lapsed: this worker's job is
            // over (the lease loop starts another if it holds it again).
            Ok(false) | Err(crate::sync::SyncError::LeaseLost) => {
                tracing::info!(resource.id = %resource_id, "sync.lease_gone");
                break;
            }
            Err(e) => {
                failures += 1;
                ctx.metrics.sync_error();
                tracing::warn!(resource.id = %resource_id, error = %e, "sync.failed");
                let _ = ctx
                    .store
                    .record_mailbox_error(resource_id, &e.to_string(), ctx.clock.now())
                    .await;
                // Retry sooner than the next poll, backing off on repeated
                // failures up to a minute.
                StdDuration::from_secs(2u64.saturating_pow(failures.min(6)).min(60))
                    .min(poll)
                    .mul_f64(rand::rng().random_range(0.8..1.2))
            }
        };
        // A reload wakes the worker: the next wait is reckoned with the new
        // pacing, and a replaced client is used at once.
        timer = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = signal.notified() => false,
            _ = reloaded(&mut live_rx) => false,
            _ = tokio::time::sleep(wait) => true,
        };
    }
    if let (Some(smtp), Some((endpoint, _, ctx))) = (smtp, &bound)
        && let Ok(ex) = ctx.exchange(endpoint)
    {
        pull.close(ex, &smtp).await;
    }
    let metrics = live_rx.borrow().ctx.metrics.clone();
    signal.set_watched(false, &metrics);
}

/// How often check-in deadlines and overdue returns are looked at.
const VEHICLES_EVERY: StdDuration = StdDuration::from_secs(60);

/// Releases bookings nobody checked in to and alerts of overdue returns
/// (see `Store::sweep_vehicles`); safe on several instances at once.
async fn vehicles_loop<E: Exchange>(ctx: Arc<SyncContext<E>>, cancel: CancellationToken) {
    loop {
        match ctx.store.sweep_vehicles(ctx.clock.now()).await {
            Ok(r) if !r.released.is_empty() || r.overdue_alerts > 0 || r.no_show_reports > 0 => {
                tracing::info!(
                    released = r.released.len(),
                    overdue = r.overdue_alerts,
                    no_shows = r.no_show_reports,
                    "vehicles.sweep"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "vehicles.sweep_failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(VEHICLES_EVERY) => {}
        }
    }
}

async fn outbox_loop<E: Exchange>(
    mut live_rx: tokio::sync::watch::Receiver<Arc<Live<E>>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut ticked: Option<std::time::Instant> = None;
    loop {
        // Each round sends through the clients of the moment.
        let live = live_rx.borrow_and_update().clone();
        let (ctx, pacing) = (&live.ctx, &live.pacing);
        // Validation circuits that are due (reminder, escalation, final
        // outcome) move on first, so what they queue leaves in this round;
        // at most once per idle tick, as their deadlines count in minutes,
        // not in the rounds that each decision's wake-up causes.
        if ticked.is_none_or(|t| t.elapsed() >= pacing.outbox_idle) {
            ticked = Some(crate::clock::monotonic());
            if let Err(e) = ctx.store.circuits_tick(ctx.clock.now()).await {
                tracing::warn!(error = %e, "circuits.tick_failed");
            }
        }
        // Small batches, so a claim never outlives the lease by much.
        let busy = match ctx.run_outbox(10, pacing.lease).await {
            Ok(sent) => !sent.is_empty(),
            Err(e) => {
                tracing::warn!(error = %e, "outbox.round_failed");
                false
            }
        };
        if busy && !cancel.is_cancelled() {
            continue;
        }
        // Answers queued by this instance's workers ring at once; the
        // tick finds those of other instances, the web site and retries.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = wake.notified() => {}
            _ = reloaded(&mut live_rx) => {}
            _ = tokio::time::sleep(pacing.outbox_idle) => {}
        }
    }
}

#[derive(Clone)]
struct OpsState {
    store: Store,
    metrics: Arc<Metrics>,
}

/// `/healthz` (the process answers), `/readyz` (the database answers) and
/// `/metrics` (Prometheus).
pub fn ops_router(store: Store, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(OpsState { store, metrics })
}

async fn readyz(State(s): State<OpsState>) -> impl IntoResponse {
    match sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(s.store.pool()).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

async fn metrics_text(State(s): State<OpsState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// Tells systemd something (`READY=1`, `WATCHDOG=1`, `STOPPING=1`) when it
/// started us with `Type=notify`; does nothing otherwise.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    let result = if let Some(abstract_name) = path.to_str().and_then(|p| p.strip_prefix('@')) {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "sd_notify");
    }
}

type FilterHandle = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Lets SIGHUP change the log level without a restart.
static LOG_FILTER: std::sync::OnceLock<FilterHandle> = std::sync::OnceLock::new();

/// Applies a new log level (SIGHUP); false when logging was not set up here.
pub fn reload_log_level(level: &str) -> bool {
    let Ok(filter) = tracing_subscriber::EnvFilter::try_new(level) else {
        return false;
    };
    LOG_FILTER.get().is_some_and(|h| h.reload(filter).is_ok())
}

/// Sets up logging as the configuration says.
pub fn init_logging(cfg: &config::Log) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| "info".into());
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let _ = LOG_FILTER.set(handle);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match cfg.format {
        config::LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).try_init(),
        config::LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init(),
        config::LogFormat::Journald => match tracing_journald::layer() {
            Ok(layer) => registry.with(layer).try_init(),
            Err(_) => registry
                .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
                .try_init(),
        },
    };
    // A second initialisation (tests) keeps the first subscriber.
    let _ = result;
}

/// `resa serve`: runs until SIGTERM or SIGINT.
pub async fn serve(cfg: Config, config_path: &std::path::Path) -> Result<(), String> {
    init_logging(&cfg.log);
    let base = config_path.parent().map(std::path::PathBuf::from).unwrap_or_default();
    let secrets = SecretSource::system(base.clone());
    let clock = crate::clock::system();
    let url = crate::cli::database_url(&cfg, &base)?;
    let store = Store::connect(&url, cfg.database.max_connections)
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    // Links in messages (a vehicle's trip details) use the site's public address.
    if let Err(e) = store
        .set_public_url(cfg.web.public_url.as_ref().map(|u| u.as_str()))
        .await
    {
        tracing::warn!(error = %e, "web.public_url not recorded: trip links will be relative");
    }
    let metrics = Arc::new(Metrics::default());
    let exchanges: HashMap<String, EwsExchange> = exchanges(&cfg, &secrets, clock.clone())?
        .into_iter()
        .map(|(name, ex)| (name, ex.with_metrics(metrics.clone())))
        .collect();
    let secret_key: Arc<[u8]> = match (&cfg.web.secret_key_file, &cfg.web.secret_key_env) {
        (None, None) => {
            // Without a configured key, sign with a random one: links and
            // pre-login forms then hold for this process only.
            tracing::warn!("web.secret_key_file is not set: approval links will not survive a restart");
            let key: [u8; 32] = rand::random();
            Arc::from(&key[..])
        }
        (file, env) => {
            let key = secrets
                .read(file.as_deref(), env.as_deref())
                .map_err(|(_, en)| format!("web secret key: {en}"))?;
            Arc::from(key.expose().as_bytes())
        }
    };
    // Approval messages carry single-use links signed with a key derived
    // from the web secret, pointing at the site's public address.
    let public_url = cfg
        .web
        .public_url
        .as_ref()
        .map(|u| u.to_string())
        .unwrap_or_else(|| format!("http://{}", cfg.web.listen));
    let store = match crate::notify::links::LinkSigner::new(&secret_key, &public_url) {
        Some(signer) => store.with_link_signer(signer),
        None => store,
    };
    let instance = instance_name();
    let ctx = SyncContext {
        store: store.clone(),
        exchanges,
        clock: clock.clone(),
        instance: instance.clone(),
        metrics: metrics.clone(),
    };
    let directories = directory_plan(&cfg, &secrets)?;
    let web_directories = crate::web::Directories::new(directories.iter().map(|d| d.settings.clone()).collect());
    let listener = tokio::net::TcpListener::bind(cfg.web.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", cfg.web.listen))?;
    let (daemon, reloader) =
        Daemon::start_live(ctx, Pacing::from_config(&cfg), WatchPacing::default(), detection(&cfg));
    // One directory sync task per configured directory, stopped with the rest.
    let mut directory_tasks = DirectoryTasks::new(store.clone(), clock.clone());
    directory_tasks.follow(directories).await;
    let cancel = daemon.cancel_token();
    // Retention (`[daemon] retention_days`): old bookings anonymised, stopped with the rest.
    let retention = cfg.daemon.retention_days.map(|days| {
        let stop = cancel.clone();
        tokio::spawn(crate::store::retention::retention_loop(
            store.clone(),
            clock.clone(),
            days,
            async move { stop.cancelled().await },
        ))
    });
    // The reports' per-day rollup, kept up to date in the background.
    let rollup = {
        let stop = cancel.clone();
        tokio::spawn(crate::store::reports::rollup_loop(store.clone(), async move {
            stop.cancelled().await
        }))
    };
    let web_state = crate::web::WebState {
        store: store.clone(),
        clock: clock.clone(),
        directories: web_directories.clone(),
        admin_groups: cfg
            .web
            .admin_groups
            .iter()
            .filter_map(|g| crate::web::AdminGroup::parse(g))
            .collect(),
        secret_key,
        secure_cookies: cfg.web.secure_cookies,
        exchange_endpoints: cfg.exchange.iter().map(|e| e.name.clone()).collect(),
        outbox_wake: Some(daemon.outbox_wake()),
    };
    let ops = ops_router(store.clone(), metrics.clone());
    let http_cancel = cancel.clone();
    let http = tokio::spawn(async move {
        crate::web::serve_with(listener, web_state, ops, async move { http_cancel.cancelled().await }).await
    });
    tracing::info!(instance = %instance, listen = %cfg.web.listen, "resa.started");
    sd_notify("READY=1");
    let watchdog = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|us| StdDuration::from_micros(us / 2));
    let mut reload = Reload::new(
        config_path,
        cfg.clone(),
        secrets,
        clock.clone(),
        metrics.clone(),
        reloader,
    )
    .with_directories(directory_tasks, web_directories);
    wait_for_stop(watchdog, &mut reload).await;
    sd_notify("STOPPING=1");
    tracing::info!(instance = %instance, "resa.stopping");
    if let Some(directories) = reload.directories.take() {
        directories.stop().await;
    }
    daemon.shutdown().await;
    if let Some(task) = retention {
        let _ = task.await;
    }
    let _ = rollup.await;
    let _ = http.await;
    tracing::info!(instance = %instance, "resa.stopped");
    Ok(())
}

/// Change detection as each `[[exchange]]` block asks for it.
pub fn detection(cfg: &Config) -> HashMap<String, ChangeDetection> {
    cfg.exchange
        .iter()
        .map(|e| (e.name.clone(), e.change_detection))
        .collect()
}

/// A digest of what a client or a sync task is built from: its block (whose
/// secrets print as `***`) and the secrets' and CA's contents, so a password
/// rotated in the same file counts as a change while nothing secret is kept
/// or logged.
fn fingerprint(
    block: &impl std::fmt::Debug,
    extra: &str,
    secrets: &[Option<Secret>],
    files: &[std::path::PathBuf],
) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(format!("{block:?}\n{extra}\n"));
    for s in secrets {
        h.update(s.as_ref().map_or("", |s| s.expose()));
        h.update([0u8]);
    }
    for f in files {
        h.update(std::fs::read(f).unwrap_or_default());
        h.update([0u8]);
    }
    format!("{:x}", h.finalize())
}

fn exchange_fingerprint(ex: &config::Exchange, time_zone: &str, secrets: &SecretSource) -> String {
    // How the endpoint is watched is no part of its client.
    let ex = &config::Exchange {
        change_detection: ChangeDetection::Auto,
        poll_interval_seconds: 0,
        ..ex.clone()
    };
    let read = |file: &Option<std::path::PathBuf>, env: &Option<String>| {
        (file.is_some() || env.is_some())
            .then(|| secrets.read(file.as_deref(), env.as_deref()).ok())
            .flatten()
    };
    fingerprint(
        ex,
        time_zone,
        &[
            read(&ex.password_file, &ex.password_env),
            read(&ex.client_secret_file, &ex.client_secret_env),
        ],
        &ex.ca_file.iter().map(|f| secrets.base_dir.join(f)).collect::<Vec<_>>(),
    )
}

/// One `[[directory]]` block ready to sync: settings (secrets read), pace,
/// and the fingerprint that tells a reload whether it changed.
pub struct DirectoryPlan {
    pub name: String,
    pub settings: crate::directory::DirectorySettings,
    pub every: StdDuration,
    fingerprint: String,
}

/// Every `[[directory]]` block of `cfg`, or the first that cannot be used.
pub fn directory_plan(cfg: &Config, secrets: &SecretSource) -> Result<Vec<DirectoryPlan>, String> {
    cfg.directory
        .iter()
        .map(|d| {
            let settings = d.settings(secrets).map_err(|e| format!("directory {}: {e}", d.name))?;
            let password = secrets
                .read(d.bind_password_file.as_deref(), d.bind_password_env.as_deref())
                .ok();
            let files: Vec<std::path::PathBuf> = d.ca_file.iter().map(|f| secrets.base_dir.join(f)).collect();
            Ok(DirectoryPlan {
                name: d.name.clone(),
                every: StdDuration::from_secs(d.incremental_sync_minutes.max(1) * 60),
                fingerprint: fingerprint(d, "", &[password], &files),
                settings,
            })
        })
        .collect()
}

struct DirectoryTask {
    fingerprint: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The directory sync tasks of `resa serve`, one per `[[directory]]`.
pub struct DirectoryTasks {
    store: Store,
    clock: SharedClock,
    tasks: HashMap<String, DirectoryTask>,
}

impl DirectoryTasks {
    pub fn new(store: Store, clock: SharedClock) -> Self {
        DirectoryTasks {
            store,
            clock,
            tasks: HashMap::new(),
        }
    }

    /// Makes the tasks follow `plan`: a removed directory's task stops, a
    /// changed one's starts again with the new settings (a sync it was in
    /// the middle of is rolled back and done again at once), a new one
    /// starts. One sentence per change.
    pub async fn follow(&mut self, plan: Vec<DirectoryPlan>) -> Vec<String> {
        let mut out = Vec::new();
        let wanted: HashMap<&str, &str> = plan.iter().map(|p| (p.name.as_str(), p.fingerprint.as_str())).collect();
        let stale: Vec<String> = self
            .tasks
            .iter()
            .filter(|(name, t)| wanted.get(name.as_str()) != Some(&t.fingerprint.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(t) = self.tasks.remove(&name) {
                let _ = t.stop.send(true);
                let _ = t.task.await;
                if !wanted.contains_key(name.as_str()) {
                    out.push(format!("[[directory]] {name} was removed: its sync stopped"));
                }
            }
        }
        for p in plan {
            if self.tasks.contains_key(&p.name) {
                continue;
            }
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(crate::directory::worker::run(
                self.store.clone(),
                p.settings,
                p.every,
                self.clock.clone(),
                stopped,
            ));
            out.push(format!("[[directory]] {}: syncing with the settings read now", p.name));
            self.tasks.insert(
                p.name,
                DirectoryTask {
                    fingerprint: p.fingerprint,
                    stop,
                    task,
                },
            );
        }
        out
    }

    /// Stops every task.
    pub async fn stop(self) {
        for t in self.tasks.values() {
            let _ = t.stop.send(true);
        }
        for (_, t) in self.tasks {
            let _ = t.task.await;
        }
    }
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// One sentence per change now in effect.
    pub applied: Vec<String>,
    /// One sentence per section that changed but takes a restart, and why.
    pub needs_restart: Vec<String>,
}

/// A running `resa serve`'s configuration, and what applies a new one
/// (SIGHUP): the Exchange clients of changed `[[exchange]]` blocks are built
/// again (a rotated password file counts) and the daemon's loops move to
/// them at their next round, the pacing and change detection apply at the
/// next round, a changed `[[directory]]`'s sync task starts again with the
/// new settings, the log level applies at once. A file with problems, or a
/// block whose client or settings cannot be built (an unreadable CA), is
/// refused as a whole: the running settings stay.
pub struct Reload {
    path: std::path::PathBuf,
    running: Config,
    secrets: SecretSource,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    reloader: Reloader<EwsExchange>,
    /// Per endpoint, what its running client was built from.
    clients: HashMap<String, String>,
    pub directories: Option<DirectoryTasks>,
    /// The directories the web login uses, swapped with the tasks.
    web_directories: crate::web::Directories,
}

impl Reload {
    pub fn new(
        path: &std::path::Path,
        running: Config,
        secrets: SecretSource,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        reloader: Reloader<EwsExchange>,
    ) -> Reload {
        let clients = running
            .exchange
            .iter()
            .map(|e| (e.name.clone(), exchange_fingerprint(e, &running.time_zone, &secrets)))
            .collect();
        Reload {
            path: path.to_owned(),
            running,
            secrets,
            clock,
            metrics,
            reloader,
            clients,
            directories: None,
            web_directories: crate::web::Directories::default(),
        }
    }

    /// Follows the daemon's settings as reloads change them.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Live<EwsExchange>>> {
        self.reloader.subscribe()
    }

    /// Lets reloads restart these directory sync tasks.
    pub fn with_directories(mut self, tasks: DirectoryTasks, web: crate::web::Directories) -> Reload {
        self.directories = Some(tasks);
        self.web_directories = web;
        self
    }

    /// Reads the file again and applies what can change live.
    pub async fn apply(&mut self) -> Result<Reloaded, String> {
        let cfg = config::load(&self.path).map_err(|p| p.to_string())?;
        // Everything is built before anything is applied.
        let tz: chrono_tz::Tz = cfg.time_zone.parse().unwrap_or(chrono_tz::Europe::Paris);
        let mut done = Reloaded::default();
        let mut replaced = HashMap::new();
        let mut clients = HashMap::new();
        for ex in &cfg.exchange {
            let print = exchange_fingerprint(ex, &cfg.time_zone, &self.secrets);
            if self.clients.get(&ex.name) != Some(&print) {
                let client =
                    exchange_client(ex, tz, &self.secrets, self.clock.clone())?.with_metrics(self.metrics.clone());
                replaced.insert(ex.name.clone(), client);
                done.applied.push(format!(
                    "[[exchange]] {}: a new EWS client; mailbox workers, subscriptions and the outbox use it from \
                     their next round",
                    ex.name
                ));
            }
            clients.insert(ex.name.clone(), print);
        }
        let removed: Vec<String> = self
            .clients
            .keys()
            .filter(|n| !clients.contains_key(*n))
            .cloned()
            .collect();
        for name in &removed {
            done.applied.push(format!(
                "[[exchange]] {name} was removed: its mailboxes wait for it to come back"
            ));
        }
        let plan = match &self.directories {
            Some(_) => Some(directory_plan(&cfg, &self.secrets)?),
            None => None,
        };
        let pacing = Pacing::from_config(&cfg);
        let live = self.reloader.current();
        if pacing.poll != live.pacing.poll {
            done.applied
                .push(format!("polling every {} s from the next round", pacing.poll.as_secs()));
        }
        let detection = detection(&cfg);
        if detection != live.detection {
            done.applied
                .push("change_detection: each endpoint's mailboxes change over at their next round".into());
        }
        self.reloader
            .apply(replaced, &removed, pacing, live.watch.clone(), detection);
        self.clients = clients;
        if let (Some(tasks), Some(plan)) = (self.directories.as_mut(), plan) {
            let settings: Vec<_> = plan.iter().map(|d| d.settings.clone()).collect();
            done.applied.extend(tasks.follow(plan).await);
            if differs(&self.running.directory, &cfg.directory) {
                self.web_directories.set(settings);
                done.applied
                    .push("[[directory]]: the web login uses the new LDAP settings from its next sign-in".into());
            }
        }
        if self.running.log.level != cfg.log.level {
            let applied = reload_log_level(&cfg.log.level);
            done.applied
                .push(format!("log level {} (applied: {applied})", cfg.log.level));
        }
        done.needs_restart.extend(reload_report(&self.running, &cfg));
        // What needs a restart is still what runs.
        let mut running = cfg;
        running.database = self.running.database.clone();
        running.web = self.running.web.clone();
        running.daemon.lease_seconds = self.running.daemon.lease_seconds;
        running.daemon.retention_days = self.running.daemon.retention_days;
        running.language = self.running.language;
        running.directory = self.running.directory.clone();
        self.running = running;
        Ok(done)
    }
}

/// Secrets print as `***`, so comparing the Debug forms never compares (or
/// logs) a secret.
fn differs<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

/// The sections of a reloaded configuration that changed but cannot apply
/// while the daemon runs, one sentence each saying why. Exchange endpoints,
/// pacing, change detection, directories and the log level apply live
/// ([`Reload::apply`]).
pub fn reload_report(running: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if differs(&running.database, &new.database) {
        out.push("[database] changed: needs a restart, because the connection pool is opened at start".into());
    }
    if differs(&running.web, &new.web) {
        out.push(
            "[web] changed: needs a restart, because the listener is bound and the signing key read at start".into(),
        );
    }
    if running.daemon.lease_seconds != new.daemon.lease_seconds {
        out.push(
            "[daemon] lease_seconds changed: needs a restart, because this instance's leases were taken with the \
             running length"
                .into(),
        );
    }
    if running.daemon.retention_days != new.daemon.retention_days {
        out.push("[daemon] retention_days changed: needs a restart, because the retention job starts with it".into());
    }
    if running.language != new.language {
        out.push(
            "language changed: needs a restart, because the web site and the message templates read it at start".into(),
        );
    }
    out
}

/// Waits for SIGTERM or SIGINT, pinging the watchdog meanwhile. SIGHUP
/// re-reads the configuration and applies it ([`Reload::apply`]): a file
/// with problems is refused (and they are logged) and the running settings
/// stay; every section that changed but needs a restart is named in the log
/// with why. The instance keeps its name: it is chosen at start. Mailboxes
/// and resources come from the database and need no reload.
async fn wait_for_stop(watchdog: Option<StdDuration>, reload: &mut Reload) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let tick = watchdog.unwrap_or(StdDuration::from_secs(3600));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match reload.apply().await {
                    Ok(done) => {
                        for change in &done.applied {
                            tracing::info!(change = %change, "config.reload_applied");
                        }
                        for change in &done.needs_restart {
                            tracing::warn!(change = %change, "config.reload_needs_restart");
                        }
                        tracing::info!(applied = done.applied.len(), needs_restart = done.needs_restart.len(), "config.reloaded");
                    }
                    Err(p) => tracing::warn!(problems = %p, "config.reload_refused"),
                }
            }
            _ = tokio::time::sleep(tick) => {
                if watchdog.is_some() {
                    sd_notify("WATCHDOG=1");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
version = 1

[database]
url = "postgres://resa@127.0.0.1:5432/resa"

[log]
level = "info"

[[exchange]]
name = "plaine-commune"
url = "https://mail.plainecommune.fr/EWS/Exchange.asmx"
version = "Exchange2016"
auth = "ntlm"
username = "svc-resa"
domain = "PLAINECOMMUNE"
password_file = "ews.pwd"
poll_interval_seconds = 300

[[directory]]
name = "pc"
organisation = "plaine-commune"
url = "ldaps://dc1.plainecommune.local"
bind_dn = "CN=svc-resa,OU=Services,DC=plainecommune,DC=local"
bind_password_file = "ldap.pwd"
user_base_dn = "OU=Agents,DC=plainecommune,DC=local"
group_base_dn = "OU=Groupes,DC=plainecommune,DC=local"
"#;

    fn load(text: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ews.pwd"), "pa55word\n").expect("write");
        std::fs::write(dir.path().join("ldap.pwd"), "pa55word\n").expect("write");
        let path = dir.path().join("resa.toml");
        std::fs::write(&path, text).expect("write");
        config::load(&path).unwrap_or_else(|p| panic!("{p}"))
    }

    #[test]
    fn a_reload_names_each_section_that_needs_a_restart_and_why() {
        let running = load(FILE);
        // Exchange, directories, pacing and the log level apply live:
        // nothing to report.
        let live = load(
            &FILE
                .replace("level = \"info\"", "level = \"warn\"")
                .replace("poll_interval_seconds = 300", "poll_interval_seconds = 60")
                .replace("mail.plainecommune.fr", "mail2.plainecommune.fr")
                .replace("dc1.plainecommune.local", "dc2.plainecommune.local"),
        );
        assert_eq!(reload_report(&running, &live), Vec::<String>::new());
        let moved = load(
            &FILE
                .replace("5432/resa", "5433/resa")
                .replace("version = 1\n", "version = 1\nlanguage = \"en\"\n"),
        );
        let report = reload_report(&running, &moved);
        assert_eq!(report.len(), 2, "{report:?}");
        assert!(report[0].starts_with("[database] changed: needs a restart, because"));
        assert!(report[1].starts_with("language changed: needs a restart, because"));
    }

    #[test]
    fn a_rotated_secret_changes_the_fingerprint_without_showing_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ews.pwd"), "pa55word\n").expect("write");
        std::fs::write(dir.path().join("ldap.pwd"), "pa55word\n").expect("write");
        let path = dir.path().join("resa.toml");
        std::fs::write(&path, FILE).expect("write");
        let cfg = config::load(&path).unwrap_or_else(|p| panic!("{p}"));
        let secrets = SecretSource::system(dir.path().to_owned());
        let before = exchange_fingerprint(&cfg.exchange[0], &cfg.time_zone, &secrets);
        assert_eq!(before, exchange_fingerprint(&cfg.exchange[0], &cfg.time_zone, &secrets));
        std::fs::write(dir.path().join("ews.pwd"), "n3w-pa55word\n").expect("write");
        let after = exchange_fingerprint(&cfg.exchange[0], &cfg.time_zone, &secrets);
        assert_ne!(before, after);
        assert!(!after.contains("pa55word"));
    }
}
