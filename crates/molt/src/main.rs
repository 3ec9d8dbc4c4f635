//! `molt`: runs `molt fetch …`, `molt verify …` and `molt escape-password` exactly as MOLT's
//! documentation writes them.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, clap::Parser)]
#[command(
    name = "molt",
    version,
    about = "Migrate a database to CockroachDB with minimal downtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Bulk load from a source into the target.
    Fetch(Box<molt_fetch::FetchArgs>),
    /// Compare source and target.
    Verify(Box<molt_verify::VerifyArgs>),
    /// Print a password percent-encoded for use in a connection URL.
    EscapePassword {
        /// The password to encode.
        #[arg(long, required = true)]
        password: String,
    },
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).is_some_and(|a| a == "fetch") && molt_fetch::is_tokens_command(&argv, 2) {
        return molt_fetch::tokens_main(&argv[2..]);
    }
    match Cli::parse_from(argv).command {
        Command::Fetch(args) => molt_fetch::main_with(*args),
        Command::Verify(args) => molt_verify::main_with(*args),
        Command::EscapePassword { password } => {
            println!("{}", molt_url::escape_password(&password));
            ExitCode::SUCCESS
        }
    }
}
