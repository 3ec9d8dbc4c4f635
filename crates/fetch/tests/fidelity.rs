//! Every type the mapping accepts arrives identical, on every data path.

use crate::support::{fetch, rows, scratch_dir, source_with};
use molt_testkit::{EVERY_PG_TYPE, EVERY_PG_TYPE_TABLES, testbed};

async fn assert_identical(source: &str, target: &str) {
    for (table, key, _) in EVERY_PG_TYPE_TABLES {
        let want = rows(source, table, key).await;
        let got = rows(target, table, key).await;
        assert!(!want.is_empty(), "{table} has rows");
        assert_eq!(want.len(), got.len(), "{table}: row count");
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(w, g, "{table}: row differs");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_copy_keeps_every_value() {
    let src = source_with(EVERY_PG_TYPE).await;
    let dst = testbed().fresh_pg_target().await;
    let summary = fetch(
        &src.url,
        &dst.url,
        &[
            "--direct-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--export-concurrency",
            "3",
        ],
    )
    .await
    .expect("fetch");
    assert_eq!(summary.tables.len(), 4);
    assert!(summary.cdc_cursor.contains('/'), "an LSN cursor: {}", summary.cdc_cursor);
    assert_identical(&src.url, &dst.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_files_with_copy_keep_every_value() {
    let src = source_with(EVERY_PG_TYPE).await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("local-copy");
    let d = dir.to_str().unwrap();
    fetch(
        &src.url,
        &dst.url,
        &[
            "--local-path",
            d,
            "--use-copy",
            "--flush-rows",
            "500",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--cleanup",
        ],
    )
    .await
    .expect("fetch");
    assert_identical(&src.url, &dst.url).await;
    assert!(!dir.join("public.every_type").exists(), "--cleanup removed the files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_only_then_import_only_keeps_every_value() {
    let src = source_with(EVERY_PG_TYPE).await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("export-import");
    let d = dir.to_str().unwrap();
    let exported = fetch(
        &src.url,
        &dst.url,
        &["--local-path", d, "--use-copy", "--mode", "export-only", "--flush-size", "20000"],
    )
    .await
    .expect("export-only");
    assert_eq!(exported.rows.iter().sum::<u64>(), 3000 + 2000 + 2004 + 1500);
    let files = std::fs::read_dir(dir.join("public.every_type")).unwrap().count();
    assert!(files > 4, "--flush-size cut several files, got {files}");
    let before: i64 = crate::support::scalar(
        &dst.url,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(before, 0, "export-only writes nothing to the target");
    let imported = fetch(
        &src.url,
        &dst.url,
        &[
            "--local-path",
            d,
            "--use-copy",
            "--mode",
            "import-only",
            "--table-handling",
            "drop-on-target-and-recreate",
        ],
    )
    .await
    .expect("import-only");
    assert_eq!(imported.rows, exported.rows);
    assert_identical(&src.url, &dst.url).await;
    assert!(dir.join("public.every_type").exists(), "files stay without --cleanup");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_sharding_on_a_text_key_loads_everything() {
    let src = source_with(
        "CREATE TABLE words (w text PRIMARY KEY, n int4); \
         INSERT INTO words SELECT md5(g::text), g FROM generate_series(1, 5000) g; ANALYZE words;",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    fetch(
        &src.url,
        &dst.url,
        &[
            "--direct-copy",
            "--use-stats-based-sharding",
            "--export-concurrency",
            "8",
            "--table-handling",
            "drop-on-target-and-recreate",
        ],
    )
    .await
    .expect("fetch");
    assert_eq!(rows(&src.url, "words", "w").await, rows(&dst.url, "words", "w").await);
}
