//! Property tests of the job subgraph on random fabrics, checked against independent reference
//! computations (BFS, Floyd–Warshall, exact optimum by enumeration on small graphs):
//! the result is a tree, joins every terminal, has no non-terminal leaf, uses no down link and at
//! most one link per switch pair, is deterministic and independent of file order, costs no more
//! than the union of shortest paths from the first terminal, and at most twice the optimum.

use jobnet::drivers::DriverSet;
use jobnet::plan::subgraph::{steiner, Tree};
use jobnet::topology::{parse, SwitchGraph, Topology};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// (a, b, cost, up, lag)
type LinkSpec = (usize, usize, u64, bool, bool);

#[derive(Clone, Debug)]
struct Fabric {
    n: usize,
    links: Vec<LinkSpec>,
    terminals: BTreeSet<usize>,
    /// A permutation used to write the same fabric in another order.
    perm: Vec<usize>,
}

fn fabric() -> impl Strategy<Value = Fabric> {
    (2usize..=9).prop_flat_map(|n| {
        let link = (
            0..n,
            0..n,
            1u64..=5,
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.1),
        );
        (
            Just(n),
            prop::collection::vec(link, 1..=n * 3),
            prop::collection::btree_set(0..n, 1..=n),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
        )
            .prop_map(|(n, links, terminals, perm)| Fabric {
                n,
                links: links.into_iter().filter(|l| l.0 != l.1).collect(),
                terminals,
                perm,
            })
    })
}

/// Topology YAML; with `shuffled`, switches, links and nodes are written in another order.
fn yaml(f: &Fabric, shuffled: bool) -> String {
    let order: Vec<usize> = if shuffled {
        f.perm.clone()
    } else {
        (0..f.n).collect()
    };
    let mut y = String::from("name: prop\nethernet: {vlan_pool: \"10-20\"}\nswitches:\n");
    for &i in &order {
        y += &format!("  - {{name: s{i}, driver: openvswitch, address: 127.0.0.1}}\n");
    }
    y += "links:\n";
    let mut links: Vec<(usize, &LinkSpec)> = f.links.iter().enumerate().collect();
    if shuffled {
        links.reverse();
    }
    for (k, (a, b, cost, up, lag)) in links {
        y += &format!(
            "  - {{a: s{a}:L{k}a, b: s{b}:L{k}b, cost: {cost}, state: {}, lag: {lag}}}\n",
            if *up { "up" } else { "down" }
        );
    }
    y += "nodes:\n";
    for &i in &order {
        y += &format!("  - {{name: h{i}, port: s{i}:P0}}\n");
    }
    y
}

fn load(text: &str) -> Topology {
    static DRIVERS: std::sync::OnceLock<DriverSet> = std::sync::OnceLock::new();
    let drivers = DRIVERS.get_or_init(DriverSet::builtin);
    parse(text, "prop.yaml", drivers)
        .expect("generated topology is valid")
        .topology
}

fn run(
    t: &Topology,
    terminals: &BTreeSet<usize>,
) -> Result<Tree, jobnet::plan::subgraph::Disconnected> {
    let g = SwitchGraph::build(t);
    let idx: Vec<usize> = terminals
        .iter()
        .map(|i| t.switch_idx(&format!("s{i}")).unwrap())
        .collect();
    steiner(&g, &idx)
}

/// Cheapest usable link cost per switch pair (by switch number).
fn pair_costs(f: &Fabric) -> BTreeMap<(usize, usize), u64> {
    let mut m = BTreeMap::new();
    for &(a, b, c, up, _) in &f.links {
        if up {
            let k = (a.min(b), a.max(b));
            let e = m.entry(k).or_insert(c);
            *e = (*e).min(c);
        }
    }
    m
}

fn connected(n: usize, edges: &BTreeSet<(usize, usize)>, from: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::from([from]);
    let mut q = VecDeque::from([from]);
    while let Some(v) = q.pop_front() {
        for &(a, b) in edges {
            for (x, y) in [(a, b), (b, a)] {
                if x == v && y < n && seen.insert(y) {
                    q.push_back(y);
                }
            }
        }
    }
    seen
}

/// MST cost of the subgraph induced by `vs`, or None when it is not connected (Prim).
fn mst_cost(costs: &BTreeMap<(usize, usize), u64>, vs: &BTreeSet<usize>) -> Option<u64> {
    let first = *vs.iter().next()?;
    let mut inside = BTreeSet::from([first]);
    let mut total = 0;
    while inside.len() < vs.len() {
        let best = costs
            .iter()
            .filter(|((a, b), _)| {
                vs.contains(a) && vs.contains(b) && (inside.contains(a) != inside.contains(b))
            })
            .min_by_key(|(_, c)| **c)?;
        total += best.1;
        inside.insert(best.0 .0);
        inside.insert(best.0 .1);
    }
    Some(total)
}

fn switch_number(t: &Topology, s: usize) -> usize {
    t.switches[s].name[1..].parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn subgraph_properties(f in fabric()) {
        let t = load(&yaml(&f, false));
        let costs = pair_costs(&f);
        let up_pairs: BTreeSet<(usize, usize)> = costs.keys().copied().collect();
        let first = *f.terminals.iter().next().unwrap();
        let reach = connected(f.n, &up_pairs, first);
        let result = run(&t, &f.terminals);

        if !f.terminals.iter().all(|x| reach.contains(x)) {
            let err = result.expect_err("terminals are not connected");
            let grouped: BTreeSet<usize> = err.groups.iter().flatten().map(|&s| switch_number(&t, s)).collect();
            prop_assert_eq!(&grouped, &f.terminals);
            prop_assert!(err.groups.len() >= 2);
            return Ok(());
        }
        let tree = result.expect("terminals are connected");
        let sw: BTreeSet<usize> = tree.switches.iter().map(|&s| switch_number(&t, s)).collect();
        let mut pairs = BTreeSet::new();
        let mut degree: BTreeMap<usize, usize> = BTreeMap::new();
        let mut cost = 0;
        for &l in &tree.links {
            let link = &t.links[l];
            prop_assert!(link.up, "a down link was used");
            let (a, b) = (link.a.switch[1..].parse::<usize>().unwrap(), link.b.switch[1..].parse::<usize>().unwrap());
            prop_assert!(pairs.insert((a.min(b), a.max(b))), "two links for one switch pair");
            prop_assert_eq!(link.cost, costs[&(a.min(b), a.max(b))], "not the cheapest parallel link");
            *degree.entry(a).or_default() += 1;
            *degree.entry(b).or_default() += 1;
            cost += link.cost;
        }
        prop_assert_eq!(cost, tree.cost);
        // A tree that spans its switches and every terminal.
        prop_assert_eq!(tree.links.len() + 1, tree.switches.len());
        prop_assert!(f.terminals.is_subset(&sw));
        prop_assert_eq!(connected(f.n, &pairs, first), sw.clone());
        // No leaf that is not a terminal.
        for (v, d) in &degree {
            prop_assert!(*d > 1 || f.terminals.contains(v), "non-terminal leaf s{}", v);
        }
        // Deterministic, and independent of the order of the file.
        prop_assert_eq!(run(&t, &f.terminals).unwrap(), tree.clone());
        let t2 = load(&yaml(&f, true));
        let tree2 = run(&t2, &f.terminals).unwrap();
        let names = |t: &Topology, tr: &Tree| -> (Vec<String>, Vec<(String, String)>) {
            (tr.switches.iter().map(|&s| t.switches[s].name.clone()).collect(),
             tr.links.iter().map(|&l| (t.links[l].a.to_string(), t.links[l].b.to_string())).collect())
        };
        prop_assert_eq!(names(&t, &tree), names(&t2, &tree2));

        // Reference: Floyd–Warshall with next hops.
        let n = f.n;
        let inf = u64::MAX / 4;
        let mut d = vec![vec![inf; n]; n];
        let mut next = vec![vec![usize::MAX; n]; n];
        for i in 0..n { d[i][i] = 0; next[i][i] = i; }
        for (&(a, b), &c) in &costs {
            d[a][b] = c; d[b][a] = c; next[a][b] = b; next[b][a] = a;
        }
        for k in 0..n { for i in 0..n { for j in 0..n {
            if d[i][k] + d[k][j] < d[i][j] { d[i][j] = d[i][k] + d[k][j]; next[i][j] = next[i][k]; }
        }}}
        // The union of shortest paths from the first terminal.
        let mut union = BTreeSet::new();
        for &x in f.terminals.iter().skip(1) {
            let mut v = first;
            while v != x { let w = next[v][x]; union.insert((v.min(w), v.max(w))); v = w; }
        }
        let union_cost: u64 = union.iter().map(|p| costs[p]).sum();
        prop_assert!(tree.cost <= union_cost, "cost {} above the union of shortest paths {}", tree.cost, union_cost);
        // At most twice the optimum, which is the cheapest MST over terminals plus some others.
        let others: Vec<usize> = (0..n).filter(|v| !f.terminals.contains(v)).collect();
        let mut opt = u64::MAX;
        for mask in 0u32..(1 << others.len()) {
            let mut vs = f.terminals.clone();
            for (i, v) in others.iter().enumerate() { if mask & (1 << i) != 0 { vs.insert(*v); } }
            if let Some(c) = mst_cost(&costs, &vs) { opt = opt.min(c); }
        }
        prop_assert!(tree.cost <= 2 * opt, "cost {} more than twice the optimum {}", tree.cost, opt);
    }
}

#[test]
fn two_spines_where_one_suffices() {
    // KMB alone picks both spines here (cost ties); the local search must find the single one.
    let f = Fabric {
        n: 6,
        links: vec![
            (0, 2, 1, true, false),
            (0, 3, 1, true, false),
            (0, 5, 1, true, false),
            (1, 2, 1, true, false),
            (1, 3, 1, true, false),
            (1, 4, 1, true, false),
            (1, 5, 1, true, false),
            (2, 3, 1, true, false),
        ],
        terminals: BTreeSet::from([2, 3, 4, 5]),
        perm: (0..6).collect(),
    };
    let t = load(&yaml(&f, false));
    let tree = run(&t, &f.terminals).unwrap();
    assert_eq!(tree.cost, 4);
    let names: Vec<&str> = tree
        .switches
        .iter()
        .map(|&s| t.switches[s].name.as_str())
        .collect();
    assert_eq!(names, ["s1", "s2", "s3", "s4", "s5"]);
}
