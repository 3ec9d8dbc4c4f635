//! Comparing what the source needs with what the target has (MOLT's schema check before a
//! load into existing tables, and verify's column check).
//!
//! Both sides are [`TargetTable`]s: the source table mapped for the target dialect, and the
//! target's own catalog mapped through the identity mapping. Types agree when they are equal
//! or belong to a pair MOLT allows (spec §3.6, §4.2), so `VARCHAR(20)` and `STRING(20)` agree
//! and `TIMESTAMP` is allowed into `TIMESTAMPTZ`. Primary-key columns must agree more
//! closely ([`key_types_compatible`]): both sides are read in key order and merged.

use std::fmt;

use crate::{SqlType, TargetTable};

/// What kind of difference a [`Mismatch`] is (`mismatch_tag` in the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MismatchTag {
    /// The source table has no primary key.
    MissingPrimaryKey,
    /// The primary keys differ in columns, order, or the types of key columns.
    PrimaryKeyMismatch,
    /// A source column is missing on the target.
    MissingColumn,
    /// The target has a column the source lacks.
    ExtraColumn,
    /// A column's types are not compatible.
    TypeMismatch,
    /// The source allows NULL but the target column is NOT NULL.
    NullabilityMismatch,
    /// The target allows NULL where the source does not (harmless).
    TargetMoreNullable,
}

impl MismatchTag {
    /// The tag as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            MismatchTag::MissingPrimaryKey => "missing_pk",
            MismatchTag::PrimaryKeyMismatch => "pk_mismatch",
            MismatchTag::MissingColumn => "missing_column",
            MismatchTag::ExtraColumn => "extra_column",
            MismatchTag::TypeMismatch => "type_mismatch",
            MismatchTag::NullabilityMismatch => "nullability_mismatch",
            MismatchTag::TargetMoreNullable => "target_more_nullable",
        }
    }
}

impl fmt::Display for MismatchTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference between source and target definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The kind.
    pub tag: MismatchTag,
    /// Whether the load must stop (`failable_mismatch`).
    pub failable: bool,
    /// The column concerned, if one.
    pub column: Option<String>,
    /// What differs and what to do.
    pub message: String,
}

/// A type's family: types of one family hold the same kind of value at another width or
/// length (`INT2`…`INT8`, `VARCHAR(n)`/`STRING`, `TIMESTAMP`/`TIMESTAMPTZ`).
fn family(t: &SqlType) -> u8 {
    use SqlType as T;
    match t {
        T::Int2 | T::Int4 | T::Int8 | T::Oid => 1,
        T::Float4 | T::Float8 => 2,
        T::Decimal { .. } => 3,
        T::Text | T::Varchar(_) | T::Char(_) => 4,
        T::Timestamp(_) | T::TimestampTz(_) => 5,
        T::Time(_) | T::TimeTz(_) => 6,
        T::Json | T::Jsonb => 7,
        T::Bit(_) | T::VarBit(_) => 8,
        T::Geometry(_) => 9,
        T::Geography(_) => 10,
        T::Bool => 11,
        T::Bytes => 12,
        T::Date => 13,
        T::Interval => 14,
        T::Uuid => 15,
        T::Inet => 16,
        T::Enum(_) => 17,
        T::Array(_) => 18,
        T::Verbatim(_) => 19,
    }
}

/// `STRING` or `VARCHAR(n)`: the text side of MOLT's pairs.
fn string(t: &SqlType) -> bool {
    matches!(t, SqlType::Text | SqlType::Varchar(_))
}

/// Whether a value of `source` loads into a `target` column without loss of meaning, so
/// verify can compare the two by meaning: equal types, one family at another width, and
/// MOLT's pairs in either direction (spec §4.2): `TIMESTAMP`/`TIMESTAMPTZ`, `UUID`/string,
/// `BOOL`/`INT2`, bit strings/string, bit strings/`BOOL`, JSON/string, `INET`/string.
pub fn types_compatible(source: &SqlType, target: &SqlType) -> bool {
    use SqlType as T;
    if source == target {
        return true;
    }
    let pair = |a: &SqlType, b: &SqlType| match (a, b) {
        (T::Uuid, b) => string(b),
        (T::Bool, T::Int2) => true,
        (T::Bit(_) | T::VarBit(_), b) => string(b) || *b == T::Bool,
        (T::Json | T::Jsonb, b) => string(b),
        (T::Inet, b) => string(b),
        (T::Enum(_), b) => string(b),
        _ => false,
    };
    match (source, target) {
        (T::Array(a), T::Array(b)) => types_compatible(a, b),
        (T::Enum(a), T::Enum(b)) => a.table == b.table,
        (T::Verbatim(a), T::Verbatim(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => pair(a, b) || pair(b, a) || family(a) == family(b),
    }
}

/// Whether primary-key columns of these types hold the same keys in the same order, so that
/// both sides can be read in key order and merged: compatible types of one family (a key
/// widened from `INT4` to `INT8`, `VARCHAR(n)` to `STRING`), never a cross-family pair.
pub fn key_types_compatible(source: &SqlType, target: &SqlType) -> bool {
    match (source, target) {
        (SqlType::Array(a), SqlType::Array(b)) => key_types_compatible(a, b),
        (a, b) => types_compatible(a, b) && family(a) == family(b),
    }
}

fn column_type<'a>(table: &'a TargetTable, name: &str) -> Option<&'a SqlType> {
    table.columns.iter().find(|c| c.name == name).map(|c| &c.ty)
}

/// Every difference between `source` (mapped for the target) and `target` (the target's
/// catalog), with MOLT's fatal/non-fatal classification.
pub fn compare_tables(
    source: &TargetTable,
    target: &TargetTable,
    skip_pk_check: bool,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let name = &source.name;
    if source.primary_key.is_empty() {
        out.push(Mismatch {
            tag: MismatchTag::MissingPrimaryKey,
            failable: !skip_pk_check,
            column: None,
            message: format!(
                "source table {name} has no primary key; add one or pass --skip-pk-check"
            ),
        });
    } else if source.primary_key != target.primary_key {
        out.push(Mismatch {
            tag: MismatchTag::PrimaryKeyMismatch,
            failable: !skip_pk_check,
            column: None,
            message: format!(
                "primary key of {name} is ({}) on the source but ({}) on the target",
                source.primary_key.join(", "),
                target.primary_key.join(", ")
            ),
        });
    } else {
        // Same key columns; their types must agree too (MOLT: "columns and types must match").
        for key in &source.primary_key {
            let (Some(s), Some(t)) = (column_type(source, key), column_type(target, key)) else {
                continue;
            };
            if !key_types_compatible(s, t) {
                out.push(Mismatch {
                    tag: MismatchTag::PrimaryKeyMismatch,
                    failable: !skip_pk_check,
                    column: Some(key.clone()),
                    message: format!(
                        "primary key column {key} of {name} is {s} on the source but {t} on the target; keys of other types do not match row for row"
                    ),
                });
            }
        }
    }
    for col in &source.columns {
        let Some(t) = target.columns.iter().find(|c| c.name == col.name) else {
            out.push(Mismatch {
                tag: MismatchTag::MissingColumn,
                failable: true,
                column: Some(col.name.clone()),
                message: format!("column {} of {name} is missing on the target", col.name),
            });
            continue;
        };
        if !types_compatible(&col.ty, &t.ty) {
            out.push(Mismatch {
                tag: MismatchTag::TypeMismatch,
                failable: true,
                column: Some(col.name.clone()),
                message: format!(
                    "column {} of {name} is {} on the source but {} on the target; the types are not comparable",
                    col.name, col.ty, t.ty
                ),
            });
        }
        if col.nullable && !t.nullable {
            out.push(Mismatch {
                tag: MismatchTag::NullabilityMismatch,
                failable: true,
                column: Some(col.name.clone()),
                message: format!(
                    "column {} of {name} allows NULL on the source but is NOT NULL on the target",
                    col.name
                ),
            });
        } else if !col.nullable && t.nullable {
            out.push(Mismatch {
                tag: MismatchTag::TargetMoreNullable,
                failable: false,
                column: Some(col.name.clone()),
                message: format!(
                    "column {} of {name} is NOT NULL on the source but nullable on the target",
                    col.name
                ),
            });
        }
    }
    for t in &target.columns {
        if !source.columns.iter().any(|c| c.name == t.name) {
            out.push(Mismatch {
                tag: MismatchTag::ExtraColumn,
                failable: false,
                column: Some(t.name.clone()),
                message: format!(
                    "column {} of {name} exists only on the target; it is left as its default",
                    t.name
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TableName, TargetColumn};

    fn col(name: &str, ty: SqlType, nullable: bool) -> TargetColumn {
        TargetColumn { name: name.into(), ty, nullable, notes: vec![] }
    }

    fn table(cols: Vec<TargetColumn>, pk: &[&str]) -> TargetTable {
        TargetTable {
            name: TableName::new("public", "t"),
            columns: cols,
            primary_key: pk.iter().map(|s| (*s).to_owned()).collect(),
            enums: vec![],
        }
    }

    #[test]
    fn identical_tables_agree() {
        let t =
            table(vec![col("id", SqlType::Int8, false), col("v", SqlType::Text, true)], &["id"]);
        assert!(compare_tables(&t, &t, false).is_empty());
    }

    #[test]
    fn classifies_like_molt() {
        let src = table(
            vec![
                col("id", SqlType::Int8, false),
                col("name", SqlType::Varchar(20), true),
                col("ts", SqlType::Timestamp(None), true),
                col("gone", SqlType::Int4, true),
                col("n", SqlType::Int4, true),
                col("m", SqlType::Int4, false),
                col("b", SqlType::Bytes, true),
            ],
            &["id"],
        );
        let dst = table(
            vec![
                col("id", SqlType::Int8, false),
                col("name", SqlType::Text, true),
                col("ts", SqlType::TimestampTz(None), true),
                col("n", SqlType::Int8, false),
                col("m", SqlType::Int4, true),
                col("b", SqlType::Text, true),
                col("extra", SqlType::Int4, true),
            ],
            &["id"],
        );
        let found: Vec<(MismatchTag, bool, Option<&str>)> = compare_tables(&src, &dst, false)
            .iter()
            .map(|m| (m.tag, m.failable, None::<&str>))
            .collect();
        let tags: Vec<MismatchTag> = found.iter().map(|f| f.0).collect();
        assert_eq!(
            tags,
            vec![
                MismatchTag::MissingColumn,
                MismatchTag::NullabilityMismatch,
                MismatchTag::TargetMoreNullable,
                MismatchTag::TypeMismatch,
                MismatchTag::ExtraColumn
            ]
        );
        let failable: Vec<bool> = found.iter().map(|f| f.1).collect();
        assert_eq!(failable, vec![true, true, false, true, false]);
    }

    #[test]
    fn primary_key_checks_bow_to_skip_pk_check() {
        let src = table(vec![col("id", SqlType::Int8, false)], &[]);
        let m = compare_tables(&src, &src, false);
        assert_eq!(m[0].tag, MismatchTag::MissingPrimaryKey);
        assert!(m[0].failable);
        assert!(!compare_tables(&src, &src, true)[0].failable);
        let a =
            table(vec![col("id", SqlType::Int8, false), col("k", SqlType::Int8, false)], &["id"]);
        let b =
            table(vec![col("id", SqlType::Int8, false), col("k", SqlType::Int8, false)], &["k"]);
        assert_eq!(compare_tables(&a, &b, false)[0].tag, MismatchTag::PrimaryKeyMismatch);
    }

    #[test]
    fn key_columns_must_agree_in_type_family() {
        let keyed = |ty: SqlType| table(vec![col("id", ty, false)], &["id"]);
        let int4 = keyed(SqlType::Int4);
        assert!(compare_tables(&int4, &keyed(SqlType::Int8), false).is_empty(), "widened key");
        let m = compare_tables(&int4, &keyed(SqlType::Text), false);
        let tags: Vec<MismatchTag> = m.iter().map(|m| m.tag).collect();
        assert_eq!(tags, vec![MismatchTag::PrimaryKeyMismatch, MismatchTag::TypeMismatch]);
        assert_eq!(m[0].column.as_deref(), Some("id"));
        assert!(
            m[0].message.contains("INT4") && m[0].message.contains("STRING"),
            "{}",
            m[0].message
        );
        assert!(!compare_tables(&int4, &keyed(SqlType::Text), true)[0].failable);
        // An allowed pair is comparable as a value, but keys of another family sort otherwise.
        let m = compare_tables(&keyed(SqlType::Bool), &keyed(SqlType::Int2), false);
        assert_eq!(
            m.iter().map(|m| m.tag).collect::<Vec<_>>(),
            vec![MismatchTag::PrimaryKeyMismatch]
        );
        assert!(key_types_compatible(&SqlType::Timestamp(None), &SqlType::TimestampTz(Some(6))));
        assert!(key_types_compatible(&SqlType::Varchar(10), &SqlType::Text));
        assert!(!key_types_compatible(&SqlType::Uuid, &SqlType::Text));
    }

    #[test]
    fn allowed_pairs() {
        assert!(types_compatible(&SqlType::Uuid, &SqlType::Varchar(36)));
        assert!(types_compatible(&SqlType::Bool, &SqlType::Int2));
        assert!(types_compatible(&SqlType::Jsonb, &SqlType::Text));
        assert!(types_compatible(&SqlType::Int4, &SqlType::Int8));
        assert!(!types_compatible(&SqlType::Int4, &SqlType::Text));
        assert!(types_compatible(&SqlType::Bool, &SqlType::Bit(1)));
        assert!(types_compatible(&SqlType::VarBit(None), &SqlType::Bool));
        assert!(types_compatible(&SqlType::Varchar(20), &SqlType::Jsonb));
        assert!(types_compatible(&SqlType::Inet, &SqlType::Varchar(43)));
        assert!(types_compatible(&SqlType::Int2, &SqlType::Bool));
        assert!(!types_compatible(&SqlType::Int4, &SqlType::Bool), "only INT2 pairs with BOOL");
        assert!(!types_compatible(&SqlType::Uuid, &SqlType::Bytes));
        assert!(!types_compatible(&SqlType::Date, &SqlType::Timestamp(None)));
        assert!(types_compatible(
            &SqlType::Array(Box::new(SqlType::Text)),
            &SqlType::Array(Box::new(SqlType::Varchar(3)))
        ));
    }
}
