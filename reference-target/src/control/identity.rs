//! What the target says of itself: the constants every controller shares (vendor, model,
//! version, keep-alive granularity, queue limits, the discovery NQN), and the data
//! structures it serves to Identify and Get Log Page, built with the `harness::wire` types
//! a host parses them with.

use harness::wire::{
    FirmwareSlotLogRepr, IdentifyControllerRepr, IdentifyNamespaceRepr, LbaFormatRepr,
    NsDescriptorRepr, SmartLogRepr, WireError, NIDT_NGUID, NIDT_UUID,
};

use super::queue::Queue;

/// Vendor ID reported in Identify Controller (PCI-SIG's "no vendor" is not allowed; this
/// value is the project's placeholder).
pub const VID: u16 = 0x1de5;
/// Model number reported in Identify Controller.
pub const MODEL: &str = "nvmf-conform reference target";
/// Firmware revision reported in Identify Controller.
pub const FIRMWARE: &str = "0.1.0";
/// Version (VS property and Identify Controller VER): NVMe 1.3.
pub const VS: u32 = 0x0001_0300;
/// Keep Alive Support granularity (KAS), 100 ms units.
pub const KAS: u16 = 10;
/// Asynchronous Event Request Limit (0's based): at most this + 1 requests held at once.
pub const AERL: u8 = 3;
/// Highest I/O queue ID a controller offers (and grants by default).
pub const MAX_IO_QUEUES: u16 = 64;
/// Deepest admin queue (NVMe-oF RDMA: 32 entries).
pub const ADMIN_DEPTH_MAX: u32 = 32;
/// The well-known NQN of a discovery service (NVMe Base Specification, "NVMe Qualified
/// Names").
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// What every controller of the target shares: VID, SSVID, serial number `serial`,
/// model, firmware revision, CNTLID, version, AERL and KAS.
fn common(serial: String, cntlid: Option<u16>) -> IdentifyControllerRepr {
    IdentifyControllerRepr {
        vid: VID,
        ssvid: VID,
        sn: serial,
        mn: MODEL.into(),
        fr: FIRMWARE.into(),
        cntlid: cntlid.unwrap_or(0),
        ver: VS,
        aerl: AERL,
        kas: KAS,
        ..IdentifyControllerRepr::default()
    }
}

/// Identify Controller (CNS 01h) of an I/O controller on `q`.
pub(crate) fn io_controller(q: &Queue) -> Result<Vec<u8>, WireError> {
    let sub = &q.sh.subs[q.sub];
    let max_io = u64::from(sub.attrs.max_io_sz.max(4096));
    IdentifyControllerRepr {
        rab: 6,
        // MDTS from max_io_sz, in units of the 4 KiB minimum page size.
        mdts: (63 - (max_io / 4096).leading_zeros()) as u8,
        // CMIC: the subsystem may hold two or more controllers (one per host).
        cmic: 1 << 1,
        cntrltype: 1,
        // FRMW: one slot, slot 1 read-only.
        frmw: 0b11,
        sqes: 0x66,
        cqes: 0x44,
        maxcmd: sub.depth,
        nn: sub.cfg.namespaces.iter().map(|n| n.nsid).max().unwrap_or(0),
        // ONCS: Dataset Management, Write Zeroes.
        oncs: (1 << 2) | (1 << 3),
        // VWC present (Flush).
        vwc: 1,
        // SGLS: SGLs supported, keyed SGL data block, offset-based in-capsule data.
        sgls: 1 | (1 << 2) | (1 << 20),
        // The config holds NQNs to NQN_MAX_LEN: they fit.
        subnqn: sub.cfg.nqn.clone(),
        ioccsz: sub.attrs.ioccsz,
        iorcsz: 1,
        icdoff: sub.attrs.icdoff,
        msdbd: 1,
        ..common(format!("NVMFCONFORM{:04}", q.sub), q.cntlid)
    }
    .emit()
}

/// Identify Controller (CNS 01h) of the discovery controller on `q`.
pub(crate) fn discovery_controller(q: &Queue) -> Result<Vec<u8>, WireError> {
    IdentifyControllerRepr {
        cntrltype: 2,
        // LPA: extended data for Get Log Page.
        lpa: 1 << 2,
        maxcmd: ADMIN_DEPTH_MAX as u16,
        // SGLS: SGLs supported, keyed SGL data block.
        sgls: 1 | (1 << 2),
        subnqn: DISCOVERY_NQN.into(),
        ..common(format!("NVMFCONFORMDISC{:04}", q.port), q.cntlid)
    }
    .emit()
}

/// Identify Namespace (CNS 00h); `None` for an nsid the subsystem does not have.
pub(crate) fn namespace(q: &Queue, nsid: u32) -> Option<Result<Vec<u8>, WireError>> {
    let cfg = &q.sh.subs[q.sub].cfg;
    let n = cfg.namespaces.iter().find(|n| n.nsid == nsid)?;
    let blocks = n.blocks();
    let meta = n.lba_format.meta;
    let extended = u8::from(meta > 0);
    Some(
        IdentifyNamespaceRepr {
            nsze: blocks,
            ncap: blocks,
            nuse: blocks,
            // FLBAS: format 0, metadata extended (at the end of each block).
            flbas: extended << 4,
            // MC: extended LBA.
            mc: extended,
            // NMIC: may be attached to two or more controllers (every host's).
            nmic: 1,
            nguid: namespace_ids(&cfg.nqn, nsid).0,
            lbaf: vec![LbaFormatRepr {
                ms: meta as u16,
                lbads: n.lba_format.data.trailing_zeros() as u8,
                rp: 0,
            }],
            ..IdentifyNamespaceRepr::default()
        }
        .emit(),
    )
}

/// Namespace Identification Descriptor list (CNS 03h): NGUID, UUID; `None` for an nsid
/// the subsystem does not have.
pub(crate) fn ns_descriptors(q: &Queue, nsid: u32) -> Option<Result<Vec<u8>, WireError>> {
    let cfg = &q.sh.subs[q.sub].cfg;
    cfg.namespaces.iter().find(|n| n.nsid == nsid)?;
    let (nguid, uuid) = namespace_ids(&cfg.nqn, nsid);
    Some(NsDescriptorRepr::emit_list(&[
        NsDescriptorRepr {
            nidt: NIDT_NGUID,
            nid: nguid.to_vec(),
        },
        NsDescriptorRepr {
            nidt: NIDT_UUID,
            nid: uuid.to_vec(),
        },
    ]))
}

/// The NGUID and UUID of namespace `nsid` of subsystem `nqn`: FNV-1a of both, so they are
/// the same on every run and differ between namespaces and subsystems. The UUID is a
/// version 8 (custom) UUID.
pub(crate) fn namespace_ids(nqn: &str, nsid: u32) -> ([u8; 16], [u8; 16]) {
    let fnv = |basis: u64| {
        let mut h = basis;
        for b in nqn.bytes().chain(nsid.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let mut nguid = [0u8; 16];
    nguid[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    nguid[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&fnv(0x8422_2325_cbf2_9ce4).to_be_bytes());
    uuid[8..].copy_from_slice(&fnv(0x07bb_0142_6c62_272e).to_be_bytes());
    uuid[6] = (uuid[6] & 0x0f) | 0x80;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    (nguid, uuid)
}

/// SMART / Health Information (02h), 512 bytes: no warnings, 25 °C, spare 100 % (threshold
/// 10 %), nothing used up.
pub(crate) fn smart_log() -> Vec<u8> {
    SmartLogRepr {
        temperature: 298,
        avail_spare: 100,
        spare_thresh: 10,
        ..SmartLogRepr::default()
    }
    .emit()
}

/// Firmware Slot Information (03h), 512 bytes: slot 1 active, holding [`FIRMWARE`].
pub(crate) fn firmware_slot_log() -> Result<Vec<u8>, WireError> {
    FirmwareSlotLogRepr {
        afi: 1,
        frs: std::array::from_fn(|i| {
            if i == 0 {
                FIRMWARE.into()
            } else {
                String::new()
            }
        }),
    }
    .emit()
}
