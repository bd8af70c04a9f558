//! How the node side reaches the node: the programs it runs (`ovs-vsctl`, `ip`, `bridge`,
//! `nsenter`) and the interfaces it sees. [`System`] is the real node; the test kit's
//! [`super::sim`] is a simulated one, so the order of records and changes, the node lock and
//! teardown are tested without root, Open vSwitch or a kernel with VLAN filtering.

use super::NodeError;

/// The node's programs and interfaces.
pub trait Host {
    /// Runs a program line (its words; the program found as [`crate::base::process::resolve`]
    /// says), giving its stdout, or its stderr as [`NodeError::Command`].
    fn run(&mut self, argv: &[&str]) -> Result<String, NodeError>;
    /// Whether the interface `name` exists on the node (in its own network namespace).
    fn exists(&mut self, name: &str) -> bool;
    /// The bridge the interface `port` is enslaved to.
    fn master_of(&mut self, port: &str) -> Option<String>;
    /// Whether the Linux bridge `bridge` filters by VLAN; `None`: it is no Linux bridge.
    fn vlan_filtering(&mut self, bridge: &str) -> Option<bool>;
    /// What the interface `name` is; `None`: it does not exist.
    fn kind(&mut self, name: &str) -> Option<LinkKind>;
}

/// What an interface is, as far as being a VM's goes: only a virtual one (a tap, a veth, an
/// Open vSwitch internal port) may be; a NIC, a bond, a bridge or a VLAN interface is the node's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Physical,
    Bond,
    Bridge,
    Vlan,
    Virtual,
}

impl LinkKind {
    /// Why it is never a VM's interface; `None` for a virtual one.
    pub fn not_a_vm(self) -> Option<&'static str> {
        match self {
            LinkKind::Physical => Some("a physical network interface"),
            LinkKind::Bond => Some("a bond"),
            LinkKind::Bridge => Some("a bridge"),
            LinkKind::Vlan => Some("a VLAN interface"),
            LinkKind::Virtual => None,
        }
    }
}

/// This machine.
pub struct System;

impl Host for System {
    fn run(&mut self, argv: &[&str]) -> Result<String, NodeError> {
        let line = argv.join(" ");
        let done = crate::base::process::run_argv(argv, None, std::time::Duration::from_secs(30))
            .map_err(|e| NodeError::Command {
            command: line.clone(),
            answer: e.to_string(),
        })?;
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

    fn exists(&mut self, name: &str) -> bool {
        std::path::Path::new("/sys/class/net").join(name).exists()
    }

    fn master_of(&mut self, port: &str) -> Option<String> {
        std::fs::read_link(
            std::path::Path::new("/sys/class/net")
                .join(port)
                .join("master"),
        )
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    fn kind(&mut self, name: &str) -> Option<LinkKind> {
        let sys = std::path::Path::new("/sys/class/net").join(name);
        if !sys.exists() {
            return None;
        }
        let uevent = std::fs::read_to_string(sys.join("uevent")).unwrap_or_default();
        let devtype = uevent
            .lines()
            .find_map(|l| l.strip_prefix("DEVTYPE="))
            .unwrap_or("");
        Some(if sys.join("device").exists() {
            LinkKind::Physical
        } else if sys.join("bonding").exists() || devtype == "bond" {
            LinkKind::Bond
        } else if sys.join("bridge").exists() || devtype == "bridge" {
            LinkKind::Bridge
        } else if devtype == "vlan" || std::path::Path::new("/proc/net/vlan").join(name).exists() {
            LinkKind::Vlan
        } else {
            LinkKind::Virtual
        })
    }

    fn vlan_filtering(&mut self, bridge: &str) -> Option<bool> {
        let p = std::path::Path::new("/sys/class/net")
            .join(bridge)
            .join("bridge/vlan_filtering");
        std::fs::read_to_string(p).ok().map(|v| v.trim() == "1")
    }
}
