//! Per-controller fault injection, applied when a command is fetched.
//!
//! All delays run on tokio's clock, so a suite on a paused clock pays nothing for them.

use std::ops::Range;
use std::time::Duration;

use crate::wire::SqeRepr;

/// Which command a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CmdMatch {
    /// The Nth command fetched after the fault is injected (1 = the next one); one-shot.
    Nth(u64),
    /// Every command with this command identifier.
    Cid(u16),
    /// Every command with this opcode.
    Opcode(u8),
    /// Every command.
    Any,
}

/// A fault to inject into a backend controller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The controller fails fatally now: doorbells are ignored from then on and
    /// outstanding commands never complete; the state becomes [`crate::backend::CtrlState::PciError`].
    PciError,
    /// The same, when a matching command is fetched (that command never completes).
    PciErrorOn(CmdMatch),
    /// Matching commands complete `delay` late, or never when `delay` is `None`.
    Timeout {
        /// Which commands.
        on: CmdMatch,
        /// Extra delay before the completion is posted; `None` = never.
        delay: Option<Duration>,
    },
    /// The data buffers of the next `count` commands that move data are treated as
    /// unmapped: they complete with Data Transfer Error.
    DmaFault {
        /// How many commands.
        count: u32,
    },
    /// Reads touching `lbas` of namespace `nsid` fail with Unrecovered Read Error.
    MediaError {
        /// The backend namespace.
        nsid: u32,
        /// The bad blocks.
        lbas: Range<u64>,
    },
    /// Every completion is posted `delay` after its command is fetched.
    SlowCompletions {
        /// The delay.
        delay: Duration,
    },
}

/// What the faults decide for one fetched command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The controller fails fatally at this command.
    pub pci_error: bool,
    /// The command's buffer is treated as unmapped.
    pub dma_fault: bool,
    /// The completion is never posted.
    pub never: bool,
    /// Delay before the completion is posted.
    pub delay: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Absolute command number (1-based, counted over the controller's life), or a matcher.
    At(u64),
    Match(CmdMatch),
}

impl Rule {
    fn new(on: CmdMatch, fetched: u64) -> Rule {
        match on {
            CmdMatch::Nth(n) => Rule::At(fetched + n.max(1)),
            m => Rule::Match(m),
        }
    }

    fn hits(&self, seq: u64, sqe: &SqeRepr) -> bool {
        match *self {
            Rule::At(n) => n == seq,
            Rule::Match(CmdMatch::Cid(c)) => sqe.cid == c,
            Rule::Match(CmdMatch::Opcode(o)) => sqe.opcode() == o,
            Rule::Match(CmdMatch::Any) => true,
            Rule::Match(CmdMatch::Nth(_)) => false,
        }
    }
}

/// The faults armed on one controller (media errors live in the namespaces).
#[derive(Debug, Default)]
pub struct FaultState {
    pci: Vec<Rule>,
    timeouts: Vec<(Rule, Option<Duration>)>,
    dma: u32,
    slow: Duration,
}

impl FaultState {
    /// Arms a fault; `fetched` is the number of commands fetched so far. Returns `true`
    /// for [`Fault::PciError`] (the caller fails the controller now). Media errors are
    /// not kept here (the caller gives them to the namespace).
    pub fn arm(&mut self, fault: &Fault, fetched: u64) -> bool {
        match *fault {
            Fault::PciError => return true,
            Fault::PciErrorOn(on) => self.pci.push(Rule::new(on, fetched)),
            Fault::Timeout { on, delay } => self.timeouts.push((Rule::new(on, fetched), delay)),
            Fault::DmaFault { count } => self.dma = self.dma.saturating_add(count),
            Fault::MediaError { .. } => {}
            Fault::SlowCompletions { delay } => self.slow = delay,
        }
        false
    }

    /// Disarms every fault.
    pub fn clear(&mut self) {
        *self = FaultState::default();
    }

    /// Decides the fate of the `seq`th command fetched (1-based); `moves_data` says
    /// whether it has a data buffer (a DMA fault is spent only on such a command).
    pub fn on_command(&mut self, seq: u64, sqe: &SqeRepr, moves_data: bool) -> Verdict {
        let mut v = Verdict {
            delay: self.slow,
            ..Verdict::default()
        };
        v.pci_error = self.pci.iter().any(|r| r.hits(seq, sqe));
        for (rule, delay) in &self.timeouts {
            if rule.hits(seq, sqe) {
                match delay {
                    None => v.never = true,
                    Some(d) => v.delay += *d,
                }
            }
        }
        self.pci.retain(|r| !matches!(r, Rule::At(n) if *n <= seq));
        self.timeouts
            .retain(|(r, _)| !matches!(r, Rule::At(n) if *n <= seq));
        if moves_data && self.dma > 0 {
            self.dma -= 1;
            v.dma_fault = true;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::emulated::backend_sqe;
    use crate::wire::{RwCommand, SqeCommand};

    #[test]
    fn nth_is_relative_and_one_shot() {
        let mut f = FaultState::default();
        let s = backend_sqe(1, 1, SqeCommand::Flush, 0);
        assert!(!f.arm(
            &Fault::Timeout {
                on: CmdMatch::Nth(2),
                delay: None
            },
            10
        ));
        assert!(!f.on_command(11, &s, false).never);
        assert!(f.on_command(12, &s, false).never);
        assert!(!f.on_command(13, &s, false).never);
    }

    #[test]
    fn matchers_delays_and_dma() {
        let mut f = FaultState::default();
        let r = backend_sqe(5, 1, SqeCommand::Read(RwCommand::new(0, 1)), 0);
        let fl = backend_sqe(6, 1, SqeCommand::Flush, 0);
        f.arm(
            &Fault::Timeout {
                on: CmdMatch::Opcode(0x02),
                delay: Some(Duration::from_millis(5)),
            },
            0,
        );
        f.arm(
            &Fault::SlowCompletions {
                delay: Duration::from_millis(1),
            },
            0,
        );
        f.arm(&Fault::DmaFault { count: 1 }, 0);
        f.arm(&Fault::PciErrorOn(CmdMatch::Cid(9)), 0);
        assert!(f.arm(&Fault::PciError, 0));
        let v = f.on_command(1, &fl, false);
        assert_eq!(v.delay, Duration::from_millis(1));
        assert!(!v.dma_fault);
        let v = f.on_command(2, &r, true);
        assert_eq!(v.delay, Duration::from_millis(6));
        assert!(v.dma_fault && !v.pci_error);
        assert!(!f.on_command(3, &r, true).dma_fault);
        let p = backend_sqe(9, 1, SqeCommand::Flush, 0);
        assert!(f.on_command(4, &p, false).pci_error);
        f.clear();
        assert_eq!(f.on_command(5, &r, true), Verdict::default());
    }
}
