//! Leases: two replicators on one staging schema never both apply, a successor takes over
//! after a crash, and an instance whose lease was taken cannot commit.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use molt_replicator::pglogical;
use molt_testkit::sql::{exec, rows, scalar};

use super::{args, config, setup, source_end, unsafe_sigterm, wait_applied};

/// Waits (bounded) until `sql` returns true on `url`.
async fn wait_until(url: &str, sql: &str) {
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    for _ in 0..2400 {
        tick.tick().await;
        if scalar::<bool>(url, sql).await {
            return;
        }
    }
    panic!("never true: {sql}");
}

fn spawn_logging_to(argv: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_replicator"))
        .args(&argv[1..])
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until the log file holds `text`.
async fn wait_for_log(log: &Path, text: &str) {
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    for _ in 0..2400 {
        tick.tick().await;
        if std::fs::read_to_string(log).is_ok_and(|l| l.contains(text)) {
            return;
        }
    }
    panic!(
        "{} never logged {text:?}:\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_second_instance_waits_and_takes_over_after_a_crash() {
    let (src, dst, slot) = setup("CREATE TABLE t (id int4 PRIMARY KEY, v int4 NOT NULL);").await;
    let dir = std::env::temp_dir().join(format!("molt-lease-{}", src.name));
    std::fs::create_dir_all(&dir).unwrap();
    let (log_a, log_b) = (dir.join("a.log"), dir.join("b.log"));
    let argv = args(&src, &dst, &slot);
    let mut a = spawn_logging_to(&argv, &log_a);
    exec(&src.url, "INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    let mut b = spawn_logging_to(&argv, &log_b);
    wait_for_log(&log_b, "waiting for the staging lease").await;
    // While A holds the lease, A applies and B does nothing.
    exec(&src.url, "UPDATE t SET v = 1 WHERE id <= 50").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    let b_log = std::fs::read_to_string(&log_b).unwrap();
    assert!(!b_log.contains("upserted rows"), "B applied while A held the lease:\n{b_log}");
    assert!(!b_log.contains("acquired the staging lease"), "{b_log}");
    // A crashes; B, on the same host, sees A's process is gone and takes over at once.
    a.kill().unwrap();
    a.wait().unwrap();
    wait_for_log(&log_b, "acquired the staging lease").await;
    exec(&src.url, "UPDATE t SET v = 2 WHERE id > 50; INSERT INTO t VALUES (101, 3)").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    wait_for_log(&log_b, "upserted rows").await;
    assert_eq!(rows(&src.url, "t", "id").await, rows(&dst.url, "t", "id").await);
    unsafe_sigterm(&b);
    assert!(b.wait().unwrap().success(), "B drains and exits 0");
    // A clean stop releases the lease.
    let leases: i64 = scalar(&dst.url, "SELECT count(*) FROM _replicator.leases").await;
    assert_eq!(leases, 0);
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_an_instance_whose_lease_was_taken_cannot_commit() {
    let (src, dst, slot) = setup("CREATE TABLE t (id int4 PRIMARY KEY, v int4 NOT NULL);").await;
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config(&src, &dst, &slot), stop_rx));
    exec(&src.url, "INSERT INTO t VALUES (1, 1)").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    wait_until(&dst.url, "SELECT count(*) = 1 FROM t").await;
    // Another instance (elsewhere) takes the lease, as it would after this one stalled.
    exec(&dst.url, "UPDATE _replicator.leases SET nonce = 'theirs', hostname = 'elsewhere:42'")
        .await;
    exec(&src.url, "INSERT INTO t VALUES (2, 2)").await;
    source_end(&src).await;
    let err = tokio::time::timeout(Duration::from_secs(120), engine)
        .await
        .expect("the engine stops")
        .unwrap()
        .expect_err("a lost lease stops the engine");
    assert!(format!("{err:#}").contains("elsewhere:42"), "{err:#}");
    let n: i64 = scalar(&dst.url, "SELECT count(*) FROM t WHERE id = 2").await;
    assert_eq!(n, 0, "nothing commits without the lease");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}
