//! Reading PostgreSQL's ISO text forms (what `COPY … TO` prints in a UTC session with
//! `DateStyle = ISO`, and what a non-PostgreSQL source writes for the target): decimals,
//! `bytea` hex, dates and timestamps (`BC` last, an optional `±HH[:MM]` offset), times of day.
//! Binary COPY and Parquet encoders share these.

use molt_schema::civil::days_from_civil;

/// The sign, integer digits and fraction digits of `-12.3400` (either may be empty, not both);
/// `None` for anything else (exponents, `NaN`).
pub fn decimal_parts(text: &str) -> Option<(bool, &str, &str)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((negative, int, frac))
}

/// The bytes of `\x0aff`.
pub fn bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

fn number(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn strip_bc(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    }
}

/// `YYYY-MM-DD` (or `… BC`) as days since 1970-01-01.
pub fn date_days(text: &str) -> Option<i64> {
    let (ymd, bc) = strip_bc(text);
    civil_days(ymd, bc)
}

fn civil_days(ymd: &str, bc: bool) -> Option<i64> {
    let mut parts = ymd.splitn(3, '-');
    let (y, m, d) = (number(parts.next()?)?, number(parts.next()?)?, number(parts.next()?)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1 {
        return None;
    }
    Some(days_from_civil(if bc { 1 - y } else { y }, m, d))
}

/// `HH:MM:SS[.ffffff]` as microseconds.
pub fn clock_micros(text: &str) -> Option<i64> {
    let (hms, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = hms.splitn(3, ':');
    let (h, m, s) = (number(parts.next()?)?, number(parts.next()?)?, number(parts.next()?)?);
    if frac.len() > 6 || !(frac.is_empty() || number(frac).is_some()) || m > 59 || s > 60 {
        return None;
    }
    let micros = if frac.is_empty() { 0 } else { number(frac)? * 10i64.pow(6 - frac.len() as u32) };
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + micros)
}

/// Whether a timestamp's text ends in a zone offset (`+00`, `-05:30`).
pub fn has_offset(text: &str) -> bool {
    let (body, _) = strip_bc(text);
    body.split_once(' ').is_some_and(|(_, rest)| rest.contains(['+', '-']))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM]][ BC]` as microseconds since 1970-01-01 UTC (no
/// offset: UTC).
pub fn timestamp_micros(text: &str) -> Option<i64> {
    let (body, bc) = strip_bc(text);
    let (date, rest) = body.split_once(' ')?;
    let (clock, offset) = match rest.find(['+', '-']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let offset_secs = match offset {
        None => 0,
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let o = &o[1..];
            let (h, m) = o.split_once(':').unwrap_or((o, "0"));
            sign * (number(h)? * 3600 + number(m)? * 60)
        }
    };
    civil_days(date, bc)?
        .checked_mul(86_400_000_000)?
        .checked_add(clock_micros(clock)?)?
        .checked_sub(offset_secs * 1_000_000)
}
