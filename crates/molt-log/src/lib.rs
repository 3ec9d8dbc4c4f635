//! MOLT's log lines from `tracing` events.
//!
//! MOLT's fetch and verify write one flat JSON object per line, keys in this order: `level`,
//! `type` (for `summary` and `data` lines), the event's fields (after those of its spans),
//! `time` (RFC 3339 with offset), `message`. Scripts parse these lines, so they are a contract
//! (see `docs/log-format.md`). [`MoltFormat`] writes them; [`LogFormat::Console`] is the
//! human form (`--use-console-writer`) and [`LogFormat::Text`] the replicator's
//! `LEVEL [time] message key=value`.
//!
//! The `type` comes from the event target:
//!
//! ```
//! # use tracing::info;
//! # let (rows, ms) = (7u64, 1000.0f64);
//! info!(target: "summary", table = "public.employees", num_rows = rows, net_duration_ms = ms,
//!       "data import on target for table complete");
//! ```
//!
//! Install with [`init`]; tests capture lines with [`capture`].

mod format;

use std::fs::OpenOptions;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use format::{LogFormat, MoltFormat, SpanFields};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Where and how to log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Line format.
    pub format: LogFormat,
    /// `--logging` level or an `EnvFilter` directive (`info`, `debug`, `molt_fetch=trace`).
    pub level: String,
    /// Write to this file instead of stdout.
    pub file: Option<PathBuf>,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The level is not a valid filter.
    #[error("--logging {level:?} is not one of trace, debug, info, warn, error, fatal, panic")]
    Level {
        /// The level as given.
        level: String,
    },
    /// The log file could not be opened.
    #[error("cannot open log file {path}")]
    File {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A global subscriber was already installed.
    #[error("logging was already initialised")]
    AlreadyInitialised,
}

/// Maps MOLT's level names (`fatal`, `panic` included) to a filter.
pub fn filter_for(level: &str) -> Result<EnvFilter, LogError> {
    let directive = match level.trim().to_ascii_lowercase().as_str() {
        "fatal" | "panic" => "error".to_owned(),
        "warning" => "warn".to_owned(),
        other => other.to_owned(),
    };
    if directive.is_empty() {
        return Err(LogError::Level { level: level.to_owned() });
    }
    // The driver's server notices ("table does not exist, skipping") are not ours to log.
    let directive =
        if directive.contains("sqlx") { directive } else { format!("{directive},sqlx=warn") };
    EnvFilter::try_new(&directive).map_err(|_| LogError::Level { level: level.to_owned() })
}

/// Installs the global subscriber.
///
/// # Errors
/// [`LogError`] for a bad level, an unwritable file, or a second call.
pub fn init(opts: &LogOptions) -> Result<(), LogError> {
    let filter = filter_for(&opts.level)?;
    let format = MoltFormat::new(opts.format);
    let result = match &opts.file {
        None => install(filter, format, io::stdout),
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| LogError::File { path: path.clone(), source })?;
            install(filter, format, Mutex::new(file))
        }
    };
    result.map_err(|_| LogError::AlreadyInitialised)
}

fn install<W>(
    filter: EnvFilter,
    format: MoltFormat,
    writer: W,
) -> Result<(), tracing::subscriber::SetGlobalDefaultError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(SpanFields)
        .with(tracing_subscriber::fmt::layer().event_format(format).with_writer(writer));
    tracing::subscriber::set_global_default(subscriber)
}

/// Log lines captured in memory (tests).
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A process-wide subscriber that records nothing but keeps every call site asking the
/// current thread's subscriber. Without one, a call site first reached on a thread with no
/// subscriber, while a capture starts on another, can cache "never" and hide its events from
/// that capture (tests run captures and other code in parallel in one process).
struct AskEveryTime;

impl tracing::Subscriber for AskEveryTime {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// For tests that capture logs with a thread's own subscriber while other threads run code
/// without one: installs (once) a global subscriber that records nothing, so that no call
/// site caches "never" (see [`capture`]).
pub fn keep_call_sites_asking() {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        // A global subscriber installed earlier asks for itself; either is fine.
        let _ = tracing::subscriber::set_global_default(AskEveryTime);
    });
}

/// Runs `f` with a subscriber that writes `format` lines at `level` into memory; returns them.
pub fn capture<T>(format: LogFormat, level: &str, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    keep_call_sites_asking();
    let sink = Captured::default();
    let subscriber = tracing_subscriber::registry()
        .with(filter_for(level).unwrap_or_else(|_| EnvFilter::new("info")))
        .with(SpanFields)
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(MoltFormat::new(format))
                .with_writer(sink.clone()),
        );
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, sink.lines())
}
