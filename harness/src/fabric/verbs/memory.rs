//! Protection domains and memory regions. A region's buffer is allocated (zeroed, page
//! aligned) by the harness and registered with `ibv_reg_mr`; it lives until `dereg_mr`
//! (or the context's drop) has deregistered it.

use super::{os, raw, VerbsContext};
use crate::fabric::{Access, FabricError, MrId, MrInfo, PdId, Result};

pub(super) struct PdObj {
    pub pd: raw::Pd,
}

pub(super) struct MrObj {
    pub mr: raw::Mr,
    pub pd: PdId,
    pub len: u64,
}

/// `IBV_ACCESS_*` bits of an [`Access`] (the same numbering).
pub(super) fn ibv_access(a: Access) -> u32 {
    a.bits()
}

/// Checks `[offset, offset + len)` lies within a region of `size` bytes.
fn in_bounds(size: u64, offset: u64, len: usize) -> Result<usize> {
    let end = offset
        .checked_add(len as u64)
        .ok_or(FabricError::Invalid("mr access: offset + length overflows"))?;
    if end > size {
        return Err(FabricError::Invalid(
            "mr access: out of the region's bounds",
        ));
    }
    usize::try_from(offset).map_err(|_| FabricError::Invalid("mr access: offset"))
}

impl VerbsContext {
    pub(super) fn alloc_pd_impl(&self) -> Result<PdId> {
        let pd = raw::Pd::alloc(&self.ctx).map_err(|e| os("ibv_alloc_pd", e))?;
        let mut s = self.lock();
        let id = PdId(s.alloc_id());
        s.pds.insert(id, PdObj { pd });
        Ok(id)
    }

    pub(super) fn dealloc_pd_impl(&self, pd: PdId) -> Result<()> {
        let mut s = self.lock();
        if !s.pds.contains_key(&pd) {
            return Err(FabricError::NotFound("pd"));
        }
        let used = s.mrs.values().any(|m| m.pd == pd)
            || s.qps.values().any(|q| q.pd == pd)
            || s.srqs.values().any(|q| q.pd == pd);
        if used {
            return Err(FabricError::Busy(
                "dealloc_pd: MRs, QPs or SRQs still use it",
            ));
        }
        let obj = s.pds.get_mut(&pd).expect("checked");
        obj.pd.destroy().map_err(|e| os("ibv_dealloc_pd", e))?;
        s.pds.remove(&pd);
        Ok(())
    }

    pub(super) fn reg_mr_impl(&self, pd: PdId, len: u64, access: Access) -> Result<MrInfo> {
        if len == 0 {
            return Err(FabricError::Invalid("reg_mr: length 0"));
        }
        if len > self.attr.max_mr_size {
            return Err(FabricError::Invalid("reg_mr: length above max_mr_size"));
        }
        if access.intersects(Access::REMOTE_WRITE | Access::REMOTE_ATOMIC)
            && !access.contains(Access::LOCAL_WRITE)
        {
            return Err(FabricError::Invalid(
                "reg_mr: REMOTE_WRITE or REMOTE_ATOMIC without LOCAL_WRITE",
            ));
        }
        let size = usize::try_from(len)
            .map_err(|_| FabricError::NoMemory("reg_mr: length does not fit in memory"))?;
        let mut s = self.lock();
        let obj = s.pds.get(&pd).ok_or(FabricError::NotFound("pd"))?;
        let mr = raw::Mr::register(&obj.pd, size, ibv_access(access)).map_err(|e| match e {
            nix::errno::Errno::ENOMEM => FabricError::NoMemory("reg_mr: out of memory"),
            e => os("ibv_reg_mr", e),
        })?;
        let id = MrId(s.alloc_id());
        let info = MrInfo {
            id,
            addr: mr.addr(),
            len,
            lkey: mr.lkey(),
            rkey: mr.rkey(),
            access,
        };
        s.mrs.insert(id, MrObj { mr, pd, len });
        Ok(info)
    }

    pub(super) fn dereg_mr_impl(&self, mr: MrId) -> Result<()> {
        let mut s = self.lock();
        let obj = s.mrs.get_mut(&mr).ok_or(FabricError::NotFound("mr"))?;
        obj.mr.destroy().map_err(|e| os("ibv_dereg_mr", e))?;
        s.mrs.remove(&mr);
        Ok(())
    }

    pub(super) fn mr_write_impl(&self, mr: MrId, offset: u64, data: &[u8]) -> Result<()> {
        let s = self.lock();
        let obj = s.mrs.get(&mr).ok_or(FabricError::NotFound("mr"))?;
        let off = in_bounds(obj.len, offset, data.len())?;
        obj.mr.write(off, data);
        Ok(())
    }

    pub(super) fn mr_read_impl(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> Result<()> {
        let s = self.lock();
        let obj = s.mrs.get(&mr).ok_or(FabricError::NotFound("mr"))?;
        let off = in_bounds(obj.len, offset, buf.len())?;
        obj.mr.read(off, buf);
        Ok(())
    }
}
