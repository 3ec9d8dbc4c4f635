//! Opening connections from MOLT URLs.

use molt_source::{ConnectProblem, SourceError};
use molt_url::{ConnUrl, TlsMode};
use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Pool, SslOpts};

/// Which server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Oracle MySQL.
    Mysql,
    /// MariaDB.
    Mariadb,
}

pub(crate) fn classify(err: &mysql_async::Error) -> ConnectProblem {
    match err {
        mysql_async::Error::Server(s) => match s.code {
            1045 | 1044 | 1698 => ConnectProblem::Authentication,
            1049 => ConnectProblem::UnknownDatabase,
            _ => ConnectProblem::Other,
        },
        mysql_async::Error::Io(io) => {
            if io.to_string().to_ascii_lowercase().contains("tls") {
                ConnectProblem::Tls
            } else {
                ConnectProblem::Unreachable
            }
        }
        _ => ConnectProblem::Other,
    }
}

/// Driver options for `url`: address, credentials, database and TLS as `sslmode` says.
///
/// # Errors
/// [`SourceError::Connect`] when `sslmode` is not one we know.
pub(crate) fn opts(url: &ConnUrl) -> Result<OptsBuilder, SourceError> {
    let mode = url.tls_mode().map_err(|e| SourceError::connect(url, ConnectProblem::Tls, e))?;
    let mut opts = OptsBuilder::default()
        .ip_or_hostname(url.host())
        .tcp_port(url.port())
        .user(Some(url.user()))
        .pass(url.password())
        .db_name(Some(url.database()).filter(|d| !d.is_empty()))
        .prefer_socket(false);
    let ssl = match mode {
        TlsMode::Disable | TlsMode::Allow | TlsMode::Prefer => None,
        TlsMode::Require => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        TlsMode::VerifyCa => Some(SslOpts::default().with_danger_skip_domain_validation(true)),
        TlsMode::VerifyFull => Some(SslOpts::default()),
    };
    if let Some(mut ssl) = ssl {
        if let Some(ca) = url.param("sslrootcert").or_else(|| url.param("sslca")) {
            ssl = ssl.with_root_certs(vec![std::path::PathBuf::from(ca).into()]);
        }
        opts = opts.ssl_opts(ssl);
    }
    Ok(opts)
}

/// Opens a pool and checks that one connection works.
///
/// # Errors
/// [`SourceError::Connect`] naming the host and what to check; never the password.
pub async fn connect(url: &ConnUrl) -> Result<Pool, SourceError> {
    let opts = opts(url)?;
    let pool = Pool::new(opts);
    let mut conn = pool.get_conn().await.map_err(|e| SourceError::connect(url, classify(&e), e))?;
    conn.query_drop("SELECT 1").await.map_err(|e| SourceError::connect(url, classify(&e), e))?;
    Ok(pool)
}

/// Settings of every session [`connect_for_reading`] opens: values then read the way
/// [`crate::value::value_text`] expects (UTC timestamps, CHARs without padding).
pub const READ_SESSION_SETTINGS: [&str; 3] = [
    "SET time_zone = '+00:00'",
    "SET sql_mode = REPLACE(@@sql_mode, 'PAD_CHAR_TO_FULL_LENGTH', '')",
    // Keys ordered on every byte, not the first 1024 (`ORDER BY` must match comparisons).
    "SET max_sort_length = 8388608",
];

/// A pool of at most `size` sessions set up to read values as [`crate::value::value_text`]
/// expects, checked with one connection first.
///
/// # Errors
/// [`SourceError::Connect`] naming the host and what to check.
pub async fn connect_for_reading(url: &ConnUrl, size: usize) -> Result<Pool, SourceError> {
    let constraints = mysql_async::PoolConstraints::new(1, size.max(1)).unwrap_or_default();
    let opts = opts(url)?
        .init(READ_SESSION_SETTINGS.iter().map(|s| (*s).to_owned()).collect())
        .pool_opts(mysql_async::PoolOpts::default().with_constraints(constraints));
    let pool = Pool::new(opts);
    let mut conn = pool.get_conn().await.map_err(|e| SourceError::connect(url, classify(&e), e))?;
    conn.query_drop("SELECT 1").await.map_err(|e| SourceError::connect(url, classify(&e), e))?;
    Ok(pool)
}

/// Asks the server whether it is MySQL or MariaDB.
///
/// # Errors
/// [`SourceError::Query`] if `SELECT VERSION()` fails.
pub async fn server_flavor(pool: &Pool) -> Result<Flavor, SourceError> {
    let mut conn = pool.get_conn().await.map_err(|e| SourceError::query("connecting", e))?;
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| SourceError::query("reading the server version", e))?;
    Ok(flavor_of(&version.unwrap_or_default()))
}

/// The flavor a `VERSION()` string names.
pub(crate) fn flavor_of(version: &str) -> Flavor {
    if version.to_ascii_lowercase().contains("mariadb") { Flavor::Mariadb } else { Flavor::Mysql }
}
