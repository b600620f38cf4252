//! The web site driven in-process (tower's `oneshot`) against a real
//! PostgreSQL: sessions, CSRF, roles, security headers, escaping, error pages,
//! the explainer, web booking and approvals; then the browser tests (headless
//! Chromium with axe-core) against the site served on a loopback port.

use crate::harness::{TestDb, room_fixture, test_db};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use resa::clock::ManualClock;
use resa::directory::entry::{GroupRecord, PersonRecord, SmtpAddress};
use resa::domain::{Policy, Scope, When};
use resa::store::Store;
use resa::store::bookings::Source;
use resa::store::catalogue::Resource;
use resa::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant, SyncBatch};
use resa::store::equipment::{AttrValue, AttributeDef, ValueType};
use resa::store::requests::{IncomingRequest, Recorded};
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
    db: TestDb,
    state: WebState,
    /// The outbox worker's bell, as the daemon would hold it.
    wake: Arc<tokio::sync::Notify>,
    site: Uuid,
    room: Resource,
    agent: Uuid,
    manager: Uuid,
    admin: Uuid,
    other: Uuid,
    /// Alice's booking, whose subject is a script.
    booking: Uuid,
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
    let fixture = room_fixture(&store, "salle.cezanne@plainecommune.fr", "pc", 10).await;
    let room = fixture.room;
    let dir = store.ensure_directory("pc").await.expect("directory");
    let people = [
        person(1, "alice", "Alice Martin"),
        person(2, "bob", "Bob Durand"),
        person(3, "carol", "Carol Admin"),
        person(4, "dave", "Dave Autre"),
    ];
    let groups = [GroupRecord {
        object_guid: Uuid::from_u128(100),
        dn: "CN=GG-Resa-Admins,OU=Groupes,DC=pc,DC=local".into(),
        sam_account_name: "GG-Resa-Admins".into(),
        name: "GG-Resa-Admins".into(),
        description: None,
        member_dns: vec![people[2].dn.clone()],
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
    let (agent, manager, admin, other) = (id("alice").await, id("bob").await, id("carol").await, id("dave").await);
    store
        .create_grant(&NewGrant {
            subject: GrantSubject::Person(manager),
            scope: GrantScope::Site(fixture.site),
            role: GrantRole::Manage,
            created_by: None,
        })
        .await
        .expect("grant");
    let recorded = store
        .record_request(
            &IncomingRequest {
                resource_id: room.id,
                uid: "hostile".into(),
                sequence: 0,
                source: Source::Exchange,
                organiser_address: "alice@plainecommune.fr".into(),
                organiser_name: Some("Alice Martin".into()),
                subject: Some(HOSTILE.into()),
                attendees: 4,
                when: When::Single {
                    start: tue(14, 0),
                    end: tue(15, 0),
                },
                exchange_item_id: None,
                requested_at: now(),
            },
            now(),
        )
        .await
        .expect("recorded");
    let Recorded::Decided { booking_id, .. } = recorded else {
        panic!("not decided")
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let state = WebState {
        store: store.clone(),
        clock: Arc::new(ManualClock::new(now())),
        directories: Vec::new().into(),
        admin_groups: vec![AdminGroup::parse("pc:GG-Resa-Admins").expect("admin group")],
        secret_key: Arc::from(&b"a test key of thirty-two bytes!!"[..]),
        secure_cookies: false,
        exchange_endpoints: vec!["pc".into()],
        outbox_wake: Some(wake.clone()),
    };
    World {
        store,
        db,
        state,
        wake,
        site: fixture.site,
        room,
        agent,
        manager,
        admin,
        other,
        booking: booking_id,
    }
}

/// A logged-in browser: its cookie and the CSRF token of its forms.
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
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(w: &World, request: Request<Body>) -> Answer {
    let response = resa::web::router(w.state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(w: &World, path: &str, who: Option<&Login>) -> Answer {
    let mut r = Request::get(path);
    if let Some(l) = who {
        r = r.header(header::COOKIE, &l.cookie);
    }
    send(w, r.body(Body::empty()).expect("request")).await
}

async fn post(w: &World, path: &str, who: Option<&Login>, form: &[(&str, &str)]) -> Answer {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut r = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(l) = who {
        r = r.header(header::COOKIE, &l.cookie);
    }
    send(w, r.body(Body::from(body)).expect("request")).await
}

/// The body with HTML's numeric escapes written as named ones, so tests
/// need not care which form the template engine picks.
fn named_escapes(body: &str) -> String {
    body.replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;")
        .replace("&#x27;", "&#39;")
        .replace("&#34;", "&quot;")
        .replace("&#38;", "&amp;")
}

/// The meetings queued for creation in Exchange: (booking, resource
/// mailbox, meeting), oldest first.
pub(crate) async fn queued_meetings(store: &Store) -> Vec<(Uuid, String, resa::exchange::NewMeeting)> {
    let rows: Vec<(Uuid, String, serde_json::Value)> = sqlx::query_as(
        "SELECT o.booking_id, r.mailbox_smtp, o.payload FROM outbox o JOIN resources r ON r.id = o.resource_id
         WHERE o.kind = 'create_meeting' ORDER BY o.created_at, o.id",
    )
    .fetch_all(store.pool())
    .await
    .expect("outbox");
    rows.into_iter()
        .map(|(b, m, p)| (b, m, serde_json::from_value(p).expect("a meeting")))
        .collect()
}

fn location(a: &Answer) -> &str {
    a.headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn assert_security_headers(a: &Answer, what: &str) {
    let h = |name: &str| {
        a.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = h("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: CSP {csp:?}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert!(!h("referrer-policy").is_empty(), "{what}: no Referrer-Policy");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let w = world().await;
    let agent = login(&w, w.agent).await;
    let answers = [
        ("login", get(&w, "/login", None).await),
        ("redirect", get(&w, "/bookings", None).await),
        ("page", get(&w, "/bookings", Some(&agent)).await),
        ("forbidden", get(&w, "/admin/resources", Some(&agent)).await),
        ("not found", get(&w, "/nowhere", Some(&agent)).await),
        ("csrf", post(&w, "/logout", Some(&agent), &[]).await),
        ("asset", get(&w, "/static/site.css", None).await),
        ("api", get(&w, "/api/v1/me", Some(&agent)).await),
        ("openapi", get(&w, "/api/openapi.json", None).await),
    ];
    for (what, a) in &answers {
        assert_security_headers(a, what);
    }
    let page = &answers[2].1;
    assert_eq!(
        page.headers.get(header::CACHE_CONTROL).expect("cache-control"),
        "no-store"
    );
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_the_login_form_and_the_api_answers_401() {
    let w = world().await;
    let a = get(&w, "/bookings", None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&a), "/login?next=%2Fbookings");
    let a = get(&w, "/api/v1/me", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("unauthenticated"), "{}", a.body);
    let a = get(&w, "/login", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("<html lang=\"fr\""), "French by default");
    assert!(a.body.contains("Se connecter"));
    assert!(a.body.contains("name=\"_csrf\""), "the login form is protected too");
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let fields = |csrf: &'static str| {
        vec![
            ("_csrf", csrf),
            ("name", "Salle Monet"),
            ("mailbox", "salle.monet@plainecommune.fr"),
            ("capacity", "8"),
            ("endpoint", "pc"),
        ]
    };
    let site = w.site.to_string();
    let kind = w.room.resource_type_id.to_string();
    let with = |csrf: &'static str| {
        let mut f = fields(csrf);
        f.push(("site", site.as_str()));
        f.push(("kind", kind.as_str()));
        f
    };
    let none: Vec<(&str, &str)> = with("").into_iter().filter(|(k, _)| *k != "_csrf").collect();
    let a = post(&w, "/admin/resources", Some(&admin), &none).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("Formulaire expiré"), "{}", a.body);
    let a = post(&w, "/admin/resources", Some(&admin), &with("not-the-token")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Another session's token is just as wrong.
    let other = login(&w, w.admin).await;
    let other_token: &'static str = Box::leak(other.csrf.into_boxed_str());
    let a = post(&w, "/admin/resources", Some(&admin), &with(other_token)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        w.store
            .resource_by_mailbox("salle.monet@plainecommune.fr")
            .await
            .expect("q")
            .is_none()
    );

    let token: &'static str = Box::leak(admin.csrf.clone().into_boxed_str());
    let a = post(&w, "/admin/resources", Some(&admin), &with(token)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(
        w.store
            .resource_by_mailbox("salle.monet@plainecommune.fr")
            .await
            .expect("q")
            .is_some()
    );

    // The login form needs the pre-session token as well.
    let a = post(&w, "/login", None, &[("username", "alice"), ("password", "x")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn roles_are_enforced_on_the_server() {
    let w = world().await;
    let agent = login(&w, w.agent).await;
    let manager = login(&w, w.manager).await;
    let admin = login(&w, w.admin).await;
    let admin_pages = [
        "/admin/resources",
        "/admin/resources/new",
        "/admin/policies",
        "/admin/policies/global/-",
        "/admin/grants",
        "/admin/audit",
        "/admin/status",
    ];
    // The approval queue is open to everyone signed in (a circuit step may
    // name any agent as approver); what it lists is checked with circuits.
    let manager_pages = ["/blackouts"];
    for p in admin_pages {
        let a = get(&w, p, Some(&agent)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "agent on {p}");
        assert!(a.body.contains("Accès refusé"), "{p}: {}", a.body);
        assert_eq!(
            get(&w, p, Some(&manager)).await.status,
            StatusCode::FORBIDDEN,
            "manager on {p}"
        );
        let a = get(&w, p, Some(&admin)).await;
        assert_eq!(a.status, StatusCode::OK, "admin on {p}: {}", a.body);
    }
    for p in manager_pages {
        assert_eq!(
            get(&w, p, Some(&agent)).await.status,
            StatusCode::FORBIDDEN,
            "agent on {p}"
        );
        assert_eq!(
            get(&w, p, Some(&manager)).await.status,
            StatusCode::OK,
            "manager on {p}"
        );
        assert_eq!(get(&w, p, Some(&admin)).await.status, StatusCode::OK, "admin on {p}");
    }
    // A POST to an admin action with a valid token is still refused to an agent.
    let a = post(
        &w,
        "/admin/policies/global/-",
        Some(&agent),
        &[("_csrf", &agent.csrf), ("body", "{}")],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // The menu shows what the role allows, and nothing more.
    let home = get(&w, "/", Some(&agent)).await.body;
    assert!(
        !home.contains("/admin/grants") && !home.contains("/blackouts") && !home.contains("/calendar"),
        "{home}"
    );
    let home = get(&w, "/", Some(&admin)).await.body;
    assert!(
        home.contains("/admin/grants") && home.contains("administrateur"),
        "{home}"
    );
    let me = get(&w, "/api/v1/me", Some(&manager)).await.body;
    assert!(me.contains("\"role\":\"manager\""), "{me}");
}

#[tokio::test]
async fn hostile_input_is_shown_as_text() {
    let w = world().await;
    let agent = login(&w, w.agent).await;
    let admin = login(&w, w.admin).await;
    let escaped = "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;";
    for path in ["/bookings".to_owned(), format!("/bookings/{}", w.booking)] {
        let a = get(&w, &path, Some(&agent)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(!a.body.contains(HOSTILE), "{path} shows the script raw");
        assert!(named_escapes(&a.body).contains(escaped), "{path}: {}", a.body);
    }
    // A hostile resource name, created through the admin form.
    let hostile_name = "<img src=x onerror=alert(1)>";
    let (site, kind) = (w.site.to_string(), w.room.resource_type_id.to_string());
    let a = post(
        &w,
        "/admin/resources",
        Some(&admin),
        &[
            ("_csrf", &admin.csrf),
            ("name", hostile_name),
            ("mailbox", "hostile@plainecommune.fr"),
            ("site", &site),
            ("kind", &kind),
            ("capacity", ""),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let list = get(&w, "/admin/resources", Some(&admin)).await.body;
    assert!(!list.contains(hostile_name));
    assert!(
        named_escapes(&list).contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{list}"
    );
    // Search boxes echo their text escaped.
    let a = get(
        &w,
        "/admin/audit?actor=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        Some(&admin),
    )
    .await;
    assert!(!a.body.contains("<script>alert(1)</script>"));
    assert!(named_escapes(&a.body).contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let a = get(&w, "/admin/grants?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", Some(&admin)).await;
    assert!(!a.body.contains("<script>alert(1)</script>"));
    // The audit log shows the hostile name as text too.
    let a = get(&w, "/admin/audit", Some(&admin)).await;
    assert!(!a.body.contains(hostile_name));
}

#[tokio::test]
async fn an_internal_error_shows_a_reference_and_hides_the_cause() {
    let w = world().await;
    let agent = login(&w, w.agent).await;
    // A store whose pool is closed fails every query.
    let broken = Store::connect(&w.db.url, 1).await.expect("connect");
    broken.pool().close().await;
    let state = WebState {
        store: broken,
        ..w.state.clone()
    };
    let response = resa::web::router(state)
        .oneshot(
            Request::get("/bookings")
                .header(header::COOKIE, &agent.cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let body = String::from_utf8_lossy(&body);
    let at = body.find("Erreur interne — référence").expect("the reference text");
    let reference: String = body[at..]
        .split("class=\"reference\">")
        .nth(1)
        .expect("reference")
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(reference.len(), 8, "{body}");
    for internal in ["pool", "sqlx", "closed", "database", "Pool"] {
        assert!(!body.contains(internal), "the page leaks {internal:?}: {body}");
    }
}

#[tokio::test]
async fn the_explainer_shows_rules_verdicts_and_where_each_policy_value_comes_from() {
    let w = world().await;
    let policy = Policy {
        buffer_after_minutes: Some(15),
        ..Policy::default()
    };
    w.store
        .set_policy(Scope::Site(w.site), &policy, now())
        .await
        .expect("policy");
    // A second request, refused by the first one's slot, to have reasons.
    w.store
        .record_request(
            &IncomingRequest {
                resource_id: w.room.id,
                uid: "second".into(),
                sequence: 0,
                source: Source::Exchange,
                organiser_address: "alice@plainecommune.fr".into(),
                organiser_name: None,
                subject: Some("Deuxième".into()),
                attendees: 2,
                when: When::Single {
                    start: tue(14, 30),
                    end: tue(15, 30),
                },
                exchange_item_id: None,
                requested_at: now(),
            },
            now(),
        )
        .await
        .expect("second");
    let agent = login(&w, w.agent).await;
    let list = get(&w, "/bookings", Some(&agent)).await.body;
    assert!(
        list.contains("La salle est déjà réservée"),
        "the reason is shown in the list: {list}"
    );
    let page = get(&w, &format!("/bookings/{}", w.booking), Some(&agent)).await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "Règle par règle",
        "Conflits",
        "respectée",
        "valeur par défaut",
        "Salle Cézanne",
    ] {
        assert!(page.body.contains(text), "missing {text:?}: {}", page.body);
    }
    // The site's buffer is set after the first decision: the explainer of a
    // new decision names the site.
    let second = sqlx::query_scalar::<_, Uuid>("SELECT id FROM bookings WHERE uid = 'second'")
        .fetch_one(w.store.pool())
        .await
        .expect("second");
    let page = get(&w, &format!("/bookings/{second}"), Some(&agent)).await.body;
    assert!(page.contains("héritée de Site « Siège »"), "{page}");
    assert!(page.contains("non respectée"), "{page}");
    // In English on demand.
    let en = get(&w, &format!("/bookings/{second}?lang=en"), Some(&agent)).await;
    assert!(en.body.contains("inherited from Site « Siège »"), "{}", en.body);
    assert!(
        en.body.contains("The room is already booked") || en.body.contains("already"),
        "{}",
        en.body
    );
    assert!(
        en.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap_or_default().starts_with("resa_lang=en"))
    );
    // The manager of the site may see it; another agent may not even know it exists.
    let manager = login(&w, w.manager).await;
    assert_eq!(
        get(&w, &format!("/bookings/{second}"), Some(&manager)).await.status,
        StatusCode::OK
    );
    let other = login(&w, w.other).await;
    assert_eq!(
        get(&w, &format!("/bookings/{second}"), Some(&other)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&w, &format!("/api/v1/bookings/{second}"), Some(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let api = get(&w, &format!("/api/v1/bookings/{second}"), Some(&agent)).await;
    assert!(api.body.contains("\"outcome\":\"decline\""), "{}", api.body);
}

#[tokio::test]
async fn sessions_keep_only_a_hash_expire_and_end_at_logout() {
    let w = world().await;
    let agent = login(&w, w.agent).await;
    let raw = agent.cookie.trim_start_matches("resa_session=").to_owned();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT id_hash FROM web_sessions")
        .fetch_one(w.store.pool())
        .await
        .expect("session row");
    assert_ne!(stored, raw.as_bytes());
    assert_eq!(stored, resa::store::web::session_hash(&raw));
    assert_eq!(get(&w, "/bookings", Some(&agent)).await.status, StatusCode::OK);

    let a = post(&w, "/logout", Some(&agent), &[("_csrf", &agent.csrf)]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let cookie = a
        .headers
        .get(header::SET_COOKIE)
        .expect("cookie")
        .to_str()
        .expect("ascii");
    assert!(cookie.contains("Max-Age=0") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert_eq!(get(&w, "/bookings", Some(&agent)).await.status, StatusCode::SEE_OTHER);

    // A session not used for longer than the idle limit is over.
    let late = login(&w, w.agent).await;
    let clock = ManualClock::new(now() + chrono::Duration::hours(3));
    let state = WebState {
        clock: Arc::new(clock),
        ..w.state.clone()
    };
    let response = resa::web::router(state)
        .oneshot(
            Request::get("/bookings")
                .header(header::COOKIE, &late.cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Expired sessions are purged.
    let purged = w
        .store
        .purge_sessions(now() + chrono::Duration::hours(13))
        .await
        .expect("purge");
    assert!(purged >= 1, "{purged}");

    // With secure cookies, the cookie is Secure and host-only.
    let state = WebState {
        secure_cookies: true,
        ..w.state.clone()
    };
    let response = resa::web::router(state)
        .oneshot(Request::get("/login").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert!(
        response.headers().contains_key(header::STRICT_TRANSPORT_SECURITY),
        "HSTS over HTTPS"
    );
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .expect("pre-session cookie")
        .to_str()
        .expect("ascii");
    assert!(
        cookie.starts_with("__Host-") && cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_web_booking_is_decided_by_the_engine_and_handed_to_exchange() {
    let w = world().await;
    let agent = login(&w, w.agent).await;
    let search = get(
        &w,
        "/search?kind=&site=&date=2026-12-01&start=14:30&end=15:00&capacity=",
        Some(&agent),
    )
    .await;
    assert_eq!(search.status, StatusCode::OK);
    assert!(
        search.body.contains("Occupée sur le créneau demandé"),
        "{}",
        search.body
    );
    let search = get(
        &w,
        "/search?kind=&site=&date=2026-12-01&start=10:00&end=11:00&capacity=4",
        Some(&agent),
    )
    .await;
    assert!(search.body.contains("Libre sur le créneau demandé"), "{}", search.body);

    let room = w.room.id.to_string();
    let a = post(
        &w,
        "/book",
        Some(&agent),
        &[
            ("_csrf", &agent.csrf),
            ("resource", &room),
            ("date", "2026-12-01"),
            ("start", "10:00"),
            ("end", "11:00"),
            ("subject", "Point d'équipe"),
            ("attendees", "4"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(location(&a).starts_with("/bookings/"), "{}", location(&a));
    // The meeting waits in the outbox, queued with the decision, and the
    // outbox worker is woken for it.
    let meetings = queued_meetings(&w.store).await;
    assert_eq!(meetings.len(), 1);
    let (booking, mailbox, meeting) = &meetings[0];
    assert_eq!(mailbox, "salle.cezanne@plainecommune.fr");
    assert_eq!((meeting.start, meeting.end), (tue(10, 0), tue(11, 0)));
    assert_eq!(meeting.subject, "Point d'équipe");
    assert!(!meeting.tentative);
    assert!(meeting.body.contains("accept"), "the decision's text: {}", meeting.body);
    tokio::time::timeout(std::time::Duration::from_secs(1), w.wake.notified())
        .await
        .expect("the outbox worker is woken");
    let booking = *booking;
    let source: String = sqlx::query_scalar("SELECT source FROM bookings WHERE id = $1")
        .bind(booking)
        .fetch_one(w.store.pool())
        .await
        .expect("booking");
    assert_eq!(source, "web");

    // Cancelling frees the slot.
    let cancel = format!("/bookings/{}/cancel", booking);
    let a = post(&w, &cancel, Some(&agent), &[("_csrf", &agent.csrf)]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(
        w.store
            .held_slots(w.room.id, tue(10, 0), tue(11, 0))
            .await
            .expect("slots")
            .is_empty()
    );
    // Exchange is told through the outbox, in the same transaction.
    let queued: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM outbox WHERE booking_id = $1 AND kind = 'cancel_meeting'")
            .bind(booking)
            .fetch_all(w.store.pool())
            .await
            .expect("outbox");
    assert_eq!(queued, ["cancel_meeting"]);
}

#[tokio::test]
async fn a_manager_approves_a_held_booking_with_a_comment() {
    let w = world().await;
    let hold = Policy {
        default_right: Some(resa::domain::policy::DefaultRight::Request),
        ..Policy::default()
    };
    w.store.set_policy(Scope::Global, &hold, now()).await.expect("policy");
    let recorded = w
        .store
        .record_request(
            &IncomingRequest {
                resource_id: w.room.id,
                uid: "held".into(),
                sequence: 0,
                source: Source::Exchange,
                organiser_address: "dave@plainecommune.fr".into(),
                organiser_name: Some("Dave Autre".into()),
                subject: Some("À valider".into()),
                attendees: 3,
                when: When::Single {
                    start: tue(9, 0),
                    end: tue(10, 0),
                },
                exchange_item_id: Some("item-held".into()),
                requested_at: now(),
            },
            now(),
        )
        .await
        .expect("recorded");
    let Recorded::Decided {
        booking_id, decision, ..
    } = recorded
    else {
        panic!("not decided")
    };
    assert_eq!(decision.kind(), "hold");
    let manager = login(&w, w.manager).await;
    let queue = get(&w, "/approvals", Some(&manager)).await.body;
    assert!(queue.contains("À valider"), "{queue}");
    let agent = login(&w, w.agent).await;
    let a = post(
        &w,
        &format!("/approvals/{booking_id}"),
        Some(&agent),
        &[("_csrf", &agent.csrf), ("verdict", "approve")],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "an agent cannot approve");
    let a = post(
        &w,
        &format!("/approvals/{booking_id}"),
        Some(&manager),
        &[
            ("_csrf", &manager.csrf),
            ("verdict", "approve"),
            ("comment", "Bonne réunion <b>!</b>"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&a), "/approvals?msg=approvals.done");
    let status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1")
        .bind(booking_id)
        .fetch_one(w.store.pool())
        .await
        .expect("status");
    assert_eq!(status, "accepted");
    // The final answer goes back to Outlook through the outbox.
    let replies: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT kind, payload FROM outbox WHERE booking_id = $1 ORDER BY id")
            .bind(booking_id)
            .fetch_all(w.store.pool())
            .await
            .expect("outbox");
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0].0, "tentative");
    assert_eq!(replies[1].0, "accept");
    assert_eq!(replies[1].1["reference_item_id"], "item-held");
    assert!(
        replies[1].1["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Bonne réunion"),
        "{replies:?}"
    );
    // Deciding twice does nothing.
    let again = post(
        &w,
        &format!("/approvals/{booking_id}"),
        Some(&manager),
        &[("_csrf", &manager.csrf), ("verdict", "refuse")],
    )
    .await;
    assert_eq!(location(&again), "/approvals?msg=approvals.gone");
    let dave = login(&w, w.other).await;
    let page = get(&w, &format!("/bookings/{booking_id}"), Some(&dave)).await.body;
    let page = named_escapes(&page);
    assert!(
        page.contains("Approuvée par un gestionnaire") && page.contains("Bonne réunion &lt;b&gt;!&lt;/b&gt;"),
        "{page}"
    );
    let audit = get(
        &w,
        "/admin/audit?action=booking.approve",
        Some(&login(&w, w.admin).await),
    )
    .await
    .body;
    assert!(audit.contains("Bob Durand"), "{audit}");
}

#[tokio::test]
async fn admins_see_policies_by_scope_and_save_them_validated() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let path = format!("/admin/policies/site/{}", w.site);
    let a = post(
        &w,
        &path,
        Some(&admin),
        &[("_csrf", &admin.csrf), ("body", "{\"no_such_rule\": 1}")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("Règles invalides"), "{}", a.body);
    let a = post(
        &w,
        &path,
        Some(&admin),
        &[("_csrf", &admin.csrf), ("body", "{\"min_notice_minutes\": 30}")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = get(&w, &path, Some(&admin)).await.body;
    assert!(page.contains("fixée ici"), "{page}");
    let page = get(&w, &format!("/admin/policies/resource/{}", w.room.id), Some(&admin))
        .await
        .body;
    assert!(page.contains("héritée de Site « Siège »"), "{page}");
    assert!(page.contains("valeur par défaut"), "{page}");
    let audit = get(&w, "/admin/audit?action=policy.set", Some(&admin)).await.body;
    assert!(audit.contains("policy.set"), "{audit}");
}

#[tokio::test]
async fn admins_set_rules_one_by_one_and_a_mistake_keeps_what_they_typed() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let path = format!("/admin/policies/site/{}", w.site);
    let page = get(&w, &path, Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    // Every rule has its control, saying what it inherits.
    assert!(page.body.contains("name=\"value.min_notice_minutes\""), "{}", page.body);
    assert!(
        page.body.contains("name=\"hours.opening_hours.saturday\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Vide : hérite 0 (valeur par défaut)"),
        "{}",
        page.body
    );

    // Mistakes: each one named, linked from the summary, what was typed kept, nothing saved.
    let bad = post(
        &w,
        &path,
        Some(&admin),
        &[
            ("_csrf", &admin.csrf),
            ("value.min_notice_minutes", "beaucoup"),
            ("value.max_duration_minutes", "120"),
            ("hours.opening_hours.monday", "huit heures"),
            ("value.default_right", "<script>alert(1)</script>"),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = named_escapes(&bad.body);
    assert!(body.contains("Le formulaire contient des erreurs"), "{body}");
    assert!(body.contains("href=\"#value.min_notice_minutes\""), "{body}");
    assert!(body.contains("href=\"#hours.opening_hours.monday\""), "{body}");
    assert!(
        body.contains("value=\"beaucoup\"") && body.contains("value=\"120\""),
        "{body}"
    );
    assert!(body.contains("Lundi « huit heures »"), "{body}");
    assert!(!bad.body.contains("<script>alert"), "hostile input shown as markup");
    assert_eq!(
        w.store
            .policy_at(resa::domain::Scope::Site(w.site))
            .await
            .expect("policy"),
        None
    );

    // Set three rules here; the others stay inherited.
    let mut form = vec![
        ("_csrf", admin.csrf.as_str()),
        ("value.min_notice_minutes", "45"),
        ("value.default_right", "request"),
        ("value.max_duration_minutes", ""),
    ];
    for day in [
        "hours.opening_hours.monday",
        "hours.opening_hours.tuesday",
        "hours.opening_hours.wednesday",
        "hours.opening_hours.thursday",
        "hours.opening_hours.friday",
    ] {
        form.push((day, "8h-12h, 13:30-19h"));
    }
    form.push(("hours.opening_hours.saturday", "fermé"));
    let ok = post(&w, &path, Some(&admin), &form).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let page = get(&w, &path, Some(&admin)).await.body;
    assert!(page.contains("value=\"45\""), "{page}");
    assert!(page.contains("value=\"08:00-12:00, 13:30-19:00\""), "{page}");
    assert!(page.contains("<option value=\"request\" selected>"), "{page}");

    // The room inherits them, and the engine applies them.
    let effective = w.store.effective_policy_of(w.room.id).await.expect("policy");
    assert_eq!(effective.min_notice_minutes.value, 45);
    let room_page = get(&w, &format!("/admin/policies/resource/{}", w.room.id), Some(&admin))
        .await
        .body;
    assert!(room_page.contains("45 (héritée de Site « Siège »)"), "{room_page}");
    let saturday = chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 12, 5, 10, 0, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc);
    let recorded = w
        .store
        .record_request(
            &IncomingRequest {
                resource_id: w.room.id,
                uid: "samedi".into(),
                sequence: 0,
                source: Source::Exchange,
                organiser_address: "carol@plainecommune.fr".into(),
                organiser_name: None,
                subject: Some("Permanence".into()),
                attendees: 2,
                when: When::Single {
                    start: saturday,
                    end: saturday + chrono::Duration::hours(1),
                },
                exchange_item_id: Some("item-samedi".into()),
                requested_at: now(),
            },
            now(),
        )
        .await
        .expect("recorded");
    match recorded {
        Recorded::Decided { decision, .. } => {
            assert_eq!(decision.kind(), "decline");
            assert!(
                decision.reason_codes().contains(&"outside_opening_hours"),
                "{:?}",
                decision.reason_codes()
            );
        }
        other => panic!("not decided: {other:?}"),
    }

    // Emptying a rule makes it inherited again.
    let ok = post(
        &w,
        &path,
        Some(&admin),
        &[("_csrf", &admin.csrf), ("value.min_notice_minutes", "45")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let effective = w.store.effective_policy_of(w.room.id).await.expect("policy");
    assert_eq!(effective.min_notice_minutes.value, 45);
    assert_ne!(effective.opening_hours.scope, resa::domain::Scope::Site(w.site));
    assert_ne!(effective.default_right.scope, resa::domain::Scope::Site(w.site));
}

#[tokio::test]
async fn admins_define_equipment_and_agents_search_by_it() {
    use resa::store::catalogue::NewResource;
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let agent = login(&w, w.agent).await;
    let room_type = w.room.resource_type_id;
    let path = format!("/admin/types/{room_type}/attributes");
    let page = get(&w, &path, Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Ce type ne définit encore aucun attribut."),
        "{}",
        page.body
    );
    assert_eq!(get(&w, &path, Some(&agent)).await.status, StatusCode::FORBIDDEN);
    let refused = post(
        &w,
        &path,
        Some(&agent),
        &[
            ("_csrf", &agent.csrf),
            ("key", "visio"),
            ("label_fr", "Visio"),
            ("label_en", "Video"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // A bad key is named and what was typed stays.
    let bad = post(
        &w,
        &path,
        Some(&admin),
        &[
            ("_csrf", &admin.csrf),
            ("key", "Visio Conf"),
            ("label_fr", "Visioconférence"),
            ("label_en", "Video conferencing"),
            ("value_type", "boolean"),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = named_escapes(&bad.body);
    assert!(body.contains("écrit en minuscules sans accent"), "{body}");
    assert!(body.contains("value=\"Visio Conf\""), "{body}");
    let form = |key: &'static str, label: &'static str| {
        vec![
            ("_csrf", admin.csrf.clone()),
            ("key", key.to_owned()),
            ("label_fr", label.to_owned()),
            ("label_en", "Video conferencing".to_owned()),
            ("value_type", "boolean".to_owned()),
        ]
    };
    let send_form = |f: Vec<(&'static str, String)>| {
        let w = &w;
        let admin = &admin;
        let path = path.clone();
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(w, &path, Some(admin), &pairs).await
        }
    };
    let ok = send_form(form("visio", "Visio <b>conf</b>")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let again = send_form(form("visio", "Visio")).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("a déjà un attribut de cette clé"), "{}", again.body);
    let page = get(&w, &path, Some(&admin)).await.body;
    assert!(
        page.contains("Visio &lt;b&gt;conf&lt;/b&gt;") || page.contains("Visio &#60;b&#62;conf"),
        "{page}"
    );
    assert!(!page.contains("<b>conf</b>"), "a label was shown as markup");

    // Room A has it, room B does not.
    let other = w
        .store
        .create_resource(&NewResource {
            site_id: w.room.site_id,
            resource_type_id: room_type,
            name: "Salle Monet",
            mailbox_smtp: "salle.monet@plainecommune.fr",
            exchange_endpoint: &w.room.exchange_endpoint,
            capacity: Some(10),
        })
        .await
        .expect("room b");
    let values = format!("/admin/resources/{}/attributes", w.room.id);
    let wrong = post(
        &w,
        &values,
        Some(&admin),
        &[("_csrf", &admin.csrf), ("visio", "peut-être")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        named_escapes(&wrong.body).contains("oui ou non est attendu"),
        "{}",
        wrong.body
    );
    let set = post(&w, &values, Some(&admin), &[("_csrf", &admin.csrf), ("visio", "true")]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    let missing_token = post(&w, &values, Some(&admin), &[("visio", "false")]).await;
    assert_eq!(missing_token.status, StatusCode::FORBIDDEN);

    let search = "/search?kind=&site=&date=2026-12-01&start=10:00&end=11:00&capacity=";
    let all = get(&w, search, Some(&agent)).await.body;
    assert!(all.contains("Salle Monet") && all.contains(&w.room.name), "{all}");
    assert!(all.contains("name=\"equipment\" value=\"visio\""), "{all}");
    let equipped = get(&w, &format!("{search}&equipment=visio"), Some(&agent)).await.body;
    assert!(equipped.contains(&w.room.name), "{equipped}");
    assert!(!equipped.contains("Salle Monet"), "{equipped}");
    assert!(equipped.contains("value=\"visio\" checked"), "{equipped}");
    let api = get(&w, "/api/v1/resources", Some(&agent)).await.body;
    let api: serde_json::Value = serde_json::from_str(&api).expect("json");
    let equipment_of = |id: uuid::Uuid| {
        api["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["id"] == id.to_string()))
            .map(|i| i["equipment"].clone())
    };
    assert_eq!(equipment_of(w.room.id), Some(serde_json::json!(["visio"])));
    assert_eq!(equipment_of(other.id), Some(serde_json::json!([])));

    // A definition in use is not removed.
    let remove = format!("{path}/visio/delete");
    let in_use = post(&w, &remove, Some(&admin), &[("_csrf", &admin.csrf)]).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    assert!(in_use.body.contains("renseigné sur 1 ressource(s)"), "{}", in_use.body);
    let cleared = post(&w, &values, Some(&admin), &[("_csrf", &admin.csrf), ("visio", "")]).await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    let removed = post(&w, &remove, Some(&admin), &[("_csrf", &admin.csrf)]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let audit = get(&w, "/admin/audit?action=attribute.set", Some(&admin)).await.body;
    assert!(audit.contains("attribute.set"), "{audit}");
}

async fn post_json(w: &World, path: &str, who: &Login, csrf: Option<&str>, body: &str) -> Answer {
    let mut r = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &who.cookie);
    if let Some(token) = csrf {
        r = r.header("x-csrf-token", token);
    }
    send(w, r.body(Body::from(body.to_owned())).expect("request")).await
}

fn json_of(a: &Answer) -> serde_json::Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", a.body))
}

#[tokio::test]
async fn the_api_books_cancels_and_approves_with_the_same_rules_as_the_site() {
    let w = world().await;
    let agent = login(&w, w.agent).await;
    let room = w.room.id;
    let book = |start: &str, end: &str| {
        serde_json::json!({ "resource_id": room, "start": start, "end": end, "subject": "Point API", "attendees": 3 })
            .to_string()
    };
    // No token, a wrong token, a body that does not fit: refused, nothing booked.
    let none = post_json(
        &w,
        "/api/v1/bookings",
        &agent,
        None,
        &book("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
    )
    .await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    assert_eq!(json_of(&none)["error"], "csrf");
    let wrong = post_json(
        &w,
        "/api/v1/bookings",
        &agent,
        Some("nope"),
        &book("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let bad = post_json(
        &w,
        "/api/v1/bookings",
        &agent,
        Some(&agent.csrf),
        r#"{"resource_id": "x"}"#,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&bad)["error"], "bad_request");
    assert!(
        json_of(&bad)["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("JSON body"),
        "{}",
        bad.body
    );
    let backwards = post_json(
        &w,
        "/api/v1/bookings",
        &agent,
        Some(&agent.csrf),
        &book("2026-12-01T10:00:00Z", "2026-12-01T09:00:00Z"),
    )
    .await;
    assert_eq!(backwards.status, StatusCode::BAD_REQUEST);
    assert!(queued_meetings(&w.store).await.is_empty());

    // A free slot is accepted and queued for Exchange; a taken one declined with its reason.
    let ok = post_json(
        &w,
        "/api/v1/bookings",
        &agent,
        Some(&agent.csrf),
        &book("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let ok = json_of(&ok);
    assert_eq!(
        (ok["outcome"].as_str(), ok["exchange"].as_str()),
        (Some("accept"), Some("queued"))
    );
    assert_eq!(queued_meetings(&w.store).await.len(), 1);
    let taken = post_json(
        &w,
        "/api/v1/bookings",
        &agent,
        Some(&agent.csrf),
        &book("2026-12-01T13:30:00Z", "2026-12-01T14:30:00Z"),
    )
    .await;
    let taken = json_of(&taken);
    assert_eq!(taken["outcome"], "decline");
    assert_eq!(taken["reasons"], serde_json::json!(["conflict"]));
    assert!(
        taken["message"].as_str().unwrap_or_default().contains("déjà réservée"),
        "{taken}"
    );

    // Someone else cannot cancel it; its organiser can, once.
    let booking = ok["booking_id"].as_str().unwrap_or_default().to_owned();
    let cancel = format!("/api/v1/bookings/{booking}/cancel");
    let dave = login(&w, w.other).await;
    let stranger = post_json(&w, &cancel, &dave, Some(&dave.csrf), "").await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    let done = post_json(&w, &cancel, &agent, Some(&agent.csrf), "").await;
    assert_eq!(json_of(&done)["cancelled"], true, "{}", done.body);
    let again = post_json(&w, &cancel, &agent, Some(&agent.csrf), "{}").await;
    assert_eq!(json_of(&again)["cancelled"], false);

    // Held for approval: in the manager's queue, refused to the agent, approved by the manager.
    let request_only = resa::domain::Policy {
        default_right: Some(resa::domain::policy::DefaultRight::Request),
        ..resa::domain::Policy::default()
    };
    w.store
        .set_policy(resa::domain::Scope::Site(w.site), &request_only, now())
        .await
        .expect("policy");
    let held = post_json(
        &w,
        "/api/v1/bookings",
        &agent,
        Some(&agent.csrf),
        &book("2026-12-01T15:00:00Z", "2026-12-01T16:00:00Z"),
    )
    .await;
    let held = json_of(&held);
    assert_eq!(held["outcome"], "hold", "{held}");
    let held_id = held["booking_id"].as_str().unwrap_or_default().to_owned();
    let manager = login(&w, w.manager).await;
    let queue = json_of(&get(&w, "/api/v1/approvals", Some(&manager)).await);
    assert!(
        queue["held"]
            .as_array()
            .is_some_and(|h| h.iter().any(|b| b["booking_id"] == held_id.as_str())),
        "{queue}"
    );
    let decide = format!("/api/v1/approvals/{held_id}");
    let by_agent = post_json(&w, &decide, &agent, Some(&agent.csrf), r#"{"verdict": "approve"}"#).await;
    assert_eq!(by_agent.status, StatusCode::FORBIDDEN);
    let odd = post_json(&w, &decide, &manager, Some(&manager.csrf), r#"{"verdict": "maybe"}"#).await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    let approved = post_json(
        &w,
        &decide,
        &manager,
        Some(&manager.csrf),
        r#"{"verdict": "approve", "comment": "OK"}"#,
    )
    .await;
    assert_eq!(json_of(&approved)["done"], true, "{}", approved.body);
    let status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1::uuid")
        .bind(&held_id)
        .fetch_one(w.store.pool())
        .await
        .expect("status");
    assert_eq!(status, "accepted");
    let doc = get(&w, "/api/openapi.json", None).await.body;
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("openapi");
    for path in [
        "/api/v1/bookings",
        "/api/v1/bookings/{id}/cancel",
        "/api/v1/approvals/{id}",
    ] {
        assert!(doc["paths"][path].get("post").is_some(), "{path} is not documented");
    }
}

async fn post_file(w: &World, path: &str, who: &Login, csrf: Option<&str>, file: &str) -> Answer {
    let boundary = "resa-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = String::new();
    if let Some(token) = csrf {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"salles.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
    ));
    let r = Request::post(path)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header(header::COOKIE, &who.cookie)
        .body(Body::from(body))
        .expect("request");
    send(w, r).await
}

#[tokio::test]
async fn admins_import_resources_from_a_csv_file_with_every_bad_line_reported() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let agent = login(&w, w.agent).await;
    let page = get(&w, "/admin/resources/import", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("enctype=\"multipart/form-data\""), "{}", page.body);
    let good = "name,mailbox,site,type,capacity,exchange
Salle Monet,salle.monet@plainecommune.fr,plaine-commune/siege,salle,8,pc
Salle <b>Renoir</b>,salle.renoir@plainecommune.fr,plaine-commune/siege,salle,,pc
";
    let bad = "name,mailbox,site,type,capacity,exchange
Salle Sisley,salle.sisley@plainecommune.fr,plaine-commune/siege,salle,8,pc
Salle Degas,pas-une-adresse,plaine-commune/siege,salle,-3,pc
Salle Manet,salle.manet@plainecommune.fr,plaine-commune/nulle-part,salle,4,ailleurs
";
    // Refused without the token, and to agents.
    let no_token = post_file(&w, "/admin/resources/import", &admin, None, good).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let by_agent = post_file(&w, "/admin/resources/import", &agent, Some(&agent.csrf), good).await;
    assert_eq!(by_agent.status, StatusCode::FORBIDDEN);
    // A wrong file: every bad line named, nothing written.
    let refused = post_file(&w, "/admin/resources/import", &admin, Some(&admin.csrf), bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = named_escapes(&refused.body);
    assert!(body.contains("été importé. Corrigez le fichier"), "{body}");
    assert!(
        body.contains("<th scope=\"row\">3</th>") && body.contains("<th scope=\"row\">4</th>"),
        "{body}"
    );
    assert!(
        body.contains("pas-une-adresse") && body.contains("nulle-part") && body.contains("ailleurs"),
        "{body}"
    );
    assert!(
        w.store
            .resource_by_mailbox("salle.sisley@plainecommune.fr")
            .await
            .expect("query")
            .is_none(),
        "a good line of a wrong file was imported"
    );
    // A good file: imported, names kept as text; the same file again changes nothing.
    let done = post_file(&w, "/admin/resources/import", &admin, Some(&admin.csrf), good).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("2 créées, 0 modifiées, 0 inchangées"),
        "{}",
        done.body
    );
    let again = post_file(&w, "/admin/resources/import", &admin, Some(&admin.csrf), good).await;
    assert!(
        again.body.contains("0 créées, 0 modifiées, 2 inchangées"),
        "{}",
        again.body
    );
    let list = get(&w, "/admin/resources", Some(&admin)).await.body;
    assert!(
        list.contains("Salle &lt;b&gt;Renoir&lt;/b&gt;") || list.contains("Salle &#60;b&#62;Renoir"),
        "{list}"
    );
    let audit = get(&w, "/admin/audit?action=resources.import", Some(&admin)).await.body;
    assert!(audit.contains("resources.import"), "{audit}");
}

#[tokio::test]
async fn admins_edit_a_resource_and_take_it_out_of_booking() {
    use resa::store::catalogue::NewResource;
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let agent = login(&w, w.agent).await;
    let path = format!("/admin/resources/{}", w.room.id);
    let page = get(&w, &path, Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&format!("value=\"{}\"", w.room.name)),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("name=\"active\" type=\"checkbox\" checked"),
        "{}",
        page.body
    );
    assert_eq!(get(&w, &path, Some(&agent)).await.status, StatusCode::FORBIDDEN);
    w.store
        .create_resource(&NewResource {
            site_id: w.room.site_id,
            resource_type_id: w.room.resource_type_id,
            name: "Salle Monet",
            mailbox_smtp: "salle.monet@plainecommune.fr",
            exchange_endpoint: &w.room.exchange_endpoint,
            capacity: Some(6),
        })
        .await
        .expect("another room");
    let site = w.room.site_id.to_string();
    let form = |name: &'static str, mailbox: &'static str, capacity: &'static str, active: bool| {
        let mut f = vec![
            ("_csrf", admin.csrf.clone()),
            ("name", name.to_owned()),
            ("mailbox", mailbox.to_owned()),
            ("site", site.clone()),
            ("kind", String::new()),
            ("capacity", capacity.to_owned()),
            ("endpoint", "pc".to_owned()),
        ];
        if active {
            f.push(("active", "on".to_owned()));
        }
        f
    };
    let send_form = |f: Vec<(&'static str, String)>| {
        let (w, admin, path) = (&w, &admin, path.clone());
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(w, &path, Some(admin), &pairs).await
        }
    };
    // Mistakes keep what was typed.
    let bad = send_form(form("Salle Cézanne", "salle.cezanne@plainecommune.fr", "-2", true)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("value=\"-2\""), "{}", bad.body);
    let taken = send_form(form("Salle Cézanne", "salle.monet@plainecommune.fr", "12", true)).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    // Renamed, resized, taken out of booking.
    let saved = send_form(form(
        "Salle Cézanne (2e)",
        "salle.cezanne@plainecommune.fr",
        "14",
        false,
    ))
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let row = w.store.resource_row(w.room.id).await.expect("query").expect("room");
    assert_eq!(
        (row.name.as_str(), row.capacity, row.active),
        ("Salle Cézanne (2e)", Some(14), false)
    );
    assert_eq!(
        row.resource_type_id, w.room.resource_type_id,
        "the type does not change"
    );
    let search = get(
        &w,
        "/search?kind=&site=&date=2026-12-01&start=10:00&end=11:00&capacity=",
        Some(&agent),
    )
    .await
    .body;
    assert!(
        !search.contains("Salle Cézanne (2e)") && search.contains("Salle Monet"),
        "{search}"
    );
    let audit = get(&w, "/admin/audit?action=resource.update", Some(&admin)).await.body;
    assert!(audit.contains("resource.update"), "{audit}");
}

/// The browser tests: the real site on a loopback port, driven by headless
/// Chromium (Debian's) through playwright-core, with axe-core in every page.
/// Fails, never skips, when node, the npm packages or Chromium are missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_accessibility_keyboard_and_screenshots() {
    let w = world().await;
    // Equipment, so that the search and the attribute pages show their controls.
    for (key, value_type, choices) in [
        ("visio", ValueType::Boolean, vec![]),
        (
            "connectique",
            ValueType::Choice,
            vec!["HDMI".to_owned(), "VGA".to_owned()],
        ),
    ] {
        w.store
            .add_attribute_definition(&AttributeDef {
                resource_type_id: w.room.resource_type_id,
                key: key.into(),
                value_type,
                choices,
                required: false,
                label_fr: format!("Équipement {key}"),
                label_en: format!("Equipment {key}"),
            })
            .await
            .expect("definition");
    }
    w.store
        .set_resource_attributes(w.room.id, &[("visio".into(), Some(AttrValue::Boolean(true)))])
        .await
        .expect("attributes");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = dir.join("tests/browser/run.mjs");
    assert!(
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "node is missing: install it (apt-get install nodejs npm) and run .ci/browser-setup.sh"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run .ci/browser-setup.sh (apt-get install chromium chromium-driver)"
    );
    assert!(
        dir.join("tests/browser/node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run .ci/browser-setup.sh (npm ci in tests/browser)"
    );
    // A held booking, for the manager's queue.
    w.store
        .set_policy(
            Scope::ResourceType(w.room.resource_type_id),
            &Policy {
                default_right: Some(resa::domain::policy::DefaultRight::Request),
                ..Policy::default()
            },
            now(),
        )
        .await
        .expect("policy");
    w.store
        .record_request(
            &IncomingRequest {
                resource_id: w.room.id,
                uid: "browser-held".into(),
                sequence: 0,
                source: Source::Exchange,
                organiser_address: "dave@plainecommune.fr".into(),
                organiser_name: Some("Dave Autre".into()),
                subject: Some("Comité de pilotage".into()),
                attendees: 6,
                when: When::Single {
                    start: tue(16, 0),
                    end: tue(17, 0),
                },
                exchange_item_id: None,
                requested_at: now(),
            },
            now(),
        )
        .await
        .expect("held");
    let agent = login(&w, w.agent).await;
    let manager = login(&w, w.manager).await;
    let admin = login(&w, w.admin).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(resa::web::serve(listener, w.state.clone(), async move {
        let _ = stopped.await;
    }));
    let shots = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("target"))
        .join("screenshots");
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        tokio::process::Command::new("node")
            .arg(&script)
            .arg("--base")
            .arg(format!("http://127.0.0.1:{port}"))
            .arg("--cookie")
            .arg(&agent.cookie)
            .arg("--manager-cookie")
            .arg(&manager.cookie)
            .arg("--admin-cookie")
            .arg(&admin.cookie)
            .arg("--booking")
            .arg(w.booking.to_string())
            .arg("--resource")
            .arg(w.room.id.to_string())
            .arg("--site")
            .arg(w.site.to_string())
            .arg("--type")
            .arg(w.room.resource_type_id.to_string())
            .arg("--screenshots")
            .arg(&shots)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser tests finish within 5 minutes")
    .expect("node runs");
    let _ = stop.send(());
    let _ = server.await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser tests failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

/// The login form's pre-session cookie and CSRF token, as a browser gets them.
async fn login_form(w: &World, state: &WebState) -> (String, String) {
    let response = resa::web::router(state.clone())
        .oneshot(Request::get("/login").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with("resa_pre="))
        .and_then(|c| c.split(';').next())
        .expect("pre-session cookie")
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let body = String::from_utf8_lossy(&body);
    let csrf = body
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf field")
        .to_owned();
    let _ = w;
    (cookie, csrf)
}

async fn submit_login(state: &WebState, cookie: &str, csrf: &str, user: &str, password: &str) -> Answer {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("_csrf", csrf),
            ("username", user),
            ("password", password),
            ("next", "/bookings"),
        ])
        .finish();
    let response = resa::web::router(state.clone())
        .oneshot(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, cookie)
                .body(Body::from(body))
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn login_says_clearly_when_the_directory_cannot_be_reached() {
    let w = world().await;
    let mut down = resa::directory::DirectorySettings::new(
        "pc",
        "ldaps://127.0.0.1:1",
        "CN=svc,DC=pc,DC=local",
        resa::directory::Secret::new("x"),
        "DC=pc,DC=local",
        "DC=pc,DC=local",
    );
    down.timeout = std::time::Duration::from_secs(2);
    let state = WebState {
        directories: vec![down].into(),
        ..w.state.clone()
    };
    let (cookie, csrf) = login_form(&w, &state).await;
    let a = submit_login(&state, &cookie, &csrf, "alice", "secret").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        named_escapes(&a.body).contains("L&#39;annuaire est injoignable"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("127.0.0.1"), "no server detail: {}", a.body);
    assert!(a.body.contains("value=\"alice\""), "the user name is kept");
    // A token from another visitor does not open the form.
    let (_, other_csrf) = login_form(&w, &state).await;
    let a = submit_login(&state, &cookie, &other_csrf, "alice", "secret").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

/// Logs in through the form against the test Active Directory (Samba, started
/// by `.ci/samba-ad.sh`); fails, never skips, without it.
#[tokio::test]
async fn login_against_the_test_active_directory_opens_a_session() {
    let path = std::env::var("RESA_TEST_AD_ENV").unwrap_or_else(|_| {
        panic!("RESA_TEST_AD_ENV is not set: start the test AD with `.ci/samba-ad.sh start` and export its env file")
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let env: std::collections::HashMap<String, String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let get = |k: &str| env.get(k).cloned().unwrap_or_else(|| panic!("{k} missing from {path}"));
    let base = get("RESA_TEST_AD_BASE_DN");
    let mut pc = resa::directory::DirectorySettings::new(
        "plaine-commune",
        get("RESA_TEST_AD_LDAPS_URL"),
        get("RESA_TEST_AD_PC_BIND_DN"),
        resa::directory::Secret::from_file(std::path::Path::new(&get("RESA_TEST_AD_PC_PASSWORD_FILE")))
            .expect("secret"),
        format!("OU=Agents,OU=PlaineCommune,{base}"),
        format!("OU=Groupes,OU=PlaineCommune,{base}"),
    );
    pc.ca_file = Some(std::path::PathBuf::from(get("RESA_TEST_AD_CA_FILE")));
    pc.netbios_domain = Some(get("RESA_TEST_AD_NETBIOS"));
    pc.timeout = std::time::Duration::from_secs(10);
    let w = world().await;
    resa::directory::sync_once(&w.store, &pc, true, |_| {})
        .await
        .expect("sync");
    // Alice is in PC-DSI through the nested PC-Informatique: an admin.
    let state = WebState {
        directories: vec![pc].into(),
        admin_groups: vec![AdminGroup::parse("plaine-commune:PC-DSI").expect("admin group")],
        ..w.state.clone()
    };
    let (cookie, csrf) = login_form(&w, &state).await;
    // An unknown account is "wrong user name or password", as a wrong password is.
    let a = submit_login(&state, &cookie, &csrf, "personne.inconnue", "whatever").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("Identifiant ou mot de passe incorrect"), "{}", a.body);

    let a = submit_login(
        &state,
        &cookie,
        &csrf,
        "alice.martin",
        &get("RESA_TEST_AD_USER_PASSWORD"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(location(&a), "/bookings");
    let session = a
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with("resa_session="))
        .expect("session cookie")
        .to_owned();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    let me = Login {
        cookie: session.split(';').next().expect("pair").to_owned(),
        csrf: String::new(),
    };
    let response = resa::web::router(state.clone())
        .oneshot(
            Request::get("/api/v1/me")
                .header(header::COOKIE, &me.cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("\"role\":\"admin\""), "{body}");

    // The live group search, then a grant to the group found.
    let csrf: String = sqlx::query_scalar("SELECT csrf_token FROM web_sessions ORDER BY created_at DESC LIMIT 1")
        .fetch_one(w.store.pool())
        .await
        .expect("csrf");
    let me = Login { csrf, ..me };
    let search = send_with(&state, &me, Request::get("/admin/grants?q=Reservants")).await;
    assert_eq!(search.status, StatusCode::OK);
    assert!(search.body.contains("PC-Reservants-Salles"), "{}", search.body);
    let guid = search
        .body
        .split("name=\"guid\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a group to grant")
        .to_owned();
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("_csrf", me.csrf.as_str()),
            ("directory", "plaine-commune"),
            ("guid", guid.as_str()),
            ("scope", "global"),
            ("role", "book"),
        ])
        .finish();
    let created = send_with(
        &state,
        &me,
        Request::post("/admin/grants").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
    )
    .with_form(form)
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let grants = w.store.list_grants().await.expect("grants");
    assert_eq!(grants.len(), 2, "{grants:?}");
}

/// A request builder sent with a session cookie, with or without a form body.
struct Pending<'a> {
    state: &'a WebState,
    cookie: String,
    builder: axum::http::request::Builder,
}

fn send_with<'a>(state: &'a WebState, who: &Login, builder: axum::http::request::Builder) -> Pending<'a> {
    Pending {
        state,
        cookie: who.cookie.clone(),
        builder,
    }
}

impl Pending<'_> {
    async fn run(self, body: Body) -> Answer {
        let request = self
            .builder
            .header(header::COOKIE, self.cookie)
            .body(body)
            .expect("request");
        let response = resa::web::router(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn with_form(self, form: String) -> Answer {
        self.run(Body::from(form)).await
    }
}

impl<'a> std::future::IntoFuture for Pending<'a> {
    type Output = Answer;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run(Body::empty()))
    }
}

#[tokio::test]
async fn the_status_page_shows_sync_lag_errors_and_drift_and_resyncs_one_mailbox() {
    let w = world().await;
    let admin = login(&w, w.admin).await;
    let agent = login(&w, w.agent).await;
    // The room was last read 40 minutes ago and failed since; reconciliation
    // found a meeting resa never saw, with a hostile subject.
    w.store.register_mailboxes().await.expect("register");
    sqlx::query(
        "UPDATE mailbox_sync SET last_sync_at = $2, last_error = 'ErrorServerBusy', last_error_at = $3
         WHERE resource_id = $1",
    )
    .bind(w.room.id)
    .bind(now() - chrono::Duration::minutes(40))
    .bind(now() - chrono::Duration::minutes(2))
    .execute(w.store.pool())
    .await
    .expect("sync state");
    w.store
        .record_drift(
            w.room.id,
            &[resa::store::sync::Drift {
                kind: "unknown_item",
                uid: Some("direct-edit".into()),
                exchange_item_id: Some("AAMk".into()),
                details: serde_json::json!({
                    "start": tue(9, 0).to_rfc3339(),
                    "end": tue(10, 0).to_rfc3339(),
                    "subject": HOSTILE,
                }),
            }],
            now(),
        )
        .await
        .expect("drift");

    let page = get(&w, "/admin/status", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = named_escapes(&page.body);
    assert!(body.contains("40 min <strong>(en retard)</strong>"), "{body}");
    assert!(body.contains("ErrorServerBusy"), "{body}");
    assert!(body.contains("Écarts avec le calendrier"), "{body}");
    assert!(body.contains("réunion inconnue de resa"), "{body}");
    assert!(body.contains("le mardi 1er décembre 2026 de 9 h à 10 h"), "{body}");
    assert!(body.contains("direct-edit"), "{body}");
    assert!(!body.contains(HOSTILE), "a drift's subject is shown as text");
    let action = format!("/admin/status/{}/resync", w.room.id);
    assert!(body.contains(&action), "{body}");

    // Only an admin may ask for a resync, and only with the form's token.
    let a = post(&w, &action, Some(&agent), &[("_csrf", &agent.csrf)]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = post(&w, &action, Some(&admin), &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let unknown = format!("/admin/status/{}/resync", Uuid::new_v4());
    let a = post(&w, &unknown, Some(&admin), &[("_csrf", &admin.csrf)]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let requested: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT resync_requested_at FROM mailbox_sync WHERE resource_id = $1")
            .bind(w.room.id)
            .fetch_one(w.store.pool())
            .await
            .expect("row");
    assert_eq!(requested, None);

    let a = post(&w, &action, Some(&admin), &[("_csrf", &admin.csrf)]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&a), "/admin/status?msg=admin.resync_requested");
    let page = get(&w, location(&a), Some(&admin)).await;
    assert!(page.body.contains("Resynchronisation demandée"), "{}", page.body);
    assert!(page.body.contains("resynchronisation demandée"), "{}", page.body);
    let requested: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT resync_requested_at FROM mailbox_sync WHERE resource_id = $1")
            .bind(w.room.id)
            .fetch_one(w.store.pool())
            .await
            .expect("row");
    assert_eq!(requested, Some(now()));
    let audit = get(&w, "/admin/audit", Some(&admin)).await;
    assert!(audit.body.contains("mailbox.resync"), "{}", audit.body);
}

#[tokio::test]
async fn the_week_grid_shows_the_slot_on_seven_days_and_managers_see_their_resources_calendars() {
    let w = world().await;
    let agent = login(&w, w.agent).await;
    let manager = login(&w, w.manager).await;
    // Alice's meeting holds Tuesday 1 December, 14:00–15:00.
    let page = get(
        &w,
        "/search?kind=&site=&date=2026-11-30&start=14:00&end=15:00&capacity=&view=week",
        Some(&agent),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    for (day, state) in [
        ("lun. 30/11", "libre"),
        ("mar. 01/12", "occupé"),
        ("mer. 02/12", "libre"),
        ("dim. 06/12", "libre"),
    ] {
        let cell = format!("{day} : ");
        let at = page
            .body
            .find(&cell)
            .unwrap_or_else(|| panic!("no {day}: {}", page.body));
        assert!(
            page.body[at..at + 40].to_lowercase().contains(state),
            "{day} should be {state}: {}",
            &page.body[at..at + 40]
        );
    }
    // The day view is the default.
    let page = get(
        &w,
        "/search?kind=&site=&date=2026-11-30&start=14:00&end=15:00&capacity=",
        Some(&agent),
    )
    .await;
    assert!(!page.body.contains("mar. 01/12"), "{}", page.body);

    // The manager's calendar lists the slots of the resources he manages.
    assert_eq!(get(&w, "/calendar", Some(&agent)).await.status, StatusCode::FORBIDDEN);
    let page = get(&w, "/calendar?from=2026-11-30", Some(&manager)).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = named_escapes(&page.body);
    assert!(body.contains("Salle Cézanne"), "{body}");
    assert!(body.contains("le mardi 1er décembre 2026 de 14 h à 15 h"), "{body}");
    assert!(body.contains("Alice Martin"), "{body}");
    assert!(body.contains(&format!("/bookings/{}", w.booking)), "{body}");
    assert!(!body.contains(HOSTILE), "the subject is shown as text");
    assert!(body.contains("&lt;script&gt;"), "{body}");
    assert!(body.contains("/calendar?from=2026-12-07"), "{body}");
    // The next week holds nothing.
    let page = get(&w, "/calendar?from=2026-12-07", Some(&manager)).await;
    assert!(page.body.contains("Aucun créneau tenu"), "{}", page.body);
    let bad = get(&w, "/calendar?from=demain", Some(&manager)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("AAAA-MM-JJ"), "{}", bad.body);
}
