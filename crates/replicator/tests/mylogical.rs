//! replicator mylogical against the test bed's MariaDB: every change kind, the position saved
//! with the rows, kill -9 and restart with nothing lost or applied twice.

use std::time::Duration;

use clap::Parser as _;
use molt_cursor::MariadbGtidList;
use molt_replicator::{Command, ReplicatorArgs, mylogical};
use molt_schema::{SourceDialect, TableFilter, TableName, TargetDialect, ddl, map_table};
use molt_source::CatalogReader as _;
use molt_testkit::sql::{exec, my_exec, scalar};
use molt_testkit::{TestDb, testbed};
use molt_url::ConnUrl;
use mysql_async::prelude::Queryable as _;
use sqlx::{Connection as _, PgConnection};

/// Rows of a MariaDB table as `|`-joined text, ordered by `key` (`cols` spelled so both
/// servers print them alike).
async fn my_rows(url: &str, table: &str, cols: &str, key: &str) -> Vec<String> {
    let pool = molt_source_mysql::connect(&ConnUrl::parse(url).unwrap()).await.unwrap();
    let mut conn = pool.get_conn().await.unwrap();
    let sql = format!("SELECT CONCAT_WS('|', {cols}) FROM {table} ORDER BY {key}");
    let out: Vec<Option<String>> = conn.query(sql).await.unwrap();
    drop(conn);
    pool.disconnect().await.unwrap();
    out.into_iter().map(Option::unwrap_or_default).collect()
}

/// The same on the PostgreSQL target.
async fn pg_rows(url: &str, table: &str, cols: &str, key: &str) -> Vec<String> {
    let mut c = PgConnection::connect(url).await.unwrap();
    let sql = format!("SELECT concat_ws('|', {cols}) FROM {table} ORDER BY {key}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut c).await.unwrap()
}

/// A MariaDB database with `ddl`, the target tables created from its catalog as fetch's
/// drop-on-target-and-recreate does, and the source position before any row.
async fn setup(ddl_sql: &str) -> (TestDb, TestDb, String) {
    let src = testbed().fresh_mariadb().await;
    let dst = testbed().fresh_pg_target().await;
    let start = prepare(&src, &dst, ddl_sql).await;
    (src, dst, start)
}

/// Runs `ddl_sql` on `src`, creates its tables on `dst`, and returns the source position.
async fn prepare(src: &TestDb, dst: &TestDb, ddl_sql: &str) -> String {
    my_exec(&src.url, ddl_sql).await;
    let pool = molt_source_mysql::connect(&ConnUrl::parse(&src.url).unwrap()).await.unwrap();
    let tables = molt_source_mysql::MysqlCatalog::new(pool.clone())
        .tables(&TableFilter::all())
        .await
        .unwrap();
    for t in &tables {
        let name = TableName::new("public", t.name.table.clone());
        let mapped =
            map_table(SourceDialect::Mysql, t, &name, TargetDialect::Postgres, None).unwrap();
        for stmt in ddl::create_statements(&mapped, TargetDialect::Postgres) {
            exec(&dst.url, &stmt).await;
        }
    }
    let mut conn = pool.get_conn().await.unwrap();
    let pos: Option<String> = conn.query_first("SELECT @@gtid_binlog_pos").await.unwrap();
    drop(conn);
    pool.disconnect().await.unwrap();
    pos.unwrap_or_default()
}

fn args(src: &TestDb, dst: &TestDb, start: &str) -> Vec<String> {
    [
        "replicator",
        "mylogical",
        "--sourceConn",
        &src.url,
        "--targetConn",
        &dst.url,
        "--targetSchema",
        &format!("{}.public", dst.name),
        "--defaultGTIDSet",
        start,
        "--stagingSchema",
        "_replicator.public",
        "--stagingCreateSchema",
        "--flushSize",
        "500",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn config(argv: Vec<String>) -> mylogical::MylogicalConfig {
    let a = ReplicatorArgs::try_parse_from(argv).unwrap();
    let Command::Mylogical(m) = a.command else { panic!("mylogical") };
    molt_replicator::mylogical_config(&m).unwrap()
}

/// The source's GTID position now.
async fn source_pos(src: &TestDb) -> MariadbGtidList {
    let pool = molt_source_mysql::connect(&ConnUrl::parse(&src.url).unwrap()).await.unwrap();
    let mut conn = pool.get_conn().await.unwrap();
    let pos: Option<String> = conn.query_first("SELECT @@gtid_binlog_pos").await.unwrap();
    drop(conn);
    pool.disconnect().await.unwrap();
    pos.unwrap_or_default().parse().unwrap()
}

/// The position saved on the target, if any.
async fn saved(dst: &TestDb) -> Option<String> {
    let mut c = PgConnection::connect(&dst.url).await.ok()?;
    sqlx::query_scalar::<_, String>(
        "SELECT convert_from(value, 'UTF8') FROM _replicator.memo WHERE key LIKE 'mylogical-%'",
    )
    .fetch_optional(&mut c)
    .await
    .ok()
    .flatten()
}

/// The applied GTIDs of a saved position.
fn applied_list(saved: &str) -> Option<MariadbGtidList> {
    match saved.parse::<mylogical::GtidPosition>().ok()?.applied {
        mylogical::Gtids::Mariadb(list) => Some(list),
        mylogical::Gtids::Mysql(_) => None,
    }
}

/// Waits until the saved position covers `pos`.
async fn wait_applied(dst: &TestDb, pos: &MariadbGtidList) {
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    for _ in 0..7200 {
        tick.tick().await;
        if let Some(at) = saved(dst).await
            && applied_list(&at).is_some_and(|at| at.contains(pos))
        {
            return;
        }
    }
    panic!("replication did not reach {pos} within three minutes (saved {:?})", saved(dst).await);
}

const TYPES_DDL: &str = "
CREATE TABLE acct (id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(12,2), seen DATETIME(6),
                   raw VARBINARY(16), big BIGINT UNSIGNED);
CREATE TABLE moving (k INT PRIMARY KEY, v TEXT);
CREATE TABLE emptied (id INT PRIMARY KEY);
CREATE TABLE loose (a INT, b VARCHAR(10));
";

const ACCT_MY: &str =
    "id, COALESCE(name, 'NULL'), amount, DATE_FORMAT(seen, '%Y-%m-%d %H:%i:%s.%f'), HEX(raw), big";
const ACCT_PG: &str = "id, COALESCE(name, 'NULL'), amount, to_char(seen, 'YYYY-MM-DD HH24:MI:SS.US'), upper(encode(raw, 'hex')), big";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_every_change_kind_arrives_from_mariadb() {
    let (src, dst, start) = setup(TYPES_DDL).await;
    // Rows written before the start position are not replicated: they are what fetch loads.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(mylogical::run(config(args(&src, &dst, &start)), stop_rx));
    my_exec(
        &src.url,
        "INSERT INTO acct VALUES (1, 'ann', 10.50, '2024-01-02 03:04:05.123456', x'00ff10', 18446744073709551615), \
                                 (2, NULL, -0.01, '1999-12-31 23:59:59.000001', x'', 0), (3, 'ç€😀', 1, '2000-02-29 00:00:00.5', NULL, 1); \
         INSERT INTO moving VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'); INSERT INTO emptied VALUES (1), (2); \
         INSERT INTO loose VALUES (1, 'x'), (1, 'x'), (2, NULL);",
    )
    .await;
    // One source transaction with repeated keys, a key change and a delete.
    my_exec(
        &src.url,
        "START TRANSACTION; UPDATE acct SET amount = amount * 2, name = 'bob' WHERE id = 2; \
         UPDATE acct SET id = 20 WHERE id = 3; DELETE FROM acct WHERE id = 1; INSERT INTO acct (id) VALUES (1); \
         UPDATE moving SET k = k + 10 WHERE k <= 2 ORDER BY k DESC; DELETE FROM moving WHERE k = 4; \
         INSERT INTO moving VALUES (4, 'again'); UPDATE loose SET b = 'y' WHERE b IS NULL; DELETE FROM loose WHERE a = 1 LIMIT 1; COMMIT;",
    )
    .await;
    my_exec(&src.url, "TRUNCATE emptied; INSERT INTO emptied VALUES (42);").await;
    let pos = source_pos(&src).await;
    wait_applied(&dst, &pos).await;
    assert_eq!(
        my_rows(&src.url, "acct", ACCT_MY, "id").await,
        pg_rows(&dst.url, "acct", ACCT_PG, "id").await
    );
    for (table, cols, key) in [
        ("moving", "k, v", "k"),
        ("emptied", "id", "id"),
        ("loose", "a, COALESCE(b, 'NULL')", "a, b"),
    ] {
        assert_eq!(
            my_rows(&src.url, table, cols, key).await,
            pg_rows(&dst.url, table, cols, key).await,
            "{table}"
        );
    }
    stop_tx.send(true).unwrap();
    engine.await.unwrap().unwrap();

    // Restarted with the same flags: the saved position wins over --defaultGTIDSet, so
    // nothing is applied twice (the keyless table would show a duplicate).
    my_exec(
        &src.url,
        "INSERT INTO loose VALUES (7, 'z'); UPDATE acct SET name = 'late' WHERE id = 20;",
    )
    .await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(mylogical::run(config(args(&src, &dst, &start)), stop_rx));
    let pos = source_pos(&src).await;
    wait_applied(&dst, &pos).await;
    assert_eq!(
        my_rows(&src.url, "loose", "a, COALESCE(b, 'NULL')", "a, b").await,
        pg_rows(&dst.url, "loose", "a, COALESCE(b, 'NULL')", "a, b").await
    );
    assert_eq!(
        my_rows(&src.url, "acct", ACCT_MY, "id").await,
        pg_rows(&dst.url, "acct", ACCT_PG, "id").await
    );
    stop_tx.send(true).unwrap();
    engine.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_kill_9_and_restart_from_mariadb_applies_nothing_twice() {
    let (src, dst, start) = setup(
        "CREATE TABLE acct (id INT PRIMARY KEY, version INT NOT NULL, balance BIGINT NOT NULL);",
    )
    .await;
    // Applying a transaction twice would insert an audit row twice and fail on its key.
    exec(&dst.url, "CREATE TABLE audit (id int4, version int4, PRIMARY KEY (id, version)); \
        CREATE FUNCTION log_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit VALUES (NEW.id, NEW.version); RETURN NEW; END $$; \
        CREATE TRIGGER log_apply AFTER INSERT OR UPDATE ON acct FOR EACH ROW EXECUTE FUNCTION log_apply();").await;
    let writer = {
        let url = src.url.clone();
        tokio::spawn(async move {
            let pool = molt_source_mysql::connect(&ConnUrl::parse(&url).unwrap()).await.unwrap();
            let mut c = pool.get_conn().await.unwrap();
            for i in 0..5000 {
                let id = i % 97;
                c.query_drop(format!(
                    "INSERT INTO acct VALUES ({id}, 0, 0) ON DUPLICATE KEY UPDATE version = version + 1, balance = balance + {i}"
                ))
                .await
                .unwrap();
            }
        })
    };
    // XA transactions interleaved with the plain ones: a kill lands between a prepare and
    // its commit as often as not.
    let xa_writer = {
        let url = src.url.clone();
        let xid = src.name.clone();
        tokio::spawn(async move {
            let pool = molt_source_mysql::connect(&ConnUrl::parse(&url).unwrap()).await.unwrap();
            let mut c = pool.get_conn().await.unwrap();
            for i in 0..300 {
                let id = 100 + i % 13;
                let x = format!("'{xid}-{i}'");
                c.query_drop(format!(
                    "XA START {x}; INSERT INTO acct VALUES ({id}, 0, 0) ON DUPLICATE KEY UPDATE version = version + 1, balance = balance + {i}; XA END {x}; XA PREPARE {x}"
                ))
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
                let end = if i % 7 == 0 { "ROLLBACK" } else { "COMMIT" };
                c.query_drop(format!("XA {end} {x}")).await.unwrap();
            }
        })
    };
    let argv = args(&src, &dst, &start);
    let mut last = None;
    for round in 0..4 {
        let mut child = spawn_replicator(&argv);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for _ in 0..3000 {
            tick.tick().await;
            let now = saved(&dst).await;
            if round == 0 || (now.is_some() && now != last) {
                last = now;
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    writer.await.unwrap();
    xa_writer.await.unwrap();
    let child = spawn_replicator(&argv);
    let pos = source_pos(&src).await;
    wait_applied(&dst, &pos).await;
    terminate(child);
    assert_eq!(
        my_rows(&src.url, "acct", "id, version, balance", "id").await,
        pg_rows(&dst.url, "acct", "id, version, balance", "id").await
    );
    // A write applied twice would have hit the audit table's key and been set aside.
    let refused: i64 =
        scalar(&dst.url, "SELECT count(*) FROM pg_tables WHERE tablename = 'replicator_dlq'").await;
    let set_aside: Vec<String> = if refused > 0 {
        let mut c = PgConnection::connect(&dst.url).await.unwrap();
        sqlx::query_scalar("SELECT row_to_json(d)::text FROM replicator_dlq d")
            .fetch_all(&mut c)
            .await
            .unwrap()
    } else {
        Vec::new()
    };
    assert_eq!(refused, 0, "nothing was applied twice: {set_aside:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_an_xa_transaction_open_across_a_kill_9_arrives_once_when_committed() {
    let (src, dst, start) =
        setup("CREATE TABLE acct (id INT PRIMARY KEY, version INT NOT NULL);").await;
    exec(&dst.url, "CREATE TABLE audit (id int4, version int4, PRIMARY KEY (id, version)); \
        CREATE FUNCTION log_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit VALUES (NEW.id, NEW.version); RETURN NEW; END $$; \
        CREATE TRIGGER log_apply AFTER INSERT OR UPDATE ON acct FOR EACH ROW EXECUTE FUNCTION log_apply();").await;
    let pool = molt_source_mysql::connect(&ConnUrl::parse(&src.url).unwrap()).await.unwrap();
    let mut xa = pool.get_conn().await.unwrap();
    let mut other = pool.get_conn().await.unwrap();
    other.query_drop("INSERT INTO acct VALUES (1, 1)").await.unwrap();
    // XA ids are server-wide: this test's own.
    let xid = format!("'{}'", src.name);
    xa.query_drop(format!("XA START {xid}; INSERT INTO acct VALUES (2, 1); UPDATE acct SET version = 2 WHERE id = 1; XA END {xid}; XA PREPARE {xid}"))
        .await
        .unwrap();
    // Applied after the prepare: the checkpoint moves past it while the XA is still open.
    for id in 3..=5 {
        other.query_drop(format!("INSERT INTO acct VALUES ({id}, 1)")).await.unwrap();
    }
    let argv = args(&src, &dst, &start);
    let spawn = || spawn_replicator(&argv);
    let mut child = spawn();
    wait_applied(&dst, &source_pos(&src).await).await;
    let at = saved(&dst).await.unwrap();
    assert!(at.contains("; resume from "), "the open XA transaction is in the position: {at}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Committed while the replicator is down; it restarts from before the prepare.
    xa.query_drop(format!("XA COMMIT {xid}")).await.unwrap();
    other.query_drop("INSERT INTO acct VALUES (6, 1)").await.unwrap();
    let child = spawn();
    let pos = source_pos(&src).await;
    wait_applied(&dst, &pos).await;
    let at = saved(&dst).await.unwrap();
    assert!(!at.contains("resume"), "nothing is open any more: {at}");
    terminate(child);
    assert_eq!(
        pg_rows(&dst.url, "acct", "id, version", "id").await,
        ["1|2", "2|1", "3|1", "4|1", "5|1", "6|1"]
    );
    // Every row version was applied once: a second apply would have hit the audit key.
    let audited: i64 = scalar(&dst.url, "SELECT count(*) FROM audit").await;
    assert_eq!(audited, 7);
    let refused: i64 =
        scalar(&dst.url, "SELECT count(*) FROM pg_tables WHERE tablename = 'replicator_dlq'").await;
    assert_eq!(refused, 0);
    drop((xa, other));
    pool.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_missing_start_position_is_explained() {
    let (src, dst, _) = setup("CREATE TABLE t (id INT PRIMARY KEY);").await;
    let mut argv = args(&src, &dst, "0-1-1");
    let at = argv.iter().position(|a| a == "--defaultGTIDSet").unwrap();
    argv.drain(at..at + 2);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let err = mylogical::run(config(argv), stop_rx).await.unwrap_err();
    assert!(format!("{err:#}").contains("--defaultGTIDSet"), "{err:#}");
    // A MySQL-form set against MariaDB names the form MariaDB takes.
    let argv = args(&src, &dst, "4c658ae6-e8ad-11ef-8449-0242ac140006:1-5");
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let err = mylogical::run(config(argv), stop_rx).await.unwrap_err();
    assert!(format!("{err:#}").contains("@@gtid_binlog_pos"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_killed_binlog_connection_reconnects_and_loses_nothing() {
    let (src, dst, start) = setup("CREATE TABLE t (id INT PRIMARY KEY, v INT);").await;
    let mut cfg = config(args(&src, &dst, &start));
    cfg.retry_initial_backoff = Duration::from_millis(20);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(mylogical::run(cfg, stop_rx));
    my_exec(&src.url, "INSERT INTO t VALUES (1, 1), (2, 2)").await;
    wait_applied(&dst, &source_pos(&src).await).await;
    // What a source restart or a cut network does to the dump connection.
    for round in 0..3 {
        let pool = molt_source_mysql::connect(&ConnUrl::parse(&src.url).unwrap()).await.unwrap();
        let mut conn = pool.get_conn().await.unwrap();
        let mut killed = 0;
        for _ in 0..200 {
            // Only this test's replicator: other tests read the same server's binlog.
            let ids: Vec<u64> = conn
                .query(format!("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' AND DB = '{}'", src.name))
                .await
                .unwrap();
            for id in &ids {
                let _ = conn.query_drop(format!("KILL CONNECTION {id}")).await;
            }
            killed += ids.len();
            if killed > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(killed > 0, "round {round}: no binlog dump connection to kill");
        my_exec(
            &src.url,
            &format!("INSERT INTO t VALUES ({}, 0); UPDATE t SET v = v + 1;", 10 + round),
        )
        .await;
        drop(conn);
        pool.disconnect().await.unwrap();
        wait_applied(&dst, &source_pos(&src).await).await;
    }
    assert_eq!(
        my_rows(&src.url, "t", "id, v", "id").await,
        pg_rows(&dst.url, "t", "id, v", "id").await
    );
    assert!(!engine.is_finished(), "the replicator kept running");
    stop_tx.send(true).unwrap();
    engine.await.unwrap().unwrap();
}

const WIDE_DDL: &str = "CREATE TABLE wide (id INT PRIMARY KEY, c_tinyint TINYINT, c_int_u INT UNSIGNED,
    c_bigint_u BIGINT UNSIGNED, c_float FLOAT, c_double DOUBLE, c_decimal DECIMAL(65,30), c_char CHAR(10),
    c_text TEXT, c_binary BINARY(16), c_blob BLOB, c_date DATE, c_datetime DATETIME(6),
    c_timestamp TIMESTAMP(6) NULL, c_time TIME(6), c_year YEAR, c_bit BIT(10), c_json JSON,
    c_enum ENUM('small', 'medium', 'large'), c_set SET('a', 'b', 'c'), c_uuid UUID, c_inet6 INET6)";

const WIDE_ROWS: &str = "INSERT INTO wide VALUES
    (1, -128, 4294967295, 18446744073709551615, 0.1, 2.2250738585072014e-308, -12345678901234567890.123456789012345678901234567890,
     'a', 'ç€😀 \\\\ '' \"', x'00ff', x'', '1000-01-01', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
     '23:59:59.000001', 2155, b'1010101010', '{\"a\": [1, 2.50, null, \"x\"], \"b\": {}}', 'large', 'c,a',
     '123e4567-e89b-12d3-a456-426614174000', '::ffff:1.2.3.4'),
    (2, 0, 0, 0, -3.4028234e38, 1e308, 0, '', '', x'0102', x'000102ff', '2024-02-29', '2000-01-01 00:00:00',
     '1970-01-01 00:00:01', '00:00:00', 1901, b'0', '[]', 'small', '', '00000000-0000-0000-0000-000000000000', '::'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";

/// Each column of each row as the target prints it, for rows read through fetch's path
/// (`value_text` over the binary protocol) and cast by the target to the column's type.
async fn wide_as_fetch_loads(src: &TestDb, dst: &TestDb) -> Vec<Vec<Option<String>>> {
    let pool = molt_source_mysql::connect(&ConnUrl::parse(&src.url).unwrap()).await.unwrap();
    let table = molt_source_mysql::MysqlCatalog::new(pool.clone())
        .tables(&TableFilter::all())
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name.table == "wide")
        .unwrap();
    let mut conn = pool.get_conn().await.unwrap();
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let rows: Vec<mysql_async::Row> =
        conn.exec("SELECT * FROM wide ORDER BY id", ()).await.unwrap();
    drop(conn);
    pool.disconnect().await.unwrap();
    let mut pg = PgConnection::connect(&dst.url).await.unwrap();
    let mut out = Vec::new();
    for row in rows {
        let mut cells = Vec::new();
        for (i, col) in table.columns.iter().enumerate() {
            let v: mysql_async::Value = row.get(i).unwrap();
            let text = molt_source_mysql::value::value_text(&col.ty, &v).unwrap();
            let ty: String = sqlx::query_scalar(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'wide'::regclass AND attname = $1",
            )
            .bind(&col.name)
            .fetch_one(&mut pg)
            .await
            .unwrap();
            let cast: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST($1::text AS {ty})::text"
            )))
            .bind(text)
            .fetch_one(&mut pg)
            .await
            .unwrap();
            cells.push(cast);
        }
        out.push(cells);
    }
    out
}

/// Every column of the target table as text, by id.
async fn wide_on_target(dst: &TestDb) -> Vec<Vec<Option<String>>> {
    let mut pg = PgConnection::connect(&dst.url).await.unwrap();
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 'wide'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    let select: Vec<String> = cols.iter().map(|c| format!("\"{c}\"::text")).collect();
    let sql = format!("SELECT ARRAY[{}] FROM wide ORDER BY id", select.join(", "));
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut pg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_every_mariadb_type_arrives_as_fetch_would_load_it() {
    let (src, dst, start) = setup(WIDE_DDL).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(mylogical::run(config(args(&src, &dst, &start)), stop_rx));
    my_exec(&src.url, WIDE_ROWS).await;
    wait_applied(&dst, &source_pos(&src).await).await;
    assert_eq!(wide_on_target(&dst).await, wide_as_fetch_loads(&src, &dst).await, "inserted");
    // Updated (the key included), NULLed, deleted.
    my_exec(
        &src.url,
        "UPDATE wide SET id = 10, c_text = 'moved' WHERE id = 1; \
         UPDATE wide SET c_tinyint = NULL, c_json = NULL, c_uuid = NULL, c_set = 'a,b,c', c_bit = b'1111111111' WHERE id = 2; \
         UPDATE wide SET c_datetime = '2024-06-01 12:00:00.5', c_decimal = 1.5 WHERE id = 3; DELETE FROM wide WHERE id = 10; \
         INSERT INTO wide (id, c_enum, c_inet6) VALUES (4, 'medium', '2001:db8::1')",
    )
    .await;
    wait_applied(&dst, &source_pos(&src).await).await;
    assert_eq!(wide_on_target(&dst).await, wide_as_fetch_loads(&src, &dst).await, "changed");
    stop_tx.send(true).unwrap();
    engine.await.unwrap().unwrap();
}

/// Starts the replicator binary with `argv`.
fn spawn_replicator(argv: &[String]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_replicator"))
        .args(&argv[1..])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and expects the drained exit 0.
fn terminate(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM drains and exits 0: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_mariadb_restart_mid_stream_is_survived_unattended() {
    // A source of this test's own: the shared one must stay up for the other tests.
    let own = molt_testkit::OwnMariadb::start("mylogical-restart", "").unwrap();
    let src = own.fresh().await;
    let dst = testbed().fresh_pg_target().await;
    let start = prepare(&src, &dst, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL);").await;
    let mut child = spawn_replicator(&args(&src, &dst, &start));
    my_exec(&src.url, "INSERT INTO t SELECT seq, 0 FROM seq_1_to_500").await;
    wait_applied(&dst, &source_pos(&src).await).await;
    for round in 1..=2 {
        // Down for a while (the replicator finds nothing listening), then up again.
        own.stop().unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        own.start_again().unwrap();
        my_exec(
            &src.url,
            &format!(
                "UPDATE t SET v = v + {round} WHERE id % 2 = {}; INSERT INTO t VALUES ({}, {round})",
                round % 2,
                1000 + round
            ),
        )
        .await;
        wait_applied(&dst, &source_pos(&src).await).await;
        assert!(child.try_wait().unwrap().is_none(), "round {round}: the replicator stopped");
    }
    assert_eq!(
        my_rows(&src.url, "t", "id, v", "id").await,
        pg_rows(&dst.url, "t", "id, v", "id").await
    );
    terminate(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_target_restart_mid_stream_is_survived_unattended() {
    // A target of this test's own, stopped twice while the source keeps writing.
    let own =
        molt_testkit::OwnPg::start(&format!("mylogical_target_{}", std::process::id())).unwrap();
    let src = testbed().fresh_mariadb().await;
    let dst = own.fresh().await;
    let start = prepare(&src, &dst, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL);").await;
    let mut child = spawn_replicator(&args(&src, &dst, &start));
    my_exec(&src.url, "INSERT INTO t SELECT seq, 0 FROM seq_1_to_500").await;
    wait_applied(&dst, &source_pos(&src).await).await;
    for round in 1..=2 {
        own.stop().unwrap();
        // Written while the target is down: applied once it is back.
        my_exec(
            &src.url,
            &format!(
                "UPDATE t SET v = v + {round} WHERE id % 2 = {}; INSERT INTO t VALUES ({}, {round})",
                round % 2,
                1000 + round
            ),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        own.start_again().unwrap();
        wait_applied(&dst, &source_pos(&src).await).await;
        assert!(child.try_wait().unwrap().is_none(), "round {round}: the replicator stopped");
    }
    assert_eq!(
        my_rows(&src.url, "t", "id, v", "id").await,
        pg_rows(&dst.url, "t", "id, v", "id").await
    );
    terminate(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_a_time_beyond_a_day_replicates_into_a_column_mapped_to_interval() {
    let (src, dst, start) = setup("CREATE TABLE spans (id INT PRIMARY KEY, tm TIME);").await;
    // As `--type-map-file` makes fetch create it.
    exec(&dst.url, "ALTER TABLE spans ALTER COLUMN tm TYPE interval USING tm::interval").await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(mylogical::run(config(args(&src, &dst, &start)), stop_rx));
    my_exec(
        &src.url,
        "INSERT INTO spans VALUES (1, '-838:59:59'), (2, '100:00:00.5'), (3, '01:02:03')",
    )
    .await;
    let pos = source_pos(&src).await;
    wait_applied(&dst, &pos).await;
    let want = my_rows(&src.url, "spans", "id, CAST(tm AS CHAR)", "id").await;
    assert_eq!(want, ["1|-838:59:59", "2|100:00:00", "3|01:02:03"], "TIME(0) drops the fraction");
    assert_eq!(pg_rows(&dst.url, "spans", "id, tm::text", "id").await, want);
    stop_tx.send(true).unwrap();
    engine.await.unwrap().unwrap();
}
