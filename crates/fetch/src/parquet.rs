//! `--format parquet` (with `--mode export-only`): typed, zstd-compressed Parquet files for a
//! data lake, beside MOLT's CSV.
//!
//! The source sends rows in COPY's text format (one row per message, tab-separated,
//! backslash escapes, `\N` for NULL, in the export sessions' ISO dates and UTC). Each column
//! becomes an Arrow array of its type's nearest Parquet type:
//!
//! | PostgreSQL | Parquet (Arrow) |
//! |---|---|
//! | smallint, integer, bigint | INT16, INT32, INT64 |
//! | real, double precision | FLOAT, DOUBLE (NaN and ±Infinity kept) |
//! | boolean | BOOLEAN |
//! | numeric(p,s), p ≤ 38 | DECIMAL(p,s) |
//! | date | DATE |
//! | timestamp / timestamptz | TIMESTAMP(µs) / TIMESTAMP(µs, UTC) |
//! | bytea | BINARY |
//! | anything else (text, unbounded numeric, uuid, json, arrays, enums, intervals …) | UTF8, as PostgreSQL prints it |
//!
//! A MySQL source's columns are typed by their mapped target types instead (its rows arrive
//! in the text the target takes, so a `BIGINT UNSIGNED` is a `numeric(20,0)` here).
//!
//! A value that does not fit its Parquet type (a numeric `NaN`, a date `infinity`) stops the
//! export with the column and value named: the file would not hold what the source holds.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use molt_schema::{Column, TableName};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::sync::mpsc;

use crate::files::{WrittenFile, table_dir};

/// Rows per Arrow batch (and so at most per row group flush).
const BATCH_ROWS: usize = 65_536;

/// The Parquet kind of a source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    I16,
    I32,
    I64,
    F32,
    F64,
    Bool,
    Decimal(u8, i8),
    Date,
    Timestamp,
    TimestampTz,
    Bytes,
    Text,
}

fn kind_of(c: &Column) -> Kind {
    let t = &c.ty;
    if t.array_dims > 0 || t.user_type.is_some() {
        return Kind::Text;
    }
    match t.name.as_str() {
        "int2" | "smallint" => Kind::I16,
        "int4" | "integer" | "int" => Kind::I32,
        "int8" | "bigint" => Kind::I64,
        "float4" | "real" => Kind::F32,
        "float8" | "double precision" => Kind::F64,
        "bool" | "boolean" => Kind::Bool,
        "numeric" | "decimal" => match (t.args.first(), t.args.get(1)) {
            (Some(&p), s) if (1..=38).contains(&p) => {
                Kind::Decimal(p as u8, s.copied().unwrap_or(0) as i8)
            }
            _ => Kind::Text,
        },
        "date" => Kind::Date,
        "timestamp" | "timestamp without time zone" => Kind::Timestamp,
        "timestamptz" | "timestamp with time zone" => Kind::TimestampTz,
        "bytea" => Kind::Bytes,
        _ => Kind::Text,
    }
}

fn data_type(k: Kind) -> DataType {
    match k {
        Kind::I16 => DataType::Int16,
        Kind::I32 => DataType::Int32,
        Kind::I64 => DataType::Int64,
        Kind::F32 => DataType::Float32,
        Kind::F64 => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Decimal(p, s) => DataType::Decimal128(p, s),
        Kind::Date => DataType::Date32,
        Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::Bytes => DataType::Binary,
        Kind::Text => DataType::Utf8,
    }
}

/// The Arrow schema of the exported columns.
pub fn schema(columns: &[Column]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, data_type(kind_of(c)), true))
            .collect::<Vec<_>>(),
    )
}

/// Splits one COPY text row into its fields, unescaped (`None` is NULL).
///
/// # Errors
/// A row that is not valid COPY text (bad escapes, invalid UTF-8).
pub fn split_text_row(line: &[u8]) -> Result<Vec<Option<Vec<u8>>>, String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut out = Vec::new();
    for raw in line.split(|b| *b == b'\t') {
        if raw == b"\\N" {
            out.push(None);
            continue;
        }
        let mut v = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if b != b'\\' {
                v.push(b);
                i += 1;
                continue;
            }
            let Some(&e) = raw.get(i + 1) else { return Err("a trailing backslash".into()) };
            i += 2;
            match e {
                b'b' => v.push(8),
                b'f' => v.push(12),
                b'n' => v.push(b'\n'),
                b'r' => v.push(b'\r'),
                b't' => v.push(b'\t'),
                b'v' => v.push(11),
                b'0'..=b'7' => {
                    let mut n = u32::from(e - b'0');
                    let mut digits = 1;
                    while digits < 3 && raw.get(i).is_some_and(|d| (b'0'..=b'7').contains(d)) {
                        n = n * 8 + u32::from(raw[i] - b'0');
                        i += 1;
                        digits += 1;
                    }
                    v.push((n & 0xff) as u8);
                }
                b'x' => {
                    let mut n = 0u32;
                    let mut digits = 0;
                    while digits < 2 && raw.get(i).is_some_and(u8::is_ascii_hexdigit) {
                        n = n * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                        i += 1;
                        digits += 1;
                    }
                    if digits == 0 {
                        return Err("\\x without hex digits".into());
                    }
                    v.push(n as u8);
                }
                other => v.push(other),
            }
        }
        out.push(Some(v));
    }
    Ok(out)
}

/// Parses `-12.3400` as an integer scaled by `scale` digits.
fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let (neg, int, frac) = molt_source::pgtext::decimal_parts(text)?;
    let scale = usize::try_from(scale).ok()?;
    if frac.len() > scale {
        return None;
    }
    let mut n: i128 = 0;
    for b in int.bytes().chain(frac.bytes()).chain(std::iter::repeat_n(b'0', scale - frac.len())) {
        n = n.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    Some(if neg { -n } else { n })
}

fn parse_date(text: &str) -> Option<i32> {
    i32::try_from(molt_source::pgtext::date_days(text)?).ok()
}

fn parse_timestamp(text: &str, tz: bool) -> Option<i64> {
    // ISO output in UTC: `+00` for timestamptz, no zone for timestamp.
    if molt_source::pgtext::has_offset(text) != tz {
        return None;
    }
    molt_source::pgtext::timestamp_micros(text)
}

fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    molt_source::pgtext::bytea(text)
}

enum Builder {
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Decimal(Decimal128Builder, i8),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, bool),
    Bytes(BinaryBuilder),
    Text(StringBuilder),
}

impl Builder {
    fn new(k: Kind) -> Builder {
        match k {
            Kind::I16 => Builder::I16(Int16Builder::new()),
            Kind::I32 => Builder::I32(Int32Builder::new()),
            Kind::I64 => Builder::I64(Int64Builder::new()),
            Kind::F32 => Builder::F32(Float32Builder::new()),
            Kind::F64 => Builder::F64(Float64Builder::new()),
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::Decimal(p, s) => Builder::Decimal(
                Decimal128Builder::new().with_data_type(DataType::Decimal128(p, s)),
                s,
            ),
            Kind::Date => Builder::Date(Date32Builder::new()),
            Kind::Timestamp => Builder::Ts(TimestampMicrosecondBuilder::new(), false),
            Kind::TimestampTz => {
                Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC"), true)
            }
            Kind::Bytes => Builder::Bytes(BinaryBuilder::new()),
            Kind::Text => Builder::Text(StringBuilder::new()),
        }
    }

    /// Appends one value (`None` is NULL); `Err` names what did not parse.
    fn push(&mut self, v: Option<&[u8]>) -> Result<(), String> {
        let Some(raw) = v else {
            match self {
                Builder::I16(b) => b.append_null(),
                Builder::I32(b) => b.append_null(),
                Builder::I64(b) => b.append_null(),
                Builder::F32(b) => b.append_null(),
                Builder::F64(b) => b.append_null(),
                Builder::Bool(b) => b.append_null(),
                Builder::Decimal(b, _) => b.append_null(),
                Builder::Date(b) => b.append_null(),
                Builder::Ts(b, _) => b.append_null(),
                Builder::Bytes(b) => b.append_null(),
                Builder::Text(b) => b.append_null(),
            }
            return Ok(());
        };
        let text = std::str::from_utf8(raw).map_err(|_| "invalid UTF-8".to_owned())?;
        let bad = || format!("value {text:?}");
        match self {
            Builder::I16(b) => b.append_value(text.parse().map_err(|_| bad())?),
            Builder::I32(b) => b.append_value(text.parse().map_err(|_| bad())?),
            Builder::I64(b) => b.append_value(text.parse().map_err(|_| bad())?),
            Builder::F32(b) => b.append_value(text.parse().map_err(|_| bad())?),
            Builder::F64(b) => b.append_value(text.parse().map_err(|_| bad())?),
            Builder::Bool(b) => b.append_value(match text {
                "t" => true,
                "f" => false,
                _ => return Err(bad()),
            }),
            Builder::Decimal(b, s) => b.append_value(parse_decimal(text, *s).ok_or_else(bad)?),
            Builder::Date(b) => b.append_value(parse_date(text).ok_or_else(bad)?),
            Builder::Ts(b, tz) => b.append_value(parse_timestamp(text, *tz).ok_or_else(bad)?),
            Builder::Bytes(b) => b.append_value(parse_bytea(text).ok_or_else(bad)?),
            Builder::Text(b) => b.append_value(text),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Decimal(b, _) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b, _) => Arc::new(b.finish()),
            Builder::Bytes(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// The file name of a Parquet part.
pub fn file_name(shard: u32, part: u32) -> String {
    format!("shard_{shard:02}_part_{part:08}.parquet")
}

/// Where a shard's rows go as Parquet: a blocking thread that parses, batches, compresses
/// and rotates files (like `files::ShardWriter` for CSV).
pub struct ParquetShardWriter {
    tx: mpsc::Sender<Vec<Bytes>>,
    done: tokio::task::JoinHandle<io::Result<Vec<WrittenFile>>>,
}

struct Open {
    writer: ArrowWriter<File>,
    file: WrittenFile,
}

impl ParquetShardWriter {
    /// Starts the writer of `shard` of `table` under `root`; files are cut after `flush_rows`
    /// rows or once `flush_size` bytes are written, and each finished one is handed to
    /// `finished` (for upload) when given.
    pub fn start(
        root: &Path,
        table: &TableName,
        columns: &[Column],
        shard: u32,
        flush_rows: Option<u64>,
        flush_size: u64,
        finished: Option<mpsc::Sender<WrittenFile>>,
    ) -> ParquetShardWriter {
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(8);
        let dir = table_dir(root, table);
        let schema = Arc::new(schema(columns));
        let kinds: Vec<Kind> = columns.iter().map(kind_of).collect();
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let done = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let mut files = Vec::new();
            let mut current: Option<Open> = None;
            let mut builders: Vec<Builder> = kinds.iter().map(|k| Builder::new(*k)).collect();
            let mut buffered = 0usize;
            let mut part = 0u32;
            let flush = |builders: &mut Vec<Builder>, open: &mut Open| -> io::Result<()> {
                let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
                let batch =
                    RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(io::Error::other)?;
                open.writer.write(&batch).map_err(io::Error::other)
            };
            let close = |open: Open, files: &mut Vec<WrittenFile>| -> io::Result<()> {
                let file = open.writer.into_inner().map_err(io::Error::other)?;
                file.sync_all()?;
                if let Some(tx) = &finished {
                    tx.blocking_send(open.file.clone())
                        .map_err(|_| io::Error::other("the upload of finished files stopped"))?;
                }
                files.push(open.file);
                Ok(())
            };
            while let Some(rows) = rx.blocking_recv() {
                for row in rows {
                    if current.is_none() {
                        part += 1;
                        let name = file_name(shard, part);
                        let path = dir.join(&name);
                        let writer = ArrowWriter::try_new(
                            File::create(&path)?,
                            Arc::clone(&schema),
                            Some(props.clone()),
                        )
                        .map_err(io::Error::other)?;
                        current = Some(Open { writer, file: WrittenFile { path, name, rows: 0 } });
                    }
                    let fields = split_text_row(&row).map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("a COPY row of {}: {e}", names.join(", ")),
                        )
                    })?;
                    if fields.len() != builders.len() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "a COPY row has {} fields, the table {}",
                                fields.len(),
                                builders.len()
                            ),
                        ));
                    }
                    for ((b, f), name) in builders.iter_mut().zip(&fields).zip(&names) {
                        b.push(f.as_deref()).map_err(|what| {
                            io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("column {name}: {what} does not fit its Parquet type; export it as CSV (drop --format parquet)"),
                            )
                        })?;
                    }
                    buffered += 1;
                    let Some(open) = current.as_mut() else { continue };
                    open.file.rows += 1;
                    if buffered >= BATCH_ROWS {
                        flush(&mut builders, open)?;
                        buffered = 0;
                    }
                    let full = flush_rows.is_some_and(|n| open.file.rows >= n)
                        || open.writer.bytes_written() as u64 >= flush_size;
                    if full && let Some(mut open) = current.take() {
                        if buffered > 0 {
                            flush(&mut builders, &mut open)?;
                            buffered = 0;
                        }
                        close(open, &mut files)?;
                    }
                }
            }
            if let Some(mut open) = current.take() {
                if buffered > 0 {
                    flush(&mut builders, &mut open)?;
                }
                close(open, &mut files)?;
            }
            Ok(files)
        });
        ParquetShardWriter { tx, done }
    }

    /// Hands rows (COPY text lines) to the writer.
    ///
    /// # Errors
    /// When the writer thread has failed (its error comes from `finish`).
    pub async fn send(&self, rows: Vec<Bytes>) -> Result<(), ()> {
        self.tx.send(rows).await.map_err(|_| ())
    }

    /// Closes the last file and returns every file written.
    ///
    /// # Errors
    /// The first error of the writer.
    pub async fn finish(self) -> io::Result<Vec<WrittenFile>> {
        drop(self.tx);
        self.done.await.map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_rows_unescape() {
        let row = b"1\t\\N\ta\\tb\\\\c\\nd\t\\\\x00ff\t\\101\\x42\n";
        let f = split_text_row(row).unwrap();
        assert_eq!(f[0].as_deref(), Some(&b"1"[..]));
        assert_eq!(f[1], None);
        assert_eq!(f[2].as_deref(), Some(&b"a\tb\\c\nd"[..]));
        assert_eq!(f[3].as_deref(), Some(&b"\\x00ff"[..]));
        assert_eq!(f[4].as_deref(), Some(&b"AB"[..]));
        assert_eq!(split_text_row(b"").unwrap(), vec![Some(Vec::new())]);
        assert!(split_text_row(b"a\\").is_err());
    }

    #[test]
    fn values_parse_as_their_parquet_types() {
        assert_eq!(parse_decimal("-12.34", 4), Some(-123_400));
        assert_eq!(parse_decimal("99999999999999.999999", 6), Some(99_999_999_999_999_999_999));
        assert_eq!(parse_decimal("0.5", 0), None, "more digits than the scale");
        assert_eq!(parse_decimal("NaN", 2), None);
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2000-02-29"), Some(11_016));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(
            parse_date("0001-01-01 BC"),
            Some(-719_528),
            "1 BC is year 0 of the proleptic calendar"
        );
        assert_eq!(parse_date("294276-12-31"), Some(106_762_939));
        assert_eq!(parse_date("4713-01-01 BC"), Some(-2_440_550));
        assert_eq!(parse_date("infinity"), None);
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5", false), Some(1_500_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00+00", true), Some(0));
        assert_eq!(parse_timestamp("2000-02-29 12:00:00.000001", false), Some(951_825_600_000_001));
        assert_eq!(
            parse_timestamp("294276-12-31 23:59:59.999999", false),
            None,
            "beyond i64 microseconds"
        );
        assert_eq!(parse_bytea("\\x00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(parse_bytea("\\x0"), None);
        let mut b = Builder::new(Kind::F64);
        for v in ["NaN", "Infinity", "-Infinity", "-0"] {
            b.push(Some(v.as_bytes())).unwrap();
        }
        assert!(b.push(Some(b"x")).is_err());
    }
}
