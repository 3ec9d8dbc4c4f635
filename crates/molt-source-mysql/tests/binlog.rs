//! The binlog reader, live against the test bed's MariaDB, and against private MariaDB servers
//! for what must not happen to the shared one: purged binlogs, wrong settings, a shutdown. (MySQL
//! 8, which has no server here, is tested on captured binlog files in `src/binlog/table.rs`.)
//!
//! The test bed's MariaDB is shared by every test, so a stream carries other tests'
//! transactions too: [`Collector`] keeps the groups that touch the test's own database, and
//! expected GTIDs come from `@@last_gtid` of the session that wrote them.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use molt_source_mysql::binlog::{
    BinlogError, BinlogOptions, BinlogReader, BinlogValue, Event, Gtid, POSITION_LOST_FIX, RowOp,
    StartFrom, check_source, check_source_with_catalog_names, mariadb, open,
};
use molt_source_mysql::{Flavor, connect};
use molt_testkit::{OwnMariadb, testbed};
use molt_url::ConnUrl;
use mysql_async::Value;
use mysql_async::prelude::Queryable;

/// How long a test waits for an event before failing (never reached when all is well).
const PATIENCE: Duration = Duration::from_secs(60);

/// A server id no other reader on the shared server uses (MariaDB ends a dump thread when
/// another connects with the same id).
fn server_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    100_000 + (std::process::id() % 10_000) * 100 + n
}

fn opts(heartbeat_ms: u64) -> BinlogOptions {
    BinlogOptions { server_id: server_id(), heartbeat: Duration::from_millis(heartbeat_ms) }
}

fn mariadb_start(pos: &str) -> StartFrom {
    StartFrom::Mariadb(pos.parse().unwrap())
}

async fn scalar(conn: &mut mysql_async::Conn, sql: &str) -> String {
    conn.query_first::<String, _>(sql).await.unwrap().unwrap_or_default()
}

/// One value as the tests spell it: `-` left out of the image, `NULL`, numbers, `'text'`,
/// `x'hex'` for bytes that are not UTF-8 or are control characters.
fn show(v: &Option<BinlogValue<'static>>) -> String {
    match v {
        None => "-".into(),
        Some(BinlogValue::Value(Value::NULL)) => "NULL".into(),
        Some(BinlogValue::Value(Value::Int(i))) => i.to_string(),
        Some(BinlogValue::Value(Value::UInt(u))) => u.to_string(),
        Some(BinlogValue::Value(Value::Bytes(b))) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => format!("'{s}'"),
            _ => format!("x'{}'", b.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        },
        Some(other) => format!("{other:?}"),
    }
}

fn gtid_text(gtid: Option<&Gtid>) -> String {
    match gtid {
        Some(Gtid::Mariadb(g)) => g.to_string(),
        Some(Gtid::Mysql(u, n)) => format!("{u}:{n}"),
        None => "none".into(),
    }
}

fn row(image: &[Option<BinlogValue<'static>>]) -> String {
    format!("({})", image.iter().map(show).collect::<Vec<_>>().join(", "))
}

/// Reads a stream and hands out the groups (`Begin` … `Commit`, or `Begin` `Statement`) that
/// touch one database, as lines.
struct Collector {
    reader: BinlogReader,
    schema: String,
    /// Table id → (schema, table) from the table maps seen.
    tables: HashMap<u64, (String, String)>,
    /// GTIDs this test wrote that touch no table (an XA ROLLBACK): also the test's own.
    own: Vec<String>,
    /// The `XaPrepared` announcements read, as `xid gtid`.
    prepared: Vec<String>,
}

impl Collector {
    fn new(reader: BinlogReader, schema: &str) -> Self {
        Collector {
            reader,
            schema: schema.to_owned(),
            tables: HashMap::new(),
            own: Vec::new(),
            prepared: Vec::new(),
        }
    }

    async fn next(&mut self) -> Event {
        match tokio::time::timeout(PATIENCE, self.reader.next()).await {
            Ok(Ok(event)) => {
                if let Event::XaPrepared { xid, gtid } = &event {
                    self.prepared.push(format!("{xid} {}", gtid_text(gtid.as_ref())));
                }
                event
            }
            Ok(Err(e)) => panic!("reading the binlog: {e} ({e:?})"),
            Err(_) => panic!("no binlog event within {PATIENCE:?}"),
        }
    }

    fn line(&mut self, event: &Event) -> Option<String> {
        Some(match event {
            Event::Begin { gtid: Gtid::Mariadb(g), .. } => format!("begin {g}"),
            Event::Begin { gtid: Gtid::Mysql(u, n), .. } => format!("begin {u}:{n}"),
            Event::TableMap(t) => {
                self.tables.insert(t.id, (t.schema.clone(), t.name.clone()));
                format!("map {}", t.name)
            }
            Event::Rows { table_id, op } => {
                let name = self.tables.get(table_id).map_or("?", |(_, n)| n.as_str());
                match op {
                    RowOp::Insert(rows) => {
                        let rows: Vec<String> = rows.iter().map(|r| row(r)).collect();
                        format!("insert {name} {}", rows.join(" "))
                    }
                    RowOp::Update(rows) => {
                        let rows: Vec<String> =
                            rows.iter().map(|(b, a)| format!("{} -> {}", row(b), row(a))).collect();
                        format!("update {name} {}", rows.join(" "))
                    }
                    RowOp::Delete(rows) => {
                        let rows: Vec<String> = rows.iter().map(|r| row(r)).collect();
                        format!("delete {name} {}", rows.join(" "))
                    }
                }
            }
            Event::Commit { .. } => "commit".into(),
            Event::Statement { sql, .. } => format!("statement {sql}"),
            Event::XaEnded { xid, prepared, committed } => {
                let what = if *committed { "commit" } else { "rollback" };
                format!("xa {what} {xid} prepared {}", gtid_text(prepared.as_ref()))
            }
            Event::XaPrepared { .. } | Event::Idle => return None,
        })
    }

    fn is_mine(&self, group: &[Event]) -> bool {
        group.iter().any(|e| match e {
            Event::TableMap(t) => t.schema == self.schema,
            Event::Statement { schema, .. } => *schema == self.schema,
            Event::Rows { table_id, .. } => {
                self.tables.get(table_id).is_some_and(|(s, _)| *s == self.schema)
            }
            Event::Begin { gtid: Gtid::Mariadb(g), .. } => self.own.contains(&g.to_string()),
            _ => false,
        })
    }

    /// The next group of this database, with its events.
    async fn group(&mut self) -> (Vec<String>, Vec<Event>) {
        loop {
            let mut events = Vec::new();
            let mut lines = Vec::new();
            loop {
                let event = self.next().await;
                if events.is_empty() && !matches!(event, Event::Begin { .. }) {
                    continue;
                }
                if let Some(line) = self.line(&event) {
                    lines.push(line);
                }
                let end = matches!(event, Event::Commit { .. } | Event::Statement { .. });
                events.push(event);
                if end {
                    break;
                }
            }
            if self.is_mine(&events) {
                return (lines, events);
            }
        }
    }

    async fn lines(&mut self) -> Vec<String> {
        self.group().await.0
    }

    /// Reads until the source says it is idle (a heartbeat between groups).
    async fn until_idle(&mut self) {
        loop {
            if let Event::Idle = self.next().await {
                return;
            }
        }
    }
}

/// Runs `sql` and returns the GTID it committed (`@@last_gtid`).
async fn run(conn: &mut mysql_async::Conn, sql: &str) -> String {
    conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    scalar(conn, "SELECT @@last_gtid").await
}

#[tokio::test]
async fn streams_mariadb_transactions_statements_and_heartbeats_in_order() {
    let bed = testbed();
    let db = bed.fresh_mariadb().await;
    let mut conn = mysql_async::Conn::from_url(&db.url).await.unwrap();
    let start = scalar(&mut conn, "SELECT @@gtid_binlog_pos").await;
    let url = ConnUrl::parse(&db.url).unwrap();
    let reader = open(&url, &mariadb_start(&start), &opts(200)).await.unwrap();
    let mut c = Collector::new(reader, &db.name);

    let g1 = run(
        &mut conn,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), e ENUM('small', 'large'), \
         s SET('a', 'b'), u INT UNSIGNED, b VARBINARY(8))",
    )
    .await;
    let g2 = run(
        &mut conn,
        "BEGIN; INSERT INTO t VALUES (1, 'one', 'small', 'a,b', 4294967295, x'00ff'), \
         (2, 'two', NULL, '', 0, NULL); UPDATE t SET v = 'uno' WHERE id = 1; COMMIT",
    )
    .await;
    let g3 = run(
        &mut conn,
        "BEGIN; UPDATE t SET id = 10 WHERE id = 2; DELETE FROM t WHERE id = 1; COMMIT",
    )
    .await;
    let g4 = run(&mut conn, "TRUNCATE t").await;
    let g5 = run(&mut conn, "CREATE TABLE u (id BIGINT PRIMARY KEY)").await;
    let g6 = run(&mut conn, "INSERT INTO u VALUES (-1), (9223372036854775807)").await;

    assert_eq!(
        c.lines().await,
        [
            format!("begin {g1}"),
            "statement CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), e ENUM('small', 'large'), \
             s SET('a', 'b'), u INT UNSIGNED, b VARBINARY(8))"
                .into()
        ]
    );
    let (lines, events) = c.group().await;
    assert_eq!(
        lines,
        [
            format!("begin {g2}"),
            "map t".into(),
            "insert t (1, 'one', 1, x'03', 4294967295, x'00ff') (2, 'two', NULL, x'00', 0, NULL)"
                .into(),
            "update t (1, 'one', 1, x'03', 4294967295, x'00ff') -> (1, 'uno', 1, x'03', 4294967295, x'00ff')".into(),
            "commit".into(),
        ]
    );
    let Some(Event::TableMap(t)) = events.get(1) else { panic!("{events:?}") };
    let describe: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {:?} pk={} unsigned={} binary={} enum={:?} set={:?}",
                c.name,
                c.column_type,
                c.primary_key,
                c.unsigned,
                c.is_binary(),
                c.enum_labels,
                c.set_labels
            )
        })
        .collect();
    assert_eq!((t.schema.as_str(), t.name.as_str()), (db.name.as_str(), "t"));
    assert_eq!(
        describe,
        [
            "id MYSQL_TYPE_LONG pk=true unsigned=false binary=false enum=[] set=[]",
            "v MYSQL_TYPE_VARCHAR pk=false unsigned=false binary=false enum=[] set=[]",
            "e MYSQL_TYPE_ENUM pk=false unsigned=false binary=false enum=[\"small\", \"large\"] set=[]",
            "s MYSQL_TYPE_SET pk=false unsigned=false binary=false enum=[] set=[\"a\", \"b\"]",
            "u MYSQL_TYPE_LONG pk=false unsigned=true binary=false enum=[] set=[]",
            "b MYSQL_TYPE_VARCHAR pk=false unsigned=false binary=true enum=[] set=[]",
        ]
    );
    // The same table map again is not repeated; the key change is an update of the old row.
    assert_eq!(
        c.lines().await,
        [
            format!("begin {g3}"),
            "update t (2, 'two', NULL, x'00', 0, NULL) -> (10, 'two', NULL, x'00', 0, NULL)".into(),
            "delete t (1, 'uno', 1, x'03', 4294967295, x'00ff')".into(),
            "commit".into(),
        ]
    );
    assert_eq!(c.lines().await, [format!("begin {g4}"), "statement TRUNCATE t".into()]);
    assert_eq!(
        c.lines().await,
        [format!("begin {g5}"), "statement CREATE TABLE u (id BIGINT PRIMARY KEY)".into()]
    );
    assert_eq!(
        c.lines().await,
        [
            format!("begin {g6}"),
            "map u".into(),
            "insert u (-1) (9223372036854775807)".into(),
            "commit".into()
        ]
    );
    // Nothing more is written by this test: the source falls idle and says so.
    c.until_idle().await;
}

#[tokio::test]
async fn resumes_exactly_after_a_mid_point_gtid() {
    let bed = testbed();
    let db = bed.fresh_mariadb().await;
    let mut conn = mysql_async::Conn::from_url(&db.url).await.unwrap();
    run(&mut conn, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let mut gtids = Vec::new();
    for id in 1..=3 {
        gtids.push(run(&mut conn, &format!("INSERT INTO t VALUES ({id})")).await);
    }
    // The server's position with domain 0 put back at the second insert.
    let now = scalar(&mut conn, "SELECT @@gtid_binlog_pos").await;
    let mid: Vec<String> = now
        .split(',')
        .map(|g| if g.starts_with("0-") { gtids[1].clone() } else { g.to_owned() })
        .collect();
    let url = ConnUrl::parse(&db.url).unwrap();
    let reader = open(&url, &mariadb_start(&mid.join(",")), &opts(1000)).await.unwrap();
    let mut c = Collector::new(reader, &db.name);
    // The very first transaction streamed is the one right after the start position.
    let first = loop {
        if let Event::Begin { gtid: Gtid::Mariadb(g), .. } = c.next().await {
            break g;
        }
    };
    let after: molt_cursor::MariadbGtid = gtids[1].parse().unwrap();
    assert_eq!((first.domain, first.seq), (0, after.seq + 1));
    let mut c = Collector::new(
        open(&url, &mariadb_start(&mid.join(",")), &opts(1000)).await.unwrap(),
        &db.name,
    );
    assert_eq!(
        c.lines().await,
        [format!("begin {}", gtids[2]), "map t".into(), "insert t (3)".into(), "commit".into()]
    );
}

// Serial: a replicator test that took its start position while this test's XA transaction
// was prepared would rightly stop at its XA COMMIT (the rows could be its own).
#[tokio::test]
async fn serial_xa_commit_applies_the_prepared_transaction_once() {
    let bed = testbed();
    let db = bed.fresh_mariadb().await;
    let mut conn = mysql_async::Conn::from_url(&db.url).await.unwrap();
    let mut other = mysql_async::Conn::from_url(&db.url).await.unwrap();
    run(&mut conn, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let start = scalar(&mut conn, "SELECT @@gtid_binlog_pos").await;
    let prepared =
        run(&mut conn, "XA START 'x1'; INSERT INTO t VALUES (1); XA END 'x1'; XA PREPARE 'x1'")
            .await;
    let between = run(&mut other, "INSERT INTO t VALUES (2)").await;
    let committed = run(&mut conn, "XA COMMIT 'x1'").await;
    let prepared_x2 =
        run(&mut conn, "XA START 'x2'; INSERT INTO t VALUES (3); XA END 'x2'; XA PREPARE 'x2'")
            .await;
    let rolled_back = run(&mut conn, "XA ROLLBACK 'x2'").await;
    let one_phase = run(
        &mut conn,
        "XA START 'x3'; INSERT INTO t VALUES (4); XA END 'x3'; XA COMMIT 'x3' ONE PHASE",
    )
    .await;
    assert_ne!(prepared, committed);
    let (x1, x2) = ("X'7831',X'',1", "X'7832',X'',1");

    let url = ConnUrl::parse(&db.url).unwrap();
    let mut c =
        Collector::new(open(&url, &mariadb_start(&start), &opts(1000)).await.unwrap(), &db.name);
    c.own.push(rolled_back.clone());
    assert_eq!(
        c.lines().await,
        [format!("begin {between}"), "map t".into(), "insert t (2)".into(), "commit".into()]
    );
    // The prepare is announced with its GTID (a restart point must come before it while it
    // is open), and its rows arrive once, under the GTID of the XA COMMIT.
    assert_eq!(c.prepared, [format!("{x1} {prepared}")]);
    assert_eq!(
        c.lines().await,
        [
            format!("begin {committed}"),
            format!("xa commit {x1} prepared {prepared}"),
            "map t".into(),
            "insert t (1)".into(),
            "commit".into()
        ]
    );
    let (lines, events) = c.group().await;
    assert_eq!(
        lines,
        [
            format!("begin {rolled_back}"),
            format!("xa rollback {x2} prepared {prepared_x2}"),
            "commit".into()
        ],
        "{events:?}"
    );
    assert_eq!(
        c.lines().await,
        [format!("begin {one_phase}"), "insert t (4)".into(), "commit".into()]
    );
    assert_eq!(c.prepared.len(), 2, "ONE PHASE is an ordinary transaction: {:?}", c.prepared);

    // Started after the prepare, the commit's rows were never read: the commit says so, and
    // the consumer decides whether it had applied them before.
    let mut list: Vec<String> =
        start.split(',').filter(|g| !g.starts_with("0-")).map(str::to_owned).collect();
    list.push(between.clone());
    let mut c = Collector::new(
        open(&url, &mariadb_start(&list.join(",")), &opts(1000)).await.unwrap(),
        &db.name,
    );
    c.own.push(committed.clone());
    assert_eq!(
        c.lines().await,
        [format!("begin {committed}"), format!("xa commit {x1} prepared none"), "commit".into()]
    );
}

#[tokio::test]
async fn a_position_not_in_the_binlog_is_refused_with_the_fetch_again_fix() {
    let bed = testbed();
    let db = bed.fresh_mariadb().await;
    let mut conn = mysql_async::Conn::from_url(&db.url).await.unwrap();
    let now: molt_cursor::MariadbGtid = {
        let pos = scalar(&mut conn, "SELECT @@gtid_binlog_pos").await;
        pos.split(',').find(|g| g.starts_with("0-")).unwrap().parse().unwrap()
    };
    let url = ConnUrl::parse(&db.url).unwrap();
    // A sequence number the server never wrote, and a server id that never wrote to it.
    for pos in [format!("0-{}-{}", now.server_id, now.seq + 1_000_000), "0-4242-1".to_owned()] {
        let err = open(&url, &mariadb_start(&pos), &opts(1000)).await.unwrap_err();
        assert!(matches!(err, BinlogError::PositionLost { .. }), "{pos}: {err:?}");
        assert!(err.to_string().contains(POSITION_LOST_FIX), "{err}");
        assert!(!err.is_source_lost(), "{err:?}");
    }
}

#[tokio::test]
async fn refusals_name_their_cause() {
    let bed = testbed();
    let db = bed.fresh_mariadb().await;
    let url = ConnUrl::parse(&db.url).unwrap();
    let set: molt_cursor::MysqlGtidSet =
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5".parse().unwrap();
    let err = open(&url, &StartFrom::Mysql(set), &opts(1000)).await.unwrap_err();
    assert!(matches!(err, BinlogError::WrongFlavor { .. }), "{err:?}");
    assert!(err.to_string().contains("a MySQL GTID cursor cannot start replication"), "{err}");

    let bad =
        ConnUrl::parse(&format!("mysql://molt:Wr0ng@127.0.0.1:{}/{}", bed.mariadb.port, db.name))
            .unwrap();
    let err = open(&bad, &mariadb_start("0-1-1"), &opts(1000)).await.unwrap_err();
    assert!(err.to_string().contains("check the user name and password"), "{err}");
    assert!(!err.is_source_lost());

    let pool = connect(&url).await.unwrap();
    check_source(&pool, Flavor::Mariadb).await.unwrap();
}

/// Waits for the binlog checkpoint event naming `file`: MariaDB writes it once every
/// transaction of the older files is durable in InnoDB, and only then lets PURGE remove them.
async fn wait_for_checkpoint(url: &str, file: &str) {
    let mut bin = mysql_async::Conn::from_url(url).await.unwrap();
    bin.query_drop("SET @mariadb_slave_capability = 4").await.unwrap();
    let req = mysql_async::BinlogStreamRequest::new(server_id())
        .with_filename(file.as_bytes())
        .with_pos(4);
    let mut stream = bin.get_binlog_stream(req).await.unwrap();
    loop {
        let ev = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("a binlog checkpoint event")
            .expect("the binlog stream")
            .unwrap();
        if ev.header().event_type_raw() == mariadb::BINLOG_CHECKPOINT_EVENT
            && mariadb::parse_binlog_checkpoint(ev.data()).is_ok_and(|f| f == file)
        {
            return;
        }
    }
}

#[tokio::test]
async fn a_purged_position_is_refused_with_the_fetch_again_fix() {
    let own = OwnMariadb::start("binlog-purged", "").unwrap();
    let db = own.fresh().await;
    let url = ConnUrl::parse(&db.url).unwrap();
    let mut conn = mysql_async::Conn::from_url(url.expose()).await.unwrap();
    // Starting after `old` needs the INSERT, which only the purged file holds.
    let old = run(&mut conn, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    run(&mut conn, "INSERT INTO t VALUES (1)").await;
    conn.query_drop("FLUSH BINARY LOGS").await.unwrap();
    run(&mut conn, "INSERT INTO t VALUES (2)").await;
    let newest: String = conn
        .query::<(String, u64), _>("SHOW BINARY LOGS")
        .await
        .unwrap()
        .pop()
        .map(|(name, _)| name)
        .unwrap();
    wait_for_checkpoint(&db.url, &newest).await;
    conn.query_drop(format!("PURGE BINARY LOGS TO '{newest}'")).await.unwrap();

    let err = open(&url, &mariadb_start(&old), &opts(1000)).await.unwrap_err();
    assert!(matches!(err, BinlogError::PositionLost { .. }), "{err:?}");
    assert!(err.to_string().contains(POSITION_LOST_FIX), "{err}");
    assert!(!err.is_source_lost());
}

#[tokio::test]
async fn stopping_the_source_is_a_loss_to_reconnect_from() {
    let own = OwnMariadb::start("binlog-stop", "").unwrap();
    let db = own.fresh().await;
    let url = ConnUrl::parse(&db.url).unwrap();
    let mut conn = mysql_async::Conn::from_url(url.expose()).await.unwrap();
    let start = scalar(&mut conn, "SELECT @@gtid_binlog_pos").await;
    let gtid = run(&mut conn, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    drop(conn);
    let mut c =
        Collector::new(open(&url, &mariadb_start(&start), &opts(60_000)).await.unwrap(), &db.name);
    assert_eq!(
        c.lines().await,
        [format!("begin {gtid}"), "statement CREATE TABLE t (id INT PRIMARY KEY)".into()]
    );
    own.stop().unwrap();
    let err = loop {
        match tokio::time::timeout(PATIENCE, c.reader.next()).await.unwrap() {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(err.is_source_lost(), "{err:?}");
    let err = open(&url, &mariadb_start(&gtid), &opts(1000)).await.unwrap_err();
    assert!(err.is_source_lost(), "{err:?}");
}

#[tokio::test]
async fn check_source_names_each_wrong_setting_and_its_fix() {
    let own = OwnMariadb::start(
        "binlog-settings",
        "skip-log-bin\nbinlog_format = MIXED\nbinlog_row_image = MINIMAL\n\
         binlog_row_metadata = MINIMAL\nlog_bin_compress = ON",
    )
    .unwrap();
    let pool = connect(&ConnUrl::parse(&own.fresh().await.url).unwrap()).await.unwrap();
    let err = check_source(&pool, Flavor::Mariadb).await.unwrap_err();
    let BinlogError::SourceNotConfigured { problems } = &err else { panic!("{err:?}") };
    let found: Vec<(&str, &str)> =
        problems.0.iter().map(|p| (p.variable, p.found.as_str())).collect();
    assert_eq!(
        found,
        [
            ("log_bin", "OFF"),
            ("binlog_format", "MIXED"),
            ("binlog_row_image", "MINIMAL"),
            ("binlog_row_metadata", "MINIMAL"),
            ("log_bin_compress", "ON"),
        ]
    );
    let text = err.to_string();
    for fix in [
        "set log_bin = ON under [mysqld] in my.cnf and restart the server",
        "SET GLOBAL binlog_format = 'ROW'",
        "SET GLOBAL binlog_row_image = 'FULL'",
        "SET GLOBAL binlog_row_metadata = 'FULL'",
        "--fetchMetadata",
        "SET GLOBAL log_bin_compress = 'OFF'",
    ] {
        assert!(text.contains(fix), "{fix} missing from: {text}");
    }
    let err = check_source_with_catalog_names(&pool, Flavor::Mariadb).await.unwrap_err();
    let BinlogError::SourceNotConfigured { problems } = &err else { panic!("{err:?}") };
    assert!(problems.0.iter().all(|p| p.variable != "binlog_row_metadata"), "{err}");
    assert_eq!(problems.0.len(), 4);
}

#[test]
#[ignore = "prints MariaDB event bodies for the tests in src/binlog/mariadb.rs"]
fn capture_mariadb_event_bodies() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let bed = testbed();
        let db = bed.fresh_mariadb().await;
        let mut conn = mysql_async::Conn::from_url(&db.url).await.unwrap();
        let pos = scalar(&mut conn, "SELECT @@gtid_binlog_pos").await;
        conn.query_drop(
            "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10));
             INSERT INTO t VALUES (1, 'a');
             XA START 'xa1'; INSERT INTO t VALUES (2, 'b'); XA END 'xa1'; XA PREPARE 'xa1';
             XA COMMIT 'xa1';",
        )
        .await
        .unwrap();
        let mut bin = mysql_async::Conn::from_url(&db.url).await.unwrap();
        bin.query_drop("SET @mariadb_slave_capability = 4").await.unwrap();
        bin.query_drop(format!("SET @slave_connect_state = '{pos}'")).await.unwrap();
        bin.query_drop("SET @slave_gtid_strict_mode = 1").await.unwrap();
        let req = mysql_async::BinlogStreamRequest::new(server_id()).with_filename(b"").with_pos(4);
        let mut stream = bin.get_binlog_stream(req).await.unwrap();
        while let Some(ev) = stream.next().await {
            let ev = ev.unwrap();
            let t = ev.header().event_type_raw();
            let hex: Vec<String> = ev.data().iter().map(|b| format!("{b:02x}")).collect();
            println!("type {t:#04x} pos {}: {}", ev.header().log_pos(), hex.join(" "));
            if t == 0x02 && String::from_utf8_lossy(ev.data()).contains("XA COMMIT") {
                break;
            }
        }
    });
}
