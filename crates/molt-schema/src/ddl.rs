//! DDL for the target: enum types, tables (columns, NOT NULL, primary key), drops, truncates.
//!
//! ```
//! use molt_schema::{SqlType, TableName, TargetColumn, TargetDialect, TargetTable, ddl};
//!
//! let t = TargetTable {
//!     name: TableName::new("public", "employees"),
//!     columns: vec![
//!         TargetColumn { name: "id".into(), ty: SqlType::Int8, nullable: false, notes: vec![] },
//!         TargetColumn { name: "name".into(), ty: SqlType::Text, nullable: true, notes: vec![] },
//!     ],
//!     primary_key: vec!["id".into()],
//!     enums: vec![],
//! };
//! assert_eq!(
//!     ddl::create_table(&t, TargetDialect::Cockroach),
//!     "CREATE TABLE \"public\".\"employees\" (\n    \"id\" INT8 NOT NULL,\n    \"name\" STRING,\n    PRIMARY KEY (\"id\")\n)"
//! );
//! ```

use crate::{EnumType, TableName, TargetDialect, TargetTable, quote_ident};

/// Quotes a string literal with single quotes, doubling any inside.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `CREATE TYPE … AS ENUM (…)`.
pub fn create_enum(e: &EnumType, _dialect: TargetDialect) -> String {
    let labels: Vec<String> = e.labels.iter().map(|l| quote_literal(l)).collect();
    format!("CREATE TYPE {} AS ENUM ({})", e.name.quoted(), labels.join(", "))
}

/// `CREATE TABLE` with columns, NOT NULL and the primary key only.
pub fn create_table(t: &TargetTable, dialect: TargetDialect) -> String {
    let mut lines: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let null = if c.nullable { "" } else { " NOT NULL" };
            format!("    {} {}{null}", quote_ident(&c.name), c.ty.render(dialect))
        })
        .collect();
    if !t.primary_key.is_empty() {
        let keys: Vec<String> = t.primary_key.iter().map(|k| quote_ident(k)).collect();
        lines.push(format!("    PRIMARY KEY ({})", keys.join(", ")));
    }
    format!("CREATE TABLE {} (\n{}\n)", t.name.quoted(), lines.join(",\n"))
}

/// `DROP TABLE IF EXISTS`.
pub fn drop_table(name: &TableName) -> String {
    format!("DROP TABLE IF EXISTS {}", name.quoted())
}

/// `DROP TYPE IF EXISTS`.
pub fn drop_type(name: &TableName) -> String {
    format!("DROP TYPE IF EXISTS {}", name.quoted())
}

/// `TRUNCATE TABLE`.
pub fn truncate_table(name: &TableName) -> String {
    format!("TRUNCATE TABLE {}", name.quoted())
}

/// Re-adds a column fetch left out as a computed column (`--transformations-file`
/// `add_computed_def`): CockroachDB `ADD COLUMN c T AS (expr) STORED|VIRTUAL`, PostgreSQL
/// `GENERATED ALWAYS AS (expr) STORED` (it has no virtual columns before version 18).
pub fn add_computed_column(
    table: &TableName,
    column: &crate::TargetColumn,
    generated: &crate::Generated,
    dialect: TargetDialect,
) -> String {
    let null = if column.nullable { "" } else { " NOT NULL" };
    let ty = column.ty.render(dialect);
    let def = match dialect {
        TargetDialect::Cockroach => {
            let kind = if generated.stored { "STORED" } else { "VIRTUAL" };
            format!("AS ({}) {kind}", generated.expr)
        }
        TargetDialect::Postgres => format!("GENERATED ALWAYS AS ({}) STORED", generated.expr),
    };
    format!(
        "ALTER TABLE IF EXISTS {} ADD COLUMN {} {ty}{null} {def}",
        table.quoted(),
        quote_ident(&column.name)
    )
}

/// Every statement that creates `t` on an empty target: enum types, then the table.
pub fn create_statements(t: &TargetTable, dialect: TargetDialect) -> Vec<String> {
    let mut out: Vec<String> = t.enums.iter().map(|e| create_enum(e, dialect)).collect();
    out.push(create_table(t, dialect));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        let e = EnumType {
            name: TableName::new("s", "My \"E\""),
            labels: vec!["a b".into(), "ü'".into()],
        };
        assert_eq!(
            create_enum(&e, TargetDialect::Postgres),
            "CREATE TYPE \"s\".\"My \"\"E\"\"\" AS ENUM ('a b', 'ü''')"
        );
        assert_eq!(drop_table(&TableName::new("a", "b")), "DROP TABLE IF EXISTS \"a\".\"b\"");
        assert_eq!(truncate_table(&TableName::new("a", "b")), "TRUNCATE TABLE \"a\".\"b\"");
    }

    #[test]
    fn computed_columns_per_dialect() {
        let col = crate::TargetColumn {
            name: "computed_col".into(),
            ty: crate::SqlType::Int8,
            nullable: false,
            notes: Vec::new(),
        };
        let generated = crate::Generated { expr: "(col1 + col2)".into(), stored: true };
        let t = TableName::new("public", "computed");
        assert_eq!(
            add_computed_column(&t, &col, &generated, TargetDialect::Cockroach),
            "ALTER TABLE IF EXISTS \"public\".\"computed\" ADD COLUMN \"computed_col\" INT8 NOT NULL AS ((col1 + col2)) STORED"
        );
        let virt = crate::Generated { stored: false, ..generated };
        assert_eq!(
            add_computed_column(&t, &col, &virt, TargetDialect::Postgres),
            "ALTER TABLE IF EXISTS \"public\".\"computed\" ADD COLUMN \"computed_col\" bigint NOT NULL GENERATED ALWAYS AS ((col1 + col2)) STORED"
        );
    }
}
