//! Every MariaDB type through both paths of `molt_source_mysql::value`, against the live test
//! bed: rows inserted into MariaDB are read back with queries (text and binary protocol,
//! `value_text`) and from the binlog (the replicator's reader, `binlog_text`); the texts must
//! be equal, and written to a PostgreSQL column of the mapped type they must read back as
//! what MariaDB's `SELECT` prints (given to PostgreSQL as input for the same type).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use molt_schema::{SourceDialect, Table, TableFilter, TableName, TargetDialect, ddl, map_table};
use molt_source::CatalogReader;
use molt_source_mysql::binlog::{
    BinlogColumn, BinlogOptions, BinlogTable, BinlogValue, Event, RowOp, StartFrom, open,
};
use molt_source_mysql::value::{ValueErrorKind, binlog_text, value_text};
use molt_source_mysql::{MysqlCatalog, connect};
use molt_testkit::testbed;
use molt_url::ConnUrl;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

/// One table `t<n> (id INT PRIMARY KEY, c <ty>)` with a row per value (ids from 1) and a
/// last row of NULL.
struct Case {
    ty: String,
    values: Vec<String>,
}

fn case(ty: &str, values: &[&str]) -> Case {
    Case { ty: ty.into(), values: values.iter().map(|v| (*v).to_owned()).collect() }
}

fn cases() -> Vec<Case> {
    let ones = format!("b'{}'", "1".repeat(64));
    let inet6 = [
        "::",
        "::1",
        "::1.2.3.4",
        "1::",
        "2001:db8::1:0:0:1",
        "2001:0:0:1::1",
        "::ffff:0.0.0.0",
        "::ffff:1.2.3.4",
        "1:2:3:4:5:6:7:8",
        "1:0:3:4:5:6:7:8",
        "::ffff:1:2",
        "0:0:0:0:0:1:0:0",
        "::1:2:3",
        "::fffe:1.2.3.4",
        "1:0:0:2:0:0:3:4",
        "fe80::1:0:0:0",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    let inet6: Vec<String> = inet6.iter().map(|a| format!("'{a}'")).collect();
    let sets = ["''", "'a'", "'b'", "'a,b'", "'c'", "'c,a'", "'b,c'", "'a,b,c'", "'b,a,c,a'"];
    vec![
        case("TINYINT", &["-128", "127", "0"]),
        case("TINYINT UNSIGNED", &["0", "255"]),
        case("BOOL", &["0", "1", "-128"]),
        case("SMALLINT", &["-32768", "32767"]),
        case("SMALLINT UNSIGNED", &["65535", "0"]),
        case("MEDIUMINT", &["-8388608", "8388607", "-1", "0"]),
        case("MEDIUMINT UNSIGNED", &["16777215", "8388608"]),
        case("INT", &["-2147483648", "2147483647"]),
        case("INT UNSIGNED", &["4294967295", "2147483648"]),
        case("BIGINT", &["-9223372036854775808", "9223372036854775807"]),
        case("BIGINT UNSIGNED", &["18446744073709551615", "9223372036854775808", "0"]),
        case(
            "FLOAT",
            &[
                "0.1",
                "3.4028234e38",
                "-3.4028234e38",
                "1.17549435e-38",
                "1.4e-45",
                "16777217",
                "1/3",
                "-0e0",
                "123456.7",
            ],
        ),
        case(
            "DOUBLE",
            &[
                "0.30000000000000004e0",
                "5e-324",
                "1.7976931348623157e308",
                "-2.2250738585072014e-308",
                "pi()",
                "1e15",
                "123456789012345680000e0",
                "0.1e0",
            ],
        ),
        case(
            "DECIMAL(65,30)",
            &[
                "99999999999999999999999999999999999.999999999999999999999999999999",
                "-0.000000000000000000000000000001",
                "0",
                "-12345678901234567890123456789012345.123456789012345678901234567890",
            ],
        ),
        case("DECIMAL(10,0)", &["-9999999999", "0", "1"]),
        case("DECIMAL(5,2)", &["-0.5", "999.99", "0.05", "-999.99"]),
        case("CHAR(5)", &["''", "'ab  '", "' a'", "'ü😀'"]),
        case(
            "VARCHAR(40)",
            &[
                "''",
                r#"'quote'' "dq" ,comma'"#,
                r"'tab\tnl\ncr\r'",
                r"'\\N'",
                "'NULL'",
                "'ü😀€'",
                r"'back\\slash'",
            ],
        ),
        case(
            "VARCHAR(20) CHARACTER SET latin1",
            &["'café'", "_utf8mb4'€‚ƒ„…†‡ˆ‰Š‹ŒŽ'", "_latin1 x'818d8f909d'", "_utf8mb4'ÿ'"],
        ),
        case("TEXT CHARACTER SET ascii", &["'plain'"]),
        case("TEXT", &["repeat('x', 5000)", "''"]),
        case("LONGTEXT", &["'ü'"]),
        case("BINARY(4)", &["x'00'", "'ab'", "x'00000000'", "x'ffffffff'", "x'00000001'"]),
        case("VARBINARY(10)", &["''", "x'00ff00'", "x'00'"]),
        case("BLOB", &["x'000102ff'", "''"]),
        case("DATE", &["'1000-01-01'", "'9999-12-31'", "'2000-02-29'", "'0001-01-01'"]),
        case("DATETIME", &["'1000-01-01 00:00:00'", "'9999-12-31 23:59:59'"]),
        case("DATETIME(1)", &["'2020-01-01 00:00:00.1'", "'2020-01-01 00:00:00'"]),
        case("DATETIME(3)", &["'2020-01-01 10:20:30.120'", "'0001-01-01 00:00:00.001'"]),
        case("DATETIME(6)", &["'9999-12-31 23:59:59.999999'", "'2000-02-29 12:00:00.000001'"]),
        case("TIMESTAMP NULL", &["'1970-01-01 00:00:01'", "'2038-01-19 03:14:07'"]),
        case("TIMESTAMP(3) NULL", &["'2001-02-03 04:05:06.789'"]),
        case(
            "TIMESTAMP(6) NULL",
            &["'1970-01-01 00:00:01.000001'", "'2038-01-19 03:14:07.999999'"],
        ),
        case("TIME", &["'00:00:00'", "'23:59:59'", "'24:00:00'"]),
        case("TIME(1)", &["'00:00:00.5'", "'12:00:00.1'"]),
        case("TIME(3)", &["'00:00:00.999'"]),
        case("TIME(6)", &["'12:34:56.789012'", "'23:59:59.999999'"]),
        case("YEAR", &["0", "1901", "2155", "2024"]),
        case("BIT(1)", &["b'0'", "b'1'"]),
        case("BIT(10)", &["b'1000000001'", "b'0'", "b'1111111111'"]),
        case("BIT(64)", &[ones.as_str(), "0", "b'1'"]),
        case(
            "JSON",
            &[
                r#"'{"a": [1, 2.50, null]}'"#,
                "'[]'",
                r#"'"just a string"'"#,
                "'null'",
                r#"'{"k": {"n": 1e10}}'"#,
                r#"'"\\u00e9 ü \\ud83d\\ude00"'"#,
                "' [1,2] '",
            ],
        ),
        case(
            "ENUM('small','medium','large','happy days','überglücklich')",
            &["'small'", "'medium'", "'large'", "'happy days'", "'überglücklich'"],
        ),
        Case {
            ty: "SET('a','b','c')".into(),
            values: sets.iter().map(|s| (*s).to_owned()).collect(),
        },
        case(
            "UUID",
            &[
                "'00000000-0000-0000-0000-000000000000'",
                "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
                "'6ccd780c-baba-1026-9564-5b8c656024db'",
                "'12345678-9abc-4ef0-8123-456789abcdef'",
                "'018f1d2e-3c4b-7a69-8d7e-0123456789ab'",
                "'00000000-0000-1000-8000-000000000000'",
            ],
        ),
        Case { ty: "INET6".into(), values: inet6 },
        case("INET4", &["'0.0.0.0'", "'10.0.0.1'", "'255.255.255.255'"]),
    ]
}

/// Row values of our database from the binlog: table → id → the value of column `c`.
type BinlogRows = HashMap<String, HashMap<i64, BinlogValue<'static>>>;

/// A server id of our own, so that two tests reading the binlog do not disconnect each other.
fn server_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    0x4000_0000 | (std::process::id() << 8) | (N.fetch_add(1, Ordering::Relaxed) & 0xff)
}

/// Row values of our database from the binlog, read by the replicator's own reader from
/// `start` until the insert into `marker`, with each table's columns as its table map gives
/// them.
async fn read_binlog(
    url: &str,
    db: &str,
    start: &str,
) -> (BinlogRows, HashMap<String, Vec<BinlogColumn>>) {
    let url = ConnUrl::parse(url).unwrap();
    let opts = BinlogOptions { server_id: server_id(), heartbeat: Duration::from_secs(1) };
    let mut reader = open(&url, &StartFrom::Mariadb(start.parse().unwrap()), &opts).await.unwrap();
    let mut maps: HashMap<u64, Arc<BinlogTable>> = HashMap::new();
    let mut rows = BinlogRows::new();
    let mut columns = HashMap::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), reader.next())
            .await
            .expect("the marker row in the binlog")
            .unwrap();
        match event {
            Event::TableMap(table) => {
                maps.insert(table.id, table);
            }
            Event::Rows { table_id, op: RowOp::Insert(images) } => {
                let table = &maps[&table_id];
                if table.schema != db {
                    continue;
                }
                if table.name == "marker" {
                    return (rows, columns);
                }
                columns.entry(table.name.clone()).or_insert_with(|| table.columns.clone());
                for image in images {
                    let Some(Some(BinlogValue::Value(Value::Int(id)))) = image.first().cloned()
                    else {
                        panic!("id of {}", table.name)
                    };
                    let v = image.get(1).cloned().flatten().expect("column c in the image");
                    rows.entry(table.name.clone()).or_default().insert(id, v);
                }
            }
            _ => {}
        }
    }
}

/// A MariaDB database holding `cases`, the position before the inserts, and its catalog.
async fn load(cases: &[Case], sql_mode: &str) -> (String, String, String, Vec<Table>) {
    let bed = testbed();
    let db = bed.fresh_mariadb().await;
    let mut conn = Conn::from_url(db.url.as_str()).await.unwrap();
    conn.query_drop(format!("SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = '{sql_mode}'"))
        .await
        .unwrap();
    for (n, c) in cases.iter().enumerate() {
        conn.query_drop(format!("CREATE TABLE t{n} (id INT PRIMARY KEY, c {})", c.ty))
            .await
            .unwrap();
    }
    conn.query_drop("CREATE TABLE marker (id INT PRIMARY KEY)").await.unwrap();
    let start: String = conn.query_first("SELECT @@gtid_binlog_pos").await.unwrap().unwrap();
    for (n, c) in cases.iter().enumerate() {
        let rows: Vec<String> = c
            .values
            .iter()
            .chain(std::iter::once(&"NULL".to_owned()))
            .enumerate()
            .map(|(i, v)| format!("({}, {v})", i + 1))
            .collect();
        let sql = format!("INSERT INTO t{n} VALUES {}", rows.join(", "));
        conn.query_drop(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.query_drop("INSERT INTO marker VALUES (1)").await.unwrap();
    let pool = connect(&ConnUrl::parse(&db.url).unwrap()).await.unwrap();
    let tables = MysqlCatalog::new(pool).tables(&TableFilter::all()).await.unwrap();
    (db.url, db.name, start, tables)
}

/// The column `c` of table `t`, read with `sql` through both protocols: (id, text protocol
/// value, binary protocol value).
async fn select(conn: &mut Conn, sql: &str) -> Vec<(i64, Value, Value)> {
    let text: Vec<(i64, Value)> = conn.query(sql).await.unwrap();
    let binary: Vec<(i64, Value)> = conn.exec(sql, ()).await.unwrap();
    text.into_iter().zip(binary).map(|((id, t), (_, b))| (id, t, b)).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What MariaDB's `SELECT` printed, as input for the target's type: MariaDB prints some types
/// in forms PostgreSQL does not read (`YEAR` 0000, bytes, bits, TIMESTAMP without a zone).
fn oracle(ty: &str, printed: &Value) -> Option<String> {
    let Value::Bytes(b) = printed else { return None };
    let s = String::from_utf8(b.clone()).unwrap_or_default();
    let ty = ty.to_ascii_lowercase();
    Some(if ty.starts_with("year") && s == "0000" {
        "0".into()
    } else if ty.starts_with("binary") || ty.starts_with("varbinary") || ty.starts_with("blob") {
        format!("\\x{}", hex(b))
    } else if let Some(width) = ty.strip_prefix("bit(") {
        let width: usize = width.trim_end_matches(')').parse().unwrap();
        let bits: String = b.iter().map(|x| format!("{x:08b}")).collect();
        bits[bits.len() - width..].to_owned()
    } else if ty.starts_with("timestamp") {
        format!("{s}+00")
    } else if ty == "bool" {
        // BOOL is TINYINT(1): the catalog and the target see a number.
        s
    } else {
        s
    })
}

/// Types whose text is what MariaDB's `SELECT` prints (after [`oracle`]); the others print
/// fractions, floats and zones in PostgreSQL's forms.
fn prints_as_mariadb(name: &str) -> bool {
    !matches!(name, "float" | "double" | "datetime" | "timestamp" | "time")
}

#[tokio::test]
async fn every_type_is_the_same_text_from_a_query_and_the_binlog_and_lands_exactly() {
    let cases = cases();
    let (url, db, start, tables) = load(&cases, "STRICT_TRANS_TABLES").await;
    let (binlog, columns) = read_binlog(&url, &db, &start).await;
    let mut conn = Conn::from_url(url.as_str()).await.unwrap();
    conn.query_drop("SET NAMES utf8mb4, time_zone = '+00:00'").await.unwrap();

    let bed = testbed();
    let dst = bed.fresh_pg_target().await;
    let pg = molt_source_pg::connect(&ConnUrl::parse(&dst.url).unwrap(), 1).await.unwrap();
    sqlx::raw_sql("SET TimeZone = 'UTC'").execute(&pg).await.unwrap();

    for (n, c) in cases.iter().enumerate() {
        let name = format!("t{n}");
        let table = tables.iter().find(|t| t.name.table == name).unwrap();
        let source_type = &table.column("c").unwrap().ty;
        let mapped = &columns[&name][1];
        let from_binlog = &binlog[&name];
        // FLOAT's text is rounded by the server: the oracle reads it as an exact DOUBLE.
        let is_float = source_type.name == "float";
        let oracle_col = if is_float { "CAST(c AS DOUBLE)" } else { "c" };
        let rows = select(&mut conn, &format!("SELECT id, c FROM {name} ORDER BY id")).await;
        let printed =
            select(&mut conn, &format!("SELECT id, {oracle_col} FROM {name} ORDER BY id")).await;

        let mut texts: Vec<(i32, Option<String>)> = Vec::new();
        let mut expected: Vec<(i32, Option<String>)> = Vec::new();
        for ((id, text_v, binary_v), (_, printed_v, _)) in rows.iter().zip(&printed) {
            let what = format!("{} row {id}", c.ty);
            let via_binary =
                value_text(source_type, binary_v).unwrap_or_else(|e| panic!("{what}: {e}"));
            let via_text = value_text(source_type, text_v);
            if is_float && *text_v != Value::NULL {
                assert_eq!(via_text.unwrap_err().kind(), &ValueErrorKind::LossyFloat, "{what}");
            } else {
                assert_eq!(via_text.as_ref(), Ok(&via_binary), "{what}: text and binary protocol");
            }
            let raw = &from_binlog[id];
            let via_binlog = binlog_text(mapped, Some(source_type), raw)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(via_binlog, via_binary, "{what}: binlog {raw:?} and query");
            let id = i32::try_from(*id).unwrap();
            let printed = oracle(&c.ty, printed_v);
            if prints_as_mariadb(&source_type.name) {
                assert_eq!(via_binlog, printed, "{what}: MariaDB's SELECT prints it so");
            }
            texts.push((id, via_binlog));
            expected.push((id, printed));
        }
        assert_eq!(texts.len(), c.values.len() + 1, "{}", c.ty);
        check_on_target(&pg, table, &texts, &expected).await;
    }
}

/// Creates `table` on the PostgreSQL target, writes `texts` cast to the mapped type, and checks
/// each reads back as `expected` (MariaDB's printed value) read as that type.
async fn check_on_target(
    pg: &sqlx::PgPool,
    table: &Table,
    texts: &[(i32, Option<String>)],
    expected: &[(i32, Option<String>)],
) {
    let target = TableName::new("public", table.name.table.clone());
    let mapped =
        map_table(SourceDialect::Mysql, table, &target, TargetDialect::Postgres, None).unwrap();
    for stmt in ddl::create_statements(&mapped, TargetDialect::Postgres) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.clone()))
            .execute(pg)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let ty = mapped.columns[1].ty.render(TargetDialect::Postgres);
    let (ids, values): (Vec<i32>, Vec<Option<String>>) = texts.iter().cloned().unzip();
    let insert = format!(
        "INSERT INTO {} (id, c) SELECT i, v::{ty} FROM unnest($1::int4[], $2::text[]) AS u(i, v)",
        target.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
        .bind(&ids)
        .bind(&values)
        .execute(pg)
        .await
        .unwrap_or_else(|e| panic!("{insert} {values:?}: {e}"));
    let stored: Vec<(i32, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, c::text FROM {} ORDER BY id",
        target.quoted()
    )))
    .fetch_all(pg)
    .await
    .unwrap();
    let (ids, printed): (Vec<i32>, Vec<Option<String>>) = expected.iter().cloned().unzip();
    let want: Vec<(i32, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT i, v::{ty}::text FROM unnest($1::int4[], $2::text[]) AS u(i, v) ORDER BY i"
    )))
    .bind(&ids)
    .bind(&printed)
    .fetch_all(pg)
    .await
    .unwrap_or_else(|e| panic!("{ty} {printed:?}: {e}"));
    assert_eq!(stored, want, "{}: written {values:?}", table.name);
}

/// Values the target cannot hold, stored by MariaDB without strict modes: both paths refuse
/// them with the same reason.
#[tokio::test]
async fn values_the_target_cannot_hold_are_refused_the_same_way_on_both_paths() {
    let cases = vec![
        case("DATE", &["'0000-00-00'", "'2020-00-15'", "'0000-01-01'"]),
        case("DATETIME(6)", &["'0000-00-00 00:00:00'", "'2020-01-00 10:00:00'"]),
        case("TIMESTAMP NULL", &["'0000-00-00 00:00:00'"]),
        case("TIME", &["'-838:59:59'", "'838:59:59'", "'-00:00:01'", "'24:00:01'"]),
        case("TIME(6)", &["'-838:59:59.999999'", "'100:00:00.5'"]),
        case("TIME(3)", &["'-00:00:00.001'"]),
        case("ENUM('x','y')", &["'z'"]),
        case("VARCHAR(10)", &["concat('a', char(0), 'b')"]),
        case("JSON", &[r#"'"\\u0000"'"#, "'[1.]'"]),
    ];
    let (url, db, start, tables) = load(&cases, "").await;
    let (binlog, columns) = read_binlog(&url, &db, &start).await;
    let mut conn = Conn::from_url(url.as_str()).await.unwrap();
    conn.query_drop("SET NAMES utf8mb4, time_zone = '+00:00'").await.unwrap();
    for (n, c) in cases.iter().enumerate() {
        let name = format!("t{n}");
        let table = tables.iter().find(|t| t.name.table == name).unwrap();
        let source_type = &table.column("c").unwrap().ty;
        let mapped = &columns[&name][1];
        for (id, text_v, binary_v) in
            select(&mut conn, &format!("SELECT id, c FROM {name} WHERE c IS NOT NULL ORDER BY id"))
                .await
        {
            let what = format!("{} row {id}", c.ty);
            let binlog_err =
                binlog_text(mapped, Some(source_type), &binlog[&name][&id]).expect_err(&what);
            assert_eq!(binlog_err.column(), Some("c"), "{what}");
            let text_err = value_text(source_type, &text_v).expect_err(&what);
            let binary_err = value_text(source_type, &binary_v).expect_err(&what);
            assert_eq!(text_err.kind(), binlog_err.kind(), "{what}: {binlog_err}");
            assert_eq!(binary_err.kind(), binlog_err.kind(), "{what}: {binlog_err}");
            let message = binlog_err.to_string();
            assert!(
                message.starts_with(&format!("column c ({}): ", source_type.spelling)),
                "{message}"
            );
        }
    }
}
