//! Test data: two deterministic byte patterns, a seeded generator, and the check that a
//! queue still serves I/O.

use harness::initiator::{DataMode, IoQueue};
use harness::wire::Status;

/// A deterministic data pattern of `len` bytes for `seed` (bytes mod 251).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(31).wrapping_add(seed * 7) % 251) as u8)
        .collect()
}

/// A counting pattern: byte `i` is `31 i + seed` (mod 256).
pub fn counting(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A small seeded generator (SplitMix64) for tests that pick moments, kinds and ranges
/// from a seed: the same seed gives the same run.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
}

/// Writes `data` at `slba` on `io` in `mode`; panics unless the write completes with
/// Successful Completion.
pub async fn write_ok(io: &mut IoQueue, slba: u64, data: &[u8], mode: DataMode) {
    if let Err(e) = write(io, slba, data, mode).await {
        panic!("write at {slba}: {e}");
    }
}

/// Writes `data` at `slba` on `io` in `mode`, reads it back in the same mode and compares;
/// in [`DataMode::KeyedInvalidate`] the read's response must also invalidate the read's
/// rkey (a SEND with invalidate). Panics naming `what` and `slba` on any failure.
pub async fn write_read_back(io: &mut IoQueue, slba: u64, data: &[u8], mode: DataMode, what: &str) {
    if let Err(e) = write_read_compare_in(io, slba, data, mode).await {
        panic!("{what} at {slba}: {e}");
    }
}

/// Writes `data` at `slba` on `io` (keyed), reads it back and compares: the check that a
/// queue is still served. The error names what failed.
pub async fn write_read_compare(io: &mut IoQueue, slba: u64, data: &[u8]) -> Result<(), String> {
    write_read_compare_in(io, slba, data, DataMode::Keyed).await
}

/// The write of [`write_ok`]: the error names what failed.
async fn write(io: &mut IoQueue, slba: u64, data: &[u8], mode: DataMode) -> Result<(), String> {
    let w = io
        .write(slba, data, mode)
        .await
        .map_err(|e| format!("write: {e}"))?;
    if w.cqe.status != Status::SUCCESS {
        return Err(format!("write status {}", w.cqe.status));
    }
    Ok(())
}

/// [`write_read_compare`] in `mode`, with the invalidation check of [`write_read_back`].
async fn write_read_compare_in(
    io: &mut IoQueue,
    slba: u64,
    data: &[u8],
    mode: DataMode,
) -> Result<(), String> {
    write(io, slba, data, mode).await?;
    let blocks = (data.len() as u32).div_ceil(io.lba_size());
    let r = io
        .read(slba, blocks, mode)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if r.cqe.status != Status::SUCCESS {
        return Err(format!("read status {}", r.cqe.status));
    }
    if r.data != data {
        return Err("data read back differs from data written".into());
    }
    if mode == DataMode::KeyedInvalidate && r.invalidated_rkey != r.rkey {
        return Err(format!(
            "the read's response invalidated {:?}, not its rkey {:?}",
            r.invalidated_rkey, r.rkey
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_generator_are_deterministic() {
        assert_eq!(pattern(4, 1), [7, 38, 69, 100]);
        assert_eq!(pattern(300, 3)[251], pattern(300, 3)[0]);
        assert_eq!(counting(3, 5), [5, 36, 67]);
        let mut a = SplitMix(9);
        let mut b = SplitMix(9);
        let xs: Vec<u64> = (0..4).map(|_| a.range(10, 20)).collect();
        assert!(xs.iter().all(|x| (10..20).contains(x)), "{xs:?}");
        assert_eq!(xs, (0..4).map(|_| b.range(10, 20)).collect::<Vec<_>>());
        assert_eq!(a.range(5, 5), 5);
    }
}
