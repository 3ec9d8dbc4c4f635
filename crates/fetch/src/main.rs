//! `fetch`: the `molt fetch` command as its own binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = molt_fetch::FetchArgs::parse();
    molt_fetch::main_with(args)
}
