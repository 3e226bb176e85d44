//! Area `ctrl`: backend controllers — creation, removal, their limits and attributes.

use harness::api::{CtrlHandle, NvmeCtrlAttrs, NvmfCaps, NvmfSrq, NvmfSrqAttrs, SrqHandle};
use harness::fabric::{MrInfo, PdId};
use nix::errno::Errno;

use crate::framework::case::{backends_case, batches};
use crate::framework::dut::{expect_errno, expect_ok};
use crate::framework::{Case, CaseResult, Dut, Failure, Need};

/// Creates a controller on a fresh valid SRQ after `mutate` changes its attributes, and
/// expects success or `errno`.
fn attr_case(
    id: &str,
    description: &str,
    needs: &[Need],
    mutate: impl Fn(&Dut, &mut NvmeCtrlAttrs) + Copy + Send + Sync + 'static,
    expect: Option<Errno>,
) -> Case {
    let mut needs = needs.to_vec();
    needs.push(Need::Backends);
    Case::new(
        "ctrl",
        id,
        "CTRL-ATTR-BOUNDS",
        description,
        &needs,
        move |d| async move {
            let (pd, staging, attrs, srq) = d.srq()?;
            let mut a = d.backends()?.create(pd, &attrs, &staging, 1, &[])?;
            mutate(&d, &mut a);
            let r = d.provider.create_nvme_ctrl(srq.handle, &a);
            match expect {
                None => {
                    let c = expect_ok(r, "create_nvme_ctrl")?;
                    expect_ok(
                        d.provider.remove_nvme_ctrl(srq.handle, c),
                        "remove_nvme_ctrl",
                    )?;
                    Ok(())
                }
                Some(e) => expect_errno(r, e, "create_nvme_ctrl"),
            }
        },
    )
}

/// The SRQ [`Dut::srq`] makes: its PD, staging buffer, attributes and the SRQ itself.
type Srq = (PdId, MrInfo, NvmfSrqAttrs, NvmfSrq);

/// A case of this area that needs backend controllers and starts on a fresh SRQ.
fn srq_case(
    id: &str,
    requirement: &'static str,
    description: &str,
    body: impl Fn(&Dut, Srq) -> CaseResult + Copy + Send + Sync + 'static,
) -> Case {
    backends_case("ctrl", id, requirement, description, move |d| async move {
        let srq = d.srq()?;
        body(&d, srq)
    })
}

/// A [`srq_case`] that starts with one controller on its SRQ: `body` gets the SRQ's handle
/// and the controller.
fn ctrl_case(
    id: &str,
    requirement: &'static str,
    description: &str,
    body: fn(&Dut, SrqHandle, CtrlHandle) -> CaseResult,
) -> Case {
    srq_case(
        id,
        requirement,
        description,
        move |d, (pd, staging, attrs, srq)| {
            let c = d.ctrl(pd, &staging, &attrs, &srq)?;
            body(d, srq.handle, c)
        },
    )
}

/// Removes controller `c` from `srq`, which must succeed (`what` names the call).
fn removed(d: &Dut, srq: SrqHandle, c: CtrlHandle, what: &str) -> CaseResult {
    expect_ok(d.provider.remove_nvme_ctrl(srq, c), what)?;
    Ok(())
}

/// How an attribute case changes the default controller attributes.
type Mutate = fn(&Dut, &mut NvmeCtrlAttrs);

/// A command timeout case: the id's last part, what the description says of the timeout
/// and the verdict, the timeout from the caps, and what the device must answer.
type Timeout = (
    &'static str,
    &'static str,
    fn(&NvmfCaps) -> u32,
    Option<Errno>,
);

/// Creates `n` controllers on `srq` (fresh backends); returns them.
fn make_ctrls(
    d: &Dut,
    pd: harness::fabric::PdId,
    staging: &harness::fabric::MrInfo,
    attrs: &harness::api::NvmfSrqAttrs,
    srq: SrqHandle,
    n: u32,
) -> Result<Vec<CtrlHandle>, Failure> {
    (0..n)
        .map(|i| {
            let a = d.backends()?.create(pd, attrs, staging, 1, &[])?;
            d.provider.create_nvme_ctrl(srq, &a).map_err(|e| {
                Failure::new(format!(
                    "controller {} of {n}: expected success, got {:?} ({e})",
                    i + 1,
                    e.errno()
                ))
            })
        })
        .collect()
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    let mut v = vec![
        ctrl_case(
            "create-remove",
            "CTRL-CREATE-REMOVE",
            "a controller with valid queues is created and removed",
            |d, srq, c| removed(d, srq, c, "remove_nvme_ctrl"),
        ),
        ctrl_case(
            "remove.with-namespace",
            "CTRL-REMOVE-BUSY",
            "removing a controller with a mapped namespace is EBUSY; after unmapping it succeeds",
            |d, srq, c| {
                let m = harness::api::NsMapping {
                    fe_nsid: 1,
                    nvme_nsid: 1,
                    lba_data_size: d.ns_format().lba_data_size(),
                };
                expect_ok(d.provider.map_nsid(c, &m), "map_nsid")?;
                expect_errno(
                    d.provider.remove_nvme_ctrl(srq, c),
                    Errno::EBUSY,
                    "remove with a namespace",
                )?;
                expect_ok(d.provider.unmap_nsid(c, 1), "unmap_nsid")?;
                removed(d, srq, c, "remove after unmap")
            },
        ),
        srq_case(
            "remove.other-srq",
            "CTRL-OTHER-SRQ",
            "removing a controller through another SRQ is EINVAL",
            |d, (pd, staging, attrs, srq)| {
                let (_, _, _, other) = d.srq()?;
                let c = d.ctrl(pd, &staging, &attrs, &srq)?;
                expect_errno(
                    d.provider.remove_nvme_ctrl(other.handle, c),
                    Errno::EINVAL,
                    "remove via the other SRQ",
                )
            },
        ),
        ctrl_case(
            "remove.twice",
            "CTRL-OTHER-SRQ",
            "removing a controller twice is EINVAL the second time",
            |d, srq, c| {
                removed(d, srq, c, "remove")?;
                expect_errno(
                    d.provider.remove_nvme_ctrl(srq, c),
                    Errno::EINVAL,
                    "second remove",
                )
            },
        ),
        srq_case(
            "create.unknown-srq",
            "SRQ-UNKNOWN",
            "creating a controller on a handle that names no SRQ is EINVAL",
            |d, (pd, staging, attrs, _srq)| {
                let a = d.backends()?.create(pd, &attrs, &staging, 1, &[])?;
                expect_errno(
                    d.provider.create_nvme_ctrl(SrqHandle(u32::MAX), &a),
                    Errno::EINVAL,
                    "create_nvme_ctrl",
                )
            },
        ),
        srq_case(
            "limit.per-srq",
            "CTRL-LIMIT-SRQ",
            "max_srq_backend_ctrls controllers fit on one SRQ; one more is ENOSPC",
            |d, (pd, staging, attrs, srq)| {
                let n = d
                    .caps
                    .max_srq_backend_ctrls
                    .min(d.caps.max_backend_ctrls_total);
                make_ctrls(d, pd, &staging, &attrs, srq.handle, n)?;
                let a = d.backends()?.create(pd, &attrs, &staging, 1, &[])?;
                let want = if n < d.caps.max_srq_backend_ctrls {
                    Errno::ENOMEM
                } else {
                    Errno::ENOSPC
                };
                expect_errno(
                    d.provider.create_nvme_ctrl(srq.handle, &a),
                    want,
                    "one controller past the limit",
                )
            },
        ),
        backends_case(
            "ctrl",
            "limit.total",
            "CTRL-LIMIT-TOTAL",
            "max_backend_ctrls_total controllers fit on the device; one more is ENOMEM",
            |d| async move {
                let (total, per) = (d.caps.max_backend_ctrls_total, d.caps.max_srq_backend_ctrls);
                for (_, n) in batches(total, per) {
                    let (pd, staging, attrs, srq) = d.srq()?;
                    make_ctrls(&d, pd, &staging, &attrs, srq.handle, n)?;
                }
                let (pd, staging, attrs, srq) = d.srq()?;
                let a = d.backends()?.create(pd, &attrs, &staging, 1, &[])?;
                expect_errno(
                    d.provider.create_nvme_ctrl(srq.handle, &a),
                    Errno::ENOMEM,
                    "one controller past the device limit",
                )
            },
        ),
    ];
    // Attributes one step outside what the device takes, then two inside.
    let rejected: [(&str, &str, Mutate); 5] = [
        (
            "sq-ring.too-short",
            "an SQ ring shorter than depth × 64 bytes is EINVAL",
            |_, a| a.sq_buf.len -= 64,
        ),
        (
            "cq-ring.too-short",
            "a CQ ring shorter than depth × 16 bytes is EINVAL",
            |_, a| a.cq_buf.len -= 16,
        ),
        (
            "sqdb.length",
            "an SQ doorbell of 8 bytes is EINVAL",
            |_, a| a.sqdb.len = 8,
        ),
        (
            "cqdb.unaligned",
            "a CQ doorbell not 4-byte aligned is EINVAL",
            |_, a| a.cqdb.addr += 2,
        ),
        (
            "sqdb-ini.at-depth",
            "an initial SQ tail equal to the depth is EINVAL",
            |d, a| a.sqdb_ini = depth(d),
        ),
    ];
    let accepted: [(&str, &str, Mutate); 2] = [
        (
            "cqdb-ini.below-depth",
            "an initial CQ head of depth - 1 is accepted",
            |d, a| a.cqdb_ini = depth(d) - 1,
        ),
        (
            "timeout.default",
            "a command timeout of 0 (device default) is accepted",
            |_, a| a.cmd_timeout_us = 0,
        ),
    ];
    for (id, description, mutate) in rejected {
        v.push(attr_case(id, description, &[], mutate, Some(Errno::EINVAL)));
    }
    for (id, description, mutate) in accepted {
        v.push(attr_case(id, description, &[], mutate, None));
    }
    // The command timeout at and one past its caps bounds.
    let timeouts: [Timeout; 3] = [
        (
            "at-min",
            "min_cmd_timeout is accepted",
            |c| c.min_cmd_timeout_us.max(1),
            None,
        ),
        (
            "at-max",
            "max_cmd_timeout is accepted",
            |c| c.max_cmd_timeout_us,
            None,
        ),
        (
            "above-max",
            "max_cmd_timeout + 1 is EINVAL",
            |c| c.max_cmd_timeout_us + 1,
            Some(Errno::EINVAL),
        ),
    ];
    for (at, what, timeout, expect) in timeouts {
        let set = move |d: &Dut, a: &mut NvmeCtrlAttrs| a.cmd_timeout_us = timeout(&d.caps);
        let description = format!("a command timeout of {what}");
        v.push(attr_case(
            &format!("timeout.{at}"),
            &description,
            &[Need::TimeoutBounds],
            set,
            expect,
        ));
    }
    for (id, extra, expect) in [
        ("extra-sqs.at-max", 0, None),
        ("extra-sqs.above-max", 1, Some(Errno::EINVAL)),
    ] {
        v.push(Case::new(
            "ctrl",
            id,
            "CTRL-ATTR-BOUNDS",
            if expect.is_none() {
                "max_extra_sqs extra SQs are accepted (served round-robin)"
            } else {
                "max_extra_sqs + 1 extra SQs are EINVAL"
            },
            &[Need::Backends, Need::ExtraSqs],
            move |d| async move {
                let (pd, staging, attrs, srq) = d.srq()?;
                let nsqs = 1 + d.caps.max_extra_sqs as usize + extra;
                let a = d.backends()?.create(pd, &attrs, &staging, nsqs, &[])?;
                let r = d.provider.create_nvme_ctrl(srq.handle, &a);
                match expect {
                    None => expect_ok(r, "create_nvme_ctrl").map(|_| ()),
                    Some(e) => expect_errno(r, e, "create_nvme_ctrl"),
                }
            },
        ));
    }
    v
}

/// The default SRQ queue depth of the DUT, as a doorbell value.
fn depth(d: &Dut) -> u16 {
    32.clamp(d.caps.min_nvme_queue_depth, d.caps.max_nvme_queue_depth) as u16
}
