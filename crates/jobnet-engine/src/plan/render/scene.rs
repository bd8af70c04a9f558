//! What a picture shows, shared by the SVG and DOT renderers: which switches, links and gateways
//! are drawn, which belong to the job, which are only context, the layer of every switch and the
//! words of the title and caption.
//!
//! Layers are derived from the graph: switches that carry nodes or gateways are the bottom layer
//! (0); every other switch sits one layer above its nearest lower neighbour (hop distance over
//! all links, down ones included, because a picture shows the fabric as cabled). Pictures are
//! drawn top-down, so the highest layer (the core) is at the top.
//!
//! The job view draws the plan's switches and links plus one ring of context: switches adjacent
//! to the subgraph (greyed) with their links to it. It exists for fabrics too big to read whole.

use super::View;
use crate::base::hostlist;
use crate::plan::Plan;
use crate::topology::{Link, Node, Topology};
use std::collections::{BTreeSet, VecDeque};

/// A plan on a fabric with more switches than this is drawn as a job view by default.
pub const JOB_VIEW_ABOVE: usize = 40;

/// How much the job view leaves out of the fabric.
pub struct LeftOut {
    pub switches: usize,
    pub links: usize,
    pub nodes: usize,
    pub gateways: usize,
}

/// A link that is drawn: its index into `Topology::links` and the switch indexes of its ends.
/// A link naming a switch the topology does not have (a topology changed after it was validated)
/// has no place in a picture and is not drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drawn {
    pub i: usize,
    pub a: usize,
    pub b: usize,
}

/// One picture's content; every `Vec` indexed by switch is as long as `Topology::switches`.
pub struct Scene<'a> {
    pub t: &'a Topology,
    pub plan: Option<&'a Plan>,
    /// Drawn at all.
    pub shown: Vec<bool>,
    /// In the job's subgraph (red).
    pub hot: Vec<bool>,
    /// Shown only as the ring around the job (grey).
    pub context: Vec<bool>,
    /// Layer of each shown switch, 0 = bottom, compacted over the shown switches.
    pub layer: Vec<usize>,
    pub layers: usize,
    /// The links drawn, in file order.
    pub links: Vec<Drawn>,
    /// Per link of the topology: carries the job's VLAN.
    pub hot_link: Vec<bool>,
    /// Indexes into `Topology::gateways` of the gateways drawn.
    pub gateways: Vec<usize>,
    /// Nodes per switch, in file order.
    pub by_switch: Vec<Vec<&'a Node>>,
    pub job_nodes: BTreeSet<&'a str>,
    /// `Some` in the job view.
    pub left_out: Option<LeftOut>,
}

impl<'a> Scene<'a> {
    /// The content of `view`; [`View::Job`] without a plan (or with a plan that touches no
    /// switch) falls back to the whole fabric.
    pub fn new(t: &'a Topology, plan: Option<&'a Plan>, view: View) -> Self {
        let n = t.switches.len();
        let by_switch = t.nodes_by_switch();
        let job_nodes: BTreeSet<&str> = plan
            .map(|p| p.nodes.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let mut hot = vec![false; n];
        let mut hot_link = vec![false; t.links.len()];
        if let Some(p) = plan {
            for s in p.ethernet.switches.iter().filter_map(|s| t.switch_idx(s)) {
                hot[s] = true;
            }
            for (i, l) in t.links.iter().enumerate() {
                hot_link[i] = p
                    .ethernet
                    .links
                    .iter()
                    .any(|e| (e.a == l.a && e.b == l.b) || (e.a == l.b && e.b == l.a));
            }
        }
        let focus = match (view, plan) {
            (View::Job, Some(p)) => job_focus(t, p, &hot),
            _ => Vec::new(),
        };
        let (shown, context) = if focus.is_empty() {
            (vec![true; n], vec![false; n])
        } else {
            ring(t, &focus)
        };
        let is_focus = |s: usize| shown[s] && !context[s];
        let links: Vec<Drawn> = (0..t.links.len())
            .filter_map(|i| ends(t, &t.links[i]).map(|(a, b)| Drawn { i, a, b }))
            .filter(|&Drawn { a, b, .. }| {
                shown[a] && shown[b] && (focus.is_empty() || is_focus(a) || is_focus(b))
            })
            .collect();
        let gateways: Vec<usize> = (0..t.gateways.len())
            .filter(|&g| {
                t.switch_idx(&t.gateways[g].ethernet_port.switch)
                    .is_some_and(|s| shown[s])
            })
            .collect();
        let (layer, layers) = compact(&layers(t, &by_switch), &shown);
        let left_out = (!focus.is_empty()).then(|| LeftOut {
            switches: shown.iter().filter(|s| !**s).count(),
            links: t.links.len() - links.len(),
            nodes: (0..n)
                .filter(|&s| !shown[s])
                .map(|s| by_switch[s].len())
                .sum(),
            gateways: t.gateways.len() - gateways.len(),
        });
        Scene {
            t,
            plan,
            shown,
            hot,
            context,
            layer,
            layers,
            links,
            hot_link,
            gateways,
            by_switch,
            job_nodes,
            left_out,
        }
    }

    /// Whether gateway `g` (index into `Topology::gateways`) is the plan's.
    pub fn gateway_used(&self, g: usize) -> bool {
        self.plan
            .and_then(|p| p.gateway.as_ref())
            .is_some_and(|d| d.name == self.t.gateways[g].name)
    }

    /// All node names on switch `s` and the job's among them, folded.
    pub fn hostlists(&self, s: usize) -> (String, Option<String>) {
        let all: Vec<&str> = self.by_switch[s].iter().map(|n| n.name.as_str()).collect();
        let mine: Vec<&str> = all
            .iter()
            .copied()
            .filter(|n| self.job_nodes.contains(n))
            .collect();
        let job = (!mine.is_empty()).then(|| hostlist::fold(&mine));
        (hostlist::fold(&all), job)
    }

    /// One line saying what the picture is.
    pub fn title(&self) -> String {
        let t = self.t;
        match self.plan {
            Some(p) => format!(
                "{}: job {} — VLAN {}{}, {}, {}, cost {}{}",
                t.name,
                p.job,
                p.vlan.map_or("none".to_string(), |v| v.to_string()),
                p.pkey.map(|k| format!(", PKey {k}")).unwrap_or_default(),
                plural(p.ethernet.switches.len(), "switch", "switches"),
                plural(p.ethernet.links.len(), "link", "links"),
                p.ethernet.cost,
                p.gateway
                    .as_ref()
                    .map(|g| format!(", gateway {}", g.name))
                    .unwrap_or_default()
            ),
            None => format!(
                "{}: {}, {}, {}{}",
                t.name,
                plural(t.switches.len(), "switch", "switches"),
                plural(t.links.len(), "link", "links"),
                plural(t.nodes.len(), "node", "nodes"),
                if t.gateways.is_empty() {
                    String::new()
                } else {
                    format!(", {}", plural(t.gateways.len(), "gateway", "gateways"))
                }
            ),
        }
    }

    /// In the job view, what was left out; `None` for the whole fabric.
    pub fn caption(&self) -> Option<String> {
        let l = self.left_out.as_ref()?;
        let ring = self.context.iter().filter(|c| **c).count();
        let mut parts = vec![
            plural(l.switches, "switch", "switches"),
            plural(l.links, "link", "links"),
            plural(l.nodes, "node", "nodes"),
        ];
        if l.gateways > 0 {
            parts.push(plural(l.gateways, "gateway", "gateways"));
        }
        Some(format!(
            "job view: the job's switches and {} (grey); not drawn: {} of {}",
            plural(ring, "neighbouring switch", "neighbouring switches"),
            parts.join(", "),
            self.t.name
        ))
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Switch indexes of both ends of a link; `None` when it names a switch the topology does not
/// have.
fn ends(t: &Topology, l: &Link) -> Option<(usize, usize)> {
    Some((t.switch_idx(&l.a.switch)?, t.switch_idx(&l.b.switch)?))
}

/// The switches a job view centres on: the subgraph, the switches of the job's nodes (a job
/// without a VLAN has no subgraph) and the gateway's switch.
fn job_focus(t: &Topology, p: &Plan, hot: &[bool]) -> Vec<usize> {
    let mut focus: BTreeSet<usize> = (0..hot.len()).filter(|&s| hot[s]).collect();
    for n in p.nodes.iter().filter_map(|n| t.node(n)) {
        if let Some(s) = n.port.as_ref().and_then(|p| t.switch_idx(&p.switch)) {
            focus.insert(s);
        }
    }
    if let Some(g) = p.gateway.as_ref().and_then(|g| t.gateway(&g.name)) {
        focus.extend(t.switch_idx(&g.ethernet_port.switch));
    }
    focus.into_iter().collect()
}

/// (shown, context): the focus plus every switch one link away from it.
fn ring(t: &Topology, focus: &[usize]) -> (Vec<bool>, Vec<bool>) {
    let n = t.switches.len();
    let mut shown = vec![false; n];
    for &s in focus {
        shown[s] = true;
    }
    let mut context = vec![false; n];
    for (a, b) in t.links.iter().filter_map(|l| ends(t, l)) {
        for (x, y) in [(a, b), (b, a)] {
            if shown[x] && focus.binary_search(&y).is_err() {
                context[y] = true;
            }
        }
    }
    for s in 0..n {
        shown[s] |= context[s];
    }
    (shown, context)
}

/// Layer of every switch of the whole fabric (0 = bottom).
fn layers(t: &Topology, by_switch: &[Vec<&Node>]) -> Vec<usize> {
    let n = t.switches.len();
    let mut layer = vec![usize::MAX; n];
    let mut queue = VecDeque::new();
    let gw: BTreeSet<&str> = t
        .gateways
        .iter()
        .map(|g| g.ethernet_port.switch.as_str())
        .collect();
    for s in 0..n {
        if !by_switch[s].is_empty() || gw.contains(t.switches[s].name.as_str()) {
            layer[s] = 0;
            queue.push_back(s);
        }
    }
    let mut adj = vec![Vec::new(); n];
    for (a, b) in t.links.iter().filter_map(|l| ends(t, l)) {
        adj[a].push(b);
        adj[b].push(a);
    }
    while let Some(s) = queue.pop_front() {
        for &o in &adj[s] {
            if layer[o] == usize::MAX {
                layer[o] = layer[s] + 1;
                queue.push_back(o);
            }
        }
    }
    // Switches no node can reach (or a fabric without nodes on switches) go on top.
    let top = layer
        .iter()
        .copied()
        .filter(|&r| r != usize::MAX)
        .max()
        .map_or(0, |m| m + 1);
    for r in layer.iter_mut().filter(|r| **r == usize::MAX) {
        *r = top;
    }
    layer
}

/// Renumbers the layers of the shown switches 0.. without gaps.
fn compact(layer: &[usize], shown: &[bool]) -> (Vec<usize>, usize) {
    let used: BTreeSet<usize> = (0..layer.len())
        .filter(|&s| shown[s])
        .map(|s| layer[s])
        .collect();
    let renumber = |l: usize| used.iter().position(|&u| u == l).unwrap_or(0);
    (
        layer.iter().map(|&l| renumber(l)).collect(),
        used.len().max(1),
    )
}

/// Compares names so that `leaf9` sorts before `leaf10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(s: &str) -> Vec<(bool, u128, &str)> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.chars().next().is_some_and(|c| c.is_ascii_digit());
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            let (part, tail) = rest.split_at(end);
            let num = if digits {
                part.parse().unwrap_or(u128::MAX)
            } else {
                0
            };
            out.push((digits, num, part));
            rest = tail;
        }
        out
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}
