//! The daemon end to end: simulated Outlook users invite a room in the
//! Exchange simulator, resa decides, and the organiser's mailbox receives the
//! answer with the decision's text.

use crate::harness::{TestDb, person, room_fixture, test_db};
use chrono::{DateTime, TimeZone, Utc};
use resa::clock::{Clock as _, ManualClock, SharedClock};
use resa::ews::client::{Auth, Client, ClientConfig};
use resa::ews::ntlm::NtlmCredentials;
use resa::ews::soap::ServerVersion;
use resa::exchange::ews::EwsExchange;
use resa::metrics::Metrics;
use resa::runtime::{Daemon, Pacing};
use resa::sim::seed::Seed;
use resa::sim::{SimHandle, SimOptions, Simulator};
use resa::store::Store;
use resa::store::directory::SyncBatch;
use resa::sync::SyncContext;
use resa::sync::watch::WatchPacing;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub(crate) const ROOM: &str = "salle.cezanne@plainecommune.fr";
pub(crate) const ALICE: &str = "alice@plainecommune.fr";
pub(crate) const BOB: &str = "bob@plainecommune.fr";
const STRANGER: &str = "intrus@plainecommune.fr";

/// Monday 30 November 2026, 08:00 in Paris: the daemon's "now".
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 7, 0, 0).single().expect("valid")
}

pub(crate) fn seed() -> Seed {
    serde_json::from_value(json!({
        "mailboxes": [
            { "smtp": ROOM, "name": "Salle Cézanne", "kind": "room" },
            { "smtp": ALICE, "name": "Alice Martin", "kind": "user" },
            { "smtp": BOB, "name": "Bob Durand", "kind": "user" },
            { "smtp": STRANGER, "name": "Inconnu", "kind": "user" },
        ],
        "service_account": { "login": "PC\\svc-resa", "password": "S3rvice!" },
    }))
    .expect("seed")
}

pub(crate) struct Rig {
    pub sim: SimHandle,
    pub db: TestDb,
    pub room: Uuid,
    pub http: reqwest::Client,
    pub clock: ManualClock,
}

/// A simulated minute in these tests (streaming connections last 30 of
/// them): short, so connections are reopened many times per test.
pub(crate) const SIM_MINUTE: Duration = Duration::from_millis(100);

/// Change detection paced for tests: subscriptions on, and safety timers
/// long enough that only notifications can explain a quick answer.
pub(crate) fn test_watch() -> WatchPacing {
    WatchPacing {
        safety_sync: Duration::from_secs(3600),
        safety_reconcile: Duration::from_secs(3600),
        reconcile_gap: Duration::from_millis(100),
        retry: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        ..WatchPacing::default()
    }
}

pub(crate) async fn rig(version: ServerVersion) -> Rig {
    rig_with(version, SIM_MINUTE).await
}

pub(crate) async fn rig_with(version: ServerVersion, minute: Duration) -> Rig {
    let clock = ManualClock::new(monday());
    let mut opts = SimOptions::new("127.0.0.1:0", seed(), version);
    opts.minute = minute;
    // Exchange and resa share the test's clock, so an outage window can be
    // crossed without waiting for it.
    opts.clock = Arc::new(clock.clone());
    let sim = Simulator::start(opts).await.expect("simulator starts");
    let db = test_db().await;
    let s = db.store();
    let room = room_fixture(s, ROOM, "sim", 8).await.room;
    let dir = s.ensure_directory("pc").await.expect("directory");
    let people = [
        person(1, "alice", "Alice Martin", ALICE),
        person(2, "bob", "Bob Durand", BOB),
    ];
    s.apply_directory_sync(
        dir.id,
        SyncBatch {
            full: true,
            people: &people,
            groups: &[],
            highest_usn: Some(1),
            usn_server: None,
        },
        monday(),
    )
    .await
    .expect("people");
    Rig {
        sim,
        db,
        room: room.id,
        http: reqwest::Client::new(),
        clock,
    }
}

impl Rig {
    pub fn exchange(&self, clock: SharedClock) -> EwsExchange {
        let url = url::Url::parse(&self.sim.ews_url()).expect("url");
        let auth = Auth::Ntlm(NtlmCredentials {
            domain: "PC".into(),
            user: "svc-resa".into(),
            password: "S3rvice!".into(),
            workstation: "RESA".into(),
        });
        // resa asks for the version the server runs.
        let mut cfg = ClientConfig::new(url, self.sim.shared().version, auth);
        cfg.base_backoff = Duration::from_millis(50);
        cfg.max_backoff = Duration::from_millis(500);
        let client = Client::new(cfg, clock).expect("client");
        EwsExchange::new(Arc::new(client), true, chrono_tz::Europe::Paris)
    }

    pub fn daemon(&self, store: &Store, instance: &str) -> Daemon {
        self.daemon_with(store, instance, Duration::from_millis(200), test_watch())
    }

    /// A daemon polling every `poll` when no subscription works.
    pub fn daemon_with(&self, store: &Store, instance: &str, poll: Duration, watch: WatchPacing) -> Daemon {
        let pacing = Pacing {
            lease: chrono::Duration::seconds(3),
            poll,
            outbox_idle: Duration::from_millis(100),
            reconcile: Duration::from_millis(300),
        };
        self.daemon_paced(store, instance, pacing, watch)
    }

    /// A daemon paced exactly as given.
    pub fn daemon_paced(&self, store: &Store, instance: &str, pacing: Pacing, watch: WatchPacing) -> Daemon {
        let clock: SharedClock = Arc::new(self.clock.clone());
        let metrics = Arc::new(Metrics::default());
        let ctx = SyncContext {
            store: store.clone(),
            exchanges: HashMap::from([(
                "sim".to_owned(),
                self.exchange(clock.clone()).with_metrics(metrics.clone()),
            )]),
            clock,
            instance: instance.into(),
            metrics,
        };
        Daemon::start_with(ctx, pacing, watch)
    }

    /// Another room, in the simulator and in the store; returns its id.
    pub async fn add_room(&self, smtp: &str, name: &str) -> Uuid {
        self.control_status(
            "/mailboxes",
            json!({ "smtp": smtp, "name": name, "kind": "room" }),
            reqwest::Method::POST,
        )
        .await;
        let (site_id, resource_type_id): (Uuid, Uuid) =
            sqlx::query_as("SELECT site_id, resource_type_id FROM resources WHERE id = $1")
                .bind(self.room)
                .fetch_one(self.db.pool())
                .await
                .expect("the first room");
        self.db
            .store()
            .create_resource(&resa::store::catalogue::NewResource {
                site_id,
                resource_type_id,
                name,
                mailbox_smtp: smtp,
                exchange_endpoint: "sim",
                capacity: Some(8),
            })
            .await
            .expect("room")
            .id
    }

    /// A control call with any method; returns the JSON answer.
    pub async fn control_status(&self, path: &str, body: Value, method: reqwest::Method) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.sim.control_url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("control API answers");
        let status = r.status();
        let v: Value = serde_json::from_slice(&r.bytes().await.expect("body")).unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    pub async fn control_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.sim.control_url()))
            .send()
            .await
            .expect("control API answers");
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.sim.control_url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("control API answers");
        let status = r.status();
        let bytes = r.bytes().await.expect("body");
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    pub async fn inbox(&self, smtp: &str) -> Vec<Value> {
        let url = format!("{}/mailboxes/{smtp}/inbox", self.sim.control_url());
        let bytes = self
            .http
            .get(url)
            .send()
            .await
            .expect("inbox")
            .bytes()
            .await
            .expect("body");
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        v.as_array()
            .cloned()
            .or_else(|| v["items"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Waits until the organiser holds `n` meeting responses; returns them.
    pub async fn responses(&self, smtp: &str, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let found: Vec<Value> = self
                .inbox(smtp)
                .await
                .into_iter()
                .filter(|i| i["kind"] == "MeetingResponse")
                .collect();
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{smtp} did not receive {n} responses: {:?}", self.inbox(smtp).await);
    }

    pub async fn invite(&self, organiser: &str, subject: &str, start: &str, end: &str) -> String {
        let v = self
            .control(
                "/invite",
                json!({
                    "as": organiser,
                    "subject": subject,
                    "start": start,
                    "end": end,
                    "time_zone": "Europe/Paris",
                    "attendees": [BOB],
                    "resources": [ROOM],
                }),
            )
            .await;
        v["uid"].as_str().expect("uid").to_owned()
    }
}

impl Rig {
    /// A booking of the room made on the web site by Alice, recorded as the
    /// site records it (its meeting queued in the outbox); returns its id.
    pub async fn web_booking(&self, uid: &str, subject: &str, start: DateTime<Utc>) -> Uuid {
        use resa::store::requests::{IncomingRequest, Recorded};
        let now = self.clock.now();
        let request = IncomingRequest {
            resource_id: self.room,
            uid: uid.into(),
            sequence: 0,
            source: resa::store::bookings::Source::Web,
            organiser_address: ALICE.into(),
            organiser_name: Some("Alice Martin".into()),
            subject: Some(subject.into()),
            attendees: 2,
            when: resa::domain::When::Single {
                start,
                end: start + chrono::Duration::hours(1),
            },
            exchange_item_id: None,
            requested_at: now,
        };
        match self.db.store().record_request(&request, now).await.expect("recorded") {
            Recorded::Decided {
                booking_id, decision, ..
            } => {
                assert_eq!(decision.kind(), "accept", "{decision:?}");
                booking_id
            }
            other => panic!("not decided: {other:?}"),
        }
    }
}

pub(crate) fn response_of(items: &[Value], subject: &str) -> Value {
    items
        .iter()
        .find(|i| i["subject"].as_str().is_some_and(|s| s.contains(subject)))
        .cloned()
        .unwrap_or_else(|| panic!("no response about {subject}: {items:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_answered_in_the_organisers_mailbox_with_the_decisions_text() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let daemon = r.daemon(r.db.store(), "a");
    r.invite(
        ALICE,
        "Comité de pilotage",
        "2026-12-01T14:00:00",
        "2026-12-01T15:00:00",
    )
    .await;
    let got = r.responses(ALICE, 1).await;
    let accept = response_of(&got, "Comité de pilotage");
    assert_eq!(accept["response"], "Accept", "{accept}");
    assert!(
        accept["body"]
            .as_str()
            .is_some_and(|b| b.contains("Votre demande est acceptée.")),
        "{accept}"
    );

    // Bob asks for an overlapping slot: declined, with the slot named.
    r.invite(BOB, "Point budget", "2026-12-01T14:30:00", "2026-12-01T15:30:00")
        .await;
    let got = r.responses(BOB, 1).await;
    let decline = response_of(&got, "Point budget");
    assert_eq!(decline["response"], "Decline", "{decline}");
    let body = decline["body"].as_str().unwrap_or_default();
    assert!(body.contains("La salle est déjà réservée de 14 h à 15 h"), "{body}");

    // Someone no directory knows gets the configured answer (decline by default).
    r.invite(STRANGER, "Visite", "2026-12-02T10:00:00", "2026-12-02T11:00:00")
        .await;
    let got = r.responses(STRANGER, 1).await;
    let unknown = response_of(&got, "Visite");
    assert_eq!(unknown["response"], "Decline", "{unknown}");
    daemon.shutdown().await;

    // Each request was answered exactly once.
    let sent: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM outbox WHERE status = 'done' GROUP BY kind ORDER BY kind")
            .fetch_all(r.db.pool())
            .await
            .expect("outbox");
    assert_eq!(sent, vec![("accept".to_owned(), 1), ("decline".to_owned(), 2)]);
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_decided_again_and_a_cancellation_frees_the_slot() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let daemon = r.daemon(r.db.store(), "a");
    let uid = r
        .invite(ALICE, "Réunion mobile", "2026-12-03T09:00:00", "2026-12-03T10:00:00")
        .await;
    r.responses(ALICE, 1).await;
    r.control(
        "/update",
        json!({ "as": ALICE, "uid": uid, "start": "2026-12-03T16:00:00", "end": "2026-12-03T17:00:00",
                "time_zone": "Europe/Paris" }),
    )
    .await;
    r.responses(ALICE, 2).await;
    let paris = chrono_tz::Europe::Paris;
    let at = |h| {
        paris
            .with_ymd_and_hms(2026, 12, 3, h, 0, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
    };
    let slots = r.db.store().held_slots(r.room, at(0), at(23)).await.expect("slots");
    assert_eq!(slots, vec![(at(16), at(17))], "the booking moved");

    r.control("/cancel", json!({ "as": ALICE, "uid": uid })).await;
    for _ in 0..100 {
        if r.db
            .store()
            .held_slots(r.room, at(0), at(23))
            .await
            .expect("slots")
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        r.db.store()
            .held_slots(r.room, at(0), at(23))
            .await
            .expect("slots")
            .is_empty(),
        "slot freed"
    );
    // The freed slot goes to the next request.
    r.invite(BOB, "Après annulation", "2026-12-03T16:00:00", "2026-12-03T17:00:00")
        .await;
    let got = r.responses(BOB, 1).await;
    assert_eq!(response_of(&got, "Après annulation")["response"], "Accept");
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_hands_its_mailboxes_over_and_nothing_is_answered_twice() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let first = r.daemon(r.db.store(), "first");
    r.invite(ALICE, "Avant la panne", "2026-12-04T09:00:00", "2026-12-04T10:00:00")
        .await;
    r.responses(ALICE, 1).await;
    // The first instance dies without handing anything back.
    first.abandon().await;
    let second = r.daemon(r.db.store(), "second");
    r.invite(ALICE, "Après la panne", "2026-12-04T11:00:00", "2026-12-04T12:00:00")
        .await;
    // The lease expires (3 s in this rig): the second instance takes over.
    r.clock.advance(chrono::Duration::seconds(10));
    let got = r.responses(ALICE, 2).await;
    assert_eq!(response_of(&got, "Après la panne")["response"], "Accept");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.responses(ALICE, 2).await.len(), 2, "no answer was sent twice");
    let owner: Option<String> = sqlx::query_scalar("SELECT lease_owner FROM mailbox_sync")
        .fetch_one(r.db.pool())
        .await
        .expect("lease");
    assert_eq!(owner.as_deref(), Some("second"));
    second.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_reports_calendar_edits_that_did_not_come_through_resa() {
    use resa::exchange::Exchange as _;
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let daemon = r.daemon(r.db.store(), "a");
    r.invite(ALICE, "Réunion suivie", "2026-12-10T09:00:00", "2026-12-10T10:00:00")
        .await;
    r.responses(ALICE, 1).await;
    // Someone with rights on the room's mailbox books it directly…
    r.control(
        "/invite",
        json!({ "as": ROOM, "subject": "Posé à la main", "start": "2026-12-11T09:00:00",
                "end": "2026-12-11T10:00:00", "time_zone": "Europe/Paris" }),
    )
    .await;
    // …and deletes the meeting resa accepted.
    let ex = r.exchange(Arc::new(r.clock.clone()));
    let paris = chrono_tz::Europe::Paris;
    let day = |d| {
        paris
            .with_ymd_and_hms(2026, 12, d, 0, 0, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
    };
    let cal = ex.calendar(ROOM, day(10), day(11)).await.expect("calendar");
    let accepted = cal
        .iter()
        .find(|e| e.subject.as_deref() == Some("Réunion suivie"))
        .expect("in the calendar");
    ex.remove(ROOM, &accepted.item_id).await.expect("deleted");

    let mut kinds = Vec::new();
    for _ in 0..100 {
        let open = r.db.store().open_drift(r.room).await.expect("drift");
        kinds = open.iter().map(|d| d.kind).collect::<Vec<_>>();
        kinds.sort();
        if kinds.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kinds, vec!["missing_item", "unknown_item"]);
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

/// The items of a mailbox's calendar in the simulator.
pub(crate) async fn calendar_items(r: &Rig, smtp: &str) -> Vec<Value> {
    r.control_get(&format!("/mailboxes/{smtp}/calendar")).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the room's calendar holds an item with `subject`; returns
/// how many it holds.
pub(crate) async fn wait_in_calendar(r: &Rig, subject: &str) -> usize {
    for _ in 0..200 {
        let n = calendar_items(r, ROOM)
            .await
            .iter()
            .filter(|i| i["subject"] == subject)
            .count();
        if n > 0 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{subject} is not in {ROOM}'s calendar: {:?}",
        calendar_items(r, ROOM).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_booking_is_created_in_the_resource_calendar_once_even_when_exchange_is_away() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let daemon = r.daemon(r.db.store(), "a");
    // Exchange is away for ten minutes.
    let until = r.clock.now() + chrono::Duration::minutes(10);
    r.control("/faults", json!({ "faults": [{ "kind": "outage", "until": until }] }))
        .await;
    let start = chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 12, 9, 10, 0, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc);
    let booking = r.web_booking("web-0001", "Réservée sur le site", start).await;
    daemon.outbox_wake().notify_one();
    // The command waits for its next attempt, a few (simulated) seconds on.
    let attempts = async {
        loop {
            let (attempts, status): (i32, String) =
                sqlx::query_as("SELECT attempts, status FROM outbox WHERE booking_id = $1 AND kind = 'create_meeting'")
                    .bind(booking)
                    .fetch_one(r.db.pool())
                    .await
                    .expect("outbox");
            if attempts >= 1 || status != "pending" {
                return (attempts, status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (attempts, status) = tokio::time::timeout(Duration::from_secs(20), attempts)
        .await
        .expect("the outbox worker tried");
    assert_eq!(
        (attempts, status.as_str()),
        (1, "pending"),
        "Exchange was away: tried again later"
    );
    assert!(calendar_items(&r, ROOM).await.is_empty());
    r.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(wait_in_calendar(&r, "Réservée sur le site").await, 1);
    let item = calendar_items(&r, ROOM)
        .await
        .into_iter()
        .find(|i| i["subject"] == "Réservée sur le site")
        .expect("the meeting");
    assert_eq!(item["start"], json!(start));
    let invited = r.inbox(ALICE).await;
    assert!(
        invited
            .iter()
            .any(|i| i["kind"] == "MeetingRequest" && i["subject"] == "Réservée sur le site"),
        "the agent sees it in Outlook: {invited:?}"
    );

    // The daemon died after creating it but before saying so: the command
    // runs again, finds the meeting there, and creates nothing more.
    sqlx::query(
        "UPDATE outbox SET status = 'pending', done_at = NULL, next_attempt_at = $2
         WHERE booking_id = $1 AND kind = 'create_meeting'",
    )
    .bind(booking)
    .bind(r.clock.now())
    .execute(r.db.pool())
    .await
    .expect("replayed");
    daemon.outbox_wake().notify_one();
    let done = async {
        loop {
            let status: String =
                sqlx::query_scalar("SELECT status FROM outbox WHERE booking_id = $1 AND kind = 'create_meeting'")
                    .bind(booking)
                    .fetch_one(r.db.pool())
                    .await
                    .expect("outbox");
            if status == "done" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), done)
        .await
        .expect("the replayed command is done");
    assert_eq!(wait_in_calendar(&r, "Réservée sur le site").await, 1, "created once");
    let requests = r
        .inbox(ALICE)
        .await
        .iter()
        .filter(|i| i["kind"] == "MeetingRequest" && i["subject"] == "Réservée sur le site")
        .count();
    assert_eq!(requests, 1, "invited once");
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

/// Waits until the simulator holds `n` subscriptions, all carried by open
/// streaming connections; returns `/_sim/subscriptions`.
pub(crate) async fn wait_streams(r: &Rig, n: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..300 {
        v = r.control_get("/subscriptions").await;
        let carried: u64 = v["streams"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["subscriptions"].as_u64()).sum())
            .unwrap_or(0);
        let live = v["subscriptions"].as_array().map_or(0, Vec::len);
        if carried == n as u64 && live == n {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = r.control_get("/calls").await;
    panic!("expected {n} streamed subscriptions: {v}; calls so far: {calls}");
}

async fn invite_room(r: &Rig, room: &str, subject: &str, day: u32) {
    r.control(
        "/invite",
        json!({
            "as": ALICE, "subject": subject, "time_zone": "Europe/Paris",
            "start": format!("2026-12-{day:02}T09:00:00"), "end": format!("2026-12-{day:02}T10:00:00"),
            "resources": [room],
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_notification_wakes_the_worker_when_nothing_polls() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    // Polling once an hour: only a notification explains a quick answer.
    let daemon = r.daemon_with(r.db.store(), "a", Duration::from_secs(3600), test_watch());
    wait_streams(&r, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.invite(
        ALICE,
        "Réveil par notification",
        "2026-12-14T09:00:00",
        "2026-12-14T10:00:00",
    )
    .await;
    let got = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&got, "Réveil par notification")["response"], "Accept");
    let text = daemon.metrics.render();
    assert!(text.contains("resa_mailboxes_watched 1"), "{text}");
    assert!(text.contains("operation=\"GetStreamingEvents\""), "{text}");
    daemon.shutdown().await;
    // A clean stop ends its subscriptions.
    let v = r.control_get("/subscriptions").await;
    assert_eq!(v["subscriptions"].as_array().map(Vec::len), Some(0), "{v}");
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_mailboxes_cost_less_than_one_ews_call_per_mailbox_hour() {
    // A simulated hour lasts 1.2 s: the simulator's minute is 20 ms, and the
    // daemon's default pacing is scaled the same way.
    let hour = Duration::from_millis(1200);
    let r = rig_with(ServerVersion::Exchange2010_SP2, hour / 60).await;
    let mut rooms = 1;
    for i in 0..9 {
        r.add_room(&format!("salle.{i}@plainecommune.fr"), &format!("Salle {i}"))
            .await;
        rooms += 1;
    }
    let scale = |d: Duration| d.mul_f64(hour.as_secs_f64() / 3600.0);
    let d = WatchPacing::default();
    let watch = WatchPacing {
        safety_sync: scale(d.safety_sync),
        safety_reconcile: scale(d.safety_reconcile),
        reconcile_gap: scale(d.reconcile_gap),
        retry: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        ..d
    };
    // Polling every five simulated minutes if streaming did not work.
    let daemon = r.daemon_with(r.db.store(), "a", scale(Duration::from_secs(300)), watch);
    wait_streams(&r, rooms).await;
    // The first passes and the catch-up after subscribing are done.
    tokio::time::sleep(hour / 2).await;
    r.control_status("/calls", json!({}), reqwest::Method::DELETE).await;
    let before = daemon.metrics.ews_calls_by_operation();
    let hours = 6;
    tokio::time::sleep(hour * hours).await;
    let calls = r.control_get("/calls").await;
    eprintln!("idle calls: {calls}");
    let total = calls["total"].as_u64().expect("total");
    let budget = u64::try_from(rooms).expect("rooms") * u64::from(hours);
    assert!(
        total <= budget,
        "{total} EWS calls for {rooms} idle mailboxes over {hours} hours: {calls}"
    );
    // The connection was held (and reopened as the server closed it).
    assert!(
        calls["calls"]["GetStreamingEvents"].as_u64().unwrap_or(0) >= 4,
        "{calls}"
    );
    // /metrics counts the same calls on resa's side.
    let after = daemon.metrics.ews_calls_by_operation();
    let ours: u64 = after
        .iter()
        .map(|(op, n)| n - before.get(op).copied().unwrap_or(0))
        .sum();
    assert!(ours <= budget + 1, "resa counted {ours}: {after:?}");
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_subscriptions_are_grouped_with_affinity_and_follow_the_leased_set() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    for i in 0..4 {
        r.add_room(&format!("salle.{i}@plainecommune.fr"), &format!("Salle {i}"))
            .await;
    }
    let watch = WatchPacing {
        group_size: 2,
        ..test_watch()
    };
    let daemon = r.daemon_with(r.db.store(), "a", Duration::from_secs(3600), watch);
    let v = wait_streams(&r, 5).await;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    assert_eq!(streams.len(), 3, "{v}");
    let mut anchors: Vec<String> = streams
        .iter()
        .map(|s| s["anchor"].as_str().expect("anchored").to_lowercase())
        .collect();
    anchors.dedup();
    assert_eq!(anchors.len(), 3, "one anchor per connection: {v}");
    // Every subscription was made for its group's back end (the simulator
    // refuses a connection without the anchor and the affinity cookie).
    for s in v["subscriptions"].as_array().expect("list") {
        let backend = s["backend"].as_str().expect("grouped subscription");
        assert!(anchors.iter().any(|a| backend.ends_with(a.as_str())), "{v}");
    }
    invite_room(&r, "salle.3@plainecommune.fr", "Salle du groupe", 15).await;
    let got = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&got, "Salle du groupe")["response"], "Accept");
    // A room added at run time joins a group with room.
    r.add_room("salle.nouvelle@plainecommune.fr", "Salle nouvelle").await;
    let v = wait_streams(&r, 6).await;
    assert_eq!(v["streams"].as_array().map(Vec::len), Some(3), "{v}");
    invite_room(&r, "salle.nouvelle@plainecommune.fr", "Salle nouvelle", 16).await;
    let got = r.responses(ALICE, 2).await;
    assert_eq!(response_of(&got, "Salle nouvelle")["response"], "Accept");
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_exchange_2007_a_pull_subscription_is_read_and_made_again_after_a_restart() {
    let r = rig(ServerVersion::Exchange2007_SP1).await;
    let daemon = r.daemon(r.db.store(), "a");
    let pull = || async {
        for _ in 0..200 {
            let v = r.control_get("/subscriptions").await;
            if let Some(s) = v["subscriptions"].as_array().and_then(|a| a.first())
                && s["streaming"] == false
            {
                return s["id"].as_str().expect("id").to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no pull subscription");
    };
    let first = pull().await;
    r.invite(ALICE, "Sur Exchange 2007", "2026-12-17T09:00:00", "2026-12-17T10:00:00")
        .await;
    let got = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&got, "Sur Exchange 2007")["response"], "Accept");
    // The server restarts and forgets the subscription.
    r.control("/restart", json!({})).await;
    r.invite(ALICE, "Après redémarrage", "2026-12-17T11:00:00", "2026-12-17T12:00:00")
        .await;
    let got = r.responses(ALICE, 2).await;
    assert_eq!(response_of(&got, "Après redémarrage")["response"], "Accept");
    let second = pull().await;
    assert_ne!(first, second, "a new subscription replaced the lost one");
    let calls = r.control_get("/calls").await;
    assert!(calls["calls"]["GetEvents"].as_u64().unwrap_or(0) > 0, "{calls}");
    assert!(daemon.metrics.render().contains("resa_subscriptions_rebuilt_total 1"));
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_one_occurrence_moves_or_cancels_that_occurrence_of_the_booked_series() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let daemon = r.daemon(r.db.store(), "a");
    let v = r
        .control(
            "/invite",
            json!({
                "as": ALICE, "subject": "Point hebdomadaire", "time_zone": "Europe/Paris",
                "start": "2026-12-08T09:00:00", "end": "2026-12-08T10:00:00",
                "recurrence": "FREQ=WEEKLY;COUNT=3", "resources": [ROOM],
            }),
        )
        .await;
    let uid = v["uid"].as_str().expect("uid").to_owned();
    r.responses(ALICE, 1).await;
    r.invite(BOB, "Réunion de Bob", "2026-12-15T11:00:00", "2026-12-15T12:00:00")
        .await;
    r.responses(BOB, 1).await;
    // Alice moves the first occurrence to a free afternoon slot…
    r.control(
        "/update",
        json!({ "as": ALICE, "uid": uid, "time_zone": "Europe/Paris", "occurrence": "2026-12-08T09:00:00",
                "start": "2026-12-08T14:00:00", "end": "2026-12-08T15:00:00" }),
    )
    .await;
    let got = r.responses(ALICE, 2).await;
    assert!(
        got.iter().filter(|i| i["response"] == "Accept").count() == 2,
        "the moved occurrence is accepted: {got:?}"
    );
    // …the second onto Bob's meeting…
    r.control(
        "/update",
        json!({ "as": ALICE, "uid": uid, "time_zone": "Europe/Paris", "occurrence": "2026-12-15T09:00:00",
                "start": "2026-12-15T11:00:00", "end": "2026-12-15T12:00:00" }),
    )
    .await;
    let got = r.responses(ALICE, 3).await;
    let declined = got
        .iter()
        .find(|i| i["response"] == "Decline")
        .unwrap_or_else(|| panic!("the occurrence moved onto Bob's meeting is declined: {got:?}"));
    assert!(
        declined["body"].as_str().unwrap_or_default().contains("déjà réservée"),
        "{declined}"
    );
    // …and cancels the third.
    r.control(
        "/update",
        json!({ "as": ALICE, "uid": uid, "time_zone": "Europe/Paris",
                "delete_occurrences": ["2026-12-22T09:00:00"] }),
    )
    .await;
    let paris = chrono_tz::Europe::Paris;
    let at = |d: u32, h: u32| {
        paris
            .with_ymd_and_hms(2026, 12, d, h, 0, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
    };
    let mut rows: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_as(
            "SELECT o.original_start, lower(o.period), o.status FROM occurrences o JOIN bookings b ON b.id = o.booking_id
             WHERE b.uid = $1 ORDER BY o.original_start",
        )
        .bind(&uid)
        .fetch_all(r.db.pool())
        .await
        .expect("occurrences");
        if rows.last().is_some_and(|(_, _, s)| s == "cancelled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rows,
        vec![
            (at(8, 9), at(8, 14), "accepted".to_owned()),
            (at(15, 9), at(15, 11), "declined".to_owned()),
            (at(22, 9), at(22, 9), "cancelled".to_owned()),
        ]
    );
    // One booking for the series: no booking of its own for an occurrence.
    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE uid LIKE $1 || '%'")
        .bind(&uid)
        .fetch_one(r.db.pool())
        .await
        .expect("count");
    assert_eq!(bookings, 1);
    // The freed slot of the cancelled occurrence goes to the next request.
    r.invite(BOB, "Créneau libéré", "2026-12-22T09:00:00", "2026-12-22T10:00:00")
        .await;
    let got = r.responses(BOB, 2).await;
    assert_eq!(response_of(&got, "Créneau libéré")["response"], "Accept");
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_invitation_is_decided_as_the_organisers_and_who_forwarded_it_is_recorded() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let daemon = r.daemon(r.db.store(), "a");
    // Alice invites someone unknown to the directories, without the room…
    let v = r
        .control(
            "/invite",
            json!({
                "as": ALICE, "subject": "Invitation transférée", "time_zone": "Europe/Paris",
                "start": "2026-12-18T09:00:00", "end": "2026-12-18T10:00:00", "attendees": [STRANGER],
            }),
        )
        .await;
    let uid = v["uid"].as_str().expect("uid").to_owned();
    // …who forwards the invitation to the room.
    r.control("/forward", json!({ "as": STRANGER, "uid": uid, "to": [ROOM] }))
        .await;
    // The organiser, with her rights, gets the answer.
    let got = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&got, "Invitation transférée")["response"], "Accept");
    let organiser: String = sqlx::query_scalar("SELECT organiser_address FROM bookings WHERE uid = $1")
        .bind(&uid)
        .fetch_one(r.db.pool())
        .await
        .expect("booking");
    assert_eq!(organiser.to_lowercase(), ALICE);
    let forwarded: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, action FROM audit_log WHERE action = 'booking.forwarded'")
            .fetch_all(r.db.pool())
            .await
            .expect("audit");
    assert_eq!(forwarded, vec![(STRANGER.to_owned(), "booking.forwarded".to_owned())]);
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

/// A decision's answer leaves as soon as the mailbox worker has queued it:
/// the outbox worker is woken, not left to its idle tick (an hour here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_leaves_without_waiting_for_the_outbox_tick() {
    let r = rig(ServerVersion::Exchange2016).await;
    let pacing = Pacing {
        lease: chrono::Duration::seconds(3),
        poll: Duration::from_millis(200),
        outbox_idle: Duration::from_secs(3600),
        reconcile: Duration::from_secs(3600),
    };
    let daemon = r.daemon_paced(r.db.store(), "a", pacing, test_watch());
    r.invite(ALICE, "Revue de projet", "2026-12-01T09:00:00", "2026-12-01T10:00:00")
        .await;
    let got = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&got, "Revue de projet")["response"], "Accept");
    // A second one, once the outbox worker sleeps on its long tick.
    r.invite(ALICE, "Comité technique", "2026-12-01T11:00:00", "2026-12-01T12:00:00")
        .await;
    let got = r.responses(ALICE, 2).await;
    assert_eq!(response_of(&got, "Comité technique")["response"], "Accept");
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_occurrence_goes_through_the_whole_rule_set_and_only_it_is_declined() {
    use resa::domain::policy::WeeklyHours;
    use resa::domain::{Policy, Scope};
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    let store = r.db.store();
    store
        .set_policy(
            Scope::Resource(r.room),
            &Policy {
                opening_hours: Some(WeeklyHours::office()),
                ..Policy::default()
            },
            monday(),
        )
        .await
        .expect("policy");
    let paris = chrono_tz::Europe::Paris;
    let at = |d: u32, h: u32| {
        paris
            .with_ymd_and_hms(2026, 12, d, h, 0, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
    };
    store
        .create_blackout(Scope::Resource(r.room), at(15, 10), at(15, 18), "travaux", monday())
        .await
        .expect("blackout");
    let daemon = r.daemon(store, "a");
    let v = r
        .control(
            "/invite",
            json!({
                "as": ALICE, "subject": "Point hebdomadaire", "time_zone": "Europe/Paris",
                "start": "2026-12-08T09:00:00", "end": "2026-12-08T10:00:00",
                "recurrence": "FREQ=WEEKLY;COUNT=4", "resources": [ROOM],
            }),
        )
        .await;
    let uid = v["uid"].as_str().expect("uid").to_owned();
    let got = r.responses(ALICE, 1).await;
    assert_eq!(got[0]["response"], "Accept", "{got:?}");
    let move_to = |occurrence: &str, start: &str, end: &str| {
        json!({ "as": ALICE, "uid": uid, "time_zone": "Europe/Paris", "occurrence": occurrence,
                "start": start, "end": end })
    };
    // The first occurrence moved to the evening, after closing time.
    r.control(
        "/update",
        move_to("2026-12-08T09:00:00", "2026-12-08T20:00:00", "2026-12-08T21:00:00"),
    )
    .await;
    let got = r.responses(ALICE, 2).await;
    let declined: Vec<&Value> = got.iter().filter(|i| i["response"] == "Decline").collect();
    assert_eq!(declined.len(), 1, "{got:?}");
    let body = declined[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains("En dehors des heures d'ouverture"), "{body}");
    assert!(body.contains("les autres restent réservées"), "{body}");
    // The second moved into the works.
    r.control(
        "/update",
        move_to("2026-12-15T09:00:00", "2026-12-15T14:00:00", "2026-12-15T15:00:00"),
    )
    .await;
    let got = r.responses(ALICE, 3).await;
    let declined: Vec<&Value> = got.iter().filter(|i| i["response"] == "Decline").collect();
    assert_eq!(declined.len(), 2, "{got:?}");
    assert!(
        declined.iter().any(|d| d["body"]
            .as_str()
            .is_some_and(|b| b.contains("indisponible") && b.contains("travaux"))),
        "{declined:?}"
    );
    // The third moved within opening hours, outside the works: accepted.
    r.control(
        "/update",
        move_to("2026-12-22T09:00:00", "2026-12-22T16:00:00", "2026-12-22T17:00:00"),
    )
    .await;
    let got = r.responses(ALICE, 4).await;
    assert_eq!(got.iter().filter(|i| i["response"] == "Accept").count(), 2, "{got:?}");
    let mut rows: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_as(
            "SELECT o.original_start, lower(o.period), o.status FROM occurrences o JOIN bookings b ON b.id = o.booking_id
             WHERE b.uid = $1 ORDER BY o.original_start",
        )
        .bind(&uid)
        .fetch_all(r.db.pool())
        .await
        .expect("occurrences");
        if rows.get(2).is_some_and(|(_, s, _)| *s == at(22, 16)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rows,
        vec![
            (at(8, 9), at(8, 20), "declined".to_owned()),
            (at(15, 9), at(15, 14), "declined".to_owned()),
            (at(22, 9), at(22, 16), "accepted".to_owned()),
            (at(29, 9), at(29, 9), "accepted".to_owned()),
        ]
    );
    // The series itself stays accepted; each move was decided with its rule.
    let status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE uid = $1")
        .bind(&uid)
        .fetch_one(r.db.pool())
        .await
        .expect("booking");
    assert_eq!(status, "accepted");
    let codes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT outcome, (SELECT string_agg(x->>'code', ',') FROM jsonb_array_elements(reasons) x)
         FROM decisions WHERE uid = $1 ORDER BY id",
    )
    .bind(&uid)
    .fetch_all(r.db.pool())
    .await
    .expect("decisions");
    assert_eq!(
        codes,
        vec![
            ("accept".to_owned(), None),
            ("decline".to_owned(), Some("outside_opening_hours".to_owned())),
            ("decline".to_owned(), Some("blackout".to_owned())),
            ("accept".to_owned(), None),
        ]
    );
    daemon.shutdown().await;
    r.sim.shutdown().await;
}
