//! Area `srq`: NVMe-oF SRQ creation with a staging buffer, every attribute at and past its
//! caps bound, and destruction.

use harness::api::{NvmfSrqAttrs, OffloadOps, SrqHandle};
use std::time::Duration;

use harness::fabric::{Access, AsyncEvent, MrId, PdId};
use nix::errno::Errno;

use crate::check_eq;
use crate::framework::dut::{expect_errno, expect_ok};
use crate::framework::session::FE_NSID;
use crate::framework::{wait, Case, Dut, Failure, Need};

type Build = fn(&Dut, PdId) -> Result<NvmfSrqAttrs, Failure>;

/// A case that creates an SRQ with attributes from `build` and expects success (then
/// destroys it) or `errno`.
fn attr_case(
    id: &str,
    requirement: &'static str,
    description: &str,
    needs: &[Need],
    build: Build,
    expect: Option<Errno>,
) -> Case {
    Case::new(
        "srq",
        id,
        requirement,
        description,
        needs,
        move |d| async move {
            let pd = d.pd()?;
            let attrs = build(&d, pd)?;
            let r = d.provider.create_srq(pd, &attrs);
            match expect {
                None => {
                    let srq = expect_ok(r, "create_srq")?;
                    expect_ok(d.provider.destroy_srq(srq.handle), "destroy_srq")?;
                }
                Some(e) => expect_errno(r, e, "create_srq")?,
            }
            Ok(())
        },
    )
}

/// Most SRQs `srq.limit.device` creates to reach the device's `max_srq`; a device with more
/// skips it (a profile's `[device] max_srq` lowers the reference device's).
const SRQ_LIMIT_BUDGET: u32 = 64;

/// Default attributes over a fresh default-size staging buffer.
fn base(d: &Dut, pd: PdId) -> Result<NvmfSrqAttrs, Failure> {
    let staging = d.staging(pd, d.staging_len())?;
    Ok(d.srq_attrs(&staging))
}

/// Attributes over a staging buffer of exactly `len` bytes (max_io_sz fitted to it).
fn with_staging(d: &Dut, pd: PdId, len: u64) -> Result<NvmfSrqAttrs, Failure> {
    let staging = d.staging(pd, len.max(1))?;
    let mut a = d.srq_attrs(&staging);
    a.staging_buf.len = len;
    a.max_io_sz = a.max_io_sz.min(len.max(1) as u32);
    Ok(a)
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    const B: &str = "SRQ-ATTR-BOUNDS";
    const EI: Option<Errno> = Some(Errno::EINVAL);
    let mut v = vec![
        attr_case(
            "create.valid",
            "SRQ-CREATE-VALID",
            "an SRQ with attributes inside the caps is created and destroyed",
            &[],
            base,
            None,
        ),
        attr_case(
            "ioccsz.at-min",
            B,
            "ioccsz = min_ioccsz is accepted",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.ioccsz = d.caps.min_ioccsz;
                Ok(a)
            },
            None,
        ),
        attr_case(
            "ioccsz.below-min",
            B,
            "ioccsz = min_ioccsz - 1 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.ioccsz = d.caps.min_ioccsz - 1;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "ioccsz.at-max",
            B,
            "ioccsz = max_ioccsz is accepted",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.ioccsz = d.caps.max_ioccsz;
                Ok(a)
            },
            None,
        ),
        attr_case(
            "ioccsz.above-max",
            B,
            "ioccsz = max_ioccsz + 1 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.ioccsz = d.caps.max_ioccsz + 1;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "icdoff.at-max",
            B,
            "icdoff = max_icdoff (with the largest capsule) is accepted",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.ioccsz = d.caps.max_ioccsz;
                a.icdoff = d.caps.max_icdoff;
                Ok(a)
            },
            None,
        ),
        attr_case(
            "icdoff.above-max",
            B,
            "icdoff = max_icdoff + 1 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.ioccsz = d.caps.max_ioccsz;
                a.icdoff = d.caps.max_icdoff + 1;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "max-io-sz.at-max",
            B,
            "max_io_sz = caps max_io_sz is accepted",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.max_io_sz = d.caps.max_io_sz;
                Ok(a)
            },
            None,
        ),
        attr_case(
            "max-io-sz.above-max",
            B,
            "max_io_sz = caps max_io_sz + 1 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.max_io_sz = d.caps.max_io_sz + 1;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "max-io-sz.zero",
            B,
            "max_io_sz = 0 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.max_io_sz = 0;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "queue-depth.at-min",
            B,
            "nvme_queue_depth = min_nvme_queue_depth is accepted",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.nvme_queue_depth = d.caps.min_nvme_queue_depth;
                Ok(a)
            },
            None,
        ),
        attr_case(
            "queue-depth.below-min",
            B,
            "nvme_queue_depth = min_nvme_queue_depth - 1 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.nvme_queue_depth = d.caps.min_nvme_queue_depth - 1;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "queue-depth.at-max",
            B,
            "nvme_queue_depth = max_nvme_queue_depth is accepted",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.nvme_queue_depth = d.caps.max_nvme_queue_depth;
                Ok(a)
            },
            None,
        ),
        attr_case(
            "queue-depth.above-max",
            B,
            "nvme_queue_depth = max_nvme_queue_depth + 1 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.nvme_queue_depth = d.caps.max_nvme_queue_depth + 1;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "max-namespaces.at-max",
            B,
            "max_namespaces = max_srq_namespaces is accepted",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.max_namespaces = d.caps.max_srq_namespaces;
                Ok(a)
            },
            None,
        ),
        attr_case(
            "max-namespaces.above-max",
            B,
            "max_namespaces = max_srq_namespaces + 1 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.max_namespaces = d.caps.max_srq_namespaces + 1;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "max-namespaces.zero",
            B,
            "max_namespaces = 0 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.max_namespaces = 0;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "log-page-sz.above-15",
            B,
            "nvme_log_page_sz = 16 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.nvme_log_page_sz = 16;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "staging.at-min",
            B,
            "a staging buffer of min_staging_buf_size is accepted",
            &[],
            |d, pd| with_staging(d, pd, d.caps.min_staging_buf_size),
            None,
        ),
        attr_case(
            "staging.below-min",
            B,
            "a staging buffer of min_staging_buf_size - 1 is EINVAL",
            &[],
            |d, pd| with_staging(d, pd, d.caps.min_staging_buf_size.saturating_sub(1)),
            EI,
        ),
        attr_case(
            "staging.at-max",
            B,
            "a staging buffer of max_staging_buf_size is accepted",
            &[Need::StagingMax],
            |d, pd| with_staging(d, pd, d.caps.max_staging_buf_size),
            None,
        ),
        attr_case(
            "staging.above-max",
            B,
            "a staging buffer of max_staging_buf_size + 1 is EINVAL",
            &[Need::StagingMax],
            |d, pd| with_staging(d, pd, d.caps.max_staging_buf_size + 1),
            EI,
        ),
        attr_case(
            "staging.unregistered",
            "SRQ-STAGING",
            "a staging buffer naming no memory region is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.staging_buf.mr = MrId(u32::MAX);
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "staging.outside-region",
            "SRQ-STAGING",
            "a staging buffer longer than its region is EINVAL",
            &[],
            |d, pd| {
                let staging = d.staging(pd, d.staging_len())?;
                let mut a = d.srq_attrs(&staging);
                a.staging_buf.addr += 4096;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "staging.not-writable",
            "SRQ-STAGING",
            "a staging buffer in a region without LOCAL_WRITE is EINVAL",
            &[],
            |d, pd| {
                let staging = d.ctx.reg_mr(pd, d.staging_len(), Access::empty())?;
                Ok(d.srq_attrs(&staging))
            },
            EI,
        ),
        attr_case(
            "staging.zero-length",
            "SRQ-STAGING",
            "a staging buffer of length 0 is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.staging_buf.len = 0;
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "offload-ops.empty",
            "SRQ-OFFLOAD-OPS",
            "no offload ops is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.offload_ops = OffloadOps::empty();
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "offload-ops.unknown-bit",
            "SRQ-OFFLOAD-OPS",
            "an offload op bit no op names is EINVAL",
            &[],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.offload_ops = OffloadOps::from_bits_retain(a.offload_ops.bits() | 1 << 20);
                Ok(a)
            },
            EI,
        ),
        attr_case(
            "offload-ops.write-only",
            "SRQ-OFFLOAD-OPS",
            "offloading writes only is accepted",
            &[Need::Ops(OffloadOps::WRITE)],
            |d, pd| {
                let mut a = base(d, pd)?;
                a.offload_ops = OffloadOps::WRITE;
                Ok(a)
            },
            None,
        ),
    ];
    v.push(Case::new(
        "srq",
        "offload-ops.outside-caps",
        "SRQ-OFFLOAD-OPS",
        "asking for an op the caps do not allow is EINVAL",
        &[Need::SomeOpNotOffloadable],
        |d| async move {
            let missing = OffloadOps::all() - d.caps.allowed_offload_ops();
            let Some(op) = missing.iter().next() else {
                return Err(Failure::new("no op outside the caps"));
            };
            let pd = d.pd()?;
            let mut a = base(&d, pd)?;
            a.offload_ops = op;
            expect_errno(
                d.provider.create_srq(pd, &a),
                Errno::EINVAL,
                "create_srq with an op outside the caps",
            )
        },
    ));
    v.push(Case::new(
        "srq",
        "destroy.with-ctrl",
        "SRQ-DESTROY-BUSY",
        "destroy_srq is EBUSY while a backend controller exists (through the offload API and \
         through the device context), and succeeds after its removal",
        &[Need::Backends],
        |d| async move {
            let (pd, staging, attrs, srq) = d.srq()?;
            let ctrl = d.ctrl(pd, &staging, &attrs, &srq)?;
            expect_errno(
                d.provider.destroy_srq(srq.handle),
                Errno::EBUSY,
                "destroy_srq with a controller",
            )?;
            expect_errno(
                d.ctx.destroy_srq(srq.srq),
                Errno::EBUSY,
                "the device context's destroy_srq of the NVMe-oF SRQ with a controller",
            )?;
            expect_ok(
                d.provider.remove_nvme_ctrl(srq.handle, ctrl),
                "remove_nvme_ctrl",
            )?;
            expect_ok(
                d.provider.destroy_srq(srq.handle),
                "destroy_srq after removal",
            )?;
            Ok(())
        },
    ));
    v.push(Case::new(
        "srq",
        "destroy.with-qp",
        "SRQ-DESTROY-BUSY",
        "destroy_srq is EBUSY while a QP is attached to the SRQ, even with no controller left, \
         and succeeds once the QP is destroyed",
        &[Need::Backends],
        |d| async move {
            let s = d.default_session(4420).await?;
            expect_ok(d.provider.unmap_nsid(s.ctrl, FE_NSID), "unmap_nsid")?;
            expect_ok(
                d.provider.remove_nvme_ctrl(s.srq.handle, s.ctrl),
                "remove_nvme_ctrl",
            )?;
            expect_errno(
                d.provider.destroy_srq(s.srq.handle),
                Errno::EBUSY,
                "destroy_srq with a QP attached",
            )?;
            d.ctx.destroy_qp(s.qp)?;
            expect_ok(
                d.provider.destroy_srq(s.srq.handle),
                "destroy_srq once its QP is destroyed",
            )?;
            Ok(())
        },
    ));
    v.push(Case::new(
        "srq",
        "destroy.unknown",
        "SRQ-UNKNOWN",
        "destroy_srq of a handle that names no SRQ is EINVAL",
        &[],
        |d| async move {
            expect_errno(
                d.provider.destroy_srq(SrqHandle(u32::MAX)),
                Errno::EINVAL,
                "destroy_srq",
            )
        },
    ));
    v.push(Case::new(
        "srq",
        "destroy.twice",
        "SRQ-UNKNOWN",
        "destroy_srq of an SRQ already destroyed is EINVAL",
        &[],
        |d| async move {
            let (_, _, _, srq) = d.srq()?;
            expect_ok(d.provider.destroy_srq(srq.handle), "destroy_srq")?;
            expect_errno(
                d.provider.destroy_srq(srq.handle),
                Errno::EINVAL,
                "second destroy_srq",
            )
        },
    ));
    v.push(Case::new(
        "srq",
        "limit.device",
        "SRQ-LIMIT-DEVICE",
        "the device's max_srq NVMe-oF SRQs can be created; one more is ENOMEM; after one is destroyed, one fits again",
        &[Need::SrqCountWithin(SRQ_LIMIT_BUDGET)],
        |d| async move {
            let max = d.ctx.device_attr().max_srq;
            let pd = d.pd()?;
            let mut made = Vec::new();
            for i in 1..=max {
                let a = base(&d, pd)?;
                made.push(expect_ok(
                    d.provider.create_srq(pd, &a),
                    &format!("NVMe-oF SRQ {i} of max_srq {max}"),
                )?);
            }
            let a = base(&d, pd)?;
            expect_errno(
                d.provider.create_srq(pd, &a),
                Errno::ENOMEM,
                "one NVMe-oF SRQ past the device's max_srq",
            )?;
            let first = made.first().ok_or_else(|| Failure::new("max_srq is 0"))?;
            expect_ok(d.provider.destroy_srq(first.handle), "destroy_srq")?;
            expect_ok(
                d.provider.create_srq(pd, &a),
                "create_srq once an SRQ was destroyed",
            )?;
            Ok(())
        },
    ));
    v.push(Case::new(
        "srq",
        "qp-error-reported",
        "SRQ-QP-EVENTS",
        "a QP of the NVMe-oF SRQ that fails is reported to software on the device's context: \
         QP_FATAL naming the QP software created, then LAST_WQE_REACHED for it (the first step \
         of a two-phase teardown), and nothing else",
        &[Need::FabricFaults],
        |d| async move {
            let s = d.default_session(4420).await?;
            d.fabric.inject(harness::fabric::Fault::QpError {
                addr: d.target_ip,
                qpn: s.qpn,
            })?;
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + wait(Duration::from_secs(5));
            while seen.len() < 2 {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match harness::fabric::wait::async_event(d.ctx.as_ref(), left).await {
                    // The connection's own establishment may still be queued.
                    Ok(AsyncEvent::CommEst(q)) if q == s.qp => {}
                    Ok(ev) => seen.push(ev),
                    Err(_) => break,
                }
            }
            check_eq!(
                seen,
                vec![
                    AsyncEvent::QpFatal(s.qp),
                    AsyncEvent::QpLastWqeReached(s.qp)
                ],
                "the device context's events after the QP failed"
            );
            Ok(())
        },
    ));
    v
}
