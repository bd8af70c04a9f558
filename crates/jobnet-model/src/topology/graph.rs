//! The switch graph the planner searches: one vertex per switch, one edge per pair of switches
//! joined by at least one usable link.
//!
//! Links with `state: down` are left out. Parallel links between the same two switches become
//! one edge (a LAG is one logical link; unmarked parallel links would form a loop if the VLAN
//! went on all of them): the cheapest wins, a LAG before a plain link, then by port name.
//! Vertices and edges are inserted in name order, so results never depend on the order of the
//! file, and each edge carries a `rank` that breaks cost ties by name.

use super::Topology;
use petgraph::graph::{NodeIndex, UnGraph};

/// What an edge stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeInfo {
    /// Index into `Topology::links` of the link that carries the VLAN.
    pub link: usize,
    pub cost: u64,
    /// Position in name order; smaller wins a tie.
    pub rank: u32,
}

/// The usable switch graph. Vertex weights are switch indexes into `Topology::switches`.
#[derive(Clone, Debug)]
pub struct SwitchGraph {
    pub graph: UnGraph<usize, EdgeInfo>,
    vertex: Vec<NodeIndex>,
}

impl SwitchGraph {
    pub fn build(t: &Topology) -> Self {
        let mut order: Vec<usize> = (0..t.switches.len()).collect();
        order.sort_by(|&a, &b| t.switches[a].name.cmp(&t.switches[b].name));
        let mut graph = UnGraph::with_capacity(t.switches.len(), t.links.len());
        let mut vertex = vec![NodeIndex::end(); t.switches.len()];
        for s in order {
            vertex[s] = graph.add_node(s);
        }
        // Vertices are numbered in name order, so a pair of vertex numbers (smaller first)
        // sorts as the pair of names does: the usable links, by pair, in file order within one.
        let mut pairs: Vec<((u32, u32), usize)> = Vec::with_capacity(t.links.len());
        for (i, l) in t.links.iter().enumerate() {
            let (Some(a), Some(b)) = (t.switch_idx(&l.a.switch), t.switch_idx(&l.b.switch)) else {
                continue;
            };
            if l.up {
                let (a, b) = (vertex[a].index() as u32, vertex[b].index() as u32);
                pairs.push(((a.min(b), a.max(b)), i));
            }
        }
        pairs.sort_by_key(|&(pair, _)| pair);
        // Best link per switch pair: the first in the file among equals.
        let better = |i: usize, j: usize| {
            let (x, y) = (&t.links[i], &t.links[j]);
            (x.cost, !x.lag, (&x.a).min(&x.b), (&x.a).max(&x.b))
                < (y.cost, !y.lag, (&y.a).min(&y.b), (&y.a).max(&y.b))
        };
        for (rank, same) in pairs.chunk_by(|x, y| x.0 == y.0).enumerate() {
            let ((a, b), first) = same[0];
            let link = same[1..].iter().fold(
                first,
                |best, &(_, i)| if better(i, best) { i } else { best },
            );
            graph.add_edge(
                NodeIndex::new(a as usize),
                NodeIndex::new(b as usize),
                EdgeInfo {
                    link,
                    cost: t.links[link].cost,
                    rank: rank as u32,
                },
            );
        }
        SwitchGraph { graph, vertex }
    }

    /// The vertex of switch index `s`.
    pub fn vertex(&self, s: usize) -> NodeIndex {
        self.vertex[s]
    }

    /// The switch index of vertex `v`.
    pub fn switch(&self, v: NodeIndex) -> usize {
        self.graph[v]
    }

    /// A component id per switch index.
    pub fn components(&self) -> Vec<usize> {
        let mut uf = petgraph::unionfind::UnionFind::new(self.graph.node_count());
        for e in self.graph.edge_indices() {
            let (a, b) = self.graph.edge_endpoints(e).expect("edge exists");
            uf.union(a.index(), b.index());
        }
        self.vertex.iter().map(|v| uf.find(v.index())).collect()
    }
}
