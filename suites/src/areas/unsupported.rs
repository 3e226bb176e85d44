//! Area `unsupported`: on a device that cannot carry non-offloaded ops on offloaded QPs, a
//! command it cannot serve raises UNSUPPORTED_NVMF_OP and puts that QP — and only that QP —
//! in error.

use std::time::Duration;

use harness::api::{OffloadEvent, OffloadOps};
use harness::fabric::QpState;
use harness::initiator::{misbehave, DataMode};
use harness::wire::SglRepr;

use crate::framework::session::{pattern, SessionOpts, FE_NSID};
use crate::framework::{Case, Dut, Failure, Need};
use crate::{check, check_eq};

const BOUND: Duration = Duration::from_secs(5);

/// Sends `capsule` on a fresh session and expects the event with `opcode` and the QP in
/// error.
async fn unsupported(d: Dut, capsule: Vec<u8>, opcode: u8) -> Result<(), Failure> {
    let mut s = d.default_session(4420).await?;
    misbehave::send_raw(s.io.queue(), &capsule)?;
    let ev = tokio::time::timeout(crate::framework::wait(BOUND), d.provider.next_event())
        .await
        .map_err(|_| Failure::new("no UNSUPPORTED_NVMF_OP event within 5 s"))?;
    check_eq!(
        ev,
        OffloadEvent::UnsupportedNvmfOp { qp: s.qp, opcode },
        "event"
    );
    check_eq!(d.ctx.query_qp(s.qp)?, QpState::Err, "the QP's state");
    Ok(())
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    let needs = [Need::NoNonOffloadedOps, Need::Backends];
    vec![
        Case::new("unsupported", "op-not-offloaded", "UNSUP-EVENT", "a command whose op the device does not offload raises UNSUPPORTED_NVMF_OP and errors the QP", &[Need::NoNonOffloadedOps, Need::Backends, Need::SomeOpNotOffloadable], |d| async move {
            let missing = OffloadOps::all() - d.caps.allowed_offload_ops();
            let op = if missing.contains(OffloadOps::READ) { 0x02 } else if missing.contains(OffloadOps::FLUSH) { 0x00 } else { 0x08 };
            let bs = d.ns_format().lba_data_size();
            let sqe = match op {
                0x02 => misbehave::read_sqe(1, FE_NSID, 0, 1, SglRepr::keyed(0x1000, bs, 0x77))?,
                _ => misbehave::opcode_sqe(1, FE_NSID, op)?,
            };
            unsupported(d, sqe.to_vec(), op).await
        }),
        Case::new("unsupported", "unmapped-nsid", "UNSUP-EVENT", "a write for an unmapped nsid raises UNSUPPORTED_NVMF_OP and errors the QP", &needs, |d| async move {
            let bs = d.ns_format().lba_data_size();
            let sqe = misbehave::write_sqe(1, 77, 0, 1, SglRepr::keyed(0x1000, bs, 0x77))?;
            unsupported(d, sqe.to_vec(), 0x01).await
        }),
        Case::new("unsupported", "sgl-too-short", "UNSUP-EVENT", "a write whose keyed SGL is shorter than its data is not offloaded: it raises UNSUPPORTED_NVMF_OP and errors the QP", &[Need::NoNonOffloadedOps, Need::Backends, Need::Ops(OffloadOps::WRITE)], |d| async move {
            let bs = d.ns_format().lba_data_size();
            let sqe = misbehave::write_sqe(1, FE_NSID, 0, 2, SglRepr::keyed(0x1000, bs, 0x77))?;
            unsupported(d, sqe.to_vec(), 0x01).await
        }),
        Case::new("unsupported", "unknown-opcode", "UNSUP-EVENT", "an opcode no NVM command has raises UNSUPPORTED_NVMF_OP and errors the QP", &needs, |d| async move {
            let sqe = misbehave::opcode_sqe(1, FE_NSID, 0x7e)?;
            unsupported(d, sqe.to_vec(), 0x7e).await
        }),
        Case::new("unsupported", "other-qps-unaffected", "UNSUP-ISOLATED", "after one QP is put in error, another QP of the same SRQ keeps serving offloaded writes", &[Need::NoNonOffloadedOps, Need::Backends, Need::Ops(OffloadOps::WRITE)], |d| async move {
            let f = d.ns_format();
            let opts = SessionOpts { format: f, ..Default::default() };
            let mut a = d.session(&opts, 4420).await?;
            let (mut b_io, b_qp, _) = d.connect_queue(&a.srq, a.pd, a.sw, &opts, 4421).await?;
            let sqe = misbehave::opcode_sqe(1, FE_NSID, 0x7e)?;
            misbehave::send_raw(a.io.queue(), &sqe)?;
            let _ = tokio::time::timeout(crate::framework::wait(BOUND), d.provider.next_event()).await;
            let event = crate::framework::blame::under("UNSUP-EVENT");
            check_eq!(d.ctx.query_qp(a.qp)?, QpState::Err, "QP A");
            drop(event);
            let w = b_io.write(0, &pattern(f.lba_data_size() as usize, 3), DataMode::Keyed).await?;
            check!(w.cqe.status.is_success(), "write on QP B: {}", w.cqe.status);
            check_eq!(d.ctx.query_qp(b_qp.id)?, QpState::Rts, "QP B");
            Ok(())
        }),
    ]
}
