//! Private helpers: little-endian field access and reserved-field checks.
//!
//! Accessors index the buffer directly: callers (views) have checked the length, or
//! document that an unchecked view panics on a short buffer.

use super::{Result, WireError};

/// A byte range inside a structure.
pub type Field = core::ops::Range<usize>;

/// A little-endian integer that a field holds whole: what the views' generated getters
/// and setters ([`accessors!`](super::view::accessors)) read and write.
pub trait LeInt: Sized {
    /// Reads the value starting at byte `at`.
    fn read(b: &[u8], at: usize) -> Self;
    /// Writes the value starting at byte `at`.
    fn write(self, b: &mut [u8], at: usize);
}

macro_rules! le_int {
    ($($t:ty),*) => {$(
        impl LeInt for $t {
            fn read(b: &[u8], at: usize) -> $t {
                const N: usize = core::mem::size_of::<$t>();
                let mut a = [0u8; N];
                a.copy_from_slice(&b[at..at + N]);
                <$t>::from_le_bytes(a)
            }

            fn write(self, b: &mut [u8], at: usize) {
                let a = self.to_le_bytes();
                b[at..at + a.len()].copy_from_slice(&a);
            }
        }
    )*};
}

le_int!(u8, u16, u32, u64);

/// Where a field starts: a one-byte field is named by its offset (`usize`), a wider one
/// by its byte range ([`Field`]).
pub trait FieldStart {
    /// The offset of the field's first byte.
    fn first_byte(&self) -> usize;
}

impl FieldStart for usize {
    fn first_byte(&self) -> usize {
        *self
    }
}

impl FieldStart for Field {
    fn first_byte(&self) -> usize {
        self.start
    }
}

pub fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::read(b, at)
}

pub fn get_u24(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], 0])
}

pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::read(b, at)
}

pub fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::read(b, at)
}

pub fn set_u16(b: &mut [u8], at: usize, v: u16) {
    v.write(b, at);
}

/// Writes the low 24 bits of `v`.
pub fn set_u24(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 3].copy_from_slice(&v.to_le_bytes()[..3]);
}

pub fn set_u32(b: &mut [u8], at: usize, v: u32) {
    v.write(b, at);
}

pub fn set_u64(b: &mut [u8], at: usize, v: u64) {
    v.write(b, at);
}

/// Text padded with `pad` (or NULs): the bytes before the padding, read as UTF-8 (an
/// invalid sequence becomes U+FFFD).
pub fn text(b: &[u8], pad: u8) -> String {
    let end = b
        .iter()
        .rposition(|&c| c != pad && c != 0)
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Writes `s` into `b[range]`, padded with `pad`; `Err(BadValue)` naming `field`, with
/// the length of `s`, when it does not fit.
pub fn put_text(b: &mut [u8], range: Field, s: &str, pad: u8, field: &'static str) -> Result<()> {
    let dst = &mut b[range];
    if s.len() > dst.len() {
        return Err(WireError::BadValue {
            field,
            value: s.len() as u64,
        });
    }
    dst.fill(pad);
    dst[..s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

/// `Err(Truncated)` unless `len >= need`.
pub fn check_len(what: &'static str, need: usize, len: usize) -> Result<()> {
    if len < need {
        Err(WireError::Truncated {
            what,
            need,
            got: len,
        })
    } else {
        Ok(())
    }
}

/// `Err(Reserved)` naming the first nonzero byte of `b[range]`.
pub fn check_zero(b: &[u8], range: Field, what: &'static str) -> Result<()> {
    let start = range.start;
    match b[range].iter().position(|&x| x != 0) {
        Some(i) => Err(WireError::Reserved {
            what,
            offset: start + i,
        }),
        None => Ok(()),
    }
}

/// `Err(Reserved)` when `value & mask != 0`. `value` is a little-endian field starting at
/// byte `base`; the error names the byte holding the lowest offending bit.
pub fn check_bits(value: u64, mask: u64, what: &'static str, base: usize) -> Result<()> {
    let bad = value & mask;
    if bad != 0 {
        Err(WireError::Reserved {
            what,
            offset: base + bad.trailing_zeros() as usize / 8,
        })
    } else {
        Ok(())
    }
}

/// `Err(BadValue)` when `value` does not fit in `bits` bits.
pub fn check_width(value: u64, bits: u32, field: &'static str) -> Result<()> {
    if bits < 64 && value >> bits != 0 {
        Err(WireError::BadValue { field, value })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn little_endian_accessors() {
        let mut b = [0u8; 17];
        set_u16(&mut b, 0, 0x1234);
        set_u24(&mut b, 2, 0xAB_CDEF);
        set_u32(&mut b, 5, 0xDEAD_BEEF);
        set_u64(&mut b, 9, 0x0102_0304_0506_0708);
        assert_eq!(&b[..2], &[0x34, 0x12]);
        assert_eq!(&b[2..5], &[0xEF, 0xCD, 0xAB]);
        assert_eq!(&b[5..9], &[0xEF, 0xBE, 0xAD, 0xDE]);
        assert_eq!(b[9], 0x08);
        assert_eq!(b[16], 0x01);
        assert_eq!(get_u16(&b, 0), 0x1234);
        assert_eq!(get_u24(&b, 2), 0xAB_CDEF);
        assert_eq!(get_u32(&b, 5), 0xDEAD_BEEF);
        assert_eq!(get_u64(&b, 9), 0x0102_0304_0506_0708);
    }

    #[test]
    fn checks() {
        assert!(check_len("x", 4, 3).is_err());
        assert!(check_len("x", 4, 4).is_ok());
        let b = [0, 0, 0, 9, 0];
        assert_eq!(
            check_zero(&b, 1..5, "r"),
            Err(WireError::Reserved {
                what: "r",
                offset: 3
            })
        );
        assert!(check_zero(&b, 0..3, "r").is_ok());
        assert!(check_bits(0b100, 0b011, "r", 0).is_ok());
        assert_eq!(
            check_bits(0x0100_0001, 0xff00_0000, "r", 40),
            Err(WireError::Reserved {
                what: "r",
                offset: 43
            })
        );
        assert!(check_width(0xFF, 8, "f").is_ok());
        assert!(check_width(0x100, 8, "f").is_err());
        assert!(check_width(u64::MAX, 64, "f").is_ok());
    }
}
