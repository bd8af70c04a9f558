//! Importing InfiniBand port GUIDs from `ibnetdiscover` output, so topology files need not be
//! typed by hand: which HCA port belongs to which node, matched by the node description's first
//! word ("cn001 HCA-1" → node cn001), compared with the topology.
//!
//! The parser reads the records ibnetdiscover prints (blank-line separated; a `Ca`, `Switch` or
//! `Rt` header line with the node's id and `# "description"`, then one line per connected port;
//! a CA port line carries its port GUID in parentheses). Unconnected CA ports are not listed by
//! ibnetdiscover and so never imported.

use crate::base::diag::{Diagnostics, Loc};
use crate::base::hostlist;
use crate::base::types::PortGuid;
use crate::topology::Topology;
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One connected HCA port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaPort {
    pub host: String,
    pub description: String,
    pub port: u32,
    pub guid: PortGuid,
    /// `switch description [port]` it is cabled to.
    pub peer: String,
    pub line: usize,
}

/// Parses ibnetdiscover output; `file` is used in messages.
pub fn parse(text: &str, file: &str) -> Result<Vec<CaPort>, Diagnostics> {
    let header = Regex::new(r#"^(Switch|Ca|Rt)\s+\d+\s+"([^"]+)"(?:\s*#\s*"([^"]*)")?"#)
        .expect("static regex");
    let ca_port = Regex::new(r#"^\[(\d+)\](?:\(([0-9A-Fa-f]+)\))?\s+"([^"]+)"\[(\d+)\](?:\([0-9A-Fa-f]+\))?(?:\s*#.*?"([^"]*)"\s*lid)?"#).expect("static regex");
    let mut d = Diagnostics::new(file);
    let mut out = Vec::new();
    let mut in_ca: Option<String> = None;
    let mut headers = 0;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let t = line.trim_end();
        if t.is_empty() {
            in_ca = None;
            continue;
        }
        if t.starts_with('#') {
            continue;
        }
        if let Some(c) = header.captures(t) {
            headers += 1;
            in_ca = (&c[1] == "Ca").then(|| {
                c.get(3)
                    .map_or_else(|| c[2].to_string(), |m| m.as_str().to_string())
            });
            continue;
        }
        let Some(desc) = &in_ca else { continue };
        if !t.starts_with('[') {
            continue;
        }
        if let Some(port) = port_line(&ca_port, t, desc, line_no, &mut d) {
            out.push(port);
        }
    }
    if headers == 0 {
        d.error(
            Loc { line: 1, col: 1 },
            "no Switch or Ca record found",
            "give the output of `ibnetdiscover` (without -s/-l/-g options)",
        );
    }
    if d.has_errors() {
        Err(d)
    } else {
        Ok(out)
    }
}

/// One port line of a CA record (`desc` is the CA's description); `None`, with a warning or
/// error recorded, when it gives no usable port GUID.
fn port_line(
    ca_port: &Regex,
    t: &str,
    desc: &str,
    line_no: usize,
    d: &mut Diagnostics,
) -> Option<CaPort> {
    let loc = Loc {
        line: line_no,
        col: 1,
    };
    let Some(c) = ca_port.captures(t) else {
        d.warning(
            loc,
            format!("CA port line not understood: `{t}`"),
            "is this ibnetdiscover output?",
        );
        return None;
    };
    let port: u32 = c[1].parse().unwrap_or(0);
    let Some(guid_text) = c.get(2) else {
        d.warning(
            loc,
            format!("port {port} of `{desc}` has no port GUID in the output"),
            "run a newer ibnetdiscover (it prints port GUIDs in parentheses)",
        );
        return None;
    };
    let guid = match u64::from_str_radix(guid_text.as_str(), 16) {
        Ok(g) if g != 0 => PortGuid::new(g),
        _ => {
            d.error(
                loc,
                format!(
                    "port GUID `{}` of `{desc}` is not a GUID",
                    guid_text.as_str()
                ),
                "check the ibnetdiscover output",
            );
            return None;
        }
    };
    let host = desc
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let peer = format!("{} [{}]", c.get(5).map_or(&c[3], |m| m.as_str()), &c[4]);
    Some(CaPort {
        host,
        description: desc.to_string(),
        port,
        guid,
        peer,
        line: line_no,
    })
}

/// A node of the topology and what ibnetdiscover says about it.
#[derive(Clone, Debug, Serialize)]
pub struct Match {
    pub node: String,
    /// The chosen port: the lowest (HCA description, port number) of the host.
    pub guid: Option<PortGuid>,
    pub current: Option<PortGuid>,
    /// Other connected ports of the same host, not used.
    pub other_ports: Vec<PortGuid>,
}

/// Comparison of a topology with discovered ports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub matches: Vec<Match>,
    /// Topology nodes ibnetdiscover did not find.
    pub missing: Vec<String>,
    /// Hosts ibnetdiscover found that the topology lacks.
    pub unknown: Vec<String>,
    /// Nodes whose topology GUID differs from the discovered one.
    pub changed: Vec<String>,
    /// GUIDs the topology gives to another node than ibnetdiscover does.
    pub conflicts: Vec<String>,
    /// Undiscovered nodes whose GUID ibnetdiscover shows on another host: the emitted nodes
    /// section leaves their GUID out (keeping it would give two nodes one GUID).
    pub dropped: Vec<String>,
}

pub fn compare(t: &Topology, ports: &[CaPort]) -> Report {
    let mut by_host: BTreeMap<&str, Vec<&CaPort>> = BTreeMap::new();
    for p in ports {
        by_host.entry(p.host.as_str()).or_default().push(p);
    }
    for v in by_host.values_mut() {
        v.sort_by(|a, b| (a.description.as_str(), a.port).cmp(&(b.description.as_str(), b.port)));
    }
    let owner: BTreeMap<PortGuid, &str> = ports.iter().map(|p| (p.guid, p.host.as_str())).collect();
    let mut matches = Vec::new();
    let (mut missing, mut changed, mut conflicts, mut dropped) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in &t.nodes {
        let found = by_host.get(n.name.as_str());
        let guid = found.and_then(|v| v.first()).map(|p| p.guid);
        let other_ports = found
            .map(|v| v.iter().skip(1).map(|p| p.guid).collect())
            .unwrap_or_default();
        if guid.is_none() {
            missing.push(n.name.clone());
        }
        if let (Some(g), Some(c)) = (guid, n.ib_guid) {
            if g != c {
                changed.push(n.name.clone());
            }
        }
        let mut current = n.ib_guid;
        if let Some(c) = n.ib_guid {
            if let Some(h) = owner.get(&c).filter(|h| **h != n.name) {
                conflicts.push(format!(
                    "{} has {c} in the topology, ibnetdiscover shows it on {h}",
                    n.name
                ));
                if guid.is_none() {
                    dropped.push(format!("{} ({c} is on {h} now)", n.name));
                    current = None;
                }
            }
        }
        matches.push(Match {
            node: n.name.clone(),
            guid,
            current,
            other_ports,
        });
    }
    let known: BTreeSet<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
    let unknown = by_host
        .keys()
        .filter(|h| !known.contains(*h))
        .map(|h| h.to_string())
        .collect();
    Report {
        matches,
        missing,
        unknown,
        changed,
        conflicts,
        dropped,
    }
}

/// The topology's `nodes:` section with the discovered GUIDs filled in (node entries are
/// regrouped as written: same entry, same hostlist and port range). Nodes without a discovered
/// port keep their current GUID, or none.
pub fn nodes_yaml(t: &Topology, report: &Report) -> String {
    let guid_of: BTreeMap<&str, Option<PortGuid>> = report
        .matches
        .iter()
        .map(|m| (m.node.as_str(), m.guid.or(m.current)))
        .collect();
    let mut entries: BTreeMap<(usize, usize), Vec<&crate::topology::Node>> = BTreeMap::new();
    for n in &t.nodes {
        entries.entry((n.loc.line, n.loc.col)).or_default().push(n);
    }
    let mut y = String::from("nodes:\n");
    for nodes in entries.values() {
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let ports: Vec<String> = nodes
            .iter()
            .map(|n| n.port.as_ref().map_or(String::new(), |p| p.to_string()))
            .collect();
        let guids: Vec<Option<PortGuid>> = nodes
            .iter()
            .map(|n| guid_of.get(n.name.as_str()).copied().flatten())
            .collect();
        // One entry per run that folds back to the same shape, so hostlists stay hostlists.
        let name = hostlist::fold(&names);
        let port = hostlist::fold(&ports);
        let same_shape = hostlist::expand(&name).ok().as_deref()
            == Some(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..])
            && hostlist::expand(&port).ok().as_deref() == Some(&ports[..]);
        if same_shape {
            y.push_str(&format!("  - name: \"{name}\"\n"));
            if !port.is_empty() {
                y.push_str(&format!("    port: \"{port}\"\n"));
            }
            if guids.iter().all(Option::is_some) {
                let list: Vec<String> = guids
                    .iter()
                    .map(|g| format!("\"{}\"", g.expect("checked")))
                    .collect();
                y.push_str(&format!("    ib_guids: [{}]\n", list.join(", ")));
            } else if guids.iter().any(Option::is_some) {
                y.push_str("    # some nodes of this entry have no discovered GUID; split the entry to give the others theirs\n");
            }
        } else {
            for (n, g) in nodes.iter().zip(&guids) {
                let ib = g
                    .map(|g| format!(", ib_guids: [\"{g}\"]"))
                    .unwrap_or_default();
                let port = n
                    .port
                    .as_ref()
                    .map_or(String::new(), |p| format!(", port: \"{p}\""));
                y.push_str(&format!("  - {{name: {}{port}{ib}}}\n", n.name));
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_ibsim_output() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/ibnetdiscover/ibsim-net.2sw2path4hca.txt"
        ))
        .unwrap();
        let ports = parse(&text, "ibsim.txt").unwrap();
        let mut got: Vec<(String, String)> = ports
            .iter()
            .map(|p| (p.host.clone(), p.guid.to_string()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("Hca1", "0x0000000000100001"),
                ("Hca2", "0x0000000000100004"),
                ("Hca3", "0x0000000000100007"),
                ("Hca4", "0x000000000010000a")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert!(
            ports.iter().all(|p| p.peer.starts_with("Switch")),
            "{ports:?}"
        );
    }

    #[test]
    fn reads_mellanox_style_descriptions_and_ports() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/ibnetdiscover/hand-written-mlnx.txt"
        ))
        .unwrap();
        let ports = parse(&text, "mlnx.txt").unwrap();
        assert_eq!(ports.len(), 4);
        let cn003 = ports.iter().find(|p| p.host == "cn003").unwrap();
        assert_eq!(
            (cn003.port, cn003.guid),
            (2, PortGuid::new(0x2c90300a1b022))
        );
        assert_eq!(cn003.description, "cn003 HCA-1");
        assert_eq!(cn003.peer, "MF0;ib-leaf1:MSB7700/U1 [3]");
    }

    /// A node ibnetdiscover did not find keeps its GUID in the emitted section, unless that GUID
    /// is now on another host: then it is left out (and reported), so the section validates.
    #[test]
    fn stale_guids_of_undiscovered_nodes_are_left_out() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/ibnetdiscover/hand-written-mlnx.txt"
        ))
        .unwrap();
        let ports = parse(&text, "mlnx.txt").unwrap();
        let drivers = crate::drivers::DriverSet::builtin();
        // cn009 (not discovered) has the GUID ibnetdiscover now shows on cn001; cn010 keeps its own.
        let topo = "name: t\ninfiniband: {pkey_pool: \"0x10-0x20\"}\nnodes:\n  - {name: cn001}\n  - {name: cn009, ib_guids: [\"0x2c90300a1b001\"]}\n  - {name: cn010, ib_guids: [\"0x77\"]}\n";
        let t = crate::topology::parse(topo, "t.yaml", &drivers)
            .unwrap()
            .topology;
        let report = compare(&t, &ports);
        assert_eq!(
            report.dropped,
            ["cn009 (0x0002c90300a1b001 is on cn001 now)"]
        );
        let nodes = nodes_yaml(&t, &report);
        assert!(
            nodes.contains("{name: cn010, ib_guids: [\"0x0000000000000077\"]}")
                || nodes.contains("0x0000000000000077"),
            "{nodes}"
        );
        let pasted = format!("name: t\ninfiniband: {{pkey_pool: \"0x10-0x20\"}}\n{nodes}");
        crate::topology::parse(&pasted, "pasted.yaml", &drivers)
            .unwrap_or_else(|e| panic!("the emitted section must validate: {e}\n{pasted}"));
    }

    #[test]
    fn refuses_what_is_not_ibnetdiscover_output() {
        let e = parse("hello\nworld\n", "x.txt").unwrap_err();
        assert!(e.items[0]
            .to_string()
            .contains("x.txt:1:1: error: no Switch or Ca record found"));
    }
}
