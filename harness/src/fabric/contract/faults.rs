//! Injected faults (link, QP fatal error, lost connection, latency) and determinism.

use std::sync::Arc;
use std::time::Duration;

use super::{
    check_wc, contract_case, CaseResult, Context, ContractCase, Env, Failure, FaultKind, Need,
    Pair, PairOpts, Side, LONG_BOUND,
};
use crate::fabric::{Access, AsyncEvent, Fabric, Fault, PortState, QpState, WcOpcode, WcStatus};
use crate::{check, check_eq, fail};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "fault.link.down-up-events",
            "fault",
            &[Need::FaultInjection(FaultKind::Link)],
            "link down raises PortErr and port 1 reads Down; link up raises PortActive and Active",
            link_down_up
        ),
        contract_case!(
            "fault.link.down-sends-retry-exc-err",
            "fault",
            &[Need::FaultInjection(FaultKind::Link), Need::TwoDevices],
            "a SEND to a peer whose link is down ends with RETRY_EXC_ERR and the QP in ERR",
            link_down_sends
        ),
        contract_case!(
            "fault.qp-error.fatal-and-flush",
            "fault",
            &[Need::FaultInjection(FaultKind::QpError)],
            "a QP forced to error raises QpFatal, is in ERR and flushes its receives",
            qp_error
        ),
        contract_case!(
            "fault.drop-connection.retry-exc-err",
            "fault",
            &[Need::FaultInjection(FaultKind::DropConnection)],
            "after the connection is dropped a SEND ends with RETRY_EXC_ERR",
            drop_connection
        ),
        contract_case!(
            "fault.drop-connection.retry-cnt-7-finite",
            "fault",
            &[Need::FaultInjection(FaultKind::DropConnection)],
            "retry_cnt 7 is seven retries, not infinite (unlike rnr_retry 7): RETRY_EXC_ERR still comes",
            retry_cnt_7
        ),
        contract_case!(
            "fault.link.down-connect-unreachable",
            "fault",
            &[Need::FaultInjection(FaultKind::Link), Need::TwoDevices],
            "connecting to a listener whose port is down ends Unreachable",
            link_down_connect
        ),
        contract_case!(
            "fault.delay.completes-later",
            "fault",
            &[Need::FaultInjection(FaultKind::Delay)],
            "with added packet latency operations still complete, later (timed on sim only)",
            delay
        ),
        contract_case!(
            "determinism.same-seed.same-objects",
            "determinism",
            &[Need::Deterministic],
            "two fabrics built with the same seed give the same keys, QP numbers and completions",
            same_seed
        ),
    ]
}

fn inject(fabric: &dyn Fabric, fault: Fault) -> CaseResult {
    fabric.inject(fault).ctx(format!("inject({fault:?})"))
}

/// Drops the connection of `side`'s QP.
fn drop_connection_of(env: &Env, side: &Side) -> CaseResult {
    let fault = Fault::DropConnection {
        addr: side.dev.port.addr,
        qpn: side.qp.qpn,
    };
    inject(&*env.fabric, fault)
}

async fn link_down_up(env: Env) -> CaseResult {
    let b = env.open("b", 1)?;
    let addr = b.port.addr;
    inject(&*env.fabric, Fault::Link { addr, up: false })?;
    let body = async {
        b.event("PortErr(1) after link down", |e| {
            *e == AsyncEvent::PortErr(1)
        })
        .await?;
        let p = b.ctx.port_attr(1).ctx("port_attr(1) while down")?;
        check_eq!(p.state, PortState::Down, "port 1 state after link down");
        Ok::<_, Failure>(())
    }
    .await;
    inject(&*env.fabric, Fault::Link { addr, up: true })?;
    body?;
    b.event("PortActive(1) after link up", |e| {
        *e == AsyncEvent::PortActive(1)
    })
    .await?;
    let p = b.ctx.port_attr(1).ctx("port_attr(1) after link up")?;
    check_eq!(p.state, PortState::Active, "port 1 state after link up");
    Ok(())
}

async fn link_down_sends(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default().retries(3, 7))?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(1, vec![dst.sge(0, 64)])?;
    let addr = p.b.dev.port.addr;
    inject(&*env.fabric, Fault::Link { addr, up: false })?;
    let body = async {
        p.a.send(2, vec![src.sge(0, 64)])?;
        p.a.retry_exceeded(2, "SEND while the peer's link is down")
            .await
    }
    .await;
    inject(&*env.fabric, Fault::Link { addr, up: true })?;
    body
}

async fn qp_error(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let buf = p.a.mr(4096, Access::LOCAL_WRITE)?;
    p.a.post_recv(1, vec![buf.sge(0, 64)])?;
    p.a.post_recv(2, vec![buf.sge(64, 64)])?;
    inject(
        &*env.fabric,
        Fault::QpError {
            addr: p.a.dev.port.addr,
            qpn: p.a.qp.qpn,
        },
    )?;
    let qp = p.a.qp.id;
    p.a.dev
        .event(&format!("QpFatal({qp})"), |e| *e == AsyncEvent::QpFatal(qp))
        .await?;
    p.a.reaches_state(QpState::Err, "QP after QpFatal").await?;
    let wcs = p.a.wcs(2, "receives flushed by the fatal error").await?;
    for (wc, id) in wcs.iter().zip([1, 2]) {
        check_wc(
            wc,
            id,
            WcStatus::WrFlushErr,
            None,
            "receive flushed by the fatal error",
        )?;
    }
    Ok(())
}

async fn drop_connection(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default().retries(2, 7))?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(1, vec![dst.sge(0, 64)])?;
    drop_connection_of(&env, &p.a)?;
    p.a.send(2, vec![src.sge(0, 64)])?;
    p.a.retry_exceeded(2, "SEND on a dropped connection")
        .await?;
    p.b.no_wc("receiver of a dropped connection").await?;
    Ok(())
}

async fn retry_cnt_7(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default().retries(7, 7))?;
    let src = p.a.mr(4096, Access::LOCAL_WRITE)?;
    drop_connection_of(&env, &p.a)?;
    p.a.send(1, vec![src.sge(0, 64)])?;
    let wc =
        p.a.dev
            .wc_within(
                p.a.cq,
                LONG_BOUND,
                "SEND with retry_cnt 7 on a dropped connection",
            )
            .await?;
    check_wc(
        &wc,
        1,
        WcStatus::RetryExcErr,
        None,
        "SEND with retry_cnt 7 on a dropped connection",
    )?;
    Ok(())
}

async fn link_down_connect(env: Env) -> CaseResult {
    let a = Side::create(&env.open("a", 0)?, crate::fabric::QpCap::default())?;
    let b = env.open("b", 1)?;
    let addr = env.listen_addr(&b, 0);
    b.ctx.cm_listen(addr).ctx("cm_listen")?;
    let down = b.port.addr;
    inject(
        &*env.fabric,
        Fault::Link {
            addr: down,
            up: false,
        },
    )?;
    let body = async {
        let conn = a
            .dev
            .ctx
            .cm_connect(addr, a.qp.id, &crate::fabric::ConnParam::default())
            .ctx("cm_connect")?;
        let e = a
            .dev
            .cm_event_within(LONG_BOUND, "connect to a listener whose port is down")
            .await?;
        check!(
            e.conn == conn && e.kind == crate::fabric::CmEventKind::Unreachable,
            "connect to a listener whose port is down: expected Unreachable on {conn}, got {e:?}"
        );
        b.no_cm_event("listener behind a down port").await
    }
    .await;
    inject(
        &*env.fabric,
        Fault::Link {
            addr: down,
            up: true,
        },
    )?;
    body
}

async fn delay(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(1, vec![dst.sge(0, 64)])?;
    p.b.post_recv(2, vec![dst.sge(64, 64)])?;
    let t0 = tokio::time::Instant::now();
    p.a.send(10, vec![src.sge(0, 64)])?;
    p.a.succeeds("SEND without added latency", 10, WcOpcode::Send)
        .await?;
    let base = t0.elapsed();
    let added = Duration::from_millis(50);
    inject(&*env.fabric, Fault::Delay(added))?;
    let t1 = tokio::time::Instant::now();
    p.a.send(11, vec![src.sge(0, 64)])?;
    let wc = p.a.wc("SEND with added latency").await;
    let slow = t1.elapsed();
    inject(&*env.fabric, Fault::Delay(Duration::ZERO))?;
    check_wc(
        &wc?,
        11,
        WcStatus::Success,
        Some(WcOpcode::Send),
        "SEND with added latency",
    )?;
    let r = p.b.wcs(2, "receives").await?;
    check_wc(
        &r[1],
        2,
        WcStatus::Success,
        Some(WcOpcode::Recv),
        "receive with added latency",
    )?;
    if env.fabric.kind() == "sim" {
        // Virtual time is exact: the SEND and its ACK each cross the delayed link.
        check!(
            slow >= added && slow > base,
            "SEND with {added:?} added latency completed after {slow:?} (without: {base:?}); expected at least {added:?} and later than without"
        );
    }
    Ok(())
}

/// The observable script of [`same_seed`]: objects and completions, as trace lines.
async fn script(fabric: Arc<dyn Fabric>, seed: u64) -> Result<Vec<String>, Failure> {
    let env = Env::new(fabric, seed);
    let a = env.open("a", 0)?;
    let b = env.open("b", 1)?;
    let p = Pair::on(&a, &b, PairOpts::default())?;
    let p2 = Pair::on(&a, &b, PairOpts::default())?;
    let (src, dst) = p.mrs(4096, super::all_remote())?;
    p.b.post_recv(1, vec![dst.sge(0, 64)])?;
    p.a.send(2, vec![src.sge(0, 64)])?;
    p.a.wc("SEND").await?;
    p.b.wc("receive").await?;
    p2.a.modify(crate::fabric::QpAttr::state(QpState::Err))?;
    Ok(env.trace.snapshot())
}

async fn same_seed(env: Env) -> CaseResult {
    let Some(factory) = env.fresh.clone() else {
        fail!("no fabric factory (the need should have skipped this case)");
    };
    let first = script(factory(env.seed), env.seed).await?;
    let second = script(factory(env.seed), env.seed).await?;
    for line in &first {
        env.record(line.clone());
    }
    if let Some(i) = first.iter().zip(&second).position(|(x, y)| x != y) {
        fail!(
            "same seed {:#x}, different observation #{i}: first run {:?}, second run {:?}",
            env.seed,
            first[i],
            second[i]
        );
    }
    check_eq!(
        second.len(),
        first.len(),
        "number of observations of two runs with the same seed"
    );
    Ok(())
}
