//! Shared helpers: fresh databases, running fetch in-process, comparing tables across servers.

use clap::Parser as _;
use molt_fetch::{Config, FetchArgs, FetchSummary};
use molt_testkit::{TestDb, testbed};
use sqlx::{Connection as _, PgConnection};

/// A fresh source database with `sql` run in it.
pub async fn source_with(sql: &str) -> TestDb {
    let db = testbed().fresh_pg_source().await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect to the source");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("source setup");
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

/// Every row of `table` as PostgreSQL's record text, in key order.
pub async fn rows(url: &str, table: &str, key: &str) -> Vec<String> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM {table} t ORDER BY {key}")))
        .fetch_all(&mut conn)
        .await
        .expect("read rows")
}

/// A scalar query.
pub async fn scalar<T>(url: &str, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut conn).await.expect(sql)
}

/// A directory for intermediate files, removed first.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("molt-fetch-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
