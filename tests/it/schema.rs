//! The schema's own guarantees, checked on a real PostgreSQL.

use crate::harness::{room_fixture, test_db};
use chrono::{DateTime, TimeZone, Utc};
use resa::store::Store;
use resa::store::StoreError;
use resa::store::bookings::{BookingStatus, NewBooking, NewOccurrence, OccurrenceStatus, Source};
use resa::store::catalogue::{NewResource, Resource};

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).single().expect("valid time")
}

async fn room(store: &Store) -> Resource {
    // Mixed case on purpose: the store keeps mailbox addresses lower-case.
    room_fixture(store, "Salle.Cezanne@plainecommune.fr", "plaine-commune", 12)
        .await
        .room
}

fn booking<'a>(resource: &Resource, uid: &'a str) -> NewBooking<'a> {
    NewBooking {
        resource_id: resource.id,
        uid,
        source: Source::Exchange,
        organiser_person_id: None,
        organiser_address: "agent@plainecommune.fr",
        organiser_name: Some("Agent"),
        subject: Some("Réunion"),
        attendee_count: Some(4),
        sequence: 0,
        time_zone: "Europe/Paris",
        status: BookingStatus::Accepted,
        requested_at: at(8, 0),
    }
}

#[tokio::test]
async fn overlapping_confirmed_occurrences_cannot_both_be_stored() {
    let db = test_db().await;
    let s = db.store();
    let r = room(s).await;
    s.insert_booking(
        &booking(&r, "a"),
        &[NewOccurrence::plain(at(14, 0), at(15, 0), OccurrenceStatus::Accepted)],
    )
    .await
    .expect("first booking");
    let clash = s
        .insert_booking(
            &booking(&r, "b"),
            &[NewOccurrence::plain(at(14, 30), at(15, 30), OccurrenceStatus::Accepted)],
        )
        .await;
    assert!(matches!(clash, Err(StoreError::SlotTaken)), "got {clash:?}");
    // A held (awaiting approval) occurrence holds the slot as well.
    let held = s
        .insert_booking(
            &booking(&r, "c"),
            &[NewOccurrence::plain(at(13, 0), at(14, 1), OccurrenceStatus::Held)],
        )
        .await;
    assert!(matches!(held, Err(StoreError::SlotTaken)), "got {held:?}");
    // Nothing of the refused bookings was kept.
    assert_eq!(
        s.held_slots(r.id, at(0, 0), at(23, 0)).await.expect("slots"),
        vec![(at(14, 0), at(15, 0))]
    );
}

#[tokio::test]
async fn adjacent_occurrences_can_be_stored() {
    let db = test_db().await;
    let s = db.store();
    let r = room(s).await;
    for (uid, from, to) in [
        ("a", at(14, 0), at(15, 0)),
        ("b", at(15, 0), at(16, 0)),
        ("c", at(13, 0), at(14, 0)),
    ] {
        s.insert_booking(
            &booking(&r, uid),
            &[NewOccurrence::plain(from, to, OccurrenceStatus::Accepted)],
        )
        .await
        .unwrap_or_else(|e| panic!("{uid}: {e}"));
    }
    assert_eq!(s.held_slots(r.id, at(0, 0), at(23, 0)).await.expect("slots").len(), 3);
}

#[tokio::test]
async fn declined_and_cancelled_occurrences_do_not_hold_the_slot() {
    let db = test_db().await;
    let s = db.store();
    let r = room(s).await;
    s.insert_booking(
        &booking(&r, "a"),
        &[NewOccurrence::plain(at(14, 0), at(15, 0), OccurrenceStatus::Declined)],
    )
    .await
    .expect("declined is kept for the record");
    s.insert_booking(
        &booking(&r, "b"),
        &[NewOccurrence::plain(at(14, 0), at(15, 0), OccurrenceStatus::Cancelled)],
    )
    .await
    .expect("cancelled is kept for the record");
    s.insert_booking(
        &booking(&r, "c"),
        &[NewOccurrence::plain(at(14, 0), at(15, 0), OccurrenceStatus::Accepted)],
    )
    .await
    .expect("the slot is free");
}

#[tokio::test]
async fn buffers_hold_the_slot_around_a_booking() {
    let db = test_db().await;
    let s = db.store();
    let r = room(s).await;
    let mut cleaning = NewOccurrence::plain(at(14, 0), at(15, 0), OccurrenceStatus::Accepted);
    cleaning.blocked_end = at(15, 30);
    s.insert_booking(&booking(&r, "a"), &[cleaning]).await.expect("first");
    let next = s
        .insert_booking(
            &booking(&r, "b"),
            &[NewOccurrence::plain(at(15, 15), at(16, 0), OccurrenceStatus::Accepted)],
        )
        .await;
    assert!(matches!(next, Err(StoreError::SlotTaken)), "got {next:?}");
    s.insert_booking(
        &booking(&r, "c"),
        &[NewOccurrence::plain(at(15, 30), at(16, 0), OccurrenceStatus::Accepted)],
    )
    .await
    .expect("after the buffer");
}

#[tokio::test]
async fn one_booking_per_uid_and_resource() {
    let db = test_db().await;
    let s = db.store();
    let r = room(s).await;
    s.insert_booking(&booking(&r, "same"), &[]).await.expect("first");
    let again = s.insert_booking(&booking(&r, "same"), &[]).await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "got {again:?}");
}

#[tokio::test]
async fn decisions_and_audit_are_append_only() {
    let db = test_db().await;
    let s = db.store();
    let r = room(s).await;
    s.record_audit(
        at(9, 0),
        "test",
        "create",
        "resource",
        Some(&r.id.to_string()),
        serde_json::json!({}),
    )
    .await
    .expect("insert is allowed");
    let update = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(db.pool())
        .await;
    assert!(update.is_err(), "an audit row was changed");
    let delete = sqlx::query("DELETE FROM audit_log").execute(db.pool()).await;
    assert!(delete.is_err(), "an audit row was deleted");
}

#[tokio::test]
async fn mailbox_addresses_are_unique_whatever_their_case() {
    let db = test_db().await;
    let s = db.store();
    let r = room(s).await;
    let again = s
        .create_resource(&NewResource {
            site_id: r.site_id,
            resource_type_id: r.resource_type_id,
            name: "Doublon",
            mailbox_smtp: "SALLE.CEZANNE@PLAINECOMMUNE.FR",
            exchange_endpoint: "plaine-commune",
            capacity: None,
        })
        .await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "got {again:?}");
    let found = s
        .resource_by_mailbox("SALLE.cezanne@plainecommune.fr")
        .await
        .expect("query");
    assert_eq!(found.map(|f| f.id), Some(r.id));
}
