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

fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args([url, "-X", "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql])
        .output()
        .context("running psql (install postgresql-client)")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn ensure_tool(binary: &str, package: &str) -> anyhow::Result<()> {
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

fn median(v: &[Duration]) -> f64 {
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

/// Runs the fetch benchmark.
pub fn fetch(root: &Path, bed: &Testbed) -> anyhow::Result<()> {
    ensure_tool("pgcopydb", "pgcopydb")?;
    println!("==> building molt (release)");
    let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["build", "--release", "-q", "-p", "molt"])
        .status()?
        .success();
    if !ok {
        bail!("cargo build --release -p molt failed");
    }
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
        let children: Vec<_> = TABLES
            .iter()
            .map(|t| {
                Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "psql '{src}' -X -Atqc 'COPY {t} TO STDOUT' | psql '{dst}' -X -v ON_ERROR_STOP=1 -qc 'COPY {t} FROM STDIN'"
                    ))
                    .spawn()
            })
            .collect::<Result<_, _>>()?;
        for mut c in children {
            if !c.wait()?.success() {
                bail!("a psql pipe failed");
            }
        }
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
