//! Area `software`: what the device does not offload reaches software as an ordinary SRQ
//! receive, byte for byte, on the QP it arrived on.

use std::time::Duration;

use harness::api::OffloadOps;
use harness::fabric::{wait, WcStatus};
use harness::initiator::misbehave;
use harness::wire::{SglRepr, SqeRepr};

use crate::framework::session::{SessionOpts, FE_NSID};
use crate::framework::{blame, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const PORT: u16 = 4420;
const BOUND: Duration = Duration::from_secs(5);

/// Sends `capsule` and expects software to receive exactly it on the session's QP.
async fn reaches_software(
    d: &Dut,
    opts: SessionOpts,
    capsule: Vec<u8>,
) -> Result<crate::framework::session::Session, Failure> {
    let mut s = d.session(&opts, PORT).await?;
    misbehave::send_raw(s.io.queue(), &capsule)?;
    received(d, &s, &capsule, "the capsule").await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let k = d.provider.ns_counters(s.ctrl, FE_NSID)?;
    check_eq!(
        k.read_cmds + k.write_cmds + k.flush_cmds,
        0,
        "commands the device counted as offloaded"
    );
    let _ = &mut s;
    Ok(s)
}

/// A session without offload and with `recvs` software receives on its SRQ (armed with
/// `limit` when not 0); sends `n` read capsules (CIDs 1..=n) and returns the session and the
/// capsules.
async fn software_session(
    d: &Dut,
    recvs: u32,
    limit: u32,
) -> Result<(crate::framework::session::Session, Vec<Vec<u8>>), Failure> {
    let opts = SessionOpts {
        format: d.ns_format(),
        offload: false,
        sw_recvs: recvs,
        ..Default::default()
    };
    let s = d.session(&opts, PORT).await?;
    if limit > 0 {
        d.ctx.arm_srq(s.srq.srq, limit)?;
    }
    let capsules = (1..=u16::try_from(recvs + 1).unwrap_or(u16::MAX))
        .map(|cid| {
            let sgl = SglRepr::keyed(0x1000, d.ns_format().lba_data_size(), 0x77);
            Ok(misbehave::read_sqe(cid, FE_NSID, u64::from(cid), 1, sgl)?.to_vec())
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    Ok((s, capsules))
}

/// The next software receive holds `capsule`, on the session's QP.
pub(crate) async fn received(
    d: &Dut,
    s: &crate::framework::session::Session,
    capsule: &[u8],
    what: &str,
) -> Result<(), Failure> {
    let wc = wait::completion(d.ctx.as_ref(), s.cq, crate::framework::wait(BOUND))
        .await
        .map_err(|e| Failure::from(e).context(format!("{what}: no software receive")))?;
    check_eq!(wc.status, WcStatus::Success, "{what}: receive status");
    check_eq!(wc.qp, s.qp, "{what}: the QP it arrived on");
    check_eq!(
        wc.byte_len as usize,
        capsule.len(),
        "{what}: received length"
    );
    let slot = (wc.wr_id - 1000) * u64::from(s.attrs.ioccsz) * 16;
    let mut got = vec![0u8; capsule.len()];
    d.ctx.mr_read(s.sw_buf.id, slot, &mut got)?;
    check!(
        got == capsule,
        "{what}: software received different bytes than the host sent"
    );
    Ok(())
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new("software", "offload-not-enabled", "SW-NOT-ENABLED", "on a QP without offload enabled every I/O capsule reaches software", &[Need::Backends], |d| async move {
            let sqe = misbehave::read_sqe(1, FE_NSID, 0, 1, SglRepr::keyed(0x1000, d.ns_format().lba_data_size(), 0x77))?;
            reaches_software(&d, SessionOpts { format: d.ns_format(), offload: false, ..Default::default() }, sqe.to_vec()).await.map(|_| ())
        }),
        Case::new("software", "unmapped-nsid", "SW-NOT-OFFLOADED", "an I/O capsule for an unmapped nsid reaches software and counts as unknown-namespace", &[Need::Backends, Need::NonOffloadedOps, Need::Ops(OffloadOps::READ)], |d| async move {
            let sqe = misbehave::read_sqe(1, 99, 0, 1, SglRepr::keyed(0x1000, d.ns_format().lba_data_size(), 0x77))?;
            let s = reaches_software(&d, SessionOpts { format: d.ns_format(), ..Default::default() }, sqe.to_vec()).await?;
            check_eq!(d.provider.srq_counters(s.srq.handle)?.unknown_ns_cmds, 1, "unknown-namespace commands");
            Ok(())
        }),
        Case::new("software", "admin-opcode-on-io-queue", "SW-NOT-OFFLOADED", "a command the device does not offload (Identify's opcode) reaches software", &[Need::Backends, Need::NonOffloadedOps], |d| async move {
            let sqe = misbehave::opcode_sqe(2, FE_NSID, 0x06)?;
            reaches_software(&d, SessionOpts { format: d.ns_format(), ..Default::default() }, sqe.to_vec()).await.map(|_| ())
        }),
        Case::new("software", "fabrics-command", "SW-NOT-OFFLOADED", "a Fabrics command capsule (Property Get) on an I/O queue reaches software", &[Need::Backends, Need::NonOffloadedOps], |d| async move {
            let mut sqe = [0u8; 64];
            sqe[0] = 0x7f;
            sqe[2] = 3;
            sqe[4] = 0x04;
            reaches_software(&d, SessionOpts { format: d.ns_format(), ..Default::default() }, sqe.to_vec()).await.map(|_| ())
        }),
        Case::new("software", "sgl-too-short", "SW-NOT-OFFLOADED", "a read whose keyed SGL is shorter than its data is not offloaded: software receives it", &[Need::Backends, Need::NonOffloadedOps, Need::Ops(OffloadOps::READ)], |d| async move {
            let bs = d.ns_format().lba_data_size();
            let sqe = misbehave::read_sqe(3, FE_NSID, 0, 2, SglRepr::keyed(0x1000, bs, 0x77))?;
            reaches_software(&d, SessionOpts { format: d.ns_format(), ..Default::default() }, sqe.to_vec()).await.map(|_| ())
        }),
        Case::new("software", "malformed-capsule", "SW-NOT-OFFLOADED", "a capsule shorter than an SQE reaches software intact", &[Need::Backends, Need::NonOffloadedOps], |d| async move {
            let full = SqeRepr::new(4, FE_NSID, harness::wire::SqeCommand::Flush, SglRepr::keyed(0, 0, 0)).to_bytes()?;
            reaches_software(&d, SessionOpts { format: d.ns_format(), ..Default::default() }, full[..32].to_vec()).await.map(|_| ())
        }),
        Case::new("software", "held-until-receive", "SW-NOT-ENABLED", "a capsule for software that arrives when software has no receive posted on the SRQ is held, not dropped: it is delivered, byte for byte, once software posts one", &[Need::Backends], |d| async move {
            let (mut s, capsules) = software_session(&d, 2, 0).await?;
            for c in &capsules {
                misbehave::send_raw(s.io.queue(), c)?;
            }
            received(&d, &s, &capsules[0], "the first capsule").await?;
            received(&d, &s, &capsules[1], "the second capsule").await?;
            let early = wait::completion(d.ctx.as_ref(), s.cq, crate::framework::wait(Duration::from_millis(100))).await;
            check!(early.is_err(), "a receive completed with no receive posted: {early:?}");
            d.ctx.post_srq_recv(s.srq.srq, &harness::fabric::RecvWr {
                wr_id: 1000,
                sg_list: vec![s.sw_buf.sge(0, s.attrs.ioccsz * 16)],
            })?;
            received(&d, &s, &capsules[2], "the held capsule, once a receive is posted").await
        }),
        Case::new("software", "srq-limit", "SW-SRQ-LIMIT", "armed with a limit, the NVMe-oF SRQ raises SRQ_LIMIT_REACHED naming it when software's receives fall below the limit, once", &[Need::Backends], |d| async move {
            let (mut s, capsules) = software_session(&d, 4, 2).await?;
            for (i, c) in capsules.iter().take(4).enumerate() {
                misbehave::send_raw(s.io.queue(), c)?;
                {
                    // Capsules reaching software is another rule than the limit's.
                    let _rule = blame::under("SW-NOT-ENABLED");
                    received(&d, &s, c, &format!("capsule {i}")).await?;
                }
                let ev = d.ctx.poll_async_event();
                // 4 receives, limit 2: the third capsule leaves 1 posted.
                let want = (i == 2).then_some(harness::fabric::AsyncEvent::SrqLimitReached(s.srq.srq));
                check_eq!(ev, want, "the device context's event after capsule {i}");
            }
            Ok(())
        }),
        Case::new("software", "read-with-in-capsule-sgl", "SW-NOT-OFFLOADED", "a read whose data pointer is an in-capsule data block, with that data in the capsule (only a write carries data in the capsule), is not offloaded: software receives it whole", &[Need::Backends, Need::NonOffloadedOps, Need::Ops(OffloadOps::READ), Need::InCapsuleBlock], |d| async move {
            let (format, bs) = crate::areas::datapath::smallest_format(&d)?;
            let sgl = SglRepr::DataBlock { addressing: harness::wire::SglAddressing::Offset, address: 0, length: bs };
            // The capsule even carries the bytes its data pointer points at.
            let mut capsule = misbehave::read_sqe(5, FE_NSID, 0, 1, sgl)?.to_vec();
            capsule.extend(crate::framework::session::pattern(bs as usize, 5));
            reaches_software(&d, SessionOpts { format, in_capsule: bs, ..Default::default() }, capsule).await.map(|_| ())
        }),
        Case::new("software", "in-capsule-data-missing", "SW-NOT-OFFLOADED", "a write whose in-capsule data pointer reaches past the bytes its capsule carries (half the block is missing) is not offloaded: software receives the capsule as sent", &[Need::Backends, Need::NonOffloadedOps, Need::Ops(OffloadOps::WRITE), Need::InCapsuleBlock], |d| async move {
            let (format, bs) = crate::areas::datapath::smallest_format(&d)?;
            let sgl = SglRepr::DataBlock { addressing: harness::wire::SglAddressing::Offset, address: 0, length: bs };
            let mut capsule = misbehave::write_sqe(6, FE_NSID, 0, 1, sgl)?.to_vec();
            capsule.extend(crate::framework::session::pattern(bs as usize / 2, 6));
            reaches_software(&d, SessionOpts { format, in_capsule: bs, ..Default::default() }, capsule).await.map(|_| ())
        }),
    ]
}
