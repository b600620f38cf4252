//! Validation circuits against the Exchange simulator: a held meeting starts
//! its circuit, approvers answer in Outlook (vote, reply, automatic reply) or
//! on the web (queue, single-use link), reminders, escalation and the final
//! outcome follow the clock, and every message is in its reader's language
//! and names the rule that asked for approval.

use crate::harness::{TestDb, person, room_fixture, test_db};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, TimeZone, Utc};
use resa::clock::{Clock, ManualClock, SharedClock};
use resa::directory::entry::GroupRecord;
use resa::domain::circuit::{FinalOutcome, Quorum};
use resa::domain::policy::DefaultRight;
use resa::domain::{Policy, Scope};
use resa::ews::client::{Auth, Client, ClientConfig};
use resa::ews::ntlm::NtlmCredentials;
use resa::ews::soap::ServerVersion;
use resa::exchange::ews::EwsExchange;
use resa::metrics::Metrics;
use resa::notify::links::LinkSigner;
use resa::sim::seed::Seed;
use resa::sim::{SimHandle, SimOptions, Simulator};
use resa::store::Store;
use resa::store::circuits::{ApproverDef, CircuitDef, StepDef};
use resa::store::directory::SyncBatch;
use resa::sync::SyncContext;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;
use uuid::Uuid;

const ROOM: &str = "salle.cezanne@plainecommune.fr";
const ALICE: &str = "alice@plainecommune.fr";
const CAROL: &str = "carol@plainecommune.fr";
const DAVE: &str = "dave@plainecommune.fr";
const ERIN: &str = "erin@plainecommune.fr";
const FRANK: &str = "frank@plainecommune.fr";
const SECRET: &[u8] = b"a test key of thirty-two bytes!!";

/// Monday 30 November 2026, 08:00 in Paris.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 7, 0, 0).single().expect("valid")
}

fn seed() -> Seed {
    serde_json::from_value(json!({
        "mailboxes": [
            { "smtp": ROOM, "name": "Salle Cézanne", "kind": "room" },
            { "smtp": ALICE, "name": "Alice Martin", "kind": "user" },
            { "smtp": CAROL, "name": "Carol Petit", "kind": "user" },
            { "smtp": DAVE, "name": "Dave Moreau", "kind": "user" },
            { "smtp": ERIN, "name": "Erin Leroy", "kind": "user" },
            { "smtp": FRANK, "name": "Frank Smith", "kind": "user" },
        ],
        "service_account": { "login": "PC\\svc-resa", "password": "S3rvice!" },
    }))
    .expect("seed")
}

struct Rig {
    sim: SimHandle,
    db: TestDb,
    store: Store,
    room: Uuid,
    http: reqwest::Client,
    clock: ManualClock,
    ctx: SyncContext<EwsExchange>,
    people: HashMap<&'static str, Uuid>,
}

async fn rig() -> Rig {
    let clock = ManualClock::new(monday());
    let mut opts = SimOptions::new("127.0.0.1:0", seed(), ServerVersion::Exchange2010_SP2);
    opts.clock = Arc::new(clock.clone());
    let sim = Simulator::start(opts).await.expect("simulator starts");
    let db = test_db().await;
    let store = db
        .store()
        .clone()
        .with_link_signer(LinkSigner::new(SECRET, "https://resa.test").expect("signer"));
    let room = room_fixture(&store, ROOM, "sim", 8).await.room;
    let dir = store.ensure_directory("pc").await.expect("directory");
    let people = [
        person(1, "alice", "Alice Martin", ALICE),
        person(3, "carol", "Carol Petit", CAROL),
        person(4, "dave", "Dave Moreau", DAVE),
        person(5, "erin", "Erin Leroy", ERIN),
        person(6, "frank", "Frank Smith", FRANK),
    ];
    let group = |guid: u128, name: &str, members: Vec<String>| GroupRecord {
        object_guid: Uuid::from_u128(guid),
        dn: format!("CN={name},OU=Groupes,DC=pc,DC=local"),
        sam_account_name: name.into(),
        name: name.into(),
        description: None,
        member_dns: members,
        usn_changed: Some(1),
    };
    // Erin administers resa; Dave is in the group of approvers.
    let groups = [
        group(100, "GG-Resa-Admins", vec![people[3].dn.clone()]),
        group(101, "GG-Valideurs", vec![people[2].dn.clone()]),
    ];
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
            monday(),
        )
        .await
        .expect("people");
    let mut ids = HashMap::new();
    for sam in ["alice", "carol", "dave", "erin", "frank"] {
        let p = store.person_by_account("pc", sam).await.expect("q").expect("person");
        ids.insert(sam, p.id);
    }
    // Frank reads English.
    sqlx::query("UPDATE people SET preferred_language = 'en' WHERE id = $1")
        .bind(ids["frank"])
        .execute(db.pool())
        .await
        .expect("language");
    // Everybody may only request the room: each request is held.
    store
        .set_policy(
            Scope::Global,
            &Policy {
                default_right: Some(DefaultRight::Request),
                ..Policy::default()
            },
            monday(),
        )
        .await
        .expect("policy");
    store.register_mailboxes().await.expect("mailboxes");
    let shared: SharedClock = Arc::new(clock.clone());
    let url = url::Url::parse(&sim.ews_url()).expect("url");
    let auth = Auth::Ntlm(NtlmCredentials {
        domain: "PC".into(),
        user: "svc-resa".into(),
        password: "S3rvice!".into(),
        workstation: "RESA".into(),
    });
    let mut cfg = ClientConfig::new(url, ServerVersion::Exchange2010_SP2, auth);
    cfg.base_backoff = std::time::Duration::from_millis(50);
    cfg.max_backoff = std::time::Duration::from_millis(500);
    let client = Client::new(cfg, shared.clone()).expect("client");
    let ctx = SyncContext {
        store: store.clone(),
        exchanges: HashMap::from([(
            "sim".to_owned(),
            EwsExchange::new(Arc::new(client), true, chrono_tz::Europe::Paris),
        )]),
        clock: shared,
        instance: "t".into(),
        metrics: Arc::new(Metrics::default()),
    };
    Rig {
        sim,
        db,
        store,
        room: room.id,
        http: reqwest::Client::new(),
        clock,
        ctx,
        people: ids,
    }
}

fn step(approvers: Vec<ApproverDef>, backup: Option<Uuid>) -> StepDef {
    StepDef {
        quorum: Quorum::One,
        deadline_hours: None,
        reminder_hours: None,
        backup,
        approvers,
    }
}

impl Rig {
    fn person(&self, sam: &str) -> Uuid {
        self.people[sam]
    }

    async fn circuit(&self, def: CircuitDef) -> Uuid {
        self.store
            .save_circuit(None, &def, None, monday())
            .await
            .expect("circuit")
            .0
    }

    /// One round of the daemon: the mailbox read, due circuits moved on, the
    /// outbox sent.
    async fn round(&self) {
        let mailboxes = self
            .store
            .claim_mailboxes("t", 10, self.clock.now(), Duration::minutes(5))
            .await
            .expect("leases");
        for m in &mailboxes {
            self.ctx.sync_mailbox(m).await.expect("sync");
        }
        self.store.circuits_tick(self.clock.now()).await.expect("tick");
        self.ctx.run_outbox(100, Duration::minutes(5)).await.expect("outbox");
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.sim.control_url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("control API answers");
        let status = r.status();
        let bytes = r.bytes().await.expect("body");
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn folder(&self, smtp: &str, folder: &str) -> Vec<Value> {
        let url = format!("{}/mailboxes/{smtp}/{folder}", self.sim.control_url());
        let bytes = self
            .http
            .get(url)
            .send()
            .await
            .expect("folder")
            .bytes()
            .await
            .expect("body");
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    async fn messages(&self, smtp: &str) -> Vec<Value> {
        self.folder(smtp, "inbox")
            .await
            .into_iter()
            .filter(|i| i["kind"] == "Message")
            .collect()
    }

    async fn responses(&self, smtp: &str) -> Vec<Value> {
        self.folder(smtp, "inbox")
            .await
            .into_iter()
            .filter(|i| i["kind"] == "MeetingResponse")
            .collect()
    }

    async fn invite(&self, organiser: &str, subject: &str, start: &str, end: &str) -> String {
        let v = self
            .control(
                "/invite",
                json!({
                    "as": organiser, "subject": subject, "start": start, "end": end,
                    "time_zone": "Europe/Paris", "resources": [ROOM],
                }),
            )
            .await;
        v["uid"].as_str().expect("uid").to_owned()
    }

    /// The approver answers from Outlook with a message to the resource.
    async fn answer(&self, from: &str, subject: &str, body: &str) {
        self.control(
            "/message",
            json!({ "as": from, "to": [ROOM], "subject": subject, "body": body }),
        )
        .await;
    }

    async fn booking_status(&self, uid: &str) -> String {
        sqlx::query_scalar("SELECT status FROM bookings WHERE resource_id = $1 AND uid = $2")
            .bind(self.room)
            .bind(uid)
            .fetch_one(self.db.pool())
            .await
            .expect("booking")
    }

    async fn booking_id(&self, uid: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM bookings WHERE resource_id = $1 AND uid = $2")
            .bind(self.room)
            .bind(uid)
            .fetch_one(self.db.pool())
            .await
            .expect("booking")
    }

    fn advance(&self, hours: i64) {
        self.clock.advance(Duration::hours(hours));
    }
}

fn one_about<'a>(items: &'a [Value], needle: &str) -> &'a Value {
    let found: Vec<&Value> = items
        .iter()
        .filter(|i| i["subject"].as_str().is_some_and(|s| s.contains(needle)))
        .collect();
    assert_eq!(found.len(), 1, "one message about {needle}: {items:#?}");
    found[0]
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_owned()
}

/// The link in an approval message.
fn link_in(body: &str) -> String {
    let start = body.find("https://resa.test/approve/").expect("a link in the message");
    body[start..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches("https://resa.test")
        .to_owned()
}

fn two_steps(r: &Rig, final_outcome: FinalOutcome) -> CircuitDef {
    CircuitDef {
        name: "Salles du siège".into(),
        label_fr: Some("Validation des salles du siège".into()),
        label_en: Some("Head office rooms approval".into()),
        priority: 0,
        conditions: vec![],
        deadline_hours: None,
        final_outcome,
        steps: vec![
            step(
                vec![ApproverDef::Person {
                    person: r.person("carol"),
                }],
                None,
            ),
            step(
                vec![ApproverDef::Person {
                    person: r.person("dave"),
                }],
                None,
            ),
        ],
    }
}

fn web_state(r: &Rig) -> resa::web::WebState {
    resa::web::WebState {
        store: r.store.clone(),
        clock: Arc::new(r.clock.clone()),
        directories: Vec::new().into(),
        admin_groups: vec![resa::web::AdminGroup::parse("pc:GG-Resa-Admins").expect("admin group")],
        secret_key: Arc::from(SECRET),
        secure_cookies: false,
        exchange_endpoints: vec!["sim".into()],
        outbox_wake: None,
    }
}

struct Page {
    status: StatusCode,
    cookies: Vec<String>,
    body: String,
}

async fn web(r: &Rig, request: Request<Body>) -> Page {
    let response = resa::web::router(web_state(r))
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_owned))
        .collect();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .expect("body");
    Page {
        status,
        cookies,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn web_post(r: &Rig, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    web(r, req.body(Body::from(body)).expect("request")).await
}

async fn web_get(r: &Rig, path: &str, cookie: Option<&str>) -> Page {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    web(r, req.body(Body::empty()).expect("request")).await
}

/// The CSRF token of a page's form.
fn csrf_in(body: &str) -> String {
    let at = body.find("name=\"_csrf\" value=\"").expect("a form with a CSRF token") + 20;
    body[at..].split('"').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_step_circuit_approved_by_an_outlook_vote_then_on_the_web() {
    let r = rig().await;
    r.circuit(two_steps(&r, FinalOutcome::Decline)).await;
    let uid = r
        .invite(
            ALICE,
            "Comité de pilotage",
            "2026-12-01T14:00:00",
            "2026-12-01T15:00:00",
        )
        .await;
    r.round().await;
    assert_eq!(r.booking_status(&uid).await, "held");

    // The organiser is told, in French, that it awaits approval, by whom, and
    // which rule asked for it.
    let tentative = r.responses(ALICE).await;
    let tentative = one_about(&tentative, "Comité de pilotage");
    assert_eq!(tentative["response"], "Tentative", "{tentative}");
    let body = text(tentative, "body");
    assert!(body.contains("Votre demande est en attente d'approbation"), "{body}");
    assert!(body.contains("Validation des salles du siège"), "{body}");
    assert!(body.contains("Approbation demandée à : Carol Petit."), "{body}");
    assert!(body.contains("approbation"), "names the rule: {body}");

    // Carol, step one, gets the booking's details with voting buttons and a link.
    let asked = r.messages(CAROL).await;
    let asked = one_about(&asked, "Comité de pilotage");
    let subject = text(asked, "subject");
    assert!(
        subject.starts_with("Approbation demandée : Comité de pilotage (Salle Cézanne) [resa:"),
        "{subject}"
    );
    let body = text(asked, "body");
    assert!(body.contains("Alice Martin demande Salle Cézanne"), "{body}");
    assert!(body.contains("le 01/12/2026 de 14:00 à 15:00"), "{body}");
    assert!(body.contains("étape 1/2"), "{body}");
    assert!(body.contains("https://resa.test/approve/"), "{body}");
    assert_eq!(asked["voting"], json!(["Approuver", "Refuser"]), "{asked}");
    assert!(r.messages(DAVE).await.is_empty(), "step two waits for step one");

    // Carol votes "Approuver" in Outlook.
    r.answer(CAROL, &format!("Approuver: {subject}"), "").await;
    r.round().await;
    assert_eq!(r.booking_status(&uid).await, "held", "one step of two");
    let asked = r.messages(DAVE).await;
    let asked = one_about(&asked, "Comité de pilotage");
    assert!(text(asked, "body").contains("étape 2/2"), "{asked}");

    // Dave approves on the web site's queue, an hour later.
    r.advance(1);
    let booking = r.booking_id(&uid).await;
    let session = r
        .store
        .create_session(r.person("dave"), "fr", r.clock.now())
        .await
        .expect("session");
    let cookie = format!("resa_session={}", session.id);
    let page = web_get(&r, "/approvals", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Comité de pilotage"), "{}", page.body);
    assert!(
        page.body.contains("Validation des salles du siège"),
        "the circuit is shown: {}",
        page.body
    );
    assert!(page.body.contains("2/2"), "the step is shown: {}", page.body);
    // Carol's turn has passed: she cannot answer for step two.
    let carol = r
        .store
        .create_session(r.person("carol"), "fr", r.clock.now())
        .await
        .expect("session");
    let carol_cookie = format!("resa_session={}", carol.id);
    let refused = web_post(
        &r,
        &format!("/approvals/{booking}"),
        Some(&carol_cookie),
        &[("_csrf", &carol.csrf_token), ("verdict", "refuse")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let answered = web_post(
        &r,
        &format!("/approvals/{booking}"),
        Some(&cookie),
        &[
            ("_csrf", &session.csrf_token),
            ("verdict", "approve"),
            ("comment", "Bon pour moi"),
        ],
    )
    .await;
    assert_eq!(answered.status, StatusCode::SEE_OTHER);
    r.round().await;
    assert_eq!(r.booking_status(&uid).await, "accepted");

    // The organiser's meeting is accepted, with the approval's text.
    let got = r.responses(ALICE).await;
    let accept: Vec<&Value> = got.iter().filter(|i| i["response"] == "Accept").collect();
    assert_eq!(accept.len(), 1, "{got:#?}");
    let body = text(accept[0], "body");
    assert!(
        body.contains("est approuvée (circuit Validation des salles du siège)"),
        "{body}"
    );
    assert!(body.contains("Bon pour moi"), "{body}");

    // Who, when, how and the comment are recorded for each answer.
    let answers = r.store.circuit_answers(booking).await.expect("answers");
    let how: Vec<(&str, &str, Option<&str>, Option<&str>)> = answers
        .iter()
        .map(|(o, c, who, comment, _)| (o.as_str(), c.as_str(), who.as_deref(), comment.as_deref()))
        .collect();
    assert_eq!(
        how,
        vec![
            ("approved", "outlook_vote", Some("Carol Petit"), None),
            ("approved", "web", Some("Dave Moreau"), Some("Bon pour moi")),
        ]
    );
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_at_step_two_declines_the_meeting_with_the_comment() {
    let r = rig().await;
    r.circuit(two_steps(&r, FinalOutcome::Decline)).await;
    let uid = r
        .invite(FRANK, "Budget review", "2026-12-02T10:00:00", "2026-12-02T11:00:00")
        .await;
    r.round().await;
    // Frank reads English.
    let tentative = r.responses(FRANK).await;
    let body = text(one_about(&tentative, "Budget review"), "body");
    assert!(body.contains("Your request is awaiting approval"), "{body}");
    assert!(body.contains("Approval asked of: Carol Petit."), "{body}");
    assert!(body.contains("Head office rooms approval"), "{body}");

    // Carol answers by a reply starting with APPROUVER.
    let subject = text(one_about(&r.messages(CAROL).await, "Budget review"), "subject");
    r.answer(
        CAROL,
        &format!("RE: {subject}"),
        "APPROUVER\n\n-----Message d'origine-----\nREFUSER",
    )
    .await;
    r.round().await;
    // Dave refuses with a comment, an hour later.
    r.advance(1);
    let subject = text(one_about(&r.messages(DAVE).await, "Budget review"), "subject");
    r.answer(
        DAVE,
        &format!("RE: {subject}"),
        "REFUSER : la salle est réservée au conseil ce jour-là\n> Approbation demandée",
    )
    .await;
    r.round().await;
    assert_eq!(r.booking_status(&uid).await, "declined");
    let got = r.responses(FRANK).await;
    let decline: Vec<&Value> = got.iter().filter(|i| i["response"] == "Decline").collect();
    assert_eq!(decline.len(), 1, "{got:#?}");
    let body = text(decline[0], "body");
    assert!(
        body.contains("Your request for Salle Cézanne on 02/12/2026 from 10:00 to 11:00 is refused by Dave Moreau"),
        "{body}"
    );
    assert!(
        body.contains("Comment: la salle est réservée au conseil ce jour-là"),
        "{body}"
    );
    // The slot is free again: the room's calendar no longer holds it.
    let calendar = r.folder(ROOM, "calendar").await;
    assert!(
        !calendar.iter().any(|i| i["uid"] == json!(uid)),
        "the declined meeting left the room's calendar: {calendar:#?}"
    );
    let booking = r.booking_id(&uid).await;
    let answers = r.store.circuit_answers(booking).await.expect("answers");
    assert_eq!(answers.len(), 2);
    assert_eq!(
        (answers[1].0.as_str(), answers[1].1.as_str()),
        ("refused", "outlook_reply")
    );
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_who_never_answers_is_reminded_then_escalated_then_the_outcome_applies() {
    let r = rig().await;
    r.circuit(CircuitDef {
        name: "Véhicules".into(),
        label_fr: None,
        label_en: None,
        priority: 0,
        conditions: vec![],
        deadline_hours: Some(72),
        final_outcome: FinalOutcome::Accept,
        steps: vec![StepDef {
            quorum: Quorum::One,
            reminder_hours: Some(4),
            deadline_hours: Some(24),
            backup: Some(r.person("erin")),
            approvers: vec![ApproverDef::Person {
                person: r.person("carol"),
            }],
        }],
    })
    .await;
    let uid = r
        .invite(
            ALICE,
            "Tournée des écoles",
            "2026-12-10T09:00:00",
            "2026-12-10T12:00:00",
        )
        .await;
    r.round().await;
    assert_eq!(r.messages(CAROL).await.len(), 1);

    r.advance(3);
    r.round().await;
    assert_eq!(r.messages(CAROL).await.len(), 1, "no reminder before four hours");
    r.advance(1);
    r.round().await;
    let carol = r.messages(CAROL).await;
    let reminder = one_about(&carol, "Rappel : approbation demandée");
    assert!(
        text(reminder, "body").contains("attend toujours votre réponse"),
        "{reminder}"
    );
    assert!(r.messages(ERIN).await.is_empty());

    // A day without an answer: the backup is asked.
    r.advance(20);
    r.round().await;
    let erin = r.messages(ERIN).await;
    let asked = one_about(&erin, "Tournée des écoles");
    assert_eq!(asked["voting"], json!(["Approuver", "Refuser"]));
    assert_eq!(r.booking_status(&uid).await, "held");

    // Nobody answers the backup either: after the step's second deadline the
    // configured outcome (accept) applies.
    r.advance(24);
    r.round().await;
    assert_eq!(r.booking_status(&uid).await, "accepted");
    let got = r.responses(ALICE).await;
    let accept: Vec<&Value> = got.iter().filter(|i| i["response"] == "Accept").collect();
    assert_eq!(accept.len(), 1, "{got:#?}");
    assert!(
        text(accept[0], "body").contains("Personne n'a répondu avant la fin du circuit : la demande est acceptée"),
        "{}",
        accept[0]
    );
    // Nothing more is sent afterwards.
    let before = r.messages(CAROL).await.len() + r.messages(ERIN).await.len();
    r.advance(100);
    r.round().await;
    assert_eq!(r.messages(CAROL).await.len() + r.messages(ERIN).await.len(), before);
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_reply_hands_the_step_to_the_backup() {
    let r = rig().await;
    let mut def = two_steps(&r, FinalOutcome::Decline);
    def.steps.truncate(1);
    def.steps[0].backup = Some(r.person("erin"));
    r.circuit(def).await;
    let uid = r
        .invite(ALICE, "Séminaire", "2026-12-03T09:00:00", "2026-12-03T17:00:00")
        .await;
    r.round().await;
    let subject = text(one_about(&r.messages(CAROL).await, "Séminaire"), "subject");
    r.answer(
        CAROL,
        &format!("Réponse automatique : {subject}"),
        "Je suis absente jusqu'au 15 décembre.",
    )
    .await;
    r.round().await;
    let erin = r.messages(ERIN).await;
    let subject = text(one_about(&erin, "Séminaire"), "subject");
    r.answer(ERIN, &format!("Approuver: {subject}"), "").await;
    r.round().await;
    assert_eq!(r.booking_status(&uid).await, "accepted");

    // The day before, Alice is reminded of it, once.
    let reminders = |items: Vec<Value>| {
        items
            .into_iter()
            .filter(|i| text(i, "subject") == "Rappel : Séminaire")
            .count()
    };
    assert_eq!(reminders(r.messages(ALICE).await), 0);
    r.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).single().expect("valid"));
    r.round().await;
    r.round().await;
    let got = r.messages(ALICE).await;
    assert_eq!(reminders(got.clone()), 1, "{got:#?}");
    let reminder = one_about(&got, "Rappel : Séminaire");
    assert!(
        text(reminder, "body").starts_with("Rappel : vous avez réservé Salle Cézanne le 03/12/2026 de 09:00 à 17:00."),
        "{reminder}"
    );
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_reused_approval_link_is_refused() {
    let r = rig().await;
    let mut def = two_steps(&r, FinalOutcome::Decline);
    def.steps.truncate(1);
    r.circuit(def).await;
    let uid = r
        .invite(ALICE, "Réunion publique", "2026-12-04T18:00:00", "2026-12-04T20:00:00")
        .await;
    r.round().await;
    let body = text(one_about(&r.messages(CAROL).await, "Réunion publique"), "body");
    let link = link_in(&body);

    // The landing page shows the request and asks for a choice; opening it
    // (as a mail filter would) spends nothing. No login is needed; the form
    // carries the visitor's CSRF token.
    let page = web_get(&r, &link, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Réunion publique"), "{}", page.body);
    assert!(page.body.contains("Carol Petit"), "{}", page.body);
    let cookie = page.cookies.join("; ");
    let csrf = csrf_in(&page.body);
    let again = web_get(&r, &link, Some(&cookie)).await;
    assert_eq!(again.status, StatusCode::OK);

    // A forged token: one character of the signature changed.
    let mut forged = link.clone();
    let last = forged.pop().expect("char");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let page = web_get(&r, &forged, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let page = web_post(&r, &forged, Some(&cookie), &[("_csrf", &csrf), ("verdict", "approve")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        page.body.contains("Ce lien n&#39;est pas valable") || page.body.contains("Ce lien n'est pas valable"),
        "{}",
        page.body
    );
    assert_eq!(r.booking_status(&uid).await, "held");
    // Without the CSRF token, the real link is refused too.
    let page = web_post(&r, &link, Some(&cookie), &[("verdict", "approve")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(r.booking_status(&uid).await, "held");

    // The real link works once...
    let page = web_post(
        &r,
        &link,
        Some(&cookie),
        &[("_csrf", &csrf), ("verdict", "approve"), ("comment", "OK")],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Votre réponse est enregistrée"), "{}", page.body);
    assert_eq!(r.booking_status(&uid).await, "accepted");
    // ... and never again.
    let page = web_post(&r, &link, Some(&cookie), &[("_csrf", &csrf), ("verdict", "refuse")]).await;
    assert_eq!(page.status, StatusCode::GONE, "{}", page.body);
    assert!(page.body.contains("déjà servi"), "{}", page.body);
    assert_eq!(r.booking_status(&uid).await, "accepted");
    let booking = r.booking_id(&uid).await;
    let answers = r.store.circuit_answers(booking).await.expect("answers");
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].1.as_str(), answers[0].3.as_deref()), ("link", Some("OK")));

    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_circuit_version_leaves_running_bookings_on_theirs() {
    let r = rig().await;
    let id = r.circuit(two_steps(&r, FinalOutcome::Decline)).await;
    let uid = r
        .invite(ALICE, "Conseil d'école", "2026-12-07T17:00:00", "2026-12-07T19:00:00")
        .await;
    r.round().await;
    // The circuit is edited: one step only, with Erin.
    let mut def = two_steps(&r, FinalOutcome::Decline);
    def.steps = vec![step(
        vec![ApproverDef::Person {
            person: r.person("erin"),
        }],
        None,
    )];
    r.store
        .save_circuit(Some(id), &def, None, r.clock.now())
        .await
        .expect("version 2");
    // The running booking still goes through Carol then Dave.
    let subject = text(one_about(&r.messages(CAROL).await, "Conseil d'école"), "subject");
    r.answer(CAROL, &format!("Approuver: {subject}"), "").await;
    r.round().await;
    assert_eq!(r.booking_status(&uid).await, "held");
    assert_eq!(r.messages(DAVE).await.len(), 1);
    assert!(r.messages(ERIN).await.is_empty());
    // A new request takes version 2.
    r.invite(ALICE, "Conseil municipal", "2026-12-08T17:00:00", "2026-12-08T19:00:00")
        .await;
    r.round().await;
    assert_eq!(r.messages(ERIN).await.len(), 1);
    r.sim.shutdown().await;
}

async fn session(r: &Rig, sam: &str) -> (String, String) {
    let s = r
        .store
        .create_session(r.person(sam), "fr", r.clock.now())
        .await
        .expect("session");
    (format!("resa_session={}", s.id), s.csrf_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_write_circuits_and_message_templates_on_the_web() {
    let r = rig().await;
    let (carol, carol_csrf) = session(&r, "carol").await;
    let (erin, csrf) = session(&r, "erin").await;
    // Only admins reach the editors, reading or writing.
    assert_eq!(
        web_get(&r, "/admin/circuits", Some(&carol)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        web_get(&r, "/admin/templates", Some(&carol)).await.status,
        StatusCode::FORBIDDEN
    );
    let denied = web_post(
        &r,
        "/admin/circuits/new",
        Some(&carol),
        &[("_csrf", &carol_csrf), ("name", "x")],
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        web_get(&r, "/admin/circuits/new", Some(&erin)).await.status,
        StatusCode::OK
    );

    // An approver the directories do not know is refused, and the form kept.
    let form = |approvers: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("name", "Par le web".to_owned()),
            ("label_fr", "Validation par les valideurs".to_owned()),
            ("priority", "5".to_owned()),
            ("final_outcome", "accept".to_owned()),
            ("kind", "room".to_owned()),
            ("step1_approvers", approvers.to_owned()),
            ("step1_quorum", "one".to_owned()),
            ("step1_reminder", "2".to_owned()),
        ]
    };
    let pairs = |f: &[(&'static str, String)]| f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let bad = form("pc:personne");
    let bad = pairs(&bad);
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = web_post(&r, "/admin/circuits/new", Some(&erin), &bad).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    assert!(
        page.body.contains("Approbateur inconnu à l&#39;étape 1 : pc:personne")
            || page.body.contains("Approbateur inconnu à l'étape 1 : pc:personne"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Par le web"), "the form is kept: {}", page.body);
    let good = form("groupe:pc:GG-Valideurs");
    let good: Vec<(&str, String)> = pairs(&good);
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = web_post(&r, "/admin/circuits/new", Some(&erin), &good).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let list = web_get(&r, "/admin/circuits", Some(&erin)).await;
    assert!(list.body.contains("Par le web"), "{}", list.body);

    // The message template for approvers, previewed then saved.
    let page = web_post(
        &r,
        "/admin/templates/approval_request/fr",
        Some(&erin),
        &[
            ("_csrf", &csrf),
            ("subject", "<b>{{subject}}</b>"),
            ("body", "{{inconnu}}"),
            ("action", "preview"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    assert!(page.body.contains("Variables inconnues : inconnu"), "{}", page.body);
    let page = web_post(
        &r,
        "/admin/templates/approval_request/fr",
        Some(&erin),
        &[
            ("_csrf", &csrf),
            ("subject", "<b>{{subject}}</b>"),
            ("body", "À valider : {{subject}}, {{when}}. {{link}}"),
            ("action", "preview"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("&lt;b&gt;Comité de pilotage&lt;/b&gt;")
            || page.body.contains("&#60;b&#62;Comité de pilotage&#60;/b&#62;"),
        "escaped: {}",
        page.body
    );
    let page = web_post(
        &r,
        "/admin/templates/approval_request/fr",
        Some(&erin),
        &[
            ("_csrf", &csrf),
            ("subject", "Merci de valider {{subject}}"),
            ("body", "À valider : {{subject}}, {{when}}. {{link}}"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let list = web_get(&r, "/admin/templates", Some(&erin)).await;
    assert!(list.body.contains("Merci de valider {{subject}}"), "{}", list.body);

    // The next held request goes to the group's member with that text.
    r.invite(ALICE, "Atelier vélo", "2026-12-09T10:00:00", "2026-12-09T12:00:00")
        .await;
    r.round().await;
    let dave = r.messages(DAVE).await;
    let asked = one_about(&dave, "Atelier vélo");
    let subject = text(asked, "subject");
    assert!(
        subject.starts_with("Merci de valider Atelier vélo [resa:"),
        "the reference is kept: {subject}"
    );
    let body = text(asked, "body");
    assert!(
        body.starts_with("À valider : Atelier vélo, le 09/12/2026 de 10:00 à 12:00. https://resa.test/approve/"),
        "{body}"
    );
    // The English template is untouched.
    let t = r
        .store
        .message_template(resa::notify::Event::ApprovalRequest, resa::domain::Lang::En)
        .await
        .expect("template");
    assert!(t.subject.starts_with("Approval requested"));
    r.sim.shutdown().await;
}
