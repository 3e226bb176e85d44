//! Executes one NVMe I/O command against a backend controller's namespaces.
//!
//! The data buffer of a command is reached through [`Dma`]: one contiguous buffer of
//! `NLB × lba_data_size` bytes (extended LBAs: each block's data then its metadata), or of
//! `16 × ranges` bytes for Dataset Management. An access the buffer refuses is a DMA fault
//! and completes with Data Transfer Error.

use std::collections::BTreeMap;

use crate::wire::{DsmRangeRepr, Fuse, Psdt, SqeCommand, SqeRepr, Status, DSM_RANGE_LEN};

use super::namespace::Namespace;

/// Flush with this nsid flushes every namespace.
pub const NSID_BROADCAST: u32 = u32::MAX;

/// A refused DMA access (the address is not mapped for the controller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaFault;

/// The data buffer of one command, as the controller's DMA engine sees it.
pub trait Dma {
    /// Reads host memory at `offset` within the buffer (the data of a write).
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DmaFault>;
    /// Writes host memory at `offset` within the buffer (the data of a read).
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DmaFault>;
}

/// A buffer that faults on every access (an injected DMA fault).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unmapped;

impl Dma for Unmapped {
    fn read(&mut self, _: u64, _: &mut [u8]) -> Result<(), DmaFault> {
        Err(DmaFault)
    }

    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), DmaFault> {
        Err(DmaFault)
    }
}

/// The data buffer address of a backend SQE: PRP1 (DPTR bytes 24..31). Backend SQEs use
/// PRPs (PSDT 00b), as a host driver writes them for a PCIe controller; the emulation
/// takes PRP1 as the start of one contiguous buffer and ignores PRP2. `None` when the SQE
/// carries an SGL.
pub fn prp1(sqe: &SqeRepr) -> Option<u64> {
    match sqe.psdt {
        Psdt::Prp => sqe.dptr.prp_entries().map(|(prp1, _)| prp1),
        _ => None,
    }
}

/// An SQE for a backend controller: PRP data pointer at `addr` (see [`prp1`]).
pub fn backend_sqe(cid: u16, nsid: u32, command: SqeCommand, addr: u64) -> SqeRepr {
    SqeRepr::with_prps(cid, nsid, command, addr, 0)
}

/// Whether a command moves data through its buffer (a read or write of a known namespace,
/// or a Dataset Management, whose ranges are in the buffer): a DMA fault is spent only on
/// such a command.
pub fn moves_data(namespaces: &BTreeMap<u32, Namespace>, sqe: &SqeRepr) -> bool {
    match sqe.command {
        SqeCommand::Read(_) | SqeCommand::Write(_) => namespaces.contains_key(&sqe.nsid),
        SqeCommand::DatasetManagement(_) => true,
        _ => false,
    }
}

/// Executes `sqe` against `namespaces`, moving data through `dma`; returns the status.
///
/// Order of checks: opcode (Invalid Command Opcode), fields (fused operations, SGL data
/// pointers, protection information: Invalid Field), namespace (Invalid Namespace or
/// Format), LBA range (LBA Out of Range), media errors (Unrecovered Read Error), data
/// transfer (Data Transfer Error). Errors a retry cannot cure (opcode, field, namespace,
/// LBA range) carry DNR, as an SSD sets it, so that a host sees the same answer whether
/// the command was offloaded or served by software; media and transfer errors do not.
pub fn execute(
    namespaces: &mut BTreeMap<u32, Namespace>,
    sqe: &SqeRepr,
    dma: &mut dyn Dma,
) -> Status {
    if let SqeCommand::Other { .. } = sqe.command {
        return Status::INVALID_OPCODE.with_dnr();
    }
    if sqe.fuse != Fuse::Normal || prp1(sqe).is_none() {
        return Status::INVALID_FIELD.with_dnr();
    }
    if matches!(sqe.command, SqeCommand::Flush) && sqe.nsid == NSID_BROADCAST {
        for ns in namespaces.values() {
            if ns.flush().is_err() {
                return Status::INTERNAL_ERROR;
            }
        }
        return Status::SUCCESS;
    }
    let Some(ns) = namespaces.get_mut(&sqe.nsid) else {
        return Status::INVALID_NAMESPACE.with_dnr();
    };
    match sqe.command {
        SqeCommand::Read(rw) => {
            let n = u64::from(rw.blocks());
            if let Some(refused) = refuse_blocks(ns, rw.prinfo, rw.slba, n) {
                return refused;
            }
            if ns.has_media_error(rw.slba, n) {
                return Status::UNRECOVERED_READ_ERROR;
            }
            let Ok(data) = ns.read_blocks(rw.slba, n) else {
                return Status::INTERNAL_ERROR;
            };
            match dma.write(0, &data) {
                Ok(()) => Status::SUCCESS,
                Err(DmaFault) => Status::DATA_TRANSFER_ERROR,
            }
        }
        SqeCommand::Write(rw) => {
            let n = u64::from(rw.blocks());
            if let Some(refused) = refuse_blocks(ns, rw.prinfo, rw.slba, n) {
                return refused;
            }
            let mut data = vec![0u8; (n * u64::from(ns.lba_data_size())) as usize];
            if dma.read(0, &mut data).is_err() {
                return Status::DATA_TRANSFER_ERROR;
            }
            match ns.write_blocks(rw.slba, &data) {
                Ok(()) if rw.fua => ns
                    .flush()
                    .map_or(Status::INTERNAL_ERROR, |_| Status::SUCCESS),
                Ok(()) => Status::SUCCESS,
                Err(_) => Status::INTERNAL_ERROR,
            }
        }
        SqeCommand::Flush => ns
            .flush()
            .map_or(Status::INTERNAL_ERROR, |_| Status::SUCCESS),
        SqeCommand::WriteZeroes(wz) => {
            let n = u64::from(wz.nlb) + 1;
            if let Some(refused) = refuse_blocks(ns, wz.prinfo, wz.slba, n) {
                return refused;
            }
            // Deallocate or not, the blocks read back as zeroes afterwards.
            ns.zero_blocks(wz.slba, n)
                .map_or(Status::INTERNAL_ERROR, |_| Status::SUCCESS)
        }
        SqeCommand::DatasetManagement(d) => {
            let mut raw = vec![0u8; d.ranges() * DSM_RANGE_LEN];
            if dma.read(0, &mut raw).is_err() {
                return Status::DATA_TRANSFER_ERROR;
            }
            let Ok(descriptors) = DsmRangeRepr::parse_list(&raw, d.ranges()) else {
                return Status::INTERNAL_ERROR;
            };
            let ranges: Vec<(u64, u64)> = descriptors
                .iter()
                .map(|r| (r.slba, u64::from(r.nlb)))
                .collect();
            if ranges.iter().any(|&(slba, n)| !ns.in_range(slba, n)) {
                return Status::LBA_OUT_OF_RANGE.with_dnr();
            }
            if d.ad {
                for (slba, n) in ranges {
                    if ns.zero_blocks(slba, n).is_err() {
                        return Status::INTERNAL_ERROR;
                    }
                }
            }
            Status::SUCCESS
        }
        SqeCommand::Other { .. } => Status::INVALID_OPCODE.with_dnr(),
    }
}

/// The answer to a command on `n` blocks from `slba` with protection information field
/// `prinfo`, if it is refused: Invalid Field for protection information (not supported),
/// else LBA Out of Range for blocks past the namespace's end.
fn refuse_blocks(ns: &Namespace, prinfo: u8, slba: u64, n: u64) -> Option<Status> {
    if prinfo != 0 {
        Some(Status::INVALID_FIELD.with_dnr())
    } else if !ns.in_range(slba, n) {
        Some(Status::LBA_OUT_OF_RANGE.with_dnr())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::namespace::LbaFormat;
    use super::*;
    use crate::wire::{DsmCommand, RwCommand, WriteZeroesCommand};

    fn dsm_ranges(ranges: &[(u64, u32)]) -> Vec<u8> {
        let r: Vec<DsmRangeRepr> = ranges
            .iter()
            .map(|&(slba, n)| DsmRangeRepr::new(slba, n))
            .collect();
        DsmRangeRepr::emit_list(&r)
    }

    /// A plain in-memory buffer; accesses beyond its end fault.
    impl Dma for Vec<u8> {
        fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
            let o = usize::try_from(offset).map_err(|_| DmaFault)?;
            let src = self.get(o..o + buf.len()).ok_or(DmaFault)?;
            buf.copy_from_slice(src);
            Ok(())
        }

        fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DmaFault> {
            let o = usize::try_from(offset).map_err(|_| DmaFault)?;
            let dst = self.get_mut(o..o + data.len()).ok_or(DmaFault)?;
            dst.copy_from_slice(data);
            Ok(())
        }
    }

    fn nss(format: LbaFormat) -> BTreeMap<u32, Namespace> {
        let mut m = BTreeMap::new();
        m.insert(1, Namespace::ram(1, format, 32).unwrap());
        m
    }

    fn sqe(nsid: u32, c: SqeCommand) -> SqeRepr {
        backend_sqe(7, nsid, c, 0x1000)
    }

    #[test]
    fn write_read_every_format() {
        for f in LbaFormat::SUPPORTED {
            let mut m = nss(f);
            let len = 3 * f.lba_data_size() as usize;
            let mut data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let w = sqe(1, SqeCommand::Write(RwCommand::new(5, 3)));
            assert_eq!(execute(&mut m, &w, &mut data), Status::SUCCESS);
            let mut back = vec![0u8; len];
            let r = sqe(1, SqeCommand::Read(RwCommand::new(5, 3)));
            assert_eq!(execute(&mut m, &r, &mut back), Status::SUCCESS);
            assert_eq!(back, data, "format {f}");
        }
    }

    #[test]
    fn errors() {
        let mut m = nss(LbaFormat::L512);
        let mut buf = vec![0u8; 512 * 4];
        // Refused before any data moves, with DNR: no retry can cure them.
        let mut fused = sqe(1, SqeCommand::Flush);
        fused.fuse = Fuse::First;
        let sgl = SqeRepr::new(
            1,
            1,
            SqeCommand::Read(RwCommand::new(0, 1)),
            crate::wire::SglRepr::keyed(0x1000, 512, 1),
        );
        let mut pi = RwCommand::new(0, 1);
        pi.prinfo = 0x8;
        let other = SqeCommand::Other {
            opcode: 0x05,
            cdw: [0; 6],
        };
        let refused = [
            (
                sqe(1, SqeCommand::Read(RwCommand::new(30, 4))),
                Status::LBA_OUT_OF_RANGE,
                "blocks past the end",
            ),
            (
                sqe(2, SqeCommand::Read(RwCommand::new(0, 1))),
                Status::INVALID_NAMESPACE,
                "no such namespace",
            ),
            (sqe(1, other), Status::INVALID_OPCODE, "unknown opcode"),
            (fused, Status::INVALID_FIELD, "fused"),
            (sgl, Status::INVALID_FIELD, "backend SQEs carry PRPs"),
            (
                sqe(1, SqeCommand::Write(pi)),
                Status::INVALID_FIELD,
                "protection information",
            ),
        ];
        for (cmd, status, what) in refused {
            assert_eq!(execute(&mut m, &cmd, &mut buf), status.with_dnr(), "{what}");
        }
        let r = sqe(1, SqeCommand::Read(RwCommand::new(0, 1)));
        assert_eq!(
            execute(&mut m, &r, &mut Unmapped),
            Status::DATA_TRANSFER_ERROR
        );
        let mut short = vec![0u8; 100];
        assert_eq!(execute(&mut m, &r, &mut short), Status::DATA_TRANSFER_ERROR);
        m.get_mut(&1).unwrap().add_media_error(0..1);
        assert_eq!(
            execute(&mut m, &r, &mut buf),
            Status::UNRECOVERED_READ_ERROR
        );
        assert_eq!(
            execute(&mut m, &sqe(1, SqeCommand::Flush), &mut buf),
            Status::SUCCESS
        );
        assert_eq!(
            execute(&mut m, &sqe(NSID_BROADCAST, SqeCommand::Flush), &mut buf),
            Status::SUCCESS
        );
    }

    #[test]
    fn write_zeroes_and_deallocate() {
        let mut m = nss(LbaFormat::L512_8);
        let mut ones = vec![0xffu8; 520 * 8];
        let w = sqe(1, SqeCommand::Write(RwCommand::new(0, 8)));
        assert_eq!(execute(&mut m, &w, &mut ones), Status::SUCCESS);
        let wz = WriteZeroesCommand {
            slba: 1,
            nlb: 1,
            deac: true,
            ..Default::default()
        };
        let mut none = Vec::new();
        assert_eq!(
            execute(&mut m, &sqe(1, SqeCommand::WriteZeroes(wz)), &mut none),
            Status::SUCCESS
        );
        let mut ranges = dsm_ranges(&[(5, 2)]);
        let d = DsmCommand {
            nr: 0,
            ad: true,
            ..Default::default()
        };
        assert_eq!(
            execute(
                &mut m,
                &sqe(1, SqeCommand::DatasetManagement(d)),
                &mut ranges
            ),
            Status::SUCCESS
        );
        let data = m.get(&1).unwrap().read_blocks(0, 8).unwrap();
        for (i, b) in data.chunks(520).enumerate() {
            let zero = matches!(i, 1 | 2 | 5 | 6);
            assert_eq!(b.iter().all(|&x| x == 0), zero, "block {i}");
            assert_eq!(b.iter().all(|&x| x == 0xff), !zero, "block {i}");
        }
        let mut bad = dsm_ranges(&[(31, 2)]);
        assert_eq!(
            execute(&mut m, &sqe(1, SqeCommand::DatasetManagement(d)), &mut bad),
            Status::LBA_OUT_OF_RANGE.with_dnr()
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write { slba: u64, n: u32, seed: u8 },
        Zero { slba: u64, n: u16 },
        Dealloc { slba: u64, n: u32 },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u64..40, 1u32..8, any::<u8>()).prop_map(|(slba, n, seed)| Op::Write {
                slba,
                n,
                seed
            }),
            (0u64..40, 0u16..8).prop_map(|(slba, n)| Op::Zero { slba, n }),
            (0u64..40, 0u32..8).prop_map(|(slba, n)| Op::Dealloc { slba, n }),
        ]
    }

    proptest::proptest! {
        /// Any sequence of writes, write zeroes and deallocates matches a byte-array
        /// model, out-of-range commands included (they change nothing).
        #[test]
        fn matches_a_model(ops in proptest::collection::vec(op(), 1..24), fi in 0usize..5) {
            let f = LbaFormat::SUPPORTED[fi];
            let bs = f.lba_data_size() as usize;
            let blocks = 32u64;
            let mut m = BTreeMap::new();
            m.insert(1, Namespace::ram(1, f, blocks).unwrap());
            let mut model = vec![0u8; blocks as usize * bs];
            for o in ops {
                let (range, status) = match o {
                    Op::Write { slba, n, seed } => {
                        let mut data: Vec<u8> = (0..n as usize * bs)
                            .map(|i| (i as u8).wrapping_add(seed))
                            .collect();
                        let st = execute(
                            &mut m,
                            &sqe(1, SqeCommand::Write(RwCommand::new(slba, n))),
                            &mut data,
                        );
                        if st.is_success() {
                            let o = slba as usize * bs;
                            model[o..o + data.len()].copy_from_slice(&data);
                        }
                        ((slba, u64::from(n)), st)
                    }
                    Op::Zero { slba, n } => {
                        let wz = WriteZeroesCommand { slba, nlb: n, ..Default::default() };
                        let st = execute(&mut m, &sqe(1, SqeCommand::WriteZeroes(wz)), &mut Unmapped);
                        if st.is_success() {
                            let o = slba as usize * bs;
                            model[o..o + (usize::from(n) + 1) * bs].fill(0);
                        }
                        ((slba, u64::from(n) + 1), st)
                    }
                    Op::Dealloc { slba, n } => {
                        let mut r = dsm_ranges(&[(slba, n)]);
                        let d = DsmCommand { nr: 0, ad: true, ..Default::default() };
                        let st = execute(&mut m, &sqe(1, SqeCommand::DatasetManagement(d)), &mut r);
                        if st.is_success() {
                            let o = slba as usize * bs;
                            model[o..o + n as usize * bs].fill(0);
                        }
                        ((slba, u64::from(n)), st)
                    }
                };
                let fits = range.0 + range.1 <= blocks;
                proptest::prop_assert_eq!(
                    status,
                    if fits { Status::SUCCESS } else { Status::LBA_OUT_OF_RANGE.with_dnr() }
                );
            }
            let mut back = vec![0u8; model.len()];
            let r = sqe(1, SqeCommand::Read(RwCommand::new(0, blocks as u32)));
            proptest::prop_assert_eq!(execute(&mut m, &r, &mut back), Status::SUCCESS);
            proptest::prop_assert!(back == model);
        }
    }

    #[test]
    fn prp_round_trip() {
        let s = backend_sqe(1, 1, SqeCommand::Flush, 0xdead_beef_0000);
        assert_eq!(prp1(&s), Some(0xdead_beef_0000));
        let bytes = s.to_bytes().unwrap();
        let back = SqeRepr::parse_bytes(&bytes).unwrap();
        assert_eq!(prp1(&back), Some(0xdead_beef_0000));
    }
}
