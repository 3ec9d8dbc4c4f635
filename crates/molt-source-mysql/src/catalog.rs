//! Tables, columns and keys of one database from `information_schema`.
//!
//! Types come from `COLUMNS.COLUMN_TYPE` (`int(10) unsigned`, `enum('a','b')`,
//! `decimal(65,30)`), parsed by [`molt_schema::ColumnType::parse`].

use std::collections::{HashMap, HashSet};

use molt_schema::{
    Column, ColumnType, ForeignKey, Generated, SourceDialect, Table, TableFilter, TableName,
    UniqueConstraint,
};
use molt_source::{CatalogReader, SourceError};
use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use crate::{Flavor, server_flavor};

/// Reads the catalog of the database a pool is connected to.
#[derive(Debug, Clone)]
pub struct MysqlCatalog {
    pool: Pool,
}

impl MysqlCatalog {
    /// Reads through `pool`.
    pub fn new(pool: Pool) -> Self {
        MysqlCatalog { pool }
    }
}

const COLUMNS: &str = "
SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT,
       c.EXTRA, c.GENERATION_EXPRESSION
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE'
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION";

/// Key columns, classified without `TABLE_CONSTRAINTS`: MariaDB shows that view's rows only
/// to users with more than `SELECT`, and a least-privileged export user would see no primary
/// keys at all. A primary key is always named `PRIMARY`; a foreign key references a table.
const KEYS: &str = "
SELECT k.TABLE_NAME, k.CONSTRAINT_NAME,
       CASE WHEN k.CONSTRAINT_NAME = 'PRIMARY' THEN 'PRIMARY KEY'
            WHEN k.REFERENCED_TABLE_NAME IS NOT NULL THEN 'FOREIGN KEY'
            ELSE 'UNIQUE' END,
       k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE k
WHERE k.TABLE_SCHEMA = DATABASE()
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION";

/// MariaDB spells `JSON` as `LONGTEXT` plus `CHECK (json_valid(col))`, named after the column.
const MARIADB_JSON_CHECKS: &str = "
SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() AND CHECK_CLAUSE LIKE 'json_valid(%'";

type ColumnRow = (String, String, String, String, String, Option<String>, String, Option<String>);
type KeyRow = (String, String, String, String, Option<String>, Option<String>, Option<String>);

impl CatalogReader for MysqlCatalog {
    fn dialect(&self) -> SourceDialect {
        SourceDialect::Mysql
    }

    async fn tables(&self, filter: &TableFilter) -> Result<Vec<Table>, SourceError> {
        let flavor = server_flavor(&self.pool).await?;
        let mut conn =
            self.pool.get_conn().await.map_err(|e| SourceError::query("connecting", e))?;
        let columns: Vec<ColumnRow> =
            conn.query(COLUMNS).await.map_err(|e| SourceError::query("reading columns", e))?;
        let keys: Vec<KeyRow> =
            conn.query(KEYS).await.map_err(|e| SourceError::query("reading keys", e))?;
        let json_columns: HashSet<(String, String)> = if flavor == Flavor::Mariadb {
            conn.query(MARIADB_JSON_CHECKS)
                .await
                .map_err(|e| SourceError::query("reading JSON checks", e))?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };

        let mut tables: Vec<Table> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (schema, table, name, spelling, nullable, default, extra, generation) in columns {
            let tname = TableName::new(schema, table.clone());
            if !filter.matches(&tname) {
                continue;
            }
            let i = *index.entry(table.clone()).or_insert_with(|| {
                tables.push(Table {
                    name: tname,
                    columns: Vec::new(),
                    primary_key: Vec::new(),
                    foreign_keys: Vec::new(),
                    unique_constraints: Vec::new(),
                });
                tables.len() - 1
            });
            let spelling = if json_columns.contains(&(table, name.clone()))
                && spelling.eq_ignore_ascii_case("longtext")
            {
                "json".to_owned()
            } else {
                spelling
            };
            let ty = ColumnType::parse(SourceDialect::Mysql, &spelling)?;
            let extra = extra.to_ascii_uppercase();
            let is_generated =
                ["GENERATED", "PERSISTENT", "VIRTUAL"].iter().any(|k| extra.contains(k));
            let stored = extra.contains("STORED") || extra.contains("PERSISTENT");
            let generated = generation
                .filter(|g| is_generated && !g.is_empty())
                .map(|expr| Generated { expr, stored });
            // MariaDB reports a missing default as the string NULL.
            let default = default.filter(|d| d != "NULL" || nullable != "YES");
            tables[i].columns.push(Column {
                name,
                ty,
                nullable: nullable == "YES",
                default: if generated.is_some() { None } else { default },
                generated,
            });
        }
        for (table, constraint, kind, column, ref_schema, ref_table, ref_column) in keys {
            let Some(&i) = index.get(&table) else { continue };
            let t = &mut tables[i];
            match kind.as_str() {
                "PRIMARY KEY" => t.primary_key.push(column),
                "UNIQUE" => match t.unique_constraints.iter_mut().find(|u| u.name == constraint) {
                    Some(u) => u.columns.push(column),
                    None => t
                        .unique_constraints
                        .push(UniqueConstraint { name: constraint, columns: vec![column] }),
                },
                "FOREIGN KEY" => {
                    let references = TableName::new(
                        ref_schema.unwrap_or_default(),
                        ref_table.unwrap_or_default(),
                    );
                    match t.foreign_keys.iter_mut().find(|f| f.name == constraint) {
                        Some(f) => {
                            f.columns.push(column);
                            f.referenced_columns.extend(ref_column);
                        }
                        None => t.foreign_keys.push(ForeignKey {
                            name: constraint,
                            columns: vec![column],
                            references,
                            referenced_columns: ref_column.into_iter().collect(),
                        }),
                    }
                }
                _ => {}
            }
        }
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tables)
    }
}
