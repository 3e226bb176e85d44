//! Area `datapath`, a QP torn down with commands in flight: what the device held for them
//! comes back, and the SRQ's other QPs do not notice.

use std::time::Duration;

use harness::api::{NsCounters, OffloadOps};
use harness::fabric::{Access, MrInfo};
use harness::initiator::{misbehave, HostQueue};
use harness::wire::SglRepr;

use crate::areas::datapath::{ok_status, settle};
use crate::framework::backends::EmulatedBackend;
use crate::framework::session::{pattern, SessionOpts, FE_NSID};
use crate::framework::{blame, wait, Case, CaseResult, Failure, Need};
use crate::{check, check_eq};

const PORT: u16 = 4420;
const RW: OffloadOps = OffloadOps::READ.union(OffloadOps::WRITE);
/// How late the slow backend completes each command.
const DELAY: Duration = Duration::from_millis(100);

/// A host buffer of `n` commands of `len` bytes, command `i` holding `pattern(len, seed + i)`.
fn host_buffer(q: &HostQueue, n: u64, len: u64, seed: u8) -> Result<MrInfo, Failure> {
    let host = q.ctx();
    let mr = host.reg_mr(
        q.pd(),
        n * len,
        Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE,
    )?;
    for i in 0..n {
        host.mr_write(
            mr.id,
            i * len,
            &pattern(len as usize, seed.wrapping_add(i as u8)),
        )?;
    }
    Ok(mr)
}

/// Sends `n` writes (`write`) or reads of `per` blocks each, command `i` at block `first +
/// i × per` with its data at `i × len` of `mr`; returns their CIDs.
fn send_all(
    q: &mut HostQueue,
    mr: &MrInfo,
    (first, n, per, len): (u64, u64, u64, u64),
    write: bool,
) -> Result<Vec<u16>, Failure> {
    let mut cids = Vec::new();
    for i in 0..n {
        let cid = q.alloc_cid();
        let sgl = SglRepr::keyed(mr.addr + i * len, len as u32, mr.rkey);
        let slba = first + i * per;
        let sqe = if write {
            misbehave::write_sqe(cid, FE_NSID, slba, per as u32, sgl)?
        } else {
            misbehave::read_sqe(cid, FE_NSID, slba, per as u32, sgl)?
        };
        misbehave::send_raw(q, &sqe)?;
        cids.push(cid);
    }
    Ok(cids)
}

/// Waits for a success answer to each of `cids`. An answer that never comes once `backend`
/// has taken more commands than its queue holds may be the wrap's fault: it is blamed on
/// `DP-QUEUE-WRAP`.
async fn answered(
    q: &mut HostQueue,
    cids: Vec<u16>,
    what: &str,
    backend: &EmulatedBackend,
    depth: u32,
) -> CaseResult {
    for (i, cid) in cids.into_iter().enumerate() {
        let r = q
            .wait_response(cid, wait(Duration::from_secs(5)))
            .await
            .map_err(|e| {
                if backend
                    .counters()
                    .is_ok_and(|c| c.commands >= u64::from(depth))
                {
                    blame::checking("DP-QUEUE-WRAP");
                }
                Failure::from(e).context(format!("{what} {i}"))
            })?;
        ok_status(&format!("{what} {i}"), r.cqe.status)?;
    }
    Ok(())
}

/// The cases of this file.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "datapath",
        "qp-destroyed-in-flight",
        "DP-QP-TEARDOWN",
        "software destroys a QP while its writes are in flight (fetching data, in a slow \
         backend, waiting for staging): a read in flight on another QP of the SRQ is still \
         answered with its data, and that QP is then served writes and reads needing the whole \
         staging buffer twice over: nothing the destroyed QP held stays taken",
        &[
            Need::Ops(RW),
            Need::Backends,
            Need::EmulatedBackend(super::datapath::SLOW_BACKEND),
        ],
        |d| async move {
            let opts = SessionOpts {
                format: d.ns_format(),
                // Deep enough (where the caps allow) that the backend queue need not wrap.
                backend_depth: 128,
                ..Default::default()
            };
            let mut a = d.session(&opts, PORT).await?;
            let (mut b, _, _) = d
                .connect_queue(&a.srq, a.pd, a.sw, &opts, PORT + 1)
                .await
                .map_err(|e| e.context("the second queue"))?;
            let depth = a.attrs.nvme_queue_depth;
            let bs = u64::from(opts.format.lba_data_size());
            let per = (u64::from(a.attrs.max_io_sz) / bs).max(1);
            let len = per * bs;
            // Twice what the staging buffer holds: half of them wait for staging, and all
            // of it would be lost if the device kept what those held.
            let n = (2 * a.attrs.staging_buf.len.div_ceil(len)).clamp(2, 30);
            let kept_lba = n * per;
            check!(
                kept_lba < crate::framework::dut::NS_BLOCKS,
                "namespace too small for {n} commands of {per} blocks"
            );
            // A block for the second queue's read, written before anything is slow.
            let kept = pattern(bs as usize, 99);
            let w = b
                .write(kept_lba, &kept, harness::initiator::DataMode::Keyed)
                .await?;
            ok_status("the second queue's first write", w.cqe.status)?;
            a.backend
                .inject_emulated(harness::backend::emulated::Fault::SlowCompletions {
                    // Scaled like every wait, so that on a slow fabric the teardown still
                    // comes while the backend holds the first writes.
                    delay: wait(DELAY),
                })?;

            let qa = a.io.queue();
            let a_mr = host_buffer(qa, n, len, 1)?;
            send_all(qa, &a_mr, (0, n, per, len), true)?;
            let qb = b.queue();
            let b_read = host_buffer(qb, 1, bs, 0)?;
            let read_cid = send_all(qb, &b_read, (kept_lba, 1, 1, bs), false)?;
            // Long enough for every capsule to arrive, well before the backend answers.
            tokio::time::sleep(wait(DELAY / 2)).await;
            d.ctx.destroy_qp(a.qp)?;

            // The other QP's read, in flight across the teardown.
            answered(
                qb,
                read_cid,
                "the second queue's read in flight across the teardown",
                a.backend.emulated()?,
                depth,
            )
            .await?;
            let mut got = vec![0u8; bs as usize];
            qb.ctx().mr_read(b_read.id, 0, &mut got)?;
            check!(got == kept, "the second queue's read returned other data");

            // Every command of the destroyed QP has left the slow backend by now.
            tokio::time::sleep(wait(DELAY * (n as u32 + 10))).await;
            blame::count();
            let before = d.provider.ns_counters(a.ctrl, FE_NSID)?;
            let b_mr = host_buffer(qb, n, len, 50)?;
            let cids = send_all(qb, &b_mr, (0, n, per, len), true)?;
            answered(
                qb,
                cids,
                "write on the remaining queue",
                a.backend.emulated()?,
                depth,
            )
            .await?;
            let back =
                qb.ctx()
                    .reg_mr(qb.pd(), n * len, Access::LOCAL_WRITE | Access::REMOTE_WRITE)?;
            let cids = send_all(qb, &back, (0, n, per, len), false)?;
            answered(
                qb,
                cids,
                "read on the remaining queue",
                a.backend.emulated()?,
                depth,
            )
            .await?;
            for i in 0..n {
                let mut got = vec![0u8; len as usize];
                qb.ctx().mr_read(back.id, i * len, &mut got)?;
                check!(
                    got == pattern(len as usize, 50u8.wrapping_add(i as u8)),
                    "read {i} of {n} on the remaining queue returned other data"
                );
            }
            settle().await;
            let after = d.provider.ns_counters(a.ctrl, FE_NSID)?;
            let moved = NsCounters {
                read_cmds: after.read_cmds - before.read_cmds,
                read_blocks: after.read_blocks - before.read_blocks,
                write_cmds: after.write_cmds - before.write_cmds,
                write_blocks: after.write_blocks - before.write_blocks,
                ..after
            };
            check_eq!(
                moved,
                NsCounters {
                    read_cmds: n,
                    read_blocks: n * per,
                    write_cmds: n,
                    write_blocks: n * per,
                    ..after
                },
                "the counters moved by the remaining queue's writes and reads"
            );
            check_eq!(
                after.error_cmds,
                before.error_cmds,
                "error commands counted"
            );
            Ok(())
        },
    )
    .racy(
        "which of the destroyed QP's writes reached the backend before the QP was destroyed \
         is timing",
    )]
}
