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
struct ColumnExclusion {
    column: String,
    #[serde(default)]
    add_computed_def: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct TransformRule {
    resource_specifier: Specifier,
    #[serde(default)]
    table_rename_opts: Option<Rename>,
    #[serde(default)]
    schema_rename_opts: Option<Rename>,
    #[serde(default)]
    column_exclusion_opts: Option<ColumnExclusion>,
}

/// A rule's selectors compiled as fetch reads them: regular expressions matching the whole
/// name, anchored like `--table-filter` (`docs/design/20261125-foundation.md`), so that a rule
/// for schema `public` never touches `public_archive`. `^…$` in a rule is harmless.
#[derive(Debug, Clone)]
struct Compiled {
    schema: Option<regex::Regex>,
    table: Option<regex::Regex>,
    column: Option<regex::Regex>,
}

fn compile(what: &str, pattern: &str) -> Result<regex::Regex, SchemaError> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| file_err("--transformations-file", format!("{what} {pattern:?}: {e}")))
}

impl Compiled {
    fn matches(&self, name: &TableName) -> bool {
        self.schema.as_ref().is_none_or(|r| r.is_match(&name.schema))
            && self.table.as_ref().is_none_or(|r| r.is_match(&name.table))
    }
}

/// A column fetch leaves out of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedColumn {
    /// Column name.
    pub name: String,
    /// Re-add it on the target as a computed column (when it is one on the source).
    pub add_computed_def: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct TransformFile {
    transforms: Vec<TransformRule>,
}

/// Table and schema renames between source and target (rules apply in order; later wins),
/// and columns fetch leaves out.
#[derive(Debug, Clone, Default)]
pub struct Transforms {
    rules: Vec<TransformRule>,
    compiled: Vec<Compiled>,
}

impl Transforms {
    /// Parses a `--transformations-file`.
    ///
    /// # Errors
    /// Bad JSON.
    pub fn from_json(text: &str) -> Result<Transforms, SchemaError> {
        let file: TransformFile =
            serde_json::from_str(text).map_err(|e| file_err("--transformations-file", e))?;
        let mut compiled = Vec::with_capacity(file.transforms.len());
        for r in &file.transforms {
            let spec = &r.resource_specifier;
            compiled.push(Compiled {
                schema: spec.schema.as_deref().map(|p| compile("schema", p)).transpose()?,
                table: spec.table.as_deref().map(|p| compile("table", p)).transpose()?,
                column: r
                    .column_exclusion_opts
                    .as_ref()
                    .map(|c| compile("column", &c.column))
                    .transpose()?,
            });
        }
        Ok(Transforms { rules: file.transforms, compiled })
    }

    /// The target name of a source table as fetch reads the rules (regular-expression
    /// selectors; see [`Transforms::rename`] for verify's exact names).
    pub fn fetch_rename(&self, source: &TableName) -> TableName {
        self.renamed(source, |_, c| c.matches(source))
    }

    /// The columns of `source` (named in `columns`) that fetch leaves out, in column order.
    pub fn excluded_columns<'a>(
        &self,
        source: &TableName,
        columns: impl IntoIterator<Item = &'a str>,
    ) -> Vec<ExcludedColumn> {
        let mut out: Vec<ExcludedColumn> = Vec::new();
        for name in columns {
            for (r, c) in self.rules.iter().zip(&self.compiled) {
                let (Some(opts), Some(re)) = (&r.column_exclusion_opts, &c.column) else {
                    continue;
                };
                if c.matches(source) && re.is_match(name) {
                    out.retain(|e| e.name != name);
                    out.push(ExcludedColumn {
                        name: name.to_owned(),
                        add_computed_def: opts.add_computed_def,
                    });
                }
            }
        }
        out
    }

    /// The target name of a source table.
    pub fn rename(&self, source: &TableName) -> TableName {
        self.renamed(source, |r, _| r.resource_specifier.matches(source))
    }

    /// Applies, in order, the renames of the rules `applies` selects.
    fn renamed(
        &self,
        source: &TableName,
        applies: impl Fn(&TransformRule, &Compiled) -> bool,
    ) -> TableName {
        let mut out = source.clone();
        for (r, c) in self.rules.iter().zip(&self.compiled) {
            if !applies(r, c) {
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
    fn fetch_reads_selectors_as_regular_expressions() {
        let t = Transforms::from_json(
            r#"{"transforms":[
                {"id":1,"resource_specifier":{"schema":".*","table":".*"},"column_exclusion_opts":{"add_computed_def":true,"column":"^age$"}},
                {"id":2,"resource_specifier":{"schema":"public","table":"charges_part.*"},"table_rename_opts":{"value":"charges"}},
                {"id":3,"resource_specifier":{"schema":"previous_schema"},"schema_rename_opts":{"value":"new_schema"}},
                {"id":4,"resource_specifier":{"schema":"public","table":"^people$"},"column_exclusion_opts":{"column":"^(ssn|age)$"}}]}"#,
        )
        .unwrap();
        let n = |s: &str, t: &str| TableName::new(s, t);
        assert_eq!(t.fetch_rename(&n("public", "charges_part1")), n("public", "charges"));
        assert_eq!(t.fetch_rename(&n("previous_schema", "x")), n("new_schema", "x"));
        assert_eq!(t.fetch_rename(&n("public", "other")), n("public", "other"));
        assert_eq!(
            t.fetch_rename(&n("previous_schema_2", "x")),
            n("previous_schema_2", "x"),
            "selectors match whole names"
        );
        let ex = t.excluded_columns(&n("public", "t"), ["id", "age", "stage"]);
        assert_eq!(ex, vec![ExcludedColumn { name: "age".into(), add_computed_def: true }]);
        // A later rule wins: people.age is excluded without re-adding it.
        let ex = t.excluded_columns(&n("public", "people"), ["id", "age", "ssn"]);
        assert_eq!(
            ex,
            vec![
                ExcludedColumn { name: "age".into(), add_computed_def: false },
                ExcludedColumn { name: "ssn".into(), add_computed_def: false }
            ]
        );
        let bad = r#"{"transforms":[{"id":1,"resource_specifier":{"table":"("},"table_rename_opts":{"value":"x"}}]}"#;
        assert!(Transforms::from_json(bad).unwrap_err().to_string().contains("table"));
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
