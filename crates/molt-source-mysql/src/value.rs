//! MySQL/MariaDB values as the exact text the target (PostgreSQL or CockroachDB) is written
//! with.
//!
//! Values are bound as text and cast by the target to the column's mapped type
//! (`unnest($1::text[])::int8`), so each text is valid input for the type
//! [`molt_schema::map_type`] picks *and* denotes exactly the source value. Two entry points
//! share one formatter per type, so a row fetched and the same row replicated are written
//! with the same bytes:
//!
//! - [`binlog_text`] (and [`binlog_text_in`], which also knows the column's character set)
//!   for a row-event value as `mysql_common` decodes it ([`BinlogValue`]), used by
//!   `replicator mylogical`;
//! - [`value_text`] for a value read with a query (text or binary protocol), used by `fetch`.
//!
//! Both return `Ok(None)` for SQL NULL. [`apply_json_diff`] rebuilds a MySQL 8 JSON column from
//! its before image and a partial update.
//!
//! # What each type becomes
//!
//! | source | text | decision |
//! |---|---|---|
//! | integers, `YEAR` | decimal digits | `BIGINT UNSIGNED` up to 18446744073709551615 (target `DECIMAL(20,0)`); `YEAR` 0000 is `0`, 1901–2155 as is |
//! | `BOOL` (only when the catalog spells it so) | `true`/`false` | anything but 0 or 1 is an error |
//! | `FLOAT` | shortest text that parses back to the same `f32` | read with the text protocol the server rounds `FLOAT` to 6 digits, so [`value_text`] refuses text and wants the binary protocol's `Value::Float` |
//! | `DOUBLE` | shortest text that parses back to the same `f64` | `NaN`, `Infinity`, `-0` spelled as PostgreSQL reads them |
//! | `DECIMAL` | the exact digits, scale kept | leading zeros and the sign of zero dropped |
//! | `CHAR`, `VARCHAR`, `TEXT`, `ENUM`/`SET` labels | UTF-8 text | binlog bytes are in the column's character set: utf8mb3/utf8mb4/ascii are checked, latin1 is decoded as MySQL's latin1 (cp1252 with the five holes as C1 controls), others are refused; U+0000 is refused (PostgreSQL text cannot hold it) |
//! | `BINARY`, `VARBINARY`, `BLOB` | `\x` + lowercase hex (bytea) | `BINARY(n)` is padded with zero bytes to `n` (the binlog strips them, `SELECT` does not) |
//! | `DATE` | `YYYY-MM-DD` | zero dates (`0000-00-00`, `2020-00-15`) and year 0 are refused: the target has no such dates |
//! | `DATETIME(fsp)` | `YYYY-MM-DD HH:MM:SS[.ffffff]` | microseconds exact, trailing zeros of the fraction dropped (as PostgreSQL prints them) |
//! | `TIMESTAMP(fsp)` | `YYYY-MM-DD HH:MM:SS[.ffffff]+00` | the UTC instant. The binlog carries seconds since the epoch; [`value_text`] assumes the session's `time_zone` is `'+00:00'` (the reader must set it) |
//! | `TIME(fsp)` | `HH:MM:SS[.ffffff]` | `00:00:00`–`24:00:00` only; negative or longer values are refused with the INTERVAL text in the error ([`ValueErrorKind::TimeOutOfRange`]) |
//! | `BIT(n)` | exactly `n` binary digits | for `VARBIT(n)` |
//! | `JSON` | JSON text | MariaDB's text is passed through after checking it (PostgreSQL's `jsonb` refuses `\u0000` and lone surrogates); MySQL 8's binary JSON is rendered from `mysql_common`'s DOM (decimals keep their digits); a partial update is [`ValueErrorKind::JsonDiff`] |
//! | `ENUM` | the label | index 0 (the `''` MySQL stores for an invalid value) is refused: it is no label of the target's enum |
//! | `SET` | labels in declaration order joined by `,` | bits beyond the labels are refused |
//! | `UUID` (MariaDB) | `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` | the binlog carries the 16 bytes in text order (checked live for versions 0–7), zero bytes stripped at the end |
//! | `INET6`, `INET4` (MariaDB) | what MariaDB's `SELECT` prints | longest run of zero groups (even one) as `::`, IPv4-mapped as `::ffff:1.2.3.4`, IPv4-compatible as `::1.2.3.4` |
//! | spatial types | — | refused: the mapping refuses them on PostgreSQL and MOLT cannot load them on CockroachDB |
//!
//! # The column's type: binlog versus catalog
//!
//! The binlog describes a column only by its storage: MariaDB's `UUID` and `INET6` look like
//! `BINARY(16)`, `INET4` like `BINARY(4)`, `JSON` like `LONGTEXT`, and `BOOL` like `TINYINT`.
//! [`binlog_text`] therefore takes the column's type from the source catalog
//! (`source_type`, as [`crate::MysqlCatalog`] reads it) and uses the binlog's description only
//! to decode the raw value. Without it, the column is formatted by what the binlog says:
//! those MariaDB types come out as bytea hex or plain text, which the target's `UUID`, `INET`
//! or `JSONB` column will refuse or misread, so the replicator must pass the catalog type.
//!
//! Integers are reinterpreted with the catalog's signedness (the table map's without a
//! catalog type), which also corrects two decoding faults of `mysql_common` 0.37.3: a signed
//! `MEDIUMINT` arrives without sign extension (`-1` as `16777215`), and without
//! `binlog_row_metadata=FULL` every integer is decoded as signed. Both are the same 8–64
//! stored bits, so the reinterpretation is exact. ENUM and SET numbers are resolved with the
//! table map's labels when it logged them, the catalog's otherwise.
//!
//! # Reading for `fetch`
//!
//! [`value_text`] gives the binlog's text only when the query connection uses utf8mb4 (what
//! `mysql_async` asks for), `time_zone = '+00:00'` (`TIMESTAMP` is printed in the session's
//! zone), no `PAD_CHAR_TO_FULL_LENGTH`, and the binary protocol for `FLOAT` columns (or
//! `CAST(col AS DOUBLE)`, which is exact). MySQL 8 prints JSON as its own text and the binlog
//! carries it in binary: the two texts differ in spacing and member order but are the same
//! `jsonb` on the target.
//!
//! # Not covered here
//!
//! - `mysql_common` 0.37.3 panics (overflow) decoding a negative `TIME(1)`/`TIME(2)` with a
//!   fraction, before any value reaches this module; in release builds the value is wrong.
//! - MySQL 8's binary JSON and partial updates are checked by unit tests only: the test bed
//!   runs MariaDB.

mod charset;
mod format;
mod json;
mod kind;
mod read;

use std::fmt;

use molt_schema::ColumnType;
pub use mysql_async::binlog::jsondiff::JsonDiff;

use crate::binlog::{BinlogColumn, BinlogValue};

pub use charset::Charset;
pub use json::apply_json_diff;

/// The text of one binlog row value for the target, `None` for SQL NULL. Text is read in
/// the column's character set ([`BinlogColumn::collation`], UTF-8 when the table map sent
/// none; binary columns are bytes either way).
///
/// `source_type` is the column's type from the source catalog; see the module documentation
/// for what happens without it.
///
/// # Errors
/// A [`ValueError`] naming the column, what is wrong with the value and what to do.
pub fn binlog_text(
    col: &BinlogColumn,
    source_type: Option<&ColumnType>,
    v: &BinlogValue<'_>,
) -> Result<Option<String>, ValueError> {
    let charset = col.collation.map_or(Charset::Utf8, Charset::from_collation);
    let subject = || Subject::binlog(col, source_type);
    let kind = match source_type {
        Some(ty) => kind::of_source(ty, col),
        None => kind::of_binlog(col),
    }
    .map_err(|k| ValueError { subject: subject(), kind: k })?;
    read::binlog(&kind, col, charset, v).map_err(|k| ValueError { subject: subject(), kind: k })
}

/// The text of one value read with a query (text protocol: `Value::Bytes` in the connection's
/// character set, which must be utf8mb4; binary protocol: typed values), `None` for SQL NULL.
///
/// The reader must run with `time_zone = '+00:00'` (`TIMESTAMP` values are read as UTC),
/// without `PAD_CHAR_TO_FULL_LENGTH`, and read `FLOAT` columns with the binary protocol. The
/// text equals [`binlog_text`]'s for the same datum.
///
/// # Errors
/// A [`ValueError`] saying what is wrong and what to do; it names no column, so add it with
/// [`ValueError::in_column`].
pub fn value_text(
    source_type: &ColumnType,
    v: &mysql_async::Value,
) -> Result<Option<String>, ValueError> {
    let subject = || Subject { column: None, ty: source_type.spelling.clone() };
    let kind = kind::of_source_only(source_type)
        .map_err(|k| ValueError { subject: subject(), kind: k })?;
    read::query(&kind, v).map_err(|k| ValueError { subject: subject(), kind: k })
}

/// A value's text for a column the target holds as `interval`: a `TIME` beyond a day
/// ([`ValueErrorKind::TimeOutOfRange`]) is the duration it holds (`-838:59:59`); every other
/// result stays as it is. For a `time` column, use the result unchanged: the refusal names
/// the column and this mapping.
///
/// # Errors
/// The error of `result`, unless it is a `TIME` out of range.
pub fn as_interval(
    result: Result<Option<String>, ValueError>,
) -> Result<Option<String>, ValueError> {
    match result {
        Err(e) => match &e.kind {
            ValueErrorKind::TimeOutOfRange { interval } => Ok(Some(interval.clone())),
            _ => Err(e),
        },
        ok => ok,
    }
}

/// A value that cannot be written to the target as it is, with the column it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject}: {kind}")]
pub struct ValueError {
    subject: Subject,
    kind: ValueErrorKind,
}

impl ValueError {
    /// What is wrong with the value.
    pub fn kind(&self) -> &ValueErrorKind {
        &self.kind
    }

    /// The column's name, when known.
    pub fn column(&self) -> Option<&str> {
        self.subject.column.as_deref()
    }

    /// The same error naming `column` (for [`value_text`], which does not know it).
    #[must_use]
    pub fn in_column(mut self, column: impl Into<String>) -> Self {
        self.subject.column = Some(column.into());
        self
    }
}

/// Which column an error is about: its name (when known) and its type as the source spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    column: Option<String>,
    ty: String,
}

impl Subject {
    fn binlog(col: &BinlogColumn, source_type: Option<&ColumnType>) -> Subject {
        let ty = match source_type {
            Some(t) => t.spelling.clone(),
            None => kind::binlog_type_name(col),
        };
        Subject { column: (!col.name.is_empty()).then(|| col.name.clone()), ty }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "column {c} ({})", self.ty),
            None => write!(f, "a {} value", self.ty),
        }
    }
}

/// What is wrong with a value; each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueErrorKind {
    /// A date with a zero year, month or day (`0000-00-00`, `2020-00-15`, `0000-01-01`), which
    /// MySQL keeps without `NO_ZERO_DATE`/`NO_ZERO_IN_DATE` and the target cannot store.
    #[error(
        "holds the date {value}, which PostgreSQL and CockroachDB cannot store; update those rows on the source (to NULL or a real date) and add NO_ZERO_DATE,NO_ZERO_IN_DATE to sql_mode, or map the column to STRING with --type-map-file"
    )]
    ZeroDate {
        /// The value as MySQL prints it.
        value: String,
    },
    /// A date or time that does not exist (`2020-02-31` under `ALLOW_INVALID_DATES`).
    #[error(
        "holds {value}, which is not a valid date or time on the target; correct those rows on the source"
    )]
    InvalidDate {
        /// The value as read.
        value: String,
    },
    /// A `TIME` outside `00:00:00`–`24:00:00`, which the target's `TIME` cannot hold.
    #[error(
        "holds {interval}, outside TIME's 00:00:00..24:00:00 on the target; map the column to INTERVAL with --type-map-file if it holds durations"
    )]
    TimeOutOfRange {
        /// The value as `INTERVAL` input (`-838:59:59.999999`), for a caller writing a column
        /// mapped to `INTERVAL`.
        interval: String,
    },
    /// Text holding U+0000, which PostgreSQL text and `jsonb` cannot store.
    #[error(
        "holds a NUL character (U+0000), which PostgreSQL text cannot store; remove it on the source (REPLACE(col, CHAR(0), '')) or make the column binary (VARBINARY/BLOB)"
    )]
    Nul,
    /// Text bytes that are not valid in the column's character set.
    #[error(
        "holds bytes that are not valid {charset}; correct those rows on the source, or make the column binary (VARBINARY/BLOB) if it holds bytes"
    )]
    InvalidText {
        /// The character set the bytes were read as.
        charset: &'static str,
    },
    /// Text in a character set we do not convert.
    #[error(
        "uses collation id {collation}, whose character set is not supported; convert the column to utf8mb4 (ALTER TABLE … CONVERT TO CHARACTER SET utf8mb4)"
    )]
    UnsupportedCharset {
        /// The collation id from the table map.
        collation: u16,
    },
    /// An `ENUM` index that names no label: 0 is the `''` MySQL stores for an invalid value.
    #[error(
        "holds ENUM index {index}, which is none of its {labels} labels (0 is the '' MySQL stores for an invalid value); update those rows on the source to a label or NULL"
    )]
    EnumIndex {
        /// The index from the binlog (1 is the first label).
        index: i64,
        /// How many labels the column has.
        labels: usize,
    },
    /// A label (ENUM value or SET member) that is not one of the column's labels.
    #[error(
        "holds {label:?}, which is not one of its labels (the empty string is what MySQL stores for an invalid ENUM value); update those rows on the source"
    )]
    UnknownLabel {
        /// The label as read.
        label: String,
    },
    /// A `SET` bitmask with bits beyond its labels.
    #[error(
        "holds SET bitmask {mask:#x}, with members beyond its {labels} labels; the table was altered since its table map: re-read the schema"
    )]
    SetBits {
        /// The bitmask.
        mask: u64,
        /// How many labels the column has.
        labels: usize,
    },
    /// A `BIT` value wider than the column.
    #[error("holds a {bits}-bit value, wider than BIT({width})")]
    BitWidth {
        /// Significant bits of the value.
        bits: usize,
        /// The column's width.
        width: u32,
    },
    /// A MySQL 8 partial JSON update: the after image is a diff, not a document.
    #[error(
        "is a partial JSON update (binlog_row_value_options=PARTIAL_JSON_UPDATES): apply it to the before image with apply_json_diff, or set binlog_row_value_options='' on the source"
    )]
    JsonDiff,
    /// JSON the target's `jsonb` would refuse, or a diff that does not apply.
    #[error("holds JSON the target cannot store: {reason}")]
    Json {
        /// What is wrong.
        reason: String,
    },
    /// A `FLOAT` read with the text protocol, which rounds it to 6 digits.
    #[error(
        "was read as text, which the server rounds to 6 digits; read FLOAT columns with the binary protocol (a prepared statement)"
    )]
    LossyFloat,
    /// A value outside the range of its type, or not exactly representable in it.
    #[error("holds {value}, outside the range of its type")]
    OutOfRange {
        /// The value as read.
        value: String,
    },
    /// A value whose shape does not fit the column's type (binlog and catalog disagree).
    #[error(
        "holds {value}, which is not a value of this type; the table was altered since the schema was read: re-read it"
    )]
    Unexpected {
        /// The value, abbreviated.
        value: String,
    },
    /// A type this toolkit cannot load.
    #[error("cannot be loaded: {reason}")]
    Unsupported {
        /// Why, and what to do.
        reason: String,
    },
}

#[cfg(test)]
mod tests;
