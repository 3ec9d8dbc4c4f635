//! Intermediate files in S3 (the test bed's s3rver, a real S3-compatible server): export-only
//! into the bucket then import-only out of it loads identical rows, `--cleanup` removes the
//! objects, an unknown access key fails with a clear error, and no credential reaches the
//! logs.

use std::process::{Command, Output};

use crate::support::{rows, scalar};
use molt_testkit::{EVERY_PG_TYPE, EVERY_PG_TYPE_TABLES, S3_BUCKET, S3_KEY, TestDb, testbed};

/// Runs the fetch binary with the S3 access key id `key_id` (s3rver checks ids, not V4
/// signatures), logging at debug to stdout.
pub(crate) fn fetch_bin(src: &TestDb, dst: &TestDb, key_id: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fetch"))
        .args(["--source", &src.url, "--target", &dst.url, "--allow-tls-mode-disable"])
        .args(["--metrics-listen-addr", "", "--log-file", "stdout", "--logging", "debug"])
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", S3_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT", testbed().s3_endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .unwrap()
}

pub(crate) fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Objects the server holds under `prefix` (s3rver keeps each as a `._S3rver_object` file).
fn objects_under(prefix: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with("._S3rver_object") {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&testbed().s3_bucket_dir().join(prefix), &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_to_s3_then_import_keeps_every_value_and_cleanup_removes_the_objects() {
    let src = crate::support::source_with(EVERY_PG_TYPE).await;
    let dst = testbed().fresh_pg_target().await;
    let prefix = format!("runs/{}", src.name);
    let bucket = format!("s3://{S3_BUCKET}/{prefix}");
    let exported = fetch_bin(
        &src,
        &dst,
        S3_KEY,
        &[
            "--bucket-path",
            &bucket,
            "--mode",
            "export-only",
            "--flush-size",
            "20000",
            "--compression",
            "none",
        ],
    );
    assert!(exported.status.success(), "{}", text(&exported));
    let objects = objects_under(&prefix);
    assert!(objects.len() > 8, "several parts per table and a manifest each: {objects:?}");
    assert!(
        objects.iter().any(|o| o.contains("public.every_type/shard_01_part_00000001.csv")),
        "{objects:?}"
    );
    assert!(objects.iter().any(|o| o.contains("public.every_type/_manifest.json")), "{objects:?}");
    let imported = fetch_bin(
        &src,
        &dst,
        S3_KEY,
        &[
            "--bucket-path",
            &bucket,
            "--mode",
            "import-only",
            "--use-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--cleanup",
        ],
    );
    let log = text(&imported);
    assert!(imported.status.success(), "{log}");
    for (table, key, _) in EVERY_PG_TYPE_TABLES {
        let want = rows(&src.url, table, key).await;
        assert!(!want.is_empty());
        assert_eq!(want, rows(&dst.url, table, key).await, "{table}");
    }
    assert!(objects_under(&prefix).is_empty(), "--cleanup removed every object");
    for l in [text(&exported), log] {
        assert!(!l.contains(S3_KEY), "a credential reached the log:\n{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_data_load_through_s3_with_a_wrong_key_fails_clearly_and_loads_nothing() {
    let src = crate::support::source_with(
        "CREATE TABLE t (id int4 PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 100) g;",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    let bucket = format!("s3://{S3_BUCKET}/runs/{}", src.name);
    let args = [
        "--bucket-path",
        bucket.as_str(),
        "--use-copy",
        "--table-handling",
        "drop-on-target-and-recreate",
    ];
    let bad = fetch_bin(&src, &dst, "AKIDNOTKNOWN", &args);
    let log = text(&bad);
    assert!(!bad.status.success());
    assert!(
        log.contains("s3://molt-test/runs/")
            && log.contains("the bucket cannot be listed; check the credentials")
            && log.contains("InvalidAccessKeyId"),
        "{log}"
    );
    assert!(!log.contains(S3_KEY), "the secret reached the log:\n{log}");
    let n: i64 =
        scalar(&dst.url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").await;
    assert_eq!(n, 0, "the bucket is checked before the target is touched");
    // The same load with the right secret goes through the bucket.
    let good = fetch_bin(&src, &dst, S3_KEY, &args);
    assert!(good.status.success(), "{}", text(&good));
    assert_eq!(rows(&src.url, "t", "id").await, rows(&dst.url, "t", "id").await);
}
