//! The source-agnostic replication engine: how committed source transactions become target
//! transactions, whatever the source.
//!
//! A source (pgoutput from a slot, the MySQL/MariaDB binlog, …) implements [`Source`]: it
//! checks that the server can feed replication, and opens sessions that decode the stream
//! into [`SourceMsg`]s — tables bound to target tables, row changes, and commits carrying the
//! source [`Position`] after each transaction. The engine does the rest:
//!
//! - [`supervise`]: the staging lease, the saved checkpoint, restarts with back-off after
//!   transient failures, reconnecting for as long as it takes after losing the source, the
//!   careful replay of a batch the target refused;
//! - [`driver`]: batches of whole source transactions (group commit by size, period and
//!   pauses in the stream), handed to the applier, and applied positions handed back to the
//!   source for acknowledgement;
//! - [`apply`]: the target transaction, written as the net effect per key ([`net`]), with
//!   the checkpoint saved in the same transaction.

pub(crate) mod apply;
pub(crate) mod driver;
pub mod net;
pub(crate) mod supervise;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use molt_cursor::PgLsn;
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use apply::{Bound, Change};

/// A point in a source's history: where replication has got to.
///
/// A checkpoint is the position after a committed source transaction; it is saved as its
/// text form and read back with `FromStr`.
pub(crate) trait Position:
    Clone + fmt::Display + fmt::Debug + PartialEq + std::str::FromStr + Send + Sync + 'static
{
    /// What the periodic progress line says before the position (`progressed to LSN`).
    const PROGRESS: &'static str;

    /// Whether everything up to `other` is already included in `self`.
    fn covers(&self, other: &Self) -> bool;
}

impl Position for PgLsn {
    const PROGRESS: &'static str = "progressed to LSN";

    fn covers(&self, other: &Self) -> bool {
        self >= other
    }
}

/// What a source session hands to the engine, in stream order.
pub(crate) enum SourceMsg<P> {
    /// A source table's binding to its target table (before its first change, and again
    /// when either definition changes).
    Bind(u32, Arc<Bound>),
    /// The target's foreign keys, re-read (after a schema refresh).
    Parents(HashMap<String, Vec<String>>),
    /// A row change of the open source transaction.
    Change(Change),
    /// The open source transaction committed; `end` is the position after it, and
    /// `commit_time` its commit time in microseconds since the Unix epoch.
    Commit { end: P, commit_time: i64 },
}

/// What a session of a source starts from.
pub(crate) struct Open<P> {
    /// The saved checkpoint: transactions it covers are not sent again.
    pub(crate) from: Option<P>,
    /// The target, for binding tables.
    pub(crate) target: PgPool,
    /// The engine's applied position: the source may acknowledge it to the server. When the
    /// sender is dropped the engine has drained and the session should end, acknowledging
    /// the last value first.
    pub(crate) applied: watch::Receiver<Option<P>>,
}

/// A running session of a source.
pub(crate) struct Session<P> {
    /// Decoded messages, in stream order.
    pub(crate) msgs: mpsc::Receiver<SourceMsg<P>>,
    /// The task reading the stream: its error ends the session (a lost source marked with
    /// [`crate::source_loss::SourceUnreachable`]).
    pub(crate) task: JoinHandle<anyhow::Result<()>>,
}

/// A replication source.
pub(crate) trait Source: Send + Sync + 'static {
    /// Its position type.
    type Pos: Position;

    /// Checks that the source can feed replication; refusals name their fix, a source that
    /// cannot be reached for now is marked as lost. `first` is the check before the target
    /// is touched; later ones run before each session, once this instance holds the lease.
    fn check(&self, first: bool) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Opens a session streaming transactions after `open.from`.
    fn open(
        &self,
        open: Open<Self::Pos>,
    ) -> impl Future<Output = anyhow::Result<Session<Self::Pos>>> + Send;

    /// The metric counting lost connections to the source.
    fn dial_failure_metric(&self) -> &'static str;
}

/// What the engine needs to know of the run, whatever the source.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    /// Schema on the target that replicated tables live in.
    pub(crate) target_schema: String,
    /// The target database's name (log lines).
    pub(crate) target_database: String,
    /// Schema (in the target database) of the staging tables.
    pub(crate) staging_schema: String,
    /// Create the staging schema when missing.
    pub(crate) staging_create: bool,
    /// The lease that makes this instance the only one replicating from this source.
    pub(crate) lease_name: String,
    /// How long the lease lasts without renewal.
    pub(crate) lease_duration: Duration,
    /// The staging memo key the checkpoint is saved under.
    pub(crate) memo_key: String,
    /// Row changes per target transaction before it commits.
    pub(crate) flush_size: usize,
    /// Longest a target transaction stays open while changes keep coming.
    pub(crate) flush_period: Duration,
    /// How often the progress line is logged.
    pub(crate) progress_every: Duration,
    /// Restarts of the session after transient failures in a row.
    pub(crate) max_retries: u32,
    /// First back-off between restarts.
    pub(crate) retry_initial_backoff: Duration,
    /// Longest back-off.
    pub(crate) retry_max_backoff: Duration,
    /// Longest time one statement on the target may take (`statement_timeout`).
    pub(crate) apply_timeout: Duration,
    /// Table in the target schema for rows the target refuses (None: such a row stops
    /// replication).
    pub(crate) dlq_table: Option<String>,
}
