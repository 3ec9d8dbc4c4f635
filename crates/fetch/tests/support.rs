//! Shared helpers: fresh databases, running fetch in-process, comparing tables across servers.

use clap::Parser as _;
use molt_fetch::{Config, FetchArgs, FetchSummary};
pub use molt_testkit::sql::{rows, scalar};
use molt_testkit::{TestDb, testbed};

/// A fresh source database with `sql` run in it.
pub async fn source_with(sql: &str) -> TestDb {
    let db = testbed().fresh_pg_source().await;
    molt_testkit::sql::exec(&db.url, sql).await;
    db
}

/// Parses fetch flags as a user types them (metrics off, so parallel tests share no port).
pub fn config(source: &str, target: &str, extra: &[&str]) -> anyhow::Result<Config> {
    let mut argv = vec![
        "fetch",
        "--source",
        source,
        "--target",
        target,
        "--allow-tls-mode-disable",
        "--metrics-listen-addr",
        "",
    ];
    argv.extend_from_slice(extra);
    Config::from_args(&FetchArgs::try_parse_from(argv)?)
}

/// Runs fetch.
pub async fn fetch(source: &str, target: &str, extra: &[&str]) -> anyhow::Result<FetchSummary> {
    molt_fetch::run(config(source, target, extra)?).await
}

/// A directory for intermediate files, removed first.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("molt-fetch-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
