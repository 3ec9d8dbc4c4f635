//! pgoutput bytes from the network must never panic the decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = molt_source_pg::decode::decode(data);
});
