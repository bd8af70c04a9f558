//! Configuration for VM managers that keep a VM's network in the VM's own definition, per
//! backend; `jobnet node show` prints it for the job's VMs on a node and the launcher (or an
//! administrator) applies it.
//!
//! - **Proxmox** (`qm set VMID --netN virtio=MAC,bridge=BR,tag=V`) for all three backends:
//!   Proxmox's own `tap_plug` puts the tap on V — `tag=V` on an Open vSwitch port; on a
//!   VLAN-aware bridge an untagged member of V only; on a bridge that is not VLAN-aware it makes
//!   `BRvV` over `PORT.V` for the bridge's physical ports (named `ethN`, `bondN` or `en*`), the
//!   names `bridge-classic` uses, so jobnet and Proxmox share them. A VM restart keeps it.
//! - **libvirt** with Open vSwitch: `<virtualport type='openvswitch'/>` and
//!   `<vlan><tag id='V'/></vlan>`; libvirt tags the port itself. On a Linux bridge libvirt's
//!   `<vlan>` is not used (its domain XML documents it for Open vSwitch and SR-IOV
//!   connections): the interface is `<source bridge='BR'/>` with `<target dev='TAP'/>`, the
//!   name the node configuration's `interface:` gives the VM, and once the VM runs the
//!   launcher runs `jobnet node attach --job J` (or `--vm NAME=TAP`), which puts the tap on V
//!   (`bridge-vlan`) or on `BRvV` (`bridge-classic`); after a VM restart it runs it again. XML
//!   comments carry no `--`, which XML forbids in them.

use super::config::{BackendKind, NodeSettings};
use super::NodeError;
use crate::base::types::JobId;
use crate::jobs::addresses::Vm;

/// `qm set` for a VM of the job: `vmid` and `net` (the N of netN) are the VM manager's.
pub fn proxmox(vm: &Vm, vmid: u32, net: u8, bridge: &str, vlan: u16) -> String {
    format!(
        "qm set {vmid} --net{net} virtio={},bridge={bridge},tag={vlan}\n",
        vm.mac.to_uppercase()
    )
}

/// What the `qm set` lines of a node do with its bridge, as shell comments before them: for a
/// bridge that is not VLAN-aware, the names Proxmox makes (and whether it finds the uplink).
pub fn proxmox_note(cfg: &NodeSettings, vlan: u16) -> String {
    let (bridge, uplink) = (&cfg.bridge, &cfg.uplink);
    match cfg.backend {
        BackendKind::Ovs => String::new(),
        BackendKind::BridgeVlan => format!(
            "# {bridge} is VLAN-aware: Proxmox makes each tap an untagged member of VLAN {vlan} only\n"
        ),
        BackendKind::BridgeClassic if proxmox_physical(uplink) => format!(
            "# {bridge} is not VLAN-aware: Proxmox puts each tap on {bridge}v{vlan} over {uplink}.{vlan}, the names jobnet uses\n"
        ),
        BackendKind::BridgeClassic => format!(
            "# {bridge} is not VLAN-aware: Proxmox puts each tap on {bridge}v{vlan} over PORT.{vlan} for the ports of {bridge} named ethN, bondN or en*;\n# the uplink {uplink} is not named so: Proxmox does not use it (and refuses tag= when {bridge} has no such port)\n"
        ),
    }
}

/// Proxmox's test for a bridge's physical port (`activate_bridge_vlan`:
/// `((eth|bond)\d+|en[^.]+)(\.\d+)?`, the whole name).
fn proxmox_physical(name: &str) -> bool {
    let (base, sub) = match name.split_once('.') {
        Some((b, s)) => (b, Some(s)),
        None => (name, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let base_ok = ["eth", "bond"]
        .iter()
        .any(|p| base.strip_prefix(p).is_some_and(digits))
        || base.strip_prefix("en").is_some_and(|r| !r.is_empty());
    base_ok && sub.is_none_or(digits)
}

/// The libvirt `<interface>` of VM `vm`, the `slot`-th of job `job` on this node, for the
/// node's backend.
pub fn libvirt(
    cfg: &NodeSettings,
    job: &JobId,
    vm: &Vm,
    slot: usize,
    vlan: u16,
) -> Result<String, NodeError> {
    let (mac, bridge, name, ip) = (&vm.mac, &cfg.bridge, &vm.name, vm.ip);
    let head = format!(
        "<interface type='bridge'>\n  <mac address='{mac}'/>\n  <source bridge='{bridge}'/>\n"
    );
    let tail = format!(
        "  <model type='virtio'/>\n  <!-- jobnet: {} -->\n",
        comment(&format!("{name} {ip}"))
    );
    if cfg.backend == BackendKind::Ovs {
        return Ok(format!(
            "{head}  <virtualport type='openvswitch'/>\n  <vlan>\n    <tag id='{vlan}'/>\n  </vlan>\n{tail}</interface>\n"
        ));
    }
    let tap = cfg.interface_name(job, name, slot)?;
    let does = if cfg.backend == BackendKind::BridgeVlan {
        format!("makes {tap} an untagged member of VLAN {vlan} only")
    } else {
        format!(
            "moves {tap} to {} over {}",
            super::linux::vlan_bridge_name(bridge, vlan)?,
            super::linux::vlan_interface_name(&cfg.uplink, vlan)?
        )
    };
    let note = comment(&format!("libvirt puts no tap of a Linux bridge on a VLAN here (its vlan element is for Open vSwitch and SR-IOV): once the VM runs, jobnet node attach for job {job} {does}"));
    Ok(format!(
        "{head}  <target dev='{tap}'/>\n{tail}  <!-- jobnet: {note} -->\n</interface>\n"
    ))
}

/// Text for an XML comment: a job id or an interface may hold `--`, which XML forbids there.
fn comment(text: &str) -> String {
    let mut t = text.to_string();
    while t.contains("--") {
        t = t.replace("--", "- -");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::config::NodeConfig;

    fn vm() -> Vm {
        Vm {
            name: "vs1".into(),
            node: "cn001".into(),
            ip: "192.168.160.64".parse().unwrap(),
            mac: "02:00:c0:a8:a0:40".into(),
        }
    }

    fn cfg(backend: &str, uplink: &str) -> NodeSettings {
        NodeConfig::parse(
            &format!("backend: {backend}\nbridge: vmbr0\nuplink: {uplink}\ninterface: \"t{{job}}v{{slot}}\"\n"),
            "node.yaml",
        )
        .unwrap()
        .for_node("cn001")
        .unwrap()
    }

    /// XML forbids `--` in a comment: libvirt would refuse the text.
    fn well_formed_comments(x: &str) {
        for c in x.split("<!--").skip(1) {
            let body = c.split("-->").next().unwrap();
            assert!(!body.contains("--") && !body.ends_with('-'), "{x}");
        }
    }

    #[test]
    fn proxmox_text_per_backend() {
        assert_eq!(
            proxmox(&vm(), 101, 0, "vmbr0", 160),
            "qm set 101 --net0 virtio=02:00:C0:A8:A0:40,bridge=vmbr0,tag=160\n"
        );
        assert_eq!(proxmox_note(&cfg("ovs", "eth1"), 160), "");
        assert_eq!(
            proxmox_note(&cfg("bridge-vlan", "eth1"), 160),
            "# vmbr0 is VLAN-aware: Proxmox makes each tap an untagged member of VLAN 160 only\n"
        );
        assert_eq!(
            proxmox_note(&cfg("bridge-classic", "eth1"), 160),
            "# vmbr0 is not VLAN-aware: Proxmox puts each tap on vmbr0v160 over eth1.160, the names jobnet uses\n"
        );
        assert_eq!(
            proxmox_note(&cfg("bridge-classic", "up0"), 160),
            "# vmbr0 is not VLAN-aware: Proxmox puts each tap on vmbr0v160 over PORT.160 for the ports of vmbr0 named ethN, bondN or en*;\n# the uplink up0 is not named so: Proxmox does not use it (and refuses tag= when vmbr0 has no such port)\n"
        );
        for (name, physical) in [
            ("eth1", true),
            ("bond0", true),
            ("eno1", true),
            ("enp129s0f1", true),
            ("eth1.5", true),
            ("eth", false),
            ("ethx", false),
            ("en", false),
            ("up0", false),
            ("eth1.x", false),
            ("ib0", false),
        ] {
            assert_eq!(proxmox_physical(name), physical, "{name}");
        }
    }

    #[test]
    fn libvirt_text_per_backend() {
        let job = JobId::parse("7").unwrap();
        let ovs = libvirt(&cfg("ovs", "eth1"), &job, &vm(), 1, 160).unwrap();
        assert_eq!(
            ovs,
            "<interface type='bridge'>\n  <mac address='02:00:c0:a8:a0:40'/>\n  <source bridge='vmbr0'/>\n  <virtualport type='openvswitch'/>\n  <vlan>\n    <tag id='160'/>\n  </vlan>\n  <model type='virtio'/>\n  <!-- jobnet: vs1 192.168.160.64 -->\n</interface>\n"
        );
        let vlan = libvirt(&cfg("bridge-vlan", "eth1"), &job, &vm(), 1, 160).unwrap();
        assert_eq!(
            vlan,
            "<interface type='bridge'>\n  <mac address='02:00:c0:a8:a0:40'/>\n  <source bridge='vmbr0'/>\n  <target dev='t7v1'/>\n  <model type='virtio'/>\n  <!-- jobnet: vs1 192.168.160.64 -->\n  <!-- jobnet: libvirt puts no tap of a Linux bridge on a VLAN here (its vlan element is for Open vSwitch and SR-IOV): once the VM runs, jobnet node attach for job 7 makes t7v1 an untagged member of VLAN 160 only -->\n</interface>\n"
        );
        let classic = libvirt(&cfg("bridge-classic", "eth1"), &job, &vm(), 2, 160).unwrap();
        assert_eq!(
            classic,
            "<interface type='bridge'>\n  <mac address='02:00:c0:a8:a0:40'/>\n  <source bridge='vmbr0'/>\n  <target dev='t7v2'/>\n  <model type='virtio'/>\n  <!-- jobnet: vs1 192.168.160.64 -->\n  <!-- jobnet: libvirt puts no tap of a Linux bridge on a VLAN here (its vlan element is for Open vSwitch and SR-IOV): once the VM runs, jobnet node attach for job 7 moves t7v2 to vmbr0v160 over eth1.160 -->\n</interface>\n"
        );
        for x in [&ovs, &vlan, &classic] {
            well_formed_comments(x);
            assert!(!x.contains("<vlan>") || x == &ovs, "{x}");
        }
        let odd = JobId::parse("7--x").unwrap();
        let c = cfg("bridge-vlan", "eth1");
        well_formed_comments(&libvirt(&c, &odd, &vm(), 1, 160).unwrap());
        // So is a VLAN bridge name Linux would not take.
        let mut long_bridge = cfg("bridge-classic", "eth1");
        long_bridge.bridge = "vmbr-cluster1".into();
        assert!(libvirt(&long_bridge, &job, &vm(), 1, 160)
            .unwrap_err()
            .to_string()
            .contains("`vmbr-cluster1v160`"));
        // A tap name Linux would not take is refused, never cut.
        let long = JobId::parse("1234567890123").unwrap();
        assert_eq!(
            libvirt(&cfg("bridge-vlan", "eth1"), &long, &vm(), 1, 160)
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
