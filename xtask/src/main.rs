//! `cargo xtask` (alias `cargo x`): the project's automation.
//!
//! - `cargo xtask demo [--source mysql]`: start local databases and run a whole delta
//!   migration (PostgreSQL or MariaDB source) under write load.
//! - `cargo xtask test`: everything CI runs (fmt, clippy, deny, all tests against real servers).
//! - `cargo xtask bench fetch`: fetch against the raw psql pipe and pgcopydb, in one run.
//! - `cargo xtask bench fetch --source mysql`: fetch from MariaDB against pgloader,
//!   pg_chameleon, mydumper (read ceiling) and a raw binary COPY (write ceiling).
//! - `cargo xtask bench verify`: verify against reladiff, identical and with 10 differences.
//! - `cargo xtask bench replicator`: replicator against native logical replication.
//! - `cargo xtask bench replicator --source mysql`: mylogical against pg_chameleon, backlog drain.
//! - `cargo xtask dbs up|down|status|env`: the test bed of `molt-testkit`.

mod bench;
mod bench_mylogical;
mod bench_mysql;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};
use molt_testkit::{Testbed, testbed_dir};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["test", rest @ ..] => test(rest),
        ["demo"] | ["demo", "--source", "postgres" | "pg"] => demo(false),
        ["demo", "--source", "mysql" | "mariadb"] => demo(true),
        ["bench", "fetch"] | ["bench", "fetch", "--source", "postgres" | "pg"] => {
            bench::fetch(&workspace_root(), &Testbed::up(&testbed_dir())?)
        }
        ["bench", "fetch", "--source", "mysql" | "mariadb"] => {
            bench_mysql::fetch(&workspace_root(), &Testbed::up(&testbed_dir())?)
        }
        ["bench", "verify"] => bench::verify(&workspace_root(), &Testbed::up(&testbed_dir())?),
        ["bench", "replicator", "--source", "mysql" | "mariadb"] => {
            bench_mylogical::replicator(&workspace_root(), &Testbed::up(&testbed_dir())?)
        }
        ["bench", "replicator"] | ["bench", "replicator", "--source", "postgres" | "pg"] => {
            bench::replicator(&workspace_root(), &Testbed::up(&testbed_dir())?)
        }
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
                "usage: cargo xtask demo [--source mysql] | test [--no-lint] | bench fetch|replicator [--source mysql] | bench verify | dbs up|down|status|env"
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

/// Starts the databases and runs a whole delta migration on them (see `molt-demo`).
fn demo(mysql: bool) -> anyhow::Result<()> {
    let bed = Testbed::up(&testbed_dir())?;
    let rt = tokio::runtime::Runtime::new()?;
    let say = |line: &str| println!("==> {line}");
    let report = if mysql {
        rt.block_on(molt_demo::delta_migration_mysql(&bed, say))?
    } else {
        rt.block_on(molt_demo::delta_migration(&bed, say))?
    };
    println!(
        "\ndelta migration complete: {} rows loaded, {} application transactions replicated, {} rows verified identical",
        report.fetched_rows, report.app_transactions, report.verified_rows
    );
    println!(
        "downtime (writes stopped -> target verified): {:.2} s",
        report.downtime.as_secs_f64()
    );
    Ok(())
}
