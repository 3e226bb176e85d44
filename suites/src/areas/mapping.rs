//! Area `mapping`: front-facing nsid → backend namespace mappings: EEXIST across the
//! controllers of one SRQ, ENOENT, ENOTSUP per LBA data size, EINVAL nsids, and limits.

use harness::api::{CtrlHandle, NsMapping};
use nix::errno::Errno;

use crate::framework::dut::{expect_errno, expect_ok};
use std::future::Future;
use std::time::Duration;

use harness::api::{OffloadEvent, OffloadOps};
use harness::fabric::{wait, WcStatus};
use harness::initiator::{misbehave, DataMode};
use harness::wire::{RwCommand, SglRepr, SqeCommand, SqeRepr, Status};

use crate::framework::session::{pattern, FE_NSID, SW_WR_BASE};
use crate::framework::{blame, Case, CaseResult, Dut, Failure, Need};
use crate::{check, check_eq};

/// LBA data sizes every device is asked about: accepted when the caps list them,
/// ENOTSUP otherwise (data + metadata bytes per block, e.g. 4160 = 8 × (512 + 8)).
pub const LBA_SIZES: [u32; 12] = [
    512, 520, 528, 576, 1024, 2048, 4096, 4104, 4112, 4160, 4224, 8192,
];

fn m(fe: u32, lba: u32) -> NsMapping {
    NsMapping {
        fe_nsid: fe,
        nvme_nsid: 1,
        lba_data_size: lba,
    }
}

/// One SRQ with `n` controllers.
async fn srq_with_ctrls(
    d: &Dut,
    n: usize,
) -> Result<(harness::api::NvmfSrq, Vec<CtrlHandle>), Failure> {
    let (pd, staging, attrs, srq) = d.srq()?;
    let mut ctrls = Vec::new();
    for _ in 0..n {
        ctrls.push(d.ctrl(pd, &staging, &attrs, &srq)?);
    }
    Ok((srq, ctrls))
}

/// The controllers of one fresh SRQ ([`srq_with_ctrls`]) and the LBA data size of the
/// harness's namespaces, to map fe_nsids (on nvme_nsid 1) through them.
struct Ctrls<'a> {
    d: &'a Dut,
    c: Vec<CtrlHandle>,
    lba: u32,
}

/// [`Ctrls`]: `n` controllers on a fresh SRQ.
async fn ctrls(d: &Dut, n: usize) -> Result<Ctrls<'_>, Failure> {
    let (_, c) = srq_with_ctrls(d, n).await?;
    let lba = d.ns_format().lba_data_size();
    Ok(Ctrls { d, c, lba })
}

impl Ctrls<'_> {
    /// `map_nsid` of `fe` on controller `i`, which must succeed (`what` names it).
    fn map(&self, i: usize, fe: u32, what: &str) -> CaseResult {
        expect_ok(self.d.provider.map_nsid(self.c[i], &m(fe, self.lba)), what)?;
        Ok(())
    }

    /// `map_nsid` of `fe` on controller `i`, which must fail with `errno`.
    fn map_errno(&self, i: usize, fe: u32, errno: Errno, what: &str) -> CaseResult {
        expect_errno(
            self.d.provider.map_nsid(self.c[i], &m(fe, self.lba)),
            errno,
            what,
        )
    }

    /// `unmap_nsid` of `fe` on controller `i`, which must succeed.
    fn unmap(&self, i: usize, fe: u32, what: &str) -> CaseResult {
        expect_ok(self.d.provider.unmap_nsid(self.c[i], fe), what)?;
        Ok(())
    }

    /// `unmap_nsid` of `fe` on controller `i`, which must fail with `errno`.
    fn unmap_errno(&self, i: usize, fe: u32, errno: Errno, what: &str) -> CaseResult {
        expect_errno(self.d.provider.unmap_nsid(self.c[i], fe), errno, what)
    }
}

/// A case of this area that needs backend controllers.
fn bk_case<F, Fut>(id: &str, requirement: &'static str, description: &str, body: F) -> Case
where
    F: Fn(Dut) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CaseResult> + Send + 'static,
{
    Case::new(
        "mapping",
        id,
        requirement,
        description,
        &[Need::Backends],
        body,
    )
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    let bk = [Need::Backends];
    let mut v = vec![
        bk_case(
            "map-unmap",
            "MAP-OK",
            "a free fe_nsid maps and unmaps",
            |d| async move {
                let f = ctrls(&d, 1).await?;
                f.map(0, 1, "map_nsid")?;
                f.unmap(0, 1, "unmap_nsid")
            },
        ),
        bk_case(
            "eexist.same-ctrl",
            "MAP-EEXIST",
            "mapping an fe_nsid twice on one controller is EEXIST",
            |d| async move {
                let f = ctrls(&d, 1).await?;
                f.map(0, 1, "first map_nsid")?;
                f.map_errno(0, 1, Errno::EEXIST, "second map_nsid")
            },
        ),
        bk_case(
            "eexist.other-ctrl-same-srq",
            "MAP-EEXIST-SHARED-SRQ",
            "mapping an fe_nsid already mapped on another controller of the same SRQ is EEXIST",
            |d| async move {
                let f = ctrls(&d, 2).await?;
                f.map(0, 3, "map on controller A")?;
                f.map_errno(1, 3, Errno::EEXIST, "map on controller B")
            },
        ),
        bk_case(
            "other-srq-independent",
            "MAP-OTHER-SRQ-INDEPENDENT",
            "the same fe_nsid maps on two SRQs",
            |d| async move {
                let (a, b) = (ctrls(&d, 1).await?, ctrls(&d, 1).await?);
                a.map(0, 5, "map on SRQ 1")?;
                b.map(0, 5, "map on SRQ 2")
            },
        ),
        bk_case(
            "enoent.never-mapped",
            "MAP-ENOENT",
            "unmapping an fe_nsid never mapped is ENOENT",
            |d| async move {
                ctrls(&d, 1)
                    .await?
                    .unmap_errno(0, 9, Errno::ENOENT, "unmap_nsid")
            },
        ),
        bk_case(
            "enoent.already-unmapped",
            "MAP-ENOENT",
            "unmapping an fe_nsid a second time is ENOENT",
            |d| async move {
                let f = ctrls(&d, 1).await?;
                f.map(0, 2, "map_nsid")?;
                f.unmap(0, 2, "unmap_nsid")?;
                f.unmap_errno(0, 2, Errno::ENOENT, "second unmap_nsid")
            },
        ),
        bk_case(
            "enoent.other-ctrl",
            "MAP-ENOENT",
            "unmapping through another controller of the SRQ is ENOENT and leaves the mapping",
            |d| async move {
                let f = ctrls(&d, 2).await?;
                f.map(0, 2, "map_nsid")?;
                f.unmap_errno(1, 2, Errno::ENOENT, "unmap via controller B")?;
                // The mapping survives: checked through the shared number space's EEXIST.
                blame::checking("MAP-EEXIST-SHARED-SRQ");
                f.map_errno(1, 2, Errno::EEXIST, "the mapping is still there")
            },
        ),
        bk_case(
            "enoent.other-srq",
            "MAP-ENOENT",
            "unmapping an fe_nsid mapped only on another SRQ is ENOENT",
            |d| async move {
                let (a, b) = (ctrls(&d, 1).await?, ctrls(&d, 1).await?);
                a.map(0, 4, "map on SRQ 1")?;
                b.unmap_errno(0, 4, Errno::ENOENT, "unmap on SRQ 2")
            },
        ),
        bk_case(
            "counters.unmapped",
            "MAP-ENOENT",
            "counters of an fe_nsid not mapped on the controller are ENOENT",
            |d| async move {
                let f = ctrls(&d, 1).await?;
                expect_errno(
                    d.provider.ns_counters(f.c[0], 6),
                    Errno::ENOENT,
                    "ns_counters",
                )
            },
        ),
        bk_case(
            "unknown-ctrl",
            "MAP-UNKNOWN-CTRL",
            "map_nsid and unmap_nsid on a handle that names no controller are EINVAL",
            |d| async move {
                let lba = d.ns_format().lba_data_size();
                let bogus = CtrlHandle(u32::MAX);
                expect_errno(
                    d.provider.map_nsid(bogus, &m(1, lba)),
                    Errno::EINVAL,
                    "map_nsid",
                )?;
                expect_errno(d.provider.unmap_nsid(bogus, 1), Errno::EINVAL, "unmap_nsid")
            },
        ),
    ];
    type NsidCase = (
        &'static str,
        &'static str,
        fn(&Dut) -> NsMapping,
        Option<Errno>,
        &'static [Need],
    );
    let nsid_cases: [NsidCase; 6] = [
        (
            "einval.fe-nsid-0",
            "fe_nsid 0 is EINVAL",
            |d| m(0, d.ns_format().lba_data_size()),
            Some(Errno::EINVAL),
            &[],
        ),
        (
            "einval.fe-nsid-broadcast",
            "fe_nsid 0xFFFFFFFF is EINVAL",
            |d| m(u32::MAX, d.ns_format().lba_data_size()),
            Some(Errno::EINVAL),
            &[],
        ),
        (
            "fe-nsid.at-max",
            "fe_nsid = max_frontend_nsid is accepted",
            |d| m(d.caps.max_frontend_nsid, d.ns_format().lba_data_size()),
            None,
            &[Need::FrontendNsidLimit],
        ),
        (
            "einval.fe-nsid-above-max",
            "fe_nsid = max_frontend_nsid + 1 is EINVAL",
            |d| m(d.caps.max_frontend_nsid + 1, d.ns_format().lba_data_size()),
            Some(Errno::EINVAL),
            &[Need::FrontendNsidLimit],
        ),
        (
            "einval.nvme-nsid-0",
            "nvme_nsid 0 is EINVAL",
            |d| NsMapping {
                nvme_nsid: 0,
                ..m(1, d.ns_format().lba_data_size())
            },
            Some(Errno::EINVAL),
            &[],
        ),
        (
            "einval.nvme-nsid-broadcast",
            "nvme_nsid 0xFFFFFFFF is EINVAL",
            |d| NsMapping {
                nvme_nsid: u32::MAX,
                ..m(1, d.ns_format().lba_data_size())
            },
            Some(Errno::EINVAL),
            &[],
        ),
    ];
    for (id, desc, mapping, expect, needs) in nsid_cases {
        let mut needs = needs.to_vec();
        needs.push(Need::Backends);
        v.push(Case::new(
            "mapping",
            id,
            "MAP-EINVAL-NSID",
            desc,
            &needs,
            move |d| async move {
                let (_, c) = srq_with_ctrls(&d, 1).await?;
                let r = d.provider.map_nsid(c[0], &mapping(&d));
                match expect {
                    None => expect_ok(r, "map_nsid"),
                    Some(e) => expect_errno(r, e, "map_nsid"),
                }
            },
        ));
    }
    for size in LBA_SIZES {
        v.push(Case::new(
            "mapping",
            format!("lba-size.{size}"),
            "MAP-LBA-SIZE",
            format!("lba_data_size {size}: accepted when the caps list it, ENOTSUP otherwise"),
            &bk,
            move |d| async move {
                let (_, c) = srq_with_ctrls(&d, 1).await?;
                let r = d.provider.map_nsid(c[0], &m(1, size));
                if d.caps.supports_lba_data_size(size) {
                    expect_ok(r, "map_nsid with a listed size")
                } else {
                    expect_errno(r, Errno::EOPNOTSUPP, "map_nsid with an unlisted size")
                }
            },
        ));
    }
    v.push(Case::new(
        "mapping",
        "unmap-stops-offload",
        "MAP-UNMAP-STOPS-OFFLOAD",
        "I/O to a mapped nsid is offloaded; after unmap_nsid the device no longer serves it: \
         the capsule reaches software byte for byte (or, on a device without non-offloaded \
         ops, raises UNSUPPORTED_NVMF_OP and errors the QP)",
        &[Need::Backends, Need::AnyOps(OffloadOps::READ_WRITE)],
        |d| async move {
            let mut s = d.default_session(4420).await?;
            let bs = d.ns_format().lba_data_size();
            // A read if the device offloads reads, else a write.
            let read = d.caps.offload_ops_allowed(OffloadOps::READ);
            let r = if read {
                s.io.read(0, 1, DataMode::Keyed).await?
            } else {
                s.io.write(0, &pattern(bs as usize, 3), DataMode::Keyed)
                    .await?
            };
            check_eq!(r.cqe.status, Status::SUCCESS, "the command while mapped");
            let k = d.provider.ns_counters(s.ctrl, FE_NSID)?;
            check_eq!(
                (k.read_cmds, k.write_cmds),
                if read { (1, 0) } else { (0, 1) },
                "(reads, writes) the device counted as offloaded while mapped"
            );
            expect_ok(d.provider.unmap_nsid(s.ctrl, FE_NSID), "unmap_nsid")?;
            let keyed = SglRepr::keyed(0x1000, bs, 0x77);
            let rw = RwCommand::new(0, 1);
            let command = if read {
                SqeCommand::Read(rw)
            } else {
                SqeCommand::Write(rw)
            };
            let sqe = SqeRepr::new(9, FE_NSID, command, keyed).to_bytes()?;
            misbehave::send_raw(s.io.queue(), &sqe)?;
            let bound = crate::framework::wait(Duration::from_secs(5));
            if d.caps.supports_non_offloaded_ops {
                let wc = wait::completion(d.ctx.as_ref(), s.cq, bound).await?;
                check_eq!(wc.qp, s.qp, "software receive on the session's QP");
                check_eq!(wc.status, WcStatus::Success, "software receive's status");
                check_eq!(wc.byte_len as usize, sqe.len(), "software receive's length");
                let mut got = vec![0u8; sqe.len()];
                let slot = (wc.wr_id - SW_WR_BASE) * s.sw.slot;
                d.ctx.mr_read(s.sw_buf.id, slot, &mut got)?;
                check!(
                    got == sqe,
                    "the capsule software received differs from the one sent"
                );
            } else {
                blame::checking("UNSUP-EVENT");
                let ev = tokio::time::timeout(bound, d.provider.next_event())
                    .await
                    .map_err(|_| {
                        Failure::new("no UNSUPPORTED_NVMF_OP event for the unmapped nsid")
                    })?;
                check_eq!(
                    ev,
                    OffloadEvent::UnsupportedNvmfOp {
                        qp: s.qp,
                        opcode: sqe[0]
                    },
                    "event for the unmapped nsid"
                );
            }
            Ok(())
        },
    ));
    v.push(Case::new(
        "mapping",
        "limit.per-srq",
        "MAP-LIMIT-SRQ",
        "the SRQ's max_namespaces mappings fit; one more is ENOSPC",
        &bk,
        |d| async move {
            let f = ctrls(&d, 1).await?;
            let n = d.caps.max_srq_namespaces.min(d.caps.max_namespaces);
            for fe in 1..=n {
                f.map(0, fe, &format!("mapping {fe} of {n}"))?;
            }
            let want = if n < d.caps.max_srq_namespaces {
                Errno::ENOMEM
            } else {
                Errno::ENOSPC
            };
            f.map_errno(0, n + 1, want, "one mapping past the limit")
        },
    ));
    v.push(Case::new(
        "mapping",
        "limit.total",
        "MAP-LIMIT-TOTAL",
        "max_namespaces mappings fit on the device; one more is ENOMEM",
        &bk,
        |d| async move {
            let total = d.caps.max_namespaces;
            let per = d.caps.max_srq_namespaces.max(1);
            let mut made = 0;
            while made < total {
                let f = ctrls(&d, 1).await?;
                for fe in 1..=per.min(total - made) {
                    f.map(0, fe, &format!("mapping {} of {total}", made + fe))?;
                }
                made += per.min(total - made);
            }
            let f = ctrls(&d, 1).await?;
            f.map_errno(0, 1, Errno::ENOMEM, "one mapping past the device limit")
        },
    ));
    v
}
