//! What can go wrong reading a binlog, classified where it is raised: a lost source (the
//! replicator reconnects from its checkpoint) versus a refusal (it stops and says what to fix);
//! and [`check_source`], which finds the refusals a source's settings would cause before any
//! streaming starts.

use std::collections::HashMap;
use std::fmt;
use std::io;

use molt_source::{ConnectProblem, SourceError};
use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use crate::Flavor;

/// The fix for a start position the source no longer (or never) had.
pub const POSITION_LOST_FIX: &str =
    "the position is no longer in the source's binlog: run fetch again for a new cdc_cursor";

/// One server setting that keeps the binlog from being replicated, with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The server variable (`binlog_row_metadata`).
    pub variable: &'static str,
    /// Its value on the source (`MINIMAL`), or `(not available)` when the server lacks it.
    pub found: String,
    /// The value replication needs (`FULL`).
    pub wanted: &'static str,
    /// What the operator runs or writes (`SET GLOBAL …` and the `my.cnf` line).
    pub fix: String,
}

impl fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wanted = if self.wanted.is_empty() { "''" } else { self.wanted };
        write!(f, "{} is {}, needs {wanted}: {}", self.variable, self.found, self.fix)
    }
}

/// The problems of [`BinlogError::SourceNotConfigured`], one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblems(pub Vec<SettingProblem>);

impl fmt::Display for SettingProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Errors of the binlog reader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BinlogError {
    /// Could not open or log in on the binlog connection (the message names host, user and
    /// what to check).
    #[error(transparent)]
    Connect(SourceError),
    /// A statement on the binlog connection failed (settings before the dump, variables).
    #[error("{what} on {host}")]
    Query {
        /// What we were doing.
        what: &'static str,
        /// `host:port` of the source.
        host: String,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// The start position is not in the source's binlog (purged, or never written there).
    #[error("the source {host} cannot stream from {position}: {POSITION_LOST_FIX}")]
    PositionLost {
        /// `host:port` of the source.
        host: String,
        /// The requested position (GTID list or set).
        position: String,
        /// The server's refusal (error 1236).
        #[source]
        source: mysql_async::Error,
    },
    /// Server settings make the binlog unusable for replication.
    #[error("the source's binlog cannot be replicated: {problems}")]
    SourceNotConfigured {
        /// Each wrong setting with its fix.
        problems: SettingProblems,
    },
    /// The cursor is of the other flavor (a MySQL GTID set for a MariaDB server or back).
    #[error("a {cursor} cursor cannot start replication from {host}, a {server} server")]
    WrongFlavor {
        /// `host:port` of the source.
        host: String,
        /// The cursor's kind.
        cursor: &'static str,
        /// What the server is.
        server: &'static str,
    },
    /// The source refused the binlog dump for a reason waiting will not fix.
    #[error("the source {host} refused the binlog stream; {hint}")]
    Refused {
        /// `host:port` of the source.
        host: String,
        /// What to check.
        hint: &'static str,
        /// The server's error.
        #[source]
        source: mysql_async::Error,
    },
    /// The connection failed or the server went away (network loss, shutdown, restart).
    #[error("the binlog connection to {host} was lost")]
    Lost {
        /// `host:port` of the source.
        host: String,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// The server ended the binlog stream.
    #[error("the source {host} closed the binlog stream")]
    Closed {
        /// `host:port` of the source.
        host: String,
    },
    /// An event could not be decoded.
    #[error("decoding {event} event at binlog position {position}: {reason}")]
    Decode {
        /// Event type (`TABLE_MAP`, `GTID`, …).
        event: String,
        /// End position of the event in its binlog file (0 inside a transaction payload).
        position: u32,
        /// What did not fit.
        reason: String,
        /// The decoder's error, when there is one.
        #[source]
        source: Option<io::Error>,
    },
    /// The binlog holds something this reader does not replicate; the message names it and,
    /// where there is one, the setting that avoids it.
    #[error("{what}")]
    Unsupported {
        /// What and why.
        what: String,
    },
    /// An `XA COMMIT` arrived for a transaction whose `XA PREPARE` was before the start
    /// position, so its rows were never read.
    #[error(
        "XA COMMIT {xid} commits a transaction prepared before the start position; restart \
         from a position before its XA PREPARE (or run fetch again for a new cdc_cursor)"
    )]
    XaPrepareNotSeen {
        /// The XA transaction id, as the server logs it.
        xid: String,
    },
}

/// Server error codes that mean the connection ended or could not start yet: server shutdown
/// (1053), connection killed (1927), too many connections (1040, 1203), network errors
/// (1158-1161), lock wait or query interrupted by a restart (1317).
fn code_is_passing(code: u16) -> bool {
    matches!(code, 1040 | 1053 | 1158..=1161 | 1203 | 1317 | 1927)
}

/// Whether a 1236 message says the start position is gone or never existed.
fn says_position_lost(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "purged",
        "not in the master's binlog",
        "could not find gtid state",
        "could not find first log file",
        "more gtids than",
        "which is not in the",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

impl BinlogError {
    /// Whether the source was lost (reconnect and resume from the checkpoint) rather than
    /// refusing (stop: waiting will not fix it). Network failures, a server shutting down or
    /// restarting, too many connections and a stream the server closed are losses; bad
    /// credentials, missing privileges, a purged position, wrong settings and undecodable
    /// events are refusals.
    pub fn is_source_lost(&self) -> bool {
        match self {
            BinlogError::Connect(SourceError::Connect { problem, .. }) => {
                *problem == ConnectProblem::Unreachable
            }
            BinlogError::Query { source, .. } => driver_error_is_passing(source),
            BinlogError::Lost { .. } | BinlogError::Closed { .. } => true,
            _ => false,
        }
    }

    /// A [`BinlogError::Decode`].
    pub(crate) fn decode(
        event: impl Into<String>,
        position: u32,
        reason: impl Into<String>,
        source: Option<io::Error>,
    ) -> Self {
        BinlogError::Decode { event: event.into(), position, reason: reason.into(), source }
    }

    /// A [`BinlogError::Unsupported`].
    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        BinlogError::Unsupported { what: what.into() }
    }

    /// Classifies an error of the binlog stream itself (`position` is the requested start).
    pub(crate) fn from_stream(host: &str, position: &str, e: mysql_async::Error) -> Self {
        let host = host.to_owned();
        match &e {
            mysql_async::Error::Server(s) if s.code == 1236 && says_position_lost(&s.message) => {
                BinlogError::PositionLost { host, position: position.to_owned(), source: e }
            }
            mysql_async::Error::Server(s) => {
                if code_is_passing(s.code) {
                    BinlogError::Lost { host, source: e }
                } else {
                    let hint = refusal_hint(s.code, &s.message);
                    BinlogError::Refused { host, hint, source: e }
                }
            }
            mysql_async::Error::Io(mysql_async::IoError::Io(io)) if is_decode_kind(io.kind()) => {
                // mysql_common reports an event it cannot parse as an I/O error of these
                // kinds; reconnecting would read the same event again.
                let reason = io.to_string();
                BinlogError::decode("binlog", 0, reason, None)
            }
            _ if driver_error_is_passing(&e) => BinlogError::Lost { host, source: e },
            _ => BinlogError::Refused { host, hint: "see the driver's error", source: e },
        }
    }
}

/// I/O error kinds `mysql_common` uses for malformed events, never for the network.
fn is_decode_kind(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other)
}

/// Whether a driver error is a lost connection rather than a refusal.
pub(crate) fn driver_error_is_passing(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        mysql_async::Error::Server(s) => code_is_passing(s.code),
        _ => false,
    }
}

/// What to check when the server refuses the dump.
fn refusal_hint(code: u16, message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    match code {
        1045 | 1227 | 1142 | 1044 => {
            "grant the user REPLICATION SLAVE and REPLICATION CLIENT (MySQL: REPLICATION REPLICA) on *.*"
        }
        1236 if m.contains("server_id") || m.contains("server_uuid") => {
            "another replica uses the same server id: choose a replication server id no other replica of this source uses"
        }
        1236 if m.contains("checksum") => {
            "the source's binlog_checksum is not one this reader accepts: use CRC32 or NONE"
        }
        1047 => "the server does not speak this dump protocol (a MySQL GTID set sent to MariaDB?)",
        _ => "see the server's message",
    }
}

/// Settings whose wrong value makes the binlog unusable, read by [`check_source`].
const CHECKED: [&str; 8] = [
    "log_bin",
    "binlog_format",
    "binlog_row_image",
    "binlog_row_metadata",
    "log_bin_compress",
    "gtid_mode",
    "enforce_gtid_consistency",
    "binlog_row_value_options",
];

/// The wrong settings among `vars` (global values by variable name).
///
/// `need_names`: the column names must come from the binlog (`binlog_row_metadata=FULL`).
pub(crate) fn setting_problems(
    flavor: Flavor,
    vars: &HashMap<String, String>,
    need_names: bool,
) -> Vec<SettingProblem> {
    let mut problems = Vec::new();
    let mut want = |variable: &'static str, wanted: &'static str, dynamic: bool| {
        let found = vars.get(variable).map(String::as_str);
        if found.is_some_and(|v| v.eq_ignore_ascii_case(wanted)) {
            return;
        }
        let shown = |v: &str| if v.is_empty() { "''".to_owned() } else { v.to_owned() };
        let wanted_sql = if wanted.is_empty() { "''".to_owned() } else { format!("'{wanted}'") };
        let fix = match (found, dynamic) {
            (None, _) => format!(
                "this server version lacks {variable}; use a version that has it (MySQL 8.0+, MariaDB 10.5+)"
            ),
            (Some(_), true) => format!(
                "SET GLOBAL {variable} = {wanted_sql}, and {variable} = {} under [mysqld] in my.cnf so a restart keeps it (sessions already open keep the old value until they reconnect)",
                if wanted.is_empty() { "\"\"" } else { wanted }
            ),
            (Some(_), false) => format!(
                "set {variable} = {wanted} under [mysqld] in my.cnf and restart the server (it cannot change at runtime)"
            ),
        };
        let found = found.map_or_else(|| "(not available)".to_owned(), shown);
        problems.push(SettingProblem { variable, found, wanted, fix });
    };
    want("log_bin", "ON", false);
    want("binlog_format", "ROW", true);
    want("binlog_row_image", "FULL", true);
    if need_names {
        want("binlog_row_metadata", "FULL", true);
    }
    match flavor {
        Flavor::Mariadb => want("log_bin_compress", "OFF", true),
        Flavor::Mysql => {
            want("gtid_mode", "ON", true);
            want("enforce_gtid_consistency", "ON", true);
            // PARTIAL_JSON logs JSON diffs instead of after images.
            if vars.contains_key("binlog_row_value_options") {
                want("binlog_row_value_options", "", true);
            }
        }
    }
    if let Some(p) =
        problems.iter_mut().find(|p| p.variable == "gtid_mode" && p.found != "(not available)")
    {
        p.fix = "SET GLOBAL enforce_gtid_consistency = ON, then move gtid_mode one step at a time \
                 (SET GLOBAL gtid_mode = OFF_PERMISSIVE, ON_PERMISSIVE, ON), and gtid_mode = ON \
                 with enforce_gtid_consistency = ON under [mysqld] in my.cnf"
            .into();
    }
    if let Some(p) = problems.iter_mut().find(|p| p.variable == "binlog_row_metadata") {
        p.fix.push_str(" (or take column names from the catalog with --fetchMetadata)");
    }
    problems
}

/// Checks that the source writes a binlog the replicator can read: `log_bin` on, ROW format,
/// FULL row images, FULL row metadata (column names), and per flavor MariaDB
/// `log_bin_compress=OFF` or MySQL `gtid_mode=ON`, `enforce_gtid_consistency=ON` and no
/// `PARTIAL_JSON` row values.
///
/// # Errors
/// [`BinlogError::SourceNotConfigured`] naming every wrong setting and its fix;
/// [`BinlogError::Query`] if the variables cannot be read.
pub async fn check_source(pool: &Pool, flavor: Flavor) -> Result<(), BinlogError> {
    check(pool, flavor, true).await
}

/// [`check_source`] for a replicator that takes column names from the catalog
/// (`--fetchMetadata`): `binlog_row_metadata` may be MINIMAL.
///
/// # Errors
/// As [`check_source`].
pub async fn check_source_with_catalog_names(
    pool: &Pool,
    flavor: Flavor,
) -> Result<(), BinlogError> {
    check(pool, flavor, false).await
}

async fn check(pool: &Pool, flavor: Flavor, need_names: bool) -> Result<(), BinlogError> {
    let what = "reading the binlog settings";
    let mut conn = pool.get_conn().await.map_err(|source| BinlogError::Query {
        what,
        host: "the source".into(),
        source,
    })?;
    let host = format!("{}:{}", conn.opts().ip_or_hostname(), conn.opts().tcp_port());
    let names = CHECKED.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ");
    let rows: Vec<(String, String)> = conn
        .query(format!("SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})"))
        .await
        .map_err(|source| BinlogError::Query { what, host, source })?;
    let vars: HashMap<String, String> =
        rows.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let problems = setting_problems(flavor, &vars, need_names);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BinlogError::SourceNotConfigured { problems: SettingProblems(problems) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: message.into(),
            state: "HY000".into(),
        })
    }

    #[test]
    fn purged_positions_are_refusals_that_say_fetch_again() {
        // The messages MariaDB 10.11 and MySQL 8.0 send for a position they do not have.
        for message in [
            "Could not find GTID state requested by slave in any binlog files. Probably the slave state is too old and required binlog files have been purged.",
            "Error: connecting slave requested to start from GTID 0-1-999999, which is not in the master's binlog",
            "Cannot replicate because the source purged required binary logs. Replicate the missing transactions from elsewhere",
        ] {
            let e = BinlogError::from_stream("h:3306", "0-1-5", server(1236, message));
            assert!(matches!(e, BinlogError::PositionLost { .. }), "{message}: {e:?}");
            assert!(e.to_string().contains(POSITION_LOST_FIX), "{e}");
            assert!(!e.is_source_lost());
        }
    }

    #[test]
    fn shutdown_and_network_loss_reconnect() {
        let shutdown = server(1053, "Server shutdown in progress");
        assert!(BinlogError::from_stream("h:1", "p", shutdown).is_source_lost());
        let reset = mysql_async::Error::Io(mysql_async::IoError::Io(io::Error::from(
            io::ErrorKind::ConnectionReset,
        )));
        assert!(BinlogError::from_stream("h:1", "p", reset).is_source_lost());
        assert!(BinlogError::Closed { host: "h:1".into() }.is_source_lost());
        let denied = server(1227, "Access denied; you need the REPLICATION SLAVE privilege");
        let e = BinlogError::from_stream("h:1", "p", denied);
        assert!(!e.is_source_lost());
        assert!(e.to_string().contains("REPLICATION SLAVE"), "{e}");
        let malformed = mysql_async::Error::Io(mysql_async::IoError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad event",
        )));
        assert!(!BinlogError::from_stream("h:1", "p", malformed).is_source_lost());
    }

    #[test]
    fn settings_are_listed_with_their_fix() {
        let e = BinlogError::SourceNotConfigured {
            problems: SettingProblems(vec![SettingProblem {
                variable: "binlog_row_metadata",
                found: "MINIMAL".into(),
                wanted: "FULL",
                fix: "SET GLOBAL binlog_row_metadata = 'FULL'".into(),
            }]),
        };
        assert_eq!(
            e.to_string(),
            "the source's binlog cannot be replicated: binlog_row_metadata is MINIMAL, needs FULL: SET GLOBAL binlog_row_metadata = 'FULL'"
        );
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn mysql_needs_gtid_mode_and_whole_json_images() {
        let good = [
            ("log_bin", "ON"),
            ("binlog_format", "ROW"),
            ("binlog_row_image", "FULL"),
            ("binlog_row_metadata", "FULL"),
            ("gtid_mode", "ON"),
            ("enforce_gtid_consistency", "ON"),
            ("binlog_row_value_options", ""),
        ];
        assert_eq!(setting_problems(Flavor::Mysql, &vars(&good), true), []);
        let mut bad = vars(&good);
        bad.insert("gtid_mode".into(), "OFF_PERMISSIVE".into());
        bad.insert("binlog_row_value_options".into(), "PARTIAL_JSON".into());
        let problems = setting_problems(Flavor::Mysql, &bad, true);
        let text = SettingProblems(problems).to_string();
        assert_eq!(
            text,
            "gtid_mode is OFF_PERMISSIVE, needs ON: SET GLOBAL enforce_gtid_consistency = ON, then \
             move gtid_mode one step at a time (SET GLOBAL gtid_mode = OFF_PERMISSIVE, \
             ON_PERMISSIVE, ON), and gtid_mode = ON with enforce_gtid_consistency = ON under \
             [mysqld] in my.cnf; binlog_row_value_options is PARTIAL_JSON, needs '': SET \
             GLOBAL binlog_row_value_options = '', and binlog_row_value_options = \"\" under \
             [mysqld] in my.cnf so a restart keeps it (sessions already open keep the old value \
             until they reconnect)"
        );
        // MySQL 5.7 has no binlog_row_metadata: fine when names come from the catalog.
        let mut old = vars(&good);
        old.remove("binlog_row_metadata");
        old.remove("binlog_row_value_options");
        assert_eq!(setting_problems(Flavor::Mysql, &old, false), []);
        let missing = setting_problems(Flavor::Mysql, &old, true);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].found, "(not available)");
        assert!(missing[0].fix.contains("--fetchMetadata"), "{}", missing[0].fix);
    }
}
