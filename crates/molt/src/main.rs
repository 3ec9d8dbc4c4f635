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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn molt_fetch_accepts_retired_flags() {
        let cli = Cli::try_parse_from([
            "molt",
            "fetch",
            "--source",
            "postgres://u@h/db",
            "--target",
            "postgres://u@t/db",
            "--direct-copy",
            "--pglogical-publication-name",
            "molt_fetch",
            "--pglogical-ignore-wal-check",
            "--concurrency-per-table",
            "2",
        ])
        .unwrap();
        let Command::Fetch(args) = cli.command else { panic!("not fetch") };
        let config = molt_fetch::Config::from_args(&args).unwrap();
        assert!(config.ignore_replication_check);
        assert_eq!(config.export_concurrency, 2);
        let flags: Vec<&str> = config.retired.iter().map(|r| r.flag.as_str()).collect();
        assert_eq!(
            flags,
            [
                "--pglogical-publication-name",
                "--pglogical-ignore-wal-check",
                "--concurrency-per-table"
            ]
        );
    }
}
