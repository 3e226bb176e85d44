//! A driver's queue pair on a PCIe controller, polled (interrupts off): SQEs written into
//! the SQ ring and the SQ tail doorbell rung; CQEs taken from the CQ ring by phase tag and
//! the CQ head doorbell rung. The admin queue and the driver's own I/O queues use it; the
//! rings are DMA memory ([`DmaMemory`]: a [`super::sys::DmaBuffer`], or plain memory in
//! tests).

use std::time::Duration;

use super::bringup::Clock;
use super::regs::{self, Registers};
use super::VfioError;
use crate::wire::{cq_head_doorbell, sq_tail_doorbell, CqeRepr, SqeRepr, CQE_LEN, SQE_LEN};

/// Memory a controller reads and writes by DMA.
pub trait DmaMemory: Send + Sync {
    /// The bus address of its first byte.
    fn iova(&self) -> u64;
    /// Copies bytes from `offset`.
    fn read(&self, offset: usize, buf: &mut [u8]);
    /// Copies bytes to `offset`.
    fn write(&self, offset: usize, data: &[u8]);
}

impl DmaMemory for super::sys::DmaBuffer {
    fn iova(&self) -> u64 {
        super::sys::DmaBuffer::iova(self)
    }
    fn read(&self, offset: usize, buf: &mut [u8]) {
        super::sys::DmaBuffer::read(self, offset, buf)
    }
    fn write(&self, offset: usize, data: &[u8]) {
        super::sys::DmaBuffer::write(self, offset, data)
    }
}

/// How often a waiting command's CQ is polled.
const POLL: Duration = Duration::from_millis(1);

/// One SQ and its CQ.
pub struct QueuePair<M: DmaMemory> {
    qid: u16,
    depth: u16,
    dstrd: u8,
    sq: M,
    cq: M,
    tail: u16,
    head: u16,
    phase: bool,
    next_cid: u16,
}

impl<M: DmaMemory> std::fmt::Debug for QueuePair<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuePair")
            .field("qid", &self.qid)
            .field("tail", &self.tail)
            .field("head", &self.head)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<M: DmaMemory> QueuePair<M> {
    /// Queue `qid` of `depth` entries with its rings in `sq` and `cq` (zeroed, at least
    /// `depth` entries each), doorbells `dstrd` apart (CAP.DSTRD).
    pub fn new(qid: u16, depth: u16, dstrd: u8, sq: M, cq: M) -> QueuePair<M> {
        QueuePair {
            qid,
            depth,
            dstrd,
            sq,
            cq,
            tail: 0,
            head: 0,
            phase: true,
            next_cid: 0,
        }
    }

    /// Starts over after the controller was reset: tail, head and phase back to their
    /// first values, the CQ ring zeroed (an old entry must not pass for a new one).
    pub fn restart(&mut self) {
        self.tail = 0;
        self.head = 0;
        self.phase = true;
        self.cq
            .write(0, &vec![0u8; usize::from(self.depth) * CQE_LEN]);
    }

    /// The queue's identifier.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Entries of each ring.
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// The SQ ring's bus address.
    pub fn sq_iova(&self) -> u64 {
        self.sq.iova()
    }

    /// The CQ ring's bus address.
    pub fn cq_iova(&self) -> u64 {
        self.cq.iova()
    }

    /// Writes `sqe` (its CID replaced by the next one) at the tail and rings the doorbell;
    /// returns the CID.
    pub fn submit(&mut self, regs: &dyn Registers, sqe: &SqeRepr) -> Result<u16, VfioError> {
        let cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        let mut bytes = [0u8; SQE_LEN];
        SqeRepr { cid, ..*sqe }
            .emit(&mut bytes)
            .map_err(|e| VfioError::Unsupported(format!("SQE does not emit: {e}")))?;
        self.sq.write(usize::from(self.tail) * SQE_LEN, &bytes);
        self.tail = (self.tail + 1) % self.depth;
        regs.write32(sq_tail_doorbell(self.qid, self.dstrd), u32::from(self.tail));
        Ok(cid)
    }

    /// The CQE at the head when its phase tag is current (advancing the head and ringing
    /// the CQ head doorbell), else `None`.
    pub fn poll(&mut self, regs: &dyn Registers) -> Option<CqeRepr> {
        let mut bytes = [0u8; CQE_LEN];
        self.cq.read(usize::from(self.head) * CQE_LEN, &mut bytes);
        let cqe = CqeRepr::parse_bytes(&bytes).ok()?;
        if cqe.phase != self.phase {
            return None;
        }
        self.head = (self.head + 1) % self.depth;
        if self.head == 0 {
            self.phase = !self.phase;
        }
        regs.write32(cq_head_doorbell(self.qid, self.dstrd), u32::from(self.head));
        Some(cqe)
    }

    /// Submits `sqe` and waits, at most `bound`, for its completion, checking between polls
    /// that the controller is neither fatal nor gone. `what` names the command in errors.
    pub fn command(
        &mut self,
        regs: &dyn Registers,
        sqe: &SqeRepr,
        bound: Duration,
        clock: &mut dyn Clock,
        what: &'static str,
    ) -> Result<CqeRepr, VfioError> {
        let cid = self.submit(regs, sqe)?;
        let start = clock.now();
        loop {
            while let Some(cqe) = self.poll(regs) {
                if cqe.cid == cid {
                    return Ok(cqe);
                }
            }
            let (raw, csts) = regs::csts(regs);
            if raw == u32::MAX {
                return Err(VfioError::DeviceGone(what));
            }
            if csts.cfs {
                return Err(VfioError::ControllerFatal {
                    csts: raw,
                    during: what,
                });
            }
            let waited = clock.now().saturating_sub(start);
            if waited >= bound {
                return Err(VfioError::NoCompletion {
                    what,
                    waited_ms: waited.as_millis() as u64,
                });
            }
            clock.sleep(POLL);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::regs::fake::{FakeClock, FakeRegisters};
    use super::*;
    use crate::wire::{AdminCommand, CqeRepr, Status};

    /// Plain memory standing in for DMA memory.
    #[derive(Clone, Debug)]
    pub struct Ram {
        pub iova: u64,
        pub bytes: Arc<Mutex<Vec<u8>>>,
    }

    impl Ram {
        pub fn new(iova: u64, len: usize) -> Ram {
            Ram {
                iova,
                bytes: Arc::new(Mutex::new(vec![0; len])),
            }
        }
    }

    impl DmaMemory for Ram {
        fn iova(&self) -> u64 {
            self.iova
        }
        fn read(&self, offset: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.bytes.lock().unwrap()[offset..offset + buf.len()]);
        }
        fn write(&self, offset: usize, data: &[u8]) {
            self.bytes.lock().unwrap()[offset..offset + data.len()].copy_from_slice(data);
        }
    }

    /// Plays the controller: completes every SQE between `done` and the SQ tail doorbell's
    /// value with status `status`, writing CQEs with the right phase, as QEMU does.
    fn complete_all(
        regs: &FakeRegisters,
        sq: &Ram,
        cq: &Ram,
        state: &mut (u16, u16, bool),
        status: Status,
    ) {
        let depth = 4u16;
        let tail = regs.state().values.get(&0x1000).copied().unwrap_or(0) as u16;
        while state.0 != tail {
            let mut sqe = [0u8; SQE_LEN];
            sq.read(usize::from(state.0) * SQE_LEN, &mut sqe);
            let parsed =
                SqeRepr::parse_raw(&crate::wire::Sqe::new_checked(&sqe[..]).unwrap()).unwrap();
            state.0 = (state.0 + 1) % depth;
            let cqe = CqeRepr {
                result: 0,
                sq_head: state.0,
                sq_id: 0,
                cid: parsed.cid,
                phase: state.2,
                status,
            };
            cq.write(usize::from(state.1) * CQE_LEN, &cqe.to_bytes().unwrap());
            state.1 = (state.1 + 1) % depth;
            if state.1 == 0 {
                state.2 = !state.2;
            }
        }
    }

    #[test]
    fn commands_complete_by_phase_through_wraps() {
        let regs = FakeRegisters::new(0, Some(0));
        let (sq, cq) = (Ram::new(0x1000, 4 * SQE_LEN), Ram::new(0x2000, 4 * CQE_LEN));
        let mut q = QueuePair::new(0, 4, 0, sq.clone(), cq.clone());
        let mut ctrl = (0u16, 0u16, true);
        let identify = SqeRepr::with_prps(
            0,
            0,
            AdminCommand::Identify { cns: 1, cntid: 0 }.to_sqe_command(),
            0x3000,
            0,
        );
        for i in 0..10u16 {
            let cid = q.submit(&regs, &identify).unwrap();
            assert_eq!(cid, i);
            assert_eq!(q.poll(&regs), None, "nothing before the controller answers");
            complete_all(&regs, &sq, &cq, &mut ctrl, Status::SUCCESS);
            let cqe = q.poll(&regs).expect("a completion");
            assert_eq!((cqe.cid, cqe.status), (i, Status::SUCCESS));
            // The CQ head doorbell follows.
            assert_eq!(regs.state().values[&0x1004], u32::from((i + 1) % 4));
        }
        let mut sqe = [0u8; SQE_LEN];
        sq.read(0, &mut sqe);
        assert_eq!(sqe[0], 0x06, "Identify's opcode in the ring");
        assert_eq!(&sqe[24..32], &0x3000u64.to_le_bytes(), "PRP1");
    }

    #[test]
    fn a_restarted_queue_ignores_what_the_reset_controller_left() {
        let regs = FakeRegisters::new(0, Some(0));
        let (sq, cq) = (Ram::new(0x1000, 4 * SQE_LEN), Ram::new(0x2000, 4 * CQE_LEN));
        let mut q = QueuePair::new(0, 4, 0, sq.clone(), cq.clone());
        let mut ctrl = (0u16, 0u16, true);
        let flush = SqeRepr::with_prps(0, 1, crate::wire::SqeCommand::Flush, 0, 0);
        q.submit(&regs, &flush).unwrap();
        complete_all(&regs, &sq, &cq, &mut ctrl, Status::SUCCESS);
        // The controller is reset before the entry is taken: the old entry (phase 1) must
        // not be taken for the first one after the restart.
        q.restart();
        assert_eq!(q.poll(&regs), None);
        regs.state().values.insert(0x1000, 0);
        let mut fresh = (0u16, 0u16, true);
        let cid = q.submit(&regs, &flush).unwrap();
        assert_eq!(regs.state().values[&0x1000], 1, "the tail starts over at 0");
        complete_all(&regs, &sq, &cq, &mut fresh, Status::SUCCESS);
        assert_eq!(q.poll(&regs).map(|c| c.cid), Some(cid));
    }

    #[test]
    fn a_command_without_completion_is_bounded_and_fatal_status_ends_it() {
        let regs = FakeRegisters::new(0, Some(0));
        let mut q = QueuePair::new(1, 4, 0, Ram::new(0x1000, 256), Ram::new(0x2000, 64));
        let flush = SqeRepr::with_prps(0, 1, crate::wire::SqeCommand::Flush, 0, 0);
        let mut clock = FakeClock::default();
        let mut flush_fails = || {
            q.command(
                &regs,
                &flush,
                Duration::from_millis(30),
                &mut clock,
                "a flush",
            )
            .unwrap_err()
        };
        let e = flush_fails();
        assert_eq!(
            e,
            VfioError::NoCompletion {
                what: "a flush",
                waited_ms: 30
            }
        );
        assert_eq!(regs.state().values[&0x1008], 1, "qid 1 SQ tail doorbell");
        regs.state().values.insert(0x14, 1);
        regs.state().fatal_on_enable = true;
        let e = flush_fails();
        assert!(
            matches!(
                e,
                VfioError::ControllerFatal {
                    during: "a flush",
                    ..
                }
            ),
            "{e:?}"
        );
        regs.state().gone = true;
        let e = flush_fails();
        assert_eq!(e, VfioError::DeviceGone("a flush"));
    }
}
