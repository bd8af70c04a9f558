//! jobnet gives every HPC job its own isolated network and takes it away again when the job ends.
//!
//! The library follows the flow of a job: [`topology`] (load → validate → graph) →
//! [`subgraph`] (the minimal loop-free part of the fabric joining the job's nodes) → [`plan`]
//! (pure: job + topology + allocations → per-device operations and command lines, the
//! partitions.conf text) → [`render`] (text, JSON, DOT and SVG views of a plan). Vendor dialects
//! are data in switch-drivers/, loaded by [`drivers`].

pub mod diag;
pub mod drivers;
pub mod hostlist;
pub mod partitions;
pub mod plan;
pub mod render;
pub mod subgraph;
pub mod topology;
pub mod types;
pub mod yaml;
