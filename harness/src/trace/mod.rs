//! Traces: the ordered record of what a case did and saw — API calls and their results,
//! work requests, completions, capsules and responses, async and CM events — as text that
//! reads the same on every fabric.
//!
//! [`Recorder`] holds the lines. [`TracedContext`] wraps a [`DeviceContext`] and records
//! everything that crosses it; [`TracedProvider`] does the same for an
//! [`OffloadProvider`](crate::api::OffloadProvider). Values that differ from one fabric or
//! run to another (QP numbers, keys, addresses) are written as the names of the objects
//! they belong to (`qp1`, `mr2.rkey`, `mr2+0x40`), so a trace normalises itself as it is
//! recorded and the same snapshot holds for `sim` and real verbs.
//!
//! [`DeviceContext`]: crate::fabric::DeviceContext

mod context;
mod names;
mod provider;
mod recorder;

pub use context::{command_text, TracedContext};
pub use names::Names;
pub use provider::TracedProvider;
pub use recorder::{Recorder, TraceLine};
