//! `--schema-filter`, `--table-filter`, `--table-exclusion-filter`.

use regex::{Regex, RegexBuilder};

use crate::{SchemaError, TableName};

/// Which tables a run works on.
///
/// Each pattern must match the whole name (it is anchored), so `--table-filter employees`
/// does not also pick `employees_archive`. Matching ignores case unless `case_sensitive`.
#[derive(Debug, Clone)]
pub struct TableFilter {
    schema: Regex,
    table: Regex,
    exclusion: Option<Regex>,
}

fn compile(flag: &'static str, pattern: &str, case_sensitive: bool) -> Result<Regex, SchemaError> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(!case_sensitive)
        .build()
        .map_err(|e| SchemaError::Filter {
            flag,
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })
}

impl TableFilter {
    /// Every table of every schema.
    pub fn all() -> Self {
        TableFilter::new(".*", ".*", "", false).expect("constant patterns compile")
    }

    /// Compiles the three flags; an empty exclusion excludes nothing.
    ///
    /// # Errors
    /// [`SchemaError::Filter`] for an invalid regex, or an exclusion of `.*` (which would
    /// exclude everything).
    pub fn new(
        schema: &str,
        table: &str,
        exclusion: &str,
        case_sensitive: bool,
    ) -> Result<Self, SchemaError> {
        if exclusion.trim() == ".*" {
            return Err(SchemaError::Filter {
                flag: "--table-exclusion-filter",
                pattern: exclusion.to_owned(),
                reason: "it would exclude every table".into(),
            });
        }
        Ok(TableFilter {
            schema: compile("--schema-filter", schema, case_sensitive)?,
            table: compile("--table-filter", table, case_sensitive)?,
            exclusion: if exclusion.is_empty() {
                None
            } else {
                Some(compile("--table-exclusion-filter", exclusion, case_sensitive)?)
            },
        })
    }

    /// Whether the schema passes `--schema-filter` (used to skip whole schemas early).
    pub fn matches_schema(&self, schema: &str) -> bool {
        self.schema.is_match(schema)
    }

    /// Whether the table is selected.
    pub fn matches(&self, name: &TableName) -> bool {
        self.schema.is_match(&name.schema)
            && self.table.is_match(&name.table)
            && !self.exclusion.as_ref().is_some_and(|x| x.is_match(&name.table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_and_case_insensitive() {
        let f = TableFilter::new("public", "employees|payments", "", false).unwrap();
        assert!(f.matches(&TableName::new("public", "employees")));
        assert!(f.matches(&TableName::new("PUBLIC", "Payments")));
        assert!(!f.matches(&TableName::new("public", "employees_archive")));
        assert!(!f.matches(&TableName::new("other", "employees")));
        let cs = TableFilter::new("public", "employees", "", true).unwrap();
        assert!(!cs.matches(&TableName::new("public", "Employees")));
    }

    #[test]
    fn exclusion() {
        let f = TableFilter::new(".*", ".*", "tmp_.*", false).unwrap();
        assert!(f.matches(&TableName::new("s", "orders")));
        assert!(!f.matches(&TableName::new("s", "tmp_orders")));
        assert!(TableFilter::new(".*", ".*", ".*", false).is_err());
        let err = TableFilter::new(".*", "(", "", false).unwrap_err();
        assert!(err.to_string().contains("--table-filter"), "{err}");
    }
}
