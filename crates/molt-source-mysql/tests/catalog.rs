use molt_schema::{SourceDialect, TableFilter, TableName, TargetDialect, ddl, map_table};
use molt_source::CatalogReader;
use molt_source_mysql::{MysqlCatalog, connect};
use molt_source_pg::PgCatalog;
use molt_testkit::testbed;
use molt_url::ConnUrl;
use mysql_async::prelude::Queryable;

const SOURCE_DDL: &str = r#"
CREATE TABLE parent (id BIGINT PRIMARY KEY, code VARCHAR(10) UNIQUE);
CREATE TABLE every_type (
    id INT NOT NULL,
    region VARCHAR(16) NOT NULL,
    c_tinyint TINYINT,
    c_bool BOOL,
    c_smallint_u SMALLINT UNSIGNED,
    c_mediumint MEDIUMINT,
    c_int_u INT UNSIGNED,
    c_bigint BIGINT DEFAULT 7,
    c_bigint_u BIGINT UNSIGNED,
    c_float FLOAT,
    c_double DOUBLE,
    c_decimal DECIMAL(65,30),
    c_char CHAR(10),
    c_varchar VARCHAR(255) NOT NULL DEFAULT '',
    c_text TEXT,
    c_longtext LONGTEXT,
    c_binary BINARY(16),
    c_varbinary VARBINARY(64),
    c_blob BLOB,
    c_date DATE,
    c_datetime DATETIME(6),
    c_timestamp TIMESTAMP(6) NULL,
    c_time TIME(6),
    c_year YEAR,
    c_bit BIT(8),
    c_json JSON,
    c_enum ENUM('small', 'medium', 'large'),
    c_set SET('a', 'b'),
    c_uuid UUID,
    c_inet6 INET6,
    c_gen BIGINT AS (c_bigint * 2) STORED,
    parent_id BIGINT,
    PRIMARY KEY (region, id),
    UNIQUE KEY every_type_uuid (c_uuid),
    CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id)
);
"#;

const EXPECTED_CRDB: &str = r#"CREATE TABLE "public"."every_type" (
    "id" INT4 NOT NULL,
    "region" VARCHAR(16) NOT NULL,
    "c_tinyint" INT2,
    "c_bool" INT2,
    "c_smallint_u" INT4,
    "c_mediumint" INT4,
    "c_int_u" INT8,
    "c_bigint" INT8,
    "c_bigint_u" DECIMAL(20,0),
    "c_float" FLOAT4,
    "c_double" FLOAT8,
    "c_decimal" DECIMAL(65,30),
    "c_char" VARCHAR(10),
    "c_varchar" VARCHAR(255) NOT NULL,
    "c_text" STRING,
    "c_longtext" STRING,
    "c_binary" BYTES,
    "c_varbinary" BYTES,
    "c_blob" BYTES,
    "c_date" DATE,
    "c_datetime" TIMESTAMP(6),
    "c_timestamp" TIMESTAMPTZ(6),
    "c_time" TIME(6),
    "c_year" INT2,
    "c_bit" VARBIT(8),
    "c_json" JSONB,
    "c_enum" "public"."every_type_c_enum_enum",
    "c_set" STRING,
    "c_uuid" UUID,
    "c_inet6" INET,
    "c_gen" INT8,
    "parent_id" INT8,
    PRIMARY KEY ("region", "id")
)"#;

#[tokio::test]
async fn introspects_mariadb_and_recreates_on_a_real_postgres_target() {
    let bed = testbed();
    let src = bed.fresh_mariadb().await;
    let pool = connect(&ConnUrl::parse(&src.url).unwrap()).await.unwrap();
    let mut conn = pool.get_conn().await.unwrap();
    conn.query_drop(SOURCE_DDL).await.unwrap();
    drop(conn);

    let tables = MysqlCatalog::new(pool).tables(&TableFilter::all()).await.unwrap();
    let names: Vec<String> = tables.iter().map(|t| t.name.table.clone()).collect();
    assert_eq!(names, ["every_type", "parent"]);
    let t = &tables[0];
    assert_eq!(t.name.schema, src.name);
    assert_eq!(t.primary_key, ["region", "id"]);
    assert_eq!(t.unique_constraints.len(), 1);
    assert_eq!(t.foreign_keys[0].references.table, "parent");
    assert_eq!(t.foreign_keys[0].referenced_columns, ["id"]);
    let col = |n: &str| t.column(n).unwrap_or_else(|| panic!("column {n}"));
    assert_eq!(col("c_json").ty.name, "json");
    assert_eq!(col("c_enum").ty.labels, ["small", "medium", "large"]);
    assert!(col("c_gen").generated.as_ref().is_some_and(|g| g.stored));
    assert!(!col("c_varchar").nullable);

    // MOLT puts a MySQL database's tables into the target's `public` schema.
    let target_name = TableName::new("public", "every_type");
    let crdb =
        map_table(SourceDialect::Mysql, t, &target_name, TargetDialect::Cockroach, None).unwrap();
    let stmts = ddl::create_statements(&crdb, TargetDialect::Cockroach);
    assert_eq!(
        stmts[0],
        "CREATE TYPE \"public\".\"every_type_c_enum_enum\" AS ENUM ('small', 'medium', 'large')"
    );
    assert_eq!(stmts[1], EXPECTED_CRDB);

    let dst = bed.fresh_pg_target().await;
    let dst_pool = molt_source_pg::connect(&ConnUrl::parse(&dst.url).unwrap(), 1).await.unwrap();
    let pg =
        map_table(SourceDialect::Mysql, t, &target_name, TargetDialect::Postgres, None).unwrap();
    for stmt in ddl::create_statements(&pg, TargetDialect::Postgres) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.clone()))
            .execute(&dst_pool)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let back = PgCatalog::new(dst_pool).tables(&TableFilter::all()).await.unwrap();
    let again =
        map_table(SourceDialect::Postgres, &back[0], &target_name, TargetDialect::Cockroach, None)
            .unwrap();
    assert_eq!(again.primary_key, crdb.primary_key);
    assert_eq!(again.columns.len(), crdb.columns.len());
    for (a, b) in crdb.columns.iter().zip(&again.columns) {
        assert_eq!((&a.name, &a.ty, a.nullable), (&b.name, &b.ty, b.nullable));
    }
}
