//! MOLT's comparable pairs (spec §4.2, §5): a column of one type on the source and another on
//! the target is compared by meaning, so rows that mean the same pass and a real difference
//! is still a mismatch (issue 10, defect 5).

use molt_testkit::sql::exec;
use molt_testkit::testbed;

use super::{counts, verify};

/// One pair: the column's source type, its target type, values that mean the same on both
/// sides (source literal, target literal), and one pair of values that does not.
struct Case {
    source: &'static str,
    target: &'static str,
    same: &'static [(&'static str, &'static str)],
    differ: (&'static str, &'static str),
}

const U: &str = "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'";
const U_UPPER: &str = "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'";
const U_OTHER: &str = "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'";

const CASES: &[Case] = &[
    // Timestamps: the side without a zone is read as UTC.
    Case {
        source: "timestamp",
        target: "timestamptz",
        same: &[
            ("'2020-01-01 10:00:00'", "'2020-01-01 10:00:00+00'"),
            ("'1999-12-31 23:59:59.123456'", "'2000-01-01 01:59:59.123456+02'"),
            ("NULL", "NULL"),
        ],
        differ: ("'2020-01-01 10:00:00'", "'2020-01-01 10:00:00+01'"),
    },
    Case {
        source: "timestamptz",
        target: "timestamp(6)",
        same: &[("'2020-01-01 10:00:00+05'", "'2020-01-01 05:00:00'")],
        differ: ("'2020-01-01 10:00:00+00'", "'2020-01-01 10:00:00.000001'"),
    },
    // UUIDs and their text, in any case.
    Case {
        source: "uuid",
        target: "varchar(36)",
        same: &[(U, U_UPPER), (U, U)],
        differ: (U, U_OTHER),
    },
    Case { source: "text", target: "uuid", same: &[(U_UPPER, U)], differ: ("'not a uuid'", U) },
    // Booleans and 1/0.
    Case {
        source: "bool",
        target: "int2",
        same: &[("true", "1"), ("false", "0"), ("NULL", "NULL")],
        differ: ("true", "0"),
    },
    Case {
        source: "int2",
        target: "bool",
        same: &[("1", "true"), ("0", "false")],
        differ: ("2", "true"),
    },
    // Bit strings as their digits, and as booleans.
    Case {
        source: "varbit",
        target: "text",
        same: &[("B'1010'", "'1010'"), ("B''", "''")],
        differ: ("B'1010'", "'1011'"),
    },
    Case {
        source: "text",
        target: "varbit(8)",
        same: &[("'0110'", "B'0110'")],
        differ: ("'0110'", "B'0111'"),
    },
    Case {
        source: "varbit",
        target: "bool",
        same: &[("B'1'", "true"), ("B'0'", "false")],
        differ: ("B'1'", "false"),
    },
    Case { source: "bool", target: "bit(1)", same: &[("true", "B'1'")], differ: ("false", "B'1'") },
    // JSON and its text, by structure.
    Case {
        source: "jsonb",
        target: "text",
        same: &[(r#"'{"a": 1, "b": [1, 2]}'"#, r#"'{"b":[1,2],"a":1}'"#)],
        differ: (r#"'{"a": 1}'"#, r#"'{"a": "1"}'"#),
    },
    Case {
        source: "text",
        target: "jsonb",
        same: &[(r#"'{"b":[1,2.50],"a":1}'"#, r#"'{"a": 1, "b": [1, 2.5]}'"#)],
        differ: (r#"'{"a": 1}'"#, r#"'{"a": 2}'"#),
    },
    Case {
        source: "json",
        target: "text",
        same: &[(r#"'{ "a" : 1 }'"#, r#"'{"a":1}'"#)],
        differ: (r#"'[1, 2]'"#, r#"'[2, 1]'"#),
    },
    // Addresses and their text: a missing netmask is the whole address.
    Case {
        source: "inet",
        target: "text",
        same: &[
            ("'192.168.0.1'", "'192.168.0.1'"),
            ("'10.0.0.0/8'", "'10.0.0.0/8'"),
            ("'2001:db8::1'", "'2001:DB8:0:0:0:0:0:1'"),
        ],
        differ: ("'192.168.0.1'", "'192.168.0.2'"),
    },
    Case {
        source: "text",
        target: "inet",
        same: &[("'192.168.0.1/32'", "'192.168.0.1'"), ("'::ffff:1.2.3.4'", "'::ffff:1.2.3.4'")],
        differ: ("'10.0.0.1'", "'10.0.0.1/24'"),
    },
    // Widening.
    Case {
        source: "int2",
        target: "int4",
        same: &[("32767", "32767"), ("-1", "-1")],
        differ: ("1", "2"),
    },
    Case {
        source: "int4",
        target: "int8",
        same: &[("2147483647", "2147483647")],
        differ: ("-2147483648", "2147483648"),
    },
    Case { source: "int2", target: "int8", same: &[("-32768", "-32768")], differ: ("0", "1") },
    Case {
        source: "float4",
        target: "float8",
        same: &[
            ("'0.1'", "'0.1'"),
            ("'0.1'", "'0.1'::float4::float8"),
            ("'3.4028235e38'", "'3.4028235e38'::float4::float8"),
            ("'NaN'", "'NaN'"),
            ("'-Infinity'", "'-Infinity'"),
        ],
        differ: ("'0.1'", "'0.1000001'"),
    },
];

/// `INSERT`s of `rows` (id, literal) into `table`, ids from 1.
fn inserts(table: &str, values: impl Iterator<Item = &'static str>) -> String {
    values
        .enumerate()
        .map(|(i, v)| format!("INSERT INTO {table} VALUES ({}, {v});", i + 1))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_10_comparable_pairs_compare_by_meaning() {
    let s = testbed().fresh_pg_source().await;
    let t = testbed().fresh_pg_target().await;
    // Both sides write timestamps with a zone or as UTC, whatever the server's zone.
    let (mut s_sql, mut t_sql) =
        ("SET TimeZone = 'UTC';".to_owned(), "SET TimeZone = 'UTC';".to_owned());
    for (i, case) in CASES.iter().enumerate() {
        let table = format!("pair_{i}");
        // The differing row goes last, so its id is one past the rows that agree.
        let s_values = case.same.iter().map(|v| v.0).chain([case.differ.0]);
        let t_values = case.same.iter().map(|v| v.1).chain([case.differ.1]);
        s_sql += &format!(
            "CREATE TABLE {table} (id int4 PRIMARY KEY, v {}); {}",
            case.source,
            inserts(&table, s_values)
        );
        t_sql += &format!(
            "CREATE TABLE {table} (id int4 PRIMARY KEY, v {}); {}",
            case.target,
            inserts(&table, t_values)
        );
    }
    exec(&s.url, &s_sql).await;
    exec(&t.url, &t_sql).await;
    let r = verify(&s, &t, &[]).await;
    let mut wrong = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let table = format!("public.pair_{i}");
        let c = counts(&r, &table);
        let n = case.same.len() as u64;
        let got = (c.truth_rows, c.success, c.mismatch, c.conditional_success, c.column_mismatch);
        if got != (n + 1, n, 1, 0, 0) || r.mismatching_tables.contains(&table) {
            wrong.push(format!("{} -> {}: {c:?}", case.source, case.target));
        }
    }
    assert!(wrong.is_empty(), "pairs not compared by meaning:\n{}", wrong.join("\n"));
}
