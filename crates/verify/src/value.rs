//! Comparing values by meaning, not by spelling.
//!
//! Both sides are read as PostgreSQL text (`col::text`, session `TimeZone = UTC`). Equal text
//! is equal; otherwise the column's kind decides: numerics by value (`1.50` = `1.5`), floats
//! as IEEE values (NaN = NaN, `-0` ≠ `0`), timestamps with zone as instants, JSON by structure,
//! arrays element-wise with the element's kind. A column of another type on each side (one
//! of MOLT's pairs) gets a kind of its own, see [`crate::pairs`]. Keys are ordered the way
//! the servers sort them, so the merge of two key-ordered streams never misaligns.

use std::cmp::Ordering;

use molt_schema::SqlType;
use molt_schema::civil::days_from_civil;

use crate::pairs;

/// How a column's values compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Integers.
    Int,
    /// Exact decimals.
    Numeric,
    /// Floating point.
    Float,
    /// `FLOAT4` on the source, `FLOAT8` on the target: the target holds the `FLOAT4` value
    /// (see [`crate::pairs::float4_in_float8`]).
    Float4,
    /// Timestamps with zone: compared as instants (a text without zone is read as UTC).
    TimestampTz,
    /// JSON: compared as structures.
    Json,
    /// `UUID` against a string: compared as 128-bit values.
    Uuid,
    /// `BOOL` against `INT2`: `true` is 1, `false` is 0.
    BoolInt,
    /// `BOOL` against a bit string: the bits as a number, 1 is `true`, 0 is `false`.
    BoolBits,
    /// `INET` against a string: address and netmask.
    Inet,
    /// Arrays of another kind.
    Array(Box<Kind>),
    /// Everything else: exact text.
    Text,
}

impl Kind {
    /// The kind of a target type.
    pub fn of(ty: &SqlType) -> Kind {
        match ty {
            SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Oid => Kind::Int,
            SqlType::Decimal { .. } => Kind::Numeric,
            SqlType::Float4 | SqlType::Float8 => Kind::Float,
            SqlType::TimestampTz(_) => Kind::TimestampTz,
            SqlType::Json | SqlType::Jsonb => Kind::Json,
            SqlType::Array(inner) => Kind::Array(Box::new(Kind::of(inner))),
            _ => Kind::Text,
        }
    }
}

/// Whether two values (NULL as `None`) mean the same; `a` is the source's, `b` the target's.
pub fn same(kind: &Kind, a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b || same_text(kind, a, b),
        _ => false,
    }
}

fn same_text(kind: &Kind, a: &str, b: &str) -> bool {
    match kind {
        Kind::Int | Kind::Numeric => {
            matches!((Decimal::parse(a), Decimal::parse(b)), (Some(x), Some(y)) if x == y)
        }
        Kind::Float => match (parse_float(a), parse_float(b)) {
            (Some(x), Some(y)) => (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits(),
            _ => false,
        },
        Kind::Float4 => pairs::float4_in_float8(a, b),
        Kind::TimestampTz => matches!((instant(a), instant(b)), (Some(x), Some(y)) if x == y),
        Kind::Uuid => matches!((pairs::uuid(a), pairs::uuid(b)), (Some(x), Some(y)) if x == y),
        Kind::BoolInt => {
            matches!((pairs::bool_or_int(a), pairs::bool_or_int(b)), (Some(x), Some(y)) if x == y)
        }
        Kind::BoolBits => {
            matches!((pairs::bool_or_bits(a), pairs::bool_or_bits(b)), (Some(x), Some(y)) if x == y)
        }
        Kind::Inet => matches!((pairs::inet(a), pairs::inet(b)), (Some(x), Some(y)) if x == y),
        Kind::Json => match (
            serde_json::from_str::<serde_json::Value>(a),
            serde_json::from_str::<serde_json::Value>(b),
        ) {
            (Ok(x), Ok(y)) => json_equal(&x, &y),
            _ => false,
        },
        Kind::Array(inner) => match (array_elements(a), array_elements(b)) {
            (Some(x), Some(y)) => {
                x.len() == y.len()
                    && x.iter().zip(&y).all(|(p, q)| same(inner, p.as_deref(), q.as_deref()))
            }
            _ => false,
        },
        Kind::Text => false,
    }
}

fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => {
            x == y
                || matches!((Decimal::parse(&x.to_string()), Decimal::parse(&y.to_string())), (Some(p), Some(q)) if p == q)
        }
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// A decimal reduced to sign, digits without leading/trailing zeros, and exponent, so that
/// equal values compare equal whatever their scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    /// Value = 0.digits × 10^exp.
    exp: i64,
    special: Option<&'static str>,
}

impl Decimal {
    /// Parses `-12.3400`, `1e-5`, `NaN`, `Infinity`.
    pub fn parse(s: &str) -> Option<Decimal> {
        let special = match s {
            "NaN" => Some("NaN"),
            "Infinity" => Some("Infinity"),
            "-Infinity" => Some("-Infinity"),
            _ => None,
        };
        if special.is_some() {
            return Some(Decimal { negative: false, digits: vec![], exp: 0, special });
        }
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exp_part) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).map(|c| c - b'0').collect();
        let lead = all.iter().take_while(|d| **d == 0).count();
        let mut digits = all[lead..].to_vec();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Decimal { negative: false, digits, exp: 0, special: None });
        }
        let exp = i64::try_from(int.len()).ok()? - i64::try_from(lead).ok()? + exp_part;
        Some(Decimal { negative, digits, exp, special: None })
    }

    fn cmp_value(&self, other: &Decimal) -> Ordering {
        let rank = |d: &Decimal| match d.special {
            Some("NaN") => 3,
            Some("Infinity") => 2,
            Some(_) => -2,
            None => 0,
        };
        match rank(self).cmp(&rank(other)) {
            Ordering::Equal if self.special.is_some() => return Ordering::Equal,
            Ordering::Equal => {}
            o => return o,
        }
        let sign = |d: &Decimal| {
            if d.digits.is_empty() {
                0
            } else if d.negative {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal => {}
            o => return o,
        }
        let mag = self.exp.cmp(&other.exp).then_with(|| self.digits.cmp(&other.digits));
        if sign(self) < 0 { mag.reverse() } else { mag }
    }
}

/// Microseconds since the epoch of a `timestamptz` text (`2026-12-02 05:39:17.123456+05:30`,
/// `infinity`), or `None` when it does not parse. A `timestamp` text (no zone) is read as
/// UTC: how verify compares `TIMESTAMP` with `TIMESTAMPTZ`, and how a copy into a
/// `TIMESTAMPTZ` column reads it in a UTC session (CockroachDB's default).
pub fn instant(s: &str) -> Option<i128> {
    match s {
        "infinity" => return Some(i128::MAX),
        "-infinity" => return Some(i128::MIN),
        _ => {}
    }
    let (body, bc) = match s.strip_suffix(" BC") {
        Some(b) => (b, true),
        None => (s, false),
    };
    let (date, rest) = body.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let year = if bc { 1 - year } else { year };
    let (time, tz) = match rest.rfind(['+', '-']) {
        Some(at) if at >= 8 => rest.split_at(at),
        Some(_) => return None,
        None => (rest, "+00"),
    };
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let sec_text = t.next()?;
    let (secs, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let secs: i64 = secs.parse().ok()?;
    let micros: i64 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
    let sign = if tz.starts_with('-') { -1 } else { 1 };
    let mut z = tz[1..].split(':');
    let zh: i64 = z.next()?.parse().ok()?;
    let zm: i64 = z.next().map_or(Some(0), |v| v.parse().ok())?;
    let zs: i64 = z.next().map_or(Some(0), |v| v.parse().ok())?;
    let offset = sign * (zh * 3600 + zm * 60 + zs);
    let days = days_from_civil(year, month, day);
    let total =
        (days * 86_400 + h * 3600 + m * 60 + secs - offset) as i128 * 1_000_000 + micros as i128;
    Some(total)
}

/// The elements of a one-dimensional array literal (`{a,"b c",NULL}`), NULL as `None`.
pub fn array_elements(s: &str) -> Option<Vec<Option<String>>> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        let mut cur = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => cur.push(chars.next()?),
                    '"' => break,
                    c => cur.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' {
                    return None; // nested arrays are compared as text
                }
                cur.push(c);
                chars.next();
            }
        }
        out.push(if !quoted && cur == "NULL" { None } else { Some(cur) });
        match chars.next() {
            Some(',') => continue,
            None => return Some(out),
            Some(_) => return None,
        }
    }
}

/// Orders two key values the way the servers sort them.
pub fn cmp_key(kind: &Kind, a: &str, b: &str) -> Ordering {
    match kind {
        Kind::Int | Kind::Numeric => match (Decimal::parse(a), Decimal::parse(b)) {
            (Some(x), Some(y)) => x.cmp_value(&y),
            _ => a.cmp(b),
        },
        Kind::Float => match (parse_float(a), parse_float(b)) {
            (Some(x), Some(y)) => cmp_float(x, y),
            _ => a.cmp(b),
        },
        Kind::Float4 => match (pairs::float4(a), pairs::float4(b)) {
            (Some(x), Some(y)) => cmp_float(f64::from(x), f64::from(y)),
            _ => a.cmp(b),
        },
        Kind::TimestampTz => match (instant(a), instant(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a.cmp(b),
        },
        _ => a.as_bytes().cmp(b.as_bytes()),
    }
}

/// PostgreSQL's float order: NaN above every number, -0 equal to 0.
fn cmp_float(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// Orders two composite keys column by column.
pub fn cmp_keys(kinds: &[Kind], a: &[Option<String>], b: &[Option<String>]) -> Ordering {
    for ((k, x), y) in kinds.iter().zip(a).zip(b) {
        let o = match (x, y) {
            (Some(x), Some(y)) => cmp_key(k, x, y),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_by_value() {
        assert!(same(&Kind::Numeric, Some("1.50"), Some("1.5")));
        assert!(same(&Kind::Numeric, Some("-0.00"), Some("0")));
        assert!(same(&Kind::Numeric, Some("1e3"), Some("1000.000")));
        assert!(!same(&Kind::Numeric, Some("1.5"), Some("1.500001")));
        assert!(same(&Kind::Numeric, Some("NaN"), Some("NaN")));
        assert_eq!(cmp_key(&Kind::Int, "9", "10"), Ordering::Less);
        assert_eq!(cmp_key(&Kind::Int, "-10", "-9"), Ordering::Less);
        assert_eq!(cmp_key(&Kind::Numeric, "0.001", "0.01"), Ordering::Less);
        assert_eq!(cmp_key(&Kind::Numeric, "-0.5", "0"), Ordering::Less);
    }

    #[test]
    fn floats_as_ieee_values() {
        assert!(same(&Kind::Float, Some("NaN"), Some("NaN")));
        assert!(same(&Kind::Float, Some("1e308"), Some("1.0e308")));
        assert!(!same(&Kind::Float, Some("-0"), Some("0")), "the sign of zero is data");
        assert!(!same(&Kind::Float, Some("Infinity"), Some("-Infinity")));
        assert_eq!(cmp_key(&Kind::Float, "NaN", "Infinity"), Ordering::Greater);
    }

    #[test]
    fn timestamps_as_instants() {
        assert!(same(
            &Kind::TimestampTz,
            Some("2026-12-02 05:39:17.5+05:30"),
            Some("2026-12-02 00:09:17.500000+00")
        ));
        assert!(!same(
            &Kind::TimestampTz,
            Some("2026-12-02 05:39:17.5+00"),
            Some("2026-12-02 05:39:17.500001+00")
        ));
        assert!(same(
            &Kind::TimestampTz,
            Some("2000-01-01 00:00:00+00:00"),
            Some("2000-01-01 00:00:00+00")
        ));
        assert_eq!(instant("1970-01-01 00:00:00+00"), Some(0));
        assert_eq!(instant("1970-01-01 01:00:00+01"), Some(0));
        assert!(instant("4713-01-01 00:00:00+00 BC").is_some());
        assert!(!same(
            &Kind::Text,
            Some("2026-01-01 00:00:00"),
            Some("2026-01-01 00:00:00.000001")
        ));
    }

    #[test]
    fn json_by_structure_and_arrays_elementwise() {
        assert!(same(
            &Kind::Json,
            Some(r#"{"a": 1, "b": [1, 2.50]}"#),
            Some(r#"{"b":[1,2.5],"a":1}"#)
        ));
        assert!(!same(&Kind::Json, Some(r#"{"a": 1}"#), Some(r#"{"a": "1"}"#)));
        let arr = Kind::Array(Box::new(Kind::Numeric));
        assert!(same(&arr, Some("{1.50,NULL}"), Some("{1.5,NULL}")));
        assert!(!same(&arr, Some("{1,NULL}"), Some("{1,2}")));
        assert_eq!(
            array_elements(r#"{a,"b \"c\"",NULL,"NULL",""}"#),
            Some(vec![
                Some("a".into()),
                Some("b \"c\"".into()),
                None,
                Some("NULL".into()),
                Some(String::new())
            ])
        );
    }

    #[test]
    fn null_is_not_empty_and_trailing_space_counts() {
        assert!(!same(&Kind::Text, None, Some("")));
        assert!(!same(&Kind::Text, Some("a "), Some("a")));
        assert!(same(&Kind::Text, None, None));
    }
}
