//! `cargo xtask bench replicator --source mysql`: a binlog backlog on MariaDB (100k accounts,
//! then 100,000 transactions each updating one account and inserting one history row, written
//! while no replicator runs) drained into PostgreSQL by `replicator mylogical` (from fetch's
//! cursor) and by `pg_chameleon start_replica` (after its `init_replica`), one after the other
//! on the same machine; each drain ends when the target holds exactly the source's rows. Prints
//! rows/s, the ratio and each replicator's peak RSS; writes `target/bench/replicator-mysql.json`.
//! Timings are never asserted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use molt_testkit::Testbed;

use crate::bench::{build_release, psql};
use crate::bench_mysql::{chameleon, mariadb, prepare_chameleon, recreate_target};

const DB: &str = "molt_bench_myrepl";
const TXNS: u64 = 100_000;

const DDL: &str = "
CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance DECIMAL(14,2) NOT NULL, owner VARCHAR(40));
INSERT INTO accounts SELECT seq, 1000, CONCAT('owner ', seq) FROM seq_1_to_100000;
CREATE TABLE history (id BIGINT PRIMARY KEY, account BIGINT NOT NULL, delta DECIMAL(14,2) NOT NULL, at DATETIME(6) NOT NULL);
DELIMITER //
CREATE PROCEDURE workload(n INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE base BIGINT;
  SELECT COALESCE(MAX(id), 0) INTO base FROM history;
  WHILE i < n DO
    START TRANSACTION;
    UPDATE accounts SET balance = balance + (i % 100) - 50 WHERE id = 1 + (i * 7919) % 100000;
    INSERT INTO history VALUES (base + i + 1, 1 + (i * 7919) % 100000, (i % 100) - 50, NOW(6));
    COMMIT;
    SET i = i + 1;
  END WHILE;
END //
DELIMITER ;
";

/// The facts both targets must end with: history rows, their sum, the balances' sum.
const FACTS_MY: &str = "SELECT CONCAT((SELECT COUNT(*) FROM history), '|', (SELECT COALESCE(SUM(delta), 0) FROM history), '|', (SELECT SUM(balance) FROM accounts))";
const FACTS_PG: &str = "SELECT (SELECT count(*) FROM {s}.history) || '|' || (SELECT COALESCE(sum(delta), 0) FROM {s}.history) || '|' || (SELECT sum(balance) FROM {s}.accounts)";

/// Polls `target` until its facts are `want`; the time it took.
fn wait_same(target: &str, schema: &str, want: &str, limit: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if psql(target, &FACTS_PG.replace("{s}", schema)).is_ok_and(|got| got == want) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("the target did not reach the source's rows within {}s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Peak RSS of a running process, in MiB.
fn peak_rss(child: &Child) -> f64 {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak RSS of the processes whose command line contains `pattern`, in MiB.
fn peak_rss_of(pattern: &str) -> f64 {
    let Ok(out) = Command::new("pgrep").args(["-f", pattern]).output() else { return 0.0 };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .fold(0.0, f64::max)
        / 1024.0
}

/// Runs the MySQL-source replicator benchmark.
pub fn replicator(root: &Path, bed: &Testbed) -> anyhow::Result<()> {
    println!("==> building molt and replicator (release)");
    build_release(root, "molt")?;
    build_release(root, "molt-replicator")?;
    let (molt, repl) = (root.join("target/release/molt"), root.join("target/release/replicator"));
    let src = bed.mariadb_url(DB);
    let admin = bed.pg_target_url("postgres");
    let ours = bed.pg_target_url("molt_bench_myrepl_ours");
    let cham = bed.pg_target_url("molt_bench_my_cham");

    println!("==> preparing the MariaDB source (100k accounts) and both targets");
    let _ = chameleon(&["stop_replica", "--source", "mysql"]).output();
    mariadb(
        bed,
        "mysql",
        &format!("DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB} CHARACTER SET utf8mb4"),
    )?;
    mariadb(bed, DB, DDL)?;
    recreate_target(&admin, "molt_bench_myrepl_ours")?;
    std::fs::create_dir_all(root.join("target/bench"))?;
    let log = root.join("target/bench/replicator-mysql-fetch.log");
    // fetch appends to its log: an earlier run's cursor must not be read.
    let _ = std::fs::remove_file(&log);
    let out = Command::new(&molt)
        .args([
            "fetch",
            "--source",
            &src,
            "--target",
            &ours,
            "--direct-copy",
            "--allow-tls-mode-disable",
        ])
        .args([
            "--table-handling",
            "drop-on-target-and-recreate",
            "--metrics-listen-addr",
            "",
            "--log-file",
        ])
        .arg(&log)
        .output()?;
    if !out.status.success() {
        bail!("molt fetch failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(&log)?;
    let cursor = text
        .lines()
        .filter(|l| l.contains("\"fetch complete\""))
        .find_map(|l| l.split("\"cdc_cursor\":\"").nth(1).and_then(|r| r.split('"').next()))
        .context("fetch printed no cdc_cursor")?
        .to_owned();
    println!("    molt fetch loaded the snapshot; cdc_cursor {cursor}");
    prepare_chameleon(bed, &admin, "molt_bench_my_cham", DB)?;
    let out = chameleon(&["init_replica", "--source", "mysql", "--debug"]).output()?;
    if !out.status.success() {
        bail!("pg_chameleon init_replica: {}", String::from_utf8_lossy(&out.stdout));
    }
    println!("    pg_chameleon init_replica loaded the snapshot");

    println!("==> backlog: {TXNS} transactions (2 row changes each) with both replicators stopped");
    mariadb(bed, DB, &format!("CALL workload({TXNS})"))?;
    let want = mariadb(bed, DB, FACTS_MY)?;
    let changes = 2 * TXNS;

    let mut child = Command::new(&repl)
        .args(["mylogical", "--sourceConn", &src, "--targetConn", &ours])
        .args(["--targetSchema", "molt_bench_myrepl_ours.public", "--defaultGTIDSet", &cursor])
        .args([
            "--stagingSchema",
            "_replicator.public",
            "--stagingCreateSchema",
            "--metricsAddr",
            "127.0.0.1:30098",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let ours_t = wait_same(&ours, "public", &want, Duration::from_secs(600));
    let ours_rss = peak_rss(&child);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let ours_t = ours_t?;
    println!(
        "    replicator mylogical drained in {:.2}s (peak RSS {ours_rss:.0} MiB)",
        ours_t.as_secs_f64()
    );

    let out = chameleon(&["start_replica", "--source", "mysql"]).output()?;
    if !out.status.success() {
        bail!("pg_chameleon start_replica: {}", String::from_utf8_lossy(&out.stdout));
    }
    let cham_t = wait_same(&cham, DB, &want, Duration::from_secs(900));
    let cham_rss = peak_rss_of("chameleon");
    let _ = chameleon(&["stop_replica", "--source", "mysql"]).output();
    let cham_line = match &cham_t {
        Ok(t) => {
            println!(
                "    pg_chameleon start_replica drained in {:.2}s (peak RSS {cham_rss:.0} MiB)",
                t.as_secs_f64()
            );
            Some(*t)
        }
        Err(e) => {
            println!("    pg_chameleon did not drain: {e:#}");
            None
        }
    };
    let our_rate = changes as f64 / ours_t.as_secs_f64();
    println!("\nvariant                       drain rows/s  peak_RSS_MiB");
    println!("replicator mylogical          {our_rate:>12.0}  {ours_rss:>12.0}");
    let mut json = format!(
        "\"row_changes\":{changes},\"mylogical_drain_rows_per_s\":{our_rate:.0},\"mylogical_peak_rss_mib\":{ours_rss:.0}"
    );
    if let Some(t) = cham_line {
        let rate = changes as f64 / t.as_secs_f64();
        println!("pg_chameleon start_replica    {rate:>12.0}  {cham_rss:>12.0}");
        println!("\nmylogical drain vs pg_chameleon: {:.2}x (target >= 10x)", our_rate / rate);
        json.push_str(&format!(
            ",\"pg_chameleon_drain_rows_per_s\":{rate:.0},\"ratio_vs_pg_chameleon\":{:.3}",
            our_rate / rate
        ));
    }
    std::fs::write(root.join("target/bench/replicator-mysql.json"), format!("{{{json}}}\n"))?;
    Ok(())
}
