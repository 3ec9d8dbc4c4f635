//! Data-driven tests of the type mapping: one case per source type in
//! `testdata/map_type/{postgres,mysql,oracle}`. `REWRITE=1 cargo test -p molt-schema` rewrites
//! the expected output; review the diff.

use molt_schema::{
    Column, ColumnType, SourceDialect, Table, TableName, TargetDialect, ddl, map_table,
};

fn dialect(s: &str) -> SourceDialect {
    match s {
        "postgres" => SourceDialect::Postgres,
        "mysql" => SourceDialect::Mysql,
        "oracle" => SourceDialect::Oracle,
        other => panic!("unknown source dialect {other}"),
    }
}

fn target(s: &str) -> TargetDialect {
    match s {
        "crdb" => TargetDialect::Cockroach,
        "postgres" => TargetDialect::Postgres,
        other => panic!("unknown target dialect {other}"),
    }
}

/// `map-type from=mysql to=crdb` with one source type per input line: prints
/// `source -> target`, then an indented `note:` per note and any enum type DDL; or
/// `source -> error: …`.
fn map_one(from: SourceDialect, to: TargetDialect, spelling: &str) -> String {
    let ty = match ColumnType::parse(from, spelling) {
        Ok(t) => t,
        Err(e) => return format!("{spelling} -> error: {e}\n"),
    };
    let table = Table {
        name: TableName::new("public", "t"),
        columns: vec![Column {
            name: "c".into(),
            ty,
            nullable: true,
            default: None,
            generated: None,
        }],
        primary_key: vec![],
        foreign_keys: vec![],
        unique_constraints: vec![],
    };
    match map_table(from, &table, &table.name, to, None) {
        Err(e) => format!("{spelling} -> error: {e}\n"),
        Ok(t) => {
            let col = &t.columns[0];
            let mut out = format!("{spelling} -> {}\n", col.ty.render(to));
            for n in &col.notes {
                out.push_str(&format!("    note: {n}\n"));
            }
            for e in &t.enums {
                out.push_str(&format!("    {}\n", ddl::create_enum(e, to)));
            }
            out
        }
    }
}

#[test]
fn map_type() {
    datadriven::walk("tests/testdata/map_type", |f| {
        f.run(|case| -> String {
            match case.directive.as_str() {
                "map-type" => {
                    let mut from = None;
                    let mut to = None;
                    for arg in &case.args {
                        match arg.0.as_str() {
                            "from" => from = Some(dialect(&arg.1[0])),
                            "to" => to = Some(target(&arg.1[0])),
                            other => panic!("unknown argument {other}"),
                        }
                    }
                    let (from, to) = (from.expect("from="), to.expect("to="));
                    case.input.lines().map(|l| map_one(from, to, l)).collect()
                }
                other => panic!("unknown directive {other}"),
            }
        })
    });
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

    /// Catalog spellings are external input: parsing and mapping never panic.
    #[test]
    fn type_parsing_and_mapping_never_panic(s in "[a-zA-Z0-9_ ().,'\"\\[\\]-]{0,40}|\\PC{0,40}") {
        for d in [SourceDialect::Postgres, SourceDialect::Mysql, SourceDialect::Oracle] {
            if let Ok(ty) = ColumnType::parse(d, &s) {
                let _ = molt_schema::map_type(d, &ty, TargetDialect::Cockroach);
                let _ = molt_schema::map_type(d, &ty, TargetDialect::Postgres);
            }
        }
        let _ = molt_schema::SqlType::parse_crdb(&s);
    }
}
