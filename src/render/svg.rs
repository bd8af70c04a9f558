//! A self-contained SVG picture of the fabric, with a job's subgraph highlighted.
//!
//! Layout is layered, like a hand-drawn fabric diagram: switches that carry nodes or gateways
//! form the bottom row; every other switch sits one row above its nearest lower neighbour (hop
//! distance). Rows are ordered by the mean position of each switch's lower neighbours, which
//! untangles the usual leaf/spine and fat-tree drawings. No Graphviz needed.

use crate::hostlist;
use crate::plan::Plan;
use crate::topology::{SwitchGraph, Topology};
use petgraph::visit::EdgeRef;
use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write;

const BOX_W: f64 = 128.0;
const BOX_H: f64 = 38.0;
const GAP_X: f64 = 24.0;
const ROW_H: f64 = 130.0;
const MARGIN: f64 = 40.0;
/// Room for the title, the legend and arcs between switches of the top row.
const HEADER: f64 = 100.0;
const RED: &str = "#d62728";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Row of every switch (0 = bottom).
fn rows(t: &Topology, g: &SwitchGraph) -> Vec<usize> {
    let n = t.switches.len();
    let mut row = vec![usize::MAX; n];
    let mut queue = VecDeque::new();
    let by_switch = t.nodes_by_switch();
    let gw: BTreeSet<&str> = t
        .gateways
        .iter()
        .map(|g| g.ethernet_port.switch.as_str())
        .collect();
    for s in 0..n {
        if !by_switch[s].is_empty() || gw.contains(t.switches[s].name.as_str()) {
            row[s] = 0;
            queue.push_back(s);
        }
    }
    // All links count for drawing, also those that are down.
    let mut adj = vec![Vec::new(); n];
    for l in &t.links {
        if let (Some(a), Some(b)) = (t.switch_idx(&l.a.switch), t.switch_idx(&l.b.switch)) {
            adj[a].push(b);
            adj[b].push(a);
        }
    }
    let _ = g; // the usable graph is not needed for drawing; links are drawn as written
    while let Some(s) = queue.pop_front() {
        for &o in &adj[s] {
            if row[o] == usize::MAX {
                row[o] = row[s] + 1;
                queue.push_back(o);
            }
        }
    }
    let top = row
        .iter()
        .copied()
        .filter(|&r| r != usize::MAX)
        .max()
        .map_or(0, |m| m + 1);
    for r in row.iter_mut().filter(|r| **r == usize::MAX) {
        *r = top;
    }
    row
}

/// An SVG of the fabric; with a plan, its switches, links and nodes are highlighted.
pub fn svg(t: &Topology, plan: Option<&Plan>) -> String {
    let g = SwitchGraph::build(t);
    let row = rows(t, &g);
    let nrows = row.iter().copied().max().map_or(1, |m| m + 1);
    let mut by_row: Vec<Vec<usize>> = vec![Vec::new(); nrows];
    let mut order: Vec<usize> = (0..t.switches.len()).collect();
    order.sort_by(|&a, &b| t.switches[a].name.cmp(&t.switches[b].name));
    for s in order {
        by_row[row[s]].push(s);
    }
    // Order upper rows by the mean x of their lower neighbours.
    let mut pos = vec![0.0f64; t.switches.len()];
    for (i, &s) in by_row[0].iter().enumerate() {
        pos[s] = i as f64;
    }
    let mut adj = vec![Vec::new(); t.switches.len()];
    for e in g.graph.edge_references() {
        let (a, b) = (g.switch(e.source()), g.switch(e.target()));
        adj[a].push(b);
        adj[b].push(a);
    }
    for r in 1..nrows {
        let mut keyed: Vec<(f64, String, usize)> = by_row[r]
            .iter()
            .map(|&s| {
                let below: Vec<f64> = adj[s]
                    .iter()
                    .filter(|&&o| row[o] < r)
                    .map(|&o| pos[o])
                    .collect();
                let key = if below.is_empty() {
                    f64::MAX
                } else {
                    below.iter().sum::<f64>() / below.len() as f64
                };
                (key, t.switches[s].name.clone(), s)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        by_row[r] = keyed.into_iter().map(|k| k.2).collect();
        let scale = by_row[0].len().max(1) as f64 / by_row[r].len().max(1) as f64;
        for (i, &s) in by_row[r].iter().enumerate() {
            pos[s] = (i as f64 + 0.5) * scale - 0.5;
        }
    }
    let widest = by_row.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let title = match plan {
        Some(p) => format!(
            "{}: job {} — VLAN {}{}, {} switches, {} links, cost {}",
            t.name,
            p.job,
            p.vlan.map_or("none".to_string(), |v| v.to_string()),
            p.pkey.map(|k| format!(", PKey {k}")).unwrap_or_default(),
            p.ethernet.switches.len(),
            p.ethernet.links.len(),
            p.ethernet.cost
        ),
        None => format!(
            "{}: {} switches, {} links, {} nodes",
            t.name,
            t.switches.len(),
            t.links.len(),
            t.nodes.len()
        ),
    };
    // Titles are bold 18px: about 11px per character.
    let width = (widest * (BOX_W + GAP_X) + 2.0 * MARGIN)
        .max(title.chars().count() as f64 * 11.0 + 2.0 * MARGIN)
        .max(520.0);
    let height = MARGIN
        + 50.0
        + (nrows - 1) as f64 * ROW_H
        + BOX_H / 2.0
        + 60.0
        + t.gateways.len() as f64 * 18.0
        + MARGIN;
    let mut xy = vec![(0.0, 0.0); t.switches.len()];
    for (r, members) in by_row.iter().enumerate() {
        let n = members.len().max(1) as f64;
        let step = (width - 2.0 * MARGIN) / n;
        for (i, &s) in members.iter().enumerate() {
            let x = MARGIN + step * (i as f64 + 0.5);
            let y = MARGIN + HEADER + (nrows - 1 - r) as f64 * ROW_H;
            xy[s] = (x, y);
        }
    }

    let super::Highlight {
        in_tree,
        tree_links,
        job_nodes,
    } = super::Highlight::of(plan);

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        o,
        r#"<text x="{MARGIN}" y="{:.0}" font-size="18" font-weight="bold">{}</text>"#,
        MARGIN,
        esc(&title)
    );
    let _ = writeln!(
        o,
        r##"<text x="{MARGIN}" y="{:.0}" font-size="12" fill="#555">red: the job's subgraph and nodes · dashed: link down · thick grey: LAG</text>"##,
        MARGIN + 20.0
    );
    // Links first, so boxes cover their ends.
    for l in &t.links {
        let (Some(a), Some(b)) = (t.switch_idx(&l.a.switch), t.switch_idx(&l.b.switch)) else {
            continue;
        };
        let ((x1, y1), (x2, y2)) = (xy[a], xy[b]);
        let hot = tree_links.contains(&(l.a.to_string(), l.b.to_string()));
        let (color, w) = if hot {
            (RED, 3.5)
        } else {
            ("#9aa3ad", if l.lag { 3.0 } else { 1.2 })
        };
        let dash = if l.up {
            ""
        } else {
            r#" stroke-dasharray="6 4""#
        };
        let tip = format!(
            "<title>{} -- {} (cost {}{}{})</title>",
            esc(&l.a.to_string()),
            esc(&l.b.to_string()),
            l.cost,
            if l.lag { ", lag" } else { "" },
            if l.up { "" } else { ", down" }
        );
        if row[a] == row[b] {
            // Same row: an arc above the boxes, so it does not run behind the boxes between.
            let (ya, lift) = (y1 - BOX_H / 2.0, (28.0 + (x2 - x1).abs() * 0.08).min(40.0));
            let _ = writeln!(
                o,
                r#"<path d="M {x1:.1} {ya:.1} Q {:.1} {:.1} {x2:.1} {ya:.1}" fill="none" stroke="{color}" stroke-width="{w}"{dash}>{tip}</path>"#,
                (x1 + x2) / 2.0,
                ya - lift
            );
        } else {
            let _ = writeln!(
                o,
                r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{color}" stroke-width="{w}"{dash}>{tip}</line>"#
            );
        }
    }
    let by_switch = t.nodes_by_switch();
    for (s, sw) in t.switches.iter().enumerate() {
        let (x, y) = xy[s];
        let hot = in_tree.contains(sw.name.as_str());
        let (fill, stroke, sw_w) = if hot {
            ("#ffd8d8", RED, 2.5)
        } else {
            ("#eef2fb", "#5b6b7f", 1.0)
        };
        let _ = writeln!(
            o,
            r#"<g><title>{} ({}, {})</title><rect x="{:.1}" y="{:.1}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{sw_w}"/>"#,
            esc(&sw.name),
            esc(&sw.driver),
            esc(&sw.address),
            x - BOX_W / 2.0,
            y - BOX_H / 2.0
        );
        let _ = writeln!(
            o,
            r##"<text x="{x:.1}" y="{:.1}" font-size="13" text-anchor="middle" font-weight="bold">{}</text><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">{}</text></g>"##,
            y - 2.0,
            esc(&sw.name),
            y + 12.0,
            esc(&sw.driver)
        );
        if !by_switch[s].is_empty() {
            let all: Vec<&str> = by_switch[s].iter().map(|n| n.name.as_str()).collect();
            let mine: Vec<&str> = all
                .iter()
                .copied()
                .filter(|n| job_nodes.contains(n))
                .collect();
            let ny = y + BOX_H / 2.0 + 16.0;
            let _ = writeln!(
                o,
                r##"<text x="{x:.1}" y="{ny:.1}" font-size="11" text-anchor="middle" fill="#333">{}</text>"##,
                esc(&hostlist::fold(&all))
            );
            if !mine.is_empty() {
                let _ = writeln!(
                    o,
                    r#"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="{RED}" font-weight="bold">job: {}</text>"#,
                    ny + 14.0,
                    esc(&hostlist::fold(&mine))
                );
            }
        }
    }
    for (i, gw) in t.gateways.iter().enumerate() {
        let Some(s) = t.switch_idx(&gw.ethernet_port.switch) else {
            continue;
        };
        let (x, y) = xy[s];
        let gy = y + BOX_H / 2.0 + 52.0 + i as f64 * 18.0;
        let used = plan
            .and_then(|p| p.gateway.as_ref())
            .is_some_and(|d| d.name == gw.name);
        let color = if used { RED } else { "#5b6b7f" };
        let _ = writeln!(
            o,
            r#"<text x="{x:.1}" y="{gy:.1}" font-size="11" text-anchor="middle" fill="{color}">⬡ gateway {} ({})</text>"#,
            esc(&gw.name),
            esc(&gw.ethernet_port.port)
        );
    }
    o.push_str("</svg>\n");
    o
}
