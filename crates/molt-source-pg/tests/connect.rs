use molt_source_pg::connect;
use molt_testkit::testbed;
use molt_url::ConnUrl;

#[tokio::test]
async fn wrong_password_names_host_and_fix_never_the_password() {
    let bed = testbed();
    let url = ConnUrl::parse(&format!(
        "postgres://molt:Wr0ng-S3cret@127.0.0.1:{}/postgres?sslmode=disable",
        bed.pg_source.port
    ))
    .unwrap();
    let err = connect(&url, 1).await.unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains(&format!("127.0.0.1:{}", bed.pg_source.port)), "{chain}");
    assert!(chain.contains("check the user name and password"), "{chain}");
    assert!(chain.contains("password authentication failed"), "{chain}");
    assert!(!chain.contains("Wr0ng-S3cret"), "{chain}");
    assert!(!format!("{err:?}").contains("Wr0ng-S3cret"));
}

#[tokio::test]
async fn unreachable_host_says_what_to_check() {
    // A port nothing listens on: bind one, learn its number, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url =
        ConnUrl::parse(&format!("postgres://molt:pw@127.0.0.1:{port}/db?sslmode=disable")).unwrap();
    let err = connect(&url, 1).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("running and reachable"), "{text}");
}

#[tokio::test]
async fn unknown_database_is_named() {
    let bed = testbed();
    let url = ConnUrl::parse(&bed.pg_source_url("no_such_database_here")).unwrap();
    let err = connect(&url, 1).await.unwrap_err();
    assert!(err.to_string().contains("check the database name"), "{err}");
}

#[tokio::test]
async fn source_is_configured_for_logical_replication() {
    let bed = testbed();
    let pool = connect(&ConnUrl::parse(&bed.pg_source_url("postgres")).unwrap(), 1).await.unwrap();
    let wal_level: String = sqlx::query_scalar("SHOW wal_level").fetch_one(&pool).await.unwrap();
    assert_eq!(wal_level, "logical");
    let target =
        connect(&ConnUrl::parse(&bed.pg_target_url("postgres")).unwrap(), 1).await.unwrap();
    let version: String = sqlx::query_scalar("SELECT version()").fetch_one(&target).await.unwrap();
    assert!(version.starts_with("PostgreSQL"), "{version}");
}
