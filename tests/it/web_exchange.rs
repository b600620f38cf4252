//! The web site against the Exchange simulator, with the daemon running:
//! what a booking or a cancellation made on the site does in Exchange, seen
//! in the simulated mailboxes.

use crate::daemon::{ALICE, BOB, ROOM, Rig, response_of, rig};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use resa::clock::SharedClock;
use resa::domain::{Policy, Scope};
use resa::ews::soap::ServerVersion;
use resa::runtime::Daemon;
use resa::web::WebState;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use uuid::Uuid;

fn site(r: &Rig) -> WebState {
    site_with(r, None)
}

/// The site as `resa serve` runs it: in the daemon's process, waking its
/// outbox worker.
fn site_of(r: &Rig, daemon: &Daemon) -> WebState {
    site_with(r, Some(daemon.outbox_wake()))
}

fn site_with(r: &Rig, outbox_wake: Option<Arc<tokio::sync::Notify>>) -> WebState {
    let clock: SharedClock = Arc::new(r.clock.clone());
    WebState {
        store: r.db.store().clone(),
        clock: clock.clone(),
        directories: Vec::new().into(),
        admin_groups: Vec::new(),
        secret_key: Arc::from(&b"a test key of thirty-two bytes!!"[..]),
        secure_cookies: false,
        exchange_endpoints: vec!["sim".into()],
        outbox_wake,
    }
}

/// A signed-in browser: (cookie, CSRF token).
async fn sign_in(r: &Rig, account: &str) -> (String, String) {
    let person =
        r.db.store()
            .person_by_account("pc", account)
            .await
            .expect("query")
            .expect("person");
    let s =
        r.db.store()
            .create_session(person.id, "fr", resa::clock::Clock::now(&r.clock))
            .await
            .expect("session");
    (format!("resa_session={}", s.id), s.csrf_token)
}

async fn send(state: &WebState, request: Request<Body>) -> (StatusCode, String, String) {
    let response = resa::web::router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .expect("body");
    (status, location, String::from_utf8_lossy(&bytes).into_owned())
}

async fn post(
    state: &WebState,
    who: &(String, String),
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let mut pairs = vec![("_csrf", who.1.as_str())];
    pairs.extend_from_slice(form);
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &who.0)
        .body(Body::from(body))
        .expect("request");
    send(state, request).await
}

async fn get(state: &WebState, who: &(String, String), path: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header(header::COOKIE, &who.0)
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = send(state, request).await;
    (status, body)
}

/// The items of a simulated mailbox's folder, through the control API.
async fn folder(r: &Rig, smtp: &str, folder: &str) -> Vec<Value> {
    let bytes = r
        .http
        .get(format!("{}/mailboxes/{smtp}/{folder}", r.sim.control_url()))
        .send()
        .await
        .expect("control API answers")
        .bytes()
        .await
        .expect("body");
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn booking_of(r: &Rig, uid: &str) -> Uuid {
    for _ in 0..100 {
        let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM bookings WHERE uid = $1")
            .bind(uid)
            .fetch_optional(r.db.pool())
            .await
            .expect("query");
        if let Some(id) = found {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no booking for {uid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_on_the_web_a_meeting_booked_in_outlook_declines_it_in_exchange() {
    let r = rig(ServerVersion::Exchange2016).await;
    let daemon = r.daemon(r.db.store(), "a");
    let uid = r
        .invite(
            ALICE,
            "Comité de pilotage",
            "2026-12-01T14:00:00",
            "2026-12-01T15:00:00",
        )
        .await;
    let accepted = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&accepted, "Comité de pilotage")["response"], "Accept");
    assert!(
        folder(&r, ROOM, "calendar")
            .await
            .iter()
            .any(|i| i["uid"] == uid.as_str()),
        "the room's calendar holds the meeting"
    );
    let booking = booking_of(&r, &uid).await;

    // Alice cancels it on the site.
    let state = site_of(&r, &daemon);
    let alice = sign_in(&r, "alice").await;
    let (status, to, body) = post(&state, &alice, &format!("/bookings/{booking}/cancel"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/bookings?msg=bookings.cancelled");

    // The room declines in Exchange: Alice's mailbox gets the refusal with
    // who cancelled, and the room's calendar is free again.
    let answers = r.responses(ALICE, 2).await;
    let decline = answers
        .iter()
        .find(|i| i["response"] == "Decline")
        .unwrap_or_else(|| panic!("no refusal in Alice's mailbox: {answers:?}"));
    let text = decline["body"].as_str().unwrap_or_default();
    assert!(text.contains("annulée sur le site resa par Alice Martin"), "{text}");
    assert!(
        !folder(&r, ROOM, "calendar")
            .await
            .iter()
            .any(|i| i["uid"] == uid.as_str()),
        "the meeting left the room's calendar"
    );
    // The slot is free in resa too.
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM occurrences o JOIN bookings b ON b.id = o.booking_id
         WHERE b.uid = $1 AND o.status IN ('accepted', 'held')",
    )
    .bind(&uid)
    .fetch_one(r.db.pool())
    .await
    .expect("count");
    assert_eq!(held, 0);
    // Alice cancelled her own booking: no "cancelled by a manager" message.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(messages(&r, ALICE).await.is_empty());
    assert_eq!(outbox_rows(&r, booking, "message").await, 0);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_booking_cancelled_on_the_web_is_cancelled_for_its_attendee_in_exchange() {
    let r = rig(ServerVersion::Exchange2010_SP2).await;
    // The booking and its cancellation leave through the daemon's outbox.
    let daemon = r.daemon(r.db.store(), "a");
    let state = site_of(&r, &daemon);
    let alice = sign_in(&r, "alice").await;
    let room = r.room.to_string();
    let (status, to, body) = post(
        &state,
        &alice,
        "/book",
        &[
            ("resource", &room),
            ("date", "2026-12-02"),
            ("start", "10:00"),
            ("end", "11:00"),
            ("subject", "Point d'équipe"),
            ("attendees", "3"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(!to.contains("msg="), "{to}");
    let created = wait_in(&r, ROOM, "calendar", |i| i["subject"] == "Point d'équipe").await;
    assert_eq!(created.len(), 1, "the room's calendar holds the web booking once");
    let meeting = created[0].clone();
    assert!(
        wait_for(&r, ALICE, |i| i["kind"] == "MeetingRequest"
            && i["uid"] == meeting["uid"])
        .await
        .len()
            == 1,
        "Alice is invited once"
    );
    let booking = to.trim_start_matches("/bookings/").to_owned();
    let (status, to, _) = post(&state, &alice, &format!("/bookings/{booking}/cancel"), &[]).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/bookings?msg=bookings.cancelled")
    );
    let cancellation = wait_for(&r, ALICE, |i| {
        i["kind"] == "MeetingCancellation" && i["uid"] == meeting["uid"]
    })
    .await;
    assert_eq!(cancellation.len(), 1, "Alice's mailbox gets the cancellation once");
    daemon.shutdown().await;
    assert!(
        folder(&r, ROOM, "calendar")
            .await
            .iter()
            .all(|i| i["uid"] != meeting["uid"] || i["is_cancelled"] == true),
        "the meeting is cancelled in the room's calendar"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_booked_on_the_web_is_one_recurring_meeting_in_exchange_with_each_date_decided() {
    let r = rig(ServerVersion::Exchange2016).await;
    // Partial acceptance: one taken date among four does not refuse the rest.
    r.db.store()
        .set_policy(
            Scope::Global,
            &Policy {
                conflict_max_count: Some(1),
                conflict_max_percent: Some(50),
                ..Policy::default()
            },
            resa::clock::Clock::now(&r.clock),
        )
        .await
        .expect("policy");
    let daemon = r.daemon(r.db.store(), "a");
    // Bob took Tuesday 8 December in Outlook.
    r.invite(BOB, "Réunion de Bob", "2026-12-08T14:00:00", "2026-12-08T15:00:00")
        .await;
    assert_eq!(
        response_of(&r.responses(BOB, 1).await, "Réunion de Bob")["response"],
        "Accept"
    );

    let state = site_of(&r, &daemon);
    let alice = sign_in(&r, "alice").await;
    let room = r.room.to_string();
    // A series needs an end: a bad one is refused with a clear message and
    // books nothing.
    let (status, _, body) = post(
        &state,
        &alice,
        "/book",
        &[
            ("resource", &room),
            ("date", "2026-12-01"),
            ("start", "14:00"),
            ("end", "15:00"),
            ("subject", "Atelier budget"),
            ("repeat", "weekly"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("date de fin"), "{body}");
    let (status, to, body) = post(
        &state,
        &alice,
        "/book",
        &[
            ("resource", &room),
            ("date", "2026-12-01"),
            ("start", "14:00"),
            ("end", "15:00"),
            ("subject", "Atelier budget"),
            ("attendees", "3"),
            ("repeat", "weekly"),
            ("count", "4"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(to.starts_with("/bookings/") && !to.contains("msg="), "{to}");

    // Each date is decided and shown: three accepted, the 8th refused.
    let (status, page) = get(&state, &alice, &to).await;
    assert_eq!(status, StatusCode::OK);
    let dates: Vec<&str> = page
        .split("<li>")
        .skip(1)
        .filter(|l| l.contains("décembre") || l.contains("2026"))
        .collect();
    for (day, verdict) in [
        ("1er décembre", "acceptée"),
        ("8 décembre", "refusée"),
        ("15 décembre", "acceptée"),
        ("22 décembre", "acceptée"),
    ] {
        assert!(
            dates.iter().any(|l| l.contains(day) && l.contains(verdict)),
            "{day} should be {verdict}: {dates:?}"
        );
    }

    // The refused date says why.
    assert!(
        page.contains("le mardi 8 décembre 2026 de 14 h à 15 h : La salle est déjà réservée"),
        "{page}"
    );

    // Exchange holds one recurring meeting, organised by the room, Alice invited.
    let calendar = wait_in(&r, ROOM, "calendar", |i| i["subject"] == "Atelier budget").await;
    let series: Vec<&Value> = calendar.iter().collect();
    assert_eq!(series.len(), 1, "{calendar:?}");
    let rule = series[0]["recurrence"].as_str().unwrap_or_default();
    assert!(rule.contains("FREQ=WEEKLY") && rule.contains("COUNT=4"), "{rule}");
    let invitation = folder(&r, ALICE, "inbox")
        .await
        .into_iter()
        .find(|i| i["kind"] == "MeetingRequest" && i["subject"] == "Atelier budget")
        .expect("Alice's invitation");
    assert_eq!(invitation["recurrence"], series[0]["recurrence"]);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_asked_on_the_status_page_is_done_by_the_daemon() {
    let r = rig(ServerVersion::Exchange2016).await;
    let daemon = r.daemon(r.db.store(), "a");
    // The daemon has read the room once.
    r.invite(ALICE, "Premier passage", "2026-12-01T09:00:00", "2026-12-01T10:00:00")
        .await;
    r.responses(ALICE, 1).await;
    let admin_group = "GG-Resa-Admins";
    // An administrator: Bob, through the configured admin group.
    let dir = r.db.store().ensure_directory("pc").await.expect("directory");
    let group = resa::directory::entry::GroupRecord {
        object_guid: Uuid::from_u128(900),
        dn: "CN=GG-Resa-Admins,OU=Groupes,DC=pc,DC=local".into(),
        sam_account_name: admin_group.into(),
        name: admin_group.into(),
        description: None,
        member_dns: vec!["CN=Bob Durand,OU=Agents,DC=pc,DC=local".into()],
        usn_changed: Some(2),
    };
    r.db.store()
        .apply_directory_sync(
            dir.id,
            resa::store::directory::SyncBatch {
                full: false,
                people: &[],
                groups: &[group],
                highest_usn: Some(2),
                usn_server: None,
            },
            resa::clock::Clock::now(&r.clock),
        )
        .await
        .expect("admin group");
    let mut state = site(&r);
    state.admin_groups = vec![resa::web::AdminGroup::parse(&format!("pc:{admin_group}")).expect("group")];
    let admin = sign_in(&r, "bob").await;
    let (status, to, body) = post(&state, &admin, &format!("/admin/status/{}/resync", r.room), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/admin/status?msg=admin.resync_requested");
    // The daemon reads the mailbox from scratch and clears the request.
    let mut pending = true;
    for _ in 0..100 {
        pending = sqlx::query_scalar::<_, bool>(
            "SELECT resync_requested_at IS NOT NULL FROM mailbox_sync WHERE resource_id = $1",
        )
        .bind(r.room)
        .fetch_one(r.db.pool())
        .await
        .expect("row");
        if !pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!pending, "the daemon did not resync the mailbox within 10 s");
    // Nothing was decided twice.
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(r.db.pool())
        .await
        .expect("count");
    assert_eq!(decisions, 1);
    daemon.shutdown().await;
}

/// Waits (up to 20 s) until `smtp`'s Inbox holds an item `pick` likes, then
/// a little longer for any double; returns them all.
async fn wait_for(r: &Rig, smtp: &str, pick: impl Fn(&Value) -> bool) -> Vec<Value> {
    wait_in(r, smtp, "inbox", pick).await
}

/// Waits until a mailbox's folder holds an item `pick` accepts, then a
/// little more (a double would come meanwhile); returns those items.
async fn wait_in(r: &Rig, smtp: &str, name: &str, pick: impl Fn(&Value) -> bool) -> Vec<Value> {
    for _ in 0..200 {
        if folder(r, smtp, name).await.iter().any(&pick) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return folder(r, smtp, name).await.into_iter().filter(|i| pick(i)).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing expected in {smtp}'s {name}: {:?}", folder(r, smtp, name).await);
}

/// The plain messages (not meeting messages) in a mailbox's Inbox.
async fn messages(r: &Rig, smtp: &str) -> Vec<Value> {
    folder(r, smtp, "inbox")
        .await
        .into_iter()
        .filter(|i| i["kind"] == "Message")
        .collect()
}

async fn outbox_rows(r: &Rig, booking: Uuid, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE booking_id = $1 AND kind = $2")
        .bind(booking)
        .bind(kind)
        .fetch_one(r.db.pool())
        .await
        .expect("count")
}

/// (status, attempts, last_error) of a booking's cancellation command.
async fn cancel_command(r: &Rig, booking: Uuid) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT status, attempts, last_error FROM outbox WHERE booking_id = $1 AND kind = 'cancel_meeting'")
        .bind(booking)
        .fetch_one(r.db.pool())
        .await
        .expect("the cancellation is queued")
}

/// A meeting Alice booked in Outlook, accepted by the room; its booking.
async fn accepted_outlook_meeting(r: &Rig, subject: &str) -> (String, Uuid) {
    let uid = r
        .invite(ALICE, subject, "2026-12-01T14:00:00", "2026-12-01T15:00:00")
        .await;
    let accepted = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&accepted, subject)["response"], "Accept");
    let booking = booking_of(r, &uid).await;
    (uid, booking)
}

fn declines(items: &[Value]) -> usize {
    items.iter().filter(|i| i["response"] == "Decline").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_cancellation_meeting_a_busy_exchange_is_retried_and_lands_once() {
    let r = rig(ServerVersion::Exchange2016).await;
    let daemon = r.daemon(r.db.store(), "a");
    let (_, booking) = accepted_outlook_meeting(&r, "Revue budgétaire").await;
    // Exchange throttles every CreateItem for a while: more refusals than
    // the EWS client retries on its own, so the outbox must try again.
    r.control(
        "/faults",
        json!({ "faults": [
            { "kind": "server_busy", "back_off_ms": 100, "operation": "CreateItem", "count": 7 },
        ]}),
    )
    .await;
    let state = site_of(&r, &daemon);
    let alice = sign_in(&r, "alice").await;
    let (status, to, _) = post(&state, &alice, &format!("/bookings/{booking}/cancel"), &[]).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/bookings?msg=bookings.cancelled")
    );
    // The retry is due on the daemon's clock: let it run.
    let mut landed = false;
    for _ in 0..200 {
        if declines(&r.inbox(ALICE).await) > 0 {
            landed = true;
            break;
        }
        r.clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(landed, "the refusal never reached Alice: {:?}", r.inbox(ALICE).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(declines(&r.inbox(ALICE).await), 1, "the refusal is sent once");
    let (status, attempts, _) = cancel_command(&r, booking).await;
    assert_eq!(status, "done");
    assert!(attempts >= 2, "the outbox retried: {attempts} attempt(s)");
    let left = r.control("/faults", json!({})).await;
    let left: i64 = left["faults"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["count"].as_i64()).sum())
        .unwrap_or_default();
    assert_eq!(left, 0, "every throttling fault fired");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_cancellation_waits_for_the_daemon_and_is_sent_once_even_after_a_crash() {
    let r = rig(ServerVersion::Exchange2016).await;
    let daemon = r.daemon(r.db.store(), "a");
    let (uid, booking) = accepted_outlook_meeting(&r, "Atelier mobilité").await;
    daemon.shutdown().await;

    // The daemon is stopped: the site cancels, the command waits.
    let state = site(&r);
    let alice = sign_in(&r, "alice").await;
    let (status, to, _) = post(&state, &alice, &format!("/bookings/{booking}/cancel"), &[]).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/bookings?msg=bookings.cancelled")
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(declines(&r.inbox(ALICE).await), 0, "nothing leaves without the daemon");
    assert_eq!(cancel_command(&r, booking).await.0, "pending");
    assert!(
        folder(&r, ROOM, "calendar")
            .await
            .iter()
            .any(|i| i["uid"] == uid.as_str()),
        "the room's calendar still holds the meeting"
    );

    // It starts: the refusal is sent once.
    let daemon = r.daemon(r.db.store(), "b");
    let refusals = wait_for(&r, ALICE, |i| i["response"] == "Decline").await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let mut done = String::new();
    for _ in 0..50 {
        done = cancel_command(&r, booking).await.0;
        if done == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done, "done");

    // A crash between sending and recording it: the command comes back.
    // The meeting is gone from the room's calendar, so nothing is sent again.
    sqlx::query(
        "UPDATE outbox SET status = 'pending', done_at = NULL WHERE booking_id = $1 AND kind = 'cancel_meeting'",
    )
    .bind(booking)
    .execute(r.db.pool())
    .await
    .expect("reset");
    let mut note = None;
    for _ in 0..50 {
        let (status, _, last_error) = cancel_command(&r, booking).await;
        if status == "done" {
            note = last_error;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        note.as_deref().is_some_and(|n| n.contains("no longer")),
        "the retry found the meeting gone: {note:?}"
    );
    assert_eq!(declines(&r.inbox(ALICE).await), 1, "still one refusal");
    daemon.shutdown().await;
}

/// Bob manages the room (a grant on it).
async fn make_bob_manager(r: &Rig) {
    use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant};
    let bob =
        r.db.store()
            .person_by_account("pc", "bob")
            .await
            .expect("query")
            .expect("bob")
            .id;
    r.db.store()
        .create_grant(&NewGrant {
            subject: GrantSubject::Person(bob),
            scope: GrantScope::Resource(r.room),
            role: GrantRole::Manage,
            created_by: None,
        })
        .await
        .expect("grant");
}

/// Bob, a manager of the room, cancels Alice's meeting with a comment;
/// returns Alice's "cancelled by a manager" message and the room's refusal.
async fn manager_cancels(r: &Rig, subject: &str, comment: &str) -> (Value, Value) {
    let daemon = r.daemon(r.db.store(), "a");
    let (_, booking) = accepted_outlook_meeting(r, subject).await;
    let state = site_of(r, &daemon);
    // Before the grant, Bob cannot even see Alice's booking.
    let bob = sign_in(r, "bob").await;
    let (status, _, _) = post(
        &state,
        &bob,
        &format!("/bookings/{booking}/cancel"),
        &[("comment", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    make_bob_manager(r).await;
    let bob = sign_in(r, "bob").await;
    // The form offers him a comment for the organiser.
    let (status, page) = get(&state, &bob, &format!("/bookings/{booking}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("name=\"comment\""), "{page}");
    // Without the CSRF token, nothing happens.
    let request = axum::http::Request::post(format!("/bookings/{booking}/cancel"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &bob.0)
        .body(Body::from("comment=x"))
        .expect("request");
    let (status, _, _) = send(&state, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(outbox_rows(r, booking, "cancel_meeting").await, 0);
    let (status, to, _) = post(
        &state,
        &bob,
        &format!("/bookings/{booking}/cancel"),
        &[("comment", comment)],
    )
    .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/bookings?msg=bookings.cancelled")
    );
    let told = wait_for(r, ALICE, |i| i["kind"] == "Message").await;
    assert_eq!(told.len(), 1, "one message: {told:?}");
    let refusal = wait_for(r, ALICE, |i| i["response"] == "Decline").await;
    assert_eq!(refusal.len(), 1, "one refusal: {refusal:?}");
    // The message comes from the room's mailbox.
    let sent = folder(r, ROOM, "sentitems").await;
    assert!(
        sent.iter()
            .any(|i| i["kind"] == "Message" && i["subject"] == told[0]["subject"]),
        "sent from the room: {sent:?}"
    );
    daemon.shutdown().await;
    (told[0].clone(), refusal[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_cancelling_a_booking_tells_its_organiser_who_when_and_why_in_french() {
    let r = rig(ServerVersion::Exchange2016).await;
    let (message, refusal) =
        manager_cancels(&r, "Comité de quartier", "La salle est réquisitionnée pour le conseil.").await;
    assert_eq!(message["subject"], "Annulé : Comité de quartier");
    let body = message["body"].as_str().unwrap_or_default();
    assert!(
        body.contains(
            "Votre réservation de Salle Cézanne le 01/12/2026 de 14:00 à 15:00 a été annulée par Bob Durand, \
             gestionnaire, le 30/11/2026 à 08:00."
        ),
        "{body}"
    );
    assert!(body.contains("La salle est réquisitionnée pour le conseil."), "{body}");
    let text = refusal["body"].as_str().unwrap_or_default();
    assert!(
        text.contains("Réservation annulée sur le site resa par Bob Durand."),
        "{text}"
    );
    assert!(text.contains("La salle est réquisitionnée pour le conseil."), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_cancelling_tells_an_organiser_who_prefers_english_in_english() {
    let r = rig(ServerVersion::Exchange2016).await;
    sqlx::query(
        "UPDATE people SET preferred_language = 'en' WHERE id IN
           (SELECT person_id FROM person_addresses WHERE address = $1)",
    )
    .bind(ALICE)
    .execute(r.db.pool())
    .await
    .expect("Alice prefers English");
    let (message, refusal) = manager_cancels(&r, "Neighbourhood board", "Needed for the council.").await;
    assert_eq!(message["subject"], "Cancelled: Neighbourhood board");
    let body = message["body"].as_str().unwrap_or_default();
    assert!(
        body.contains(
            "Your booking of Salle Cézanne on 01/12/2026 from 14:00 to 15:00 was cancelled by Bob Durand, \
             a manager, on 30/11/2026 at 08:00."
        ),
        "{body}"
    );
    assert!(body.contains("Needed for the council."), "{body}");
    let text = refusal["body"].as_str().unwrap_or_default();
    assert!(
        text.contains("Booking cancelled on the resa site by Bob Durand."),
        "{text}"
    );
}
