//! What the target says of itself: the constants every controller shares (vendor, model,
//! version, keep-alive granularity, queue limits, the discovery NQN), and the data
//! structures it serves to Identify and Get Log Page, built with the `harness::wire` types
//! a host parses them with.

use harness::wire::{
    FirmwareSlotLogRepr, IdentifyControllerRepr, IdentifyNamespaceRepr, LbaFormatRepr,
    NsDescriptorRepr, SmartLogRepr, WireError, NIDT_EUI64, NIDT_NGUID, NIDT_UUID,
};

use harness::api::NvmfCaps;

use super::config::SubsystemConfig;
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
/// Number of Power States Support (0's based): one power state, state 0 (Identify
/// Controller's NPSS byte is left 0).
pub const NPSS: u8 = 0;
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

/// A subsystem's maximum data transfer size, bytes: its `mdts` (default 1 MiB), served in
/// software above the device's `max_io_sz`. A device that cannot hand a command to
/// software on an offloaded queue (no `supports_non_offloaded_ops`) refuses what it does
/// not offload, so an offloaded subsystem on it advertises no more than `max_io_sz`
/// (rounded down to a power of two, at least 4 KiB).
pub(crate) fn mdts_bytes(s: &SubsystemConfig, caps: &NvmfCaps) -> u64 {
    if s.offload && !caps.supports_non_offloaded_ops {
        let floor = 1u64 << (63 - u64::from(caps.max_io_sz.max(4096)).leading_zeros());
        s.mdts.min(floor)
    } else {
        s.mdts
    }
}

/// Identify Controller (CNS 01h) of an I/O controller on `q`.
pub(crate) fn io_controller(q: &Queue) -> Result<Vec<u8>, WireError> {
    let sub = &q.sh.subs[q.sub];
    IdentifyControllerRepr {
        rab: 6,
        // MDTS in units of the 4 KiB minimum page size (CAP.MPSMIN 0); a power of two.
        mdts: (sub.mdts / 4096).trailing_zeros() as u8,
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
    let ids = n.ids.reported(&cfg.nqn, nsid);
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
            nguid: ids.nguid.unwrap_or_default(),
            eui64: ids.eui64.unwrap_or_default(),
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

/// Namespace Identification Descriptor list (CNS 03h): the EUI-64 when configured, the
/// NGUID and the UUID (`control/ns_ids.rs`); `None` for an nsid the subsystem does not
/// have.
pub(crate) fn ns_descriptors(q: &Queue, nsid: u32) -> Option<Result<Vec<u8>, WireError>> {
    let cfg = &q.sh.subs[q.sub].cfg;
    let n = cfg.namespaces.iter().find(|n| n.nsid == nsid)?;
    let ids = n.ids.reported(&cfg.nqn, nsid);
    let d = |nidt, nid: Option<Vec<u8>>| nid.map(|nid| NsDescriptorRepr { nidt, nid });
    let list: Vec<NsDescriptorRepr> = [
        d(NIDT_EUI64, ids.eui64.map(|e| e.to_vec())),
        d(NIDT_NGUID, ids.nguid.map(|n| n.to_vec())),
        d(NIDT_UUID, ids.uuid.map(|u| u.to_vec())),
    ]
    .into_iter()
    .flatten()
    .collect();
    Some(NsDescriptorRepr::emit_list(&list))
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
