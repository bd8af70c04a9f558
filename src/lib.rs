//! jobnet gives every HPC job its own isolated network and takes it away again when the job ends.
//!
//! The library follows the flow of a job, one folder per stage:
//! [`topology`] (load → validate → graph) → [`plan`] (pure: job + topology + allocations →
//! per-device operations and command lines, the partitions.conf text; the Steiner subgraph;
//! text/JSON/DOT/SVG views) → [`apply`] (executor: parallel per device, journal in [`state`],
//! wind/unwind rollback) → [`drivers`] (vendor dialects as data, transports as code) and [`ib`]
//! (partitions.conf, OpenSM). [`base`] holds what every stage uses; [`testkit`] (feature
//! `testkit`) the simulators and failpoints of the tests.
//!
//! Callers (the command line, scheduler hooks, a daemon) use the facade, [`Context`]: built once
//! from [`Options`], it offers plan / up / down / status / recover with typed reports and one
//! [`Error`] type that knows its exit code. [`daemon`] is jobnetd, the optional process that keeps
//! device sessions warm for them. docs/architecture.md draws the whole map.

pub use jobnet_base as base;
pub use jobnet_daemon::daemon;
pub use jobnet_drivers::drivers;
pub use jobnet_engine::{apply, context, ib, plan, state};
pub use jobnet_model::topology;
pub use jobnet_node::node;

pub mod jobs;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use context::{Context, Error, Options};
