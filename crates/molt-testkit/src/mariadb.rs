//! The MariaDB instance: `mariadb-install-db`, a config file with binlog and GTID settings,
//! `mariadbd` in its own session.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::{self, TestbedError, run, which};
use crate::{TEST_PASSWORD, TEST_USER};

const OS_USER: &str = "mysql";

fn binary(name: &str) -> Result<PathBuf, TestbedError> {
    which(name)
        .or_else(|| Some(Path::new("/usr/sbin").join(name)).filter(|p| p.exists()))
        .ok_or_else(|| TestbedError::Missing {
            what: name.into(),
            reason: "install mariadb-server".into(),
        })
}

fn pid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join("mariadbd.pid")).ok()?.trim().parse().ok()
}

pub(crate) fn is_running(dir: &Path) -> bool {
    // A pid file and socket can outlive a killed server, and the pid can be reused: check
    // that the process really is a MariaDB server.
    pid(dir).is_some_and(|p| {
        fs::read_to_string(format!("/proc/{p}/comm"))
            .is_ok_and(|c| c.trim().starts_with("mariadbd"))
    }) && dir.join("mariadbd.sock").exists()
}

fn config(dir: &Path, port: u16, settings: &str) -> String {
    let user = if process::is_root() { format!("user = {OS_USER}\n") } else { String::new() };
    format!(
        "[mysqld]\n{user}datadir = {d}/data\nport = {port}\nbind-address = 127.0.0.1\n\
         socket = {d}/mariadbd.sock\npid-file = {d}/mariadbd.pid\nlog-error = {d}/error.log\n\
         skip-name-resolve\nserver_id = 1\nlog_bin = {d}/binlog/mariadb-bin\nbinlog_format = ROW\n\
         binlog_row_image = FULL\nbinlog_row_metadata = FULL\ngtid_strict_mode = 1\nlog_slave_updates = 1\n\
         binlog_expire_logs_seconds = 604800\ninnodb_flush_log_at_trx_commit = 2\nsync_binlog = 0\n\
         innodb_buffer_pool_size = 256M\nmax_connections = 300\ncharacter-set-server = utf8mb4\n\
         collation-server = utf8mb4_unicode_ci\ntmpdir = {d}/tmp\n{settings}\n",
        d = dir.display()
    )
}

fn client(dir: &Path) -> Result<Command, TestbedError> {
    let mut c = Command::new(binary("mariadb")?);
    c.arg(format!("--socket={}", dir.join("mariadbd.sock").display())).args(["-uroot", "--batch"]);
    Ok(c)
}

/// Initialises (first time) and starts the server, then makes sure the `molt` user exists.
/// `settings` are lines appended to `[mysqld]`; a later line overrides an earlier one.
pub(crate) fn up(dir: &Path, port: u16, settings: &str) -> Result<(), TestbedError> {
    let cnf = dir.join("my.cnf");
    if !dir.join("data").join("mysql").exists() {
        let _ = fs::remove_dir_all(dir);
        for sub in ["data", "binlog", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p)
                .map_err(|e| TestbedError::io("creating MariaDB directory", &p, e))?;
        }
        fs::write(&cnf, config(dir, port, settings))
            .map_err(|e| TestbedError::io("writing my.cnf", &cnf, e))?;
        process::chown(OS_USER, dir)?;
        let mut install = Command::new(binary("mariadb-install-db")?);
        install
            .arg(format!("--defaults-file={}", cnf.display()))
            .args(["--auth-root-authentication-method=socket", "--skip-test-db"]);
        if process::is_root() {
            install.arg(format!("--user={OS_USER}"));
        }
        run("mariadb-install-db", &mut install)?;
    }
    if !is_running(dir) {
        let log = dir.join("error.log");
        // Its own session, so that a test runner's process-group cleanup leaves it running.
        let mut server = Command::new("setsid");
        server
            .arg(binary("mariadbd")?)
            .arg(format!("--defaults-file={}", cnf.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        server.spawn().map_err(|e| TestbedError::io("starting mariadbd", &cnf, e))?;
        process::wait_until("MariaDB", 60, &log, || {
            is_running(dir)
                && client(dir).is_ok_and(|mut c| run("ping", c.arg("-e").arg("SELECT 1")).is_ok())
        })?;
    }
    let sql = format!(
        "CREATE USER IF NOT EXISTS '{u}'@'127.0.0.1' IDENTIFIED BY '{p}';\
         GRANT ALL PRIVILEGES ON *.* TO '{u}'@'127.0.0.1' WITH GRANT OPTION;\
         CREATE USER IF NOT EXISTS '{u}'@'localhost' IDENTIFIED BY '{p}';\
         GRANT ALL PRIVILEGES ON *.* TO '{u}'@'localhost' WITH GRANT OPTION;",
        u = TEST_USER,
        p = TEST_PASSWORD
    );
    run("creating the MariaDB test user", client(dir)?.arg("-e").arg(sql))?;
    Ok(())
}

pub(crate) fn stop(dir: &Path) -> Result<(), TestbedError> {
    let Some(pid) = pid(dir).filter(|_| is_running(dir)) else { return Ok(()) };
    run("stopping MariaDB", Command::new("kill").args(["-TERM", &pid.to_string()]))?;
    process::wait_until("MariaDB shutdown", 60, &dir.join("error.log"), || !alive(pid))
}

/// Whether process `pid` still runs: it exists and is not a zombie (a server started through
/// `setsid` is reaped by whoever adopted it, which may be never).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_owned()))
        .is_some_and(|state| !state.starts_with('Z'))
}

pub(crate) async fn create_database(admin_url: &str, name: &str) {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_async::Conn::from_url(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test bed ({admin_url}): {e}"));
    conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let _ = conn.disconnect().await;
}
