//! The daemon's wiring: builds the Exchange clients from the configuration,
//! runs the lease loop, one worker per leased mailbox, the outbox worker and
//! the HTTP listener, and stops them all cleanly.
//!
//! Every task is tracked; shutdown (SIGTERM, SIGINT) cancels them, waits for
//! each to finish its current step, then hands the leases back so another
//! instance takes over at once instead of at the lease expiry.

use crate::clock::SharedClock;
use crate::config::{self, Config, ExchangeAuth, ExchangeVersion, SecretSource};
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

/// The EWS clients of the configuration, by endpoint name.
pub fn exchanges(
    cfg: &Config,
    secrets: &SecretSource,
    clock: SharedClock,
) -> Result<HashMap<String, EwsExchange>, String> {
    let default_tz: chrono_tz::Tz = cfg.time_zone.parse().unwrap_or(chrono_tz::Europe::Paris);
    let mut out = HashMap::new();
    for ex in &cfg.exchange {
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
                let token_url =
                    url::Url::parse(&format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"))
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
        let client = Client::new(cc, clock.clone()).map_err(|e| format!("exchange {}: {e}", ex.name))?;
        out.insert(
            ex.name.clone(),
            EwsExchange::new(Arc::new(client), ex.impersonation, default_tz),
        );
    }
    Ok(out)
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
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let ctx = Arc::new(ctx);
        let instance = ctx.instance.clone();
        let store = ctx.store.clone();
        let metrics = ctx.metrics.clone();
        // Rung by a mailbox worker that queued answers, so they leave at
        // once rather than at the outbox worker's next idle tick.
        let outbox_wake = Arc::new(Notify::new());
        tracker.spawn(lease_loop(
            ctx.clone(),
            pacing.clone(),
            watch,
            outbox_wake.clone(),
            cancel.clone(),
            tracker.clone(),
        ));
        tracker.spawn(vehicles_loop(ctx.clone(), cancel.clone()));
        tracker.spawn(outbox_loop(ctx, pacing, outbox_wake.clone(), cancel.clone()));
        Daemon {
            instance,
            cancel,
            tracker,
            store,
            metrics,
            outbox_wake,
        }
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
    ctx: Arc<SyncContext<E>>,
    pacing: Pacing,
    watch: WatchPacing,
    outbox_wake: Arc<Notify>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let host = hostname();
    // One worker per leased mailbox, stopped when the lease goes, and its
    // wake-up signal, shared with the streaming group that covers it.
    let mut workers: HashMap<Uuid, (CancellationToken, Arc<Signal>)> = HashMap::new();
    // Streaming groups, by endpoint.
    let mut groups: HashMap<String, Groups> = HashMap::new();
    loop {
        let now = ctx.clock.now();
        let round = async {
            ctx.store.heartbeat(&ctx.instance, &host, now).await?;
            ctx.store.register_mailboxes().await?;
            let live = ctx.store.live_instances(now, pacing.lease).await?.max(1);
            let total: i64 = ctx.store.active_mailbox_count().await?;
            let share = (total + live - 1) / live;
            ctx.store
                .claim_mailboxes(&ctx.instance, share.max(1), now, pacing.lease)
                .await
        };
        match round.await {
            Ok(mailboxes) => {
                ctx.metrics.set_mailboxes_leased(mailboxes.len());
                let held: Vec<Uuid> = mailboxes.iter().map(|m| m.resource_id).collect();
                workers.retain(|id, (token, _)| {
                    let keep = held.contains(id);
                    if !keep {
                        token.cancel();
                    }
                    keep
                });
                let mut streamed: HashMap<String, Vec<Member>> = HashMap::new();
                for m in mailboxes {
                    let mode = match ctx.exchanges.get(&m.endpoint) {
                        Some(ex) if watch.enabled => ex.notifications(),
                        _ => Notifications::None,
                    };
                    let signal = match workers.get(&m.resource_id) {
                        Some((_, signal)) => signal.clone(),
                        None => {
                            let token = cancel.child_token();
                            let signal = Arc::new(Signal::default());
                            workers.insert(m.resource_id, (token.clone(), signal.clone()));
                            tracker.spawn(mailbox_loop(
                                ctx.clone(),
                                m.resource_id,
                                mode,
                                pacing.clone(),
                                watch.clone(),
                                Wakes {
                                    mailbox: signal.clone(),
                                    outbox: outbox_wake.clone(),
                                },
                                token,
                            ));
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
                for endpoint in endpoints {
                    let members = streamed.remove(&endpoint).unwrap_or_default();
                    groups
                        .entry(endpoint.clone())
                        .or_default()
                        .update(&ctx, &endpoint, members, &watch, &tracker, &cancel);
                }
            }
            Err(e) => tracing::warn!(error = %e, "lease.round_failed"),
        }
        // Renew well before the expiry.
        let every = (pacing.lease / 3).to_std().unwrap_or(StdDuration::from_secs(10));
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
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
/// slower safety timer.
async fn mailbox_loop<E: Exchange>(
    ctx: Arc<SyncContext<E>>,
    resource_id: Uuid,
    mode: Notifications,
    pacing: Pacing,
    watch: WatchPacing,
    wakes: Wakes,
    cancel: CancellationToken,
) {
    let Wakes {
        mailbox: signal,
        outbox: outbox_wake,
    } = wakes;
    let poll = pacing.poll;
    let mut failures = 0u32;
    let mut pull = PullWatch::default();
    let mut smtp_endpoint: Option<(String, String)> = None;
    let mut synced: Option<std::time::Instant> = None;
    let mut reconciled: Option<std::time::Instant> = None;
    // Work owed: cleared only when done, so a failed pass is tried again.
    let mut owe_sync = true;
    let mut owe_reconcile = true;
    let mut pending_calendar = false;
    let mut timer = false;
    loop {
        let now = ctx.clock.now();
        let wake = signal.take();
        owe_sync |= wake.inbox || wake.catch_up;
        owe_reconcile |= wake.catch_up;
        pending_calendar |= wake.calendar;
        let pass = async {
            let Some(mailbox) = ctx.store.leased_mailbox(&ctx.instance, resource_id, now).await? else {
                return Ok::<_, crate::sync::SyncError>(false);
            };
            smtp_endpoint = Some((mailbox.smtp.clone(), mailbox.endpoint.clone()));
            if mode == Notifications::Pull && timer {
                let ex = ctx.exchange(&mailbox.endpoint)?;
                if !pull.read(ex, &mailbox.smtp, &signal, &watch, &ctx.metrics).await {
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
                pacing.reconcile
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
            // The lease went elsewhere: this worker's job is over.
            Ok(false) | Err(crate::sync::SyncError::LeaseLost) => break,
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
        timer = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = signal.notified() => false,
            _ = tokio::time::sleep(wait) => true,
        };
    }
    if let Some((smtp, endpoint)) = smtp_endpoint
        && let Ok(ex) = ctx.exchange(&endpoint)
    {
        pull.close(ex, &smtp).await;
    }
    signal.set_watched(false, &ctx.metrics);
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
    ctx: Arc<SyncContext<E>>,
    pacing: Pacing,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut ticked: Option<std::time::Instant> = None;
    loop {
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
    let web_exchanges = exchanges.clone();
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
    let directories = cfg
        .directory
        .iter()
        .map(|d| {
            let every = StdDuration::from_secs(d.incremental_sync_minutes.max(1) * 60);
            d.settings(&secrets)
                .map(|s| (s, every))
                .map_err(|e| format!("directory {}: {e}", d.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let directory_settings = directories.iter().map(|(s, _)| s.clone()).collect();
    let listener = tokio::net::TcpListener::bind(cfg.web.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", cfg.web.listen))?;
    let daemon = Daemon::start(ctx, Pacing::from_config(&cfg));
    // One directory sync task per configured directory, stopped with the rest.
    let (stop_directories, directories_stopped) = tokio::sync::watch::channel(false);
    let mut directory_tasks = Vec::new();
    for (settings, every) in directories {
        directory_tasks.push(tokio::spawn(crate::directory::worker::run(
            store.clone(),
            settings,
            every,
            clock.clone(),
            directories_stopped.clone(),
        )));
    }
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
    let web_state = crate::web::WebState {
        store: store.clone(),
        clock: clock.clone(),
        directories: directory_settings,
        admin_groups: cfg
            .web
            .admin_groups
            .iter()
            .filter_map(|g| crate::web::AdminGroup::parse(g))
            .collect(),
        secret_key,
        secure_cookies: cfg.web.secure_cookies,
        exchange_endpoints: cfg.exchange.iter().map(|e| e.name.clone()).collect(),
        booking_sink: Arc::new(crate::exchange::web_sink::ExchangeBookingSink {
            store: store.clone(),
            exchanges: web_exchanges,
            outbox_wake: Some(daemon.outbox_wake()),
        }),
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
    wait_for_stop(watchdog, config_path, cfg.clone()).await;
    sd_notify("STOPPING=1");
    tracing::info!(instance = %instance, "resa.stopping");
    let _ = stop_directories.send(true);
    for t in directory_tasks {
        let _ = t.await;
    }
    daemon.shutdown().await;
    if let Some(task) = retention {
        let _ = task.await;
    }
    let _ = http.await;
    tracing::info!(instance = %instance, "resa.stopped");
    Ok(())
}

/// What a reloaded configuration changes, one sentence per section that
/// differs from the running one, saying whether it applies now or why it
/// needs a restart. Empty when nothing but the log level changed.
pub fn reload_report(running: &Config, new: &Config) -> Vec<String> {
    // Secrets print as `***`, so comparing the Debug forms never compares
    // (or logs) a secret; a changed secret file's content is read at start.
    fn differs<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") != format!("{b:?}")
    }
    let mut out = Vec::new();
    let names = |v: &[config::Exchange]| {
        v.iter()
            .map(|e| e.name.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    for name in names(&running.exchange).union(&names(&new.exchange)) {
        let old = running.exchange.iter().find(|e| &e.name == name);
        let now = new.exchange.iter().find(|e| &e.name == name);
        let what = match (old, now) {
            (None, Some(_)) => "is new",
            (Some(_), None) => "was removed",
            (Some(a), Some(b)) if differs(a, b) => "changed",
            _ => continue,
        };
        out.push(format!(
            "[[exchange]] {name} {what}: needs a restart, because its EWS client (authenticated connections, \
             affinity cookies), its subscriptions and the pacing of its mailbox workers are built at start"
        ));
    }
    let dirs = |v: &[config::Directory]| {
        v.iter()
            .map(|d| d.name.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    for name in dirs(&running.directory).union(&dirs(&new.directory)) {
        let old = running.directory.iter().find(|d| &d.name == name);
        let now = new.directory.iter().find(|d| &d.name == name);
        let what = match (old, now) {
            (None, Some(_)) => "is new",
            (Some(_), None) => "was removed",
            (Some(a), Some(b)) if differs(a, b) => "changed",
            _ => continue,
        };
        out.push(format!(
            "[[directory]] {name} {what}: needs a restart, because its sync task and the web login hold the \
             LDAP settings read at start"
        ));
    }
    if differs(&running.database, &new.database) {
        out.push("[database] changed: needs a restart, because the connection pool is opened at start".into());
    }
    if differs(&running.web, &new.web) {
        out.push(
            "[web] changed: needs a restart, because the listener is bound and the signing key read at start".into(),
        );
    }
    if differs(&running.daemon, &new.daemon) {
        out.push(
            "[daemon] changed: needs a restart, because lease lengths must agree within one instance's life".into(),
        );
    }
    if running.language != new.language || running.time_zone != new.time_zone {
        out.push("language or time_zone changed: needs a restart, because the EWS clients read them at start".into());
    }
    out
}

/// Waits for SIGTERM or SIGINT, pinging the watchdog meanwhile. SIGHUP
/// re-reads the configuration: a file with problems is refused (and they are
/// logged); a good one's log level applies at once. Mailboxes and resources
/// come from the database and need no reload. Every other section that
/// changed is named in the log with why it needs a restart
/// ([`reload_report`]); the running settings stay as they were.
async fn wait_for_stop(watchdog: Option<StdDuration>, config_path: &std::path::Path, running: Config) {
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
                match config::load(config_path) {
                    Ok(cfg) => {
                        let applied = reload_log_level(&cfg.log.level);
                        tracing::info!(log.level = %cfg.log.level, log.applied = applied, "config.reloaded");
                        for change in reload_report(&running, &cfg) {
                            tracing::warn!(change = %change, "config.reload_needs_restart");
                        }
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
        // The log level alone applies at once: nothing to report.
        let quieter = load(&FILE.replace("level = \"info\"", "level = \"warn\""));
        assert_eq!(reload_report(&running, &quieter), Vec::<String>::new());
        let changed = load(
            &FILE
                .replace("poll_interval_seconds = 300", "poll_interval_seconds = 60")
                .replace("dc1.plainecommune.local", "dc2.plainecommune.local"),
        );
        let report = reload_report(&running, &changed);
        assert_eq!(report.len(), 2, "{report:?}");
        assert!(report[0].starts_with("[[exchange]] plaine-commune changed: needs a restart, because"));
        assert!(report[1].starts_with("[[directory]] pc changed: needs a restart, because"));
        // Secrets never appear in what is logged.
        assert!(report.iter().all(|l| !l.contains("pa55word")));
    }
}
