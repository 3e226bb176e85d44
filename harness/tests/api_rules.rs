//! The offload API's rule book (`harness::api::check`) case by case: each rule at its
//! limit passes and one step past it fails with the documented errno; plus the errno
//! mapping of `OffloadError`, capability consistency, and property tests.

use harness::api::check::{
    self, check_create_ctrl, check_ctrl_attrs, check_destroy_srq, check_map_nsid, check_ns_mapping,
    check_qp_set_nvmf, check_remove_ctrl, check_srq_attrs, check_unmap_nsid, mr_table, CtrlCounts,
    MapState,
};
use harness::api::{
    BackendSq, CapsProblem, MemRef, NsMapping, NvmeCtrlAttrs, NvmfCaps, NvmfSrqAttrs, OffloadError,
    OffloadOps, OffloadType, QpNvmfFlags,
};
use harness::fabric::{Access, MrId, MrInfo, SrqInit};
use nix::errno::Errno::{self, EEXIST, EINVAL, ENOMEM, ENOSPC};
use proptest::prelude::*;
use rstest::rstest;

const STAGING_BASE: u64 = 0x1000_0000;
const STAGING_MR_LEN: u64 = 16 << 20;
const BACKEND_BASE: u64 = 0x2000_0000;
const BACKEND_MR_LEN: u64 = 1 << 20;
const DEPTH: u32 = 64;

/// A profile whose every limit differs from the next, so each case hits one rule.
fn caps() -> NvmfCaps {
    NvmfCaps {
        max_backend_ctrls_total: 3,
        max_srq_backend_ctrls: 2,
        max_srq_namespaces: 8,
        max_namespaces: 12,
        min_staging_buf_size: 1 << 20,
        max_staging_buf_size: 8 << 20,
        max_io_sz: 128 << 10,
        min_nvme_queue_depth: 16,
        max_nvme_queue_depth: 1024,
        min_ioccsz: 8,
        max_ioccsz: 260,
        max_icdoff: 4,
        min_cmd_timeout_us: 1_000,
        max_cmd_timeout_us: 30_000_000,
        max_frontend_nsid: 100,
        max_extra_sqs: 1,
        ..NvmfCaps::typical()
    }
}

fn mrs() -> Vec<MrInfo> {
    let mr = |id, addr, len, access| MrInfo {
        id: MrId(id),
        addr,
        len,
        lkey: 0x100 + id,
        rkey: 0x200 + id,
        access,
    };
    vec![
        mr(0, STAGING_BASE, STAGING_MR_LEN, Access::LOCAL_WRITE),
        mr(1, BACKEND_BASE, BACKEND_MR_LEN, Access::LOCAL_WRITE),
        mr(2, 0x3000_0000, 1 << 20, Access::REMOTE_READ),
    ]
}

fn srq() -> NvmfSrqAttrs {
    NvmfSrqAttrs {
        rq: SrqInit::new(256),
        offload_ops: OffloadOps::READ_WRITE_FLUSH,
        max_namespaces: 8,
        nvme_log_page_sz: 0,
        ioccsz: 260,
        icdoff: 0,
        max_io_sz: 128 << 10,
        nvme_queue_depth: DEPTH,
        staging_buf: MemRef {
            mr: MrId(0),
            addr: STAGING_BASE,
            len: 1 << 20,
        },
    }
}

fn backend(off: u64, len: u64) -> MemRef {
    MemRef {
        mr: MrId(1),
        addr: BACKEND_BASE + off,
        len,
    }
}

fn ctrl() -> NvmeCtrlAttrs {
    NvmeCtrlAttrs {
        sq_buf: backend(0, u64::from(DEPTH) * 64),
        cq_buf: backend(0x1000, u64::from(DEPTH) * 16),
        sqdb: backend(0x2000, 4),
        cqdb: backend(0x2004, 4),
        sqdb_ini: 0,
        cqdb_ini: 0,
        cmd_timeout_us: 0,
        extra_sqs: vec![],
    }
}

fn extra_sq() -> BackendSq {
    BackendSq {
        buf: backend(0x4000, u64::from(DEPTH) * 64),
        db: backend(0x2008, 4),
        db_ini: 0,
    }
}

/// Asserts `r` fails with `errno` and a reason naming `what`.
fn assert_fails<T: std::fmt::Debug>(r: Result<T, OffloadError>, errno: Errno, what: &str) {
    let e = r.expect_err("expected a failure");
    assert_eq!(e.errno(), errno, "{e}");
    assert!(e.reason().contains(what), "{e} does not name {what}");
}

/// The errno of a verdict.
fn errno_of(r: Result<(), OffloadError>) -> Result<(), Errno> {
    r.map_err(|e| e.errno())
}

/// With `set(attrs, ok)`, `check` passes; with `set(attrs, bad)` after it, it fails with
/// EINVAL and a reason naming `what`.
fn assert_rule<A>(
    mut attrs: A,
    set: fn(&mut A, u64),
    (ok, bad): (u64, u64),
    what: &str,
    check: impl Fn(&A) -> Result<(), OffloadError>,
) {
    set(&mut attrs, ok);
    assert_eq!(check(&attrs), Ok(()), "at {ok}");
    set(&mut attrs, bad);
    assert_fails(check(&attrs), Errno::EINVAL, what);
}

#[test]
fn fixtures_are_valid() {
    assert_eq!(caps().validate(), Ok(()));
    assert_eq!(check_srq_attrs(&caps(), &srq(), mr_table(&mrs())), Ok(()));
    assert_eq!(
        check_ctrl_attrs(&caps(), &srq(), &ctrl(), mr_table(&mrs())),
        Ok(())
    );
}

// ---- SRQ attributes: one case per bound ----

type SrqSet = fn(&mut NvmfSrqAttrs, u64);

#[rstest]
#[case::max_namespaces_at_caps(|a: &mut NvmfSrqAttrs, v| a.max_namespaces = v as u32, 8, 9, "max_namespaces")]
#[case::max_namespaces_zero(|a: &mut NvmfSrqAttrs, v| a.max_namespaces = v as u32, 1, 0, "max_namespaces")]
#[case::nvme_log_page_sz(|a: &mut NvmfSrqAttrs, v| a.nvme_log_page_sz = v as u8, 15, 16, "nvme_log_page_sz")]
#[case::ioccsz_min(|a: &mut NvmfSrqAttrs, v| a.ioccsz = v as u32, 8, 7, "min_ioccsz")]
#[case::ioccsz_max(|a: &mut NvmfSrqAttrs, v| a.ioccsz = v as u32, 260, 261, "max_ioccsz")]
#[case::icdoff_max(|a: &mut NvmfSrqAttrs, v| a.icdoff = v as u16, 4, 5, "max_icdoff")]
#[case::icdoff_leaves_data(|a: &mut NvmfSrqAttrs, v| { a.ioccsz = 8; a.icdoff = v as u16 }, 3, 4, "in-capsule")]
#[case::max_io_sz_max(|a: &mut NvmfSrqAttrs, v| a.max_io_sz = v as u32, 128 << 10, (128 << 10) + 1, "max_io_sz")]
#[case::max_io_sz_zero(|a: &mut NvmfSrqAttrs, v| a.max_io_sz = v as u32, 1, 0, "max_io_sz")]
#[case::queue_depth_min(|a: &mut NvmfSrqAttrs, v| a.nvme_queue_depth = v as u32, 16, 15, "min_nvme_queue_depth")]
#[case::queue_depth_max(|a: &mut NvmfSrqAttrs, v| a.nvme_queue_depth = v as u32, 1024, 1025, "max_nvme_queue_depth")]
#[case::staging_min(|a: &mut NvmfSrqAttrs, v| a.staging_buf.len = v, 1 << 20, (1 << 20) - 1, "min_staging_buf_size")]
#[case::staging_max(|a: &mut NvmfSrqAttrs, v| a.staging_buf.len = v, 8 << 20, (8 << 20) + 1, "max_staging_buf_size")]
#[case::staging_inside_mr(|a: &mut NvmfSrqAttrs, v| { a.staging_buf.len = 8 << 20; a.staging_buf.addr = STAGING_BASE + v }, 8 << 20, (8 << 20) + 1, "outside")]
#[case::staging_mr_known(|a: &mut NvmfSrqAttrs, v| a.staging_buf.mr = MrId(v as u32), 0, 9, "staging_buf.mr")]
#[case::staging_mr_writable(|a: &mut NvmfSrqAttrs, v| a.staging_buf = MemRef { mr: MrId(v as u32), addr: if v == 0 { STAGING_BASE } else { 0x3000_0000 }, len: 1 << 20 }, 0, 2, "LOCAL_WRITE")]
#[case::offload_ops_within_caps(|a: &mut NvmfSrqAttrs, v| a.offload_ops = OffloadOps::from_bits_retain(v as u32), 0b111, 0b1111, "offload_type_rc")]
#[case::offload_ops_not_empty(|a: &mut NvmfSrqAttrs, v| a.offload_ops = OffloadOps::from_bits_retain(v as u32), 0b100, 0, "empty")]
#[case::offload_ops_known_bits(|a: &mut NvmfSrqAttrs, v| a.offload_ops = OffloadOps::from_bits_retain(v as u32), 0b1, 1 << 31, "unknown bits")]
fn srq_rule(#[case] set: SrqSet, #[case] ok: u64, #[case] bad: u64, #[case] what: &str) {
    let (caps, t) = (caps(), mrs());
    assert_rule(srq(), set, (ok, bad), what, |a| {
        check_srq_attrs(&caps, a, mr_table(&t))
    });
}

#[test]
fn srq_on_device_without_offload_is_eopnotsupp() {
    let c = NvmfCaps {
        offload_type_rc: OffloadType::empty(),
        ..caps()
    };
    assert_fails(
        check_srq_attrs(&c, &srq(), mr_table(&mrs())),
        Errno::EOPNOTSUPP,
        "no NVMe-oF offload",
    );
}

#[test]
fn ioccsz_below_one_sqe_is_refused_even_if_caps_allow() {
    let c = NvmfCaps {
        min_ioccsz: 1,
        ..caps()
    };
    let mut a = srq();
    a.ioccsz = 4;
    assert_eq!(check_srq_attrs(&c, &a, mr_table(&mrs())), Ok(()));
    a.ioccsz = 3;
    assert_fails(
        check_srq_attrs(&c, &a, mr_table(&mrs())),
        Errno::EINVAL,
        "64-byte SQE",
    );
}

// ---- backend controller attributes ----

type CtrlSet = fn(&mut NvmeCtrlAttrs, u64);

#[rstest]
#[case::sq_buf_len(|c: &mut NvmeCtrlAttrs, v| c.sq_buf.len = v, 64 * 64, 64 * 64 - 1, "sq_buf")]
#[case::sq_buf_align(|c: &mut NvmeCtrlAttrs, v| c.sq_buf.addr = BACKEND_BASE + v, 0x10000, 0x10000 + 32, "sq_buf not 64-byte aligned")]
#[case::sq_buf_inside_mr(|c: &mut NvmeCtrlAttrs, v| c.sq_buf.addr = BACKEND_BASE + v, BACKEND_MR_LEN - 4096, BACKEND_MR_LEN - 4096 + 64, "sq_buf outside")]
#[case::sq_buf_mr_known(|c: &mut NvmeCtrlAttrs, v| c.sq_buf.mr = MrId(v as u32), 1, 7, "sq_buf.mr")]
#[case::cq_buf_len(|c: &mut NvmeCtrlAttrs, v| c.cq_buf.len = v, 64 * 16, 64 * 16 - 1, "cq_buf")]
#[case::cq_buf_align(|c: &mut NvmeCtrlAttrs, v| c.cq_buf.addr = BACKEND_BASE + v, 0x1010, 0x1018, "cq_buf not 16-byte aligned")]
#[case::sqdb_len(|c: &mut NvmeCtrlAttrs, v| c.sqdb.len = v, 4, 5, "sqdb is not 4 bytes")]
#[case::cqdb_len(|c: &mut NvmeCtrlAttrs, v| c.cqdb.len = v, 4, 3, "cqdb is not 4 bytes")]
#[case::cqdb_align(|c: &mut NvmeCtrlAttrs, v| c.cqdb.addr = BACKEND_BASE + v, 0x3000, 0x3002, "cqdb not 4-byte aligned")]
#[case::sqdb_writable(|c: &mut NvmeCtrlAttrs, v| c.sqdb = MemRef { mr: MrId(v as u32), addr: if v == 1 { BACKEND_BASE + 0x2000 } else { 0x3000_0000 }, len: 4 }, 1, 2, "LOCAL_WRITE")]
#[case::sqdb_ini(|c: &mut NvmeCtrlAttrs, v| c.sqdb_ini = v as u16, 63, 64, "sqdb_ini")]
#[case::cqdb_ini(|c: &mut NvmeCtrlAttrs, v| c.cqdb_ini = v as u16, 63, 64, "cqdb_ini")]
#[case::cmd_timeout_min(|c: &mut NvmeCtrlAttrs, v| c.cmd_timeout_us = v as u32, 1_000, 999, "min_cmd_timeout_us")]
#[case::cmd_timeout_max(|c: &mut NvmeCtrlAttrs, v| c.cmd_timeout_us = v as u32, 30_000_000, 30_000_001, "max_cmd_timeout_us")]
#[case::extra_sqs_count(|c: &mut NvmeCtrlAttrs, v| c.extra_sqs = (0..v).map(|i| BackendSq { buf: backend(0x4000 + 0x1000 * i, 4096), db: backend(0x2008 + 4 * i, 4), db_ini: 0 }).collect(), 1, 2, "max_extra_sqs")]
#[case::extra_sq_db_ini(|c: &mut NvmeCtrlAttrs, v| c.extra_sqs = vec![BackendSq { db_ini: v as u16, ..extra_sq() }], 63, 64, "db_ini")]
#[case::extra_sq_len(|c: &mut NvmeCtrlAttrs, v| c.extra_sqs = vec![BackendSq { buf: backend(0x4000, v), ..extra_sq() }], 4096, 4095, "extra_sqs[].buf")]
#[case::no_overlap_sq_cq(|c: &mut NvmeCtrlAttrs, v| c.cq_buf.addr = BACKEND_BASE + v, 4096, 4096 - 16, "overlap")]
#[case::no_overlap_doorbells(|c: &mut NvmeCtrlAttrs, v| c.cqdb.addr = BACKEND_BASE + v, 0x2004, 0x2000, "overlap")]
#[case::no_overlap_staging(|c: &mut NvmeCtrlAttrs, v| c.cq_buf = MemRef { mr: MrId(0), addr: STAGING_BASE + v, len: 1024 }, 1 << 20, (1 << 20) - 16, "overlap")]
fn ctrl_rule(#[case] set: CtrlSet, #[case] ok: u64, #[case] bad: u64, #[case] what: &str) {
    let (caps, t) = (caps(), mrs());
    assert_rule(ctrl(), set, (ok, bad), what, |c| {
        check_ctrl_attrs(&caps, &srq(), c, mr_table(&t))
    });
}

#[test]
fn default_cmd_timeout_is_always_allowed() {
    let mut c = ctrl();
    c.cmd_timeout_us = 0;
    assert_eq!(
        check_ctrl_attrs(&caps(), &srq(), &c, mr_table(&mrs())),
        Ok(())
    );
}

// ---- namespace mapping arguments ----

fn mapping(fe_nsid: u32, nvme_nsid: u32, lba_data_size: u32) -> NsMapping {
    NsMapping {
        fe_nsid,
        nvme_nsid,
        lba_data_size,
    }
}

#[rstest]
#[case::fe_nsid_max_frontend(100, [100, 1, 512], [101, 1, 512], EINVAL, "max_frontend_nsid")]
#[case::fe_nsid_zero(100, [1, 1, 512], [0, 1, 512], EINVAL, "fe_nsid is 0")]
#[case::fe_nsid_broadcast(0, [0xFFFF_FFFE, 1, 512], [0xFFFF_FFFF, 1, 512], EINVAL, "broadcast")]
#[case::nvme_nsid_zero(100, [1, 1, 512], [1, 0, 512], EINVAL, "nvme_nsid is 0")]
#[case::nvme_nsid_broadcast(100, [1, 0xFFFF_FFFE, 512], [1, 0xFFFF_FFFF, 512], EINVAL, "broadcast")]
#[case::lba_4160(100, [1, 1, 4160], [1, 1, 4161], Errno::ENOTSUP, "lba_data_size")]
#[case::lba_520(100, [1, 1, 520], [1, 1, 521], Errno::EOPNOTSUPP, "lba_data_size")]
fn ns_mapping_rule(
    #[case] max_frontend_nsid: u32,
    #[case] ok: [u32; 3],
    #[case] bad: [u32; 3],
    #[case] errno: Errno,
    #[case] what: &str,
) {
    let c = NvmfCaps {
        max_frontend_nsid,
        ..caps()
    };
    let [ok, bad] = [ok, bad].map(|[fe, nvme, lba]| mapping(fe, nvme, lba));
    assert_eq!(check_ns_mapping(&c, &ok), Ok(()));
    assert_fails(check_ns_mapping(&c, &bad), errno, what);
}

// ---- state and count rules ----

/// The state a mapping meets: `mapped` already in the SRQ, with `srq` namespaces on the SRQ
/// and `device` on the device.
fn map_state(mapped: bool, srq: u32, device: u32) -> MapState {
    MapState {
        fe_nsid_mapped_in_srq: mapped,
        srq_namespaces: srq,
        device_namespaces: device,
    }
}

#[rstest]
#[case::fe_nsid_exists(map_state(false, 7, 11), map_state(true, 0, 0), EEXIST)]
#[case::srq_namespaces(map_state(false, 7, 0), map_state(false, 8, 0), ENOSPC)]
#[case::device_namespaces(map_state(false, 0, 11), map_state(false, 0, 12), ENOMEM)]
#[case::exists_before_full(map_state(false, 0, 0), map_state(true, 8, 12), EEXIST)]
#[case::srq_full_before_device_full(map_state(false, 0, 0), map_state(false, 8, 12), ENOSPC)]
fn map_state_rule(#[case] ok: MapState, #[case] bad: MapState, #[case] errno: Errno) {
    let m = mapping(5, 1, 4096);
    assert_eq!(check_map_nsid(&caps(), &srq(), &m, ok), Ok(()));
    assert_eq!(
        errno_of(check_map_nsid(&caps(), &srq(), &m, bad)),
        Err(errno)
    );
}

#[test]
fn srq_max_namespaces_below_caps_is_the_srq_limit() {
    let a = NvmfSrqAttrs {
        max_namespaces: 2,
        ..srq()
    };
    let st = |n| MapState {
        srq_namespaces: n,
        ..MapState::default()
    };
    let m = mapping(5, 1, 4096);
    assert_eq!(check_map_nsid(&caps(), &a, &m, st(1)), Ok(()));
    assert_eq!(
        check_map_nsid(&caps(), &a, &m, st(2)),
        Err(check::SRQ_NAMESPACES_FULL)
    );
}

#[test]
fn argument_errors_come_before_state_errors() {
    let full = map_state(true, 8, 12);
    assert_eq!(
        errno_of(check_map_nsid(&caps(), &srq(), &mapping(0, 1, 512), full)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        errno_of(check_map_nsid(&caps(), &srq(), &mapping(1, 1, 1000), full)),
        Err(Errno::EOPNOTSUPP)
    );
    let mut bad = ctrl();
    bad.sqdb_ini = 64;
    let counts = CtrlCounts {
        srq_ctrls: 2,
        device_ctrls: 3,
    };
    assert_eq!(
        errno_of(check_create_ctrl(
            &caps(),
            &srq(),
            &bad,
            mr_table(&mrs()),
            counts
        )),
        Err(Errno::EINVAL)
    );
}

#[rstest]
#[case::srq_ctrls(CtrlCounts { srq_ctrls: 1, device_ctrls: 0 }, CtrlCounts { srq_ctrls: 2, device_ctrls: 0 }, Errno::ENOSPC)]
#[case::device_ctrls(CtrlCounts { srq_ctrls: 0, device_ctrls: 2 }, CtrlCounts { srq_ctrls: 0, device_ctrls: 3 }, Errno::ENOMEM)]
#[case::srq_before_device(CtrlCounts { srq_ctrls: 0, device_ctrls: 0 }, CtrlCounts { srq_ctrls: 2, device_ctrls: 3 }, Errno::ENOSPC)]
fn ctrl_count_rule(#[case] ok: CtrlCounts, #[case] bad: CtrlCounts, #[case] errno: Errno) {
    let (caps, t) = (caps(), mrs());
    assert_eq!(
        check_create_ctrl(&caps, &srq(), &ctrl(), mr_table(&t), ok),
        Ok(())
    );
    assert_eq!(
        errno_of(check_create_ctrl(&caps, &srq(), &ctrl(), mr_table(&t), bad)),
        Err(errno)
    );
}

#[rstest]
#[case::mapped(true, Ok(()))]
#[case::not_mapped(false, Err(Errno::ENOENT))]
fn unmap_rule(#[case] mapped: bool, #[case] expected: Result<(), Errno>) {
    assert_eq!(errno_of(check_unmap_nsid(&caps(), 7, mapped)), expected);
}

#[rstest]
#[case::zero(0)]
#[case::broadcast(0xFFFF_FFFF)]
#[case::above_max_frontend(101)]
fn unmap_of_an_impossible_nsid_is_einval_even_if_mapped(#[case] nsid: u32) {
    assert_eq!(
        errno_of(check_unmap_nsid(&caps(), nsid, true)),
        Err(Errno::EINVAL)
    );
}

#[rstest]
#[case::free(true, 0, Ok(()))]
#[case::has_namespaces(true, 1, Err(Errno::EBUSY))]
#[case::other_srq(false, 0, Err(Errno::EINVAL))]
#[case::other_srq_before_busy(false, 3, Err(Errno::EINVAL))]
fn remove_ctrl_rule(#[case] own: bool, #[case] ns: u32, #[case] expected: Result<(), Errno>) {
    assert_eq!(errno_of(check_remove_ctrl(own, ns)), expected);
}

#[rstest]
#[case::empty(0, 0, Ok(()))]
#[case::ctrls(1, 0, Err(Errno::EBUSY))]
#[case::qps(0, 1, Err(Errno::EBUSY))]
fn destroy_srq_rule(#[case] ctrls: u32, #[case] qps: u32, #[case] expected: Result<(), Errno>) {
    assert_eq!(errno_of(check_destroy_srq(ctrls, qps)), expected);
}

#[rstest]
#[case::enable(QpNvmfFlags::ENABLE, true, Ok(()))]
#[case::not_nvmf_srq(QpNvmfFlags::ENABLE, false, Err(Errno::EINVAL))]
#[case::disable(QpNvmfFlags::empty(), true, Err(Errno::EOPNOTSUPP))]
#[case::unknown_bit(QpNvmfFlags::from_bits_retain(0b11), true, Err(Errno::EINVAL))]
fn qp_set_nvmf_rule(
    #[case] flags: QpNvmfFlags,
    #[case] on_nvmf_srq: bool,
    #[case] expected: Result<(), Errno>,
) {
    assert_eq!(errno_of(check_qp_set_nvmf(flags, on_nvmf_srq)), expected);
}

// ---- errno mapping ----

#[rstest]
#[case(OffloadError::Invalid("x"), Errno::EINVAL)]
#[case(OffloadError::Exists("x"), Errno::EEXIST)]
#[case(OffloadError::NotFound("x"), Errno::ENOENT)]
#[case(OffloadError::NotSupported("x"), Errno::EOPNOTSUPP)]
#[case(OffloadError::NotSupported("x"), Errno::ENOTSUP)]
#[case(OffloadError::Busy("x"), Errno::EBUSY)]
#[case(OffloadError::NoMemory("x"), Errno::ENOMEM)]
#[case(OffloadError::NoSpace("x"), Errno::ENOSPC)]
#[case(OffloadError::NoDevice("x"), Errno::ENODEV)]
#[case(OffloadError::TimedOut("x"), Errno::ETIMEDOUT)]
#[case(OffloadError::Io("x"), Errno::EIO)]
#[case(OffloadError::NotPermitted("x"), Errno::EPERM)]
#[case(OffloadError::AccessDenied("x"), Errno::EACCES)]
#[case(OffloadError::Other { errno: Errno::EAGAIN, reason: "x" }, Errno::EAGAIN)]
fn variant_maps_to_errno(#[case] e: OffloadError, #[case] errno: Errno) {
    assert_eq!(e.errno(), errno);
    assert_eq!(OffloadError::from_errno(errno, "x"), e);
    assert!(e.to_string().ends_with(": x"));
}

proptest! {
    #[test]
    fn from_errno_round_trips(raw in 0i32..200, reason in prop::sample::select(vec!["a", "b c"])) {
        let errno = Errno::from_raw(raw);
        let e = OffloadError::from_errno(errno, reason);
        prop_assert_eq!(e.errno(), errno);
        prop_assert_eq!(e.reason(), reason);
        prop_assert_eq!(OffloadError::from_errno(e.errno(), e.reason()), e);
    }
}

// ---- capability consistency ----

type CapsSet = fn(&mut NvmfCaps);

#[rstest]
#[case::unknown_rc_bits(|c: &mut NvmfCaps| c.offload_type_rc = OffloadType::from_bits_retain(1 << 12), CapsProblem::UnknownOffloadTypeBits { field: "offload_type_rc", bits: 1 << 12 })]
#[case::zero_io(|c: &mut NvmfCaps| c.max_io_sz = 0, CapsProblem::Zero { field: "max_io_sz" })]
#[case::depth_encoded_zero(|c: &mut NvmfCaps| c.max_nvme_queue_depth = 0, CapsProblem::QueueDepthRange { field: "max_nvme_queue_depth", value: 0 })]
#[case::depth_one(|c: &mut NvmfCaps| c.min_nvme_queue_depth = 1, CapsProblem::QueueDepthRange { field: "min_nvme_queue_depth", value: 1 })]
#[case::ioccsz_min_small(|c: &mut NvmfCaps| c.min_ioccsz = 3, CapsProblem::IoccszBelowSqe { field: "min_ioccsz", value: 3 })]
#[case::depth_min_above_max(|c: &mut NvmfCaps| c.min_nvme_queue_depth = 1025, CapsProblem::Exceeds { field: "min_nvme_queue_depth", value: 1025, bound: "max_nvme_queue_depth", bound_value: 1024 })]
#[case::staging_min_above_max(|c: &mut NvmfCaps| c.min_staging_buf_size = (8 << 20) + 1, CapsProblem::Exceeds { field: "min_staging_buf_size", value: (8 << 20) + 1, bound: "max_staging_buf_size", bound_value: 8 << 20 })]
#[case::ctrls_per_srq_above_total(|c: &mut NvmfCaps| c.max_srq_backend_ctrls = 4, CapsProblem::Exceeds { field: "max_srq_backend_ctrls", value: 4, bound: "max_backend_ctrls_total", bound_value: 3 })]
#[case::ns_per_srq_above_total(|c: &mut NvmfCaps| c.max_srq_namespaces = 13, CapsProblem::Exceeds { field: "max_srq_namespaces", value: 13, bound: "max_namespaces", bound_value: 12 })]
#[case::lba_small(|c: &mut NvmfCaps| { c.lba_data_sizes.insert(511); }, CapsProblem::LbaDataSizeTooSmall { size: 511 })]
#[case::lba_none(|c: &mut NvmfCaps| c.lba_data_sizes.clear(), CapsProblem::NoLbaDataSizes)]
fn caps_problem(#[case] set: CapsSet, #[case] problem: CapsProblem) {
    let mut c = caps();
    set(&mut c);
    let problems = c.validate().expect_err("inconsistent");
    assert!(problems.contains(&problem), "{problems:?}");
}

#[test]
fn caps_at_their_limits_are_consistent() {
    let c = NvmfCaps {
        min_nvme_queue_depth: 2,
        max_nvme_queue_depth: 65536,
        min_ioccsz: 260,
        min_staging_buf_size: 8 << 20,
        min_cmd_timeout_us: 30_000_000,
        max_srq_backend_ctrls: 3,
        max_srq_namespaces: 12,
        lba_data_sizes: [512].into_iter().collect(),
        ..caps()
    };
    assert_eq!(c.validate(), Ok(()));
}

// ---- properties ----

fn any_caps() -> impl Strategy<Value = NvmfCaps> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u16>(), any::<u32>()),
        (
            any::<u32>(),
            any::<u32>(),
            prop::collection::btree_set(any::<u32>(), 0..4),
        ),
    )
        .prop_map(|(a, b, c, d, e)| NvmfCaps {
            offload_type_dc: OffloadType::from_bits_retain(a.0),
            offload_type_rc: OffloadType::from_bits_retain(a.1),
            max_backend_ctrls_total: a.2,
            max_srq_backend_ctrls: a.3,
            max_srq_namespaces: b.0,
            max_namespaces: b.1,
            max_io_sz: b.2,
            max_nvme_queue_depth: b.3,
            min_staging_buf_size: c.0,
            max_staging_buf_size: c.1,
            min_nvme_queue_depth: c.2,
            max_ioccsz: c.3,
            min_ioccsz: d.0,
            min_cmd_timeout_us: d.1,
            max_icdoff: d.2,
            max_cmd_timeout_us: d.3,
            max_frontend_nsid: e.0,
            max_extra_sqs: e.1 % 8,
            lba_data_sizes: e.2,
            supports_non_offloaded_ops: false,
            qp_last_nvme_cqe_reached: false,
        })
}

fn any_memref() -> impl Strategy<Value = MemRef> {
    (0u32..4, any::<u64>(), any::<u64>()).prop_map(|(mr, addr, len)| MemRef {
        mr: MrId(mr),
        addr,
        len,
    })
}

fn any_srq() -> impl Strategy<Value = NvmfSrqAttrs> {
    (any::<(u32, u32, u8, u32, u16, u32, u32)>(), any_memref()).prop_map(
        |((ops, max_ns, lps, ioccsz, icdoff, io, depth), sb)| NvmfSrqAttrs {
            rq: SrqInit::new(1),
            offload_ops: OffloadOps::from_bits_retain(ops),
            max_namespaces: max_ns,
            nvme_log_page_sz: lps,
            ioccsz,
            icdoff,
            max_io_sz: io,
            nvme_queue_depth: depth,
            staging_buf: sb,
        },
    )
}

fn any_ctrl() -> impl Strategy<Value = NvmeCtrlAttrs> {
    (
        (any_memref(), any_memref(), any_memref(), any_memref()),
        (any::<u16>(), any::<u16>(), any::<u32>()),
        prop::collection::vec((any_memref(), any_memref(), any::<u16>()), 0..3),
    )
        .prop_map(
            |((sq, cq, sqdb, cqdb), (si, ci, to), extra)| NvmeCtrlAttrs {
                sq_buf: sq,
                cq_buf: cq,
                sqdb,
                cqdb,
                sqdb_ini: si,
                cqdb_ini: ci,
                cmd_timeout_us: to,
                extra_sqs: extra
                    .into_iter()
                    .map(|(buf, db, db_ini)| BackendSq { buf, db, db_ini })
                    .collect(),
            },
        )
}

/// Regions `(id, addr, len, locally writable)`, keys 0.
fn regions(v: Vec<(u32, u64, u64, bool)>) -> Vec<MrInfo> {
    v.into_iter()
        .map(|(id, addr, len, w)| MrInfo {
            id: MrId(id),
            addr,
            len,
            lkey: 0,
            rkey: 0,
            access: if w {
                Access::LOCAL_WRITE
            } else {
                Access::empty()
            },
        })
        .collect()
}

fn any_mrs() -> impl Strategy<Value = Vec<MrInfo>> {
    prop::collection::vec((0u32..4, any::<u64>(), any::<u64>(), any::<bool>()), 0..4)
        .prop_map(regions)
}

proptest! {
    /// No input, however absurd (invalid caps included), panics a validator.
    #[test]
    fn validators_never_panic(
        caps in any_caps(),
        srq in any_srq(),
        ctrl in any_ctrl(),
        mrs in any_mrs(),
        m in (any::<u32>(), any::<u32>(), any::<u32>()),
        st in (any::<bool>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        flags in any::<u32>(),
    ) {
        let _ = caps.validate();
        let _ = check_srq_attrs(&caps, &srq, mr_table(&mrs));
        let _ = check_ctrl_attrs(&caps, &srq, &ctrl, mr_table(&mrs));
        let counts = CtrlCounts { srq_ctrls: st.3, device_ctrls: st.4 };
        let _ = check_create_ctrl(&caps, &srq, &ctrl, mr_table(&mrs), counts);
        let m = mapping(m.0, m.1, m.2);
        let _ = check_ns_mapping(&caps, &m);
        let state = map_state(st.0, st.1, st.2);
        let _ = check_map_nsid(&caps, &srq, &m, state);
        let _ = check_unmap_nsid(&caps, m.fe_nsid, st.0);
        let _ = check_qp_set_nvmf(QpNvmfFlags::from_bits_retain(flags), st.0);
        let _ = srq.in_capsule_data_len();
        let _ = srq.nvme_page_size();
    }

    /// With every other field valid, the verdict on the queue-depth, IOCCSZ, ICDOFF and
    /// staging-length fields is the plain range predicate.
    #[test]
    fn srq_verdict_matches_range_predicate(
        depth in 0u32..1100,
        ioccsz in 0u32..300,
        icdoff in 0u16..8,
        len in (1u64 << 20) - 2..(8u64 << 20) + 2,
    ) {
        let c = caps();
        let a = NvmfSrqAttrs {
            nvme_queue_depth: depth,
            ioccsz,
            icdoff,
            staging_buf: MemRef { len, ..srq().staging_buf },
            ..srq()
        };
        let expected = (16..=1024).contains(&depth)
            && (8..=260).contains(&ioccsz)
            && icdoff <= 4
            && (icdoff == 0 || u32::from(icdoff) + 4 < ioccsz)
            && ((1 << 20)..=(8 << 20)).contains(&len);
        let verdict = check_srq_attrs(&c, &a, mr_table(&mrs()));
        prop_assert_eq!(verdict.is_ok(), expected, "{:?}", verdict);
        if let Err(e) = verdict {
            prop_assert_eq!(e.errno(), Errno::EINVAL);
        }
    }

    /// The verdict on a mapping is: EINVAL for an impossible nsid, else EOPNOTSUPP for an
    /// unlisted LBA data size, else Ok.
    #[test]
    fn mapping_verdict_matches_predicate(
        fe in prop_oneof![0u32..120, Just(u32::MAX), any::<u32>()],
        be in prop_oneof![0u32..3, Just(u32::MAX), any::<u32>()],
        lba in prop_oneof![prop::sample::select(vec![512u32, 520, 4096, 4104, 4160]), 0u32..5000],
    ) {
        let c = caps();
        let expected = if fe == 0 || fe > 100 || be == 0 || be == u32::MAX {
            Err(Errno::EINVAL)
        } else if ![512, 520, 4096, 4104, 4160].contains(&lba) {
            Err(Errno::EOPNOTSUPP)
        } else {
            Ok(())
        };
        prop_assert_eq!(
            errno_of(check_ns_mapping(&c, &mapping(fe, be, lba))),
            expected
        );
    }

    /// An accepted staging buffer always lies inside a writable region it names.
    #[test]
    fn accepted_staging_is_inside_its_region(
        mrs in prop::collection::vec((0u32..3, 0u64..0x4000, 0u64..0x4000, any::<bool>()), 0..4)
            .prop_map(regions),
        sb in (0u32..3, 0u64..0x8000, 0u64..0x4000),
    ) {
        let c = NvmfCaps { min_staging_buf_size: 0, max_staging_buf_size: 0, ..caps() };
        let staging_buf = MemRef { mr: MrId(sb.0), addr: sb.1, len: sb.2 };
        let a = NvmfSrqAttrs { staging_buf, ..srq() };
        let lookup = mr_table(&mrs);
        let independent = lookup(staging_buf.mr).is_some_and(|mr| {
            staging_buf.len > 0
                && staging_buf.addr >= mr.addr
                && staging_buf.addr + staging_buf.len <= mr.addr + mr.len
                && mr.access.contains(Access::LOCAL_WRITE)
        });
        prop_assert_eq!(check_srq_attrs(&c, &a, mr_table(&mrs)).is_ok(), independent);
    }
}
