//! Byte-exact wire formats: NVMe queue entries, NVMe-oF Fabrics commands and RDMA CM
//! private data.
//!
//! The module follows the style of smoltcp's `wire` module. Every format comes in two
//! layers:
//!
//! - a **view** (`Sqe<T>`, `Cqe<T>`, `Sgl<T>`, `FabricsCmd<T>`, `ConnectData<T>`,
//!   `CmRequest<T>`, ...) wrapping any `T: AsRef<[u8]>`, with getters for every field and,
//!   when `T: AsMut<[u8]>`, setters. `new_checked` verifies the buffer is long enough;
//!   `new_unchecked` does not, and its getters panic on a short buffer.
//! - a **repr** (`SqeRepr`, `CqeRepr`, `SglRepr`, ...): a parsed, owned representation.
//!   `parse` never panics: it checks lengths before reading and rejects reserved bits that
//!   the specification requires to be zero. `emit` writes the repr into a buffer of at
//!   least `buffer_len()` bytes and fails (instead of panicking) when the buffer is short
//!   or a field does not fit its wire width. For every repr, a successful `emit` followed
//!   by `parse` yields the same repr.
//!
//! All multi-byte fields are little-endian. Offsets are written as named constants in
//! each file's `field` module, with the specification section they come from.
//!
//! References, cited by section title: NVM Express Base Specification 2.0 (Common
//! Command Format, Common Completion Queue Entry, Status Field, Scatter Gather List,
//! Fabrics Command Set), NVM Command Set Specification 1.0 (Read, Write, Write Zeroes,
//! Dataset Management), NVM Express over Fabrics 1.1 (Connect, Property Get/Set), NVMe
//! RDMA Transport Specification (RDMA CM private data), and for the Discovery Log Page (Log
//! Identifier 70h) NVMe Base Specification 2.0 and NVMe-oF 1.1. Every layout was cross-checked
//! against Linux `include/linux/nvme.h` and `include/linux/nvme-rdma.h`.

mod view;

mod admin;
mod cm;
mod connect_data;
mod cqe;
mod discovery;
mod dsm;
mod fabrics;
mod features;
mod field;
mod identify;
mod log_page;
mod opcode;
mod packed;
mod registers;
mod sgl;
mod sqe;
mod status;
#[cfg(test)]
mod testing;

pub use admin::{AdminCommand, CreateIoCqRepr, CreateIoSqRepr, GetLogPageRepr};
pub use cm::{
    field as cm_field, CmAccept, CmAcceptRepr, CmReject, CmRejectRepr, CmRejectStatus, CmRequest,
    CmRequestRepr, CM_ACCEPT_LEN, CM_RECFMT_1_0, CM_REJECT_LEN, CM_REQUEST_LEN,
};
pub use connect_data::{
    field as connect_data_field, ConnectData, ConnectDataRepr, CONNECT_DATA_LEN, NQN_FIELD_LEN,
    NQN_MAX_LEN,
};
pub use cqe::{field as cqe_field, Cqe, CqeRepr, CQE_LEN};
pub use discovery::{
    field as discovery_field, DiscoveryEntry, DiscoveryEntryRepr, DiscoveryLogHeader,
    DiscoveryLogHeaderRepr, DiscoveryLogRepr, RdmaTsas, ADRFAM_FC, ADRFAM_IB, ADRFAM_IPV4,
    ADRFAM_IPV6, ADRFAM_LOOP, CMS_RDMA_CM, DISCOVERY_LOG_ENTRY_LEN, DISCOVERY_LOG_HEADER_LEN,
    DISCOVERY_LOG_LID, PRTYPE_IB, PRTYPE_IWARP, PRTYPE_NONE, PRTYPE_ROCE, PRTYPE_ROCEV2,
    QPTYPE_DATAGRAM, QPTYPE_RC, SUBTYPE_CURRENT_DISCOVERY, SUBTYPE_NVME, SUBTYPE_REFERRAL,
    TREQ_DISABLE_SQFLOW, TREQ_NOT_REQUIRED, TREQ_NOT_SPECIFIED, TREQ_REQUIRED,
    TREQ_SECURE_CHANNEL_MASK, TRTYPE_FC, TRTYPE_LOOP, TRTYPE_RDMA, TRTYPE_TCP,
};
pub use dsm::{field as dsm_field, DsmRange, DsmRangeRepr, DSM_RANGE_LEN};
pub use fabrics::{
    field as fabrics_field, ConnectRepr, ConnectResponse, ConnectSuccess, FabricsCmd, FabricsRepr,
    InvalidParam, PropertyGetRepr, PropertySetRepr, PropertySize, CATTR_DISABLE_SQFLOW,
    CNTLID_DYNAMIC,
};
pub use features::{
    feature_flag, fid, ArbitrationRepr, ErrorRecoveryRepr, NumberOfQueuesRepr, PowerManagementRepr,
    TemperatureThresholdRepr, THSEL_OVER, THSEL_UNDER, TMPSEL_ALL, TMPSEL_COMPOSITE,
};
pub use identify::{
    ctrl_field as identify_ctrl_field, emit_nsid_list, ns_field as identify_ns_field,
    parse_nsid_list, IdentifyControllerRepr, IdentifyNamespaceRepr, LbaFormatRepr,
    NsDescriptorRepr, IDENTIFY_LEN, NIDT_EUI64, NIDT_NGUID, NIDT_UUID,
};
pub use log_page::{
    firmware_field, is_empty_error_log, smart_field, FirmwareSlotLogRepr, SmartLogRepr,
    ERROR_ENTRY_LEN, LID_ERROR, LID_FIRMWARE_SLOT, LID_SMART, LOG_512,
};
pub use opcode::{AdminOpcode, FabricsType, NvmOpcode, FABRICS_OPCODE};
pub use registers::{
    cq_head_doorbell, sq_tail_doorbell, AqaRepr, CapRepr, CcRepr, CstsRepr, PROP_CAP, PROP_CC,
    PROP_CSTS, PROP_VS, REG_ACQ, REG_AQA, REG_ASQ, REG_DOORBELLS, SHN_ABRUPT, SHN_NONE, SHN_NORMAL,
    SHST_COMPLETE, SHST_NORMAL, SHST_OCCURRING,
};
pub use sgl::{
    field as sgl_field, ty as sgl_type, Sgl, SglAddressing, SglRepr, SGL_DESC_LEN,
    SGL_ID_IN_CAPSULE, SGL_ID_KEYED, SGL_ID_KEYED_INVALIDATE, SGL_KEYED_MAX_LEN,
};
pub use sqe::{
    field as sqe_field, DataPointer, DsmCommand, Fuse, Psdt, RwCommand, Sqe, SqeCommand, SqeRepr,
    WriteZeroesCommand, SQE_LEN,
};
pub use status::{Sct, Status};

/// An error found while parsing or emitting a wire format; every variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the structure (parse) or than `buffer_len()` (emit).
    #[error("{what}: buffer too short, need {need} bytes, got {got}")]
    Truncated {
        /// The structure being read or written.
        what: &'static str,
        /// The minimum number of bytes.
        need: usize,
        /// The number of bytes available.
        got: usize,
    },
    /// A reserved field (or reserved bits) that must be zero is not.
    #[error("reserved field {what} (byte offset {offset}) is not zero")]
    Reserved {
        /// The reserved field, named as in the specification.
        what: &'static str,
        /// The byte offset, within the structure, of the first nonzero reserved byte.
        offset: usize,
    },
    /// A field holds a value this format does not define, or a repr field does not fit
    /// its wire width.
    #[error("field {field} has an invalid value {value:#x}")]
    BadValue {
        /// The field, named as in the specification.
        field: &'static str,
        /// The offending value.
        value: u64,
    },
    /// An NQN field has no NUL terminator within its maximum length.
    #[error("{field}: NQN is not NUL-terminated within {max} bytes")]
    NqnUnterminated {
        /// `subnqn` or `hostnqn`.
        field: &'static str,
        /// The maximum NQN length in bytes (without the terminator).
        max: usize,
    },
    /// An NQN is longer than the NVMe maximum of 223 bytes.
    #[error("{field}: NQN is {len} bytes long, more than the maximum {max}")]
    NqnTooLong {
        /// `subnqn` or `hostnqn`.
        field: &'static str,
        /// The NQN's length in bytes.
        len: usize,
        /// The maximum NQN length in bytes.
        max: usize,
    },
    /// An NQN contains a NUL byte before its end (emit) or is not valid UTF-8 (parse).
    #[error("{field}: NQN is not a valid NUL-free UTF-8 string")]
    NqnInvalid {
        /// `subnqn` or `hostnqn`.
        field: &'static str,
    },
}

/// The result of parsing or emitting a wire format.
pub type Result<T> = core::result::Result<T, WireError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_name_the_field() {
        let e = WireError::Truncated {
            what: "sqe",
            need: 64,
            got: 3,
        };
        assert_eq!(e.to_string(), "sqe: buffer too short, need 64 bytes, got 3");
        let e = WireError::Reserved {
            what: "connect.resv2",
            offset: 5,
        };
        assert!(e.to_string().contains("connect.resv2"));
        assert!(e.to_string().contains('5'));
        let e = WireError::BadValue {
            field: "sgl.type",
            value: 0x7,
        };
        assert_eq!(e.to_string(), "field sgl.type has an invalid value 0x7");
        let e = WireError::NqnUnterminated {
            field: "hostnqn",
            max: 223,
        };
        assert!(e.to_string().starts_with("hostnqn"));
        let e = WireError::NqnTooLong {
            field: "subnqn",
            len: 230,
            max: 223,
        };
        assert!(e.to_string().starts_with("subnqn"));
        let e = WireError::NqnInvalid { field: "subnqn" };
        assert!(e.to_string().starts_with("subnqn"));
    }
}
