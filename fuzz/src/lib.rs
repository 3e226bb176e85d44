//! Helpers shared by the nvmf-conform fuzz targets (`fuzz_targets/`): the wire round-trip
//! check and the reference-target world the `target_*` targets drive.
//!
//! Every target's invariant, written once here so that a failing input's message names
//! what broke: parsing never panics; when it succeeds, emitting the repr succeeds and
//! parsing the emitted bytes gives the same repr back.

pub mod world;

use std::fmt::Debug;

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
