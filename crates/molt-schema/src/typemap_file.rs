//! `--type-map-file`: per-table overrides of the default mapping.
//!
//! ```json
//! [{"table":"public.t1","column_type_map":[
//!    {"column":"*","source_type":"int","crdb_type":"INT2"},
//!    {"column":"name","source_type":"varbit","crdb_type":"string"}]}]
//! ```
//! `column` `*` applies to every column of that source type. A rule naming the column wins
//! over `*`; among equals the later rule wins.

use serde::Deserialize;

use crate::{ColumnType, SchemaError, SqlType, TableName};

/// One column rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TypeMapRule {
    /// Column name or `*`.
    pub column: String,
    /// Source type the rule applies to (`int`, `varchar`, …).
    pub source_type: String,
    /// Target type to use (`INT2`, `STRING`, …).
    pub crdb_type: String,
}

/// The rules of one table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct TableRules {
    table: String,
    column_type_map: Vec<TypeMapRule>,
}

/// A parsed `--type-map-file`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeMapFile {
    tables: Vec<TableRules>,
}

impl TypeMapFile {
    /// Parses the JSON text of a type map file and checks every target type.
    ///
    /// # Errors
    /// [`SchemaError::TypeMapFile`] for invalid JSON, a table not written `schema.table`, or a
    /// target type CockroachDB does not have.
    pub fn from_json(text: &str) -> Result<Self, SchemaError> {
        let tables: Vec<TableRules> = serde_json::from_str(text)
            .map_err(|e| SchemaError::TypeMapFile { reason: e.to_string() })?;
        for t in &tables {
            if !t.table.contains('.') {
                return Err(SchemaError::TypeMapFile {
                    reason: format!("table {:?} must be written schema.table", t.table),
                });
            }
            for r in &t.column_type_map {
                SqlType::parse_crdb(&r.crdb_type).map_err(|e| SchemaError::TypeMapFile {
                    reason: format!("table {}, column {}: {e}", t.table, r.column),
                })?;
            }
        }
        Ok(TypeMapFile { tables })
    }

    /// The target type spelling for a column, if a rule applies.
    pub fn override_for(&self, table: &TableName, column: &str, ty: &ColumnType) -> Option<&str> {
        let table_text = table.to_string();
        let mut best: Option<(bool, &str)> = None;
        for t in self.tables.iter().filter(|t| t.table.eq_ignore_ascii_case(&table_text)) {
            for r in &t.column_type_map {
                let exact = r.column == column;
                if !(exact || r.column == "*") || !source_type_matches(&r.source_type, ty) {
                    continue;
                }
                if best.is_none_or(|(was_exact, _)| exact || !was_exact) {
                    best = Some((exact, r.crdb_type.as_str()));
                }
            }
        }
        best.map(|(_, t)| t)
    }
}

fn source_type_matches(rule: &str, ty: &ColumnType) -> bool {
    let rule = rule.trim();
    rule.eq_ignore_ascii_case(&ty.name)
        || rule.eq_ignore_ascii_case(&ty.spelling)
        || ty.user_type.as_ref().is_some_and(|u| rule.eq_ignore_ascii_case(&u.table))
        || ColumnType::parse(crate::SourceDialect::Postgres, rule).is_ok_and(|r| r.name == ty.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceDialect;

    #[test]
    fn rules_apply_by_column_and_type() {
        let f = TypeMapFile::from_json(
            r#"[{"table":"public.t1","column_type_map":[
                {"column":"*","source_type":"int","crdb_type":"INT2"},
                {"column":"big","source_type":"int8","crdb_type":"DECIMAL"},
                {"column":"name","source_type":"varbit","crdb_type":"string"}]}]"#,
        )
        .unwrap();
        let t = TableName::new("public", "t1");
        let int4 = ColumnType::parse(SourceDialect::Postgres, "integer").unwrap();
        let int8 = ColumnType::parse(SourceDialect::Postgres, "bigint").unwrap();
        assert_eq!(f.override_for(&t, "a", &int4), Some("INT2"));
        assert_eq!(f.override_for(&t, "big", &int8), Some("DECIMAL"));
        assert_eq!(f.override_for(&t, "a", &int8), None);
        assert_eq!(f.override_for(&TableName::new("public", "t2"), "a", &int4), None);
    }

    #[test]
    fn bad_files_are_explained() {
        let err = TypeMapFile::from_json("[{").unwrap_err();
        assert!(matches!(err, SchemaError::TypeMapFile { .. }));
        let err = TypeMapFile::from_json(r#"[{"table":"t1","column_type_map":[]}]"#).unwrap_err();
        assert!(err.to_string().contains("schema.table"), "{err}");
        let err = TypeMapFile::from_json(
            r#"[{"table":"public.t1","column_type_map":[{"column":"*","source_type":"int","crdb_type":"NOPE"}]}]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("NOPE"), "{err}");
    }
}
