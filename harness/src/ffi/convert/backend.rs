//! ABI 2 conversions: how a device reaches backends (`struct nvmf_backend_access`) and how
//! a controller's doorbells are rung (`struct nvmf_pci_doorbells`).

use super::super::abi::*;
use crate::backend::{BackendAccess, DoorbellMode, PciDoorbells, PciSpan, PrpWindow};
use crate::fabric::MrId;

/// The C form of a device's backend access.
pub fn backend_access_to_c(a: &BackendAccess) -> NvmfBackendAccess {
    let w = a.prp.unwrap_or(PrpWindow {
        bus: 0,
        va: 0,
        len: 0,
    });
    NvmfBackendAccess {
        doorbells: match a.doorbells {
            DoorbellMode::Call => NVMF_DOORBELLS_CALL,
            DoorbellMode::Memory => NVMF_DOORBELLS_MEMORY,
        },
        flags: if a.prp.is_some() { NVMF_PRP_WINDOW } else { 0 },
        prp_bus: w.bus,
        prp_va: w.va,
        prp_len: w.len,
    }
}

/// A device's backend access from C; the error names the field.
pub fn backend_access_from_c(c: &NvmfBackendAccess) -> Result<BackendAccess, &'static str> {
    let doorbells = match c.doorbells {
        NVMF_DOORBELLS_CALL => DoorbellMode::Call,
        NVMF_DOORBELLS_MEMORY => DoorbellMode::Memory,
        _ => return Err("nvmf_backend_access.doorbells"),
    };
    if c.flags & !NVMF_PRP_WINDOW != 0 {
        return Err("nvmf_backend_access.flags");
    }
    let prp = if c.flags & NVMF_PRP_WINDOW != 0 {
        let ok = c.prp_len > 0
            && c.prp_bus.checked_add(c.prp_len).is_some()
            && c.prp_va.checked_add(c.prp_len).is_some();
        if !ok {
            return Err("nvmf_backend_access.prp_len");
        }
        Some(PrpWindow {
            bus: c.prp_bus,
            va: c.prp_va,
            len: c.prp_len,
        })
    } else {
        None
    };
    Ok(BackendAccess { doorbells, prp })
}

/// The C form of a controller's doorbells.
pub fn pci_doorbells_to_c(d: &PciDoorbells) -> NvmfPciDoorbells {
    match d {
        PciDoorbells::Call => NvmfPciDoorbells::default(),
        PciDoorbells::Memory { regs } => NvmfPciDoorbells {
            mode: NVMF_DOORBELLS_MEMORY,
            reserved: 0,
            regs: NvmfPciSpan {
                mr: regs.mr.0,
                reserved: 0,
                offset: regs.offset,
                len: regs.len,
            },
        },
    }
}

/// A controller's doorbells from C; `None` for an unknown mode.
pub fn pci_doorbells_from_c(c: &NvmfPciDoorbells) -> Option<PciDoorbells> {
    match c.mode {
        NVMF_DOORBELLS_CALL => Some(PciDoorbells::Call),
        NVMF_DOORBELLS_MEMORY => Some(PciDoorbells::Memory {
            regs: PciSpan {
                mr: MrId(c.regs.mr),
                offset: c.regs.offset,
                len: c.regs.len,
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn access() -> impl Strategy<Value = BackendAccess> {
        let window = (any::<u32>(), any::<u32>(), 1..u32::MAX).prop_map(|(b, v, l)| PrpWindow {
            bus: u64::from(b) << 8,
            va: u64::from(v) << 8,
            len: u64::from(l),
        });
        (any::<bool>(), proptest::option::of(window)).prop_map(|(m, prp)| BackendAccess {
            doorbells: if m {
                DoorbellMode::Memory
            } else {
                DoorbellMode::Call
            },
            prp,
        })
    }

    proptest! {
        #[test]
        fn access_round_trips(a in access()) {
            prop_assert_eq!(backend_access_from_c(&backend_access_to_c(&a)), Ok(a));
        }

        #[test]
        fn doorbells_round_trip(mr in any::<u32>(), offset in any::<u64>(), len in any::<u64>()) {
            let d = PciDoorbells::Memory { regs: PciSpan { mr: MrId(mr), offset, len } };
            prop_assert_eq!(pci_doorbells_from_c(&pci_doorbells_to_c(&d)), Some(d));
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let mut c = backend_access_to_c(&BackendAccess::default());
        assert_eq!(
            pci_doorbells_from_c(&NvmfPciDoorbells::default()),
            Some(PciDoorbells::Call)
        );
        c.doorbells = 7;
        assert_eq!(
            backend_access_from_c(&c),
            Err("nvmf_backend_access.doorbells")
        );
        c.doorbells = NVMF_DOORBELLS_CALL;
        c.flags = 2;
        assert_eq!(backend_access_from_c(&c), Err("nvmf_backend_access.flags"));
        c.flags = NVMF_PRP_WINDOW;
        assert_eq!(
            backend_access_from_c(&c),
            Err("nvmf_backend_access.prp_len")
        );
        c.prp_len = 4096;
        c.prp_bus = u64::MAX;
        assert_eq!(
            backend_access_from_c(&c),
            Err("nvmf_backend_access.prp_len")
        );
        let bad = NvmfPciDoorbells {
            mode: 9,
            ..Default::default()
        };
        assert_eq!(pci_doorbells_from_c(&bad), None);
    }
}
