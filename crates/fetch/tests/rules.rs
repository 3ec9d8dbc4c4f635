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

#[test]
fn serial_transformations_rename_exclude_and_re_add_computed_columns() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (src, dst) = rt.block_on(async {
        let src = source_with(
            "CREATE SCHEMA previous_schema; CREATE TABLE previous_schema.moved (id int4 PRIMARY KEY, v text); \
             INSERT INTO previous_schema.moved SELECT g, 'm' || g FROM generate_series(1, 20) g; \
             CREATE TABLE computed (id int8 PRIMARY KEY, col1 int8 NOT NULL, col2 int8 NOT NULL, \
               computed_col int8 NOT NULL GENERATED ALWAYS AS (col1 + col2) STORED, age int4); \
             INSERT INTO computed (id, col1, col2, age) SELECT g, g, 10 * g, 30 FROM generate_series(1, 50) g; \
             CREATE TABLE t (id int4 PRIMARY KEY, age int4, name text); INSERT INTO t VALUES (1, 40, 'a'), (2, NULL, 'b');",
        )
        .await;
        let dst = testbed().fresh_pg_target().await;
        molt_testkit::sql::exec(&dst.url, "CREATE SCHEMA new_schema").await;
        (src, dst)
    });
    let dir = scratch_dir("transforms");
    let rules = write(
        &dir,
        "transforms.json",
        r#"{"transforms":[
            {"id":1,"resource_specifier":{"schema":".*","table":".*"},"column_exclusion_opts":{"add_computed_def":true,"column":"^age$"}},
            {"id":2,"resource_specifier":{"schema":"public","table":"^computed$"},"column_exclusion_opts":{"add_computed_def":true,"column":"^computed_col$"}},
            {"id":3,"resource_specifier":{"schema":"previous_schema"},"schema_rename_opts":{"value":"new_schema"}},
            {"id":4,"resource_specifier":{"schema":"public","table":"^t$"},"table_rename_opts":{"value":"t_renamed"}}]}"#,
    );
    let cfg = config(
        &src.url,
        &dst.url,
        &[
            "--direct-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--transformations-file",
            &rules,
        ],
    )
    .unwrap();
    let (result, lines) =
        molt_log::capture(LogFormat::Json, "debug", || rt.block_on(molt_fetch::run(cfg)));
    let summary = result.expect("fetch");
    let mut tables = summary.tables.clone();
    tables.sort();
    assert_eq!(tables, vec!["new_schema.moved", "public.computed", "public.t_renamed"]);
    assert!(
        lines.iter().any(|l| l.contains(
            "running: ALTER TABLE IF EXISTS \\\"public\\\".\\\"computed\\\" ADD COLUMN \\\"computed_col\\\" bigint NOT NULL GENERATED ALWAYS AS ((col1 + col2)) STORED"
        )),
        "{lines:#?}"
    );
    let not_computed =
        lines.iter().filter(|l| l.contains("add_computed_def does not apply")).count();
    assert_eq!(not_computed, 2, "age is excluded from computed and t, and is computed in neither");
    rt.block_on(async {
        assert_eq!(
            rows(&src.url, "previous_schema.moved", "id").await,
            rows(&dst.url, "new_schema.moved", "id").await
        );
        assert_eq!(
            rows(&src.url, "(SELECT id, name FROM t)", "id").await,
            rows(&dst.url, "t_renamed", "id").await
        );
        assert_eq!(
            rows(&src.url, "(SELECT id, col1, col2, computed_col FROM computed)", "id").await,
            rows(&dst.url, "computed", "id").await,
            "the computed column is computed on the target, and age is gone"
        );
        let generated: String = scalar(
            &dst.url,
            "SELECT attgenerated::text FROM pg_attribute WHERE attrelid = 'computed'::regclass AND attname = 'computed_col'",
        )
        .await;
        assert_eq!(generated, "s");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_merge_into_one_table_with_copy() {
    let src = source_with(
        "CREATE TABLE charges_part1 (id int8 PRIMARY KEY, amount numeric(10,2)); \
         CREATE TABLE charges_part2 (id int8 PRIMARY KEY, amount numeric(10,2)); \
         INSERT INTO charges_part1 SELECT g, g / 4.0 FROM generate_series(1, 100) g; \
         INSERT INTO charges_part2 SELECT g, g / 4.0 FROM generate_series(101, 250) g;",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    molt_testkit::sql::exec(
        &dst.url,
        "CREATE TABLE charges (id int8 PRIMARY KEY, amount numeric(10,2))",
    )
    .await;
    let dir = scratch_dir("merge");
    let rules = write(
        &dir,
        "merge.json",
        r#"{"transforms":[{"id":2,"resource_specifier":{"schema":"public","table":"charges_part.*"},"table_rename_opts":{"value":"charges"}}]}"#,
    );
    let d = dir.join("files");
    let d = d.to_str().unwrap();
    let err = fetch(
        &src.url,
        &dst.url,
        &[
            "--local-path",
            d,
            "--use-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--transformations-file",
            &rules,
        ],
    )
    .await
    .expect_err("a merge cannot recreate its target");
    assert!(format!("{err:#}").contains("merging needs --use-copy"), "{err:#}");
    fetch(&src.url, &dst.url, &["--local-path", d, "--use-copy", "--transformations-file", &rules])
        .await
        .expect("merge");
    let union = "(SELECT * FROM charges_part1 UNION ALL SELECT * FROM charges_part2)";
    assert_eq!(rows(&src.url, union, "id").await, rows(&dst.url, "charges", "id").await);
    let _ = std::fs::remove_dir_all(&dir);
}
