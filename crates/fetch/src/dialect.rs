//! The one place `fetch` picks a source dialect: it pins that dialect's snapshot and reads
//! its catalog details; every later phase runs on `molt_source::export`'s traits.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
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
/// Checks, before anything is written to the target, that the source can feed replication
/// from the cursor the pin will read (binlog settings and grants; `wal_level`, role and slot
/// rights): a source that cannot replicate then changes nothing on the target.
pub(crate) async fn check_replication(
    url: &ConnUrl,
    dialect: SourceDialect,
    request: &PinRequest,
) -> anyhow::Result<()> {
    check_supported(dialect)?;
    if request.ignore_replication_check {
        return Ok(());
    }
    if dialect == SourceDialect::Mysql {
        return Ok(molt_source_mysql::check_source_for_replication(url).await?);
    }
    let pool = molt_source_pg::connect(url, 1).await?;
    let mut conn = pool.acquire().await.context("connecting to the source")?;
    let checked =
        molt_source_pg::snapshot::check_replication(&mut conn, url.user(), request.slot.is_some())
            .await;
    drop(conn);
    pool.close().await;
    Ok(checked?)
}

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
