//! The soak's oracle for data: the values each block may hold, through batches of commands
//! answered in any order.
//!
//! A block holds a set of values it may hold. Commands of one batch run concurrently, so
//! for each block the last command to touch it decides: an acknowledged write leaves its
//! value; a write answered with an error its value or whatever was there before it; a
//! deallocate zeros or whatever was there before it. A read may return any value the block
//! may hold during the batch, and a read alone on a block pins it to what it returned.

use std::collections::BTreeSet;

use super::ops::{Cmd, BLOCKS};
use crate::framework::session::pattern;

/// How the device answered one command of a batch, as far as data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Success; for a read, the data.
    Ok(Vec<u8>),
    /// An error status (the command may or may not have taken effect).
    Failed,
}

/// What the model knows about the namespace.
#[derive(Debug, Clone)]
pub struct Model {
    block: usize,
    /// Per block: the values it may hold.
    may: Vec<BTreeSet<Vec<u8>>>,
    /// A PCI error took the namespace offline.
    pub offline: bool,
    /// Blocks whose reads fail with a media error.
    pub bad: BTreeSet<u64>,
}

impl Model {
    /// A namespace of zeros with `block`-byte blocks.
    pub fn new(block: usize) -> Model {
        Model {
            block,
            may: vec![BTreeSet::from([vec![0; block]]); BLOCKS as usize],
            offline: false,
            bad: BTreeSet::new(),
        }
    }

    /// The data a write command carries.
    pub fn data_of(&self, cmd: &Cmd) -> Vec<u8> {
        match *cmd {
            Cmd::Write { blocks, seed, .. } => pattern(blocks as usize * self.block, seed),
            _ => Vec::new(),
        }
    }

    /// Whether a read of `range` meets a bad block.
    pub fn meets_bad(&self, range: std::ops::Range<u64>) -> bool {
        range.into_iter().any(|b| self.bad.contains(&b))
    }

    /// Checks a batch's answers against the model and moves the model past it.
    pub fn batch(&mut self, answers: &[(Cmd, Answer)]) -> Result<(), String> {
        let zero = vec![0u8; self.block];
        for b in 0..BLOCKS {
            let i = b as usize;
            let touching: Vec<&(Cmd, Answer)> = answers
                .iter()
                .filter(|(c, _)| c.range().contains(&b))
                .collect();
            if touching.is_empty() {
                continue;
            }
            let mut acked = BTreeSet::new();
            let mut maybe = BTreeSet::new();
            let mut modified = false;
            for (c, a) in &touching {
                let value = match *c {
                    Cmd::Write { lba, .. } => {
                        let data = self.data_of(c);
                        let at = (b - lba) as usize * self.block;
                        Some(data[at..at + self.block].to_vec())
                    }
                    Cmd::WriteZeroes { .. } => Some(zero.clone()),
                    Cmd::Deallocate { .. } => {
                        modified = true;
                        maybe.insert(zero.clone());
                        None
                    }
                    Cmd::Read { .. } | Cmd::ShortRead { .. } | Cmd::Flush => None,
                };
                if let Some(v) = value {
                    modified = true;
                    match a {
                        Answer::Ok(_) => acked.insert(v),
                        Answer::Failed => maybe.insert(v),
                    };
                }
            }
            // Reads: any value the block may hold during the batch.
            let mut during = self.may[i].clone();
            during.extend(acked.iter().cloned());
            during.extend(maybe.iter().cloned());
            let mut pinned = None;
            for (c, a) in &touching {
                let (Cmd::Read { lba, .. }, Answer::Ok(data)) = (c, a) else {
                    continue;
                };
                let at = (b - lba) as usize * self.block;
                let got = &data[at..at + self.block];
                if !during.contains(got) {
                    return Err(format!(
                        "block {b}: `{c}` returned data never written there (first bytes \
                         {:02x?}; it may hold {} value(s))",
                        &got[..8.min(got.len())],
                        during.len()
                    ));
                }
                pinned = Some(got.to_vec());
            }
            if modified {
                let mut after = if acked.is_empty() {
                    self.may[i].clone()
                } else {
                    acked
                };
                after.extend(maybe);
                self.may[i] = after;
            } else if let Some(v) = pinned {
                self.may[i] = BTreeSet::from([v]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(lba: u64, blocks: u32, seed: u8) -> Cmd {
        Cmd::Write { lba, blocks, seed }
    }

    #[test]
    fn an_acknowledged_write_is_read_back_and_nothing_else() {
        let mut m = Model::new(512);
        let w = write(2, 2, 9);
        m.batch(&[(w, Answer::Ok(vec![]))]).unwrap();
        let data = m.data_of(&w);
        let r = Cmd::Read { lba: 2, blocks: 2 };
        m.batch(&[(r, Answer::Ok(data.clone()))]).unwrap();
        let stale = vec![0u8; 1024];
        let e = m.batch(&[(r, Answer::Ok(stale))]).unwrap_err();
        assert!(e.contains("block 2"), "{e}");
    }

    #[test]
    fn a_failed_write_leaves_either_value_and_a_read_pins_it() {
        let mut m = Model::new(512);
        let w = write(0, 1, 3);
        m.batch(&[(w, Answer::Failed)]).unwrap();
        let r = Cmd::Read { lba: 0, blocks: 1 };
        m.batch(&[(r, Answer::Ok(vec![0; 512]))]).unwrap();
        // Pinned to zeros: the failed write's value is no longer allowed.
        assert!(m.batch(&[(r, Answer::Ok(m.data_of(&w)))]).is_err());
    }

    #[test]
    fn concurrent_writes_leave_one_of_their_values() {
        let mut m = Model::new(512);
        let (a, b) = (write(0, 1, 1), write(0, 1, 2));
        m.batch(&[(a, Answer::Ok(vec![])), (b, Answer::Ok(vec![]))])
            .unwrap();
        let r = Cmd::Read { lba: 0, blocks: 1 };
        m.clone().batch(&[(r, Answer::Ok(m.data_of(&a)))]).unwrap();
        m.clone().batch(&[(r, Answer::Ok(m.data_of(&b)))]).unwrap();
        assert!(m.batch(&[(r, Answer::Ok(vec![0; 512]))]).is_err());
    }

    #[test]
    fn a_read_beside_a_write_may_see_old_or_new() {
        let mut m = Model::new(512);
        let w = write(0, 1, 5);
        let r = Cmd::Read { lba: 0, blocks: 1 };
        m.clone()
            .batch(&[(w, Answer::Ok(vec![])), (r, Answer::Ok(vec![0; 512]))])
            .unwrap();
        let new = m.data_of(&w);
        m.batch(&[(w, Answer::Ok(vec![])), (r, Answer::Ok(new.clone()))])
            .unwrap();
        // After the batch the write stands.
        assert!(m.batch(&[(r, Answer::Ok(vec![0; 512]))]).is_err());
    }

    #[test]
    fn deallocated_blocks_read_zeros_or_their_data() {
        let mut m = Model::new(512);
        let w = write(0, 1, 5);
        m.batch(&[(w, Answer::Ok(vec![]))]).unwrap();
        let d = Cmd::Deallocate { lba: 0, blocks: 1 };
        m.batch(&[(d, Answer::Ok(vec![]))]).unwrap();
        let r = Cmd::Read { lba: 0, blocks: 1 };
        m.clone().batch(&[(r, Answer::Ok(vec![0; 512]))]).unwrap();
        m.batch(&[(r, Answer::Ok(m.data_of(&w)))]).unwrap();
    }
}
