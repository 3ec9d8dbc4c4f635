//! From what `mysql_common` hands us (a binlog value, or a query's text or binary value) to
//! the decoded datum [`mod@super::format`] prints.
//!
//! How `mysql_common` 0.37.3 decodes row events (checked on MariaDB 10.11):
//!
//! | column | binlog value | query value (text / binary protocol) |
//! |---|---|---|
//! | integers | `Int`, `UInt` above `i64::MAX` (signed `MEDIUMINT` not sign-extended) | digits / `Int`, `UInt` |
//! | `YEAR` | `Bytes("1900" + y)`: `"1900"` is year 0 | `"0000"` / `Int` |
//! | `FLOAT`, `DOUBLE` | `Float`, `Double` | 6 digits (`FLOAT`), shortest (`DOUBLE`) / `Float`, `Double` |
//! | `DECIMAL` | `Bytes("-12.340")` | the same digits |
//! | `TIMESTAMP` | `Bytes("secs[.micros]")` since the epoch (`Int(secs)` before 5.6) | session time zone |
//! | `DATE`, `DATETIME` | `Date(…)` | text / `Date(…)` |
//! | `TIME` | `Time(neg, days, h, m, s, µs)` | `-838:59:59.999999` / `Time(…)` |
//! | `BIT(n)` | `Bytes`, big-endian, ⌈n/8⌉ bytes | the same bytes |
//! | `ENUM` | `Int(index)` | the label |
//! | `SET` | `Bytes(bitmask, little-endian)` | `a,c` |
//! | `BINARY(n)`, `UUID`, `INET6`, `INET4` | `Bytes` without trailing zero bytes | padded bytes / text |
//! | MariaDB `JSON` | `Bytes(text)` | text |
//! | MySQL `JSON` | `Jsonb`, or `JsonDiff` for a partial update | text |
//!
//! A negative `TIME(1)`/`TIME(2)` with a fraction never gets here: `mysql_common`'s decoder
//! overflows on it (a panic in debug builds, a wrong value in release).

use std::net::{Ipv4Addr, Ipv6Addr};

use mysql_async::Value;
use mysql_async::consts::ColumnType as Wire;

use super::format::{self, Civil};
use super::kind::{Kind, fixed_width};
use super::{Charset, ValueErrorKind, json};
use crate::binlog::{BinlogColumn, BinlogValue};

type Text = Result<Option<String>, ValueErrorKind>;

/// The value for an error message. Not `Value`'s `Debug`: it overflows on a `Time` of more
/// than 178956970 days.
fn unexpected(v: &Value) -> ValueErrorKind {
    let shown = match v {
        Value::NULL => "NULL".to_owned(),
        Value::Bytes(b) => format!("bytes {}", format::abbreviate(&format::bytes(b))),
        Value::Int(i) => format!("integer {i}"),
        Value::UInt(u) => format!("integer {u}"),
        Value::Float(f) => format!("float {}", format::float4(*f)),
        Value::Double(d) => format!("double {}", format::float8(*d)),
        Value::Date(y, m, d, h, mi, s, us) => {
            format!("date {y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Value::Time(neg, d, h, mi, s, us) => {
            let sign = if *neg { "-" } else { "" };
            format!("time {sign}{d} days {h:02}:{mi:02}:{s:02}.{us:06}")
        }
    };
    ValueErrorKind::Unexpected { value: shown }
}

/// A binlog row value of a column of `kind`.
pub(super) fn binlog(
    kind: &Kind<'_>,
    col: &BinlogColumn,
    charset: Charset,
    v: &BinlogValue<'_>,
) -> Text {
    let v = match v {
        BinlogValue::Value(Value::NULL) => return Ok(None),
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) if *kind == Kind::Json => return json::from_jsonb(j).map(Some),
        BinlogValue::JsonDiff(_) if *kind == Kind::Json => return Err(ValueErrorKind::JsonDiff),
        BinlogValue::Jsonb(_) | BinlogValue::JsonDiff(_) => {
            return Err(ValueErrorKind::Unexpected { value: "binary JSON".into() });
        }
    };
    let text = match (*kind, v) {
        // The stored bits, read with the catalog's signedness (see the module documentation).
        (Kind::Int { bits, unsigned }, Value::Int(i)) => {
            format::int(format::reinterpret(i128::from(*i), bits, unsigned), bits, unsigned)?
        }
        (Kind::Int { bits, unsigned }, Value::UInt(u)) => {
            format::int(format::reinterpret(i128::from(*u), bits, unsigned), bits, unsigned)?
        }
        (Kind::Bool, Value::Int(i)) => {
            format::boolean(format::reinterpret(i128::from(*i), 8, false))?
        }
        // mysql_common adds 1900 to the stored byte, which is 0 for the year 0000.
        (Kind::Year, Value::Bytes(b)) => match ascii_int(b).ok_or_else(|| unexpected(v))? {
            1900 => format::year(0)?,
            y => format::year(y)?,
        },
        (Kind::Year, Value::Int(y)) => format::year(i128::from(*y))?,
        (Kind::Float4, Value::Float(f)) => format::float4(*f),
        (Kind::Float8, Value::Double(d)) => format::float8(*d),
        (Kind::Float8, Value::Float(f)) => format::float8(f64::from(*f)),
        (Kind::Decimal, Value::Bytes(b)) => {
            format::decimal(ascii(b).ok_or_else(|| unexpected(v))?)?
        }
        (Kind::Text, Value::Bytes(b)) => format::text(&charset.decode(b)?)?,
        (Kind::Bytes { width }, Value::Bytes(b)) => {
            let width = if col.column_type == Wire::MYSQL_TYPE_STRING {
                fixed_width(col).or(width)
            } else {
                None
            };
            format::bytes(&padded(b, width.unwrap_or(0)))
        }
        (Kind::Date, Value::Date(y, m, d, h, mi, s, us)) => {
            format::date(civil(*y, *m, *d, *h, *mi, *s, *us))?
        }
        (Kind::DateTime, Value::Date(y, m, d, h, mi, s, us)) => {
            format::datetime(civil(*y, *m, *d, *h, *mi, *s, *us))?
        }
        (Kind::Timestamp, Value::Bytes(b)) => {
            let (secs, micro) = epoch(b).ok_or_else(|| unexpected(v))?;
            epoch_timestamp(secs, micro)?
        }
        (Kind::Timestamp, Value::Int(secs)) => epoch_timestamp(*secs, 0)?,
        (Kind::Time, Value::Time(neg, days, h, mi, s, us)) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            format::time(*neg, hours, u32::from(*mi), u32::from(*s), *us)?
        }
        (Kind::Bit(width), Value::Bytes(b)) => format::bit(width, b)?,
        (Kind::Json, Value::Bytes(b)) => json::text(&charset.decode(b)?)?,
        (Kind::Enum(labels), Value::Int(i)) => format::enum_index(labels, *i)?,
        (Kind::Set(labels), Value::Bytes(b)) => {
            if b.len() > 8 {
                return Err(unexpected(v));
            }
            let mask = b.iter().rev().fold(0u64, |m, &byte| (m << 8) | u64::from(byte));
            format::set(labels, mask)?
        }
        (Kind::Uuid, Value::Bytes(b)) => {
            format::uuid(&fixed::<16>(b).ok_or_else(|| unexpected(v))?)
        }
        (Kind::Inet6, Value::Bytes(b)) => {
            format::inet6(&fixed::<16>(b).ok_or_else(|| unexpected(v))?)
        }
        (Kind::Inet4, Value::Bytes(b)) => {
            format::inet4(&fixed::<4>(b).ok_or_else(|| unexpected(v))?)
        }
        _ => return Err(unexpected(v)),
    };
    Ok(Some(text))
}

/// A value of a column of `kind` read with a query.
pub(super) fn query(kind: &Kind<'_>, v: &Value) -> Text {
    let bad = || unexpected(v);
    let text = match (*kind, v) {
        (_, Value::NULL) => return Ok(None),
        (Kind::Int { bits, unsigned }, _) => {
            format::int(integer(v).ok_or_else(bad)?, bits, unsigned)?
        }
        (Kind::Bool, _) => format::boolean(integer(v).ok_or_else(bad)?)?,
        (Kind::Year, _) => format::year(integer(v).ok_or_else(bad)?)?,
        (Kind::Float4, Value::Float(f)) => format::float4(*f),
        (Kind::Float4, Value::Double(d)) => {
            // Exact only when the double is an f32 (a FLOAT selected as DOUBLE).
            let f = *d as f32;
            if f64::from(f) != *d && !d.is_nan() {
                return Err(ValueErrorKind::OutOfRange { value: format::float8(*d) });
            }
            format::float4(f)
        }
        (Kind::Float4, Value::Bytes(_)) => return Err(ValueErrorKind::LossyFloat),
        (Kind::Float8, Value::Double(d)) => format::float8(*d),
        (Kind::Float8, Value::Float(f)) => format::float8(f64::from(*f)),
        (Kind::Float8, Value::Bytes(b)) => {
            format::float8(ascii(b).and_then(|s| s.parse::<f64>().ok()).ok_or_else(bad)?)
        }
        (Kind::Decimal, Value::Bytes(b)) => format::decimal(ascii(b).ok_or_else(bad)?)?,
        (Kind::Decimal, Value::Int(_) | Value::UInt(_)) => integer(v).ok_or_else(bad)?.to_string(),
        (Kind::Text, Value::Bytes(b)) => format::text(&Charset::Utf8.decode(b)?)?,
        (Kind::Bytes { .. }, Value::Bytes(b)) => format::bytes(b),
        (Kind::Date, _) => format::date(query_civil(v, false).ok_or_else(bad)?)?,
        (Kind::DateTime, _) => format::datetime(query_civil(v, true).ok_or_else(bad)?)?,
        // In the session's time zone, which the reader sets to UTC.
        (Kind::Timestamp, _) => format::timestamp(query_civil(v, true).ok_or_else(bad)?)?,
        (Kind::Time, Value::Time(neg, days, h, mi, s, us)) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            format::time(*neg, hours, u32::from(*mi), u32::from(*s), *us)?
        }
        (Kind::Time, Value::Bytes(b)) => {
            let (neg, hours, mi, s, us) = ascii(b).and_then(parse_time).ok_or_else(bad)?;
            format::time(neg, hours, mi, s, us)?
        }
        (Kind::Bit(width), Value::Bytes(b)) => format::bit(width, b)?,
        (Kind::Bit(width), Value::Int(_) | Value::UInt(_)) => {
            let n = u64::try_from(integer(v).ok_or_else(bad)?).map_err(|_| bad())?;
            format::bit(width, &n.to_be_bytes())?
        }
        (Kind::Json, Value::Bytes(b)) => json::text(&Charset::Utf8.decode(b)?)?,
        (Kind::Enum(labels), Value::Bytes(b)) => {
            format::enum_label(labels, &Charset::Utf8.decode(b)?)?
        }
        (Kind::Set(labels), Value::Bytes(b)) => {
            let s = Charset::Utf8.decode(b)?;
            if labels.is_empty() {
                format::text(&s)?
            } else {
                format::set(labels, format::set_mask(labels, &s)?)?
            }
        }
        (Kind::Uuid, Value::Bytes(b)) => {
            format::uuid(&ascii(b).and_then(parse_uuid).ok_or_else(bad)?)
        }
        (Kind::Inet6, Value::Bytes(b)) => {
            let ip: Ipv6Addr = ascii(b).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            format::inet6(&ip.octets())
        }
        (Kind::Inet4, Value::Bytes(b)) => {
            let ip: Ipv4Addr = ascii(b).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            format::inet4(&ip.octets())
        }
        _ => return Err(bad()),
    };
    Ok(Some(text))
}

fn civil(y: u16, m: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> Civil {
    Civil {
        year: u32::from(y),
        month: u32::from(m),
        day: u32::from(d),
        hour: u32::from(h),
        minute: u32::from(mi),
        second: u32::from(s),
        micro: us,
    }
}

/// The UTC text of a binlog `TIMESTAMP`; 0 is MySQL's zero timestamp.
fn epoch_timestamp(secs: i64, micro: u32) -> Result<String, ValueErrorKind> {
    if secs == 0 && micro == 0 {
        return Err(ValueErrorKind::ZeroDate { value: "0000-00-00 00:00:00".into() });
    }
    if micro >= 1_000_000 || secs < 0 {
        return Err(ValueErrorKind::InvalidDate { value: format!("{secs}.{micro:06}") });
    }
    format::timestamp(format::civil_from_unix(secs, micro))
}

/// `secs[.micros]` as mysql_common prints a `TIMESTAMP2`. It reads the stored unsigned 32
/// bits as `i32`, so a negative number is a time after 2038 (MariaDB 11.5+ stores up to
/// 2106).
fn epoch(b: &[u8]) -> Option<(i64, u32)> {
    let s = ascii(b)?;
    let (secs, micro) = match s.split_once('.') {
        Some((secs, frac)) => (secs, fraction_micros(frac)?),
        None => (s, 0),
    };
    let secs: i64 = secs.parse().ok()?;
    let secs = if secs < 0 { secs + (1i64 << 32) } else { secs };
    Some((secs, micro))
}

fn ascii(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok().filter(|s| s.is_ascii())
}

fn ascii_int(b: &[u8]) -> Option<i128> {
    ascii(b)?.parse().ok()
}

/// An integer from either protocol: `Int`/`UInt` (binary) or digits (text).
fn integer(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        Value::Bytes(b) => ascii_int(b),
        _ => None,
    }
}

/// `b` padded with zero bytes to `width` (the binlog logs `BINARY(n)` without them).
fn padded(b: &[u8], width: usize) -> Vec<u8> {
    let mut out = b.to_vec();
    if out.len() < width {
        out.resize(width, 0);
    }
    out
}

/// Exactly `N` bytes, after restoring the trailing zero bytes the binlog strips.
fn fixed<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    if b.len() > N {
        return None;
    }
    let mut out = [0u8; N];
    out.get_mut(..b.len())?.copy_from_slice(b);
    Some(out)
}

/// Up to 6 fraction digits as microseconds.
fn fraction_micros(frac: &str) -> Option<u32> {
    if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = frac.parse().ok()?;
    Some(n * 10u32.pow(6 - frac.len() as u32))
}

/// A date or date-time from a query: binary `Date(…)` or text `YYYY-MM-DD[ HH:MM:SS[.f]]`.
fn query_civil(v: &Value, with_time: bool) -> Option<Civil> {
    match v {
        Value::Date(y, m, d, h, mi, s, us) => Some(civil(*y, *m, *d, *h, *mi, *s, *us)),
        Value::Bytes(b) => {
            let s = ascii(b)?;
            let (date, time) = match s.split_once(' ') {
                Some((d, t)) if with_time => (d, Some(t)),
                Some(_) => return None,
                None => (s, None),
            };
            let mut parts = date.splitn(3, '-');
            let year = digits(parts.next()?, 4)?;
            let month = digits(parts.next()?, 2)?;
            let day = digits(parts.next()?, 2)?;
            let mut c = Civil::date(year, month, day);
            if let Some(t) = time {
                let (neg, hours, minute, second, micro) = parse_time(t)?;
                if neg || hours > 23 {
                    return None;
                }
                (c.hour, c.minute, c.second, c.micro) =
                    (u32::try_from(hours).ok()?, minute, second, micro);
            }
            Some(c)
        }
        _ => None,
    }
}

/// Exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// `[-]H+:MM:SS[.f]` as (negative, hours, minutes, seconds, microseconds).
fn parse_time(s: &str) -> Option<(bool, u64, u32, u32, u32)> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (hms, micro) = match s.split_once('.') {
        Some((hms, frac)) => (hms, fraction_micros(frac)?),
        None => (s, 0),
    };
    let mut parts = hms.splitn(3, ':');
    let h = parts.next()?;
    if h.is_empty() || h.len() > 10 || !h.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let minute = digits(parts.next()?, 2)?;
    let second = digits(parts.next()?, 2)?;
    Some((neg, h.parse().ok()?, minute, second, micro))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` as 16 bytes.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b.get(i) != Some(&b'-')) {
        return None;
    }
    let hex: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(hex.chunks(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}
