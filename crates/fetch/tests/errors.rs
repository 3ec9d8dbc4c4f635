//! Bad input gets one clear error that says what to fix, and nothing is loaded silently.

use crate::support::{fetch, scalar, source_with};
use molt_testkit::testbed;

async fn error_of(source: &str, target: &str, extra: &[&str]) -> String {
    let err = fetch(source, target, extra).await.expect_err("fetch must fail");
    molt_cli::error_chain(&err)
}

const ONE_TABLE: &str =
    "CREATE TABLE t (id int8 PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');";

#[tokio::test]
async fn unknown_table_filter_says_nothing_matched() {
    let src = source_with(ONE_TABLE).await;
    let dst = testbed().fresh_pg_target().await;
    let e =
        error_of(&src.url, &dst.url, &["--direct-copy", "--table-filter", "no_such_table"]).await;
    assert!(e.contains("no tables on the source match"), "{e}");
}

#[tokio::test]
async fn missing_target_table_is_a_failable_mismatch() {
    let src = source_with(ONE_TABLE).await;
    let dst = testbed().fresh_pg_target().await;
    let e = error_of(&src.url, &dst.url, &["--direct-copy"]).await;
    assert!(e.contains("schema mismatch") && e.contains("drop-on-target-and-recreate"), "{e}");
}

#[tokio::test]
async fn target_missing_a_column_stops_before_loading() {
    let src = source_with(ONE_TABLE).await;
    let dst = testbed().fresh_pg_target().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&dst.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (id int8 PRIMARY KEY, extra int4)")
        .execute(&mut conn)
        .await
        .unwrap();
    let e = error_of(&src.url, &dst.url, &["--direct-copy"]).await;
    assert!(e.contains("1 schema mismatch"), "missing v is fatal, extra is not: {e}");
    let n: i64 = scalar(&dst.url, "SELECT count(*) FROM t").await;
    assert_eq!(n, 0, "nothing loaded");
}

#[tokio::test]
async fn tables_without_a_primary_key_are_skipped_or_loaded_with_skip_pk_check() {
    let src =
        source_with("CREATE TABLE nopk (v text); INSERT INTO nopk VALUES ('a'), ('b');").await;
    let dst = testbed().fresh_pg_target().await;
    let flags = ["--direct-copy", "--table-handling", "drop-on-target-and-recreate"];
    let e = error_of(&src.url, &dst.url, &flags).await;
    assert!(e.contains("--skip-pk-check"), "{e}");
    let mut with_skip = flags.to_vec();
    with_skip.push("--skip-pk-check");
    let s = fetch(&src.url, &dst.url, &with_skip).await.expect("loads with --skip-pk-check");
    assert_eq!(s.rows, vec![2]);
}

#[tokio::test]
async fn a_source_without_logical_wal_says_what_to_change() {
    // The target instance runs with wal_level = replica: as a source it cannot feed a slot.
    let not_logical = testbed().fresh_pg_target().await;
    let mut conn =
        <sqlx::PgConnection as sqlx::Connection>::connect(&not_logical.url).await.unwrap();
    sqlx::raw_sql(ONE_TABLE).execute(&mut conn).await.unwrap();
    let dst = testbed().fresh_pg_target().await;
    let e = error_of(
        &not_logical.url,
        &dst.url,
        &[
            "--direct-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--pglogical-replication-slot-name",
            "s",
        ],
    )
    .await;
    assert!(e.contains("wal_level = logical") && e.contains("restart"), "{e}");
    let ok = fetch(
        &not_logical.url,
        &dst.url,
        &[
            "--direct-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--ignore-replication-check",
        ],
    )
    .await
    .expect("a load without replication needs no logical WAL");
    assert_eq!(ok.cdc_cursor, "");
}

#[tokio::test]
async fn wrong_password_names_the_host_not_the_password() {
    let src = source_with(ONE_TABLE).await;
    let dst = testbed().fresh_pg_target().await;
    let bad = src.url.replace("molt:molt@", "molt:s3cr3t-pw@");
    let e = error_of(&bad, &dst.url, &["--direct-copy"]).await;
    assert!(e.contains("127.0.0.1") && e.contains("password"), "{e}");
    assert!(!e.contains("s3cr3t-pw"), "{e}");
}
