//! The one formatter per type both entry points end in: what reaches these functions is
//! already decoded (an integer, the civil parts of a date, the bytes of a UUID), so the same
//! datum read from the binlog or with a query gives the same text.

use std::fmt::Write;

use super::ValueErrorKind;

/// Integer `v` as decimal digits, after checking it fits `bits` (signed or unsigned).
pub(super) fn int(v: i128, bits: u32, unsigned: bool) -> Result<String, ValueErrorKind> {
    let (min, max) = int_range(bits, unsigned);
    if v < min || v > max {
        return Err(ValueErrorKind::OutOfRange { value: v.to_string() });
    }
    Ok(v.to_string())
}

/// The range of an integer type (`bits` at most 64).
fn int_range(bits: u32, unsigned: bool) -> (i128, i128) {
    let bits = bits.clamp(1, 64);
    if unsigned {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    }
}

/// The `bits`-bit two's-complement pattern of `v` read with the given signedness: how the
/// binlog's stored bits are reinterpreted when the decoder guessed the signedness wrong.
pub(super) fn reinterpret(v: i128, bits: u32, unsigned: bool) -> i128 {
    let bits = bits.clamp(1, 64);
    let modulus = 1i128 << bits;
    let low = v.rem_euclid(modulus);
    if !unsigned && low >= modulus / 2 { low - modulus } else { low }
}

/// `BOOL`: 0 and 1 only.
pub(super) fn boolean(v: i128) -> Result<String, ValueErrorKind> {
    match v {
        0 => Ok("false".into()),
        1 => Ok("true".into()),
        other => Err(ValueErrorKind::OutOfRange { value: other.to_string() }),
    }
}

/// `YEAR`: 0 (MySQL's `0000`) or 1901–2155.
pub(super) fn year(y: i128) -> Result<String, ValueErrorKind> {
    if y == 0 || (1901..=2155).contains(&y) {
        Ok(y.to_string())
    } else {
        Err(ValueErrorKind::OutOfRange { value: y.to_string() })
    }
}

/// `FLOAT`: the shortest text that parses back to the same `f32`.
pub(super) fn float4(f: f32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) { format!("{f:e}") } else { format!("{f}") }
}

/// `DOUBLE`: the shortest text that parses back to the same `f64`.
pub(super) fn float8(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) { format!("{f:e}") } else { format!("{f}") }
}

/// `DECIMAL`: checks `[-]digits[.digits]` and drops leading zeros and the sign of zero; the
/// scale is kept.
pub(super) fn decimal(s: &str) -> Result<String, ValueErrorKind> {
    let bad = || ValueErrorKind::Unexpected { value: abbreviate(s) };
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || frac.is_some_and(|f| !digits(f)) {
        return Err(bad());
    }
    let int_part = match int_part.trim_start_matches('0') {
        "" => "0",
        t => t,
    };
    let zero = int_part == "0" && frac.is_none_or(|f| f.bytes().all(|b| b == b'0'));
    let mut out = String::with_capacity(s.len());
    if neg && !zero {
        out.push('-');
    }
    out.push_str(int_part);
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    Ok(out)
}

/// Character data: refuses U+0000, which PostgreSQL text cannot hold.
pub(super) fn text(s: &str) -> Result<String, ValueErrorKind> {
    if s.contains('\0') {
        return Err(ValueErrorKind::Nul);
    }
    Ok(s.to_owned())
}

/// Bytes as bytea's hex input, `\x0a1b`.
pub(super) fn bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(2 + b.len() * 2);
    out.push_str("\\x");
    for byte in b {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The parts of a date and time of day, as MySQL stores them (so possibly zero or invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micro: u32,
}

impl Civil {
    /// Midnight of a date.
    pub fn date(year: u32, month: u32, day: u32) -> Civil {
        Civil { year, month, day, hour: 0, minute: 0, second: 0, micro: 0 }
    }

    fn is_midnight(&self) -> bool {
        self.hour == 0 && self.minute == 0 && self.second == 0 && self.micro == 0
    }

    fn push_date(&self, out: &mut String) {
        push_padded(out, self.year, 4);
        out.push('-');
        push_padded(out, self.month, 2);
        out.push('-');
        push_padded(out, self.day, 2);
    }

    fn date_text(&self) -> String {
        let mut out = String::with_capacity(10);
        self.push_date(&mut out);
        out
    }

    // Written digit by digit: this runs for every temporal value of a load.
    fn datetime_text(&self) -> String {
        let mut out = String::with_capacity(30);
        self.push_date(&mut out);
        out.push(' ');
        push_padded(&mut out, self.hour, 2);
        out.push(':');
        push_padded(&mut out, self.minute, 2);
        out.push(':');
        push_padded(&mut out, self.second, 2);
        push_fraction(&mut out, self.micro);
        out
    }

    /// Checks the parts name a real date and time; `with_time` says what to print in errors.
    fn check(&self, with_time: bool) -> Result<(), ValueErrorKind> {
        let shown = || if with_time { self.datetime_text() } else { self.date_text() };
        if self.year == 0 || self.month == 0 || self.day == 0 {
            return Err(ValueErrorKind::ZeroDate { value: shown() });
        }
        let real_date = self.year <= 9999
            && self.month <= 12
            && self.day <= days_in_month(self.year, self.month);
        let real_time =
            self.hour < 24 && self.minute < 60 && self.second < 60 && self.micro < 1_000_000;
        if !real_date || !real_time {
            return Err(ValueErrorKind::InvalidDate { value: shown() });
        }
        Ok(())
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut String, n: u32, width: usize) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in buf.len() - i..width {
        out.push('0');
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// Appends `.ffffff` without trailing zeros, or nothing for whole seconds (PostgreSQL's own
/// form).
fn push_fraction(out: &mut String, micro: u32) {
    if micro == 0 {
        return;
    }
    out.push('.');
    push_padded(out, micro, 6);
    while out.ends_with('0') {
        out.pop();
    }
}

/// [`push_fraction`] as a string of its own.
fn fraction(micro: u32) -> String {
    let mut out = String::new();
    push_fraction(&mut out, micro);
    out
}

/// `DATE`: `YYYY-MM-DD`.
pub(super) fn date(c: Civil) -> Result<String, ValueErrorKind> {
    c.check(false)?;
    if !c.is_midnight() {
        return Err(ValueErrorKind::Unexpected { value: c.datetime_text() });
    }
    Ok(c.date_text())
}

/// `DATETIME`: `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub(super) fn datetime(c: Civil) -> Result<String, ValueErrorKind> {
    c.check(true)?;
    Ok(c.datetime_text())
}

/// `TIMESTAMP` given in UTC: `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
pub(super) fn timestamp(c: Civil) -> Result<String, ValueErrorKind> {
    c.check(true)?;
    let mut text = c.datetime_text();
    text.push_str("+00");
    Ok(text)
}

/// The UTC civil time of `secs` seconds and `micro` microseconds after the Unix epoch.
pub(super) fn civil_from_unix(secs: i64, micro: u32) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days, for days after 0000-03-01 (timestamps are positive).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let part = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    Civil {
        year: part(year),
        month: part(month),
        day: part(day),
        hour: part(rem / 3600),
        minute: part(rem % 3600 / 60),
        second: part(rem % 60),
        micro,
    }
}

/// `TIME`: `HH:MM:SS[.ffffff]` for `00:00:00`–`24:00:00`; anything else cannot be a time of
/// day and is refused with its INTERVAL spelling.
pub(super) fn time(
    negative: bool,
    hours: u64,
    minute: u32,
    second: u32,
    micro: u32,
) -> Result<String, ValueErrorKind> {
    let interval = || {
        let sign = if negative { "-" } else { "" };
        format!("{sign}{hours:02}:{minute:02}:{second:02}{}", fraction(micro))
    };
    if minute >= 60 || second >= 60 || micro >= 1_000_000 {
        return Err(ValueErrorKind::InvalidDate { value: interval() });
    }
    let zero = hours == 0 && minute == 0 && second == 0 && micro == 0;
    let past_day = hours > 24 || (hours == 24 && (minute, second, micro) != (0, 0, 0));
    if (negative && !zero) || past_day {
        return Err(ValueErrorKind::TimeOutOfRange { interval: interval() });
    }
    Ok(format!("{hours:02}:{minute:02}:{second:02}{}", fraction(micro)))
}

/// `BIT(n)`: the big-endian `bytes` as exactly `width` binary digits (all of them without a
/// width).
pub(super) fn bit(width: Option<u32>, bytes: &[u8]) -> Result<String, ValueErrorKind> {
    let mut digits = String::with_capacity(bytes.len() * 8);
    for b in bytes {
        let _ = write!(digits, "{b:08b}");
    }
    let Some(width) = width else { return Ok(digits) };
    let width_digits = width as usize;
    let significant = digits.trim_start_matches('0').len();
    if significant > width_digits {
        return Err(ValueErrorKind::BitWidth { bits: significant, width });
    }
    let start = digits.len().saturating_sub(width_digits);
    let tail = digits.get(start..).unwrap_or_default();
    Ok(format!("{}{tail}", "0".repeat(width_digits.saturating_sub(tail.len()))))
}

/// `ENUM` by its 1-based index.
pub(super) fn enum_index(labels: &[String], index: i64) -> Result<String, ValueErrorKind> {
    usize::try_from(index)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| labels.get(i))
        .map(|l| text(l))
        .unwrap_or(Err(ValueErrorKind::EnumIndex { index, labels: labels.len() }))
}

/// `ENUM` by its label (as a query returns it): `''` that is no label is index 0.
pub(super) fn enum_label(labels: &[String], label: &str) -> Result<String, ValueErrorKind> {
    let known =
        if labels.is_empty() { !label.is_empty() } else { labels.iter().any(|l| l == label) };
    match (known, label.is_empty()) {
        (true, _) => text(label),
        // What a query returns for index 0, the value MySQL stores for an invalid one.
        (false, true) => Err(ValueErrorKind::EnumIndex { index: 0, labels: labels.len() }),
        (false, false) => Err(ValueErrorKind::UnknownLabel { label: label.to_owned() }),
    }
}

/// `SET` from its bitmask: the members in declaration order, joined by `,`.
pub(super) fn set(labels: &[String], mask: u64) -> Result<String, ValueErrorKind> {
    let beyond = match u32::try_from(labels.len()) {
        Ok(n) if n < 64 => mask >> n,
        _ => 0,
    };
    if beyond != 0 {
        return Err(ValueErrorKind::SetBits { mask, labels: labels.len() });
    }
    let members: Vec<&str> = labels
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            u32::try_from(*i).ok().and_then(|i| 1u64.checked_shl(i)).is_some_and(|b| mask & b != 0)
        })
        .map(|(_, l)| l.as_str())
        .collect();
    text(&members.join(","))
}

/// The bitmask of a `SET` value as a query returns it (`a,c`).
pub(super) fn set_mask(labels: &[String], value: &str) -> Result<u64, ValueErrorKind> {
    let mut mask = 0u64;
    if value.is_empty() {
        return Ok(0);
    }
    for member in value.split(',') {
        let i = labels
            .iter()
            .position(|l| l == member)
            .filter(|&i| i < 64)
            .ok_or_else(|| ValueErrorKind::UnknownLabel { label: member.to_owned() })?;
        mask |= 1u64 << i;
    }
    Ok(mask)
}

/// A UUID's 16 bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub(super) fn uuid(b: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// An IPv4 address as `a.b.c.d`.
pub(super) fn inet4(b: &[u8; 4]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

/// An IPv6 address as MariaDB's `INET6` prints it: the first longest run of zero groups (even
/// a single one) as `::`, IPv4-mapped (`::ffff:1.2.3.4`) and IPv4-compatible (`::1.2.3.4`)
/// addresses with their IPv4 tail.
pub(super) fn inet6(b: &[u8; 16]) -> String {
    let words: [u16; 8] = std::array::from_fn(|i| u16::from_be_bytes([b[2 * i], b[2 * i + 1]]));
    let (mut gap_pos, mut gap_len) = (None::<usize>, 0usize);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if i - start > gap_len {
                (gap_pos, gap_len) = (Some(start), i - start);
            }
        } else {
            i += 1;
        }
    }
    let ipv4_tail = gap_pos == Some(0) && (gap_len == 6 || (gap_len == 5 && words[5] == 0xffff));
    let mut out = String::with_capacity(39);
    let mut i = 0;
    while i < 8 {
        if Some(i) == gap_pos {
            if i == 0 {
                out.push(':');
            }
            out.push(':');
            i += gap_len;
            continue;
        }
        if i == 6 && ipv4_tail {
            out.push_str(&inet4(&[b[12], b[13], b[14], b[15]]));
            break;
        }
        let _ = write!(out, "{:x}", words[i]);
        if i < 7 {
            out.push(':');
        }
        i += 1;
    }
    out
}

/// A value for an error message: at most 40 characters.
pub(super) fn abbreviate(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
