//! The apply engine: row changes of source transactions, in commit order, written to the
//! target (CockroachDB or PostgreSQL) with the checkpoint in the same target transaction.
//!
//! A source's intake decodes its stream into [`Change`]s bound to target tables ([`Bound`])
//! and hands them over as [`ApplyMsg`]s; [`apply_loop`] owns the target transaction:
//!
//! - each batch is written as its net effect per key ([`super::net`]): one upsert per table
//!   and column set, one delete per table, parents' upserts before children's and children's
//!   deletes before parents' (foreign keys read from the target); keyless tables in stream
//!   order; a TRUNCATE is a barrier;
//! - a commit writes the checkpoint through the staging lease's fence and commits, and only
//!   then reports the position back to the intake, which acknowledges it to the source;
//! - in careful mode (replaying a batch the target refused) statements run under savepoints
//!   and refused rows go to the dead-letter table, once, with the checkpoint.
//!
//! Positions are the source's own ([`Position`]): an LSN, a GTID set, a GTID list.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use molt_schema::{TableName, TargetDialect};
use molt_stage::{Lease, StageError};
use molt_target::apply::{
    ApplyTable, delete_one_sql, delete_sql, dlq_ddl, dlq_insert_sql, insert_sql, upsert_sql,
};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::net::{self, Key, KeyMode, RowChange, TableNet, Values};
use super::{EngineConfig, Position};

/// Reads a target table's columns and key for apply.
pub(crate) async fn load_apply_table(
    pool: &PgPool,
    name: &TableName,
) -> anyhow::Result<Option<ApplyTable>> {
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

/// An empty net effect for a bound relation.
fn new_net(b: &Bound) -> TableNet {
    TableNet::new(b.mode.clone(), b.key.clone(), b.target.columns.len(), b.full_old, HashSet::new())
}

/// A source relation bound to its target table.
pub(crate) struct Bound {
    pub(crate) target: ApplyTable,
    /// For each relation column, its index in the target's columns (None: not on the target).
    pub(crate) map: Vec<Option<usize>>,
    /// Target indices of the key columns, in key order.
    pub(crate) key: Vec<usize>,
    /// No primary key: rows are matched by all their values (the source sends whole old rows
    /// under `REPLICA IDENTITY FULL`), so changes apply in stream order, not as a net effect.
    pub(crate) keyless: bool,
    /// How rows that share a key within a source transaction are told apart.
    pub(crate) mode: KeyMode,
    /// The source sends whole old rows (`REPLICA IDENTITY FULL`).
    pub(crate) full_old: bool,
}

pub(crate) enum Change {
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
pub(crate) fn sql_state(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| match c.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
        _ => None,
    })
}

/// Whether the target refused the data itself (classes 22 data exception and 23 integrity
/// violation): retrying cannot help, setting the row aside can.
pub(crate) fn is_row_error(e: &anyhow::Error) -> bool {
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
pub(crate) fn fk_depth(parents: &HashMap<String, Vec<String>>, table: &str, seen: usize) -> usize {
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

pub(crate) async fn load_fk_parents(
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
pub(crate) struct Applied {
    per_table: HashMap<String, (u64, u64)>,
}

/// The apply side of a session: owns the target transaction.
pub(crate) struct Applier<P> {
    pub(crate) cfg: Arc<EngineConfig>,
    pub(crate) lease: Arc<Lease>,
    pub(crate) dialect: TargetDialect,
    pub(crate) target: PgPool,
    pub(crate) relations: HashMap<u32, Arc<Bound>>,
    pub(crate) pending: Vec<Change>,
    /// Keys of the open source transaction still shared by several rows, per relation.
    pub(crate) nets: HashMap<u32, TableNet>,
    pub(crate) fk_parents: HashMap<String, Vec<String>>,
    pub(crate) tx: Option<Transaction<'static, Postgres>>,
    pub(crate) tx_started: Instant,
    pub(crate) applied: Applied,
    pub(crate) checkpoint: Option<P>,
    pub(crate) last_commit_end: Option<P>,
    pub(crate) last_commit_time: i64,
    /// Replaying what the target refused: statements run under savepoints and refused rows
    /// go to the dead-letter table, until a checkpoint reaches this position (`Some(None)`:
    /// until the next commit).
    pub(crate) careful_until: Option<Option<P>>,
    /// The dead-letter table exists (created on first use).
    pub(crate) dlq_ready: bool,
}

/// What the receive side hands to the apply side, in stream order.
pub(crate) enum ApplyMsg<P> {
    /// A relation's binding to its target table.
    Bind(u32, Arc<Bound>),
    /// Changes to write into the open target transaction.
    Changes(Vec<Change>),
    /// Commit the target transaction, with the checkpoint at this source commit (its commit
    /// time in microseconds since the Unix epoch, for the lag).
    Commit { end: P, commit_time: i64 },
    /// The target's foreign keys, re-read.
    Parents(HashMap<String, Vec<String>>),
}

impl<P: Position> Applier<P> {
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
        if self.careful_until.is_some() {
            // Replaying what the target refused: one change at a time, in source order, as
            // the source's own constraints saw them (a batch's net effect can put two rows on
            // one unique value for a moment, as in a swap through a temporary value). Keys
            // that a DEFERRABLE source shares for a while still wait in the net effect.
            for change in segment {
                self.apply_net(vec![change], false).await?;
            }
            return Ok(());
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
    /// each refused row aside in the dead-letter table (without one, the refusal stands).
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
                Err(e) if is_row_error(&e) && self.cfg.dlq_table.is_some() => {
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
            .bind(self.checkpoint.as_ref().map(ToString::to_string).unwrap_or_default())
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

    /// Writes the checkpoint and commits the target transaction; returns the position to ack.
    async fn commit(&mut self) -> anyhow::Result<Option<P>> {
        self.flush_pending().await?;
        self.apply_net(Vec::new(), true).await?;
        let Some(end) = self.last_commit_end.clone() else { return Ok(None) };
        if self.checkpoint.as_ref().is_some_and(|c| c.covers(&end)) {
            return Ok(None);
        }
        let started = self.tx_started;
        let key = self.cfg.memo_key.clone();
        let lease = Arc::clone(&self.lease);
        lease.checkpoint(&mut **self.tx().await?, &key, end.to_string().as_bytes()).await?;
        let tx = self.tx.take().context("target transaction")?;
        tx.commit().await.context("committing on the target")?;
        let took = started.elapsed();
        for (table, (ups, dels)) in std::mem::take(&mut self.applied.per_table) {
            let (schema, name) = table.split_once('.').unwrap_or(("", &table));
            let target = format!("\"{}\".\"{schema}\".\"{name}\"", self.cfg.target_database);
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
        let lag = (now_micros - self.last_commit_time).max(0) as f64 / 1e6;
        metrics::gauge!(molt_metrics::replicator::SOURCE_COMMIT_TO_APPLY_LAG_SECONDS).set(lag);
        metrics::gauge!(molt_metrics::replicator::CORE_SOURCE_LAG_SECONDS).set(lag);
        metrics::counter!(molt_metrics::replicator::CORE_FLUSH_COUNT).increment(1);
        self.checkpoint = Some(end.clone());
        if self
            .careful_until
            .as_ref()
            .is_some_and(|until| until.as_ref().is_none_or(|u| end.covers(u)))
        {
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

pub(crate) fn is_transient(e: &anyhow::Error) -> bool {
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
pub(crate) async fn apply_loop<P: Position>(
    mut s: Applier<P>,
    mut rx: mpsc::Receiver<ApplyMsg<P>>,
    done: mpsc::UnboundedSender<P>,
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
                s.last_commit_end = Some(end.clone());
                s.last_commit_time = commit_time;
                // Nothing new to commit (already covered by the checkpoint) is still progress.
                let at = s.commit().await?.unwrap_or(end);
                let _ = done.send(at);
            }
        }
    }
    Ok(())
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
}
