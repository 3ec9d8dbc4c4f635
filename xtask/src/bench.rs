//! `cargo xtask bench fetch`: the same generated data set (1M rows, four tables, most common
//! types, one composite key) loaded in one run by `molt fetch --direct-copy`, by the raw
//! `psql COPY … TO STDOUT | psql COPY … FROM STDIN` pipe (four tables at once, the practical
//! limit), and by `pgcopydb copy table-data`, into pre-created tables with their primary keys.
//! Prints medians and ratios; writes `target/bench/fetch.json`. Timings are never asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use molt_testkit::Testbed;

const DATASET_DDL: &str = r#"
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE TABLE employees (id int8 PRIMARY KEY, name text NOT NULL, email varchar(120), hired date,
    salary numeric(12,2), rating float8, active bool, profile jsonb, tags text[], photo bytea);
CREATE TABLE payments (id int8 PRIMARY KEY, employee_id int8, amount numeric(20,6),
    paid_at timestamptz, ref uuid, note text);
CREATE TABLE orders (id uuid PRIMARY KEY, employee_id int8, status order_status, placed_at timestamp(6),
    total numeric(20,6), note text);
CREATE TABLE order_items (order_no int8, line int4, sku text, qty int4, price numeric(12,2),
    PRIMARY KEY (order_no, line));
"#;

const DATASET_ROWS: &str = r#"
INSERT INTO employees SELECT g, 'employee ' || g || ' "q", comma', 'e' || g || '@example.com',
    date '2000-01-01' + g % 9000, (g * 13.37)::numeric(12,2),
    CASE WHEN g % 997 = 0 THEN 'NaN'::float8 ELSE g / 7.0 END, g % 3 = 0,
    jsonb_build_object('level', g % 5, 'tags', jsonb_build_array('a', g)), ARRAY['t' || g % 7, 'u'],
    decode(md5(g::text), 'hex') FROM generate_series(1, 100000) g;
INSERT INTO payments SELECT g, 1 + g % 100000, g * 1.000001, timestamptz '2020-01-01' + g * interval '1 second',
    md5(g::text)::uuid, CASE WHEN g % 10 = 0 THEN NULL ELSE 'payment note ' || g END
    FROM generate_series(1, 300000) g;
INSERT INTO orders SELECT md5('o' || g)::uuid, 1 + g % 100000,
    (ARRAY['new', 'paid', 'shipped', 'cancelled']::order_status[])[1 + g % 4],
    timestamp '2021-06-01' + g * interval '1 minute', g * 3.5, repeat('n', g % 40)
    FROM generate_series(1, 200000) g;
INSERT INTO order_items SELECT 1 + g / 4, g % 4, 'sku-' || g % 5000, 1 + g % 9, (g % 1000) * 0.25
    FROM generate_series(0, 399999) g;
ANALYZE;
"#;

const TABLES: [&str; 4] = ["employees", "payments", "orders", "order_items"];
const TOTAL_ROWS: u64 = 1_000_000;
const RUNS: usize = 3;

pub(crate) fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args([url, "-X", "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql])
        .output()
        .context("running psql (install postgresql-client)")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub(crate) fn ensure_tool(binary: &str, package: &str) -> anyhow::Result<()> {
    if Command::new("sh")
        .args(["-c", &format!("command -v {binary}")])
        .stdout(Stdio::null())
        .status()?
        .success()
    {
        return Ok(());
    }
    println!("==> installing {package}");
    let ok = Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq", package])
        .status()?
        .success();
    if !ok {
        bail!("could not install {package}; run apt-get update and try again");
    }
    Ok(())
}

fn recreate_db(admin: &str, name: &str) -> anyhow::Result<()> {
    psql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    psql(admin, &format!("CREATE DATABASE {name}"))?;
    Ok(())
}

fn time(what: &str, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::new();
    for i in 0..RUNS {
        let start = Instant::now();
        f().with_context(|| format!("{what}, run {}", i + 1))?;
        let d = start.elapsed();
        println!("    {what:<34} run {}: {:.2}s", i + 1, d.as_secs_f64());
        out.push(d);
    }
    Ok(out)
}

pub(crate) fn median(v: &[Duration]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn check_loaded(dst: &str) -> anyhow::Result<()> {
    let n: u64 = psql(
        dst,
        "SELECT (SELECT count(*) FROM employees) + (SELECT count(*) FROM payments) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM order_items)",
    )?
    .parse()?;
    if n != TOTAL_ROWS {
        bail!("the target holds {n} rows, expected {TOTAL_ROWS}");
    }
    Ok(())
}

fn truncate(dst: &str) -> anyhow::Result<()> {
    psql(dst, "TRUNCATE employees, payments, orders, order_items")?;
    psql(dst, "CHECKPOINT")?;
    Ok(())
}

/// `psql COPY … TO STDOUT | psql COPY … FROM STDIN` for each `(from, to)` table pair at once,
/// with COPY `options` (`""`, or `(FORMAT binary)`); waits for all.
pub(crate) fn copy_pipes(
    src: &str,
    dst: &str,
    pairs: &[(String, String)],
    options: &str,
) -> anyhow::Result<()> {
    let children: Vec<_> = pairs
        .iter()
        .map(|(from, to)| {
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "psql '{src}' -X -Atqc 'COPY {from} TO STDOUT {options}' | psql '{dst}' -X -v ON_ERROR_STOP=1 -qc 'COPY {to} FROM STDIN {options}'"
                ))
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut c in children {
        if !c.wait()?.success() {
            bail!("a psql COPY pipe failed");
        }
    }
    Ok(())
}

/// Builds one package with the release profile (benchmarks measure optimised code).
pub(crate) fn build_release(root: &Path, package: &str) -> anyhow::Result<()> {
    let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["build", "--release", "-q", "-p", package])
        .status()?
        .success();
    if !ok {
        bail!("cargo build --release -p {package} failed");
    }
    Ok(())
}

/// Runs the fetch benchmark.
pub fn fetch(root: &Path, bed: &Testbed) -> anyhow::Result<()> {
    ensure_tool("pgcopydb", "pgcopydb")?;
    println!("==> building molt (release)");
    build_release(root, "molt")?;
    let molt = root.join("target/release/molt");
    let src = bed.pg_source_url("molt_bench_src");
    let dst = bed.pg_target_url("molt_bench_dst");
    let src_admin = bed.pg_source_url("postgres");
    let dst_admin = bed.pg_target_url("postgres");
    let have =
        psql(&src_admin, "SELECT count(*) FROM pg_database WHERE datname = 'molt_bench_src'")?;
    let fresh = have != "1"
        || psql(&src, "SELECT count(*) FROM order_items").map(|n| n != "400000").unwrap_or(true);
    if fresh {
        println!("==> generating the data set (1M rows)");
        recreate_db(&src_admin, "molt_bench_src")?;
        psql(&src, DATASET_DDL)?;
        psql(&src, DATASET_ROWS)?;
    }
    let size = psql(
        &src,
        "SELECT pg_size_pretty(sum(pg_table_size(c.oid))) FROM pg_class c WHERE relname IN ('employees','payments','orders','order_items')",
    )?;
    println!("    source: {TOTAL_ROWS} rows, {size} of table data");
    recreate_db(&dst_admin, "molt_bench_dst")?;
    psql(&dst, DATASET_DDL)?;

    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir)?;
    let pipe = time("psql COPY | COPY (4 tables at once)", || {
        truncate(&dst)?;
        let pairs: Vec<(String, String)> =
            TABLES.iter().map(|t| ((*t).to_owned(), (*t).to_owned())).collect();
        copy_pipes(&src, &dst, &pairs, "")?;
        check_loaded(&dst)
    })?;
    let work = std::env::temp_dir().join("molt-bench-pgcopydb");
    let pgcopydb = time("pgcopydb copy table-data --table-jobs 4", || {
        truncate(&dst)?;
        let _ = std::fs::remove_dir_all(&work);
        let out = Command::new("pgcopydb")
            .args(["copy", "table-data", "--source", &src, "--target", &dst, "--table-jobs", "4"])
            .arg("--dir")
            .arg(&work)
            .output()?;
        if !out.status.success() {
            bail!("pgcopydb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        check_loaded(&dst)
    })?;
    let log: PathBuf = bench_dir.join("fetch.log");
    let fetch = time("molt fetch --direct-copy", || {
        truncate(&dst)?;
        let out = Command::new(&molt)
            .args([
                "fetch",
                "--source",
                &src,
                "--target",
                &dst,
                "--direct-copy",
                "--allow-tls-mode-disable",
            ])
            .args(["--table-handling", "truncate-if-exists", "--ignore-replication-check"])
            .args(["--metrics-listen-addr", "", "--log-file"])
            .arg(&log)
            .output()?;
        if !out.status.success() {
            bail!("molt fetch failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        check_loaded(&dst)
    })?;
    let (p, g, f) = (median(&pipe), median(&pgcopydb), median(&fetch));
    println!("\nvariant                               median_s    rows/s");
    for (name, t) in [
        ("psql COPY | COPY (parallel)", p),
        ("pgcopydb copy table-data", g),
        ("molt fetch --direct-copy", f),
    ] {
        println!("{name:<36} {t:>9.2} {:>9.0}", TOTAL_ROWS as f64 / t);
    }
    println!("\nfetch throughput vs raw pipe: {:.2}x   (target >= 0.95x)", p / f);
    println!("fetch throughput vs pgcopydb: {:.2}x   (target >= 1.30x)", g / f);
    let report = format!(
        "{{\"rows\":{TOTAL_ROWS},\"runs\":{RUNS},\"median_s\":{{\"pipe\":{p:.3},\"pgcopydb\":{g:.3},\"fetch_direct\":{f:.3}}},\"ratio_vs_pipe\":{:.3},\"ratio_vs_pgcopydb\":{:.3}}}\n",
        p / f,
        g / f
    );
    std::fs::write(bench_dir.join("fetch.json"), report)?;
    Ok(())
}

/// Columns reladiff compares per table (its float8 hashing dies on NaN, so `rating` is left
/// out for it; verify compares every column).
const RELADIFF_TABLES: [(&str, &[&str], &[&str]); 4] = [
    (
        "employees",
        &["id"],
        &["name", "email", "hired", "salary", "active", "profile", "tags", "photo"],
    ),
    ("payments", &["id"], &["employee_id", "amount", "paid_at", "ref", "note"]),
    ("orders", &["id"], &["employee_id", "status", "placed_at", "total", "note"]),
    ("order_items", &["order_no", "line"], &["sku", "qty", "price"]),
];

const INJECTED_DIFFS: &str = "UPDATE employees SET name = 'changed' WHERE id = 50000; \
    UPDATE payments SET amount = amount + 0.000001 WHERE id = 1234; \
    UPDATE orders SET note = 'edited' WHERE id = md5('o77')::uuid; \
    UPDATE order_items SET qty = qty + 1 WHERE order_no = 5000 AND line = 2; \
    DELETE FROM payments WHERE id IN (7, 150000); DELETE FROM employees WHERE id = 99999; \
    INSERT INTO employees (id, name) VALUES (100001, 'new'); \
    INSERT INTO payments (id) VALUES (300001); INSERT INTO order_items VALUES (999999, 1, 'x', 1, 1);";

fn ensure_reladiff() -> anyhow::Result<()> {
    if Command::new("reladiff").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    println!("==> installing reladiff from PyPI");
    let ok = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "reladiff", "psycopg2-binary"])
        .status()?
        .success();
    if !ok {
        bail!("pip install reladiff psycopg2-binary failed");
    }
    Ok(())
}

/// reladiff spells the scheme `postgresql://` (it exits 0 on `postgres://`, printing nothing).
fn reladiff_url(url: &str) -> String {
    let url = url.replacen("postgres://", "postgresql://", 1);
    url.split('?').next().unwrap_or_default().to_owned()
}

fn reladiff_all(src: &str, dst: &str) -> anyhow::Result<u64> {
    let (src, dst) = (reladiff_url(src), reladiff_url(dst));
    let (src, dst) = (src.as_str(), dst.as_str());
    let mut diffs = 0u64;
    for (table, keys, cols) in RELADIFF_TABLES {
        let mut cmd = Command::new("reladiff");
        cmd.args([src, table, dst, table, "-s", "--json"]);
        for k in keys {
            cmd.args(["-k", k]);
        }
        for c in cols {
            cmd.args(["-c", c]);
        }
        let out = cmd.output()?;
        if !out.status.success() {
            bail!("reladiff {table}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(text.trim()).with_context(|| {
            format!(
                "reladiff printed {text:?}; its errors: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        diffs += n("exclusive_A") + n("exclusive_B") + n("updated");
    }
    Ok(diffs)
}

fn verify_all(molt: &Path, src: &str, dst: &str, log: &Path) -> anyhow::Result<u64> {
    let _ = std::fs::remove_file(log);
    let out = Command::new(molt)
        .args(["verify", "--source", src, "--target", dst, "--allow-tls-mode-disable"])
        .args([
            "--table-splits",
            "4",
            "--concurrency",
            "8",
            "--metrics-listen-addr",
            "",
            "--log-file",
        ])
        .arg(log)
        .output()?;
    let code = out.status.code().unwrap_or(-1);
    if code != 0 && code != 3 {
        bail!("molt verify failed ({code}): {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut diffs = 0u64;
    for line in std::fs::read_to_string(log)?.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v.get("type").and_then(|t| t.as_str()) == Some("summary") {
            for k in ["num_missing", "num_mismatch", "num_extraneous"] {
                diffs += v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            }
        }
    }
    Ok(diffs)
}

/// `cargo xtask bench verify`: verify and reladiff on the same 1M rows, identical and with 10
/// injected differences, in one run.
pub fn verify(root: &Path, bed: &Testbed) -> anyhow::Result<()> {
    ensure_reladiff()?;
    build_release(root, "molt")?;
    let molt = root.join("target/release/molt");
    let src_admin = bed.pg_source_url("postgres");
    let dst_admin = bed.pg_target_url("postgres");
    let src = bed.pg_source_url("molt_bench_src");
    let dst = bed.pg_target_url("molt_bench_verify");
    for (admin, url, name) in
        [(&src_admin, &src, "molt_bench_src"), (&dst_admin, &dst, "molt_bench_verify")]
    {
        println!("==> generating {name} (1M rows)");
        recreate_db(admin, name)?;
        psql(url, DATASET_DDL)?;
        psql(url, DATASET_ROWS)?;
    }
    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir)?;
    let log = bench_dir.join("verify.log");
    let mut found = Vec::new();
    let mut results = Vec::new();
    for phase in ["identical", "10-diffs"] {
        if phase == "10-diffs" {
            psql(&dst, INJECTED_DIFFS)?;
        }
        let mut r_found = 0;
        let r = time(&format!("reladiff ({phase})"), || {
            r_found = reladiff_all(&src, &dst)?;
            Ok(())
        })?;
        let mut v_found = 0;
        let v = time(&format!("molt verify ({phase})"), || {
            v_found = verify_all(&molt, &src, &dst, &log)?;
            Ok(())
        })?;
        found.push((phase, r_found, v_found));
        results.push((phase, median(&r), median(&v)));
    }
    println!("\nphase        reladiff_s  verify_s   ratio   diffs(reladiff/verify)");
    for ((phase, r, v), (_, rf, vf)) in results.iter().zip(&found) {
        println!("{phase:<12} {r:>10.2} {v:>9.2} {:>6.2}x   {rf}/{vf}", r / v);
    }
    println!("(ratio = reladiff time / verify time; target >= 3x, every difference found: 10)");
    let json: Vec<String> = results
        .iter()
        .zip(&found)
        .map(|((p, r, v), (_, rf, vf))| {
            format!("{{\"phase\":\"{p}\",\"reladiff_s\":{r:.3},\"verify_s\":{v:.3},\"ratio\":{:.3},\"reladiff_diffs\":{rf},\"verify_diffs\":{vf}}}", r / v)
        })
        .collect();
    std::fs::write(bench_dir.join("verify.json"), format!("[{}]\n", json.join(",")))?;
    Ok(())
}

const REPL_DDL: &str = "CREATE TABLE accounts (id int8 PRIMARY KEY, balance int8 NOT NULL, filler text); \
    CREATE TABLE history (id bigserial PRIMARY KEY, account int8 NOT NULL, delta int8 NOT NULL, created_at timestamptz NOT NULL);";
const REPL_ROWS: &str =
    "INSERT INTO accounts SELECT g, 0, repeat('x', 80) FROM generate_series(1, 100000) g;";
/// Target-side lag probe: the time each history row lands, set by a trigger that fires for
/// the native apply worker too (ENABLE ALWAYS).
const LAG_PROBE: &str = "ALTER TABLE history ADD COLUMN applied_at timestamptz; \
    CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.applied_at := clock_timestamp(); RETURN NEW; END $$; \
    CREATE TRIGGER stamp BEFORE INSERT ON history FOR EACH ROW EXECUTE FUNCTION stamp(); \
    ALTER TABLE history ENABLE ALWAYS TRIGGER stamp;";
/// One pgbench transaction: an update, an insert, a delete (3 row changes at most).
const PGBENCH_SCRIPT: &str = "\\set aid random(1, 100000)\n\\set delta random(-5000, 5000)\nBEGIN;\n\
UPDATE accounts SET balance = balance + :delta WHERE id = :aid;\n\
INSERT INTO history (account, delta, created_at) VALUES (:aid, :delta, clock_timestamp());\n\
DELETE FROM history WHERE id = (SELECT min(id) FROM history WHERE account = :aid AND id < currval('history_id_seq') - 1000);\n\
END;\n";

fn pgbench(url: &str, script: &Path, args: &[&str]) -> anyhow::Result<()> {
    let bin = molt_pg_bin("pgbench");
    let out = Command::new(&bin)
        .args(["-n", "-M", "prepared", "-f"])
        .arg(script)
        .args(args)
        .arg(url)
        .output()?;
    if !out.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn molt_pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop().unwrap_or_else(|| PathBuf::from(name))
}

fn wait_slot(src: &str, slot: &str, lsn: &str, limit: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let done = psql(
            src,
            &format!(
                "SELECT confirmed_flush_lsn >= '{lsn}' FROM pg_replication_slots WHERE slot_name = '{slot}'"
            ),
        )?;
        if done == "t" {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("slot {slot} did not reach {lsn} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn end_lsn(src: &str) -> anyhow::Result<String> {
    psql(src, &format!("{};", molt_testkit::sql::FLUSH_WAL_SQL))?;
    psql(src, "SELECT pg_current_wal_flush_lsn()")
}

fn lag_percentiles(dst: &str, since: &str) -> anyhow::Result<(f64, f64)> {
    let out = psql(
        dst,
        &format!(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM applied_at - created_at)), \
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM applied_at - created_at)) \
                  FROM history WHERE created_at > '{since}' AND applied_at IS NOT NULL"
        ),
    )?;
    let mut parts = out.split('|');
    let p = |s: Option<&str>| s.and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    Ok((p(parts.next()), p(parts.next())))
}

/// `cargo xtask bench replicator`: the same pgbench-style workload through native logical
/// replication (publication → subscription) and through `replicator pglogical`, in one run:
/// backlog drain throughput, then p50/p99 lag at a fixed rate.
pub fn replicator(root: &Path, bed: &Testbed) -> anyhow::Result<()> {
    build_release(root, "molt-replicator")?;
    let bin = root.join("target/release/replicator");
    let (src_admin, dst_admin) = (bed.pg_source_url("postgres"), bed.pg_target_url("postgres"));
    let src = bed.pg_source_url("molt_bench_repl_src");
    let native = bed.pg_target_url("molt_bench_native");
    let ours = bed.pg_target_url("molt_bench_ours");
    // Leftovers of an earlier run: the subscription (and its slot) first.
    let _ = psql(
        &native,
        "ALTER SUBSCRIPTION molt_bench_sub DISABLE; ALTER SUBSCRIPTION molt_bench_sub SET (slot_name = NONE); DROP SUBSCRIPTION molt_bench_sub;",
    );
    for slot in ["molt_bench_native", "molt_bench_ours"] {
        let _ = psql(
            &src_admin,
            &format!(
                "SELECT pg_drop_replication_slot('{slot}') FROM pg_replication_slots WHERE slot_name = '{slot}'"
            ),
        );
    }
    println!("==> preparing source and two targets (100k accounts)");
    recreate_db(&src_admin, "molt_bench_repl_src")?;
    recreate_db(&dst_admin, "molt_bench_native")?;
    recreate_db(&dst_admin, "molt_bench_ours")?;
    for url in [&src, &native, &ours] {
        psql(url, REPL_DDL)?;
        psql(url, REPL_ROWS)?;
    }
    psql(&native, LAG_PROBE)?;
    psql(&ours, LAG_PROBE)?;
    psql(&src, "CREATE PUBLICATION molt_bench_pub FOR TABLE accounts, history")?;
    psql(&src, "SELECT pg_create_logical_replication_slot('molt_bench_ours', 'pgoutput')")?;
    let src_conninfo = format!(
        "host=127.0.0.1 port={} dbname=molt_bench_repl_src user={} password={}",
        bed.pg_source.port,
        molt_testkit::TEST_USER,
        molt_testkit::TEST_PASSWORD
    );
    psql(
        &native,
        &format!(
            "CREATE SUBSCRIPTION molt_bench_sub CONNECTION '{src_conninfo}' PUBLICATION molt_bench_pub \
         WITH (copy_data = false, enabled = false, slot_name = 'molt_bench_native', create_slot = true)"
        ),
    )?;
    let script = std::env::temp_dir().join("molt-bench-pgbench.sql");
    std::fs::write(&script, PGBENCH_SCRIPT)?;
    let txns = 40_000u64;
    println!("==> backlog: {txns} pgbench transactions with both consumers stopped");
    pgbench(&src, &script, &["-c", "4", "-j", "2", "-t", &(txns / 4).to_string()])?;
    let changes: u64 = psql(&src, "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = 'history'")?.parse::<u64>()?
        + psql(&src, "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'accounts'")?.parse::<u64>()?;
    let end = end_lsn(&src)?;
    println!("    {changes} row changes, WAL end {end}");
    psql(&native, "ALTER SUBSCRIPTION molt_bench_sub ENABLE")?;
    let native_drain = wait_slot(&src, "molt_bench_native", &end, Duration::from_secs(600))?;
    println!("    native logical replication drained in {:.2}s", native_drain.as_secs_f64());
    std::fs::create_dir_all(root.join("target/bench"))?;
    let stage = "molt_bench_ours._replicator";
    let mut child = Command::new(&bin)
        .args([
            "pglogical",
            "--sourceConn",
            &src,
            "--targetConn",
            &ours,
            "--targetSchema",
            "molt_bench_ours.public",
        ])
        .args([
            "--slotName",
            "molt_bench_ours",
            "--publicationName",
            "molt_bench_pub",
            "--stagingSchema",
            stage,
        ])
        // Drain time is read off the slot's confirmed position, which moves when status is
        // sent: at the default 5 s interval that would add up to 5 s to a drain of a few
        // seconds (the native apply worker reports as soon as it is idle).
        .args(["--standbyTimeout", "100ms"])
        .args(["--stagingCreateSchema", "--flushSize", "10000", "--logDestination"])
        .arg(root.join("target/bench/replicator.log"))
        .spawn()?;
    let ours_drain = wait_slot(&src, "molt_bench_ours", &end, Duration::from_secs(600))?;
    println!("    replicator pglogical drained in {:.2}s", ours_drain.as_secs_f64());
    for t in ["accounts", "history"] {
        let a = psql(
            &native,
            &format!(
                "SELECT count(*), sum(hashtext(t::text)) FROM (SELECT id, {} FROM {t}) t",
                if t == "accounts" { "balance" } else { "account, delta" }
            ),
        )?;
        let b = psql(
            &ours,
            &format!(
                "SELECT count(*), sum(hashtext(t::text)) FROM (SELECT id, {} FROM {t}) t",
                if t == "accounts" { "balance" } else { "account, delta" }
            ),
        )?;
        if a != b {
            bail!("{t} differs between the two targets: native {a}, replicator {b}");
        }
    }
    println!("==> fixed rate: 500 transactions/s for 20 s, both consumers live");
    let since = psql(&src, "SELECT clock_timestamp()")?;
    pgbench(&src, &script, &["-c", "4", "-j", "2", "-R", "500", "-T", "20"])?;
    let end = end_lsn(&src)?;
    wait_slot(&src, "molt_bench_native", &end, Duration::from_secs(120))?;
    wait_slot(&src, "molt_bench_ours", &end, Duration::from_secs(120))?;
    let (np50, np99) = lag_percentiles(&native, &since)?;
    let (op50, op99) = lag_percentiles(&ours, &since)?;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let _ = psql(
        &native,
        "ALTER SUBSCRIPTION molt_bench_sub DISABLE; ALTER SUBSCRIPTION molt_bench_sub SET (slot_name = NONE); DROP SUBSCRIPTION molt_bench_sub;",
    );
    let _ = psql(
        &src_admin,
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('molt_bench_native', 'molt_bench_ours')",
    );
    let (nr, or) =
        (changes as f64 / native_drain.as_secs_f64(), changes as f64 / ours_drain.as_secs_f64());
    println!("\nvariant                     drain rows/s   lag p50     lag p99");
    println!("native logical replication  {nr:>12.0}   {np50:>7.4}s   {np99:>7.4}s");
    println!("replicator pglogical        {or:>12.0}   {op50:>7.4}s   {op99:>7.4}s");
    println!(
        "\nbacklog throughput vs native: {:.2}x (target >= 2x); p99 lag vs native: {:.2}x (target <= 2x, never above 1 s)",
        or / nr,
        op99 / np99
    );
    std::fs::write(
        root.join("target/bench/replicator.json"),
        format!(
            "{{\"row_changes\":{changes},\"native_drain_rows_per_s\":{nr:.0},\"replicator_drain_rows_per_s\":{or:.0},\"native_lag_p50_s\":{np50:.4},\"native_lag_p99_s\":{np99:.4},\"replicator_lag_p50_s\":{op50:.4},\"replicator_lag_p99_s\":{op99:.4}}}\n"
        ),
    )?;
    Ok(())
}
