//! `molt fetch`: load every selected table from a source into the target from one consistent
//! snapshot, and print the `cdc_cursor` replication starts from.
//!
//! [`FetchArgs`] accepts every flag of MOLT's documentation (spec §3.2); [`Config::from_args`]
//! checks them together; [`run`] does the load and returns a [`FetchSummary`]. The data paths:
//! `--direct-copy` (source `COPY TO` streamed into target `COPY FROM`, no files) and
//! `--local-path` (CSV files, gzip for `IMPORT INTO`, loaded by `COPY` or CockroachDB's
//! `IMPORT INTO` through the embedded file server). See `docs/fetch.md`.

mod cli;
mod config;
mod files;
mod fileserver;
mod run;

use std::process::ExitCode;

pub use cli::FetchArgs;
pub use config::{Compression, Config, DataPath, LoadMethod, Mode};
pub use run::{FetchSummary, run};

/// Installs logging, runs, reports: what `main` of `fetch` and `molt fetch` call.
pub fn main_with(args: FetchArgs) -> ExitCode {
    if let Err(e) = args.log.install() {
        eprintln!("Error: {}", molt_cli::error_chain(&e));
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    molt_cli::finish(runtime.block_on(run_args(args)))
}

/// Checks the flags and runs fetch.
///
/// # Errors
/// Any problem with the flags, the connections, the schema or the load, with what to fix.
pub async fn run_args(args: FetchArgs) -> anyhow::Result<()> {
    let config = Config::from_args(&args)?;
    run(config).await.map(|_| ())
}
