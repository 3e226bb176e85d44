//! Area `target-io`: the I/O the reference control plane serves itself, on a subsystem
//! whose queues are never offloaded (`offload = false`). A target that offloads serves
//! here whatever its device does not (ops outside the SRQ's, unmapped nsids, data
//! pointers the device does not take), so this path must give the same answers as the
//! device: the data, every status with its DNR bit, SEND with invalidate, and nothing
//! written by a command that failed. `docs/target.md` lists the checks in order.
//!
//! These check the control plane, not the device's offload API.

use harness::api::OffloadOps;
use harness::backend::emulated::Fault;
use harness::fabric::{Access, MrInfo};
use harness::initiator::{misbehave, Command, Completion, DataMode, IoQueue, Transfer};
use harness::wire::{
    DsmCommand, Fuse, IdentifyNamespaceRepr, RwCommand, SglRepr, SqeCommand, SqeRepr, Status,
    WriteZeroesCommand,
};

use crate::areas::datapath::settle;
use crate::framework::media::TempNamespace;
use crate::framework::session::pattern;
use crate::framework::target::{
    advertised_mdts, expect_status, host_config, one_subsystem_on_file, one_subsystem_sized,
    one_subsystem_with, TargetRig, BOUND, NS_BLOCKS, PORT_A, SUB_A,
};
use crate::framework::{blame, wait, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const AREA: &str = "target-io";
const CP: &[Need] = &[Need::ControlPlane];
/// Depth of the I/O queue these cases connect.
const DEPTH: u16 = 16;

/// The in-capsule data bytes the target's I/O capsules carry: 4096, within the caps.
fn in_capsule_bytes(d: &Dut) -> u32 {
    let ioccsz = (4 + 4096 / 16)
        .min(d.caps.max_ioccsz)
        .max(d.caps.min_ioccsz)
        .max(4);
    ioccsz * 16 - 64
}

/// A target whose subsystem has namespace 1 and is never offloaded, with one I/O queue
/// of an enabled controller on namespace 1.
async fn software_queue(
    d: &Dut,
) -> Result<(TargetRig, harness::initiator::Controller, IoQueue), Failure> {
    software_queue_on(d, &one_subsystem_with(&[1], d.ns_format(), false)).await
}

/// [`software_queue`] on the target `config` (one subsystem [`SUB_A`], namespace 1).
async fn software_queue_on(
    d: &Dut,
    config: &str,
) -> Result<(TargetRig, harness::initiator::Controller, IoQueue), Failure> {
    let t = d.target(config).await?;
    let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
    c.set_number_of_queues(1)
        .await
        .map_err(|e| Failure::from(e).context("Set Features Number of Queues"))?;
    let lba = d.ns_format().lba_data_size();
    let io = c
        .connect_io_queue(1, DEPTH, in_capsule_bytes(d), 1, lba)
        .await
        .map_err(|e| Failure::from(e).context("I/O Connect"))?;
    Ok((t, c, io))
}

fn ok(c: &Completion, what: &str) -> Result<(), Failure> {
    check_eq!(c.cqe.status, Status::SUCCESS, "{what}: status");
    Ok(())
}

/// A keyed write of `blocks` blocks of pattern `seed` at `slba`, checked as served (`what`
/// names it); returns the data written.
async fn write_pattern(
    io: &mut IoQueue,
    slba: u64,
    blocks: usize,
    seed: u8,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    let data = pattern(blocks * io.lba_size() as usize, seed);
    ok(&io.write(slba, &data, DataMode::Keyed).await?, what)?;
    Ok(data)
}

/// Reads `blocks` at `slba` and checks the data.
async fn read_back(io: &mut IoQueue, slba: u64, want: &[u8], what: &str) -> Result<(), Failure> {
    let blocks = want.len() as u32 / io.lba_size();
    let r = io.read(slba, blocks, DataMode::Keyed).await?;
    ok(&r, &format!("read of {what}"))?;
    check!(
        r.data == want,
        "{what}: data read back differs from what it should be"
    );
    Ok(())
}

/// Runs `command` on namespace 1 with one keyed data block over `len` bytes of `mr`, and
/// checks it succeeded (`what`: "write" or "read").
async fn keyed_transfer(
    io: &mut IoQueue,
    command: SqeCommand,
    mr: &MrInfo,
    len: u32,
    what: &str,
) -> Result<(), Failure> {
    let blocks = len / io.lba_size();
    let r = io
        .queue()
        .execute_sgl(
            &Command::Nvme { nsid: 1, command },
            SglRepr::keyed(mr.addr, len, mr.rkey),
            &[],
        )
        .await?;
    check_eq!(
        r.cqe.status,
        Status::SUCCESS,
        "keyed {what} of {blocks} blocks ({len} bytes): status"
    );
    Ok(())
}

/// A keyed write of `len` bytes of pattern `seed` at `slba`, then a keyed read of them,
/// both as one command; checks both served and the data read back. Returns the data.
async fn whole_transfer(
    io: &mut IoQueue,
    slba: u64,
    len: u32,
    seed: u8,
) -> Result<Vec<u8>, Failure> {
    let blocks = len / io.lba_size();
    let data = pattern(len as usize, seed);
    let src = region(io, len)?;
    io.queue().ctx().mr_write(src.id, 0, &data)?;
    keyed_transfer(io, SqeCommand::Write(rw(slba, blocks)), &src, len, "write").await?;
    let dst = region(io, len)?;
    keyed_transfer(io, SqeCommand::Read(rw(slba, blocks)), &dst, len, "read").await?;
    let mut got = vec![0; len as usize];
    io.queue().ctx().mr_read(dst.id, 0, &mut got)?;
    check!(
        got == data,
        "the {len} bytes read differ from the {len} bytes written"
    );
    Ok(data)
}

/// A keyed read and a keyed write of `mdts` bytes and one block at block 0 are refused
/// Invalid Field with DNR: the read delivers nothing, the write changes nothing (blocks
/// 0.. still hold `before`); the queue then still serves.
async fn over_mdts(io: &mut IoQueue, mdts: u32, before: &[u8]) -> Result<(), Failure> {
    let lba = io.lba_size();
    let blocks = mdts / lba + 1;
    let big = region(io, blocks * lba)?;
    for cmd in [
        SqeCommand::Read(rw(0, blocks)),
        SqeCommand::Write(rw(0, blocks)),
    ] {
        refused(
            io,
            cmd,
            SglRepr::keyed(big.addr, blocks * lba, big.rkey),
            &[],
            Status::INVALID_FIELD,
            &format!("{blocks} blocks, one above the {mdts}-byte MDTS"),
        )
        .await?;
    }
    let mut got = vec![0; (blocks * lba) as usize];
    io.queue().ctx().mr_read(big.id, 0, &mut got)?;
    check!(
        got.iter().all(|&b| b == 0),
        "the refused read delivered data"
    );
    read_back(io, 0, before, "the blocks under the refused write").await
}

/// A host region of `len` bytes the target may read and write.
fn region(io: &mut IoQueue, len: u32) -> Result<MrInfo, Failure> {
    let q = io.queue();
    Ok(q.ctx().reg_mr(
        q.pd(),
        u64::from(len),
        Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE,
    )?)
}

/// Sends an SQE built from `repr` (nsid 1) with SGL1 `sgl` and in-capsule `data`; the
/// response's status must be `want` with DNR.
async fn refused(
    io: &mut IoQueue,
    command: SqeCommand,
    sgl: SglRepr,
    data: &[u8],
    want: Status,
    what: &str,
) -> Result<(), Failure> {
    let r = io
        .queue()
        .execute_sgl(&Command::Nvme { nsid: 1, command }, sgl, data)
        .await?;
    expect_status(&r.cqe, want, what)
}

fn rw(slba: u64, blocks: u32) -> RwCommand {
    RwCommand::new(slba, blocks)
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(AREA, "read-write", "TIO-DATA", "software serves keyed reads and writes and in-capsule writes: data read back is data written, blocks around it stay as they were, the last blocks of the namespace are reachable; every command is counted as software's and none as offloaded", CP, |d: Dut| async move {
            let (t, _c, mut io) = software_queue(&d).await?;
            let lba = io.lba_size() as usize;
            let three = pattern(3 * lba, 1);
            let w = io.write(10, &three, DataMode::Keyed).await?;
            ok(&w, "keyed write of 3 blocks")?;
            check_eq!(w.invalidated_rkey, None, "key invalidated by the response to a 40h write");
            read_back(&mut io, 10, &three, "the 3 blocks written").await?;
            read_back(&mut io, 9, &vec![0; lba], "the block before them").await?;
            read_back(&mut io, 13, &vec![0; lba], "the block after them").await?;
            let last = write_pattern(&mut io, NS_BLOCKS - 2, 2, 3, "write of the last 2 blocks").await?;
            read_back(&mut io, NS_BLOCKS - 2, &last, "the last 2 blocks").await?;
            let mut sent = 6;
            if lba as u32 <= in_capsule_bytes(&d) {
                let inline = pattern(lba, 4);
                let w = io.write(30, &inline, DataMode::InCapsule).await?;
                ok(&w, "in-capsule write of one block")?;
                read_back(&mut io, 30, &inline, "the block written in-capsule").await?;
                sent += 2;
            }
            settle().await;
            // That nothing of a QP without offload is offloaded is SW-NOT-ENABLED's rule.
            let _rule = blame::under("SW-NOT-ENABLED");
            check_eq!(t.software_io_commands(SUB_A).await?, sent, "I/O commands software served");
            let k = t.ns_counters(SUB_A, 1).await?;
            check_eq!(k.read_cmds + k.write_cmds + k.write_inline_cmds, 0, "commands counted as offloaded");
            Ok(())
        }),
        Case::new(AREA, "send-with-invalidate", "TIO-DATA", "software answers reads and writes with a keyed SGL with invalidate (4Fh) with SEND with invalidate of the host's key, and serves them", &[Need::ControlPlane, Need::InvalidatePlainMr], |d: Dut| async move {
            let (_t, _c, mut io) = software_queue(&d).await?;
            let one = pattern(io.lba_size() as usize, 2);
            let w = io.write(20, &one, DataMode::KeyedInvalidate).await?;
            ok(&w, "keyed write with invalidate")?;
            check_eq!(w.invalidated_rkey, w.rkey, "key invalidated by the response to a 4Fh write");
            let r = io.read(20, 1, DataMode::KeyedInvalidate).await?;
            ok(&r, "keyed read with invalidate")?;
            check_eq!(r.invalidated_rkey, r.rkey, "key invalidated by the response to a 4Fh read");
            check!(r.data == one, "data read with invalidate differs from data written");
            Ok(())
        }),
        Case::new(AREA, "zeroes-dsm-flush", "TIO-DATA", "software serves Write Zeroes (NLB + 1 blocks, no more), Dataset Management (without Deallocate it changes nothing; with it the ranges read back as zeroes; a range past the end is LBA Out of Range with DNR and deallocates nothing) and Flush of the namespace and of every namespace (FFFFFFFFh)", CP, |d: Dut| async move {
            let (_t, _c, mut io) = software_queue(&d).await?;
            let lba = io.lba_size() as usize;
            let four = write_pattern(&mut io, 30, 4, 5, "write of 4 blocks").await?;
            ok(&io.write_zeroes(31, 2).await?, "Write Zeroes of 2 blocks")?;
            let mut want = four.clone();
            want[lba..3 * lba].fill(0);
            read_back(&mut io, 30, &want, "4 blocks after Write Zeroes of the middle 2").await?;
            let wz = WriteZeroesCommand { slba: 33, nlb: 0, ..Default::default() };
            ok(&io.command(SqeCommand::WriteZeroes(wz), Transfer::None, DataMode::Keyed).await?, "Write Zeroes with NLB 0")?;
            want[3 * lba..].fill(0);
            read_back(&mut io, 30, &want, "4 blocks after Write Zeroes of the last one (NLB 0)").await?;
            let two = write_pattern(&mut io, 40, 2, 6, "write of 2 blocks").await?;
            ok(&io.dataset_management(&[(0, 2, 40)], false, DataMode::Keyed).await?, "Dataset Management without Deallocate")?;
            read_back(&mut io, 40, &two, "blocks after Dataset Management without Deallocate").await?;
            let r = io.dataset_management(&[(0, 1, 40), (0, 2, NS_BLOCKS - 1)], true, DataMode::Keyed).await?;
            expect_status(&r.cqe, Status::LBA_OUT_OF_RANGE, "Deallocate of a range past the end")?;
            read_back(&mut io, 40, &two, "blocks after a refused Deallocate").await?;
            let mode = if in_capsule_bytes(&d) >= 32 { DataMode::InCapsule } else { DataMode::Keyed };
            ok(&io.dataset_management(&[(0, 1, 40)], true, mode).await?, "Deallocate of one block")?;
            let mut after = two.clone();
            after[..lba].fill(0);
            read_back(&mut io, 40, &after, "blocks after Deallocate of the first").await?;
            ok(&io.flush().await?, "Flush of namespace 1")?;
            let r = io.queue().execute(&Command::Nvme { nsid: u32::MAX, command: SqeCommand::Flush }, Transfer::None, DataMode::Keyed).await?;
            ok(&r, "Flush of every namespace (FFFFFFFFh)")?;
            let r = io.queue().execute(&Command::Nvme { nsid: 3, command: SqeCommand::Flush }, Transfer::None, DataMode::Keyed).await?;
            expect_status(&r.cqe, Status::INVALID_NAMESPACE, "Flush of nsid 3, which does not exist")
        }),
        Case::new(AREA, "refusals", "TIO-ERRORS", "software refuses, each with its status and DNR, and writes nothing: LBA ranges past the end or wrapping (0/80h), protection information (0/02h), fused commands and PRPs, with or without a reserved bit set (0/02h), an unknown opcode (0/01h), an unknown nsid (0/0Bh), a keyed length other than the transfer (0/0Fh), a read with in-capsule data (0/02h), in-capsule data of the wrong length (0/0Fh) or past the capsule's end (SGL Offset Invalid, 0/16h), an undefined SGL descriptor (0/11h) and a transfer above the subsystem's MDTS (0/02h, before the LBA range is looked at); the queue then still serves", CP, |d: Dut| async move {
            let (_t, _c, mut io) = software_queue(&d).await?;
            let lba = io.lba_size();
            let end = NS_BLOCKS;
            let one = pattern(lba as usize, 7);
            let mr = region(&mut io, 4 * lba)?;
            io.queue().ctx().mr_write(mr.id, 0, &pattern(4 * lba as usize, 8))?;
            let keyed = |n: u32| SglRepr::keyed(mr.addr, n * lba, mr.rkey);
            for (cmd, what) in [
                (SqeCommand::Read(rw(end - 1, 2)), "read of the last block and one past"),
                (SqeCommand::Write(rw(end - 1, 2)), "write of the last block and one past"),
                (SqeCommand::Read(rw(u64::MAX, 1)), "read at the highest LBA (wrapping)"),
            ] {
                refused(&mut io, cmd, keyed(if what.contains("wrapping") { 1 } else { 2 }), &[], Status::LBA_OUT_OF_RANGE, what).await?;
            }
            let wz = WriteZeroesCommand { slba: end - 1, nlb: 1, ..Default::default() };
            refused(&mut io, SqeCommand::WriteZeroes(wz), SglRepr::keyed(0, 0, 0), &[], Status::LBA_OUT_OF_RANGE, "Write Zeroes of the last block and one past").await?;
            read_back(&mut io, end - 1, &vec![0; lba as usize], "the last block after the refused write").await?;
            let pi = RwCommand { prinfo: 0b1000, ..rw(0, 1) };
            refused(&mut io, SqeCommand::Read(pi), keyed(1), &[], Status::INVALID_FIELD, "read with PRINFO").await?;
            refused(&mut io, SqeCommand::Write(pi), keyed(1), &[], Status::INVALID_FIELD, "write with PRINFO").await?;
            let wz = WriteZeroesCommand { slba: 0, nlb: 0, prinfo: 0b1000, ..Default::default() };
            refused(&mut io, SqeCommand::WriteZeroes(wz), SglRepr::keyed(0, 0, 0), &[], Status::INVALID_FIELD, "Write Zeroes with PRINFO").await?;
            let mut fused = SqeRepr::new(60, 1, SqeCommand::Write(rw(0, 1)), keyed(1));
            fused.fuse = Fuse::First;
            misbehave::send_raw(io.queue(), &fused.to_bytes()?)?;
            expect_status(&io.queue().wait_response(60, wait(BOUND)).await?.cqe, Status::INVALID_FIELD, "fused write")?;
            misbehave::send_raw(io.queue(), &misbehave::prp_sqe(61, 1, 0)?)?;
            expect_status(&io.queue().wait_response(61, wait(BOUND)).await?.cqe, Status::INVALID_FIELD, "read with PRPs")?;
            // The same with a reserved bit of byte 1 set: the SQE does not parse, and its PRP
            // entries must still not be read as an SGL (whose type byte, FFh, is undefined).
            let mut prp = misbehave::prp_sqe(65, 1, 0)?;
            prp[1] |= 0b100;
            misbehave::send_raw(io.queue(), &prp)?;
            expect_status(&io.queue().wait_response(65, wait(BOUND)).await?.cqe, Status::INVALID_FIELD, "read with PRPs and reserved bit 2 of byte 1 set")?;
            misbehave::send_raw(io.queue(), &misbehave::opcode_sqe(62, 1, 0x7e)?)?;
            expect_status(&io.queue().wait_response(62, wait(BOUND)).await?.cqe, Status::INVALID_OPCODE, "opcode 7Eh")?;
            let r = io.queue().execute_sgl(&Command::Nvme { nsid: 3, command: SqeCommand::Read(rw(0, 1)) }, keyed(1), &[]).await?;
            expect_status(&r.cqe, Status::INVALID_NAMESPACE, "read of nsid 3, which does not exist")?;
            refused(&mut io, SqeCommand::Read(rw(0, 1)), keyed(2), &[], Status::DATA_SGL_LENGTH_INVALID, "read of 1 block into 2 blocks").await?;
            refused(&mut io, SqeCommand::Write(rw(0, 2)), keyed(1), &[], Status::DATA_SGL_LENGTH_INVALID, "write of 2 blocks from 1 block").await?;
            refused(&mut io, SqeCommand::Read(rw(0, 1)), SglRepr::in_capsule(0, lba), &[], Status::INVALID_FIELD, "read with an in-capsule data block").await?;
            let dsm = DsmCommand { nr: 0, idr: false, idw: false, ad: true };
            refused(&mut io, SqeCommand::DatasetManagement(dsm), keyed(1), &[], Status::DATA_SGL_LENGTH_INVALID, "Dataset Management of 1 range from a block").await?;
            if in_capsule_bytes(&d) >= 32 {
                refused(&mut io, SqeCommand::DatasetManagement(dsm), SglRepr::in_capsule(0, 32), &[0; 32], Status::DATA_SGL_LENGTH_INVALID, "Dataset Management of 1 range with 32 bytes in-capsule").await?;
            }
            if 2 * lba <= in_capsule_bytes(&d) {
                refused(&mut io, SqeCommand::Write(rw(0, 1)), SglRepr::in_capsule(0, 2 * lba), &pattern(2 * lba as usize, 9), Status::DATA_SGL_LENGTH_INVALID, "write of 1 block with 2 blocks in-capsule").await?;
            }
            let undefined = misbehave::sqe_with_raw_sgl(misbehave::read_sqe(63, 1, 0, 1, keyed(1))?, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0]);
            misbehave::send_raw(io.queue(), &undefined)?;
            expect_status(&io.queue().wait_response(63, wait(BOUND)).await?.cqe, Status::SGL_DESCRIPTOR_TYPE_INVALID, "read with SGL descriptor type Fh")?;
            if lba <= in_capsule_bytes(&d) {
                // A Data Block descriptor placed at the end of the in-capsule data area: its
                // block lies past what any capsule can carry (the block itself is sent).
                let icc = in_capsule_bytes(&d);
                let mut capsule = misbehave::write_sqe(64, 1, 0, 1, SglRepr::in_capsule(u64::from(icc), lba))?.to_vec();
                capsule.extend_from_slice(&pattern(lba as usize, 12));
                misbehave::send_raw(io.queue(), &capsule)?;
                expect_status(&io.queue().wait_response(64, wait(BOUND)).await?.cqe, Status::SGL_OFFSET_INVALID, &format!("write with in-capsule data at offset {icc}, past the capsule's end"))?;
            }
            let mdts = advertised_mdts(&d.caps, false, None) as u32;
            let blocks = mdts / lba + 1;
            let big = region(&mut io, blocks * lba)?;
            for cmd in [SqeCommand::Read(rw(0, blocks)), SqeCommand::Write(rw(0, blocks))] {
                refused(&mut io, cmd, SglRepr::keyed(big.addr, blocks * lba, big.rkey), &[], Status::INVALID_FIELD, &format!("{blocks} blocks, above the subsystem's {mdts}-byte MDTS")).await?;
            }
            read_back(&mut io, 0, &vec![0; 2 * lba as usize], "blocks 0 and 1 after the refused writes").await?;
            ok(&io.write(0, &one, DataMode::Keyed).await?, "write after the refusals")?;
            read_back(&mut io, 0, &one, "the block written after the refusals").await
        }),
        Case::new(AREA, "whole-data-buffer", "TIO-MDTS", "a keyed write and a keyed read of exactly the subsystem's maximum data transfer size (1 MiB by default, the MDTS Identify Controller reports) are served whole: the data read back is the data written, and the blocks around it stay zero", CP, |d: Dut| async move {
            let mdts = advertised_mdts(&d.caps, false, None);
            let lba = u64::from(d.ns_format().lba_data_size());
            let config = one_subsystem_sized(d.ns_format(), false, mdts / lba + 2, None);
            let (_t, mut c, mut io) = software_queue_on(&d, &config).await?;
            let id = c.identify_controller().await?;
            check_eq!(u64::from(4096u32) << id.mdts, mdts, "Identify Controller MDTS (as bytes)");
            whole_transfer(&mut io, 1, mdts as u32, 11).await?;
            read_back(&mut io, 0, &vec![0; lba as usize], "block 0, before the write").await?;
            read_back(&mut io, mdts / lba + 1, &vec![0; lba as usize], "the block after the write").await
        }),
        Case::new(AREA, "mdts-configured", "TIO-MDTS", "a subsystem configured with mdts = 64KiB reports MDTS 4 (16 pages of 4 KiB), serves a keyed write and read of exactly 64 KiB whole, and refuses a read and a write of 64 KiB and one block with Invalid Field in Command (0/02h, DNR), writing nothing and delivering no data; the queue then still serves", CP, |d: Dut| async move {
            let config = one_subsystem_sized(d.ns_format(), false, NS_BLOCKS, Some("64KiB"));
            let (_t, mut c, mut io) = software_queue_on(&d, &config).await?;
            let lba = io.lba_size();
            let mdts = 64 * 1024;
            check_eq!(c.identify_controller().await?.mdts, 4, "Identify Controller MDTS of a subsystem with mdts = 64KiB");
            check!(u64::from(mdts / lba + 1) < NS_BLOCKS, "64 KiB and a block do not fit the namespace");
            let written = whole_transfer(&mut io, 0, mdts, 31).await?;
            over_mdts(&mut io, mdts, &written).await
        }),
        Case::new(AREA, "mdts-above-max-io", "TIO-MDTS", "on an offloaded subsystem whose device hands larger commands to software, Identify Controller reports the subsystem's MDTS (1 MiB), not max_io_sz: a keyed write and read of max_io_sz and one block, and of exactly the MDTS, are served whole by software (counted as software's), and one block more is Invalid Field in Command (0/02h, DNR) from software, writing nothing", &[Need::ControlPlane, Need::NonOffloadedOps, Need::Ops(OffloadOps::READ.union(OffloadOps::WRITE))], |d: Dut| async move {
            let mdts = advertised_mdts(&d.caps, true, None) as u32;
            let lba = d.ns_format().lba_data_size();
            let config = one_subsystem_sized(d.ns_format(), true, u64::from(mdts / lba + 2), None);
            let (t, mut c, mut io) = software_queue_on(&d, &config).await?;
            check_eq!(4096u32 << c.identify_controller().await?.mdts, mdts, "Identify Controller MDTS (as bytes) of an offloaded subsystem");
            let sw = t.software_io_commands(SUB_A).await?;
            let above = (d.caps.max_io_sz / lba + 1) * lba;
            check!(above <= mdts, "max_io_sz and one block ({above} bytes) above the MDTS");
            whole_transfer(&mut io, 0, above, 41).await?;
            let written = whole_transfer(&mut io, 0, mdts, 42).await?;
            check_eq!(t.software_io_commands(SUB_A).await?, sw + 4, "commands above max_io_sz served by software (two writes, two reads)");
            over_mdts(&mut io, mdts, &written).await?;
            check_eq!(t.software_io_commands(SUB_A).await?, sw + 4 + 3, "commands software answered (the two refused, one read back)");
            Ok(())
        }),
        Case::new(AREA, "short-capsule", "TIO-ERRORS", "a capsule shorter than an SQE is answered Invalid Field (0/02h, DNR) under its CID when it has one (63 and 4 bytes), and dropped unanswered when it has none (3 bytes); the queue then still serves", CP, |d: Dut| async move {
            let (_t, _c, mut io) = software_queue(&d).await?;
            let sqe = misbehave::read_sqe(70, 1, 0, 1, SglRepr::keyed(0, io.lba_size(), 0))?;
            misbehave::send_raw(io.queue(), &sqe[..3])?;
            let mut four = sqe[..4].to_vec();
            four[2..4].copy_from_slice(&71u16.to_le_bytes());
            for (capsule, cid) in [(&sqe[..63], 70u16), (&four[..], 71)] {
                misbehave::send_raw(io.queue(), capsule)?;
                let r = io.queue().wait_response(cid, wait(BOUND)).await?;
                expect_status(&r.cqe, Status::INVALID_FIELD, &format!("a {}-byte capsule", capsule.len()))?;
                check_eq!(r.cqe.cid, cid, "CID of the answer to a {}-byte capsule", capsule.len());
            }
            let data = pattern(io.lba_size() as usize, 12);
            ok(&io.write(5, &data, DataMode::Keyed).await?, "write after the short capsules")?;
            read_back(&mut io, 5, &data, "the block written after the short capsules").await?;
            check_eq!(io.queue().arrived_cids(), Vec::<u16>::new(), "responses no command waited for (the 3-byte capsule has no CID to answer)");
            Ok(())
        }),
        Case::new(AREA, "file-backed", "TIO-DATA", "on a namespace stored in a file (1.25 MiB), software's writes reach the file, Write Zeroes of more than 1 MiB zeroes exactly its blocks in the file, Flush succeeds, and Identify Namespace reports the file's blocks", CP, |d: Dut| async move {
            let format = d.ns_format();
            let lba = format.lba_data_size() as usize;
            let blocks = (1_310_720 / format.data) as u64;
            let file = TempNamespace::unique();
            let t = d.target(&one_subsystem_on_file(&file.0, blocks, format)).await?;
            let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
            let ns = IdentifyNamespaceRepr::parse(&c.identify(0, 1).await?).map_err(Failure::from)?;
            check_eq!((ns.nsze, ns.ncap), (blocks, blocks), "Identify Namespace (NSZE, NCAP) of the file-backed namespace");
            c.set_number_of_queues(1).await.map_err(|e| Failure::from(e).context("Set Features Number of Queues"))?;
            let mut io = c.connect_io_queue(1, DEPTH, in_capsule_bytes(&d), 1, lba as u32).await.map_err(|e| Failure::from(e).context("I/O Connect"))?;
            let per = (32 * 1024 / lba) as u64;
            let mut image = Vec::with_capacity(blocks as usize * lba);
            for first in (0..blocks).step_by(per as usize) {
                let chunk = pattern(per as usize * lba, first as u8);
                ok(&io.write(first, &chunk, DataMode::Keyed).await?, &format!("write of blocks {first}.."))?;
                image.extend_from_slice(&chunk);
            }
            let (from, count) = (per / 2, blocks - per);
            check!(count as usize * lba > 1 << 20, "the Write Zeroes range is not over 1 MiB");
            ok(&io.write_zeroes(from, count as u32).await?, &format!("Write Zeroes of {count} blocks from {from}"))?;
            image[from as usize * lba..(from + count) as usize * lba].fill(0);
            for first in (0..blocks).step_by(per as usize) {
                let want = &image[first as usize * lba..(first + per) as usize * lba];
                read_back(&mut io, first, want, &format!("blocks {first}.. after Write Zeroes")).await?;
            }
            ok(&io.flush().await?, "Flush of the file-backed namespace")?;
            if t.local().is_some() {
                // The file on the target's host: only when the target runs in this process.
                let bytes = std::fs::read(&file.0).map_err(|e| Failure::new(format!("reading the namespace's file: {e}")))?;
                check_eq!(bytes.len(), image.len(), "the namespace file's length");
                check!(bytes == image, "the namespace file's bytes differ from what was written and zeroed");
            }
            Ok(())
        }),
        Case::new(AREA, "media-error", "TIO-MEDIA-ERROR", "a software read touching a bad block of the backend is Unrecovered Read Error (2/81h) without DNR (another read may succeed) and returns no data; reads around the bad block and writes succeed", CP, |d: Dut| async move {
            let (t, _c, mut io) = software_queue(&d).await?;
            let data = write_pattern(&mut io, 50, 3, 10, "write of blocks 50 to 52").await?;
            let lba = data.len() / 3;
            t.inject(SUB_A, 1, Fault::MediaError { nsid: 1, lbas: 51..52 }).await?;
            for (slba, blocks) in [(51, 1), (50, 3)] {
                let r = io.read(slba, blocks, DataMode::Keyed).await?;
                check_eq!(r.cqe.status, Status::UNRECOVERED_READ_ERROR, "read of {blocks} blocks from {slba} over the bad block (2/81h, DNR clear)");
                check!(r.data.iter().all(|&b| b == 0), "the failed read of {blocks} blocks from {slba} wrote data");
            }
            read_back(&mut io, 50, &data[..lba], "block 50, before the bad block").await?;
            read_back(&mut io, 52, &data[2 * lba..], "block 52, after the bad block").await?;
            ok(&io.write(51, &data[..lba], DataMode::Keyed).await?, "write of the bad block")
        }),
    ]
}
