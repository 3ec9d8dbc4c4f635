//! `--export-retry-max-attempts`: a shard whose source or target session is killed in the
//! middle of its COPY is redone from the same snapshot and the load ends identical; with one
//! attempt allowed the same failure stops the table.
//!
//! The kill is tied to an event, not to timing: the test holds a lock on the table, so the
//! COPY waits on it; the test terminates the backend seen waiting, then releases the lock.

use std::time::Duration;

use molt_fetch::FetchSummary;
use sqlx::{Connection as _, PgConnection};

use crate::support::{fetch, rows, scalar, scratch_dir, source_with};
use molt_testkit::{TestDb, testbed};

const ROWS: i64 = 100_000;
const DDL: &str = "CREATE TABLE big (id int8 PRIMARY KEY, v text NOT NULL);";

async fn source() -> TestDb {
    source_with(&format!(
        "{DDL} INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;"
    ))
    .await
}

/// Runs fetch with `args` while `big` is locked on `locked`: waits for fetch's COPY to queue
/// behind the lock, terminates that backend, releases the lock, and returns fetch's result.
pub(crate) async fn load_killing_the_waiting_copy(
    src: &TestDb,
    dst: &TestDb,
    locked: &TestDb,
    args: &[&str],
) -> anyhow::Result<FetchSummary> {
    let mut holder = PgConnection::connect(&locked.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE big IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let (s, t) = (src.url.clone(), dst.url.clone());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let mut load = tokio::spawn(async move {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        fetch(&s, &t, &argv).await
    });
    // The kill is in the select list, so it runs only on rows the WHERE clause kept (a
    // function in WHERE may be evaluated before the other conditions, on every backend).
    let kill = format!(
        "SELECT COALESCE(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity \
         WHERE datname = '{}' AND wait_event_type = 'Lock' AND query LIKE 'COPY%'",
        locked.name
    );
    let mut watcher = PgConnection::connect(&locked.url).await.unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut killed = false;
    for _ in 0..3000 {
        tick.tick().await;
        assert!(!load.is_finished(), "fetch ended before its COPY waited on the lock");
        killed = sqlx::query_scalar(sqlx::AssertSqlSafe(kill.clone()))
            .fetch_one(&mut watcher)
            .await
            .unwrap();
        if killed {
            break;
        }
    }
    assert!(killed, "fetch's COPY never waited on the lock");
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    (&mut load).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_whose_source_session_dies_is_exported_again() {
    let src = source().await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("retry-source");
    let d = dir.to_str().unwrap();
    let args = [
        "--local-path",
        d,
        "--use-copy",
        "--flush-rows",
        "20000",
        "--export-concurrency",
        "1",
        "--table-handling",
        "drop-on-target-and-recreate",
    ];
    let summary = load_killing_the_waiting_copy(&src, &dst, &src, &args)
        .await
        .expect("the shard was retried");
    assert_eq!(summary.rows, vec![ROWS as u64]);
    assert_eq!(rows(&src.url, "big", "id").await, rows(&dst.url, "big", "id").await);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_copy_shard_whose_target_session_dies_is_copied_again() {
    let src = source().await;
    let dst = testbed().fresh_pg_target().await;
    // The target table exists beforehand, so that the lock held on it stops only the COPY.
    molt_testkit::sql::exec(&dst.url, DDL).await;
    let args = ["--direct-copy", "--export-concurrency", "1"];
    load_killing_the_waiting_copy(&src, &dst, &dst, &args).await.expect("the shard was retried");
    assert_eq!(rows(&src.url, "big", "id").await, rows(&dst.url, "big", "id").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_one_attempt_the_same_failure_stops_the_table() {
    let src = source().await;
    let dst = testbed().fresh_pg_target().await;
    let args = [
        "--direct-copy",
        "--export-concurrency",
        "1",
        "--export-retry-max-attempts",
        "1",
        "--table-handling",
        "drop-on-target-and-recreate",
    ];
    let err =
        load_killing_the_waiting_copy(&src, &dst, &src, &args).await.expect_err("no retry allowed");
    assert!(format!("{err:#}").contains("big"), "{err:#}");
    let n: i64 = scalar(&dst.url, "SELECT count(*) FROM big").await;
    assert_eq!(n, 0, "the failed shard's COPY was rolled back");
}
