//! Deliberate protocol violations, sent through the same queues a well-behaved host uses.
//!
//! Builders return the exact bytes that will go on the wire (tests check them with the
//! `wire` parsers); the `send_*` / `connect_*` functions put them on a queue.

use std::net::SocketAddr;
use std::time::Duration;

use super::connect::{cm_establish, CmOptions};
use super::error::Result;
use super::queue::HostQueue;
use crate::wire::{
    sqe_field, CmAcceptRepr, CmRequestRepr, ConnectDataRepr, ConnectRepr, FabricsRepr, Psdt,
    RwCommand, SglRepr, SqeCommand, SqeRepr, CONNECT_DATA_LEN, SQE_LEN,
};

/// CM request private data with any field values (wrong RECFMT, QID, sizes...).
pub fn cm_request_bytes(recfmt: u16, qid: u16, hrqsize: u16, hsqsize: u16) -> Vec<u8> {
    CmRequestRepr {
        recfmt,
        qid,
        hrqsize,
        hsqsize,
        cntlid: 0,
    }
    .to_bytes()
    .to_vec()
}

/// Connects `queue` through the CM with arbitrary private data (any length up to 56
/// bytes, including a too-short one) and the queue's usual IRD / RNR retry.
pub async fn connect_with_private_data(
    queue: &mut HostQueue,
    addr: SocketAddr,
    private_data: Vec<u8>,
    bound: Duration,
) -> Result<Option<CmAcceptRepr>> {
    let opts = CmOptions {
        private_data,
        ..CmOptions::for_queue(queue)
    };
    cm_establish(queue, addr, &opts, bound).await
}

/// A Connect capsule with any field values and the Connect data in the capsule (SGL 01h):
/// 64 SQE bytes followed by the 1024 data bytes.
pub fn connect_capsule(
    cid: u16,
    recfmt: u16,
    qid: u16,
    sqsize: u16,
    kato: u32,
    data: &ConnectDataRepr,
) -> Result<Vec<u8>> {
    let sqe = FabricsRepr::Connect(ConnectRepr {
        recfmt,
        ..ConnectRepr::new(cid, qid, sqsize, kato)
    })
    .to_bytes()?;
    let mut v = sqe.to_vec();
    v.extend_from_slice(&data.to_bytes()?);
    debug_assert_eq!(v.len(), SQE_LEN + CONNECT_DATA_LEN);
    Ok(v)
}

/// A Read SQE of `blocks` blocks at `slba` with an arbitrary SGL1 (e.g. a keyed length
/// larger than the transfer, a bad key, an unsupported descriptor type).
pub fn read_sqe(cid: u16, nsid: u32, slba: u64, blocks: u32, sgl1: SglRepr) -> Result<[u8; 64]> {
    Ok(SqeRepr::new(
        cid,
        nsid,
        SqeCommand::Read(RwCommand::new(slba, blocks)),
        sgl1,
    )
    .to_bytes()?)
}

/// A Write SQE of `blocks` blocks at `slba` with an arbitrary SGL1.
pub fn write_sqe(cid: u16, nsid: u32, slba: u64, blocks: u32, sgl1: SglRepr) -> Result<[u8; 64]> {
    Ok(SqeRepr::new(
        cid,
        nsid,
        SqeCommand::Write(RwCommand::new(slba, blocks)),
        sgl1,
    )
    .to_bytes()?)
}

/// An SQE whose SGL1 is the 16 raw bytes `sgl` (any identifier, reserved bits set...).
pub fn sqe_with_raw_sgl(mut sqe: [u8; 64], sgl: [u8; 16]) -> [u8; 64] {
    sqe[sqe_field::DPTR].copy_from_slice(&sgl);
    sqe
}

/// An SQE with `opcode` (nothing else but CID and NSID), SGL1 null keyed.
pub fn opcode_sqe(cid: u16, nsid: u32, opcode: u8) -> Result<[u8; 64]> {
    Ok(SqeRepr::new(
        cid,
        nsid,
        SqeCommand::Other {
            opcode,
            cdw: [0; 6],
        },
        SglRepr::keyed(0, 0, 0),
    )
    .to_bytes()?)
}

/// PRP1 and PRP2 of [`prp_sqe`]: host addresses as a PCIe host driver fills them in (a
/// page of low memory, and a kernel direct-map address whose top byte, where an SGL keeps
/// its type, is FFh).
const PRP_ENTRIES: [u64; 2] = [0x0000_0001_2345_6000, 0xffff_8880_0420_0000];

/// An SQE with PSDT 00b (PRPs), which NVMe-oF does not allow; its data pointer holds two
/// PRP entries, which do not read as an SGL descriptor.
pub fn prp_sqe(cid: u16, nsid: u32, slba: u64) -> Result<[u8; 64]> {
    let mut r = SqeRepr::new(
        cid,
        nsid,
        SqeCommand::Read(RwCommand::new(slba, 1)),
        SglRepr::keyed(0, 0, 0),
    );
    r.psdt = Psdt::Prp;
    let mut dptr = [0; 16];
    dptr[..8].copy_from_slice(&PRP_ENTRIES[0].to_le_bytes());
    dptr[8..].copy_from_slice(&PRP_ENTRIES[1].to_le_bytes());
    r.dptr = crate::wire::DataPointer::Raw(dptr);
    Ok(r.to_bytes()?)
}

/// Sends raw capsule bytes, ignoring the queue depth; returns the CID in bytes 3:2.
pub fn send_raw(queue: &mut HostQueue, capsule: &[u8]) -> Result<Option<u16>> {
    queue.post_raw(capsule, false)
}

/// Sends an I/O capsule on a queue that has not sent Connect (CM-connected only).
pub fn send_before_connect(queue: &mut HostQueue, nsid: u32) -> Result<u16> {
    let cid = queue.alloc_cid();
    let sqe = read_sqe(cid, nsid, 0, 1, SglRepr::keyed(0, 0, 0))?;
    queue.post_raw(&sqe, false)?;
    Ok(cid)
}

/// Sends `count` Flush commands without waiting, past the negotiated depth;
/// returns their CIDs.
pub fn overrun_sqsize(queue: &mut HostQueue, nsid: u32, count: usize) -> Result<Vec<u16>> {
    let mut cids = Vec::with_capacity(count);
    for _ in 0..count {
        let cid = queue.alloc_cid();
        let sqe = SqeRepr::new(cid, nsid, SqeCommand::Flush, SglRepr::keyed(0, 0, 0)).to_bytes()?;
        queue.post_raw(&sqe, false)?;
        cids.push(cid);
    }
    Ok(cids)
}

/// Sends two Flush commands with the same CID back to back.
pub fn reuse_cid(queue: &mut HostQueue, nsid: u32, cid: u16) -> Result<()> {
    let sqe = SqeRepr::new(cid, nsid, SqeCommand::Flush, SglRepr::keyed(0, 0, 0)).to_bytes()?;
    queue.post_raw(&sqe, false)?;
    queue.post_raw(&sqe, false)?;
    Ok(())
}

/// Drops the queue without a CM disconnect: the target is not told.
pub fn abrupt_disconnect(queue: HostQueue) -> Result<()> {
    queue.abort()
}
