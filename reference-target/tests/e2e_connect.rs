//! Connecting: every RDMA CM request check and every Fabrics Connect check of
//! offload-api.md §4, the host allow-list (and the `allow-any-host` quirk), in-capsule
//! Connect data, and commands before Connect.

use harness::initiator::connect::{self, cm_establish, CmOptions, ConnectOptions};
use harness::initiator::{misbehave, DataMode, HostQueue, InitiatorError, QueueSpec};
use harness::wire::{
    CmRejectStatus, ConnectDataRepr, ConnectResponse, CqeRepr, InvalidParam, Status, CNTLID_DYNAMIC,
};
use reference_target::testing::data::*;
use reference_target::testing::target::*;
use rstest::rstest;

/// The spec of I/O queue 1, 32 deep, without in-capsule data.
fn io1() -> QueueSpec {
    QueueSpec::io(1, 32, 0)
}

const IPO_QID: InvalidParam = InvalidParam::sqe(42);
const IPO_SQSIZE: InvalidParam = InvalidParam::sqe(44);
const IPO_CNTLID: InvalidParam = InvalidParam::data(16);
const IPO_SUBNQN: InvalidParam = InvalidParam::data(256);

/// A queue of `spec` connected through the CM with well-formed private data.
async fn cm_queue(rig: &TargetRig, spec: QueueSpec) -> HostQueue {
    let pd = rig.host.alloc_pd().unwrap();
    let mut q = HostQueue::create(rig.host.clone(), pd, spec, BOUND).unwrap();
    let opts = CmOptions::for_queue(&q);
    cm_establish(&mut q, addr(4420), &opts, BOUND)
        .await
        .unwrap();
    q
}

/// Sends Connect with `opts` and `data` (keyed unless `opts.data_in_capsule`).
async fn send_connect(q: &mut HostQueue, opts: ConnectOptions, data: &ConnectDataRepr) -> CqeRepr {
    connect::send_connect(q, data, &opts).await.unwrap()
}

fn admin_opts(q: &HostQueue) -> ConnectOptions {
    ConnectOptions::for_queue(q, 5000, false)
}

fn invalid_param(cqe: &CqeRepr) -> InvalidParam {
    assert!(cqe.status.dnr, "DNR on a failed Connect: {cqe:?}");
    match ConnectResponse::decode(cqe.status, cqe.dw0()).unwrap() {
        ConnectResponse::InvalidParameters(p) => p,
        other => panic!("expected Connect Invalid Parameters, got {other:?}"),
    }
}

/// Sends Connect with `opts` and `data`; expects Connect Invalid Parameters at `ipo`.
async fn expect_invalid(
    q: &mut HostQueue,
    opts: ConnectOptions,
    data: &ConnectDataRepr,
    ipo: InvalidParam,
) {
    let c = send_connect(q, opts, data).await;
    assert_eq!(invalid_param(&c), ipo, "{opts:?}");
}

/// Sends Connect with `opts` at each SQSIZE of `sqsizes`; expects Connect Invalid
/// Parameters at SQSIZE each time.
async fn expect_sqsizes_refused(
    q: &mut HostQueue,
    opts: ConnectOptions,
    data: &ConnectDataRepr,
    sqsizes: &[u16],
) {
    for &sqsize in sqsizes {
        expect_invalid(q, ConnectOptions { sqsize, ..opts }, data, IPO_SQSIZE).await;
    }
}

async fn cm_reject(rig: &TargetRig, spec: QueueSpec, pd_bytes: Vec<u8>) -> Option<CmRejectStatus> {
    let pd = rig.host.alloc_pd().unwrap();
    let mut q = HostQueue::create(rig.host.clone(), pd, spec, BOUND).unwrap();
    match misbehave::connect_with_private_data(&mut q, addr(4420), pd_bytes, BOUND).await {
        Err(InitiatorError::Rejected { status, .. }) => status,
        other => panic!("expected a CM reject, got {other:?}"),
    }
}

/// Each malformed CM request (private data `recfmt`, `qid`, `hrqsize`, `hsqsize` on a queue
/// of `spec`, or too short) is rejected with its status; a good one is accepted after it
/// with CRQSIZE = HSQSIZE + 1.
#[rstest]
#[case::length(QueueSpec::admin, None, CmRejectStatus::InvalidLength)]
#[case::recfmt(QueueSpec::admin, Some([1, 0, 32, 31]), CmRejectStatus::InvalidRecfmt)]
#[case::qid(io1, Some([0, 1000, 32, 31]), CmRejectStatus::InvalidQid)]
#[case::hsqsize_zero(QueueSpec::admin, Some([0, 0, 32, 0]), CmRejectStatus::InvalidHsqsize)]
#[case::hsqsize_admin_max(QueueSpec::admin, Some([0, 0, 32, 32]), CmRejectStatus::InvalidHsqsize)]
#[case::hsqsize_io_max(io1, Some([0, 1, 32, 128]), CmRejectStatus::InvalidHsqsize)]
#[case::hrqsize_zero(QueueSpec::admin, Some([0, 0, 0, 31]), CmRejectStatus::InvalidHrqsize)]
#[case::hrqsize_io_max(io1, Some([0, 1, 129, 31]), CmRejectStatus::InvalidHrqsize)]
#[tokio::test(start_paused = true)]
async fn cm_request_check(
    #[case] spec: fn() -> QueueSpec,
    #[case] fields: Option<[u16; 4]>,
    #[case] want: CmRejectStatus,
) {
    let rig = start(21, &fixture("reference.toml"));
    let bytes = match fields {
        Some([recfmt, qid, hrqsize, hsqsize]) => {
            misbehave::cm_request_bytes(recfmt, qid, hrqsize, hsqsize)
        }
        None => vec![0u8; 16],
    };
    let got = cm_reject(&rig, spec(), bytes.clone()).await;
    assert_eq!(got, Some(want), "private data {bytes:?}");
    let q = cm_queue(&rig, QueueSpec::admin()).await;
    assert_eq!(q.accept().unwrap().crqsize, 32);
}

#[tokio::test(start_paused = true)]
async fn admin_connect_checks() {
    let rig = start(22, &fixture("reference.toml"));
    let cfg = host_config(SUB0);
    let mut q = cm_queue(&rig, QueueSpec::admin()).await;
    let good = cfg.connect_data(CNTLID_DYNAMIC);
    let ao = admin_opts(&q);

    let c = send_connect(&mut q, ConnectOptions { recfmt: 1, ..ao }, &good).await;
    assert!(
        c.status.same_code(Status::CONNECT_INCOMPATIBLE_FORMAT),
        "{c:?}"
    );

    expect_invalid(&mut q, ao, &cfg.connect_data(5), IPO_CNTLID).await;

    let mut other = good.clone();
    other.subnqn = "nqn.2026-11.io.nvmf-conform:nobody".into();
    expect_invalid(&mut q, ao, &other, IPO_SUBNQN).await;

    expect_sqsizes_refused(&mut q, ao, &good, &[0, 40]).await;

    let c = send_connect(&mut q, ConnectOptions { qid: 3, ..ao }, &good).await;
    assert_eq!(
        invalid_param(&c),
        IPO_QID,
        "QID differs from the CM request's"
    );

    let mut stranger = good.clone();
    stranger.hostnqn =
        "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000000".into();
    let c = send_connect(&mut q, ao, &stranger).await;
    assert!(c.status.same_code(Status::CONNECT_INVALID_HOST), "{c:?}");
    assert!(c.status.dnr);

    // After all that, a good Connect on the same queue succeeds; a second one is a
    // command sequence error.
    let c = send_connect(&mut q, ao, &good).await;
    assert_eq!(c.status, Status::SUCCESS, "{c:?}");
    assert_ne!(c.dw0() as u16, 0);
    let again = send_connect(&mut q, ao, &good).await;
    assert!(
        again.status.same_code(Status::COMMAND_SEQUENCE_ERROR),
        "{again:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn host_not_allowed_unless_quirk() {
    let stranger = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001";
    let rig = start(23, &fixture("reference.toml"));
    let mut cfg = host_config(SUB0);
    cfg.hostnqn = stranger.into();
    let e = harness::initiator::Controller::connect(rig.host.clone(), addr(4420), cfg.clone())
        .await
        .unwrap_err();
    let s = e.nvme_status().expect("an NVMe status");
    assert!(s.same_code(Status::CONNECT_INVALID_HOST), "{e:?}");
    rig.expect_event("connect-host-refused").await;

    let text = fixture("reference.toml").replace("quirks = []", "quirks = [\"allow-any-host\"]");
    let rig = start(24, &text);
    let mut c = connect(&rig, 4420, cfg).await;
    assert_eq!(c.identify_controller().await.unwrap().nn, 5);
}

#[tokio::test(start_paused = true)]
async fn connect_data_in_capsule() {
    let rig = start(25, &fixture("reference.toml"));
    let mut cfg = host_config(SUB0);
    cfg.connect_data_in_capsule = true;
    let mut c = connect(&rig, 4420, cfg).await;
    let mut io = c.connect_io_queue(1, 16, 4096, 2, 4096).await.unwrap();
    let data = pattern(4096, 3);
    let w = io.write(0, &data, DataMode::InCapsule).await.unwrap();
    assert_eq!(w.cqe.status, Status::SUCCESS);
    let r = io.read(0, 1, DataMode::Keyed).await.unwrap();
    assert_eq!(r.data, data);
    use harness::api::OffloadProvider;
    let k = rig
        .target
        .engine()
        .ns_counters(rig.target.ctrl_of(SUB0, 2).unwrap(), 2)
        .unwrap();
    assert_eq!(k.write_inline_cmds, 1, "in-capsule write offloaded: {k:?}");
}

#[tokio::test(start_paused = true)]
async fn io_connect_checks() {
    let rig = start(26, &fixture("reference.toml"));
    let cfg = host_config(SUB0);
    let mut c = connect(&rig, 4420, cfg.clone()).await;
    let cntlid = c.cntlid();
    assert_eq!(c.set_number_of_queues(2).await.unwrap(), (2, 2));
    let data = cfg.connect_data(cntlid);
    let io_opts = |q: &HostQueue| ConnectOptions::for_queue(q, 0, false);

    // Unknown controller.
    let mut q = cm_queue(&rig, QueueSpec::io(1, 32, 0)).await;
    let o_q = io_opts(&q);
    expect_invalid(&mut q, o_q, &cfg.connect_data(cntlid + 100), IPO_CNTLID).await;
    // Connect QID differs from the CM QID.
    expect_invalid(&mut q, ConnectOptions { qid: 2, ..o_q }, &data, IPO_QID).await;
    // SQSIZE 0 and above MQES (127).
    expect_sqsizes_refused(&mut q, o_q, &data, &[0, 200]).await;
    // Good.
    let ok = send_connect(&mut q, o_q, &data).await;
    assert_eq!(ok.status, Status::SUCCESS, "{ok:?}");
    assert_eq!(ok.dw0() as u16, cntlid);

    // The same QID again, on another connection.
    let mut q2 = cm_queue(&rig, QueueSpec::io(1, 32, 0)).await;
    let o_q2 = io_opts(&q2);
    let twice = send_connect(&mut q2, o_q2, &data).await;
    assert!(
        twice.status.same_code(Status::COMMAND_SEQUENCE_ERROR),
        "{twice:?}"
    );
    assert!(twice.status.dnr);

    // A QID above the granted queues.
    let mut q3 = cm_queue(&rig, QueueSpec::io(3, 32, 0)).await;
    let o_q3 = io_opts(&q3);
    expect_invalid(&mut q3, o_q3, &data, IPO_QID).await;

    // Unknown subsystem on an I/O queue.
    let mut q4 = cm_queue(&rig, QueueSpec::io(2, 32, 0)).await;
    let o_q4 = io_opts(&q4);
    let mut other = data.clone();
    other.subnqn = "nqn.2026-11.io.nvmf-conform:nobody".into();
    expect_invalid(&mut q4, o_q4, &other, IPO_SUBNQN).await;
    let ok = send_connect(&mut q4, o_q4, &data).await;
    assert_eq!(ok.status, Status::SUCCESS);
}

#[tokio::test(start_paused = true)]
async fn io_before_connect_is_a_sequence_error() {
    let rig = start(27, &fixture("reference.toml"));
    let _c = connect(&rig, 4420, host_config(SUB0)).await;
    let mut q = cm_queue(&rig, QueueSpec::io(1, 32, 0)).await;
    let cid = misbehave::send_before_connect(&mut q, 1).unwrap();
    let r = q.wait_response(cid, BOUND).await.unwrap();
    assert!(
        r.cqe.status.same_code(Status::COMMAND_SEQUENCE_ERROR),
        "{r:?}"
    );
    // An admin command before the admin Connect too.
    let mut a = cm_queue(&rig, QueueSpec::admin()).await;
    let sqe = misbehave::opcode_sqe(9, 0, 0x06).unwrap();
    misbehave::send_raw(&mut a, &sqe).unwrap();
    let r = a.wait_response(9, BOUND).await.unwrap();
    assert!(
        r.cqe.status.same_code(Status::COMMAND_SEQUENCE_ERROR),
        "{r:?}"
    );
    let backend = rig.target.backend_of(SUB0, 1).unwrap();
    assert_eq!(
        backend.counters().commands,
        0,
        "nothing reached the backend"
    );
    assert_eq!(rig.target.software_io_commands(SUB0), 0);
}

#[tokio::test(start_paused = true)]
async fn start_errors_name_the_object() {
    use harness::fabric::sim::SimFabric;
    use harness::fabric::Fabric;
    use reference_target::control::{Config, Target};
    let fabric = SimFabric::new(28);
    let bad_addr = fixture("reference.toml").replace("127.0.10.1:4420", "10.9.9.9:4420");
    let e = Target::start(
        fabric.open("sim0").unwrap(),
        Config::parse("t", &bad_addr).unwrap(),
    )
    .unwrap_err();
    assert!(e.what.contains("port.addr"), "{e}");
    let small =
        fixture("reference.toml").replace("staging_buf = \"4MiB\"", "staging_buf = \"4KiB\"");
    let e = Target::start(
        fabric.open("sim0").unwrap(),
        Config::parse("t", &small).unwrap(),
    )
    .unwrap_err();
    assert!(e.what.contains("staging_buf"), "{e}");
}
