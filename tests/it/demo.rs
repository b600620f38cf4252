//! `resa demo`: the whole service on loopback with the customer's inventory.

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
         GROUP BY t.slug ORDER BY t.slug",
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
