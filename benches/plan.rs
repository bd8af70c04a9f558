//! Criterion benchmarks for topology load and planning on a generated 3-tier fat tree of
//! 10,000 nodes (313 leaves, 40 pods, 160 aggregation and 8 core switches, IB GUIDs), and
//! planning a 10,000-node job on a 100,000-node one already loaded.
//! Figures and the command to reproduce them are in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, Criterion};
use jobnet::base::hostlist;
use jobnet::base::types::JobId;
use jobnet::drivers::DriverSet;
use jobnet::plan::{self, Choice, Inputs, JobRequest, PKeyChoice};
use jobnet::topology::{self, FatTreeSpec, SwitchGraph, Topology};
use std::hint::black_box;

/// The planner's inputs for a topology with no other job holding anything.
fn inputs_of<'a>(t: &'a Topology, g: &'a SwitchGraph, set: &'a DriverSet) -> Inputs<'a> {
    Inputs {
        topology: t,
        graph: g,
        drivers: set,
        held: &[],
        partitions_conf: None,
        partitions_conf_path: None,
    }
}

/// A job of `nodes` with the VLAN and PKey chosen by jobnet.
fn job(nodes: Vec<String>) -> JobRequest {
    JobRequest {
        job: JobId::parse("1234").unwrap(),
        nodes,
        vlan: Choice::Auto,
        pkey: PKeyChoice::Default,
        gateway: None,
        origin: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let text = topology::fat_tree(&FatTreeSpec::default());
    let set = DriverSet::builtin();
    c.bench_function("load 10k-node fat tree (parse + validate)", |b| {
        b.iter(|| topology::parse(black_box(&text), "ft.yaml", &set).unwrap())
    });
    let t = topology::parse(&text, "ft.yaml", &set).unwrap().topology;
    c.bench_function("build switch graph", |b| {
        b.iter(|| SwitchGraph::build(black_box(&t)))
    });
    let g = SwitchGraph::build(&t);

    let contiguous = hostlist::expand("cn[00001-01000]").unwrap();
    let scattered: Vec<String> = (0..1000).map(|i| format!("cn{:05}", i * 10 + 1)).collect();
    for (label, nodes) in [
        ("contiguous cn[00001-01000]", contiguous),
        ("scattered every 10th node", scattered),
    ] {
        let req = job(nodes);
        let inputs = inputs_of(&t, &g, &set);
        c.bench_function(&format!("plan 1000-node job, {label}"), |b| {
            b.iter(|| plan::plan(black_box(inputs), black_box(&req)).unwrap())
        });
        c.bench_function(&format!("plan + graph build, {label}"), |b| {
            b.iter(|| {
                let g = SwitchGraph::build(&t);
                plan::plan(black_box(inputs_of(&t, &g, &set)), black_box(&req)).unwrap()
            })
        });
    }

    // Issue 15, P3 held: the 100k-node fabric already loaded (as a long-running process holds
    // it), a 10,000-node job planned and its JSON rendered: what is left of `jobnet plan` when
    // the topology needs no reading.
    let big = topology::fat_tree(&FatTreeSpec {
        nodes: 100_000,
        ..FatTreeSpec::default()
    });
    let t = topology::parse(&big, "ft100k.yaml", &set).unwrap().topology;
    let g = SwitchGraph::build(&t);
    let req = job(hostlist::expand("cn[000001-010000]").unwrap());
    let inputs = inputs_of(&t, &g, &set);
    c.bench_function("100k fabric held: plan 10k-node job", |b| {
        b.iter(|| plan::plan(black_box(inputs), black_box(&req)).unwrap())
    });
    c.bench_function("100k fabric held: plan 10k-node job + JSON", |b| {
        b.iter(|| {
            let p = plan::plan(black_box(inputs), black_box(&req)).unwrap();
            jobnet::plan::render::plan_json(&p)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
