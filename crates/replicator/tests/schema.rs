//! `--schemaRefresh`: target definitions are re-read while replication runs.

use molt_replicator::pglogical;
use molt_testkit::sql::{exec, scalar};

use super::{args, config_with, setup, source_end, wait_applied};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_schema_refresh_picks_up_a_column_added_on_the_target_later() {
    let (src, dst, slot) = setup("CREATE TABLE s (id int4 PRIMARY KEY, v text);").await;
    let mut argv = args(&src, &dst, &slot);
    argv.extend(["--schemaRefresh".to_owned(), "200ms".to_owned()]);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(pglogical::run(config_with(argv), stop_rx));
    // The source gains a column first: its values cannot land yet (schema drift).
    exec(&src.url, "ALTER TABLE s ADD COLUMN c text; INSERT INTO s VALUES (1, 'a', 'c1')").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    // Then the target gains it; the source sends no new relation message, so only the
    // periodic refresh can notice.
    exec(&dst.url, "ALTER TABLE s ADD COLUMN c text").await;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    let mut arrived = false;
    for id in 2..600 {
        tick.tick().await;
        exec(&src.url, &format!("INSERT INTO s VALUES ({id}, 'x', 'c{id}')")).await;
        wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
        let c: Option<String> = scalar(&dst.url, &format!("SELECT c FROM s WHERE id = {id}")).await;
        if c.is_some() {
            assert_eq!(c.as_deref(), Some(format!("c{id}").as_str()));
            arrived = true;
            break;
        }
    }
    assert!(arrived, "the new target column was never bound");
    exec(&src.url, "UPDATE s SET c = 'c1' WHERE id = 1").await;
    wait_applied(&src, &dst, &slot, &source_end(&src).await).await;
    let row1: String = scalar(&dst.url, "SELECT s::text FROM s WHERE id = 1").await;
    assert_eq!(row1, "(1,a,c1)");
    stop_tx.send(true).unwrap();
    engine.await.unwrap().expect("stops cleanly");
    exec(&src.url, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}
