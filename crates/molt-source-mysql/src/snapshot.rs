//! The consistent point of a MySQL or MariaDB load: every export session's
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` and the GTID cursor taken while one global read
//! lock holds, as mydumper does it.
//!
//! ```text
//!   lock session                     export sessions 1..N
//!   FLUSH TABLES WITH READ LOCK
//!   XA RECOVER  (must be empty)
//!                                    START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY
//!   @@gtid_binlog_pos (MariaDB) / @@gtid_executed (MySQL)  → cdc_cursor
//!   UNLOCK TABLES                    SELECT … WHERE shard  (binary protocol)
//! ```
//!
//! No transaction commits while the lock holds, so every session sees the same data and the
//! cursor names exactly the transactions in it. A prepared XA transaction would be outside
//! the snapshot and its prepare before the cursor, so the replicator could never apply its
//! commit: pinning waits until none is prepared.
//!
//! The sessions are opened up front and handed out in turn; a session that fails is not
//! handed out again, and the snapshot cannot be rebuilt once the lock is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use molt_schema::TableName;
use molt_source::SourceError;
use molt_source::export::{ExportSession, Snapshot};
use molt_url::ConnUrl;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use tokio::sync::{Mutex, mpsc};
use tracing::{info, warn};

use crate::binlog::{check_source, check_source_with_catalog_names};
use crate::connect::{classify, flavor_of, opts};
use crate::export::MysqlExportSession;
use crate::{Flavor, connect};

/// How long pinning waits for prepared XA transactions to end.
const XA_WAIT: Duration = Duration::from_secs(60);

/// Session settings every export session uses, so values read the way
/// [`crate::value::value_text`] expects: UTC timestamps, no padded CHARs, no waiting on locks;
/// and keys sorted on all their bytes (MySQL sorts on the first `max_sort_length` only, 1024
/// by default, which would put shard bounds of long keys out of order).
pub const EXPORT_SESSION_SETTINGS: &str = "SET time_zone = '+00:00', \
     sql_mode = REPLACE(@@sql_mode, 'PAD_CHAR_TO_FULL_LENGTH', ''), max_sort_length = 8388608; \
     SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ";

/// The export sessions of one snapshot and the cursor read under the same lock.
pub struct MysqlSnapshot {
    cursor: Option<String>,
    idle_rx: Mutex<mpsc::UnboundedReceiver<Conn>>,
    idle_tx: mpsc::UnboundedSender<Conn>,
    alive: Arc<AtomicUsize>,
    pool: Pool,
    flavor: Flavor,
    /// The session holding MySQL's backup lock until [`Snapshot::release`].
    ddl_guard: Mutex<Option<Conn>>,
}

fn q(what: &'static str) -> impl FnOnce(mysql_async::Error) -> SourceError {
    move |e| SourceError::query(what, e)
}

/// Checks that replication can start from a cursor read on `url`'s server: the binlog
/// settings and the user's replication privileges, each problem named with its fix. fetch runs
/// it before it touches the target, so a source that cannot replicate changes nothing.
///
/// # Errors
/// [`SourceError`] naming the setting or `GRANT` to change.
pub async fn check_source_for_replication(url: &ConnUrl) -> Result<(), SourceError> {
    let pool = connect(url).await?;
    let mut conn = pool.get_conn().await.map_err(|e| SourceError::connect(url, classify(&e), e))?;
    let version: Option<String> =
        conn.query_first("SELECT VERSION()").await.map_err(q("reading the server version"))?;
    let flavor = flavor_of(&version.unwrap_or_default());
    let checked = check_replication_source(&pool, &mut conn, flavor).await;
    drop(conn);
    let _ = pool.disconnect().await;
    checked
}

async fn check_replication_source(
    pool: &Pool,
    conn: &mut Conn,
    flavor: Flavor,
) -> Result<(), SourceError> {
    check_source_with_catalog_names(pool, flavor).await.map_err(|e| {
        SourceError::query(
            "the source's binlog cannot carry replication from the cursor fetch prints (fix the settings below, or pass --ignore-replication-check for a load without replication)",
            e,
        )
    })?;
    match crate::grants::check_replication_privileges(conn, flavor).await {
        Ok(None) => {}
        Ok(Some(maybe)) => {
            warn!("{maybe} (roles are granted too: if one of them holds these, ignore this)")
        }
        Err(missing) => {
            return Err(SourceError::query("checking the source user's privileges", missing));
        }
    }
    if check_source(pool, flavor).await.is_err() {
        warn!(
            "binlog_row_metadata is not FULL: the binlog carries no column names, so start replicator mylogical with --fetchMetadata (or SET GLOBAL binlog_row_metadata = 'FULL')"
        );
    }
    let retention: Vec<(String, String)> = conn
        .query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('binlog_expire_logs_seconds', 'expire_logs_days')")
        .await
        .unwrap_or_default();
    if let Some(w) = retention_warning(&retention) {
        warn!("{w}");
    }
    Ok(())
}

/// A warning when the server purges binlogs within a day: replication starts from the cursor
/// only after the whole load, and a purged start position means fetching again.
pub fn retention_warning(vars: &[(String, String)]) -> Option<String> {
    let get = |name: &str| {
        vars.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
    };
    let seconds = match (get("binlog_expire_logs_seconds"), get("expire_logs_days")) {
        (Some(s), _) if s > 0.0 => s,
        (_, Some(d)) if d > 0.0 => d * 86_400.0,
        // 0 on both: binlogs are never purged by age.
        _ => return None,
    };
    (seconds < 86_400.0).then(|| {
        format!(
            "the source purges binlogs after {:.0} s: if the load and the start of replicator mylogical take longer, the cursor's binlog is gone and fetch must run again; keep them longer (SET GLOBAL binlog_expire_logs_seconds = 604800)",
            seconds
        )
    })
}

impl MysqlSnapshot {
    /// Opens `sessions` export sessions on one snapshot of `url`'s server and reads its GTID
    /// position (not with `ignore_replication_check`). The binlog settings and grants are
    /// [`check_source_for_replication`]'s, which the caller runs first (fetch does, before it
    /// touches the target).
    ///
    /// # Errors
    /// [`SourceError::Query`] naming the missing privilege or setting and its fix.
    pub async fn pin(
        url: &ConnUrl,
        sessions: u32,
        ignore_replication_check: bool,
    ) -> Result<Self, SourceError> {
        let pool = connect(url).await?;
        let mut lock =
            pool.get_conn().await.map_err(|e| SourceError::connect(url, classify(&e), e))?;
        let version: Option<String> =
            lock.query_first("SELECT VERSION()").await.map_err(q("reading the server version"))?;
        let flavor = flavor_of(&version.clone().unwrap_or_default());
        info!(flavor = ?flavor, version = %version.unwrap_or_default(), "source server");
        let sessions = sessions.max(1);
        let started = Instant::now();
        let (conns, cursor, guarded) = loop {
            match lock.query_drop("FLUSH TABLES WITH READ LOCK").await {
                Ok(()) => {}
                Err(mysql_async::Error::Server(e)) if e.code == 1227 || e.code == 1045 => {
                    if sessions == 1 && flavor == Flavor::Mariadb {
                        info!(
                            "no RELOAD privilege: exporting through one session, whose snapshot position MariaDB reports"
                        );
                        wait_for_prepared_xa(&mut lock, started, false).await?;
                        let (conns, cursor) = one_session(url, ignore_replication_check).await?;
                        break (conns, cursor, false);
                    }
                    return Err(no_lock(url, sessions, flavor, e));
                }
                Err(e) => return Err(SourceError::query("FLUSH TABLES WITH READ LOCK", e)),
            }
            if wait_for_prepared_xa(&mut lock, started, true).await? {
                break locked_sessions(url, &mut lock, flavor, sessions, ignore_replication_check)
                    .await?;
            }
        };
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let alive = Arc::new(AtomicUsize::new(conns.len()));
        for c in conns {
            let _ = idle_tx.send(c);
        }
        let ddl_guard = Mutex::new(guarded.then_some(lock));
        Ok(MysqlSnapshot {
            cursor,
            idle_rx: Mutex::new(idle_rx),
            idle_tx,
            alive,
            pool,
            flavor,
            ddl_guard,
        })
    }

    /// The server's flavour.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }
}

/// The error for a user who may not take the global read lock, with the GRANT that fixes it.
fn no_lock(
    url: &ConnUrl,
    sessions: u32,
    flavor: Flavor,
    e: mysql_async::ServerError,
) -> SourceError {
    let grant = match flavor {
        Flavor::Mariadb => format!(
            "GRANT RELOAD ON *.* TO '{}'; or export through one consistent session (slower) with --table-concurrency 1 --export-concurrency 1",
            url.user()
        ),
        Flavor::Mysql => format!("GRANT RELOAD ON *.* TO '{}';", url.user()),
    };
    SourceError::query(
        format!(
            "user {:?} may not take the global read lock (FLUSH TABLES WITH READ LOCK) that gives {sessions} export sessions one snapshot and reads the cursor at it: {grant}",
            url.user()
        ),
        mysql_async::Error::Server(e),
    )
}

/// Whether no XA transaction is prepared; with `locked`, unlocks and waits (false) while some
/// are, failing after [`XA_WAIT`]. A user who may not run `XA RECOVER` is warned and passes.
async fn wait_for_prepared_xa(
    lock: &mut Conn,
    started: Instant,
    locked: bool,
) -> Result<bool, SourceError> {
    loop {
        let prepared: Vec<mysql_async::Row> = match lock.query("XA RECOVER").await {
            Ok(rows) => rows,
            Err(mysql_async::Error::Server(e)) if e.code == 1227 || e.code == 1044 => {
                warn!(error = %e, "cannot list prepared XA transactions (XA RECOVER): one open across the snapshot would stop replication at its commit");
                return Ok(true);
            }
            Err(e) => return Err(SourceError::query("listing prepared XA transactions", e)),
        };
        if prepared.is_empty() {
            return Ok(true);
        }
        if locked {
            lock.query_drop("UNLOCK TABLES").await.map_err(q("UNLOCK TABLES"))?;
        }
        if started.elapsed() > XA_WAIT {
            return Err(SourceError::query(
                format!(
                    "{} XA transaction(s) stayed prepared for {}s (XA RECOVER lists them): a snapshot taken now would miss them and replication could not apply their commit; commit or roll them back (XA COMMIT/XA ROLLBACK), then fetch again",
                    prepared.len(),
                    XA_WAIT.as_secs()
                ),
                std::io::Error::other("prepared XA transactions"),
            ));
        }
        warn!(
            prepared = prepared.len() as u64,
            "waiting for prepared XA transactions to end before taking the snapshot"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        if locked {
            return Ok(false);
        }
    }
}

/// The statement that keeps DDL out until the export ends, taken while the read lock holds:
/// MySQL 8's `LOCK INSTANCE FOR BACKUP` (`BACKUP_ADMIN`; DML goes on). MariaDB has none
/// compatible with the read lock, so there a DDL statement on an exported table fails that
/// table's export ("table definition has changed"), which resume repeats.
pub fn ddl_guard_statement(flavor: Flavor) -> Option<&'static str> {
    match flavor {
        Flavor::Mysql => Some("LOCK INSTANCE FOR BACKUP"),
        Flavor::Mariadb => None,
    }
}

/// Takes the DDL guard on `lock`; whether it holds. Not having `BACKUP_ADMIN` is a warning.
async fn guard_ddl(lock: &mut Conn, flavor: Flavor) -> bool {
    let Some(sql) = ddl_guard_statement(flavor) else { return false };
    match lock.query_drop(sql).await {
        Ok(()) => {
            info!(
                "holding LOCK INSTANCE FOR BACKUP until the export ends: DDL waits, writes go on"
            );
            true
        }
        Err(e) => {
            warn!(error = %e, "cannot take LOCK INSTANCE FOR BACKUP (GRANT BACKUP_ADMIN ON *.* to the user): DDL on a table during its export fails that table, and resuming with --fetch-id exports it again");
            false
        }
    }
}

/// Opens the sessions while the lock holds, reads the cursor, guards against DDL, unlocks.
async fn locked_sessions(
    url: &ConnUrl,
    lock: &mut Conn,
    flavor: Flavor,
    sessions: u32,
    ignore_replication_check: bool,
) -> Result<(Vec<Conn>, Option<String>, bool), SourceError> {
    let opened = open_sessions(url, sessions).await;
    let cursor = match (&opened, ignore_replication_check) {
        (Ok(_), false) => Some(read_cursor(lock, flavor).await),
        _ => None,
    };
    let guarded = opened.is_ok() && guard_ddl(lock, flavor).await;
    let unlocked = lock.query_drop("UNLOCK TABLES").await;
    let conns = opened?;
    let cursor = cursor.transpose()?;
    unlocked.map_err(q("UNLOCK TABLES"))?;
    Ok((conns, cursor, guarded))
}

/// MariaDB without the lock: one session, and the binlog position its snapshot stands at
/// (`binlog_snapshot_file`/`binlog_snapshot_position`, turned into GTIDs by
/// `BINLOG_GTID_POS`), which no commit can come between.
async fn one_session(
    url: &ConnUrl,
    ignore_replication_check: bool,
) -> Result<(Vec<Conn>, Option<String>), SourceError> {
    let mut conns = open_sessions(url, 1).await?;
    if ignore_replication_check {
        return Ok((conns, None));
    }
    let Some(conn) = conns.first_mut() else { return Ok((conns, None)) };
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(q("reading the snapshot's binlog position"))?;
    let get = |name: &str| {
        status.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    let (Some(file), Some(pos)) = (get("binlog_snapshot_file"), get("binlog_snapshot_position"))
    else {
        return Err(SourceError::query(
            "the server reports no binlog position for the snapshot: binary logging must be on (log_bin) for replication",
            std::io::Error::other("no binlog_snapshot_file"),
        ));
    };
    let gtids: Option<String> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file.clone(), pos.clone()))
        .await
        .map_err(q("turning the snapshot's binlog position into GTIDs"))?;
    let Some(gtids) = gtids else {
        return Err(SourceError::query(
            format!("BINLOG_GTID_POS({file}, {pos}) is NULL: the binlog file is gone; fetch again"),
            std::io::Error::other("no GTID position"),
        ));
    };
    Ok((conns, Some(gtids)))
}

async fn open_sessions(url: &ConnUrl, n: u32) -> Result<Vec<Conn>, SourceError> {
    let opts = opts(url)?;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut c = Conn::new(opts.clone())
            .await
            .map_err(|e| SourceError::connect(url, classify(&e), e))?;
        c.query_drop(EXPORT_SESSION_SETTINGS).await.map_err(q("setting up an export session"))?;
        c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(q("starting an export session's consistent snapshot"))?;
        out.push(c);
    }
    Ok(out)
}

/// The GTID position while the lock holds: MariaDB's `gtid_binlog_pos` domain list, MySQL's
/// `gtid_executed` set.
async fn read_cursor(lock: &mut Conn, flavor: Flavor) -> Result<String, SourceError> {
    let (sql, fix) = match flavor {
        Flavor::Mariadb => (
            "SELECT @@GLOBAL.gtid_binlog_pos",
            "set log_bin in the server configuration and restart",
        ),
        Flavor::Mysql => {
            ("SELECT @@GLOBAL.gtid_executed", "set gtid_mode=ON and enforce_gtid_consistency=ON")
        }
    };
    let pos: Option<String> =
        lock.query_first(sql).await.map_err(q("reading the GTID position"))?;
    let pos = pos.unwrap_or_default().replace('\n', "");
    if pos.is_empty() && flavor == Flavor::Mysql {
        return Err(SourceError::query(
            format!(
                "the source has no executed GTIDs, so replication has no cursor to start from: {fix}"
            ),
            std::io::Error::other("empty gtid_executed"),
        ));
    }
    Ok(pos)
}

impl Snapshot for MysqlSnapshot {
    fn cursor(&self) -> Option<String> {
        self.cursor.clone()
    }

    fn session(&self) -> BoxFuture<'_, Result<Box<dyn ExportSession>, SourceError>> {
        Box::pin(async move {
            if self.alive.load(Ordering::SeqCst) == 0 {
                return Err(SourceError::query(
                    "every export session of the snapshot was lost, and a MySQL snapshot cannot be opened again once its lock is released: resume with --fetch-id (tables not completed are exported again from a new snapshot)",
                    std::io::Error::other("no snapshot session left"),
                ));
            }
            let conn = self.idle_rx.lock().await.recv().await.ok_or_else(|| {
                SourceError::query("taking an export session", std::io::Error::other("closed"))
            })?;
            let session =
                MysqlExportSession::new(conn, self.idle_tx.clone(), Arc::clone(&self.alive));
            Ok(Box::new(session) as Box<dyn ExportSession>)
        })
    }

    fn estimated_rows<'a>(&'a self, table: &'a TableName) -> BoxFuture<'a, u64> {
        Box::pin(async move {
            let Ok(mut c) = self.pool.get_conn().await else { return 0 };
            c.exec_first::<u64, _, _>(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&table.schema, &table.table),
            )
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
        })
    }

    fn binary_types<'a>(
        &'a self,
        _table: &'a TableName,
        _columns: &'a [String],
    ) -> BoxFuture<'a, Option<Vec<String>>> {
        Box::pin(async { None })
    }

    fn encodes_binary(&self) -> bool {
        true
    }

    fn indexed_columns<'a>(&'a self, table: &'a TableName) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let Ok(mut c) = self.pool.get_conn().await else { return Vec::new() };
            c.exec(
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND SEQ_IN_INDEX = 1",
                (&table.schema, &table.table),
            )
            .await
            .unwrap_or_default()
        })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut rx = self.idle_rx.lock().await;
            rx.close();
            while let Ok(conn) = rx.try_recv() {
                let _ = conn.disconnect().await;
            }
            if let Some(mut guard) = self.ddl_guard.lock().await.take() {
                let _ = guard.query_drop("UNLOCK INSTANCE").await;
                let _ = guard.disconnect().await;
            }
            let _ = self.pool.clone().disconnect().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlogs_purged_within_a_day_are_warned_about() {
        let v = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
        };
        assert!(retention_warning(&v(&[("binlog_expire_logs_seconds", "3600")])).is_some());
        assert!(retention_warning(&v(&[("binlog_expire_logs_seconds", "604800")])).is_none());
        assert!(
            retention_warning(&v(&[
                ("binlog_expire_logs_seconds", "0"),
                ("expire_logs_days", "0")
            ]))
            .is_none()
        );
        assert!(
            retention_warning(&v(&[
                ("binlog_expire_logs_seconds", "0"),
                ("expire_logs_days", "0.5")
            ]))
            .is_some()
        );
        assert!(retention_warning(&v(&[])).is_none());
    }

    #[test]
    fn only_mysql_keeps_ddl_out_with_the_backup_lock() {
        assert_eq!(ddl_guard_statement(Flavor::Mysql), Some("LOCK INSTANCE FOR BACKUP"));
        assert_eq!(ddl_guard_statement(Flavor::Mariadb), None);
    }
}
