//! Tables, columns, keys and enums from `pg_catalog`.
//!
//! Types come from `format_type(atttypid, atttypmod)`, the spelling PostgreSQL itself prints
//! (`character varying(20)`, `timestamp(3) with time zone`, `numeric(20,6)[]`), and are parsed
//! by [`molt_schema::ColumnType::parse`]. Enum labels are attached to enum-typed columns (and
//! arrays of them) so that mapping can recreate the type. [`PgCatalog::details`] adds what
//! only table creation needs: identity columns, and the constraints and indexes
//! `drop-on-target-and-recreate` leaves out, as PostgreSQL prints them.

use std::collections::HashMap;

use molt_schema::{
    Column, ColumnType, Constraint, ConstraintKind, ForeignKey, Generated, Identity, SourceDialect,
    Table, TableDetails, TableFilter, TableName, UniqueConstraint,
};
use molt_source::{CatalogReader, SourceError};
use sqlx::PgPool;

/// Reads a PostgreSQL (or CockroachDB) catalog.
#[derive(Debug, Clone)]
pub struct PgCatalog {
    pool: PgPool,
}

impl PgCatalog {
    /// Reads through `pool`.
    pub fn new(pool: PgPool) -> Self {
        PgCatalog { pool }
    }

    /// Identity columns, constraints other than the primary key and NOT NULL, and indexes
    /// that back no constraint, of `tables` (those that have any).
    ///
    /// # Errors
    /// [`SourceError`] when the catalog cannot be read.
    pub async fn details(
        &self,
        tables: &[TableName],
    ) -> Result<HashMap<TableName, TableDetails>, SourceError> {
        let q = |what: &'static str| move |e: sqlx::Error| SourceError::query(what, e);
        let schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
        let names: Vec<&str> = tables.iter().map(|t| t.table.as_str()).collect();
        let mut tx = self.pool.begin().await.map_err(q("opening a catalog transaction"))?;
        let identity: Vec<(String, String, String, String)> = sqlx::query_as(IDENTITY)
            .bind(&schemas)
            .bind(&names)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("reading identity columns"))?;
        let constraints: Vec<(String, String, String, String, String)> = sqlx::query_as(SECONDARY)
            .bind(&schemas)
            .bind(&names)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("reading constraints and indexes"))?;
        tx.commit().await.map_err(q("closing the catalog transaction"))?;
        let mut out: HashMap<TableName, TableDetails> = HashMap::new();
        for (schema, table, column, kind) in identity {
            let kind = if kind == "a" { Identity::Always } else { Identity::ByDefault };
            out.entry(TableName::new(schema, table)).or_default().identity.push((column, kind));
        }
        for (schema, table, name, kind, definition) in constraints {
            let kind = match kind.as_str() {
                "u" => ConstraintKind::Unique,
                "f" => ConstraintKind::ForeignKey,
                "c" => ConstraintKind::Check,
                "x" => ConstraintKind::Exclusion,
                _ => ConstraintKind::Index,
            };
            let details = out.entry(TableName::new(schema, table)).or_default();
            details.constraints.push(Constraint { name, kind, definition });
        }
        for d in out.values_mut() {
            d.constraints.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        }
        Ok(out)
    }
}

/// `t`: the tables named by parallel arrays of schemas ($1) and names ($2).
macro_rules! with_selected {
    ($query:literal) => {
        concat!(
            "WITH t AS (SELECT c.oid, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN unnest($1::text[], $2::text[]) AS s(nspname, relname)
    ON s.nspname = n.nspname AND s.relname = c.relname)
",
            $query
        )
    };
}

const IDENTITY: &str = with_selected!(
    "SELECT t.nspname::text, t.relname::text, a.attname::text, a.attidentity::text
FROM t JOIN pg_attribute a ON a.attrelid = t.oid
WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> ''
ORDER BY 1, 2, a.attnum"
);

/// Constraints besides the primary key (NOT NULL is not one before PostgreSQL 18, and
/// `contype` 'n' is left out after), then indexes that back none of the table's constraints.
const SECONDARY: &str = with_selected!(
    "SELECT t.nspname::text, t.relname::text, con.conname::text, con.contype::text,
       pg_get_constraintdef(con.oid)::text
FROM t JOIN pg_constraint con ON con.conrelid = t.oid
WHERE con.contype IN ('u', 'f', 'c', 'x')
UNION ALL
SELECT t.nspname::text, t.relname::text, ic.relname::text, 'i', pg_get_indexdef(i.indexrelid)::text
FROM t JOIN pg_index i ON i.indrelid = t.oid
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE NOT EXISTS (SELECT 1 FROM pg_constraint con
                  WHERE con.conrelid = t.oid AND con.conindid = i.indexrelid)"
);

const TABLES: &str = "
SELECT c.oid::int8, n.nspname::text, c.relname::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal', 'pg_extension')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
ORDER BY 2, 3";

const COLUMNS: &str = "
SELECT a.attrelid::int8, a.attnum::int4, a.attname::text,
       format_type(a.atttypid, a.atttypmod)::text,
       a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)::text,
       a.attgenerated::text,
       COALESCE(NULLIF(t.typelem, 0), t.oid)::int8
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1, 2";

const ENUMS: &str = "
SELECT t.oid::int8, n.nspname::text, t.typname::text,
       array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum e ON e.enumtypid = t.oid
GROUP BY 1, 2, 3";

const CONSTRAINTS: &str = "
SELECT con.conrelid::int8, con.conname::text, con.contype::text,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum),
       rn.nspname::text, rc.relname::text,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum)
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY($1) AND con.contype IN ('p', 'u', 'f')
ORDER BY 1, 2";

type ColumnRow = (i64, i32, String, String, bool, Option<String>, Option<String>, i64);
type ConstraintRow =
    (i64, String, String, Option<Vec<String>>, Option<String>, Option<String>, Option<Vec<String>>);

impl CatalogReader for PgCatalog {
    fn dialect(&self) -> SourceDialect {
        SourceDialect::Postgres
    }

    async fn tables(&self, filter: &TableFilter) -> Result<Vec<Table>, SourceError> {
        let q = |what: &'static str| move |e: sqlx::Error| SourceError::query(what, e);
        let mut tx = self.pool.begin().await.map_err(q("opening a catalog transaction"))?;
        let listed: Vec<(i64, String, String)> =
            sqlx::query_as(TABLES).fetch_all(&mut *tx).await.map_err(q("listing tables"))?;
        let selected: Vec<(i64, TableName)> = listed
            .into_iter()
            .map(|(oid, s, t)| (oid, TableName::new(s, t)))
            .filter(|(_, n)| filter.matches(n))
            .collect();
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let oids: Vec<i64> = selected.iter().map(|(o, _)| *o).collect();
        let columns: Vec<ColumnRow> = sqlx::query_as(COLUMNS)
            .bind(&oids)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("reading columns"))?;
        let enums: Vec<(i64, String, String, Vec<String>)> =
            sqlx::query_as(ENUMS).fetch_all(&mut *tx).await.map_err(q("reading enum types"))?;
        let constraints: Vec<ConstraintRow> = sqlx::query_as(CONSTRAINTS)
            .bind(&oids)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("reading constraints"))?;
        tx.commit().await.map_err(q("closing the catalog transaction"))?;

        let enums: HashMap<i64, (TableName, Vec<String>)> = enums
            .into_iter()
            .map(|(oid, s, n, labels)| (oid, (TableName::new(s, n), labels)))
            .collect();
        let mut tables: Vec<Table> = Vec::with_capacity(selected.len());
        let mut index: HashMap<i64, usize> = HashMap::new();
        for (oid, name) in selected {
            index.insert(oid, tables.len());
            tables.push(Table {
                name,
                columns: Vec::new(),
                primary_key: Vec::new(),
                foreign_keys: Vec::new(),
                unique_constraints: Vec::new(),
            });
        }
        for (rel, _num, name, spelling, not_null, default, generated, elem) in columns {
            let Some(&i) = index.get(&rel) else { continue };
            let mut ty = ColumnType::parse(SourceDialect::Postgres, &spelling)?;
            if let Some((type_name, labels)) = enums.get(&elem) {
                ty.user_type = Some(type_name.clone());
                ty.labels = labels.clone();
            }
            let generated = generated.filter(|g| g == "s" || g == "v");
            let (default, generated) = match (generated, default) {
                (Some(kind), Some(expr)) => (None, Some(Generated { expr, stored: kind == "s" })),
                (_, default) => (default, None),
            };
            tables[i].columns.push(Column { name, ty, nullable: !not_null, default, generated });
        }
        for (rel, name, kind, cols, ref_schema, ref_table, ref_cols) in constraints {
            let Some(&i) = index.get(&rel) else { continue };
            let cols = cols.unwrap_or_default();
            match kind.as_str() {
                "p" => tables[i].primary_key = cols,
                "u" => tables[i].unique_constraints.push(UniqueConstraint { name, columns: cols }),
                "f" => tables[i].foreign_keys.push(ForeignKey {
                    name,
                    columns: cols,
                    references: TableName::new(
                        ref_schema.unwrap_or_default(),
                        ref_table.unwrap_or_default(),
                    ),
                    referenced_columns: ref_cols.unwrap_or_default(),
                }),
                _ => {}
            }
        }
        Ok(tables)
    }
}
