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
use crate::base::types::VlanId;
use crate::plan::Choice;
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
    let mut r = Reader {
        d: Diagnostics::new(file),
        section: String::new(),
        vm: BTreeMap::new(),
        req: NetworkRequest::default(),
        network_vlan: None,
    };
    for (i, raw) in text.lines().enumerate() {
        let loc = Loc {
            line: i + 1,
            col: 1,
        };
        r.line(loc, raw.trim());
    }
    let Reader {
        d,
        vm,
        mut req,
        network_vlan,
        ..
    } = r;
    if let Some(v) = network_vlan {
        req.vlan = v;
    }
    if d.has_errors() {
        return Err(d);
    }
    Ok(Passport { request: req, vm })
}

/// A passport being read, line by line.
struct Reader {
    d: Diagnostics,
    /// The current section, lowercase.
    section: String,
    vm: BTreeMap<String, String>,
    req: NetworkRequest,
    /// `[Network] Vlan`, which overrides `[VM] Vlan` wherever it stands.
    network_vlan: Option<Choice<VlanId>>,
}

impl Reader {
    /// Reads one trimmed line: blank, a comment, a section header or `KEY=VALUE`.
    fn line(&mut self, loc: Loc, line: &str) {
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            return;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            self.section = name.trim().to_ascii_lowercase();
            if self.section != "vm" && self.section != "network" {
                self.d.error(
                    loc,
                    format!("unknown section [{name}]"),
                    "a passport has [VM] and [Network]",
                );
            }
            return;
        }
        let Some((key, value)) = line.split_once('=') else {
            self.d.error(
                loc,
                format!("`{}` is not KEY=VALUE", line.escape_debug()),
                "write e.g. Vlan=160",
            );
            return;
        };
        self.entry(loc, line, key.trim().to_ascii_lowercase(), value.trim());
    }

    /// Takes `key` (lowercase) `= value` of the current section.
    fn entry(&mut self, loc: Loc, line: &str, key: String, value: &str) {
        let (d, section) = (&mut self.d, self.section.as_str());
        let bad = |d: &mut Diagnostics, e: request::RequestError| {
            d.error(
                loc,
                e.0.replace("jobnet request ", &format!("[{section}] ")),
                "",
            )
        };
        match (section, key.as_str()) {
            ("vm", "vlan") => match request::vlan(value) {
                Ok(v) => self.req.vlan = v,
                Err(e) => bad(d, e),
            },
            ("vm", _) => {
                self.vm.insert(key, value.to_string());
            }
            ("network", "vlan") => match request::vlan(value) {
                Ok(v) => self.network_vlan = Some(v),
                Err(e) => bad(d, e),
            },
            ("network", "pkey") | ("network", "ib") => match request::pkey(value) {
                Ok(v) => self.req.pkey = v,
                Err(e) => bad(d, e),
            },
            ("network", "gateway") if !value.is_empty() => match request::gateway(value) {
                Ok(v) => self.req.gateway = Some(v),
                Err(e) => bad(d, e),
            },
            ("network", "gateway") => {}
            ("network", "vms") => match request::vms(value) {
                Ok(v) => self.req.vms_per_node = v,
                Err(e) => bad(d, e),
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
