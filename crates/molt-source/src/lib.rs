//! What a source (or a target's catalog) must offer, independent of dialect.
//!
//! Dialect crates (`molt-source-pg`, `molt-source-mysql`) implement [`CatalogReader`];
//! binaries consume it. No dialect crate depends on another. [`SourceError`] is the one error
//! type they share, and its [`SourceError::Connect`] variant carries the operator's fix.
//!
//! [`export`] holds the snapshot and export-session traits `fetch` runs its phases on.

pub mod binary;
pub mod export;
pub mod pgtext;

use std::error::Error as StdError;
use std::fmt;

use molt_schema::{SchemaError, SourceDialect, Table, TableFilter};
use molt_url::ConnUrl;

/// A boxed driver error.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong when connecting, so that the message can say what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectProblem {
    /// The server refused the user name or password.
    Authentication,
    /// Nothing answered at the address, or the network failed.
    Unreachable,
    /// The database (or service) does not exist.
    UnknownDatabase,
    /// TLS could not be negotiated or a certificate was rejected.
    Tls,
    /// Anything else.
    Other,
}

impl ConnectProblem {
    /// What the operator should check.
    pub fn hint(self) -> &'static str {
        match self {
            ConnectProblem::Authentication => {
                "check the user name and password in the URL (percent-encode special characters with `molt escape-password`)"
            }
            ConnectProblem::Unreachable => {
                "check that the server is running and reachable at that host and port (firewall, listen address)"
            }
            ConnectProblem::UnknownDatabase => "check the database name in the URL path",
            ConnectProblem::Tls => {
                "check sslmode and the sslrootcert/sslcert/sslkey paths in the URL"
            }
            ConnectProblem::Other => "check the connection URL",
        }
    }
}

/// Errors from reading a source or target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Could not open a connection.
    #[error("could not connect to {dialect} at {host} as user {user:?} (database {database:?}); {}", problem.hint())]
    Connect {
        /// Dialect family.
        dialect: &'static str,
        /// `host:port`.
        host: String,
        /// User name.
        user: String,
        /// Database or service.
        database: String,
        /// Classification of the failure.
        problem: ConnectProblem,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A catalog or data query failed.
    #[error("{what}")]
    Query {
        /// What we were doing.
        what: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The catalog holds something the schema model refuses.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl SourceError {
    /// Builds a [`SourceError::Connect`] for `url`.
    pub fn connect(url: &ConnUrl, problem: ConnectProblem, source: impl Into<BoxError>) -> Self {
        SourceError::Connect {
            dialect: url.dialect().name(),
            host: url.host_port(),
            user: url.user().to_owned(),
            database: url.database().to_owned(),
            problem,
            source: source.into(),
        }
    }

    /// Builds a [`SourceError::Query`].
    pub fn query(what: impl fmt::Display, source: impl Into<BoxError>) -> Self {
        SourceError::Query { what: what.to_string(), source: source.into() }
    }
}

/// Reads table definitions from a database's catalog.
///
/// Implementations read one consistent view per call; the result lists tables in name order
/// with columns in ordinal order.
pub trait CatalogReader {
    /// The dialect whose type spellings the returned [`Table`]s carry.
    fn dialect(&self) -> SourceDialect;

    /// Every table the filter selects.
    ///
    /// # Errors
    /// [`SourceError::Query`] when the catalog cannot be read.
    fn tables(
        &self,
        filter: &TableFilter,
    ) -> impl Future<Output = Result<Vec<Table>, SourceError>> + Send;
}
