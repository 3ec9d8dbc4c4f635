//! Replication cursors: the point in a source's history where a load ended and replication
//! starts.
//!
//! `fetch` prints one as `cdc_cursor`; the replicator resumes from one. Each type's text form
//! is exactly what MOLT prints and what users paste back into flags, and each serializes with
//! serde as that string.
//!
//! | type | source | text |
//! |---|---|---|
//! | [`PgLsn`] | PostgreSQL WAL position | `0/43A1960` |
//! | [`MysqlGtidSet`] | MySQL executed GTIDs | `4c658ae6-e8ad-11ef-8449-0242ac140006:1-29` |
//! | [`MariadbGtidList`] | MariaDB GTID position | `0-1-100,1-2-7` |
//! | [`OracleScnRange`] | Oracle SCNs | `backfillFromSCN=26685444,scn=26685786` |
//! | [`CrdbHlc`] | CockroachDB HLC timestamp | `1700000000000000000.0000000001` |
//!
//! [`Cursor`] holds any of them. Parsers never panic, whatever the input.
//!
//! ```
//! use molt_cursor::{MysqlGtidSet, PgLsn};
//!
//! let lsn: PgLsn = "0/43A1960".parse()?;
//! assert_eq!(lsn.to_string(), "0/43A1960");
//!
//! let a: MysqlGtidSet = "4c658ae6-e8ad-11ef-8449-0242ac140006:1-5:7".parse()?;
//! let b: MysqlGtidSet = "4c658ae6-e8ad-11ef-8449-0242ac140006:6".parse()?;
//! assert_eq!(a.union(&b).to_string(), "4c658ae6-e8ad-11ef-8449-0242ac140006:1-7");
//! # Ok::<(), molt_cursor::CursorError>(())
//! ```

mod gtid;
mod hlc;
mod lsn;
mod mariadb;
mod scn;

use std::fmt;
use std::str::FromStr;

pub use gtid::{MysqlGtidSet, SourceUuid};
pub use hlc::CrdbHlc;
pub use lsn::PgLsn;
pub use mariadb::{MariadbGtid, MariadbGtidList};
pub use scn::{OracleScn, OracleScnRange};

/// Why a cursor string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// Not a PostgreSQL LSN.
    #[error("{input:?} is not a PostgreSQL LSN; expected two hex numbers like 0/43A1960")]
    Lsn {
        /// The rejected text (truncated to 80 characters).
        input: String,
    },
    /// Not a MySQL GTID set.
    #[error("{input:?} is not a MySQL GTID set ({reason}); expected uuid:1-29[:31-40][,uuid:…]")]
    MysqlGtid {
        /// The rejected text (truncated to 80 characters).
        input: String,
        /// What exactly is wrong.
        reason: &'static str,
    },
    /// Not a MariaDB GTID list.
    #[error(
        "{input:?} is not a MariaDB GTID position ({reason}); expected domain-server-seq[,…] like 0-1-100"
    )]
    MariadbGtid {
        /// The rejected text (truncated to 80 characters).
        input: String,
        /// What exactly is wrong.
        reason: &'static str,
    },
    /// Not an Oracle SCN or SCN pair.
    #[error("{input:?} is not an Oracle SCN cursor; expected backfillFromSCN=N,scn=M")]
    OracleScn {
        /// The rejected text (truncated to 80 characters).
        input: String,
    },
    /// Not a CockroachDB HLC timestamp.
    #[error(
        "{input:?} is not a CockroachDB timestamp; expected nanos.logical like 1700000000000000000.0000000001"
    )]
    CrdbHlc {
        /// The rejected text (truncated to 80 characters).
        input: String,
    },
    /// Matches no cursor form at all.
    #[error(
        "{input:?} is not a replication cursor (PostgreSQL LSN, MySQL GTID set, MariaDB GTID position, Oracle SCN pair or CockroachDB timestamp)"
    )]
    Unrecognised {
        /// The rejected text (truncated to 80 characters).
        input: String,
    },
}

/// Shortens user input kept in an error so that a pasted megabyte does not become the message.
pub(crate) fn excerpt(input: &str) -> String {
    input.chars().take(80).collect()
}

/// Which kind of cursor a source produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CursorKind {
    /// [`PgLsn`].
    PgLsn,
    /// [`MysqlGtidSet`].
    MysqlGtid,
    /// [`MariadbGtidList`].
    MariadbGtid,
    /// [`OracleScnRange`].
    OracleScn,
    /// [`CrdbHlc`].
    CrdbHlc,
}

/// Any source's replication cursor.
///
/// `Display` prints the source's own form; `FromStr` recognises the form from the text, and
/// [`Cursor::parse_as`] parses a known kind (use it where the source is known: `0-1-2` is a
/// valid MariaDB position and nothing else, but a bare decimal could be an SCN or a timestamp).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cursor {
    /// PostgreSQL.
    PgLsn(PgLsn),
    /// MySQL.
    MysqlGtid(MysqlGtidSet),
    /// MariaDB.
    MariadbGtid(MariadbGtidList),
    /// Oracle.
    OracleScn(OracleScnRange),
    /// CockroachDB (failback).
    CrdbHlc(CrdbHlc),
}

impl Cursor {
    /// The kind of this cursor.
    pub fn kind(&self) -> CursorKind {
        match self {
            Cursor::PgLsn(_) => CursorKind::PgLsn,
            Cursor::MysqlGtid(_) => CursorKind::MysqlGtid,
            Cursor::MariadbGtid(_) => CursorKind::MariadbGtid,
            Cursor::OracleScn(_) => CursorKind::OracleScn,
            Cursor::CrdbHlc(_) => CursorKind::CrdbHlc,
        }
    }

    /// Parses `text` as a cursor of the given kind.
    ///
    /// # Errors
    /// The kind's own [`CursorError`] variant.
    pub fn parse_as(kind: CursorKind, text: &str) -> Result<Cursor, CursorError> {
        Ok(match kind {
            CursorKind::PgLsn => Cursor::PgLsn(text.parse()?),
            CursorKind::MysqlGtid => Cursor::MysqlGtid(text.parse()?),
            CursorKind::MariadbGtid => Cursor::MariadbGtid(text.parse()?),
            CursorKind::OracleScn => Cursor::OracleScn(text.parse()?),
            CursorKind::CrdbHlc => Cursor::CrdbHlc(text.parse()?),
        })
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let kind = if t.contains('/') {
            CursorKind::PgLsn
        } else if t.contains("scn=") || t.contains("SCN=") {
            CursorKind::OracleScn
        } else if t.contains(':') {
            CursorKind::MysqlGtid
        } else if !t.is_empty() && t.split(',').all(|g| g.trim().split('-').count() == 3) {
            CursorKind::MariadbGtid
        } else if t.contains('.') {
            CursorKind::CrdbHlc
        } else {
            return Err(CursorError::Unrecognised { input: excerpt(s) });
        };
        Cursor::parse_as(kind, t)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cursor::PgLsn(c) => c.fmt(f),
            Cursor::MysqlGtid(c) => c.fmt(f),
            Cursor::MariadbGtid(c) => c.fmt(f),
            Cursor::OracleScn(c) => c.fmt(f),
            Cursor::CrdbHlc(c) => c.fmt(f),
        }
    }
}

impl From<PgLsn> for Cursor {
    fn from(c: PgLsn) -> Self {
        Cursor::PgLsn(c)
    }
}

impl From<MysqlGtidSet> for Cursor {
    fn from(c: MysqlGtidSet) -> Self {
        Cursor::MysqlGtid(c)
    }
}

impl From<MariadbGtidList> for Cursor {
    fn from(c: MariadbGtidList) -> Self {
        Cursor::MariadbGtid(c)
    }
}

impl From<OracleScnRange> for Cursor {
    fn from(c: OracleScnRange) -> Self {
        Cursor::OracleScn(c)
    }
}

impl From<CrdbHlc> for Cursor {
    fn from(c: CrdbHlc) -> Self {
        Cursor::CrdbHlc(c)
    }
}

/// Implements serde for a type as its `Display`/`FromStr` text.
macro_rules! serde_as_text {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_as_text!(Cursor, PgLsn, MysqlGtidSet, MariadbGtidList, OracleScnRange, OracleScn, CrdbHlc);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_recognises_each_form() {
        let cases = [
            ("0/43A1960", CursorKind::PgLsn),
            ("4c658ae6-e8ad-11ef-8449-0242ac140006:1-29", CursorKind::MysqlGtid),
            ("0-1-100,1-2-7", CursorKind::MariadbGtid),
            ("backfillFromSCN=26685444,scn=26685786", CursorKind::OracleScn),
            ("1700000000000000000.0000000001", CursorKind::CrdbHlc),
        ];
        for (text, kind) in cases {
            let c: Cursor = text.parse().unwrap();
            assert_eq!(c.kind(), kind, "{text}");
            assert_eq!(c.to_string(), text);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            let back: Cursor = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c);
        }
        assert!(matches!("hello".parse::<Cursor>(), Err(CursorError::Unrecognised { .. })));
        assert!(matches!("".parse::<Cursor>(), Err(CursorError::Unrecognised { .. })));
    }

    #[test]
    fn serde_rejects_bad_text() {
        let err = serde_json::from_str::<PgLsn>("\"nope\"").unwrap_err();
        assert!(err.to_string().contains("not a PostgreSQL LSN"), "{err}");
    }

    #[test]
    fn error_excerpt_is_bounded() {
        let long = "x".repeat(10_000);
        let err = long.parse::<Cursor>().unwrap_err();
        assert!(err.to_string().len() < 400);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        #[test]
        fn parsers_never_panic(s in "[0-9a-fA-F:/,.\\-= scnSCNbackfilFrom]{0,60}|\\PC{0,60}") {
            let _ = s.parse::<Cursor>();
            for kind in [CursorKind::PgLsn, CursorKind::MysqlGtid, CursorKind::MariadbGtid,
                         CursorKind::OracleScn, CursorKind::CrdbHlc] {
                if let Ok(c) = Cursor::parse_as(kind, &s) {
                    // Whatever parses prints in a form that parses back to the same value.
                    proptest::prop_assert_eq!(Cursor::parse_as(kind, &c.to_string()).unwrap(), c);
                }
            }
        }
    }
}
