//! Issue 7 §2: a table of malformed inputs against the reference target (control plane over
//! the simulated fabric), each row with its precise expected answer — an NVMe status (SCT /
//! SC / DNR), a Connect Invalid Parameters offset, a CM reject status, a transport error,
//! silence, or a configuration error naming its field and line. After every row the target
//! must still serve everyone else: a write + read with data compared on another I/O queue of
//! the misbehaving host's controller and on another controller's queue.
//!
//! `docs/malformed-inputs.md` holds the same table with the reason for each answer;
//! `every_row_is_documented` keeps the two from drifting.

use std::time::Duration;

use harness::fabric::{Access, WcStatus};
use harness::initiator::connect::{cm_establish, CmOptions};
use harness::initiator::{misbehave, Controller, HostQueue, InitiatorError, IoQueue, QueueSpec};
use harness::wire::{
    CmRejectStatus, ConnectDataRepr, ConnectRepr, ConnectResponse, FabricsRepr, InvalidParam,
    RwCommand, SglAddressing, SglRepr, SqeCommand, SqeRepr, Status, WriteZeroesCommand,
    CNTLID_DYNAMIC,
};
use reference_target::control::Config;
use reference_target::testing::data::*;
use reference_target::testing::target::*;

/// The target of the table: one offloaded subsystem with a host allow-list, queue depth 32
/// (CAP.MQES 31), a 4 KiB-block namespace 1 (1024 blocks) and a 512-byte-block namespace 2.
const TABLE_CONFIG: &str = r#"
profile = "full"
quirks = []

[[port]]
addr = "127.0.10.1:4420"
subsystem = "nqn.2026-11.io.nvmf-conform:sub0"

[[subsystem]]
nqn = "nqn.2026-11.io.nvmf-conform:sub0"
allow_any_host = false
hosts = ["nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7374",
         "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7342"]
queue_depth = 32

[[subsystem.namespace]]
nsid = 1
size = "4MiB"
lba_format = "4096"

[[subsystem.namespace]]
nsid = 2
size = "1MiB"
lba_format = "512"
"#;

/// The second allowed host (controller B).
const HOST_B: &str = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7342";
/// A host that is not on the allow-list.
const STRANGER: &str = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-0000000000ff";
/// The subsystem's maximum data transfer size (no `mdts` in the configuration: 1 MiB).
const MDTS: u32 = 1 << 20;
/// The bound of one expected response (virtual time).
const ANSWER: Duration = Duration::from_secs(2);
/// Placeholder for "the next unused I/O queue ID" in a row (replaced when it runs).
const NEXT_QID: u16 = u16::MAX;

/// The answer a row expects (and the answer the target gave).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// One response with exactly this status field (SCT, SC, DNR).
    Nvme(Status),
    /// This many responses, each with this status.
    NvmeEach(usize, Status),
    /// Connect Invalid Parameters (1/82h, DNR) naming this field (IPO / IATTR in DW0).
    ConnectInvalid(InvalidParam),
    /// No response at all (nothing to answer: no command identifier).
    Silent,
    /// The CM request rejected with this status in the reject private data.
    CmReject(CmRejectStatus),
    /// The host's capsule SEND failed with this work-completion status: the queue is lost.
    Transport(WcStatus),
    /// `Config::parse` refused the file: this field, at this line.
    Config { field: String, line: Option<usize> },
    /// Anything else (only ever an actual outcome).
    Other(String),
}

fn dnr(sct: u8, sc: u8) -> Outcome {
    Outcome::Nvme(Status::new(sct, sc).with_dnr())
}

fn ipo_sqe(offset: usize) -> Outcome {
    Outcome::ConnectInvalid(InvalidParam::sqe(offset))
}

fn ipo_data(offset: usize) -> Outcome {
    Outcome::ConnectInvalid(InvalidParam::data(offset))
}

fn config_err(field: &str, line: Option<usize>) -> Outcome {
    Outcome::Config {
        field: field.into(),
        line,
    }
}

/// Where the Connect data travels in a Connect row.
#[derive(Debug, Clone)]
enum ConnectSgl {
    /// Keyed SGL of this length over a host region holding the data.
    Keyed(u32),
    /// In-capsule SGL (offset 0) of this length; the data follows the SQE.
    InCapsule(u32),
    /// This descriptor as is; no data.
    Raw(SglRepr),
}

/// What a row sends.
#[derive(Debug, Clone)]
enum Input {
    /// Raw capsules on a fresh, connected, offloaded I/O queue of controller A (QID: the
    /// next unused one) of `depth` entries; every capsule with a CID is waited for.
    Io { depth: u16, capsules: Vec<Vec<u8>> },
    /// A raw capsule on controller A's admin queue.
    Admin(Vec<u8>),
    /// A raw capsule on a queue that is CM-connected but has not sent Connect.
    BeforeConnect { spec: QueueSpec, capsule: Vec<u8> },
    /// A CM connect request with these private data bytes.
    Cm {
        spec: QueueSpec,
        private_data: Vec<u8>,
    },
    /// A CM-connected queue of `spec` (good private data), optionally a good Connect
    /// first (`twice`), then this Connect.
    Connect {
        spec: QueueSpec,
        twice: bool,
        recfmt: u16,
        qid: u16,
        sqsize: u16,
        data: Vec<u8>,
        sgl: ConnectSgl,
    },
    /// A new controller of the same host that never sets CC.EN, then an I/O Connect to it.
    ConnectToDisabledController,
    /// A configuration file's text.
    Config(String),
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    name: &'static str,
    input: Input,
    expect: Outcome,
}

/// What the rows need to know about the running target.
#[derive(Debug, Clone, Copy)]
struct Env {
    /// Controller A's CNTLID (the misbehaving host's controller).
    cntlid_a: u16,
    /// I/O queues granted to controller A (Set Features Number of Queues).
    granted_a: u16,
}

impl Env {
    /// Values for listing the rows without a target.
    fn placeholder() -> Env {
        Env {
            cntlid_a: 1,
            granted_a: 60,
        }
    }
}

// ---- builders -------------------------------------------------------------------------

/// A keyed SGL that no command of the table ever reaches (errors come first).
fn bogus_keyed(len: u32) -> SglRepr {
    SglRepr::keyed(0x10_0000, len, 0x1234)
}

fn read(cid: u16, nsid: u32, slba: u64, blocks: u32, sgl: SglRepr) -> Vec<u8> {
    misbehave::read_sqe(cid, nsid, slba, blocks, sgl)
        .unwrap()
        .to_vec()
}

fn write(cid: u16, nsid: u32, slba: u64, blocks: u32, sgl: SglRepr) -> Vec<u8> {
    misbehave::write_sqe(cid, nsid, slba, blocks, sgl)
        .unwrap()
        .to_vec()
}

/// A write of `blocks` blocks at block 0 of namespace 1 whose SGL is in-capsule at
/// (`offset`, `len`), followed by `data` bytes of in-capsule data.
fn in_capsule_write(cid: u16, blocks: u32, (offset, len): (u64, u32), data: usize) -> Vec<u8> {
    let mut c = write(cid, 1, 0, blocks, SglRepr::in_capsule(offset, len));
    c.resize(c.len() + data, 0xa5);
    c
}

/// A 4 KiB read of block 0 of namespace 1 whose SQE byte `at` is `value` afterwards.
fn read_patched(cid: u16, at: usize, value: u8) -> Vec<u8> {
    let mut b = read(cid, 1, 0, 1, bogus_keyed(4096));
    b[at] = value;
    b
}

/// An SQE of `command` on namespace `nsid` with a null keyed SGL.
fn sqe(cid: u16, nsid: u32, command: SqeCommand) -> Vec<u8> {
    SqeRepr::new(cid, nsid, command, SglRepr::keyed(0, 0, 0))
        .to_bytes()
        .unwrap()
        .to_vec()
}

/// 16 SGL bytes of an unkeyed descriptor: address, length, reserved bytes 14:12, identifier.
fn unkeyed_sgl(address: u64, length: u32, reserved: [u8; 3], id: u8) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0..8].copy_from_slice(&address.to_le_bytes());
    s[8..12].copy_from_slice(&length.to_le_bytes());
    s[12..15].copy_from_slice(&reserved);
    s[15] = id;
    s
}

/// 16 SGL bytes of a keyed descriptor: address, 24-bit length, key, identifier.
fn keyed_sgl(address: u64, length: u32, key: u32, id: u8) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0..8].copy_from_slice(&address.to_le_bytes());
    s[8..11].copy_from_slice(&length.to_le_bytes()[..3]);
    s[11..15].copy_from_slice(&key.to_le_bytes());
    s[15] = id;
    s
}

/// A 4 KiB read of block 0 of namespace 1 with SGL1 = `sgl` bytes.
fn read_with_sgl(cid: u16, sgl: [u8; 16]) -> Vec<u8> {
    let base = misbehave::read_sqe(cid, 1, 0, 1, bogus_keyed(4096)).unwrap();
    misbehave::sqe_with_raw_sgl(base, sgl).to_vec()
}

/// A 4 KiB write of block 0 of namespace 1 with SGL1 = `sgl` bytes.
fn write_with_sgl(cid: u16, sgl: [u8; 16]) -> Vec<u8> {
    let base = misbehave::write_sqe(cid, 1, 0, 1, bogus_keyed(4096)).unwrap();
    misbehave::sqe_with_raw_sgl(base, sgl).to_vec()
}

/// A Fabrics command SQE: opcode 7Fh, `fctype`, CID, a null keyed SGL, then `tail`
/// (bytes 40..64).
fn fabrics(cid: u16, fctype: u8, tail: &[(usize, u8)]) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[0] = 0x7f;
    b[1] = 0x40; // PSDT 01b
    b[2..4].copy_from_slice(&cid.to_le_bytes());
    b[4] = fctype;
    b[24..40].copy_from_slice(&keyed_sgl(0, 0, 0, 0x40));
    for &(at, v) in tail {
        b[at] = v;
    }
    b
}

/// Property Get / Set: ATTRIB (size) at byte 40, OFST at 44..48, value at 48..56.
fn property(cid: u16, set: bool, size_attr: u8, offset: u32, value: u64) -> Vec<u8> {
    let mut b = fabrics(cid, if set { 0x00 } else { 0x04 }, &[(40, size_attr)]);
    b[44..48].copy_from_slice(&offset.to_le_bytes());
    if set {
        b[48..56].copy_from_slice(&value.to_le_bytes());
    }
    b
}

/// An admin SQE with `opcode`, `nsid` and CDW10 / CDW11.
fn admin(cid: u16, opcode: u8, nsid: u32, cdw10: u32, cdw11: u32) -> Vec<u8> {
    sqe(
        cid,
        nsid,
        SqeCommand::Other {
            opcode,
            cdw: [cdw10, cdw11, 0, 0, 0, 0],
        },
    )
}

/// The 1024 Connect data bytes for controller `cntlid` with `subnqn` and `hostnqn`.
fn connect_data(cntlid: u16, subnqn: &str, hostnqn: &str) -> Vec<u8> {
    ConnectDataRepr {
        hostid: *b"nvmf-conform-hst",
        cntlid,
        subnqn: subnqn.into(),
        hostnqn: hostnqn.into(),
    }
    .to_bytes()
    .unwrap()
}

/// Connect data with the bytes of `range` replaced by `fill` (no NUL left in the field).
fn connect_data_patched(cntlid: u16, range: std::ops::Range<usize>, fill: u8) -> Vec<u8> {
    let mut d = connect_data(cntlid, SUB0, HOSTNQN);
    d[range].fill(fill);
    d
}

fn admin_spec() -> QueueSpec {
    QueueSpec::admin()
}

fn io_spec(qid: u16) -> QueueSpec {
    QueueSpec::io(qid, 32, 8192)
}

/// A Connect row: queue `spec`, Connect fields, data and SGL.
fn connect_row(
    name: &'static str,
    spec: QueueSpec,
    (recfmt, qid, sqsize): (u16, u16, u16),
    data: Vec<u8>,
    sgl: ConnectSgl,
    expect: Outcome,
) -> Row {
    Row {
        name,
        input: Input::Connect {
            spec,
            twice: false,
            recfmt,
            qid,
            sqsize,
            data,
            sgl,
        },
        expect,
    }
}

/// A configuration row: the valid base config with `from` replaced by `to`.
fn config_row(name: &'static str, from: &str, to: &str, expect: Outcome) -> Row {
    assert!(
        TABLE_CONFIG.contains(from),
        "{name}: `{from}` not in the base config"
    );
    Row {
        name,
        input: Input::Config(TABLE_CONFIG.replacen(from, to, 1)),
        expect,
    }
}

// ---- the table ----------------------------------------------------------------------

fn table(env: &Env) -> Vec<Row> {
    use CmRejectStatus::{
        InvalidHrqsize, InvalidHsqsize, InvalidLength, InvalidQid, InvalidRecfmt,
    };
    use ConnectSgl::{InCapsule, Keyed, Raw};
    let a = env.cntlid_a;
    let io = |name: &'static str, capsule: Vec<u8>, expect: Outcome| Row {
        name,
        input: Input::Io {
            depth: 32,
            capsules: vec![capsule],
        },
        expect,
    };
    let adm = |name: &'static str, capsule: Vec<u8>, expect: Outcome| Row {
        name,
        input: Input::Admin(capsule),
        expect,
    };
    let cm = |name: &'static str, spec: QueueSpec, pd: Vec<u8>, sts: CmRejectStatus| Row {
        name,
        input: Input::Cm {
            spec,
            private_data: pd,
        },
        expect: Outcome::CmReject(sts),
    };
    // A CM request whose private data holds these (RECFMT, QID, HRQSIZE, HSQSIZE), on a
    // queue of the QID it names.
    let cm_request = |name, (recfmt, qid, hrqsize, hsqsize), sts| {
        let spec = if qid == 0 { admin_spec() } else { io_spec(qid) };
        let pd = misbehave::cm_request_bytes(recfmt, qid, hrqsize, hsqsize);
        cm(name, spec, pd, sts)
    };
    // A Property Get or Set (`cid, set, size, offset, value`) refused as Invalid Field.
    let bad_property = |name, cid, set, size, offset, value| {
        adm(name, property(cid, set, size, offset, value), dnr(0, 0x02))
    };
    let good_admin = connect_data(CNTLID_DYNAMIC, SUB0, HOSTNQN);
    let good_io = connect_data(a, SUB0, HOSTNQN);
    let k = Keyed(1024);
    vec![
        // -- truncated capsules (I/O queue) --
        io("capsule-empty", vec![], Outcome::Silent),
        io("capsule-3-bytes", vec![0x02, 0x40, 0x07], Outcome::Silent),
        io(
            "capsule-4-bytes",
            vec![0x02, 0x40, 0x11, 0x00],
            dnr(0, 0x02),
        ),
        io(
            "capsule-63-bytes",
            read(0x12, 1, 0, 1, bogus_keyed(4096))[..63].to_vec(),
            dnr(0, 0x02),
        ),
        // -- reserved bits NVMe requires zero --
        io(
            "sqe-cdw0-reserved-bits",
            read_patched(0x20, 1, 0x40 | 0x04),
            dnr(0, 0x02),
        ),
        io(
            "read-cdw12-reserved-bit-25",
            read_patched(0x21, 51, 0x02),
            dnr(0, 0x02),
        ),
        io(
            "read-cdw13-reserved-bits",
            read_patched(0x22, 53, 0x01),
            dnr(0, 0x02),
        ),
        io(
            "write-zeroes-cdw13-reserved",
            {
                let mut b = sqe(
                    0x23,
                    1,
                    SqeCommand::WriteZeroes(WriteZeroesCommand {
                        slba: 0,
                        nlb: 0,
                        ..Default::default()
                    }),
                );
                b[53] = 1;
                b
            },
            dnr(0, 0x02),
        ),
        io(
            "flush-cdw10-reserved",
            {
                let mut b = sqe(0x24, 1, SqeCommand::Flush);
                b[40] = 1;
                b
            },
            dnr(0, 0x02),
        ),
        io(
            "sgl-data-block-reserved-bytes",
            {
                // Tolerated (reference-target/src/interop.rs): served, data and all.
                let mut c = write_with_sgl(0x25, unkeyed_sgl(0, 4096, [1, 0, 0], 0x01));
                c.extend_from_slice(&[0xab; 4096]);
                c
            },
            Outcome::Nvme(Status::SUCCESS),
        ),
        // -- SGL descriptor types and subtypes --
        io(
            "sgl-type-bit-bucket",
            read_with_sgl(0x30, unkeyed_sgl(0, 4096, [0; 3], 0x10)),
            dnr(0, 0x11),
        ),
        io(
            "sgl-type-segment",
            read_with_sgl(0x31, unkeyed_sgl(0x1000, 32, [0; 3], 0x20)),
            dnr(0, 0x11),
        ),
        io(
            "sgl-type-last-segment",
            read_with_sgl(0x32, unkeyed_sgl(0x1000, 16, [0; 3], 0x30)),
            dnr(0, 0x11),
        ),
        io(
            "sgl-type-reserved-6h",
            read_with_sgl(0x33, unkeyed_sgl(0x1000, 4096, [0; 3], 0x60)),
            dnr(0, 0x11),
        ),
        io(
            "sgl-type-vendor-fh",
            read_with_sgl(0x34, unkeyed_sgl(0x1000, 4096, [0; 3], 0xf0)),
            dnr(0, 0x11),
        ),
        io(
            "sgl-keyed-subtype-2h",
            read_with_sgl(0x35, keyed_sgl(0x1000, 4096, 0x1234, 0x42)),
            dnr(0, 0x11),
        ),
        io(
            "sgl-data-block-address-subtype",
            read(
                0x36,
                1,
                0,
                1,
                SglRepr::DataBlock {
                    addressing: SglAddressing::Address,
                    address: 0x1000,
                    length: 4096,
                },
            ),
            dnr(0, 0x11),
        ),
        // -- SGL lengths --
        io(
            "sgl-keyed-length-short",
            read(0x40, 1, 0, 2, bogus_keyed(4096)),
            dnr(0, 0x0f),
        ),
        io(
            "sgl-keyed-length-long",
            write(0x41, 1, 0, 1, bogus_keyed(8192)),
            dnr(0, 0x0f),
        ),
        io(
            "transfer-above-mdts",
            read(0x42, 1, 0, MDTS / 4096 + 1, bogus_keyed(MDTS + 4096)),
            dnr(0, 0x02),
        ),
        io(
            "in-capsule-length-past-capsule",
            in_capsule_write(0x43, 1, (0, 4096), 512),
            dnr(0, 0x16),
        ),
        io(
            "in-capsule-offset-past-capsule",
            in_capsule_write(0x44, 1, (4096, 4096), 4096),
            dnr(0, 0x16),
        ),
        io(
            "in-capsule-beyond-ioccsz",
            in_capsule_write(0x45, 2, (0, 8192), 8192),
            Outcome::Transport(WcStatus::RemInvReqErr),
        ),
        io(
            "in-capsule-data-on-read",
            read(0x46, 1, 0, 1, SglRepr::in_capsule(0, 4096)),
            dnr(0, 0x02),
        ),
        // -- namespaces --
        io(
            "nsid-0",
            read(0x50, 0, 0, 1, bogus_keyed(4096)),
            dnr(0, 0x0b),
        ),
        io(
            "nsid-broadcast-read",
            read(0x51, u32::MAX, 0, 1, bogus_keyed(4096)),
            dnr(0, 0x0b),
        ),
        io(
            "nsid-broadcast-flush",
            sqe(0x52, u32::MAX, SqeCommand::Flush),
            Outcome::Nvme(Status::SUCCESS),
        ),
        io(
            "nsid-unmapped",
            read(0x53, 9, 0, 1, bogus_keyed(4096)),
            dnr(0, 0x0b),
        ),
        io(
            "lba-beyond-namespace",
            read(0x54, 1, 1023, 2, bogus_keyed(8192)),
            dnr(0, 0x80),
        ),
        // -- command identifiers and queue depth --
        Row {
            name: "cid-reuse-while-outstanding",
            input: Input::Io {
                depth: 32,
                capsules: vec![
                    sqe(0x60, 1, SqeCommand::Flush),
                    sqe(0x60, 1, SqeCommand::Flush),
                ],
            },
            expect: Outcome::NvmeEach(2, Status::SUCCESS),
        },
        Row {
            name: "more-commands-than-sqsize",
            input: Input::Io {
                depth: 4,
                capsules: (0..12u16)
                    .map(|i| sqe(0x70 + i, 1, SqeCommand::Flush))
                    .collect(),
            },
            expect: Outcome::NvmeEach(12, Status::SUCCESS),
        },
        // -- opcodes and queue kinds --
        io(
            "io-unknown-opcode",
            sqe(
                0x80,
                1,
                SqeCommand::Other {
                    opcode: 0x7e,
                    cdw: [0; 6],
                },
            ),
            dnr(0, 0x01),
        ),
        io(
            "admin-identify-on-io-queue",
            admin(0x81, 0x06, 0, 1, 0),
            dnr(0, 0x01),
        ),
        io(
            "property-get-on-io-queue",
            property(0x82, false, 1, 0x00, 0),
            dnr(0, 0x01),
        ),
        io(
            "fused-first-read",
            read_patched(0x83, 1, 0x40 | 0x01),
            dnr(0, 0x02),
        ),
        io(
            "psdt-prp",
            misbehave::prp_sqe(0x84, 1, 0).unwrap().to_vec(),
            dnr(0, 0x02),
        ),
        io(
            "psdt-reserved-11b",
            read_patched(0x85, 1, 0xc0),
            dnr(0, 0x02),
        ),
        io(
            "read-prinfo-set",
            {
                let mut rw = RwCommand::new(0, 1);
                rw.prinfo = 0b1000;
                SqeRepr::new(0x86, 1, SqeCommand::Read(rw), bogus_keyed(4096))
                    .to_bytes()
                    .unwrap()
                    .to_vec()
            },
            dnr(0, 0x02),
        ),
        // -- admin queue --
        adm(
            "admin-truncated-capsule",
            vec![0x06, 0x40, 0x90, 0x00, 0, 0, 0, 0],
            dnr(0, 0x02),
        ),
        adm(
            "admin-sqe-reserved-bits",
            {
                let mut b = admin(0x91, 0x06, 0, 1, 0);
                b[1] |= 0x08;
                b
            },
            dnr(0, 0x02),
        ),
        adm(
            "admin-unknown-opcode",
            admin(0x92, 0xc1, 0, 0, 0),
            dnr(0, 0x01),
        ),
        adm(
            "io-write-opcode-on-admin-queue",
            write(0x93, 1, 0, 1, bogus_keyed(4096)),
            dnr(0, 0x01),
        ),
        adm(
            "identify-unknown-cns",
            admin(0x94, 0x06, 0, 0x55, 0),
            dnr(0, 0x02),
        ),
        adm(
            "identify-namespace-unknown-nsid",
            admin(0x95, 0x06, 9, 0x00, 0),
            dnr(0, 0x0b),
        ),
        adm(
            "identify-data-in-capsule",
            {
                let b = misbehave::opcode_sqe(0x96, 0, 0x06).unwrap();
                let mut b = misbehave::sqe_with_raw_sgl(b, unkeyed_sgl(0, 4096, [0; 3], 0x01));
                b[40] = 1;
                b.to_vec()
            },
            dnr(0, 0x02),
        ),
        adm(
            "set-features-queues-ffff",
            admin(0x97, 0x09, 0, 0x07, 0xffff_ffff),
            dnr(0, 0x02),
        ),
        adm(
            "fabrics-unknown-fctype",
            fabrics(0xa0, 0x7e, &[]),
            dnr(0, 0x01),
        ),
        adm(
            "fabrics-reserved-bytes",
            {
                let mut b = property(0xa1, false, 0, 0x08, 0);
                b[10] = 1;
                b
            },
            dnr(0, 0x02),
        ),
        bad_property("property-get-unknown-offset", 0xa2, false, 0, 0x40, 0),
        bad_property("property-get-cap-4-bytes", 0xa3, false, 0, 0x00, 0),
        bad_property("property-get-vs-8-bytes", 0xa4, false, 1, 0x08, 0),
        bad_property("property-get-reserved-size", 0xa5, false, 2, 0x08, 0),
        bad_property("property-set-cap-readonly", 0xa6, true, 1, 0x00, 0),
        bad_property("property-set-csts-readonly", 0xa7, true, 0, 0x1c, 0),
        bad_property("property-set-cc-8-bytes", 0xa8, true, 1, 0x14, 0x0046_0001),
        // -- before Connect --
        Row {
            name: "io-before-connect",
            input: Input::BeforeConnect {
                spec: io_spec(NEXT_QID),
                capsule: read(0xb0, 1, 0, 1, bogus_keyed(4096)),
            },
            expect: dnr(0, 0x0c),
        },
        Row {
            name: "property-get-before-connect",
            input: Input::BeforeConnect {
                spec: admin_spec(),
                capsule: property(0xb1, false, 1, 0x00, 0),
            },
            expect: dnr(0, 0x0c),
        },
        // -- Fabrics Connect --
        connect_row(
            "connect-recfmt-1",
            admin_spec(),
            (1, 0, 31),
            good_admin.clone(),
            k.clone(),
            dnr(1, 0x80),
        ),
        connect_row(
            "connect-data-sgl-length-512",
            admin_spec(),
            (0, 0, 31),
            good_admin.clone(),
            Keyed(512),
            dnr(0, 0x0f),
        ),
        connect_row(
            "connect-data-sgl-segment",
            admin_spec(),
            (0, 0, 31),
            vec![],
            Raw(SglRepr::parse_bytes(&unkeyed_sgl(0x1000, 1024, [0; 3], 0x20)).unwrap()),
            dnr(0, 0x11),
        ),
        connect_row(
            "connect-data-in-capsule-truncated",
            admin_spec(),
            (0, 0, 31),
            good_admin[..512].to_vec(),
            InCapsule(1024),
            dnr(0, 0x16),
        ),
        connect_row(
            "connect-qid-differs-from-cm",
            admin_spec(),
            (0, 3, 31),
            good_admin.clone(),
            k.clone(),
            ipo_sqe(42),
        ),
        connect_row(
            "connect-admin-cntlid-not-ffff",
            admin_spec(),
            (0, 0, 31),
            connect_data(5, SUB0, HOSTNQN),
            k.clone(),
            ipo_data(16),
        ),
        connect_row(
            "connect-unknown-subsystem",
            admin_spec(),
            (0, 0, 31),
            connect_data(
                CNTLID_DYNAMIC,
                "nqn.2026-11.io.nvmf-conform:nobody",
                HOSTNQN,
            ),
            k.clone(),
            ipo_data(256),
        ),
        connect_row(
            "connect-subnqn-unterminated",
            admin_spec(),
            (0, 0, 31),
            connect_data_patched(CNTLID_DYNAMIC, 256..512, b'a'),
            k.clone(),
            ipo_data(256),
        ),
        connect_row(
            "connect-hostnqn-unterminated",
            admin_spec(),
            (0, 0, 31),
            connect_data_patched(CNTLID_DYNAMIC, 512..768, b'h'),
            k.clone(),
            ipo_data(512),
        ),
        connect_row(
            "connect-hostnqn-over-223-bytes",
            admin_spec(),
            (0, 0, 31),
            connect_data_patched(CNTLID_DYNAMIC, 512..762, b'h'),
            k.clone(),
            ipo_data(512),
        ),
        connect_row(
            "connect-hostnqn-not-utf8",
            admin_spec(),
            (0, 0, 31),
            connect_data_patched(CNTLID_DYNAMIC, 520..522, 0xff),
            k.clone(),
            ipo_data(512),
        ),
        connect_row(
            "connect-host-not-allowed",
            admin_spec(),
            (0, 0, 31),
            connect_data(CNTLID_DYNAMIC, SUB0, STRANGER),
            k.clone(),
            dnr(1, 0x84),
        ),
        connect_row(
            "connect-admin-sqsize-0",
            admin_spec(),
            (0, 0, 0),
            good_admin.clone(),
            k.clone(),
            ipo_sqe(44),
        ),
        connect_row(
            "connect-admin-sqsize-32",
            admin_spec(),
            (0, 0, 32),
            good_admin.clone(),
            k.clone(),
            ipo_sqe(44),
        ),
        connect_row(
            "connect-io-unknown-cntlid",
            io_spec(NEXT_QID),
            (0, NEXT_QID, 31),
            connect_data(a.wrapping_add(100), SUB0, HOSTNQN),
            k.clone(),
            ipo_data(16),
        ),
        connect_row(
            "connect-io-cntlid-of-another-host",
            io_spec(NEXT_QID),
            (0, NEXT_QID, 31),
            connect_data(a, SUB0, HOST_B),
            k.clone(),
            ipo_data(16),
        ),
        connect_row(
            "connect-io-qid-beyond-granted",
            io_spec(env.granted_a + 1),
            (0, env.granted_a + 1, 31),
            good_io.clone(),
            k.clone(),
            ipo_sqe(42),
        ),
        connect_row(
            "connect-io-qid-in-use",
            io_spec(1),
            (0, 1, 31),
            good_io.clone(),
            k.clone(),
            dnr(0, 0x0c),
        ),
        connect_row(
            "connect-io-sqsize-0",
            io_spec(NEXT_QID),
            (0, NEXT_QID, 0),
            good_io.clone(),
            k.clone(),
            ipo_sqe(44),
        ),
        connect_row(
            "connect-io-sqsize-above-mqes",
            io_spec(NEXT_QID),
            (0, NEXT_QID, 32),
            good_io.clone(),
            k.clone(),
            ipo_sqe(44),
        ),
        connect_row(
            "connect-io-qid-0",
            io_spec(NEXT_QID),
            (0, 0, 31),
            good_io.clone(),
            k.clone(),
            ipo_sqe(42),
        ),
        Row {
            name: "connect-io-controller-not-enabled",
            input: Input::ConnectToDisabledController,
            expect: dnr(0, 0x0c),
        },
        Row {
            name: "connect-twice",
            input: Input::Connect {
                spec: io_spec(NEXT_QID),
                twice: true,
                recfmt: 0,
                qid: NEXT_QID,
                sqsize: 31,
                data: good_io.clone(),
                sgl: k.clone(),
            },
            expect: dnr(0, 0x0c),
        },
        // -- RDMA CM private data --
        cm("cm-private-data-empty", admin_spec(), vec![], InvalidLength),
        cm(
            "cm-private-data-short",
            admin_spec(),
            vec![0u8; 16],
            InvalidLength,
        ),
        cm_request("cm-recfmt-1", (1, 0, 32, 31), InvalidRecfmt),
        cm_request("cm-qid-65", (0, 65, 32, 31), InvalidQid),
        cm_request("cm-hsqsize-0", (0, 0, 32, 0), InvalidHsqsize),
        cm_request("cm-admin-hsqsize-32", (0, 0, 32, 32), InvalidHsqsize),
        cm_request("cm-io-hsqsize-above-mqes", (0, 2, 32, 32), InvalidHsqsize),
        cm_request("cm-hrqsize-0", (0, 0, 0, 31), InvalidHrqsize),
        cm_request("cm-io-hrqsize-above-limit", (0, 2, 33, 31), InvalidHrqsize),
        // -- configuration files --
        config_row(
            "config-broken-toml",
            "queue_depth = 32",
            "queue_depth = = 32",
            config_err("queue_depth", Some(14)),
        ),
        config_row(
            "config-unknown-key",
            "queue_depth = 32",
            "queue_depth = 32\ncolour = \"blue\"",
            config_err("colour", Some(15)),
        ),
        config_row(
            "config-bad-size",
            "size = \"1MiB\"",
            "size = \"1 furlong\"",
            config_err("subsystem.namespace.size", Some(23)),
        ),
        config_row(
            "config-size-not-whole-blocks",
            "size = \"1MiB\"",
            "size = 1000",
            config_err("subsystem.namespace.size", Some(23)),
        ),
        config_row(
            "config-duplicate-nsid",
            "nsid = 2",
            "nsid = 1",
            config_err("subsystem.namespace.nsid", Some(22)),
        ),
        config_row(
            "config-missing-nqn",
            "nqn = \"nqn.2026-11.io.nvmf-conform:sub0\"\n",
            "",
            config_err("nqn", Some(9)),
        ),
        config_row(
            "config-missing-namespace-size",
            "size = \"4MiB\"\n",
            "",
            config_err("size", Some(16)),
        ),
        config_row(
            "config-unsupported-lba-format",
            "lba_format = \"512\"",
            "lba_format = \"1024\"",
            config_err("subsystem.namespace.lba_format", Some(24)),
        ),
        config_row(
            "config-nsid-0",
            "nsid = 2",
            "nsid = 0",
            config_err("subsystem.namespace.nsid", Some(22)),
        ),
        config_row(
            "config-port-unknown-subsystem",
            "subsystem = \"nqn.2026-11.io.nvmf-conform:sub0\"",
            "subsystem = \"nqn.2026-11.io.nvmf-conform:nobody\"",
            config_err("port.subsystem", Some(7)),
        ),
        config_row(
            "config-bad-backing",
            "nsid = 2",
            "nsid = 2\nbacking = \"tape\"",
            config_err("subsystem.namespace.backing", Some(23)),
        ),
        config_row(
            "config-unknown-quirk",
            "quirks = []",
            "quirks = [\"be-nice\"]",
            config_err("quirks", Some(3)),
        ),
    ]
}

// ---- running a row ------------------------------------------------------------------

/// The persistent parties: controller A (the misbehaving host's) with its I/O queue 1,
/// controller B (another host) with its I/O queue 1.
struct Parties {
    a: Controller,
    a_io: IoQueue,
    b_io: IoQueue,
    _b: Controller,
    next_qid: u16,
}

impl Parties {
    /// A QID never used before (victim queues are closed, but their QIDs are not reused;
    /// A was granted 60 I/O queues).
    fn take_qid(&mut self) -> u16 {
        let q = self.next_qid;
        self.next_qid += 1;
        q
    }
}

/// What the host saw for one capsule.
fn outcome_of(results: Vec<Result<Status, InitiatorError>>) -> Outcome {
    let mut statuses = Vec::new();
    for r in results {
        match r {
            Ok(s) => statuses.push(s),
            Err(InitiatorError::TimedOut { .. }) => {}
            Err(InitiatorError::Completion { status, .. }) => return Outcome::Transport(status),
            Err(e) => return Outcome::Other(format!("{e}")),
        }
    }
    match statuses.as_slice() {
        [] => Outcome::Silent,
        [s] => Outcome::Nvme(*s),
        [s, rest @ ..] if rest.iter().all(|x| x == s) => Outcome::NvmeEach(statuses.len(), *s),
        _ => Outcome::Other(format!("mixed statuses {statuses:?}")),
    }
}

/// Sends `capsules` on `q` and collects what came back for each (silence included).
async fn send_capsules(q: &mut HostQueue, capsules: &[Vec<u8>]) -> Outcome {
    let mut cids = Vec::new();
    let mut posted_without_cid = false;
    for c in capsules {
        match misbehave::send_raw(q, c) {
            Ok(Some(cid)) => cids.push(cid),
            Ok(None) => posted_without_cid = true,
            Err(e) => return Outcome::Other(format!("post: {e}")),
        }
    }
    let mut results = Vec::new();
    for cid in cids {
        results.push(q.wait_response(cid, ANSWER).await.map(|r| r.cqe.status));
    }
    if posted_without_cid {
        // Give the target time to answer anything; then look for strays.
        tokio::time::sleep(ANSWER).await;
        match q.take_any_response() {
            Ok(Some(r)) => results.push(Ok(r.cqe.status)),
            Ok(None) => {}
            Err(e) => results.push(Err(e)),
        }
    }
    outcome_of(results)
}

/// A fresh CM-connected queue of `spec` (good private data).
async fn cm_queue(rig: &TargetRig, spec: QueueSpec) -> Result<HostQueue, InitiatorError> {
    let pd = rig.host.alloc_pd()?;
    let mut q = HostQueue::create(rig.host.clone(), pd, spec, ANSWER)?;
    let opts = CmOptions::for_queue(&q);
    cm_establish(&mut q, addr(4420), &opts, BOUND).await?;
    Ok(q)
}

/// Closes a queue a row used (bounded; a failed disconnect just frees it).
async fn close(q: HostQueue) {
    let _ = tokio::time::timeout(BOUND, q.disconnect(Duration::from_secs(1))).await;
}

/// Sends one Connect as the row says and returns what the target answered.
#[allow(clippy::too_many_arguments)]
async fn send_connect(
    q: &mut HostQueue,
    cid: u16,
    recfmt: u16,
    qid: u16,
    sqsize: u16,
    data: &[u8],
    sgl: &ConnectSgl,
) -> Outcome {
    let ctx = q.ctx().clone();
    let mut mr = None;
    let (sgl1, tail): (SglRepr, &[u8]) = match sgl {
        ConnectSgl::Keyed(len) => {
            let m = ctx
                .reg_mr(q.pd(), 1024, Access::LOCAL_WRITE | Access::REMOTE_READ)
                .unwrap();
            ctx.mr_write(m.id, 0, data).unwrap();
            mr = Some(m);
            (SglRepr::keyed(m.addr, *len, m.rkey), &[])
        }
        ConnectSgl::InCapsule(len) => (SglRepr::in_capsule(0, *len), data),
        ConnectSgl::Raw(s) => (*s, &[]),
    };
    let sqe = FabricsRepr::Connect(ConnectRepr {
        recfmt,
        sgl1,
        ..ConnectRepr::new(cid, qid, sqsize, 0)
    })
    .to_bytes()
    .unwrap();
    let mut capsule = sqe.to_vec();
    capsule.extend_from_slice(tail);
    let r = match misbehave::send_raw(q, &capsule) {
        Ok(_) => q.wait_response(cid, ANSWER).await,
        Err(e) => Err(e),
    };
    if let Some(m) = mr {
        let _ = ctx.dereg_mr(m.id);
    }
    match r {
        Ok(resp) => match ConnectResponse::decode(resp.cqe.status, resp.cqe.dw0()) {
            Ok(ConnectResponse::InvalidParameters(p)) if resp.cqe.status.dnr => {
                Outcome::ConnectInvalid(p)
            }
            _ => Outcome::Nvme(resp.cqe.status),
        },
        Err(e) => outcome_of(vec![Err(e)]),
    }
}

async fn run_row(rig: &TargetRig, p: &mut Parties, row: &Row) -> Outcome {
    match &row.input {
        Input::Io { depth, capsules } => {
            let qid = p.take_qid();
            let mut io = match p.a.connect_io_queue(qid, *depth, 8192, 1, 4096).await {
                Ok(io) => io,
                Err(e) => return Outcome::Other(format!("victim queue {qid}: {e}")),
            };
            let out = send_capsules(io.queue(), capsules).await;
            close(io.into_inner()).await;
            out
        }
        Input::Admin(capsule) => send_capsules(p.a.admin(), std::slice::from_ref(capsule)).await,
        Input::BeforeConnect { spec, capsule } => {
            let mut spec = *spec;
            if spec.qid == NEXT_QID {
                spec.qid = p.take_qid();
            }
            let mut q = match cm_queue(rig, spec).await {
                Ok(q) => q,
                Err(e) => return Outcome::Other(format!("cm: {e}")),
            };
            let out = send_capsules(&mut q, std::slice::from_ref(capsule)).await;
            close(q).await;
            out
        }
        Input::Cm { spec, private_data } => {
            let pd = rig.host.alloc_pd().unwrap();
            let mut q = HostQueue::create(rig.host.clone(), pd, *spec, ANSWER).unwrap();
            let r = misbehave::connect_with_private_data(
                &mut q,
                addr(4420),
                private_data.clone(),
                BOUND,
            )
            .await;
            match r {
                Err(InitiatorError::Rejected {
                    status: Some(s), ..
                }) => {
                    let _ = q.abort();
                    Outcome::CmReject(s)
                }
                Ok(_) => {
                    close(q).await;
                    Outcome::Other("accepted".into())
                }
                Err(e) => {
                    let _ = q.abort();
                    Outcome::Other(format!("{e}"))
                }
            }
        }
        Input::Connect {
            spec,
            twice,
            recfmt,
            qid,
            sqsize,
            data,
            sgl,
        } => {
            let mut spec = *spec;
            let mut qid = *qid;
            if spec.qid == NEXT_QID {
                spec.qid = p.take_qid();
            }
            if qid == NEXT_QID {
                qid = spec.qid;
            }
            let mut q = match cm_queue(rig, spec).await {
                Ok(q) => q,
                Err(e) => return Outcome::Other(format!("cm: {e}")),
            };
            if *twice {
                let first = send_connect(&mut q, 0x1, 0, qid, *sqsize, data, sgl).await;
                if first != Outcome::Nvme(Status::SUCCESS) {
                    close(q).await;
                    return Outcome::Other(format!("first Connect: {first:?}"));
                }
            }
            let out = send_connect(&mut q, 0x2, *recfmt, qid, *sqsize, data, sgl).await;
            close(q).await;
            out
        }
        Input::ConnectToDisabledController => {
            let mut cfg = host_config(SUB0);
            cfg.kato_ms = 0;
            let c = match Controller::connect(rig.host.clone(), addr(4420), cfg).await {
                Ok(c) => c,
                Err(e) => return Outcome::Other(format!("admin connect: {e}")),
            };
            let data = connect_data(c.cntlid(), SUB0, HOSTNQN);
            let out = match cm_queue(rig, io_spec(1)).await {
                Ok(mut q) => {
                    let out =
                        send_connect(&mut q, 0x2, 0, 1, 31, &data, &ConnectSgl::Keyed(1024)).await;
                    close(q).await;
                    out
                }
                Err(e) => Outcome::Other(format!("cm: {e}")),
            };
            let _ = tokio::time::timeout(BOUND, c.disconnect()).await;
            out
        }
        Input::Config(text) => match Config::parse("table.toml", text) {
            Ok(_) => Outcome::Other("config parsed".into()),
            Err(e) => {
                let shown = e.to_string();
                let want = match e.line {
                    Some(l) => format!("table.toml:{l}: {}:", e.field),
                    None => format!("table.toml: {}:", e.field),
                };
                if !shown.starts_with(&want) {
                    return Outcome::Other(format!("message `{shown}` does not start `{want}`"));
                }
                Outcome::Config {
                    field: e.field,
                    line: e.line,
                }
            }
        },
    }
}

/// Write + read back with data compared on `io` at `slba` (2 blocks of 4 KiB).
async fn still_serves(io: &mut IoQueue, slba: u64, seed: u64) -> Result<(), String> {
    write_read_compare(io, slba, &pattern(8192, seed)).await
}

#[tokio::test(start_paused = true)]
async fn malformed_input_table() {
    let rig = start(70, TABLE_CONFIG);
    // No keep-alive timer: rows wait seconds of virtual time for answers that never come.
    let mut cfg_a = host_config(SUB0);
    cfg_a.kato_ms = 0;
    let mut a = connect(&rig, 4420, cfg_a).await;
    let (granted, _) = a.set_number_of_queues(60).await.unwrap();
    let a_io = a.connect_io_queue(1, 32, 4096, 1, 4096).await.unwrap();
    let mut cfg_b = host_config(SUB0);
    cfg_b.hostnqn = HOST_B.into();
    cfg_b.kato_ms = 0;
    let mut b = connect(&rig, 4420, cfg_b).await;
    let b_io = b.connect_io_queue(1, 32, 4096, 1, 4096).await.unwrap();
    let env = Env {
        cntlid_a: a.cntlid(),
        granted_a: granted as u16,
    };
    let mut p = Parties {
        a,
        a_io,
        b_io,
        _b: b,
        next_qid: 2,
    };
    let rows = table(&env);
    let mut failures = Vec::new();
    let only = std::env::var("MALFORMED_ROW").ok();
    for (i, row) in rows.iter().enumerate() {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|x| row.name.contains(x)))
        {
            continue;
        }
        let got = tokio::time::timeout(Duration::from_secs(60), run_row(&rig, &mut p, row))
            .await
            .unwrap_or_else(|_| Outcome::Other("row did not finish within 60 s".into()));
        if got != row.expect {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}",
                row.name, row.expect
            ));
        }
        if let Err(e) = p.a.keep_alive().await {
            failures.push(format!("{}: controller A's admin queue: {e}", row.name));
        }
        let slba = 2 * i as u64;
        if let Err(e) = still_serves(&mut p.a_io, slba, i as u64).await {
            failures.push(format!("{}: controller A's other queue: {e}", row.name));
        }
        if let Err(e) = still_serves(&mut p.b_io, 512 + slba, 1000 + i as u64).await {
            failures.push(format!("{}: controller B: {e}", row.name));
        }
    }
    println!(
        "{} malformed inputs, {} failures",
        rows.len(),
        failures.len()
    );
    assert!(rows.len() >= 40);
    if !failures.is_empty() {
        for l in rig.target.events() {
            println!("event: {l}");
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Nothing is left half-done in the engine.
    assert_eq!(settle(rig.target.engine()).await, 0);
}

#[test]
fn row_names_are_unique() {
    let rows = table(&Env::placeholder());
    let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate row names");
}

#[test]
fn every_row_is_documented() {
    let rows = table(&Env::placeholder());
    reference_target::testing::tables::assert_documented(
        "malformed-inputs.md",
        rows.iter().map(|r| r.name),
    );
}
