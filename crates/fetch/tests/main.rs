//! fetch against the real test bed: type fidelity on every data path, the slot/snapshot
//! hand-off under concurrent writes, MOLT's log lines, and errors for bad input.

mod support;

mod bucket;
mod errors;
mod fidelity;
mod generated;
mod logs;
mod mysql;
mod parquet;
mod resume;
mod retired;
mod retries;
mod rules;
mod slot;
