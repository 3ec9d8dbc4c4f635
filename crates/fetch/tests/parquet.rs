//! `--format parquet`: an export-only run writes typed Parquet files whose values are the
//! source's, read back here with the parquet crate's own reader.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray as _;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int16Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::support::{fetch, scratch_dir, source_with};
use molt_testkit::testbed;

const LAKE: &str = r#"
CREATE TABLE lake (id int8 PRIMARY KEY, b bool, i2 int2, f8 float8, n numeric(20,6), n_free numeric,
  t text, d date, ts timestamp(6), tstz timestamptz, bin bytea, j jsonb, arr int4[]);
INSERT INTO lake VALUES
 (1, true, -32768, 'NaN', '-99999999999999.999999', 'NaN', E'tab\there\nnew line \\ back', '4713-01-01 BC', '0001-01-01 00:00:00', '1970-01-01 00:00:00+00', '\x00ff', '{"a": [1, null]}', ARRAY[1, NULL]),
 (2, false, 32767, '-Infinity', '0.000001', '1e-20', '', '2000-02-29', '2000-02-29 12:00:00.000001', '2026-12-02 05:39:17.123456+05:30', '\x', 'null', '{}'),
 (3, NULL, NULL, '-0', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO lake (id, b, i2, f8, n, t, d, ts, bin) SELECT g, g % 2 = 0, (g % 1000)::int2, g / 3.0, g / 7.0, 'row ' || g, '2020-01-01'::date + g, '2020-01-01'::timestamp + g * interval '1 second', int8send(g) FROM generate_series(4, 2500) g;
"#;

/// One source row as the test reads it: id, b, i2, f8, n × 10⁶, t, days, µs, bin.
type SourceRow = (
    i64,
    Option<bool>,
    Option<i16>,
    Option<f64>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<i64>,
    Option<Vec<u8>>,
);

fn read_all(dir: &std::path::Path) -> Vec<RecordBatch> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("public.lake"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "--flush-rows 500 cut several files: {files:?}");
    files
        .iter()
        .flat_map(|f| {
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_only_parquet_holds_the_source_values_typed() {
    let src = source_with(LAKE).await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("parquet");
    let summary = fetch(
        &src.url,
        &dst.url,
        &[
            "--local-path",
            dir.to_str().unwrap(),
            "--mode",
            "export-only",
            "--format",
            "parquet",
            "--flush-rows",
            "500",
        ],
    )
    .await
    .expect("export");
    assert_eq!(summary.rows, vec![2500]);
    let batches = read_all(&dir);
    let schema = batches[0].schema();
    let ty = |c: &str| schema.field_with_name(c).unwrap().data_type().clone();
    assert_eq!(ty("id"), DataType::Int64);
    assert_eq!(ty("i2"), DataType::Int16);
    assert_eq!(ty("f8"), DataType::Float64);
    assert_eq!(ty("n"), DataType::Decimal128(20, 6));
    assert_eq!(ty("n_free"), DataType::Utf8, "unbounded numeric stays exact as text");
    assert_eq!(ty("d"), DataType::Date32);
    assert_eq!(ty("bin"), DataType::Binary);
    // Every row once, keyed by id, as text this test can compare with the source.
    let mut got: BTreeMap<i64, String> = BTreeMap::new();
    for b in &batches {
        let col = |n: &str| std::sync::Arc::clone(b.column(schema.index_of(n).unwrap()));
        let (id, b_, i2, f8) = (col("id"), col("b"), col("i2"), col("f8"));
        let (n, t, d, ts, bin) = (col("n"), col("t"), col("d"), col("ts"), col("bin"));
        for r in 0..b.num_rows() {
            let opt = |a: &dyn Array, f: &dyn Fn(usize) -> String| {
                if a.is_null(r) { "∅".to_owned() } else { f(r) }
            };
            let line = [
                opt(&*b_, &|r| b_.as_boolean().value(r).to_string()),
                opt(&*i2, &|r| i2.as_primitive::<Int16Type>().value(r).to_string()),
                opt(&*f8, &|r| {
                    format!("{:?}", f8.as_primitive::<Float64Type>().value(r).to_bits())
                }),
                opt(&*n, &|r| n.as_primitive::<Decimal128Type>().value(r).to_string()),
                opt(&*t, &|r| t.as_string::<i32>().value(r).to_owned()),
                opt(&*d, &|r| d.as_primitive::<Date32Type>().value(r).to_string()),
                opt(&*ts, &|r| ts.as_primitive::<TimestampMicrosecondType>().value(r).to_string()),
                opt(&*bin, &|r| format!("{:?}", bin.as_binary::<i32>().value(r))),
            ]
            .join("|");
            assert!(
                got.insert(id.as_primitive::<Int64Type>().value(r), line).is_none(),
                "a row twice"
            );
        }
    }
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&src.url).await.unwrap();
    let want: Vec<SourceRow> = sqlx::query_as(
        "SELECT id, b, i2, f8, (n * 1000000)::numeric(30,0)::text, t, d - '1970-01-01'::date, \
             (extract(epoch FROM ts) * 1000000)::int8, bin FROM lake ORDER BY id",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(want.len(), got.len());
    for (id, b, i2, f8, n, t, d, ts, bin) in want {
        let s = |v: Option<String>| v.unwrap_or_else(|| "∅".to_owned());
        let line = [
            s(b.map(|v| v.to_string())),
            s(i2.map(|v| v.to_string())),
            s(f8.map(|v| format!("{:?}", v.to_bits()))),
            s(n),
            s(t),
            s(d.map(|v| v.to_string())),
            s(ts.map(|v| v.to_string())),
            s(bin.map(|v| format!("{v:?}"))),
        ]
        .join("|");
        assert_eq!(got.get(&id), Some(&line), "row {id}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_value_parquet_cannot_hold_stops_the_export_with_the_column_named() {
    let src = source_with("CREATE TABLE odd (id int4 PRIMARY KEY, d date); INSERT INTO odd VALUES (1, '2020-01-01'), (2, 'infinity');").await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("parquet-odd");
    let err = fetch(
        &src.url,
        &dst.url,
        &[
            "--local-path",
            dir.to_str().unwrap(),
            "--mode",
            "export-only",
            "--format",
            "parquet",
            "--export-retry-max-attempts",
            "1",
        ],
    )
    .await
    .expect_err("infinity has no Parquet DATE");
    let text = format!("{err:#}");
    assert!(text.contains("column d: value \"infinity\" does not fit its Parquet type"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
