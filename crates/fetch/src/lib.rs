//! `molt fetch`: load every selected table from a source into the target from one consistent
//! snapshot, and print the `cdc_cursor` replication starts from.
//!
//! [`FetchArgs`] accepts every flag of MOLT's documentation (spec §3.2); [`Config::from_args`]
//! checks them together; [`run()`] does the load and returns a [`FetchSummary`]. The data paths:
//! `--direct-copy` (source `COPY TO` streamed into target `COPY FROM`, no files) and
//! `--local-path` (CSV files, gzip for `IMPORT INTO`, loaded by `COPY` or CockroachDB's
//! `IMPORT INTO` through the embedded file server). See `docs/fetch.md`.

mod cli;
mod config;
pub mod continuation;
mod dialect;
mod files;
mod fileserver;
mod load_files;
pub mod parquet;
mod retired;
mod retry;
mod run;
mod shards;
pub mod store;
mod tables;

use std::process::ExitCode;

pub use cli::FetchArgs;
pub use config::{Compression, Config, DataPath, FileFormat, LoadMethod, Mode, Resume};
pub use retired::{ReplicationHandoff, RetiredArgs, RetiredFlag};
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

/// `fetch tokens list --conn-string <target> [-n N]`: the continuation tokens on a target.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "tokens", about = "Continuation tokens of interrupted fetches")]
pub struct TokensArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokensCommand,
}

/// `tokens` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokensCommand {
    /// Print the tokens, newest first.
    List {
        /// Target connection URL.
        #[arg(long = "conn-string")]
        conn_string: String,
        /// How many to print (0: all).
        #[arg(short = 'n', long = "num-results", default_value_t = 0)]
        num_results: u64,
    },
}

/// Whether `argv` (program name first) is `… fetch tokens …` or `fetch tokens …`: the token
/// commands have their own flags, so they are parsed apart from a load's.
pub fn is_tokens_command(argv: &[String], after: usize) -> bool {
    argv.get(after).is_some_and(|a| a == "tokens")
}

/// Runs `tokens …` with `argv` starting at `tokens`.
pub fn tokens_main(argv: &[String]) -> ExitCode {
    use clap::Parser as _;
    let args = TokensArgs::parse_from(argv);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(tokens(args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {}", molt_cli::error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// Runs a tokens command; returns what it prints.
///
/// # Errors
/// A bad URL, an unreachable target or a failing query.
pub async fn tokens(args: TokensArgs) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let TokensCommand::List { conn_string, num_results } = args.command;
    let url = molt_url::ConnUrl::parse(&conn_string).context("--conn-string")?;
    let pool = molt_source_pg::connect(&url, 1).await.context("--conn-string")?;
    let list = continuation::list_tokens(&pool, num_results).await.context("reading the tokens")?;
    pool.close().await;
    Ok(continuation::render_tokens(&list))
}

/// Checks the flags and runs fetch.
///
/// # Errors
/// Any problem with the flags, the connections, the schema or the load, with what to fix.
pub async fn run_args(args: FetchArgs) -> anyhow::Result<()> {
    let config = Config::from_args(&args)?;
    run(config).await.map(|_| ())
}
