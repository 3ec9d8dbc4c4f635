//! The consistent point of a load: one exported snapshot every export worker reads under, and
//! the LSN replication starts from.
//!
//! ```text
//!   replication session (walsender)          export workers (ordinary sessions)
//!   ───────────────────────────────          ──────────────────────────────────
//!   CREATE_REPLICATION_SLOT s LOGICAL        BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
//!     pgoutput EXPORT_SNAPSHOT                SET TRANSACTION SNAPSHOT '<snapshot_name>'
//!   → consistent_point, snapshot_name ─────▶  COPY (SELECT … WHERE shard) TO STDOUT
//!   (kept idle and open until every          COMMIT
//!    worker has imported the snapshot)
//! ```
//!
//! With a slot, the snapshot and the slot's `consistent_point` are the same instant: a change
//! committed before it is in the snapshot, a change committed after it is in the slot's
//! stream, and none is in both or neither. This is the hand-off MOLT's own fetch does not make
//! (it creates the slot, then a separate snapshot, and relies on idempotent replay).
//!
//! Without a slot, a `REPEATABLE READ` transaction exports its snapshot with
//! `pg_export_snapshot()` and reads `pg_current_wal_insert_lsn()` as the cursor; that session
//! stays open for the same reason. `--ignore-replication-check` keeps the shared snapshot but
//! reads no LSN.

use molt_cursor::PgLsn;
use molt_schema::{TableName, quote_ident};
use molt_url::{ConnUrl, TlsMode};
use pgwire_replication::{ReplicationClient, ReplicationConfig, TlsConfig};
use sqlx::{Connection, PgConnection};
use tracing::info;

use crate::connect::connect_options;

/// The publication fetch creates for the replicator, as MOLT names it.
pub const FETCH_PUBLICATION: &str = "molt_fetch";

/// How to pin the snapshot.
#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    /// Create this logical replication slot (pgoutput) and take its snapshot.
    pub slot: Option<String>,
    /// Drop and recreate the publication and the slot first.
    pub drop_and_recreate: bool,
    /// Tables the publication covers (when it is created here).
    pub tables: Vec<TableName>,
    /// Read no LSN and do not check `wal_level` (`--ignore-replication-check`).
    pub ignore_replication_check: bool,
}

/// Why the snapshot could not be taken, with what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The source is not configured for logical decoding.
    #[error(
        "the source has wal_level = {wal_level}, but replication needs logical: set wal_level = logical in postgresql.conf and restart PostgreSQL (or pass --ignore-replication-check for a load without replication)"
    )]
    NotLogical {
        /// What the server reports.
        wal_level: String,
    },
    /// The source is a standby.
    #[error(
        "the source is a standby (pg_is_in_recovery() = true); fetch with a replication slot needs the primary"
    )]
    Standby,
    /// The user may not create slots.
    #[error(
        "user {user:?} may not create replication slots: run ALTER ROLE {user} WITH REPLICATION (or use a superuser)"
    )]
    NoReplicationRight {
        /// The user.
        user: String,
    },
    /// The slot exists and we were not told to recreate it.
    #[error(
        "replication slot {slot:?} already exists: pass --pglogical-publication-and-slot-drop-and-recreate to replace it (this discards its unconsumed changes), or choose another --pglogical-replication-slot-name"
    )]
    SlotExists {
        /// The slot.
        slot: String,
    },
    /// The slot is in use by a running consumer.
    #[error(
        "replication slot {slot:?} is in use by another session (pid {pid}); stop that consumer first"
    )]
    SlotActive {
        /// The slot.
        slot: String,
        /// The backend holding it.
        pid: i32,
    },
    /// A query failed.
    #[error("{what}")]
    Query {
        /// What we were doing.
        what: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// The replication session failed.
    #[error("{what}")]
    Replication {
        /// What we were doing.
        what: String,
        /// The protocol error.
        #[source]
        source: pgwire_replication::PgWireError,
    },
    /// The server answered something we did not expect.
    #[error("{0}")]
    Protocol(String),
}

fn query_err(what: &str) -> impl FnOnce(sqlx::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Query { what: what.to_owned(), source }
}

/// A pinned snapshot. Keep it alive until every worker has run [`import_snapshot`]; then
/// [`PinnedSnapshot::release`] it.
pub struct PinnedSnapshot {
    /// The name workers pass to `SET TRANSACTION SNAPSHOT`.
    pub name: String,
    /// Where replication starts; `None` with `--ignore-replication-check`.
    pub cursor: Option<PgLsn>,
    /// The slot created, if any.
    pub slot: Option<String>,
    holder: Holder,
}

impl std::fmt::Debug for PinnedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedSnapshot")
            .field("name", &self.name)
            .field("cursor", &self.cursor)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

enum Holder {
    Replication { client: Box<ReplicationClient>, opts: Box<sqlx::postgres::PgConnectOptions> },
    Transaction(PgConnection),
}

impl PinnedSnapshot {
    /// Ends the session that holds the snapshot and waits until the slot is free for the
    /// replicator. The slot stays.
    pub async fn release(self) {
        match self.holder {
            Holder::Replication { client, opts } => {
                // Dropping a gated client that never started ends its session.
                drop(client);
                let Some(slot) = self.slot else { return };
                let Ok(mut conn) = PgConnection::connect_with(&opts).await else { return };
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while std::time::Instant::now() < deadline {
                    let active: Option<bool> = sqlx::query_scalar(
                        "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                    )
                    .bind(&slot)
                    .fetch_optional(&mut conn)
                    .await
                    .ok()
                    .flatten();
                    if active != Some(true) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                let _ = conn.close().await;
            }
            Holder::Transaction(mut conn) => {
                let _ = sqlx::raw_sql("COMMIT").execute(&mut conn).await;
                let _ = conn.close().await;
            }
        }
    }
}

/// Session settings every export and catalog session uses, so that values print the same way
/// whatever the server's defaults: ISO dates, UTC, full float precision, hex bytea.
pub const EXPORT_SESSION_SETTINGS: &str = "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
     SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET bytea_output = 'hex'; \
     SET client_encoding = 'UTF8'; SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0";

/// Opens the transaction an export worker reads in and imports the shared snapshot.
///
/// # Errors
/// [`SnapshotError::Query`] when the snapshot is gone (the holding session ended) or invalid.
pub async fn import_snapshot(conn: &mut PgConnection, name: &str) -> Result<(), SnapshotError> {
    let sql = format!(
        "{EXPORT_SESSION_SETTINGS}; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
        molt_schema::ddl::quote_literal(name)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map_err(query_err("importing the exported snapshot into an export session"))?;
    Ok(())
}

/// Checks the source can feed replication: primary, `wal_level = logical`, and (for a slot)
/// the right to create one.
///
/// # Errors
/// A [`SnapshotError`] that says what to change.
pub async fn check_replication(
    conn: &mut PgConnection,
    user: &str,
    needs_slot: bool,
) -> Result<(), SnapshotError> {
    let (wal_level, recovery, may_replicate): (String, bool, bool) = sqlx::query_as(
        "SELECT current_setting('wal_level'), pg_is_in_recovery(), \
         (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(query_err("reading wal_level and the user's rights"))?;
    if wal_level != "logical" {
        return Err(SnapshotError::NotLogical { wal_level });
    }
    if recovery {
        return Err(SnapshotError::Standby);
    }
    if needs_slot && !may_replicate {
        return Err(SnapshotError::NoReplicationRight { user: user.to_owned() });
    }
    Ok(())
}

/// Pins the snapshot of a load as `opts` say.
///
/// # Errors
/// A [`SnapshotError`] saying what to change (wal_level, rights, an existing slot).
pub async fn pin_snapshot(
    url: &ConnUrl,
    opts: &SnapshotOptions,
) -> Result<PinnedSnapshot, SnapshotError> {
    let conn_opts = connect_options(url).map_err(|e| SnapshotError::Protocol(e.to_string()))?;
    let mut conn = PgConnection::connect_with(&conn_opts)
        .await
        .map_err(query_err("connecting to the source"))?;
    match &opts.slot {
        None => {
            if !opts.ignore_replication_check {
                check_replication(&mut conn, url.user(), false).await?;
            }
            pin_with_transaction(conn, opts.ignore_replication_check).await
        }
        Some(slot) => {
            check_replication(&mut conn, url.user(), true).await?;
            prepare_publication_and_slot(&mut conn, slot, opts).await?;
            let _ = conn.close().await;
            pin_with_slot(url, slot, conn_opts).await
        }
    }
}

async fn pin_with_transaction(
    mut conn: PgConnection,
    ignore_replication_check: bool,
) -> Result<PinnedSnapshot, SnapshotError> {
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(query_err("opening the snapshot transaction"))?;
    let name: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut conn)
        .await
        .map_err(query_err("exporting a snapshot (pg_export_snapshot)"))?;
    let cursor = if ignore_replication_check {
        None
    } else {
        let text: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut conn)
            .await
            .map_err(query_err("reading pg_current_wal_insert_lsn()"))?;
        Some(parse_lsn(&text)?)
    };
    Ok(PinnedSnapshot { name, cursor, slot: None, holder: Holder::Transaction(conn) })
}

async fn prepare_publication_and_slot(
    conn: &mut PgConnection,
    slot: &str,
    opts: &SnapshotOptions,
) -> Result<(), SnapshotError> {
    let existing: Option<(bool, Option<i32>)> =
        sqlx::query_as("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1")
            .bind(slot)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_err("looking up the replication slot"))?;
    if let Some((active, pid)) = existing {
        if active {
            return Err(SnapshotError::SlotActive { slot: slot.to_owned(), pid: pid.unwrap_or(0) });
        }
        if !opts.drop_and_recreate {
            return Err(SnapshotError::SlotExists { slot: slot.to_owned() });
        }
        sqlx::query("SELECT pg_drop_replication_slot($1)")
            .bind(slot)
            .execute(&mut *conn)
            .await
            .map_err(query_err("dropping the old replication slot"))?;
    }
    let has_publication: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(FETCH_PUBLICATION)
            .fetch_one(&mut *conn)
            .await
            .map_err(query_err("looking up the publication"))?;
    if has_publication && !opts.drop_and_recreate {
        return Ok(());
    }
    if opts.drop_and_recreate {
        info!("dropping and recreating publication {FETCH_PUBLICATION}");
    }
    let tables: Vec<String> = opts.tables.iter().map(TableName::quoted).collect();
    let target = if tables.is_empty() {
        "FOR ALL TABLES".to_owned()
    } else {
        format!("FOR TABLE {}", tables.join(", "))
    };
    let sql = format!(
        "DROP PUBLICATION IF EXISTS {pub_}; CREATE PUBLICATION {pub_} {target}",
        pub_ = quote_ident(FETCH_PUBLICATION)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map_err(query_err("creating publication molt_fetch (the user must own the tables)"))?;
    Ok(())
}

/// A replication-protocol configuration for `url` (slot and publication as given).
///
/// # Errors
/// [`SnapshotError::Protocol`] for TLS settings the replication client cannot express.
pub fn replication_config(
    url: &ConnUrl,
    slot: &str,
    publication: &str,
) -> Result<ReplicationConfig, SnapshotError> {
    let mode = url.tls_mode().map_err(|e| SnapshotError::Protocol(e.to_string()))?;
    let root = url.param("sslrootcert").map(std::path::PathBuf::from);
    let tls = match mode {
        TlsMode::Disable | TlsMode::Allow | TlsMode::Prefer => TlsConfig::disabled(),
        TlsMode::Require => TlsConfig::require(),
        TlsMode::VerifyCa => TlsConfig::verify_ca(root),
        TlsMode::VerifyFull => {
            let t = TlsConfig::verify_full(root);
            if url.host().parse::<std::net::IpAddr>().is_ok() {
                t
            } else {
                t.with_sni_hostname(url.host())
            }
        }
    };
    let tls = match (url.param("sslcert"), url.param("sslkey")) {
        (Some(cert), Some(key)) => tls.with_client_cert(cert, key),
        _ => tls,
    };
    Ok(ReplicationConfig::new(
        url.host(),
        url.user(),
        url.password().unwrap_or_default(),
        url.database(),
        slot,
        publication,
    )
    .with_port(url.port())
    .with_tls(tls)
    .with_application_name("molt"))
}

async fn pin_with_slot(
    url: &ConnUrl,
    slot: &str,
    opts: sqlx::postgres::PgConnectOptions,
) -> Result<PinnedSnapshot, SnapshotError> {
    let cfg = replication_config(url, slot, FETCH_PUBLICATION)?;
    let mut client = ReplicationClient::connect_gated(cfg).await.map_err(|source| {
        SnapshotError::Replication { what: "opening a replication session".into(), source }
    })?;
    let rows = client
        .simple_query(&format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT",
            quote_ident(slot)
        ))
        .await
        .map_err(|source| SnapshotError::Replication {
            what: format!("creating replication slot {slot:?}"),
            source,
        })?;
    // slot_name, consistent_point, snapshot_name, output_plugin
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| SnapshotError::Protocol("CREATE_REPLICATION_SLOT returned no row".into()))?;
    let text = |i: usize| -> Result<String, SnapshotError> {
        row.get(i)
            .and_then(|v| v.as_ref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| {
                SnapshotError::Protocol(format!("CREATE_REPLICATION_SLOT: column {i} is missing"))
            })
    };
    let cursor = parse_lsn(&text(1)?)?;
    let name = text(2)?;
    Ok(PinnedSnapshot {
        name,
        cursor: Some(cursor),
        slot: Some(slot.to_owned()),
        holder: Holder::Replication { client: Box::new(client), opts: Box::new(opts) },
    })
}

fn parse_lsn(text: &str) -> Result<PgLsn, SnapshotError> {
    text.parse().map_err(|_| SnapshotError::Protocol(format!("the server sent LSN {text:?}")))
}
