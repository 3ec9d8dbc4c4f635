//! `--table-handling`: leave tables as they are, empty them, or drop and recreate them from
//! the source's definitions (columns, NOT NULL and the primary key, as MOLT does, plus
//! generated and identity columns; other constraints and indexes are the user's to add).

use std::fmt;
use std::str::FromStr;

use molt_schema::{TableDefinition, TableName, TargetDialect, ddl};
use sqlx::PgPool;
use tracing::debug;

/// What to do with target tables before loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableHandling {
    /// Load into the tables as they are (their definitions are compared first).
    #[default]
    None,
    /// Empty existing tables first.
    TruncateIfExists,
    /// Drop the tables and create them from the source's definitions.
    DropOnTargetAndRecreate,
}

impl FromStr for TableHandling {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(TableHandling::None),
            "truncate-if-exists" => Ok(TableHandling::TruncateIfExists),
            "drop-on-target-and-recreate" => Ok(TableHandling::DropOnTargetAndRecreate),
            other => Err(format!(
                "--table-handling {other:?} is not one of none, truncate-if-exists, drop-on-target-and-recreate"
            )),
        }
    }
}

impl fmt::Display for TableHandling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TableHandling::None => "none",
            TableHandling::TruncateIfExists => "truncate-if-exists",
            TableHandling::DropOnTargetAndRecreate => "drop-on-target-and-recreate",
        })
    }
}

/// A statement on the target failed.
#[derive(Debug, thiserror::Error)]
#[error("{what} on the target failed: {statement}")]
pub struct TargetError {
    /// What we were doing.
    pub what: String,
    /// The statement.
    pub statement: String,
    /// The driver error.
    #[source]
    pub source: sqlx::Error,
}

impl TargetError {
    /// The SQLSTATE of the failure, when the server sent one.
    pub fn sql_state(&self) -> Option<String> {
        match &self.source {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

async fn exec(pool: &PgPool, what: &str, statement: String) -> Result<(), TargetError> {
    debug!("running: {statement}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|source| TargetError { what: what.to_owned(), statement, source })
}

/// Drops `tables` and creates them from their definitions, with the enum types they use. An
/// enum type that other (unselected) tables still use is kept as it is.
///
/// # Errors
/// [`TargetError`] with the failing statement.
pub async fn drop_and_recreate(
    pool: &PgPool,
    definitions: &[TableDefinition],
    dialect: TargetDialect,
) -> Result<(), TargetError> {
    let tables: Vec<_> = definitions.iter().map(|d| &d.table).collect();
    for t in &tables {
        exec(pool, "dropping the table", format!("{} CASCADE", ddl::drop_table(&t.name))).await?;
    }
    let mut schemas: Vec<&str> = tables.iter().map(|t| t.name.schema.as_str()).collect();
    schemas.sort_unstable();
    schemas.dedup();
    for schema in schemas {
        let stmt = format!("CREATE SCHEMA IF NOT EXISTS {}", molt_schema::quote_ident(schema));
        exec(pool, "creating the schema", stmt).await?;
    }
    let mut done: Vec<&TableName> = Vec::new();
    for e in tables.iter().flat_map(|t| &t.enums) {
        if done.contains(&&e.name) {
            continue;
        }
        done.push(&e.name);
        match exec(pool, "dropping an enum type", ddl::drop_type(&e.name)).await {
            Ok(()) => exec(pool, "creating an enum type", ddl::create_enum(e, dialect)).await?,
            // 2BP01: still used by a table outside this load; keep it.
            Err(err) if err.sql_state().as_deref() == Some("2BP01") => {}
            Err(err) => return Err(err),
        }
    }
    for d in definitions {
        exec(pool, "creating the table", ddl::create_definition(d, dialect)).await?;
    }
    Ok(())
}

/// Moves the sequences of the identity columns of a table created by [`drop_and_recreate`]
/// past the rows loaded into it, so that rows it numbers later do not collide with them.
///
/// # Errors
/// [`TargetError`] with the failing statement.
pub async fn advance_identities(pool: &PgPool, d: &TableDefinition) -> Result<(), TargetError> {
    for column in d.identity_columns() {
        let sql = ddl::advance_identity(&d.table.name, column);
        exec(pool, "moving an identity sequence past the loaded rows", sql).await?;
    }
    Ok(())
}

/// Empties `table`.
///
/// # Errors
/// [`TargetError`] with the failing statement.
pub async fn truncate(pool: &PgPool, table: &TableName) -> Result<(), TargetError> {
    exec(pool, "truncating the table", ddl::truncate_table(table)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_molt_spellings() {
        assert_eq!("none".parse(), Ok(TableHandling::None));
        assert_eq!("truncate-if-exists".parse(), Ok(TableHandling::TruncateIfExists));
        assert_eq!(
            "drop-on-target-and-recreate".parse::<TableHandling>().map(|h| h.to_string()),
            Ok("drop-on-target-and-recreate".to_owned())
        );
        assert!("drop".parse::<TableHandling>().unwrap_err().contains("truncate-if-exists"));
    }
}
