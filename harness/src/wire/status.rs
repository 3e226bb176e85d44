//! NVMe completion status (NVMe Base Specification 2.0, "Status Field Definition").
//!
//! The CQE's last 16 bits hold the phase tag in bit 0 and the 15-bit status field in
//! bits 15:1. This module encodes the status field with the phase bit shifted out:
//!
//! | bits  | field |
//! |-------|-------|
//! | 7:0   | SC, Status Code |
//! | 10:8  | SCT, Status Code Type |
//! | 12:11 | CRD, Command Retry Delay |
//! | 13    | M, More |
//! | 14    | DNR, Do Not Retry |
//!
//! Status values are written `SCT<<8 | SC` ("code"), as in the specification's tables.

use core::fmt;

use super::field::check_width;
use super::{Result, WireError};

/// Bit positions inside the 15-bit status field (phase bit shifted out).
mod bits {
    pub const SC_MASK: u16 = 0x00ff;
    pub const SCT_SHIFT: u16 = 8;
    pub const SCT_MASK: u16 = 0x7;
    pub const CRD_SHIFT: u16 = 11;
    pub const CRD_MASK: u16 = 0x3;
    pub const MORE: u16 = 1 << 13;
    pub const DNR: u16 = 1 << 14;
}

/// Status Code Type values ("Status Code – Status Code Type Values").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Sct {
    /// Generic Command Status (0h).
    Generic = 0,
    /// Command Specific Status (1h).
    CommandSpecific = 1,
    /// Media and Data Integrity Errors (2h).
    MediaDataIntegrity = 2,
    /// Path Related Status (3h).
    PathRelated = 3,
    /// Vendor Specific (7h).
    VendorSpecific = 7,
}

impl TryFrom<u8> for Sct {
    type Error = WireError;
    fn try_from(value: u8) -> Result<Self> {
        match value {
            0 => Ok(Sct::Generic),
            1 => Ok(Sct::CommandSpecific),
            2 => Ok(Sct::MediaDataIntegrity),
            3 => Ok(Sct::PathRelated),
            7 => Ok(Sct::VendorSpecific),
            _ => Err(WireError::BadValue {
                field: "status.sct",
                value: value.into(),
            }),
        }
    }
}

impl From<Sct> for u8 {
    fn from(value: Sct) -> u8 {
        value as u8
    }
}

/// A decoded NVMe status field.
///
/// `crd` is kept (beyond SCT/SC/More/DNR) so that decoding then encoding any 15-bit field
/// gives the same bits back. `Debug` prints what `Display` does (`SCT0/SC0x04 Data Transfer
/// Error`), so that a failed check names the status a person reads in the spec.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Status {
    /// Status Code Type (3 bits).
    pub sct: u8,
    /// Status Code.
    pub sc: u8,
    /// Command Retry Delay (2 bits): which CRDT of Identify Controller applies; 0 = none.
    pub crd: u8,
    /// More: more status information is in the Error Information log page.
    pub more: bool,
    /// Do Not Retry.
    pub dnr: bool,
}

macro_rules! status_consts {
    ($( $(#[$m:meta])* $name:ident = ($sct:literal, $sc:literal), $text:literal; )*) => {
        impl Status {
            $( $(#[$m])* pub const $name: Status = Status::new($sct, $sc); )*
        }

        /// `(code, name)` for every named status, code = `SCT<<8 | SC`.
        const NAMES: &[(u16, &str)] = &[ $( (($sct << 8) | $sc, $text), )* ];
    };
}

status_consts! {
    /// 0/00h Successful Completion.
    SUCCESS = (0, 0x00), "Successful Completion";
    /// 0/01h Invalid Command Opcode.
    INVALID_OPCODE = (0, 0x01), "Invalid Command Opcode";
    /// 0/02h Invalid Field in Command.
    INVALID_FIELD = (0, 0x02), "Invalid Field in Command";
    /// 0/03h Command ID Conflict.
    COMMAND_ID_CONFLICT = (0, 0x03), "Command ID Conflict";
    /// 0/04h Data Transfer Error.
    DATA_TRANSFER_ERROR = (0, 0x04), "Data Transfer Error";
    /// 0/05h Commands Aborted due to Power Loss Notification.
    ABORTED_POWER_LOSS = (0, 0x05), "Commands Aborted due to Power Loss Notification";
    /// 0/06h Internal Error.
    INTERNAL_ERROR = (0, 0x06), "Internal Error";
    /// 0/07h Command Abort Requested.
    ABORT_REQUESTED = (0, 0x07), "Command Abort Requested";
    /// 0/08h Command Aborted due to SQ Deletion.
    ABORTED_SQ_DELETION = (0, 0x08), "Command Aborted due to SQ Deletion";
    /// 0/09h Command Aborted due to Failed Fused Command.
    ABORTED_FAILED_FUSED = (0, 0x09), "Command Aborted due to Failed Fused Command";
    /// 0/0Ah Command Aborted due to Missing Fused Command.
    ABORTED_MISSING_FUSED = (0, 0x0a), "Command Aborted due to Missing Fused Command";
    /// 0/0Bh Invalid Namespace or Format.
    INVALID_NAMESPACE = (0, 0x0b), "Invalid Namespace or Format";
    /// 0/0Ch Command Sequence Error.
    COMMAND_SEQUENCE_ERROR = (0, 0x0c), "Command Sequence Error";
    /// 0/0Dh Invalid SGL Segment Descriptor.
    INVALID_SGL_SEGMENT_DESCRIPTOR = (0, 0x0d), "Invalid SGL Segment Descriptor";
    /// 0/0Eh Invalid Number of SGL Descriptors.
    INVALID_SGL_DESCRIPTOR_COUNT = (0, 0x0e), "Invalid Number of SGL Descriptors";
    /// 0/0Fh Data SGL Length Invalid.
    DATA_SGL_LENGTH_INVALID = (0, 0x0f), "Data SGL Length Invalid";
    /// 0/10h Metadata SGL Length Invalid.
    METADATA_SGL_LENGTH_INVALID = (0, 0x10), "Metadata SGL Length Invalid";
    /// 0/11h SGL Descriptor Type Invalid.
    SGL_DESCRIPTOR_TYPE_INVALID = (0, 0x11), "SGL Descriptor Type Invalid";
    /// 0/12h Invalid Use of Controller Memory Buffer.
    INVALID_CMB_USE = (0, 0x12), "Invalid Use of Controller Memory Buffer";
    /// 0/13h PRP Offset Invalid.
    PRP_OFFSET_INVALID = (0, 0x13), "PRP Offset Invalid";
    /// 0/14h Atomic Write Unit Exceeded.
    ATOMIC_WRITE_UNIT_EXCEEDED = (0, 0x14), "Atomic Write Unit Exceeded";
    /// 0/15h Operation Denied.
    OPERATION_DENIED = (0, 0x15), "Operation Denied";
    /// 0/16h SGL Offset Invalid.
    SGL_OFFSET_INVALID = (0, 0x16), "SGL Offset Invalid";
    /// 0/18h Host Identifier Inconsistent Format.
    HOST_ID_INCONSISTENT_FORMAT = (0, 0x18), "Host Identifier Inconsistent Format";
    /// 0/19h Keep Alive Timer Expired.
    KEEP_ALIVE_TIMER_EXPIRED = (0, 0x19), "Keep Alive Timer Expired";
    /// 0/1Ah Keep Alive Timeout Invalid.
    KEEP_ALIVE_TIMEOUT_INVALID = (0, 0x1a), "Keep Alive Timeout Invalid";
    /// 0/1Bh Command Aborted due to Preempt and Abort.
    ABORTED_PREEMPT_AND_ABORT = (0, 0x1b), "Command Aborted due to Preempt and Abort";
    /// 0/1Ch Sanitize Failed.
    SANITIZE_FAILED = (0, 0x1c), "Sanitize Failed";
    /// 0/1Dh Sanitize In Progress.
    SANITIZE_IN_PROGRESS = (0, 0x1d), "Sanitize In Progress";
    /// 0/1Eh SGL Data Block Granularity Invalid.
    SGL_DATA_BLOCK_GRANULARITY_INVALID = (0, 0x1e), "SGL Data Block Granularity Invalid";
    /// 0/1Fh Command Not Supported for Queue in CMB.
    COMMAND_NOT_SUPPORTED_FOR_CMB_QUEUE = (0, 0x1f), "Command Not Supported for Queue in CMB";
    /// 0/20h Namespace is Write Protected.
    NAMESPACE_WRITE_PROTECTED = (0, 0x20), "Namespace is Write Protected";
    /// 0/21h Command Interrupted.
    COMMAND_INTERRUPTED = (0, 0x21), "Command Interrupted";
    /// 0/22h Transient Transport Error.
    TRANSIENT_TRANSPORT_ERROR = (0, 0x22), "Transient Transport Error";
    /// 0/80h LBA Out of Range.
    LBA_OUT_OF_RANGE = (0, 0x80), "LBA Out of Range";
    /// 0/81h Capacity Exceeded.
    CAPACITY_EXCEEDED = (0, 0x81), "Capacity Exceeded";
    /// 0/82h Namespace Not Ready.
    NAMESPACE_NOT_READY = (0, 0x82), "Namespace Not Ready";
    /// 0/83h Reservation Conflict.
    RESERVATION_CONFLICT = (0, 0x83), "Reservation Conflict";
    /// 0/84h Format In Progress.
    FORMAT_IN_PROGRESS = (0, 0x84), "Format In Progress";
    /// 1/03h Abort Command Limit Exceeded (Abort).
    ABORT_COMMAND_LIMIT_EXCEEDED = (1, 0x03), "Abort Command Limit Exceeded";
    /// 1/05h Asynchronous Event Request Limit Exceeded.
    ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED = (1, 0x05), "Asynchronous Event Request Limit Exceeded";
    /// 1/09h Invalid Log Page (Get Log Page).
    INVALID_LOG_PAGE = (1, 0x09), "Invalid Log Page";
    /// 1/0Dh Feature Identifier Not Saveable (Set Features).
    FEATURE_NOT_SAVEABLE = (1, 0x0d), "Feature Identifier Not Saveable";
    /// 1/0Eh Feature Not Changeable (Set Features).
    FEATURE_NOT_CHANGEABLE = (1, 0x0e), "Feature Not Changeable";
    /// 1/0Fh Feature Not Namespace Specific (Set Features).
    FEATURE_NOT_NAMESPACE_SPECIFIC = (1, 0x0f), "Feature Not Namespace Specific";
    /// 1/80h Connect Incompatible Format (Fabrics Connect; for NVM I/O commands the same
    /// value is [`Status::CONFLICTING_ATTRIBUTES`]).
    CONNECT_INCOMPATIBLE_FORMAT = (1, 0x80), "Incompatible Format (Connect) / Conflicting Attributes";
    /// 1/81h Connect Controller Busy (Fabrics Connect).
    CONNECT_CONTROLLER_BUSY = (1, 0x81), "Controller Busy (Connect) / Invalid Protection Information";
    /// 1/82h Connect Invalid Parameters (Fabrics Connect; DW0 holds IPO/IATTR).
    CONNECT_INVALID_PARAMETERS = (1, 0x82), "Connect Invalid Parameters / Attempted Write to Read Only Range";
    /// 1/83h Connect Restart Discovery (Fabrics Connect).
    CONNECT_RESTART_DISCOVERY = (1, 0x83), "Connect Restart Discovery";
    /// 1/84h Connect Invalid Host (Fabrics Connect).
    CONNECT_INVALID_HOST = (1, 0x84), "Connect Invalid Host";
    /// 1/90h Discover Restart.
    DISCOVER_RESTART = (1, 0x90), "Discover Restart";
    /// 1/91h Authentication Required.
    AUTHENTICATION_REQUIRED = (1, 0x91), "Authentication Required";
    /// 2/80h Write Fault.
    WRITE_FAULT = (2, 0x80), "Write Fault";
    /// 2/81h Unrecovered Read Error.
    UNRECOVERED_READ_ERROR = (2, 0x81), "Unrecovered Read Error";
    /// 2/82h End-to-end Guard Check Error.
    GUARD_CHECK_ERROR = (2, 0x82), "End-to-end Guard Check Error";
    /// 2/83h End-to-end Application Tag Check Error.
    APPLICATION_TAG_CHECK_ERROR = (2, 0x83), "End-to-end Application Tag Check Error";
    /// 2/84h End-to-end Reference Tag Check Error.
    REFERENCE_TAG_CHECK_ERROR = (2, 0x84), "End-to-end Reference Tag Check Error";
    /// 2/85h Compare Failure.
    COMPARE_FAILURE = (2, 0x85), "Compare Failure";
    /// 2/86h Access Denied.
    ACCESS_DENIED = (2, 0x86), "Access Denied";
    /// 2/87h Deallocated or Unwritten Logical Block.
    DEALLOCATED_OR_UNWRITTEN_BLOCK = (2, 0x87), "Deallocated or Unwritten Logical Block";
    /// 3/00h Internal Path Error.
    INTERNAL_PATH_ERROR = (3, 0x00), "Internal Path Error";
    /// 3/01h Asymmetric Access Persistent Loss.
    ANA_PERSISTENT_LOSS = (3, 0x01), "Asymmetric Access Persistent Loss";
    /// 3/02h Asymmetric Access Inaccessible.
    ANA_INACCESSIBLE = (3, 0x02), "Asymmetric Access Inaccessible";
    /// 3/03h Asymmetric Access Transition.
    ANA_TRANSITION = (3, 0x03), "Asymmetric Access Transition";
    /// 3/60h Controller Pathing Error.
    CONTROLLER_PATHING_ERROR = (3, 0x60), "Controller Pathing Error";
    /// 3/70h Host Pathing Error.
    HOST_PATHING_ERROR = (3, 0x70), "Host Pathing Error";
    /// 3/71h Command Aborted By Host.
    COMMAND_ABORTED_BY_HOST = (3, 0x71), "Command Aborted By Host";
}

impl Status {
    /// 1/80h Conflicting Attributes (NVM I/O commands; same value as Connect Incompatible Format).
    pub const CONFLICTING_ATTRIBUTES: Status = Status::new(1, 0x80);
    /// 1/81h Invalid Protection Information (NVM I/O commands).
    pub const INVALID_PROTECTION_INFORMATION: Status = Status::new(1, 0x81);
    /// 1/82h Attempted Write to Read Only Range (NVM I/O commands).
    pub const WRITE_TO_READ_ONLY_RANGE: Status = Status::new(1, 0x82);

    /// A status with the given type and code, no CRD, More or DNR.
    pub const fn new(sct: u8, sc: u8) -> Status {
        Status {
            sct,
            sc,
            crd: 0,
            more: false,
            dnr: false,
        }
    }

    /// The status for `SCT<<8 | SC` (bits above 10 are ignored).
    pub const fn from_code(code: u16) -> Status {
        Status::new(((code >> 8) & bits::SCT_MASK) as u8, code as u8)
    }

    /// `SCT<<8 | SC`, the form used in the specification's tables.
    pub const fn code(self) -> u16 {
        ((self.sct as u16 & bits::SCT_MASK) << 8) | self.sc as u16
    }

    /// The same status with Do Not Retry set.
    pub const fn with_dnr(mut self) -> Status {
        self.dnr = true;
        self
    }

    /// The same status with More set.
    pub const fn with_more(mut self) -> Status {
        self.more = true;
        self
    }

    /// The same status with Command Retry Delay `crd` (2 bits).
    pub const fn with_crd(mut self, crd: u8) -> Status {
        self.crd = crd;
        self
    }

    /// True for Successful Completion (SCT 0, SC 0), whatever the flags.
    pub const fn is_success(self) -> bool {
        self.sct == 0 && self.sc == 0
    }

    /// True when `other` has the same SCT and SC (flags are not compared).
    pub const fn same_code(self, other: Status) -> bool {
        self.code() == other.code()
    }

    /// Decodes a 15-bit status field (phase bit already shifted out; bit 15 is ignored).
    pub const fn from_field(field: u16) -> Status {
        Status {
            sc: (field & bits::SC_MASK) as u8,
            sct: ((field >> bits::SCT_SHIFT) & bits::SCT_MASK) as u8,
            crd: ((field >> bits::CRD_SHIFT) & bits::CRD_MASK) as u8,
            more: field & bits::MORE != 0,
            dnr: field & bits::DNR != 0,
        }
    }

    /// Encodes the 15-bit status field; out-of-range `sct`/`crd` bits are masked off
    /// (see [`Status::check`]).
    pub const fn to_field(self) -> u16 {
        let mut v = self.sc as u16;
        v |= (self.sct as u16 & bits::SCT_MASK) << bits::SCT_SHIFT;
        v |= (self.crd as u16 & bits::CRD_MASK) << bits::CRD_SHIFT;
        if self.more {
            v |= bits::MORE;
        }
        if self.dnr {
            v |= bits::DNR;
        }
        v
    }

    /// `Err(BadValue)` when `sct` does not fit 3 bits or `crd` 2 bits.
    pub fn check(self) -> Result<()> {
        check_width(self.sct.into(), 3, "status.sct")?;
        check_width(self.crd.into(), 2, "status.crd")
    }

    /// The specification's name for this SCT/SC, if it is one of the named constants.
    pub fn name(self) -> Option<&'static str> {
        let code = self.code();
        NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Status {
    /// `SCT0/SC0x0b Invalid Namespace or Format [DNR]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SCT{}/SC{:#04x}", self.sct, self.sc)?;
        if let Some(name) = self.name() {
            write!(f, " {name}")?;
        }
        let mut flags = Vec::new();
        if self.crd != 0 {
            flags.push(format!("CRD{}", self.crd));
        }
        if self.more {
            flags.push("MORE".to_string());
        }
        if self.dnr {
            flags.push("DNR".to_string());
        }
        if !flags.is_empty() {
            write!(f, " [{}]", flags.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_offload_api_reference() {
        // offload-api.md §4, written as SCT<<8 | SC.
        let expect: &[(Status, u16)] = &[
            (Status::SUCCESS, 0x000),
            (Status::INVALID_OPCODE, 0x001),
            (Status::INVALID_FIELD, 0x002),
            (Status::DATA_TRANSFER_ERROR, 0x004),
            (Status::INTERNAL_ERROR, 0x006),
            (Status::ABORT_REQUESTED, 0x007),
            (Status::INVALID_NAMESPACE, 0x00b),
            (Status::COMMAND_SEQUENCE_ERROR, 0x00c),
            (Status::INVALID_SGL_SEGMENT_DESCRIPTOR, 0x00d),
            (Status::INVALID_SGL_DESCRIPTOR_COUNT, 0x00e),
            (Status::DATA_SGL_LENGTH_INVALID, 0x00f),
            (Status::METADATA_SGL_LENGTH_INVALID, 0x010),
            (Status::SGL_DESCRIPTOR_TYPE_INVALID, 0x011),
            (Status::SGL_OFFSET_INVALID, 0x016),
            (Status::SGL_DATA_BLOCK_GRANULARITY_INVALID, 0x01e),
            (Status::LBA_OUT_OF_RANGE, 0x080),
            (Status::NAMESPACE_NOT_READY, 0x082),
            (Status::CONNECT_INCOMPATIBLE_FORMAT, 0x180),
            (Status::CONNECT_CONTROLLER_BUSY, 0x181),
            (Status::CONNECT_INVALID_PARAMETERS, 0x182),
            (Status::CONNECT_INVALID_HOST, 0x184),
            (Status::HOST_PATHING_ERROR, 0x370),
        ];
        for (s, code) in expect {
            assert_eq!(s.code(), *code, "{s}");
            assert_eq!(Status::from_code(*code), *s);
        }
    }

    #[test]
    fn field_bit_layout() {
        // SC bits 7:0, SCT 10:8, CRD 12:11, More 13, DNR 14.
        assert_eq!(Status::INVALID_NAMESPACE.to_field(), 0x000b);
        assert_eq!(Status::CONNECT_INVALID_PARAMETERS.to_field(), 0x0182);
        assert_eq!(Status::INVALID_FIELD.with_dnr().to_field(), 0x4002);
        assert_eq!(Status::SUCCESS.with_more().to_field(), 0x2000);
        assert_eq!(Status::SUCCESS.with_crd(3).to_field(), 0x1800);
        assert_eq!(Status::SUCCESS.with_crd(1).to_field(), 0x0800);
        assert_eq!(Status::HOST_PATHING_ERROR.to_field(), 0x0370);
        let s = Status::from_field(0x7fff);
        assert_eq!(
            s,
            Status {
                sct: 7,
                sc: 0xff,
                crd: 3,
                more: true,
                dnr: true
            }
        );
        // Bit 15 is not part of the 15-bit field.
        assert_eq!(Status::from_field(0x8000), Status::SUCCESS);
    }

    #[test]
    fn every_field_round_trips() {
        for v in 0..0x8000u16 {
            assert_eq!(Status::from_field(v).to_field(), v);
        }
    }

    #[test]
    fn check_rejects_wide_values() {
        assert!(Status::new(7, 0).check().is_ok());
        assert_eq!(
            Status::new(8, 0).check(),
            Err(WireError::BadValue {
                field: "status.sct",
                value: 8
            })
        );
        assert!(Status::SUCCESS.with_crd(4).check().is_err());
    }

    #[test]
    fn display() {
        assert_eq!(
            Status::INVALID_NAMESPACE.to_string(),
            "SCT0/SC0x0b Invalid Namespace or Format"
        );
        assert_eq!(
            Status::INVALID_FIELD.with_dnr().to_string(),
            "SCT0/SC0x02 Invalid Field in Command [DNR]"
        );
        assert_eq!(Status::new(0, 0x77).to_string(), "SCT0/SC0x77");
        assert_eq!(
            Status::HOST_PATHING_ERROR
                .with_more()
                .with_crd(2)
                .to_string(),
            "SCT3/SC0x70 Host Pathing Error [CRD2,MORE]"
        );
        assert!(Status::CONNECT_INVALID_HOST
            .to_string()
            .starts_with("SCT1/SC0x84"));
    }

    #[test]
    fn names_are_unique_per_code() {
        for (i, (a, _)) in NAMES.iter().enumerate() {
            for (b, _) in &NAMES[i + 1..] {
                assert_ne!(a, b, "duplicate status code {a:#x}");
            }
        }
    }

    #[test]
    fn sct_values() {
        for (raw, sct) in [
            (0, Sct::Generic),
            (1, Sct::CommandSpecific),
            (2, Sct::MediaDataIntegrity),
            (3, Sct::PathRelated),
            (7, Sct::VendorSpecific),
        ] {
            assert_eq!(Sct::try_from(raw), Ok(sct));
            assert_eq!(u8::from(sct), raw);
        }
        assert!(Sct::try_from(4).is_err());
    }
}
