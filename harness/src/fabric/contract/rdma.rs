//! RDMA WRITE and RDMA READ: data, bounds, keys and rights.

use super::{
    all_remote, contract_case, pattern, rdma_read, rdma_write, CaseResult, ContractCase, Env,
    Failure, Need, Pair, PairOpts,
};
use crate::check;
use crate::fabric::{Access, AsyncEvent, MrInfo, QpState, WcStatus};

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

/// A default pair with a 4096-byte region on each side: `a`'s with LOCAL_WRITE, `b`'s with
/// `rights`.
fn pair_4k(env: &Env, rights: Access) -> Result<(Pair, MrInfo, MrInfo), Failure> {
    let p = env.pair(PairOpts::default())?;
    let (local, remote) = p.mrs(4096, rights)?;
    Ok((p, local, remote))
}

/// An RDMA operation of `a` the responder must refuse ([`Pair::expect_violation`]): `len`
/// bytes at `offset` of `b`'s region (with `rights`, [`pair_4k`]), under its rkey XOR
/// `rkey_xor`, from or into `a`'s region at 0.
struct Refused {
    read: bool,
    rights: Access,
    offset: u64,
    len: u32,
    rkey_xor: u32,
    what: &'static str,
}

impl Refused {
    /// Runs it, with `data` written at 0 of `a`'s region first; returns the pair and `b`'s
    /// region.
    async fn run(self, env: &Env, data: &[u8]) -> Result<(Pair, MrInfo), Failure> {
        let (p, local, remote) = pair_4k(env, self.rights)?;
        if !data.is_empty() {
            p.a.dev.write(&local, 0, data)?;
        }
        let op = if self.read { rdma_read } else { rdma_write };
        let wr = op(
            1,
            remote.addr + self.offset,
            remote.rkey ^ self.rkey_xor,
            vec![local.sge(0, self.len)],
        );
        p.expect_violation(wr, self.what).await?;
        Ok((p, remote))
    }
}

async fn write_data(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(16384, all_remote())?;
    let data = pattern(env.seed, 50, 9000);
    p.a.dev.write(&src, 0, &data)?;
    p.b.post_recv(99, vec![])?;
    let sges = vec![src.sge(0, 4000), src.sge(4000, 5000)];
    p.a.post_ok(rdma_write(1, dst.addr + 1000, dst.rkey, sges), "RDMA WRITE")
        .await?;
    p.b.dev
        .check_read(&dst, 1000, &data, "remote bytes after RDMA WRITE")?;
    p.b.dev
        .check_zeroed(&dst, 0, 1000, "RDMA WRITE touched bytes before remote_addr")?;
    p.b.dev.check_zeroed(
        &dst,
        10_000,
        6384,
        "RDMA WRITE touched bytes past its length",
    )?;
    p.b.no_wc("responder of an RDMA WRITE (no receive is consumed)")
        .await?;
    Ok(())
}

async fn read_data(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (local, remote) = p.mrs(16384, Access::LOCAL_WRITE | Access::REMOTE_READ)?;
    let data = pattern(env.seed, 51, 9000);
    p.b.dev.write(&remote, 500, &data)?;
    let sges = vec![local.sge(0, 3000), local.sge(8000, 6000)];
    p.a.post_ok(
        rdma_read(2, remote.addr + 500, remote.rkey, sges),
        "RDMA READ",
    )
    .await?;
    p.a.dev
        .check_read(&local, 0, &data[..3000], "first scatter SGE of RDMA READ")?;
    p.a.dev.check_read(
        &local,
        8000,
        &data[3000..],
        "second scatter SGE of RDMA READ",
    )?;
    p.a.dev.check_zeroed(
        &local,
        3000,
        5000,
        "RDMA READ wrote between its scatter SGEs",
    )?;
    p.b.no_wc("responder of an RDMA READ").await?;
    Ok(())
}

async fn bounds_exact(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(8192, Access::LOCAL_WRITE)?;
    let remote = p.b.mr(4096, all_remote())?;
    let data = pattern(env.seed, 52, 64);
    p.a.dev.write(&local, 0, &data)?;
    let last = remote.addr + 4096 - 64;
    p.a.post_ok(
        rdma_write(1, last, remote.rkey, vec![local.sge(0, 64)]),
        "RDMA WRITE of the region's last 64 bytes",
    )
    .await?;
    p.b.dev
        .check_read(&remote, 4096 - 64, &data, "the region's last 64 bytes")?;
    p.a.post_ok(
        rdma_read(2, last, remote.rkey, vec![local.sge(1000, 64)]),
        "RDMA READ of the region's last 64 bytes",
    )
    .await?;
    p.a.dev.check_read(
        &local,
        1000,
        &data,
        "read-back of the region's last 64 bytes",
    )?;
    p.a.post_ok(
        rdma_read(3, remote.addr, remote.rkey, vec![local.sge(4096, 4096)]),
        "RDMA READ of the whole region",
    )
    .await?;
    p.a.in_state(QpState::Rts, "requester state after in-bounds operations")
}

async fn write_past(env: Env) -> CaseResult {
    let data = pattern(env.seed, 53, 65);
    let (p, remote) = Refused {
        read: false,
        rights: all_remote(),
        offset: 4096 - 64,
        len: 65,
        rkey_xor: 0,
        what: "RDMA WRITE of 65 bytes at the region's last 64",
    }
    .run(&env, &data)
    .await?;
    p.b.dev.check_zeroed(
        &remote,
        0,
        4096,
        "a refused RDMA WRITE modified the remote region",
    )
}

async fn read_past(env: Env) -> CaseResult {
    Refused {
        read: true,
        rights: all_remote(),
        offset: 4096 - 64,
        len: 65,
        rkey_xor: 0,
        what: "RDMA READ of 65 bytes at the region's last 64",
    }
    .run(&env, &[])
    .await
    .map(drop)
}

async fn wrong_rkey(env: Env) -> CaseResult {
    let (p, _) = Refused {
        read: false,
        rights: all_remote(),
        offset: 0,
        len: 64,
        rkey_xor: 0x00ff_ff00,
        what: "RDMA WRITE with a wrong rkey",
    }
    .run(&env, &[])
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
    Refused {
        read: false,
        rights: Access::LOCAL_WRITE | Access::REMOTE_READ,
        offset: 0,
        len: 64,
        rkey_xor: 0,
        what: "RDMA WRITE into a region without REMOTE_WRITE",
    }
    .run(&env, &[])
    .await
    .map(drop)
}

async fn no_remote_read(env: Env) -> CaseResult {
    Refused {
        read: true,
        rights: Access::LOCAL_WRITE | Access::REMOTE_WRITE,
        offset: 0,
        len: 64,
        rkey_xor: 0,
        what: "RDMA READ of a region without REMOTE_READ",
    }
    .run(&env, &[])
    .await
    .map(drop)
}

async fn zero_length_rkey(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let remote = p.b.mr(4096, all_remote())?;
    let bad = remote.rkey ^ 0x00ff_ff00;
    p.a.post_ok(
        rdma_write(1, 0, bad, vec![]),
        "zero-length RDMA WRITE with a wrong rkey",
    )
    .await?;
    p.a.post_ok(
        rdma_read(2, 0, bad, vec![]),
        "zero-length RDMA READ with a wrong rkey",
    )
    .await?;
    p.b.in_state(QpState::Rts, "responder state after zero-length operations")
}

async fn read_into_readonly(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let local = p.a.mr(4096, Access::REMOTE_READ)?;
    let remote = p.b.mr(4096, all_remote())?;
    p.b.dev.write(&remote, 0, &pattern(env.seed, 55, 64))?;
    p.a.post_completes(
        rdma_read(1, remote.addr, remote.rkey, vec![local.sge(0, 64)]),
        WcStatus::LocProtErr,
        "RDMA READ into a region without LOCAL_WRITE",
    )
    .await?;
    p.a.dev.check_zeroed(
        &local,
        0,
        64,
        "the failed RDMA READ wrote into the read-only region",
    )?;
    p.a.reaches_state(QpState::Err, "requester after LOC_PROT_ERR")
        .await
}

async fn qp_access_denied(env: Env) -> CaseResult {
    let p = env.pair(PairOpts {
        access_b: Access::LOCAL_WRITE | Access::REMOTE_READ,
        ..PairOpts::default()
    })?;
    let (local, remote) = p.mrs(4096, all_remote())?;
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
    p.b.dev.check_zeroed(
        &remote,
        0,
        64,
        "the refused RDMA WRITE modified the remote region",
    )?;
    p.a.reaches_state(QpState::Err, "requester after a refused RDMA WRITE")
        .await
}
