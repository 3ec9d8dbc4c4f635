//! Issue 10 C: commands copied from older MOLT documentation still run. A retired flag logs a
//! warning naming it and what replaces it, and the load goes on.

use molt_log::LogFormat;
use serde_json::Value;

use crate::support::{config, rows, source_with};
use molt_testkit::testbed;

fn warnings_about(lines: &[String], flag: &str) -> Vec<serde_json::Map<String, Value>> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Map<String, Value>>(l).ok())
        .filter(|v| v.get("flag").and_then(Value::as_str) == Some(flag))
        .collect()
}

#[test]
fn serial_issue10_retired_flags_warn_and_the_load_runs() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (src, dst) = rt.block_on(async {
        let src = source_with(
            "CREATE TABLE t (id int8 PRIMARY KEY, v text); \
             INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;",
        )
        .await;
        (src, testbed().fresh_pg_target().await)
    });
    let (result, lines) = molt_log::capture(LogFormat::Json, "info", || {
        let cfg = config(
            &src.url,
            &dst.url,
            &[
                "--direct-copy",
                "--table-handling",
                "drop-on-target-and-recreate",
                "--pglogical-ignore-wal-check",
                "--table-splits",
                "2",
                "--pglogical-publication-name",
                "my_pub",
                "--metrics-scrape-interval",
                "5s",
            ],
        )?;
        rt.block_on(molt_fetch::run(cfg))
    });
    let summary = result.expect("a command with retired flags runs");
    assert_eq!(summary.rows, vec![1000]);
    assert_eq!(
        summary.cdc_cursor, "",
        "--pglogical-ignore-wal-check acts as --ignore-replication-check"
    );
    rt.block_on(async {
        assert_eq!(rows(&src.url, "t", "id").await, rows(&dst.url, "t", "id").await)
    });
    for (flag, replacement) in [
        ("--pglogical-ignore-wal-check", "--ignore-replication-check"),
        ("--table-splits", "--export-concurrency"),
        ("--pglogical-publication-name", ""),
        ("--metrics-scrape-interval", ""),
    ] {
        let w = warnings_about(&lines, flag);
        assert_eq!(w.len(), 1, "one warning for {flag}: {lines:#?}");
        assert_eq!(w[0]["level"], "warn");
        assert_eq!(w[0]["replacement"], replacement, "{:?}", w[0]);
        assert!(w[0]["message"].as_str().unwrap().contains(flag), "{:?}", w[0]);
    }
}

/// `--mode data-load-and-replication` loads, then says how to start `replicator pglogical`
/// from the slot fetch created (replication is no longer run by fetch).
#[test]
fn serial_issue10_data_load_and_replication_loads_and_prints_the_replicator_command() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (src, dst) = rt.block_on(async {
        let src = source_with(
            "CREATE TABLE t (id int8 PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
        )
        .await;
        (src, testbed().fresh_pg_target().await)
    });
    let slot = format!("molt_test_{}", src.name);
    let (result, lines) = molt_log::capture(LogFormat::Json, "info", || {
        let cfg = config(
            &src.url,
            &dst.url,
            &[
                "--direct-copy",
                "--table-handling",
                "drop-on-target-and-recreate",
                "--mode",
                "data-load-and-replication",
                "--pglogical-replication-slot-name",
                &slot,
                "--replicator-flags",
                "--stagingSchema _replicator -v",
            ],
        )?;
        rt.block_on(molt_fetch::run(cfg))
    });
    let summary = result.expect("data-load-and-replication runs the data load");
    assert_eq!(summary.rows, vec![2]);
    assert!(summary.cdc_cursor.contains('/'), "{}", summary.cdc_cursor);
    let w = warnings_about(&lines, "--mode data-load-and-replication");
    assert_eq!(w.len(), 1, "{lines:#?}");
    let command = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Map<String, Value>>(l).ok())
        .find_map(|v| v.get("replicator_command").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| panic!("no replicator_command line: {lines:#?}"));
    assert!(command.starts_with("replicator pglogical --sourceConn "), "{command}");
    for part in [
        format!("--slotName {slot}"),
        "--publicationName molt_fetch".to_owned(),
        format!("--targetSchema {}.public", dst.name),
        "--stagingSchema _replicator -v".to_owned(),
    ] {
        assert!(command.contains(&part), "{part} in {command}");
    }
    assert!(!command.contains(":molt@"), "no password in the log: {command}");
    rt.block_on(molt_testkit::sql::exec(
        &src.url,
        &format!("SELECT pg_drop_replication_slot('{slot}')"),
    ));
}
