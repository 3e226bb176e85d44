//! Log pages an I/O controller returns (NVMe Base Specification 2.0, "Get Log Page"):
//! SMART / Health Information (02h) and Firmware Slot Information (03h), 512 bytes each.
//! The Error Information log (01h) is a list of 64-byte entries; a controller that
//! recorded no error returns zeroes, which [`is_empty_error_log`] checks.
//!
//! Each repr holds the fields listed in its `field` module; `emit` zeroes the rest, so
//! `parse(emit(r)) == r`.

use super::field::{check_len, get_u16, put_text, set_u16, text, Field};
use super::Result;

/// Log Identifier of the Error Information log.
pub const LID_ERROR: u8 = 0x01;
/// Log Identifier of the SMART / Health Information log.
pub const LID_SMART: u8 = 0x02;
/// Log Identifier of the Firmware Slot Information log.
pub const LID_FIRMWARE_SLOT: u8 = 0x03;
/// Length of the SMART / Health Information and Firmware Slot Information logs.
pub const LOG_512: usize = 512;
/// Length of one Error Information log entry.
pub const ERROR_ENTRY_LEN: usize = 64;

/// Field offsets of SMART / Health Information.
pub mod smart_field {
    use super::Field;
    /// Critical Warning.
    pub const CRITICAL_WARNING: usize = 0;
    /// Composite Temperature, kelvin.
    pub const TEMPERATURE: Field = 1..3;
    /// Available Spare, percent.
    pub const AVAIL_SPARE: usize = 3;
    /// Available Spare Threshold, percent.
    pub const SPARE_THRESH: usize = 4;
    /// Percentage Used.
    pub const PERCENT_USED: usize = 5;
}

/// The SMART / Health Information fields a host reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmartLogRepr {
    /// Critical Warning bits.
    pub critical_warning: u8,
    /// Composite Temperature, kelvin.
    pub temperature: u16,
    /// Available Spare, percent.
    pub avail_spare: u8,
    /// Available Spare Threshold, percent.
    pub spare_thresh: u8,
    /// Percentage Used.
    pub percent_used: u8,
}

impl SmartLogRepr {
    /// Parses the fields from (at least) the log's 512 bytes.
    pub fn parse(b: &[u8]) -> Result<SmartLogRepr> {
        use smart_field as f;
        check_len("SMART / Health Information log", LOG_512, b.len())?;
        Ok(SmartLogRepr {
            critical_warning: b[f::CRITICAL_WARNING],
            temperature: get_u16(b, f::TEMPERATURE.start),
            avail_spare: b[f::AVAIL_SPARE],
            spare_thresh: b[f::SPARE_THRESH],
            percent_used: b[f::PERCENT_USED],
        })
    }

    /// Writes the log's 512 bytes.
    pub fn emit(&self) -> Vec<u8> {
        use smart_field as f;
        let mut b = vec![0u8; LOG_512];
        b[f::CRITICAL_WARNING] = self.critical_warning;
        set_u16(&mut b, f::TEMPERATURE.start, self.temperature);
        b[f::AVAIL_SPARE] = self.avail_spare;
        b[f::SPARE_THRESH] = self.spare_thresh;
        b[f::PERCENT_USED] = self.percent_used;
        b
    }
}

/// Field offsets of Firmware Slot Information.
pub mod firmware_field {
    use super::Field;
    /// Active Firmware Info.
    pub const AFI: usize = 0;
    /// Firmware Revision for Slot 1; slot `n` (1 to 7) is at `FRS1 + 8 * (n - 1)`.
    pub const FRS1: Field = 8..16;
}

/// The revision field of slot `i + 1`.
fn slot(i: usize) -> Field {
    let at = firmware_field::FRS1.start + 8 * i;
    at..at + 8
}

/// Firmware Slot Information.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirmwareSlotLogRepr {
    /// Active Firmware Info: bits 2:0 the active slot, bits 6:4 the slot of the next reset.
    pub afi: u8,
    /// The revision in each of slots 1 to 7, without its space padding (empty: no image).
    pub frs: [String; 7],
}

impl FirmwareSlotLogRepr {
    /// Parses the fields from (at least) the log's 512 bytes.
    pub fn parse(b: &[u8]) -> Result<FirmwareSlotLogRepr> {
        use firmware_field as f;
        check_len("Firmware Slot Information log", LOG_512, b.len())?;
        let frs = std::array::from_fn(|i| text(&b[slot(i)], b' '));
        Ok(FirmwareSlotLogRepr {
            afi: b[f::AFI],
            frs,
        })
    }

    /// Writes the log's 512 bytes; fails naming FRS when a revision is over 8 bytes.
    pub fn emit(&self) -> Result<Vec<u8>> {
        use firmware_field as f;
        let mut b = vec![0u8; LOG_512];
        b[f::AFI] = self.afi;
        for (i, r) in self.frs.iter().enumerate() {
            // An empty slot stays zero.
            if !r.is_empty() {
                put_text(&mut b, slot(i), r, b' ', "FRS")?;
            }
        }
        Ok(b)
    }
}

/// True when `b`, a part of the Error Information log, records no error (all zero).
pub fn is_empty_error_log(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireError;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn smart_round_trips(a in any::<(u8, u16, u8, u8, u8)>()) {
            let r = SmartLogRepr { critical_warning: a.0, temperature: a.1, avail_spare: a.2, spare_thresh: a.3, percent_used: a.4 };
            prop_assert_eq!(SmartLogRepr::parse(&r.emit()).unwrap(), r);
        }

        #[test]
        fn firmware_slots_round_trip(afi in any::<u8>(), frs in proptest::array::uniform7("([!-~]([ -~]{0,6}[!-~])?)?")) {
            let r = FirmwareSlotLogRepr { afi, frs };
            prop_assert_eq!(FirmwareSlotLogRepr::parse(&r.emit().unwrap()).unwrap(), r);
        }

        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SmartLogRepr::parse(&b);
            let _ = FirmwareSlotLogRepr::parse(&b);
        }
    }

    #[test]
    fn short_logs_and_long_revisions_are_refused() {
        assert!(matches!(
            SmartLogRepr::parse(&[0; 511]),
            Err(WireError::Truncated { .. })
        ));
        let mut r = FirmwareSlotLogRepr::default();
        r.frs[2] = "123456789".into();
        assert_eq!(
            r.emit().unwrap_err(),
            WireError::BadValue {
                field: "FRS",
                value: 9
            }
        );
        assert!(is_empty_error_log(&[0; 128]));
        assert!(!is_empty_error_log(&[0, 0, 1]));
    }
}
