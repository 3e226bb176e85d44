//! Area `datapath`, the staging buffer run dry: reads in flight needing twice the staging
//! buffer all complete with their own data, commands waiting for staging rather than
//! overwriting it (registered by `datapath::cases()`, in its order).

use std::time::Duration;

use harness::api::OffloadOps;
use harness::initiator::{misbehave, DataMode};
use harness::wire::SglRepr;

use crate::check;
use crate::framework::backends::BackendFault;
use crate::framework::failure::ok_status;
use crate::framework::session::{pattern, SessionOpts, FE_NSID};
use crate::framework::{wait, Case, CaseResult, Dut, Need};

const PORT: u16 = 4420;
const RW: OffloadOps = OffloadOps::READ.union(OffloadOps::WRITE);

/// The cases, in the order `datapath::cases()` lists them.
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "datapath",
            "staging-exhaustion",
            "DP-STAGING",
            "reads in flight needing twice the staging buffer all complete with the right \
             data: commands wait for staging, nothing is overwritten",
            &[Need::Ops(RW), Need::Backends],
            |d| staging_exhaustion(d, None),
        ),
        Case::new(
            "datapath",
            "staging-exhaustion.slow-backend",
            "DP-STAGING",
            "the same with a backend that completes each command 20 ms late (a real \
             controller: its drive throttled to 50 commands a second), so that many commands \
             wait for staging at once: every one completes with its own data",
            &[Need::Ops(RW), Need::Backends, Need::BackendFaults],
            |d| staging_exhaustion(d, Some(Duration::from_millis(20))),
        ),
    ]
}

/// Reads needing twice the staging buffer, all sent at once; with `slow`, the backend
/// completes each command that late (so commands pile up waiting for staging).
async fn staging_exhaustion(d: Dut, slow: Option<Duration>) -> CaseResult {
    let f = d.ns_format();
    let opts = SessionOpts {
        format: f,
        ..Default::default()
    };
    let mut s = d.session(&opts, PORT).await?;
    if let Some(delay) = slow {
        s.backend.inject(BackendFault::Slow { delay }).await?;
    }
    let bs = u64::from(f.lba_data_size());
    let per = (u64::from(s.attrs.max_io_sz) / bs).max(1);
    let len = per * bs;
    let n = (2 * s.attrs.staging_buf.len).div_ceil(len).clamp(2, 30);
    check!(
        n * per <= s.backend.blocks(),
        "namespace too small for {n} commands"
    );
    for i in 0..n {
        let w =
            s.io.write(i * per, &pattern(len as usize, i as u8), DataMode::Keyed)
                .await?;
        ok_status("write", w.cqe.status)?;
    }
    let q = s.io.queue();
    let host = q.ctx().clone();
    let mr = host.reg_mr(
        q.pd(),
        n * len,
        harness::fabric::Access::LOCAL_WRITE | harness::fabric::Access::REMOTE_WRITE,
    )?;
    let mut cids = Vec::new();
    for i in 0..n {
        let cid = q.alloc_cid();
        let sgl = SglRepr::keyed(mr.addr + i * len, len as u32, mr.rkey);
        let sqe = misbehave::read_sqe(cid, FE_NSID, i * per, per as u32, sgl)?;
        misbehave::send_raw(q, &sqe)?;
        cids.push(cid);
    }
    for cid in cids {
        let r = q.wait_response(cid, wait(Duration::from_secs(5))).await?;
        ok_status("read", r.cqe.status)?;
    }
    for i in 0..n {
        let mut got = vec![0u8; len as usize];
        host.mr_read(mr.id, i * len, &mut got)?;
        check!(
            got == pattern(len as usize, i as u8),
            "read {i} of {n} returned other data"
        );
    }
    Ok(())
}
