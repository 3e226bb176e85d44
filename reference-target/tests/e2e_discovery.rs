//! The discovery controller and the admin commands a Linux host sends while it brings a
//! controller up (`control/discovery.rs`, `control/admin.rs`): what `nvme discover` and
//! `nvme connect` need from the target, checked with the project's own initiator.

use std::time::Duration;

use harness::initiator::{Command, Controller, InitiatorError, Transfer};
use harness::wire::{
    SglRepr, SqeCommand, Status, ADRFAM_IPV4, CNTLID_DYNAMIC, QPTYPE_RC, SUBTYPE_NVME, TRTYPE_RDMA,
};
use reference_target::control::identity::DISCOVERY_NQN;
use reference_target::testing::data::*;
use reference_target::testing::target::*;

/// The target of `reference.toml` started with `seed`, and a host connected to `nqn` on
/// port 4420.
async fn reference_host(seed: u64, nqn: &str) -> (TargetRig, Controller) {
    let rig = start(seed, &fixture("reference.toml"));
    let c = connect(&rig, 4420, host_config(nqn)).await;
    (rig, c)
}

fn status_of(r: Result<Vec<u8>, InitiatorError>) -> Status {
    match r {
        Err(e) => e
            .nvme_status()
            .unwrap_or_else(|| panic!("not an NVMe status: {e}")),
        Ok(d) => panic!("expected an error, got {} bytes", d.len()),
    }
}

#[tokio::test(start_paused = true)]
async fn discovery_controller_lists_the_port_subsystem() {
    let (rig, mut c) = reference_host(1, DISCOVERY_NQN).await;
    let id = c.identify_controller().await.unwrap();
    assert_eq!(id.raw[111], 2, "CNTRLTYPE discovery");
    assert_eq!(id.cntlid, c.cntlid());
    assert_eq!(
        &id.raw[768..768 + DISCOVERY_NQN.len()],
        DISCOVERY_NQN.as_bytes()
    );
    assert_eq!(id.nn, 0, "a discovery controller has no namespaces");
    assert_ne!(id.sgls & (1 << 2), 0, "keyed SGLs");

    let log = c.discovery_log().await.unwrap();
    assert_eq!(log.header.numrec, 1);
    let e = &log.entries[0];
    assert_eq!(e.trtype, TRTYPE_RDMA);
    assert_eq!(e.adrfam, ADRFAM_IPV4);
    assert_eq!(e.subtype, SUBTYPE_NVME);
    assert_eq!(e.portid, 1);
    assert_eq!(e.cntlid, CNTLID_DYNAMIC);
    assert_eq!(e.asqsz, 32);
    assert_eq!(e.subnqn, SUB0);
    assert_eq!(e.traddr, addr(4420).ip().to_string());
    assert_eq!(e.trsvcid, "4420");
    assert_eq!(e.rdma.as_ref().map(|t| t.qptype), Some(QPTYPE_RC));

    // What the log names is what a host connects to.
    let mut io = connect(&rig, 4420, host_config(&e.subnqn)).await;
    assert_eq!(io.identify_controller().await.unwrap().raw[111], 1);
    io.shutdown().await.unwrap();

    // Namespace commands do not exist on a discovery controller.
    assert_eq!(
        status_of(c.identify(0x00, 1).await),
        Status::INVALID_FIELD.with_dnr()
    );
    assert_eq!(
        status_of(c.get_log_page(0x02, 0, 0, 512).await),
        Status::INVALID_FIELD.with_dnr()
    );
    c.keep_alive().await.unwrap();
    c.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn discovery_log_reads_in_pieces_and_hides_what_the_host_may_not_reach() {
    let (rig, mut c) = reference_host(2, DISCOVERY_NQN).await;
    // Header alone, then the entry at offset 1024, as libnvme reads it.
    let head = c.get_log_page(0x70, 0, 0, 1024).await.unwrap();
    assert_eq!(u64::from_le_bytes(head[8..16].try_into().unwrap()), 1);
    let entry = c.get_log_page(0x70, 0, 1024, 1024).await.unwrap();
    assert_eq!(&entry[256..256 + SUB0.len()], SUB0.as_bytes());
    // Past the end reads as zeros; beyond the end, or unaligned, is Invalid Field.
    let tail = c.get_log_page(0x70, 0, 1024, 4096).await.unwrap();
    assert_eq!(tail[..1024], entry[..]);
    assert!(tail[1024..].iter().all(|b| *b == 0));
    for lpo in [2, 2048 + 4] {
        assert_eq!(
            status_of(c.get_log_page(0x70, 0, lpo, 16).await),
            Status::INVALID_FIELD.with_dnr(),
            "lpo {lpo}"
        );
    }
    c.shutdown().await.unwrap();

    // A host the subsystem does not allow connects to discovery but sees nothing.
    let mut cfg = host_config(DISCOVERY_NQN);
    cfg.hostnqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-00000000dead".into();
    let mut stranger = connect(&rig, 4420, cfg).await;
    let log = stranger.discovery_log().await.unwrap();
    assert_eq!(log.header.numrec, 0);
    assert!(log.entries.is_empty());
}

#[tokio::test(start_paused = true)]
async fn discovery_nqn_has_no_io_queues() {
    let (_rig, mut c) = reference_host(3, DISCOVERY_NQN).await;
    let e = c.connect_io_queue(1, 8, 0, 1, 512).await.unwrap_err();
    let s = e.nvme_status().expect("an NVMe status");
    assert_eq!(s, Status::CONNECT_INVALID_PARAMETERS.with_dnr(), "{e}");
}

#[tokio::test(start_paused = true)]
async fn log_pages_of_an_io_controller() {
    let (_rig, mut c) = reference_host(4, SUB0).await;
    let smart = c.get_log_page(0x02, 0, 0, 512).await.unwrap();
    assert_eq!(smart[0], 0, "no critical warning");
    assert_eq!(u16::from_le_bytes([smart[1], smart[2]]), 298);
    let fw = c.get_log_page(0x03, 0, 0, 512).await.unwrap();
    assert_eq!(fw[0], 1, "slot 1 active");
    assert_eq!(&fw[8..13], b"0.1.0");
    let err = c.get_log_page(0x01, 0, 0, 64).await.unwrap();
    assert!(err.iter().all(|b| *b == 0), "no error recorded");
    for lid in [0x70, 0x05, 0xc0] {
        assert_eq!(
            status_of(c.get_log_page(lid, 0, 0, 512).await),
            Status::INVALID_FIELD.with_dnr(),
            "lid {lid:#x}"
        );
    }
    // NUMD longer than the SGL: the lengths must agree.
    let cmd = Command::Nvme {
        nsid: 0,
        command: SqeCommand::Other {
            opcode: 0x02,
            cdw: [0x02 | (127 << 16), 0, 0, 0, 0, 0],
        },
    };
    let r = c
        .admin()
        .execute(
            &cmd,
            Transfer::FromTarget(256),
            harness::initiator::DataMode::Keyed,
        )
        .await
        .unwrap();
    assert_eq!(r.cqe.status, Status::DATA_SGL_LENGTH_INVALID.with_dnr());
    c.keep_alive().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn namespace_identifiers_are_stable_and_agree() {
    let (_rig, mut c) = reference_host(5, SUB0).await;
    let ns = c.identify(0x00, 1).await.unwrap();
    let descs = c.identify(0x03, 1).await.unwrap();
    assert_eq!((descs[0], descs[1]), (2, 16), "NGUID descriptor first");
    assert_eq!(
        descs[4..20],
        ns[104..120],
        "the NGUID agrees with Identify Namespace"
    );
    assert_ne!(descs[4..20], [0u8; 16]);
    assert_eq!((descs[20], descs[21]), (3, 16), "then the UUID");
    assert_eq!(descs[30] >> 4, 8, "UUID version 8");
    assert!(
        descs[40..].iter().all(|b| *b == 0),
        "then the end of the list"
    );
    assert_eq!(
        status_of(c.identify(0x03, 77).await),
        Status::INVALID_NAMESPACE.with_dnr()
    );
    // A second target from the same config gives the same identifiers.
    let (_rig2, mut c2) = reference_host(6, SUB0).await;
    assert_eq!(c2.identify(0x03, 1).await.unwrap(), descs);
}

#[tokio::test(start_paused = true)]
async fn async_event_requests_are_held_up_to_the_limit() {
    let (_rig, mut c) = reference_host(7, SUB0).await;
    let aerl = c.identify_controller().await.unwrap().raw[259];
    assert_eq!(aerl, 3);
    let aer = Command::Nvme {
        nsid: 0,
        command: SqeCommand::Other {
            opcode: 0x0c,
            cdw: [0; 6],
        },
    };
    let mut held = Vec::new();
    for _ in 0..=aerl {
        held.push(
            c.admin()
                .submit(&aer, SglRepr::keyed(0, 0, 0), &[])
                .unwrap(),
        );
    }
    // The queue goes on while they are held.
    c.keep_alive().await.unwrap();
    c.set_number_of_queues(2).await.unwrap();
    let over = c
        .admin()
        .submit(&aer, SglRepr::keyed(0, 0, 0), &[])
        .unwrap();
    let r = c.admin().wait_response(over, BOUND).await.unwrap();
    assert_eq!(
        r.cqe.status,
        Status::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED.with_dnr()
    );
    for cid in held {
        assert!(
            c.admin()
                .wait_response(cid, Duration::from_millis(500))
                .await
                .is_err(),
            "AER {cid} was answered"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn async_event_configuration_is_kept() {
    let (_rig, mut c) = reference_host(8, SUB0).await;
    let set = |v: u32| Command::Nvme {
        nsid: 0,
        command: SqeCommand::Other {
            opcode: 0x09,
            cdw: [0x0b, v, 0, 0, 0, 0],
        },
    };
    let get = Command::Nvme {
        nsid: 0,
        command: SqeCommand::Other {
            opcode: 0x0a,
            cdw: [0x0b, 0, 0, 0, 0, 0],
        },
    };
    c.admin_command("Set Features", &set(0x100), Transfer::None)
        .await
        .unwrap();
    let r = c
        .admin_command("Get Features", &get, Transfer::None)
        .await
        .unwrap();
    assert_eq!(r.cqe.dw0(), 0x100);
}

/// What `nvme discover`, `nvme connect`, I/O and `nvme disconnect` do, twice over: the
/// second session finds the target as the first did (nothing of the first one is left
/// holding receive buffers or controller state).
#[tokio::test(start_paused = true)]
async fn a_host_comes_back_after_a_whole_session() {
    let rig = start(9, &fixture("reference.toml"));
    for round in 0..3u64 {
        let mut d = connect(&rig, 4420, host_config(DISCOVERY_NQN)).await;
        let log = d.discovery_log().await.unwrap();
        assert_eq!(log.entries.len(), 1, "round {round}");
        d.disconnect().await.unwrap();

        let mut c = connect(&rig, 4420, host_config(SUB0)).await;
        let aer = Command::Nvme {
            nsid: 0,
            command: SqeCommand::Other {
                opcode: 0x0c,
                cdw: [0; 6],
            },
        };
        c.admin()
            .submit(&aer, SglRepr::keyed(0, 0, 0), &[])
            .unwrap();
        c.set_number_of_queues(2).await.unwrap();
        let bs = c.identify_namespace(1).await.unwrap().lba_size;
        let mut q1 = c.connect_io_queue(1, 32, 4096, 1, bs).await.unwrap();
        let mut q2 = c.connect_io_queue(2, 32, 4096, 1, bs).await.unwrap();
        for i in 0..64u64 {
            let data = pattern(bs as usize, round * 100 + i);
            let mode = if i % 2 == 0 {
                harness::initiator::DataMode::InCapsule
            } else {
                harness::initiator::DataMode::Keyed
            };
            let q = if i % 3 == 0 { &mut q1 } else { &mut q2 };
            let w = q.write(i, &data, mode).await.unwrap();
            assert!(
                w.cqe.status.is_success(),
                "round {round} write {i}: {:?}",
                w.cqe.status
            );
            let r = q
                .read(i, 1, harness::initiator::DataMode::Keyed)
                .await
                .unwrap();
            assert_eq!(r.data, data, "round {round} block {i}");
        }
        q1.flush().await.unwrap();
        q1.disconnect(BOUND).await.unwrap();
        q2.disconnect(BOUND).await.unwrap();
        c.shutdown().await.unwrap();
        c.disconnect().await.unwrap();
    }
}
