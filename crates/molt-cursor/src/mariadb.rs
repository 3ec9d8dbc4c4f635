//! MariaDB GTID positions (`0-1-100,1-2-7`).
//!
//! A MariaDB GTID is `domain-server_id-sequence`. A replication position holds the last GTID
//! applied in each replication domain, one per domain, comma separated; within a domain
//! sequence numbers only grow (with `gtid_strict_mode`), so positions compare per domain.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::{CursorError, excerpt};

/// One MariaDB GTID: `domain-server_id-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MariadbGtid {
    /// Replication domain (`gtid_domain_id`).
    pub domain: u32,
    /// Server that wrote the event (`server_id`).
    pub server_id: u32,
    /// Sequence number within the domain.
    pub seq: u64,
}

impl FromStr for MariadbGtid {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| CursorError::MariadbGtid { input: excerpt(s), reason };
        let mut parts = s.trim().split('-');
        let mut field = || {
            let t = parts.next().ok_or(err("three numbers separated by '-'"))?;
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("each part is a decimal integer"));
            }
            t.parse::<u64>().map_err(|_| err("number too large"))
        };
        let domain = u32::try_from(field()?).map_err(|_| err("domain id is 32-bit"))?;
        let server_id = u32::try_from(field()?).map_err(|_| err("server id is 32-bit"))?;
        let seq = field()?;
        if parts.next().is_some() {
            return Err(err("three numbers separated by '-'"));
        }
        Ok(MariadbGtid { domain, server_id, seq })
    }
}

impl fmt::Display for MariadbGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

/// A MariaDB replication position: the last GTID of each domain (`@@gtid_binlog_pos`).
///
/// ```
/// use molt_cursor::{MariadbGtid, MariadbGtidList};
/// let mut pos: MariadbGtidList = "1-2-7,0-1-100".parse()?;
/// assert_eq!(pos.to_string(), "0-1-100,1-2-7");
/// pos.advance("0-1-101".parse()?);
/// assert!(pos.contains(&"0-1-100,1-2-7".parse()?));
/// # Ok::<(), molt_cursor::CursorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MariadbGtidList {
    domains: BTreeMap<u32, MariadbGtid>,
}

impl MariadbGtidList {
    /// The empty position (replicate from the start of the binlog).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no domain has a position.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The position of one domain.
    pub fn get(&self, domain: u32) -> Option<MariadbGtid> {
        self.domains.get(&domain).copied()
    }

    /// The GTIDs, one per domain, in domain order.
    pub fn gtids(&self) -> impl Iterator<Item = &MariadbGtid> {
        self.domains.values()
    }

    /// Records `gtid` as its domain's position; returns whether that moved the domain forward.
    /// A GTID at or before the domain's position leaves the list as it was.
    pub fn advance(&mut self, gtid: MariadbGtid) -> bool {
        match self.domains.get(&gtid.domain) {
            Some(cur) if cur.seq >= gtid.seq => false,
            _ => {
                self.domains.insert(gtid.domain, gtid);
                true
            }
        }
    }

    /// Whether this position is at or past `other` in every domain `other` names.
    pub fn contains(&self, other: &MariadbGtidList) -> bool {
        other.domains.values().all(|o| self.domains.get(&o.domain).is_some_and(|s| s.seq >= o.seq))
    }
}

impl FromStr for MariadbGtidList {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut list = MariadbGtidList::new();
        let text = s.trim();
        if text.is_empty() {
            return Ok(list);
        }
        for part in text.split(',') {
            let gtid: MariadbGtid = part.parse().map_err(|_| CursorError::MariadbGtid {
                input: excerpt(s),
                reason: "each element is domain-server-seq",
            })?;
            if list.domains.insert(gtid.domain, gtid).is_some() {
                return Err(CursorError::MariadbGtid {
                    input: excerpt(s),
                    reason: "a position names each domain once",
                });
            }
        }
        Ok(list)
    }
}

impl fmt::Display for MariadbGtidList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn multi_domain_round_trip() {
        let l: MariadbGtidList = "0-1-100,1-2-7".parse().unwrap();
        assert_eq!(l.to_string(), "0-1-100,1-2-7");
        assert_eq!(l.get(1), Some(MariadbGtid { domain: 1, server_id: 2, seq: 7 }));
        assert_eq!(" 1-2-7 , 0-1-100 ".parse::<MariadbGtidList>().unwrap(), l);
        assert!("".parse::<MariadbGtidList>().unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "0-1",
            "0-1-2-3",
            "a-1-2",
            "0-1-2,0-3-4",
            "0-1-2,",
            "-1-2",
            "4294967296-1-1",
            "0-1-18446744073709551616",
        ] {
            assert!(bad.parse::<MariadbGtidList>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn advance_and_contains() {
        let mut l: MariadbGtidList = "0-1-100".parse().unwrap();
        assert!(!l.advance("0-1-99".parse().unwrap()));
        assert!(l.advance("0-2-101".parse().unwrap()));
        assert!(l.advance("3-1-1".parse().unwrap()));
        assert_eq!(l.to_string(), "0-2-101,3-1-1");
        assert!(l.contains(&"0-1-100".parse().unwrap()));
        assert!(!l.contains(&"0-1-102".parse().unwrap()));
        assert!(!l.contains(&"5-1-1".parse().unwrap()));
        assert!(l.contains(&MariadbGtidList::new()));
    }

    proptest! {
        #[test]
        fn round_trips(gtids in prop::collection::btree_map(any::<u32>(), (any::<u32>(), any::<u64>()), 0..5)) {
            let mut l = MariadbGtidList::new();
            for (domain, (server_id, seq)) in gtids {
                l.advance(MariadbGtid { domain, server_id, seq });
            }
            prop_assert_eq!(l.to_string().parse::<MariadbGtidList>().unwrap(), l);
        }
    }
}
