//! MySQL and MariaDB access.
//!
//! Start from [`connect`] (a pool from a [`molt_url::ConnUrl`], with errors that say what to
//! fix), [`MysqlSnapshot`] (one consistent snapshot for every export session and the GTID
//! cursor, behind `molt-source`'s export traits; rows in [`export`]) and [`MysqlCatalog`] (tables of the URL's database as [`molt_schema::Table`]s, MySQL's
//! database playing the part of the schema). MariaDB's `JSON` (a `LONGTEXT` with a
//! `json_valid` check) is reported as `json`.

pub mod binlog;
mod catalog;
mod connect;
pub mod export;
pub mod grants;
pub mod snapshot;
pub mod value;

pub use catalog::MysqlCatalog;
pub use connect::{Flavor, READ_SESSION_SETTINGS, connect, connect_for_reading, server_flavor};
pub use snapshot::{MysqlSnapshot, check_source_for_replication};
