//! Writing to the target (CockroachDB or PostgreSQL): preparing tables as
//! `--table-handling` says, streaming rows in with `COPY … FROM STDIN`, and CockroachDB's
//! `IMPORT INTO` in batches of files, narrowed to the first bad file when a batch fails.
//!
//! Start from [`handling::prepare_table`], [`copy_in_sql`] and [`import::ImportStatement`].

pub mod apply;
pub mod handling;
pub mod import;

use molt_schema::{CopyFormat, TableName, quote_ident};

/// `COPY "s"."t" ("a", "b") FROM STDIN [WITH (FORMAT csv)]`.
pub fn copy_in_sql(table: &TableName, columns: &[String], format: CopyFormat) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    format!("COPY {} ({}) FROM STDIN{}", table.quoted(), cols.join(", "), format.copy_options())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_statements() {
        let t = TableName::new("public", "my \"t\"");
        assert_eq!(
            copy_in_sql(&t, &["id".into(), "Name".into()], CopyFormat::Csv),
            "COPY \"public\".\"my \"\"t\"\"\" (\"id\", \"Name\") FROM STDIN WITH (FORMAT csv)"
        );
        assert_eq!(
            copy_in_sql(&t, &["id".into()], CopyFormat::Text),
            "COPY \"public\".\"my \"\"t\"\"\" (\"id\") FROM STDIN"
        );
    }
}
