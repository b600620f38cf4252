//! Reports on a small known data set, checked against figures computed by
//! hand; retention keeps them; the benchmark's generated data set is sane.
//!
//! The week of Monday 30 November 2026 (Paris), two rooms of Plaine Commune
//! open Monday to Friday 08:00–18:00 (50 hours each), capacity enforced:
//!
//! | uid | organiser (organisation) | room    | when (Paris)      | attendees | outcome                       |
//! |-----|--------------------------|---------|-------------------|-----------|-------------------------------|
//! | a   | alice (Plaine Commune)   | Cézanne | Tue 09:00–10:00   | 4         | accepted                      |
//! | b   | bob (Plaine Commune)     | Cézanne | Tue 09:30–10:30   | 4         | declined: conflict            |
//! | c   | carol (Saint-Denis)      | Cézanne | Tue 11:00–13:30   | 6         | accepted                      |
//! | d   | alice                    | Cézanne | Wed 14:00–15:00   | 12        | declined: capacity            |
//! | e   | alice                    | Cézanne | Thu 17:00–19:00   | 4         | declined: opening hours       |
//! | f   | alice                    | Cézanne | Fri 10:00–11:00   | 4         | accepted, then cancelled      |
//! | g   | carol, 10 days earlier   | Cézanne | Thu 09:00–10:00   | 8         | accepted                      |
//! | h   | bob (may only request)   | Monet   | Wed 10:00–12:00   | 3         | held, approved 3 hours later  |
//! | i   | bob                      | Monet   | Thu 14:00–15:00   | 3         | held, never answered          |
//!
//! Requests are made on Monday 30 November at 08:00 unless said otherwise.

use crate::harness::{TestDb, person, room_fixture, test_db};
use crate::requests::tue;
use chrono::{DateTime, Duration, TimeZone, Utc};
use resa::directory::entry::{GroupRecord, PersonRecord};
use resa::domain::policy::WeeklyHours;
use resa::domain::{Lang, Policy, Scope, When};
use resa::reports::{self, Cell, Report};
use resa::store::Store;
use resa::store::bookings::Source;
use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant, SyncBatch};
use resa::store::reports::ReportFilter;
use resa::store::requests::{IncomingRequest, Recorded};
use resa::store::web::ManagerVerdict;
use sqlx::Row;
use uuid::Uuid;

const H: f64 = 3600.0;

/// Monday 30 November 2026, 08:00 in Paris.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 7, 0, 0).single().expect("valid")
}

/// Day `d` of December 2026 at h:m, Paris time.
/// Paris time in 2026, on the hour.
fn local(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, month, day, hour, 0, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc)
}

fn dec(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 12, d, h, m, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc)
}

fn week() -> ReportFilter {
    ReportFilter::range(
        chrono_tz::Europe::Paris
            .with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc),
        dec(7, 0, 0),
    )
}

struct Known {
    store: Store,
    cezanne: Uuid,
    monet: Uuid,
    saint_denis: Uuid,
    plaine_commune: Uuid,
    site: Uuid,
    _db: TestDb,
}

async fn sync(store: &Store, directory: &str, organisation: &str, people: &[PersonRecord], groups: &[GroupRecord]) {
    let dir = store
        .ensure_directory_of(directory, Some(organisation))
        .await
        .expect("directory");
    store
        .apply_directory_sync(
            dir.id,
            SyncBatch {
                full: true,
                people,
                groups,
                highest_usn: Some(1),
                usn_server: None,
            },
            now(),
        )
        .await
        .expect("sync");
}

fn request(
    resource: Uuid,
    uid: &str,
    organiser: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    n: u32,
) -> IncomingRequest {
    IncomingRequest {
        resource_id: resource,
        uid: uid.into(),
        sequence: 0,
        source: Source::Exchange,
        organiser_address: organiser.into(),
        organiser_name: Some(format!("Organisateur {uid}")),
        subject: Some(format!("Réunion confidentielle {uid}")),
        attendees: n,
        when: When::Single { start, end },
        exchange_item_id: Some(format!("item-{uid}")),
        requested_at: now(),
    }
}

fn booking_of(r: &Recorded) -> Uuid {
    match r {
        Recorded::Decided { booking_id, .. } => *booking_id,
        other => panic!("not decided: {other:?}"),
    }
}

async fn known() -> Known {
    use resa::store::catalogue::NewResource;
    let db = test_db().await;
    let store = db.store().clone();
    let fixture = room_fixture(&store, "salle.cezanne@plainecommune.fr", "pc", 10).await;
    let kind = store.resource_type_by_slug("salle").await.expect("q").expect("type");
    let monet = store
        .create_resource(&NewResource {
            site_id: fixture.site,
            resource_type_id: kind,
            name: "Salle Monet",
            mailbox_smtp: "salle.monet@plainecommune.fr",
            exchange_endpoint: "pc",
            capacity: Some(20),
        })
        .await
        .expect("monet");
    let saint_denis = store
        .create_organisation("saint-denis", "Saint-Denis")
        .await
        .expect("org")
        .id;
    let pc = [
        person(1, "alice", "Alice Martin", "alice@plainecommune.fr"),
        person(2, "bob", "Bob Durand", "bob@plainecommune.fr"),
        person(4, "dora", "Dora Gestion", "dora@plainecommune.fr"),
        person(5, "erin", "Erin Admin", "erin@plainecommune.fr"),
    ];
    let admins = GroupRecord {
        object_guid: Uuid::from_u128(100),
        dn: "CN=GG-Resa-Admins,OU=Groupes,DC=pc,DC=local".into(),
        sam_account_name: "GG-Resa-Admins".into(),
        name: "GG-Resa-Admins".into(),
        description: None,
        member_dns: vec![pc[3].dn.clone()],
        usn_changed: Some(1),
    };
    sync(&store, "pc", "plaine-commune", &pc, &[admins]).await;
    sync(
        &store,
        "sd",
        "saint-denis",
        &[person(3, "carol", "Carol Petit", "carol@saint-denis.fr")],
        &[],
    )
    .await;
    // Dora manages Cézanne only.
    let dora = store
        .person_by_account("pc", "dora")
        .await
        .expect("q")
        .expect("dora")
        .id;
    store
        .create_grant(&NewGrant {
            subject: GrantSubject::Person(dora),
            scope: GrantScope::Resource(fixture.room.id),
            role: GrantRole::Manage,
            created_by: None,
        })
        .await
        .expect("grant");
    store
        .set_policy(
            Scope::Organisation(fixture.organisation),
            &Policy {
                opening_hours: Some(WeeklyHours::office()),
                enforce_capacity: Some(true),
                ..Policy::default()
            },
            now(),
        )
        .await
        .expect("policy");
    let bob = store.person_by_account("pc", "bob").await.expect("q").expect("bob").id;
    store
        .create_grant(&NewGrant {
            subject: GrantSubject::Person(bob),
            scope: GrantScope::Resource(monet.id),
            role: GrantRole::Request,
            created_by: None,
        })
        .await
        .expect("grant");

    let c = fixture.room.id;
    let m = monet.id;
    let s = &store;
    let record = |req: IncomingRequest| async move { s.record_request(&req, now()).await.expect("recorded") };
    record(request(c, "a", "alice@plainecommune.fr", tue(9, 0), tue(10, 0), 4)).await;
    record(request(c, "b", "bob@plainecommune.fr", tue(9, 30), tue(10, 30), 4)).await;
    record(request(c, "c", "carol@saint-denis.fr", tue(11, 0), tue(13, 30), 6)).await;
    record(request(
        c,
        "d",
        "alice@plainecommune.fr",
        dec(2, 14, 0),
        dec(2, 15, 0),
        12,
    ))
    .await;
    record(request(
        c,
        "e",
        "alice@plainecommune.fr",
        dec(3, 17, 0),
        dec(3, 19, 0),
        4,
    ))
    .await;
    record(request(
        c,
        "f",
        "alice@plainecommune.fr",
        dec(4, 10, 0),
        dec(4, 11, 0),
        4,
    ))
    .await;
    assert!(
        s.cancel_request(c, "f", 1, now() + Duration::hours(1))
            .await
            .expect("cancel")
    );
    let mut early = request(c, "g", "carol@saint-denis.fr", dec(3, 9, 0), dec(3, 10, 0), 8);
    early.requested_at = now() - Duration::days(10);
    s.record_request(&early, now() - Duration::days(10)).await.expect("g");
    let h = booking_of(&record(request(m, "h", "bob@plainecommune.fr", dec(2, 10, 0), dec(2, 12, 0), 3)).await);
    record(request(m, "i", "bob@plainecommune.fr", dec(3, 14, 0), dec(3, 15, 0), 3)).await;
    let alice = s.person_by_account("pc", "alice").await.expect("q").expect("alice").id;
    assert!(
        s.decide_held_booking(
            h,
            ManagerVerdict::Approve,
            alice,
            "D'accord",
            now() + Duration::hours(3)
        )
        .await
        .expect("approve")
    );
    Known {
        store,
        cezanne: c,
        monet: m,
        saint_denis,
        plaine_commune: fixture.organisation,
        site: fixture.site,
        _db: db,
    }
}

fn usage<'a>(r: &'a Report, name: &str) -> &'a reports::Occupancy {
    r.usage.iter().find(|o| o.usage.name == name).expect(name)
}

#[tokio::test]
async fn report_figures_match_the_hand_computed_ones() {
    let k = known().await;
    let r = reports::build(&k.store, &week()).await.expect("report");

    // Occupancy: Cézanne 1 + 2.5 + 1 hours of 50, Monet 2 hours of 50.
    let cezanne = usage(&r, "Salle Cézanne");
    assert_eq!(cezanne.usage.booked_seconds, 4.5 * H);
    assert_eq!(cezanne.open_seconds, 50.0 * H);
    assert_eq!(cezanne.rate(), Some(0.09));
    assert_eq!(
        (cezanne.usage.accepted, cezanne.usage.cancelled, cezanne.usage.released),
        (3, 1, 0)
    );
    let monet = usage(&r, "Salle Monet");
    assert_eq!(monet.usage.booked_seconds, 2.0 * H);
    assert_eq!(monet.rate(), Some(0.04));
    let ranked: Vec<&str> = r.by_occupancy().iter().map(|o| o.usage.name.as_str()).collect();
    assert_eq!(ranked, ["Salle Cézanne", "Salle Monet"]);

    // Heat map: booked seconds by (ISO weekday, hour).
    let mut expected = [[0.0; 24]; 7];
    expected[1][9] = H; // a
    expected[1][11] = H; // c
    expected[1][12] = H;
    expected[1][13] = 0.5 * H;
    expected[2][10] = H; // h
    expected[2][11] = H;
    expected[3][9] = H; // g
    assert_eq!(r.heat, expected);

    // Unmet demand.
    let mut reasons: Vec<(String, i64)> = r.reasons.iter().map(|x| (x.code.clone(), x.requests)).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("capacity".to_owned(), 1),
            ("conflict".to_owned(), 1),
            ("outside_opening_hours".to_owned(), 1)
        ]
    );
    assert_eq!(r.declines.len(), 1);
    assert_eq!(
        (
            r.declines[0].name.as_str(),
            r.declines[0].declined,
            r.declines[0].partially,
            r.declines[0].refused
        ),
        ("Salle Cézanne", 3, 0, 0)
    );

    // Two requests held, one approved after 3 hours, one still waiting.
    let a = &r.approvals;
    assert_eq!((a.held, a.approved, a.refused, a.undecided), (2, 1, 0, 1));
    assert_eq!(
        (a.mean_seconds, a.median_seconds, a.max_seconds),
        (Some(3.0 * H), Some(3.0 * H), Some(3.0 * H))
    );

    // Capacity fit: Cézanne (10 seats) 4, 6 and 8 attendees; Monet (20) 3.
    assert_eq!(r.capacity.len(), 2);
    let cap = r.capacity.iter().find(|c| c.resource_id == k.cezanne).expect("cezanne");
    assert_eq!((cap.capacity, cap.occurrences, cap.mean_attendees), (10, 3, 6.0));
    assert_eq!(cap.buckets, [0, 1, 1, 1, 0]);
    let cap = r.capacity.iter().find(|c| c.resource_id == k.monet).expect("monet");
    assert_eq!((cap.occurrences, cap.buckets), (1, [1, 0, 0, 0, 0]));

    // Lead time: 25 h (a), 27 h (c), 50 h (h), 13 days 1 hour (g).
    assert_eq!(r.lead.occurrences, 4);
    assert_eq!(r.lead.buckets, [0, 3, 1, 0]);
    assert_eq!(r.lead.median_seconds, Some(38.5 * H));
    assert_eq!(r.lead.mean_seconds, Some((25.0 + 27.0 + 50.0 + 313.0) / 4.0 * H));

    // Cost-sharing key: Saint-Denis 3.5 hours, Plaine Commune 3 hours.
    let orgs: Vec<(Option<Uuid>, f64, i64, i64)> = r
        .organisations
        .iter()
        .map(|o| (o.organisation_id, o.booked_seconds, o.occurrences, o.bookings))
        .collect();
    assert_eq!(
        orgs,
        [
            (Some(k.saint_denis), 3.5 * H, 2, 2),
            (Some(k.plaine_commune), 3.0 * H, 2, 2)
        ]
    );

    // The same figures as the page and the CSV write them.
    let fr = r.section(Lang::Fr, "organisations").expect("section");
    assert_eq!(fr.table.rows[0][2].show(Lang::Fr), "53,8\u{202F}%");
    let csv = String::from_utf8(fr.table.csv(Lang::Fr)).expect("utf-8");
    assert!(csv.contains("Saint-Denis;3,5;53,8;2;2;0\n"), "{csv}");
    let occ = r.section(Lang::En, "occupancy").expect("section");
    assert_eq!(occ.table.rows[0][7], Cell::Pct(Some(0.09)));
    let csv = String::from_utf8(occ.table.csv(Lang::En)).expect("utf-8");
    assert!(
        csv.contains("Salle Cézanne,Siège,Plaine Commune,Room,3,4.5,50.0,9.0\n"),
        "{csv}"
    );
}

#[tokio::test]
async fn filters_narrow_every_report() {
    let k = known().await;
    // One resource.
    let mut f = week();
    f.resource_id = Some(k.monet);
    let r = reports::build(&k.store, &f).await.expect("report");
    assert_eq!(r.usage.len(), 1);
    assert_eq!(r.usage[0].usage.booked_seconds, 2.0 * H);
    assert!(r.reasons.is_empty() && r.declines.is_empty());
    assert_eq!(r.approvals.held, 2);
    assert_eq!(r.organisations.len(), 1);

    // A manager who sees only Cézanne.
    let mut f = week();
    f.visible = Some(vec![k.cezanne]);
    let r = reports::build(&k.store, &f).await.expect("report");
    assert_eq!(r.usage.len(), 1);
    assert_eq!(r.approvals.held, 0);
    assert_eq!(r.reasons.len(), 3);

    // The organisation of the resources (Saint-Denis has none here).
    let mut f = week();
    f.organisation_id = Some(k.saint_denis);
    let r = reports::build(&k.store, &f).await.expect("report");
    assert!(r.usage.is_empty() && r.organisations.is_empty() && r.capacity.is_empty());
    assert_eq!(r.lead.occurrences, 0);
    let mut f = week();
    f.site_id = Some(k.site);
    assert_eq!(reports::build(&k.store, &f).await.expect("report").usage.len(), 2);

    // Tuesday only: a and c, clipped to the day; 10 open hours per room.
    let tuesday = ReportFilter::range(dec(1, 0, 0), dec(2, 0, 0));
    let r = reports::build(&k.store, &tuesday).await.expect("report");
    assert_eq!(usage(&r, "Salle Cézanne").usage.booked_seconds, 3.5 * H);
    assert_eq!(usage(&r, "Salle Cézanne").open_seconds, 10.0 * H);
    // Part of a meeting: Tuesday 12:00 to 13:00 holds one hour of c.
    let noon = ReportFilter::range(tue(12, 0), tue(13, 0));
    let r = reports::build(&k.store, &noon).await.expect("report");
    assert_eq!(usage(&r, "Salle Cézanne").usage.booked_seconds, H);
}

#[tokio::test]
async fn retention_anonymises_old_bookings_and_the_reports_stay_the_same() {
    let k = known().await;
    let before = reports::build(&k.store, &week()).await.expect("report");
    // Nothing is old yet.
    let run = k
        .store
        .apply_retention(dec(1, 0, 0), dec(31, 0, 0))
        .await
        .expect("retention");
    assert_eq!(run.bookings, 0);

    let later = Utc.with_ymd_and_hms(2027, 6, 1, 0, 0, 0).single().expect("valid");
    let run = k
        .store
        .apply_retention(later - Duration::days(30), later)
        .await
        .expect("retention");
    assert_eq!(run.bookings, 9);
    let after = reports::build(&k.store, &week()).await.expect("report");
    assert_eq!(before, after);

    let rows = sqlx::query(
        "SELECT count(*) FILTER (WHERE subject IS NOT NULL OR body IS NOT NULL OR organiser_name IS NOT NULL
                                   OR organiser_person_id IS NOT NULL OR organiser_address <> 'anonyme@resa.invalid'
                                   OR anonymised_at IS NULL) AS personal,
                count(*) AS all
         FROM bookings",
    )
    .fetch_one(k.store.pool())
    .await
    .expect("query");
    assert_eq!((rows.get::<i64, _>("personal"), rows.get::<i64, _>("all")), (0, 9));
    // A second run finds nothing more to do.
    let again = k
        .store
        .apply_retention(later - Duration::days(30), later)
        .await
        .expect("retention");
    assert_eq!(again.bookings, 0);
}

#[tokio::test]
async fn a_generated_data_set_is_consistent_and_reportable() {
    let db = test_db().await;
    let store = db.store();
    let first = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
    let set = store.generate_dataset(5_000, first).await.expect("generated");
    assert_eq!((set.resources, set.people, set.bookings), (166, 3000, 5_000));
    // One decision each, plus a second for cancellations and approvals.
    assert!(set.decisions > 5_000 && set.decisions < 5_600, "{}", set.decisions);
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("valid");
    let to = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).single().expect("valid");
    let r = reports::build(store, &ReportFilter::range(from, to))
        .await
        .expect("report");
    assert_eq!(r.usage.len(), 166);
    let accepted: i64 = r.usage.iter().map(|o| o.usage.accepted).sum();
    let cancelled: i64 = r.usage.iter().map(|o| o.usage.cancelled).sum();
    assert!((3_500..4_500).contains(&accepted), "{accepted}");
    assert!((100..500).contains(&cancelled), "{cancelled}");
    assert!(r.reasons.len() == 5, "{:?}", r.reasons);
    assert!(r.approvals.held > 100 && r.approvals.approved > 0);
    assert_eq!(r.organisations.len(), 2);
    // Nothing falls at night or on weekends.
    assert!(r.heat[5].iter().chain(r.heat[6].iter()).all(|v| *v == 0.0));
    assert!(r.heat.iter().all(|d| d[..8].iter().all(|v| *v == 0.0)));
    assert!(r.lead.buckets.iter().all(|b| *b > 0), "{:?}", r.lead.buckets);
}

// ------------------------------------------------------------------ the web pages

struct Web {
    state: resa::web::WebState,
}

fn web(k: &Known) -> Web {
    use std::sync::Arc;
    Web {
        state: resa::web::WebState {
            store: k.store.clone(),
            clock: Arc::new(resa::clock::ManualClock::new(now())),
            directories: Vec::new().into(),
            admin_groups: vec![resa::web::AdminGroup::parse("pc:GG-Resa-Admins").expect("admin group")],
            secret_key: Arc::from(&b"a test key of thirty-two bytes!!"[..]),
            secure_cookies: false,
            exchange_endpoints: vec!["pc".into()],
            outbox_wake: None,
        },
    }
}

/// A session cookie and its CSRF token.
async fn session(k: &Known, sam: &str) -> (String, String) {
    let id = k
        .store
        .person_by_account("pc", sam)
        .await
        .expect("q")
        .expect("person")
        .id;
    let s = k.store.create_session(id, "fr", now()).await.expect("session");
    (format!("resa_session={}", s.id), s.csrf_token)
}

struct Answer {
    status: axum::http::StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(w: &Web, method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Answer {
    use tower::ServiceExt;
    let mut r = axum::http::Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        r = r.header(axum::http::header::COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            r = r.header(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            axum::body::Body::from(f.to_owned())
        }
        None => axum::body::Body::empty(),
    };
    let response = resa::web::router(w.state.clone())
        .oneshot(r.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 256 << 20)
        .await
        .expect("body")
        .to_vec();
    Answer { status, headers, body }
}

const WEEK: &str = "from=2026-11-30&to=2026-12-06";

#[tokio::test]
async fn the_reports_page_shows_charts_tables_and_csv_to_managers_only() {
    let k = known().await;
    let w = web(&k);
    let (alice, _) = session(&k, "alice").await;
    let (dora, _) = session(&k, "dora").await;
    let (erin, _) = session(&k, "erin").await;

    let anonymous = send(&w, "GET", &format!("/reports?{WEEK}"), None, None).await;
    assert!(anonymous.status.is_redirection(), "{}", anonymous.status);
    let agent = send(&w, "GET", &format!("/reports?{WEEK}"), Some(&alice), None).await;
    assert_eq!(agent.status, 403);
    let agent_csv = send(&w, "GET", &format!("/reports/occupancy.csv?{WEEK}"), Some(&alice), None).await;
    assert_eq!(agent_csv.status, 403);

    // The administrator sees both rooms, in French by default.
    let page = send(&w, "GET", &format!("/reports?{WEEK}"), Some(&erin), None).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("<html lang=\"fr\">"));
    assert!(
        html.contains("Taux d'occupation") || html.contains("Taux d&#39;occupation"),
        "{html}"
    );
    assert!(
        html.contains("<svg") && html.contains("role=\"img\""),
        "charts are drawn inline"
    );
    assert!(!html.contains("&lt;svg"), "charts are not escaped");
    assert!(
        html.contains("9,0\u{202F}%") && html.contains("4,0\u{202F}%"),
        "French percentages"
    );
    assert!(html.contains("Salle Monet"));
    assert!(
        html.replace("&#38;", "&amp;")
            .contains("/reports/occupancy.csv?from=2026-11-30&amp;to=2026-12-06"),
        "CSV links keep the filters: {html}"
    );
    // In English.
    let en = send(&w, "GET", &format!("/reports?{WEEK}&lang=en"), Some(&erin), None).await;
    let html = en.text();
    assert!(html.contains("<html lang=\"en\">") && html.contains("Occupancy") && html.contains("9.0%"));

    // The manager of Cézanne sees Cézanne only, even when asking for Monet.
    let page = send(&w, "GET", &format!("/reports?{WEEK}"), Some(&dora), None).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("Salle Cézanne") && !html.contains("Salle Monet"),
        "{html}"
    );
    let monet = send(
        &w,
        "GET",
        &format!("/reports?{WEEK}&resource={}", k.monet),
        Some(&dora),
        None,
    )
    .await;
    assert!(!monet.text().contains("Salle Monet") && !monet.text().contains("4,0\u{202F}%"));

    // CSV, with the same filters, as a French spreadsheet reads it.
    let csv = send(&w, "GET", &format!("/reports/occupancy.csv?{WEEK}"), Some(&dora), None).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers[axum::http::header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(
        csv.headers[axum::http::header::CONTENT_DISPOSITION]
            .to_str()
            .expect("ascii")
            .contains("resa-occupancy-2026-11-30-2026-12-06.csv")
    );
    let text = csv.text();
    assert_eq!(
        text,
        "\u{FEFF}Ressource;Site;Organisation;Type;Créneaux;Heures réservées;Heures d'ouverture;Taux d'occupation\n\
         Salle Cézanne;Siège;Plaine Commune;Salle;3;4,5;50,0;9,0\n"
    );
    let csv = send(
        &w,
        "GET",
        &format!("/reports/organisations.csv?{WEEK}&lang=en"),
        Some(&erin),
        None,
    )
    .await;
    assert!(csv.text().contains("Saint-Denis,3.5,53.8,2,2,0\n"), "{}", csv.text());
    let missing = send(&w, "GET", &format!("/reports/secrets.csv?{WEEK}"), Some(&erin), None).await;
    assert_eq!(missing.status, 404);

    // A wrong period keeps what was typed and says what is wrong.
    let bad = send(
        &w,
        "GET",
        "/reports?from=2026-12-06&to=2026-11-30&lang=fr",
        Some(&erin),
        None,
    )
    .await;
    assert_eq!(bad.status, 400);
    let html = bad.text();
    assert!(
        html.contains("Période invalide") && html.contains("value=\"2026-12-06\""),
        "{html}"
    );
    let bad_csv = send(&w, "GET", "/reports/occupancy.csv?from=hier", Some(&erin), None).await;
    assert_eq!(bad_csv.status, 400);
}

#[tokio::test]
async fn administrators_download_the_export_as_a_tar_that_imports_into_an_empty_database() {
    let k = known().await;
    let w = web(&k);
    let (dora, dora_csrf) = session(&k, "dora").await;
    let (erin, erin_csrf) = session(&k, "erin").await;

    assert_eq!(send(&w, "GET", "/admin/export", Some(&dora), None).await.status, 403);
    let page = send(&w, "GET", "/admin/export", Some(&erin), None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("action=\"/admin/export\"") && page.text().contains(&erin_csrf));
    // No token, someone else's token, or a manager: refused.
    assert_eq!(
        send(&w, "POST", "/admin/export", Some(&erin), Some("")).await.status,
        403
    );
    let wrong = format!("_csrf={dora_csrf}");
    assert_eq!(
        send(&w, "POST", "/admin/export", Some(&erin), Some(&wrong))
            .await
            .status,
        403
    );
    let as_manager = format!("_csrf={dora_csrf}");
    assert_eq!(
        send(&w, "POST", "/admin/export", Some(&dora), Some(&as_manager))
            .await
            .status,
        403
    );

    let form = format!("_csrf={erin_csrf}");
    let download = send(&w, "POST", "/admin/export", Some(&erin), Some(&form)).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.headers[axum::http::header::CONTENT_TYPE], "application/x-tar");
    assert_eq!(
        download.headers[axum::http::header::CONTENT_DISPOSITION],
        "attachment; filename=\"resa-export-2026-11-30.tar\""
    );
    // GNU tar, which nobody here wrote, reads it.
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("export.tar");
    std::fs::write(&tar, &download.body).expect("write");
    let out = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path())
        .output()
        .expect("tar runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = dir.path().join("resa-export-2026-11-30");
    let bookings = std::fs::read_to_string(root.join("json/bookings.json")).expect("bookings");
    assert_eq!(bookings.lines().filter(|l| l.starts_with('{')).count(), 9);
    assert!(root.join("schema/bookings.schema.json").exists());
    assert!(root.join("csv/bookings.csv").exists());
    assert!(root.join("ical/salle.cezanne@plainecommune.fr.ics").exists());

    // It loads into an empty database, like the command line's export.
    let empty = test_db().await;
    resa::reversibility::import(empty.store(), &root, |_| {})
        .await
        .expect("import");
    let again = reports::build(empty.store(), &week()).await.expect("report");
    let original = reports::build(&k.store, &week()).await.expect("report");
    assert_eq!(again, original);
    // The download is in the audit log, and nothing is left behind.
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'export.download'")
        .fetch_one(k.store.pool())
        .await
        .expect("query");
    assert_eq!(audited, 1);
    let left = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("resa-web-export-"))
        .count();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_daemons_retention_job_runs_at_start_and_stops_on_shutdown() {
    let k = known().await;
    let later = Utc.with_ymd_and_hms(2027, 6, 1, 0, 0, 0).single().expect("valid");
    let clock: resa::clock::SharedClock = std::sync::Arc::new(resa::clock::ManualClock::new(later));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let job = tokio::spawn(resa::store::retention::retention_loop(
        k.store.clone(),
        clock,
        30,
        async move {
            let _ = stopped.await;
        },
    ));
    let mut anonymised = 0;
    for _ in 0..100 {
        anonymised = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM bookings WHERE anonymised_at IS NOT NULL")
            .fetch_one(k.store.pool())
            .await
            .expect("query");
        if anonymised == 9 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(anonymised, 9);
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(5), job)
        .await
        .expect("the job stops")
        .expect("no panic");
}

// ------------------------------------------------------------------ the rollup

/// Every report, read from the rollup and computed straight from the
/// occurrences and decisions, with lengths and means rounded to the
/// millisecond (sums in another order may differ in the last bit).
async fn both_ways(store: &Store, f: &ReportFilter) -> (String, String) {
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let usage = |u: Vec<resa::store::reports::ResourceUsage>| {
        u.into_iter()
            .map(|u| (u.name, round(u.booked_seconds), u.accepted, u.cancelled, u.released))
            .collect::<Vec<_>>()
    };
    let heat = |h: Vec<resa::store::reports::HeatCell>| {
        h.into_iter()
            .map(|c| (c.weekday, c.hour, round(c.booked_seconds)))
            .collect::<Vec<_>>()
    };
    let approvals = |a: resa::store::reports::ApprovalStats| {
        (
            a.held,
            a.approved,
            a.refused,
            a.undecided,
            a.mean_seconds.map(round),
            a.median_seconds.map(round),
            a.max_seconds.map(round),
        )
    };
    let capacity = |c: Vec<resa::store::reports::CapacityOfResource>| {
        c.into_iter()
            .map(|c| (c.name, c.capacity, c.occurrences, round(c.mean_attendees), c.buckets))
            .collect::<Vec<_>>()
    };
    let lead = |l: resa::store::reports::LeadTime| {
        (
            l.occurrences,
            l.buckets,
            l.median_seconds.map(round),
            l.mean_seconds.map(round),
        )
    };
    let orgs = |o: Vec<resa::store::reports::OrganisationUsage>| {
        o.into_iter()
            .map(|o| (o.name, round(o.booked_seconds), o.occurrences, o.bookings, o.kilometres))
            .collect::<Vec<_>>()
    };
    let rollup = format!(
        "{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}",
        usage(store.report_usage(f).await.expect("usage")),
        heat(store.report_heat_map(f).await.expect("heat")),
        store.report_decline_reasons(f).await.expect("reasons"),
        store.report_declines_by_resource(f).await.expect("declines"),
        approvals(store.report_approvals(f).await.expect("approvals")),
        capacity(store.report_capacity(f).await.expect("capacity")),
        lead(store.report_lead_time(f).await.expect("lead")),
        orgs(store.report_organisations(f).await.expect("organisations")),
    );
    let direct = format!(
        "{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}",
        usage(store.report_usage_direct(f).await.expect("usage")),
        heat(store.report_heat_map_direct(f).await.expect("heat")),
        store.report_decline_reasons_direct(f).await.expect("reasons"),
        store.report_declines_by_resource_direct(f).await.expect("declines"),
        approvals(store.report_approvals_direct(f).await.expect("approvals")),
        capacity(store.report_capacity_direct(f).await.expect("capacity")),
        lead(store.report_lead_time_direct(f).await.expect("lead")),
        orgs(store.report_organisations_direct(f).await.expect("organisations")),
    );
    (rollup, direct)
}

/// The filters compared: ranges on local midnights and cut anywhere, one
/// partial day, and each kind of selection.
async fn filters(store: &Store) -> Vec<ReportFilter> {
    let paris = |d: u32, h: u32, m: u32| {
        chrono_tz::Europe::Paris
            .with_ymd_and_hms(2026, 3, d, h, m, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
    };
    let ids = |sql: &'static str| async move {
        sqlx::query_scalar::<_, Uuid>(sql)
            .fetch_all(store.pool())
            .await
            .expect("ids")
    };
    let orgs = ids("SELECT id FROM organisations ORDER BY slug").await;
    let sites = ids("SELECT id FROM sites ORDER BY slug, id").await;
    let types = ids("SELECT id FROM resource_types ORDER BY slug").await;
    let resources = ids("SELECT id FROM resources ORDER BY name").await;
    // March is a whole month of it: lead times come from the months' rollup.
    let whole = ReportFilter::range(local(2, 20, 0), local(4, 10, 0));
    let mut out = vec![
        whole.clone(),
        ReportFilter::range(paris(14, 0, 0), paris(31, 0, 0) + Duration::days(2)),
        // Exactly March: its first day is an edge, so no whole month.
        ReportFilter::range(local(3, 1, 0), local(4, 1, 0)),
        // March whole, April cut an hour before its end.
        ReportFilter::range(local(2, 28, 12), local(4, 30, 23)),
        ReportFilter::range(paris(17, 10, 17), paris(27, 15, 43)),
        ReportFilter::range(paris(18, 9, 20), paris(18, 21, 5)),
        ReportFilter::range(paris(19, 0, 0), paris(20, 0, 0)),
        // Around the change to summer time (night of 28 to 29 March).
        ReportFilter::range(paris(28, 0, 0), paris(30, 0, 0)),
    ];
    for (k, o) in orgs.iter().enumerate() {
        out.push(ReportFilter {
            organisation_id: Some(*o),
            ..whole.clone()
        });
        if let Some(s) = sites.get(k * 3) {
            out.push(ReportFilter {
                site_id: Some(*s),
                ..whole.clone()
            });
        }
    }
    for t in &types {
        out.push(ReportFilter {
            resource_type_id: Some(*t),
            ..whole.clone()
        });
    }
    out.push(ReportFilter {
        resource_id: resources.get(7).copied(),
        ..whole.clone()
    });
    out.push(ReportFilter {
        visible: Some(resources.iter().step_by(5).copied().collect()),
        ..ReportFilter::range(paris(16, 12, 0), paris(25, 0, 0))
    });
    out
}

async fn assert_rollup_matches(store: &Store, phase: &str) {
    for f in filters(store).await {
        let (rollup, direct) = both_ways(store, &f).await;
        assert!(
            rollup == direct,
            "{phase}: the rollup differs from the direct computation for {f:?}\nrollup:\n{rollup}\ndirect:\n{direct}"
        );
    }
    let dirty: i64 = sqlx::query_scalar("SELECT count(*) FROM report_dirty")
        .fetch_one(store.pool())
        .await
        .expect("dirty");
    let days: i64 = sqlx::query_scalar("SELECT count(*) FROM report_days")
        .fetch_one(store.pool())
        .await
        .expect("days");
    assert_eq!(dirty, 0, "{phase}: every report refreshes the rollup first");
    assert!(days > 1000, "{phase}: the reports read the rollup ({days} days)");
}

/// The rollup gives the same figures as the direct computation on a random
/// data set (seeded, so a failure repeats), after bulk inserts, after
/// updates, cancellations, approvals, check-outs and catalogue changes made
/// statement by statement, and after retention.
#[tokio::test]
async fn the_rollup_gives_the_figures_of_the_direct_computation() {
    let db = test_db().await;
    let store = db.store();
    // Three weeks from Monday 16 March 2026, across the change to summer time.
    let first = chrono::NaiveDate::from_ymd_opt(2026, 3, 16).expect("date");
    store.generate_dataset(20_000, first).await.expect("generated");
    assert_rollup_matches(store, "generated").await;

    let mut c = store.pool().acquire().await.expect("connection");
    sqlx::query("SELECT setseed(0.17)")
        .execute(&mut *c)
        .await
        .expect("seed");
    for sql in [
        // Evening meetings that cross midnight, and weekly series of three
        // evenings (one booking, three occurrences) on the cars.
        "WITH picked AS (
            SELECT r.id, row_number() OVER (ORDER BY random()) AS k FROM resources r
         ), made AS (
            INSERT INTO bookings (resource_id, uid, source, organiser_person_id, organiser_address, attendee_count,
                                  status, requested_at)
            SELECT p.id, 'evening-' || p.k, 'web',
                   (SELECT id FROM people ORDER BY random() + p.k * 0 LIMIT 1),
                   'x@resa.invalid', 1 + (random() * 30)::int, 'accepted',
                   timestamptz '2026-03-10 08:00+01' + random() * interval '10 days'
            FROM picked p WHERE p.k <= 60
            RETURNING id, resource_id, uid
         )
         INSERT INTO occurrences (booking_id, resource_id, original_start, period, blocked, status)
         SELECT m.id, m.resource_id, s, tstzrange(s, s + interval '9 hours'), tstzrange(s, s + interval '9 hours'),
                'accepted'
         FROM made m, generate_series(0, CASE WHEN substr(m.uid, 9)::int % 3 = 0 THEN 2 ELSE 0 END) w,
              LATERAL (SELECT timestamptz '2026-03-17 20:00+01' + make_interval(days => w * 7 + substr(m.uid, 9)::int % 3)
                       + make_interval(mins => (random() * 50)::int) AS s) x",
        // Cancellations and no-shows.
        "UPDATE occurrences SET status = 'cancelled' WHERE status = 'accepted' AND random() < 0.05",
        "UPDATE occurrences SET status = 'released', released_at = lower(period) + interval '15 minutes'
         WHERE status = 'accepted' AND random() < 0.02",
        // Corrected attendee counts and request times.
        "UPDATE bookings SET attendee_count = 1 + (random() * 40)::int WHERE random() < 0.05",
        "UPDATE bookings SET requested_at = requested_at - interval '3 days' WHERE random() < 0.03",
        // Held requests answered: approved or refused.
        "INSERT INTO decisions (booking_id, resource_id, uid, decided_at, outcome, decided_by)
         SELECT b.id, b.resource_id, b.uid, b.requested_at + random() * interval '2 days',
                CASE WHEN random() < 0.5 THEN 'approve' ELSE 'refuse' END, 'manager'
         FROM bookings b WHERE b.status = 'held' AND random() < 0.6",
        // Declines whose reasons name declined occurrences.
        "INSERT INTO decisions (booking_id, resource_id, uid, decided_at, outcome, reasons, decided_by)
         SELECT b.id, b.resource_id, b.uid, b.requested_at + interval '1 second', 'accept_partially',
                '[{\"code\": \"partial\", \"declined_occurrences\": [{\"reasons\": [{\"code\": \"conflict\"}, {\"code\": \"blackout\"}]}]}]',
                'engine'
         FROM bookings b WHERE random() < 0.01",
        // Vehicles driven.
        "INSERT INTO checkouts (occurrence_id, resource_id, out_at, odometer_out_km, odometer_in_km)
         SELECT o.id, o.resource_id, lower(o.period), 1000, 1000 + (random() * 300)::int
         FROM occurrences o JOIN resources r ON r.id = o.resource_id
         WHERE o.status = 'accepted' AND r.capacity IS NULL AND random() < 0.3",
        // A room made bigger, an agent moved to the other organisation's
        // directory, a site moved to another time zone.
        "UPDATE resources SET capacity = capacity + 10 WHERE id = (SELECT id FROM resources WHERE capacity IS NOT NULL ORDER BY name LIMIT 1)",
        "UPDATE people SET directory_id = (SELECT id FROM directories WHERE id <> people.directory_id LIMIT 1)
         WHERE id IN (SELECT organiser_person_id FROM bookings WHERE organiser_person_id IS NOT NULL ORDER BY random() LIMIT 20)",
        "UPDATE sites SET time_zone = 'America/Cayenne' WHERE slug = 'site-2'",
        // Some occurrences removed for good.
        "DELETE FROM occurrences WHERE status = 'cancelled' AND random() < 0.2",
    ] {
        sqlx::query(sql).execute(&mut *c).await.expect(sql);
    }
    drop(c);
    assert_rollup_matches(store, "changed").await;

    let later = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).single().expect("valid");
    let run = store
        .apply_retention(later - Duration::days(30), later)
        .await
        .expect("retention");
    assert!(run.bookings > 10_000, "{run:?}");
    assert_rollup_matches(store, "after retention").await;

    // Rebuilt from scratch, the rollup holds the same.
    let before = both_ways(store, &filters(store).await[1]).await.0;
    let mut c = store.pool().acquire().await.expect("connection");
    store.report_rebuild(&mut c).await.expect("rebuild");
    drop(c);
    assert_eq!(both_ways(store, &filters(store).await[1]).await.0, before);
}

/// The lead-time median stays exact when whole months of the range give it:
/// its two middle lead times may lie in different intervals of the scale the
/// months are counted on, and the days outside whole months add theirs.
#[tokio::test]
async fn the_lead_time_median_is_exact_across_months_and_intervals() {
    let db = test_db().await;
    let store = db.store();
    let intervals: i32 = sqlx::query_scalar("SELECT cardinality(report_duration_bounds())")
        .fetch_one(store.pool())
        .await
        .expect("bounds");
    assert_eq!(
        usize::try_from(intervals).ok(),
        Some(resa::store::reports::DURATION_INTERVALS)
    );
    let room = room_fixture(store, "salle-delais@resa.invalid", "sim", 10).await.room;
    // Four meetings in May asked 10 minutes, 2 hours, 5 days and 40 days
    // ahead, and one on 2 June asked 3 days ahead.
    let meetings = [
        (local(5, 5, 10), 600.0),
        (local(5, 12, 10), 7200.0),
        (local(5, 19, 10), 432_000.0),
        (local(5, 26, 10), 3_456_000.0),
        (local(6, 2, 10), 259_200.0),
    ];
    for (i, (start, lead)) in meetings.iter().enumerate() {
        sqlx::query(
            "WITH b AS (
                INSERT INTO bookings (resource_id, uid, source, organiser_address, status, requested_at)
                VALUES ($1, $2, 'web', 'agent@resa.invalid', 'accepted', $3 - make_interval(secs => $4))
                RETURNING id
             )
             INSERT INTO occurrences (booking_id, resource_id, original_start, period, blocked, status)
             SELECT b.id, $1, $3, tstzrange($3, $3 + interval '1 hour'), tstzrange($3, $3 + interval '1 hour'),
                    'accepted'
             FROM b",
        )
        .bind(room.id)
        .bind(format!("delai-{i}"))
        .bind(start)
        .bind(lead)
        .execute(store.pool())
        .await
        .expect("meeting");
    }
    let median = |from: DateTime<Utc>, to: DateTime<Utc>| async move {
        let f = ReportFilter::range(from, to);
        let rollup = store.report_lead_time(&f).await.expect("lead time");
        let direct = store.report_lead_time_direct(&f).await.expect("direct");
        assert_eq!(rollup, direct, "{from} to {to}");
        (rollup.occurrences, rollup.median_seconds)
    };
    // May alone: the middle two (2 hours and 5 days) are in different
    // intervals.
    assert_eq!(
        median(local(4, 20, 0), local(6, 1, 0)).await,
        (4, Some((7200.0 + 432_000.0) / 2.0))
    );
    let months: i64 = sqlx::query_scalar("SELECT count(*) FROM report_months WHERE lead_n > 0 AND resource_id = $1")
        .bind(room.id)
        .fetch_one(store.pool())
        .await
        .expect("months");
    assert_eq!(months, 2, "May and June are in the months' rollup");
    // With 2 June, a day outside any whole month: the middle one is its.
    assert_eq!(median(local(4, 20, 0), local(6, 10, 0)).await, (5, Some(259_200.0)));
    // No whole month; a range starting at a meeting's start (an edge day).
    assert_eq!(median(local(5, 12, 10), local(5, 27, 0)).await, (3, Some(432_000.0)));
    assert_eq!(median(local(7, 1, 0), local(9, 1, 0)).await, (0, None));
    // A change to one month reaches its rollup at the next report.
    sqlx::query("UPDATE occurrences SET status = 'cancelled' WHERE lower(period) = $1")
        .bind(local(5, 26, 10))
        .execute(store.pool())
        .await
        .expect("cancel");
    assert_eq!(median(local(4, 20, 0), local(6, 1, 0)).await, (3, Some(7200.0)));
}

/// `resa bench --only reports` times the eight report queries and the
/// rollup's one-off costs, and nothing else.
#[test]
fn the_benchmark_runs_the_report_queries_alone() {
    let work = tempfile::tempdir().expect("temporary directory");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resa"))
        .args(["bench", "--only", "reports", "--report-bookings", "3000", "--json"])
        .arg("--work-dir")
        .arg(work.path().join("bench"))
        .output()
        .expect("resa bench runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on standard output");
    assert_eq!(report["runs"].as_array().map(Vec::len), Some(0), "no load run");
    let micro = &report["micro"];
    let reports = micro["reports"].as_array().expect("report timings");
    assert_eq!(reports.len(), 8, "{}", micro["reports_missing"]);
    assert!(reports.iter().all(|r| r["median_ms"].as_f64().unwrap_or(0.0) > 0.0));
    let names: Vec<&str> = micro["timings"]
        .as_array()
        .expect("timings")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().any(|n| n.contains("rollup")), "{names:?}");
}
