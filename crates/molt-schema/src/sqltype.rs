//! Type spellings: parsing what sources write, and the target type model.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ColumnType, SchemaError, SourceDialect, TableName, TargetDialect};

/// A target column type, neutral between CockroachDB and PostgreSQL; [`SqlType::render`]
/// spells it for one of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SqlType {
    /// Boolean.
    Bool,
    /// 16-bit integer.
    Int2,
    /// 32-bit integer.
    Int4,
    /// 64-bit integer.
    Int8,
    /// 32-bit float.
    Float4,
    /// 64-bit float.
    Float8,
    /// Exact decimal, optionally with precision and scale.
    Decimal {
        /// Total digits.
        precision: Option<u32>,
        /// Digits after the point.
        scale: Option<u32>,
    },
    /// Unbounded text (CockroachDB `STRING`, PostgreSQL `text`).
    Text,
    /// Text limited to n characters.
    Varchar(u32),
    /// Blank-padded text of n characters.
    Char(u32),
    /// Binary string.
    Bytes,
    /// Calendar date.
    Date,
    /// Time of day, with fractional-second precision.
    Time(Option<u32>),
    /// Time of day with zone.
    TimeTz(Option<u32>),
    /// Timestamp without zone.
    Timestamp(Option<u32>),
    /// Timestamp with zone.
    TimestampTz(Option<u32>),
    /// Interval.
    Interval,
    /// UUID.
    Uuid,
    /// JSON text (PostgreSQL `json`; CockroachDB stores it as `JSONB`).
    Json,
    /// Binary JSON.
    Jsonb,
    /// IPv4/IPv6 address with optional netmask.
    Inet,
    /// Fixed-length bit string.
    Bit(u32),
    /// Variable-length bit string.
    VarBit(Option<u32>),
    /// A user-defined enum type.
    Enum(TableName),
    /// One-dimensional array.
    Array(Box<SqlType>),
    /// Object identifier.
    Oid,
    /// Spatial geometry, optionally with a shape (`POINT`).
    Geometry(Option<String>),
    /// Spatial geography.
    Geography(Option<String>),
    /// A PostgreSQL type passed through verbatim to a PostgreSQL target.
    Verbatim(String),
}

fn prec(base: &str, p: Option<u32>) -> String {
    match p {
        Some(p) => format!("{base}({p})"),
        None => base.to_owned(),
    }
}

impl SqlType {
    /// Spells the type for `dialect`.
    pub fn render(&self, dialect: TargetDialect) -> String {
        let crdb = dialect == TargetDialect::Cockroach;
        let pick = |c: &str, p: &str| if crdb { c.to_owned() } else { p.to_owned() };
        match self {
            SqlType::Bool => pick("BOOL", "boolean"),
            SqlType::Int2 => pick("INT2", "smallint"),
            SqlType::Int4 => pick("INT4", "integer"),
            SqlType::Int8 => pick("INT8", "bigint"),
            SqlType::Float4 => pick("FLOAT4", "real"),
            SqlType::Float8 => pick("FLOAT8", "double precision"),
            SqlType::Decimal { precision, scale } => {
                let base = pick("DECIMAL", "numeric");
                match (precision, scale) {
                    (Some(p), Some(s)) => format!("{base}({p},{s})"),
                    (Some(p), None) => format!("{base}({p})"),
                    _ => base,
                }
            }
            SqlType::Text => pick("STRING", "text"),
            SqlType::Varchar(n) => format!("{}({n})", pick("VARCHAR", "varchar")),
            SqlType::Char(n) => format!("{}({n})", pick("CHAR", "char")),
            SqlType::Bytes => pick("BYTES", "bytea"),
            SqlType::Date => pick("DATE", "date"),
            SqlType::Time(p) => prec(&pick("TIME", "time"), *p),
            SqlType::TimeTz(p) => {
                if crdb {
                    prec("TIMETZ", *p)
                } else {
                    format!("{} with time zone", prec("time", *p))
                }
            }
            SqlType::Timestamp(p) => prec(&pick("TIMESTAMP", "timestamp"), *p),
            SqlType::TimestampTz(p) => {
                if crdb {
                    prec("TIMESTAMPTZ", *p)
                } else {
                    format!("{} with time zone", prec("timestamp", *p))
                }
            }
            SqlType::Interval => pick("INTERVAL", "interval"),
            SqlType::Uuid => pick("UUID", "uuid"),
            SqlType::Json => pick("JSONB", "json"),
            SqlType::Jsonb => pick("JSONB", "jsonb"),
            SqlType::Inet => pick("INET", "inet"),
            SqlType::Bit(n) => format!("{}({n})", pick("BIT", "bit")),
            SqlType::VarBit(n) => prec(&pick("VARBIT", "varbit"), *n),
            SqlType::Enum(name) => name.quoted(),
            SqlType::Array(inner) => format!("{}[]", inner.render(dialect)),
            SqlType::Oid => pick("OID", "oid"),
            SqlType::Geometry(shape) => match shape {
                Some(s) => format!("{}({})", pick("GEOMETRY", "geometry"), s.to_uppercase()),
                None => pick("GEOMETRY", "geometry"),
            },
            SqlType::Geography(shape) => match shape {
                Some(s) => format!("{}({})", pick("GEOGRAPHY", "geography"), s.to_uppercase()),
                None => pick("GEOGRAPHY", "geography"),
            },
            SqlType::Verbatim(t) => t.clone(),
        }
    }

    /// Parses a CockroachDB type spelling, as written in `--type-map-file` (`INT2`, `STRING`,
    /// `DECIMAL(10,2)`, `TIMESTAMPTZ`, `varchar(20)`); `INT`/`INTEGER` mean `INT8` there.
    ///
    /// # Errors
    /// [`SchemaError::TypeSyntax`] or [`SchemaError::Unsupported`] for names CockroachDB
    /// does not have.
    pub fn parse_crdb(spelling: &str) -> Result<SqlType, SchemaError> {
        let ct = parse_column_type(SourceDialect::Postgres, spelling)?;
        let written = spelling.trim().to_ascii_lowercase();
        let written = written.split(['(', '[']).next().unwrap_or_default().trim();
        let base = match written {
            // CockroachDB's own names and its INT = INT8 rule.
            "string" => Some(match ct.arg(0) {
                Some(n) => SqlType::Varchar(n),
                None => SqlType::Text,
            }),
            "bytes" | "blob" => Some(SqlType::Bytes),
            "int" | "integer" | "int64" => Some(SqlType::Int8),
            "int4" => Some(SqlType::Int4),
            "int32" => Some(SqlType::Int4),
            "int16" => Some(SqlType::Int2),
            "float" | "float64" => Some(SqlType::Float8),
            "float32" => Some(SqlType::Float4),
            "json" => Some(SqlType::Jsonb),
            _ => None,
        };
        let ty = match base {
            Some(t) => wrap_array(t, ct.array_dims)?,
            None => crate::mapping::map_postgres(&ct, TargetDialect::Cockroach)?.ty,
        };
        Ok(ty)
    }
}

pub(crate) fn wrap_array(ty: SqlType, dims: u8) -> Result<SqlType, SchemaError> {
    match dims {
        0 => Ok(ty),
        1 => Ok(SqlType::Array(Box::new(ty))),
        _ => Err(SchemaError::Unsupported {
            spelling: format!(
                "{}{}",
                ty.render(TargetDialect::Cockroach),
                "[]".repeat(dims.into())
            ),
            dialect: SourceDialect::Postgres,
            reason: "nested arrays are not supported by CockroachDB".into(),
        }),
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(TargetDialect::Cockroach))
    }
}

/// One piece of a type spelling.
#[derive(Debug)]
enum Token {
    Word(String),
    Group(String),
}

fn syntax(spelling: &str, reason: impl Into<String>) -> SchemaError {
    SchemaError::TypeSyntax { spelling: spelling.to_owned(), reason: reason.into() }
}

fn tokenize(spelling: &str) -> Result<Vec<Token>, SchemaError> {
    let mut out = Vec::new();
    let mut chars = spelling.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            // Paren group, with quoted labels that may hold parentheses and doubled quotes.
            chars.next();
            let start = i + 1;
            let mut quote: Option<char> = None;
            let mut end = None;
            while let Some((j, c)) = chars.next() {
                match quote {
                    Some(q) if c == q => {
                        if chars.peek().map(|&(_, n)| n) == Some(q) {
                            chars.next();
                        } else {
                            quote = None;
                        }
                    }
                    Some(_) => {}
                    None if c == '\'' || c == '"' => quote = Some(c),
                    None if c == ')' => {
                        end = Some(j);
                        break;
                    }
                    None if c == '(' => return Err(syntax(spelling, "nested parentheses")),
                    None => {}
                }
            }
            let end = end.ok_or_else(|| syntax(spelling, "unbalanced parentheses"))?;
            out.push(Token::Group(spelling[start..end].to_owned()));
        } else if c == ')' {
            return Err(syntax(spelling, "unbalanced parentheses"));
        } else if c == '"' {
            // A quoted identifier (PostgreSQL user type).
            chars.next();
            let mut word = String::from("\"");
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                if c == '"' {
                    if chars.peek().map(|&(_, n)| n) == Some('"') {
                        chars.next();
                        word.push('"');
                        continue;
                    }
                    closed = true;
                    break;
                }
                word.push(c);
            }
            if !closed {
                return Err(syntax(spelling, "unterminated quoted name"));
            }
            word.push('"');
            out.push(Token::Word(word));
        } else {
            let mut word = String::new();
            let mut in_quote = false;
            while let Some(&(_, c)) = chars.peek() {
                if !in_quote && (c.is_whitespace() || c == '(' || c == ')') {
                    break;
                }
                if c == '"' {
                    in_quote = !in_quote;
                }
                word.push(c);
                chars.next();
            }
            out.push(Token::Word(word));
        }
    }
    Ok(out)
}

/// Splits `a,b` modifiers into numbers; MySQL enum/set groups into labels.
fn parse_group(
    spelling: &str,
    group: &str,
    words_allowed: bool,
    args: &mut Vec<u32>,
    labels: &mut Vec<String>,
    semantics: &mut Option<String>,
) -> Result<(), SchemaError> {
    let trimmed = group.trim();
    if trimmed.starts_with('\'') || trimmed.starts_with('"') {
        // 'a','b''c' → labels
        let mut rest = trimmed;
        loop {
            let q = rest.chars().next().ok_or_else(|| syntax(spelling, "empty label list"))?;
            if q != '\'' && q != '"' {
                return Err(syntax(spelling, "labels must be quoted"));
            }
            let mut label = String::new();
            let mut iter = rest[1..].char_indices().peekable();
            let mut consumed = None;
            while let Some((j, c)) = iter.next() {
                if c == q {
                    if iter.peek().map(|&(_, n)| n) == Some(q) {
                        iter.next();
                        label.push(q);
                        continue;
                    }
                    consumed = Some(j + 2);
                    break;
                }
                if c == '\\' {
                    if let Some((_, n)) = iter.next() {
                        label.push(n);
                    }
                    continue;
                }
                label.push(c);
            }
            let consumed = consumed.ok_or_else(|| syntax(spelling, "unterminated label"))?;
            labels.push(label);
            rest = rest[consumed..].trim_start();
            if rest.is_empty() {
                break;
            }
            rest = rest
                .strip_prefix(',')
                .ok_or_else(|| syntax(spelling, "labels are comma separated"))?
                .trim_start();
        }
        return Ok(());
    }
    for part in trimmed.split(',') {
        let mut words = part.split_whitespace();
        let num = words.next().ok_or_else(|| syntax(spelling, "empty modifier"))?;
        if words_allowed && !num.bytes().all(|b| b.is_ascii_digit()) {
            // PostGIS: geometry(Point,4326)
            labels.push(num.to_owned());
            continue;
        }
        let n = num
            .parse::<u32>()
            .map_err(|_| syntax(spelling, format!("modifier {num:?} is not a number")))?;
        args.push(n);
        if let Some(sem) = words.next() {
            // Oracle VARCHAR2(20 BYTE|CHAR)
            *semantics = Some(sem.to_ascii_lowercase());
        }
        if words.next().is_some() {
            return Err(syntax(spelling, "unexpected words in a modifier"));
        }
    }
    Ok(())
}

/// Canonical name per dialect for a (lowercase, space-joined) written name.
fn canonical(dialect: SourceDialect, name: &str) -> String {
    let alias = match dialect {
        SourceDialect::Postgres => match name {
            "int" | "integer" | "serial" | "serial4" => "int4",
            "smallint" | "smallserial" | "serial2" => "int2",
            "bigint" | "bigserial" | "serial8" => "int8",
            "real" => "float4",
            "double precision" => "float8",
            "decimal" => "numeric",
            "boolean" => "bool",
            "character varying" | "char varying" => "varchar",
            "character" | "char" => "bpchar",
            "bit varying" => "varbit",
            "timestamp without time zone" => "timestamp",
            "timestamp with time zone" => "timestamptz",
            "time without time zone" => "time",
            "time with time zone" => "timetz",
            other => other,
        },
        SourceDialect::Mysql => match name {
            "int1" => "tinyint",
            "int2" => "smallint",
            "int3" | "middleint" => "mediumint",
            "int4" | "integer" => "int",
            "int8" => "bigint",
            "boolean" => "bool",
            "numeric" | "dec" | "fixed" => "decimal",
            "real" | "double precision" | "float8" => "double",
            "float4" => "float",
            "character" | "nchar" | "national char" | "national character" => "char",
            "character varying" | "nvarchar" | "national varchar" | "nchar varchar" => "varchar",
            "long varchar" | "long" => "mediumtext",
            "long varbinary" => "mediumblob",
            other => other,
        },
        SourceDialect::Oracle => match name {
            "integer" | "int" => "integer",
            "character" => "char",
            "character varying" | "char varying" => "varchar",
            "national char" | "national character" => "nchar",
            "double precision" => "double precision",
            "timestamp with time zone" => "timestamptz",
            "timestamp with local time zone" => "timestampltz",
            other => other,
        },
    };
    alias.to_owned()
}

pub(crate) fn parse_column_type(
    dialect: SourceDialect,
    spelling: &str,
) -> Result<ColumnType, SchemaError> {
    let mut text = spelling.trim();
    if text.is_empty() {
        return Err(syntax(spelling, "empty type"));
    }
    let mut array_dims = 0u8;
    if dialect == SourceDialect::Postgres {
        while let Some(rest) = text.strip_suffix("[]") {
            text = rest.trim_end();
            array_dims = array_dims.saturating_add(1);
        }
        // `_int4` is the catalog name of int4[].
        if let Some(elem) = text.strip_prefix('_').filter(|e| !e.is_empty() && !e.contains(' ')) {
            text = elem;
            array_dims = array_dims.saturating_add(1);
        }
    }
    let mut words = Vec::new();
    let mut args = Vec::new();
    let mut labels = Vec::new();
    let mut semantics = None;
    let mut user_type = None;
    for tok in tokenize(text)? {
        match tok {
            Token::Word(w) => {
                if w.starts_with('"') || w.contains('.') {
                    // A quoted or schema-qualified name: a user-defined type.
                    let unquote = |s: &str| {
                        if s.starts_with('"') {
                            s.trim_matches('"').to_owned()
                        } else {
                            s.to_ascii_lowercase()
                        }
                    };
                    let (schema, name) = match split_qualified(&w) {
                        Some((s, n)) => (unquote(s), unquote(n)),
                        None => (String::new(), unquote(&w)),
                    };
                    user_type = Some(TableName::new(schema, name.clone()));
                    words.push(name);
                } else {
                    words.push(w.to_ascii_lowercase());
                }
            }
            Token::Group(g) => {
                let spatial =
                    words.last().is_some_and(|w: &String| w == "geometry" || w == "geography");
                parse_group(spelling, &g, spatial, &mut args, &mut labels, &mut semantics)?
            }
        }
    }
    let mut unsigned = false;
    if dialect == SourceDialect::Mysql {
        words.retain(|w| match w.as_str() {
            "unsigned" => {
                unsigned = true;
                false
            }
            "signed" | "zerofill" => false,
            _ => true,
        });
        // A MySQL `serial` is BIGINT UNSIGNED NOT NULL AUTO_INCREMENT UNIQUE.
        if words.len() == 1 && words[0] == "serial" {
            words[0] = "bigint".into();
            unsigned = true;
        }
    }
    if words.is_empty() {
        return Err(syntax(spelling, "no type name"));
    }
    let name =
        if user_type.is_some() { words.join(" ") } else { canonical(dialect, &words.join(" ")) };
    Ok(ColumnType {
        name,
        args,
        unsigned,
        array_dims,
        labels,
        user_type,
        length_semantics: semantics,
        spelling: spelling.trim().to_owned(),
    })
}

/// Splits `schema.name` at the first dot outside double quotes.
fn split_qualified(word: &str) -> Option<(&str, &str)> {
    let mut in_quote = false;
    for (i, c) in word.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '.' if !in_quote => return Some((&word[..i], &word[i + 1..])),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(s: &str) -> ColumnType {
        parse_column_type(SourceDialect::Postgres, s).unwrap()
    }

    #[test]
    fn postgres_spellings() {
        let t = pg("timestamp(3) with time zone");
        assert_eq!((t.name.as_str(), t.args.as_slice()), ("timestamptz", &[3][..]));
        let t = pg("character varying(20)[]");
        assert_eq!((t.name.as_str(), t.args.as_slice(), t.array_dims), ("varchar", &[20][..], 1));
        assert_eq!(pg("_int4").name, "int4");
        assert_eq!(pg("_int4").array_dims, 1);
        let t = pg("public.\"My Mood\"");
        assert_eq!(t.user_type, Some(TableName::new("public", "My Mood")));
        assert_eq!(pg("numeric(20,6)").args, vec![20, 6]);
        assert_eq!(pg("interval day to second(3)").name, "interval day to second");
    }

    #[test]
    fn mysql_spellings() {
        let t = parse_column_type(SourceDialect::Mysql, "enum('a','b''c','d,e','f)')").unwrap();
        assert_eq!(t.name, "enum");
        assert_eq!(t.labels, vec!["a", "b'c", "d,e", "f)"]);
        let t = parse_column_type(SourceDialect::Mysql, "int(10) unsigned zerofill").unwrap();
        assert_eq!((t.name.as_str(), t.unsigned), ("int", true));
        let t = parse_column_type(SourceDialect::Mysql, "SERIAL").unwrap();
        assert_eq!((t.name.as_str(), t.unsigned), ("bigint", true));
    }

    #[test]
    fn oracle_spellings() {
        let t = parse_column_type(SourceDialect::Oracle, "VARCHAR2(20 BYTE)").unwrap();
        assert_eq!((t.name.as_str(), t.args.as_slice()), ("varchar2", &[20][..]));
        assert_eq!(t.length_semantics.as_deref(), Some("byte"));
        let t =
            parse_column_type(SourceDialect::Oracle, "TIMESTAMP(6) WITH LOCAL TIME ZONE").unwrap();
        assert_eq!(t.name, "timestampltz");
    }

    #[test]
    fn syntax_errors() {
        for bad in ["", "varchar(", "varchar)", "numeric(a,b)", "enum('a", "x((1))", "()"] {
            assert!(parse_column_type(SourceDialect::Mysql, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn crdb_spellings() {
        assert_eq!(SqlType::parse_crdb("INT").unwrap(), SqlType::Int8);
        assert_eq!(SqlType::parse_crdb("int2").unwrap(), SqlType::Int2);
        assert_eq!(SqlType::parse_crdb("STRING").unwrap(), SqlType::Text);
        assert_eq!(SqlType::parse_crdb("string(10)").unwrap(), SqlType::Varchar(10));
        assert_eq!(
            SqlType::parse_crdb("STRING[]").unwrap(),
            SqlType::Array(Box::new(SqlType::Text))
        );
        assert_eq!(
            SqlType::parse_crdb("DECIMAL(10,2)").unwrap(),
            SqlType::Decimal { precision: Some(10), scale: Some(2) }
        );
        assert!(SqlType::parse_crdb("nonsense").is_err());
    }
}
