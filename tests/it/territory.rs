//! Vehicle trips outside the territory: the destination an invitation gives
//! ("Destination : Lyon") or the trip details given later send the booking
//! through the circuit whose condition is "outside the territory"; a trip
//! inside (Saint-Denis) does not go through it.

use crate::daemon::{ALICE, BOB, ROOM, Rig, rig};
use resa::clock::Clock;
use resa::domain::circuit::{Condition, FinalOutcome, Quorum};
use resa::ews::soap::ServerVersion;
use resa::store::circuits::{ApproverDef, CircuitDef, StepDef, Verdict};
use resa::store::vehicles::TripDetails;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// The rig's room made a car, and a circuit for trips outside the
/// territory whose one approver is Bob.
async fn car_and_circuit(r: &Rig) {
    sqlx::query(
        "UPDATE resource_types SET category = 'vehicle'
         WHERE id = (SELECT resource_type_id FROM resources WHERE id = $1)",
    )
    .bind(r.room)
    .execute(r.db.pool())
    .await
    .expect("a car");
    let bob =
        r.db.store()
            .person_by_account("pc", "bob")
            .await
            .expect("q")
            .expect("bob")
            .id;
    r.db.store()
        .save_circuit(
            None,
            &CircuitDef {
                name: "Hors territoire".into(),
                label_fr: Some("Déplacements hors territoire".into()),
                label_en: Some("Trips outside the territory".into()),
                priority: 10,
                conditions: vec![Condition::OutsideTerritory],
                deadline_hours: Some(72),
                final_outcome: FinalOutcome::Decline,
                steps: vec![StepDef {
                    quorum: Quorum::One,
                    deadline_hours: None,
                    reminder_hours: None,
                    backup: None,
                    approvers: vec![ApproverDef::Person { person: bob }],
                }],
            },
            None,
            r.clock.now(),
        )
        .await
        .expect("circuit");
}

async fn ask_car(r: &Rig, subject: &str, day: &str, body: &str) -> String {
    let v = r
        .control(
            "/invite",
            json!({
                "as": ALICE,
                "subject": subject,
                "body": body,
                "start": format!("{day}T09:00:00"),
                "end": format!("{day}T12:00:00"),
                "time_zone": "Europe/Paris",
                "attendees": [],
                "resources": [ROOM],
            }),
        )
        .await;
    v["uid"].as_str().expect("uid").to_owned()
}

/// The room's answer about `subject` in Alice's Inbox.
async fn answer(r: &Rig, subject: &str) -> Value {
    for _ in 0..200 {
        if let Some(i) = r
            .inbox(ALICE)
            .await
            .into_iter()
            .find(|i| i["kind"] == "MeetingResponse" && i["subject"].as_str().is_some_and(|s| s.contains(subject)))
        {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no answer about {subject}: {:?}", r.inbox(ALICE).await);
}

async fn messages(r: &Rig, smtp: &str) -> Vec<Value> {
    r.inbox(smtp)
        .await
        .into_iter()
        .filter(|i| i["kind"] == "Message")
        .collect()
}

async fn wait_messages(r: &Rig, smtp: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let m = messages(r, smtp).await;
        if m.len() >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{smtp} did not get {n} messages: {:?}", r.inbox(smtp).await);
}

async fn booking(r: &Rig, uid: &str) -> (Uuid, String) {
    sqlx::query_as("SELECT id, status FROM bookings WHERE uid = $1")
        .bind(uid)
        .fetch_one(r.db.pool())
        .await
        .expect("booking")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_car_trip_to_lyon_goes_through_the_outside_territory_circuit_and_one_to_saint_denis_does_not() {
    let r = rig(ServerVersion::Exchange2016).await;
    car_and_circuit(&r).await;
    let daemon = r.daemon(r.db.store(), "a");

    let uid = ask_car(
        &r,
        "Salon des maires",
        "2026-12-01",
        "Bonjour,\nDestination : Lyon\nMerci",
    )
    .await;
    let held = answer(&r, "Salon des maires").await;
    assert_eq!(held["response"], "Tentative", "{held}");
    let text = held["body"].as_str().unwrap_or_default();
    assert!(
        text.contains("Le déplacement vers « Lyon » sort du territoire"),
        "{text}"
    );
    assert!(text.contains("Déplacements hors territoire"), "{text}");
    assert!(text.contains("Bob Durand"), "{text}");
    let (id, status) = booking(&r, &uid).await;
    assert_eq!(status, "held");
    let recorded: (Option<String>, Option<bool>) =
        sqlx::query_as("SELECT destination, outside_territory FROM trip_details WHERE booking_id = $1")
            .bind(id)
            .fetch_one(r.db.pool())
            .await
            .expect("trip details");
    assert_eq!(recorded, (Some("Lyon".to_owned()), Some(true)));
    let asked = wait_messages(&r, BOB, 1).await;
    assert!(
        asked[0]["subject"]
            .as_str()
            .is_some_and(|s| s.contains("Salon des maires")),
        "{asked:?}"
    );

    // Inside the territory: accepted, nobody asked.
    let uid = ask_car(
        &r,
        "Visite de chantier",
        "2026-12-02",
        "Destination : Saint-Denis (93200)",
    )
    .await;
    assert_eq!(answer(&r, "Visite de chantier").await["response"], "Accept");
    assert_eq!(booking(&r, &uid).await.1, "accepted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(messages(&r, BOB).await.len(), 1, "Bob is asked about Lyon only");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_details_given_later_with_a_destination_outside_hold_the_booking_for_the_circuit() {
    let r = rig(ServerVersion::Exchange2016).await;
    car_and_circuit(&r).await;
    let daemon = r.daemon(r.db.store(), "a");
    let uid = ask_car(&r, "Formation", "2026-12-03", "Bonjour").await;
    assert_eq!(answer(&r, "Formation").await["response"], "Accept");
    let (id, _) = booking(&r, &uid).await;
    let alice =
        r.db.store()
            .person_by_account("pc", "alice")
            .await
            .expect("q")
            .expect("alice")
            .id;
    let loans = |r: &Rig| {
        let store = r.db.store().clone();
        let now = r.clock.now();
        async move { store.loans_of(alice, now).await.expect("loans") }
    };
    assert!(
        loans(&r).await.iter().any(|l| l.booking_id == id),
        "Alice may pick the car up"
    );

    // A destination inside changes nothing.
    let inside = TripDetails {
        destination: Some("Aubervilliers".into()),
        declared_distance_km: Some(8),
        passengers: Some(1),
    };
    r.db.store()
        .set_trip_details(id, &inside, r.clock.now())
        .await
        .expect("trip");
    assert_eq!(booking(&r, &uid).await.1, "accepted");

    // Marseille is outside: the booking is held and the circuit starts.
    let outside = TripDetails {
        destination: Some("Marseille".into()),
        declared_distance_km: Some(780),
        passengers: Some(1),
    };
    r.db.store()
        .set_trip_details(id, &outside, r.clock.now())
        .await
        .expect("trip");
    assert_eq!(booking(&r, &uid).await.1, "held");
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM occurrences WHERE booking_id = $1")
        .bind(id)
        .fetch_all(r.db.pool())
        .await
        .expect("occurrences");
    assert_eq!(statuses, ["held"]);
    assert!(
        !loans(&r).await.iter().any(|l| l.booking_id == id),
        "no pickup before the approval"
    );
    // Bob is asked; Alice's meeting turns tentative, saying why and by whom.
    let asked = wait_messages(&r, BOB, 1).await;
    assert!(
        asked[0]["subject"].as_str().is_some_and(|s| s.contains("Formation")),
        "{asked:?}"
    );
    let mut tentative = None;
    for _ in 0..200 {
        tentative = r
            .inbox(ALICE)
            .await
            .into_iter()
            .find(|i| i["kind"] == "MeetingResponse" && i["response"] == "Tentative");
        if tentative.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tentative = tentative.expect("Alice's meeting turns tentative");
    let body = tentative["body"].as_str().unwrap_or_default();
    assert!(body.contains("« Marseille » sort du territoire"), "{body}");
    assert!(body.contains("Bob Durand"), "{body}");

    // Bob approves: the meeting is accepted again and the car may be picked up.
    let bob =
        r.db.store()
            .person_by_account("pc", "bob")
            .await
            .expect("q")
            .expect("bob")
            .id;
    r.db.store()
        .answer_circuit(id, bob, Verdict::Approve, "web", "Bonne route", r.clock.now())
        .await
        .expect("answer");
    assert_eq!(booking(&r, &uid).await.1, "accepted");
    assert!(
        loans(&r).await.iter().any(|l| l.booking_id == id),
        "the pickup is open again"
    );
    let mut accepted_again = false;
    for _ in 0..200 {
        let accepts = r
            .inbox(ALICE)
            .await
            .into_iter()
            .filter(|i| i["kind"] == "MeetingResponse" && i["response"] == "Accept")
            .count();
        if accepts >= 2 {
            accepted_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        accepted_again,
        "the approval reaches Alice's calendar: {:?}",
        r.inbox(ALICE).await
    );

    // Saving the details of the approved trip again starts nothing more.
    r.db.store()
        .set_trip_details(id, &outside, r.clock.now())
        .await
        .expect("trip");
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM circuit_runs WHERE booking_id = $1")
        .bind(id)
        .fetch_one(r.db.pool())
        .await
        .expect("runs");
    assert_eq!(runs, 1);
    assert_eq!(booking(&r, &uid).await.1, "accepted");
    daemon.shutdown().await;
}

/// The site with Bob as its administrator (through the admin group).
async fn site_with_admin(r: &Rig) -> (resa::web::WebState, (String, String)) {
    let dir = r.db.store().ensure_directory("pc").await.expect("directory");
    let group = resa::directory::entry::GroupRecord {
        object_guid: Uuid::from_u128(901),
        dn: "CN=GG-Resa-Admins,OU=Groupes,DC=pc,DC=local".into(),
        sam_account_name: "GG-Resa-Admins".into(),
        name: "GG-Resa-Admins".into(),
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
            r.clock.now(),
        )
        .await
        .expect("admin group");
    let clock: resa::clock::SharedClock = std::sync::Arc::new(r.clock.clone());
    let state = resa::web::WebState {
        store: r.db.store().clone(),
        clock,
        directories: Vec::new().into(),
        admin_groups: vec![resa::web::AdminGroup::parse("pc:GG-Resa-Admins").expect("group")],
        secret_key: std::sync::Arc::from(&b"a test key of thirty-two bytes!!"[..]),
        secure_cookies: false,
        exchange_endpoints: vec!["sim".into()],
        outbox_wake: None,
    };
    let bob =
        r.db.store()
            .person_by_account("pc", "bob")
            .await
            .expect("q")
            .expect("bob");
    let s =
        r.db.store()
            .create_session(bob.id, "fr", r.clock.now())
            .await
            .expect("session");
    (state, (format!("resa_session={}", s.id), s.csrf_token))
}

async fn web(
    state: &resa::web::WebState,
    who: &(String, String),
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (axum::http::StatusCode, String) {
    use tower::ServiceExt;
    let mut pairs = vec![("_csrf", who.1.as_str())];
    pairs.extend_from_slice(form);
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(axum::http::header::COOKIE, &who.0)
        .body(if method == "POST" {
            axum::body::Body::from(body)
        } else {
            axum::body::Body::empty()
        })
        .expect("request");
    let response = resa::web::router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_the_territory_on_the_web_and_trips_are_judged_by_it() {
    let r = rig(ServerVersion::Exchange2016).await;
    car_and_circuit(&r).await;
    let (state, bob) = site_with_admin(&r).await;
    // The nine communes of Plaine Commune by default, one a line.
    let (status, page) = web(&state, &bob, "GET", "/admin/territory", &[]).await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert!(
        page.contains("Saint-Denis ; 93066 ; 93200 93210 ; La Plaine Saint-Denis"),
        "{page}"
    );
    assert!(page.contains("Communes : 9"), "{page}");
    // Wrong lines are named, nothing is saved, the text stays.
    let typed = "Lyon ; 69123 ; 69001\nVilleurbanne ; 6926 ;\n ; 69100";
    let (status, page) = web(&state, &bob, "POST", "/admin/territory", &[("communes", typed)]).await;
    assert_eq!(status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Ligne 2 : un code INSEE a cinq caractères"), "{page}");
    assert!(page.contains("Ligne 3 : le nom de la commune manque"), "{page}");
    assert!(page.contains("Villeurbanne ; 6926 ;"), "{page}");
    assert_eq!(r.db.store().territory().await.expect("territory").communes().len(), 9);
    // An agent may not change it.
    let alice =
        r.db.store()
            .person_by_account("pc", "alice")
            .await
            .expect("q")
            .expect("alice");
    let s =
        r.db.store()
            .create_session(alice.id, "fr", r.clock.now())
            .await
            .expect("session");
    let alice = (format!("resa_session={}", s.id), s.csrf_token);
    let (status, _) = web(&state, &alice, "POST", "/admin/territory", &[("communes", "Lyon")]).await;
    assert_eq!(status, axum::http::StatusCode::FORBIDDEN);
    // Saved: Lyon is the territory now, Saint-Denis no longer.
    let (status, _) = web(
        &state,
        &bob,
        "POST",
        "/admin/territory",
        &[("communes", "Lyon ; 69123 ; 69001 69002")],
    )
    .await;
    assert_eq!(status, axum::http::StatusCode::SEE_OTHER);
    let daemon = r.daemon(r.db.store(), "a");
    ask_car(&r, "Congrès", "2026-12-04", "Destination : Lyon").await;
    assert_eq!(answer(&r, "Congrès").await["response"], "Accept");
    ask_car(&r, "Visite", "2026-12-05", "Destination : Saint-Denis").await;
    assert_eq!(answer(&r, "Visite").await["response"], "Tentative");
    daemon.shutdown().await;
}
