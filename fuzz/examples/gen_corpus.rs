//! Writes the seed corpus, `fuzz/corpus/<target>/<name>`: valid encodings made by the
//! wire emitters (every SQE command, SGL descriptor kind, Fabrics command, Connect data,
//! CM private data, discovery log), capsules for the `target_*` targets, and the fixture configs and
//! profiles. Deterministic; rerun it when a format changes:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```
//!
//! Files are named after what they hold; existing files of the same name are replaced,
//! others are left alone (libFuzzer's own additions never go there: ci/fuzz-smoke.sh
//! gives libFuzzer a scratch corpus directory first).

use std::path::{Path, PathBuf};

use harness::wire::{
    CmAcceptRepr, CmRejectRepr, CmRejectStatus, CmRequestRepr, ConnectDataRepr, ConnectRepr,
    CqeRepr, DataPointer, DiscoveryEntryRepr, DiscoveryLogHeaderRepr, DiscoveryLogRepr, DsmCommand,
    FabricsRepr, PropertyGetRepr, PropertySetRepr, PropertySize, Psdt, RdmaTsas, RwCommand,
    SglAddressing, SglRepr, SqeCommand, SqeRepr, Status, WriteZeroesCommand, ADRFAM_IPV4,
    CMS_RDMA_CM, CNTLID_DYNAMIC, PRTYPE_NONE, QPTYPE_RC, SGL_DESC_LEN, SUBTYPE_CURRENT_DISCOVERY,
    SUBTYPE_NVME, TREQ_DISABLE_SQFLOW, TREQ_NOT_SPECIFIED, TRTYPE_RDMA,
};
use nvmf_conform_fuzz::world::{config, SUB0, SUB1};

const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7374";

struct Out {
    root: PathBuf,
    files: usize,
    bytes: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
        self.files += 1;
        self.bytes += bytes.len();
    }
}

fn keyed() -> SglRepr {
    SglRepr::keyed(0x1000, 4096, 0x1234)
}

fn sqes() -> Vec<(&'static str, SqeRepr)> {
    let rw = RwCommand::new(8, 1);
    let mut fua = RwCommand::new(0, 8);
    fua.fua = true;
    vec![
        (
            "read-keyed",
            SqeRepr::new(1, 1, SqeCommand::Read(rw), keyed()),
        ),
        (
            "read-keyed-invalidate",
            SqeRepr::new(
                2,
                1,
                SqeCommand::Read(rw),
                SglRepr::keyed_invalidate(0x2000, 4096, 0x99),
            ),
        ),
        (
            "write-in-capsule",
            SqeRepr::new(3, 1, SqeCommand::Write(rw), SglRepr::in_capsule(0, 4096)),
        ),
        (
            "write-fua-keyed",
            SqeRepr::new(4, 1, SqeCommand::Write(fua), keyed()),
        ),
        (
            "flush",
            SqeRepr::new(5, 1, SqeCommand::Flush, SglRepr::keyed(0, 0, 0)),
        ),
        (
            "write-zeroes",
            SqeRepr::new(
                6,
                1,
                SqeCommand::WriteZeroes(WriteZeroesCommand {
                    slba: 16,
                    nlb: 3,
                    ..Default::default()
                }),
                SglRepr::keyed(0, 0, 0),
            ),
        ),
        (
            "dsm-deallocate",
            SqeRepr::new(
                7,
                1,
                SqeCommand::DatasetManagement(DsmCommand {
                    nr: 0,
                    ad: true,
                    ..Default::default()
                }),
                SglRepr::in_capsule(0, 16),
            ),
        ),
        (
            "unknown-opcode",
            SqeRepr::new(
                8,
                1,
                SqeCommand::Other {
                    opcode: 0x7e,
                    cdw: [0; 6],
                },
                SglRepr::keyed(0, 0, 0),
            ),
        ),
        (
            "read-nsid2",
            SqeRepr::new(9, 2, SqeCommand::Read(rw), keyed()),
        ),
    ]
}

fn admin(cid: u16, opcode: u8, nsid: u32, cdw: [u32; 6], sgl: SglRepr) -> Vec<u8> {
    SqeRepr::new(cid, nsid, SqeCommand::Other { opcode, cdw }, sgl)
        .to_bytes()
        .unwrap()
        .to_vec()
}

fn connect_capsule(qid: u16, cntlid: u16, subnqn: &str) -> Vec<u8> {
    let sqsize = if qid == 0 { 31 } else { 31 };
    let mut v = FabricsRepr::Connect(ConnectRepr::new(1, qid, sqsize, 0))
        .to_bytes()
        .unwrap()
        .to_vec();
    let data = ConnectDataRepr {
        hostid: *b"nvmf-conform-hst",
        cntlid,
        subnqn: subnqn.into(),
        hostnqn: HOSTNQN.into(),
    };
    v.extend_from_slice(&data.to_bytes().unwrap());
    v
}

fn with_sel(sel: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![sel];
    v.extend_from_slice(bytes);
    v
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut out = Out {
        root,
        files: 0,
        bytes: 0,
    };

    // SQEs (I/O commands; the admin ones go through parse_raw too).
    for (name, s) in sqes() {
        out.put("wire_sqe", name, &s.to_bytes().unwrap());
    }
    let mut prp = SqeRepr::new(10, 1, SqeCommand::Read(RwCommand::new(0, 1)), keyed());
    prp.psdt = Psdt::Prp;
    prp.dptr = DataPointer::Raw([0xab; 16]);
    out.put("wire_sqe", "read-prp", &prp.to_bytes().unwrap());
    out.put(
        "wire_sqe",
        "admin-identify",
        &admin(11, 0x06, 0, [1, 0, 0, 0, 0, 0], keyed()),
    );

    // SGL descriptors, one per kind.
    let sgls = [
        ("keyed", SglRepr::keyed(0xdead_0000, 0x1000, 0x42)),
        (
            "keyed-invalidate",
            SglRepr::keyed_invalidate(0x1000, 0xff_ffff, 7),
        ),
        ("in-capsule", SglRepr::in_capsule(0, 1024)),
        (
            "data-block-address",
            SglRepr::DataBlock {
                addressing: SglAddressing::Address,
                address: 0x8000,
                length: 512,
            },
        ),
        (
            "bit-bucket",
            SglRepr::BitBucket {
                addressing: SglAddressing::Address,
                length: 4096,
            },
        ),
        (
            "segment",
            SglRepr::Segment {
                addressing: SglAddressing::Offset,
                address: 0,
                length: 32,
            },
        ),
        (
            "last-segment",
            SglRepr::LastSegment {
                addressing: SglAddressing::Address,
                address: 0x4000,
                length: 16,
            },
        ),
    ];
    for (name, s) in sgls {
        let mut b = [0u8; SGL_DESC_LEN];
        s.emit(&mut b).unwrap();
        out.put("wire_sgl", name, &b);
    }

    // CQEs.
    let cqes = [
        (
            "success",
            CqeRepr {
                result: 1,
                sq_head: 3,
                sq_id: 1,
                cid: 7,
                phase: false,
                status: Status::SUCCESS,
            },
        ),
        (
            "invalid-field-dnr",
            CqeRepr {
                result: 0,
                sq_head: 0,
                sq_id: 0,
                cid: 9,
                phase: true,
                status: Status::INVALID_FIELD.with_dnr().with_more().with_crd(2),
            },
        ),
    ];
    for (name, c) in cqes {
        out.put("wire_cqe", name, &c.to_bytes().unwrap());
        // Status words: the CQE's own last two bytes.
        out.put("wire_status", name, &c.to_bytes().unwrap()[14..]);
    }
    out.put(
        "wire_status",
        "opcodes",
        &[0x00, 0x01, 0x02, 0x06, 0x08, 0x09, 0x18, 0x7f],
    );

    // Fabrics commands.
    let fabrics = [
        (
            "connect-admin",
            FabricsRepr::Connect(ConnectRepr::new(1, 0, 31, 5000)),
        ),
        (
            "connect-io-keyed",
            FabricsRepr::Connect(ConnectRepr {
                sgl1: SglRepr::keyed(0x1000, 1024, 0x77),
                ..ConnectRepr::new(2, 3, 127, 0)
            }),
        ),
        (
            "property-get-cap",
            FabricsRepr::PropertyGet(PropertyGetRepr {
                psdt: Psdt::SglMptrContiguous,
                cid: 3,
                sgl1: SglRepr::keyed(0, 0, 0),
                size: PropertySize::Eight,
                offset: 0,
            }),
        ),
        (
            "property-set-cc",
            FabricsRepr::PropertySet(PropertySetRepr {
                psdt: Psdt::SglMptrContiguous,
                cid: 4,
                sgl1: SglRepr::keyed(0, 0, 0),
                size: PropertySize::Four,
                offset: 0x14,
                value: 0x0046_0001,
            }),
        ),
    ];
    for (name, f) in &fabrics {
        out.put("wire_fabrics", name, &f.to_bytes().unwrap());
    }
    // Connect response status + DW0 (the decoder part of wire_fabrics).
    let mut ipo = (Status::CONNECT_INVALID_PARAMETERS.to_field())
        .to_le_bytes()
        .to_vec();
    ipo.extend_from_slice(&0x0001_0100u32.to_le_bytes());
    out.put("wire_fabrics", "connect-response-ipo", &ipo);

    // Connect data.
    for (name, cntlid, sub) in [("admin", CNTLID_DYNAMIC, SUB0), ("io", 1, SUB1)] {
        let d = ConnectDataRepr {
            hostid: *b"nvmf-conform-hst",
            cntlid,
            subnqn: sub.into(),
            hostnqn: HOSTNQN.into(),
        };
        out.put("wire_connect_data", name, &d.to_bytes().unwrap());
    }

    // CM private data.
    let req = CmRequestRepr {
        recfmt: 0,
        qid: 1,
        hrqsize: 32,
        hsqsize: 31,
        cntlid: 0,
    };
    out.put("wire_cm", "request", &req.to_bytes());
    out.put(
        "wire_cm",
        "accept",
        &CmAcceptRepr {
            recfmt: 0,
            crqsize: 32,
        }
        .to_bytes(),
    );
    out.put(
        "wire_cm",
        "reject",
        &CmRejectRepr {
            recfmt: 0,
            status: CmRejectStatus::InvalidHsqsize,
        }
        .to_bytes(),
    );

    // Discovery log: one RDMA entry alone, and a whole log (header + two entries) as the
    // fuzz world's target would list its ports.
    let entry = |subtype: u8, portid: u16, trsvcid: &str, subnqn: &str| DiscoveryEntryRepr {
        trtype: TRTYPE_RDMA,
        adrfam: ADRFAM_IPV4,
        subtype,
        treq: TREQ_NOT_SPECIFIED | TREQ_DISABLE_SQFLOW,
        portid,
        cntlid: CNTLID_DYNAMIC,
        asqsz: 32,
        eflags: 0,
        trsvcid: trsvcid.into(),
        subnqn: subnqn.into(),
        traddr: "127.0.10.1".into(),
        rdma: Some(RdmaTsas {
            qptype: QPTYPE_RC,
            prtype: PRTYPE_NONE,
            cms: CMS_RDMA_CM,
            pkey: 0,
        }),
    };
    let sub0 = entry(SUBTYPE_NVME, 1, "4420", SUB0);
    out.put("wire_discovery", "entry-rdma", &sub0.to_bytes().unwrap());
    let log = DiscoveryLogRepr {
        header: DiscoveryLogHeaderRepr {
            genctr: 1,
            numrec: 2,
            recfmt: 0,
        },
        entries: vec![
            sub0,
            entry(
                SUBTYPE_CURRENT_DISCOVERY,
                1,
                "4420",
                "nqn.2014-08.org.nvmexpress.discovery",
            ),
        ],
    };
    out.put(
        "wire_discovery",
        "log-two-entries",
        &log.to_bytes().unwrap(),
    );

    // Configs and profiles.
    for dir in ["configs", "profiles"] {
        let target = if dir == "configs" {
            "config_parse"
        } else {
            "profile_parse"
        };
        let mut names: Vec<_> = std::fs::read_dir(fixtures.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        names.sort();
        for p in names {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            out.put(target, &name, &std::fs::read(&p).unwrap());
        }
    }
    out.put("config_parse", "fuzz-world.toml", config().as_bytes());

    // control_request: one of each request, and the replies a runner reads.
    control_corpus(&mut out);

    // target_capsule: selector 0 = offloaded I/O, 1 = software I/O, 2/3 = admin.
    for (name, s) in sqes() {
        let mut cap = s.to_bytes().unwrap().to_vec();
        if name == "write-in-capsule" {
            cap.extend((0..4096u32).map(|i| (i * 7) as u8));
        }
        if name == "dsm-deallocate" {
            let mut range = [0u8; 16];
            range[4..8].copy_from_slice(&8u32.to_le_bytes());
            range[8..16].copy_from_slice(&32u64.to_le_bytes());
            cap.extend_from_slice(&range);
        }
        if matches!(
            name,
            "read-keyed" | "write-in-capsule" | "flush" | "dsm-deallocate" | "unknown-opcode"
        ) {
            out.put(
                "target_capsule",
                &format!("offloaded-{name}"),
                &with_sel(0, &cap),
            );
        }
        if matches!(name, "write-in-capsule" | "write-zeroes" | "read-nsid2") {
            out.put(
                "target_capsule",
                &format!("software-{name}"),
                &with_sel(1, &cap),
            );
        }
    }
    let zero = SglRepr::keyed(0, 0, 0);
    let admins = [
        (
            "identify-ctrl",
            admin(20, 0x06, 0, [1, 0, 0, 0, 0, 0], keyed()),
        ),
        (
            "get-log-page",
            admin(21, 0x02, 0xffff_ffff, [0x00ff_0001, 0, 0, 0, 0, 0], keyed()),
        ),
        (
            "set-features-nq",
            admin(22, 0x09, 0, [0x07, 0x0003_0003, 0, 0, 0, 0], zero),
        ),
        ("keep-alive", admin(23, 0x18, 0, [0; 6], zero)),
    ];
    for (name, cap) in &admins {
        out.put(
            "target_capsule",
            &format!("admin-enabled-{name}"),
            &with_sel(3, cap),
        );
    }
    for (name, f) in &fabrics[2..] {
        out.put(
            "target_capsule",
            &format!("admin-{name}"),
            &with_sel(2, &f.to_bytes().unwrap()),
        );
    }

    // target_connect: 0 = first capsule of an admin queue, 1 = of an I/O queue, 2 = CM data.
    out.put(
        "target_connect",
        "admin-connect",
        &with_sel(0, &connect_capsule(0, CNTLID_DYNAMIC, SUB0)),
    );
    out.put(
        "target_connect",
        "io-connect-cntlid1",
        &with_sel(1, &connect_capsule(5, 1, SUB0)),
    );
    out.put(
        "target_connect",
        "cm-request-admin",
        &with_sel(2, &CmRequestRepr { qid: 0, ..req }.to_bytes()),
    );
    out.put(
        "target_connect",
        "cm-request-io",
        &with_sel(2, &CmRequestRepr { qid: 6, ..req }.to_bytes()),
    );

    eprintln!(
        "gen_corpus: {} files, {} bytes under {}",
        out.files,
        out.bytes,
        out.root.display()
    );
}

/// Seeds of `control_request`: every request the runner sends, and the target's replies.
fn control_corpus(out: &mut Out) {
    use harness::api::Profile;
    use harness::backend::emulated::{CmdMatch, Fault};
    use reference_target::quirks::Quirks;
    use reference_target::remote::proto::{Reply, Request, PROTOCOL};
    let requests = [
        (
            "hello",
            Request::Hello {
                protocol: PROTOCOL,
                proof: Some("ab".repeat(32)),
            },
        ),
        (
            "start",
            Request::Start {
                config: config(),
                profile: Profile::builtin("tight").unwrap(),
                quirks: Quirks::none(),
            },
        ),
        ("stop", Request::Stop {}),
        (
            "inject-timeout",
            Request::Inject {
                subnqn: SUB0.into(),
                nsid: 1,
                fault: Fault::Timeout {
                    on: CmdMatch::Nth(2),
                    delay: None,
                },
            },
        ),
        (
            "backend-blocks",
            Request::BackendBlocks {
                subnqn: SUB1.into(),
                nsid: 1,
                slba: 8,
                count: 2,
            },
        ),
        (
            "wait-event",
            Request::WaitEvent {
                needle: "NVME_PCI_ERR".into(),
                bound_ms: 5000,
            },
        ),
        (
            "real-fault",
            Request::RealFault {
                fault: harness::backend::vfio::broker::RealFault::Stall,
            },
        ),
    ];
    for (name, r) in requests {
        let line = serde_json::to_string(&r).unwrap();
        out.put("control_request", name, line.as_bytes());
    }
    let replies = [
        (
            "reply-hello",
            Reply::Hello {
                protocol: PROTOCOL,
                version: "0.1.0".into(),
                fabric: "verbs".into(),
                device: "rxe0".into(),
                target: "reference".into(),
                caps: None,
                real: Some(reference_target::remote::LentReal {
                    address: "0000:00:04.0".into(),
                    facts: harness::case::RealBackendFacts {
                        format: harness::backend::emulated::LbaFormat::L512,
                        blocks: 524288,
                        broker: true,
                    },
                }),
                proof: Some("cd".repeat(32)),
            },
        ),
        (
            "reply-stopped",
            Reply::Stopped {
                trace: vec!["device create_srq".into()],
                events: vec!["NVME_PCI_ERR".into()],
            },
        ),
        (
            "reply-error",
            Reply::Error {
                message: "no target is running".into(),
            },
        ),
    ];
    for (name, r) in replies {
        let line = serde_json::to_string(&r).unwrap();
        out.put("control_request", name, line.as_bytes());
    }
}
