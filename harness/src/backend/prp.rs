//! Physical Region Page entries (NVMe Base Specification 2.0, "Physical Region Page Entry
//! and List"): how a data buffer that spans memory pages is described to a PCIe
//! controller. [`plan`] is the driver's side (PRP1, PRP2 and the PRP list pages a buffer
//! needs), [`walk`] the controller's (the page-bounded segments a command's PRPs name,
//! reading list pages as it goes). Both work on bus addresses; with VFIO and IOVA = VA,
//! those are the buffer's virtual addresses.
//!
//! The rules: PRP1 may start anywhere dword aligned; every other entry is page aligned. A
//! transfer within PRP1's page leaves PRP2 zero; one that ends in the next page puts that
//! page in PRP2; a longer one points PRP2 at a PRP list, whose last entry, when more
//! entries follow than one list page holds, points to the next list page.

/// Why PRPs cannot describe or do not describe a transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrpError {
    /// The transfer has no bytes.
    #[error("a transfer of 0 bytes has no PRPs")]
    Empty,
    /// The memory page size is not a power of two of at least 4096 bytes.
    #[error("memory page size {0} is not a power of two of at least 4096")]
    PageSize(u64),
    /// PRP1 is not dword aligned.
    #[error("PRP1 {0:#x} is not dword aligned")]
    Prp1Unaligned(u64),
    /// The PRP list pages would not start on a page boundary.
    #[error("PRP list at {0:#x} is not page aligned")]
    ListUnaligned(u64),
    /// A PRP entry after PRP1 (PRP2, or entry `index` of the list) has an offset.
    #[error("PRP entry {index} ({addr:#x}) is not page aligned")]
    EntryUnaligned {
        /// 0 for PRP2, else 1 + the entry's index in the list.
        index: usize,
        /// The entry.
        addr: u64,
    },
    /// A PRP list page could not be read.
    #[error("PRP list page at {0:#x} cannot be read")]
    ListUnreadable(u64),
    /// The transfer's end does not fit in 64-bit addresses.
    #[error("a transfer of {len} bytes at {addr:#x} overflows the address space")]
    Overflow {
        /// First byte.
        addr: u64,
        /// Length.
        len: u64,
    },
}

/// PRP1, PRP2 and the PRP list pages of one transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrpPlan {
    /// PRP Entry 1: the first byte of the buffer.
    pub prp1: u64,
    /// PRP Entry 2: 0, the second page, or the first PRP list page.
    pub prp2: u64,
    /// The entries of each PRP list page, in order; page `i` goes at `list + i × page`.
    pub lists: Vec<Vec<u64>>,
}

fn check_page(page: u64) -> Result<(), PrpError> {
    if page < 4096 || !page.is_power_of_two() {
        return Err(PrpError::PageSize(page));
    }
    Ok(())
}

/// The pages after PRP1's that a transfer of `len` bytes at `addr` touches.
fn later_pages(addr: u64, len: u64, page: u64) -> Result<Vec<u64>, PrpError> {
    let end = addr
        .checked_add(len)
        .ok_or(PrpError::Overflow { addr, len })?;
    let first_end = (addr | (page - 1)).saturating_add(1);
    let mut pages = Vec::new();
    let mut p = first_end;
    while p < end {
        pages.push(p);
        p += page;
    }
    Ok(pages)
}

/// How many PRP list pages a transfer of `len` bytes at `addr` needs with memory pages of
/// `page` bytes (0 when PRP1 and PRP2 are enough).
pub fn list_pages_needed(addr: u64, len: u64, page: u64) -> Result<usize, PrpError> {
    check_page(page)?;
    let entries = later_pages(addr, len, page)?.len();
    if entries <= 1 {
        return Ok(0);
    }
    // Each full list page gives up its last slot to the pointer to the next one.
    let per_page = (page / 8) as usize;
    Ok(if entries <= per_page {
        1
    } else {
        1 + (entries - per_page).div_ceil(per_page - 1)
    })
}

/// The PRPs of a transfer of `len` bytes at bus address `addr`, memory pages of `page`
/// bytes, with its PRP list pages (if it needs any: [`list_pages_needed`]) at the
/// page-aligned bus address `list`.
pub fn plan(addr: u64, len: u64, page: u64, list: u64) -> Result<PrpPlan, PrpError> {
    check_page(page)?;
    if len == 0 {
        return Err(PrpError::Empty);
    }
    if addr % 4 != 0 {
        return Err(PrpError::Prp1Unaligned(addr));
    }
    let pages = later_pages(addr, len, page)?;
    let (prp2, lists) = match pages.as_slice() {
        [] => (0, Vec::new()),
        [one] => (*one, Vec::new()),
        _ => {
            if list % page != 0 {
                return Err(PrpError::ListUnaligned(list));
            }
            let per_page = (page / 8) as usize;
            let mut lists = Vec::new();
            let mut rest = pages.as_slice();
            while !rest.is_empty() {
                let this = list + lists.len() as u64 * page;
                if rest.len() <= per_page {
                    lists.push(rest.to_vec());
                    rest = &[];
                } else {
                    let mut entries = rest[..per_page - 1].to_vec();
                    entries.push(this + page);
                    lists.push(entries);
                    rest = &rest[per_page - 1..];
                }
            }
            (list, lists)
        }
    };
    Ok(PrpPlan {
        prp1: addr,
        prp2,
        lists,
    })
}

/// The segments (bus address, length) a controller transfers for a command of `len` bytes
/// with these PRPs, each within one memory page, in order; `read_list(addr, n)` reads `n`
/// entries of a PRP list from `addr`.
pub fn walk(
    prp1: u64,
    prp2: u64,
    len: u64,
    page: u64,
    mut read_list: impl FnMut(u64, usize) -> Option<Vec<u64>>,
) -> Result<Vec<(u64, u64)>, PrpError> {
    check_page(page)?;
    if len == 0 {
        return Err(PrpError::Empty);
    }
    if prp1 % 4 != 0 {
        return Err(PrpError::Prp1Unaligned(prp1));
    }
    let first = len.min(page - prp1 % page);
    let mut segments = vec![(prp1, first)];
    let mut left = len - first;
    let needed = left.div_ceil(page) as usize;
    let entries: Vec<u64> = match needed {
        0 => Vec::new(),
        1 => vec![prp2],
        _ => {
            let per_page = (page / 8) as usize;
            let mut out = Vec::with_capacity(needed);
            let mut at = prp2;
            while out.len() < needed {
                if at % 8 != 0 {
                    return Err(PrpError::ListUnaligned(at));
                }
                // A list page holds entries up to its end; the last one points on when
                // more are needed than fit.
                let room = ((page - at % page) / 8) as usize;
                let want = needed - out.len();
                let take = if want <= room {
                    want
                } else {
                    room.min(per_page)
                };
                let got = read_list(at, take).ok_or(PrpError::ListUnreadable(at))?;
                if got.len() != take {
                    return Err(PrpError::ListUnreadable(at));
                }
                if want <= room {
                    out.extend(got);
                } else {
                    out.extend_from_slice(&got[..take - 1]);
                    at = got[take - 1];
                }
            }
            out
        }
    };
    for (i, e) in entries.into_iter().enumerate() {
        if e % page != 0 {
            return Err(PrpError::EntryUnaligned { index: i, addr: e });
        }
        let n = left.min(page);
        segments.push((e, n));
        left -= n;
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    fn lists_reader(plan: &PrpPlan, list: u64) -> impl FnMut(u64, usize) -> Option<Vec<u64>> + '_ {
        move |at, n| {
            let page = (at - list) / PAGE;
            let first = ((at - list) % PAGE / 8) as usize;
            let entries = plan.lists.get(page as usize)?;
            entries.get(first..first + n).map(<[u64]>::to_vec)
        }
    }

    #[test]
    fn one_two_and_many_pages() {
        // Within the first page: PRP2 unused.
        let p = plan(0x10_0200, 512, PAGE, 0x90_0000).unwrap();
        assert_eq!((p.prp1, p.prp2, p.lists.len()), (0x10_0200, 0, 0));
        // Across one boundary: PRP2 is the second page.
        let p = plan(0x10_0200, 4096, PAGE, 0x90_0000).unwrap();
        assert_eq!((p.prp2, p.lists.len()), (0x10_1000, 0));
        // 16 KiB from a page start: PRP1 + a list of 3 entries.
        let p = plan(0x10_0000, 16384, PAGE, 0x90_0000).unwrap();
        assert_eq!(p.prp2, 0x90_0000);
        assert_eq!(p.lists, vec![vec![0x10_1000, 0x10_2000, 0x10_3000]]);
        assert_eq!(list_pages_needed(0x10_0000, 16384, PAGE), Ok(1));
        assert_eq!(list_pages_needed(0x10_0000, 8192, PAGE), Ok(0));
    }

    #[test]
    fn a_list_longer_than_a_page_chains() {
        // 513 pages after PRP1's: 511 entries + pointer, then 2 entries.
        let len = 514 * PAGE;
        let p = plan(0x100_0000, len, PAGE, 0x200_0000).unwrap();
        assert_eq!(p.lists.len(), 2);
        assert_eq!(p.lists[0].len(), 512);
        assert_eq!(
            p.lists[0][511], 0x200_1000,
            "the last slot points to the next page"
        );
        assert_eq!(
            p.lists[1],
            vec![0x100_0000 + 512 * PAGE, 0x100_0000 + 513 * PAGE]
        );
        assert_eq!(list_pages_needed(0x100_0000, len, PAGE), Ok(2));
        let segs = walk(p.prp1, p.prp2, len, PAGE, lists_reader(&p, 0x200_0000)).unwrap();
        assert_eq!(segs.len(), 514);
        assert!(segs.iter().all(|&(_, n)| n == PAGE));
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(plan(0, 0, PAGE, 0), Err(PrpError::Empty));
        assert_eq!(plan(2, 8, PAGE, 0), Err(PrpError::Prp1Unaligned(2)));
        assert_eq!(plan(0, 8, 1000, 0), Err(PrpError::PageSize(1000)));
        assert_eq!(
            plan(0, 3 * PAGE, PAGE, 0x10),
            Err(PrpError::ListUnaligned(0x10))
        );
        assert_eq!(
            walk(0, 0x1234, 2 * PAGE, PAGE, |_, _| None),
            Err(PrpError::EntryUnaligned {
                index: 0,
                addr: 0x1234
            })
        );
        assert_eq!(
            walk(0, 0x9000, 3 * PAGE, PAGE, |_, _| None),
            Err(PrpError::ListUnreadable(0x9000))
        );
        assert!(matches!(
            plan(u64::MAX - 3, 8, PAGE, 0),
            Err(PrpError::Overflow { .. })
        ));
    }

    proptest::proptest! {
        /// What the driver plans, the controller walks: the segments cover exactly the
        /// buffer, in order, none crossing a page, with as many list pages as counted.
        #[test]
        fn plan_then_walk_covers_the_buffer(
            dwords in 0u64..(1 << 20),
            len in 1u64..(3 << 20),
            shift in 0u32..3,
        ) {
            let page = PAGE << shift;
            let addr = 0x4000_0000 + dwords * 4;
            let list = 0x8000_0000;
            let p = plan(addr, len, page, list).unwrap();
            proptest::prop_assert_eq!(p.lists.len(), list_pages_needed(addr, len, page).unwrap());
            let segs = walk(p.prp1, p.prp2, len, page, |at, n| {
                let idx = ((at - list) / page) as usize;
                let first = ((at - list) % page / 8) as usize;
                p.lists.get(idx)?.get(first..first + n).map(<[u64]>::to_vec)
            })
            .unwrap();
            let mut next = addr;
            for (a, n) in &segs {
                proptest::prop_assert_eq!(*a, next);
                proptest::prop_assert!(*n > 0 && a / page == (a + n - 1) / page);
                next = a + n;
            }
            proptest::prop_assert_eq!(next, addr + len);
        }
    }
}
