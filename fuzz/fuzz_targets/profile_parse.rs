//! Capability profiles, `Profile::parse(origin, text)`, on any input taken as UTF-8
//! (lossy): errors are fine, panics are not.
#![no_main]

use harness::api::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    match Profile::parse("<fuzz>", &text) {
        Ok(p) => {
            let _ = format!("{p:?}");
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
});
