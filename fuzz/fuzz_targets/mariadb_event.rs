//! MariaDB event bodies (and the XA pieces both flavors log) from the network must never
//! panic their parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_source_mysql::binlog::mariadb;

fuzz_target!(|data: &[u8]| {
    let _ = mariadb::parse_gtid(data);
    let _ = mariadb::parse_gtid_list(data);
    let _ = mariadb::parse_binlog_checkpoint(data);
    let _ = mariadb::parse_annotate_rows(data);
    let _ = mariadb::parse_xa_prepare(data);
    let _ = mariadb::check_transaction_payload(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mariadb::parse_xid_text(text);
    }
});
