//! A whole delta migration on the local test bed, as a user would run it: a source with data
//! and an application writing to it, `fetch` with a replication slot, `replicator pglogical`
//! from the printed cursor, a live `verify` while writes continue, then the cutover: stop the
//! writes, wait for the drain, verify clean, and measure the downtime (writes stopped → target
//! verified). `cargo xtask demo` prints it; `tests/main.rs` runs the same flow. From MariaDB
//! (`cargo xtask demo --source mysql`), [`delta_migration_mysql`] runs it with
//! `replicator mylogical`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser as _;
use molt_testkit::Testbed;
use sqlx::{Connection as _, PgConnection};

mod mysql;

pub use mysql::{DEMO_SCHEMA_MYSQL, delta_migration_mysql};

/// The demo's source schema and data.
pub const DEMO_SCHEMA: &str = r#"
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE employees (
    id int8 PRIMARY KEY, name text NOT NULL, email varchar(120), hired date, salary numeric(12,2),
    rating float8, active boolean, profile jsonb, tags text[], photo bytea);
CREATE TABLE orders (
    id uuid PRIMARY KEY, employee_id int8 REFERENCES employees (id), status order_status NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT now(), total numeric(20,6), note text);
INSERT INTO employees
SELECT g, 'employee ' || g, 'e' || g || '@example.com', date '2020-01-01' + g % 1000, (g * 13.37)::numeric(12,2),
       CASE WHEN g % 97 = 0 THEN 'NaN'::float8 ELSE g / 7.0 END, g % 2 = 0,
       jsonb_build_object('level', g % 5), ARRAY['a' || g % 3, 'b'], decode(md5(g::text), 'hex')
FROM generate_series(1, 10000) g;
INSERT INTO orders
SELECT md5(g::text)::uuid, 1 + g % 10000, (ARRAY['new','paid','shipped']::order_status[])[1 + g % 3],
       now() - g * interval '1 minute', g * 1.000001, CASE WHEN g % 10 = 0 THEN NULL ELSE 'note, "quoted"' END
FROM generate_series(1, 30000) g;
"#;

/// One application transaction: a new order, a raise, a status change, a cancelled order.
const APP_TXN: &str = "BEGIN; \
    INSERT INTO orders (id, employee_id, status, total, note) VALUES (gen_random_uuid(), 1 + (random() * 9999)::int8, 'new', random() * 100, 'app'); \
    UPDATE employees SET salary = salary + 1 WHERE id = 1 + (random() * 9999)::int8; \
    UPDATE orders SET status = 'paid' WHERE id = (SELECT id FROM orders WHERE status = 'new' LIMIT 1); \
    DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE note IS NULL LIMIT 1); \
    COMMIT";

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Rows loaded by fetch.
    pub fetched_rows: u64,
    /// Where replication started.
    pub cdc_cursor: String,
    /// Application transactions committed during the migration.
    pub app_transactions: u64,
    /// Whether the live verify (during writes) found nothing left over.
    pub live_verify_clean: bool,
    /// Rows compared by the final verify.
    pub verified_rows: u64,
    /// Writes stopped → target verified identical.
    pub downtime: Duration,
}

async fn exec(url: &str, sql: &str) -> anyhow::Result<()> {
    let mut c = PgConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await?;
    Ok(())
}

/// `fetch --direct-copy --table-handling drop-on-target-and-recreate` from `src` to `dst`, with
/// `extra` flags.
pub(crate) async fn fetch(
    src: &str,
    dst: &str,
    extra: &[&str],
) -> anyhow::Result<molt_fetch::FetchSummary> {
    let mut argv = vec![
        "fetch",
        "--source",
        src,
        "--target",
        dst,
        "--allow-tls-mode-disable",
        "--direct-copy",
        "--table-handling",
        "drop-on-target-and-recreate",
        "--metrics-listen-addr",
        "",
    ];
    argv.extend_from_slice(extra);
    let args = molt_fetch::FetchArgs::try_parse_from(argv)?;
    molt_fetch::run(molt_fetch::Config::from_args(&args)?).await
}

/// `verify` of `src` against `dst` with `extra` flags.
pub(crate) async fn verify(
    src: &str,
    dst: &str,
    extra: &[&str],
) -> anyhow::Result<molt_verify::Report> {
    let mut argv = vec![
        "verify",
        "--source",
        src,
        "--target",
        dst,
        "--allow-tls-mode-disable",
        "--metrics-listen-addr",
        "",
    ];
    argv.extend_from_slice(extra);
    molt_verify::run_args(molt_verify::VerifyArgs::try_parse_from(argv)?).await
}

/// `verify --live` while the application writes, saying what it found.
pub(crate) async fn live_verify(
    src: &str,
    dst: &str,
    say: &impl Fn(&str),
) -> anyhow::Result<molt_verify::Report> {
    let live = verify(src, dst, &["--live"]).await?;
    let lt = live.totals();
    say(&format!(
        "  live verify: {} rows, {} re-checked, {} still different while writes run",
        lt.truth_rows,
        lt.live_retry,
        lt.missing + lt.mismatch + lt.extraneous
    ));
    Ok(live)
}

/// Runs the whole delta migration on fresh databases of `bed`; `say` prints progress.
///
/// # Errors
/// Any step that fails, or a final verify that is not clean.
pub async fn delta_migration(bed: &Testbed, say: impl Fn(&str)) -> anyhow::Result<DemoReport> {
    let src = bed.fresh_pg_source().await;
    let dst = bed.fresh_pg_target().await;
    exec(&src.url, DEMO_SCHEMA).await.context("creating the demo source")?;
    say("created the source: employees (10,000 rows), orders (30,000 rows)");

    // The application keeps writing from now until the cutover.
    let stop_app = Arc::new(AtomicBool::new(false));
    let app_txns = Arc::new(AtomicU64::new(0));
    let app = {
        let (url, stop, n) = (src.url.clone(), Arc::clone(&stop_app), Arc::clone(&app_txns));
        tokio::spawn(async move {
            let mut c = PgConnection::connect(&url).await?;
            while !stop.load(Ordering::Relaxed) {
                sqlx::raw_sql(APP_TXN).execute(&mut c).await?;
                n.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        })
    };

    let slot = format!("molt_demo_{}", src.name);
    say(&format!(
        "molt fetch --direct-copy --table-handling drop-on-target-and-recreate --pglogical-replication-slot-name {slot} (while the application writes)"
    ));
    let summary = fetch(
        &src.url,
        &dst.url,
        &[
            "--pglogical-replication-slot-name",
            &slot,
            "--pglogical-publication-and-slot-drop-and-recreate",
        ],
    )
    .await?;
    let fetched_rows = summary.rows.iter().sum();
    say(&format!("  loaded {fetched_rows} rows; cdc_cursor {}", summary.cdc_cursor));

    say(
        "replicator pglogical --slotName … --publicationName molt_fetch --stagingSchema _replicator.public --stagingCreateSchema",
    );
    let repl = molt_replicator::ReplicatorArgs::try_parse_from([
        "replicator",
        "pglogical",
        "--sourceConn",
        &src.url,
        "--targetConn",
        &dst.url,
        "--targetSchema",
        &format!("{}.public", dst.name),
        "--slotName",
        &slot,
        "--publicationName",
        "molt_fetch",
        "--stagingSchema",
        "_replicator.public",
        "--stagingCreateSchema",
    ])?;
    let molt_replicator::Command::Pglogical(p) = repl.command else { bail!("pglogical") };
    let (stop_repl, stop_rx) = tokio::sync::watch::channel(false);
    let replicator = tokio::spawn(molt_replicator::pglogical::run(
        molt_replicator::pglogical_config(&p)?,
        stop_rx,
    ));

    say(
        "molt verify --live (writes continue; rows replication has not applied yet are re-checked)",
    );
    let live = live_verify(&src.url, &dst.url, &say).await?;

    // Cutover: stop the writes, wait for the drain, verify.
    stop_app.store(true, Ordering::Relaxed);
    app.await.context("the application task")??;
    let cutover = Instant::now();
    let app_transactions = app_txns.load(Ordering::Relaxed);
    say(&format!(
        "cutover: the application stopped after {app_transactions} transactions; waiting for the drain"
    ));
    // A synchronous commit that writes WAL flushes every asynchronous commit before it; the
    // flushed position is then at or after the application's last commit.
    exec(&src.url, molt_testkit::sql::FLUSH_WAL_SQL).await?;
    let end: String = {
        let mut c = PgConnection::connect(&src.url).await?;
        sqlx::query_scalar("SELECT pg_current_wal_flush_lsn()::text").fetch_one(&mut c).await?
    };
    let mut c = PgConnection::connect(&src.url).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if replicator.is_finished() {
            bail!("the replicator stopped during the drain");
        }
        let drained: bool = sqlx::query_scalar(
            "SELECT COALESCE(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&slot)
        .bind(&end)
        .fetch_one(&mut c)
        .await?;
        if drained {
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
    sqlx::query("SELECT pg_drop_replication_slot($1)").bind(&slot).execute(&mut c).await?;
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
