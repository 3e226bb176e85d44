//! The reference target on the simulated fabric, built once per fuzzing process, and the
//! exchanges the `target_*` fuzz targets make with it.
//!
//! The world: a [`Target`] on `sim0` with two subsystems — `sub0` offloaded (its I/O
//! queues get `qp_set_nvmf(ENABLE)`; capsules arrive as SRQ receives the engine sees
//! first) and `sub1` served by software only — and, on `sim1`, one enabled host
//! controller per subsystem, each with a well-behaved I/O queue (qid 1). Everything runs
//! on a current-thread tokio runtime with a paused clock, so waits cost virtual time only.
//!
//! Each input gets **fresh** queues (a new I/O queue, qid rotating over 2..=64, or a new
//! admin queue / controller), so that one input cannot make the next fail; after the
//! exchange the fresh queue is disconnected and the well-behaved queue of the subsystem
//! the input went to (and every 8th input, both) must still complete a one-block read
//! with Successful Completion — otherwise the target was
//! damaged by the input, and that is reported as a crash (a panic, which libFuzzer turns
//! into an abort). A panic inside any target task aborts too (libfuzzer-sys installs an
//! aborting panic hook), so a spawned task's panic is not swallowed by tokio.
//!
//! The world lives as long as the process ([`REBUILD_EVERY`]; `NVMF_FUZZ_REBUILD_EVERY=N`
//! rebuilds it every N inputs). It grows by well under 1 KiB an input (the target's
//! event log), about 1 GiB over 1.5 million inputs: for runs longer than an hour or two,
//! use libFuzzer's `-fork=N`, whose jobs are fresh processes.

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::time::Duration;

use harness::fabric::sim::SimFabric;
use harness::fabric::DeviceContext;
use harness::initiator::connect::{cm_establish, CmOptions};
use harness::initiator::{
    misbehave, Controller, DataMode, HostConfig, HostQueue, IoQueue, QueueSpec,
};
use harness::wire::{fabrics_field, Status, SQE_LEN};
use reference_target::control::Target;
use reference_target::testing::target::{self as testing, addr, TargetRig};

/// Largest capsule an input sends (SQE + in-capsule data), in bytes.
pub const MAX_CAPSULE: usize = 8192;
/// Inputs between two rebuilds of the world: never, by default. A rebuilt world does not
/// free the old one (about 5 MiB each: the target and fabric objects keep each other
/// alive), while a kept world grows by well under 1 KiB an input (the target's event log).
pub const REBUILD_EVERY: u64 = u64::MAX;

/// The offloaded subsystem (port 4420) and the software-only one (port 4421).
pub use reference_target::testing::target::{SUB0, SUB1};

/// The target configuration of the world: both subsystems with 1 MiB namespaces, `sub0`
/// with a second one of 512+8-byte blocks.
pub fn config() -> String {
    testing::two_subs_with("1MiB", &["4096", "512+8"])
}

/// Bound of each wait of the well-behaved side (virtual time).
const BOUND: Duration = Duration::from_secs(2);
/// How long the target gets to answer a fuzzed capsule (virtual time).
const ANSWER: Duration = Duration::from_millis(10);

/// Where an input's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// A fresh, connected I/O queue of the offloaded subsystem: the engine's SRQ receive.
    OffloadedIo,
    /// A fresh, connected I/O queue of the software-only subsystem.
    SoftwareIo,
    /// The admin queue of a fresh controller, before CC.EN (capsules of at most 1088 bytes).
    Admin,
    /// The admin queue of a fresh, enabled controller (at most 1088 bytes).
    AdminEnabled,
    /// The first capsule of a fresh admin queue, CM-connected but without Connect: the
    /// target's Connect handling.
    ConnectAdmin,
    /// The first capsule of a fresh I/O queue of the offloaded subsystem (CM QID taken from
    /// the capsule's Connect QID field), without Connect.
    ConnectIo,
    /// The RDMA CM request private data (at most 56 bytes) of a fresh queue, then, when
    /// accepted, a disconnect.
    CmPrivateData,
}

impl Path {
    /// The paths of `target_capsule`, selected by an input's first byte.
    pub const CAPSULE: [Path; 4] = [
        Path::OffloadedIo,
        Path::SoftwareIo,
        Path::Admin,
        Path::AdminEnabled,
    ];
    /// The paths of `target_connect`, selected by an input's first byte.
    pub const CONNECT: [Path; 3] = [Path::ConnectAdmin, Path::ConnectIo, Path::CmPrivateData];
}

struct Inner {
    _fabric: Arc<SimFabric>,
    target: Target,
    host: Arc<dyn DeviceContext>,
    ctrl_off: Controller,
    ctrl_sw: Controller,
    good_off: IoQueue,
    good_sw: IoQueue,
    next_qid: u16,
}

/// A current-thread runtime with a paused clock, on which the simulated fabric keeps its
/// nanosecond virtual time (`harness::fabric::sim::runtime`).
fn runtime() -> tokio::runtime::Runtime {
    harness::fabric::sim::runtime().expect("tokio runtime")
}

/// [`REBUILD_EVERY`], or `NVMF_FUZZ_REBUILD_EVERY` from the environment.
fn rebuild_every() -> u64 {
    static N: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("NVMF_FUZZ_REBUILD_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(REBUILD_EVERY)
    })
}

/// The runtime and the running target.
pub struct World {
    rt: tokio::runtime::Runtime,
    inner: Option<Inner>,
    inputs: u64,
}

thread_local! {
    // Never dropped: at process exit tokio's own thread-locals may already be gone, and
    // dropping the fabric's objects needs them.
    static WORLD: RefCell<Option<ManuallyDrop<World>>> = const { RefCell::new(None) };
}

/// Runs `input` through `path` in this thread's world (built on first use).
pub fn run(path: Path, input: &[u8]) {
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        w.get_or_insert_with(|| ManuallyDrop::new(World::new()))
            .run(path, input)
    })
}

fn host_config(subnqn: &str) -> HostConfig {
    let mut c = HostConfig::new(subnqn);
    // No keep-alive: the well-behaved controllers live across many inputs.
    c.kato_ms = 0;
    c.command_bound = BOUND;
    c.cm_bound = BOUND;
    c
}

impl World {
    /// A current-thread runtime with a paused clock; the target is started on first use.
    pub fn new() -> World {
        World {
            rt: runtime(),
            inner: None,
            inputs: 0,
        }
    }

    /// Starts the target and connects the well-behaved controllers and queues.
    async fn build(seed: u64) -> Inner {
        let rig = testing::start(seed, &config());
        let mut ctrl_off = testing::connect(&rig, 4420, host_config(SUB0)).await;
        let mut ctrl_sw = testing::connect(&rig, 4421, host_config(SUB1)).await;
        let TargetRig {
            fabric,
            target,
            host,
        } = rig;
        let good_off = ctrl_off
            .connect_io_queue(1, 32, 0, 1, 4096)
            .await
            .expect("sub0 io queue 1");
        let good_sw = ctrl_sw
            .connect_io_queue(1, 32, 0, 1, 4096)
            .await
            .expect("sub1 io queue 1");
        Inner {
            _fabric: fabric,
            target,
            host,
            ctrl_off,
            ctrl_sw,
            good_off,
            good_sw,
            next_qid: 2,
        }
    }

    /// Sends `input` through `path`, then checks the well-behaved queues.
    pub fn run(&mut self, path: Path, input: &[u8]) {
        if self.inputs % rebuild_every() == 0 {
            if let Some(old) = self.inner.take() {
                {
                    let _enter = self.rt.enter();
                    let Inner { target, .. } = old;
                    target.shutdown();
                }
                // A new runtime too: dropping the old one drops every task the target
                // spawned, and with them what they hold.
                let rt = std::mem::replace(&mut self.rt, runtime());
                drop(rt);
            }
        }
        self.inputs += 1;
        let seed = self.inputs;
        let inner = &mut self.inner;
        self.rt.block_on(async move {
            if inner.is_none() {
                *inner = Some(World::build(seed).await);
            }
            let w = inner.as_mut().expect("built");
            exchange(w, path, input).await;
            check_good(w, path, input, seed).await;
        });
    }
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

/// The next I/O queue ID for a fresh queue (2..=64, rotating: the target frees a qid when
/// its queue's disconnect is handled, which may be after the host has moved on).
fn next_qid(w: &mut Inner) -> u16 {
    let q = w.next_qid;
    w.next_qid = if q >= 64 { 2 } else { q + 1 };
    q
}

/// Posts `capsule` on `q` and gives the target [`ANSWER`] to respond.
async fn send_and_wait(q: &mut HostQueue, capsule: &[u8]) {
    let capsule = &capsule[..capsule.len().min(q.capsule_capacity())];
    match misbehave::send_raw(q, capsule) {
        Ok(Some(cid)) => {
            let _ = q.wait_response(cid, ANSWER).await;
        }
        _ => tokio::time::sleep(ANSWER).await,
    }
}

/// Disconnects a fresh queue, whatever state the input left it in.
async fn close(q: HostQueue) {
    let _ = q.disconnect(BOUND).await;
}

async fn exchange(w: &mut Inner, path: Path, input: &[u8]) {
    let input = &input[..input.len().min(MAX_CAPSULE)];
    match path {
        Path::OffloadedIo | Path::SoftwareIo => {
            let ctrl = if path == Path::OffloadedIo {
                &mut w.ctrl_off
            } else {
                &mut w.ctrl_sw
            };
            // A few qids in case the target has not yet freed the next one.
            let mut io = None;
            for _ in 0..4 {
                let qid = {
                    let q = w.next_qid;
                    w.next_qid = if q >= 64 { 2 } else { q + 1 };
                    q
                };
                match ctrl
                    .connect_io_queue(qid, 32, (MAX_CAPSULE - SQE_LEN) as u32, 1, 4096)
                    .await
                {
                    Ok(q) => {
                        io = Some(q);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
            let io = io.unwrap_or_else(|| {
                panic!(
                    "{path:?}: no fresh I/O queue could be connected; target log tail: {:?}",
                    log_tail(&w.target)
                )
            });
            let mut q = io.into_inner();
            send_and_wait(&mut q, input).await;
            close(q).await;
        }
        Path::Admin | Path::AdminEnabled => {
            let sub = SUB0;
            let mut c = Controller::connect(w.host.clone(), addr(4420), host_config(sub))
                .await
                .unwrap_or_else(|e| panic!("{path:?}: fresh admin connect failed: {e}"));
            if path == Path::AdminEnabled {
                c.enable()
                    .await
                    .unwrap_or_else(|e| panic!("{path:?}: enable failed: {e}"));
            }
            send_and_wait(c.admin(), input).await;
            let _ = c.disconnect().await;
        }
        Path::ConnectAdmin | Path::ConnectIo => {
            let qid = if path == Path::ConnectAdmin {
                0
            } else {
                let f = fabrics_field::CONNECT_QID;
                match input.get(f.clone()) {
                    Some(b) => u16::from_le_bytes([b[0], b[1]]).clamp(1, 64),
                    None => next_qid(w),
                }
            };
            let pd = w.ctrl_off.pd();
            let spec = QueueSpec::io(qid, 32, (MAX_CAPSULE - SQE_LEN) as u32);
            let mut q = HostQueue::create(w.host.clone(), pd, spec, BOUND)
                .unwrap_or_else(|e| panic!("{path:?}: host queue: {e}"));
            let opts = CmOptions::for_queue(&q);
            if let Err(e) = cm_establish(&mut q, addr(4420), &opts, BOUND).await {
                // A qid still held by a queue the target has not closed yet.
                let _ = q.abort();
                if qid == 0 {
                    panic!("{path:?}: CM connect of an admin queue failed: {e}");
                }
                return;
            }
            send_and_wait(&mut q, input).await;
            close(q).await;
        }
        Path::CmPrivateData => {
            let pd = w.ctrl_off.pd();
            let qid = next_qid(w);
            let mut q = HostQueue::create(w.host.clone(), pd, QueueSpec::io(qid, 32, 0), BOUND)
                .unwrap_or_else(|e| panic!("{path:?}: host queue: {e}"));
            let private_data = input[..input.len().min(56)].to_vec();
            match misbehave::connect_with_private_data(&mut q, addr(4420), private_data, BOUND)
                .await
            {
                Ok(_) => close(q).await,
                Err(_) => {
                    let _ = q.abort();
                }
            }
        }
    }
}

fn log_tail(t: &Target) -> Vec<String> {
    let ev = t.events();
    ev[ev.len().saturating_sub(8)..].to_vec()
}

/// The well-behaved queue of the subsystem the input went to must still complete a
/// read; the other subsystem's is checked every 8th input (they share the device).
async fn check_good(w: &mut Inner, path: Path, input: &[u8], seq: u64) {
    let sw_only = path == Path::SoftwareIo;
    let both = seq % 8 == 0;
    let mut queues = Vec::new();
    if !sw_only || both {
        queues.push(("sub0 (offloaded)", &mut w.good_off));
    }
    if sw_only || both {
        queues.push(("sub1 (software)", &mut w.good_sw));
    }
    for (name, q) in queues {
        match q.read(0, 1, DataMode::Keyed).await {
            Ok(c) if c.cqe.status == Status::SUCCESS => {}
            Ok(c) => panic!(
                "after a {path:?} input of {} bytes, a read on the well-behaved {name} queue \
                 completed with {}; target log tail: {:?}",
                input.len(),
                c.cqe.status,
                log_tail(&w.target)
            ),
            Err(e) => panic!(
                "after a {path:?} input of {} bytes, a read on the well-behaved {name} queue \
                 failed: {e}; target log tail: {:?}",
                input.len(),
                log_tail(&w.target)
            ),
        }
    }
}
