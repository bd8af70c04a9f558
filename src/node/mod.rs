//! On the nodes: the last hop. `jobnet node attach` puts the job's VM/container interfaces on
//! the job's VLAN and makes the node's uplink carry it; `detach` gives the node back exactly what
//! it had. The job's VLAN and VMs come from the controller's `network.json`
//! ([`crate::jobs::network`]); what a node changed is recorded before each change in
//! `<state_dir>/<job>.json`, so a rerun, a partial attach and a detach after a crash all know
//! what to do. An interface recorded by another job is refused.
//!
//! Backends ([`Backend`], chosen in the node's configuration): Open vSwitch ([`ovs`], `tag=V` on
//! the VM port, `trunks` on the uplink), a VLAN-aware Linux bridge and the classic
//! bridge-per-VLAN layout ([`linux`]); Proxmox and libvirt configuration is generated
//! ([`render`]). [`cni`] is the CNI plugin for containers.

pub mod cni;
pub mod config;
pub mod linux;
pub mod ovs;
pub mod render;

use crate::base::types::JobId;
use crate::jobs::network::JobNetwork;
pub use config::NodeConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// the VLANs it had.
    BridgePort {
        port: String,
        vlan: u16,
        previous: Vec<u16>,
    },
    /// Classic layout: `uplink.V` and the bridge `vmbr0vV` over it, created by jobnet.
    ClassicVlanBridge {
        uplink: String,
        bridge: String,
        vlan: u16,
    },
    /// Classic layout: a VM port enslaved to the VLAN's bridge; `previous`: its master before.
    ClassicPort {
        port: String,
        bridge: String,
        previous: Option<String>,
    },
    /// A veth pair jobnet made for a network namespace (`--netns`, the CNI plugin).
    Veth {
        host: String,
        netns: String,
        ifname: String,
    },
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
}

impl NodeError {
    /// 2 for what the caller can fix (bad input, a refused interface), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            NodeError::Config(_) | NodeError::Refused(_) | NodeError::Network(_) => 2,
            NodeError::Command { .. } | NodeError::Io { .. } => 1,
        }
    }
}

/// How a node's virtual switch is changed.
pub trait Backend {
    /// Checked before any change: the uplink and the bridge exist.
    fn check(&mut self, bridge: &str, uplink: &str) -> Result<(), NodeError>;
    /// The uplink carries `vlan`; `None` when it already does (nothing to undo).
    fn uplink(
        &mut self,
        bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError>;
    /// What putting `port` on `vlan` will change (read before the change, recorded first).
    fn port_change(&mut self, bridge: &str, port: &str, vlan: u16) -> Result<Change, NodeError>;
    /// Carries out a change returned by [`Backend::port_change`] (and is safe to repeat).
    fn apply(&mut self, change: &Change, vlan: u16) -> Result<(), NodeError>;
    /// Undoes a recorded change; undoing what is already gone is success.
    fn undo(&mut self, change: &Change) -> Result<(), NodeError>;
}

/// Runs a program line (absolute path via the programs table), failing with its stderr.
pub(crate) fn run(argv: &[&str]) -> Result<String, NodeError> {
    let line = argv.join(" ");
    let done = crate::base::process::run(&line, None, std::time::Duration::from_secs(30)).map_err(
        |e| NodeError::Command {
            command: line.clone(),
            answer: e.to_string(),
        },
    )?;
    if !done.status.success() {
        return Err(NodeError::Command {
            command: line,
            answer: if done.stderr.trim().is_empty() {
                format!("exit status {}", done.status)
            } else {
                done.stderr.trim().to_string()
            },
        });
    }
    Ok(done.stdout)
}

/// A strict interface/bridge name (at most 15 bytes, Linux's limit).
pub fn check_ifname(what: &str, name: &str) -> Result<(), NodeError> {
    crate::base::types::check_word(what, name, "-_.", 15).map_err(|e| NodeError::Config(e.0))
}

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
    pub fn for_node(cfg: &config::NodeSettings) -> Records {
        Records::new(&cfg.state_dir.join(&cfg.node))
    }

    fn path(&self, job: &JobId) -> PathBuf {
        let id = job.as_str();
        self.dir.join(format!(
            "{}.json",
            if id.starts_with('.') {
                format!("_{id}")
            } else {
                id.to_string()
            }
        ))
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
        let io = |source, path: &Path| NodeError::Io {
            path: path.display().to_string(),
            source,
        };
        let dir = crate::base::fsutil::Dir::ensure(&self.dir, 0o700, None)
            .map_err(|e| io(e, &self.dir))?;
        let path = self.path(job);
        let text = serde_json::to_string_pretty(r).expect("json") + "\n";
        dir.replace(
            path.file_name().unwrap_or_default(),
            text.as_bytes(),
            0o600,
            None,
        )
        .map_err(|e| io(e, &path))
    }

    pub fn remove(&self, job: &JobId) -> Result<(), NodeError> {
        let path = self.path(job);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NodeError::Io {
                path: path.display().to_string(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// The job that recorded `port`, other than `except`.
    pub fn owner_of(&self, port: &str, except: &JobId) -> Option<String> {
        let entries = std::fs::read_dir(&self.dir).ok()?;
        for e in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let Ok(r) = serde_json::from_str::<Record>(&text) else {
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
pub fn remove_veth(host: &str) -> Result<(), NodeError> {
    if !Path::new("/sys/class/net").join(host).exists() {
        return Ok(());
    }
    run(&["ip", "link", "del", host]).map(|_| ())
}

/// Creates a veth pair: `host` on this node, its peer `ifname` inside the network namespace at
/// `netns`, with `mac`, `ip/prefix`, up, a default route via `gateway`. Replaces a leftover of
/// an earlier, interrupted attach (delete, then add).
pub fn make_veth(
    host: &str,
    netns: &str,
    ifname: &str,
    mac: &str,
    ip: Option<(std::net::Ipv4Addr, u8)>,
    gateway: Option<std::net::Ipv4Addr>,
) -> Result<(), NodeError> {
    check_ifname("interface", host)?;
    check_ifname("interface", ifname)?;
    if !crate::base::types::safe_path(netns) {
        return Err(NodeError::Config(format!(
            "network namespace `{}` is not an absolute path of letters, digits and /._-",
            netns.escape_debug()
        )));
    }
    remove_veth(host)?;
    let tmp = format!("{host}p");
    run(&[
        "ip", "link", "add", host, "type", "veth", "peer", "name", &tmp,
    ])?;
    run(&["ip", "link", "set", &tmp, "netns", netns])?;
    let inside = |args: &[&str]| {
        let mut argv = vec!["nsenter", "--net=", "ip"];
        let net = format!("--net={netns}");
        argv[1] = &net;
        argv.extend_from_slice(args);
        run(&argv)
    };
    inside(&["link", "set", &tmp, "name", ifname])?;
    inside(&["link", "set", ifname, "address", mac])?;
    if let Some((addr, prefix)) = ip {
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
    if let Some(g) = gateway {
        let _ = inside(&["route", "replace", "default", "via", &g.to_string()]);
    }
    run(&["ip", "link", "set", host, "up"])?;
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

/// Puts `ports` (VM interfaces on the node bridge) on the job's VLAN and the uplink in it.
/// Everything is checked first (the job's network, the uplink, interfaces of other jobs); each
/// change is recorded before it is made.
pub fn attach(
    cfg: &config::NodeSettings,
    backend: &mut dyn Backend,
    job: &JobId,
    network: &JobNetwork,
    ports: &[String],
) -> Result<Attached, NodeError> {
    let Some(vlan) = network.vlan else {
        return Ok(Attached {
            job: job.to_string(),
            vlan: None,
            interfaces: vec![],
            note: Some("the job has no VLAN (InfiniBand only): nothing to do on the node".into()),
        });
    };
    let records = Records::for_node(cfg);
    for p in ports {
        check_ifname("interface", p)?;
        if let Some(other) = records.owner_of(p, job) {
            return Err(NodeError::Refused(format!(
                "interface {p} is attached to job {other}; detach it first (jobnet node detach --job {other})"
            )));
        }
    }
    backend.check(&cfg.bridge, &cfg.uplink)?;
    let mut record = records.load(job)?.unwrap_or_else(|| Record {
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
    let has_uplink = record.changes.iter().any(|c| {
        matches!(
            c,
            Change::OvsUplink { .. }
                | Change::BridgeUplink { .. }
                | Change::ClassicVlanBridge { .. }
        )
    });
    if !has_uplink {
        if let Some(c) = backend.uplink(&cfg.bridge, &cfg.uplink, vlan)? {
            record.changes.push(c);
            records.save(&record, job)?;
        }
    }
    for p in ports {
        // The port's own change (a veth jobnet made for it is recorded apart).
        let known = record
            .changes
            .iter()
            .find(|c| !matches!(c, Change::Veth { .. }) && change_port(c) == Some(p.as_str()))
            .cloned();
        let change = match known {
            Some(c) => c,
            None => {
                let c = backend.port_change(&cfg.bridge, p, vlan)?;
                record.changes.push(c.clone());
                records.save(&record, job)?;
                c
            }
        };
        backend.apply(&change, vlan)?;
    }
    Ok(Attached {
        job: job.to_string(),
        vlan: Some(vlan),
        interfaces: ports.to_vec(),
        note: None,
    })
}

/// Undoes everything recorded for the job, newest first; a job never attached is done.
pub fn detach(
    cfg: &config::NodeSettings,
    backend: &mut dyn Backend,
    job: &JobId,
) -> Result<usize, NodeError> {
    let records = Records::for_node(cfg);
    let Some(mut record) = records.load(job)? else {
        return Ok(0);
    };
    let mut undone = 0;
    while let Some(c) = record.changes.last().cloned() {
        match &c {
            Change::Veth { host, .. } => remove_veth(host)?,
            other => backend.undo(other)?,
        }
        record.changes.pop();
        undone += 1;
        records.save(&record, job)?;
    }
    records.remove(job)?;
    Ok(undone)
}
