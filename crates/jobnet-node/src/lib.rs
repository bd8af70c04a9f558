//! jobnet's node side as its own crate: it reads the controller's network.json
//! ([`jobs::network`]) and puts a job's VMs and containers on the job VLAN. It needs neither SSH
//! nor a state store, so the `jobnet-node` binary built from it carries neither.

pub use jobnet_base as base;
pub use jobnet_contract::jobs;

pub mod cli;
pub mod node;
