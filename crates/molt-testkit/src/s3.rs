//! The S3-compatible server: `s3rver` from the npm registry, a real HTTP server speaking the
//! S3 protocol (signature V4 checked, multipart uploads, objects kept on disk), run by Node.js
//! in its own session with one bucket.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{self, TestbedError, run, which};

/// The package the server comes from, pinned.
const PACKAGE: &str = "s3rver@3.7.1";
/// The bucket the server creates at start.
pub const BUCKET: &str = "molt-test";
/// s3rver's fixed credentials (access key id and secret are the same word).
pub const KEY: &str = "S3RVER";

fn bin(dir: &Path) -> PathBuf {
    dir.join("node_modules").join(".bin").join("s3rver")
}

fn pid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join("s3rver.pid")).ok()?.trim().parse().ok()
}

/// Whether the server answers an HTTP request on `port`.
fn answers(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

pub(crate) fn is_running(dir: &Path, port: u16) -> bool {
    pid(dir).is_some_and(|p| {
        fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "node")
    }) && answers(port)
}

/// Installs (first time) and starts the server.
pub(crate) fn up(dir: &Path, port: u16) -> Result<(), TestbedError> {
    if !bin(dir).exists() {
        fs::create_dir_all(dir)
            .map_err(|e| TestbedError::io("creating the S3 directory", dir, e))?;
        if which("npm").is_none() {
            if !process::is_root() || which("apt-get").is_none() {
                return Err(TestbedError::Missing {
                    what: "npm".into(),
                    reason: "install Node.js and npm (apt-get install nodejs npm)".into(),
                });
            }
            run("apt-get update", Command::new("apt-get").args(["update", "-qq"]))?;
            run(
                "installing Node.js",
                Command::new("apt-get").env("DEBIAN_FRONTEND", "noninteractive").args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "nodejs",
                    "npm",
                ]),
            )?;
        }
        run(
            "installing s3rver from the npm registry",
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                .arg(dir)
                .arg(PACKAGE),
        )?;
    }
    if is_running(dir, port) {
        return Ok(());
    }
    let data = dir.join("data");
    fs::create_dir_all(&data)
        .map_err(|e| TestbedError::io("creating the S3 data directory", &data, e))?;
    let log = dir.join("s3rver.log");
    let out =
        fs::File::create(&log).map_err(|e| TestbedError::io("creating the S3 log", &log, e))?;
    let err = out.try_clone().map_err(|e| TestbedError::io("creating the S3 log", &log, e))?;
    // Its own session, so that a test runner's process-group cleanup leaves it running.
    let child = Command::new("setsid")
        .arg(bin(dir))
        .arg("--directory")
        .arg(&data)
        .args(["--address", "127.0.0.1", "--port", &port.to_string(), "--configure-bucket", BUCKET])
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| TestbedError::io("starting s3rver", dir, e))?;
    let pid_file = dir.join("s3rver.pid");
    fs::write(&pid_file, child.id().to_string())
        .map_err(|e| TestbedError::io("writing the S3 pid file", &pid_file, e))?;
    process::wait_until("s3rver", 60, &log, || is_running(dir, port))
}

pub(crate) fn stop(dir: &Path, port: u16) -> Result<(), TestbedError> {
    let Some(pid) = pid(dir).filter(|_| is_running(dir, port)) else { return Ok(()) };
    run("stopping s3rver", Command::new("kill").args(["-TERM", &pid.to_string()]))?;
    process::wait_until("s3rver shutdown", 30, &dir.join("s3rver.log"), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    })
}
