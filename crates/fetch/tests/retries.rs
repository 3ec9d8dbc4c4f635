//! `--export-retry-max-attempts`: a shard whose source or target session is killed mid-COPY
//! is redone from the same snapshot and the load ends identical; with one attempt allowed the
//! same failure stops the table.

use std::time::Duration;

use sqlx::Connection as _;

use crate::support::{fetch, rows, scalar, scratch_dir, source_with};
use molt_testkit::{TestDb, testbed};

/// A row filter that keeps every row but stalls the source's COPY for 3 s halfway through, so
/// the test can kill a session in the middle of a COPY whatever the machine's speed.
fn stalling_filter(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("stall.json");
    std::fs::write(
        &p,
        r#"{"filters":[{"resource_specifier":{"schema":"public","table":"big"},"expr":"id <> 200000 OR pg_sleep(3)::text = ''"}]}"#,
    )
    .unwrap();
    p.to_str().unwrap().to_owned()
}

const ROWS: i64 = 400_000;

async fn source() -> TestDb {
    source_with(&format!(
        "CREATE TABLE big (id int8 PRIMARY KEY, v text NOT NULL); \
         INSERT INTO big SELECT g, md5(g::text) || md5((g + 1)::text) FROM generate_series(1, {ROWS}) g;"
    ))
    .await
}

/// Terminates (once) the backend of `url`'s server running a statement like `pattern` in
/// database `db`; returns whether it found one within a minute.
async fn terminate_once(url: &str, db: &str, pattern: &str) -> bool {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let sql = format!(
        "SELECT COALESCE(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity \
         WHERE datname = '{db}' AND state = 'active' AND query LIKE '{pattern}' AND pid <> pg_backend_pid()"
    );
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..3000 {
        tick.tick().await;
        let killed: bool =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut c).await.unwrap();
        if killed {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_whose_source_session_dies_is_exported_again() {
    let src = source().await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("retry-source");
    let d = dir.to_str().unwrap().to_owned();
    let f = stalling_filter(&dir);
    let (s, t) = (src.url.clone(), dst.url.clone());
    let load = tokio::spawn(async move {
        fetch(
            &s,
            &t,
            &[
                "--local-path",
                &d,
                "--use-copy",
                "--flush-rows",
                "20000",
                "--export-concurrency",
                "1",
                "--table-handling",
                "drop-on-target-and-recreate",
                "--filter-path",
                &f,
            ],
        )
        .await
    });
    assert!(
        terminate_once(&src.url, &src.name, "COPY%big%TO STDOUT%").await,
        "the export was caught"
    );
    let summary = load.await.unwrap().expect("the shard was retried");
    assert_eq!(summary.rows, vec![ROWS as u64]);
    assert_eq!(rows(&src.url, "big", "id").await, rows(&dst.url, "big", "id").await);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_copy_shard_whose_target_session_dies_is_copied_again() {
    let src = source().await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("retry-target");
    let f = stalling_filter(&dir);
    let (s, t) = (src.url.clone(), dst.url.clone());
    let load = tokio::spawn(async move {
        fetch(
            &s,
            &t,
            &[
                "--direct-copy",
                "--export-concurrency",
                "1",
                "--table-handling",
                "drop-on-target-and-recreate",
                "--filter-path",
                &f,
            ],
        )
        .await
    });
    assert!(terminate_once(&dst.url, &dst.name, "COPY%FROM STDIN%").await, "the load was caught");
    load.await.unwrap().expect("the shard was retried");
    assert_eq!(rows(&src.url, "big", "id").await, rows(&dst.url, "big", "id").await);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_one_attempt_the_same_failure_stops_the_table() {
    let src = source().await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("retry-once");
    let f = stalling_filter(&dir);
    let (s, t) = (src.url.clone(), dst.url.clone());
    let load = tokio::spawn(async move {
        fetch(
            &s,
            &t,
            &[
                "--direct-copy",
                "--export-concurrency",
                "1",
                "--export-retry-max-attempts",
                "1",
                "--table-handling",
                "drop-on-target-and-recreate",
                "--filter-path",
                &f,
            ],
        )
        .await
    });
    assert!(terminate_once(&src.url, &src.name, "COPY%big%TO STDOUT%").await);
    let err = load.await.unwrap().expect_err("no retry allowed");
    assert!(format!("{err:#}").contains("big"), "{err:#}");
    let n: i64 = scalar(&dst.url, "SELECT count(*) FROM big").await;
    assert_eq!(n, 0, "the failed shard's COPY was rolled back");
    let _ = std::fs::remove_dir_all(&dir);
}
