//! The test bed: real PostgreSQL and MariaDB servers on loopback, started on demand and shared
//! by every test process, with one fresh database per test.
//!
//! Three instances live under one directory (`MOLT_TESTBED_DIR`, default
//! `/var/tmp/molt-testbed`):
//!
//! | instance | role | settings |
//! |---|---|---|
//! | `pg-source` | PostgreSQL source | `wal_level=logical`, slots and WAL senders |
//! | `pg-target` | PostgreSQL target, standing in for CockroachDB | |
//! | `mariadb` | MariaDB source | `log_bin`, `binlog_format=ROW`, `binlog_row_image=FULL`, `binlog_row_metadata=FULL`, `gtid_strict_mode` |
//!
//! [`Testbed::up`] installs Debian's packages when the binaries are missing, initialises data
//! directories, starts whatever is not running and creates the `molt` user (password `molt`)
//! on each. It is idempotent and guarded by a file lock, so `cargo xtask dbs up`, `cargo xtask
//! test` and any test process may all call it. Tests call [`testbed`] and then
//! [`Testbed::fresh_pg_source`] (or `fresh_pg_target`, `fresh_mariadb`).
//!
//! PostgreSQL refuses to run as root, so as root its commands run as the `postgres` user
//! (`runuser`); MariaDB drops to `mysql` itself.

mod mariadb;
mod postgres;
mod process;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub use process::TestbedError;

/// User name and password of the account every instance creates.
pub const TEST_USER: &str = "molt";
/// Password of [`TEST_USER`]; fixtures use fake credentials only.
pub const TEST_PASSWORD: &str = "molt";

/// One running instance's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Name (`pg-source`, `pg-target`, `mariadb`).
    pub name: &'static str,
    /// TCP port on 127.0.0.1.
    pub port: u16,
}

/// The three instances of the test bed.
#[derive(Debug, Clone)]
pub struct Testbed {
    dir: PathBuf,
    /// PostgreSQL source.
    pub pg_source: Instance,
    /// PostgreSQL target (stand-in for CockroachDB).
    pub pg_target: Instance,
    /// MariaDB source.
    pub mariadb: Instance,
}

/// The directory holding the test bed's data and state.
pub fn testbed_dir() -> PathBuf {
    std::env::var_os("MOLT_TESTBED_DIR")
        .map_or_else(|| PathBuf::from("/var/tmp/molt-testbed"), PathBuf::from)
}

static TESTBED: OnceLock<Testbed> = OnceLock::new();

/// The running test bed, started on first use in this process.
///
/// # Panics
/// When the servers cannot be installed or started: a test cannot run without them, and the
/// message says what failed and where the server log is.
pub fn testbed() -> &'static Testbed {
    TESTBED.get_or_init(|| match Testbed::up(&testbed_dir()) {
        Ok(t) => t,
        Err(e) => panic!("the test bed could not start: {e}"),
    })
}

const DEFAULT_PORTS: [(&str, u16); 3] =
    [("pg-source", 55432), ("pg-target", 55433), ("mariadb", 53306)];

impl Testbed {
    /// Installs (if needed), initialises and starts all instances; returns their addresses.
    ///
    /// # Errors
    /// A [`TestbedError`] naming the step and the log to read.
    pub fn up(dir: &Path) -> Result<Testbed, TestbedError> {
        fs::create_dir_all(dir)
            .map_err(|e| TestbedError::io("creating the test bed directory", dir, e))?;
        process::make_traversable(dir)?;
        let lock = process::lock(dir)?;
        let ports = process::ports(dir, &DEFAULT_PORTS)?;
        let port = |name: &str| ports.iter().find(|(n, _)| n == name).map(|(_, p)| *p).unwrap_or(0);
        let bed = Testbed {
            dir: dir.to_owned(),
            pg_source: Instance { name: "pg-source", port: port("pg-source") },
            pg_target: Instance { name: "pg-target", port: port("pg-target") },
            mariadb: Instance { name: "mariadb", port: port("mariadb") },
        };
        process::install_missing()?;
        postgres::up(&bed.dir.join("pg-source"), bed.pg_source.port, true)?;
        postgres::up(&bed.dir.join("pg-target"), bed.pg_target.port, false)?;
        mariadb::up(&bed.dir.join("mariadb"), bed.mariadb.port)?;
        drop(lock);
        Ok(bed)
    }

    /// Stops every instance and deletes the directory.
    ///
    /// # Errors
    /// A [`TestbedError`] if a server would not stop.
    pub fn down(dir: &Path) -> Result<(), TestbedError> {
        if !dir.exists() {
            return Ok(());
        }
        let lock = process::lock(dir)?;
        postgres::stop(&dir.join("pg-source"))?;
        postgres::stop(&dir.join("pg-target"))?;
        mariadb::stop(&dir.join("mariadb"))?;
        drop(lock);
        fs::remove_dir_all(dir)
            .map_err(|e| TestbedError::io("removing the test bed directory", dir, e))
    }

    /// One line per instance: name, port and whether it answers.
    pub fn status(dir: &Path) -> Vec<String> {
        let ports = process::read_ports(dir);
        DEFAULT_PORTS
            .iter()
            .map(|(name, _)| {
                let port = ports.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
                let running = match *name {
                    "mariadb" => mariadb::is_running(&dir.join(name)),
                    _ => postgres::is_running(&dir.join(name)),
                };
                match port {
                    Some(p) => format!(
                        "{name}\t127.0.0.1:{p}\t{}",
                        if running { "running" } else { "stopped" }
                    ),
                    None => format!("{name}\t-\tnot initialised"),
                }
            })
            .collect()
    }

    /// URL of a database on the PostgreSQL source.
    pub fn pg_source_url(&self, database: &str) -> String {
        pg_url(self.pg_source.port, database)
    }

    /// URL of a database on the PostgreSQL target.
    pub fn pg_target_url(&self, database: &str) -> String {
        pg_url(self.pg_target.port, database)
    }

    /// URL of a database on MariaDB.
    pub fn mariadb_url(&self, database: &str) -> String {
        format!("mysql://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:{}/{database}", self.mariadb.port)
    }

    /// `export NAME=value` lines for shells (`cargo xtask dbs env`).
    pub fn env_lines(&self) -> Vec<String> {
        vec![
            format!("export MOLT_TESTBED_DIR={}", self.dir.display()),
            format!("export MOLT_TEST_PG_SOURCE_URL='{}'", self.pg_source_url("postgres")),
            format!("export MOLT_TEST_PG_TARGET_URL='{}'", self.pg_target_url("postgres")),
            format!("export MOLT_TEST_MARIADB_URL='{}'", self.mariadb_url("mysql")),
        ]
    }

    /// A new empty database on the PostgreSQL source.
    ///
    /// # Panics
    /// If the server refuses `CREATE DATABASE`.
    pub async fn fresh_pg_source(&self) -> TestDb {
        let name = unique_name();
        postgres::create_database(&self.pg_source_url("postgres"), &name).await;
        TestDb { url: self.pg_source_url(&name), name }
    }

    /// A new empty database on the PostgreSQL target.
    ///
    /// # Panics
    /// If the server refuses `CREATE DATABASE`.
    pub async fn fresh_pg_target(&self) -> TestDb {
        let name = unique_name();
        postgres::create_database(&self.pg_target_url("postgres"), &name).await;
        TestDb { url: self.pg_target_url(&name), name }
    }

    /// A new empty database on MariaDB.
    ///
    /// # Panics
    /// If the server refuses `CREATE DATABASE`.
    pub async fn fresh_mariadb(&self) -> TestDb {
        let name = unique_name();
        mariadb::create_database(&self.mariadb_url("mysql"), &name).await;
        TestDb { url: self.mariadb_url(&name), name }
    }
}

fn pg_url(port: u16, database: &str) -> String {
    format!("postgres://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:{port}/{database}?sslmode=disable")
}

/// A database made for one test. It is left behind when the test ends (so a failure can be
/// inspected); `cargo xtask dbs down` removes everything.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// Connection URL (password included; fixtures only).
    pub url: String,
    /// Database name.
    pub name: String,
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t_{}_{n}_{nanos:x}", std::process::id())
}
