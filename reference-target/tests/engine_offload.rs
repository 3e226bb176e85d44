//! The offload engine on its own, driven like a device: software sets up an NVMe-oF SRQ,
//! a backend controller and a namespace, accepts a host connection on a QP of that SRQ and
//! enables offload; the host's I/O is then served by the engine without software.

use std::sync::Arc;
use std::time::Duration;

use harness::api::{NsMapping, OffloadEvent, OffloadProvider, QpNvmfFlags};
use harness::backend::emulated::{Fault, LbaFormat};
use harness::backend::CtrlState;
use harness::fabric::{wait, Access, RecvWr};
use harness::initiator::misbehave;
use harness::initiator::DataMode;
use harness::wire::Status;
use reference_target::quirks::{Quirk, Quirks};
use reference_target::testing::data::{counting, write_ok, write_read_back};
use reference_target::testing::engine::{rig, EngineRig, BOUND, DEPTH};

/// The full profile, 4096-byte blocks, offload on, with one quirk.
async fn quirky(seed: u64, quirk: Quirk) -> EngineRig {
    quirky_on(seed, "full", quirk, true).await
}

/// Profile `profile`, 4096-byte blocks, offloaded when `offload`, with one quirk.
async fn quirky_on(seed: u64, profile: &str, quirk: Quirk, offload: bool) -> EngineRig {
    rig(seed, profile, LbaFormat::L4096, Quirks::one(quirk), offload).await
}

/// Makes every backend command of the rig hang.
fn never_complete(r: &EngineRig) {
    let never = Fault::Timeout {
        on: harness::backend::emulated::CmdMatch::Any,
        delay: None,
    };
    r.backend.inject(never).unwrap();
}

#[tokio::test(start_paused = true)]
async fn offloaded_write_then_read_back_every_format() {
    for (i, format) in LbaFormat::SUPPORTED.into_iter().enumerate() {
        let mut r = rig(1 + i as u64, "full", format, Quirks::none(), true).await;
        let bs = format.lba_data_size() as usize;
        let blocks = (64 * 1024 / bs).max(1);
        let mut total = 0;
        let mut slba = 0;
        while total < (1 << 20) {
            let data = counting(blocks * bs, slba as u8);
            let mode = if slba % 2 == 0 {
                DataMode::Keyed
            } else {
                DataMode::KeyedInvalidate
            };
            write_read_back(&mut r.io, slba, &data, mode, &format!("{format:?}")).await;
            total += data.len();
            slba += blocks as u64;
        }
        // Let the last response's acknowledgement come back (bounded).
        for _ in 0..1000 {
            if r.engine.commands_in_flight() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_micros(10)).await;
        }
        let k = r.engine.ns_counters(r.ctrl, 7).unwrap();
        assert_eq!(k.write_cmds, k.read_cmds);
        assert_eq!(k.write_blocks, slba, "{format:?}");
        assert_eq!(k.error_cmds, 0);
        // Nothing reached software.
        assert!(r.ctx.poll_cq(r.target_cq, 16).unwrap().is_empty());
        assert_eq!(
            r.engine.commands_in_flight(),
            0,
            "{:#?}",
            r.engine.describe_in_flight()
        );
        assert_eq!(r.backend.state(), CtrlState::Running);
        let _ = (&r.srq, r.target_qp);
    }
}

#[tokio::test(start_paused = true)]
async fn in_capsule_write_and_flush_are_offloaded() {
    let mut r = rig(11, "full", LbaFormat::L512, Quirks::none(), true).await;
    let data = counting(1024, 3);
    let w = r.io.write(10, &data, DataMode::InCapsule).await.unwrap();
    assert_eq!(w.cqe.status, Status::SUCCESS);
    assert_eq!(r.io.flush().await.unwrap().cqe.status, Status::SUCCESS);
    let rd = r.io.read(10, 2, DataMode::Keyed).await.unwrap();
    assert_eq!(rd.data, data);
    let k = r.engine.ns_counters(r.ctrl, 7).unwrap();
    assert_eq!((k.write_inline_cmds, k.flush_cmds, k.read_cmds), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn without_offload_commands_reach_software() {
    let mut r = rig(12, "full", LbaFormat::L4096, Quirks::none(), false).await;
    // Software posts a receive on the NVMe-oF SRQ and sees the capsule there.
    let pd = r.ctx.alloc_pd().unwrap();
    let rbuf = r.ctx.reg_mr(pd, 1024, Access::LOCAL_WRITE).unwrap();
    r.ctx
        .post_srq_recv(
            r.srq.srq,
            &RecvWr {
                wr_id: 99,
                sg_list: vec![rbuf.sge(0, 1024)],
            },
        )
        .unwrap();
    let cid = misbehave::send_before_connect(r.io.queue(), 7).unwrap();
    let wc = wait::completion(r.ctx.as_ref(), r.target_cq, BOUND)
        .await
        .unwrap();
    assert_eq!(wc.wr_id, 99);
    assert_eq!(wc.qp, r.target_qp);
    assert_eq!(wc.byte_len, 64);
    let mut sqe = [0u8; 64];
    r.ctx.mr_read(rbuf.id, 0, &mut sqe).unwrap();
    assert_eq!(u16::from_le_bytes([sqe[2], sqe[3]]), cid);
    assert_eq!(r.engine.ns_counters(r.ctrl, 7).unwrap().read_cmds, 0);
}

#[tokio::test(start_paused = true)]
async fn pci_error_raises_event_and_answers_in_flight() {
    let mut r = rig(13, "full", LbaFormat::L4096, Quirks::none(), true).await;
    write_ok(&mut r.io, 0, &counting(4096, 1), DataMode::Keyed).await;
    r.backend.inject(Fault::PciError).unwrap();
    let rd = r.io.read(0, 1, DataMode::Keyed).await.unwrap();
    assert_eq!(rd.cqe.status.code(), Status::INTERNAL_ERROR.code());
    let ev = r.next_event().await;
    assert_eq!(ev, OffloadEvent::NvmePciErr { ctrl: r.ctrl });
}

/// A device that injects its own backend PCI error (ABI 2 `inject_pci_error`, here through
/// the C vtable): the same event and answers as a controller's, the controller itself
/// untouched; an unknown controller is EINVAL. Its backend access is a software device's
/// until set.
#[tokio::test(start_paused = true)]
async fn a_device_injected_pci_error_is_a_pci_error() {
    use harness::backend::{BackendAccess, DoorbellMode};
    let mut r = rig(16, "full", LbaFormat::L4096, Quirks::none(), true).await;
    let c: Arc<dyn OffloadProvider> =
        Arc::new(harness::ffi::bridge::loopback_offload(r.engine.provider()));
    assert_eq!(c.backend_access(), BackendAccess::default());
    let memory = BackendAccess {
        doorbells: DoorbellMode::Memory,
        prp: None,
    };
    r.engine.set_backend_access(memory);
    assert_eq!(c.backend_access(), memory);
    assert_eq!(
        c.inject_pci_error(harness::api::CtrlHandle(r.ctrl.0 + 100))
            .unwrap_err()
            .errno(),
        nix::errno::Errno::EINVAL
    );
    c.inject_pci_error(r.ctrl).unwrap();
    let ev = r.next_event().await;
    assert_eq!(ev, OffloadEvent::NvmePciErr { ctrl: r.ctrl });
    let rd = r.io.read(0, 1, DataMode::Keyed).await.unwrap();
    assert_eq!(rd.cqe.status.code(), Status::INTERNAL_ERROR.code());
    assert_eq!(
        r.backend.state(),
        CtrlState::Running,
        "the controller is untouched"
    );
}

#[tokio::test(start_paused = true)]
async fn backend_timeout_raises_event_and_answers() {
    let mut r = rig(14, "full", LbaFormat::L4096, Quirks::none(), true).await;
    never_complete(&r);
    let t0 = tokio::time::Instant::now();
    let rd = r.io.read(0, 1, DataMode::Keyed).await.unwrap();
    assert_eq!(rd.cqe.status.code(), Status::INTERNAL_ERROR.code());
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "answered before the 1 s timeout"
    );
    let ev = r.next_event().await;
    assert!(matches!(ev, OffloadEvent::NvmeTimeout { ctrl, .. } if ctrl == r.ctrl));
}

#[tokio::test(start_paused = true)]
async fn unsupported_op_on_minimal_device_errors_the_qp() {
    let mut r = rig(15, "minimal", LbaFormat::L4096, Quirks::none(), true).await;
    // Writes are offloaded on minimal.
    write_ok(&mut r.io, 0, &counting(4096, 1), DataMode::Keyed).await;
    let rd = r.io.read(0, 1, DataMode::Keyed).await;
    assert!(rd.is_err(), "a read has no answer: the QP went to error");
    let ev = r.next_event().await;
    assert!(
        matches!(ev, OffloadEvent::UnsupportedNvmfOp { opcode: 0x02, .. }),
        "{ev:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn quirk_unsupported_op_silent_sends_no_event() {
    let mut r = quirky_on(16, "minimal", Quirk::UnsupportedOpSilent, true).await;
    let _ = r.io.read(0, 1, DataMode::Keyed).await;
    assert_eq!(r.engine.poll_event(), None);
}

#[tokio::test(start_paused = true)]
async fn staging_exhaustion_makes_commands_wait_not_overwrite() {
    // 1 MiB staging, 128 KiB commands: more in flight than fit at once.
    let mut r = rig(17, "full", LbaFormat::L4096, Quirks::none(), true).await;
    let blocks = 32u32; // 128 KiB
    let bs = 4096usize;
    let mut expected = Vec::new();
    for i in 0..16u64 {
        let data = counting(blocks as usize * bs, i as u8);
        let w =
            r.io.write(i * u64::from(blocks), &data, DataMode::Keyed)
                .await
                .unwrap();
        assert_eq!(w.cqe.status, Status::SUCCESS);
        expected.push(data);
    }
    for (i, data) in expected.iter().enumerate() {
        let rd =
            r.io.read(i as u64 * u64::from(blocks), blocks, DataMode::Keyed)
                .await
                .unwrap();
        assert!(&rd.data == data, "block range {i} corrupted");
    }
}

#[tokio::test(start_paused = true)]
async fn api_errors_follow_the_rule_book() {
    let r = rig(18, "full", LbaFormat::L4096, Quirks::none(), true).await;
    let e = |m: NsMapping| r.engine.map_nsid(r.ctrl, &m).unwrap_err().errno();
    use nix::errno::Errno;
    let m = |fe, lba| NsMapping {
        fe_nsid: fe,
        nvme_nsid: 1,
        lba_data_size: lba,
    };
    assert_eq!(e(m(7, 4096)), Errno::EEXIST);
    assert_eq!(e(m(0, 4096)), Errno::EINVAL);
    assert_eq!(e(m(0xFFFF_FFFF, 4096)), Errno::EINVAL);
    assert_eq!(e(m(8, 1000)), Errno::EOPNOTSUPP);
    assert_eq!(
        r.engine.unmap_nsid(r.ctrl, 9).unwrap_err().errno(),
        Errno::ENOENT
    );
    assert_eq!(
        r.engine
            .remove_nvme_ctrl(r.srq.handle, r.ctrl)
            .unwrap_err()
            .errno(),
        Errno::EBUSY
    );
    assert_eq!(
        r.engine
            .qp_set_nvmf(r.target_qp, QpNvmfFlags::empty())
            .unwrap_err()
            .errno(),
        Errno::EOPNOTSUPP
    );
}

// ---- quirks: each one breaks its rule, observably ----

fn rw_map(fe: u32, lba: u32) -> NsMapping {
    NsMapping {
        fe_nsid: fe,
        nvme_nsid: 1,
        lba_data_size: lba,
    }
}

#[tokio::test(start_paused = true)]
async fn quirk_mapping_rules() {
    use nix::errno::Errno;
    let r = quirky(20, Quirk::UnmapMissingOk).await;
    assert_eq!(
        r.engine.unmap_nsid(r.ctrl, 9),
        Ok(()),
        "unmap of a missing nsid returns 0"
    );
    let r = quirky(21, Quirk::LbaSizeUnchecked).await;
    assert_eq!(
        r.engine.map_nsid(r.ctrl, &rw_map(8, 1000)),
        Ok(()),
        "ENOTSUP not enforced"
    );
    let r = rig(22, "full", LbaFormat::L4096, Quirks::none(), true).await;
    assert_eq!(
        r.engine
            .map_nsid(r.ctrl, &rw_map(8, 1000))
            .unwrap_err()
            .errno(),
        Errno::EOPNOTSUPP
    );
}

#[tokio::test(start_paused = true)]
async fn quirk_no_pci_err_event_and_lost_inflight() {
    let mut r = quirky(23, Quirk::NoPciErrEvent).await;
    r.backend.inject(Fault::PciError).unwrap();
    let rd = r.io.read(0, 1, DataMode::Keyed).await.unwrap();
    assert_eq!(
        rd.cqe.status.code(),
        Status::INTERNAL_ERROR.code(),
        "still answered"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(r.engine.poll_event(), None, "but no NVME_PCI_ERR");

    let r = quirky(24, Quirk::LoseInflightOnPciErr).await;
    never_complete(&r);
    let mut io = r.io;
    let host = tokio::spawn(async move { io.read(0, 1, DataMode::Keyed).await.is_err() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.backend.inject(Fault::PciError).unwrap();
    assert!(host.await.unwrap(), "the in-flight read is never answered");
}

#[tokio::test(start_paused = true)]
async fn quirk_no_timeout_event_never_answers() {
    let mut r = quirky(25, Quirk::NoTimeoutEvent).await;
    never_complete(&r);
    assert!(
        r.io.read(0, 1, DataMode::Keyed).await.is_err(),
        "no answer within the host bound"
    );
    assert_eq!(r.engine.poll_event(), None);
}

#[tokio::test(start_paused = true)]
async fn quirk_early_write_ack_answers_before_the_backend() {
    let mut r = quirky(26, Quirk::EarlyWriteAck).await;
    never_complete(&r);
    // Acknowledged although the backend never completed.
    write_ok(&mut r.io, 0, &counting(4096, 9), DataMode::Keyed).await;
}

#[tokio::test(start_paused = true)]
async fn quirk_cq_phase_stuck_stalls_after_a_wrap() {
    let mut r = quirky(27, Quirk::CqPhaseStuck).await;
    let mut failed_at = None;
    for i in 0..(2 * DEPTH as u64) {
        match r
            .io
            .write(i, &counting(4096, i as u8), DataMode::Keyed)
            .await
        {
            Ok(c) if c.cqe.status.is_success() => {}
            _ => {
                failed_at = Some(i);
                break;
            }
        }
    }
    assert_eq!(
        failed_at,
        Some(u64::from(DEPTH)),
        "stalls right after the first wrap"
    );
}

#[tokio::test(start_paused = true)]
async fn quirk_sgl_length_unchecked_transfers_past_the_sgl() {
    use harness::wire::SglRepr;
    // Conforming: an SGL shorter than the data goes to software (no offload).
    let mut r = rig(28, "full", LbaFormat::L4096, Quirks::none(), true).await;
    let sqe = misbehave::read_sqe(1, 7, 0, 2, SglRepr::keyed(0x1000, 4096, 0x1234)).unwrap();
    misbehave::send_raw(r.io.queue(), &sqe).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(r.engine.ns_counters(r.ctrl, 7).unwrap().read_cmds, 0);
    // Quirk: the engine offloads it anyway.
    let mut r = quirky(29, Quirk::SglLengthUnchecked).await;
    let sqe = misbehave::read_sqe(1, 7, 0, 2, SglRepr::keyed(0x1000, 4096, 0x1234)).unwrap();
    misbehave::send_raw(r.io.queue(), &sqe).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(r.engine.ns_counters(r.ctrl, 7).unwrap().read_cmds, 1);
}

#[tokio::test(start_paused = true)]
async fn quirk_hang_one_command() {
    let mut r = quirky(30, Quirk::HangOneCommand).await;
    assert!(
        r.io.read(0, 1, DataMode::Keyed).await.is_err(),
        "the first read hangs"
    );
}

#[tokio::test(start_paused = true)]
async fn quirk_offload_at_qp_creation_serves_before_enable() {
    let mut r = quirky_on(31, "full", Quirk::OffloadAtQpCreation, false).await;
    // Served although offload was never enabled.
    write_ok(&mut r.io, 0, &counting(4096, 1), DataMode::Keyed).await;
    assert_eq!(r.engine.ns_counters(r.ctrl, 7).unwrap().write_cmds, 1);
}

#[tokio::test(start_paused = true)]
async fn quirk_eexist_per_ctrl_is_checked_per_controller() {
    // Same controller: EEXIST even with the quirk; the quirk shows with a second
    // controller of the same SRQ (the suites check that case).
    let r = quirky(32, Quirk::EexistPerCtrl).await;
    assert_eq!(
        r.engine
            .map_nsid(r.ctrl, &rw_map(7, 4096))
            .unwrap_err()
            .errno(),
        nix::errno::Errno::EEXIST
    );
}
