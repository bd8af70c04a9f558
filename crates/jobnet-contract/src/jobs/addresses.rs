//! The job's addresses (JSCC's "Virtual machine ip list"): a subnet per job, and per VM a name, a
//! node, an IPv4 address and a MAC — and the files the job reads them from.
//!
//! A subnet comes from a pool (the `index`-th subnet of the configured prefix, allocated in the
//! state so no two live jobs share one) or from a template tied to the VLAN (`192.168.{vlan}.0/24`:
//! VLAN 160 → 192.168.160.0/24, valid only where the VLAN fits the template). Hosts are numbered
//! from `first` (JSCC numbers from .64), skipping the gateway. MACs are locally administered
//! unicast addresses (first byte `xxxxxx10`):
//! - `hashed` (default): `02`-class byte, then 5 bytes of FNV-1a over `job/vm-name`: stable for
//!   a job, different between jobs;
//! - `encoded`: `02:00:A:B:C:D` for IPv4 address A.B.C.D, so a VM can derive its address from its
//!   MAC with no DHCP (the Novosibirsk KEDR practice): IP = the last four bytes of the MAC.
//!
//! Files (in `dir/<job>/`): `ip-list.txt` (JSCC's format), `addresses.json`, `dnsmasq-hosts`
//! (`dhcp-host=MAC,IP,NAME` lines) and `cloud-init/<vm>/network-config` (NoCloud, version 2).

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Where a job's subnet comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subnets {
    /// The `index`-th subnet of `prefix` bits in `pool`.
    Pool { pool: Ipv4Network, prefix: u8 },
    /// A network with `{vlan}` in it, e.g. `192.168.{vlan}.0/24`.
    Template(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacScheme {
    Hashed,
    Encoded,
}

/// The site's numbering (`addresses:` in jobnet.yaml).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPlan {
    pub subnets: Subnets,
    /// Host number of the first VM.
    pub first: u32,
    /// Host number of the gateway (`None`: no gateway).
    pub gateway: Option<u32>,
    pub dns: Vec<Ipv4Addr>,
    pub mac: MacScheme,
    /// VM names, `{n}` = 1, 2, ... across the job.
    pub names: String,
    /// Per-job directories go here.
    pub dir: PathBuf,
}

/// One VM's (or container's) addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vm {
    pub name: String,
    pub node: String,
    pub ip: Ipv4Addr,
    pub mac: String,
}

/// A job's addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAddresses {
    pub job: String,
    #[serde(serialize_with = "as_text", deserialize_with = "from_text")]
    pub subnet: Ipv4Network,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub vms: Vec<Vm>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("address template {template} does not fit VLAN {vlan} (it gives `{text}`); number such jobs from a pool (addresses.pool) or keep their VLANs in range")]
    TemplateDoesNotFit {
        template: String,
        vlan: u16,
        text: String,
    },
    #[error("address template {template} needs the job's VLAN, and the job has none")]
    NoVlan { template: String },
    #[error("{vms} VMs from host number {first} do not fit subnet {subnet}; use a shorter prefix, fewer VMs or a lower `first`")]
    TooMany {
        vms: usize,
        first: u32,
        subnet: Ipv4Network,
    },
}

impl AddressPlan {
    /// How many subnets the pool holds (`None` for a template).
    pub fn pool_size(&self) -> Option<u32> {
        match &self.subnets {
            Subnets::Pool { pool, prefix } => Some(1u32 << (prefix - pool.prefix()).min(16)),
            Subnets::Template(_) => None,
        }
    }

    /// The job's subnet: the `index`-th of the pool, or the template with the VLAN in it.
    pub fn subnet(&self, index: u16, vlan: Option<u16>) -> Result<Ipv4Network, AddressError> {
        match &self.subnets {
            Subnets::Pool { pool, prefix } => {
                let size = 1u32 << (32 - prefix);
                let base = u32::from(pool.network()) + u32::from(index) * size;
                Ok(Ipv4Network::new(Ipv4Addr::from(base), *prefix).expect("prefix checked"))
            }
            Subnets::Template(t) => {
                let vlan = vlan.ok_or_else(|| AddressError::NoVlan {
                    template: t.clone(),
                })?;
                let text = t.replace("{vlan}", &vlan.to_string());
                text.parse::<Ipv4Network>()
                    .ok()
                    .filter(|n| n.network() == n.ip())
                    .ok_or(AddressError::TemplateDoesNotFit {
                        template: t.clone(),
                        vlan,
                        text,
                    })
            }
        }
    }

    /// Names, nodes, addresses and MACs of `vms_per_node` VMs on each node, in node order.
    pub fn assign(
        &self,
        job: &str,
        subnet: Ipv4Network,
        nodes: &[String],
        vms_per_node: u32,
    ) -> Result<JobAddresses, AddressError> {
        let count = nodes.len() * vms_per_node as usize;
        let net = u32::from(subnet.network());
        let last_host = (1u64 << (32 - subnet.prefix())).saturating_sub(2);
        let gateway = self.gateway.filter(|&g| u64::from(g) <= last_host);
        let mut hosts =
            (u64::from(self.first)..=last_host).filter(|&h| Some(h) != gateway.map(u64::from));
        let mut vms = Vec::with_capacity(count);
        for (i, node) in nodes
            .iter()
            .flat_map(|n| std::iter::repeat_n(n, vms_per_node as usize))
            .enumerate()
        {
            let Some(h) = hosts.next() else {
                return Err(AddressError::TooMany {
                    vms: count,
                    first: self.first,
                    subnet,
                });
            };
            let ip = Ipv4Addr::from(net + h as u32);
            let name = self.names.replace("{n}", &(i + 1).to_string());
            let mac = match self.mac {
                MacScheme::Hashed => hashed_mac(job, &name),
                MacScheme::Encoded => encoded_mac(ip),
            };
            vms.push(Vm {
                name,
                node: node.clone(),
                ip,
                mac,
            });
        }
        Ok(JobAddresses {
            job: job.to_string(),
            subnet,
            gateway: gateway.map(|g| Ipv4Addr::from(net + g)),
            dns: self.dns.clone(),
            vms,
        })
    }
}

fn as_text<S: serde::Serializer>(n: &Ipv4Network, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}

fn from_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Ipv4Network, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// Whether `mac` is six lowercase hex pairs (as jobnet writes them).
pub fn is_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn mac_text(b: [u8; 6]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A locally administered unicast MAC from FNV-1a of `job/name`.
pub fn hashed_mac(job: &str, name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in job.bytes().chain(std::iter::once(b'/')).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let x = h.to_be_bytes();
    mac_text([(x[0] & 0xfc) | 0x02, x[1], x[2], x[3], x[4], x[5]])
}

/// `02:00:A:B:C:D` for A.B.C.D.
pub fn encoded_mac(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    mac_text([0x02, 0x00, o[0], o[1], o[2], o[3]])
}

impl JobAddresses {
    /// JSCC's "Virtual machine ip list".
    pub fn ip_list(&self) -> String {
        let mut o = String::from("Virtual machine ip list:\n");
        for vm in &self.vms {
            let _ = writeln!(o, "************ {} ************", vm.name);
            let _ = writeln!(o, "{} {}", vm.ip, vm.mac);
        }
        o
    }

    /// dnsmasq `dhcp-host` lines.
    pub fn dnsmasq(&self) -> String {
        self.vms
            .iter()
            .map(|vm| format!("dhcp-host={},{},{}\n", vm.mac, vm.ip, vm.name))
            .collect()
    }

    /// A cloud-init NoCloud `network-config` (version 2) for one VM.
    pub fn cloud_init(&self, vm: &Vm) -> String {
        let mut o = String::from("version: 2\nethernets:\n  eth0:\n");
        let _ = writeln!(o, "    match:\n      macaddress: \"{}\"", vm.mac);
        let _ = writeln!(o, "    set-name: eth0");
        let _ = writeln!(o, "    addresses: [\"{}/{}\"]", vm.ip, self.subnet.prefix());
        if let Some(g) = self.gateway {
            let _ = writeln!(o, "    routes:\n      - to: default\n        via: {g}");
        }
        if !self.dns.is_empty() {
            let list: Vec<String> = self.dns.iter().map(|d| d.to_string()).collect();
            let _ = writeln!(
                o,
                "    nameservers:\n      addresses: [{}]",
                list.join(", ")
            );
        }
        o
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("json") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(subnets: Subnets, first: u32, mac: MacScheme) -> AddressPlan {
        AddressPlan {
            subnets,
            first,
            gateway: Some(1),
            dns: vec![Ipv4Addr::new(10, 0, 0, 53)],
            mac,
            names: "vs{n}".into(),
            dir: "/tmp".into(),
        }
    }

    #[test]
    fn jscc_numbering_from_the_vlan() {
        let p = plan(
            Subnets::Template("192.168.{vlan}.0/24".into()),
            64,
            MacScheme::Encoded,
        );
        let net = p.subnet(0, Some(160)).unwrap();
        assert_eq!(net.to_string(), "192.168.160.0/24");
        let a = p.assign("7", net, &["n1".into(), "n2".into()], 1).unwrap();
        assert_eq!(
            a.ip_list(),
            "Virtual machine ip list:\n************ vs1 ************\n192.168.160.64 02:00:c0:a8:a0:40\n************ vs2 ************\n192.168.160.65 02:00:c0:a8:a0:41\n"
        );
        assert_eq!(
            p.subnet(0, Some(300)).unwrap_err().to_string(),
            "address template 192.168.{vlan}.0/24 does not fit VLAN 300 (it gives `192.168.300.0/24`); number such jobs from a pool (addresses.pool) or keep their VLANs in range"
        );
    }

    #[test]
    fn pool_subnets_macs_and_limits() {
        let p = plan(
            Subnets::Pool {
                pool: "10.64.0.0/16".parse().unwrap(),
                prefix: 28,
            },
            1,
            MacScheme::Hashed,
        );
        assert_eq!(p.pool_size(), Some(4096));
        let net = p.subnet(3, None).unwrap();
        assert_eq!(net.to_string(), "10.64.0.48/28");
        let a = p.assign("42", net, &["n1".into(), "n2".into()], 3).unwrap();
        // Host 1 is the gateway: VMs get 2..7.
        let ips: Vec<String> = a.vms.iter().map(|v| v.ip.to_string()).collect();
        assert_eq!(
            ips,
            [
                "10.64.0.50",
                "10.64.0.51",
                "10.64.0.52",
                "10.64.0.53",
                "10.64.0.54",
                "10.64.0.55"
            ]
        );
        assert_eq!(a.vms[3].node, "n2");
        for vm in &a.vms {
            let first = u8::from_str_radix(&vm.mac[..2], 16).unwrap();
            assert_eq!(
                first & 0x03,
                0x02,
                "locally administered unicast: {}",
                vm.mac
            );
        }
        let macs: std::collections::BTreeSet<&str> = a.vms.iter().map(|v| v.mac.as_str()).collect();
        assert_eq!(macs.len(), 6);
        assert_eq!(a.vms[0].mac, hashed_mac("42", "vs1"), "stable");
        assert_ne!(hashed_mac("43", "vs1"), hashed_mac("42", "vs1"));
        // /28 has 14 hosts, one is the gateway: 13 VMs fit, 14 do not.
        assert!(p.assign("42", net, &["n1".into()], 13).is_ok());
        assert!(matches!(
            p.assign("42", net, &["n1".into()], 14),
            Err(AddressError::TooMany { .. })
        ));
        let ci = a.cloud_init(&a.vms[0]);
        assert!(
            ci.contains("addresses: [\"10.64.0.50/28\"]") && ci.contains("via: 10.64.0.49"),
            "{ci}"
        );
        assert_eq!(
            a.dnsmasq().lines().next().unwrap(),
            format!("dhcp-host={},10.64.0.50,vs1", a.vms[0].mac)
        );
    }
}
