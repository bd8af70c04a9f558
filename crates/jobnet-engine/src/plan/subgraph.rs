//! The minimal loop-free subgraph joining a job's switches: a Steiner tree over the switch graph.
//!
//! Exact Steiner trees are NP-hard, so jobnet uses the KMB heuristic (Kou, Markowsky, Berman) in
//! Mehlhorn's form, which has the same 2·(1−1/ℓ) bound but needs only one shortest-path search:
//! 1. one multi-source Dijkstra (petgraph's `dijkstra` from a virtual source joined to every
//!    terminal at cost 0) gives each switch its nearest terminal (its Voronoi region);
//! 2. every link between two regions proposes a terminal-to-terminal path; petgraph's
//!    `min_spanning_tree` over those proposals picks the paths to use;
//! 3. the union of the picked paths gets a second `min_spanning_tree` (it may contain a cycle),
//!    and leaves that are not terminals are pruned until none is left.
//!
//! As a safety net the shortest-path tree from the first terminal is built too and the cheaper
//! of the two wins, so the result never costs more than that union of shortest paths. Then a
//! local search repairs KMB's known weakness with cost ties (a two-spine fabric can get both
//! spines where one suffices): the tree is replaced by the pruned MST of the subgraph induced by
//! its switches, and each non-terminal switch is tried for removal, as long as the cost strictly
//! drops. Every
//! choice is broken by name (vertex and edge order come from names, see [`SwitchGraph`]): the
//! same topology and nodes always give the same tree. Link costs are at least 1, which keeps
//! every predecessor strictly closer to its terminal.

use crate::topology::SwitchGraph;
use petgraph::algo::{dijkstra, min_spanning_tree};
use petgraph::data::Element;
use petgraph::graph::{EdgeIndex, NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use std::collections::{BTreeMap, BTreeSet};

/// A tree in the switch graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// Switch indexes, in name order.
    pub switches: Vec<usize>,
    /// Link indexes (into `Topology::links`), in name order of their switch pairs.
    pub links: Vec<usize>,
    pub cost: u64,
}

/// Terminals that no usable path joins, grouped by the part of the fabric they are in (largest
/// group first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the job's switches are in {} separate parts of the fabric", .groups.len())]
pub struct Disconnected {
    pub groups: Vec<Vec<usize>>,
}

/// Shortest distances from a set of sources plus, for every other reached vertex, the edge
/// towards its predecessor (lowest-named neighbour among the equally short ones).
struct Search {
    dist: Vec<u64>,
    pred: Vec<Option<(NodeIndex, EdgeIndex)>>,
}

fn search(g: &SwitchGraph, sources: &[NodeIndex]) -> Search {
    let n = g.graph.node_count();
    let mut h = g.graph.map(|_, &s| s, |_, e| e.cost);
    let src = h.add_node(usize::MAX);
    for &t in sources {
        h.add_edge(src, t, 0);
    }
    let found = dijkstra(&h, src, None, |e| *e.weight());
    let mut dist = vec![u64::MAX; n];
    for (v, d) in found {
        if v != src {
            dist[v.index()] = d;
        }
    }
    let mut pred = vec![None; n];
    for v in g.graph.node_indices() {
        let dv = dist[v.index()];
        if dv == 0 || dv == u64::MAX {
            continue;
        }
        pred[v.index()] = g
            .graph
            .edges(v)
            .filter(|e| {
                let u = e.target();
                dist[u.index()] != u64::MAX && dist[u.index()] + e.weight().cost == dv
            })
            .map(|e| (e.target(), e.id()))
            .min_by_key(|(u, _)| u.index());
    }
    Search { dist, pred }
}

/// Computes the job's subgraph for the given terminal switch indexes.
pub fn steiner(g: &SwitchGraph, terminals: &[usize]) -> Result<Tree, Disconnected> {
    let mut terms: Vec<NodeIndex> = terminals.iter().map(|&s| g.vertex(s)).collect();
    terms.sort();
    terms.dedup();
    if terms.is_empty() {
        return Ok(Tree {
            switches: vec![],
            links: vec![],
            cost: 0,
        });
    }
    let comp = g.components();
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &t in &terms {
        let s = g.switch(t);
        groups.entry(comp[s]).or_default().push(s);
    }
    if groups.len() > 1 {
        let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
        groups.sort_by_key(|grp| std::cmp::Reverse(grp.len()));
        return Err(Disconnected { groups });
    }
    if terms.len() == 1 {
        return Ok(Tree {
            switches: vec![g.switch(terms[0])],
            links: vec![],
            cost: 0,
        });
    }
    let kmb = kmb(g, &terms);
    let spt = shortest_path_tree(g, &terms);
    let best = if cost(g, &spt) < cost(g, &kmb) {
        spt
    } else {
        kmb
    };
    Ok(to_tree(g, &improve(g, &terms, best)))
}

fn cost(g: &SwitchGraph, edges: &BTreeSet<EdgeIndex>) -> u64 {
    edges.iter().map(|&e| g.graph[e].cost).sum()
}

fn kmb(g: &SwitchGraph, terms: &[NodeIndex]) -> BTreeSet<EdgeIndex> {
    let s = search(g, terms);
    // Region (nearest terminal) of every vertex, assigned in order of distance.
    let mut order: Vec<NodeIndex> = g
        .graph
        .node_indices()
        .filter(|v| s.dist[v.index()] != u64::MAX)
        .collect();
    order.sort_by_key(|v| (s.dist[v.index()], v.index()));
    let mut region = vec![NodeIndex::end(); g.graph.node_count()];
    for v in order {
        region[v.index()] = match s.pred[v.index()] {
            None => v,
            Some((u, _)) => region[u.index()],
        };
    }
    // Cheapest bridge between each pair of regions.
    let mut bridges: BTreeMap<(NodeIndex, NodeIndex), (u64, u32, EdgeIndex)> = BTreeMap::new();
    for e in g.graph.edge_references() {
        let (u, v) = (e.source(), e.target());
        let (ru, rv) = (region[u.index()], region[v.index()]);
        if ru == NodeIndex::end() || rv == NodeIndex::end() || ru == rv {
            continue;
        }
        let w = (
            s.dist[u.index()] + e.weight().cost + s.dist[v.index()],
            e.weight().rank,
            e.id(),
        );
        let key = (ru.min(rv), ru.max(rv));
        bridges
            .entry(key)
            .and_modify(|old| *old = (*old).min(w))
            .or_insert(w);
    }
    let mut closure: UnGraph<NodeIndex, (u64, u32, EdgeIndex)> = UnGraph::default();
    let mut at: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    for &t in terms {
        at.insert(t, closure.add_node(t));
    }
    for ((a, b), w) in bridges {
        closure.add_edge(at[&a], at[&b], w);
    }
    let mut union = BTreeSet::new();
    for el in min_spanning_tree(&closure) {
        if let Element::Edge {
            weight: (_, _, e), ..
        } = el
        {
            union.insert(e);
            let (u, v) = g.graph.edge_endpoints(e).expect("edge exists");
            for mut x in [u, v] {
                while let Some((p, pe)) = s.pred[x.index()] {
                    union.insert(pe);
                    x = p;
                }
            }
        }
    }
    prune(g, terms, spanning_tree(g, &union))
}

/// A minimum spanning tree (cost, then name rank) of the subgraph made of `edges`.
fn spanning_tree(g: &SwitchGraph, edges: &BTreeSet<EdgeIndex>) -> BTreeSet<EdgeIndex> {
    let mut sub: UnGraph<(), (u64, u32, EdgeIndex)> = UnGraph::default();
    let mut at: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    for &e in edges {
        let (u, v) = g.graph.edge_endpoints(e).expect("edge exists");
        let a = *at.entry(u).or_insert_with(|| sub.add_node(()));
        let b = *at.entry(v).or_insert_with(|| sub.add_node(()));
        let info = g.graph[e];
        sub.add_edge(a, b, (info.cost, info.rank, e));
    }
    min_spanning_tree(&sub)
        .filter_map(|el| match el {
            Element::Edge {
                weight: (_, _, e), ..
            } => Some(e),
            _ => None,
        })
        .collect()
}

/// Removes leaves that are not terminals until none is left.
fn prune(
    g: &SwitchGraph,
    terms: &[NodeIndex],
    mut edges: BTreeSet<EdgeIndex>,
) -> BTreeSet<EdgeIndex> {
    let is_term: BTreeSet<NodeIndex> = terms.iter().copied().collect();
    let mut incident: BTreeMap<NodeIndex, BTreeSet<EdgeIndex>> = BTreeMap::new();
    for &e in &edges {
        let (u, v) = g.graph.edge_endpoints(e).expect("edge exists");
        incident.entry(u).or_default().insert(e);
        incident.entry(v).or_default().insert(e);
    }
    let mut leaves: Vec<NodeIndex> = incident
        .iter()
        .filter(|(v, es)| es.len() == 1 && !is_term.contains(v))
        .map(|(v, _)| *v)
        .collect();
    while let Some(v) = leaves.pop() {
        let Some(&e) = incident.get(&v).and_then(|es| es.iter().next()) else {
            continue;
        };
        edges.remove(&e);
        let (a, b) = g.graph.edge_endpoints(e).expect("edge exists");
        let other = if a == v { b } else { a };
        incident.remove(&v);
        if let Some(es) = incident.get_mut(&other) {
            es.remove(&e);
            if es.len() == 1 && !is_term.contains(&other) {
                leaves.push(other);
            }
        }
    }
    edges
}

fn vertices(g: &SwitchGraph, edges: &BTreeSet<EdgeIndex>) -> BTreeSet<NodeIndex> {
    edges
        .iter()
        .flat_map(|&e| {
            let (u, v) = g.graph.edge_endpoints(e).expect("edge exists");
            [u, v]
        })
        .collect()
}

/// Local search: induced MST, then Steiner-vertex removal, while the cost strictly drops.
///
/// Each round sorts the edges induced by the tree's switches once; every candidate (all of them,
/// or all but one Steiner switch) is then a Kruskal pass over that list plus pruning, with
/// arrays instead of maps, because large jobs try dozens of candidates.
fn improve(
    g: &SwitchGraph,
    terms: &[NodeIndex],
    mut best: BTreeSet<EdgeIndex>,
) -> BTreeSet<EdgeIndex> {
    let n = g.graph.node_count();
    let mut is_term = vec![false; n];
    for t in terms {
        is_term[t.index()] = true;
    }
    let mut best_cost = cost(g, &best);
    'search: loop {
        let vs = vertices(g, &best);
        let mut inside = vec![false; n];
        for v in &vs {
            inside[v.index()] = true;
        }
        let mut edges: Vec<(u64, u32, EdgeIndex, usize, usize)> = Vec::new();
        for &v in &vs {
            for e in g.graph.edges(v) {
                let (a, b) = (e.source().index(), e.target().index());
                if a < b && inside[a] && inside[b] {
                    edges.push((e.weight().cost, e.weight().rank, e.id(), a, b));
                }
            }
        }
        edges.sort_unstable();
        let candidates = std::iter::once(None).chain(
            vs.iter()
                .filter(|v| !is_term[v.index()])
                .map(|v| Some(v.index())),
        );
        for skip in candidates {
            let want = vs.len() - usize::from(skip.is_some()) - 1;
            let mut uf = petgraph::unionfind::UnionFind::<usize>::new(n);
            let mut tree: Vec<usize> = Vec::with_capacity(want);
            for (i, &(_, _, _, a, b)) in edges.iter().enumerate() {
                if Some(a) != skip && Some(b) != skip && uf.union(a, b) {
                    tree.push(i);
                }
            }
            if tree.len() != want {
                continue; // removing `skip` disconnects the tree's switches
            }
            let kept = prune_list(&edges, tree, &is_term, n);
            let c: u64 = kept.iter().map(|&i| edges[i].0).sum();
            if c < best_cost {
                best = kept.iter().map(|&i| edges[i].2).collect();
                best_cost = c;
                continue 'search;
            }
        }
        return best;
    }
}

/// `prune` for an edge list: drops edges at non-terminal leaves until there are none.
fn prune_list(
    edges: &[(u64, u32, EdgeIndex, usize, usize)],
    mut tree: Vec<usize>,
    is_term: &[bool],
    n: usize,
) -> Vec<usize> {
    let mut degree = vec![0u32; n];
    for &i in &tree {
        degree[edges[i].3] += 1;
        degree[edges[i].4] += 1;
    }
    loop {
        let before = tree.len();
        tree.retain(|&i| {
            let (a, b) = (edges[i].3, edges[i].4);
            let dangling = (degree[a] == 1 && !is_term[a]) || (degree[b] == 1 && !is_term[b]);
            if dangling {
                degree[a] -= 1;
                degree[b] -= 1;
            }
            !dangling
        });
        if tree.len() == before {
            return tree;
        }
    }
}

/// The union of the shortest paths from the first terminal to every other terminal.
fn shortest_path_tree(g: &SwitchGraph, terms: &[NodeIndex]) -> BTreeSet<EdgeIndex> {
    let s = search(g, &terms[..1]);
    let mut edges = BTreeSet::new();
    for &t in &terms[1..] {
        let mut x = t;
        while let Some((p, pe)) = s.pred[x.index()] {
            if !edges.insert(pe) {
                break; // the rest of the path is already in the tree
            }
            x = p;
        }
    }
    edges
}

fn to_tree(g: &SwitchGraph, edges: &BTreeSet<EdgeIndex>) -> Tree {
    let mut vertices = BTreeSet::new();
    let mut links: Vec<(u32, usize)> = Vec::with_capacity(edges.len());
    for &e in edges {
        let (u, v) = g.graph.edge_endpoints(e).expect("edge exists");
        vertices.insert(u);
        vertices.insert(v);
        links.push((g.graph[e].rank, g.graph[e].link));
    }
    links.sort_unstable();
    Tree {
        switches: vertices.into_iter().map(|v| g.switch(v)).collect(),
        links: links.into_iter().map(|(_, l)| l).collect(),
        cost: cost(g, edges),
    }
}
