//! PostgreSQL write-ahead-log positions.

use std::fmt;
use std::str::FromStr;

use crate::{CursorError, excerpt};

/// A PostgreSQL log sequence number, printed as two uppercase hex halves: `0/43A1960`.
///
/// ```
/// let lsn: molt_cursor::PgLsn = "16/B374D848".parse()?;
/// assert_eq!(u64::from(lsn), 0x16_B374_D848);
/// assert!(lsn > "0/43A1960".parse()?);
/// # Ok::<(), molt_cursor::CursorError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PgLsn(u64);

impl PgLsn {
    /// The zero LSN (`0/0`), "no position".
    pub const ZERO: PgLsn = PgLsn(0);

    /// Wraps a raw 64-bit LSN.
    pub const fn new(raw: u64) -> Self {
        PgLsn(raw)
    }

    /// The raw 64-bit value.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

impl From<u64> for PgLsn {
    fn from(raw: u64) -> Self {
        PgLsn(raw)
    }
}

impl From<PgLsn> for u64 {
    fn from(lsn: PgLsn) -> Self {
        lsn.0
    }
}

impl FromStr for PgLsn {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CursorError::Lsn { input: excerpt(s) };
        let (hi, lo) = s.trim().split_once('/').ok_or_else(err)?;
        let half = |h: &str| {
            if h.is_empty() || h.len() > 8 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            u32::from_str_radix(h, 16).map_err(|_| err())
        };
        Ok(PgLsn((u64::from(half(hi)?) << 32) | u64::from(half(lo)?)))
    }
}

impl fmt::Display for PgLsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        for (text, raw) in
            [("0/0", 0u64), ("0/43A1960", 0x43A_1960), ("FFFFFFFF/FFFFFFFF", u64::MAX)]
        {
            let lsn: PgLsn = text.parse().unwrap();
            assert_eq!(lsn.raw(), raw);
            assert_eq!(lsn.to_string(), text);
        }
        // Lowercase and leading zeros are accepted and normalised, as PostgreSQL does.
        assert_eq!("00/043a1960".parse::<PgLsn>().unwrap().to_string(), "0/43A1960");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "/", "0/", "/1", "0x1/2", "1/2/3", "G/1", "100000000/0", "+1/2", " / "] {
            assert!(bad.parse::<PgLsn>().is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trip(raw: u64) {
            let lsn = PgLsn::new(raw);
            proptest::prop_assert_eq!(lsn.to_string().parse::<PgLsn>().unwrap(), lsn);
        }
    }
}
