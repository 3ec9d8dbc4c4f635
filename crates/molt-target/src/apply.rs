//! Applying replicated changes: one statement per run of same-table, same-kind changes, rows
//! passed as text arrays and cast to the target's column types by the server.
//!
//! | dialect | upsert | delete |
//! |---|---|---|
//! | CockroachDB | `UPSERT INTO t (cols) SELECT … FROM unnest($1::STRING[], …)` | `DELETE FROM t USING unnest(…) AS u WHERE t.k = u.k::T` |
//! | PostgreSQL | `INSERT INTO t (cols) SELECT … FROM unnest($1::text[], …) ON CONFLICT (pk) DO UPDATE SET …` | the same `DELETE … USING` |
//!
//! A run never holds the same key twice ([`collapse`] keeps the last image), because
//! `ON CONFLICT DO UPDATE` refuses to touch a row twice in one statement.

use std::collections::HashMap;

use molt_schema::{TableName, TargetDialect, quote_ident};

/// A target table as apply needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyTable {
    /// Name on the target.
    pub name: TableName,
    /// Columns and their types as the target spells them (`format_type`).
    pub columns: Vec<(String, String)>,
    /// Primary-key column names.
    pub primary_key: Vec<String>,
    /// Columns `GENERATED ALWAYS AS IDENTITY`: inserts carry the source's values with
    /// `OVERRIDING SYSTEM VALUE` (PostgreSQL), and updates leave them alone (the source
    /// cannot change them either).
    pub identity_always: Vec<String>,
}

impl ApplyTable {
    /// Index of a column.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(c, _)| c == name)
    }
}

fn array_type(dialect: TargetDialect) -> &'static str {
    match dialect {
        TargetDialect::Cockroach => "STRING[]",
        TargetDialect::Postgres => "text[]",
    }
}

fn unnest(cols: &[&(String, String)], dialect: TargetDialect) -> String {
    let params: Vec<String> =
        (1..=cols.len()).map(|i| format!("${i}::{}", array_type(dialect))).collect();
    let names: Vec<String> = cols.iter().map(|(c, _)| quote_ident(c)).collect();
    format!("unnest({}) AS u({})", params.join(", "), names.join(", "))
}

fn scalar_text(dialect: TargetDialect) -> &'static str {
    match dialect {
        TargetDialect::Cockroach => "STRING",
        TargetDialect::Postgres => "text",
    }
}

/// `INSERT INTO t (cols) SELECT casts FROM unnest(…)`: the part upserts and inserts share.
fn insert_select(t: &ApplyTable, present: &[usize], dialect: TargetDialect, verb: &str) -> String {
    let cols: Vec<&(String, String)> = present.iter().filter_map(|&i| t.columns.get(i)).collect();
    let names: Vec<String> = cols.iter().map(|(c, _)| quote_ident(c)).collect();
    let casts: Vec<String> =
        cols.iter().map(|(c, ty)| format!("u.{}::{ty}", quote_ident(c))).collect();
    let overriding = if !t.identity_always.is_empty() && dialect == TargetDialect::Postgres {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    format!(
        "{verb} INTO {} ({}){overriding} SELECT {} FROM {}",
        t.name.quoted(),
        names.join(", "),
        casts.join(", "),
        unnest(&cols, dialect)
    )
}

/// The upsert of rows carrying the columns at `present` (indices into `t.columns`).
pub fn upsert_sql(t: &ApplyTable, present: &[usize], dialect: TargetDialect) -> String {
    match dialect {
        TargetDialect::Cockroach => insert_select(t, present, dialect, "UPSERT"),
        TargetDialect::Postgres => {
            let pk: Vec<String> = t.primary_key.iter().map(|k| quote_ident(k)).collect();
            let sets: Vec<String> = present
                .iter()
                .filter_map(|&i| t.columns.get(i))
                .filter(|(c, _)| !t.primary_key.contains(c) && !t.identity_always.contains(c))
                .map(|(c, _)| format!("{q} = excluded.{q}", q = quote_ident(c)))
                .collect();
            let action = if sets.is_empty() {
                "NOTHING".to_owned()
            } else {
                format!("UPDATE SET {}", sets.join(", "))
            };
            format!(
                "{} ON CONFLICT ({}) DO {action}",
                insert_select(t, present, dialect, "INSERT"),
                pk.join(", ")
            )
        }
    }
}

/// The plain insert of rows into a table without a primary key (its rows have no identity
/// to conflict on).
pub fn insert_sql(t: &ApplyTable, present: &[usize], dialect: TargetDialect) -> String {
    insert_select(t, present, dialect, "INSERT")
}

/// The delete of exactly one row of a keyless table whose columns at `present` equal the
/// parameters (`$1`… as text, NULL matching NULL). Values compare by the target type's text
/// form, so types without an equality operator (json, point) match too.
pub fn delete_one_sql(t: &ApplyTable, present: &[usize], dialect: TargetDialect) -> String {
    let text = scalar_text(dialect);
    let conds: Vec<String> = present
        .iter()
        .filter_map(|&i| t.columns.get(i))
        .enumerate()
        .map(|(n, (c, ty))| {
            format!(
                "{q}::{text} IS NOT DISTINCT FROM ${p}::{text}::{ty}::{text}",
                q = quote_ident(c),
                p = n + 1
            )
        })
        .collect();
    let filter = conds.join(" AND ");
    match dialect {
        TargetDialect::Cockroach => {
            format!("DELETE FROM {} WHERE {filter} LIMIT 1", t.name.quoted())
        }
        TargetDialect::Postgres => format!(
            "DELETE FROM {n} WHERE ctid = (SELECT ctid FROM {n} WHERE {filter} LIMIT 1)",
            n = t.name.quoted()
        ),
    }
}

/// The delete of rows by primary key (one text array per key column).
pub fn delete_sql(t: &ApplyTable, dialect: TargetDialect) -> String {
    let keys: Vec<&(String, String)> =
        t.primary_key.iter().filter_map(|k| t.position(k).map(|i| &t.columns[i])).collect();
    let conds: Vec<String> =
        keys.iter().map(|(c, ty)| format!("t.{q} = u.{q}::{ty}", q = quote_ident(c))).collect();
    format!(
        "DELETE FROM {} AS t USING {} WHERE {}",
        t.name.quoted(),
        unnest(&keys, dialect),
        conds.join(" AND ")
    )
}

/// Looks keys up (one text array per key column, `$1`…): for each key the table holds, its
/// 1-based position in the arrays (`ord`) and the columns at `columns` as text. Used to read
/// what a batch needs from the target before writing it.
pub fn lookup_sql(t: &ApplyTable, columns: &[usize], dialect: TargetDialect) -> String {
    let keys: Vec<&(String, String)> =
        t.primary_key.iter().filter_map(|k| t.position(k).map(|i| &t.columns[i])).collect();
    let params: Vec<String> =
        (1..=keys.len()).map(|i| format!("${i}::{}", array_type(dialect))).collect();
    let names: Vec<String> = keys.iter().map(|(c, _)| quote_ident(c)).collect();
    let conds: Vec<String> =
        keys.iter().map(|(c, ty)| format!("t.{q} = u.{q}::{ty}", q = quote_ident(c))).collect();
    let mut select = vec!["u.molt_ord".to_owned()];
    select.extend(
        columns
            .iter()
            .filter_map(|&i| t.columns.get(i))
            .map(|(c, _)| format!("t.{}::{}", quote_ident(c), scalar_text(dialect))),
    );
    format!(
        "SELECT {} FROM unnest({}) WITH ORDINALITY AS u({}, molt_ord) JOIN {} AS t ON {}",
        select.join(", "),
        params.join(", "),
        names.join(", "),
        t.name.quoted(),
        conds.join(" AND ")
    )
}

/// Creates the dead-letter table (`--dlqTableName`) if missing: one row per row the target
/// refused, with the statement's operation, the row's columns as JSON text values, and why.
pub fn dlq_ddl(dlq: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
         dlq_time timestamptz NOT NULL DEFAULT now(), after_lsn text NOT NULL, table_name text NOT NULL, \
         operation text NOT NULL, data jsonb NOT NULL, error text NOT NULL, sql_state text NOT NULL)",
        dlq.quoted()
    )
}

/// Inserts one dead letter: `$1` position the batch started after, `$2` table, `$3`
/// operation, `$4` row as JSON text, `$5` error, `$6` SQLSTATE.
pub fn dlq_insert_sql(dlq: &TableName) -> String {
    format!(
        "INSERT INTO {} (after_lsn, table_name, operation, data, error, sql_state) VALUES ($1, $2, $3, $4::jsonb, $5, $6)",
        dlq.quoted()
    )
}

/// Keeps, for every key, only the last of `rows` (in order of last appearance), so that one
/// statement never touches a row twice.
pub fn collapse<R>(rows: Vec<R>, key: impl Fn(&R) -> Vec<Option<String>>) -> Vec<R> {
    let mut last: HashMap<Vec<Option<String>>, usize> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        last.insert(key(r), i);
    }
    if last.len() == rows.len() {
        return rows;
    }
    rows.into_iter()
        .enumerate()
        .filter(|(i, r)| last.get(&key(r)) == Some(i))
        .map(|(_, r)| r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ApplyTable {
        ApplyTable {
            name: TableName::new("public", "orders"),
            columns: vec![
                ("id".into(), "bigint".into()),
                ("note".into(), "text".into()),
                ("total".into(), "numeric(20,6)".into()),
            ],
            primary_key: vec!["id".into()],
            identity_always: Vec::new(),
        }
    }

    #[test]
    fn upserts_per_dialect() {
        let t = table();
        assert_eq!(
            upsert_sql(&t, &[0, 1, 2], TargetDialect::Postgres),
            "INSERT INTO \"public\".\"orders\" (\"id\", \"note\", \"total\") SELECT u.\"id\"::bigint, u.\"note\"::text, u.\"total\"::numeric(20,6) FROM unnest($1::text[], $2::text[], $3::text[]) AS u(\"id\", \"note\", \"total\") ON CONFLICT (\"id\") DO UPDATE SET \"note\" = excluded.\"note\", \"total\" = excluded.\"total\""
        );
        assert_eq!(
            upsert_sql(&t, &[0, 2], TargetDialect::Cockroach),
            "UPSERT INTO \"public\".\"orders\" (\"id\", \"total\") SELECT u.\"id\"::bigint, u.\"total\"::numeric(20,6) FROM unnest($1::STRING[], $2::STRING[]) AS u(\"id\", \"total\")"
        );
        assert!(upsert_sql(&t, &[0], TargetDialect::Postgres).ends_with("DO NOTHING"));
        let always = ApplyTable { identity_always: vec!["total".into()], ..table() };
        let sql = upsert_sql(&always, &[0, 2], TargetDialect::Postgres);
        assert!(sql.contains("(\"id\", \"total\") OVERRIDING SYSTEM VALUE SELECT"), "{sql}");
        assert!(sql.ends_with("DO NOTHING"), "an ALWAYS identity is never updated: {sql}");
    }

    #[test]
    fn keyless_tables_insert_and_delete_one_matching_row() {
        let mut t = table();
        t.primary_key.clear();
        assert_eq!(
            insert_sql(&t, &[0, 1], TargetDialect::Postgres),
            "INSERT INTO \"public\".\"orders\" (\"id\", \"note\") SELECT u.\"id\"::bigint, u.\"note\"::text FROM unnest($1::text[], $2::text[]) AS u(\"id\", \"note\")"
        );
        assert_eq!(
            delete_one_sql(&t, &[0, 2], TargetDialect::Postgres),
            "DELETE FROM \"public\".\"orders\" WHERE ctid = (SELECT ctid FROM \"public\".\"orders\" WHERE \"id\"::text IS NOT DISTINCT FROM $1::text::bigint::text AND \"total\"::text IS NOT DISTINCT FROM $2::text::numeric(20,6)::text LIMIT 1)"
        );
        assert_eq!(
            delete_one_sql(&t, &[1], TargetDialect::Cockroach),
            "DELETE FROM \"public\".\"orders\" WHERE \"note\"::STRING IS NOT DISTINCT FROM $1::STRING::text::STRING LIMIT 1"
        );
    }

    #[test]
    fn deletes_by_key() {
        let mut t = table();
        assert_eq!(
            delete_sql(&t, TargetDialect::Postgres),
            "DELETE FROM \"public\".\"orders\" AS t USING unnest($1::text[]) AS u(\"id\") WHERE t.\"id\" = u.\"id\"::bigint"
        );
        t.primary_key = vec!["id".into(), "note".into()];
        assert_eq!(
            delete_sql(&t, TargetDialect::Cockroach),
            "DELETE FROM \"public\".\"orders\" AS t USING unnest($1::STRING[], $2::STRING[]) AS u(\"id\", \"note\") WHERE t.\"id\" = u.\"id\"::bigint AND t.\"note\" = u.\"note\"::text"
        );
    }

    #[test]
    fn lookups_by_key() {
        let t = table();
        assert_eq!(
            lookup_sql(&t, &[1], TargetDialect::Postgres),
            "SELECT u.molt_ord, t.\"note\"::text FROM unnest($1::text[]) WITH ORDINALITY AS u(\"id\", molt_ord) JOIN \"public\".\"orders\" AS t ON t.\"id\" = u.\"id\"::bigint"
        );
        assert_eq!(
            lookup_sql(&t, &[], TargetDialect::Cockroach),
            "SELECT u.molt_ord FROM unnest($1::STRING[]) WITH ORDINALITY AS u(\"id\", molt_ord) JOIN \"public\".\"orders\" AS t ON t.\"id\" = u.\"id\"::bigint"
        );
    }

    #[test]
    fn collapse_keeps_the_last_image_per_key() {
        let rows = vec![(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")];
        let out = collapse(rows, |r| vec![Some(r.0.to_string())]);
        assert_eq!(out, vec![(1, "c"), (3, "d"), (2, "e")]);
    }
}
