//! jobnet's engine: [`plan`] (pure: job + topology + allocations → per-device operations, the
//! partitions.conf text), [`ib`] (partitions.conf, OpenSM), [`state`] (the state store),
//! [`apply`] (the executor: journal, wind/unwind rollback) and the facade [`Context`] that callers
//! use. The lower crates are re-exported under the names the whole tree uses (`crate::base`,
//! `crate::topology`, `crate::drivers`).

pub use jobnet_base as base;
pub use jobnet_drivers::drivers;
pub use jobnet_model::topology;

pub mod apply;
pub mod context;
pub mod ib;
pub mod plan;
pub mod state;

pub use context::{Context, Error, Options};
