//! The MySQL/MariaDB binlog as the replicator reads it: a connection that streams row events
//! from a GTID position, decoded into [`Event`]s of our own model.
//!
//! - [`BinlogTable`]/[`BinlogColumn`]: a table as a `TABLE_MAP` event describes it (names from
//!   `binlog_row_metadata=FULL`, or from the catalog with `--fetchMetadata`).
//! - [`Event`]: what the replicator acts on, in stream order: transaction boundaries with
//!   their GTID, table maps, row images, statements (DDL, TRUNCATE), heartbeats.
//!
//! Row values stay as `mysql_common`'s [`BinlogValue`]s here; [`crate::value`] turns them into
//! the text the target is written with.

use std::sync::Arc;

mod error;
pub mod mariadb;
mod stream;
mod table;

pub use error::{
    BinlogError, POSITION_LOST_FIX, SettingProblem, SettingProblems, check_source,
    check_source_with_catalog_names,
};
pub use stream::{BinlogOptions, BinlogReader, StartFrom, decode_file, open};

pub use mysql_async::binlog::value::BinlogValue;
pub use mysql_async::consts::ColumnType;

use molt_cursor::{MariadbGtid, SourceUuid};

/// One column of a binlog table map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogColumn {
    /// Column name (empty when the server sent no names: `binlog_row_metadata=MINIMAL`).
    pub name: String,
    /// The column's real type (an ENUM or SET column is reported as such, not as STRING).
    pub column_type: ColumnType,
    /// The type's metadata bytes from the table map (length, precision, fsp, …).
    pub metadata: Vec<u8>,
    /// Integer columns: declared UNSIGNED.
    pub unsigned: bool,
    /// String columns: the collation id of their character set, from the table map's charset
    /// metadata (63 is `binary`: BINARY/VARBINARY/BLOB); None when the table map sent none.
    pub collation: Option<u16>,
    /// ENUM labels, in declaration order (index 1 is the first).
    pub enum_labels: Vec<String>,
    /// SET labels, in declaration order (bit 0 is the first).
    pub set_labels: Vec<String>,
    /// Part of the primary key (from the table map's metadata).
    pub primary_key: bool,
}

impl BinlogColumn {
    /// A string column of the `binary` character set: bytes, not text.
    pub fn is_binary(&self) -> bool {
        self.collation == Some(BINARY_COLLATION)
    }
}

/// The collation id of the `binary` character set.
const BINARY_COLLATION: u16 = 63;

/// A table as the binlog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogTable {
    /// The server's table id (valid until the next table map for it).
    pub id: u64,
    /// Database (MySQL's schema).
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Columns in ordinal order.
    pub columns: Vec<BinlogColumn>,
}

/// A transaction's global id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gtid {
    /// MySQL `source_uuid:gno`.
    Mysql(SourceUuid, u64),
    /// MariaDB `domain-server-seq`.
    Mariadb(MariadbGtid),
}

/// One row image: a value per table column, `None` where the image leaves the column out
/// (`binlog_row_image=MINIMAL` or `NOBLOB`). SQL NULL is `Some(BinlogValue::Value(NULL))`.
pub type RowImage = Vec<Option<BinlogValue<'static>>>;

/// What a row event does.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOp {
    /// New rows.
    Insert(Vec<RowImage>),
    /// (before, after) images.
    Update(Vec<(RowImage, RowImage)>),
    /// Removed rows (before images).
    Delete(Vec<RowImage>),
}

/// A decoded binlog event, as the replicator needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A transaction starts (MariaDB GTID event; MySQL GTID event followed by `BEGIN`).
    Begin {
        /// Its id.
        gtid: Gtid,
        /// The server's timestamp of the event, seconds since the Unix epoch.
        timestamp: u32,
    },
    /// The layout of a table the next row events refer to.
    TableMap(Arc<BinlogTable>),
    /// Row changes of one table.
    Rows {
        /// Which table map they belong to.
        table_id: u64,
        /// The change and its images.
        op: RowOp,
    },
    /// The transaction commits (XID event, or a `COMMIT` query).
    Commit {
        /// The server's timestamp of the event, seconds since the Unix epoch.
        timestamp: u32,
    },
    /// A statement logged as text outside row events: DDL, TRUNCATE, or a standalone statement
    /// (MariaDB GTID event flagged standalone, MySQL DDL with its own GTID). It ends its
    /// transaction: no `Commit` follows.
    Statement {
        /// The default database the statement ran in.
        schema: String,
        /// The statement text.
        sql: String,
        /// The server's timestamp of the event, seconds since the Unix epoch.
        timestamp: u32,
    },
    /// An XA transaction was prepared (`XA PREPARE`): its rows are held back until its
    /// `XA COMMIT`. A consumer that restarts must start before this point while the
    /// transaction is still open, or the rows are not in its stream.
    XaPrepared {
        /// The XA transaction id, as the server logs it (`X'31',X'',1`).
        xid: String,
        /// The GTID of the prepare.
        gtid: Option<Gtid>,
    },
    /// `XA COMMIT` or `XA ROLLBACK` of a transaction prepared earlier. It comes right after
    /// the `Begin` of the commit's (or rollback's) GTID; a commit's held-back rows follow, then
    /// `Commit`.
    XaEnded {
        /// The XA transaction id, as the server logs it.
        xid: String,
        /// The GTID of its prepare; `None` when the prepare came before the start position,
        /// so a commit's rows are missing from this stream (see
        /// [`BinlogError::XaPrepareNotSeen`]).
        prepared: Option<Gtid>,
        /// `XA COMMIT` (true) or `XA ROLLBACK`.
        committed: bool,
    },
    /// The server is alive and has nothing new (heartbeat), or switched files (rotate).
    Idle,
}
