//! Oracle system change numbers.

use std::fmt;
use std::str::FromStr;

use crate::{CursorError, excerpt};

/// An Oracle system change number, printed in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OracleScn(pub u64);

impl FromStr for OracleScn {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CursorError::OracleScn { input: excerpt(s) });
        }
        t.parse().map(OracleScn).map_err(|_| CursorError::OracleScn { input: excerpt(s) })
    }
}

impl fmt::Display for OracleScn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The pair `fetch` prints for an Oracle source and `replicator oraclelogminer` takes as
/// `--backfillFromSCN` and `--scn`: `backfillFromSCN=26685444,scn=26685786`.
///
/// `scn` is the snapshot the load read at; `backfill_from` is the start SCN of the oldest
/// transaction still open at that moment, whose changes must be mined again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OracleScnRange {
    /// Earliest SCN whose redo must be mined (`--backfillFromSCN`).
    pub backfill_from: OracleScn,
    /// Snapshot SCN of the load (`--scn`).
    pub scn: OracleScn,
}

impl FromStr for OracleScnRange {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CursorError::OracleScn { input: excerpt(s) };
        let mut backfill = None;
        let mut scn = None;
        for part in s.trim().split(',') {
            let (k, v) = part.trim().split_once('=').ok_or_else(err)?;
            let slot = match k.trim() {
                k if k.eq_ignore_ascii_case("backfillFromSCN") => &mut backfill,
                k if k.eq_ignore_ascii_case("scn") => &mut scn,
                _ => return Err(err()),
            };
            if slot.replace(v.parse::<OracleScn>().map_err(|_| err())?).is_some() {
                return Err(err());
            }
        }
        match (backfill, scn) {
            (Some(backfill_from), Some(scn)) if backfill_from <= scn => {
                Ok(OracleScnRange { backfill_from, scn })
            }
            _ => Err(err()),
        }
    }
}

impl fmt::Display for OracleScnRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backfillFromSCN={},scn={}", self.backfill_from, self.scn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn molt_form_round_trips() {
        let text = "backfillFromSCN=26685444,scn=26685786";
        let r: OracleScnRange = text.parse().unwrap();
        assert_eq!(r.backfill_from, OracleScn(26685444));
        assert_eq!(r.scn, OracleScn(26685786));
        assert_eq!(r.to_string(), text);
        // Order of the two keys does not matter on input.
        assert_eq!("scn=26685786, backfillFromSCN=26685444".parse::<OracleScnRange>().unwrap(), r);
    }

    #[test]
    fn rejects_incomplete_or_inverted() {
        for bad in [
            "",
            "scn=1",
            "backfillFromSCN=1",
            "scn=1,scn=2",
            "backfillFromSCN=5,scn=4",
            "backfillFromSCN=-1,scn=4",
            "backfillFromSCN=x,scn=4",
            "foo=1,scn=2",
        ] {
            assert!(bad.parse::<OracleScnRange>().is_err(), "{bad:?}");
        }
    }
}
