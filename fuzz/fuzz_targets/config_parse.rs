//! The reference target's configuration parser, `Config::parse(origin, text)`, on any
//! input taken as UTF-8 (lossy): errors are fine, panics are not. An error must name a
//! field and, when it has a line, a line inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reference_target::control::Config;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    // A profile path is read from disk: keep the fuzzer away from special files that
    // block or never end (reading them is the operator's choice, not a parser bug).
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    match Config::parse("<fuzz>", &text) {
        Ok(c) => {
            let _ = format!("{c:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty());
            if let Some(line) = e.line {
                let lines = text.split('\n').count();
                assert!(
                    line >= 1 && line <= lines,
                    "error line {line} outside 1..={lines}: {msg}"
                );
            }
        }
    }
});
