//! Feature values of Set / Get Features (NVM Express Base Specification 2.0, "Feature
//! Values"): the Feature Identifiers a Fabrics controller knows ([`fid`]) and the layouts
//! of the dword that carries a value (Set Features CDW11, Get Features completion DW0).
//! `parse` keeps the fields listed and ignores reserved bits; `emit` writes the fields
//! (cut to their widths) and leaves the reserved bits zero.

use core::fmt;

use super::packed::packed;

/// Feature Identifiers.
pub mod fid {
    /// Arbitration (mandatory).
    pub const ARBITRATION: u8 = 0x01;
    /// Power Management (mandatory).
    pub const POWER_MANAGEMENT: u8 = 0x02;
    /// Temperature Threshold (mandatory).
    pub const TEMPERATURE_THRESHOLD: u8 = 0x04;
    /// Error Recovery (mandatory before NVMe 2.0; namespace specific since 1.4).
    pub const ERROR_RECOVERY: u8 = 0x05;
    /// Volatile Write Cache (when Identify Controller VWC reports one).
    pub const VOLATILE_WRITE_CACHE: u8 = 0x06;
    /// Number of Queues (mandatory for I/O controllers).
    pub const NUMBER_OF_QUEUES: u8 = 0x07;
    /// Interrupt Coalescing: PCIe only, reserved for NVMe over Fabrics.
    pub const INTERRUPT_COALESCING: u8 = 0x08;
    /// Interrupt Vector Configuration: PCIe only, reserved for NVMe over Fabrics.
    pub const INTERRUPT_VECTOR_CONFIGURATION: u8 = 0x09;
    /// Write Atomicity Normal (mandatory).
    pub const WRITE_ATOMICITY_NORMAL: u8 = 0x0a;
    /// Asynchronous Event Configuration (mandatory).
    pub const ASYNC_EVENT_CONFIGURATION: u8 = 0x0b;
    /// Keep Alive Timer (mandatory for NVMe over Fabrics).
    pub const KEEP_ALIVE_TIMER: u8 = 0x0f;
    /// Host Identifier (with reservations).
    pub const HOST_IDENTIFIER: u8 = 0x81;
}

packed! {
    /// Arbitration (01h).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct ArbitrationRepr: u32 {
        /// AB (bits 2:0): Arbitration Burst, 2^AB commands; 111b no limit.
        pub ab: u8 => 0, 3;
        /// LPW (bits 15:8): Low Priority Weight, 0's based.
        pub lpw: u8 => 8, 8;
        /// MPW (bits 23:16): Medium Priority Weight.
        pub mpw: u8 => 16, 8;
        /// HPW (bits 31:24): High Priority Weight.
        pub hpw: u8 => 24, 8;
    }
}

packed! {
    /// Power Management (02h).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct PowerManagementRepr: u32 {
        /// PS (bits 4:0): the power state, at most Identify's NPSS.
        pub ps: u8 => 0, 5;
        /// WH (bits 7:5): Workload Hint.
        pub wh: u8 => 5, 3;
    }
}

/// THSEL: an over temperature threshold.
pub const THSEL_OVER: u8 = 0b00;
/// THSEL: an under temperature threshold.
pub const THSEL_UNDER: u8 = 0b01;
/// TMPSEL: the Composite Temperature.
pub const TMPSEL_COMPOSITE: u8 = 0x0;
/// TMPSEL (Set Features): every temperature sensor the controller implements.
pub const TMPSEL_ALL: u8 = 0xf;

packed! {
    /// Temperature Threshold (04h): CDW11 of both commands (Get selects the threshold
    /// with TMPSEL / THSEL and returns TMPTH).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct TemperatureThresholdRepr: u32 {
        /// TMPTH (bits 15:0): the threshold, in kelvins.
        pub tmpth: u16 => 0, 16;
        /// TMPSEL (bits 19:16): which sensor.
        pub tmpsel: u8 => 16, 4;
        /// THSEL (bits 21:20): over or under threshold.
        pub thsel: u8 => 20, 2;
    }
}

packed! {
    /// Error Recovery (05h).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct ErrorRecoveryRepr: u32 {
        /// TLER (bits 15:0): Time Limited Error Recovery, 100 ms units; 0 = none.
        pub tler: u16 => 0, 16;
        /// DULBE (bit 16): Deallocated or Unwritten Logical Block Error Enable.
        pub dulbe: bool => 16, 1;
    }
}

packed! {
    /// Number of Queues (07h): requested (Set CDW11) or allocated (completion DW0), each
    /// 0's based.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct NumberOfQueuesRepr: u32 {
        /// NSQR / NSQA (bits 15:0): I/O submission queues.
        pub nsq: u16 => 0, 16;
        /// NCQR / NCQA (bits 31:16): I/O completion queues.
        pub ncq: u16 => 16, 16;
    }
}

impl fmt::Display for NumberOfQueuesRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nsq={} ncq={} (0's based)", self.nsq, self.ncq)
    }
}

/// Volatile Write Cache (06h) and Write Atomicity Normal (0Ah) are one bit, bit 0: WCE
/// (cache enabled) and DN (Disable Normal).
pub fn feature_flag(v: u32) -> bool {
    v & 1 != 0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn values_round_trip(v in any::<u32>()) {
            let a = ArbitrationRepr::parse(v);
            prop_assert_eq!(ArbitrationRepr::parse(a.emit()), a);
            let p = PowerManagementRepr::parse(v);
            prop_assert_eq!(PowerManagementRepr::parse(p.emit()), p);
            let t = TemperatureThresholdRepr::parse(v);
            prop_assert_eq!(TemperatureThresholdRepr::parse(t.emit()), t);
            let e = ErrorRecoveryRepr::parse(v);
            prop_assert_eq!(ErrorRecoveryRepr::parse(e.emit()), e);
            let q = NumberOfQueuesRepr::parse(v);
            prop_assert_eq!(q.emit(), v, "every bit of Number of Queues is a field");
        }
    }

    #[test]
    fn fields_sit_where_the_spec_puts_them() {
        let a = ArbitrationRepr {
            ab: 7,
            lpw: 1,
            mpw: 2,
            hpw: 3,
        };
        assert_eq!(a.emit(), 0x0302_0107);
        let t = TemperatureThresholdRepr {
            tmpth: 343,
            tmpsel: 0,
            thsel: THSEL_UNDER,
        };
        assert_eq!(t.emit(), 0x0010_0157);
        assert_eq!(TemperatureThresholdRepr::parse(0x00ff_0000).tmpsel, 0xf);
        assert_eq!(
            ErrorRecoveryRepr::parse(0x0001_0005),
            ErrorRecoveryRepr {
                tler: 5,
                dulbe: true
            }
        );
        assert_eq!(
            PowerManagementRepr::parse(0xff),
            PowerManagementRepr { ps: 31, wh: 7 }
        );
        let q = NumberOfQueuesRepr { nsq: 2, ncq: 6 };
        assert_eq!(q.emit(), 2 | 6 << 16);
        assert_eq!(q.to_string(), "nsq=2 ncq=6 (0's based)");
        assert!(feature_flag(1) && !feature_flag(2));
        // Reserved bits are ignored on parse and zero on emit.
        assert_eq!(ArbitrationRepr::parse(0xf8).emit(), 0);
        assert_eq!(ErrorRecoveryRepr::parse(0xfffe_0000).emit(), 0);
    }
}
