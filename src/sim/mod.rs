//! The Exchange simulator: an EWS server on loopback with users, rooms and
//! equipment mailboxes, meeting delivery between them, and a JSON control
//! API under `/_sim/` with which tests act as Outlook users.
//!
//! It owns the behaviour resa depends on, not Exchange's whole surface:
//! meeting requests, responses, updates and cancellations
//! ([`state`]), the operations resa and exchangelib call ([`ews`]),
//! NTLM and Basic authentication with impersonation ([`auth`]), server
//! versions 2007 SP1 to 2016 with the schema checks of each ([`version`]),
//! pull and streaming notifications ([`notify`]) and injected faults
//! ([`faults`]). `CONTROL_API.md` documents `/_sim/`.

pub mod auth;
pub mod control;
pub mod ews;
pub mod faults;
pub mod notify;
pub mod render;
pub mod seed;
pub mod server;
pub mod state;
pub mod version;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::clock::SharedClock;
use crate::ews::ServerVersion;

pub use seed::Seed;
pub use state::{MailboxKind, World};

/// The one error type of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no mailbox {0}")]
    NoMailbox(String),
    #[error("no such item: {0}")]
    NoItem(String),
    #[error("the meeting {0} is cancelled")]
    Cancelled(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the SyncState is not valid for this folder")]
    BadSyncState,
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("seed file {path}: {message}")]
    Seed { path: PathBuf, message: String },
    #[error("simulator I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("simulator state file: {0}")]
    Persist(String),
    #[error(transparent)]
    Ews(#[from] crate::ews::EwsError),
}

/// How to start a simulator.
#[derive(Clone)]
pub struct SimOptions {
    /// `127.0.0.1:0` picks a free port.
    pub listen: String,
    pub seed: Seed,
    /// The version announced in ServerVersionInfo and enforced on requests.
    pub version: ServerVersion,
    pub clock: SharedClock,
    /// Where to keep the state between runs; loaded at start when present.
    pub state_file: Option<PathBuf>,
    /// How long a minute lasts for streaming subscriptions (ConnectionTimeout
    /// is in minutes); tests shorten it.
    pub minute: std::time::Duration,
}

impl SimOptions {
    pub fn new(listen: impl Into<String>, seed: Seed, version: ServerVersion) -> Self {
        Self {
            listen: listen.into(),
            seed,
            version,
            clock: crate::clock::system(),
            state_file: None,
            minute: std::time::Duration::from_secs(60),
        }
    }
}

/// State shared by every connection.
pub struct Shared {
    pub world: Mutex<World>,
    pub version: ServerVersion,
    pub clock: SharedClock,
    pub faults: Mutex<faults::Faults>,
    pub state_file: Option<PathBuf>,
    pub subscriptions: Mutex<notify::Subscriptions>,
    /// Bumped after every change, so streaming connections wake up.
    pub changes: tokio::sync::watch::Sender<u64>,
    /// Turns true at shutdown.
    pub stop: tokio::sync::watch::Receiver<bool>,
    pub minute: std::time::Duration,
    /// Bumped to cut every open streaming connection (an injected drop).
    pub drops: tokio::sync::watch::Sender<u64>,
    pub streams: Arc<notify::OpenStreams>,
    /// EWS requests received, by operation (what resa costs Exchange).
    pub calls: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Shared {
    /// Runs `f` on the world under the lock, then saves the state when a
    /// state file is configured and `f` succeeded.
    pub fn mutate<T>(&self, f: impl FnOnce(&mut World) -> Result<T, SimError>) -> Result<T, SimError> {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut world)?;
        if let Some(path) = &self.state_file {
            save(&world, path)?;
        }
        drop(world);
        self.changes.send_modify(|n| *n += 1);
        Ok(out)
    }

    pub fn count_call(&self, operation: &str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operation.to_owned())
            .or_insert(0) += 1;
    }

    /// Cuts every open streaming connection, as a network failure would.
    pub fn drop_streams(&self) {
        self.drops.send_modify(|n| *n += 1);
    }

    /// What a server restart does to notifications: every subscription is
    /// forgotten and every streaming connection cut. Mailboxes and their
    /// SyncStates survive, as they do in Exchange's database.
    pub fn restart(&self) {
        self.subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .subs
            .clear();
        self.drop_streams();
    }

    pub fn read<T>(&self, f: impl FnOnce(&World) -> T) -> T {
        let world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        f(&world)
    }
}

fn save(world: &World, path: &std::path::Path) -> Result<(), SimError> {
    let bytes = serde_json::to_vec(world).map_err(|e| SimError::Persist(e.to_string()))?;
    // Write then rename, so a crash never leaves half a file behind.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn load(path: &std::path::Path) -> Result<Option<World>, SimError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SimError::Persist(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Entry point: builds the world and serves it.
pub struct Simulator;

impl Simulator {
    /// Binds the listener and serves in a background task until
    /// [`SimHandle::shutdown`].
    pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
        let epoch = u64::from(rand::random::<u32>());
        let mut world = match &opts.state_file {
            Some(p) => load(p)?,
            None => None,
        }
        .map(Ok)
        .unwrap_or_else(|| opts.seed.build(epoch))?;
        // Logins always come from the seed, never from the state file.
        world.accounts = opts.seed.accounts();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            version: opts.version,
            clock: opts.clock.clone(),
            faults: Mutex::new(faults::Faults::new(opts.seed.faults.clone())),
            state_file: opts.state_file.clone(),
            subscriptions: Mutex::new(notify::Subscriptions::default()),
            changes: tokio::sync::watch::channel(0).0,
            stop: stopped.clone(),
            minute: opts.minute,
            drops: tokio::sync::watch::channel(0).0,
            streams: Arc::default(),
            calls: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind(&opts.listen).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(server::serve(listener, shared.clone(), stopped));
        tracing::info!(sim.addr = %addr, sim.version = %opts.version, "sim.started");
        Ok(SimHandle {
            addr,
            shared,
            stop,
            task,
        })
    }
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/EWS/Exchange.asmx`.
    pub fn ews_url(&self) -> String {
        format!("http://{}/EWS/Exchange.asmx", self.addr)
    }

    /// `http://127.0.0.1:PORT/_sim`.
    pub fn control_url(&self) -> String {
        format!("http://{}/_sim", self.addr)
    }

    /// The state, for tests that look at it directly.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, closes every connection and waits for the server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Serves until the process gets Ctrl-C or SIGTERM (the CLI).
    pub async fn run_until_signal(self) {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        self.shutdown().await;
    }
}
