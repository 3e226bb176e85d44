//! Area `datapath`, a staging buffer that lies inside a larger memory region: the device
//! stages data in the buffer it was given (`staging_buf`), not from the start of the region,
//! and never touches the bytes around it.

use harness::api::OffloadOps;
use harness::initiator::DataMode;
use harness::wire::Status;

use crate::areas::datapath::nothing_for_software;
use crate::framework::counters::{self, Sent};
use crate::framework::session::{block_holds, pattern, SessionOpts};
use crate::framework::{Case, Need};
use crate::{check, check_eq};

const PORT: u16 = 4420;
const RW: OffloadOps = OffloadOps::READ.union(OffloadOps::WRITE);
/// Bytes of the region before the staging buffer, and again after it.
const GUARD: u64 = 4096;
/// What those bytes hold.
const GUARD_BYTE: u8 = 0x5a;
/// Blocks the case writes and reads (one command each, one after the other).
const BLOCKS: u64 = 4;

/// The cases of this file.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "datapath",
        "staging.inside-region",
        "DP-STAGING-BOUNDS",
        "with a staging buffer that starts 4 KiB into its memory region (and ends 4 KiB before \
         its end), offloaded writes and reads are served with their own data (on the media \
         when the device does not offload reads), and the region's bytes around the buffer are \
         never written",
        &[Need::Backends, Need::AnyOps(RW)],
        |d| async move {
            let opts = SessionOpts {
                format: d.ns_format(),
                staging_offset: GUARD,
                ..Default::default()
            };
            let mut s = d.session(&opts, PORT).await?;
            let len = s.attrs.staging_buf.len;
            let guard = vec![GUARD_BYTE; GUARD as usize];
            d.ctx.mr_write(s.staging.id, 0, &guard)?;
            d.ctx.mr_write(s.staging.id, GUARD + len, &guard)?;
            let bs = d.ns_format().lba_data_size() as usize;
            let writes = d.caps.offload_ops_allowed(OffloadOps::WRITE);
            let reads = d.caps.offload_ops_allowed(OffloadOps::READ);
            let before = s.counters(&d)?;
            for slba in 0..BLOCKS {
                let data = pattern(bs, 50 + slba as u8);
                if writes {
                    let w = s.io.write(slba, &data, DataMode::Keyed).await?;
                    check_eq!(w.cqe.status, Status::SUCCESS, "the write of block {slba}");
                } else {
                    s.backend.write_blocks(slba, &data)?;
                }
            }
            for slba in 0..BLOCKS {
                let data = pattern(bs, 50 + slba as u8);
                let what = format!("block {slba}");
                block_holds(&mut s.io, &s.backend, reads, (slba, &data), &what).await?;
            }
            for (at, what) in [(0, "before"), (GUARD + len, "after")] {
                let mut now = vec![0; GUARD as usize];
                d.ctx.mr_read(s.staging.id, at, &mut now)?;
                let changed = now.iter().filter(|b| **b != GUARD_BYTE).count();
                check!(
                    changed == 0,
                    "the device wrote {changed} bytes of the region {what} its staging buffer"
                );
            }
            let n = |on: bool| if on { BLOCKS } else { 0 };
            let sent = Sent {
                reads: n(reads),
                writes: n(writes),
                errors: 0,
            };
            counters::moved(&before, &s.counters(&d)?, sent)?;
            nothing_for_software(&d, &s)
        },
    )]
}
