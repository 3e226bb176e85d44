//! Files a case's namespaces keep their media in, when the media must outlive a target
//! (a restart opens it again).

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
