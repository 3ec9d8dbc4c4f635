//! The catalog model shared by every source and target, the default type mapping of MOLT's
//! `drop-on-target-and-recreate`, and DDL for CockroachDB and PostgreSQL targets.
//!
//! Start from [`Table`] (what introspection returns), [`ColumnType`] (a source column's type
//! as the source spells it, parsed by [`ColumnType::parse`]) and [`SqlType`] (a target type).
//! [`map_table`] turns a source table into a [`TargetTable`] with a [`TargetDialect`], and
//! [`ddl::create_table`] prints it.
//!
//! ```
//! use molt_schema::{ColumnType, SourceDialect, TargetDialect, map_type};
//!
//! let ty = ColumnType::parse(SourceDialect::Mysql, "decimal(65,30) unsigned")?;
//! let mapped = map_type(SourceDialect::Mysql, &ty, TargetDialect::Cockroach)?;
//! assert_eq!(mapped.ty.render(TargetDialect::Cockroach), "DECIMAL(65,30)");
//! assert!(mapped.notes[0].contains("unsigned"));
//! # Ok::<(), molt_schema::SchemaError>(())
//! ```

pub mod civil;
pub mod compare;
pub mod ddl;
mod filter;
mod mapping;
mod model;
pub mod rules;
mod sqltype;
mod typemap_file;

pub use filter::TableFilter;
pub use mapping::{
    ColumnGeneration, Mapped, TableDefinition, TargetColumn, TargetTable, map_table, map_type,
};
pub use model::{
    Column, ColumnType, Constraint, ConstraintKind, CopyFormat, EnumType, ForeignKey, Generated,
    Identity, SourceDialect, Table, TableDetails, TableName, TargetDialect, UniqueConstraint,
    quote_ident,
};
pub use sqltype::SqlType;
pub use typemap_file::{TypeMapFile, TypeMapRule};

/// Why a schema could not be read, mapped or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A type spelling we could not parse.
    #[error("cannot parse type {spelling:?}: {reason}")]
    TypeSyntax {
        /// The spelling as written.
        spelling: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A source type with no target equivalent.
    #[error("type {spelling} ({dialect}) cannot be migrated: {reason}")]
    Unsupported {
        /// The source type as the source spells it.
        spelling: String,
        /// The source dialect.
        dialect: SourceDialect,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A column of a table could not be mapped; wraps the type error with the column.
    #[error("column {table}.{column}: {source}")]
    Column {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
        /// The type error.
        #[source]
        source: Box<SchemaError>,
    },
    /// A bad regular expression in a filter.
    #[error("{flag} {pattern:?} is not a valid regular expression: {reason}")]
    Filter {
        /// The flag it came from.
        flag: &'static str,
        /// The pattern.
        pattern: String,
        /// The regex error.
        reason: String,
    },
    /// A bad `--type-map-file`.
    #[error("type map file: {reason}")]
    TypeMapFile {
        /// What is wrong.
        reason: String,
    },
}
