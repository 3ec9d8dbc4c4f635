//! Reading a table out of the snapshot: integer primary-key range shards and a binary-protocol
//! `SELECT` per shard whose rows are encoded, value by value with
//! [`crate::value::value_text`], in the COPY format the target or a file takes.
//!
//! Shards split the first primary-key column's range evenly between its minimum and maximum
//! when it is an integer (signed or unsigned, any width), with open-ended first and last
//! shards. With `--use-stats-based-sharding`, and for string, decimal, temporal and binary
//! keys, the bounds are every `rows / shards`-th key instead, so skewed keys split evenly by
//! rows. Other keys (`ENUM`, `UUID`, …) are one shard. Rows stream from the server one at a
//! time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut as _, Bytes, BytesMut};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use molt_schema::{ColumnType, CopyFormat, Table};
use molt_source::SourceError;
use molt_source::binary::{BinaryKind, EncodeError, HEADER, TRAILER, put_field, put_tuple_start};
use molt_source::export::{ExportSession, RowStream, Shard, int_bounds, shards_from_bounds};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use tokio::sync::mpsc;
use tracing::debug;

use crate::value::{as_interval, value_text};

/// A MySQL identifier in backquotes, doubling any inside.
pub fn quote_mysql_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Whether a MySQL type name is an integer type (`YEAR` included).
pub fn is_integer(name: &str) -> bool {
    matches!(name, "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year")
}

/// Whether a MySQL type name is a binary string type.
pub fn is_binary(name: &str) -> bool {
    matches!(name, "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob")
}

/// A key value that is not of its column's type, so no literal is written for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LiteralError(String);

/// A key value (as [`value_text`] wrote it) as a MySQL literal of its column's type.
///
/// Numbers are written bare (a quoted number would compare as a double), instants without
/// the `+00` the session's UTC makes implicit, bytes and bits in hex and binary, and every
/// other value as hex UTF-8 with an introducer, so no quoting or `sql_mode` can change it.
pub fn literal(ty: &ColumnType, value: Option<&str>) -> Result<String, LiteralError> {
    let Some(v) = value else { return Ok("NULL".into()) };
    let n = ty.name.as_str();
    let number = |v: &str| {
        let digits = v.strip_prefix('-').unwrap_or(v);
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, "0"));
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && !frac.is_empty()
            && frac.bytes().all(|b| b.is_ascii_digit())
    };
    let lit = if is_integer(n) || matches!(n, "decimal" | "numeric" | "float" | "double") {
        let float = matches!(n, "float" | "double")
            && v.parse::<f64>().is_ok_and(f64::is_finite)
            && v.bytes().all(|b| b.is_ascii_digit() || b"-+.eE".contains(&b));
        if !(number(v) || float) {
            return Err(LiteralError(format!(
                "key value {v:?} is not a number for a {} column",
                ty.spelling
            )));
        }
        // A FLOAT holds 0.1 as 0.100000001…: compared with a double literal it is not 0.1.
        if n == "float" { format!("CAST({v} AS FLOAT)") } else { v.to_owned() }
    } else if matches!(n, "date" | "datetime" | "timestamp" | "time") {
        let v = v.strip_suffix("+00").unwrap_or(v);
        if !v.bytes().all(|b| b.is_ascii_digit() || b" -:.".contains(&b)) {
            return Err(LiteralError(format!("key value {v:?} is not a {} value", ty.spelling)));
        }
        format!("'{v}'")
    } else if is_binary(n) {
        let hex = v.strip_prefix("\\x").unwrap_or(v);
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(LiteralError(format!(
                "key value {v:?} is not hex bytes for a {} column",
                ty.spelling
            )));
        }
        format!("X'{hex}'")
    } else if n == "bit" {
        if !v.bytes().all(|b| b == b'0' || b == b'1') {
            return Err(LiteralError(format!("key value {v:?} is not a bit string")));
        }
        format!("b'{v}'")
    } else {
        let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
        format!("_utf8mb4 X'{hex}'")
    };
    Ok(lit)
}

/// The `SELECT` of one shard.
pub fn select_sql(table: &Table, columns: &[String], shard: &Shard) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_mysql_ident(c)).collect();
    let filter = shard.predicate.as_ref().map(|p| format!(" WHERE {p}")).unwrap_or_default();
    format!(
        "SELECT {} FROM {}.{}{filter}",
        cols.join(", "),
        quote_mysql_ident(&table.name.schema),
        quote_mysql_ident(&table.name.table)
    )
}

/// One export session: a connection in its consistent-snapshot transaction, returned to the
/// snapshot by [`ExportSession::finish`]. Dropped without finishing (its shard failed), it is
/// not used again.
pub(crate) struct MysqlExportSession {
    conn: Option<Conn>,
    idle_tx: mpsc::UnboundedSender<Conn>,
    alive: Arc<AtomicUsize>,
    /// Per column of the next read: the target holds it as `interval`.
    interval: Vec<bool>,
}

impl MysqlExportSession {
    pub(crate) fn new(
        conn: Conn,
        idle_tx: mpsc::UnboundedSender<Conn>,
        alive: Arc<AtomicUsize>,
    ) -> Self {
        MysqlExportSession { conn: Some(conn), idle_tx, alive, interval: Vec::new() }
    }

    fn conn(&mut self) -> Result<&mut Conn, SourceError> {
        self.conn.as_mut().ok_or_else(|| {
            SourceError::query(
                "using an export session",
                std::io::Error::other("session already finished"),
            )
        })
    }
}

impl Drop for MysqlExportSession {
    fn drop(&mut self) {
        if self.conn.take().is_some() {
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Whether ranges `>= a AND < b` of a column of type `ty`, with bounds taken in `ORDER BY`
/// order, give every row exactly one shard: comparison and `ORDER BY` must agree, which
/// they do not for `ENUM` (ordered by index, compared as text), `SET`, `BIT`, `JSON`, floats
/// or MariaDB's `UUID`/`INET6`.
fn quantiles_partition(ty: &ColumnType) -> bool {
    let n = ty.name.as_str();
    is_integer(n)
        || is_binary(n)
        || matches!(
            n,
            "decimal"
                | "numeric"
                | "date"
                | "datetime"
                | "timestamp"
                | "char"
                | "varchar"
                | "tinytext"
                | "text"
                | "mediumtext"
                | "longtext"
        )
}

impl MysqlExportSession {
    /// Boundaries splitting an integer key's `MIN..=MAX` evenly.
    async fn even_bounds(
        &mut self,
        table: &Table,
        col: &str,
        requested: u32,
    ) -> Result<Vec<String>, SourceError> {
        let sql = format!(
            "SELECT CAST(MIN({col}) AS CHAR), CAST(MAX({col}) AS CHAR) FROM {}.{}",
            quote_mysql_ident(&table.name.schema),
            quote_mysql_ident(&table.name.table)
        );
        let range: Option<(Option<String>, Option<String>)> =
            self.conn()?.query_first(sql).await.map_err(|e| {
                SourceError::query(format!("reading the key range of {}", table.name), e)
            })?;
        let Some((Some(lo), Some(hi))) = range else { return Ok(Vec::new()) };
        let (Ok(lo), Ok(hi)) = (lo.parse::<i128>(), hi.parse::<i128>()) else {
            return Ok(Vec::new());
        };
        Ok(int_bounds(lo, hi, requested).into_iter().map(|b| b.to_string()).collect())
    }

    /// Boundaries at every `rows / requested`-th key in key order, read in one pass over the
    /// key (`ROW_NUMBER()`), so shards hold about as many rows each however the keys are
    /// spread; for `--use-stats-based-sharding` and keys that are not integers.
    async fn quantile_bounds(
        &mut self,
        table: &Table,
        ty: &ColumnType,
        col: &str,
        requested: u32,
    ) -> Result<Vec<String>, SourceError> {
        let from = format!(
            "{}.{}",
            quote_mysql_ident(&table.name.schema),
            quote_mysql_ident(&table.name.table)
        );
        let rows: Option<u64> =
            self.conn()?.query_first(format!("SELECT COUNT(*) FROM {from}")).await.map_err(
                |e| SourceError::query(format!("counting the rows of {}", table.name), e),
            )?;
        let step = rows.unwrap_or(0) / u64::from(requested);
        if step == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT k FROM (SELECT {col} AS k, ROW_NUMBER() OVER (ORDER BY {col}) AS rn FROM {from}) q \
             WHERE (rn - 1) % {step} = 0 AND rn > 1 ORDER BY rn LIMIT {}",
            requested - 1
        );
        let values: Vec<Row> = self.conn()?.exec(sql, ()).await.map_err(|e| {
            SourceError::query(format!("reading shard boundaries of {}", table.name), e)
        })?;
        let mut bounds: Vec<String> = Vec::with_capacity(values.len());
        let mut last: Option<String> = None;
        for row in &values {
            let Some(v) = row.as_ref(0) else { continue };
            let text = value_text(ty, v).map_err(|e| {
                SourceError::query(format!("reading a shard boundary of {}", table.name), e)
            })?;
            if text.is_none() || text == last {
                continue;
            }
            let lit = literal(ty, text.as_deref()).map_err(|e| {
                SourceError::query(format!("a shard boundary of {}", table.name), e)
            })?;
            bounds.push(lit);
            last = text;
        }
        Ok(bounds)
    }
}

/// How a shard's rows are written.
#[derive(Clone, Copy)]
enum Encoding<'a> {
    /// COPY text or CSV.
    Text(CopyFormat),
    /// Binary COPY tuples, each column as its target kind.
    Binary(&'a [BinaryKind]),
}

impl MysqlExportSession {
    /// The rows of `shard`, each encoded as `encoding` says, streamed from the server.
    async fn encoded_rows<'a>(
        &'a mut self,
        table: &'a Table,
        columns: &'a [String],
        shard: &'a Shard,
        encoding: Encoding<'a>,
    ) -> Result<RowStream<'a>, SourceError> {
        let types = column_types(table, columns)?;
        let interval = self.interval.clone();
        let sql = select_sql(table, columns, shard);
        let result = self
            .conn()?
            .exec_iter(sql.clone(), ())
            .await
            .map_err(|e| SourceError::query(format!("starting {sql}"), e))?;
        let Some(stream) = result
            .stream_and_drop::<Row>()
            .await
            .map_err(|e| SourceError::query(format!("starting {sql}"), e))?
        else {
            return Ok(futures_util::stream::empty().boxed());
        };
        let name = table.name.to_string();
        let key: Vec<usize> =
            table.primary_key.iter().filter_map(|k| columns.iter().position(|c| c == k)).collect();
        let stream = stream.map(move |row| {
            let row = row.map_err(|e| SourceError::query(format!("reading rows of {name}"), e))?;
            encode_row(&row, &types, columns, &interval, encoding).map_err(|e| {
                let which = describe_key(&row, &types, columns, &key);
                SourceError::query(format!("reading the row of {name} where {which}"), e)
            })
        });
        Ok(stream.boxed())
    }
}

impl ExportSession for MysqlExportSession {
    fn plan_shards<'a>(
        &'a mut self,
        table: &'a Table,
        requested: u32,
        stats_based: bool,
    ) -> BoxFuture<'a, Result<Vec<Shard>, SourceError>> {
        Box::pin(async move {
            let whole = vec![Shard::whole()];
            let Some(key) = table.primary_key_columns().next() else { return Ok(whole) };
            if requested <= 1 {
                return Ok(whole);
            }
            let col = quote_mysql_ident(&key.name);
            let bounds = if is_integer(&key.ty.name) && !stats_based {
                self.even_bounds(table, &col, requested).await?
            } else if quantiles_partition(&key.ty) {
                self.quantile_bounds(table, &key.ty, &col, requested).await?
            } else {
                debug!(table = %table.name, key = %key.name, ty = %key.ty, "one shard: ranges of this key type would not partition the rows");
                Vec::new()
            };
            if bounds.is_empty() {
                return Ok(whole);
            }
            Ok(shards_from_bounds(&col, &bounds))
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
            if format == CopyFormat::Binary {
                return Err(SourceError::query(
                    "a MySQL source is read as text or CSV, not PostgreSQL binary COPY",
                    std::io::Error::other("binary COPY"),
                ));
            }
            self.encoded_rows(table, columns, shard, Encoding::Text(format)).await
        })
    }

    fn binary_rows<'a>(
        &'a mut self,
        table: &'a Table,
        columns: &'a [String],
        shard: &'a Shard,
        kinds: &'a [BinaryKind],
    ) -> BoxFuture<'a, Result<Option<RowStream<'a>>, SourceError>> {
        Box::pin(async move {
            let rows = self.encoded_rows(table, columns, shard, Encoding::Binary(kinds)).await?;
            let header = futures_util::stream::once(async { Ok(Bytes::from_static(HEADER)) });
            let trailer = futures_util::stream::once(async { Ok(Bytes::from_static(TRAILER)) });
            Ok(Some(header.chain(rows).chain(trailer).boxed()))
        })
    }

    fn set_target_types(&mut self, types: &[String]) {
        self.interval =
            types.iter().map(|t| t.to_ascii_lowercase().starts_with("interval")).collect();
    }

    fn finish(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        if let Some(conn) = self.conn.take() {
            let _ = self.idle_tx.send(conn);
        }
        Box::pin(async {})
    }

    fn recover(mut self: Box<Self>) -> BoxFuture<'static, Option<Box<dyn ExportSession>>> {
        Box::pin(async move {
            // The driver reads and discards what is left of an aborted result before the next
            // command; a round trip then proves the session (and its snapshot) still there.
            let conn = self.conn.as_mut()?;
            match conn.query_drop("DO 1").await {
                Ok(()) => Some(self as Box<dyn ExportSession>),
                Err(_) => None,
            }
        })
    }
}

/// The source types of `columns`.
fn column_types(table: &Table, columns: &[String]) -> Result<Vec<ColumnType>, SourceError> {
    columns
        .iter()
        .map(|c| {
            table.column(c).map(|col| col.ty.clone()).ok_or_else(|| {
                SourceError::query(
                    format!("column {c} is not in the source's {}", table.name),
                    std::io::Error::other("missing column"),
                )
            })
        })
        .collect()
}

/// A value that cannot be written as its column's binary kind, or cannot be read at all.
#[derive(Debug, thiserror::Error)]
enum RowError {
    #[error(transparent)]
    Value(#[from] crate::value::ValueError),
    #[error("column {column}: {source}{}", time_hint(source))]
    Binary { column: String, source: EncodeError },
}

fn time_hint(e: &EncodeError) -> &'static str {
    if e.kind == BinaryKind::Time {
        " (outside TIME's 00:00:00..24:00:00 on the target; map the column to INTERVAL with --type-map-file if it holds durations)"
    } else {
        ""
    }
}

/// One row: each value's text ([`value_text`]; a duration for a column the target holds as
/// `interval`, see [`as_interval`]) written as COPY text, CSV, or a binary COPY tuple.
fn encode_row(
    row: &Row,
    types: &[ColumnType],
    columns: &[String],
    interval: &[bool],
    encoding: Encoding<'_>,
) -> Result<Bytes, RowError> {
    let mut out = BytesMut::with_capacity(64 * columns.len().max(1));
    if let Encoding::Binary(_) = encoding {
        put_tuple_start(&mut out, types.len());
    }
    for (i, ty) in types.iter().enumerate() {
        let text = match row.as_ref(i) {
            Some(v) => {
                let text = value_text(ty, v);
                if interval.get(i).copied().unwrap_or(false) { as_interval(text) } else { text }
                    .map_err(|e| e.in_column(columns[i].clone()))?
            }
            None => None,
        };
        match encoding {
            Encoding::Binary(kinds) => put_field(&mut out, kinds[i], text.as_deref())
                .map_err(|source| RowError::Binary { column: columns[i].clone(), source })?,
            Encoding::Text(format) => {
                if i > 0 {
                    out.put_u8(if format == CopyFormat::Csv { b',' } else { b'\t' });
                }
                match format {
                    CopyFormat::Csv => put_csv(&mut out, text.as_deref()),
                    _ => put_copy_text(&mut out, text.as_deref()),
                }
            }
        }
    }
    if let Encoding::Text(_) = encoding {
        out.put_u8(b'\n');
    }
    Ok(out.freeze())
}

/// `id = 7 AND region = 'eu'`: the row's primary key, for an error about one of its values.
fn describe_key(
    row: &Row,
    types: &[molt_schema::ColumnType],
    columns: &[String],
    key: &[usize],
) -> String {
    if key.is_empty() {
        return "the table has no primary key".into();
    }
    key.iter()
        .map(|&i| {
            let v = match row.as_ref(i) {
                Some(v) => value_text(&types[i], v).ok().flatten(),
                None => None,
            };
            let v = v.map_or_else(|| "NULL".to_owned(), |v| format!("'{}'", v.replace('\'', "''")));
            format!("{} = {v}", quote_mysql_ident(&columns[i]))
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Appends one field in PostgreSQL's COPY text format (`\N` for NULL).
pub fn put_copy_text(out: &mut BytesMut, value: Option<&str>) {
    let Some(v) = value else {
        out.put_slice(b"\\N");
        return;
    };
    for b in v.bytes() {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\t' => out.put_slice(b"\\t"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            other => out.put_u8(other),
        }
    }
}

/// Appends one CSV field: NULL empty and unquoted, every other value quoted when it is empty
/// or holds a comma, quote or line break.
pub fn put_csv(out: &mut BytesMut, value: Option<&str>) {
    let Some(v) = value else { return };
    if v.is_empty() || v.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.put_u8(b'"');
        out.put_slice(v.replace('"', "\"\"").as_bytes());
        out.put_u8(b'"');
    } else {
        out.put_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Option<&str>) -> String {
        let mut b = BytesMut::new();
        put_copy_text(&mut b, v);
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn csv(v: Option<&str>) -> String {
        let mut b = BytesMut::new();
        put_csv(&mut b, v);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn copy_text_escapes_what_the_format_reserves() {
        assert_eq!(text(None), "\\N");
        assert_eq!(text(Some("\\N")), "\\\\N");
        assert_eq!(text(Some("a\tb\nc\rd\\")), "a\\tb\\nc\\rd\\\\");
        assert_eq!(text(Some("é😀")), "é😀");
    }

    #[test]
    fn csv_tells_null_from_the_empty_string() {
        assert_eq!(csv(None), "");
        assert_eq!(csv(Some("")), "\"\"");
        assert_eq!(csv(Some("a,b")), "\"a,b\"");
        assert_eq!(csv(Some("say \"hi\"\n")), "\"say \"\"hi\"\"\n\"");
        assert_eq!(csv(Some("plain")), "plain");
    }

    #[test]
    fn identifiers_and_shard_predicates_are_quoted_for_mysql() {
        assert_eq!(quote_mysql_ident("we`ird"), "`we``ird`");
    }

    fn ty(s: &str) -> ColumnType {
        ColumnType::parse(molt_schema::SourceDialect::Mysql, s).unwrap()
    }

    #[test]
    fn key_literals_keep_their_type_and_cannot_break_out() {
        assert_eq!(
            literal(&ty("bigint(20) unsigned"), Some("18446744073709551615")).unwrap(),
            "18446744073709551615"
        );
        assert_eq!(literal(&ty("decimal(10,2)"), Some("-1.50")).unwrap(), "-1.50");
        assert!(literal(&ty("int(11)"), Some("1 OR 1=1")).is_err());
        assert_eq!(
            literal(&ty("timestamp(6)"), Some("2024-01-01 00:30:00.000001+00")).unwrap(),
            "'2024-01-01 00:30:00.000001'"
        );
        assert!(literal(&ty("datetime"), Some("2024-01-01'; DROP")).is_err());
        assert_eq!(literal(&ty("varbinary(4)"), Some("\\x00ff")).unwrap(), "X'00ff'");
        assert_eq!(literal(&ty("bit(3)"), Some("101")).unwrap(), "b'101'");
        assert_eq!(literal(&ty("varchar(10)"), Some("a'b\\")).unwrap(), "_utf8mb4 X'6127625c'");
        assert_eq!(literal(&ty("int"), None).unwrap(), "NULL");
    }
}
