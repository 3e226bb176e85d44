//! End to end over the simulated fabric: a host connects, enables, identifies, connects
//! I/O queues and writes then reads back at least 1 MiB per LBA format, on the offloaded
//! path and on the software path; the engine's counters tell which path served it.

use harness::api::OffloadProvider;
use harness::initiator::{Controller, DataMode};
use harness::wire::Status;
use reference_target::testing::data::*;
use reference_target::testing::target::*;

/// Writes then reads back ≥ 1 MiB on namespace `nsid` over I/O queue `qid`, in chunks
/// of at most `max_io` bytes; returns the blocks written.
async fn write_read_1mib(ctrl: &mut Controller, qid: u16, nsid: u32, max_io: usize) -> u64 {
    let ns = ctrl.identify_namespace(nsid).await.unwrap();
    let meta = u16::from_le_bytes([ns.raw[128], ns.raw[129]]) as usize;
    let bs = ns.lba_size as usize + meta;
    let mut io = ctrl
        .connect_io_queue(qid, 16, 0, nsid, bs as u32)
        .await
        .expect("I/O queue connect");
    let blocks = (max_io / bs).max(1);
    let (mut total, mut slba) = (0usize, 0u64);
    while total < (1 << 20) {
        let data = pattern(blocks * bs, slba);
        let mode = if slba % 2 == 0 {
            DataMode::Keyed
        } else {
            DataMode::KeyedInvalidate
        };
        write_read_back(&mut io, slba, &data, mode, &format!("nsid {nsid}")).await;
        total += data.len();
        slba += blocks as u64;
    }
    let f = io.flush().await.unwrap();
    assert_eq!(f.cqe.status, Status::SUCCESS);
    io.disconnect(BOUND).await.unwrap();
    slba
}

#[tokio::test(start_paused = true)]
async fn identify_reports_the_subsystem() {
    let rig = start(11, &fixture("reference.toml"));
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let id = c.identify_controller().await.unwrap();
    assert_eq!(id.cntlid, c.cntlid());
    assert_eq!(id.nn, 5);
    assert_eq!(
        id.mdts, 8,
        "the default MDTS, 1 MiB = 2^8 × 4 KiB (not max_io_sz)"
    );
    assert_eq!(id.ioccsz, 4 + 4096 / 16);
    assert_eq!(id.iorcsz, 1);
    assert_eq!(id.sgls & 0b101, 0b101, "SGLs with keyed data blocks");
    assert_ne!(id.sgls & (1 << 20), 0, "in-capsule offsets");
    let subnqn = &id.raw[768..768 + SUB0.len()];
    assert_eq!(subnqn, SUB0.as_bytes());
    let list = c.identify(2, 0).await.unwrap();
    let ids: Vec<u32> = list
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .take_while(|v| *v != 0)
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    let ns = c.identify_namespace(3).await.unwrap();
    assert_eq!(ns.lba_size, 512);
    assert_eq!(ns.nsze, 8 * 1024 * 1024 / 512);
    assert_eq!(
        u16::from_le_bytes([ns.raw[128], ns.raw[129]]),
        8,
        "LBAF0.MS"
    );
    let e = c.identify_namespace(9).await.unwrap_err();
    assert!(
        format!("{e:?}").contains("SC0x0b Invalid Namespace"),
        "{e:?}"
    );
    assert_eq!(c.set_number_of_queues(8).await.unwrap(), (8, 8));
    c.keep_alive().await.unwrap();
    c.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn offloaded_write_read_1mib_every_lba_format() {
    let rig = start(12, &fixture("reference.toml"));
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let engine = rig.target.engine().clone();
    for nsid in 1..=5u32 {
        let blocks = write_read_1mib(&mut c, nsid as u16, nsid, 128 * 1024).await;
        let ctrl = rig.target.ctrl_of(SUB0, nsid).unwrap();
        let k = engine.ns_counters(ctrl, nsid).unwrap();
        assert_eq!(k.write_blocks, blocks, "nsid {nsid}: {k:?}");
        assert_eq!(k.read_blocks, blocks, "nsid {nsid}: {k:?}");
        assert_eq!(k.write_cmds, k.read_cmds);
        assert_eq!(k.flush_cmds, 1);
        assert_eq!(k.error_cmds, 0);
    }
    assert_eq!(
        rig.target.software_io_commands(SUB0),
        0,
        "nothing reached software"
    );
}

/// [`SUB1`], software only, on port 4421: a 4 MiB namespace in each LBA format.
fn software_only() -> String {
    ConfigText::profile("full")
        .port(4421, SUB1)
        .subsystem(SUB1, &["offload = false"])
        .namespaces("4MiB", &["512", "4096", "512+8", "4096+8", "4096+64"])
        .build()
}

#[tokio::test(start_paused = true)]
async fn software_write_read_1mib_every_lba_format() {
    let rig = start(13, &software_only());
    let mut c = connect(&rig, 4421, host_config(SUB1)).await;
    let engine = rig.target.engine().clone();
    let mut served = 0;
    for nsid in 1..=5u32 {
        write_read_1mib(&mut c, nsid as u16, nsid, 64 * 1024).await;
        let ctrl = rig.target.ctrl_of(SUB1, nsid).unwrap();
        let k = engine.ns_counters(ctrl, nsid).unwrap();
        assert_eq!(
            (k.read_cmds, k.write_cmds, k.flush_cmds),
            (0, 0, 0),
            "{k:?}"
        );
        served = rig.target.software_io_commands(SUB1);
    }
    assert!(served > 5 * 16, "software served every command: {served}");
}

/// [`SUB0`] on profile `tight`, with a 256 KiB staging buffer: 2 MiB namespaces of 4 KiB
/// and of 520-byte blocks.
fn tight() -> String {
    ConfigText::profile("tight")
        .port(4420, SUB0)
        .subsystem(SUB0, &["staging_buf = \"256KiB\"", "queue_depth = 16"])
        .namespaces("2MiB", &["4096", "512+8"])
        .build()
}

#[tokio::test(start_paused = true)]
async fn tight_profile_mixes_offloaded_and_software_paths() {
    let rig = start(14, &tight());
    assert!(
        rig.target
            .events()
            .iter()
            .any(|l| l.contains("map-nsid-refused") && l.contains("nsid=2")),
        "520-byte blocks are not mappable on `tight`: {:?}",
        rig.target.events()
    );
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let engine = rig.target.engine().clone();
    let ctrl = rig.target.ctrl_of(SUB0, 1).unwrap();
    // 8 KiB transfers are offloaded; 1 MiB in all.
    let blocks = write_read_1mib(&mut c, 1, 1, 8192).await;
    let k = engine.ns_counters(ctrl, 1).unwrap();
    assert_eq!((k.write_blocks, k.read_blocks), (blocks, blocks), "{k:?}");
    let sw_before = rig.target.software_io_commands(SUB0);
    assert_eq!(sw_before, 0);
    // The unmappable namespace is served by software, 1 MiB too.
    write_read_1mib(&mut c, 2, 2, 8192).await;
    assert!(engine.ns_counters(ctrl, 2).is_err(), "never mapped");
    assert!(
        rig.target.software_io_commands(SUB0) > 2 * 100,
        "every command of nsid 2"
    );
    // Write Zeroes is not in `tight`'s offload ops: software.
    let mut io = c.connect_io_queue(3, 8, 0, 1, 4096).await.unwrap();
    let before = rig.target.software_io_commands(SUB0);
    let z = io.write_zeroes(0, 2).await.unwrap();
    assert_eq!(z.cqe.status, Status::SUCCESS);
    assert_eq!(rig.target.software_io_commands(SUB0), before + 1);
    let r = io.read(0, 2, DataMode::Keyed).await.unwrap();
    assert!(r.data.iter().all(|b| *b == 0));
}

/// A short session; returns the target event log.
async fn session(seed: u64) -> Vec<String> {
    let rig = start(seed, &fixture("software-only.toml"));
    for (port, sub) in [(4420, SUB0), (4421, SUB1)] {
        let mut c = connect(&rig, port, host_config(sub)).await;
        let mut io = c.connect_io_queue(1, 8, 0, 1, 4096).await.unwrap();
        let d = pattern(16384, seed);
        assert_eq!(
            io.write(4, &d, DataMode::Keyed).await.unwrap().cqe.status,
            Status::SUCCESS
        );
        assert!(io.read(4, 4, DataMode::Keyed).await.unwrap().data == d);
        io.disconnect(BOUND).await.unwrap();
        c.disconnect().await.unwrap();
    }
    rig.expect_event("ctrl-teardown").await;
    rig.target.events()
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_event_log() {
    let a = session(77).await;
    let b = session(77).await;
    assert_eq!(a, b);
    assert!(a
        .iter()
        .any(|l| l.contains("io-queue-connected") && l.contains("offload=false")));
}

#[tokio::test(start_paused = true)]
async fn shutdown_disconnects_every_queue() {
    let rig = start(15, &fixture("reference.toml"));
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let mut io = c.connect_io_queue(1, 8, 0, 2, 4096).await.unwrap();
    assert_eq!(rig.target.connections(), 2);
    let TargetRig {
        target,
        host,
        fabric: _f,
    } = rig;
    target.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(io.flush().await.is_err(), "the I/O queue is disconnected");
    assert!(
        c.keep_alive().await.is_err(),
        "the admin queue is disconnected"
    );
    let again = Controller::connect(host, addr(4420), host_config(SUB0)).await;
    assert!(again.is_err(), "nobody listens any more");
}

#[tokio::test(start_paused = true)]
async fn file_backed_namespace_keeps_its_data() {
    let dir = std::env::temp_dir().join(format!("nvmf-rt-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("ns1.img");
    let _ = std::fs::remove_file(&img);
    let text = ConfigText::default()
        .port(4420, SUB0)
        .subsystem(SUB0, &[])
        .namespace(1, "1MiB", "512+8")
        .set(&format!("backing = \"file:{}\"", img.display()))
        .build();
    let data = pattern(16 * 520, 42);
    {
        let rig = start(16, &text);
        let mut c = connect(&rig, 4420, host_config(SUB0)).await;
        let mut io = c.connect_io_queue(1, 8, 0, 1, 520).await.unwrap();
        let w = io.write(100, &data, DataMode::Keyed).await.unwrap();
        assert_eq!(w.cqe.status, Status::SUCCESS);
        assert_eq!(io.flush().await.unwrap().cqe.status, Status::SUCCESS);
        rig.target.shutdown();
    }
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 2048 * 520);
    let rig = start(17, &text);
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let mut io = c.connect_io_queue(1, 8, 0, 1, 520).await.unwrap();
    let r = io.read(100, 16, DataMode::Keyed).await.unwrap();
    assert!(r.data == data, "data survives a restart");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes then reads back `rounds` chunks of `blocks` 4 KiB blocks from `slba0`.
async fn churn(mut io: harness::initiator::IoQueue, slba0: u64, blocks: u32, rounds: u64) {
    for i in 0..rounds {
        let slba = slba0 + i * u64::from(blocks);
        let d = pattern(blocks as usize * 4096, slba);
        let w = io.write(slba, &d, DataMode::Keyed).await.unwrap();
        assert_eq!(w.cqe.status, Status::SUCCESS, "write at {slba}");
        let r = io.read(slba, blocks, DataMode::Keyed).await.unwrap();
        assert_eq!(r.cqe.status, Status::SUCCESS, "read at {slba}");
        assert!(r.data == d, "data at {slba}");
    }
}

#[tokio::test(start_paused = true)]
async fn queues_on_both_paths_at_once() {
    let rig = start(18, &fixture("reference.toml"));
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let q1 = c.connect_io_queue(1, 16, 0, 2, 4096).await.unwrap();
    let q2 = c.connect_io_queue(2, 16, 0, 2, 4096).await.unwrap();
    let q3 = c.connect_io_queue(3, 16, 0, 2, 4096).await.unwrap();
    // 16 × 4 KiB = 64 KiB: offloaded; 64 × 4 KiB = 256 KiB: above max_io_sz, software.
    tokio::join!(
        churn(q1, 0, 16, 16),
        churn(q2, 1024, 64, 8),
        churn(q3, 2048, 1, 64),
    );
    let k = rig
        .target
        .engine()
        .ns_counters(rig.target.ctrl_of(SUB0, 2).unwrap(), 2)
        .unwrap();
    assert_eq!(k.write_cmds, 16 + 64, "{k:?}");
    assert_eq!(rig.target.software_io_commands(SUB0), 16);
    assert_eq!(settle(rig.target.engine()).await, 0);
}
