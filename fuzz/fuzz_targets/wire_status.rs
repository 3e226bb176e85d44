//! Status fields and opcodes: `Status::from_field` / `to_field` / `from_code` / `Display`,
//! `NvmOpcode` / `AdminOpcode` / `FabricsType` from any byte. Never panic; every 15-bit
//! status field decodes and encodes back to the same bits.
#![no_main]

use harness::wire::{AdminOpcode, FabricsType, NvmOpcode, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for w in data.chunks(2) {
        let field = u16::from_le_bytes([w[0], *w.get(1).unwrap_or(&0)]);
        let s = Status::from_field(field);
        assert_eq!(
            s.to_field(),
            field & 0x7fff,
            "status field round trip of {field:#06x}"
        );
        assert!(
            s.check().is_ok(),
            "a decoded status has out-of-range bits: {s:?}"
        );
        let _ = (s.to_string(), s.name(), s.is_success(), s.code());
        let c = Status::from_code(field);
        assert_eq!(Status::from_code(c.code()), c, "status code round trip");
        let _ = c.to_string();
    }
    for &b in data {
        if let Ok(o) = NvmOpcode::try_from(b) {
            assert_eq!(u8::from(o), b);
            let _ = o.name();
        }
        if let Ok(o) = AdminOpcode::try_from(b) {
            assert_eq!(u8::from(o), b);
            let _ = o.name();
        }
        if let Ok(o) = FabricsType::try_from(b) {
            assert_eq!(u8::from(o), b);
            let _ = o.name();
        }
    }
});
