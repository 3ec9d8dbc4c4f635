//! Writing to the target (CockroachDB or PostgreSQL): preparing tables as
//! `--table-handling` says, streaming rows in with `COPY … FROM STDIN`, and CockroachDB's
//! `IMPORT INTO` in batches of files, narrowed to the first bad file when a batch fails.
//!
//! Start from [`handling::drop_and_recreate`], [`copy_in_sql`] and [`import::ImportStatement`].

pub mod apply;
pub mod handling;
pub mod import;

use molt_schema::{CopyFormat, TableName, quote_ident};

/// Whether a database error may go away on its own: a lost or refused connection, a
/// serialization failure or deadlock, a server shutting down, too many connections. Retrying
/// such an error can succeed; retrying any other cannot.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            matches!(c.as_ref(), "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300")
                || c.starts_with("08")
        }),
        _ => false,
    }
}

/// `COPY "s"."t" ("a", "b") FROM STDIN [WITH (FORMAT csv)]`.
pub fn copy_in_sql(table: &TableName, columns: &[String], format: CopyFormat) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    format!("COPY {} ({}) FROM STDIN{}", table.quoted(), cols.join(", "), format.copy_options())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(is_transient(&sqlx::Error::Io(std::io::Error::other("reset"))));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }

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
