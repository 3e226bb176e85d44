//! Area `mapping`: front-facing nsid → backend namespace mappings: EEXIST across the
//! controllers of one SRQ, ENOENT, ENOTSUP per LBA data size, EINVAL nsids, and limits.

use harness::api::{CtrlHandle, NsMapping};
use nix::errno::Errno;

use crate::framework::case::{backends_case, batches};
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
    backends_case("mapping", id, requirement, description, body)
}

/// A step of a [`script`]. `Srq(n)`: a fresh SRQ with `n` controllers ([`srq_with_ctrls`]).
/// The map and unmap steps: on controller `.0` (the script's controllers counted from 0 in
/// the order they were made), `map_nsid` or `unmap_nsid` of fe_nsid `.1`, which must succeed
/// or fail with the errno given (the last field names the call). `Checking`: the requirement
/// checked from there on.
#[derive(Clone, Copy)]
enum Step {
    Srq(usize),
    Map(usize, u32, &'static str),
    MapErrno(usize, u32, Errno, &'static str),
    Unmap(usize, u32, &'static str),
    UnmapErrno(usize, u32, Errno, &'static str),
    Checking(&'static str),
}
use Step::*;

/// A case of this area that runs `steps` in order.
fn script<S>(id: &str, requirement: &'static str, description: &str, steps: S) -> Case
where
    S: AsRef<[Step]> + Copy + Send + Sync + 'static,
{
    bk_case(id, requirement, description, move |d| async move {
        let lba = d.ns_format().lba_data_size();
        let mut f = Ctrls {
            d: &d,
            c: Vec::new(),
            lba,
        };
        for &step in steps.as_ref() {
            match step {
                Srq(n) => f.c.extend(srq_with_ctrls(&d, n).await?.1),
                Map(i, fe, what) => f.map(i, fe, what)?,
                MapErrno(i, fe, errno, what) => f.map_errno(i, fe, errno, what)?,
                Unmap(i, fe, what) => f.unmap(i, fe, what)?,
                UnmapErrno(i, fe, errno, what) => f.unmap_errno(i, fe, errno, what)?,
                Checking(requirement) => blame::checking(requirement),
            }
        }
        Ok(())
    })
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    let bk = [Need::Backends];
    let mut v = vec![script(
        "map-unmap",
        "MAP-OK",
        "a free fe_nsid maps and unmaps",
        [Srq(1), Map(0, 1, "map_nsid"), Unmap(0, 1, "unmap_nsid")],
    )];
    // An fe_nsid mapped on controller 0 is EEXIST when mapped again: on the same controller,
    // or on another controller of the SRQ (whose controllers share one fe_nsid space).
    for (again_on, fe, description, [first, second]) in [
        (
            0,
            1,
            "mapping an fe_nsid twice on one controller is EEXIST",
            ["first map_nsid", "second map_nsid"],
        ),
        (
            1,
            3,
            "mapping an fe_nsid already mapped on another controller of the same SRQ is EEXIST",
            ["map on controller A", "map on controller B"],
        ),
    ] {
        let (id, requirement) = match again_on {
            0 => ("eexist.same-ctrl", "MAP-EEXIST"),
            _ => ("eexist.other-ctrl-same-srq", "MAP-EEXIST-SHARED-SRQ"),
        };
        let steps = [
            Srq(again_on + 1),
            Map(0, fe, first),
            MapErrno(again_on, fe, Errno::EEXIST, second),
        ];
        v.push(script(id, requirement, description, steps));
    }
    v.push(script(
        "other-srq-independent",
        "MAP-OTHER-SRQ-INDEPENDENT",
        "the same fe_nsid maps on two SRQs",
        [
            Srq(1),
            Srq(1),
            Map(0, 5, "map on SRQ 1"),
            Map(1, 5, "map on SRQ 2"),
        ],
    ));
    // Unmapping an fe_nsid the controller does not have mapped.
    let enoent: [(&str, &str, &'static [Step]); 4] = [
        (
            "never-mapped",
            "unmapping an fe_nsid never mapped is ENOENT",
            &[Srq(1), UnmapErrno(0, 9, Errno::ENOENT, "unmap_nsid")],
        ),
        (
            "already-unmapped",
            "unmapping an fe_nsid a second time is ENOENT",
            &[
                Srq(1),
                Map(0, 2, "map_nsid"),
                Unmap(0, 2, "unmap_nsid"),
                UnmapErrno(0, 2, Errno::ENOENT, "second unmap_nsid"),
            ],
        ),
        (
            "other-ctrl",
            "unmapping through another controller of the SRQ is ENOENT and leaves the mapping",
            &[
                Srq(2),
                Map(0, 2, "map_nsid"),
                UnmapErrno(1, 2, Errno::ENOENT, "unmap via controller B"),
                // The mapping survives: checked through the shared number space's EEXIST.
                Checking("MAP-EEXIST-SHARED-SRQ"),
                MapErrno(1, 2, Errno::EEXIST, "the mapping is still there"),
            ],
        ),
        (
            "other-srq",
            "unmapping an fe_nsid mapped only on another SRQ is ENOENT",
            &[
                Srq(1),
                Srq(1),
                Map(0, 4, "map on SRQ 1"),
                UnmapErrno(1, 4, Errno::ENOENT, "unmap on SRQ 2"),
            ],
        ),
    ];
    for (suffix, description, steps) in enoent {
        v.push(script(
            &format!("enoent.{suffix}"),
            "MAP-ENOENT",
            description,
            steps,
        ));
    }
    v.extend([
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
    ]);
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
            for (made, n) in batches(total, d.caps.max_srq_namespaces) {
                let f = ctrls(&d, 1).await?;
                for fe in 1..=n {
                    f.map(0, fe, &format!("mapping {} of {total}", made + fe))?;
                }
            }
            let f = ctrls(&d, 1).await?;
            f.map_errno(0, 1, Errno::ENOMEM, "one mapping past the device limit")
        },
    ));
    v
}
