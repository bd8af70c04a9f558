//! Graphviz DOT of a [`Scene`], drawn top-down (`rankdir=TB`) with the core at the top.
//!
//! Each switch is an HTML-like table: the ports of its links to higher layers (and to its own
//! layer) in a row above its name, its nodes folded into a hostlist, the ports to lower layers
//! and gateways in a row below. Every link runs from the port cell at one end to the port cell
//! at the other, so port names never overlap however many links meet at a switch; the link's
//! cost (and `lag`, `down`) is its edge label, which dot lays out without overlaps. One
//! `rank=same` group per layer keeps the layers in rows. Gateways are hexagons wired to their
//! Ethernet port's cell.

use super::scene::{natural_cmp, Drawn, Scene};
use crate::base::types::PortRef;
use std::collections::BTreeMap;
use std::fmt::Write;

const RED: &str = "#d62728";

/// A quoted DOT string; line breaks become `\n` (centred lines).
pub fn dot_id(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

fn html(s: &str) -> String {
    super::svg::esc(s)
}

/// Which row of its switch's table a port sits in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Up,
    Down,
}

/// Port cells per switch: (side, port name) → cell id.
struct Ports(Vec<BTreeMap<(Side, String), String>>);

impl Ports {
    fn of(sc: &Scene) -> Self {
        let mut ports = vec![BTreeMap::new(); sc.t.switches.len()];
        let mut add = |s: usize, side: Side, port: &str| {
            let n = ports[s].len();
            let cell: &mut BTreeMap<(Side, String), String> = &mut ports[s];
            cell.entry((side, port.to_string()))
                .or_insert_with(|| format!("p{n}"));
        };
        for &Drawn { i, a, b } in &sc.links {
            let l = &sc.t.links[i];
            let (sa, sb) = sides(sc, a, b);
            add(a, sa, &l.a.port);
            add(b, sb, &l.b.port);
        }
        for &g in &sc.gateways {
            let p = &sc.t.gateways[g].ethernet_port;
            if let Some(s) = sc.t.switch_idx(&p.switch) {
                add(s, Side::Down, &p.port);
            }
        }
        Ports(ports)
    }

    /// `"switch":"pN":n` for a link end.
    fn end(&self, s: usize, side: Side, port: &PortRef) -> String {
        let cell = &self.0[s][&(side, port.port.clone())];
        let compass = if side == Side::Up { "n" } else { "s" };
        format!("{}:{cell}:{compass}", dot_id(&port.switch))
    }
}

/// The sides of a link's two ends: the higher switch uses its lower row and vice versa; both
/// ends of a link within a layer use the upper row.
fn sides(sc: &Scene, a: usize, b: usize) -> (Side, Side) {
    use std::cmp::Ordering::*;
    match sc.layer[a].cmp(&sc.layer[b]) {
        Greater => (Side::Down, Side::Up),
        Less => (Side::Up, Side::Down),
        Equal => (Side::Up, Side::Up),
    }
}

/// The DOT text of a scene.
pub fn render(sc: &Scene) -> String {
    let mut o = String::new();
    let mut label = sc.title();
    if let Some(c) = sc.caption() {
        label = format!("{label}\n{c}");
    }
    let _ = writeln!(
        o,
        "graph {} {{\n  graph [rankdir=TB, label={}, labelloc=t, fontname=\"Helvetica\", nodesep=0.35, ranksep=0.9];\n  node [shape=plain, fontname=\"Helvetica\"];\n  edge [color=\"#999999\", fontname=\"Helvetica\", fontsize=9, fontcolor=\"#555555\"];",
        dot_id(&sc.t.name),
        dot_id(&label)
    );
    let ports = Ports::of(sc);
    for s in (0..sc.t.switches.len()).filter(|&s| sc.shown[s]) {
        switch(&mut o, sc, &ports, s);
    }
    ranks(&mut o, sc);
    for &d in &sc.links {
        link(&mut o, sc, &ports, d);
    }
    for &g in &sc.gateways {
        gateway(&mut o, sc, &ports, g);
    }
    o.push_str("}\n");
    o
}

/// One `rank=same` group per layer, the top layer first.
fn ranks(o: &mut String, sc: &Scene) {
    for layer in (0..sc.layers).rev() {
        let members: Vec<String> = (0..sc.t.switches.len())
            .filter(|&s| sc.shown[s] && sc.layer[s] == layer)
            .map(|s| dot_id(&sc.t.switches[s].name))
            .collect();
        if !members.is_empty() {
            let _ = writeln!(o, "  {{rank=same; {};}}", members.join("; "));
        }
    }
}

fn switch(o: &mut String, sc: &Scene, ports: &Ports, s: usize) {
    let sw = &sc.t.switches[s];
    let (bg, border, ink) = if sc.hot[s] {
        ("#ffd8d8", RED, "#111111")
    } else if sc.context[s] {
        ("#f4f5f7", "#b8bec6", "#8a9099")
    } else {
        ("#eef2fb", "#5b6b7f", "#111111")
    };
    let mut rows = Vec::new();
    if let Some(r) = port_row(sc, ports, s, Side::Up) {
        rows.push(r);
    }
    rows.push(format!(
        "<tr><td><font color=\"{ink}\"><b>{}</b></font><br/><font point-size=\"9\" color=\"#666666\">{}</font></td></tr>",
        html(&sw.name),
        html(&sw.driver)
    ));
    if !sc.by_switch[s].is_empty() {
        let (all, job) = sc.hostlists(s);
        rows.push(format!(
            "<tr><td><font point-size=\"10\" color=\"{ink}\">{}</font></td></tr>",
            html(&all)
        ));
        if let Some(j) = job {
            rows.push(format!(
                "<tr><td><font point-size=\"10\" color=\"{RED}\"><b>job: {}</b></font></td></tr>",
                html(&j)
            ));
        }
    }
    if let Some(r) = port_row(sc, ports, s, Side::Down) {
        rows.push(r);
    }
    let width = if sc.hot[s] { 2 } else { 1 };
    let _ = writeln!(
        o,
        "  {} [tooltip={}, label=<<table border=\"{width}\" cellborder=\"0\" cellspacing=\"0\" cellpadding=\"3\" style=\"rounded\" bgcolor=\"{bg}\" color=\"{border}\">{}</table>>];",
        dot_id(&sw.name),
        dot_id(&format!("{} ({}, {})", sw.name, sw.driver, sw.address)),
        rows.join("")
    );
}

/// A row of port cells in a nested table (so it centres under the name), the job's in red.
fn port_row(sc: &Scene, ports: &Ports, s: usize, side: Side) -> Option<String> {
    let mut mine: Vec<(&String, &String)> = ports.0[s]
        .iter()
        .filter(|((sd, _), _)| *sd == side)
        .map(|((_, port), id)| (port, id))
        .collect();
    mine.sort_by(|a, b| natural_cmp(a.0, b.0));
    let cells: Vec<String> = mine
        .into_iter()
        .map(|(port, id)| {
            let color = if port_hot(sc, s, port) { RED } else { "#555555" };
            format!(
                "<td port=\"{id}\" border=\"1\" color=\"#c9ced6\"><font point-size=\"8\" color=\"{color}\">{}</font></td>",
                html(port)
            )
        })
        .collect();
    (!cells.is_empty()).then(|| {
        format!(
            "<tr><td><table border=\"0\" cellspacing=\"2\" cellpadding=\"1\"><tr>{}</tr></table></td></tr>",
            cells.concat()
        )
    })
}

/// Whether a port of switch `s` carries the job's VLAN (a link of the subgraph, or the port of
/// the job's gateway).
fn port_hot(sc: &Scene, s: usize, port: &str) -> bool {
    let name = &sc.t.switches[s].name;
    let on = |p: &PortRef| &p.switch == name && p.port == port;
    sc.links
        .iter()
        .any(|&Drawn { i, .. }| sc.hot_link[i] && (on(&sc.t.links[i].a) || on(&sc.t.links[i].b)))
        || sc
            .gateways
            .iter()
            .any(|&g| sc.gateway_used(g) && on(&sc.t.gateways[g].ethernet_port))
}

/// One link, written from its higher end so dot ranks it top-down.
fn link(o: &mut String, sc: &Scene, ports: &Ports, Drawn { i, a, b }: Drawn) {
    let l = &sc.t.links[i];
    let (sa, sb) = sides(sc, a, b);
    let (ea, eb) = (ports.end(a, sa, &l.a), ports.end(b, sb, &l.b));
    let (tail, head) = if sc.layer[a] >= sc.layer[b] {
        (ea, eb)
    } else {
        (eb, ea)
    };
    let mut label = format!("cost {}", l.cost);
    let mut attrs = Vec::new();
    if l.lag {
        label.push_str(", lag");
    }
    if !l.up {
        label.push_str(", down");
        attrs.push("style=dashed".to_string());
    }
    let width = match (sc.hot_link[i], l.lag) {
        (true, true) => "4.5",
        (true, false) | (false, true) => "3",
        (false, false) => "1",
    };
    attrs.push(format!("penwidth={width}"));
    if sc.hot_link[i] {
        attrs.push(format!("color=\"{RED}\", fontcolor=\"{RED}\""));
    } else if sc.context[a] || sc.context[b] {
        attrs.push("color=\"#c2c7cd\"".to_string());
    }
    let tip = format!("{} -- {} ({label})", l.a, l.b);
    attrs.insert(
        0,
        format!("label={}, tooltip={}", dot_id(&label), dot_id(&tip)),
    );
    let _ = writeln!(o, "  {tail} -- {head} [{}];", attrs.join(", "));
}

fn gateway(o: &mut String, sc: &Scene, ports: &Ports, g: usize) {
    let gw = &sc.t.gateways[g];
    let Some(s) = sc.t.switch_idx(&gw.ethernet_port.switch) else {
        return;
    };
    let hl = if sc.gateway_used(g) {
        format!(", color=\"{RED}\", penwidth=2")
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "  {} [shape=hexagon, style=filled, fillcolor=\"#f3eefb\", fontsize=10, margin=\"0.05,0.02\", label={}, tooltip={}{hl}];",
        dot_id(&gw.name),
        dot_id(&format!("{}\n{}", gw.name, gw.driver)),
        dot_id(&format!(
            "gateway {} ({}, {}), ethernet {}, infiniband {}",
            gw.name, gw.driver, gw.address, gw.ethernet_port, gw.ib_guid
        ))
    );
    let _ = writeln!(
        o,
        "  {} -- {} [tooltip={}{hl}];",
        ports.end(s, Side::Down, &gw.ethernet_port),
        dot_id(&gw.name),
        dot_id(&format!("{} -- gateway {}", gw.ethernet_port, gw.name))
    );
}
