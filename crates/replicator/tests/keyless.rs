//! Tables without a primary key: replicated when the source sends whole old rows
//! (`REPLICA IDENTITY FULL`), refused with the fix otherwise.

use molt_replicator::pglogical;
use molt_testkit::sql::{exec, rows};

use super::{config, setup, source_end, wait_applied};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_keyless_tables_with_replica_identity_full_replicate_duplicates_exactly() {
    let ddl = "CREATE TABLE events (kind text, n int4, doc json, big text); \
               CREATE TABLE keyed (id int4 PRIMARY KEY, v text);";
    let (src, dst, slot) = setup(ddl).await;
    exec(&src.url, "ALTER TABLE events REPLICA IDENTITY FULL").await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config(&src, &dst, &slot), stop_rx));
    // Duplicate rows, NULLs, json (no equality operator) and a TOASTed value.
    exec(
        &src.url,
        "INSERT INTO events VALUES ('a', 1, '{\"x\": 1}', NULL), ('a', 1, '{\"x\": 1}', NULL), ('a', 1, '{\"x\": 1}', NULL), \
           ('b', NULL, NULL, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)), ('c', 3, '[1, 2]', 'small'); \
         INSERT INTO keyed VALUES (1, 'one');",
    )
    .await;
    // One of three identical rows changes, one is deleted; the TOASTed row changes elsewhere.
    exec(
        &src.url,
        "UPDATE events SET n = 2 WHERE ctid = (SELECT ctid FROM events WHERE kind = 'a' LIMIT 1); \
         DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE kind = 'a' AND n = 1 LIMIT 1); \
         UPDATE events SET n = 9 WHERE kind = 'b'; \
         BEGIN; INSERT INTO events VALUES ('d', 4, NULL, NULL); UPDATE keyed SET v = 'uno'; DELETE FROM events WHERE kind = 'c'; COMMIT;",
    )
    .await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    let all = "(SELECT kind, n, doc::text AS doc, md5(big) AS big FROM events)";
    let (want, got) = (rows(&src.url, all, "t::text").await, rows(&dst.url, all, "t::text").await);
    assert_eq!(want.len(), 4, "{want:?}");
    assert_eq!(want, got);
    assert_eq!(rows(&src.url, "keyed", "id").await, rows(&dst.url, "keyed", "id").await);
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_keyless_table_without_full_identity_is_refused_with_the_fix() {
    let (src, dst, slot) = setup("CREATE TABLE loose (a int4, b text);").await;
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config(&src, &dst, &slot), stop_rx));
    exec(&src.url, "INSERT INTO loose VALUES (1, 'x')").await;
    source_end(&src).await;
    let err = engine.await.unwrap().expect_err("refused");
    let text = format!("{err:#}");
    assert!(text.contains("REPLICA IDENTITY FULL") && text.contains("no primary key"), "{text}");
    let n: i64 = molt_testkit::sql::scalar(&dst.url, "SELECT count(*) FROM loose").await;
    assert_eq!(n, 0);
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}
