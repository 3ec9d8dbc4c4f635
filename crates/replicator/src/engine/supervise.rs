//! The life of a replication run, whatever the source: the staging lease, the checkpoint,
//! and what happens when a session fails.
//!
//! - The source is checked before the target is touched: a source that cannot replicate is
//!   the cause to name, whatever the target's state.
//! - A lost source (restart, failover, cut network) reconnects with back-off for as long as
//!   it takes and resumes from the checkpoint; it does not count against `--maxRetries`.
//! - A transient target failure restarts the session from the checkpoint, up to
//!   `--maxRetries` failures in a row.
//! - A batch the target refuses (SQLSTATE classes 22 and 23) is replayed from the checkpoint
//!   one change at a time in source order, setting rows still refused aside in the dead-letter
//!   table; a replay that makes no progress at all stops the run.
//! - Anything else stops the run with its cause.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use molt_schema::TargetDialect;
use molt_stage::{Lease, StageError, Staging};
use molt_url::ConnUrl;
use sqlx::postgres::PgPool;
use tokio::sync::watch;
use tracing::{info, warn};

use super::apply::{Applied, Applier, is_row_error, is_transient, load_fk_parents, sql_state};
use super::driver::{Ended, Received, drive, sleep_or_stop};
use super::{EngineConfig, Open, Position, Source};
use crate::source_loss;

/// Reads the saved position from the staging memo.
async fn saved<P: Position>(
    pool: &PgPool,
    staging: &Staging,
    cfg: &EngineConfig,
) -> anyhow::Result<Option<P>> {
    match staging.load(pool, &cfg.memo_key).await? {
        None => Ok(None),
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            match text.parse::<P>() {
                Ok(p) => Ok(Some(p)),
                Err(_) => anyhow::bail!(
                    "the staging memo {:?} holds {text:?}, which is not a position of this source; delete that row from the staging memo table to start from the flags again",
                    cfg.memo_key
                ),
            }
        }
    }
}

/// Runs replication from `source` into `target_url` until `stop` turns true (then drains the
/// transaction in flight and returns).
///
/// # Errors
/// Configuration problems (source not configured, missing staging schema or target tables),
/// or failures that persist past `--maxRetries`.
pub(crate) async fn run<S: Source>(
    source: S,
    cfg: EngineConfig,
    target_url: &ConnUrl,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    info!("Replicator starting");
    source.check(true).await?;
    let target = molt_source_pg::connect(target_url, 4).await.context("--targetConn")?;
    let version: String = sqlx::query_scalar("SELECT version()").fetch_one(&target).await?;
    let dialect = if version.contains("CockroachDB") {
        TargetDialect::Cockroach
    } else {
        TargetDialect::Postgres
    };
    let staging = Staging::new(&cfg.staging_schema);
    staging.prepare(&target, cfg.staging_create).await?;
    let lease =
        match Lease::acquire(&target, &staging, &cfg.lease_name, cfg.lease_duration, stop.clone())
            .await
        {
            Ok(l) => Arc::new(l),
            Err(StageError::Stopped { .. }) => {
                info!("Server shutdown complete");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
    let (lost_tx, mut lost_rx) = watch::channel(None::<String>);
    let renewer = tokio::spawn(renew_lease(Arc::clone(&lease), target.clone(), lost_tx));
    let cfg = Arc::new(cfg);
    let mut backoff = cfg.retry_initial_backoff;
    let mut failures = 0u32;
    let received: Received<S::Pos> = Arc::new(Mutex::new(None));
    // Dead-letter replay: from which checkpoint, up to which source position.
    let mut careful_from: Option<Option<S::Pos>> = None;
    let mut careful_until: Option<Option<S::Pos>> = None;
    // Reconnects after losing the source: not counted against --maxRetries (a source restart
    // or failover takes as long as it takes), backing off up to --retryMaxBackoff.
    let mut source_backoff = cfg.retry_initial_backoff;
    let outcome = loop {
        match source.check(false).await {
            Ok(()) => {}
            Err(e) if source_loss::source_lost(&e) => {
                warn!(error = %molt_cli::error_chain(&e), "the source is not available: retrying in {source_backoff:?}");
                if sleep_or_stop(source_backoff, &stop).await {
                    break Ok(());
                }
                source_backoff = (source_backoff * 2).min(cfg.retry_max_backoff);
                continue;
            }
            Err(e) => break Err(e),
        }
        let checkpoint = match saved::<S::Pos>(&target, &staging, &cfg).await {
            Ok(c) => c,
            Err(e) => break Err(e),
        };
        let session = Attempt {
            source: &source,
            cfg: &cfg,
            dialect,
            target: target.clone(),
            lease: Arc::clone(&lease),
            checkpoint: checkpoint.clone(),
            careful_until: careful_until.clone(),
            received: &received,
        };
        let attempt = tokio::select! {
            r = session.run(stop.clone()) => r,
            why = lost_rx.wait_for(Option::is_some) => {
                let why = why.map(|w| w.clone().unwrap_or_default()).unwrap_or_default();
                Err(anyhow::anyhow!(why))
            }
        };
        if attempt.is_err() {
            // --maxRetries counts failures in a row: a session that moved the checkpoint
            // before failing starts the count (and the back-off) afresh.
            let now = saved::<S::Pos>(&target, &staging, &cfg).await.unwrap_or(None);
            if now.is_some() && now != checkpoint {
                failures = 0;
                backoff = cfg.retry_initial_backoff;
                source_backoff = cfg.retry_initial_backoff;
            }
        }
        match attempt {
            Ok(Ended::Shutdown) => break Ok(()),
            Err(e) if source_loss::source_lost(&e) => {
                warn!(error = %molt_cli::error_chain(&e), "lost the source's replication stream: reconnecting in {source_backoff:?} and resuming from the checkpoint");
                metrics::counter!(source.dial_failure_metric()).increment(1);
                if sleep_or_stop(source_backoff, &stop).await {
                    break Ok(());
                }
                source_backoff = (source_backoff * 2).min(cfg.retry_max_backoff);
            }
            Err(e) if is_row_error(&e) => {
                // The session may have committed since it started: compare with the position
                // saved now, so only a replay that made no progress at all gives up.
                let now = match saved::<S::Pos>(&target, &staging, &cfg).await {
                    Ok(now) => now,
                    Err(read) => break Err(read),
                };
                if careful_from.as_ref() == Some(&now) {
                    let code = sql_state(&e).unwrap_or_default();
                    let fix = if cfg.dlq_table.is_none() {
                        "fix the data or the target table, or pass --dlqTableName to set refused rows aside and go on"
                    } else {
                        "and it could not be set aside in the dead-letter table"
                    };
                    break Err(e.context(format!("the target refused a row (SQLSTATE {code}) even when changes were applied one by one in source order: {fix}")));
                }
                careful_from = Some(now);
                careful_until = Some(received.lock().ok().and_then(|r| r.clone()));
                let then = if cfg.dlq_table.is_some() {
                    "setting rows it still refuses aside in the dead-letter table"
                } else {
                    "stopping if it still refuses one"
                };
                warn!(error = %molt_cli::error_chain(&e), "the target refused a batch: replaying from the checkpoint one change at a time in source order, {then}");
                metrics::counter!(molt_metrics::replicator::APPLY_ERRORS_TOTAL).increment(1);
            }
            Err(e) if failures < cfg.max_retries && is_transient(&e) => {
                failures += 1;
                warn!(error = %molt_cli::error_chain(&e), attempt = failures, "warning during tryCommit: restarting from the checkpoint");
                metrics::counter!(molt_metrics::replicator::APPLY_ERRORS_TOTAL).increment(1);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(cfg.retry_max_backoff);
            }
            Err(e) if failures >= cfg.max_retries && is_transient(&e) => {
                break Err(
                    e.context(format!("maximum number of retries ({}) exceeded", cfg.max_retries))
                );
            }
            Err(e) => break Err(e),
        }
    };
    renewer.abort();
    if let Err(e) = lease.release(&target).await {
        warn!(error = %e, "could not release the staging lease; a successor on another host waits for it to expire");
    }
    outcome?;
    info!("Server shutdown complete");
    Ok(())
}

/// One session: the source opened from the checkpoint, the applier, the driver between them.
struct Attempt<'a, S: Source> {
    source: &'a S,
    cfg: &'a Arc<EngineConfig>,
    dialect: TargetDialect,
    target: PgPool,
    lease: Arc<Lease>,
    checkpoint: Option<S::Pos>,
    careful_until: Option<Option<S::Pos>>,
    received: &'a Received<S::Pos>,
}

impl<S: Source> Attempt<'_, S> {
    async fn run(self, stop: watch::Receiver<bool>) -> anyhow::Result<Ended> {
        let (applied_tx, applied_rx) = watch::channel(self.checkpoint.clone());
        let session = self
            .source
            .open(Open {
                from: self.checkpoint.clone(),
                target: self.target.clone(),
                applied: applied_rx,
            })
            .await?;
        let fk_parents = load_fk_parents(&self.target, &self.cfg.target_schema).await?;
        let applier = Applier {
            cfg: Arc::clone(self.cfg),
            lease: self.lease,
            dialect: self.dialect,
            target: self.target,
            relations: HashMap::new(),
            pending: Vec::new(),
            nets: HashMap::new(),
            fk_parents,
            tx: None,
            tx_started: Instant::now(),
            applied: Applied::default(),
            checkpoint: self.checkpoint,
            last_commit_end: None,
            last_commit_time: 0,
            careful_until: self.careful_until,
            dlq_ready: false,
        };
        drive(self.cfg, session, applied_tx, applier, self.received, stop).await
    }
}

/// Renews the lease until aborted; reports a lost lease (another instance took it).
async fn renew_lease(lease: Arc<Lease>, pool: PgPool, lost: watch::Sender<Option<String>>) {
    loop {
        tokio::time::sleep(lease.renew_every()).await;
        match lease.renew(&pool).await {
            Ok(()) => {}
            Err(e @ StageError::LeaseLost { .. }) => {
                let _ = lost.send(Some(e.to_string()));
                return;
            }
            // The apply loop notices a lost target too; the fence guards the checkpoint.
            Err(e) => {
                warn!(error = %molt_cli::error_chain(&e.into()), "renewing the staging lease failed; retrying")
            }
        }
    }
}
