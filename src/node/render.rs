//! Configuration for VM managers that keep a VM's network in the VM's own definition, so a VM
//! restart keeps the job's VLAN: Proxmox (`qm set VMID --netN virtio=MAC,bridge=BR,tag=V`) and
//! libvirt (the domain's `<interface>` with `<vlan><tag id='V'/></vlan>`). `jobnet node show`
//! prints them for the job's VMs on a node; the launcher (or an administrator) applies them.

use crate::jobs::addresses::Vm;

/// `qm set` for a VM of the job: `vmid` and `net` (the N of netN) are the VM manager's.
pub fn proxmox(vm: &Vm, vmid: u32, net: u8, bridge: &str, vlan: u16) -> String {
    format!(
        "qm set {vmid} --net{net} virtio={},bridge={bridge},tag={vlan}\n",
        vm.mac.to_uppercase()
    )
}

/// The libvirt `<interface>` of a VM on an Open vSwitch bridge, tagged with the job's VLAN.
pub fn libvirt(vm: &Vm, bridge: &str, vlan: u16) -> String {
    format!(
        "<interface type='bridge'>\n  <mac address='{mac}'/>\n  <source bridge='{bridge}'/>\n  <virtualport type='openvswitch'/>\n  <vlan>\n    <tag id='{vlan}'/>\n  </vlan>\n  <model type='virtio'/>\n  <!-- jobnet: {name} {ip} -->\n</interface>\n",
        mac = vm.mac,
        name = vm.name,
        ip = vm.ip
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxmox_and_libvirt_text() {
        let vm = Vm {
            name: "vs1".into(),
            node: "cn001".into(),
            ip: "192.168.160.64".parse().unwrap(),
            mac: "02:00:c0:a8:a0:40".into(),
        };
        assert_eq!(
            proxmox(&vm, 101, 0, "vmbr0", 160),
            "qm set 101 --net0 virtio=02:00:C0:A8:A0:40,bridge=vmbr0,tag=160\n"
        );
        let x = libvirt(&vm, "br-vm", 160);
        assert!(
            x.contains("<mac address='02:00:c0:a8:a0:40'/>")
                && x.contains("<tag id='160'/>")
                && x.contains("<virtualport type='openvswitch'/>"),
            "{x}"
        );
    }
}
