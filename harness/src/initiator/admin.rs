//! The admin queue: [`Controller`] connects it and drives the controller (properties,
//! enable, Identify, Set Features, Keep Alive, shutdown), and connects I/O queues.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::connect::{cm_establish, fabrics_connect, CmOptions, ConnectOptions};
use super::error::{InitiatorError, Result};
use super::io::IoQueue;
use super::queue::{Command, Completion, DataMode, HostQueue, QueueSpec, Transfer};
use crate::fabric::{DeviceContext, PdId};
use crate::wire::{
    AdminCommand, CcRepr, ConnectDataRepr, CstsRepr, DiscoveryLogHeaderRepr, DiscoveryLogRepr,
    FabricsRepr, GetLogPageRepr, IdentifyControllerRepr, IdentifyNamespaceRepr, PropertyGetRepr,
    PropertySetRepr, PropertySize, Psdt, SglRepr, CNTLID_DYNAMIC, DISCOVERY_LOG_ENTRY_LEN,
    DISCOVERY_LOG_HEADER_LEN, DISCOVERY_LOG_LID, SHN_NONE, SHN_NORMAL, SHST_COMPLETE,
};

pub use crate::wire::{PROP_CAP, PROP_CC, PROP_CSTS, PROP_VS};

/// CC as Linux writes it to enable a controller, EN aside: IOSQES 6 (64-byte SQEs),
/// IOCQES 4 (16-byte CQEs).
pub const LINUX_CC: CcRepr = CcRepr {
    en: false,
    css: 0,
    mps: 0,
    ams: 0,
    shn: SHN_NONE,
    iosqes: 6,
    iocqes: 4,
};

/// Largest Get Log Page transfer [`Controller::discovery_log`] makes, in bytes (as libnvme).
pub const DISCOVERY_LOG_CHUNK: u32 = 4096;
/// How many times [`Controller::discovery_log`] reads the log again after GENCTR changed
/// while it was being read.
pub const DISCOVERY_LOG_RETRIES: u32 = 4;
/// Most records [`Controller::discovery_log`] reads (4 MiB of entries): a larger NUMREC
/// is reported as a protocol violation instead of being read.
pub const DISCOVERY_LOG_MAX_RECORDS: u64 = 4096;

/// Get Log Page of `len` bytes of log `lid` from byte `offset`, with log specific field
/// `lsp`. `len` must be a nonzero multiple of 4 and `lsp` at most 7Fh.
fn get_log_page_command(lid: u8, lsp: u8, offset: u64, len: u32) -> Result<AdminCommand> {
    if len == 0 || len % 4 != 0 {
        return Err(InitiatorError::Invalid(format!(
            "Get Log Page of {len} bytes: the length must be a nonzero multiple of 4"
        )));
    }
    if lsp > 0x7f {
        return Err(InitiatorError::Invalid(format!(
            "Get Log Page LSP {lsp:#x} does not fit CDW10 bits 14:8"
        )));
    }
    Ok(AdminCommand::GetLogPage(GetLogPageRepr {
        lid,
        lsp,
        numd: len / 4 - 1,
        lpo: offset,
        ..GetLogPageRepr::default()
    }))
}

/// Who the host is and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Host NQN.
    pub hostnqn: String,
    /// Host identifier.
    pub hostid: [u8; 16],
    /// Subsystem NQN to connect to.
    pub subnqn: String,
    /// Keep Alive Timeout sent in the admin Connect, in milliseconds.
    pub kato_ms: u32,
    /// Admin queue depth (Linux: 32).
    pub admin_depth: u16,
    /// Send Connect data in the capsule (SGL 01h) instead of keyed (40h, the default).
    pub connect_data_in_capsule: bool,
    /// Bound of each CM wait.
    pub cm_bound: Duration,
    /// Bound of each command's response wait.
    pub command_bound: Duration,
    /// Bound of the CSTS.RDY / CSTS.SHST polling loops.
    pub ready_bound: Duration,
}

impl HostConfig {
    /// A host with Linux-like defaults for `subnqn`.
    pub fn new(subnqn: &str) -> HostConfig {
        HostConfig {
            hostnqn: "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7374".into(),
            hostid: *b"nvmf-conform-hst",
            subnqn: subnqn.into(),
            kato_ms: 5000,
            admin_depth: 32,
            connect_data_in_capsule: false,
            cm_bound: Duration::from_secs(2),
            command_bound: Duration::from_secs(2),
            ready_bound: Duration::from_secs(5),
        }
    }

    /// The Connect data for a queue of controller `cntlid` (FFFFh on the admin queue).
    pub fn connect_data(&self, cntlid: u16) -> ConnectDataRepr {
        ConnectDataRepr {
            hostid: self.hostid,
            cntlid,
            subnqn: self.subnqn.clone(),
            hostnqn: self.hostnqn.clone(),
        }
    }
}

/// The Identify Controller fields this host uses, plus the raw 4096 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyController {
    /// MDTS (byte 77): maximum transfer 2^MDTS minimum pages; 0 = no limit.
    pub mdts: u8,
    /// CNTLID (bytes 79:78).
    pub cntlid: u16,
    /// NN (bytes 519:516): number of namespaces.
    pub nn: u32,
    /// SGLS (bytes 539:536).
    pub sgls: u32,
    /// IOCCSZ (bytes 1795:1792): I/O capsule size in 16-byte units.
    pub ioccsz: u32,
    /// IORCSZ (bytes 1799:1796): I/O response size in 16-byte units.
    pub iorcsz: u32,
    /// ICDOFF (bytes 1801:1800).
    pub icdoff: u16,
    /// The whole data structure.
    pub raw: Vec<u8>,
}

impl IdentifyController {
    /// Parses the fields from the 4096-byte data structure.
    pub fn parse(raw: Vec<u8>) -> Result<IdentifyController> {
        let r = IdentifyControllerRepr::parse(&raw)
            .map_err(|e| InitiatorError::Protocol(format!("identify controller: {e}")))?;
        Ok(IdentifyController {
            mdts: r.mdts,
            cntlid: r.cntlid,
            nn: r.nn,
            sgls: r.sgls,
            ioccsz: r.ioccsz,
            iorcsz: r.iorcsz,
            icdoff: r.icdoff,
            raw,
        })
    }

    /// In-capsule data bytes an I/O capsule may carry: IOCCSZ * 16 - 64.
    pub fn in_capsule_data(&self) -> u32 {
        (self.ioccsz * 16).saturating_sub(64)
    }
}

/// The Identify Namespace fields this host uses, plus the raw 4096 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyNamespace {
    /// NSZE (bytes 7:0), in logical blocks.
    pub nsze: u64,
    /// NCAP (bytes 15:8).
    pub ncap: u64,
    /// FLBAS (byte 26).
    pub flbas: u8,
    /// LBA data size in bytes, 2^LBADS of the format FLBAS selects.
    pub lba_size: u32,
    /// The whole data structure.
    pub raw: Vec<u8>,
}

impl IdentifyNamespace {
    /// Parses the fields from the 4096-byte data structure.
    pub fn parse(raw: Vec<u8>) -> Result<IdentifyNamespace> {
        let r = IdentifyNamespaceRepr::parse(&raw)
            .map_err(|e| InitiatorError::Protocol(format!("identify namespace: {e}")))?;
        let flbas = r.flbas;
        let fmt = usize::from(flbas & 0x0f) | (usize::from(flbas >> 5 & 0x3) << 4);
        let lbads = r.current_format().map_or(0, |f| f.lbads);
        if !(9..32).contains(&lbads) {
            return Err(InitiatorError::Protocol(format!(
                "identify namespace: LBADS {lbads} of format {fmt}"
            )));
        }
        Ok(IdentifyNamespace {
            nsze: r.nsze,
            ncap: r.ncap,
            flbas,
            lba_size: 1 << lbads,
            raw,
        })
    }
}

/// A controller reached through a connected admin queue.
pub struct Controller {
    ctx: Arc<dyn DeviceContext>,
    pd: PdId,
    addr: SocketAddr,
    config: HostConfig,
    admin: HostQueue,
    cntlid: u16,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("addr", &self.addr)
            .field("cntlid", &self.cntlid)
            .field("admin", &self.admin)
            .finish()
    }
}

impl Controller {
    /// Creates a protection domain, connects the admin queue (CM, then Connect with
    /// CNTLID FFFFh) and returns the controller with the CNTLID the target gave.
    pub async fn connect(
        ctx: Arc<dyn DeviceContext>,
        addr: SocketAddr,
        config: HostConfig,
    ) -> Result<Controller> {
        let pd = ctx.alloc_pd()?;
        let spec = QueueSpec {
            depth: config.admin_depth,
            ..QueueSpec::admin()
        };
        let mut admin = HostQueue::create(ctx.clone(), pd, spec, config.command_bound)?;
        let opts = CmOptions::for_queue(&admin);
        if let Err(e) = cm_establish(&mut admin, addr, &opts, config.cm_bound).await {
            let _ = admin.abort();
            let _ = ctx.dealloc_pd(pd);
            return Err(e);
        }
        let copts =
            ConnectOptions::for_queue(&admin, config.kato_ms, config.connect_data_in_capsule);
        let s = fabrics_connect(&mut admin, &config.connect_data(CNTLID_DYNAMIC), &copts).await?;
        Ok(Controller {
            ctx,
            pd,
            addr,
            config,
            admin,
            cntlid: s.cntlid,
        })
    }

    /// The controller ID the admin Connect returned.
    pub fn cntlid(&self) -> u16 {
        self.cntlid
    }

    /// The admin queue.
    pub fn admin(&mut self) -> &mut HostQueue {
        &mut self.admin
    }

    /// The host configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The device context.
    pub fn ctx(&self) -> &Arc<dyn DeviceContext> {
        &self.ctx
    }

    /// The protection domain shared by all queues of this controller.
    pub fn pd(&self) -> PdId {
        self.pd
    }

    /// The target's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs an admin command; a non-success status becomes [`InitiatorError::Nvme`].
    pub async fn admin_command(
        &mut self,
        what: &'static str,
        cmd: &Command,
        transfer: Transfer<'_>,
    ) -> Result<Completion> {
        let c = self.admin.execute(cmd, transfer, DataMode::Keyed).await?;
        if !c.cqe.status.is_success() {
            return Err(InitiatorError::Nvme {
                what,
                status: c.cqe.status,
                cqe: c.cqe,
            });
        }
        Ok(c)
    }

    /// Property Get of `size` at `offset`.
    pub async fn property_get(&mut self, offset: u32, size: PropertySize) -> Result<u64> {
        let cmd = Command::Fabrics(FabricsRepr::PropertyGet(PropertyGetRepr {
            psdt: Psdt::SglMptrContiguous,
            cid: 0,
            sgl1: SglRepr::keyed(0, 0, 0),
            size,
            offset,
        }));
        let c = self
            .admin_command("Property Get", &cmd, Transfer::None)
            .await?;
        Ok(match size {
            PropertySize::Four => u64::from(c.cqe.dw0()),
            PropertySize::Eight => c.cqe.result,
        })
    }

    /// Property Set of `size` at `offset`.
    pub async fn property_set(
        &mut self,
        offset: u32,
        size: PropertySize,
        value: u64,
    ) -> Result<()> {
        let cmd = Command::Fabrics(FabricsRepr::PropertySet(PropertySetRepr {
            psdt: Psdt::SglMptrContiguous,
            cid: 0,
            sgl1: SglRepr::keyed(0, 0, 0),
            size,
            offset,
            value,
        }));
        self.admin_command("Property Set", &cmd, Transfer::None)
            .await?;
        Ok(())
    }

    /// Polls CSTS every millisecond until `done(csts)`, bounded by the ready bound.
    async fn poll_csts(&mut self, what: &'static str, done: impl Fn(u32) -> bool) -> Result<u32> {
        let bound = self.config.ready_bound;
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let csts = self.property_get(PROP_CSTS, PropertySize::Four).await? as u32;
            if done(csts) {
                return Ok(csts);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(InitiatorError::TimedOut { what, bound });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Enables the controller as Linux does: read CAP, write CC with IOSQES/IOCQES and
    /// EN=1, poll CSTS.RDY (bounded). Returns CAP.
    pub async fn enable(&mut self) -> Result<u64> {
        let cap = self.property_get(PROP_CAP, PropertySize::Eight).await?;
        self.property_set(
            PROP_CC,
            PropertySize::Four,
            u64::from(
                CcRepr {
                    en: true,
                    ..LINUX_CC
                }
                .emit(),
            ),
        )
        .await?;
        let csts = self
            .poll_csts("CSTS.RDY = 1", |c| {
                let c = CstsRepr::parse(c);
                c.rdy || c.cfs
            })
            .await?;
        if CstsRepr::parse(csts).cfs {
            return Err(InitiatorError::Protocol(format!(
                "CSTS.CFS set while enabling (CSTS {csts:#x})"
            )));
        }
        Ok(cap)
    }

    /// Identify with CNS `cns` for `nsid`: 4096 bytes to a host region (keyed SGL).
    pub async fn identify(&mut self, cns: u8, nsid: u32) -> Result<Vec<u8>> {
        let cmd = Command::Nvme {
            nsid,
            command: AdminCommand::Identify { cns, cntid: 0 }.to_sqe_command(),
        };
        let c = self
            .admin_command("Identify", &cmd, Transfer::FromTarget(4096))
            .await?;
        Ok(c.data)
    }

    /// Get Log Page (02h) of log `lid` with log specific field `lsp`: `len` bytes (a
    /// nonzero multiple of 4, else [`InitiatorError::Invalid`]) from byte `offset` of the
    /// log, to a host region (keyed SGL). NSID 0, as libnvme uses for the discovery log.
    pub async fn get_log_page(
        &mut self,
        lid: u8,
        lsp: u8,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>> {
        let cmd = Command::Nvme {
            nsid: 0,
            command: get_log_page_command(lid, lsp, offset, len)?.to_sqe_command(),
        };
        let c = self
            .admin_command("Get Log Page", &cmd, Transfer::FromTarget(len))
            .await?;
        Ok(c.data)
    }

    /// Reads and parses the discovery log (LID 70h) as libnvme does: the 1024-byte header,
    /// then, when NUMREC is nonzero, the NUMREC entries from byte 1024 in transfers of at
    /// most [`DISCOVERY_LOG_CHUNK`] bytes, then the header again; when GENCTR changed, all
    /// of it again, at most [`DISCOVERY_LOG_RETRIES`] more times. A log that does not
    /// parse, a NUMREC above [`DISCOVERY_LOG_MAX_RECORDS`], a NUMREC that changed under
    /// the same GENCTR, or a GENCTR that never settles is [`InitiatorError::Protocol`].
    pub async fn discovery_log(&mut self) -> Result<DiscoveryLogRepr> {
        let malformed = |e: crate::wire::WireError| {
            InitiatorError::Protocol(format!("malformed discovery log: {e}"))
        };
        let mut header = self.discovery_log_header().await?;
        for _ in 0..=DISCOVERY_LOG_RETRIES {
            if header.numrec == 0 {
                return Ok(DiscoveryLogRepr {
                    header,
                    entries: Vec::new(),
                });
            }
            if header.numrec > DISCOVERY_LOG_MAX_RECORDS {
                return Err(InitiatorError::Protocol(format!(
                    "discovery log NUMREC {} exceeds the host's limit of {} records",
                    header.numrec, DISCOVERY_LOG_MAX_RECORDS
                )));
            }
            // At most 4096 records of 1024 bytes: no overflow.
            let total = header.numrec as usize * DISCOVERY_LOG_ENTRY_LEN;
            let mut log = header.to_bytes()?;
            log.reserve(total);
            while log.len() < DISCOVERY_LOG_HEADER_LEN + total {
                let done = log.len() - DISCOVERY_LOG_HEADER_LEN;
                let len = (total - done).min(DISCOVERY_LOG_CHUNK as usize) as u32;
                let chunk = self
                    .get_log_page(DISCOVERY_LOG_LID, 0, log.len() as u64, len)
                    .await?;
                if chunk.len() != len as usize {
                    return Err(InitiatorError::Protocol(format!(
                        "discovery log: Get Log Page of {len} bytes returned {}",
                        chunk.len()
                    )));
                }
                log.extend_from_slice(&chunk);
            }
            let again = self.discovery_log_header().await?;
            if again.genctr == header.genctr {
                if again.numrec != header.numrec {
                    return Err(InitiatorError::Protocol(format!(
                        "discovery log NUMREC changed from {} to {} under GENCTR {}",
                        header.numrec, again.numrec, again.genctr
                    )));
                }
                return DiscoveryLogRepr::parse_bytes(&log).map_err(malformed);
            }
            header = again;
        }
        Err(InitiatorError::Protocol(format!(
            "discovery log GENCTR changed on each of {} reads",
            DISCOVERY_LOG_RETRIES + 1
        )))
    }

    /// Reads and parses the discovery log header (LID 70h, bytes 1023:0).
    async fn discovery_log_header(&mut self) -> Result<DiscoveryLogHeaderRepr> {
        let b = self
            .get_log_page(DISCOVERY_LOG_LID, 0, 0, DISCOVERY_LOG_HEADER_LEN as u32)
            .await?;
        DiscoveryLogHeaderRepr::parse_bytes(&b)
            .map_err(|e| InitiatorError::Protocol(format!("malformed discovery log header: {e}")))
    }

    /// Identify Controller (CNS 01h).
    pub async fn identify_controller(&mut self) -> Result<IdentifyController> {
        IdentifyController::parse(self.identify(1, 0).await?)
    }

    /// Identify Namespace (CNS 00h) of `nsid`.
    pub async fn identify_namespace(&mut self, nsid: u32) -> Result<IdentifyNamespace> {
        IdentifyNamespace::parse(self.identify(0, nsid).await?)
    }

    /// Set Features Number of Queues (FID 07h) asking for `n` submission and completion
    /// queues; returns what the controller allocated (NSQA, NCQA), 1-based.
    pub async fn set_number_of_queues(&mut self, n: u16) -> Result<(u32, u32)> {
        let v = u32::from(n.max(1) - 1);
        let cmd = Command::Nvme {
            nsid: 0,
            command: AdminCommand::SetFeatures {
                fid: 0x07,
                save: false,
                value: v | v << 16,
            }
            .to_sqe_command(),
        };
        let c = self
            .admin_command("Set Features (Number of Queues)", &cmd, Transfer::None)
            .await?;
        let dw0 = c.cqe.dw0();
        Ok(((dw0 & 0xffff) + 1, (dw0 >> 16) + 1))
    }

    /// Keep Alive.
    pub async fn keep_alive(&mut self) -> Result<()> {
        let cmd = Command::Nvme {
            nsid: 0,
            command: AdminCommand::KeepAlive.to_sqe_command(),
        };
        self.admin_command("Keep Alive", &cmd, Transfer::None)
            .await?;
        Ok(())
    }

    /// Normal shutdown: CC.SHN = 01b (keeping the other CC bits), then poll CSTS.SHST
    /// until shutdown complete (bounded).
    pub async fn shutdown(&mut self) -> Result<()> {
        let cc = self.property_get(PROP_CC, PropertySize::Four).await? as u32;
        // Only SHN changes; bits CcRepr does not know (reserved) are kept.
        let known = CcRepr::parse(cc);
        let shutdown = CcRepr {
            shn: SHN_NORMAL,
            ..known
        };
        let cc = (cc & !known.emit()) | shutdown.emit();
        self.property_set(PROP_CC, PropertySize::Four, u64::from(cc))
            .await?;
        self.poll_csts("CSTS.SHST = complete", |c| {
            CstsRepr::parse(c).shst == SHST_COMPLETE
        })
        .await?;
        Ok(())
    }

    /// Connects I/O queue `qid` of `depth` entries with `in_capsule_data` bytes of
    /// in-capsule data (at most IOCCSZ * 16 - 64), Connect data carrying this
    /// controller's CNTLID. Returns it bound to namespace `nsid` of `lba_size` bytes.
    ///
    /// Its responses' SQHD is checked to lie inside the queue only ([`super::SqhdCheck::InQueue`]):
    /// behind an offloading target, software answers some commands of an offloaded queue
    /// and cannot know how many capsules the device consumed.
    pub async fn connect_io_queue(
        &mut self,
        qid: u16,
        depth: u16,
        in_capsule_data: u32,
        nsid: u32,
        lba_size: u32,
    ) -> Result<IoQueue> {
        let spec = QueueSpec::io(qid, depth, in_capsule_data);
        let mut q = HostQueue::create(self.ctx.clone(), self.pd, spec, self.config.command_bound)?;
        q.set_sqhd_check(super::queue::SqhdCheck::InQueue);
        let opts = CmOptions::for_queue(&q);
        if let Err(e) = cm_establish(&mut q, self.addr, &opts, self.config.cm_bound).await {
            let _ = q.abort();
            return Err(e);
        }
        let copts = ConnectOptions::for_queue(&q, 0, self.config.connect_data_in_capsule);
        fabrics_connect(&mut q, &self.config.connect_data(self.cntlid), &copts).await?;
        Ok(IoQueue::new(q, nsid, lba_size))
    }

    /// Disconnects the admin queue through the CM and frees the protection domain
    /// (I/O queues must be disconnected first).
    pub async fn disconnect(self) -> Result<()> {
        self.disconnect_when(async {}).await
    }

    /// [`Controller::disconnect`], awaiting `ready` once the DREQ is sent
    /// ([`HostQueue::disconnect_when`]); what `ready` gave.
    pub async fn disconnect_when<F: std::future::Future>(self, ready: F) -> Result<F::Output> {
        let bound = self.config.cm_bound;
        let out = self.admin.disconnect_when(bound, ready).await?;
        self.ctx.dealloc_pd(self.pd)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_namespace_uses_the_selected_format() {
        use crate::wire::LbaFormatRepr;
        let mut repr = IdentifyNamespaceRepr {
            nsze: 1000,
            ncap: 1000,
            // FLBAS: format 17 = 1 | (01b in bits 6:5) << 4.
            flbas: 0x21,
            lbaf: (0..18)
                .map(|i| LbaFormatRepr {
                    ms: 0,
                    lbads: if i == 17 { 12 } else { 9 },
                    rp: 0,
                })
                .collect(),
            ..IdentifyNamespaceRepr::default()
        };
        let ns = IdentifyNamespace::parse(repr.emit().unwrap()).unwrap();
        assert_eq!((ns.nsze, ns.ncap, ns.flbas), (1000, 1000, 0x21));
        assert_eq!(ns.lba_size, 4096);
        // FLBAS naming a format the namespace does not list, or LBADS 0: refused.
        repr.lbaf.truncate(17);
        assert!(IdentifyNamespace::parse(repr.emit().unwrap()).is_err());
        assert!(IdentifyNamespace::parse(vec![0u8; 4096]).is_err());
        assert!(IdentifyNamespace::parse(vec![0u8; 4095]).is_err());
    }

    #[test]
    fn get_log_page_dwords() {
        // Discovery log header: LID 70h, 1024 bytes -> NUMD 255.
        let cdws =
            |lid, lsp, offset, len| get_log_page_command(lid, lsp, offset, len).map(|c| c.emit().1);
        assert_eq!(
            cdws(0x70, 0, 0, 1024).unwrap(),
            [0x00ff_0070, 0, 0, 0, 0, 0]
        );
        // NUMD above 16 bits splits into NUMDL and NUMDU; the offset into LPOL/LPOU.
        assert_eq!(
            cdws(0x02, 0x5, 0x1_0000_0400, 0x40_0000).unwrap(),
            [0xffff_0502, 0xf, 0x400, 1, 0, 0]
        );
        for len in [0, 1, 6, 1023] {
            assert!(matches!(
                cdws(0x70, 0, 0, len),
                Err(InitiatorError::Invalid(_))
            ));
        }
        assert!(matches!(
            cdws(0x70, 0x80, 0, 4),
            Err(InitiatorError::Invalid(_))
        ));
    }

    #[test]
    fn identify_controller_fields() {
        let mut raw = vec![0u8; 4096];
        raw[77] = 5;
        raw[1792..1796].copy_from_slice(&516u32.to_le_bytes());
        let id = IdentifyController::parse(raw).unwrap();
        assert_eq!(id.mdts, 5);
        assert_eq!(id.in_capsule_data(), 8192);
        assert!(IdentifyController::parse(vec![0u8; 10]).is_err());
    }
}
