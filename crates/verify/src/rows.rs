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

use anyhow::Context as _;

use molt_schema::{Table, quote_ident};
use molt_source_pg::export::Shard;
use sqlx::{PgPool, Row as _};
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
}

/// Which side a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source (the truth).
    Source,
    /// The target.
    Target,
}

impl TablePlan {
    /// Columns whose types cannot be compared (`num_column_mismatch`).
    pub fn uncomparable(&self) -> u64 {
        self.comparable.iter().filter(|c| !**c).count() as u64
    }

    fn name(&self, side: Side) -> &molt_schema::TableName {
        match side {
            Side::Source => &self.table.name,
            Side::Target => &self.target_name,
        }
    }

    fn filter(&self, side: Side) -> Option<String> {
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

type Row = Vec<Option<String>>;

/// Each column as text, aliased so that `ORDER BY "key"` sorts by the column, not by its
/// text (PostgreSQL resolves ORDER BY names against output columns first).
fn select_list(plan: &TablePlan) -> String {
    plan.columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{}::text AS \"c{i}\"", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_expr(plan: &TablePlan, i: usize) -> String {
    let k = quote_ident(&plan.columns[i]);
    if plan.key_collatable[i] { format!("{k} COLLATE \"C\"") } else { k }
}

fn key_literal(plan: &TablePlan, i: usize, value: &str) -> String {
    let ty = plan
        .table
        .column(&plan.columns[i])
        .map(|c| c.ty.spelling.clone())
        .unwrap_or_else(|| "text".into());
    let lit = format!("CAST({} AS {ty})", molt_schema::ddl::quote_literal(value));
    if plan.key_collatable[i] { format!("{lit} COLLATE \"C\"") } else { lit }
}

fn order_by(plan: &TablePlan) -> String {
    (0..plan.key_len).map(|i| key_expr(plan, i)).collect::<Vec<_>>().join(", ")
}

/// The page query after `after` (exclusive) within `shard`.
pub fn page_sql(
    plan: &TablePlan,
    side: Side,
    shard: &Shard,
    after: Option<&Row>,
    limit: u64,
) -> String {
    let table = plan.name(side);
    let mut conds: Vec<String> = shard.predicate.iter().cloned().chain(plan.filter(side)).collect();
    if let Some(after) = after {
        let keys: Vec<String> = (0..plan.key_len).map(|i| key_expr(plan, i)).collect();
        let lits: Vec<String> = (0..plan.key_len)
            .map(|i| {
                after[i].as_deref().map_or_else(|| "NULL".to_owned(), |v| key_literal(plan, i, v))
            })
            .collect();
        conds.push(format!("({}) > ({})", keys.join(", "), lits.join(", ")));
    }
    let filter =
        if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    format!(
        "SELECT {} FROM {}{filter} ORDER BY {} LIMIT {limit}",
        select_list(plan),
        table.quoted(),
        order_by(plan)
    )
}

fn lookup_sql(plan: &TablePlan, side: Side, keys: &[Row]) -> String {
    let table = plan.name(side);
    let extra = plan.filter(side).map(|f| format!(" AND {f}")).unwrap_or_default();
    let cols: Vec<String> = (0..plan.key_len).map(|i| quote_ident(&plan.columns[i])).collect();
    let tuples: Vec<String> = keys
        .iter()
        .map(|k| {
            let lits: Vec<String> = (0..plan.key_len)
                .map(|i| {
                    let ty = plan
                        .table
                        .column(&plan.columns[i])
                        .map(|c| c.ty.spelling.clone())
                        .unwrap_or_else(|| "text".into());
                    k[i].as_deref().map_or_else(
                        || "NULL".to_owned(),
                        |v| format!("CAST({} AS {ty})", molt_schema::ddl::quote_literal(v)),
                    )
                })
                .collect();
            format!("({})", lits.join(", "))
        })
        .collect();
    format!(
        "SELECT {} FROM {} WHERE ({}) IN ({}){extra} ORDER BY {}",
        select_list(plan),
        table.quoted(),
        cols.join(", "),
        tuples.join(", "),
        order_by(plan)
    )
}

async fn fetch_rows(pool: &PgPool, sql: &str, width: usize) -> Result<Vec<Row>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(pool).await?;
    rows.iter()
        .map(|r| (0..width).map(|i| r.try_get::<Option<String>, _>(i)).collect::<Result<Row, _>>())
        .collect()
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

/// Compares a key range by row count and checksum (sum of 64-bit hashes of each row's text)
/// on both sides at once; `Some(rows)` when they agree, `None` when the rows must be compared
/// one by one. Only for [`TablePlan::hashable`] plans.
///
/// # Errors
/// A failed query on either side.
pub async fn checksums_agree(
    plan: &TablePlan,
    source: &PgPool,
    target: &PgPool,
    shard: &Shard,
) -> anyhow::Result<Option<u64>> {
    let cols: Vec<String> = plan.columns.iter().map(|c| quote_ident(c)).collect();
    let sql = |side: Side| {
        let conds: Vec<String> = shard.predicate.iter().cloned().chain(plan.filter(side)).collect();
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        format!(
            "SELECT count(*), COALESCE(sum(hashtextextended(r::text, 0)), 0)::text FROM (SELECT {} FROM {}{filter}) r",
            cols.join(", "),
            plan.name(side).quoted()
        )
    };
    let (s_sql, t_sql) = (sql(Side::Source), sql(Side::Target));
    let q = |pool: &PgPool, text: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(text)).fetch_one(&pool).await
        }
    };
    let (s, t) = tokio::join!(q(source, s_sql), q(target, t_sql));
    let (s, t) =
        (s.context("checksumming on the source")?, t.context("checksumming on the target")?);
    Ok((s == t).then(|| u64::try_from(s.0).unwrap_or(0)))
}

/// Verifies one shard.
///
/// # Errors
/// A failed query on either side.
pub async fn verify_shard(
    plan: &TablePlan,
    source: &PgPool,
    target: &PgPool,
    shard: &Shard,
    opts: ReadOptions,
) -> anyhow::Result<Counts> {
    let width = plan.columns.len();
    let key_kinds: Vec<Kind> = plan.kinds[..plan.key_len].to_vec();
    let mut counts = Counts::default();
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
            let s_sql = page_sql(plan, Side::Source, shard, s_after.as_ref(), opts.batch);
            let t_sql = page_sql(plan, Side::Target, shard, t_after.as_ref(), opts.batch);
            let (s_page, t_page) = tokio::join!(
                async {
                    if s_need {
                        fetch_rows(source, &s_sql, width).await.map(Some)
                    } else {
                        Ok(None)
                    }
                },
                async {
                    if t_need {
                        fetch_rows(target, &t_sql, width).await.map(Some)
                    } else {
                        Ok(None)
                    }
                },
            );
            if let Some(p) = s_page.map_err(|e| {
                anyhow::anyhow!(e).context(format!("reading {} on the source", plan.table.name))
            })? {
                s_done = (p.len() as u64) < opts.batch;
                s_after = p.last().map(|r| r[..plan.key_len].to_vec());
                metrics::counter!(molt_metrics::verify::ROWS_READ, "table" => plan.table.name.to_string()).increment(p.len() as u64);
                s_rows = p;
                si = 0;
            }
            if let Some(p) = t_page.map_err(|e| {
                anyhow::anyhow!(e).context(format!("reading {} on the target", plan.target_name))
            })? {
                t_done = (p.len() as u64) < opts.batch;
                t_after = p.last().map(|r| r[..plan.key_len].to_vec());
                t_rows = p;
                ti = 0;
            }
            throttle(opts.rows_per_second, counts.truth_rows, started).await;
        }
        let s = s_rows.get(si);
        let t = t_rows.get(ti);
        match (s, t) {
            (None, None) => break,
            (Some(s), None) => {
                counts.truth_rows += 1;
                diffs.push(Diff::Missing(s.clone()));
                si += 1;
            }
            (None, Some(t)) => {
                diffs.push(Diff::Extraneous(t.clone()));
                ti += 1;
            }
            (Some(s), Some(t)) => {
                match cmp_keys(&key_kinds, &s[..plan.key_len], &t[..plan.key_len]) {
                    Ordering::Less => {
                        counts.truth_rows += 1;
                        diffs.push(Diff::Missing(s.clone()));
                        si += 1;
                    }
                    Ordering::Greater => {
                        diffs.push(Diff::Extraneous(t.clone()));
                        ti += 1;
                    }
                    Ordering::Equal => {
                        counts.truth_rows += 1;
                        match judge(plan, s, t) {
                            Verdict::Success => counts.success += 1,
                            Verdict::Conditional => counts.conditional_success += 1,
                            Verdict::Mismatch(cols) => {
                                diffs.push(Diff::Mismatch(s.clone(), t.clone(), cols))
                            }
                        }
                        si += 1;
                        ti += 1;
                    }
                }
            }
        }
    }
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
    source: &PgPool,
    target: &PgPool,
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
        for chunk in diffs.chunks(500) {
            let keys: Vec<Row> = chunk.iter().map(|d| d.key(n)).collect();
            let (s_sql, t_sql) =
                (lookup_sql(plan, Side::Source, &keys), lookup_sql(plan, Side::Target, &keys));
            let (s, t) = tokio::join!(
                fetch_rows(source, &s_sql, plan.columns.len()),
                fetch_rows(target, &t_sql, plan.columns.len())
            );
            let (s, t) = (s?, t?);
            for key in &keys {
                let find = |rows: &[Row]| {
                    rows.iter()
                        .find(|r| cmp_keys(&key_kinds, &r[..n], key) == Ordering::Equal)
                        .cloned()
                };
                match (find(&s), find(&t)) {
                    (Some(sr), Some(tr)) => match judge(plan, &sr, &tr) {
                        Verdict::Success => counts.success += 1,
                        Verdict::Conditional => counts.conditional_success += 1,
                        Verdict::Mismatch(cols) => still.push(Diff::Mismatch(sr, tr, cols)),
                    },
                    (Some(sr), None) => still.push(Diff::Missing(sr)),
                    (None, Some(tr)) => still.push(Diff::Extraneous(tr)),
                    // Deleted on both sides meanwhile: no longer a source row.
                    (None, None) => counts.truth_rows = counts.truth_rows.saturating_sub(1),
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
