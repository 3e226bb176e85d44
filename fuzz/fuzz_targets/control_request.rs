//! The control channel's messages (two-host mode): every line of the input, taken as UTF-8
//! (lossy), is parsed as the target parses a runner's request
//! (`reference_target::remote::proto::parse_request`) and as the runner parses a target's
//! reply. Errors are fine, panics are not; a refusal names what is wrong; whatever parses
//! serializes to a line that parses back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reference_target::remote::proto::{parse_request, Reply};

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        match parse_request(line) {
            Ok(req) => {
                let again = serde_json::to_string(&req).expect("a request serializes");
                assert!(!again.contains('\n'), "one line: {again}");
                assert_eq!(parse_request(&again).expect("parses back"), req, "{again}");
            }
            Err(m) => assert!(m.starts_with("malformed request: "), "{m}"),
        }
        if let Ok(reply) = serde_json::from_str::<Reply>(line) {
            let again = serde_json::to_string(&reply).expect("a reply serializes");
            assert!(!again.contains('\n'), "one line: {again}");
            assert_eq!(serde_json::from_str::<Reply>(&again).unwrap(), reply, "{again}");
        }
    }
});
