//! User rule files: `--filter-path` (rows, with MOLT's unindexed-column warning) and
//! `--type-map-file` (column types on a recreated table).

use molt_log::LogFormat;

use crate::support::{config, fetch, rows, scalar, scratch_dir, source_with};
use molt_testkit::testbed;

const FILTERED: &str = "CREATE TABLE filtered (id int8 PRIMARY KEY, v int4, w text); \
    INSERT INTO filtered SELECT g, g, 'w' || g FROM generate_series(1, 1000) g; \
    CREATE TABLE by_key (id int4 PRIMARY KEY, s text); INSERT INTO by_key SELECT g, 's' FROM generate_series(1, 100) g; \
    CREATE TABLE untouched (id int4 PRIMARY KEY); INSERT INTO untouched SELECT generate_series(1, 30);";

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn serial_row_filters_load_a_subset_and_warn_about_unindexed_columns() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (src, dst) =
        rt.block_on(async { (source_with(FILTERED).await, testbed().fresh_pg_target().await) });
    let dir = scratch_dir("filters");
    let filters = write(
        &dir,
        "filters.json",
        r#"{"filters":[{"resource_specifier":{"schema":"public","table":"filtered"},"expr":"v > 100"},
                       {"resource_specifier":{"schema":"public","table":"by_key"},"expr":"id <= 10"}]}"#,
    );
    for path in [vec!["--direct-copy"], vec!["--local-path", dir.to_str().unwrap(), "--use-copy"]] {
        let mut extra = path.clone();
        extra.extend([
            "--table-handling",
            "drop-on-target-and-recreate",
            "--filter-path",
            &filters,
        ]);
        let cfg = config(&src.url, &dst.url, &extra).unwrap();
        let (result, lines) =
            molt_log::capture(LogFormat::Json, "info", || rt.block_on(molt_fetch::run(cfg)));
        let summary = result.expect("fetch");
        assert_eq!(summary.rows, vec![10, 900, 30], "{:?}", summary.tables);
        let warnings: Vec<&String> =
            lines.iter().filter(|l| l.contains("which is not indexed")).collect();
        assert_eq!(warnings.len(), 1, "{lines:#?}");
        assert!(
            warnings[0].contains("filter expression 'v > 100' contains column 'v' which is not indexed. This may lead to performance issues.")
                && warnings[0].contains("\"level\":\"warn\""),
            "{}",
            warnings[0]
        );
        rt.block_on(async {
            let sub = "(SELECT * FROM filtered WHERE v > 100)";
            assert_eq!(rows(&src.url, sub, "id").await, rows(&dst.url, "filtered", "id").await);
            let n: i64 = scalar(&dst.url, "SELECT count(*) FROM by_key").await;
            assert_eq!(n, 10);
            let n: i64 = scalar(&dst.url, "SELECT count(*) FROM untouched").await;
            assert_eq!(n, 30, "tables without a filter load whole");
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_type_map_file_sets_column_types_of_recreated_tables() {
    let src = source_with("CREATE TABLE t1 (id int4 PRIMARY KEY, small int4, name text); INSERT INTO t1 VALUES (1, 7, 'a');").await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("type-map");
    let map = write(
        &dir,
        "types.json",
        r#"[{"table":"public.t1","column_type_map":[{"column":"*","source_type":"int","crdb_type":"INT2"},
                                                      {"column":"name","source_type":"text","crdb_type":"varchar(20)"}]}]"#,
    );
    fetch(
        &src.url,
        &dst.url,
        &[
            "--direct-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--type-map-file",
            &map,
        ],
    )
    .await
    .expect("fetch");
    let types: String = scalar(
        &dst.url,
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't1'::regclass AND attnum > 0",
    )
    .await;
    assert_eq!(types, "id smallint, small smallint, name character varying(20)");
    assert_eq!(rows(&src.url, "t1", "id").await, rows(&dst.url, "t1", "id").await);
    let _ = std::fs::remove_dir_all(&dir);
}
