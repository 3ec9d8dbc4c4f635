//! Resuming an interrupted load: fetch's bookkeeping tables in the target's `public` schema.
//!
//! | table | holds |
//! |---|---|
//! | `_molt_fetch_status` | one row per fetch: id, name, start time, source dialect, `cdc_cursor` |
//! | `_molt_fetch_exceptions` | continuation tokens: one per failed table, with the file it stopped at |
//! | `_molt_fetch_files` | every intermediate file loaded, written **in the same target transaction** as its rows |
//!
//! The third table is what makes a resume exact after any crash, `kill -9` included: a file's
//! rows and its marker commit together, so a resumed run loads precisely the files without a
//! marker, none twice. Tokens (MOLT's model) say where a *failed* table stopped and carry the
//! error; a fetch killed outright leaves none, and `--fetch-id` alone still resumes it from the
//! markers. `IMPORT INTO` cannot run inside a transaction: there the marker follows the
//! statement, and a crash between the two is the one window where a resume would load a file
//! again (CockroachDB then refuses the duplicate keys; see `docs/fetch.md`).

use molt_schema::TableName;
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Row as _};

/// The DDL of the bookkeeping tables (idempotent; PostgreSQL and CockroachDB alike).
pub const DDL: &str = "\
CREATE TABLE IF NOT EXISTS public._molt_fetch_status (id uuid PRIMARY KEY, name text NOT NULL, \
started_at timestamptz NOT NULL DEFAULT now(), source_dialect text NOT NULL, cdc_cursor text NOT NULL DEFAULT ''); \
CREATE TABLE IF NOT EXISTS public._molt_fetch_exceptions (id uuid PRIMARY KEY, \
fetch_id uuid NOT NULL REFERENCES public._molt_fetch_status (id) ON DELETE CASCADE, table_name text NOT NULL, \
schema_name text NOT NULL, message text NOT NULL, sql_state text NOT NULL DEFAULT '', file_name text NOT NULL DEFAULT '', \
command text NOT NULL DEFAULT '', stage text NOT NULL, time timestamptz NOT NULL DEFAULT now()); \
CREATE INDEX IF NOT EXISTS _molt_fetch_exceptions_fetch_id_sql_state ON public._molt_fetch_exceptions (fetch_id, sql_state); \
CREATE TABLE IF NOT EXISTS public._molt_fetch_files (fetch_id uuid NOT NULL, schema_name text NOT NULL, \
table_name text NOT NULL, file_name text NOT NULL, num_rows int8 NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), \
PRIMARY KEY (fetch_id, schema_name, table_name, file_name))";

/// Creates the bookkeeping tables if missing.
///
/// # Errors
/// A failing statement (for example no CREATE privilege on `public`).
pub async fn ensure_tables(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(DDL).execute(pool).await.map(|_| ())
}

/// A recorded fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRecord {
    /// Fetch id.
    pub id: String,
    /// Where replication starts, as printed when it began.
    pub cdc_cursor: String,
}

/// Records a new fetch.
///
/// # Errors
/// A failing statement.
pub async fn record_fetch(
    pool: &PgPool,
    id: &str,
    source_dialect: &str,
    cdc_cursor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO public._molt_fetch_status (id, name, source_dialect, cdc_cursor) VALUES ($1::uuid, 'fetch', $2, $3)",
    )
    .bind(id)
    .bind(source_dialect)
    .bind(cdc_cursor)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The fetch `id`, if recorded.
///
/// # Errors
/// A failing query (a malformed id is reported as not found).
pub async fn find_fetch(pool: &PgPool, id: &str) -> Result<Option<FetchRecord>, sqlx::Error> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id::text, cdc_cursor FROM public._molt_fetch_status WHERE id = $1::uuid",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| FetchRecord { id: r.get(0), cdc_cursor: r.get(1) }))
}

/// The marker statement: `$1` fetch id, `$2` schema, `$3` table, `$4` file, `$5` rows.
pub const MARK_FILE_SQL: &str = "INSERT INTO public._molt_fetch_files (fetch_id, schema_name, table_name, file_name, num_rows) \
     VALUES ($1::uuid, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

/// Records a loaded file, on `conn` (inside the transaction that loaded it, where possible).
///
/// # Errors
/// A failing statement.
pub async fn mark_file(
    conn: &mut PgConnection,
    fetch_id: &str,
    table: &TableName,
    file: &str,
    rows: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(MARK_FILE_SQL)
        .bind(fetch_id)
        .bind(&table.schema)
        .bind(&table.table)
        .bind(file)
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The files of `table` loaded by fetch `fetch_id`, with their row counts.
///
/// # Errors
/// A failing query.
pub async fn loaded_files(
    pool: &PgPool,
    fetch_id: &str,
    table: &TableName,
) -> Result<Vec<(String, u64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT file_name, num_rows FROM public._molt_fetch_files WHERE fetch_id = $1::uuid AND schema_name = $2 AND table_name = $3",
    )
    .bind(fetch_id)
    .bind(&table.schema)
    .bind(&table.table)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get::<String, _>(0), u64::try_from(r.get::<i64, _>(1)).unwrap_or(0)))
        .collect())
}

/// A continuation token: where one failed table stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Token id.
    pub id: String,
    /// Fetch it belongs to.
    pub fetch_id: String,
    /// Source table.
    pub table: TableName,
    /// First file not loaded (empty when the export itself failed).
    pub file_name: String,
}

/// What a new token records.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// Fetch id.
    pub fetch_id: &'a str,
    /// Source table.
    pub table: &'a TableName,
    /// The error chain.
    pub message: &'a str,
    /// SQLSTATE, when the target raised it.
    pub sql_state: &'a str,
    /// First file not loaded.
    pub file_name: &'a str,
    /// `schema_creation` or `data_load`.
    pub stage: &'a str,
}

/// Creates the token of a failed table, or updates the one it already has; returns its id.
///
/// # Errors
/// A failing statement.
pub async fn upsert_token(pool: &PgPool, f: &Failure<'_>) -> Result<String, sqlx::Error> {
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT id::text FROM public._molt_fetch_exceptions WHERE fetch_id = $1::uuid AND schema_name = $2 AND table_name = $3",
    )
    .bind(f.fetch_id)
    .bind(&f.table.schema)
    .bind(&f.table.table)
    .fetch_optional(pool)
    .await?;
    let id = existing.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    sqlx::query(
        "INSERT INTO public._molt_fetch_exceptions (id, fetch_id, table_name, schema_name, message, sql_state, file_name, command, stage) \
         VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, 'fetch', $8) \
         ON CONFLICT (id) DO UPDATE SET message = excluded.message, sql_state = excluded.sql_state, \
         file_name = excluded.file_name, stage = excluded.stage, time = now()",
    )
    .bind(&id)
    .bind(f.fetch_id)
    .bind(&f.table.table)
    .bind(&f.table.schema)
    .bind(f.message)
    .bind(f.sql_state)
    .bind(f.file_name)
    .bind(f.stage)
    .execute(pool)
    .await?;
    Ok(id)
}

fn token_of(r: &sqlx::postgres::PgRow) -> Token {
    Token {
        id: r.get(0),
        fetch_id: r.get(1),
        table: TableName::new(r.get::<String, _>(2), r.get::<String, _>(3)),
        file_name: r.get(4),
    }
}

const TOKEN_COLUMNS: &str = "id::text, fetch_id::text, schema_name, table_name, file_name";

/// The tokens of a fetch.
///
/// # Errors
/// A failing query.
pub async fn tokens_of(pool: &PgPool, fetch_id: &str) -> Result<Vec<Token>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM public._molt_fetch_exceptions WHERE fetch_id = $1::uuid ORDER BY time, id"
    )))
    .bind(fetch_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(token_of).collect())
}

/// One token by id.
///
/// # Errors
/// A failing query (a malformed id is reported as not found).
pub async fn token(pool: &PgPool, id: &str) -> Result<Option<Token>, sqlx::Error> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM public._molt_fetch_exceptions WHERE id = $1::uuid"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(token_of))
}

/// The newest tokens of every fetch (`limit` 0: all).
///
/// # Errors
/// A failing query; a target that never ran fetch has no tokens (not an error).
pub async fn list_tokens(pool: &PgPool, limit: u64) -> Result<Vec<Token>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._molt_fetch_exceptions') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let limit = if limit == 0 { String::new() } else { format!(" LIMIT {limit}") };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM public._molt_fetch_exceptions ORDER BY time DESC, id{limit}"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(token_of).collect())
}

/// Deletes the tokens of one table of a fetch (it loaded in full).
///
/// # Errors
/// A failing statement.
pub async fn clear_tokens(
    pool: &PgPool,
    fetch_id: &str,
    table: &TableName,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM public._molt_fetch_exceptions WHERE fetch_id = $1::uuid AND schema_name = $2 AND table_name = $3",
    )
    .bind(fetch_id)
    .bind(&table.schema)
    .bind(&table.table)
    .execute(pool)
    .await
    .map(|_| ())
}

/// MOLT's ASCII table of tokens, captioned `Continuation Tokens.`
pub fn render_tokens(tokens: &[Token]) -> String {
    let header = ["ID", "FETCH ID", "TABLE NAME", "FILE NAME"];
    let rows: Vec<[String; 4]> = tokens
        .iter()
        .map(|t| [t.id.clone(), t.fetch_id.clone(), t.table.to_string(), t.file_name.clone()])
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule: String =
        widths.iter().map(|w| format!("+{}", "-".repeat(w + 2))).collect::<String>() + "+\n";
    let line = |cells: &[String]| -> String {
        cells.iter().zip(&widths).map(|(c, w)| format!("| {c:<w$} ")).collect::<String>() + "|\n"
    };
    let mut out = String::new();
    out.push_str(&rule);
    out.push_str(&line(&header.map(str::to_owned)));
    out.push_str(&rule);
    for r in &rows {
        out.push_str(&line(r));
    }
    out.push_str(&rule);
    out.push_str("Continuation Tokens.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_render_as_molt_prints_them() {
        let t = Token {
            id: "8b1c".into(),
            fetch_id: "f00d".into(),
            table: TableName::new("public", "employees"),
            file_name: "shard_01_part_00000001.csv.gz".into(),
        };
        let text = render_tokens(&[t]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "| ID   | FETCH ID | TABLE NAME       | FILE NAME                     |"
        );
        assert_eq!(
            lines[3],
            "| 8b1c | f00d     | public.employees | shard_01_part_00000001.csv.gz |"
        );
        assert_eq!(lines.last(), Some(&"Continuation Tokens."));
        assert_eq!(lines[0], lines[2]);
        assert!(render_tokens(&[]).contains("| ID | FETCH ID |"));
    }
}
