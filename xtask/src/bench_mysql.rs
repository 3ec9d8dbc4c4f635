//! `cargo xtask bench fetch --source mysql`: one generated MariaDB data set (1M rows in four
//! tables, the PostgreSQL bench's shapes in MySQL types) loaded into the PostgreSQL target in
//! one run by `molt fetch --direct-copy`, `pgloader` and `pg_chameleon init_replica`, each
//! timed with its peak RSS and its result checked against the source (rows, NULLs, `'NULL'`
//! strings, 4-byte characters, decimal sums); `mydumper` export-only as the read ceiling and a
//! raw parallel binary `COPY | COPY` of the same rows into the target as the write ceiling.
//! Prints medians and ratios; writes `target/bench/fetch-mysql.json`. Timings are never
//! asserted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use molt_testkit::Testbed;

use crate::bench::{build_release, copy_pipes, ensure_tool, median, psql};

const DB: &str = "molt_bench_my";
const RUNS: usize = 3;
const TOTAL_ROWS: u64 = 1_000_000;
const TABLES: [&str; 4] = ["employees", "payments", "orders", "order_items"];

const DATASET: &str = r#"
CREATE TABLE employees (id BIGINT PRIMARY KEY, name VARCHAR(120) NOT NULL, email VARCHAR(120),
    hired DATE, salary DECIMAL(12,2), rating DOUBLE, active BOOL, profile JSON, photo BLOB,
    bio TEXT, uid UUID, ip INET6, tags SET('a', 'b', 'c'), yr YEAR, big BIGINT UNSIGNED,
    flags BIT(8), dur TIME);
INSERT INTO employees SELECT seq, CONCAT('employee ', seq, IF(seq % 100 = 0, ' 😀', ''), ' "q", comma'),
    IF(seq % 50 = 0, 'NULL', CONCAT('e', seq, '@example.com')), DATE_ADD('2000-01-01', INTERVAL seq % 9000 DAY),
    seq * 13.37, seq / 7, IF(seq % 11 = 0, NULL, seq % 3 = 0), JSON_OBJECT('level', seq % 5, 'tags', JSON_ARRAY('a', seq), 'note', 'ü€'),
    IF(seq % 13 = 0, '', UNHEX(CONCAT('00', MD5(seq)))),
    CONCAT('line one
line two	tab \ backslash ', IF(seq % 7 = 0, '\N', ''), IF(seq % 17 = 0, '
', ''), REPEAT('é', seq % 9)),
    CONCAT(LEFT(MD5(seq), 8), '-', MID(MD5(seq), 9, 4), '-4', MID(MD5(seq), 14, 3), '-a', MID(MD5(seq), 18, 3), '-', RIGHT(MD5(seq), 12)),
    CONCAT('2001:db8::', HEX(seq % 65535)), ELT(1 + seq % 4, 'a', 'b,c', 'a,b,c', ''), 1901 + seq % 254,
    18446744073709551615 - seq, seq % 256, SEC_TO_TIME(CAST((seq * 29) % 6000000 AS SIGNED) - 3000000)
    FROM seq_1_to_100000;
CREATE TABLE payments (id BIGINT PRIMARY KEY, employee_id BIGINT, amount DECIMAL(20,6),
    paid_at DATETIME(6), booked TIMESTAMP(6) NULL, ref CHAR(36), note TEXT);
INSERT INTO payments SELECT seq, 1 + seq % 100000, IF(seq % 1000 = 0, -99999999999999.999999, seq * 1.000001),
    DATE_ADD('2020-01-01', INTERVAL seq SECOND), FROM_UNIXTIME(1600000000 + seq), CONCAT(LEFT(MD5(seq), 8), '-', MID(MD5(seq), 9, 4), '-4',
    MID(MD5(seq), 14, 3), '-a', MID(MD5(seq), 18, 3), '-', RIGHT(MD5(seq), 12)),
    CASE WHEN seq % 10 = 0 THEN NULL WHEN seq % 10 = 1 THEN '' ELSE CONCAT('payment note ', seq, ', "quoted"') END FROM seq_1_to_300000;
CREATE TABLE orders (id CHAR(32) PRIMARY KEY, employee_id BIGINT,
    status ENUM('new', 'paid', 'shipped', 'cancelled', 'on hold', 'überfällig'), placed_at DATETIME(6), total DECIMAL(20,6), note VARCHAR(64));
INSERT INTO orders SELECT MD5(CONCAT('o', seq)), 1 + seq % 100000, ELT(1 + seq % 6, 'new', 'paid', 'shipped', 'cancelled', 'on hold', 'überfällig'),
    DATE_ADD('2021-06-01', INTERVAL seq MINUTE), seq * 3.5, REPEAT('n', seq % 40) FROM seq_1_to_200000;
CREATE TABLE order_items (order_no BIGINT, line INT, sku VARCHAR(20), qty INT, price DECIMAL(12,2),
    PRIMARY KEY (order_no, line));
INSERT INTO order_items SELECT 1 + seq DIV 4, seq % 4, CONCAT('sku-', seq % 5000), 1 + seq % 9, (seq % 1000) * 0.25
    FROM seq_0_to_399999;
"#;

/// Facts about the data a faithful load keeps: `(what, source query, target query)`, the
/// target query with `{s}` for the schema the tool loaded into.
const CHECKS: [(&str, &str, &str); 9] = [
    (
        "rows",
        "SELECT (SELECT COUNT(*) FROM employees) + (SELECT COUNT(*) FROM payments) + (SELECT COUNT(*) FROM orders) + (SELECT COUNT(*) FROM order_items)",
        "SELECT (SELECT count(*) FROM {s}.employees) + (SELECT count(*) FROM {s}.payments) + (SELECT count(*) FROM {s}.orders) + (SELECT count(*) FROM {s}.order_items)",
    ),
    (
        "NULL notes",
        "SELECT COUNT(*) FROM payments WHERE note IS NULL",
        "SELECT count(*) FROM {s}.payments WHERE note IS NULL",
    ),
    (
        "'NULL' strings",
        "SELECT COUNT(*) FROM employees WHERE email = 'NULL'",
        "SELECT count(*) FROM {s}.employees WHERE email = 'NULL'",
    ),
    (
        "4-byte characters",
        "SELECT COUNT(*) FROM employees WHERE name LIKE '%😀%'",
        "SELECT count(*) FROM {s}.employees WHERE name LIKE '%😀%'",
    ),
    (
        "sum of amounts",
        "SELECT CAST(SUM(amount) AS CHAR) FROM payments",
        "SELECT sum(amount)::text FROM {s}.payments",
    ),
    (
        "text bytes (tabs, newlines, backslashes, \\N)",
        "SELECT SUM(LENGTH(bio)) FROM employees",
        "SELECT sum(octet_length(bio)) FROM {s}.employees",
    ),
    (
        "BIGINT UNSIGNED sum",
        "SELECT CAST(SUM(big) AS CHAR) FROM employees",
        "SELECT sum(big)::text FROM {s}.employees",
    ),
    (
        "TIME beyond 24 h (seconds sum)",
        "SELECT CAST(SUM(TIME_TO_SEC(dur)) AS CHAR) FROM employees",
        "SELECT sum(extract(epoch FROM dur))::bigint::text FROM {s}.employees",
    ),
    (
        "empty strings and bytes",
        "SELECT (SELECT COUNT(*) FROM payments WHERE note = '') + (SELECT COUNT(*) FROM employees WHERE photo = '')",
        "SELECT (SELECT count(*) FROM {s}.payments WHERE note = '') + (SELECT count(*) FROM {s}.employees WHERE octet_length(photo) = 0)",
    ),
];

pub(crate) fn mariadb(bed: &Testbed, db: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{}", bed.mariadb.port), "-umolt", "-pmolt"])
        .args(["--default-character-set=utf8mb4", "-N", "-B", "-e", sql, db])
        .output()
        .context("running the mariadb client (install mariadb-client)")?;
    if !out.status.success() {
        bail!("mariadb: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `cmd` under GNU time; its wall time and peak RSS in MiB.
fn timed(what: &str, cmd: &mut Command) -> anyhow::Result<(Duration, f64)> {
    let rss_file = std::env::temp_dir().join("molt-bench-rss");
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped.args(["-f", "%M", "-o"]).arg(&rss_file).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    let start = Instant::now();
    let out = wrapped.stdin(Stdio::null()).output().with_context(|| format!("running {what}"))?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        bail!("{what} failed ({}):\n{tail}", out.status);
    }
    let kb: f64 =
        std::fs::read_to_string(&rss_file)?.trim().lines().last().unwrap_or("0").parse()?;
    Ok((elapsed, kb / 1024.0))
}

/// One tool's runs.
struct Outcome {
    name: &'static str,
    times: Vec<Duration>,
    rss_mib: f64,
    data: String,
}

impl Outcome {
    fn median(&self) -> f64 {
        median(&self.times)
    }
}

/// Compares the facts of `target` (schema `schema`) with the source's.
fn check_data(bed: &Testbed, want: &[String], target: &str, schema: &str) -> String {
    let mut wrong = Vec::new();
    for ((what, _, q), w) in CHECKS.iter().zip(want) {
        match psql(target, &q.replace("{s}", schema)) {
            Ok(got) if got == *w => {}
            Ok(got) => wrong.push(format!("{what}: {got} (source {w})")),
            Err(e) => wrong.push(format!("{what}: {e}")),
        }
    }
    let _ = bed;
    if wrong.is_empty() { "same as the source".into() } else { wrong.join("; ") }
}

fn run_times(
    name: &'static str,
    mut prepare: impl FnMut() -> anyhow::Result<()>,
    mut cmd: impl FnMut() -> Command,
) -> anyhow::Result<(Vec<Duration>, f64)> {
    let mut times = Vec::new();
    let mut rss: f64 = 0.0;
    for i in 0..RUNS {
        prepare()?;
        let (t, r) = timed(name, &mut cmd())?;
        println!("    {name:<36} run {}: {:.2}s, peak RSS {r:.0} MiB", i + 1, t.as_secs_f64());
        times.push(t);
        rss = rss.max(r);
    }
    Ok((times, rss))
}

fn chameleon_config(bed: &Testbed, target_db: &str, source_db: &str) -> String {
    format!(
        "---\npid_dir: '{CHAMELEON_HOME}/pid/'\nlog_dir: '{CHAMELEON_HOME}/logs/'\n\
         log_dest: file\nlog_level: info\nlog_days_keep: 1\nrollbar_key: ''\nrollbar_env: ''\ntype_override: {{}}\n\
         pg_conn:\n  host: \"127.0.0.1\"\n  port: \"{pg}\"\n  user: \"molt\"\n  password: \"molt\"\n  database: \"{target_db}\"\n  charset: \"utf8\"\n\
         sources:\n  mysql:\n    db_conn:\n      host: \"127.0.0.1\"\n      port: \"{my}\"\n      user: \"molt\"\n      password: \"molt\"\n      charset: 'utf8'\n      connect_timeout: 10\n\
         \x20   schema_mappings:\n      {source_db}: {source_db}\n    limit_tables: []\n    skip_tables: []\n    grant_select_to: []\n    lock_timeout: \"120s\"\n\
         \x20   my_server_id: 100\n    replica_batch_size: 10000\n    replay_max_rows: 10000\n    batch_retention: '1 day'\n    copy_max_memory: \"300M\"\n\
         \x20   copy_mode: 'file'\n    out_dir: {CHAMELEON_HOME}\n    sleep_loop: 1\n    on_error_replay: continue\n    on_error_read: continue\n\
         \x20   auto_maintenance: \"disabled\"\n    gtid_enable: false\n    type: mysql\n    skip_events:\n      insert: []\n      delete: []\n      update: []\n\
         \x20   keep_existing_schema: No\n    net_read_timeout: 600\n",
        pg = bed.pg_target.port,
        my = bed.mariadb.port,
    )
}

/// pg_chameleon refuses to run as root: it runs as this OS user (the test bed's PostgreSQL
/// user), with its own home for the configuration and logs.
const CHAMELEON_USER: &str = "postgres";
const CHAMELEON_HOME: &str = "/var/tmp/molt-bench-chameleon";

pub(crate) fn chameleon(args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", CHAMELEON_USER, "--", "env", &format!("HOME={CHAMELEON_HOME}")])
        .arg("/opt/molt-bench-chameleon/bin/chameleon")
        .args(args)
        .args(["--config", "molt_bench"]);
    c
}

fn ensure_chameleon() -> anyhow::Result<()> {
    // The venv's python must be the system one: pg_chameleon runs as another user, who
    // cannot reach an interpreter under /root.
    let python = Path::new("/opt/molt-bench-chameleon/bin/python3");
    let usable = std::fs::canonicalize(python).is_ok_and(|p| p.starts_with("/usr"));
    if usable && Path::new("/opt/molt-bench-chameleon/bin/chameleon").exists() {
        return Ok(());
    }
    println!("==> installing pg-chameleon (PyPI) into /opt/molt-bench-chameleon");
    let _ = std::fs::remove_dir_all("/opt/molt-bench-chameleon");
    let venv = || {
        Command::new("/usr/bin/python3")
            .args(["-m", "venv", "/opt/molt-bench-chameleon"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !venv() {
        ensure_tool("false", "python3-venv")?;
    }
    let ok = (venv() || venv())
        && Command::new("/opt/molt-bench-chameleon/bin/pip")
            .args(["install", "-q", "pg-chameleon"])
            .status()?
            .success();
    if !ok {
        bail!("could not install pg-chameleon from PyPI into a venv of /usr/bin/python3");
    }
    Ok(())
}

/// A fresh target database `target_db` with pg_chameleon's replica schema and a source that
/// maps the MySQL database `source_db` to a schema of the same name.
pub(crate) fn prepare_chameleon(
    bed: &Testbed,
    admin: &str,
    target_db: &str,
    source_db: &str,
) -> anyhow::Result<()> {
    ensure_chameleon()?;
    let home = Path::new(CHAMELEON_HOME);
    let cham_dir = home.join(".pg_chameleon/configuration");
    std::fs::create_dir_all(&cham_dir)?;
    std::fs::create_dir_all(home.join("logs"))?;
    std::fs::create_dir_all(home.join("pid"))?;
    std::fs::write(cham_dir.join("molt_bench.yml"), chameleon_config(bed, target_db, source_db))?;
    let owned = Command::new("chown")
        .args(["-R", &format!("{CHAMELEON_USER}:"), CHAMELEON_HOME])
        .status()?
        .success();
    if !owned {
        bail!("chown {CHAMELEON_HOME} to {CHAMELEON_USER}");
    }
    recreate_target(admin, target_db)?;
    for args in [&["create_replica_schema"][..], &["add_source", "--source", "mysql"][..]] {
        let out = chameleon(args).output()?;
        if !out.status.success() {
            bail!(
                "chameleon {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

pub(crate) fn recreate_target(admin: &str, name: &str) -> anyhow::Result<()> {
    psql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    psql(admin, &format!("CREATE DATABASE {name}"))?;
    Ok(())
}

/// Runs the MySQL-source fetch benchmark.
pub fn fetch(root: &Path, bed: &Testbed) -> anyhow::Result<()> {
    ensure_tool("pgloader", "pgloader")?;
    ensure_tool("mydumper", "mydumper")?;
    ensure_tool("/usr/bin/time", "time")?;
    ensure_chameleon()?;
    println!("==> building molt (release)");
    build_release(root, "molt")?;
    let molt = root.join("target/release/molt");

    // The data set is generated once and kept; a generator that now makes another column
    // makes it again.
    let have = mariadb(
        bed,
        "mysql",
        &format!(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{DB}' AND TABLE_NAME = 'employees' AND COLUMN_NAME = 'dur'"
        ),
    )?;
    let fresh = have != "1"
        || mariadb(bed, DB, "SELECT COUNT(*) FROM order_items")
            .map(|n| n != "400000")
            .unwrap_or(true);
    if fresh {
        println!("==> generating the MariaDB data set (1M rows)");
        mariadb(
            bed,
            "mysql",
            &format!("DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB} CHARACTER SET utf8mb4"),
        )?;
        mariadb(bed, DB, DATASET)?;
    }
    let want: Vec<String> =
        CHECKS.iter().map(|(_, q, _)| mariadb(bed, DB, q)).collect::<Result<_, _>>()?;
    let size = mariadb(
        bed,
        "mysql",
        &format!(
            "SELECT ROUND(SUM(DATA_LENGTH) / 1048576) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{DB}'"
        ),
    )?;
    println!("    source: MariaDB, {TOTAL_ROWS} rows, {size} MiB of table data");

    let src = bed.mariadb_url(DB);
    let admin = bed.pg_target_url("postgres");
    let mut outcomes = Vec::new();

    // molt fetch: its own tables, its cursor and snapshot, as a migration runs it.
    let dst = bed.pg_target_url("molt_bench_my_dst");
    let log = root.join("target/bench/fetch-mysql.log");
    std::fs::create_dir_all(root.join("target/bench"))?;
    // TIME values beyond a day need INTERVAL on the target, for fetch as for pgloader.
    let type_map = root.join("target/bench/fetch-mysql-types.json");
    std::fs::write(
        &type_map,
        format!(
            r#"[{{"table":"{DB}.employees","column_type_map":[{{"column":"dur","source_type":"time","crdb_type":"INTERVAL"}}]}}]"#
        ),
    )?;
    let (times, rss) = run_times(
        "molt fetch --direct-copy",
        || recreate_target(&admin, "molt_bench_my_dst"),
        || {
            let mut c = Command::new(&molt);
            c.args(["fetch", "--source", &src, "--target", &dst, "--direct-copy"])
                .args([
                    "--allow-tls-mode-disable",
                    "--table-handling",
                    "drop-on-target-and-recreate",
                ])
                .arg("--type-map-file")
                .arg(&type_map)
                .args(["--metrics-listen-addr", "", "--log-file"])
                .arg(&log);
            c
        },
    )?;
    let data = check_data(bed, &want, &dst, "public");
    outcomes.push(Outcome { name: "molt fetch --direct-copy", times, rss_mib: rss, data });

    // The write ceiling: the same rows, already in PostgreSQL, binary-copied into the target.
    for t in TABLES {
        psql(
            &dst,
            &format!(
                "CREATE SCHEMA IF NOT EXISTS raw; CREATE TABLE IF NOT EXISTS raw.{t} (LIKE public.{t} INCLUDING ALL)"
            ),
        )?;
    }
    let mut raw = Vec::new();
    for i in 0..RUNS {
        psql(
            &dst,
            "TRUNCATE raw.employees, raw.payments, raw.orders, raw.order_items; CHECKPOINT",
        )?;
        let start = Instant::now();
        let pairs: Vec<(String, String)> =
            TABLES.iter().map(|t| (format!("public.{t}"), format!("raw.{t}"))).collect();
        copy_pipes(&dst, &dst, &pairs, "(FORMAT binary)")?;
        let t = start.elapsed();
        println!(
            "    {:<36} run {}: {:.2}s",
            "binary COPY | COPY (4 tables)",
            i + 1,
            t.as_secs_f64()
        );
        raw.push(t);
    }
    let raw_data = check_data(bed, &want, &dst, "raw");
    outcomes.push(Outcome {
        name: "binary COPY | COPY (write ceiling)",
        times: raw,
        rss_mib: 0.0,
        data: raw_data,
    });

    // pgloader with the cast rules MariaDB's catalog needs (see testbed notes).
    let pgl = bed.pg_target_url("molt_bench_my_pgl");
    let load = std::env::temp_dir().join("molt-bench.load");
    std::fs::write(
        &load,
        format!(
            "LOAD DATABASE FROM {src} INTO {pgl}\n WITH include drop, create tables, create indexes, reset sequences\n \
             CAST type datetime to timestamp drop default drop not null using zero-dates-to-null,\n      type timestamp to timestamptz drop default,\n      type inet6 to inet, type time to interval,\n      column employees.profile to jsonb;\n"
        ),
    )?;
    let pgl_run = run_times(
        "pgloader",
        || recreate_target(&admin, "molt_bench_my_pgl"),
        || {
            let mut c = Command::new("pgloader");
            c.arg(&load);
            c
        },
    );
    match pgl_run {
        Ok((times, rss)) => {
            let data = check_data(bed, &want, &pgl, DB);
            outcomes.push(Outcome { name: "pgloader", times, rss_mib: rss, data });
        }
        Err(e) => println!("    pgloader could not run: {e:#}"),
    }

    // pg_chameleon's initial copy (init_replica), into a fresh replica schema each run.
    let cham = bed.pg_target_url("molt_bench_my_cham");
    let cham_run = run_times(
        "pg_chameleon init_replica",
        || prepare_chameleon(bed, &admin, "molt_bench_my_cham", DB),
        // Without --debug, init_replica detaches and returns at once; with it, it runs in the
        // foreground (its debug lines are per table and step, not per row).
        || chameleon(&["init_replica", "--source", "mysql", "--debug"]),
    );
    match cham_run {
        Ok((times, rss)) => {
            let data = check_data(bed, &want, &cham, DB);
            outcomes.push(Outcome { name: "pg_chameleon init_replica", times, rss_mib: rss, data });
        }
        Err(e) => println!("    pg_chameleon could not run: {e:#}"),
    }

    // The read ceiling: mydumper exporting the four tables (4 threads), nothing loaded.
    let dump = std::env::temp_dir().join("molt-bench-mydumper");
    let port = bed.mariadb.port.to_string();
    let (times, rss) = run_times(
        "mydumper (export only)",
        || {
            let _ = std::fs::remove_dir_all(&dump);
            Ok(())
        },
        || {
            let mut c = Command::new("mydumper");
            c.args([
                "-h",
                "127.0.0.1",
                "-P",
                &port,
                "-u",
                "molt",
                "-p",
                "molt",
                "-B",
                DB,
                "-t",
                "4",
                "-o",
            ])
            .arg(&dump);
            c
        },
    )?;
    outcomes.push(Outcome {
        name: "mydumper (export only)",
        times,
        rss_mib: rss,
        data: "export only".into(),
    });

    println!("\nvariant                               median_s    rows/s  peak_RSS_MiB  data");
    for o in &outcomes {
        let m = o.median();
        let rss = if o.rss_mib > 0.0 { format!("{:.0}", o.rss_mib) } else { "-".into() };
        println!("{:<36} {m:>9.2} {:>9.0} {rss:>13}  {}", o.name, TOTAL_ROWS as f64 / m, o.data);
    }
    let molt_t = outcomes[0].median();
    let by = |name: &str| outcomes.iter().find(|o| o.name == name).map(Outcome::median);
    let mut ratios = Vec::new();
    if let Some(p) = by("pgloader") {
        println!("\nfetch vs pgloader:      {:.2}x faster   (target >= 3x)", p / molt_t);
        ratios.push(format!("\"vs_pgloader\":{:.3}", p / molt_t));
    }
    if let Some(c) = by("pg_chameleon init_replica") {
        println!("fetch vs pg_chameleon:  {:.2}x faster   (target >= 5x)", c / molt_t);
        ratios.push(format!("\"vs_pg_chameleon\":{:.3}", c / molt_t));
    }
    if let Some(r) = by("binary COPY | COPY (write ceiling)") {
        println!("fetch time / raw binary COPY: {:.2}x   (target <= 1.2x)", molt_t / r);
        ratios.push(format!("\"vs_raw_copy\":{:.3}", molt_t / r));
    }
    if let Some(d) = by("mydumper (export only)") {
        println!("fetch time / mydumper export: {:.2}x", molt_t / d);
        ratios.push(format!("\"vs_mydumper_export\":{:.3}", molt_t / d));
    }
    let medians: Vec<String> = outcomes
        .iter()
        .map(|o| {
            format!(
                "\"{}\":{{\"median_s\":{:.3},\"peak_rss_mib\":{:.0},\"data\":{:?}}}",
                o.name,
                o.median(),
                o.rss_mib,
                o.data
            )
        })
        .collect();
    std::fs::write(
        root.join("target/bench/fetch-mysql.json"),
        format!(
            "{{\"rows\":{TOTAL_ROWS},\"runs\":{RUNS},\"variants\":{{{}}},\"ratios\":{{{}}}}}\n",
            medians.join(","),
            ratios.join(",")
        ),
    )?;
    Ok(())
}
