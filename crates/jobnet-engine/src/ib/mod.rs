//! InfiniBand: OpenSM's partitions.conf (its grammar as the real OpenSM reads it, jobnet's managed
//! region, safe replacement), making OpenSM apply it (reload, coalescing, verification), and
//! importing port GUIDs from `ibnetdiscover` output.

pub mod import;
pub mod opensm;
pub mod partitions;
