//! Reading a table out of the pinned snapshot: key-range shards and the `COPY … TO STDOUT`
//! that streams each one.
//!
//! Shards split the first primary-key column's range: evenly between its minimum and maximum
//! for integer, float and UUID keys (the first and last shards are open-ended, so every row
//! lands in exactly one shard whatever was inserted meanwhile), or at the bounds of
//! `pg_stats.histogram_bounds` with `--use-stats-based-sharding` (any sortable key). Other keys
//! are one shard. Rows stream with COPY: the server sends one message per row, and nothing
//! ever holds more than a buffer of them.

use molt_schema::{CopyFormat, Table, quote_ident};
use sqlx::PgConnection;
use tracing::{info, warn};

pub use molt_source::export::Shard;
use molt_source::export::{int_bounds, shards_from_bounds};

use crate::snapshot::SnapshotError;

/// The most shards stats-based sharding forms, as MOLT caps it.
pub const MAX_STATS_SHARDS: usize = 200;

/// Quoted column list `("a", "b")` of the exported columns.
pub fn column_list(columns: &[String]) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    format!("({})", cols.join(", "))
}

/// The `COPY … TO STDOUT` statement for one shard. A whole table is copied by name, unless a
/// column is generated: `COPY t (…)` refuses to name generated columns, a query may.
pub fn copy_out_sql(
    table: &Table,
    columns: &[String],
    shard: &Shard,
    format: CopyFormat,
) -> String {
    let generated =
        columns.iter().any(|c| table.column(c).is_some_and(|col| col.generated.is_some()));
    match (&shard.predicate, generated) {
        (None, false) => format!(
            "COPY {} {} TO STDOUT{}",
            table.name.quoted(),
            column_list(columns),
            format.copy_options()
        ),
        (predicate, _) => {
            let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            let filter = predicate.as_ref().map(|p| format!(" WHERE {p}")).unwrap_or_default();
            format!(
                "COPY (SELECT {} FROM {}{filter}) TO STDOUT{}",
                cols.join(", "),
                table.name.quoted(),
                format.copy_options()
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Int,
    Float,
    Uuid,
    Other,
}

fn key_kind(type_name: &str) -> KeyKind {
    match type_name {
        "int2" | "int4" | "int8" => KeyKind::Int,
        "float4" | "float8" => KeyKind::Float,
        "uuid" => KeyKind::Uuid,
        _ => KeyKind::Other,
    }
}

fn query_err(what: String) -> impl FnOnce(sqlx::Error) -> SnapshotError {
    move |source| SnapshotError::Query { what, source }
}

/// Plans the shards of `table` on a session that has imported the snapshot.
///
/// # Errors
/// [`SnapshotError::Query`] when the key range cannot be read.
pub async fn plan_shards(
    conn: &mut PgConnection,
    table: &Table,
    requested: u32,
    stats_based: bool,
) -> Result<Vec<Shard>, SnapshotError> {
    let whole = vec![Shard { index: 1, count: 1, predicate: None }];
    let Some(key) = table.primary_key_columns().next() else { return Ok(whole) };
    let requested = requested.max(1);
    if requested == 1 && !stats_based {
        return Ok(whole);
    }
    let col = quote_ident(&key.name);
    let bounds: Vec<String> = if stats_based {
        info!(table = %table.name, "Stats based sharding enabled for table {}", table.name);
        match stats_bounds(conn, table, &key.name, requested).await {
            Ok(b) if !b.is_empty() => b
                .into_iter()
                .map(|lit| {
                    format!(
                        "CAST({} AS {})",
                        molt_schema::ddl::quote_literal(&lit),
                        key.ty.spelling
                    )
                })
                .collect(),
            Ok(_) | Err(_) => {
                let reason = "no histogram in pg_stats (run ANALYZE on the table)";
                warn!(
                    table = %table.name,
                    "Warning: failed to shard table {} using stats based sharding: {reason}, falling back to non stats based sharding",
                    table.name
                );
                range_bounds(conn, table, &col, key_kind(&key.ty.name), requested).await?
            }
        }
    } else {
        range_bounds(conn, table, &col, key_kind(&key.ty.name), requested).await?
    };
    if bounds.is_empty() {
        return Ok(whole);
    }
    let count = u32::try_from(bounds.len() + 1).unwrap_or(u32::MAX);
    if stats_based && count != requested {
        info!(
            table = %table.name,
            "number of shards formed: {count} is not equal to number of shards requested: {requested} for table {}",
            table.name
        );
    }
    Ok(shards_from_bounds(&col, &bounds))
}

async fn range_bounds(
    conn: &mut PgConnection,
    table: &Table,
    col: &str,
    kind: KeyKind,
    n: u32,
) -> Result<Vec<String>, SnapshotError> {
    let what = || format!("reading the key range of {}", table.name);
    let t = table.name.quoted();
    match kind {
        KeyKind::Int => {
            let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(
                format!("SELECT min({col})::int8, max({col})::int8 FROM {t}"),
            ))
            .fetch_one(&mut *conn)
            .await
            .map_err(query_err(what()))?;
            let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(Vec::new()) };
            Ok(int_bounds(i128::from(lo), i128::from(hi), n)
                .into_iter()
                .map(|b| b.to_string())
                .collect())
        }
        KeyKind::Float => {
            let (lo, hi): (Option<f64>, Option<f64>) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT min({col})::float8, max({col})::float8 FROM {t} \
                 WHERE {col} NOT IN ('NaN', 'Infinity', '-Infinity')"
                )))
                .fetch_one(&mut *conn)
                .await
                .map_err(query_err(what()))?;
            let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(Vec::new()) };
            if hi <= lo {
                return Ok(Vec::new());
            }
            let step = (hi - lo) / f64::from(n);
            Ok((1..n).map(|i| format!("'{:e}'::float8", lo + step * f64::from(i))).collect())
        }
        KeyKind::Uuid => {
            let (lo, hi): (Option<String>, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(
                format!("SELECT min({col}::text), max({col}::text) FROM {t}"),
            ))
            .fetch_one(&mut *conn)
            .await
            .map_err(query_err(what()))?;
            let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(Vec::new()) };
            let (Some(lo), Some(hi)) = (uuid_high(&lo), uuid_high(&hi)) else {
                return Ok(Vec::new());
            };
            Ok(u64_bounds(lo, hi, n)
                .into_iter()
                .map(|b| format!("'{}'::uuid", uuid_from_high(b)))
                .collect())
        }
        KeyKind::Other => Ok(Vec::new()),
    }
}

/// The planner's estimate of a table's row count (`pg_class.reltuples`); 0 when unknown
/// (never analysed, or the query failed). For progress and sizing only, never for checks.
pub async fn estimated_rows(conn: &mut PgConnection, table: &molt_schema::TableName) -> u64 {
    let est: Option<f32> = sqlx::query_scalar(
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(&table.schema)
    .bind(&table.table)
    .fetch_optional(conn)
    .await
    .ok()
    .flatten();
    est.filter(|e| *e > 0.0).map_or(0, |e| e as u64)
}

fn u64_bounds(lo: u64, hi: u64, n: u32) -> Vec<u64> {
    let span = u128::from(hi) - u128::from(lo) + 1;
    let n = u128::from(n.max(1)).min(span);
    (1..n)
        .filter_map(|i| u64::try_from(u128::from(lo) + span * i / n).ok())
        .filter(|b| *b > lo)
        .collect()
}

fn uuid_high(text: &str) -> Option<u64> {
    let hex: String = text.chars().filter(|c| *c != '-').take(16).collect();
    u64::from_str_radix(&hex, 16).ok()
}

fn uuid_from_high(high: u64) -> String {
    let h = format!("{high:016x}");
    format!("{}-{}-{}-0000-000000000000", &h[0..8], &h[8..12], &h[12..16])
}

async fn stats_bounds(
    conn: &mut PgConnection,
    table: &Table,
    column: &str,
    requested: u32,
) -> Result<Vec<String>, sqlx::Error> {
    let all: Vec<String> = sqlx::query_scalar(
        "SELECT b FROM pg_stats s, unnest(s.histogram_bounds::text::text[]) WITH ORDINALITY AS u(b, i) \
         WHERE s.schemaname = $1 AND s.tablename = $2 AND s.attname = $3 ORDER BY i",
    )
    .bind(&table.name.schema)
    .bind(&table.name.table)
    .bind(column)
    .fetch_all(&mut *conn)
    .await?;
    Ok(pick_bounds(&all, requested))
}

/// Up to `requested - 1` (at most [`MAX_STATS_SHARDS`] - 1) evenly spaced, distinct interior
/// values of a histogram.
pub fn pick_bounds(histogram: &[String], requested: u32) -> Vec<String> {
    let want = (requested as usize).clamp(1, MAX_STATS_SHARDS);
    if histogram.len() < 3 || want < 2 {
        return Vec::new();
    }
    // Interior bounds only: the first and last histogram values are the sample's extremes.
    let interior = &histogram[1..histogram.len() - 1];
    let mut out: Vec<String> = Vec::new();
    for i in 1..want {
        let idx = i * interior.len() / want;
        if let Some(v) = interior.get(idx)
            && out.last() != Some(v)
        {
            out.push(v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_bounds_are_valid_uuids_in_order() {
        let lo = uuid_high("00000000-0000-0000-0000-000000000000").unwrap();
        let hi = uuid_high("ffffffff-ffff-ffff-ffff-ffffffffffff").unwrap();
        let b: Vec<String> = u64_bounds(lo, hi, 4).into_iter().map(uuid_from_high).collect();
        assert_eq!(
            b,
            vec![
                "40000000-0000-0000-0000-000000000000",
                "80000000-0000-0000-0000-000000000000",
                "c0000000-0000-0000-0000-000000000000"
            ]
        );
    }

    #[test]
    fn stats_bounds_pick_interior_values() {
        let h: Vec<String> = (0..=10).map(|i| format!("k{i:02}")).collect();
        assert_eq!(pick_bounds(&h, 3), vec!["k04", "k07"]);
        assert!(pick_bounds(&h[..2], 4).is_empty());
        let dup: Vec<String> = ["a", "b", "b", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(pick_bounds(&dup, 4), vec!["b"]);
    }

    #[test]
    fn generated_columns_are_copied_through_a_query() {
        let column = |name: &str, generated: Option<molt_schema::Generated>| molt_schema::Column {
            name: name.into(),
            ty: molt_schema::ColumnType::parse(molt_schema::SourceDialect::Postgres, "int4")
                .unwrap(),
            nullable: true,
            default: None,
            generated,
        };
        let g = molt_schema::Generated { expr: "(a * 2)".into(), stored: true };
        let t = Table {
            name: molt_schema::TableName::new("public", "t"),
            columns: vec![column("id", None), column("a", None), column("g", Some(g))],
            primary_key: vec!["id".into()],
            foreign_keys: Vec::new(),
            unique_constraints: Vec::new(),
        };
        let whole = Shard { index: 1, count: 1, predicate: None };
        let plain = ["id".to_owned(), "a".to_owned()];
        let all = ["id".to_owned(), "a".to_owned(), "g".to_owned()];
        assert_eq!(
            copy_out_sql(&t, &plain, &whole, CopyFormat::Binary),
            "COPY \"public\".\"t\" (\"id\", \"a\") TO STDOUT WITH (FORMAT binary)"
        );
        assert_eq!(
            copy_out_sql(&t, &all, &whole, CopyFormat::Csv),
            "COPY (SELECT \"id\", \"a\", \"g\" FROM \"public\".\"t\") TO STDOUT WITH (FORMAT csv)"
        );
        let ranged = Shard { index: 1, count: 2, predicate: Some("\"id\" < 5".into()) };
        assert_eq!(
            copy_out_sql(&t, &all, &ranged, CopyFormat::Text),
            "COPY (SELECT \"id\", \"a\", \"g\" FROM \"public\".\"t\" WHERE \"id\" < 5) TO STDOUT"
        );
    }
}
