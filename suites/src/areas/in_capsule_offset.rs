//! Area `datapath`, in-capsule data behind an in-capsule data offset (`icdoff`): where the
//! data of a capsule starts, and how far it may reach.

use std::time::Duration;

use harness::api::OffloadOps;
use harness::initiator::{misbehave, DataMode};
use harness::wire::SglRepr;

use crate::areas::datapath::{
    in_capsule_counted, nothing_for_software, ok_status, smallest_format,
};
use crate::framework::session::{pattern, SessionOpts, FE_NSID};
use crate::framework::{wait, Case, Failure, Need};
use crate::{check, check_eq};

const PORT: u16 = 4420;
const RW: OffloadOps = OffloadOps::READ.union(OffloadOps::WRITE);
/// The offset the case asks for, in 16-byte units.
const ICDOFF: u16 = 1;

/// The cases of this file.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "datapath",
        "in-capsule-write.icdoff",
        "DP-IN-CAPSULE",
        "on an SRQ with an in-capsule data offset (icdoff 1), in-capsule data starts after the \
         offset: a write whose Data Block descriptor points at offset 0, and one at offset 16 \
         whose data ends at the capsule's last byte, are offloaded and read back; the padding \
         never reaches the namespace",
        &[Need::Ops(RW), Need::Backends, Need::InCapsuleOffset],
        |d| async move {
            let (format, bs) = smallest_format(&d)?;
            let opts = SessionOpts {
                format,
                icdoff: ICDOFF,
                // One block, 16 bytes into the in-capsule data.
                in_capsule: bs + 16,
                ..Default::default()
            };
            let mut s = d.session(&opts, PORT).await?;
            check_eq!(
                u64::from(s.attrs.ioccsz) * 16,
                64 + 16 * u64::from(ICDOFF) + 16 + u64::from(bs),
                "the SRQ's capsule size (the session asks for exactly this)"
            );
            let padding = vec![0xee; 16 * usize::from(ICDOFF)];
            let blocks = [
                (6u64, 0u64, pattern(bs as usize, 7)),
                (7, 16, pattern(bs as usize, 8)),
            ];
            for (slba, offset, data) in &blocks {
                let q = s.io.queue();
                let cid = q.alloc_cid();
                let sgl = SglRepr::in_capsule(*offset, bs);
                let mut capsule = misbehave::write_sqe(cid, FE_NSID, *slba, 1, sgl)?.to_vec();
                capsule.extend_from_slice(&padding);
                // Bytes between the offset's start and the data: never data.
                capsule.extend(std::iter::repeat_n(0xdd, *offset as usize));
                capsule.extend_from_slice(data);
                misbehave::send_raw(q, &capsule)?;
                let r = q
                    .wait_response(cid, wait(Duration::from_secs(5)))
                    .await
                    .map_err(|e| {
                        Failure::from(e).context(format!("the write at in-capsule offset {offset}"))
                    })?;
                ok_status(
                    &format!("the write at in-capsule offset {offset}"),
                    r.cqe.status,
                )?;
            }
            for (slba, offset, data) in &blocks {
                let r = s.io.read(*slba, 1, DataMode::Keyed).await?;
                check!(
                    r.data == *data,
                    "the block written from in-capsule offset {offset} reads back different \
                     bytes"
                );
            }
            in_capsule_counted(&d, &s, 2, "two in-capsule writes and two reads").await?;
            nothing_for_software(&d, &s).map_err(|e: Failure| e.context("in-capsule writes"))
        },
    )]
}
