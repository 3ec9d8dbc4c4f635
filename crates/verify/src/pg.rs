//! Reading rows from PostgreSQL (and CockroachDB) for verify: each column as the server's
//! text, keys in byte order (`COLLATE "C"` on strings), and key ranges compared by checksum.

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use molt_schema::quote_ident;
use sqlx::{PgPool, Row as _};

use crate::rows::{Row, RowReader, Side, TablePlan};

/// Session settings under which both PostgreSQL sides print equal values alike.
pub const SESSION: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex'";

/// A PostgreSQL-protocol side of a verify run.
#[derive(Debug, Clone)]
pub struct PgReader {
    /// Sessions set up with [`SESSION`].
    pub pool: PgPool,
    /// Which side of the plan this reads.
    pub side: Side,
}

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

fn literal(plan: &TablePlan, side: Side, i: usize, value: Option<&str>) -> String {
    let Some(value) = value else { return "NULL".into() };
    let ty = plan.key_type(side, i);
    format!("CAST({} AS {ty})", molt_schema::ddl::quote_literal(value))
}

fn order_by(plan: &TablePlan) -> String {
    (0..plan.key_len).map(|i| key_expr(plan, i)).collect::<Vec<_>>().join(", ")
}

fn where_clause(conds: Vec<String>) -> String {
    if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) }
}

/// The page query after `after` (exclusive) within the `range` condition.
pub fn page_sql(
    plan: &TablePlan,
    side: Side,
    range: Option<&str>,
    after: Option<&[Option<String>]>,
    limit: u64,
) -> String {
    let mut conds: Vec<String> =
        range.map(|r| format!("({r})")).into_iter().chain(plan.filter(side)).collect();
    if let Some(after) = after {
        let keys: Vec<String> = (0..plan.key_len).map(|i| key_expr(plan, i)).collect();
        let lits: Vec<String> = (0..plan.key_len)
            .map(|i| {
                let lit = literal(plan, side, i, after[i].as_deref());
                if plan.key_collatable[i] { format!("{lit} COLLATE \"C\"") } else { lit }
            })
            .collect();
        conds.push(format!("({}) > ({})", keys.join(", "), lits.join(", ")));
    }
    format!(
        "SELECT {} FROM {}{} ORDER BY {} LIMIT {limit}",
        select_list(plan),
        plan.name(side).quoted(),
        where_clause(conds),
        order_by(plan)
    )
}

fn lookup_sql(plan: &TablePlan, side: Side, keys: &[Row]) -> String {
    let extra = plan.filter(side).map(|f| format!(" AND {f}")).unwrap_or_default();
    let cols: Vec<String> = (0..plan.key_len).map(|i| quote_ident(&plan.columns[i])).collect();
    let tuples: Vec<String> = keys
        .iter()
        .map(|k| {
            let lits: Vec<String> =
                (0..plan.key_len).map(|i| literal(plan, side, i, k[i].as_deref())).collect();
            format!("({})", lits.join(", "))
        })
        .collect();
    format!(
        "SELECT {} FROM {} WHERE ({}) IN ({}){extra} ORDER BY {}",
        select_list(plan),
        plan.name(side).quoted(),
        cols.join(", "),
        tuples.join(", "),
        order_by(plan)
    )
}

async fn fetch_rows(pool: &PgPool, sql: String, width: usize) -> Result<Vec<Row>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?;
    rows.iter()
        .map(|r| (0..width).map(|i| r.try_get::<Option<String>, _>(i)).collect::<Result<Row, _>>())
        .collect()
}

impl RowReader for PgReader {
    fn page<'a>(
        &'a self,
        plan: &'a TablePlan,
        range: Option<&'a str>,
        after: Option<&'a [Option<String>]>,
        limit: u64,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Row>>> {
        Box::pin(async move {
            let sql = page_sql(plan, self.side, range, after, limit);
            fetch_rows(&self.pool, sql, plan.columns.len())
                .await
                .with_context(|| format!("reading {} on the {}", plan.name(self.side), self.side))
        })
    }

    fn lookup<'a>(
        &'a self,
        plan: &'a TablePlan,
        keys: &'a [Row],
    ) -> BoxFuture<'a, anyhow::Result<Vec<Row>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let sql = lookup_sql(plan, self.side, keys);
            fetch_rows(&self.pool, sql, plan.columns.len()).await.with_context(|| {
                format!("looking up rows of {} on the {}", plan.name(self.side), self.side)
            })
        })
    }
}

/// Compares a key range by row count and checksum (sum of 64-bit hashes of each row's text)
/// on both sides at once; `Some(rows)` when they agree, `None` when the rows must be compared
/// one by one. Only for [`TablePlan::hashable`] plans, whose sides are both PostgreSQL.
///
/// # Errors
/// A failed query on either side.
pub async fn checksums_agree(
    plan: &TablePlan,
    source: &PgPool,
    target: &PgPool,
    range: Option<&str>,
) -> anyhow::Result<Option<u64>> {
    let cols: Vec<String> = plan.columns.iter().map(|c| quote_ident(c)).collect();
    let sql = |side: Side| {
        let conds: Vec<String> =
            range.map(|r| format!("({r})")).into_iter().chain(plan.filter(side)).collect();
        format!(
            "SELECT count(*), COALESCE(sum(hashtextextended(r::text, 0)), 0)::text FROM (SELECT {} FROM {}{}) r",
            cols.join(", "),
            plan.name(side).quoted(),
            where_clause(conds)
        )
    };
    let q = |pool: &PgPool, text: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(text)).fetch_one(&pool).await
        }
    };
    let (s, t) = tokio::join!(q(source, sql(Side::Source)), q(target, sql(Side::Target)));
    let (s, t) =
        (s.context("checksumming on the source")?, t.context("checksumming on the target")?);
    Ok((s == t).then(|| u64::try_from(s.0).unwrap_or(0)))
}
