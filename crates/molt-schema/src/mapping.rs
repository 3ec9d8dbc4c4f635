//! The default type mapping (MOLT's `drop-on-target-and-recreate`), per source dialect.
//!
//! Where MOLT's documented mapping loses data we map to a type that keeps it and say so in a
//! note (Oracle `DATE` keeps its time of day, Oracle `LONG` is text, MySQL unsigned integers
//! widen). Every such choice has a case in `tests/testdata/map_type/`.

use crate::sqltype::wrap_array;
use crate::{
    ColumnType, EnumType, SchemaError, SourceDialect, SqlType, Table, TableName, TargetDialect,
    TypeMapFile,
};

/// A mapped type and what the user should know about the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The target type.
    pub ty: SqlType,
    /// Warnings: precision or range the target handles differently, dropped attributes.
    pub notes: Vec<String>,
    /// For an inline enum (MySQL `ENUM(…)`): its labels; [`map_table`] names and creates it.
    pub inline_enum: Option<Vec<String>>,
}

impl Mapped {
    fn plain(ty: SqlType) -> Self {
        Mapped { ty, notes: Vec::new(), inline_enum: None }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// A column of a table to create on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetColumn {
    /// Name, exact case.
    pub name: String,
    /// Target type.
    pub ty: SqlType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Notes about this column's mapping.
    pub notes: Vec<String>,
}

/// A table to create on the target: only columns, NOT NULL and the primary key, as MOLT's
/// `drop-on-target-and-recreate` does (other constraints are re-added after the load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetTable {
    /// Name on the target.
    pub name: TableName,
    /// Columns in source order.
    pub columns: Vec<TargetColumn>,
    /// Primary-key columns in key order.
    pub primary_key: Vec<String>,
    /// Enum types the table needs, to be created first.
    pub enums: Vec<EnumType>,
}

fn unsupported(dialect: SourceDialect, ty: &ColumnType, reason: impl Into<String>) -> SchemaError {
    SchemaError::Unsupported { spelling: ty.spelling.clone(), dialect, reason: reason.into() }
}

/// Maps one source column type to a target type.
///
/// # Errors
/// [`SchemaError::Unsupported`] for a type the target cannot hold, with what to do instead.
pub fn map_type(
    from: SourceDialect,
    ty: &ColumnType,
    to: TargetDialect,
) -> Result<Mapped, SchemaError> {
    match from {
        SourceDialect::Postgres => map_postgres(ty, to),
        SourceDialect::Mysql => map_mysql(ty, to),
        SourceDialect::Oracle => map_oracle(ty, to),
    }
}

/// Maps every column of `table`, applying `type_map` overrides, for a table named
/// `target_name` on the target (after any renames).
///
/// # Errors
/// [`SchemaError::Column`] naming the first column that cannot be mapped.
pub fn map_table(
    from: SourceDialect,
    table: &Table,
    target_name: &TableName,
    to: TargetDialect,
    type_map: Option<&TypeMapFile>,
) -> Result<TargetTable, SchemaError> {
    let mut columns = Vec::with_capacity(table.columns.len());
    let mut enums: Vec<EnumType> = Vec::new();
    for col in &table.columns {
        let wrap = |e: SchemaError| SchemaError::Column {
            table: table.name.clone(),
            column: col.name.clone(),
            source: Box::new(e),
        };
        let mapped = match type_map.and_then(|m| m.override_for(&table.name, &col.name, &col.ty)) {
            Some(spelling) => {
                let ty = SqlType::parse_crdb(spelling).map_err(wrap)?;
                Mapped::plain(ty).note(format!("type set by --type-map-file to {spelling}"))
            }
            None => map_type(from, &col.ty, to).map_err(wrap)?,
        };
        let ty = match (&mapped.inline_enum, mapped.ty) {
            (Some(labels), _) => {
                let name = TableName::new(
                    target_name.schema.clone(),
                    format!("{}_{}_enum", target_name.table, col.name),
                );
                enums.push(EnumType { name: name.clone(), labels: labels.clone() });
                SqlType::Enum(name)
            }
            (None, ty) => {
                let element = match &ty {
                    SqlType::Array(inner) => inner.as_ref(),
                    other => other,
                };
                if let SqlType::Enum(name) = element
                    && !col.ty.labels.is_empty()
                    && !enums.iter().any(|e| &e.name == name)
                {
                    enums.push(EnumType { name: name.clone(), labels: col.ty.labels.clone() });
                }
                ty
            }
        };
        columns.push(TargetColumn {
            name: col.name.clone(),
            ty,
            nullable: col.nullable,
            notes: mapped.notes,
        });
    }
    Ok(TargetTable {
        name: target_name.clone(),
        columns,
        primary_key: table.primary_key.clone(),
        enums,
    })
}

/// PostgreSQL to CockroachDB keeps the type (MOLT: "the type with the same OID"); to
/// PostgreSQL every type passes through.
pub(crate) fn map_postgres(ty: &ColumnType, to: TargetDialect) -> Result<Mapped, SchemaError> {
    let d = SourceDialect::Postgres;
    let a0 = ty.arg(0);
    let base = match ty.name.as_str() {
        _ if !ty.labels.is_empty() && ty.name != "geometry" && ty.name != "geography" => {
            let name = ty.user_type.clone().unwrap_or_else(|| TableName::new("", ty.name.clone()));
            SqlType::Enum(name)
        }
        "bool" => SqlType::Bool,
        "int2" => SqlType::Int2,
        "int4" => SqlType::Int4,
        "int8" => SqlType::Int8,
        "float4" => SqlType::Float4,
        "float8" => SqlType::Float8,
        "float" => match a0 {
            Some(p) if p <= 24 => SqlType::Float4,
            _ => SqlType::Float8,
        },
        "numeric" => SqlType::Decimal { precision: a0, scale: ty.arg(1) },
        "text" => SqlType::Text,
        "varchar" => a0.map_or(SqlType::Text, SqlType::Varchar),
        "bpchar" => SqlType::Char(a0.unwrap_or(1)),
        "bytea" => SqlType::Bytes,
        "date" => SqlType::Date,
        "time" => SqlType::Time(a0),
        "timetz" => SqlType::TimeTz(a0),
        "timestamp" => SqlType::Timestamp(a0),
        "timestamptz" => SqlType::TimestampTz(a0),
        n if n.starts_with("interval") => SqlType::Interval,
        "uuid" => SqlType::Uuid,
        "json" => SqlType::Json,
        "jsonb" => SqlType::Jsonb,
        "inet" => SqlType::Inet,
        "cidr" if to == TargetDialect::Cockroach => {
            let m = Mapped::plain(wrap_array(SqlType::Inet, ty.array_dims)?);
            return Ok(m.note("CockroachDB has no CIDR type; values load as INET"));
        }
        "bit" => SqlType::Bit(a0.unwrap_or(1)),
        "varbit" => SqlType::VarBit(a0),
        "oid" => SqlType::Oid,
        "citext" if to == TargetDialect::Cockroach => {
            let m = Mapped::plain(wrap_array(SqlType::Text, ty.array_dims)?);
            return Ok(
                m.note("case-insensitive comparison of CITEXT is not kept; values load as STRING")
            );
        }
        "geometry" | "geography" if to == TargetDialect::Cockroach => {
            let shape = match (ty.labels.first(), ty.arg(0)) {
                (Some(shape), Some(srid)) => Some(format!("{shape},{srid}")),
                (shape, _) => shape.cloned(),
            };
            let t = if ty.name == "geometry" {
                SqlType::Geometry(shape)
            } else {
                SqlType::Geography(shape)
            };
            let m = Mapped::plain(wrap_array(t, ty.array_dims)?);
            return Ok(m.note("spatial columns can be created but fetch cannot load their data (a MOLT limitation)"));
        }
        _ if to == TargetDialect::Postgres => SqlType::Verbatim(ty.spelling.clone()),
        other => {
            return Err(unsupported(
                d,
                ty,
                format!(
                    "CockroachDB has no {other} type; map it with --type-map-file (for example to STRING)"
                ),
            ));
        }
    };
    if to == TargetDialect::Postgres && matches!(base, SqlType::Verbatim(_)) {
        return Ok(Mapped::plain(base));
    }
    Ok(Mapped::plain(wrap_array(base, ty.array_dims)?))
}

const UNSIGNED_NOTE: &str = "unsigned dropped; add CHECK (col >= 0) to keep it";

fn map_mysql(ty: &ColumnType, to: TargetDialect) -> Result<Mapped, SchemaError> {
    let d = SourceDialect::Mysql;
    let a0 = ty.arg(0);
    let u = ty.unsigned;
    let signed_or_note = |t: SqlType| {
        let m = Mapped::plain(t);
        if u { m.note(UNSIGNED_NOTE) } else { m }
    };
    let m = match ty.name.as_str() {
        "bool" => Mapped::plain(SqlType::Bool),
        "tinyint" => signed_or_note(SqlType::Int2),
        "smallint" if u => signed_or_note(SqlType::Int4).note("SMALLINT UNSIGNED widened to INT4 to hold 0..65535"),
        "smallint" => Mapped::plain(SqlType::Int2),
        "mediumint" => signed_or_note(SqlType::Int4),
        "int" if u => signed_or_note(SqlType::Int8).note("INT UNSIGNED widened to INT8 to hold 0..4294967295"),
        "int" => Mapped::plain(SqlType::Int4),
        "bigint" if u => Mapped::plain(SqlType::Decimal { precision: Some(20), scale: Some(0) })
            .note("BIGINT UNSIGNED stored as DECIMAL(20,0) to hold values above 2^63-1"),
        "bigint" => Mapped::plain(SqlType::Int8),
        "decimal" => {
            let (p, s) = (a0.unwrap_or(10), ty.arg(1).unwrap_or(0));
            if s > p {
                return Err(unsupported(d, ty, format!("scale {s} is larger than precision {p}")));
            }
            signed_or_note(SqlType::Decimal { precision: Some(p), scale: Some(s) })
        }
        "float" => match a0 {
            Some(p) if p > 24 => signed_or_note(SqlType::Float8),
            _ => signed_or_note(SqlType::Float4),
        },
        "double" => signed_or_note(SqlType::Float8),
        "char" | "varchar" => Mapped::plain(SqlType::Varchar(a0.unwrap_or(1))),
        "tinytext" | "text" | "mediumtext" | "longtext" => Mapped::plain(SqlType::Text),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            Mapped::plain(SqlType::Bytes)
        }
        "date" => Mapped::plain(SqlType::Date),
        "datetime" => Mapped::plain(SqlType::Timestamp(a0)),
        "timestamp" => Mapped::plain(SqlType::TimestampTz(a0)),
        "time" => Mapped::plain(SqlType::Time(a0)).note(
            "MySQL TIME ranges -838:59:59..838:59:59; values outside 00:00:00..24:00:00 will not load (map the column to INTERVAL with --type-map-file if it holds durations)",
        ),
        "year" => Mapped::plain(SqlType::Int2).note("YEAR loaded as a number"),
        "bit" => Mapped::plain(SqlType::VarBit(Some(a0.unwrap_or(1)))),
        "json" => Mapped::plain(SqlType::Jsonb),
        "enum" => {
            if ty.labels.is_empty() {
                return Err(unsupported(d, ty, "ENUM without values"));
            }
            Mapped {
                ty: SqlType::Enum(TableName::new("", "enum")),
                notes: Vec::new(),
                inline_enum: Some(ty.labels.clone()),
            }
        }
        "set" => Mapped::plain(SqlType::Text).note("SET values load as comma-separated text"),
        "uuid" => Mapped::plain(SqlType::Uuid),
        "inet4" | "inet6" => Mapped::plain(SqlType::Inet),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => {
            if to == TargetDialect::Postgres {
                return Err(unsupported(d, ty, "spatial types need PostGIS on a PostgreSQL target, which this toolkit does not create"));
            }
            let shape = match ty.name.as_str() {
                "geometry" => None,
                "geomcollection" => Some("GEOMETRYCOLLECTION".to_owned()),
                other => Some(other.to_uppercase()),
            };
            Mapped::plain(SqlType::Geometry(shape))
                .note("spatial columns can be created but fetch cannot load their data (a MOLT limitation)")
        }
        other => {
            return Err(unsupported(d, ty, format!("no mapping for MySQL type {other}; map it with --type-map-file")));
        }
    };
    Ok(m)
}

fn map_oracle(ty: &ColumnType, _to: TargetDialect) -> Result<Mapped, SchemaError> {
    let d = SourceDialect::Oracle;
    let a0 = ty.arg(0);
    let byte_note = |m: Mapped| {
        if ty.length_semantics.as_deref() == Some("byte") {
            m.note("length is in bytes on Oracle (BYTE semantics); the target counts characters")
        } else {
            m
        }
    };
    let m = match ty.name.as_str() {
        "char" | "nchar" => byte_note(Mapped::plain(SqlType::Char(a0.unwrap_or(1)))),
        "varchar" | "varchar2" | "nvarchar2" => {
            byte_note(Mapped::plain(a0.map_or(SqlType::Text, SqlType::Varchar)))
        }
        "string" | "clob" | "nclob" | "rowid" | "urowid" => Mapped::plain(SqlType::Text),
        "long" => Mapped::plain(SqlType::Text)
            .note("Oracle LONG holds text up to 2 GB; mapped to STRING (MOLT's INT8 would fail to load it)"),
        "xmltype" => Mapped::plain(SqlType::Text).note("XMLTYPE loaded as text"),
        "smallint" => Mapped::plain(SqlType::Int2),
        "integer" | "simple_integer" => Mapped::plain(SqlType::Int4),
        "binary_float" => Mapped::plain(SqlType::Float4),
        "real" => Mapped::plain(SqlType::Float8)
            .note("Oracle REAL is FLOAT(63); mapped to FLOAT8 to keep its precision (MOLT maps it to FLOAT4)"),
        "float" => match a0 {
            Some(p) if p <= 24 => Mapped::plain(SqlType::Float4),
            None => Mapped::plain(SqlType::Float8).note("FLOAT without precision is FLOAT(126) on Oracle; mapped to FLOAT8"),
            Some(_) => Mapped::plain(SqlType::Float8),
        },
        "binary_double" | "double" | "double precision" => Mapped::plain(SqlType::Float8),
        "number" | "dec" | "decimal" | "numeric" => {
            let (p, s) = (a0, ty.arg(1));
            if let (Some(p), Some(s)) = (p, s)
                && s > p
            {
                return Err(unsupported(d, ty, format!("scale {s} is larger than precision {p}")));
            }
            // NUMBER(p,0) is DECIMAL(p); a scale only matters when it is positive.
            Mapped::plain(SqlType::Decimal { precision: p, scale: s.filter(|&s| s > 0) })
        }
        "date" => Mapped::plain(SqlType::Timestamp(Some(0)))
            .note("Oracle DATE carries a time of day; mapped to TIMESTAMP(0) so it is kept (MOLT maps it to DATE)"),
        "timestamp" => Mapped::plain(SqlType::Timestamp(a0)),
        "timestamptz" | "timestampltz" => Mapped::plain(SqlType::TimestampTz(a0)),
        "interval year to month" | "interval day to second" => Mapped::plain(SqlType::Interval),
        "blob" | "raw" | "long raw" | "bfile" => Mapped::plain(SqlType::Bytes),
        "json" => Mapped::plain(SqlType::Jsonb),
        "boolean" => Mapped::plain(SqlType::Bool),
        "sdo_geometry" => Mapped::plain(SqlType::Geometry(None))
            .note("spatial columns can be created but fetch cannot load their data (a MOLT limitation)"),
        other => {
            return Err(unsupported(
                d,
                ty,
                format!("{other} is a user-defined, collection or unknown Oracle type; these are not supported"),
            ));
        }
    };
    Ok(m)
}
