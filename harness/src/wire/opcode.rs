//! Command opcodes: NVM I/O command set, the admin commands an NVMe-oF controller serves,
//! and the Fabrics command type (`fctype`) values.
//!
//! Each enum converts from a raw `u8` with `TryFrom` (unknown values are an error naming
//! the field) and back with `From`, so the raw byte stays available.
//! Sources: NVM Command Set Specification 1.0 ("Opcodes for NVM Commands"), NVMe Base
//! Specification 2.0 ("Opcodes for Admin Commands", "Fabrics Command Type").

use super::WireError;

/// The opcode byte (SQE byte 0) of every Fabrics command.
pub const FABRICS_OPCODE: u8 = 0x7f;

macro_rules! u8_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, $text:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every known value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The name used by the specification.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }
        }

        impl TryFrom<u8> for $name {
            type Error = WireError;
            fn try_from(value: u8) -> Result<Self, WireError> {
                match value {
                    $( $value => Ok($name::$variant), )*
                    _ => Err(WireError::BadValue { field: $field, value: value as u64 }),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                value as u8
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{} ({:#04x})", self.name(), *self as u8)
            }
        }
    };
}

u8_enum! {
    /// NVM command set I/O opcodes that the offload serves or the suite sends.
    pub enum NvmOpcode : "opcode" {
        /// Flush (00h).
        Flush = 0x00, "Flush";
        /// Write (01h).
        Write = 0x01, "Write";
        /// Read (02h).
        Read = 0x02, "Read";
        /// Write Zeroes (08h).
        WriteZeroes = 0x08, "Write Zeroes";
        /// Dataset Management (09h).
        DatasetManagement = 0x09, "Dataset Management";
    }
}

u8_enum! {
    /// Admin opcodes the project sends or serves: on the NVMe-oF admin queue, and to a
    /// PCIe controller's admin queue (queue creation).
    pub enum AdminOpcode : "opcode" {
        /// Delete I/O Submission Queue (00h).
        DeleteIoSq = 0x00, "Delete I/O Submission Queue";
        /// Create I/O Submission Queue (01h).
        CreateIoSq = 0x01, "Create I/O Submission Queue";
        /// Get Log Page (02h).
        GetLogPage = 0x02, "Get Log Page";
        /// Delete I/O Completion Queue (04h).
        DeleteIoCq = 0x04, "Delete I/O Completion Queue";
        /// Create I/O Completion Queue (05h).
        CreateIoCq = 0x05, "Create I/O Completion Queue";
        /// Identify (06h).
        Identify = 0x06, "Identify";
        /// Abort (08h).
        Abort = 0x08, "Abort";
        /// Set Features (09h).
        SetFeatures = 0x09, "Set Features";
        /// Get Features (0Ah).
        GetFeatures = 0x0a, "Get Features";
        /// Asynchronous Event Request (0Ch).
        AsyncEventRequest = 0x0c, "Asynchronous Event Request";
        /// Keep Alive (18h).
        KeepAlive = 0x18, "Keep Alive";
    }
}

u8_enum! {
    /// Fabrics command type (`fctype`, SQE byte 4 when the opcode is 7Fh).
    pub enum FabricsType : "fctype" {
        /// Property Set (00h).
        PropertySet = 0x00, "Property Set";
        /// Connect (01h).
        Connect = 0x01, "Connect";
        /// Property Get (04h).
        PropertyGet = 0x04, "Property Get";
        /// Authentication Send (05h).
        AuthenticationSend = 0x05, "Authentication Send";
        /// Authentication Receive (06h).
        AuthenticationReceive = 0x06, "Authentication Receive";
        /// Disconnect (08h).
        Disconnect = 0x08, "Disconnect";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvm_opcode_values() {
        assert_eq!(u8::from(NvmOpcode::Flush), 0x00);
        assert_eq!(u8::from(NvmOpcode::Write), 0x01);
        assert_eq!(u8::from(NvmOpcode::Read), 0x02);
        assert_eq!(u8::from(NvmOpcode::WriteZeroes), 0x08);
        assert_eq!(u8::from(NvmOpcode::DatasetManagement), 0x09);
        assert_eq!(
            NvmOpcode::try_from(0x03),
            Err(WireError::BadValue {
                field: "opcode",
                value: 3
            })
        );
    }

    #[test]
    fn admin_opcode_values() {
        let expect = [
            (AdminOpcode::DeleteIoSq, 0x00),
            (AdminOpcode::CreateIoSq, 0x01),
            (AdminOpcode::GetLogPage, 0x02),
            (AdminOpcode::DeleteIoCq, 0x04),
            (AdminOpcode::CreateIoCq, 0x05),
            (AdminOpcode::Identify, 0x06),
            (AdminOpcode::Abort, 0x08),
            (AdminOpcode::SetFeatures, 0x09),
            (AdminOpcode::GetFeatures, 0x0a),
            (AdminOpcode::AsyncEventRequest, 0x0c),
            (AdminOpcode::KeepAlive, 0x18),
        ];
        for (op, raw) in expect {
            assert_eq!(u8::from(op), raw);
            assert_eq!(AdminOpcode::try_from(raw), Ok(op));
        }
    }

    #[test]
    fn fabrics_types() {
        assert_eq!(FABRICS_OPCODE, 0x7f);
        let expect = [
            (FabricsType::PropertySet, 0x00),
            (FabricsType::Connect, 0x01),
            (FabricsType::PropertyGet, 0x04),
            (FabricsType::AuthenticationSend, 0x05),
            (FabricsType::AuthenticationReceive, 0x06),
            (FabricsType::Disconnect, 0x08),
        ];
        for (t, raw) in expect {
            assert_eq!(u8::from(t), raw);
            assert_eq!(FabricsType::try_from(raw), Ok(t));
        }
        assert_eq!(FabricsType::ALL.len(), 6);
        assert!(FabricsType::try_from(0x02).is_err());
        assert_eq!(FabricsType::Connect.to_string(), "Connect (0x01)");
    }

    #[test]
    fn every_u8_converts_or_errs() {
        for v in 0..=255u8 {
            if let Ok(op) = NvmOpcode::try_from(v) {
                assert_eq!(u8::from(op), v);
            }
            if let Ok(op) = AdminOpcode::try_from(v) {
                assert_eq!(u8::from(op), v);
            }
            if let Ok(t) = FabricsType::try_from(v) {
                assert_eq!(u8::from(t), v);
            }
        }
    }
}
