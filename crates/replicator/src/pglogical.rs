//! `replicator pglogical`: pgoutput changes from a slot, applied to the target transaction by
//! transaction, with the checkpoint written in the same target transaction.
//!
//! ```text
//!  walsender ──XLogData──▶ decode ──▶ changes of one source txn ──▶ open target txn
//!                                                  (runs of same-table, same-kind rows)
//!  source COMMIT end_lsn ─▶ (batch full, flush period over, or stream paused)
//!     UPDATE staging memo SET lsn = end_lsn  ─┐ one target transaction
//!     COMMIT                                 ─┘
//!     ack end_lsn to the slot (standby status)
//! ```
//!
//! Exactly once: the checkpoint commits atomically with the rows it covers, and the slot is
//! acknowledged only afterwards. After a crash the slot resends from its confirmed position
//! (never later than the checkpoint) and transactions whose commit LSN is below the checkpoint
//! are skipped. Source transactions are applied whole and in commit order; several may share a
//! target transaction (group commit), never part of one.
//!
//! This module reads the source: the slot, pgoutput, relations bound to target tables, batches
//! and acknowledgements. How rows are written is `apply.rs`'s, and which rows a batch
//! leaves is [`crate::net`]'s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::apply::{
    Applied, ApplyConfig, ApplyMsg, Bound, Change, Session, apply_loop, is_row_error, is_transient,
    load_apply_table, load_fk_parents, sql_state,
};
use anyhow::{Context as _, bail};
use molt_cursor::PgLsn;
use molt_schema::{TableName, TargetDialect};
use molt_source_pg::decode::{self, Datum, Message, Relation};
use molt_stage::{Lease, StageError, Staging};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use sqlx::postgres::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, watch};

use crate::net::{Image, KeyMode, RowChange};
use crate::source_loss;
use tracing::{debug, info, warn};

/// What `replicator pglogical` needs, checked.
#[derive(Debug, Clone)]
pub struct PglogicalConfig {
    /// Source URL.
    pub source: molt_url::ConnUrl,
    /// Target URL.
    pub target: molt_url::ConnUrl,
    /// Schema on the target that replicated tables live in.
    pub target_schema: String,
    /// Slot to consume.
    pub slot: String,
    /// Publication to consume.
    pub publication: String,
    /// Schema (in the target database) of the staging tables.
    pub staging_schema: String,
    /// Create the staging schema when missing.
    pub staging_create: bool,
    /// Rows per target transaction before it commits.
    pub flush_size: usize,
    /// Longest a target transaction stays open while changes keep coming.
    pub flush_period: Duration,
    /// How often progress is reported to the source.
    pub standby_timeout: Duration,
    /// Restarts of the session after transient failures.
    pub max_retries: u32,
    /// First back-off between restarts.
    pub retry_initial_backoff: Duration,
    /// Longest back-off.
    pub retry_max_backoff: Duration,
    /// Longest time one statement on the target may take (`statement_timeout`).
    pub apply_timeout: Duration,
    /// Replication messages buffered between the network and apply.
    pub queue_size: usize,
    /// How long the staging lease lasts without renewal.
    pub lease_duration: Duration,
    /// Table in the target schema for rows the target refuses (None: such a row stops
    /// replication).
    pub dlq_table: Option<String>,
    /// How often target table definitions are re-read (zero: only when the source describes
    /// a relation anew).
    pub schema_refresh: Duration,
}

fn memo_key(cfg: &PglogicalConfig) -> String {
    format!("pglogical-wal-offset-{}", cfg.slot)
}

/// How long a lease lasts without renewal: a successor on another host waits at most this
/// long after a crash (on the same host it takes over at once).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// `--stagingSchema` as a schema of the target database: `_replicator.public` → `_replicator`,
/// `defaultdb._replicator` (target database `defaultdb`) → `_replicator`.
pub fn staging_schema_name(staging: &str, target_db: &str) -> String {
    match staging.split_once('.') {
        Some((a, "public")) => a.to_owned(),
        Some((a, b)) if a == target_db => b.to_owned(),
        Some((a, b)) => format!("{a}_{b}"),
        None => staging.to_owned(),
    }
}

/// Reads the saved LSN from the staging schema.
async fn saved_lsn(
    pool: &PgPool,
    staging: &Staging,
    cfg: &PglogicalConfig,
) -> anyhow::Result<Option<PgLsn>> {
    match staging.load(pool, &memo_key(cfg)).await? {
        None => Ok(None),
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            Ok(Some(text.parse().with_context(|| format!("the staging memo holds {text:?}, not an LSN; delete the row to start from the slot"))?))
        }
    }
}

/// Checks that the source can feed replication: logical WAL, a replication privilege, the
/// slot (pgoutput, in this database) and the publication. Refusals name their fix. With
/// `held_ok` false, a slot held by another connection is a wait (marked as a lost source):
/// the walsender of a connection that died, or of an instance that just lost its lease, ends
/// once the source notices.
async fn check_source(pool: &PgPool, cfg: &PglogicalConfig, held_ok: bool) -> anyhow::Result<()> {
    let wal_level: String = sqlx::query_scalar("SELECT current_setting('wal_level')")
        .fetch_one(pool)
        .await
        .map_err(source_loss::on_source)
        .context("reading wal_level on the source")?;
    if wal_level != "logical" {
        bail!(
            "the source runs with wal_level = {wal_level}, and logical replication needs wal_level = logical: run ALTER SYSTEM SET wal_level = logical; and restart the source (then create the slot again with fetch --pglogical-replication-slot-name {})",
            cfg.slot
        );
    }
    let (user, may_replicate): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, r.rolsuper OR r.rolreplication \
           OR EXISTS (SELECT 1 FROM pg_roles g WHERE (g.rolreplication OR g.rolname = 'rds_replication') \
                      AND g.oid <> r.oid AND pg_has_role(r.oid, g.oid, 'MEMBER')) \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .map_err(source_loss::on_source)
    .context("reading the source role's privileges")?;
    if !may_replicate {
        bail!(
            "the source role {user:?} may not stream replication: run ALTER ROLE {user} REPLICATION; on the source (or use a role that has it)"
        );
    }
    let slot: Option<(Option<String>, Option<String>, Option<i32>)> = sqlx::query_as(
        "SELECT plugin::text, database::text, active_pid FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(&cfg.slot)
    .fetch_optional(pool)
    .await
    .map_err(source_loss::on_source)
    .context("looking up the replication slot")?;
    let database = cfg.source.database();
    match slot {
        None => bail!(
            "replication slot {:?} does not exist: run fetch with --pglogical-replication-slot-name {0} (or SELECT pg_create_logical_replication_slot('{0}', 'pgoutput'); in the source database)",
            cfg.slot
        ),
        Some((plugin, _, _)) if plugin.as_deref() != Some("pgoutput") => {
            bail!(
                "replication slot {:?} uses plugin {plugin:?}; replicator needs a pgoutput slot",
                cfg.slot
            )
        }
        Some((_, Some(db), _)) if db != database => bail!(
            "replication slot {:?} belongs to database {db:?}, not {database:?}: point --sourceConn at {db:?}, or create a slot in {database:?}",
            cfg.slot
        ),
        Some((_, _, Some(pid))) if !held_ok => {
            return Err(anyhow::Error::new(source_loss::SourceUnreachable).context(format!(
                "replication slot {:?} is held by PID {pid} on the source: waiting for it (the walsender of a lost connection ends once the source notices, within wal_sender_timeout; if another consumer uses this slot, stop it: one replicator per slot)",
                cfg.slot
            )));
        }
        Some(_) => {}
    }
    let has_pub: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(&cfg.publication)
            .fetch_one(pool)
            .await
            .map_err(source_loss::on_source)
            .context("looking up the publication")?;
    if !has_pub {
        bail!(
            "publication {:?} does not exist: run CREATE PUBLICATION {0} FOR ALL TABLES; in the source database (fetch creates molt_fetch)",
            cfg.publication
        );
    }
    Ok(())
}

/// Whether the source checks the uniqueness of the target's key columns on every row: some
/// unique index that is not `DEFERRABLE` covers a subset of them. Otherwise rows may share a
/// key for a while inside a transaction.
async fn key_checked_at_once(
    source: &PgPool,
    rel: &Relation,
    key: &[String],
) -> anyhow::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indimmediate \
           AND i.indpred IS NULL AND i.indexprs IS NULL \
           AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                           AND a.attnum = ANY(i.indkey) AND NOT a.attname = ANY($3)))",
    )
    .bind(&rel.namespace)
    .bind(&rel.name)
    .bind(key)
    .fetch_one(source)
    .await
    .with_context(|| {
        format!("reading the unique indexes of {}.{} on the source", rel.namespace, rel.name)
    })
}

/// The receive side of a session: decodes the stream into changes and batches.
struct Intake {
    cfg: Arc<PglogicalConfig>,
    /// The source's catalog (key constraints).
    source: PgPool,
    target: PgPool,
    relations: HashMap<u32, Arc<Bound>>,
    /// The source's description of each relation, to rebind on `--schemaRefresh`.
    known: HashMap<u32, Relation>,
    pending: Vec<Change>,
    in_txn: bool,
    skip_txn: bool,
    checkpoint: Option<PgLsn>,
    batch_rows: usize,
    batch_started: Option<Instant>,
    /// End LSN and commit time of the last source commit not yet handed to the applier.
    unsent_commit: Option<(PgLsn, i64)>,
}

/// How long the stream must pause before a batch of committed source transactions commits on
/// the target (a full batch or `--flushPeriod` commits regardless).
const COMMIT_PAUSE: Duration = Duration::from_millis(1);

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl Intake {
    async fn bind(&mut self, rel: Relation) -> anyhow::Result<Arc<Bound>> {
        let name = TableName::new(self.cfg.target_schema.clone(), rel.name.clone());
        let Some(target) = load_apply_table(&self.target, &name).await? else {
            bail!(
                "table {name} does not exist on the target: create it (fetch --table-handling drop-on-target-and-recreate) before replicating {}.{}",
                rel.namespace,
                rel.name
            );
        };
        let keyless = target.primary_key.is_empty();
        if keyless && rel.replica_identity != b'f' {
            bail!(
                "table {name} has no primary key on the target, and the source table {}.{} sends only key columns for updates and deletes (REPLICA IDENTITY {}): add a primary key on source and target, or run ALTER TABLE {0}.{1} REPLICA IDENTITY FULL on the source so rows can be matched by all their values",
                rel.namespace,
                rel.name,
                match rel.replica_identity {
                    b'n' => "NOTHING",
                    b'i' => "USING INDEX",
                    _ => "DEFAULT",
                }
            );
        }
        if keyless {
            info!(table = %name, "no primary key: rows are matched by all their values (REPLICA IDENTITY FULL) and applied in order");
        }
        let map: Vec<Option<usize>> =
            rel.columns.iter().map(|c| target.position(&c.name)).collect();
        for (c, m) in rel.columns.iter().zip(&map) {
            if m.is_none() {
                warn!(
                    "schema drift detected in {}: unexpected columns: {} (its values are not applied)",
                    target.name, c.name
                );
            }
        }
        let key: Vec<usize> =
            target.primary_key.iter().filter_map(|k| target.position(k)).collect();
        let full_old = rel.replica_identity == b'f';
        // The source's replica identity, as target columns: what old rows carry.
        let identity: Vec<usize> = rel
            .columns
            .iter()
            .zip(&map)
            .filter(|(c, _)| c.key || full_old)
            .filter_map(|(_, m)| *m)
            .collect();
        if !keyless && rel.replica_identity != b'n' && !key.iter().all(|k| identity.contains(k)) {
            bail!(
                "the source table {}.{} identifies old rows by columns that do not include the target's primary key of {name} ({}), so updates and deletes could not find their rows: run ALTER TABLE {0}.{1} REPLICA IDENTITY FULL (or REPLICA IDENTITY DEFAULT with the same primary key as the target) on the source",
                rel.namespace,
                rel.name,
                target.primary_key.join(", ")
            );
        }
        let mode = if keyless
            || key_checked_at_once(&self.source, &rel, &target.primary_key).await?
        {
            KeyMode::Exclusive
        } else {
            info!(table = %name, "the source's key is checked only at commit (DEFERRABLE): rows passing through each other's keys in a transaction are told apart by their replica identity");
            KeyMode::ByValue(identity)
        };
        debug!(relation = rel.id, target = %name, mode = ?mode, "bound relation");
        let bound = Arc::new(Bound { target, map, key, keyless, mode, full_old });
        self.relations.insert(rel.id, Arc::clone(&bound));
        self.known.insert(rel.id, rel);
        Ok(bound)
    }

    /// Re-reads the target definitions of every relation seen so far (`--schemaRefresh`);
    /// returns the bindings that changed.
    async fn refresh(&mut self) -> anyhow::Result<Vec<(u32, Arc<Bound>)>> {
        let mut changed = Vec::new();
        let known: Vec<Relation> = self.known.values().cloned().collect();
        for rel in known {
            let name = TableName::new(self.cfg.target_schema.clone(), rel.name.clone());
            let now = load_apply_table(&self.target, &name).await?;
            let same = self.relations.get(&rel.id).is_some_and(|b| now.as_ref() == Some(&b.target));
            if !same {
                info!(table = %name, "target table definition changed: rebinding");
                let id = rel.id;
                changed.push((id, self.bind(rel).await?));
            }
        }
        Ok(changed)
    }

    fn change(&mut self, msg: Message) -> anyhow::Result<()> {
        let bound = |rel: u32| -> anyhow::Result<&Bound> {
            self.relations
                .get(&rel)
                .map(Arc::as_ref)
                .with_context(|| format!("change for relation {rel} before its relation message"))
        };
        let to_row = |b: &Bound, tuple: &[Datum]| -> (Vec<Option<String>>, Vec<usize>) {
            let mut row = vec![None; b.target.columns.len()];
            let mut present = Vec::new();
            for (d, m) in tuple.iter().zip(&b.map) {
                let Some(i) = *m else { continue };
                match d {
                    Datum::Unchanged => continue,
                    Datum::Null => row[i] = None,
                    Datum::Text(t) => row[i] = Some(t.clone()),
                }
                present.push(i);
            }
            present.sort_unstable();
            (row, present)
        };
        match msg {
            Message::Insert { relation, new } if bound(relation)?.keyless => {
                let (row, present) = to_row(bound(relation)?, &new);
                self.pending.push(Change::Insert { rel: relation, row, present });
            }
            Message::Update { relation, old, new } if bound(relation)?.keyless => {
                let b = bound(relation)?;
                let Some(old) = old else {
                    bail!(
                        "an update of keyless table {} came without its old row; set REPLICA IDENTITY FULL on the source table",
                        b.target.name
                    );
                };
                let (old_row, old_present) = to_row(b, &old);
                let (mut row, mut present) = to_row(b, &new);
                // Unchanged TOAST values of the new row are those of the old row.
                for &i in &old_present {
                    if !present.contains(&i) {
                        row[i] = old_row[i].clone();
                        present.push(i);
                    }
                }
                present.sort_unstable();
                self.pending.push(Change::DeleteRow {
                    rel: relation,
                    row: old_row,
                    present: old_present,
                });
                self.pending.push(Change::Insert { rel: relation, row, present });
            }
            Message::Delete { relation, old } if bound(relation)?.keyless => {
                let (row, present) = to_row(bound(relation)?, &old);
                self.pending.push(Change::DeleteRow { rel: relation, row, present });
            }
            Message::Insert { relation, new } => {
                let (vals, present) = to_row(bound(relation)?, &new);
                let change = RowChange::Insert(Image { vals, present });
                self.pending.push(Change::Keyed { rel: relation, change });
            }
            Message::Update { relation, old, new } => {
                let b = bound(relation)?;
                let (vals, present) = to_row(b, &new);
                let old = old.map(|old| to_row(b, &old).0);
                let change = RowChange::Update { old, new: Image { vals, present } };
                self.pending.push(Change::Keyed { rel: relation, change });
            }
            Message::Delete { relation, old } => {
                let (old_row, _) = to_row(bound(relation)?, &old);
                self.pending
                    .push(Change::Keyed { rel: relation, change: RowChange::Delete(old_row) });
            }
            Message::Truncate { relations, .. } => {
                self.pending.push(Change::Truncate { rels: relations })
            }
            _ => {}
        }
        Ok(())
    }
}

/// Why a session ended.
enum Ended {
    /// Asked to stop and drained.
    Shutdown,
}

/// Runs replication until `stop` turns true (then drains the transaction in flight and
/// returns). Transient failures restart the session from the checkpoint with back-off.
///
/// # Errors
/// Configuration problems (missing slot, publication, staging schema, target tables), or
/// failures that persist past `--maxRetries`.
pub async fn run(cfg: PglogicalConfig, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    info!("Replicator starting");
    // The source first: a source that cannot replicate is the cause to name, whatever the
    // target's state.
    let source = molt_source_pg::connect(&cfg.source, 1).await.context("--sourceConn")?;
    // Whether the slot is free is judged once this instance holds the staging lease.
    check_source(&source, &cfg, true).await?;
    let target = molt_source_pg::connect(&cfg.target, 4).await.context("--targetConn")?;
    let version: String = sqlx::query_scalar("SELECT version()").fetch_one(&target).await?;
    let dialect = if version.contains("CockroachDB") {
        TargetDialect::Cockroach
    } else {
        TargetDialect::Postgres
    };
    let staging = Staging::new(&cfg.staging_schema);
    staging.prepare(&target, cfg.staging_create).await?;
    let lease_name = format!("pglogical-{}", cfg.slot);
    let lease = match Lease::acquire(
        &target,
        &staging,
        &lease_name,
        cfg.lease_duration,
        stop.clone(),
    )
    .await
    {
        Ok(l) => Arc::new(l),
        Err(StageError::Stopped { .. }) => {
            info!("Server shutdown complete");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let (lost_tx, mut lost_rx) = watch::channel(None::<String>);
    let renewer = tokio::spawn(renew_lease(Arc::clone(&lease), target.clone(), lost_tx));
    let mut backoff = cfg.retry_initial_backoff;
    let mut failures = 0u32;
    let received = Arc::new(AtomicU64::new(0));
    // Dead-letter replay: from which checkpoint, up to which source position.
    let mut careful_from: Option<Option<PgLsn>> = None;
    let mut careful_until: Option<PgLsn> = None;
    // Reconnects after losing the source: not counted against --maxRetries (a source restart
    // or failover takes as long as it takes), backing off up to --retryMaxBackoff.
    let mut source_backoff = cfg.retry_initial_backoff;
    let outcome = loop {
        match check_source(&source, &cfg, false).await {
            Ok(()) => {}
            Err(e) if source_loss::source_lost(&e) => {
                warn!(error = %molt_cli::error_chain(&e), "the source is not available: retrying in {source_backoff:?}");
                if sleep_or_stop(source_backoff, &stop).await {
                    break Ok(());
                }
                source_backoff = (source_backoff * 2).min(cfg.retry_max_backoff);
                continue;
            }
            Err(e) => break Err(e),
        }
        let checkpoint = match saved_lsn(&target, &staging, &cfg).await {
            Ok(c) => c,
            Err(e) => break Err(e),
        };
        let attempt = tokio::select! {
            r = session(&cfg, dialect, target.clone(), SessionStart { lease: Arc::clone(&lease), source: source.clone(), checkpoint, careful_until, received: Arc::clone(&received) }, stop.clone()) => r,
            why = lost_rx.wait_for(Option::is_some) => {
                let why = why.map(|w| w.clone().unwrap_or_default()).unwrap_or_default();
                Err(anyhow::anyhow!(why))
            }
        };
        if attempt.is_err() {
            // --maxRetries counts failures in a row: a session that moved the checkpoint
            // before failing starts the count (and the back-off) afresh.
            let now = saved_lsn(&target, &staging, &cfg).await.unwrap_or(checkpoint);
            if now > checkpoint {
                failures = 0;
                backoff = cfg.retry_initial_backoff;
                source_backoff = cfg.retry_initial_backoff;
            }
        }
        match attempt {
            Ok(Ended::Shutdown) => break Ok(()),
            Err(e) if source_loss::source_lost(&e) => {
                warn!(error = %molt_cli::error_chain(&e), "lost the source's replication stream: reconnecting in {source_backoff:?} and resuming from the checkpoint");
                metrics::counter!(molt_metrics::replicator::PGLOGICAL_DIAL_FAILURE_TOTAL)
                    .increment(1);
                if sleep_or_stop(source_backoff, &stop).await {
                    break Ok(());
                }
                source_backoff = (source_backoff * 2).min(cfg.retry_max_backoff);
            }
            Err(e) if is_row_error(&e) => {
                // The session may have committed since it started: compare with the position
                // saved now, so only a replay that made no progress at all gives up.
                let now = match saved_lsn(&target, &staging, &cfg).await {
                    Ok(now) => now,
                    Err(read) => break Err(read),
                };
                if careful_from == Some(now) {
                    let code = sql_state(&e).unwrap_or_default();
                    let fix = if cfg.dlq_table.is_none() {
                        "fix the data or the target table, or pass --dlqTableName to set refused rows aside and go on"
                    } else {
                        "and it could not be set aside in the dead-letter table"
                    };
                    break Err(e.context(format!("the target refused a row (SQLSTATE {code}) even when changes were applied one by one in source order: {fix}")));
                }
                careful_from = Some(now);
                careful_until = Some(PgLsn::new(received.load(Ordering::Relaxed)));
                let then = if cfg.dlq_table.is_some() {
                    "setting rows it still refuses aside in the dead-letter table"
                } else {
                    "stopping if it still refuses one"
                };
                warn!(error = %molt_cli::error_chain(&e), "the target refused a batch: replaying from the checkpoint one change at a time in source order, {then}");
                metrics::counter!(molt_metrics::replicator::APPLY_ERRORS_TOTAL).increment(1);
            }
            Err(e) if failures < cfg.max_retries && is_transient(&e) => {
                failures += 1;
                warn!(error = %molt_cli::error_chain(&e), attempt = failures, "warning during tryCommit: restarting from the checkpoint");
                metrics::counter!(molt_metrics::replicator::APPLY_ERRORS_TOTAL).increment(1);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(cfg.retry_max_backoff);
            }
            Err(e) if failures >= cfg.max_retries && is_transient(&e) => {
                break Err(
                    e.context(format!("maximum number of retries ({}) exceeded", cfg.max_retries))
                );
            }
            Err(e) => break Err(e),
        }
    };
    renewer.abort();
    if let Err(e) = lease.release(&target).await {
        warn!(error = %e, "could not release the staging lease; a successor on another host waits for it to expire");
    }
    outcome?;
    info!("Server shutdown complete");
    Ok(())
}

/// Renews the lease until aborted; reports a lost lease (another instance took it).
async fn renew_lease(lease: Arc<Lease>, pool: PgPool, lost: watch::Sender<Option<String>>) {
    loop {
        tokio::time::sleep(lease.renew_every()).await;
        match lease.renew(&pool).await {
            Ok(()) => {}
            Err(e @ StageError::LeaseLost { .. }) => {
                let _ = lost.send(Some(e.to_string()));
                return;
            }
            // The apply loop notices a lost target too; the fence guards the checkpoint.
            Err(e) => {
                warn!(error = %molt_cli::error_chain(&e.into()), "renewing the staging lease failed; retrying")
            }
        }
    }
}

impl Intake {
    /// Hands the pending changes, and the commit if one is waiting, to the applier.
    async fn send(&mut self, tx: &mpsc::Sender<ApplyMsg>, commit: bool) -> anyhow::Result<()> {
        if !self.pending.is_empty() {
            let changes = std::mem::take(&mut self.pending);
            tx.send(ApplyMsg::Changes(changes))
                .await
                .map_err(|_| anyhow::anyhow!("the applier stopped"))?;
        }
        if commit && let Some((end, commit_time)) = self.unsent_commit.take() {
            tx.send(ApplyMsg::Commit { end, commit_time })
                .await
                .map_err(|_| anyhow::anyhow!("the applier stopped"))?;
            self.batch_rows = 0;
            self.batch_started = None;
        }
        Ok(())
    }
}

/// Where a session starts and what it shares with the run that restarts it.
struct SessionStart {
    lease: Arc<Lease>,
    /// The source's catalog, for what the stream does not say.
    source: PgPool,
    /// The saved position (transactions ending at or before it are skipped).
    checkpoint: Option<PgLsn>,
    /// Replay in careful (dead-letter) mode up to this position.
    careful_until: Option<PgLsn>,
    /// Highest source commit received, across sessions.
    received: Arc<AtomicU64>,
}

async fn session(
    cfg: &PglogicalConfig,
    dialect: TargetDialect,
    target: PgPool,
    start_at: SessionStart,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Ended> {
    let SessionStart { lease, source, checkpoint, careful_until, received } = start_at;
    let start = checkpoint.map_or(Lsn::ZERO, |c| Lsn::from_u64(c.raw()));
    let rcfg =
        molt_source_pg::snapshot::replication_config(&cfg.source, &cfg.slot, &cfg.publication)?
            .with_start_lsn(start)
            .with_status_interval(cfg.standby_timeout)
            .with_buffer_size(cfg.queue_size);
    let mut client = ReplicationClient::connect(rcfg)
        .await
        .context("connecting to the source for replication")?;
    client.wait_started().await.context("starting replication on the slot")?;
    metrics::counter!(molt_metrics::replicator::PGLOGICAL_DIAL_SUCCESS_TOTAL).increment(1);
    info!("begin to sync from LSN {} on slot {}", checkpoint.unwrap_or_default(), cfg.slot);
    let cfg = Arc::new(cfg.clone());
    let fk_parents = load_fk_parents(&target, &cfg.target_schema).await?;
    let applier = Session {
        cfg: Arc::new(ApplyConfig {
            target_schema: cfg.target_schema.clone(),
            target_database: cfg.target.database().to_owned(),
            dlq_table: cfg.dlq_table.clone(),
            apply_timeout: cfg.apply_timeout,
            memo_key: memo_key(&cfg),
        }),
        lease,
        dialect,
        target: target.clone(),
        relations: HashMap::new(),
        pending: Vec::new(),
        nets: HashMap::new(),
        fk_parents,
        tx: None,
        tx_started: Instant::now(),
        applied: Applied::default(),
        checkpoint,
        last_commit_end: None,
        last_commit_time: 0,
        careful_until,
        dlq_ready: false,
    };
    // Two messages in flight: the next batch decodes while the last one applies.
    let (apply_tx, apply_rx) = mpsc::channel::<ApplyMsg>(2);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<PgLsn>();
    let mut apply_task = tokio::spawn(apply_loop(applier, apply_rx, done_tx));
    let mut s = Intake {
        cfg: Arc::clone(&cfg),
        source,
        target,
        relations: HashMap::new(),
        known: HashMap::new(),
        pending: Vec::new(),
        in_txn: false,
        skip_txn: false,
        checkpoint,
        batch_rows: 0,
        batch_started: None,
        unsent_commit: None,
    };
    let mut sent: Option<PgLsn> = checkpoint;
    let mut acked: Option<PgLsn> = checkpoint;
    let mut commit_due: Option<tokio::time::Instant> = None;
    let mut last_progress_log = Instant::now();
    let mut stopping = *stop.borrow();
    let refresh_every = cfg.schema_refresh;
    let next_refresh =
        || (!refresh_every.is_zero()).then(|| tokio::time::Instant::now() + refresh_every);
    let mut refresh_due = next_refresh();
    loop {
        if stopping && !s.in_txn {
            if let Some((end, _)) = s.unsent_commit {
                sent = Some(end);
            }
            s.send(&apply_tx, true).await?;
            drop(apply_tx);
            apply_task.await.context("the apply task ended abnormally")??;
            while let Ok(lsn) = done_rx.try_recv() {
                acked = Some(lsn);
            }
            if let Some(lsn) = acked {
                client.update_applied_lsn(Lsn::from_u64(lsn.raw()));
            }
            let _ = sent;
            let _ = client.shutdown().await;
            info!("Interrupted");
            return Ok(Ended::Shutdown);
        }
        let event = tokio::select! {
            ev = client.recv() => ev.context("reading the replication stream")?,
            _ = sleep_until(commit_due) => {
                commit_due = None;
                if let Some((end, _)) = s.unsent_commit {
                    sent = Some(end);
                }
                s.send(&apply_tx, true).await?;
                continue;
            }
            Some(lsn) = done_rx.recv() => {
                debug!("applied through {lsn}");
                acked = Some(lsn);
                client.update_applied_lsn(Lsn::from_u64(lsn.raw()));
                if last_progress_log.elapsed() >= cfg.standby_timeout {
                    info!("progressed to LSN: {lsn}");
                    last_progress_log = Instant::now();
                }
                continue;
            }
            res = &mut apply_task => {
                res.context("the apply task ended abnormally")??;
                bail!("the apply task stopped");
            }
            changed = stop.changed() => {
                stopping = changed.is_err() || *stop.borrow();
                continue;
            }
            _ = sleep_until(refresh_due) => {
                refresh_due = next_refresh();
                let rebound = s.refresh().await?;
                let parents = load_fk_parents(&s.target, &cfg.target_schema).await?;
                // Changes decoded under the old definitions go first.
                s.send(&apply_tx, false).await?;
                for (id, bound) in rebound {
                    apply_tx.send(ApplyMsg::Bind(id, bound)).await.map_err(|_| anyhow::anyhow!("the applier stopped"))?;
                }
                apply_tx.send(ApplyMsg::Parents(parents)).await.map_err(|_| anyhow::anyhow!("the applier stopped"))?;
                continue;
            }
        };
        let Some(event) = event else {
            return Err(anyhow::Error::new(source_loss::SourceUnreachable)
                .context("the source ended the replication stream"));
        };
        // A committed batch waits for the stream to pause (no event for COMMIT_PAUSE), so a
        // backlog drains in full batches while a trickle commits at once.
        if commit_due.is_some() {
            commit_due = Some(tokio::time::Instant::now() + COMMIT_PAUSE);
        }
        match event {
            ReplicationEvent::Begin { final_lsn, .. } => {
                s.in_txn = true;
                // Committed before the checkpoint: already applied.
                s.skip_txn = s.checkpoint.is_some_and(|c| final_lsn.as_u64() < c.raw());
            }
            ReplicationEvent::XLogData { data, .. } => {
                let msg = decode::decode(&data).context("decoding a pgoutput message")?;
                match msg {
                    Message::Relation(rel) => {
                        let id = rel.id;
                        let bound = s.bind(rel).await?;
                        // Changes bound to the old definition go first.
                        s.send(&apply_tx, false).await?;
                        apply_tx
                            .send(ApplyMsg::Bind(id, bound))
                            .await
                            .map_err(|_| anyhow::anyhow!("the applier stopped"))?;
                    }
                    Message::Begin { .. } | Message::Commit { .. } => {}
                    other if !s.skip_txn => {
                        s.change(other)?;
                        s.batch_rows += 1;
                        s.batch_started.get_or_insert_with(Instant::now);
                        // A large source transaction is handed over in parts, written into
                        // the open target transaction, so memory stays bounded.
                        if s.pending.len() >= s.cfg.flush_size {
                            s.send(&apply_tx, false).await?;
                        }
                    }
                    _ => {}
                }
            }
            ReplicationEvent::Commit { end_lsn, commit_time_micros, .. } => {
                s.in_txn = false;
                received.fetch_max(end_lsn.as_u64(), Ordering::Relaxed);
                if s.skip_txn {
                    s.skip_txn = false;
                    continue;
                }
                // The engine takes commit times since the Unix epoch.
                let unix_micros = commit_time_micros + PG_EPOCH_MICROS;
                s.unsent_commit = Some((PgLsn::new(end_lsn.as_u64()), unix_micros));
                let full = s.batch_rows >= cfg.flush_size
                    || s.batch_started.is_some_and(|t| t.elapsed() >= cfg.flush_period);
                if full {
                    commit_due = None;
                    sent = Some(PgLsn::new(end_lsn.as_u64()));
                    s.send(&apply_tx, true).await?;
                } else {
                    // Wait briefly for the next transaction to share this commit.
                    commit_due = Some(tokio::time::Instant::now() + COMMIT_PAUSE);
                }
            }
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                debug!("primary keepalive received ServerWALEnd={}", PgLsn::new(wal_end.as_u64()));
                // Idle: nothing open, pending or unapplied, so the slot may move to the
                // server's end even when the published tables see no writes.
                let idle = !s.in_txn
                    && s.pending.is_empty()
                    && s.unsent_commit.is_none()
                    && commit_due.is_none()
                    && sent == acked;
                if idle {
                    debug!(sent = ?sent, acked = ?acked, "idle: acknowledging {}", PgLsn::new(wal_end.as_u64()));
                    client.update_applied_lsn(wal_end);
                }
            }
            ReplicationEvent::Message { .. } | ReplicationEvent::StoppedAt { .. } => {}
        }
    }
}

/// Sleeps for `d` unless asked to stop first; returns whether it was.
async fn sleep_or_stop(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    let mut stop = stop.clone();
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        assert_eq!(staging_schema_name("_replicator.public", "defaultdb"), "_replicator");
        assert_eq!(staging_schema_name("defaultdb._replicator", "defaultdb"), "_replicator");
        assert_eq!(staging_schema_name("_replicator", "x"), "_replicator");
        assert_eq!(staging_schema_name("a.b", "x"), "a_b");
    }
}
