//! Admin commands (NVMe Base Specification 2.0, "Admin Command Set"): their opcode and
//! Command Dwords 10..15 as a typed [`AdminCommand`]. An SQE carries an admin command as
//! [`SqeCommand::Other`]; [`AdminCommand::parse`] reads the fields of the commands this
//! project sends or serves and keeps any other opcode raw, [`AdminCommand::emit`] writes
//! them back. Parsing never fails: reserved bits are ignored (the target judges a
//! command's values, not its layout), and `parse(emit(c)) == c` for fields within their
//! widths.
//!
//! | opcode | command | CDW10 | CDW11 | CDW12..13 |
//! |---|---|---|---|---|
//! | 00h | Delete I/O SQ | QID 15:0 | | |
//! | 01h | Create I/O SQ | QID 15:0, QSIZE 31:16 | PC 0, QPRIO 2:1, CQID 31:16 | |
//! | 02h | Get Log Page | LID 7:0, LSP 14:8, RAE 15, NUMDL 31:16 | NUMDU 15:0, LSI 31:16 | LPO |
//! | 04h | Delete I/O CQ | QID 15:0 | | |
//! | 05h | Create I/O CQ | QID 15:0, QSIZE 31:16 | PC 0, IEN 1, IV 31:16 | |
//! | 06h | Identify | CNS 7:0, CNTID 31:16 | | |
//! | 09h | Set Features | FID 7:0, SV 31 | value | |
//! | 0Ah | Get Features | FID 7:0, SEL 10:8 | value | |
//! | 0Ch | Asynchronous Event Request | | | |
//! | 18h | Keep Alive | | | |

use core::fmt;

use super::opcode::AdminOpcode;
use super::sqe::SqeCommand;

/// Create I/O Completion Queue (05h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreateIoCqRepr {
    /// Queue identifier.
    pub qid: u16,
    /// Entries, 0's based.
    pub qsize: u16,
    /// PC: physically contiguous.
    pub pc: bool,
    /// IEN: interrupts enabled.
    pub ien: bool,
    /// IV: interrupt vector.
    pub iv: u16,
}

/// Create I/O Submission Queue (01h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreateIoSqRepr {
    /// Queue identifier.
    pub qid: u16,
    /// Entries, 0's based.
    pub qsize: u16,
    /// PC: physically contiguous.
    pub pc: bool,
    /// QPRIO (2 bits): priority under weighted round robin.
    pub qprio: u8,
    /// The CQ its completions go to.
    pub cqid: u16,
}

/// Get Log Page (02h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetLogPageRepr {
    /// Log page identifier.
    pub lid: u8,
    /// Log specific field (7 bits).
    pub lsp: u8,
    /// RAE: retain asynchronous event.
    pub rae: bool,
    /// Dwords to return, 0's based (NUMDU:NUMDL, 32 bits).
    pub numd: u32,
    /// Log specific identifier.
    pub lsi: u16,
    /// Log page offset in bytes.
    pub lpo: u64,
}

impl GetLogPageRepr {
    /// Bytes the command asks for: `(NUMD + 1) × 4`.
    pub fn bytes(&self) -> u64 {
        (u64::from(self.numd) + 1) * 4
    }
}

/// An admin command: opcode and CDW10..15.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    /// Delete I/O Submission Queue (00h).
    DeleteIoSq {
        /// Queue identifier.
        qid: u16,
    },
    /// Create I/O Submission Queue (01h).
    CreateIoSq(CreateIoSqRepr),
    /// Get Log Page (02h).
    GetLogPage(GetLogPageRepr),
    /// Delete I/O Completion Queue (04h).
    DeleteIoCq {
        /// Queue identifier.
        qid: u16,
    },
    /// Create I/O Completion Queue (05h).
    CreateIoCq(CreateIoCqRepr),
    /// Identify (06h).
    Identify {
        /// Controller or namespace structure.
        cns: u8,
        /// Controller identifier (some CNS values).
        cntid: u16,
    },
    /// Set Features (09h).
    SetFeatures {
        /// Feature identifier.
        fid: u8,
        /// SV: save.
        save: bool,
        /// CDW11: the feature's value.
        value: u32,
    },
    /// Get Features (0Ah).
    GetFeatures {
        /// Feature identifier.
        fid: u8,
        /// SEL (3 bits): current, default, saved or supported capabilities.
        sel: u8,
        /// CDW11: feature specific.
        value: u32,
    },
    /// Asynchronous Event Request (0Ch).
    AsyncEventRequest,
    /// Keep Alive (18h).
    KeepAlive,
    /// Any other opcode, its dwords raw.
    Other {
        /// The opcode.
        opcode: u8,
        /// CDW10..CDW15.
        cdw: [u32; 6],
    },
}

/// `width` bits of `v` from bit `at`.
fn bits(v: u32, at: u32, width: u32) -> u32 {
    (v >> at) & ((1u32 << width) - 1)
}

/// `v` (its low `width` bits) placed at bit `at`.
fn put(v: u32, at: u32, width: u32) -> u32 {
    (v & ((1u32 << width) - 1)) << at
}

impl AdminCommand {
    /// The command of an admin SQE's opcode and CDW10..15.
    pub fn parse(opcode: u8, cdw: [u32; 6]) -> AdminCommand {
        let [c10, c11, c12, c13, _, _] = cdw;
        let low16 = |v: u32| bits(v, 0, 16) as u16;
        let high16 = |v: u32| bits(v, 16, 16) as u16;
        match AdminOpcode::try_from(opcode) {
            Ok(AdminOpcode::DeleteIoSq) => AdminCommand::DeleteIoSq { qid: low16(c10) },
            Ok(AdminOpcode::CreateIoSq) => AdminCommand::CreateIoSq(CreateIoSqRepr {
                qid: low16(c10),
                qsize: high16(c10),
                pc: bits(c11, 0, 1) != 0,
                qprio: bits(c11, 1, 2) as u8,
                cqid: high16(c11),
            }),
            Ok(AdminOpcode::GetLogPage) => AdminCommand::GetLogPage(GetLogPageRepr {
                lid: bits(c10, 0, 8) as u8,
                lsp: bits(c10, 8, 7) as u8,
                rae: bits(c10, 15, 1) != 0,
                numd: u32::from(high16(c10)) | u32::from(low16(c11)) << 16,
                lsi: high16(c11),
                lpo: u64::from(c12) | u64::from(c13) << 32,
            }),
            Ok(AdminOpcode::DeleteIoCq) => AdminCommand::DeleteIoCq { qid: low16(c10) },
            Ok(AdminOpcode::CreateIoCq) => AdminCommand::CreateIoCq(CreateIoCqRepr {
                qid: low16(c10),
                qsize: high16(c10),
                pc: bits(c11, 0, 1) != 0,
                ien: bits(c11, 1, 1) != 0,
                iv: high16(c11),
            }),
            Ok(AdminOpcode::Identify) => AdminCommand::Identify {
                cns: bits(c10, 0, 8) as u8,
                cntid: high16(c10),
            },
            Ok(AdminOpcode::SetFeatures) => AdminCommand::SetFeatures {
                fid: bits(c10, 0, 8) as u8,
                save: bits(c10, 31, 1) != 0,
                value: c11,
            },
            Ok(AdminOpcode::GetFeatures) => AdminCommand::GetFeatures {
                fid: bits(c10, 0, 8) as u8,
                sel: bits(c10, 8, 3) as u8,
                value: c11,
            },
            Ok(AdminOpcode::AsyncEventRequest) => AdminCommand::AsyncEventRequest,
            Ok(AdminOpcode::KeepAlive) => AdminCommand::KeepAlive,
            _ => AdminCommand::Other { opcode, cdw },
        }
    }

    /// The command's opcode.
    pub fn opcode(&self) -> u8 {
        self.emit().0
    }

    /// The opcode and CDW10..15 of the command.
    pub fn emit(&self) -> (u8, [u32; 6]) {
        let pair = |low: u16, high: u16| u32::from(low) | u32::from(high) << 16;
        let (op, c10, c11, c12, c13) = match *self {
            AdminCommand::DeleteIoSq { qid } => (AdminOpcode::DeleteIoSq, u32::from(qid), 0, 0, 0),
            AdminCommand::CreateIoSq(r) => (
                AdminOpcode::CreateIoSq,
                pair(r.qid, r.qsize),
                u32::from(r.pc) | put(u32::from(r.qprio), 1, 2) | u32::from(r.cqid) << 16,
                0,
                0,
            ),
            AdminCommand::GetLogPage(r) => (
                AdminOpcode::GetLogPage,
                u32::from(r.lid)
                    | put(u32::from(r.lsp), 8, 7)
                    | u32::from(r.rae) << 15
                    | (r.numd & 0xffff) << 16,
                r.numd >> 16 | u32::from(r.lsi) << 16,
                r.lpo as u32,
                (r.lpo >> 32) as u32,
            ),
            AdminCommand::DeleteIoCq { qid } => (AdminOpcode::DeleteIoCq, u32::from(qid), 0, 0, 0),
            AdminCommand::CreateIoCq(r) => (
                AdminOpcode::CreateIoCq,
                pair(r.qid, r.qsize),
                u32::from(r.pc) | u32::from(r.ien) << 1 | u32::from(r.iv) << 16,
                0,
                0,
            ),
            AdminCommand::Identify { cns, cntid } => (
                AdminOpcode::Identify,
                u32::from(cns) | u32::from(cntid) << 16,
                0,
                0,
                0,
            ),
            AdminCommand::SetFeatures { fid, save, value } => (
                AdminOpcode::SetFeatures,
                u32::from(fid) | u32::from(save) << 31,
                value,
                0,
                0,
            ),
            AdminCommand::GetFeatures { fid, sel, value } => (
                AdminOpcode::GetFeatures,
                u32::from(fid) | put(u32::from(sel), 8, 3),
                value,
                0,
                0,
            ),
            AdminCommand::AsyncEventRequest => (AdminOpcode::AsyncEventRequest, 0, 0, 0, 0),
            AdminCommand::KeepAlive => (AdminOpcode::KeepAlive, 0, 0, 0, 0),
            AdminCommand::Other { opcode, cdw } => return (opcode, cdw),
        };
        (op.into(), [c10, c11, c12, c13, 0, 0])
    }

    /// The command as an SQE's command.
    pub fn to_sqe_command(&self) -> SqeCommand {
        let (opcode, cdw) = self.emit();
        SqeCommand::Other { opcode, cdw }
    }
}

impl fmt::Display for AdminCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminCommand::DeleteIoSq { qid } => write!(f, "Delete I/O SQ qid={qid}"),
            AdminCommand::CreateIoSq(r) => write!(
                f,
                "Create I/O SQ qid={} qsize={} cqid={} pc={}",
                r.qid,
                r.qsize,
                r.cqid,
                u8::from(r.pc)
            ),
            AdminCommand::GetLogPage(r) => write!(
                f,
                "Get Log Page lid={:#04x} len={} offset={}",
                r.lid,
                r.bytes(),
                r.lpo
            ),
            AdminCommand::DeleteIoCq { qid } => write!(f, "Delete I/O CQ qid={qid}"),
            AdminCommand::CreateIoCq(r) => write!(
                f,
                "Create I/O CQ qid={} qsize={} ien={} pc={}",
                r.qid,
                r.qsize,
                u8::from(r.ien),
                u8::from(r.pc)
            ),
            AdminCommand::Identify { cns, cntid } => {
                write!(f, "Identify cns={cns:#04x} cntid={cntid}")
            }
            AdminCommand::SetFeatures { fid, value, .. } => {
                write!(f, "Set Features fid={fid:#04x} value={value:#x}")
            }
            AdminCommand::GetFeatures { fid, sel, .. } => {
                write!(f, "Get Features fid={fid:#04x} sel={sel}")
            }
            AdminCommand::AsyncEventRequest => f.write_str("Asynchronous Event Request"),
            AdminCommand::KeepAlive => f.write_str("Keep Alive"),
            AdminCommand::Other { opcode, .. } => write!(f, "admin opcode {opcode:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_creation_as_a_driver_sends_it() {
        // Linux nvme-pci: Create I/O CQ qid 1, 1024 entries, contiguous, IEN, vector 1.
        let cq = AdminCommand::CreateIoCq(CreateIoCqRepr {
            qid: 1,
            qsize: 1023,
            pc: true,
            ien: true,
            iv: 1,
        });
        assert_eq!(cq.emit(), (0x05, [0x03ff_0001, 0x0001_0003, 0, 0, 0, 0]));
        let sq = AdminCommand::CreateIoSq(CreateIoSqRepr {
            qid: 1,
            qsize: 1023,
            pc: true,
            qprio: 0,
            cqid: 1,
        });
        assert_eq!(sq.emit(), (0x01, [0x03ff_0001, 0x0001_0001, 0, 0, 0, 0]));
        assert_eq!(AdminCommand::parse(0x01, sq.emit().1), sq);
        assert_eq!(sq.to_string(), "Create I/O SQ qid=1 qsize=1023 cqid=1 pc=1");
    }

    #[test]
    fn log_page_length_spans_both_numd_halves() {
        let r = GetLogPageRepr {
            lid: 0x70,
            numd: 0x1_0000,
            lpo: 1 << 33,
            ..GetLogPageRepr::default()
        };
        let (op, cdw) = AdminCommand::GetLogPage(r).emit();
        assert_eq!((op, cdw[0], cdw[1], cdw[3]), (0x02, 0x70, 1, 2));
        assert_eq!(r.bytes(), 0x1_0001 * 4);
        assert_eq!(AdminCommand::parse(op, cdw), AdminCommand::GetLogPage(r));
    }

    #[test]
    fn unknown_opcodes_stay_raw() {
        let c = AdminCommand::parse(0x7f, [1, 2, 3, 4, 5, 6]);
        assert_eq!(
            c,
            AdminCommand::Other {
                opcode: 0x7f,
                cdw: [1, 2, 3, 4, 5, 6]
            }
        );
        assert_eq!(c.emit(), (0x7f, [1, 2, 3, 4, 5, 6]));
    }
}
