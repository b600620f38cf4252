//! The Exchange simulator, checked by two EWS clients: exchangelib (PyPI,
//! written by nobody here) and resa's own client. Both run the same
//! scenario: an organizer invites a room, the room (impersonated by the
//! service account over NTLM) syncs its Inbox, reads the meeting request
//! and accepts it, and the organizer receives the response.
//!
//! The exchangelib tests need `RESA_EXCHANGELIB_PYTHON`, the python of a
//! virtualenv with exchangelib (`.ci/exchangelib-venv.sh` creates one);
//! they fail when it is missing, they never skip.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use resa::ews::client::{Auth, CallOptions, Client, ClientConfig};
use resa::ews::item::{ItemKind, Shape};
use resa::ews::ntlm::NtlmCredentials;
use resa::ews::ops::create_item::{CreateItem, ResponseObjectKind};
use resa::ews::ops::get_item::{GetItem, ItemRef};
use resa::ews::ops::sync_folder_items::{Change, SyncFolderItems};
use resa::ews::soap::Impersonation;
use resa::ews::types::{Attendee, DistinguishedFolder, FolderRef, Mailbox, ResponseType};
use resa::ews::xml::{NS_MESSAGES, NS_SOAP, NS_TYPES, XmlWriter};
use resa::ews::{ResponseCode, ServerVersion};
use resa::sim::seed::{SeedMailbox, SeedServiceAccount};
use resa::sim::state::{ItemClass, Reply, Routing};
use resa::sim::{MailboxKind, Seed, SimHandle, SimOptions, Simulator};

const LOGIN: &str = "RESA\\svc-resa";
const PASSWORD: &str = "Passw0rd!sim";
const ORGANIZER: &str = "agent.dupont@plainecommune.fr";
const ROOM: &str = "salle.cezanne@plainecommune.fr";
const USER_PASSWORD: &str = "agent-pw";
const ROOM_LIST: &str = "salles-saint-denis@plainecommune.fr";

fn seed() -> Seed {
    let mb = |smtp: &str, name: &str, kind: MailboxKind, password: Option<&str>| SeedMailbox {
        smtp: smtp.into(),
        name: name.into(),
        kind,
        legacy_dn: None,
        routing: Routing::Smtp,
        password: password.map(str::to_owned),
    };
    Seed {
        mailboxes: vec![
            mb(ORGANIZER, "Agent Dupont", MailboxKind::User, Some(USER_PASSWORD)),
            mb(ROOM, "Salle Cézanne", MailboxKind::Room, None),
            mb(
                "videoprojecteur.1@plainecommune.fr",
                "Vidéoprojecteur 1",
                MailboxKind::Equipment,
                None,
            ),
        ],
        room_lists: vec![resa::sim::state::RoomList {
            smtp: ROOM_LIST.into(),
            name: "Salles Saint-Denis".into(),
            rooms: vec![ROOM.into()],
        }],
        service_account: Some(SeedServiceAccount {
            login: LOGIN.into(),
            password: PASSWORD.into(),
            impersonation: true,
        }),
        faults: Vec::new(),
    }
}

async fn start(version: ServerVersion) -> SimHandle {
    Simulator::start(SimOptions::new("127.0.0.1:0", seed(), version))
        .await
        .expect("start the simulator")
}

fn exchangelib_python() -> PathBuf {
    let Some(p) = std::env::var_os("RESA_EXCHANGELIB_PYTHON") else {
        panic!(
            "RESA_EXCHANGELIB_PYTHON is not set: run .ci/exchangelib-venv.sh and export \
             RESA_EXCHANGELIB_PYTHON=$PWD/target/exchangelib-venv/bin/python"
        );
    };
    let p = PathBuf::from(p);
    assert!(
        p.is_file(),
        "RESA_EXCHANGELIB_PYTHON={} does not exist: run .ci/exchangelib-venv.sh",
        p.display()
    );
    p
}

async fn exchangelib_scenario(version: ServerVersion, build: &str) {
    let python = exchangelib_python();
    let sim = start(version).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/exchangelib/scenario.py");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .arg(&script)
            .args([
                &sim.ews_url(),
                &sim.control_url(),
                LOGIN,
                PASSWORD,
                ORGANIZER,
                ROOM,
                build,
                ROOM_LIST,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exchangelib scenario timed out")
    .expect("run the exchangelib scenario");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exchangelib scenario failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("scenario prints JSON");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["first_sync"], serde_json::json!(["create"]));
    // The organizer's own calendar item now shows the room's answer.
    let uid = summary["uid"].as_str().expect("uid").to_owned();
    let status = sim.shared().read(|w| {
        w.mailbox(ORGANIZER)
            .ok()
            .and_then(|m| m.calendar_item(&uid))
            .and_then(|i| i.meeting.clone())
            .and_then(|m| m.resources.first().map(|a| a.response))
    });
    assert_eq!(status, Some(resa::sim::state::ResponseKind::Accept));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchangelib_drives_the_simulator_as_exchange_2010_sp2() {
    exchangelib_scenario(ServerVersion::Exchange2010_SP2, "14.2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchangelib_drives_the_simulator_as_exchange_2016() {
    exchangelib_scenario(ServerVersion::Exchange2016, "15.1").await;
}

fn client(sim: &SimHandle, version: ServerVersion, login: &str, password: &str, retries: u32) -> Client {
    let mut cfg = ClientConfig::new(
        sim.ews_url().parse().expect("url"),
        version,
        Auth::Ntlm(NtlmCredentials::from_login(login, password)),
    );
    cfg.max_retries = retries;
    cfg.base_backoff = Duration::from_millis(10);
    Client::new(cfg, Arc::new(resa::clock::SystemClock)).expect("client")
}

fn as_mailbox(smtp: &str) -> CallOptions {
    CallOptions {
        impersonation: Some(Impersonation::PrimarySmtpAddress(smtp.into())),
        ..CallOptions::default()
    }
}

fn inbox_sync(state: Option<String>) -> SyncFolderItems {
    SyncFolderItems {
        item_shape: Shape::new(resa::ews::item::BaseShape::IdOnly),
        folder: FolderRef::distinguished(DistinguishedFolder::Inbox),
        sync_state: state,
        ignore: Vec::new(),
        max_changes_returned: 100,
    }
}

/// The scenario through resa's own client, on each version.
async fn own_client_scenario(version: ServerVersion) {
    let sim = start(version).await;
    let c = client(&sim, version, LOGIN, PASSWORD, 0);
    let t = |h: u32| {
        chrono::DateTime::parse_from_rfc3339(&format!("2026-12-01T{h:02}:00:00Z"))
            .expect("t")
            .to_utc()
    };
    // The organizer (impersonated) sends the invitation over EWS.
    let mut meeting = resa::ews::item::Item::new(ItemKind::CalendarItem);
    meeting.subject = Some("Réunion de service".into());
    meeting.body = Some(resa::ews::types::Body::text("Point mensuel"));
    meeting.start = Some(t(9));
    meeting.end = Some(t(10));
    meeting.resources = vec![Attendee::new(Mailbox::smtp(ROOM))];
    let created = c
        .call(&CreateItem::meeting(meeting, None), &as_mailbox(ORGANIZER))
        .await
        .expect("CreateItem")
        .into_single()
        .expect("created");
    assert_eq!(created.items.len(), 1);
    // The room syncs its Inbox and reads the request.
    let sync = c
        .call(&inbox_sync(None), &as_mailbox(ROOM))
        .await
        .expect("sync")
        .into_single()
        .expect("sync result");
    assert!(sync.includes_last_item_in_range);
    let [Change::Create(req)] = sync.changes.as_slice() else {
        panic!("first sync: {:?}", sync.changes)
    };
    let id = req.item_id.clone().expect("id");
    let got = c
        .call(
            &GetItem {
                item_shape: Shape::meeting(),
                item_ids: vec![ItemRef::Id(id.clone())],
            },
            &as_mailbox(ROOM),
        )
        .await
        .expect("GetItem")
        .into_single()
        .expect("item");
    let request = &got.items[0];
    assert_eq!(request.kind, ItemKind::MeetingRequest);
    assert_eq!(request.subject.as_deref(), Some("Réunion de service"));
    assert_eq!((request.start, request.end), (Some(t(9)), Some(t(10))));
    assert_eq!(
        request.organizer.as_ref().and_then(|o| o.email_address.as_deref()),
        Some(ORGANIZER)
    );
    assert_eq!(request.resources[0].mailbox.email_address.as_deref(), Some(ROOM));
    assert_eq!(request.appointment_sequence_number, Some(0));
    assert!(request.associated_calendar_item_id.is_some());
    assert!(request.global_object_id().is_some(), "GlobalObjectId was asked for");
    let uid = request.uid.clone().expect("uid");
    // The room accepts with a reason.
    c.call(
        &CreateItem::respond(ResponseObjectKind::Accept, id, Some("Salle réservée.")),
        &as_mailbox(ROOM),
    )
    .await
    .expect("AcceptItem")
    .into_single()
    .expect("accepted");
    // The organizer's Inbox holds the response with the body, and the
    // organizer's item shows the room's answer.
    let (response, status) = sim.shared().read(|w| {
        let mb = w.mailbox(ORGANIZER).expect("organizer");
        let response = mb
            .items
            .values()
            .find(|i| i.class == ItemClass::MeetingResponse(Reply::Accept))
            .map(|i| i.body.clone());
        let status = mb
            .calendar_item(&uid)
            .and_then(|i| i.meeting.as_ref())
            .map(|m| m.resources[0].response);
        (response, status)
    });
    assert_eq!(response.as_deref(), Some("Salle réservée."));
    assert_eq!(status, Some(resa::sim::state::ResponseKind::Accept));
    // An update raises the sequence and delivers a new request.
    let update = serde_json::json!({"as": ORGANIZER, "uid": uid, "start": "2026-12-01T11:00:00Z", "end": "2026-12-01T12:00:00Z"});
    control_post(&sim, "/update", &update).await;
    let next = c
        .call(&inbox_sync(Some(sync.sync_state.clone())), &as_mailbox(ROOM))
        .await
        .expect("sync")
        .into_single()
        .expect("sync result");
    let created: Vec<_> = next
        .changes
        .iter()
        .filter_map(|ch| match ch {
            Change::Create(i) => i.item_id.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{:?}", next.changes);
    let got = c
        .call(
            &GetItem {
                item_shape: Shape::meeting(),
                item_ids: vec![ItemRef::Id(created[0].clone())],
            },
            &as_mailbox(ROOM),
        )
        .await
        .expect("GetItem")
        .into_single()
        .expect("item");
    assert_eq!(got.items[0].appointment_sequence_number, Some(1));
    assert_eq!(got.items[0].start, Some(t(11)));
    assert_eq!(got.items[0].my_response_type, Some(ResponseType::NoResponseReceived));
    sim.shutdown().await;
}

async fn control_post(sim: &SimHandle, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.control_url()))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(body).expect("JSON"))
        .send()
        .await
        .expect("control API");
    let status = resp.status();
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.expect("body")).expect("control JSON");
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resa_client_scenario_on_2007_sp1() {
    own_client_scenario(ServerVersion::Exchange2007_SP1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resa_client_scenario_on_2010_sp2() {
    own_client_scenario(ServerVersion::Exchange2010_SP2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resa_client_scenario_on_2016() {
    own_client_scenario(ServerVersion::Exchange2016).await;
}

fn get_inbox(mailbox: Option<&str>) -> resa::ews::ops::get_folder::GetFolder {
    resa::ews::ops::get_folder::GetFolder {
        folder_shape: Shape::new(resa::ews::item::BaseShape::IdOnly),
        folder_ids: vec![FolderRef::Distinguished {
            id: DistinguishedFolder::Inbox,
            mailbox: mailbox.map(str::to_owned),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_rights_and_passwords_are_enforced() {
    let sim = start(ServerVersion::Exchange2007_SP1).await;
    // Asking a 2007 server for 2010 fails as Exchange does.
    let c = client(&sim, ServerVersion::Exchange2010_SP2, LOGIN, PASSWORD, 0);
    let e = c
        .call(&get_inbox(None), &as_mailbox(ROOM))
        .await
        .expect_err("newer version");
    assert_eq!(e.response_code(), Some(&ResponseCode::ErrorInvalidServerVersion), "{e}");
    let c = client(&sim, ServerVersion::Exchange2007_SP1, LOGIN, PASSWORD, 0);
    let info = c
        .call(&get_inbox(None), &as_mailbox(ROOM))
        .await
        .and_then(|r| r.into_single());
    assert!(info.is_ok(), "{info:?}");
    let svi = c.server_version_info().expect("ServerVersionInfo");
    assert_eq!(
        (
            svi.major_version,
            svi.minor_version,
            svi.major_build_number,
            svi.minor_build_number
        ),
        (8, 3, 348, 2)
    );
    // A wrong password is refused by the NTLM handshake.
    let bad = client(&sim, ServerVersion::Exchange2007_SP1, LOGIN, "nope", 0);
    let e = bad
        .call(&get_inbox(None), &as_mailbox(ROOM))
        .await
        .expect_err("bad password");
    assert!(matches!(e, resa::ews::EwsError::Unauthorized(_)), "{e}");
    // A user may not impersonate, nor open someone else's mailbox.
    let user = client(&sim, ServerVersion::Exchange2007_SP1, ORGANIZER, USER_PASSWORD, 0);
    let e = user
        .call(&get_inbox(None), &as_mailbox(ROOM))
        .await
        .expect_err("impersonation");
    assert_eq!(
        e.response_code(),
        Some(&ResponseCode::ErrorImpersonateUserDenied),
        "{e}"
    );
    let e = user
        .call(&get_inbox(Some(ROOM)), &CallOptions::default())
        .await
        .and_then(|r| r.into_single())
        .expect_err("access");
    assert_eq!(e.response_code(), Some(&ResponseCode::ErrorAccessDenied), "{e}");
    let own = user
        .call(&get_inbox(None), &CallOptions::default())
        .await
        .and_then(|r| r.into_single());
    assert!(own.is_ok(), "{own:?}");
    // Streaming subscriptions do not exist in the 2007 schema.
    let streaming = soap(
        "Exchange2007_SP1",
        None,
        subscribe_body("m:StreamingSubscriptionRequest", &["inbox"], &["NewMailEvent"]),
    );
    let (status, body) = raw_soap(&sim, ORGANIZER, USER_PASSWORD, streaming).await;
    assert_eq!(status, 500);
    let body = body.into_bytes();
    let env = resa::ews::soap::read_envelope(&body, 1 << 20).expect("fault envelope");
    let fault = resa::ews::soap::Fault::read(&env.payload);
    assert_eq!(fault.response_code, ResponseCode::ErrorSchemaValidation);
    assert_eq!(fault.fault_code, "a:ErrorSchemaValidation");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_busy_back_off_reaches_the_client() {
    let sim = start(ServerVersion::Exchange2010_SP2).await;
    control_post(
        &sim,
        "/faults",
        &serde_json::json!({"faults": [{"kind": "server_busy", "back_off_ms": 1234, "mailbox": ROOM, "count": 1}]}),
    )
    .await;
    let c = client(&sim, ServerVersion::Exchange2010_SP2, LOGIN, PASSWORD, 0);
    let e = c.call(&get_inbox(None), &as_mailbox(ROOM)).await.expect_err("busy");
    assert_eq!(e.response_code(), Some(&ResponseCode::ErrorServerBusy), "{e}");
    assert_eq!(e.back_off(), Some(Duration::from_millis(1234)));
    // The rule fired once; the next call goes through.
    let ok = c
        .call(&get_inbox(None), &as_mailbox(ROOM))
        .await
        .and_then(|r| r.into_single());
    assert!(ok.is_ok(), "{ok:?}");
    // With retries, a short back-off is honoured and the call succeeds.
    control_post(
        &sim,
        "/faults",
        &serde_json::json!({"faults": [{"kind": "server_busy", "back_off_ms": 50, "count": 1}]}),
    )
    .await;
    let patient = client(&sim, ServerVersion::Exchange2010_SP2, LOGIN, PASSWORD, 2);
    let ok = patient
        .call(&get_inbox(None), &as_mailbox(ROOM))
        .await
        .and_then(|r| r.into_single());
    assert!(ok.is_ok(), "{ok:?}");
    // An invalid SyncState, HTTP 503 and a reset mid-response.
    control_post(
        &sim,
        "/faults",
        &serde_json::json!({"faults": [{"kind": "invalid_sync_state", "count": 1}, {"kind": "http", "status": 503, "operation": "GetFolder", "count": 1}]}),
    )
    .await;
    let e = c
        .call(&inbox_sync(None), &as_mailbox(ROOM))
        .await
        .and_then(|r| r.into_single())
        .expect_err("sync state");
    assert_eq!(e.response_code(), Some(&ResponseCode::ErrorInvalidSyncStateData), "{e}");
    let e = c.call(&get_inbox(None), &as_mailbox(ROOM)).await.expect_err("503");
    assert!(matches!(e, resa::ews::EwsError::Http { status: 503, .. }), "{e}");
    control_post(
        &sim,
        "/faults",
        &serde_json::json!({"faults": [{"kind": "reset", "count": 1}]}),
    )
    .await;
    let e = c.call(&get_inbox(None), &as_mailbox(ROOM)).await.expect_err("reset");
    assert!(matches!(e, resa::ews::EwsError::Interrupted(_)), "{e}");
    // An outage window: 503 for everything until it is cleared.
    control_post(
        &sim,
        "/faults",
        &serde_json::json!({"faults": [{"kind": "outage", "until": "2100-01-01T00:00:00Z"}]}),
    )
    .await;
    for _ in 0..2 {
        let e = c.call(&get_inbox(None), &as_mailbox(ROOM)).await.expect_err("outage");
        assert!(matches!(e, resa::ews::EwsError::Http { status: 503, .. }), "{e}");
    }
    let cleared = reqwest::Client::new()
        .delete(format!("{}/faults", sim.control_url()))
        .send()
        .await
        .expect("delete");
    assert!(cleared.status().is_success());
    let ok = c
        .call(&get_inbox(None), &as_mailbox(ROOM))
        .await
        .and_then(|r| r.into_single());
    assert!(ok.is_ok(), "{ok:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_lists_what_outlook_users_did() {
    let sim = start(ServerVersion::Exchange2013_SP1).await;
    control_post(
        &sim,
        "/mailboxes",
        &serde_json::json!({"smtp": "velo.1@plainecommune.fr", "name": "Vélo 1", "kind": "equipment"}),
    )
    .await;
    let uid = control_post(
        &sim,
        "/invite",
        &serde_json::json!({"as": ORGANIZER, "subject": "Tournée", "start": "2026-12-02T14:00:00", "end": "2026-12-02T16:00:00",
            "time_zone": "Romance Standard Time", "resources": ["velo.1@plainecommune.fr"], "recurrence": "FREQ=WEEKLY;COUNT=3"}),
    )
    .await["uid"]
        .as_str()
        .expect("uid")
        .to_owned();
    control_post(&sim, "/reply", &serde_json::json!({"as": "velo.1@plainecommune.fr", "uid": uid, "response": "decline", "body": "Indisponible"})).await;
    control_post(&sim, "/cancel", &serde_json::json!({"as": ORGANIZER, "uid": uid})).await;
    let base = sim.control_url();
    let get = |path: String| {
        let url = format!("{base}{path}");
        async move {
            let bytes = reqwest::get(url).await.expect("get").bytes().await.expect("body");
            serde_json::from_slice::<serde_json::Value>(&bytes).expect("json")
        }
    };
    let org = get(format!("/mailboxes/{ORGANIZER}/inbox")).await;
    assert_eq!(org["items"][0]["kind"], "MeetingResponse");
    assert_eq!(org["items"][0]["response"], "Decline");
    assert_eq!(org["items"][0]["body"], "Indisponible");
    let bike = get("/mailboxes/velo.1@plainecommune.fr/inbox".into()).await;
    let kinds: Vec<&str> = bike["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["MeetingCancellation"], "{bike}");
    // Paris 14:00 in December is 13:00 UTC.
    let deleted = get("/mailboxes/velo.1@plainecommune.fr/deleteditems".into()).await;
    assert_eq!(deleted["items"][0]["start"], "2026-12-02T13:00:00Z");
    let bad = reqwest::Client::new()
        .post(format!("{}/invite", sim.control_url()))
        .body(serde_json::to_vec(&serde_json::json!({"as": "nobody@x.fr", "subject": "x", "start": "2026-12-02T14:00:00Z", "end": "2026-12-02T15:00:00Z"})).expect("JSON"))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status().as_u16(), 404);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_series_with_an_exception_and_a_deleted_occurrence() {
    use resa::ews::item::CalendarItemType;
    use resa::ews::ops::find_item::{CalendarView, FindItem};
    let sim = start(ServerVersion::Exchange2010_SP2).await;
    let c = client(&sim, ServerVersion::Exchange2010_SP2, LOGIN, PASSWORD, 0);
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("t").to_utc();
    // Mondays 9:00 Paris (8:00 UTC in winter), four times.
    let uid = control_post(
        &sim,
        "/invite",
        &serde_json::json!({"as": ORGANIZER, "subject": "Hebdo", "start": "2026-11-30T09:00:00", "end": "2026-11-30T10:00:00",
            "resources": [ROOM], "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=4"}),
    )
    .await["uid"]
        .as_str()
        .expect("uid")
        .to_owned();
    // The second occurrence moves to 14:00, the third is deleted.
    control_post(
        &sim,
        "/update",
        &serde_json::json!({"as": ORGANIZER, "uid": uid, "occurrence": "2026-12-07T08:00:00Z", "start": "2026-12-07T14:00:00", "end": "2026-12-07T15:00:00"}),
    )
    .await;
    control_post(
        &sim,
        "/update",
        &serde_json::json!({"as": ORGANIZER, "uid": uid, "delete_occurrences": ["2026-12-14T09:00:00"]}),
    )
    .await;
    let sync = c
        .call(&inbox_sync(None), &as_mailbox(ROOM))
        .await
        .expect("sync")
        .into_single()
        .expect("sync result");
    let ids: Vec<ItemRef> = sync
        .changes
        .iter()
        .filter_map(|ch| match ch {
            Change::Create(i) => i.item_id.clone().map(ItemRef::Id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 3, "request, exception request, occurrence cancellation");
    let items = c
        .call(
            &GetItem {
                item_shape: Shape::meeting(),
                item_ids: ids,
            },
            &as_mailbox(ROOM),
        )
        .await
        .expect("GetItem");
    let items: Vec<_> = items
        .0
        .messages
        .into_iter()
        .map(|m| m.into_result().expect("item").items.remove(0))
        .collect();
    let master = &items[0];
    assert_eq!(master.calendar_item_type, Some(CalendarItemType::RecurringMaster));
    assert!(master.recurrence.is_some());
    let exception = &items[1];
    assert_eq!(exception.kind, ItemKind::MeetingRequest);
    assert_eq!(exception.calendar_item_type, Some(CalendarItemType::Exception));
    assert_eq!(exception.recurrence_id, Some(t("2026-12-07T08:00:00Z")));
    assert_eq!(exception.start, Some(t("2026-12-07T13:00:00Z")));
    assert_ne!(exception.global_object_id(), exception.clean_global_object_id());
    assert_eq!(items[2].kind, ItemKind::MeetingCancellation);
    assert_eq!(items[2].recurrence_id, Some(t("2026-12-14T08:00:00Z")));
    // The room's calendar view: three occurrences, one of them moved.
    let view = c
        .call(
            &FindItem {
                item_shape: Shape::meeting(),
                calendar_view: CalendarView {
                    start: t("2026-11-29T00:00:00Z"),
                    end: t("2027-01-01T00:00:00Z"),
                    max_entries_returned: None,
                },
                parent_folder_ids: vec![FolderRef::distinguished(DistinguishedFolder::Calendar)],
            },
            &as_mailbox(ROOM),
        )
        .await
        .expect("FindItem")
        .into_single()
        .expect("view");
    let starts: Vec<_> = view.items.iter().map(|i| (i.start, i.calendar_item_type)).collect();
    assert_eq!(
        starts,
        vec![
            (Some(t("2026-11-30T08:00:00Z")), Some(CalendarItemType::Occurrence)),
            (Some(t("2026-12-07T13:00:00Z")), Some(CalendarItemType::Exception)),
            (Some(t("2026-12-21T08:00:00Z")), Some(CalendarItemType::Occurrence)),
        ]
    );
    // The master in the organizer's calendar lists both changes.
    let org_view = c
        .call(
            &FindItem {
                item_shape: Shape::new(resa::ews::item::BaseShape::IdOnly),
                calendar_view: CalendarView {
                    start: t("2026-12-07T00:00:00Z"),
                    end: t("2026-12-08T00:00:00Z"),
                    max_entries_returned: None,
                },
                parent_folder_ids: vec![FolderRef::distinguished(DistinguishedFolder::Calendar)],
            },
            &as_mailbox(ORGANIZER),
        )
        .await
        .expect("FindItem")
        .into_single()
        .expect("view");
    let occurrence_id = org_view.items[0].item_id.clone().expect("occurrence id");
    let master = c
        .call(
            &GetItem {
                item_shape: Shape::meeting(),
                item_ids: vec![ItemRef::RecurringMaster {
                    occurrence_id: occurrence_id.id,
                }],
            },
            &as_mailbox(ORGANIZER),
        )
        .await
        .expect("GetItem")
        .into_single()
        .expect("master");
    let master = &master.items[0];
    assert_eq!(master.deleted_occurrences, vec![t("2026-12-14T08:00:00Z")]);
    assert_eq!(master.modified_occurrences.len(), 1);
    assert_eq!(master.modified_occurrences[0].start, t("2026-12-07T13:00:00Z"));
    sim.shutdown().await;
}

/// A SOAP request written with the same quick-xml writer as the client:
/// a header with `version` (and impersonation of `mailbox`), and a body.
fn soap(
    version: &str,
    mailbox: Option<&str>,
    body: impl FnOnce(&mut XmlWriter) -> Result<(), resa::ews::EwsError>,
) -> Vec<u8> {
    let mut w = XmlWriter::new(ServerVersion::Exchange2016);
    let r = (|| {
        w.decl()?;
        w.start(
            "soap:Envelope",
            &[("xmlns:soap", NS_SOAP), ("xmlns:t", NS_TYPES), ("xmlns:m", NS_MESSAGES)],
        )?;
        w.start("soap:Header", &[])?;
        w.empty("t:RequestServerVersion", &[("Version", version)])?;
        if let Some(m) = mailbox {
            w.start("t:ExchangeImpersonation", &[])?;
            w.start("t:ConnectingSID", &[])?;
            w.text_elem("t:PrimarySmtpAddress", m)?;
            w.end("t:ConnectingSID")?;
            w.end("t:ExchangeImpersonation")?;
        }
        w.end("soap:Header")?;
        w.start("soap:Body", &[])?;
        body(&mut w)?;
        w.end("soap:Body")?;
        w.end("soap:Envelope")
    })();
    r.expect("write the request");
    w.into_bytes()
}

fn subscribe_body(
    kind: &'static str,
    folders: &'static [&'static str],
    events: &'static [&'static str],
) -> impl FnOnce(&mut XmlWriter) -> Result<(), resa::ews::EwsError> {
    move |w| {
        w.start("m:Subscribe", &[])?;
        w.start(kind, &[])?;
        w.start("t:FolderIds", &[])?;
        for f in folders {
            w.empty("t:DistinguishedFolderId", &[("Id", f)])?;
        }
        w.end("t:FolderIds")?;
        w.start("t:EventTypes", &[])?;
        for e in events {
            w.text_elem("t:EventType", e)?;
        }
        w.end("t:EventTypes")?;
        if kind == "m:PullSubscriptionRequest" {
            w.text_elem("t:Timeout", "10")?;
        }
        w.end(kind)?;
        w.end("m:Subscribe")
    }
}

fn get_events_body(id: &str, watermark: &str) -> impl FnOnce(&mut XmlWriter) -> Result<(), resa::ews::EwsError> {
    let (id, watermark) = (id.to_owned(), watermark.to_owned());
    move |w| {
        w.start("m:GetEvents", &[])?;
        w.text_elem("m:SubscriptionId", &id)?;
        w.text_elem("m:Watermark", &watermark)?;
        w.end("m:GetEvents")
    }
}

/// Posts a SOAP request with Basic authentication and returns the status
/// and the body text.
async fn raw_soap(sim: &SimHandle, login: &str, password: &str, request: Vec<u8>) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(sim.ews_url())
        .basic_auth(login, Some(password))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(request)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("text"))
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text
        .find(open)
        .map(|i| i + open.len())
        .unwrap_or_else(|| panic!("no {open} in {text}"));
    let len = text[start..]
        .find(close)
        .unwrap_or_else(|| panic!("no {close} in {text}"));
    &text[start..start + len]
}

async fn invite_room(sim: &SimHandle, subject: &str) {
    control_post(
        sim,
        "/invite",
        &serde_json::json!({"as": ORGANIZER, "subject": subject, "start": "2026-12-03T09:00:00", "end": "2026-12-03T10:00:00", "resources": [ROOM]}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_subscription_reports_new_mail_by_watermark() {
    let sim = start(ServerVersion::Exchange2007_SP1).await;
    let request = soap(
        "Exchange2007_SP1",
        Some(ROOM),
        subscribe_body(
            "m:PullSubscriptionRequest",
            &["inbox"],
            &["NewMailEvent", "DeletedEvent"],
        ),
    );
    let (status, text) = raw_soap(&sim, LOGIN, PASSWORD, request).await;
    assert_eq!(status, 200, "{text}");
    let id = between(&text, "<m:SubscriptionId>", "</m:SubscriptionId>").to_owned();
    let first = between(&text, "<m:Watermark>", "</m:Watermark>").to_owned();
    invite_room(&sim, "Pull").await;
    let get = |wm: String| {
        let id = id.clone();
        let sim = &sim;
        async move {
            raw_soap(
                sim,
                LOGIN,
                PASSWORD,
                soap("Exchange2007_SP1", Some(ROOM), get_events_body(&id, &wm)),
            )
            .await
        }
    };
    let (status, text) = get(first.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("<t:NewMailEvent>"), "{text}");
    assert!(!text.contains("<t:CreatedEvent>"), "only the asked event types: {text}");
    assert_eq!(between(&text, "<t:PreviousWatermark>", "</t:PreviousWatermark>"), first);
    let next = between(&text, "<t:Watermark>", "</t:Watermark>").to_owned();
    assert_ne!(next, first);
    // Nothing new since: a StatusEvent.
    let (_, text) = get(next.clone()).await;
    assert!(text.contains("<t:StatusEvent>"), "{text}");
    // The same watermark again gives the same events (at-least-once).
    let (_, text) = get(first).await;
    assert!(text.contains("<t:NewMailEvent>"), "{text}");
    let unsubscribe = soap("Exchange2007_SP1", Some(ROOM), |w| {
        w.start("m:Unsubscribe", &[])?;
        w.text_elem("m:SubscriptionId", &id)?;
        w.end("m:Unsubscribe")
    });
    let (_, text) = raw_soap(&sim, LOGIN, PASSWORD, unsubscribe).await;
    assert!(text.contains("NoError"), "{text}");
    let (_, text) = get(next).await;
    assert!(text.contains("ErrorSubscriptionNotFound"), "{text}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_subscription_pushes_envelopes_and_closes_after_its_timeout() {
    let mut opts = SimOptions::new("127.0.0.1:0", seed(), ServerVersion::Exchange2010_SP2);
    // One simulated minute lasts 600 ms, so ConnectionTimeout 1 ends quickly.
    opts.minute = Duration::from_millis(600);
    let sim = Simulator::start(opts).await.expect("start");
    let request = soap(
        "Exchange2010_SP2",
        Some(ROOM),
        subscribe_body(
            "m:StreamingSubscriptionRequest",
            &["inbox", "calendar"],
            &["NewMailEvent", "CreatedEvent"],
        ),
    );
    let (status, text) = raw_soap(&sim, LOGIN, PASSWORD, request).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        !text.contains("<m:Watermark>"),
        "streaming subscriptions have no watermark: {text}"
    );
    let id = between(&text, "<m:SubscriptionId>", "</m:SubscriptionId>").to_owned();
    let envelope = soap("Exchange2010_SP2", Some(ROOM), |w| {
        w.start("m:GetStreamingEvents", &[])?;
        w.start("m:SubscriptionIds", &[])?;
        w.text_elem("t:SubscriptionId", &id)?;
        w.end("m:SubscriptionIds")?;
        w.text_elem("m:ConnectionTimeout", "1")?;
        w.end("m:GetStreamingEvents")
    });
    let mut resp = reqwest::Client::new()
        .post(sim.ews_url())
        .basic_auth(LOGIN, Some(PASSWORD))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(envelope)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    invite_room(&sim, "Streaming").await;
    let mut seen = String::new();
    let started = resa::clock::monotonic();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .expect("the stream ends by itself")
        .expect("chunk")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let elapsed = started.elapsed();
    assert!(seen.contains("<t:NewMailEvent>"), "{seen}");
    assert!(seen.contains("<t:CreatedEvent>"), "{seen}");
    assert!(seen.contains("<m:ConnectionStatus>OK</m:ConnectionStatus>"), "{seen}");
    assert!(seen.ends_with("</s:Envelope>"), "{seen}");
    assert!(
        seen.contains("<m:ConnectionStatus>Closed</m:ConnectionStatus>"),
        "the last envelope says Closed: {seen}"
    );
    assert!(elapsed >= Duration::from_millis(400), "closed too early: {elapsed:?}");
    // Each chunk is a whole envelope.
    let envelopes = seen.matches("<?xml").count();
    assert!(envelopes >= 2, "{seen}");
    // A pull operation on a streaming subscription is refused.
    let (_, text) = raw_soap(
        &sim,
        LOGIN,
        PASSWORD,
        soap("Exchange2010_SP2", Some(ROOM), get_events_body(&id, "AA==")),
    )
    .await;
    assert!(text.contains("ErrorInvalidSubscription"), "{text}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_file_keeps_mailboxes_between_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = SimOptions::new("127.0.0.1:0", seed(), ServerVersion::Exchange2010_SP2);
    opts.state_file = Some(dir.path().join("sim.json"));
    let sim = Simulator::start(opts.clone()).await.expect("start");
    invite_room(&sim, "Persistant").await;
    sim.shutdown().await;
    let sim = Simulator::start(opts).await.expect("restart");
    let subjects = sim.shared().read(|w| {
        w.mailbox(ROOM)
            .map(|m| m.items.values().map(|i| i.subject.clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    });
    assert_eq!(subjects, vec!["Persistant".to_owned(), "Persistant".to_owned()]);
    sim.shutdown().await;
}

/// `resa sim` as an operator starts it: a TOML seed, a port, a version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resa_sim_serves_a_seed_file() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let seed_path = dir.path().join("seed.toml");
    std::fs::write(
        &seed_path,
        format!(
            "[service_account]\nlogin = 'RESA\\svc-resa'\npassword = \"{PASSWORD}\"\n\n[[mailboxes]]\nsmtp = \"{ROOM}\"\nname = \"Salle Cézanne\"\nkind = \"room\"\n"
        ),
    )
    .expect("seed");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_resa"))
        .args(["sim", "--listen", "127.0.0.1:0", "--version", "2013", "--seed"])
        .arg(&seed_path)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn resa sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("resa sim prints its endpoint")
        .expect("read")
        .expect("a line");
    let ews = first.strip_prefix("EWS ").expect("EWS line").to_owned();
    let control = ews.replace("/EWS/Exchange.asmx", "/_sim");
    let health: serde_json::Value = serde_json::from_slice(
        &reqwest::get(format!("{control}/health"))
            .await
            .expect("health")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(health["version"], "Exchange2013_SP1");
    let boxes: serde_json::Value = serde_json::from_slice(
        &reqwest::get(format!("{control}/mailboxes"))
            .await
            .expect("list")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(boxes["mailboxes"][0]["smtp"], ROOM);
    // Unauthenticated EWS requests get the NTLM challenge offer.
    let resp = reqwest::Client::new()
        .post(&ews)
        .body("<x/>")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 401);
    let offers: Vec<_> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(offers.contains(&"NTLM"), "{offers:?}");
    child.kill().await.expect("kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_names_and_deletion() {
    let sim = start(ServerVersion::Exchange2010_SP2).await;
    invite_room(&sim, "Dispo").await;
    // Free/busy of the room in Paris time (Bias -60: UTC = local - 1 h).
    let availability = soap("Exchange2010_SP2", None, |w| {
        w.start("m:GetUserAvailabilityRequest", &[])?;
        w.start("t:TimeZone", &[])?;
        w.text_elem("t:Bias", "-60")?;
        w.end("t:TimeZone")?;
        w.start("m:MailboxDataArray", &[])?;
        for who in [ROOM, "nobody@plainecommune.fr"] {
            w.start("t:MailboxData", &[])?;
            w.start("t:Email", &[])?;
            w.text_elem("t:Address", who)?;
            w.end("t:Email")?;
            w.text_elem("t:AttendeeType", "Room")?;
            w.end("t:MailboxData")?;
        }
        w.end("m:MailboxDataArray")?;
        w.start("t:FreeBusyViewOptions", &[])?;
        w.start("t:TimeWindow", &[])?;
        w.text_elem("t:StartTime", "2026-12-03T00:00:00")?;
        w.text_elem("t:EndTime", "2026-12-04T00:00:00")?;
        w.end("t:TimeWindow")?;
        w.text_elem("t:RequestedView", "Detailed")?;
        w.end("t:FreeBusyViewOptions")?;
        w.end("m:GetUserAvailabilityRequest")
    });
    let (status, text) = raw_soap(&sim, LOGIN, PASSWORD, availability).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(between(&text, "<t:StartTime>", "</t:StartTime>"), "2026-12-03T09:00:00");
    assert_eq!(between(&text, "<t:BusyType>", "</t:BusyType>"), "Tentative");
    assert_eq!(between(&text, "<t:Subject>", "</t:Subject>"), "Dispo");
    assert!(text.contains("ErrorMailRecipientNotFound"), "{text}");
    // ResolveNames by legacy DN.
    let dn = sim
        .shared()
        .read(|w| w.mailbox(ROOM).map(|m| m.info.legacy_dn.clone()).unwrap_or_default());
    let resolve = soap("Exchange2010_SP2", None, |w| {
        w.start("m:ResolveNames", &[("ReturnFullContactData", "true")])?;
        w.text_elem("m:UnresolvedEntry", &dn)?;
        w.end("m:ResolveNames")
    });
    let (_, text) = raw_soap(&sim, LOGIN, PASSWORD, resolve).await;
    assert_eq!(between(&text, "<t:EmailAddress>", "</t:EmailAddress>"), ROOM);
    assert!(
        text.contains("<t:ContactSource>ActiveDirectory</t:ContactSource>"),
        "{text}"
    );
    // The organizer deletes the meeting with cancellations: the room gets one.
    let (organizer_item, uid) = sim.shared().read(|w| {
        let mb = w.mailbox(ORGANIZER).expect("organizer");
        let item = mb
            .items
            .values()
            .find(|i| i.class == ItemClass::CalendarItem)
            .expect("calendar item");
        (
            resa::sim::render::item_id(ORGANIZER, item.no, None),
            item.meeting.as_ref().map(|m| m.uid.clone()),
        )
    });
    let delete = soap("Exchange2010_SP2", Some(ORGANIZER), |w| {
        w.start(
            "m:DeleteItem",
            &[
                ("DeleteType", "MoveToDeletedItems"),
                ("SendMeetingCancellations", "SendToAllAndSaveCopy"),
            ],
        )?;
        w.start("m:ItemIds", &[])?;
        w.empty("t:ItemId", &[("Id", &organizer_item)])?;
        w.end("m:ItemIds")?;
        w.end("m:DeleteItem")
    });
    let (status, text) = raw_soap(&sim, LOGIN, PASSWORD, delete).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("<m:DeleteItemResponseMessage ResponseClass=\"Success\">"),
        "{text}"
    );
    let cancelled = sim.shared().read(|w| {
        w.mailbox(ROOM)
            .map(|m| {
                m.items.values().any(|i| {
                    i.class == ItemClass::MeetingCancellation && i.meeting.as_ref().map(|m| m.uid.clone()) == uid
                })
            })
            .unwrap_or(false)
    });
    assert!(cancelled);
    sim.shutdown().await;
}
