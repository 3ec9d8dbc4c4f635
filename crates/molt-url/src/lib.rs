//! Connection URLs as MOLT users write them.
//!
//! Start from [`ConnUrl`]: parse any URL MOLT's documentation shows, ask it for its
//! [`Dialect`], its parts (percent-decoded) and its [`TlsMode`], and print it with
//! [`ConnUrl::redacted`] (the default for `Display` and `Debug`) so that a password never
//! reaches a log line. [`escape_password`] is `molt escape-password`.
//!
//! Accepted forms:
//!
//! | dialect | forms |
//! |---|---|
//! | PostgreSQL / CockroachDB | `postgres://u:p@host:port/db?sslmode=…`, `postgresql://…` |
//! | MySQL / MariaDB | `mysql://u:p@host:port/db`, `mysql://u:p@tcp(host:port)/db`, either behind `jdbc:` |
//! | Oracle | `oracle://u:p@host:port/service` (`C%23%23USER` for a common user `C##USER`) |
//!
//! ```
//! use molt_url::{ConnUrl, Dialect};
//!
//! let url: ConnUrl = "postgres://molt:s%40cret@db.local:5432/app?sslmode=verify-full".parse()?;
//! assert_eq!(url.dialect(), Dialect::Postgres);
//! assert_eq!(url.password(), Some("s@cret"));
//! assert_eq!(url.to_string(), "postgres://molt:****@db.local:5432/app?sslmode=verify-full");
//! # Ok::<(), molt_url::UrlError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What a password is replaced with in every printed URL.
pub const REDACTED: &str = "****";

/// The SQL dialect family a URL talks to, chosen from its scheme.
///
/// `Postgres` covers both PostgreSQL and CockroachDB: they share the wire protocol and the
/// scheme, and which one answers is learned after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `postgres://` or `postgresql://`: PostgreSQL or CockroachDB.
    Postgres,
    /// `mysql://` (optionally `jdbc:mysql://`): MySQL or MariaDB.
    Mysql,
    /// `oracle://`: Oracle Database.
    Oracle,
}

impl Dialect {
    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Dialect::Postgres => 5432,
            Dialect::Mysql => 3306,
            Dialect::Oracle => 1521,
        }
    }

    /// A short lowercase name for logs (`postgres`, `mysql`, `oracle`).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
            Dialect::Oracle => "oracle",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the connection is protected, from the URL's `sslmode` parameter.
///
/// MySQL spellings (`DISABLED`, `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`) map to
/// the libpq names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// No TLS at all: data and password travel in clear text.
    Disable,
    /// TLS only if the server insists.
    Allow,
    /// TLS if the server offers it.
    Prefer,
    /// TLS always, certificate not checked.
    Require,
    /// TLS always, certificate chain checked.
    VerifyCa,
    /// TLS always, chain and host name checked.
    VerifyFull,
}

impl TlsMode {
    /// Whether this mode may send data unencrypted.
    pub fn is_insecure(self) -> bool {
        matches!(self, TlsMode::Disable)
    }

    /// The libpq spelling (`verify-full`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Allow => "allow",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for TlsMode {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lowered = s.to_ascii_lowercase().replace('_', "-");
        Ok(match lowered.as_str() {
            "disable" | "disabled" | "false" => TlsMode::Disable,
            "allow" => TlsMode::Allow,
            "prefer" | "preferred" => TlsMode::Prefer,
            "require" | "required" | "true" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" | "verify-identity" => TlsMode::VerifyFull,
            _ => return Err(UrlError::InvalidSslMode { value: s.to_owned() }),
        })
    }
}

/// Why a URL was refused. Messages never include the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The string was empty.
    #[error("connection URL is empty")]
    Empty,
    /// No `scheme://` prefix.
    #[error(
        "connection URL has no scheme; start it with postgres://, postgresql://, mysql:// or oracle://"
    )]
    MissingScheme,
    /// A scheme this toolkit does not speak.
    #[error(
        "connection URL scheme {scheme:?} is not supported; use postgres://, postgresql://, mysql:// or oracle://"
    )]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("port {port:?} in the connection URL is not a number from 1 to 65535")]
    InvalidPort {
        /// The port as written.
        port: String,
    },
    /// A `%` escape that is not two hex digits, or that decodes to invalid UTF-8.
    #[error(
        "the {part} of the connection URL has an invalid percent-escape; encode special characters with `molt escape-password`"
    )]
    InvalidPercentEncoding {
        /// Which part: `user`, `password`, `database`, `query parameter`.
        part: &'static str,
    },
    /// A bracketed IPv6 host without its closing bracket, or a `tcp(` without `)`.
    #[error("host part {host:?} of the connection URL is malformed")]
    InvalidHost {
        /// The host part as written.
        host: String,
    },
    /// MySQL `protocol(address)` with a protocol other than `tcp`.
    #[error("MySQL protocol {protocol:?} is not supported; use tcp(host:port) or host:port")]
    UnsupportedMysqlProtocol {
        /// The protocol as written.
        protocol: String,
    },
    /// An Oracle URL without `/service`.
    #[error("Oracle connection URL needs a service name: oracle://user:password@host:port/SERVICE")]
    MissingOracleService,
    /// An `sslmode` value nobody knows.
    #[error(
        "sslmode={value:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
    )]
    InvalidSslMode {
        /// The value as written.
        value: String,
    },
    /// TLS is off and the user did not allow it.
    #[error(
        "connection to {host} would not be encrypted ({reason}); add sslmode=require or sslmode=verify-full to the URL, or pass --allow-tls-mode-disable to accept an unencrypted connection"
    )]
    InsecureTls {
        /// `host:port` of the refused URL.
        host: String,
        /// What made it insecure.
        reason: &'static str,
    },
}

/// Which written form a URL came in, so that it prints back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    MysqlTcp,
}

/// A parsed connection URL.
///
/// All parts are percent-decoded. `Display` and `Debug` print [`ConnUrl::redacted`]; the only
/// way to get the password back out is [`ConnUrl::password`] or [`ConnUrl::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct ConnUrl {
    dialect: Dialect,
    scheme: String,
    jdbc: bool,
    form: Form,
    user: String,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    database: String,
    params: Vec<(String, String)>,
}

/// Characters escaped in userinfo, path and query parts we print: all but `A-Za-z0-9-_.~`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a password for use inside a connection URL (`molt escape-password`).
///
/// Every byte outside `A-Z a-z 0-9 - _ . ~` is escaped, so the result is safe in any part of a
/// URL and decodes back to the exact password.
///
/// ```
/// assert_eq!(molt_url::escape_password("a$52&"), "a%2452%26");
/// ```
pub fn escape_password(password: &str) -> String {
    utf8_percent_encode(password, COMPONENT).to_string()
}

fn decode(part: &'static str, raw: &str) -> Result<String, UrlError> {
    // `percent_decode_str` passes malformed escapes through untouched; we refuse them instead,
    // because a half-escaped password would fail later with a confusing authentication error.
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(UrlError::InvalidPercentEncoding { part });
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| UrlError::InvalidPercentEncoding { part })
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), UrlError> {
    let invalid = || UrlError::InvalidHost { host: hostport.to_owned() };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let close = rest.find(']').ok_or_else(invalid)?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(invalid)?),
        };
        (host.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_owned(), Some(p)),
            Some(_) => return Err(invalid()),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(UrlError::InvalidPort { port: p.to_owned() }),
        },
    };
    Ok((host, port))
}

impl FromStr for ConnUrl {
    type Err = UrlError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        let (jdbc, input) = match input.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("jdbc:") => (true, &input[5..]),
            _ => (false, input),
        };
        let (scheme, rest) = input.split_once("://").ok_or(UrlError::MissingScheme)?;
        let scheme = scheme.to_ascii_lowercase();
        let dialect = match scheme.as_str() {
            "postgres" | "postgresql" => Dialect::Postgres,
            "mysql" => Dialect::Mysql,
            "oracle" => Dialect::Oracle,
            "" => return Err(UrlError::MissingScheme),
            _ => return Err(UrlError::UnknownScheme { scheme }),
        };
        if jdbc && dialect != Dialect::Mysql {
            return Err(UrlError::UnknownScheme { scheme: format!("jdbc:{scheme}") });
        }
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));

        // Passwords are supposed to be percent-encoded, but an unencoded `@` or `/` in them is
        // common; the last `@` is the one that ends the userinfo.
        let (userinfo, hostpath) = match before_query.rfind('@') {
            Some(at) => (Some(&before_query[..at]), &before_query[at + 1..]),
            None => (None, before_query),
        };
        let (user, password) = match userinfo {
            None => (String::new(), None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (decode("user", u)?, Some(decode("password", p)?)),
                None => (decode("user", info)?, None),
            },
        };

        let mut form = Form::Plain;
        let (hostport, path) = if let Some(open) =
            hostpath.find('(').filter(|_| dialect == Dialect::Mysql)
        {
            let protocol = &hostpath[..open];
            let close = hostpath
                .find(')')
                .ok_or_else(|| UrlError::InvalidHost { host: hostpath.to_owned() })?;
            if !protocol.eq_ignore_ascii_case("tcp") {
                return Err(UrlError::UnsupportedMysqlProtocol { protocol: protocol.to_owned() });
            }
            form = Form::MysqlTcp;
            (&hostpath[open + 1..close], &hostpath[close + 1..])
        } else {
            match hostpath.find('/') {
                Some(slash) => (&hostpath[..slash], &hostpath[slash..]),
                None => (hostpath, ""),
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let database = decode("database", path.strip_prefix('/').unwrap_or(path))?;
        if dialect == Dialect::Oracle && database.is_empty() {
            return Err(UrlError::MissingOracleService);
        }

        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode("query parameter", &k.replace('+', " "))?;
            let v = decode("query parameter", &v.replace('+', " "))?;
            params.push((k, v));
        }

        let url = ConnUrl {
            dialect,
            scheme,
            jdbc,
            form,
            user,
            password,
            host: if host.is_empty() { "localhost".to_owned() } else { host },
            port,
            database,
            params,
        };
        // Reject a bad sslmode at parse time rather than at connect time.
        url.tls_mode()?;
        Ok(url)
    }
}

impl ConnUrl {
    /// Parses a URL; the same as `str::parse`.
    ///
    /// # Errors
    /// Any [`UrlError`] but `InsecureTls` (see [`ConnUrl::check_tls`]).
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        input.parse()
    }

    /// The dialect family, from the scheme.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The user name, decoded (`C##MIGRATION` for `C%23%23MIGRATION`); empty when absent.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password, decoded.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host name or address (IPv6 without brackets); `localhost` when absent.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, or the dialect's default.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.dialect.default_port())
    }

    /// `host:port`, bracketing IPv6 addresses; what error messages name.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port())
        } else {
            format!("{}:{}", self.host, self.port())
        }
    }

    /// The database (PostgreSQL, MySQL) or service name (Oracle); empty when absent.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The first value of a query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// All query parameters in written order, decoded.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The TLS mode from `sslmode` (`ssl-mode` is accepted for MySQL).
    ///
    /// Without the parameter: PostgreSQL defaults to `prefer` like libpq; MySQL to `disable`,
    /// because MOLT treats a MySQL URL without `sslmode` as insecure; Oracle to `prefer`
    /// (Oracle transport security is configured outside the URL).
    ///
    /// # Errors
    /// [`UrlError::InvalidSslMode`] for an unknown value.
    pub fn tls_mode(&self) -> Result<TlsMode, UrlError> {
        let written = self.param("sslmode").or_else(|| self.param("ssl-mode"));
        match (written, self.dialect) {
            (Some(v), _) => v.parse(),
            (None, Dialect::Mysql) => Ok(TlsMode::Disable),
            (None, _) => Ok(TlsMode::Prefer),
        }
    }

    /// Applies MOLT's rule: an unencrypted connection needs `--allow-tls-mode-disable`.
    ///
    /// # Errors
    /// [`UrlError::InsecureTls`] naming the host and the fix.
    pub fn check_tls(&self, allow_tls_mode_disable: bool) -> Result<(), UrlError> {
        if allow_tls_mode_disable || !self.tls_mode()?.is_insecure() {
            return Ok(());
        }
        let reason = if self.param("sslmode").is_some() || self.param("ssl-mode").is_some() {
            "sslmode=disable"
        } else {
            "a MySQL URL without sslmode is unencrypted"
        };
        Err(UrlError::InsecureTls { host: self.host_port(), reason })
    }

    /// A copy with another database (or service) name.
    pub fn with_database(&self, database: &str) -> ConnUrl {
        ConnUrl { database: database.to_owned(), ..self.clone() }
    }

    /// A copy with one query parameter set (replacing any earlier value).
    pub fn with_param(&self, name: &str, value: &str) -> ConnUrl {
        let mut url = self.clone();
        url.params.retain(|(k, _)| k != name);
        url.params.push((name.to_owned(), value.to_owned()));
        url
    }

    /// The URL with the password replaced by [`REDACTED`]; safe for logs.
    pub fn redacted(&self) -> String {
        self.render(false)
    }

    /// The full URL, password included, re-encoded; for handing to a driver, never to a log.
    pub fn expose(&self) -> String {
        self.render(true)
    }

    fn render(&self, with_password: bool) -> String {
        let mut out = String::new();
        if self.jdbc {
            out.push_str("jdbc:");
        }
        out.push_str(&self.scheme);
        out.push_str("://");
        if !self.user.is_empty() || self.password.is_some() {
            out.extend(utf8_percent_encode(&self.user, COMPONENT));
            if let Some(pw) = &self.password {
                out.push(':');
                if with_password {
                    out.extend(utf8_percent_encode(pw, COMPONENT));
                } else {
                    out.push_str(REDACTED);
                }
            }
            out.push('@');
        }
        let hostport = match self.port {
            Some(_) => self.host_port(),
            None if self.host.contains(':') => format!("[{}]", self.host),
            None => self.host.clone(),
        };
        match self.form {
            Form::MysqlTcp => {
                out.push_str("tcp(");
                out.push_str(&hostport);
                out.push(')');
            }
            Form::Plain => out.push_str(&hostport),
        }
        if !self.database.is_empty() {
            out.push('/');
            out.extend(utf8_percent_encode(&self.database, COMPONENT));
        }
        for (i, (k, v)) in self.params.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.extend(utf8_percent_encode(k, COMPONENT));
            out.push('=');
            out.extend(utf8_percent_encode(v, COMPONENT));
        }
        out
    }
}

impl fmt::Display for ConnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for ConnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConnUrl").field(&self.redacted()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ConnUrl {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn escape_password_matches_molt() {
        assert_eq!(escape_password("a$52&"), "a%2452%26");
        assert_eq!(escape_password("plain-pass_1.~"), "plain-pass_1.~");
        assert_eq!(escape_password("p@ss/w:rd?#"), "p%40ss%2Fw%3Ard%3F%23");
        assert_eq!(escape_password("é "), "%C3%A9%20");
    }

    #[test]
    fn postgres_with_tls_params() {
        let u = parse(
            "postgresql://migration_user:a%2452%26@localhost:5432/molt?sslmode=verify-full&sslrootcert=%2Fcerts%2Fca.crt&sslcert=/c/client.crt&sslkey=/c/client.key",
        );
        assert_eq!(u.dialect(), Dialect::Postgres);
        assert_eq!(u.user(), "migration_user");
        assert_eq!(u.password(), Some("a$52&"));
        assert_eq!(u.host(), "localhost");
        assert_eq!(u.port(), 5432);
        assert_eq!(u.database(), "molt");
        assert_eq!(u.tls_mode().unwrap(), TlsMode::VerifyFull);
        assert_eq!(u.param("sslrootcert"), Some("/certs/ca.crt"));
        assert_eq!(u.param("sslkey"), Some("/c/client.key"));
        assert!(u.check_tls(false).is_ok());
    }

    #[test]
    fn cockroach_default_port_is_postgres_scheme() {
        let u = parse("postgres://root@localhost:26257/defaultdb?sslmode=disable");
        assert_eq!(u.port(), 26257);
        assert_eq!(u.password(), None);
        assert_eq!(u.tls_mode().unwrap(), TlsMode::Disable);
        let err = u.check_tls(false).unwrap_err();
        assert!(err.to_string().contains("localhost:26257"), "{err}");
        assert!(err.to_string().contains("--allow-tls-mode-disable"), "{err}");
        assert!(u.check_tls(true).is_ok());
    }

    #[test]
    fn postgres_without_sslmode_is_prefer() {
        let u = parse("postgres://u:p@h/db");
        assert_eq!(u.tls_mode().unwrap(), TlsMode::Prefer);
        assert_eq!(u.port(), 5432);
        assert!(u.check_tls(false).is_ok());
    }

    #[test]
    fn mysql_forms() {
        for s in [
            "mysql://user:pw@host:3307/db",
            "mysql://user:pw@tcp(host:3307)/db",
            "jdbc:mysql://user:pw@host:3307/db",
            "JDBC:MySQL://user:pw@tcp(host:3307)/db",
        ] {
            let u = parse(s);
            assert_eq!(u.dialect(), Dialect::Mysql, "{s}");
            assert_eq!((u.user(), u.password()), ("user", Some("pw")), "{s}");
            assert_eq!((u.host(), u.port(), u.database()), ("host", 3307, "db"), "{s}");
            // MOLT: a MySQL URL without sslmode is insecure.
            assert!(matches!(u.check_tls(false), Err(UrlError::InsecureTls { .. })), "{s}");
        }
        let tls = parse("mysql://u:p@h:3306/db?sslmode=verify-full&sslcert=%2Ftmp%2Fc.pem");
        assert_eq!(tls.tls_mode().unwrap(), TlsMode::VerifyFull);
        assert_eq!(tls.param("sslcert"), Some("/tmp/c.pem"));
        assert!(tls.check_tls(false).is_ok());
        assert_eq!(parse("mysql://u@h/db?ssl-mode=REQUIRED").tls_mode().unwrap(), TlsMode::Require);
    }

    #[test]
    fn mysql_unix_protocol_is_refused() {
        let err = ConnUrl::parse("mysql://u:p@unix(/var/run/mysqld.sock)/db").unwrap_err();
        assert_eq!(err, UrlError::UnsupportedMysqlProtocol { protocol: "unix".into() });
    }

    #[test]
    fn oracle_common_user() {
        let u = parse("oracle://C%23%23MIGRATION_USER:pw@oracle.local:1521/ORCLCDB");
        assert_eq!(u.dialect(), Dialect::Oracle);
        assert_eq!(u.user(), "C##MIGRATION_USER");
        assert_eq!(u.database(), "ORCLCDB");
        assert_eq!(u.port(), 1521);
        assert_eq!(
            ConnUrl::parse("oracle://u:p@h:1521").unwrap_err(),
            UrlError::MissingOracleService
        );
        assert_eq!(parse("oracle://u:p@h/ORCLPDB1").port(), 1521);
    }

    #[test]
    fn ipv6_hosts() {
        let u = parse("postgres://u:p@[::1]:5433/db");
        assert_eq!(u.host(), "::1");
        assert_eq!(u.host_port(), "[::1]:5433");
        assert_eq!(u.redacted(), "postgres://u:****@[::1]:5433/db");
        assert!(matches!(
            ConnUrl::parse("postgres://u@[::1/db"),
            Err(UrlError::InvalidHost { .. })
        ));
    }

    #[test]
    fn unencoded_at_in_password_uses_last_at() {
        let u = parse("postgres://u:p@ss@h:1/db");
        assert_eq!(u.password(), Some("p@ss"));
        assert_eq!(u.host(), "h");
    }

    #[test]
    fn errors_never_show_password() {
        let bad = [
            "postgres://u:sekrit%zz@h/db",
            "postgres://u:sekrit@h:99999/db",
            "postgres://u:sekrit@h:5432/db?sslmode=bogus",
            "ftp://u:sekrit@h/db",
            "mysql://u:sekrit@h/db",
        ];
        for s in bad {
            let err = match ConnUrl::parse(s) {
                Err(e) => e,
                Ok(u) => u.check_tls(false).unwrap_err(),
            };
            assert!(!err.to_string().contains("sekrit"), "{s}: {err}");
            assert!(!format!("{err:?}").contains("sekrit"), "{s}: {err:?}");
        }
    }

    #[test]
    fn display_and_debug_redact() {
        let u = parse("postgres://u:sekrit@h:5432/db");
        assert!(!u.to_string().contains("sekrit"));
        assert!(!format!("{u:?}").contains("sekrit"));
        assert_eq!(u.expose(), "postgres://u:sekrit@h:5432/db");
    }

    #[test]
    fn expose_round_trips() {
        for s in [
            "postgres://u:a%2452%26@h:5432/db?sslmode=require",
            "mysql://u:p%40@tcp(h:3306)/db?sslmode=verify-ca",
            "jdbc:mysql://u:p@h:3306/db",
            "oracle://C%23%23U:p@h:1521/SVC",
        ] {
            let u = parse(s);
            assert_eq!(parse(&u.expose()), u, "{s}");
            assert_eq!(u.expose(), s);
        }
    }

    #[test]
    fn structural_errors() {
        assert_eq!(ConnUrl::parse("").unwrap_err(), UrlError::Empty);
        assert_eq!(ConnUrl::parse("localhost:5432").unwrap_err(), UrlError::MissingScheme);
        assert_eq!(
            ConnUrl::parse("sqlite://x").unwrap_err(),
            UrlError::UnknownScheme { scheme: "sqlite".into() }
        );
        assert_eq!(
            ConnUrl::parse("postgres://h:0/db").unwrap_err(),
            UrlError::InvalidPort { port: "0".into() }
        );
        assert_eq!(
            ConnUrl::parse("jdbc:postgres://h/db").unwrap_err(),
            UrlError::UnknownScheme { scheme: "jdbc:postgres".into() }
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = ConnUrl::parse(&s);
        }

        #[test]
        fn any_password_round_trips(pw in "\\PC{0,40}") {
            let s = format!("postgres://u:{}@h:5432/db", escape_password(&pw));
            let u = ConnUrl::parse(&s).unwrap();
            proptest::prop_assert_eq!(u.password(), Some(pw.as_str()));
            proptest::prop_assert_eq!(u.expose(), s);
        }
    }
}
