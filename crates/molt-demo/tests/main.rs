//! The README's first command, as a test: a whole delta migration under write load ends with
//! the target verified identical.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_delta_migration_under_load_verifies_clean() {
    let report = molt_demo::delta_migration(molt_testkit::testbed(), |_| {})
        .await
        .expect("the delta migration");
    assert_eq!(report.fetched_rows, 40_000, "fetch loaded the snapshot");
    assert!(report.app_transactions > 0, "the application wrote during the migration");
    // Each application transaction inserts one order and deletes one: the row count stays near
    // 40,000 while the rows themselves change; the final verify is clean (checked inside).
    assert!(report.verified_rows >= 39_000, "{report:?}");
    assert!(report.cdc_cursor.contains('/'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_mariadb_delta_migration_under_load_verifies_clean() {
    let report = molt_demo::delta_migration_mysql(molt_testkit::testbed(), |_| {})
        .await
        .expect("the delta migration from MariaDB");
    assert!(report.fetched_rows >= 40_000, "fetch loaded the snapshot: {report:?}");
    assert!(report.app_transactions > 0, "the application wrote during the migration");
    assert!(report.verified_rows >= 39_000, "{report:?}");
    molt_cursor::Cursor::parse_as(molt_cursor::CursorKind::MariadbGtid, &report.cdc_cursor)
        .expect("a MariaDB GTID list");
}
