//! The admin pages of organisations, sites and resource types, driven
//! in-process through the web router against a real PostgreSQL: a site's
//! opening hours typed in the form decide the next request the daemon's
//! decision path records; refused forms keep what was typed; roles, CSRF,
//! deletions of what is in use, the audit log and the JSON API.

use crate::harness::{TestDb, test_db};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use resa::clock::ManualClock;
use resa::directory::entry::{GroupRecord, PersonRecord, SmtpAddress};
use resa::domain::When;
use resa::store::Store;
use resa::store::bookings::Source;
use resa::store::catalogue::{Category, NewResource, Resource};
use resa::store::directory::SyncBatch;
use resa::store::requests::{IncomingRequest, Recorded};
use resa::store::web::AuditFilter;
use resa::web::{AdminGroup, WebState};
use std::sync::Arc;
use tower::ServiceExt;
use uuid::Uuid;

/// Monday 30 November 2026, 08:00 in Paris.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 7, 0, 0).single().expect("valid")
}

/// Tuesday 1 December 2026 at h:m, Paris time.
fn tue(h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 12, 1, h, m, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc)
}

const HOSTILE: &str = "<script>alert('xss')</script>";

struct World {
    store: Store,
    _db: TestDb,
    state: WebState,
    admin: Uuid,
    agent: Uuid,
}

fn person(guid: u128, sam: &str, name: &str) -> PersonRecord {
    PersonRecord {
        object_guid: Uuid::from_u128(guid),
        dn: format!("CN={name},OU=Agents,DC=pc,DC=local"),
        sam_account_name: sam.into(),
        user_principal_name: Some(format!("{sam}@pc.local")),
        display_name: name.into(),
        department: None,
        manager_dn: None,
        legacy_exchange_dn: None,
        x500_addresses: Vec::new(),
        addresses: vec![SmtpAddress {
            address: format!("{sam}@plainecommune.fr"),
            primary: true,
        }],
        disabled: false,
        usn_changed: Some(1),
    }
}

async fn world() -> World {
    let db = test_db().await;
    let store = db.store().clone();
    let dir = store.ensure_directory("pc").await.expect("directory");
    let people = [person(1, "alice", "Alice Martin"), person(3, "carol", "Carol Admin")];
    let groups = [GroupRecord {
        object_guid: Uuid::from_u128(100),
        dn: "CN=GG-Resa-Admins,OU=Groupes,DC=pc,DC=local".into(),
        sam_account_name: "GG-Resa-Admins".into(),
        name: "GG-Resa-Admins".into(),
        description: None,
        member_dns: vec![people[1].dn.clone()],
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
    let id = |sam: &'static str| {
        let store = store.clone();
        async move { store.person_by_account("pc", sam).await.expect("q").expect("person").id }
    };
    let (agent, admin) = (id("alice").await, id("carol").await);
    let state = WebState {
        store: store.clone(),
        clock: Arc::new(ManualClock::new(now())),
        directories: Vec::new().into(),
        admin_groups: vec![AdminGroup::parse("pc:GG-Resa-Admins").expect("admin group")],
        secret_key: Arc::from(&b"a test key of thirty-two bytes!!"[..]),
        secure_cookies: false,
        exchange_endpoints: vec!["pc".into()],
        outbox_wake: None,
    };
    World {
        store,
        _db: db,
        state,
        admin,
        agent,
    }
}

struct Login {
    cookie: String,
    csrf: String,
}

async fn login(w: &World, person: Uuid) -> Login {
    let s = w.store.create_session(person, "fr", now()).await.expect("session");
    Login {
        cookie: format!("resa_session={}", s.id),
        csrf: s.csrf_token,
    }
}

struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

async fn send(w: &World, request: Request<Body>) -> Answer {
    let response = resa::web::router(w.state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .expect("body");
    Answer {
        status,
        location,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(w: &World, path: &str, who: &Login) -> Answer {
    let r = Request::get(path).header(header::COOKIE, &who.cookie);
    send(w, r.body(Body::empty()).expect("request")).await
}

/// A form POST with the login's CSRF token added first.
async fn post(w: &World, path: &str, who: &Login, form: &[(&str, &str)]) -> Answer {
    post_raw(w, path, who, &[&[("_csrf", who.csrf.as_str())], form].concat()).await
}

async fn post_raw(w: &World, path: &str, who: &Login, form: &[(&str, &str)]) -> Answer {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &who.cookie);
    send(w, r.body(Body::from(body)).expect("request")).await
}

/// The id at the end of a redirect such as `/admin/sites/<id>?msg=…`.
fn id_in(location: &str) -> Uuid {
    location
        .split('?')
        .next()
        .and_then(|p| p.rsplit('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {location:?}"))
}

fn named_escapes(body: &str) -> String {
    body.replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;")
        .replace("&#x27;", "&#39;")
        .replace("&#34;", "&quot;")
        .replace("&#38;", "&amp;")
}

async fn create_org(w: &World, admin: &Login) -> Uuid {
    let a = post(
        w,
        "/admin/organisations",
        admin,
        &[("name", "Plaine Commune"), ("slug", "")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    id_in(&a.location)
}

async fn create_site(w: &World, admin: &Login, org: Uuid, name: &str) -> Uuid {
    let org = org.to_string();
    let a = post(
        w,
        "/admin/sites",
        admin,
        &[
            ("organisation", org.as_str()),
            ("name", name),
            ("slug", ""),
            ("address", "2 place de la Libération\n93200 Saint-Denis"),
            ("time_zone", "Europe/Paris"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(a.location.starts_with("/admin/sites/"), "{}", a.location);
    id_in(&a.location)
}

async fn room_on(w: &World, site: Uuid, mailbox: &str) -> Resource {
    let kind = w
        .store
        .create_resource_type("salle", Category::Room, "Salle", "Room")
        .await
        .expect("type");
    w.store
        .create_resource(&NewResource {
            site_id: site,
            resource_type_id: kind.id,
            name: "Salle Delaunay",
            mailbox_smtp: mailbox,
            exchange_endpoint: "pc",
            capacity: Some(12),
        })
        .await
        .expect("room")
}

/// Alice asks the room for Tuesday from `start` to `end`, as a meeting
/// request read from Exchange would: the decision and its reason codes.
async fn ask(w: &World, room: Uuid, uid: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> (String, Vec<String>) {
    let r = w
        .store
        .record_request(
            &IncomingRequest {
                resource_id: room,
                uid: uid.into(),
                sequence: 0,
                source: Source::Exchange,
                organiser_address: "alice@plainecommune.fr".into(),
                organiser_name: Some("Alice Martin".into()),
                subject: Some("Réunion".into()),
                attendees: 4,
                when: When::Single { start, end },
                exchange_item_id: None,
                requested_at: now(),
            },
            now(),
        )
        .await
        .expect("recorded");
    match r {
        Recorded::Decided { decision, .. } => (
            decision.kind().to_owned(),
            decision.reason_codes().into_iter().map(str::to_owned).collect(),
        ),
        other => panic!("not decided: {other:?}"),
    }
}

#[tokio::test]
async fn opening_hours_typed_for_a_site_decide_the_next_request_of_its_rooms() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let org = create_org(&w, &admin).await;
    let site = create_site(&w, &admin, org, "Hôtel de ville").await;
    let room = room_on(&w, site, "salle.delaunay@plainecommune.fr").await;
    let page = get(&w, &format!("/admin/sites/{site}"), &admin).await;
    assert!(
        page.body.contains("Heures héritées : Lundi toute la journée ;"),
        "{}",
        page.body
    );

    // Tuesday 09:00–12:00 and 14:00–17:00; Monday morning only; the rest closed.
    let a = post(
        &w,
        &format!("/admin/sites/{site}/hours"),
        &admin,
        &[
            ("h_1_0_opens", "09:00"),
            ("h_1_0_closes", "12:00"),
            ("h_2_0_opens", "09:00"),
            ("h_2_0_closes", "12:00"),
            ("h_2_1_opens", "14:00"),
            ("h_2_1_closes", "17:00"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = get(&w, &format!("/admin/sites/{site}"), &admin).await;
    assert!(
        page.body
            .contains(r#"id="h_2_1_opens" name="h_2_1_opens" type="time" value="14:00""#)
    );
    assert!(page.body.contains("Ce site a ses propres heures"), "{}", page.body);

    assert_eq!(ask(&w, room.id, "inside", tue(10, 0), tue(11, 0)).await.0, "accept");
    let (kind, codes) = ask(&w, room.id, "lunch", tue(12, 30), tue(13, 30)).await;
    assert_eq!(kind, "decline");
    assert_eq!(codes, vec!["outside_opening_hours"]);

    // Opening over lunch takes effect on the very next decision.
    let a = post(
        &w,
        &format!("/admin/sites/{site}/hours"),
        &admin,
        &[("h_2_0_opens", "09:00"), ("h_2_0_closes", "17:00")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(
        ask(&w, room.id, "lunch-again", tue(12, 30), tue(13, 30)).await.0,
        "accept"
    );

    // The policy page shows the hours as set at the site; the audit log has the change.
    let policy = get(&w, &format!("/admin/policies/site/{site}"), &admin).await;
    assert_eq!(policy.status, StatusCode::OK);
    assert!(policy.body.contains("opening_hours"), "{}", policy.body);
    let audit = w
        .store
        .audit_entries(
            &AuditFilter {
                action: Some("site.opening_hours".into()),
                ..AuditFilter::default()
            },
            10,
        )
        .await
        .expect("audit");
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].actor, w.admin.to_string());

    // A local holiday closes the site that whole day, whatever the hours say.
    let a = post(
        &w,
        &format!("/admin/sites/{site}/holidays"),
        &admin,
        &[("day", "2026-12-01"), ("name", "Fête de la ville")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let (kind, codes) = ask(&w, room.id, "feast", tue(11, 0), tue(12, 0)).await;
    assert_eq!((kind.as_str(), codes), ("decline", vec!["blackout".to_owned()]));
    let holiday = w.store.site_holidays(site).await.expect("holidays")[0].id;
    let a = post(
        &w,
        &format!("/admin/sites/{site}/holidays/{holiday}/delete"),
        &admin,
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(ask(&w, room.id, "no-feast", tue(15, 0), tue(16, 0)).await.0, "accept");

    // No range at all: the site inherits again, and the lunch slot is open.
    let a = post(&w, &format!("/admin/sites/{site}/hours"), &admin, &[]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(ask(&w, room.id, "evening", tue(19, 0), tue(20, 0)).await.0, "accept");
}

#[tokio::test]
async fn invalid_hours_are_refused_in_french_and_keep_what_was_typed() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let org = create_org(&w, &admin).await;
    let site = create_site(&w, &admin, org, "Médiathèque").await;
    let path = format!("/admin/sites/{site}/hours");

    let a = post(
        &w,
        &path,
        &admin,
        &[
            ("h_3_0_opens", "18:00"),
            ("h_3_0_closes", "08:00"),
            ("h_1_0_opens", "08:30"),
            ("h_1_0_closes", "12:00"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = named_escapes(&a.body);
    assert!(
        body.contains("L&#39;heure de fermeture doit venir après l&#39;heure d&#39;ouverture."),
        "{body}"
    );
    // The summary links to the field, the field says it is invalid, and every value typed is still there.
    assert!(body.contains(r##"<a href="#h_3_0_closes">"##), "{body}");
    assert!(body.contains(r#"id="h_3_0_closes" name="h_3_0_closes" type="time" value="08:00" aria-invalid="true""#));
    assert!(body.contains(r#"value="18:00""#) && body.contains(r#"value="08:30""#));

    let a = post(
        &w,
        &path,
        &admin,
        &[
            ("h_2_0_opens", "08:00"),
            ("h_2_0_closes", "12:00"),
            ("h_2_1_opens", "11:00"),
            ("h_2_1_closes", "14:00"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body.contains("Cette plage chevauche une autre plage du même jour."),
        "{}",
        a.body
    );
    assert!(a.body.contains(r##"<a href="#h_2_1_opens">"##));
    assert!(a.body.contains(r#"value="11:00""#) && a.body.contains(r#"value="14:00""#));

    // Nothing was stored by either refused form.
    assert!(
        w.store
            .policy_at(resa::domain::Scope::Site(site))
            .await
            .expect("policy")
            .is_none()
    );
}

#[tokio::test]
async fn bad_site_and_names_are_refused_escaped_and_kept() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let org = create_org(&w, &admin).await;
    let org_s = org.to_string();

    let a = post(
        &w,
        "/admin/sites",
        &admin,
        &[
            ("organisation", org_s.as_str()),
            ("name", HOSTILE),
            ("slug", "Pas Bon"),
            ("address", "1 rue de Paris"),
            ("time_zone", "Europe/Saint-Denis"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = named_escapes(&a.body);
    assert!(!a.body.contains("<script>alert"), "a name ran as markup");
    assert!(
        body.contains("value=\"&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;\""),
        "{body}"
    );
    assert!(body.contains("Fuseau horaire inconnu"), "{body}");
    assert!(
        body.contains("Les caractères &lt; et &gt; ne sont pas acceptés"),
        "{body}"
    );
    assert!(body.contains("L&#39;identifiant court ne peut contenir"), "{body}");
    assert!(body.contains(r#"value="Europe/Saint-Denis""#) && body.contains(r#"value="Pas Bon""#));
    assert!(body.contains("1 rue de Paris"));
    for field in ["site_name", "site_slug", "site_time_zone"] {
        assert!(
            body.contains(&format!("<a href=\"#{field}\">")),
            "{field} not in the summary"
        );
    }
    assert!(w.store.site_details(Some(org)).await.expect("sites").is_empty());

    // A name the form accepts is shown as text everywhere.
    let site = create_site(&w, &admin, org, "Salle & « Annexe »").await;
    let page = get(&w, &format!("/admin/organisations/{org}"), &admin).await;
    assert!(page.body.contains(&format!("/admin/sites/{site}")));
    assert!(named_escapes(&page.body).contains("Salle &amp; « Annexe »"));

    // Organisation and type forms refuse markup too, and keep it as text.
    let a = post(&w, "/admin/organisations", &admin, &[("name", HOSTILE), ("slug", "x")]).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!a.body.contains("<script>alert"));
    let a = post(
        &w,
        "/admin/types",
        &admin,
        &[
            ("name_fr", HOSTILE),
            ("name_en", "Car"),
            ("category", "vehicle"),
            ("slug", ""),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!a.body.contains("<script>alert"));
    assert!(named_escapes(&a.body).contains(r#"value="Car""#));
    assert_eq!(w.store.organisation_summaries().await.expect("orgs").len(), 1);

    // Holidays: a bad date is refused, a good one is listed, then removed.
    let path = format!("/admin/sites/{site}/holidays");
    let a = post(&w, &path, &admin, &[("day", "31/12/2026"), ("name", "Saint-Sylvestre")]).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains(r#"value="Saint-Sylvestre""#) && a.body.contains(r#"value="31/12/2026""#));
    let a = post(&w, &path, &admin, &[("day", "2026-12-31"), ("name", "Saint-Sylvestre")]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let holidays = w.store.site_holidays(site).await.expect("holidays");
    assert_eq!(holidays.len(), 1);
    let page = get(&w, &format!("/admin/sites/{site}"), &admin).await;
    assert!(page.body.contains("31/12/2026") && page.body.contains("Saint-Sylvestre"));
    let a = post(
        &w,
        &format!("/admin/sites/{site}/holidays/{}/delete", holidays[0].id),
        &admin,
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(w.store.site_holidays(site).await.expect("holidays").is_empty());
}

#[tokio::test]
async fn only_admins_with_the_csrf_token_change_anything() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let agent = login(&w, w.agent).await;
    let org = create_org(&w, &admin).await;
    let site = create_site(&w, &admin, org, "Mairie").await;

    let a = get(&w, "/admin/sites", &admin).await;
    assert_eq!(
        (a.status, a.location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/organisations")
    );
    assert_eq!(get(&w, "/admin/sites", &agent).await.status, StatusCode::FORBIDDEN);
    for path in [
        "/admin/organisations".to_owned(),
        format!("/admin/organisations/{org}"),
        format!("/admin/sites/{site}"),
        format!("/admin/sites/new?organisation={org}"),
        "/admin/types".to_owned(),
    ] {
        assert_eq!(get(&w, &path, &agent).await.status, StatusCode::FORBIDDEN, "GET {path}");
        assert_eq!(get(&w, &path, &admin).await.status, StatusCode::OK, "GET {path}");
    }
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/admin/organisations".into(), vec![("name", "Pirate")]),
        (
            format!("/admin/organisations/{org}"),
            vec![("name", "Pirate"), ("slug", "")],
        ),
        (format!("/admin/organisations/{org}/delete"), vec![]),
        (
            format!("/admin/sites/{site}/hours"),
            vec![("h_1_0_opens", "00:00"), ("h_1_0_closes", "01:00")],
        ),
        (format!("/admin/sites/{site}/delete"), vec![]),
        (
            "/admin/types".into(),
            vec![("name_fr", "Pirate"), ("name_en", "Pirate"), ("category", "room")],
        ),
    ];
    for (path, form) in &posts {
        let a = post(&w, path, &agent, form).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "agent POST {path}");
        // The admin without the token is refused too.
        let a = post_raw(&w, path, &admin, form).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "no CSRF POST {path}");
        let a = post_raw(&w, path, &admin, &[&[("_csrf", "wrong")], form.as_slice()].concat()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "wrong CSRF POST {path}");
    }
    let orgs = w.store.organisation_summaries().await.expect("orgs");
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].name, "Plaine Commune");
    assert!(w.store.type_summaries().await.expect("types").is_empty());
    assert!(
        w.store
            .policy_at(resa::domain::Scope::Site(site))
            .await
            .expect("policy")
            .is_none()
    );
}

#[tokio::test]
async fn what_is_in_use_cannot_be_deleted_and_slugs_in_use_stay() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let org = create_org(&w, &admin).await;
    let site = create_site(&w, &admin, org, "Hôtel de ville").await;
    let room = room_on(&w, site, "salle.delaunay@plainecommune.fr").await;

    let a = post(&w, &format!("/admin/sites/{site}/delete"), &admin, &[]).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("Ce site a encore des ressources"), "{}", a.body);
    let a = post(&w, &format!("/admin/organisations/{org}/delete"), &admin, &[]).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("Cette organisation a encore des sites"), "{}", a.body);
    let a = post(
        &w,
        &format!("/admin/types/{}/delete", room.resource_type_id),
        &admin,
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("Des ressources sont encore de ce type"), "{}", a.body);

    // The site's slug is used (the CSV import names it); its name can change.
    let a = post(
        &w,
        &format!("/admin/sites/{site}"),
        &admin,
        &[
            ("name", "Mairie centrale"),
            ("slug", "autre"),
            ("address", ""),
            ("time_zone", "Europe/Paris"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("déjà utilisé et ne peut plus changer"), "{}", a.body);
    let a = post(
        &w,
        &format!("/admin/sites/{site}"),
        &admin,
        &[
            ("name", "Mairie centrale"),
            ("slug", "hotel-de-ville"),
            ("address", ""),
            ("time_zone", "Indian/Reunion"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let detail = w.store.site_detail(site).await.expect("q").expect("site");
    assert_eq!(
        (detail.name.as_str(), detail.time_zone.as_str()),
        ("Mairie centrale", "Indian/Reunion")
    );

    // Once the room is gone, the site, the type and the organisation go too.
    sqlx::query("DELETE FROM resources WHERE id = $1")
        .bind(room.id)
        .execute(w.store.pool())
        .await
        .expect("delete room");
    let a = post(&w, &format!("/admin/sites/{site}/delete"), &admin, &[]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    // An attribute the type still defines refers to it: refused with a message, not an error page.
    sqlx::query(
        "INSERT INTO attribute_definitions (resource_type_id, key, value_type, label_fr, label_en)
         VALUES ($1, 'visio', 'boolean', 'Visioconférence', 'Video conferencing')",
    )
    .bind(room.resource_type_id)
    .execute(w.store.pool())
    .await
    .expect("attribute");
    let delete_type = format!("/admin/types/{}/delete", room.resource_type_id);
    let a = post(&w, &delete_type, &admin, &[]).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("Des données y font encore référence"), "{}", a.body);
    sqlx::query("DELETE FROM attribute_definitions")
        .execute(w.store.pool())
        .await
        .expect("no attribute");
    let a = post(&w, &delete_type, &admin, &[]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let a = post(&w, &format!("/admin/organisations/{org}/delete"), &admin, &[]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(w.store.organisation_summaries().await.expect("orgs").is_empty());
    let deletions = w
        .store
        .audit_entries(&AuditFilter::default(), 50)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action.ends_with(".delete"))
        .count();
    assert_eq!(deletions, 3);
}

#[tokio::test]
async fn resource_types_are_created_renamed_and_read_from_the_api() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let agent = login(&w, w.agent).await;
    let a = post(
        &w,
        "/admin/types",
        &admin,
        &[
            ("name_fr", "Vélo électrique"),
            ("name_en", "E-bike"),
            ("category", "vehicle"),
            ("slug", ""),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let types = w.store.type_summaries().await.expect("types");
    assert_eq!(types.len(), 1);
    assert_eq!(types[0].slug, "velo-electrique");
    let id = types[0].id;
    let a = post(
        &w,
        "/admin/types",
        &admin,
        &[
            ("name_fr", "Autre"),
            ("name_en", "Other"),
            ("category", "room"),
            ("slug", "velo-electrique"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("Cet identifiant court est déjà pris."), "{}", a.body);
    let a = post(
        &w,
        &format!("/admin/types/{id}"),
        &admin,
        &[
            ("name_fr", "Vélo"),
            ("name_en", "Bicycle"),
            ("category", "vehicle"),
            ("slug", "velo"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);

    let org = create_org(&w, &admin).await;
    create_site(&w, &admin, org, "Mairie").await;
    let a = get(&w, "/api/v1/resource-types", &agent).await;
    assert_eq!(a.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&a.body).expect("json");
    assert_eq!(v["items"][0]["slug"], "velo");
    assert_eq!(v["items"][0]["category"], "vehicle");
    let v: serde_json::Value =
        serde_json::from_str(&get(&w, "/api/v1/organisations", &agent).await.body).expect("json");
    assert_eq!(v["items"][0]["slug"], "plaine-commune");
    assert_eq!(v["items"][0]["sites"], 1);
    let v: serde_json::Value = serde_json::from_str(&get(&w, "/api/v1/sites", &agent).await.body).expect("json");
    assert_eq!(v["items"][0]["slug"], "mairie");
    assert_eq!(v["items"][0]["time_zone"], "Europe/Paris");
    assert!(v["items"][0]["opening_hours"].is_null());
    let page = get(&w, &format!("/admin/types/{id}"), &admin).await;
    assert!(page.body.contains(&format!(r#"href="/admin/types/{id}/attributes""#)));
    let page = get(&w, "/admin/types?lang=en", &admin).await;
    assert!(page.body.contains("<h1>Resource types</h1>"), "{}", page.body);
    assert!(page.body.contains("Bicycle") && page.body.contains(">Vehicle<"));
    let doc = get(&w, "/api/openapi.json", &agent).await.body;
    for path in ["/api/v1/organisations", "/api/v1/sites", "/api/v1/resource-types"] {
        assert!(doc.contains(path), "{path} missing from the OpenAPI document");
    }
}
