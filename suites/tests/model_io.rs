//! Model-based property test of the whole target: random sequences of host connects and
//! disconnects, writes and reads, backend timeouts and PCI errors, run against the
//! reference control plane over the reference device, every answer and every byte read
//! checked against a small model:
//!
//! - each block of the namespace holds a set of values it may hold: one after a write the
//!   target acknowledged, two (old or new) after a write answered with an error; a read
//!   must return one of them, and pins the block to it;
//! - a timed-out command is answered 0/06h Internal Error with DNR clear, the controller is
//!   re-created and I/O works again with the data kept;
//! - after a PCI error the namespace is offline: every command is answered 0/82h Namespace
//!   Not Ready with DNR.
//!
//! It runs for every LBA format the `full` profile supports. A failing sequence shrinks to
//! a minimal one; proptest prints it with the format and stores its seed in
//! `proptest-regressions/` so it replays.

use std::time::Duration;

use harness::api::Profile;
use harness::backend::emulated::{CmdMatch, Fault, LbaFormat};
use harness::initiator::{Completion, Controller, DataMode, IoQueue};
use harness::wire::Status;
use proptest::prelude::*;
use reference_target::quirks::{Quirk, Quirks};
use suites::framework::session::pattern;
use suites::framework::target::{host_config, one_subsystem, TargetRig, PORT_A, SUB_A};
use suites::framework::Dut;

/// Blocks the sequences touch (a small range, so that writes overlap).
const BLOCKS: u64 = 16;
/// Most host queues connected at once.
const MAX_QUEUES: usize = 3;
/// Bound of every wait (virtual time).
const BOUND: Duration = Duration::from_secs(10);

/// One step.
#[derive(Debug, Clone)]
enum Op {
    /// A new host controller with one I/O queue.
    Connect,
    /// The I/O queue (and controller) at this index, modulo those connected, leaves.
    Disconnect(usize),
    Write {
        q: usize,
        lba: u64,
        blocks: u32,
        seed: u8,
    },
    Read {
        q: usize,
        lba: u64,
        blocks: u32,
    },
    /// The backend never completes the next command; this write is it.
    WriteTimesOut {
        q: usize,
        lba: u64,
        blocks: u32,
        seed: u8,
    },
    /// The backend never completes the next command; this read is it.
    ReadTimesOut {
        q: usize,
        lba: u64,
        blocks: u32,
    },
    /// The backend controller fails fatally.
    PciError,
}

fn range() -> impl Strategy<Value = (u64, u32)> {
    (0..BLOCKS, 1u32..=4).prop_map(|(lba, n)| (lba, n.min((BLOCKS - lba) as u32)))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Connect),
        1 => any::<usize>().prop_map(Op::Disconnect),
        6 => (any::<usize>(), range(), any::<u8>())
            .prop_map(|(q, (lba, blocks), seed)| Op::Write { q, lba, blocks, seed }),
        6 => (any::<usize>(), range()).prop_map(|(q, (lba, blocks))| Op::Read { q, lba, blocks }),
        1 => (any::<usize>(), range(), any::<u8>())
            .prop_map(|(q, (lba, blocks), seed)| Op::WriteTimesOut { q, lba, blocks, seed }),
        1 => (any::<usize>(), range()).prop_map(|(q, (lba, blocks))| Op::ReadTimesOut { q, lba, blocks }),
        // Terminal for the namespace: rare, so that most sequences keep doing I/O.
        1 => prop::bool::weighted(0.25).prop_map(|b| if b { Op::PciError } else { Op::Connect }),
    ]
}

fn format() -> impl Strategy<Value = LbaFormat> {
    let full = Profile::builtin("full").expect("full profile");
    let formats: Vec<LbaFormat> = LbaFormat::SUPPORTED
        .into_iter()
        .filter(|f| full.caps.supports_lba_data_size(f.lba_data_size()))
        .collect();
    prop::sample::select(formats)
}

/// What the model knows about the namespace.
struct Model {
    /// Per block: the values it may hold.
    blocks: Vec<Vec<Vec<u8>>>,
    /// A PCI error took the namespace offline.
    offline: bool,
}

impl Model {
    fn new(block: usize) -> Model {
        Model {
            blocks: vec![vec![vec![0; block]]; BLOCKS as usize],
            offline: false,
        }
    }

    /// Checks `data` read from `lba` against the model and pins each block to what was read.
    fn read(&mut self, lba: u64, data: &[u8], block: usize) -> Result<(), String> {
        for (i, got) in data.chunks(block).enumerate() {
            let b = lba as usize + i;
            let may = &mut self.blocks[b];
            if !may.iter().any(|v| v == got) {
                return Err(format!(
                    "block {b} holds data never written there (first bytes {:02x?}; it may hold {} value(s))",
                    &got[..8.min(got.len())],
                    may.len()
                ));
            }
            *may = vec![got.to_vec()];
        }
        Ok(())
    }

    /// A write of `data` at `lba`: acknowledged (`acked`) or answered with an error.
    fn write(&mut self, lba: u64, data: &[u8], block: usize, acked: bool) {
        for (i, new) in data.chunks(block).enumerate() {
            let may = &mut self.blocks[lba as usize + i];
            if acked {
                *may = vec![new.to_vec()];
            } else if !may.iter().any(|v| v == new) {
                may.push(new.to_vec());
            }
        }
    }
}

/// A connected host: its admin controller and I/O queue.
struct Host {
    ctrl: Controller,
    io: IoQueue,
}

/// The expected status of a data command given the model, as a check on `c`.
fn expect_ok_or_offline(m: &Model, c: &Completion, what: &str) -> Result<bool, String> {
    let s = c.cqe.status;
    if m.offline {
        if s.same_code(Status::NAMESPACE_NOT_READY) && s.dnr {
            return Ok(false);
        }
        return Err(format!(
            "{what} after a PCI error: expected 0/82h Namespace Not Ready with DNR, got {s} (dnr {})",
            s.dnr
        ));
    }
    if s.is_success() {
        return Ok(true);
    }
    Err(format!("{what}: expected success, got {s} (dnr {})", s.dnr))
}

/// Runs `ops` against a fresh reference target serving one namespace in `format` with
/// `quirks`; returns the first divergence from the model.
fn check_sequence(format: LbaFormat, ops: &[Op], quirks: Quirks) -> Result<(), String> {
    let rt = harness::fabric::sim::runtime().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let dut = Dut::reference(7, &Profile::builtin("full").unwrap(), quirks);
        let config = one_subsystem(format).replace(
            "queue_depth = 64\n",
            "queue_depth = 64\ncmd_timeout_ms = 100\n",
        );
        let rig = dut.target(&config).await.map_err(|e| e.message)?;
        let block = format.lba_data_size() as usize;
        let mut model = Model::new(block);
        let mut hosts: Vec<Host> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            step(&rig, format, &mut model, &mut hosts, op)
                .await
                .map_err(|e| format!("step {i} {op:?}: {e}"))?;
        }
        // Every block read back at the end.
        if hosts.is_empty() {
            step(&rig, format, &mut model, &mut hosts, &Op::Connect)
                .await
                .map_err(|e| format!("final connect: {e}"))?;
        }
        let last = Op::Read {
            q: 0,
            lba: 0,
            blocks: BLOCKS as u32,
        };
        step(&rig, format, &mut model, &mut hosts, &last)
            .await
            .map_err(|e| format!("final read of every block: {e}"))
    })
}

async fn step(
    rig: &TargetRig,
    format: LbaFormat,
    model: &mut Model,
    hosts: &mut Vec<Host>,
    op: &Op,
) -> Result<(), String> {
    let block = format.lba_data_size() as usize;
    let fault_next = |never: bool| {
        let fault = if never {
            Fault::Timeout {
                on: CmdMatch::Nth(1),
                delay: None,
            }
        } else {
            Fault::PciError
        };
        rig.local()
            .expect("a local target")
            .inject(SUB_A, 1, fault)
            .map_err(|e| format!("inject: {e}"))
    };
    // The backend's generation before a command, whose backend command is made never to
    // complete when `times_out`.
    let arm = |times_out: bool| -> Result<u32, String> {
        let generation = rig
            .local()
            .expect("a local target")
            .backend_generation(SUB_A)
            .unwrap_or(0);
        if times_out {
            fault_next(true)?;
        }
        Ok(generation)
    };
    match *op {
        Op::Connect => {
            if hosts.len() >= MAX_QUEUES {
                return Ok(());
            }
            let mut cfg = host_config(SUB_A);
            cfg.kato_ms = 0;
            let mut ctrl = rig.controller(PORT_A, cfg).await.map_err(|e| e.message)?;
            let io = ctrl
                .connect_io_queue(1, 16, 0, 1, format.lba_data_size())
                .await
                .map_err(|e| format!("I/O queue connect: {e}"))?;
            hosts.push(Host { ctrl, io });
        }
        Op::Disconnect(q) => {
            if hosts.is_empty() {
                return Ok(());
            }
            let h = hosts.remove(q % hosts.len());
            h.io.disconnect(BOUND)
                .await
                .map_err(|e| format!("I/O queue disconnect: {e}"))?;
            h.ctrl
                .disconnect()
                .await
                .map_err(|e| format!("admin disconnect: {e}"))?;
        }
        Op::Write {
            q,
            lba,
            blocks,
            seed,
        }
        | Op::WriteTimesOut {
            q,
            lba,
            blocks,
            seed,
        } => {
            let Some(io) = io_queue(hosts, q) else {
                return Ok(());
            };
            let times_out = matches!(op, Op::WriteTimesOut { .. }) && !model.offline;
            let generation = arm(times_out)?;
            let data = pattern(blocks as usize * block, seed);
            let c = io
                .write(lba, &data, DataMode::Keyed)
                .await
                .map_err(|e| format!("write: {e}"))?;
            if times_out {
                timed_out(rig, generation, &c, "the write that timed out").await?;
                model.write(lba, &data, block, false);
            } else {
                let acked = expect_ok_or_offline(model, &c, "write")?;
                if acked {
                    model.write(lba, &data, block, true);
                }
            }
        }
        Op::Read { q, lba, blocks } | Op::ReadTimesOut { q, lba, blocks } => {
            let Some(io) = io_queue(hosts, q) else {
                return Ok(());
            };
            let times_out = matches!(op, Op::ReadTimesOut { .. }) && !model.offline;
            let generation = arm(times_out)?;
            let c = io
                .read(lba, blocks, DataMode::Keyed)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if times_out {
                timed_out(rig, generation, &c, "the read that timed out").await?;
            } else if expect_ok_or_offline(model, &c, "read")? {
                model.read(lba, &c.data, block)?;
            }
        }
        Op::PciError => {
            if model.offline {
                return Ok(());
            }
            fault_next(false)?;
            if rig
                .local()
                .expect("a local target")
                .wait_event("ctrl-released", BOUND)
                .await
                .is_none()
            {
                return Err("no ctrl-released within the bound after a PCI error".into());
            }
            model.offline = true;
        }
    }
    Ok(())
}

/// The I/O queue at index `q` of `hosts`, modulo those connected; none when none is.
fn io_queue(hosts: &mut [Host], q: usize) -> Option<&mut IoQueue> {
    let n = hosts.len();
    hosts.get_mut(q % n.max(1)).map(|h| &mut h.io)
}

/// Checks the answer of a command the backend never completed, and waits for the target
/// to re-create the controller.
/// `before` is the backend generation before the fault was injected.
async fn timed_out(rig: &TargetRig, before: u32, c: &Completion, what: &str) -> Result<(), String> {
    let s = c.cqe.status;
    if !s.same_code(Status::INTERNAL_ERROR) || s.dnr {
        return Err(format!(
            "{what}: expected 0/06h Internal Error with DNR clear, got {s} (dnr {})",
            s.dnr
        ));
    }
    let deadline = tokio::time::Instant::now() + BOUND;
    while rig
        .local()
        .expect("a local target")
        .backend_generation(SUB_A)
        .unwrap_or(0)
        == before
        || rig
            .local()
            .expect("a local target")
            .ctrl_of(SUB_A, 1)
            .is_none()
    {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{what}: the controller was not re-created"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn target_follows_the_io_model(
        format in format(),
        ops in prop::collection::vec(op(), 1..30),
    ) {
        if let Err(e) = check_sequence(format, &ops, Quirks::none()) {
            prop_assert!(false, "format {:?}: {}", format, e);
        }
    }
}

/// A write on queue `q` of `blocks` blocks of pattern `seed` at `lba`; its backend command
/// never completes when `times_out`.
fn write(q: usize, lba: u64, blocks: u32, seed: u8, times_out: bool) -> Op {
    if times_out {
        Op::WriteTimesOut {
            q,
            lba,
            blocks,
            seed,
        }
    } else {
        Op::Write {
            q,
            lba,
            blocks,
            seed,
        }
    }
}

fn w(q: usize, lba: u64, blocks: u32, seed: u8) -> Op {
    write(q, lba, blocks, seed, false)
}

fn w_times_out(q: usize, lba: u64, blocks: u32, seed: u8) -> Op {
    write(q, lba, blocks, seed, true)
}

fn r(q: usize, lba: u64, blocks: u32) -> Op {
    Op::Read { q, lba, blocks }
}

fn r_times_out(q: usize, lba: u64, blocks: u32) -> Op {
    Op::ReadTimesOut { q, lba, blocks }
}

#[test]
fn every_op_kind_passes_on_the_clean_target() {
    let ops = [
        Op::Connect,
        w(0, 0, 4, 1),
        Op::Connect,
        r(1, 0, 4),
        w_times_out(0, 2, 2, 2),
        r(0, 0, 4),
        r_times_out(1, 0, 1),
        Op::Disconnect(0),
        w(0, 8, 3, 3),
        Op::PciError,
        w(0, 8, 1, 4),
        r(0, 8, 1),
    ];
    for f in [LbaFormat::L512, LbaFormat::L4096] {
        assert_eq!(check_sequence(f, &ops, Quirks::none()), Ok(()), "{f:?}");
    }
}

#[test]
fn the_io_model_catches_a_lost_write() {
    // Writes acknowledged before the backend completes them (a quirk): a write whose
    // backend command never completes is still acknowledged, and its data is not there.
    let ops = [Op::Connect, w(0, 0, 2, 1), w(0, 0, 2, 9)];
    let timed = [Op::Connect, w(0, 0, 2, 1), w_times_out(0, 0, 2, 9)];
    assert_eq!(
        check_sequence(LbaFormat::L4096, &timed, Quirks::none()),
        Ok(())
    );
    let quirky = Quirks::one(Quirk::EarlyWriteAck);
    assert_eq!(
        check_sequence(LbaFormat::L4096, &ops, quirky.clone()),
        Ok(())
    );
    let e = check_sequence(LbaFormat::L4096, &timed, quirky).unwrap_err();
    assert!(e.contains("step 2") || e.contains("final read"), "{e}");
}
