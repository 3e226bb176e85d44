//! Tests of `discovery`.

use super::*;
use crate::wire::testing::reserved;
use crate::wire::WireError;
use crate::wire::CNTLID_DYNAMIC;
use proptest::prelude::*;

const SUB: &str = "nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";

/// An RDMA entry as Linux nvmet writes it (`nvmet_format_discovery_entry`).
fn rdma_by_hand() -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[0] = 1; // TRTYPE RDMA
    b[1] = 1; // ADRFAM IPv4
    b[2] = 2; // SUBTYPE NVM subsystem
    b[3] = 0b110; // TREQ: not required, SQ flow control disable supported
    b[4..6].copy_from_slice(&[0x01, 0x00]); // PORTID 1
    b[6..8].copy_from_slice(&[0xff, 0xff]); // CNTLID dynamic
    b[8..10].copy_from_slice(&[0x20, 0x00]); // ASQSZ 32
    b[10..12].copy_from_slice(&[0x00, 0x00]); // EFLAGS
    b[32..64].fill(b' ');
    b[32..36].copy_from_slice(b"4420");
    b[256..256 + SUB.len()].copy_from_slice(SUB.as_bytes());
    b[512..768].fill(b' ');
    b[512..521].copy_from_slice(b"10.0.2.15");
    b[768] = 1; // QPTYPE reliable connected
    b[769] = 1; // PRTYPE none
    b[770] = 1; // CMS RDMA_CM
    b[776..778].copy_from_slice(&[0xff, 0xff]); // PKEY
    b
}

fn rdma_entry() -> DiscoveryEntryRepr {
    DiscoveryEntryRepr {
        trtype: TRTYPE_RDMA,
        adrfam: ADRFAM_IPV4,
        subtype: SUBTYPE_NVME,
        treq: TREQ_NOT_REQUIRED | TREQ_DISABLE_SQFLOW,
        portid: 1,
        cntlid: CNTLID_DYNAMIC,
        asqsz: 32,
        eflags: 0,
        trsvcid: "4420".into(),
        subnqn: SUB.into(),
        traddr: "10.0.2.15".into(),
        rdma: Some(RdmaTsas {
            qptype: QPTYPE_RC,
            prtype: PRTYPE_NONE,
            cms: CMS_RDMA_CM,
            pkey: 0xffff,
        }),
    }
}

#[test]
fn entry_layout_by_hand() {
    let b = rdma_by_hand();
    assert_eq!(DiscoveryEntryRepr::parse_bytes(&b).unwrap(), rdma_entry());
    assert_eq!(rdma_entry().to_bytes().unwrap(), b);
    let v = DiscoveryEntry::new_checked(&b[..]).unwrap();
    assert_eq!(v.portid(), 1);
    assert_eq!(v.asqsz(), 32);
    assert_eq!(&v.trsvcid_field()[..5], b"4420 ");
    assert_eq!(v.rdma_pkey(), 0xffff);
    assert_eq!(field::TRSVCID.start, 32);
    assert_eq!(field::SUBNQN.start, 256);
    assert_eq!(field::TRADDR.start, 512);
    assert_eq!(field::TSAS.start, 768);
}

#[test]
fn header_layout_by_hand() {
    let mut b = vec![0u8; 1024];
    b[0..8].copy_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]); // GENCTR 7
    b[8..16].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]); // NUMREC 2
    let h = DiscoveryLogHeaderRepr::parse_bytes(&b).unwrap();
    assert_eq!(
        h,
        DiscoveryLogHeaderRepr {
            genctr: 7,
            numrec: 2,
            recfmt: 0
        }
    );
    assert_eq!(h.to_bytes().unwrap(), b);
    b[1023] = 1;
    assert_eq!(
        reserved(DiscoveryLogHeaderRepr::parse_bytes(&b)),
        ("discovery log header reserved bytes 1023:18", 1023)
    );
}

#[test]
fn text_padding() {
    // NUL padding (older targets) reads the same as space padding; bytes after the
    // first NUL are ignored.
    let mut b = rdma_by_hand();
    b[32..64].fill(0);
    b[32..36].copy_from_slice(b"4420");
    b[40] = 0xff;
    b[512..768].fill(0);
    b[512..521].copy_from_slice(b"10.0.2.15");
    b[521] = b' ';
    assert_eq!(DiscoveryEntryRepr::parse_bytes(&b).unwrap(), rdma_entry());
    // Non-ASCII before the padding.
    let mut b = rdma_by_hand();
    b[513] = 0xc3;
    assert_eq!(
        DiscoveryEntryRepr::parse_bytes(&b),
        Err(WireError::BadValue {
            field: "traddr (non-ASCII byte)",
            value: 0xc3
        })
    );
    // A field of 32 characters, no padding at all.
    let mut b = rdma_by_hand();
    b[32..64].fill(b'9');
    assert_eq!(
        DiscoveryEntryRepr::parse_bytes(&b).unwrap().trsvcid,
        "9".repeat(32)
    );
}

#[test]
fn subnqn_rules() {
    let mut b = rdma_by_hand();
    b[256..512].fill(b'n');
    assert_eq!(
        DiscoveryEntryRepr::parse_bytes(&b),
        Err(WireError::NqnUnterminated {
            field: "subnqn",
            max: 255
        })
    );
    b[511] = 0;
    assert_eq!(
        DiscoveryEntryRepr::parse_bytes(&b).unwrap().subnqn.len(),
        255
    );
    b[256] = 0xff;
    assert_eq!(
        DiscoveryEntryRepr::parse_bytes(&b),
        Err(WireError::NqnInvalid { field: "subnqn" })
    );
}

#[test]
fn reserved_and_treq() {
    for (at, what) in [
        (12, "discovery entry reserved bytes 31:12"),
        (255, "discovery entry reserved bytes 255:64"),
        (771, "discovery entry rdma tsas reserved bytes 775:771"),
        (1023, "discovery entry rdma tsas reserved bytes 1023:778"),
    ] {
        let mut b = rdma_by_hand();
        b[at] = 1;
        assert_eq!(reserved(DiscoveryEntryRepr::parse_bytes(&b)), (what, at));
    }
    let mut b = rdma_by_hand();
    b[3] = 0x08;
    assert_eq!(
        reserved(DiscoveryEntryRepr::parse_bytes(&b)),
        ("discovery entry treq reserved bits 7:3", 3)
    );
    b[3] = 0x03;
    assert!(matches!(
        DiscoveryEntryRepr::parse_bytes(&b),
        Err(WireError::BadValue { value: 3, .. })
    ));
    // A TCP entry: the TSAS is not interpreted, and emitted as zeros.
    let mut b = rdma_by_hand();
    b[0] = TRTYPE_TCP;
    b[771] = 9;
    let r = DiscoveryEntryRepr::parse_bytes(&b).unwrap();
    assert_eq!(r.rdma, None);
    assert!(r.to_bytes().unwrap()[768..].iter().all(|&x| x == 0));
}

#[test]
fn emit_errors() {
    let ok = rdma_entry();
    let cases: [(DiscoveryEntryRepr, WireError); 7] = [
        (
            DiscoveryEntryRepr {
                trsvcid: "1".repeat(33),
                ..ok.clone()
            },
            WireError::BadValue {
                field: "trsvcid (length over 32 bytes)",
                value: 33,
            },
        ),
        (
            DiscoveryEntryRepr {
                traddr: "é".into(),
                ..ok.clone()
            },
            WireError::BadValue {
                field: "traddr (non-ASCII byte)",
                value: 0xc3,
            },
        ),
        (
            DiscoveryEntryRepr {
                traddr: "a\0b".into(),
                ..ok.clone()
            },
            WireError::BadValue {
                field: "traddr (NUL byte)",
                value: 0,
            },
        ),
        (
            DiscoveryEntryRepr {
                trsvcid: "4420 ".into(),
                ..ok.clone()
            },
            WireError::BadValue {
                field: "trsvcid (ends in a space, which reads back as padding)",
                value: 0x20,
            },
        ),
        (
            DiscoveryEntryRepr {
                subnqn: "x".repeat(256),
                ..ok.clone()
            },
            WireError::NqnTooLong {
                field: "subnqn",
                len: 256,
                max: 255,
            },
        ),
        (
            DiscoveryEntryRepr {
                rdma: None,
                ..ok.clone()
            },
            WireError::BadValue {
                field: "discovery entry rdma (present exactly when trtype is 1, RDMA)",
                value: 1,
            },
        ),
        (
            DiscoveryEntryRepr {
                treq: 0x10,
                ..ok.clone()
            },
            WireError::Reserved {
                what: "discovery entry treq reserved bits 7:3",
                offset: 3,
            },
        ),
    ];
    for (r, e) in cases {
        assert_eq!(r.to_bytes(), Err(e));
    }
    assert!(ok.emit(&mut [0u8; 1023]).is_err());
    for n in [0, 1, 511, 1023] {
        assert_eq!(
            DiscoveryEntryRepr::parse_bytes(&vec![0u8; n]),
            Err(WireError::Truncated {
                what: "discovery log entry",
                need: 1024,
                got: n
            })
        );
    }
}

#[test]
fn whole_log() {
    let log = DiscoveryLogRepr {
        header: DiscoveryLogHeaderRepr {
            genctr: 3,
            numrec: 2,
            recfmt: 0,
        },
        entries: vec![
            rdma_entry(),
            DiscoveryEntryRepr {
                trtype: TRTYPE_TCP,
                subtype: SUBTYPE_CURRENT_DISCOVERY,
                subnqn: "nqn.2014-08.org.nvmexpress.discovery".into(),
                rdma: None,
                ..rdma_entry()
            },
        ],
    };
    let b = log.to_bytes().unwrap();
    assert_eq!(b.len(), 3 * 1024);
    assert_eq!(&b[1024..2048], &rdma_by_hand()[..]);
    assert_eq!(DiscoveryLogRepr::parse_bytes(&b).unwrap(), log);
    // Trailing bytes are ignored.
    let mut longer = b.clone();
    longer.extend_from_slice(&[0xaa; 100]);
    assert_eq!(DiscoveryLogRepr::parse_bytes(&longer).unwrap(), log);
    // One byte short of the last entry.
    assert_eq!(
        DiscoveryLogRepr::parse_bytes(&b[..3071]),
        Err(WireError::Truncated {
            what: "discovery log",
            need: 3072,
            got: 3071
        })
    );
    // numrec must match the entries when emitting.
    let mut bad = log.clone();
    bad.header.numrec = 5;
    assert!(matches!(
        bad.to_bytes(),
        Err(WireError::BadValue { value: 5, .. })
    ));
    assert!(log.emit(&mut vec![0u8; 3071]).is_err());
}

#[test]
fn huge_numrec_is_a_clean_error() {
    let h = DiscoveryLogHeaderRepr {
        genctr: 0,
        numrec: u64::MAX,
        recfmt: 0,
    };
    let b = h.to_bytes().unwrap();
    assert_eq!(
        DiscoveryLogRepr::parse_bytes(&b),
        Err(WireError::Truncated {
            what: "discovery log",
            need: usize::MAX,
            got: 1024
        })
    );
    let mut b = b;
    b[8..16].copy_from_slice(&(u64::MAX / 1024).to_le_bytes());
    assert!(matches!(
        DiscoveryLogRepr::parse_bytes(&b),
        Err(WireError::Truncated { .. })
    ));
    assert_eq!(
        DiscoveryLogRepr::parse_bytes(&[]),
        Err(WireError::Truncated {
            what: "discovery log header",
            need: 1024,
            got: 0
        })
    );
}

// ------------------------------------------------------------ properties

/// ASCII text (no NUL, no trailing space) of at most `max` bytes.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[\\x01-\\x7f]{{0,{max}}}"))
        .unwrap()
        .prop_map(|s| s.trim_end_matches(' ').to_owned())
}

fn subnqn() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9.:_-]{0,255}",
        "nqn\\.2014-08\\.org\\.nvmexpress:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[^\\x00]{0,60}",
    ]
    .prop_filter("at most 255 bytes", |s| s.len() <= SUBNQN_MAX_LEN)
}

fn rdma_tsas() -> impl Strategy<Value = RdmaTsas> {
    any::<(u8, u8, u8, u16)>().prop_map(|(qptype, prtype, cms, pkey)| RdmaTsas {
        qptype,
        prtype,
        cms,
        pkey,
    })
}

fn entry() -> impl Strategy<Value = DiscoveryEntryRepr> {
    (
        prop_oneof![Just(TRTYPE_RDMA), any::<u8>()],
        any::<(u8, u8)>(),
        (0u8..3, any::<bool>()),
        any::<[u16; 4]>(),
        (text(32), subnqn(), text(256)),
        rdma_tsas(),
    )
        .prop_map(
            |(
                trtype,
                (adrfam, subtype),
                (sc, sqflow),
                [portid, cntlid, asqsz, eflags],
                (trsvcid, subnqn, traddr),
                tsas,
            )| DiscoveryEntryRepr {
                trtype,
                adrfam,
                subtype,
                treq: sc | if sqflow { TREQ_DISABLE_SQFLOW } else { 0 },
                portid,
                cntlid,
                asqsz,
                eflags,
                trsvcid,
                subnqn,
                traddr,
                rdma: (trtype == TRTYPE_RDMA).then_some(tsas),
            },
        )
}

proptest! {
    #[test]
    fn header_round_trip(
        genctr in any::<u64>(),
        numrec in any::<u64>(),
        recfmt in any::<u16>(),
    ) {
        let h = DiscoveryLogHeaderRepr { genctr, numrec, recfmt };
        let b = h.to_bytes()?;
        prop_assert_eq!(b.len(), h.buffer_len());
        prop_assert_eq!(DiscoveryLogHeaderRepr::parse_bytes(&b)?, h);
    }

    #[test]
    fn entry_round_trip(r in entry()) {
        let b = r.to_bytes()?;
        prop_assert_eq!(b.len(), r.buffer_len());
        prop_assert_eq!(DiscoveryEntryRepr::parse_bytes(&b)?, r.clone());
        prop_assert!(DiscoveryEntryRepr::parse_bytes(&b[..1023]).is_err());
    }

    #[test]
    fn log_round_trip(
        genctr in any::<u64>(),
        entries in proptest::collection::vec(entry(), 0..4),
    ) {
        let log = DiscoveryLogRepr {
            header: DiscoveryLogHeaderRepr { genctr, numrec: entries.len() as u64, recfmt: 0 },
            entries,
        };
        let b = log.to_bytes()?;
        prop_assert_eq!(b.len(), log.buffer_len());
        prop_assert_eq!(DiscoveryLogRepr::parse_bytes(&b)?, log);
        if b.len() > DISCOVERY_LOG_HEADER_LEN {
            let short = DiscoveryLogRepr::parse_bytes(&b[..b.len() - 1]);
            let is_truncated = matches!(short, Err(WireError::Truncated { .. }));
            prop_assert!(is_truncated);
        }
    }

    /// Mostly-valid entries: random bytes with the reserved ranges zeroed, so that
    /// the text and TSAS rules are reached. Whatever parses re-emits to bytes that
    /// parse to the same repr.
    #[test]
    fn random_entry_bytes(
        b in proptest::collection::vec(any::<u8>(), 1024),
        trtype in prop_oneof![Just(TRTYPE_RDMA), Just(TRTYPE_TCP)],
        ascii in any::<bool>(),
    ) {
        let mut b = b;
        b[field::TRTYPE] = trtype;
        b[field::TREQ] &= 0x06;
        b[field::RESERVED1].fill(0);
        b[field::RESERVED2].fill(0);
        b[field::RDMA_RESERVED1].fill(0);
        b[field::RDMA_RESERVED2].fill(0);
        b[field::SUBNQN.end - 1] = 0;
        if ascii {
            for x in &mut b[field::TRSVCID] { *x &= 0x7f; }
            for x in &mut b[field::SUBNQN] { *x &= 0x7f; }
            for x in &mut b[field::TRADDR] { *x &= 0x7f; }
        }
        match DiscoveryEntryRepr::parse_bytes(&b) {
            Ok(r) => prop_assert_eq!(DiscoveryEntryRepr::parse_bytes(&r.to_bytes()?)?, r),
            Err(e) => prop_assert!(!ascii, "ascii entry failed: {:?}", e),
        }
    }

    #[test]
    fn random_log_bytes(
        b in proptest::collection::vec(any::<u8>(), 0..3000),
        numrec in 0u64..4,
    ) {
        let mut b = b;
        if b.len() >= DISCOVERY_LOG_HEADER_LEN {
            b[8..16].copy_from_slice(&numrec.to_le_bytes());
            b[field::HDR_RESERVED].fill(0);
        }
        if let Ok(r) = DiscoveryLogRepr::parse_bytes(&b) {
            prop_assert_eq!(DiscoveryLogRepr::parse_bytes(&r.to_bytes()?)?, r);
        }
    }
}
