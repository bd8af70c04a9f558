//! Jobs from batch systems: who the job is and where it runs (Slurm's hook environment, PBS's
//! hook arguments and node file, a SUPPZ-style passport), what network it gets (the site's policy
//! and the job's request, [`site`], [`request`]), how its VMs are numbered ([`addresses`]), and
//! the prolog/epilog flows the hooks run through the facade ([`flow`]).

pub mod flow;
pub mod passport;
pub mod pbs;
pub mod request;
pub mod site;
pub mod slurm;

pub use jobnet_contract::jobs::{addresses, network};

use crate::base::types::JobId;

/// A batch job as a hook sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobMeta {
    pub id: JobId,
    pub nodes: Vec<String>,
    /// Where the nodes came from, for messages (`SLURM_JOB_NODELIST`).
    pub nodes_from: &'static str,
    /// Slurm partition or PBS queue.
    pub partition: Option<String>,
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub account: Option<String>,
    /// Texts the user wrote that may hold a `jobnet:` request (comment, extra), with where they
    /// came from.
    pub texts: Vec<(String, String)>,
    /// How often the batch system requeued the job (0 on the first run).
    pub restart_count: u32,
}

/// What a hook could not understand about its job: the value, where it came from, what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetaError(pub String);
