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
//! This module only reads the source: the slot, pgoutput, relations bound to target tables,
//! and acknowledgements of what the engine applied. Batches, retries and the target
//! transaction are the engine's ([`crate::engine`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use molt_cursor::PgLsn;
use molt_schema::TableName;
use molt_source_pg::decode::{self, Datum, Message, Relation};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::engine::apply::{Bound, Change, load_apply_table, load_fk_parents};
use crate::engine::driver::sleep_until;
use crate::engine::net::{Image, KeyMode, RowChange};
use crate::engine::{EngineConfig, Open, Session, Source, SourceMsg, supervise};
use crate::source_loss;

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

/// Decodes pgoutput messages into the engine's model, binding relations to target tables.
struct Decoder {
    cfg: Arc<PglogicalConfig>,
    /// The source's catalog (key constraints).
    source: PgPool,
    target: PgPool,
    relations: HashMap<u32, Arc<Bound>>,
    /// The source's description of each relation, to rebind on `--schemaRefresh`.
    known: HashMap<u32, Relation>,
    /// Changes decoded from the last message.
    pending: Vec<Change>,
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl Decoder {
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

/// The PostgreSQL source: a slot and a publication.
struct Pglogical {
    cfg: Arc<PglogicalConfig>,
    /// The source's catalog.
    source: PgPool,
}

impl Source for Pglogical {
    type Pos = PgLsn;

    async fn check(&self, first: bool) -> anyhow::Result<()> {
        // Whether the slot is free is judged once this instance holds the staging lease.
        check_source(&self.source, &self.cfg, first).await
    }

    async fn open(&self, open: Open<PgLsn>) -> anyhow::Result<Session<PgLsn>> {
        let cfg = &self.cfg;
        let start = open.from.map_or(Lsn::ZERO, |c| Lsn::from_u64(c.raw()));
        let rcfg =
            molt_source_pg::snapshot::replication_config(&cfg.source, &cfg.slot, &cfg.publication)?
                .with_start_lsn(start)
                .with_status_interval(cfg.standby_timeout)
                .with_buffer_size(cfg.queue_size);
        let client = ReplicationClient::connect(rcfg)
            .await
            .context("connecting to the source for replication")?;
        metrics::counter!(molt_metrics::replicator::PGLOGICAL_DIAL_SUCCESS_TOTAL).increment(1);
        let decoder = Decoder {
            cfg: Arc::clone(cfg),
            source: self.source.clone(),
            target: open.target,
            relations: HashMap::new(),
            known: HashMap::new(),
            pending: Vec::new(),
        };
        let (tx, msgs) = mpsc::channel(CHANNEL_MESSAGES);
        let task = tokio::spawn(read(client, decoder, tx, open.applied, open.from));
        Ok(Session { msgs, task })
    }

    fn dial_failure_metric(&self) -> &'static str {
        molt_metrics::replicator::PGLOGICAL_DIAL_FAILURE_TOTAL
    }
}

/// Messages decoded ahead of the engine.
const CHANNEL_MESSAGES: usize = 1024;

/// The engine went away (it drained, or failed and says why itself).
#[derive(Debug, thiserror::Error)]
#[error("the engine stopped taking changes")]
struct EngineGone;

async fn emit(tx: &mpsc::Sender<SourceMsg<PgLsn>>, msg: SourceMsg<PgLsn>) -> anyhow::Result<()> {
    tx.send(msg).await.map_err(|_| anyhow::Error::new(EngineGone))
}

/// Reads the slot until the engine lets go: decodes, skips transactions the checkpoint
/// covers, acknowledges what the engine applied, rebinds on `--schemaRefresh`.
async fn read(
    mut client: ReplicationClient,
    mut d: Decoder,
    tx: mpsc::Sender<SourceMsg<PgLsn>>,
    mut applied: watch::Receiver<Option<PgLsn>>,
    checkpoint: Option<PgLsn>,
) -> anyhow::Result<()> {
    let ack = |client: &ReplicationClient, at: Option<PgLsn>| {
        if let Some(lsn) = at {
            client.update_applied_lsn(Lsn::from_u64(lsn.raw()));
        }
    };
    let result = stream(&mut client, &mut d, &tx, &mut applied, checkpoint).await;
    // Whatever ended the session, what the engine applied is acknowledged.
    ack(&client, *applied.borrow());
    match result {
        Err(e) if e.downcast_ref::<EngineGone>().is_some() => {
            let _ = client.shutdown().await;
            Ok(())
        }
        other => other,
    }
}

async fn stream(
    client: &mut ReplicationClient,
    d: &mut Decoder,
    tx: &mpsc::Sender<SourceMsg<PgLsn>>,
    applied: &mut watch::Receiver<Option<PgLsn>>,
    checkpoint: Option<PgLsn>,
) -> anyhow::Result<()> {
    client.wait_started().await.context("starting replication on the slot")?;
    info!("begin to sync from LSN {} on slot {}", checkpoint.unwrap_or_default(), d.cfg.slot);
    let refresh_every = d.cfg.schema_refresh;
    let next_refresh =
        || (!refresh_every.is_zero()).then(|| tokio::time::Instant::now() + refresh_every);
    let mut refresh_due = next_refresh();
    let mut in_txn = false;
    let mut skip_txn = false;
    // The last commit handed to the engine (the checkpoint at first).
    let mut sent = checkpoint;
    loop {
        let event = tokio::select! {
            ev = client.recv() => ev.context("reading the replication stream")?,
            changed = applied.changed() => {
                if changed.is_err() {
                    return Err(EngineGone.into());
                }
                if let Some(lsn) = *applied.borrow_and_update() {
                    client.update_applied_lsn(Lsn::from_u64(lsn.raw()));
                }
                continue;
            }
            _ = sleep_until(refresh_due) => {
                refresh_due = next_refresh();
                for (id, bound) in d.refresh().await? {
                    emit(tx, SourceMsg::Bind(id, bound)).await?;
                }
                let parents = load_fk_parents(&d.target, &d.cfg.target_schema).await?;
                emit(tx, SourceMsg::Parents(parents)).await?;
                continue;
            }
        };
        let Some(event) = event else {
            return Err(anyhow::Error::new(source_loss::SourceUnreachable)
                .context("the source ended the replication stream"));
        };
        match event {
            ReplicationEvent::Begin { final_lsn, .. } => {
                in_txn = true;
                // Committed before the checkpoint: already applied.
                skip_txn = checkpoint.is_some_and(|c| final_lsn.as_u64() < c.raw());
            }
            ReplicationEvent::XLogData { data, .. } => {
                let msg = decode::decode(&data).context("decoding a pgoutput message")?;
                match msg {
                    Message::Relation(rel) => {
                        let id = rel.id;
                        let bound = d.bind(rel).await?;
                        emit(tx, SourceMsg::Bind(id, bound)).await?;
                    }
                    Message::Begin { .. } | Message::Commit { .. } => {}
                    other if !skip_txn => {
                        d.change(other)?;
                        for change in std::mem::take(&mut d.pending) {
                            emit(tx, SourceMsg::Change(change)).await?;
                        }
                    }
                    _ => {}
                }
            }
            ReplicationEvent::Commit { end_lsn, commit_time_micros, .. } => {
                in_txn = false;
                if std::mem::take(&mut skip_txn) {
                    continue;
                }
                let end = PgLsn::new(end_lsn.as_u64());
                // The engine takes commit times since the Unix epoch.
                let commit_time = commit_time_micros + PG_EPOCH_MICROS;
                emit(tx, SourceMsg::Commit { end, commit_time }).await?;
                sent = Some(end);
            }
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                debug!("primary keepalive received ServerWALEnd={}", PgLsn::new(wal_end.as_u64()));
                // Idle: nothing open, and everything handed over is applied, so the slot may
                // move to the server's end even when the published tables see no writes.
                let acked = *applied.borrow();
                if !in_txn && sent == acked {
                    debug!(sent = ?sent, "idle: acknowledging {}", PgLsn::new(wal_end.as_u64()));
                    client.update_applied_lsn(wal_end);
                }
            }
            ReplicationEvent::Message { .. } | ReplicationEvent::StoppedAt { .. } => {}
        }
    }
}

/// Runs replication until `stop` turns true (then drains the transaction in flight and
/// returns). Transient failures restart the session from the checkpoint with back-off.
///
/// # Errors
/// Configuration problems (missing slot, publication, staging schema, target tables), or
/// failures that persist past `--maxRetries`.
pub async fn run(cfg: PglogicalConfig, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    // The source first: a source that cannot replicate is the cause to name, whatever the
    // target's state.
    let source = molt_source_pg::connect(&cfg.source, 1).await.context("--sourceConn")?;
    let engine = EngineConfig {
        target_schema: cfg.target_schema.clone(),
        target_database: cfg.target.database().to_owned(),
        staging_schema: cfg.staging_schema.clone(),
        staging_create: cfg.staging_create,
        lease_name: format!("pglogical-{}", cfg.slot),
        lease_duration: cfg.lease_duration,
        memo_key: memo_key(&cfg),
        flush_size: cfg.flush_size,
        flush_period: cfg.flush_period,
        progress_every: cfg.standby_timeout,
        max_retries: cfg.max_retries,
        retry_initial_backoff: cfg.retry_initial_backoff,
        retry_max_backoff: cfg.retry_max_backoff,
        apply_timeout: cfg.apply_timeout,
        dlq_table: cfg.dlq_table.clone(),
    };
    let target = cfg.target.clone();
    supervise::run(Pglogical { cfg: Arc::new(cfg), source }, engine, &target, stop).await
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
