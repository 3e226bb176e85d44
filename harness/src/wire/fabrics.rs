//! Fabrics command capsules (opcode 7Fh): Connect, Property Get, Property Set, and the
//! Connect response's DW0.
//!
//! Sources: NVM Express over Fabrics 1.1, "Fabrics Command" common layout, "Connect
//! Command – Submission Queue Entry", "Connect Response", "Property Get Command",
//! "Property Set Command" (the same layouts are in the Fabrics Command Set chapter of NVMe Base 2.0);
//! cross-checked against Linux `struct nvmf_connect_command`,
//! `struct nvmf_property_{get,set}_command` and the `IPO_IATTR_CONNECT_*` helpers of the
//! kernel target.
//!
//! Common layout:
//!
//! | bytes | field |
//! |-------|-------|
//! | 0 | OPC = 7Fh |
//! | 1 | bits 7:6 PSDT, bits 5:0 reserved |
//! | 3:2 | CID |
//! | 4 | FCTYPE |
//! | 23:5 | reserved |
//! | 39:24 | SGL1 |
//! | 63:40 | command type specific (see [`field`]) |
//!
//! Decisions: the specifications mark byte 1 reserved for Fabrics commands, but Linux
//! hosts set PSDT to 01b in it for every command; PSDT is therefore kept (not checked)
//! and only bits 5:0 must be zero. Linux also puts a null keyed SGL (40h, length 0) in
//! SGL1 of Property Get/Set, so SGL1 is parsed as an SGL descriptor for every Fabrics
//! command, never as reserved bytes. CATTR is kept whole (bit 2 = disable SQ flow
//! control; the other bits vary between revisions). The Property Set VALUE is kept as a
//! u64 even for a 4-byte property.

use super::field::{check_bits, check_len, check_zero, Field};
use super::opcode::{FabricsType, FABRICS_OPCODE};
use super::sgl::{Sgl, SglRepr};
use super::sqe::{Psdt, SQE_LEN};
use super::status::Status;
use super::view::{accessors, view};
use super::{Result, WireError};

/// The Connect data and Connect SQE value of CNTLID asking for a dynamic controller.
pub const CNTLID_DYNAMIC: u16 = 0xffff;
/// CATTR bit 2: disable SQ flow control (the controller does not report SQ head).
pub const CATTR_DISABLE_SQFLOW: u8 = 1 << 2;

/// Byte offsets inside a Fabrics command SQE.
pub mod field {
    use super::Field;
    /// Opcode, always 7Fh.
    pub const OPCODE: usize = 0;
    /// PSDT (bits 7:6) and reserved bits 5:0.
    pub const FLAGS: usize = 1;
    /// Command Identifier, u16.
    pub const CID: Field = 2..4;
    /// Fabrics Command Type.
    pub const FCTYPE: usize = 4;
    /// Reserved bytes 23:5 (every Fabrics command).
    pub const RESERVED_HDR: Field = 5..24;
    /// SGL Descriptor 1.
    pub const SGL1: Field = 24..40;

    /// Connect: Record Format, u16.
    pub const CONNECT_RECFMT: Field = 40..42;
    /// Connect: Queue ID, u16 (0 = admin queue).
    pub const CONNECT_QID: Field = 42..44;
    /// Connect: Submission Queue Size, u16, 0's based.
    pub const CONNECT_SQSIZE: Field = 44..46;
    /// Connect: Connect Attributes.
    pub const CONNECT_CATTR: usize = 46;
    /// Connect: reserved byte 47.
    pub const CONNECT_RESERVED1: Field = 47..48;
    /// Connect: Keep Alive Timeout in milliseconds, u32.
    pub const CONNECT_KATO: Field = 48..52;
    /// Connect: reserved bytes 63:52.
    pub const CONNECT_RESERVED2: Field = 52..64;

    /// Property Get/Set: Attributes (bits 2:0 size, bits 7:3 reserved).
    pub const PROPERTY_ATTRIB: usize = 40;
    /// Property Get/Set: reserved bytes 43:41.
    pub const PROPERTY_RESERVED1: Field = 41..44;
    /// Property Get/Set: Offset of the property, u32.
    pub const PROPERTY_OFST: Field = 44..48;
    /// Property Get: reserved bytes 63:48.
    pub const PROPERTY_GET_RESERVED2: Field = 48..64;
    /// Property Set: Value, u64.
    pub const PROPERTY_SET_VALUE: Field = 48..56;
    /// Property Set: reserved bytes 63:56.
    pub const PROPERTY_SET_RESERVED2: Field = 56..64;
}

const FLAGS_RESERVED: u8 = 0x3f;
const PSDT_SHIFT: u8 = 6;
const ATTRIB_SIZE_MASK: u8 = 0x7;

view!(
    /// A read/write view of a Fabrics command SQE.
    FabricsCmd,
    SQE_LEN,
    "fabrics command"
);

accessors!(FabricsCmd {
    /// Opcode (7Fh for a Fabrics command).
    opcode, set_opcode: u8 @ field::OPCODE;
    /// Byte 1 as is.
    flags, set_flags: u8 @ field::FLAGS;
    /// Command Identifier.
    cid, set_cid: u16 @ field::CID;
    /// Fabrics Command Type, raw.
    fctype, set_fctype: u8 @ field::FCTYPE;
    /// Connect: Record Format.
    recfmt, set_recfmt: u16 @ field::CONNECT_RECFMT;
    /// Connect: Queue ID.
    qid, set_qid: u16 @ field::CONNECT_QID;
    /// Connect: Submission Queue Size (0's based).
    sqsize, set_sqsize: u16 @ field::CONNECT_SQSIZE;
    /// Connect: Connect Attributes.
    cattr, set_cattr: u8 @ field::CONNECT_CATTR;
    /// Connect: Keep Alive Timeout (ms).
    kato, set_kato: u32 @ field::CONNECT_KATO;
    /// Property Get/Set: Attributes byte.
    attrib, set_attrib: u8 @ field::PROPERTY_ATTRIB;
    /// Property Get/Set: property offset.
    ofst, set_ofst: u32 @ field::PROPERTY_OFST;
    /// Property Set: value.
    value, set_value: u64 @ field::PROPERTY_SET_VALUE;
});

impl<T: AsRef<[u8]>> FabricsCmd<T> {
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// PSDT, bits 7:6 of byte 1.
    pub fn psdt(&self) -> Psdt {
        Psdt::from_bits(self.flags() >> PSDT_SHIFT)
    }

    /// A view of SGL Descriptor 1.
    pub fn sgl1(&self) -> Sgl<&[u8]> {
        Sgl::new_unchecked(&self.b()[field::SGL1])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FabricsCmd<T> {
    /// SGL Descriptor 1 bytes, writable.
    pub fn sgl1_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::SGL1]
    }
}

/// Size of a property (ATTRIB bits 2:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum PropertySize {
    /// 000b: 4 bytes.
    #[default]
    Four = 0,
    /// 001b: 8 bytes.
    Eight = 1,
}

impl PropertySize {
    /// The size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            PropertySize::Four => 4,
            PropertySize::Eight => 8,
        }
    }

    fn parse(attrib: u8) -> Result<PropertySize> {
        check_bits(
            attrib.into(),
            (!ATTRIB_SIZE_MASK).into(),
            "property attrib reserved bits 7:3",
            field::PROPERTY_ATTRIB,
        )?;
        match attrib {
            0 => Ok(PropertySize::Four),
            1 => Ok(PropertySize::Eight),
            v => Err(WireError::BadValue {
                field: "property attrib.size",
                value: v.into(),
            }),
        }
    }
}

/// A parsed Connect command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectRepr {
    /// PSDT bits of byte 1 (01b from Linux and SPDK hosts).
    pub psdt: Psdt,
    /// Command Identifier.
    pub cid: u16,
    /// Where the 1024-byte Connect data is (in-capsule 01h, or keyed 40h).
    pub sgl1: SglRepr,
    /// Record Format (0 is the only defined value).
    pub recfmt: u16,
    /// Queue ID (0 = admin queue).
    pub qid: u16,
    /// Submission queue size, 0's based.
    pub sqsize: u16,
    /// Connect Attributes (see [`CATTR_DISABLE_SQFLOW`]).
    pub cattr: u8,
    /// Keep Alive Timeout in milliseconds (admin queue only).
    pub kato: u32,
}

impl ConnectRepr {
    /// A Connect with RECFMT 0, CATTR 0, PSDT 01b and the Connect data in the capsule.
    pub fn new(cid: u16, qid: u16, sqsize: u16, kato: u32) -> ConnectRepr {
        ConnectRepr {
            psdt: Psdt::SglMptrContiguous,
            cid,
            sgl1: SglRepr::in_capsule(0, super::connect_data::CONNECT_DATA_LEN as u32),
            recfmt: 0,
            qid,
            sqsize,
            cattr: 0,
            kato,
        }
    }
}

/// A parsed Property Get command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PropertyGetRepr {
    /// PSDT bits of byte 1.
    pub psdt: Psdt,
    /// Command Identifier.
    pub cid: u16,
    /// SGL1 as the host sent it (no data is transferred).
    pub sgl1: SglRepr,
    /// Property size.
    pub size: PropertySize,
    /// Property offset (e.g. 0h CAP, 14h CC, 1Ch CSTS).
    pub offset: u32,
}

/// A parsed Property Set command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PropertySetRepr {
    /// PSDT bits of byte 1.
    pub psdt: Psdt,
    /// Command Identifier.
    pub cid: u16,
    /// SGL1 as the host sent it (no data is transferred).
    pub sgl1: SglRepr,
    /// Property size.
    pub size: PropertySize,
    /// Property offset.
    pub offset: u32,
    /// Value to write (only the low 4 bytes count for a 4-byte property).
    pub value: u64,
}

/// A parsed Fabrics command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FabricsRepr {
    /// Connect (fctype 01h).
    Connect(ConnectRepr),
    /// Property Get (fctype 04h).
    PropertyGet(PropertyGetRepr),
    /// Property Set (fctype 00h).
    PropertySet(PropertySetRepr),
}

impl FabricsRepr {
    /// The Fabrics command type.
    pub fn fctype(&self) -> FabricsType {
        match self {
            FabricsRepr::Connect(_) => FabricsType::Connect,
            FabricsRepr::PropertyGet(_) => FabricsType::PropertyGet,
            FabricsRepr::PropertySet(_) => FabricsType::PropertySet,
        }
    }

    /// The Command Identifier.
    pub fn cid(&self) -> u16 {
        match self {
            FabricsRepr::Connect(c) => c.cid,
            FabricsRepr::PropertyGet(c) => c.cid,
            FabricsRepr::PropertySet(c) => c.cid,
        }
    }

    fn header(&self) -> (Psdt, u16, SglRepr) {
        match *self {
            FabricsRepr::Connect(c) => (c.psdt, c.cid, c.sgl1),
            FabricsRepr::PropertyGet(c) => (c.psdt, c.cid, c.sgl1),
            FabricsRepr::PropertySet(c) => (c.psdt, c.cid, c.sgl1),
        }
    }

    /// Parses a Fabrics command. Errors: opcode not 7Fh, a Fabrics type other than
    /// Connect / Property Get / Property Set (`BadValue` naming `fctype`), an invalid SGL1,
    /// or nonzero reserved fields.
    pub fn parse<T: AsRef<[u8]>>(cmd: &FabricsCmd<T>) -> Result<FabricsRepr> {
        cmd.check_len()?;
        let b = cmd.b();
        if cmd.opcode() != FABRICS_OPCODE {
            return Err(WireError::BadValue {
                field: "opcode",
                value: cmd.opcode().into(),
            });
        }
        check_bits(
            cmd.flags().into(),
            FLAGS_RESERVED.into(),
            "fabrics byte 1 reserved bits 5:0",
            field::FLAGS,
        )?;
        let fctype = FabricsType::try_from(cmd.fctype())?;
        check_zero(b, field::RESERVED_HDR, "fabrics reserved bytes 23:5")?;
        let psdt = cmd.psdt();
        let cid = cmd.cid();
        let sgl1 = SglRepr::parse(&cmd.sgl1())?;
        // Property Get and Set: the size attribute, then both reserved fields zero (the
        // second one, `reserved2`, is where the two commands differ).
        let property_size = |reserved2: Field, what: &'static str| -> Result<PropertySize> {
            let size = PropertySize::parse(cmd.attrib())?;
            check_zero(
                b,
                field::PROPERTY_RESERVED1,
                "property reserved bytes 43:41",
            )?;
            check_zero(b, reserved2, what)?;
            Ok(size)
        };
        match fctype {
            FabricsType::Connect => {
                check_zero(b, field::CONNECT_RESERVED1, "connect reserved byte 47")?;
                check_zero(b, field::CONNECT_RESERVED2, "connect reserved bytes 63:52")?;
                Ok(FabricsRepr::Connect(ConnectRepr {
                    psdt,
                    cid,
                    sgl1,
                    recfmt: cmd.recfmt(),
                    qid: cmd.qid(),
                    sqsize: cmd.sqsize(),
                    cattr: cmd.cattr(),
                    kato: cmd.kato(),
                }))
            }
            FabricsType::PropertyGet => {
                let size = property_size(
                    field::PROPERTY_GET_RESERVED2,
                    "property get reserved bytes 63:48",
                )?;
                Ok(FabricsRepr::PropertyGet(PropertyGetRepr {
                    psdt,
                    cid,
                    sgl1,
                    size,
                    offset: cmd.ofst(),
                }))
            }
            FabricsType::PropertySet => {
                let size = property_size(
                    field::PROPERTY_SET_RESERVED2,
                    "property set reserved bytes 63:56",
                )?;
                Ok(FabricsRepr::PropertySet(PropertySetRepr {
                    psdt,
                    cid,
                    sgl1,
                    size,
                    offset: cmd.ofst(),
                    value: cmd.value(),
                }))
            }
            other => Err(WireError::BadValue {
                field: "fctype",
                value: u8::from(other).into(),
            }),
        }
    }

    /// Parses the first 64 bytes of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<FabricsRepr> {
        FabricsRepr::parse(&FabricsCmd::new_checked(bytes)?)
    }

    /// Length of the emitted SQE (64).
    pub const fn buffer_len(&self) -> usize {
        SQE_LEN
    }

    /// Writes the command into the first 64 bytes of `buf`, reserved fields zeroed.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("fabrics command", SQE_LEN, buf.len())?;
        let (psdt, cid, sgl1) = self.header();
        let mut sgl = [0u8; 16];
        sgl1.emit(&mut sgl)?;
        let buf = &mut buf[..SQE_LEN];
        buf.fill(0);
        let mut c = FabricsCmd::new_unchecked(buf);
        c.set_opcode(FABRICS_OPCODE);
        c.set_flags((psdt as u8) << PSDT_SHIFT);
        c.set_cid(cid);
        c.set_fctype(self.fctype().into());
        c.sgl1_mut().copy_from_slice(&sgl);
        match *self {
            FabricsRepr::Connect(r) => {
                c.set_recfmt(r.recfmt);
                c.set_qid(r.qid);
                c.set_sqsize(r.sqsize);
                c.set_cattr(r.cattr);
                c.set_kato(r.kato);
            }
            FabricsRepr::PropertyGet(r) => {
                c.set_attrib(r.size as u8);
                c.set_ofst(r.offset);
            }
            FabricsRepr::PropertySet(r) => {
                c.set_attrib(r.size as u8);
                c.set_ofst(r.offset);
                c.set_value(r.value);
            }
        }
        Ok(())
    }

    /// The 64 emitted bytes.
    pub fn to_bytes(&self) -> Result<[u8; SQE_LEN]> {
        let mut b = [0u8; SQE_LEN];
        self.emit(&mut b)?;
        Ok(b)
    }
}

/// DW0 of a successful Connect response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnectSuccess {
    /// Controller ID allocated to the host (DW0 bits 15:0).
    pub cntlid: u16,
    /// Authentication requirements (DW0 bits 31:16; 0 = none), kept raw.
    pub authreq: u16,
}

impl ConnectSuccess {
    /// Decodes DW0 (every value is valid).
    pub fn from_dw0(dw0: u32) -> ConnectSuccess {
        ConnectSuccess {
            cntlid: dw0 as u16,
            authreq: (dw0 >> 16) as u16,
        }
    }

    /// Encodes DW0.
    pub fn dw0(&self) -> u32 {
        u32::from(self.cntlid) | u32::from(self.authreq) << 16
    }
}

/// DW0 of a Connect response with status Connect Invalid Parameters (1/82h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InvalidParam {
    /// Invalid Parameter Offset (IPO, DW0 bits 15:0): byte offset of the offending field,
    /// in the SQE or in the Connect data.
    pub offset: u16,
    /// IATTR bit 0 (DW0 bit 16): the offset is in the Connect data, not in the SQE.
    pub in_data: bool,
}

impl InvalidParam {
    /// The offending field is at byte `offset` of the Connect SQE.
    pub const fn sqe(offset: usize) -> InvalidParam {
        InvalidParam {
            offset: offset as u16,
            in_data: false,
        }
    }

    /// The offending field is at byte `offset` of the Connect data.
    pub const fn data(offset: usize) -> InvalidParam {
        InvalidParam {
            offset: offset as u16,
            in_data: true,
        }
    }

    /// Decodes DW0; bits 31:17 (IATTR bits 7:1 and byte 3) are reserved.
    pub fn from_dw0(dw0: u32) -> Result<InvalidParam> {
        check_bits(
            dw0.into(),
            0xfffe_0000,
            "connect response dw0 reserved bits 31:17",
            0,
        )?;
        Ok(InvalidParam {
            offset: dw0 as u16,
            in_data: dw0 & (1 << 16) != 0,
        })
    }

    /// Encodes DW0.
    pub fn dw0(&self) -> u32 {
        u32::from(self.offset) | u32::from(self.in_data) << 16
    }
}

/// The meaning of a Connect response's status and DW0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectResponse {
    /// Success: DW0 holds the controller ID.
    Success(ConnectSuccess),
    /// Connect Invalid Parameters: DW0 holds IPO/IATTR.
    InvalidParameters(InvalidParam),
    /// Any other status; DW0 kept raw.
    Failed {
        /// The status (never Success or Connect Invalid Parameters).
        status: Status,
        /// DW0 as received.
        dw0: u32,
    },
}

impl ConnectResponse {
    /// Interprets DW0 according to the status (flags such as DNR do not matter here).
    pub fn decode(status: Status, dw0: u32) -> Result<ConnectResponse> {
        if status.same_code(Status::SUCCESS) {
            Ok(ConnectResponse::Success(ConnectSuccess::from_dw0(dw0)))
        } else if status.same_code(Status::CONNECT_INVALID_PARAMETERS) {
            Ok(ConnectResponse::InvalidParameters(InvalidParam::from_dw0(
                dw0,
            )?))
        } else {
            Ok(ConnectResponse::Failed { status, dw0 })
        }
    }

    /// The status to send (without DNR; a target usually adds it on failure).
    pub fn status(&self) -> Status {
        match self {
            ConnectResponse::Success(_) => Status::SUCCESS,
            ConnectResponse::InvalidParameters(_) => Status::CONNECT_INVALID_PARAMETERS,
            ConnectResponse::Failed { status, .. } => *status,
        }
    }

    /// DW0 to send.
    pub fn dw0(&self) -> u32 {
        match self {
            ConnectResponse::Success(s) => s.dw0(),
            ConnectResponse::InvalidParameters(p) => p.dw0(),
            ConnectResponse::Failed { dw0, .. } => *dw0,
        }
    }
}

#[cfg(test)]
mod tests;
