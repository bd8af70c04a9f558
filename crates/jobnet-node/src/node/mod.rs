//! On the nodes: the last hop. `jobnet node attach` puts the job's VM/container interfaces on
//! the job's VLAN and makes the node's uplink carry it; `detach` gives the node back exactly what
//! it had. The job's VLAN and VMs come from the controller's `network.json`
//! ([`crate::jobs::network`]); what a node changed is recorded in `<state_dir>/<node>/<job>.json`
//! before each change is made (record, then change), so a rerun, a partial attach and a detach
//! after a crash — even a `kill -9` right after a command — all know what to do. An interface
//! recorded by another job, the uplink, the bridge, a management port and every other interface
//! the node configuration names are refused before anything changes.
//!
//! Everything that reads or writes the records and changes the node happens in a [`Session`],
//! which holds the node's lock (`<state_dir>/<node>/node.lock`): container runtimes call the CNI
//! plugin in parallel, and two ADDs must never read the same record and take the same VM slot.
//!
//! Backends ([`Backend`], chosen in the node's configuration) read what a change will be: Open
//! vSwitch ([`ovs`], `tag=V` on the VM port, `trunks` on the uplink), a VLAN-aware Linux bridge
//! and the classic bridge-per-VLAN layout ([`linux`]). Making and undoing a recorded change
//! ([`Change::apply`], [`Change::undo`]) depends only on the change, so every kind has its
//! inverse whatever the configuration says today. Proxmox and libvirt configuration is generated
//! ([`render`]). [`cni`] is the CNI plugin for containers. Commands reach the node through a
//! [`Host`] ([`host::System`], or the test kit's simulated node).

pub mod cni;
pub mod config;
pub mod host;
pub mod linux;
pub mod ovs;
pub mod render;
#[cfg(any(test, feature = "testkit"))]
pub mod sim;

use crate::base::fsutil::{Dir, FileLock, LockError};
use crate::base::types::JobId;
use crate::jobs::network::JobNetwork;
pub use config::NodeConfig;
use config::{BackendKind, NodeSettings};
pub use host::Host;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One change a node made for a job, with what undoes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// The uplink port carries the VLAN (Open vSwitch trunks).
    OvsUplink {
        bridge: String,
        port: String,
        vlan: u16,
    },
    /// A VM port on the job's VLAN; `created`: jobnet added the port; `previous`: its tag before.
    OvsPort {
        bridge: String,
        port: String,
        created: bool,
        previous: Option<u16>,
    },
    /// Linux VLAN-aware bridge: the uplink carries the VLAN tagged.
    BridgeUplink { uplink: String, vlan: u16 },
    /// Linux VLAN-aware bridge: a VM port is an untagged member of the VLAN only; `previous`:
    /// the VLANs it had, with their flags (a record of an older jobnet lists only ids).
    BridgePort {
        port: String,
        vlan: u16,
        previous: Vec<linux::PortVlan>,
    },
    /// Classic layout: `uplink.V` and the bridge `<bridge>vV` over it, created by jobnet.
    ClassicVlanBridge {
        uplink: String,
        bridge: String,
        vlan: u16,
        /// Whether jobnet made `uplink.V` too (false: it was there and stays; records of an
        /// older jobnet, which made both, lack it).
        #[serde(default = "yes")]
        made_vlan_interface: bool,
    },
    /// Classic layout: a VM port enslaved to the VLAN's bridge; `previous`: its master before.
    ClassicPort {
        port: String,
        bridge: String,
        previous: Option<String>,
    },
    /// A veth pair jobnet made for a network namespace (`--netns`, the CNI plugin); `ifname` is
    /// `IFNAME#VM`: the name inside the namespace and the job's VM slot it has.
    Veth {
        host: String,
        netns: String,
        ifname: String,
    },
}

impl Change {
    /// Makes the change (recorded before); safe to repeat. `vlan` is the job's (an Open vSwitch
    /// port's change does not carry it). A veth is made with its addresses by [`make_veth`],
    /// never here.
    pub fn apply(
        &self,
        h: &mut dyn Host,
        ovs_db: Option<&str>,
        vlan: u16,
    ) -> Result<(), NodeError> {
        match self {
            Change::OvsUplink { port, vlan, .. } => ovs::Ovs::new(ovs_db).trunk(h, port, *vlan),
            Change::OvsPort { bridge, port, .. } => ovs::Ovs::new(ovs_db).tag(h, bridge, port, vlan),
            Change::BridgeUplink { uplink, vlan } => linux::trunk(h, uplink, *vlan),
            Change::BridgePort { port, vlan, .. } => linux::member(h, port, *vlan),
            Change::ClassicVlanBridge {
                uplink,
                bridge,
                vlan,
                ..
            } => linux::vlan_bridge(h, uplink, bridge, *vlan),
            Change::ClassicPort { port, bridge, .. } => linux::enslave(h, port, bridge),
            Change::Veth { host, .. } => Err(NodeError::Refused(format!(
                "the veth {host} is made with its addresses (make_veth), not re-applied from its record"
            ))),
        }
    }

    /// Gives back what the change took; undoing what is gone already is success.
    pub fn undo(&self, h: &mut dyn Host, ovs_db: Option<&str>) -> Result<(), NodeError> {
        match self {
            Change::OvsUplink { port, vlan, .. } => ovs::Ovs::new(ovs_db).untrunk(h, port, *vlan),
            Change::OvsPort {
                bridge,
                port,
                created,
                previous,
            } => ovs::Ovs::new(ovs_db).untag(h, bridge, port, *created, *previous),
            Change::BridgeUplink { uplink, vlan } => linux::untrunk(h, uplink, *vlan),
            Change::BridgePort { port, previous, .. } => linux::unmember(h, port, previous),
            Change::ClassicVlanBridge {
                uplink,
                bridge,
                vlan,
                made_vlan_interface,
            } => linux::no_vlan_bridge(h, uplink, bridge, *vlan, *made_vlan_interface),
            Change::ClassicPort { port, previous, .. } => {
                linux::release(h, port, previous.as_deref())
            }
            Change::Veth { host, .. } => remove_veth(h, host),
        }
    }

    /// The change in words, for a report of what could not be undone.
    pub fn describe(&self) -> String {
        match self {
            Change::OvsUplink { port, vlan, .. } => {
                format!("VLAN {vlan} in the trunks of the uplink {port} (Open vSwitch)")
            }
            Change::OvsPort {
                bridge,
                port,
                created,
                previous,
            } => format!(
                "port {port} of {bridge} tagged with the job's VLAN ({})",
                match (created, previous) {
                    (true, _) => "added by jobnet".to_string(),
                    (false, Some(t)) => format!("tag {t} before"),
                    (false, None) => "untagged before".to_string(),
                }
            ),
            Change::BridgeUplink { uplink, vlan } => {
                format!("VLAN {vlan} on the uplink {uplink} (Linux bridge)")
            }
            Change::BridgePort { port, vlan, .. } => {
                format!("port {port} an untagged member of VLAN {vlan} only (Linux bridge)")
            }
            Change::ClassicVlanBridge {
                uplink,
                bridge,
                vlan,
                made_vlan_interface: true,
            } => format!("{uplink}.{vlan} and the bridge {bridge} over it"),
            Change::ClassicVlanBridge {
                uplink,
                bridge,
                vlan,
                made_vlan_interface: false,
            } => format!("the bridge {bridge} over {uplink}.{vlan}"),
            Change::ClassicPort { port, bridge, .. } => format!("port {port} enslaved to {bridge}"),
            Change::Veth { host, netns, .. } => format!("the veth {host} into {netns}"),
        }
    }

    /// Whether the change makes the uplink carry the job's VLAN.
    pub fn is_uplink(&self) -> bool {
        match self {
            Change::OvsUplink { .. }
            | Change::BridgeUplink { .. }
            | Change::ClassicVlanBridge { .. } => true,
            Change::OvsPort { .. }
            | Change::BridgePort { .. }
            | Change::ClassicPort { .. }
            | Change::Veth { .. } => false,
        }
    }
}

fn yes() -> bool {
    true
}

/// What a node did for a job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub job: String,
    pub vlan: u16,
    pub changes: Vec<Change>,
}

/// Why a node could not attach or detach.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Network(#[from] crate::jobs::network::NetworkFileError),
    #[error("{0}")]
    Config(String),
    /// The configuration's `interface:` gives VM `vm` a name Linux would not take; the caller
    /// may say how to name the interface instead.
    #[error("{message}")]
    InterfaceName { vm: String, message: String },
    /// Refused before any change: the message names the interface, the port or the job.
    #[error("{0}")]
    Refused(String),
    #[error("`{command}` failed: {answer}")]
    Command { command: String, answer: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Another jobnet process kept the node's lock longer than the wait.
    #[error("the node's lock: {0}")]
    Lock(#[from] LockError),
    /// A change failed, and undoing it failed too: it stays recorded for detach.
    #[error("{initial}; undoing it failed too: {unwind}; it stays recorded: `jobnet node detach --job {job}` tries again")]
    Unwind {
        job: String,
        initial: Box<NodeError>,
        unwind: Box<NodeError>,
    },
    /// Teardown went on past every failure; these changes stay recorded.
    #[error("{} of job {job}'s change(s) could not be undone ({undone} undone); they stay recorded in {path} and the next `jobnet node detach --job {job}` tries again:{}", failed.len(), failed.iter().map(|(c, e)| format!("\n  - {c}: {e}")).collect::<String>())]
    Teardown {
        job: String,
        path: String,
        undone: usize,
        failed: Vec<(String, NodeError)>,
    },
}

impl NodeError {
    /// 2 for what the caller can fix (bad input, a refused interface), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            NodeError::Config(_)
            | NodeError::InterfaceName { .. }
            | NodeError::Refused(_)
            | NodeError::Network(_) => 2,
            NodeError::Command { .. }
            | NodeError::Io { .. }
            | NodeError::Lock(_)
            | NodeError::Unwind { .. }
            | NodeError::Teardown { .. } => 1,
        }
    }
}

/// What a node's virtual switch has and what a change of it will be: reads only; the changes
/// themselves are made by [`Change::apply`] after they are recorded.
pub trait Backend {
    /// Checked before any change: the uplink and the bridge exist.
    fn check(&self, h: &mut dyn Host, bridge: &str, uplink: &str) -> Result<(), NodeError>;
    /// What making the uplink carry `vlan` will change; `None` when it already does.
    fn uplink_change(
        &self,
        h: &mut dyn Host,
        bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError>;
    /// What putting `port` on `vlan` will change (with what it had, for undo).
    fn port_change(
        &self,
        h: &mut dyn Host,
        bridge: &str,
        port: &str,
        vlan: u16,
    ) -> Result<Change, NodeError>;
    /// The bridge a veth jobnet makes must be a port of before its port change can be made
    /// (a VLAN-aware Linux bridge sets VLANs only on its own ports); it stays down until then.
    fn veth_master(&self, _bridge: &str) -> Option<String> {
        None
    }
    /// The VLAN a VM port is on now (the CNI plugin's CHECK); `None`: on none.
    fn port_vlan(&self, h: &mut dyn Host, port: &str) -> Result<Option<u16>, NodeError>;
}

/// The backend the node's configuration names.
pub fn backend(cfg: &NodeSettings) -> Box<dyn Backend> {
    match cfg.backend {
        BackendKind::Ovs => Box::new(ovs::Ovs::new(cfg.ovs_db.as_deref())),
        BackendKind::BridgeVlan => Box::new(linux::BridgeVlan),
        BackendKind::BridgeClassic => Box::new(linux::Classic),
    }
}

/// A strict interface/bridge name (at most 15 bytes, Linux's limit).
pub fn check_ifname(what: &str, name: &str) -> Result<(), NodeError> {
    crate::base::types::check_word(what, name, "-_.", 15).map_err(|e| NodeError::Config(e.0))
}

/// The node's lock file, in the directory of its records.
pub const LOCK_FILE: &str = "node.lock";

/// How long a session waits for another jobnet process on the node (an attach, a detach, a
/// CNI ADD or DEL) before giving up, naming the holder.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The node's records.
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn new(dir: &Path) -> Records {
        Records {
            dir: dir.to_path_buf(),
        }
    }

    /// A node's records: `<state_dir>/<node>/` (several nodes may share a state directory).
    pub fn for_node(cfg: &NodeSettings) -> Records {
        Records::new(&cfg.state_dir.join(&cfg.node))
    }

    fn path(&self, job: &JobId) -> PathBuf {
        self.dir.join(format!("{}.json", job.file_name()))
    }

    fn dir(&self) -> Result<Dir, NodeError> {
        Dir::ensure(&self.dir, 0o700, None).map_err(|source| NodeError::Io {
            path: self.dir.display().to_string(),
            source,
        })
    }

    /// Takes the node's lock, waiting up to `wait` (the lock file is opened as every file in a
    /// directory another user may write: no link followed, checked on its descriptor).
    pub fn lock(&self, wait: Duration) -> Result<FileLock, NodeError> {
        self.dir()?;
        Ok(FileLock::acquire(&self.dir.join(LOCK_FILE), wait)?)
    }

    pub fn load(&self, job: &JobId) -> Result<Option<Record>, NodeError> {
        let path = self.path(job);
        let io = |source| NodeError::Io {
            path: path.display().to_string(),
            source,
        };
        // A link or FIFO where a record should be is refused, never read (root reads these).
        match crate::base::fsutil::read_nofollow(&path, 16 << 20).map_err(io)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                ))
            }),
            None => Ok(None),
        }
    }

    pub fn save(&self, r: &Record, job: &JobId) -> Result<(), NodeError> {
        let dir = self.dir()?;
        let path = self.path(job);
        let text = serde_json::to_string_pretty(r).expect("json") + "\n";
        dir.replace(
            path.file_name().unwrap_or_default(),
            text.as_bytes(),
            0o600,
            None,
        )
        .map_err(|source| NodeError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn remove(&self, job: &JobId) -> Result<(), NodeError> {
        let path = self.path(job);
        let io = |source| NodeError::Io {
            path: path.display().to_string(),
            source,
        };
        match Dir::open(&self.dir) {
            Ok(d) => d.remove(path.file_name().unwrap_or_default()).map_err(io),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// The job that recorded `port`, other than `except`.
    pub fn owner_of(&self, port: &str, except: &JobId) -> Option<String> {
        let dir = Dir::open(&self.dir).ok()?;
        let entries = std::fs::read_dir(&self.dir).ok()?;
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().ends_with(".json") {
                continue;
            }
            // Read as the records are: never through a link, never a FIFO.
            let Ok(Some(bytes)) = dir.read(&name, 16 << 20) else {
                continue;
            };
            let Ok(r) = serde_json::from_slice::<Record>(&bytes) else {
                continue;
            };
            if r.job == except.as_str() {
                continue;
            }
            if r.changes.iter().any(|c| change_port(c) == Some(port)) {
                return Some(r.job);
            }
        }
        None
    }
}

/// The VM-side interface a change is about.
pub fn change_port(c: &Change) -> Option<&str> {
    match c {
        Change::OvsPort { port, .. }
        | Change::BridgePort { port, .. }
        | Change::ClassicPort { port, .. } => Some(port),
        Change::Veth { host, .. } => Some(host),
        Change::OvsUplink { .. }
        | Change::BridgeUplink { .. }
        | Change::ClassicVlanBridge { .. } => None,
    }
}

/// Deletes a veth jobnet made (its peer goes with it); one that is gone already is fine.
pub fn remove_veth(h: &mut dyn Host, host: &str) -> Result<(), NodeError> {
    if !h.exists(host) {
        return Ok(());
    }
    h.run(&["ip", "link", "del", host]).map(|_| ())
}

/// A veth pair for a network namespace: `host` on this node, its peer `ifname` inside the
/// namespace at `netns` with the MAC and address of the job's VM slot `vm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veth {
    pub host: String,
    pub netns: String,
    pub ifname: String,
    pub vm: String,
    pub mac: String,
    pub ip: Option<(std::net::Ipv4Addr, u8)>,
    pub gateway: Option<std::net::Ipv4Addr>,
}

impl Veth {
    /// Its names and namespace, checked before anything is made.
    pub fn check(&self) -> Result<(), NodeError> {
        check_ifname("interface", &self.host)?;
        check_ifname("interface", &self.ifname)?;
        if !crate::base::types::safe_path(&self.netns) {
            return Err(NodeError::Config(format!(
                "network namespace `{}` is not an absolute path of letters, digits and /._-",
                self.netns.escape_debug()
            )));
        }
        Ok(())
    }

    /// The record of it.
    pub fn change(&self) -> Change {
        Change::Veth {
            host: self.host.clone(),
            netns: self.netns.clone(),
            ifname: format!("{}#{}", self.ifname, self.vm),
        }
    }
}

/// Makes the veth pair with a default route via its gateway, the container's end up and the
/// node's end down — a port of `master` when the backend needs that ([`Backend::veth_master`]) —
/// until its port change is made ([`Session::attach`] brings it up): the container is never on
/// the bridge's default VLAN, not even for a moment. Replaces a leftover of an earlier,
/// interrupted attach (delete, then add).
pub fn make_veth(h: &mut dyn Host, v: &Veth, master: Option<&str>) -> Result<(), NodeError> {
    v.check()?;
    let (host, netns, ifname) = (v.host.as_str(), v.netns.as_str(), v.ifname.as_str());
    remove_veth(h, host)?;
    let tmp = format!("{host}p");
    h.run(&[
        "ip", "link", "add", host, "type", "veth", "peer", "name", &tmp,
    ])?;
    h.run(&["ip", "link", "set", &tmp, "netns", netns])?;
    let net = format!("--net={netns}");
    let mut inside = |args: &[&str]| {
        let mut argv = vec!["nsenter", net.as_str(), "ip"];
        argv.extend_from_slice(args);
        h.run(&argv)
    };
    inside(&["link", "set", &tmp, "name", ifname])?;
    inside(&["link", "set", ifname, "address", &v.mac])?;
    if let Some((addr, prefix)) = v.ip {
        inside(&[
            "addr",
            "replace",
            &format!("{addr}/{prefix}"),
            "dev",
            ifname,
        ])?;
    }
    inside(&["link", "set", ifname, "up"])?;
    inside(&["link", "set", "lo", "up"])?;
    if let Some(g) = v.gateway {
        let _ = inside(&["route", "replace", "default", "via", &g.to_string()]);
    }
    if let Some(m) = master {
        h.run(&["ip", "link", "set", host, "master", m])?;
    }
    Ok(())
}

/// A host-side veth name for a namespace: `jn` and 8 hex digits of its identity (15 bytes max).
pub fn veth_name(identity: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in identity.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("jn{h:08x}")
}

/// What attach did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attached {
    pub job: String,
    pub vlan: Option<u16>,
    pub interfaces: Vec<String>,
    pub note: Option<String>,
}

/// The node, locked: its settings, how commands reach it and its records. Every read of a record
/// that leads to a change (a VM slot chosen, a change recorded, then made) happens while this
/// is held; the kernel releases the lock when the process dies.
pub struct Session<'a> {
    cfg: &'a NodeSettings,
    host: &'a mut dyn Host,
    records: Records,
    _lock: FileLock,
}

impl<'a> Session<'a> {
    /// Takes the node's lock, waiting up to [`LOCK_WAIT`].
    pub fn open(cfg: &'a NodeSettings, host: &'a mut dyn Host) -> Result<Session<'a>, NodeError> {
        Self::open_within(cfg, host, LOCK_WAIT)
    }

    /// Takes the node's lock, waiting up to `wait`.
    pub fn open_within(
        cfg: &'a NodeSettings,
        host: &'a mut dyn Host,
        wait: Duration,
    ) -> Result<Session<'a>, NodeError> {
        let records = Records::for_node(cfg);
        let lock = records.lock(wait)?;
        Ok(Session {
            cfg,
            host,
            records,
            _lock: lock,
        })
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn host(&mut self) -> &mut dyn Host {
        &mut *self.host
    }

    /// Refuses `port` as a VM interface when the node configuration names it (the uplink, the
    /// bridge, a management port, any node's), it is a per-VLAN interface of the classic layout,
    /// or another job recorded it.
    fn check_port(&mut self, port: &str, job: &JobId) -> Result<(), NodeError> {
        check_ifname("interface", port)?;
        if let Some(why) = self.cfg.never_a_vm(port) {
            return Err(NodeError::Refused(format!(
                "interface {port} is {why}; it is never a VM interface: nothing was changed"
            )));
        }
        // One the configuration does not name is still the node's when it is no virtual one.
        if let Some(what) = self.host.kind(port).and_then(host::LinkKind::not_a_vm) {
            return Err(NodeError::Refused(format!(
                "interface {port} is {what} of node {}; a VM's interface is a tap or a veth: nothing was changed",
                self.cfg.node
            )));
        }
        if let Some(other) = self.records.owner_of(port, job) {
            return Err(NodeError::Refused(format!(
                "interface {port} is attached to job {other}; detach it first (jobnet node detach --job {other})"
            )));
        }
        Ok(())
    }

    /// Puts `ports` (VM interfaces on the node bridge) and the veth `veth` (made for a network
    /// namespace) on the job's VLAN and the uplink in it. Everything is checked first (the job's
    /// network, the interfaces, the uplink, what each port's change will be); then each change
    /// is recorded before it is made, and a change that fails is undone and dropped from the
    /// record (what succeeded before it stays recorded: the next attach finishes, detach undoes).
    pub fn attach(
        &mut self,
        job: &JobId,
        network: &JobNetwork,
        ports: &[String],
        veth: Option<&Veth>,
    ) -> Result<Attached, NodeError> {
        let Some(vlan) = network.vlan else {
            return Ok(Attached {
                job: job.to_string(),
                vlan: None,
                interfaces: vec![],
                note: Some(
                    "the job has no VLAN (InfiniBand only): nothing to do on the node".into(),
                ),
            });
        };
        for p in ports {
            self.check_port(p, job)?;
        }
        if let Some(v) = veth {
            v.check()?;
            self.check_port(&v.host, job)?;
        }
        let (bridge, uplink) = (self.cfg.bridge.clone(), self.cfg.uplink.clone());
        let backend = backend(self.cfg);
        backend.check(self.host, &bridge, &uplink)?;
        let mut record = self.records.load(job)?.unwrap_or_else(|| Record {
            job: job.to_string(),
            vlan,
            changes: Vec::new(),
        });
        if record.vlan != vlan {
            return Err(NodeError::Refused(format!(
                "job {job} was attached on VLAN {} and now has VLAN {vlan}: detach it first",
                record.vlan
            )));
        }
        // Each port's change, read before anything changes (a recorded one is made again).
        let mut planned = Vec::new();
        for p in ports {
            planned.push(match self.known_port_change(&record, p) {
                Some(c) => c,
                None => backend.port_change(self.host, &bridge, p, vlan)?,
            });
        }
        let up = match record.changes.iter().find(|c| c.is_uplink()).cloned() {
            Some(c) => Some(c),
            None => backend.uplink_change(self.host, &bridge, &uplink, vlan)?,
        };
        if let Some(c) = up {
            self.make(job, &mut record, c, vlan, None)?;
        }
        let mut interfaces = ports.to_vec();
        if let Some(v) = veth {
            self.make(job, &mut record, v.change(), vlan, Some(v))?;
            let c = match self.known_port_change(&record, &v.host) {
                Some(c) => c,
                None => backend.port_change(self.host, &bridge, &v.host, vlan)?,
            };
            planned.push(c);
            interfaces.push(v.host.clone());
        }
        for c in planned {
            self.make(job, &mut record, c, vlan, None)?;
        }
        if let Some(v) = veth {
            // On the job's VLAN now: the node's end of the veth goes up.
            self.host.run(&["ip", "link", "set", &v.host, "up"])?;
        }
        Ok(Attached {
            job: job.to_string(),
            vlan: Some(vlan),
            interfaces,
            note: None,
        })
    }

    /// The recorded change of `port` itself (a veth jobnet made for it is recorded apart).
    fn known_port_change(&self, record: &Record, port: &str) -> Option<Change> {
        record
            .changes
            .iter()
            .find(|c| !matches!(c, Change::Veth { .. }) && change_port(c) == Some(port))
            .cloned()
    }

    /// Records `change` (unless it is recorded already), then makes it. A change recorded here
    /// that fails is undone and dropped from the record; one recorded before stays recorded.
    fn make(
        &mut self,
        job: &JobId,
        record: &mut Record,
        change: Change,
        vlan: u16,
        veth: Option<&Veth>,
    ) -> Result<(), NodeError> {
        let fresh = !record.changes.contains(&change);
        if fresh {
            record.changes.push(change.clone());
            self.records.save(record, job)?;
        }
        let made = match veth {
            Some(v) => make_veth(
                self.host,
                v,
                backend(self.cfg).veth_master(&self.cfg.bridge).as_deref(),
            ),
            None => change.apply(self.host, self.cfg.ovs_db.as_deref(), vlan),
        };
        let Err(initial) = made else {
            return Ok(());
        };
        if !fresh {
            return Err(initial);
        }
        if let Err(unwind) = change.undo(self.host, self.cfg.ovs_db.as_deref()) {
            return Err(NodeError::Unwind {
                job: job.to_string(),
                initial: Box::new(initial),
                unwind: Box::new(unwind),
            });
        }
        record.changes.retain(|c| c != &change);
        if record.changes.is_empty() {
            self.records.remove(job)?;
        } else {
            self.records.save(record, job)?;
        }
        Err(initial)
    }

    /// Undoes everything recorded for the job, newest first; a job never attached is done.
    pub fn detach(&mut self, job: &JobId) -> Result<usize, NodeError> {
        match self.records.load(job)? {
            None => Ok(0),
            Some(record) => self.undo_where(job, record, |_| true),
        }
    }

    /// Undoes the changes of `record` that `which` picks, newest first, and goes on past a
    /// failure: each change undone leaves the record at once, each that fails stays in it (the
    /// next detach tries again) and every failure is reported together. An emptied record is
    /// removed.
    pub fn undo_where(
        &mut self,
        job: &JobId,
        mut record: Record,
        which: impl Fn(&Change) -> bool,
    ) -> Result<usize, NodeError> {
        let picked: Vec<Change> = record
            .changes
            .iter()
            .rev()
            .filter(|c| which(c))
            .cloned()
            .collect();
        let mut undone = 0;
        let mut failed = Vec::new();
        for c in picked {
            if let Err(e) = c.undo(self.host, self.cfg.ovs_db.as_deref()) {
                failed.push((c.describe(), e));
                continue;
            }
            undone += 1;
            if let Some(i) = record.changes.iter().rposition(|x| x == &c) {
                record.changes.remove(i);
            }
            let kept = if record.changes.is_empty() {
                self.records.remove(job)
            } else {
                self.records.save(&record, job)
            };
            if let Err(e) = kept {
                failed.push((format!("the record after undoing {}", c.describe()), e));
            }
        }
        if failed.is_empty() {
            return Ok(undone);
        }
        // What failed stays recorded; a record that could not be written is written once more.
        if !record.changes.is_empty() {
            let _ = self.records.save(&record, job);
        }
        Err(NodeError::Teardown {
            job: job.to_string(),
            path: self.records.path(job).display().to_string(),
            undone,
            failed,
        })
    }
}

#[cfg(test)]
mod tests;
