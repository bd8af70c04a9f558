//! The fabric as jobnet sees it: switches, inter-switch links, compute nodes on switch ports,
//! optional InfiniBand settings and IB↔Ethernet gateways.
//!
//! A [`Topology`] only exists validated: [`load`] reads a YAML file, checks every rule in
//! docs/topology.md and either returns the model plus warnings or every error it found, each with
//! `FILE:LINE:COL`. Later stages (graph, planner) can therefore index by name without checking.

mod generate;
mod graph;
mod index;
mod load;

pub use generate::{fat_tree, FatTreeSpec, ShapeError};
pub use graph::{EdgeInfo, SwitchGraph};
pub use load::{load, parse, LoadError, Loaded};

use crate::base::diag::Loc;
use crate::base::types::{PortGuid, PortRef, RangeSet};
use index::PosIndex;
use serde::Serialize;
use std::path::PathBuf;

/// How a job's VLAN is put on the ports facing its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortMode {
    /// Added to the port's tagged list: the node passes it into VMs/containers.
    Tagged,
    /// Set as the port's access VLAN, replacing the previous one.
    Access,
}

/// What jobnet does with a port in the job's subgraph that is a trunk allowing every VLAN (the
/// factory default of many platforms), where adding the job's VLAN would change nothing and
/// removing it would leave every other VLAN explicitly listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenPorts {
    /// The job fails before any change, naming the port and the vendor's command that fixes it.
    Refuse,
    /// A tagged node port's list is made explicit (only the jobs' VLANs) and given back every
    /// VLAN when its last job ends; an inter-switch trunk is left as it is (it already carries
    /// the VLAN, nothing to undo).
    Restrict,
}

#[derive(Clone, Debug)]
pub struct Ethernet {
    pub vlan_pool: RangeSet,
    pub reserved_vlans: RangeSet,
    pub node_port_mode: PortMode,
    pub open_ports: OpenPorts,
    pub loc: Loc,
}

impl Ethernet {
    /// The VLANs jobnet may hand out: the pool minus the reserved ones.
    pub fn usable(&self) -> RangeSet {
        self.vlan_pool.minus(&self.reserved_vlans)
    }
}

/// How to make OpenSM re-read partitions.conf.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reload {
    Pidfile(PathBuf),
    SystemdUnit(String),
    Command(String),
}

/// The InfiniBand apply settings of a topology.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IbApply {
    pub partitions_conf: PathBuf,
    pub reload: Reload,
    pub window_ms: u64,
    /// A command template with `{guid}` whose output must contain the job's full-member PKey
    /// (e.g. `smpquery -G pkeys {guid} 1`), checked for every member port.
    pub verify_command: Option<String>,
    pub verify_timeout_ms: u64,
    /// Standby subnet managers that get a copy of the file before each reload.
    #[serde(default)]
    pub standbys: Vec<Standby>,
}

/// A standby SM host: it reads its own partitions.conf when it takes over.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Standby {
    pub name: String,
    pub address: String,
    pub credentials: Option<String>,
    pub ssh_legacy: bool,
    /// The file on that host (default: the same path as the primary's).
    pub partitions_conf: String,
}

#[derive(Clone, Debug)]
pub struct Infiniband {
    pub pkey_pool: RangeSet,
    pub partitions_conf: String,
    /// How to make OpenSM apply the file; without it, `up` does not apply partitions.
    pub reload: Option<Reload>,
    pub reload_window_ms: u64,
    pub verify_command: Option<String>,
    pub verify_timeout_ms: u64,
    /// Header flags of every job partition (`mtu=4`, `rate=7`, `sl=0`, `defmember=full`).
    pub partition_flags: Vec<String>,
    pub standbys: Vec<Standby>,
    pub loc: Loc,
}

impl Infiniband {
    /// The settings `up` needs to apply partitions, when a reload method is configured.
    pub fn apply_settings(&self) -> Option<IbApply> {
        Some(IbApply {
            partitions_conf: self.partitions_conf.clone().into(),
            reload: self.reload.clone()?,
            window_ms: self.reload_window_ms,
            verify_command: self.verify_command.clone(),
            verify_timeout_ms: self.verify_timeout_ms,
            standbys: self.standbys.clone(),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Switch {
    pub name: String,
    pub driver: String,
    pub address: String,
    pub credentials: Option<String>,
    /// Allow old SSH algorithms (diffie-hellman-group14/1-sha1, ssh-rsa, hmac-sha1) for this switch.
    pub ssh_legacy: bool,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Link {
    pub a: PortRef,
    pub b: PortRef,
    pub cost: u64,
    pub up: bool,
    pub lag: bool,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    /// The switch port facing the node; `None` only in a topology without `ethernet`.
    pub port: Option<PortRef>,
    pub ib_guid: Option<PortGuid>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Gateway {
    pub name: String,
    pub driver: String,
    pub address: String,
    pub credentials: Option<String>,
    pub ssh_legacy: bool,
    pub ethernet_port: PortRef,
    pub ib_guid: PortGuid,
    pub loc: Loc,
}

/// A validated fabric description.
#[derive(Clone, Debug)]
pub struct Topology {
    pub name: String,
    /// The file it was read from, for messages.
    pub file: String,
    /// `None` for an InfiniBand-only fabric.
    pub ethernet: Option<Ethernet>,
    pub infiniband: Option<Infiniband>,
    pub switches: Vec<Switch>,
    pub links: Vec<Link>,
    pub nodes: Vec<Node>,
    pub gateways: Vec<Gateway>,
    /// Positions in `switches` and `nodes` by name (filled by the loader's name check).
    switch_index: PosIndex,
    node_index: PosIndex,
}

impl Topology {
    pub fn switch_idx(&self, name: &str) -> Option<usize> {
        self.switch_index
            .get(name, |i| self.switches[i].name.as_str())
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.node_idx(name).map(|i| &self.nodes[i])
    }

    pub fn node_idx(&self, name: &str) -> Option<usize> {
        self.node_index.get(name, |i| self.nodes[i].name.as_str())
    }

    pub fn gateway(&self, name: &str) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.name == name)
    }

    /// Node names per switch index, in file order.
    pub fn nodes_by_switch(&self) -> Vec<Vec<&Node>> {
        let mut out = vec![Vec::new(); self.switches.len()];
        for n in &self.nodes {
            if let Some(p) = &n.port {
                out[self.switch_idx(&p.switch).expect("a known switch")].push(n);
            }
        }
        out
    }

    /// The node port mode (tagged when the fabric has no Ethernet).
    pub fn node_port_mode(&self) -> PortMode {
        self.ethernet
            .as_ref()
            .map_or(PortMode::Tagged, |e| e.node_port_mode)
    }
}
