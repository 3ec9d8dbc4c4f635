//! MOLT's comparable pairs (spec §4.2, §5): a column of one type on the source and another
//! on the target, compared by what the values mean.
//!
//! | pair | compared as |
//! |---|---|
//! | `INT2`→`INT4`→`INT8` | integers by value |
//! | `FLOAT4`→`FLOAT8` | the `FLOAT4` value widened exactly, or read from its shortest text |
//! | `TIMESTAMP`↔`TIMESTAMPTZ` | instants; the side without a zone is read as UTC |
//! | `UUID`↔string | 128-bit values; the text must be `8-4-4-4-12` hex digits, any case |
//! | `BOOL`↔`INT2` | `true` = 1, `false` = 0; any other number differs |
//! | bit string↔`BOOL` | the bits as an unsigned number: 1 = `true`, 0 = `false` |
//! | bit string↔string | the string of `0`s and `1`s, exactly |
//! | JSON↔string | JSON structures (key order, spacing and number spelling do not matter) |
//! | `INET`↔string | address and netmask; a missing netmask is the whole address (`/32`, `/128`) |
//!
//! Text that does not parse as the pair's domain (`'not a uuid'` against a UUID) is a
//! difference, never a pass.

use std::net::IpAddr;

use molt_schema::SqlType;

use crate::value::Kind;

impl Kind {
    /// The kind that compares a source column of type `source` with a target column of type
    /// `target` (the types are [`molt_schema::compare::types_compatible`]).
    pub fn between(source: &SqlType, target: &SqlType) -> Kind {
        use SqlType as T;
        let string = |t: &SqlType| matches!(t, T::Text | T::Varchar(_));
        let bits = |t: &SqlType| matches!(t, T::Bit(_) | T::VarBit(_));
        let json = |t: &SqlType| matches!(t, T::Json | T::Jsonb);
        let either = |p: &dyn Fn(&SqlType) -> bool, q: &dyn Fn(&SqlType) -> bool| {
            (p(source) && q(target)) || (q(source) && p(target))
        };
        match (source, target) {
            (T::Array(a), T::Array(b)) => Kind::Array(Box::new(Kind::between(a, b))),
            // Narrowed the other way, a FLOAT8 keeps its own value only if it fits exactly.
            (T::Float4, T::Float8) => Kind::Float4,
            (T::Timestamp(_), T::TimestampTz(_)) | (T::TimestampTz(_), T::Timestamp(_)) => {
                Kind::TimestampTz
            }
            (T::Bool, T::Int2) | (T::Int2, T::Bool) => Kind::BoolInt,
            _ if either(&|t| *t == T::Uuid, &string) => Kind::Uuid,
            _ if either(&|t| *t == T::Bool, &bits) => Kind::BoolBits,
            _ if either(&json, &string) => Kind::Json,
            _ if either(&|t| *t == T::Inet, &string) => Kind::Inet,
            _ => Kind::of(source),
        }
    }
}

/// A UUID's 128 bits from its text: `8-4-4-4-12` hex digits, either case.
pub fn uuid(s: &str) -> Option<u128> {
    let groups: Vec<&str> = s.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex = groups.concat();
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

/// The number a `BOOL` or integer text stands for: `true` 1, `false` 0, an integer itself.
pub fn bool_or_int(s: &str) -> Option<i64> {
    match s {
        "true" => Some(1),
        "false" => Some(0),
        _ => s.parse().ok(),
    }
}

/// The number a `BOOL` or bit-string text stands for: `true` 1, `false` 0, bits (at most 64,
/// most significant first) as an unsigned number.
pub fn bool_or_bits(s: &str) -> Option<u64> {
    match s {
        "true" => Some(1),
        "false" => Some(0),
        _ if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b == b'0' || b == b'1') => {
            u64::from_str_radix(s, 2).ok()
        }
        _ => None,
    }
}

/// An `INET` text's address and netmask length (`10.0.0.1` is `10.0.0.1/32`).
pub fn inet(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, mask) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let mask = match mask {
        Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => m.parse().ok()?,
        Some(_) => return None,
        None => full,
    };
    (mask <= full).then_some((addr, mask))
}

fn special_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Whether a `FLOAT8` text (`target`) holds the `FLOAT4` value of `source`: widened exactly
/// (`0.10000000149011612`), or read from the `FLOAT4`'s shortest text (`0.1`, what a copy
/// through text writes). Nothing else: a value merely close to it differs.
pub fn float4_in_float8(source: &str, target: &str) -> bool {
    let (Some(x), Some(y)) = (
        special_float(source).map(|v| v as f32).or_else(|| source.parse::<f32>().ok()),
        special_float(target).or_else(|| target.parse::<f64>().ok()),
    ) else {
        return false;
    };
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    let widened = f64::from(x);
    let through_text = if x.is_finite() { format!("{x}").parse::<f64>().ok() } else { None };
    y.to_bits() == widened.to_bits() || through_text.is_some_and(|t| t.to_bits() == y.to_bits())
}

/// A `FLOAT4` or `FLOAT8` text rounded to `FLOAT4`, to order keys of the two alike (`None`
/// when it does not parse).
pub fn float4(s: &str) -> Option<f32> {
    // `as` rounds to the nearest FLOAT4, as PostgreSQL's float8-to-float4 cast does.
    special_float(s).or_else(|| s.parse::<f64>().ok()).map(|v| v as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::same;

    fn same_as(kind: &Kind, a: &str, b: &str) -> bool {
        same(kind, Some(a), Some(b))
    }

    #[test]
    fn kinds_of_pairs() {
        use SqlType as T;
        assert_eq!(Kind::between(&T::Bool, &T::Int2), Kind::BoolInt);
        assert_eq!(Kind::between(&T::Varchar(36), &T::Uuid), Kind::Uuid);
        assert_eq!(Kind::between(&T::Bit(1), &T::Bool), Kind::BoolBits);
        assert_eq!(Kind::between(&T::Text, &T::Jsonb), Kind::Json);
        assert_eq!(Kind::between(&T::Inet, &T::Text), Kind::Inet);
        assert_eq!(Kind::between(&T::Float4, &T::Float8), Kind::Float4);
        assert_eq!(Kind::between(&T::Float8, &T::Float4), Kind::Float);
        assert_eq!(Kind::between(&T::Timestamp(None), &T::TimestampTz(None)), Kind::TimestampTz);
        assert_eq!(Kind::between(&T::VarBit(None), &T::Text), Kind::Text);
        assert_eq!(Kind::between(&T::Int2, &T::Int8), Kind::Int);
        assert_eq!(Kind::between(&T::Timestamp(None), &T::Timestamp(Some(3))), Kind::Text);
    }

    #[test]
    fn pairs_by_meaning() {
        assert!(same_as(&Kind::BoolInt, "true", "1"));
        assert!(same_as(&Kind::BoolInt, "0", "false"));
        assert!(!same_as(&Kind::BoolInt, "true", "2"));
        assert!(!same_as(&Kind::BoolInt, "true", "0"));
        let u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        assert!(same_as(&Kind::Uuid, u, &u.to_uppercase()));
        assert!(!same_as(&Kind::Uuid, u, "a0eebc999c0b4ef8bb6d6bb9bd380a11"), "not canonical");
        assert!(!same_as(&Kind::Uuid, "x", "y"));
        assert!(same_as(&Kind::BoolBits, "0001", "true"));
        assert!(same_as(&Kind::BoolBits, "false", "0"));
        assert!(!same_as(&Kind::BoolBits, "10", "true"));
        assert!(!same_as(&Kind::BoolBits, "", "false"));
        assert!(same_as(&Kind::Inet, "192.168.0.1/32", "192.168.0.1"));
        assert!(same_as(&Kind::Inet, "2001:db8::1/128", "2001:DB8:0:0:0:0:0:1"));
        assert!(!same_as(&Kind::Inet, "10.0.0.1", "10.0.0.1/24"));
        assert_eq!(inet("10.0.0.1/33"), None);
        assert!(same_as(&Kind::Float4, "0.1", "0.10000000149011612"));
        assert!(same_as(&Kind::Float4, "0.1", "0.1"));
        assert!(same_as(&Kind::Float4, "3.4028235e+38", "3.4028234663852886e+38"));
        assert!(same_as(&Kind::Float4, "NaN", "NaN"));
        assert!(same_as(&Kind::Float4, "-Infinity", "-Infinity"));
        assert!(!same_as(&Kind::Float4, "0.1", "0.1000001"));
        assert!(!same_as(&Kind::Float4, "0.1", "0.1000000014901162"), "close is not equal");
        assert!(!same_as(&Kind::Float4, "Infinity", "1e300"));
        assert!(!same_as(&Kind::Float4, "0", "1e-50"));
        assert!(!same_as(&Kind::Float4, "0", "-0"), "the sign of zero is data");
        assert!(same_as(&Kind::TimestampTz, "2020-01-01 10:00:00", "2020-01-01 11:00:00+01"));
        assert!(!same_as(&Kind::TimestampTz, "2020-01-01 10:00:00", "2020-01-01 10:00:00+01"));
    }
}
