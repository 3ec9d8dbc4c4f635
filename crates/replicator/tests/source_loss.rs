//! Losing the source: a terminated walsender (what a source restart, a failover or
//! `pg_terminate_backend` does) reconnects from the checkpoint with nothing lost, while a real
//! refusal (the slot dropped) stops with an error naming it and a non-zero exit.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use molt_testkit::TestDb;
use molt_testkit::sql::{exec, rows, scalar};

use molt_replicator::pglogical;

use super::{args, config_with, setup, source_end, unsafe_sigterm, wait_applied};

/// Starts the replicator binary, its stderr captured.
fn spawn(argv: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_replicator"))
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the slot has a walsender and returns its pid.
async fn walsender(src: &TestDb, slot: &str) -> i32 {
    for _ in 0..1200 {
        let pid: Option<i32> = scalar(
            &src.url,
            &format!("SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{slot}'"),
        )
        .await;
        if let Some(pid) = pid {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no walsender on slot {slot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_terminated_walsender_reconnects_and_loses_nothing() {
    let (src, dst, slot) = setup("CREATE TABLE t (id int4 PRIMARY KEY, v int4 NOT NULL);").await;
    let mut child = spawn(&args(&src, &dst, &slot));
    for round in 0..3 {
        exec(&src.url, &format!("INSERT INTO t SELECT g, {round} FROM generate_series({round} * 100 + 1, {round} * 100 + 100) g")).await;
        let pid = walsender(&src, &slot).await;
        // Writes committed while the walsender is gone arrive after the reconnect.
        let _: bool = scalar(&src.url, &format!("SELECT pg_terminate_backend({pid})")).await;
        exec(&src.url, &format!("UPDATE t SET v = v + 10 WHERE id % 3 = {round}")).await;
        let end = source_end(&src).await;
        wait_applied(&src, &dst, &slot, &end).await;
        assert!(child.try_wait().unwrap().is_none(), "round {round}: the replicator stopped");
    }
    assert_eq!(rows(&src.url, "t", "id").await, rows(&dst.url, "t", "id").await);
    unsafe_sigterm(&child);
    assert!(child.wait().unwrap().success(), "SIGTERM drains and exits 0");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_dropped_slot_stops_with_the_cause_and_a_non_zero_exit() {
    let (src, dst, slot) = setup("CREATE TABLE t (id int4 PRIMARY KEY);").await;
    let child = spawn(&args(&src, &dst, &slot));
    exec(&src.url, "INSERT INTO t VALUES (1)").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    // Terminate the walsender and drop the slot before the replicator is back on it.
    let mut dropped = false;
    for _ in 0..200 {
        let pid = walsender(&src, &slot).await;
        let gone: Option<bool> = scalar(
            &src.url,
            &format!("SELECT pg_terminate_backend({pid}) AND (SELECT count(*) FROM (SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}' AND NOT active) d) = 1"),
        )
        .await;
        if gone == Some(true) {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped, "could not drop the slot");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a lost slot is an error exit: {stderr}");
    assert!(stderr.contains(&slot) && stderr.contains("does not exist"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_source_without_logical_wal_is_named_before_the_target_is_touched() {
    // The target server of the test bed runs with wal_level = replica: use it as the source.
    let not_logical = molt_testkit::testbed().fresh_pg_target().await;
    let dst = molt_testkit::testbed().fresh_pg_target().await;
    let mut argv = args(&not_logical, &dst, "molt_slot");
    argv.retain(|a| a != "--stagingCreateSchema");
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let err = pglogical::run(config_with(argv), stop_rx).await.expect_err("refused");
    let text = format!("{err:#}");
    assert!(text.contains("wal_level = replica") && text.contains("wal_level = logical"), "{text}");
    assert!(!text.contains("staging"), "the cause is the source, not the staging schema: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_source_role_without_replication_is_told_how_to_grant_it() {
    let (src, dst, slot) = setup("CREATE TABLE t (id int4 PRIMARY KEY);").await;
    let role = format!("plain_{}", src.name);
    exec(&src.url, &format!("CREATE ROLE {role} LOGIN PASSWORD 'plain'")).await;
    let mut argv = args(&src, &dst, &slot);
    let at = argv.iter().position(|a| a == "--sourceConn").unwrap() + 1;
    argv[at] = src.url.replacen("molt:molt@", &format!("{role}:plain@"), 1);
    assert_ne!(argv[at], src.url);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let err = pglogical::run(config_with(argv), stop_rx).await.expect_err("refused");
    let text = format!("{err:#}");
    assert!(text.contains(&format!("ALTER ROLE {role} REPLICATION")), "{text}");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
    exec(&src.url, &format!("DROP ROLE {role}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_source_restart_reconnects_and_loses_nothing() {
    // A source of this test's own: the shared one must stay up for the other tests.
    let own = molt_testkit::OwnPg::start(&format!("restart_{}", std::process::id())).unwrap();
    let src = own.fresh().await;
    let dst = molt_testkit::testbed().fresh_pg_target().await;
    let ddl = "CREATE TABLE t (id int4 PRIMARY KEY, v int4 NOT NULL);";
    exec(&src.url, ddl).await;
    exec(&dst.url, ddl).await;
    let slot = "restart_slot";
    exec(&src.url, "CREATE PUBLICATION molt_fetch FOR ALL TABLES").await;
    exec(&src.url, &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"))
        .await;
    let mut child = spawn(&args(&src, &dst, slot));
    exec(&src.url, "INSERT INTO t SELECT g, 0 FROM generate_series(1, 500) g").await;
    wait_applied(&src, &dst, slot, &source_end(&src).await).await;
    for round in 1..=2 {
        // Down for a while (the replicator finds nothing listening), then up again.
        own.stop().unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        own.start_again().unwrap();
        exec(&src.url, &format!("UPDATE t SET v = v + {round} WHERE id % 2 = {}", round % 2)).await;
        exec(&src.url, &format!("INSERT INTO t VALUES ({}, {round})", 1000 + round)).await;
        wait_applied(&src, &dst, slot, &source_end(&src).await).await;
        assert!(child.try_wait().unwrap().is_none(), "round {round}: the replicator stopped");
    }
    assert_eq!(rows(&src.url, "t", "id").await, rows(&dst.url, "t", "id").await);
    unsafe_sigterm(&child);
    assert!(child.wait().unwrap().success(), "SIGTERM drains and exits 0");
}
