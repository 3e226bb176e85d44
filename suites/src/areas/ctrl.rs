//! Area `ctrl`: backend controllers — creation, removal, their limits and attributes.

use harness::api::{CtrlHandle, NvmeCtrlAttrs, SrqHandle};
use nix::errno::Errno;

use crate::framework::dut::{expect_errno, expect_ok};
use crate::framework::{Case, Dut, Failure, Need};

/// Creates a controller on a fresh valid SRQ after `mutate` changes its attributes, and
/// expects success or `errno`.
fn attr_case(
    id: &str,
    description: &str,
    needs: &[Need],
    mutate: fn(&Dut, &mut NvmeCtrlAttrs),
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
    let bk = [Need::Backends];
    let mut v = vec![
        Case::new(
            "ctrl",
            "create-remove",
            "CTRL-CREATE-REMOVE",
            "a controller with valid queues is created and removed",
            &bk,
            |d| async move {
                let (pd, staging, attrs, srq) = d.srq()?;
                let c = d.ctrl(pd, &staging, &attrs, &srq)?;
                expect_ok(
                    d.provider.remove_nvme_ctrl(srq.handle, c),
                    "remove_nvme_ctrl",
                )?;
                Ok(())
            },
        ),
        Case::new(
            "ctrl",
            "remove.with-namespace",
            "CTRL-REMOVE-BUSY",
            "removing a controller with a mapped namespace is EBUSY; after unmapping it succeeds",
            &bk,
            |d| async move {
                let (pd, staging, attrs, srq) = d.srq()?;
                let c = d.ctrl(pd, &staging, &attrs, &srq)?;
                let m = harness::api::NsMapping {
                    fe_nsid: 1,
                    nvme_nsid: 1,
                    lba_data_size: d.ns_format().lba_data_size(),
                };
                expect_ok(d.provider.map_nsid(c, &m), "map_nsid")?;
                expect_errno(
                    d.provider.remove_nvme_ctrl(srq.handle, c),
                    Errno::EBUSY,
                    "remove with a namespace",
                )?;
                expect_ok(d.provider.unmap_nsid(c, 1), "unmap_nsid")?;
                expect_ok(
                    d.provider.remove_nvme_ctrl(srq.handle, c),
                    "remove after unmap",
                )?;
                Ok(())
            },
        ),
        Case::new(
            "ctrl",
            "remove.other-srq",
            "CTRL-OTHER-SRQ",
            "removing a controller through another SRQ is EINVAL",
            &bk,
            |d| async move {
                let (pd, staging, attrs, srq) = d.srq()?;
                let (_, _, _, other) = d.srq()?;
                let c = d.ctrl(pd, &staging, &attrs, &srq)?;
                expect_errno(
                    d.provider.remove_nvme_ctrl(other.handle, c),
                    Errno::EINVAL,
                    "remove via the other SRQ",
                )
            },
        ),
        Case::new(
            "ctrl",
            "remove.twice",
            "CTRL-OTHER-SRQ",
            "removing a controller twice is EINVAL the second time",
            &bk,
            |d| async move {
                let (pd, staging, attrs, srq) = d.srq()?;
                let c = d.ctrl(pd, &staging, &attrs, &srq)?;
                expect_ok(d.provider.remove_nvme_ctrl(srq.handle, c), "remove")?;
                expect_errno(
                    d.provider.remove_nvme_ctrl(srq.handle, c),
                    Errno::EINVAL,
                    "second remove",
                )
            },
        ),
        Case::new(
            "ctrl",
            "create.unknown-srq",
            "SRQ-UNKNOWN",
            "creating a controller on a handle that names no SRQ is EINVAL",
            &bk,
            |d| async move {
                let (pd, staging, attrs, _srq) = d.srq()?;
                let a = d.backends()?.create(pd, &attrs, &staging, 1, &[])?;
                expect_errno(
                    d.provider.create_nvme_ctrl(SrqHandle(u32::MAX), &a),
                    Errno::EINVAL,
                    "create_nvme_ctrl",
                )
            },
        ),
        Case::new(
            "ctrl",
            "limit.per-srq",
            "CTRL-LIMIT-SRQ",
            "max_srq_backend_ctrls controllers fit on one SRQ; one more is ENOSPC",
            &bk,
            |d| async move {
                let (pd, staging, attrs, srq) = d.srq()?;
                let n = d
                    .caps
                    .max_srq_backend_ctrls
                    .min(d.caps.max_backend_ctrls_total);
                make_ctrls(&d, pd, &staging, &attrs, srq.handle, n)?;
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
        Case::new(
            "ctrl",
            "limit.total",
            "CTRL-LIMIT-TOTAL",
            "max_backend_ctrls_total controllers fit on the device; one more is ENOMEM",
            &bk,
            |d| async move {
                let total = d.caps.max_backend_ctrls_total;
                let per = d.caps.max_srq_backend_ctrls.max(1);
                let mut made = 0;
                let mut last = None;
                while made < total {
                    let (pd, staging, attrs, srq) = d.srq()?;
                    let n = per.min(total - made);
                    make_ctrls(&d, pd, &staging, &attrs, srq.handle, n)?;
                    made += n;
                    last = Some((pd, staging, attrs));
                }
                let (pd, staging, attrs, srq) = d.srq()?;
                let _ = last;
                let a = d.backends()?.create(pd, &attrs, &staging, 1, &[])?;
                expect_errno(
                    d.provider.create_nvme_ctrl(srq.handle, &a),
                    Errno::ENOMEM,
                    "one controller past the device limit",
                )
            },
        ),
    ];
    v.push(attr_case(
        "sq-ring.too-short",
        "an SQ ring shorter than depth × 64 bytes is EINVAL",
        &[],
        |_, a| a.sq_buf.len -= 64,
        Some(Errno::EINVAL),
    ));
    v.push(attr_case(
        "cq-ring.too-short",
        "a CQ ring shorter than depth × 16 bytes is EINVAL",
        &[],
        |_, a| a.cq_buf.len -= 16,
        Some(Errno::EINVAL),
    ));
    v.push(attr_case(
        "sqdb.length",
        "an SQ doorbell of 8 bytes is EINVAL",
        &[],
        |_, a| a.sqdb.len = 8,
        Some(Errno::EINVAL),
    ));
    v.push(attr_case(
        "cqdb.unaligned",
        "a CQ doorbell not 4-byte aligned is EINVAL",
        &[],
        |_, a| a.cqdb.addr += 2,
        Some(Errno::EINVAL),
    ));
    v.push(attr_case(
        "sqdb-ini.at-depth",
        "an initial SQ tail equal to the depth is EINVAL",
        &[],
        |d, a| a.sqdb_ini = depth(d),
        Some(Errno::EINVAL),
    ));
    v.push(attr_case(
        "cqdb-ini.below-depth",
        "an initial CQ head of depth - 1 is accepted",
        &[],
        |d, a| a.cqdb_ini = depth(d) - 1,
        None,
    ));
    v.push(attr_case(
        "timeout.default",
        "a command timeout of 0 (device default) is accepted",
        &[],
        |_, a| a.cmd_timeout_us = 0,
        None,
    ));
    v.push(attr_case(
        "timeout.at-min",
        "a command timeout of min_cmd_timeout is accepted",
        &[Need::TimeoutBounds],
        |d, a| a.cmd_timeout_us = d.caps.min_cmd_timeout_us.max(1),
        None,
    ));
    v.push(attr_case(
        "timeout.at-max",
        "a command timeout of max_cmd_timeout is accepted",
        &[Need::TimeoutBounds],
        |d, a| a.cmd_timeout_us = d.caps.max_cmd_timeout_us,
        None,
    ));
    v.push(attr_case(
        "timeout.above-max",
        "a command timeout of max_cmd_timeout + 1 is EINVAL",
        &[Need::TimeoutBounds],
        |d, a| a.cmd_timeout_us = d.caps.max_cmd_timeout_us + 1,
        Some(Errno::EINVAL),
    ));
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
