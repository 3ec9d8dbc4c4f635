//! What every molt binary shares: MOLT's duration syntax (`5m0s`), the logging flags, and the
//! one place an error becomes output and an exit code.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use molt_log::{LogFormat, LogOptions};

/// Parses a Go duration as MOLT's flags take it: `24h0m0s`, `5m`, `1.5s`, `250ms`, `0`.
///
/// # Errors
/// A message naming the accepted units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let err = || format!("{text:?} is not a duration; write it like 30s, 5m0s, 250ms or 24h0m0s");
    let mut rest = t;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

/// Prints a duration as Go does (`24h0m0s`, `5m0s`, `1s`, `250ms`), for `--help` defaults and
/// logs.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h{m}m");
    } else if m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}s");
    out
}

/// MOLT's `000h 00m 06s` form of a duration, used in `*_duration` log fields.
pub fn hms(d: Duration) -> String {
    let secs = d.as_secs();
    format!("{:03}h {:02}m {:02}s", secs / 3600, (secs % 3600) / 60, secs % 60)
}

/// Logging flags of fetch and verify.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log level: trace, debug, info, warn, error, fatal, panic.
    #[arg(long, default_value = "info")]
    pub logging: String,
    /// Write logs to this file; `stdout` (the default) writes to standard output.
    #[arg(long = "log-file", default_value = "stdout")]
    pub log_file: String,
    /// Human-readable log lines instead of JSON.
    #[arg(long = "use-console-writer")]
    pub use_console_writer: bool,
}

impl LogArgs {
    /// Installs logging as the flags say.
    ///
    /// # Errors
    /// Bad level or unwritable file.
    pub fn install(&self) -> anyhow::Result<()> {
        let file = match self.log_file.as_str() {
            "" | "stdout" => None,
            path => Some(PathBuf::from(path)),
        };
        let format = if self.use_console_writer { LogFormat::Console } else { LogFormat::Json };
        molt_log::init(&LogOptions { format, level: self.logging.clone(), file })?;
        Ok(())
    }
}

/// The error and its causes on one line: `a: b: c`.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for (i, cause) in err.chain().enumerate() {
        if i > 0 {
            text.push_str(": ");
        }
        let _ = write!(text, "{cause}");
    }
    text
}

/// Ends a binary: on error logs the fatal line (JSON, the last line of output) and also prints
/// it to stderr, then returns exit code 1.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let chain = error_chain(&err);
            tracing::error!(error = %chain, "fatal error");
            eprintln!("Error: {chain}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("24h0m0s").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("5m0s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "5x", "m", "-1s", "1h-2m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(86_400)), "24h0m0s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(format_duration(Duration::from_millis(25)), "25ms");
        assert_eq!(hms(Duration::from_secs(6)), "000h 00m 06s");
        assert_eq!(hms(Duration::from_secs(3 * 3600 + 61)), "003h 01m 01s");
    }

    #[test]
    fn chain_is_one_line() {
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&err), "outer: inner");
    }
}
