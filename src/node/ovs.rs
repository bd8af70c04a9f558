//! The Open vSwitch backend: a VM's port gets `tag=V` (added with `--may-exist add-port` when
//! the launcher has not plugged it yet), the uplink gets V added to its `trunks`; undo puts the
//! previous tag back (or removes the port jobnet added) and takes V off the uplink. Every
//! command is idempotent (`--may-exist`, `--if-exists`, `add`/`remove` on sets), so a rerun
//! after an interrupted attach or detach is harmless — the pattern of Proxmox's `tap_plug` and
//! libvirt's Open vSwitch code.

use super::{run, Backend, Change, NodeError};

pub struct Ovs {
    /// `--db=unix:/path` when the socket is not at its default path.
    db: Option<String>,
}

impl Ovs {
    pub fn new(db: Option<&str>) -> Ovs {
        Ovs {
            db: db.map(|d| format!("--db={d}")),
        }
    }

    fn vsctl(&self, args: &[&str]) -> Result<String, NodeError> {
        let mut argv = vec!["ovs-vsctl"];
        if let Some(db) = &self.db {
            argv.push(db);
        }
        argv.push("--timeout=10");
        argv.extend_from_slice(args);
        run(&argv)
    }

    /// The port's bridge, or `None` when there is no such port.
    fn bridge_of(&self, port: &str) -> Result<Option<String>, NodeError> {
        match self.vsctl(&["port-to-br", port]) {
            Ok(b) => Ok(Some(b.trim().to_string())),
            Err(NodeError::Command { answer, .. }) if answer.contains("no port named") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `[]`, `100` or `[100, 200]` as OVS prints a tag or trunks column.
fn numbers(text: &str) -> Vec<u16> {
    text.trim()
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

impl Backend for Ovs {
    fn check(&mut self, bridge: &str, uplink: &str) -> Result<(), NodeError> {
        self.vsctl(&["br-exists", bridge]).map_err(|_| {
            NodeError::Refused(format!("the node bridge {bridge} does not exist in Open vSwitch; check `bridge:` in the node configuration"))
        })?;
        match self.bridge_of(uplink)? {
            Some(b) if b == bridge => Ok(()),
            Some(b) => Err(NodeError::Refused(format!(
                "the uplink {uplink} is on bridge {b}, not on {bridge}; check the node configuration"
            ))),
            None => Err(NodeError::Refused(format!(
                "the uplink {uplink} is not a port of bridge {bridge}: nothing was changed; check `uplink:` in the node configuration"
            ))),
        }
    }

    fn uplink(
        &mut self,
        bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError> {
        let trunks = numbers(&self.vsctl(&["get", "port", uplink, "trunks"])?);
        if trunks.is_empty() {
            // An empty trunks set carries every VLAN: the node would see every job's traffic.
            return Err(NodeError::Refused(format!(
                "the uplink {uplink} carries every VLAN (trunks is empty); give it an explicit list, e.g. `ovs-vsctl set port {uplink} trunks=4094` (a placeholder no job uses)"
            )));
        }
        if trunks.contains(&vlan) {
            return Ok(None);
        }
        self.vsctl(&["add", "port", uplink, "trunks", &vlan.to_string()])?;
        Ok(Some(Change::OvsUplink {
            bridge: bridge.to_string(),
            port: uplink.to_string(),
            vlan,
        }))
    }

    fn port_change(&mut self, bridge: &str, port: &str, _vlan: u16) -> Result<Change, NodeError> {
        match self.bridge_of(port)? {
            Some(b) if b != bridge => Err(NodeError::Refused(format!(
                "interface {port} is on bridge {b}, not on the node bridge {bridge}"
            ))),
            Some(_) => {
                let tag = numbers(&self.vsctl(&["get", "port", port, "tag"])?);
                Ok(Change::OvsPort {
                    bridge: bridge.to_string(),
                    port: port.to_string(),
                    created: false,
                    previous: tag.first().copied(),
                })
            }
            None => {
                if !std::path::Path::new("/sys/class/net").join(port).exists() {
                    return Err(NodeError::Refused(format!(
                        "interface {port} does not exist on this node (is the VM started? the launcher names its tap)"
                    )));
                }
                Ok(Change::OvsPort {
                    bridge: bridge.to_string(),
                    port: port.to_string(),
                    created: true,
                    previous: None,
                })
            }
        }
    }

    fn apply(&mut self, change: &Change, vlan: u16) -> Result<(), NodeError> {
        let Change::OvsPort { bridge, port, .. } = change else {
            return Ok(());
        };
        let tag = format!("tag={vlan}");
        self.vsctl(&[
            "--may-exist",
            "add-port",
            bridge,
            port,
            "--",
            "set",
            "port",
            port,
            &tag,
        ])
        .map(|_| ())
    }

    fn undo(&mut self, change: &Change) -> Result<(), NodeError> {
        match change {
            Change::OvsUplink { port, vlan, .. } => self
                .vsctl(&[
                    "--if-exists",
                    "remove",
                    "port",
                    port,
                    "trunks",
                    &vlan.to_string(),
                ])
                .map(|_| ()),
            Change::OvsPort {
                bridge,
                port,
                created: true,
                ..
            } => self
                .vsctl(&["--if-exists", "del-port", bridge, port])
                .map(|_| ()),
            Change::OvsPort {
                port,
                previous: Some(t),
                ..
            } => match self.bridge_of(port)? {
                Some(_) => self
                    .vsctl(&["set", "port", port, &format!("tag={t}")])
                    .map(|_| ()),
                None => Ok(()),
            },
            Change::OvsPort {
                port,
                previous: None,
                ..
            } => match self.bridge_of(port)? {
                Some(_) => self.vsctl(&["clear", "port", port, "tag"]).map(|_| ()),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_ovs_sets() {
        assert_eq!(super::numbers("[]"), Vec::<u16>::new());
        assert_eq!(super::numbers("100\n"), [100]);
        assert_eq!(super::numbers("[100, 4094]"), [100, 4094]);
    }
}
