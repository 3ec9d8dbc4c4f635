//! Every type the mapping accepts arrives identical, on every data path.

use crate::support::{fetch, rows, scratch_dir, source_with};
use molt_testkit::testbed;

const EVERY_TYPE: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy days', 'überglücklich');
CREATE TABLE every_type (
    id int8 PRIMARY KEY,
    c_bool bool, c_int2 int2, c_int4 int4, c_int8 int8,
    c_numeric numeric, c_numeric_ps numeric(40,20),
    c_float4 float4, c_float8 float8,
    c_text text, c_varchar varchar(30), c_char char(5),
    c_bytea bytea,
    c_date date, c_time time, c_timetz timetz, c_ts timestamp(6), c_tstz timestamptz, c_interval interval,
    c_uuid uuid, c_json json, c_jsonb jsonb,
    c_inet inet, c_cidr cidr, c_bit bit(8), c_varbit varbit(16),
    c_text_arr text[], c_int_arr int4[], c_mood mood, c_mood_arr mood[]
);
CREATE TABLE uuid_keyed (id uuid PRIMARY KEY, v text);
CREATE TABLE float_keyed (id float8 PRIMARY KEY, v int4);
CREATE TABLE composite_keyed (a int4, b text, v text, PRIMARY KEY (a, b));
INSERT INTO every_type VALUES
 (1, true, -32768, -2147483648, -9223372036854775808,
  '-123456789012345678901234567890.123456789012345678901234567890', '12345678901234567890.12345678901234567890',
  'NaN', 'NaN',
  'quote'' "double" ,comma', 'tab	and
newline', 'ab',
  '\x00', '4713-01-01 BC', '00:00:00', '00:00:00+14', '0001-01-01 00:00:00', '1970-01-01 00:00:00+00', '-178000000 years',
  '00000000-0000-0000-0000-000000000000', '{"a": [1, 2.50, null], "b": "\u00e9"}', '{"k": {"n": 1e10}}',
  '0.0.0.0', '10.0.0.0/8', B'00000000', B'',
  ARRAY['', NULL, 'x,y', '"q"', 'back\slash'], ARRAY[NULL, 1, -1]::int4[], 'happy days', ARRAY['sad', 'überglücklich']::mood[]),
 (2, false, 32767, 2147483647, 9223372036854775807,
  '1e-100', '-0.00000000000000000001',
  'Infinity', '-Infinity',
  '\N', 'back\\slash \N \t', '',
  '\xdeadbeef', '294276-12-31', '24:00:00', '23:59:59.999999-12', '294276-12-31 23:59:59.999999', '2026-12-02 05:39:17.123456+05:30', '1 year 2 mons -3 days 04:05:06.789',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '[]', '[]',
  '::1', '2001:db8::/32', B'11111111', B'1010101010101010',
  '{}', '{}', 'sad', '{}'),
 (3, NULL, 0, 0, 0, '0', '0', '-0', '-0', '', '', NULL, '', 'infinity', '12:34:56.789', NULL, 'infinity', '-infinity', '0',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'null', 'null', '192.168.1.1/24', '192.168.0.0/16', B'10000001', NULL,
  ARRAY['ü😀'], ARRAY[0], 'überglücklich', ARRAY[NULL]::mood[]),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, true, 1, 1, 1, '99999999999999999999999999999999999999.5', '0.1', '1.17549435e-38', '5e-324', 'NULL', 'null', 'NULL ',
  NULL, '2000-02-29', '23:59:59.999999', '12:00:00-05:30', '2000-02-29 12:00:00', '2000-02-29 12:00:00-08', '-1 days -00:00:01',
  NULL, '"just a string"', '"just a string"', NULL, NULL, NULL, NULL, ARRAY['NULL'], NULL, NULL, NULL);
-- Every byte value, in one bytea.
INSERT INTO every_type (id, c_bytea, c_float8) SELECT 6, string_agg(set_byte('\x00'::bytea, 0, b), ''::bytea ORDER BY b), 1e308 FROM generate_series(0, 255) b;
INSERT INTO every_type (id, c_text, c_int8) SELECT g, repeat(md5(g::text), g % 7), g::int8 * 1000003 FROM generate_series(7, 3000) g;
INSERT INTO uuid_keyed SELECT md5(g::text)::uuid, 'v' || g FROM generate_series(1, 2000) g;
INSERT INTO float_keyed SELECT g / 7.0, g FROM generate_series(-1000, 1000) g;
INSERT INTO float_keyed VALUES ('NaN', 0), ('Infinity', 1), ('-Infinity', 2);
INSERT INTO composite_keyed SELECT g % 10, 'k' || g, repeat('x', g % 13) FROM generate_series(1, 1500) g;
"#;

const TABLES: [(&str, &str); 4] = [
    ("public.every_type", "id"),
    ("public.uuid_keyed", "id"),
    ("public.float_keyed", "id"),
    ("public.composite_keyed", "a, b"),
];

async fn assert_identical(source: &str, target: &str) {
    for (table, key) in TABLES {
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
    let src = source_with(EVERY_TYPE).await;
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
    let src = source_with(EVERY_TYPE).await;
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
    let src = source_with(EVERY_TYPE).await;
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
