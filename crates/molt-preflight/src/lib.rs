//! The checks every command runs before touching data: parse both URLs and apply the TLS
//! rule, connect to both sides (learning whether the target is CockroachDB or PostgreSQL),
//! read the source catalog through the filters, and map every selected table's types.
//!
//! [`check`] returns a [`Plan`] or an error that says what to fix.

use std::path::Path;

use anyhow::Context as _;
use molt_schema::{
    SourceDialect, Table, TableFilter, TableName, TargetDialect, TargetTable, TypeMapFile,
    map_table,
};
use molt_source::CatalogReader;
use molt_url::{ConnUrl, Dialect};
use tracing::{info, warn};

/// What a command was asked to work on.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `--source` as typed.
    pub source: &'a str,
    /// `--target` as typed.
    pub target: &'a str,
    /// `--allow-tls-mode-disable`.
    pub allow_tls_mode_disable: bool,
    /// Compiled table filters.
    pub filter: &'a TableFilter,
    /// `--type-map-file`.
    pub type_map_file: Option<&'a Path>,
}

/// What preflight found.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Source URL.
    pub source: ConnUrl,
    /// Target URL.
    pub target: ConnUrl,
    /// Source dialect.
    pub source_dialect: SourceDialect,
    /// Target dialect, learned from the server.
    pub target_dialect: TargetDialect,
    /// Selected source tables.
    pub tables: Vec<Table>,
    /// The same tables mapped for the target.
    pub mapped: Vec<TargetTable>,
}

/// Target schema of a source table: MySQL databases land in `public`, as MOLT does.
pub fn target_name(dialect: SourceDialect, name: &TableName) -> TableName {
    match dialect {
        SourceDialect::Mysql => TableName::new("public", name.table.clone()),
        _ => name.clone(),
    }
}

/// Runs every check.
///
/// # Errors
/// The first failed check, with its fix.
pub async fn check(req: &Request<'_>) -> anyhow::Result<Plan> {
    let source = ConnUrl::parse(req.source).context("--source")?;
    let target = ConnUrl::parse(req.target).context("--target")?;
    source.check_tls(req.allow_tls_mode_disable).context("--source")?;
    target.check_tls(req.allow_tls_mode_disable).context("--target")?;
    let type_map = match req.type_map_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --type-map-file {}", path.display()))?;
            Some(TypeMapFile::from_json(&text)?)
        }
        None => None,
    };
    if target.dialect() != Dialect::Postgres {
        anyhow::bail!(
            "--target must be a CockroachDB or PostgreSQL URL (postgres://…), not {}",
            target.dialect()
        );
    }
    let target_pool = molt_source_pg::connect(&target, 1).await?;
    let version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&target_pool)
        .await
        .context("reading the target's version")?;
    let target_dialect = if version.contains("CockroachDB") {
        TargetDialect::Cockroach
    } else {
        TargetDialect::Postgres
    };
    target_pool.close().await;

    let (source_dialect, tables) = match source.dialect() {
        Dialect::Postgres => {
            let pool = molt_source_pg::connect(&source, 2).await?;
            let tables = molt_source_pg::PgCatalog::new(pool.clone()).tables(req.filter).await?;
            pool.close().await;
            (SourceDialect::Postgres, tables)
        }
        Dialect::Mysql => {
            if source.database().is_empty() {
                anyhow::bail!(
                    "--source: a MySQL URL must name the database: mysql://user:password@host:3306/DATABASE"
                );
            }
            let pool = molt_source_mysql::connect(&source).await?;
            let tables =
                molt_source_mysql::MysqlCatalog::new(pool.clone()).tables(req.filter).await?;
            let _ = pool.disconnect().await;
            (SourceDialect::Mysql, tables)
        }
        Dialect::Oracle => anyhow::bail!(
            "--source: Oracle sources need Oracle Instant Client and are not supported by this build yet"
        ),
    };
    if tables.is_empty() {
        anyhow::bail!(
            "no tables on the source match --schema-filter/--table-filter; check the filters and that the user can read the tables"
        );
    }
    let mut mapped = Vec::with_capacity(tables.len());
    for t in &tables {
        if t.primary_key.is_empty() {
            warn!(table = %t.name, "table has no primary key; it cannot be sharded or verified by key");
        }
        mapped.push(map_table(
            source_dialect,
            t,
            &target_name(source_dialect, &t.name),
            target_dialect,
            type_map.as_ref(),
        )?);
    }
    info!(
        source = %source,
        target = %target,
        source_dialect = %source_dialect,
        target_dialect = %target_dialect,
        num_tables = tables.len() as u64,
        "preflight complete"
    );
    Ok(Plan { source, target, source_dialect, target_dialect, tables, mapped })
}
