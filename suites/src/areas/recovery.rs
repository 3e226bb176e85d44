//! Area `recovery`: the target's control plane reacting to backend faults, as a host sees
//! it (`docs/target.md`, "Offload events"). A PCI error takes the controller's namespaces
//! offline: later I/O is answered Namespace Not Ready by software, never dropped. A command
//! timeout makes the control plane re-create the controller: the stuck command is
//! answered with an error, and I/O works again with the data kept. Faults go in through
//! [`TargetRig::inject`], so in two-host mode they cross the control channel.
//!
//! On a real controller (`nvmf-conform run --backend vfio:PCI`) the target opens it itself
//! (`[subsystem.backend] kind = "vfio"`) and the faults come from the host's fault broker;
//! the control plane's reaction differs as `docs/target.md` says, and each case states
//! both: after a PCI error it resets the controller and brings the namespace back (every
//! read answered meanwhile, the data kept); after a timeout it quarantines the controller
//! until the stalled command is released, then gives the engine a fresh queue pair.

use std::time::Duration;

use harness::api::OffloadOps;
use harness::backend::emulated::{CmdMatch, Fault};
use harness::backend::vfio::broker::RealFault;
use harness::fabric::Access;
use harness::initiator::{Command, Controller, DataMode, IoQueue};
use harness::wire::{RwCommand, SglRepr, SqeCommand, Status};

use crate::framework::session::pattern;
use crate::framework::target::{
    expect_status, host_config, one_subsystem, one_subsystem_on_vfio, TargetRig, BOUND, PORT_A,
    SUB_A,
};
use crate::framework::{blame, wait, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const AREA: &str = "recovery";
const NEEDS: &[Need] = &[
    Need::ControlPlane,
    Need::BackendFaults,
    Need::Ops(OffloadOps::READ.union(OffloadOps::WRITE)),
];
/// Depth of the I/O queue.
const DEPTH: u16 = 8;
/// The subsystem's backend command timeout in these cases (not scaled: it is what the
/// device is told).
const CMD_TIMEOUT_MS: u32 = 1000;
/// The same on a real controller, whose commands cross QEMU's device model (as the
/// soft-RoCE VM's stage v-vfio-recovery).
const REAL_CMD_TIMEOUT_MS: u32 = 2000;

/// One subsystem in the Dut's namespace format (or served from the run's real controller)
/// whose backend commands time out after [`CMD_TIMEOUT_MS`].
fn config(d: &Dut) -> String {
    let (base, timeout) = match &d.real_target {
        Some(real) => (one_subsystem_on_vfio(real.address()), REAL_CMD_TIMEOUT_MS),
        None => (one_subsystem(d.ns_format()), CMD_TIMEOUT_MS),
    };
    base.replace(
        "queue_depth = 64\n",
        &format!("queue_depth = 64\ncmd_timeout_ms = {timeout}\n"),
    )
}

/// Reads block 0 until the control plane logs `back` (within [`BOUND`]): each read is
/// answered Namespace Not Ready (DNR, no data) while the namespace is offline, or with
/// success and `data`; then one more read, which must succeed with `data`.
async fn answered_until(
    t: &TargetRig,
    io: &mut IoQueue,
    back: &str,
    data: &[u8],
) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + wait(BOUND);
    let mut n = 0;
    loop {
        let came_back = t.wait_event(back, Duration::ZERO).await?.is_some();
        n += 1;
        let r = io.read(0, 1, DataMode::Keyed).await?;
        if came_back {
            check!(
                r.cqe.status.is_success(),
                "read {n}, after {back}: {}",
                r.cqe.status
            );
            check!(
                r.data == data,
                "read {n}, after {back}: the block differs from the one written before the fault"
            );
            return Ok(());
        }
        if r.cqe.status.is_success() {
            check!(
                r.data == data,
                "read {n}, before {back}: the block differs from the one written before the fault"
            );
        } else {
            expect_status(
                &r.cqe,
                Status::NAMESPACE_NOT_READY,
                &format!("read {n}, before {back}"),
            )?;
            check!(
                r.data.iter().all(|b| *b == 0),
                "read {n}, before {back}: Namespace Not Ready delivered data"
            );
        }
        check!(
            tokio::time::Instant::now() < deadline,
            "the control plane did not log {back} within {} s",
            wait(BOUND).as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A controller and its I/O queue on namespace 1, block 0 written with `data` (keep the
/// controller: its admin queue holds the I/O queue's controller).
async fn written(t: &TargetRig, lba: u32, data: &[u8]) -> Result<(Controller, IoQueue), Failure> {
    let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
    let mut io = c.connect_io_queue(1, DEPTH, 0, 1, lba).await?;
    let w = io.write(0, data, DataMode::Keyed).await?;
    check!(
        w.cqe.status.is_success(),
        "write before the fault: {}",
        w.cqe.status
    );
    // Read back before the fault: a device that drops commands anyway is blamed for that
    // (DP-ANSWERED), not for the recovery the case is about.
    let r = io.read(0, 1, DataMode::Keyed).await?;
    check!(
        r.cqe.status.is_success(),
        "read before the fault: {}",
        r.cqe.status
    );
    check!(
        r.data == data,
        "the block read before the fault differs from the one written"
    );
    Ok((c, io))
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(AREA, "pci-error.namespace-offline", "RCV-PCI-OFFLINE", "after a backend PCI error the control plane stops offloading to the controller: reads of its namespace are answered Namespace Not Ready (0/82h, DNR) by software, none dropped (a real controller is then reset and brought back: every read is answered Not Ready or with the data written, and after ctrl-recovered with the data)", NEEDS, |d: Dut| async move {
            let t = d.target(&config(&d)).await?;
            let lba = d.ns_format().lba_data_size();
            let data = pattern(lba as usize, 21);
            let (_c, mut io) = written(&t, lba, &data).await?;
            match &d.real_target {
                Some(real) => real.inject(RealFault::PciError).await?,
                None => t.inject(SUB_A, 1, Fault::PciError).await?,
            }
            // The control plane releases the controller on the device's NVME_PCI_ERR.
            let event = blame::under("PCI-EVENT");
            check!(t.wait_event("ctrl-released", wait(BOUND)).await?.is_some(), "the control plane did not release the failed controller within {} s", wait(BOUND).as_secs());
            drop(event);
            if d.real_target.is_some() {
                // A real controller is reset and given back to the engine.
                return answered_until(&t, &mut io, "ctrl-recovered", &data).await;
            }
            let sw_before = t.software_io_commands(SUB_A).await?;
            for n in 1..=2 {
                let r = io.read(0, 1, DataMode::Keyed).await?;
                expect_status(&r.cqe, Status::NAMESPACE_NOT_READY, &format!("read {n} after the PCI error"))?;
                check!(r.data.iter().all(|b| *b == 0), "read {n} after the PCI error delivered data");
            }
            check_eq!(t.software_io_commands(SUB_A).await?, sw_before + 2, "reads software answered after the PCI error");
            Ok(())
        }),
        Case::new(AREA, "timeout.controller-recreated", "RCV-TIMEOUT-RECREATE", "after a backend command timeout the control plane re-creates the controller: the stuck read is answered with an error, and the block reads back as written (on a real controller once the stalled read is released from quarantine)", NEEDS, |d: Dut| async move {
            let t = d.target(&config(&d)).await?;
            let lba = d.ns_format().lba_data_size();
            let data = pattern(lba as usize, 22);
            let (_c, mut io) = written(&t, lba, &data).await?;
            if let Some(real) = &d.real_target {
                // The next read stalls in QEMU's block layer; the engine times it out, the
                // control plane quarantines the controller until the read is released.
                real.inject(RealFault::Stall).await?;
                let event = blame::under("TMO-EVENT");
                let stuck = io.read(0, 1, DataMode::Keyed).await?;
                check!(!stuck.cqe.status.is_success(), "the read whose backend command never completed was answered with success");
                check!(t.wait_event("ctrl-quarantined", wait(BOUND)).await?.is_some(), "the control plane did not quarantine the controller within {} s", wait(BOUND).as_secs());
                drop(event);
                real.inject(RealFault::Resume).await?;
                return answered_until(&t, &mut io, "ctrl-recreated", &data).await;
            }
            t.inject(SUB_A, 1, Fault::Timeout { on: CmdMatch::Nth(1), delay: None }).await?;
            // The stuck read is answered, and the controller re-created, on the device's
            // NVME_TIMEOUT. Its answer is taken once the controller is re-created: a device
            // on its own ticks sends it and raises the event in either order, and the host
            // reading it in between would order the trace by chance.
            let event = blame::under("TMO-EVENT");
            let q = io.queue();
            let mr = q.ctx().reg_mr(q.pd(), u64::from(lba), Access::LOCAL_WRITE | Access::REMOTE_WRITE)?;
            let read = Command::Nvme { nsid: 1, command: SqeCommand::Read(RwCommand::new(0, 1)) };
            let cid = q.submit(&read, SglRepr::keyed(mr.addr, lba, mr.rkey), &[])?;
            check!(t.wait_event("ctrl-recreated", wait(BOUND)).await?.is_some(), "the control plane did not re-create the controller within {} s", wait(BOUND).as_secs());
            let bound = q.command_bound();
            let stuck = q.wait_response(cid, bound).await?;
            q.ctx().dereg_mr(mr.id)?;
            check!(!stuck.cqe.status.is_success(), "the read whose backend command never completed was answered with success");
            drop(event);
            // the new controller serves the namespace, data included
            tokio::time::sleep(Duration::from_millis(20)).await;
            let r = io.read(0, 1, DataMode::Keyed).await?;
            check!(r.cqe.status.is_success(), "read after the re-creation: {}", r.cqe.status);
            check!(r.data == data, "the block read after the re-creation differs from the one written before");
            Ok(())
        }),
    ]
}
