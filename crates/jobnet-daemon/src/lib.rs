//! jobnetd as a crate: [`daemon`] keeps device sessions warm, merges concurrent jobs' operations
//! on one device and answers identical reads once. It reaches the drivers and transports, never
//! the state store, the planner or the executor (it holds no job state), so it is built without
//! SQLite.

pub use jobnet_base as base;
pub use jobnet_drivers::drivers;

pub mod daemon;
