//! SGL descriptors, 16 bytes (NVMe Base Specification 2.0, "Scatter Gather List (SGL)";
//! NVMe RDMA Transport Specification for the keyed and in-capsule forms).
//!
//! Byte 15 is the SGL identifier: descriptor type in bits 7:4, subtype in bits 3:0.
//!
//! | type | descriptor | layout |
//! |------|------------|--------|
//! | 0h | Data Block | address u64 @0, length u32 @8, reserved 14:12 |
//! | 1h | Bit Bucket | reserved 7:0, length u32 @8, reserved 14:12 |
//! | 2h | Segment | address u64 @0, length u32 @8, reserved 14:12 |
//! | 3h | Last Segment | address u64 @0, length u32 @8, reserved 14:12 |
//! | 4h | Keyed Data Block | address u64 @0, length u24 @8, key u32 @11 |
//!
//! Subtypes: 0h Address, 1h Offset (in-capsule, NVMe-oF), Fh Invalidate Key (keyed only,
//! RDMA: the response is sent as SEND with Invalidate).
//!
//! Decisions: subtypes Address and Offset are accepted for every unkeyed type (the
//! Offset form is how NVMe-oF places data and segments in the capsule); keyed data
//! blocks accept Address and Invalidate Key only. Type 5h (Transport SGL Data Block, used
//! by NVMe/TCP) and the vendor-specific type Fh are rejected: they are not RDMA formats.

use super::field::{check_len, check_width, check_zero, get_u24, set_u24, Field};
use super::view::{accessors, view};
use super::{Result, WireError};

/// Length of an SGL descriptor in bytes.
pub const SGL_DESC_LEN: usize = 16;
/// Identifier of an in-capsule data block (type 0h Data Block, subtype 1h Offset).
pub const SGL_ID_IN_CAPSULE: u8 = 0x01;
/// Identifier of a keyed data block with an address (type 4h, subtype 0h).
pub const SGL_ID_KEYED: u8 = 0x40;
/// Identifier of a keyed data block asking for remote invalidation (type 4h, subtype Fh).
pub const SGL_ID_KEYED_INVALIDATE: u8 = 0x4f;
/// Largest length a keyed data block can carry (24 bits).
pub const SGL_KEYED_MAX_LEN: u32 = 0x00ff_ffff;

/// Byte offsets inside an SGL descriptor.
pub mod field {
    use super::Field;
    /// Address (or offset into the capsule's data), u64.
    pub const ADDRESS: Field = 0..8;
    /// Length of an unkeyed descriptor, u32.
    pub const LENGTH: Field = 8..12;
    /// Reserved bytes of an unkeyed descriptor.
    pub const RESERVED: Field = 12..15;
    /// Length of a keyed data block, 24 bits.
    pub const KEYED_LENGTH: Field = 8..11;
    /// Memory key of a keyed data block, u32.
    pub const KEY: Field = 11..15;
    /// SGL identifier: type in bits 7:4, subtype in bits 3:0.
    pub const IDENTIFIER: usize = 15;
}

/// SGL descriptor types (the identifier's high nibble).
pub mod ty {
    /// Data Block.
    pub const DATA_BLOCK: u8 = 0x0;
    /// Bit Bucket.
    pub const BIT_BUCKET: u8 = 0x1;
    /// Segment.
    pub const SEGMENT: u8 = 0x2;
    /// Last Segment.
    pub const LAST_SEGMENT: u8 = 0x3;
    /// Keyed Data Block.
    pub const KEYED_DATA_BLOCK: u8 = 0x4;
}

mod subtype {
    pub const ADDRESS: u8 = 0x0;
    pub const OFFSET: u8 = 0x1;
    pub const INVALIDATE: u8 = 0xf;
}

view!(
    /// A read/write view of an SGL descriptor.
    Sgl,
    SGL_DESC_LEN,
    "sgl descriptor"
);

accessors!(Sgl {
    /// The SGL identifier (byte 15).
    identifier, set_identifier: u8 @ field::IDENTIFIER;
    /// Address field (bytes 7:0).
    address, set_address: u64 @ field::ADDRESS;
    /// Length of an unkeyed descriptor (bytes 11:8).
    length, set_length: u32 @ field::LENGTH;
    /// Key of a keyed data block (bytes 14:11).
    key, set_key: u32 @ field::KEY;
});

impl<T: AsRef<[u8]>> Sgl<T> {
    /// Descriptor type, bits 7:4 of the identifier.
    pub fn desc_type(&self) -> u8 {
        self.identifier() >> 4
    }

    /// Descriptor subtype, bits 3:0 of the identifier.
    pub fn subtype(&self) -> u8 {
        self.identifier() & 0xf
    }

    /// Length of a keyed data block (bytes 10:8, 24 bits).
    pub fn keyed_length(&self) -> u32 {
        get_u24(self.buffer.as_ref(), field::KEYED_LENGTH.start)
    }

    /// Bytes 14:12 of an unkeyed descriptor, as a little-endian 24-bit value.
    pub fn reserved(&self) -> u32 {
        get_u24(self.buffer.as_ref(), field::RESERVED.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Sgl<T> {
    /// Sets the 24-bit length of a keyed data block (upper 8 bits of `value` dropped).
    pub fn set_keyed_length(&mut self, value: u32) {
        set_u24(self.buffer.as_mut(), field::KEYED_LENGTH.start, value);
    }

    /// Clears bytes 14:12 (reserved in unkeyed descriptors).
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::RESERVED].fill(0);
    }
}

/// How the address field of an unkeyed descriptor is interpreted (subtype 0h or 1h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SglAddressing {
    /// 0h Address: a memory address.
    Address,
    /// 1h Offset: an offset into the capsule's in-capsule data (NVMe-oF).
    Offset,
}

impl SglAddressing {
    fn subtype(self) -> u8 {
        match self {
            SglAddressing::Address => subtype::ADDRESS,
            SglAddressing::Offset => subtype::OFFSET,
        }
    }

    fn from_subtype(st: u8, field: &'static str) -> Result<Self> {
        match st {
            subtype::ADDRESS => Ok(SglAddressing::Address),
            subtype::OFFSET => Ok(SglAddressing::Offset),
            _ => Err(WireError::BadValue {
                field,
                value: st.into(),
            }),
        }
    }
}

/// A parsed SGL descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SglRepr {
    /// Type 0h Data Block (identifier 00h, or 01h for in-capsule data).
    DataBlock {
        /// Address or in-capsule offset.
        addressing: SglAddressing,
        /// Address, or offset into the in-capsule data.
        address: u64,
        /// Length in bytes.
        length: u32,
    },
    /// Type 1h Bit Bucket: data the host discards (address bytes reserved).
    BitBucket {
        /// The subtype the host used.
        addressing: SglAddressing,
        /// Length in bytes.
        length: u32,
    },
    /// Type 2h Segment: points to the next SGL segment.
    Segment {
        /// Address or in-capsule offset.
        addressing: SglAddressing,
        /// Address of the segment.
        address: u64,
        /// Length of the segment in bytes.
        length: u32,
    },
    /// Type 3h Last Segment: points to the last SGL segment.
    LastSegment {
        /// Address or in-capsule offset.
        addressing: SglAddressing,
        /// Address of the segment.
        address: u64,
        /// Length of the segment in bytes.
        length: u32,
    },
    /// Type 4h Keyed Data Block (identifier 40h, or 4Fh with remote invalidation).
    KeyedDataBlock {
        /// Subtype Fh: the target must invalidate `key` (SEND with Invalidate).
        invalidate: bool,
        /// Remote virtual address.
        address: u64,
        /// Length in bytes, at most [`SGL_KEYED_MAX_LEN`].
        length: u32,
        /// Remote memory key (rkey).
        key: u32,
    },
}

impl SglRepr {
    /// In-capsule data block (identifier 01h) at `offset` into the capsule's data.
    pub const fn in_capsule(offset: u64, length: u32) -> SglRepr {
        SglRepr::DataBlock {
            addressing: SglAddressing::Offset,
            address: offset,
            length,
        }
    }

    /// Keyed data block (identifier 40h).
    pub const fn keyed(address: u64, length: u32, key: u32) -> SglRepr {
        SglRepr::KeyedDataBlock {
            invalidate: false,
            address,
            length,
            key,
        }
    }

    /// Keyed data block with remote invalidation (identifier 4Fh).
    pub const fn keyed_invalidate(address: u64, length: u32, key: u32) -> SglRepr {
        SglRepr::KeyedDataBlock {
            invalidate: true,
            address,
            length,
            key,
        }
    }

    /// The SGL identifier byte (type << 4 | subtype) this descriptor emits.
    pub fn identifier(&self) -> u8 {
        let (t, st) = match *self {
            SglRepr::DataBlock { addressing, .. } => (ty::DATA_BLOCK, addressing.subtype()),
            SglRepr::BitBucket { addressing, .. } => (ty::BIT_BUCKET, addressing.subtype()),
            SglRepr::Segment { addressing, .. } => (ty::SEGMENT, addressing.subtype()),
            SglRepr::LastSegment { addressing, .. } => (ty::LAST_SEGMENT, addressing.subtype()),
            SglRepr::KeyedDataBlock { invalidate, .. } => (
                ty::KEYED_DATA_BLOCK,
                if invalidate {
                    subtype::INVALIDATE
                } else {
                    subtype::ADDRESS
                },
            ),
        };
        (t << 4) | st
    }

    /// The length field.
    pub fn length(&self) -> u32 {
        match *self {
            SglRepr::DataBlock { length, .. }
            | SglRepr::BitBucket { length, .. }
            | SglRepr::Segment { length, .. }
            | SglRepr::LastSegment { length, .. }
            | SglRepr::KeyedDataBlock { length, .. } => length,
        }
    }

    /// Parses a descriptor, rejecting nonzero reserved bytes and unknown type/subtype.
    pub fn parse<T: AsRef<[u8]>>(sgl: &Sgl<T>) -> Result<SglRepr> {
        sgl.check_len()?;
        let b = sgl.buffer.as_ref();
        let st = sgl.subtype();
        let unkeyed_reserved = || check_zero(b, field::RESERVED, "sgl.reserved (bytes 14:12)");
        match sgl.desc_type() {
            ty::DATA_BLOCK => {
                let addressing = SglAddressing::from_subtype(st, "sgl.data_block.subtype")?;
                unkeyed_reserved()?;
                Ok(SglRepr::DataBlock {
                    addressing,
                    address: sgl.address(),
                    length: sgl.length(),
                })
            }
            ty::BIT_BUCKET => {
                let addressing = SglAddressing::from_subtype(st, "sgl.bit_bucket.subtype")?;
                check_zero(b, field::ADDRESS, "sgl.bit_bucket.reserved (bytes 7:0)")?;
                unkeyed_reserved()?;
                Ok(SglRepr::BitBucket {
                    addressing,
                    length: sgl.length(),
                })
            }
            ty::SEGMENT => {
                let addressing = SglAddressing::from_subtype(st, "sgl.segment.subtype")?;
                unkeyed_reserved()?;
                Ok(SglRepr::Segment {
                    addressing,
                    address: sgl.address(),
                    length: sgl.length(),
                })
            }
            ty::LAST_SEGMENT => {
                let addressing = SglAddressing::from_subtype(st, "sgl.last_segment.subtype")?;
                unkeyed_reserved()?;
                Ok(SglRepr::LastSegment {
                    addressing,
                    address: sgl.address(),
                    length: sgl.length(),
                })
            }
            ty::KEYED_DATA_BLOCK => {
                let invalidate = match st {
                    subtype::ADDRESS => false,
                    subtype::INVALIDATE => true,
                    _ => {
                        return Err(WireError::BadValue {
                            field: "sgl.keyed_data_block.subtype",
                            value: st.into(),
                        })
                    }
                };
                Ok(SglRepr::KeyedDataBlock {
                    invalidate,
                    address: sgl.address(),
                    length: sgl.keyed_length(),
                    key: sgl.key(),
                })
            }
            t => Err(WireError::BadValue {
                field: "sgl.type",
                value: t.into(),
            }),
        }
    }

    /// Parses the first 16 bytes of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<SglRepr> {
        SglRepr::parse(&Sgl::new_checked(bytes)?)
    }

    /// Length of the emitted descriptor (16).
    pub const fn buffer_len(&self) -> usize {
        SGL_DESC_LEN
    }

    /// Writes the descriptor into the first 16 bytes of `buf`, reserved bytes zeroed.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("sgl descriptor", SGL_DESC_LEN, buf.len())?;
        let mut s = Sgl::new_unchecked(&mut buf[..SGL_DESC_LEN]);
        match *self {
            SglRepr::DataBlock {
                address, length, ..
            }
            | SglRepr::Segment {
                address, length, ..
            }
            | SglRepr::LastSegment {
                address, length, ..
            } => {
                s.set_address(address);
                s.set_length(length);
                s.clear_reserved();
            }
            SglRepr::BitBucket { length, .. } => {
                s.set_address(0);
                s.set_length(length);
                s.clear_reserved();
            }
            SglRepr::KeyedDataBlock {
                address,
                length,
                key,
                ..
            } => {
                check_width(length.into(), 24, "sgl.keyed_data_block.length")?;
                s.set_address(address);
                s.set_keyed_length(length);
                s.set_key(key);
            }
        }
        s.set_identifier(self.identifier());
        Ok(())
    }

    /// The 16 emitted bytes (fails only for a keyed length over 24 bits).
    pub fn to_bytes(&self) -> Result<[u8; SGL_DESC_LEN]> {
        let mut b = [0u8; SGL_DESC_LEN];
        self.emit(&mut b)?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::reserved;

    #[test]
    fn keyed_layout_by_hand() {
        // address 0x1122334455667788, length 0x0a0b0c (3 bytes), key 0xdeadbeef, id 0x40.
        let b: [u8; 16] = [
            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // address @0
            0x0c, 0x0b, 0x0a, // length @8, 24-bit LE
            0xef, 0xbe, 0xad, 0xde, // key @11
            0x40, // identifier @15
        ];
        let r = SglRepr::parse_bytes(&b).unwrap();
        assert_eq!(
            r,
            SglRepr::keyed(0x1122_3344_5566_7788, 0x0a_0b0c, 0xdead_beef)
        );
        let mut inv = b;
        inv[15] = 0x4f;
        assert_eq!(
            SglRepr::parse_bytes(&inv).unwrap(),
            SglRepr::keyed_invalidate(0x1122_3344_5566_7788, 0x0a_0b0c, 0xdead_beef)
        );
        assert_eq!(r.to_bytes().unwrap(), b);
    }

    #[test]
    fn in_capsule_layout() {
        let r = SglRepr::in_capsule(0, 1024);
        let b = r.to_bytes().unwrap();
        assert_eq!(b[15], SGL_ID_IN_CAPSULE);
        assert_eq!(&b[0..8], &[0; 8]);
        assert_eq!(&b[8..12], &1024u32.to_le_bytes());
        assert_eq!(&b[12..15], &[0; 3]);
        assert_eq!(SglRepr::parse_bytes(&b).unwrap(), r);
    }

    #[test]
    fn unkeyed_types_by_hand() {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&0x1000u64.to_le_bytes());
        b[8..12].copy_from_slice(&0x200u32.to_le_bytes());
        for (id, expect) in [
            (
                0x00,
                SglRepr::DataBlock {
                    addressing: SglAddressing::Address,
                    address: 0x1000,
                    length: 0x200,
                },
            ),
            (
                0x20,
                SglRepr::Segment {
                    addressing: SglAddressing::Address,
                    address: 0x1000,
                    length: 0x200,
                },
            ),
            (
                0x31,
                SglRepr::LastSegment {
                    addressing: SglAddressing::Offset,
                    address: 0x1000,
                    length: 0x200,
                },
            ),
        ] {
            b[15] = id;
            assert_eq!(SglRepr::parse_bytes(&b).unwrap(), expect);
            assert_eq!(expect.identifier(), id);
        }
        // Bit bucket: the address bytes are reserved.
        b[15] = 0x10;
        assert_eq!(
            reserved(SglRepr::parse_bytes(&b)),
            ("sgl.bit_bucket.reserved (bytes 7:0)", 1)
        );
        b[0..8].fill(0);
        assert_eq!(
            SglRepr::parse_bytes(&b).unwrap(),
            SglRepr::BitBucket {
                addressing: SglAddressing::Address,
                length: 0x200
            }
        );
    }

    #[test]
    fn rejects_reserved_and_unknown() {
        let mut b = SglRepr::in_capsule(0, 64).to_bytes().unwrap();
        b[13] = 1;
        assert_eq!(
            reserved(SglRepr::parse_bytes(&b)),
            ("sgl.reserved (bytes 14:12)", 13)
        );
        let mut b = [0u8; 16];
        b[15] = 0x02; // data block, subtype 2h
        assert_eq!(
            SglRepr::parse_bytes(&b),
            Err(WireError::BadValue {
                field: "sgl.data_block.subtype",
                value: 2
            })
        );
        b[15] = 0x41; // keyed, subtype 1h (offset) is not defined for keyed
        assert_eq!(
            SglRepr::parse_bytes(&b),
            Err(WireError::BadValue {
                field: "sgl.keyed_data_block.subtype",
                value: 1
            })
        );
        b[15] = 0x5a; // NVMe/TCP transport data block
        assert_eq!(
            SglRepr::parse_bytes(&b),
            Err(WireError::BadValue {
                field: "sgl.type",
                value: 5
            })
        );
        // Keyed descriptors have no reserved bytes: bytes 11..15 are the key.
        let mut b = SglRepr::keyed(0, 0, 0).to_bytes().unwrap();
        b[12] = 0xff;
        assert!(SglRepr::parse_bytes(&b).is_ok());
    }

    #[test]
    fn truncated_and_too_long() {
        for n in 0..16 {
            assert_eq!(
                SglRepr::parse_bytes(&[0u8; 16][..n]),
                Err(WireError::Truncated {
                    what: "sgl descriptor",
                    need: 16,
                    got: n
                })
            );
        }
        assert_eq!(
            SglRepr::keyed(0, SGL_KEYED_MAX_LEN + 1, 0).to_bytes(),
            Err(WireError::BadValue {
                field: "sgl.keyed_data_block.length",
                value: 0x100_0000
            })
        );
        let mut short = [0u8; 15];
        assert!(SglRepr::keyed(0, 0, 0).emit(&mut short).is_err());
    }

    #[test]
    fn view_setters() {
        let mut b = [0xffu8; 16];
        let mut v = Sgl::new_checked(&mut b[..]).unwrap();
        v.set_address(7);
        v.set_keyed_length(0x12_3456);
        v.set_key(9);
        v.set_identifier(SGL_ID_KEYED);
        assert_eq!(v.desc_type(), 4);
        assert_eq!(v.subtype(), 0);
        assert_eq!(v.keyed_length(), 0x12_3456);
        assert_eq!(v.key(), 9);
        assert_eq!(v.address(), 7);
    }
}
