//! A node's configuration, `/etc/jobnet/node.yaml` (`$JOBNET_NODE_CONFIG`): where the controller
//! writes the jobs' network.json (a shared directory), where this node records what it changed,
//! which backend changes its virtual switch, the node bridge and its uplink — one file may serve
//! a whole cluster, with per-node overrides under `nodes:`.
//!
//! ```yaml
//! jobs_dir: /shared/jobnet/jobs
//! state_dir: /var/lib/jobnet/node
//! backend: ovs                 # ovs | bridge-vlan | bridge-classic
//! bridge: br-vm                # the bridge the VMs' taps are on
//! uplink: eth1                 # the node's port toward its fabric switch
//! interface: "tap{vm}"         # a VM's interface when the launcher does not name it: {vm} its
//!                              # name, {slot} 1.. among this node's VMs, {node} the node
//! ovs_db: unix:/run/openvswitch/db.sock
//! programs: {ovs-vsctl: /usr/bin/ovs-vsctl, ip: /usr/sbin/ip, bridge: /usr/sbin/bridge}
//! nodes:
//!   node001: {bridge: brn1, uplink: brn1-up}
//! ```

use crate::base::diag::{Diagnostic, Diagnostics, Loc};
use crate::base::yaml::{self, Kind, Node};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG: &str = "/etc/jobnet/node.yaml";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Ovs,
    BridgeVlan,
    BridgeClassic,
}

/// The configuration file.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub jobs_dir: PathBuf,
    pub state_dir: PathBuf,
    pub backend: BackendKind,
    pub bridge: Option<String>,
    pub uplink: Option<String>,
    pub interface: String,
    pub ovs_db: Option<String>,
    pub programs: BTreeMap<String, PathBuf>,
    pub nodes: BTreeMap<String, (Option<String>, Option<String>)>,
}

/// What one node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSettings {
    pub node: String,
    pub jobs_dir: PathBuf,
    pub state_dir: PathBuf,
    pub backend: BackendKind,
    pub bridge: String,
    pub uplink: String,
    pub interface: String,
    pub ovs_db: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    #[error("cannot read the node configuration {path}: {source}; check $JOBNET_NODE_CONFIG (default /etc/jobnet/node.yaml)")]
    Io {
        path: String,
        #[source]
        source: crate::base::limits::FileError,
    },
    #[error("{path} is invalid:\n{}", crate::base::diag::lines(.diagnostics))]
    Invalid {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("{0}")]
    Node(String),
}

const KEYS: &[&str] = &[
    "jobs_dir",
    "state_dir",
    "backend",
    "bridge",
    "uplink",
    "interface",
    "ovs_db",
    "programs",
    "nodes",
];

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, NodeConfigError> {
        let text = crate::base::limits::read_text(path, crate::base::limits::PROFILE).map_err(
            |source| NodeConfigError::Io {
                path: path.display().to_string(),
                source,
            },
        )?;
        NodeConfig::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, file: &str) -> Result<NodeConfig, NodeConfigError> {
        let (mut d, root) = yaml::parse_document(text, file);
        let cfg = read(&mut d, root.as_ref());
        match cfg {
            Some(c) if !d.has_errors() => Ok(c),
            _ => Err(NodeConfigError::Invalid {
                path: file.to_string(),
                diagnostics: d.sorted(),
            }),
        }
    }

    /// The settings of node `node`.
    pub fn for_node(&self, node: &str) -> Result<NodeSettings, NodeConfigError> {
        let (b, u) = self.nodes.get(node).cloned().unwrap_or((None, None));
        let bridge = b.or_else(|| self.bridge.clone()).ok_or_else(|| {
            NodeConfigError::Node(format!("no bridge for node {node}: set `bridge:` (or nodes.{node}.bridge) in the node configuration"))
        })?;
        let uplink = u.or_else(|| self.uplink.clone()).ok_or_else(|| {
            NodeConfigError::Node(format!("no uplink for node {node}: set `uplink:` (or nodes.{node}.uplink) in the node configuration"))
        })?;
        Ok(NodeSettings {
            node: node.to_string(),
            jobs_dir: self.jobs_dir.clone(),
            state_dir: self.state_dir.clone(),
            backend: self.backend,
            bridge,
            uplink,
            interface: self.interface.clone(),
            ovs_db: self.ovs_db.clone(),
        })
    }
}

fn read(d: &mut Diagnostics, root: Option<&Node>) -> Option<NodeConfig> {
    let empty = Node {
        loc: Loc { line: 1, col: 1 },
        kind: Kind::Map(Vec::new()),
    };
    let root = root.filter(|r| !r.is_null()).unwrap_or(&empty);
    let pairs = yaml::mapping(
        d,
        root,
        "the node configuration",
        "write `key: value` lines",
    )?;
    yaml::report_unknown(d, pairs, KEYS, "the node configuration", &|_, _| false);
    let jobs_dir = path(d, pairs, "jobs_dir", "/var/lib/jobnet/jobs");
    let state_dir = path(d, pairs, "state_dir", "/var/lib/jobnet/node");
    let backend = backend(d, pairs);
    let b = text(d, pairs, "bridge");
    let bridge = ifname(d, b, "bridge");
    let u = text(d, pairs, "uplink");
    let uplink = ifname(d, u, "uplink");
    let interface = interface(d, pairs);
    let ovs_db = ovs_db(d, pairs);
    let programs = programs(d, pairs);
    let nodes = nodes(d, pairs);
    Some(NodeConfig {
        jobs_dir,
        state_dir,
        backend,
        bridge,
        uplink,
        interface,
        ovs_db,
        programs,
        nodes,
    })
}

/// The single value under `key` with where it stands; a list or a map there is an error.
fn text(d: &mut Diagnostics, pairs: &[(Node, Node)], key: &str) -> Option<(String, Loc)> {
    let n = yaml::get(pairs, key)?;
    match n.as_str() {
        Some(s) if !n.is_null() => Some((s.to_string(), n.loc)),
        _ => {
            d.error(
                n.loc,
                format!("`{key}` must be a single value, found {}", n.kind_name()),
                "",
            );
            None
        }
    }
}

/// The absolute path under `key`, or `default` when it is absent or not a safe absolute path.
fn path(d: &mut Diagnostics, pairs: &[(Node, Node)], key: &str, default: &str) -> PathBuf {
    match text(d, pairs, key) {
        Some((t, _)) if t.starts_with('/') && crate::base::types::safe_path(&t) => PathBuf::from(t),
        Some((t, loc)) => {
            d.error(
                loc,
                format!(
                    "`{key}: {}` is not an absolute path of letters, digits and /._-",
                    t.escape_debug()
                ),
                "",
            );
            PathBuf::from(default)
        }
        None => PathBuf::from(default),
    }
}

/// The `backend` setting; absent or unknown means Open vSwitch.
fn backend(d: &mut Diagnostics, pairs: &[(Node, Node)]) -> BackendKind {
    match text(d, pairs, "backend") {
        None => BackendKind::Ovs,
        Some((t, loc)) => match t.as_str() {
            "ovs" => BackendKind::Ovs,
            "bridge-vlan" => BackendKind::BridgeVlan,
            "bridge-classic" => BackendKind::BridgeClassic,
            other => {
                d.error(loc, format!("`backend: {}` is unknown", other.escape_debug()), "use ovs, bridge-vlan or bridge-classic (Proxmox and libvirt: `jobnet node show`)");
                BackendKind::Ovs
            }
        },
    }
}

/// An interface name (`what` is its setting), kept only if Linux would accept it.
fn ifname(d: &mut Diagnostics, v: Option<(String, Loc)>, what: &str) -> Option<String> {
    let (t, loc) = v?;
    match crate::base::types::check_word(what, &t, "-_.", 15) {
        Ok(()) => Some(t),
        Err(e) => {
            d.error(
                loc,
                e.0,
                "interface names: letters, digits, `-_.`, at most 15",
            );
            None
        }
    }
}

/// The `interface` pattern for a VM's interface, checked by filling in sample values.
fn interface(d: &mut Diagnostics, pairs: &[(Node, Node)]) -> String {
    match text(d, pairs, "interface") {
        None => "{node}v{slot}".to_string(),
        Some((t, loc)) => {
            let sample = t
                .replace("{vm}", "vm1")
                .replace("{slot}", "1")
                .replace("{node}", "n1");
            if crate::base::types::check_word("interface", &sample, "-_.", 15).is_err() {
                d.error(loc, format!("`interface: {}` does not give interface names (letters, digits, `-_.`, at most 15 after {{vm}}, {{slot}}, {{node}})", t.escape_debug()), "");
            }
            t
        }
    }
}

/// The `ovs_db` socket, which must be `unix:/absolute/path`.
fn ovs_db(d: &mut Diagnostics, pairs: &[(Node, Node)]) -> Option<String> {
    text(d, pairs, "ovs_db").map(|(t, loc)| {
        if !(t.starts_with("unix:/") && crate::base::types::safe_path(&t["unix:".len()..])) {
            d.error(
                loc,
                format!("`ovs_db: {}` is not unix:/absolute/path", t.escape_debug()),
                "",
            );
        }
        t
    })
}

/// The `programs` map of program name to absolute path.
fn programs(d: &mut Diagnostics, pairs: &[(Node, Node)]) -> BTreeMap<String, PathBuf> {
    let mut programs = BTreeMap::new();
    if let Some(n) = yaml::get(pairs, "programs") {
        if let Some(pp) = yaml::mapping(d, n, "`programs`", "write `name: /absolute/path` lines") {
            for (k, v) in pp {
                match (k.as_str(), v.as_str()) {
                    (Some(name), Some(p))
                        if p.starts_with('/') && crate::base::types::safe_path(p) =>
                    {
                        programs.insert(name.to_string(), PathBuf::from(p));
                    }
                    _ => d.error(v.loc, "a program's path must be absolute", ""),
                }
            }
        }
    }
    programs
}

/// The per-node bridge and uplink overrides under `nodes`.
fn nodes(
    d: &mut Diagnostics,
    pairs: &[(Node, Node)],
) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let mut nodes = BTreeMap::new();
    if let Some(n) = yaml::get(pairs, "nodes") {
        if let Some(np) = yaml::mapping(
            d,
            n,
            "`nodes`",
            "write `NODE: {bridge: ..., uplink: ...}` lines",
        ) {
            for (k, v) in np {
                let Some(name) = k.as_str() else { continue };
                if let Some(o) = node_override(d, name, v) {
                    nodes.insert(name.to_string(), o);
                }
            }
        }
    }
    nodes
}

/// One node's `{bridge, uplink}` override; None when it is not a mapping.
fn node_override(
    d: &mut Diagnostics,
    name: &str,
    v: &Node,
) -> Option<(Option<String>, Option<String>)> {
    let vp = yaml::mapping(
        d,
        v,
        &format!("nodes.{name}"),
        "write {bridge: ..., uplink: ...}",
    )?;
    yaml::report_unknown(
        d,
        vp,
        &["bridge", "uplink"],
        &format!("nodes.{name}"),
        &|_, _| false,
    );
    let get =
        |key: &str| yaml::get(vp, key).and_then(|x| x.as_str().map(|s| (s.to_string(), x.loc)));
    let b = ifname(d, get("bridge"), "bridge");
    let u = ifname(d, get("uplink"), "uplink");
    Some((b, u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_node_overrides_and_mistakes() {
        let c = NodeConfig::parse(
            "jobs_dir: /shared/jobs\nbridge: br-vm\nuplink: eth1\nnodes:\n  node002: {bridge: brn2}\n",
            "node.yaml",
        )
        .unwrap();
        assert_eq!(c.for_node("node001").unwrap().bridge, "br-vm");
        let two = c.for_node("node002").unwrap();
        assert_eq!((two.bridge.as_str(), two.uplink.as_str()), ("brn2", "eth1"));
        let e = NodeConfig::parse(
            "backend: vpp\nbridge: a-very-long-bridge-name\nstate_dir: rel\n",
            "n.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("n.yaml:1:10: error: `backend: vpp` is unknown"),
            "{e}"
        );
        assert!(e.contains("n.yaml:2:9: error: bridge"), "{e}");
        assert!(
            e.contains("n.yaml:3:12: error: `state_dir: rel` is not an absolute path"),
            "{e}"
        );
        let none = NodeConfig::parse("", "n.yaml").unwrap();
        assert!(none
            .for_node("x")
            .unwrap_err()
            .to_string()
            .contains("no bridge for node x"));
    }
}
