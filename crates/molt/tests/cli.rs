//! The `molt` binary as a user runs it.

use std::process::Command;

use molt_testkit::testbed;

fn molt(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_molt")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn escape_password_prints_molts_encoding() {
    let (code, stdout, _) = molt(&["escape-password", "--password", "a$52&"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, "a%2452%26\n");
    let (code, _, stderr) = molt(&["escape-password"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--password"), "{stderr}");
}

#[test]
fn insecure_tls_needs_the_flag() {
    let bed = testbed();
    let src = bed.pg_source_url("postgres");
    let dst = bed.pg_target_url("postgres");
    let (code, stdout, stderr) =
        molt(&["fetch", "--source", &src, "--target", &dst, "--direct-copy"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--allow-tls-mode-disable"), "{stderr}");
    // The fatal error is also the last JSON line on stdout.
    let last = stdout.lines().last().unwrap();
    assert!(
        last.contains("\"level\":\"error\"") && last.contains("--allow-tls-mode-disable"),
        "{last}"
    );
    assert!(!stdout.contains(":molt@"), "password leaked: {stdout}");
}

#[test]
fn wrong_password_is_one_clear_line() {
    let bed = testbed();
    let src = format!(
        "postgres://molt:not-the-password@127.0.0.1:{}/postgres?sslmode=disable",
        bed.pg_source.port
    );
    let dst = bed.pg_target_url("postgres");
    let (code, stdout, stderr) = molt(&[
        "fetch",
        "--source",
        &src,
        "--target",
        &dst,
        "--allow-tls-mode-disable",
        "--direct-copy",
    ]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{}", bed.pg_source.port)), "{stderr}");
    assert!(stderr.contains("check the user name and password"), "{stderr}");
    assert!(!stderr.contains("not-the-password") && !stdout.contains("not-the-password"));
}

#[test]
fn preflight_reads_the_source_catalog() {
    let bed = testbed();
    let rt = tokio_runtime();
    let src = rt.block_on(bed.fresh_pg_source());
    let dst = bed.pg_target_url("postgres");
    let run = |filter: &str| {
        molt(&[
            "fetch",
            "--source",
            &src.url,
            "--target",
            &dst,
            "--allow-tls-mode-disable",
            "--direct-copy",
            "--table-filter",
            filter,
        ])
    };
    // An empty database: the filter matches nothing, and the error says so.
    let (code, _, stderr) = run(".*");
    assert_eq!(code, 1);
    assert!(stderr.contains("no tables on the source match"), "{stderr}");
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}
