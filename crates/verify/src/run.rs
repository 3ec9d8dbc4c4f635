//! One verify run: tables, then columns, then rows of every comparable table, shard by shard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use molt_cli::hms;
use molt_schema::compare::{MismatchTag, compare_tables, types_compatible};
use molt_schema::{SourceDialect, SqlType, TableFilter, TargetTable, map_table};
use molt_source::CatalogReader as _;
use molt_source_pg::PgCatalog;
use molt_source_pg::export::{estimated_rows, plan_shards};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection as _, PgConnection};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::mysql::MysqlReader;
use crate::pg::{PgReader, SESSION, checksums_agree};
use crate::rows::{Counts, KeyRange, ReadOptions, RowReader, Side, TablePlan, verify_shard};
use crate::value::Kind;

/// What verify found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Source tables with no target table.
    pub missing_tables: Vec<String>,
    /// Target tables with no source table.
    pub extraneous_tables: Vec<String>,
    /// Tables whose rows could not be compared (no usable primary key).
    pub uncomparable_tables: Vec<String>,
    /// Tables with definition differences.
    pub mismatching_tables: Vec<String>,
    /// Row counts per verified table (`schema.table`, totals over shards).
    pub tables: Vec<(String, Counts)>,
}

impl Report {
    /// Whether source and target hold the same data.
    pub fn clean(&self) -> bool {
        self.missing_tables.is_empty()
            && self.extraneous_tables.is_empty()
            && self.uncomparable_tables.is_empty()
            && self.tables.iter().all(|(_, c)| c.clean())
    }

    /// Counts summed over every table.
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for (_, c) in &self.tables {
            t.add(c);
        }
        t
    }
}

/// A checked verify configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--source`.
    pub source: String,
    /// `--target`.
    pub target: String,
    /// `--allow-tls-mode-disable`.
    pub allow_tls_mode_disable: bool,
    /// Filters.
    pub filter: TableFilter,
    /// Shards verified at once.
    pub concurrency: u32,
    /// Shards per table.
    pub table_splits: u32,
    /// Page size and live options.
    pub read: ReadOptions,
    /// `--filter-path`.
    pub filters: molt_schema::rules::RowFilters,
    /// `--transformations-file`.
    pub transforms: molt_schema::rules::Transforms,
}

/// The source side: a PostgreSQL pool (which can also checksum ranges) or a MySQL one.
enum Source {
    Pg(PgReader),
    Mysql(MysqlReader),
}

impl Source {
    fn reader(&self) -> &dyn RowReader {
        match self {
            Source::Pg(r) => r,
            Source::Mysql(r) => r,
        }
    }

    async fn close(self) {
        match self {
            Source::Pg(r) => r.pool.close().await,
            Source::Mysql(r) => {
                let _ = r.pool.disconnect().await;
            }
        }
    }
}

async fn pool(url: &molt_url::ConnUrl, size: u32) -> anyhow::Result<PgPool> {
    // Probe once for a clear error, then a pool whose sessions print values alike.
    molt_source_pg::connect(url, 1).await?.close().await;
    let opts = molt_source_pg::connect_options(url)?;
    Ok(PgPoolOptions::new()
        .max_connections(size.max(1))
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql(SESSION).execute(conn).await?;
                Ok(())
            })
        })
        .connect_with(opts)
        .await?)
}

fn collatable(ty: &SqlType) -> bool {
    matches!(ty, SqlType::Text | SqlType::Varchar(_) | SqlType::Char(_))
}

/// Runs verify.
///
/// # Errors
/// Connection, catalog or query failures (differences are in the [`Report`], not errors).
pub async fn run(cfg: Config) -> anyhow::Result<Report> {
    let started = Instant::now();
    let plan = molt_preflight::check(&molt_preflight::Request {
        source: &cfg.source,
        target: &cfg.target,
        allow_tls_mode_disable: cfg.allow_tls_mode_disable,
        filter: &cfg.filter,
        type_map_file: None,
    })
    .await?;
    let size = cfg.concurrency.max(1) + 1;
    let source = match plan.source_dialect {
        SourceDialect::Postgres => {
            Source::Pg(PgReader { pool: pool(&plan.source, size).await?, side: Side::Source })
        }
        SourceDialect::Mysql => Source::Mysql(MysqlReader {
            pool: molt_source_mysql::connect_for_reading(&plan.source, size as usize).await?,
        }),
        other => anyhow::bail!(
            "--source: verify from {other} is not supported by this build; PostgreSQL, MySQL and MariaDB sources are"
        ),
    };
    info!("verification in progress");
    let target = pool(&plan.target, size).await?;
    let target_tables = PgCatalog::new(target.clone()).tables(&TableFilter::all()).await?;
    let mut report = Report::default();
    // Renames of --transformations-file decide which target table a source table is compared to.
    let mapped: Vec<TargetTable> = plan
        .mapped
        .iter()
        .map(|m| TargetTable { name: cfg.transforms.rename(&m.name), ..m.clone() })
        .collect();
    let source_names: Vec<_> = mapped.iter().map(|m| m.name.clone()).collect();
    for t in &target_tables {
        // fetch's status tables and the replicator's staging schema are ours, not the user's.
        let internal =
            t.name.table.starts_with("_molt_") || t.name.schema.starts_with("_replicator");
        if cfg.filter.matches(&t.name) && !source_names.contains(&t.name) && !internal {
            warn!(table_schema = %t.name.schema, table_name = %t.name.table, "extraneous table detected");
            report.extraneous_tables.push(t.name.to_string());
        }
    }
    let mut plans = Vec::new();
    let mut missing_columns: std::collections::HashMap<String, u64> =
        std::collections::HashMap::new();
    for (table, mapped) in plan.tables.iter().zip(&mapped) {
        let Some(target_table) = target_tables.iter().find(|t| t.name == mapped.name) else {
            warn!(table_schema = %table.name.schema, table_name = %table.name.table, "missing table detected");
            report.missing_tables.push(table.name.to_string());
            continue;
        };
        let target_mapped = map_table(
            SourceDialect::Postgres,
            target_table,
            &target_table.name,
            plan.target_dialect,
            None,
        )?;
        let mismatches = compare_tables(mapped, &target_mapped, false);
        if !mismatches.is_empty() {
            report.mismatching_tables.push(table.name.to_string());
        }
        for m in &mismatches {
            warn!(
                table_schema = %table.name.schema,
                table_name = %table.name.table,
                mismatch_tag = %m.tag,
                mismatch_info = %m.message,
                "mismatching table definition"
            );
        }
        if mismatches.iter().any(|m| {
            matches!(m.tag, MismatchTag::MissingPrimaryKey | MismatchTag::PrimaryKeyMismatch)
        }) {
            warn!(
                table_schema = %table.name.schema,
                table_name = %table.name.table,
                "{} is missing a PRIMARY KEY - results cannot be compared",
                table.name
            );
            report.uncomparable_tables.push(table.name.to_string());
            continue;
        }
        // A source column the target lacks holds data that was not migrated: counted as a
        // column mismatch, so the table does not pass.
        let lacking = mismatches.iter().filter(|m| m.tag == MismatchTag::MissingColumn).count();
        missing_columns.insert(table.name.to_string(), lacking as u64);
        let mut p = table_plan(table, mapped, target_table, &target_mapped);
        p.ordered_alike = match plan.source_dialect {
            SourceDialect::Mysql => crate::mysql::ordered_alike(table),
            _ => true,
        };
        if let Some(f) = cfg.filters.for_table(&table.name) {
            p.source_filter = Some(f.source.clone());
            p.target_filter = Some(f.target.clone());
        }
        p.hashable = plan.target_dialect == molt_schema::TargetDialect::Postgres
            && plan.source_dialect == SourceDialect::Postgres
            && p.comparable.iter().all(|c| *c)
            && p.columns.iter().all(|c| {
                let s = table.column(c).map(|x| &x.ty.spelling);
                let t = target_table.column(c).map(|x| &x.ty.spelling);
                s.is_some() && s == t
            });
        plans.push(p);
    }
    let gate = Arc::new(Semaphore::new(cfg.concurrency.max(1) as usize));
    let mut set = tokio::task::JoinSet::new();
    let mut order = Vec::new();
    // PostgreSQL sources are split by the planner fetch uses, MySQL ones by integer key.
    let mut conn = match &source {
        Source::Pg(_) => {
            let opts = molt_source_pg::connect_options(&plan.source)?;
            Some(PgConnection::connect_with(&opts).await.context("connecting to the source")?)
        }
        Source::Mysql(_) => None,
    };
    let source = Arc::new(source);
    for p in plans {
        // Checksummable tables are cut into ranges of about a page each, so that a difference
        // costs one page of row reads; the ranges are grouped into --table-splits shards.
        let splits = cfg.table_splits.max(1);
        let ranges: Vec<KeyRange> = match (&*source, conn.as_mut()) {
            (Source::Pg(_), Some(conn)) => {
                let fine = if p.hashable {
                    let est = estimated_rows(conn, &p.table.name).await;
                    // Small ranges keep the cost of a difference low: one range of rows read.
                    let chunk = cfg.read.batch.min(CHECKSUM_RANGE_ROWS) as f64;
                    let pages = (est.max(1) as f64 / chunk).ceil() as u32;
                    pages.clamp(splits, 4096)
                } else {
                    splits
                };
                plan_shards(conn, &p.table, fine, false)
                    .await?
                    .into_iter()
                    .map(|s| KeyRange { source: s.predicate.clone(), target: s.predicate })
                    .collect()
            }
            (Source::Mysql(r), _) => r.ranges(&p.table, splits).await?,
            (Source::Pg(_), None) => vec![KeyRange::default()],
        };
        let per_group = ranges.len().div_ceil(splits as usize).max(1);
        let groups: Vec<Vec<KeyRange>> =
            ranges.chunks(per_group).map(<[KeyRange]>::to_vec).collect();
        let count = u32::try_from(groups.len()).unwrap_or(u32::MAX);
        let p = Arc::new(p);
        let lacking = missing_columns.get(&p.table.name.to_string()).copied().unwrap_or(0);
        order.push((p.table.name.to_string(), p.uncomparable() + lacking));
        for (i, group) in groups.into_iter().enumerate() {
            let (p, gate, source, target) =
                (Arc::clone(&p), Arc::clone(&gate), Arc::clone(&source), target.clone());
            let read = cfg.read;
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            set.spawn(async move {
                let _permit = gate.acquire_owned().await;
                run_shard(&p, &source, &target, &group, (index, count), read)
                    .await
                    .map(|c| (p.table.name.to_string(), c))
            });
        }
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
    // Shards add up rows; uncomparable columns are the table's, counted once.
    let mut per_table: Vec<(String, Counts)> = order
        .into_iter()
        .map(|(n, columns)| (n, Counts { column_mismatch: columns, ..Counts::default() }))
        .collect();
    metrics::gauge!(molt_metrics::verify::SHARDS_RUNNING).set(set.len() as f64);
    while let Some(joined) = set.join_next().await {
        let (name, counts) = joined.context("a shard task ended abnormally")??;
        if let Some(slot) = per_table.iter_mut().find(|(n, _)| *n == name) {
            slot.1.add(&Counts { column_mismatch: 0, ..counts });
        }
        metrics::gauge!(molt_metrics::verify::SHARDS_RUNNING).set(set.len() as f64);
    }
    report.tables = per_table;
    record_metrics(&report);
    let elapsed = started.elapsed();
    metrics::gauge!(molt_metrics::verify::DURATION_SECONDS).set(elapsed.as_secs_f64());
    info!(
        target: "summary",
        net_duration_ms = elapsed.as_secs_f64() * 1000.0,
        net_duration = %hms(elapsed),
        "verification complete"
    );
    if let Ok(source) = Arc::try_unwrap(source) {
        source.close().await;
    }
    target.close().await;
    Ok(report)
}

fn table_plan(
    table: &molt_schema::Table,
    mapped: &TargetTable,
    target_table: &molt_schema::Table,
    target: &TargetTable,
) -> TablePlan {
    let mut columns: Vec<String> = table.primary_key.clone();
    for c in &table.columns {
        if !columns.contains(&c.name) && target.columns.iter().any(|t| t.name == c.name) {
            columns.push(c.name.clone());
        }
    }
    let ty = |name: &str| {
        mapped
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.ty.clone())
            .unwrap_or(SqlType::Text)
    };
    let target_ty =
        |name: &str| target.columns.iter().find(|c| c.name == name).map(|c| c.ty.clone());
    let kinds = columns
        .iter()
        .map(|c| {
            let ty = ty(c);
            Kind::between(&ty, &target_ty(c).unwrap_or_else(|| ty.clone()))
        })
        .collect();
    let comparable = columns
        .iter()
        .map(|c| target_ty(c).is_some_and(|t| types_compatible(&ty(c), &t)))
        .collect();
    let key_len = table.primary_key.len();
    let key_collatable = columns[..key_len].iter().map(|c| collatable(&ty(c))).collect();
    let spelling = |t: &molt_schema::Table, c: &String| {
        t.column(c).map_or_else(|| "text".to_owned(), |x| x.ty.spelling.clone())
    };
    let source_key_types = columns[..key_len].iter().map(|c| spelling(table, c)).collect();
    let target_key_types = columns[..key_len].iter().map(|c| spelling(target_table, c)).collect();
    TablePlan {
        table: table.clone(),
        target_name: mapped.name.clone(),
        columns,
        kinds,
        comparable,
        key_len,
        key_collatable,
        hashable: false,
        source_filter: None,
        target_filter: None,
        source_key_types,
        target_key_types,
        ordered_alike: true,
    }
}

async fn run_shard(
    p: &TablePlan,
    source: &Source,
    target: &PgPool,
    ranges: &[KeyRange],
    (index, count): (u32, u32),
    read: ReadOptions,
) -> anyhow::Result<Counts> {
    info!(
        table_schema = %p.table.name.schema,
        table_name = %p.table.name.table,
        "starting verify on {}, shard {index}/{count}",
        p.table.name,
    );
    let mut c = Counts::default();
    let target_reader = PgReader { pool: target.clone(), side: Side::Target };
    for range in ranges {
        if let Source::Pg(s) = source
            && p.hashable
            && let Some(rows) = checksums_agree(p, &s.pool, target, range.source.as_deref()).await?
        {
            c.truth_rows += rows;
            c.success += rows;
            continue;
        }
        c.add(&verify_shard(p, source.reader(), &target_reader, range, read).await?);
    }
    c.column_mismatch = p.uncomparable();
    let suffix = if c.conditional_success > 0 {
        " - please check all warnings and errors to determine whether column mismatches can be ignored"
    } else {
        ""
    };
    info!(
        target: "summary",
        table_schema = %p.table.name.schema,
        table_name = %p.table.name.table,
        num_truth_rows = c.truth_rows,
        num_success = c.success,
        num_conditional_success = c.conditional_success,
        num_missing = c.missing,
        num_mismatch = c.mismatch,
        num_extraneous = c.extraneous,
        num_live_retry = c.live_retry,
        num_column_mismatch = c.column_mismatch,
        "finished row verification on {} (shard {index}/{count}){suffix}",
        p.table.name,
    );
    Ok(c)
}

fn record_metrics(r: &Report) {
    use molt_metrics::verify as m;
    metrics::gauge!(m::NUM_TABLES, "category" => "verified").set(r.tables.len() as f64);
    metrics::gauge!(m::NUM_TABLES, "category" => "missing").set(r.missing_tables.len() as f64);
    metrics::gauge!(m::NUM_TABLES, "category" => "extraneous")
        .set(r.extraneous_tables.len() as f64);
    for (table, c) in &r.tables {
        for (status, n) in [
            ("success", c.success),
            ("conditional_success", c.conditional_success),
            ("missing", c.missing),
            ("mismatching", c.mismatch),
            ("mismatching_column", c.column_mismatch),
            ("extraneous", c.extraneous),
        ] {
            metrics::gauge!(m::ROW_VERIFICATION_STATUS, "status" => status, "table" => table.clone()).set(n as f64);
        }
    }
}

/// Rows per checksummed key range (at most `--row-batch-size`).
const CHECKSUM_RANGE_ROWS: u64 = 5000;

/// Live re-check defaults: five attempts starting at 100 ms, doubling.
pub const LIVE_ATTEMPTS: u32 = 5;
/// First live back-off.
pub const LIVE_BACKOFF: Duration = Duration::from_millis(100);
