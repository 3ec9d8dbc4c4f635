//! replicator pglogical against the real test bed: every change kind and type, kill -9 and
//! restart with nothing lost or applied twice, and the slot moving while tables are idle.

use std::time::Duration;

use clap::Parser as _;
use molt_replicator::{Command, ReplicatorArgs, pglogical};
use molt_testkit::sql::{exec, rows, scalar};
use molt_testkit::{EVERY_PG_TYPE, EVERY_PG_TYPE_TABLES, TestDb, testbed};
use sqlx::{Connection as _, PgConnection};

mod dlq;
mod keyless;
mod keys;
mod lease;
mod mylogical;
mod schema;
mod source_loss;

/// Source and target with `ddl` on both, a publication for all tables and a pgoutput slot.
async fn setup(ddl: &str) -> (TestDb, TestDb, String) {
    setup_with(ddl, ddl).await
}

/// [`setup`] with different DDL on each side.
async fn setup_with(src_ddl: &str, dst_ddl: &str) -> (TestDb, TestDb, String) {
    let src = testbed().fresh_pg_source().await;
    let dst = testbed().fresh_pg_target().await;
    exec(&src.url, src_ddl).await;
    exec(&dst.url, dst_ddl).await;
    let slot = format!("repl_{}", src.name);
    exec(&src.url, "CREATE PUBLICATION molt_fetch FOR ALL TABLES").await;
    exec(&src.url, &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"))
        .await;
    (src, dst, slot)
}

fn args(src: &TestDb, dst: &TestDb, slot: &str) -> Vec<String> {
    [
        "replicator",
        "pglogical",
        "--sourceConn",
        &src.url,
        "--targetConn",
        &dst.url,
        "--targetSchema",
        &format!("{}.public", dst.name),
        "--slotName",
        slot,
        "--publicationName",
        "molt_fetch",
        "--stagingSchema",
        "_replicator.public",
        "--stagingCreateSchema",
        "--standbyTimeout",
        "200ms",
        "--flushSize",
        "500",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn config(src: &TestDb, dst: &TestDb, slot: &str) -> pglogical::PglogicalConfig {
    config_with(args(src, dst, slot))
}

/// The engine's configuration from a full command line.
fn config_with(argv: Vec<String>) -> pglogical::PglogicalConfig {
    let a = ReplicatorArgs::try_parse_from(argv).unwrap();
    let Command::Pglogical(p) = a.command else { panic!("pglogical") };
    molt_replicator::pglogical_config(&p).unwrap()
}

/// Flushes the source's WAL (the test bed commits asynchronously) and returns its end LSN.
async fn source_end(src: &TestDb) -> String {
    molt_testkit::sql::flush_wal(&src.url).await
}

/// Waits until the target's checkpoint (or the slot) has passed `lsn`.
async fn wait_applied(src: &TestDb, dst: &TestDb, slot: &str, lsn: &str) {
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    for _ in 0..7200 {
        tick.tick().await;
        let done: bool = scalar(
            &src.url,
            &format!("SELECT COALESCE(confirmed_flush_lsn >= '{lsn}'::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = '{slot}'"),
        )
        .await;
        if done {
            return;
        }
    }
    let saved: Option<String> = {
        let mut c = PgConnection::connect(&dst.url).await.unwrap();
        sqlx::query_scalar("SELECT convert_from(value, 'UTF8') FROM _replicator.memo")
            .fetch_optional(&mut c)
            .await
            .unwrap_or(None)
    };
    panic!("replication did not reach {lsn} within three minutes (checkpoint {saved:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_every_change_kind_and_type_arrives() {
    let ddl = format!(
        "{EVERY_PG_TYPE}; CREATE TABLE toasty (id int4 PRIMARY KEY, big text, n int4); \
         CREATE TABLE moving (k int4 PRIMARY KEY, v text); CREATE TABLE emptied (id int4 PRIMARY KEY);"
    );
    let (src, dst, slot) = setup(&ddl).await;
    exec(&dst.url, "TRUNCATE every_type, uuid_keyed, float_keyed, composite_keyed").await;
    exec(&src.url, "INSERT INTO toasty SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 400) i), 0 FROM generate_series(1, 5) g; \
                    INSERT INTO moving SELECT g, 'v' || g FROM generate_series(1, 10) g; INSERT INTO emptied SELECT generate_series(1, 5);").await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config(&src, &dst, &slot), stop_rx));
    // Every row of the EVERY_PG_TYPE tables again, as inserts, then updates and deletes.
    exec(&src.url, "UPDATE every_type SET c_int4 = c_int4 WHERE id % 2 = 0; DELETE FROM every_type WHERE id BETWEEN 100 AND 120; \
                    UPDATE uuid_keyed SET v = v || '!'; DELETE FROM float_keyed WHERE v % 5 = 0; UPDATE composite_keyed SET v = NULL WHERE a = 3;").await;
    // TOAST: the big value is unchanged and not sent; it must stay on the target.
    exec(&src.url, "UPDATE toasty SET n = n + 1").await;
    // Primary-key changes remove the old row; a truncate empties the target table.
    exec(&src.url, "UPDATE moving SET k = k + 100 WHERE k <= 3; TRUNCATE emptied; INSERT INTO emptied VALUES (42);").await;
    // One source transaction touching several tables, with repeated keys.
    exec(&src.url, "BEGIN; INSERT INTO moving VALUES (50, 'a'); UPDATE moving SET v = 'b' WHERE k = 50; UPDATE moving SET v = 'c' WHERE k = 50; DELETE FROM moving WHERE k = 4; INSERT INTO moving VALUES (4, 'again'); COMMIT;").await;
    let end = source_end(&src).await;
    wait_applied(&src, &dst, &slot, &end).await;
    // The source's rows as they are now exist on the target (the EVERY_PG_TYPE rows arrived
    // only through replication: the target was emptied first... except those inserted before
    // the slot: they were in both from the DDL script, so compare whole tables).
    let mut tables: Vec<(&str, &str)> =
        EVERY_PG_TYPE_TABLES.iter().map(|(t, k, _)| (*t, *k)).collect();
    tables.extend([("toasty", "id"), ("moving", "k"), ("emptied", "id")]);
    for (table, key) in tables {
        if EVERY_PG_TYPE_TABLES.iter().any(|(t, _, _)| *t == table) {
            // Only rows changed after the slot was created are replicated into the emptied
            // target; compare those.
            continue;
        }
        assert_eq!(rows(&src.url, table, key).await, rows(&dst.url, table, key).await, "{table}");
    }
    let changed_src = rows(&src.url, "(SELECT * FROM uuid_keyed) ", "id").await;
    let changed_dst = rows(&dst.url, "(SELECT * FROM uuid_keyed) ", "id").await;
    assert_eq!(changed_src, changed_dst, "every uuid_keyed row was updated and replicated");
    let even_src = rows(&src.url, "(SELECT * FROM every_type WHERE id % 2 = 0)", "id").await;
    let even_dst = rows(&dst.url, "(SELECT * FROM every_type WHERE id % 2 = 0)", "id").await;
    assert_eq!(even_src.len(), even_dst.len(), "updated rows of every type arrived");
    assert_eq!(even_src, even_dst, "every type arrives identical through replication");
    let big_ok: bool =
        scalar(&dst.url, "SELECT bool_and(length(big) = 12800 AND n = 1) FROM toasty").await;
    assert!(big_ok, "unchanged TOAST values are kept");
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("drains and stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_kill_9_and_restart_loses_nothing_and_applies_nothing_twice() {
    let ddl =
        "CREATE TABLE acct (id int4 PRIMARY KEY, version int4 NOT NULL, balance int8 NOT NULL);";
    let (src, dst, slot) = setup(ddl).await;
    // Applying a transaction twice would insert an audit row twice and fail on its key.
    exec(&dst.url, "CREATE TABLE audit (id int4, version int4, PRIMARY KEY (id, version)); \
        CREATE FUNCTION log_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit VALUES (NEW.id, NEW.version); RETURN NEW; END $$; \
        CREATE TRIGGER log_apply AFTER INSERT OR UPDATE ON acct FOR EACH ROW EXECUTE FUNCTION log_apply();").await;
    let writer = {
        let url = src.url.clone();
        tokio::spawn(async move {
            let mut c = PgConnection::connect(&url).await.unwrap();
            for i in 0..20000 {
                let id = i % 97;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO acct VALUES ({id}, 0, 0) ON CONFLICT (id) DO UPDATE SET version = acct.version + 1, balance = acct.balance + {i}"
                )))
                .execute(&mut c)
                .await
                .unwrap();
            }
        })
    };
    let bin = env!("CARGO_BIN_EXE_replicator");
    let argv = args(&src, &dst, &slot);
    // The saved position: it changes each time a target transaction commits.
    let checkpoint = |dst: TestDb| async move {
        let mut c = PgConnection::connect(&dst.url).await.unwrap();
        sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM _replicator.memo")
            .fetch_optional(&mut c)
            .await
            .ok()
            .flatten()
    };
    // Kill it at several points: right away, then each time after it committed something new.
    let mut last = None;
    for round in 0..4 {
        let mut child = std::process::Command::new(bin)
            .args(&argv[1..])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for _ in 0..3000 {
            tick.tick().await;
            let now = checkpoint(dst.clone()).await;
            if round == 0 || (now.is_some() && now != last) {
                last = now;
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    writer.await.unwrap();
    let mut child = std::process::Command::new(bin)
        .args(&argv[1..])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let end = source_end(&src).await;
    wait_applied(&src, &dst, &slot, &end).await;
    unsafe_sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM drains and exits 0: {status}");
    assert_eq!(rows(&src.url, "acct", "id").await, rows(&dst.url, "acct", "id").await);
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

fn unsafe_sigterm(child: &std::process::Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_the_slot_advances_while_published_tables_are_idle() {
    let (src, dst, slot) = setup("CREATE TABLE watched (id int4 PRIMARY KEY);").await;
    exec(&src.url, "DROP PUBLICATION molt_fetch; CREATE PUBLICATION molt_fetch FOR TABLE watched; CREATE TABLE other (id int4);").await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config(&src, &dst, &slot), stop_rx));
    exec(&src.url, "INSERT INTO other SELECT generate_series(1, 1000)").await;
    let end = source_end(&src).await;
    wait_applied(&src, &dst, &slot, &end).await;
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_losing_the_target_connection_resumes_from_the_checkpoint() {
    let (src, dst, slot) = setup("CREATE TABLE t (id int4 PRIMARY KEY, v int4 NOT NULL);").await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config(&src, &dst, &slot), stop_rx));
    exec(&src.url, "INSERT INTO t SELECT g, 0 FROM generate_series(1, 1000) g").await;
    let end = source_end(&src).await;
    wait_applied(&src, &dst, &slot, &end).await;
    // The target drops every session of the replicator (as a target restart would).
    exec(&dst.url, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'molt' AND pid <> pg_backend_pid()", dst.name)).await;
    for i in 0..20 {
        exec(&src.url, &format!("UPDATE t SET v = v + 1 WHERE id % 20 = {i}")).await;
    }
    let end = source_end(&src).await;
    wait_applied(&src, &dst, &slot, &end).await;
    assert_eq!(rows(&src.url, "t", "id").await, rows(&dst.url, "t", "id").await);
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("recovered and stopped cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_max_retries_counts_failures_in_a_row_not_in_a_lifetime() {
    let (src, dst, slot) = setup("CREATE TABLE t (id int4 PRIMARY KEY, v int4 NOT NULL);").await;
    let mut argv = args(&src, &dst, &slot);
    argv.extend(["--maxRetries".to_owned(), "1".to_owned()]);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut engine = tokio::spawn(pglogical::run(config_with(argv), stop_rx));
    // Three failures of an apply transaction, each after the replicator made progress: with
    // --maxRetries 1 it must survive them all. A lock holds the apply still, and its backend
    // is terminated in the middle of the transaction.
    let blocked = format!(
        "SELECT COALESCE(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity \
         WHERE datname = '{}' AND application_name = 'molt' AND wait_event_type = 'Lock'",
        dst.name
    );
    for round in 0..3 {
        let mut holder = PgConnection::connect(&dst.url).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            .execute(&mut holder)
            .await
            .unwrap();
        exec(&src.url, &format!("INSERT INTO t SELECT g, {round} FROM generate_series({round} * 100 + 1, {round} * 100 + 100) g")).await;
        source_end(&src).await;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut killed = false;
        for _ in 0..3000 {
            tick.tick().await;
            assert!(!engine.is_finished(), "round {round}: the replicator gave up");
            // The kill is in the select list: it runs only on the backends the WHERE kept.
            if scalar::<bool>(&dst.url, &blocked).await {
                killed = true;
                break;
            }
        }
        assert!(killed, "round {round}: the apply never waited on the lock");
        sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
        let end = source_end(&src).await;
        tokio::select! {
            () = wait_applied(&src, &dst, &slot, &end) => {}
            gone = &mut engine => panic!("round {round}: the replicator gave up: {gone:?}"),
        }
    }
    assert!(!engine.is_finished(), "the replicator gave up");
    assert_eq!(rows(&src.url, "t", "id").await, rows(&dst.url, "t", "id").await);
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_million_row_transaction_applies_in_bounded_memory() {
    let (src, dst, slot) = setup("CREATE TABLE big (id int4 PRIMARY KEY, v text NOT NULL);").await;
    let bin = env!("CARGO_BIN_EXE_replicator");
    let argv = args(&src, &dst, &slot);
    let mut child = std::process::Command::new(bin)
        .args(&argv[1..])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    exec(&src.url, "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g")
        .await;
    let end = source_end(&src).await;
    wait_applied(&src, &dst, &slot, &end).await;
    let peak = peak_rss_kib(child.id());
    unsafe_sigterm(&child);
    assert!(child.wait().unwrap().success());
    let n: i64 = scalar(&dst.url, "SELECT count(*) FROM big").await;
    assert_eq!(n, 1_000_000);
    // A million rows of this table are ~60 MB as text; the replicator holds --flushSize rows.
    assert!(peak > 0 && peak < 150 * 1024, "peak RSS {peak} KiB");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}
