//! Device capabilities for NVMe-oF offload (`ibv_query_device_ex` → `nvmf_caps`).
//!
//! Every field of the RFC is here, with the review's and the shipped driver's additions.
//! Values are stored as real numbers, never log2 and never "2^16 encoded as 0": a queue
//! depth of 65536 is stored as 65536 (hence `u32` where the RFC had `u16`).
//!
//! For the optional upper limits that later implementations added, **0 means "no
//! limit"**: `max_staging_buf_size`, `max_cmd_timeout_us`, `max_frontend_nsid`.
//! Command timeouts are `u32` microseconds (as mlx5's `*_cmd_timeout_us`) so that a
//! profile stays plain TOML; use [`NvmfCaps::min_cmd_timeout`] for a `Duration`.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ops::{OffloadOps, OffloadType};

/// Bytes of an NVMe submission queue entry (and of a command capsule without data).
pub const SQE_SIZE: u64 = 64;
/// Bytes of an NVMe completion queue entry.
pub const CQE_SIZE: u64 = 16;
/// Bytes of an NVMe doorbell register.
pub const DOORBELL_SIZE: u64 = 4;
/// The smallest IOCCSZ: a capsule holding only the 64-byte SQE, in 16-byte units.
pub const MIN_IOCCSZ: u32 = 4;
/// Fewest entries an NVMe queue can have (one slot always stays empty).
pub const MIN_QUEUE_DEPTH: u32 = 2;
/// Most entries an NVMe queue can have (CAP.MQES is 0's based, 16 bits).
pub const MAX_QUEUE_DEPTH: u32 = 65536;
/// The broadcast namespace id, never a real namespace.
pub const NSID_BROADCAST: u32 = 0xFFFF_FFFF;
/// Smallest LBA data size: 512-byte data, no metadata.
pub const MIN_LBA_DATA_SIZE: u32 = 512;
/// Largest `nvme_log_page_sz` (log2 of 4 KiB units): NVMe CC.MPS is 4 bits.
pub const MAX_NVME_LOG_PAGE_SZ: u8 = 15;

/// What a device can offload and its limits (`struct ibv_nvmf_caps` and later additions).
///
/// `Default` is a device without NVMe-oF offload (every field 0 or empty). Loadable from a
/// TOML profile: offload types are written as flag names (`"READ_WRITE_FLUSH | READ"`),
/// unknown keys are refused, and the post-RFC fields may be left out (they default to 0 /
/// false / none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvmfCaps {
    /// Offloads possible on DC transport QPs (unused by NVMe-oF/RDMA, reported as given).
    pub offload_type_dc: OffloadType,
    /// Offloads possible on RC QPs; empty = no NVMe-oF offload on this device.
    pub offload_type_rc: OffloadType,
    /// Most backend controllers on the whole device.
    pub max_backend_ctrls_total: u32,
    /// Most backend controllers on one SRQ.
    pub max_srq_backend_ctrls: u32,
    /// Most namespaces mapped on one SRQ (bound of the SRQ's `max_namespaces`).
    pub max_srq_namespaces: u32,
    /// Most namespaces mapped over all SRQs (seed review).
    pub max_namespaces: u32,
    /// Smallest staging buffer, bytes.
    pub min_staging_buf_size: u64,
    /// Largest staging buffer, bytes; 0 = no limit (shipped driver).
    #[serde(default)]
    pub max_staging_buf_size: u64,
    /// Largest I/O transfer of one NVMe-oF command, bytes (MDTS is derived from it).
    pub max_io_sz: u32,
    /// Largest backend queue depth, entries.
    pub max_nvme_queue_depth: u32,
    /// Smallest backend queue depth, entries.
    pub min_nvme_queue_depth: u32,
    /// Largest I/O command capsule size, 16-byte units.
    pub max_ioccsz: u32,
    /// Smallest I/O command capsule size, 16-byte units.
    pub min_ioccsz: u32,
    /// Largest in-capsule data offset, 16-byte units.
    pub max_icdoff: u16,
    /// Whether an offloaded QP also passes non-offloaded commands to software; if not,
    /// such a command puts the QP in error with `UNSUPPORTED_NVMF_OP` (seed review).
    #[serde(default)]
    pub supports_non_offloaded_ops: bool,
    /// Smallest backend command timeout, µs; 0 = no lower bound besides 0 (= default).
    #[serde(default)]
    pub min_cmd_timeout_us: u32,
    /// Largest backend command timeout, µs; 0 = no limit.
    #[serde(default)]
    pub max_cmd_timeout_us: u32,
    /// Largest front-facing nsid the device can map; 0 = any valid nsid.
    #[serde(default)]
    pub max_frontend_nsid: u32,
    /// LBA data sizes (data + metadata bytes per block) namespaces may be mapped with,
    /// e.g. 512, 520, 4096, 4104, 4160.
    #[serde(default)]
    pub lba_data_sizes: BTreeSet<u32>,
    /// Most SQs a backend controller may have besides its first (round-robin, seed
    /// review); 0 = one SQ per controller. Project extension.
    #[serde(default)]
    pub max_extra_sqs: u32,
    /// Whether the device reports `QP_LAST_NVME_CQE_REACHED` (shipped driver).
    #[serde(default)]
    pub qp_last_nvme_cqe_reached: bool,
}

/// One inconsistency found by [`NvmfCaps::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapsProblem {
    /// An offload type field has bits no known capability names.
    UnknownOffloadTypeBits {
        /// `offload_type_dc` or `offload_type_rc`.
        field: &'static str,
        /// The unknown bits.
        bits: u32,
    },
    /// A limit is 0 on a device that offloads.
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A value exceeds the field that should bound it (min > max, per SRQ > total).
    Exceeds {
        /// The bounded field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The bounding field.
        bound: &'static str,
        /// Its value.
        bound_value: u64,
    },
    /// A queue depth outside 2..=65536.
    QueueDepthRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// An IOCCSZ below 4 (a capsule smaller than an SQE).
    IoccszBelowSqe {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// A device that offloads lists no LBA data size.
    NoLbaDataSizes,
    /// An LBA data size below 512.
    LbaDataSizeTooSmall {
        /// The size.
        size: u32,
    },
}

impl fmt::Display for CapsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapsProblem::UnknownOffloadTypeBits { field, bits } => {
                write!(f, "{field} has unknown bits {bits:#x}")
            }
            CapsProblem::Zero { field } => write!(f, "{field} is 0 on an offloading device"),
            CapsProblem::Exceeds {
                field,
                value,
                bound,
                bound_value,
            } => write!(f, "{field} ({value}) exceeds {bound} ({bound_value})"),
            CapsProblem::QueueDepthRange { field, value } => {
                write!(f, "{field} ({value}) outside 2..=65536")
            }
            CapsProblem::IoccszBelowSqe { field, value } => {
                write!(f, "{field} ({value}) below 4 (one 64-byte SQE)")
            }
            CapsProblem::NoLbaDataSizes => write!(f, "lba_data_sizes is empty"),
            CapsProblem::LbaDataSizeTooSmall { size } => {
                write!(f, "lba_data_sizes has {size}, below 512")
            }
        }
    }
}

impl NvmfCaps {
    /// A consistent, modest profile for tests and examples (not any real device):
    /// read/write/flush on RC, 64 controllers (16 per SRQ), 256 namespaces (64 per SRQ),
    /// staging 2..=64 MiB, 128 KiB I/O, queue depth 16..=1024, IOCCSZ 4..=260, ICDOFF ≤ 16,
    /// timeouts 1 ms..=60 s, nsid ≤ 1024, LBA data sizes 512/520/4096/4104/4160.
    pub fn typical() -> NvmfCaps {
        NvmfCaps {
            offload_type_dc: OffloadType::empty(),
            offload_type_rc: OffloadType::READ_WRITE_FLUSH,
            max_backend_ctrls_total: 64,
            max_srq_backend_ctrls: 16,
            max_srq_namespaces: 64,
            max_namespaces: 256,
            min_staging_buf_size: 2 << 20,
            max_staging_buf_size: 64 << 20,
            max_io_sz: 128 << 10,
            max_nvme_queue_depth: 1024,
            min_nvme_queue_depth: 16,
            max_ioccsz: 260,
            min_ioccsz: MIN_IOCCSZ,
            max_icdoff: 16,
            supports_non_offloaded_ops: true,
            min_cmd_timeout_us: 1_000,
            max_cmd_timeout_us: 60_000_000,
            max_frontend_nsid: 1024,
            lba_data_sizes: [512, 520, 4096, 4104, 4160].into_iter().collect(),
            max_extra_sqs: 3,
            qp_last_nvme_cqe_reached: true,
        }
    }

    /// Whether the device offloads NVMe-oF on RC QPs at all (`offload_type_rc` has a
    /// known bit).
    pub fn offload_supported(&self) -> bool {
        self.offload_type_rc.intersects(OffloadType::all())
    }

    /// Every operation an SRQ may ask for (see [`super::ops`] for the rule).
    pub fn allowed_offload_ops(&self) -> OffloadOps {
        self.offload_type_rc.ops()
    }

    /// Whether an SRQ may ask for exactly `ops`: non-empty, known bits, within
    /// [`NvmfCaps::allowed_offload_ops`].
    pub fn offload_ops_allowed(&self, ops: OffloadOps) -> bool {
        self.offload_type_rc.allows(ops)
    }

    /// Whether namespaces may be mapped with this LBA data size.
    pub fn supports_lba_data_size(&self, size: u32) -> bool {
        self.lba_data_sizes.contains(&size)
    }

    /// Whether `nsid` may be a front-facing nsid: not 0, not broadcast, and within
    /// `max_frontend_nsid` when that is set.
    pub fn fe_nsid_allowed(&self, nsid: u32) -> bool {
        nsid != 0
            && nsid != NSID_BROADCAST
            && (self.max_frontend_nsid == 0 || nsid <= self.max_frontend_nsid)
    }

    /// Whether a staging buffer of `len` bytes is within the size limits (len > 0).
    pub fn staging_len_allowed(&self, len: u64) -> bool {
        len > 0
            && len >= self.min_staging_buf_size
            && (self.max_staging_buf_size == 0 || len <= self.max_staging_buf_size)
    }

    /// Whether a backend command timeout of `us` µs is accepted (0 = device default).
    pub fn cmd_timeout_allowed(&self, us: u32) -> bool {
        us == 0
            || (us >= self.min_cmd_timeout_us
                && (self.max_cmd_timeout_us == 0 || us <= self.max_cmd_timeout_us))
    }

    /// The smallest custom command timeout.
    pub fn min_cmd_timeout(&self) -> Duration {
        Duration::from_micros(self.min_cmd_timeout_us.into())
    }

    /// The largest custom command timeout; `None` = no limit.
    pub fn max_cmd_timeout(&self) -> Option<Duration> {
        (self.max_cmd_timeout_us != 0)
            .then(|| Duration::from_micros(self.max_cmd_timeout_us.into()))
    }

    /// Checks the profile is self-consistent. A device without offload (no known bit in
    /// either offload type) only has its offload type bits checked. Otherwise: every count, size
    /// and depth limit is non-zero; queue depths are real values in 2..=65536; IOCCSZ
    /// limits are ≥ 4; each min ≤ its max (optional maxima only when set); per-SRQ
    /// limits ≤ device totals; at least one LBA data size, each ≥ 512.
    pub fn validate(&self) -> Result<(), Vec<CapsProblem>> {
        let mut p = Vec::new();
        for (field, t) in [
            ("offload_type_dc", self.offload_type_dc),
            ("offload_type_rc", self.offload_type_rc),
        ] {
            if t.unknown_bits() != 0 {
                p.push(CapsProblem::UnknownOffloadTypeBits {
                    field,
                    bits: t.unknown_bits(),
                });
            }
        }
        if !self.offload_type_rc.intersects(OffloadType::all())
            && !self.offload_type_dc.intersects(OffloadType::all())
        {
            return if p.is_empty() { Ok(()) } else { Err(p) };
        }
        for (field, v) in [
            ("max_backend_ctrls_total", self.max_backend_ctrls_total),
            ("max_srq_backend_ctrls", self.max_srq_backend_ctrls),
            ("max_srq_namespaces", self.max_srq_namespaces),
            ("max_namespaces", self.max_namespaces),
            ("max_io_sz", self.max_io_sz),
            ("max_ioccsz", self.max_ioccsz),
            ("min_ioccsz", self.min_ioccsz),
        ] {
            if v == 0 {
                p.push(CapsProblem::Zero { field });
            }
        }
        for (field, value) in [
            ("min_nvme_queue_depth", self.min_nvme_queue_depth),
            ("max_nvme_queue_depth", self.max_nvme_queue_depth),
        ] {
            if !(MIN_QUEUE_DEPTH..=MAX_QUEUE_DEPTH).contains(&value) {
                p.push(CapsProblem::QueueDepthRange { field, value });
            }
        }
        for (field, value) in [
            ("min_ioccsz", self.min_ioccsz),
            ("max_ioccsz", self.max_ioccsz),
        ] {
            if value != 0 && value < MIN_IOCCSZ {
                p.push(CapsProblem::IoccszBelowSqe { field, value });
            }
        }
        let mut bounded = |field, value: u64, bound, bound_value: u64, applies: bool| {
            if applies && value > bound_value {
                p.push(CapsProblem::Exceeds {
                    field,
                    value,
                    bound,
                    bound_value,
                });
            }
        };
        bounded(
            "min_nvme_queue_depth",
            self.min_nvme_queue_depth.into(),
            "max_nvme_queue_depth",
            self.max_nvme_queue_depth.into(),
            true,
        );
        bounded(
            "min_ioccsz",
            self.min_ioccsz.into(),
            "max_ioccsz",
            self.max_ioccsz.into(),
            true,
        );
        bounded(
            "min_staging_buf_size",
            self.min_staging_buf_size,
            "max_staging_buf_size",
            self.max_staging_buf_size,
            self.max_staging_buf_size != 0,
        );
        bounded(
            "min_cmd_timeout_us",
            self.min_cmd_timeout_us.into(),
            "max_cmd_timeout_us",
            self.max_cmd_timeout_us.into(),
            self.max_cmd_timeout_us != 0,
        );
        bounded(
            "max_srq_backend_ctrls",
            self.max_srq_backend_ctrls.into(),
            "max_backend_ctrls_total",
            self.max_backend_ctrls_total.into(),
            true,
        );
        bounded(
            "max_srq_namespaces",
            self.max_srq_namespaces.into(),
            "max_namespaces",
            self.max_namespaces.into(),
            true,
        );
        if self.lba_data_sizes.is_empty() {
            p.push(CapsProblem::NoLbaDataSizes);
        }
        for &size in self.lba_data_sizes.range(..MIN_LBA_DATA_SIZE) {
            p.push(CapsProblem::LbaDataSizeTooSmall { size });
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_and_default_are_consistent() {
        assert_eq!(NvmfCaps::typical().validate(), Ok(()));
        assert_eq!(NvmfCaps::default().validate(), Ok(()));
        assert!(!NvmfCaps::default().offload_supported());
        assert!(NvmfCaps::typical().offload_supported());
    }

    #[test]
    fn no_offload_device_only_checks_bits() {
        let caps = NvmfCaps {
            offload_type_dc: OffloadType::from_bits_retain(1 << 30),
            ..NvmfCaps::default()
        };
        assert_eq!(
            caps.validate(),
            Err(vec![CapsProblem::UnknownOffloadTypeBits {
                field: "offload_type_dc",
                bits: 1 << 30
            }])
        );
    }

    #[test]
    fn min_above_max_is_reported_per_pair() {
        let caps = NvmfCaps {
            min_nvme_queue_depth: 2048,
            min_ioccsz: 300,
            min_staging_buf_size: 128 << 20,
            min_cmd_timeout_us: 61_000_000,
            max_srq_backend_ctrls: 65,
            max_srq_namespaces: 257,
            ..NvmfCaps::typical()
        };
        let problems = caps.validate().unwrap_err();
        let fields: Vec<_> = problems
            .iter()
            .map(|p| match p {
                CapsProblem::Exceeds { field, .. } => *field,
                other => panic!("unexpected {other}"),
            })
            .collect();
        assert_eq!(
            fields,
            [
                "min_nvme_queue_depth",
                "min_ioccsz",
                "min_staging_buf_size",
                "min_cmd_timeout_us",
                "max_srq_backend_ctrls",
                "max_srq_namespaces"
            ]
        );
    }

    #[test]
    fn zero_maxima_mean_no_limit() {
        let caps = NvmfCaps {
            max_staging_buf_size: 0,
            max_cmd_timeout_us: 0,
            max_frontend_nsid: 0,
            ..NvmfCaps::typical()
        };
        assert_eq!(caps.validate(), Ok(()));
        assert!(caps.staging_len_allowed(u64::MAX));
        assert!(caps.cmd_timeout_allowed(u32::MAX));
        assert!(caps.fe_nsid_allowed(0xFFFF_FFFE));
        assert!(!caps.fe_nsid_allowed(NSID_BROADCAST));
        assert!(!caps.fe_nsid_allowed(0));
        assert_eq!(caps.max_cmd_timeout(), None);
    }

    #[test]
    fn queue_depth_is_stored_as_real_value() {
        let caps = NvmfCaps {
            max_nvme_queue_depth: 65536,
            ..NvmfCaps::typical()
        };
        assert_eq!(caps.validate(), Ok(()));
        let encoded = NvmfCaps {
            max_nvme_queue_depth: 0,
            ..NvmfCaps::typical()
        };
        let problems = encoded.validate().unwrap_err();
        assert!(problems.contains(&CapsProblem::QueueDepthRange {
            field: "max_nvme_queue_depth",
            value: 0
        }));
        let too_big = NvmfCaps {
            max_nvme_queue_depth: 65537,
            ..NvmfCaps::typical()
        };
        assert!(too_big.validate().is_err());
    }

    #[test]
    fn zero_limits_and_small_sizes_are_reported() {
        let caps = NvmfCaps {
            max_io_sz: 0,
            min_ioccsz: 2,
            lba_data_sizes: [256, 4096].into_iter().collect(),
            ..NvmfCaps::typical()
        };
        let p = caps.validate().unwrap_err();
        assert!(p.contains(&CapsProblem::Zero { field: "max_io_sz" }));
        assert!(p.contains(&CapsProblem::IoccszBelowSqe {
            field: "min_ioccsz",
            value: 2
        }));
        assert!(p.contains(&CapsProblem::LbaDataSizeTooSmall { size: 256 }));
        let empty = NvmfCaps {
            lba_data_sizes: BTreeSet::new(),
            ..NvmfCaps::typical()
        };
        assert_eq!(empty.validate(), Err(vec![CapsProblem::NoLbaDataSizes]));
    }

    #[test]
    fn helpers() {
        let caps = NvmfCaps::typical();
        assert!(caps.supports_lba_data_size(4160));
        assert!(!caps.supports_lba_data_size(4112));
        assert!(caps.offload_ops_allowed(OffloadOps::READ_WRITE_FLUSH));
        assert!(!caps.offload_ops_allowed(OffloadOps::WRITE_ZEROES));
        assert_eq!(caps.allowed_offload_ops(), OffloadOps::READ_WRITE_FLUSH);
        assert_eq!(caps.min_cmd_timeout(), Duration::from_millis(1));
        assert_eq!(caps.max_cmd_timeout(), Some(Duration::from_secs(60)));
        assert!(caps.cmd_timeout_allowed(0));
        assert!(!caps.cmd_timeout_allowed(999));
        assert!(!caps.staging_len_allowed(0));
        assert!(caps.fe_nsid_allowed(1024));
        assert!(!caps.fe_nsid_allowed(1025));
        assert_eq!(
            CapsProblem::Exceeds {
                field: "min_ioccsz",
                value: 5,
                bound: "max_ioccsz",
                bound_value: 4
            }
            .to_string(),
            "min_ioccsz (5) exceeds max_ioccsz (4)"
        );
    }

    /// A profile as a TOML file would give it: a map of scalars, flag strings and lists.
    mod profile {
        use serde::de::value::{Error, MapDeserializer, SeqDeserializer};
        use serde::de::{IntoDeserializer, Visitor};
        use serde::{forward_to_deserialize_any, Deserializer};

        pub enum V {
            U(u64),
            B(bool),
            S(&'static str),
            L(Vec<u64>),
        }

        impl<'de> Deserializer<'de> for V {
            type Error = Error;
            fn deserialize_any<W: Visitor<'de>>(self, v: W) -> Result<W::Value, Error> {
                match self {
                    V::U(n) => v.visit_u64(n),
                    V::B(b) => v.visit_bool(b),
                    V::S(s) => v.visit_str(s),
                    V::L(l) => v.visit_seq(SeqDeserializer::new(l.into_iter())),
                }
            }
            // Like real formats (TOML), a newtype struct is its inner value.
            fn deserialize_newtype_struct<W: Visitor<'de>>(
                self,
                _name: &'static str,
                v: W,
            ) -> Result<W::Value, Error> {
                v.visit_newtype_struct(self)
            }
            forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct seq tuple
                tuple_struct map struct enum identifier ignored_any
            }
        }

        impl IntoDeserializer<'_, Error> for V {
            type Deserializer = V;
            fn into_deserializer(self) -> V {
                self
            }
        }

        pub fn map(
            entries: Vec<(&'static str, V)>,
        ) -> MapDeserializer<'static, std::vec::IntoIter<(&'static str, V)>, Error> {
            MapDeserializer::new(entries.into_iter())
        }
    }

    fn rfc_fields() -> Vec<(&'static str, profile::V)> {
        use profile::V::*;
        vec![
            ("offload_type_dc", S("")),
            ("offload_type_rc", S("READ_WRITE_FLUSH | READ")),
            ("max_backend_ctrls_total", U(8)),
            ("max_srq_backend_ctrls", U(4)),
            ("max_srq_namespaces", U(16)),
            ("max_namespaces", U(32)),
            ("min_staging_buf_size", U(1 << 20)),
            ("max_io_sz", U(65536)),
            ("max_nvme_queue_depth", U(65536)),
            ("min_nvme_queue_depth", U(2)),
            ("max_ioccsz", U(4)),
            ("min_ioccsz", U(4)),
            ("max_icdoff", U(0)),
            ("lba_data_sizes", L(vec![4160, 512, 4096, 512])),
        ]
    }

    #[test]
    fn loads_from_a_profile_map_with_defaults_for_later_fields() {
        use serde::Deserialize;
        let caps = NvmfCaps::deserialize(profile::map(rfc_fields())).unwrap();
        assert_eq!(
            caps.offload_type_rc,
            OffloadType::READ_WRITE_FLUSH | OffloadType::READ
        );
        assert!(caps.offload_type_dc.is_empty());
        assert_eq!(caps.max_nvme_queue_depth, 65536);
        assert_eq!(
            caps.lba_data_sizes.iter().copied().collect::<Vec<_>>(),
            [512, 4096, 4160]
        );
        assert_eq!(caps.max_staging_buf_size, 0);
        assert!(!caps.supports_non_offloaded_ops);
        assert_eq!(caps.validate(), Ok(()));
    }

    #[test]
    fn profile_refuses_unknown_keys_and_flag_names() {
        use serde::Deserialize;
        let mut typo = rfc_fields();
        typo.push(("max_namespace", profile::V::U(3)));
        assert!(NvmfCaps::deserialize(profile::map(typo)).is_err());
        let mut bad_flag = rfc_fields();
        bad_flag[1].1 = profile::V::S("READ_WRITE_TRIM");
        assert!(NvmfCaps::deserialize(profile::map(bad_flag)).is_err());
        let mut boolean = rfc_fields();
        boolean.push(("supports_non_offloaded_ops", profile::V::B(true)));
        assert!(
            NvmfCaps::deserialize(profile::map(boolean))
                .unwrap()
                .supports_non_offloaded_ops
        );
    }
}
