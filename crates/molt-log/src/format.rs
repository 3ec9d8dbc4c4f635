//! The event formatters.

use std::fmt::{self, Write as _};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The three line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// MOLT fetch/verify JSON lines (the default).
    Json,
    /// Human-readable lines (`--use-console-writer`): `time LVL message key=value`.
    Console,
    /// Replicator text: `LEVEL [time] message key=value`.
    Text,
}

/// Collected `(name, value)` pairs in the order they were recorded.
#[derive(Debug, Default, Clone)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(String, Value)>,
}

impl Fields {
    fn set(&mut self, name: &str, value: Value) {
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if let Some(slot) = self.pairs.iter_mut().find(|(k, _)| k == name) {
            slot.1 = value;
        } else {
            self.pairs.push((name.to_owned(), value));
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.set(field.name(), v);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole cause chain on one line, as the reporter prints errors.
        let mut text = value.to_string();
        let mut cause = value.source();
        while let Some(c) = cause {
            let _ = write!(text, ": {c}");
            cause = c.source();
        }
        self.set(field.name(), Value::from(text));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // A value that is JSON text of a list or object (`tables = %json_list`) is logged as
        // that list or object, as MOLT's `tables` and `skipped_unmigratable_tables` are.
        let text = format!("{value:?}");
        if text.starts_with(['[', '{'])
            && let Ok(v @ (Value::Array(_) | Value::Object(_))) = serde_json::from_str(&text)
        {
            self.set(field.name(), v);
            return;
        }
        self.set(field.name(), Value::from(text));
    }
}

/// A layer that keeps each span's fields so that its events can print them.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanFields;

impl<S> Layer<S> for SpanFields
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }
}

/// Formats events as MOLT lines in one of the [`LogFormat`]s.
#[derive(Debug, Clone, Copy)]
pub struct MoltFormat {
    format: LogFormat,
}

impl MoltFormat {
    /// A formatter for `format`.
    pub fn new(format: LogFormat) -> Self {
        MoltFormat { format }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() && !s.contains([' ', '"', '=']) => s.clone(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl<S, N> FormatEvent<S, N> for MoltFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    for (k, v) in &span_fields.pairs {
                        fields.set(k, v.clone());
                    }
                }
            }
        }
        event.record(&mut fields);
        let kind = match meta.target() {
            "summary" => Some("summary"),
            "data" => Some("data"),
            _ => None,
        };
        let now = chrono::Local::now();
        let message = fields.message.take().unwrap_or_default();
        match self.format {
            LogFormat::Json => {
                let mut obj = Map::new();
                obj.insert("level".into(), Value::from(level_name(meta.level())));
                if let Some(k) = kind {
                    obj.insert("type".into(), Value::from(k));
                }
                for (k, v) in fields.pairs {
                    obj.insert(k, v);
                }
                obj.insert(
                    "time".into(),
                    Value::from(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
                );
                obj.insert("message".into(), Value::from(message));
                let line = serde_json::to_string(&Value::Object(obj)).map_err(|_| fmt::Error)?;
                writeln!(writer, "{line}")
            }
            LogFormat::Console => {
                let lvl = match *meta.level() {
                    Level::TRACE => "TRC",
                    Level::DEBUG => "DBG",
                    Level::INFO => "INF",
                    Level::WARN => "WRN",
                    Level::ERROR => "ERR",
                };
                write!(writer, "{} {lvl} {message}", now.format("%H:%M:%S"))?;
                for (k, v) in &fields.pairs {
                    write!(writer, " {k}={}", plain(v))?;
                }
                writeln!(writer)
            }
            LogFormat::Text => {
                let lvl = level_name(meta.level()).to_ascii_uppercase();
                write!(
                    writer,
                    "{lvl} [{}] {message}",
                    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                )?;
                for (k, v) in &fields.pairs {
                    write!(writer, " {k}={}", plain(v))?;
                }
                writeln!(writer)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing::{info, info_span, warn};

    use super::*;
    use crate::capture;

    /// Drops the `time` key, which differs per run.
    fn without_time(line: &str) -> String {
        let mut v: Map<String, Value> = serde_json::from_str(line).unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).is_ok(),
            "{line}"
        );
        v.remove("time");
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn json_lines_follow_molt_key_order() {
        let ((), lines) = capture(LogFormat::Json, "info", || {
            info!(target: "summary", num_rows = 7u64, cdc_cursor = %"0/19E3610", net_duration_ms = 1000.0,
                  "data import on target for table complete");
            info!(table = "public.employees", "data extraction phase starting");
        });
        assert_eq!(lines.len(), 2);
        // Key order is part of the contract: level, type, fields, time, message.
        let keys: Vec<&str> =
            lines[0].split("\":").map(|s| s.rsplit('"').next().unwrap()).collect();
        assert_eq!(
            &keys[..6],
            ["level", "type", "num_rows", "cdc_cursor", "net_duration_ms", "time"]
        );
        assert_eq!(
            without_time(&lines[0]),
            r#"{"level":"info","type":"summary","num_rows":7,"cdc_cursor":"0/19E3610","net_duration_ms":1000.0,"message":"data import on target for table complete"}"#
        );
        assert_eq!(
            without_time(&lines[1]),
            r#"{"level":"info","table":"public.employees","message":"data extraction phase starting"}"#
        );
    }

    #[test]
    fn span_fields_and_errors_are_flat() {
        let err = std::io::Error::other("disk full");
        let ((), lines) = capture(LogFormat::Json, "info", || {
            let span = info_span!("table", table = "public.t", shard = 1u64);
            let _g = span.enter();
            warn!(error = &err as &dyn std::error::Error, "retrying export");
        });
        assert_eq!(
            without_time(&lines[0]),
            r#"{"level":"warn","table":"public.t","shard":1,"error":"disk full","message":"retrying export"}"#
        );
    }

    #[test]
    fn json_lists_stay_lists() {
        let tables = serde_json::to_string(&["public.a", "public.b"]).unwrap_or_default();
        let ((), lines) = capture(LogFormat::Json, "info", || {
            info!(tables = %tables, note = %"[not json", "fetch complete");
        });
        assert_eq!(
            without_time(&lines[0]),
            r#"{"level":"info","tables":["public.a","public.b"],"note":"[not json","message":"fetch complete"}"#
        );
    }

    #[test]
    fn level_filter_applies() {
        let ((), lines) = capture(LogFormat::Json, "warn", || {
            info!("hidden");
            warn!("shown");
        });
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("\"shown\""));
        assert!(crate::filter_for("fatal").is_ok());
        assert!(crate::filter_for("").is_err());
    }

    #[test]
    fn text_and_console_forms() {
        let ((), lines) = capture(LogFormat::Text, "info", || {
            info!(
                conflicts = 0u64,
                proposed = 10u64,
                target = "\"db\".\"public\".\"t\"",
                "upserted rows"
            );
        });
        let line = &lines[0];
        assert!(line.starts_with("INFO ["), "{line}");
        assert!(line.ends_with("] upserted rows conflicts=0 proposed=10 target=\"\\\"db\\\".\\\"public\\\".\\\"t\\\"\""), "{line}");
        let ((), lines) =
            capture(LogFormat::Console, "info", || info!(table = "public.t", "progress"));
        assert!(lines[0].ends_with(" INF progress table=public.t"), "{}", lines[0]);
    }
}
