//! PostgreSQL behind `molt-source`'s export traits: [`PgSnapshot`] holds the pinned snapshot
//! (and the slot's cursor), every [`molt_source::export::ExportSession`] it opens imports it
//! and streams shards with `COPY … TO STDOUT`.

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use molt_schema::{CopyFormat, Table, TableName};
use molt_source::SourceError;
use molt_source::export::{ExportSession, RowStream, Shard, Snapshot};
use molt_url::ConnUrl;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};

use crate::export::{copy_out_sql, estimated_rows, plan_shards};
use crate::snapshot::{self, PinnedSnapshot, SnapshotError, SnapshotOptions};

/// A pinned PostgreSQL snapshot and the options to open sessions on it.
pub struct PgSnapshot {
    name: String,
    cursor: Option<molt_cursor::PgLsn>,
    slot: Option<String>,
    pinned: std::sync::Mutex<Option<PinnedSnapshot>>,
    opts: PgConnectOptions,
}

impl PgSnapshot {
    /// Pins the snapshot of `url` (creating the slot `options` names) and reads the cursor.
    ///
    /// # Errors
    /// A [`SnapshotError`] saying what to change on the source.
    pub async fn pin(url: &ConnUrl, options: &SnapshotOptions) -> Result<Self, SnapshotError> {
        let opts =
            crate::connect_options(url).map_err(|e| SnapshotError::Protocol(e.to_string()))?;
        let pinned = snapshot::pin_snapshot(url, options).await?;
        Ok(PgSnapshot {
            name: pinned.name.clone(),
            cursor: pinned.cursor,
            slot: pinned.slot.clone(),
            pinned: std::sync::Mutex::new(Some(pinned)),
            opts,
        })
    }

    /// The slot created, if any.
    pub fn slot(&self) -> Option<&str> {
        self.slot.as_deref()
    }
}

fn source_err(what: &'static str) -> impl FnOnce(sqlx::Error) -> SourceError {
    move |e| SourceError::query(what, e)
}

fn snapshot_err(e: SnapshotError) -> SourceError {
    SourceError::query("reading the pinned snapshot", e)
}

impl Snapshot for PgSnapshot {
    fn cursor(&self) -> Option<String> {
        self.cursor.map(|c| c.to_string())
    }

    fn session(&self) -> BoxFuture<'_, Result<Box<dyn ExportSession>, SourceError>> {
        Box::pin(async move {
            let mut conn = PgConnection::connect_with(&self.opts)
                .await
                .map_err(source_err("opening an export connection to the source"))?;
            snapshot::import_snapshot(&mut conn, &self.name).await.map_err(snapshot_err)?;
            Ok(Box::new(PgExportSession { conn }) as Box<dyn ExportSession>)
        })
    }

    fn estimated_rows<'a>(&'a self, table: &'a TableName) -> BoxFuture<'a, u64> {
        Box::pin(async move {
            let Ok(mut conn) = PgConnection::connect_with(&self.opts).await else { return 0 };
            let n = estimated_rows(&mut conn, table).await;
            let _ = conn.close().await;
            n
        })
    }

    fn binary_types<'a>(
        &'a self,
        table: &'a TableName,
        columns: &'a [String],
    ) -> BoxFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            let mut conn = PgConnection::connect_with(&self.opts).await.ok()?;
            let types = column_types(&mut conn, table, columns).await;
            let _ = conn.close().await;
            types.filter(|(_, builtin)| *builtin).map(|(t, _)| t)
        })
    }

    fn indexed_columns<'a>(&'a self, table: &'a TableName) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let Ok(mut conn) = PgConnection::connect_with(&self.opts).await else {
                return Vec::new();
            };
            let indexed = sqlx::query_scalar(
                "SELECT a.attname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                 WHERE n.nspname = $1 AND c.relname = $2",
            )
            .bind(&table.schema)
            .bind(&table.table)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            let _ = conn.close().await;
            indexed
        })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        let pinned = self.pinned.lock().ok().and_then(|mut p| p.take());
        Box::pin(async move {
            if let Some(p) = pinned {
                p.release().await;
            }
        })
    }
}

/// One column's type on a PostgreSQL table, as [`column_type_details`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnTypeInfo {
    /// `format_type` spelling (`character varying(80)`).
    pub spelling: String,
    /// A built-in type (OID below 16384).
    pub builtin: bool,
    /// An enum type (whose binary form is its label's text).
    pub is_enum: bool,
}

/// The types of `columns` of `table`, in that order; `None` when a column is missing or the
/// catalog cannot be read.
pub async fn column_type_details(
    conn: &mut PgConnection,
    table: &TableName,
    columns: &[String],
) -> Option<Vec<ColumnTypeInfo>> {
    let rows: Vec<(String, String, bool, bool)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.atttypid < 16384, t.typtype = 'e' \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid \
         WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(&table.schema)
    .bind(&table.table)
    .fetch_all(&mut *conn)
    .await
    .ok()?;
    columns
        .iter()
        .map(|c| {
            rows.iter().find(|(n, ..)| n == c).map(|(_, spelling, builtin, is_enum)| {
                ColumnTypeInfo { spelling: spelling.clone(), builtin: *builtin, is_enum: *is_enum }
            })
        })
        .collect()
}

/// The `format_type` spellings of `columns` of `table`, and whether all are built-in types.
pub async fn column_types(
    conn: &mut PgConnection,
    table: &TableName,
    columns: &[String],
) -> Option<(Vec<String>, bool)> {
    let details = column_type_details(conn, table, columns).await?;
    let builtin = details.iter().all(|d| d.builtin);
    Some((details.into_iter().map(|d| d.spelling).collect(), builtin))
}

/// One session in a `REPEATABLE READ` transaction on the imported snapshot.
struct PgExportSession {
    conn: PgConnection,
}

impl ExportSession for PgExportSession {
    fn plan_shards<'a>(
        &'a mut self,
        table: &'a Table,
        requested: u32,
        stats_based: bool,
    ) -> BoxFuture<'a, Result<Vec<Shard>, SourceError>> {
        Box::pin(async move {
            plan_shards(&mut self.conn, table, requested, stats_based).await.map_err(snapshot_err)
        })
    }

    fn rows<'a>(
        &'a mut self,
        table: &'a Table,
        columns: &'a [String],
        shard: &'a Shard,
        format: CopyFormat,
    ) -> BoxFuture<'a, Result<RowStream<'a>, SourceError>> {
        Box::pin(async move {
            let sql = copy_out_sql(table, columns, shard, format);
            let stream = self
                .conn
                .copy_out_raw(&sql)
                .await
                .map_err(|e| SourceError::query(format!("starting {sql}"), e))?;
            let stream: RowStream<'a> = stream
                .map(|r| r.map_err(|e| SourceError::query("reading rows from the source", e)))
                .boxed();
            Ok(stream)
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, ()> {
        let mut conn = self.conn;
        Box::pin(async move {
            let _ = sqlx::raw_sql("COMMIT").execute(&mut conn).await;
            let _ = conn.close().await;
        })
    }
}
