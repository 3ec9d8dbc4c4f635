//! fetch from MariaDB (the MySQL-family server of the test bed) into PostgreSQL: values keep
//! their meaning on every data path, every export session reads one snapshot, and the cursor
//! is the snapshot's GTID position.

use molt_testkit::sql::{my_exec, my_scalar, scalar};
use molt_testkit::{EVERY_MARIADB_TYPE, TestDb, testbed};
use molt_url::ConnUrl;
use mysql_async::prelude::Queryable as _;

use crate::support::{fetch, scratch_dir};

/// Each column of row `id` as the target prints it.
async fn target_row(url: &str, id: &str) -> Vec<String> {
    let cols = [
        "i", "u", "m", "d", "f", "g", "ok", "s", "t", "l", "dt", "ts", "day", "tm", "y", "b", "e",
        "st", "j", "bl", "bn", "uid",
    ];
    let mut out = Vec::new();
    for c in cols {
        let v: String = scalar(
            url,
            &format!("SELECT coalesce({c}::text, 'NULL') FROM public.kinds WHERE id = {id}"),
        )
        .await;
        out.push(format!("{c}={v}"));
    }
    out
}

async fn check_kinds(src: &TestDb, dst: &str) {
    let full = target_row(dst, "18446744073709551615").await;
    assert_eq!(
        full,
        [
            "i=-2147483648",
            "u=4294967295",
            "m=-8388608",
            "d=123456789012345678901234567890.123456789012345678901234567891",
            "f=0.1",
            "g=2.2250738585072014e-308",
            // MariaDB's catalog spells BOOL as tinyint(1): an integer, as the mapping decides.
            "ok=1",
            "s=tab\there, new\nline, back\\slash, \"quoted\", 😀",
            "t=",
            "l=café",
            "dt=2024-02-29 23:59:59.123456",
            "ts=2024-01-01 00:30:00.000001+00",
            "day=1000-01-01",
            "tm=12:34:56",
            "y=2155",
            "b=10101",
            "e=large",
            "st=a,c",
            "j={\"k\": [1, 2.50, \"x\"]}",
            "bl=\\x00ff10",
            "bn=\\x01020000",
            "uid=123e4567-e89b-12d3-a456-426614174000",
        ]
        .map(String::from)
    );
    let empty = target_row(dst, "1").await;
    assert!(empty.iter().all(|c| c.ends_with("=NULL")), "NULLs stay NULL: {empty:?}");
    let n: String = scalar(dst, "SELECT count(*)::text FROM public.kinds").await;
    let want = my_scalar(&src.url, "SELECT CAST(COUNT(*) AS CHAR) FROM kinds").await;
    assert_eq!(n, want, "every row once");
    let sum: String = scalar(dst, "SELECT sum(id)::text FROM public.kinds WHERE id < 10000").await;
    let want =
        my_scalar(&src.url, "SELECT CAST(SUM(id) AS CHAR) FROM kinds WHERE id < 10000").await;
    assert_eq!(sum, want, "the same keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_values_keep_their_meaning_through_direct_copy() {
    let src = testbed().fresh_mariadb().await;
    my_exec(&src.url, EVERY_MARIADB_TYPE).await;
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
    .unwrap_or_else(|e| panic!("fetch: {e:#}"));
    assert_eq!(summary.rows, vec![5001]);
    // Other tests write to the same server: the cursor's exactness is the concurrent-writes
    // test's; here it is a MariaDB GTID list.
    molt_cursor::Cursor::parse_as(molt_cursor::CursorKind::MariadbGtid, &summary.cdc_cursor)
        .unwrap_or_else(|e| panic!("a MariaDB GTID list: {:?}: {e}", summary.cdc_cursor));
    check_kinds(&src, &dst.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_values_keep_their_meaning_through_local_csv_files() {
    let src = testbed().fresh_mariadb().await;
    my_exec(&src.url, EVERY_MARIADB_TYPE).await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("mariadb-local");
    fetch(
        &src.url,
        &dst.url,
        &[
            "--local-path",
            dir.to_str().unwrap(),
            "--use-copy",
            "--flush-rows",
            "700",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--export-concurrency",
            "2",
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("fetch: {e:#}"));
    check_kinds(&src, &dst.url).await;
}

/// The sequence number of domain `domain`'s entry in a MariaDB GTID list.
fn seq_of(list: &str, domain: &str) -> u64 {
    list.split(',')
        .map(str::trim)
        .find_map(|g| {
            let mut parts = g.split('-');
            (parts.next() == Some(domain)).then(|| parts.nth(1).and_then(|s| s.parse().ok()))?
        })
        .unwrap_or_else(|| panic!("no domain {domain} in {list:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_during_the_fetch_are_in_the_snapshot_exactly_when_the_cursor_covers_them() {
    let src = testbed().fresh_mariadb().await;
    writes_during_fetch(&src, &src.url, &["--export-concurrency", "3", "--table-concurrency", "2"])
        .await;
}

/// Loads tables `a` and `b` while a writer commits a row to both per transaction, and checks
/// that each write is on the target exactly when the printed cursor covers its GTID.
async fn writes_during_fetch(src: &TestDb, fetch_url: &str, extra: &[&str]) {
    my_exec(
        &src.url,
        "CREATE TABLE a (k INT PRIMARY KEY, gtid VARCHAR(64)); CREATE TABLE b (k INT PRIMARY KEY);
         INSERT INTO a SELECT seq, NULL FROM seq_1_to_20000; INSERT INTO b SELECT seq FROM seq_1_to_20000;",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let url = src.url.clone();
        let stop = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            let pool = molt_source_mysql::connect(&ConnUrl::parse(&url).unwrap()).await.unwrap();
            let mut c = pool.get_conn().await.unwrap();
            let mut written = Vec::new();
            let mut k = 100_000;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                k += 1;
                c.query_drop(format!(
                    "START TRANSACTION; INSERT INTO a VALUES ({k}, NULL); INSERT INTO b VALUES ({k}); COMMIT"
                ))
                .await
                .unwrap();
                let gtid: Option<String> = c.query_first("SELECT @@last_gtid").await.unwrap();
                written.push((k, gtid.unwrap_or_default()));
            }
            drop(c);
            pool.disconnect().await.unwrap();
            written
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let args =
        [&["--direct-copy", "--table-handling", "drop-on-target-and-recreate"], extra].concat();
    let summary =
        fetch(fetch_url, &dst.url, &args).await.unwrap_or_else(|e| panic!("fetch: {e:#}"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await.unwrap();
    let covered = |gtid: &str| {
        let domain = gtid.split('-').next().unwrap();
        seq_of(gtid, domain) <= seq_of(&summary.cdc_cursor, domain)
    };
    let before = written.iter().filter(|(_, g)| covered(g)).count();
    assert!(
        before > 0 && before < written.len(),
        "writes fell on both sides of the snapshot ({before} of {})",
        written.len()
    );
    for table in ["a", "b"] {
        let loaded: String = scalar(
            &dst.url,
            &format!(
                "SELECT coalesce(string_agg(k::text, ',' ORDER BY k), '') FROM public.{table} WHERE k > 100000"
            ),
        )
        .await;
        let want: Vec<String> =
            written.iter().filter(|(_, g)| covered(g)).map(|(k, _)| k.to_string()).collect();
        let want = want.join(",");
        assert_eq!(loaded, want, "{table}: exactly the writes the cursor covers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_target_cannot_hold_fails_naming_table_and_column() {
    let src = testbed().fresh_mariadb().await;
    my_exec(&src.url, "CREATE TABLE spans (id INT PRIMARY KEY, tm TIME); INSERT INTO spans VALUES (1, '-838:59:59')").await;
    let dst = testbed().fresh_pg_target().await;
    let err = fetch(
        &src.url,
        &dst.url,
        &["--direct-copy", "--table-handling", "drop-on-target-and-recreate"],
    )
    .await
    .expect_err("TIME beyond 24 h does not fit the target's TIME");
    let text = format!("{err:#}");
    assert!(
        text.contains("spans") && text.contains("column tm") && text.contains("INTERVAL"),
        "{text}"
    );
    // With an INET6 column beside it the table loads as text COPY: the same refusal, not the
    // target's reading of `-838:59:59` as a time with a zone offset.
    my_exec(&src.url, "CREATE TABLE spans2 (id INT PRIMARY KEY, tm TIME, ip INET6); INSERT INTO spans2 VALUES (1, '-838:59:59', '::1')").await;
    let err = fetch(
        &src.url,
        &dst.url,
        &[
            "--direct-copy",
            "--table-handling",
            "drop-on-target-and-recreate",
            "--table-filter",
            "spans2",
        ],
    )
    .await
    .expect_err("TIME beyond 24 h, text COPY");
    let text = format!("{err:#}");
    assert!(
        text.contains("column tm") && text.contains("INTERVAL") && !text.contains("displacement"),
        "{text}"
    );
    my_exec(&src.url, "DROP TABLE spans2").await;
    // The fix the error names works: the column mapped to INTERVAL holds the duration.
    let map = scratch_dir("mariadb-type-map");
    std::fs::create_dir_all(&map).unwrap();
    let file = map.join("types.json");
    std::fs::write(
        &file,
        format!(
            r#"[{{"table":"{}.spans","column_type_map":[{{"column":"tm","source_type":"time","crdb_type":"INTERVAL"}}]}}]"#,
            src.name
        ),
    )
    .unwrap();
    for path in [&["--direct-copy"][..], &["--local-path", map.to_str().unwrap(), "--use-copy"][..]]
    {
        let mut args = path.to_vec();
        args.extend([
            "--table-handling",
            "drop-on-target-and-recreate",
            "--type-map-file",
            file.to_str().unwrap(),
        ]);
        fetch(&src.url, &dst.url, &args).await.unwrap_or_else(|e| panic!("{path:?}: {e:#}"));
        let tm: String = scalar(&dst.url, "SELECT tm::text FROM spans WHERE id = 1").await;
        assert_eq!(tm, "-838:59:59", "{path:?}");
    }
    let _ = std::fs::remove_dir_all(&map);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_grants_are_named_and_without_reload_one_session_still_gives_an_exact_cursor() {
    let src = testbed().fresh_mariadb().await;
    let user = format!("nr{}", &src.name[src.name.len().saturating_sub(20)..]);
    my_exec(
        &src.url,
        &format!(
            "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);
             CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw';
             GRANT SELECT ON *.* TO '{user}'@'127.0.0.1'"
        ),
    )
    .await;
    let limited = src.url.replacen("molt:molt@", &format!("{user}:pw@"), 1);
    let dst = testbed().fresh_pg_target().await;
    let args = ["--direct-copy", "--table-handling", "drop-on-target-and-recreate"];
    let err = fetch(&limited, &dst.url, &args).await.expect_err("no replication privileges");
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!(
            "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'127.0.0.1'"
        )),
        "{text}"
    );
    let mut load_only = args.to_vec();
    load_only.push("--ignore-replication-check");
    let err = fetch(&limited, &dst.url, &load_only).await.expect_err("still no RELOAD");
    assert!(
        format!("{err:#}").contains("GRANT RELOAD"),
        "the privileges check is skipped: {err:#}"
    );
    my_exec(
        &src.url,
        &format!("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'127.0.0.1'"),
    )
    .await;
    let err = fetch(&limited, &dst.url, &args).await.expect_err("no RELOAD, several sessions");
    let text = format!("{err:#}");
    assert!(
        text.contains("GRANT RELOAD ON *.*") && text.contains("--export-concurrency 1"),
        "{text}"
    );
    writes_during_fetch(&src, &limited, &["--table-concurrency", "1", "--export-concurrency", "1"])
        .await;
    my_exec(&src.url, &format!("DROP USER '{user}'@'127.0.0.1'")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_export_to_s3_then_import_keeps_every_value() {
    use crate::bucket::{fetch_bin, text};
    let src = testbed().fresh_mariadb().await;
    my_exec(&src.url, EVERY_MARIADB_TYPE).await;
    let dst = testbed().fresh_pg_target().await;
    let bucket = format!("s3://{}/mariadb/{}", molt_testkit::S3_BUCKET, src.name);
    let key = molt_testkit::S3_KEY;
    let exported = fetch_bin(
        &src,
        &dst,
        key,
        &["--bucket-path", &bucket, "--mode", "export-only", "--flush-rows", "900"],
    );
    assert!(exported.status.success(), "{}", text(&exported));
    assert!(text(&exported).contains("\"cdc_cursor\":\"0-"), "{}", text(&exported));
    let imported = fetch_bin(
        &src,
        &dst,
        key,
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
    assert!(imported.status.success(), "{}", text(&imported));
    check_kinds(&src, &dst.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_a_statement_format_binlog_is_refused_with_the_setting_to_change() {
    let own =
        molt_testkit::OwnMariadb::start("fetch-statement-binlog", "binlog_format = STATEMENT")
            .unwrap();
    let src = own.fresh().await;
    my_exec(&src.url, "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)").await;
    let dst = testbed().fresh_pg_target().await;
    let args = ["--direct-copy", "--table-handling", "drop-on-target-and-recreate"];
    let err = fetch(&src.url, &dst.url, &args).await.expect_err("STATEMENT binlog");
    let text = format!("{err:#}");
    assert!(text.contains("binlog_format") && text.contains("ROW"), "{text}");
    assert!(text.contains("--ignore-replication-check"), "{text}");
    let plain = [&args[..], &["--ignore-replication-check"]].concat();
    let summary = fetch(&src.url, &dst.url, &plain).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(summary.rows, vec![1]);
    assert_eq!(summary.cdc_cursor, "", "no cursor without the replication check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_table_is_skipped_and_a_nul_byte_in_text_is_refused_by_name() {
    let src = testbed().fresh_mariadb().await;
    my_exec(
        &src.url,
        "CREATE TABLE keyed (id INT PRIMARY KEY); INSERT INTO keyed VALUES (1), (2);
         CREATE TABLE loose (v INT); INSERT INTO loose VALUES (1);",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    let args = ["--direct-copy", "--table-handling", "drop-on-target-and-recreate"];
    let summary = fetch(&src.url, &dst.url, &args).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(summary.rows, vec![2]);
    assert!(
        summary.skipped_unmigratable_tables.iter().any(|t| t.ends_with("loose")),
        "{:?}",
        summary.skipped_unmigratable_tables
    );
    my_exec(&src.url, "DROP TABLE loose; INSERT INTO keyed VALUES (3); CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(20)); INSERT INTO notes VALUES (7, CONCAT('a', CHAR(0), 'b'))").await;
    let err = fetch(&src.url, &dst.url, &args).await.expect_err("PostgreSQL text cannot hold NUL");
    let text = format!("{err:#}");
    assert!(
        text.contains("notes") && text.contains("column body") && text.contains("`id` = '7'"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_generated_columns_load_the_sources_values_into_plain_columns() {
    let src = testbed().fresh_mariadb().await;
    my_exec(
        &src.url,
        "CREATE TABLE g (id INT PRIMARY KEY, a INT, twice INT AS (a * 2) STORED, label VARCHAR(12) AS (CONCAT('n', a)) VIRTUAL);
         INSERT INTO g (id, a) VALUES (1, 5), (2, NULL);",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    fetch(
        &src.url,
        &dst.url,
        &["--direct-copy", "--table-handling", "drop-on-target-and-recreate"],
    )
    .await
    .unwrap_or_else(|e| panic!("a MySQL expression is not run on the target: {e:#}"));
    let rows: String = scalar(
        &dst.url,
        "SELECT string_agg(concat_ws('|', id, a, twice, label), ',' ORDER BY id) FROM g",
    )
    .await;
    assert_eq!(rows, "1|5|10|n5,2", "the source's computed values, NULLs kept");
    let plain: i64 = scalar(
        &dst.url,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'g' AND is_generated = 'NEVER'",
    )
    .await;
    assert_eq!(plain, 4, "created as plain columns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mariadb_load_killed_mid_import_resumes_with_every_row_once() {
    use crate::resume::{files_loaded, kill_when, load_args, spawn_fetch, the_fetch_id};
    const ROWS: i64 = 120_000;
    let src = testbed().fresh_mariadb().await;
    my_exec(
        &src.url,
        &format!(
            "CREATE TABLE big (id BIGINT PRIMARY KEY, v VARCHAR(80) NOT NULL, n DECIMAL(12,2));
             INSERT INTO big SELECT seq, CONCAT(MD5(seq), REPEAT('x', 40)), seq * 0.25 FROM seq_1_to_{ROWS};"
        ),
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("mariadb-kill-import");
    let args = load_args(&dir);
    let child = spawn_fetch(&src, &dst, &args);
    let manifest = dir.join(format!("{}.big", src.name)).join("_manifest.json");
    kill_when(child, async || manifest.exists() && files_loaded(&dst).await >= 8).await;
    let loaded: i64 = scalar(&dst.url, "SELECT count(*) FROM big").await;
    assert!(loaded < ROWS, "killed before the end: {loaded} rows");
    let id = the_fetch_id(&dst).await;
    let resume: Vec<String> =
        args.iter().cloned().chain(["--fetch-id".into(), id.clone()]).collect();
    let argv: Vec<&str> = resume.iter().map(String::as_str).collect();
    let summary = fetch(&src.url, &dst.url, &argv).await.expect("resumed");
    assert_eq!(summary.fetch_id, id);
    let (n, distinct, wrong): (i64, i64, i64) = (
        scalar(&dst.url, "SELECT count(*) FROM big").await,
        scalar(&dst.url, "SELECT count(DISTINCT id) FROM big").await,
        scalar(
            &dst.url,
            "SELECT count(*) FROM big WHERE v <> md5(id::text) || repeat('x', 40) OR n <> id * 0.25",
        )
        .await,
    );
    assert_eq!((n, distinct, wrong), (ROWS, ROWS, 0), "every row once, each value right");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_whose_target_session_dies_is_retried_on_its_one_mariadb_session() {
    // One table, one shard, one snapshot session: a MySQL snapshot cannot be reopened, so the
    // retry must read through the session the failed attempt used.
    let src = testbed().fresh_mariadb().await;
    my_exec(
        &src.url,
        "CREATE TABLE big (id BIGINT PRIMARY KEY, v TEXT NOT NULL);
         INSERT INTO big SELECT seq, MD5(seq) FROM seq_1_to_100000;",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    molt_testkit::sql::exec(&dst.url, "CREATE TABLE big (id int8 PRIMARY KEY, v text NOT NULL)")
        .await;
    let args = ["--direct-copy", "--export-concurrency", "1", "--table-concurrency", "1"];
    let summary = crate::retries::load_killing_the_waiting_copy(&src, &dst, &dst, &args)
        .await
        .unwrap_or_else(|e| panic!("the shard was retried: {e:#}"));
    assert_eq!(summary.rows, vec![100_000]);
    let (n, wrong): (i64, i64) = (
        scalar(&dst.url, "SELECT count(DISTINCT id) FROM big").await,
        scalar(&dst.url, "SELECT count(*) FROM big WHERE v <> md5(id::text)").await,
    );
    assert_eq!((n, wrong), (100_000, 0));
}

/// Rows per shard of `table`'s files under `dir` (uncompressed CSV), in shard order.
fn rows_per_shard(dir: &std::path::Path, table: &str) -> Vec<usize> {
    let mut per: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for f in std::fs::read_dir(dir.join(table)).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        if let Some(shard) = name.strip_prefix("shard_").and_then(|n| n.split('_').next()) {
            let text = std::fs::read_to_string(dir.join(table).join(&name)).unwrap();
            *per.entry(shard.to_owned()).or_default() += text.lines().count();
        }
    }
    per.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn string_keys_and_skewed_integer_keys_shard_by_rows_and_load_every_row_once() {
    let src = testbed().fresh_mariadb().await;
    my_exec(
        &src.url,
        "CREATE TABLE names (name VARCHAR(40) PRIMARY KEY, n INT) COLLATE utf8mb4_unicode_ci;
         INSERT INTO names SELECT CONCAT(CHAR(IF(seq % 2 = 0, 65, 97) + seq % 26), 'é', seq), seq FROM seq_1_to_20000;
         CREATE TABLE skewed (id BIGINT PRIMARY KEY, v INT);
         INSERT INTO skewed SELECT seq, seq FROM seq_1_to_9990;
         INSERT INTO skewed SELECT 1000000000000 + seq, seq FROM seq_1_to_10;
         CREATE TABLE moods (m ENUM('sad', 'ok', 'happy') PRIMARY KEY, v INT);
         INSERT INTO moods VALUES ('happy', 1), ('sad', 2), ('ok', 3);",
    )
    .await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("mariadb-quantile-shards");
    let summary = fetch(
        &src.url,
        &dst.url,
        &[
            "--local-path",
            dir.to_str().unwrap(),
            "--use-copy",
            "--compression",
            "none",
            "--export-concurrency",
            "4",
            "--use-stats-based-sharding",
            "--table-handling",
            "drop-on-target-and-recreate",
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("fetch: {e:#}"));
    let db = &src.name;
    for (table, rows) in [("names", 20_000), ("skewed", 10_000), ("moods", 3)] {
        let i = summary.tables.iter().position(|t| t.ends_with(table)).unwrap();
        assert_eq!(summary.rows[i], rows, "{table}");
        let distinct: i64 = scalar(
            &dst.url,
            &format!(
                "SELECT count(DISTINCT {}) FROM {table}",
                if table == "names" {
                    "name"
                } else if table == "moods" {
                    "m"
                } else {
                    "id"
                }
            ),
        )
        .await;
        assert_eq!(distinct, rows as i64, "{table}: every row once");
    }
    // Shards of about a quarter of the rows each, whatever the collation or the skew.
    for table in ["names", "skewed"] {
        let per = rows_per_shard(&dir, &format!("{db}.{table}"));
        let total: usize = per.iter().sum();
        assert_eq!(per.len(), 4, "{table}: {per:?}");
        assert!(
            per.iter().all(|n| *n * 4 >= total * 9 / 10 && *n * 4 <= total * 11 / 10),
            "{table}: {per:?}"
        );
    }
    // An ENUM key orders by index but compares as text: one shard, never overlapping ranges.
    assert_eq!(rows_per_shard(&dir, &format!("{db}.moods")), vec![3]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_parquet_files_are_typed_by_the_mapped_target_types() {
    use arrow_array::Array as _;
    use arrow_array::cast::AsArray as _;
    use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
    use arrow_schema::{DataType, TimeUnit};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let src = testbed().fresh_mariadb().await;
    my_exec(&src.url, EVERY_MARIADB_TYPE).await;
    let dst = testbed().fresh_pg_target().await;
    let dir = scratch_dir("mariadb-parquet");
    fetch(
        &src.url,
        &dst.url,
        &["--local-path", dir.to_str().unwrap(), "--mode", "export-only", "--format", "parquet"],
    )
    .await
    .unwrap_or_else(|e| panic!("parquet export: {e:#}"));
    let table_dir = dir.join(format!("{}.kinds", src.name));
    let mut batches = Vec::new();
    for f in std::fs::read_dir(&table_dir).unwrap().flatten() {
        if f.path().extension().is_some_and(|e| e == "parquet") {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f.path()).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
            batches.extend(reader.map(Result::unwrap));
        }
    }
    let schema = batches[0].schema();
    let ty = |c: &str| schema.field_with_name(c).unwrap().data_type().clone();
    // BIGINT UNSIGNED is DECIMAL(20,0) on the target, INT UNSIGNED INT8: no overflow.
    assert_eq!(ty("id"), DataType::Decimal128(20, 0));
    assert_eq!(ty("u"), DataType::Int64);
    assert_eq!(ty("d"), DataType::Utf8, "DECIMAL(65,30) is beyond DECIMAL128's 38 digits: text");
    assert_eq!(ty("ts"), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    assert_eq!(ty("bn"), DataType::Binary);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 5001);
    let mut seen = false;
    for b in &batches {
        let id = b.column_by_name("id").unwrap().as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            if id.value(i) != 18_446_744_073_709_551_615_i128 {
                continue;
            }
            seen = true;
            let u = b.column_by_name("u").unwrap().as_primitive::<Int64Type>();
            assert_eq!(u.value(i), 4_294_967_295);
            let ts = b.column_by_name("ts").unwrap().as_primitive::<TimestampMicrosecondType>();
            // 2024-01-01 00:30:00.000001 UTC.
            assert_eq!(ts.value(i), 1_704_069_000_000_001);
            let bn = b.column_by_name("bn").unwrap().as_binary::<i32>();
            assert_eq!(bn.value(i), [1, 2, 0, 0]);
            let s = b.column_by_name("s").unwrap().as_string::<i32>();
            assert!(s.value(i).ends_with("😀"), "{}", s.value(i));
            assert!(!b.column_by_name("t").unwrap().is_null(i), "'' is not NULL");
        }
    }
    assert!(seen, "the edge row is in the files");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binary_copy_from_mariadb_stores_what_text_copy_stores() {
    // Every column of `kinds` has a binary kind (its ENUM's is the label), so it loads as
    // binary COPY; `texty` holds the same rows and an INET6 column, which has none, so it
    // loads as text. Both must store the same.
    let src = testbed().fresh_mariadb().await;
    my_exec(&src.url, EVERY_MARIADB_TYPE).await;
    my_exec(
        &src.url,
        "CREATE TABLE texty LIKE kinds; ALTER TABLE texty ADD COLUMN ip INET6;
         INSERT INTO texty SELECT *, NULL FROM kinds;",
    )
    .await;
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
    .unwrap_or_else(|e| panic!("fetch: {e:#}"));
    assert_eq!(summary.rows.iter().sum::<u64>(), 2 * 5001);
    let cols = "id, i, u, m, d, f, g, ok, s, t, l, dt, ts, day, tm, y, b, e::text, st, j::text, bl, bn, uid";
    for (a, b) in [("kinds", "texty"), ("texty", "kinds")] {
        let differing: i64 = scalar(
            &dst.url,
            &format!(
                "SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b}) d"
            ),
        )
        .await;
        assert_eq!(differing, 0, "rows of {a} not in {b}");
    }
    let nulls: i64 = scalar(
        &dst.url,
        "SELECT count(*) FROM kinds WHERE id = 1 AND i IS NULL AND e IS NULL AND uid IS NULL AND j IS NULL",
    )
    .await;
    assert_eq!(nulls, 1, "NULLs stay NULL in binary");
    check_kinds(&src, &dst.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_a_source_without_a_binlog_is_refused_naming_log_bin() {
    let own = molt_testkit::OwnMariadb::start("fetch-no-binlog", "skip-log-bin").unwrap();
    let src = own.fresh().await;
    my_exec(&src.url, "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)").await;
    let dst = testbed().fresh_pg_target().await;
    // The target already holds data: a refused source must leave it as it was.
    molt_testkit::sql::exec(
        &dst.url,
        "CREATE TABLE t (id int4 PRIMARY KEY); INSERT INTO t VALUES (42)",
    )
    .await;
    for handling in ["drop-on-target-and-recreate", "truncate-if-exists"] {
        let args = ["--direct-copy", "--table-handling", handling];
        let err = fetch(&src.url, &dst.url, &args).await.expect_err("no binlog");
        let text = format!("{err:#}");
        assert!(text.contains("log_bin"), "{text}");
        let kept: String = scalar(&dst.url, "SELECT string_agg(id::text, ',') FROM t").await;
        assert_eq!(kept, "42", "{handling}: the target is untouched");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_missing_database_and_spatial_columns_are_named() {
    let src = testbed().fresh_mariadb().await;
    let dst = testbed().fresh_pg_target().await;
    let args = ["--direct-copy", "--table-handling", "drop-on-target-and-recreate"];
    let wrong = src.url.replacen("molt:molt@", "molt:not-the-password@", 1);
    let e = format!("{:#}", fetch(&wrong, &dst.url, &args).await.expect_err("wrong password"));
    assert!(
        e.contains("127.0.0.1") && e.contains("password") && !e.contains("not-the-password"),
        "{e}"
    );
    let missing = src.url.replacen(&src.name, "no_such_database", 1);
    let e = format!("{:#}", fetch(&missing, &dst.url, &args).await.expect_err("missing database"));
    assert!(e.contains("no_such_database"), "{e}");
    my_exec(&src.url, "CREATE TABLE places (id INT PRIMARY KEY, at POINT); INSERT INTO places VALUES (1, POINT(1, 2))").await;
    let e = format!("{:#}", fetch(&src.url, &dst.url, &args).await.expect_err("spatial"));
    assert!(e.contains("at") && e.contains("point") && e.contains("PostGIS"), "{e}");
}
