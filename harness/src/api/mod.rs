//! The offload API under test.
