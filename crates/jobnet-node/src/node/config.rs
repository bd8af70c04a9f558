//! A node's configuration, `/etc/jobnet/node.yaml` (`$JOBNET_NODE_CONFIG`): where the controller
//! writes the jobs' network.json (a shared directory), where this node records what it changed,
//! which backend changes its virtual switch, the node bridge and its uplink — one file may serve
//! a whole cluster, with per-node overrides under `nodes:` (backend, bridge, uplink, management,
//! interface, ovs_db: [`NODE_KEYS`]; the directories and `programs` are the cluster's).
//!
//! ```yaml
//! jobs_dir: /shared/jobnet/jobs
//! state_dir: /var/lib/jobnet/node
//! backend: ovs                 # ovs | bridge-vlan | bridge-classic
//! bridge: br-vm                # the bridge the VMs' taps are on
//! uplink: eth1                 # the node's port toward its fabric switch
//! management: [eno1]           # the node's own ports on the bridge: never a VM's
//! interface: "tap{job}v{slot}" # a VM's interface when the launcher does not name it
//! ovs_db: unix:/run/openvswitch/db.sock
//! programs: {ovs-vsctl: /usr/bin/ovs-vsctl, ip: /usr/sbin/ip, bridge: /usr/sbin/bridge}
//! nodes:
//!   node001: {bridge: brn1, uplink: brn1-up, management: [brn1-mgmt]}
//! ```
//!
//! `interface:` placeholders ([`PLACEHOLDERS`]): `{job}` the job id (every character but
//! `A-Za-z0-9_-` written `_`), `{vm}` the VM's name, `{slot}` 1.. among the job's VMs on this
//! node, `{node}` the node's name. VM names and slots restart in every job, so without `{job}`
//! two jobs on one node get the same names and the second is refused. The result must be a
//! Linux interface name (letters, digits, `-_.`, at most 15 bytes): the pattern is checked with
//! short sample values when the file is read, and each name again when a job is attached — one
//! that would be longer is refused (exit 2, naming the job, the VM and the name), never cut.
//!
//! The uplink, the bridge, the management ports and every interface the file names (any node's)
//! are never a VM interface ([`NodeSettings::reserved`]).

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
    pub management: Vec<String>,
    pub nodes: BTreeMap<String, NodeOverride>,
}

/// One node's settings under `nodes:` ([`NODE_KEYS`]); what it does not set is the file's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeOverride {
    pub backend: Option<BackendKind>,
    pub bridge: Option<String>,
    pub uplink: Option<String>,
    pub management: Option<Vec<String>>,
    pub interface: Option<String>,
    pub ovs_db: Option<String>,
}

/// What a node may set for itself under `nodes.NODE`. The directories and `programs` are the
/// cluster's: one place the controller writes, one layout of records, one set of programs.
pub const NODE_KEYS: &[&str] = &[
    "backend",
    "bridge",
    "uplink",
    "management",
    "interface",
    "ovs_db",
];

/// Keys of the file that a node cannot set for itself.
const CLUSTER_KEYS: &[&str] = &["jobs_dir", "state_dir", "programs", "nodes"];

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
    /// Interfaces that are never a VM interface, each with why (the uplink, the bridge, the
    /// management ports, every interface the configuration names for any node).
    pub reserved: BTreeMap<String, String>,
}

/// The placeholders of `interface:`.
pub const PLACEHOLDERS: &[&str] = &["{job}", "{vm}", "{slot}", "{node}"];

impl NodeSettings {
    /// The interface of VM `vm` (the `slot`-th of the job on this node, from 1) as `interface:`
    /// names it: the job id escaped to `A-Za-z0-9_-`; a name Linux would not take (too long)
    /// is refused, never cut (a cut name could be another job's).
    pub fn interface_name(
        &self,
        job: &crate::base::types::JobId,
        vm: &str,
        slot: usize,
    ) -> Result<String, super::NodeError> {
        let name = expand(&self.interface, &job.sanitized(), vm, slot, &self.node);
        crate::base::types::check_word("interface", &name, "-_.", 15).map_err(|e| {
            super::NodeError::InterfaceName {
                vm: vm.to_string(),
                message: format!(
                    "`interface: {}` gives `{name}` for job {job}, VM {vm} on node {}: {}; use a shorter pattern (e.g. `t{{job}}v{{slot}}`) or name the VM's interface explicitly",
                    self.interface, self.node, e.0
                ),
            }
        })?;
        Ok(name)
    }
}

impl NodeSettings {
    /// Why `port` is never a VM interface: an interface the configuration names
    /// ([`NodeSettings::reserved`]) or, with `bridge-classic`, one of the node's per-VLAN
    /// interfaces (`UPLINK.V`, `<bridge>vV`).
    pub fn never_a_vm(&self, port: &str) -> Option<String> {
        if let Some(why) = self.reserved.get(port) {
            return Some(why.clone());
        }
        if self.backend != BackendKind::BridgeClassic {
            return None;
        }
        let vlan_of = |prefix: &str| {
            port.strip_prefix(prefix)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .is_some()
        };
        if vlan_of(&format!("{}.", self.uplink)) {
            return Some(format!(
                "a VLAN interface of node {}'s uplink (`{}.V`, made for a job's VLAN)",
                self.node, self.uplink
            ));
        }
        if vlan_of(&format!("{}v", self.bridge)) {
            return Some(format!(
                "a VLAN's bridge of node {} (`{}vV`, made for a job's VLAN)",
                self.node, self.bridge
            ));
        }
        None
    }
}

/// `pattern` with its placeholders filled in.
fn expand(pattern: &str, job: &str, vm: &str, slot: usize, node: &str) -> String {
    pattern
        .replace("{job}", job)
        .replace("{vm}", vm)
        .replace("{slot}", &slot.to_string())
        .replace("{node}", node)
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
    /// The node's name is not a strict word (it names a directory of records); where the name
    /// came from is the caller's to say.
    #[error("{0}")]
    NodeName(String),
}

const KEYS: &[&str] = &[
    "jobs_dir",
    "state_dir",
    "backend",
    "bridge",
    "uplink",
    "interface",
    "management",
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
        // The name becomes a directory of records (`<state_dir>/<node>/`): a strict word only.
        crate::base::types::check_word("node name", node, "-_.", 64)
            .map_err(|e| NodeConfigError::NodeName(e.0))?;
        let o = self.nodes.get(node).cloned().unwrap_or_default();
        let bridge = o.bridge.or_else(|| self.bridge.clone()).ok_or_else(|| {
            NodeConfigError::Node(format!("no bridge for node {node}: set `bridge:` (or nodes.{node}.bridge) in the node configuration"))
        })?;
        let uplink = o.uplink.or_else(|| self.uplink.clone()).ok_or_else(|| {
            NodeConfigError::Node(format!("no uplink for node {node}: set `uplink:` (or nodes.{node}.uplink) in the node configuration"))
        })?;
        let management = o.management.unwrap_or_else(|| self.management.clone());
        // This node's own first: its reason is the one a refusal names.
        let mut reserved = BTreeMap::new();
        let mut reserve = |name: &str, why: String| {
            reserved.entry(name.to_string()).or_insert(why);
        };
        reserve(
            &uplink,
            format!("node {node}'s uplink (`uplink:` in the node configuration)"),
        );
        reserve(
            &bridge,
            format!("node {node}'s bridge (`bridge:` in the node configuration)"),
        );
        for m in &management {
            reserve(
                m,
                format!(
                    "a management port of node {node} (`management:` in the node configuration)"
                ),
            );
        }
        for (key, name) in [("bridge", &self.bridge), ("uplink", &self.uplink)] {
            if let Some(n) = name {
                reserve(n, format!("named by `{key}:` in the node configuration"));
            }
        }
        for m in &self.management {
            reserve(
                m,
                "named by `management:` in the node configuration".to_string(),
            );
        }
        for (other, o) in &self.nodes {
            for (key, name) in [("bridge", &o.bridge), ("uplink", &o.uplink)] {
                if let Some(n) = name {
                    reserve(
                        n,
                        format!("named by `nodes.{other}.{key}` in the node configuration"),
                    );
                }
            }
            for m in o.management.iter().flatten() {
                reserve(
                    m,
                    format!("named by `nodes.{other}.management` in the node configuration"),
                );
            }
        }
        Ok(NodeSettings {
            node: node.to_string(),
            jobs_dir: self.jobs_dir.clone(),
            state_dir: self.state_dir.clone(),
            backend: o.backend.unwrap_or(self.backend),
            bridge,
            uplink,
            interface: o.interface.unwrap_or_else(|| self.interface.clone()),
            ovs_db: o.ovs_db.or_else(|| self.ovs_db.clone()),
            reserved,
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
    let jobs_dir = path(
        d,
        pairs,
        "jobs_dir",
        crate::jobs::network::DEFAULT_ADDRESSES_DIR,
    );
    let state_dir = path(d, pairs, "state_dir", "/var/lib/jobnet/node");
    let backend = backend(d, pairs).unwrap_or(BackendKind::Ovs);
    let b = text(d, pairs, "bridge");
    let bridge = ifname(d, b, "bridge");
    let u = text(d, pairs, "uplink");
    let uplink = ifname(d, u, "uplink");
    let interface = interface(d, pairs).unwrap_or_else(|| "t{job}v{slot}".to_string());
    let management = yaml::get(pairs, "management")
        .map(|n| names(d, n, "management"))
        .unwrap_or_default();
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
        management,
        nodes,
    })
}

/// One interface name or a list of them (`key` is the setting), each checked as [`ifname`].
fn names(d: &mut Diagnostics, n: &Node, key: &str) -> Vec<String> {
    let items: Vec<&Node> = match &n.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Scalar { .. } if !n.is_null() => vec![n],
        _ => {
            d.error(
                n.loc,
                format!(
                    "`{key}` must be an interface name or a list of them, found {}",
                    n.kind_name()
                ),
                "",
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in items {
        match item.as_str() {
            Some(s) => out.extend(ifname(d, Some((s.to_string(), item.loc)), key)),
            None => d.error(
                item.loc,
                format!("`{key}` lists interface names, found {}", item.kind_name()),
                "",
            ),
        }
    }
    out
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

/// The `backend` setting, when set (an unknown one is an error).
fn backend(d: &mut Diagnostics, pairs: &[(Node, Node)]) -> Option<BackendKind> {
    let (t, loc) = text(d, pairs, "backend")?;
    match t.as_str() {
        "ovs" => Some(BackendKind::Ovs),
        "bridge-vlan" => Some(BackendKind::BridgeVlan),
        "bridge-classic" => Some(BackendKind::BridgeClassic),
        other => {
            d.error(
                loc,
                format!("`backend: {}` is unknown", other.escape_debug()),
                "use ovs, bridge-vlan or bridge-classic (Proxmox and libvirt: `jobnet node show`)",
            );
            None
        }
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

/// The `interface` pattern for a VM's interface: only known placeholders, and interface names
/// with short sample values (each real name is checked again when a job is attached).
fn interface(d: &mut Diagnostics, pairs: &[(Node, Node)]) -> Option<String> {
    match text(d, pairs, "interface") {
        None => None,
        Some((t, loc)) => {
            let mut rest = t.as_str();
            while let Some(at) = rest.find('{') {
                let end = rest[at..].find('}').map_or(rest.len(), |e| at + e + 1);
                let p = &rest[at..end];
                if !PLACEHOLDERS.contains(&p) {
                    d.error(
                        loc,
                        format!(
                            "`interface: {}` has the unknown placeholder `{}`",
                            t.escape_debug(),
                            p.escape_debug()
                        ),
                        format!("the placeholders are {}", PLACEHOLDERS.join(", ")),
                    );
                    return Some(t);
                }
                rest = &rest[end..];
            }
            let sample = expand(&t, "1", "vm1", 1, "n1");
            if let Err(e) = crate::base::types::check_word("interface", &sample, "-_.", 15) {
                d.error(
                    loc,
                    format!("`interface: {}` does not give interface names: with job 1, VM vm1, slot 1, node n1: {}", t.escape_debug(), e.0),
                    "interface names: letters, digits, `-_.`, at most 15 with the real job id, VM and node names",
                );
            }
            Some(t)
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

/// The per-node settings under `nodes`.
fn nodes(d: &mut Diagnostics, pairs: &[(Node, Node)]) -> BTreeMap<String, NodeOverride> {
    let mut nodes = BTreeMap::new();
    if let Some(n) = yaml::get(pairs, "nodes") {
        if let Some(np) = yaml::mapping(
            d,
            n,
            "`nodes`",
            "write `NODE: {bridge: ..., uplink: ..., management: [...], ...}` lines",
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

/// One node's override ([`NODE_KEYS`]); None when it is not a mapping. A key the cluster
/// shares (`jobs_dir`, ...) is an error that says so.
fn node_override(d: &mut Diagnostics, name: &str, v: &Node) -> Option<NodeOverride> {
    let vp = yaml::mapping(
        d,
        v,
        &format!("nodes.{name}"),
        "write {bridge: ..., uplink: ..., management: [...], ...}",
    )?;
    yaml::report_unknown(d, vp, NODE_KEYS, &format!("nodes.{name}"), &|key, _| {
        CLUSTER_KEYS.contains(&key)
    });
    for (k, _) in vp {
        let Some(key) = k.as_str().filter(|k| CLUSTER_KEYS.contains(k)) else {
            continue;
        };
        d.error(
            k.loc,
            format!("`nodes.{name}.{key}`: `{key}` is the same for every node"),
            format!(
                "set `{key}:` at the top of the file; a node may set {}",
                NODE_KEYS.join(", ")
            ),
        );
    }
    let b = text(d, vp, "bridge");
    let u = text(d, vp, "uplink");
    Some(NodeOverride {
        backend: backend(d, vp),
        bridge: ifname(d, b, "bridge"),
        uplink: ifname(d, u, "uplink"),
        management: yaml::get(vp, "management").map(|n| names(d, n, "management")),
        interface: interface(d, vp),
        ovs_db: ovs_db(d, vp),
    })
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
        // Every per-node key overrides the file's; the cluster's keys are refused there.
        let c = NodeConfig::parse(
            "bridge: br-vm\nuplink: eth1\ninterface: \"t{job}v{slot}\"\nnodes:\n  px1: {backend: bridge-classic, bridge: vmbr0, interface: \"tap{job}i{slot}\", ovs_db: \"unix:/run/o.sock\"}\n",
            "node.yaml",
        )
        .unwrap();
        let px = c.for_node("px1").unwrap();
        assert_eq!(
            (
                px.backend,
                px.bridge.as_str(),
                px.uplink.as_str(),
                px.interface.as_str(),
                px.ovs_db.as_deref()
            ),
            (
                BackendKind::BridgeClassic,
                "vmbr0",
                "eth1",
                "tap{job}i{slot}",
                Some("unix:/run/o.sock")
            )
        );
        let other = c.for_node("cn1").unwrap();
        assert_eq!(
            (other.backend, other.interface.as_str(), other.ovs_db),
            (BackendKind::Ovs, "t{job}v{slot}", None)
        );
        let e = NodeConfig::parse(
            "nodes:\n  px1: {jobs_dir: /x, backend: vpp, bridgee: b}\n",
            "node.yaml",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "node.yaml:2:9: error: `nodes.px1.jobs_dir`: `jobs_dir` is the same for every node",
            "a node may set backend, bridge, uplink, management, interface, ovs_db",
            "`backend: vpp` is unknown",
            "unknown key `bridgee` in nodes.px1",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
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

    #[test]
    fn interface_placeholders_and_management_ports() {
        let job = |j: &str| crate::base::types::JobId::parse(j).unwrap();
        let c = NodeConfig::parse(
            "bridge: br-vm\nuplink: eth1\nmanagement: eno1\ninterface: \"t{job}{vm}s{slot}\"\nnodes:\n  cn2: {uplink: eth2, management: [m2, m3]}\n",
            "n.yaml",
        )
        .unwrap();
        let s = c.for_node("cn1").unwrap();
        assert_eq!(s.interface_name(&job("7"), "vs1", 1).unwrap(), "t7vs1s1");
        assert_eq!(
            s.interface_name(&job("1.2+x"), "vs2", 2).unwrap(),
            "t1_2_xvs2s2"
        );
        let e = s
            .interface_name(&job("123456789012"), "vs1", 1)
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("gives `t123456789012vs1s1` for job 123456789012, VM vs1 on node cn1: interface `t123456789012vs1s1` is longer than 15 characters"),
            "{e}"
        );
        let reserved: Vec<_> = s.reserved.keys().map(String::as_str).collect();
        assert_eq!(reserved, ["br-vm", "eno1", "eth1", "eth2", "m2", "m3"]);
        assert!(s.reserved["eth1"].contains("node cn1's uplink"));
        // A node's own management ports replace the common ones.
        let two = c.for_node("cn2").unwrap();
        assert!(two.reserved["m2"].contains("a management port of node cn2"));
        assert!(two.reserved["eno1"].contains("named by `management:`"));
        for (text, want) in [
            ("interface: \"tap{jobid}\"\n", "has the unknown placeholder `{jobid}`"),
            ("interface: \"tap{job\"\n", "has the unknown placeholder `{job`"),
            ("interface: \"a-very-long-name{job}\"\n", "with job 1, VM vm1, slot 1, node n1: interface `a-very-long-name1` is longer than 15"),
            ("management: [eth0, {a: b}]\n", "`management` lists interface names, found a mapping"),
            ("management: eth0!\n", "management `eth0!` contains `!`"),
        ] {
            let e = NodeConfig::parse(text, "n.yaml").unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
