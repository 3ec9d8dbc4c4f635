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

use crate::connect::{classify, flavor_of, opts};
use crate::export::MysqlExportSession;
use crate::{Flavor, connect};

/// How long pinning waits for prepared XA transactions to end.
const XA_WAIT: Duration = Duration::from_secs(60);

/// Session settings every export session uses, so values read the way
/// [`crate::value::value_text`] expects: UTC timestamps, no padded CHARs, no waiting on locks.
pub const EXPORT_SESSION_SETTINGS: &str = "SET time_zone = '+00:00', \
     sql_mode = REPLACE(@@sql_mode, 'PAD_CHAR_TO_FULL_LENGTH', ''); \
     SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ";

/// The export sessions of one snapshot and the cursor read under the same lock.
pub struct MysqlSnapshot {
    cursor: Option<String>,
    idle_rx: Mutex<mpsc::UnboundedReceiver<Conn>>,
    idle_tx: mpsc::UnboundedSender<Conn>,
    alive: Arc<AtomicUsize>,
    pool: Pool,
    flavor: Flavor,
}

fn q(what: &'static str) -> impl FnOnce(mysql_async::Error) -> SourceError {
    move |e| SourceError::query(what, e)
}

impl MysqlSnapshot {
    /// Opens `sessions` export sessions on one snapshot of `url`'s server and reads its GTID
    /// position (not with `ignore_replication_check`).
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
        loop {
            match lock.query_drop("FLUSH TABLES WITH READ LOCK").await {
                Ok(()) => {}
                Err(mysql_async::Error::Server(e)) if e.code == 1227 || e.code == 1045 => {
                    return Err(SourceError::query(
                        format!(
                            "user {:?} may not take the global read lock that gives {sessions} export sessions one snapshot: GRANT RELOAD ON *.* TO '{}'; (or run with --table-concurrency 1 --export-concurrency 1 once one-session export is chosen)",
                            url.user(),
                            url.user()
                        ),
                        mysql_async::Error::Server(e),
                    ));
                }
                Err(e) => return Err(SourceError::query("FLUSH TABLES WITH READ LOCK", e)),
            }
            let prepared: Vec<mysql_async::Row> =
                lock.query("XA RECOVER").await.map_err(q("listing prepared XA transactions"))?;
            if prepared.is_empty() {
                break;
            }
            lock.query_drop("UNLOCK TABLES").await.map_err(q("UNLOCK TABLES"))?;
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
        }
        let opened = open_sessions(url, sessions).await;
        let cursor = match (&opened, ignore_replication_check) {
            (Ok(_), false) => Some(read_cursor(&mut lock, flavor).await),
            _ => None,
        };
        let unlocked = lock.query_drop("UNLOCK TABLES").await;
        let conns = opened?;
        let cursor = cursor.transpose()?;
        unlocked.map_err(q("UNLOCK TABLES"))?;
        drop(lock);
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let alive = Arc::new(AtomicUsize::new(conns.len()));
        for c in conns {
            let _ = idle_tx.send(c);
        }
        Ok(MysqlSnapshot { cursor, idle_rx: Mutex::new(idle_rx), idle_tx, alive, pool, flavor })
    }

    /// The server's flavour.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }
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
            let _ = self.pool.clone().disconnect().await;
        })
    }
}
