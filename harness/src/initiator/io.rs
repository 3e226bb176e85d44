//! I/O queue commands: Read, Write, Flush, Write Zeroes, Dataset Management.
//!
//! Each returns the [`Completion`] (CQE, data read, keys) without turning an NVMe error
//! status into `Err`: conformance tests look at the status themselves. Data travels as
//! [`DataMode`] says; Read cannot be in-capsule.

use super::error::Result;
use super::queue::{Command, Completion, DataMode, HostQueue, Transfer};
use crate::wire::{DsmCommand, DsmRangeRepr, RwCommand, SqeCommand, WriteZeroesCommand};

/// A connected I/O queue bound to one namespace.
#[derive(Debug)]
pub struct IoQueue {
    queue: HostQueue,
    nsid: u32,
    lba_size: u32,
}

impl IoQueue {
    /// Wraps a connected queue for namespace `nsid` with `lba_size`-byte blocks.
    pub fn new(queue: HostQueue, nsid: u32, lba_size: u32) -> IoQueue {
        IoQueue {
            queue,
            nsid,
            lba_size,
        }
    }

    /// The underlying queue (for raw submissions and misbehaviour).
    pub fn queue(&mut self) -> &mut HostQueue {
        &mut self.queue
    }

    /// Namespace ID used by the commands.
    pub fn nsid(&self) -> u32 {
        self.nsid
    }

    /// Logical block size in bytes.
    pub fn lba_size(&self) -> u32 {
        self.lba_size
    }

    /// Runs any NVM command on this queue with this namespace.
    pub async fn command(
        &mut self,
        command: SqeCommand,
        transfer: Transfer<'_>,
        mode: DataMode,
    ) -> Result<Completion> {
        let cmd = Command::Nvme {
            nsid: self.nsid,
            command,
        };
        self.queue.execute(&cmd, transfer, mode).await
    }

    /// Reads `blocks` blocks from `slba` (keyed SGL; `mode` InCapsule is refused).
    pub async fn read(&mut self, slba: u64, blocks: u32, mode: DataMode) -> Result<Completion> {
        let len = blocks * self.lba_size;
        self.command(
            SqeCommand::Read(RwCommand::new(slba, blocks)),
            Transfer::FromTarget(len),
            mode,
        )
        .await
    }

    /// Writes `data` (a whole number of blocks) at `slba`.
    pub async fn write(&mut self, slba: u64, data: &[u8], mode: DataMode) -> Result<Completion> {
        let blocks = (data.len() as u32).div_ceil(self.lba_size.max(1));
        self.command(
            SqeCommand::Write(RwCommand::new(slba, blocks)),
            Transfer::ToTarget(data),
            mode,
        )
        .await
    }

    /// Flush.
    pub async fn flush(&mut self) -> Result<Completion> {
        self.command(SqeCommand::Flush, Transfer::None, DataMode::Keyed)
            .await
    }

    /// Write Zeroes of `blocks` blocks from `slba`.
    pub async fn write_zeroes(&mut self, slba: u64, blocks: u32) -> Result<Completion> {
        let c = WriteZeroesCommand {
            slba,
            nlb: (blocks.clamp(1, 0x1_0000) - 1) as u16,
            ..WriteZeroesCommand::default()
        };
        self.command(SqeCommand::WriteZeroes(c), Transfer::None, DataMode::Keyed)
            .await
    }

    /// Dataset Management with the given ranges `(context attributes, blocks, slba)`
    /// and attribute Deallocate when `deallocate`.
    pub async fn dataset_management(
        &mut self,
        ranges: &[(u32, u32, u64)],
        deallocate: bool,
        mode: DataMode,
    ) -> Result<Completion> {
        let descriptors: Vec<DsmRangeRepr> = ranges
            .iter()
            .map(|&(cattr, nlb, slba)| DsmRangeRepr { cattr, nlb, slba })
            .collect();
        let data = DsmRangeRepr::emit_list(&descriptors);
        let c = DsmCommand {
            nr: (ranges.len().clamp(1, 256) - 1) as u8,
            idr: false,
            idw: false,
            ad: deallocate,
        };
        self.command(
            SqeCommand::DatasetManagement(c),
            Transfer::ToTarget(&data),
            mode,
        )
        .await
    }

    /// Disconnects through the CM and frees the queue (bounded by `bound`).
    pub async fn disconnect(self, bound: std::time::Duration) -> Result<()> {
        self.queue.disconnect(bound).await
    }

    /// Takes the queue back.
    pub fn into_inner(self) -> HostQueue {
        self.queue
    }
}
