use super::*;

/// A [`PciHost`] behind `struct nvmf_pci_ops`.
pub type ExportedPci = Exported<PciSide>;

/// What [`ExportedPci`] holds: the host's PCI side and the controllers a plugin found
/// (for `sq_info`).
pub struct PciSide {
    host: Arc<dyn PciHost>,
    found: Mutex<BTreeMap<u64, PciFunction>>,
}

impl Side for PciSide {
    const NAME: &'static str = "the PCI side";
}

impl ExportedPci {
    /// Exports `host`; every call enters `rt` when given.
    pub fn new(host: Arc<dyn PciHost>, rt: Option<Handle>) -> Box<ExportedPci> {
        let side = PciSide {
            host,
            found: Mutex::new(BTreeMap::new()),
        };
        Exported::boxed(side, rt)
    }

    /// The vtable.
    pub fn ops() -> &'static NvmfPciOps {
        &PCI_OPS
    }
}

fn with_pci(ctx: *mut c_void, f: impl FnOnce(&PciSide) -> Result<(), Errno>) -> c_int {
    ExportedPci::call(ctx, f)
}

fn span_to_c(s: &PciSpan) -> NvmfPciSpan {
    NvmfPciSpan {
        mr: s.mr.0,
        reserved: 0,
        offset: s.offset,
        len: s.len,
    }
}

fn span_from_c(c: &NvmfPciSpan) -> PciSpan {
    PciSpan {
        mr: MrId(c.mr),
        offset: c.offset,
        len: c.len,
    }
}

fn queue_to_c(q: &PciQueue) -> NvmfPciQueue {
    NvmfPciQueue {
        ring: span_to_c(&q.ring),
        doorbell: span_to_c(&q.doorbell),
        initial: q.initial,
        reserved: [0; 3],
    }
}

pub(super) fn queue_from_c(c: &NvmfPciQueue) -> PciQueue {
    PciQueue {
        ring: span_from_c(&c.ring),
        doorbell: span_from_c(&c.doorbell),
        initial: c.initial,
    }
}

unsafe extern "C" fn p_find(ctx: *mut c_void, mr: u32, addr: u64, out: *mut NvmfPciCtrl) -> c_int {
    with_pci(ctx, |e| {
        let f = e.host.find(MrId(mr), addr).ok_or(Errno::ENODEV)?;
        let c = NvmfPciCtrl {
            id: f.id,
            depth: u32::from(f.depth),
            num_sqs: f.sqs.len() as u32,
            cq: queue_to_c(&f.cq),
        };
        relock(&e.found).insert(f.id, f);
        put(out, c)
    })
}
unsafe extern "C" fn p_sq_info(
    ctx: *mut c_void,
    id: u64,
    sq: u32,
    out: *mut NvmfPciQueue,
) -> c_int {
    with_pci(ctx, |e| {
        let q = relock(&e.found)
            .get(&id)
            .ok_or(Errno::ENODEV)?
            .sqs
            .get(sq as usize)
            .copied()
            .ok_or(Errno::EINVAL)?;
        put(out, queue_to_c(&q))
    })
}
unsafe extern "C" fn p_ring_sq(ctx: *mut c_void, id: u64, sq: u32, tail: u16) -> c_int {
    with_pci(ctx, |e| e.host.ring_sq(id, sq, tail))
}
unsafe extern "C" fn p_ring_cq(ctx: *mut c_void, id: u64, head: u16) -> c_int {
    with_pci(ctx, |e| e.host.ring_cq(id, head))
}
unsafe extern "C" fn p_status(ctx: *mut c_void, id: u64, out: *mut NvmfPciStatus) -> c_int {
    with_pci(ctx, |e| {
        let s = e.host.status(id)?;
        put(
            out,
            NvmfPciStatus {
                state: match s.state {
                    PciState::Running => NVMF_PCI_RUNNING,
                    PciState::Error => NVMF_PCI_ERROR,
                },
                reserved: 0,
                completions: s.completions,
            },
        )
    })
}

unsafe extern "C" fn p_doorbells(ctx: *mut c_void, id: u64, out: *mut NvmfPciDoorbells) -> c_int {
    with_pci(ctx, |e| {
        put(out, pci_doorbells_to_c(&e.host.doorbells(id)?))
    })
}

static PCI_OPS: NvmfPciOps = NvmfPciOps {
    find: Some(p_find),
    sq_info: Some(p_sq_info),
    ring_sq: Some(p_ring_sq),
    ring_cq: Some(p_ring_cq),
    status: Some(p_status),
    doorbells: Some(p_doorbells),
};
