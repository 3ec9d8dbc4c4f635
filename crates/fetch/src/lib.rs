//! `molt fetch`: load every selected table from a source into the target.
//!
//! [`FetchArgs`] accepts every flag of MOLT's documentation (spec §3.2), so commands copied from
//! there parse. This build checks everything the load depends on (URLs and TLS rule,
//! connections to both sides, the source catalog, the schema filters and the type mapping of
//! every selected table) and then stops: the data path lands with the fetch work (issue 3).

mod cli;

use std::process::ExitCode;

pub use cli::FetchArgs;
use molt_schema::TableFilter;

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
    molt_cli::finish(runtime.block_on(run(args)))
}

/// Runs fetch with parsed flags.
///
/// # Errors
/// Any problem with the flags, the connections or the schema, with what to fix.
pub async fn run(args: FetchArgs) -> anyhow::Result<()> {
    let filter = TableFilter::new(
        &args.schema_filter,
        &args.table_filter,
        &args.table_exclusion_filter,
        args.case_sensitive,
    )?;
    let plan = molt_preflight::check(&molt_preflight::Request {
        source: &args.source,
        target: &args.target,
        allow_tls_mode_disable: args.allow_tls_mode_disable,
        filter: &filter,
        type_map_file: args.type_map_file.as_deref(),
    })
    .await?;
    anyhow::bail!(
        "preflight passed for {} table(s), but this build cannot move data yet: the fetch data path is not implemented (tracked in issue 3)",
        plan.tables.len()
    )
}
