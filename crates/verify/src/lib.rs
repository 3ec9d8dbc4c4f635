//! `molt verify`: prove source and target hold the same data.
//!
//! [`VerifyArgs`] accepts MOLT's flags (spec §5.1, plus the live-mode flags MOLT removed and
//! we keep). [`run()`] compares tables (missing, extraneous), column definitions (through the
//! type mapping) and every row by primary key (see [`rows`], [`value`] and, for a column of
//! one type on the source and another on the target, [`pairs`]), and returns a
//! [`Report`]; the exit code says whether the data matched (0 clean, 3 differences, 1 error).

pub mod mysql;
pub mod pairs;
pub mod pg;
pub mod rows;
mod run;
pub mod value;

use std::path::PathBuf;
use std::process::ExitCode;

use molt_cli::LogArgs;
use molt_schema::TableFilter;
pub use run::{Config, LIVE_ATTEMPTS, LIVE_BACKOFF, Report, run};

/// `molt verify`: compare tables, columns and rows of source and target.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "verify", version, about = "Compare source and target tables, columns and rows")]
pub struct VerifyArgs {
    /// Source connection URL (the source is the truth).
    #[arg(long)]
    pub source: String,
    /// Target connection URL.
    #[arg(long)]
    pub target: String,
    /// Permit unencrypted connections.
    #[arg(long = "allow-tls-mode-disable")]
    pub allow_tls_mode_disable: bool,
    /// Shards verified at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u32,
    /// Row filters (JSON).
    #[arg(long = "filter-path")]
    pub filter_path: Option<PathBuf>,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// Address of the /metrics endpoint.
    #[arg(long = "metrics-listen-addr", default_value = "127.0.0.1:3030")]
    pub metrics_listen_addr: String,
    /// Rows per page read from each side.
    #[arg(long = "row-batch-size", default_value_t = 20_000)]
    pub row_batch_size: u64,
    /// Schemas to verify (regular expression).
    #[arg(long = "schema-filter", default_value = ".*")]
    pub schema_filter: String,
    /// Tables to verify (regular expression).
    #[arg(long = "table-filter", default_value = ".*")]
    pub table_filter: String,
    /// Rename rules (JSON).
    #[arg(long = "transformations-file")]
    pub transformations_file: Option<PathBuf>,
    /// Key-range shards per table.
    #[arg(long = "table-splits", default_value_t = 1)]
    pub table_splits: u32,
    /// Read at most this many rows per second per shard (0: unlimited).
    #[arg(long = "rows-per-second", default_value_t = 0)]
    pub rows_per_second: u64,
    /// Re-check differing rows with backoff before reporting them.
    #[arg(long)]
    pub live: bool,
    /// Repeat verification until stopped.
    #[arg(long)]
    pub continuous: bool,
}

/// Exit code when verification found differences (errors exit 1).
pub const EXIT_DIFFERENCES: u8 = 3;

/// Installs logging, runs, reports.
pub fn main_with(args: VerifyArgs) -> ExitCode {
    if let Err(e) = args.log.install() {
        eprintln!("Error: {}", molt_cli::error_chain(&e));
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run_args(args)) {
        Ok(report) if report.clean() => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("verification found differences (see the warnings above)");
            ExitCode::from(EXIT_DIFFERENCES)
        }
        Err(e) => molt_cli::finish(Err(e)),
    }
}

impl VerifyArgs {
    /// Checks the flags.
    ///
    /// # Errors
    /// Bad filters or flags this build does not support.
    pub fn config(&self) -> anyhow::Result<Config> {
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {flag} {}: {e}", path.display()))
        };
        let filters = match &self.filter_path {
            Some(p) => molt_schema::rules::RowFilters::from_json(&read("--filter-path", p)?)?,
            None => molt_schema::rules::RowFilters::default(),
        };
        let transforms = match &self.transformations_file {
            Some(p) => {
                molt_schema::rules::Transforms::from_json(&read("--transformations-file", p)?)?
            }
            None => molt_schema::rules::Transforms::default(),
        };
        Ok(Config {
            source: self.source.clone(),
            target: self.target.clone(),
            allow_tls_mode_disable: self.allow_tls_mode_disable,
            filter: TableFilter::new(&self.schema_filter, &self.table_filter, "", false)?,
            concurrency: self.concurrency,
            table_splits: self.table_splits.max(1),
            read: rows::ReadOptions {
                batch: self.row_batch_size.max(1),
                live: self.live,
                live_attempts: LIVE_ATTEMPTS,
                live_backoff: LIVE_BACKOFF,
                rows_per_second: self.rows_per_second,
            },
            filters,
            transforms,
        })
    }
}

/// Serves `/metrics` on `--metrics-listen-addr` (empty: off); a busy port is a warning.
async fn serve_metrics(addr: &str) -> Option<molt_metrics::MetricsServer> {
    if addr.is_empty() {
        return None;
    }
    let addr: std::net::SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => {
            tracing::warn!(
                "--metrics-listen-addr {addr:?} is not host:port; metrics are not exported"
            );
            return None;
        }
    };
    let handle = molt_metrics::install().ok()?;
    match molt_metrics::serve(addr, molt_metrics::Routes::FETCH, handle).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are not exported (pass another --metrics-listen-addr)");
            None
        }
    }
}

/// Runs verify with parsed flags; with `--continuous`, repeats until a run is clean.
///
/// # Errors
/// Any problem with the flags, the connections, the schema or a query.
pub async fn run_args(args: VerifyArgs) -> anyhow::Result<Report> {
    let cfg = args.config()?;
    let _metrics = serve_metrics(&args.metrics_listen_addr).await;
    loop {
        let report = run(cfg.clone()).await?;
        if !args.continuous || report.clean() {
            return Ok(report);
        }
        tracing::info!("differences remain; verifying again (--continuous)");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn molt_docs_command_parses() {
        let a = VerifyArgs::try_parse_from([
            "verify",
            "--source",
            "postgres://u:p@h/db",
            "--target",
            "postgres://root@c:26257/defaultdb",
            "--table-filter",
            "employees",
            "--concurrency",
            "4",
            "--live",
        ])
        .unwrap();
        assert_eq!((a.concurrency, a.row_batch_size, a.live), (4, 20_000, true));
    }
}
