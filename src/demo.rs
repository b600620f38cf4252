//! `resa demo`: the whole service on loopback, with the customer's inventory.
//!
//! A private PostgreSQL under the data directory, the Exchange simulator
//! seeded with both organisations' rooms, the shared vehicle and equipment
//! pool and a few hundred agents, the daemon deciding every invitation, the
//! web site, and simulated Outlook users sending invitations, series,
//! updates and cancellations. A second run reuses the same data.
//!
//! The web site has no directory to log in against, so the demo (and only the
//! demo, on loopback) offers a few seeded people to sign in as, with their
//! roles: see [`crate::web::pages::auth::DemoLogin`].

use crate::clock::SharedClock;
use crate::devdb::Cluster;
use crate::directory::entry::{GroupRecord, PersonRecord, SmtpAddress};
use crate::domain::circuit::{Condition, FinalOutcome, Quorum};
use crate::domain::policy::{TimeRange, WeeklyHours};
use crate::domain::vehicles::{DriverLicence, Energy, LicenceClass};
use crate::domain::{Policy, Scope};
use crate::ews::client::{Auth, Client, ClientConfig};
use crate::ews::ntlm::NtlmCredentials;
use crate::ews::soap::ServerVersion;
use crate::exchange::ews::EwsExchange;
use crate::metrics::Metrics;
use crate::runtime::{Daemon, Pacing};
use crate::sim::seed::Seed;
use crate::sim::{SimHandle, SimOptions, Simulator};
use crate::store::Store;
use crate::store::catalogue::{Category, NewResource};
use crate::store::circuits::{ApproverDef, CircuitDef, StepDef};
use crate::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant, SyncBatch};
use crate::store::vehicles::{LicenceSource, VehicleData};
use crate::sync::SyncContext;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::Connection;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How to run the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub data_dir: PathBuf,
    /// The web site and `/metrics`.
    pub listen: String,
    /// The simulator's EWS and control API.
    pub sim_listen: String,
    /// Simulated invitations per minute; 0 for none.
    pub activity_per_minute: u32,
}

/// The directory group whose members administer the demo.
const DEMO_ADMIN_GROUP: &str = "admins-resa";
/// Per organisation, the agent (by rank) who manages its first site's rooms;
/// chosen so that the demo's sign-in names are all different.
const DEMO_MANAGERS: [usize; 2] = [1, 6];
const SERVICE_LOGIN: &str = "RESA\\svc-resa";
const SERVICE_PASSWORD: &str = "demo-only-password";
const ENDPOINT: &str = "sim";
/// The mailbox of the shared car pool.
const POOL_SMTP: &str = "vehicules@plainecommune.fr";
/// How many of the 60 cars are electric (Renault Zoé).
const ELECTRIC_CARS: usize = 12;

/// One bookable thing of the inventory.
#[derive(Debug, Clone)]
struct Item {
    name: String,
    smtp: String,
    site: usize,
    kind: &'static str,
    capacity: Option<i32>,
}

struct SiteDef {
    org: usize,
    slug: &'static str,
    name: &'static str,
    rooms: usize,
}

const ORGS: [(&str, &str, &str); 2] = [
    ("plaine-commune", "Plaine Commune", "plainecommune.fr"),
    ("saint-denis", "Ville de Saint-Denis", "ville-saint-denis.fr"),
];

/// 25 rooms on 3 sites for Plaine Commune, 25 on 4 for Saint-Denis.
const SITES: [SiteDef; 7] = [
    SiteDef {
        org: 0,
        slug: "siege",
        name: "Siège – Saint-Denis",
        rooms: 11,
    },
    SiteDef {
        org: 0,
        slug: "aubervilliers",
        name: "Pôle d'Aubervilliers",
        rooms: 7,
    },
    SiteDef {
        org: 0,
        slug: "epinay",
        name: "Pôle d'Épinay-sur-Seine",
        rooms: 7,
    },
    SiteDef {
        org: 1,
        slug: "hotel-de-ville",
        name: "Hôtel de ville",
        rooms: 9,
    },
    SiteDef {
        org: 1,
        slug: "centre-administratif",
        name: "Centre administratif",
        rooms: 7,
    },
    SiteDef {
        org: 1,
        slug: "pierrefitte",
        name: "Mairie annexe de Pierrefitte",
        rooms: 5,
    },
    SiteDef {
        org: 1,
        slug: "floreal",
        name: "Maison de quartier Floréal",
        rooms: 4,
    },
];

const ROOM_NAMES: [&str; 50] = [
    "Cézanne", "Monet", "Renoir", "Degas", "Manet", "Pissarro", "Sisley", "Morisot", "Matisse", "Braque", "Delaunay",
    "Léger", "Chagall", "Dufy", "Signac", "Seurat", "Gauguin", "Courbet", "Millet", "Corot", "Daumier", "Vlaminck",
    "Derain", "Utrillo", "Valadon", "Hugo", "Zola", "Sand", "Colette", "Éluard", "Aragon", "Prévert", "Desnos",
    "Césaire", "Senghor", "Camus", "Beauvoir", "Sartre", "Duras", "Ernaux", "Michel", "Jaurès", "Zetkin", "Curie",
    "Pasteur", "Lumière", "Méliès", "Varda", "Piaf", "Brassens",
];

const FIRST: [&str; 30] = [
    "Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gaëlle", "Hugo", "Inès", "Jules", "Karima", "Louis",
    "Maëlys", "Nadir", "Océane", "Paul", "Rania", "Sami", "Thaïs", "Ulysse", "Victor", "Wassila", "Yanis", "Zoé",
    "Amadou", "Binta", "Cheng", "Dalia", "Élodie", "Fatou",
];
const LAST: [&str; 12] = [
    "Martin", "Bernard", "Diallo", "Nguyen", "Haddad", "Lefèvre", "Moreau", "Traoré", "Garcia", "Benali", "Petit",
    "Roux",
];

fn slug(s: &str) -> String {
    let map = |c: char| match c {
        'à' | 'â' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'Ë' => 'e',
        'î' | 'ï' => 'i',
        'ô' | 'ö' => 'o',
        'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
        _ => '-',
    };
    s.chars().map(map).collect::<String>().trim_matches('-').to_owned()
}

/// The customer's inventory: 50 rooms, then the shared pool (60 cars,
/// 10 bicycles, 10 laptops, 10 phones, 10 3G dongles, 6 projectors) kept at
/// the head office.
fn inventory() -> Vec<Item> {
    let mut out = Vec::new();
    let mut names = ROOM_NAMES.iter();
    for (i, site) in SITES.iter().enumerate() {
        let domain = ORGS[site.org].2;
        for n in 0..site.rooms {
            let name = names.next().copied().unwrap_or("Annexe");
            out.push(Item {
                name: format!("Salle {name}"),
                smtp: format!("salle.{}@{domain}", slug(name)),
                site: i,
                kind: "salle",
                capacity: Some([6, 8, 10, 12, 20, 40][n % 6]),
            });
        }
    }
    let pool: [(&str, &str, &str, usize); 6] = [
        ("voiture", "Voiture", "vehicule", 60),
        ("velo", "Vélo", "velo", 10),
        ("portable", "Ordinateur portable", "portable", 10),
        ("telephone", "Téléphone mobile", "telephone", 10),
        ("cle-3g", "Clé 3G", "cle3g", 10),
        ("videoprojecteur", "Vidéoprojecteur", "videoprojecteur", 6),
    ];
    // The cars are also reachable through one pool mailbox: resa picks a free
    // car (electric first when its range suffices) and names it in the answer.
    out.push(Item {
        name: format!("Véhicules – {}", SITES[0].name),
        smtp: POOL_SMTP.into(),
        site: 0,
        kind: "voiture",
        capacity: Some(5),
    });
    for (kind, label, local, count) in pool {
        for n in 1..=count {
            out.push(Item {
                name: format!("{label} {n:02}"),
                smtp: format!("{local}.{n:02}@plainecommune.fr"),
                site: 0,
                kind,
                capacity: (kind == "voiture").then_some(5),
            });
        }
    }
    out
}

/// A few hundred agents, half in each organisation.
fn people() -> Vec<(usize, PersonRecord)> {
    let mut out = Vec::new();
    let mut n = 0u128;
    for (org, (_, _, domain)) in ORGS.iter().enumerate() {
        for first in FIRST {
            for last in LAST.iter().take(5) {
                n += 1;
                let sam = format!("{}.{}", slug(first), slug(last));
                let dc = if org == 0 {
                    "DC=plainecommune,DC=local"
                } else {
                    "DC=saint-denis,DC=local"
                };
                out.push((
                    org,
                    PersonRecord {
                        object_guid: Uuid::from_u128(0xDE30_0000 + n),
                        dn: format!("CN={first} {last},OU=Agents,{dc}"),
                        sam_account_name: sam.clone(),
                        user_principal_name: Some(format!("{sam}@{domain}")),
                        display_name: format!("{first} {last}"),
                        department: Some(
                            ["Urbanisme", "Culture", "Voirie", "Finances", "Jeunesse"][(n % 5) as usize].into(),
                        ),
                        manager_dn: None,
                        legacy_exchange_dn: None,
                        x500_addresses: Vec::new(),
                        addresses: vec![SmtpAddress {
                            address: format!("{sam}@{domain}"),
                            primary: true,
                        }],
                        disabled: false,
                        usn_changed: Some(1),
                    },
                ));
            }
        }
    }
    out
}

fn seed(items: &[Item], people: &[(usize, PersonRecord)]) -> Seed {
    let mut mailboxes: Vec<serde_json::Value> = items
        .iter()
        .map(|i| {
            json!({
                "smtp": i.smtp,
                "name": i.name,
                "kind": if i.kind == "salle" { "room" } else { "equipment" },
            })
        })
        .collect();
    for (_, p) in people {
        if let Some(a) = p.addresses.first() {
            mailboxes.push(json!({ "smtp": a.address, "name": p.display_name, "kind": "user" }));
        }
    }
    let room_lists: Vec<serde_json::Value> = SITES
        .iter()
        .enumerate()
        .map(|(s, site)| {
            json!({
                "smtp": format!("salles.{}@{}", site.slug, ORGS[site.org].2),
                "name": format!("Salles – {}", site.name),
                "rooms": items.iter().filter(|i| i.site == s && i.kind == "salle").map(|i| i.smtp.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = json!({
        "mailboxes": mailboxes,
        "room_lists": room_lists,
        "service_account": { "login": SERVICE_LOGIN, "password": SERVICE_PASSWORD },
    });
    serde_json::from_value(value).unwrap_or_default()
}

/// Fills an empty database with the inventory, people, groups, grants and
/// policies. Does nothing when organisations exist already.
async fn populate(
    store: &Store,
    items: &[Item],
    people: &[(usize, PersonRecord)],
    clock: &SharedClock,
) -> Result<(), String> {
    let e = |e: crate::store::StoreError| e.to_string();
    if !store.list_organisations().await.map_err(e)?.is_empty() {
        return Ok(());
    }
    let now = clock.now();
    let mut orgs = Vec::new();
    for (slug, name, _) in ORGS {
        orgs.push(store.create_organisation(slug, name).await.map_err(e)?);
    }
    let mut sites = Vec::new();
    for s in &SITES {
        sites.push(
            store
                .create_site(orgs[s.org].id, s.slug, s.name, "Europe/Paris")
                .await
                .map_err(e)?,
        );
    }
    let mut types = HashMap::new();
    for (slug, cat, fr, en) in [
        ("salle", Category::Room, "Salle de réunion", "Meeting room"),
        ("voiture", Category::Vehicle, "Voiture", "Car"),
        ("velo", Category::Vehicle, "Vélo", "Bicycle"),
        ("portable", Category::Equipment, "Ordinateur portable", "Laptop"),
        ("telephone", Category::Equipment, "Téléphone mobile", "Mobile phone"),
        ("cle-3g", Category::Equipment, "Clé 3G", "3G dongle"),
        (
            "videoprojecteur",
            Category::Equipment,
            "Vidéoprojecteur",
            "Video projector",
        ),
    ] {
        types.insert(slug, store.create_resource_type(slug, cat, fr, en).await.map_err(e)?);
    }
    let mut resource_ids = HashMap::new();
    for i in items {
        let Some(t) = types.get(i.kind) else { continue };
        let created = store
            .create_resource(&NewResource {
                site_id: sites[i.site].id,
                resource_type_id: t.id,
                name: &i.name,
                mailbox_smtp: &i.smtp,
                exchange_endpoint: ENDPOINT,
                capacity: i.capacity,
            })
            .await
            .map_err(e)?;
        resource_ids.insert(i.smtp.as_str(), created.id);
    }
    seed_fleet(store, items, &resource_ids, sites[0].id).await?;
    if let Some(room) = types.get("salle") {
        seed_room_equipment(store, room.id, items, &resource_ids).await?;
    }
    // People and groups, one directory per organisation.
    for (o, (slug, name, _)) in ORGS.iter().enumerate() {
        let dir = store.ensure_directory_of(slug, Some(slug)).await.map_err(e)?;
        let mine: Vec<PersonRecord> = people
            .iter()
            .filter(|(org, _)| *org == o)
            .map(|(_, p)| p.clone())
            .collect();
        let drivers: Vec<String> = mine.iter().step_by(3).map(|p| p.dn.clone()).collect();
        let dc = if o == 0 {
            "DC=plainecommune,DC=local"
        } else {
            "DC=saint-denis,DC=local"
        };
        let mut groups = vec![
            GroupRecord {
                object_guid: Uuid::from_u128(0xD0_0000 + o as u128 * 10),
                dn: format!("CN=Agents {name},OU=Groupes,{dc}"),
                sam_account_name: format!("agents-{slug}"),
                name: format!("Agents {name}"),
                description: None,
                member_dns: mine.iter().map(|p| p.dn.clone()).collect(),
                usn_changed: Some(1),
            },
            GroupRecord {
                object_guid: Uuid::from_u128(0xD0_0001 + o as u128 * 10),
                dn: format!("CN=Conducteurs {name},OU=Groupes,{dc}"),
                sam_account_name: format!("conducteurs-{slug}"),
                name: format!("Conducteurs {name}"),
                description: Some("Agents autorisés à conduire un véhicule de service".into()),
                member_dns: drivers,
                usn_changed: Some(1),
            },
        ];
        if o == 0
            && let Some(admin) = mine.first()
        {
            // The demo's administrator (Plaine Commune's first agent).
            groups.push(GroupRecord {
                object_guid: Uuid::from_u128(0xD0_0009),
                dn: format!("CN=Administrateurs resa,OU=Groupes,{dc}"),
                sam_account_name: DEMO_ADMIN_GROUP.into(),
                name: "Administrateurs resa".into(),
                description: Some("Administrent resa".into()),
                member_dns: vec![admin.dn.clone()],
                usn_changed: Some(1),
            });
        }
        store
            .apply_directory_sync(
                dir.id,
                SyncBatch {
                    full: true,
                    people: &mine,
                    groups: &groups,
                    highest_usn: Some(1),
                    usn_server: None,
                },
                now,
            )
            .await
            .map_err(e)?;
        let agents = store
            .group_by_account(slug, &format!("agents-{slug}"))
            .await
            .map_err(e)?;
        let conducteurs = store
            .group_by_account(slug, &format!("conducteurs-{slug}"))
            .await
            .map_err(e)?;
        if let Some(g) = agents {
            // Agents book the rooms of their own organisation…
            store
                .create_grant(&NewGrant {
                    subject: GrantSubject::Group(g.id),
                    scope: GrantScope::Organisation(orgs[o].id),
                    role: GrantRole::Book,
                    created_by: None,
                })
                .await
                .map_err(e)?;
            // …and ask for the shared equipment.
            // (A projector is asked for: its manager approves.)
            for t in ["portable", "telephone", "cle-3g", "videoprojecteur", "velo"] {
                if let Some(rt) = types.get(t) {
                    store
                        .create_grant(&NewGrant {
                            subject: GrantSubject::Group(g.id),
                            scope: GrantScope::ResourceType(rt.id),
                            role: if t == "videoprojecteur" {
                                GrantRole::Request
                            } else {
                                GrantRole::Book
                            },
                            created_by: None,
                        })
                        .await
                        .map_err(e)?;
                }
            }
        }
        // In each organisation one agent manages the rooms of its first site.
        if let Some(p) = mine.get(DEMO_MANAGERS[o])
            && let Some(manager) = store.person_by_guid(slug, p.object_guid).await.map_err(e)?
            && let Some(site) = SITES.iter().position(|s| s.org == o)
            && let Some(salle) = types.get("salle")
        {
            store
                .create_grant(&NewGrant {
                    subject: GrantSubject::Person(manager.id),
                    scope: GrantScope::SiteType {
                        site: sites[site].id,
                        resource_type: salle.id,
                    },
                    role: GrantRole::Manage,
                    created_by: None,
                })
                .await
                .map_err(e)?;
        }
        if conducteurs.is_some() {
            seed_licences(store, slug, people, o, now).await?;
        }
        if o == 0
            && let Some(p) = mine.get(DEMO_MANAGERS[0])
            && let Some(manager) = store.person_by_guid(slug, p.object_guid).await.map_err(e)?
            && let Some(projectors) = types.get("videoprojecteur")
        {
            seed_projector_circuit(store, manager.id, projectors.id, now).await?;
        }
        if let (Some(g), Some(cars)) = (conducteurs, types.get("voiture")) {
            store
                .create_grant(&NewGrant {
                    subject: GrantSubject::Group(g.id),
                    scope: GrantScope::ResourceType(cars.id),
                    role: GrantRole::Book,
                    created_by: None,
                })
                .await
                .map_err(e)?;
        }
    }
    // Rules: the built-in defaults, tightened where the customer asked.
    let weekdays = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
    let global = Policy {
        default_right: Some(crate::domain::policy::DefaultRight::None),
        booking_window_days: Some(180),
        closed_on_public_holidays: Some(true),
        conflict_max_count: Some(3),
        conflict_max_percent: Some(20),
        ..Policy::default()
    };
    store.set_policy(Scope::Global, &global, now).await.map_err(e)?;
    if let (Some(salle), Some(hours)) = (types.get("salle"), TimeRange::hm((8, 0), (20, 0))) {
        let rooms = Policy {
            opening_hours: Some(WeeklyHours::uniform(&weekdays, hours)),
            max_duration_minutes: Some(240),
            enforce_capacity: Some(true),
            buffer_after_minutes: Some(0),
            ..Policy::default()
        };
        store
            .set_policy(Scope::ResourceType(salle.id), &rooms, now)
            .await
            .map_err(e)?;
    }
    if let Some(cars) = types.get("voiture") {
        let cars_policy = Policy {
            buffer_after_minutes: Some(30),
            min_notice_minutes: Some(60),
            max_duration_minutes: Some(3 * 24 * 60),
            ..Policy::default()
        };
        store
            .set_policy(Scope::ResourceType(cars.id), &cars_policy, now)
            .await
            .map_err(e)?;
    }
    Ok(())
}

/// A one-step validation circuit for the projectors, approved by Plaine
/// Commune's manager in Outlook (voting buttons), by reply, or on the web.
async fn seed_projector_circuit(
    store: &Store,
    approver: Uuid,
    projectors: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let def = CircuitDef {
        name: "Prêt de vidéoprojecteur".into(),
        label_fr: Some("Prêt de vidéoprojecteur".into()),
        label_en: Some("Projector loan".into()),
        priority: 0,
        // A circuit without conditions would apply to every held request.
        conditions: vec![Condition::ResourceType { id: projectors }],
        deadline_hours: Some(72),
        final_outcome: FinalOutcome::Decline,
        steps: vec![StepDef {
            quorum: Quorum::One,
            deadline_hours: Some(24),
            reminder_hours: Some(8),
            backup: None,
            approvers: vec![ApproverDef::Person { person: approver }],
        }],
    };
    let (circuit, _) = store.save_circuit(None, &def, None, now).await.map_err(e)?;
    let policy = Policy {
        approval_circuit: Some(Some(circuit)),
        ..Policy::default()
    };
    store
        .set_policy(Scope::ResourceType(projectors), &policy, now)
        .await
        .map_err(e)?;
    Ok(())
}

/// The meeting rooms' equipment, each a yes or no the search filters on:
/// half the rooms have video conferencing, a third a screen, a quarter a
/// whiteboard and a fifth step-free access, spread over the sites.
async fn seed_room_equipment(
    store: &Store,
    room_type: uuid::Uuid,
    items: &[Item],
    resource_ids: &HashMap<&str, uuid::Uuid>,
) -> Result<(), String> {
    use crate::store::equipment::{AttrValue, AttributeDef, ValueType};
    let e = |e: crate::store::StoreError| e.to_string();
    let pieces = [
        ("visio", "Visioconférence", "Video conferencing"),
        ("ecran", "Écran ou vidéoprojecteur", "Screen or projector"),
        ("tableau_blanc", "Tableau blanc", "Whiteboard"),
        ("acces_pmr", "Accessible en fauteuil roulant", "Wheelchair accessible"),
    ];
    for (key, fr, en) in pieces {
        store
            .add_attribute_definition(&AttributeDef {
                resource_type_id: room_type,
                key: key.into(),
                value_type: ValueType::Boolean,
                choices: Vec::new(),
                required: false,
                label_fr: fr.into(),
                label_en: en.into(),
            })
            .await
            .map_err(e)?;
    }
    for (n, i) in items.iter().filter(|i| i.kind == "salle").enumerate() {
        let Some(id) = resource_ids.get(i.smtp.as_str()) else {
            continue;
        };
        let values: Vec<(String, Option<AttrValue>)> = pieces
            .iter()
            .enumerate()
            .map(|(p, (key, _, _))| ((*key).to_owned(), Some(AttrValue::Boolean((n + p) % (p + 2) == 0))))
            .collect();
        store.set_resource_attributes(*id, &values).await.map_err(e)?;
    }
    Ok(())
}

/// Vehicle data Exchange does not carry: plates, energy, range, licence class
/// and where the keys are; then the pool's members.
async fn seed_fleet(store: &Store, items: &[Item], ids: &HashMap<&str, Uuid>, home_site: Uuid) -> Result<(), String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let mut cars = Vec::new();
    for (n, item) in items
        .iter()
        .filter(|i| i.kind == "voiture" && i.smtp != POOL_SMTP)
        .enumerate()
    {
        let Some(&id) = ids.get(item.smtp.as_str()) else {
            continue;
        };
        let electric = n < ELECTRIC_CARS;
        let energy = match n % 3 {
            _ if electric => Energy::Electric,
            0 => Energy::Diesel,
            1 => Energy::Petrol,
            _ => Energy::Hybrid,
        };
        store
            .set_vehicle(&VehicleData {
                resource_id: id,
                plate: format!("G{}-{:03}-PC", (b'A' + (n % 26) as u8) as char, 100 + n),
                seats: 5,
                energy,
                range_km: Some(if electric { 300 } else { 750 }),
                licence_class: Some(LicenceClass::B),
                home_site_id: Some(home_site),
                key_location: Some(format!("armoire à clés de l'accueil, crochet {:02}", n + 1)),
                odometer_km: Some(8_000 + 731 * n as u32),
                full_charge_minutes: electric.then_some(480),
            })
            .await
            .map_err(e)?;
        cars.push(id);
    }
    if let Some(&pool) = ids.get(POOL_SMTP) {
        store.set_pool_members(pool, &cars).await.map_err(e)?;
    }
    Ok(())
}

/// The licences of the drivers group (every third agent, as in the group's
/// members), as a fleet manager would have entered them: class B,
/// valid for years, except one that has expired (its holder's requests for a
/// car are declined with that reason). The third is expired, not the second:
/// the second is the driver the demo's sign-in page offers.
async fn seed_licences(
    store: &Store,
    slug: &str,
    people: &[(usize, PersonRecord)],
    org: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let mine = people.iter().filter(|(o, _)| *o == org).map(|(_, p)| p);
    for (n, p) in mine.step_by(3).enumerate() {
        let Some(person) = store.person_by_guid(slug, p.object_guid).await.map_err(e)? else {
            continue;
        };
        let expires_on = if n == 2 {
            NaiveDate::from_ymd_opt(2025, 6, 30)
        } else {
            NaiveDate::from_ymd_opt(2034, 12, 31)
        };
        let licence = DriverLicence {
            classes: vec![LicenceClass::B],
            expires_on,
        };
        store
            .set_driver_licence(person.id, &licence, LicenceSource::Manager, now)
            .await
            .map_err(e)?;
    }
    Ok(())
}

const SUBJECTS: [&str; 7] = [
    "Comité de pilotage",
    "Point d'équipe",
    "Réunion de service",
    "Formation",
    "Entretien",
    "Déplacement chantier",
    "Atelier budget",
];

/// Simulated Outlook users: invitations (some weekly series), updates and
/// cancellations, through the simulator's control API.
async fn activity(
    control: String,
    items: Vec<Item>,
    people: Vec<String>,
    per_minute: u32,
    clock: SharedClock,
    cancel: CancellationToken,
) {
    if per_minute == 0 || people.is_empty() || items.is_empty() {
        return;
    }
    let http = reqwest::Client::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5e5a);
    let mut sent: Vec<(String, String)> = Vec::new();
    let pause = std::time::Duration::from_millis(60_000 / u64::from(per_minute));
    let paris = chrono_tz::Europe::Paris;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
        let organiser = people.choose(&mut rng).cloned().unwrap_or_default();
        let roll: u32 = rng.random_range(0..100);
        let (path, body) = if roll < 8 && !sent.is_empty() {
            let (who, uid) = sent.swap_remove(rng.random_range(0..sent.len()));
            ("/cancel", json!({ "as": who, "uid": uid }))
        } else if roll < 16 && !sent.is_empty() {
            let (who, uid) = sent[rng.random_range(0..sent.len())].clone();
            let day = clock.now().with_timezone(&paris).date_naive() + Duration::days(rng.random_range(1..15));
            let hour = rng.random_range(8..17);
            let start = day.and_hms_opt(hour, 0, 0).unwrap_or_default();
            let end = start + Duration::hours(1);
            (
                "/update",
                json!({ "as": who, "uid": uid, "start": start.format("%Y-%m-%dT%H:%M:%S").to_string(),
                        "end": end.format("%Y-%m-%dT%H:%M:%S").to_string(), "time_zone": "Europe/Paris" }),
            )
        } else {
            // Rooms of the organiser's own organisation most of the time,
            // sometimes a car or equipment of the shared pool.
            let domain = organiser.rsplit('@').next().unwrap_or_default();
            let rooms: Vec<&Item> = items
                .iter()
                .filter(|i| i.kind == "salle" && i.smtp.ends_with(domain))
                .collect();
            let item = if rng.random_range(0..10) < 8 {
                rooms.choose(&mut rng).copied()
            } else {
                items.choose(&mut rng)
            };
            let Some(item) = item else { continue };
            let mut day: NaiveDate =
                clock.now().with_timezone(&paris).date_naive() + Duration::days(rng.random_range(1..15));
            while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                day += Duration::days(1);
            }
            let start = day
                .and_hms_opt(rng.random_range(8..18), [0, 30][rng.random_range(0..2)], 0)
                .unwrap_or_default();
            let end = start + Duration::minutes([30, 60, 60, 90, 120, 300][rng.random_range(0..6)]);
            let how_many = rng.random_range(1..6);
            let guests: Vec<String> = people.choose_multiple(&mut rng, how_many).cloned().collect();
            let subject = SUBJECTS[rng.random_range(0..SUBJECTS.len())];
            let mut body = json!({
                "as": organiser,
                "subject": subject,
                "start": start.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "end": end.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "time_zone": "Europe/Paris",
                "attendees": guests,
                "resources": [item.smtp],
            });
            if roll > 90 {
                let days = ["MO", "TU", "WE", "TH", "FR"];
                let wd = days[start.weekday().num_days_from_monday().min(4) as usize];
                body["recurrence"] = json!(format!("FREQ=WEEKLY;BYDAY={wd};COUNT={}", rng.random_range(4..12)));
            }
            ("/invite", body)
        };
        let result = http
            .post(format!("{control}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        if let Ok(r) = result
            && path == "/invite"
            && let Ok(bytes) = r.bytes().await
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(uid) = v["uid"].as_str()
        {
            sent.push((organiser, uid.to_owned()));
        }
    }
}

/// The people the demo's login page offers, with what the seed made them:
/// in each organisation an administrator or a manager, then agents.
async fn demo_accounts(
    store: &Store,
    people: &[(usize, PersonRecord)],
) -> Result<crate::web::pages::auth::DemoLogin, String> {
    use crate::web::session::Role;
    let picks: [(usize, usize, Role, &str); 6] = [
        (0, 0, Role::Admin, "Plaine Commune — administre resa"),
        (
            0,
            DEMO_MANAGERS[0],
            Role::Manager,
            "Plaine Commune — gère les salles du siège",
        ),
        (0, 3, Role::Agent, "Plaine Commune — agent, autorisé à conduire"),
        (0, 2, Role::Agent, "Plaine Commune — agent"),
        (
            1,
            DEMO_MANAGERS[1],
            Role::Manager,
            "Ville de Saint-Denis — gère les salles de l'hôtel de ville",
        ),
        (1, 7, Role::Agent, "Ville de Saint-Denis — agent"),
    ];
    let mut accounts = Vec::new();
    for (org, index, role, note) in picks {
        let Some((_, p)) = people.iter().filter(|(o, _)| *o == org).nth(index) else {
            continue;
        };
        let found = store
            .person_by_guid(ORGS[org].0, p.object_guid)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(person) = found {
            accounts.push(crate::web::pages::auth::DemoAccount {
                person_id: person.id,
                name: p.display_name.clone(),
                role,
                note: note.to_owned(),
            });
        }
    }
    Ok(crate::web::pages::auth::DemoLogin { accounts })
}

/// A running demo.
pub struct Demo {
    pub web_url: String,
    pub sim: SimHandle,
    pub database_url: String,
    pub store: Store,
    daemon: Daemon,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _cluster: Cluster,
}

impl Demo {
    /// Starts everything; returns once it all listens.
    pub async fn start(opts: DemoOptions, clock: SharedClock) -> Result<Demo, String> {
        // The demo signs people in without a password: it must stay on this
        // machine.
        let listen: std::net::SocketAddr = opts.listen.parse().map_err(|e| {
            format!(
                "{} : adresse d'écoute invalide / invalid listen address ({e})",
                opts.listen
            )
        })?;
        if !listen.ip().is_loopback() {
            return Err(format!(
                "{} : la démonstration n'écoute que sur la boucle locale (127.0.0.1 ou ::1) / \
                 the demo listens on loopback only",
                opts.listen
            ));
        }
        std::fs::create_dir_all(&opts.data_dir).map_err(|e| format!("{}: {e}", opts.data_dir.display()))?;
        let data_dir = opts
            .data_dir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", opts.data_dir.display()))?;
        let pg_dir = if crate::devdb::reachable_by_others(&data_dir.join("pg")) || !nix::unistd::geteuid().is_root() {
            data_dir.join("pg")
        } else {
            // Run as root from a private folder: the server's own user must
            // reach its data, so it lives in the temporary directory instead.
            std::env::temp_dir().join(format!("resa-demo-pg-{}", slug(&data_dir.display().to_string())))
        };
        let cluster = tokio::task::spawn_blocking(move || Cluster::start(&pg_dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
            .await
            .map_err(|e| e.to_string())?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'resa')")
            .fetch_one(&mut admin)
            .await
            .map_err(|e| e.to_string())?;
        if !exists {
            sqlx::query("CREATE DATABASE resa")
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
        }
        let _ = admin.close().await;
        let database_url = cluster.url("resa");
        let store = Store::connect(&database_url, 10).await.map_err(|e| e.to_string())?;
        store.migrate().await.map_err(|e| e.to_string())?;

        let items = inventory();
        let people = people();
        populate(&store, &items, &people, &clock).await?;
        // The site's address is known once bound; approval messages carry
        // single-use links to it, signed with the site's secret.
        let listener = tokio::net::TcpListener::bind(&opts.listen)
            .await
            .map_err(|e| format!("{}: {e}", opts.listen))?;
        let web_url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let secret_key: Arc<[u8]> = Arc::from(&rand::random::<[u8; 32]>()[..]);
        let store = match crate::notify::links::LinkSigner::new(&secret_key, &web_url) {
            Some(signer) => store.with_link_signer(signer),
            None => store,
        };

        let mut sim_opts = SimOptions::new(
            opts.sim_listen.clone(),
            seed(&items, &people),
            ServerVersion::Exchange2016,
        );
        sim_opts.state_file = Some(data_dir.join("exchange-sim.json"));
        sim_opts.clock = clock.clone();
        let sim = Simulator::start(sim_opts).await.map_err(|e| e.to_string())?;

        let url = url::Url::parse(&sim.ews_url()).map_err(|e| e.to_string())?;
        let (domain, user) = SERVICE_LOGIN.split_once('\\').unwrap_or(("", SERVICE_LOGIN));
        let auth = Auth::Ntlm(NtlmCredentials {
            domain: domain.into(),
            user: user.into(),
            password: SERVICE_PASSWORD.into(),
            workstation: "RESA-DEMO".into(),
        });
        let client = Client::new(ClientConfig::new(url, ServerVersion::Exchange2016, auth), clock.clone())
            .map_err(|e| e.to_string())?;
        let metrics = Arc::new(Metrics::default());
        let exchange = EwsExchange::new(Arc::new(client), true, chrono_tz::Europe::Paris).with_metrics(metrics.clone());
        let ctx = SyncContext {
            store: store.clone(),
            exchanges: HashMap::from([(ENDPOINT.to_owned(), exchange)]),
            clock: clock.clone(),
            instance: crate::runtime::instance_name(),
            metrics: metrics.clone(),
        };
        let daemon = Daemon::start(
            ctx,
            Pacing {
                lease: Duration::seconds(30),
                poll: std::time::Duration::from_secs(2),
                outbox_idle: std::time::Duration::from_millis(200),
                reconcile: std::time::Duration::from_secs(60),
            },
        );
        let cancel = CancellationToken::new();
        let web_state = crate::web::WebState {
            store: store.clone(),
            clock: clock.clone(),
            directories: Vec::new().into(),
            admin_groups: vec![crate::web::AdminGroup {
                directory: ORGS[0].0.to_owned(),
                group: DEMO_ADMIN_GROUP.to_owned(),
            }],
            secret_key,
            // Plain HTTP on loopback.
            secure_cookies: false,
            exchange_endpoints: vec![ENDPOINT.to_owned()],
            outbox_wake: Some(daemon.outbox_wake()),
        };
        let demo_login = Arc::new(demo_accounts(&store, &people).await?);
        let app = crate::runtime::ops_router(store.clone(), metrics)
            .merge(crate::web::router(web_state))
            .layer(axum::Extension(demo_login));
        let web_cancel = cancel.clone();
        let web = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { web_cancel.cancelled().await })
                .await;
        });
        let addresses: Vec<String> = people
            .iter()
            .filter_map(|(_, p)| p.addresses.first().map(|a| a.address.clone()))
            .collect();
        let generator = tokio::spawn(activity(
            sim.control_url(),
            items,
            addresses,
            opts.activity_per_minute,
            clock,
            cancel.clone(),
        ));
        Ok(Demo {
            web_url,
            sim,
            database_url,
            store,
            daemon,
            cancel,
            tasks: vec![web, generator],
            _cluster: cluster,
        })
    }

    /// Stops the generator, the web listener, the daemon, the simulator (its
    /// state saved) and PostgreSQL, in that order.
    pub async fn stop(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.daemon.shutdown().await;
        self.sim.shutdown().await;
        self.store.pool().close().await;
    }
}

/// Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `resa demo`: runs until Ctrl-C.
pub async fn run(opts: DemoOptions) -> Result<(), String> {
    crate::runtime::init_logging(&crate::config::Log::default());
    let demo = Demo::start(opts, crate::clock::system()).await?;
    println!();
    println!("resa demo — tout tourne sur la boucle locale / everything runs on loopback");
    println!("  Site web / web site      : {}/login", demo.web_url);
    println!("    (connexion de démonstration sans mot de passe / demonstration sign-in, no password)");
    println!("  Métriques / metrics      : {}/metrics", demo.web_url);
    println!("  Santé / health           : {}/healthz", demo.web_url);
    println!("  Exchange simulé (EWS)    : {}", demo.sim.ews_url());
    println!(
        "  API de contrôle          : {}  (ex. GET {}/mailboxes/salle.cezanne@plainecommune.fr/calendar)",
        demo.sim.control_url(),
        demo.sim.control_url()
    );
    println!("  PostgreSQL               : psql {}", demo.database_url);
    println!("  Ctrl-C pour arrêter / to stop");
    wait_for_stop().await;
    println!("Arrêt… / stopping…");
    demo.stop().await;
    Ok(())
}
