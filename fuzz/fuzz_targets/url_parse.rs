//! The URL parser on arbitrary text: no panic, and a parsed URL re-parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_url::ConnUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(url) = ConnUrl::parse(text) {
        let _ = url.check_tls(false);
        let _ = url.redacted();
        if let Ok(again) = ConnUrl::parse(&url.expose()) {
            assert_eq!(again.password(), url.password());
        }
    }
});
