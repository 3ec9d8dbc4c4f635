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
//! | `s3` | S3-compatible storage (`s3rver` from npm) | bucket `molt-test`, key and secret `S3RVER` |
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
mod s3;
pub mod sql;

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
    /// S3-compatible object storage (s3rver) with one bucket, [`S3_BUCKET`].
    pub s3: Instance,
}

/// The bucket of the test bed's S3 server.
pub const S3_BUCKET: &str = s3::BUCKET;
/// Access key id and secret of the test bed's S3 server (the same word).
pub const S3_KEY: &str = s3::KEY;

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

const DEFAULT_PORTS: [(&str, u16); 4] =
    [("pg-source", 55432), ("pg-target", 55433), ("mariadb", 53306), ("s3", 54569)];

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
            s3: Instance { name: "s3", port: port("s3") },
        };
        process::install_missing()?;
        postgres::up(&bed.dir.join("pg-source"), bed.pg_source.port, true)?;
        postgres::up(&bed.dir.join("pg-target"), bed.pg_target.port, false)?;
        mariadb::up(&bed.dir.join("mariadb"), bed.mariadb.port, "")?;
        s3::up(&bed.dir.join("s3"), bed.s3.port)?;
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
        let ports = process::read_ports(dir);
        if let Some((_, port)) = ports.iter().find(|(n, _)| n == "s3") {
            s3::stop(&dir.join("s3"), *port)?;
        }
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
                    "s3" => port.is_some_and(|p| s3::is_running(&dir.join(name), p)),
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

    /// The S3 server's endpoint (`AWS_ENDPOINT`).
    pub fn s3_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3.port)
    }

    /// Where the S3 server keeps the objects of [`S3_BUCKET`] on disk.
    pub fn s3_bucket_dir(&self) -> PathBuf {
        self.dir.join("s3").join("data").join(S3_BUCKET)
    }

    /// `export NAME=value` lines for shells (`cargo xtask dbs env`).
    pub fn env_lines(&self) -> Vec<String> {
        vec![
            format!("export MOLT_TESTBED_DIR={}", self.dir.display()),
            format!("export MOLT_TEST_PG_SOURCE_URL='{}'", self.pg_source_url("postgres")),
            format!("export MOLT_TEST_PG_TARGET_URL='{}'", self.pg_target_url("postgres")),
            format!("export MOLT_TEST_MARIADB_URL='{}'", self.mariadb_url("mysql")),
            format!("export AWS_ENDPOINT={}", self.s3_endpoint()),
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

/// A MariaDB table `kinds` (key `BIGINT UNSIGNED`) with a column of every MariaDB type fetch
/// maps, one row of edge values, one of NULLs and 4999 more (ids 2 to 5000); the edge row is
/// written with `time_zone = '+05:00'`, so its `TIMESTAMP` is `2024-01-01 00:30:00.000001` UTC.
pub const EVERY_MARIADB_TYPE: &str = "
CREATE TABLE kinds (
  id BIGINT UNSIGNED PRIMARY KEY,
  i INT, u INT UNSIGNED, m MEDIUMINT, d DECIMAL(65,30), f FLOAT, g DOUBLE,
  ok BOOL, s VARCHAR(80) CHARACTER SET utf8mb4, t TEXT, l VARCHAR(10) CHARACTER SET latin1,
  dt DATETIME(6), ts TIMESTAMP(6) NULL, day DATE, tm TIME, y YEAR, b BIT(5),
  e ENUM('small','large'), st SET('a','b','c'), j JSON, bl BLOB, bn BINARY(4), uid UUID
);
SET time_zone = '+05:00';
INSERT INTO kinds VALUES
 (18446744073709551615, -2147483648, 4294967295, -8388608, 123456789012345678901234567890.123456789012345678901234567891,
  0.1, 2.2250738585072014e-308, 1, 'tab\\there, new\\nline, back\\\\slash, \"quoted\", 😀', '', 'café',
  '2024-02-29 23:59:59.123456', '2024-01-01 05:30:00.000001', '1000-01-01', '12:34:56', 2155, b'10101',
  'large', 'a,c', '{\"k\": [1, 2.50, \"x\"]}', x'00ff10', x'0102', '123e4567-e89b-12d3-a456-426614174000'),
 (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO kinds (id, s) SELECT seq, CONCAT('row ', seq) FROM seq_2_to_5000;
";

/// A PostgreSQL schema holding every type fetch and verify must carry exactly (numerics at
/// full precision, NaN/±Infinity/-0, time zones, bytea with every byte value, quoting traps,
/// NULL beside the empty string, json, arrays, enums, bit strings, inet) in four tables keyed
/// by int8, uuid, float8 and a composite key.
pub const EVERY_PG_TYPE: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy days', 'überglücklich');
CREATE TABLE every_type (
    id int8 PRIMARY KEY,
    c_bool bool, c_int2 int2, c_int4 int4, c_int8 int8,
    c_numeric numeric, c_numeric_ps numeric(40,20),
    c_float4 float4, c_float8 float8,
    c_text text, c_varchar varchar(30), c_char char(5),
    c_bytea bytea,
    c_date date, c_time time, c_timetz timetz, c_ts timestamp(6), c_tstz timestamptz, c_interval interval,
    c_uuid uuid, c_json json, c_jsonb jsonb,
    c_inet inet, c_cidr cidr, c_bit bit(8), c_varbit varbit(16),
    c_text_arr text[], c_int_arr int4[], c_mood mood, c_mood_arr mood[]
);
CREATE TABLE uuid_keyed (id uuid PRIMARY KEY, v text);
CREATE TABLE float_keyed (id float8 PRIMARY KEY, v int4);
CREATE TABLE composite_keyed (a int4, b text, v text, PRIMARY KEY (a, b));
INSERT INTO every_type VALUES
 (1, true, -32768, -2147483648, -9223372036854775808,
  '-123456789012345678901234567890.123456789012345678901234567890', '12345678901234567890.12345678901234567890',
  'NaN', 'NaN',
  'quote'' "double" ,comma', 'tab	and
newline', 'ab',
  '\x00', '4713-01-01 BC', '00:00:00', '00:00:00+14', '0001-01-01 00:00:00', '1970-01-01 00:00:00+00', '-178000000 years',
  '00000000-0000-0000-0000-000000000000', '{"a": [1, 2.50, null], "b": "\u00e9"}', '{"k": {"n": 1e10}}',
  '0.0.0.0', '10.0.0.0/8', B'00000000', B'',
  ARRAY['', NULL, 'x,y', '"q"', 'back\slash'], ARRAY[NULL, 1, -1]::int4[], 'happy days', ARRAY['sad', 'überglücklich']::mood[]),
 (2, false, 32767, 2147483647, 9223372036854775807,
  '1e-100', '-0.00000000000000000001',
  'Infinity', '-Infinity',
  '\N', 'back\\slash \N \t', '',
  '\xdeadbeef', '294276-12-31', '24:00:00', '23:59:59.999999-12', '294276-12-31 23:59:59.999999', '2026-12-02 05:39:17.123456+05:30', '1 year 2 mons -3 days 04:05:06.789',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '[]', '[]',
  '::1', '2001:db8::/32', B'11111111', B'1010101010101010',
  '{}', '{}', 'sad', '{}'),
 (3, NULL, 0, 0, 0, '0', '0', '-0', '-0', '', '', NULL, '', 'infinity', '12:34:56.789', NULL, 'infinity', '-infinity', '0',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'null', 'null', '192.168.1.1/24', '192.168.0.0/16', B'10000001', NULL,
  ARRAY['ü😀'], ARRAY[0], 'überglücklich', ARRAY[NULL]::mood[]),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, true, 1, 1, 1, '99999999999999999999999999999999999999.5', '0.1', '1.17549435e-38', '5e-324', 'NULL', 'null', 'NULL ',
  NULL, '2000-02-29', '23:59:59.999999', '12:00:00-05:30', '2000-02-29 12:00:00', '2000-02-29 12:00:00-08', '-1 days -00:00:01',
  NULL, '"just a string"', '"just a string"', NULL, NULL, NULL, NULL, ARRAY['NULL'], NULL, NULL, NULL);
-- Every byte value, in one bytea.
INSERT INTO every_type (id, c_bytea, c_float8) SELECT 6, string_agg(set_byte('\x00'::bytea, 0, b), ''::bytea ORDER BY b), 1e308 FROM generate_series(0, 255) b;
INSERT INTO every_type (id, c_text, c_int8) SELECT g, repeat(md5(g::text), g % 7), g::int8 * 1000003 FROM generate_series(7, 3000) g;
INSERT INTO uuid_keyed SELECT md5(g::text)::uuid, 'v' || g FROM generate_series(1, 2000) g;
INSERT INTO float_keyed SELECT g / 7.0, g FROM generate_series(-1000, 1000) g;
INSERT INTO float_keyed VALUES ('NaN', 0), ('Infinity', 1), ('-Infinity', 2);
INSERT INTO composite_keyed SELECT g % 10, 'k' || g, repeat('x', g % 13) FROM generate_series(1, 1500) g;
"#;

/// The tables of [`EVERY_PG_TYPE`] with their key columns, and their row counts.
pub const EVERY_PG_TYPE_TABLES: [(&str, &str, u64); 4] = [
    ("public.every_type", "id", 3000),
    ("public.uuid_keyed", "id", 2000),
    ("public.float_keyed", "id", 2004),
    ("public.composite_keyed", "a, b", 1500),
];

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

/// A PostgreSQL source server of one test's own (`wal_level = logical`), for tests that stop
/// or restart their source; the shared servers must stay up for every other test. Stopped
/// and deleted on drop.
pub struct OwnPg {
    dir: PathBuf,
    port: u16,
}

impl OwnPg {
    /// Initialises and starts a server under the test bed directory (`own/<name>`).
    ///
    /// # Errors
    /// A [`TestbedError`] naming the step and the log to read.
    pub fn start(name: &str) -> Result<OwnPg, TestbedError> {
        let dir = testbed_dir().join("own").join(name);
        fs::create_dir_all(&dir)
            .map_err(|e| TestbedError::io("creating a test's own server directory", &dir, e))?;
        process::make_traversable(&dir)?;
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| TestbedError::io("choosing a free port", &dir, e))?;
        postgres::up(&dir, port, true)?;
        Ok(OwnPg { dir, port })
    }

    /// URL of a database on this server.
    pub fn url(&self, database: &str) -> String {
        pg_url(self.port, database)
    }

    /// A new empty database on this server.
    ///
    /// # Panics
    /// If the server refuses `CREATE DATABASE`.
    pub async fn fresh(&self) -> TestDb {
        let name = unique_name();
        postgres::create_database(&self.url("postgres"), &name).await;
        TestDb { url: self.url(&name), name }
    }

    /// Stops the server (fast shutdown: sessions are terminated, as in a real restart).
    ///
    /// # Errors
    /// A [`TestbedError`] if it would not stop.
    pub fn stop(&self) -> Result<(), TestbedError> {
        postgres::stop(&self.dir)
    }

    /// Starts the server again on the same port.
    ///
    /// # Errors
    /// A [`TestbedError`] naming the step and the log to read.
    pub fn start_again(&self) -> Result<(), TestbedError> {
        postgres::up(&self.dir, self.port, true)
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        let _ = postgres::stop(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A MariaDB server of one test's own, for what must not happen to the shared one (purged
/// binlogs, other settings, a shutdown). Stopped and deleted on drop.
pub struct OwnMariadb {
    dir: PathBuf,
    port: u16,
}

impl OwnMariadb {
    /// Initialises and starts a server under the test bed directory (`own/<name>`), with the
    /// shared server's settings followed by `settings` (`[mysqld]` lines; later ones win, and
    /// `skip-log-bin` turns the binlog off).
    ///
    /// # Errors
    /// A [`TestbedError`] naming the step and the log to read.
    pub fn start(name: &str, settings: &str) -> Result<OwnMariadb, TestbedError> {
        let dir = testbed_dir().join("own").join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| TestbedError::io("choosing a free port", &dir, e))?;
        mariadb::up(&dir, port, settings)?;
        Ok(OwnMariadb { dir, port })
    }

    /// URL of a database on this server.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:{}/{database}", self.port)
    }

    /// A new empty database on this server.
    ///
    /// # Panics
    /// If the server refuses `CREATE DATABASE`.
    pub async fn fresh(&self) -> TestDb {
        let name = unique_name();
        mariadb::create_database(&self.url("mysql"), &name).await;
        TestDb { url: self.url(&name), name }
    }

    /// Stops the server (a clean shutdown, as in a restart) and waits for it to exit.
    ///
    /// # Errors
    /// A [`TestbedError`] if it would not stop.
    pub fn stop(&self) -> Result<(), TestbedError> {
        mariadb::stop(&self.dir)
    }

    /// Starts the server again on the same port, with its data and binlog.
    ///
    /// # Errors
    /// A [`TestbedError`] naming the step and the log to read.
    pub fn start_again(&self) -> Result<(), TestbedError> {
        mariadb::up(&self.dir, self.port, "")
    }
}

impl Drop for OwnMariadb {
    fn drop(&mut self) {
        let _ = mariadb::stop(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}
