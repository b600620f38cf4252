//! Retention reaches the decisions: once a booking is anonymised, its
//! decisions no longer quote the organiser or whoever held a conflicting slot,
//! while staying append-only for everything else.

use crate::requests::{now, request, tue, world};
use chrono::Duration;
use resa::domain::{Policy, Scope};
use sqlx::Row;

#[tokio::test]
async fn retention_removes_people_from_old_decisions_and_keeps_their_rules() {
    let w = world().await;
    let show = Policy {
        show_organiser_on_conflict: Some(true),
        ..Policy::default()
    };
    w.store
        .set_policy(Scope::Organisation(w.org), &show, now())
        .await
        .expect("policy");
    w.store
        .record_request(
            &request(&w, "first", "alice@plainecommune.fr", tue(14, 0), tue(15, 0)),
            now(),
        )
        .await
        .expect("first");
    w.store
        .record_request(
            &request(&w, "second", "bob@plainecommune.fr", tue(14, 30), tue(15, 30)),
            now(),
        )
        .await
        .expect("second");
    let personal = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM decisions
             WHERE (inputs::text || reasons::text || explanation::text) ~* '(alice@|bob@|urbanisme)'
                OR inputs->'organiser' ? 'person'",
        )
        .fetch_one(&pool)
        .await
        .expect("count")
    };
    // Before: both decisions name their organiser, the decline names the holder.
    assert_eq!(personal(w.store.pool().clone()).await, 2);
    let holder: String = sqlx::query_scalar("SELECT reasons->0->>'fr' FROM decisions WHERE uid = 'second'")
        .fetch_one(w.store.pool())
        .await
        .expect("reason");
    assert!(holder.ends_with("par Service Urbanisme"), "{holder}");

    // Not yet old: nothing changes.
    let run = w.store.apply_retention(tue(0, 0), now()).await.expect("retention");
    assert_eq!((run.bookings, run.decisions), (0, 0));
    assert_eq!(personal(w.store.pool().clone()).await, 2);

    let later = tue(0, 0) + Duration::days(400);
    let run = w
        .store
        .apply_retention(later - Duration::days(30), later)
        .await
        .expect("retention");
    assert_eq!((run.bookings, run.decisions), (2, 2));
    assert_eq!(personal(w.store.pool().clone()).await, 0);

    let row = sqlx::query(
        "SELECT outcome, reasons->0->>'code' AS code, reasons->0->>'fr' AS fr, inputs->>'organiser_address' AS address,
                inputs->'organiser'->>'kind' AS kind
         FROM decisions WHERE uid = 'second'",
    )
    .fetch_one(w.store.pool())
    .await
    .expect("decision");
    assert_eq!(row.get::<String, _>("outcome"), "decline");
    assert_eq!(row.get::<String, _>("code"), "conflict");
    assert_eq!(row.get::<String, _>("fr"), "La salle est réservée de 14 h à 15 h");
    assert_eq!(row.get::<String, _>("address"), "anonyme@resa.invalid");
    assert_eq!(row.get::<String, _>("kind"), "known");

    // A second run has nothing left to do.
    let again = w
        .store
        .apply_retention(later - Duration::days(30), later)
        .await
        .expect("retention");
    assert_eq!((again.bookings, again.decisions), (0, 0));

    // Outside retention, decisions stay append-only.
    let update = sqlx::query("UPDATE decisions SET inputs = '{\"anonymised\": true}'")
        .execute(w.store.pool())
        .await;
    assert!(update.is_err(), "an update outside retention went through");
    let mut tx = w.store.pool().begin().await.expect("tx");
    sqlx::query("SET LOCAL resa.anonymising = 'on'")
        .execute(&mut *tx)
        .await
        .expect("set");
    let outcome = sqlx::query("UPDATE decisions SET outcome = 'accept', inputs = inputs || '{\"anonymised\": true}'")
        .execute(&mut *tx)
        .await;
    assert!(outcome.is_err(), "retention's exception changed an outcome");
    drop(tx);
    let delete = sqlx::query("DELETE FROM decisions").execute(w.store.pool()).await;
    assert!(delete.is_err(), "a decision was deleted");
}
