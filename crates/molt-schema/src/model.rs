//! What a catalog says about tables: names, columns, keys, and types as the source spells them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::SchemaError;

/// The database a schema was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceDialect {
    /// PostgreSQL (also what a CockroachDB catalog answers through `format_type`).
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// Oracle.
    Oracle,
}

impl fmt::Display for SourceDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceDialect::Postgres => "postgres",
            SourceDialect::Mysql => "mysql",
            SourceDialect::Oracle => "oracle",
        })
    }
}

/// The database tables are created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetDialect {
    /// CockroachDB: `STRING`, `BYTES`, `INT8`, `UPSERT`, `IMPORT INTO`.
    Cockroach,
    /// PostgreSQL: `text`, `bytea`, `bigint`, `INSERT … ON CONFLICT`, `COPY`.
    Postgres,
}

impl fmt::Display for TargetDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetDialect::Cockroach => "crdb",
            TargetDialect::Postgres => "postgres",
        })
    }
}

/// How rows travel through `COPY` (out of the source, into the target, in intermediate files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyFormat {
    /// PostgreSQL's text format (tab-separated, `\N` for NULL).
    Text,
    /// CSV: NULL is an empty unquoted field, the empty string is `""` (what `IMPORT INTO …
    /// CSV` with `nullif = ''` and `COPY … WITH (FORMAT csv)` read).
    Csv,
    /// PostgreSQL's binary format: only between servers whose column types are the same
    /// built-in types (binary array values embed element type OIDs).
    Binary,
}

impl CopyFormat {
    /// The ` WITH (…)` clause of a COPY statement in this format (empty for text).
    pub fn copy_options(self) -> &'static str {
        match self {
            CopyFormat::Text => "",
            CopyFormat::Csv => " WITH (FORMAT csv)",
            CopyFormat::Binary => " WITH (FORMAT binary)",
        }
    }
}

/// Quotes an SQL identifier with double quotes, doubling any inside; both target dialects
/// accept this form, and it keeps the source's case.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A schema-qualified table (or type) name. Prints as `schema.table`, MOLT's log form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableName {
    /// Schema (PostgreSQL, Oracle owner) or database (MySQL).
    pub schema: String,
    /// Table name.
    pub table: String,
}

impl TableName {
    /// Builds a name from its parts.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        TableName { schema: schema.into(), table: table.into() }
    }

    /// `"schema"."table"`, quoted for SQL.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// A generated (computed) column's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    /// The expression, in the source dialect.
    pub expr: String,
    /// `STORED` (true) or `VIRTUAL` (false).
    pub stored: bool,
}

/// A column's type as the source spells it, split into parts that mapping can reason about.
///
/// `name` is a canonical lowercase base name per dialect (`varchar`, `numeric`, `timestamptz`,
/// `int unsigned` is `int` with `unsigned`), `args` the numeric modifiers in written order
/// (length; precision and scale; fractional-second precision), `labels` the values of an
/// enum or set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnType {
    /// Canonical base name, lowercase.
    pub name: String,
    /// Numeric modifiers, in written order.
    pub args: Vec<u32>,
    /// MySQL `UNSIGNED`.
    pub unsigned: bool,
    /// PostgreSQL array dimensions (`int4[]` is 1).
    pub array_dims: u8,
    /// Enum or set labels, in declared order.
    pub labels: Vec<String>,
    /// A user-defined type this column refers to (PostgreSQL enum), schema-qualified.
    pub user_type: Option<TableName>,
    /// Oracle length semantics (`BYTE` or `CHAR`) when written.
    pub length_semantics: Option<String>,
    /// The type as the source wrote it.
    pub spelling: String,
}

impl ColumnType {
    /// Parses a type as `dialect` spells it in DDL or catalogs (`format_type`,
    /// `COLUMN_TYPE`, `ALL_TAB_COLUMNS`).
    ///
    /// # Errors
    /// [`SchemaError::TypeSyntax`] for unbalanced parentheses, non-numeric modifiers or bad
    /// labels.
    pub fn parse(dialect: SourceDialect, spelling: &str) -> Result<ColumnType, SchemaError> {
        crate::sqltype::parse_column_type(dialect, spelling)
    }

    /// The n-th numeric modifier.
    pub fn arg(&self, n: usize) -> Option<u32> {
        self.args.get(n).copied()
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spelling)
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name, exact case.
    pub name: String,
    /// Type.
    pub ty: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Default expression, in the source dialect.
    pub default: Option<String>,
    /// Computed-column definition.
    pub generated: Option<Generated>,
}

/// A foreign key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// Constraint name.
    pub name: String,
    /// Referencing columns, in key order.
    pub columns: Vec<String>,
    /// Referenced table.
    pub references: TableName,
    /// Referenced columns, in key order.
    pub referenced_columns: Vec<String>,
}

/// A UNIQUE constraint (or unique index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueConstraint {
    /// Constraint or index name.
    pub name: String,
    /// Columns, in key order.
    pub columns: Vec<String>,
}

/// An enum type (PostgreSQL `CREATE TYPE … AS ENUM`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumType {
    /// Schema-qualified type name.
    pub name: TableName,
    /// Labels in sort order.
    pub labels: Vec<String>,
}

/// A table as a catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Schema-qualified name.
    pub name: TableName,
    /// Columns in ordinal order.
    pub columns: Vec<Column>,
    /// Primary-key column names in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    /// Foreign keys.
    pub foreign_keys: Vec<ForeignKey>,
    /// Unique constraints other than the primary key.
    pub unique_constraints: Vec<UniqueConstraint>,
}

impl Table {
    /// The column with this exact name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The primary-key columns, in key order.
    pub fn primary_key_columns(&self) -> impl Iterator<Item = &Column> {
        self.primary_key.iter().filter_map(|k| self.column(k))
    }
}

/// How an identity column numbers rows that give it no value (PostgreSQL `attidentity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// `GENERATED ALWAYS AS IDENTITY`: `INSERT` refuses a value unless it says
    /// `OVERRIDING SYSTEM VALUE`; `COPY` writes the values it is given.
    Always,
    /// `GENERATED BY DEFAULT AS IDENTITY`: a value given is kept.
    ByDefault,
}

/// What a [`Constraint`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    /// `UNIQUE`.
    Unique,
    /// `FOREIGN KEY … REFERENCES`.
    ForeignKey,
    /// `CHECK (…)`.
    Check,
    /// PostgreSQL `EXCLUDE USING …`.
    Exclusion,
    /// An index that backs no constraint.
    Index,
    /// A column's `DEFAULT` expression (named by its column).
    Default,
}

impl ConstraintKind {
    /// The kind as logged: `unique`, `foreign_key`, `check`, `exclusion`, `index`, `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConstraintKind::Unique => "unique",
            ConstraintKind::ForeignKey => "foreign_key",
            ConstraintKind::Check => "check",
            ConstraintKind::Exclusion => "exclusion",
            ConstraintKind::Index => "index",
            ConstraintKind::Default => "default",
        }
    }
}

impl fmt::Display for ConstraintKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A constraint or index besides the primary key and NOT NULL, as the source defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    /// Constraint or index name (a default's column).
    pub name: String,
    /// What it is.
    pub kind: ConstraintKind,
    /// Its definition as the source prints it (`pg_get_constraintdef`, `pg_get_indexdef`, the
    /// default expression).
    pub definition: String,
}

/// What a catalog says about a table besides the columns and keys of [`Table`]: identity
/// columns, and the constraints and indexes `drop-on-target-and-recreate` does not create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDetails {
    /// Identity columns, in column order.
    pub identity: Vec<(String, Identity)>,
    /// Constraints (by kind, then name), then indexes that back no constraint (by name).
    pub constraints: Vec<Constraint>,
}
