//! The rule book: pure checks of offload API arguments against [`NvmfCaps`] and against
//! the counts a provider keeps. The reference engine calls these, so what they return
//! *is* the expected behaviour every device under test is held to.
//!
//! Each check applies its rules in the order listed in its docs and returns the first
//! failure. Within one call, argument errors (EINVAL, EOPNOTSUPP) come before state errors
//! (EEXIST, ENOENT, EBUSY) and those before capacity errors (ENOSPC, ENOMEM).
//!
//! | situation | errno |
//! |---|---|
//! | device has no RC offload and an NVMe-oF SRQ is asked for | EOPNOTSUPP |
//! | any attribute outside the caps or malformed | EINVAL |
//! | handle naming no live object of the provider (SRQ, controller, QP, MR) | EINVAL |
//! | controller of another SRQ given to `remove_nvme_ctrl` | EINVAL |
//! | fe_nsid 0, 0xFFFFFFFF, or above `max_frontend_nsid` (map and unmap) | EINVAL |
//! | lba_data_size not in the caps' list | EOPNOTSUPP (= ENOTSUP) |
//! | fe_nsid already mapped on any controller of the SRQ | EEXIST |
//! | fe_nsid not mapped on that controller (unmap, counters) | ENOENT |
//! | SRQ's `max_namespaces` reached (map) | ENOSPC |
//! | `max_namespaces` of the device reached (map) | ENOMEM |
//! | `max_srq_backend_ctrls` reached (create ctrl) | ENOSPC |
//! | `max_backend_ctrls_total` reached (create ctrl) | ENOMEM |
//! | device SRQ count reached (the fabric's `max_srq`) | ENOMEM (fabric's) |
//! | removing a controller with namespaces | EBUSY |
//! | destroying an SRQ with controllers or attached QPs | EBUSY |
//! | `qp_set_nvmf` with unknown flag bits | EINVAL |
//! | `qp_set_nvmf` without ENABLE (disabling) | EOPNOTSUPP |
//! | `qp_set_nvmf` on a QP not attached to an NVMe-oF SRQ | EINVAL |
//!
//! Per-SRQ limits answer ENOSPC ("this subsystem is full") and device-wide ones ENOMEM
//! (the verbs convention for exhausted device resources), so a test can tell them apart.
//! ENOENT is kept for "namespace not mapped", the RFC's one use of it; stale handles are
//! EINVAL. Errors of the fabric itself (e.g. the SRQ's `rq` sizing) pass through with
//! their errno.

use super::caps::{
    NvmfCaps, CQE_SIZE, DOORBELL_SIZE, MAX_NVME_LOG_PAGE_SZ, MAX_QUEUE_DEPTH, MIN_IOCCSZ,
    MIN_QUEUE_DEPTH, NSID_BROADCAST, SQE_SIZE,
};
use super::ctrl::NvmeCtrlAttrs;
use super::error::{OffloadError, Result};
use super::mem::MemRef;
use super::namespace::NsMapping;
use super::ops::OffloadOps;
use super::qp::QpNvmfFlags;
use super::srq::NvmfSrqAttrs;
use crate::fabric::{Access, MrId, MrInfo};

/// EINVAL: an [`super::SrqHandle`] that names no live NVMe-oF SRQ of this provider (never
/// created, destroyed, or a plain SRQ's number); mlx5 answers EINVAL for a non-NVMe-oF SRQ.
pub const UNKNOWN_SRQ: OffloadError =
    OffloadError::Invalid("srq names no NVMe-oF SRQ of this provider");
/// EINVAL: a [`super::CtrlHandle`] that names no live backend controller.
pub const UNKNOWN_CTRL: OffloadError =
    OffloadError::Invalid("ctrl names no backend controller of this provider");
/// EINVAL: `remove_nvme_ctrl` with a controller of another SRQ.
pub const CTRL_OF_OTHER_SRQ: OffloadError = OffloadError::Invalid("ctrl belongs to another SRQ");
/// EINVAL: `qp_set_nvmf` on a QP that is unknown or not attached to an NVMe-oF SRQ.
pub const QP_NOT_ON_NVMF_SRQ: OffloadError =
    OffloadError::Invalid("qp is not attached to an NVMe-oF SRQ");
/// EEXIST: the front-facing nsid is mapped on some controller of the SRQ.
pub const NS_EXISTS: OffloadError = OffloadError::Exists("fe_nsid already mapped in this SRQ");
/// ENOENT: the front-facing nsid is not mapped on this controller.
pub const NS_NOT_MAPPED: OffloadError = OffloadError::NotFound("fe_nsid not mapped on this ctrl");
/// EBUSY: removing a controller that still has namespaces.
pub const CTRL_HAS_NAMESPACES: OffloadError =
    OffloadError::Busy("ctrl still has namespaces mapped");
/// EBUSY: destroying an SRQ that still has backend controllers.
pub const SRQ_HAS_CTRLS: OffloadError = OffloadError::Busy("srq still has backend controllers");
/// EBUSY: destroying an SRQ that QPs are still attached to.
pub const SRQ_HAS_QPS: OffloadError = OffloadError::Busy("srq still has QPs attached");
/// ENOSPC: the SRQ's `max_namespaces` namespaces are mapped.
pub const SRQ_NAMESPACES_FULL: OffloadError = OffloadError::NoSpace("srq max_namespaces reached");
/// ENOMEM: the device's `max_namespaces` namespaces are mapped.
pub const DEVICE_NAMESPACES_FULL: OffloadError =
    OffloadError::NoMemory("device max_namespaces reached");
/// ENOSPC: the SRQ has `max_srq_backend_ctrls` controllers.
pub const SRQ_CTRLS_FULL: OffloadError = OffloadError::NoSpace("max_srq_backend_ctrls reached");
/// ENOMEM: the device has `max_backend_ctrls_total` controllers.
pub const DEVICE_CTRLS_FULL: OffloadError =
    OffloadError::NoMemory("max_backend_ctrls_total reached");

/// A lookup of the memory regions of the provider's context, from a slice.
pub fn mr_table(mrs: &[MrInfo]) -> impl Fn(MrId) -> Option<MrInfo> + '_ {
    move |id| mrs.iter().find(|m| m.id == id).copied()
}

fn fail(cond: bool, e: OffloadError) -> Result<()> {
    if cond {
        Err(e)
    } else {
        Ok(())
    }
}

fn inval(cond: bool, reason: &'static str) -> Result<()> {
    fail(cond, OffloadError::Invalid(reason))
}

/// Rules for the SRQ's `offload_ops`, in order: EOPNOTSUPP when `offload_type_rc` is
/// empty (the device has no NVMe-oF SRQ type); EINVAL for unknown bits, for an empty set,
/// and for operations outside the caps (see [`super::ops`] for the subset rule).
pub fn check_offload_ops(caps: &NvmfCaps, ops: OffloadOps) -> Result<()> {
    fail(
        !caps.offload_supported(),
        OffloadError::NotSupported("device has no NVMe-oF offload on RC QPs"),
    )?;
    inval(
        OffloadOps::from_bits(ops.bits()).is_none(),
        "offload_ops has unknown bits",
    )?;
    inval(ops.is_empty(), "offload_ops is empty")?;
    inval(
        !caps.offload_ops_allowed(ops),
        "offload_ops outside offload_type_rc",
    )
}

/// Rules for creating an NVMe-oF SRQ, in order (first failure wins):
///
/// 1. [`check_offload_ops`] (EOPNOTSUPP / EINVAL).
/// 2. EINVAL `max_namespaces` 0, or above `max_srq_namespaces`.
/// 3. EINVAL `nvme_log_page_sz` above 15 (NVMe CC.MPS is 4 bits).
/// 4. EINVAL `ioccsz` below 4 (a 64-byte SQE), below `min_ioccsz`, above `max_ioccsz`.
/// 5. EINVAL `icdoff` above `max_icdoff`, or non-zero with no in-capsule data left after
///    it (`icdoff ≥ ioccsz − 4`).
/// 6. EINVAL `max_io_sz` 0, or above the caps' `max_io_sz`.
/// 7. EINVAL `nvme_queue_depth` outside 2..=65536, below `min_nvme_queue_depth`, above
///    `max_nvme_queue_depth`.
/// 8. Staging buffer, EINVAL: its `mr` is not a region of the context (`mr_of` gives
///    `None`); `len` 0, below `min_staging_buf_size`, above `max_staging_buf_size` (when
///    set); not entirely inside the region; the region lacks LOCAL_WRITE (the device
///    writes in-transit data there).
///
/// The receive-queue sizing `rq` is the fabric's to check.
pub fn check_srq_attrs(
    caps: &NvmfCaps,
    attrs: &NvmfSrqAttrs,
    mr_of: impl Fn(MrId) -> Option<MrInfo>,
) -> Result<()> {
    check_offload_ops(caps, attrs.offload_ops)?;

    inval(attrs.max_namespaces == 0, "max_namespaces is 0")?;
    inval(
        attrs.max_namespaces > caps.max_srq_namespaces,
        "max_namespaces above max_srq_namespaces",
    )?;

    inval(
        attrs.nvme_log_page_sz > MAX_NVME_LOG_PAGE_SZ,
        "nvme_log_page_sz above 15",
    )?;

    inval(
        attrs.ioccsz < MIN_IOCCSZ,
        "ioccsz below 4 (one 64-byte SQE)",
    )?;
    inval(attrs.ioccsz < caps.min_ioccsz, "ioccsz below min_ioccsz")?;
    inval(attrs.ioccsz > caps.max_ioccsz, "ioccsz above max_ioccsz")?;

    inval(attrs.icdoff > caps.max_icdoff, "icdoff above max_icdoff")?;
    inval(
        attrs.icdoff != 0 && attrs.in_capsule_data_len() == 0,
        "icdoff leaves no in-capsule data",
    )?;

    inval(attrs.max_io_sz == 0, "max_io_sz is 0")?;
    inval(
        attrs.max_io_sz > caps.max_io_sz,
        "max_io_sz above caps max_io_sz",
    )?;

    let depth = attrs.nvme_queue_depth;
    inval(
        !(MIN_QUEUE_DEPTH..=MAX_QUEUE_DEPTH).contains(&depth),
        "nvme_queue_depth outside 2..=65536",
    )?;
    inval(
        depth < caps.min_nvme_queue_depth,
        "nvme_queue_depth below min_nvme_queue_depth",
    )?;
    inval(
        depth > caps.max_nvme_queue_depth,
        "nvme_queue_depth above max_nvme_queue_depth",
    )?;

    let sb = &attrs.staging_buf;
    let Some(mr) = mr_of(sb.mr) else {
        return Err(OffloadError::Invalid(
            "staging_buf.mr is not a memory region of this context",
        ));
    };
    inval(sb.len == 0, "staging_buf.len is 0")?;
    inval(
        sb.len < caps.min_staging_buf_size,
        "staging_buf.len below min_staging_buf_size",
    )?;
    inval(
        caps.max_staging_buf_size != 0 && sb.len > caps.max_staging_buf_size,
        "staging_buf.len above max_staging_buf_size",
    )?;
    inval(!sb.within(&mr), "staging_buf outside its memory region")?;
    inval(
        !mr.access.contains(Access::LOCAL_WRITE),
        "staging_buf region lacks LOCAL_WRITE",
    )
}

/// Fixed texts for the rules on one memory range of [`NvmeCtrlAttrs`].
struct RangeRule {
    no_mr: &'static str,
    outside: &'static str,
    no_write: &'static str,
    size: &'static str,
    align: &'static str,
}

macro_rules! range_rule {
    ($field:literal, $size:literal, $align:literal) => {
        RangeRule {
            no_mr: concat!($field, ".mr is not a memory region of this context"),
            outside: concat!($field, " outside its memory region"),
            no_write: concat!($field, " region lacks LOCAL_WRITE"),
            size: concat!($field, $size),
            align: concat!($field, $align),
        }
    };
}

const SQ_BUF: RangeRule = range_rule!(
    "sq_buf",
    " shorter than nvme_queue_depth 64-byte entries",
    " not 64-byte aligned"
);
const CQ_BUF: RangeRule = range_rule!(
    "cq_buf",
    " shorter than nvme_queue_depth 16-byte entries",
    " not 16-byte aligned"
);
const SQDB: RangeRule = range_rule!("sqdb", " is not 4 bytes", " not 4-byte aligned");
const CQDB: RangeRule = range_rule!("cqdb", " is not 4 bytes", " not 4-byte aligned");
const EXTRA_SQ_BUF: RangeRule = range_rule!(
    "extra_sqs[].buf",
    " shorter than nvme_queue_depth 64-byte entries",
    " not 64-byte aligned"
);
const EXTRA_SQ_DB: RangeRule =
    range_rule!("extra_sqs[].db", " is not 4 bytes", " not 4-byte aligned");

/// How a range must be sized and aligned, and whether the device writes it.
#[derive(Clone, Copy)]
enum Shape {
    /// A ring of `entries` × `entry` bytes at least, aligned to `entry`; device-written
    /// when `written`.
    Ring { entry: u64, written: bool },
    /// A 4-byte doorbell, 4-byte aligned, device-written.
    Doorbell,
}

fn check_range(
    r: &MemRef,
    rule: &RangeRule,
    shape: Shape,
    depth: u64,
    mr_of: &impl Fn(MrId) -> Option<MrInfo>,
) -> Result<()> {
    let Some(mr) = mr_of(r.mr) else {
        return Err(OffloadError::Invalid(rule.no_mr));
    };
    inval(!r.within(&mr), rule.outside)?;
    let (written, size_ok, align) = match shape {
        Shape::Ring { entry, written } => (written, r.len >= depth * entry, entry),
        Shape::Doorbell => (true, r.len == DOORBELL_SIZE, DOORBELL_SIZE),
    };
    inval(
        written && !mr.access.contains(Access::LOCAL_WRITE),
        rule.no_write,
    )?;
    inval(!size_ok, rule.size)?;
    inval(r.addr % align != 0, rule.align)
}

/// Rules for creating a backend controller on an SRQ created with `srq`, in order:
///
/// 1. EINVAL more `extra_sqs` than `max_extra_sqs`.
/// 2. EINVAL `cmd_timeout_us` non-zero and below `min_cmd_timeout_us` or above
///    `max_cmd_timeout_us` (when set); 0 is the device default.
/// 3. For `sq_buf`, `cq_buf`, `sqdb`, `cqdb`, then each extra SQ's `buf` and `db`, EINVAL
///    when: its `mr` is not a region of the context; it is not inside that region; the
///    device writes it (SQ rings and doorbells) and the region lacks LOCAL_WRITE; a ring
///    is shorter than `nvme_queue_depth` entries (64 bytes for SQs, 16 for the CQ) or not
///    aligned to its entry size; a doorbell is not exactly 4 bytes or not 4-byte aligned.
/// 4. EINVAL `sqdb_ini`, `cqdb_ini` or an extra SQ's `db_ini` ≥ `nvme_queue_depth`.
/// 5. EINVAL when any two of the rings, the doorbells and the SRQ's staging buffer share
///    a byte.
pub fn check_ctrl_attrs(
    caps: &NvmfCaps,
    srq: &NvmfSrqAttrs,
    attrs: &NvmeCtrlAttrs,
    mr_of: impl Fn(MrId) -> Option<MrInfo>,
) -> Result<()> {
    inval(
        attrs.extra_sqs.len() as u64 > u64::from(caps.max_extra_sqs),
        "extra_sqs above max_extra_sqs",
    )?;
    inval(
        attrs.cmd_timeout_us != 0 && attrs.cmd_timeout_us < caps.min_cmd_timeout_us,
        "cmd_timeout_us below min_cmd_timeout_us",
    )?;
    inval(
        !caps.cmd_timeout_allowed(attrs.cmd_timeout_us),
        "cmd_timeout_us above max_cmd_timeout_us",
    )?;

    let depth = u64::from(srq.nvme_queue_depth);
    let sq = Shape::Ring {
        entry: SQE_SIZE,
        written: true,
    };
    let cq = Shape::Ring {
        entry: CQE_SIZE,
        written: false,
    };
    check_range(&attrs.sq_buf, &SQ_BUF, sq, depth, &mr_of)?;
    check_range(&attrs.cq_buf, &CQ_BUF, cq, depth, &mr_of)?;
    check_range(&attrs.sqdb, &SQDB, Shape::Doorbell, depth, &mr_of)?;
    check_range(&attrs.cqdb, &CQDB, Shape::Doorbell, depth, &mr_of)?;
    for x in &attrs.extra_sqs {
        check_range(&x.buf, &EXTRA_SQ_BUF, sq, depth, &mr_of)?;
        check_range(&x.db, &EXTRA_SQ_DB, Shape::Doorbell, depth, &mr_of)?;
    }

    inval(
        u64::from(attrs.sqdb_ini) >= depth,
        "sqdb_ini not below nvme_queue_depth",
    )?;
    inval(
        u64::from(attrs.cqdb_ini) >= depth,
        "cqdb_ini not below nvme_queue_depth",
    )?;
    inval(
        attrs.extra_sqs.iter().any(|x| u64::from(x.db_ini) >= depth),
        "extra_sqs[].db_ini not below nvme_queue_depth",
    )?;

    let mut ranges = vec![attrs.sq_buf, attrs.cq_buf, attrs.sqdb, attrs.cqdb];
    for x in &attrs.extra_sqs {
        ranges.push(x.buf);
        ranges.push(x.db);
    }
    ranges.push(srq.staging_buf);
    let overlap = ranges
        .iter()
        .enumerate()
        .any(|(i, a)| ranges[i + 1..].iter().any(|b| a.overlaps(b)));
    inval(
        overlap,
        "backend rings, doorbells and staging buffer overlap",
    )
}

/// Rules on a front-facing nsid (map, unmap, counters), in order: EINVAL for 0, for the
/// broadcast value 0xFFFFFFFF, and above `max_frontend_nsid` when that is set.
pub fn check_fe_nsid(caps: &NvmfCaps, fe_nsid: u32) -> Result<()> {
    inval(fe_nsid == 0, "fe_nsid is 0")?;
    inval(fe_nsid == NSID_BROADCAST, "fe_nsid is the broadcast nsid")?;
    inval(
        caps.max_frontend_nsid != 0 && fe_nsid > caps.max_frontend_nsid,
        "fe_nsid above max_frontend_nsid",
    )
}

/// Argument rules of a namespace mapping, in order: [`check_fe_nsid`] (EINVAL); EINVAL
/// `nvme_nsid` 0 or 0xFFFFFFFF; EOPNOTSUPP `lba_data_size` not in the caps' list.
///
/// Mapping one backend namespace under two front-facing nsids is allowed (the device has
/// no reason to refuse; the target decides).
pub fn check_ns_mapping(caps: &NvmfCaps, m: &NsMapping) -> Result<()> {
    check_fe_nsid(caps, m.fe_nsid)?;
    inval(m.nvme_nsid == 0, "nvme_nsid is 0")?;
    inval(
        m.nvme_nsid == NSID_BROADCAST,
        "nvme_nsid is the broadcast nsid",
    )?;
    fail(
        !caps.supports_lba_data_size(m.lba_data_size),
        OffloadError::NotSupported("lba_data_size not supported by the device"),
    )
}

/// What a provider knows when mapping a namespace on a controller of an SRQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapState {
    /// Whether `fe_nsid` is already mapped on any controller of the SRQ.
    pub fe_nsid_mapped_in_srq: bool,
    /// Namespaces mapped on the SRQ now.
    pub srq_namespaces: u32,
    /// Namespaces mapped on the whole device now.
    pub device_namespaces: u32,
}

/// Every rule of `map_nsid`, in order: [`check_ns_mapping`] (EINVAL, EOPNOTSUPP); EEXIST
/// the fe_nsid is mapped in the SRQ; ENOSPC the SRQ has its `max_namespaces`; ENOMEM the
/// device has its `max_namespaces`.
pub fn check_map_nsid(
    caps: &NvmfCaps,
    srq: &NvmfSrqAttrs,
    m: &NsMapping,
    state: MapState,
) -> Result<()> {
    check_ns_mapping(caps, m)?;
    fail(state.fe_nsid_mapped_in_srq, NS_EXISTS)?;
    fail(
        state.srq_namespaces >= srq.max_namespaces,
        SRQ_NAMESPACES_FULL,
    )?;
    fail(
        state.device_namespaces >= caps.max_namespaces,
        DEVICE_NAMESPACES_FULL,
    )
}

/// Every rule of `unmap_nsid` (and of `ns_counters`), in order: [`check_fe_nsid`]
/// (EINVAL); ENOENT when it is not mapped on this controller (mapped on another
/// controller of the SRQ included).
pub fn check_unmap_nsid(caps: &NvmfCaps, fe_nsid: u32, mapped_on_ctrl: bool) -> Result<()> {
    check_fe_nsid(caps, fe_nsid)?;
    fail(!mapped_on_ctrl, NS_NOT_MAPPED)
}

/// What a provider knows when creating a backend controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CtrlCounts {
    /// Controllers on the SRQ now.
    pub srq_ctrls: u32,
    /// Controllers on the whole device now.
    pub device_ctrls: u32,
}

/// Every rule of `create_nvme_ctrl` on a live NVMe-oF SRQ, in order: [`check_ctrl_attrs`]
/// (EINVAL); ENOSPC the SRQ has `max_srq_backend_ctrls`; ENOMEM the device has
/// `max_backend_ctrls_total`.
pub fn check_create_ctrl(
    caps: &NvmfCaps,
    srq: &NvmfSrqAttrs,
    attrs: &NvmeCtrlAttrs,
    mr_of: impl Fn(MrId) -> Option<MrInfo>,
    counts: CtrlCounts,
) -> Result<()> {
    check_ctrl_attrs(caps, srq, attrs, mr_of)?;
    fail(
        counts.srq_ctrls >= caps.max_srq_backend_ctrls,
        SRQ_CTRLS_FULL,
    )?;
    fail(
        counts.device_ctrls >= caps.max_backend_ctrls_total,
        DEVICE_CTRLS_FULL,
    )
}

/// Rules of `remove_nvme_ctrl` for a live SRQ and controller, in order: EINVAL the
/// controller belongs to another SRQ; EBUSY it still has namespaces.
pub fn check_remove_ctrl(belongs_to_srq: bool, namespaces: u32) -> Result<()> {
    fail(!belongs_to_srq, CTRL_OF_OTHER_SRQ)?;
    fail(namespaces > 0, CTRL_HAS_NAMESPACES)
}

/// Rules of `destroy_srq` for a live SRQ, in order: EBUSY it has backend controllers;
/// EBUSY QPs are attached to it.
pub fn check_destroy_srq(ctrls: u32, qps: u32) -> Result<()> {
    fail(ctrls > 0, SRQ_HAS_CTRLS)?;
    fail(qps > 0, SRQ_HAS_QPS)
}

/// Rules of `qp_set_nvmf`, in order: EINVAL unknown flag bits; EOPNOTSUPP no ENABLE
/// (offload cannot be turned off; destroy the QP instead); EINVAL the QP is unknown or
/// not attached to an NVMe-oF SRQ. Enabling twice succeeds; the QP state is not checked
/// (the RFC allows enabling from creation on).
pub fn check_qp_set_nvmf(flags: QpNvmfFlags, qp_on_nvmf_srq: bool) -> Result<()> {
    inval(
        QpNvmfFlags::from_bits(flags.bits()).is_none(),
        "qp nvmf flags have unknown bits",
    )?;
    fail(
        !flags.contains(QpNvmfFlags::ENABLE),
        OffloadError::NotSupported("disabling NVMe-oF offload on a QP"),
    )?;
    fail(!qp_on_nvmf_srq, QP_NOT_ON_NVMF_SRQ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ctrl::BackendSq;
    use crate::fabric::SrqInit;
    use nix::errno::Errno;

    fn mr(id: u32, addr: u64, len: u64, access: Access) -> MrInfo {
        MrInfo {
            id: MrId(id),
            addr,
            len,
            lkey: id,
            rkey: id,
            access,
        }
    }

    /// `len` bytes at `addr` in region `mr`.
    fn mem(mr: u32, addr: u64, len: u64) -> MemRef {
        MemRef {
            mr: MrId(mr),
            addr,
            len,
        }
    }

    fn mrs() -> Vec<MrInfo> {
        vec![
            mr(0, 0x1000_0000, 4 << 20, Access::LOCAL_WRITE),
            mr(1, 0x2000_0000, 1 << 20, Access::LOCAL_WRITE),
            mr(2, 0x3000_0000, 1 << 20, Access::empty()),
        ]
    }

    fn srq() -> NvmfSrqAttrs {
        NvmfSrqAttrs {
            rq: SrqInit::new(128),
            offload_ops: OffloadOps::READ_WRITE_FLUSH,
            max_namespaces: 8,
            nvme_log_page_sz: 0,
            ioccsz: 260,
            icdoff: 0,
            max_io_sz: 128 << 10,
            nvme_queue_depth: 64,
            staging_buf: mem(0, 0x1000_0000, 4 << 20),
        }
    }

    fn ctrl() -> NvmeCtrlAttrs {
        let base = 0x2000_0000;
        let r = |off: u64, len: u64| mem(1, base + off, len);
        NvmeCtrlAttrs {
            sq_buf: r(0, 64 * 64),
            cq_buf: r(0x1000, 64 * 16),
            sqdb: r(0x2000, 4),
            cqdb: r(0x2004, 4),
            sqdb_ini: 0,
            cqdb_ini: 0,
            cmd_timeout_us: 0,
            extra_sqs: vec![],
        }
    }

    fn errno(r: Result<()>) -> Option<Errno> {
        r.err().map(|e| e.errno())
    }

    #[test]
    fn valid_attrs_pass() {
        let caps = NvmfCaps::typical();
        let t = mrs();
        assert_eq!(check_srq_attrs(&caps, &srq(), mr_table(&t)), Ok(()));
        assert_eq!(
            check_ctrl_attrs(&caps, &srq(), &ctrl(), mr_table(&t)),
            Ok(())
        );
    }

    #[test]
    fn no_offload_device_is_eopnotsupp() {
        let caps = NvmfCaps::default();
        let t = mrs();
        assert_eq!(
            errno(check_srq_attrs(&caps, &srq(), mr_table(&t))),
            Some(Errno::EOPNOTSUPP)
        );
    }

    #[test]
    fn staging_region_rules() {
        let caps = NvmfCaps::typical();
        let t = mrs();
        let mut a = srq();
        a.staging_buf.mr = MrId(9);
        assert_eq!(
            check_srq_attrs(&caps, &a, mr_table(&t)),
            Err(OffloadError::Invalid(
                "staging_buf.mr is not a memory region of this context"
            ))
        );
        let mut a = srq();
        a.staging_buf.addr += 1;
        assert_eq!(
            check_srq_attrs(&caps, &a, mr_table(&t)),
            Err(OffloadError::Invalid(
                "staging_buf outside its memory region"
            ))
        );
        let mut a = srq();
        a.staging_buf = mem(2, 0x3000_0000, 1 << 20);
        let caps_small = NvmfCaps {
            min_staging_buf_size: 4096,
            ..caps
        };
        assert_eq!(
            check_srq_attrs(&caps_small, &a, mr_table(&t)),
            Err(OffloadError::Invalid(
                "staging_buf region lacks LOCAL_WRITE"
            ))
        );
    }

    #[test]
    fn ctrl_range_rules() {
        let caps = NvmfCaps::typical();
        let t = mrs();
        let check = |c: &NvmeCtrlAttrs| check_ctrl_attrs(&caps, &srq(), c, mr_table(&t));
        let mut c = ctrl();
        c.sq_buf.len -= 1;
        assert_eq!(check(&c), Err(OffloadError::Invalid(SQ_BUF.size)));
        let mut c = ctrl();
        c.cq_buf.addr += 8;
        assert_eq!(check(&c), Err(OffloadError::Invalid(CQ_BUF.align)));
        let mut c = ctrl();
        c.sqdb.len = 8;
        assert_eq!(check(&c), Err(OffloadError::Invalid(SQDB.size)));
        let mut c = ctrl();
        c.cqdb.addr += 2;
        c.cqdb.len = 4;
        assert_eq!(check(&c), Err(OffloadError::Invalid(CQDB.align)));
        let mut c = ctrl();
        c.cqdb = c.sqdb;
        assert_eq!(
            check(&c),
            Err(OffloadError::Invalid(
                "backend rings, doorbells and staging buffer overlap"
            ))
        );
        let mut c = ctrl();
        c.cq_buf = mem(2, 0x3000_0000, 1024);
        assert_eq!(check(&c), Ok(()), "the CQ ring is not written by the NIC");
        c.sqdb = mem(2, 0x3000_1000, 4);
        assert_eq!(check(&c), Err(OffloadError::Invalid(SQDB.no_write)));
        let mut c = ctrl();
        c.sqdb_ini = 64;
        assert_eq!(
            check(&c),
            Err(OffloadError::Invalid("sqdb_ini not below nvme_queue_depth"))
        );
    }

    #[test]
    fn extra_sqs_rules() {
        let caps = NvmfCaps::typical();
        let t = mrs();
        let mut c = ctrl();
        let extra = BackendSq {
            buf: mem(1, 0x2000_4000, 4096),
            db: mem(1, 0x2000_2008, 4),
            db_ini: 63,
        };
        c.extra_sqs = vec![extra; 3];
        // Three copies of one extra SQ overlap each other.
        assert_eq!(
            errno(check_ctrl_attrs(&caps, &srq(), &c, mr_table(&t))),
            Some(Errno::EINVAL)
        );
        c.extra_sqs.truncate(1);
        assert_eq!(check_ctrl_attrs(&caps, &srq(), &c, mr_table(&t)), Ok(()));
        c.extra_sqs[0].db_ini = 64;
        assert_eq!(
            check_ctrl_attrs(&caps, &srq(), &c, mr_table(&t)),
            Err(OffloadError::Invalid(
                "extra_sqs[].db_ini not below nvme_queue_depth"
            ))
        );
        let one_sq = NvmfCaps {
            max_extra_sqs: 0,
            ..caps
        };
        assert_eq!(
            check_ctrl_attrs(&one_sq, &srq(), &c, mr_table(&t)),
            Err(OffloadError::Invalid("extra_sqs above max_extra_sqs"))
        );
    }

    #[test]
    fn stateful_rules_order() {
        let caps = NvmfCaps::typical();
        let m = NsMapping {
            fe_nsid: 1,
            nvme_nsid: 1,
            lba_data_size: 512,
        };
        let full = MapState {
            fe_nsid_mapped_in_srq: true,
            srq_namespaces: 8,
            device_namespaces: 256,
        };
        assert_eq!(check_map_nsid(&caps, &srq(), &m, full), Err(NS_EXISTS));
        let bad = NsMapping {
            lba_data_size: 1000,
            ..m
        };
        assert_eq!(
            errno(check_map_nsid(&caps, &srq(), &bad, full)),
            Some(Errno::EOPNOTSUPP)
        );
        assert_eq!(check_remove_ctrl(false, 3), Err(CTRL_OF_OTHER_SRQ));
        assert_eq!(check_destroy_srq(1, 1), Err(SRQ_HAS_CTRLS));
        assert_eq!(check_destroy_srq(0, 1), Err(SRQ_HAS_QPS));
        assert_eq!(check_destroy_srq(0, 0), Ok(()));
        assert_eq!(
            errno(check_qp_set_nvmf(QpNvmfFlags::from_bits_retain(3), false)),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            errno(check_qp_set_nvmf(QpNvmfFlags::empty(), false)),
            Some(Errno::EOPNOTSUPP)
        );
        assert_eq!(
            check_qp_set_nvmf(QpNvmfFlags::ENABLE, false),
            Err(QP_NOT_ON_NVMF_SRQ)
        );
        assert_eq!(check_qp_set_nvmf(QpNvmfFlags::ENABLE, true), Ok(()));
    }

    #[test]
    fn constants_carry_their_errno() {
        for (e, n) in [
            (UNKNOWN_SRQ, Errno::EINVAL),
            (UNKNOWN_CTRL, Errno::EINVAL),
            (CTRL_OF_OTHER_SRQ, Errno::EINVAL),
            (QP_NOT_ON_NVMF_SRQ, Errno::EINVAL),
            (NS_EXISTS, Errno::EEXIST),
            (NS_NOT_MAPPED, Errno::ENOENT),
            (CTRL_HAS_NAMESPACES, Errno::EBUSY),
            (SRQ_HAS_CTRLS, Errno::EBUSY),
            (SRQ_HAS_QPS, Errno::EBUSY),
            (SRQ_NAMESPACES_FULL, Errno::ENOSPC),
            (DEVICE_NAMESPACES_FULL, Errno::ENOMEM),
            (SRQ_CTRLS_FULL, Errno::ENOSPC),
            (DEVICE_CTRLS_FULL, Errno::ENOMEM),
        ] {
            assert_eq!(e.errno(), n, "{e}");
        }
    }
}
