//! The software I/O path: I/O commands the engine does not offload (opcodes outside the
//! SRQ's offload ops, QPs without offload, unmapped nsids, data pointers the engine does
//! not take, transfers above `max_io_sz`), served through the same backend namespaces.
//!
//! Checks, in order (every error with DNR unless noted): SQE that does not parse → 0/11h
//! when SGL1 is an undefined descriptor, else 0/02h; PSDT not SGL or a fused command →
//! 0/02h; opcode other than Read/Write/Flush/Write Zeroes/DSM → 0/01h; nsid not in the
//! subsystem → 0/0Bh; namespace released after a backend PCI error → 0/82h Namespace Not
//! Ready (DNR set: it does not come back without reconfiguration); a read or write above
//! the subsystem's MDTS → 0/02h; LBA range → 0/80h;
//! PRINFO ≠ 0 → 0/02h; data pointer: read with in-capsule data → 0/02h, keyed length ≠
//! the transfer → 0/0Fh, in-capsule past the capsule → 0/16h, other descriptors → 0/11h,
//! media error → 2/81h (no DNR). A namespace
//! briefly absent while its controller is re-created → 0/82h without DNR.
//! Data moves by RDMA READ / WRITE with the host's keyed SGL or from the capsule; the
//! response is a SEND (SEND with invalidate for 4Fh).

use harness::wire::{
    DsmRangeRepr, Fuse, Psdt, SglAddressing, SglRepr, SqeCommand, SqeRepr, Status,
};

use super::backend::SwIo;
use super::queue::{Capsule, DataRef, Queue};

/// An I/O command on a connected I/O queue.
pub(crate) async fn on_io(q: &mut Queue, c: &Capsule<'_>) {
    let cid = c.cid();
    *q.sh.lock().sw_io.entry(q.sub).or_insert(0) += 1;
    let (status, inval) = match SqeRepr::parse(&c.sqe) {
        Err(_) => {
            let psdt_sgl = c.sqe.psdt() != Psdt::Prp;
            if psdt_sgl && SglRepr::parse(&c.sqe.sgl1()).is_err() {
                (Status::SGL_DESCRIPTOR_TYPE_INVALID.with_dnr(), None)
            } else {
                (Status::INVALID_FIELD.with_dnr(), None)
            }
        }
        Ok(sqe) => serve(q, c, &sqe).await,
    };
    if q.dead {
        return;
    }
    if !status.is_success() {
        q.sh.log(format!(
            "sw-io-error subsystem={} qid={} opcode={:#04x} nsid={} status={:#05x}",
            q.sh.subs[q.sub].cfg.nqn,
            q.qid,
            c.sqe.opcode(),
            c.sqe.nsid(),
            status.code()
        ));
    }
    q.respond(cid, status, 0, inval).await;
}

enum Op {
    Read { slba: u64, blocks: u64 },
    Write { slba: u64, blocks: u64 },
    Flush,
    Zeroes { slba: u64, blocks: u64 },
    Dsm { ranges: usize, deallocate: bool },
}

async fn serve(q: &mut Queue, c: &Capsule<'_>, sqe: &SqeRepr) -> (Status, Option<u32>) {
    let dnr = |s: Status| (s.with_dnr(), None);
    if !sqe.psdt.is_sgl() || sqe.fuse != Fuse::Normal {
        return dnr(Status::INVALID_FIELD);
    }
    let op = match sqe.command {
        SqeCommand::Read(rw) | SqeCommand::Write(rw) if rw.prinfo != 0 => {
            return dnr(Status::INVALID_FIELD)
        }
        SqeCommand::Read(rw) => Op::Read {
            slba: rw.slba,
            blocks: u64::from(rw.blocks()),
        },
        SqeCommand::Write(rw) => Op::Write {
            slba: rw.slba,
            blocks: u64::from(rw.blocks()),
        },
        SqeCommand::Flush => Op::Flush,
        SqeCommand::WriteZeroes(wz) if wz.prinfo != 0 => return dnr(Status::INVALID_FIELD),
        SqeCommand::WriteZeroes(wz) => Op::Zeroes {
            slba: wz.slba,
            blocks: u64::from(wz.nlb) + 1,
        },
        SqeCommand::DatasetManagement(d) => Op::Dsm {
            ranges: d.ranges(),
            deallocate: d.ad,
        },
        SqeCommand::Other { .. } => return dnr(Status::INVALID_OPCODE),
    };
    let sh = q.sh.clone();
    let sub = &sh.subs[q.sub];
    if matches!(op, Op::Flush) && sqe.nsid == u32::MAX {
        // Broadcast Flush: every namespace of the subsystem (not one of them skipped).
        let backend = sh.lock().backends.get(&q.sub).map(|b| b.backend.clone());
        let Some(backend) = backend else {
            return (Status::NAMESPACE_NOT_READY, None);
        };
        for n in &sub.cfg.namespaces {
            match backend.io(n.nsid, SwIo::Flush).await {
                Ok(_) => {}
                Err(s) if s.same_code(Status::NAMESPACE_NOT_READY) => {}
                Err(_) => return (Status::INTERNAL_ERROR, None),
            }
        }
        return (Status::SUCCESS, None);
    }
    let Some(ns) = sub.cfg.namespaces.iter().find(|n| n.nsid == sqe.nsid) else {
        return dnr(Status::INVALID_NAMESPACE);
    };
    let (backend, offline) = {
        let st = sh.lock();
        (
            st.backends.get(&q.sub).map(|b| b.backend.clone()),
            st.ns_offline.get(&(q.sub, ns.nsid)).copied(),
        )
    };
    if offline.is_some() {
        return dnr(Status::NAMESPACE_NOT_READY);
    }
    let Some(backend) = backend else {
        return (Status::NAMESPACE_NOT_READY, None);
    };
    let nsid = ns.nsid;
    let lba = u64::from(ns.lba_format.lba_data_size());
    let nblocks = ns.blocks();
    let in_range = |slba: u64, n: u64| slba.checked_add(n).is_some_and(|e| e <= nblocks);
    let icdoff = usize::from(sub.attrs.icdoff) * 16;
    let not_ready = (Status::NAMESPACE_NOT_READY, None);
    // A transfer above the subsystem's MDTS is Invalid Field (NVMe base 2.0, MDTS).
    if let Op::Read { blocks, .. } | Op::Write { blocks, .. } = op {
        if blocks.saturating_mul(lba) > sub.mdts {
            return dnr(Status::INVALID_FIELD);
        }
    }
    match op {
        Op::Read { slba, blocks } => {
            if !in_range(slba, blocks) {
                return dnr(Status::LBA_OUT_OF_RANGE);
            }
            let len = blocks * lba;
            // Data to the host never travels in the capsule (checked before offsets).
            if let Ok(SglRepr::DataBlock {
                addressing: SglAddressing::Offset,
                ..
            }) = SglRepr::parse(&c.sqe.sgl1())
            {
                return dnr(Status::INVALID_FIELD);
            }
            let (addr, key, invalidate) = match q.data_ref(c, icdoff) {
                Err(s) => return (s, None),
                Ok(Some(DataRef::Keyed {
                    addr,
                    key,
                    len: l,
                    invalidate,
                })) => {
                    if u64::from(l) != len {
                        return dnr(Status::DATA_SGL_LENGTH_INVALID);
                    }
                    (addr, key, invalidate)
                }
                Ok(_) => return dnr(Status::INVALID_FIELD),
            };
            if len > q.data_mr.len {
                return dnr(Status::INVALID_FIELD);
            }
            let data = match backend.io(nsid, SwIo::Read { slba, blocks }).await {
                Err(s) => return (s, None),
                Ok(d) => d,
            };
            if !q.rdma_write(addr, key, &data).await {
                return (Status::DATA_TRANSFER_ERROR, None);
            }
            (Status::SUCCESS, invalidate.then_some(key))
        }
        Op::Write { slba, blocks } => {
            if !in_range(slba, blocks) {
                return dnr(Status::LBA_OUT_OF_RANGE);
            }
            let len = blocks * lba;
            let (data, inval) = match fetch(q, c, icdoff, len).await {
                Ok(x) => x,
                Err(s) => return (s, None),
            };
            match backend.io(nsid, SwIo::Write { slba, data: &data }).await {
                Err(s) if s.same_code(Status::NAMESPACE_NOT_READY) => not_ready,
                Err(s) => (s, inval),
                Ok(_) => (Status::SUCCESS, inval),
            }
        }
        Op::Flush => match backend.io(nsid, SwIo::Flush).await {
            Err(s) => (s, None),
            Ok(_) => (Status::SUCCESS, None),
        },
        Op::Zeroes { slba, blocks } => {
            if !in_range(slba, blocks) {
                return dnr(Status::LBA_OUT_OF_RANGE);
            }
            match backend.io(nsid, SwIo::Zeroes { slba, blocks }).await {
                Err(s) => (s, None),
                Ok(_) => (Status::SUCCESS, None),
            }
        }
        Op::Dsm { ranges, deallocate } => {
            let (raw, inval) = match fetch(q, c, icdoff, 16 * ranges as u64).await {
                Ok(x) => x,
                Err(s) => return (s, None),
            };
            let list: Vec<(u64, u64)> = DsmRangeRepr::parse_list(&raw, ranges)
                .unwrap_or_default()
                .iter()
                .map(|r| (r.slba, u64::from(r.nlb)))
                .collect();
            if list.iter().any(|&(s, n)| !in_range(s, n)) {
                return (Status::LBA_OUT_OF_RANGE.with_dnr(), inval);
            }
            if !deallocate {
                return (Status::SUCCESS, inval);
            }
            match backend.io(nsid, SwIo::Deallocate { ranges: &list }).await {
                Err(s) if s.same_code(Status::NAMESPACE_NOT_READY) => not_ready,
                Err(s) => (s, inval),
                Ok(_) => (Status::SUCCESS, inval),
            }
        }
    }
}

/// The host-to-target data of a command, `len` bytes: RDMA READ (keyed) or the capsule.
/// Returns the data and the key to invalidate with the response.
async fn fetch(
    q: &mut Queue,
    c: &Capsule<'_>,
    icdoff: usize,
    len: u64,
) -> Result<(Vec<u8>, Option<u32>), Status> {
    match q.data_ref(c, icdoff)? {
        Some(DataRef::Keyed {
            addr,
            key,
            len: l,
            invalidate,
        }) => {
            if u64::from(l) != len {
                return Err(Status::DATA_SGL_LENGTH_INVALID.with_dnr());
            }
            if len > q.data_mr.len {
                return Err(Status::INVALID_FIELD.with_dnr());
            }
            match q.rdma_read(addr, key, l).await {
                Some(d) => Ok((d, invalidate.then_some(key))),
                None => Err(Status::DATA_TRANSFER_ERROR),
            }
        }
        Some(DataRef::InCapsule { start, len: l }) => {
            if u64::from(l) != len {
                return Err(Status::DATA_SGL_LENGTH_INVALID.with_dnr());
            }
            Ok((c.bytes[start..start + l as usize].to_vec(), None))
        }
        None => Err(Status::DATA_SGL_LENGTH_INVALID.with_dnr()),
    }
}
