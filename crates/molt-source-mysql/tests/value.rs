//! Every MariaDB type through both paths of `molt_source_mysql::value`, against the live test
//! bed: rows inserted into MariaDB are read back with queries (text and binary protocol,
//! `value_text`) and from the binlog (a minimal reader here, `binlog_text_in`); the texts must
//! be equal, and written to a PostgreSQL column of the mapped type they must read back as
//! what MariaDB's `SELECT` prints (given to PostgreSQL as input for the same type).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::StreamExt;
use molt_schema::{SourceDialect, Table, TableFilter, TableName, TargetDialect, ddl, map_table};
use molt_source::CatalogReader;
use molt_source_mysql::binlog::{BinlogColumn, BinlogValue};
use molt_source_mysql::value::{Charset, ValueErrorKind, binlog_text_in, value_text};
use molt_source_mysql::{MysqlCatalog, connect};
use molt_testkit::testbed;
use molt_url::ConnUrl;
use mysql_async::binlog::events::{EventData, OptionalMetaExtractor, OptionalMetadataField};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, Row, Value};

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

/// A binlog column as a table map describes it, with the collation of text columns.
struct MappedColumn {
    col: BinlogColumn,
    charset: Charset,
}

/// Row values of our database from the binlog: table → id → the value of column `c`.
type BinlogRows = HashMap<String, HashMap<i64, BinlogValue<'static>>>;

/// A server id of our own, so that two tests reading the binlog do not disconnect each other.
fn server_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    0x4000_0000 | (std::process::id() << 8) | (N.fetch_add(1, Ordering::Relaxed) & 0xff)
}

async fn master_status(conn: &mut Conn) -> (String, u64) {
    let row: Row = conn.query_first("SHOW MASTER STATUS").await.unwrap().unwrap();
    (row.get(0).unwrap(), row.get(1).unwrap())
}

/// Reads the binlog from `file`/`pos` until the insert into `marker`, keeping our database's
/// inserted rows with their table-map columns.
async fn read_binlog(
    url: &str,
    db: &str,
    (file, pos): (String, u64),
) -> (BinlogRows, HashMap<String, Vec<MappedColumn>>) {
    let conn = Conn::from_url(url).await.unwrap();
    let request =
        BinlogStreamRequest::new(server_id()).with_filename(file.as_bytes()).with_pos(pos);
    let mut stream = conn.get_binlog_stream(request).await.unwrap();
    let mut rows = BinlogRows::new();
    let mut columns = HashMap::new();
    while let Some(event) = stream.next().await {
        let event = event.unwrap();
        let Ok(Some(EventData::RowsEvent(ev))) = event.read_data() else { continue };
        let tme = stream.get_tme(ev.table_id()).expect("table map before rows");
        if tme.database_name() != db {
            continue;
        }
        let table = tme.table_name().into_owned();
        if table == "marker" {
            break;
        }
        columns.entry(table.clone()).or_insert_with(|| table_columns(tme));
        for row in ev.rows(tme) {
            let (_, after) = row.unwrap();
            let after = after.expect("an insert");
            let Some(BinlogValue::Value(Value::Int(id))) = after.as_ref(0).cloned() else {
                panic!("id of {table}")
            };
            let v = after.as_ref(1).cloned().expect("column c in the image").into_owned();
            rows.entry(table.clone()).or_default().insert(id, v);
        }
    }
    (rows, columns)
}

/// What the replicator's stream reader does with a table map: types, metadata, signedness,
/// charsets, names and ENUM/SET labels from `binlog_row_metadata=FULL`.
fn table_columns(tme: &mysql_async::binlog::events::TableMapEvent<'_>) -> Vec<MappedColumn> {
    let meta = OptionalMetaExtractor::new(tme.iter_optional_meta()).unwrap();
    let mut signedness = meta.iter_signedness();
    let mut charsets = meta.iter_charset();
    let mut enum_set_charsets = meta.iter_enum_and_set_charset();
    let mut names = meta.iter_column_name();
    let (mut enums, mut sets) = (Vec::new(), Vec::new());
    for field in tme.iter_optional_meta() {
        match field.unwrap() {
            OptionalMetadataField::EnumStrValue(v) => {
                for labels in v.iter_values() {
                    let labels = labels.unwrap();
                    enums.push(labels.values().iter().map(|l| l.value().into_owned()).collect());
                }
            }
            OptionalMetadataField::SetStrValue(v) => {
                for labels in v.iter_values() {
                    let labels = labels.unwrap();
                    sets.push(labels.values().iter().map(|l| l.value().into_owned()).collect());
                }
            }
            _ => {}
        }
    }
    let (mut enums, mut sets) = (enums.into_iter(), sets.into_iter());
    (0..tme.columns_count() as usize)
        .map(|i| {
            let column_type = tme.get_column_type(i).unwrap().unwrap();
            let collation = if column_type.is_character_type() {
                charsets.next().map(|c| c.unwrap())
            } else if column_type.is_enum_or_set_type() {
                enum_set_charsets.next().map(|c| c.unwrap())
            } else {
                None
            };
            let col = BinlogColumn {
                name: names.next().map(|n| n.unwrap().name().into_owned()).unwrap_or_default(),
                column_type,
                metadata: tme.get_column_metadata(i).unwrap_or(&[]).to_vec(),
                unsigned: column_type.is_numeric_type() && signedness.next().unwrap_or(false),
                binary: collation == Some(63),
                enum_labels: if column_type.is_enum_type() {
                    enums.next().unwrap_or_default()
                } else {
                    Vec::new()
                },
                set_labels: if column_type.is_set_type() {
                    sets.next().unwrap_or_default()
                } else {
                    Vec::new()
                },
                primary_key: i == 0,
            };
            MappedColumn { col, charset: collation.map_or(Charset::Utf8, Charset::from_collation) }
        })
        .collect()
}

/// A MariaDB database holding `cases`, the position before the inserts, and its catalog.
async fn load(cases: &[Case], sql_mode: &str) -> (String, String, (String, u64), Vec<Table>) {
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
    let start = master_status(&mut conn).await;
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
    let (binlog, columns) = read_binlog(&url, &db, start).await;
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
            let via_binlog = binlog_text_in(&mapped.col, mapped.charset, Some(source_type), raw)
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
    let (binlog, columns) = read_binlog(&url, &db, start).await;
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
                binlog_text_in(&mapped.col, mapped.charset, Some(source_type), &binlog[&name][&id])
                    .expect_err(&what);
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
