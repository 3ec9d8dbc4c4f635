//! The hand-off between the load and the slot: while a writer commits inserts, fetch creates
//! the slot with an exported snapshot; afterwards every committed row is either in the load
//! or in the slot's stream from the printed cursor, never both, never neither.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{Connection as _, PgConnection};

use crate::support::{fetch, scalar, source_with};
use molt_testkit::testbed;

/// The `id` (first column, int8 as text) of every pgoutput Insert message in `messages`.
fn inserted_ids(messages: &[Vec<u8>]) -> Vec<i64> {
    let mut out = Vec::new();
    for m in messages {
        // 'I', relation oid (4), 'N', column count (2), then per column kind + length + bytes.
        if m.first() != Some(&b'I') || m.get(5) != Some(&b'N') || m.get(8) != Some(&b't') {
            continue;
        }
        let len = u32::from_be_bytes([m[9], m[10], m[11], m[12]]) as usize;
        let text = std::str::from_utf8(&m[13..13 + len]).expect("utf8 id");
        out.push(text.parse().expect("an integer id"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_every_committed_row_is_in_exactly_one_of_load_or_stream() {
    let src = source_with(
        "CREATE TABLE events (id int8 PRIMARY KEY, payload text NOT NULL); \
         CREATE SEQUENCE event_ids START 1000001; \
         INSERT INTO events SELECT g, repeat('p', 200) FROM generate_series(1, 200000) g;",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    let slot = format!("molt_test_{}", src.name);

    // A writer commits small transactions until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (url, stop) = (src.url.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await.expect("writer connects");
            let mut txns = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sqlx::raw_sql(
                    "INSERT INTO events SELECT nextval('event_ids'), 'w' FROM generate_series(1, 3)",
                )
                .execute(&mut conn)
                .await
                .expect("writer insert");
                txns += 1;
            }
            txns
        })
    };
    // Start fetch only once the writer is committing.
    while scalar::<i64>(&src.url, "SELECT count(*) FROM events WHERE id > 1000000").await < 30 {
        tokio::task::yield_now().await;
    }
    let summary = fetch(
        &src.url,
        &dst.url,
        &[
            "--direct-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--pglogical-replication-slot-name",
            &slot,
            "--pglogical-publication-and-slot-drop-and-recreate",
        ],
    )
    .await
    .expect("fetch with a slot");
    // Keep writing a little after the load, then stop.
    let after: i64 = scalar(&src.url, "SELECT max(id) FROM events").await;
    while scalar::<i64>(&src.url, "SELECT max(id) FROM events").await < after + 30 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    let txns = writer.await.expect("writer");
    assert!(txns > 20, "the writer ran during the load ({txns} transactions)");

    let consistent: String = scalar(
        &src.url,
        &format!(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{slot}'"
        ),
    )
    .await;
    assert_eq!(summary.cdc_cursor, consistent, "the cursor is the slot's consistent point");

    let mut conn = PgConnection::connect(&src.url).await.unwrap();
    // The test bed commits asynchronously; logical decoding reads only flushed WAL, so flush
    // it with one synchronous commit.
    sqlx::raw_sql("BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT; SELECT pg_switch_wal()")
        .execute(&mut conn)
        .await
        .unwrap();
    let messages: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', 'molt_fetch')",
    )
    .bind(&slot)
    .fetch_all(&mut conn)
    .await
    .expect("read the slot");
    let streamed: Vec<i64> = inserted_ids(&messages);
    let loaded: BTreeSet<i64> = {
        let mut t = PgConnection::connect(&dst.url).await.unwrap();
        sqlx::query_scalar("SELECT id FROM events")
            .fetch_all(&mut t)
            .await
            .unwrap()
            .into_iter()
            .collect()
    };
    let all: BTreeSet<i64> = sqlx::query_scalar("SELECT id FROM events")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let streamed_set: BTreeSet<i64> = streamed.iter().copied().collect();
    assert_eq!(streamed.len(), streamed_set.len(), "no row streamed twice");
    assert!(streamed_set.len() >= 30, "the stream holds the writes after the cursor");
    assert!(loaded.iter().any(|id| *id > 1_000_000), "the load holds writes before the cursor");
    let both: Vec<&i64> = loaded.intersection(&streamed_set).collect();
    assert!(
        both.is_empty(),
        "{} rows are in both the load and the stream, e.g. {:?}",
        both.len(),
        &both[..both.len().min(5)]
    );
    let union: BTreeSet<i64> = loaded.union(&streamed_set).copied().collect();
    let neither: Vec<&i64> = all.difference(&union).collect();
    let unknown: Vec<&i64> = union.difference(&all).collect();
    assert!(
        neither.is_empty() && unknown.is_empty(),
        "{} committed rows are in neither the load nor the stream (e.g. {:?}); {} streamed rows do not exist (e.g. {:?}); loaded {}..{:?}, streamed {:?}..{:?}, cursor {}",
        neither.len(),
        &neither[..neither.len().min(5)],
        unknown.len(),
        &unknown[..unknown.len().min(5)],
        loaded.len(),
        loaded.last(),
        streamed_set.first(),
        streamed_set.last(),
        summary.cdc_cursor
    );
    sqlx::query("SELECT pg_drop_replication_slot($1)")
        .bind(&slot)
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_an_existing_slot_is_not_replaced_without_the_flag() {
    let src = source_with("CREATE TABLE t (id int8 PRIMARY KEY); INSERT INTO t VALUES (1);").await;
    let dst = testbed().fresh_pg_target().await;
    let slot = format!("molt_keep_{}", src.name);
    let flags = [
        "--direct-copy",
        "--table-handling",
        "drop-on-target-and-recreate",
        "--pglogical-replication-slot-name",
        &slot,
    ];
    fetch(&src.url, &dst.url, &flags).await.expect("first fetch creates the slot");
    let err = fetch(&src.url, &dst.url, &flags).await.unwrap_err();
    let text = molt_cli::error_chain(&err);
    assert!(
        text.contains("already exists")
            && text.contains("--pglogical-publication-and-slot-drop-and-recreate"),
        "{text}"
    );
    let mut conn = PgConnection::connect(&src.url).await.unwrap();
    sqlx::query("SELECT pg_drop_replication_slot($1)")
        .bind(&slot)
        .execute(&mut conn)
        .await
        .unwrap();
}
