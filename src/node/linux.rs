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
//! machine) the first command fails with the kernel's message and nothing has changed. What the
//! backends read ([`Backend`]) changes nothing; the changes are the functions below, made only
//! after the change is recorded, each safe to repeat.

use super::{Backend, Change, Host, NodeError};

pub struct BridgeVlan;

/// The VLANs `bridge -j vlan show dev PORT` lists for the port.
fn port_vlans(h: &mut dyn Host, port: &str) -> Result<Vec<u16>, NodeError> {
    let out = h.run(&["bridge", "-j", "vlan", "show", "dev", port])?;
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

/// The uplink carries `vlan` tagged (`bridge vlan add` of a VLAN it has is harmless).
pub fn trunk(h: &mut dyn Host, uplink: &str, vlan: u16) -> Result<(), NodeError> {
    h.run(&[
        "bridge",
        "vlan",
        "add",
        "dev",
        uplink,
        "vid",
        &vlan.to_string(),
    ])
    .map(|_| ())
}

/// The uplink stops carrying `vlan` (an uplink that is gone carries nothing).
pub fn untrunk(h: &mut dyn Host, uplink: &str, vlan: u16) -> Result<(), NodeError> {
    if !h.exists(uplink) || !port_vlans(h, uplink)?.contains(&vlan) {
        return Ok(());
    }
    h.run(&[
        "bridge",
        "vlan",
        "del",
        "dev",
        uplink,
        "vid",
        &vlan.to_string(),
    ])
    .map(|_| ())
}

/// `port` an untagged member of `vlan` only.
pub fn member(h: &mut dyn Host, port: &str, vlan: u16) -> Result<(), NodeError> {
    h.run(&["bridge", "vlan", "del", "dev", port, "vid", "1-4094"])?;
    h.run(&[
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

/// `port` back on the VLANs it had (a port that is gone has nothing to give back).
pub fn unmember(h: &mut dyn Host, port: &str, previous: &[u16]) -> Result<(), NodeError> {
    if !h.exists(port) {
        return Ok(());
    }
    h.run(&["bridge", "vlan", "del", "dev", port, "vid", "1-4094"])?;
    for v in previous {
        h.run(&["bridge", "vlan", "add", "dev", port, "vid", &v.to_string()])?;
    }
    Ok(())
}

impl Backend for BridgeVlan {
    fn veth_master(&self, bridge: &str) -> Option<String> {
        Some(bridge.to_string())
    }

    /// The one VLAN a VM port is a member of (jobnet makes it the only one).
    fn port_vlan(&self, h: &mut dyn Host, port: &str) -> Result<Option<u16>, NodeError> {
        Ok(match port_vlans(h, port)?.as_slice() {
            [v] => Some(*v),
            _ => None,
        })
    }

    fn check(&self, h: &mut dyn Host, bridge: &str, uplink: &str) -> Result<(), NodeError> {
        for (what, name) in [("bridge", bridge), ("uplink", uplink)] {
            if !h.exists(name) {
                return Err(NodeError::Refused(format!(
                    "the {what} {name} does not exist on this node: nothing was changed"
                )));
            }
        }
        Ok(())
    }

    fn uplink_change(
        &self,
        h: &mut dyn Host,
        _bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError> {
        if port_vlans(h, uplink)?.contains(&vlan) {
            return Ok(None);
        }
        Ok(Some(Change::BridgeUplink {
            uplink: uplink.to_string(),
            vlan,
        }))
    }

    fn port_change(
        &self,
        h: &mut dyn Host,
        _bridge: &str,
        port: &str,
        vlan: u16,
    ) -> Result<Change, NodeError> {
        must_exist(h, port)?;
        Ok(Change::BridgePort {
            port: port.to_string(),
            vlan,
            previous: port_vlans(h, port)?,
        })
    }
}

pub struct Classic;

/// The classic layout's names for VLAN `vlan` over `uplink`: the VLAN interface and its bridge.
pub fn classic_names(uplink: &str, vlan: u16) -> (String, String) {
    (format!("{uplink}.{vlan}"), format!("vmbr0v{vlan}"))
}

/// `UPLINK.V` and the bridge `vmbr0vV` over it, up; what exists already is kept.
pub fn vlan_bridge(
    h: &mut dyn Host,
    uplink: &str,
    bridge: &str,
    vlan: u16,
) -> Result<(), NodeError> {
    let (vif, _) = classic_names(uplink, vlan);
    if !h.exists(&vif) {
        h.run(&[
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
    }
    if !h.exists(bridge) {
        h.run(&["ip", "link", "add", "name", bridge, "type", "bridge"])?;
    }
    h.run(&["ip", "link", "set", &vif, "master", bridge, "up"])?;
    h.run(&["ip", "link", "set", bridge, "up"]).map(|_| ())
}

/// Deletes the bridge `vmbr0vV` and `UPLINK.V`; what is gone already is fine.
pub fn no_vlan_bridge(
    h: &mut dyn Host,
    uplink: &str,
    bridge: &str,
    vlan: u16,
) -> Result<(), NodeError> {
    if h.exists(bridge) {
        h.run(&["ip", "link", "del", bridge])?;
    }
    let (vif, _) = classic_names(uplink, vlan);
    if h.exists(&vif) {
        h.run(&["ip", "link", "del", &vif])?;
    }
    Ok(())
}

/// `port` enslaved to `bridge`.
pub fn enslave(h: &mut dyn Host, port: &str, bridge: &str) -> Result<(), NodeError> {
    h.run(&["ip", "link", "set", port, "master", bridge])
        .map(|_| ())
}

/// `port` back to its previous master (or none); a port that is gone is given back already.
pub fn release(h: &mut dyn Host, port: &str, previous: Option<&str>) -> Result<(), NodeError> {
    if !h.exists(port) {
        return Ok(());
    }
    match previous {
        Some(m) => h.run(&["ip", "link", "set", port, "master", m]),
        None => h.run(&["ip", "link", "set", port, "nomaster"]),
    }
    .map(|_| ())
}

impl Backend for Classic {
    /// The VLAN of the per-VLAN bridge the port is enslaved to (`<bridge>v<V>`).
    fn port_vlan(&self, h: &mut dyn Host, port: &str) -> Result<Option<u16>, NodeError> {
        Ok(h.master_of(port).and_then(|m| {
            let (_, v) = m.rsplit_once('v')?;
            v.parse().ok()
        }))
    }

    fn check(&self, h: &mut dyn Host, _bridge: &str, uplink: &str) -> Result<(), NodeError> {
        if !h.exists(uplink) {
            return Err(NodeError::Refused(format!(
                "the uplink {uplink} does not exist on this node: nothing was changed"
            )));
        }
        Ok(())
    }

    fn uplink_change(
        &self,
        h: &mut dyn Host,
        _bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError> {
        let (vif, br) = classic_names(uplink, vlan);
        super::check_ifname("VLAN interface", &vif)?;
        if h.exists(&br) {
            return Ok(None);
        }
        Ok(Some(Change::ClassicVlanBridge {
            uplink: uplink.to_string(),
            bridge: br,
            vlan,
        }))
    }

    fn port_change(
        &self,
        h: &mut dyn Host,
        _bridge: &str,
        port: &str,
        vlan: u16,
    ) -> Result<Change, NodeError> {
        must_exist(h, port)?;
        Ok(Change::ClassicPort {
            port: port.to_string(),
            bridge: classic_names("", vlan).1,
            previous: h.master_of(port),
        })
    }
}

/// A VM interface must exist before it is put on the job's VLAN.
fn must_exist(h: &mut dyn Host, port: &str) -> Result<(), NodeError> {
    if h.exists(port) {
        Ok(())
    } else {
        Err(NodeError::Refused(format!(
            "interface {port} does not exist on this node"
        )))
    }
}
