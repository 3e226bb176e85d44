//! A real NVMe controller behind a run (`nvmf-conform run --backend vfio:PCI`), in the two
//! ways cases meet it: [`RealBackend`], whose queue pairs are the backend controllers the
//! cases create for the device under test, and [`RealTarget`], which the reference
//! target a control-plane case starts opens itself. The controller is on this host
//! ([`LentController`], faults through this host's broker), or, in two-host mode, on the
//! target host, which lends it and asks its own broker for the faults: then every look and
//! fault is a message on the control channel.

use std::sync::Arc;

use harness::backend::vfio::broker::RealFault;
use harness::backend::vfio::{FaultLine, LentController, PciAddress};
use harness::case::RealBackendFacts;
use harness::remote::{BackendCall, BackendId, BackendLink, BackendReply};
use reference_target::remote::RemoteTarget;

use super::failure::Failure;

/// The number media calls name the real controller by on a target host that lends it
/// (every number names it there: its queue pairs share one namespace).
const REAL: BackendId = 0;

/// A real NVMe controller the cases' backend controllers are made on (one queue pair
/// each), with a fault broker when there is one.
pub enum RealBackend {
    /// Opened by this process, with this host's broker.
    Here(Arc<LentController>),
    /// Lent by the target host (two-host mode), reached through the open device's backend
    /// link.
    There {
        /// The device's backend link.
        link: Arc<dyn BackendLink>,
        /// What the target host's controller offers.
        facts: RealBackendFacts,
    },
}

impl std::fmt::Debug for RealBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RealBackend::Here(l) => l.fmt(f),
            RealBackend::There { facts, .. } => f
                .debug_struct("RealBackend::There")
                .field("facts", facts)
                .finish_non_exhaustive(),
        }
    }
}

/// A reply other than the one asked for, as a case's failure.
fn unexpected(reply: BackendReply) -> Failure {
    match reply {
        BackendReply::Failed(why) => Failure::new(format!("the target host: {why}")),
        other => Failure::new(format!("the target host answered {other:?}")),
    }
}

impl RealBackend {
    /// Opens the controller at `address` (reset, brought up, identified), with the broker
    /// `NVMF_FAULT_BROKER` names, if any. Its namespace 1 must be in a format the device
    /// can present (extended-LBA metadata, or none).
    pub fn open(address: PciAddress) -> Result<RealBackend, Failure> {
        LentController::open(address).map(|l| RealBackend::Here(Arc::new(l)))
    }

    /// The real controller the target host lends through `link` (its device's backend
    /// link); a failure when the target host serves emulated controllers.
    pub fn remote(link: Arc<dyn BackendLink>) -> Result<RealBackend, Failure> {
        match link.call(&BackendCall::RealFacts) {
            BackendReply::RealFacts(Some(facts)) => Ok(RealBackend::There { link, facts }),
            BackendReply::RealFacts(None) => Err(Failure::new(
                "the target host serves emulated backend controllers: start \
                 nvmf-reference-target --control with --backend vfio:PCI to lend a real one",
            )),
            other => Err(unexpected(other)),
        }
    }

    /// Its namespace 1's format and size, and whether faults can be injected.
    pub fn facts(&self) -> Result<RealBackendFacts, Failure> {
        match self {
            RealBackend::Here(l) => l.facts(),
            RealBackend::There { facts, .. } => Ok(*facts),
        }
    }

    /// The controller in this process, if it is here.
    pub(super) fn here(&self) -> Option<&Arc<LentController>> {
        match self {
            RealBackend::Here(l) => Some(l),
            RealBackend::There { .. } => None,
        }
    }

    fn ask(&self, link: &Arc<dyn BackendLink>, call: BackendCall) -> Result<BackendReply, Failure> {
        match link.call(&call) {
            BackendReply::Failed(why) => Err(Failure::new(format!("the target host: {why}"))),
            reply => Ok(reply),
        }
    }

    /// Block `slba` of namespace 1, read through the harness's own queue pair.
    pub fn read_block(&self, slba: u64) -> Result<Vec<u8>, Failure> {
        match self {
            RealBackend::Here(l) => l.read_block(slba),
            RealBackend::There { link, .. } => {
                let call = BackendCall::ReadBlock {
                    backend: REAL,
                    slba,
                };
                match self.ask(link, call)? {
                    BackendReply::Bytes(b) => Ok(b),
                    other => Err(unexpected(other)),
                }
            }
        }
    }

    /// Writes `data` (whole blocks) from block `slba` on of namespace 1, through the
    /// harness's own queue pair.
    pub fn write_blocks(&self, slba: u64, data: &[u8]) -> Result<(), Failure> {
        match self {
            RealBackend::Here(l) => l.write_blocks(slba, data),
            RealBackend::There { link, .. } => {
                let call = BackendCall::WriteBlocks {
                    backend: REAL,
                    slba,
                    data: data.to_vec(),
                };
                match self.ask(link, call)? {
                    BackendReply::Done => Ok(()),
                    other => Err(unexpected(other)),
                }
            }
        }
    }

    /// Asks the broker for `fault` (see [`FaultLine::inject`]): this host's, or the target
    /// host's.
    pub async fn inject(&self, fault: RealFault) -> Result<(), Failure> {
        match self {
            RealBackend::Here(l) => l.inject(fault).await,
            RealBackend::There { link, .. } => {
                let link = link.clone();
                let call = BackendCall::RealInject { fault };
                let reply = tokio::task::spawn_blocking(move || link.call(&call))
                    .await
                    .map_err(|e| Failure::new(format!("fault broker: {e}")))?;
                match reply {
                    BackendReply::Done => Ok(()),
                    other => Err(unexpected(other)),
                }
            }
        }
    }

    /// The block of namespace 1 whose reads fail with a media error (the one holding the
    /// sector the broker names).
    pub async fn media_error_lba(&self) -> Result<u64, Failure> {
        match self {
            RealBackend::Here(l) => l.media_error_lba().await,
            RealBackend::There { link, .. } => {
                match self.ask(link, BackendCall::RealMediaErrorLba)? {
                    BackendReply::Lba(lba) => Ok(lba),
                    other => Err(unexpected(other)),
                }
            }
        }
    }

    /// Lifts a stall a case left behind: before its queue pairs are given back.
    pub fn lift_stall(&self) {
        match self {
            RealBackend::Here(l) => l.lift_stall(),
            RealBackend::There { link, .. } => {
                let _ = link.call(&BackendCall::RealLiftStall);
            }
        }
    }

    /// Closes the controller, keeping what a reference target that opens it itself needs
    /// to know: a [`RealTarget`].
    pub fn into_target(self) -> Result<RealTarget, Failure> {
        let facts = self.facts()?;
        match self {
            RealBackend::Here(l) => {
                let (address, faults) = (l.address(), l.fault_line());
                drop(l);
                Ok(RealTarget {
                    address,
                    facts,
                    faults: TargetFaults::Here(faults),
                })
            }
            RealBackend::There { .. } => Err(Failure::new(
                "a control-plane case's real controller on the target host is named by the \
                 target host (RealTarget::remote)",
            )),
        }
    }
}

/// Where a [`RealTarget`]'s faults are asked.
enum TargetFaults {
    /// This host's broker.
    Here(Arc<FaultLine>),
    /// The target host's, through the control channel.
    There(Arc<RemoteTarget>),
}

/// A real controller that the reference target of a control-plane case opens itself
/// (`[subsystem.backend] kind = "vfio"`): the suites keep its address, its namespace's
/// facts and the way to its broker, and hold no VFIO handle.
pub struct RealTarget {
    address: PciAddress,
    facts: RealBackendFacts,
    faults: TargetFaults,
}

impl RealTarget {
    /// The controller the target host lends (`address`, with `facts`), its faults asked
    /// through `target`'s channel.
    pub fn remote(address: PciAddress, facts: RealBackendFacts, target: Arc<RemoteTarget>) -> Self {
        RealTarget {
            address,
            facts,
            faults: TargetFaults::There(target),
        }
    }

    /// Its PCI address.
    pub fn address(&self) -> PciAddress {
        self.address
    }

    /// Its namespace 1's format and size, and whether faults can be injected.
    pub fn facts(&self) -> RealBackendFacts {
        self.facts
    }

    /// Asks the broker for `fault` (see [`FaultLine::inject`]).
    pub async fn inject(&self, fault: RealFault) -> Result<(), Failure> {
        match &self.faults {
            TargetFaults::Here(f) => f.inject(fault).await,
            TargetFaults::There(t) => (t.real_fault(fault).await)
                .map_err(|e| Failure::new(format!("the target host's fault broker: {e}"))),
        }
    }

    /// Lifts a stall left in force; call before the target that holds the controller
    /// stops (blocks for the broker's answer).
    pub fn lift_stall(&self) {
        match &self.faults {
            TargetFaults::Here(f) => f.lift_stall(),
            TargetFaults::There(t) => {
                let _ = t.real_lift_stall_blocking();
            }
        }
    }
}
