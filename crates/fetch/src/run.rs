//! One fetch run: preflight, table handling, the pinned snapshot, then every table through its
//! shards, with MOLT's log lines and metrics.
//!
//! ```text
//! preflight ─▶ table handling ─▶ pin snapshot (+cursor) ─▶ "starting fetch"
//!   per table (≤ --table-concurrency at once):
//!     shards (≤ --export-concurrency):  source COPY TO ──▶ target COPY FROM        (--direct-copy)
//!                                       source COPY TO ──▶ files ──▶ COPY / IMPORT (--local-path)
//! release snapshot ─▶ "fetch complete"
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use molt_cli::hms;
use molt_schema::TargetDialect;
use molt_source::export::Snapshot;
use molt_target::handling::{self, TableHandling};
use sqlx::postgres::PgPool;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{Instrument as _, debug, error, info, info_span, warn};

use crate::config::{Compression, Config, DataPath, LoadMethod, Mode};
use crate::continuation;
use crate::files;
use crate::load_files::import_table;
use crate::retry;
use crate::shards::{direct_copy, export_to_files};
use crate::store::{Bucket, Store};
use crate::tables::{self, TableJob};

pub(crate) const RELAY_CHUNK: usize = 256 * 1024;
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What a finished fetch reports.
#[derive(Debug, Clone)]
pub struct FetchSummary {
    /// This run's id.
    pub fetch_id: String,
    /// Tables loaded.
    pub tables: Vec<String>,
    /// Tables left out (no primary key and no `--skip-pk-check`).
    pub skipped_unmigratable_tables: Vec<String>,
    /// Where replication starts (empty with `--ignore-replication-check`).
    pub cdc_cursor: String,
    /// Rows per table, in `tables` order.
    pub rows: Vec<u64>,
}

/// What every table of a run shares.
pub(crate) struct Ctx {
    pub(crate) cfg: Config,
    /// The pinned source snapshot (None when no table is exported).
    pub(crate) snapshot: Option<Box<dyn Snapshot>>,
    pub(crate) target_pool: PgPool,
    pub(crate) target_dialect: TargetDialect,
    pub(crate) method: LoadMethod,
    pub(crate) cdc_cursor: String,
    pub(crate) file_access: Option<String>,
    /// Where intermediate files are (None: direct copy).
    pub(crate) store: Option<Store>,
    /// This fetch's id (the resumed one's, when continuing).
    pub(crate) fetch_id: String,
    /// Loaded files are recorded on the target, so the load can be resumed.
    pub(crate) tracked: bool,
    /// Continuing an earlier fetch (no table handling, no cleanup).
    pub(crate) resuming: bool,
    /// `--continuation-file-name`: files of the token's table before it count as loaded.
    pub(crate) from_file: Option<String>,
}

impl Ctx {
    /// `--export-retry-max-attempts` and `--export-retry-max-duration`.
    pub(crate) fn retry_policy(&self) -> retry::Policy {
        retry::Policy {
            max_attempts: self.cfg.export_retry_max_attempts,
            max_duration: self.cfg.export_retry_max_duration,
        }
    }
}

/// What continuing an earlier fetch starts from.
struct Resumed {
    record: continuation::FetchRecord,
    /// `--continuation-token`: only this table.
    only_table: Option<molt_schema::TableName>,
}

/// Checks `--fetch-id` (and the token) against the target's records and asks before going on.
async fn prepare_resume(
    cfg: &Config,
    pool: &PgPool,
    resume: &crate::config::Resume,
) -> anyhow::Result<Resumed> {
    continuation::ensure_tables(pool)
        .await
        .context("creating fetch's tables in the target's public schema")?;
    let Some(record) = continuation::find_fetch(pool, &resume.fetch_id).await? else {
        bail!(
            "--fetch-id {} is not a fetch recorded on this target (_molt_fetch_status); molt fetch tokens list --conn-string <target> shows the fetches with tokens",
            resume.fetch_id
        );
    };
    let tokens = continuation::tokens_of(pool, &record.id).await?;
    let only_table = match &resume.token {
        None => None,
        Some(id) => {
            let Some(t) = continuation::token(pool, id).await? else {
                bail!(
                    "--continuation-token {id} does not exist on this target (molt fetch tokens list shows the tokens)"
                );
            };
            if t.fetch_id != record.id {
                bail!(
                    "--continuation-token {id} belongs to fetch {}, not --fetch-id {}",
                    t.fetch_id,
                    record.id
                );
            }
            Some(t.table)
        }
    };
    info!(fetch_id = %record.id, tokens = tokens.len() as u64, "continuing fetch: loaded files are skipped, table handling and --cleanup are not applied");
    if !tokens.is_empty() && !cfg.non_interactive {
        let names: Vec<String> = tokens.iter().map(|t| t.table.to_string()).collect();
        eprint!(
            "Fetch {} has continuation tokens for {}. Retry them (their tokens are cleared once they load)? [y/N] ",
            record.id,
            names.join(", ")
        );
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !answer.trim().eq_ignore_ascii_case("y") {
            bail!("not continuing (answer y, or pass --non-interactive)");
        }
    }
    Ok(Resumed { record, only_table })
}

/// Runs a fetch with a checked configuration.
///
/// # Errors
/// The first fatal problem, with what to fix; tables already loaded are named in the log.
pub async fn run(cfg: Config) -> anyhow::Result<FetchSummary> {
    let started = Instant::now();
    // Bucket clients use rustls without a bundled crypto provider: ring is the one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fetch_id = cfg.resume.as_ref().map_or_else(new_fetch_id, |r| r.fetch_id.clone());
    for r in &cfg.retired {
        warn!(flag = %r.flag, replacement = %r.replacement, "{}", r.note);
    }
    let _metrics = start_metrics(cfg.metrics_addr).await;
    let plan = molt_preflight::check(&molt_preflight::Request {
        source: &cfg.source,
        target: &cfg.target,
        allow_tls_mode_disable: cfg.allow_tls_mode_disable,
        filter: &cfg.filter,
        type_map_file: cfg.type_map_file.as_deref(),
    })
    .await?;
    crate::dialect::check_supported(plan.source_dialect)?;
    let method = match (cfg.method, plan.target_dialect) {
        (LoadMethod::Import, TargetDialect::Postgres) => {
            info!(
                "the target is PostgreSQL, which has no IMPORT INTO: loading with COPY FROM instead"
            );
            LoadMethod::Copy
        }
        (m, _) => m,
    };
    let compression = match (method, cfg.compression) {
        // COPY from files reads plain CSV; a PostgreSQL target never needs gzip.
        (LoadMethod::Copy, _) => Compression::None,
        (_, c) => c,
    };
    let cfg = Config { compression, ..cfg };
    if let (LoadMethod::Import, DataPath::Local { listen: None, .. }) = (method, &cfg.path) {
        bail!(
            "IMPORT INTO reads files over HTTP: pass --local-path-listen-addr (and --local-path-crdb-access-addr if CockroachDB reaches this machine by another address), or --use-copy"
        );
    }
    let conns = cfg.table_concurrency * cfg.export_concurrency + 2;
    let target_pool = molt_source_pg::connect(&plan.target, conns).await?;

    // Tables without a primary key cannot be sharded or resumed by key; MOLT skips them.
    let (mut jobs, skipped) =
        tables::build_jobs(&cfg, plan.source_dialect, plan.tables, plan.mapped);
    if jobs.is_empty() {
        bail!(
            "no table can be migrated: every selected table lacks a primary key (pass --skip-pk-check to load them unsharded)"
        );
    }
    if let Some(t) = &cfg.transforms {
        tables::apply_transforms(t, &mut jobs)?;
        tables::check_merges(&cfg, &jobs)?;
    }
    if let Some(filters) = &cfg.row_filters {
        for j in &mut jobs {
            j.filter = filters.for_table(&j.table.name).map(|f| f.source.clone());
        }
    }
    let store = match &cfg.path {
        DataPath::Direct => None,
        DataPath::Local { dir, .. } => Some(Store::Local(dir.clone())),
        DataPath::Bucket { path } => {
            let bucket = Bucket::open(path.clone(), cfg.auth.clone())?;
            bucket.check().await?;
            Some(Store::Bucket(bucket))
        }
    };
    let tracked = store.is_some() && cfg.mode != Mode::ExportOnly;
    let resumed = match &cfg.resume {
        Some(r) => Some(prepare_resume(&cfg, &target_pool, r).await?),
        None => None,
    };
    if let Some(only) = resumed.as_ref().and_then(|r| r.only_table.as_ref()) {
        jobs.retain(|j| &j.table.name == only);
        if jobs.is_empty() {
            bail!(
                "the token's table {only} is not among the selected tables: widen --schema-filter/--table-filter"
            );
        }
    }
    if let (Some(r), Some(store)) = (&resumed, &store) {
        for j in &mut jobs {
            let complete = store
                .read_manifest(&j.table.name)
                .await?
                .is_some_and(|m| m.fetch_id == r.record.id);
            j.export = cfg.mode != Mode::ImportOnly && !complete;
            if j.export {
                warn!(
                    table = %j.table.name,
                    "its export had not completed: exporting it again from a new snapshot (replication from the original cdc_cursor replays the changes in between)"
                );
            }
        }
    }
    let pin_request = jobs.iter().any(|j| j.export).then(|| crate::dialect::PinRequest {
        // A resumed fetch keeps the slot and cursor of the run it continues.
        slot: if resumed.is_some() { None } else { cfg.slot.clone() },
        drop_and_recreate: cfg.drop_and_recreate_slot && resumed.is_none(),
        tables: jobs.iter().map(|j| j.table.name.clone()).collect(),
        ignore_replication_check: cfg.ignore_replication_check || resumed.is_some(),
        sessions: cfg.table_concurrency * cfg.export_concurrency,
    });
    if let Some(request) = &pin_request {
        crate::dialect::check_replication(&plan.source, plan.source_dialect, request)
            .await
            .context("checking the source can feed replication, before touching the target")?;
    }
    let mut details = std::collections::HashMap::new();
    if cfg.handling == TableHandling::DropOnTargetAndRecreate && cfg.mode != Mode::ExportOnly {
        let names: Vec<_> = jobs.iter().map(|j| j.table.name.clone()).collect();
        details = crate::dialect::details(&plan.source, plan.source_dialect, &names)
            .await
            .context("reading identity columns, constraints and indexes of the source")?;
        tables::define_recreated(&mut jobs, &details);
    }
    if cfg.mode == Mode::ExportOnly {
        tables::export_columns(&cfg, &target_pool, &mut jobs).await?;
    } else {
        let handling = if resumed.is_some() { TableHandling::None } else { cfg.handling };
        tables::prepare_target(
            &cfg,
            handling,
            &target_pool,
            plan.target_dialect,
            &mut jobs,
            &details,
        )
        .await?;
    }

    let pinned = match &pin_request {
        None => None,
        Some(request) => Some(
            crate::dialect::pin(&plan.source, plan.source_dialect, request)
                .await
                .context("pinning the source snapshot")?,
        ),
    };
    let cdc_cursor = match &resumed {
        Some(r) => r.record.cdc_cursor.clone(),
        None => pinned.as_ref().and_then(|p| p.cursor()).unwrap_or_default(),
    };
    if tracked && resumed.is_none() {
        continuation::ensure_tables(&target_pool)
            .await
            .context("creating fetch's tables in the target's public schema (they make an interrupted load resumable)")?;
        let dialect_name = crate::dialect::record_name(plan.source_dialect);
        continuation::record_fetch(&target_pool, &fetch_id, dialect_name, &cdc_cursor).await?;
    }
    if let Some(snapshot) = &pinned {
        for j in jobs.iter_mut() {
            j.estimated_rows = snapshot.estimated_rows(&j.table.name).await;
        }
        tables::warn_unindexed_filters(snapshot.as_ref(), &jobs).await;
    }
    let file_access = match &cfg.path {
        DataPath::Local { access, .. } => access.clone(),
        DataPath::Direct | DataPath::Bucket { .. } => None,
    };
    let file_server = match (&cfg.path, method, cfg.mode) {
        (DataPath::Local { dir, listen: Some(listen), .. }, LoadMethod::Import, m)
            if m != Mode::ExportOnly =>
        {
            Some(crate::fileserver::serve(dir.clone(), listen).await.with_context(|| {
                format!("starting the file server on --local-path-listen-addr {listen}")
            })?)
        }
        _ => None,
    };
    if let Some(server) = &file_server {
        debug!(addr = %server.addr, "file server ready");
    }
    metrics::gauge!(molt_metrics::fetch::NUM_TABLES).set(jobs.len() as f64);
    info!(
        target: "summary",
        num_tables = jobs.len() as u64,
        cdc_cursor = %cdc_cursor,
        fetch_id = %fetch_id,
        "starting fetch"
    );

    let ctx_from_file = cfg.resume.as_ref().and_then(|r| r.from_file.clone());
    let ctx = Arc::new(Ctx {
        cfg,
        snapshot: pinned,
        target_pool,
        target_dialect: plan.target_dialect,
        method,
        cdc_cursor: cdc_cursor.clone(),
        file_access,
        store,
        fetch_id: fetch_id.clone(),
        tracked,
        resuming: resumed.is_some(),
        from_file: ctx_from_file,
    });
    let outcome = load_tables(Arc::clone(&ctx), jobs).await;
    if let Some(p) = &ctx.snapshot {
        p.release().await;
    }
    let (tables, rows) = outcome?;
    let elapsed = started.elapsed();
    metrics::gauge!(molt_metrics::fetch::OVERALL_DURATION).set(elapsed.as_secs_f64());
    info!(
        target: "summary",
        fetch_id = %fetch_id,
        num_tables = tables.len() as u64,
        tables = %json_list(&tables),
        skipped_unmigratable_tables = %json_list(&skipped),
        cdc_cursor = %cdc_cursor,
        net_duration_ms = ms(elapsed),
        net_duration = %hms(elapsed),
        "fetch complete"
    );
    if let Some(handoff) = &ctx.cfg.handoff {
        let command = replicator_command(&plan.source, &plan.target, &ctx, &tables, handoff);
        warn!(
            replicator_command = %command,
            "--mode data-load-and-replication is retired: fetch loaded the data and replicates no longer; start replication now with replicator_command (put the passwords back into its URLs)"
        );
    }
    ctx.target_pool.close().await;
    Ok(FetchSummary { fetch_id, tables, skipped_unmigratable_tables: skipped, cdc_cursor, rows })
}

/// The `replicator pglogical` command that replicates what fetch loaded, from the slot it
/// created (retired `--mode data-load-and-replication`). URLs are redacted; a load into several
/// schemas names the first (one replicator per target schema).
fn replicator_command(
    source: &molt_url::ConnUrl,
    target: &molt_url::ConnUrl,
    ctx: &Ctx,
    tables: &[String],
    handoff: &crate::retired::ReplicationHandoff,
) -> String {
    let schema = tables.first().and_then(|t| t.split_once('.')).map_or("public", |(s, _)| s);
    let mut command = format!(
        "replicator pglogical --sourceConn '{}' --targetConn '{}' --targetSchema {}.{schema} --slotName {} --publicationName {}",
        source.redacted(),
        target.redacted(),
        target.database(),
        ctx.cfg.slot.as_deref().unwrap_or_default(),
        molt_source_pg::snapshot::FETCH_PUBLICATION,
    );
    if let Some(flags) = &handoff.replicator_flags {
        command.push(' ');
        command.push_str(flags);
    }
    command
}

/// `items` as a JSON array, for a log field.
pub(crate) fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn new_fetch_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn start_metrics(addr: Option<std::net::SocketAddr>) -> Option<molt_metrics::MetricsServer> {
    let addr = addr?;
    let handle = match molt_metrics::install() {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "metrics are not exported");
            return None;
        }
    };
    match molt_metrics::serve(addr, molt_metrics::Routes::FETCH, handle).await {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "metrics are not exported (pass another --metrics-listen-addr)");
            None
        }
    }
}

async fn load_tables(
    ctx: Arc<Ctx>,
    jobs: Vec<TableJob>,
) -> anyhow::Result<(Vec<String>, Vec<u64>)> {
    let gate = Arc::new(Semaphore::new(ctx.cfg.table_concurrency as usize));
    let mut set = JoinSet::new();
    let names: Vec<String> = jobs.iter().map(|j| j.mapped.name.to_string()).collect();
    let sources: Vec<molt_schema::TableName> = jobs.iter().map(|j| j.table.name.clone()).collect();
    for (i, job) in jobs.into_iter().enumerate() {
        let ctx = Arc::clone(&ctx);
        let gate = Arc::clone(&gate);
        let span = info_span!("table", table = %job.table.name);
        set.spawn(
            async move {
                let _permit = gate.acquire_owned().await;
                (i, load_table(&ctx, &job).await.map_err(|e| (job.table.name.to_string(), e)))
            }
            .instrument(span),
        );
    }
    let mut rows = vec![0u64; names.len()];
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Ok(n))) => rows[i] = n,
            Ok((i, Err((table, e)))) => {
                metrics::counter!(molt_metrics::fetch::NUM_TASK_ERRORS).increment(1);
                error!(table = %table, error = %molt_cli::error_chain(&e), "table failed");
                if ctx.tracked {
                    mint_token(&ctx, &sources[i], &e).await;
                }
                failures.push(format!("{table}: {}", molt_cli::error_chain(&e)));
            }
            Err(e) => failures.push(format!("a table task ended abnormally: {e}")),
        }
    }
    if !failures.is_empty() && ctx.tracked {
        info!(fetch_id = %ctx.fetch_id, "continue from this fetch ID");
    }
    if !failures.is_empty() && ctx.tracked {
        bail!(
            "{} table(s) failed; fix the cause and resume with the same command plus --fetch-id {} (loaded files are not loaded again): {}",
            failures.len(),
            ctx.fetch_id,
            failures.join("; ")
        );
    }
    if !failures.is_empty() {
        bail!(
            "{} table(s) failed and may be partly loaded on the target; fix the cause and rerun with --table-handling truncate-if-exists: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok((names, rows))
}

/// Records (or updates) the continuation token of a failed table, at the first file it has
/// not loaded, with MOLT's log lines.
async fn mint_token(ctx: &Ctx, table: &molt_schema::TableName, err: &anyhow::Error) {
    let message = molt_cli::error_chain(err);
    let sql_state = err
        .chain()
        .find_map(|c| match c.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        })
        .unwrap_or_default();
    let file_name = match &ctx.store {
        Some(store) => {
            let loaded = continuation::loaded_files(&ctx.target_pool, &ctx.fetch_id, table)
                .await
                .unwrap_or_default();
            store
                .read_manifest(table)
                .await
                .ok()
                .flatten()
                .and_then(|m| {
                    m.files
                        .into_iter()
                        .map(|(n, _)| n)
                        .find(|n| !loaded.iter().any(|(l, _)| l == n))
                })
                .unwrap_or_default()
        }
        None => String::new(),
    };
    info!(table = %table, file_name = %file_name, "creating or updating token for {message}");
    let failure = continuation::Failure {
        fetch_id: &ctx.fetch_id,
        table,
        message: &message,
        sql_state: &sql_state,
        file_name: &file_name,
        stage: "data_load",
    };
    match continuation::upsert_token(&ctx.target_pool, &failure).await {
        Ok(token) => {
            info!(table = %table, continuation_token = %token, "created continuation token")
        }
        Err(e) => {
            warn!(table = %table, error = %e, "could not record the continuation token; resume with --fetch-id alone")
        }
    }
}

/// Live counters of one table, for progress lines and metrics.
#[derive(Default)]
pub(crate) struct Progress {
    /// Rows so far.
    pub(crate) rows: AtomicU64,
    /// Bytes so far.
    pub(crate) bytes: AtomicU64,
}

fn spawn_progress(
    table: String,
    estimated: u64,
    progress: Arc<Progress>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let rows = progress.rows.load(Ordering::Relaxed);
            let mb = progress.bytes.load(Ordering::Relaxed) as f64 / 1e6;
            let secs = start.elapsed().as_secs_f64().max(0.001);
            let completion = if estimated > 0 {
                (rows as f64 * 100.0 / estimated as f64).min(100.0)
            } else {
                0.0
            };
            let eta = if rows > 0 && estimated > rows {
                hms(Duration::from_secs_f64(secs * (estimated - rows) as f64 / rows as f64))
            } else {
                "unknown".into()
            };
            metrics::gauge!(molt_metrics::fetch::COMPLETION_PERCENT, "table" => table.clone())
                .set(completion);
            info!(
                table = %table,
                num_rows = rows,
                completion = (completion * 10.0).round() / 10.0,
                mb_per_second = (mb / secs * 10.0).round() / 10.0,
                eta = %eta,
                "progress"
            );
        }
    })
}

async fn load_table(ctx: &Ctx, job: &TableJob) -> anyhow::Result<u64> {
    let name = job.table.name.to_string();
    let columns: Vec<String> = job.columns.clone();
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let ticker = spawn_progress(name.clone(), job.estimated_rows, Arc::clone(&progress));
    let result = async {
        let (rows, export_time, import_time) = match &ctx.store {
            None => {
                info!(table = %name, "data extraction phase starting");
                info!(table = %name, "starting data import on target");
                let rows = direct_copy(ctx, job, &columns, &progress).await?;
                let t = started.elapsed();
                log_export_done(&name, rows, t);
                (rows, t, t)
            }
            Some(store) => {
                let (rows, export_time) = if job.export {
                    info!(table = %name, "data extraction phase starting");
                    let written = export_to_files(ctx, job, store, &columns, &progress).await?;
                    let rows = written.iter().map(|(_, n)| n).sum();
                    let manifest = files::Manifest {
                        fetch_id: ctx.fetch_id.clone(),
                        files: written,
                        columns: Some(columns.clone()),
                    };
                    store
                        .write_manifest(&job.table.name, &manifest)
                        .await
                        .context("writing the export manifest")?;
                    let t = started.elapsed();
                    log_export_done(&name, rows, t);
                    (rows, t)
                } else {
                    (0, Duration::ZERO)
                };
                if ctx.cfg.mode == Mode::ExportOnly {
                    return Ok::<_, anyhow::Error>(rows);
                }
                info!(table = %name, "starting data import on target");
                let import_start = Instant::now();
                let rows = import_table(ctx, job, store, &progress).await?;
                if ctx.resuming {
                    continuation::clear_tokens(&ctx.target_pool, &ctx.fetch_id, &job.table.name)
                        .await?;
                } else if ctx.cfg.cleanup {
                    store.remove_table(&job.table.name).await.context("--cleanup")?;
                }
                (rows, export_time, import_start.elapsed())
            }
        };
        if let Some(d) = &job.definition {
            handling::advance_identities(&ctx.target_pool, d).await?;
        }
        let net = started.elapsed();
        metrics::counter!(molt_metrics::fetch::ROWS_IMPORTED, "table" => name.clone())
            .increment(rows);
        metrics::gauge!(molt_metrics::fetch::TABLE_IMPORT_DURATION_MS, "table" => name.clone())
            .set(ms(import_time));
        metrics::gauge!(molt_metrics::fetch::TABLE_OVERALL_DURATION_MS, "table" => name.clone())
            .set(ms(net));
        metrics::gauge!(molt_metrics::fetch::COMPLETION_PERCENT, "table" => name.clone())
            .set(100.0);
        info!(
            target: "summary",
            table = %name,
            net_duration_ms = ms(net),
            net_duration = %hms(net),
            import_duration_ms = ms(import_time),
            import_duration = %hms(import_time),
            export_duration_ms = ms(export_time),
            export_duration = %hms(export_time),
            num_rows = rows,
            cdc_cursor = %ctx.cdc_cursor,
            "data import on target for table complete"
        );
        Ok(rows)
    }
    .await;
    ticker.abort();
    result
}

fn log_export_done(table: &str, rows: u64, took: Duration) {
    metrics::counter!(molt_metrics::fetch::ROWS_EXPORTED, "table" => table.to_owned())
        .increment(rows);
    metrics::gauge!(molt_metrics::fetch::TABLE_EXPORT_DURATION_MS, "table" => table.to_owned())
        .set(ms(took));
    info!(
        target: "summary",
        table = %table,
        num_rows = rows,
        export_duration_ms = ms(took),
        export_duration = %hms(took),
        "data extraction from source complete"
    );
}
