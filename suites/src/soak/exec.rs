//! Runs one episode's steps against a device under test and checks every answer: each
//! status against what the requirements allow in the model's state, each block read
//! against the model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use harness::backend::emulated::{CmdMatch, Fault};
use harness::fabric::sim::{SimFabric, SIM1_ADDR};
use harness::fabric::{Access, Fabric, Fault as LinkFault, MrInfo};
use harness::initiator::{Command, Controller, DataMode, IoQueue, QueueSpec};
use harness::wire::{
    DsmCommand, DsmRangeRepr, RwCommand, SglRepr, SqeCommand, Status, WriteZeroesCommand,
};

use super::model::{Answer, Model};
use super::ops::{Cmd, Op, MAX_HOSTS};
use super::FaultKind;
use crate::framework::target::{host_config, TargetRig, PORT_A, STRANGER, SUB_A};
use crate::framework::{wait, Dut};
use crate::run::Options;

/// Bound of every wait of a step (virtual time on sim; scaled on a real fabric).
const BOUND: Duration = Duration::from_secs(10);
/// The namespace every step uses.
const NSID: u32 = 1;
/// Why there is no target to talk to.
const NO_TARGET: &str = "no target is running (its restart failed)";

/// What the episode has covered: (command kind, outcome) → count, and faults injected.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Commands answered, by kind and outcome.
    pub answers: BTreeMap<(&'static str, &'static str), u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Steps run.
    pub steps: u64,
}

impl Coverage {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Coverage) {
        for (k, v) in &other.answers {
            *self.answers.entry(*k).or_default() += v;
        }
        for (k, v) in &other.faults {
            *self.faults.entry(*k).or_default() += v;
        }
        self.steps += other.steps;
    }
}

/// A connected host: its admin controller and I/O queue.
struct Host {
    ctrl: Controller,
    io: IoQueue,
}

/// One episode in progress on a target.
pub struct Episode<'a> {
    /// The run's options: API steps open a fresh device with them.
    opts: &'a Options,
    /// The device under test (a restart starts the next target on it).
    dut: &'a Dut,
    /// The target's configuration (a restart starts the next target with it).
    config: String,
    /// The running target; `None` only while it restarts.
    rig: Option<TargetRig>,
    block: u32,
    /// The device hands what it does not offload to software (and so answers I/O to an
    /// offline namespace).
    software: bool,
    /// The most bytes one offloaded command moves (`max_io_sz`).
    max_io: u32,
    /// The simulated fabric, when the episode runs on it (link drops need it).
    sim: Option<Arc<SimFabric>>,
    model: Model,
    hosts: Vec<Host>,
    /// What it covered so far.
    pub coverage: Coverage,
}

impl<'a> Episode<'a> {
    /// An episode on `rig`, a target started with `config` on `dut`'s device (its LBA
    /// format, software path and `max_io_sz` decide what is sent); `sim`: the simulated
    /// fabric, if it runs on one.
    pub fn new(
        opts: &'a Options,
        (rig, config): (TargetRig, String),
        dut: &'a Dut,
        sim: Option<Arc<SimFabric>>,
    ) -> Episode<'a> {
        let block = dut.ns_format().lba_data_size();
        Episode {
            opts,
            dut,
            config,
            rig: Some(rig),
            block,
            software: dut.caps.supports_non_offloaded_ops,
            max_io: dut.caps.max_io_sz,
            sim,
            model: Model::new(block as usize),
            hosts: Vec::new(),
            coverage: Coverage::default(),
        }
    }

    /// Runs one step; `Err` is a divergence from the model, saying what was seen.
    pub async fn step(&mut self, op: &Op) -> Result<(), String> {
        self.coverage.steps += 1;
        match op {
            Op::Connect => self.connect().await,
            Op::Disconnect(h) => {
                if self.hosts.is_empty() {
                    return Ok(());
                }
                let n = self.hosts.len();
                let h = self.hosts.remove(h % n);
                h.io.disconnect(wait(BOUND))
                    .await
                    .map_err(|e| format!("I/O queue disconnect: {e}"))?;
                h.ctrl
                    .disconnect()
                    .await
                    .map_err(|e| format!("admin disconnect: {e}"))
            }
            Op::Stranger => self.stranger().await,
            Op::BeforeConnect { cmd } => self.before_connect(*cmd).await,
            Op::Api(calls) => self.api(calls).await,
            Op::Unsupported { host, cmd } => self.unsupported(*host, *cmd).await,
            Op::Batch { host, cmds } => self.batch(*host, cmds, None).await,
            Op::Fault { kind, host, cmd } => self.fault(*kind, *host, *cmd).await,
        }
    }

    /// Disconnects every host (the end of an episode).
    pub async fn finish(&mut self) -> Result<(), String> {
        while !self.hosts.is_empty() {
            self.step(&Op::Disconnect(0)).await?;
        }
        Ok(())
    }

    async fn connect(&mut self) -> Result<(), String> {
        if self.hosts.len() >= MAX_HOSTS {
            return Ok(());
        }
        let mut cfg = host_config(SUB_A);
        cfg.kato_ms = 0;
        let mut ctrl = self
            .rig()?
            .controller(PORT_A, cfg)
            .await
            .map_err(|e| format!("connect: {}", e.message))?;
        // As deep as the controller allows (CAP.MQES is 0's based), at most 32.
        let mqes = crate::framework::target::mqes(&mut ctrl)
            .await
            .map_err(|e| format!("CAP: {}", e.message))?;
        let depth = (u32::from(mqes) + 1).min(32) as u16;
        let io = ctrl
            .connect_io_queue(1, depth, 0, NSID, self.block)
            .await
            .map_err(|e| format!("I/O queue connect: {e}"))?;
        self.hosts.push(Host { ctrl, io });
        Ok(())
    }

    /// A host the subsystem does not allow must be refused with Connect Invalid Host.
    async fn stranger(&mut self) -> Result<(), String> {
        let mut cfg = host_config(SUB_A);
        cfg.hostnqn = STRANGER.into();
        cfg.kato_ms = 0;
        match self.rig()?.connect(PORT_A, cfg).await {
            Ok(c) => Err(format!(
                "a host not in the allow-list got controller {}",
                c.cntlid()
            )),
            Err(e) => match e.nvme_status() {
                Some(s) if s.same_code(Status::CONNECT_INVALID_HOST) && s.dnr => {
                    *self
                        .coverage
                        .answers
                        .entry(("connect-not-allowed", "connect-invalid-host"))
                        .or_default() += 1;
                    Ok(())
                }
                Some(s) => Err(format!(
                    "a host not in the allow-list: expected Connect Invalid Host (1/84h) with \
                     DNR, got {s} (dnr {})",
                    s.dnr
                )),
                None => Err(format!("a host not in the allow-list: {e}")),
            },
        }
    }

    /// Calls on the offload API's objects, on a fresh device of the same kind.
    async fn api(&mut self, calls: &[super::api::Call]) -> Result<(), String> {
        let place = self.opts.fabric.for_case(self.opts.seed)?;
        let dut = crate::run::open_dut(place, self.opts, None, true).await?;
        let answers = &mut self.coverage.answers;
        super::api::run(&dut, calls, |c, e| {
            *answers
                .entry((c.kind(), super::api::outcome(e)))
                .or_default() += 1;
        })
    }

    /// A write on a queue that has not sent Connect: Command Sequence Error, and nothing
    /// written (the model does not change, so later reads check it).
    async fn before_connect(&mut self, cmd: Cmd) -> Result<(), String> {
        if self.hosts.is_empty() || self.model.offline {
            return Ok(());
        }
        let q = self
            .rig()?
            .cm_queue(PORT_A, QueueSpec::io(2, 4, 0))
            .await
            .map_err(|e| format!("CM connect of a second I/O queue: {}", e.message))?;
        let mut io = IoQueue::new(q, NSID, self.block);
        let data = self.model.data_of(&cmd);
        let Cmd::Write { lba, .. } = cmd else {
            return Ok(());
        };
        let w = io
            .write(lba, &data, DataMode::Keyed)
            .await
            .map_err(|e| format!("`{cmd}` before Connect got no answer: {e}"))?;
        let s = w.cqe.status;
        if !s.same_code(Status::COMMAND_SEQUENCE_ERROR) {
            return Err(format!(
                "`{cmd}` before Connect: expected {}, got {s}",
                Status::COMMAND_SEQUENCE_ERROR
            ));
        }
        *self
            .coverage
            .answers
            .entry(("write-before-connect", "command-sequence-error"))
            .or_default() += 1;
        io.disconnect(wait(BOUND))
            .await
            .map_err(|e| format!("disconnect of the queue without Connect: {e}"))
    }

    /// A command the device neither offloads nor hands to software: UNSUPPORTED_NVMF_OP,
    /// and no success. The queue is left with a command nobody answers: the host leaves.
    async fn unsupported(&mut self, host: usize, cmd: Cmd) -> Result<(), String> {
        if self.hosts.is_empty() || self.model.offline {
            return Ok(());
        }
        let before = self.count_events("UNSUPPORTED_NVMF_OP").await?;
        let n = self.hosts.len();
        let mut h = self.hosts.remove(host % n);
        let q = h.io.queue();
        let ctx = q.ctx().clone();
        let (command, _, read) = sqe(&cmd, &self.model, self.block);
        let mr = match read {
            Some(len) => Some(
                q.ctx()
                    .reg_mr(
                        q.pd(),
                        u64::from(len),
                        Access::LOCAL_WRITE | Access::REMOTE_WRITE,
                    )
                    .map_err(|e| format!("reg_mr: {e}"))?,
            ),
            None => None,
        };
        let sgl = mr.as_ref().map_or(SglRepr::keyed(0, 0, 0), |m| {
            SglRepr::keyed(m.addr, m.len as u32, m.rkey)
        });
        let cid = q
            .submit(
                &Command::Nvme {
                    nsid: NSID,
                    command,
                },
                sgl,
                &[],
            )
            .map_err(|e| format!("submit `{cmd}`: {e}"))?;
        // The device answers nothing, or an error; never success.
        if let Ok(r) = q.wait_response(cid, wait(Duration::from_millis(200))).await {
            if r.cqe.status.is_success() {
                return Err(format!("`{cmd}`, which the device cannot serve, succeeded"));
            }
        }
        let deadline = tokio::time::Instant::now() + wait(BOUND);
        while self.count_events("UNSUPPORTED_NVMF_OP").await? == before {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "`{cmd}`, which the device cannot serve, raised no UNSUPPORTED_NVMF_OP"
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        *self
            .coverage
            .answers
            .entry((cmd.kind(), "unsupported-event"))
            .or_default() += 1;
        // Whatever the queue's state now, the host goes; it may not leave cleanly.
        let _ = h.io.disconnect(wait(BOUND)).await;
        let _ = h.ctrl.disconnect().await;
        if let Some(m) = mr {
            let _ = ctx.dereg_mr(m.id);
        }
        Ok(())
    }

    /// Injects a fault, then sends `cmd` (which meets it) alone on `host`.
    async fn fault(&mut self, kind: FaultKind, host: usize, cmd: Cmd) -> Result<(), String> {
        if self.hosts.is_empty() || self.model.offline {
            return Ok(());
        }
        // Faults are in the backend controller, which only offloaded commands reach: the
        // command is cut to what the device offloads.
        let cmd = cmd.at_most((self.max_io / self.block).max(1));
        *self.coverage.faults.entry(kind.name()).or_default() += 1;
        match kind {
            FaultKind::Timeout => {
                let before = self.count_events("ctrl-recreated").await?;
                self.inject(
                    kind,
                    Fault::Timeout {
                        on: CmdMatch::Nth(1),
                        delay: None,
                    },
                )
                .await?;
                self.batch(host, &[cmd], Some(kind)).await?;
                // The target re-creates the controller; the data stays (and so do the
                // media's bad blocks).
                let deadline = tokio::time::Instant::now() + wait(BOUND);
                while self.count_events("ctrl-recreated").await? == before {
                    if tokio::time::Instant::now() >= deadline {
                        return Err("the controller was not re-created after a timeout".into());
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(())
            }
            FaultKind::PciError => {
                // The command fetched next fails the controller: it is in flight, and
                // must be answered with an error all the same.
                self.inject(kind, Fault::PciErrorOn(CmdMatch::Nth(1)))
                    .await?;
                self.batch(host, &[cmd], Some(kind)).await?;
                if self
                    .rig()?
                    .wait_event("ctrl-released", wait(BOUND))
                    .await
                    .map_err(|e| e.message)?
                    .is_none()
                {
                    return Err("no ctrl-released within the bound after a PCI error".into());
                }
                self.model.offline = true;
                Ok(())
            }
            FaultKind::LinkDrop => self.link_drop(cmd).await,
            FaultKind::Restart => self.restart(cmd).await,
            FaultKind::MediaError => {
                let lbas = cmd.range();
                if lbas.is_empty() {
                    return self.batch(host, &[cmd], None).await;
                }
                self.inject(
                    kind,
                    Fault::MediaError {
                        nsid: NSID,
                        lbas: lbas.clone(),
                    },
                )
                .await?;
                self.model.bad.extend(lbas);
                self.batch(host, &[cmd], None).await
            }
        }
    }

    /// The hosts' port down for a while, then up: the hosts leave (their connections may
    /// be broken), a new host must connect and serve `cmd`.
    async fn link_drop(&mut self, cmd: Cmd) -> Result<(), String> {
        let Some(sim) = self.sim.clone() else {
            return Ok(());
        };
        let link = |up| LinkFault::Link {
            addr: SIM1_ADDR,
            up,
        };
        let ms = 1 + u64::from(cmd.range().start as u32 * 7 % 120);
        sim.inject(link(false))
            .map_err(|e| format!("link down: {e}"))?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        sim.inject(link(true))
            .map_err(|e| format!("link up: {e}"))?;
        self.all_leave().await;
        self.serve_anew(cmd, &format!("a {ms} ms link drop")).await
    }

    /// Every host leaves (a broken connection may not leave cleanly: bounded, and
    /// whatever it says).
    async fn all_leave(&mut self) {
        for h in std::mem::take(&mut self.hosts) {
            let _ = h.io.disconnect(wait(Duration::from_millis(200))).await;
            let _ = h.ctrl.disconnect().await;
        }
    }

    /// A new host must connect and serve `cmd`; `after` names what happened before, for
    /// the messages.
    async fn serve_anew(&mut self, cmd: Cmd, after: &str) -> Result<(), String> {
        self.connect()
            .await
            .map_err(|e| format!("after {after}: {e}"))?;
        self.batch(0, &[cmd], None).await
    }

    /// The running target.
    fn rig(&self) -> Result<&TargetRig, String> {
        self.rig.as_ref().ok_or_else(|| NO_TARGET.to_string())
    }

    /// The target stops in order (every object it made on the device given back) and a
    /// new one starts on the same device and media: the hosts leave, a new one must
    /// connect and serve `cmd`, every acknowledged write stays, and the namespace is
    /// served again (a new backend controller, with no fault injected in it).
    async fn restart(&mut self, cmd: Cmd) -> Result<(), String> {
        self.all_leave().await;
        let rig = self.rig.take().ok_or(NO_TARGET)?;
        let refused = rig.stop().await.map_err(|e| e.message)?;
        if !refused.is_empty() {
            return Err(format!(
                "the device refused the stopping target's teardown: {}",
                refused.join("; ")
            ));
        }
        let rig = self
            .dut
            .target(&self.config)
            .await
            .map_err(|e| format!("no target started after the restart: {}", e.message))?;
        self.rig = Some(rig);
        self.model.offline = false;
        self.model.bad.clear();
        self.serve_anew(cmd, "the restart").await
    }

    async fn inject(&self, kind: FaultKind, fault: Fault) -> Result<(), String> {
        self.rig()?
            .inject(SUB_A, NSID, fault)
            .await
            .map_err(|e| format!("inject {kind}: {}", e.message))
    }

    async fn count_events(&self, needle: &str) -> Result<usize, String> {
        Ok(self
            .rig()?
            .events()
            .await
            .map_err(|e| e.message)?
            .iter()
            .filter(|l| l.contains(needle))
            .count())
    }

    /// Submits `cmds` together on `host`'s queue, reaps every answer, checks each status
    /// and the data against the model. `fault`: the first command meets this fault in the
    /// backend.
    async fn batch(
        &mut self,
        host: usize,
        cmds: &[Cmd],
        fault: Option<FaultKind>,
    ) -> Result<(), String> {
        // Without a software path nothing answers I/O to an offline namespace: the
        // requirements leave it there.
        if self.hosts.is_empty() || (self.model.offline && !self.software) {
            return Ok(());
        }
        let n = self.hosts.len();
        let block = self.block;
        let expects: Vec<_> = cmds
            .iter()
            .enumerate()
            .map(|(i, c)| self.expected(c, if i == 0 { fault } else { None }))
            .collect();
        let q = self.hosts[host % n].io.queue();
        // A batch is at most as deep as the queue (one slot stays free, as NVMe queues do).
        let cmds = &cmds[..cmds
            .len()
            .min(usize::from(q.spec().depth.saturating_sub(1)).max(1))];
        let ctx = q.ctx().clone();
        let pd = q.pd();
        let mut sent: Vec<(Cmd, u16, Option<MrInfo>)> = Vec::new();
        let mut failure = None;
        for cmd in cmds {
            let (command, data, from_target) = sqe(cmd, &self.model, block);
            let mr = match (&data, from_target) {
                (Some(d), _) => {
                    let mr = ctx
                        .reg_mr(
                            pd,
                            d.len() as u64,
                            Access::LOCAL_WRITE | Access::REMOTE_READ,
                        )
                        .map_err(|e| format!("reg_mr: {e}"))?;
                    ctx.mr_write(mr.id, 0, d)
                        .map_err(|e| format!("mr_write: {e}"))?;
                    Some(mr)
                }
                (None, Some(len)) => Some(
                    ctx.reg_mr(
                        pd,
                        u64::from(len),
                        Access::LOCAL_WRITE | Access::REMOTE_WRITE,
                    )
                    .map_err(|e| format!("reg_mr: {e}"))?,
                ),
                (None, None) => None,
            };
            let short = if matches!(cmd, Cmd::ShortRead { .. }) {
                block
            } else {
                0
            };
            let sgl = match &mr {
                Some(m) => SglRepr::keyed(m.addr, m.len as u32 - short, m.rkey),
                None => SglRepr::keyed(0, 0, 0),
            };
            let c = Command::Nvme {
                nsid: NSID,
                command,
            };
            match q.submit(&c, sgl, &[]) {
                Ok(cid) => sent.push((*cmd, cid, mr)),
                Err(e) => {
                    failure = Some(format!("submit `{cmd}`: {e}"));
                    break;
                }
            }
        }
        let mut answers = Vec::new();
        for (i, (cmd, cid, mr)) in sent.iter().enumerate() {
            let r = q.wait_response(*cid, wait(BOUND)).await;
            let mut data = Vec::new();
            if let (Ok(r), Some(m), Cmd::Read { .. }) = (&r, mr, cmd) {
                if r.cqe.status.is_success() {
                    data = vec![0u8; m.len as usize];
                    ctx.mr_read(m.id, 0, &mut data)
                        .map_err(|e| format!("mr_read: {e}"))?;
                }
            }
            if let Some(m) = mr {
                ctx.dereg_mr(m.id).map_err(|e| format!("dereg_mr: {e}"))?;
            }
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    failure.get_or_insert(format!("`{cmd}`: {e}"));
                    continue;
                }
            };
            let s = r.cqe.status;
            let (want, outcome) = expects[i];
            let kind = cmd.kind();
            if let Err(why) = want.check(s) {
                failure.get_or_insert(format!("`{cmd}`: {why}"));
                continue;
            }
            *self.coverage.answers.entry((kind, outcome)).or_default() += 1;
            answers.push((
                *cmd,
                if s.is_success() {
                    Answer::Ok(data)
                } else {
                    Answer::Failed
                },
            ));
        }
        if let Some(f) = failure {
            return Err(f);
        }
        self.model.batch(&answers)
    }

    /// The status `cmd` must be answered with in the model's state, and the outcome's
    /// name for coverage. `fault`: the command meets this fault in the backend.
    fn expected(&self, cmd: &Cmd, fault: Option<FaultKind>) -> (Expect, &'static str) {
        let exactly = |s, dnr| Expect::Status(s, Some(dnr));
        if self.model.offline {
            (
                exactly(Status::NAMESPACE_NOT_READY, true),
                "namespace-not-ready",
            )
        } else if fault == Some(FaultKind::Timeout) {
            (exactly(Status::INTERNAL_ERROR, false), "internal-error")
        } else if fault == Some(FaultKind::PciError) {
            (Expect::AnyError, "error-on-pci-error")
        } else if matches!(cmd, Cmd::ShortRead { .. }) {
            (Expect::AnyError, "refused")
        } else if matches!(cmd, Cmd::Read { .. }) && self.model.meets_bad(cmd.range()) {
            (
                Expect::Status(Status::UNRECOVERED_READ_ERROR, None),
                "unrecovered-read-error",
            )
        } else {
            (exactly(Status::SUCCESS, false), "success")
        }
    }
}

/// The answer the requirements allow for one command.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status (and DNR bit, when the requirements fix it).
    Status(Status, Option<bool>),
    /// Any error status.
    AnyError,
}

impl Expect {
    fn check(self, s: Status) -> Result<(), String> {
        match self {
            Expect::AnyError if s.is_success() => {
                Err("expected an error status, got Successful Completion".into())
            }
            Expect::AnyError => Ok(()),
            Expect::Status(want, dnr) if !s.same_code(want) || dnr.is_some_and(|d| d != s.dnr) => {
                Err(format!(
                    "expected {want}{}, got {s} (dnr {})",
                    match dnr {
                        Some(true) => " with DNR",
                        Some(false) => " with DNR clear",
                        None => "",
                    },
                    s.dnr
                ))
            }
            Expect::Status(..) => Ok(()),
        }
    }
}

/// The command's SQE fields, the data it sends, and the length it reads.
fn sqe(cmd: &Cmd, model: &Model, block: u32) -> (SqeCommand, Option<Vec<u8>>, Option<u32>) {
    match *cmd {
        Cmd::Write { lba, blocks, .. } => (
            SqeCommand::Write(RwCommand::new(lba, blocks)),
            Some(model.data_of(cmd)),
            None,
        ),
        Cmd::Read { lba, blocks } => (
            SqeCommand::Read(RwCommand::new(lba, blocks)),
            None,
            Some(blocks * block),
        ),
        Cmd::ShortRead { lba, blocks } => (
            SqeCommand::Read(RwCommand::new(lba, blocks)),
            None,
            Some(blocks * block),
        ),
        Cmd::Flush => (SqeCommand::Flush, None, None),
        Cmd::WriteZeroes { lba, blocks } => (
            SqeCommand::WriteZeroes(WriteZeroesCommand {
                slba: lba,
                nlb: (blocks - 1) as u16,
                ..WriteZeroesCommand::default()
            }),
            None,
            None,
        ),
        Cmd::Deallocate { lba, blocks } => (
            SqeCommand::DatasetManagement(DsmCommand {
                nr: 0,
                ad: true,
                ..DsmCommand::default()
            }),
            Some(DsmRangeRepr::emit_list(&[DsmRangeRepr {
                cattr: 0,
                nlb: blocks,
                slba: lba,
            }])),
            None,
        ),
    }
}
