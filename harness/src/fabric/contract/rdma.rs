//! RDMA WRITE and RDMA READ: data, bounds, keys and rights.

use super::{
    all_remote, check_bytes, check_wc, contract_case, pattern, rdma_read, rdma_write, CaseResult,
    ContractCase, Env, Need, Pair, PairOpts,
};
use crate::fabric::{Access, AsyncEvent, QpState, SendWr, WcOpcode, WcStatus};
use crate::{check, check_eq};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "rdma.write.data-integrity",
            "rdma",
            &[],
            "RDMA WRITE lands byte-exact at the remote offset and consumes no receive",
            write_data
        ),
        contract_case!(
            "rdma.read.data-integrity",
            "rdma",
            &[],
            "RDMA READ brings the remote bytes byte-exact into the local scatter list",
            read_data
        ),
        contract_case!(
            "rdma.bounds.exact-ok",
            "rdma",
            &[],
            "RDMA WRITE and READ of exactly the region's last bytes and of the whole region succeed",
            bounds_exact
        ),
        contract_case!(
            "rdma.write.past-bounds-rem-access-err",
            "rdma",
            &[],
            "RDMA WRITE one byte past the remote region: REM_ACCESS_ERR, both QPs ERR",
            write_past
        ),
        contract_case!(
            "rdma.read.past-bounds-rem-access-err",
            "rdma",
            &[],
            "RDMA READ one byte past the remote region: REM_ACCESS_ERR, both QPs ERR",
            read_past
        ),
        contract_case!(
            "rdma.write.wrong-rkey-rem-access-err",
            "rdma",
            &[Need::NotSoftRoce(
                "rxe (Linux 6.1 and 6.12) raises no IBV_EVENT_QP_ACCESS_ERR at the responder of a remote access violation",
            )],
            "RDMA WRITE with a wrong rkey: REM_ACCESS_ERR, responder QpAccessErr event, both QPs ERR",
            wrong_rkey
        ),
        contract_case!(
            "rdma.write.no-remote-write-rem-access-err",
            "rdma",
            &[],
            "RDMA WRITE into a region without REMOTE_WRITE: REM_ACCESS_ERR, both QPs ERR",
            no_remote_write
        ),
        contract_case!(
            "rdma.read.no-remote-read-rem-access-err",
            "rdma",
            &[],
            "RDMA READ of a region without REMOTE_READ: REM_ACCESS_ERR, both QPs ERR",
            no_remote_read
        ),
        contract_case!(
            "rdma.zero-length.rkey-not-checked",
            "rdma",
            &[],
            "zero-length RDMA WRITE and READ succeed whatever the rkey (IB C9-88: R_Key not validated)",
            zero_length_rkey
        ),
        contract_case!(
            "rdma.read.local-without-local-write-loc-prot-err",
            "rdma",
            &[],
            "RDMA READ into a local region without LOCAL_WRITE completes with LOC_PROT_ERR",
            read_into_readonly
        ),
        contract_case!(
            "rdma.write.qp-access-denied",
            "rdma",
            &[],
            "RDMA WRITE to a QP whose access flags lack REMOTE_WRITE fails (REM_ACCESS_ERR or REM_INV_REQ_ERR)",
            qp_access_denied
        ),
    ]
}

/// Posts `wr` on `a`, expects REM_ACCESS_ERR and both QPs in ERR.
async fn expect_violation(p: &Pair, wr: SendWr, what: &str) -> CaseResult {
    let id = wr.wr_id;
    p.a.post_send(wr)?;
    let wc = p.a.wc(what).await?;
    check_wc(&wc, id, WcStatus::RemAccessErr, None, what)?;
    p.a.reaches_state(QpState::Err, &format!("requester after {what}"))
        .await?;
    p.b.reaches_state(QpState::Err, &format!("responder after {what}"))
        .await?;
    p.b.no_wc(&format!("responder of {what} (no receive consumed)"))
        .await?;
    Ok(())
}

async fn write_data(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let src = p.a.mr(16384, Access::LOCAL_WRITE)?;
    let dst = p.b.mr(16384, all_remote())?;
    let data = pattern(env.seed, 50, 9000);
    p.a.dev.write(&src, 0, &data)?;
    p.b.post_recv(99, vec![])?;
    p.a.post_send(rdma_write(
        1,
        dst.addr + 1000,
        dst.rkey,
        vec![src.sge(0, 4000), src.sge(4000, 5000)],
    ))?;
    p.a.completes(
        "RDMA WRITE",
        1,
        WcStatus::Success,
        Some(WcOpcode::RdmaWrite),
    )
    .await?;
    check_bytes(
        &p.b.dev.read(&dst, 1000, 9000)?,
        &data,
        "remote bytes after RDMA WRITE",
    )?;
    let before = p.b.dev.read(&dst, 0, 1000)?;
    check!(
        before.iter().all(|b| *b == 0),
        "RDMA WRITE touched bytes before remote_addr"
    );
    let after = p.b.dev.read(&dst, 10_000, 6384)?;
    check!(
        after.iter().all(|b| *b == 0),
        "RDMA WRITE touched bytes past its length"
    );
    p.b.no_wc("responder of an RDMA WRITE (no receive is consumed)")
        .await?;
    Ok(())
}

async fn read_data(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(16384, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(16384, Access::LOCAL_WRITE | Access::REMOTE_READ)?;
    let data = pattern(env.seed, 51, 9000);
    p.b.dev.write(&remote, 500, &data)?;
    p.a.post_send(rdma_read(
        2,
        remote.addr + 500,
        remote.rkey,
        vec![local.sge(0, 3000), local.sge(8000, 6000)],
    ))?;
    p.a.completes("RDMA READ", 2, WcStatus::Success, Some(WcOpcode::RdmaRead))
        .await?;
    check_bytes(
        &p.a.dev.read(&local, 0, 3000)?,
        &data[..3000],
        "first scatter SGE of RDMA READ",
    )?;
    check_bytes(
        &p.a.dev.read(&local, 8000, 6000)?,
        &data[3000..],
        "second scatter SGE of RDMA READ",
    )?;
    let gap = p.a.dev.read(&local, 3000, 5000)?;
    check!(
        gap.iter().all(|b| *b == 0),
        "RDMA READ wrote between its scatter SGEs"
    );
    p.b.no_wc("responder of an RDMA READ").await?;
    Ok(())
}

async fn bounds_exact(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(8192, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(4096, all_remote())?;
    let data = pattern(env.seed, 52, 64);
    p.a.dev.write(&local, 0, &data)?;
    p.a.post_send(rdma_write(
        1,
        remote.addr + 4096 - 64,
        remote.rkey,
        vec![local.sge(0, 64)],
    ))?;
    p.a.completes(
        "RDMA WRITE of the region's last 64 bytes",
        1,
        WcStatus::Success,
        Some(WcOpcode::RdmaWrite),
    )
    .await?;
    check_bytes(
        &p.b.dev.read(&remote, 4096 - 64, 64)?,
        &data,
        "the region's last 64 bytes",
    )?;
    p.a.post_send(rdma_read(
        2,
        remote.addr + 4096 - 64,
        remote.rkey,
        vec![local.sge(1000, 64)],
    ))?;
    p.a.completes(
        "RDMA READ of the region's last 64 bytes",
        2,
        WcStatus::Success,
        Some(WcOpcode::RdmaRead),
    )
    .await?;
    check_bytes(
        &p.a.dev.read(&local, 1000, 64)?,
        &data,
        "read-back of the region's last 64 bytes",
    )?;
    p.a.post_send(rdma_read(
        3,
        remote.addr,
        remote.rkey,
        vec![local.sge(4096, 4096)],
    ))?;
    p.a.completes(
        "RDMA READ of the whole region",
        3,
        WcStatus::Success,
        Some(WcOpcode::RdmaRead),
    )
    .await?;
    check_eq!(
        p.a.state()?,
        QpState::Rts,
        "requester state after in-bounds operations"
    );
    Ok(())
}

async fn write_past(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(4096, all_remote())?;
    p.a.dev.write(&local, 0, &pattern(env.seed, 53, 65))?;
    expect_violation(
        &p,
        rdma_write(
            1,
            remote.addr + 4096 - 64,
            remote.rkey,
            vec![local.sge(0, 65)],
        ),
        "RDMA WRITE of 65 bytes at the region's last 64",
    )
    .await?;
    let tail = p.b.dev.read(&remote, 0, 4096)?;
    check!(
        tail.iter().all(|b| *b == 0),
        "a refused RDMA WRITE modified the remote region"
    );
    Ok(())
}

async fn read_past(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(4096, all_remote())?;
    expect_violation(
        &p,
        rdma_read(
            1,
            remote.addr + 4096 - 64,
            remote.rkey,
            vec![local.sge(0, 65)],
        ),
        "RDMA READ of 65 bytes at the region's last 64",
    )
    .await
}

async fn wrong_rkey(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(4096, all_remote())?;
    let bad = remote.rkey ^ 0x00ff_ff00;
    expect_violation(
        &p,
        rdma_write(1, remote.addr, bad, vec![local.sge(0, 64)]),
        "RDMA WRITE with a wrong rkey",
    )
    .await?;
    let qp = p.b.qp.id;
    p.b.dev
        .event(&format!("QpAccessErr({qp}) at the responder"), |e| {
            *e == AsyncEvent::QpAccessErr(qp)
        })
        .await?;
    Ok(())
}

async fn no_remote_write(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(4096, Access::LOCAL_WRITE | Access::REMOTE_READ)?;
    expect_violation(
        &p,
        rdma_write(1, remote.addr, remote.rkey, vec![local.sge(0, 64)]),
        "RDMA WRITE into a region without REMOTE_WRITE",
    )
    .await
}

async fn no_remote_read(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(4096, Access::LOCAL_WRITE | Access::REMOTE_WRITE)?;
    expect_violation(
        &p,
        rdma_read(1, remote.addr, remote.rkey, vec![local.sge(0, 64)]),
        "RDMA READ of a region without REMOTE_READ",
    )
    .await
}

async fn zero_length_rkey(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let remote = p.b.mr(4096, all_remote())?;
    let bad = remote.rkey ^ 0x00ff_ff00;
    p.a.post_send(rdma_write(1, 0, bad, vec![]))?;
    p.a.completes(
        "zero-length RDMA WRITE with a wrong rkey",
        1,
        WcStatus::Success,
        Some(WcOpcode::RdmaWrite),
    )
    .await?;
    p.a.post_send(rdma_read(2, 0, bad, vec![]))?;
    p.a.completes(
        "zero-length RDMA READ with a wrong rkey",
        2,
        WcStatus::Success,
        Some(WcOpcode::RdmaRead),
    )
    .await?;
    check_eq!(
        p.b.state()?,
        QpState::Rts,
        "responder state after zero-length operations"
    );
    Ok(())
}

async fn read_into_readonly(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(4096, Access::REMOTE_READ)?;
    let remote = p.b.mr(4096, all_remote())?;
    p.b.dev.write(&remote, 0, &pattern(env.seed, 55, 64))?;
    p.a.post_send(rdma_read(
        1,
        remote.addr,
        remote.rkey,
        vec![local.sge(0, 64)],
    ))?;
    let wc =
        p.a.wc("RDMA READ into a region without LOCAL_WRITE")
            .await?;
    check_wc(
        &wc,
        1,
        WcStatus::LocProtErr,
        None,
        "RDMA READ into a region without LOCAL_WRITE",
    )?;
    let untouched = p.a.dev.read(&local, 0, 64)?;
    check!(
        untouched.iter().all(|b| *b == 0),
        "the failed RDMA READ wrote into the read-only region"
    );
    p.a.reaches_state(QpState::Err, "requester after LOC_PROT_ERR")
        .await?;
    Ok(())
}

async fn qp_access_denied(env: Env) -> CaseResult {
    let p = env.pair(PairOpts {
        access_b: Access::LOCAL_WRITE | Access::REMOTE_READ,
        ..PairOpts::default()
    })?;
    let local = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(4096, all_remote())?;
    p.a.dev.write(&local, 0, &pattern(env.seed, 54, 64))?;
    p.a.post_send(rdma_write(
        1,
        remote.addr,
        remote.rkey,
        vec![local.sge(0, 64)],
    ))?;
    let wc = p.a.wc("RDMA WRITE to a QP without REMOTE_WRITE").await?;
    // The IB spec leaves room: mlx5 reports REM_ACCESS_ERR, rxe an invalid request.
    check!(
        wc.wr_id == 1 && matches!(wc.status, WcStatus::RemAccessErr | WcStatus::RemInvReqErr),
        "RDMA WRITE to a QP without REMOTE_WRITE: expected wr_id 1 with REM_ACCESS_ERR or REM_INV_REQ_ERR, got {wc:?}"
    );
    let untouched = p.b.dev.read(&remote, 0, 64)?;
    check!(
        untouched.iter().all(|b| *b == 0),
        "the refused RDMA WRITE modified the remote region"
    );
    p.a.reaches_state(QpState::Err, "requester after a refused RDMA WRITE")
        .await?;
    Ok(())
}
