//! Area `datapath`: offloaded reads, writes, flush, write zeroes and DSM on a connected
//! queue, data compared, in every LBA format and SGL kind; the device answers without
//! software, and its counters account for every command.

use std::time::Duration;

use harness::api::{NsCounters, OffloadOps};
use harness::backend::emulated::LbaFormat;
use harness::fabric::Access;
use harness::initiator::{misbehave, Command, DataMode};
use harness::wire::{RwCommand, SglRepr, SqeCommand, SqeRepr, Status};

use crate::framework::counters::{self, BackendDid, Sent};
use crate::framework::session::{pattern, Session, SessionOpts, FE_NSID};
use crate::framework::{blame, wait, Case, CaseResult, Dut, Failure, Need};
use crate::{check, check_eq};

const PORT: u16 = 4420;
const RW: OffloadOps = OffloadOps::READ.union(OffloadOps::WRITE);

pub(crate) use crate::framework::backends::SLOW_BACKEND;
pub(crate) use crate::framework::failure::ok_status;

/// Nothing the host sent reached software.
pub(crate) fn nothing_for_software(d: &Dut, s: &Session) -> Result<(), Failure> {
    let wcs = d.ctx.poll_cq(s.cq, 64)?;
    check!(
        wcs.is_empty(),
        "software received {} completion(s) for offloaded I/O",
        wcs.len()
    );
    Ok(())
}

async fn write_read(d: Dut, format: LbaFormat, mode: DataMode) -> Result<(), Failure> {
    let mut s = d
        .session(
            &SessionOpts {
                format,
                ..Default::default()
            },
            PORT,
        )
        .await?;
    let bs = format.lba_data_size() as usize;
    let per_cmd = ((d.caps.max_io_sz as usize).min(64 * 1024) / bs).max(1);
    let mut slba = 0u64;
    let mut total = 0usize;
    let mut cmds = 0u64;
    while total < 256 * 1024 {
        let data = pattern(per_cmd * bs, slba as u8);
        let w = s.io.write(slba, &data, mode).await?;
        ok_status("write", w.cqe.status)?;
        let r = s.io.read(slba, per_cmd as u32, mode).await?;
        ok_status("read", r.cqe.status)?;
        check!(
            r.data == data,
            "data read back at slba {slba} differs from what was written"
        );
        if mode == DataMode::KeyedInvalidate {
            check_eq!(
                r.invalidated_rkey,
                r.rkey,
                "0x4F read answered with SEND with invalidate"
            );
        }
        slba += per_cmd as u64;
        total += data.len();
        cmds += 1;
    }
    settle().await;
    let k = d.provider.ns_counters(s.ctrl, FE_NSID)?;
    check_eq!(
        (k.write_cmds, k.read_cmds),
        (cmds, cmds),
        "offloaded write/read commands counted"
    );
    check_eq!(
        (k.write_blocks, k.read_blocks),
        (slba, slba),
        "blocks counted"
    );
    check_eq!(k.error_cmds, 0, "error commands");
    nothing_for_software(&d, &s)
}

/// The commands that leave blocks reading as zeroes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zeroing {
    WriteZeroes,
    Deallocate,
}

/// Writes 8 blocks, zeroes them with `how`, and checks they read back as zeroes (after a
/// Deallocate on a real controller: each as zeroes or as written, the attribute being
/// advisory).
async fn zeroes_after(d: Dut, how: Zeroing) -> Result<(), Failure> {
    let f = d.ns_format();
    let opts = SessionOpts {
        format: f,
        ..Default::default()
    };
    let mut s = d.session(&opts, PORT).await?;
    let bs = f.lba_data_size() as usize;
    let written = pattern(8 * bs, 2);
    let w = s.io.write(16, &written, DataMode::Keyed).await?;
    ok_status("write", w.cqe.status)?;
    let c = match how {
        Zeroing::WriteZeroes => s.io.write_zeroes(16, 8).await?,
        Zeroing::Deallocate => {
            s.io.dataset_management(&[(0, 8, 16)], true, DataMode::Keyed)
                .await?
        }
    };
    ok_status(&format!("{how:?}"), c.cqe.status)?;
    let r = s.io.read(16, 8, DataMode::Keyed).await?;
    ok_status("read back", r.cqe.status)?;
    if how == Zeroing::Deallocate && s.backend.is_real() {
        // A real controller may keep blocks it is asked to deallocate (the attribute is
        // advisory): each reads back as zeroes or as written, nothing else.
        for (i, got) in r.data.chunks(bs).enumerate() {
            let written = &written[i * bs..(i + 1) * bs];
            check!(
                got.iter().all(|b| *b == 0) || got == written,
                "block {} after Deallocate is neither zeroes nor the data written before",
                16 + i
            );
        }
    } else {
        check!(
            r.data.iter().all(|b| *b == 0),
            "blocks not zero after {how:?}"
        );
    }
    nothing_for_software(&d, &s)
}

/// Sends `n` flushes at once, then waits for each answer in order: every one a success,
/// and the flushes counted. With `wrapped_after: Some(k)`, the answers from the `k`th on
/// came through a backend queue that has wrapped, and a failure there is blamed on
/// `DP-QUEUE-WRAP`.
async fn full_queue_of_flushes(
    d: &Dut,
    s: &mut Session,
    n: usize,
    wrapped_after: Option<usize>,
) -> CaseResult {
    let cids = misbehave::overrun_sqsize(s.io.queue(), FE_NSID, n)?;
    for (i, cid) in cids.into_iter().enumerate() {
        if Some(i) == wrapped_after {
            blame::checking("DP-QUEUE-WRAP");
        }
        let r =
            s.io.queue()
                .wait_response(cid, wait(Duration::from_secs(5)))
                .await?;
        ok_status("flush", r.cqe.status)?;
    }
    counted(d, s, |k| k.flush_cmds, n as u64, "flushes counted").await
}

/// The counters of `n` one-block in-capsule writes, each read back with one one-block read.
pub(crate) fn in_capsule_counters(n: u64) -> NsCounters {
    NsCounters {
        read_cmds: n,
        read_blocks: n,
        write_cmds: n,
        write_blocks: n,
        write_inline_cmds: n,
        write_inline_blocks: n,
        ..NsCounters::default()
    }
}

/// Why a case that counts the backend's commands runs on emulated controllers only.
pub(crate) const COUNTED: &str = "counts what the backend controller fetched and completed \
     (QEMU's controller exposes no such counters)";

/// Lets the last acknowledgements of the fabric arrive.
pub(crate) async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Once the device settled ([`settle`]), the namespace counters are those of `n`
/// in-capsule writes and `n` keyed reads ([`in_capsule_counters`]); `what` says after what.
pub(crate) async fn in_capsule_counted(d: &Dut, s: &Session, n: u64, what: &str) -> CaseResult {
    settle().await;
    let k = d.provider.ns_counters(s.ctrl, FE_NSID)?;
    check_eq!(
        k,
        in_capsule_counters(n),
        "the namespace counters after {what}"
    );
    Ok(())
}

/// Once the device settled ([`settle`]), the namespace counter `counter` reads `n`; `what`
/// names it.
async fn counted(
    d: &Dut,
    s: &Session,
    counter: fn(&NsCounters) -> u64,
    n: u64,
    what: &str,
) -> CaseResult {
    settle().await;
    check_eq!(
        counter(&d.provider.ns_counters(s.ctrl, FE_NSID)?),
        n,
        "{what}"
    );
    Ok(())
}

/// Writes one block with in-capsule data and reads it back: offloaded, counted, and nothing
/// for software. With `stale_reserved`, the write is sent as a raw capsule whose Data Block
/// descriptor has stale bytes in reserved bytes 14:12, as Linux hosts send.
async fn in_capsule_write(d: Dut, stale_reserved: bool) -> CaseResult {
    let (mut s, bs) = in_capsule_session(&d).await?;
    let (slba, seed) = if stale_reserved { (4, 6) } else { (3, 5) };
    let data = pattern(bs as usize, seed);
    if stale_reserved {
        let q = s.io.queue();
        let cid = q.alloc_cid();
        let sqe = misbehave::write_sqe(cid, FE_NSID, slba, 1, SglRepr::in_capsule(0, bs))?;
        let mut capsule = sqe.to_vec();
        // What nvme_rdma_map_sg_inline leaves there: bytes of an earlier keyed SGL's key.
        capsule[36..39].copy_from_slice(&[0x5a, 0x3c, 0x0f]);
        capsule.extend_from_slice(&data);
        misbehave::send_raw(q, &capsule)?;
        let r = q.wait_response(cid, wait(Duration::from_secs(5))).await?;
        ok_status("in-capsule write with stale reserved bytes", r.cqe.status)?;
    } else {
        let w = s.io.write(slba, &data, DataMode::InCapsule).await?;
        ok_status("in-capsule write", w.cqe.status)?;
    }
    let r = s.io.read(slba, 1, DataMode::Keyed).await?;
    check!(
        r.data == data,
        "the in-capsule data did not reach the namespace"
    );
    in_capsule_counted(&d, &s, 1, "one in-capsule write and one read").await?;
    nothing_for_software(&d, &s)
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for format in LbaFormat::SUPPORTED {
        let size = format.lba_data_size();
        let name = if format.meta == 0 {
            format!("{}", format.data)
        } else {
            format!("{}+{}", format.data, format.meta)
        };
        v.push(Case::new(
            "datapath",
            format!("write-read.lba-{}", name.replace('+', "-")),
            "DP-OFFLOAD-RW",
            format!("offloaded writes then reads of 256 KiB in LBA format {name} return the data written"),
            &[Need::Ops(RW), Need::Backends, Need::LbaSize(size)],
            move |d| write_read(d, format, DataMode::Keyed),
        ));
    }
    v.push(Case::new(
        "datapath",
        "backend-once",
        "DP-BACKEND-ONCE",
        "eight one-block writes, then eight reads (whichever the device offloads), reach the \
         backend controller once each: it fetches and completes exactly that many commands, \
         none with an error, and no doorbell is rung past a queue's end",
        &[
            Need::AnyOps(RW),
            Need::Backends,
            Need::EmulatedBackend(COUNTED),
        ],
        |d| async move {
            let mut s = d.default_session(PORT).await?;
            let bs = d.ns_format().lba_data_size() as usize;
            let (writes, reads) = (
                d.caps.offload_ops_allowed(OffloadOps::WRITE),
                d.caps.offload_ops_allowed(OffloadOps::READ),
            );
            let before = (s.counters(&d)?, s.backend.emulated()?.counters()?);
            for slba in 0..8u64 {
                if writes {
                    let w =
                        s.io.write(slba, &pattern(bs, 60 + slba as u8), DataMode::Keyed)
                            .await?;
                    ok_status(&format!("the write of block {slba}"), w.cqe.status)?;
                }
            }
            for slba in 0..8u64 {
                if reads {
                    let r = s.io.read(slba, 1, DataMode::Keyed).await?;
                    ok_status(&format!("the read of block {slba}"), r.cqe.status)?;
                    check!(
                        !writes || r.data == pattern(bs, 60 + slba as u8),
                        "block {slba} reads back other data than was written"
                    );
                }
            }
            let n = |on: bool| if on { 8 } else { 0 };
            counters::moved(
                &before.0,
                &s.counters(&d)?,
                Sent {
                    reads: n(reads),
                    writes: n(writes),
                    errors: 0,
                },
            )?;
            let did = BackendDid {
                commands: n(reads) + n(writes),
                ..BackendDid::default()
            };
            counters::backend_moved(&before.1, &s.backend.emulated()?.counters()?, did)
        },
    ));
    v.push(Case::new(
        "datapath",
        "keyed-invalidate",
        "DP-SEND-INV",
        "a 0x4F keyed SGL is answered with SEND with invalidate of the host's key",
        &[Need::Ops(RW), Need::Backends, Need::InvalidatePlainMr],
        |d| async move {
            let f = d.ns_format();
            write_read(d, f, DataMode::KeyedInvalidate).await
        },
    ));
    for (stale_reserved, id, requirement, description) in [
        (
            false,
            "in-capsule-write",
            "DP-IN-CAPSULE",
            "a write of one block with in-capsule data is offloaded and reads back",
        ),
        (
            true,
            "in-capsule-write.stale-sgl-reserved",
            "DP-IN-CAPSULE-LINUX",
            "an in-capsule write whose Data Block descriptor has stale bytes in reserved bytes 14:12, as Linux hosts send, is offloaded like any other",
        ),
    ] {
        v.push(Case::new(
            "datapath",
            id,
            requirement,
            description,
            &[Need::Ops(RW), Need::Backends, Need::InCapsuleBlock],
            move |d| in_capsule_write(d, stale_reserved),
        ));
    }
    v.push(Case::new(
        "datapath",
        "flush",
        "DP-OFFLOAD-FLUSH",
        "an offloaded flush succeeds and is counted",
        &[Need::Ops(OffloadOps::FLUSH), Need::Backends],
        |d| async move {
            let mut s = d.default_session(PORT).await?;
            let c = s.io.flush().await?;
            ok_status("flush", c.cqe.status)?;
            counted(&d, &s, |k| k.flush_cmds, 1, "flushes counted").await?;
            nothing_for_software(&d, &s)
        },
    ));
    for (how, id, requirement, description, op) in [
        (
            Zeroing::WriteZeroes,
            "write-zeroes",
            "DP-OFFLOAD-WZ",
            "an offloaded write zeroes makes the blocks read back as zeroes",
            OffloadOps::WRITE_ZEROES,
        ),
        (
            Zeroing::Deallocate,
            "dsm-deallocate",
            "DP-OFFLOAD-DSM",
            "an offloaded dataset management deallocate makes the range read back as zeroes (a real controller, which may keep blocks it is asked to deallocate, as zeroes or as written)",
            OffloadOps::DATASET_MGMT,
        ),
    ] {
        v.push(Case::new(
            "datapath",
            id,
            requirement,
            description,
            &[Need::Ops(RW | op), Need::Backends],
            move |d| zeroes_after(d, how),
        ));
    }
    v.push(Case::new(
        "datapath",
        "max-io-sz.exact",
        "DP-MAX-IO",
        "a read of exactly max_io_sz is offloaded",
        &[Need::Ops(RW), Need::Backends],
        |d| async move {
            let f = d.ns_format();
            let mut s = d.default_session(PORT).await?;
            let blocks = s.attrs.max_io_sz / f.lba_data_size();
            check!(blocks > 0, "max_io_sz below one block");
            let r = s.io.read(0, blocks, DataMode::Keyed).await?;
            ok_status("read of max_io_sz", r.cqe.status)?;
            counted(&d, &s, |k| k.read_cmds, 1, "offloaded reads").await?;
            nothing_for_software(&d, &s)
        },
    ));
    v.push(Case::new(
        "datapath",
        "max-io-sz.plus-one-block",
        "DP-MAX-IO",
        "a read one block past max_io_sz is not offloaded: software receives it",
        &[Need::Ops(RW), Need::Backends, Need::NonOffloadedOps],
        |d| async move {
            let f = d.ns_format();
            let mut s = d.default_session(PORT).await?;
            let blocks = s.attrs.max_io_sz / f.lba_data_size() + 1;
            let sqe = misbehave::read_sqe(
                7,
                FE_NSID,
                0,
                blocks,
                SglRepr::keyed(0x1000, blocks * f.lba_data_size(), 0x55),
            )?;
            misbehave::send_raw(s.io.queue(), &sqe)?;
            let wc = harness::fabric::wait::completion(
                d.ctx.as_ref(),
                s.cq,
                crate::framework::wait(Duration::from_secs(5)),
            )
            .await?;
            check_eq!(
                wc.status,
                harness::fabric::WcStatus::Success,
                "software receive"
            );
            check_eq!(wc.qp, s.qp, "receive on the session's QP");
            counted(&d, &s, |k| k.read_cmds, 0, "offloaded reads").await
        },
    ));
    v.push(Case::new(
        "datapath",
        "queue-depth-full",
        "DP-QUEUE-DEPTH",
        "a full queue of flushes in flight is answered, every one",
        &[Need::Ops(OffloadOps::FLUSH), Need::Backends],
        |d| async move {
            let mut s = d.default_session(PORT).await?;
            let n = 31usize;
            full_queue_of_flushes(&d, &mut s, n, None).await
        },
    ));
    v.push(Case::new(
        "datapath",
        "backend-queue-full",
        "DP-QUEUE-DEPTH",
        "a full host queue (32) on a backend controller whose queues hold 4 entries, with a \
         slow backend: far more commands are in flight than the backend queue holds (the \
         device must hold the rest until entries free up), and every one is answered with \
         success and counted",
        &[
            Need::Ops(OffloadOps::FLUSH),
            Need::Backends,
            Need::EmulatedBackend(SLOW_BACKEND),
        ],
        |d| async move {
            let opts = SessionOpts {
                format: d.ns_format(),
                depth: 32,
                backend_depth: 4,
                ..Default::default()
            };
            let mut s = d.session(&opts, PORT).await?;
            s.backend
                .inject_emulated(harness::backend::emulated::Fault::SlowCompletions {
                    delay: Duration::from_millis(20),
                })?;
            let n = usize::from(opts.depth) - 1;
            let backend_depth = s.attrs.nvme_queue_depth as usize;
            full_queue_of_flushes(&d, &mut s, n, Some(backend_depth - 1)).await
        },
    ));
    v.push(Case::new(
        "datapath",
        "queue-wrap",
        "DP-QUEUE-WRAP",
        "commands keep being served after the backend queues wrap several times (flushes, \
         or one-block writes on a device that does not offload flush)",
        &[
            Need::AnyOps(OffloadOps::FLUSH.union(OffloadOps::WRITE)),
            Need::Backends,
        ],
        |d| async move {
            let mut s = d.default_session(PORT).await?;
            let flush = d.caps.offload_ops_allowed(OffloadOps::FLUSH);
            let what = if flush { "flush" } else { "write" };
            let depth = u64::from(s.attrs.nvme_queue_depth);
            let n = 4 * depth + 3;
            let data = pattern(d.ns_format().lba_data_size() as usize, 5);
            for i in 0..n {
                if i == depth {
                    // From here on the backend queues have wrapped.
                    blame::checking("DP-QUEUE-WRAP");
                }
                let c = if flush {
                    s.io.flush().await
                } else {
                    s.io.write(i % 8, &data, DataMode::Keyed).await
                };
                let c = c.map_err(|e| Failure::from(e).context(format!("{what} {i} of {n}")))?;
                ok_status(what, c.cqe.status)?;
            }
            let counter: fn(&NsCounters) -> u64 = if flush {
                |k| k.flush_cmds
            } else {
                |k| k.write_cmds
            };
            counted(&d, &s, counter, n, &format!("{what}s counted")).await
        },
    ));
    v.extend(super::staging_exhaustion::cases());
    v.push(Case::new(
        "datapath",
        "lba-out-of-range",
        "DP-BACKEND-STATUS",
        "an offloaded read past the namespace end is answered with the backend's LBA Out of Range",
        &[Need::Ops(RW), Need::Backends],
        |d| async move {
            let mut s = d.default_session(PORT).await?;
            let r = s.io.read(s.backend.blocks(), 1, DataMode::Keyed).await?;
            check_eq!(
                r.cqe.status,
                Status::LBA_OUT_OF_RANGE.with_dnr(),
                "the whole status of a read past the end (DNR: no retry reaches the block)"
            );
            check!(
                r.data.iter().all(|b| *b == 0),
                "a read past the end delivered data"
            );
            settle().await;
            let sent = Sent {
                reads: 1,
                writes: 0,
                errors: 1,
            };
            counters::moved(&NsCounters::default(), &s.counters(&d)?, sent)?;
            d.no_event("DP-BACKEND-STATUS", "a backend's error status")
                .await
        },
    ));
    v.push(Case::new(
        "datapath",
        "every-command-answered",
        "DP-ANSWERED",
        "one write, read and flush (those the device offloads) are each answered exactly once, \
         with success and nothing else in the status or the result",
        &[Need::AnyOps(OffloadOps::READ_WRITE_FLUSH), Need::Backends],
        |d| async move {
            let mut s = d.default_session(PORT).await?;
            let ops = d.caps.allowed_offload_ops();
            let bs = d.ns_format().lba_data_size() as usize;
            let data = pattern(bs, 77);
            let mut answered = Vec::new();
            if ops.contains(OffloadOps::WRITE) {
                answered.push(("write", s.io.write(3, &data, DataMode::Keyed).await?.cqe));
            }
            if ops.contains(OffloadOps::READ) {
                let r = s.io.read(3, 1, DataMode::Keyed).await?;
                if ops.contains(OffloadOps::WRITE) {
                    check!(r.data == data, "the read's data differs from the write's");
                }
                answered.push(("read", r.cqe));
            }
            if ops.contains(OffloadOps::FLUSH) {
                answered.push(("flush", s.io.flush().await?.cqe));
            }
            for (what, cqe) in &answered {
                check_eq!(
                    cqe.status,
                    Status::SUCCESS,
                    "the {what}'s whole status (no DNR, More, CRD)"
                );
                check_eq!(
                    cqe.result,
                    0,
                    "the {what}'s result (DW0, DW1: reserved for I/O)"
                );
            }
            settle().await;
            let extra = s.io.queue().take_any_response()?;
            check!(
                extra.is_none(),
                "a response nobody waited for arrived: {:?}",
                extra.map(|r| r.cqe)
            );
            nothing_for_software(&d, &s)
        },
    ));
    v.push(Case::new(
        "datapath",
        "out-of-order",
        "DP-RESPONSE",
        "a read held at the backend is answered after a later read: each response keeps its \
         command's CID, whole status and its own data",
        &[
            Need::Ops(OffloadOps::READ),
            Need::Backends,
            Need::EmulatedBackend(
                "holds a chosen read at the backend while later ones complete and puts data on \
             the media behind the device (not wired to QEMU's controller yet)",
            ),
        ],
        |d| async move {
            // A command timeout the caps allow, well above the hold.
            let timeout_us = match d.caps.max_cmd_timeout_us {
                0 => 5_000_000,
                max => max.min(5_000_000),
            }
            .max(d.caps.min_cmd_timeout_us);
            let hold = Duration::from_micros(u64::from(timeout_us) / 5);
            let opts = SessionOpts {
                format: d.ns_format(),
                cmd_timeout_us: timeout_us,
                ..Default::default()
            };
            let mut s = d.session(&opts, PORT).await?;
            let bs = d.ns_format().lba_data_size();
            let blocks = [pattern(bs as usize, 0xa1), pattern(bs as usize, 0xb2)];
            for (i, b) in blocks.iter().enumerate() {
                s.backend.emulated()?.write_blocks(i as u64, b)?;
            }
            // The first read fetched from now on completes `hold` late.
            s.backend
                .inject_emulated(harness::backend::emulated::Fault::Timeout {
                    on: harness::backend::emulated::CmdMatch::Nth(1),
                    delay: Some(hold),
                })?;
            let q = s.io.queue();
            let access = Access::LOCAL_WRITE | Access::REMOTE_WRITE;
            let mr = q.ctx().reg_mr(q.pd(), 2 * u64::from(bs), access)?;
            let mut cids = Vec::new();
            for i in 0..2u32 {
                let command = SqeCommand::Read(RwCommand::new(u64::from(i), 1));
                let sgl = SglRepr::keyed(mr.addr + u64::from(i * bs), bs, mr.rkey);
                cids.push(q.submit(
                    &Command::Nvme {
                        nsid: FE_NSID,
                        command,
                    },
                    sgl,
                    &[],
                )?);
            }
            let late = q
                .wait_response(cids[1], wait(Duration::from_secs(5)))
                .await?;
            check!(
                !q.arrived_cids().contains(&cids[0]),
                "the held read (cid {}) was answered before the later one",
                cids[0]
            );
            let held = q
                .wait_response(cids[0], wait(Duration::from_secs(5)))
                .await?;
            for (r, cid) in [(&late, cids[1]), (&held, cids[0])] {
                check_eq!(r.cqe.cid, cid, "response CID");
                check_eq!(r.cqe.status, Status::SUCCESS, "cid {cid}'s whole status");
                check_eq!(r.cqe.result, 0, "cid {cid}'s result");
            }
            for (i, want) in blocks.iter().enumerate() {
                let mut got = vec![0u8; bs as usize];
                q.ctx().mr_read(mr.id, u64::from(i as u32 * bs), &mut got)?;
                check!(
                    got == *want,
                    "block {i}: the data of one read landed in the other's buffer or was lost"
                );
            }
            Ok(())
        },
    ));
    v.push(Case::new(
        "datapath",
        "response-cid",
        "DP-RESPONSE",
        "each offloaded response carries its command's CID",
        &[Need::Ops(OffloadOps::FLUSH), Need::Backends],
        |d| async move {
            let mut s = d.default_session(PORT).await?;
            let q = s.io.queue();
            let sqe = SqeRepr::new(0x1234, FE_NSID, SqeCommand::Flush, SglRepr::keyed(0, 0, 0))
                .to_bytes()?;
            misbehave::send_raw(q, &sqe)?;
            let r = q
                .wait_response(0x1234, wait(Duration::from_secs(5)))
                .await?;
            check_eq!(r.cqe.cid, 0x1234, "response CID");
            ok_status("flush", r.cqe.status)
        },
    ));
    v
}

/// The smallest LBA format the device supports (and the backend emulates), and its block
/// size: the one a capsule most easily carries.
pub(crate) fn smallest_format(d: &Dut) -> Result<(LbaFormat, u32), Failure> {
    if let Some(real) = d.real_backend_facts() {
        return Ok((real.format, real.format.lba_data_size()));
    }
    let f = LbaFormat::SUPPORTED
        .into_iter()
        .filter(|f| d.caps.supports_lba_data_size(f.lba_data_size()))
        .min_by_key(|f| f.lba_data_size())
        .ok_or_else(|| Failure::new("no supported LBA format the backend emulates"))?;
    Ok((f, f.lba_data_size()))
}

/// A session in the smallest LBA format the device supports, whose queue takes one block of
/// it in-capsule; and that block size.
async fn in_capsule_session(d: &Dut) -> Result<(Session, u32), Failure> {
    let (f, bs) = smallest_format(d)?;
    let opts = SessionOpts {
        format: f,
        in_capsule: bs,
        ..Default::default()
    };
    Ok((d.session(&opts, PORT).await?, bs))
}
