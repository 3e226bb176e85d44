//! Property tests of `harness::wire`: for every repr, emit then parse gives the same repr;
//! every length below a structure's minimum is `Err(Truncated)`; random bytes never
//! panic a parser, and whatever parses re-emits to the same bytes (where the format keeps
//! every bit) or at least parses to the same repr again.

use harness::wire::{
    CmAcceptRepr, CmRejectRepr, CmRejectStatus, CmRequestRepr, ConnectDataRepr, ConnectRepr,
    ConnectResponse, ConnectSuccess, CqeRepr, DataPointer, DsmCommand, FabricsRepr, Fuse,
    InvalidParam, PropertyGetRepr, PropertySetRepr, PropertySize, Psdt, RwCommand, Sgl,
    SglAddressing, SglRepr, Sqe, SqeCommand, SqeRepr, Status, WireError, WriteZeroesCommand,
    CM_ACCEPT_LEN, CM_REJECT_LEN, CM_REQUEST_LEN, CONNECT_DATA_LEN, CQE_LEN, NQN_MAX_LEN,
    SGL_DESC_LEN, SGL_KEYED_MAX_LEN, SQE_LEN,
};
use proptest::prelude::*;

// ---------------------------------------------------------------- strategies

fn status() -> impl Strategy<Value = Status> {
    (0u8..8, any::<u8>(), 0u8..4, any::<bool>(), any::<bool>()).prop_map(
        |(sct, sc, crd, more, dnr)| Status {
            sct,
            sc,
            crd,
            more,
            dnr,
        },
    )
}

fn addressing() -> impl Strategy<Value = SglAddressing> {
    prop_oneof![Just(SglAddressing::Address), Just(SglAddressing::Offset)]
}

fn sgl() -> impl Strategy<Value = SglRepr> {
    prop_oneof![
        (addressing(), any::<u64>(), any::<u32>()).prop_map(|(addressing, address, length)| {
            SglRepr::DataBlock {
                addressing,
                address,
                length,
            }
        }),
        (addressing(), any::<u32>())
            .prop_map(|(addressing, length)| SglRepr::BitBucket { addressing, length }),
        (addressing(), any::<u64>(), any::<u32>()).prop_map(|(addressing, address, length)| {
            SglRepr::Segment {
                addressing,
                address,
                length,
            }
        }),
        (addressing(), any::<u64>(), any::<u32>()).prop_map(|(addressing, address, length)| {
            SglRepr::LastSegment {
                addressing,
                address,
                length,
            }
        }),
        (
            any::<bool>(),
            any::<u64>(),
            0..=SGL_KEYED_MAX_LEN,
            any::<u32>()
        )
            .prop_map(
                |(invalidate, address, length, key)| SglRepr::KeyedDataBlock {
                    invalidate,
                    address,
                    length,
                    key,
                }
            ),
    ]
}

fn psdt() -> impl Strategy<Value = Psdt> {
    (0u8..4).prop_map(Psdt::from_bits)
}

/// PSDT and a data pointer that agree with each other.
fn data_pointer() -> impl Strategy<Value = (Psdt, DataPointer)> {
    psdt().prop_flat_map(|p| {
        if p.is_sgl() {
            sgl().prop_map(DataPointer::Sgl).boxed()
        } else {
            any::<[u8; 16]>().prop_map(DataPointer::Raw).boxed()
        }
        .prop_map(move |d| (p, d))
    })
}

fn rw(read: bool) -> impl Strategy<Value = RwCommand> {
    (
        (
            any::<u64>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u8..16,
            any::<bool>(),
        ),
        (
            0u8..16,
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
        ),
    )
        .prop_map(
            move |((slba, nlb, lr, fua, prinfo, stc), (dtype, dsm, dspec, ilbrt, lbat, lbatm))| {
                RwCommand {
                    slba,
                    nlb,
                    lr,
                    fua,
                    prinfo,
                    stc,
                    dtype: if read { 0 } else { dtype },
                    dsm,
                    dspec: if read { 0 } else { dspec },
                    ilbrt,
                    lbat,
                    lbatm,
                }
            },
        )
}

/// Write Zeroes has the fields of a Read, and DEAC.
fn write_zeroes() -> impl Strategy<Value = WriteZeroesCommand> {
    (rw(true), any::<bool>()).prop_map(|(rw, deac)| WriteZeroesCommand {
        slba: rw.slba,
        nlb: rw.nlb,
        lr: rw.lr,
        fua: rw.fua,
        prinfo: rw.prinfo,
        deac,
        stc: rw.stc,
        ilbrt: rw.ilbrt,
        lbat: rw.lbat,
        lbatm: rw.lbatm,
    })
}

fn dsm() -> impl Strategy<Value = DsmCommand> {
    (any::<u8>(), any::<bool>(), any::<bool>(), any::<bool>())
        .prop_map(|(nr, idr, idw, ad)| DsmCommand { nr, idr, idw, ad })
}

/// An I/O command of one of the interpreted kinds.
fn nvm_command() -> impl Strategy<Value = SqeCommand> {
    prop_oneof![
        rw(true).prop_map(SqeCommand::Read),
        rw(false).prop_map(SqeCommand::Write),
        Just(SqeCommand::Flush),
        write_zeroes().prop_map(SqeCommand::WriteZeroes),
        dsm().prop_map(SqeCommand::DatasetManagement),
    ]
}

fn other_command() -> impl Strategy<Value = SqeCommand> {
    (any::<u8>(), any::<[u32; 6]>()).prop_map(|(opcode, cdw)| SqeCommand::Other { opcode, cdw })
}

fn sqe_with(cmd: impl Strategy<Value = SqeCommand>) -> impl Strategy<Value = SqeRepr> {
    (
        (0u8..4).prop_map(Fuse::from_bits),
        data_pointer(),
        any::<u16>(),
        any::<u32>(),
        (any::<u32>(), any::<u32>(), any::<u64>()),
        cmd,
    )
        .prop_map(
            |(fuse, (psdt, dptr), cid, nsid, (cdw2, cdw3, mptr), command)| SqeRepr {
                fuse,
                psdt,
                cid,
                nsid,
                cdw2,
                cdw3,
                mptr,
                dptr,
                command,
            },
        )
}

fn cqe() -> impl Strategy<Value = CqeRepr> {
    (
        any::<u64>(),
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        any::<bool>(),
        status(),
    )
        .prop_map(|(result, sq_head, sq_id, cid, phase, status)| CqeRepr {
            result,
            sq_head,
            sq_id,
            cid,
            phase,
            status,
        })
}

fn property_size() -> impl Strategy<Value = PropertySize> {
    prop_oneof![Just(PropertySize::Four), Just(PropertySize::Eight)]
}

fn connect() -> impl Strategy<Value = ConnectRepr> {
    (
        psdt(),
        any::<u16>(),
        sgl(),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            |(psdt, cid, sgl1, (recfmt, qid, sqsize), cattr, kato)| ConnectRepr {
                psdt,
                cid,
                sgl1,
                recfmt,
                qid,
                sqsize,
                cattr,
                kato,
            },
        )
}

fn property_get() -> impl Strategy<Value = PropertyGetRepr> {
    (psdt(), any::<u16>(), sgl(), property_size(), any::<u32>()).prop_map(
        |(psdt, cid, sgl1, size, offset)| PropertyGetRepr {
            psdt,
            cid,
            sgl1,
            size,
            offset,
        },
    )
}

fn property_set() -> impl Strategy<Value = PropertySetRepr> {
    (
        psdt(),
        any::<u16>(),
        sgl(),
        property_size(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(|(psdt, cid, sgl1, size, offset, value)| PropertySetRepr {
            psdt,
            cid,
            sgl1,
            size,
            offset,
            value,
        })
}

fn fabrics() -> impl Strategy<Value = FabricsRepr> {
    prop_oneof![
        connect().prop_map(FabricsRepr::Connect),
        property_get().prop_map(FabricsRepr::PropertyGet),
        property_set().prop_map(FabricsRepr::PropertySet),
    ]
}

/// NQN-like strings: ASCII up to the 223-byte maximum, or short non-ASCII text.
fn nqn() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9.:_-]{0,223}",
        "nqn\\.2014-08\\.org\\.nvmexpress:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "\\PC{0,55}",
    ]
    .prop_filter("at most 223 bytes", |s| s.len() <= NQN_MAX_LEN)
}

fn connect_data() -> impl Strategy<Value = ConnectDataRepr> {
    (any::<[u8; 16]>(), any::<u16>(), nqn(), nqn()).prop_map(|(hostid, cntlid, subnqn, hostnqn)| {
        ConnectDataRepr {
            hostid,
            cntlid,
            subnqn,
            hostnqn,
        }
    })
}

fn cm_request() -> impl Strategy<Value = CmRequestRepr> {
    any::<[u16; 5]>().prop_map(|[recfmt, qid, hrqsize, hsqsize, cntlid]| CmRequestRepr {
        recfmt,
        qid,
        hrqsize,
        hsqsize,
        cntlid,
    })
}

fn cm_accept() -> impl Strategy<Value = CmAcceptRepr> {
    any::<[u16; 2]>().prop_map(|[recfmt, crqsize]| CmAcceptRepr { recfmt, crqsize })
}

fn cm_reject() -> impl Strategy<Value = CmRejectRepr> {
    (any::<u16>(), proptest::sample::select(CmRejectStatus::ALL))
        .prop_map(|(recfmt, status)| CmRejectRepr { recfmt, status })
}

fn connect_response() -> impl Strategy<Value = ConnectResponse> {
    prop_oneof![
        any::<[u16; 2]>().prop_map(
            |[cntlid, authreq]| ConnectResponse::Success(ConnectSuccess { cntlid, authreq })
        ),
        (any::<u16>(), any::<bool>()).prop_map(|(offset, in_data)| {
            ConnectResponse::InvalidParameters(InvalidParam { offset, in_data })
        }),
        (status(), any::<u32>())
            .prop_filter("not success nor invalid parameters", |(s, _)| {
                !s.same_code(Status::SUCCESS) && !s.same_code(Status::CONNECT_INVALID_PARAMETERS)
            })
            .prop_map(|(status, dw0)| ConnectResponse::Failed { status, dw0 }),
    ]
}

/// Every length below `bytes.len()` must be `Err(Truncated)`.
fn assert_truncations<R: core::fmt::Debug>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<R, WireError>,
) -> Result<(), TestCaseError> {
    for n in 0..bytes.len() {
        match parse(&bytes[..n]) {
            Err(WireError::Truncated { need, got, .. }) => {
                prop_assert_eq!(need, bytes.len());
                prop_assert_eq!(got, n);
            }
            other => prop_assert!(false, "length {} parsed as {:?}", n, other),
        }
    }
    Ok(())
}

/// The round trip of one repr: `r` emitted as `bytes` of `len` bytes (its `buffer_len`)
/// parses back to `r`, and every truncation of `bytes` is `Err(Truncated)`.
fn assert_round_trip<R: PartialEq + core::fmt::Debug>(
    r: &R,
    (bytes, len): (&[u8], usize),
    parse: impl Fn(&[u8]) -> Result<R, WireError>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(bytes.len(), len);
    prop_assert_eq!(&parse(bytes)?, r);
    assert_truncations(bytes, parse)
}

/// [`assert_round_trip`] of a Fabrics command, whose SQE has opcode 7Fh and `fctype`.
fn assert_fabrics_round_trip(r: FabricsRepr, fctype: u8) -> Result<(), TestCaseError> {
    let b = r.to_bytes()?;
    prop_assert_eq!((b[0], b[4]), (0x7f, fctype));
    assert_round_trip(&r, (&b, r.buffer_len()), FabricsRepr::parse_bytes)
}

// ---------------------------------------------------------------- round trips

proptest! {
    #[test]
    fn status_round_trip(s in status()) {
        prop_assert!(s.check().is_ok());
        prop_assert_eq!(Status::from_field(s.to_field()), s);
        prop_assert!(s.to_field() < 0x8000);
        prop_assert_eq!(Status::from_code(s.code()).code(), s.code());
    }

    #[test]
    fn status_field_round_trip(field in 0u16..0x8000) {
        prop_assert_eq!(Status::from_field(field).to_field(), field);
    }

    #[test]
    fn sgl_round_trip(r in sgl()) {
        let mut b = [0u8; SGL_DESC_LEN];
        r.emit(&mut b)?;
        prop_assert_eq!(b[15], r.identifier());
        prop_assert_eq!(r.buffer_len(), SGL_DESC_LEN);
        assert_round_trip(&r, (&b, SGL_DESC_LEN), SglRepr::parse_bytes)?;
    }

    #[test]
    fn sqe_read_round_trip(r in sqe_with(rw(true).prop_map(SqeCommand::Read))) {
        let b = r.to_bytes()?;
        prop_assert_eq!(b[0], 0x02);
        prop_assert_eq!(SqeRepr::parse_bytes(&b)?, r);
    }

    #[test]
    fn sqe_write_round_trip(r in sqe_with(rw(false).prop_map(SqeCommand::Write))) {
        let b = r.to_bytes()?;
        prop_assert_eq!(b[0], 0x01);
        prop_assert_eq!(SqeRepr::parse_bytes(&b)?, r);
    }

    #[test]
    fn sqe_flush_round_trip(r in sqe_with(Just(SqeCommand::Flush))) {
        let b = r.to_bytes()?;
        prop_assert_eq!(b[0], 0x00);
        prop_assert!(b[40..].iter().all(|&x| x == 0));
        prop_assert_eq!(SqeRepr::parse_bytes(&b)?, r);
    }

    #[test]
    fn sqe_write_zeroes_round_trip(
        r in sqe_with(write_zeroes().prop_map(SqeCommand::WriteZeroes))
    ) {
        let b = r.to_bytes()?;
        prop_assert_eq!(b[0], 0x08);
        prop_assert_eq!(SqeRepr::parse_bytes(&b)?, r);
    }

    #[test]
    fn sqe_dsm_round_trip(r in sqe_with(dsm().prop_map(SqeCommand::DatasetManagement))) {
        let b = r.to_bytes()?;
        prop_assert_eq!(b[0], 0x09);
        prop_assert_eq!(SqeRepr::parse_bytes(&b)?, r);
    }

    #[test]
    fn sqe_other_round_trip(r in sqe_with(other_command())) {
        let b = r.to_bytes()?;
        prop_assert_eq!(SqeRepr::parse_raw(&Sqe::new_checked(&b[..])?)?, r);
    }

    #[test]
    fn sqe_truncated(r in sqe_with(nvm_command())) {
        let b = r.to_bytes()?;
        prop_assert_eq!(r.buffer_len(), SQE_LEN);
        assert_truncations(&b, SqeRepr::parse_bytes)?;
        assert_truncations(&b, |x| SqeRepr::parse_raw(&Sqe::new_unchecked(x)))?;
        prop_assert!(r.emit(&mut [0u8; SQE_LEN - 1]).is_err());
    }

    #[test]
    fn sqe_psdt_mismatch_is_an_error(r in sqe_with(nvm_command())) {
        let mut bad = r;
        bad.psdt = if r.psdt.is_sgl() { Psdt::Prp } else { Psdt::SglMptrContiguous };
        let is_psdt_error = matches!(bad.to_bytes(), Err(WireError::BadValue { .. }));
        prop_assert!(is_psdt_error);
    }

    #[test]
    fn cqe_round_trip(r in cqe()) {
        assert_round_trip(&r, (&r.to_bytes()?, CQE_LEN), CqeRepr::parse_bytes)?;
        prop_assert_eq!(r.buffer_len(), CQE_LEN);
    }

    #[test]
    fn connect_round_trip(r in connect()) {
        assert_fabrics_round_trip(FabricsRepr::Connect(r), 0x01)?;
    }

    #[test]
    fn property_get_round_trip(r in property_get()) {
        assert_fabrics_round_trip(FabricsRepr::PropertyGet(r), 0x04)?;
    }

    #[test]
    fn property_set_round_trip(r in property_set()) {
        assert_fabrics_round_trip(FabricsRepr::PropertySet(r), 0x00)?;
    }

    #[test]
    fn fabrics_round_trip(r in fabrics()) {
        let b = r.to_bytes()?;
        prop_assert_eq!(r.buffer_len(), SQE_LEN);
        prop_assert_eq!(b[4], u8::from(r.fctype()));
        prop_assert_eq!(u16::from_le_bytes([b[2], b[3]]), r.cid());
        prop_assert_eq!(FabricsRepr::parse_bytes(&b)?, r);
        prop_assert!(r.emit(&mut [0u8; SQE_LEN - 1]).is_err());
    }

    #[test]
    fn connect_response_round_trip(r in connect_response()) {
        prop_assert_eq!(ConnectResponse::decode(r.status(), r.dw0())?, r);
        prop_assert_eq!(ConnectResponse::decode(r.status().with_dnr(), r.dw0())?, r.clone_with_dnr());
    }

    #[test]
    fn connect_data_round_trip(r in connect_data()) {
        let b = r.to_bytes()?;
        prop_assert_eq!(b.len(), CONNECT_DATA_LEN);
        prop_assert_eq!(ConnectDataRepr::parse_bytes(&b)?, r.clone());
        prop_assert_eq!(&b[256..256 + r.subnqn.len()], r.subnqn.as_bytes());
        prop_assert_eq!(b[256 + r.subnqn.len()], 0);
        prop_assert_eq!(&b[512..512 + r.hostnqn.len()], r.hostnqn.as_bytes());
    }

    #[test]
    fn cm_request_round_trip(r in cm_request()) {
        prop_assert_eq!(r.buffer_len(), CM_REQUEST_LEN);
        assert_round_trip(&r, (&r.to_bytes(), CM_REQUEST_LEN), CmRequestRepr::parse_bytes)?;
    }

    #[test]
    fn cm_accept_round_trip(r in cm_accept()) {
        prop_assert_eq!(r.buffer_len(), CM_ACCEPT_LEN);
        assert_round_trip(&r, (&r.to_bytes(), CM_ACCEPT_LEN), CmAcceptRepr::parse_bytes)?;
    }

    #[test]
    fn cm_reject_round_trip(r in cm_reject()) {
        prop_assert_eq!(r.buffer_len(), CM_REJECT_LEN);
        assert_round_trip(&r, (&r.to_bytes(), CM_REJECT_LEN), CmRejectRepr::parse_bytes)?;
    }
}

/// Connect data is 1024 bytes: check every truncation once, outside proptest.
#[test]
fn connect_data_truncated() {
    let r = ConnectDataRepr {
        hostid: [7; 16],
        cntlid: 0xffff,
        subnqn: "nqn.2024-01.io.example:sub".into(),
        hostnqn: "nqn.2024-01.io.example:host".into(),
    };
    let b = r.to_bytes().unwrap();
    assert_truncations(&b, ConnectDataRepr::parse_bytes).unwrap();
    assert!(r.emit(&mut [0u8; CONNECT_DATA_LEN - 1]).is_err());
}

/// Helper so the DNR variant of a response compares equal to its decoding.
trait CloneWithDnr {
    fn clone_with_dnr(&self) -> Self;
}

impl CloneWithDnr for ConnectResponse {
    fn clone_with_dnr(&self) -> Self {
        match *self {
            ConnectResponse::Failed { status, dw0 } => ConnectResponse::Failed {
                status: status.with_dnr(),
                dw0,
            },
            other => other,
        }
    }
}

// ---------------------------------------------------------------- random bytes

proptest! {
    #[test]
    fn random_sqe_bytes(b in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(r) = SqeRepr::parse_bytes(&b) {
            // Every bit of an accepted SQE is represented.
            prop_assert_eq!(&r.to_bytes()?[..], &b[..SQE_LEN]);
        }
        if let Ok(sqe) = Sqe::new_checked(&b[..]) {
            if let Ok(r) = SqeRepr::parse_raw(&sqe) {
                prop_assert_eq!(&r.to_bytes()?[..], &b[..SQE_LEN]);
            }
        }
    }

    /// Mostly-valid SQEs: random dwords behind a valid flags byte and SGL, so that the
    /// command-specific checks are reached.
    #[test]
    fn random_nvm_sqe_bodies(
        opcode in prop_oneof![Just(0u8), Just(1), Just(2), Just(8), Just(9)],
        s in sgl(),
        cdw in any::<[u32; 6]>(),
        zero_mask in any::<[bool; 6]>(),
    ) {
        let mut b = [0u8; SQE_LEN];
        b[0] = opcode;
        b[1] = 0x40;
        s.emit(&mut b[24..40])?;
        for (i, v) in cdw.iter().enumerate() {
            let v = if zero_mask[i] { 0 } else { *v };
            b[40 + 4 * i..44 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        if let Ok(r) = SqeRepr::parse_bytes(&b) {
            prop_assert_eq!(r.to_bytes()?, b);
        }
    }

    #[test]
    fn random_sgl_bytes(b in proptest::collection::vec(any::<u8>(), 0..20)) {
        if let Ok(r) = SglRepr::parse_bytes(&b) {
            prop_assert_eq!(&r.to_bytes()?[..], &b[..SGL_DESC_LEN]);
            prop_assert_eq!(r.identifier(), Sgl::new_unchecked(&b[..]).identifier());
        }
    }

    #[test]
    fn random_cqe_bytes(b in proptest::collection::vec(any::<u8>(), 0..20)) {
        match CqeRepr::parse_bytes(&b) {
            // Every 16-byte pattern is a valid CQE, and every bit is represented.
            Ok(r) => prop_assert_eq!(&r.to_bytes()?[..], &b[..CQE_LEN]),
            Err(_) => prop_assert!(b.len() < CQE_LEN),
        }
    }

    #[test]
    fn random_fabrics_bytes(b in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(r) = FabricsRepr::parse_bytes(&b) {
            prop_assert_eq!(&r.to_bytes()?[..], &b[..SQE_LEN]);
        }
    }

    /// Valid header, random command-specific bytes.
    #[test]
    fn random_fabrics_bodies(
        fctype in prop_oneof![Just(0u8), Just(1), Just(4), any::<u8>()],
        flags in prop_oneof![Just(0x40u8), any::<u8>()],
        s in sgl(),
        tail in any::<[u8; 24]>(),
        zero_mask in any::<[bool; 24]>(),
    ) {
        let mut b = [0u8; SQE_LEN];
        b[0] = 0x7f;
        b[1] = flags;
        b[4] = fctype;
        s.emit(&mut b[24..40])?;
        for ((dst, byte), zero) in b[40..].iter_mut().zip(tail).zip(zero_mask) {
            *dst = if zero { 0 } else { byte };
        }
        if let Ok(r) = FabricsRepr::parse_bytes(&b) {
            prop_assert_eq!(r.to_bytes()?, b);
        }
    }

    #[test]
    fn random_connect_data_bytes(
        b in proptest::collection::vec(any::<u8>(), 0..1100),
        make_valid in any::<bool>(),
    ) {
        let mut b = b;
        if make_valid && b.len() >= CONNECT_DATA_LEN {
            // Zero the reserved areas and terminate the NQNs somewhere, so that the NQN
            // checks are reached.
            b[18..256].fill(0);
            b[768..1024].fill(0);
            let sub_end = 256 + usize::from(b[0]) % 256;
            let host_end = 512 + usize::from(b[1]) % 256;
            b[sub_end] = 0;
            b[host_end] = 0;
        }
        if let Ok(r) = ConnectDataRepr::parse_bytes(&b) {
            prop_assert!(r.subnqn.len() <= NQN_MAX_LEN && r.hostnqn.len() <= NQN_MAX_LEN);
            let again = ConnectDataRepr::parse_bytes(&r.to_bytes()?)?;
            prop_assert_eq!(again, r);
        }
    }

    #[test]
    fn random_cm_bytes(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(r) = CmRequestRepr::parse_bytes(&b) {
            prop_assert_eq!(&r.to_bytes()[..], &b[..CM_REQUEST_LEN]);
        }
        if let Ok(r) = CmAcceptRepr::parse_bytes(&b) {
            prop_assert_eq!(&r.to_bytes()[..], &b[..CM_ACCEPT_LEN]);
        }
        if let Ok(r) = CmRejectRepr::parse_bytes(&b) {
            prop_assert_eq!(&r.to_bytes()[..], &b[..CM_REJECT_LEN]);
        }
    }

    #[test]
    fn random_connect_response(status_field in 0u16..0x8000, dw0 in any::<u32>()) {
        let s = Status::from_field(status_field);
        if let Ok(r) = ConnectResponse::decode(s, dw0) {
            prop_assert_eq!(r.dw0(), dw0);
            prop_assert!(r.status().same_code(s));
        }
    }
}

// Controller properties (CAP, CC, CSTS): every value's known fields survive parse + emit,
// reserved bits are dropped, and a parsed value re-parses to itself.
// Bits CapRepr does not hold: reserved 23:19, BPS (45), reserved 47:46, and 63:56.
const CAP_RESERVED: u64 = (0b11111 << 19) | (0b111 << 45) | (0xff << 56);
const CC_RESERVED: u32 = (0b111 << 1) | (0xff << 24);
const CSTS_RESERVED: u32 = !0b11_1111;

proptest! {
    #[test]
    fn cap_cc_csts_round_trip(cap in any::<u64>(), cc in any::<u32>(), csts in any::<u32>()) {
        use harness::wire::{CapRepr, CcRepr, CstsRepr};
        let r = CapRepr::parse(cap);
        prop_assert_eq!(r.emit(), cap & !CAP_RESERVED);
        prop_assert_eq!(CapRepr::parse(r.emit()), r);
        let r = CcRepr::parse(cc);
        prop_assert_eq!(r.emit(), cc & !CC_RESERVED);
        prop_assert_eq!(CcRepr::parse(r.emit()), r);
        let r = CstsRepr::parse(csts);
        prop_assert_eq!(r.emit(), csts & !CSTS_RESERVED);
        prop_assert_eq!(CstsRepr::parse(r.emit()), r);
    }

    #[test]
    fn aqa_round_trips(aqa in any::<u32>()) {
        use harness::wire::AqaRepr;
        let r = AqaRepr::parse(aqa);
        prop_assert_eq!(r.emit(), aqa & 0x0fff_0fff);
        prop_assert_eq!(AqaRepr::parse(r.emit()), r);
    }
}

// Admin commands: any opcode and dwords parse; the parsed command emits dwords that parse
// back to it, and an opcode the module does not know keeps its dwords as they were.
proptest! {
    #[test]
    fn admin_commands_round_trip(opcode in any::<u8>(), cdw in any::<[u32; 6]>()) {
        use harness::wire::AdminCommand;
        let c = AdminCommand::parse(opcode, cdw);
        let (op, emitted) = c.emit();
        prop_assert_eq!(op, opcode);
        prop_assert_eq!(AdminCommand::parse(op, emitted), c);
        if let AdminCommand::Other { .. } = c {
            prop_assert_eq!(emitted, cdw);
        }
        prop_assert!(!c.to_string().is_empty());
    }
}
