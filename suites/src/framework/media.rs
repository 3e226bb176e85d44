//! The media of an emulated backend's namespace 1, read and written behind the device's
//! back: what a case puts there for the device to read, or looks at when the device cannot
//! read back what it wrote.

use harness::backend::emulated::BackendController;

use super::failure::Failure;

/// Block `slba` of namespace 1 of `b`, read from its media.
pub fn read(b: &BackendController, slba: u64) -> Result<Vec<u8>, Failure> {
    b.with_namespace(1, |ns| ns.read_blocks(slba, 1))
        .ok_or_else(|| Failure::new("the backend has no namespace 1"))?
        .map_err(|e| Failure::from(e).context("reading the backend's media"))
}

/// Puts `data` on the blocks of namespace 1 of `b` from `slba` on.
pub fn write(b: &BackendController, slba: u64, data: &[u8]) -> Result<(), Failure> {
    b.with_namespace(1, |ns| ns.write_blocks(slba, data))
        .ok_or_else(|| Failure::new("the backend has no namespace 1"))?
        .map_err(|e| Failure::from(e).context("writing the backend's media"))
}
