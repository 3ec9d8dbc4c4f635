//! Which formatter a column's values go through: from the catalog's type when we have it,
//! otherwise from what the binlog's table map says.

use molt_schema::ColumnType;
use mysql_async::consts::ColumnType as Wire;

use super::ValueErrorKind;
use crate::binlog::BinlogColumn;

/// The formatter a column's values go through (one per target representation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind<'a> {
    /// `BOOL`: `true`/`false`.
    Bool,
    /// An integer of `bits` bits.
    Int { bits: u32, unsigned: bool },
    /// `YEAR`: 0 or 1901–2155.
    Year,
    /// `FLOAT`.
    Float4,
    /// `DOUBLE`.
    Float8,
    /// `DECIMAL`.
    Decimal,
    /// Character strings.
    Text,
    /// Byte strings; `width` for `BINARY(n)`, which the binlog logs without its zero padding.
    Bytes { width: Option<usize> },
    /// `DATE`.
    Date,
    /// `DATETIME`.
    DateTime,
    /// `TIMESTAMP`.
    Timestamp,
    /// `TIME`.
    Time,
    /// `BIT(n)`; the width when known.
    Bit(Option<u32>),
    /// `JSON`.
    Json,
    /// `ENUM` with its labels.
    Enum(&'a [String]),
    /// `SET` with its labels.
    Set(&'a [String]),
    /// MariaDB `UUID`.
    Uuid,
    /// MariaDB `INET4`.
    Inet4,
    /// MariaDB `INET6`.
    Inet6,
}

fn spatial() -> ValueErrorKind {
    ValueErrorKind::Unsupported {
        reason: "spatial columns need PostGIS on a PostgreSQL target and cannot be loaded into CockroachDB by MOLT; leave the column out or map it with --type-map-file".into(),
    }
}

/// The kind of a catalog type, for values read with queries.
pub(super) fn of_source_only(ty: &ColumnType) -> Result<Kind<'_>, ValueErrorKind> {
    let u = ty.unsigned;
    Ok(match ty.name.as_str() {
        "bool" => Kind::Bool,
        "tinyint" => Kind::Int { bits: 8, unsigned: u },
        "smallint" => Kind::Int { bits: 16, unsigned: u },
        "mediumint" => Kind::Int { bits: 24, unsigned: u },
        "int" => Kind::Int { bits: 32, unsigned: u },
        "bigint" => Kind::Int { bits: 64, unsigned: u },
        "year" => Kind::Year,
        // As the mapping does: FLOAT(p) with p > 24 is a DOUBLE.
        "float" => match ty.arg(0) {
            Some(p) if p > 24 => Kind::Float8,
            _ => Kind::Float4,
        },
        "double" => Kind::Float8,
        "decimal" => Kind::Decimal,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => Kind::Text,
        "binary" => Kind::Bytes { width: Some(ty.arg(0).unwrap_or(1) as usize) },
        "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            Kind::Bytes { width: None }
        }
        "date" => Kind::Date,
        "datetime" => Kind::DateTime,
        "timestamp" => Kind::Timestamp,
        "time" => Kind::Time,
        "bit" => Kind::Bit(Some(ty.arg(0).unwrap_or(1))),
        "json" => Kind::Json,
        "enum" => Kind::Enum(&ty.labels),
        "set" => Kind::Set(&ty.labels),
        "uuid" => Kind::Uuid,
        "inet4" => Kind::Inet4,
        "inet6" => Kind::Inet6,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => return Err(spatial()),
        other => {
            return Err(ValueErrorKind::Unsupported {
                reason: format!("no mapping for MySQL type {other}; map it with --type-map-file"),
            });
        }
    })
}

/// The kind of a catalog type for a binlog column: the catalog decides, but ENUM and SET
/// indexes are resolved with the labels the table map logged when it has them (they describe
/// the row as written).
pub(super) fn of_source<'a>(
    ty: &'a ColumnType,
    col: &'a BinlogColumn,
) -> Result<Kind<'a>, ValueErrorKind> {
    Ok(match of_source_only(ty)? {
        Kind::Enum(_) if !col.enum_labels.is_empty() => Kind::Enum(&col.enum_labels),
        Kind::Set(_) if !col.set_labels.is_empty() => Kind::Set(&col.set_labels),
        other => other,
    })
}

/// The kind the table map alone gives a column.
pub(super) fn of_binlog(col: &BinlogColumn) -> Result<Kind<'_>, ValueErrorKind> {
    let u = col.unsigned;
    Ok(match col.column_type {
        Wire::MYSQL_TYPE_TINY => Kind::Int { bits: 8, unsigned: u },
        Wire::MYSQL_TYPE_SHORT => Kind::Int { bits: 16, unsigned: u },
        Wire::MYSQL_TYPE_INT24 => Kind::Int { bits: 24, unsigned: u },
        Wire::MYSQL_TYPE_LONG => Kind::Int { bits: 32, unsigned: u },
        Wire::MYSQL_TYPE_LONGLONG => Kind::Int { bits: 64, unsigned: u },
        Wire::MYSQL_TYPE_YEAR => Kind::Year,
        Wire::MYSQL_TYPE_FLOAT => Kind::Float4,
        Wire::MYSQL_TYPE_DOUBLE => Kind::Float8,
        Wire::MYSQL_TYPE_DECIMAL | Wire::MYSQL_TYPE_NEWDECIMAL => Kind::Decimal,
        Wire::MYSQL_TYPE_VARCHAR
        | Wire::MYSQL_TYPE_VAR_STRING
        | Wire::MYSQL_TYPE_STRING
        | Wire::MYSQL_TYPE_TINY_BLOB
        | Wire::MYSQL_TYPE_MEDIUM_BLOB
        | Wire::MYSQL_TYPE_LONG_BLOB
        | Wire::MYSQL_TYPE_BLOB => {
            if col.is_binary() {
                Kind::Bytes { width: fixed_width(col) }
            } else {
                Kind::Text
            }
        }
        Wire::MYSQL_TYPE_DATE | Wire::MYSQL_TYPE_NEWDATE => Kind::Date,
        Wire::MYSQL_TYPE_DATETIME | Wire::MYSQL_TYPE_DATETIME2 => Kind::DateTime,
        Wire::MYSQL_TYPE_TIMESTAMP | Wire::MYSQL_TYPE_TIMESTAMP2 => Kind::Timestamp,
        Wire::MYSQL_TYPE_TIME | Wire::MYSQL_TYPE_TIME2 => Kind::Time,
        Wire::MYSQL_TYPE_BIT => Kind::Bit(bit_width(col)),
        Wire::MYSQL_TYPE_JSON => Kind::Json,
        Wire::MYSQL_TYPE_ENUM => Kind::Enum(&col.enum_labels),
        Wire::MYSQL_TYPE_SET => Kind::Set(&col.set_labels),
        Wire::MYSQL_TYPE_GEOMETRY => return Err(spatial()),
        other => {
            return Err(ValueErrorKind::Unsupported {
                reason: format!(
                    "the binlog type {} has no mapping; map the column with --type-map-file",
                    wire_name(other)
                ),
            });
        }
    })
}

/// The declared byte length of a `MYSQL_TYPE_STRING` column (`CHAR(n)`/`BINARY(n)`), from
/// its table-map metadata, decoded as `mysql_common` does.
pub(super) fn fixed_width(col: &BinlogColumn) -> Option<usize> {
    if col.column_type != Wire::MYSQL_TYPE_STRING {
        return None;
    }
    let b0 = usize::from(*col.metadata.first()?);
    let b1 = usize::from(*col.metadata.get(1)?);
    if b0 == 0 {
        // Two little-endian bytes of length.
        return Some(b0 | (b1 << 8));
    }
    Some(if (b0 & 0x30) != 0x30 { b1 | (((b0 & 0x30) ^ 0x30) << 4) } else { b1 })
}

/// The width of a `BIT(n)` column from its table-map metadata (bits % 8, bytes).
fn bit_width(col: &BinlogColumn) -> Option<u32> {
    let bits = u32::from(*col.metadata.first()?);
    let bytes = u32::from(*col.metadata.get(1)?);
    Some(bytes * 8 + bits)
}

/// `MYSQL_TYPE_TIME2` as `time2`, for messages.
fn wire_name(t: Wire) -> String {
    let name = format!("{t:?}");
    name.strip_prefix("MYSQL_TYPE_").unwrap_or(&name).to_ascii_lowercase()
}

/// The column's type for messages when there is no catalog type.
pub(super) fn binlog_type_name(col: &BinlogColumn) -> String {
    let base = wire_name(col.column_type);
    match (col.unsigned, col.is_binary()) {
        (true, _) => format!("{base} unsigned"),
        (_, true) if col.column_type != Wire::MYSQL_TYPE_BIT => format!("binary {base}"),
        _ => base,
    }
}
