//! Two-host mode's control channel, with two processes on loopback: the runner's client
//! (this test) against `nvmf-reference-target --control 127.0.0.1:0 --fabric sim`.
//! Starting and stopping targets (the same port again and again), what only the target
//! sees, fault injection and the event it raises, the trace, and every refusal: the
//! target keeps serving after each.

mod control_rig;

use std::cell::Cell;
use std::time::Duration;

use harness::backend::emulated::Fault;
use harness::backend::vfio::broker::RealFault;
use reference_target::quirks::Quirks;
use reference_target::remote::{RemoteError, RemoteTarget, REPLY_BOUND};

use control_rig::{
    config, full, refused, runner, spawn_target, start_and_stop, LabSecret, BOUND, SUB,
};

#[tokio::test]
async fn a_runner_drives_targets_over_the_channel() {
    let lab = LabSecret::new("drives");
    let p = spawn_target(Some(&lab));
    let t = runner(&p, &lab.security()).await.expect("hello");
    assert_eq!(t.info().fabric, "sim");
    assert_eq!(t.info().device, "sim0");
    assert_eq!(
        t.info().fingerprint,
        p.fingerprint,
        "the certificate the target printed"
    );

    refused(t.controllers(SUB).await, "no target is running");
    // one runner at a time: a second one is told who holds the target
    match runner(&p, &lab.security()).await {
        Err(RemoteError::Refused {
            op: "hello",
            message,
        }) => {
            assert!(message.contains("busy: runner 127.0.0.1:"), "{message}")
        }
        other => panic!("a second runner was not refused: {other:?}"),
    }
    for round in 0..3 {
        // the same port every time: a stopped target has let go of its device
        let ip = t
            .start(&config(), &full(), &Quirks::none())
            .await
            .expect("start");
        assert_eq!(ip.to_string(), "127.0.10.1", "round {round}");
        refused(
            t.start(&config(), &full(), &Quirks::none()).await,
            "a target is running",
        );
        assert_eq!(t.controllers(SUB).await.unwrap(), Vec::<u16>::new());
        assert_eq!(t.software_io_commands(SUB).await.unwrap(), 0);
        assert_eq!(t.backend_counters(SUB, 1).await.unwrap().commands, 0);
        assert_eq!(
            t.backend_blocks(SUB, 1, 0, 2).await.unwrap(),
            vec![0u8; 8192]
        );
        refused(t.backend_counters(SUB, 9).await, "nsid 9");
        refused(t.backend_blocks(SUB, 1, 0, 1 << 20).await, "count");

        // a backend PCI error: the device raises NVME_PCI_ERR, the control plane reacts
        t.inject(SUB, 1, Fault::PciError).await.expect("inject");
        let ev = t.wait_event("NVME_PCI_ERR", BOUND).await.unwrap();
        assert!(ev.is_some(), "no NVME_PCI_ERR event within {BOUND:?}");
        assert_eq!(
            t.wait_event("never-logged", Duration::from_millis(50))
                .await
                .unwrap(),
            None
        );
        refused(
            t.inject("nqn.nobody", 1, Fault::PciError).await,
            "nqn.nobody",
        );

        let live = t.trace().await.unwrap();
        let (trace, events) = t.stop().await.expect("stop");
        assert!(trace.len() >= live.len());
        assert!(
            trace
                .iter()
                .any(|l| l.starts_with("device") && l.contains("create_srq")),
            "{trace:#?}"
        );
        assert!(
            events.iter().any(|l| l.contains("NVME_PCI_ERR")),
            "{events:#?}"
        );
        refused(t.stop().await, "no target is running");
    }

    // a configuration the target cannot take: the message names the field
    refused(
        t.start(
            "[[port]]\naddr = \"nowhere\"\nsubsystem = \"x\"\n",
            &full(),
            &Quirks::none(),
        )
        .await,
        "port.addr",
    );
    // a profile whose caps contradict each other
    let mut bad = full();
    bad.caps.min_ioccsz = bad.caps.max_ioccsz + 1;
    refused(
        t.start(&config(), &bad, &Quirks::none()).await,
        "inconsistent caps",
    );
    // a target host that lends no real controller says so in its hello, and refuses a
    // configuration served from one, and a real fault, naming how to lend one
    assert_eq!(t.info().real, None);
    let vfio = format!(
        "[[port]]\naddr = \"127.0.10.1:4420\"\nsubsystem = \"{SUB}\"\n\n\
         [[subsystem]]\nnqn = \"{SUB}\"\nallow_any_host = true\n\n\
         [subsystem.backend]\nkind = \"vfio\"\npci = \"0000:01:00.0\"\n"
    );
    refused(
        t.start(&vfio, &full(), &Quirks::none()).await,
        "backend vfio:0000:01:00.0: this target host lends no real controller (start \
         nvmf-reference-target --control with --backend vfio:PCI --allow-destructive PCI)",
    );
    refused(
        t.real_fault(RealFault::Stall).await,
        "this target host lends no real controller",
    );
    // and the channel still serves
    start_and_stop(&t).await.expect("after refusals");
}

/// A runner that goes away with a target running leaves the port free for the next one.
/// (Malformed requests, each with its answer: `control_malformed.rs`.)
#[tokio::test]
async fn a_runner_that_leaves_mid_target_frees_the_port() {
    let lab = LabSecret::new("leaves");
    let p = spawn_target(Some(&lab));
    let t = runner(&p, &lab.security()).await.expect("hello");
    assert_eq!(t.reply_bound(), REPLY_BOUND);
    // a run's --timeout-scale stretches every reply's bound, never shortens it
    let t = t.scaled(0.5);
    assert_eq!(t.reply_bound(), REPLY_BOUND);
    let t = t.scaled(2.5);
    assert_eq!(t.reply_bound(), REPLY_BOUND.mul_f64(2.5));
    t.start(&config(), &full(), &Quirks::none())
        .await
        .expect("start");
    drop(t);
    let t = runner(&p, &lab.security()).await.expect("hello");
    start_and_stop(&t)
        .await
        .expect("the port of the abandoned target is free again");
}

/// Runners cut off at random points of a session (their connection closed mid-request, as
/// a killed runner's is by its kernel): the target host is left clean every time. The next
/// runner is served at once, starts a target on the same ports, and finds nothing of the
/// last one's: no controller, no count, no data, no fault (the last one injected a PCI
/// error; the fresh target raises no NVME_PCI_ERR, and its backend serves).
#[tokio::test]
async fn runners_cut_off_at_random_points_leave_the_host_clean() {
    let lab = LabSecret::new("cut-off");
    let mut p = spawn_target(Some(&lab));
    let security = lab.security();
    // how far a session got: 0 nothing, 1 a target started, ... 6 stopped
    async fn session(t: &RemoteTarget, reached: &Cell<u8>) -> Result<(), RemoteError> {
        t.start(&config(), &full(), &Quirks::none()).await?;
        reached.set(1);
        t.inject(SUB, 1, Fault::PciError).await?;
        reached.set(2);
        t.wait_event("NVME_PCI_ERR", BOUND).await?;
        reached.set(3);
        t.backend_counters(SUB, 1).await?;
        reached.set(4);
        t.wait_event("never-logged", Duration::from_millis(100))
            .await?;
        reached.set(5);
        t.stop().await?;
        reached.set(6);
        Ok(())
    }
    // a whole session's length on this machine, then cut points spread over it
    let t = runner(&p, &security).await.expect("hello");
    let started = std::time::Instant::now();
    session(&t, &Cell::new(0)).await.expect("an uncut session");
    let whole = started.elapsed().as_millis() as u64 + 1;
    drop(t);
    let mut cut_with_a_target = 0;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..16 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let cut = Duration::from_millis(x % whole);
        let t = runner(&p, &security)
            .await
            .unwrap_or_else(|e| panic!("runner {i}, after a cut-off one: {e}"));
        let reached = Cell::new(0);
        let _ = tokio::time::timeout(cut, session(&t, &reached)).await;
        drop(t);
        if (1..6).contains(&reached.get()) {
            cut_with_a_target += 1;
        }
    }
    assert!(
        cut_with_a_target > 0,
        "no cut landed while a target ran (a session takes {whole} ms)"
    );
    let t = runner(&p, &security).await.expect("the runner after them");
    t.start(&config(), &full(), &Quirks::none())
        .await
        .expect("the same ports are free");
    assert_eq!(t.controllers(SUB).await.unwrap(), Vec::<u16>::new());
    assert_eq!(t.backend_counters(SUB, 1).await.unwrap().commands, 0);
    assert_eq!(
        t.backend_blocks(SUB, 1, 0, 2).await.unwrap(),
        vec![0u8; 8192]
    );
    let events = t.events().await.unwrap();
    assert!(
        !events.iter().any(|l| l.contains("NVME_PCI_ERR")),
        "a fault outlived its runner: {events:#?}"
    );
    // and the fresh backend is healthy: a PCI error injected now is raised now
    t.inject(SUB, 1, Fault::PciError).await.expect("inject");
    assert!(t.wait_event("NVME_PCI_ERR", BOUND).await.unwrap().is_some());
    t.stop().await.expect("stop");
    assert!(p.alive(), "the target process died");
}

/// Runners one after another, each connecting the moment the previous one hangs up (as the
/// children of `nvmf-conform run --isolate case` do): every one is served, none told the
/// target is busy.
#[tokio::test]
async fn back_to_back_runners_are_all_served() {
    let lab = LabSecret::new("back-to-back");
    let p = spawn_target(Some(&lab));
    let security = lab.security();
    for i in 0..20 {
        let t = runner(&p, &security)
            .await
            .unwrap_or_else(|e| panic!("runner {i}: {e}"));
        t.start(&config(), &full(), &Quirks::none())
            .await
            .unwrap_or_else(|e| panic!("runner {i}: {e}"));
        // half of them leave with their target running
        if i % 2 == 0 {
            t.stop().await.unwrap();
        }
    }
}
