//! Interrupted loads resume exactly: SIGKILL mid-export and mid-import, then `--fetch-id`;
//! a table the target refuses gets a continuation token, listed by `fetch tokens list`, and
//! resumes from its file once fixed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{fetch, rows, scalar, scratch_dir, source_with};
use molt_testkit::sql::exec;
use molt_testkit::{TestDb, testbed};

const ROWS: i64 = 120_000;

async fn big_source() -> TestDb {
    source_with(&format!(
        "CREATE TABLE big (id int8 PRIMARY KEY, v text NOT NULL, n numeric(12,2)); \
         INSERT INTO big SELECT g, md5(g::text) || repeat('x', 40), g / 7.0 FROM generate_series(1, {ROWS}) g; \
         CREATE TABLE small (id int4 PRIMARY KEY, s text); INSERT INTO small SELECT g, 's' || g FROM generate_series(1, 5000) g;"
    ))
    .await
}

pub(crate) fn load_args(dir: &Path) -> Vec<String> {
    [
        "--local-path",
        dir.to_str().unwrap(),
        "--use-copy",
        "--flush-rows",
        "2000",
        "--export-concurrency",
        "2",
        "--table-handling",
        "drop-on-target-and-recreate",
        "--ignore-replication-check",
        "--non-interactive",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

pub(crate) fn spawn_fetch(src: &TestDb, dst: &TestDb, extra: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fetch"))
        .args(["--source", &src.url, "--target", &dst.url, "--allow-tls-mode-disable"])
        .args(["--metrics-listen-addr", "", "--log-file", "stdout"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls (bounded) until `ready` holds, then kills the child with SIGKILL.
pub(crate) async fn kill_when<F: AsyncFnMut() -> bool>(mut child: Child, mut ready: F) {
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    for _ in 0..24_000 {
        tick.tick().await;
        if ready().await {
            child.kill().unwrap();
            child.wait().unwrap();
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("fetch ended ({status}) before the kill point");
        }
    }
    panic!("the kill point was never reached");
}

pub(crate) async fn files_loaded(dst: &TestDb) -> i64 {
    let exists: bool =
        scalar(&dst.url, "SELECT to_regclass('public._molt_fetch_files') IS NOT NULL").await;
    if !exists {
        return 0;
    }
    scalar(&dst.url, "SELECT count(*) FROM public._molt_fetch_files").await
}

pub(crate) async fn the_fetch_id(dst: &TestDb) -> String {
    scalar(&dst.url, "SELECT id::text FROM public._molt_fetch_status").await
}

async fn assert_same(src: &TestDb, dst: &TestDb) {
    for (t, key) in [("big", "id"), ("small", "id")] {
        let want = rows(&src.url, t, key).await;
        let got = rows(&dst.url, t, key).await;
        assert_eq!(want.len(), got.len(), "{t}: row count");
        assert!(want == got, "{t}: rows differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_import_resumes_with_every_row_once() {
    kill_during_import_then_resume("kill-import", 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_between_export_and_import_resumes_with_every_row_once() {
    kill_during_import_then_resume("kill-after-export", 0).await;
}

/// Kills fetch once `big`'s export is complete and at least `files` of its files loaded, then
/// resumes with `--fetch-id`.
async fn kill_during_import_then_resume(name: &str, files: i64) {
    let (src, dst) = (big_source().await, testbed().fresh_pg_target().await);
    let dir = scratch_dir(name);
    let args = load_args(&dir);
    let child = spawn_fetch(&src, &dst, &args);
    let manifest = dir.join("public.big").join("_manifest.json");
    kill_when(child, async || manifest.exists() && files_loaded(&dst).await >= files).await;
    let before = files_loaded(&dst).await;
    let id = the_fetch_id(&dst).await;
    let loaded: i64 = scalar(&dst.url, "SELECT count(*) FROM big").await;
    assert!(loaded < ROWS, "killed before the end: {loaded} rows");
    let resume: Vec<String> =
        args.iter().cloned().chain(["--fetch-id".into(), id.clone()]).collect();
    let argv: Vec<&str> = resume.iter().map(String::as_str).collect();
    let summary = fetch(&src.url, &dst.url, &argv).await.expect("resumed");
    assert_eq!(summary.fetch_id, id);
    assert_eq!(summary.rows.iter().sum::<u64>(), ROWS as u64 + 5000);
    assert_same(&src, &dst).await;
    // Every file is recorded once: none was loaded a second time.
    let (files, distinct): (i64, i64) = (
        files_loaded(&dst).await,
        scalar(
            &dst.url,
            "SELECT count(DISTINCT (table_name, file_name)) FROM public._molt_fetch_files",
        )
        .await,
    );
    assert_eq!(files, distinct);
    assert!(files >= before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_export_resumes_by_exporting_that_table_again() {
    let (src, dst) = (big_source().await, testbed().fresh_pg_target().await);
    let dir = scratch_dir("kill-export");
    let mut args = load_args(&dir);
    args.extend(["--table-concurrency".to_owned(), "1".to_owned()]);
    let child = spawn_fetch(&src, &dst, &args);
    let big_dir = dir.join("public.big");
    kill_when(child, async || {
        std::fs::read_dir(&big_dir).is_ok_and(|d| d.count() >= 4)
            && !big_dir.join("_manifest.json").exists()
    })
    .await;
    let id = the_fetch_id(&dst).await;
    let resume: Vec<String> = args.iter().cloned().chain(["--fetch-id".into(), id]).collect();
    let argv: Vec<&str> = resume.iter().map(String::as_str).collect();
    fetch(&src.url, &dst.url, &argv).await.expect("resumed");
    assert_same(&src, &dst).await;
    assert!(big_dir.join("_manifest.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_file_mints_a_token_that_resumes_the_table_after_the_fix() {
    let src = big_source().await;
    exec(&src.url, "UPDATE big SET v = 'refused' WHERE id = 90001").await;
    let dst = testbed().fresh_pg_target().await;
    // The target is stricter than the source (a CHECK only there is not a failable mismatch).
    exec(
        &dst.url,
        "CREATE TABLE big (id int8 PRIMARY KEY, v text NOT NULL CHECK (v <> 'refused'), n numeric(12,2)); \
         CREATE TABLE small (id int4 PRIMARY KEY, s text);",
    )
    .await;
    let dir = scratch_dir("token");
    let d = dir.to_str().unwrap();
    let first = [
        "--local-path",
        d,
        "--use-copy",
        "--flush-rows",
        "10000",
        "--export-concurrency",
        "1",
        "--ignore-replication-check",
    ];
    let err = fetch(&src.url, &dst.url, &first).await.expect_err("the CHECK refuses one row");
    assert!(format!("{err:#}").contains("big"), "{err:#}");
    let (token, fetch_id, file): (String, String, String) = {
        let t: Vec<String> = rows(
            &dst.url,
            "(SELECT id, fetch_id, file_name, sql_state, stage FROM public._molt_fetch_exceptions)",
            "id",
        )
        .await;
        assert_eq!(t.len(), 1, "one token, for the failed table: {t:?}");
        let id: String =
            scalar(&dst.url, "SELECT id::text FROM public._molt_fetch_exceptions").await;
        let fid: String =
            scalar(&dst.url, "SELECT fetch_id::text FROM public._molt_fetch_exceptions").await;
        let f: String = scalar(&dst.url, "SELECT file_name || ' ' || sql_state || ' ' || stage FROM public._molt_fetch_exceptions").await;
        (id, fid, f)
    };
    // Rows 90001.. are in the tenth file of 10,000 rows: the first nine loaded.
    assert_eq!(file, "shard_01_part_00000010.csv 23514 data_load");
    let small_done: i64 = scalar(&dst.url, "SELECT count(*) FROM small").await;
    assert_eq!(small_done, 5000, "the other table loaded");
    // `fetch tokens list` shows it.
    let out = Command::new(env!("CARGO_BIN_EXE_fetch"))
        .args(["tokens", "list", "--conn-string", &dst.url, "-n", "5"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed} {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        listed.contains(&token)
            && listed.contains("public.big")
            && listed.ends_with("Continuation Tokens.\n"),
        "{listed}"
    );
    // Fix the target, resume that token only.
    exec(&dst.url, "ALTER TABLE big DROP CONSTRAINT big_v_check").await;
    let resume = [
        &first[..],
        &["--fetch-id", &fetch_id, "--continuation-token", &token, "--non-interactive"],
    ]
    .concat();
    let summary = fetch(&src.url, &dst.url, &resume).await.expect("resumed");
    assert_eq!(summary.tables, vec!["public.big".to_owned()]);
    assert_same(&src, &dst).await;
    let left: i64 = scalar(&dst.url, "SELECT count(*) FROM public._molt_fetch_exceptions").await;
    assert_eq!(left, 0, "the token is cleared once its table loaded");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_fetch_id_says_where_to_look() {
    let (src, dst) = (big_source().await, testbed().fresh_pg_target().await);
    let dir = scratch_dir("unknown-id");
    let mut args = load_args(&dir);
    args.extend(["--fetch-id".to_owned(), "2f1b0000-0000-4000-8000-000000000000".to_owned()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = fetch(&src.url, &dst.url, &argv).await.expect_err("unknown");
    assert!(format!("{err:#}").contains("tokens list"), "{err:#}");
    let n: i64 = scalar(&dst.url, "SELECT count(*) FROM pg_tables WHERE tablename = 'big'").await;
    assert_eq!(n, 0, "nothing was dropped or loaded");
}
