//! What the controller hands the nodes, and nothing else: a job's `network.json` (its VLAN, its
//! nodes' VMs) and the VMs' addresses. The controller (`jobnet`) writes it; the node side
//! (`jobnet-node`, the CNI plugin) reads it. Both sides build against this one crate, so the file
//! format cannot drift between them.

pub use jobnet_base as base;

/// The job files shared by the controller and the nodes (the controller's `jobs` module
/// re-exports these two).
pub mod jobs {
    pub mod addresses;
    pub mod network;
}
