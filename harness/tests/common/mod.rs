//! What the harness's integration tests share.

pub mod cc;
