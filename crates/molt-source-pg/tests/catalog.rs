use molt_schema::{
    Identity, SourceDialect, SqlType, TableFilter, TableName, TargetDialect, ddl, map_table,
};
use molt_source::CatalogReader;
use molt_source_pg::{PgCatalog, connect};
use molt_testkit::testbed;
use molt_url::ConnUrl;

/// A table holding every common PostgreSQL type, plus keys the catalog must report.
const SOURCE_DDL: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy days', 'überglücklich');
CREATE TABLE parent (id int8 PRIMARY KEY, code text UNIQUE);
CREATE TABLE every_type (
    id int4 NOT NULL,
    region text NOT NULL,
    c_bool boolean,
    c_int2 smallint,
    c_int8 bigint DEFAULT 7,
    c_float4 real,
    c_float8 double precision,
    c_numeric numeric,
    c_numeric_ps numeric(20,6),
    c_text text,
    c_varchar varchar(20) NOT NULL DEFAULT '',
    c_char char(5),
    c_bytea bytea,
    c_date date,
    c_time time(3),
    c_timetz timetz,
    c_ts timestamp(6),
    c_tstz timestamptz,
    c_interval interval,
    c_uuid uuid,
    c_json json,
    c_jsonb jsonb,
    c_inet inet,
    c_bit bit(8),
    c_varbit varbit(16),
    c_text_arr text[],
    c_int_arr int4[],
    c_mood mood,
    c_mood_arr mood[],
    c_gen int8 GENERATED ALWAYS AS (c_int8 * 2) STORED,
    parent_id int8 REFERENCES parent (id),
    PRIMARY KEY (region, id),
    CONSTRAINT every_type_uuid_key UNIQUE (c_uuid)
);
CREATE TABLE no_pk (a int);
"#;

#[tokio::test]
async fn introspects_every_common_type_and_recreates_it_on_a_real_target() {
    let bed = testbed();
    let src = bed.fresh_pg_source().await;
    let src_pool = connect(&ConnUrl::parse(&src.url).unwrap(), 2).await.unwrap();
    sqlx::raw_sql(SOURCE_DDL).execute(&src_pool).await.unwrap();

    let tables = PgCatalog::new(src_pool).tables(&TableFilter::all()).await.unwrap();
    let names: Vec<String> = tables.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["public.every_type", "public.no_pk", "public.parent"]);
    let t = &tables[0];
    assert_eq!(t.primary_key, ["region", "id"]);
    assert_eq!(t.unique_constraints.len(), 1);
    assert_eq!(t.unique_constraints[0].columns, ["c_uuid"]);
    assert_eq!(t.foreign_keys.len(), 1);
    assert_eq!(t.foreign_keys[0].references, TableName::new("public", "parent"));
    assert_eq!(t.foreign_keys[0].referenced_columns, ["id"]);
    assert!(tables[1].primary_key.is_empty());
    let col = |n: &str| t.column(n).unwrap_or_else(|| panic!("column {n}"));
    assert!(!col("c_varchar").nullable);
    assert_eq!(col("c_varchar").default.as_deref(), Some("''::character varying"));
    assert_eq!(
        col("c_gen").generated.as_ref().map(|g| (g.expr.as_str(), g.stored)),
        Some(("(c_int8 * 2)", true))
    );
    assert_eq!(col("c_mood").ty.labels, ["sad", "ok", "happy days", "überglücklich"]);
    assert_eq!(col("c_mood_arr").ty.user_type, Some(TableName::new("public", "mood")));

    // CockroachDB DDL, exactly.
    let crdb =
        map_table(SourceDialect::Postgres, t, &t.name, TargetDialect::Cockroach, None).unwrap();
    let statements = ddl::create_statements(&crdb, TargetDialect::Cockroach);
    assert_eq!(
        statements[0],
        "CREATE TYPE \"public\".\"mood\" AS ENUM ('sad', 'ok', 'happy days', 'überglücklich')"
    );
    assert_eq!(statements[1], EXPECTED_CRDB);

    // PostgreSQL DDL, run on the real target and read back: every column maps to the same type.
    let dst = bed.fresh_pg_target().await;
    let dst_pool = connect(&ConnUrl::parse(&dst.url).unwrap(), 2).await.unwrap();
    let pg = map_table(SourceDialect::Postgres, t, &t.name, TargetDialect::Postgres, None).unwrap();
    for stmt in ddl::create_statements(&pg, TargetDialect::Postgres) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.clone()))
            .execute(&dst_pool)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let back = PgCatalog::new(dst_pool).tables(&TableFilter::all()).await.unwrap();
    assert_eq!(back.len(), 1);
    let again =
        map_table(SourceDialect::Postgres, &back[0], &back[0].name, TargetDialect::Cockroach, None)
            .unwrap();
    assert_eq!(again.primary_key, crdb.primary_key);
    for (a, b) in crdb.columns.iter().zip(&again.columns) {
        assert_eq!((&a.name, &a.ty, a.nullable), (&b.name, &b.ty, b.nullable));
    }
    assert_eq!(again.columns.len(), crdb.columns.len());
    assert!(matches!(again.columns[27].ty, SqlType::Enum(_)));
}

const EXPECTED_CRDB: &str = r#"CREATE TABLE "public"."every_type" (
    "id" INT4 NOT NULL,
    "region" STRING NOT NULL,
    "c_bool" BOOL,
    "c_int2" INT2,
    "c_int8" INT8,
    "c_float4" FLOAT4,
    "c_float8" FLOAT8,
    "c_numeric" DECIMAL,
    "c_numeric_ps" DECIMAL(20,6),
    "c_text" STRING,
    "c_varchar" VARCHAR(20) NOT NULL,
    "c_char" CHAR(5),
    "c_bytea" BYTES,
    "c_date" DATE,
    "c_time" TIME(3),
    "c_timetz" TIMETZ,
    "c_ts" TIMESTAMP(6),
    "c_tstz" TIMESTAMPTZ,
    "c_interval" INTERVAL,
    "c_uuid" UUID,
    "c_json" JSONB,
    "c_jsonb" JSONB,
    "c_inet" INET,
    "c_bit" BIT(8),
    "c_varbit" VARBIT(16),
    "c_text_arr" STRING[],
    "c_int_arr" INT4[],
    "c_mood" "public"."mood",
    "c_mood_arr" "public"."mood"[],
    "c_gen" INT8,
    "parent_id" INT8,
    PRIMARY KEY ("region", "id")
)"#;

#[tokio::test]
async fn filters_select_tables() {
    let bed = testbed();
    let src = bed.fresh_pg_source().await;
    let pool = connect(&ConnUrl::parse(&src.url).unwrap(), 1).await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA app; CREATE TABLE app.employees (id int PRIMARY KEY); CREATE TABLE app.employees_old (id int PRIMARY KEY); CREATE TABLE public.payments (id int PRIMARY KEY);")
        .execute(&pool)
        .await
        .unwrap();
    let cat = PgCatalog::new(pool);
    let f = TableFilter::new("app", "employees.*", "employees_old", false).unwrap();
    let names: Vec<String> =
        cat.tables(&f).await.unwrap().iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["app.employees"]);
}

#[tokio::test]
async fn details_name_identity_columns_constraints_and_indexes() {
    let src = testbed().fresh_pg_source().await;
    let pool = connect(&ConnUrl::parse(&src.url).unwrap(), 2).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE parent (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text UNIQUE); \
         CREATE TABLE child (id int4 PRIMARY KEY, n int8 GENERATED BY DEFAULT AS IDENTITY, \
           parent_id int8 REFERENCES parent (id), during tsrange, qty int4 CHECK (qty > 0), \
           EXCLUDE USING gist (during WITH &&)); \
         CREATE INDEX child_qty_idx ON child (qty DESC); \
         CREATE TABLE bare (id int4 PRIMARY KEY);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let names = ["parent", "child", "bare", "missing"].map(|t| TableName::new("public", t));
    let details = PgCatalog::new(pool).details(&names).await.unwrap();
    assert!(!details.contains_key(&names[2]), "only the primary key: nothing to say");
    let parent = &details[&names[0]];
    assert_eq!(parent.identity, [("id".to_owned(), Identity::Always)]);
    let printed = |d: &molt_schema::TableDetails| -> Vec<String> {
        d.constraints.iter().map(|c| format!("{} {}: {}", c.kind, c.name, c.definition)).collect()
    };
    assert_eq!(printed(parent), ["unique parent_code_key: UNIQUE (code)"]);
    let child = &details[&names[1]];
    assert_eq!(child.identity, [("n".to_owned(), Identity::ByDefault)]);
    assert_eq!(
        printed(child),
        [
            "foreign_key child_parent_id_fkey: FOREIGN KEY (parent_id) REFERENCES parent(id)",
            "check child_qty_check: CHECK ((qty > 0))",
            "exclusion child_during_excl: EXCLUDE USING gist (during WITH &&)",
            "index child_qty_idx: CREATE INDEX child_qty_idx ON public.child USING btree (qty DESC)",
        ]
    );
}
