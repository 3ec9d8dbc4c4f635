//! Running server commands: as the right OS user, with a lock, with errors that say what to
//! look at.

use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why the test bed could not be brought up or down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestbedError {
    /// A file-system step failed.
    #[error("{what} ({path})")]
    Io {
        /// The step.
        what: String,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A command exited with an error.
    #[error("{what} failed: `{command}` exited with {status}: {output}")]
    Command {
        /// The step.
        what: String,
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// The last lines it printed.
        output: String,
    },
    /// A server did not come up in time.
    #[error("{what} did not become ready within {seconds}s; see {log}")]
    Timeout {
        /// The server.
        what: String,
        /// How long we waited.
        seconds: u64,
        /// Its log file.
        log: PathBuf,
    },
    /// A server binary is missing and cannot be installed.
    #[error("{what} is not installed and could not be installed: {reason}")]
    Missing {
        /// The binary.
        what: String,
        /// Why it could not be installed.
        reason: String,
    },
}

impl TestbedError {
    pub(crate) fn io(what: &str, path: &Path, source: std::io::Error) -> Self {
        TestbedError::Io { what: what.to_owned(), path: path.to_owned(), source }
    }
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Builds a command that runs as `user` when we are root, as ourselves otherwise.
pub(crate) fn command_as(user: &str, program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs a command to completion; a non-zero exit becomes an error with its output.
pub(crate) fn run(what: &str, cmd: &mut Command) -> Result<String, TestbedError> {
    let line = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestbedError::io(&format!("{what}: starting {line}"), Path::new("."), e))?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        let tail: Vec<&str> = text.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(TestbedError::Command {
            what: what.to_owned(),
            command: line,
            status: out.status.to_string(),
            output: tail.join(" | "),
        })
    }
}

/// Lets the server users walk into the test bed directory.
pub(crate) fn make_traversable(dir: &Path) -> Result<(), TestbedError> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| TestbedError::io("setting permissions", dir, e))
}

/// Hands a directory to an OS user (as root only).
pub(crate) fn chown(user: &str, path: &Path) -> Result<(), TestbedError> {
    if is_root() {
        run("changing ownership", Command::new("chown").args(["-R", user]).arg(path))?;
    }
    Ok(())
}

/// Takes the test bed's exclusive lock; released when the file is dropped.
pub(crate) fn lock(dir: &Path) -> Result<File, TestbedError> {
    let path = dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| TestbedError::io("opening the lock file", &path, e))?;
    file.lock().map_err(|e| TestbedError::io("locking the test bed", &path, e))?;
    Ok(file)
}

pub(crate) fn read_ports(dir: &Path) -> Vec<(String, u16)> {
    fs::read_to_string(dir.join("ports"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (n, p) = l.split_once('=')?;
            Some((n.trim().to_owned(), p.trim().parse().ok()?))
        })
        .collect()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The ports of each instance: as recorded, or chosen now (the default if free, else the next
/// free one) and recorded.
pub(crate) fn ports(
    dir: &Path,
    defaults: &[(&str, u16)],
) -> Result<Vec<(String, u16)>, TestbedError> {
    let mut known = read_ports(dir);
    let mut changed = false;
    for (name, default) in defaults {
        if known.iter().any(|(n, _)| n == name) {
            continue;
        }
        let mut port = *default;
        while !port_is_free(port) || known.iter().any(|(_, p)| *p == port) {
            port = port.checked_add(1).ok_or_else(|| TestbedError::Missing {
                what: "a free port".into(),
                reason: "none found".into(),
            })?;
        }
        known.push(((*name).to_owned(), port));
        changed = true;
    }
    if changed {
        let text: String = known.iter().map(|(n, p)| format!("{n}={p}\n")).collect();
        let path = dir.join("ports");
        fs::write(&path, text).map_err(|e| TestbedError::io("recording ports", &path, e))?;
    }
    Ok(known)
}

/// The newest installed PostgreSQL's binary directory (`MOLT_PG_BINDIR` overrides).
pub(crate) fn pg_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MOLT_PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join(program)).find(|p| p.is_file())
    })
}

/// Installs Debian's PostgreSQL and MariaDB packages if their binaries are missing.
pub(crate) fn install_missing() -> Result<(), TestbedError> {
    let mut packages = Vec::new();
    if pg_bindir().is_none() {
        packages.push("postgresql");
    }
    if which("mariadbd").is_none() && !Path::new("/usr/sbin/mariadbd").exists() {
        packages.extend(["mariadb-server", "mariadb-client"]);
    }
    if packages.is_empty() {
        return Ok(());
    }
    if !is_root() || which("apt-get").is_none() {
        return Err(TestbedError::Missing {
            what: packages.join(", "),
            reason: "installing needs root and apt-get; install them and run again".into(),
        });
    }
    // Debian would otherwise create and start a `main` cluster on port 5432.
    let conf = Path::new("/etc/postgresql-common/createcluster.d");
    if fs::create_dir_all(conf).is_ok() {
        let _ = fs::write(conf.join("molt-testbed.conf"), "create_main_cluster = false\n");
    }
    run("apt-get update", Command::new("apt-get").args(["update", "-qq"]))?;
    run(
        "installing database servers",
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&packages),
    )?;
    Ok(())
}

/// Polls `ready` every 100 ms for up to `seconds`.
pub(crate) fn wait_until(
    what: &str,
    seconds: u64,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<(), TestbedError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(TestbedError::Timeout { what: what.to_owned(), seconds, log: log.to_owned() })
}
