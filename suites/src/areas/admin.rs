//! Area `admin`: the admin commands the reference control plane answers on the device's
//! admin queues (never offloaded), field by field, as a Linux host reads them while it
//! brings a controller up: Identify (controller, namespace, active namespace list,
//! namespace identification descriptors), Property Get / Set of CAP, VS, CC and CSTS,
//! Get / Set Features, Get Log Page, Asynchronous Event Requests, and the refusals of what
//! the target does not implement. `docs/target.md` lists what the target answers; these
//! cases hold it to that.
//!
//! These check the control plane, not the device's offload API: on a vendor's device they
//! certify the reference target running over it.

use harness::api::NvmfCaps;
use harness::backend::emulated::LbaFormat;
use harness::initiator::admin::LINUX_CC;
use harness::initiator::{misbehave, Command, Completion, Controller, DataMode, Transfer};
use harness::wire::{
    fabrics_field, parse_nsid_list, AdminOpcode, CapRepr, CcRepr, CstsRepr, FabricsRepr,
    FirmwareSlotLogRepr, IdentifyControllerRepr, IdentifyNamespaceRepr, NsDescriptorRepr,
    PropertyGetRepr, PropertySetRepr, PropertySize, Psdt, SglRepr, SmartLogRepr, SqeCommand,
    Status, IDENTIFY_LEN, LID_ERROR, LID_FIRMWARE_SLOT, LID_SMART, LOG_512, NIDT_NGUID, NIDT_UUID,
    PROP_CAP, PROP_CC, PROP_CSTS, PROP_VS, SHN_ABRUPT, SHN_NORMAL, SHST_COMPLETE,
};
use reference_target::control::identity::DISCOVERY_NQN;
use reference_target::control::identity::MAX_IO_QUEUES;
use reference_target::control::identity::{AERL, FIRMWARE, KAS, MODEL, VID, VS};

use crate::areas::datapath::settle;
use crate::framework::target::{
    advertised_mdts, expect_status, host_config, one_subsystem_formats, one_subsystem_with,
    TargetRig, BOUND, NS_BLOCKS, PORT_A, SUB_A,
};
use crate::framework::{wait, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const AREA: &str = "admin";
const CP: &[Need] = &[Need::ControlPlane];
/// The namespaces of the subsystem these cases connect to: a gap (3, 4) and a last nsid
/// that is not the count.
const NSIDS: [u32; 3] = [1, 2, 5];
/// KATO the cases' hosts connect with (`HostConfig`'s default).
pub(crate) const KATO_MS: u64 = 5000;

/// The target's queue depth for the cases' subsystem (`queue_depth = 64` clamped to the
/// device's backend queue depths, as `docs/target.md` says): CAP.MQES + 1 and MAXCMD.
fn depth(caps: &NvmfCaps) -> u16 {
    64u32
        .clamp(
            caps.min_nvme_queue_depth.max(2),
            caps.max_nvme_queue_depth.max(2),
        )
        .min(32768) as u16
}

/// IOCCSZ the target gives its NVMe-oF SRQ: room for 4096 bytes of in-capsule data,
/// within the caps.
fn ioccsz(caps: &NvmfCaps) -> u32 {
    (4 + 4096 / 16)
        .min(caps.max_ioccsz)
        .max(caps.min_ioccsz)
        .max(4)
}

/// The data buffer of each of the target's queues: the subsystem's MDTS (offloaded, not
/// configured).
fn data_buffer(caps: &NvmfCaps) -> u32 {
    advertised_mdts(caps, true, None) as u32
}

/// A target with [`NSIDS`] and an enabled controller of it.
/// [`NSIDS`] with LBA formats the device supports: nsid 1 in [`Dut::ns_format`], nsid 2 in
/// one with metadata and nsid 5 in one of another data size, when the device has them.
fn namespace_formats(d: &Dut) -> Vec<(u32, LbaFormat)> {
    let base = d.ns_format();
    let supported: Vec<LbaFormat> = LbaFormat::SUPPORTED
        .into_iter()
        .filter(|f| d.caps.supports_lba_data_size(f.lba_data_size()))
        .collect();
    let meta = supported
        .iter()
        .copied()
        .find(|f| f.meta > 0)
        .unwrap_or(base);
    let other = supported
        .iter()
        .copied()
        .find(|f| f.data != base.data)
        .unwrap_or(base);
    vec![(NSIDS[0], base), (NSIDS[1], meta), (NSIDS[2], other)]
}

pub(crate) async fn enabled(d: &Dut) -> Result<(TargetRig, Controller), Failure> {
    let t = d
        .target(&one_subsystem_with(&NSIDS, d.ns_format(), true))
        .await?;
    let c = t.controller(PORT_A, host_config(SUB_A)).await?;
    Ok((t, c))
}

/// Runs an admin command; returns its completion whatever the status.
async fn admin(
    c: &mut Controller,
    opcode: AdminOpcode,
    nsid: u32,
    cdw: [u32; 6],
    transfer: Transfer<'_>,
) -> Result<Completion, Failure> {
    let cmd = Command::Nvme {
        nsid,
        command: SqeCommand::Other {
            opcode: opcode.into(),
            cdw,
        },
    };
    Ok(c.admin().execute(&cmd, transfer, DataMode::Keyed).await?)
}

/// Fails unless the completion is a plain success (no DNR, no More).
pub(crate) fn expect_ok(c: &Completion, what: &str) -> Result<(), Failure> {
    check_eq!(c.cqe.status, Status::SUCCESS, "{what}: status");
    Ok(())
}

/// Identify with `cns` for `nsid`, 4096 bytes expected.
pub(crate) async fn identify(c: &mut Controller, cns: u32, nsid: u32) -> Result<Vec<u8>, Failure> {
    let r = admin(
        c,
        AdminOpcode::Identify,
        nsid,
        [cns, 0, 0, 0, 0, 0],
        Transfer::FromTarget(4096),
    )
    .await?;
    expect_ok(&r, &format!("Identify CNS {cns:02x}h nsid {nsid}"))?;
    check_eq!(r.data.len(), IDENTIFY_LEN, "Identify data length");
    Ok(r.data)
}

/// Get Log Page `lid`, `len` bytes from `lpo` (NUMD = len / 4 - 1).
async fn log_page(c: &mut Controller, lid: u8, lpo: u64, len: u32) -> Result<Completion, Failure> {
    let numd = len / 4 - 1;
    let cdw = [
        u32::from(lid) | (numd & 0xffff) << 16,
        numd >> 16,
        lpo as u32,
        (lpo >> 32) as u32,
        0,
        0,
    ];
    admin(
        c,
        AdminOpcode::GetLogPage,
        0,
        cdw,
        Transfer::FromTarget(len),
    )
    .await
}

/// Get (`set` false) or Set Features `fid` with CDW11 `cdw11`.
pub(crate) async fn features(
    c: &mut Controller,
    set: bool,
    fid: u32,
    cdw11: u32,
) -> Result<Completion, Failure> {
    let op = if set {
        AdminOpcode::SetFeatures
    } else {
        AdminOpcode::GetFeatures
    };
    admin(c, op, 0, [fid, cdw11, 0, 0, 0, 0], Transfer::None).await
}

/// Property Get / Set with any size and offset; the completion whatever its status.
async fn property(
    c: &mut Controller,
    set: Option<u64>,
    offset: u32,
    size: PropertySize,
) -> Result<Completion, Failure> {
    let sgl1 = SglRepr::keyed(0, 0, 0);
    let psdt = Psdt::SglMptrContiguous;
    let f = match set {
        None => FabricsRepr::PropertyGet(PropertyGetRepr {
            psdt,
            cid: 0,
            sgl1,
            size,
            offset,
        }),
        Some(value) => FabricsRepr::PropertySet(PropertySetRepr {
            psdt,
            cid: 0,
            sgl1,
            size,
            offset,
            value,
        }),
    };
    Ok(c.admin()
        .execute(&Command::Fabrics(f), Transfer::None, DataMode::Keyed)
        .await?)
}

/// Property Get that must succeed; its value (DW0 for 4 bytes, the whole result for 8).
async fn get(c: &mut Controller, offset: u32, size: PropertySize) -> Result<u64, Failure> {
    let r = property(c, None, offset, size).await?;
    expect_ok(&r, &format!("Property Get of {offset:#x}"))?;
    Ok(match size {
        PropertySize::Four => {
            check_eq!(
                r.cqe.result >> 32,
                0,
                "DW1 of a 4-byte Property Get of {offset:#x}"
            );
            u64::from(r.cqe.dw0())
        }
        PropertySize::Eight => r.cqe.result,
    })
}

/// Property Set of CC that must succeed.
async fn set_cc(c: &mut Controller, cc: u32) -> Result<(), Failure> {
    let r = property(c, Some(u64::from(cc)), PROP_CC, PropertySize::Four).await?;
    expect_ok(&r, &format!("Property Set CC {cc:#x}"))
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(AREA, "identify-controller", "ADM-IDENTIFY-CTRL", "Identify Controller (CNS 01h) of an I/O controller reports, field by field, the target's identity, the connected CNTLID, the queue depth as MAXCMD, the highest nsid as NN, the SRQ's capsule layout (IOCCSZ, IORCSZ, ICDOFF), MDTS (1 MiB by default, or max_io_sz when the device cannot hand a larger command to software) and the subsystem NQN", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            let raw = identify(&mut c, 1, 0).await?;
            let id = IdentifyControllerRepr::parse(&raw).map_err(Failure::from)?;
            let want = IdentifyControllerRepr {
                vid: VID,
                ssvid: VID,
                sn: "NVMFCONFORM0000".into(),
                mn: MODEL.into(),
                fr: FIRMWARE.into(),
                rab: 6,
                cmic: 1 << 1,
                mdts: (data_buffer(&d.caps) / 4096).trailing_zeros() as u8,
                cntlid: c.cntlid(),
                ver: VS,
                cntrltype: 1,
                aerl: AERL,
                frmw: 0b11,
                lpa: 0,
                kas: KAS,
                sqes: 0x66,
                cqes: 0x44,
                maxcmd: depth(&d.caps),
                nn: 5,
                oncs: (1 << 2) | (1 << 3),
                vwc: 1,
                sgls: 1 | (1 << 2) | (1 << 20),
                subnqn: SUB_A.into(),
                ioccsz: ioccsz(&d.caps),
                iorcsz: 1,
                icdoff: 0,
                fcatt: 0,
                msdbd: 1,
            };
            check_eq!(id, want, "Identify Controller");
            check_eq!(IdentifyControllerRepr::parse(&want.emit().map_err(Failure::from)?).map_err(Failure::from)?, id, "Identify Controller re-emitted");
            // The padding of the text fields is spaces, of SUBNQN NULs.
            check_eq!(raw[4 + 15..24].to_vec(), vec![b' '; 5], "SN padding");
            check!(raw[768 + SUB_A.len()..1024].iter().all(|&b| b == 0), "SUBNQN is not NUL padded");
            Ok(())
        }),
        Case::new(AREA, "identify-namespace", "ADM-IDENTIFY-NS", "Identify Namespace (CNS 00h) reports each namespace's size, capacity and use in blocks, one LBA format with the namespace's data and metadata sizes (FLBAS, MC; namespaces in as many of the device's LBA formats as it has, up to three, one with metadata when it has one), NMIC and an NGUID; an nsid the subsystem lacks is Invalid Namespace (0/0Bh, DNR)", CP, |d: Dut| async move {
            let formats = namespace_formats(&d);
            let t = d.target(&one_subsystem_formats(&formats)).await?;
            let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
            for (nsid, f) in formats {
                let raw = identify(&mut c, 0, nsid).await?;
                let ns = IdentifyNamespaceRepr::parse(&raw).map_err(Failure::from)?;
                check_eq!((ns.nsze, ns.ncap, ns.nuse), (NS_BLOCKS, NS_BLOCKS, NS_BLOCKS), "nsid {nsid}: (NSZE, NCAP, NUSE)");
                check_eq!(ns.lbaf.len(), 1, "nsid {nsid}: LBA formats (NLBAF + 1)");
                let meta = f.meta > 0;
                check_eq!((ns.flbas, ns.mc), (if meta { 0x10 } else { 0 }, u8::from(meta)), "nsid {nsid}: (FLBAS, MC)");
                check_eq!(ns.lbaf[0].ms, f.meta as u16, "nsid {nsid}: LBA format 0 MS");
                check_eq!(1u32 << ns.lbaf[0].lbads, f.data, "nsid {nsid}: LBA format 0 data size (2^LBADS)");
                check_eq!((ns.nmic, ns.nsfeat, ns.eui64), (1, 0, [0; 8]), "nsid {nsid}: (NMIC, NSFEAT, EUI64)");
                check!(ns.nguid != [0; 16], "nsid {nsid}: NGUID is zero");
            }
            for nsid in [3, 6, 0xffff_fffe] {
                let r = admin(&mut c, AdminOpcode::Identify, nsid, [0; 6], Transfer::FromTarget(4096)).await?;
                expect_status(&r.cqe, Status::INVALID_NAMESPACE, &format!("Identify Namespace of nsid {nsid:#x}, which does not exist"))?;
            }
            Ok(())
        }),
        Case::new(AREA, "active-namespace-list", "ADM-NS-LIST", "the Active Namespace ID list (CNS 02h) lists the subsystem's nsids greater than the one given, ascending, ended by zeroes; FFFFFFFEh and FFFFFFFFh are Invalid Namespace (0/0Bh, DNR)", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            for (from, want) in [(0, vec![1, 2, 5]), (1, vec![2, 5]), (2, vec![5]), (4, vec![5]), (5, vec![]), (0xffff_fffd, vec![])] {
                let raw = identify(&mut c, 2, from).await?;
                check_eq!(parse_nsid_list(&raw).map_err(Failure::from)?, want, "active namespaces above {from:#x}");
                check!(raw[4 * want.len()..].iter().all(|&b| b == 0), "the list above {from:#x} is not zero past its end");
            }
            for nsid in [0xffff_fffe, 0xffff_ffff] {
                let r = admin(&mut c, AdminOpcode::Identify, nsid, [2, 0, 0, 0, 0, 0], Transfer::FromTarget(4096)).await?;
                expect_status(&r.cqe, Status::INVALID_NAMESPACE, &format!("active namespace list above {nsid:#x}"))?;
            }
            Ok(())
        }),
        Case::new(AREA, "namespace-identifiers", "ADM-NS-IDS", "the Namespace Identification Descriptors (CNS 03h) of each namespace are an NGUID equal to Identify Namespace's and an RFC 9562 UUID (version 8), the same on every read and different for every namespace; an nsid the subsystem lacks is Invalid Namespace (0/0Bh, DNR)", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            let mut seen: Vec<Vec<u8>> = Vec::new();
            for nsid in NSIDS {
                let raw = identify(&mut c, 3, nsid).await?;
                let list = NsDescriptorRepr::parse_list(&raw).map_err(Failure::from)?;
                let kinds: Vec<(u8, usize)> = list.iter().map(|x| (x.nidt, x.nid.len())).collect();
                check_eq!(kinds, vec![(NIDT_NGUID, 16), (NIDT_UUID, 16)], "nsid {nsid}: descriptors (NIDT, NIDL)");
                check!(raw[40..].iter().all(|&b| b == 0), "nsid {nsid}: bytes after the last descriptor are not zero");
                let ns = IdentifyNamespaceRepr::parse(&identify(&mut c, 0, nsid).await?).map_err(Failure::from)?;
                check_eq!(list[0].nid, ns.nguid.to_vec(), "nsid {nsid}: NGUID of the descriptors and of Identify Namespace");
                let uuid = &list[1].nid;
                check_eq!((uuid[6] >> 4, uuid[8] >> 6), (8, 0b10), "nsid {nsid}: UUID (version, variant)");
                check_eq!(identify(&mut c, 3, nsid).await?, raw, "nsid {nsid}: descriptors read again");
                for id in [&list[0].nid, uuid] {
                    check!(!seen.contains(id), "nsid {nsid}: identifier {id:02x?} is not unique");
                    seen.push(id.clone());
                }
            }
            let r = admin(&mut c, AdminOpcode::Identify, 3, [3, 0, 0, 0, 0, 0], Transfer::FromTarget(4096)).await?;
            expect_status(&r.cqe, Status::INVALID_NAMESPACE, "descriptors of nsid 3, which does not exist")
        }),
        Case::new(AREA, "properties", "ADM-PROPERTIES", "Property Get returns CAP (8 bytes: MQES the queue depth − 1, CQR, TO 15 s, CSS NVM), VS 1.3, CC as last written and CSTS; CC.SHN sets CSTS.SHST complete, CC.EN 1→0 clears CSTS, 0→1 sets CSTS.RDY; other offsets and sizes are Invalid Field (0/02h, DNR) and change nothing", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            let cap = get(&mut c, PROP_CAP, PropertySize::Eight).await?;
            let expected = CapRepr { mqes: depth(&d.caps) - 1, cqr: true, to: 30, css: 1, ..CapRepr::default() };
            check_eq!(CapRepr::parse(cap), expected, "CAP");
            check_eq!(cap, expected.emit(), "CAP's other bits (0)");
            check_eq!(get(&mut c, PROP_VS, PropertySize::Four).await?, u64::from(VS), "VS");
            let off = LINUX_CC.emit();
            let cc = CcRepr { en: true, ..LINUX_CC }.emit();
            let ready = u64::from(CstsRepr { rdy: true, ..CstsRepr::default() }.emit());
            check_eq!(get(&mut c, PROP_CC, PropertySize::Four).await?, u64::from(cc), "CC after enabling");
            check_eq!(get(&mut c, PROP_CSTS, PropertySize::Four).await?, ready, "CSTS after enabling");
            for (set, offset, size, what) in [
                (None, PROP_CAP, PropertySize::Four, "Property Get of CAP with 4 bytes"),
                (None, PROP_VS, PropertySize::Eight, "Property Get of VS with 8 bytes"),
                (None, 0x0c, PropertySize::Four, "Property Get of INTMS"),
                (None, 0x20, PropertySize::Four, "Property Get of NSSR"),
                (Some(0), PROP_CAP, PropertySize::Eight, "Property Set of CAP"),
                (Some(0), PROP_CC, PropertySize::Eight, "Property Set of CC with 8 bytes"),
                (Some(0), PROP_CSTS, PropertySize::Four, "Property Set of CSTS"),
            ] {
                let r = property(&mut c, set, offset, size).await?;
                expect_status(&r.cqe, Status::INVALID_FIELD, what)?;
            }
            check_eq!(get(&mut c, PROP_CC, PropertySize::Four).await?, u64::from(cc), "CC after the refused Property Sets");
            check_eq!(get(&mut c, PROP_CSTS, PropertySize::Four).await?, ready, "CSTS after the refused Property Sets");
            let normal = CcRepr { en: true, shn: SHN_NORMAL, ..LINUX_CC }.emit();
            set_cc(&mut c, normal).await?;
            check_eq!(get(&mut c, PROP_CC, PropertySize::Four).await?, u64::from(normal), "CC with SHN 01b");
            let shut = CstsRepr { rdy: true, shst: SHST_COMPLETE, ..CstsRepr::default() };
            check_eq!(get(&mut c, PROP_CSTS, PropertySize::Four).await?, u64::from(shut.emit()), "CSTS after CC.SHN 01b (RDY, SHST complete)");
            set_cc(&mut c, CcRepr { en: true, shn: SHN_ABRUPT, ..LINUX_CC }.emit()).await?;
            check_eq!(CstsRepr::parse(get(&mut c, PROP_CSTS, PropertySize::Four).await? as u32).shst, SHST_COMPLETE, "CSTS.SHST after CC.SHN 10b");
            set_cc(&mut c, off).await?;
            check_eq!(get(&mut c, PROP_CSTS, PropertySize::Four).await?, 0, "CSTS after CC.EN 1→0");
            set_cc(&mut c, cc).await?;
            check_eq!(get(&mut c, PROP_CSTS, PropertySize::Four).await?, ready, "CSTS after CC.EN 0→1");
            set_cc(&mut c, cc).await?;
            check_eq!(get(&mut c, PROP_CSTS, PropertySize::Four).await?, ready, "CSTS after CC.EN 1→1");
            Ok(())
        }),
        Case::new(AREA, "needs-enabled", "ADM-ENABLED", "admin commands other than Fabrics commands need CSTS.RDY: before CC.EN and after CC.EN 1→0, Identify and Keep Alive are Command Sequence Error (0/0Ch, DNR) while Property Get is served; after CC.EN 0→1 they are served again", CP, |d: Dut| async move {
            let t = d.target(&one_subsystem_with(&NSIDS, d.ns_format(), true)).await?;
            let mut c = t.connect(PORT_A, host_config(SUB_A)).await.map_err(|e| Failure::from(e).context("admin connect"))?;
            for round in ["before CC.EN", "after CC.EN 1→0"] {
                // CC written with EN 0 while disabled (0→0) leaves the controller disabled.
                set_cc(&mut c, LINUX_CC.emit()).await?;
                check_eq!(get(&mut c, PROP_CSTS, PropertySize::Four).await?, 0, "CSTS {round}");
                let r = admin(&mut c, AdminOpcode::Identify, 0, [1, 0, 0, 0, 0, 0], Transfer::FromTarget(4096)).await?;
                expect_status(&r.cqe, Status::COMMAND_SEQUENCE_ERROR, &format!("Identify {round}"))?;
                let r = admin(&mut c, AdminOpcode::KeepAlive, 0, [0; 6], Transfer::None).await?;
                expect_status(&r.cqe, Status::COMMAND_SEQUENCE_ERROR, &format!("Keep Alive {round}"))?;
                set_cc(&mut c, CcRepr { en: true, ..LINUX_CC }.emit()).await?;
                identify(&mut c, 1, 0).await?;
                let r = admin(&mut c, AdminOpcode::KeepAlive, 0, [0; 6], Transfer::None).await?;
                expect_ok(&r, "Keep Alive once enabled")?;
                set_cc(&mut c, LINUX_CC.emit()).await?;
            }
            Ok(())
        }),
        Case::new(AREA, "features", "ADM-FEATURES", "Set Features Number of Queues grants min(NSQR, NCQR) + 1 queues, at most the target's 64, refuses FFFFh (Invalid Field, DNR) and Get returns the grant (64 before any Set); Asynchronous Event Configuration reads back what was set; Keep Alive Timer reads the KATO of Connect; a Set Features with SV (save) is Feature Identifier Not Saveable (1/0Dh, DNR) and changes nothing; an unknown feature, and Interrupt Coalescing and Interrupt Vector Configuration (PCIe only), are Invalid Field (0/02h, DNR)", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            let both = |n: u32| u64::from(n | n << 16);
            let max = u32::from(MAX_IO_QUEUES) - 1;
            let r = features(&mut c, false, 0x07, 0).await?;
            expect_ok(&r, "Get Features Number of Queues before any Set")?;
            check_eq!(r.cqe.result, both(max), "Number of Queues before any Set (NSQA, NCQA)");
            let r = features(&mut c, true, 0x07, 2 | 6 << 16).await?;
            expect_ok(&r, "Set Features Number of Queues (3 SQs, 7 CQs)")?;
            check_eq!(r.cqe.result, both(2), "Number of Queues granted for 3 SQs and 7 CQs");
            for (cdw11, what) in [(0xffff | 1 << 16, "NSQR FFFFh"), (1 | 0xffff << 16, "NCQR FFFFh")] {
                let r = features(&mut c, true, 0x07, cdw11).await?;
                expect_status(&r.cqe, Status::INVALID_FIELD, &format!("Set Features Number of Queues with {what}"))?;
            }
            let r = features(&mut c, false, 0x07, 0).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, both(2)), "Get Features Number of Queues after the refused Sets");
            let r = features(&mut c, true, 0x07, 999 | 7 << 16).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, both(7)), "Number of Queues granted for 1000 SQs and 8 CQs");
            let r = features(&mut c, true, 0x07, 999 | 999 << 16).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, both(max)), "Number of Queues granted for 1000 of each");
            let r = features(&mut c, false, 0x0b, 0).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, 0), "Asynchronous Event Configuration before any Set");
            let r = features(&mut c, true, 0x0b, 0x0000_0300).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, 0), "Set Features Asynchronous Event Configuration");
            let r = features(&mut c, false, 0x0b, 0).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, 0x300), "Asynchronous Event Configuration after Set");
            let r = features(&mut c, false, 0x0f, 0).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, KATO_MS), "Keep Alive Timer");
            let r = features(&mut c, true, 0x0b | 1 << 31, 0x0000_0100).await?;
            expect_status(&r.cqe, Status::FEATURE_NOT_SAVEABLE, "Set Features Asynchronous Event Configuration with SV")?;
            let r = features(&mut c, false, 0x0b, 0).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, 0x300), "Asynchronous Event Configuration after a Set with SV");
            for (set, fid) in [(false, 0x7f), (true, 0x7f), (false, 0x08), (true, 0x08), (false, 0x09), (true, 0x09)] {
                let r = features(&mut c, set, fid, 0).await?;
                let what = format!("{} Features of FID {fid:02x}h", if set { "Set" } else { "Get" });
                expect_status(&r.cqe, Status::INVALID_FIELD, &what)?;
            }
            Ok(())
        }),
        Case::new(AREA, "log-pages", "ADM-LOG-PAGES", "Get Log Page returns the Error Information log (no entries), SMART / Health (no warning, 25 °C, spare 100 % over a 10 % threshold) and Firmware Slot (slot 1 active, holding the Identify firmware revision) from any dword-aligned offset, zeroes past the end; an offset not dword aligned or past the log, a length above the queue's data buffer, or another log is Invalid Field (0/02h, DNR)", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            let smart = SmartLogRepr { critical_warning: 0, temperature: 298, avail_spare: 100, spare_thresh: 10, percent_used: 0 }.emit();
            let mut frs: [String; 7] = Default::default();
            frs[0] = FIRMWARE.into();
            let fw = FirmwareSlotLogRepr { afi: 1, frs }.emit().map_err(Failure::from)?;
            let error_log = vec![0u8; 64 * 64];
            for (lid, log, name) in [(LID_ERROR, &error_log, "Error Information"), (LID_SMART, &smart, "SMART / Health"), (LID_FIRMWARE_SLOT, &fw, "Firmware Slot")] {
                let r = log_page(&mut c, lid, 0, log.len() as u32).await?;
                expect_ok(&r, name)?;
                check!(r.data == *log, "{name} log: expected {:02x?}…, got {:02x?}…", &log[..16], &r.data[..16.min(r.data.len())]);
                let r = log_page(&mut c, lid, 4, 8).await?;
                expect_ok(&r, &format!("{name}, 8 bytes from offset 4"))?;
                check_eq!(r.data, log[4..12].to_vec(), "{name} log, 8 bytes from offset 4");
                let r = log_page(&mut c, lid, log.len() as u64 - 4, 8).await?;
                expect_ok(&r, &format!("{name}, past its end"))?;
                let mut tail = log[log.len() - 4..].to_vec();
                tail.extend([0; 4]);
                check_eq!(r.data, tail, "{name} log, its last dword and one past its end");
                let r = log_page(&mut c, lid, log.len() as u64, 4).await?;
                expect_ok(&r, &format!("{name}, from its end"))?;
                check_eq!(r.data, vec![0; 4], "{name} log from its end");
                for (lpo, what) in [(2, "an offset not dword aligned"), (log.len() as u64 + 4, "an offset past the log"), (1 << 32, "an offset above 4 GiB")] {
                    let r = log_page(&mut c, lid, lpo, 4).await?;
                    expect_status(&r.cqe, Status::INVALID_FIELD, &format!("{name} log at {what}"))?;
                }
            }
            let parsed = FirmwareSlotLogRepr::parse(&fw).map_err(Failure::from)?;
            check_eq!(parsed.frs[0].as_str(), FIRMWARE, "firmware revision of slot 1");
            let whole = data_buffer(&d.caps);
            let r = log_page(&mut c, LID_SMART, 0, whole).await?;
            expect_ok(&r, "SMART / Health as long as the queue's data buffer")?;
            check!(r.data[..LOG_512] == smart[..] && r.data[LOG_512..].iter().all(|&b| b == 0), "SMART / Health as long as the data buffer: the log, then zeroes");
            // NUMD one dword above the buffer: only NUMDU (CDW11) tells it from a short read.
            let numd = whole / 4;
            let cdw = [u32::from(LID_SMART) | (numd & 0xffff) << 16, numd >> 16, 0, 0, 0, 0];
            let r = admin(&mut c, AdminOpcode::GetLogPage, 0, cdw, Transfer::FromTarget(4096)).await?;
            expect_status(&r.cqe, Status::INVALID_FIELD, &format!("Get Log Page of {} bytes, above the data buffer", whole + 4))?;
            for (lid, what) in [(0x04, "Changed Namespace List (04h)"), (0x70, "the discovery log (70h) on an I/O controller"), (0x00, "log 00h")] {
                let r = log_page(&mut c, lid, 0, 512).await?;
                expect_status(&r.cqe, Status::INVALID_FIELD, what)?;
            }
            Ok(())
        }),
        Case::new(AREA, "async-event-requests", "ADM-AER", "AERL + 1 Asynchronous Event Requests are held unanswered (the target raises no events) while other admin commands are answered; one more is Asynchronous Event Request Limit Exceeded (1/05h, DNR)", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            let aer = Command::Nvme { nsid: 0, command: SqeCommand::Other { opcode: AdminOpcode::AsyncEventRequest.into(), cdw: [0; 6] } };
            let mut held = Vec::new();
            for _ in 0..=AERL {
                held.push(c.admin().submit(&aer, SglRepr::keyed(0, 0, 0), &[])?);
            }
            identify(&mut c, 1, 0).await?;
            let extra = c.admin().submit(&aer, SglRepr::keyed(0, 0, 0), &[])?;
            let r = c.admin().wait_response(extra, wait(BOUND)).await?;
            expect_status(&r.cqe, Status::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED, &format!("Asynchronous Event Request number {}", AERL + 2))?;
            settle().await;
            c.admin().poll()?;
            let answered: Vec<u16> = c.admin().arrived_cids().into_iter().filter(|id| held.contains(id)).collect();
            check!(answered.is_empty(), "held Asynchronous Event Requests were answered: CIDs {answered:?}");
            let r = admin(&mut c, AdminOpcode::KeepAlive, 0, [0; 6], Transfer::None).await?;
            expect_ok(&r, "Keep Alive with the requests held")
        }),
        Case::new(AREA, "refusals", "ADM-INVALID", "what the target does not implement is refused with DNR: an admin opcode it lacks (Invalid Opcode, 0/01h), a Fabrics command type it lacks (Invalid Opcode), a Property Get with a reserved byte set or a reserved ATTRIB size (Invalid Field), an Identify CNS it lacks (Invalid Field, 0/02h), Identify into a buffer that is not 4096 bytes (Data SGL Length Invalid, 0/0Fh) or with in-capsule data (Invalid Field); the controller then still answers", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            for op in [0x01u8, 0x05, 0x10, 0x80] {
                let sqe = misbehave::opcode_sqe(100 + u16::from(op), 0, op)?;
                misbehave::send_raw(c.admin(), &sqe)?;
                let r = c.admin().wait_response(100 + u16::from(op), wait(BOUND)).await?;
                expect_status(&r.cqe, Status::INVALID_OPCODE, &format!("admin opcode {op:02x}h"))?;
            }
            // A Fabrics command (7Fh) with FCTYPE 05h (Authentication Send): FCTYPE is byte 4.
            let sqe = misbehave::opcode_sqe(200, 0x05, 0x7f)?;
            misbehave::send_raw(c.admin(), &sqe)?;
            let r = c.admin().wait_response(200, wait(BOUND)).await?;
            expect_status(&r.cqe, Status::INVALID_OPCODE, "Fabrics command type 05h")?;
            // A Property Get with a reserved byte set is a Fabrics command that does not
            // parse for another reason than its type: Invalid Field.
            let pg = FabricsRepr::PropertyGet(PropertyGetRepr { psdt: Psdt::SglMptrContiguous, cid: 0, sgl1: SglRepr::keyed(0, 0, 0), size: PropertySize::Four, offset: PROP_CSTS });
            let mut sqe = Command::Fabrics(pg).emit(201, SglRepr::keyed(0, 0, 0))?;
            sqe[fabrics_field::PROPERTY_GET_RESERVED2.start] = 1;
            misbehave::send_raw(c.admin(), &sqe)?;
            let r = c.admin().wait_response(201, wait(BOUND)).await?;
            expect_status(&r.cqe, Status::INVALID_FIELD, "Property Get with reserved byte 48 set")?;
            // ... and one whose ATTRIB.SIZE is the reserved value 2 (bits 2:0 of byte 40).
            let mut sqe = Command::Fabrics(pg).emit(202, SglRepr::keyed(0, 0, 0))?;
            sqe[fabrics_field::PROPERTY_ATTRIB] = 2;
            misbehave::send_raw(c.admin(), &sqe)?;
            let r = c.admin().wait_response(202, wait(BOUND)).await?;
            expect_status(&r.cqe, Status::INVALID_FIELD, "Property Get with ATTRIB.SIZE 2 (reserved)")?;
            for cns in [0x04, 0x10, 0x13] {
                let r = admin(&mut c, AdminOpcode::Identify, 0, [cns, 0, 0, 0, 0, 0], Transfer::FromTarget(4096)).await?;
                expect_status(&r.cqe, Status::INVALID_FIELD, &format!("Identify CNS {cns:02x}h"))?;
            }
            for len in [512, 8192] {
                let r = admin(&mut c, AdminOpcode::Identify, 0, [1, 0, 0, 0, 0, 0], Transfer::FromTarget(len)).await?;
                expect_status(&r.cqe, Status::DATA_SGL_LENGTH_INVALID, &format!("Identify into {len} bytes"))?;
                check!(r.data.iter().all(|&b| b == 0), "Identify into {len} bytes wrote data");
            }
            let cmd = Command::Nvme { nsid: 0, command: SqeCommand::Other { opcode: AdminOpcode::Identify.into(), cdw: [1, 0, 0, 0, 0, 0] } };
            let r = c.admin().execute_sgl(&cmd, SglRepr::in_capsule(0, 4096), &[]).await?;
            expect_status(&r.cqe, Status::INVALID_FIELD, "Identify with an in-capsule data block")?;
            identify(&mut c, 1, 0).await.map(|_| ())
        }),
        Case::new(AREA, "discovery-controller", "ADM-DISCOVERY-CTRL", "the discovery controller's Identify Controller reports CNTRLTYPE 2, the discovery NQN, LPA extended data, no namespaces and no I/O features; Identify of a namespace, Number of Queues and the I/O controller's logs are Invalid Field (0/02h, DNR) there, Keep Alive Timer and Asynchronous Event Configuration work", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let c0 = t.controller(PORT_A, host_config(SUB_A)).await?;
            let mut c = t.controller(PORT_A, host_config(DISCOVERY_NQN)).await?;
            check!(c.cntlid() != c0.cntlid(), "the discovery controller has the I/O controller's CNTLID {}", c.cntlid());
            let id = IdentifyControllerRepr::parse(&identify(&mut c, 1, 0).await?).map_err(Failure::from)?;
            check_eq!((id.cntrltype, id.subnqn.as_str(), id.lpa, id.nn), (2, DISCOVERY_NQN, 1 << 2, 0), "discovery Identify Controller (CNTRLTYPE, SUBNQN, LPA, NN)");
            check_eq!((id.cntlid, id.ver, id.aerl, id.kas, id.vid, id.mn.as_str()), (c.cntlid(), VS, AERL, KAS, VID, MODEL), "discovery Identify Controller (CNTLID, VER, AERL, KAS, VID, MN)");
            check_eq!((id.maxcmd, id.sgls, id.ioccsz, id.mdts), (32, 1 | 1 << 2, 0, 0), "discovery Identify Controller (MAXCMD, SGLS, IOCCSZ, MDTS)");
            for (cns, nsid) in [(0, 1), (2, 0), (3, 1)] {
                let r = admin(&mut c, AdminOpcode::Identify, nsid, [cns, 0, 0, 0, 0, 0], Transfer::FromTarget(4096)).await?;
                expect_status(&r.cqe, Status::INVALID_FIELD, &format!("Identify CNS {cns:02x}h on the discovery controller"))?;
            }
            for set in [false, true] {
                let r = features(&mut c, set, 0x07, 0).await?;
                expect_status(&r.cqe, Status::INVALID_FIELD, "Number of Queues on the discovery controller")?;
            }
            for lid in [LID_ERROR, LID_SMART, LID_FIRMWARE_SLOT] {
                let r = log_page(&mut c, lid, 0, 512).await?;
                expect_status(&r.cqe, Status::INVALID_FIELD, &format!("log {lid:02x}h on the discovery controller"))?;
            }
            let r = features(&mut c, false, 0x0f, 0).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, KATO_MS), "Keep Alive Timer of the discovery controller");
            let r = features(&mut c, true, 0x0b, 1 << 31).await?;
            expect_ok(&r, "Set Features Asynchronous Event Configuration on the discovery controller")?;
            let r = features(&mut c, false, 0x0b, 0).await?;
            check_eq!((r.cqe.status, r.cqe.result), (Status::SUCCESS, 1 << 31), "Asynchronous Event Configuration of the discovery controller");
            Ok(())
        }),
    ]
}
