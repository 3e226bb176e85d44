//! The staging buffer allocator: each offloaded command takes a contiguous range for its
//! data and gives it back when its response is sent. When no range fits, the command waits
//! (first come, first served): nothing is ever overwritten.

use std::collections::BTreeMap;

/// Granularity of staging ranges (every range starts on this boundary).
pub const GRAIN: u64 = 512;

/// First-fit allocator over `[0, len)` of one staging buffer.
#[derive(Debug, Clone)]
pub struct Staging {
    /// Free ranges: start → length, never adjacent (merged on free).
    free: BTreeMap<u64, u64>,
}

impl Staging {
    /// An allocator over a buffer of `len` bytes.
    pub fn new(len: u64) -> Staging {
        let len = len - len % GRAIN;
        let mut free = BTreeMap::new();
        if len > 0 {
            free.insert(0, len);
        }
        Staging { free }
    }

    /// Takes `size` bytes (rounded up to [`GRAIN`]); `None` when no free range is large
    /// enough now. Returns the offset.
    pub fn alloc(&mut self, size: u64) -> Option<u64> {
        let size = size.max(1).div_ceil(GRAIN) * GRAIN;
        let (&start, &flen) = self.free.iter().find(|(_, l)| **l >= size)?;
        self.free.remove(&start);
        if flen > size {
            self.free.insert(start + size, flen - size);
        }
        Some(start)
    }

    /// Gives back a range taken with [`Staging::alloc`] (same `size`).
    pub fn free(&mut self, offset: u64, size: u64) {
        let mut start = offset;
        let mut len = size.max(1).div_ceil(GRAIN) * GRAIN;
        if let Some((&p, &pl)) = self.free.range(..start).next_back() {
            if p + pl == start {
                self.free.remove(&p);
                start = p;
                len += pl;
            }
        }
        if let Some(&nl) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += nl;
        }
        self.free.insert(start, len);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Bytes of a `total`-byte allocator currently taken.
    fn in_use(s: &Staging, total: u64) -> u64 {
        total - s.free.values().sum::<u64>()
    }

    #[test]
    fn fills_then_waits_then_reuses() {
        let mut s = Staging::new(4096);
        let a = s.alloc(2048).unwrap();
        let b = s.alloc(2048).unwrap();
        assert_ne!(a, b);
        assert_eq!(s.alloc(512), None, "full: the caller must wait");
        s.free(a, 2048);
        assert_eq!(s.alloc(1024), Some(a));
        assert_eq!(in_use(&s, 4096), 2048 + 1024);
    }

    #[test]
    fn frees_merge_neighbours() {
        let mut s = Staging::new(3 * 1024);
        let a = s.alloc(1024).unwrap();
        let b = s.alloc(1024).unwrap();
        let c = s.alloc(1024).unwrap();
        s.free(a, 1024);
        s.free(c, 1024);
        s.free(b, 1024);
        assert_eq!(s.alloc(3 * 1024), Some(0));
    }

    proptest! {
        #[test]
        fn ranges_never_overlap(ops in proptest::collection::vec((1u64..5000, any::<bool>()), 1..200)) {
            let mut s = Staging::new(64 * 1024);
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (size, free_one) in ops {
                if free_one && !live.is_empty() {
                    let (o, l) = live.remove(0);
                    s.free(o, l);
                } else if let Some(o) = s.alloc(size) {
                    let rounded = size.div_ceil(GRAIN) * GRAIN;
                    for (lo, ll) in &live {
                        let lr = ll.div_ceil(GRAIN) * GRAIN;
                        prop_assert!(o + rounded <= *lo || lo + lr <= o, "overlap");
                    }
                    prop_assert!(o + rounded <= 64 * 1024);
                    live.push((o, size));
                }
            }
            let used: u64 = live.iter().map(|(_, l)| l.div_ceil(GRAIN) * GRAIN).sum();
            prop_assert_eq!(in_use(&s, 64 * 1024), used);
        }
    }
}
