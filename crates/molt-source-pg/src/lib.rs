//! PostgreSQL access for sources and PostgreSQL-wire targets (CockroachDB answers the same
//! catalog queries).
//!
//! Start from [`connect`] (a pool from a [`molt_url::ConnUrl`], with errors that say what to
//! fix) and [`PgCatalog`] (tables, columns, keys and enums as [`molt_schema::Table`]s).

mod catalog;
mod connect;

pub use catalog::PgCatalog;
pub use connect::{connect, connect_options};
