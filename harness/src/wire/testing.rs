//! Helpers of the wire tests.

use super::{Result, WireError};

/// The reserved field and byte offset a parse error names; panics on any other outcome.
pub fn reserved<R: core::fmt::Debug>(parsed: Result<R>) -> (&'static str, usize) {
    match parsed {
        Err(WireError::Reserved { what, offset }) => (what, offset),
        other => panic!("expected a reserved-field error, got {other:?}"),
    }
}

/// `b` with byte `at` set to `value`.
pub fn with_byte<const N: usize>(mut b: [u8; N], at: usize, value: u8) -> [u8; N] {
    b[at] = value;
    b
}
