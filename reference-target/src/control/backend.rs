//! The controller behind each subsystem, as the control plane holds it ([`Backend`]):
//! emulated by the project (in-process, with fault injection), or a real NVMe controller
//! driven through VFIO ([`RealController`]). The engine reaches either through the bus
//! (seam 3); software reaches it through [`Backend::io`] for the I/O it serves itself, so
//! that a namespace holds the same data whoever served the command.
//!
//! A real controller has two I/O queue pairs: queue 1, whose rings live in a memory region
//! of the engine's context and which the engine drives ([`VfioPort`]), and queue 2, the
//! control plane's own (polled, DMA buffers of its own), for software-served I/O.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::backend::emulated::{BackendController, LbaFormat};
use harness::backend::vfio::{PciAddress, SharedController, VfioError, VfioPort};
use harness::backend::BackendPort;
use harness::fabric::{DeviceContext, MrInfo};
use harness::wire::{DsmCommand, DsmRangeRepr, RwCommand, SqeCommand, Status, WriteZeroesCommand};

use super::config::{Backing, NamespaceConfig};

/// Bound of one software-served command on a real controller.
const SOFTWARE_BOUND: Duration = Duration::from_secs(10);

/// A subsystem's controller.
#[derive(Clone)]
pub(crate) enum Backend {
    /// Emulated by the project.
    Emulated(Arc<BackendController>),
    /// A real controller through VFIO.
    Real(Arc<RealController>),
}

/// One I/O software serves itself.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SwIo<'a> {
    /// Read `blocks` blocks from `slba`: the data.
    Read { slba: u64, blocks: u64 },
    /// Write `data` (whole blocks) at `slba`.
    Write { slba: u64, data: &'a [u8] },
    /// Flush the namespace.
    Flush,
    /// Write zeroes over `blocks` blocks from `slba`.
    Zeroes { slba: u64, blocks: u64 },
    /// Deallocate the ranges (first block, blocks).
    Deallocate { ranges: &'a [(u64, u64)] },
}

impl Backend {
    /// The emulated controller, if this is one (fault injection, namespace hand-over).
    pub(crate) fn emulated(&self) -> Option<&Arc<BackendController>> {
        match self {
            Backend::Emulated(c) => Some(c),
            Backend::Real(_) => None,
        }
    }

    /// Serves `op` on namespace `nsid`: the data read (empty for other operations), or
    /// the status to answer with (Namespace Not Ready when the controller has no such
    /// namespace now; a real controller's own status as it gave it).
    pub(crate) async fn io(&self, nsid: u32, op: SwIo<'_>) -> Result<Vec<u8>, Status> {
        match self {
            Backend::Emulated(c) => emulated_io(c, nsid, op),
            Backend::Real(r) => r.io(nsid, op).await,
        }
    }
}

fn emulated_io(c: &BackendController, nsid: u32, op: SwIo<'_>) -> Result<Vec<u8>, Status> {
    let internal = |_| Status::INTERNAL_ERROR;
    let got = c.with_namespace(nsid, |n| match op {
        SwIo::Read { slba, blocks } => {
            if n.has_media_error(slba, blocks) {
                Err(Status::UNRECOVERED_READ_ERROR)
            } else {
                n.read_blocks(slba, blocks).map_err(internal)
            }
        }
        SwIo::Write { slba, data } => n.write_blocks(slba, data).map(|_| vec![]).map_err(internal),
        SwIo::Flush => n.flush().map(|_| vec![]).map_err(internal),
        SwIo::Zeroes { slba, blocks } => n
            .zero_blocks(slba, blocks)
            .map(|_| vec![])
            .map_err(internal),
        SwIo::Deallocate { ranges } => ranges
            .iter()
            .try_for_each(|&(s, c)| n.zero_blocks(s, c))
            .map(|_| vec![])
            .map_err(internal),
    });
    got.unwrap_or(Err(Status::NAMESPACE_NOT_READY))
}

/// A real NVMe controller behind a subsystem: the shared controller (the engine's port
/// lent from it, software's I/O on its own queue pair) and the port lent, if any.
pub(crate) struct RealController {
    shared: SharedController,
    /// The engine's port, while attached.
    engine: Mutex<Option<Arc<VfioPort>>>,
}

impl std::fmt::Debug for RealController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealController")
            .field("address", &self.shared.address())
            .finish_non_exhaustive()
    }
}

impl RealController {
    /// Opens the controller at `address` (checked, brought up, identified) with software's
    /// queue pair.
    pub(crate) fn open(address: PciAddress) -> Result<RealController, VfioError> {
        Ok(RealController {
            shared: SharedController::open(address)?,
            engine: Mutex::new(None),
        })
    }

    /// Its PCI address.
    pub(crate) fn address(&self) -> PciAddress {
        self.shared.address()
    }

    /// Its model (Identify Controller MN), for the event log.
    pub(crate) fn model(&self) -> String {
        self.shared.model().to_string()
    }

    /// The namespaces as the control plane configures them: the controller's own nsids,
    /// sizes and LBA formats. A namespace whose metadata is a separate buffer (FLBAS bit 4
    /// clear with metadata) or whose format the target cannot present is refused, naming
    /// it.
    pub(crate) fn namespace_configs(&self) -> Result<Vec<NamespaceConfig>, String> {
        self.shared
            .namespaces()
            .iter()
            .map(|n| {
                let meta = n.metadata_size();
                if n.separate_metadata() {
                    return Err(format!(
                        "namespace {}: {meta} bytes of metadata in a separate buffer (FLBAS bit 4 \
                         clear); the target moves metadata only as extended LBAs",
                        n.nsid
                    ));
                }
                let lba_format = LbaFormat::new(n.block_size(), meta);
                if !lba_format.is_supported() {
                    return Err(format!(
                        "namespace {}: LBA format {lba_format} is not one the target presents",
                        n.nsid
                    ));
                }
                // The controller's own identifiers, where it has them.
                let ids = super::ns_ids::NamespaceIds {
                    uuid: None,
                    nguid: (n.identify.nguid != [0; 16]).then_some(n.identify.nguid),
                    eui64: (n.identify.eui64 != [0; 8]).then_some(n.identify.eui64),
                };
                Ok(NamespaceConfig {
                    nsid: n.nsid,
                    backing: Backing::Controller,
                    size: n.identify.nsze * u64::from(lba_format.data),
                    lba_format,
                    ids,
                })
            })
            .collect()
    }

    /// Creates the engine's queue pair over `rings` (a region of `ctx` laid out as
    /// `RingLayout::new(depth)`) and maps `staging` for the controller's DMA: the port the
    /// engine drives (queue 1, the first the controller lends). Undone by
    /// [`Self::detach_engine`] (and on drop).
    pub(crate) fn attach_engine(
        &self,
        ctx: Arc<dyn DeviceContext>,
        rings: MrInfo,
        staging: &MrInfo,
        depth: u16,
    ) -> Result<Arc<dyn BackendPort>, VfioError> {
        let port = self.shared.lend(ctx, rings, staging, depth)?;
        *self.engine.lock().unwrap_or_else(|p| p.into_inner()) = Some(port.clone());
        Ok(port)
    }

    /// Deletes the engine's queue pair and unmaps its memory, if attached.
    pub(crate) fn detach_engine(&self) {
        let taken = self.engine.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(port) = taken {
            self.shared.give_back(&port);
        }
    }

    /// Resets the controller after a PCI error or a fatal status (the engine's queue pair
    /// is gone with it) and re-creates software's queue pair. The caller then attaches the
    /// engine again.
    pub(crate) fn recover(&self) -> Result<(), VfioError> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.shared.reset()
    }

    /// Why the engine's port stopped, if it did.
    pub(crate) fn why_stopped(&self) -> Option<&'static str> {
        self.shared.why_stopped()
    }

    /// The largest data transfer of one command the controller takes (its MDTS), bytes.
    pub(crate) fn max_transfer(&self) -> Option<u64> {
        self.shared.max_transfer()
    }

    /// `op`, split into commands no longer than the controller's MDTS when it moves data
    /// (a subsystem's MDTS is the target's, not its controller's).
    async fn io(self: &Arc<Self>, nsid: u32, op: SwIo<'_>) -> Result<Vec<u8>, Status> {
        let Some(ns) = self.shared.namespace(nsid) else {
            return Err(Status::NAMESPACE_NOT_READY);
        };
        let block = u64::from(ns.block_size());
        let per = self.max_transfer().map_or(u64::MAX, |m| (m / block).max(1));
        match op {
            SwIo::Read { slba, blocks } if blocks > per => {
                let mut data = Vec::with_capacity((blocks * block) as usize);
                let mut done = 0;
                while done < blocks {
                    let n = per.min(blocks - done);
                    let part = SwIo::Read {
                        slba: slba + done,
                        blocks: n,
                    };
                    data.extend(self.one(nsid, block, part).await?);
                    done += n;
                }
                Ok(data)
            }
            SwIo::Write { slba, data } if data.len() as u64 > per * block => {
                for (i, part) in data.chunks((per * block) as usize).enumerate() {
                    let slba = slba + i as u64 * per;
                    self.one(nsid, block, SwIo::Write { slba, data: part })
                        .await?;
                }
                Ok(Vec::new())
            }
            op => self.one(nsid, block, op).await,
        }
    }

    /// `op` as one command to the controller.
    async fn one(self: &Arc<Self>, nsid: u32, block: u64, op: SwIo<'_>) -> Result<Vec<u8>, Status> {
        let (command, out, in_len) = match op {
            SwIo::Read { slba, blocks } => (
                SqeCommand::Read(RwCommand::new(slba, blocks as u32)),
                Vec::new(),
                blocks * block,
            ),
            SwIo::Write { slba, data } => (
                SqeCommand::Write(RwCommand::new(slba, (data.len() as u64 / block) as u32)),
                data.to_vec(),
                0,
            ),
            SwIo::Flush => (SqeCommand::Flush, Vec::new(), 0),
            SwIo::Zeroes { slba, blocks } => (
                SqeCommand::WriteZeroes(WriteZeroesCommand {
                    slba,
                    nlb: (blocks.clamp(1, 0x1_0000) - 1) as u16,
                    ..WriteZeroesCommand::default()
                }),
                Vec::new(),
                0,
            ),
            SwIo::Deallocate { ranges } => {
                let list: Vec<DsmRangeRepr> = ranges
                    .iter()
                    .map(|&(s, n)| DsmRangeRepr::new(s, n as u32))
                    .collect();
                (
                    SqeCommand::DatasetManagement(DsmCommand {
                        nr: ranges.len().clamp(1, 256).saturating_sub(1) as u8,
                        ad: true,
                        ..DsmCommand::default()
                    }),
                    DsmRangeRepr::emit_list(&list),
                    0,
                )
            }
        };
        let me = self.clone();
        let ran = tokio::task::spawn_blocking(move || {
            me.shared
                .run(nsid, command, &out, in_len, SOFTWARE_BOUND, "software I/O")
        })
        .await;
        match ran {
            Ok(Ok((status, data))) if status.same_code(Status::SUCCESS) => Ok(data),
            Ok(Ok((status, _))) => Err(status),
            Ok(Err(e)) => {
                tracing::warn!(target: "nvmf_target", "software I/O on {}: {e}", self.address());
                Err(Status::INTERNAL_ERROR)
            }
            Err(_) => Err(Status::INTERNAL_ERROR),
        }
    }
}
