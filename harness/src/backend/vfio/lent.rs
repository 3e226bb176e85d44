//! A real NVMe controller lent to a device as queue pairs ([`LentController`]: the
//! backend controllers a case makes are queue pairs of it), with the host's fault broker
//! behind a [`FaultLine`], which remembers what it asked so that nothing leaves a fault
//! behind — above all a stall: QEMU's controller deletes a queue or resets only once every
//! request it holds has finished, so a stalled request would hang the VM. The suites use it
//! in their own process (`nvmf-conform run --backend vfio:PCI`); the control channel's
//! target host serves it to a runner on another host ([`crate::remote::backend`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::broker::{media_error_sector, Broker, RealFault, ENV};
use super::{PciAddress, SharedController, VfioPort};
use crate::backend::emulated::LbaFormat;
use crate::case::{Failure, RealBackendFacts};
use crate::fabric::{DeviceContext, MrInfo};
use crate::wire::{RwCommand, SqeCommand};

/// Bound of one command the harness runs on the real controller itself.
const MEDIA_BOUND: Duration = Duration::from_secs(10);
/// Bound of the broker's answer.
const BROKER_BOUND: Duration = Duration::from_secs(20);

/// The host's fault broker (when `NVMF_FAULT_BROKER` names one) and the faults asked of
/// it that are still in force.
pub struct FaultLine {
    broker: Option<Mutex<Broker>>,
    /// A stall asked and not lifted yet.
    stalled: AtomicBool,
    /// A slow drive asked and not lifted yet.
    slowed: AtomicBool,
    /// A PCI error or an unplug since the controller was last reset.
    failed: AtomicBool,
}

impl FaultLine {
    /// The broker `NVMF_FAULT_BROKER` names, if any.
    pub fn from_env() -> FaultLine {
        FaultLine::new(Broker::from_env())
    }

    /// Faults through `broker` (none: every injection refused, naming the variable).
    pub fn new(broker: Option<Broker>) -> FaultLine {
        FaultLine {
            broker: broker.map(Mutex::new),
            stalled: AtomicBool::new(false),
            slowed: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        }
    }

    /// Whether there is a broker.
    pub fn present(&self) -> bool {
        self.broker.is_some()
    }

    /// Asks the broker for `fault` and waits for its answer (bounded, off the runtime's
    /// threads). A PCI error or an unplug is refused while a stall is in force.
    pub async fn inject(self: &Arc<Self>, fault: RealFault) -> Result<(), Failure> {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.inject_blocking(fault)).await {
            Ok(r) => r,
            Err(e) => Err(Failure::new(format!("fault broker: {e}"))),
        }
    }

    /// [`FaultLine::inject`], blocking the calling thread for the broker's answer (bounded).
    pub fn inject_blocking(&self, fault: RealFault) -> Result<(), Failure> {
        if self.broker.is_none() {
            return Err(Failure::new(format!(
                "no fault broker ({ENV} unset) to inject {} into the real controller",
                fault.name()
            )));
        }
        let failing = matches!(fault, RealFault::PciError | RealFault::Unplug);
        if failing && self.stalled.load(Ordering::SeqCst) {
            return Err(Failure::new(format!(
                "{} refused while a command is stalled on the real controller: QEMU's \
                 controller resets only once every request it holds has finished, so the VM \
                 would hang (lift the stall first)",
                fault.name()
            )));
        }
        match fault {
            RealFault::Stall => self.stalled.store(true, Ordering::SeqCst),
            RealFault::Slow => self.slowed.store(true, Ordering::SeqCst),
            RealFault::Resume => {
                self.stalled.store(false, Ordering::SeqCst);
                self.slowed.store(false, Ordering::SeqCst);
            }
            RealFault::PciError | RealFault::Unplug => self.failed.store(true, Ordering::SeqCst),
            RealFault::MediaError | RealFault::Replug => {}
        }
        self.ask(fault)
    }

    fn ask(&self, fault: RealFault) -> Result<(), Failure> {
        self.answer(fault).map(|_| ())
    }

    /// The broker's answer to `fault` (blocking, bounded).
    fn answer(&self, fault: RealFault) -> Result<String, Failure> {
        let Some(b) = &self.broker else {
            return Ok(String::new());
        };
        b.lock()
            .unwrap_or_else(|p| p.into_inner())
            .inject(fault, BROKER_BOUND)
            .map_err(|e| Failure::from(e).context("fault broker"))
    }

    /// The sector (512-byte units) whose reads fail with a media error, as the broker
    /// knows it ([`RealFault::MediaError`]).
    pub async fn media_error_sector(self: &Arc<Self>) -> Result<u64, Failure> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.media_error_sector_blocking())
            .await
            .map_err(|e| Failure::new(format!("fault broker: {e}")))?
    }

    /// [`FaultLine::media_error_sector`], blocking the calling thread (bounded).
    pub fn media_error_sector_blocking(&self) -> Result<u64, Failure> {
        if self.broker.is_none() {
            return Err(Failure::new(format!(
                "no fault broker ({ENV} unset) to say where the real controller's media error is"
            )));
        }
        let answer = self.answer(RealFault::MediaError)?;
        media_error_sector(&answer).map_err(|e| Failure::from(e).context("fault broker"))
    }

    /// Lifts a stall or a slow drive left in force (a stalled command completes); blocks
    /// for the broker's answer.
    pub fn lift_stall(&self) {
        let stalled = self.stalled.swap(false, Ordering::SeqCst);
        let slowed = self.slowed.swap(false, Ordering::SeqCst);
        if stalled || slowed {
            let _ = self.ask(RealFault::Resume);
        }
    }

    /// Whether the controller failed since the last call (and forgets it).
    pub fn take_failed(&self) -> bool {
        self.failed.swap(false, Ordering::SeqCst)
    }
}

/// Namespace 1's format and size as the suites need them, from its Identify data.
fn namespace_facts(shared: &SharedController, broker: bool) -> Result<RealBackendFacts, Failure> {
    let address = shared.address();
    let ns = shared
        .namespace(1)
        .ok_or_else(|| Failure::new(format!("real controller {address}: no active namespace 1")))?;
    let meta = ns.metadata_size();
    if ns.separate_metadata() {
        return Err(Failure::new(format!(
            "real controller {address}: namespace 1 keeps {meta} bytes of metadata in a \
             separate buffer; the suites move metadata only as extended LBAs"
        )));
    }
    Ok(RealBackendFacts {
        format: LbaFormat::new(ns.block_size(), meta),
        blocks: ns.identify.nsze,
        broker,
    })
}

/// Fails unless block `lba` is inside a namespace of `blocks` blocks.
fn check_lba(lba: u64, blocks: u64) -> Result<(), Failure> {
    if lba >= blocks {
        return Err(Failure::new(format!(
            "the broker's media error is at block {lba}, past namespace 1's {blocks} blocks"
        )));
    }
    Ok(())
}

/// A real NVMe controller the backend controllers of a device are made on (one queue pair
/// each), with the host's fault broker when there is one.
pub struct LentController {
    shared: SharedController,
    faults: Arc<FaultLine>,
}

impl std::fmt::Debug for LentController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LentController")
            .field("controller", &self.shared)
            .field("broker", &self.faults.present())
            .finish_non_exhaustive()
    }
}

impl LentController {
    /// Opens the controller at `address` (reset, brought up, identified), with the broker
    /// `NVMF_FAULT_BROKER` names, if any. Its namespace 1 must be in a format the device
    /// can present (extended-LBA metadata, or none).
    pub fn open(address: PciAddress) -> Result<LentController, Failure> {
        LentController::open_with(address, Arc::new(FaultLine::from_env()))
    }

    /// [`LentController::open`], its faults through `faults` (one line for every opening
    /// of the controller, so that a stall asked through one is lifted through another).
    pub fn open_with(
        address: PciAddress,
        faults: Arc<FaultLine>,
    ) -> Result<LentController, Failure> {
        let shared = SharedController::open(address)
            .map_err(|e| Failure::new(format!("real controller {address}: {e}")))?;
        let real = LentController { shared, faults };
        real.facts()?;
        Ok(real)
    }

    /// Its namespace 1's format and size, and whether faults can be injected.
    pub fn facts(&self) -> Result<RealBackendFacts, Failure> {
        namespace_facts(&self.shared, self.faults.present())
    }

    /// Fails unless namespace `nsid` in `format` is the controller's namespace 1 as it is.
    pub fn check_namespace(&self, nsid: u32, format: LbaFormat) -> Result<(), Failure> {
        let facts = self.facts()?;
        if nsid != 1 || format != facts.format {
            return Err(Failure::new(format!(
                "the real controller has namespace 1 in format {}; asked for namespace {nsid} \
                 in format {format}",
                facts.format
            )));
        }
        Ok(())
    }

    /// A queue pair of `depth` entries over `rings`, for the device (reset first when the
    /// controller failed since).
    pub fn lend(
        &self,
        ctx: Arc<dyn DeviceContext>,
        rings: MrInfo,
        staging: &MrInfo,
        depth: u16,
    ) -> Result<Arc<VfioPort>, Failure> {
        if self.faults.take_failed() || self.shared.why_stopped().is_some() {
            self.shared
                .reset()
                .map_err(|e| Failure::from(e).context("resetting the real controller"))?;
        }
        self.shared
            .lend(ctx, rings, staging, depth)
            .map_err(|e| Failure::from(e).context("a queue pair of the real controller"))
    }

    /// Block `slba` of namespace 1, read through the harness's own queue pair.
    pub fn read_block(&self, slba: u64) -> Result<Vec<u8>, Failure> {
        let block = u64::from(self.facts()?.format.lba_data_size());
        let read = SqeCommand::Read(RwCommand::new(slba, 1));
        self.media(slba, read, &[], block, ("media read", "reading"))
    }

    /// Writes `data` (whole blocks) from block `slba` on of namespace 1, through the
    /// harness's own queue pair.
    pub fn write_blocks(&self, slba: u64, data: &[u8]) -> Result<(), Failure> {
        let block = self.facts()?.format.lba_data_size() as usize;
        let blocks = (data.len() / block.max(1)) as u32;
        let write = SqeCommand::Write(RwCommand::new(slba, blocks));
        self.media(slba, write, data, 0, ("media write", "writing"))
            .map(|_| ())
    }

    /// Runs `command` (from block `slba` on) through the harness's own queue pair, moving
    /// `out` to the controller or `in_len` bytes from it; fails unless it succeeds.
    fn media(
        &self,
        slba: u64,
        command: SqeCommand,
        out: &[u8],
        in_len: u64,
        (what, doing): (&'static str, &str),
    ) -> Result<Vec<u8>, Failure> {
        let (status, data) = self
            .shared
            .run(1, command, out, in_len, MEDIA_BOUND, what)
            .map_err(|e| {
                Failure::from(e).context(format!("{doing} the real controller's media"))
            })?;
        if !status.is_success() {
            return Err(Failure::new(format!(
                "{doing} block {slba} of the real controller's media: {status}"
            )));
        }
        Ok(data)
    }

    /// Asks the broker for `fault` (see [`FaultLine::inject`]).
    pub async fn inject(&self, fault: RealFault) -> Result<(), Failure> {
        self.faults.inject(fault).await
    }

    /// [`LentController::inject`], blocking the calling thread (bounded).
    pub fn inject_blocking(&self, fault: RealFault) -> Result<(), Failure> {
        self.faults.inject_blocking(fault)
    }

    /// The block of namespace 1 whose reads fail with a media error (the one holding the
    /// sector the broker names).
    pub async fn media_error_lba(&self) -> Result<u64, Failure> {
        let sector = self.faults.media_error_sector().await?;
        self.lba_of_sector(sector)
    }

    /// Lifts a stall a case left behind: before its queue pairs are given back.
    pub fn lift_stall(&self) {
        self.faults.lift_stall();
    }

    /// Lifts a stall and resets the controller when it failed, so that the next case
    /// finds it as this one did.
    pub fn release(&self) {
        self.faults.lift_stall();
        if self.faults.take_failed() {
            let _ = self.shared.reset();
        }
    }

    /// Its PCI address.
    pub fn address(&self) -> PciAddress {
        self.shared.address()
    }

    /// Its fault line (the broker, and the faults asked of it still in force).
    pub fn fault_line(&self) -> Arc<FaultLine> {
        self.faults.clone()
    }

    /// The block of namespace 1 whose reads fail with a media error, blocking the calling
    /// thread for the broker's answer (bounded).
    pub fn media_error_lba_blocking(&self) -> Result<u64, Failure> {
        let sector = self.faults.media_error_sector_blocking()?;
        self.lba_of_sector(sector)
    }

    fn lba_of_sector(&self, sector: u64) -> Result<u64, Failure> {
        let facts = self.facts()?;
        let lba = sector * 512 / u64::from(facts.format.lba_data_size());
        check_lba(lba, facts.blocks)?;
        Ok(lba)
    }
}

impl Drop for LentController {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    /// The host's side of the broker, as `fault-broker.py` plays it: answers every request
    /// "ok" and records the faults asked, until `stop` exists.
    fn fake_broker(dir: PathBuf) -> std::thread::JoinHandle<Vec<String>> {
        std::thread::spawn(move || {
            let (requests, acks) = (dir.join("requests"), dir.join("acks"));
            let start = Instant::now();
            let mut asked = Vec::new();
            while !dir.join("stop").exists() && start.elapsed() < Duration::from_secs(20) {
                for e in std::fs::read_dir(&requests).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let Ok(fault) = std::fs::read_to_string(e.path()) else {
                        continue;
                    };
                    std::fs::create_dir_all(&acks).unwrap();
                    let answer = match fault.trim() {
                        "media-error" => "ok sector=264192",
                        _ => "ok",
                    };
                    std::fs::write(acks.join(&name), answer).unwrap();
                    std::fs::remove_file(e.path()).unwrap();
                    asked.push(fault.trim().to_string());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            asked
        })
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nvmf-faultline-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn stop(dir: &Path) {
        std::fs::write(dir.join("stop"), "").unwrap();
    }

    #[tokio::test]
    async fn a_failure_is_refused_while_a_stall_is_in_force_and_a_stall_is_lifted_once() {
        let dir = scratch("stall");
        let host = fake_broker(dir.clone());
        let line = Arc::new(FaultLine::new(Some(Broker::new(&dir))));
        line.inject(RealFault::Stall).await.unwrap();
        let refused = line.inject(RealFault::PciError).await.unwrap_err();
        assert!(
            refused
                .message
                .contains("pci-error refused while a command is stalled"),
            "{}",
            refused.message
        );
        let refused = line.inject(RealFault::Unplug).await.unwrap_err();
        assert!(
            refused.message.contains("unplug refused"),
            "{}",
            refused.message
        );
        // lifted once: a second lift asks nothing
        line.lift_stall();
        line.lift_stall();
        line.inject(RealFault::PciError).await.unwrap();
        assert!(line.take_failed());
        assert!(!line.take_failed(), "a failure is reported once");
        // a slow drive is lifted the same way, and does not refuse a failure (its commands
        // finish, late)
        line.inject(RealFault::Slow).await.unwrap();
        line.inject(RealFault::Unplug).await.unwrap();
        line.lift_stall();
        line.lift_stall();
        stop(&dir);
        assert_eq!(
            host.join().unwrap(),
            ["stall", "resume", "pci-error", "slow", "unplug", "resume"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_broker_says_where_the_media_error_is() {
        let dir = scratch("media");
        let host = fake_broker(dir.clone());
        let line = Arc::new(FaultLine::new(Some(Broker::new(&dir))));
        assert_eq!(line.media_error_sector().await.unwrap(), 264192);
        // asking where it is injects nothing: a PCI error is not refused, nothing to lift
        line.lift_stall();
        assert!(!line.take_failed());
        stop(&dir);
        assert_eq!(host.join().unwrap(), ["media-error"]);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(check_lba(524287, 524288).is_ok());
        let e = check_lba(524288, 524288).unwrap_err();
        assert!(
            e.message.contains("past namespace 1's 524288 blocks"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn without_a_broker_every_fault_is_refused_naming_the_variable() {
        let line = Arc::new(FaultLine::new(None));
        assert!(!line.present());
        for fault in [
            RealFault::Stall,
            RealFault::Resume,
            RealFault::PciError,
            RealFault::Unplug,
        ] {
            let e = line.inject(fault).await.unwrap_err();
            assert!(
                e.message.contains(ENV) && e.message.contains(fault.name()),
                "{}",
                e.message
            );
        }
        let e = line.media_error_sector().await.unwrap_err();
        assert!(e.message.contains(ENV), "{}", e.message);
        // nothing asked, so nothing to lift
        line.lift_stall();
        assert!(!line.take_failed());
    }
}
