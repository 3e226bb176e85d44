use super::export_pci::queue_from_c;
use super::*;

/// A `struct nvmf_pci_ops` + context as a [`PciHost`].
pub struct ImportedPci {
    ops: NvmfPciOps,
    ctx: RawCtx,
}

impl ImportedPci {
    /// Wraps the host's PCI side.
    ///
    /// # Safety
    /// As [`ImportedVerbs::from_raw`].
    pub unsafe fn from_raw(ops: NvmfPciOps, ctx: *mut c_void) -> ImportedPci {
        ImportedPci {
            ops,
            ctx: RawCtx(ctx),
        }
    }
}

fn errno_of(rc: c_int) -> Result<(), Errno> {
    if rc >= 0 {
        Ok(())
    } else {
        Err(errno_of_rc(rc).unwrap_or(Errno::EIO))
    }
}

impl PciHost for ImportedPci {
    fn find(&self, doorbell_mr: MrId, doorbell_addr: u64) -> Option<PciFunction> {
        let mut c = NvmfPciCtrl::default();
        let rc = call!(
            self.ops,
            self.ctx.0,
            find,
            doorbell_mr.0,
            doorbell_addr,
            &mut c
        );
        errno_of(rc).ok()?;
        let mut sqs = Vec::new();
        for i in 0..c.num_sqs {
            let mut q = NvmfPciQueue::default();
            errno_of(call!(self.ops, self.ctx.0, sq_info, c.id, i, &mut q)).ok()?;
            sqs.push(queue_from_c(&q));
        }
        Some(PciFunction {
            id: c.id,
            depth: u16::try_from(c.depth).ok()?,
            sqs,
            cq: queue_from_c(&c.cq),
        })
    }

    fn ring_sq(&self, id: u64, sq: u32, tail: u16) -> Result<(), Errno> {
        errno_of(call!(self.ops, self.ctx.0, ring_sq, id, sq, tail))
    }

    fn ring_cq(&self, id: u64, head: u16) -> Result<(), Errno> {
        errno_of(call!(self.ops, self.ctx.0, ring_cq, id, head))
    }

    fn status(&self, id: u64) -> Result<PciStatus, Errno> {
        let mut s = NvmfPciStatus::default();
        errno_of(call!(self.ops, self.ctx.0, status, id, &mut s))?;
        Ok(PciStatus {
            state: if s.state == NVMF_PCI_RUNNING {
                PciState::Running
            } else {
                PciState::Error
            },
            completions: s.completions,
        })
    }

    fn doorbells(&self, id: u64) -> Result<PciDoorbells, Errno> {
        let mut d = NvmfPciDoorbells::default();
        match call!(self.ops, self.ctx.0, doorbells, id, &mut d) {
            // A host of ABI 1 has no memory doorbells.
            rc if rc == neg(Errno::EOPNOTSUPP) => Ok(PciDoorbells::Call),
            rc => {
                errno_of(rc)?;
                pci_doorbells_from_c(&d).ok_or(Errno::EPROTO)
            }
        }
    }
}
