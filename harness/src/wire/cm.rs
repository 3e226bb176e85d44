//! NVMe-oF RDMA CM private data (NVMe RDMA Transport Specification, "RDMA_CM
//! REQUEST / ACCEPT / REJECT Private Data Format"; Linux `include/linux/nvme-rdma.h`).
//!
//! | message | bytes | field |
//! |---------|-------|-------|
//! | request (32 B) | 1:0 | RECFMT (0) |
//! | | 3:2 | QID |
//! | | 5:4 | HRQSIZE, host receive queue size |
//! | | 7:6 | HSQSIZE, host send queue size, 0's based |
//! | | 9:8 | CNTLID (newer revisions; reserved, i.e. 0, in 1.0) |
//! | | 31:10 | reserved |
//! | accept (32 B) | 1:0 | RECFMT |
//! | | 3:2 | CRQSIZE, controller receive queue size |
//! | | 31:4 | reserved |
//! | reject (4 B) | 1:0 | RECFMT |
//! | | 3:2 | STS, see [`CmRejectStatus`] |
//!
//! RDMA CM pads private data to the transport's fixed size (for example 56 bytes in an
//! IB/RoCE REQ), so parsing accepts longer buffers and ignores bytes past the structure.
//! RECFMT is kept as a value, not checked: the target answers a wrong one with
//! [`CmRejectStatus::InvalidRecfmt`].

use super::field::{check_len, check_zero, Field};
use super::view::{accessors, view};
use super::{Result, WireError};

/// Length of the CM request private data.
pub const CM_REQUEST_LEN: usize = 32;
/// Length of the CM accept private data.
pub const CM_ACCEPT_LEN: usize = 32;
/// Length of the CM reject private data.
pub const CM_REJECT_LEN: usize = 4;
/// The only defined record format, NVMe-oF 1.0.
pub const CM_RECFMT_1_0: u16 = 0;

/// Byte offsets inside the CM private data.
pub mod field {
    use super::Field;
    /// Record Format (request, accept, reject), u16.
    pub const RECFMT: Field = 0..2;
    /// Request: Queue ID, u16.
    pub const REQ_QID: Field = 2..4;
    /// Request: Host Receive Queue Size, u16.
    pub const REQ_HRQSIZE: Field = 4..6;
    /// Request: Host Send Queue Size, u16, 0's based.
    pub const REQ_HSQSIZE: Field = 6..8;
    /// Request: Controller ID, u16.
    pub const REQ_CNTLID: Field = 8..10;
    /// Request: reserved bytes 31:10.
    pub const REQ_RESERVED: Field = 10..32;
    /// Accept: Controller Receive Queue Size, u16.
    pub const ACC_CRQSIZE: Field = 2..4;
    /// Accept: reserved bytes 31:4.
    pub const ACC_RESERVED: Field = 4..32;
    /// Reject: Status, u16.
    pub const REJ_STS: Field = 2..4;
}

/// Status of an RDMA CM reject (STS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CmRejectStatus {
    /// 01h: invalid private data length.
    InvalidLength = 0x01,
    /// 02h: invalid record format.
    InvalidRecfmt = 0x02,
    /// 03h: invalid queue ID.
    InvalidQid = 0x03,
    /// 04h: invalid host send queue size.
    InvalidHsqsize = 0x04,
    /// 05h: invalid host receive queue size.
    InvalidHrqsize = 0x05,
    /// 06h: no (or insufficient) resources.
    NoResources = 0x06,
    /// 07h: invalid IRD.
    InvalidIrd = 0x07,
    /// 08h: invalid ORD.
    InvalidOrd = 0x08,
    /// 09h: invalid controller ID (newer revisions, paired with the request's CNTLID).
    InvalidCntlid = 0x09,
}

impl CmRejectStatus {
    /// Every known value.
    pub const ALL: &'static [CmRejectStatus] = &[
        CmRejectStatus::InvalidLength,
        CmRejectStatus::InvalidRecfmt,
        CmRejectStatus::InvalidQid,
        CmRejectStatus::InvalidHsqsize,
        CmRejectStatus::InvalidHrqsize,
        CmRejectStatus::NoResources,
        CmRejectStatus::InvalidIrd,
        CmRejectStatus::InvalidOrd,
        CmRejectStatus::InvalidCntlid,
    ];
}

impl TryFrom<u16> for CmRejectStatus {
    type Error = WireError;
    fn try_from(value: u16) -> Result<Self> {
        CmRejectStatus::ALL
            .iter()
            .copied()
            .find(|s| *s as u16 == value)
            .ok_or(WireError::BadValue {
                field: "cm_reject.sts",
                value: value.into(),
            })
    }
}

impl From<CmRejectStatus> for u16 {
    fn from(value: CmRejectStatus) -> u16 {
        value as u16
    }
}

/// A CM private-data view ([`view!`]) with its Record Format, first in every one of them.
macro_rules! cm_view {
    ($(#[$m:meta])* $name:ident, $len:expr, $what:literal) => {
        view!($(#[$m])* $name, $len, $what);

        accessors!($name {
            /// Record Format.
            recfmt, set_recfmt: u16 @ field::RECFMT;
        });
    };
}

cm_view!(
    /// A read/write view of the CM request private data.
    CmRequest,
    CM_REQUEST_LEN,
    "cm request private data"
);
cm_view!(
    /// A read/write view of the CM accept private data.
    CmAccept,
    CM_ACCEPT_LEN,
    "cm accept private data"
);
cm_view!(
    /// A read/write view of the CM reject private data.
    CmReject,
    CM_REJECT_LEN,
    "cm reject private data"
);

accessors!(CmRequest {
    /// Queue ID.
    qid, set_qid: u16 @ field::REQ_QID;
    /// Host Receive Queue Size.
    hrqsize, set_hrqsize: u16 @ field::REQ_HRQSIZE;
    /// Host Send Queue Size (0's based).
    hsqsize, set_hsqsize: u16 @ field::REQ_HSQSIZE;
    /// Controller ID.
    cntlid, set_cntlid: u16 @ field::REQ_CNTLID;
});

accessors!(CmAccept {
    /// Controller Receive Queue Size.
    crqsize, set_crqsize: u16 @ field::ACC_CRQSIZE;
});

accessors!(CmReject {
    /// Status, raw.
    sts, set_sts: u16 @ field::REJ_STS;
});

/// Parsed CM request private data (host to target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CmRequestRepr {
    /// Record Format (0).
    pub recfmt: u16,
    /// Queue ID: 0 for the admin queue.
    pub qid: u16,
    /// Host receive queue size: receive buffers the host posted for responses.
    pub hrqsize: u16,
    /// Host send queue size, 0's based: the SQ size the host will use (SQSIZE).
    pub hsqsize: u16,
    /// Controller ID (0 when the host does not send it).
    pub cntlid: u16,
}

impl CmRequestRepr {
    /// Parses the request; reserved bytes 31:10 must be zero.
    pub fn parse<T: AsRef<[u8]>>(v: &CmRequest<T>) -> Result<CmRequestRepr> {
        v.check_len()?;
        check_zero(
            v.buffer.as_ref(),
            field::REQ_RESERVED,
            "cm request reserved bytes 31:10",
        )?;
        Ok(CmRequestRepr {
            recfmt: v.recfmt(),
            qid: v.qid(),
            hrqsize: v.hrqsize(),
            hsqsize: v.hsqsize(),
            cntlid: v.cntlid(),
        })
    }

    /// Parses `bytes` (at least 32; more is ignored).
    pub fn parse_bytes(bytes: &[u8]) -> Result<CmRequestRepr> {
        CmRequestRepr::parse(&CmRequest::new_checked(bytes)?)
    }

    /// Length of the emitted private data (32).
    pub const fn buffer_len(&self) -> usize {
        CM_REQUEST_LEN
    }

    /// Writes the request into the first 32 bytes of `buf`, reserved bytes zeroed.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("cm request private data", CM_REQUEST_LEN, buf.len())?;
        let buf = &mut buf[..CM_REQUEST_LEN];
        buf.fill(0);
        let mut v = CmRequest::new_unchecked(buf);
        v.set_recfmt(self.recfmt);
        v.set_qid(self.qid);
        v.set_hrqsize(self.hrqsize);
        v.set_hsqsize(self.hsqsize);
        v.set_cntlid(self.cntlid);
        Ok(())
    }

    /// The 32 emitted bytes.
    pub fn to_bytes(&self) -> [u8; CM_REQUEST_LEN] {
        let mut b = [0u8; CM_REQUEST_LEN];
        // Cannot fail: the buffer has the right length.
        let _ = self.emit(&mut b);
        b
    }
}

/// Parsed CM accept private data (target to host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CmAcceptRepr {
    /// Record Format (0).
    pub recfmt: u16,
    /// Controller receive queue size.
    pub crqsize: u16,
}

impl CmAcceptRepr {
    /// Parses the accept; reserved bytes 31:4 must be zero.
    pub fn parse<T: AsRef<[u8]>>(v: &CmAccept<T>) -> Result<CmAcceptRepr> {
        v.check_len()?;
        check_zero(
            v.buffer.as_ref(),
            field::ACC_RESERVED,
            "cm accept reserved bytes 31:4",
        )?;
        Ok(CmAcceptRepr {
            recfmt: v.recfmt(),
            crqsize: v.crqsize(),
        })
    }

    /// Parses `bytes` (at least 32; more is ignored).
    pub fn parse_bytes(bytes: &[u8]) -> Result<CmAcceptRepr> {
        CmAcceptRepr::parse(&CmAccept::new_checked(bytes)?)
    }

    /// Length of the emitted private data (32).
    pub const fn buffer_len(&self) -> usize {
        CM_ACCEPT_LEN
    }

    /// Writes the accept into the first 32 bytes of `buf`, reserved bytes zeroed.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("cm accept private data", CM_ACCEPT_LEN, buf.len())?;
        let buf = &mut buf[..CM_ACCEPT_LEN];
        buf.fill(0);
        let mut v = CmAccept::new_unchecked(buf);
        v.set_recfmt(self.recfmt);
        v.set_crqsize(self.crqsize);
        Ok(())
    }

    /// The 32 emitted bytes.
    pub fn to_bytes(&self) -> [u8; CM_ACCEPT_LEN] {
        let mut b = [0u8; CM_ACCEPT_LEN];
        // Cannot fail: the buffer has the right length.
        let _ = self.emit(&mut b);
        b
    }
}

/// Parsed CM reject private data (target to host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CmRejectRepr {
    /// Record Format (0).
    pub recfmt: u16,
    /// Why the target rejected the connection.
    pub status: CmRejectStatus,
}

impl CmRejectRepr {
    /// Parses the reject; an undefined STS is an error naming `cm_reject.sts`.
    pub fn parse<T: AsRef<[u8]>>(v: &CmReject<T>) -> Result<CmRejectRepr> {
        v.check_len()?;
        Ok(CmRejectRepr {
            recfmt: v.recfmt(),
            status: CmRejectStatus::try_from(v.sts())?,
        })
    }

    /// Parses `bytes` (at least 4; more is ignored).
    pub fn parse_bytes(bytes: &[u8]) -> Result<CmRejectRepr> {
        CmRejectRepr::parse(&CmReject::new_checked(bytes)?)
    }

    /// Length of the emitted private data (4).
    pub const fn buffer_len(&self) -> usize {
        CM_REJECT_LEN
    }

    /// Writes the reject into the first 4 bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("cm reject private data", CM_REJECT_LEN, buf.len())?;
        let mut v = CmReject::new_unchecked(&mut buf[..CM_REJECT_LEN]);
        v.set_recfmt(self.recfmt);
        v.set_sts(self.status.into());
        Ok(())
    }

    /// The 4 emitted bytes.
    pub fn to_bytes(&self) -> [u8; CM_REJECT_LEN] {
        let mut b = [0u8; CM_REJECT_LEN];
        // Cannot fail: the buffer has the right length.
        let _ = self.emit(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::reserved;

    #[test]
    fn request_by_hand() {
        let mut b = [0u8; 56]; // as padded in an IB/RoCE REQ
        b[2] = 1; // QID 1
        b[4] = 128; // HRQSIZE 128
        b[6] = 127; // HSQSIZE 127 (0's based)
        b[8] = 0x05; // CNTLID 5
        let r = CmRequestRepr::parse_bytes(&b).unwrap();
        assert_eq!(
            r,
            CmRequestRepr {
                recfmt: 0,
                qid: 1,
                hrqsize: 128,
                hsqsize: 127,
                cntlid: 5
            }
        );
        assert_eq!(&r.to_bytes()[..], &b[..32]);
        b[31] = 1;
        assert_eq!(
            reserved(CmRequestRepr::parse_bytes(&b)),
            ("cm request reserved bytes 31:10", 31)
        );
        // Past byte 32 is not part of the structure.
        b[31] = 0;
        b[40] = 0xff;
        assert!(CmRequestRepr::parse_bytes(&b).is_ok());
    }

    #[test]
    fn accept_and_reject_by_hand() {
        let a = CmAcceptRepr {
            recfmt: 0,
            crqsize: 0x0120,
        };
        let b = a.to_bytes();
        assert_eq!(&b[..4], &[0, 0, 0x20, 0x01]);
        assert!(b[4..].iter().all(|&x| x == 0));
        assert_eq!(CmAcceptRepr::parse_bytes(&b), Ok(a));

        let r = CmRejectRepr {
            recfmt: 0,
            status: CmRejectStatus::InvalidHsqsize,
        };
        assert_eq!(r.to_bytes(), [0, 0, 0x04, 0]);
        assert_eq!(CmRejectRepr::parse_bytes(&[0, 0, 0x04, 0]), Ok(r));
        assert_eq!(
            CmRejectRepr::parse_bytes(&[0, 0, 0x0a, 0]),
            Err(WireError::BadValue {
                field: "cm_reject.sts",
                value: 0x0a
            })
        );
    }

    #[test]
    fn reject_status_values() {
        for (i, s) in CmRejectStatus::ALL.iter().enumerate() {
            assert_eq!(u16::from(*s), i as u16 + 1);
            assert_eq!(CmRejectStatus::try_from(i as u16 + 1), Ok(*s));
        }
        assert!(CmRejectStatus::try_from(0).is_err());
    }

    #[test]
    fn truncated() {
        for n in 0..32 {
            assert!(matches!(
                CmRequestRepr::parse_bytes(&[0u8; 32][..n]),
                Err(WireError::Truncated { need: 32, .. })
            ));
            assert!(matches!(
                CmAcceptRepr::parse_bytes(&[0u8; 32][..n]),
                Err(WireError::Truncated { need: 32, .. })
            ));
        }
        for n in 0..4 {
            assert!(matches!(
                CmRejectRepr::parse_bytes(&[0, 0, 1, 0][..n]),
                Err(WireError::Truncated { need: 4, .. })
            ));
        }
        assert!(CmRequestRepr::default().emit(&mut [0u8; 31]).is_err());
    }
}
