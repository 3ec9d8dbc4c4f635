//! `replicator mylogical`: the MySQL or MariaDB binlog, from a GTID position, into the engine.
//!
//! ```text
//!  binlog ──events──▶ decode (table maps bound to target tables, row images as text)
//!     GTID  ─▶ transaction starts (skipped when the checkpoint covers it)
//!     rows  ─▶ SourceMsg::Change …
//!     XID   ─▶ SourceMsg::Commit { end: checkpoint + this GTID }
//! ```
//!
//! The position is the source's own: a MySQL GTID set (every executed GTID, several source
//! UUIDs with gaps) or a MariaDB GTID list (the last GTID per domain). It grows by each
//! committed transaction's GTID and is saved in the staging memo in the same target
//! transaction as the rows, so a restart resumes exactly after the last applied transaction;
//! `--defaultGTIDSet` is read only when the memo is empty.
//!
//! The binlog has no acknowledgements: the source keeps its files by its own expiry
//! (`binlog_expire_logs_seconds`). A position the source no longer holds stops replication
//! with the fix (run fetch again for a new cursor).

mod position;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use molt_cursor::{MariadbGtidList, MysqlGtidSet};
use molt_schema::{TableFilter, TableName};
use molt_source::CatalogReader as _;
use molt_source_mysql::binlog::{
    self, BinlogError, BinlogOptions, BinlogReader, BinlogTable, Event, Gtid, RowImage, RowOp,
};
use molt_source_mysql::{Flavor, MysqlCatalog};
use molt_url::ConnUrl;
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::engine::apply::{Bound, Change, load_apply_table, load_fk_parents};
use crate::engine::net::{Image, KeyMode, RowChange};
use crate::engine::{EngineConfig, Open, Session, Source, SourceMsg, supervise};
use crate::source_loss;

pub use position::{GtidPosition, Gtids};

/// What `replicator mylogical` needs, checked.
#[derive(Debug, Clone)]
pub struct MylogicalConfig {
    /// Source URL (its database is the one replicated).
    pub source: ConnUrl,
    /// Target URL.
    pub target: ConnUrl,
    /// Schema on the target that replicated tables live in.
    pub target_schema: String,
    /// Where to start when the staging memo holds nothing (`--defaultGTIDSet`).
    pub default_gtid: Option<String>,
    /// Server id of this binlog client (`--replicationProcessID`).
    pub server_id: u32,
    /// Take column names from the catalog, not the binlog (`--fetchMetadata`).
    pub fetch_metadata: bool,
    /// Schema (in the target database) of the staging tables.
    pub staging_schema: String,
    /// Create the staging schema when missing.
    pub staging_create: bool,
    /// Row changes per target transaction before it commits.
    pub flush_size: usize,
    /// Longest a target transaction stays open while changes keep coming.
    pub flush_period: Duration,
    /// Restarts of the session after transient failures.
    pub max_retries: u32,
    /// First back-off between restarts.
    pub retry_initial_backoff: Duration,
    /// Longest back-off.
    pub retry_max_backoff: Duration,
    /// Longest time one statement on the target may take.
    pub apply_timeout: Duration,
    /// How long the staging lease lasts without renewal.
    pub lease_duration: Duration,
    /// Table in the target schema for rows the target refuses.
    pub dlq_table: Option<String>,
    /// How often target table definitions are re-read (zero: only on new table maps).
    pub schema_refresh: Duration,
    /// How often an idle source must show it is alive (binlog heartbeat).
    pub heartbeat: Duration,
}

/// How often an idle source sends a heartbeat; three missed ones mean a lost source.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

fn memo_key(cfg: &MylogicalConfig) -> String {
    format!("mylogical-gtid-{}-{}", cfg.source.host_port(), cfg.source.database())
}

/// The MySQL or MariaDB source.
struct Mylogical {
    cfg: Arc<MylogicalConfig>,
    pool: mysql_async::Pool,
    flavor: Flavor,
}

impl Source for Mylogical {
    type Pos = GtidPosition;

    async fn check(&self, _first: bool) -> anyhow::Result<()> {
        let checked = if self.cfg.fetch_metadata {
            binlog::check_source_with_catalog_names(&self.pool, self.flavor).await
        } else {
            binlog::check_source(&self.pool, self.flavor).await
        };
        checked.map_err(source_error)
    }

    async fn open(&self, open: Open<GtidPosition>) -> anyhow::Result<Session<GtidPosition>> {
        let from = match open.from {
            Some(saved) => saved,
            None => self.default_start()?,
        };
        let opts = BinlogOptions { server_id: self.cfg.server_id, heartbeat: self.cfg.heartbeat };
        let reader = binlog::open(&self.cfg.source, &from.start(), &opts)
            .await
            .map_err(source_error)
            .context("starting the binlog stream")?;
        metrics::counter!(molt_metrics::replicator::MYLOGICAL_DIAL_SUCCESS_TOTAL).increment(1);
        info!("begin to sync binlog from GTID set {from}");
        let decoder = Decoder {
            cfg: Arc::clone(&self.cfg),
            catalog: MysqlCatalog::new(self.pool.clone()),
            source_tables: HashMap::new(),
            target: open.target,
            ids: HashMap::new(),
            maps: HashMap::new(),
        };
        let (tx, msgs) = mpsc::channel(CHANNEL_MESSAGES);
        let task = tokio::spawn(read(reader, decoder, tx, open.applied, from));
        Ok(Session { msgs, task })
    }

    fn dial_failure_metric(&self) -> &'static str {
        molt_metrics::replicator::MYLOGICAL_DIAL_FAILURE_TOTAL
    }
}

impl Mylogical {
    /// `--defaultGTIDSet`, checked against the server's flavour.
    fn default_start(&self) -> anyhow::Result<GtidPosition> {
        let Some(text) = &self.cfg.default_gtid else {
            bail!(
                "nothing is saved in the staging schema and no --defaultGTIDSet was given: pass the cdc_cursor that fetch printed (--defaultGTIDSet '<cdc_cursor>')"
            );
        };
        let parsed = match self.flavor {
            Flavor::Mariadb => text.parse::<MariadbGtidList>().map(Gtids::Mariadb).with_context(|| format!("--defaultGTIDSet {text:?}: the source is MariaDB, whose positions are domain-server-seq lists like 0-1-100 (SELECT @@gtid_binlog_pos)"))?,
            Flavor::Mysql => text.parse::<MysqlGtidSet>().map(Gtids::Mysql).with_context(|| format!("--defaultGTIDSet {text:?}: the source is MySQL, whose positions are GTID sets like uuid:1-29 (SELECT @@gtid_executed)"))?,
        };
        Ok(GtidPosition::new(parsed))
    }
}

/// A binlog error as the engine needs it: a lost source is marked as one.
fn source_error(e: BinlogError) -> anyhow::Error {
    if e.is_source_lost() {
        anyhow::Error::new(e).context(source_loss::SourceUnreachable)
    } else {
        e.into()
    }
}

/// Messages decoded ahead of the engine.
const CHANNEL_MESSAGES: usize = 1024;

/// A table map of the stream, bound for the engine.
struct Mapped {
    /// Our id of the table (table ids of the server change across table maps).
    rel: u32,
    table: Arc<BinlogTable>,
    /// The engine's binding; None for tables outside the replicated database.
    bound: Option<Arc<Bound>>,
    /// Source catalog type of each binlog column, when known.
    types: Vec<Option<molt_schema::ColumnType>>,
}

/// Decodes binlog events into the engine's model.
struct Decoder {
    cfg: Arc<MylogicalConfig>,
    catalog: MysqlCatalog,
    /// The source catalog's tables of the replicated database, by name.
    source_tables: HashMap<String, molt_schema::Table>,
    target: PgPool,
    /// Our id per source table name.
    ids: HashMap<(String, String), u32>,
    /// Table maps by the server's table id.
    maps: HashMap<u64, Mapped>,
}

impl Decoder {
    /// Re-reads the source catalog of the replicated database.
    async fn read_catalog(&mut self) -> anyhow::Result<()> {
        let tables = self
            .catalog
            .tables(&TableFilter::all())
            .await
            .map_err(|e| anyhow::Error::new(e).context("reading the source catalog"))?;
        self.source_tables = tables.into_iter().map(|t| (t.name.table.clone(), t)).collect();
        Ok(())
    }

    /// Takes a table map: binds the table (again, when its layout changed) and says whether
    /// the engine must learn the new binding.
    async fn table_map(
        &mut self,
        table: Arc<BinlogTable>,
    ) -> anyhow::Result<Option<(u32, Arc<Bound>)>> {
        let next_id = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        let rel = *self.ids.entry((table.schema.clone(), table.name.clone())).or_insert(next_id);
        if let Some(m) = self.maps.get(&table.id)
            && m.table == table
        {
            return Ok(None);
        }
        // The same table under a new server id, with the same layout: reuse the binding.
        if let Some(old) =
            self.maps.values().find(|m| m.rel == rel && m.table.columns == table.columns)
        {
            let mapped = Mapped {
                rel,
                table: Arc::clone(&table),
                bound: old.bound.clone(),
                types: old.types.clone(),
            };
            self.maps.retain(|_, m| m.rel != rel);
            self.maps.insert(table.id, mapped);
            return Ok(None);
        }
        self.maps.retain(|_, m| m.rel != rel);
        if table.schema != self.cfg.source.database() {
            self.maps.insert(table.id, Mapped { rel, table, bound: None, types: Vec::new() });
            return Ok(None);
        }
        let known = self
            .source_tables
            .get(&table.name)
            .is_some_and(|t| t.columns.len() == table.columns.len());
        if !known {
            self.read_catalog().await?;
        }
        let (bound, types) = self.bind(&table).await?;
        let bound = Arc::new(bound);
        self.maps.insert(table.id, Mapped { rel, table, bound: Some(Arc::clone(&bound)), types });
        Ok(Some((rel, bound)))
    }

    async fn bind(
        &self,
        table: &BinlogTable,
    ) -> anyhow::Result<(Bound, Vec<Option<molt_schema::ColumnType>>)> {
        let name = TableName::new(self.cfg.target_schema.clone(), table.name.clone());
        let Some(target) = load_apply_table(&self.target, &name).await? else {
            bail!(
                "table {name} does not exist on the target: create it (fetch --table-handling drop-on-target-and-recreate) before replicating {}.{}",
                table.schema,
                table.name
            );
        };
        let source = self.source_tables.get(&table.name);
        let names: Vec<String> = if self.cfg.fetch_metadata
            || table.columns.iter().any(|c| c.name.is_empty())
        {
            let Some(source) = source.filter(|s| s.columns.len() == table.columns.len()) else {
                bail!(
                    "the binlog does not name the columns of {}.{} and the source catalog does not match its layout: set binlog_row_metadata = FULL on the source (SET GLOBAL binlog_row_metadata = 'FULL')",
                    table.schema,
                    table.name
                );
            };
            source.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            table.columns.iter().map(|c| c.name.clone()).collect()
        };
        let types: Vec<Option<molt_schema::ColumnType>> =
            names.iter().map(|n| source.and_then(|s| s.column(n)).map(|c| c.ty.clone())).collect();
        let map: Vec<Option<usize>> = names.iter().map(|n| target.position(n)).collect();
        for (n, m) in names.iter().zip(&map) {
            let generated = source.and_then(|s| s.column(n)).is_some_and(|c| c.generated.is_some());
            if m.is_none() && !generated {
                warn!(
                    "schema drift detected in {}: unexpected columns: {n} (its values are not applied)",
                    target.name
                );
            }
        }
        let key: Vec<usize> =
            target.primary_key.iter().filter_map(|k| target.position(k)).collect();
        let keyless = target.primary_key.is_empty();
        if keyless {
            info!(table = %name, "no primary key: rows are matched by all their values (the binlog's full before-image) and applied in order");
        }
        debug!(table = %name, "bound binlog table");
        // The binlog carries whole before-images (binlog_row_image = FULL), and MySQL checks
        // unique keys row by row: no two rows hold one key at any moment of a transaction.
        let bound = Bound { target, map, key, keyless, mode: KeyMode::Exclusive, full_old: true };
        Ok((bound, types))
    }

    /// Re-reads the target definitions of the bound tables (`--schemaRefresh`); returns the
    /// bindings that changed.
    async fn refresh(&mut self) -> anyhow::Result<Vec<(u32, Arc<Bound>)>> {
        let mut changed = Vec::new();
        let ids: Vec<u64> =
            self.maps.iter().filter(|(_, m)| m.bound.is_some()).map(|(id, _)| *id).collect();
        for id in ids {
            let Some(m) = self.maps.get(&id) else { continue };
            let name = TableName::new(self.cfg.target_schema.clone(), m.table.name.clone());
            let now = load_apply_table(&self.target, &name).await?;
            let same = m.bound.as_ref().is_some_and(|b| now.as_ref() == Some(&b.target));
            if !same {
                info!(table = %name, "target table definition changed: rebinding");
                let table = Arc::clone(&m.table);
                let (bound, types) = self.bind(&table).await?;
                let bound = Arc::new(bound);
                if let Some(m) = self.maps.get_mut(&id) {
                    m.bound = Some(Arc::clone(&bound));
                    m.types = types;
                    changed.push((m.rel, bound));
                }
            }
        }
        Ok(changed)
    }

    /// The engine's changes for a row event (none for tables outside the replicated database).
    fn rows(&self, table_id: u64, op: RowOp) -> anyhow::Result<Vec<Change>> {
        let Some(m) = self.maps.get(&table_id) else {
            bail!("a row event for table id {table_id} came before its table map");
        };
        let Some(b) = &m.bound else { return Ok(Vec::new()) };
        let rel = m.rel;
        let to_row = |image: &RowImage| -> anyhow::Result<(Vec<Option<String>>, Vec<usize>)> {
            let mut row = vec![None; b.target.columns.len()];
            let mut present = Vec::new();
            for (i, (v, target)) in image.iter().zip(&b.map).enumerate() {
                let (Some(v), Some(t)) = (v, target) else { continue };
                let col = m.table.columns.get(i).context("a row image wider than its table map")?;
                let ty = m.types.get(i).and_then(Option::as_ref);
                // A TIME beyond a day fits a column mapped to INTERVAL, as fetch loaded it.
                let text = molt_source_mysql::value::binlog_text(col, ty, v);
                row[*t] = if b.target.columns[*t].1 == "interval" {
                    molt_source_mysql::value::as_interval(text)
                } else {
                    text
                }
                .with_context(|| {
                    format!("converting column {} of {}.{}", col.name, m.table.schema, m.table.name)
                })?;
                present.push(*t);
            }
            present.sort_unstable();
            Ok((row, present))
        };
        let mut out = Vec::new();
        match op {
            RowOp::Insert(rows) => {
                for image in &rows {
                    let (vals, present) = to_row(image)?;
                    out.push(if b.keyless {
                        Change::Insert { rel, row: vals, present }
                    } else {
                        Change::Keyed { rel, change: RowChange::Insert(Image { vals, present }) }
                    });
                }
            }
            RowOp::Update(rows) => {
                for (before, after) in &rows {
                    let (old, old_present) = to_row(before)?;
                    let (vals, present) = to_row(after)?;
                    if b.keyless {
                        out.push(Change::DeleteRow { rel, row: old, present: old_present });
                        out.push(Change::Insert { rel, row: vals, present });
                    } else {
                        let change =
                            RowChange::Update { old: Some(old), new: Image { vals, present } };
                        out.push(Change::Keyed { rel, change });
                    }
                }
            }
            RowOp::Delete(rows) => {
                for image in &rows {
                    let (old, present) = to_row(image)?;
                    out.push(if b.keyless {
                        Change::DeleteRow { rel, row: old, present }
                    } else {
                        Change::Keyed { rel, change: RowChange::Delete(old) }
                    });
                }
            }
        }
        Ok(out)
    }

    /// What a statement outside row events means for the target: a TRUNCATE of a bound
    /// table is applied; DDL is logged (table maps carry the new layout to the next change).
    fn statement(&self, schema: &str, sql: &str) -> Option<Change> {
        let words: Vec<&str> = sql.split_whitespace().collect();
        let first = words.first().map(|w| w.to_ascii_uppercase());
        if first.as_deref() == Some("TRUNCATE") {
            let name = match words.get(1) {
                Some(w) if w.eq_ignore_ascii_case("TABLE") => words.get(2),
                other => other,
            }?;
            let name = name.trim_end_matches(';').replace('`', "");
            let (db, table) = name.split_once('.').unwrap_or((schema, &name));
            if db != self.cfg.source.database() {
                return None;
            }
            let rel = self.ids.get(&(db.to_owned(), table.to_owned()))?;
            let bound = self.maps.values().any(|m| m.rel == *rel && m.bound.is_some());
            return bound.then(|| Change::Truncate { rels: vec![*rel] });
        }
        if schema == self.cfg.source.database() {
            info!(statement = %sql, "source DDL: the next change of an altered table brings its new layout");
        }
        None
    }
}

/// The engine went away (it drained, or failed and says why itself).
#[derive(Debug, thiserror::Error)]
#[error("the engine stopped taking changes")]
struct EngineGone;

async fn emit(
    tx: &mpsc::Sender<SourceMsg<GtidPosition>>,
    msg: SourceMsg<GtidPosition>,
) -> anyhow::Result<()> {
    tx.send(msg).await.map_err(|_| anyhow::Error::new(EngineGone))
}

/// Reads the binlog until the engine lets go.
async fn read(
    reader: BinlogReader,
    d: Decoder,
    tx: mpsc::Sender<SourceMsg<GtidPosition>>,
    applied: watch::Receiver<Option<GtidPosition>>,
    from: GtidPosition,
) -> anyhow::Result<()> {
    // The binlog is not acknowledged: the engine's applied position is not needed here.
    drop(applied);
    let closed = tx.clone();
    tokio::select! {
        r = stream(reader, d, &tx, from) => match r {
            Err(e) if e.downcast_ref::<EngineGone>().is_some() => Ok(()),
            other => other,
        },
        () = closed.closed() => Ok(()),
    }
}

async fn stream(
    mut reader: BinlogReader,
    mut d: Decoder,
    tx: &mpsc::Sender<SourceMsg<GtidPosition>>,
    from: GtidPosition,
) -> anyhow::Result<()> {
    d.read_catalog().await?;
    let refresh_every = d.cfg.schema_refresh;
    let next_refresh =
        || (!refresh_every.is_zero()).then(|| tokio::time::Instant::now() + refresh_every);
    let mut refresh_due = next_refresh();
    // A source silent for three heartbeats is lost.
    let silence = d.cfg.heartbeat.saturating_mul(3).max(Duration::from_secs(1));
    let mut at = Progress::new(from);
    // The open transaction's GTID, and whether the checkpoint already holds it.
    let mut open: Option<Gtid> = None;
    let mut skip = false;
    loop {
        let event = match tokio::time::timeout(silence, reader.next()).await {
            Ok(ev) => ev.map_err(source_error).context("reading the binlog")?,
            Err(_) => {
                return Err(anyhow::Error::new(source_loss::SourceUnreachable).context(format!(
                    "the source sent nothing, not even a heartbeat, for {silence:?}"
                )));
            }
        };
        match event {
            Event::Begin { gtid, .. } => {
                skip = at.checkpoint.includes(&gtid);
                at.read.add(&gtid);
                open = Some(gtid);
            }
            Event::TableMap(table) => {
                if let Some((rel, bound)) = d.table_map(table).await? {
                    emit(tx, SourceMsg::Bind(rel, bound)).await?;
                }
            }
            Event::Rows { table_id, op } => {
                if skip {
                    continue;
                }
                for change in d.rows(table_id, op)? {
                    emit(tx, SourceMsg::Change(change)).await?;
                }
            }
            Event::Commit { timestamp } => {
                let Some(gtid) = open.take() else {
                    bail!("the binlog committed a transaction that had no GTID event");
                };
                if std::mem::take(&mut skip) {
                    continue;
                }
                let end = at.commit(&gtid);
                let commit_time = i64::from(timestamp) * 1_000_000;
                emit(tx, SourceMsg::Commit { end, commit_time }).await?;
            }
            Event::Statement { schema, sql, timestamp } => {
                let gtid = open.take();
                if std::mem::take(&mut skip) {
                    continue;
                }
                if let Some(change) = d.statement(&schema, &sql) {
                    emit(tx, SourceMsg::Change(change)).await?;
                }
                if let Some(gtid) = gtid {
                    let end = at.commit(&gtid);
                    let commit_time = i64::from(timestamp) * 1_000_000;
                    emit(tx, SourceMsg::Commit { end, commit_time }).await?;
                }
            }
            Event::XaPrepared { xid, gtid } => at.prepared(xid, gtid.as_ref()),
            Event::XaEnded { xid, prepared, committed } => {
                if committed && prepared.is_none() && !skip {
                    return Err(anyhow::Error::new(BinlogError::XaPrepareNotSeen { xid }));
                }
                at.ended(&xid, prepared.as_ref(), skip);
            }
            Event::Idle => {}
        }
        if open.is_none() && refresh_due.is_some_and(|t| t <= tokio::time::Instant::now()) {
            refresh_due = next_refresh();
            for (rel, bound) in d.refresh().await? {
                emit(tx, SourceMsg::Bind(rel, bound)).await?;
            }
            let parents = load_fk_parents(&d.target, &d.cfg.target_schema).await?;
            emit(tx, SourceMsg::Parents(parents)).await?;
        }
    }
}

/// The stream's progress: what is applied, what was read, which XA transactions are open.
struct Progress {
    /// What the session started from: transactions it holds are skipped.
    checkpoint: Gtids,
    /// Applied, or read and not for this database.
    applied: Gtids,
    /// Every group read so far (a restart point before any open prepare is one of these).
    read: Gtids,
    /// XA transactions prepared and not yet ended, oldest first, with the position just
    /// before each prepare.
    open_xa: Vec<(String, Gtids)>,
}

impl Progress {
    fn new(from: GtidPosition) -> Self {
        Progress {
            checkpoint: from.applied.clone(),
            read: from.start_gtids().clone(),
            applied: from.applied,
            open_xa: Vec::new(),
        }
    }

    /// A transaction committed: the position that includes it.
    fn commit(&mut self, gtid: &Gtid) -> GtidPosition {
        self.applied.add(gtid);
        GtidPosition {
            applied: self.applied.clone(),
            resume: self.open_xa.first().map(|(_, before)| before.clone()),
        }
    }

    /// `XA PREPARE`: while it is open, a restart must read from just before it.
    fn prepared(&mut self, xid: String, gtid: Option<&Gtid>) {
        self.open_xa.push((xid, self.read.clone()));
        if let Some(gtid) = gtid {
            self.read.add(gtid);
        }
    }

    /// `XA COMMIT` or `XA ROLLBACK` (in the group being read; `skipped` when the checkpoint
    /// holds that group): the prepare is done with.
    fn ended(&mut self, xid: &str, prepared: Option<&Gtid>, skipped: bool) {
        self.open_xa.retain(|(open, _)| open != xid);
        // A MySQL set names the prepare's GTID once its transaction is over.
        if let Some(gtid) = prepared
            && !skipped
        {
            self.applied.add(gtid);
        }
    }
}

/// Runs replication until `stop` turns true (then drains the transaction in flight).
///
/// # Errors
/// A source not configured for row-based binlog replication, a position the source no
/// longer holds, missing target tables, or failures that persist past `--maxRetries`.
pub async fn run(cfg: MylogicalConfig, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let pool = molt_source_mysql::connect(&cfg.source).await.context("--sourceConn")?;
    let flavor = molt_source_mysql::server_flavor(&pool).await.context("--sourceConn")?;
    let version: String = {
        use mysql_async::prelude::Queryable as _;
        let mut conn = pool.get_conn().await.context("--sourceConn")?;
        conn.query_first("SELECT VERSION()")
            .await
            .context("reading the source's version")?
            .unwrap_or_default()
    };
    let family = match flavor {
        Flavor::Mysql => "mysql",
        Flavor::Mariadb => "mariadb",
    };
    info!("Connected to {family} {version} server");
    let engine = EngineConfig {
        target_schema: cfg.target_schema.clone(),
        target_database: cfg.target.database().to_owned(),
        staging_schema: cfg.staging_schema.clone(),
        staging_create: cfg.staging_create,
        lease_name: memo_key(&cfg),
        lease_duration: cfg.lease_duration,
        memo_key: memo_key(&cfg),
        flush_size: cfg.flush_size,
        flush_period: cfg.flush_period,
        progress_every: Duration::from_secs(5),
        max_retries: cfg.max_retries,
        retry_initial_backoff: cfg.retry_initial_backoff,
        retry_max_backoff: cfg.retry_max_backoff,
        apply_timeout: cfg.apply_timeout,
        dlq_table: cfg.dlq_table.clone(),
    };
    let target = cfg.target.clone();
    supervise::run(Mylogical { cfg: Arc::new(cfg), pool, flavor }, engine, &target, stop).await
}
