//! The fabric as jobnet sees it: switches, inter-switch links, compute nodes on switch ports,
//! optional InfiniBand settings and IB↔Ethernet gateways.
//!
//! A [`Topology`] only exists validated: [`load`] reads a YAML file, checks every rule in
//! docs/topology.md and either returns the model plus warnings or every error it found, each with
//! `FILE:LINE:COL`. Later stages (graph, planner) can therefore index by name without checking.

mod generate;
mod graph;
mod load;

pub use generate::{fat_tree, FatTreeSpec};
pub use graph::{EdgeInfo, SwitchGraph};
pub use load::{load, parse, LoadError, Loaded};

use crate::diag::Loc;
use crate::types::{PortGuid, PortRef, RangeSet};
use serde::Serialize;
use std::collections::HashMap;

/// How a job's VLAN is put on the ports facing its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortMode {
    /// Added to the port's tagged list: the node passes it into VMs/containers.
    Tagged,
    /// Set as the port's access VLAN, replacing the previous one.
    Access,
}

#[derive(Clone, Debug)]
pub struct Ethernet {
    pub vlan_pool: RangeSet,
    pub reserved_vlans: RangeSet,
    pub node_port_mode: PortMode,
    pub loc: Loc,
}

impl Ethernet {
    /// The VLANs jobnet may hand out: the pool minus the reserved ones.
    pub fn usable(&self) -> RangeSet {
        self.vlan_pool.minus(&self.reserved_vlans)
    }
}

#[derive(Clone, Debug)]
pub struct Infiniband {
    pub pkey_pool: RangeSet,
    pub partitions_conf: String,
    /// How to make OpenSM apply the file; without it, `up` does not apply partitions.
    pub reload: Option<crate::opensm::Reload>,
    pub reload_window_ms: u64,
    pub verify_command: Option<String>,
    pub verify_timeout_ms: u64,
    /// Header flags of every job partition (`mtu=4`, `rate=7`, `sl=0`, `defmember=full`).
    pub partition_flags: Vec<String>,
    pub standbys: Vec<crate::opensm::Standby>,
    pub loc: Loc,
}

impl Infiniband {
    /// The settings `up` needs to apply partitions, when a reload method is configured.
    pub fn apply_settings(&self) -> Option<crate::opensm::IbApply> {
        Some(crate::opensm::IbApply {
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
    pub port: PortRef,
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
    pub ethernet: Ethernet,
    pub infiniband: Option<Infiniband>,
    pub switches: Vec<Switch>,
    pub links: Vec<Link>,
    pub nodes: Vec<Node>,
    pub gateways: Vec<Gateway>,
    switch_index: HashMap<String, usize>,
    node_index: HashMap<String, usize>,
}

impl Topology {
    pub fn switch_idx(&self, name: &str) -> Option<usize> {
        self.switch_index.get(name).copied()
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.node_idx(name).map(|i| &self.nodes[i])
    }

    pub fn node_idx(&self, name: &str) -> Option<usize> {
        self.node_index.get(name).copied()
    }

    pub fn gateway(&self, name: &str) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.name == name)
    }

    /// Node names per switch index, in file order.
    pub fn nodes_by_switch(&self) -> Vec<Vec<&Node>> {
        let mut out = vec![Vec::new(); self.switches.len()];
        for n in &self.nodes {
            out[self.switch_index[&n.port.switch]].push(n);
        }
        out
    }
}
