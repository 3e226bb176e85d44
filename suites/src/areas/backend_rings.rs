//! `datapath.backend-rings`, a datapath case in its own file: the device drives every SQ of
//! a backend controller (its extra SQs too) and starts each backend ring — every SQ's tail,
//! the CQ's head — at the initial doorbell value it was given, then keeps serving through
//! several wraps of each ring.
//!
//! The initial values are chosen so that the first two commands of every SQ (the device
//! going round them) and their completions fill the rings up to their ends without
//! wrapping: a failure there breaks `DP-BACKEND-RINGS`; later ones happen across wraps,
//! `DP-QUEUE-WRAP`'s rule.

use harness::api::OffloadOps;
use harness::initiator::DataMode;

use crate::areas::datapath::{ok_status, settle};
use crate::framework::session::{pattern, SessionOpts, FE_NSID};
use crate::framework::{blame, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const PORT: u16 = 4420;

/// The cases of this file (area `datapath`).
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "datapath",
        "backend-rings",
        "DP-BACKEND-RINGS",
        "on a backend controller with extra SQs whose SQ tail doorbells start two entries \
         before the end of their rings and whose CQ head doorbell starts as far from its end \
         as two commands per SQ fill, one-block writes (and reads, if offloaded) are served \
         through three wraps of every ring: each succeeds, data reads back, and the device \
         and the backend count every command",
        &[
            Need::Backends,
            Need::ExtraSqs,
            Need::Ops(OffloadOps::WRITE),
            Need::EmulatedBackend(
                "starts extra SQs' doorbells mid-ring and counts completions (a real \
                 controller's queue pair has one SQ, its doorbells from 0, and no counters)",
            ),
        ],
        |d: Dut| async move {
            let depth = 8u32.clamp(
                d.caps.min_nvme_queue_depth.max(4),
                d.caps.max_nvme_queue_depth.max(4),
            );
            let extra = d.caps.max_extra_sqs.min(2) as u16;
            // Two commands per SQ before any ring wraps.
            let first = 2 * (1 + u64::from(extra));
            let opts = SessionOpts {
                format: d.ns_format(),
                depth: 16,
                backend_depth: depth as u16,
                extra_sqs: extra,
                sq_doorbell_ini: depth as u16 - 2,
                cq_doorbell_ini: (u64::from(depth) - first) as u16,
                ..Default::default()
            };
            let mut s = d.session(&opts, PORT).await?;
            check_eq!(
                s.attrs.nvme_queue_depth,
                depth,
                "the SRQ's backend queue depth"
            );
            let lba = d.ns_format().lba_data_size() as usize;
            let n = 3 * u64::from(depth) * (1 + u64::from(extra)) + 3;
            let before = s.backend.emulated()?.counters()?.completions;
            // A write that goes unanswered before any ring wrapped breaks this case's rule,
            // after that the wrap's; the reads below are past every first use.
            let scope = blame::under("DP-BACKEND-RINGS");
            for i in 0..n {
                if i == first {
                    blame::checking("DP-QUEUE-WRAP");
                }
                let c =
                    s.io.write(i, &pattern(lba, i as u8), DataMode::Keyed)
                        .await
                        .map_err(|e| Failure::from(e).context(format!("write {i} of {n}")))?;
                ok_status(&format!("write {i} of {n}"), c.cqe.status)?;
            }
            drop(scope);
            let reads = d.caps.offload_ops_allowed(OffloadOps::READ);
            if reads {
                for i in 0..n {
                    let c =
                        s.io.read(i, 1, DataMode::Keyed)
                            .await
                            .map_err(|e| Failure::from(e).context(format!("read {i} of {n}")))?;
                    ok_status(&format!("read {i} of {n}"), c.cqe.status)?;
                    check!(
                        c.data == pattern(lba, i as u8),
                        "block {i}: data read back differs from data written"
                    );
                }
            }
            settle().await;
            let k = d.provider.ns_counters(s.ctrl, FE_NSID)?;
            let r = if reads { n } else { 0 };
            check_eq!(
                (k.write_cmds, k.read_cmds),
                (n, r),
                "(writes, reads) counted"
            );
            check_eq!(
                s.backend.emulated()?.counters()?.completions - before,
                n + r,
                "completions the backend posted"
            );
            Ok(())
        },
    )]
}
