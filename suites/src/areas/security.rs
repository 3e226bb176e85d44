//! Area `security`: what one host may reach through the device. A host not in the
//! allow-list gets no controller, and no host attaches queues to another host's
//! controller; a port serves only its own subsystem; a keyed SGL naming memory the host
//! did not open to that connection fails at the host's NIC and never turns into a success;
//! a namespace of another subsystem (another NVMe-oF SRQ) is unreachable; the discovery
//! log shows a host only what it may reach.

use std::time::Duration;

use harness::api::OffloadOps;
use harness::fabric::{wait, Access, AsyncEvent};
use harness::initiator::connect::ConnectOptions;
use harness::initiator::{Command, Controller, DataMode, IoQueue, QueueSpec};
use harness::wire::{
    DiscoveryLogRepr, RwCommand, SglRepr, SqeCommand, Status, ADRFAM_IPV4, CNTLID_DYNAMIC,
    QPTYPE_RC, SUBTYPE_NVME, TRTYPE_RDMA,
};
use reference_target::control::identity::DISCOVERY_NQN;

use crate::framework::session::pattern;
use crate::framework::target::{
    expect_invalid_param, expect_status, host_config, one_subsystem, send_connect, two_subsystems,
    TargetRig, HOSTNQN, HOSTNQN_2, IPO_CNTLID, IPO_SUBNQN, PORT_A, PORT_B, STRANGER, SUB_A, SUB_B,
};
use crate::framework::{blame, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const AREA: &str = "security";
const CP: &[Need] = &[Need::ControlPlane];
const DEPTH: u16 = 8;

/// Which keyed SGL a bad-key case sends.
#[derive(Clone, Copy)]
enum BadKey {
    /// The rkey of a region registered in another protection domain of the host.
    Foreign,
    /// The queue's own region's rkey with an address just past the region.
    PastRegion,
}

/// A controller of `SUB_A` with two I/O queues (QID 1 and 2) on namespace 1.
async fn two_queues(d: &Dut, t: &TargetRig) -> Result<(Controller, IoQueue, IoQueue), Failure> {
    let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
    let lba = d.ns_format().lba_data_size();
    let q1 = c.connect_io_queue(1, DEPTH, 0, 1, lba).await?;
    let q2 = c.connect_io_queue(2, DEPTH, 0, 1, lba).await?;
    Ok((c, q1, q2))
}

/// Sends a one-block read or write on `io` whose keyed SGL names memory the connection
/// may not touch; the host must not get a success, the other queue keeps serving, and a
/// write leaves the backend's blocks as they were.
async fn bad_key(d: Dut, write: bool, how: BadKey) -> Result<(), Failure> {
    let t = d.target_one().await?;
    let (_c, mut io, mut other) = two_queues(&d, &t).await?;
    let lba = d.ns_format().lba_data_size();
    if !write {
        // A read with the queue's own key first: a device that does not serve reads at
        // all is blamed for that (DP-ANSWERED), not for the refusal this case checks.
        let r = io.read(0, 1, DataMode::Keyed).await?;
        check!(
            r.cqe.status.is_success(),
            "a read with a good key: {}",
            r.cqe.status
        );
    }
    let before = t.backend_blocks(SUB_A, 1, 0, 1).await?;
    let access = Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE;
    let sgl = match how {
        BadKey::Foreign => {
            let pd = t.host.alloc_pd()?;
            let mr = t.host.reg_mr(pd, u64::from(lba), access)?;
            SglRepr::keyed(mr.addr, lba, mr.rkey)
        }
        BadKey::PastRegion => {
            let mr = t.host.reg_mr(io.queue().pd(), u64::from(lba), access)?;
            SglRepr::keyed(mr.addr + mr.len, lba, mr.rkey)
        }
    };
    let command = if write {
        SqeCommand::Write(RwCommand::new(0, 1))
    } else {
        SqeCommand::Read(RwCommand::new(0, 1))
    };
    let r = io
        .queue()
        .execute_sgl(&Command::Nvme { nsid: 1, command }, sgl, &[])
        .await;
    if let Ok(resp) = &r {
        check!(
            !resp.cqe.status.is_success(),
            "the host got a success for a {} whose keyed SGL it never opened to this connection",
            if write { "write" } else { "read" }
        );
    }
    // The host's NIC refused the target's RDMA access to the queue's QP.
    let qp = io.queue().qp().id;
    let deadline = tokio::time::Instant::now() + crate::framework::wait(Duration::from_secs(2));
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match wait::async_event(t.host.as_ref(), left).await {
            Ok(AsyncEvent::QpAccessErr(q)) if q == qp => break,
            Ok(_) => {}
            Err(_) => {
                return Err(Failure::new(
                    "no QP access error at the host: the target's RDMA access with a key the connection may not use was not refused",
                ))
            }
        }
    }
    if write {
        check!(
            t.backend_blocks(SUB_A, 1, 0, 1).await? == before,
            "the backend's block changed after a write whose data could not be fetched"
        );
    }
    let data = pattern(lba as usize, 9);
    let w = other.write(5, &data, DataMode::Keyed).await?;
    check!(
        w.cqe.status.is_success(),
        "write on the other queue: {}",
        w.cqe.status
    );
    if d.caps.offload_ops_allowed(OffloadOps::READ) || d.caps.supports_non_offloaded_ops {
        let rd = other.read(5, 1, DataMode::Keyed).await?;
        check!(
            rd.cqe.status.is_success(),
            "read on the other queue: {}",
            rd.cqe.status
        );
        check!(rd.data == data, "data on the other queue");
    }
    Ok(())
}

/// On two subsystems, sends a one-block read or write of nsid 2 (only `SUB_B` has it) on a
/// `SUB_A` queue: Invalid Namespace, and `SUB_B`'s namespace is untouched.
async fn other_subsystem_ns(d: Dut, write: bool) -> Result<(), Failure> {
    let t = d.target(&two_subsystems(d.ns_format())).await?;
    let lba = d.ns_format().lba_data_size();
    let seed = pattern(lba as usize, 11);
    // Data in B's namespace 2, written through B's own port.
    let mut cb = t.controller(PORT_B, host_config(SUB_B)).await?;
    let mut iob = cb.connect_io_queue(1, DEPTH, 0, 2, lba).await?;
    let w = iob.write(0, &seed, DataMode::Keyed).await?;
    check!(
        w.cqe.status.is_success(),
        "write through SUB_B's own port: {}",
        w.cqe.status
    );
    let b_before = t.backend_commands(SUB_B, 2).await?;
    let sw_before = t.software_io_commands(SUB_B).await?;
    let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
    let mut io = c.connect_io_queue(1, DEPTH, 0, 2, lba).await?;
    let r = if write {
        io.write(0, &pattern(lba as usize, 12), DataMode::Keyed)
            .await?
    } else {
        io.read(0, 1, DataMode::Keyed).await?
    };
    expect_status(
        &r.cqe,
        Status::INVALID_NAMESPACE,
        "I/O on SUB_A's queue to SUB_B's nsid 2",
    )?;
    check!(
        r.data.iter().all(|b| *b == 0),
        "SUB_B's data reached SUB_A's host"
    );
    check_eq!(
        t.backend_commands(SUB_B, 2).await?,
        b_before,
        "SUB_B backend commands"
    );
    check_eq!(
        t.software_io_commands(SUB_B).await?,
        sw_before,
        "SUB_B I/O served by software"
    );
    check!(
        t.backend_blocks(SUB_B, 2, 0, 1).await? == seed,
        "SUB_B's namespace 2 changed"
    );
    Ok(())
}

/// Reads the discovery log on [`PORT_A`] as `hostnqn` (two reads: the generation counter
/// must not move while nothing changes); the log.
async fn discovery_log(t: &TargetRig, hostnqn: &str) -> Result<DiscoveryLogRepr, Failure> {
    let mut cfg = host_config(DISCOVERY_NQN);
    cfg.hostnqn = hostnqn.into();
    let mut c = t.controller(PORT_A, cfg).await?;
    let id = c.identify_controller().await?;
    check_eq!(
        id.raw[111],
        2,
        "Identify Controller CNTRLTYPE of the discovery controller"
    );
    let log = c.discovery_log().await?;
    let again = c.discovery_log().await?;
    check_eq!(
        again.header.genctr,
        log.header.genctr,
        "GENCTR of an unchanged configuration"
    );
    check_eq!(
        log.header.numrec,
        log.entries.len() as u64,
        "NUMREC and the entries read"
    );
    check_eq!(log.header.recfmt, 0, "RECFMT");
    Ok(log)
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(AREA, "discovery-log", "SEC-DISCOVERY", "the discovery log page (70h) lists the port's subsystem for a host it allows, every field as a host connects with it, and nothing for a host it does not; GENCTR holds while nothing changes", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let log = discovery_log(&t, HOSTNQN).await?;
            check_eq!(log.entries.len(), 1, "entries for an allowed host");
            let e = &log.entries[0];
            check_eq!(e.subnqn.as_str(), SUB_A, "SUBNQN");
            check_eq!((e.trtype, e.adrfam, e.subtype), (TRTYPE_RDMA, ADRFAM_IPV4, SUBTYPE_NVME), "(TRTYPE, ADRFAM, SUBTYPE)");
            check_eq!(e.traddr, t.ip.to_string(), "TRADDR");
            check_eq!(e.trsvcid, PORT_A.to_string(), "TRSVCID");
            check_eq!(e.cntlid, CNTLID_DYNAMIC, "CNTLID (dynamic controllers)");
            check_eq!(e.asqsz, 32, "ASQSZ");
            check_eq!(e.rdma.as_ref().map(|r| r.qptype), Some(QPTYPE_RC), "RDMA QPTYPE");
            let stranger = discovery_log(&t, STRANGER).await?;
            check!(stranger.entries.is_empty(), "a host the subsystem does not allow sees {} entries", stranger.entries.len());
            check_eq!(stranger.header.genctr, log.header.genctr, "GENCTR seen by another host of the same configuration");
            // What the log lists is what the allowed host connects to.
            let before = t.controllers(SUB_A).await?.len();
            let c = t.controller(PORT_A, host_config(&e.subnqn)).await?;
            let after = t.controllers(SUB_A).await?;
            check_eq!(after.len(), before + 1, "controllers of SUB_A after connecting to the entry");
            check!(after.contains(&c.cntlid()), "the new controller {} is not among SUB_A's {after:?}", c.cntlid());
            Ok(())
        }),
        Case::new(AREA, "discovery-log-any-host", "SEC-DISCOVERY", "on a subsystem that allows any host (allow_any_host), a host in no allow-list finds the subsystem in the discovery log and connects to it", CP, |d: Dut| async move {
            let cfg = one_subsystem(d.ns_format()).replacen("queue_depth = 64\n", "queue_depth = 64\nallow_any_host = true\n", 1);
            check!(cfg.contains("allow_any_host = true"), "the case's configuration does not allow any host");
            let t = d.target(&cfg).await?;
            let log = discovery_log(&t, STRANGER).await?;
            check_eq!(log.entries.len(), 1, "entries for a host in no allow-list, on a subsystem that allows any host");
            check_eq!(log.entries[0].subnqn.as_str(), SUB_A, "SUBNQN");
            let mut host = host_config(SUB_A);
            host.hostnqn = STRANGER.into();
            let c = t.controller(PORT_A, host).await?;
            let ctrls = t.controllers(SUB_A).await?;
            check!(ctrls.contains(&c.cntlid()), "the stranger's controller {} is not among SUB_A's {ctrls:?}", c.cntlid());
            Ok(())
        }),
        Case::new(AREA, "host-not-allowed", "SEC-HOST-ALLOWLIST", "a host not in the subsystem's allow-list is refused (Connect Invalid Host, 1/84h DNR) and gets no controller; an allowed host still connects", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let mut cfg = host_config(SUB_A);
            cfg.hostnqn = STRANGER.into();
            match t.connect(PORT_A, cfg).await {
                Ok(c) => return Err(Failure::new(format!("a host not in the allow-list got controller {}", c.cntlid()))),
                Err(e) => {
                    let Some(s) = e.nvme_status() else {
                        return Err(Failure::from(e).context("expected Connect Invalid Host"));
                    };
                    check!(s.same_code(Status::CONNECT_INVALID_HOST) && s.dnr, "expected Connect Invalid Host (1/84h) with DNR, got {s}");
                }
            }
            check!(t.controllers(SUB_A).await?.is_empty(), "a controller exists for the refused host");
            let _ok = t.controller(PORT_A, host_config(SUB_A)).await?;
            check_eq!(t.controllers(SUB_A).await?.len(), 1, "controllers after the allowed host connected");
            Ok(())
        }),
        Case::new(AREA, "other-hosts-controller", "SEC-CTRL-HOST-BOUND", "an I/O Connect naming the controller of another (allowed) host is refused with 1/82h IPO CNTLID", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let c = t.controller(PORT_A, host_config(SUB_A)).await?;
            let mut other = host_config(SUB_A);
            other.hostnqn = HOSTNQN_2.into();
            let mut q = t.cm_queue(PORT_A, QueueSpec::io(1, DEPTH, 0)).await?;
            let o = ConnectOptions::for_queue(&q, 0, false);
            let cqe = send_connect(&mut q, o, &other.connect_data(c.cntlid())).await?;
            expect_invalid_param(&cqe, IPO_CNTLID, "I/O Connect to another host's controller")
        }),
        Case::new(AREA, "port-serves-its-subsystem", "SEC-PORT-SUBSYSTEM", "an admin Connect on one subsystem's port naming the other subsystem is refused with 1/82h IPO SUBNQN", CP, |d: Dut| async move {
            let t = d.target(&two_subsystems(d.ns_format())).await?;
            match t.connect(PORT_A, host_config(SUB_B)).await {
                Ok(_) => Err(Failure::new("SUB_B was reached through SUB_A's port")),
                Err(harness::initiator::InitiatorError::Nvme { cqe, .. }) => expect_invalid_param(&cqe, IPO_SUBNQN, "Connect to SUB_B on SUB_A's port"),
                Err(e) => Err(Failure::from(e).context("expected Connect Invalid Parameters")),
            }
        }),
        Case::new(AREA, "rkey.foreign-read", "SEC-RKEY", "a read whose keyed SGL names a region of another protection domain fails at the host's NIC: no success reaches the host, the other queue keeps serving", &[Need::ControlPlane, Need::Ops(OffloadOps::READ), Need::ResponderAccessErrors], |d: Dut| bad_key(d, false, BadKey::Foreign)),
        Case::new(AREA, "rkey.past-region-read", "SEC-RKEY", "a read whose keyed SGL points past the end of the host's region fails: no success reaches the host, the other queue keeps serving", &[Need::ControlPlane, Need::Ops(OffloadOps::READ), Need::ResponderAccessErrors], |d: Dut| bad_key(d, false, BadKey::PastRegion)),
        Case::new(AREA, "rkey.foreign-write", "SEC-RKEY", "a write whose keyed SGL names a region of another protection domain is not acknowledged with success and writes nothing to the backend", &[Need::ControlPlane, Need::Ops(OffloadOps::WRITE), Need::ResponderAccessErrors], |d: Dut| bad_key(d, true, BadKey::Foreign)),
        Case::new(AREA, "rkey.past-region-write", "SEC-RKEY", "a write whose keyed SGL points past the end of the host's region is not acknowledged with success and writes nothing to the backend", &[Need::ControlPlane, Need::Ops(OffloadOps::WRITE), Need::ResponderAccessErrors], |d: Dut| bad_key(d, true, BadKey::PastRegion)),
        Case::new(AREA, "other-subsystem-ns.read", "SEC-NS-ISOLATION", "a read on subsystem A's queue of an nsid only subsystem B has is answered Invalid Namespace and never served from B", &[Need::ControlPlane, Need::NonOffloadedOps], |d: Dut| other_subsystem_ns(d, false)),
        Case::new(AREA, "other-subsystem-ns.no-software-path", "SEC-NS-ISOLATION", "without non-offloaded ops, a write on subsystem A's offloaded queue to an nsid only subsystem B has raises UNSUPPORTED_NVMF_OP, gets no success and leaves B's namespace untouched", &[Need::ControlPlane, Need::NoNonOffloadedOps, Need::Ops(OffloadOps::WRITE)], |d: Dut| async move {
            let t = d.target(&two_subsystems(d.ns_format())).await?;
            let lba = d.ns_format().lba_data_size();
            let before = t.backend_blocks(SUB_B, 2, 0, 1).await?;
            let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
            let mut io = c.connect_io_queue(1, DEPTH, 0, 2, lba).await?;
            let w = io.write(0, &pattern(lba as usize, 13), DataMode::Keyed).await;
            check!(!w.is_ok_and(|w| w.cqe.status.is_success()), "a write to SUB_B's nsid 2 succeeded on SUB_A's queue");
            blame::checking("UNSUP-EVENT");
            check!(t.wait_event("UNSUPPORTED_NVMF_OP", crate::framework::wait(Duration::from_secs(5))).await?.is_some(), "no UNSUPPORTED_NVMF_OP event for the write the device could not serve");
            check_eq!(t.backend_commands(SUB_B, 2).await?, 0, "SUB_B backend commands");
            check!(t.backend_blocks(SUB_B, 2, 0, 1).await? == before, "SUB_B's namespace 2 changed");
            Ok(())
        }),
        Case::new(AREA, "other-subsystem-ns.write", "SEC-NS-ISOLATION", "a write on subsystem A's queue of an nsid only subsystem B has is answered Invalid Namespace and leaves B's namespace untouched", &[Need::ControlPlane, Need::NonOffloadedOps], |d: Dut| other_subsystem_ns(d, true)),
    ]
}
