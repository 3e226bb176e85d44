//! Helpers shared by the nvmf-conform fuzz targets (`fuzz_targets/`): the wire round-trip
//! check and the reference-target world the `target_*` targets drive.
//!
//! Every target's invariant, written once here so that a failing input's message names
//! what broke: parsing never panics; when it succeeds, emitting the repr succeeds and
//! parsing the emitted bytes gives the same repr back.

pub mod world;

use std::fmt::Debug;

use harness::wire::{
    CmAcceptRepr, CmRejectRepr, CmRequestRepr, ConnectDataRepr, CqeRepr, DiscoveryEntryRepr,
    DiscoveryLogHeaderRepr, DiscoveryLogRepr, FabricsRepr, SqeRepr, WireError,
};

/// Checks the round trip of one wire format on `input`: `parse(input)`, and when that
/// succeeds, `emit(repr)` must succeed and `parse(emitted) == repr`. Returns the repr.
pub fn roundtrip<R, E>(
    what: &str,
    input: &[u8],
    parse: impl Fn(&[u8]) -> Result<R, E>,
    emit: impl Fn(&R) -> Result<Vec<u8>, E>,
) -> Option<R>
where
    R: PartialEq + Debug,
    E: Debug,
{
    let repr = parse(input).ok()?;
    let bytes = match emit(&repr) {
        Ok(b) => b,
        Err(e) => panic!("{what}: parsed {repr:?} but emitting it fails: {e:?}"),
    };
    match parse(&bytes) {
        Ok(again) => assert_eq!(
            again, repr,
            "{what}: parse(emit(parse(x))) differs from parse(x); emitted {bytes:02x?}"
        ),
        Err(e) => {
            panic!("{what}: parsed {repr:?}, emitted {bytes:02x?}, which does not parse: {e:?}")
        }
    }
    Some(repr)
}

/// A wire repr with a byte parser and an emitter: what [`roundtrip_repr`] checks.
pub trait WireRepr: Sized + PartialEq + Debug {
    /// Parses the repr from the start of `bytes`.
    fn parse_wire(bytes: &[u8]) -> Result<Self, WireError>;
    /// Emits the repr as bytes.
    fn emit_wire(&self) -> Result<Vec<u8>, WireError>;
}

/// Implements [`WireRepr`] through `parse_bytes` and a `to_bytes` that returns
/// `Result<[u8; N]>` (`fallible`), `[u8; N]` (`infallible`) or `Result<Vec<u8>>` (`vec`).
macro_rules! wire_repr {
    ($emit:ident: $($t:ty),+) => {
        $(impl WireRepr for $t {
            fn parse_wire(bytes: &[u8]) -> Result<Self, WireError> {
                <$t>::parse_bytes(bytes)
            }
            fn emit_wire(&self) -> Result<Vec<u8>, WireError> {
                wire_repr!(@$emit self)
            }
        })+
    };
    (@fallible $r:ident) => { $r.to_bytes().map(|b| b.to_vec()) };
    (@infallible $r:ident) => { Ok($r.to_bytes().to_vec()) };
    (@vec $r:ident) => { $r.to_bytes() };
}

wire_repr!(fallible: CqeRepr, FabricsRepr, SqeRepr);
wire_repr!(infallible: CmAcceptRepr, CmRejectRepr, CmRequestRepr);
wire_repr!(vec: ConnectDataRepr, DiscoveryEntryRepr, DiscoveryLogHeaderRepr, DiscoveryLogRepr);

/// [`roundtrip`] of the repr `R` on `input`, through its [`WireRepr`] parser and emitter.
pub fn roundtrip_repr<R: WireRepr>(what: &str, input: &[u8]) -> Option<R> {
    roundtrip(what, input, R::parse_wire, R::emit_wire)
}

/// Calls each named getter of the view `$view` on `$data` when `$view::new_checked`
/// accepts it: a checked buffer's getters never panic, whatever its bytes.
#[macro_export]
macro_rules! read_view {
    ($view:ident, $data:expr; $($getter:ident),+ $(,)?) => {
        if let Ok(v) = $view::new_checked($data) {
            $(let _ = v.$getter();)+
        }
    };
}
