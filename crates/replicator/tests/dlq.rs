//! Rows the target refuses: set aside in the dead-letter table exactly once while everything
//! else applies, or (with `--dlqTableName ""`) a stop that says what to fix.

use molt_replicator::pglogical;
use molt_testkit::sql::{exec, rows, scalar};

use super::{args, config_with, setup, source_end, wait_applied};

const DDL: &str = "CREATE TABLE t (id int4 PRIMARY KEY, v int4, w text);";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_refused_rows_go_to_the_dead_letter_table_and_the_rest_applies() {
    let (src, dst, slot) = setup(DDL).await;
    // The target is stricter than the source.
    exec(&dst.url, "ALTER TABLE t ADD CHECK (v < 100), ALTER COLUMN w SET NOT NULL").await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config_with(args(&src, &dst, &slot)), stop_rx));
    exec(&src.url, "INSERT INTO t SELECT g, g, 'ok' FROM generate_series(1, 50) g").await;
    // In one source transaction with good rows: a CHECK violation and a NOT NULL violation.
    exec(&src.url, "BEGIN; INSERT INTO t VALUES (51, 500, 'too big'), (52, 1, NULL), (53, 2, 'fine'); UPDATE t SET v = v + 1 WHERE id <= 10; COMMIT;").await;
    // Later changes keep flowing, including a later refusal.
    exec(&src.url, "UPDATE t SET w = 'later' WHERE id BETWEEN 40 AND 50; DELETE FROM t WHERE id = 1; INSERT INTO t VALUES (60, 999, 'x');").await;
    exec(&src.url, "INSERT INTO t SELECT g, 7, 'tail' FROM generate_series(100, 120) g").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    let refused = "(SELECT * FROM t WHERE id NOT IN (51, 52, 60))";
    assert_eq!(rows(&src.url, refused, "id").await, rows(&dst.url, refused, "id").await);
    let present = rows(&dst.url, "(SELECT * FROM t WHERE id IN (51, 52, 60))", "id").await;
    assert!(present.is_empty(), "{present:?}");
    let letters = rows(
        &dst.url,
        "(SELECT data->>'id' AS id, operation, sql_state, table_name, data->>'w' AS w FROM replicator_dlq)",
        "id",
    )
    .await;
    assert_eq!(
        letters,
        vec![
            "(51,upsert,23514,public.t,\"too big\")".to_owned(),
            "(52,upsert,23502,public.t,)".to_owned(),
            "(60,upsert,23514,public.t,x)".to_owned(),
        ]
    );
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_without_a_dead_letter_table_a_refused_row_stops_with_the_fix() {
    let (src, dst, slot) = setup(DDL).await;
    exec(&dst.url, "ALTER TABLE t ALTER COLUMN w SET NOT NULL").await;
    let mut argv = args(&src, &dst, &slot);
    argv.extend(["--dlqTableName".to_owned(), String::new()]);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config_with(argv), stop_rx));
    exec(&src.url, "INSERT INTO t VALUES (1, 1, 'a'); INSERT INTO t VALUES (2, 2, NULL)").await;
    source_end(&src).await;
    let err = engine.await.unwrap().expect_err("a refused row stops replication");
    let text = format!("{err:#}");
    assert!(text.contains("--dlqTableName") && text.contains("23502"), "{text}");
    let n: i64 = scalar(&dst.url, "SELECT count(*) FROM t WHERE id = 2").await;
    assert_eq!(n, 0);
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}
