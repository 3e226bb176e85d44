//! The C ABI of vendor plugins (`include/nvmf_offload.h`).
//!
//! - [`abi`]: `#[repr(C)]` mirrors of every struct and vtable of the header.
//! - [`convert`]: conversions between those and the Rust model (no pointers, no unsafe).
//! - [`bridge`]: exporting Rust objects as C vtables, importing C vtables as Rust
//!   objects, loading plugin libraries.
//! - `process`: `fork` and `_exit` for the runner's process isolation.
//!
//! `bridge` and `process` hold all of the crate's unsafe code (the `verbs` feature adds
//! the verbs fabric's own FFI module).
//!
//! Users want [`crate::plugin`], which puts these together.

pub mod abi;
pub mod bridge;
pub mod convert;
pub(crate) mod process;
