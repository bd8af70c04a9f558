//! Planning: job request + topology + allocations already held → a [`Plan`] of typed per-device
//! operations with their exact command lines, and the exact new partitions.conf text.
//!
//! This module is pure: no network, no files, no clock. Everything it needs from the outside
//! (the current partitions.conf text, the VLANs and PKeys other jobs hold) is passed in, which
//! is what lets `jobnet plan` be a faithful dry run of `jobnet up`.

pub mod render;
pub mod subgraph;

/// The typed device operations a plan is made of live with the drivers that carry them out.
pub use crate::drivers::ops::{self, render_commands, render_op, render_undo, Op};

use crate::base::diag::suggestion;
use crate::base::hint::{Hint, Hinted};
use crate::base::hostlist;
use crate::base::types::{JobId, PKey, PortGuid, PortRef, RangeSet, VlanId};
use crate::drivers::{DriverSet, OpKind, Profile};
use crate::ib::partitions::{self, Partition, Refusal, RegionError};
use crate::topology::{Ethernet, Infiniband, PortMode, SwitchGraph, Topology};
use petgraph::visit::EdgeRef;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use subgraph::Disconnected;

/// `auto`, a given value, or `none` (not wanted: a VLAN of `none` asks for no Ethernet at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice<T> {
    Auto,
    Fixed(T),
    None,
}

/// What the caller asked for the InfiniBand side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PKeyChoice {
    /// Nothing said: a partition when the topology has an infiniband section.
    Default,
    Auto,
    Fixed(PKey),
    None,
}

/// What a job asks for.
#[derive(Clone, Debug)]
pub struct JobRequest {
    pub job: JobId,
    /// Expanded node names.
    pub nodes: Vec<String>,
    pub vlan: Choice<VlanId>,
    pub pkey: PKeyChoice,
    pub gateway: Option<String>,
    /// Where the parts came from, for messages.
    pub origin: Origin,
}

/// Where the parts of a request came from, as messages name them (`unknown node(s) cn9 (from
/// SLURM_JOB_NODELIST)`): the command line names its flags, a hook the scheduler's variable and
/// the site's policy. The library words no flag of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub nodes: &'static str,
    pub vlan: &'static str,
    pub pkey: &'static str,
    pub gateway: &'static str,
}

impl Default for Origin {
    /// Neutral words, for callers that do not say.
    fn default() -> Self {
        Origin {
            nodes: "the job's node list",
            vlan: "the job's request",
            pkey: "the job's request",
            gateway: "the job's request",
        }
    }
}

/// An allocation another job (or this one, from an earlier run) already holds, or a VLAN found
/// configured on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The job holding it; `None` for a VLAN that exists on a device.
    pub job: Option<JobId>,
    /// Who holds it, for messages: `job 7`, `switch leaf1 (it is configured there)`.
    pub holder: String,
    pub vlan: Option<VlanId>,
    pub pkey: Option<PKey>,
}

impl Held {
    /// A job's allocation.
    pub fn job(job: JobId, vlan: Option<VlanId>, pkey: Option<PKey>) -> Self {
        Held {
            holder: format!("job {job}"),
            job: Some(job),
            vlan,
            pkey,
        }
    }

    /// A VLAN that exists on `device` without being any job's.
    pub fn on_device(device: &str, vlan: VlanId) -> Self {
        Held {
            job: None,
            holder: format!("switch {device} (it is configured there)"),
            vlan: Some(vlan),
            pkey: None,
        }
    }

    fn is_other(&self, job: &JobId) -> bool {
        self.job.as_ref() != Some(job)
    }
}

/// Everything the planner reads besides the request.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub topology: &'a Topology,
    pub graph: &'a SwitchGraph,
    pub drivers: &'a DriverSet,
    pub held: &'a [Held],
    /// The current partitions.conf text, `None` when the file does not exist.
    pub partitions_conf: Option<&'a str>,
    /// Where that text was read from, when not the topology's `infiniband.partitions_conf`.
    pub partitions_conf_path: Option<&'a str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DevicePlan {
    pub name: String,
    pub driver: String,
    pub address: String,
    pub ops: Vec<Op>,
    pub commands: Vec<String>,
    pub undo: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LinkEnds {
    pub a: PortRef,
    pub b: PortRef,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EthernetPlan {
    /// Switches in the subgraph, sorted by name.
    pub switches: Vec<String>,
    /// Links that carry the VLAN.
    pub links: Vec<LinkEnds>,
    /// Sum of the link costs of the subgraph.
    pub cost: u64,
    pub devices: Vec<DevicePlan>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IbPlan {
    pub partition: String,
    pub pkey: PKey,
    pub members: Vec<PortGuid>,
    pub ipoib: bool,
    /// Further header flags from the topology (`mtu=4`, ...).
    pub flags: Vec<String>,
    pub partitions_conf_path: String,
    /// The current file text (`None` when the file does not exist yet).
    pub partitions_conf_old: Option<String>,
    /// The exact new file text.
    pub partitions_conf: String,
}

/// A complete plan for one job.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub job: JobId,
    /// `None` when the job has no Ethernet part (no VLAN asked for, or an InfiniBand-only fabric).
    pub vlan: Option<VlanId>,
    pub vlan_auto: bool,
    pub pkey: Option<PKey>,
    pub nodes: Vec<String>,
    pub ethernet: EthernetPlan,
    pub infiniband: Option<IbPlan>,
    pub gateway: Option<DevicePlan>,
    pub warnings: Vec<String>,
}

/// Why a plan could not be made. [`PlanError::exit_code`] maps each to the documented code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no nodes given ({from} is empty); give a hostlist, e.g. cn[001-004]")]
    NoNodes { from: &'static str },
    #[error("unknown node(s) {names} (from {from}): not in topology {file}; {hint}")]
    UnknownNodes {
        names: String,
        /// Where the nodes came from (`--nodes`, `SLURM_JOB_NODELIST`).
        from: &'static str,
        file: String,
        hint: String,
    },
    #[error("cannot join the job's nodes: {parts} are in separate parts of the fabric with no usable link between them; check links marked `state: down` in {file} or choose other nodes")]
    Disconnected { parts: String, file: String },
    #[error("{what} pool exhausted: every {what} in {pool} (from {file}) is in use: {holders}; wait for jobs to end, run `jobnet status` to look for leftovers, or widen the pool")]
    PoolExhausted {
        what: &'static str,
        pool: String,
        /// Who holds the pool's values, folded: `0x1000 by job 7, 0x1001 by the admin partition ...`.
        holders: String,
        file: String,
    },
    #[error("{what} {value} (from {from}) is not usable: {why}; {fix}")]
    NotUsable {
        what: &'static str,
        value: String,
        /// Where the value came from (`--vlan`, the job's request).
        from: &'static str,
        why: String,
        /// What to do, in words that name no caller's setting (`let jobnet choose one`).
        fix: String,
        /// The part of the request that does it, for the caller to word ([`Hint::VlanAuto`]).
        hint: Hint,
    },
    /// A partition was asked for (`from`) but no node of the job has a port GUID.
    #[error("a partition was asked for (from {from}) but none of the job's nodes has ib_guids in {file}; add them (jobnet topology import-ib) or ask for no partition")]
    NoPartitionMembers { from: &'static str, file: String },
    /// A partition or a gateway was asked for (`from`) on a fabric without InfiniBand.
    #[error("{}", no_infiniband(*.gateway, from, file))]
    NoInfiniband {
        /// The gateway asked for it (else the PKey).
        gateway: bool,
        from: &'static str,
        file: String,
    },
    /// A gateway was asked for (`gateway_from`), and no partition (`pkey_from`).
    #[error("the gateway (from {gateway_from}) needs the job's PKey, but no partition was asked for (from {pkey_from}); ask for a partition, or for no gateway")]
    GatewayNeedsPKey {
        gateway_from: &'static str,
        pkey_from: &'static str,
    },
    #[error("unknown gateway `{name}` (from {from}): not in topology {file}; {hint}")]
    UnknownGateway {
        name: String,
        from: &'static str,
        file: String,
        hint: String,
    },
    #[error("{0}")]
    Request(String),
    #[error("partitions.conf: {0}")]
    Region(#[from] RegionError),
    /// The current partitions.conf is refused; `kind` says whether OpenSM would reject or
    /// misread it, or whether it is jobnet's block (or a PKey merge) that is wrong.
    #[error("{}", kind.message(path, errors))]
    InvalidPartitions {
        path: String,
        kind: Refusal,
        /// The errors, one per line.
        errors: String,
    },
    // The inputs disagree with each other. A topology is validated against one driver set and
    // its fields are public, so these can be reached through the library without a bug in it.
    #[error("{device} uses driver profile `{driver}`, which is not among the profiles given to the planner ({known}): the topology was validated with other profiles; plan with the profiles it was loaded with (the same driver directory), or load it again with these")]
    UnknownDriver {
        /// `switch leaf1`, `gateway gw1`.
        device: String,
        driver: String,
        /// The profiles the planner was given, comma-separated (`none` for an empty set).
        known: String,
    },
    #[error("driver profile `{driver}` of {device} has no `{op}` operation, which the plan needs: the topology was validated with another profile of that name; plan with the profiles it was loaded with, or give the profile `{op}`")]
    DriverLacksOp {
        device: String,
        driver: String,
        op: &'static str,
    },
    #[error("{owner} names switch `{switch}`, which topology {file} does not have: the topology was changed after it was validated; load it again (topology::load or topology::parse) so that every name is checked")]
    UnknownSwitch {
        /// What names it: `the port ghost:1 of node cn001`, `end ghost:1 of link ghost:1 -- leaf1:Ethernet49`.
        owner: String,
        switch: String,
        file: String,
    },
    #[error("the switch graph given with topology {file} was not built from it ({why}); build it with SwitchGraph::build from the topology as it is now")]
    GraphMismatch { file: String, why: String },
    #[error("topology {file} was changed after it was validated: {what}; load it again (topology::load or topology::parse) so that it is checked")]
    Unvalidated { file: String, what: String },
}

impl Hinted for PlanError {
    fn hints(&self) -> Vec<Hint> {
        match self {
            PlanError::NotUsable { hint, .. } => vec![*hint],
            PlanError::NoPartitionMembers { .. } => vec![Hint::PKeyNone],
            PlanError::NoInfiniband { gateway: false, .. } => vec![Hint::PKeyNone],
            PlanError::GatewayNeedsPKey { .. } => vec![Hint::PKeyDefault],
            PlanError::NoInfiniband { gateway: true, .. }
            | PlanError::NoNodes { .. }
            | PlanError::UnknownNodes { .. }
            | PlanError::Disconnected { .. }
            | PlanError::PoolExhausted { .. }
            | PlanError::UnknownGateway { .. }
            | PlanError::Request(_)
            | PlanError::Region(_)
            | PlanError::InvalidPartitions { .. }
            | PlanError::UnknownDriver { .. }
            | PlanError::DriverLacksOp { .. }
            | PlanError::UnknownSwitch { .. }
            | PlanError::GraphMismatch { .. }
            | PlanError::Unvalidated { .. } => vec![],
        }
    }
}

impl PlanError {
    /// 3 for an exhausted pool, 2 for every other kind of bad input.
    pub fn exit_code(&self) -> i32 {
        match self {
            PlanError::PoolExhausted { .. } => 3,
            _ => 2,
        }
    }
}

/// Makes the plan.
pub fn plan(inp: Inputs, req: &JobRequest) -> Result<Plan, PlanError> {
    let t = inp.topology;
    check_graph(t, inp.graph)?;
    let nodes = job_nodes(t, req)?;
    let gateway = job_gateway(t, req)?;
    let mut warnings = Vec::new();
    let vlan = match wants_ethernet(t, req)? {
        Some(eth) => Some(choose_vlan(inp, req, eth)?),
        None => None,
    };
    if gateway.is_some() && vlan.is_none() {
        return Err(PlanError::Request(format!(
            "the gateway (from {}) bridges the job's PKey to its VLAN, but the job has no VLAN ({}); drop one of them",
            req.origin.gateway,
            no_vlan(t, req)
        )));
    }
    let conf_path = partitions_path(inp);
    let current = current_partitions(inp, req, conf_path)?;
    let pkey = choose_pkey(inp, req, &current, conf_path, gateway.is_some())?;
    let ethernet = match vlan {
        Some(v) => ethernet_plan(inp, req, &nodes, gateway, v, &mut warnings)?,
        None => EthernetPlan::default(),
    };
    let infiniband = match (pkey, &t.infiniband) {
        (Some(k), Some(ib)) => ib_plan(
            inp,
            req,
            &nodes,
            gateway,
            (k, ib),
            &current,
            conf_path,
            &mut warnings,
        )?,
        _ => None,
    };
    let pkey = infiniband.as_ref().map(|ib| ib.pkey);
    if vlan.is_none() && pkey.is_none() {
        return Err(PlanError::Request(format!(
            "nothing to configure for job {}: no VLAN ({}) and no partition; ask for one of them",
            req.job,
            no_vlan(t, req)
        )));
    }
    let gateway = gateway_plan(inp, req, gateway, vlan, pkey, &mut warnings)?;
    Ok(Plan {
        job: req.job.clone(),
        vlan,
        vlan_auto: req.vlan == Choice::Auto,
        pkey,
        nodes: nodes.iter().map(|n| n.name.clone()).collect(),
        ethernet,
        infiniband,
        gateway,
        warnings,
    })
}

fn no_infiniband(gateway: bool, from: &str, file: &str) -> String {
    if gateway {
        format!("a gateway was asked for (from {from}), which bridges a PKey to the VLAN, but the topology {file} has no infiniband section; add one with a pkey_pool")
    } else {
        format!("a partition was asked for (from {from}) but the topology {file} has no infiniband section; add one with a pkey_pool, or ask for no partition")
    }
}

/// Why a job has no VLAN, for messages: the fabric has no Ethernet, or none was asked for.
fn no_vlan(t: &Topology, req: &JobRequest) -> String {
    if t.ethernet.is_none() {
        format!("{} has no `ethernet` section", t.file)
    } else {
        format!("none was asked for, from {}", req.origin.vlan)
    }
}

/// Where the partitions.conf text came from: as given, else the topology's, for messages.
fn partitions_path<'a>(inp: Inputs<'a>) -> &'a str {
    inp.partitions_conf_path
        .or(inp
            .topology
            .infiniband
            .as_ref()
            .map(|ib| ib.partitions_conf.as_str()))
        .unwrap_or("partitions.conf")
}

/// The current partitions.conf, checked (`Missing` when the job wants no partition); an
/// already invalid file is refused.
fn current_partitions(
    inp: Inputs,
    req: &JobRequest,
    conf_path: &str,
) -> Result<partitions::Current, PlanError> {
    match (inp.partitions_conf, req.pkey) {
        (_, PKeyChoice::None) => Ok(partitions::Current::Missing),
        (text, _) => {
            partitions::Current::read(text, conf_path).map_err(|e| PlanError::InvalidPartitions {
                path: conf_path.to_string(),
                kind: e.kind,
                errors: e.errors,
            })
        }
    }
}

/// The gateway's operation bridging the job's PKey to its VLAN, when the job has all three.
fn gateway_plan(
    inp: Inputs,
    req: &JobRequest,
    gateway: Option<&crate::topology::Gateway>,
    vlan: Option<VlanId>,
    pkey: Option<PKey>,
    warnings: &mut Vec<String>,
) -> Result<Option<DevicePlan>, PlanError> {
    let (Some(g), Some(v), Some(k)) = (gateway, vlan, pkey) else {
        return Ok(None);
    };
    let ops = vec![Op::ProxyArpCreate { vlan: v, pkey: k }];
    let device_name = format!("gateway {}", g.name);
    let needs = ops.iter().flat_map(op_kinds);
    let profile = profile_for(inp.drivers, &device_name, &g.driver, needs)?;
    let name = vlan_name(&req.job, profile);
    Ok(Some(device(
        &g.name, &g.driver, &g.address, profile, &name, ops, warnings,
    )))
}

/// The profile operations that write `op` and its undo.
fn op_kinds(op: &Op) -> [OpKind; 2] {
    [op.template(), op.inverse_template()]
}

/// The driver profile of a device, checked to give every operation in `needs`:
/// [`Profile::render`] panics on an operation the profile lacks.
fn profile_for<'d>(
    drivers: &'d DriverSet,
    device: &str,
    driver: &str,
    mut needs: impl Iterator<Item = OpKind>,
) -> Result<&'d Profile, PlanError> {
    let Some(profile) = drivers.get(driver) else {
        let known: Vec<&str> = drivers.names().collect();
        return Err(PlanError::UnknownDriver {
            device: device.to_string(),
            driver: driver.to_string(),
            known: if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            },
        });
    };
    match needs.find(|kind| !profile.ops.contains_key(kind)) {
        Some(kind) => Err(PlanError::DriverLacksOp {
            device: device.to_string(),
            driver: driver.to_string(),
            op: kind.name(),
        }),
        None => Ok(profile),
    }
}

/// The graph must be the one built from this topology: the planner indexes the topology's
/// switches and links with the indexes it finds in the graph.
fn check_graph(t: &Topology, g: &SwitchGraph) -> Result<(), PlanError> {
    let bad = |why: String| PlanError::GraphMismatch {
        file: t.file.clone(),
        why,
    };
    if g.graph.node_count() != t.switches.len() {
        return Err(bad(format!(
            "the graph has {} switch(es), the topology {}",
            g.graph.node_count(),
            t.switches.len()
        )));
    }
    for e in g.graph.edge_references() {
        let i = e.weight().link;
        let Some(link) = t.links.get(i) else {
            return Err(bad(format!(
                "the graph uses link {}, the topology has {} link(s)",
                i + 1,
                t.links.len()
            )));
        };
        let a = switch_of(t, &link.a, || link_end(link, &link.a))?;
        let b = switch_of(t, &link.b, || link_end(link, &link.b))?;
        let (u, v) = (g.switch(e.source()), g.switch(e.target()));
        if (a, b) != (u, v) && (a, b) != (v, u) {
            return Err(bad(format!(
                "its edge for link {} joins {} and {}, the topology's link {} is {} -- {}",
                i + 1,
                t.switches.get(u).map_or("?", |s| s.name.as_str()),
                t.switches.get(v).map_or("?", |s| s.name.as_str()),
                i + 1,
                link.a,
                link.b
            )));
        }
    }
    Ok(())
}

/// `end leaf1:Ethernet49 of link spine1:Ethernet1 -- leaf1:Ethernet49`, for messages.
fn link_end(link: &crate::topology::Link, end: &PortRef) -> String {
    format!("end {end} of link {} -- {}", link.a, link.b)
}

/// The index of the switch of `port`; `owner` says what names it, for the error.
fn switch_of(
    t: &Topology,
    port: &PortRef,
    owner: impl FnOnce() -> String,
) -> Result<usize, PlanError> {
    t.switch_idx(&port.switch)
        .ok_or_else(|| PlanError::UnknownSwitch {
            owner: owner(),
            switch: port.switch.clone(),
            file: t.file.clone(),
        })
}

/// The job's nodes: known, deduplicated, in name order.
fn job_nodes<'t>(
    t: &'t Topology,
    req: &JobRequest,
) -> Result<Vec<&'t crate::topology::Node>, PlanError> {
    if req.nodes.is_empty() {
        return Err(PlanError::NoNodes {
            from: req.origin.nodes,
        });
    }
    let mut idx: Vec<usize> = Vec::with_capacity(req.nodes.len());
    let mut unknown: Vec<&str> = Vec::new();
    for n in &req.nodes {
        match t.node_idx(n) {
            Some(i) => idx.push(i),
            None => unknown.push(n),
        }
    }
    if !unknown.is_empty() {
        let hint = suggestion(unknown[0], t.nodes.iter().map(|n| n.name.as_str()));
        let hint = if hint.is_empty() {
            "check the hostlist or add the nodes to the topology".to_string()
        } else {
            format!("{hint} Check the hostlist or add the nodes to the topology")
        };
        return Err(PlanError::UnknownNodes {
            names: hostlist::fold_short(&unknown, 12),
            from: req.origin.nodes,
            file: t.file.clone(),
            hint,
        });
    }
    idx.sort_unstable_by(|&a, &b| hostlist::natural_cmp(&t.nodes[a].name, &t.nodes[b].name));
    idx.dedup();
    Ok(idx.iter().map(|&i| &t.nodes[i]).collect())
}

fn job_gateway<'t>(
    t: &'t Topology,
    req: &JobRequest,
) -> Result<Option<&'t crate::topology::Gateway>, PlanError> {
    let Some(name) = &req.gateway else {
        return Ok(None);
    };
    t.gateway(name).map(Some).ok_or_else(|| {
        let h = suggestion(name, t.gateways.iter().map(|g| g.name.as_str()));
        let hint = if !h.is_empty() {
            h
        } else if t.gateways.is_empty() {
            "known gateways: none".to_string()
        } else {
            format!(
                "known gateways: {}",
                t.gateways
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        PlanError::UnknownGateway {
            name: name.clone(),
            from: req.origin.gateway,
            file: t.file.clone(),
            hint,
        }
    })
}

/// The fabric's Ethernet settings when the job gets a VLAN: asked for (or `auto`) on a fabric
/// with Ethernet.
fn wants_ethernet<'t>(
    t: &'t Topology,
    req: &JobRequest,
) -> Result<Option<&'t Ethernet>, PlanError> {
    match (req.vlan, &t.ethernet) {
        (Choice::None, _) => Ok(None),
        (Choice::Auto, None) => Ok(None),
        (Choice::Fixed(v), None) => Err(PlanError::NotUsable {
            what: "VLAN",
            value: v.to_string(),
            from: req.origin.vlan,
            why: format!(
                "the topology {} has no `ethernet` section (an InfiniBand-only fabric)",
                t.file
            ),
            fix: "ask for no particular VLAN, or add the ethernet section".into(),
            hint: Hint::VlanDefault,
        }),
        (_, Some(eth)) => Ok(Some(eth)),
    }
}

/// The subgraph joining the job's switches and every device's operations.
fn ethernet_plan(
    inp: Inputs,
    req: &JobRequest,
    nodes: &[&crate::topology::Node],
    gateway: Option<&crate::topology::Gateway>,
    vlan: VlanId,
    warnings: &mut Vec<String>,
) -> Result<EthernetPlan, PlanError> {
    let t = inp.topology;
    let ports = nodes
        .iter()
        .map(|n| port_of(t, n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut terminals = Vec::with_capacity(nodes.len() + 1);
    for (n, port) in nodes.iter().zip(&ports) {
        terminals.push(switch_of(t, port, || {
            format!("the port {port} of node {}", n.name)
        })?);
    }
    if let Some(g) = gateway {
        let port = &g.ethernet_port;
        terminals.push(switch_of(t, port, || {
            format!("the ethernet_port {port} of gateway {}", g.name)
        })?);
    }
    let tree =
        subgraph::steiner(inp.graph, &terminals).map_err(|d| disconnected(t, nodes, gateway, d))?;
    let mut per_switch = PerSwitch::new();
    for &s in &tree.switches {
        per_switch.insert(&t.switches[s].name, (s, Vec::new()));
    }
    let links = trunk_ops(t, &tree.links, vlan, &mut per_switch)?;
    edge_ops(t, nodes, &ports, gateway, vlan, &mut per_switch)?;
    let devices = switch_devices(inp, req, per_switch, vlan, warnings)?;
    Ok(EthernetPlan {
        switches: tree
            .switches
            .iter()
            .map(|&s| t.switches[s].name.clone())
            .collect(),
        links,
        cost: tree.cost,
        devices,
    })
}

/// The operations per switch of the subgraph, by switch name (devices are planned in name
/// order), with the switch's index.
type PerSwitch<'t> = BTreeMap<&'t str, (usize, Vec<Op>)>;

/// The operations of the switch of `port`; `owner` says what names the port, for the error.
fn ops_on<'m, 't>(
    t: &'t Topology,
    per_switch: &'m mut PerSwitch<'t>,
    port: &'t PortRef,
    owner: impl FnOnce() -> String,
) -> Result<&'m mut Vec<Op>, PlanError> {
    let s = switch_of(t, port, owner)?;
    Ok(&mut per_switch.entry(&port.switch).or_insert((s, Vec::new())).1)
}

/// The switch port of a node on a fabric with Ethernet.
fn port_of<'t>(t: &Topology, n: &'t crate::topology::Node) -> Result<&'t PortRef, PlanError> {
    n.port.as_ref().ok_or_else(|| PlanError::Unvalidated {
        file: t.file.clone(),
        what: format!(
            "node {} has no port, but the topology has an `ethernet` section",
            n.name
        ),
    })
}

/// Trunk operations on both ends of every link of the subgraph; the links, for the plan.
fn trunk_ops<'t>(
    t: &'t Topology,
    tree_links: &[usize],
    vlan: VlanId,
    per_switch: &mut PerSwitch<'t>,
) -> Result<Vec<LinkEnds>, PlanError> {
    let mut links = Vec::new();
    for &l in tree_links {
        let link = &t.links[l];
        for (end, other) in [(&link.a, &link.b), (&link.b, &link.a)] {
            ops_on(t, per_switch, end, || link_end(link, end))?.push(Op::TrunkAdd {
                port: end.port.clone(),
                vlan,
                peer: other.to_string(),
            });
        }
        links.push(LinkEnds {
            a: link.a.clone(),
            b: link.b.clone(),
        });
    }
    Ok(links)
}

/// Operations on the edge ports: each node's port (tagged or access) and the gateway's trunk.
fn edge_ops<'t>(
    t: &'t Topology,
    nodes: &[&crate::topology::Node],
    ports: &[&'t PortRef],
    gateway: Option<&'t crate::topology::Gateway>,
    vlan: VlanId,
    per_switch: &mut PerSwitch<'t>,
) -> Result<(), PlanError> {
    for (n, &port) in nodes.iter().zip(ports) {
        let op = match t.node_port_mode() {
            PortMode::Tagged => Op::TaggedAdd {
                port: port.port.clone(),
                vlan,
                node: n.name.clone(),
                restricts: false,
            },
            PortMode::Access => Op::AccessSet {
                port: port.port.clone(),
                vlan,
                node: n.name.clone(),
                replaces: None,
            },
        };
        ops_on(t, per_switch, port, || {
            format!("the port {port} of node {}", n.name)
        })?
        .push(op);
    }
    if let Some(g) = gateway {
        let port = &g.ethernet_port;
        ops_on(t, per_switch, port, || {
            format!("the ethernet_port {port} of gateway {}", g.name)
        })?
        .push(Op::TrunkAdd {
            port: port.port.clone(),
            vlan,
            peer: format!("gateway {}", g.name),
        });
    }
    Ok(())
}

/// One device plan per switch, in name order, each starting by creating the VLAN.
fn switch_devices(
    inp: Inputs,
    req: &JobRequest,
    per_switch: PerSwitch,
    vlan: VlanId,
    warnings: &mut Vec<String>,
) -> Result<Vec<DevicePlan>, PlanError> {
    let t = inp.topology;
    let mut devices = Vec::with_capacity(per_switch.len());
    for (name, (s, ops)) in per_switch {
        let sw = &t.switches[s];
        let create = [OpKind::CreateVlan, OpKind::DeleteVlan];
        let needs = create.into_iter().chain(ops.iter().flat_map(op_kinds));
        let profile = profile_for(inp.drivers, &format!("switch {name}"), &sw.driver, needs)?;
        let vlan_name = vlan_name(&req.job, profile);
        let mut all = vec![Op::CreateVlan {
            vlan,
            name: vlan_name.clone(),
        }];
        all.extend(ops);
        devices.push(device(
            name,
            &sw.driver,
            &sw.address,
            profile,
            &vlan_name,
            all,
            warnings,
        ));
    }
    Ok(devices)
}

/// The job's partition and the new partitions.conf text, or `None` when no node has a GUID and
/// nobody asked for a partition explicitly.
#[allow(clippy::too_many_arguments)]
fn ib_plan(
    inp: Inputs,
    req: &JobRequest,
    nodes: &[&crate::topology::Node],
    gateway: Option<&crate::topology::Gateway>,
    (pkey, ib_settings): (PKey, &Infiniband),
    current: &partitions::Current,
    conf_path: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<IbPlan>, PlanError> {
    let t = inp.topology;
    let mut members: Vec<PortGuid> = nodes.iter().filter_map(|n| n.ib_guid).collect();
    let lacking: Vec<&str> = nodes
        .iter()
        .filter(|n| n.ib_guid.is_none())
        .map(|n| n.name.as_str())
        .collect();
    if !lacking.is_empty() {
        warnings.push(format!(
            "node(s) {} have no ib_guids in {} and will not join the partition",
            hostlist::fold_short(&lacking, 12),
            t.file
        ));
    }
    if let Some(g) = gateway {
        members.push(g.ib_guid);
    }
    if members.is_empty() {
        if matches!(req.pkey, PKeyChoice::Default) {
            warnings
                .push("no node of the job has an IB port GUID: no partition planned".to_string());
            return Ok(None);
        }
        return Err(PlanError::NoPartitionMembers {
            from: req.origin.pkey,
            file: t.file.clone(),
        });
    }
    let partition = Partition {
        job: req.job.to_string(),
        name: format!("jobnet_{}", req.job.sanitized()),
        pkey,
        ipoib: true,
        flags: ib_settings.partition_flags.clone(),
        members: members.clone(),
    };
    warnings.extend(current.warnings(conf_path));
    let new_text = current.conf().with_partition(&partition);
    let recheck = partitions::grammar::check(&new_text, conf_path);
    if recheck.diagnostics.has_errors() {
        return Err(PlanError::Request(format!(
            "internal error: the planned partitions.conf fails the OpenSM grammar check; nothing was written: {}",
            recheck.diagnostics.sorted().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
        )));
    }
    Ok(Some(IbPlan {
        partition: partition.name,
        pkey,
        members,
        ipoib: true,
        flags: partition.flags.clone(),
        partitions_conf_path: conf_path.to_string(),
        partitions_conf_old: inp.partitions_conf.map(str::to_string),
        partitions_conf: new_text,
    }))
}

fn device(
    name: &str,
    driver: &str,
    address: &str,
    profile: &Profile,
    vlan_name: &str,
    ops: Vec<Op>,
    warnings: &mut Vec<String>,
) -> DevicePlan {
    if !profile.verified {
        let w = format!("driver profile {} is not yet verified against its vendor manual ({}); review its commands before applying", profile.name, profile.source);
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    DevicePlan {
        name: name.to_string(),
        driver: driver.to_string(),
        address: address.to_string(),
        commands: render_commands(profile, vlan_name, &ops),
        undo: render_undo(profile, vlan_name, &ops),
        ops,
    }
}

/// `jobnet-<job>`, sanitised and cut to what the platform accepts.
pub fn vlan_name(job: &JobId, profile: &Profile) -> String {
    let mut name = format!("jobnet-{}", job.sanitized());
    name.truncate(profile.vlan_name_max.max(1));
    name
}

/// `value by holder` items, folded after `max` of them.
fn holders_text(items: &BTreeMap<u16, String>, hex: bool, max: usize) -> String {
    let mut parts: Vec<String> = items
        .iter()
        .take(max)
        .map(|(v, who)| {
            if hex {
                format!("{v:#06x} by {who}")
            } else {
                format!("{v} by {who}")
            }
        })
        .collect();
    if items.len() > max {
        parts.push(format!("and {} more", items.len() - max));
    }
    parts.join(", ")
}

/// The job's VLAN: the given one if usable, else the one it holds, else the first free one.
fn choose_vlan(inp: Inputs, req: &JobRequest, eth: &Ethernet) -> Result<VlanId, PlanError> {
    let t = inp.topology;
    let usable = eth.usable();
    let others: BTreeMap<u16, String> = inp
        .held
        .iter()
        .filter(|h| h.is_other(&req.job))
        .filter_map(|h| h.vlan.map(|v| (v.get(), h.holder.clone())))
        .collect();
    let own = inp
        .held
        .iter()
        .find(|h| !h.is_other(&req.job))
        .and_then(|h| h.vlan);
    match req.vlan {
        Choice::Fixed(v) => {
            let bad = |why: String, fix: &str| PlanError::NotUsable {
                what: "VLAN",
                value: v.to_string(),
                from: req.origin.vlan,
                why,
                fix: fix.to_string(),
                hint: Hint::VlanAuto,
            };
            if eth.reserved_vlans.contains(v.get().into()) {
                return Err(bad(
                    format!(
                        "it is in reserved_vlans {} of {}",
                        eth.reserved_vlans.display(false),
                        t.file
                    ),
                    "choose another VLAN or let jobnet choose one",
                ));
            }
            if !eth.vlan_pool.contains(v.get().into()) {
                return Err(bad(
                    format!(
                        "it is outside vlan_pool {} of {}",
                        eth.vlan_pool.display(false),
                        t.file
                    ),
                    "choose one inside the pool, widen the pool, or let jobnet choose one",
                ));
            }
            if let Some(who) = others.get(&v.get()) {
                return Err(bad(
                    format!("{who} holds it"),
                    "choose another VLAN or let jobnet choose one",
                ));
            }
            Ok(v)
        }
        _ => {
            if let Some(v) = own {
                return Ok(v);
            }
            let v = usable
                .first_free(|v| others.contains_key(&(v as u16)))
                .ok_or_else(|| {
                    let in_pool: BTreeMap<u16, String> = others
                        .iter()
                        .filter(|(v, _)| usable.contains(u64::from(**v)))
                        .map(|(v, w)| (*v, w.clone()))
                        .collect();
                    PlanError::PoolExhausted {
                        what: "VLAN",
                        pool: usable.display(false),
                        holders: holders_text(&in_pool, false, 8),
                        file: t.file.clone(),
                    }
                })?;
            VlanId::new(v).map_err(|e| pool_value(t, "vlan_pool", e))
        }
    }
}

/// The job's PKey: `None` when it wants no partition, else the given, held or first free one.
fn choose_pkey(
    inp: Inputs,
    req: &JobRequest,
    current: &partitions::Current,
    conf_path: &str,
    gateway: bool,
) -> Result<Option<PKey>, PlanError> {
    let t = inp.topology;
    let Some(ib) = &t.infiniband else {
        return match req.pkey {
            PKeyChoice::Default | PKeyChoice::None if !gateway => Ok(None),
            _ => Err(PlanError::NoInfiniband {
                gateway,
                from: if gateway {
                    req.origin.gateway
                } else {
                    req.origin.pkey
                },
                file: t.file.clone(),
            }),
        };
    };
    if req.pkey == PKeyChoice::None {
        if gateway {
            return Err(PlanError::GatewayNeedsPKey {
                gateway_from: req.origin.gateway,
                pkey_from: req.origin.pkey,
            });
        }
        return Ok(None);
    }
    let taken = taken_pkeys(inp, req, current, conf_path);
    let own = inp
        .held
        .iter()
        .find(|h| !h.is_other(&req.job))
        .and_then(|h| h.pkey);
    match req.pkey {
        PKeyChoice::Fixed(k) => fixed_pkey(t, ib, k, &taken, req.origin.pkey).map(Some),
        _ => match own {
            Some(k) => Ok(Some(k)),
            None => free_pkey(t, ib, &taken).map(Some),
        },
    }
}

/// PKeys in use, with who uses them: other jobs' allocations, other jobs' blocks, admins' own
/// partitions.
fn taken_pkeys(
    inp: Inputs,
    req: &JobRequest,
    current: &partitions::Current,
    conf_path: &str,
) -> BTreeMap<u16, String> {
    let mut taken: BTreeMap<u16, String> = BTreeMap::new();
    for h in inp.held.iter().filter(|h| h.is_other(&req.job)) {
        if let Some(k) = h.pkey {
            taken.insert(k.get(), h.holder.clone());
        }
    }
    let conf = current.conf();
    for (job, k) in conf.job_pkeys(req.job.as_str()) {
        taken
            .entry(k.get())
            .or_insert(format!("job {job} (in {conf_path})"));
    }
    for (name, k) in partitions::admin_statements(&format!("{}{}", conf.before, conf.after)) {
        if let Some(k) = k {
            taken
                .entry(k)
                .or_insert(format!("the admin partition `{name}` in {conf_path}"));
        }
    }
    taken
}

/// A PKey the request names: inside the pool and used by nobody else.
fn fixed_pkey(
    t: &Topology,
    ib: &crate::topology::Infiniband,
    k: PKey,
    taken: &BTreeMap<u16, String>,
    from: &'static str,
) -> Result<PKey, PlanError> {
    let bad = |why: String, fix: &str| PlanError::NotUsable {
        what: "PKey",
        value: k.to_string(),
        from,
        why,
        fix: fix.to_string(),
        hint: Hint::PKeyAuto,
    };
    if !ib.pkey_pool.contains(k.get().into()) {
        return Err(bad(
            format!(
                "it is outside pkey_pool {} of {}",
                ib.pkey_pool.display(true),
                t.file
            ),
            "choose one inside the pool or let jobnet choose one",
        ));
    }
    if let Some(who) = taken.get(&k.get()) {
        return Err(bad(
            format!("{who} uses it"),
            "choose another PKey or let jobnet choose one",
        ));
    }
    Ok(k)
}

/// The first PKey of the pool nobody uses.
fn free_pkey(
    t: &Topology,
    ib: &crate::topology::Infiniband,
    taken: &BTreeMap<u16, String>,
) -> Result<PKey, PlanError> {
    let pool: &RangeSet = &ib.pkey_pool;
    let k = pool
        .first_free(|v| taken.contains_key(&(v as u16)))
        .ok_or_else(|| {
            let in_pool: BTreeMap<u16, String> = taken
                .iter()
                .filter(|(v, _)| pool.contains(u64::from(**v)))
                .map(|(v, w)| (*v, w.clone()))
                .collect();
            PlanError::PoolExhausted {
                what: "PKey",
                pool: pool.display(true),
                holders: holders_text(&in_pool, true, 8),
                file: t.file.clone(),
            }
        })?;
    PKey::new(k).map_err(|e| pool_value(t, "pkey_pool", e))
}

/// A pool value validation would have refused.
fn pool_value(t: &Topology, pool: &str, e: crate::base::types::ValueError) -> PlanError {
    PlanError::Unvalidated {
        file: t.file.clone(),
        what: format!("its {pool} holds a value that is not usable: {e}"),
    }
}

fn disconnected(
    t: &Topology,
    nodes: &[&crate::topology::Node],
    gateway: Option<&crate::topology::Gateway>,
    d: Disconnected,
) -> PlanError {
    let parts: Vec<String> = d
        .groups
        .iter()
        .map(|grp| {
            let set: BTreeSet<&str> = grp.iter().map(|&s| t.switches[s].name.as_str()).collect();
            let mut members: Vec<&str> = nodes
                .iter()
                .filter(|n| {
                    n.port
                        .as_ref()
                        .is_some_and(|p| set.contains(p.switch.as_str()))
                })
                .map(|n| n.name.as_str())
                .collect();
            if let Some(g) = gateway.filter(|g| set.contains(g.ethernet_port.switch.as_str())) {
                members.push(&g.name);
            }
            format!(
                "{} (on {})",
                hostlist::fold(&members),
                set.into_iter().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    PlanError::Disconnected {
        parts: parts.join(" and "),
        file: t.file.clone(),
    }
}

#[cfg(test)]
mod tests;
