//! Reversibility: everything leaves in open formats and comes back intact.

use crate::harness::test_db;
use crate::requests::{now, request, tue, world};
use resa::domain::{Policy, Scope};
use resa::reversibility::{Progress, export, import};
use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant};
use resa::store::export::{DERIVED, NOT_EXPORTED, TABLES};
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("inside").to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[tokio::test]
async fn export_then_import_into_an_empty_database_then_export_gives_identical_files() {
    let w = world().await;
    let s = &w.store;
    s.set_policy(
        Scope::Organisation(w.org),
        &Policy {
            max_duration_minutes: Some(240),
            ..Policy::default()
        },
        now(),
    )
    .await
    .expect("policy");
    s.create_grant(&NewGrant {
        subject: GrantSubject::Group(w.urbanisme),
        scope: GrantScope::Resource(w.room.id),
        role: GrantRole::Book,
        created_by: None,
    })
    .await
    .expect("grant");
    s.create_blackout(Scope::Resource(w.room.id), tue(18, 0), tue(20, 0), "Élections", now())
        .await
        .expect("blackout");
    let mut subject = request(&w, "a", "alice@plainecommune.fr", tue(9, 0), tue(10, 0));
    subject.subject = Some("Comité; budget, \"2027\" <b>".into());
    s.record_request(&subject, now()).await.expect("a");
    s.record_request(
        &request(&w, "b", "bob@plainecommune.fr", tue(9, 30), tue(10, 30)),
        now(),
    )
    .await
    .expect("b");
    s.record_request(&request(&w, "c", "bob@plainecommune.fr", tue(11, 0), tue(16, 0)), now())
        .await
        .expect("c");
    s.record_audit(
        now(),
        "admin",
        "create",
        "grant",
        None,
        serde_json::json!({"note": "é"}),
    )
    .await
    .expect("audit");

    fill_every_table(s).await;

    let first = tempfile::tempdir().expect("tempdir");
    let mut seen = Vec::new();
    export(s, first.path(), |p| seen.push(p)).await.expect("export");
    assert!(
        seen.contains(&Progress::Table {
            table: "bookings".into(),
            rows: 3
        }),
        "{seen:?}"
    );

    let empty = test_db().await;
    import(empty.store(), first.path(), |_| {}).await.expect("import");
    let second = tempfile::tempdir().expect("tempdir");
    export(empty.store(), second.path(), |_| {})
        .await
        .expect("export again");

    let (a, b) = (files(first.path()), files(second.path()));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs after the round trip");
    }
    // The imported database works: its sequences and constraints are in place.
    let again = empty
        .store()
        .record_request(
            &request(&w, "d", "alice@plainecommune.fr", tue(9, 0), tue(9, 30)),
            now(),
        )
        .await
        .expect("decides after import");
    match again {
        resa::store::requests::Recorded::Decided { decision, .. } => {
            assert_eq!(decision.reason_codes(), vec!["conflict"])
        }
        other => panic!("{other:?}"),
    }

    // Open formats: CSV with a header, one iCalendar file per resource.
    let csv = String::from_utf8(a["csv/bookings.csv"].clone()).expect("utf-8");
    assert!(csv.starts_with("id,resource_id,uid,"), "{csv}");
    assert_eq!(csv.lines().count(), 4);
    let ics = String::from_utf8(a["ical/salle.cezanne@plainecommune.fr.ics"].clone()).expect("utf-8");
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1, "only the held slot: {ics}");
    assert!(ics.contains("SUMMARY:Comité\\; budget\\, \"2027\" <b>"), "{ics}");
    let schema: serde_json::Value = serde_json::from_slice(&a["schema/occurrences.schema.json"]).expect("json");
    assert_eq!(schema["properties"]["resource_id"]["format"], "uuid");
    let manifest: serde_json::Value = serde_json::from_slice(&a["manifest.json"]).expect("json");
    assert_eq!(manifest["tables"]["decisions"], 3);
    assert_eq!(
        manifest["tables"]["territory_communes"], 10,
        "the nine seeded communes and Bobigny"
    );
    // Every exported table held rows, so the round trip proved each one.
    for table in TABLES {
        assert!(
            manifest["tables"][table].as_u64().is_some_and(|n| n > 0),
            "{table} is empty: fill it in fill_every_table"
        );
    }
    // The reports' rollup, not exported, was rebuilt by the import: the
    // imported database reports the same figures.
    let week = resa::store::reports::ReportFilter::range(tue(0, 0), tue(0, 0) + chrono::Duration::days(7));
    let rebuilt: i64 = sqlx::query_scalar("SELECT count(*) FROM report_days")
        .fetch_one(empty.store().pool())
        .await
        .expect("rollup");
    assert!(rebuilt > 0, "the import rebuilt the rollup");
    assert_eq!(
        format!("{:?}", empty.store().report_usage(&week).await.expect("usage")),
        format!("{:?}", w.store.report_usage(&week).await.expect("usage"))
    );
}

/// One row at least in each exported table the requests above leave empty,
/// through SQL as each feature's own code writes them (circuits, vehicle
/// pools, check-outs and alerts, drift, templates…).
async fn fill_every_table(s: &resa::store::Store) {
    let statements = [
        "INSERT INTO attribute_definitions (resource_type_id, key, value_type, choices, label_fr, label_en)
         SELECT id, 'couleur', 'choice', ARRAY['rouge', 'bleu'], 'Couleur', 'Colour' FROM resource_types LIMIT 1",
        "INSERT INTO resource_attributes (resource_id, key, value_text)
         SELECT id, 'couleur', 'rouge' FROM resources LIMIT 1",
        "INSERT INTO resources (site_id, resource_type_id, name, mailbox_smtp, exchange_endpoint)
         SELECT site_id, resource_type_id, 'Pool des voitures', 'pool.voitures@plainecommune.fr', exchange_endpoint
         FROM resources LIMIT 1",
        "INSERT INTO pool_members (pool_id, member_id)
         SELECT p.id, r.id FROM resources p, resources r WHERE p.name = 'Pool des voitures' AND r.id <> p.id LIMIT 1",
        "INSERT INTO vehicles (resource_id, plate, seats, energy, range_km, licence_class, home_site_id, key_location,
                               odometer_km)
         SELECT id, 'AB-123-CD', 5, 'electric', 300, 'B', site_id, 'Accueil', 12000
         FROM resources WHERE name = 'Pool des voitures'",
        "INSERT INTO opening_hours (site_id, weekday, opens, closes) SELECT id, 1, '08:00', '18:00' FROM sites LIMIT 1",
        "INSERT INTO holidays (day, name, organisation_id) SELECT '2026-12-25', 'Noël', id FROM organisations LIMIT 1",
        "INSERT INTO person_x500_addresses (legacy_dn, person_id)
         SELECT '/o=PC/ou=Exchange/cn=Recipients/cn=' || sam_account_name, id FROM people LIMIT 1",
        "INSERT INTO circuits (name) VALUES ('Projecteurs')",
        "INSERT INTO circuit_versions (circuit_id, version, deadline_hours) SELECT id, 1, 48 FROM circuits",
        "INSERT INTO circuit_steps (circuit_version_id, position, quorum) SELECT id, 1, 'one' FROM circuit_versions",
        "INSERT INTO circuit_step_approvers (step_id, kind, person_id)
         SELECT s.id, 'person', p.id FROM circuit_steps s, people p LIMIT 1",
        "INSERT INTO approval_requests (booking_id, step_id, approver_person_id, status, requested_at)
         SELECT b.id, s.id, p.id, 'approved', b.requested_at FROM bookings b, circuit_steps s, people p
         ORDER BY b.uid LIMIT 1",
        "INSERT INTO approvals (approval_request_id, outcome, channel, actor_person_id, comment, decided_at)
         SELECT id, 'approved', 'web', approver_person_id, 'D''accord', requested_at + interval '1 hour'
         FROM approval_requests",
        "INSERT INTO circuit_runs (booking_id, circuit_version_id, circuit, step_ids, progress, started_at, finished_at,
                                   outcome)
         SELECT r.booking_id, s.circuit_version_id, '{\"steps\": 1}', ARRAY[s.id], '{\"step\": 1}', r.requested_at,
                r.requested_at + interval '1 hour', 'approved'
         FROM approval_requests r JOIN circuit_steps s ON s.id = r.step_id",
        "INSERT INTO pool_assignments (booking_id, pool_id, member_id, declared_distance_km, chosen_at)
         SELECT b.id, m.pool_id, m.member_id, 12, b.requested_at FROM bookings b, pool_members m
         ORDER BY b.uid LIMIT 1",
        "INSERT INTO trip_details (booking_id, destination, declared_distance_km, passengers, outside_territory,
                                   updated_at)
         SELECT id, 'Saint-Denis', 12, 2, false, requested_at FROM bookings ORDER BY uid LIMIT 1",
        "INSERT INTO checkouts (occurrence_id, resource_id, out_at, odometer_out_km, returned_at, odometer_in_km,
                                energy_level_pct, cleanliness, condition_notes)
         SELECT id, resource_id, lower(period), 100, upper(period), 150, 80, 'clean', 'RAS'
         FROM occurrences WHERE status = 'accepted' LIMIT 1",
        "INSERT INTO damage_photos (checkout_id, content_type, bytes, uploaded_at)
         SELECT id, 'image/png', '\\x89504e470d0a1a0a', out_at FROM checkouts",
        "INSERT INTO vehicle_alerts (kind, resource_id, booking_id, occurrence_id, recipient, recipient_address,
                                     body_fr, body_en, created_at)
         SELECT 'overdue_return', o.resource_id, o.booking_id, o.id, 'manager', 'gestion@plainecommune.fr',
                'Véhicule non rendu', 'Vehicle not returned', upper(o.period)
         FROM occurrences o WHERE o.status = 'accepted' LIMIT 1",
        "INSERT INTO mailbox_sync (resource_id, inbox_sync_state, last_sync_at)
         SELECT id, 'H4sIAAAAAAAEAO29', '2026-11-30 08:00+01' FROM resources
         WHERE NOT EXISTS (SELECT 1 FROM mailbox_sync) LIMIT 1",
        "INSERT INTO calendar_drift (resource_id, kind, uid, details, found_at)
         SELECT id, 'unknown_item', 'uid-direct', '{\"subject\": \"Réunion\"}', '2026-11-30 09:00+01'
         FROM resources LIMIT 1",
        // The territory comes seeded; an import must bring back this one too.
        "INSERT INTO territory_communes (name, insee_code, postcodes) VALUES ('Bobigny', '93008', '{93000}')",
        "INSERT INTO message_templates (event, language, subject, body, updated_at)
         SELECT 'accepted', 'fr', 'Réservation acceptée', 'Bonjour,', '2026-11-30 09:00+01'
         WHERE NOT EXISTS (SELECT 1 FROM message_templates)",
    ];
    for sql in statements {
        sqlx::query(sql).execute(s.pool()).await.expect(sql);
    }
}

#[tokio::test]
async fn every_table_is_exported_or_deliberately_left_out() {
    let db = test_db().await;
    let tables = db.store().table_names().await.expect("tables");
    for table in &tables {
        let lists = [TABLES, NOT_EXPORTED, DERIVED]
            .iter()
            .filter(|l| l.contains(&table.as_str()))
            .count();
        assert_eq!(
            lists, 1,
            "table {table} must be in exactly one of: exported, left out, derived (rebuilt on import)"
        );
    }
    // And no list names a table that is gone.
    for listed in TABLES.iter().chain(NOT_EXPORTED).chain(DERIVED) {
        assert!(
            tables.iter().any(|t| t == listed),
            "{listed} is listed but not in the schema"
        );
    }
}

#[tokio::test]
async fn an_import_into_a_database_with_data_is_refused_and_changes_nothing() {
    let w = world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    export(&w.store, dir.path(), |_| {}).await.expect("export");
    let err = import(&w.store, dir.path(), |_| {}).await.expect_err("refused");
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[tokio::test]
async fn a_damaged_export_is_refused_whole() {
    let w = world().await;
    w.store
        .record_request(
            &request(&w, "a", "alice@plainecommune.fr", tue(9, 0), tue(10, 0)),
            now(),
        )
        .await
        .expect("a");
    let dir = tempfile::tempdir().expect("tempdir");
    export(&w.store, dir.path(), |_| {}).await.expect("export");
    let path = dir.path().join("json/bookings.json");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("\n]\n", ",\nnot json\n]\n")).expect("write");
    let empty = test_db().await;
    let err = import(empty.store(), dir.path(), |_| {}).await.expect_err("refused");
    assert!(err.to_string().contains("a row must be a JSON object"), "{err}");
    assert_eq!(
        empty.store().is_empty_for_import().await.expect("q"),
        None,
        "nothing was half-imported"
    );
}
