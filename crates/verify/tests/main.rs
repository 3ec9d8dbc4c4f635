//! verify against the real test bed: identical data verifies clean, and every injected kind of
//! difference is reported exactly, with counts.

use clap::Parser as _;
use molt_testkit::sql::exec;
use molt_testkit::{EVERY_PG_TYPE, EVERY_PG_TYPE_TABLES, TestDb, testbed};
use molt_verify::{Report, VerifyArgs, rows::Counts};

mod definitions;
mod logs;
mod mysql;
mod pairs;

/// A source and a target both holding `sql`.
async fn pair(sql: &str) -> (TestDb, TestDb) {
    let (s, t) = (testbed().fresh_pg_source().await, testbed().fresh_pg_target().await);
    exec(&s.url, sql).await;
    exec(&t.url, sql).await;
    (s, t)
}

async fn verify(s: &TestDb, t: &TestDb, extra: &[&str]) -> Report {
    let mut argv =
        vec!["verify", "--source", &s.url, "--target", &t.url, "--allow-tls-mode-disable"];
    argv.extend_from_slice(extra);
    molt_verify::run_args(VerifyArgs::try_parse_from(argv).unwrap()).await.expect("verify runs")
}

fn counts(r: &Report, table: &str) -> Counts {
    r.tables
        .iter()
        .find(|(n, _)| n == table)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("{table} verified: {r:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_data_of_every_type_verifies_clean() {
    let (s, t) = pair(EVERY_PG_TYPE).await;
    for splits in ["1", "4"] {
        let r = verify(&s, &t, &["--table-splits", splits, "--row-batch-size", "333"]).await;
        assert!(r.clean(), "splits {splits}: {r:?}");
        for (table, _, n) in EVERY_PG_TYPE_TABLES {
            let c = counts(&r, table);
            assert_eq!((c.truth_rows, c.success), (n, n), "{table}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_edited_and_added_rows_are_counted() {
    let (s, t) = pair("CREATE TABLE employees (id int8 PRIMARY KEY, name text, salary numeric(12,2)); \
                       INSERT INTO employees SELECT g, 'e' || g, g * 1.5 FROM generate_series(1, 5000) g;")
        .await;
    exec(&t.url, "DELETE FROM employees WHERE id IN (10, 4000); UPDATE employees SET name = 'changed' WHERE id = 2500; \
                  INSERT INTO employees VALUES (6000, 'x', 1), (0, 'y', 2);")
        .await;
    let r = verify(&s, &t, &["--table-splits", "3", "--row-batch-size", "700"]).await;
    let c = counts(&r, "public.employees");
    assert_eq!(
        (c.truth_rows, c.success, c.missing, c.mismatch, c.extraneous),
        (5000, 4997, 2, 1, 2)
    );
    assert!(!r.clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_type_family_difference_is_found_and_equal_meanings_are_not() {
    let setup = "CREATE TABLE fam (id int4 PRIMARY KEY, n numeric(20,6), f float8, ts timestamp(6), tz timestamptz, \
                 j jsonb, a int4[], t text, b bytea, u uuid, bo bool, i interval, bi bit(4)); \
                 INSERT INTO fam SELECT g, g * 1.25, g / 3.0, '2020-01-01'::timestamp + g * interval '1 second', \
                 '2020-01-01 00:00:00+00'::timestamptz + g * interval '1 hour', jsonb_build_object('k', g), ARRAY[g, NULL], \
                 't' || g, decode('00ff', 'hex'), md5(g::text)::uuid, g % 2 = 0, g * interval '1 minute', B'1010' \
                 FROM generate_series(1, 100) g;";
    let (s, t) = pair(setup).await;
    // One change per family in its own row; plus NULL vs '', -0 vs 0, a trailing space and 1 µs.
    exec(&t.url, "UPDATE fam SET n = n + 0.000001 WHERE id = 1; UPDATE fam SET f = f * 1.0000001 WHERE id = 2; \
                  UPDATE fam SET ts = ts + interval '1 microsecond' WHERE id = 3; UPDATE fam SET tz = tz + interval '1 hour' WHERE id = 4; \
                  UPDATE fam SET j = '{\"k\": \"5\"}' WHERE id = 5; UPDATE fam SET a = ARRAY[6, 0] WHERE id = 6; \
                  UPDATE fam SET t = 't7 ' WHERE id = 7; UPDATE fam SET b = decode('00fe', 'hex') WHERE id = 8; \
                  UPDATE fam SET u = md5('x')::uuid WHERE id = 9; UPDATE fam SET bo = NOT bo WHERE id = 10; \
                  UPDATE fam SET i = i + interval '1 second' WHERE id = 11; UPDATE fam SET bi = B'1011' WHERE id = 12;")
        .await;
    exec(&s.url, "UPDATE fam SET t = NULL WHERE id = 13; UPDATE fam SET f = 0 WHERE id = 14;")
        .await;
    exec(&t.url, "UPDATE fam SET t = '' WHERE id = 13; UPDATE fam SET f = '-0' WHERE id = 14;")
        .await;
    // Same meaning, other spelling: not a difference.
    exec(&t.url, "UPDATE fam SET j = '{\"k\":   15}' WHERE id = 15;").await;
    let r = verify(&s, &t, &[]).await;
    let c = counts(&r, "public.fam");
    assert_eq!(
        (c.truth_rows, c.success, c.mismatch, c.missing, c.extraneous),
        (100, 86, 14, 0, 0),
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn numerics_compare_by_value_across_scales() {
    let s = testbed().fresh_pg_source().await;
    let t = testbed().fresh_pg_target().await;
    exec(&s.url, "CREATE TABLE m (id int4 PRIMARY KEY, v numeric(10,2), tz timestamptz); INSERT INTO m VALUES (1, 1.50, '2020-01-01 05:00:00+05');").await;
    exec(&t.url, "CREATE TABLE m (id int4 PRIMARY KEY, v numeric(20,6), tz timestamptz); INSERT INTO m VALUES (1, 1.5, '2020-01-01 00:00:00+00');").await;
    let r = verify(&s, &t, &[]).await;
    assert!(r.clean(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_table_and_changed_column_type_are_reported() {
    let (s, t) = pair(
        "CREATE TABLE kept (id int4 PRIMARY KEY, v int4); INSERT INTO kept VALUES (1, 1), (2, 2); \
                       CREATE TABLE gone (id int4 PRIMARY KEY); CREATE TABLE nopk (v int4);",
    )
    .await;
    exec(&t.url, "DROP TABLE gone; ALTER TABLE kept ALTER COLUMN v TYPE text; UPDATE kept SET v = 'two' WHERE id = 2; CREATE TABLE extra (id int4 PRIMARY KEY);").await;
    let r = verify(&s, &t, &[]).await;
    assert_eq!(r.missing_tables, vec!["public.gone"]);
    assert_eq!(r.extraneous_tables, vec!["public.extra"]);
    assert_eq!(r.uncomparable_tables, vec!["public.nopk"]);
    let c = counts(&r, "public.kept");
    assert_eq!(
        (c.success, c.conditional_success, c.column_mismatch),
        (0, 2, 1),
        "the retyped column is uncomparable, in row 1 (1 and '1') too: {c:?}"
    );
    assert!(!r.clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_mode_rechecks_before_reporting() {
    let (s, t) = pair("CREATE TABLE t (id int4 PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 50) g;").await;
    exec(&t.url, "DELETE FROM t WHERE id = 7").await;
    let r = verify(&s, &t, &["--live"]).await;
    let c = counts(&r, "public.t");
    assert_eq!((c.missing, c.live_retry, c.success), (1, 1, 49), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_mode_accepts_a_difference_that_replication_fixes() {
    let (s, t) = pair("CREATE TABLE t (id int4 PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 50) g;").await;
    exec(&t.url, "DELETE FROM t WHERE id = 7").await;
    // A stand-in for replication: the target row comes back while verify runs.
    let url = t.url.clone();
    let fix = tokio::spawn(async move { exec(&url, "INSERT INTO t VALUES (7, 'v')").await });
    let r = verify(&s, &t, &["--live"]).await;
    fix.await.unwrap();
    let c = counts(&r, "public.t");
    assert_eq!(c.truth_rows, 50);
    assert_eq!(c.missing + c.success, 50, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_mode_counts_a_row_that_reaches_the_source_while_verify_runs_as_a_source_row() {
    let (s, t) = pair("CREATE TABLE t (id int4 PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 50) g;").await;
    exec(&t.url, "INSERT INTO t VALUES (51, 'v')").await;
    // The row exists on the target first (say, failback wrote it) and then on the source.
    let url = s.url.clone();
    let late = tokio::spawn(async move { exec(&url, "INSERT INTO t VALUES (51, 'v')").await });
    let r = verify(&s, &t, &["--live"]).await;
    late.await.unwrap();
    let c = counts(&r, "public.t");
    assert!(c.success <= c.truth_rows, "no success without its source row: {c:?}");
    if c.extraneous == 0 {
        assert_eq!((c.truth_rows, c.success), (51, 51), "{c:?}");
        assert!(c.clean(), "{c:?}");
    } else {
        assert_eq!((c.truth_rows, c.success, c.extraneous), (50, 50, 1), "{c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_filters_and_renames_select_what_is_compared() {
    let s = testbed().fresh_pg_source().await;
    let t = testbed().fresh_pg_target().await;
    exec(&s.url, "CREATE TABLE filtertbl (id int4 PRIMARY KEY, x int4); INSERT INTO filtertbl SELECT g, g FROM generate_series(1, 30) g; \
                  CREATE TABLE t (id int4 PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b');").await;
    // The target differs outside the filter only, and holds t under another name.
    exec(&t.url, "CREATE TABLE filtertbl (id int4 PRIMARY KEY, x int4); INSERT INTO filtertbl SELECT g, CASE WHEN g < 10 THEN g ELSE g + 100 END FROM generate_series(1, 25) g; \
                  CREATE TABLE t2 (id int4 PRIMARY KEY, v text); INSERT INTO t2 VALUES (1, 'a'), (2, 'b');").await;
    let dir = std::env::temp_dir().join(format!("molt-verify-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let filters = dir.join("filters.json");
    std::fs::write(&filters, r#"{"filters":[{"resource_specifier":{"schema":"public","table":"filtertbl"},"expr":"x < 10"}]}"#).unwrap();
    let transforms = dir.join("transforms.json");
    std::fs::write(&transforms, r#"{"transforms":[{"id":1,"resource_specifier":{"schema":"public","table":"t"},"table_rename_opts":{"value":"t2"}}]}"#).unwrap();
    let r = verify(
        &s,
        &t,
        &[
            "--filter-path",
            filters.to_str().unwrap(),
            "--transformations-file",
            transforms.to_str().unwrap(),
        ],
    )
    .await;
    assert!(r.clean(), "{r:?}");
    assert_eq!(counts(&r, "public.filtertbl").truth_rows, 9, "only rows with x < 10 on both sides");
    assert_eq!(counts(&r, "public.t").success, 2, "t is compared with t2");
    // Without the filter the differences show.
    let r = verify(&s, &t, &["--transformations-file", transforms.to_str().unwrap()]).await;
    let c = counts(&r, "public.filtertbl");
    assert_eq!((c.mismatch, c.missing), (16, 5), "{c:?}");
}
