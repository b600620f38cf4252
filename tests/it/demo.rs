//! `resa demo`: the whole service on loopback with the customer's inventory.

use chrono::Datelike;
use resa::demo::{Demo, DemoOptions};
use std::time::Duration;

async fn count(demo: &Demo, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(demo.store.pool())
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_customers_inventory_and_decides_simulated_outlook_activity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DemoOptions {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        sim_listen: "127.0.0.1:0".into(),
        activity_per_minute: 600,
    };
    let demo = Demo::start(opts.clone(), resa::clock::system())
        .await
        .expect("demo starts");
    assert_eq!(count(&demo, "SELECT count(*) FROM organisations").await, 2);
    assert_eq!(count(&demo, "SELECT count(DISTINCT site_id) FROM resources").await, 7);
    let per_type: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.slug, count(*) FROM resources r JOIN resource_types t ON t.id = r.resource_type_id
         WHERE NOT r.is_pool GROUP BY t.slug ORDER BY t.slug",
    )
    .fetch_all(demo.store.pool())
    .await
    .expect("inventory");
    let expected = [
        ("cle-3g", 10),
        ("portable", 10),
        ("salle", 50),
        ("telephone", 10),
        ("velo", 10),
        ("videoprojecteur", 6),
        ("voiture", 60),
    ];
    assert_eq!(per_type, expected.map(|(s, n)| (s.to_owned(), n)).to_vec());
    // The cars are also offered through one pool mailbox; 12 of them are
    // electric, and every car has its plate and key location.
    assert_eq!(
        count(&demo, "SELECT count(*) FROM pool_members").await,
        60,
        "every car is a member of the pool"
    );
    assert_eq!(
        count(&demo, "SELECT count(*) FROM vehicles WHERE energy = 'electric'").await,
        12
    );
    assert_eq!(
        count(
            &demo,
            "SELECT count(*) FROM vehicles WHERE key_location IS NOT NULL AND plate <> ''"
        )
        .await,
        60
    );
    assert!(
        count(
            &demo,
            "SELECT count(*) FROM people WHERE licence_expires_on IS NOT NULL"
        )
        .await
            >= 100,
        "drivers have their licences"
    );
    assert!(count(&demo, "SELECT count(*) FROM people").await >= 300);

    // Simulated agents invite; every request gets an answer in Exchange.
    let mut answered = 0;
    for _ in 0..150 {
        answered = count(&demo, "SELECT count(*) FROM outbox WHERE status = 'done'").await;
        if answered >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(answered >= 5, "only {answered} answers sent");
    let health = reqwest::get(format!("{}/healthz", demo.web_url))
        .await
        .expect("healthz");
    assert!(health.status().is_success());
    let metrics = reqwest::get(format!("{}/metrics", demo.web_url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("resa_decisions_total{outcome="), "{metrics}");
    let decided = count(&demo, "SELECT count(*) FROM decisions").await;
    demo.stop().await;

    // A second run reuses the data instead of seeding again.
    let again = Demo::start(
        DemoOptions {
            activity_per_minute: 0,
            ..opts
        },
        resa::clock::system(),
    )
    .await
    .expect("demo restarts");
    assert_eq!(count(&again, "SELECT count(*) FROM organisations").await, 2);
    assert!(count(&again, "SELECT count(*) FROM decisions").await >= decided);
    again.stop().await;
}

/// A browser of the demo site without a cookie jar: cookies kept by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.to_owned(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let Some((kv, _)) = v.to_str().unwrap_or_default().split_once(';') else {
                continue;
            };
            let Some((k, v)) = kv.split_once('=') else { continue };
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
    }

    /// The CSRF token of this browser's forms (read from its bookings page).
    async fn csrf(&mut self) -> String {
        let (_, page) = self.get("/bookings").await;
        hidden(&page, "_csrf")
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("get");
        self.keep(&r);
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post");
        self.keep(&r);
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        (status, if status == 303 { location } else { text })
    }
}

/// The value of the hidden input `name` just before `after` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[at..].split('"').next().unwrap_or_default().to_owned()
}

/// The demo account buttons: (person id, button text).
fn demo_accounts(page: &str) -> Vec<(String, String)> {
    page.split("name=\"person\" value=\"")
        .skip(1)
        .map(|rest| {
            let id = rest.split('"').next().unwrap_or_default().to_owned();
            let button = rest
                .split("<button type=\"submit\">")
                .nth(1)
                .and_then(|b| b.split("</button>").next())
                .unwrap_or_default()
                .to_owned();
            (id, button)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_web_site_with_a_demonstration_sign_in_by_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(
        DemoOptions {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            sim_listen: "127.0.0.1:0".into(),
            activity_per_minute: 0,
        },
        resa::clock::system(),
    )
    .await
    .expect("demo starts");
    let mut visitor = Browser::new(&demo.web_url);
    let (status, page) = visitor.get("/login").await;
    assert_eq!(status, 200);
    assert!(page.contains("Connexion de démonstration"), "{page}");
    let accounts = demo_accounts(&page);
    assert_eq!(accounts.len(), 6, "{accounts:?}");
    let admin = accounts
        .iter()
        .find(|(_, b)| b.contains("(administrateur)"))
        .expect("an administrator is offered")
        .clone();
    let manager = accounts
        .iter()
        .find(|(_, b)| b.contains("(gestionnaire)"))
        .expect("a manager is offered")
        .clone();
    let agent = accounts
        .iter()
        .find(|(_, b)| b.contains("(agent)"))
        .expect("an agent is offered")
        .clone();
    let csrf = hidden(&page, "_csrf");

    // Without the form's token, nobody is signed in.
    let (status, _) = visitor.post("/login/demo", &[("person", &admin.0)]).await;
    assert_eq!(status, 403);
    // Only the listed people may be chosen.
    let stranger = uuid::Uuid::new_v4().to_string();
    let (status, _) = visitor
        .post("/login/demo", &[("_csrf", &csrf), ("person", &stranger)])
        .await;
    assert_eq!(status, 400);

    // The administrator reaches the status page; the role the page lists is
    // the one the site gives.
    let (status, to) = visitor
        .post(
            "/login/demo",
            &[("_csrf", &csrf), ("person", &admin.0), ("next", "/admin/status")],
        )
        .await;
    assert_eq!((status, to.as_str()), (303, "/admin/status"));
    let (status, page) = visitor.get("/admin/status").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("administrateur"), "{page}");

    // The manager sees the approval queue, not the admin pages.
    let mut m = Browser::new(&demo.web_url);
    let (_, page) = m.get("/login").await;
    let csrf = hidden(&page, "_csrf");
    let (status, _) = m.post("/login/demo", &[("_csrf", &csrf), ("person", &manager.0)]).await;
    assert_eq!(status, 303);
    assert_eq!(m.get("/approvals").await.0, 200);
    assert_eq!(m.get("/admin/status").await.0, 403);

    // The agent searches the rooms and sees their bookings.
    let mut a = Browser::new(&demo.web_url);
    let (_, page) = a.get("/login").await;
    let csrf = hidden(&page, "_csrf");
    let (status, _) = a.post("/login/demo", &[("_csrf", &csrf), ("person", &agent.0)]).await;
    assert_eq!(status, 303);
    assert_eq!(a.get("/bookings").await.0, 200);
    assert_eq!(a.get("/admin/resources").await.0, 403);

    // …and books a room on the site: the meeting lands in the simulated
    // Exchange, in the room's calendar.
    let room = demo
        .store
        .resource_by_mailbox("salle.cezanne@plainecommune.fr")
        .await
        .expect("query")
        .expect("the room");
    let mut day = resa::clock::Clock::now(&resa::clock::SystemClock)
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
        + chrono::Duration::days(7);
    while day.weekday().number_from_monday() > 5 || resa::domain::holidays::french_public_holiday(day).is_some() {
        day += chrono::Duration::days(1);
    }
    let date = day.format("%Y-%m-%d").to_string();
    let room_id = room.id.to_string();
    let csrf = a.csrf().await;
    let (status, to) = a
        .post(
            "/book",
            &[
                ("_csrf", &csrf),
                ("resource", &room_id),
                ("date", &date),
                ("start", "10:00"),
                ("end", "11:00"),
                ("subject", "Démonstration du site"),
                ("attendees", "4"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{to}");
    assert!(to.starts_with("/bookings/") && !to.contains("msg="), "{to}");
    // The daemon's outbox worker, woken by the site, creates it.
    let mut calendar = serde_json::Value::Null;
    for _ in 0..200 {
        let bytes = reqwest::get(format!(
            "{}/mailboxes/salle.cezanne@plainecommune.fr/calendar",
            demo.sim.control_url()
        ))
        .await
        .expect("control API")
        .bytes()
        .await
        .expect("body");
        calendar = serde_json::from_slice(&bytes).expect("json");
        if calendar["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["subject"] == "Démonstration du site"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        calendar["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["subject"] == "Démonstration du site")),
        "{calendar}"
    );
    demo.stop().await;
}

#[tokio::test]
async fn the_demo_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = Demo::start(
        DemoOptions {
            data_dir: dir.path().to_path_buf(),
            listen: "0.0.0.0:0".into(),
            sim_listen: "127.0.0.1:0".into(),
            activity_per_minute: 0,
        },
        resa::clock::system(),
    )
    .await;
    let Err(e) = refused else {
        panic!("the demo listened on every interface");
    };
    assert!(e.contains("boucle locale"), "{e}");
}

/// The demo in headless Chromium (Debian's, through playwright-core): an
/// agent books a room on the site and the meeting appears in the simulated
/// Exchange; a manager approves a request held from Outlook and the
/// organiser's mailbox gets the acceptance; an administrator maps a
/// directory group to a site and its member may book there. Screenshots go
/// to `target/screenshots/flow-*.png`. Fails, never skips, when node,
/// Chromium or the npm packages are missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_site_in_chromium_reaches_the_simulated_exchange() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run .ci/browser-setup.sh"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run .ci/browser-setup.sh"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(
        DemoOptions {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            sim_listen: "127.0.0.1:0".into(),
            activity_per_minute: 0,
        },
        resa::clock::system(),
    )
    .await
    .expect("demo starts");
    let store = demo.store.clone();
    let mut day = resa::clock::Clock::now(&resa::clock::SystemClock)
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
        + chrono::Duration::days(8);
    while day.weekday().number_from_monday() > 5 || resa::domain::holidays::french_public_holiday(day).is_some() {
        day += chrono::Duration::days(1);
    }
    let date = day.format("%Y-%m-%d").to_string();

    // A request held for approval, from Outlook: a Plaine Commune agent asks
    // for a room of Saint-Denis's town hall, where outsiders must ask.
    let town_hall = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM sites WHERE slug = 'hotel-de-ville'")
        .fetch_one(store.pool())
        .await
        .expect("site");
    store
        .set_policy(
            resa::domain::Scope::Site(town_hall),
            &resa::domain::Policy {
                default_right: Some(resa::domain::policy::DefaultRight::Request),
                ..resa::domain::Policy::default()
            },
            resa::clock::Clock::now(&resa::clock::SystemClock),
        )
        .await
        .expect("policy");
    let subject = "Demande inter-collectivités";
    let invite = serde_json::json!({
        "as": "alice.diallo@plainecommune.fr",
        "subject": subject,
        "start": format!("{date}T09:00:00"),
        "end": format!("{date}T10:00:00"),
        "time_zone": "Europe/Paris",
        "resources": ["salle.hugo@ville-saint-denis.fr"],
    });
    let answer = reqwest::Client::new()
        .post(format!("{}/invite", demo.sim.control_url()))
        .header("content-type", "application/json")
        .body(invite.to_string())
        .send()
        .await
        .expect("invite");
    assert!(answer.status().is_success());
    let mut held = false;
    for _ in 0..150 {
        held = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM bookings WHERE subject = $1 AND status = 'held')",
        )
        .bind(subject)
        .fetch_one(store.pool())
        .await
        .expect("held?");
        if held {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(held, "the daemon did not hold the request");

    let shots = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("screenshots");
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new("node")
            .arg(root.join("tests/browser/flows.mjs"))
            .arg("--base")
            .arg(&demo.web_url)
            .arg("--sim")
            .arg(demo.sim.control_url())
            .arg("--date")
            .arg(&date)
            .arg("--held-subject")
            .arg(subject)
            .arg("--screenshots")
            .arg(&shots)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser flows finish within 5 minutes")
    .expect("node runs (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    demo.stop().await;
    assert!(
        output.status.success(),
        "browser flows failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

/// The demo's projectors go through a validation circuit: the organiser is
/// told who approves, and the approver receives, from the projector's
/// mailbox, a message with Outlook's voting buttons and a signed link to the
/// demo's own site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_request_in_the_demo_asks_its_approver_in_outlook_and_on_the_site() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DemoOptions {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        sim_listen: "127.0.0.1:0".into(),
        activity_per_minute: 0,
    };
    let demo = Demo::start(opts, resa::clock::system()).await.expect("demo starts");
    let http = reqwest::Client::new();
    let control = demo.sim.control_url();
    // Next week, a Tuesday morning.
    let today = resa::clock::Clock::now(&*resa::clock::system()).date_naive();
    let mut day = today + chrono::Duration::days(7);
    while day.weekday() != chrono::Weekday::Tue {
        day += chrono::Duration::days(1);
    }
    let agent = "alice.diallo@plainecommune.fr";
    let approver = "alice.bernard@plainecommune.fr";
    let reply = http
        .post(format!("{control}/invite"))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "as": agent, "subject": "Présentation au conseil",
                "start": format!("{day}T10:00:00"), "end": format!("{day}T12:00:00"), "time_zone": "Europe/Paris",
                "attendees": [], "resources": ["videoprojecteur.01@plainecommune.fr"],
            })
            .to_string(),
        )
        .send()
        .await
        .expect("invite");
    assert!(reply.status().is_success());

    let inbox = |smtp: &str| {
        let url = format!("{control}/mailboxes/{smtp}/inbox");
        let http = http.clone();
        async move {
            let v: serde_json::Value =
                serde_json::from_slice(&http.get(url).send().await.expect("inbox").bytes().await.expect("body"))
                    .expect("json");
            v["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let mut tentative = None;
    let mut ask = None;
    for _ in 0..150 {
        tentative = inbox(agent)
            .await
            .into_iter()
            .find(|i| i["kind"] == "MeetingResponse" && i["response"] == "Tentative");
        ask = inbox(approver)
            .await
            .into_iter()
            .find(|i| i["kind"] == "Message" && i["voting"].as_array().is_some_and(|v| !v.is_empty()));
        if tentative.is_some() && ask.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tentative = tentative.expect("the organiser is told the request awaits approval");
    let body = tentative["body"].as_str().unwrap_or_default();
    assert!(body.contains("Alice Bernard"), "the approver is named: {body}");
    let ask = ask.expect("the approver is asked");
    assert_eq!(ask["voting"], serde_json::json!(["Approuver", "Refuser"]));
    let text = ask["body"].as_str().unwrap_or_default();
    let link = format!("{}/approve/", demo.web_url);
    assert!(text.contains(&link), "a link to the demo's site: {text}");
    demo.stop().await;
}
