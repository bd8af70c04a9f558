//! A job "passport" (INI) of the JSCC flow, for batch systems without Slurm/PBS hooks (SUPPZ):
//! the site's prolog calls `jobnet job up --passport FILE --job ID --nodes LIST`.
//!
//! ```ini
//! [VM]
//! Template=/mnt/pve/win11.qcow2
//! Vlan=160
//! Ram=2048
//! Procs=1
//! Cores=2
//!
//! [Network]
//! Vlan=auto
//! Pkey=auto
//! Gateway=gw1
//! VMs=2
//! ```
//!
//! `[VM] Vlan` is the job's VLAN as JSCC passports give it; `[Network]` (jobnet's section) may
//! override it with `auto` or `none` and adds the partition (`Pkey`: auto, none or a PKey), a
//! gateway and the VMs per node. Keys are case-insensitive; `;` and `#` start comments; the
//! other `[VM]` keys belong to the VM launcher and are kept as they are.

use super::request::{self, NetworkRequest};
use crate::base::diag::{Diagnostics, Loc};
use std::collections::BTreeMap;

/// What a passport says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passport {
    pub request: NetworkRequest,
    /// The `[VM]` section, as written (Template, Ram, Procs, Cores, ...).
    pub vm: BTreeMap<String, String>,
}

/// Parses a passport; every problem is a diagnostic with `FILE:LINE:COL`.
pub fn parse(text: &str, file: &str) -> Result<Passport, Diagnostics> {
    let mut d = Diagnostics::new(file);
    let mut section = String::new();
    let mut vm = BTreeMap::new();
    let mut req = NetworkRequest::default();
    let mut network_vlan = None;
    for (i, raw) in text.lines().enumerate() {
        let loc = Loc {
            line: i + 1,
            col: 1,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            if section != "vm" && section != "network" {
                d.error(
                    loc,
                    format!("unknown section [{name}]"),
                    "a passport has [VM] and [Network]",
                );
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            d.error(
                loc,
                format!("`{}` is not KEY=VALUE", line.escape_debug()),
                "write e.g. Vlan=160",
            );
            continue;
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        let bad = |d: &mut Diagnostics, e: request::RequestError| {
            d.error(
                loc,
                e.0.replace("jobnet request ", &format!("[{section}] ")),
                "",
            )
        };
        match (section.as_str(), key.as_str()) {
            ("vm", "vlan") => match request::vlan(value) {
                Ok(v) => req.vlan = v,
                Err(e) => bad(&mut d, e),
            },
            ("vm", _) => {
                vm.insert(key, value.to_string());
            }
            ("network", "vlan") => match request::vlan(value) {
                Ok(v) => network_vlan = Some(v),
                Err(e) => bad(&mut d, e),
            },
            ("network", "pkey") | ("network", "ib") => match request::pkey(value) {
                Ok(v) => req.pkey = v,
                Err(e) => bad(&mut d, e),
            },
            ("network", "gateway") if !value.is_empty() => match request::gateway(value) {
                Ok(v) => req.gateway = Some(v),
                Err(e) => bad(&mut d, e),
            },
            ("network", "gateway") => {}
            ("network", "vms") => match request::vms(value) {
                Ok(v) => req.vms_per_node = v,
                Err(e) => bad(&mut d, e),
            },
            ("network", k) => d.error(
                loc,
                format!("unknown key {k} in [Network]"),
                "use Vlan, Pkey, Gateway or VMs",
            ),
            (_, _) => d.error(
                loc,
                format!("`{}` is outside a section", line.escape_debug()),
                "start with [VM] or [Network]",
            ),
        }
    }
    if let Some(v) = network_vlan {
        req.vlan = v;
    }
    if d.has_errors() {
        return Err(d);
    }
    Ok(Passport { request: req, vm })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::types::VlanId;
    use crate::plan::{Choice, PKeyChoice};

    #[test]
    fn jscc_passport_with_a_network_section() {
        let p = parse(
            "[VM]\nTemplate=/mnt/pve/win11.qcow2\nVlan=160\nRam=2048\nProcs=1\nCores=2\n",
            "p.ini",
        )
        .unwrap();
        assert_eq!(p.request.vlan, Choice::Fixed(VlanId::new(160).unwrap()));
        assert_eq!(p.vm["template"], "/mnt/pve/win11.qcow2");
        let p = parse(
            "[VM]\nVlan=160\n; ours\n[Network]\nVlan=auto\nPkey=none\nVMs=2\n",
            "p.ini",
        )
        .unwrap();
        assert_eq!(
            (p.request.vlan, p.request.pkey, p.request.vms_per_node),
            (Choice::Auto, PKeyChoice::None, 2)
        );
        let e = parse("[VM]\nVlan=5000\n[Net]\nx\n", "p.ini")
            .unwrap_err()
            .errors_text();
        assert!(e.contains("p.ini:2:1: error: [vm] vlan=5000"), "{e}");
        assert!(e.contains("p.ini:3:1: error: unknown section [Net]"), "{e}");
    }
}
