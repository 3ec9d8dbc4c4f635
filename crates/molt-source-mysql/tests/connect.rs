use molt_source_mysql::{Flavor, connect, server_flavor};
use molt_testkit::testbed;
use molt_url::ConnUrl;

#[tokio::test]
async fn wrong_password_names_host_and_fix_never_the_password() {
    let bed = testbed();
    let url =
        ConnUrl::parse(&format!("mysql://molt:Wr0ng-S3cret@127.0.0.1:{}/mysql", bed.mariadb.port))
            .unwrap();
    let err = connect(&url).await.unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains(&format!("127.0.0.1:{}", bed.mariadb.port)), "{chain}");
    assert!(chain.contains("check the user name and password"), "{chain}");
    assert!(!chain.contains("Wr0ng-S3cret"), "{chain}");
}

#[tokio::test]
async fn reports_mariadb_with_binlog_settings() {
    use mysql_async::prelude::Queryable;
    let bed = testbed();
    let pool = connect(&ConnUrl::parse(&bed.mariadb_url("mysql")).unwrap()).await.unwrap();
    assert_eq!(server_flavor(&pool).await.unwrap(), Flavor::Mariadb);
    let mut conn = pool.get_conn().await.unwrap();
    let row: Option<(String, String, String, String, String)> = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@gtid_strict_mode")
        .await
        .unwrap();
    assert_eq!(row.unwrap(), ("1".into(), "ROW".into(), "FULL".into(), "FULL".into(), "1".into()));
}
