//! Primary keys that change inside a transaction: shifts, swaps and rotations through each
//! other's keys (under `DEFERRABLE` keys, with and without `REPLICA IDENTITY FULL`), moves onto
//! a key freed earlier, composite keys and moved rows with unchanged TOAST values. The target's
//! keys are checked on every statement, as CockroachDB's are; each table must end identical
//! to the source, row by row.

use molt_replicator::pglogical;
use molt_testkit::sql::{exec, rows};

use super::{config, setup_with, source_end, wait_applied};

const DEFERRED: &str = "DEFERRABLE INITIALLY DEFERRED";

/// `(table, DDL with {pk} where the key clause goes, rows to start with, replica identity)`.
/// A `DEFERRABLE` key cannot be a replica identity, so the `_ident` tables identify rows by a
/// unique index (checked at once) over the key and one more column.
fn tables() -> Vec<(String, String, &'static str, String)> {
    let mut out = Vec::new();
    for suffix in ["full", "ident"] {
        for (base, ddl, seed, index) in [
            (
                "shift",
                "id int4, v text NOT NULL, w text, PRIMARY KEY (id) {pk}",
                "SELECT g, 'v' || g, 'w' FROM generate_series(1, 10) g",
                "id, v",
            ),
            (
                "swap",
                "id int4, v text NOT NULL, w text, PRIMARY KEY (id) {pk}",
                "VALUES (1, 'a', 'x'), (2, 'b', 'y'), (3, 'c', 'z')",
                "id, v",
            ),
            (
                "rot",
                "id int4, v text NOT NULL, w text, PRIMARY KEY (id) {pk}",
                "VALUES (1, 'a', ''), (2, 'b', ''), (3, 'c', ''), (4, 'd', '')",
                "id, v",
            ),
            (
                "comp",
                "a int4, b int4, v text NOT NULL, w int4, PRIMARY KEY (a, b) {pk}",
                "SELECT 1 + g % 2, g, 'v' || g, g FROM generate_series(1, 20) g",
                "a, b, v",
            ),
            (
                "big",
                "id int4, big text, n int4 NOT NULL, PRIMARY KEY (id) {pk}",
                "SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 400) i), g FROM generate_series(1, 6) g",
                "id, n",
            ),
            (
                "freed",
                "id int4, v text NOT NULL, w text, PRIMARY KEY (id)",
                "SELECT g, 'v' || g, 'w' FROM generate_series(1, 8) g",
                "",
            ),
        ] {
            let table = format!("{base}_{suffix}");
            let identity = match (suffix, index) {
                ("full", _) => "FULL".to_owned(),
                (_, "") => "DEFAULT".to_owned(),
                _ => format!("USING INDEX {table}_ident"),
            };
            let ddl = if index.is_empty() {
                ddl.to_owned()
            } else {
                format!("{ddl}); CREATE UNIQUE INDEX {table}_ident ON {table} ({index}")
            };
            out.push((table, ddl, seed, identity));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_keys_passing_through_each_other_arrive_exactly() {
    let (mut src_ddl, mut dst_ddl) = (String::new(), String::new());
    for (table, ddl, seed, identity) in tables() {
        let create = |pk: &str| {
            format!(
                "CREATE TABLE {table} ({}); INSERT INTO {table} {seed};",
                ddl.replace("{pk}", pk)
            )
        };
        src_ddl.push_str(&create(DEFERRED));
        src_ddl.push_str(&format!("ALTER TABLE {table} REPLICA IDENTITY {identity};"));
        // The target checks keys on every statement (CockroachDB has no DEFERRABLE).
        dst_ddl.push_str(&create(""));
    }
    let (src, dst, slot) = setup_with(&src_ddl, &dst_ddl).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config(&src, &dst, &slot), stop_rx));
    for suffix in ["full", "ident"] {
        let script = [
            // A shift in one statement (rows visited in key order: each lands on the next
            // row's key before that row leaves it), then back down, one statement per row.
            format!("UPDATE shift_{suffix} SET id = id + 1"),
            format!(
                "BEGIN; {} COMMIT",
                (2..=11)
                    .map(|i| format!(
                        "UPDATE shift_{suffix} SET id = {} WHERE id = {i};",
                        i - 1 + 100
                    ))
                    .collect::<String>()
            ),
            // A swap in one statement, and one in two with the key shared in between.
            format!(
                "UPDATE swap_{suffix} SET id = CASE id WHEN 1 THEN 2 WHEN 2 THEN 1 END WHERE id IN (1, 2)"
            ),
            format!(
                "BEGIN; UPDATE swap_{suffix} SET id = 3 WHERE v = 'a'; UPDATE swap_{suffix} SET id = 2 WHERE v = 'c'; COMMIT"
            ),
            // A rotation in three statements, a row deleted from a shared key, an insert onto
            // a key its row is leaving.
            format!(
                "BEGIN; UPDATE rot_{suffix} SET id = 2 WHERE v = 'a'; UPDATE rot_{suffix} SET id = 3 WHERE v = 'b'; UPDATE rot_{suffix} SET id = 1 WHERE v = 'c'; COMMIT"
            ),
            format!(
                "BEGIN; UPDATE rot_{suffix} SET id = 4 WHERE v = 'c'; DELETE FROM rot_{suffix} WHERE id = 4 AND v = 'd'; INSERT INTO rot_{suffix} VALUES (1, 'e'); COMMIT"
            ),
            // Composite keys: the second column shifts within the first.
            format!("UPDATE comp_{suffix} SET b = b + 2 WHERE a = 1"),
            format!("UPDATE comp_{suffix} SET a = 3 - a, v = v || '!' WHERE b < 10"),
            // Moved rows whose big value is unchanged (sent as "unchanged TOAST"): a shift
            // and a move away.
            format!("UPDATE big_{suffix} SET id = id + 1, n = n + 10"),
            format!("UPDATE big_{suffix} SET id = id + 100 WHERE id % 2 = 0"),
            // Keys checked at once: a move onto a key deleted earlier in the transaction, an
            // insert onto the key it left, and a row moved twice.
            format!(
                "BEGIN; DELETE FROM freed_{suffix} WHERE id = 5; UPDATE freed_{suffix} SET id = 5 WHERE id = 6; INSERT INTO freed_{suffix} VALUES (6, 'new'); UPDATE freed_{suffix} SET id = 60 WHERE id = 7; UPDATE freed_{suffix} SET id = 70, v = 'twice' WHERE id = 60; COMMIT"
            ),
            format!(
                "BEGIN; INSERT INTO freed_{suffix} VALUES (9, 'brief'); DELETE FROM freed_{suffix} WHERE id = 9; DELETE FROM freed_{suffix} WHERE id = 1; INSERT INTO freed_{suffix} VALUES (1, 'back'); COMMIT"
            ),
        ];
        for sql in script {
            exec(&src.url, &sql).await;
        }
        // A row moved twice while another shares its key: told apart by the identity.
        exec(&src.url, &format!("BEGIN; UPDATE swap_{suffix} SET id = 5 WHERE id = 1; INSERT INTO swap_{suffix} VALUES (6, 'f'); UPDATE swap_{suffix} SET id = 6 WHERE id = 2; UPDATE swap_{suffix} SET id = 7 WHERE v = 'f'; COMMIT")).await;
    }
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    for (table, ddl, _, _) in tables() {
        let key = if ddl.starts_with("a int4") { "a, b" } else { "id" };
        let select = if table.starts_with("big") {
            format!("(SELECT id, md5(big) AS big, length(big) AS len, n FROM {table})")
        } else {
            table.clone()
        };
        let (want, got) = (rows(&src.url, &select, key).await, rows(&dst.url, &select, key).await);
        assert!(!want.is_empty(), "{table}");
        assert_eq!(want, got, "{table}");
    }
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_shift_larger_than_a_flush_applies_in_parts_exactly() {
    // 5000 rows shift by one in one transaction; --flushSize 500 hands it over in parts, and
    // between parts one key is always held by two rows.
    let ddl = |pk: &str| {
        format!(
            "CREATE TABLE wide (id int4, v text, PRIMARY KEY (id) {pk}); INSERT INTO wide SELECT g, md5(g::text) FROM generate_series(1, 5000) g; ALTER TABLE wide REPLICA IDENTITY FULL;"
        )
    };
    let (src, dst, slot) = setup_with(&ddl(DEFERRED), &ddl("")).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config(&src, &dst, &slot), stop_rx));
    exec(&src.url, "UPDATE wide SET id = id + 1").await;
    exec(&src.url, "UPDATE wide SET id = 6000 - id, v = v || '!'").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    assert_eq!(rows(&src.url, "wide", "id").await, rows(&dst.url, "wide", "id").await);
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_unique_values_swapped_through_a_temporary_one_arrive_without_refusals() {
    // The batch's net effect puts 'b' on row 1 while row 2 still holds it; replayed in source
    // order (as the source checked it) the swap applies. No dead-letter table: a refusal
    // would stop replication.
    let ddl = "CREATE TABLE u (id int4 PRIMARY KEY, email text NOT NULL UNIQUE); \
               INSERT INTO u VALUES (1, 'a'), (2, 'b'), (3, 'c');";
    let (src, dst, slot) = super::setup(ddl).await;
    let mut argv = super::args(&src, &dst, &slot);
    argv.extend(["--dlqTableName".to_owned(), String::new()]);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut engine = tokio::spawn(pglogical::run(super::config_with(argv), stop_rx));
    exec(
        &src.url,
        "BEGIN; UPDATE u SET email = 'tmp' WHERE id = 1; UPDATE u SET email = 'a' WHERE id = 2; \
                    UPDATE u SET email = 'b' WHERE id = 1; COMMIT; INSERT INTO u VALUES (4, 'd');",
    )
    .await;
    let end = source_end(&src).await;
    tokio::select! {
        () = wait_applied(&src, &dst, &slot, &end) => {}
        stopped = &mut engine => panic!("the replicator stopped: {stopped:?}"),
    }
    assert_eq!(rows(&src.url, "u", "id").await, rows(&dst.url, "u", "id").await);
    // And back at full speed afterwards.
    exec(&src.url, "UPDATE u SET email = email || '!'").await;
    let end = source_end(&src).await;
    tokio::select! {
        () = wait_applied(&src, &dst, &slot, &end) => {}
        stopped = &mut engine => panic!("the replicator stopped: {stopped:?}"),
    }
    assert_eq!(rows(&src.url, "u", "id").await, rows(&dst.url, "u", "id").await);
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}
