//! Vehicles and loaned equipment against a real PostgreSQL (and the Exchange
//! simulator for the pool invitation): pool choice and key instructions,
//! the licence check, the electric preference, check-in release, pickup and
//! return with the report figures.

use crate::daemon::{Rig, response_of};
use crate::harness::{person, test_db};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use resa::domain::vehicles::{DriverLicence, Energy, LicenceClass};
use resa::domain::{Policy, Scope, When};
use resa::ews::soap::ServerVersion;
use resa::store::Store;
use resa::store::bookings::Source;
use resa::store::catalogue::{Category, NewResource};
use resa::store::checkin::{Cleanliness, Photo, ReturnReport};
use resa::store::directory::SyncBatch;
use resa::store::requests::{IncomingRequest, Recorded};
use resa::store::vehicles::{LicenceSource, VehicleData};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

const POOL: &str = "vehicules.mairie@plainecommune.fr";
const ZOE: &str = "zoe.gh123@plainecommune.fr";
const CLIO: &str = "clio.fk456@plainecommune.fr";
const ALICE: &str = "alice@plainecommune.fr";
const BOB: &str = "bob@plainecommune.fr";
const CAROL: &str = "carol@plainecommune.fr";

/// Monday 30 November 2026, 08:00 in Paris.
pub(crate) fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 7, 0, 0).single().expect("valid")
}

/// Tuesday 1 December 2026 at h:m, Paris time.
pub(crate) fn tue(h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 12, 1, h, m, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc)
}

pub(crate) struct Fleet {
    site: Uuid,
    pool: Uuid,
    zoe: Uuid,
    pub(crate) clio: Uuid,
    alice: Uuid,
    carol: Uuid,
}

/// The Mairie site with a pool of two cars: an electric Zoé (150 km, keys at
/// the front desk) and a petrol Clio, both needing a B licence. Alice and
/// Carol hold a valid B licence; Bob's expired at the start of 2026.
async fn fleet(s: &Store) -> Fleet {
    let org = s
        .create_organisation("plaine-commune", "Plaine Commune")
        .await
        .expect("org");
    let site = s
        .create_site(org.id, "mairie", "Mairie", "Europe/Paris")
        .await
        .expect("site");
    fleet_at(s, site.id).await
}

/// [`fleet`] at an existing site.
pub(crate) async fn fleet_at(s: &Store, site: Uuid) -> Fleet {
    let kind = s
        .create_resource_type("voiture", Category::Vehicle, "Voiture", "Car")
        .await
        .expect("type");
    let resource = |name: &'static str, mailbox: &'static str| NewResource {
        site_id: site,
        resource_type_id: kind.id,
        name,
        mailbox_smtp: mailbox,
        exchange_endpoint: "sim",
        capacity: Some(5),
    };
    let pool = s
        .create_resource(&resource("Véhicules – site Mairie", POOL))
        .await
        .expect("pool");
    let zoe = s.create_resource(&resource("Renault Zoé", ZOE)).await.expect("zoe");
    let clio = s.create_resource(&resource("Renault Clio", CLIO)).await.expect("clio");
    let car = |id: Uuid, plate: &str, energy: Energy, range: Option<u32>, keys: &str| VehicleData {
        resource_id: id,
        plate: plate.into(),
        seats: 5,
        energy,
        range_km: range,
        licence_class: Some(LicenceClass::B),
        home_site_id: Some(site),
        key_location: Some(keys.into()),
        odometer_km: Some(12_000),
        full_charge_minutes: (energy == Energy::Electric).then_some(480),
    };
    s.set_vehicle(&car(
        zoe.id,
        "gh-123-ij",
        Energy::Electric,
        Some(150),
        "armoire à clés de l'accueil",
    ))
    .await
    .expect("zoe data");
    s.set_vehicle(&car(
        clio.id,
        "FK-456-LM",
        Energy::Petrol,
        Some(700),
        "bureau du garage",
    ))
    .await
    .expect("clio data");
    s.set_pool_members(pool.id, &[zoe.id, clio.id]).await.expect("members");

    let dir = s.ensure_directory("pc").await.expect("directory");
    let people = [
        person(1, "alice", "Alice Martin", ALICE),
        person(2, "bob", "Bob Durand", BOB),
        person(3, "carol", "Carol Petit", CAROL),
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
    let id_of = |sam: &'static str| async move {
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM people WHERE sam_account_name = $1")
            .bind(sam)
            .fetch_one(s.pool())
            .await
            .expect("person")
    };
    let (alice, bob, carol) = (id_of("alice").await, id_of("bob").await, id_of("carol").await);
    let licence = |expires: (i32, u32, u32)| DriverLicence {
        classes: vec![LicenceClass::B],
        expires_on: NaiveDate::from_ymd_opt(expires.0, expires.1, expires.2),
    };
    for (who, expires) in [(alice, (2031, 5, 1)), (bob, (2026, 1, 1)), (carol, (2030, 1, 1))] {
        s.set_driver_licence(who, &licence(expires), LicenceSource::Manager, monday())
            .await
            .expect("licence");
    }
    Fleet {
        site,
        pool: pool.id,
        zoe: zoe.id,
        clio: clio.id,
        alice,
        carol,
    }
}

pub(crate) fn request(
    resource: Uuid,
    uid: &str,
    organiser: &str,
    subject: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> IncomingRequest {
    IncomingRequest {
        resource_id: resource,
        uid: uid.into(),
        sequence: 0,
        source: Source::Web,
        organiser_address: organiser.into(),
        organiser_name: None,
        subject: Some(subject.into()),
        attendees: 1,
        when: When::Single { start, end },
        exchange_item_id: None,
        requested_at: monday(),
    }
}

pub(crate) async fn decide(s: &Store, req: &IncomingRequest, now: DateTime<Utc>) -> (Uuid, String, String) {
    match s.record_request(req, now).await.expect("decided") {
        Recorded::Decided {
            booking_id,
            decision,
            message,
            ..
        } => (booking_id, decision.kind().to_owned(), message),
        other => panic!("not decided: {other:?}"),
    }
}

async fn assigned(s: &Store, booking: Uuid) -> Option<Uuid> {
    s.pool_assignment(booking).await.expect("assignment").map(|(m, _)| m)
}

#[tokio::test]
async fn an_expired_licence_is_declined_with_that_reason() {
    let db = test_db().await;
    let s = db.store();
    let f = fleet(s).await;
    let (_, kind, message) = decide(
        s,
        &request(f.clio, "bob-1", BOB, "Tournée", tue(9, 0), tue(11, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "decline");
    assert!(
        message.contains("Votre permis de conduire a expiré le jeudi 1er janvier 2026"),
        "{message}"
    );
    let codes: serde_json::Value = sqlx::query_scalar("SELECT reasons FROM decisions WHERE uid = 'bob-1'")
        .fetch_one(s.pool())
        .await
        .expect("decision");
    assert_eq!(codes[0]["code"], "licence_expired", "{codes}");
    assert!(
        s.held_slots(f.clio, tue(0, 0), tue(23, 0))
            .await
            .expect("slots")
            .is_empty()
    );

    // Through the pool too: no car is given to a driver who may drive none.
    let (_, kind, message) = decide(
        s,
        &request(f.pool, "bob-2", BOB, "Tournée", tue(9, 0), tue(11, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "decline", "{message}");
    assert!(message.contains("permis"), "{message}");

    // Alice's licence is valid: accepted.
    let (_, kind, _) = decide(
        s,
        &request(f.clio, "alice-1", ALICE, "Tournée", tue(9, 0), tue(11, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept");
}

#[tokio::test]
async fn an_electric_car_is_preferred_when_its_range_suffices_and_skipped_when_not() {
    let db = test_db().await;
    let s = db.store();
    let f = fleet(s).await;
    // 40 km: the Zoé's 150 km cover it, so the electric car goes first.
    let (near, kind, message) = decide(
        s,
        &request(f.pool, "near", ALICE, "Chantier Bobigny 40 km", tue(9, 0), tue(10, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept", "{message}");
    assert_eq!(assigned(s, near).await, Some(f.zoe));
    assert!(
        message.contains("Attribué : Renault Zoé (immatriculation GH-123-IJ)"),
        "{message}"
    );
    // The slot is the Zoé's, with a charging buffer for 40 of its 150 km
    // (40/150 of 8 h, rounded up to 5 minutes: 130 minutes).
    let blocked: (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT lower(blocked), upper(blocked) FROM occurrences WHERE booking_id = $1 AND resource_id = $2",
    )
    .bind(near)
    .bind(f.zoe)
    .fetch_one(s.pool())
    .await
    .expect("occurrence on the member");
    assert_eq!(blocked, (tue(9, 0), tue(10, 0) + Duration::minutes(130)));

    // 300 km, another day: beyond the Zoé's range, the Clio is given.
    let wed = |h| tue(h, 0) + Duration::days(1);
    let (far, kind, message) = decide(
        s,
        &request(f.pool, "far", CAROL, "Réunion à Amiens 300 km", wed(9), wed(17)),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept", "{message}");
    assert_eq!(assigned(s, far).await, Some(f.clio));
    assert!(message.contains("Clés : bureau du garage"), "{message}");

    // Both cars taken at 9:00 on Wednesday? The Zoé is free but too short.
    let (_, kind, message) = decide(
        s,
        &request(f.pool, "far2", ALICE, "Lille 250 km", wed(10), wed(12)),
        monday(),
    )
    .await;
    assert_eq!(kind, "decline");
    assert!(
        message.contains("Aucun véhicule ou matériel du groupe n'est libre"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missed_check_in_releases_the_slot_and_a_second_request_then_gets_it() {
    let db = test_db().await;
    let s = db.store();
    let f = fleet(s).await;
    s.set_policy(
        Scope::Resource(f.clio),
        &Policy {
            check_in_minutes: Some(15),
            ..Policy::default()
        },
        monday(),
    )
    .await
    .expect("policy");
    let (booking, kind, _) = decide(
        s,
        &request(f.clio, "no-show", ALICE, "Tournée", tue(9, 0), tue(11, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept");
    let (_, kind, _) = decide(
        s,
        &request(f.clio, "too-early", CAROL, "Course", tue(9, 30), tue(10, 30)),
        monday(),
    )
    .await;
    assert_eq!(kind, "decline", "the slot is held until the deadline");

    // 14 minutes after the start: still held.
    let swept = s.sweep_vehicles(tue(9, 14)).await.expect("sweep");
    assert!(swept.released.is_empty());
    // 15 minutes: released, the decline queued for Exchange, the organiser told.
    let swept = s.sweep_vehicles(tue(9, 15)).await.expect("sweep");
    assert_eq!(swept.released.len(), 1);
    assert!(
        s.held_slots(f.clio, tue(0, 0), tue(23, 0))
            .await
            .expect("slots")
            .is_empty()
    );
    let (kind, payload): (String, serde_json::Value) =
        sqlx::query_as("SELECT kind, payload FROM outbox WHERE booking_id = $1 AND idempotency_key LIKE 'release:%'")
            .bind(booking)
            .fetch_one(s.pool())
            .await
            .expect("outbox row");
    assert_eq!(kind, "decline");
    assert_eq!(payload["uid"], "no-show");
    assert!(
        payload["body"].as_str().is_some_and(|b| b.contains("est libérée")),
        "{payload}"
    );
    let alerts = s.open_alerts(10).await.expect("alerts");
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == "released_no_check_in" && a.recipient_address.as_deref() == Some(ALICE)),
        "{alerts:?}"
    );
    // Running the job again changes nothing.
    assert_eq!(s.sweep_vehicles(tue(9, 20)).await.expect("sweep").released.len(), 0);
    assert_eq!(s.no_shows(tue(0, 0), tue(23, 0)).await.expect("no-shows").len(), 1);

    // The freed slot goes to the next request.
    let (_, kind, message) = decide(
        s,
        &request(f.clio, "second", CAROL, "Course", tue(9, 30), tue(10, 30)),
        tue(9, 16),
    )
    .await;
    assert_eq!(kind, "accept", "{message}");

    // A checked-in booking is not released.
    let (kept, _, _) = decide(
        s,
        &request(f.clio, "present", ALICE, "Tournée", tue(14, 0), tue(15, 0)),
        monday(),
    )
    .await;
    let occurrence: Uuid = sqlx::query_scalar("SELECT id FROM occurrences WHERE booking_id = $1")
        .bind(kept)
        .fetch_one(s.pool())
        .await
        .expect("occurrence");
    assert!(s.check_in(occurrence, tue(14, 5)).await.expect("check-in"));
    // (Carol's 9:30 booking, not checked in either, goes now.)
    let released = s.sweep_vehicles(tue(14, 30)).await.expect("sweep").released;
    assert_eq!(released.len(), 1);
    assert!(!released.contains(&occurrence));
}

#[tokio::test]
async fn the_return_saves_its_data_frees_the_car_early_and_appears_in_the_reports() {
    let db = test_db().await;
    let s = db.store();
    let f = fleet(s).await;
    let (booking, kind, _) = decide(
        s,
        &request(f.clio, "trip", ALICE, "Tournée", tue(9, 0), tue(17, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept");
    let occurrence: Uuid = sqlx::query_scalar("SELECT id FROM occurrences WHERE booking_id = $1")
        .bind(booking)
        .fetch_one(s.pool())
        .await
        .expect("occurrence");
    // With trip details required, no pickup before they are given.
    s.set_policy(
        Scope::Resource(f.clio),
        &Policy {
            require_trip_details: Some(true),
            ..Policy::default()
        },
        monday(),
    )
    .await
    .expect("policy");
    assert!(
        s.check_out(occurrence, Some(f.alice), Some(12_000), tue(9, 5))
            .await
            .is_err()
    );
    let details = resa::store::vehicles::TripDetails {
        destination: Some("Saint-Ouen".into()),
        declared_distance_km: Some(40),
        passengers: None,
    };
    s.set_trip_details(booking, &details, tue(9, 0))
        .await
        .expect("trip details");
    s.check_out(occurrence, Some(f.alice), Some(12_000), tue(9, 5))
        .await
        .expect("pickup");
    // An odometer below the pickup's is refused and nothing is lost.
    let wrong = ReturnReport {
        odometer_km: Some(11_000),
        ..ReturnReport::default()
    };
    assert!(
        s.return_item(occurrence, Some(f.alice), &wrong, &[], tue(12, 0))
            .await
            .is_err()
    );
    let report = ReturnReport {
        odometer_km: Some(12_042),
        energy_level_pct: Some(60),
        cleanliness: Some(Cleanliness::Dirty),
        condition_notes: Some("Siège taché".into()),
        damage: Some("Rayure sur la portière avant droite".into()),
    };
    let photo = Photo {
        content_type: "image/jpeg".into(),
        bytes: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3],
    };
    let checkout = s
        .return_item(
            occurrence,
            Some(f.alice),
            &report,
            std::slice::from_ref(&photo),
            tue(12, 0),
        )
        .await
        .expect("return");
    // Returned at noon instead of 17:00: the afternoon is free again.
    assert_eq!(
        s.held_slots(f.clio, tue(0, 0), tue(23, 0)).await.expect("slots"),
        vec![(tue(9, 0), tue(12, 0))]
    );
    let (_, kind, _) = decide(
        s,
        &request(f.clio, "afternoon", CAROL, "Course", tue(14, 0), tue(15, 0)),
        tue(12, 5),
    )
    .await;
    assert_eq!(kind, "accept");
    assert_eq!(
        s.vehicle(f.clio).await.expect("clio").and_then(|v| v.odometer_km),
        Some(12_042)
    );

    let (from, to) = (tue(0, 0), tue(0, 0) + Duration::days(1));
    let per_vehicle = s.distance_per_vehicle(from, to).await.expect("distance");
    assert_eq!(per_vehicle.len(), 1);
    assert_eq!(
        (per_vehicle[0].name.as_str(), per_vehicle[0].distance_km),
        ("Renault Clio", 42)
    );
    let damage = s.damage_history(from, to).await.expect("damage");
    assert_eq!(damage.len(), 1);
    assert_eq!(damage[0].damage, "Rayure sur la portière avant droite");
    assert_eq!(damage[0].photos, 1);
    assert_eq!(s.damage_photo(checkout).await.expect("photo"), Some(photo));
    let pools = s.pool_utilisation(from, to).await.expect("pools");
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].members, 2);
    assert!(pools[0].booked_hours > 3.9, "{pools:?}");

    // Not returned on time: the manager and the next booker are alerted.
    let (late, _, _) = decide(
        s,
        &request(f.zoe, "late", CAROL, "Course", tue(15, 0), tue(16, 0)),
        tue(12, 5),
    )
    .await;
    let _ = late;
    let (_, _, _) = decide(
        s,
        &request(f.zoe, "next", ALICE, "Après", tue(17, 0), tue(18, 0)),
        tue(12, 5),
    )
    .await;
    let late_occ: Uuid = sqlx::query_scalar(
        "SELECT o.id FROM occurrences o JOIN bookings b ON b.id = o.booking_id WHERE b.uid = 'late'",
    )
    .fetch_one(s.pool())
    .await
    .expect("occurrence");
    s.check_out(late_occ, Some(f.carol), Some(5_000), tue(15, 0))
        .await
        .expect("pickup");
    let swept = s.sweep_vehicles(tue(16, 20)).await.expect("sweep");
    assert_eq!(swept.overdue_alerts, 2);
    let alerts = s.open_alerts(10).await.expect("alerts");
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == "overdue_return" && a.recipient_address.as_deref() == Some(ALICE)),
        "{alerts:?}"
    );
}

/// The room rig of the daemon tests, with the pool and its cars added to
/// the simulator and the store (at the room's site), and Carol.
async fn sim_rig() -> (Rig, Fleet) {
    let r = crate::daemon::rig(ServerVersion::Exchange2010_SP2).await;
    for (smtp, name) in [
        (POOL, "Véhicules – site Mairie"),
        (ZOE, "Renault Zoé"),
        (CLIO, "Renault Clio"),
    ] {
        r.control("/mailboxes", json!({ "smtp": smtp, "name": name, "kind": "equipment" }))
            .await;
    }
    r.control(
        "/mailboxes",
        json!({ "smtp": CAROL, "name": "Carol Petit", "kind": "user" }),
    )
    .await;
    let site: Uuid = sqlx::query_scalar("SELECT site_id FROM resources WHERE id = $1")
        .bind(r.room)
        .fetch_one(r.db.pool())
        .await
        .expect("site");
    let f = fleet_at(r.db.store(), site).await;
    (r, f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_invitation_gets_a_concrete_car_and_the_acceptance_names_it_with_its_keys() {
    let (r, f) = sim_rig().await;
    let daemon = r.daemon(r.db.store(), "a");
    r.control(
        "/invite",
        json!({
            "as": ALICE, "subject": "Visite chantier Bobigny 40 km",
            "start": "2026-12-01T09:00:00", "end": "2026-12-01T11:00:00", "time_zone": "Europe/Paris",
            "attendees": [], "resources": [POOL],
        }),
    )
    .await;
    let got = r.responses(ALICE, 1).await;
    let accept = response_of(&got, "Visite chantier");
    assert_eq!(accept["response"], "Accept", "{accept}");
    let body = accept["body"].as_str().unwrap_or_default();
    assert!(body.contains("Votre demande est acceptée."), "{body}");
    assert!(
        body.contains("Attribué : Renault Zoé (immatriculation GH-123-IJ)"),
        "{body}"
    );
    assert!(body.contains("Clés : armoire à clés de l'accueil"), "{body}");
    assert!(body.contains("/vehicules/trajets/"), "{body}");

    // Bob's licence expired: the pool declines him, saying why.
    r.control(
        "/invite",
        json!({
            "as": BOB, "subject": "Livraison",
            "start": "2026-12-01T14:00:00", "end": "2026-12-01T15:00:00", "time_zone": "Europe/Paris",
            "attendees": [], "resources": [POOL],
        }),
    )
    .await;
    let got = r.responses(BOB, 1).await;
    let decline = response_of(&got, "Livraison");
    assert_eq!(decline["response"], "Decline", "{decline}");
    assert!(
        decline["body"]
            .as_str()
            .is_some_and(|b| b.contains("Votre permis de conduire a expiré")),
        "{decline}"
    );
    daemon.shutdown().await;
    let held =
        r.db.store()
            .held_slots(f.zoe, tue(0, 0), tue(23, 0))
            .await
            .expect("slots");
    assert_eq!(held, vec![(tue(9, 0), tue(11, 0))], "the Zoé holds the slot");
    assert!(
        r.db.store()
            .held_slots(f.pool, tue(0, 0), tue(23, 0))
            .await
            .expect("slots")
            .is_empty()
    );
    let _ = f.clio;
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_check_in_declines_the_occurrence_in_the_organisers_mailbox() {
    let (r, f) = sim_rig().await;
    let s = r.db.store();
    s.set_policy(
        Scope::Resource(f.clio),
        &Policy {
            check_in_minutes: Some(15),
            ..Policy::default()
        },
        monday(),
    )
    .await
    .expect("policy");
    let daemon = r.daemon(s, "a");
    r.control(
        "/invite",
        json!({
            "as": ALICE, "subject": "Tournée des écoles",
            "start": "2026-12-01T09:00:00", "end": "2026-12-01T11:00:00", "time_zone": "Europe/Paris",
            "attendees": [], "resources": [CLIO],
        }),
    )
    .await;
    let got = r.responses(ALICE, 1).await;
    assert_eq!(response_of(&got, "Tournée des écoles")["response"], "Accept");

    // Nobody checks in: a quarter of an hour after the start the sweep
    // releases the car, and Exchange hears of it from the car's mailbox.
    let deadline = tue(9, 15);
    r.clock.set(deadline);
    assert_eq!(s.sweep_vehicles(deadline).await.expect("sweep").released.len(), 1);
    let got = r.responses(ALICE, 2).await;
    let decline = got
        .iter()
        .find(|m| m["response"] == "Decline")
        .unwrap_or_else(|| panic!("no decline among {got:?}"));
    let body = decline["body"].as_str().unwrap_or_default();
    assert!(body.contains("est libérée"), "{body}");
    assert!(body.contains("15 minutes"), "{body}");
    daemon.shutdown().await;
    let status: String = sqlx::query_scalar("SELECT status FROM outbox WHERE idempotency_key LIKE 'release:%'")
        .fetch_one(s.pool())
        .await
        .expect("release row");
    assert_eq!(status, "done");
    r.sim.shutdown().await;
}

/// The site in-process, as `tests/it/web.rs` drives it, at `now`.
fn web_state(s: &Store, now: DateTime<Utc>) -> resa::web::WebState {
    resa::web::WebState {
        store: s.clone(),
        clock: Arc::new(resa::clock::ManualClock::new(now)),
        directories: Vec::new().into(),
        admin_groups: Vec::new(),
        secret_key: Arc::from(&b"a test key of thirty-two bytes!!"[..]),
        secure_cookies: false,
        exchange_endpoints: vec!["sim".into()],
        outbox_wake: None,
    }
}

struct Browser {
    state: resa::web::WebState,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn new(s: &Store, person: Uuid, now: DateTime<Utc>) -> Browser {
        let session = s.create_session(person, "fr", now).await.expect("session");
        Browser {
            state: web_state(s, now),
            cookie: format!("resa_session={}", session.id),
            csrf: session.csrf_token,
        }
    }

    async fn send(&self, r: axum::http::Request<axum::body::Body>) -> (axum::http::StatusCode, String) {
        use tower::ServiceExt;
        let response = resa::web::router(self.state.clone())
            .oneshot(r)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A GET answered with its headers and raw bytes.
    async fn fetch(&self, path: &str) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
        use tower::ServiceExt;
        let r = axum::http::Request::get(path)
            .header(axum::http::header::COOKIE, &self.cookie)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = resa::web::router(self.state.clone())
            .oneshot(r)
            .await
            .expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 20 << 20).await.expect("body");
        (parts.status, parts.headers, bytes.to_vec())
    }

    /// A `multipart/form-data` POST, as a browser sends a form with files:
    /// `parts` are (name, file name and type if a file, bytes), in order.
    async fn post_multipart(&self, path: &str, parts: &[Part]) -> (axum::http::StatusCode, String) {
        self.multipart(path, parts, false).await
    }

    /// [`Browser::post_multipart`] with the token in the `X-CSRF-Token` header.
    async fn post_multipart_with_header(&self, path: &str, parts: &[Part]) -> (axum::http::StatusCode, String) {
        self.multipart(path, parts, true).await
    }

    async fn multipart(&self, path: &str, parts: &[Part], header_token: bool) -> (axum::http::StatusCode, String) {
        let boundary = "----resa-test-boundary-7MA4YWxkTrZu0gW";
        let mut body: Vec<u8> = Vec::new();
        for Part { name, file, bytes } in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some((file_name, content_type)) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body
                    .extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut r = axum::http::Request::post(path)
            .header(axum::http::header::COOKIE, &self.cookie)
            .header(
                axum::http::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            );
        if header_token {
            r = r.header("x-csrf-token", &self.csrf);
        }
        let r = r.body(axum::body::Body::from(body)).expect("request");
        self.send(r).await
    }

    async fn get(&self, path: &str) -> (axum::http::StatusCode, String) {
        let r = axum::http::Request::get(path)
            .header(axum::http::header::COOKIE, &self.cookie)
            .body(axum::body::Body::empty())
            .expect("request");
        self.send(r).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], with_csrf: bool) -> (axum::http::StatusCode, String) {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        pairs.extend_pairs(form);
        if with_csrf {
            pairs.append_pair("_csrf", &self.csrf);
        }
        let r = axum::http::Request::post(path)
            .header(axum::http::header::COOKIE, &self.cookie)
            .header(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(pairs.finish()))
            .expect("request");
        self.send(r).await
    }
}

/// One part of a multipart body: a field, or a file with its name and the
/// type the client states.
#[derive(Clone)]
struct Part {
    name: &'static str,
    file: Option<(&'static str, &'static str)>,
    bytes: Vec<u8>,
}

fn field(name: &'static str, value: &str) -> Part {
    Part {
        name,
        file: None,
        bytes: value.as_bytes().to_vec(),
    }
}

fn file(name: &'static str, file_name: &'static str, stated_type: &'static str, bytes: &[u8]) -> Part {
    Part {
        name,
        file: Some((file_name, stated_type)),
        bytes: bytes.to_vec(),
    }
}

/// The text with HTML's numeric escapes of quotes undone.
fn unescape(body: &str) -> String {
    body.replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
}

#[tokio::test]
async fn the_phone_pages_record_trip_pickup_and_return_and_the_figures_reach_the_reports() {
    use axum::http::StatusCode;
    use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant};
    let db = test_db().await;
    let s = db.store();
    let f = fleet(s).await;
    s.create_grant(&NewGrant {
        subject: GrantSubject::Person(f.carol),
        scope: GrantScope::Site(f.site),
        role: GrantRole::Manage,
        created_by: None,
    })
    .await
    .expect("grant");
    let (booking, kind, message) = decide(
        s,
        &request(f.pool, "web-trip", ALICE, "Tournée", tue(9, 0), tue(12, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept", "{message}");
    let occurrence: Uuid = sqlx::query_scalar("SELECT id FROM occurrences WHERE booking_id = $1")
        .bind(booking)
        .fetch_one(s.pool())
        .await
        .expect("occurrence");
    let alice = Browser::new(s, f.alice, tue(9, 0)).await;

    // The list shows the car given by the pool.
    let (status, body) = alice.get("/vehicules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Renault Zoé (GH-123-IJ)"), "{body}");

    // Trip details: the link of the acceptance; bad numbers lose nothing.
    let trip = format!("/vehicules/trajets/{booking}");
    let (status, body) = alice
        .post(
            &trip,
            &[("destination", "Bobigny"), ("distance", "douze"), ("passengers", "2")],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("value=\"Bobigny\""), "{body}");
    let (status, _) = alice
        .post(&trip, &[("destination", "Bobigny"), ("distance", "24")], false)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token, no change");
    let (status, _) = alice
        .post(
            &trip,
            &[("destination", "Bobigny"), ("distance", "24"), ("passengers", "2")],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let details = s.trip_details(booking).await.expect("details").expect("saved");
    assert_eq!(
        (
            details.destination.as_deref(),
            details.declared_distance_km,
            details.passengers
        ),
        (Some("Bobigny"), Some(24), Some(2))
    );

    // Pickup, then return with the condition.
    let loan = format!("/vehicules/prets/{occurrence}");
    // A policy asking for the trip details before pickup: given above, so it passes.
    let car_type: Uuid = sqlx::query_scalar("SELECT resource_type_id FROM resources WHERE id = $1")
        .bind(f.zoe)
        .fetch_one(s.pool())
        .await
        .expect("type");
    s.set_policy(
        Scope::ResourceType(car_type),
        &Policy {
            require_trip_details: Some(true),
            ..Policy::default()
        },
        monday(),
    )
    .await
    .expect("policy");
    let (status, body) = alice.get(&loan).await;
    assert_eq!(status, StatusCode::OK);
    assert!(unescape(&body).contains("armoire à clés de l'accueil"), "{body}");
    let (status, _) = alice
        .post(&format!("{loan}/depart"), &[("odometer", "12000")], true)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = alice
        .post(
            &format!("{loan}/retour"),
            &[
                ("odometer", "12031"),
                ("energy_level", "55"),
                ("cleanliness", "acceptable"),
                ("notes", "RAS"),
                ("damage", "Rétroviseur fêlé"),
            ],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // An agent may not see the reports nor act on someone else's loan.
    let bob_id: Uuid = sqlx::query_scalar("SELECT id FROM people WHERE sam_account_name = 'bob'")
        .fetch_one(s.pool())
        .await
        .expect("bob");
    let bob = Browser::new(s, bob_id, tue(12, 0)).await;
    assert_eq!(bob.get("/vehicules/rapports").await.0, StatusCode::FORBIDDEN);
    assert_eq!(bob.get(&loan).await.0, StatusCode::FORBIDDEN);
    assert_eq!(bob.get(&trip).await.0, StatusCode::FORBIDDEN);

    // The manager's reports show the distance and the damage.
    let carol = Browser::new(s, f.carol, tue(13, 0)).await;
    let (status, body) = carol.get("/vehicules/rapports").await;
    assert_eq!(status, StatusCode::OK);
    let body = unescape(&body);
    assert!(body.contains("<td>Renault Zoé</td><td>1</td><td>31</td>"), "{body}");
    assert!(body.contains("Rétroviseur fêlé"), "{body}");
    assert!(body.contains("Véhicules – site Mairie"), "{body}");

    // The manager sets a driver's licence on the fleet page.
    let (status, _) = carol
        .post(
            "/vehicules/permis",
            &[("address", BOB), ("classes", "B, BE"), ("expires", "2032-06-30")],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let bob_licence = s.driver_licence(bob_id).await.expect("licence").expect("set");
    assert_eq!(bob_licence.classes, vec![LicenceClass::B, LicenceClass::BE]);
    assert_eq!(bob_licence.expires_on, NaiveDate::from_ymd_opt(2032, 6, 30));
    let (status, _) = carol
        .post(
            "/vehicules/permis",
            &[("address", BOB), ("classes", "Z"), ("expires", "")],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_laptop_is_lent_over_several_days_and_comes_back_with_condition_notes() {
    let db = test_db().await;
    let s = db.store();
    let f = fleet(s).await;
    let kind = s
        .create_resource_type("ordinateur", Category::Equipment, "Ordinateur portable", "Laptop")
        .await
        .expect("type");
    let laptop = s
        .create_resource(&NewResource {
            site_id: f.site,
            resource_type_id: kind.id,
            name: "Portable n° 3",
            mailbox_smtp: "portable3@plainecommune.fr",
            exchange_endpoint: "sim",
            capacity: None,
        })
        .await
        .expect("laptop");
    // Loans run over days: the type allows a week.
    s.set_policy(
        Scope::ResourceType(kind.id),
        &Policy {
            max_duration_minutes: Some(7 * 24 * 60),
            ..Policy::default()
        },
        monday(),
    )
    .await
    .expect("policy");
    let thursday = tue(17, 0) + Duration::days(2);
    let (booking, kind, message) = decide(
        s,
        &request(laptop.id, "pret", ALICE, "Télétravail", tue(9, 0), thursday),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept", "{message}");
    assert!(message.contains("Attribué : Portable n° 3"), "{message}");
    assert!(!message.contains("trajet"), "no trip for equipment: {message}");
    let occurrence: Uuid = sqlx::query_scalar("SELECT id FROM occurrences WHERE booking_id = $1")
        .bind(booking)
        .fetch_one(s.pool())
        .await
        .expect("occurrence");
    s.check_out(occurrence, Some(f.alice), None, tue(8, 45))
        .await
        .expect("pickup");
    let report = ReturnReport {
        condition_notes: Some("Chargeur manquant".into()),
        ..ReturnReport::default()
    };
    s.return_item(occurrence, Some(f.alice), &report, &[], thursday - Duration::hours(1))
        .await
        .expect("return");
    let notes: Option<String> = sqlx::query_scalar("SELECT condition_notes FROM checkouts WHERE occurrence_id = $1")
        .bind(occurrence)
        .fetch_one(s.pool())
        .await
        .expect("checkout");
    assert_eq!(notes.as_deref(), Some("Chargeur manquant"));
    // Returned an hour early: that hour is free again.
    assert_eq!(
        s.held_slots(laptop.id, tue(0, 0), thursday + Duration::days(1))
            .await
            .expect("slots"),
        vec![(tue(9, 0), thursday - Duration::hours(1))]
    );
}

/// A tiny valid PNG (1×1 pixel).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";

#[tokio::test]
async fn the_return_form_takes_damage_photos_checks_them_and_shows_them_in_the_history() {
    use axum::http::StatusCode;
    use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant};
    let db = test_db().await;
    let s = db.store();
    let f = fleet(s).await;
    s.create_grant(&NewGrant {
        subject: GrantSubject::Person(f.carol),
        scope: GrantScope::Site(f.site),
        role: GrantRole::Manage,
        created_by: None,
    })
    .await
    .expect("grant");
    let (booking, kind, message) = decide(
        s,
        &request(f.clio, "photos", ALICE, "Tournée", tue(9, 0), tue(12, 0)),
        monday(),
    )
    .await;
    assert_eq!(kind, "accept", "{message}");
    let occurrence: Uuid = sqlx::query_scalar("SELECT id FROM occurrences WHERE booking_id = $1")
        .bind(booking)
        .fetch_one(s.pool())
        .await
        .expect("occurrence");
    s.check_out(occurrence, Some(f.alice), Some(12_000), tue(9, 5))
        .await
        .expect("pickup");
    let alice = Browser::new(s, f.alice, tue(11, 0)).await;
    let loan = format!("/vehicules/prets/{occurrence}");
    let (status, body) = alice.get(&loan).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("enctype=\"multipart/form-data\""), "{body}");
    assert!(body.contains("type=\"file\""), "{body}");
    let returned = || async {
        sqlx::query_scalar::<_, Option<DateTime<Utc>>>("SELECT returned_at FROM checkouts WHERE occurrence_id = $1")
            .bind(occurrence)
            .fetch_one(s.pool())
            .await
            .expect("checkout")
    };
    let jpeg: Vec<u8> = [&[0xFF, 0xD8, 0xFF, 0xE0][..], b"\0\x10JFIF\0 une rayure"].concat();
    let csrf = alice.csrf.clone();
    let retour = format!("{loan}/retour");
    let fields = |extra: Vec<Part>| {
        let mut v = vec![
            field("odometer", "12031"),
            field("energy_level", "40"),
            field("cleanliness", "dirty"),
            field("notes", "Sièges mouillés"),
            field("damage", "Pare-chocs arrière enfoncé"),
        ];
        v.extend(extra);
        v
    };

    // No token: refused before any file is read, nothing saved.
    let no_token = fields(vec![file("photos", "rayure.jpg", "image/jpeg", &jpeg)]);
    let (status, _) = alice.post_multipart(&retour, &no_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A token after a file is no better: the token must come first.
    let late = vec![file("photos", "rayure.jpg", "image/jpeg", &jpeg), field("_csrf", &csrf)];
    let (status, _) = alice.post_multipart(&retour, &late).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A wrong token.
    let mut wrong = vec![field("_csrf", "not-the-token")];
    wrong.extend(fields(vec![]));
    let (status, _) = alice.post_multipart(&retour, &wrong).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(returned().await, None);

    let with_token = |extra| {
        let mut v = vec![field("_csrf", &csrf)];
        v.extend(fields(extra));
        v
    };
    // A PDF named and typed as a JPEG: the bytes say otherwise.
    let pdf = with_token(vec![file(
        "photos",
        "rayure.jpg",
        "image/jpeg",
        b"%PDF-1.4 pas une photo",
    )]);
    let (status, body) = alice.post_multipart(&retour, &pdf).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = unescape(&body);
    assert!(body.contains("n'est pas une image JPEG, PNG ou WebP"), "{body}");
    assert!(
        body.contains("value=\"12031\""),
        "the form keeps what was typed: {body}"
    );
    assert!(body.contains("Pare-chocs arrière enfoncé</textarea>"), "{body}");
    assert!(body.contains("value=\"dirty\" checked"), "{body}");
    assert_eq!(returned().await, None);

    // Too big: a 9 MB photo is refused with a clear French message.
    let big: Vec<u8> = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &vec![0u8; 9 * 1024 * 1024]].concat();
    let too_big = with_token(vec![file("photos", "grosse.jpg", "image/jpeg", &big)]);
    let (status, body) = alice.post_multipart(&retour, &too_big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let body = unescape(&body);
    assert!(body.contains("Une photo dépasse 8 Mo"), "{body}");
    assert!(body.contains("Sièges mouillés</textarea>"), "{body}");
    assert_eq!(returned().await, None);

    // The token may come in the header instead, with a file first.
    let mut header_token = vec![file("photos", "rayure.jpg", "image/jpeg", b"GIF89a pas admis")];
    header_token.extend(fields(vec![]));
    let (status, body) = alice.post_multipart_with_header(&retour, &header_token).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the token passed, the GIF did not: {body}"
    );
    assert_eq!(returned().await, None);

    // Two photos, one a PNG sent as "image/jpeg": saved with the type its
    // bytes show.
    let good = with_token(vec![
        file("photos", "rayure.jpg", "image/jpeg", &jpeg),
        file("photos", "detail.jpg", "image/jpeg", PNG),
    ]);
    let (status, body) = alice.post_multipart(&retour, &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(returned().await.is_some());
    let history = s.damage_of(f.clio, 10).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].damage.as_deref(), Some("Pare-chocs arrière enfoncé"));
    assert_eq!(history[0].photo_ids.len(), 2);
    // Both were kept, each with the type its bytes show.
    let mut kept = Vec::new();
    for id in &history[0].photo_ids {
        let stored = s.damage_photo_by_id(*id).await.expect("photo").expect("kept");
        kept.push((stored.photo.content_type, *id));
    }
    kept.sort();
    let [(jpeg_type, jpeg_id), (png_type, png_id)] = [kept[0].clone(), kept[1].clone()];
    assert_eq!((jpeg_type.as_str(), png_type.as_str()), ("image/jpeg", "image/png"));

    // The organiser sees the photos on the loan and may open them, served
    // with the type read from their bytes and nosniff.
    let (_, body) = alice.get(&loan).await;
    assert!(body.contains(&format!("src=\"/vehicules/photos/{png_id}\"")), "{body}");
    let (status, headers, bytes) = alice.fetch(&format!("/vehicules/photos/{png_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[axum::http::header::CONTENT_TYPE], "image/png");
    assert_eq!(headers[axum::http::header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(bytes, PNG);
    let (_, headers, bytes) = alice.fetch(&format!("/vehicules/photos/{jpeg_id}")).await;
    assert_eq!(headers[axum::http::header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(bytes, jpeg);

    // Someone else may not.
    let bob_id: Uuid = sqlx::query_scalar("SELECT id FROM people WHERE sam_account_name = 'bob'")
        .fetch_one(s.pool())
        .await
        .expect("bob");
    let bob = Browser::new(s, bob_id, tue(12, 0)).await;
    assert_eq!(
        bob.fetch(&format!("/vehicules/photos/{png_id}")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bob.get(&format!("/vehicules/flotte/{}/dommages", f.clio)).await.0,
        StatusCode::FORBIDDEN
    );

    // The manager finds them in the car's damage history.
    let carol = Browser::new(s, f.carol, tue(13, 0)).await;
    let (status, body) = carol.get(&format!("/vehicules/flotte/{}/dommages", f.clio)).await;
    assert_eq!(status, StatusCode::OK);
    let body = unescape(&body);
    assert!(body.contains("Renault Clio (FK-456-LM)"), "{body}");
    assert!(body.contains("Pare-chocs arrière enfoncé"), "{body}");
    assert!(body.contains(&format!("src=\"/vehicules/photos/{jpeg_id}\"")), "{body}");
    assert!(body.contains(&format!("src=\"/vehicules/photos/{png_id}\"")), "{body}");
    assert_eq!(
        carol.fetch(&format!("/vehicules/photos/{jpeg_id}")).await.0,
        StatusCode::OK
    );
    let (_, fleet_page) = carol.get("/vehicules/flotte").await;
    assert!(
        fleet_page.contains(&format!("/vehicules/flotte/{}/dommages", f.clio)),
        "{fleet_page}"
    );
}

/// Waits until `smtp`'s inbox holds a message whose subject starts with
/// `subject`; returns every such message (to count them).
async fn messages(r: &Rig, smtp: &str, subject: &str) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let found: Vec<serde_json::Value> = r
            .inbox(smtp)
            .await
            .into_iter()
            .filter(|i| i["kind"] == "Message" && i["subject"].as_str().is_some_and(|s| s.starts_with(subject)))
            .collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no \"{subject}\" message for {smtp}: {:?}", r.inbox(smtp).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_returns_and_repeated_no_shows_are_mailed_once_from_the_resource_mailbox() {
    use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant};
    let (r, f) = sim_rig().await;
    let s = r.db.store();
    // Carol manages the site's vehicles; Bob, who books the Clio next, has a licence.
    s.create_grant(&NewGrant {
        subject: GrantSubject::Person(f.carol),
        scope: GrantScope::Site(f.site),
        role: GrantRole::Manage,
        created_by: None,
    })
    .await
    .expect("grant");
    let bob: Uuid = sqlx::query_scalar("SELECT id FROM people WHERE sam_account_name = 'bob'")
        .fetch_one(s.pool())
        .await
        .expect("bob");
    let licence = DriverLicence {
        classes: vec![LicenceClass::B],
        expires_on: NaiveDate::from_ymd_opt(2032, 6, 30),
    };
    s.set_driver_licence(bob, &licence, LicenceSource::Manager, monday())
        .await
        .expect("licence");
    s.set_policy(
        Scope::Resource(f.clio),
        &Policy {
            check_in_minutes: Some(15),
            ..Policy::default()
        },
        monday(),
    )
    .await
    .expect("policy");
    let daemon = r.daemon(s, "a");
    let invite = |who: &str, subject: &str, car: &str, start: &str, end: &str, recurrence: Option<&str>| {
        let mut v = json!({
            "as": who, "subject": subject, "start": start, "end": end, "time_zone": "Europe/Paris",
            "attendees": [], "resources": [car],
        });
        if let Some(rule) = recurrence {
            v["recurrence"] = json!(rule);
        }
        v
    };
    r.control(
        "/invite",
        invite(
            ALICE,
            "Tournée du matin",
            CLIO,
            "2026-12-01T09:00:00",
            "2026-12-01T11:00:00",
            None,
        ),
    )
    .await;
    r.control(
        "/invite",
        invite(
            BOB,
            "Livraison",
            CLIO,
            "2026-12-01T14:00:00",
            "2026-12-01T15:00:00",
            None,
        ),
    )
    .await;
    r.control(
        "/invite",
        invite(
            ALICE,
            "Navette quotidienne",
            CLIO,
            "2026-12-02T08:00:00",
            "2026-12-02T09:00:00",
            Some("FREQ=DAILY;COUNT=3"),
        ),
    )
    .await;
    assert_eq!(
        response_of(&r.responses(ALICE, 2).await, "Navette quotidienne")["response"],
        "Accept"
    );
    assert_eq!(
        response_of(&r.responses(ALICE, 1).await, "Tournée du matin")["response"],
        "Accept"
    );
    assert_eq!(
        response_of(&r.responses(BOB, 1).await, "Livraison")["response"],
        "Accept"
    );

    // Alice takes the Clio and is not back at 11:00: past the 15 minutes of
    // grace, Carol and Bob get a French message from the Clio's mailbox.
    let occurrence: Uuid = sqlx::query_scalar(
        "SELECT o.id FROM occurrences o JOIN bookings b ON b.id = o.booking_id WHERE b.subject = 'Tournée du matin'",
    )
    .fetch_one(s.pool())
    .await
    .expect("occurrence");
    s.check_out(occurrence, None, Some(12_000), tue(9, 0))
        .await
        .expect("pickup");
    r.clock.set(tue(11, 20));
    assert_eq!(s.sweep_vehicles(tue(11, 20)).await.expect("sweep").overdue_alerts, 2);
    assert_eq!(s.sweep_vehicles(tue(11, 30)).await.expect("sweep").overdue_alerts, 0);
    for who in [CAROL, BOB] {
        let got = messages(&r, who, "Retour en retard : Renault Clio").await;
        let body = got[0]["body"].as_str().unwrap_or_default();
        assert!(
            unescape(body).contains("Renault Clio, emprunté par")
                && unescape(body).contains("devait être rendu le mardi 1er décembre 2026"),
            "{body}"
        );
        assert!(
            got[0]["from"].as_str().is_some_and(|f| f.contains(CLIO)),
            "sent from the Clio's mailbox: {}",
            got[0]
        );
    }

    // Bob checks in for his afternoon. A daily series on the Clio, which asks
    // for a check-in, and nobody comes: the second no-show sends Carol one
    // message, the third none more.
    let bobs: Uuid = sqlx::query_scalar(
        "SELECT o.id FROM occurrences o JOIN bookings b ON b.id = o.booking_id WHERE b.subject = 'Livraison'",
    )
    .fetch_one(s.pool())
    .await
    .expect("occurrence");
    assert!(s.check_in(bobs, tue(13, 50)).await.expect("check-in"));
    let day = |d: i64, h: u32, m: u32| tue(h, m) + Duration::days(d);
    for d in 1..=3 {
        r.clock.set(day(d, 8, 20));
        let swept = s.sweep_vehicles(day(d, 8, 20)).await.expect("sweep");
        assert_eq!(swept.released.len(), 1, "day {d}");
    }
    let got = messages(&r, CAROL, "Absences répétées : Navette quotidienne").await;
    let body = unescape(got[0]["body"].as_str().unwrap_or_default());
    assert!(body.contains("de la série « Navette quotidienne »"), "{body}");
    assert!(body.contains("Renault Clio"), "{body}");

    // Once per alert: give the outbox worker time, then count.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(messages(&r, CAROL, "Retour en retard").await.len(), 1);
    assert_eq!(messages(&r, BOB, "Retour en retard").await.len(), 1);
    assert_eq!(messages(&r, CAROL, "Absences répétées").await.len(), 1);
    daemon.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test]
async fn a_car_at_this_site_at_this_time_is_asked_on_the_web_and_named() {
    use axum::http::StatusCode;
    let db = test_db().await;
    let s = db.store();
    let f = fleet(s).await;
    let alice = Browser::new(s, f.alice, monday()).await;
    let (status, body) = alice.get("/vehicules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Un véhicule à ce site, à cette heure"), "{body}");
    assert!(
        body.contains(&format!(
            "<option value=\"{}\">Mairie — Véhicules – site Mairie</option>",
            f.pool
        )),
        "{body}"
    );

    let ask =
        |date: &'static str, start: &'static str, end: &'static str, destination: &'static str, km: &'static str| {
            let pool = f.pool.to_string();
            vec![
                ("pool", pool),
                ("date", date.to_owned()),
                ("start", start.to_owned()),
                ("end", end.to_owned()),
                ("destination", destination.to_owned()),
                ("distance", km.to_owned()),
            ]
        };
    let post = |fields: Vec<(&'static str, String)>| {
        let alice = &alice;
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            alice.post("/vehicules/demande", &pairs, true).await
        }
    };
    // 40 km: the electric Zoé's 150 km cover it, so it is chosen and named.
    let (status, _) = post(ask("2026-12-01", "09:00", "12:00", "Bobigny", "40")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let meetings = crate::web::queued_meetings(s).await;
    assert_eq!(meetings.len(), 1, "the meeting is queued for Exchange");
    let (booking, mailbox, meeting) = &meetings[0];
    assert_eq!(mailbox, POOL);
    assert!(!meeting.tentative);
    assert!(
        meeting
            .body
            .contains("Attribué : Renault Zoé (immatriculation GH-123-IJ)"),
        "{}",
        meeting.body
    );
    assert_eq!(assigned(s, *booking).await, Some(f.zoe));
    let trip = s.trip_details(*booking).await.expect("trip").expect("saved");
    assert_eq!(
        (trip.destination.as_deref(), trip.declared_distance_km),
        (Some("Bobigny"), Some(40))
    );
    let (status, body) = alice.get(&format!("/bookings/{booking}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Renault Zoé"), "the decision names the car: {body}");

    // 400 km: beyond the Zoé's range, the petrol Clio goes.
    let (status, _) = post(ask("2026-12-01", "14:00", "17:00", "Lille", "400")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let meetings = crate::web::queued_meetings(s).await;
    assert_eq!(meetings.len(), 2);
    assert!(
        meetings[1].2.body.contains("Attribué : Renault Clio"),
        "{}",
        meetings[1].2.body
    );
    assert_eq!(assigned(s, meetings[1].0).await, Some(f.clio));

    // Bad input: a clear error, nothing booked.
    let (status, body) = post(ask("2026-12-01", "12:00", "09:00", "Bobigny", "40")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Valeurs invalides"), "{body}");
    assert_eq!(crate::web::queued_meetings(s).await.len(), 2);
}
