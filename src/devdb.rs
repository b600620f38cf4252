//! A private PostgreSQL cluster started from the installed binaries, for the
//! integration tests and `resa demo`.
//!
//! It runs `initdb` once per data directory and then the `postgres` server as a
//! child process bound to loopback on a free port. When the current user is
//! root, the server runs as the `postgres` system user (PostgreSQL refuses to
//! run as root). The server is started from a dedicated thread that lives as
//! long as the process and asks the kernel to stop the server when that thread
//! dies, so a crashed or killed test run never leaves a server behind.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};

#[derive(Debug, thiserror::Error)]
pub enum DevDbError {
    #[error(
        "PostgreSQL server binaries not found (looked in {0}); install the `postgresql` package or set RESA_PG_BIN to the directory holding initdb and postgres"
    )]
    BinariesNotFound(String),
    #[error("running as root, but there is no `postgres` system user to run the server as")]
    NoPostgresUser,
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("initdb failed ({status}); see {log}")]
    InitDb { status: String, log: PathBuf },
    #[error("the PostgreSQL server did not become ready within {secs} s; see {log}")]
    NotReady { secs: u64, log: PathBuf },
    #[error("the PostgreSQL server exited early ({status}); see {log}")]
    Exited { status: String, log: PathBuf },
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevDbError {
    let action = action.into();
    move |source| DevDbError::Io { action, source }
}

/// A running private cluster. Dropping it stops the server.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    pid: Pid,
    data_dir: PathBuf,
    log: PathBuf,
    // Behind a mutex so a cluster can live in a static shared by test threads.
    stopped: Mutex<mpsc::Receiver<()>>,
}

impl Cluster {
    /// Starts a server on `data_dir`, creating the cluster on first use.
    ///
    /// The superuser is `postgres` with trust authentication on loopback only;
    /// the cluster is for tests and demos, never for production data.
    pub fn start(data_dir: &Path) -> Result<Cluster, DevDbError> {
        let bin = find_bin_dir()?;
        let run_as = run_as_user()?;
        std::fs::create_dir_all(data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(io(format!("resolving {}", data_dir.display())))?;
        let pgdata = data_dir.join("pgdata");
        let sockets = data_dir.join("sockets");
        let log = data_dir.join("postgres.log");
        std::fs::create_dir_all(&sockets).map_err(io("creating the socket directory"))?;
        if let Some(user) = &run_as {
            chown_tree_root(&data_dir, user)?;
            chown_tree_root(&sockets, user)?;
        }
        if !pgdata.join("PG_VERSION").exists() {
            let initdb_log = data_dir.join("initdb.log");
            let out = std::fs::File::create(&initdb_log).map_err(io("creating initdb.log"))?;
            let err = out.try_clone().map_err(io("creating initdb.log"))?;
            let mut cmd = Command::new(bin.join("initdb"));
            cmd.arg("-D")
                .arg(&pgdata)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ])
                .stdout(out)
                .stderr(err);
            as_user(&mut cmd, &run_as);
            let status = cmd.status().map_err(io("running initdb"))?;
            if !status.success() {
                return Err(DevDbError::InitDb {
                    status: status.to_string(),
                    log: initdb_log,
                });
            }
        }
        let port = free_port()?;
        let logfile = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io("opening postgres.log"))?;
        if let Some(user) = &run_as {
            chown(&log, user)?;
        }
        let logfile2 = logfile.try_clone().map_err(io("opening postgres.log"))?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D").arg(&pgdata);
        for setting in [
            "listen_addresses=127.0.0.1".to_owned(),
            format!("port={port}"),
            format!("unix_socket_directories={}", sockets.display()),
            "fsync=off".to_owned(),
            "synchronous_commit=off".to_owned(),
            "full_page_writes=off".to_owned(),
            "max_connections=400".to_owned(),
            "shared_buffers=128MB".to_owned(),
            "log_min_messages=warning".to_owned(),
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd.stdin(Stdio::null()).stdout(logfile).stderr(logfile2);
        // Its own process group: a Ctrl-C in the terminal reaches the parent,
        // which then stops the server in order, after its own clients.
        cmd.process_group(0);
        as_user(&mut cmd, &run_as);
        // SAFETY: the closure only calls prctl(2), which is async-signal-safe,
        // between fork and exec.
        unsafe {
            cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from));
        }

        // The parent-death signal fires when the spawning *thread* exits, so
        // the server is spawned from a thread that lives until the server stops.
        let (started_tx, started_rx) = mpsc::channel::<Result<u32, std::io::Error>>();
        let (stopped_tx, stopped_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("resa-postgres".into())
            .spawn(move || {
                let child: Result<Child, _> = cmd.spawn();
                match child {
                    Ok(mut child) => {
                        let _ = started_tx.send(Ok(child.id()));
                        let _ = child.wait();
                        let _ = stopped_tx.send(());
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                    }
                }
            })
            .map_err(io("starting the supervisor thread"))?;
        let pid = started_rx
            .recv()
            .map_err(|_| DevDbError::Exited {
                status: "supervisor thread ended".into(),
                log: log.clone(),
            })?
            .map_err(io("starting postgres"))?;
        let cluster = Cluster {
            port,
            pid: Pid::from_raw(pid as i32),
            data_dir,
            log,
            stopped: Mutex::new(stopped_rx),
        };
        cluster.wait_ready(Duration::from_secs(60))?;
        Ok(cluster)
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), DevDbError> {
        let deadline = crate::clock::monotonic() + limit;
        loop {
            if self.stopped_signal(Duration::ZERO) {
                return Err(DevDbError::Exited {
                    status: "server stopped during start-up".into(),
                    log: self.log.clone(),
                });
            }
            // The server accepts TCP connections only once recovery is done;
            // a plain connect is enough to know it listens.
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.accepts_queries() {
                return Ok(());
            }
            if crate::clock::monotonic() > deadline {
                return Err(DevDbError::NotReady {
                    secs: limit.as_secs(),
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server answers a startup message (it may still be starting).
    fn accepts_queries(&self) -> bool {
        let Ok(bin) = find_bin_dir() else {
            return false;
        };
        Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of a database on this cluster, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, database)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server (fast shutdown) and waits for it to exit.
    pub fn stop(&self) {
        if kill(self.pid, Signal::SIGINT).is_ok() {
            self.stopped_signal(Duration::from_secs(30));
        }
    }

    /// Whether the server has exited, waiting at most `wait` for it.
    fn stopped_signal(&self, wait: Duration) -> bool {
        let rx = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        if wait.is_zero() {
            rx.try_recv().is_ok()
        } else {
            rx.recv_timeout(wait).is_ok()
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Finds the directory holding `initdb` and `postgres`: `RESA_PG_BIN`, then
/// `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir() -> Result<PathBuf, DevDbError> {
    let mut looked = Vec::new();
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("RESA_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
        looked.push(dir.display().to_string());
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
        looked.push(dir.display().to_string());
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    candidates.sort();
    looked.push("/usr/lib/postgresql/*/bin".into());
    candidates
        .into_iter()
        .rev()
        .map(|(_, d)| d)
        .find(|d| has_server(d))
        .ok_or_else(|| DevDbError::BinariesNotFound(looked.join(", ")))
}

fn run_as_user() -> Result<Option<User>, DevDbError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(u)) => Ok(Some(u)),
        _ => Err(DevDbError::NoPostgresUser),
    }
}

fn as_user(cmd: &mut Command, user: &Option<User>) {
    if let Some(u) = user {
        cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
        cmd.env("HOME", &u.dir).env("USER", &u.name);
    }
}

fn chown(path: &Path, user: &User) -> Result<(), DevDbError> {
    nix::unistd::chown(path, Some(user.uid), Some(user.gid)).map_err(|e| DevDbError::Io {
        action: format!("giving {} to {}", path.display(), user.name),
        source: e.into(),
    })
}

/// Gives a directory to the server's user and makes sure that user can reach
/// it (each ancestor must be searchable by others).
fn chown_tree_root(dir: &Path, user: &User) -> Result<(), DevDbError> {
    chown(dir, user)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("setting the mode of {}", dir.display())))
}

/// Whether every ancestor of `path` lets other users through, so a server
/// running as `postgres` can reach a data directory below it.
pub fn reachable_by_others(path: &Path) -> bool {
    path.ancestors().skip(1).all(|a| {
        a.as_os_str().is_empty()
            || a == OsStr::new("/")
            || std::fs::metadata(a)
                .map(|m| m.permissions().mode() & 0o001 != 0)
                .unwrap_or(false)
    })
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, DevDbError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(io("finding a free port"))?;
    let port = l.local_addr().map_err(io("finding a free port"))?.port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_reachable() {
        assert!(reachable_by_others(Path::new("/tmp/x")));
    }
}
