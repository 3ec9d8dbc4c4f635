//! Loading a table's intermediate files into the target: the files its manifest lists that
//! carry no marker yet, in the columns the manifest names; COPY per file, in one target
//! transaction with the file's marker; or CockroachDB `IMPORT INTO` in batches, the markers
//! written after each.

use std::sync::atomic::Ordering;

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt as _;
use molt_schema::CopyFormat;
use molt_target::copy_in_sql;
use molt_target::import::{ImportStatement, import_files, redact_url};
use sqlx::Row as _;
use tracing::{debug, info, warn};

use crate::config::{Compression, LoadMethod};
use crate::continuation;
use crate::retry::{self, Ambiguous};
use crate::run::{Ctx, Progress};
use crate::store::Store;
use crate::tables::{self, TableJob};

/// What remains to load of a table's files.
struct FilesToLoad {
    /// Files not loaded yet (name, rows when the manifest says).
    todo: Vec<(String, Option<u64>)>,
    /// Rows of the files loaded by earlier runs.
    already: u64,
    /// Rows of every file, when the manifest says.
    total: Option<u64>,
    /// The columns of the files, in order.
    columns: Vec<String>,
}

/// The files of a table still to load: those of its manifest (or, for files exported by an
/// older build, of its directory) without a marker on the target.
async fn files_to_load(ctx: &Ctx, job: &TableJob, store: &Store) -> anyhow::Result<FilesToLoad> {
    let (listed, columns): (Vec<(String, Option<u64>)>, _) =
        match store.read_manifest(&job.table.name).await? {
            Some(m) => (m.files.into_iter().map(|(n, r)| (n, Some(r))).collect(), m.columns),
            None => {
                let names = store.list_files(&job.table.name).await.unwrap_or_default();
                if names.is_empty() {
                    bail!(
                        "no intermediate files for {} at {} (run --mode export-only first)",
                        job.table.name,
                        store.display(&job.table.name, "")
                    );
                }
                (names.into_iter().map(|n| (n, None)).collect(), None)
            }
        };
    let columns = tables::file_columns(job, columns)?;
    let total = listed.iter().map(|(_, r)| *r).sum::<Option<u64>>();
    let loaded = if ctx.tracked {
        continuation::loaded_files(&ctx.target_pool, &ctx.fetch_id, &job.table.name).await?
    } else {
        Vec::new()
    };
    let mut already = 0u64;
    let mut todo = Vec::new();
    for (name, rows) in listed {
        let before_start = ctx.from_file.as_deref().is_some_and(|f| name.as_str() < f);
        if let Some((_, n)) = loaded.iter().find(|(l, _)| *l == name) {
            already += n;
        } else if before_start {
            warn!(table = %job.table.name, file = %name, "before --continuation-file-name: taken as loaded");
            already += rows.unwrap_or(0);
        } else {
            todo.push((name, rows));
        }
    }
    if !loaded.is_empty() {
        info!(table = %job.table.name, files_loaded = loaded.len() as u64, files_left = todo.len() as u64, "resuming the import after the files already loaded");
    }
    Ok(FilesToLoad { todo, already, total, columns })
}

/// Loads a table's files not loaded yet; returns the table's rows on the target from this
/// fetch (earlier runs included), checked against the export.
pub(crate) async fn import_table(
    ctx: &Ctx,
    job: &TableJob,
    store: &Store,
    progress: &Progress,
) -> anyhow::Result<u64> {
    let FilesToLoad { todo, already, total, columns } = files_to_load(ctx, job, store).await?;
    let now = match ctx.method {
        LoadMethod::Copy => copy_files(ctx, job, store, &columns, todo, progress).await?,
        LoadMethod::Import => import_into(ctx, job, store, &columns, &todo).await?,
    };
    let rows = already + now;
    if let Some(total) = total
        && rows != total
    {
        bail!(
            "the export of {} holds {total} rows but the target took {rows}; the intermediate files are kept at {}",
            job.table.name,
            store.display(&job.table.name, "")
        );
    }
    Ok(rows)
}

/// Loads files with COPY, each in one target transaction with its marker.
async fn copy_files(
    ctx: &Ctx,
    job: &TableJob,
    store: &Store,
    columns: &[String],
    todo: Vec<(String, Option<u64>)>,
    progress: &Progress,
) -> anyhow::Result<u64> {
    let in_sql = copy_in_sql(&job.mapped.name, columns, CopyFormat::Csv);
    let limit = ctx.cfg.export_concurrency as usize;
    let results = futures_util::stream::iter(todo.into_iter().map(|(name, _)| {
        let in_sql = in_sql.clone();
        async move {
            let path = store.display(&job.table.name, &name);
            let what = format!("loading {path}");
            // Each attempt is one target transaction: a failed one leaves nothing behind.
            let n = retry::retry(ctx.retry_policy(), &what, |_| {
                copy_file(ctx, job, store, &in_sql, &name, &path, progress)
            })
            .await?;
            progress.rows.fetch_add(n, Ordering::Relaxed);
            anyhow::Ok(n)
        }
    }))
    .buffer_unordered(limit)
    .collect::<Vec<_>>()
    .await;
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}

/// Loads one file with COPY in one target transaction, with its marker.
async fn copy_file(
    ctx: &Ctx,
    job: &TableJob,
    store: &Store,
    in_sql: &str,
    name: &str,
    path: &str,
    progress: &Progress,
) -> anyhow::Result<u64> {
    let mut chunks = store.read(&job.table.name, name).await?;
    let mut tx = ctx.target_pool.begin().await.context("opening a target transaction")?;
    let mut sink = tx.copy_in_raw(in_sql).await.with_context(|| format!("starting {in_sql}"))?;
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(c) => {
                progress.bytes.fetch_add(c.len() as u64, Ordering::Relaxed);
                sink.send(c).await.with_context(|| format!("loading {path}"))?;
            }
            Err(e) => {
                let _ = sink.abort("fetch could not read the file").await;
                return Err(anyhow!(e).context(format!("reading {path}")));
            }
        }
    }
    let n =
        sink.finish().await.with_context(|| format!("loading {path} into {}", job.mapped.name))?;
    if ctx.tracked {
        continuation::mark_file(&mut tx, &ctx.fetch_id, &job.table.name, name, n)
            .await
            .context("recording the loaded file")?;
    }
    tx.commit().await.context(Ambiguous).with_context(|| format!("committing {path}"))?;
    Ok(n)
}

/// Loads files with CockroachDB `IMPORT INTO`, recording each batch's files after it.
async fn import_into(
    ctx: &Ctx,
    job: &TableJob,
    store: &Store,
    columns: &[String],
    todo: &[(String, Option<u64>)],
) -> anyhow::Result<u64> {
    let access = ctx.file_access.as_deref().unwrap_or("localhost");
    let url_of = |n: &str| match store {
        Store::Local(_) => format!("http://{access}/{}/{n}", job.table.name),
        Store::Bucket(b) => b.import_url(&job.table.name, n),
    };
    let urls: Vec<String> = todo.iter().map(|(n, _)| url_of(n)).collect();
    let gzip = ctx.cfg.compression == Compression::Gzip;
    let result = import_files(&urls, ctx.cfg.import_batch_size, |batch| {
        let stmt = ImportStatement {
            table: job.mapped.name.clone(),
            columns: columns.to_vec(),
            urls: batch,
            gzip,
        };
        async move {
            debug!("running: {}", stmt.redacted_sql());
            let row =
                sqlx::query(sqlx::AssertSqlSafe(stmt.sql())).fetch_one(&ctx.target_pool).await?;
            let rows: i64 = row.try_get("rows")?;
            if ctx.tracked {
                // IMPORT INTO runs outside transactions: the markers follow it.
                let mut conn = ctx.target_pool.acquire().await?;
                for (name, n) in todo.iter().filter(|(n, _)| stmt.urls.contains(&url_of(n))) {
                    continuation::mark_file(
                        &mut conn,
                        &ctx.fetch_id,
                        &job.table.name,
                        name,
                        n.unwrap_or(0),
                    )
                    .await?;
                }
            }
            info!(
                table = %job.mapped.name,
                "imported {rows} rows for batch for files {} to {}",
                stmt.urls.first().map(|u| redact_url(u)).unwrap_or_default(),
                stmt.urls.last().map(|u| redact_url(u)).unwrap_or_default()
            );
            Ok::<u64, sqlx::Error>(u64::try_from(rows).unwrap_or(0))
        }
    })
    .await;
    result.map_err(|f| {
        anyhow!(f.error).context(format!(
            "IMPORT INTO {} failed at file {} ({} rows from earlier files are loaded)",
            job.mapped.name,
            urls.get(f.file_index).map(|u| redact_url(u)).unwrap_or_default(),
            f.rows_loaded
        ))
    })
}
