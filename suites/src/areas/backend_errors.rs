//! Area `backend-error`: a backend controller that completes an offloaded command with an
//! error status (a media error, a failed DMA) while staying healthy. The device must answer
//! the host with that status unchanged (status code type, status code, DNR), deliver no
//! data for a failed read, count the command as an error and a backend error, raise no
//! event (the controller did not fail), and keep serving the queue.

use harness::api::OffloadOps;
use harness::backend::emulated::Fault;
use harness::initiator::{Completion, DataMode, IoQueue};
use harness::wire::Status;

use crate::framework::backends::BackendRef;
use crate::framework::counters::{self, BackendDid, Sent};
use crate::framework::session::pattern;
use crate::framework::{blame, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const PORT: u16 = 4420;
const RW: OffloadOps = OffloadOps::READ.union(OffloadOps::WRITE);

/// A read (when the device offloads reads) or a write of one block at `slba`.
async fn one_op(d: &Dut, io: &mut IoQueue, slba: u64) -> Result<Completion, Failure> {
    if d.caps.offload_ops_allowed(OffloadOps::READ) {
        Ok(io.read(slba, 1, DataMode::Keyed).await?)
    } else {
        let data = pattern(io.lba_size() as usize, slba as u8);
        Ok(io.write(slba, &data, DataMode::Keyed).await?)
    }
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "backend-error",
            "media-read",
            "DP-BACKEND-STATUS",
            "an offloaded read of a block the backend cannot read is answered with the backend's \
             Unrecovered Read Error (no DNR), no data, counted as an error and a backend error, \
             with no event; a read of a good block on the same queue is served; the backend \
             fetched each read once; once the backend repairs the block it reads back (on a \
             real controller: the block its broker names, which stays bad)",
            &[
                Need::Ops(OffloadOps::READ),
                Need::Backends,
                Need::BackendFaults,
            ],
            |d| async move {
                let mut s = d.default_session(PORT).await?;
                let bs = d.ns_format().lba_data_size() as usize;
                let good = pattern(bs, 21);
                s.backend.write_blocks(1, &good)?;
                // The bad block: chosen and made bad on an emulated controller; on a real
                // one, where its broker says (a blkdebug rule, fixed when the drive opened:
                // never repaired, and the controller counts nothing the case could read).
                let bad_lba = match &s.backend {
                    BackendRef::Emulated(b) => {
                        b.write_blocks(2, &pattern(bs, 22))?;
                        b.inject(Fault::MediaError {
                            nsid: 1,
                            lbas: 2..3,
                        })?;
                        2
                    }
                    BackendRef::Real(r) => r.media_error_lba().await?,
                };
                let before = s.counters(&d)?;
                let backend_before = s.backend.counters_if_emulated()?;
                let bad = s.io.read(bad_lba, 1, DataMode::Keyed).await?;
                check_eq!(
                    bad.cqe.status,
                    Status::UNRECOVERED_READ_ERROR,
                    "the whole status of a read of a bad block (the backend's, DNR clear)"
                );
                check!(
                    bad.data.iter().all(|b| *b == 0),
                    "the failed read delivered data"
                );
                let ok = s.io.read(1, 1, DataMode::Keyed).await?;
                check_eq!(
                    ok.cqe.status,
                    Status::SUCCESS,
                    "a read of a good block after it"
                );
                check!(
                    ok.data == good,
                    "the good block read back differs from the media"
                );
                counters::moved(
                    &before,
                    &s.counters(&d)?,
                    Sent {
                        reads: 2,
                        writes: 0,
                        errors: 1,
                    },
                )?;
                if let (BackendRef::Emulated(b), Some(was)) = (&s.backend, backend_before) {
                    counters::backend_moved(
                        &was,
                        &b.counters()?,
                        BackendDid {
                            commands: 2,
                            errors: 1,
                            ..BackendDid::default()
                        },
                    )?;
                }
                d.no_event("DP-BACKEND-STATUS", "a backend's error status")
                    .await?;
                let BackendRef::Emulated(b) = &s.backend else {
                    return Ok(());
                };
                // The backend repairs the block: the device passes its answer on, it does not
                // remember the earlier failure.
                b.clear_faults()?;
                let again = s.io.read(2, 1, DataMode::Keyed).await?;
                check_eq!(
                    again.cqe.status,
                    Status::SUCCESS,
                    "a read of the block once the backend repaired it"
                );
                check!(
                    again.data == pattern(bs, 22),
                    "the repaired block read back differs from the media"
                );
                Ok(())
            },
        ),
        Case::new(
            "backend-error",
            "dma-fault",
            "DP-BACKEND-STATUS",
            "an offloaded command whose backend fails the data transfer is answered with the \
             backend's Data Transfer Error (no DNR), counted as an error and a backend error, \
             with no event; the next command on the queue is served; the backend fetched each \
             command once",
            &[
                Need::AnyOps(RW),
                Need::Backends,
                Need::EmulatedBackend(
                    "fails a command's data transfer (QEMU's controller does not model data-DMA \
                 faults)",
                ),
            ],
            |d| async move {
                let mut s = d.default_session(PORT).await?;
                let reads = d.caps.offload_ops_allowed(OffloadOps::READ);
                let before = s.counters(&d)?;
                let backend_before = s.backend.emulated()?.counters()?;
                s.backend.inject_emulated(Fault::DmaFault { count: 1 })?;
                let bad = one_op(&d, &mut s.io, 3).await?;
                if !reads {
                    let _rule = blame::under("DP-ACK-AFTER-BACKEND");
                    check!(
                        !bad.cqe.status.is_success(),
                        "the write was acknowledged although its backend failed the transfer"
                    );
                }
                check_eq!(
                    bad.cqe.status,
                    Status::DATA_TRANSFER_ERROR,
                    "the whole status of a command whose backend transfer failed (DNR clear)"
                );
                if reads {
                    check!(
                        bad.data.iter().all(|b| *b == 0),
                        "the failed read delivered data"
                    );
                }
                let ok = one_op(&d, &mut s.io, 4).await?;
                check_eq!(ok.cqe.status, Status::SUCCESS, "the next command's status");
                let sent = if reads {
                    Sent {
                        reads: 2,
                        writes: 0,
                        errors: 1,
                    }
                } else {
                    Sent {
                        reads: 0,
                        writes: 2,
                        errors: 1,
                    }
                };
                counters::moved(&before, &s.counters(&d)?, sent)?;
                counters::backend_moved(
                    &backend_before,
                    &s.backend.emulated()?.counters()?,
                    BackendDid {
                        commands: 2,
                        errors: 1,
                        dma_faults: 1,
                        ..BackendDid::default()
                    },
                )?;
                d.no_event("DP-BACKEND-STATUS", "a backend's error status")
                    .await
            },
        ),
        Case::new(
            "backend-error",
            "counted",
            "DP-ERROR-COUNTED",
            "reads failing in three ways (media error, past the end, failed transfer) between \
             reads that succeed: the namespace counters count each failure once as an error \
             and a backend error, and nothing else",
            &[
                Need::Ops(OffloadOps::READ),
                Need::Backends,
                Need::EmulatedBackend(
                    "fails reads three ways, a failed transfer among them (QEMU's controller does \
                 not model data-DMA faults)",
                ),
            ],
            |d| async move {
                let mut s = d.default_session(PORT).await?;
                s.backend.inject_emulated(Fault::MediaError {
                    nsid: 1,
                    lbas: 2..3,
                })?;
                let before = s.counters(&d)?;
                let end = crate::framework::dut::NS_BLOCKS;
                let mut statuses = Vec::new();
                for slba in [1, 2, end, 3, 4] {
                    if slba == 3 {
                        s.backend.inject_emulated(Fault::DmaFault { count: 1 })?;
                    }
                    statuses.push(s.io.read(slba, 1, DataMode::Keyed).await?.cqe.status);
                }
                {
                    let _rule = blame::under("DP-BACKEND-STATUS");
                    check_eq!(
                        statuses,
                        vec![
                            Status::SUCCESS,
                            Status::UNRECOVERED_READ_ERROR,
                            Status::LBA_OUT_OF_RANGE.with_dnr(),
                            Status::DATA_TRANSFER_ERROR,
                            Status::SUCCESS
                        ],
                        "the statuses of the five reads"
                    );
                }
                counters::moved(
                    &before,
                    &s.counters(&d)?,
                    Sent {
                        reads: 5,
                        writes: 0,
                        errors: 3,
                    },
                )
            },
        ),
    ]
}
