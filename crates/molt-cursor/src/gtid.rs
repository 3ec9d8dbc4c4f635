//! MySQL GTID sets (`source_uuid:1-5:7-9,other_uuid:1-3`).
//!
//! A set maps each source server UUID to the transaction numbers executed from it, kept as
//! sorted, disjoint, non-adjacent inclusive intervals, so that equal sets have equal text.
//! GTID sets are only partially ordered: use [`MysqlGtidSet::contains`], not `<`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::{CursorError, excerpt};

/// Largest transaction number MySQL accepts (2^63 - 1).
const GNO_MAX: u64 = i64::MAX as u64;

/// A MySQL server UUID (`server_uuid`), the source part of a GTID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceUuid([u8; 16]);

impl SourceUuid {
    /// Wraps 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        SourceUuid(bytes)
    }

    /// The 16 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl FromStr for SourceUuid {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return Err("a server UUID has 36 characters");
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err("a server UUID is grouped 8-4-4-4-12");
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err("a server UUID is hexadecimal"),
            };
            out[nibbles / 2] |= if nibbles.is_multiple_of(2) { v << 4 } else { v };
            nibbles += 1;
        }
        Ok(SourceUuid(out))
    }
}

impl fmt::Display for SourceUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SourceUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An inclusive interval of transaction numbers.
type Interval = (u64, u64);

/// A MySQL GTID set, as in `@@gtid_executed`.
///
/// ```
/// use molt_cursor::MysqlGtidSet;
/// let executed: MysqlGtidSet =
///     "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4c658ae6-e8ad-11ef-8449-0242ac140006:1-29".parse()?;
/// let cursor: MysqlGtidSet = "4c658ae6-e8ad-11ef-8449-0242ac140006:1-20".parse()?;
/// assert!(executed.contains(&cursor));
/// assert_eq!(executed.subtract(&cursor).to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4c658ae6-e8ad-11ef-8449-0242ac140006:21-29");
/// # Ok::<(), molt_cursor::CursorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MysqlGtidSet {
    sets: BTreeMap<SourceUuid, Vec<Interval>>,
}

fn normalise(mut ivs: Vec<Interval>) -> Vec<Interval> {
    ivs.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(ivs.len());
    for (s, e) in ivs {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `a - b` for normalised interval lists.
fn subtract_intervals(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(mut s, e) in a {
        while j < b.len() && b[j].1 < s {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].0 <= e {
            let (bs, be) = b[k];
            if bs > s {
                out.push((s, bs - 1));
            }
            if be >= e {
                s = e.saturating_add(1);
                break;
            }
            s = be + 1;
            k += 1;
        }
        if s <= e {
            out.push((s, e));
        }
    }
    out
}

impl MysqlGtidSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no GTID is in the set.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Adds one GTID (`uuid:gno`). Transaction number 0 is not a GTID and is ignored.
    pub fn insert(&mut self, uuid: SourceUuid, gno: u64) {
        self.insert_interval(uuid, gno, gno);
    }

    /// Adds the GTIDs `uuid:start-end` (inclusive); an empty or zero-based range adds what is
    /// valid of it.
    pub fn insert_interval(&mut self, uuid: SourceUuid, start: u64, end: u64) {
        let start = start.max(1);
        let end = end.min(GNO_MAX);
        if start > end {
            return;
        }
        let ivs = self.sets.entry(uuid).or_default();
        ivs.push((start, end));
        *ivs = normalise(std::mem::take(ivs));
    }

    /// Whether `uuid:gno` is in the set.
    pub fn contains_gtid(&self, uuid: &SourceUuid, gno: u64) -> bool {
        self.sets.get(uuid).is_some_and(|ivs| ivs.iter().any(|&(s, e)| s <= gno && gno <= e))
    }

    /// The source UUIDs present, in MySQL's print order.
    pub fn uuids(&self) -> impl Iterator<Item = &SourceUuid> {
        self.sets.keys()
    }

    /// The inclusive intervals executed from one source.
    pub fn intervals(&self, uuid: &SourceUuid) -> &[(u64, u64)] {
        self.sets.get(uuid).map_or(&[], Vec::as_slice)
    }

    /// Every GTID in either set.
    pub fn union(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut sets = self.sets.clone();
        for (uuid, ivs) in &other.sets {
            let merged = sets.entry(*uuid).or_default();
            merged.extend_from_slice(ivs);
            *merged = normalise(std::mem::take(merged));
        }
        MysqlGtidSet { sets }
    }

    /// The GTIDs of `self` that are not in `other`.
    pub fn subtract(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut sets = BTreeMap::new();
        for (uuid, ivs) in &self.sets {
            let rest = match other.sets.get(uuid) {
                Some(theirs) => subtract_intervals(ivs, theirs),
                None => ivs.clone(),
            };
            if !rest.is_empty() {
                sets.insert(*uuid, rest);
            }
        }
        MysqlGtidSet { sets }
    }

    /// Whether every GTID of `other` is in `self` (MySQL's `GTID_SUBSET(other, self)`).
    pub fn contains(&self, other: &MysqlGtidSet) -> bool {
        other.subtract(self).is_empty()
    }

    /// Whether the two sets share at least one GTID.
    pub fn intersects(&self, other: &MysqlGtidSet) -> bool {
        self.subtract(other) != *self
    }

    /// Number of GTIDs in the set (saturating).
    pub fn len(&self) -> u64 {
        self.sets.values().flatten().fold(0u64, |n, &(s, e)| n.saturating_add(e - s + 1))
    }
}

impl FromStr for MysqlGtidSet {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| CursorError::MysqlGtid { input: excerpt(s), reason };
        let mut set = MysqlGtidSet::new();
        let text = s.trim();
        if text.is_empty() {
            return Ok(set);
        }
        for part in text.split(',') {
            let mut fields = part.trim().split(':');
            let uuid_text = fields.next().unwrap_or_default().trim();
            let uuid: SourceUuid = uuid_text.parse().map_err(err)?;
            let mut any = false;
            for iv in fields {
                let iv = iv.trim();
                let number = |t: &str| -> Result<u64, CursorError> {
                    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(if t.bytes().any(|b| b.is_ascii_alphabetic() || b == b'_') {
                            err("tagged GTIDs (MySQL 8.3+) are not supported")
                        } else {
                            err("a transaction number is a decimal integer")
                        });
                    }
                    match t.parse::<u64>() {
                        Ok(n) if (1..=GNO_MAX).contains(&n) => Ok(n),
                        _ => Err(err("a transaction number is from 1 to 2^63-1")),
                    }
                };
                let (start, end) = match iv.split_once('-') {
                    Some((a, b)) => (number(a)?, number(b)?),
                    None => {
                        let n = number(iv)?;
                        (n, n)
                    }
                };
                if start > end {
                    return Err(err("an interval must not end before it starts"));
                }
                set.insert_interval(uuid, start, end);
                any = true;
            }
            if !any {
                return Err(err("each server UUID needs at least one interval"));
            }
        }
        Ok(set)
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (uuid, ivs)) in self.sets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{uuid}")?;
            for &(s, e) in ivs {
                if s == e {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{e}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4c658ae6-e8ad-11ef-8449-0242ac140006";
    const U3: &str = "ffffffff-0000-1111-2222-333333333333";

    fn gs(s: &str) -> MysqlGtidSet {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn prints_like_mysql() {
        // Sorted by UUID, intervals merged, single numbers without a range, lowercase.
        let s = gs(&format!("{}:7:1-3:4-5, {U1}:10-12:11", U2.to_uppercase()));
        assert_eq!(s.to_string(), format!("{U1}:10-12,{U2}:1-5:7"));
        // MySQL's own multi-line output parses.
        let executed = gs(&format!("{U1}:1-5,\n{U2}:1-29"));
        assert_eq!(executed.to_string(), format!("{U1}:1-5,{U2}:1-29"));
        assert_eq!(gs("").to_string(), "");
        assert_eq!(gs(&format!("{U2}:1-29")).to_string(), format!("{U2}:1-29"));
    }

    #[test]
    fn algebra_examples() {
        let a = gs(&format!("{U1}:1-10,{U2}:5"));
        let b = gs(&format!("{U1}:4-6:20,{U3}:1"));
        assert_eq!(a.union(&b).to_string(), format!("{U1}:1-10:20,{U2}:5,{U3}:1"));
        assert_eq!(a.subtract(&b).to_string(), format!("{U1}:1-3:7-10,{U2}:5"));
        assert!(a.contains(&gs(&format!("{U1}:2-9"))));
        assert!(!a.contains(&b));
        assert!(a.intersects(&b));
        assert!(!a.intersects(&gs(&format!("{U3}:1-100"))));
        assert_eq!(a.len(), 11);
        assert!(a.contains_gtid(&U2.parse().unwrap(), 5));
        assert!(!a.contains_gtid(&U2.parse().unwrap(), 6));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "nope",
            U1,
            &format!("{U1}:"),
            &format!("{U1}:0"),
            &format!("{U1}:5-3"),
            &format!("{U1}:1-x"),
            &format!("{U1}:9223372036854775808"),
            &format!("{U1}:tag:1-3"),
            "3e11fa47-71ca-11e1-9e33-c80aa942956:1",
            "3e11fa4771ca-11e1-9e33-c80aa94295622:1",
            &format!("{U1}:1,,{U2}:1"),
        ] {
            assert!(bad.parse::<MysqlGtidSet>().is_err(), "{bad:?}");
        }
        let tagged = format!("{U1}:tag:1").parse::<MysqlGtidSet>().unwrap_err();
        assert!(tagged.to_string().contains("tagged"), "{tagged}");
    }

    type Model = BTreeSet<(usize, u64)>;
    const UUIDS: [&str; 3] = [U1, U2, U3];

    fn arb_set() -> impl Strategy<Value = (MysqlGtidSet, Model)> {
        prop::collection::vec((0usize..3, 1u64..60, 0u64..8), 0..8).prop_map(|ivs| {
            let mut set = MysqlGtidSet::new();
            let mut model = Model::new();
            for (u, s, len) in ivs {
                set.insert_interval(UUIDS[u].parse().unwrap(), s, s + len);
                model.extend((s..=s + len).map(|n| (u, n)));
            }
            (set, model)
        })
    }

    fn to_model(set: &MysqlGtidSet) -> Model {
        let mut m = Model::new();
        for (i, u) in UUIDS.iter().enumerate() {
            for &(s, e) in set.intervals(&u.parse().unwrap()) {
                m.extend((s..=e).map(|n| (i, n)));
            }
        }
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn operations_match_a_set_model((a, ma) in arb_set(), (b, mb) in arb_set()) {
            prop_assert_eq!(to_model(&a.union(&b)), ma.union(&mb).copied().collect::<Model>());
            prop_assert_eq!(to_model(&a.subtract(&b)), ma.difference(&mb).copied().collect::<Model>());
            prop_assert_eq!(a.contains(&b), mb.is_subset(&ma));
            prop_assert_eq!(a.intersects(&b), !ma.is_disjoint(&mb));
            prop_assert_eq!(a.len(), ma.len() as u64);
        }

        #[test]
        fn union_laws((a, _) in arb_set(), (b, _) in arb_set(), (c, _) in arb_set()) {
            prop_assert_eq!(a.union(&b), b.union(&a));
            prop_assert_eq!(a.union(&b).union(&c), a.union(&b.union(&c)));
            prop_assert_eq!(a.union(&a), a.clone());
            prop_assert!(a.union(&b).contains(&a));
            prop_assert_eq!(a.subtract(&b).union(&b), a.union(&b));
            prop_assert!(!a.subtract(&b).intersects(&b));
        }

        #[test]
        fn text_round_trips((a, _) in arb_set()) {
            let text = a.to_string();
            prop_assert_eq!(text.parse::<MysqlGtidSet>().unwrap(), a);
        }
    }
}
