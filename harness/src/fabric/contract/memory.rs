//! Protection domains and memory regions.

use nix::errno::Errno;

use super::{
    all_remote, check_bytes, contract_case, expect_errno, pattern, rdma_write, CaseResult, Context,
    ContractCase, Env, PairOpts,
};
use crate::fabric::{Access, QpInit, QpState, WcStatus};
use crate::{check, check_eq};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "pd.alloc.dealloc",
            "pd",
            &[],
            "two PDs are distinct handles and both deallocate",
            pd_alloc_dealloc
        ),
        contract_case!(
            "pd.dealloc.in-use-ebusy",
            "pd",
            &[],
            "dealloc_pd is EBUSY while an MR or a QP uses the PD, and succeeds once they are gone",
            pd_dealloc_busy
        ),
        contract_case!(
            "mr.reg.distinct-keys",
            "mr",
            &[],
            "regions get distinct lkeys, distinct rkeys, their length and rights, disjoint zeroed memory",
            mr_keys
        ),
        contract_case!(
            "mr.reg.zero-len-einval",
            "mr",
            &[],
            "reg_mr of 0 bytes fails with EINVAL",
            mr_zero_len
        ),
        contract_case!(
            "mr.reg.remote-write-needs-local-write",
            "mr",
            &[],
            "reg_mr with REMOTE_WRITE but without LOCAL_WRITE fails with EINVAL",
            mr_remote_write_without_local
        ),
        contract_case!(
            "mr.reg.remote-atomic-needs-local-write",
            "mr",
            &[],
            "reg_mr with REMOTE_ATOMIC but without LOCAL_WRITE fails with EINVAL (as ib_check_mr_access)",
            mr_remote_atomic_without_local
        ),
        contract_case!(
            "mr.reg.too-large-einval",
            "mr",
            &[],
            "reg_mr above max_mr_size fails with EINVAL",
            mr_too_large
        ),
        contract_case!(
            "mr.cpu.round-trip",
            "mr",
            &[],
            "mr_write then mr_read returns the bytes, up to the last byte of the region",
            mr_round_trip
        ),
        contract_case!(
            "mr.cpu.out-of-bounds-einval",
            "mr",
            &[],
            "mr_read / mr_write past the end of the region (or overflowing) fail with EINVAL",
            mr_out_of_bounds
        ),
        contract_case!(
            "mr.dereg.remote-access-fails",
            "mr",
            &[],
            "after dereg_mr an RDMA WRITE with the old rkey completes with REM_ACCESS_ERR",
            mr_dereg_remote
        ),
    ]
}

async fn pd_alloc_dealloc(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let p1 = dev.pd()?;
    let p2 = dev.pd()?;
    check!(p1 != p2, "alloc_pd twice returned the same handle {p1}");
    dev.ctx.dealloc_pd(p1).ctx("dealloc_pd(first)")?;
    dev.ctx.dealloc_pd(p2).ctx("dealloc_pd(second)")?;
    Ok(())
}

async fn pd_dealloc_busy(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    let mr = dev.mr(pd, 4096, Access::LOCAL_WRITE)?;
    expect_errno(
        dev.ctx.dealloc_pd(pd),
        Errno::EBUSY,
        "dealloc_pd with a registered MR",
    )?;
    dev.ctx.dereg_mr(mr.id).ctx("dereg_mr")?;
    let cq = dev.cq(16)?;
    let qp = dev.qp(pd, QpInit::on_cq(cq, None))?;
    expect_errno(
        dev.ctx.dealloc_pd(pd),
        Errno::EBUSY,
        "dealloc_pd with a QP on it",
    )?;
    dev.ctx.destroy_qp(qp.id).ctx("destroy_qp")?;
    dev.ctx
        .dealloc_pd(pd)
        .ctx("dealloc_pd once MR and QP are gone")?;
    Ok(())
}

async fn mr_keys(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    let rights = [
        Access::LOCAL_WRITE,
        all_remote(),
        Access::LOCAL_WRITE | Access::REMOTE_READ,
        Access::LOCAL_WRITE | Access::REMOTE_WRITE,
        Access::REMOTE_READ,
    ];
    let mut mrs = Vec::new();
    for (i, access) in rights.into_iter().enumerate() {
        let len = 4096 * (i as u64 + 1) + 17;
        let mr = dev.mr(pd, len, access)?;
        check_eq!(mr.len, len, "MrInfo.len of reg_mr({len})");
        check_eq!(mr.access, access, "MrInfo.access of reg_mr({len})");
        let content = dev.read(&mr, 0, len as usize)?;
        check!(
            content.iter().all(|b| *b == 0),
            "reg_mr({len}): new region is not zeroed"
        );
        mrs.push(mr);
    }
    for (i, x) in mrs.iter().enumerate() {
        for y in &mrs[i + 1..] {
            check!(x.id != y.id, "two regions share the handle {}", x.id);
            check!(
                x.lkey != y.lkey,
                "{} and {} share the lkey {:#x}",
                x.id,
                y.id,
                x.lkey
            );
            let remote = Access::REMOTE_READ | Access::REMOTE_WRITE;
            if x.access.intersects(remote) && y.access.intersects(remote) {
                check!(
                    x.rkey != y.rkey,
                    "{} and {} share the rkey {:#x}",
                    x.id,
                    y.id,
                    x.rkey
                );
            }
            check!(
                x.addr + x.len <= y.addr || y.addr + y.len <= x.addr,
                "{} [{:#x}, +{}) and {} [{:#x}, +{}) overlap",
                x.id,
                x.addr,
                x.len,
                y.id,
                y.addr,
                y.len
            );
        }
    }
    Ok(())
}

async fn mr_zero_len(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    expect_errno(
        dev.ctx.reg_mr(pd, 0, Access::LOCAL_WRITE),
        Errno::EINVAL,
        "reg_mr(len 0)",
    )
}

async fn mr_remote_write_without_local(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    expect_errno(
        dev.ctx.reg_mr(pd, 4096, Access::REMOTE_WRITE),
        Errno::EINVAL,
        "reg_mr(REMOTE_WRITE)",
    )?;
    expect_errno(
        dev.ctx
            .reg_mr(pd, 4096, Access::REMOTE_WRITE | Access::REMOTE_READ),
        Errno::EINVAL,
        "reg_mr(REMOTE_WRITE | REMOTE_READ)",
    )?;
    // The same rights with LOCAL_WRITE are fine.
    dev.mr(pd, 4096, Access::REMOTE_WRITE | Access::LOCAL_WRITE)?;
    Ok(())
}

async fn mr_remote_atomic_without_local(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    expect_errno(
        dev.ctx.reg_mr(pd, 4096, Access::REMOTE_ATOMIC),
        Errno::EINVAL,
        "reg_mr(REMOTE_ATOMIC)",
    )?;
    dev.mr(pd, 4096, Access::REMOTE_ATOMIC | Access::LOCAL_WRITE)?;
    // REMOTE_READ alone needs no local write right.
    dev.mr(pd, 4096, Access::REMOTE_READ)?;
    Ok(())
}

async fn mr_too_large(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let max = dev.ctx.device_attr().max_mr_size;
    if max == u64::MAX {
        // Nothing is above the limit: the device takes any size (rxe).
        return Ok(());
    }
    let pd = dev.pd()?;
    expect_errno(
        dev.ctx.reg_mr(pd, max + 1, Access::LOCAL_WRITE),
        Errno::EINVAL,
        format!("reg_mr(max_mr_size {max} + 1)"),
    )
}

async fn mr_round_trip(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    let mr = dev.mr(pd, 8192, Access::LOCAL_WRITE)?;
    let data = pattern(env.seed, 1, 1000);
    dev.write(&mr, 100, &data)?;
    check_bytes(
        &dev.read(&mr, 100, 1000)?,
        &data,
        "mr_read of what mr_write wrote",
    )?;
    let around = dev.read(&mr, 0, 100)?;
    check!(
        around.iter().all(|b| *b == 0),
        "mr_write touched bytes before its offset"
    );
    let after = dev.read(&mr, 1100, 100)?;
    check!(
        after.iter().all(|b| *b == 0),
        "mr_write touched bytes after its end"
    );
    let tail = pattern(env.seed, 2, 64);
    dev.write(&mr, 8192 - 64, &tail)?;
    check_bytes(
        &dev.read(&mr, 8192 - 64, 64)?,
        &tail,
        "the region's last 64 bytes",
    )?;
    // Zero-length accesses at the very end are in bounds.
    dev.write(&mr, 8192, &[])?;
    dev.read(&mr, 8192, 0)?;
    Ok(())
}

async fn mr_out_of_bounds(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    let mr = dev.mr(pd, 4096, Access::LOCAL_WRITE)?;
    let mut buf = [0u8; 2];
    expect_errno(
        dev.ctx.mr_write(mr.id, 4095, &[1, 2]),
        Errno::EINVAL,
        "mr_write 2 bytes at 4095 of 4096",
    )?;
    expect_errno(
        dev.ctx.mr_read(mr.id, 4095, &mut buf),
        Errno::EINVAL,
        "mr_read 2 bytes at 4095 of 4096",
    )?;
    expect_errno(
        dev.ctx.mr_read(mr.id, 4097, &mut buf[..0]),
        Errno::EINVAL,
        "mr_read 0 bytes at 4097 of 4096",
    )?;
    expect_errno(
        dev.ctx.mr_write(mr.id, u64::MAX, &[1]),
        Errno::EINVAL,
        "mr_write at offset u64::MAX",
    )?;
    expect_errno(
        dev.ctx.mr_read(mr.id, u64::MAX - 1, &mut buf),
        Errno::EINVAL,
        "mr_read at offset u64::MAX - 1 (overflows)",
    )?;
    // Nothing was written by the failed calls.
    let all = dev.read(&mr, 0, 4096)?;
    check!(
        all.iter().all(|b| *b == 0),
        "a failed mr_write modified the region"
    );
    Ok(())
}

async fn mr_dereg_remote(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let src = p.a.mr(64, Access::LOCAL_WRITE)?;
    let dst = p.b.mr(4096, Access::LOCAL_WRITE | Access::REMOTE_WRITE)?;
    // First prove the key works.
    let write = |wr_id| rdma_write(wr_id, dst.addr, dst.rkey, vec![src.sge(0, 64)]);
    p.a.post_completes(write(1), WcStatus::Success, "RDMA WRITE before dereg")
        .await?;
    p.b.dev.ctx.dereg_mr(dst.id).ctx("dereg_mr")?;
    p.a.post_completes(write(2), WcStatus::RemAccessErr, "RDMA WRITE after dereg")
        .await?;
    p.a.reaches_state(QpState::Err, "requester after REM_ACCESS_ERR")
        .await?;
    p.b.reaches_state(QpState::Err, "responder after an access violation")
        .await?;
    Ok(())
}
