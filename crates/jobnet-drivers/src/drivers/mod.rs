//! Drivers: how planned operations reach a device. A vendor dialect is data — a profile in
//! switch-drivers/ ([`profile`]); a transport is code — SSH or a local command ([`transport`]);
//! the [`cli`] driver joins them: it renders a device's typed operations into the dialect's lines,
//! sends them over a session, reads the device's state back, and turns answers into typed results.
//! [`ops`] defines the typed operations themselves ([`ops::Op`]): the planner produces them, the
//! journal stores them, drivers carry them out. [`merge`] sends several jobs' operations on one
//! device as one session's stream (jobnetd).

pub mod cli;
pub mod merge;
pub use jobnet_model::drivers::{ops, profile};
pub mod transport;

pub use profile::*;
