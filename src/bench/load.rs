//! One load run: N room mailboxes, the simulator in this process, the daemon
//! as a child process, then the idle, steady and burst phases.
//!
//! The daemon runs as `resa serve` in its own process so that its CPU time
//! (`/proc/PID/stat`, every thread) and resident memory (`/proc/PID/status`)
//! are its own, not mixed with the simulator's or the load generator's; its
//! EWS calls by operation and its decisions come from its `/metrics`.
//!
//! The requests are made directly on the simulator's world (as its control
//! API would), so that generating load costs no HTTP round trip. A watcher
//! finds each answer in the organiser's Inbox; the latency is the answer's
//! receive time minus the request's, both stamped by the simulator.

use super::report::{Calls, Idle, LoadRun, Percentiles, Saturation, Steady, total};
use super::{BenchOptions, BenchResult, err};
use crate::devdb::Cluster;
use crate::directory::entry::{GroupRecord, PersonRecord, SmtpAddress};
use crate::domain::policy::{DefaultRight, TimeRange, WeeklyHours};
use crate::domain::recurrence::local_to_utc;
use crate::domain::{Policy, Scope};
use crate::ews::soap::ServerVersion;
use crate::sim::state::{FolderKind, ItemClass, MeetingChanges, MeetingInput, Reply};
use crate::sim::{SimHandle, SimOptions, Simulator};
use crate::store::Store;
use crate::store::catalogue::{Category, NewResource};
use crate::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant, SyncBatch};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;
use uuid::Uuid;

const DOMAIN: &str = "bench.resa.test";
const SERVICE_LOGIN: &str = "RESA\\svc-resa";
const SERVICE_PASSWORD: &str = "bench-only-password";
const ENDPOINT: &str = "sim";
const SITES: usize = 10;
/// Rooms of this site need approval (the organisers may only ask there):
/// one room in ten.
const APPROVAL_SITE: usize = 0;
const USERS: usize = 400;
/// `/proc/PID/stat` counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SEC: f64 = 100.0;

fn room_smtp(i: usize) -> String {
    format!("salle.{i:05}@{DOMAIN}")
}

pub(crate) fn user_smtp(i: usize) -> String {
    format!("agent.{i:03}@{DOMAIN}")
}

/// Organisation, sites, rooms, people, one group, grants and the policies
/// of the demo: rooms open 8:00–20:00 on weekdays, 4 hours at most,
/// capacity enforced, conflicts partially accepted.
pub(crate) async fn populate(store: &Store, n: usize, now: DateTime<Utc>) -> BenchResult<()> {
    let e = err("PostgreSQL");
    let org = store.create_organisation("bench", "Banc d'essai").await.map_err(e)?;
    let mut sites = Vec::new();
    for s in 0..SITES {
        sites.push(
            store
                .create_site(org.id, &format!("site-{s}"), &format!("Site {s}"), "Europe/Paris")
                .await
                .map_err(err("PostgreSQL"))?,
        );
    }
    let salle = store
        .create_resource_type("salle", Category::Room, "Salle de réunion", "Meeting room")
        .await
        .map_err(err("PostgreSQL"))?;
    // Creating thousands of rooms one statement at a time is the slow part
    // of the setup: a few tasks share it.
    let sites_ids: Vec<Uuid> = sites.iter().map(|s| s.id).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 8;
    for w in 0..workers {
        let store = store.clone();
        let sites_ids = sites_ids.clone();
        let type_id = salle.id;
        tasks.spawn(async move {
            for i in (w..n).step_by(workers) {
                let name = format!("Salle {i:05}");
                let smtp = room_smtp(i);
                store
                    .create_resource(&NewResource {
                        site_id: sites_ids[i % SITES],
                        resource_type_id: type_id,
                        name: &name,
                        mailbox_smtp: &smtp,
                        exchange_endpoint: ENDPOINT,
                        capacity: Some([6, 8, 10, 12, 20, 40][i % 6]),
                    })
                    .await
                    .map_err(err("PostgreSQL"))?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(err("setup"))??;
    }
    let people: Vec<PersonRecord> = (0..USERS)
        .map(|i| {
            let smtp = user_smtp(i);
            PersonRecord {
                object_guid: Uuid::from_u128(0xBE_0000 + i as u128),
                dn: format!("CN=Agent {i:03},OU=Agents,DC=bench,DC=local"),
                sam_account_name: format!("agent.{i:03}"),
                user_principal_name: Some(smtp.clone()),
                display_name: format!("Agent {i:03}"),
                department: None,
                manager_dn: None,
                legacy_exchange_dn: None,
                x500_addresses: Vec::new(),
                addresses: vec![SmtpAddress {
                    address: smtp,
                    primary: true,
                }],
                disabled: false,
                usn_changed: Some(1),
            }
        })
        .collect();
    let group = GroupRecord {
        object_guid: Uuid::from_u128(0xBE_FFFF),
        dn: "CN=Agents,OU=Groupes,DC=bench,DC=local".into(),
        sam_account_name: "agents".into(),
        name: "Agents".into(),
        description: None,
        member_dns: people.iter().map(|p| p.dn.clone()).collect(),
        usn_changed: Some(1),
    };
    let dir = store
        .ensure_directory_of("bench", Some("bench"))
        .await
        .map_err(err("PostgreSQL"))?;
    store
        .apply_directory_sync(
            dir.id,
            SyncBatch {
                full: true,
                people: &people,
                groups: std::slice::from_ref(&group),
                highest_usn: Some(1),
                usn_server: None,
            },
            now,
        )
        .await
        .map_err(err("PostgreSQL"))?;
    let agents = store
        .group_by_account("bench", "agents")
        .await
        .map_err(err("PostgreSQL"))?
        .ok_or("the agents group is missing after the directory sync")?;
    for (s, site) in sites.iter().enumerate() {
        store
            .create_grant(&NewGrant {
                subject: GrantSubject::Group(agents.id),
                scope: GrantScope::Site(site.id),
                role: if s == APPROVAL_SITE {
                    GrantRole::Request
                } else {
                    GrantRole::Book
                },
                created_by: None,
            })
            .await
            .map_err(err("PostgreSQL"))?;
    }
    let weekdays = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
    let global = Policy {
        default_right: Some(DefaultRight::None),
        booking_window_days: Some(400),
        closed_on_public_holidays: Some(true),
        conflict_max_count: Some(3),
        conflict_max_percent: Some(20),
        ..Policy::default()
    };
    store
        .set_policy(Scope::Global, &global, now)
        .await
        .map_err(err("PostgreSQL"))?;
    let rooms = Policy {
        opening_hours: TimeRange::hm((8, 0), (20, 0)).map(|h| WeeklyHours::uniform(&weekdays, h)),
        max_duration_minutes: Some(240),
        enforce_capacity: Some(true),
        ..Policy::default()
    };
    store
        .set_policy(Scope::ResourceType(salle.id), &rooms, now)
        .await
        .map_err(err("PostgreSQL"))?;
    Ok(())
}

fn seed(n: usize) -> BenchResult<crate::sim::Seed> {
    let mut mailboxes: Vec<serde_json::Value> = (0..n)
        .map(|i| json!({ "smtp": room_smtp(i), "name": format!("Salle {i:05}"), "kind": "room" }))
        .collect();
    mailboxes
        .extend((0..USERS).map(|i| json!({ "smtp": user_smtp(i), "name": format!("Agent {i:03}"), "kind": "user" })));
    serde_json::from_value(json!({
        "mailboxes": mailboxes,
        "service_account": { "login": SERVICE_LOGIN, "password": SERVICE_PASSWORD },
    }))
    .map_err(err("simulator seed"))
}

/// The daemon's configuration: the private cluster, the simulator, NTLM as
/// the customer's servers use it, and the production defaults otherwise.
fn daemon_config(database_url: &str, ews_url: &str, listen: &str, poll: u64) -> String {
    let (domain, user) = SERVICE_LOGIN.split_once('\\').unwrap_or(("", SERVICE_LOGIN));
    let mut doc = toml_edit::DocumentMut::new();
    doc["version"] = toml_edit::value(1);
    doc["language"] = toml_edit::value("fr");
    doc["time_zone"] = toml_edit::value("Europe/Paris");
    doc["database"]["url"] = toml_edit::value(database_url);
    doc["database"]["max_connections"] = toml_edit::value(10);
    doc["web"]["listen"] = toml_edit::value(listen);
    doc["web"]["secure_cookies"] = toml_edit::value(false);
    let mut ex = toml_edit::Table::new();
    ex["name"] = toml_edit::value(ENDPOINT);
    ex["url"] = toml_edit::value(ews_url);
    ex["version"] = toml_edit::value("Exchange2016");
    ex["auth"] = toml_edit::value("ntlm");
    ex["username"] = toml_edit::value(user);
    ex["domain"] = toml_edit::value(domain);
    ex["password_env"] = toml_edit::value("RESA_BENCH_EWS_PASSWORD");
    ex["impersonation"] = toml_edit::value(true);
    ex["change_detection"] = toml_edit::value("auto");
    ex["poll_interval_seconds"] = toml_edit::value(i64::try_from(poll).unwrap_or(300));
    let mut exchanges = toml_edit::ArrayOfTables::new();
    exchanges.push(ex);
    doc["exchange"] = toml_edit::Item::ArrayOfTables(exchanges);
    doc["log"]["format"] = toml_edit::value("text");
    doc["log"]["level"] = toml_edit::value("warn");
    doc["daemon"]["lease_seconds"] = toml_edit::value(60);
    doc.to_string()
}

/// The daemon in its child process.
struct DaemonProcess {
    child: tokio::process::Child,
    pid: u32,
    metrics_url: String,
    http: reqwest::Client,
}

/// What `/proc` and `/metrics` say at one moment.
#[derive(Debug, Clone, Default)]
struct Sample {
    cpu_secs: f64,
    calls: Calls,
    decisions: u64,
    leased: u64,
    /// Mailboxes covered by a working subscription.
    watched: u64,
    /// Every unlabelled counter and gauge of the daemon.
    counters: BTreeMap<String, u64>,
    /// The daemon's own decision latency histogram (reading a request to
    /// recording its decision): sum in seconds.
    record_secs: f64,
}

impl Sample {
    fn calls_since(&self, before: &Sample) -> Calls {
        self.calls
            .iter()
            .map(|(k, v)| (k.clone(), v - before.calls.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }
}

fn proc_stat(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is
    // field 3, utime 14, stime 15, num_threads 20.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let threads: u64 = f.get(17)?.parse().ok()?;
    Some(((utime + stime) / TICKS_PER_SEC, threads))
}

/// VmRSS and VmHWM, in MB.
fn proc_memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

/// Reads the counters the benchmark needs from the Prometheus text:
/// EWS calls by operation, decisions, mailboxes leased and watched.
fn parse_metrics(text: &str) -> (Calls, u64, u64, u64, BTreeMap<String, u64>) {
    let mut counters = BTreeMap::new();
    let mut calls = Calls::new();
    let mut decisions = 0;
    let mut leased = 0;
    let mut watched = 0;
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let v = v as u64;
        if let Some(labels) = name.strip_prefix("resa_ews_calls_total{") {
            let op = labels
                .split(',')
                .find_map(|l| l.strip_prefix("operation=\""))
                .map(|o| o.trim_end_matches(['"', '}']).to_owned())
                .unwrap_or_default();
            *calls.entry(op).or_default() += v;
        } else if name.starts_with("resa_decisions_total{") {
            decisions += v;
        } else if name == "resa_mailboxes_leased" {
            leased = v;
        } else if name == "resa_mailboxes_watched" {
            watched = v;
        }
        if !name.contains('{') && !name.starts_with("resa_decision_latency") {
            counters.insert(name.to_owned(), v);
        }
    }
    (calls, decisions, leased, watched, counters)
}

impl DaemonProcess {
    async fn start(resa_bin: &Path, config: &Path, log: &Path, listen: &str) -> BenchResult<Self> {
        let out = std::fs::File::create(log).map_err(err("daemon log"))?;
        let out2 = out.try_clone().map_err(err("daemon log"))?;
        let child = tokio::process::Command::new(resa_bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("RESA_BENCH_EWS_PASSWORD", SERVICE_PASSWORD)
            .env_remove("NOTIFY_SOCKET")
            .stdout(out)
            .stderr(out2)
            .kill_on_drop(true)
            .spawn()
            .map_err(err(&format!("{} serve", resa_bin.display())))?;
        let pid = child.id().ok_or("the daemon exited at once")?;
        let http = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(10))
            .build()
            .map_err(err("HTTP client"))?;
        let mut me = DaemonProcess {
            child,
            pid,
            metrics_url: format!("http://{listen}/metrics"),
            http,
        };
        let health = format!("http://{listen}/healthz");
        let started = crate::clock::monotonic();
        loop {
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(format!("the daemon stopped ({status}); see {}", log.display()));
            }
            if me.http.get(&health).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(me);
            }
            if started.elapsed() > StdDuration::from_secs(60) {
                return Err(format!("the daemon did not answer within 60 s; see {}", log.display()));
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }

    async fn sample(&self) -> BenchResult<Sample> {
        let text = self
            .http
            .get(&self.metrics_url)
            .send()
            .await
            .map_err(err("daemon /metrics"))?
            .text()
            .await
            .map_err(err("daemon /metrics"))?;
        let (calls, decisions, leased, watched, counters) = parse_metrics(&text);
        let record_secs = text
            .lines()
            .find_map(|l| l.strip_prefix("resa_decision_latency_seconds_sum "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        let cpu_secs = proc_stat(self.pid).map(|(c, _)| c).unwrap_or(0.0);
        Ok(Sample {
            cpu_secs,
            calls,
            decisions,
            leased,
            watched,
            counters,
            record_secs,
        })
    }

    /// SIGTERM, then a kill if it does not stop within 30 s.
    async fn stop(mut self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        if tokio::time::timeout(StdDuration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The kinds of the request mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Single,
    Series,
    Conflict,
    Approval,
    Update,
    Cancel,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Single => "single",
            Kind::Series => "series",
            Kind::Conflict => "conflict",
            Kind::Approval => "approval",
            Kind::Update => "update",
            Kind::Cancel => "cancel",
        }
    }

    /// The mix, out of 100: 45 single meetings, 10 weekly series over a
    /// year, 10 conflicts with an accepted meeting, 10 requests in rooms
    /// that need approval, 12 updates (moved meetings), 13 cancellations.
    fn roll(r: u32) -> Kind {
        match r {
            0..45 => Kind::Single,
            45..55 => Kind::Series,
            55..65 => Kind::Conflict,
            65..75 => Kind::Approval,
            75..87 => Kind::Update,
            _ => Kind::Cancel,
        }
    }
}

/// A request waiting for its answer.
#[derive(Debug, Clone)]
struct Pending {
    kind: Kind,
    organiser: String,
    uid: String,
    room: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    landed: DateTime<Utc>,
    /// Items numbered above this are newer than the request.
    after_no: u64,
}

/// A meeting answered by its room: material for conflicts, updates and
/// cancellations.
#[derive(Debug, Clone)]
struct Answered {
    organiser: String,
    uid: String,
    room: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    accepted: bool,
}

#[derive(Default)]
struct Tracker {
    pending: Vec<Pending>,
    answered: Vec<Answered>,
    /// (kind, latency ms, answer received at)
    latencies: Vec<(Kind, f64, DateTime<Utc>)>,
}

/// Finds the answers that arrived; returns how many are still pending.
fn collect_answers(sim: &SimHandle, tracker: &Mutex<Tracker>) -> usize {
    let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
    if t.pending.is_empty() {
        return 0;
    }
    let pending = std::mem::take(&mut t.pending);
    let mut still = Vec::with_capacity(pending.len());
    sim.shared().read(|w| {
        for p in pending {
            let found = w.mailbox(&p.organiser).ok().and_then(|mb| {
                mb.items.range(p.after_no + 1..).map(|(_, i)| i).find(|i| {
                    i.folder == FolderKind::Inbox
                        && matches!(i.class, ItemClass::MeetingResponse(_))
                        && i.from.as_deref() == Some(p.room.as_str())
                        && i.meeting.as_ref().is_some_and(|m| m.uid == p.uid)
                })
            });
            match found {
                Some(item) => {
                    let ms = (item.received - p.landed).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
                    t.latencies.push((p.kind, ms, item.received));
                    t.answered.push(Answered {
                        organiser: p.organiser,
                        uid: p.uid,
                        room: p.room,
                        start: p.start,
                        end: p.end,
                        accepted: item.class == ItemClass::MeetingResponse(Reply::Accept),
                    });
                }
                None => still.push(p),
            }
        }
    });
    let left = still.len();
    t.pending = still;
    left
}

/// A working-day slot in Paris within the next two months.
fn random_slot(rng: &mut StdRng, today: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let mut day = today + Duration::days(rng.random_range(2..60));
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day += Duration::days(1);
    }
    let start = day
        .and_hms_opt(rng.random_range(8..18), [0, 30][rng.random_range(0..2)], 0)
        .unwrap_or_default();
    let minutes = [30, 60, 60, 90, 120][rng.random_range(0..5)];
    let start = local_to_utc(chrono_tz::Europe::Paris, start);
    (start, start + Duration::minutes(minutes))
}

struct Generator {
    rng: StdRng,
    n: usize,
    today: NaiveDate,
    sent: BTreeMap<String, u64>,
}

impl Generator {
    fn room(&mut self, approval: bool) -> String {
        // Rooms i with i % SITES == APPROVAL_SITE sit on the approval site;
        // with too few rooms for both kinds, any room does.
        let n = self.n.max(1);
        let mut i = self.rng.random_range(0..n);
        for _ in 0..100 {
            if (i % SITES == APPROVAL_SITE) == approval {
                break;
            }
            i = self.rng.random_range(0..n);
        }
        room_smtp(i)
    }

    fn user(&mut self) -> String {
        user_smtp(self.rng.random_range(0..USERS))
    }

    /// Sends one request of the mix (or of `kind`) and returns what to wait
    /// for, if anything.
    fn send(&mut self, sim: &SimHandle, tracker: &Mutex<Tracker>, kind: Option<Kind>) -> Option<Pending> {
        let mut kind = kind.unwrap_or_else(|| Kind::roll(self.rng.random_range(0..100)));
        // Updates, conflicts and cancellations need an answered meeting.
        let earlier = match kind {
            Kind::Update | Kind::Cancel | Kind::Conflict => {
                let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
                let candidates: Vec<usize> = t
                    .answered
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| kind != Kind::Conflict || a.accepted)
                    .map(|(i, _)| i)
                    .collect();
                if candidates.is_empty() {
                    None
                } else {
                    let i = candidates[self.rng.random_range(0..candidates.len())];
                    // A moved or cancelled meeting is not picked again.
                    Some(if kind == Kind::Conflict {
                        t.answered[i].clone()
                    } else {
                        t.answered.swap_remove(i)
                    })
                }
            }
            _ => None,
        };
        if earlier.is_none() && matches!(kind, Kind::Update | Kind::Cancel | Kind::Conflict) {
            kind = Kind::Single;
        }
        let now = sim.shared().clock.now();
        let shared = sim.shared();
        let result = match (kind, earlier) {
            (Kind::Cancel, Some(a)) => shared.mutate(|w| w.cancel(&a.organiser, &a.uid, now)).map(|()| None),
            (Kind::Update, Some(a)) => {
                let (start, end) = random_slot(&mut self.rng, self.today);
                shared
                    .mutate(|w| {
                        let after_no = w.next_item.saturating_sub(1);
                        w.update(
                            &a.organiser,
                            &a.uid,
                            MeetingChanges {
                                start: Some(start),
                                end: Some(end),
                                ..MeetingChanges::default()
                            },
                            now,
                        )?;
                        Ok(after_no)
                    })
                    .map(|after_no| {
                        Some(Pending {
                            kind,
                            organiser: a.organiser,
                            uid: a.uid,
                            room: a.room,
                            start,
                            end,
                            landed: now,
                            after_no,
                        })
                    })
            }
            (_, earlier) => {
                let organiser = self.user();
                let (room, (start, end)) = match &earlier {
                    // Another organiser wants the very same slot.
                    Some(a) => (a.room.clone(), (a.start, a.end)),
                    None => (
                        self.room(kind == Kind::Approval),
                        random_slot(&mut self.rng, self.today),
                    ),
                };
                let recurrence = (kind == Kind::Series).then(|| {
                    let day = ["MO", "TU", "WE", "TH", "FR"][self.rng.random_range(0..5)];
                    format!("FREQ=WEEKLY;BYDAY={day};COUNT=52")
                });
                let guests = vec![self.user(), self.user()];
                let input = MeetingInput {
                    subject: format!("Réunion {}", kind.name()),
                    start,
                    end,
                    time_zone: "Europe/Paris".into(),
                    required: guests,
                    resources: vec![room.clone()],
                    recurrence,
                    ..MeetingInput::default()
                };
                shared
                    .mutate(|w| {
                        let after_no = w.next_item.saturating_sub(1);
                        let uid = w.invite(&organiser, input, now)?;
                        Ok((uid, after_no))
                    })
                    .map(|(uid, after_no)| {
                        Some(Pending {
                            kind,
                            organiser,
                            uid,
                            room,
                            start,
                            end,
                            landed: now,
                            after_no,
                        })
                    })
            }
        };
        match result {
            Ok(p) => {
                *self.sent.entry(kind.name().to_owned()).or_default() += 1;
                p
            }
            Err(e) => {
                tracing::warn!(error = %e, "bench.request_refused_by_simulator");
                None
            }
        }
    }
}

fn free_port() -> BenchResult<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(err("free port"))?;
    Ok(l.local_addr().map_err(err("free port"))?.port())
}

fn percentiles_by_kind(lat: &[(Kind, f64, DateTime<Utc>)]) -> BTreeMap<String, Percentiles> {
    let mut by: HashMap<&'static str, Vec<f64>> = HashMap::new();
    for (k, ms, _) in lat {
        by.entry(k.name()).or_default().push(*ms);
    }
    by.into_iter()
        .map(|(k, v)| (k.to_owned(), Percentiles::of(&v)))
        .collect()
}

/// Waits until nothing is pending or `grace` has passed.
async fn drain(sim: &SimHandle, tracker: &Mutex<Tracker>, grace: StdDuration) -> usize {
    let started = crate::clock::monotonic();
    loop {
        let left = collect_answers(sim, tracker);
        if left == 0 || started.elapsed() >= grace {
            return left;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

pub async fn run(
    opts: &BenchOptions,
    cluster: &Cluster,
    database: &str,
    n: usize,
    work: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> BenchResult<LoadRun> {
    let clock = crate::clock::system();
    let setup_started = crate::clock::monotonic();
    let database_url = cluster.url(database);
    let store = Store::connect(&database_url, 8).await.map_err(err("PostgreSQL"))?;
    store.migrate().await.map_err(err("migration"))?;
    populate(&store, n, clock.now()).await?;
    store.pool().close().await;
    let sim = Simulator::start(SimOptions::new("127.0.0.1:0", seed(n)?, ServerVersion::Exchange2016))
        .await
        .map_err(err("simulator"))?;
    let setup_secs = setup_started.elapsed().as_secs_f64();
    progress(&format!("  prêt en {setup_secs:.1} s / set up"));

    let listen = format!("127.0.0.1:{}", free_port()?);
    let config = work.join(format!("daemon-{n}.toml"));
    std::fs::write(
        &config,
        daemon_config(&database_url, &sim.ews_url(), &listen, opts.poll_interval_secs),
    )
    .map_err(err("daemon configuration"))?;
    let log = work.join(format!("daemon-{n}.log"));
    let result = phases(opts, &sim, &config, &log, &listen, n, progress).await;
    sim.shutdown().await;
    let mut run = result?;
    run.setup_secs = setup_secs;
    Ok(run)
}

async fn phases(
    opts: &BenchOptions,
    sim: &SimHandle,
    config: &Path,
    log: &Path,
    listen: &str,
    n: usize,
    progress: &(dyn Fn(&str) + Sync),
) -> BenchResult<LoadRun> {
    let daemon = DaemonProcess::start(&opts.resa_bin, config, log, listen).await?;
    let result = measure(opts, sim, &daemon, n, progress).await;
    daemon.stop().await;
    result
}

async fn measure(
    opts: &BenchOptions,
    sim: &SimHandle,
    daemon: &DaemonProcess,
    n: usize,
    progress: &(dyn Fn(&str) + Sync),
) -> BenchResult<LoadRun> {
    // Warm-up: every mailbox leased and synchronised once, then either
    // every mailbox watched by a subscription or, when the daemon polls,
    // no call for three seconds (the first pass over).
    let started = crate::clock::monotonic();
    let warmup_limit = StdDuration::from_secs(120 + (n as u64) / 50);
    let mut last_total = u64::MAX;
    let mut quiet_since = crate::clock::monotonic();
    loop {
        let s = daemon.sample().await?;
        let synced = s.calls.get("SyncFolderItems").copied().unwrap_or(0);
        let busy_calls: u64 = s
            .calls
            .iter()
            .filter(|(op, _)| op.as_str() != "GetStreamingEvents")
            .map(|(_, v)| v)
            .sum();
        if busy_calls != last_total {
            last_total = busy_calls;
            quiet_since = crate::clock::monotonic();
        }
        let first_pass = s.leased as usize >= n && synced as usize >= n;
        let settled = s.watched as usize >= n || quiet_since.elapsed() >= StdDuration::from_secs(3);
        if first_pass && settled {
            break;
        }
        if started.elapsed() > warmup_limit {
            if first_pass {
                progress(&format!(
                    "  attention : {} boîtes sur {n} surveillées après {} s / watched",
                    s.watched,
                    warmup_limit.as_secs()
                ));
                break;
            }
            return Err(format!(
                "warm-up: after {} s the daemon holds {} of {n} mailboxes and made {synced} SyncFolderItems calls",
                warmup_limit.as_secs(),
                s.leased
            ));
        }
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    }
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    let warmup_secs = started.elapsed().as_secs_f64();
    progress(&format!("  synchronisé en {warmup_secs:.1} s / warmed up"));

    // Idle.
    let before = daemon.sample().await?;
    let idle_started = crate::clock::monotonic();
    tokio::time::sleep(StdDuration::from_secs(opts.idle_secs)).await;
    let after = daemon.sample().await?;
    let window = idle_started.elapsed().as_secs_f64();
    let idle_calls = after.calls_since(&before);
    let change_detection = if after.watched > 0 {
        format!("streaming {}/{n}", after.watched)
    } else {
        format!("poll {} s", opts.poll_interval_secs)
    };
    let idle = Idle {
        window_secs: window,
        calls_per_mailbox_hour: total(&idle_calls) as f64 / n.max(1) as f64 / (window / 3600.0),
        ews_calls: idle_calls,
        daemon_cpu_secs: after.cpu_secs - before.cpu_secs,
    };
    progress(&format!(
        "  repos : {:.2} appels EWS/boîte·h / idle calls per mailbox-hour",
        idle.calls_per_mailbox_hour
    ));

    // Steady rate.
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let today = sim
        .shared()
        .clock
        .now()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive();
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(0xbe4c_0000 + n as u64),
        n,
        today,
        sent: BTreeMap::new(),
    };
    let before = daemon.sample().await?;
    let steady_started = crate::clock::monotonic();
    let period = StdDuration::from_secs_f64(1.0 / f64::from(opts.rate.max(1)));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let steady_for = StdDuration::from_secs(opts.duration_secs);
    let mut requests = 0u64;
    let mut last_collect = crate::clock::monotonic();
    while steady_started.elapsed() < steady_for {
        ticker.tick().await;
        if let Some(p) = generator.send(sim, &tracker, None) {
            tracker.lock().unwrap_or_else(|e| e.into_inner()).pending.push(p);
        }
        requests += 1;
        if last_collect.elapsed() >= StdDuration::from_millis(20) {
            collect_answers(sim, &tracker);
            last_collect = crate::clock::monotonic();
        }
    }
    let sending_secs = steady_started.elapsed().as_secs_f64();
    let grace = StdDuration::from_secs(30);
    let unanswered = drain(sim, &tracker, grace).await;
    let after = daemon.sample().await?;
    let (rss_mb, _) = proc_memory(daemon.pid);
    let decisions = after.decisions.saturating_sub(before.decisions);
    let steady_calls = after.calls_since(&before);
    let cpu = after.cpu_secs - before.cpu_secs;
    let (latency_ms, latency_by_kind_ms) = {
        let t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        let all: Vec<f64> = t.latencies.iter().map(|(_, ms, _)| *ms).collect();
        (Percentiles::of(&all), percentiles_by_kind(&t.latencies))
    };
    let steady = Steady {
        target_rate: opts.rate,
        achieved_rate: requests as f64 / sending_secs.max(1e-9),
        sent: generator.sent.clone(),
        latency_ms,
        latency_by_kind_ms,
        unanswered,
        decisions,
        daemon_cpu_secs: cpu,
        cpu_ms_per_decision: if decisions > 0 {
            cpu * 1000.0 / decisions as f64
        } else {
            0.0
        },
        ews_calls_per_decision: if decisions > 0 {
            total(&steady_calls) as f64 / decisions as f64
        } else {
            0.0
        },
        ews_calls: steady_calls,
        daemon_record_ms_mean: if decisions > 0 {
            (after.record_secs - before.record_secs) * 1000.0 / decisions as f64
        } else {
            0.0
        },
    };
    progress(&format!(
        "  charge : p50 {:.0} ms, p99 {:.0} ms, {} sans réponse / unanswered",
        steady.latency_ms.p50, steady.latency_ms.p99, steady.unanswered
    ));

    // Saturation: a burst of single meetings over every room at once.
    {
        let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        t.latencies.clear();
        t.pending.clear();
    }
    let before = daemon.sample().await?;
    let burst_started = crate::clock::monotonic();
    let mut first_landed = None;
    for _ in 0..opts.burst {
        if let Some(p) = generator.send(sim, &tracker, Some(Kind::Single)) {
            first_landed.get_or_insert(p.landed);
            tracker.lock().unwrap_or_else(|e| e.into_inner()).pending.push(p);
        }
    }
    let burst_grace = StdDuration::from_secs(120);
    drain(sim, &tracker, burst_grace).await;
    let after = daemon.sample().await?;
    let burst_wall = burst_started.elapsed().as_secs_f64();
    let (answered, last_answer, burst_latency) = {
        let t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        let all: Vec<f64> = t.latencies.iter().map(|(_, ms, _)| *ms).collect();
        (
            t.latencies.len(),
            t.latencies.iter().map(|(_, _, at)| *at).max(),
            Percentiles::of(&all),
        )
    };
    let elapsed_secs = match (first_landed, last_answer) {
        (Some(a), Some(b)) => (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6,
        _ => burst_wall,
    };
    let burst_decisions = after.decisions.saturating_sub(before.decisions);
    let burst_cpu = after.cpu_secs - before.cpu_secs;
    let saturation = Saturation {
        burst: opts.burst,
        answered,
        elapsed_secs,
        decisions_per_sec: if elapsed_secs > 0.0 {
            answered as f64 / elapsed_secs
        } else {
            0.0
        },
        daemon_cpu_secs: burst_cpu,
        cpu_ms_per_decision: if burst_decisions > 0 {
            burst_cpu * 1000.0 / burst_decisions as f64
        } else {
            0.0
        },
        ews_calls_per_decision: if burst_decisions > 0 {
            total(&after.calls_since(&before)) as f64 / burst_decisions as f64
        } else {
            0.0
        },
        latency_ms: burst_latency,
    };
    let (_, peak_rss_mb) = proc_memory(daemon.pid);
    let daemon_counters = after.counters;
    let threads = proc_stat(daemon.pid).map(|(_, t)| t).unwrap_or(0);
    Ok(LoadRun {
        mailboxes: n,
        change_detection,
        setup_secs: 0.0,
        warmup_secs,
        idle,
        steady,
        saturation,
        rss_mb,
        peak_rss_mb,
        threads,
        daemon_counters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_daemon_counters() {
        let text = "# TYPE resa_ews_calls_total counter\n\
            resa_ews_calls_total{operation=\"SyncFolderItems\",outcome=\"ok\"} 12\n\
            resa_ews_calls_total{operation=\"SyncFolderItems\",outcome=\"busy\"} 1\n\
            resa_ews_calls_total{operation=\"GetItem\",outcome=\"ok\"} 3\n\
            resa_decisions_total{outcome=\"accept\"} 4\n\
            resa_decisions_total{outcome=\"decline\"} 2\n\
            resa_mailboxes_leased 100\n\
            resa_mailboxes_watched 98\n";
        let (calls, decisions, leased, watched, counters) = parse_metrics(text);
        assert_eq!(counters.get("resa_mailboxes_watched"), Some(&98));
        assert_eq!(calls.get("SyncFolderItems"), Some(&13));
        assert_eq!(calls.get("GetItem"), Some(&3));
        assert_eq!((decisions, leased, watched), (6, 100, 98));
    }

    #[test]
    fn the_mix_adds_up_to_its_description() {
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for r in 0..100 {
            *counts.entry(Kind::roll(r).name()).or_default() += 1;
        }
        assert_eq!(counts["single"], 45);
        assert_eq!(counts["series"], 10);
        assert_eq!(counts["conflict"], 10);
        assert_eq!(counts["approval"], 10);
        assert_eq!(counts["update"], 12);
        assert_eq!(counts["cancel"], 13);
    }
}
