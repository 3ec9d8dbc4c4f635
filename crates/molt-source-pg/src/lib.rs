//! PostgreSQL access for sources and PostgreSQL-wire targets (CockroachDB answers the same
//! catalog queries).
//!
//! Start from [`connect()`] (a pool from a [`molt_url::ConnUrl`], with errors that say what to
//! fix), [`PgCatalog`] (tables, columns, keys and enums as [`molt_schema::Table`]s),
//! [`snapshot::pin_snapshot`] (the consistent point of a load: exported snapshot plus the LSN
//! replication starts from), [`export`] (key-range shards and `COPY … TO STDOUT`) and
//! [`PgSnapshot`], both behind `molt-source`'s export traits.

mod catalog;
mod connect;
pub mod decode;
pub mod export;
mod session;
pub mod snapshot;

pub use catalog::PgCatalog;
pub use connect::{connect, connect_options};
pub use session::{ColumnTypeInfo, PgSnapshot, column_type_details, column_types};
