//! User rule files shared by fetch and verify: row filters (`--filter-path`) and renames
//! (`--transformations-file`), in MOLT's JSON formats.
//!
//! ```
//! use molt_schema::{TableName, rules::{RowFilters, Transforms}};
//!
//! let f = RowFilters::from_json(r#"{"filters":[{"resource_specifier":{"schema":"public","table":"t"},"expr":"x < 10"}]}"#)?;
//! assert_eq!(f.for_table(&TableName::new("PUBLIC", "T")).map(|s| s.source.as_str()), Some("x < 10"));
//! let t = Transforms::from_json(r#"{"transforms":[{"id":1,"resource_specifier":{"schema":"public","table":"t"},"table_rename_opts":{"value":"t2"}}]}"#)?;
//! assert_eq!(t.rename(&TableName::new("public", "t")), TableName::new("public", "t2"));
//! # Ok::<(), molt_schema::SchemaError>(())
//! ```

use serde::Deserialize;

use crate::{SchemaError, TableName};

#[derive(Debug, Clone, Deserialize)]
struct Specifier {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    table: Option<String>,
}

impl Specifier {
    fn matches(&self, name: &TableName) -> bool {
        let eq = |want: &Option<String>, have: &str| {
            want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(have))
        };
        eq(&self.schema, &name.schema) && eq(&self.table, &name.table)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct FilterRule {
    resource_specifier: Specifier,
    #[serde(default)]
    expr: Option<String>,
    #[serde(default)]
    source_expr: Option<String>,
    #[serde(default)]
    target_expr: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct FilterFile {
    filters: Vec<FilterRule>,
}

/// The row filter of one table, per side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideFilters {
    /// Condition on the source (source dialect).
    pub source: String,
    /// Condition on the target.
    pub target: String,
}

/// Row filters by table.
#[derive(Debug, Clone, Default)]
pub struct RowFilters {
    rules: Vec<(Specifier, SideFilters)>,
}

fn file_err(what: &str, reason: impl std::fmt::Display) -> SchemaError {
    SchemaError::TypeMapFile { reason: format!("{what}: {reason}") }
}

impl RowFilters {
    /// Parses a `--filter-path` file.
    ///
    /// # Errors
    /// Bad JSON, or a rule with both `expr` and `source_expr`/`target_expr`, or neither.
    pub fn from_json(text: &str) -> Result<RowFilters, SchemaError> {
        let file: FilterFile =
            serde_json::from_str(text).map_err(|e| file_err("--filter-path", e))?;
        let mut rules = Vec::new();
        for r in file.filters {
            let side = match (r.expr, r.source_expr, r.target_expr) {
                (Some(e), None, None) => SideFilters { source: e.clone(), target: e },
                (None, Some(s), Some(t)) => SideFilters { source: s, target: t },
                _ => {
                    return Err(file_err(
                        "--filter-path",
                        "each filter needs either expr, or both source_expr and target_expr",
                    ));
                }
            };
            rules.push((r.resource_specifier, side));
        }
        Ok(RowFilters { rules })
    }

    /// The filter of `table` (the last matching rule).
    pub fn for_table(&self, table: &TableName) -> Option<&SideFilters> {
        self.rules.iter().rev().find(|(s, _)| s.matches(table)).map(|(_, f)| f)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Rename {
    value: String,
}

#[derive(Debug, Clone, Deserialize)]
struct TransformRule {
    resource_specifier: Specifier,
    #[serde(default)]
    table_rename_opts: Option<Rename>,
    #[serde(default)]
    schema_rename_opts: Option<Rename>,
}

#[derive(Debug, Clone, Deserialize)]
struct TransformFile {
    transforms: Vec<TransformRule>,
}

/// Table and schema renames between source and target (rules apply in order; later wins).
#[derive(Debug, Clone, Default)]
pub struct Transforms {
    rules: Vec<TransformRule>,
}

impl Transforms {
    /// Parses a `--transformations-file`.
    ///
    /// # Errors
    /// Bad JSON.
    pub fn from_json(text: &str) -> Result<Transforms, SchemaError> {
        let file: TransformFile =
            serde_json::from_str(text).map_err(|e| file_err("--transformations-file", e))?;
        Ok(Transforms { rules: file.transforms })
    }

    /// The target name of a source table.
    pub fn rename(&self, source: &TableName) -> TableName {
        let mut out = source.clone();
        for r in &self.rules {
            if !r.resource_specifier.matches(source) {
                continue;
            }
            if let Some(t) = &r.table_rename_opts {
                out.table = t.value.clone();
            }
            if let Some(s) = &r.schema_rename_opts {
                out.schema = s.value.clone();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_per_side_and_errors() {
        let f = RowFilters::from_json(
            r#"{"filters":[{"resource_specifier":{"schema":"public","table":"filtertbl"},"expr":"x < 10"},
                {"resource_specifier":{"schema":"public","table":"other"},"source_expr":"id BETWEEN 5 AND 15","target_expr":"id > 4 AND id < 16"}]}"#,
        )
        .unwrap();
        let o = f.for_table(&TableName::new("public", "OTHER")).unwrap();
        assert_eq!(
            (o.source.as_str(), o.target.as_str()),
            ("id BETWEEN 5 AND 15", "id > 4 AND id < 16")
        );
        assert!(f.for_table(&TableName::new("public", "none")).is_none());
        let bad = r#"{"filters":[{"resource_specifier":{"schema":"s","table":"t"},"expr":"a","source_expr":"b"}]}"#;
        assert!(RowFilters::from_json(bad).is_err());
        assert!(RowFilters::from_json("{").is_err());
    }

    #[test]
    fn renames_in_order() {
        let t = Transforms::from_json(
            r#"{"transforms":[{"id":1,"resource_specifier":{"schema":"public","table":"t"},"table_rename_opts":{"value":"t2"}},
                {"id":2,"resource_specifier":{"schema":"public"},"schema_rename_opts":{"value":"public2"}}]}"#,
        )
        .unwrap();
        assert_eq!(t.rename(&TableName::new("public", "t")), TableName::new("public2", "t2"));
        assert_eq!(t.rename(&TableName::new("public", "u")), TableName::new("public2", "u"));
        assert_eq!(t.rename(&TableName::new("other", "t")), TableName::new("other", "t"));
    }
}
