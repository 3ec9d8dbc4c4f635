//! One-line SQL for tests: run a script, read a value, read a whole table as text. Each call
//! opens its own connection and panics with the statement on failure (a test cannot go on).

use sqlx::{Connection as _, PgConnection};

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// Runs `sql` (one or more statements).
///
/// # Panics
/// When a statement fails.
pub async fn exec(url: &str, sql: &str) {
    let mut c = connect(url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The single value `sql` returns.
///
/// # Panics
/// When the query fails or returns no row.
pub async fn scalar<T>(url: &str, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let mut c = connect(url).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row of `table` (a name or a parenthesised query) as PostgreSQL's record text, in
/// `key` order: what two servers must agree on, value for value.
///
/// # Panics
/// When the query fails.
pub async fn rows(url: &str, table: &str, key: &str) -> Vec<String> {
    let sql = format!("SELECT t::text FROM {table} t ORDER BY {key}");
    let mut c = connect(url).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_all(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// SQL that makes everything committed so far decodable by logical replication: a
/// synchronous commit of a transaction that writes WAL (a logical message, which pgoutput
/// ignores), so the flush covers every earlier asynchronous commit. A transaction that only
/// takes an xid writes no WAL and does not flush, whatever `synchronous_commit` says.
pub const FLUSH_WAL_SQL: &str = "BEGIN; SET LOCAL synchronous_commit = on; \
     SELECT pg_logical_emit_message(true, 'molt-flush', ''); COMMIT";

/// Makes everything committed so far decodable by logical replication and returns the WAL
/// position after it (the flushed position: every earlier commit ends at or before it). The
/// test bed commits asynchronously and decoding reads flushed WAL only.
///
/// # Panics
/// When a statement fails.
pub async fn flush_wal(url: &str) -> String {
    exec(url, FLUSH_WAL_SQL).await;
    scalar(url, "SELECT pg_current_wal_flush_lsn()::text").await
}

/// Runs `sql` (one or more statements) on a MySQL or MariaDB server.
///
/// # Panics
/// When connecting or a statement fails.
pub async fn my_exec(url: &str, sql: &str) {
    use mysql_async::prelude::Queryable as _;
    let mut c = mysql_async::Conn::from_url(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.disconnect().await;
}

/// The single value `sql` returns on a MySQL or MariaDB server, as text (`""` for NULL).
///
/// # Panics
/// When connecting or the query fails.
pub async fn my_scalar(url: &str, sql: &str) -> String {
    use mysql_async::prelude::Queryable as _;
    let mut c = mysql_async::Conn::from_url(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    let v: Option<Option<String>> =
        c.query_first(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.disconnect().await;
    v.flatten().unwrap_or_default()
}
