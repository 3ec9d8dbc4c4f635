//! Opening connections from MOLT URLs.

use std::time::Duration;

use molt_source::{ConnectProblem, SourceError};
use molt_url::{ConnUrl, TlsMode};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgSslMode};

/// Driver options for `url`: host, port, user, password, database and TLS parameters.
pub fn connect_options(url: &ConnUrl) -> Result<PgConnectOptions, SourceError> {
    let mut opts = PgConnectOptions::new_without_pgpass()
        .host(url.host())
        .port(url.port())
        .application_name("molt");
    if !url.user().is_empty() {
        opts = opts.username(url.user());
    }
    if let Some(pw) = url.password() {
        opts = opts.password(pw);
    }
    if !url.database().is_empty() {
        opts = opts.database(url.database());
    }
    let mode = url.tls_mode().map_err(|e| SourceError::connect(url, ConnectProblem::Tls, e))?;
    opts = opts.ssl_mode(match mode {
        TlsMode::Disable => PgSslMode::Disable,
        TlsMode::Allow => PgSslMode::Allow,
        TlsMode::Prefer => PgSslMode::Prefer,
        TlsMode::Require => PgSslMode::Require,
        TlsMode::VerifyCa => PgSslMode::VerifyCa,
        TlsMode::VerifyFull => PgSslMode::VerifyFull,
    });
    if let Some(p) = url.param("sslrootcert") {
        opts = opts.ssl_root_cert(p);
    }
    if let Some(p) = url.param("sslcert") {
        opts = opts.ssl_client_cert(p);
    }
    if let Some(p) = url.param("sslkey") {
        opts = opts.ssl_client_key(p);
    }
    Ok(opts)
}

fn classify(err: &sqlx::Error) -> ConnectProblem {
    match err {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => ConnectProblem::Authentication,
            Some("3D000") => ConnectProblem::UnknownDatabase,
            _ => ConnectProblem::Other,
        },
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => ConnectProblem::Unreachable,
        sqlx::Error::Tls(_) => ConnectProblem::Tls,
        _ => ConnectProblem::Other,
    }
}

/// Opens a pool of up to `max_connections` and checks one connection works.
///
/// # Errors
/// [`SourceError::Connect`] naming the host and what to check; never the password.
pub async fn connect(url: &ConnUrl, max_connections: u32) -> Result<PgPool, SourceError> {
    let opts = connect_options(url)?;
    // One direct attempt first: a pool retries refused connections until its acquire timeout,
    // which would make a wrong port take 30 s to report.
    let probe = PgConnection::connect_with(&opts)
        .await
        .map_err(|e| SourceError::connect(url, classify(&e), e))?;
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await
        .map_err(|e| SourceError::connect(url, classify(&e), e))
}
