//! JSON: MariaDB's text checked against what PostgreSQL's `jsonb` accepts, MySQL 8's binary
//! JSON rendered as text, and MySQL 8's partial updates applied to a before image.
//!
//! MariaDB's `json_valid` accepts more than RFC 8259 (`[1.]`, `"\x"`), and `jsonb` refuses
//! `\u0000` and lone surrogates, so text is parsed strictly and refused with the reason rather
//! than failing later on the target without the column's name. Text that passes is written
//! unchanged. Duplicate keys are kept as they are; `jsonb` keeps the last one.

use mysql_async::binlog::jsonb::{self, JsonContainer, JsonDom, JsonNumber, JsonScalar};
use mysql_async::binlog::jsondiff::{JsonDiff, JsonDiffOperation};

use super::{Subject, ValueError, ValueErrorKind};

/// Deeper documents are refused (MySQL allows 100 levels) so that parsing cannot exhaust the
/// stack.
const MAX_DEPTH: usize = 512;

/// A JSON document: numbers keep their digits, objects their member order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

fn invalid(reason: impl Into<String>) -> ValueErrorKind {
    ValueErrorKind::Json { reason: reason.into() }
}

/// MariaDB JSON text, checked; written as it is.
pub(super) fn text(s: &str) -> Result<String, ValueErrorKind> {
    parse(s)?;
    Ok(s.to_owned())
}

/// MySQL 8 binary JSON as text.
pub(super) fn from_jsonb(v: &jsonb::Value<'_>) -> Result<String, ValueErrorKind> {
    let dom =
        v.clone().parse().map_err(|e| invalid(format!("binary JSON does not decode: {e}")))?;
    let mut out = String::new();
    render(&from_dom(dom, 0)?, &mut out)?;
    Ok(out)
}

/// `mysql_common`'s DOM as ours: decimals keep their digits, dates and times become the
/// strings MySQL prints for them, other opaque values `base64:type<id>:<data>` as MySQL does.
fn from_dom(dom: JsonDom, depth: usize) -> Result<Json, ValueErrorKind> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match dom {
        JsonDom::Container(JsonContainer::Array(items)) => Json::Array(
            items.into_iter().map(|i| from_dom(i, depth + 1)).collect::<Result<_, _>>()?,
        ),
        JsonDom::Container(JsonContainer::Object(members)) => Json::Object(
            members
                .into_iter()
                .map(|(k, v)| Ok((k, from_dom(v, depth + 1)?)))
                .collect::<Result<_, ValueErrorKind>>()?,
        ),
        JsonDom::Scalar(JsonScalar::Null) => Json::Null,
        JsonDom::Scalar(JsonScalar::Boolean(b)) => Json::Bool(b),
        JsonDom::Scalar(JsonScalar::String(s)) => Json::String(s),
        JsonDom::Scalar(JsonScalar::Number(n)) => Json::Number(match n {
            JsonNumber::Int(i) => i.to_string(),
            JsonNumber::Uint(u) => u.to_string(),
            JsonNumber::Double(d) if d.is_finite() => format!("{d:?}"),
            JsonNumber::Double(d) => return Err(invalid(format!("number {d} is not finite"))),
            JsonNumber::Decimal(d) => {
                let digits = d.to_string();
                let mut p = Parser { b: digits.as_bytes(), i: 0 };
                match p.number() {
                    Ok(n) if p.i == digits.len() => n,
                    _ => return Err(invalid(format!("decimal {digits} is not a JSON number"))),
                }
            }
        }),
        JsonDom::Scalar(JsonScalar::DateTime(t)) => Json::String(format!("{t:.6}")),
        JsonDom::Scalar(JsonScalar::Opaque(o)) => Json::String(o.to_string()),
    })
}

/// Parses RFC 8259 JSON as `jsonb` accepts it.
pub(super) fn parse(s: &str) -> Result<Json, ValueErrorKind> {
    let mut p = Parser { b: s.as_bytes(), i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.error("unexpected text after the document"));
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> ValueErrorKind {
        invalid(format!("{what} at byte {}", self.i))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, ValueErrorKind> {
        if self.b.get(self.i..self.i + word.len()) == Some(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, ValueErrorKind> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.eat(b'}') {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a member name"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(b':') {
                        return Err(self.error("expected ':'"));
                    }
                    self.ws();
                    members.push((key, self.value(depth + 1)?));
                    self.ws();
                    if self.eat(b'}') {
                        return Ok(Json::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected ',' or '}'"));
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected ',' or ']'"));
                    }
                }
            }
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Json::Number),
            _ => Err(self.error("expected a value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<String, ValueErrorKind> {
        let start = self.i;
        self.eat(b'-');
        if self.eat(b'0') {
            if matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("leading zero in a number"));
            }
        } else if self.digits() == 0 {
            return Err(self.error("invalid number"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("invalid number"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let text = self.b.get(start..self.i).unwrap_or_default();
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    fn hex4(&mut self) -> Result<u32, ValueErrorKind> {
        let digits =
            self.b.get(self.i..self.i + 4).ok_or_else(|| self.error("short \\u escape"))?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.error("invalid \\u escape"));
        }
        let s = std::str::from_utf8(digits).map_err(|_| self.error("invalid \\u escape"))?;
        let v = u32::from_str_radix(s, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, ValueErrorKind> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while matches!(self.peek(), Some(c) if c != b'"' && c != b'\\' && c >= 0x20) {
                self.i += 1;
            }
            let run = self.b.get(start..self.i).unwrap_or_default();
            out.push_str(std::str::from_utf8(run).map_err(|_| self.error("invalid UTF-8"))?);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or_else(|| self.error("unterminated string"))?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                Some(0) => return Err(ValueErrorKind::Nul),
                Some(_) => return Err(self.error("unescaped control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// After `\u`: one code point, a surrogate pair taking two escapes.
    fn unicode_escape(&mut self) -> Result<char, ValueErrorKind> {
        let first = self.hex4()?;
        let code = match first {
            0 => return Err(ValueErrorKind::Nul),
            0xD800..=0xDBFF => {
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(self.error("lone high surrogate"));
                }
                self.i += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.error("high surrogate without its low half"));
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone low surrogate")),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }
}

/// Prints `v` as MySQL does (`{"a": [1, 2]}`).
pub(super) fn render(v: &Json, out: &mut String) -> Result<(), ValueErrorKind> {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => string(s, out)?,
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(item, out)?;
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string(k, out)?;
                out.push_str(": ");
                render(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn string(s: &str, out: &mut String) -> Result<(), ValueErrorKind> {
    out.push('"');
    for c in s.chars() {
        match c {
            '\0' => return Err(ValueErrorKind::Nul),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

/// Applies MySQL 8's partial JSON update (`binlog_row_value_options=PARTIAL_JSON_UPDATES`) to
/// the column's JSON text in the before image, giving the after image's JSON text.
///
/// The operations follow MySQL's `apply_json_diffs`: `REPLACE` needs the path to exist;
/// `INSERT` adds an object member (replacing one of the same name) or inserts into an array
/// at the index (appending past its end); `REMOVE` removes an existing member or element.
///
/// # Errors
/// A [`ValueError`] of kind [`ValueErrorKind::Json`] when `before` is not JSON, a path does
/// not parse, or an operation does not apply (the before image is not the row the diff was
/// computed on), or [`ValueErrorKind::Nul`] for a string holding U+0000.
pub fn apply_json_diff(before: &str, diffs: &[JsonDiff<'_>]) -> Result<String, ValueError> {
    let fail = |kind| ValueError { subject: Subject { column: None, ty: "json".into() }, kind };
    let mut doc = parse(before).map_err(fail)?;
    for diff in diffs {
        let path = std::str::from_utf8(diff.path())
            .map_err(|_| fail(invalid("a JSON diff path is not UTF-8")))?;
        let value = match diff.value() {
            Some(v) => {
                let dom = v.clone().parse().map_err(|e| {
                    fail(invalid(format!("a JSON diff value does not decode: {e}")))
                })?;
                Some(from_dom(dom, 0).map_err(fail)?)
            }
            None => None,
        };
        let op = match diff.operation() {
            JsonDiffOperation::REPLACE => Op::Replace,
            JsonDiffOperation::INSERT => Op::Insert,
            JsonDiffOperation::REMOVE => Op::Remove,
        };
        apply(&mut doc, op, path, value).map_err(fail)?;
    }
    let mut out = String::new();
    render(&doc, &mut out).map_err(fail)?;
    Ok(out)
}

/// A JSON diff operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Replace,
    Insert,
    Remove,
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leg {
    Member(String),
    /// `[n]`.
    Index(usize),
    /// `[last]` (0) or `[last-n]`.
    FromEnd(usize),
}

impl Leg {
    /// The position in an array of `len` elements, if any.
    fn position(&self, len: usize) -> Option<usize> {
        match self {
            Leg::Index(i) => Some(*i),
            Leg::FromEnd(n) => len.checked_sub(1)?.checked_sub(*n),
            Leg::Member(_) => None,
        }
    }
}

/// Parses a MySQL JSON path without wildcards: `$`, `.name`, `."quoted name"`, `[3]`,
/// `[last]`, `[last-1]`.
fn parse_path(path: &str) -> Result<Vec<Leg>, ValueErrorKind> {
    let bad = || invalid(format!("JSON diff path {path:?} does not parse"));
    let rest = path.trim().strip_prefix('$').ok_or_else(bad)?;
    let mut p = Parser { b: rest.as_bytes(), i: 0 };
    let mut legs = Vec::new();
    loop {
        p.ws();
        match p.peek() {
            None => return Ok(legs),
            Some(b'.') => {
                p.i += 1;
                p.ws();
                if p.peek() == Some(b'"') {
                    legs.push(Leg::Member(p.string().map_err(|_| bad())?));
                } else {
                    let start = p.i;
                    while matches!(p.peek(), Some(c) if c != b'.' && c != b'[' && c != b' ') {
                        p.i += 1;
                    }
                    let name = rest.get(start..p.i).filter(|n| !n.is_empty()).ok_or_else(bad)?;
                    legs.push(Leg::Member(name.to_owned()));
                }
            }
            Some(b'[') => {
                p.i += 1;
                let end = rest.get(p.i..).and_then(|r| r.find(']')).ok_or_else(bad)?;
                let inner = rest.get(p.i..p.i + end).ok_or_else(bad)?.trim();
                p.i += end + 1;
                let number = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
                legs.push(match inner.strip_prefix("last") {
                    Some("") => Leg::FromEnd(0),
                    Some(r) => Leg::FromEnd(number(r.trim().strip_prefix('-').ok_or_else(bad)?)?),
                    None => Leg::Index(number(inner)?),
                });
            }
            Some(_) => return Err(bad()),
        }
    }
}

/// The value at `legs` below `doc`.
fn seek<'d>(doc: &'d mut Json, legs: &[Leg]) -> Option<&'d mut Json> {
    let mut at = doc;
    for leg in legs {
        at = match (at, leg) {
            (Json::Object(members), Leg::Member(name)) => {
                members.iter_mut().find(|(k, _)| k == name).map(|(_, v)| v)?
            }
            (Json::Array(items), leg) => {
                let i = leg.position(items.len())?;
                items.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(at)
}

/// Applies one operation to `doc`.
pub(super) fn apply(
    doc: &mut Json,
    op: Op,
    path: &str,
    value: Option<Json>,
) -> Result<(), ValueErrorKind> {
    let legs = parse_path(path)?;
    let missing = || invalid(format!("JSON diff path {path} is not in the before image"));
    let no_value = || invalid(format!("JSON diff at {path} carries no value"));
    if op == Op::Replace {
        *seek(doc, &legs).ok_or_else(missing)? = value.ok_or_else(no_value)?;
        return Ok(());
    }
    let (last, parent_legs) = legs.split_last().ok_or_else(missing)?;
    let parent = seek(doc, parent_legs).ok_or_else(missing)?;
    match (op, parent, last) {
        (Op::Insert, Json::Object(members), Leg::Member(name)) => {
            let v = value.ok_or_else(no_value)?;
            match members.iter_mut().find(|(k, _)| k == name) {
                Some((_, old)) => *old = v,
                None => members.push((name.clone(), v)),
            }
        }
        (Op::Insert, Json::Array(items), leg) => {
            let v = value.ok_or_else(no_value)?;
            let at = leg.position(items.len()).unwrap_or(0).min(items.len());
            items.insert(at, v);
        }
        (Op::Remove, Json::Object(members), Leg::Member(name)) => {
            let at = members.iter().position(|(k, _)| k == name).ok_or_else(missing)?;
            members.remove(at);
        }
        (Op::Remove, Json::Array(items), leg) => {
            let at = leg.position(items.len()).filter(|&i| i < items.len()).ok_or_else(missing)?;
            items.remove(at);
        }
        _ => return Err(missing()),
    }
    Ok(())
}
