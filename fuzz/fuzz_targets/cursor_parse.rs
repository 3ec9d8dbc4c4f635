//! Every cursor parser on arbitrary text: no panic, and what parses prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_cursor::{Cursor, CursorKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = text.parse::<Cursor>();
    for kind in [CursorKind::PgLsn, CursorKind::MysqlGtid, CursorKind::MariadbGtid, CursorKind::OracleScn, CursorKind::CrdbHlc] {
        if let Ok(c) = Cursor::parse_as(kind, text) {
            assert_eq!(Cursor::parse_as(kind, &c.to_string()).unwrap(), c);
        }
    }
});
