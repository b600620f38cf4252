//! Deciding and recording booking requests on a real PostgreSQL: one
//! transaction per decision, races turned into conflict decisions, updates,
//! cancellations, inheritance and rights read from the database.

use crate::harness::{person, room_fixture, test_db};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use resa::directory::entry::GroupRecord;
use resa::domain::recurrence::{Pattern, Recurrence, RecurrenceRange};
use resa::domain::{Policy, Scope, When};
use resa::store::Store;
use resa::store::bookings::Source;
use resa::store::catalogue::Resource;
use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant, SyncBatch};
use resa::store::requests::{IncomingRequest, Recorded};
use resa::store::web::ManagerVerdict;
use sqlx::Row;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Monday 30 November 2026, 08:00 in Paris.
// (The 2027 series below crosses the change to winter time on 31 October.)
pub(crate) fn now() -> DateTime<Utc> {
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

pub(crate) struct World {
    pub store: Store,
    pub org: Uuid,
    pub room: Resource,
    pub alice: Uuid,
    pub urbanisme: Uuid,
    _db: crate::harness::TestDb,
}

pub(crate) async fn world() -> World {
    let db = test_db().await;
    let store = db.store().clone();
    let fixture = room_fixture(&store, "salle.cezanne@plainecommune.fr", "pc", 10).await;
    let room = fixture.room;
    let dir = store.ensure_directory("pc").await.expect("directory");
    let people = [
        person(1, "alice", "Alice Martin", "alice@plainecommune.fr"),
        person(2, "bob", "Bob Durand", "bob@plainecommune.fr"),
    ];
    let groups = [GroupRecord {
        object_guid: Uuid::from_u128(100),
        dn: "CN=Service Urbanisme,OU=Groupes,DC=pc,DC=local".into(),
        sam_account_name: "urbanisme".into(),
        name: "Service Urbanisme".into(),
        description: None,
        member_dns: vec![people[0].dn.clone()],
        usn_changed: Some(1),
    }];
    store
        .apply_directory_sync(
            dir.id,
            SyncBatch {
                full: true,
                people: &people,
                groups: &groups,
                highest_usn: Some(1),
                usn_server: None,
            },
            now(),
        )
        .await
        .expect("sync");
    let alice = store
        .person_by_account("pc", "alice")
        .await
        .expect("q")
        .expect("alice")
        .id;
    let urbanisme = store
        .group_by_account("pc", "urbanisme")
        .await
        .expect("q")
        .expect("group")
        .id;
    World {
        store,
        org: fixture.organisation,
        room,
        alice,
        urbanisme,
        _db: db,
    }
}

pub(crate) fn request(
    w: &World,
    uid: &str,
    organiser: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> IncomingRequest {
    IncomingRequest {
        resource_id: w.room.id,
        uid: uid.into(),
        sequence: 0,
        source: Source::Exchange,
        organiser_address: organiser.into(),
        organiser_name: Some("Service Urbanisme".into()),
        subject: Some("Réunion".into()),
        attendees: 4,
        when: When::Single { start, end },
        exchange_item_id: Some(format!("item-{uid}")),
        requested_at: now(),
    }
}

fn decided(r: &Recorded) -> (&str, Vec<&'static str>, &str) {
    match r {
        Recorded::Decided { decision, message, .. } => (decision.kind(), decision.reason_codes(), message.as_str()),
        other => panic!("not decided: {other:?}"),
    }
}

#[tokio::test]
async fn an_accepted_request_records_booking_decision_and_reply_in_one_go() {
    let w = world().await;
    let r = w
        .store
        .record_request(
            &request(&w, "m1", "Alice@PlaineCommune.fr", tue(14, 0), tue(15, 0)),
            now(),
        )
        .await
        .expect("recorded");
    let (kind, codes, message) = decided(&r);
    assert_eq!((kind, codes.len()), ("accept", 0));
    // The reply is the "accepted" message template: the decision, then the
    // resource and the time.
    assert!(
        message.starts_with("Votre demande est acceptée.\n\nSalle Cézanne, le "),
        "{message}"
    );
    let outbox = sqlx::query("SELECT kind, payload FROM outbox")
        .fetch_all(w.store.pool())
        .await
        .expect("outbox");
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].get::<String, _>("kind"), "accept");
    let payload: serde_json::Value = outbox[0].get("payload");
    assert_eq!(payload["reference_item_id"], "item-m1");
    assert_eq!(
        payload["body"],
        serde_json::json!(message),
        "the reply sent is the text recorded"
    );
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions WHERE outcome = 'accept'")
        .fetch_one(w.store.pool())
        .await
        .expect("decisions");
    assert_eq!(decisions, 1);
    assert_eq!(
        w.store
            .held_slots(w.room.id, tue(0, 0), tue(23, 0))
            .await
            .expect("slots"),
        vec![(tue(14, 0), tue(15, 0))]
    );
}

#[tokio::test]
async fn a_conflict_is_declined_with_the_slot_and_the_holder_when_policy_allows() {
    let w = world().await;
    w.store
        .record_request(
            &request(&w, "first", "alice@plainecommune.fr", tue(14, 0), tue(15, 0)),
            now(),
        )
        .await
        .expect("first");
    let second = w
        .store
        .record_request(
            &request(&w, "second", "bob@plainecommune.fr", tue(14, 30), tue(15, 30)),
            now(),
        )
        .await
        .expect("second");
    let (kind, codes, message) = decided(&second);
    assert_eq!((kind, codes), ("decline", vec!["conflict"]));
    assert!(
        message.contains("La salle est déjà réservée de 14 h à 15 h"),
        "{message}"
    );
    assert!(
        !message.contains("Urbanisme"),
        "the holder is private by default: {message}"
    );

    let show = Policy {
        show_organiser_on_conflict: Some(true),
        ..Policy::default()
    };
    w.store
        .set_policy(Scope::Organisation(w.org), &show, now())
        .await
        .expect("policy");
    let third = w
        .store
        .record_request(
            &request(&w, "third", "bob@plainecommune.fr", tue(13, 30), tue(14, 30)),
            now(),
        )
        .await
        .expect("third");
    let (_, _, message) = decided(&third);
    assert!(
        message.contains("La salle est réservée de 14 h à 15 h par Service Urbanisme"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_simultaneous_requests_give_one_booking_per_slot_and_lose_nothing() {
    let w = world().await;
    // 20 one-hour slots on Tuesday, 10 requests racing for each.
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let slot = i % 20;
        let start = tue(7, 0) + Duration::minutes(i64::from(slot) * 60);
        let req = request(
            &w,
            &format!("race-{i}"),
            "alice@plainecommune.fr",
            start,
            start + Duration::hours(1),
        );
        let store = w.store.clone();
        tasks.push(tokio::spawn(
            async move { (slot, store.record_request(&req, now()).await) },
        ));
    }
    let mut accepted_per_slot = [0u32; 20];
    let mut conflicts = 0;
    for t in tasks {
        let (slot, result) = t.await.expect("task");
        match result.expect("every request gets a decision, none an error") {
            Recorded::Decided { decision, .. } => match decision.kind() {
                "accept" => accepted_per_slot[slot as usize] += 1,
                "decline" => {
                    assert_eq!(decision.reason_codes(), vec!["conflict"]);
                    conflicts += 1;
                }
                other => panic!("unexpected {other}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted_per_slot, [1; 20]);
    assert_eq!(conflicts, 180);
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(w.store.pool())
        .await
        .expect("count");
    let replies: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(w.store.pool())
        .await
        .expect("count");
    assert_eq!(
        (decisions, replies),
        (200, 200),
        "one decision and one reply per request"
    );
    let day = w
        .store
        .held_slots(w.room.id, tue(7, 0), tue(7, 0) + Duration::hours(20))
        .await;
    assert_eq!(day.expect("slots").len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staggered_racing_requests_never_overlap() {
    let w = world().await;
    let mut tasks = Vec::new();
    for i in 0..60u32 {
        // Starts every 20 minutes, each one hour long: neighbours overlap.
        let start = tue(8, 0) + Duration::minutes(i64::from(i % 30) * 20);
        let req = request(
            &w,
            &format!("stagger-{i}"),
            "bob@plainecommune.fr",
            start,
            start + Duration::hours(1),
        );
        let store = w.store.clone();
        tasks.push(tokio::spawn(async move { store.record_request(&req, now()).await }));
    }
    for t in tasks {
        let r = t.await.expect("task").expect("decided");
        let (kind, codes, _) = decided(&r);
        assert!(kind == "accept" || codes == vec!["conflict"], "{kind} {codes:?}");
    }
    let slots = w
        .store
        .held_slots(w.room.id, tue(0, 0), tue(23, 59))
        .await
        .expect("slots");
    assert!(!slots.is_empty());
    for pair in slots.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlap: {pair:?}");
    }
}

#[tokio::test]
async fn updates_reevaluate_stale_ones_are_ignored_and_duplicates_decided_once() {
    let w = world().await;
    let mut req = request(&w, "moving", "alice@plainecommune.fr", tue(10, 0), tue(11, 0));
    w.store.record_request(&req, now()).await.expect("first");
    let again = w.store.record_request(&req, now()).await.expect("again");
    assert!(matches!(again, Recorded::AlreadyDecided { .. }), "{again:?}");

    req.sequence = 2;
    req.when = When::Single {
        start: tue(16, 0),
        end: tue(17, 0),
    };
    let moved = w.store.record_request(&req, now()).await.expect("moved");
    assert_eq!(decided(&moved).0, "accept");
    assert_eq!(
        w.store
            .held_slots(w.room.id, tue(0, 0), tue(23, 0))
            .await
            .expect("slots"),
        vec![(tue(16, 0), tue(17, 0))],
        "the old slot is given back"
    );

    req.sequence = 1;
    let stale = w.store.record_request(&req, now()).await.expect("stale");
    assert!(
        matches!(
            stale,
            Recorded::Stale {
                recorded_sequence: 2,
                ..
            }
        ),
        "{stale:?}"
    );
    let history: Vec<i32> = sqlx::query_scalar("SELECT sequence FROM decisions ORDER BY id")
        .fetch_all(w.store.pool())
        .await
        .expect("history");
    assert_eq!(history, vec![0, 2], "both versions kept in the audit");
}

#[tokio::test]
async fn a_cancellation_frees_the_slot_for_the_next_request() {
    let w = world().await;
    w.store
        .record_request(
            &request(&w, "a", "alice@plainecommune.fr", tue(9, 0), tue(10, 0)),
            now(),
        )
        .await
        .expect("a");
    assert!(w.store.cancel_request(w.room.id, "a", 1, now()).await.expect("cancel"));
    assert!(
        !w.store
            .cancel_request(w.room.id, "a", 1, now())
            .await
            .expect("cancel twice")
    );
    let b = w
        .store
        .record_request(&request(&w, "b", "bob@plainecommune.fr", tue(9, 0), tue(10, 0)), now())
        .await
        .expect("b");
    assert_eq!(decided(&b).0, "accept");
}

#[tokio::test]
async fn the_most_specific_scope_wins_and_the_decision_names_it() {
    let w = world().await;
    let org_rule = Policy {
        max_duration_minutes: Some(240),
        ..Policy::default()
    };
    let room_rule = Policy {
        max_duration_minutes: Some(120),
        ..Policy::default()
    };
    w.store
        .set_policy(Scope::Organisation(w.org), &org_rule, now())
        .await
        .expect("org");
    let eff = w.store.effective_policy_of(w.room.id).await.expect("effective");
    assert_eq!(eff.max_duration_minutes.value, 240);
    assert_eq!(eff.max_duration_minutes.scope, Scope::Organisation(w.org));
    w.store
        .set_policy(Scope::Resource(w.room.id), &room_rule, now())
        .await
        .expect("room");
    let eff = w.store.effective_policy_of(w.room.id).await.expect("effective");
    assert_eq!(eff.max_duration_minutes.scope, Scope::Resource(w.room.id));

    let r = w
        .store
        .record_request(
            &request(&w, "long", "alice@plainecommune.fr", tue(9, 0), tue(12, 0)),
            now(),
        )
        .await
        .expect("long");
    let (kind, codes, message) = decided(&r);
    assert_eq!((kind, codes), ("decline", vec!["max_duration"]));
    assert!(message.contains("Durée maximale : 2 h"), "{message}");
    let reasons: serde_json::Value = sqlx::query_scalar("SELECT reasons FROM decisions")
        .fetch_one(w.store.pool())
        .await
        .expect("reasons");
    assert_eq!(reasons[0]["code"], "max_duration");
    assert_eq!(reasons[0]["scope"]["kind"], "resource");
    assert!(
        reasons[0]["en"]
            .as_str()
            .is_some_and(|t| t.contains("Maximum duration: 2 h")),
        "{reasons}"
    );
}

#[tokio::test]
async fn rights_come_from_group_grants_and_request_means_held_for_approval() {
    let w = world().await;
    // Nobody may book without a grant here.
    let closed = Policy {
        default_right: Some(resa::domain::policy::DefaultRight::None),
        ..Policy::default()
    };
    w.store
        .set_policy(Scope::Organisation(w.org), &closed, now())
        .await
        .expect("policy");
    let bob = w
        .store
        .record_request(
            &request(&w, "bob", "bob@plainecommune.fr", tue(9, 0), tue(10, 0)),
            now(),
        )
        .await
        .expect("bob");
    assert_eq!(decided(&bob).0, "decline");

    w.store
        .create_grant(&NewGrant {
            subject: GrantSubject::Group(w.urbanisme),
            scope: GrantScope::Resource(w.room.id),
            role: GrantRole::Request,
            created_by: None,
        })
        .await
        .expect("grant");
    let alice = w
        .store
        .record_request(
            &request(&w, "alice", "alice@plainecommune.fr", tue(9, 0), tue(10, 0)),
            now(),
        )
        .await
        .expect("alice");
    assert_eq!(decided(&alice).0, "hold");
    // Held: the slot is blocked meanwhile and Exchange gets a tentative answer.
    assert_eq!(
        w.store
            .held_slots(w.room.id, tue(0, 0), tue(23, 0))
            .await
            .expect("slots")
            .len(),
        1
    );
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM outbox ORDER BY id")
        .fetch_all(w.store.pool())
        .await
        .expect("outbox");
    assert_eq!(kinds, vec!["decline", "tentative"]);

    // A personal deny beats the group's grant.
    w.store
        .create_grant(&NewGrant {
            subject: GrantSubject::Person(w.alice),
            scope: GrantScope::Organisation(w.org),
            role: GrantRole::Deny,
            created_by: None,
        })
        .await
        .expect("deny");
    let denied = w
        .store
        .record_request(
            &request(&w, "alice-2", "alice@plainecommune.fr", tue(11, 0), tue(12, 0)),
            now(),
        )
        .await
        .expect("denied");
    assert_eq!(decided(&denied).1, vec!["denied"]);
}

#[tokio::test]
async fn unknown_and_external_organisers_follow_the_policy() {
    let w = world().await;
    let unknown = w
        .store
        .record_request(
            &request(&w, "u", "nobody@plainecommune.fr", tue(9, 0), tue(10, 0)),
            now(),
        )
        .await
        .expect("unknown");
    assert_eq!(decided(&unknown).1, vec!["unknown_organiser"]);
    let external = w
        .store
        .record_request(&request(&w, "x", "someone@example.com", tue(9, 0), tue(10, 0)), now())
        .await
        .expect("external");
    assert_eq!(decided(&external).1, vec!["external_not_allowed"]);
    // Organisers found by their legacy Exchange DN are known people.
    let by_dn = w
        .store
        .record_request(
            &request(
                &w,
                "dn",
                "EX:/o=PC/ou=Exchange/cn=Recipients/cn=alice",
                tue(9, 0),
                tue(10, 0),
            ),
            now(),
        )
        .await
        .expect("by dn");
    assert_eq!(decided(&by_dn).0, "accept");
}

#[tokio::test]
async fn a_weekly_series_across_the_october_change_keeps_its_local_time_in_the_store() {
    let w = world().await;
    let paris = chrono_tz::Europe::Paris;
    let series = Recurrence {
        pattern: Pattern::Weekly {
            interval: 1,
            days: vec![Weekday::Tue],
            first_day_of_week: Weekday::Mon,
        },
        range: RecurrenceRange::Numbered(4),
        start_date: NaiveDate::from_ymd_opt(2027, 10, 19).expect("date"),
        start_time: NaiveTime::from_hms_opt(9, 0, 0).expect("time"),
        duration: Duration::hours(1),
        tz: paris,
        deleted: BTreeSet::new(),
        modified: Vec::new(),
    };
    let mut req = request(&w, "weekly", "alice@plainecommune.fr", tue(9, 0), tue(10, 0));
    req.when = When::Series(Box::new(series));
    let later = Utc.with_ymd_and_hms(2027, 10, 1, 8, 0, 0).single().expect("valid");
    let r = w.store.record_request(&req, later).await.expect("series");
    assert_eq!(decided(&r).0, "accept");
    let slots = w
        .store
        .held_slots(w.room.id, later, later + Duration::days(60))
        .await
        .expect("slots");
    let starts: Vec<String> = slots
        .iter()
        .map(|(s, _)| s.with_timezone(&paris).format("%Y-%m-%d %H:%M %Z").to_string())
        .collect();
    assert_eq!(
        starts,
        vec![
            "2027-10-19 09:00 CEST",
            "2027-10-26 09:00 CEST",
            "2027-11-02 09:00 CET",
            "2027-11-09 09:00 CET"
        ]
    );
    assert_eq!(
        slots[0].0,
        Utc.with_ymd_and_hms(2027, 10, 19, 7, 0, 0).single().expect("valid")
    );
    assert_eq!(
        slots[2].0,
        Utc.with_ymd_and_hms(2027, 11, 2, 8, 0, 0).single().expect("valid")
    );
}

#[tokio::test]
async fn a_series_with_two_taken_dates_is_accepted_except_those_dates() {
    let w = world().await;
    let paris = chrono_tz::Europe::Paris;
    let allow = Policy {
        conflict_max_count: Some(2),
        conflict_max_percent: Some(50),
        ..Policy::default()
    };
    w.store
        .set_policy(Scope::Organisation(w.org), &allow, now())
        .await
        .expect("policy");
    // Tuesdays 8 and 15 December at 10:00 are taken.
    for (uid, day) in [("t1", 8), ("t2", 15)] {
        let start = Utc.with_ymd_and_hms(2026, 12, day, 9, 0, 0).single().expect("valid");
        w.store
            .record_request(
                &request(&w, uid, "bob@plainecommune.fr", start, start + Duration::hours(1)),
                now(),
            )
            .await
            .expect("taken");
    }
    let mut req = request(&w, "weekly", "alice@plainecommune.fr", tue(10, 0), tue(11, 0));
    req.when = When::Series(Box::new(Recurrence {
        pattern: Pattern::Weekly {
            interval: 1,
            days: vec![Weekday::Tue],
            first_day_of_week: Weekday::Mon,
        },
        range: RecurrenceRange::Numbered(6),
        start_date: NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"),
        start_time: NaiveTime::from_hms_opt(10, 0, 0).expect("time"),
        duration: Duration::hours(1),
        tz: paris,
        deleted: BTreeSet::new(),
        modified: Vec::new(),
    }));
    let r = w.store.record_request(&req, now()).await.expect("series");
    let (kind, _, message) = decided(&r);
    assert_eq!(kind, "accept_partially");
    assert!(message.contains("mardi 8 décembre 2026"), "{message}");
    assert!(message.contains("mardi 15 décembre 2026"), "{message}");
    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT o.status, count(*) FROM occurrences o JOIN bookings b ON b.id = o.booking_id
         WHERE b.uid = 'weekly' GROUP BY o.status ORDER BY o.status",
    )
    .fetch_all(w.store.pool())
    .await
    .expect("statuses");
    assert_eq!(statuses, vec![("accepted".to_owned(), 4), ("declined".to_owned(), 2)]);
}

#[tokio::test]
async fn an_update_keeps_unchanged_accepted_occurrences_whatever_rules_changed_since() {
    let w = world().await;
    let paris = chrono_tz::Europe::Paris;
    let weekly = |count| {
        When::Series(Box::new(Recurrence {
            pattern: Pattern::Weekly {
                interval: 1,
                days: vec![Weekday::Tue],
                first_day_of_week: Weekday::Mon,
            },
            range: RecurrenceRange::Numbered(count),
            start_date: NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"),
            start_time: NaiveTime::from_hms_opt(10, 0, 0).expect("time"),
            duration: Duration::hours(1),
            tz: paris,
            deleted: BTreeSet::new(),
            modified: Vec::new(),
        }))
    };
    let mut req = request(&w, "weekly", "alice@plainecommune.fr", tue(10, 0), tue(11, 0));
    req.when = weekly(4);
    assert_eq!(
        decided(&w.store.record_request(&req, now()).await.expect("series")).0,
        "accept"
    );
    // A blackout is declared afterwards on the second Tuesday.
    let closed_from = Utc.with_ymd_and_hms(2026, 12, 8, 0, 0, 0).single().expect("valid");
    w.store
        .create_blackout(
            Scope::Resource(w.room.id),
            closed_from,
            closed_from + Duration::days(1),
            "Travaux",
            now(),
        )
        .await
        .expect("blackout");
    // The organiser adds two weeks: only the new dates are decided again.
    req.sequence = 1;
    req.when = weekly(6);
    let r = w.store.record_request(&req, now()).await.expect("update");
    assert_eq!(decided(&r).0, "accept");
    assert_eq!(
        w.store
            .held_slots(w.room.id, tue(0, 0), tue(0, 0) + Duration::days(60))
            .await
            .expect("slots")
            .len(),
        6
    );
    // A new booking for that Tuesday meets the blackout.
    let start = Utc.with_ymd_and_hms(2026, 12, 8, 13, 0, 0).single().expect("valid");
    let other = w
        .store
        .record_request(
            &request(&w, "other", "bob@plainecommune.fr", start, start + Duration::hours(1)),
            now(),
        )
        .await
        .expect("other");
    assert_eq!(decided(&other).1, vec!["blackout"]);
}

#[tokio::test]
async fn a_moved_occurrence_that_needs_approval_waits_in_the_managers_queue_alone() {
    let w = world().await;
    let request_only = Policy {
        default_right: Some(resa::domain::policy::DefaultRight::Request),
        ..Policy::default()
    };
    w.store
        .set_policy(Scope::Organisation(w.org), &request_only, now())
        .await
        .expect("policy");
    let mut req = request(&w, "weekly", "alice@plainecommune.fr", tue(10, 0), tue(11, 0));
    req.when = When::Series(Box::new(Recurrence {
        pattern: Pattern::Weekly {
            interval: 1,
            days: vec![Weekday::Tue],
            first_day_of_week: Weekday::Mon,
        },
        range: RecurrenceRange::Numbered(4),
        start_date: NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"),
        start_time: NaiveTime::from_hms_opt(10, 0, 0).expect("time"),
        duration: Duration::hours(1),
        tz: chrono_tz::Europe::Paris,
        deleted: BTreeSet::new(),
        modified: Vec::new(),
    }));
    let recorded = w.store.record_request(&req, now()).await.expect("series");
    let Recorded::Decided { booking_id, .. } = recorded else {
        panic!("not decided")
    };
    let manager = w.alice;
    assert!(
        w.store
            .decide_held_booking(booking_id, ManagerVerdict::Approve, manager, "", now())
            .await
            .expect("approved")
    );
    let statuses = |w: &World| {
        let pool = w.store.pool().clone();
        async move {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT b.status, string_agg(o.status, ',' ORDER BY o.original_start) FROM bookings b
                 JOIN occurrences o ON o.booking_id = b.id WHERE b.uid = 'weekly' GROUP BY b.status",
            )
            .fetch_all(&pool)
            .await
            .expect("statuses");
            rows
        }
    };
    assert_eq!(
        statuses(&w).await,
        [("accepted".into(), "accepted,accepted,accepted,accepted".into())]
    );

    // The organiser moves the second and the third Tuesdays an hour later:
    // each needs approval again; the series stays accepted.
    let second = tue(10, 0) + Duration::days(7);
    let third = tue(10, 0) + Duration::days(14);
    for (original, item) in [(second, "item-second"), (third, "item-third")] {
        let moved = w
            .store
            .move_occurrence(
                w.room.id,
                "weekly",
                original,
                original + Duration::hours(1),
                original + Duration::hours(2),
                1,
                item,
                now(),
            )
            .await
            .expect("moved");
        assert!(
            matches!(
                moved,
                resa::store::occurrences::OccurrenceChange::Moved { held: true, .. }
            ),
            "{moved:?}"
        );
    }
    assert_eq!(
        statuses(&w).await,
        [("accepted".into(), "accepted,held,held,accepted".into())]
    );
    let queue = w.store.held_bookings(None).await.expect("queue");
    assert_eq!(queue.iter().map(|h| h.id).collect::<Vec<_>>(), [booking_id]);
    assert_eq!(queue[0].first_start, Some(second + Duration::hours(1)));

    // Refused: only the moved occurrences are declined, and Exchange is told
    // for the first held one's meeting.
    assert!(
        w.store
            .decide_held_booking(booking_id, ManagerVerdict::Refuse, manager, "Salle prise à 11 h", now())
            .await
            .expect("refused")
    );
    assert_eq!(
        statuses(&w).await,
        [("accepted".into(), "accepted,declined,declined,accepted".into())]
    );
    let answer: (String, serde_json::Value) = sqlx::query_as(
        "SELECT kind, payload FROM outbox WHERE booking_id = $1 AND idempotency_key LIKE 'manager:%' ORDER BY id DESC LIMIT 1",
    )
    .bind(booking_id)
    .fetch_one(w.store.pool())
    .await
    .expect("answer");
    assert_eq!(answer.0, "decline");
    assert_eq!(answer.1["calendar_uid"], "weekly");
    assert_eq!(
        answer.1["start"].as_str(),
        Some((second + Duration::hours(1)).to_rfc3339().as_str())
    );
    assert!(w.store.held_bookings(None).await.expect("queue").is_empty());
}
