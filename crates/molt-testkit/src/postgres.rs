//! PostgreSQL instances: `initdb`, configuration, `pg_ctl start|stop`.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::process::{self, TestbedError, command_as, pg_bindir, run};
use crate::{TEST_PASSWORD, TEST_USER};

const OS_USER: &str = "postgres";

fn bin(name: &str) -> Result<std::path::PathBuf, TestbedError> {
    pg_bindir().map(|d| d.join(name)).ok_or_else(|| TestbedError::Missing {
        what: "PostgreSQL".into(),
        reason: "no /usr/lib/postgresql/*/bin/initdb (set MOLT_PG_BINDIR)".into(),
    })
}

fn ensure_os_user() -> Result<(), TestbedError> {
    if process::is_root()
        && run("looking up the postgres user", Command::new("id").arg(OS_USER)).is_err()
    {
        run(
            "creating the postgres user",
            Command::new("useradd").args([
                "--system",
                "--home-dir",
                "/var/lib/postgresql",
                "--shell",
                "/bin/sh",
                OS_USER,
            ]),
        )?;
    }
    Ok(())
}

pub(crate) fn is_running(dir: &Path) -> bool {
    let data = dir.join("data");
    let Ok(pg_ctl) = bin("pg_ctl") else { return false };
    data.join("postmaster.pid").exists()
        && command_as(OS_USER, &pg_ctl)
            .arg("status")
            .arg("-D")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Initialises (first time) and starts one cluster.
pub(crate) fn up(dir: &Path, port: u16, logical: bool) -> Result<(), TestbedError> {
    ensure_os_user()?;
    let data = dir.join("data");
    if !data.join("PG_VERSION").exists() {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(&data)
            .map_err(|e| TestbedError::io("creating data directory", &data, e))?;
        let pwfile = dir.join("pwfile");
        fs::write(&pwfile, format!("{TEST_PASSWORD}\n"))
            .map_err(|e| TestbedError::io("writing password file", &pwfile, e))?;
        process::chown(OS_USER, dir)?;
        run(
            "initdb",
            command_as(OS_USER, &bin("initdb")?)
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    TEST_USER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
        )?;
        let mut conf = format!(
            "\n# molt test bed\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             max_connections = 300\nshared_buffers = 128MB\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nlog_min_messages = warning\nidle_in_transaction_session_timeout = 0\n",
            dir.display()
        );
        if logical {
            conf.push_str(
                "wal_level = logical\nmax_replication_slots = 64\nmax_wal_senders = 64\n",
            );
        }
        let path = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&path)
            .map_err(|e| TestbedError::io("reading postgresql.conf", &path, e))?;
        text.push_str(&conf);
        fs::write(&path, text)
            .map_err(|e| TestbedError::io("writing postgresql.conf", &path, e))?;
        process::chown(OS_USER, dir)?;
    }
    if is_running(dir) {
        return Ok(());
    }
    let log = dir.join("server.log");
    run(
        "starting PostgreSQL",
        command_as(OS_USER, &bin("pg_ctl")?)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .map_err(|e| match e {
        TestbedError::Command { what, command, status, output } => TestbedError::Command {
            what,
            command,
            status,
            output: format!("{output} (server log: {})", log.display()),
        },
        other => other,
    })?;
    Ok(())
}

pub(crate) fn stop(dir: &Path) -> Result<(), TestbedError> {
    if !is_running(dir) {
        return Ok(());
    }
    run(
        "stopping PostgreSQL",
        command_as(OS_USER, &bin("pg_ctl")?)
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]),
    )?;
    Ok(())
}

pub(crate) async fn create_database(admin_url: &str, name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test bed ({admin_url}): {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
}
