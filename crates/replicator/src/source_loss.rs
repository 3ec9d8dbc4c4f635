//! Telling a lost source apart from a refusal.
//!
//! A walsender that goes away (the source restarts, fails over, or someone runs
//! `pg_terminate_backend`), a cut network, a server still starting up, or a slot still held by
//! the walsender of a connection that just died: all of these end a replication session but
//! not replication. The replicator reconnects and resumes from its checkpoint, for as long as
//! it takes, saying each time what happened. A refusal — the slot or publication is gone, the
//! password or privileges are wrong, the source is not configured for logical replication —
//! cannot go away by waiting and stops the replicator with an error.

use pgwire_replication::PgWireError;

/// The source could not be reached for a reason that may pass (marks an error chain).
#[derive(Debug, thiserror::Error)]
#[error("the source is unreachable for now")]
pub struct SourceUnreachable;

/// The SQLSTATE a server message ends with (`… (SQLSTATE 57P01)`).
fn server_code(message: &str) -> Option<&str> {
    let (_, tail) = message.rsplit_once("(SQLSTATE ")?;
    tail.strip_suffix(')')
}

/// Whether a server error code means the connection ended or could not start yet: shutdown
/// or crash (57P01-57P03), connection failures (08), too many connections (53300), or a slot
/// still active for a dying walsender (55006).
pub fn code_is_passing(code: &str) -> bool {
    code.starts_with("57P") || code.starts_with("08") || code == "53300" || code == "55006"
}

/// Whether a replication-protocol error is a lost connection rather than a refusal.
pub fn replication_error_is_passing(e: &PgWireError) -> bool {
    match e {
        PgWireError::Io(_) | PgWireError::Protocol(_) | PgWireError::Task(_) => true,
        PgWireError::Server(message) => server_code(message).is_some_and(code_is_passing),
        _ => false,
    }
}

/// Whether an error chain says the source was lost (reconnect), not that it refused.
pub fn source_lost(e: &anyhow::Error) -> bool {
    // A context anywhere in the chain is found by downcasting the error itself.
    e.downcast_ref::<SourceUnreachable>().is_some()
        || e.chain().any(|c| {
            c.downcast_ref::<SourceUnreachable>().is_some()
                || c.downcast_ref::<PgWireError>().is_some_and(replication_error_is_passing)
        })
}

/// Marks an error of a query on the source as a lost source when it is one (a connection
/// that failed or ended), leaving refusals as they are.
pub fn on_source(e: sqlx::Error) -> anyhow::Error {
    let passing = match &e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| code_is_passing(&c)),
        other => molt_target::is_transient(other),
    };
    if passing { anyhow::Error::new(e).context(SourceUnreachable) } else { e.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_pass_and_refusals_do_not() {
        let server = |m: &str| PgWireError::Server(m.to_owned());
        assert!(replication_error_is_passing(&server(
            "terminating connection due to administrator command (SQLSTATE 57P01)"
        )));
        assert!(replication_error_is_passing(&server(
            "replication slot \"s\" is active for PID 42 (SQLSTATE 55006)"
        )));
        assert!(replication_error_is_passing(&server(
            "the database system is starting up (SQLSTATE 57P03)"
        )));
        assert!(replication_error_is_passing(&PgWireError::Io(std::sync::Arc::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset)
        ))));
        assert!(!replication_error_is_passing(&server(
            "replication slot \"s\" does not exist (SQLSTATE 42704)"
        )));
        assert!(!replication_error_is_passing(&server("permission denied (SQLSTATE 42501)")));
        assert!(!replication_error_is_passing(&PgWireError::Auth("password".into())));
        let lost = anyhow::Error::new(server("x (SQLSTATE 08006)")).context("reading");
        assert!(source_lost(&lost));
        let marked = on_source(sqlx::Error::PoolTimedOut).context("reading wal_level");
        assert!(source_lost(&marked));
        assert!(!source_lost(&on_source(sqlx::Error::RowNotFound)));
    }
}
