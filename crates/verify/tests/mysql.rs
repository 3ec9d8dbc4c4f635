//! verify with a MariaDB source: rows fetched by `fetch` verify clean by meaning, type by
//! type, and differences injected on the target are counted exactly, also under keys that
//! MariaDB's case-insensitive collation orders unlike PostgreSQL.

use clap::Parser as _;
use molt_testkit::sql::{exec, my_exec};
use molt_testkit::{EVERY_MARIADB_TYPE, testbed};

use crate::{counts, verify};

const MORE: &str = "
CREATE TABLE names (name VARCHAR(40) PRIMARY KEY, n INT) COLLATE utf8mb4_unicode_ci;
INSERT INTO names VALUES ('apple', 1), ('Banana', 2), ('cherry', 3), ('Éclair', 4), ('zeta', 5),
  ('😀', 6), ('a b', 7), ('a', 8), ('Zulu', 9), ('a\\tb', 10);
INSERT INTO names SELECT CONCAT(CHAR(IF(seq % 2 = 0, 65, 97) + seq % 26), 'x', seq), seq FROM seq_11_to_2000;
CREATE TABLE visits (site INT, page VARCHAR(20), hits BIGINT, PRIMARY KEY (site, page));
INSERT INTO visits SELECT seq % 7, CONCAT(IF(seq % 3 = 0, 'P', 'p'), seq), seq * 10 FROM seq_1_to_1500;
CREATE TABLE derived (id INT PRIMARY KEY, a INT, twice INT AS (a * 2) STORED, label VARCHAR(12) AS (CONCAT('n', a)) VIRTUAL);
INSERT INTO derived (id, a) VALUES (1, 5), (2, NULL), (3, -4);
CREATE TABLE sized (size ENUM('small', 'medium', 'large'), id INT, v INT, PRIMARY KEY (size, id));
INSERT INTO sized SELECT ELT(1 + seq % 3, 'small', 'medium', 'large'), seq, seq FROM seq_1_to_1800;
";

async fn fetch(source: &str, target: &str) {
    let argv = [
        "fetch",
        "--source",
        source,
        "--target",
        target,
        "--allow-tls-mode-disable",
        "--metrics-listen-addr",
        "",
        "--direct-copy",
        "--table-handling",
        "drop-on-target-and-recreate",
    ];
    let cfg = molt_fetch::Config::from_args(&molt_fetch::FetchArgs::try_parse_from(argv).unwrap())
        .unwrap();
    molt_fetch::run(cfg).await.unwrap_or_else(|e| panic!("fetch: {e:#}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_rows_verify_clean_by_meaning_and_injected_differences_are_counted() {
    let src = testbed().fresh_mariadb().await;
    my_exec(&src.url, EVERY_MARIADB_TYPE).await;
    my_exec(&src.url, MORE).await;
    let dst = testbed().fresh_pg_target().await;
    fetch(&src.url, &dst.url).await;
    let db = &src.name;
    let (kinds, names, visits) =
        (format!("{db}.kinds"), format!("{db}.names"), format!("{db}.visits"));

    for splits in ["1", "3"] {
        let r = verify(&src, &dst, &["--table-splits", splits, "--row-batch-size", "700"]).await;
        assert!(r.clean(), "splits {splits}: {r:?}");
        let (derived, sized) = (format!("{db}.derived"), format!("{db}.sized"));
        // `sized` pages across ENUM values, which MariaDB orders by number, not by label.
        for (table, n) in
            [(&kinds, 5001), (&names, 2000), (&visits, 1500), (&derived, 3), (&sized, 1800)]
        {
            let c = counts(&r, table);
            assert_eq!((c.truth_rows, c.success), (n, n), "{table}");
        }
    }

    // Equal meanings written differently on the target are still equal.
    exec(
        &dst.url,
        "UPDATE kinds SET j = '{\"k\":[1.0,2.5,\"x\"]}', d = d WHERE id = 18446744073709551615",
    )
    .await;
    let r = verify(&src, &dst, &[]).await;
    assert!(r.clean(), "same JSON by meaning: {r:?}");

    exec(
        &dst.url,
        "DELETE FROM kinds WHERE id = 3; UPDATE kinds SET d = d + 1 WHERE id = 18446744073709551615;
         UPDATE kinds SET s = 'changed' WHERE id = 4000; INSERT INTO kinds (id) VALUES (9000);
         DELETE FROM names WHERE name = 'cherry'; UPDATE names SET n = 40 WHERE name = 'Éclair';
         INSERT INTO names VALUES ('APPLE', 1), ('a ', 8);
         DELETE FROM visits WHERE site = 1 AND page = 'p1'; UPDATE visits SET hits = 0 WHERE site = 3 AND page = 'P3';
         INSERT INTO visits VALUES (1, 'P1', 10);",
    )
    .await;
    for splits in ["1", "3"] {
        let r = verify(&src, &dst, &["--table-splits", splits, "--row-batch-size", "700"]).await;
        assert!(!r.clean());
        let got = |t: &str| {
            let c = counts(&r, t);
            (c.truth_rows, c.success, c.missing, c.mismatch, c.extraneous)
        };
        assert_eq!(got(&kinds), (5001, 4998, 1, 2, 1), "kinds, splits {splits}");
        // `APPLE` and `a ` equal `apple` and `a` under MariaDB's collation, not as keys.
        assert_eq!(got(&names), (2000, 1998, 1, 1, 2), "names, splits {splits}");
        assert_eq!(got(&visits), (1500, 1498, 1, 1, 1), "visits, splits {splits}");
    }
}
