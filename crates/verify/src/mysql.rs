//! Reading rows from a MySQL or MariaDB source for verify: binary-protocol pages in the
//! server's own key order, each value as the text fetch writes for it
//! ([`molt_source_mysql::value::value_text`]), so that a row fetched and the row read here
//! compare by meaning with the target's.
//!
//! The server orders strings by their collation (case- and accent-insensitive by default),
//! which no PostgreSQL order matches; [`ordered_alike`] tells the tables whose keys sort the
//! same on both sides (integers, decimals, dates and times, binary strings) from the others,
//! which verify compares by key lookups instead of a merge.

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use molt_schema::{ColumnType, Table};
use molt_source::export::{int_bounds, shards_from_bounds};
use molt_source_mysql::export::{is_binary, is_integer, literal, quote_mysql_ident};
use molt_source_mysql::value::value_text;
use mysql_async::Pool;
use mysql_async::prelude::Queryable as _;

use crate::rows::{KeyRange, Row, RowReader, Side, TablePlan};

/// The MySQL source of a verify run.
#[derive(Debug, Clone)]
pub struct MysqlReader {
    /// Sessions set up by [`molt_source_mysql::connect_for_reading`].
    pub pool: Pool,
}

/// Whether every key column of `table` sorts on MySQL exactly as its mapped column sorts on
/// PostgreSQL (by number, by instant, or by bytes), so both sides can be merged in key order.
pub fn ordered_alike(table: &Table) -> bool {
    table.primary_key_columns().all(|c| {
        let n = c.ty.name.as_str();
        is_integer(n)
            || is_binary(n)
            || matches!(n, "decimal" | "numeric" | "date" | "datetime" | "timestamp")
    })
}

fn table_sql(plan: &TablePlan) -> String {
    let name = &plan.table.name;
    format!("{}.{}", quote_mysql_ident(&name.schema), quote_mysql_ident(&name.table))
}

fn key_types(plan: &TablePlan) -> anyhow::Result<Vec<&ColumnType>> {
    plan.columns[..plan.key_len]
        .iter()
        .map(|c| {
            plan.table
                .column(c)
                .map(|col| &col.ty)
                .with_context(|| format!("key column {c} is not in {}", plan.table.name))
        })
        .collect()
}

/// How key column `col` of type `ty` is ordered and compared in pages: `ENUM` and `SET`
/// sort by their number, so they are compared by it too (`k + 0`); everything else as is.
fn order_expr(ty: &ColumnType, col: &str) -> String {
    let col = quote_mysql_ident(col);
    if matches!(ty.name.as_str(), "enum" | "set") { format!("({col} + 0)") } else { col }
}

/// A key value as the literal [`order_expr`] compares with: an `ENUM` label's position, a
/// `SET`'s bit mask; otherwise [`literal`].
fn order_literal(ty: &ColumnType, value: Option<&str>) -> anyhow::Result<String> {
    let Some(v) = value else { return Ok("NULL".into()) };
    let position = |label: &str| {
        ty.labels
            .iter()
            .position(|l| l == label)
            .with_context(|| format!("{label:?} is not a label of {}", ty.spelling))
    };
    Ok(match ty.name.as_str() {
        "enum" => (position(v)? + 1).to_string(),
        "set" => {
            let mut mask = 0u64;
            for member in v.split(',').filter(|m| !m.is_empty()) {
                mask |= 1u64 << position(member)?;
            }
            mask.to_string()
        }
        _ => literal(ty, Some(v))?,
    })
}

/// `(k1, k2, …) > (v1, v2, …)` spelled out, so every server reads it as a key range.
fn after_condition(plan: &TablePlan, after: &[Option<String>]) -> anyhow::Result<String> {
    let types = key_types(plan)?;
    let mut terms = Vec::new();
    for i in 0..plan.key_len {
        let mut parts = Vec::new();
        for j in 0..i {
            parts.push(format!(
                "{} = {}",
                order_expr(types[j], &plan.columns[j]),
                order_literal(types[j], after[j].as_deref())?
            ));
        }
        parts.push(format!(
            "{} > {}",
            order_expr(types[i], &plan.columns[i]),
            order_literal(types[i], after[i].as_deref())?
        ));
        terms.push(format!("({})", parts.join(" AND ")));
    }
    Ok(format!("({})", terms.join(" OR ")))
}

/// The page query: rows of `range` after `after` in the server's key order.
pub fn page_sql(
    plan: &TablePlan,
    range: Option<&str>,
    after: Option<&[Option<String>]>,
    limit: u64,
) -> anyhow::Result<String> {
    let mut conds: Vec<String> =
        range.map(|r| format!("({r})")).into_iter().chain(plan.filter(Side::Source)).collect();
    if let Some(after) = after {
        conds.push(after_condition(plan, after)?);
    }
    let filter =
        if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let cols: Vec<String> = plan.columns.iter().map(|c| quote_mysql_ident(c)).collect();
    let types = key_types(plan)?;
    let order: Vec<String> =
        types.iter().zip(&plan.columns).map(|(ty, c)| order_expr(ty, c)).collect();
    Ok(format!(
        "SELECT {} FROM {}{filter} ORDER BY {} LIMIT {limit}",
        cols.join(", "),
        table_sql(plan),
        order.join(", ")
    ))
}

/// The lookup of `keys`; `None` when no key can be written for the source's types (a target
/// key such as `NaN` that no source row can have).
fn lookup_sql(plan: &TablePlan, keys: &[Row]) -> anyhow::Result<Option<String>> {
    let types = key_types(plan)?;
    let mut alternatives = Vec::with_capacity(keys.len());
    'keys: for k in keys {
        let mut parts = Vec::with_capacity(plan.key_len);
        for (i, ty) in types.iter().enumerate() {
            let Ok(lit) = literal(ty, k[i].as_deref()) else { continue 'keys };
            parts.push(format!("{} = {lit}", quote_mysql_ident(&plan.columns[i])));
        }
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    if alternatives.is_empty() {
        return Ok(None);
    }
    let extra = plan.filter(Side::Source).map(|f| format!(" AND {f}")).unwrap_or_default();
    let cols: Vec<String> = plan.columns.iter().map(|c| quote_mysql_ident(c)).collect();
    Ok(Some(format!(
        "SELECT {} FROM {} WHERE ({}){extra}",
        cols.join(", "),
        table_sql(plan),
        alternatives.join(" OR ")
    )))
}

impl MysqlReader {
    async fn rows(&self, plan: &TablePlan, sql: String) -> anyhow::Result<Vec<Row>> {
        let types: Vec<&ColumnType> = plan
            .columns
            .iter()
            .map(|c| plan.table.column(c).map(|col| &col.ty))
            .collect::<Option<_>>()
            .with_context(|| format!("a column of {} is not in its catalog", plan.table.name))?;
        let mut conn = self.pool.get_conn().await.context("connecting to the source")?;
        let rows: Vec<mysql_async::Row> = conn
            .exec(sql, ())
            .await
            .with_context(|| format!("reading {} on the source", plan.table.name))?;
        rows.iter()
            .map(|row| {
                types
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| match row.as_ref(i) {
                        Some(v) => value_text(ty, v).map_err(|e| {
                            anyhow::anyhow!(e.in_column(plan.columns[i].clone()))
                                .context(format!("reading {} on the source", plan.table.name))
                        }),
                        None => Ok(None),
                    })
                    .collect()
            })
            .collect()
    }

    /// Key ranges of `table` for `wanted` shards: even splits of an integer first key column
    /// between its minimum and maximum, in each side's SQL; one range otherwise.
    ///
    /// # Errors
    /// The range query failed.
    pub async fn ranges(&self, table: &Table, wanted: u32) -> anyhow::Result<Vec<KeyRange>> {
        let whole = vec![KeyRange::default()];
        let Some(key) = table.primary_key_columns().next() else { return Ok(whole) };
        if wanted <= 1 || !is_integer(&key.ty.name) {
            return Ok(whole);
        }
        let col = quote_mysql_ident(&key.name);
        let sql = format!(
            "SELECT CAST(MIN({col}) AS CHAR), CAST(MAX({col}) AS CHAR) FROM {}.{}",
            quote_mysql_ident(&table.name.schema),
            quote_mysql_ident(&table.name.table)
        );
        let mut conn = self.pool.get_conn().await.context("connecting to the source")?;
        let range: Option<(Option<String>, Option<String>)> = conn
            .query_first(sql)
            .await
            .with_context(|| format!("reading the key range of {}", table.name))?;
        let Some((Some(lo), Some(hi))) = range else { return Ok(whole) };
        let (Ok(lo), Ok(hi)) = (lo.parse::<i128>(), hi.parse::<i128>()) else { return Ok(whole) };
        let bounds: Vec<String> =
            int_bounds(lo, hi, wanted).into_iter().map(|b| b.to_string()).collect();
        if bounds.is_empty() {
            return Ok(whole);
        }
        let source = shards_from_bounds(&col, &bounds);
        let target = shards_from_bounds(&molt_schema::quote_ident(&key.name), &bounds);
        Ok(source
            .into_iter()
            .zip(target)
            .map(|(s, t)| KeyRange { source: s.predicate, target: t.predicate })
            .collect())
    }
}

impl RowReader for MysqlReader {
    fn page<'a>(
        &'a self,
        plan: &'a TablePlan,
        range: Option<&'a str>,
        after: Option<&'a [Option<String>]>,
        limit: u64,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Row>>> {
        Box::pin(async move { self.rows(plan, page_sql(plan, range, after, limit)?).await })
    }

    fn lookup<'a>(
        &'a self,
        plan: &'a TablePlan,
        keys: &'a [Row],
    ) -> BoxFuture<'a, anyhow::Result<Vec<Row>>> {
        Box::pin(async move {
            match lookup_sql(plan, keys)? {
                Some(sql) => self.rows(plan, sql).await,
                None => Ok(Vec::new()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> ColumnType {
        ColumnType::parse(molt_schema::SourceDialect::Mysql, s).unwrap()
    }

    #[test]
    fn enum_and_set_keys_page_by_their_number_as_they_sort() {
        let e = ty("enum('small','medium','large')");
        assert_eq!(order_expr(&e, "size"), "(`size` + 0)");
        assert_eq!(order_literal(&e, Some("medium")).unwrap(), "2");
        let set = ty("set('a','b','c')");
        assert_eq!(order_literal(&set, Some("a,c")).unwrap(), "5");
        assert_eq!(order_literal(&set, Some("")).unwrap(), "0");
        assert!(order_literal(&e, Some("huge")).is_err());
        let v = ty("varchar(10)");
        assert_eq!(order_expr(&v, "name"), "`name`");
        assert_eq!(order_literal(&v, Some("a")).unwrap(), "_utf8mb4 X'61'");
    }
}
