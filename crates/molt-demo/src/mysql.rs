//! The delta migration from MariaDB: `fetch` from one consistent snapshot printing the GTID
//! cursor, `replicator mylogical` from it, a live `verify` while the application writes, then
//! the cutover: stop the writes, wait until the replicator's saved position covers the
//! source's last GTID, verify clean, and measure the downtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser as _;
use molt_cursor::MariadbGtidList;
use molt_replicator::mylogical::{GtidPosition, Gtids};
use molt_testkit::Testbed;
use mysql_async::prelude::Queryable as _;
use sqlx::{Connection as _, PgConnection};

use crate::{DemoReport, fetch, live_verify, verify};

/// The demo's MariaDB schema and data.
pub const DEMO_SCHEMA_MYSQL: &str = "
CREATE TABLE employees (
    id BIGINT PRIMARY KEY, name VARCHAR(120) NOT NULL, email VARCHAR(120), hired DATE,
    salary DECIMAL(12,2), rating DOUBLE, active BOOL, profile JSON, photo BLOB);
CREATE TABLE orders (
    id CHAR(36) PRIMARY KEY, employee_id BIGINT NOT NULL, status ENUM('new', 'paid', 'shipped') NOT NULL,
    placed_at DATETIME(6) NOT NULL, total DECIMAL(20,6), note TEXT);
INSERT INTO employees
SELECT seq, CONCAT('employee ', seq, IF(seq % 100 = 0, ' 😀', '')), CONCAT('e', seq, '@example.com'),
       DATE_ADD('2020-01-01', INTERVAL seq % 1000 DAY), seq * 13.37, seq / 7, seq % 2 = 0,
       JSON_OBJECT('level', seq % 5), UNHEX(MD5(seq))
FROM seq_1_to_10000;
INSERT INTO orders
SELECT CONCAT(LEFT(MD5(seq), 8), '-', MID(MD5(seq), 9, 4), '-', MID(MD5(seq), 13, 4), '-', MID(MD5(seq), 17, 4), '-', RIGHT(MD5(seq), 12)),
       1 + seq % 10000, ELT(1 + seq % 3, 'new', 'paid', 'shipped'), DATE_SUB('2026-01-01', INTERVAL seq MINUTE),
       seq * 1.000001, IF(seq % 10 = 0, NULL, 'note, \"quoted\"')
FROM seq_1_to_30000;
";

/// One application transaction: a new order, a raise, a status change, a cancelled order.
const APP_TXN: &str = "START TRANSACTION;
    INSERT INTO orders VALUES (UUID(), 1 + FLOOR(RAND() * 9999), 'new', NOW(6), RAND() * 100, 'app');
    UPDATE employees SET salary = salary + 1 WHERE id = 1 + FLOOR(RAND() * 9999);
    UPDATE orders SET status = 'paid' WHERE status = 'new' LIMIT 1;
    DELETE FROM orders WHERE note IS NULL LIMIT 1;
    COMMIT";

async fn source_position(url: &str) -> anyhow::Result<MariadbGtidList> {
    let mut c = mysql_async::Conn::from_url(url).await?;
    let pos: Option<String> = c.query_first("SELECT @@GLOBAL.gtid_binlog_pos").await?;
    let _ = c.disconnect().await;
    Ok(pos.unwrap_or_default().parse()?)
}

/// The GTIDs the replicator has saved as applied on the target.
async fn applied(c: &mut PgConnection) -> Option<MariadbGtidList> {
    let text: String = sqlx::query_scalar(
        "SELECT convert_from(value, 'UTF8') FROM _replicator.memo WHERE key LIKE 'mylogical-%'",
    )
    .fetch_optional(&mut *c)
    .await
    .ok()
    .flatten()?;
    match text.parse::<GtidPosition>().ok()?.applied {
        Gtids::Mariadb(list) => Some(list),
        Gtids::Mysql(_) => None,
    }
}

/// Runs the whole delta migration from a fresh MariaDB database of `bed`; `say` prints
/// progress.
///
/// # Errors
/// Any step that fails, or a final verify that is not clean.
pub async fn delta_migration_mysql(
    bed: &Testbed,
    say: impl Fn(&str),
) -> anyhow::Result<DemoReport> {
    let src = bed.fresh_mariadb().await;
    let dst = bed.fresh_pg_target().await;
    {
        let mut c = mysql_async::Conn::from_url(src.url.as_str()).await?;
        c.query_drop(DEMO_SCHEMA_MYSQL).await.context("creating the demo source")?;
        let _ = c.disconnect().await;
    }
    say("created the MariaDB source: employees (10,000 rows), orders (30,000 rows)");

    let stop_app = Arc::new(AtomicBool::new(false));
    let app_txns = Arc::new(AtomicU64::new(0));
    let app = {
        let (url, stop, n) = (src.url.clone(), Arc::clone(&stop_app), Arc::clone(&app_txns));
        tokio::spawn(async move {
            let mut c = mysql_async::Conn::from_url(url.as_str()).await?;
            while !stop.load(Ordering::Relaxed) {
                c.query_drop(APP_TXN).await?;
                n.fetch_add(1, Ordering::Relaxed);
            }
            let _ = c.disconnect().await;
            anyhow::Ok(())
        })
    };

    say(
        "molt fetch --direct-copy --table-handling drop-on-target-and-recreate (one snapshot, while the application writes)",
    );
    let summary = fetch(&src.url, &dst.url, &[]).await?;
    let fetched_rows = summary.rows.iter().sum();
    say(&format!("  loaded {fetched_rows} rows; cdc_cursor {}", summary.cdc_cursor));

    say(&format!(
        "replicator mylogical --defaultGTIDSet {} --stagingSchema _replicator.public --stagingCreateSchema",
        summary.cdc_cursor
    ));
    let repl = molt_replicator::ReplicatorArgs::try_parse_from([
        "replicator",
        "mylogical",
        "--sourceConn",
        &src.url,
        "--targetConn",
        &dst.url,
        "--targetSchema",
        &format!("{}.public", dst.name),
        "--defaultGTIDSet",
        &summary.cdc_cursor,
        "--stagingSchema",
        "_replicator.public",
        "--stagingCreateSchema",
    ])?;
    let molt_replicator::Command::Mylogical(m) = repl.command else { bail!("mylogical") };
    let (stop_repl, stop_rx) = tokio::sync::watch::channel(false);
    let replicator = tokio::spawn(molt_replicator::mylogical::run(
        molt_replicator::mylogical_config(&m)?,
        stop_rx,
    ));

    say("molt verify --live (writes continue; rows not yet replicated are re-checked)");
    let live = live_verify(&src.url, &dst.url, &say).await?;

    stop_app.store(true, Ordering::Relaxed);
    app.await.context("the application task")??;
    let cutover = Instant::now();
    let app_transactions = app_txns.load(Ordering::Relaxed);
    let end = source_position(&src.url).await?;
    say(&format!(
        "cutover: the application stopped after {app_transactions} transactions at GTID {end}; waiting for the drain"
    ));
    let mut c = PgConnection::connect(&dst.url).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if replicator.is_finished() {
            bail!("the replicator stopped during the drain");
        }
        if applied(&mut c).await.is_some_and(|a| a.contains(&end)) {
            break;
        }
        if cutover.elapsed() > Duration::from_secs(120) {
            bail!("replication did not drain within two minutes");
        }
    }
    say("molt verify (final)");
    let report = verify(&src.url, &dst.url, &["--table-splits", "4"]).await?;
    let downtime = cutover.elapsed();
    let t = report.totals();
    stop_repl.send(true).ok();
    replicator.await.context("the replicator task")??;
    if !report.clean() {
        bail!("the final verify found differences: {report:?}");
    }
    say(&format!("  verified {} rows: identical", t.truth_rows));
    Ok(DemoReport {
        fetched_rows,
        cdc_cursor: summary.cdc_cursor,
        app_transactions,
        live_verify_clean: live.clean(),
        verified_rows: t.truth_rows,
        downtime,
    })
}
