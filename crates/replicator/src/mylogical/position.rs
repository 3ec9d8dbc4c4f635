//! Where `mylogical` has got to: the GTIDs applied, and where a restart must read from.
//!
//! The two differ only while an XA transaction is prepared and not yet committed: its rows
//! are in the binlog at its `XA PREPARE`, before transactions that were applied since. A
//! restart reads from just before the earliest such prepare and skips what is applied.

use std::fmt;
use std::str::FromStr;

use molt_cursor::{MariadbGtidList, MysqlGtidSet};
use molt_source_mysql::binlog::{Gtid, StartFrom};

use crate::engine::Position;

/// A MySQL GTID set or a MariaDB GTID list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gtids {
    /// MySQL: every executed GTID.
    Mysql(MysqlGtidSet),
    /// MariaDB: the last GTID of each replication domain.
    Mariadb(MariadbGtidList),
}

impl Gtids {
    /// Whether the transaction `gtid` is included.
    pub(crate) fn includes(&self, gtid: &Gtid) -> bool {
        match (self, gtid) {
            (Gtids::Mysql(set), Gtid::Mysql(uuid, gno)) => set.contains_gtid(uuid, *gno),
            (Gtids::Mariadb(list), Gtid::Mariadb(g)) => {
                list.get(g.domain).is_some_and(|at| at.seq >= g.seq)
            }
            _ => false,
        }
    }

    /// Adds the transaction `gtid` (a MariaDB list only moves forward).
    pub(crate) fn add(&mut self, gtid: &Gtid) {
        match (self, gtid) {
            (Gtids::Mysql(set), Gtid::Mysql(uuid, gno)) => set.insert(*uuid, *gno),
            (Gtids::Mariadb(list), Gtid::Mariadb(g)) => {
                list.advance(*g);
            }
            _ => {}
        }
    }

    /// Whether every transaction of `other` is included.
    fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Gtids::Mysql(a), Gtids::Mysql(b)) => a.contains(b),
            (Gtids::Mariadb(a), Gtids::Mariadb(b)) => a.contains(b),
            _ => false,
        }
    }
}

impl fmt::Display for Gtids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtids::Mysql(set) => set.fmt(f),
            Gtids::Mariadb(list) => list.fmt(f),
        }
    }
}

impl FromStr for Gtids {
    type Err = molt_cursor::CursorError;

    /// A MySQL set has `uuid:interval`s; a MariaDB list `domain-server-seq`s.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') { s.parse().map(Gtids::Mysql) } else { s.parse().map(Gtids::Mariadb) }
    }
}

/// The transactions applied, and where the binlog must be read from to get everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtidPosition {
    /// Every transaction applied (or read and not for this database).
    pub applied: Gtids,
    /// Just before the earliest `XA PREPARE` whose transaction was open at this point; `None`
    /// when none was, and reading starts after `applied`.
    pub resume: Option<Gtids>,
}

/// Separates the applied GTIDs from the resume point in the saved text.
const RESUME: &str = "; resume from ";

impl GtidPosition {
    /// A position with nothing open.
    pub fn new(applied: Gtids) -> Self {
        GtidPosition { applied, resume: None }
    }

    /// Where the binlog stream starts.
    pub(crate) fn start(&self) -> StartFrom {
        match self.resume.as_ref().unwrap_or(&self.applied) {
            Gtids::Mysql(set) => StartFrom::Mysql(set.clone()),
            Gtids::Mariadb(list) => StartFrom::Mariadb(list.clone()),
        }
    }

    /// The GTIDs reading starts after.
    pub(crate) fn start_gtids(&self) -> &Gtids {
        self.resume.as_ref().unwrap_or(&self.applied)
    }
}

impl fmt::Display for GtidPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.applied.fmt(f)?;
        if let Some(resume) = &self.resume {
            write!(f, "{RESUME}{resume}")?;
        }
        Ok(())
    }
}

impl FromStr for GtidPosition {
    type Err = molt_cursor::CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(RESUME) {
            Some((applied, resume)) => {
                Ok(GtidPosition { applied: applied.parse()?, resume: Some(resume.parse()?) })
            }
            None => s.parse().map(GtidPosition::new),
        }
    }
}

impl Position for GtidPosition {
    const PROGRESS: &'static str = "progressed to consistent point";

    fn covers(&self, other: &Self) -> bool {
        self.applied.covers(&other.applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtids_parse_by_their_form_and_grow_by_commits() {
        let mut maria: Gtids = "0-1-7,1-2-3".parse().unwrap();
        let g = Gtid::Mariadb("0-1-8".parse().unwrap());
        assert!(!maria.includes(&g));
        maria.add(&g);
        assert!(maria.includes(&g));
        assert_eq!(maria.to_string(), "0-1-8,1-2-3");
        // A MariaDB list never moves back.
        maria.add(&Gtid::Mariadb("0-1-2".parse().unwrap()));
        assert_eq!(maria.to_string(), "0-1-8,1-2-3");
        let before: Gtids = "0-1-7,1-2-3".parse().unwrap();
        assert!(maria.covers(&before) && !before.covers(&maria));

        let mut my: Gtids = "4c658ae6-e8ad-11ef-8449-0242ac140006:1-5".parse().unwrap();
        let uuid = "4c658ae6-e8ad-11ef-8449-0242ac140006".parse().unwrap();
        assert!(my.includes(&Gtid::Mysql(uuid, 5)));
        my.add(&Gtid::Mysql(uuid, 7));
        assert_eq!(my.to_string(), "4c658ae6-e8ad-11ef-8449-0242ac140006:1-5:7");
        // Another family's GTID is never taken as included.
        assert!(!my.includes(&g));
        assert!(!my.covers(&before));
    }

    #[test]
    fn a_resume_point_round_trips_and_only_the_applied_gtids_are_compared() {
        let open: GtidPosition = "0-1-20; resume from 0-1-9".parse().unwrap();
        assert_eq!(open.to_string(), "0-1-20; resume from 0-1-9");
        assert_eq!(open.start(), StartFrom::Mariadb("0-1-9".parse().unwrap()));
        let closed: GtidPosition = "0-1-20".parse().unwrap();
        assert_eq!(closed.start(), StartFrom::Mariadb("0-1-20".parse().unwrap()));
        assert!(open.covers(&closed) && closed.covers(&open));
        assert!("0-1-20; resume from".parse::<GtidPosition>().is_err());
    }
}
