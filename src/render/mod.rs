//! Views of topologies and plans: human text, JSON for machines, DOT for Graphviz users and a
//! self-contained SVG picture (own layered layout, no Graphviz needed).
//!
//! Renderers only read; all decisions were taken by the planner.

mod svg;

pub use svg::svg;

use crate::hostlist;
use crate::plan::{DevicePlan, Plan};
use crate::topology::Topology;
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt::Write;

/// The plan for a human: per device the operations and exact commands, then the
/// partitions.conf diff and warnings.
pub fn plan_text(plan: &Plan, t: &Topology) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "jobnet plan: job {} on {} ({})",
        plan.job, t.name, t.file
    );
    let _ = writeln!(
        o,
        "  nodes:    {} ({})",
        hostlist::fold(&plan.nodes),
        plan.nodes.len()
    );
    match (plan.vlan, &t.ethernet) {
        (Some(v), Some(e)) => {
            let how = if plan.vlan_auto {
                format!("auto, lowest free in {}", e.usable().display(false))
            } else {
                "given".into()
            };
            let _ = writeln!(o, "  VLAN:     {v} ({how})");
        }
        _ => {
            let _ = writeln!(o, "  VLAN:     none (no Ethernet for this job)");
        }
    }
    match (&plan.pkey, &plan.infiniband) {
        (Some(k), Some(ib)) => {
            let _ = writeln!(
                o,
                "  PKey:     {k} (partition {}, {} members)",
                ib.partition,
                ib.members.len()
            );
        }
        _ => {
            let _ = writeln!(o, "  PKey:     none");
        }
    }
    let e = &plan.ethernet;
    let _ = writeln!(
        o,
        "  subgraph: {} switch(es), {} link(s), cost {}",
        e.switches.len(),
        e.links.len(),
        e.cost
    );
    for l in &e.links {
        let _ = writeln!(o, "            {} -- {}", l.a, l.b);
    }
    for d in &e.devices {
        device_text(&mut o, "switch", d);
    }
    if let Some(g) = &plan.gateway {
        device_text(&mut o, "gateway", g);
    }
    if let Some(ib) = &plan.infiniband {
        let _ = writeln!(
            o,
            "\n== partitions.conf {} (partition {} PKey {})",
            ib.partitions_conf_path, ib.partition, ib.pkey
        );
        let old = ib.partitions_conf_old.as_deref().unwrap_or("");
        let diff = similar::TextDiff::from_lines(old, &ib.partitions_conf);
        let old_name = if ib.partitions_conf_old.is_some() {
            ib.partitions_conf_path.clone()
        } else {
            "/dev/null".into()
        };
        let _ = write!(
            o,
            "{}",
            diff.unified_diff()
                .context_radius(2)
                .header(&old_name, &format!("{} (planned)", ib.partitions_conf_path))
        );
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(o, "\nwarnings:");
        for w in &plan.warnings {
            let _ = writeln!(o, "  - {w}");
        }
    }
    o
}

fn device_text(o: &mut String, kind: &str, d: &DevicePlan) {
    let _ = writeln!(o, "\n== {kind} {} ({}, {})", d.name, d.driver, d.address);
    for op in &d.ops {
        let _ = writeln!(o, "  # {}", op.describe());
    }
    for c in &d.commands {
        let _ = writeln!(o, "  {c}");
    }
}

/// The plan as JSON (see docs/cli.md for the schema).
pub fn plan_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("plan serialises") + "\n"
}

/// Counts, switches, links and nodes per switch.
pub fn topology_text(t: &Topology) -> String {
    let mut o = String::new();
    let up = t.links.iter().filter(|l| l.up).count();
    let _ = writeln!(o, "topology {} ({})", t.name, t.file);
    let _ = writeln!(
        o,
        "  {} switches, {} links ({} up, {} down), {} nodes, {} gateways",
        t.switches.len(),
        t.links.len(),
        up,
        t.links.len() - up,
        t.nodes.len(),
        t.gateways.len()
    );
    match &t.ethernet {
        Some(e) => {
            let _ = writeln!(
                o,
                "  VLAN pool {} (usable {}, {} VLANs), node ports {:?}, open ports: {:?}",
                e.vlan_pool.display(false),
                e.usable().display(false),
                e.usable().len(),
                e.node_port_mode,
                e.open_ports
            );
        }
        None => {
            let _ = writeln!(o, "  no Ethernet (an InfiniBand-only fabric)");
        }
    }
    if let Some(ib) = &t.infiniband {
        let _ = writeln!(
            o,
            "  PKey pool {} ({} keys), partitions.conf {}",
            ib.pkey_pool.display(true),
            ib.pkey_pool.len(),
            ib.partitions_conf
        );
    }
    let by_switch = t.nodes_by_switch();
    let _ = writeln!(o, "\nswitches:");
    for (i, s) in t.switches.iter().enumerate() {
        let names: Vec<&str> = by_switch[i].iter().map(|n| n.name.as_str()).collect();
        let nodes = if names.is_empty() {
            "-".to_string()
        } else {
            format!("{} ({})", hostlist::fold(&names), names.len())
        };
        let _ = writeln!(
            o,
            "  {:<16} {:<16} {:<24} nodes: {nodes}",
            s.name, s.driver, s.address
        );
    }
    let _ = writeln!(o, "\nlinks:");
    for l in &t.links {
        let mut flags = vec![format!("cost {}", l.cost)];
        if l.lag {
            flags.push("lag".into());
        }
        if !l.up {
            flags.push("DOWN".into());
        }
        let _ = writeln!(o, "  {} -- {} ({})", l.a, l.b, flags.join(", "));
    }
    if !t.gateways.is_empty() {
        let _ = writeln!(o, "\ngateways:");
        for g in &t.gateways {
            let _ = writeln!(
                o,
                "  {} ({}, {}) ethernet {} ib {}",
                g.name, g.driver, g.address, g.ethernet_port, g.ib_guid
            );
        }
    }
    o
}

pub fn topology_json(t: &Topology) -> String {
    let by_switch = t.nodes_by_switch();
    let v = json!({
        "name": t.name,
        "file": t.file,
        "counts": {
            "switches": t.switches.len(),
            "links": t.links.len(),
            "links_up": t.links.iter().filter(|l| l.up).count(),
            "nodes": t.nodes.len(),
            "gateways": t.gateways.len(),
        },
        "ethernet": t.ethernet.as_ref().map(|e| json!({
            "vlan_pool": e.vlan_pool.display(false),
            "reserved_vlans": e.reserved_vlans.display(false),
            "usable_vlans": e.usable().len(),
            "node_port_mode": e.node_port_mode,
            "open_ports": e.open_ports,
        })),
        "infiniband": t.infiniband.as_ref().map(|ib| json!({"pkey_pool": ib.pkey_pool.display(true), "partitions_conf": ib.partitions_conf})),
        "switches": t.switches.iter().enumerate().map(|(i, s)| json!({
            "name": s.name,
            "driver": s.driver,
            "address": s.address,
            "nodes": hostlist::fold(&by_switch[i].iter().map(|n| n.name.as_str()).collect::<Vec<_>>()),
            "node_count": by_switch[i].len(),
        })).collect::<Vec<_>>(),
        "links": t.links.iter().map(|l| json!({"a": l.a, "b": l.b, "cost": l.cost, "state": if l.up {"up"} else {"down"}, "lag": l.lag})).collect::<Vec<_>>(),
        "gateways": t.gateways.iter().map(|g| json!({"name": g.name, "driver": g.driver, "ethernet_port": g.ethernet_port, "ib_guid": g.ib_guid})).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&v).expect("json") + "\n"
}

/// What a picture of a plan highlights: the subgraph's switches and links, the job's nodes.
pub(crate) struct Highlight<'a> {
    pub in_tree: BTreeSet<&'a str>,
    /// Links as (a, b) written `switch:port`.
    pub tree_links: BTreeSet<(String, String)>,
    pub job_nodes: BTreeSet<&'a str>,
}

impl<'a> Highlight<'a> {
    pub fn of(plan: Option<&'a Plan>) -> Self {
        let Some(p) = plan else {
            return Highlight {
                in_tree: BTreeSet::new(),
                tree_links: BTreeSet::new(),
                job_nodes: BTreeSet::new(),
            };
        };
        Highlight {
            in_tree: p.ethernet.switches.iter().map(String::as_str).collect(),
            tree_links: p
                .ethernet
                .links
                .iter()
                .map(|l| (l.a.to_string(), l.b.to_string()))
                .collect(),
            job_nodes: p.nodes.iter().map(String::as_str).collect(),
        }
    }
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz DOT of the fabric; with a plan, its subgraph and nodes are highlighted.
pub fn dot(t: &Topology, plan: Option<&Plan>) -> String {
    let Highlight {
        in_tree,
        tree_links,
        job_nodes,
    } = Highlight::of(plan);
    let mut o = String::new();
    let title = match plan {
        Some(p) => format!(
            "{}: job {} VLAN {}",
            t.name,
            p.job,
            p.vlan.map_or("none".to_string(), |v| v.to_string())
        ),
        None => t.name.clone(),
    };
    let _ = writeln!(o, "graph {} {{\n  graph [rankdir=BT, label={}, labelloc=t];\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef2fb\", fontname=\"Helvetica\"];\n  edge [color=\"#999999\"];", dot_id(&t.name), dot_id(&title));
    let by_switch = t.nodes_by_switch();
    for (i, s) in t.switches.iter().enumerate() {
        let hl = if in_tree.contains(s.name.as_str()) {
            ", color=\"#d62728\", fillcolor=\"#ffd8d8\", penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  {} [label={}{hl}];",
            dot_id(&s.name),
            dot_id(&format!("{}\n{}", s.name, s.driver))
        );
        if !by_switch[i].is_empty() {
            let all: Vec<&str> = by_switch[i].iter().map(|n| n.name.as_str()).collect();
            let mine: Vec<&str> = all
                .iter()
                .copied()
                .filter(|n| job_nodes.contains(n))
                .collect();
            let mut label = hostlist::fold(&all);
            let mut style = String::new();
            if !mine.is_empty() {
                label = format!("{label}\njob: {}", hostlist::fold(&mine));
                style = ", color=\"#d62728\", fontcolor=\"#d62728\"".into();
            }
            let _ = writeln!(
                o,
                "  {} [shape=note, style=\"\", label={}{style}];",
                dot_id(&format!("{}/nodes", s.name)),
                dot_id(&label)
            );
            let _ = writeln!(
                o,
                "  {} -- {} [style=dotted];",
                dot_id(&format!("{}/nodes", s.name)),
                dot_id(&s.name)
            );
        }
    }
    for g in &t.gateways {
        let used = plan
            .and_then(|p| p.gateway.as_ref())
            .is_some_and(|d| d.name == g.name);
        let hl = if used {
            ", color=\"#d62728\", penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  {} [shape=hexagon, label={}{hl}];",
            dot_id(&g.name),
            dot_id(&format!("{}\n{}", g.name, g.driver))
        );
        let _ = writeln!(
            o,
            "  {} -- {} [label={}{hl}];",
            dot_id(&g.name),
            dot_id(&g.ethernet_port.switch),
            dot_id(&g.ethernet_port.port)
        );
    }
    for l in &t.links {
        let mut attrs = vec![
            format!("taillabel={}", dot_id(&l.a.port)),
            format!("headlabel={}", dot_id(&l.b.port)),
        ];
        if tree_links.contains(&(l.a.to_string(), l.b.to_string())) {
            attrs.push("color=\"#d62728\", penwidth=3".into());
        }
        if !l.up {
            attrs.push("style=dashed".into());
        }
        if l.lag {
            attrs.push("label=\"lag\"".into());
        }
        let _ = writeln!(
            o,
            "  {} -- {} [{}];",
            dot_id(&l.a.switch),
            dot_id(&l.b.switch),
            attrs.join(", ")
        );
    }
    o.push_str("}\n");
    o
}
