//! `replicator pglogical | mylogical | oraclelogminer | version`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    molt_replicator::main_with(molt_replicator::ReplicatorArgs::parse())
}
