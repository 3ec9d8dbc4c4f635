//! One session of the engine: a source session's messages batched into target transactions.
//!
//! ```text
//!  source task ──SourceMsg──▶ driver ──ApplyMsg──▶ apply task ──commit──▶ target
//!       ▲                                                 │
//!       └──────────── applied position (watch) ◀──────────┘
//! ```
//!
//! Whole source transactions share a target transaction (group commit): it commits when it
//! holds `--flushSize` row changes, when `--flushPeriod` has passed, or when the stream pauses
//! (so a backlog drains in large batches while a trickle commits at once). A large source
//! transaction is handed over in parts, written into the open target transaction, so memory
//! stays bounded. Decoding (source task) and applying (apply task) overlap.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use super::apply::{ApplyMsg, Change};
use super::{EngineConfig, Position, Session, SourceMsg};
use crate::source_loss;

/// How long the stream must pause before a batch of committed source transactions commits on
/// the target (a full batch or `--flushPeriod` commits regardless).
const COMMIT_PAUSE: Duration = Duration::from_millis(1);

/// Why a session ended without an error.
pub(crate) enum Ended {
    /// Asked to stop, and drained.
    Shutdown,
}

/// The batch being gathered for the applier.
///
/// `pending` holds changes in source order; a source commit not yet handed over sits at
/// `unsent_commit`'s index in it. Changes after that index belong to the next source
/// transaction and must reach the applier after the commit, never before it: a target
/// commit that held them would save a checkpoint older than its rows, and a restart would
/// apply them a second time.
struct Batch<P> {
    pending: Vec<Change>,
    /// Row changes since the last target commit.
    rows: usize,
    started: Option<Instant>,
    /// The last source commit not yet handed to the applier, with its place in `pending`.
    unsent_commit: Option<(P, i64, usize)>,
    /// Inside a source transaction (changes seen since the last commit).
    in_txn: bool,
}

impl<P: Position> Batch<P> {
    fn new() -> Self {
        Batch { pending: Vec::new(), rows: 0, started: None, unsent_commit: None, in_txn: false }
    }

    fn change(&mut self, change: Change) {
        self.in_txn = true;
        self.pending.push(change);
        self.rows += 1;
        self.started.get_or_insert_with(Instant::now);
    }

    fn commit(&mut self, end: P, commit_time: i64) {
        self.in_txn = false;
        self.unsent_commit = Some((end, commit_time, self.pending.len()));
    }

    /// Hands changes to the applier, in source order with the waiting commit: with `commit`,
    /// everything up to and including the waiting commit (changes after it stay); without,
    /// every pending change, and the waiting commit too when changes after it must go.
    async fn send(&mut self, tx: &mpsc::Sender<ApplyMsg<P>>, commit: bool) -> anyhow::Result<()> {
        if let Some((end, commit_time, at)) = self.unsent_commit.take() {
            if at > 0 {
                let before: Vec<Change> = self.pending.drain(..at).collect();
                tx.send(ApplyMsg::Changes(before)).await.map_err(|_| applier_stopped())?;
            }
            if commit || !self.pending.is_empty() {
                tx.send(ApplyMsg::Commit { end, commit_time })
                    .await
                    .map_err(|_| applier_stopped())?;
                // What is left belongs to the next target transaction.
                self.rows = self.pending.len();
                self.started = (!self.pending.is_empty()).then(Instant::now);
            } else {
                self.unsent_commit = Some((end, commit_time, 0));
            }
        }
        if !commit && !self.pending.is_empty() {
            let changes = std::mem::take(&mut self.pending);
            tx.send(ApplyMsg::Changes(changes)).await.map_err(|_| applier_stopped())?;
        }
        Ok(())
    }
}

/// A send to the applier found it gone: its own result says why, and [`drive`] returns that.
#[derive(Debug, thiserror::Error)]
#[error("the applier stopped")]
struct ApplierStopped;

fn applier_stopped() -> anyhow::Error {
    anyhow::Error::new(ApplierStopped)
}

/// Runs one session until `stop` turns true (then drains the transaction in flight) or a
/// failure of the source, the applier or the target.
pub(crate) async fn drive<P: Position>(
    cfg: &EngineConfig,
    source: Session<P>,
    applied: watch::Sender<Option<P>>,
    applier: super::apply::Applier<P>,
    received: &Mutex<Option<P>>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Ended> {
    let Session { msgs, task: mut source_task } = source;
    // Two messages in flight: the next batch decodes while the last one applies.
    let (apply_tx, apply_rx) = mpsc::channel::<ApplyMsg<P>>(2);
    let (done_tx, done_rx) = mpsc::unbounded_channel::<P>();
    let mut apply_task = tokio::spawn(super::apply::apply_loop(applier, apply_rx, done_tx));
    let tasks = Tasks { source: &mut source_task, apply: &mut apply_task };
    let result = run_loop(cfg, msgs, applied, apply_tx, done_rx, tasks, received, stop).await;
    let Err(error) = result else { return result };
    source_task.abort();
    // The applier may still be committing what it was handed. The next session reads the
    // checkpoint, so it must not start before this one's last commit is done, or it would
    // apply those transactions a second time.
    let grace = cfg.apply_timeout.max(Duration::from_secs(1)) + Duration::from_secs(5);
    // A failed send to the applier never awaited its task: the applier's own error is the
    // cause to report. Otherwise the task may already have been awaited (and must not be
    // polled again), so only one still running is waited for.
    let stopped = error.is::<ApplierStopped>();
    if stopped || !apply_task.is_finished() {
        match tokio::time::timeout(grace, &mut apply_task).await {
            Ok(Ok(Err(cause))) if stopped => return Err(cause),
            Ok(Err(panicked)) if stopped => {
                return Err(anyhow::Error::new(panicked).context("the apply task ended abnormally"));
            }
            Ok(_) => {}
            Err(_) => {
                apply_task.abort();
                let _ = (&mut apply_task).await;
            }
        }
    }
    Err(error)
}

/// The tasks of a session, owned by [`drive`] so that it can wait for them whatever ends it.
struct Tasks<'a> {
    source: &'a mut tokio::task::JoinHandle<anyhow::Result<()>>,
    apply: &'a mut tokio::task::JoinHandle<anyhow::Result<()>>,
}

#[allow(clippy::too_many_arguments)]
async fn run_loop<P: Position>(
    cfg: &EngineConfig,
    mut msgs: mpsc::Receiver<SourceMsg<P>>,
    applied: watch::Sender<Option<P>>,
    apply_tx: mpsc::Sender<ApplyMsg<P>>,
    mut done_rx: mpsc::UnboundedReceiver<P>,
    tasks: Tasks<'_>,
    received: &Mutex<Option<P>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Ended> {
    let Tasks { source: source_task, apply: apply_task } = tasks;
    let mut b = Batch::<P>::new();
    let mut commit_due: Option<tokio::time::Instant> = None;
    let mut last_progress_log = Instant::now();
    let mut stopping = *stop.borrow();
    loop {
        if stopping && !b.in_txn {
            b.send(&apply_tx, true).await?;
            drop(apply_tx);
            apply_task.await.context("the apply task ended abnormally")??;
            let mut last = None;
            while let Ok(at) = done_rx.try_recv() {
                last = Some(at);
            }
            if last.is_some() {
                applied.send_replace(last);
            }
            // The source acknowledges what was applied and ends its session.
            drop(applied);
            drop(msgs);
            match tokio::time::timeout(Duration::from_secs(5), &mut *source_task).await {
                Ok(res) => res.context("the source task ended abnormally")??,
                Err(_) => source_task.abort(),
            }
            info!("Interrupted");
            return Ok(Ended::Shutdown);
        }
        let msg = tokio::select! {
            msg = msgs.recv() => msg,
            _ = sleep_until(commit_due) => {
                commit_due = None;
                b.send(&apply_tx, true).await?;
                continue;
            }
            Some(at) = done_rx.recv() => {
                debug!("applied through {at}");
                if last_progress_log.elapsed() >= cfg.progress_every {
                    info!("{}: {at}", P::PROGRESS);
                    last_progress_log = Instant::now();
                }
                applied.send_replace(Some(at));
                continue;
            }
            res = &mut *apply_task => {
                res.context("the apply task ended abnormally")??;
                bail!("the apply task stopped");
            }
            changed = stop.changed() => {
                stopping = changed.is_err() || *stop.borrow();
                continue;
            }
        };
        let Some(msg) = msg else {
            // The source task ended: its error says why.
            source_task.await.context("the source task ended abnormally")??;
            return Err(anyhow::Error::new(source_loss::SourceUnreachable)
                .context("the source ended the replication stream"));
        };
        // A committed batch waits for the stream to pause (no message for COMMIT_PAUSE).
        if commit_due.is_some() {
            commit_due = Some(tokio::time::Instant::now() + COMMIT_PAUSE);
        }
        match msg {
            SourceMsg::Bind(id, bound) => {
                // Changes bound to the old definition go first.
                b.send(&apply_tx, false).await?;
                apply_tx.send(ApplyMsg::Bind(id, bound)).await.map_err(|_| applier_stopped())?;
            }
            SourceMsg::Parents(parents) => {
                b.send(&apply_tx, false).await?;
                apply_tx.send(ApplyMsg::Parents(parents)).await.map_err(|_| applier_stopped())?;
            }
            SourceMsg::Change(change) => {
                b.change(change);
                if b.pending.len() >= cfg.flush_size {
                    b.send(&apply_tx, false).await?;
                }
            }
            SourceMsg::Commit { end, commit_time } => {
                if let Ok(mut r) = received.lock() {
                    *r = Some(end.clone());
                }
                b.commit(end, commit_time);
                let full = b.rows >= cfg.flush_size
                    || b.started.is_some_and(|t| t.elapsed() >= cfg.flush_period);
                if full {
                    commit_due = None;
                    b.send(&apply_tx, true).await?;
                } else {
                    // Wait briefly for the next transaction to share this commit.
                    commit_due = Some(tokio::time::Instant::now() + COMMIT_PAUSE);
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever.
pub(crate) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sleeps for `d` unless asked to stop first; returns whether it was.
pub(crate) async fn sleep_or_stop(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    let mut stop = stop.clone();
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

/// The shared record of the highest source commit received, across sessions.
pub(crate) type Received<P> = Arc<Mutex<Option<P>>>;

#[cfg(test)]
mod tests {
    use molt_cursor::PgLsn;

    use super::*;

    fn row(n: u32) -> Change {
        Change::Insert { rel: 0, row: vec![Some(n.to_string())], present: vec![0] }
    }

    /// What the applier was handed: `rows n…` and `commit lsn`, in order.
    fn handed(rx: &mut mpsc::Receiver<ApplyMsg<PgLsn>>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(msg) = rx.try_recv() {
            out.push(match msg {
                ApplyMsg::Changes(c) => format!(
                    "rows {}",
                    c.iter()
                        .map(|c| match c {
                            Change::Insert { row, .. } => row[0].clone().unwrap_or_default(),
                            _ => "?".into(),
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                ApplyMsg::Commit { end, .. } => format!("commit {end}"),
                ApplyMsg::Bind(..) | ApplyMsg::Parents(_) => "other".into(),
            });
        }
        out
    }

    #[tokio::test]
    async fn changes_after_a_waiting_commit_never_reach_the_applier_before_it() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut b = Batch::<PgLsn>::new();
        b.change(row(1));
        b.commit("0/10".parse().unwrap(), 0);
        // The next transaction starts; the stream pauses and the waiting commit is due.
        b.change(row(2));
        b.send(&tx, true).await.unwrap();
        assert_eq!(handed(&mut rx), ["rows 1", "commit 0/10"]);
        assert_eq!(b.rows, 1, "row 2 is in the next target transaction");

        // A full batch hands over mid-transaction: the commit goes at its place.
        b.commit("0/20".parse().unwrap(), 0);
        b.change(row(3));
        b.send(&tx, false).await.unwrap();
        assert_eq!(handed(&mut rx), ["rows 2", "commit 0/20", "rows 3"]);

        // Without changes after it, a commit keeps waiting for the next transaction to share it.
        b.change(row(4));
        b.commit("0/30".parse().unwrap(), 0);
        b.send(&tx, false).await.unwrap();
        assert_eq!(handed(&mut rx), ["rows 4"]);
        b.send(&tx, true).await.unwrap();
        assert_eq!(handed(&mut rx), ["commit 0/30"]);
        assert_eq!(b.rows, 0);
    }
}
