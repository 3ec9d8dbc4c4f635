//! The export side of `fetch`, independent of dialect: a pinned [`Snapshot`] hands out
//! [`ExportSession`]s that all read the same consistent view, plan a table's key-range
//! [`Shard`]s and stream each shard's rows already encoded in a [`CopyFormat`] the target's
//! `COPY FROM` (or a file) takes.
//!
//! Each dialect crate implements both traits in its `snapshot.rs`/`export.rs`; `fetch` runs
//! its phases on `dyn Snapshot` and never branches on the dialect after pinning.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use molt_schema::{CopyFormat, Table, TableName};

use crate::SourceError;

/// One key range of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// 1-based position.
    pub index: u32,
    /// How many shards the table has.
    pub count: u32,
    /// `WHERE` condition selecting the range, in the source's SQL; `None` for the whole table.
    pub predicate: Option<String>,
}

impl Shard {
    /// The one shard of an unsharded table.
    pub fn whole() -> Self {
        Shard { index: 1, count: 1, predicate: None }
    }
}

/// The rows of one shard, one encoded row (or, in binary format, a framing message) per item.
pub type RowStream<'a> = BoxStream<'a, Result<Bytes, SourceError>>;

/// A consistent view of the source every export session reads, and the replication cursor
/// taken at exactly that view.
pub trait Snapshot: Send + Sync {
    /// Where replication starts (`None` with `--ignore-replication-check`), in the text the
    /// dialect's replicator takes.
    fn cursor(&self) -> Option<String>;

    /// A session reading the snapshot. When a session fails, a retry asks for another one;
    /// it reads the same view.
    fn session(&self) -> BoxFuture<'_, Result<Box<dyn ExportSession>, SourceError>>;

    /// The source's estimate of a table's rows, for progress only (0 when unknown).
    fn estimated_rows<'a>(&'a self, table: &'a TableName) -> BoxFuture<'a, u64>;

    /// The source's type names of `columns` when it can stream them in PostgreSQL's binary
    /// COPY format (only worth it, and only correct, when the target has the same types);
    /// `None` otherwise.
    fn binary_types<'a>(
        &'a self,
        table: &'a TableName,
        columns: &'a [String],
    ) -> BoxFuture<'a, Option<Vec<String>>>;

    /// Whether this source's rows arrive in the target's text (each value as the target
    /// would parse it, typed by the mapped target types), so that sessions write binary COPY
    /// from the target's column types themselves ([`ExportSession::binary_rows`]); `false` by
    /// default (a PostgreSQL source's rows are its own types).
    fn encodes_binary(&self) -> bool {
        false
    }

    /// Columns some index of `table` starts with (to warn about row filters that scan).
    fn indexed_columns<'a>(&'a self, table: &'a TableName) -> BoxFuture<'a, Vec<String>>;

    /// Ends the snapshot once every session is done (a replication slot stays); later
    /// calls do nothing.
    fn release(&self) -> BoxFuture<'_, ()>;
}

/// One reader of the snapshot.
pub trait ExportSession: Send {
    /// Splits `table` into up to `requested` key ranges read from this session's view
    /// (`stats_based`: at the bounds of the source's statistics).
    fn plan_shards<'a>(
        &'a mut self,
        table: &'a Table,
        requested: u32,
        stats_based: bool,
    ) -> BoxFuture<'a, Result<Vec<Shard>, SourceError>>;

    /// Streams the rows of `shard` with `columns` (in that order), encoded in `format`.
    fn rows<'a>(
        &'a mut self,
        table: &'a Table,
        columns: &'a [String],
        shard: &'a Shard,
        format: CopyFormat,
    ) -> BoxFuture<'a, Result<RowStream<'a>, SourceError>>;

    /// Streams the rows of `shard` in PostgreSQL's binary COPY format (header and trailer
    /// included), each column written as `kinds` say: for a source whose values are not
    /// PostgreSQL's, encoding them itself ([`Snapshot::encodes_binary`]). `None` when it does
    /// not (a PostgreSQL source streams binary through [`ExportSession::rows`]).
    fn binary_rows<'a>(
        &'a mut self,
        _table: &'a Table,
        _columns: &'a [String],
        _shard: &'a Shard,
        _kinds: &'a [crate::binary::BinaryKind],
    ) -> BoxFuture<'a, Result<Option<RowStream<'a>>, SourceError>> {
        Box::pin(async { Ok(None) })
    }

    /// Tells the session the target's type of each of the `columns` it will be asked for
    /// next (PostgreSQL spellings, lowercase, such as `interval`), for a source whose value text
    /// depends on it (a MySQL `TIME` beyond a day is a duration only for an `interval` column).
    /// Ignored by default.
    fn set_target_types(&mut self, _types: &[String]) {}

    /// Hands the session back when its shard is done.
    fn finish(self: Box<Self>) -> BoxFuture<'static, ()>;

    /// After a shard failed on the target's side while its rows were being read: the same
    /// session, ready to read again (the rest of the aborted read discarded), or `None` when
    /// it cannot be reused (then it is dropped and a retry asks the snapshot for another).
    /// Worth it where a snapshot cannot be reopened (MySQL); `None` by default.
    fn recover(self: Box<Self>) -> BoxFuture<'static, Option<Box<dyn ExportSession>>> {
        Box::pin(async { None })
    }
}

/// `n - 1` ascending boundaries splitting `lo..=hi` into `n` near-equal integer ranges (fewer
/// when the range is narrower than `n`).
pub fn int_bounds(lo: i128, hi: i128, n: u32) -> Vec<i128> {
    let span = hi - lo + 1;
    let n = i128::from(n.max(1)).min(span.max(1));
    let mut out: Vec<i128> = Vec::new();
    for i in 1..n {
        let b = lo + span * i / n;
        if out.last().is_none_or(|last| *last < b) && b > lo {
            out.push(b);
        }
    }
    out
}

/// Turns ordered boundary literals into open-ended ranges of the quoted column `col`:
/// `< b1`, `>= b1 AND < b2`, …, `>= bn`, so every row lands in exactly one shard whatever
/// was inserted meanwhile.
pub fn shards_from_bounds(col: &str, bounds: &[String]) -> Vec<Shard> {
    let count = u32::try_from(bounds.len() + 1).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(bounds.len() + 1);
    for i in 0..=bounds.len() {
        let pred = match (i.checked_sub(1).and_then(|j| bounds.get(j)), bounds.get(i)) {
            (None, Some(hi)) => format!("{col} < {hi}"),
            (Some(lo), Some(hi)) => format!("{col} >= {lo} AND {col} < {hi}"),
            (Some(lo), None) => format!("{col} >= {lo}"),
            (None, None) => continue,
        };
        out.push(Shard {
            index: u32::try_from(i + 1).unwrap_or(u32::MAX),
            count,
            predicate: Some(pred),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_ranges_cover_without_overlap() {
        assert_eq!(int_bounds(1, 100, 4), vec![26, 51, 76]);
        assert_eq!(int_bounds(1, 2, 4), vec![2]);
        assert_eq!(int_bounds(5, 5, 4), Vec::<i128>::new());
        assert_eq!(int_bounds(i128::from(i64::MIN), i128::from(i64::MAX), 2), vec![0]);
        assert_eq!(int_bounds(0, i128::from(u64::MAX), 2), vec![1 << 63]);
        let s = shards_from_bounds("\"id\"", &["26".into(), "51".into()]);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].predicate.as_deref(), Some("\"id\" < 26"));
        assert_eq!(s[1].predicate.as_deref(), Some("\"id\" >= 26 AND \"id\" < 51"));
        assert_eq!(s[2].predicate.as_deref(), Some("\"id\" >= 51"));
        assert!(s.iter().all(|x| x.count == 3));
    }
}
