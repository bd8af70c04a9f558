//! Linux bridges, the two ways Proxmox and plain KVM hosts use them:
//!
//! - **VLAN-aware bridge** (`bridge-vlan`): the uplink carries V tagged
//!   (`bridge vlan add dev UPLINK vid V`, only when it does not carry V already); a VM port
//!   becomes an untagged member of V only (`bridge vlan del dev TAP vid 1-4094`,
//!   `bridge vlan add dev TAP vid V pvid untagged`), as Proxmox's `tap_plug` does. The port's
//!   VLANs are recorded first with their flags ([`PortVlan`]: PVID, egress untagged; ranges
//!   kept as ranges), read from `bridge -j vlan show dev TAP`. Undo: `bridge vlan del dev
//!   UPLINK vid V` when jobnet added V; the port's VLANs are given back exactly, flags included
//!   (without its PVID the VM's untagged frames would be dropped).
//! - **Classic bridge per VLAN** (`bridge-classic`, Proxmox's non-VLAN-aware mode): a VLAN
//!   interface `UPLINK.V` and a bridge `<bridge>vV` over it (`vmbr0` → `vmbr0v5`: the name
//!   Proxmox's `activate_bridge_vlan` gives it, so the two share it), the VM port enslaved to
//!   that bridge. A name past Linux's 15 bytes is refused before anything changes; a bridge
//!   that exists already (Proxmox made it) is used as it is, and so is a VLAN interface. Undo:
//!   the port back to its previous master (or none), the bridge and (when jobnet made it)
//!   `UPLINK.V` deleted.
//!
//! Both need the kernel's bridge VLAN filtering or 802.1Q; on a kernel without them the first
//! command fails with the kernel's message and is undone. What the backends read ([`Backend`])
//! changes nothing; the changes are the functions below, made only after the change is
//! recorded, each safe to repeat. `.ci/labs/linux-nodes.sh` proves both on Debian's stock
//! kernel.

use super::{Backend, Change, Host, NodeError};
use serde::{Deserialize, Deserializer, Serialize};

/// One VLAN (or a range of VLANs with the same flags) of a port of a VLAN-aware bridge, as
/// `bridge vlan show` gives it: `pvid` — untagged frames coming in join it; `untagged` — frames
/// of it go out untagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PortVlan {
    pub vlan: u16,
    /// The last VLAN of a range `vlan..=end` (never with `pvid`: a port has one PVID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<u16>,
    pub pvid: bool,
    pub untagged: bool,
}

impl PortVlan {
    pub fn contains(&self, vlan: u16) -> bool {
        (self.vlan..=self.end.unwrap_or(self.vlan)).contains(&vlan)
    }

    /// `vid ...` of `bridge vlan add`: `5`, `7-9`.
    fn vid(&self) -> String {
        match self.end {
            Some(e) if e != self.vlan => format!("{}-{e}", self.vlan),
            _ => self.vlan.to_string(),
        }
    }
}

/// Records written before the flags were kept list only VLAN ids (`"previous": [1]`). Such an
/// id is read as the kernel gives VLANs to a new port: the bridge's default, VLAN 1, as PVID
/// and egress untagged, any other tagged — the best that record can say.
impl<'de> Deserialize<'de> for PortVlan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PortVlan, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Id(u16),
            Full {
                vlan: u16,
                #[serde(default)]
                end: Option<u16>,
                #[serde(default)]
                pvid: bool,
                #[serde(default)]
                untagged: bool,
            },
        }
        Ok(match Form::deserialize(d)? {
            Form::Id(v) => PortVlan {
                vlan: v,
                end: None,
                pvid: v == 1,
                untagged: v == 1,
            },
            Form::Full {
                vlan,
                end,
                pvid,
                untagged,
            } => PortVlan {
                vlan,
                end,
                pvid,
                untagged,
            },
        })
    }
}

/// The VLANs of a port from `bridge -j vlan show dev PORT` (iproute2's JSON:
/// `[{"ifname":"tap1","vlans":[{"vlan":1,"flags":["PVID","Egress Untagged"]},{"vlan":5},
/// {"vlan":7,"vlanEnd":9}]}]`), in order, neighbours with the same flags joined into ranges.
pub fn parse_vlans(text: &str) -> Result<Vec<PortVlan>, String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        vlans: Vec<Vl>,
    }
    #[derive(Deserialize)]
    struct Vl {
        vlan: u16,
        #[serde(rename = "vlanEnd")]
        end: Option<u16>,
        #[serde(default)]
        flags: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_str(text.trim()).map_err(|e| e.to_string())?;
    let mut one = Vec::new();
    for vl in entries.iter().flat_map(|e| &e.vlans) {
        let pvid = vl.flags.iter().any(|f| f == "PVID");
        let untagged = vl.flags.iter().any(|f| f == "Egress Untagged");
        let end = vl.end.unwrap_or(vl.vlan);
        if !(1..=4094).contains(&vl.vlan) || end < vl.vlan || end > 4094 || (pvid && end != vl.vlan)
        {
            return Err(format!(
                "VLAN {}-{end} is not a VLAN or range of VLANs",
                vl.vlan
            ));
        }
        one.extend((vl.vlan..=end).map(|v| (v, pvid, untagged)));
    }
    one.sort_unstable();
    one.dedup_by_key(|x| x.0);
    let mut out: Vec<PortVlan> = Vec::new();
    for (v, pvid, untagged) in one {
        match out.last_mut() {
            Some(last)
                if !pvid
                    && !last.pvid
                    && last.untagged == untagged
                    && last.end.unwrap_or(last.vlan) + 1 == v =>
            {
                last.end = Some(v);
            }
            _ => out.push(PortVlan {
                vlan: v,
                end: None,
                pvid,
                untagged,
            }),
        }
    }
    Ok(out)
}

/// The VLANs of `port`, read from the bridge; output jobnet cannot read is an error (a port
/// read as having nothing would be given back nothing).
fn port_vlans(h: &mut dyn Host, port: &str) -> Result<Vec<PortVlan>, NodeError> {
    let argv = ["bridge", "-j", "vlan", "show", "dev", port];
    let out = h.run(&argv)?;
    parse_vlans(&out).map_err(|why| NodeError::Command {
        command: argv.join(" "),
        answer: format!(
            "output jobnet cannot read ({why}): {}",
            out.trim().chars().take(200).collect::<String>()
        ),
    })
}

fn carries(vlans: &[PortVlan], vlan: u16) -> bool {
    vlans.iter().any(|v| v.contains(vlan))
}

/// The uplink carries `vlan` tagged; a VLAN it has already is left as it is (flags included).
pub fn trunk(h: &mut dyn Host, uplink: &str, vlan: u16) -> Result<(), NodeError> {
    if carries(&port_vlans(h, uplink)?, vlan) {
        return Ok(());
    }
    let v = vlan.to_string();
    h.run(&["bridge", "vlan", "add", "dev", uplink, "vid", &v])
        .map(|_| ())
}

/// The uplink stops carrying `vlan`, which jobnet added (an uplink that is gone carries nothing).
pub fn untrunk(h: &mut dyn Host, uplink: &str, vlan: u16) -> Result<(), NodeError> {
    if !h.exists(uplink) || !carries(&port_vlans(h, uplink)?, vlan) {
        return Ok(());
    }
    let v = vlan.to_string();
    h.run(&["bridge", "vlan", "del", "dev", uplink, "vid", &v])
        .map(|_| ())
}

/// `port` an untagged member of `vlan` only.
pub fn member(h: &mut dyn Host, port: &str, vlan: u16) -> Result<(), NodeError> {
    h.run(&["bridge", "vlan", "del", "dev", port, "vid", "1-4094"])?;
    let v = vlan.to_string();
    h.run(&[
        "bridge", "vlan", "add", "dev", port, "vid", &v, "pvid", "untagged",
    ])
    .map(|_| ())
}

/// `port` back on exactly the VLANs it had, with their flags (a port that is gone has nothing
/// to give back).
pub fn unmember(h: &mut dyn Host, port: &str, previous: &[PortVlan]) -> Result<(), NodeError> {
    if !h.exists(port) {
        return Ok(());
    }
    h.run(&["bridge", "vlan", "del", "dev", port, "vid", "1-4094"])?;
    for v in previous {
        let vid = v.vid();
        let mut argv = vec!["bridge", "vlan", "add", "dev", port, "vid", &vid];
        if v.pvid {
            argv.push("pvid");
        }
        if v.untagged {
            argv.push("untagged");
        }
        h.run(&argv)?;
    }
    Ok(())
}

pub struct BridgeVlan;

impl Backend for BridgeVlan {
    fn veth_master(&self, bridge: &str) -> Option<String> {
        Some(bridge.to_string())
    }

    /// The one VLAN a VM port is an untagged PVID member of (jobnet makes it the only one).
    fn port_vlan(&self, h: &mut dyn Host, port: &str) -> Result<Option<u16>, NodeError> {
        Ok(match port_vlans(h, port)?.as_slice() {
            [v] if v.pvid && v.untagged && v.end.is_none() => Some(v.vlan),
            _ => None,
        })
    }

    /// The bridge and uplink exist, the bridge filters by VLAN (without it every port hears
    /// every VLAN: no isolation at all, though each command succeeds) and the uplink is its port.
    fn check(&self, h: &mut dyn Host, bridge: &str, uplink: &str) -> Result<(), NodeError> {
        for (what, name) in [("bridge", bridge), ("uplink", uplink)] {
            if !h.exists(name) {
                return Err(NodeError::Refused(format!(
                    "the {what} {name} does not exist on this node: nothing was changed"
                )));
            }
        }
        match h.vlan_filtering(bridge) {
            Some(true) => {}
            Some(false) => return Err(NodeError::Refused(format!(
                "the bridge {bridge} does not filter by VLAN (vlan_filtering 0): with `backend: bridge-vlan` every VM on it would hear every job's VLAN; make it VLAN-aware (`ip link set {bridge} type bridge vlan_filtering 1`, Proxmox: `bridge-vlan-aware yes`) or use `backend: bridge-classic`: nothing was changed"
            ))),
            None => return Err(NodeError::Refused(format!(
                "{bridge} is not a Linux bridge (`bridge:` with `backend: bridge-vlan`): nothing was changed"
            ))),
        }
        port_of(h, uplink, bridge).map_err(|where_| NodeError::Refused(format!(
            "the uplink {uplink} is {where_}, not a port of the bridge {bridge}: the job's VLAN would not leave the node; `ip link set {uplink} master {bridge}`: nothing was changed"
        )))
    }

    fn uplink_change(
        &self,
        h: &mut dyn Host,
        _bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError> {
        if carries(&port_vlans(h, uplink)?, vlan) {
            return Ok(None);
        }
        Ok(Some(Change::BridgeUplink {
            uplink: uplink.to_string(),
            vlan,
        }))
    }

    /// A VM's tap must be a port of the node bridge already (libvirt and Proxmox plug it): a
    /// tap on no bridge cannot take a VLAN, and one on another bridge is not jobnet's to change.
    fn port_change(
        &self,
        h: &mut dyn Host,
        bridge: &str,
        port: &str,
        vlan: u16,
    ) -> Result<Change, NodeError> {
        must_exist(h, port)?;
        if let Err(where_) = port_of(h, port, bridge) {
            return Err(NodeError::Refused(format!(
                "interface {port} is {where_}, not a port of the node bridge {bridge}: plug it in first, down (`ip link set {port} master {bridge}`; libvirt and Proxmox do it), then attach: nothing was changed"
            )));
        }
        Ok(Change::BridgePort {
            port: port.to_string(),
            vlan,
            previous: port_vlans(h, port)?,
        })
    }
}

pub struct Classic;

/// Whether `port` is a port of `bridge`; otherwise where it is, for a message.
fn port_of(h: &mut dyn Host, port: &str, bridge: &str) -> Result<(), String> {
    match h.master_of(port) {
        Some(m) if m == bridge => Ok(()),
        Some(m) => Err(format!("a port of {m}")),
        None => Err("on no bridge".to_string()),
    }
}

/// A name the classic layout derives for VLAN `vlan` from the configured `base` (`key:`):
/// `what` it is and `how` it is formed (for the message); one Linux would not take is refused,
/// never cut.
fn derived_name(
    (what, how): (&str, &str),
    name: String,
    (key, base): (&str, &str),
    vlan: u16,
) -> Result<String, NodeError> {
    if name.len() > 15 {
        return Err(NodeError::Config(format!(
            "the {what} for VLAN {vlan} would be `{name}`{how}, longer than Linux's 15 bytes: give `{key}:` a name of at most {} bytes; nothing was changed",
            15 - (name.len() - base.len())
        )));
    }
    super::check_ifname(what, &name)?;
    Ok(name)
}

/// The classic layout's bridge for VLAN `vlan`: `<bridge>v<vlan>`, as Proxmox names it
/// (`vmbr0` → `vmbr0v5`).
pub fn vlan_bridge_name(bridge: &str, vlan: u16) -> Result<String, NodeError> {
    derived_name(
        ("bridge", " (`<bridge>v<VLAN>`, as Proxmox names it)"),
        format!("{bridge}v{vlan}"),
        ("bridge", bridge),
        vlan,
    )
}

/// The classic layout's VLAN interface for VLAN `vlan` over `uplink`: `UPLINK.V`.
pub fn vlan_interface_name(uplink: &str, vlan: u16) -> Result<String, NodeError> {
    derived_name(
        ("VLAN interface", ""),
        format!("{uplink}.{vlan}"),
        ("uplink", uplink),
        vlan,
    )
}

/// `UPLINK.V` and the bridge over it, up; what exists already is kept.
pub fn vlan_bridge(
    h: &mut dyn Host,
    uplink: &str,
    bridge: &str,
    vlan: u16,
) -> Result<(), NodeError> {
    let vif = format!("{uplink}.{vlan}");
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

/// Deletes the VLAN's bridge and, when jobnet made it, `UPLINK.V`; what is gone already is fine.
pub fn no_vlan_bridge(
    h: &mut dyn Host,
    uplink: &str,
    bridge: &str,
    vlan: u16,
    made_vlan_interface: bool,
) -> Result<(), NodeError> {
    if h.exists(bridge) {
        h.run(&["ip", "link", "del", bridge])?;
    }
    let vif = format!("{uplink}.{vlan}");
    if made_vlan_interface && h.exists(&vif) {
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
        bridge: &str,
        uplink: &str,
        vlan: u16,
    ) -> Result<Option<Change>, NodeError> {
        let vif = vlan_interface_name(uplink, vlan)?;
        let br = vlan_bridge_name(bridge, vlan)?;
        if h.exists(&br) {
            return Ok(None);
        }
        Ok(Some(Change::ClassicVlanBridge {
            uplink: uplink.to_string(),
            bridge: br,
            vlan,
            made_vlan_interface: !h.exists(&vif),
        }))
    }

    fn port_change(
        &self,
        h: &mut dyn Host,
        bridge: &str,
        port: &str,
        vlan: u16,
    ) -> Result<Change, NodeError> {
        let br = vlan_bridge_name(bridge, vlan)?;
        must_exist(h, port)?;
        Ok(Change::ClassicPort {
            port: port.to_string(),
            bridge: br,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(vlan: u16, end: Option<u16>, pvid: bool, untagged: bool) -> PortVlan {
        PortVlan {
            vlan,
            end,
            pvid,
            untagged,
        }
    }

    /// iproute2 6.1's JSON (Debian 12, read in the lab's VM): one entry per VLAN, flags only
    /// when set; `vlanEnd` for a range (`bridge -c`); a port without VLANs is `[]`.
    #[test]
    fn reads_iproute2_json_with_flags_and_ranges() {
        let text = r#"[{"ifname":"tapvm1","vlans":[{"vlan":1,"flags":["PVID","Egress Untagged"]},{"vlan":5},{"vlan":7,"flags":["Egress Untagged"]},{"vlan":8,"flags":["Egress Untagged"]},{"vlan":9,"flags":["Egress Untagged"]},{"vlan":100,"vlanEnd":4094}]}]"#;
        assert_eq!(
            parse_vlans(text).unwrap(),
            [
                pv(1, None, true, true),
                pv(5, None, false, false),
                pv(7, Some(9), false, true),
                pv(100, Some(4094), false, false),
            ]
        );
        assert_eq!(parse_vlans("[]\n").unwrap(), []);
        assert!(parse_vlans("").is_err());
        assert!(parse_vlans("Cannot find device").is_err());
        assert!(parse_vlans(r#"[{"vlans":[{"vlan":0}]}]"#).is_err());
        // A PVID is never part of a range.
        assert_eq!(
            parse_vlans(r#"[{"vlans":[{"vlan":1},{"vlan":2,"flags":["PVID"]},{"vlan":3}]}]"#)
                .unwrap(),
            [
                pv(1, None, false, false),
                pv(2, None, true, false),
                pv(3, None, false, false)
            ]
        );
    }

    #[test]
    fn records_keep_the_flags_and_old_records_are_read() {
        let c = Change::BridgePort {
            port: "tapvm1".into(),
            vlan: 160,
            previous: vec![pv(1, None, true, true), pv(7, Some(9), false, false)],
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"bridge_port","port":"tapvm1","vlan":160,"previous":[{"vlan":1,"pvid":true,"untagged":true},{"vlan":7,"end":9,"pvid":false,"untagged":false}]}"#
        );
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), c);
        // Written before the flags were kept: VLAN 1 is the kernel's default for a new port.
        let old: Change = serde_json::from_str(
            r#"{"kind":"bridge_port","port":"tapvm1","vlan":160,"previous":[1,5]}"#,
        )
        .unwrap();
        let Change::BridgePort { previous, .. } = old else {
            panic!("{old:?}")
        };
        assert_eq!(
            previous,
            [pv(1, None, true, true), pv(5, None, false, false)]
        );
    }

    #[test]
    fn the_classic_names_follow_the_bridge_and_fit_linux() {
        assert_eq!(vlan_bridge_name("vmbr0", 5).unwrap(), "vmbr0v5");
        assert_eq!(vlan_bridge_name("br-vm", 4094).unwrap(), "br-vmv4094");
        let e = vlan_bridge_name("vmbr-cluster1", 160).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("the bridge for VLAN 160 would be `vmbr-cluster1v160` (`<bridge>v<VLAN>`, as Proxmox names it), longer than Linux's 15 bytes: give `bridge:` a name of at most 11 bytes; nothing was changed"),
            "{e}"
        );
        assert_eq!(vlan_interface_name("eth1", 160).unwrap(), "eth1.160");
        assert!(vlan_interface_name("enp129s0f1np1", 160)
            .unwrap_err()
            .to_string()
            .contains("`enp129s0f1np1.160`"));
    }
}
