//! jobnet's device drivers: the CLI-dialect driver that turns typed operations into a dialect's
//! lines and answers into typed results, merged sends of several jobs on one device, and the
//! transports (SSH with known hosts and credentials, local commands, the jobnetd client, the
//! session pool). Paths stay `crate::drivers::…` as in the whole tree: the model's profiles and
//! operations are re-exported inside [`drivers`].

pub use jobnet_base as base;

pub mod drivers;
