//! `cargo xtask` (alias `cargo x`): the project's automation.
//!
//! - `cargo xtask demo`: start local databases and run the migration flow as far as it is built.
//! - `cargo xtask test`: everything CI runs (fmt, clippy, deny, all tests against real servers).
//! - `cargo xtask bench fetch`: fetch against the raw psql pipe and pgcopydb, in one run.
//! - `cargo xtask bench verify`: verify against reladiff, identical and with 10 differences.
//! - `cargo xtask dbs up|down|status|env`: the test bed of `molt-testkit`.

mod bench;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};
use molt_testkit::{Testbed, testbed_dir};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["test", rest @ ..] => test(rest),
        ["demo"] => demo(),
        ["bench", "fetch"] => bench::fetch(&workspace_root(), &Testbed::up(&testbed_dir())?),
        ["bench", "verify"] => bench::verify(&workspace_root(), &Testbed::up(&testbed_dir())?),
        ["dbs", "up"] => {
            let bed = Testbed::up(&testbed_dir())?;
            for line in Testbed::status(&testbed_dir()) {
                println!("{line}");
            }
            drop(bed);
            Ok(())
        }
        ["dbs", "down"] => Ok(Testbed::down(&testbed_dir())?),
        ["dbs", "status"] => {
            for line in Testbed::status(&testbed_dir()) {
                println!("{line}");
            }
            Ok(())
        }
        ["dbs", "env"] => {
            for line in Testbed::up(&testbed_dir())?.env_lines() {
                println!("{line}");
            }
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: cargo xtask demo | test [--no-lint] | bench fetch|verify | dbs up|down|status|env"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn step(name: &str, cmd: &mut Command) -> anyhow::Result<()> {
    println!("==> {name}");
    let status = cmd.status().with_context(|| format!("starting {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}

fn has_cargo_subcommand(name: &str) -> bool {
    cargo().args([name, "--version"]).output().is_ok_and(|o| o.status.success())
}

/// fmt, clippy, deny, then every test with the databases started first.
fn test(rest: &[&str]) -> anyhow::Result<()> {
    let lint = !rest.contains(&"--no-lint");
    if lint {
        step("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
        step(
            "cargo clippy",
            cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
        )?;
        if !has_cargo_subcommand("deny") {
            step("installing cargo-deny", cargo().args(["install", "--locked", "cargo-deny"]))?;
        }
        // The advisory database cannot be fetched here; licenses, bans and sources can.
        step("cargo deny", cargo().args(["deny", "check", "licenses", "bans", "sources"]))?;
    }
    println!("==> starting the test bed");
    let dir = testbed_dir();
    Testbed::up(&dir)?;
    for line in Testbed::status(&dir) {
        println!("    {line}");
    }
    // Doc tests first, so that the run closes with the test runner's summary line.
    step("cargo test --doc", cargo().args(["test", "--workspace", "--doc"]))?;
    if has_cargo_subcommand("nextest") {
        step(
            "cargo nextest run",
            cargo().env("MOLT_TESTBED_DIR", &dir).args([
                "nextest",
                "run",
                "--workspace",
                "--no-fail-fast",
            ]),
        )?;
    } else {
        step(
            "cargo test",
            cargo().env("MOLT_TESTBED_DIR", &dir).args(["test", "--workspace", "--no-fail-fast"]),
        )?;
    }
    Ok(())
}

const DEMO_SCHEMA: &str = r#"
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

/// Starts the databases, creates a source with data, and runs the migration as far as it is
/// built today: fetch with a replication slot (printing the cursor replication starts from),
/// then verify.
fn demo() -> anyhow::Result<()> {
    use clap::Parser as _;
    let bed = Testbed::up(&testbed_dir())?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let src = bed.fresh_pg_source().await;
        let dst = bed.fresh_pg_target().await;
        println!("source: {}", molt_url::ConnUrl::parse(&src.url)?);
        println!("target: {}", molt_url::ConnUrl::parse(&dst.url)?);
        let src_pool = molt_source_pg::connect(&molt_url::ConnUrl::parse(&src.url)?, 1).await?;
        sqlx::raw_sql(DEMO_SCHEMA).execute(&src_pool).await.context("creating the demo source")?;
        src_pool.close().await;
        println!("created source tables employees (10,000 rows) and orders (30,000 rows)\n");

        let slot = format!("molt_demo_{}", src.name);
        println!("==> molt fetch --direct-copy --table-handling drop-on-target-and-recreate --pglogical-replication-slot-name {slot}");
        let fetch = molt_fetch::FetchArgs::try_parse_from([
            "fetch", "--source", &src.url, "--target", &dst.url, "--allow-tls-mode-disable",
            "--direct-copy", "--table-handling", "drop-on-target-and-recreate",
            "--pglogical-replication-slot-name", &slot,
            "--pglogical-publication-and-slot-drop-and-recreate", "--metrics-listen-addr", "",
        ])?;
        let summary = molt_fetch::run(molt_fetch::Config::from_args(&fetch)?).await?;
        println!(
            "loaded {} rows into {} tables; replication starts at cdc_cursor {} on slot {slot}\n",
            summary.rows.iter().sum::<u64>(),
            summary.tables.len(),
            summary.cdc_cursor
        );
        println!("==> molt verify");
        let verify = molt_verify::VerifyArgs::try_parse_from([
            "verify", "--source", &src.url, "--target", &dst.url, "--allow-tls-mode-disable",
            "--table-splits", "4",
        ])?;
        let report = molt_verify::run_args(verify).await?;
        let t = report.totals();
        println!(
            "verified {} rows: {} equal, {} missing, {} different, {} extra -> {}",
            t.truth_rows,
            t.success,
            t.missing,
            t.mismatch,
            t.extraneous,
            if report.clean() { "CLEAN" } else { "DIFFERENCES" }
        );
        // The slot would hold WAL on the source until a replicator consumes it; the demo ends here.
        let admin = molt_source_pg::connect(&molt_url::ConnUrl::parse(&src.url)?, 1).await?;
        sqlx::query("SELECT pg_drop_replication_slot($1)").bind(&slot).execute(&admin).await?;
        println!("\nreplicator pglogical (continuous replication from the cursor) joins this demo when it lands.");
        if !report.clean() {
            anyhow::bail!("verify found differences");
        }
        anyhow::Ok(())
    })
}
