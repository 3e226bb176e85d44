//! Backend namespaces: a capacity in blocks, an LBA format, and a store (RAM or a file).
//!
//! Blocks are stored as **extended LBAs**: each block is `data + meta` bytes, data first,
//! metadata right after it, exactly as the offload API maps them (`lba_data_size`).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::backend::BackendError;

/// An LBA format: data bytes and metadata bytes per block.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct LbaFormat {
    /// Data bytes per block (512 or 4096).
    pub data: u32,
    /// Metadata bytes per block, interleaved after the data (0, 8 or 64).
    pub meta: u32,
}

impl LbaFormat {
    /// 512 bytes, no metadata.
    pub const L512: LbaFormat = LbaFormat::new(512, 0);
    /// 4096 bytes, no metadata.
    pub const L4096: LbaFormat = LbaFormat::new(4096, 0);
    /// 512 bytes + 8 bytes of metadata.
    pub const L512_8: LbaFormat = LbaFormat::new(512, 8);
    /// 4096 bytes + 8 bytes of metadata.
    pub const L4096_8: LbaFormat = LbaFormat::new(4096, 8);
    /// 4096 bytes + 64 bytes of metadata.
    pub const L4096_64: LbaFormat = LbaFormat::new(4096, 64);
    /// Every format the emulated backend supports.
    pub const SUPPORTED: [LbaFormat; 5] = [
        LbaFormat::L512,
        LbaFormat::L4096,
        LbaFormat::L512_8,
        LbaFormat::L4096_8,
        LbaFormat::L4096_64,
    ];

    /// A format with `data` + `meta` bytes per block (not checked: see [`Self::is_supported`]).
    pub const fn new(data: u32, meta: u32) -> LbaFormat {
        LbaFormat { data, meta }
    }

    /// Bytes per block as moved by a command and mapped by the offload API: `data + meta`.
    pub const fn lba_data_size(&self) -> u32 {
        self.data + self.meta
    }

    /// Whether this is one of [`Self::SUPPORTED`].
    pub fn is_supported(&self) -> bool {
        LbaFormat::SUPPORTED.contains(self)
    }
}

impl fmt::Display for LbaFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.data, self.meta)
    }
}

enum Store {
    Ram(Vec<u8>),
    File { file: File, path: PathBuf },
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Ram(v) => write!(f, "Ram({} bytes)", v.len()),
            Store::File { path, .. } => write!(f, "File({})", path.display()),
        }
    }
}

/// One namespace of a backend controller.
#[derive(Debug)]
pub struct Namespace {
    nsid: u32,
    format: LbaFormat,
    blocks: u64,
    store: Store,
    media_errors: Vec<Range<u64>>,
}

impl Namespace {
    fn check(nsid: u32, format: LbaFormat, blocks: u64) -> Result<u64, BackendError> {
        if nsid == 0 || nsid == u32::MAX {
            return Err(BackendError::Config("nsid 0 and 0xffffffff are not valid"));
        }
        if !format.is_supported() {
            return Err(BackendError::UnsupportedFormat(format));
        }
        if blocks == 0 {
            return Err(BackendError::Config("a namespace needs at least one block"));
        }
        blocks
            .checked_mul(format.lba_data_size().into())
            .ok_or(BackendError::Config("namespace size overflows"))
    }

    /// A namespace of `blocks` zeroed blocks held in memory.
    pub fn ram(nsid: u32, format: LbaFormat, blocks: u64) -> Result<Namespace, BackendError> {
        let bytes = Namespace::check(nsid, format, blocks)?;
        let bytes =
            usize::try_from(bytes).map_err(|_| BackendError::Config("namespace too large"))?;
        Ok(Namespace {
            nsid,
            format,
            blocks,
            store: Store::Ram(vec![0; bytes]),
            media_errors: Vec::new(),
        })
    }

    /// A namespace stored in the file at `path`: created (zeroed) if absent, opened with its
    /// contents otherwise, and sized to `blocks` blocks. What is written survives reopening.
    pub fn file(
        nsid: u32,
        path: impl AsRef<Path>,
        format: LbaFormat,
        blocks: u64,
    ) -> Result<Namespace, BackendError> {
        let bytes = Namespace::check(nsid, format, blocks)?;
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.set_len(bytes)?;
        Ok(Namespace {
            nsid,
            format,
            blocks,
            store: Store::File { file, path },
            media_errors: Vec::new(),
        })
    }

    /// The namespace identifier on the backend controller.
    pub fn nsid(&self) -> u32 {
        self.nsid
    }

    /// The LBA format.
    pub fn format(&self) -> LbaFormat {
        self.format
    }

    /// Capacity in blocks.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Bytes per block (`data + meta`).
    pub fn lba_data_size(&self) -> u32 {
        self.format.lba_data_size()
    }

    /// Whether `count` blocks from `slba` lie inside the namespace.
    pub fn in_range(&self, slba: u64, count: u64) -> bool {
        slba.checked_add(count)
            .is_some_and(|end| end <= self.blocks)
    }

    fn byte_range(&self, slba: u64, count: u64) -> io::Result<(u64, usize)> {
        if !self.in_range(slba, count) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "LBA range outside the namespace",
            ));
        }
        let bs = u64::from(self.lba_data_size());
        let len = usize::try_from(count * bs)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range too large"))?;
        Ok((slba * bs, len))
    }

    /// Reads `count` blocks from `slba` (data + metadata of each block).
    pub fn read_blocks(&self, slba: u64, count: u64) -> io::Result<Vec<u8>> {
        let (off, len) = self.byte_range(slba, count)?;
        let mut buf = vec![0; len];
        match &self.store {
            Store::Ram(v) => {
                let o = off as usize;
                buf.copy_from_slice(&v[o..o + len]);
            }
            Store::File { file, .. } => file.read_exact_at(&mut buf, off)?,
        }
        Ok(buf)
    }

    /// Writes whole blocks from `slba`; `data.len()` must be a multiple of the block size.
    pub fn write_blocks(&mut self, slba: u64, data: &[u8]) -> io::Result<()> {
        let bs = u64::from(self.lba_data_size());
        if data.len() as u64 % bs != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write length is not a whole number of blocks",
            ));
        }
        let (off, len) = self.byte_range(slba, data.len() as u64 / bs)?;
        match &mut self.store {
            Store::Ram(v) => {
                let o = off as usize;
                v[o..o + len].copy_from_slice(data);
            }
            Store::File { file, .. } => file.write_all_at(data, off)?,
        }
        Ok(())
    }

    /// Zeroes `count` blocks from `slba` (write zeroes and deallocate: a deallocated block
    /// reads back as zeroes, data and metadata).
    pub fn zero_blocks(&mut self, slba: u64, count: u64) -> io::Result<()> {
        let (off, len) = self.byte_range(slba, count)?;
        match &mut self.store {
            Store::Ram(v) => {
                let o = off as usize;
                v[o..o + len].fill(0);
            }
            Store::File { file, .. } => {
                const CHUNK: usize = 1 << 20;
                let zeroes = vec![0u8; CHUNK.min(len)];
                let mut done = 0;
                while done < len {
                    let n = (len - done).min(CHUNK);
                    file.write_all_at(&zeroes[..n], off + done as u64)?;
                    done += n;
                }
            }
        }
        Ok(())
    }

    /// Makes written data durable (`fsync` for a file, nothing for RAM).
    pub fn flush(&self) -> io::Result<()> {
        match &self.store {
            Store::Ram(_) => Ok(()),
            Store::File { file, .. } => file.sync_data(),
        }
    }

    /// Marks `lbas` as unreadable: a read touching them fails with Unrecovered Read Error.
    /// Writes to them succeed and do not clear the error (the medium stays bad).
    pub fn add_media_error(&mut self, lbas: Range<u64>) {
        if !lbas.is_empty() {
            self.media_errors.push(lbas);
        }
    }

    /// Removes every media-error range.
    pub fn clear_media_errors(&mut self) {
        self.media_errors.clear();
    }

    /// Whether any of `count` blocks from `slba` is in a media-error range.
    pub fn has_media_error(&self, slba: u64, count: u64) -> bool {
        let end = slba.saturating_add(count);
        self.media_errors
            .iter()
            .any(|r| r.start < end && slba < r.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(LbaFormat::L512_8.lba_data_size(), 520);
        assert_eq!(LbaFormat::L4096_64.lba_data_size(), 4160);
        assert!(LbaFormat::L4096_8.is_supported());
        assert!(!LbaFormat::new(1024, 0).is_supported());
        assert_eq!(LbaFormat::L4096_8.to_string(), "4096+8");
    }

    #[test]
    fn ram_round_trip_and_bounds() {
        for f in LbaFormat::SUPPORTED {
            let mut ns = Namespace::ram(1, f, 8).unwrap();
            let bs = f.lba_data_size() as usize;
            let data: Vec<u8> = (0..2 * bs).map(|i| (i % 251) as u8).collect();
            ns.write_blocks(3, &data).unwrap();
            assert_eq!(ns.read_blocks(3, 2).unwrap(), data);
            assert!(ns.read_blocks(7, 2).is_err());
            assert!(ns.write_blocks(0, &data[..bs - 1]).is_err());
            ns.zero_blocks(3, 1).unwrap();
            assert!(ns.read_blocks(3, 1).unwrap().iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(matches!(
            Namespace::ram(1, LbaFormat::new(1024, 0), 1),
            Err(BackendError::UnsupportedFormat(_))
        ));
        assert!(Namespace::ram(0, LbaFormat::L512, 1).is_err());
        assert!(Namespace::ram(1, LbaFormat::L512, 0).is_err());
    }

    #[test]
    fn media_error_ranges() {
        let mut ns = Namespace::ram(1, LbaFormat::L512, 16).unwrap();
        ns.add_media_error(4..6);
        assert!(ns.has_media_error(5, 1));
        assert!(ns.has_media_error(0, 5));
        assert!(!ns.has_media_error(6, 4));
        assert!(!ns.has_media_error(0, 4));
        ns.clear_media_errors();
        assert!(!ns.has_media_error(4, 2));
    }

    #[test]
    fn file_persists_across_reopen() {
        let path = std::env::temp_dir().join(format!("nvmf-ns-unit-{}.img", std::process::id()));
        let data = vec![0xa5u8; 520 * 2];
        {
            let mut ns = Namespace::file(1, &path, LbaFormat::L512_8, 4).unwrap();
            ns.write_blocks(1, &data).unwrap();
            ns.flush().unwrap();
        }
        let ns = Namespace::file(1, &path, LbaFormat::L512_8, 4).unwrap();
        assert_eq!(ns.read_blocks(1, 2).unwrap(), data);
        assert!(ns.read_blocks(0, 1).unwrap().iter().all(|&b| b == 0));
        drop(ns);
        std::fs::remove_file(&path).unwrap();
    }
}
