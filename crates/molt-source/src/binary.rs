//! PostgreSQL's binary COPY format, written from the text a source's values already have.
//!
//! A source whose rows are not PostgreSQL's (MySQL) prints each value as the text the target
//! would parse. Sending that as binary instead spares the target the parsing, which on a
//! loaded target is the bigger share of a load's work. Each target column type maps to a
//! [`BinaryKind`] ([`kind_of_target`], from `format_type` spellings); a type without one keeps
//! the table on text COPY.
//!
//! | target type | binary value |
//! |---|---|
//! | `smallint`, `integer`, `bigint` | big-endian integer |
//! | `real`, `double precision` | IEEE bits |
//! | `numeric(p,s)`, `numeric` | weight, sign, scale and base-10000 digits |
//! | `text`, `character varying`, `character` | the UTF-8 bytes |
//! | `bytea` | the bytes (from `\x` hex) |
//! | `boolean` | one byte |
//! | `date` | days since 2000-01-01 |
//! | `timestamp`, `timestamp with time zone` | microseconds since 2000-01-01 (UTC) |
//! | `time` | microseconds since midnight |
//! | `jsonb` / `json` | version 1 and the text / the text |
//! | `uuid` | 16 bytes |
//! | `bit varying`, `bit` | bit count and the bits, most significant first |

use bytes::{BufMut as _, BytesMut};

use crate::pgtext;

/// How one column's values are written in binary COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    /// `int2`.
    Int2,
    /// `int4`.
    Int4,
    /// `int8`.
    Int8,
    /// `float4`.
    Float4,
    /// `float8`.
    Float8,
    /// `numeric`.
    Numeric,
    /// Text types: the bytes as they are.
    Text,
    /// `bytea`.
    Bytes,
    /// `bool`.
    Bool,
    /// `date`.
    Date,
    /// `timestamp` and `timestamptz`.
    Timestamp,
    /// `time`.
    Time,
    /// `jsonb`.
    Jsonb,
    /// `uuid`.
    Uuid,
    /// `bit` and `varbit`.
    Bits,
}

/// The kind a target column of type `format_type` (PostgreSQL's spelling, such as
/// `character varying(80)` or `timestamp(6) with time zone`) is written as; `None` for types
/// without one here (arrays, intervals, network types, user types).
pub fn kind_of_target(format_type: &str) -> Option<BinaryKind> {
    let base = format_type.split('(').next().unwrap_or(format_type).trim();
    let zone = format_type.ends_with("with time zone");
    Some(match base {
        "smallint" => BinaryKind::Int2,
        "integer" => BinaryKind::Int4,
        "bigint" => BinaryKind::Int8,
        "real" => BinaryKind::Float4,
        "double precision" => BinaryKind::Float8,
        "numeric" => BinaryKind::Numeric,
        "text" | "character varying" | "character" | "json" => BinaryKind::Text,
        "bytea" => BinaryKind::Bytes,
        "boolean" => BinaryKind::Bool,
        "date" => BinaryKind::Date,
        "timestamp" | "timestamp without time zone" | "timestamp with time zone" => {
            BinaryKind::Timestamp
        }
        "time" | "time without time zone" if !zone => BinaryKind::Time,
        "jsonb" => BinaryKind::Jsonb,
        "uuid" => BinaryKind::Uuid,
        "bit" | "bit varying" => BinaryKind::Bits,
        _ => return None,
    })
}

/// The stream header: signature, flags, no extension.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The stream trailer.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// A value that is not valid text for its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {kind:?} value for binary COPY")]
pub struct EncodeError {
    /// The kind.
    pub kind: BinaryKind,
    /// The text.
    pub value: String,
}

/// Starts a tuple of `fields` values.
pub fn put_tuple_start(out: &mut BytesMut, fields: usize) {
    out.put_i16(i16::try_from(fields).unwrap_or(i16::MAX));
}

/// Appends one field: NULL, or `text` encoded as `kind`.
///
/// # Errors
/// [`EncodeError`] when `text` does not parse as `kind`.
pub fn put_field(
    out: &mut BytesMut,
    kind: BinaryKind,
    text: Option<&str>,
) -> Result<(), EncodeError> {
    let Some(text) = text else {
        out.put_i32(-1);
        return Ok(());
    };
    let bad = || EncodeError { kind, value: text.to_owned() };
    let at = out.len();
    out.put_i32(0);
    match kind {
        BinaryKind::Int2 => out.put_i16(text.parse().map_err(|_| bad())?),
        BinaryKind::Int4 => out.put_i32(text.parse().map_err(|_| bad())?),
        BinaryKind::Int8 => out.put_i64(text.parse().map_err(|_| bad())?),
        BinaryKind::Float4 => out.put_f32(float(text).ok_or_else(bad)? as f32),
        BinaryKind::Float8 => out.put_f64(float(text).ok_or_else(bad)?),
        BinaryKind::Numeric => numeric(out, text).ok_or_else(bad)?,
        BinaryKind::Text => out.put_slice(text.as_bytes()),
        BinaryKind::Bytes => hex_bytes(out, text).ok_or_else(bad)?,
        BinaryKind::Bool => out.put_u8(match text {
            "t" | "true" | "1" => 1,
            "f" | "false" | "0" => 0,
            _ => return Err(bad()),
        }),
        BinaryKind::Date => out.put_i32(date_days(text).ok_or_else(bad)?),
        BinaryKind::Timestamp => out.put_i64(timestamp_micros(text).ok_or_else(bad)?),
        BinaryKind::Time => out.put_i64(time_micros(text).ok_or_else(bad)?),
        BinaryKind::Jsonb => {
            out.put_u8(1);
            out.put_slice(text.as_bytes());
        }
        BinaryKind::Uuid => uuid(out, text).ok_or_else(bad)?,
        BinaryKind::Bits => bits(out, text).ok_or_else(bad)?,
    }
    let len = i32::try_from(out.len() - at - 4).map_err(|_| bad())?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// PostgreSQL's numeric: base-10000 digits around the decimal point, the display scale.
fn numeric(out: &mut BytesMut, text: &str) -> Option<()> {
    if text == "NaN" {
        out.put_slice(&[0, 0, 0, 0, 0xc0, 0, 0, 0]);
        return Some(());
    }
    let (negative, int, frac) = pgtext::decimal_parts(text)?;
    let dscale = u16::try_from(frac.len()).ok()?;
    let int = int.trim_start_matches('0');
    // Pad the integer part on the left and the fraction on the right to whole groups of four.
    let lead = (4 - int.len() % 4) % 4;
    let trail = (4 - frac.len() % 4) % 4;
    let mut all = String::with_capacity(lead + int.len() + frac.len() + trail);
    all.extend(std::iter::repeat_n('0', lead));
    all.push_str(int);
    all.push_str(frac);
    all.extend(std::iter::repeat_n('0', trail));
    let groups: Vec<i16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0')))
        .collect();
    let int_groups = (lead + int.len()) / 4;
    let mut weight = i32::try_from(int_groups).ok()? - 1;
    let mut first = 0;
    while first < groups.len() && groups[first] == 0 {
        first += 1;
        weight -= 1;
    }
    let mut last = groups.len();
    while last > first && groups[last - 1] == 0 {
        last -= 1;
    }
    let used = &groups[first..last];
    if used.is_empty() {
        weight = 0;
    }
    out.put_i16(i16::try_from(used.len()).ok()?);
    out.put_i16(i16::try_from(weight).ok()?);
    out.put_u16(if negative && !used.is_empty() { 0x4000 } else { 0 });
    out.put_u16(dscale);
    for g in used {
        out.put_i16(*g);
    }
    Some(())
}

fn hex_bytes(out: &mut BytesMut, text: &str) -> Option<()> {
    out.put_slice(&pgtext::bytea(text)?);
    Some(())
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

fn date_days(text: &str) -> Option<i32> {
    i32::try_from(pgtext::date_days(text)? - PG_EPOCH_DAYS).ok()
}

fn time_micros(text: &str) -> Option<i64> {
    pgtext::clock_micros(text).filter(|us| *us <= DAY_MICROS)
}

/// Microseconds since 2000-01-01 UTC.
fn timestamp_micros(text: &str) -> Option<i64> {
    pgtext::timestamp_micros(text)?.checked_sub(PG_EPOCH_DAYS * DAY_MICROS)
}

fn uuid(out: &mut BytesMut, text: &str) -> Option<()> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    let v = u128::from_str_radix(&hex, 16).ok()?;
    out.put_u128(v);
    Some(())
}

fn bits(out: &mut BytesMut, text: &str) -> Option<()> {
    if !text.bytes().all(|b| b == b'0' || b == b'1') {
        return None;
    }
    out.put_i32(i32::try_from(text.len()).ok()?);
    for chunk in text.as_bytes().chunks(8) {
        let mut byte = 0u8;
        for (i, b) in chunk.iter().enumerate() {
            if *b == b'1' {
                byte |= 0x80 >> i;
            }
        }
        out.put_u8(byte);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: BinaryKind, text: &str) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_field(&mut b, kind, Some(text)).unwrap();
        let len = i32::from_be_bytes(b[..4].try_into().unwrap());
        assert_eq!(len as usize, b.len() - 4);
        b[4..].to_vec()
    }

    #[test]
    fn target_types_by_their_format_type_spelling() {
        assert_eq!(kind_of_target("character varying(80)"), Some(BinaryKind::Text));
        assert_eq!(kind_of_target("numeric(20,0)"), Some(BinaryKind::Numeric));
        assert_eq!(kind_of_target("timestamp(6) with time zone"), Some(BinaryKind::Timestamp));
        assert_eq!(kind_of_target("time(6) without time zone"), Some(BinaryKind::Time));
        assert_eq!(kind_of_target("time with time zone"), None);
        assert_eq!(kind_of_target("interval"), None);
        assert_eq!(kind_of_target("inet"), None);
        assert_eq!(kind_of_target("integer[]"), None);
    }

    #[test]
    fn numerics_as_postgresql_sends_them() {
        // ndigits, weight, sign, dscale, digits: the bytes PostgreSQL 15's numeric_send
        // returns for each value (read with `SELECT numeric_send('…'::numeric)`).
        let n = |t| field(BinaryKind::Numeric, t);
        assert_eq!(n("0"), [0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(n("0.00"), [0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(n("1"), [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(n("-12345.678"), [0, 3, 0, 1, 0x40, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]);
        assert_eq!(n("0.0001"), [0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 1]);
        assert_eq!(
            n("18446744073709551615"),
            [0, 5, 0, 4, 0, 0, 0, 0, 0x07, 0x34, 0x1a, 0x58, 0x02, 0xe1, 0x03, 0xbb, 0x06, 0x4f]
        );
        assert_eq!(n("10000"), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(n("-0.000"), [0, 0, 0, 0, 0, 0, 0, 3]);
        let mut b = BytesMut::new();
        assert!(put_field(&mut b, BinaryKind::Numeric, Some("1e5")).is_err());
    }

    #[test]
    fn instants_days_and_clocks_from_the_2000_epoch() {
        assert_eq!(field(BinaryKind::Date, "2000-01-01"), 0i32.to_be_bytes());
        assert_eq!(field(BinaryKind::Date, "1999-12-31"), (-1i32).to_be_bytes());
        assert_eq!(
            field(BinaryKind::Timestamp, "2000-01-01 00:00:01.5"),
            1_500_000i64.to_be_bytes()
        );
        assert_eq!(
            field(BinaryKind::Timestamp, "2000-01-01 05:30:00+05:30"),
            0i64.to_be_bytes(),
            "an offset is taken off"
        );
        assert_eq!(
            field(BinaryKind::Timestamp, "2024-01-01 00:30:00.000001+00"),
            757_384_200_000_001i64.to_be_bytes()
        );
        assert_eq!(field(BinaryKind::Time, "24:00:00"), 86_400_000_000i64.to_be_bytes());
        let mut b = BytesMut::new();
        assert!(put_field(&mut b, BinaryKind::Time, Some("25:00:00")).is_err());
        assert!(put_field(&mut b, BinaryKind::Date, Some("2024-13-01")).is_err());
    }

    #[test]
    fn bytes_bits_uuids_json_and_nulls() {
        assert_eq!(field(BinaryKind::Bytes, "\\x00ff10"), [0, 0xff, 0x10]);
        assert_eq!(field(BinaryKind::Bits, "10101"), [0, 0, 0, 5, 0b1010_1000]);
        assert_eq!(field(BinaryKind::Jsonb, "{}"), [1, b'{', b'}']);
        assert_eq!(
            field(BinaryKind::Uuid, "123e4567-e89b-12d3-a456-426614174000"),
            0x123e4567_e89b_12d3_a456_426614174000u128.to_be_bytes()
        );
        assert_eq!(field(BinaryKind::Float8, "0.1"), 0.1f64.to_be_bytes());
        assert_eq!(field(BinaryKind::Float4, "0.1"), 0.1f32.to_be_bytes());
        assert_eq!(field(BinaryKind::Int8, "-9223372036854775808"), i64::MIN.to_be_bytes());
        let mut b = BytesMut::new();
        put_field(&mut b, BinaryKind::Text, None).unwrap();
        assert_eq!(&b[..], (-1i32).to_be_bytes());
        assert!(put_field(&mut b, BinaryKind::Int2, Some("40000")).is_err());
    }
}
