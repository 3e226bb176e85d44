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

/// A file for a namespace's media (`backing = "file:…"`), in the temporary directory:
/// named for this process, any stale one removed, removed again when dropped.
pub struct TempNamespace(pub std::path::PathBuf);

impl TempNamespace {
    /// A new file name, unique in this process.
    pub fn unique() -> TempNamespace {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("nvmf-conform-ns-{}-{n}.img", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        TempNamespace(path)
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
