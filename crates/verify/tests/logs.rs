//! Capturing verify's log events in a test: a minimal `tracing` subscriber that keeps each
//! event's fields (`message` among them) as text. Events are captured on the calling thread,
//! so the run under test goes on a current-thread runtime.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One event: field name → value as text.
pub type Line = BTreeMap<String, String>;

#[derive(Clone, Default)]
struct Sink {
    lines: Arc<Mutex<Vec<Line>>>,
    next_span: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut Line);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Sink {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line::new();
        line.insert("level".into(), event.metadata().level().to_string().to_lowercase());
        event.record(&mut Fields(&mut line));
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Runs `f` with every event on this thread captured; returns its result and the events.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Line>) {
    let sink = Sink::default();
    molt_log::keep_call_sites_asking();
    let out = tracing::subscriber::with_default(sink.clone(), f);
    let lines = sink.lines.lock().map(|l| l.clone()).unwrap_or_default();
    (out, lines)
}

/// The `mismatching table definition` events of `table` (`schema.table` split on the dot).
pub fn definition_lines<'a>(lines: &'a [Line], table: &str) -> Vec<&'a Line> {
    let (schema, name) = table.split_once('.').unwrap_or(("public", table));
    lines
        .iter()
        .filter(|l| {
            l.get("message").map(String::as_str) == Some("mismatching table definition")
                && l.get("table_schema").map(String::as_str) == Some(schema)
                && l.get("table_name").map(String::as_str) == Some(name)
        })
        .collect()
}
