//! Streaming the binlog from a GTID position and turning its events into [`Event`]s.
//!
//! ```text
//!  open(url, StartFrom, opts)
//!    MariaDB: SET @mariadb_slave_capability=4, @slave_connect_state='0-1-7',
//!             @slave_gtid_strict_mode=1        then COM_BINLOG_DUMP ('' at 4)
//!    MySQL:   SET @source_binlog_checksum      then COM_BINLOG_DUMP_GTID (the GTID set)
//!    both:    SET @master_heartbeat_period (ns): an idle source sends HEARTBEAT events
//!        │
//!        ▼  mysql_common events (MySQL 8 TRANSACTION_PAYLOADs come out expanded, in order)
//!  Decoder::push ──► Begin{gtid} [TableMap] Rows… Commit  |  Begin{gtid} Statement  |  Idle
//! ```
//!
//! Transaction boundaries: MySQL writes `GTID`, `QUERY BEGIN`, row events, `XID`; MariaDB
//! (speaking to a GTID-aware replica) writes its own `GTID` event (0xa2) and no `BEGIN`, then
//! row events and `XID` (or `QUERY COMMIT` for non-transactional tables). A GTID group that is
//! one statement (MariaDB `FL_STANDALONE`, MySQL DDL) gives `Begin` then `Statement`. MariaDB
//! logs `CREATE TABLE … SELECT` as the statement and then its rows under the same GTID: the
//! rows come as a second `Begin` with that GTID. The GTID of a group is held until the event
//! after it says what the group is, so `Begin` is emitted with the first event of the group.
//!
//! XA: the prepared half (`XA START` … `XA END`, `XA_PREPARE`) is kept, not emitted, and
//! announced as `XaPrepared`; `XA COMMIT` emits it as one transaction under the commit's GTID
//! (`Begin`, `XaEnded`, its events, `Commit`), `XA ROLLBACK` drops it (an empty transaction
//! with `XaEnded`, so the position still moves). `XA COMMIT … ONE PHASE` is an ordinary
//! transaction. An `XA COMMIT` whose prepare came before the start position has `XaEnded`
//! with no prepare: the consumer decides whether it needed those rows
//! ([`BinlogError::XaPrepareNotSeen`]) or had applied them before.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use molt_cursor::{MariadbGtidList, MysqlGtidSet, SourceUuid};
use molt_source::SourceError;
use molt_url::ConnUrl;
use mysql_async::binlog::EventType;
use mysql_async::binlog::events::{
    BinlogEventHeader, Event as RawEvent, EventData, FormatDescriptionEvent, GtidEvent, QueryEvent,
    TableMapEvent, TransactionPayloadEvent,
};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, GnoInterval, Sid};

use super::error::BinlogError;
use super::mariadb::{self, GtidEventBody, Xid};
use super::table::{binlog_table, row_op};
use super::{BinlogTable, Event, Gtid};
use crate::Flavor;

/// Where replication starts: just after the transactions a cursor names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// A MariaDB position (`@@gtid_binlog_pos`): stream from after each domain's GTID.
    Mariadb(MariadbGtidList),
    /// A MySQL GTID set (`@@gtid_executed`): stream every transaction not in it.
    Mysql(MysqlGtidSet),
}

impl StartFrom {
    fn text(&self) -> String {
        match self {
            StartFrom::Mariadb(list) => list.to_string(),
            StartFrom::Mysql(set) => set.to_string(),
        }
    }
}

/// How the binlog connection presents itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinlogOptions {
    /// Server id the reader registers as; unique among the source's replicas.
    pub server_id: u32,
    /// How often an idle source sends a heartbeat ([`Event::Idle`]); zero turns them off.
    pub heartbeat: Duration,
}

/// A binlog stream from one source, decoded.
pub struct BinlogReader {
    stream: BinlogStream,
    decoder: Decoder,
    queue: VecDeque<Event>,
    host: String,
    position: String,
}

impl std::fmt::Debug for BinlogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinlogReader").field("host", &self.host).finish_non_exhaustive()
    }
}

/// Connects to the source and starts its binlog just after `start`.
///
/// The first event is read before returning, so a start position the server refuses is
/// reported here ([`BinlogError::PositionLost`]) rather than by the first [`BinlogReader::next`].
///
/// # Errors
/// [`BinlogError::Connect`] when connecting or logging in fails, [`BinlogError::WrongFlavor`]
/// for a cursor of the other flavor, [`BinlogError::PositionLost`] for a position no longer in
/// the binlog, [`BinlogError::Refused`] (privileges, server id) and the rest of
/// [`BinlogError`].
pub async fn open(
    url: &ConnUrl,
    start: &StartFrom,
    opts: &BinlogOptions,
) -> Result<BinlogReader, BinlogError> {
    let host = url.host_port();
    let connect_err = |e: mysql_async::Error| {
        BinlogError::Connect(SourceError::connect(url, crate::connect::classify(&e), e))
    };
    let builder = crate::connect::opts(url).map_err(BinlogError::Connect)?;
    let mut conn = Conn::new(builder).await.map_err(connect_err)?;
    let query = |what: &'static str| {
        let host = host.clone();
        move |source| BinlogError::Query { what, host, source }
    };
    let version: Option<String> =
        conn.query_first("SELECT VERSION()").await.map_err(query("reading the server version"))?;
    let flavor = crate::connect::flavor_of(&version.unwrap_or_default());
    let heartbeat_ns = u64::try_from(opts.heartbeat.as_nanos()).unwrap_or(u64::MAX);

    let mut settings = vec![format!("SET @master_heartbeat_period = {heartbeat_ns}")];
    let request = match (start, flavor) {
        (StartFrom::Mariadb(list), Flavor::Mariadb) => {
            // Digits, dashes and commas only (MariadbGtidList's Display): safe to quote.
            settings.push("SET @mariadb_slave_capability = 4".into());
            settings.push(format!("SET @slave_connect_state = '{list}'"));
            settings.push("SET @slave_gtid_strict_mode = 1".into());
            BinlogStreamRequest::new(opts.server_id).with_filename(b"").with_pos(4)
        }
        (StartFrom::Mysql(set), Flavor::Mysql) => {
            settings.push("SET @source_heartbeat_period = @master_heartbeat_period".into());
            settings.push("SET @source_binlog_checksum = @@global.binlog_checksum".into());
            let sids: Vec<Sid<'static>> = set
                .uuids()
                .map(|uuid| {
                    let intervals = set
                        .intervals(uuid)
                        .iter()
                        .map(|&(s, e)| GnoInterval::new(s, e.saturating_add(1)))
                        .collect();
                    Sid::new(*uuid.as_bytes()).with_intervals(intervals)
                })
                .collect();
            BinlogStreamRequest::new(opts.server_id)
                .with_gtid()
                .with_gtid_set(sids)
                .with_filename(b"")
                .with_pos(4)
        }
        (StartFrom::Mariadb(_), Flavor::Mysql) => {
            return Err(BinlogError::WrongFlavor { host, cursor: "MariaDB GTID", server: "MySQL" });
        }
        (StartFrom::Mysql(_), Flavor::Mariadb) => {
            return Err(BinlogError::WrongFlavor { host, cursor: "MySQL GTID", server: "MariaDB" });
        }
    };
    for sql in settings {
        conn.query_drop(sql).await.map_err(query("preparing the binlog session"))?;
    }
    let position = start.text();
    let stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| BinlogError::from_stream(&host, &position, e))?;
    let mut reader =
        BinlogReader { stream, decoder: Decoder::new(), queue: VecDeque::new(), host, position };
    reader.read_one().await?;
    Ok(reader)
}

impl BinlogReader {
    /// The next event. Cancel-safe: dropping the future loses nothing.
    ///
    /// # Errors
    /// [`BinlogError::Closed`] when the server ends the stream, [`BinlogError::Lost`] when the
    /// connection fails (both [`BinlogError::is_source_lost`]), a refusal or decoding error
    /// otherwise. The reader is not usable after an error: reconnect with [`open`].
    pub async fn next(&mut self) -> Result<Event, BinlogError> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(event);
            }
            self.read_one().await?;
        }
    }

    /// Reads one binlog event into the queue.
    async fn read_one(&mut self) -> Result<(), BinlogError> {
        match self.stream.next().await {
            None => Err(BinlogError::Closed { host: self.host.clone() }),
            Some(Err(e)) => Err(BinlogError::from_stream(&self.host, &self.position, e)),
            Some(Ok(raw)) => self.decoder.push(&raw, &mut self.queue),
        }
    }
}

/// The current GTID group before its first event said what it is.
#[derive(Debug, Clone)]
struct Pending {
    gtid: Gtid,
    timestamp: u32,
    /// MariaDB: the GTID event's body (XA flags and id).
    mariadb: Option<GtidEventBody>,
}

/// The prepared half of an XA transaction being collected.
#[derive(Debug)]
struct XaCollect {
    xid: Xid,
    begin: Option<(Gtid, u32)>,
    events: Vec<Event>,
}

/// Turns binlog events into [`Event`]s; shared by the live stream and [`decode_file`].
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    /// Table maps by id, for decoding row events.
    maps: HashMap<u64, (TableMapEvent<'static>, Arc<BinlogTable>)>,
    /// The table map the consumer last saw per id.
    emitted: HashMap<u64, Arc<BinlogTable>>,
    pending: Option<Pending>,
    /// GTID and timestamp of the group in progress (its `Begin` was emitted).
    group: Option<(Gtid, u32)>,
    in_txn: bool,
    /// The open transaction has emitted a table map or rows.
    changed: bool,
    xa: Option<XaCollect>,
    /// Prepared XA transactions: the prepare's GTID and the held-back events.
    prepared: HashMap<Xid, (Option<Gtid>, Vec<Event>)>,
    /// A TRANSACTION_PAYLOAD was read; its inner events (log_pos 0) must follow.
    expect_payload: bool,
}

/// A name for an event type, for messages.
fn event_name(t: u8) -> String {
    match EventType::try_from(t) {
        Ok(t) => format!("{t:?}"),
        Err(_) => match t {
            mariadb::GTID_EVENT => "MariaDB GTID".into(),
            mariadb::GTID_LIST_EVENT => "MariaDB GTID_LIST".into(),
            mariadb::ANNOTATE_ROWS_EVENT => "MariaDB ANNOTATE_ROWS".into(),
            mariadb::BINLOG_CHECKPOINT_EVENT => "MariaDB BINLOG_CHECKPOINT".into(),
            other => format!("type {other}"),
        },
    }
}

/// What a QUERY event's text is to the decoder.
enum Query<'a> {
    Begin,
    Commit,
    Rollback,
    Skip,
    XaStart(&'a str),
    XaCommit(&'a str),
    XaRollback(&'a str),
    Statement,
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| text.get(prefix.len()..)).flatten()
}

fn classify_query(sql: &str) -> Query<'_> {
    let t = sql.trim();
    let is = |word: &str| t.eq_ignore_ascii_case(word);
    if is("BEGIN") || is("START TRANSACTION") {
        Query::Begin
    } else if is("COMMIT") {
        Query::Commit
    } else if is("ROLLBACK") {
        Query::Rollback
    } else if let Some(rest) = strip_prefix_ci(t, "XA START ") {
        Query::XaStart(rest)
    } else if let Some(rest) = strip_prefix_ci(t, "XA COMMIT ") {
        Query::XaCommit(rest)
    } else if let Some(rest) = strip_prefix_ci(t, "XA ROLLBACK ") {
        Query::XaRollback(rest)
    } else if strip_prefix_ci(t, "XA END ").is_some()
        || strip_prefix_ci(t, "SAVEPOINT ").is_some()
        || strip_prefix_ci(t, "ROLLBACK TO ").is_some()
        || t.starts_with("# Dummy event")
    {
        Query::Skip
    } else {
        Query::Statement
    }
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Decoder::default()
    }

    /// Decodes one binlog event, appending what it means to `out`.
    pub(crate) fn push(
        &mut self,
        raw: &RawEvent,
        out: &mut VecDeque<Event>,
    ) -> Result<(), BinlogError> {
        let header = raw.header();
        let (t, pos, ts) = (header.event_type_raw(), header.log_pos(), header.timestamp());
        let decode = |reason: &str, e: Option<std::io::Error>| {
            BinlogError::decode(event_name(t), pos, reason, e)
        };
        if std::mem::take(&mut self.expect_payload) && pos != 0 {
            return Err(decode(
                "the transaction payload before it could not be decompressed",
                None,
            ));
        }
        match t {
            x if x == EventType::GTID_EVENT as u8
                || x == EventType::GTID_TAGGED_LOG_EVENT as u8 =>
            {
                let gtid: GtidEvent = raw.read_event().map_err(|e| decode("GTID", Some(e)))?;
                if gtid.tag().is_some() {
                    return Err(BinlogError::unsupported(
                        "a tagged GTID (MySQL 8.4+ `uuid:tag:n`); MOLT replicates untagged GTIDs only",
                    ));
                }
                let gtid = Gtid::Mysql(SourceUuid::from_bytes(gtid.sid()), gtid.gno());
                self.new_group(Pending { gtid, timestamp: ts, mariadb: None })?;
            }
            mariadb::GTID_EVENT => {
                let body = mariadb::parse_gtid(raw.data()).map_err(|e| decode(e.reason, None))?;
                let gtid = Gtid::Mariadb(body.gtid(header.server_id()));
                self.new_group(Pending { gtid, timestamp: ts, mariadb: Some(body) })?;
            }
            x if x == EventType::ANONYMOUS_GTID_EVENT as u8 => {
                self.reset_group();
                return Err(BinlogError::unsupported(
                    "a transaction without a GTID (gtid_mode is not ON): SET GLOBAL gtid_mode = ON and enforce_gtid_consistency = ON on the source",
                ));
            }
            x if x == EventType::QUERY_EVENT as u8 => {
                let q: QueryEvent = raw.read_event().map_err(|e| decode("QUERY", Some(e)))?;
                self.query(&q, ts, out)?;
            }
            x if x == EventType::XID_EVENT as u8 => self.commit(ts, out)?,
            x if x == EventType::TABLE_MAP_EVENT as u8 => {
                let tme: TableMapEvent =
                    raw.read_event().map_err(|e| decode("TABLE_MAP", Some(e)))?;
                let table = Arc::new(binlog_table(&tme, pos)?);
                self.start_group(out);
                self.maps.insert(table.id, (tme.into_owned(), Arc::clone(&table)));
                if let Some(xa) = &mut self.xa {
                    xa.events.push(Event::TableMap(table));
                } else {
                    self.changed = true;
                    if self.emitted.get(&table.id) != Some(&table) {
                        self.emitted.insert(table.id, Arc::clone(&table));
                        out.push_back(Event::TableMap(table));
                    }
                }
            }
            x if x == EventType::XA_PREPARE_LOG_EVENT as u8 => {
                let prepare =
                    mariadb::parse_xa_prepare(raw.data()).map_err(|e| decode(e.reason, None))?;
                self.xa_prepare(prepare, ts, out)?;
            }
            x if x == EventType::TRANSACTION_PAYLOAD_EVENT as u8 => self.expect_payload = true,
            x if x == EventType::ROTATE_EVENT as u8 || x == EventType::HEARTBEAT_EVENT as u8 => {
                out.push_back(Event::Idle);
            }
            // HEARTBEAT_LOG_EVENT_V2 (MySQL 8.0.26+), unknown to mysql_common.
            41 => out.push_back(Event::Idle),
            x if x == EventType::INCIDENT_EVENT as u8 => {
                return Err(BinlogError::unsupported(
                    "the source logged an INCIDENT: it lost changes it could not write to the binlog; run fetch again",
                ));
            }
            mariadb::START_ENCRYPTION_EVENT => {
                return Err(BinlogError::unsupported(
                    "an encrypted binlog (START_ENCRYPTION event)",
                ));
            }
            mariadb::FIRST_COMPRESSED_EVENT..=mariadb::LAST_COMPRESSED_EVENT => {
                return Err(BinlogError::unsupported(
                    "a compressed MariaDB binlog event: SET GLOBAL log_bin_compress = OFF (and log_bin_compress = OFF in my.cnf), then run fetch again",
                ));
            }
            x if is_skipped(x) => {}
            _ => match raw.read_data().map_err(|e| decode("event", Some(e)))? {
                Some(EventData::RowsEvent(rows)) => {
                    let table_id = rows.table_id();
                    let Some((tme, _)) = self.maps.get(&table_id) else {
                        return Err(decode(
                            &format!("rows of table id {table_id} without a table map"),
                            None,
                        ));
                    };
                    let op = row_op(&rows, tme, pos)?;
                    self.start_group(out);
                    self.emit(Event::Rows { table_id, op }, out);
                }
                _ if header.flags_raw() & 0x80 != 0 => {} // LOG_EVENT_IGNORABLE_F
                _ => {
                    return Err(BinlogError::unsupported(format!(
                        "binlog event {} at position {pos}, which this reader does not know",
                        event_name(t)
                    )));
                }
            },
        }
        Ok(())
    }

    /// A GTID event: the previous group must be over.
    fn new_group(&mut self, pending: Pending) -> Result<(), BinlogError> {
        if self.in_txn && self.xa.is_none() {
            return Err(BinlogError::decode(
                "GTID",
                0,
                "a new GTID inside an open transaction",
                None,
            ));
        }
        self.reset_group();
        self.pending = Some(pending);
        Ok(())
    }

    fn reset_group(&mut self) {
        self.pending = None;
        self.group = None;
        self.in_txn = false;
        self.changed = false;
        self.xa = None;
    }

    /// Starts the pending group's transaction (emits `Begin`) if it has not started.
    fn start_group(&mut self, out: &mut VecDeque<Event>) {
        if self.in_txn || self.xa.is_some() {
            return;
        }
        self.in_txn = true;
        if let Some(p) = self.pending.take() {
            let begin = Some((p.gtid, p.timestamp));
            if let Some(xid) = p.mariadb.filter(GtidEventBody::is_prepared_xa).and_then(|b| b.xid) {
                self.xa = Some(XaCollect { xid, begin, events: Vec::new() });
                return;
            }
            self.group = begin;
        }
        // No pending GTID: rows after a statement of the same group, or no GTID at all.
        if let Some((gtid, timestamp)) = self.group {
            out.push_back(Event::Begin { gtid, timestamp });
        }
    }

    fn emit(&mut self, event: Event, out: &mut VecDeque<Event>) {
        match &mut self.xa {
            Some(xa) => xa.events.push(event),
            None => {
                self.changed = true;
                out.push_back(event);
            }
        }
    }

    fn commit(&mut self, timestamp: u32, out: &mut VecDeque<Event>) -> Result<(), BinlogError> {
        if self.xa.is_some() {
            return Err(BinlogError::decode("XID", 0, "a commit inside an XA transaction", None));
        }
        self.start_group(out);
        out.push_back(Event::Commit { timestamp });
        self.reset_group();
        Ok(())
    }

    /// Emits a whole transaction: `Begin`, its events (table maps recorded as seen), `Commit`.
    fn replay(
        &mut self,
        begin: Option<(Gtid, u32)>,
        events: Vec<Event>,
        timestamp: u32,
        out: &mut VecDeque<Event>,
    ) {
        if let Some((gtid, ts)) = begin {
            out.push_back(Event::Begin { gtid, timestamp: ts });
        }
        for event in events {
            if let Event::TableMap(table) = &event {
                self.emitted.insert(table.id, Arc::clone(table));
            }
            out.push_back(event);
        }
        out.push_back(Event::Commit { timestamp });
    }

    fn query(
        &mut self,
        q: &QueryEvent<'_>,
        ts: u32,
        out: &mut VecDeque<Event>,
    ) -> Result<(), BinlogError> {
        let sql = q.query();
        let bad_xid = |text: &str| {
            BinlogError::decode(
                "QUERY",
                0,
                format!("an XA id the servers do not write: {text}"),
                None,
            )
        };
        match classify_query(&sql) {
            Query::Begin => self.start_group(out),
            Query::Commit => self.commit(ts, out)?,
            Query::Skip => {}
            Query::Rollback if self.in_txn => {
                return Err(BinlogError::unsupported(
                    "a ROLLBACK logged inside a transaction (a rolled-back transaction that changed non-transactional tables such as MyISAM)",
                ));
            }
            Query::Rollback => {
                // A group that changed nothing: still a position to move past.
                let begin = self.pending.take().map(|p| (p.gtid, p.timestamp));
                if begin.is_some() {
                    self.replay(begin, Vec::new(), ts, out);
                }
                self.reset_group();
            }
            Query::XaStart(text) => {
                let xid = mariadb::parse_xid_text(text).ok_or_else(|| bad_xid(text))?;
                let begin = self.pending.take().map(|p| (p.gtid, p.timestamp));
                self.in_txn = true;
                self.xa = Some(XaCollect { xid, begin, events: Vec::new() });
            }
            Query::XaCommit(text) => {
                // `XA COMMIT … ONE PHASE` of the transaction being collected commits it now.
                let id_text = strip_suffix_ci(text.trim_end(), " ONE PHASE").unwrap_or(text);
                let xid = mariadb::parse_xid_text(id_text).ok_or_else(|| bad_xid(text))?;
                let begin = self.pending.take().map(|p| (p.gtid, p.timestamp));
                match self.xa.take().filter(|xa| xa.xid == xid) {
                    Some(xa) => self.replay(xa.begin.or(begin), xa.events, ts, out),
                    None => {
                        let (prepared, held) = self.prepared.remove(&xid).unwrap_or_default();
                        let ended =
                            Event::XaEnded { xid: xid.to_string(), prepared, committed: true };
                        let events = std::iter::once(ended).chain(held).collect();
                        self.replay(begin, events, ts, out);
                    }
                }
                self.reset_group();
            }
            Query::XaRollback(text) => {
                let xid = mariadb::parse_xid_text(text).ok_or_else(|| bad_xid(text))?;
                let prepared = self.prepared.remove(&xid).and_then(|(gtid, _)| gtid);
                let begin = self.pending.take().map(|p| (p.gtid, p.timestamp));
                let ended = Event::XaEnded { xid: xid.to_string(), prepared, committed: false };
                self.replay(begin, vec![ended], ts, out);
                self.reset_group();
            }
            Query::Statement => {
                if self.xa.is_some() || self.changed {
                    return Err(BinlogError::unsupported(format!(
                        "a statement logged inside a row-based transaction (binlog_format is not ROW for every session?): {}",
                        excerpt(&sql)
                    )));
                }
                // After `BEGIN` (MySQL's CREATE TABLE … SELECT) the group's `Begin` is out.
                if !self.in_txn {
                    if let Some(p) = self.pending.take() {
                        self.group = Some((p.gtid, p.timestamp));
                    }
                    if let Some((gtid, timestamp)) = self.group {
                        out.push_back(Event::Begin { gtid, timestamp });
                    }
                }
                self.in_txn = false;
                let schema = q.schema().into_owned();
                out.push_back(Event::Statement { schema, sql: sql.into_owned(), timestamp: ts });
            }
        }
        Ok(())
    }

    fn xa_prepare(
        &mut self,
        prepare: mariadb::XaPrepare,
        ts: u32,
        out: &mut VecDeque<Event>,
    ) -> Result<(), BinlogError> {
        self.start_group(out);
        let Some(xa) = self.xa.take() else {
            return Err(BinlogError::decode(
                "XA_PREPARE",
                0,
                "XA PREPARE outside an XA transaction",
                None,
            ));
        };
        if prepare.one_phase {
            self.replay(xa.begin, xa.events, ts, out);
        } else {
            let gtid = xa.begin.map(|(gtid, _)| gtid);
            out.push_back(Event::XaPrepared { xid: prepare.xid.to_string(), gtid });
            self.prepared.insert(prepare.xid, (gtid, xa.events));
        }
        self.reset_group();
        Ok(())
    }
}

fn strip_suffix_ci<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(suffix.len())?;
    let tail = text.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| text.get(..cut)).flatten()
}

/// At most 200 characters of a statement, for messages.
fn excerpt(sql: &str) -> String {
    let mut out: String = sql.chars().take(200).collect();
    if out.len() < sql.len() {
        out.push('…');
    }
    out
}

/// Events that carry nothing the replicator needs.
fn is_skipped(t: u8) -> bool {
    use EventType as E;
    [
        E::FORMAT_DESCRIPTION_EVENT,
        E::STOP_EVENT,
        E::INTVAR_EVENT,
        E::RAND_EVENT,
        E::USER_VAR_EVENT,
        E::IGNORABLE_EVENT,
        E::ROWS_QUERY_EVENT,
        E::PREVIOUS_GTIDS_EVENT,
        E::TRANSACTION_CONTEXT_EVENT,
        E::VIEW_CHANGE_EVENT,
    ]
    .iter()
    .any(|e| *e as u8 == t)
        || matches!(
            t,
            mariadb::ANNOTATE_ROWS_EVENT
                | mariadb::BINLOG_CHECKPOINT_EVENT
                | mariadb::GTID_LIST_EVENT
        )
}

/// Largest decompressed TRANSACTION_PAYLOAD [`decode_file`] accepts.
const PAYLOAD_MAX: u64 = 1 << 30;

/// Cuts one event off `buf` and reads it, checking its size first (mysql_common's reader
/// assumes a well-formed size).
fn frame<'a>(
    fde: &FormatDescriptionEvent<'static>,
    buf: &'a [u8],
    checksummed: bool,
) -> Result<(RawEvent, &'a [u8]), BinlogError> {
    let bad = |reason: &str| BinlogError::decode("binlog file", 0, reason, None);
    let size = buf.get(9..13).ok_or_else(|| bad("an event header cut short"))?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
    let size = usize::try_from(size).map_err(|_| bad("event size too large"))?;
    let t = buf.get(4).copied().unwrap_or_default();
    let min = if t == EventType::FORMAT_DESCRIPTION_EVENT as u8 {
        BinlogEventHeader::LEN + 57 + 5
    } else if checksummed {
        BinlogEventHeader::LEN + 4
    } else {
        BinlogEventHeader::LEN
    };
    if size < min {
        return Err(bad("an event smaller than its header and checksum"));
    }
    let (event, rest) = buf.split_at_checked(size).ok_or_else(|| bad("an event cut short"))?;
    let raw = RawEvent::read(fde, event)
        .map_err(|e| BinlogError::decode("binlog file", 0, "event", Some(e)))?;
    Ok((raw, rest))
}

/// Decodes a binlog file (`fe 62 69 6e`, then v4 events) with the decoder the live stream
/// uses, expanding TRANSACTION_PAYLOAD events (MySQL 8 `binlog_transaction_compression`) in
/// order. For tests and diagnostics: every event's result is kept, so an error (an anonymous
/// GTID, say) does not hide the events after it; a file that cannot be framed further ends
/// with its error.
pub fn decode_file(bytes: &[u8]) -> Vec<Result<Event, BinlogError>> {
    let mut out = Vec::new();
    let Some(mut rest) = bytes.strip_prefix(&[0xfe, b'b', b'i', b'n']) else {
        out.push(Err(BinlogError::decode("binlog file", 0, "no binlog magic", None)));
        return out;
    };
    let mut fde = FormatDescriptionEvent::new(mysql_async::binlog::BinlogVersion::Version4);
    let mut decoder = Decoder::new();
    while !rest.is_empty() {
        let checksummed =
            fde.footer().get_checksum_alg().ok().flatten().is_some_and(|a| a as u8 != 0);
        let (raw, tail) = match frame(&fde, rest, checksummed) {
            Ok(x) => x,
            Err(e) => {
                out.push(Err(e));
                break;
            }
        };
        rest = tail;
        let t = raw.header().event_type_raw();
        if t == EventType::FORMAT_DESCRIPTION_EVENT as u8 {
            match raw.read_event::<FormatDescriptionEvent<'_>>() {
                Ok(f) => fde = f.into_owned().with_footer(raw.footer()),
                Err(e) => {
                    out.push(Err(BinlogError::decode("FORMAT_DESCRIPTION", 0, "event", Some(e))));
                    break;
                }
            }
        }
        push_into(&mut decoder, &raw, &mut out);
        if t == EventType::TRANSACTION_PAYLOAD_EVENT as u8
            && let Err(e) = expand_payload(&raw, &fde, &mut decoder, &mut out)
        {
            out.push(Err(e));
        }
    }
    out
}

/// Runs one event through the decoder, keeping its result.
fn push_into(decoder: &mut Decoder, raw: &RawEvent, out: &mut Vec<Result<Event, BinlogError>>) {
    let mut queue = VecDeque::new();
    let result = decoder.push(raw, &mut queue);
    out.extend(queue.into_iter().map(Ok));
    if let Err(e) = result {
        out.push(Err(e));
    }
}

/// Reads the events inside a TRANSACTION_PAYLOAD (no checksums there) and hands each on.
fn expand_payload(
    raw: &RawEvent,
    fde: &FormatDescriptionEvent<'static>,
    decoder: &mut Decoder,
    out: &mut Vec<Result<Event, BinlogError>>,
) -> Result<(), BinlogError> {
    use std::io::Read;
    let pos = raw.header().log_pos();
    let err = |reason: &str, e| BinlogError::decode("TRANSACTION_PAYLOAD", pos, reason, e);
    mariadb::check_transaction_payload(raw.data()).map_err(|e| err(e.reason, None))?;
    let tpe: TransactionPayloadEvent<'_> = raw.read_event().map_err(|e| err("event", Some(e)))?;
    if tpe.uncompressed_size() > PAYLOAD_MAX {
        return Err(err("payload larger than 1 GiB", None));
    }
    let mut inner = Vec::new();
    tpe.decompressed()
        .and_then(|r| r.take(tpe.uncompressed_size()).read_to_end(&mut inner))
        .map_err(|e| err("decompressing", Some(e)))?;
    let mut footer = fde.footer();
    footer.set_checksum_enabled(false);
    let inner_fde = fde.clone().with_footer(footer);
    let mut rest = inner.as_slice();
    while !rest.is_empty() {
        let (event, tail) = frame(&inner_fde, rest, false)?;
        rest = tail;
        push_into(decoder, &event, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_can_move_to_another_task() {
        fn send<T: Send>(_: &T) {}
        fn future_is_send(r: &mut BinlogReader) {
            send(&r.next());
        }
        let _ = future_is_send;
    }

    #[test]
    fn queries_are_told_apart() {
        assert!(matches!(classify_query(" begin "), Query::Begin));
        assert!(matches!(classify_query("COMMIT"), Query::Commit));
        assert!(matches!(classify_query("ROLLBACK TO SAVEPOINT `s`"), Query::Skip));
        assert!(matches!(classify_query("SAVEPOINT `s`"), Query::Skip));
        assert!(matches!(classify_query("# Dummy event replacing event type 160"), Query::Skip));
        assert!(matches!(classify_query("xa commit X'31',X'',1"), Query::XaCommit("X'31',X'',1")));
        assert!(matches!(classify_query("TRUNCATE t"), Query::Statement));
        assert!(matches!(classify_query("BEGIN NOT ATOMIC SELECT 1; END"), Query::Statement));
        assert_eq!(strip_suffix_ci("X'31',X'',1 one phase", " ONE PHASE"), Some("X'31',X'',1"));
        assert_eq!(strip_suffix_ci("é", " ONE PHASE"), None);
        assert_eq!(excerpt(&"x".repeat(300)).chars().count(), 201);
    }
}
