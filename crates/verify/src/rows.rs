//! Row verification of one shard: both sides read in key order, a page of `--row-batch-size`
//! at a time, merged with the source as the truth.
//!
//! ```text
//! source page ─┐            key <  : missing      (in source only)
//!              ├─ merge ─▶  key == : compare columns → success | mismatch | conditional
//! target page ─┘            key >  : extraneous   (in target only)
//! ```
//!
//! With `--live`, every differing key is read again on both sides with backoff before it is
//! reported, so rows that replication has not applied yet are not reported as differences.

use std::cmp::Ordering;
use std::time::Duration;

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use molt_schema::Table;
use tracing::warn;

use crate::value::{Kind, cmp_keys, same};

/// Most detail lines one shard logs; the counts stay exact beyond it.
pub const MAX_DETAIL_LINES: u64 = 1000;

/// What to compare and how: the source table, the target's name, comparable columns.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// Source table (its columns are read on both sides).
    pub table: Table,
    /// The table's name on the target.
    pub target_name: molt_schema::TableName,
    /// Columns read on both sides, key columns first.
    pub columns: Vec<String>,
    /// Kind per column of `columns`.
    pub kinds: Vec<Kind>,
    /// Whether each column's types are comparable; a row of a table with an uncomparable
    /// column is at best a conditional success, whatever that column holds.
    pub comparable: Vec<bool>,
    /// How many leading `columns` are the key.
    pub key_len: usize,
    /// Whether key `i` is a collatable string (ordered with `COLLATE "C"` on both sides).
    pub key_collatable: Vec<bool>,
    /// Both sides are PostgreSQL with the same type for every column, so equal rows print
    /// the same text and a key range can be compared by one checksum per side first.
    pub hashable: bool,
    /// `--filter-path` condition on the source.
    pub source_filter: Option<String>,
    /// `--filter-path` condition on the target.
    pub target_filter: Option<String>,
    /// Type of each key column on the source, as its SQL spells it.
    pub source_key_types: Vec<String>,
    /// Type of each key column on the target.
    pub target_key_types: Vec<String>,
    /// Both sides sort keys alike, so a shard is compared by merging two key-ordered
    /// streams; otherwise each side's rows are looked up by key on the other.
    pub ordered_alike: bool,
}

/// Which side a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source (the truth).
    Source,
    /// The target.
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

impl TablePlan {
    /// Columns whose types cannot be compared (`num_column_mismatch`).
    pub fn uncomparable(&self) -> u64 {
        self.comparable.iter().filter(|c| !**c).count() as u64
    }

    /// The type of key column `i` on `side`, as that side's SQL spells it.
    pub fn key_type(&self, side: Side, i: usize) -> &str {
        let types = match side {
            Side::Source => &self.source_key_types,
            Side::Target => &self.target_key_types,
        };
        types.get(i).map_or("text", String::as_str)
    }

    /// The same plan reading the key columns only.
    #[must_use]
    pub fn keys_only(&self) -> TablePlan {
        let n = self.key_len;
        TablePlan {
            columns: self.columns[..n].to_vec(),
            kinds: self.kinds[..n].to_vec(),
            comparable: self.comparable[..n].to_vec(),
            ..self.clone()
        }
    }

    /// The table's name on `side`.
    pub fn name(&self, side: Side) -> &molt_schema::TableName {
        match side {
            Side::Source => &self.table.name,
            Side::Target => &self.target_name,
        }
    }

    /// The `--filter-path` condition on `side`, parenthesized.
    pub fn filter(&self, side: Side) -> Option<String> {
        match side {
            Side::Source => self.source_filter.as_ref(),
            Side::Target => self.target_filter.as_ref(),
        }
        .map(|f| format!("({f})"))
    }
}

/// Counters of one shard, as MOLT's summary line reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows on the source.
    pub truth_rows: u64,
    /// Rows equal on both sides.
    pub success: u64,
    /// Rows equal in every comparable column of a table that also has uncomparable ones.
    pub conditional_success: u64,
    /// Rows on the source only.
    pub missing: u64,
    /// Rows that differ.
    pub mismatch: u64,
    /// Rows on the target only.
    pub extraneous: u64,
    /// Rows re-checked in live mode.
    pub live_retry: u64,
    /// Columns whose types cannot be compared: a count of columns, not rows, so each shard's
    /// summary carries the table's number (MOLT's `num_column_mismatch`).
    pub column_mismatch: u64,
}

impl Counts {
    /// MOLT's pass rule: every source row succeeded and nothing is missing, different or extra.
    pub fn clean(&self) -> bool {
        self.success == self.truth_rows
            && self.missing == 0
            && self.mismatch == 0
            && self.extraneous == 0
            && self.column_mismatch == 0
    }

    /// Adds another shard's counts.
    pub fn add(&mut self, o: &Counts) {
        self.truth_rows += o.truth_rows;
        self.success += o.success;
        self.conditional_success += o.conditional_success;
        self.missing += o.missing;
        self.mismatch += o.mismatch;
        self.extraneous += o.extraneous;
        self.live_retry += o.live_retry;
        self.column_mismatch += o.column_mismatch;
    }
}

/// How a shard is read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Rows per page.
    pub batch: u64,
    /// Re-check differences (`--live`).
    pub live: bool,
    /// Live re-checks before reporting.
    pub live_attempts: u32,
    /// First live back-off.
    pub live_backoff: Duration,
    /// Rows per second per shard (0: unlimited).
    pub rows_per_second: u64,
}

/// One row as text per column (`None` for NULL), key columns first.
pub type Row = Vec<Option<String>>;

/// One side's rows of a table, read as PostgreSQL prints them.
///
/// Implemented per dialect ([`crate::pg::PgReader`], [`crate::mysql::MysqlReader`]).
pub trait RowReader: Send + Sync {
    /// Up to `limit` rows of `range` (a condition in this side's SQL, `None` for the whole
    /// table) whose key follows `after`, in key order.
    fn page<'a>(
        &'a self,
        plan: &'a TablePlan,
        range: Option<&'a str>,
        after: Option<&'a [Option<String>]>,
        limit: u64,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Row>>>;

    /// The rows whose keys are among `keys` (each a row's leading key columns), in any order.
    fn lookup<'a>(
        &'a self,
        plan: &'a TablePlan,
        keys: &'a [Row],
    ) -> BoxFuture<'a, anyhow::Result<Vec<Row>>>;
}

/// A key range of a shard, as a condition in each side's SQL (`None`: the whole table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// On the source.
    pub source: Option<String>,
    /// On the target.
    pub target: Option<String>,
}

impl KeyRange {
    /// The condition for `side`.
    pub fn on(&self, side: Side) -> Option<&str> {
        match side {
            Side::Source => self.source.as_deref(),
            Side::Target => self.target.as_deref(),
        }
    }
}

/// How one matched pair of rows compares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Success,
    Conditional,
    Mismatch(Vec<usize>),
}

fn judge(plan: &TablePlan, s: &Row, t: &Row) -> Verdict {
    let mut differing = Vec::new();
    let mut conditional = false;
    for i in plan.key_len..plan.columns.len() {
        if !plan.comparable[i] {
            // Equal text proves nothing across incompatible types (`1` in INT4 and TEXT).
            conditional = true;
        } else if !same(&plan.kinds[i], s[i].as_deref(), t[i].as_deref()) {
            differing.push(i);
        }
    }
    if !differing.is_empty() {
        Verdict::Mismatch(differing)
    } else if conditional {
        Verdict::Conditional
    } else {
        Verdict::Success
    }
}

/// A difference found in the first pass.
#[derive(Debug, Clone)]
enum Diff {
    Missing(Row),
    Extraneous(Row),
    Mismatch(Row, Row, Vec<usize>),
}

impl Diff {
    fn key(&self, n: usize) -> Row {
        match self {
            Diff::Missing(r) | Diff::Extraneous(r) | Diff::Mismatch(r, _, _) => r[..n].to_vec(),
        }
    }
}

/// Verifies one shard: by a merge of both sides in key order when they sort alike, by key
/// lookups both ways otherwise.
///
/// # Errors
/// A failed query on either side.
pub async fn verify_shard(
    plan: &TablePlan,
    source: &dyn RowReader,
    target: &dyn RowReader,
    range: &KeyRange,
    opts: ReadOptions,
) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    let mut diffs = if plan.ordered_alike {
        merge(plan, source, target, range, opts, &mut counts).await?
    } else {
        look_up_both_ways(plan, source, target, range, opts, &mut counts).await?
    };
    if opts.live && !diffs.is_empty() {
        diffs = recheck(plan, source, target, diffs, opts, &mut counts).await?;
    }
    let mut logged = 0u64;
    for d in &diffs {
        match d {
            Diff::Missing(_) => counts.missing += 1,
            Diff::Extraneous(_) => counts.extraneous += 1,
            Diff::Mismatch(..) => counts.mismatch += 1,
        }
        logged += 1;
        if logged <= MAX_DETAIL_LINES {
            report(plan, d);
        } else if logged == MAX_DETAIL_LINES + 1 {
            warn!(table = %plan.table.name, "more differences in this shard are counted but not logged");
        }
    }
    Ok(counts)
}

/// Reads both sides in key order, a page at a time, and walks them together.
async fn merge(
    plan: &TablePlan,
    source: &dyn RowReader,
    target: &dyn RowReader,
    range: &KeyRange,
    opts: ReadOptions,
    counts: &mut Counts,
) -> anyhow::Result<Vec<Diff>> {
    let key_kinds: Vec<Kind> = plan.kinds[..plan.key_len].to_vec();
    let mut diffs: Vec<Diff> = Vec::new();
    let (mut s_rows, mut t_rows): (Vec<Row>, Vec<Row>) = (Vec::new(), Vec::new());
    let (mut si, mut ti) = (0usize, 0usize);
    let (mut s_after, mut t_after): (Option<Row>, Option<Row>) = (None, None);
    let (mut s_done, mut t_done) = (false, false);
    let started = std::time::Instant::now();
    loop {
        // Refill whichever side ran out, both at once when both did.
        let s_need = si >= s_rows.len() && !s_done;
        let t_need = ti >= t_rows.len() && !t_done;
        if s_need || t_need {
            let (s_page, t_page) = tokio::join!(
                async {
                    if s_need {
                        source
                            .page(plan, range.on(Side::Source), s_after.as_deref(), opts.batch)
                            .await
                            .map(Some)
                    } else {
                        Ok(None)
                    }
                },
                async {
                    if t_need {
                        target
                            .page(plan, range.on(Side::Target), t_after.as_deref(), opts.batch)
                            .await
                            .map(Some)
                    } else {
                        Ok(None)
                    }
                },
            );
            if let Some(p) = s_page? {
                s_done = (p.len() as u64) < opts.batch;
                s_after = p.last().map(|r| r[..plan.key_len].to_vec());
                metrics::counter!(molt_metrics::verify::ROWS_READ, "table" => plan.table.name.to_string()).increment(p.len() as u64);
                s_rows = p;
                si = 0;
            }
            if let Some(p) = t_page? {
                t_done = (p.len() as u64) < opts.batch;
                t_after = p.last().map(|r| r[..plan.key_len].to_vec());
                t_rows = p;
                ti = 0;
            }
            throttle(opts.rows_per_second, counts.truth_rows, started).await;
        }
        let s = s_rows.get(si);
        let t = t_rows.get(ti);
        let order = match (s, t) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(s), Some(t)) => cmp_keys(&key_kinds, &s[..plan.key_len], &t[..plan.key_len]),
        };
        match (order, s, t) {
            (Ordering::Less, Some(s), _) => {
                counts.truth_rows += 1;
                diffs.push(Diff::Missing(s.clone()));
                si += 1;
            }
            (Ordering::Greater, _, Some(t)) => {
                diffs.push(Diff::Extraneous(t.clone()));
                ti += 1;
            }
            (_, Some(s), Some(t)) => {
                counts.truth_rows += 1;
                if let Some(d) = compare(plan, s, t, counts) {
                    diffs.push(d);
                }
                si += 1;
                ti += 1;
            }
            _ => break,
        }
    }
    Ok(diffs)
}

/// Counts a matched pair; the difference when there is one.
fn compare(plan: &TablePlan, s: &Row, t: &Row, counts: &mut Counts) -> Option<Diff> {
    match judge(plan, s, t) {
        Verdict::Success => counts.success += 1,
        Verdict::Conditional => counts.conditional_success += 1,
        Verdict::Mismatch(cols) => return Some(Diff::Mismatch(s.clone(), t.clone(), cols)),
    }
    None
}

/// Rows per key lookup query.
const LOOKUP_KEYS: usize = 500;

/// Finds `key` among `rows`: by its exact text first, then by meaning (`1.0` is `1`).
fn find<'r>(
    kinds: &[Kind],
    index: &HashMap<&[Option<String>], &'r Row>,
    rows: &'r [Row],
    key: &[Option<String>],
) -> Option<&'r Row> {
    index
        .get(key)
        .copied()
        .or_else(|| rows.iter().find(|r| cmp_keys(kinds, &r[..key.len()], key) == Ordering::Equal))
}

/// For keys the two sides sort differently (strings under a MySQL collation): every source
/// page is looked up by key on the target, then every target key on the source, so each
/// side is read once in its own order and memory holds one page.
async fn look_up_both_ways(
    plan: &TablePlan,
    source: &dyn RowReader,
    target: &dyn RowReader,
    range: &KeyRange,
    opts: ReadOptions,
    counts: &mut Counts,
) -> anyhow::Result<Vec<Diff>> {
    let n = plan.key_len;
    let key_kinds: Vec<Kind> = plan.kinds[..n].to_vec();
    let mut diffs = Vec::new();
    let started = std::time::Instant::now();
    let mut after: Option<Row> = None;
    loop {
        let page = source.page(plan, range.on(Side::Source), after.as_deref(), opts.batch).await?;
        metrics::counter!(molt_metrics::verify::ROWS_READ, "table" => plan.table.name.to_string())
            .increment(page.len() as u64);
        for chunk in page.chunks(LOOKUP_KEYS) {
            let keys: Vec<Row> = chunk.iter().map(|r| r[..n].to_vec()).collect();
            let found = target.lookup(plan, &keys).await?;
            let index: HashMap<&[Option<String>], &Row> =
                found.iter().map(|r| (&r[..n], r)).collect();
            for s in chunk {
                counts.truth_rows += 1;
                match find(&key_kinds, &index, &found, &s[..n]) {
                    Some(t) => diffs.extend(compare(plan, s, t, counts)),
                    None => diffs.push(Diff::Missing(s.clone())),
                }
            }
        }
        if (page.len() as u64) < opts.batch {
            break;
        }
        after = page.last().map(|r| r[..n].to_vec());
        throttle(opts.rows_per_second, counts.truth_rows, started).await;
    }
    // Target rows with no source row: their keys, looked up on the source. A lookup there
    // may answer with a key equal only under the source's collation (`A` for `a`): it is
    // not the same key, and `find` compares exactly.
    let keys_plan = plan.keys_only();
    let mut after: Option<Row> = None;
    loop {
        let page =
            target.page(&keys_plan, range.on(Side::Target), after.as_deref(), opts.batch).await?;
        for chunk in page.chunks(LOOKUP_KEYS) {
            let found = source.lookup(&keys_plan, chunk).await?;
            let index: HashMap<&[Option<String>], &Row> =
                found.iter().map(|r| (&r[..n], r)).collect();
            for t in chunk {
                if find(&key_kinds, &index, &found, t).is_none() {
                    diffs.push(Diff::Extraneous(t.clone()));
                }
            }
        }
        if (page.len() as u64) < opts.batch {
            break;
        }
        after = page.last().cloned();
    }
    Ok(diffs)
}

async fn throttle(rows_per_second: u64, rows: u64, started: std::time::Instant) {
    if rows_per_second == 0 {
        return;
    }
    let due = Duration::from_secs_f64(rows as f64 / rows_per_second as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        tokio::time::sleep(wait).await;
    }
}

async fn recheck(
    plan: &TablePlan,
    source: &dyn RowReader,
    target: &dyn RowReader,
    mut diffs: Vec<Diff>,
    opts: ReadOptions,
    counts: &mut Counts,
) -> anyhow::Result<Vec<Diff>> {
    counts.live_retry += diffs.len() as u64;
    let n = plan.key_len;
    let key_kinds: Vec<Kind> = plan.kinds[..n].to_vec();
    let mut backoff = opts.live_backoff;
    for _ in 0..opts.live_attempts {
        if diffs.is_empty() {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        let mut still = Vec::new();
        for chunk in diffs.chunks(LOOKUP_KEYS) {
            let keys: Vec<Row> = chunk.iter().map(|d| d.key(n)).collect();
            let (s, t) = tokio::join!(source.lookup(plan, &keys), target.lookup(plan, &keys));
            let (s, t) = (s?, t?);
            let s_index: HashMap<&[Option<String>], &Row> =
                s.iter().map(|r| (&r[..n], r)).collect();
            let t_index: HashMap<&[Option<String>], &Row> =
                t.iter().map(|r| (&r[..n], r)).collect();
            for (d, key) in chunk.iter().zip(&keys) {
                let (sr, tr) = (
                    find(&key_kinds, &s_index, &s, key).cloned(),
                    find(&key_kinds, &t_index, &t, key).cloned(),
                );
                // A source row is a truth row: one that appeared or vanished on the source
                // meanwhile changes the count.
                let was = !matches!(d, Diff::Extraneous(_));
                match (was, sr.is_some()) {
                    (false, true) => counts.truth_rows += 1,
                    (true, false) => counts.truth_rows = counts.truth_rows.saturating_sub(1),
                    _ => {}
                }
                match (sr, tr) {
                    (Some(sr), Some(tr)) => still.extend(compare(plan, &sr, &tr, counts)),
                    (Some(sr), None) => still.push(Diff::Missing(sr)),
                    (None, Some(tr)) => still.push(Diff::Extraneous(tr)),
                    // Deleted on both sides meanwhile.
                    (None, None) => {}
                }
            }
        }
        diffs = still;
    }
    Ok(diffs)
}

fn json_object(plan: &TablePlan, row: &Row, cols: &[usize]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = cols
        .iter()
        .map(|&i| {
            (
                plan.columns[i].clone(),
                row[i].clone().map_or(serde_json::Value::Null, serde_json::Value::String),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn report(plan: &TablePlan, d: &Diff) {
    let schema = &plan.table.name.schema;
    let table = &plan.table.name.table;
    let key_cols: Vec<usize> = (0..plan.key_len).collect();
    let pk = |r: &Row| serde_json::to_string(&r[..plan.key_len]).unwrap_or_default();
    match d {
        Diff::Missing(r) => {
            warn!(target: "data", table_schema = %schema, table_name = %table, primary_key = %pk(r), "missing row")
        }
        Diff::Extraneous(r) => {
            warn!(target: "data", table_schema = %schema, table_name = %table, primary_key = %pk(r), "extraneous row")
        }
        Diff::Mismatch(s, t, cols) => {
            let names: Vec<&str> = cols.iter().map(|&i| plan.columns[i].as_str()).collect();
            let _ = &key_cols;
            warn!(
                target: "data",
                table_schema = %schema,
                table_name = %table,
                primary_key = %pk(s),
                mismatching_columns = %serde_json::to_string(&names).unwrap_or_default(),
                source_values = %json_object(plan, s, cols),
                target_values = %json_object(plan, t, cols),
                "mismatching row value"
            );
        }
    }
}
