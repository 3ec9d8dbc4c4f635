//! MOLT's log lines (spec §3.8), golden after normalising times, durations, ids and cursors.

use molt_log::LogFormat;
use serde_json::Value;

use crate::support::{config, source_with};
use molt_testkit::testbed;

fn normalise(line: &str) -> Option<String> {
    let mut v: serde_json::Map<String, Value> = serde_json::from_str(line).ok()?;
    v.remove("time");
    for (k, val) in v.iter_mut() {
        if k.ends_with("_duration_ms") {
            *val = Value::from(1000);
        } else if k.ends_with("_duration") {
            *val = Value::from("000h 00m 01s");
        } else if k == "fetch_id" {
            *val = Value::from("00000000-0000-0000-0000-000000000000");
        } else if k == "cdc_cursor" {
            *val = Value::from("0/0");
        }
    }
    Some(Value::Object(v).to_string())
}

#[test]
fn serial_fetch_writes_molt_lines() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (src, dst) = rt.block_on(async {
        let src = source_with("CREATE TABLE employees (id int8 PRIMARY KEY, name text); INSERT INTO employees SELECT g, 'e' FROM generate_series(1, 7) g;").await;
        (src, testbed().fresh_pg_target().await)
    });
    let cfg = config(
        &src.url,
        &dst.url,
        &[
            "--direct-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--export-concurrency",
            "1",
        ],
    )
    .unwrap();
    let (result, lines) =
        molt_log::capture(LogFormat::Json, "info", || rt.block_on(molt_fetch::run(cfg)));
    result.expect("fetch");
    let got: Vec<String> = lines
        .iter()
        .filter_map(|l| normalise(l))
        .filter(|l| !l.contains("\"preflight complete\"") && !l.contains("\"progress\""))
        .collect();
    let want = [
        r#"{"level":"info","table":"public.employees","message":"dropped and recreated table on target"}"#,
        r#"{"level":"info","type":"summary","num_tables":1,"cdc_cursor":"0/0","fetch_id":"00000000-0000-0000-0000-000000000000","message":"starting fetch"}"#,
        r#"{"level":"info","table":"public.employees","message":"data extraction phase starting"}"#,
        r#"{"level":"info","table":"public.employees","message":"starting data import on target"}"#,
        r#"{"level":"info","type":"summary","table":"public.employees","num_rows":7,"export_duration_ms":1000,"export_duration":"000h 00m 01s","message":"data extraction from source complete"}"#,
        r#"{"level":"info","type":"summary","table":"public.employees","net_duration_ms":1000,"net_duration":"000h 00m 01s","import_duration_ms":1000,"import_duration":"000h 00m 01s","export_duration_ms":1000,"export_duration":"000h 00m 01s","num_rows":7,"cdc_cursor":"0/0","message":"data import on target for table complete"}"#,
        r#"{"level":"info","type":"summary","fetch_id":"00000000-0000-0000-0000-000000000000","num_tables":1,"tables":["public.employees"],"skipped_unmigratable_tables":[],"cdc_cursor":"0/0","net_duration_ms":1000,"net_duration":"000h 00m 01s","message":"fetch complete"}"#,
    ];
    assert_eq!(got, want, "all lines:\n{}", lines.join("\n"));
}

/// Issue 10 B: `drop-on-target-and-recreate` creates only columns, NOT NULL and the primary
/// key; one warning per table names everything else it left out.
#[test]
fn serial_issue10_recreate_warns_once_per_table_about_what_it_left_out() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (src, dst) = rt.block_on(async {
        let src = source_with(
            "CREATE TABLE customers (id int8 PRIMARY KEY, email text UNIQUE); \
             CREATE TABLE orders (id int8 PRIMARY KEY, customer_id int8 REFERENCES customers (id), \
               qty int4 NOT NULL DEFAULT 1 CONSTRAINT qty_positive CHECK (qty > 0), code text, \
               CONSTRAINT orders_code_key UNIQUE (code)); \
             CREATE INDEX orders_qty_idx ON orders (qty); \
             CREATE TABLE plain (id int8 PRIMARY KEY, v text NOT NULL); \
             INSERT INTO customers VALUES (1, 'a@x'); INSERT INTO orders VALUES (1, 1, 2, 'c'); \
             INSERT INTO plain VALUES (1, 'p');",
        )
        .await;
        (src, testbed().fresh_pg_target().await)
    });
    let cfg = config(
        &src.url,
        &dst.url,
        &["--direct-copy", "--table-handling", "drop-on-target-and-recreate"],
    )
    .unwrap();
    let (result, lines) =
        molt_log::capture(LogFormat::Json, "info", || rt.block_on(molt_fetch::run(cfg)));
    result.expect("fetch");
    let warnings: Vec<serde_json::Map<String, Value>> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Map<String, Value>>(l).ok())
        .filter(|v| v.contains_key("not_recreated"))
        .collect();
    let tables: Vec<&str> = warnings.iter().map(|w| w["table"].as_str().unwrap()).collect();
    assert_eq!(tables, ["public.customers", "public.orders"], "{lines:#?}");
    let left_out = |w: &serde_json::Map<String, Value>| -> Vec<(String, String, String)> {
        w["not_recreated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let field = |k: &str| c[k].as_str().unwrap().to_owned();
                (field("name"), field("kind"), field("definition"))
            })
            .collect()
    };
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(left_out(&warnings[0]), [s("customers_email_key", "unique", "UNIQUE (email)")]);
    assert_eq!(
        left_out(&warnings[1]),
        [
            s("orders_code_key", "unique", "UNIQUE (code)"),
            s(
                "orders_customer_id_fkey",
                "foreign_key",
                "FOREIGN KEY (customer_id) REFERENCES customers(id)"
            ),
            s("qty_positive", "check", "CHECK ((qty > 0))"),
            s(
                "orders_qty_idx",
                "index",
                "CREATE INDEX orders_qty_idx ON public.orders USING btree (qty)"
            ),
            s("qty", "default", "1"),
        ]
    );
    for w in &warnings {
        assert_eq!(w["level"], "warn");
        let message = w["message"].as_str().unwrap();
        assert!(message.contains("after the load, before cutover"), "{message}");
    }
}
