//! Tests against the real MariaDB server of the test bed.

mod catalog;
mod connect;
