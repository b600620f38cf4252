//! The daemon's rollup job brings the reports' per-day figures up to date
//! without anyone reading a report, and stops when asked.

use crate::harness::test_db;

async fn dirty(store: &resa::store::Store) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM report_dirty")
        .fetch_one(store.pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn the_rollup_job_refreshes_changed_days_and_stops_on_shutdown() {
    let db = test_db().await;
    let store = db.store().clone();
    let first = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
    store.generate_dataset(300, first).await.expect("generated");
    assert!(dirty(&store).await > 0, "a generated data set leaves days to compute");
    let computed_before: i64 = sqlx::query_scalar("SELECT count(*) FROM report_days")
        .fetch_one(store.pool())
        .await
        .expect("count");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let job = tokio::spawn(resa::store::reports::rollup_loop(store.clone(), async move {
        let _ = stopped.await;
    }));
    let refreshed = async {
        while dirty(&store).await > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), refreshed)
        .await
        .expect("the rollup job leaves no day dirty for a minute");
    let computed: i64 = sqlx::query_scalar("SELECT count(*) FROM report_days")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert!(computed > computed_before, "{computed_before} → {computed}");
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), job)
        .await
        .expect("the job stops when asked")
        .expect("the job does not panic");
}
