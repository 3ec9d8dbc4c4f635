//! `verify`: the `molt verify` command as its own binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    molt_verify::main_with(molt_verify::VerifyArgs::parse())
}
