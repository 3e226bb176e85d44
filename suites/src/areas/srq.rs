//! Area `srq`: NVMe-oF SRQ creation with a staging buffer, every attribute at and past its
//! caps bound, and destruction.

use harness::api::{NvmfCaps, NvmfSrqAttrs, OffloadOps, SrqHandle};
use std::time::Duration;

use harness::fabric::{Access, AsyncEvent, MrId, PdId};
use nix::errno::Errno;

use crate::check_eq;
use crate::framework::dut::{expect_errno, expect_ok};
use crate::framework::session::FE_NSID;
use crate::framework::{wait, Case, Dut, Failure, Need};

/// A case that creates an SRQ with attributes from `build` and expects success (then
/// destroys it) or `errno`.
fn attr_case<B>(
    id: &str,
    requirement: &'static str,
    description: impl Into<String>,
    needs: &[Need],
    build: B,
    expect: Option<Errno>,
) -> Case
where
    B: Fn(&Dut, PdId) -> Result<NvmfSrqAttrs, Failure> + Copy + Send + Sync + 'static,
{
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

/// A case that creates an SRQ with the default attributes ([`base`]) changed by `set`.
fn tweak(
    id: &str,
    requirement: &'static str,
    description: &str,
    needs: &[Need],
    set: fn(&Dut, &mut NvmfSrqAttrs),
    expect: Option<Errno>,
) -> Case {
    let build = move |d: &Dut, pd| {
        let mut a = base(d, pd)?;
        set(d, &mut a);
        Ok(a)
    };
    attr_case(id, requirement, description, needs, build, expect)
}

/// Where a bounds case puts an attribute: at or one past a caps bound, or 0.
#[derive(Clone, Copy)]
enum At {
    Min,
    BelowMin,
    Max,
    AboveMax,
    Zero,
}

impl At {
    /// The id's last part.
    fn suffix(self) -> &'static str {
        match self {
            At::Min => "at-min",
            At::BelowMin => "below-min",
            At::Max => "at-max",
            At::AboveMax => "above-max",
            At::Zero => "zero",
        }
    }

    /// What the description adds to the bound's name.
    fn offset(self) -> &'static str {
        match self {
            At::BelowMin => " - 1",
            At::AboveMax => " + 1",
            _ => "",
        }
    }

    /// What the device must answer.
    fn expect(self) -> Option<Errno> {
        match self {
            At::Min | At::Max => None,
            _ => Some(Errno::EINVAL),
        }
    }

    /// The verdict in the description.
    fn verdict(self) -> &'static str {
        match self.expect() {
            None => "accepted",
            Some(_) => "EINVAL",
        }
    }
}

/// A caps bound of a u32 attribute: its name in descriptions and its value.
type Bound = (&'static str, fn(&NvmfCaps) -> u32);

/// The cases `{id}.at-min`, `.below-min` (with a lower bound `min`), `.at-max`, `.above-max`
/// and `.zero` (without one), setting the u32 attribute `name` with `set`.
fn bounded(
    id: &'static str,
    name: &'static str,
    (min, max): (Option<Bound>, Bound),
    set: fn(&mut NvmfSrqAttrs, u32),
) -> Vec<Case> {
    let points: &[At] = match min {
        Some(_) => &[At::Min, At::BelowMin, At::Max, At::AboveMax],
        None => &[At::Max, At::AboveMax, At::Zero],
    };
    let mut v = Vec::new();
    for &at in points {
        let bound = match at {
            At::Min | At::BelowMin => min.expect("a lower bound"),
            _ => max,
        };
        let description = match at {
            At::Zero => format!("{name} = 0 is EINVAL"),
            _ => format!("{name} = {}{} is {}", bound.0, at.offset(), at.verdict()),
        };
        let value = bound.1;
        let build = move |d: &Dut, pd| {
            let mut a = base(d, pd)?;
            let b = value(&d.caps);
            set(
                &mut a,
                match at {
                    At::Min | At::Max => b,
                    At::BelowMin => b - 1,
                    At::AboveMax => b + 1,
                    At::Zero => 0,
                },
            );
            Ok(a)
        };
        let id = format!("{id}.{}", at.suffix());
        v.push(attr_case(&id, BOUNDS, description, &[], build, at.expect()));
    }
    v
}

/// The requirement of the bounds cases.
const BOUNDS: &str = "SRQ-ATTR-BOUNDS";

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
    const EI: Option<Errno> = Some(Errno::EINVAL);
    const STAGING: &str = "SRQ-STAGING";
    const OPS: &str = "SRQ-OFFLOAD-OPS";
    use At::*;
    let mut v = vec![attr_case(
        "create.valid",
        "SRQ-CREATE-VALID",
        "an SRQ with attributes inside the caps is created and destroyed",
        &[],
        base,
        None,
    )];
    let ioccsz: Bound = ("max_ioccsz", |c| c.max_ioccsz);
    let min_ioccsz: Bound = ("min_ioccsz", |c| c.min_ioccsz);
    v.extend(bounded(
        "ioccsz",
        "ioccsz",
        (Some(min_ioccsz), ioccsz),
        |a, x| a.ioccsz = x,
    ));
    for at in [Max, AboveMax] {
        let description = match at {
            Max => "icdoff = max_icdoff (with the largest capsule) is accepted",
            _ => "icdoff = max_icdoff + 1 is EINVAL",
        };
        let build = move |d: &Dut, pd| {
            let mut a = base(d, pd)?;
            a.ioccsz = d.caps.max_ioccsz;
            a.icdoff = d.caps.max_icdoff + u16::from(at.expect().is_some());
            Ok(a)
        };
        let id = format!("icdoff.{}", at.suffix());
        v.push(attr_case(&id, BOUNDS, description, &[], build, at.expect()));
    }
    let max_io: Bound = ("caps max_io_sz", |c| c.max_io_sz);
    v.extend(bounded("max-io-sz", "max_io_sz", (None, max_io), |a, x| {
        a.max_io_sz = x
    }));
    let depth: (Option<Bound>, Bound) = (
        Some(("min_nvme_queue_depth", |c| c.min_nvme_queue_depth)),
        ("max_nvme_queue_depth", |c| c.max_nvme_queue_depth),
    );
    v.extend(bounded("queue-depth", "nvme_queue_depth", depth, |a, x| {
        a.nvme_queue_depth = x
    }));
    let namespaces: Bound = ("max_srq_namespaces", |c| c.max_srq_namespaces);
    v.extend(bounded(
        "max-namespaces",
        "max_namespaces",
        (None, namespaces),
        |a, x| a.max_namespaces = x,
    ));
    v.push(tweak(
        "log-page-sz.above-15",
        BOUNDS,
        "nvme_log_page_sz = 16 is EINVAL",
        &[],
        |_, a| a.nvme_log_page_sz = 16,
        EI,
    ));
    for at in [Min, BelowMin, Max, AboveMax] {
        let (bound, needs): (_, &[Need]) = match at {
            Min | BelowMin => ("min_staging_buf_size", &[]),
            _ => ("max_staging_buf_size", &[Need::StagingMax]),
        };
        let build = move |d: &Dut, pd| {
            let c = &d.caps;
            let len = match at {
                Min => c.min_staging_buf_size,
                BelowMin => c.min_staging_buf_size.saturating_sub(1),
                Max => c.max_staging_buf_size,
                _ => c.max_staging_buf_size + 1,
            };
            with_staging(d, pd, len)
        };
        let description = format!(
            "a staging buffer of {bound}{} is {}",
            at.offset(),
            at.verdict()
        );
        let id = format!("staging.{}", at.suffix());
        v.push(attr_case(
            &id,
            BOUNDS,
            description,
            needs,
            build,
            at.expect(),
        ));
    }
    v.push(tweak(
        "staging.unregistered",
        STAGING,
        "a staging buffer naming no memory region is EINVAL",
        &[],
        |_, a| a.staging_buf.mr = MrId(u32::MAX),
        EI,
    ));
    v.push(tweak(
        "staging.outside-region",
        STAGING,
        "a staging buffer longer than its region is EINVAL",
        &[],
        |_, a| a.staging_buf.addr += 4096,
        EI,
    ));
    v.push(attr_case(
        "staging.not-writable",
        STAGING,
        "a staging buffer in a region without LOCAL_WRITE is EINVAL",
        &[],
        |d, pd| {
            let staging = d.ctx.reg_mr(pd, d.staging_len(), Access::empty())?;
            Ok(d.srq_attrs(&staging))
        },
        EI,
    ));
    v.push(tweak(
        "staging.zero-length",
        STAGING,
        "a staging buffer of length 0 is EINVAL",
        &[],
        |_, a| a.staging_buf.len = 0,
        EI,
    ));
    v.push(tweak(
        "offload-ops.empty",
        OPS,
        "no offload ops is EINVAL",
        &[],
        |_, a| a.offload_ops = OffloadOps::empty(),
        EI,
    ));
    v.push(tweak(
        "offload-ops.unknown-bit",
        OPS,
        "an offload op bit no op names is EINVAL",
        &[],
        |_, a| a.offload_ops = OffloadOps::from_bits_retain(a.offload_ops.bits() | 1 << 20),
        EI,
    ));
    v.push(tweak(
        "offload-ops.write-only",
        OPS,
        "offloading writes only is accepted",
        &[Need::Ops(OffloadOps::WRITE)],
        |_, a| a.offload_ops = OffloadOps::WRITE,
        None,
    ));
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
