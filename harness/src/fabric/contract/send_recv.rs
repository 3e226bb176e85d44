//! SEND / RECV on a connected RC pair, and receiver-not-ready retries.

use std::time::Duration;

use super::{
    check_success, check_wc, contract_case, pattern, rdma_write, CaseResult, ContractCase, Env,
    Need, Pair, PairOpts, LONG_BOUND,
};
use crate::fabric::{Access, QpState, SendOp, SendWr, WcOpcode, WcStatus};
use crate::{check, check_eq};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "send.recv.data-integrity",
            "send",
            &[],
            "a multi-packet SEND lands byte-exact; completions carry opcode, byte_len, qp_num, src_qp",
            data_integrity
        ),
        contract_case!(
            "send.recv.multi-sge",
            "send",
            &[],
            "a SEND gathers three SGEs and the receive scatters them over three SGEs in order",
            multi_sge
        ),
        contract_case!(
            "send.recv.zero-length",
            "send",
            &[],
            "a SEND without SGEs consumes a receive with byte_len 0",
            zero_length
        ),
        contract_case!(
            "send.recv.in-order",
            "send",
            &[],
            "eight SENDs complete in order on both sides and consume receives in posting order",
            in_order
        ),
        contract_case!(
            "send.recv.too-small-loc-len-err",
            "send",
            &[Need::NotSoftRoce(
                "rxe (Linux 6.1 and 6.12) completes a receive too small for the SEND with LOC_QP_OP_ERR, not LOC_LEN_ERR",
            )],
            "a SEND longer than the receive: receiver LOC_LEN_ERR, sender REM_INV_REQ_ERR, both QPs ERR",
            too_small
        ),
        contract_case!(
            "send.unsignaled.no-success-completion",
            "send",
            &[],
            "an unsignaled successful SEND produces no completion at the sender; the receiver still gets one",
            unsignaled
        ),
        contract_case!(
            "send.unsignaled.error-still-completes",
            "send",
            &[Need::NotSoftRoce(
                "rxe completes a send whose SGE has an unknown lkey with LOC_QP_OP_ERR (Linux 6.1) or WR_FLUSH_ERR (6.12), not LOC_PROT_ERR",
            )],
            "an unsignaled SEND that fails (wrong lkey) still produces its error completion",
            unsignaled_error
        ),
        contract_case!(
            "send.sge.bad-lkey-loc-prot-err",
            "send",
            &[Need::NotSoftRoce(
                "rxe completes a send whose SGE has an unknown lkey with LOC_QP_OP_ERR (Linux 6.1) or WR_FLUSH_ERR (6.12), not LOC_PROT_ERR",
            )],
            "a SEND whose SGE has a wrong lkey completes with LOC_PROT_ERR and the QP goes to ERR",
            bad_lkey
        ),
        contract_case!(
            "send.sge.out-of-bounds-loc-prot-err",
            "send",
            &[Need::NotSoftRoce(
                "rxe of Linux 6.12 completes a send whose SGE runs past its region with WR_FLUSH_ERR, not LOC_PROT_ERR (6.1 gives LOC_PROT_ERR)",
            )],
            "a SEND whose SGE runs past its region completes with LOC_PROT_ERR",
            sge_out_of_bounds
        ),
        contract_case!(
            "send.inv.invalidates-rkey",
            "send",
            // rxe refuses to invalidate a plain MR (the receive completes with REM_INV_REQ_ERR,
            // measured on Linux 6.12): see Need::InvalidatePlainMr.
            &[Need::InvalidatePlainMr],
            "SEND with invalidate: the receive carries invalidated_rkey; RDMA WRITE with it is REM_ACCESS_ERR",
            send_with_inv
        ),
        contract_case!(
            "rnr.retry.exhausted",
            "rnr",
            &[],
            "with no receive posted and rnr_retry 0..=6 a SEND ends with RNR_RETRY_EXC_ERR",
            rnr_exhausted
        ),
        contract_case!(
            "rnr.retry.infinite-then-recv",
            "rnr",
            &[],
            "with rnr_retry 7 a SEND waits for a receive posted later, then both sides succeed",
            rnr_infinite
        ),
    ]
}

async fn data_integrity(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(16384, Access::LOCAL_WRITE)?;
    let len = 10_000usize;
    let data = pattern(env.seed, 10, len);
    p.a.dev.write(&src, 0, &data)?;
    p.b.post_recv(7, vec![dst.sge(0, 16384)])?;
    p.a.send(1, vec![src.sge(0, len as u32)])?;
    let s = p.a.succeeds("SEND", 1, WcOpcode::Send).await?;
    check_eq!(s.qp, p.a.qp.id, "sender completion's qp");
    check_eq!(s.qp_num, p.a.qp.qpn, "sender completion's qp_num");
    let r = p.b.succeeds("receive", 7, WcOpcode::Recv).await?;
    check_eq!(r.byte_len, len as u32, "receiver completion's byte_len");
    check_eq!(r.src_qp, p.a.qp.qpn, "receiver completion's src_qp");
    check_eq!(r.qp, p.b.qp.id, "receiver completion's qp");
    check_eq!(r.qp_num, p.b.qp.qpn, "receiver completion's qp_num");
    check_eq!(
        r.invalidated_rkey,
        None,
        "receiver completion's invalidated_rkey of a plain SEND"
    );
    p.b.dev.check_read(&dst, 0, &data, "received bytes")?;
    p.b.dev.check_zeroed(
        &dst,
        len as u64,
        16384 - len,
        "bytes past byte_len of the receive buffer were written",
    )
}

async fn multi_sge(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let src = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let src2 = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let d1 = p.b.mr(4096, Access::LOCAL_WRITE)?;
    let d2 = p.b.mr(4096, Access::LOCAL_WRITE)?;
    let pieces = [(&src, 0u64, 10usize), (&src2, 100, 50), (&src, 1000, 100)];
    let mut message = Vec::new();
    for (i, (mr, off, len)) in pieces.iter().enumerate() {
        let d = pattern(env.seed, 20 + i as u64, *len);
        p.a.dev.write(mr, *off, &d)?;
        message.extend(d);
    }
    // Scatter: 7 bytes, 100 bytes, 60 bytes (167 >= 160).
    p.b.post_recv(5, vec![d1.sge(0, 7), d2.sge(200, 100), d1.sge(3000, 60)])?;
    p.a.send(
        1,
        pieces
            .iter()
            .map(|(mr, off, len)| mr.sge(*off, *len as u32))
            .collect(),
    )?;
    p.a.succeeds("SEND of three SGEs", 1, WcOpcode::Send)
        .await?;
    let r =
        p.b.succeeds("receive of three SGEs", 5, WcOpcode::Recv)
            .await?;
    check_eq!(r.byte_len, 160, "byte_len of a 10 + 50 + 100 byte gather");
    let scattered = [
        (&d1, 0, 0..7, "first scatter SGE (7 bytes)"),
        (&d2, 200, 7..107, "second scatter SGE (100 bytes)"),
        (&d1, 3000, 107..160, "third scatter SGE (53 of 60 bytes)"),
    ];
    for (mr, offset, range, what) in scattered {
        p.b.dev.check_read(mr, offset, &message[range], what)?;
    }
    p.b.dev.check_zeroed(
        &d1,
        3053,
        7,
        "the third SGE was written past the message end",
    )
}

async fn zero_length(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let dst = p.b.mr(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(3, vec![dst.sge(0, 64)])?;
    p.a.send(1, vec![])?;
    p.a.succeeds("zero-length SEND", 1, WcOpcode::Send).await?;
    let r =
        p.b.succeeds("receive of a zero-length SEND", 3, WcOpcode::Recv)
            .await?;
    check_eq!(r.byte_len, 0, "byte_len of a zero-length SEND");
    Ok(())
}

async fn in_order(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    for i in 0..8u64 {
        p.b.post_recv(100 + i, vec![dst.sge(i * 64, 64)])?;
    }
    let mut msgs = Vec::new();
    for i in 0..8u64 {
        let m = pattern(env.seed, 30 + i, 32 + i as usize);
        p.a.dev.write(&src, i * 64, &m)?;
        p.a.send(i, vec![src.sge(i * 64, m.len() as u32)])?;
        msgs.push(m);
    }
    let s = p.a.wcs(8, "eight SENDs").await?;
    let r = p.b.wcs(8, "eight receives").await?;
    for i in 0..8usize {
        check_success(
            &s[i],
            i as u64,
            WcOpcode::Send,
            &format!("sender completion #{i}"),
        )?;
        check_success(
            &r[i],
            100 + i as u64,
            WcOpcode::Recv,
            &format!("receiver completion #{i}"),
        )?;
        check_eq!(
            r[i].byte_len as usize,
            msgs[i].len(),
            "byte_len of receive #{i}"
        );
        p.b.dev.check_read(
            &dst,
            i as u64 * 64,
            &msgs[i],
            &format!("message #{i} in receive buffer #{i}"),
        )?;
    }
    Ok(())
}

async fn too_small(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(9, vec![dst.sge(0, 16)])?;
    p.a.send(1, vec![src.sge(0, 64)])?;
    p.b.completes(
        "receive of 16 bytes for a 64-byte SEND",
        9,
        WcStatus::LocLenErr,
        None,
    )
    .await?;
    p.a.completes(
        "64-byte SEND into a 16-byte receive",
        1,
        WcStatus::RemInvReqErr,
        None,
    )
    .await?;
    p.b.reaches_state(QpState::Err, "receiver after LOC_LEN_ERR")
        .await?;
    p.a.reaches_state(QpState::Err, "sender after REM_INV_REQ_ERR")
        .await?;
    Ok(())
}

async fn unsignaled(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(10, vec![dst.sge(0, 64)])?;
    p.b.post_recv(11, vec![dst.sge(64, 64)])?;
    p.a.post_send(SendWr {
        signaled: false,
        ..SendWr::new(1, SendOp::Send, vec![src.sge(0, 32)])
    })?;
    p.a.send(2, vec![src.sge(0, 32)])?;
    let r = p.b.wcs(2, "two receives").await?;
    let expected = [
        (10, "receive of the unsignaled SEND"),
        (11, "receive of the signaled SEND"),
    ];
    for (wc, (wr_id, what)) in r.iter().zip(expected) {
        check_success(wc, wr_id, WcOpcode::Recv, what)?;
    }
    p.a.succeeds("signaled SEND after an unsignaled one", 2, WcOpcode::Send)
        .await?;
    p.a.no_wc("after the signaled SEND's completion").await?;
    Ok(())
}

async fn unsignaled_error(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let src = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let mut sge = src.sge(0, 32);
    sge.lkey ^= 0x00ff_ff00;
    let wr = SendWr {
        signaled: false,
        ..SendWr::new(7, SendOp::Send, vec![sge])
    };
    p.a.post_completes(
        wr,
        WcStatus::LocProtErr,
        "unsignaled SEND with a wrong lkey",
    )
    .await?;
    Ok(())
}

async fn bad_lkey(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(10, vec![dst.sge(0, 64)])?;
    let mut sge = src.sge(0, 32);
    sge.lkey ^= 0x00ff_ff00;
    p.a.post_completes(
        SendWr::new(1, SendOp::Send, vec![sge]),
        WcStatus::LocProtErr,
        "SEND with a wrong lkey",
    )
    .await?;
    p.a.reaches_state(QpState::Err, "sender after LOC_PROT_ERR")
        .await?;
    p.b.no_wc("receiver of a SEND that failed locally").await?;
    Ok(())
}

async fn sge_out_of_bounds(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(10, vec![dst.sge(0, 4096)])?;
    p.a.post_completes(
        SendWr::new(1, SendOp::Send, vec![src.sge(4000, 200)]),
        WcStatus::LocProtErr,
        "SEND with an SGE past its region",
    )
    .await?;
    p.a.reaches_state(QpState::Err, "sender after LOC_PROT_ERR")
        .await?;
    Ok(())
}

async fn send_with_inv(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    let target = p.b.mr(4096, Access::LOCAL_WRITE | Access::REMOTE_WRITE)?;
    p.b.post_recv(20, vec![dst.sge(0, 64)])?;
    let inv = SendOp::SendWithInv { rkey: target.rkey };
    p.a.post_ok(
        SendWr::new(1, inv, vec![src.sge(0, 16)]),
        "SEND with invalidate",
    )
    .await?;
    let r =
        p.b.succeeds("receive of SEND with invalidate", 20, WcOpcode::Recv)
            .await?;
    check_eq!(
        r.invalidated_rkey,
        Some(target.rkey),
        "invalidated_rkey of the receive"
    );
    p.a.post_completes(
        rdma_write(2, target.addr, target.rkey, vec![src.sge(0, 16)]),
        WcStatus::RemAccessErr,
        "RDMA WRITE with the invalidated rkey",
    )
    .await?;
    Ok(())
}

async fn rnr_exhausted(env: Env) -> CaseResult {
    let a = env.open("a", 0)?;
    let b = env.open("b", 1)?;
    let mut elapsed = Vec::new();
    for n in 0..=6u8 {
        let p = Pair::on(&a, &b, PairOpts::default().retries(7, n))?;
        let src = p.a.mr(64, Access::LOCAL_WRITE)?;
        let t0 = tokio::time::Instant::now();
        p.a.send(u64::from(n), vec![src.sge(0, 8)])?;
        let what = format!("SEND with rnr_retry {n} and no receive");
        let s = p.a.dev.wc_within(p.a.cq, LONG_BOUND, &what).await?;
        elapsed.push(t0.elapsed());
        check_wc(&s, u64::from(n), WcStatus::RnrRetryExcErr, None, &what)?;
        p.a.reaches_state(QpState::Err, "sender after RNR_RETRY_EXC_ERR")
            .await?;
        p.b.in_state(
            QpState::Rts,
            &format!("receiver state after sending RNR NAKs (rnr_retry {n})"),
        )?;
    }
    if env.fabric.kind() == "sim" {
        // Virtual time: six RNR timer periods must take longer than none.
        check!(
            elapsed[6] > elapsed[0],
            "RNR_RETRY_EXC_ERR after rnr_retry 6 took {:?}, not longer than with rnr_retry 0 ({:?}): no RNR timer between retries",
            elapsed[6],
            elapsed[0]
        );
    }
    Ok(())
}

async fn rnr_infinite(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default().retries(7, 7))?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    let data = pattern(env.seed, 40, 100);
    p.a.dev.write(&src, 0, &data)?;
    p.a.send(1, vec![src.sge(0, 100)])?;
    p.a.no_wc("SEND with rnr_retry 7 and no receive").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    p.a.no_wc("SEND with rnr_retry 7, 1 s later").await?;
    p.a.in_state(QpState::Rts, "sender state while RNR-retrying")?;
    p.b.post_recv(2, vec![dst.sge(0, 4096)])?;
    p.b.succeeds("receive posted late", 2, WcOpcode::Recv)
        .await?;
    p.a.succeeds("SEND once a receive is posted", 1, WcOpcode::Send)
        .await?;
    p.b.dev.check_read(&dst, 0, &data, "late-received bytes")
}
