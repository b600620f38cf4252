//! Reversibility: everything leaves in open formats and comes back intact.

use crate::harness::test_db;
use crate::requests::{now, request, tue, world};
use resa::domain::{Policy, Scope};
use resa::reversibility::{Progress, export, import};
use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant};
use resa::store::export::{NOT_EXPORTED, TABLES};
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
}

#[tokio::test]
async fn every_table_is_exported_or_deliberately_left_out() {
    let db = test_db().await;
    for table in db.store().table_names().await.expect("tables") {
        assert!(
            TABLES.contains(&table.as_str()) || NOT_EXPORTED.contains(&table.as_str()),
            "table {table} is neither exported nor listed as left out"
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
