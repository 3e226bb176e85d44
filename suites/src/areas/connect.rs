//! Area `connect`: connecting queues through the reference control plane over the device.
//! Offload starts at an I/O queue's Connect and never before (a capsule before Connect is
//! software's to answer, with Command Sequence Error, and reaches no backend); the admin
//! queue is never offloaded; every Fabrics Connect and RDMA CM check of
//! `docs/target.md` answers with its exact status (and IPO/IATTR); Keep Alive expiry tears
//! the controller down.

use std::time::Duration;

use harness::api::OffloadOps;
use harness::initiator::connect::{fabrics_connect, ConnectOptions};
use harness::initiator::{misbehave, Command, DataMode, HostQueue, IoQueue, QueueSpec, Transfer};
use harness::wire::{
    CmRejectStatus, ConnectDataRepr, CqeRepr, RwCommand, SglRepr, SqeCommand, Status,
    CNTLID_DYNAMIC,
};

use reference_target::control::identity::MAX_IO_QUEUES;

use crate::framework::session::pattern;
use crate::framework::target::{
    expect_invalid_param, expect_status, host_config, mqes, one_subsystem, send_connect, TargetRig,
    BOUND, IPO_CNTLID, IPO_QID, IPO_SQSIZE, IPO_SUBNQN, PORT_A, STRANGER, SUB_A,
};
use crate::framework::{blame, wait, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const AREA: &str = "connect";
const CP: &[Need] = &[Need::ControlPlane];
const CP_WRITE: &[Need] = &[Need::ControlPlane, Need::Ops(OffloadOps::WRITE)];
/// Depth of the I/O queues these cases connect (within every profile's MQES).
const IO_DEPTH: u16 = 8;

fn io_spec(qid: u16) -> QueueSpec {
    QueueSpec::io(qid, IO_DEPTH, 0)
}

/// An admin queue connected through the CM only, and the usual Connect options for it.
async fn admin_queue(t: &TargetRig) -> Result<(HostQueue, ConnectOptions), Failure> {
    let q = t.cm_queue(PORT_A, QueueSpec::admin()).await?;
    let o = ConnectOptions::for_queue(&q, 5000, false);
    Ok((q, o))
}

/// Sends an admin Connect with `opts` changed by `edit` and the Connect data changed by
/// `data`; returns the CQE.
async fn admin_connect(
    d: &Dut,
    edit: impl FnOnce(&mut ConnectOptions),
    data: impl FnOnce(&mut ConnectDataRepr),
) -> Result<CqeRepr, Failure> {
    let t = d.target_one().await?;
    let (mut q, mut o) = admin_queue(&t).await?;
    edit(&mut o);
    let mut cd = host_config(SUB_A).connect_data(CNTLID_DYNAMIC);
    data(&mut cd);
    send_connect(&mut q, o, &cd).await
}

/// Sends an I/O Connect for `qid` on a CM-connected queue of a new controller, enabled
/// (with 2 I/O queues granted) when `enable`: the usual options changed by `edit` (which
/// gets CAP.MQES, 0 when not enabled) and the controller's Connect data changed by
/// `data`. Returns the CQE.
async fn io_connect(
    d: &Dut,
    enable: bool,
    qid: u16,
    edit: impl FnOnce(&mut ConnectOptions, u16),
    data: impl FnOnce(&mut ConnectDataRepr),
) -> Result<CqeRepr, Failure> {
    let t = d.target_one().await?;
    let cfg = host_config(SUB_A);
    let mut c = if enable {
        t.controller(PORT_A, cfg.clone()).await?
    } else {
        t.connect(PORT_A, cfg.clone())
            .await
            .map_err(|e| Failure::from(e).context("admin connect"))?
    };
    let mqes = if enable { mqes(&mut c).await? } else { 0 };
    if enable {
        c.set_number_of_queues(2)
            .await
            .map_err(|e| Failure::from(e).context("Set Features Number of Queues"))?;
    }
    let mut q = t.cm_queue(PORT_A, io_spec(qid)).await?;
    let mut o = ConnectOptions::for_queue(&q, 0, false);
    edit(&mut o, mqes);
    let mut cd = cfg.connect_data(c.cntlid());
    data(&mut cd);
    send_connect(&mut q, o, &cd).await
}

/// Expects a CM reject with `want` for private data `bytes` on a queue of `spec`.
async fn cm_rejects(
    d: &Dut,
    spec: QueueSpec,
    bytes: Vec<u8>,
    want: CmRejectStatus,
) -> Result<(), Failure> {
    let t = d.target_one().await?;
    let got = t.cm_reject(PORT_A, spec, bytes).await?;
    check_eq!(got, Some(want), "NVMe-oF CM reject status");
    Ok(())
}

/// Checks that nothing of `SUB_A` namespace 1 was offloaded, reached the backend or was
/// served by software's I/O path.
async fn nothing_served(t: &TargetRig, what: &str) -> Result<(), Failure> {
    let k = t.ns_counters(SUB_A, 1).await?;
    check_eq!(
        k.read_cmds + k.write_cmds + k.flush_cmds + k.write_inline_cmds,
        0,
        "{what}: commands the device counted as offloaded"
    );
    check_eq!(
        t.backend_commands(SUB_A, 1).await?,
        0,
        "{what}: commands that reached the backend"
    );
    check_eq!(
        t.software_io_commands(SUB_A).await?,
        0,
        "{what}: I/O commands software served"
    );
    Ok(())
}

/// The controller IDs of [`cntlid_range`]'s subsystem: three, at the top of the range a
/// controller ID may take (FFEFh is the highest).
const CNTLIDS: [u16; 3] = [0xFFED, 0xFFEE, 0xFFEF];

/// [`SUB_A`] with namespace 1, handing out only the controller IDs of [`CNTLIDS`].
fn cntlid_range(d: &Dut) -> String {
    one_subsystem(d.ns_format()).replacen(
        "queue_depth = 64\n",
        &format!(
            "queue_depth = 64\ncntlid_min = {}\ncntlid_max = {}\n",
            CNTLIDS[0], CNTLIDS[2]
        ),
        1,
    )
}

/// Waits (bounded) until the target's controllers of [`SUB_A`] are `want`.
async fn controllers_become(t: &TargetRig, want: &[u16], what: &str) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + wait(BOUND);
    loop {
        let got = t.controllers(SUB_A).await?;
        if got == want {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            check_eq!(got, want.to_vec(), "{what}: the target's controllers");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    vec![
        // Offload starts at Connect.
        Case::new(AREA, "io-before-connect", "CONN-BEFORE-CONNECT", "a write on an I/O queue that has not sent Connect is answered by software with Command Sequence Error; nothing is offloaded or reaches the backend", CP_WRITE, |d: Dut| async move {
            let t = d.target_one().await?;
            let _c = t.controller(PORT_A, host_config(SUB_A)).await?;
            let q = t.cm_queue(PORT_A, io_spec(1)).await?;
            let lba = d.ns_format().lba_data_size();
            let mut io = IoQueue::new(q, 1, lba);
            blame::checking("CONN-BEFORE-CONNECT");
            let w = io.write(0, &pattern(lba as usize, 1), DataMode::Keyed).await
                .map_err(|e| Failure::from(e).context("the write before Connect got no answer"))?;
            expect_status(&w.cqe, Status::COMMAND_SEQUENCE_ERROR, "write before Connect")?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            nothing_served(&t, "before Connect").await
        }),
        Case::new(AREA, "admin-before-connect", "CONN-BEFORE-CONNECT", "an admin command (Identify) on an admin queue that has not sent Connect is answered with Command Sequence Error", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let mut q = t.cm_queue(PORT_A, QueueSpec::admin()).await?;
            let sqe = misbehave::opcode_sqe(9, 0, 0x06)?;
            blame::checking("CONN-BEFORE-CONNECT");
            misbehave::send_raw(&mut q, &sqe)?;
            let r = q.wait_response(9, wait(BOUND)).await?;
            expect_status(&r.cqe, Status::COMMAND_SEQUENCE_ERROR, "Identify before Connect")?;
            check!(t.controllers(SUB_A).await?.is_empty(), "a controller exists without a Connect");
            Ok(())
        }),
        Case::new(AREA, "offload-from-connect", "CONN-OFFLOAD-AFTER-CONNECT", "on one I/O queue, a write before its Connect is refused and not offloaded; after the Connect writes (and reads, if offloaded) are served by the device", CP_WRITE, |d: Dut| async move {
            let t = d.target_one().await?;
            let cfg = host_config(SUB_A);
            let c = t.controller(PORT_A, cfg.clone()).await?;
            let mut q = t.cm_queue(PORT_A, io_spec(1)).await?;
            let lba = d.ns_format().lba_data_size();
            let data = pattern(lba as usize, 2);
            let before = blame::under("CONN-BEFORE-CONNECT");
            let cid = q.submit(&Command::Nvme { nsid: 1, command: SqeCommand::Flush }, SglRepr::keyed(0, 0, 0), &[])?;
            let r = q.wait_response(cid, wait(BOUND)).await?;
            expect_status(&r.cqe, Status::COMMAND_SEQUENCE_ERROR, "flush before Connect")?;
            nothing_served(&t, "before Connect").await?;
            drop(before);
            let o = ConnectOptions::for_queue(&q, 0, false);
            fabrics_connect(&mut q, &cfg.connect_data(c.cntlid()), &o).await
                .map_err(|e| Failure::from(e).context("I/O Connect"))?;
            let mut io = IoQueue::new(q, 1, lba);
            let w = io.write(3, &data, DataMode::Keyed).await?;
            check!(w.cqe.status.is_success(), "write after Connect: {}", w.cqe.status);
            let k = t.ns_counters(SUB_A, 1).await?;
            check_eq!(k.write_cmds, 1, "writes the device counted as offloaded after Connect");
            if d.caps.offload_ops_allowed(OffloadOps::READ) {
                let r = io.read(3, 1, DataMode::Keyed).await?;
                check!(r.cqe.status.is_success(), "read after Connect: {}", r.cqe.status);
                check!(r.data == data, "data read back differs from data written");
                check_eq!(t.ns_counters(SUB_A, 1).await?.read_cmds, 1, "reads the device counted as offloaded after Connect");
            }
            check_eq!(t.software_io_commands(SUB_A).await?, 0, "I/O commands software served after Connect");
            Ok(())
        }),
        Case::new(AREA, "admin-not-offloaded", "CONN-ADMIN-NOT-OFFLOADED", "NVM read and write capsules with valid keyed SGLs on a connected admin queue are not served by the device: software reads them as admin commands (02h Get Log Page of log 00h: Invalid Field; 01h Create I/O SQ, not a Fabrics command: Invalid Opcode)", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
            let lba = d.ns_format().lba_data_size();
            let data = pattern(lba as usize, 3);
            let read = Command::Nvme { nsid: 1, command: SqeCommand::Read(RwCommand::new(0, 1)) };
            let r = c.admin().execute(&read, Transfer::FromTarget(lba), DataMode::Keyed).await?;
            // On an admin queue 02h is Get Log Page; SLBA 0 makes it log 00h, which is reserved.
            expect_status(&r.cqe, Status::INVALID_FIELD, "NVM read on the admin queue")?;
            let write = Command::Nvme { nsid: 1, command: SqeCommand::Write(RwCommand::new(0, 1)) };
            let w = c.admin().execute(&write, Transfer::ToTarget(&data), DataMode::Keyed).await?;
            expect_status(&w.cqe, Status::INVALID_OPCODE, "NVM write on the admin queue")?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            nothing_served(&t, "admin queue").await
        }),
        // Fabrics Connect, admin queue.
        Case::new(AREA, "recfmt", "CONN-RECFMT", "a Connect with RECFMT 1 is answered Incompatible Format (1/80h, DNR)", CP, |d: Dut| async move {
            let c = admin_connect(&d, |o| o.recfmt = 1, |_| {}).await?;
            expect_status(&c, Status::CONNECT_INCOMPATIBLE_FORMAT, "Connect RECFMT 1")
        }),
        Case::new(AREA, "admin-cntlid", "CONN-ADMIN-CNTLID", "an admin Connect with CNTLID other than FFFFh is answered 1/82h with IPO of CNTLID in the data (IATTR 1)", CP, |d: Dut| async move {
            let c = admin_connect(&d, |_| {}, |cd| cd.cntlid = 5).await?;
            expect_invalid_param(&c, IPO_CNTLID, "admin Connect CNTLID 5")
        }),
        Case::new(AREA, "unknown-subnqn", "CONN-SUBNQN", "an admin Connect naming an unknown subsystem is answered 1/82h with IPO of SUBNQN (IATTR 1)", CP, |d: Dut| async move {
            let c = admin_connect(&d, |_| {}, |cd| cd.subnqn = "nqn.2026-11.io.nvmf-conform:nobody".into()).await?;
            expect_invalid_param(&c, IPO_SUBNQN, "admin Connect to an unknown subsystem")
        }),
        Case::new(AREA, "host-not-allowed", "CONN-HOST", "an admin Connect from a host not in the subsystem's allow-list is answered Connect Invalid Host (1/84h, DNR)", CP, |d: Dut| async move {
            let c = admin_connect(&d, |_| {}, |cd| cd.hostnqn = STRANGER.into()).await?;
            expect_status(&c, Status::CONNECT_INVALID_HOST, "admin Connect from a host not allowed")
        }),
        Case::new(AREA, "admin-sqsize-zero", "CONN-SQSIZE", "an admin Connect with SQSIZE 0 is answered 1/82h with IPO of SQSIZE", CP, |d: Dut| async move {
            let c = admin_connect(&d, |o| o.sqsize = 0, |_| {}).await?;
            expect_invalid_param(&c, IPO_SQSIZE, "admin Connect SQSIZE 0")
        }),
        Case::new(AREA, "admin-sqsize-above-32", "CONN-SQSIZE", "an admin Connect with SQSIZE 32 (33 entries, one above the admin queue's 32) is answered 1/82h with IPO of SQSIZE", CP, |d: Dut| async move {
            let c = admin_connect(&d, |o| o.sqsize = 32, |_| {}).await?;
            expect_invalid_param(&c, IPO_SQSIZE, "admin Connect SQSIZE 32")
        }),
        Case::new(AREA, "admin-twice", "CONN-TWICE", "a second Connect on an admin queue that is already connected is answered Command Sequence Error", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let cfg = host_config(SUB_A);
            let mut c = t.connect(PORT_A, cfg.clone()).await.map_err(|e| Failure::from(e).context("admin connect"))?;
            let o = ConnectOptions::for_queue(c.admin(), 5000, false);
            let again = send_connect(c.admin(), o, &cfg.connect_data(CNTLID_DYNAMIC)).await?;
            expect_status(&again, Status::COMMAND_SEQUENCE_ERROR, "second admin Connect")?;
            check_eq!(t.controllers(SUB_A).await?.len(), 1, "controllers after the second Connect");
            Ok(())
        }),
        // Fabrics Connect, I/O queues.
        Case::new(AREA, "io-sqsize-zero", "CONN-SQSIZE", "an I/O Connect with SQSIZE 0 is answered 1/82h with IPO of SQSIZE", CP, |d: Dut| async move {
            let c = io_connect(&d, true, 1, |o, _| o.sqsize = 0, |_| {}).await?;
            expect_invalid_param(&c, IPO_SQSIZE, "I/O Connect SQSIZE 0")
        }),
        Case::new(AREA, "io-sqsize-above-mqes", "CONN-SQSIZE", "an I/O Connect with SQSIZE above CAP.MQES is answered 1/82h with IPO of SQSIZE", CP, |d: Dut| async move {
            let c = io_connect(&d, true, 1, |o, mqes| o.sqsize = mqes.saturating_add(1), |_| {}).await?;
            expect_invalid_param(&c, IPO_SQSIZE, "I/O Connect SQSIZE MQES + 1")
        }),
        Case::new(AREA, "io-unknown-cntlid", "CONN-IO-CNTLID", "an I/O Connect naming a controller that does not exist is answered 1/82h with IPO of CNTLID (IATTR 1)", CP, |d: Dut| async move {
            let c = io_connect(&d, true, 1, |_, _| {}, |cd| cd.cntlid = cd.cntlid.wrapping_add(100)).await?;
            expect_invalid_param(&c, IPO_CNTLID, "I/O Connect to an unknown controller")
        }),
        Case::new(AREA, "io-qid-above-granted", "CONN-IO-QID", "an I/O Connect for a QID above the queues Set Features granted is answered 1/82h with IPO of QID", CP, |d: Dut| async move {
            let c = io_connect(&d, true, 3, |_, _| {}, |_| {}).await?;
            expect_invalid_param(&c, IPO_QID, "I/O Connect QID 3 with 2 queues granted")
        }),
        Case::new(AREA, "io-qid-differs-from-cm", "CONN-IO-QID", "an I/O Connect whose QID differs from the QID of its CM request is answered 1/82h with IPO of QID", CP, |d: Dut| async move {
            let c = io_connect(&d, true, 1, |o, _| o.qid = 2, |_| {}).await?;
            expect_invalid_param(&c, IPO_QID, "I/O Connect QID 2 on a CM QID 1 queue")
        }),
        Case::new(AREA, "io-unknown-subnqn", "CONN-SUBNQN", "an I/O Connect naming an unknown subsystem is answered 1/82h with IPO of SUBNQN (IATTR 1)", CP, |d: Dut| async move {
            let c = io_connect(&d, true, 1, |_, _| {}, |cd| cd.subnqn = "nqn.2026-11.io.nvmf-conform:nobody".into()).await?;
            expect_invalid_param(&c, IPO_SUBNQN, "I/O Connect to an unknown subsystem")
        }),
        Case::new(AREA, "io-before-enable", "CONN-IO-NOT-ENABLED", "an I/O Connect before the host enabled the controller (CSTS.RDY 0) is answered Command Sequence Error", CP, |d: Dut| async move {
            let c = io_connect(&d, false, 1, |_, _| {}, |_| {}).await?;
            expect_status(&c, Status::COMMAND_SEQUENCE_ERROR, "I/O Connect before CC.EN")
        }),
        Case::new(AREA, "io-qid-twice", "CONN-TWICE", "a second I/O Connect for a QID already connected (on another queue pair) is answered Command Sequence Error; the first queue keeps serving", CP_WRITE, |d: Dut| async move {
            let t = d.target_one().await?;
            let cfg = host_config(SUB_A);
            let mut c = t.controller(PORT_A, cfg.clone()).await?;
            let lba = d.ns_format().lba_data_size();
            let mut io = c.connect_io_queue(1, IO_DEPTH, 0, 1, lba).await?;
            let mut q = t.cm_queue(PORT_A, io_spec(1)).await?;
            let o = ConnectOptions::for_queue(&q, 0, false);
            let again = send_connect(&mut q, o, &cfg.connect_data(c.cntlid())).await?;
            expect_status(&again, Status::COMMAND_SEQUENCE_ERROR, "second I/O Connect for QID 1")?;
            let w = io.write(0, &pattern(lba as usize, 4), DataMode::Keyed).await?;
            check!(w.cqe.status.is_success(), "write on the first QID 1 queue: {}", w.cqe.status);
            Ok(())
        }),
        Case::new(AREA, "io-twice", "CONN-TWICE", "a second Connect on an I/O queue that is already connected (offloaded: the device hands the Fabrics capsule to software) is answered Command Sequence Error", &[Need::ControlPlane, Need::NonOffloadedOps], |d: Dut| async move {
            let t = d.target_one().await?;
            let cfg = host_config(SUB_A);
            let mut c = t.controller(PORT_A, cfg.clone()).await?;
            let mut io = c.connect_io_queue(1, IO_DEPTH, 0, 1, d.ns_format().lba_data_size()).await?;
            let o = ConnectOptions::for_queue(io.queue(), 0, false);
            let again = send_connect(io.queue(), o, &cfg.connect_data(c.cntlid())).await?;
            expect_status(&again, Status::COMMAND_SEQUENCE_ERROR, "second Connect on I/O queue 1")
        }),
        Case::new(AREA, "success-cntlid", "CONN-SUCCESS", "a good admin Connect returns a controller ID other than FFFFh in DW0, and a good I/O Connect of that controller returns the same ID", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let cfg = host_config(SUB_A);
            let mut c = t.controller(PORT_A, cfg.clone()).await?;
            let cntlid = c.cntlid();
            check!(cntlid != CNTLID_DYNAMIC && cntlid < 0xFFF0, "admin Connect returned CNTLID {cntlid:#06x}");
            check_eq!(t.controllers(SUB_A).await?, vec![cntlid], "the target's controllers");
            let _ = c.set_number_of_queues(1).await.map_err(|e| Failure::from(e).context("Set Features Number of Queues"))?;
            let mut q = t.cm_queue(PORT_A, io_spec(1)).await?;
            let o = ConnectOptions::for_queue(&q, 0, false);
            let ok = send_connect(&mut q, o, &cfg.connect_data(cntlid)).await?;
            check!(ok.status.is_success(), "I/O Connect: {}", ok.status);
            check_eq!(ok.dw0() as u16, cntlid, "CNTLID in the I/O Connect response");
            Ok(())
        }),
        Case::new(AREA, "cntlid-range", "CONN-CNTLID", "a subsystem configured with controller IDs FFEDh..=FFEFh hands them out in turn (a freed ID is not reused at once; after FFEFh comes FFEDh), each reported in Identify Controller; with all three in use an admin Connect is Controller Busy (1/81h, DNR) and makes no controller", CP, |d: Dut| async move {
            let t = d.target(&cntlid_range(&d)).await?;
            let cfg = host_config(SUB_A);
            let first = t.controller(PORT_A, cfg.clone()).await?;
            check_eq!(first.cntlid(), CNTLIDS[0], "controller ID of the first admin Connect");
            // The host finishes its side once the target has torn the controller down: one
            // order of the two sides' work in the trace, whatever their timing.
            first.disconnect_when(controllers_become(&t, &[], "after the first controller disconnected")).await.map_err(|e| Failure::from(e).context("disconnect of the first controller"))??;
            let mut held = Vec::new();
            for (i, want) in [CNTLIDS[1], CNTLIDS[2], CNTLIDS[0]].into_iter().enumerate() {
                let mut c = t.controller(PORT_A, cfg.clone()).await?;
                check_eq!(c.cntlid(), want, "controller ID of admin Connect {} (the last handed out: {:#06x})", i + 2, CNTLIDS[i]);
                check_eq!(c.identify_controller().await?.cntlid, want, "CNTLID in Identify Controller");
                held.push(c);
            }
            controllers_become(&t, &CNTLIDS, "with every ID of the range in use").await?;
            let (mut q, o) = admin_queue(&t).await?;
            let busy = send_connect(&mut q, o, &cfg.connect_data(CNTLID_DYNAMIC)).await?;
            expect_status(&busy, Status::CONNECT_CONTROLLER_BUSY, "admin Connect with every controller ID in use")?;
            check_eq!(busy.dw0(), 0, "DW0 of the refused Connect");
            check_eq!(t.controllers(SUB_A).await?, CNTLIDS.to_vec(), "the target's controllers after the refused Connect");
            // Free FFEEh: the next Connect, after FFEDh (in use), wraps past FFEFh (in use) to it.
            let middle = held.remove(0);
            middle.disconnect_when(controllers_become(&t, &[CNTLIDS[0], CNTLIDS[2]], "after controller FFEEh disconnected")).await.map_err(|e| Failure::from(e).context("disconnect of controller FFEEh"))??;
            let mut again = t.controller(PORT_A, cfg.clone()).await?;
            check_eq!(again.cntlid(), CNTLIDS[1], "controller ID of the admin Connect after FFEEh was freed");
            check_eq!(again.identify_controller().await?.cntlid, CNTLIDS[1], "CNTLID in Identify Controller of the new FFEEh");
            for c in held {
                check!(c.cntlid() != again.cntlid(), "two controllers with ID {:#06x}", c.cntlid());
            }
            Ok(())
        }),
        Case::new(AREA, "io-qid-at-max", "CONN-IO-QID", "with 64 I/O queues granted (the target's most), the I/O queue of QID 64 connects and gets its controller's ID; a CM request for QID 65 is rejected with status 03h (invalid QID)", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
            let granted = c.set_number_of_queues(MAX_IO_QUEUES).await.map_err(|e| Failure::from(e).context("Set Features Number of Queues"))?;
            check_eq!(granted, (u32::from(MAX_IO_QUEUES), u32::from(MAX_IO_QUEUES)), "I/O queues granted (NSQA, NCQA)");
            let mut q = t.cm_queue(PORT_A, io_spec(MAX_IO_QUEUES)).await?;
            let o = ConnectOptions::for_queue(&q, 0, false);
            let r = fabrics_connect(&mut q, &host_config(SUB_A).connect_data(c.cntlid()), &o).await
                .map_err(|e| Failure::from(e).context("I/O Connect of QID 64"))?;
            check_eq!(r.cntlid, c.cntlid(), "controller ID of the I/O Connect of QID 64");
            let got = t.cm_reject(PORT_A, io_spec(MAX_IO_QUEUES + 1), misbehave::cm_request_bytes(0, MAX_IO_QUEUES + 1, 8, 7)).await?;
            check_eq!(got, Some(CmRejectStatus::InvalidQid), "NVMe-oF CM reject status of QID 65");
            Ok(())
        }),
        Case::new(AREA, "hostnqn-223-bytes", "CONN-HOST", "a host NQN of 223 bytes, the longest an NQN may be, is read whole: a host of that name the subsystem does not allow is refused with Connect Invalid Host (1/84h, DNR), not as a malformed host NQN", CP, |d: Dut| async move {
            let prefix = "nqn.2014-08.org.nvmexpress:uuid:";
            let long = format!("{prefix}{}", "a".repeat(223 - prefix.len()));
            check_eq!(long.len(), 223, "length of the host NQN sent");
            let c = admin_connect(&d, |_| {}, |cd| cd.hostnqn = long.clone()).await?;
            expect_status(&c, Status::CONNECT_INVALID_HOST, "admin Connect from a 223-byte host NQN the subsystem does not allow")
        }),
        Case::new(AREA, "connect-data-in-capsule", "CONN-DATA-IN-CAPSULE", "an admin Connect whose Connect data is in the capsule (SGL 01h) is served like one with a keyed SGL, and the controller it makes can be enabled and answers; in-capsule Connect data of 512 bytes is Data SGL Length Invalid (0/0Fh, DNR)", &[Need::ControlPlane, Need::InCapsuleConnectData], |d: Dut| async move {
            let t = d.target_one().await?;
            let (mut q, mut o) = admin_queue(&t).await?;
            o.data_in_capsule = true;
            let data = host_config(SUB_A).connect_data(CNTLID_DYNAMIC).to_bytes()?;
            let r = q.execute_sgl(&Command::Fabrics(o.command()), SglRepr::in_capsule(0, 512), &data[..512]).await?;
            expect_status(&r.cqe, Status::DATA_SGL_LENGTH_INVALID, "admin Connect with 512 bytes of Connect data in the capsule")?;
            check!(t.controllers(SUB_A).await?.is_empty(), "a controller exists after the refused Connect");
            let mut cfg = host_config(SUB_A);
            cfg.connect_data_in_capsule = true;
            let mut c = t.controller(PORT_A, cfg).await?;
            check!(c.cntlid() != CNTLID_DYNAMIC, "the in-capsule Connect returned controller ID FFFFh");
            check_eq!(t.controllers(SUB_A).await?, vec![c.cntlid()], "controllers after the in-capsule Connect");
            let id = c.identify_controller().await?;
            check_eq!(id.cntlid, c.cntlid(), "CNTLID in Identify Controller");
            Ok(())
        }),
        // The RDMA CM request.
        Case::new(AREA, "cm.short-private-data", "CONN-CM-REQUEST", "a CM request with 16 bytes of private data is rejected with status 01h (invalid length)", &[Need::ControlPlane, Need::ShortCmPrivateData], |d: Dut| async move {
            cm_rejects(&d, QueueSpec::admin(), vec![0u8; 16], CmRejectStatus::InvalidLength).await
        }),
        Case::new(AREA, "cm.recfmt", "CONN-CM-REQUEST", "a CM request with RECFMT 1 is rejected with status 02h (invalid RECFMT)", CP, |d: Dut| async move {
            cm_rejects(&d, QueueSpec::admin(), misbehave::cm_request_bytes(1, 0, 32, 31), CmRejectStatus::InvalidRecfmt).await
        }),
        Case::new(AREA, "cm.qid", "CONN-CM-REQUEST", "a CM request for QID 1000 is rejected with status 03h (invalid QID)", CP, |d: Dut| async move {
            cm_rejects(&d, io_spec(1), misbehave::cm_request_bytes(0, 1000, 8, 7), CmRejectStatus::InvalidQid).await
        }),
        Case::new(AREA, "cm.hsqsize-zero", "CONN-CM-REQUEST", "a CM request with HSQSIZE 0 is rejected with status 04h (invalid HSQSIZE)", CP, |d: Dut| async move {
            cm_rejects(&d, QueueSpec::admin(), misbehave::cm_request_bytes(0, 0, 32, 0), CmRejectStatus::InvalidHsqsize).await
        }),
        Case::new(AREA, "cm.admin-hsqsize-above-32", "CONN-CM-REQUEST", "an admin CM request with HSQSIZE 32 (33 entries, above the admin queue's 32) is rejected with status 04h", CP, |d: Dut| async move {
            cm_rejects(&d, QueueSpec::admin(), misbehave::cm_request_bytes(0, 0, 32, 32), CmRejectStatus::InvalidHsqsize).await
        }),
        Case::new(AREA, "cm.io-hsqsize-above-mqes", "CONN-CM-REQUEST", "an I/O CM request with HSQSIZE above CAP.MQES is rejected with status 04h", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
            let mqes = mqes(&mut c).await?;
            let got = t.cm_reject(PORT_A, io_spec(1), misbehave::cm_request_bytes(0, 1, 8, mqes.saturating_add(1))).await?;
            check_eq!(got, Some(CmRejectStatus::InvalidHsqsize), "NVMe-oF CM reject status");
            Ok(())
        }),
        Case::new(AREA, "cm.hrqsize-zero", "CONN-CM-REQUEST", "a CM request with HRQSIZE 0 is rejected with status 05h (invalid HRQSIZE)", CP, |d: Dut| async move {
            cm_rejects(&d, QueueSpec::admin(), misbehave::cm_request_bytes(0, 0, 0, 31), CmRejectStatus::InvalidHrqsize).await
        }),
        // Keep Alive.
        Case::new(AREA, "kato-expiry", "CONN-KATO", "a controller that gets no Keep Alive within KATO is torn down (not before): its admin and I/O queues stop serving and it is forgotten", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let mut cfg = host_config(SUB_A);
            cfg.kato_ms = 2000;
            let mut c = t.controller(PORT_A, cfg).await?;
            let lba = d.ns_format().lba_data_size();
            let mut io = c.connect_io_queue(1, IO_DEPTH, 0, 1, lba).await?;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            check_eq!(t.controllers(SUB_A).await?.len(), 1, "controllers halfway through KATO");
            check!(t.wait_event("kato-expired", wait(BOUND)).await?.is_some(), "no KATO expiry within {} s", wait(BOUND).as_secs());
            check!(t.controllers(SUB_A).await?.is_empty(), "the controller outlived its KATO");
            check!(c.keep_alive().await.is_err(), "the admin queue still answers after the teardown");
            let w = io.write(0, &pattern(lba as usize, 5), DataMode::Keyed).await;
            check!(!w.is_ok_and(|w| w.cqe.status.is_success()), "the I/O queue still serves after its controller was torn down");
            Ok(())
        })
        .racy("the admin and I/O connections of the expired controller are released in the order their disconnects complete"),
        Case::new(AREA, "keep-alive-restarts-timer", "CONN-KATO", "Keep Alive commands sent within KATO keep the controller alive well past KATO", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let mut cfg = host_config(SUB_A);
            cfg.kato_ms = 2000;
            let mut c = t.controller(PORT_A, cfg).await?;
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                c.keep_alive().await.map_err(|e| Failure::from(e).context("Keep Alive"))?;
            }
            check_eq!(t.controllers(SUB_A).await?.len(), 1, "controllers after 6 s of Keep Alives every second (KATO 2 s)");
            check!(!t.events().await?.iter().any(|l| l.contains("kato-expired")), "KATO expired although Keep Alives came in time");
            Ok(())
        }),
    ]
}
