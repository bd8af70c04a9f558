//! The Open vSwitch backend: a VM's port gets `tag=V` (added with `--may-exist add-port` when
//! the launcher has not plugged it yet), the uplink gets V added to its `trunks`; undo puts the
//! previous tag back (or removes the port jobnet added) and takes V off the uplink. Every
//! command is idempotent (`--may-exist`, `--if-exists`, `add`/`remove` on sets), so a rerun
//! after an interrupted attach or detach is harmless — the pattern of Proxmox's `tap_plug` and
//! libvirt's Open vSwitch code. What the backend reads ([`Backend`]) never changes the switch;
//! the changes are [`Ovs::trunk`], [`Ovs::tag`] and their inverses, made only after the change
//! is recorded.

use super::{Backend, Change, Host, NodeError};

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

    fn vsctl(&self, h: &mut dyn Host, args: &[&str]) -> Result<String, NodeError> {
        let mut argv = vec!["ovs-vsctl"];
        if let Some(db) = &self.db {
            argv.push(db);
        }
        argv.push("--timeout=10");
        argv.extend_from_slice(args);
        h.run(&argv)
    }

    /// The port's bridge, or `None` when there is no such port.
    fn bridge_of(&self, h: &mut dyn Host, port: &str) -> Result<Option<String>, NodeError> {
        match self.vsctl(h, &["port-to-br", port]) {
            Ok(b) => Ok(Some(b.trim().to_string())),
            Err(NodeError::Command { answer, .. }) if answer.contains("no port named") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The port's tag (`None`: untagged, or no such port).
    pub fn tag_of(&self, h: &mut dyn Host, port: &str) -> Result<Option<u16>, NodeError> {
        Ok(numbers(&self.vsctl(h, &["get", "port", port, "tag"])?)
            .first()
            .copied())
    }

    /// The uplink carries `vlan` too.
    pub fn trunk(&self, h: &mut dyn Host, uplink: &str, vlan: u16) -> Result<(), NodeError> {
        self.vsctl(h, &["add", "port", uplink, "trunks", &vlan.to_string()])
            .map(|_| ())
    }

    /// The uplink stops carrying `vlan` (a port that is gone carries nothing).
    pub fn untrunk(&self, h: &mut dyn Host, uplink: &str, vlan: u16) -> Result<(), NodeError> {
        self.vsctl(
            h,
            &[
                "--if-exists",
                "remove",
                "port",
                uplink,
                "trunks",
                &vlan.to_string(),
            ],
        )
        .map(|_| ())
    }

    /// `port` on `bridge` (added when missing) with tag `vlan`.
    pub fn tag(
        &self,
        h: &mut dyn Host,
        bridge: &str,
        port: &str,
        vlan: u16,
    ) -> Result<(), NodeError> {
        let tag = format!("tag={vlan}");
        self.vsctl(
            h,
            &[
                "--may-exist",
                "add-port",
                bridge,
                port,
                "--",
                "set",
                "port",
                port,
                &tag,
            ],
        )
        .map(|_| ())
    }

    /// Gives `port` back what it had: removed when jobnet added it, else its previous tag (or
    /// none). A port that is gone is given back already.
    pub fn untag(
        &self,
        h: &mut dyn Host,
        bridge: &str,
        port: &str,
        created: bool,
        previous: Option<u16>,
    ) -> Result<(), NodeError> {
        if created {
            return self
                .vsctl(h, &["--if-exists", "del-port", bridge, port])
                .map(|_| ());
        }
        if self.bridge_of(h, port)?.is_none() {
            return Ok(());
        }
        match previous {
            Some(t) => self.vsctl(h, &["set", "port", port, &format!("tag={t}")]),
            None => self.vsctl(h, &["clear", "port", port, "tag"]),
        }
        .map(|_| ())
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
    fn check(&self, h: &mut dyn Host, bridge: &str, uplink: &str) -> Result<(), NodeError> {
        self.vsctl(h, &["br-exists", bridge]).map_err(|_| {
            NodeError::Refused(format!("the node bridge {bridge} does not exist in Open vSwitch; check `bridge:` in the node configuration"))
        })?;
        match self.bridge_of(h, uplink)? {
            Some(b) if b == bridge => Ok(()),
            Some(b) => Err(NodeError::Refused(format!(
                "the uplink {uplink} is on bridge {b}, not on {bridge}; check the node configuration"
            ))),
            None => Err(NodeError::Refused(format!(
                "the uplink {uplink} is not a port of bridge {bridge}: nothing was changed; check `uplink:` in the node configuration"
            ))),
        }
    }

    fn uplink_change(
        &self,
        h: &mut dyn Host,
        bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError> {
        let trunks = numbers(&self.vsctl(h, &["get", "port", uplink, "trunks"])?);
        if trunks.is_empty() {
            // An empty trunks set carries every VLAN: the node would see every job's traffic.
            return Err(NodeError::Refused(format!(
                "the uplink {uplink} carries every VLAN (trunks is empty); give it an explicit list, e.g. `ovs-vsctl set port {uplink} trunks=4094` (a placeholder no job uses)"
            )));
        }
        if trunks.contains(&vlan) {
            return Ok(None);
        }
        Ok(Some(Change::OvsUplink {
            bridge: bridge.to_string(),
            port: uplink.to_string(),
            vlan,
        }))
    }

    fn port_vlan(&self, h: &mut dyn Host, port: &str) -> Result<Option<u16>, NodeError> {
        self.tag_of(h, port)
    }

    fn port_change(
        &self,
        h: &mut dyn Host,
        bridge: &str,
        port: &str,
        _vlan: u16,
    ) -> Result<Change, NodeError> {
        match self.bridge_of(h, port)? {
            Some(b) if b != bridge => Err(NodeError::Refused(format!(
                "interface {port} is on bridge {b}, not on the node bridge {bridge}"
            ))),
            Some(_) => Ok(Change::OvsPort {
                bridge: bridge.to_string(),
                port: port.to_string(),
                created: false,
                previous: self.tag_of(h, port)?,
            }),
            None => {
                if !h.exists(port) {
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
