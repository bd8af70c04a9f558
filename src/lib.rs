//! jobnet gives every HPC job its own isolated network and takes it away again when the job ends.
//!
//! The library follows the flow of a job: [`topology`] (load → validate → graph) →
//! [`subgraph`] (the minimal loop-free part of the fabric joining the job's nodes) → [`plan`]
//! (pure: job + topology + allocations → per-device operations and command lines, the
//! partitions.conf text) → [`apply`] (executor: parallel per device, journal in [`state`],
//! wind/unwind rollback) → [`transport`] (how lines reach a device). [`render`] gives text, JSON,
//! DOT and SVG views of a plan. Vendor dialects are data in switch-drivers/, loaded by
//! [`drivers`]; [`sim`] is a simulated switch that speaks them, for tests.

pub mod apply;
pub mod credentials;
pub mod diag;
pub mod drivers;
pub mod failpoint;
pub mod hostlist;
pub mod ibimport;
pub mod limits;
pub mod opensm;
pub mod partitions;
pub mod plan;
pub mod process;
pub mod render;
pub mod sim;
pub mod sim_server;
pub mod state;
pub mod subgraph;
pub mod topology;
pub mod transport;
pub mod types;
pub mod yaml;
