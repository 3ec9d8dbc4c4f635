//! CockroachDB hybrid-logical-clock timestamps.

use std::fmt;
use std::str::FromStr;

use crate::{CursorError, excerpt};

/// A CockroachDB HLC timestamp as `cluster_logical_timestamp()` prints it: wall nanoseconds,
/// a dot, and the logical counter in ten digits (`1700000000000000000.0000000001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CrdbHlc {
    /// Wall time, nanoseconds since the Unix epoch.
    pub wall_nanos: i64,
    /// Logical counter among events with the same wall time.
    pub logical: u32,
}

impl FromStr for CrdbHlc {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CursorError::CrdbHlc { input: excerpt(s) };
        let t = s.trim();
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
        let (wall, logical) = match t.split_once('.') {
            Some((w, l)) if digits(l) && l.len() <= 10 => (w, l),
            Some(_) => return Err(err()),
            None => (t, ""),
        };
        if !digits(wall) {
            return Err(err());
        }
        let wall_nanos = wall.parse::<i64>().map_err(|_| err())?;
        // The fractional part is a decimal fraction: ".1" means logical 1000000000.
        let logical = if logical.is_empty() {
            0
        } else {
            let scaled = format!("{logical:0<10}");
            scaled.parse::<u32>().map_err(|_| err())?
        };
        Ok(CrdbHlc { wall_nanos, logical })
    }
}

impl fmt::Display for CrdbHlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:010}", self.wall_nanos, self.logical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let h: CrdbHlc = "1700000000000000000.0000000001".parse().unwrap();
        assert_eq!(h, CrdbHlc { wall_nanos: 1_700_000_000_000_000_000, logical: 1 });
        assert_eq!(h.to_string(), "1700000000000000000.0000000001");
        let bare: CrdbHlc = "1700000000000000000".parse().unwrap();
        assert_eq!(bare.to_string(), "1700000000000000000.0000000000");
        assert!(bare < h);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", ".", "1.", "a.1", "1.12345678901", "-1.0", "99999999999999999999.0"] {
            assert!(bad.parse::<CrdbHlc>().is_err(), "{bad:?}");
        }
    }
}
