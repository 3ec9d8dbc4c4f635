//! Tests against the real PostgreSQL servers of the test bed.

mod catalog;
mod connect;
