//! The character sets binlog text arrives in: the column's own, not the connection's (a query
//! returns text converted to the connection's utf8mb4; the binlog logs the stored bytes).

use std::borrow::Cow;

use super::ValueErrorKind;

/// How the bytes of a text column are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// utf8mb4 or utf8mb3 (checked to be UTF-8); also `binary` (63), which text columns do not
    /// have and byte columns ignore.
    Utf8,
    /// `ascii`: 7-bit bytes only.
    Ascii,
    /// MySQL's `latin1`: Windows-1252, with its five unassigned bytes (0x81, 0x8D, 0x8F,
    /// 0x90, 0x9D) as the C1 controls of the same number, as MySQL converts them.
    Latin1,
    /// Any other collation id: its text is refused.
    Unsupported(u16),
}

/// Collation ids of MariaDB 10.11 (`information_schema.COLLATIONS`) and MySQL 8.
const UTF8MB4: &[u16] = &[45, 46, 608, 609, 610, 1069, 1070, 1248, 1270];
const UTF8MB3: &[u16] = &[33, 76, 83, 223, 576, 577, 578, 1057, 1107, 1216, 1238];
const LATIN1: &[u16] = &[5, 8, 15, 31, 47, 48, 49, 94, 1032, 1071];
const ASCII: &[u16] = &[11, 65, 1035, 1089];

impl Charset {
    /// The character set of a collation id, as the table map's charset metadata gives it.
    pub fn from_collation(id: u16) -> Charset {
        // utf8mb4: 224–247 (UCA); MySQL 8's 255–323 (UCA 9.0.0). utf8mb3: 192–215.
        if UTF8MB4.contains(&id)
            || (224..=247).contains(&id)
            || (255..=323).contains(&id)
            || UTF8MB3.contains(&id)
            || (192..=215).contains(&id)
            || id == 63
        {
            Charset::Utf8
        } else if LATIN1.contains(&id) {
            Charset::Latin1
        } else if ASCII.contains(&id) {
            Charset::Ascii
        } else {
            Charset::Unsupported(id)
        }
    }

    /// The bytes as text.
    pub(super) fn decode(self, bytes: &[u8]) -> Result<Cow<'_, str>, ValueErrorKind> {
        match self {
            Charset::Utf8 => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| ValueErrorKind::InvalidText { charset: "UTF-8" }),
            Charset::Ascii => match std::str::from_utf8(bytes) {
                Ok(s) if s.is_ascii() => Ok(Cow::Borrowed(s)),
                _ => Err(ValueErrorKind::InvalidText { charset: "ASCII" }),
            },
            Charset::Latin1 => Ok(match std::str::from_utf8(bytes) {
                Ok(s) if s.is_ascii() => Cow::Borrowed(s),
                _ => Cow::Owned(bytes.iter().map(|&b| latin1_char(b)).collect()),
            }),
            Charset::Unsupported(collation) => {
                Err(ValueErrorKind::UnsupportedCharset { collation })
            }
        }
    }
}

/// Windows-1252's characters for 0x80–0x9F; the holes map to the C1 control of the same
/// number, as MySQL's `latin1` does.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

fn latin1_char(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_HIGH.get(usize::from(b - 0x80)).copied().unwrap_or('\u{FFFD}'),
        other => char::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_cp1252_with_mysqls_holes() {
        // SELECT HEX(CONVERT(_latin1 x'808182838d8f909d9eff' USING utf8mb4)) on MariaDB 10.11.
        let s =
            Charset::Latin1.decode(&[0x80, 0x81, 0x82, 0x83, 0x8d, 0x8f, 0x90, 0x9d, 0x9e, 0xff]);
        let hex: String = s.unwrap().bytes().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, "E282ACC281E2809AC692C28DC28FC290C29DC5BEC3BF");
        assert_eq!(Charset::Latin1.decode(b"caf\xe9").unwrap(), "café");
    }

    #[test]
    fn collations_by_id() {
        assert_eq!(Charset::from_collation(45), Charset::Utf8);
        assert_eq!(Charset::from_collation(255), Charset::Utf8);
        assert_eq!(Charset::from_collation(8), Charset::Latin1);
        assert_eq!(Charset::from_collation(11), Charset::Ascii);
        assert_eq!(Charset::from_collation(35), Charset::Unsupported(35));
        assert!(matches!(
            Charset::Unsupported(35).decode(b"a"),
            Err(ValueErrorKind::UnsupportedCharset { collation: 35 })
        ));
        assert!(Charset::Utf8.decode(b"\xc3").is_err());
        assert!(Charset::Ascii.decode("é".as_bytes()).is_err());
    }
}
