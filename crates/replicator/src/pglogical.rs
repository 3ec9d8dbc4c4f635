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

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use molt_cursor::PgLsn;
use molt_schema::{TableName, TargetDialect};
use molt_source_pg::decode::{self, Datum, Message, Relation};
use molt_stage::{Lease, StageError, Staging};
use molt_target::apply::{
    ApplyTable, delete_one_sql, delete_sql, dlq_ddl, dlq_insert_sql, insert_sql, upsert_sql,
};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, watch};

use crate::net::{self, Image, Key, KeyMode, RowChange, TableNet, Values};
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

/// Reads a target table's columns and key for apply.
async fn load_apply_table(pool: &PgPool, name: &TableName) -> anyhow::Result<Option<ApplyTable>> {
    // Generated columns are left out: the target computes them.
    let cols: Vec<(String, String, bool, bool)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                COALESCE(a.attnum = ANY(i.indkey), false), a.attidentity = 'a' \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
         WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
         ORDER BY a.attnum",
    )
    .bind(&name.schema)
    .bind(&name.table)
    .fetch_all(pool)
    .await
    .with_context(|| format!("reading the columns of {name} on the target"))?;
    if cols.is_empty() {
        return Ok(None);
    }
    let primary_key = cols.iter().filter(|c| c.2).map(|c| c.0.clone()).collect();
    let identity_always = cols.iter().filter(|c| c.3).map(|c| c.0.clone()).collect();
    Ok(Some(ApplyTable {
        name: name.clone(),
        columns: cols.into_iter().map(|(n, t, _, _)| (n, t)).collect(),
        primary_key,
        identity_always,
    }))
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

/// An empty net effect for a bound relation.
fn new_net(b: &Bound) -> TableNet {
    TableNet::new(b.mode.clone(), b.key.clone(), b.target.columns.len(), b.full_old, HashSet::new())
}

/// A source relation bound to its target table.
struct Bound {
    target: ApplyTable,
    /// For each relation column, its index in the target's columns (None: not on the target).
    map: Vec<Option<usize>>,
    /// Target indices of the key columns, in key order.
    key: Vec<usize>,
    /// No primary key: rows are matched by all their values (the source sends whole old rows
    /// under `REPLICA IDENTITY FULL`), so changes apply in stream order, not as a net effect.
    keyless: bool,
    /// How rows that share a key within a source transaction are told apart.
    mode: KeyMode,
    /// The source sends whole old rows (`REPLICA IDENTITY FULL`).
    full_old: bool,
}

enum Change {
    /// A change of a row of a table with a primary key.
    Keyed {
        rel: u32,
        change: RowChange,
    },
    /// A new row of a keyless table.
    Insert {
        rel: u32,
        row: Vec<Option<String>>,
        present: Vec<usize>,
    },
    /// One row of a keyless table, matched by the values at `present`.
    DeleteRow {
        rel: u32,
        row: Vec<Option<String>>,
        present: Vec<usize>,
    },
    Truncate {
        rels: Vec<u32>,
    },
}

/// One statement of a batch, over many rows.
enum Stmt {
    /// Upsert of rows covering these columns.
    Upsert(Vec<usize>),
    /// Delete by primary key (rows are keys).
    Delete,
    /// Insert into a keyless table.
    Insert(Vec<usize>),
    /// Delete of one keyless row matched by these columns.
    DeleteRow(Vec<usize>),
}

impl Stmt {
    fn operation(&self) -> &'static str {
        match self {
            Self::Upsert(_) => "upsert",
            Self::Insert(_) => "insert",
            Self::Delete | Self::DeleteRow(_) => "delete",
        }
    }
}

/// The SQLSTATE of the first database error in the chain.
fn sql_state(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| match c.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
        _ => None,
    })
}

/// Whether the target refused the data itself (classes 22 data exception and 23 integrity
/// violation): retrying cannot help, setting the row aside can.
fn is_row_error(e: &anyhow::Error) -> bool {
    sql_state(e).is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
}

/// A row as a JSON object of text values (NULL as null).
fn dlq_row_json(columns: &[&str], values: &[&Option<String>]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .zip(values)
        .map(|(c, v)| {
            let v = v
                .as_ref()
                .map_or(serde_json::Value::Null, |t| serde_json::Value::String(t.clone()));
            ((*c).to_owned(), v)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// How many foreign-key levels are above `table` (parents first when sorted ascending).
fn fk_depth(parents: &HashMap<String, Vec<String>>, table: &str, seen: usize) -> usize {
    if seen > 32 {
        return seen; // a cycle: stop counting
    }
    parents.get(table).map_or(0, |ps| {
        ps.iter()
            .filter(|p| p.as_str() != table)
            .map(|p| 1 + fk_depth(parents, p, seen + 1))
            .max()
            .unwrap_or(0)
    })
}

async fn load_fk_parents(
    pool: &PgPool,
    schema: &str,
) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, p.relname::text FROM pg_constraint k \
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE k.contype = 'f' AND n.nspname = $1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .context("reading foreign keys on the target")?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (child, parent) in edges {
        out.entry(child).or_default().push(parent);
    }
    Ok(out)
}

/// Counters of one target transaction, for the log line and metrics.
#[derive(Default)]
struct Applied {
    per_table: HashMap<String, (u64, u64)>,
}

/// The apply side of a session: owns the target transaction.
struct Session {
    cfg: Arc<PglogicalConfig>,
    lease: Arc<Lease>,
    dialect: TargetDialect,
    target: PgPool,
    relations: HashMap<u32, Arc<Bound>>,
    pending: Vec<Change>,
    /// Keys of the open source transaction still shared by several rows, per relation.
    nets: HashMap<u32, TableNet>,
    fk_parents: HashMap<String, Vec<String>>,
    tx: Option<Transaction<'static, Postgres>>,
    tx_started: Instant,
    applied: Applied,
    checkpoint: Option<PgLsn>,
    last_commit_end: Option<PgLsn>,
    last_commit_time: i64,
    /// Replaying what the target refused: statements run under savepoints and refused rows
    /// go to the dead-letter table, until a checkpoint reaches this position.
    careful_until: Option<PgLsn>,
    /// The dead-letter table exists (created on first use).
    dlq_ready: bool,
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

/// What the receive side hands to the apply side, in stream order.
enum ApplyMsg {
    /// A relation's binding to its target table.
    Bind(u32, Arc<Bound>),
    /// Changes to write into the open target transaction.
    Changes(Vec<Change>),
    /// Commit the target transaction, with the checkpoint at this source commit.
    Commit { end: PgLsn, commit_time: i64 },
    /// The target's foreign keys, re-read.
    Parents(HashMap<String, Vec<String>>),
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

impl Session {
    async fn tx(&mut self) -> anyhow::Result<&mut Transaction<'static, Postgres>> {
        if self.tx.is_none() {
            let mut tx = self.target.begin().await.context("opening a target transaction")?;
            if !self.cfg.apply_timeout.is_zero() {
                let ms = self.cfg.apply_timeout.as_millis();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL statement_timeout = {ms}")))
                    .execute(&mut *tx)
                    .await
                    .context("setting --applyTimeout")?;
            }
            self.tx = Some(tx);
            self.tx_started = Instant::now();
        }
        self.tx.as_mut().context("target transaction")
    }

    /// Writes the pending changes into the open target transaction as their net effect per
    /// key: for each table, one upsert per set of present columns and one delete, with parent
    /// tables' upserts before their children's and children's deletes before their parents'.
    /// A TRUNCATE is a barrier: what came before it is written first.
    async fn flush_pending(&mut self) -> anyhow::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let mut segment = Vec::new();
        for change in pending {
            match change {
                Change::Truncate { rels } => {
                    self.apply_net(std::mem::take(&mut segment), false).await?;
                    // Rows still waiting for their key to settle were added before the
                    // truncate: it removes them too.
                    for rel in &rels {
                        self.nets.remove(rel);
                    }
                    self.truncate(&rels).await?;
                }
                other => segment.push(other),
            }
        }
        self.apply_net(segment, false).await
    }

    async fn truncate(&mut self, rels: &[u32]) -> anyhow::Result<()> {
        let names: Vec<String> = rels
            .iter()
            .filter_map(|r| self.relations.get(r))
            .map(|b| b.target.name.quoted())
            .collect();
        if !names.is_empty() {
            let sql = format!("TRUNCATE TABLE {}", names.join(", "));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut **self.tx().await?)
                .await
                .context("applying TRUNCATE")?;
        }
        Ok(())
    }

    /// Writes `changes` as their net effect. Between parts of a source transaction
    /// (`at_commit` false) keys still shared by several rows wait in `self.nets`; at a commit
    /// every key is written.
    async fn apply_net(&mut self, changes: Vec<Change>, at_commit: bool) -> anyhow::Result<()> {
        if changes.is_empty() && self.nets.is_empty() {
            return Ok(());
        }
        self.learn_existing(&changes).await?;
        let mut in_order: Vec<Change> = Vec::new();
        for c in changes {
            match c {
                Change::Keyed { rel, change } => {
                    let b = self.relations.get(&rel).context("relation")?;
                    self.nets.entry(rel).or_insert_with(|| new_net(b)).apply(change);
                }
                keyless @ (Change::Insert { .. } | Change::DeleteRow { .. }) => {
                    in_order.push(keyless)
                }
                Change::Truncate { .. } => {}
            }
        }
        let mut order: Vec<u32> = self.nets.keys().copied().collect();
        order.sort_by_key(|r| (self.depth_of(*r), *r));
        let mut effects: HashMap<u32, net::NetEffect> = HashMap::new();
        for rel in &order {
            // Moved rows missing a column (an unchanged TOAST value) read it from their old
            // key before anything of this part is written.
            self.fill_moved(*rel).await?;
            let Some(table) = self.nets.get_mut(rel) else { continue };
            let effect = if at_commit { table.take_all() } else { table.take_settled() };
            if table.is_empty() {
                self.nets.remove(rel);
            }
            let name = self.relations.get(rel).map(|b| b.target.name.to_string());
            if effect.collisions > 0 {
                warn!(table = ?name, keys = effect.collisions, "source rows left sharing a target key at commit (the source's key is not the target's primary key): the last row of each is kept");
            }
            if effect.unfilled > 0 {
                warn!(table = ?name, rows = effect.unfilled, "rows moved from keys the target does not hold: the columns the source left out (unchanged TOAST values) are not known and take the target's defaults");
            }
            effects.insert(*rel, effect);
        }
        for rel in &order {
            let Some(effect) = effects.get_mut(rel) else { continue };
            let rows = std::mem::take(&mut effect.upserts);
            for (present, rows) in net::group_by_columns(rows) {
                self.upsert(*rel, &present, &rows).await?;
            }
        }
        // Keyless tables cannot be referenced by foreign keys: their changes go after the
        // parents' upserts and before any parent's delete, in stream order.
        self.apply_in_order(in_order).await?;
        for rel in order.iter().rev() {
            let keys =
                effects.get_mut(rel).map(|e| std::mem::take(&mut e.deletes)).unwrap_or_default();
            if !keys.is_empty() {
                self.delete(*rel, &keys).await?;
            }
        }
        Ok(())
    }

    /// For tables whose rows may share a key within a transaction (modes other than
    /// [`KeyMode::Exclusive`]): tells their net effects which of the keys `changes` touch the
    /// target holds now.
    async fn learn_existing(&mut self, changes: &[Change]) -> anyhow::Result<()> {
        let mut wanted: HashMap<u32, Vec<Key>> = HashMap::new();
        for c in changes {
            if let Change::Keyed { rel, change } = c
                && let Some(b) = self.relations.get(rel)
                && b.mode != KeyMode::Exclusive
            {
                wanted.entry(*rel).or_default().extend(TableNet::keys_of(&b.key, change));
            }
        }
        for (rel, mut keys) in wanted {
            keys.sort();
            keys.dedup();
            let found = self.lookup(rel, &keys, &[]).await?;
            let b = Arc::clone(self.relations.get(&rel).context("relation")?);
            let table = self.nets.entry(rel).or_insert_with(|| new_net(&b));
            table.add_existing(found.into_iter().filter_map(|(i, _)| keys.get(i).cloned()));
        }
        Ok(())
    }

    /// Completes rows that moved from another key without some of their columns, from the
    /// target's row at that key.
    async fn fill_moved(&mut self, rel: u32) -> anyhow::Result<()> {
        let Some(keys) = self.nets.get(&rel).map(TableNet::fill_requests) else { return Ok(()) };
        if keys.is_empty() {
            return Ok(());
        }
        let width = self.relations.get(&rel).context("relation")?.target.columns.len();
        let columns: Vec<usize> = (0..width).collect();
        let found: HashMap<Key, Values> = self
            .lookup(rel, &keys, &columns)
            .await?
            .into_iter()
            .filter_map(|(i, vals)| Some((keys.get(i)?.clone(), vals)))
            .collect();
        if let Some(table) = self.nets.get_mut(&rel) {
            table.fill(&found);
        }
        Ok(())
    }

    /// Writes what waits in the net effect of `rel` (before its binding changes).
    async fn settle(&mut self, rel: u32) -> anyhow::Result<()> {
        let Some(table) = self.nets.remove(&rel) else { return Ok(()) };
        let mut effect = table.finish();
        let rows = std::mem::take(&mut effect.upserts);
        for (present, rows) in net::group_by_columns(rows) {
            self.upsert(rel, &present, &rows).await?;
        }
        self.delete(rel, &effect.deletes).await
    }

    /// Looks `keys` up on the target inside the open transaction: the index (into `keys`) of
    /// each key the table holds, with the columns at `columns` as text.
    async fn lookup(
        &mut self,
        rel: u32,
        keys: &[Key],
        columns: &[usize],
    ) -> anyhow::Result<Vec<(usize, Values)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let b = Arc::clone(self.relations.get(&rel).context("relation")?);
        let sql = molt_target::apply::lookup_sql(&b.target, columns, self.dialect);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for k in 0..b.key.len() {
            q = q.bind(keys.iter().map(|key| key[k].clone()).collect::<Vec<_>>());
        }
        let found = q
            .fetch_all(&mut **self.tx().await?)
            .await
            .with_context(|| format!("reading rows of {} the batch moves", b.target.name))?;
        found
            .iter()
            .map(|r| {
                use sqlx::Row as _;
                let ord: i64 = r.try_get(0)?;
                let vals = (0..columns.len())
                    .map(|c| r.try_get::<Option<String>, _>(c + 1))
                    .collect::<Result<Values, _>>()?;
                Ok((usize::try_from(ord - 1).unwrap_or(usize::MAX), vals))
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading looked-up rows")
    }

    /// Applies changes to keyless tables one by one, except that consecutive inserts into one
    /// table with the same columns share a statement.
    async fn apply_in_order(&mut self, changes: Vec<Change>) -> anyhow::Result<()> {
        let mut run: Option<(u32, Vec<usize>, Vec<Values>)> = None;
        for c in changes {
            match c {
                Change::Insert { rel, row, present } => match &mut run {
                    Some((r, p, rows)) if *r == rel && *p == present => rows.push(row),
                    _ => {
                        if let Some((r, p, rows)) = run.take() {
                            self.insert(r, &p, &rows).await?;
                        }
                        run = Some((rel, present, vec![row]));
                    }
                },
                Change::DeleteRow { rel, row, present } => {
                    if let Some((r, p, rows)) = run.take() {
                        self.insert(r, &p, &rows).await?;
                    }
                    self.delete_row(rel, &row, &present).await?;
                }
                _ => {}
            }
        }
        if let Some((r, p, rows)) = run.take() {
            self.insert(r, &p, &rows).await?;
        }
        Ok(())
    }

    fn depth_of(&self, rel: u32) -> usize {
        self.relations.get(&rel).map_or(0, |b| fk_depth(&self.fk_parents, &b.target.name.table, 0))
    }

    async fn insert(&mut self, rel: u32, present: &[usize], rows: &[Values]) -> anyhow::Result<()> {
        self.write(rel, &Stmt::Insert(present.to_vec()), rows).await
    }

    async fn delete_row(
        &mut self,
        rel: u32,
        row: &Values,
        present: &[usize],
    ) -> anyhow::Result<()> {
        self.write(rel, &Stmt::DeleteRow(present.to_vec()), std::slice::from_ref(row)).await
    }

    async fn upsert(&mut self, rel: u32, present: &[usize], rows: &[Values]) -> anyhow::Result<()> {
        self.write(rel, &Stmt::Upsert(present.to_vec()), rows).await
    }

    async fn delete(&mut self, rel: u32, keys: &[Values]) -> anyhow::Result<()> {
        self.write(rel, &Stmt::Delete, keys).await
    }

    /// Runs one statement over `rows`. In careful mode (replaying a batch the target refused)
    /// the statement runs under a savepoint, and if the target refuses it, row by row, setting
    /// each refused row aside in the dead-letter table.
    async fn write(&mut self, rel: u32, stmt: &Stmt, rows: &[Values]) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.careful_until.is_none() {
            return self.run_stmt(rel, stmt, rows).await;
        }
        self.savepoint("SAVEPOINT molt_stmt").await?;
        match self.run_stmt(rel, stmt, rows).await {
            Ok(()) => return self.savepoint("RELEASE SAVEPOINT molt_stmt").await,
            Err(e) if is_row_error(&e) => {
                self.savepoint("ROLLBACK TO SAVEPOINT molt_stmt").await?;
            }
            Err(e) => return Err(e),
        }
        for row in rows {
            self.savepoint("SAVEPOINT molt_row").await?;
            match self.run_stmt(rel, stmt, std::slice::from_ref(row)).await {
                Ok(()) => self.savepoint("RELEASE SAVEPOINT molt_row").await?,
                Err(e) if is_row_error(&e) => {
                    self.savepoint("ROLLBACK TO SAVEPOINT molt_row").await?;
                    self.dead_letter(rel, stmt, row, &e).await?;
                }
                Err(e) => return Err(e),
            }
        }
        self.savepoint("RELEASE SAVEPOINT molt_stmt").await
    }

    async fn savepoint(&mut self, sql: &'static str) -> anyhow::Result<()> {
        sqlx::raw_sql(sql)
            .execute(&mut **self.tx().await?)
            .await
            .with_context(|| sql.to_owned())?;
        Ok(())
    }

    /// Records a row the target refused in `--dlqTableName`, in the open transaction (so it
    /// commits exactly once, with the checkpoint).
    async fn dead_letter(
        &mut self,
        rel: u32,
        stmt: &Stmt,
        row: &Values,
        err: &anyhow::Error,
    ) -> anyhow::Result<()> {
        let dlq = self.cfg.dlq_table.clone().context("dead-letter table")?;
        let b = Arc::clone(self.relations.get(&rel).context("relation")?);
        let dlq_name = TableName::new(self.cfg.target_schema.clone(), dlq);
        if !self.dlq_ready {
            sqlx::raw_sql(sqlx::AssertSqlSafe(dlq_ddl(&dlq_name)))
                .execute(&mut **self.tx().await?)
                .await
                .with_context(|| format!("creating the dead-letter table {dlq_name}"))?;
            self.dlq_ready = true;
        }
        let columns: Vec<&str> = match stmt {
            Stmt::Delete => b.target.primary_key.iter().map(String::as_str).collect(),
            Stmt::Upsert(p) | Stmt::Insert(p) | Stmt::DeleteRow(p) => {
                p.iter().filter_map(|&i| b.target.columns.get(i)).map(|(c, _)| c.as_str()).collect()
            }
        };
        let values: Vec<&Option<String>> = match stmt {
            Stmt::Delete => row.iter().collect(),
            Stmt::Upsert(p) | Stmt::Insert(p) | Stmt::DeleteRow(p) => {
                p.iter().filter_map(|&i| row.get(i)).collect()
            }
        };
        let data = dlq_row_json(&columns, &values);
        let code = sql_state(err).unwrap_or_default();
        let message = molt_cli::error_chain(err);
        sqlx::query(sqlx::AssertSqlSafe(dlq_insert_sql(&dlq_name)))
            .bind(self.checkpoint.map(|c| c.to_string()).unwrap_or_default())
            .bind(b.target.name.to_string())
            .bind(stmt.operation())
            .bind(data)
            .bind(&message)
            .bind(&code)
            .execute(&mut **self.tx().await?)
            .await
            .with_context(|| format!("writing to the dead-letter table {dlq_name}"))?;
        metrics::counter!(molt_metrics::replicator::APPLY_DEAD_LETTERS_TOTAL, "table" => b.target.name.to_string()).increment(1);
        warn!(table = %b.target.name, operation = stmt.operation(), sql_state = %code, error = %message, dlq = %dlq_name, "the target refused a row: set aside in the dead-letter table");
        Ok(())
    }

    async fn run_stmt(&mut self, rel: u32, stmt: &Stmt, rows: &[Values]) -> anyhow::Result<()> {
        let b = self.relations.get(&rel).context("relation")?;
        let t = &b.target;
        let (sql, what) = match stmt {
            Stmt::Upsert(p) => (upsert_sql(t, p, self.dialect), "upserting into"),
            Stmt::Insert(p) => (insert_sql(t, p, self.dialect), "inserting into"),
            Stmt::Delete => (delete_sql(t, self.dialect), "deleting from"),
            Stmt::DeleteRow(p) => (delete_one_sql(t, p, self.dialect), "deleting a row from"),
        };
        let table = t.name.clone();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        match stmt {
            Stmt::Upsert(p) | Stmt::Insert(p) => {
                for &col in p {
                    q = q.bind(rows.iter().map(|r| r[col].clone()).collect::<Vec<_>>());
                }
            }
            Stmt::Delete => {
                for k in 0..b.key.len() {
                    q = q.bind(rows.iter().map(|key| key[k].clone()).collect::<Vec<_>>());
                }
            }
            Stmt::DeleteRow(p) => {
                let row = rows.first().context("a row to delete")?;
                for &col in p {
                    q = q.bind(row[col].clone());
                }
            }
        }
        let n = q
            .execute(&mut **self.tx().await?)
            .await
            .with_context(|| format!("{what} {table}"))?
            .rows_affected();
        let counts = self.applied.per_table.entry(table.to_string()).or_default();
        match stmt {
            Stmt::Upsert(_) | Stmt::Insert(_) => counts.0 += rows.len() as u64,
            Stmt::Delete => counts.1 += rows.len() as u64,
            Stmt::DeleteRow(_) => {
                counts.1 += n;
                if n == 0 {
                    warn!(table = %table, "a deleted or updated source row was not on the target (keyless table): nothing to remove");
                }
            }
        }
        Ok(())
    }

    /// Writes the checkpoint and commits the target transaction; returns the LSN to ack.
    async fn commit(&mut self) -> anyhow::Result<Option<PgLsn>> {
        self.flush_pending().await?;
        self.apply_net(Vec::new(), true).await?;
        let Some(end) = self.last_commit_end else { return Ok(None) };
        if self.checkpoint.is_some_and(|c| c >= end) {
            return Ok(None);
        }
        let started = self.tx_started;
        let key = memo_key(&self.cfg);
        let lease = Arc::clone(&self.lease);
        lease.checkpoint(&mut **self.tx().await?, &key, end.to_string().as_bytes()).await?;
        let tx = self.tx.take().context("target transaction")?;
        tx.commit().await.context("committing on the target")?;
        let took = started.elapsed();
        for (table, (ups, dels)) in std::mem::take(&mut self.applied.per_table) {
            let (schema, name) = table.split_once('.').unwrap_or(("", &table));
            let target = format!("\"{}\".\"{schema}\".\"{name}\"", self.cfg.target.database());
            if ups > 0 {
                metrics::counter!(molt_metrics::replicator::APPLY_UPSERTS_TOTAL, "schema" => schema.to_owned(), "table" => name.to_owned()).increment(ups);
                info!(conflicts = 0u64, duration = ?took, proposed = ups, target = %target, upserted = ups, "upserted rows");
            }
            if dels > 0 {
                metrics::counter!(molt_metrics::replicator::APPLY_DELETES_TOTAL, "schema" => schema.to_owned(), "table" => name.to_owned()).increment(dels);
                info!(conflicts = 0u64, duration = ?took, proposed = dels, target = %target, deleted = dels, "deleted rows");
            }
        }
        let now_micros = chrono_now_micros();
        let lag = (now_micros - (self.last_commit_time + PG_EPOCH_MICROS)).max(0) as f64 / 1e6;
        metrics::gauge!(molt_metrics::replicator::SOURCE_COMMIT_TO_APPLY_LAG_SECONDS).set(lag);
        metrics::gauge!(molt_metrics::replicator::CORE_SOURCE_LAG_SECONDS).set(lag);
        metrics::counter!(molt_metrics::replicator::CORE_FLUSH_COUNT).increment(1);
        self.checkpoint = Some(end);
        if self.careful_until.is_some_and(|until| end >= until) {
            info!("the refused batch is applied; back to full-speed batches");
            self.careful_until = None;
        }
        Ok(Some(end))
    }
}

fn chrono_now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
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
                if cfg.dlq_table.is_none() {
                    let code = sql_state(&e).unwrap_or_default();
                    break Err(e.context(format!("the target refused a row (SQLSTATE {code}): fix the data or the target table, or pass --dlqTableName to set refused rows aside and go on")));
                }
                // The session may have committed since it started: compare with the position
                // saved now, so only a replay that made no progress at all gives up.
                let now = match saved_lsn(&target, &staging, &cfg).await {
                    Ok(now) => now,
                    Err(read) => break Err(read),
                };
                if careful_from == Some(now) {
                    break Err(e.context("the target refused a row even when applied alone, and it could not be set aside in the dead-letter table"));
                }
                careful_from = Some(now);
                careful_until = Some(PgLsn::new(received.load(Ordering::Relaxed)));
                warn!(error = %molt_cli::error_chain(&e), "the target refused a row: replaying from the checkpoint, setting refused rows aside in the dead-letter table");
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

fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(sqlx_err) = c.downcast_ref::<sqlx::Error>() {
            return molt_target::is_transient(sqlx_err);
        }
        // A lost source is handled apart (source_loss), before this is asked.
        c.downcast_ref::<StageError>().is_some_and(StageError::is_transient)
    })
}

/// Applies messages from the receive side until the channel closes; reports each committed
/// checkpoint. Runs as its own task so that decoding and applying overlap.
async fn apply_loop(
    mut s: Session,
    mut rx: mpsc::Receiver<ApplyMsg>,
    done: mpsc::UnboundedSender<PgLsn>,
) -> anyhow::Result<()> {
    while let Some(msg) = rx.recv().await {
        match msg {
            ApplyMsg::Bind(rel, bound) => {
                s.settle(rel).await?;
                s.relations.insert(rel, bound);
            }
            ApplyMsg::Parents(parents) => s.fk_parents = parents,
            ApplyMsg::Changes(changes) => {
                s.pending = changes;
                s.flush_pending().await?;
            }
            ApplyMsg::Commit { end, commit_time } => {
                s.last_commit_end = Some(end);
                s.last_commit_time = commit_time;
                // Nothing new to commit (already covered by the checkpoint) is still progress.
                let lsn = s.commit().await?.unwrap_or(end);
                let _ = done.send(lsn);
            }
        }
    }
    Ok(())
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
        cfg: Arc::clone(&cfg),
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
                s.unsent_commit = Some((PgLsn::new(end_lsn.as_u64()), commit_time_micros));
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
    fn parents_sort_before_children() {
        let mut p = HashMap::new();
        p.insert("orders".to_owned(), vec!["employees".to_owned()]);
        p.insert("items".to_owned(), vec!["orders".to_owned()]);
        p.insert("self_ref".to_owned(), vec!["self_ref".to_owned()]);
        assert_eq!(fk_depth(&p, "employees", 0), 0);
        assert_eq!(fk_depth(&p, "orders", 0), 1);
        assert_eq!(fk_depth(&p, "items", 0), 2);
        assert_eq!(fk_depth(&p, "self_ref", 0), 0);
    }

    #[test]
    fn staging_names() {
        assert_eq!(staging_schema_name("_replicator.public", "defaultdb"), "_replicator");
        assert_eq!(staging_schema_name("defaultdb._replicator", "defaultdb"), "_replicator");
        assert_eq!(staging_schema_name("_replicator", "x"), "_replicator");
        assert_eq!(staging_schema_name("a.b", "x"), "a_b");
    }
}
