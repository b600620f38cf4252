//! Resources brought in from a CSV file and from Exchange's room lists.

use crate::harness::test_db;
use resa::ews::client::{Auth, Client, ClientConfig};
use resa::ews::ntlm::NtlmCredentials;
use resa::ews::soap::ServerVersion;
use resa::resources::{discover_csv, import_csv};
use resa::sim::{SimOptions, Simulator};
use resa::store::Store;
use resa::store::catalogue::Category;
use serde_json::json;

async fn catalogue(store: &Store) {
    let org = store
        .create_organisation("saint-denis", "Ville de Saint-Denis")
        .await
        .expect("org");
    store
        .create_site(org.id, "hotel-de-ville", "Hôtel de ville", "Europe/Paris")
        .await
        .expect("site");
    store
        .create_resource_type("salle", Category::Room, "Salle", "Room")
        .await
        .expect("type");
}

fn endpoints() -> Vec<String> {
    vec!["saint-denis".to_owned()]
}

const GOOD: &str = "name,mailbox,site,type,capacity,exchange
Salle Éluard,Salle.Eluard@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,12,saint-denis
\"Salle du conseil, 1er étage\",salle.conseil@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,,saint-denis
";

#[tokio::test]
async fn a_good_file_is_imported_and_importing_it_again_changes_nothing() {
    let db = test_db().await;
    catalogue(db.store()).await;
    let report = import_csv(db.store(), GOOD.as_bytes(), &endpoints())
        .await
        .expect("import");
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (2, 0, 0),
        "{report:?}"
    );
    let again = import_csv(db.store(), GOOD.as_bytes(), &endpoints())
        .await
        .expect("import");
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2), "{again:?}");
    let renamed = GOOD.replace("Salle Éluard", "Salle Paul Éluard");
    let third = import_csv(db.store(), renamed.as_bytes(), &endpoints())
        .await
        .expect("import");
    assert_eq!((third.created, third.updated, third.unchanged), (0, 1, 1), "{third:?}");
    let room = db
        .store()
        .resource_by_mailbox("salle.eluard@ville-saint-denis.fr")
        .await
        .expect("query")
        .expect("imported");
    assert_eq!((room.name.as_str(), room.capacity), ("Salle Paul Éluard", Some(12)));
}

#[tokio::test]
async fn every_bad_line_is_reported_and_nothing_is_imported() {
    let db = test_db().await;
    catalogue(db.store()).await;
    let bad = "name,mailbox,site,type,capacity,exchange
Salle A,salle.a@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,10,saint-denis
Salle B,pas-une-adresse,saint-denis/hotel-de-ville,salle,10,saint-denis
Salle C,salle.c@ville-saint-denis.fr,saint-denis/mairie,salle,-3,saint-denis
Salle D,salle.a@ville-saint-denis.fr,saint-denis/hotel-de-ville,voiture,10,plaine-commune
<script>alert(1)</script>,salle.e@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,4,saint-denis
";
    let report = import_csv(db.store(), bad.as_bytes(), &endpoints())
        .await
        .expect("import");
    let lines: Vec<(u64, &str)> = report.errors.iter().map(|e| (e.line, e.fr.as_str())).collect();
    assert_eq!(report.errors.len(), 6, "{lines:#?}");
    assert_eq!(
        lines[0],
        (3, "adresse de boîte aux lettres invalide « pas-une-adresse »")
    );
    assert!(
        lines[1].0 == 4 && lines[1].1.starts_with("site inconnu « saint-denis/mairie »"),
        "{lines:?}"
    );
    assert!(
        lines[2].0 == 4 && lines[2].1.starts_with("capacité invalide « -3 »"),
        "{lines:?}"
    );
    assert!(
        lines[3].0 == 5 && lines[3].1.contains("apparaît deux fois"),
        "{lines:?}"
    );
    assert!(
        lines[4].0 == 5 && lines[4].1.contains("type de ressource inconnu « voiture »"),
        "{lines:?}"
    );
    assert!(
        lines[5].0 == 5 && lines[5].1.contains("serveur Exchange inconnu « plaine-commune »"),
        "{lines:?}"
    );
    assert_eq!((report.created, report.updated), (0, 0));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM resources")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(count, 0, "nothing was imported");
}

#[tokio::test]
async fn a_file_without_the_expected_columns_is_refused_plainly() {
    let db = test_db().await;
    let report = import_csv(db.store(), "nom;adresse\nA;b\n".as_bytes(), &endpoints())
        .await
        .expect("import");
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].fr.starts_with("colonnes manquantes"),
        "{:?}",
        report.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_discovered_from_exchange_room_lists_import_once_their_site_is_set() {
    let seed = serde_json::from_value(json!({
        "mailboxes": [
            { "smtp": "salle.eluard@ville-saint-denis.fr", "name": "Salle Éluard", "kind": "room" },
            { "smtp": "salle.aragon@ville-saint-denis.fr", "name": "Salle Aragon", "kind": "room" },
        ],
        "room_lists": [{ "smtp": "salles.hdv@ville-saint-denis.fr", "name": "Salles – Hôtel de ville",
                         "rooms": ["salle.eluard@ville-saint-denis.fr", "salle.aragon@ville-saint-denis.fr"] }],
        "service_account": { "login": "SD\\svc-resa", "password": "pw" },
    }))
    .expect("seed");
    let sim = Simulator::start(SimOptions::new("127.0.0.1:0", seed, ServerVersion::Exchange2013_SP1))
        .await
        .expect("sim");
    let auth = Auth::Ntlm(NtlmCredentials {
        domain: "SD".into(),
        user: "svc-resa".into(),
        password: "pw".into(),
        workstation: "RESA".into(),
    });
    let url = url::Url::parse(&sim.ews_url()).expect("url");
    let client = Client::new(
        ClientConfig::new(url, ServerVersion::Exchange2013_SP1, auth),
        resa::clock::system(),
    )
    .expect("client");
    let csv = discover_csv(&client, "saint-denis").await.expect("discover");
    assert!(csv.starts_with("name,mailbox,site,type,capacity,exchange\n"), "{csv}");
    assert!(
        csv.contains("Salle Éluard,salle.eluard@ville-saint-denis.fr,Salles – Hôtel de ville,salle,,saint-denis"),
        "{csv}"
    );
    let db = test_db().await;
    catalogue(db.store()).await;
    let edited = csv.replace("Salles – Hôtel de ville", "saint-denis/hotel-de-ville");
    let report = import_csv(db.store(), edited.as_bytes(), &endpoints())
        .await
        .expect("import");
    assert_eq!(report.created, 2, "{report:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn attribute_columns_set_equipment_and_bad_cells_are_reported_by_line() {
    use resa::store::equipment::{AttrValue, AttributeDef, ValueType};
    let db = test_db().await;
    let store = db.store();
    catalogue(store).await;
    let room_type = store
        .resource_type_by_slug("salle")
        .await
        .expect("query")
        .expect("type");
    for (key, value_type, choices) in [
        ("visio", ValueType::Boolean, vec![]),
        (
            "connectique",
            ValueType::Choice,
            vec!["HDMI".to_owned(), "VGA".to_owned()],
        ),
    ] {
        assert!(
            store
                .add_attribute_definition(&AttributeDef {
                    resource_type_id: room_type,
                    key: key.into(),
                    value_type,
                    choices,
                    required: false,
                    label_fr: key.into(),
                    label_en: key.into(),
                })
                .await
                .expect("definition")
        );
    }
    let good = "name,mailbox,site,type,capacity,exchange,attr:visio,attr:connectique
Salle Éluard,salle.eluard@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,12,saint-denis,oui,hdmi
Salle Triolet,salle.triolet@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,8,saint-denis,non,
";
    let report = import_csv(store, good.as_bytes(), &endpoints()).await.expect("import");
    assert_eq!((report.created, report.errors.len()), (2, 0), "{report:?}");
    let eluard = store
        .resource_by_mailbox("salle.eluard@ville-saint-denis.fr")
        .await
        .expect("query")
        .expect("imported");
    let values: Vec<(String, Option<AttrValue>)> = store
        .resource_attributes(eluard.id)
        .await
        .expect("attributes")
        .into_iter()
        .map(|(d, v)| (d.key, v))
        .collect();
    assert_eq!(
        values,
        [
            ("connectique".to_owned(), Some(AttrValue::Text("HDMI".into()))),
            ("visio".to_owned(), Some(AttrValue::Boolean(true)))
        ]
    );
    let equipped = store.equipment_of(&[eluard.id]).await.expect("equipment");
    assert_eq!(equipped[&eluard.id].len(), 1);

    // The same file again changes nothing; a changed cell is an update.
    let again = import_csv(store, good.as_bytes(), &endpoints()).await.expect("import");
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2), "{again:?}");
    let changed = good.replacen(",non,", ",oui,", 1);
    let third = import_csv(store, changed.as_bytes(), &endpoints())
        .await
        .expect("import");
    assert_eq!((third.updated, third.unchanged), (1, 1), "{third:?}");

    // Bad cells: each named on its line, and nothing written.
    let bad = "name,mailbox,site,type,capacity,exchange,attr:visio,attr:connectique,attr:climatisation
Salle Éluard,salle.eluard@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,12,saint-denis,peut-être,hdmi,
Salle Triolet,salle.triolet@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,8,saint-denis,non,USB-C,
Salle Neuve,salle.neuve@ville-saint-denis.fr,saint-denis/hotel-de-ville,salle,8,saint-denis,non,,oui
";
    let report = import_csv(store, bad.as_bytes(), &endpoints()).await.expect("import");
    let lines: Vec<(u64, &str)> = report.errors.iter().map(|e| (e.line, e.fr.as_str())).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0].0, 2);
    assert!(
        lines[0].1.contains("oui ou non est attendu (« peut-être »)"),
        "{lines:?}"
    );
    assert_eq!(lines[1].0, 3);
    assert!(lines[1].1.contains("choix possibles : HDMI, VGA"), "{lines:?}");
    assert_eq!(lines[2].0, 4);
    assert!(lines[2].1.contains("n'a pas d'attribut « climatisation »"), "{lines:?}");
    assert!(
        store
            .resource_by_mailbox("salle.neuve@ville-saint-denis.fr")
            .await
            .expect("query")
            .is_none()
    );
    assert_eq!(
        store.equipment_of(&[eluard.id]).await.expect("equipment")[&eluard.id].len(),
        1
    );
}
