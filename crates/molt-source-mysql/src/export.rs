//! Reading a table out of the snapshot: integer primary-key range shards and a binary-protocol
//! `SELECT` per shard whose rows are encoded, value by value with
//! [`crate::value::value_text`], in the COPY format the target or a file takes.
//!
//! Shards split the first primary-key column's range evenly between its minimum and maximum
//! when it is an integer (signed or unsigned, any width), with open-ended first and last
//! shards; other keys are one shard. Rows stream from the server one at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut as _, Bytes, BytesMut};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use molt_schema::{CopyFormat, Table};
use molt_source::SourceError;
use molt_source::export::{ExportSession, RowStream, Shard, int_bounds, shards_from_bounds};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use tokio::sync::mpsc;

use crate::value::value_text;

/// A MySQL identifier in backquotes, doubling any inside.
pub fn quote_mysql_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
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
}

impl MysqlExportSession {
    pub(crate) fn new(
        conn: Conn,
        idle_tx: mpsc::UnboundedSender<Conn>,
        alive: Arc<AtomicUsize>,
    ) -> Self {
        MysqlExportSession { conn: Some(conn), idle_tx, alive }
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

fn is_integer(name: &str) -> bool {
    matches!(name, "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint")
}

impl ExportSession for MysqlExportSession {
    fn plan_shards<'a>(
        &'a mut self,
        table: &'a Table,
        requested: u32,
        _stats_based: bool,
    ) -> BoxFuture<'a, Result<Vec<Shard>, SourceError>> {
        Box::pin(async move {
            let whole = vec![Shard::whole()];
            let Some(key) = table.primary_key_columns().next() else { return Ok(whole) };
            if requested <= 1 || !is_integer(&key.ty.name) {
                return Ok(whole);
            }
            let col = quote_mysql_ident(&key.name);
            let sql = format!(
                "SELECT CAST(MIN({col}) AS CHAR), CAST(MAX({col}) AS CHAR) FROM {}.{}",
                quote_mysql_ident(&table.name.schema),
                quote_mysql_ident(&table.name.table)
            );
            let range: Option<(Option<String>, Option<String>)> =
                self.conn()?.query_first(sql).await.map_err(|e| {
                    SourceError::query(format!("reading the key range of {}", table.name), e)
                })?;
            let Some((Some(lo), Some(hi))) = range else { return Ok(whole) };
            let (Ok(lo), Ok(hi)) = (lo.parse::<i128>(), hi.parse::<i128>()) else {
                return Ok(whole);
            };
            let bounds: Vec<String> =
                int_bounds(lo, hi, requested).into_iter().map(|b| b.to_string()).collect();
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
            let mut types = Vec::with_capacity(columns.len());
            for c in columns {
                let col = table.column(c).ok_or_else(|| {
                    SourceError::query(
                        format!("column {c} is not in the source's {}", table.name),
                        std::io::Error::other("missing column"),
                    )
                })?;
                types.push(col.ty.clone());
            }
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
            let key: Vec<usize> = table
                .primary_key
                .iter()
                .filter_map(|k| columns.iter().position(|c| c == k))
                .collect();
            let stream: RowStream<'a> = stream
                .map(move |row| {
                    let row =
                        row.map_err(|e| SourceError::query(format!("reading rows of {name}"), e))?;
                    encode_row(&row, &types, columns, format).map_err(|e| {
                        let which = describe_key(&row, &types, columns, &key);
                        SourceError::query(format!("reading the row of {name} where {which}"), e)
                    })
                })
                .boxed();
            Ok(stream)
        })
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

fn encode_row(
    row: &Row,
    types: &[molt_schema::ColumnType],
    columns: &[String],
    format: CopyFormat,
) -> Result<Bytes, crate::value::ValueError> {
    let mut out = BytesMut::with_capacity(64 * columns.len().max(1));
    for (i, ty) in types.iter().enumerate() {
        if i > 0 {
            out.put_u8(if format == CopyFormat::Csv { b',' } else { b'\t' });
        }
        let text = match row.as_ref(i) {
            Some(v) => value_text(ty, v).map_err(|e| e.in_column(columns[i].clone()))?,
            None => None,
        };
        match format {
            CopyFormat::Csv => put_csv(&mut out, text.as_deref()),
            _ => put_copy_text(&mut out, text.as_deref()),
        }
    }
    out.put_u8(b'\n');
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
}
