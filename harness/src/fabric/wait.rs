//! Bounded waits over a [`DeviceContext`]: nothing in nvmf-conform waits forever.
//!
//! On `sim` the bound is virtual time (a paused tokio clock), so a hung peer costs nothing;
//! on real verbs it is wall time.

use std::time::Duration;

use super::{AsyncEvent, CmEvent, CqId, DeviceContext, FabricError, WorkCompletion};

/// A bounded wait ended without what it waited for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// Nothing arrived within the bound.
    #[error("nothing arrived within {0:?}")]
    TimedOut(Duration),
    /// The fabric call itself failed.
    #[error(transparent)]
    Fabric(#[from] FabricError),
}

/// Waits up to `bound` for the next completion on `cq` and takes it.
pub async fn completion(
    ctx: &dyn DeviceContext,
    cq: CqId,
    bound: Duration,
) -> Result<WorkCompletion, WaitError> {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(wc) = ctx.poll_cq(cq, 1)?.pop() {
            return Ok(wc);
        }
        match tokio::time::timeout_at(deadline, ctx.wait_cq(cq)).await {
            Ok(r) => r?,
            Err(_) => return Err(WaitError::TimedOut(bound)),
        }
    }
}

/// Waits up to `bound` for `n` completions on `cq`, in arrival order.
pub async fn completions(
    ctx: &dyn DeviceContext,
    cq: CqId,
    n: usize,
    bound: Duration,
) -> Result<Vec<WorkCompletion>, WaitError> {
    let deadline = tokio::time::Instant::now() + bound;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.extend(ctx.poll_cq(cq, n - out.len())?);
        if out.len() == n {
            break;
        }
        match tokio::time::timeout_at(deadline, ctx.wait_cq(cq)).await {
            Ok(r) => r?,
            Err(_) => return Err(WaitError::TimedOut(bound)),
        }
    }
    Ok(out)
}

/// Waits up to `bound` for the next async event.
pub async fn async_event(
    ctx: &dyn DeviceContext,
    bound: Duration,
) -> Result<AsyncEvent, WaitError> {
    tokio::time::timeout(bound, ctx.next_async_event())
        .await
        .map_err(|_| WaitError::TimedOut(bound))
}

/// Waits up to `bound` for the next connection-manager event.
pub async fn cm_event(ctx: &dyn DeviceContext, bound: Duration) -> Result<CmEvent, WaitError> {
    tokio::time::timeout(bound, ctx.next_cm_event())
        .await
        .map_err(|_| WaitError::TimedOut(bound))
}
