//! The export side of a table's load: shards planned on one snapshot session, run at most
//! `--export-concurrency` at once with retries on the same snapshot, each either copied
//! straight into the target (`--direct-copy`, binary COPY where both sides allow) or written
//! to files (CSV or Parquet) that the import phase loads.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt as _;
use molt_schema::{CopyFormat, SourceDialect, TargetDialect};
use molt_source::binary::{BinaryKind, kind_of_target};
use molt_source::export::{ExportSession, Shard};
use molt_target::copy_in_sql;
use tracing::{debug, info};

use crate::config::FileFormat;
use crate::files::{self, ShardWriter};
use crate::parquet::ParquetShardWriter;
use crate::retry::{self, Ambiguous};
use crate::run::{Ctx, Progress, RELAY_CHUNK};
use crate::store::Store;
use crate::tables::TableJob;

/// A new session on the pinned snapshot.
async fn source_session(ctx: &Ctx) -> anyhow::Result<Box<dyn ExportSession>> {
    let snapshot = ctx.snapshot.as_ref().context("no source snapshot was pinned")?;
    snapshot.session().await.context("opening an export session on the source snapshot")
}

/// Plans shards on one snapshot session, which then serves as the first shard's session.
async fn shards_and_first_session(
    ctx: &Ctx,
    job: &TableJob,
) -> anyhow::Result<(Vec<Shard>, Box<dyn ExportSession>)> {
    let mut conn = source_session(ctx).await?;
    let shards = if ctx.cfg.skip_pk_check && job.table.primary_key.is_empty() {
        info!(
            table = %job.table.name,
            "sharding is skipped for table {} - flag skip-pk-check is specified and thus no PK for source table is specified",
            job.table.name
        );
        vec![Shard::whole()]
    } else {
        let wanted = if ctx.cfg.export_concurrency_explicit {
            ctx.cfg.export_concurrency
        } else {
            crate::config::shards_worth(job.estimated_rows, ctx.cfg.export_concurrency)
        };
        conn.plan_shards(&job.table, wanted, ctx.cfg.stats_sharding).await?
    };
    debug!(table = %job.table.name, shards = shards.len() as u64, "planned shards");
    Ok((shards, conn))
}

/// Where a shard that failed on the target's side leaves its recovered source session for
/// its retry ([`ExportSession::recover`]).
type Spare = Arc<std::sync::Mutex<Option<Box<dyn ExportSession>>>>;

/// The mapped target type of each of `columns` (PostgreSQL spellings), for
/// [`ExportSession::set_target_types`].
fn target_types(job: &TableJob, columns: &[String]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            job.mapped
                .columns
                .iter()
                .find(|m| m.name == *c)
                .map(|m| m.ty.render(TargetDialect::Postgres).to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect()
}

/// Leaves `src`, if it can read again, in `spare` for the retry of a shard that failed on the
/// target's side.
async fn keep_for_retry(spare: &Spare, src: Box<dyn ExportSession>) {
    if let Some(s) = src.recover().await
        && let Ok(mut slot) = spare.lock()
    {
        *slot = Some(s);
    }
}

/// Runs `work` for every shard with at most `--export-concurrency` at once; the first shard
/// reuses the planning session. `work` hands its snapshot session back, and this ends it
/// (a failed shard's session closes when dropped, unless `work` left it in the spare slot).
async fn for_each_shard<F, Fut, T>(ctx: &Ctx, job: &TableJob, work: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(Shard, Box<dyn ExportSession>, Spare) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(T, Box<dyn ExportSession>)>>,
{
    let (mut shards, first) = shards_and_first_session(ctx, job).await?;
    if let Some(filter) = &job.filter {
        for s in &mut shards {
            s.predicate = Some(match s.predicate.take() {
                Some(range) => format!("({range}) AND ({filter})"),
                None => format!("({filter})"),
            });
        }
    }
    let mut first = Some(first);
    let limit = ctx.cfg.export_concurrency as usize;
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let mut out = Vec::with_capacity(shards.len());
    let mut iter = shards.into_iter();
    let work = &work;
    loop {
        while pending.len() < limit {
            let Some(shard) = iter.next() else { break };
            // Later shards take their session inside their future: waiting for one here
            // would stop polling a retry that waits for the same pool (a MySQL snapshot's
            // sessions are a fixed set handed round).
            let mut conn = first.take();
            let what = format!("shard {}/{} of {}", shard.index, shard.count, job.table.name);
            let spare: Spare = Arc::default();
            // A retry reads the same rows: the failed attempt's session when it recovered,
            // else a new session on the same snapshot.
            pending.push(async move {
                retry::retry(ctx.retry_policy(), &what, |_| {
                    let shard = shard.clone();
                    let recovered = spare.lock().ok().and_then(|mut s| s.take());
                    let conn = conn.take().or(recovered);
                    let spare = Arc::clone(&spare);
                    async move {
                        let conn = match conn {
                            Some(c) => c,
                            None => source_session(ctx).await?,
                        };
                        work(shard, conn, spare).await
                    }
                })
                .await
            });
        }
        match pending.next().await {
            Some(r) => {
                let (value, src) = r?;
                src.finish().await;
                out.push(value);
            }
            None => break,
        }
    }
    Ok(out)
}

/// Binary COPY when the target is PostgreSQL and either every column has the same built-in
/// type on both sides (a PostgreSQL source streams its own binary), or the source encodes
/// binary itself and every target column type has a binary kind (the kinds are returned);
/// text otherwise.
async fn direct_format(
    ctx: &Ctx,
    job: &TableJob,
    columns: &[String],
) -> (CopyFormat, Option<Vec<BinaryKind>>) {
    if ctx.target_dialect != TargetDialect::Postgres {
        return (CopyFormat::Text, None);
    }
    let Some(snapshot) = &ctx.snapshot else { return (CopyFormat::Text, None) };
    let Ok(mut dst) = ctx.target_pool.acquire().await else { return (CopyFormat::Text, None) };
    if snapshot.encodes_binary() {
        // Enum columns take their label's text in binary too; other user types stay text.
        let details = molt_source_pg::column_type_details(&mut dst, &job.mapped.name, columns);
        let kinds: Option<Vec<BinaryKind>> = details.await.and_then(|types| {
            types
                .iter()
                .map(|t| match (t.builtin, t.is_enum) {
                    (_, true) => Some(BinaryKind::Text),
                    (true, false) => kind_of_target(&t.spelling),
                    (false, false) => None,
                })
                .collect()
        });
        return match kinds {
            Some(k) => (CopyFormat::Binary, Some(k)),
            None => (CopyFormat::Text, None),
        };
    }
    let target = molt_source_pg::column_types(&mut dst, &job.mapped.name, columns).await;
    let source = snapshot.binary_types(&job.table.name, columns).await;
    match (source, target) {
        (Some(s), Some((t, true))) if s == t => (CopyFormat::Binary, None),
        _ => (CopyFormat::Text, None),
    }
}

pub(crate) async fn direct_copy(
    ctx: &Ctx,
    job: &TableJob,
    columns: &[String],
    progress: &Progress,
) -> anyhow::Result<u64> {
    let (format, kinds) = direct_format(ctx, job, columns).await;
    debug!(table = %job.table.name, format = ?format, encoded = kinds.is_some(), "direct copy format");
    let kinds = &kinds;
    let in_sql = copy_in_sql(&job.mapped.name, columns, format);
    let rows = for_each_shard(ctx, job, |shard, mut src, spare| {
        let in_sql = in_sql.clone();
        async move {
            // The target side first: when it fails, the source session has read nothing
            // and serves the retry.
            let mut dst = match ctx.target_pool.acquire().await {
                Ok(c) => c,
                Err(e) => {
                    keep_for_retry(&spare, src).await;
                    return Err(anyhow!(e).context("taking a target connection"));
                }
            };
            let mut sink = match dst.copy_in_raw(&in_sql).await {
                Ok(s) => s,
                Err(e) => {
                    keep_for_retry(&spare, src).await;
                    return Err(anyhow!(e).context(format!("starting {in_sql}")));
                }
            };
            src.set_target_types(&target_types(job, columns));
            let mut stream = match kinds {
                Some(k) => src
                    .binary_rows(&job.table, columns, &shard, k)
                    .await?
                    .context("the source session writes no binary COPY")?,
                None => src.rows(&job.table, columns, &shard, format).await?,
            };
            let mut buf: Vec<u8> = Vec::with_capacity(RELAY_CHUNK + 64 * 1024);
            let mut rows = 0u64;
            let mut failure: Option<anyhow::Error> = None;
            let mut target_failed = false;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => {
                        rows += 1;
                        buf.extend_from_slice(&c);
                        if buf.len() >= RELAY_CHUNK {
                            progress.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                            if let Err(e) = sink.send(std::mem::take(&mut buf)).await {
                                failure = Some(anyhow!(e).context("writing rows to the target"));
                                target_failed = true;
                                break;
                            }
                            buf.reserve(RELAY_CHUNK + 64 * 1024);
                        }
                        progress.rows.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failure = Some(anyhow!(e).context(format!(
                            "reading {} shard {}/{} from the source",
                            job.table.name, shard.index, shard.count
                        )));
                        break;
                    }
                }
            }
            drop(stream);
            if let Some(e) = failure {
                let _ = sink.abort("fetch stopped reading this shard").await;
                if target_failed {
                    keep_for_retry(&spare, src).await;
                }
                return Err(e);
            }
            if !buf.is_empty() {
                progress.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                if let Err(e) = sink.send(buf).await {
                    keep_for_retry(&spare, src).await;
                    return Err(anyhow!(e).context("writing rows to the target"));
                }
            }
            let written = sink.finish().await.context(Ambiguous).with_context(|| {
                format!(
                    "loading {} shard {}/{} into the target",
                    job.mapped.name, shard.index, shard.count
                )
            })?;
            // Binary COPY frames rows with a header and a trailer whose messages need not
            // be rows of their own: the target's count is the row count there.
            let rows = if format == CopyFormat::Binary { written } else { rows };
            if written != rows {
                bail!(
                    "shard {}/{} of {}: read {rows} rows but the target stored {written}",
                    shard.index,
                    shard.count,
                    job.table.name
                );
            }
            Ok((rows, src))
        }
    })
    .await?;
    Ok(rows.iter().sum())
}

/// Exports a table into files; returns them (name, rows) in load order.
pub(crate) async fn export_to_files(
    ctx: &Ctx,
    job: &TableJob,
    store: &Store,
    columns: &[String],
    progress: &Progress,
) -> anyhow::Result<Vec<(String, u64)>> {
    store.remove_table(&job.table.name).await.context("clearing files of an earlier export")?;
    let dir = store.write_dir();
    let typed_by_target = ctx.snapshot.as_ref().is_some_and(|s| s.encodes_binary());
    let exported = parquet_columns(typed_by_target, job, columns);
    let exported = &exported;
    let rows = for_each_shard(ctx, job, |shard, mut src, _spare| async move {
        let copy_format = match ctx.cfg.format {
            FileFormat::Csv => CopyFormat::Csv,
            FileFormat::Parquet => CopyFormat::Text,
        };
        // A bucket's parts upload as they are finished, so few are ever on local disk.
        let (uploads, uploader) = match store {
            Store::Local(_) => (None, None),
            Store::Bucket(b) => {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<files::WrittenFile>(2);
                let table = job.table.name.clone();
                let task = async move {
                    while let Some(f) = rx.recv().await {
                        b.upload(&f.path, &table, &f.name).await?;
                    }
                    anyhow::Ok(())
                };
                (Some(tx), Some(task))
            }
        };
        let writer = match ctx.cfg.format {
            FileFormat::Csv => AnyWriter::Csv(ShardWriter::start(
                dir,
                &job.table.name,
                shard.index,
                ctx.cfg.compression,
                ctx.cfg.flush_rows,
                ctx.cfg.flush_size,
                uploads,
            )),
            FileFormat::Parquet => AnyWriter::Parquet(ParquetShardWriter::start(
                dir,
                &job.table.name,
                exported,
                shard.index,
                ctx.cfg.flush_rows,
                ctx.cfg.flush_size,
                uploads,
            )),
        };
        let uploading = async {
            match uploader {
                Some(task) => task.await,
                None => Ok(()),
            }
        };
        let exporting = async {
            let mut failure: Option<anyhow::Error> = None;
            let mut rows = 0u64;
            src.set_target_types(&target_types(job, columns));
            match src.rows(&job.table, columns, &shard, copy_format).await {
                Err(e) => failure = Some(anyhow!(e)),
                Ok(mut stream) => {
                    let mut batch: Vec<Bytes> = Vec::with_capacity(1024);
                    let mut batch_bytes = 0usize;
                    while let Some(chunk) = stream.next().await {
                        let c = match chunk {
                            Ok(c) => c,
                            Err(e) => {
                                failure = Some(anyhow!(e).context(format!(
                                    "reading {} shard {}/{} from the source",
                                    job.table.name, shard.index, shard.count
                                )));
                                break;
                            }
                        };
                        rows += 1;
                        batch_bytes += c.len();
                        batch.push(c);
                        if batch_bytes >= RELAY_CHUNK {
                            progress.bytes.fetch_add(batch_bytes as u64, Ordering::Relaxed);
                            progress.rows.fetch_add(batch.len() as u64, Ordering::Relaxed);
                            batch_bytes = 0;
                            if writer.send(std::mem::take(&mut batch)).await.is_err() {
                                break;
                            }
                        }
                    }
                    drop(stream);
                    if failure.is_none() && !batch.is_empty() {
                        progress.rows.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        let _ = writer.send(batch).await;
                    }
                }
            }
            // Always wait for the writer thread, so that a retry never writes the same files
            // while this attempt's thread still does.
            let written = writer
                .finish()
                .await
                .with_context(|| format!("writing files under {}", dir.display()));
            if let Some(e) = failure {
                return Err(e);
            }
            anyhow::Ok((written?, rows))
        };
        let (exported, uploaded) = tokio::join!(exporting, uploading);
        // An upload failure is the cause when both failed (the writer stops when uploads do).
        uploaded?;
        let (written, rows) = exported?;
        let in_files: u64 = written.iter().map(|f| f.rows).sum();
        if in_files != rows {
            bail!(
                "shard {}/{} of {}: read {rows} rows but wrote {in_files}",
                shard.index,
                shard.count,
                job.table.name
            );
        }
        Ok((written, src))
    })
    .await?;
    let mut all: Vec<(String, u64)> =
        rows.into_iter().flatten().map(|f| (f.name, f.rows)).collect();
    all.sort();
    Ok(all)
}

/// The exported columns with the types their Parquet kinds follow: the source's, or with
/// `typed_by_target` (a source whose rows arrive in the target's text, such as MySQL) the
/// mapped target types (a MySQL `BIGINT UNSIGNED` is a `numeric(20,0)`, not an INT64).
fn parquet_columns(
    typed_by_target: bool,
    job: &TableJob,
    columns: &[String],
) -> Vec<molt_schema::Column> {
    job.table
        .columns
        .iter()
        .filter(|c| columns.contains(&c.name))
        .map(|c| {
            let mapped = job.mapped.columns.iter().find(|m| m.name == c.name);
            match (typed_by_target, mapped) {
                (false, _) | (_, None) => c.clone(),
                (true, Some(m)) => {
                    let spelling = m.ty.render(TargetDialect::Postgres);
                    let ty = molt_schema::ColumnType::parse(SourceDialect::Postgres, &spelling)
                        .unwrap_or_else(|_| {
                            molt_schema::ColumnType::parse(SourceDialect::Postgres, "text")
                                .unwrap_or_else(|_| c.ty.clone())
                        });
                    molt_schema::Column { ty, ..c.clone() }
                }
            }
        })
        .collect()
}

/// A shard's file writer: CSV (the default) or Parquet.
enum AnyWriter {
    Csv(ShardWriter),
    Parquet(ParquetShardWriter),
}

impl AnyWriter {
    async fn send(&self, rows: Vec<Bytes>) -> Result<(), ()> {
        match self {
            AnyWriter::Csv(w) => w.send(rows).await,
            AnyWriter::Parquet(w) => w.send(rows).await,
        }
    }

    async fn finish(self) -> std::io::Result<Vec<files::WrittenFile>> {
        match self {
            AnyWriter::Csv(w) => w.finish().await,
            AnyWriter::Parquet(w) => w.finish().await,
        }
    }
}
