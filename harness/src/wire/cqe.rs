//! NVMe completion queue entry, 16 bytes (NVMe Base Specification, "Common Completion
//! Queue Entry"; Linux `struct nvme_completion`).
//!
//! | bytes | field |
//! |-------|-------|
//! | 3:0 | DW0, command specific |
//! | 7:4 | DW1, command specific |
//! | 9:8 | SQHD, SQ head pointer |
//! | 11:10 | SQID, SQ identifier |
//! | 13:12 | CID, command identifier |
//! | 15:14 | bit 0 P (phase tag), bits 15:1 status field (see [`Status`]) |

use super::field::{check_len, Field};
use super::status::Status;
use super::view::{accessors, view};
use super::Result;

/// Length of a completion queue entry in bytes.
pub const CQE_LEN: usize = 16;

/// Byte offsets inside a completion queue entry.
pub mod field {
    use super::Field;
    /// Command specific DW0 and DW1, read together as a u64.
    pub const RESULT: Field = 0..8;
    /// Dword 0.
    pub const DW0: Field = 0..4;
    /// Dword 1.
    pub const DW1: Field = 4..8;
    /// SQ Head Pointer, u16.
    pub const SQ_HEAD: Field = 8..10;
    /// SQ Identifier, u16.
    pub const SQ_ID: Field = 10..12;
    /// Command Identifier, u16.
    pub const CID: Field = 12..14;
    /// Phase tag (bit 0) and status field (bits 15:1), u16.
    pub const STATUS: Field = 14..16;
}

view!(
    /// A read/write view of a completion queue entry.
    Cqe,
    CQE_LEN,
    "cqe"
);

accessors!(Cqe {
    /// DW0 | DW1 << 32.
    result, set_result: u64 @ field::RESULT;
    /// Dword 0.
    dw0: u32 @ field::DW0;
    /// Dword 1.
    dw1: u32 @ field::DW1;
    /// SQ Head Pointer.
    sq_head, set_sq_head: u16 @ field::SQ_HEAD;
    /// SQ Identifier.
    sq_id, set_sq_id: u16 @ field::SQ_ID;
    /// Command Identifier.
    cid, set_cid: u16 @ field::CID;
    /// The raw last 16 bits: phase in bit 0, status field in bits 15:1.
    status_word, set_status_word: u16 @ field::STATUS;
});

impl<T: AsRef<[u8]>> Cqe<T> {
    /// Phase Tag (bit 0 of bytes 15:14).
    pub fn phase(&self) -> bool {
        self.status_word() & 1 != 0
    }

    /// The decoded status field.
    pub fn status(&self) -> Status {
        Status::from_field(self.status_word() >> 1)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Cqe<T> {
    /// Sets the phase tag, keeping the status.
    pub fn set_phase(&mut self, phase: bool) {
        let w = self.status_word() & !1;
        self.set_status_word(w | u16::from(phase));
    }

    /// Sets the status field, keeping the phase tag (out-of-range bits are masked).
    pub fn set_status(&mut self, status: Status) {
        let w = self.status_word() & 1;
        self.set_status_word(w | (status.to_field() << 1));
    }
}

/// A parsed completion queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CqeRepr {
    /// Command specific result, DW0 | DW1 << 32.
    pub result: u64,
    /// SQ Head Pointer.
    pub sq_head: u16,
    /// SQ Identifier.
    pub sq_id: u16,
    /// Command Identifier.
    pub cid: u16,
    /// Phase Tag (meaningless over fabrics, where hosts ignore it).
    pub phase: bool,
    /// Status field.
    pub status: Status,
}

impl CqeRepr {
    /// Dword 0 of the result.
    pub fn dw0(&self) -> u32 {
        self.result as u32
    }

    /// Dword 1 of the result.
    pub fn dw1(&self) -> u32 {
        (self.result >> 32) as u32
    }

    /// Parses a CQE (every bit pattern of 16 bytes is valid).
    pub fn parse<T: AsRef<[u8]>>(cqe: &Cqe<T>) -> Result<CqeRepr> {
        cqe.check_len()?;
        Ok(CqeRepr {
            result: cqe.result(),
            sq_head: cqe.sq_head(),
            sq_id: cqe.sq_id(),
            cid: cqe.cid(),
            phase: cqe.phase(),
            status: cqe.status(),
        })
    }

    /// Parses the first 16 bytes of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<CqeRepr> {
        CqeRepr::parse(&Cqe::new_checked(bytes)?)
    }

    /// Length of the emitted CQE (16).
    pub const fn buffer_len(&self) -> usize {
        CQE_LEN
    }

    /// Writes the CQE into the first 16 bytes of `buf`; fails when `buf` is short or the
    /// status has out-of-range SCT/CRD values.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("cqe", CQE_LEN, buf.len())?;
        self.status.check()?;
        let mut c = Cqe::new_unchecked(&mut buf[..CQE_LEN]);
        c.set_result(self.result);
        c.set_sq_head(self.sq_head);
        c.set_sq_id(self.sq_id);
        c.set_cid(self.cid);
        c.set_status_word((self.status.to_field() << 1) | u16::from(self.phase));
        Ok(())
    }

    /// The 16 emitted bytes.
    pub fn to_bytes(&self) -> Result<[u8; CQE_LEN]> {
        let mut b = [0u8; CQE_LEN];
        self.emit(&mut b)?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireError;

    #[test]
    fn layout_by_hand() {
        let b: [u8; 16] = [
            0x01, 0x00, 0x00, 0x00, // DW0 = 1 (e.g. a cntlid)
            0xaa, 0xbb, 0xcc, 0xdd, // DW1
            0x05, 0x00, // SQ head 5
            0x02, 0x00, // SQ id 2
            0x34, 0x12, // CID 0x1234
            0x05, 0x80, // phase 1, status field 0x4002 (Invalid Field, DNR)
        ];
        let r = CqeRepr::parse_bytes(&b).unwrap();
        assert_eq!(r.dw0(), 1);
        assert_eq!(r.dw1(), 0xddcc_bbaa);
        assert_eq!(r.sq_head, 5);
        assert_eq!(r.sq_id, 2);
        assert_eq!(r.cid, 0x1234);
        assert!(r.phase);
        assert_eq!(r.status, Status::INVALID_FIELD.with_dnr());
        assert_eq!(r.to_bytes().unwrap(), b);
    }

    #[test]
    fn emit_status_offsets() {
        let r = CqeRepr {
            cid: 9,
            status: Status::CONNECT_INVALID_PARAMETERS,
            ..Default::default()
        };
        let b = r.to_bytes().unwrap();
        // 0x182 << 1 = 0x304, phase 0.
        assert_eq!(&b[14..16], &[0x04, 0x03]);
        assert_eq!(&b[12..14], &[9, 0]);
        let r = CqeRepr {
            status: Status::HOST_PATHING_ERROR,
            phase: true,
            ..Default::default()
        };
        // 0x370 << 1 | 1 = 0x6e1.
        assert_eq!(&r.to_bytes().unwrap()[14..16], &[0xe1, 0x06]);
    }

    #[test]
    fn view_setters_keep_phase_and_status_apart() {
        let mut b = [0u8; 16];
        let mut c = Cqe::new_checked(&mut b[..]).unwrap();
        c.set_phase(true);
        c.set_status(Status::LBA_OUT_OF_RANGE.with_dnr());
        assert!(c.phase());
        c.set_phase(false);
        assert_eq!(c.status(), Status::LBA_OUT_OF_RANGE.with_dnr());
        assert_eq!(c.status_word(), 0x8100);
    }

    #[test]
    fn truncated_and_bad_status() {
        for n in 0..16 {
            assert_eq!(
                CqeRepr::parse_bytes(&[0u8; 16][..n]),
                Err(WireError::Truncated {
                    what: "cqe",
                    need: 16,
                    got: n
                })
            );
        }
        let r = CqeRepr {
            status: Status::new(9, 0),
            ..Default::default()
        };
        assert!(r.to_bytes().is_err());
        assert!(CqeRepr::default().emit(&mut [0u8; 15]).is_err());
    }
}
