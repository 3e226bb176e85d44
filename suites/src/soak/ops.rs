//! What a soak does: the steps of an episode, drawn from the seed within the device's caps.

use std::fmt;

use harness::api::OffloadOps;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::FaultKind;

/// Blocks of the namespace an episode touches: few, so that commands overlap.
pub const BLOCKS: u64 = 64;
/// Most host queues connected at once.
pub const MAX_HOSTS: usize = 3;
/// Deepest batch: commands submitted together on one queue before any is reaped.
pub const MAX_DEPTH: usize = 16;
/// Most blocks one command moves.
pub const MAX_BLOCKS: u32 = 8;

/// One NVM command of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Write `blocks` blocks of the pattern `seed` at `lba`.
    Write {
        /// First block.
        lba: u64,
        /// Blocks.
        blocks: u32,
        /// The data's pattern.
        seed: u8,
    },
    /// Read `blocks` blocks at `lba`.
    Read {
        /// First block.
        lba: u64,
        /// Blocks.
        blocks: u32,
    },
    /// Flush.
    Flush,
    /// Write Zeroes of `blocks` blocks at `lba`.
    WriteZeroes {
        /// First block.
        lba: u64,
        /// Blocks.
        blocks: u32,
    },
    /// Dataset Management, Deallocate, of one range.
    Deallocate {
        /// First block.
        lba: u64,
        /// Blocks.
        blocks: u32,
    },
    /// A read whose keyed SGL is one block shorter than its data: the device must not
    /// offload it, and it is answered with an error (sent only to devices with a software
    /// path, which the target answers through).
    ShortRead {
        /// First block.
        lba: u64,
        /// Blocks (at least 2).
        blocks: u32,
    },
}

impl Cmd {
    /// The command's kind, as coverage counts it.
    pub fn kind(&self) -> &'static str {
        match self {
            Cmd::Write { .. } => "write",
            Cmd::Read { .. } => "read",
            Cmd::Flush => "flush",
            Cmd::WriteZeroes { .. } => "write-zeroes",
            Cmd::Deallocate { .. } => "deallocate",
            Cmd::ShortRead { .. } => "short-sgl-read",
        }
    }

    /// The same command on at most `max` blocks.
    pub fn at_most(mut self, max: u32) -> Cmd {
        match &mut self {
            Cmd::Write { blocks, .. }
            | Cmd::Read { blocks, .. }
            | Cmd::WriteZeroes { blocks, .. }
            | Cmd::Deallocate { blocks, .. }
            | Cmd::ShortRead { blocks, .. } => *blocks = (*blocks).min(max),
            Cmd::Flush => {}
        }
        self
    }

    /// The blocks it touches (none for a flush).
    pub fn range(&self) -> std::ops::Range<u64> {
        match *self {
            Cmd::Write { lba, blocks, .. }
            | Cmd::Read { lba, blocks }
            | Cmd::WriteZeroes { lba, blocks }
            | Cmd::Deallocate { lba, blocks }
            | Cmd::ShortRead { lba, blocks } => lba..lba + u64::from(blocks),
            Cmd::Flush => 0..0,
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cmd::Write { lba, blocks, seed } => write!(f, "write {lba}+{blocks} #{seed}"),
            Cmd::Read { lba, blocks } => write!(f, "read {lba}+{blocks}"),
            Cmd::Flush => write!(f, "flush"),
            Cmd::WriteZeroes { lba, blocks } => write!(f, "write-zeroes {lba}+{blocks}"),
            Cmd::Deallocate { lba, blocks } => write!(f, "deallocate {lba}+{blocks}"),
            Cmd::ShortRead { lba, blocks } => write!(f, "short-sgl read {lba}+{blocks}"),
        }
    }
}

/// One step of an episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new host controller with one I/O queue (nothing when `MAX_HOSTS` are connected).
    Connect,
    /// The host at this index (modulo those connected) disconnects its queue and controller.
    Disconnect(usize),
    /// A host the subsystem does not allow tries to connect: refused, 1/84h with DNR.
    Stranger,
    /// A write on an I/O queue that is connected through the CM but has not sent Connect:
    /// answered Command Sequence Error (0/0Ch), nothing offloaded or written.
    BeforeConnect {
        /// The write (its blocks must not change).
        cmd: Cmd,
    },
    /// Calls on the offload API's own objects (controllers of a fresh SRQ, namespace
    /// mappings) on a fresh device, each result checked against the rules.
    Api(Vec<super::api::Call>),
    /// On a device without a software path, a command it does not offload: it raises
    /// UNSUPPORTED_NVMF_OP and does not answer with success; the host then leaves.
    Unsupported {
        /// The host (modulo those connected).
        host: usize,
        /// The command.
        cmd: Cmd,
    },
    /// Commands submitted together on one host's queue, then every answer reaped.
    Batch {
        /// The host (modulo those connected).
        host: usize,
        /// The commands, in submission order.
        cmds: Vec<Cmd>,
    },
    /// A fault in the backend controller, then one command on one host that meets it.
    Fault {
        /// The fault.
        kind: FaultKind,
        /// The host (modulo those connected).
        host: usize,
        /// The command.
        cmd: Cmd,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Connect => write!(f, "connect"),
            Op::Disconnect(h) => write!(f, "disconnect host {h}"),
            Op::Stranger => write!(f, "connect from a host not allowed"),
            Op::BeforeConnect { cmd } => write!(f, "{cmd} before Connect"),
            Op::Api(calls) => {
                write!(f, "API:")?;
                for (i, c) in calls.iter().enumerate() {
                    write!(f, "{}{c}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Op::Unsupported { host, cmd } => write!(f, "unsupported {cmd} on host {host}"),
            Op::Batch { host, cmds } => {
                write!(f, "host {host} QD{}:", cmds.len())?;
                for (i, c) in cmds.iter().enumerate() {
                    write!(f, "{}{c}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Op::Fault { kind, host, cmd } => write!(f, "{kind} on host {host}'s {cmd}"),
        }
    }
}

/// What the episodes may draw from.
#[derive(Debug, Clone)]
pub struct Menu {
    /// NVM commands the device serves (offloaded, or through its software path).
    pub ops: OffloadOps,
    /// Whether the device hands what it does not offload to software (malformed commands
    /// are sent only then: without it, the device never answers them).
    pub software: bool,
    /// Commands the device does not offload and, without a software path, cannot serve.
    pub unserved: OffloadOps,
    /// Faults to inject.
    pub faults: Vec<FaultKind>,
    /// Steps per episode.
    pub steps: usize,
}

/// The steps of episode `episode` of a soak with base seed `seed`: a function of the two
/// and the menu alone.
pub fn episode(seed: u64, episode: u64, menu: &Menu) -> Vec<Op> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ episode.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut ops = vec![Op::Connect];
    while ops.len() < menu.steps {
        let roll = rng.random_range(0..100u32);
        let op = match roll {
            0..=5 => Op::Connect,
            6..=7 => Op::Disconnect(rng.random_range(0..MAX_HOSTS)),
            8 => Op::Stranger,
            12 if menu.ops.contains(OffloadOps::WRITE) => {
                let blocks = rng.random_range(1..=MAX_BLOCKS);
                Op::BeforeConnect {
                    cmd: Cmd::Write {
                        lba: rng.random_range(0..=BLOCKS - u64::from(blocks)),
                        blocks,
                        seed: rng.random(),
                    },
                }
            }
            14 | 15 => Op::Api(super::api::calls(&mut rng, 16)),
            13 if !menu.unserved.is_empty() => {
                let blocks = rng.random_range(1..=MAX_BLOCKS);
                let lba = rng.random_range(0..=BLOCKS - u64::from(blocks));
                let cmd = if menu.unserved.contains(OffloadOps::READ) {
                    Cmd::Read { lba, blocks }
                } else if menu.unserved.contains(OffloadOps::FLUSH) {
                    Cmd::Flush
                } else {
                    Cmd::WriteZeroes { lba, blocks }
                };
                Op::Unsupported {
                    host: rng.random_range(0..MAX_HOSTS),
                    cmd,
                }
            }
            9..=11 if !menu.faults.is_empty() => {
                // A PCI error ends the namespace's life for the episode: rarer.
                let mut kind = menu.faults[rng.random_range(0..menu.faults.len())];
                if kind == FaultKind::PciError && menu.faults.len() > 1 && rng.random_bool(0.75) {
                    kind = menu.faults[rng.random_range(0..menu.faults.len())];
                }
                let cmd = loop {
                    let c = command(&mut rng, menu);
                    if matches!(c, Cmd::Read { .. } | Cmd::Write { .. }) {
                        break c;
                    }
                };
                Op::Fault {
                    kind,
                    host: rng.random_range(0..MAX_HOSTS),
                    cmd,
                }
            }
            _ => {
                let depth = if rng.random_bool(0.5) {
                    1
                } else {
                    rng.random_range(2..=MAX_DEPTH)
                };
                Op::Batch {
                    host: rng.random_range(0..MAX_HOSTS),
                    cmds: (0..depth).map(|_| command(&mut rng, menu)).collect(),
                }
            }
        };
        ops.push(op);
    }
    ops
}

/// A command the device serves, on a random range.
fn command(rng: &mut ChaCha8Rng, menu: &Menu) -> Cmd {
    loop {
        let blocks = rng.random_range(1..=MAX_BLOCKS);
        let lba = rng.random_range(0..=BLOCKS - u64::from(blocks));
        let (c, needs) = match rng.random_range(0..21u32) {
            20 if menu.software && blocks >= 2 => {
                (Cmd::ShortRead { lba, blocks }, OffloadOps::READ)
            }
            20 => continue,
            0..=7 => (
                Cmd::Write {
                    lba,
                    blocks,
                    seed: rng.random(),
                },
                OffloadOps::WRITE,
            ),
            8..=15 => (Cmd::Read { lba, blocks }, OffloadOps::READ),
            16 => (Cmd::Flush, OffloadOps::FLUSH),
            17 | 18 => (Cmd::WriteZeroes { lba, blocks }, OffloadOps::WRITE_ZEROES),
            _ => (Cmd::Deallocate { lba, blocks }, OffloadOps::DATASET_MGMT),
        };
        if menu.ops.contains(needs) {
            return c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu(ops: OffloadOps) -> Menu {
        Menu {
            ops,
            software: false,
            unserved: OffloadOps::empty(),
            faults: vec![FaultKind::Timeout],
            steps: 200,
        }
    }

    #[test]
    fn an_episode_depends_on_the_seed_and_its_number_alone() {
        let m = menu(OffloadOps::all());
        assert_eq!(episode(7, 3, &m), episode(7, 3, &m));
        assert_ne!(episode(7, 3, &m), episode(7, 4, &m));
        assert_ne!(episode(7, 3, &m), episode(8, 3, &m));
        assert_eq!(episode(7, 3, &m).len(), 200);
    }

    #[test]
    fn commands_stay_within_the_menu_and_the_namespace() {
        let m = menu(OffloadOps::READ_WRITE);
        for e in 0..20 {
            for op in episode(1, e, &m) {
                let cmds = match op {
                    Op::Batch { cmds, .. } => cmds,
                    Op::Fault { cmd, .. } => vec![cmd],
                    _ => continue,
                };
                for c in cmds {
                    assert!(matches!(c, Cmd::Read { .. } | Cmd::Write { .. }), "{c}");
                    assert!(c.range().end <= BLOCKS && !c.range().is_empty(), "{c}");
                }
            }
        }
    }
}
