//! Views of topologies and plans: human text, JSON for machines, DOT for Graphviz users and a
//! self-contained SVG picture (own layered layout, no Graphviz needed).
//!
//! Renderers only read; all decisions were taken by the planner. Pictures come in two
//! [`View`]s: the whole fabric, or a job's subgraph with one ring of context for fabrics too big
//! to read whole; [`svg`] and [`dot`] choose between them ([`View::auto`]).

mod dot;
mod layout;
mod scene;
mod svg;

pub use scene::JOB_VIEW_ABOVE;

use crate::base::hostlist;
use crate::plan::{DevicePlan, IbPlan, Plan};
use crate::topology::Topology;
use serde_json::json;
use std::fmt::Write;

/// What a picture (SVG or DOT) shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The whole fabric; with a plan, its subgraph, ports and nodes in red.
    Full,
    /// Only the plan's switches and links plus one ring of context (the switches adjacent to
    /// them, grey, with their links to them); a caption says what was left out. Without a plan
    /// it is the whole fabric.
    Job,
}

impl View {
    /// [`View::Job`] for a plan on a fabric of more than [`JOB_VIEW_ABOVE`] switches, otherwise
    /// [`View::Full`].
    pub fn auto(t: &Topology, plan: Option<&Plan>) -> View {
        if plan.is_some() && t.switches.len() > JOB_VIEW_ABOVE {
            View::Job
        } else {
            View::Full
        }
    }
}

/// A view name that is neither `full` nor `job`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown view `{0}`; use full or job")]
pub struct UnknownView(pub String);

impl std::str::FromStr for View {
    type Err = UnknownView;

    /// `full` or `job`, as a `--view` flag would take them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(View::Full),
            "job" => Ok(View::Job),
            _ => Err(UnknownView(s.to_string())),
        }
    }
}

/// An SVG of the fabric in the view [`View::auto`] picks.
pub fn svg(t: &Topology, plan: Option<&Plan>) -> String {
    svg_view(t, plan, View::auto(t, plan))
}

/// An SVG of the fabric in the given view, drawn top-down (core at the top).
pub fn svg_view(t: &Topology, plan: Option<&Plan>, view: View) -> String {
    svg::render(&scene::Scene::new(t, plan, view))
}

/// Graphviz DOT of the fabric in the view [`View::auto`] picks.
pub fn dot(t: &Topology, plan: Option<&Plan>) -> String {
    dot_view(t, plan, View::auto(t, plan))
}

/// Graphviz DOT of the fabric in the given view (`rankdir=TB`, core at the top).
pub fn dot_view(t: &Topology, plan: Option<&Plan>, view: View) -> String {
    dot::render(&scene::Scene::new(t, plan, view))
}

/// A setting as the topology file spells it (`tagged`, `refuse`).
fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

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
        partitions_text(&mut o, ib);
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(o, "\nwarnings:");
        for w in &plan.warnings {
            let _ = writeln!(o, "  - {w}");
        }
    }
    o
}

/// The partitions.conf change as a unified diff.
fn partitions_text(o: &mut String, ib: &IbPlan) {
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
    summary_text(&mut o, t);
    switches_text(&mut o, t);
    links_text(&mut o, t);
    o
}

/// The topology's name, counts and VLAN and PKey pools.
fn summary_text(o: &mut String, t: &Topology) {
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
                "  VLAN pool {} (usable {}, {} VLANs), node ports {}, open ports: {}",
                e.vlan_pool.display(false),
                e.usable().display(false),
                e.usable().len(),
                word(&e.node_port_mode),
                word(&e.open_ports)
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
}

/// One row per switch: name, driver, address and its nodes as a host list.
fn switches_text(o: &mut String, t: &Topology) {
    let by_switch = t.nodes_by_switch();
    let _ = writeln!(o, "\nswitches:");
    // Columns as wide as their longest entry: long names do not shift the rows.
    let width =
        |f: &dyn Fn(&crate::topology::Switch) -> usize| t.switches.iter().map(f).max().unwrap_or(0);
    let (wn, wd, wa) = (
        width(&|s| s.name.chars().count()),
        width(&|s| s.driver.chars().count()),
        width(&|s| s.address.chars().count()),
    );
    for (i, s) in t.switches.iter().enumerate() {
        let names: Vec<&str> = by_switch[i].iter().map(|n| n.name.as_str()).collect();
        let nodes = if names.is_empty() {
            "-".to_string()
        } else {
            format!("{} ({})", hostlist::fold(&names), names.len())
        };
        let _ = writeln!(
            o,
            "  {:<wn$}  {:<wd$}  {:<wa$}  nodes: {nodes}",
            s.name, s.driver, s.address
        );
    }
}

/// The links with their cost and state, then the gateways if there are any.
fn links_text(o: &mut String, t: &Topology) {
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
