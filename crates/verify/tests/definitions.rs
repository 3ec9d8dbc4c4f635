//! Definition differences (spec §5.2): a primary key of another type blocks row checks, a
//! column retyped beyond the allowed pairs is a column mismatch whose rows are only
//! conditional successes, and generated columns are compared like any other (issue 10).

use molt_testkit::sql::exec;
use molt_testkit::{TestDb, testbed};
use molt_verify::Report;

use super::{counts, pair, verify};
use crate::logs::{Line, capture, definition_lines};

/// Runs verify on a current-thread runtime, capturing its log events.
fn verify_logged(setup: impl AsyncFnOnce() -> (TestDb, TestDb)) -> (Report, Vec<Line>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (s, t) = rt.block_on(setup());
    capture(|| rt.block_on(verify(&s, &t, &[])))
}

#[test]
fn issue_10_primary_key_of_another_type_blocks_row_checks() {
    let (r, lines) = verify_logged(async || {
        let s = testbed().fresh_pg_source().await;
        let t = testbed().fresh_pg_target().await;
        exec(&s.url, "CREATE TABLE k (id int4 PRIMARY KEY, v text); INSERT INTO k SELECT g, 'v' FROM generate_series(1, 20) g; \
                      CREATE TABLE wide (id int4 PRIMARY KEY, v text); INSERT INTO wide SELECT g, 'v' FROM generate_series(1, 20) g;").await;
        // k's key is text on the target: the same rows, but keys of another type (and order).
        exec(&t.url, "CREATE TABLE k (id text PRIMARY KEY, v text); INSERT INTO k SELECT g::text, 'v' FROM generate_series(1, 20) g; \
                      CREATE TABLE wide (id int8 PRIMARY KEY, v text); INSERT INTO wide SELECT g, 'v' FROM generate_series(1, 20) g;").await;
        (s, t)
    });
    assert!(!r.clean(), "{r:?}");
    assert_eq!(r.uncomparable_tables, vec!["public.k"], "{r:?}");
    assert!(r.mismatching_tables.contains(&"public.k".to_owned()), "{r:?}");
    assert!(
        r.tables.iter().all(|(n, _)| n != "public.k"),
        "no row of k may count as verified: {r:?}"
    );
    let k = definition_lines(&lines, "public.k");
    assert!(
        k.iter().any(|l| l.get("mismatch_tag").map(String::as_str) == Some("pk_mismatch")),
        "{k:?}"
    );
    // A key widened from INT4 to INT8 is the same key: rows are compared and pass.
    let c = counts(&r, "public.wide");
    assert_eq!((c.truth_rows, c.success), (20, 20), "{c:?}");
    assert!(!r.mismatching_tables.contains(&"public.wide".to_owned()), "{r:?}");
}

#[test]
fn issue_10_retyped_column_is_a_column_mismatch_and_its_rows_conditional() {
    let (r, lines) = verify_logged(async || {
        let (s, t) = pair(
            "CREATE TABLE r (id int4 PRIMARY KEY, n int4, t text); \
             INSERT INTO r VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c'); \
             CREATE TABLE empty (id int4 PRIMARY KEY, n int4);",
        )
        .await;
        // n becomes text; row 2 differs only in n, row 3 also in t (a real mismatch).
        exec(
            &t.url,
            "ALTER TABLE r ALTER COLUMN n TYPE text; UPDATE r SET n = 'two' WHERE id = 2; \
             UPDATE r SET t = 'x' WHERE id = 3; ALTER TABLE empty ALTER COLUMN n TYPE text;",
        )
        .await;
        (s, t)
    });
    let c = counts(&r, "public.r");
    assert_eq!(
        (c.truth_rows, c.success, c.conditional_success, c.mismatch, c.column_mismatch),
        (3, 0, 2, 1, 1),
        "n cannot be judged, so no row passes outright: {c:?}"
    );
    let e = counts(&r, "public.empty");
    assert_eq!(e.column_mismatch, 1, "flagged even without rows: {e:?}");
    assert!(!e.clean());
    assert!(!r.clean());
    let lines = definition_lines(&lines, "public.r");
    let typed: Vec<&str> = lines
        .iter()
        .filter(|l| l.get("mismatch_tag").map(String::as_str) == Some("type_mismatch"))
        .filter_map(|l| l.get("mismatch_info").map(String::as_str))
        .collect();
    assert_eq!(typed.len(), 1, "{lines:?}");
    for word in ["column n ", "INT4", "STRING"] {
        assert!(typed[0].contains(word), "{word:?} in {:?}", typed[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_10_generated_columns_verify_and_a_wrong_expression_is_a_mismatch() {
    let ddl = |expr: &str| {
        format!(
            "CREATE TABLE g (id int4 PRIMARY KEY, a int4, b int4 GENERATED ALWAYS AS ({expr}) STORED, \
             c text GENERATED ALWAYS AS ('a=' || a::text) STORED);"
        )
    };
    let rows = "INSERT INTO g (id, a) SELECT i, i % 7 FROM generate_series(1, 50) i; \
                INSERT INTO g (id, a) VALUES (51, NULL);";
    let s = testbed().fresh_pg_source().await;
    let same = testbed().fresh_pg_target().await;
    let other = testbed().fresh_pg_target().await;
    exec(&s.url, &format!("{} {rows}", ddl("a * 2"))).await;
    // What fetch writes: the non-generated columns; the target computes its own.
    exec(&same.url, &format!("{} {rows}", ddl("a * 2"))).await;
    exec(&other.url, &format!("{} {rows}", ddl("a * 3"))).await;
    let r = verify(&s, &same, &[]).await;
    assert!(r.clean(), "{r:?}");
    assert_eq!(counts(&r, "public.g").success, 51);
    let r = verify(&s, &other, &["--table-splits", "2"]).await;
    let c = counts(&r, "public.g");
    // a * 2 = a * 3 only where a is 0 (ids 7, 14, …, 49) or NULL (id 51).
    assert_eq!((c.truth_rows, c.success, c.mismatch), (51, 8, 43), "{c:?}");
    assert!(!r.clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_column_the_target_lacks_fails_verification() {
    let s = testbed().fresh_pg_source().await;
    let t = testbed().fresh_pg_target().await;
    exec(&s.url, "CREATE TABLE w (id int4 PRIMARY KEY, a int4, lost text); INSERT INTO w SELECT i, i, 'x' FROM generate_series(1, 5) i;").await;
    exec(&t.url, "CREATE TABLE w (id int4 PRIMARY KEY, a int4); INSERT INTO w SELECT i, i FROM generate_series(1, 5) i;").await;
    let r = verify(&s, &t, &[]).await;
    let c = counts(&r, "public.w");
    assert_eq!(c.column_mismatch, 1, "{c:?}");
    assert!(!r.clean(), "the values of `lost` were not migrated: {r:?}");
}
