//! Type spellings from catalogs on arbitrary text: no panic in parsing or mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_schema::{ColumnType, SourceDialect, TargetDialect, map_type};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for d in [SourceDialect::Postgres, SourceDialect::Mysql, SourceDialect::Oracle] {
        if let Ok(ty) = ColumnType::parse(d, text) {
            let _ = map_type(d, &ty, TargetDialect::Cockroach);
            let _ = map_type(d, &ty, TargetDialect::Postgres);
        }
    }
});
