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

pub mod apply;
pub mod base;
pub mod context;
pub mod daemon;
pub mod drivers;
pub mod ib;
pub mod jobs;
pub mod node;
pub mod plan;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod topology;

pub use context::{Context, Error, Options};
