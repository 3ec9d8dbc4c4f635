//! `fetch`: the `molt fetch` command as its own binary (`fetch tokens list …` included).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if molt_fetch::is_tokens_command(&argv, 1) {
        return molt_fetch::tokens_main(&argv[1..]);
    }
    molt_fetch::main_with(molt_fetch::FetchArgs::parse_from(argv))
}
