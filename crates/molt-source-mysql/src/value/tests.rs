//! Unit tests on the value shapes `mysql_common` 0.37.3 produced on MariaDB 10.11 (see
//! `read.rs`); `tests/value.rs` checks the same against the live servers.

use molt_schema::{ColumnType, SourceDialect};
use mysql_async::Value;
use mysql_async::binlog::jsonb::{self, JsonbString};
use mysql_async::consts::ColumnType as Wire;
use proptest::prelude::*;

use super::json::{self, Op};
use super::*;

fn col(t: Wire, meta: &[u8]) -> BinlogColumn {
    BinlogColumn {
        name: "c".into(),
        column_type: t,
        metadata: meta.to_vec(),
        unsigned: false,
        collation: None,
        enum_labels: Vec::new(),
        set_labels: Vec::new(),
        primary_key: false,
    }
}

fn binary(t: Wire, meta: &[u8]) -> BinlogColumn {
    BinlogColumn { collation: Some(63), ..col(t, meta) }
}

fn ty(s: &str) -> ColumnType {
    ColumnType::parse(SourceDialect::Mysql, s).unwrap()
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

/// The binlog text of `v` in column `c` of catalog type `t`.
fn bl(c: &BinlogColumn, t: &str, v: Value) -> Result<String, ValueErrorKind> {
    binlog_text(c, Some(&ty(t)), &BinlogValue::Value(v))
        .map(|s| s.expect("not NULL"))
        .map_err(|e| e.kind().clone())
}

/// The query text of `v` for catalog type `t`.
fn q(t: &str, v: Value) -> Result<String, ValueErrorKind> {
    value_text(&ty(t), &v).map(|s| s.expect("not NULL")).map_err(|e| e.kind().clone())
}

fn ok(s: &str) -> Result<String, ValueErrorKind> {
    Ok(s.to_owned())
}

#[test]
fn null_is_none_on_both_paths() {
    let c = col(Wire::MYSQL_TYPE_LONG, &[]);
    assert_eq!(binlog_text(&c, None, &BinlogValue::Value(Value::NULL)), Ok(None));
    assert_eq!(value_text(&ty("json"), &Value::NULL), Ok(None));
}

#[test]
fn integers_are_the_stored_bits_read_with_the_catalogs_signedness() {
    let med = col(Wire::MYSQL_TYPE_INT24, &[]);
    // mysql_common does not sign-extend MEDIUMINT: -1 arrives as 16777215.
    assert_eq!(bl(&med, "mediumint", Value::Int(16_777_215)), ok("-1"));
    assert_eq!(bl(&med, "mediumint", Value::Int(8_388_608)), ok("-8388608"));
    assert_eq!(bl(&med, "mediumint", Value::Int(8_388_607)), ok("8388607"));
    assert_eq!(bl(&med, "mediumint unsigned", Value::Int(16_777_215)), ok("16777215"));
    // Without signedness metadata every integer decodes as signed.
    assert_eq!(bl(&col(Wire::MYSQL_TYPE_TINY, &[]), "tinyint unsigned", Value::Int(-1)), ok("255"));
    let big = col(Wire::MYSQL_TYPE_LONGLONG, &[]);
    assert_eq!(bl(&big, "bigint unsigned", Value::Int(-1)), ok("18446744073709551615"));
    assert_eq!(bl(&big, "bigint unsigned", Value::UInt(u64::MAX)), ok("18446744073709551615"));
    assert_eq!(bl(&big, "bigint", Value::Int(i64::MIN)), ok("-9223372036854775808"));
    assert_eq!(q("bigint unsigned", bytes(b"18446744073709551615")), ok("18446744073709551615"));
    assert_eq!(q("bigint unsigned", Value::UInt(u64::MAX)), ok("18446744073709551615"));
    assert_eq!(q("int unsigned", Value::Int(4_294_967_295)), ok("4294967295"));
    assert!(matches!(q("tinyint", Value::Int(300)), Err(ValueErrorKind::OutOfRange { .. })));
    assert!(matches!(q("int", bytes(b"12a")), Err(ValueErrorKind::Unexpected { .. })));
    assert_eq!(q("bool", Value::Int(1)), ok("true"));
    assert!(matches!(q("bool", bytes(b"2")), Err(ValueErrorKind::OutOfRange { .. })));
}

#[test]
fn year_zero_is_0_and_mysql_commons_1900_means_it() {
    let c = col(Wire::MYSQL_TYPE_YEAR, &[]);
    assert_eq!(bl(&c, "year", bytes(b"1900")), ok("0"));
    assert_eq!(bl(&c, "year", bytes(b"1901")), ok("1901"));
    assert_eq!(bl(&c, "year", bytes(b"2155")), ok("2155"));
    assert_eq!(q("year", bytes(b"0000")), ok("0"));
    assert_eq!(q("year", Value::Int(2155)), ok("2155"));
    assert!(matches!(q("year", Value::Int(1900)), Err(ValueErrorKind::OutOfRange { .. })));
}

#[test]
fn floats_are_shortest_round_trip_text() {
    let c = col(Wire::MYSQL_TYPE_FLOAT, &[4]);
    for (f, text) in [
        (1.0f32 / 3.0, "0.33333334"),
        (16_777_216.0, "16777216"),
        (f32::MAX, "3.4028235e38"),
        (f32::MIN_POSITIVE, "1.1754944e-38"),
        (1e-45, "1e-45"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (f32::NAN, "NaN"),
        (f32::NEG_INFINITY, "-Infinity"),
    ] {
        assert_eq!(bl(&c, "float", Value::Float(f)), ok(text));
        assert_eq!(q("float", Value::Float(f)), ok(text));
    }
    // The text protocol rounds FLOAT to 6 digits; a FLOAT selected as DOUBLE is exact.
    assert_eq!(q("float", bytes(b"0.333333")), Err(ValueErrorKind::LossyFloat));
    assert_eq!(q("float", Value::Double(f64::from(1.0f32 / 3.0))), ok("0.33333334"));
    assert!(matches!(q("float", Value::Double(0.1)), Err(ValueErrorKind::OutOfRange { .. })));
    let d = col(Wire::MYSQL_TYPE_DOUBLE, &[8]);
    for (f, text) in [(0.1 + 0.2, "0.30000000000000004"), (5e-324, "5e-324"), (1e308, "1e308")] {
        assert_eq!(bl(&d, "double", Value::Double(f)), ok(text));
        assert_eq!(q("double", bytes(text.as_bytes())), ok(text));
    }
}

#[test]
fn decimals_keep_their_digits_and_scale() {
    let c = col(Wire::MYSQL_TYPE_NEWDECIMAL, &[10, 3]);
    for (raw, text) in [
        ("-1234567.891", "-1234567.891"),
        ("0.000", "0.000"),
        ("-0.000", "0.000"),
        ("007.50", "7.50"),
        ("-0.001", "-0.001"),
        ("5", "5"),
    ] {
        assert_eq!(bl(&c, "decimal(10,3)", bytes(raw.as_bytes())), ok(text));
        assert_eq!(q("decimal(10,3)", bytes(raw.as_bytes())), ok(text));
    }
    for bad in ["", ".", "1.", "-", "1e5", "+1", "1.2.3", " 1"] {
        assert!(
            matches!(q("decimal", bytes(bad.as_bytes())), Err(ValueErrorKind::Unexpected { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn text_in_the_columns_charset_without_nul() {
    let c = col(Wire::MYSQL_TYPE_VARCHAR, &[40, 0]);
    let latin1_col = BinlogColumn { collation: Some(8), ..c.clone() };
    let latin1 = |b: &[u8]| {
        binlog_text(&latin1_col, Some(&ty("varchar(10)")), &BinlogValue::Value(bytes(b)))
    };
    assert_eq!(latin1(b"\x80 caf\xe9"), Ok(Some("€ café".into())));
    assert_eq!(bl(&c, "varchar(10)", bytes("ü😀".as_bytes())), ok("ü😀"));
    assert_eq!(bl(&c, "varchar(10)", bytes(b"a\0b")), Err(ValueErrorKind::Nul));
    assert_eq!(q("text", bytes(b"a\0b")), Err(ValueErrorKind::Nul));
    assert_eq!(
        bl(&c, "varchar(10)", bytes(b"\x80")),
        Err(ValueErrorKind::InvalidText { charset: "UTF-8" })
    );
    let other_col = BinlogColumn { collation: Some(35), ..c.clone() };
    let other = binlog_text(&other_col, None, &BinlogValue::Value(bytes(b"a")));
    assert_eq!(other.unwrap_err().kind(), &ValueErrorKind::UnsupportedCharset { collation: 35 });
}

#[test]
fn binary_n_gets_back_the_zero_bytes_the_binlog_strips() {
    let fixed = binary(Wire::MYSQL_TYPE_STRING, &[254, 4]);
    assert_eq!(bl(&fixed, "binary(4)", bytes(b"ab")), ok("\\x61620000"));
    assert_eq!(bl(&fixed, "binary(4)", bytes(b"")), ok("\\x00000000"));
    assert_eq!(q("binary(4)", bytes(b"ab\0\0")), ok("\\x61620000"));
    let var = binary(Wire::MYSQL_TYPE_VARCHAR, &[10, 0]);
    assert_eq!(bl(&var, "varbinary(10)", bytes(b"a\0")), ok("\\x6100"));
    assert_eq!(bl(&binary(Wire::MYSQL_TYPE_BLOB, &[2]), "blob", bytes(b"")), ok("\\x"));
    // Without a catalog type the table map alone gives the width.
    assert_eq!(
        binlog_text(&fixed, None, &BinlogValue::Value(bytes(b"a"))),
        Ok(Some("\\x61000000".into()))
    );
}

#[test]
fn dates_refuse_zero_and_invalid_parts() {
    let c = col(Wire::MYSQL_TYPE_NEWDATE, &[]);
    let date = |y, m, d| Value::Date(y, m, d, 0, 0, 0, 0);
    assert_eq!(bl(&c, "date", date(9999, 12, 31)), ok("9999-12-31"));
    assert_eq!(bl(&c, "date", date(1, 1, 1)), ok("0001-01-01"));
    assert_eq!(
        bl(&c, "date", date(0, 0, 0)),
        Err(ValueErrorKind::ZeroDate { value: "0000-00-00".into() })
    );
    assert_eq!(
        bl(&c, "date", date(2020, 0, 15)),
        Err(ValueErrorKind::ZeroDate { value: "2020-00-15".into() })
    );
    assert_eq!(
        q("date", bytes(b"0000-01-01")),
        Err(ValueErrorKind::ZeroDate { value: "0000-01-01".into() })
    );
    assert!(matches!(q("date", bytes(b"2021-02-29")), Err(ValueErrorKind::InvalidDate { .. })));
    assert_eq!(q("date", bytes(b"2000-02-29")), ok("2000-02-29"));
    let dt = col(Wire::MYSQL_TYPE_DATETIME2, &[2]);
    assert_eq!(
        bl(&dt, "datetime(2)", Value::Date(2020, 1, 1, 10, 20, 30, 120_000)),
        ok("2020-01-01 10:20:30.12")
    );
    assert_eq!(q("datetime(2)", bytes(b"2020-01-01 10:20:30.12")), ok("2020-01-01 10:20:30.12"));
    assert_eq!(
        q("datetime(6)", bytes(b"0001-01-01 00:00:00.000001")),
        ok("0001-01-01 00:00:00.000001")
    );
    assert_eq!(
        q("datetime", bytes(b"0000-00-00 00:00:00")),
        Err(ValueErrorKind::ZeroDate { value: "0000-00-00 00:00:00".into() })
    );
    assert!(matches!(
        q("datetime", bytes(b"2020-01-01 24:00:00")),
        Err(ValueErrorKind::Unexpected { .. })
    ));
}

#[test]
fn timestamps_are_utc_instants() {
    let c = col(Wire::MYSQL_TYPE_TIMESTAMP2, &[6]);
    assert_eq!(bl(&c, "timestamp(6)", bytes(b"1.500000")), ok("1970-01-01 00:00:01.5+00"));
    assert_eq!(bl(&c, "timestamp", bytes(b"2147483647")), ok("2038-01-19 03:14:07+00"));
    assert_eq!(
        bl(&c, "timestamp(3)", bytes(b"981173106.789000")),
        ok("2001-02-03 04:05:06.789+00")
    );
    // mysql_common reads the stored u32 as i32: MariaDB 11.5+ stores up to 2106.
    assert_eq!(bl(&c, "timestamp", bytes(b"-1")), ok("2106-02-07 06:28:15+00"));
    assert!(matches!(bl(&c, "timestamp", bytes(b"0")), Err(ValueErrorKind::ZeroDate { .. })));
    let old = col(Wire::MYSQL_TYPE_TIMESTAMP, &[]);
    assert_eq!(bl(&old, "timestamp", Value::Int(981_173_106)), ok("2001-02-03 04:05:06+00"));
    assert_eq!(
        q("timestamp(3)", bytes(b"2001-02-03 04:05:06.789")),
        ok("2001-02-03 04:05:06.789+00")
    );
    assert_eq!(
        q("timestamp(6)", Value::Date(1970, 1, 1, 0, 0, 1, 500_000)),
        ok("1970-01-01 00:00:01.5+00")
    );
}

#[test]
fn time_of_day_only() {
    let c = col(Wire::MYSQL_TYPE_TIME2, &[6]);
    let t = |neg, d, h, m, s, us| Value::Time(neg, d, h, m, s, us);
    assert_eq!(bl(&c, "time(6)", t(false, 0, 12, 0, 0, 100_000)), ok("12:00:00.1"));
    assert_eq!(bl(&c, "time(6)", t(false, 1, 0, 0, 0, 0)), ok("24:00:00"));
    assert_eq!(bl(&c, "time(6)", t(true, 0, 0, 0, 0, 0)), ok("00:00:00"));
    let oor = |i: &str| Err(ValueErrorKind::TimeOutOfRange { interval: i.into() });
    assert_eq!(bl(&c, "time(6)", t(true, 34, 22, 59, 59, 999_999)), oor("-838:59:59.999999"));
    assert_eq!(bl(&c, "time(6)", t(false, 1, 0, 0, 1, 0)), oor("24:00:01"));
    assert_eq!(q("time(6)", bytes(b"-838:59:59.999999")), oor("-838:59:59.999999"));
    assert_eq!(q("time", bytes(b"-00:00:01")), oor("-00:00:01"));
    assert_eq!(q("time(3)", bytes(b"00:00:00.999")), ok("00:00:00.999"));
    assert_eq!(q("time(6)", t(false, 0, 23, 59, 59, 999_999)), ok("23:59:59.999999"));
}

#[test]
fn bits_are_exactly_n_digits() {
    let c = col(Wire::MYSQL_TYPE_BIT, &[2, 1]);
    assert_eq!(bl(&c, "bit(10)", bytes(&[2, 1])), ok("1000000001"));
    assert_eq!(bl(&c, "bit(10)", bytes(&[0, 0])), ok("0000000000"));
    assert_eq!(
        bl(&c, "bit(10)", bytes(&[4, 0])),
        Err(ValueErrorKind::BitWidth { bits: 11, width: 10 })
    );
    assert_eq!(q("bit(1)", bytes(&[1])), ok("1"));
    assert_eq!(q("bit(64)", bytes(&[0xff; 8])), ok(&"1".repeat(64)));
    assert_eq!(q("bit(3)", bytes(&[])), ok("000"));
    let no_type = binlog_text(&c, None, &BinlogValue::Value(bytes(&[3, 0xff])));
    assert_eq!(no_type, Ok(Some("1111111111".into())));
}

#[test]
fn enums_by_label_and_index_zero_is_refused() {
    let c = BinlogColumn {
        enum_labels: vec!["x".into(), "y".into()],
        ..col(Wire::MYSQL_TYPE_ENUM, &[247, 1])
    };
    let t = "enum('x','y')";
    assert_eq!(bl(&c, t, Value::Int(2)), ok("y"));
    assert_eq!(bl(&c, t, Value::Int(0)), Err(ValueErrorKind::EnumIndex { index: 0, labels: 2 }));
    assert_eq!(bl(&c, t, Value::Int(3)), Err(ValueErrorKind::EnumIndex { index: 3, labels: 2 }));
    assert_eq!(q(t, bytes(b"y")), ok("y"));
    assert_eq!(q(t, bytes(b"")), Err(ValueErrorKind::EnumIndex { index: 0, labels: 2 }));
    assert_eq!(q(t, bytes(b"z")), Err(ValueErrorKind::UnknownLabel { label: "z".into() }));
    assert_eq!(q("enum('','a')", bytes(b"")), ok(""));
    // Without table-map labels the catalog's resolve the index.
    assert_eq!(bl(&col(Wire::MYSQL_TYPE_ENUM, &[247, 1]), t, Value::Int(1)), ok("x"));
}

#[test]
fn sets_in_declaration_order() {
    let c = BinlogColumn {
        set_labels: vec!["a".into(), "b".into(), "c".into()],
        ..col(Wire::MYSQL_TYPE_SET, &[248, 1])
    };
    let t = "set('a','b','c')";
    assert_eq!(bl(&c, t, bytes(&[5])), ok("a,c"));
    assert_eq!(bl(&c, t, bytes(&[0])), ok(""));
    assert_eq!(bl(&c, t, bytes(&[8])), Err(ValueErrorKind::SetBits { mask: 8, labels: 3 }));
    assert_eq!(q(t, bytes(b"c,a")), ok("a,c"));
    assert_eq!(q(t, bytes(b"")), ok(""));
    assert_eq!(q(t, bytes(b"d")), Err(ValueErrorKind::UnknownLabel { label: "d".into() }));
}

#[test]
fn uuids_in_text_order_with_stripped_zeros_restored() {
    let c = binary(Wire::MYSQL_TYPE_STRING, &[254, 16]);
    let raw = [
        0x6c, 0xcd, 0x78, 0x0c, 0xba, 0xba, 0x10, 0x26, 0x95, 0x64, 0x5b, 0x8c, 0x65, 0x60, 0x24,
        0xdb,
    ];
    assert_eq!(bl(&c, "uuid", bytes(&raw)), ok("6ccd780c-baba-1026-9564-5b8c656024db"));
    assert_eq!(
        bl(&c, "uuid", bytes(&[0, 0, 0, 0, 0, 0, 0x10, 0, 0x80])),
        ok("00000000-0000-1000-8000-000000000000")
    );
    assert_eq!(bl(&c, "uuid", bytes(b"")), ok("00000000-0000-0000-0000-000000000000"));
    assert_eq!(
        q("uuid", bytes(b"6CCD780C-baba-1026-9564-5b8c656024db")),
        ok("6ccd780c-baba-1026-9564-5b8c656024db")
    );
    assert!(matches!(
        q("uuid", bytes(b"6ccd780c-baba-1026-9564-5b8c656024d+")),
        Err(ValueErrorKind::Unexpected { .. })
    ));
    // Without the catalog a UUID is only a BINARY(16).
    assert_eq!(
        binlog_text(&c, None, &BinlogValue::Value(bytes(&raw))),
        Ok(Some("\\x6ccd780cbaba102695645b8c656024db".into()))
    );
}

/// (bytes in the binlog, what MariaDB 10.11's SELECT printed).
const INET6: [(&str, &str); 14] = [
    ("", "::"),
    ("00000000000000000000000000000001", "::1"),
    ("00000000000000000000000001020304", "::1.2.3.4"),
    ("0001", "1::"),
    ("20010db8000000000001000000000001", "2001:db8::1:0:0:1"),
    ("20010000000000010000000000000001", "2001:0:0:1::1"),
    ("00000000000000000000ffff", "::ffff:0.0.0.0"),
    ("00000000000000000000ffff01020304", "::ffff:1.2.3.4"),
    ("00010002000300040005000600070008", "1:2:3:4:5:6:7:8"),
    ("00010000000300040005000600070008", "1::3:4:5:6:7:8"),
    ("00000000000000000000ffff00010002", "::ffff:0.1.0.2"),
    ("000000000000000000000001", "::1:0:0"),
    ("00000000000000000000000100020003", "::1:2:3"),
    ("00000000000000000000fffe01020304", "::fffe:102:304"),
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

#[test]
fn inet_as_mariadb_prints_it() {
    let c = binary(Wire::MYSQL_TYPE_STRING, &[254, 16]);
    for (raw, text) in INET6 {
        assert_eq!(bl(&c, "inet6", bytes(&unhex(raw))), ok(text), "{raw}");
        assert_eq!(q("inet6", bytes(text.as_bytes())), ok(text), "{text}");
    }
    let c4 = binary(Wire::MYSQL_TYPE_STRING, &[254, 4]);
    assert_eq!(bl(&c4, "inet4", bytes(&[10, 0, 0, 1])), ok("10.0.0.1"));
    assert_eq!(bl(&c4, "inet4", bytes(&[10])), ok("10.0.0.0"));
    assert_eq!(q("inet4", bytes(b"255.255.255.255")), ok("255.255.255.255"));
    assert!(matches!(bl(&c4, "inet4", bytes(&[1; 5])), Err(ValueErrorKind::Unexpected { .. })));
}

#[test]
fn json_text_is_checked_against_what_jsonb_accepts() {
    let c = col(Wire::MYSQL_TYPE_BLOB, &[4]);
    for good in
        ["{\"a\": [1, 2.50, null]}", "[]", "\"\\ud83d\\ude00\"", " 1e400 ", "{\"a\":1,\"a\":2}"]
    {
        assert_eq!(bl(&c, "json", bytes(good.as_bytes())), ok(good));
        assert_eq!(q("json", bytes(good.as_bytes())), ok(good));
    }
    // MariaDB's json_valid accepts the first two.
    for bad in
        ["[1.]", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "[01]", "{", "\"a\nb\"", "[1] 2", ""]
    {
        assert!(
            matches!(q("json", bytes(bad.as_bytes())), Err(ValueErrorKind::Json { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(q("json", bytes(b"\"\\u0000\"")), Err(ValueErrorKind::Nul));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(q("json", bytes(deep.as_bytes())), Err(ValueErrorKind::Json { .. })));
}

#[test]
fn mysql_binary_json_renders_as_text() {
    let c = col(Wire::MYSQL_TYPE_JSON, &[4]);
    let text =
        |v: jsonb::Value<'static>| binlog_text(&c, Some(&ty("json")), &BinlogValue::Jsonb(v));
    assert_eq!(text(jsonb::Value::I64(-5)), Ok(Some("-5".into())));
    assert_eq!(text(jsonb::Value::F64(1.0)), Ok(Some("1.0".into())));
    assert_eq!(text(jsonb::Value::Null), Ok(Some("null".into())));
    assert_eq!(
        text(jsonb::Value::String(JsonbString::new(&b"a\"b\n"[..]))),
        Ok(Some("\"a\\\"b\\n\"".into()))
    );
    let nul = text(jsonb::Value::String(JsonbString::new(&b"\0"[..])));
    assert_eq!(nul.unwrap_err().kind(), &ValueErrorKind::Nul);
    let diff = binlog_text(&c, Some(&ty("json")), &BinlogValue::JsonDiff(Vec::new()));
    assert_eq!(diff.unwrap_err().kind(), &ValueErrorKind::JsonDiff);
}

fn applied(before: &str, ops: &[(Op, &str, Option<&str>)]) -> Result<String, ValueErrorKind> {
    let mut doc = json::parse(before)?;
    for (op, path, value) in ops {
        json::apply(&mut doc, *op, path, value.map(|v| json::parse(v).unwrap()))?;
    }
    let mut out = String::new();
    json::render(&doc, &mut out)?;
    Ok(out)
}

#[test]
fn json_diffs_apply_as_mysql_does() {
    let doc = r#"{"a": [1, 2, 3], "b c": {"d": true}}"#;
    assert_eq!(
        applied(doc, &[(Op::Replace, "$.a[1]", Some("\"x\""))]),
        ok(r#"{"a": [1, "x", 3], "b c": {"d": true}}"#)
    );
    assert_eq!(
        applied(doc, &[(Op::Insert, "$.a[0]", Some("0"))]),
        ok(r#"{"a": [0, 1, 2, 3], "b c": {"d": true}}"#)
    );
    assert_eq!(
        applied(doc, &[(Op::Insert, "$.a[9]", Some("4"))]),
        ok(r#"{"a": [1, 2, 3, 4], "b c": {"d": true}}"#)
    );
    assert_eq!(
        applied(doc, &[(Op::Insert, "$.\"b c\".e", Some("[]"))]),
        ok(r#"{"a": [1, 2, 3], "b c": {"d": true, "e": []}}"#)
    );
    assert_eq!(
        applied(doc, &[(Op::Remove, "$.a[last]", None), (Op::Remove, "$.\"b c\"", None)]),
        ok(r#"{"a": [1, 2]}"#)
    );
    assert_eq!(applied(doc, &[(Op::Replace, "$", Some("7"))]), ok("7"));
    assert_eq!(
        applied(doc, &[(Op::Replace, "$.a[last-2]", Some("0"))]),
        ok(r#"{"a": [0, 2, 3], "b c": {"d": true}}"#)
    );
    for (op, path) in [
        (Op::Replace, "$.z"),
        (Op::Remove, "$.a[3]"),
        (Op::Insert, "$.z.y"),
        (Op::Remove, "$"),
        (Op::Replace, "a"),
        (Op::Replace, "$["),
    ] {
        assert!(
            matches!(applied(doc, &[(op, path, Some("1"))]), Err(ValueErrorKind::Json { .. })),
            "{path}"
        );
    }
    assert_eq!(apply_json_diff("[1]", &[]), Ok("[1]".into()));
    assert!(apply_json_diff("[1.]", &[]).is_err());
}

#[test]
fn errors_name_the_column_and_the_fix() {
    let c = BinlogColumn { name: "c_time".into(), ..col(Wire::MYSQL_TYPE_TIME2, &[6]) };
    let e = binlog_text(
        &c,
        Some(&ty("time(6)")),
        &BinlogValue::Value(Value::Time(false, 35, 0, 0, 0, 0)),
    );
    let msg = e.unwrap_err().to_string();
    assert!(msg.starts_with("column c_time (time(6)): holds 840:00:00"), "{msg}");
    assert!(msg.contains("--type-map-file"), "{msg}");
    let e = value_text(&ty("date"), &bytes(b"0000-00-00")).unwrap_err();
    assert!(e.to_string().starts_with("a date value: holds the date 0000-00-00"), "{e}");
    assert_eq!(e.column(), None);
    let e = e.in_column("born");
    assert!(e.to_string().starts_with("column born (date): "), "{e}");
    assert_eq!(e.column(), Some("born"));
    let geo = value_text(&ty("point"), &bytes(b"")).unwrap_err();
    assert!(matches!(geo.kind(), ValueErrorKind::Unsupported { .. }));
}

/// The same datum through both paths: (catalog type, binlog column, binlog value, query
/// values from the text and binary protocols), as the live servers produced them.
#[test]
fn both_paths_write_the_same_text() {
    let s = |t, m: &[u8]| col(t, m);
    let cases: Vec<(&str, BinlogColumn, Value, Vec<Value>)> = vec![
        (
            "mediumint",
            s(Wire::MYSQL_TYPE_INT24, &[]),
            Value::Int(8_388_608),
            vec![bytes(b"-8388608"), Value::Int(-8_388_608)],
        ),
        (
            "year",
            s(Wire::MYSQL_TYPE_YEAR, &[]),
            bytes(b"1900"),
            vec![bytes(b"0000"), Value::Int(0)],
        ),
        (
            "float",
            s(Wire::MYSQL_TYPE_FLOAT, &[4]),
            Value::Float(1234.5678),
            vec![Value::Float(1234.5678)],
        ),
        (
            "double",
            s(Wire::MYSQL_TYPE_DOUBLE, &[8]),
            Value::Double(1e308),
            vec![bytes(b"1e308"), Value::Double(1e308)],
        ),
        (
            "decimal(10,3)",
            s(Wire::MYSQL_TYPE_NEWDECIMAL, &[10, 3]),
            bytes(b"-1234567.891"),
            vec![bytes(b"-1234567.891")],
        ),
        (
            "timestamp(6)",
            s(Wire::MYSQL_TYPE_TIMESTAMP2, &[6]),
            bytes(b"1.500000"),
            vec![bytes(b"1970-01-01 00:00:01.500000"), Value::Date(1970, 1, 1, 0, 0, 1, 500_000)],
        ),
        (
            "datetime(3)",
            s(Wire::MYSQL_TYPE_DATETIME2, &[3]),
            Value::Date(1, 1, 1, 0, 0, 0, 1000),
            vec![bytes(b"0001-01-01 00:00:00.001"), Value::Date(1, 1, 1, 0, 0, 0, 1000)],
        ),
        (
            "time(6)",
            s(Wire::MYSQL_TYPE_TIME2, &[6]),
            Value::Time(false, 0, 0, 0, 0, 0),
            vec![bytes(b"00:00:00.000000"), Value::Time(false, 0, 0, 0, 0, 0)],
        ),
        ("bit(10)", s(Wire::MYSQL_TYPE_BIT, &[2, 1]), bytes(&[2, 1]), vec![bytes(&[2, 1])]),
        (
            "binary(4)",
            binary(Wire::MYSQL_TYPE_STRING, &[254, 4]),
            bytes(b"ab"),
            vec![bytes(b"ab\0\0")],
        ),
        (
            "uuid",
            binary(Wire::MYSQL_TYPE_STRING, &[254, 16]),
            bytes(&unhex("123456789abc4ef08123456789abcdef")),
            vec![bytes(b"12345678-9abc-4ef0-8123-456789abcdef")],
        ),
        (
            "inet6",
            binary(Wire::MYSQL_TYPE_STRING, &[254, 16]),
            bytes(&unhex("00000000000000000000ffff01020304")),
            vec![bytes(b"::ffff:1.2.3.4")],
        ),
        (
            "json",
            s(Wire::MYSQL_TYPE_BLOB, &[4]),
            bytes(b"{\"a\": [1, 2.50, null]}"),
            vec![bytes(b"{\"a\": [1, 2.50, null]}")],
        ),
    ];
    for (t, c, raw, queried) in cases {
        let from_binlog = bl(&c, t, raw);
        assert!(from_binlog.is_ok(), "{t}: {from_binlog:?}");
        for v in queried {
            assert_eq!(q(t, v), from_binlog, "{t}");
        }
    }
}

/// Cases the property test below found: `Value`'s own `Debug` overflows on a long `Time`, and
/// a SET of more than 64 labels shifted past the mask.
#[test]
fn regression_found_by_the_property_test() {
    let c = col(Wire::MYSQL_TYPE_LONG, &[]);
    let long = binlog_text(
        &c,
        None,
        &BinlogValue::Value(Value::Time(true, u32::MAX, 255, 255, 255, u32::MAX)),
    );
    assert!(matches!(long.unwrap_err().kind(), ValueErrorKind::Unexpected { .. }));
    let many =
        BinlogColumn { set_labels: vec![String::new(); 65], ..col(Wire::MYSQL_TYPE_SET, &[]) };
    assert_eq!(binlog_text(&many, None, &BinlogValue::Value(bytes(b""))), Ok(Some(String::new())));
    let top = binlog_text(&many, None, &BinlogValue::Value(bytes(&[0, 0, 0, 0, 0, 0, 0, 0x80])));
    assert_eq!(top, Ok(Some(String::new())));
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::NULL),
        any::<i64>().prop_map(Value::Int),
        any::<u64>().prop_map(Value::UInt),
        any::<f32>().prop_map(Value::Float),
        any::<f64>().prop_map(Value::Double),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        "[-0-9:. ef]{0,30}".prop_map(|s| Value::Bytes(s.into_bytes())),
        "\\PC{0,20}".prop_map(|s| Value::Bytes(s.into_bytes())),
        (
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>()
        )
            .prop_map(|(y, m, d, h, mi, s, us)| Value::Date(y, m, d, h, mi, s, us)),
        (any::<bool>(), any::<u32>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u32>())
            .prop_map(|(n, d, h, m, s, us)| Value::Time(n, d, h, m, s, us)),
    ]
}

const WIRE: [Wire; 22] = [
    Wire::MYSQL_TYPE_TINY,
    Wire::MYSQL_TYPE_SHORT,
    Wire::MYSQL_TYPE_INT24,
    Wire::MYSQL_TYPE_LONG,
    Wire::MYSQL_TYPE_LONGLONG,
    Wire::MYSQL_TYPE_YEAR,
    Wire::MYSQL_TYPE_FLOAT,
    Wire::MYSQL_TYPE_DOUBLE,
    Wire::MYSQL_TYPE_NEWDECIMAL,
    Wire::MYSQL_TYPE_VARCHAR,
    Wire::MYSQL_TYPE_STRING,
    Wire::MYSQL_TYPE_BLOB,
    Wire::MYSQL_TYPE_NEWDATE,
    Wire::MYSQL_TYPE_DATETIME2,
    Wire::MYSQL_TYPE_TIMESTAMP2,
    Wire::MYSQL_TYPE_TIMESTAMP,
    Wire::MYSQL_TYPE_TIME2,
    Wire::MYSQL_TYPE_BIT,
    Wire::MYSQL_TYPE_JSON,
    Wire::MYSQL_TYPE_ENUM,
    Wire::MYSQL_TYPE_SET,
    Wire::MYSQL_TYPE_GEOMETRY,
];

const TYPES: [&str; 24] = [
    "bool",
    "tinyint",
    "smallint unsigned",
    "mediumint",
    "int unsigned",
    "bigint unsigned",
    "year",
    "float",
    "double",
    "decimal(65,30)",
    "varchar(5)",
    "binary(3)",
    "blob",
    "date",
    "datetime(6)",
    "timestamp(6)",
    "time(6)",
    "bit(5)",
    "json",
    "enum('a','b')",
    "set('a','b','c')",
    "uuid",
    "inet6",
    "inet4",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn never_panics_on_any_value_metadata_or_type(
        v in arb_value(),
        wire in 0..WIRE.len(),
        meta in proptest::collection::vec(any::<u8>(), 0..4),
        unsigned in any::<bool>(),
        is_binary in any::<bool>(),
        labels in proptest::collection::vec("[a-c,]{0,2}", 0..70),
        t in proptest::option::of(0..TYPES.len()),
        charset in any::<u16>(),
    ) {
        let c = BinlogColumn {
            name: String::new(),
            column_type: WIRE[wire],
            metadata: meta,
            unsigned,
            collation: Some(if is_binary { 63 } else { charset }),
            enum_labels: labels.clone(),
            set_labels: labels,
            primary_key: false,
        };
        let source = t.map(|i| ty(TYPES[i]));
        let _ = binlog_text(&c, source.as_ref(), &BinlogValue::Value(v.clone()));
        if let Some(s) = &source {
            let _ = value_text(s, &v);
        }
    }

    #[test]
    fn json_parser_never_panics(
        s in "[\\[\\]{}\",:0-9.eE+\\-\\\\u dDfFtruenals]{0,40}|\\PC{0,40}",
    ) {
        let _ = json::parse(&s);
        let _ = apply_json_diff(&s, &[]);
        let mut doc = json::Json::Null;
        let _ = json::apply(&mut doc, Op::Insert, &s, Some(json::Json::Null));
    }

    #[test]
    fn float_text_parses_back_to_the_same_bits(bits in any::<u32>(), bits64 in any::<u64>()) {
        let f = f32::from_bits(bits);
        let text = format::float4(f);
        let back: f32 = text.parse().unwrap_or(f32::NAN);
        let same = back.to_bits() == f.to_bits() || (f.is_nan() && text == "NaN");
        prop_assert!(same, "{f:?} -> {text}");
        let d = f64::from_bits(bits64);
        let text = format::float8(d);
        let back: f64 = text.parse().unwrap_or(f64::NAN);
        let same = back.to_bits() == d.to_bits() || (d.is_nan() && text == "NaN");
        prop_assert!(same, "{d:?} -> {text}");
    }

    #[test]
    fn epoch_seconds_become_the_civil_date_postgresql_counts(secs in 0i64..(1i64 << 33)) {
        let c = format::civil_from_unix(secs, 0);
        let (y, m, d) = (i64::from(c.year), i64::from(c.month), i64::from(c.day));
        let days = molt_schema::civil::days_from_civil(y, m, d);
        let clock = i64::from(c.hour) * 3600 + i64::from(c.minute) * 60 + i64::from(c.second);
        let back = days * 86_400 + clock;
        prop_assert_eq!(back, secs);
    }
}
