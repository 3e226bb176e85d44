//! Fabric contract cases (in progress).
