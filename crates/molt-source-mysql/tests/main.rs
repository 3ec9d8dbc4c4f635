//! Tests against the real MariaDB server of the test bed.

mod binlog;
mod catalog;
mod connect;
mod value;
