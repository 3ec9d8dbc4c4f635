//! The one place `fetch` picks a source dialect: it pins that dialect's snapshot and reads
//! its catalog details; every later phase runs on `molt_source::export`'s traits.

use std::collections::HashMap;

use anyhow::bail;
use molt_schema::{SourceDialect, TableDetails, TableName};
use molt_source::export::Snapshot;
use molt_url::ConnUrl;

/// What pinning the snapshot needs to know.
#[derive(Debug, Clone)]
pub(crate) struct PinRequest {
    /// Replication slot to create (PostgreSQL).
    pub(crate) slot: Option<String>,
    /// Drop and recreate the slot and publication first.
    pub(crate) drop_and_recreate: bool,
    /// The exported tables.
    pub(crate) tables: Vec<TableName>,
    /// Read no cursor and check no replication settings.
    pub(crate) ignore_replication_check: bool,
    /// How many sessions read at once (a MySQL snapshot opens them all up front).
    pub(crate) sessions: u32,
}

/// Fails for a source this build cannot export from.
pub(crate) fn check_supported(dialect: SourceDialect) -> anyhow::Result<()> {
    match dialect {
        SourceDialect::Postgres | SourceDialect::Mysql => Ok(()),
        other => bail!(
            "--source: fetch from {other} is not supported by this build yet; PostgreSQL sources are"
        ),
    }
}

/// The dialect's name in the target's fetch records.
pub(crate) fn record_name(dialect: SourceDialect) -> &'static str {
    match dialect {
        SourceDialect::Postgres => "PostgreSQL",
        SourceDialect::Mysql => "MySQL",
        _ => "other",
    }
}

/// Pins one consistent snapshot of the source and its replication cursor.
pub(crate) async fn pin(
    url: &ConnUrl,
    dialect: SourceDialect,
    request: &PinRequest,
) -> anyhow::Result<Box<dyn Snapshot>> {
    check_supported(dialect)?;
    if dialect == SourceDialect::Mysql {
        if request.slot.is_some() {
            bail!(
                "--pglogical-replication-slot-name is for PostgreSQL sources; a MySQL fetch prints the GTID cursor replicator mylogical starts from"
            );
        }
        let snapshot = molt_source_mysql::MysqlSnapshot::pin(
            url,
            request.sessions,
            request.ignore_replication_check,
        )
        .await?;
        return Ok(Box::new(snapshot));
    }
    let options = molt_source_pg::snapshot::SnapshotOptions {
        slot: request.slot.clone(),
        drop_and_recreate: request.drop_and_recreate,
        tables: request.tables.clone(),
        ignore_replication_check: request.ignore_replication_check,
    };
    Ok(Box::new(molt_source_pg::PgSnapshot::pin(url, &options).await?))
}

/// Identity columns, constraints and indexes of `tables`, for tables fetch recreates.
pub(crate) async fn details(
    url: &ConnUrl,
    dialect: SourceDialect,
    tables: &[TableName],
) -> anyhow::Result<HashMap<TableName, TableDetails>> {
    check_supported(dialect)?;
    if dialect == SourceDialect::Mysql {
        // Identity columns and indexes are PostgreSQL's catalog; MySQL tables are recreated
        // from their columns and keys.
        return Ok(HashMap::new());
    }
    let pool = molt_source_pg::connect(url, 1).await?;
    let read = molt_source_pg::PgCatalog::new(pool.clone()).details(tables).await;
    pool.close().await;
    Ok(read?)
}
