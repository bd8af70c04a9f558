//! Linux bridges, the two ways Proxmox and plain KVM hosts use them:
//!
//! - **VLAN-aware bridge** (`bridge-vlan`): the uplink carries V tagged
//!   (`bridge vlan add dev UPLINK vid V`); a VM port becomes an untagged member of V only
//!   (`bridge vlan del dev TAP vid 1-4094`, `bridge vlan add dev TAP vid V pvid untagged`), as
//!   Proxmox's `tap_plug` does. Undo: `bridge vlan del dev UPLINK vid V`; the port's previous
//!   VLANs are put back.
//! - **Classic bridge per VLAN** (`bridge-classic`, Proxmox's non-VLAN-aware mode): a VLAN
//!   interface `UPLINK.V` and a bridge `vmbr0vV` over it, the VM port enslaved to that bridge.
//!   Undo: the port back to its previous master (or none), the bridge and `UPLINK.V` deleted.
//!
//! Both need the kernel's bridge VLAN filtering or 802.1Q; on a kernel without them (the CI
//! machine) the first command fails with the kernel's message and nothing has changed.

use super::{run, Backend, Change, NodeError};

pub struct BridgeVlan;

/// The VLANs `bridge -j vlan show dev PORT` lists for the port.
fn port_vlans(port: &str) -> Result<Vec<u16>, NodeError> {
    let out = run(&["bridge", "-j", "vlan", "show", "dev", port])?;
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null);
    let mut vids = Vec::new();
    for entry in v.as_array().into_iter().flatten() {
        for vl in entry["vlans"].as_array().into_iter().flatten() {
            if let Some(id) = vl["vlan"].as_u64() {
                let end = vl["vlanEnd"].as_u64().unwrap_or(id);
                vids.extend((id..=end).filter_map(|x| u16::try_from(x).ok()));
            }
        }
    }
    Ok(vids)
}

fn exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

impl Backend for BridgeVlan {
    fn check(&mut self, bridge: &str, uplink: &str) -> Result<(), NodeError> {
        for (what, name) in [("bridge", bridge), ("uplink", uplink)] {
            if !exists(name) {
                return Err(NodeError::Refused(format!(
                    "the {what} {name} does not exist on this node: nothing was changed"
                )));
            }
        }
        Ok(())
    }

    fn uplink(
        &mut self,
        _bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError> {
        if port_vlans(uplink)?.contains(&vlan) {
            return Ok(None);
        }
        run(&[
            "bridge",
            "vlan",
            "add",
            "dev",
            uplink,
            "vid",
            &vlan.to_string(),
        ])?;
        Ok(Some(Change::BridgeUplink {
            uplink: uplink.to_string(),
            vlan,
        }))
    }

    fn port_change(&mut self, _bridge: &str, port: &str, vlan: u16) -> Result<Change, NodeError> {
        if !exists(port) {
            return Err(NodeError::Refused(format!(
                "interface {port} does not exist on this node"
            )));
        }
        Ok(Change::BridgePort {
            port: port.to_string(),
            vlan,
            previous: port_vlans(port)?,
        })
    }

    fn apply(&mut self, change: &Change, vlan: u16) -> Result<(), NodeError> {
        let Change::BridgePort { port, .. } = change else {
            return Ok(());
        };
        run(&["bridge", "vlan", "del", "dev", port, "vid", "1-4094"])?;
        run(&[
            "bridge",
            "vlan",
            "add",
            "dev",
            port,
            "vid",
            &vlan.to_string(),
            "pvid",
            "untagged",
        ])
        .map(|_| ())
    }

    fn undo(&mut self, change: &Change) -> Result<(), NodeError> {
        match change {
            Change::BridgeUplink { uplink, vlan } if exists(uplink) => run(&[
                "bridge",
                "vlan",
                "del",
                "dev",
                uplink,
                "vid",
                &vlan.to_string(),
            ])
            .map(|_| ()),
            Change::BridgePort { port, previous, .. } if exists(port) => {
                run(&["bridge", "vlan", "del", "dev", port, "vid", "1-4094"])?;
                for v in previous {
                    run(&["bridge", "vlan", "add", "dev", port, "vid", &v.to_string()])?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

pub struct Classic;

/// The classic layout's names for VLAN `vlan` over `uplink`: the VLAN interface and its bridge.
pub fn classic_names(uplink: &str, vlan: u16) -> (String, String) {
    (format!("{uplink}.{vlan}"), format!("vmbr0v{vlan}"))
}

fn master_of(port: &str) -> Option<String> {
    std::fs::read_link(
        std::path::Path::new("/sys/class/net")
            .join(port)
            .join("master"),
    )
    .ok()
    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

impl Backend for Classic {
    fn check(&mut self, _bridge: &str, uplink: &str) -> Result<(), NodeError> {
        if !exists(uplink) {
            return Err(NodeError::Refused(format!(
                "the uplink {uplink} does not exist on this node: nothing was changed"
            )));
        }
        Ok(())
    }

    fn uplink(
        &mut self,
        _bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError> {
        let (vif, br) = classic_names(uplink, vlan);
        super::check_ifname("VLAN interface", &vif)?;
        if exists(&br) {
            return Ok(None);
        }
        run(&[
            "ip",
            "link",
            "add",
            "link",
            uplink,
            "name",
            &vif,
            "type",
            "vlan",
            "id",
            &vlan.to_string(),
        ])?;
        let made = (|| {
            run(&["ip", "link", "add", "name", &br, "type", "bridge"])?;
            run(&["ip", "link", "set", &vif, "master", &br, "up"])?;
            run(&["ip", "link", "set", &br, "up"])
        })();
        if let Err(e) = made {
            let _ = run(&["ip", "link", "del", &br]);
            let _ = run(&["ip", "link", "del", &vif]);
            return Err(e);
        }
        Ok(Some(Change::ClassicVlanBridge {
            uplink: uplink.to_string(),
            bridge: br,
            vlan,
        }))
    }

    fn port_change(&mut self, _bridge: &str, port: &str, vlan: u16) -> Result<Change, NodeError> {
        if !exists(port) {
            return Err(NodeError::Refused(format!(
                "interface {port} does not exist on this node"
            )));
        }
        Ok(Change::ClassicPort {
            port: port.to_string(),
            bridge: format!("vmbr0v{vlan}"),
            previous: master_of(port),
        })
    }

    fn apply(&mut self, change: &Change, _vlan: u16) -> Result<(), NodeError> {
        let Change::ClassicPort { port, bridge, .. } = change else {
            return Ok(());
        };
        run(&["ip", "link", "set", port, "master", bridge]).map(|_| ())
    }

    fn undo(&mut self, change: &Change) -> Result<(), NodeError> {
        match change {
            Change::ClassicPort { port, previous, .. } if exists(port) => match previous {
                Some(m) => run(&["ip", "link", "set", port, "master", m]).map(|_| ()),
                None => run(&["ip", "link", "set", port, "nomaster"]).map(|_| ()),
            },
            Change::ClassicVlanBridge {
                uplink,
                bridge,
                vlan,
            } => {
                if exists(bridge) {
                    run(&["ip", "link", "del", bridge])?;
                }
                let (vif, _) = classic_names(uplink, *vlan);
                if exists(&vif) {
                    run(&["ip", "link", "del", &vif])?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
