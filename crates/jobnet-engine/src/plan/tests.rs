//! Issue 13: the planner's inputs come through the library's public API, so a topology validated
//! with other driver profiles, or changed after validation, or a graph built from another
//! topology, is a typed error naming what is wrong, never a panic.

use super::*;
use crate::base::types::RangeSet;
use crate::topology::{self, Link};

const TWO_TIER: &str = include_str!("../../../../topology/two-tier.yaml");

fn two_tier() -> Topology {
    topology::parse(TWO_TIER, "two-tier.yaml", &DriverSet::builtin())
        .unwrap()
        .topology
}

fn request(nodes: &[&str], gateway: Option<&str>) -> JobRequest {
    JobRequest {
        job: JobId::parse("7").unwrap(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        vlan: Choice::Auto,
        pkey: PKeyChoice::Default,
        gateway: gateway.map(str::to_string),
        origin: Default::default(),
    }
}

fn plan_with(
    t: &Topology,
    g: &SwitchGraph,
    drivers: &DriverSet,
    req: &JobRequest,
) -> Result<Plan, PlanError> {
    plan(
        Inputs {
            topology: t,
            graph: g,
            drivers,
            held: &[],
            partitions_conf: None,
            partitions_conf_path: None,
        },
        req,
    )
}

/// The shipped profiles but `leave_out`.
fn builtin_without(leave_out: &str) -> DriverSet {
    let all = DriverSet::builtin();
    let mut set = DriverSet::default();
    for name in all.names().filter(|n| *n != leave_out) {
        set.insert(all.get(name).unwrap().clone());
    }
    set
}

#[test]
fn a_topology_validated_with_other_driver_profiles_is_a_typed_error() {
    let t = two_tier();
    let g = SwitchGraph::build(&t);
    let job = request(&["cn001", "cn025"], Some("gw1"));
    plan_with(&t, &g, &DriverSet::builtin(), &job).expect("the profiles it was validated with");
    // No profiles at all: the first switch of the plan (name order) is named.
    let e = plan_with(&t, &g, &DriverSet::default(), &job).unwrap_err();
    assert_eq!(
        e,
        PlanError::UnknownDriver {
            device: "switch leaf1".into(),
            driver: "arista-eos".into(),
            known: "none".into(),
        }
    );
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("plan with the profiles it was loaded with (the same driver directory)"),
        "{e}"
    );
    // The gateway's profile missing.
    let e = plan_with(&t, &g, &builtin_without("mellanox-gateway"), &job).unwrap_err();
    assert!(
        matches!(&e, PlanError::UnknownDriver { device, driver, known }
            if device == "gateway gw1" && driver == "mellanox-gateway" && known.contains("arista-eos")),
        "{e:?}"
    );
    // A profile of the same name that cannot write the plan's operations (here a gateway's).
    let mut odd = DriverSet::builtin();
    let mut gw = odd.get("mellanox-gateway").unwrap().clone();
    gw.name = "cisco-nxos".into();
    odd.insert(gw);
    let e = plan_with(&t, &g, &odd, &job).unwrap_err();
    assert_eq!(
        e,
        PlanError::DriverLacksOp {
            device: "switch leaf2".into(),
            driver: "cisco-nxos".into(),
            op: "create_vlan",
        }
    );
    assert!(
        e.to_string().starts_with(
            "driver profile `cisco-nxos` of switch leaf2 has no `create_vlan` operation"
        ),
        "{e}"
    );
}

#[test]
fn a_topology_changed_after_validation_is_a_typed_error() {
    let job = request(&["cn001", "cn025"], None);
    // A node's port on a switch the topology does not have.
    let mut t = two_tier();
    let g = SwitchGraph::build(&t);
    t.nodes[0].port = Some(PortRef::parse("ghost:Ethernet1").unwrap());
    let e = plan_with(&t, &g, &DriverSet::builtin(), &job).unwrap_err();
    assert_eq!(
        e,
        PlanError::UnknownSwitch {
            owner: "the port ghost:Ethernet1 of node cn001".into(),
            switch: "ghost".into(),
            file: "two-tier.yaml".into(),
        }
    );
    assert!(e.to_string().contains("load it again"), "{e}");
    // A node without a port on a fabric with Ethernet.
    t.nodes[0].port = None;
    let e = plan_with(&t, &g, &DriverSet::builtin(), &job).unwrap_err();
    assert!(
        matches!(&e, PlanError::Unvalidated { what, .. } if what.contains("node cn001 has no port")),
        "{e:?}"
    );
    // A link end renamed after the graph was built.
    let mut t = two_tier();
    t.links[0].a = PortRef::parse("ghost:Ethernet1").unwrap();
    let e = plan_with(&t, &g, &DriverSet::builtin(), &job).unwrap_err();
    assert_eq!(
        e,
        PlanError::UnknownSwitch {
            owner: "end ghost:Ethernet1 of link ghost:Ethernet1 -- leaf1:Ethernet49".into(),
            switch: "ghost".into(),
            file: "two-tier.yaml".into(),
        }
    );
    // A VLAN pool widened past what a VLAN can be.
    let mut t = two_tier();
    t.ethernet.as_mut().unwrap().vlan_pool = RangeSet::parse("4095-4096", 0, 9999, "x").unwrap();
    let e = plan_with(&t, &g, &DriverSet::builtin(), &job).unwrap_err();
    assert!(
        matches!(&e, PlanError::Unvalidated { what, .. } if what.contains("VLAN 4095 is out of range")),
        "{e:?}"
    );
}

#[test]
fn a_graph_of_another_topology_is_a_typed_error() {
    let t = two_tier();
    let job = request(&["cn001", "cn025"], None);
    let small = topology::parse(
        "name: small\nethernet: {vlan_pool: \"100-199\"}\nswitches:\n  - {name: s1, driver: arista-eos, address: 192.0.2.1}\nnodes:\n  - {name: n1, port: \"s1:Ethernet1\"}\n",
        "small.yaml",
        &DriverSet::builtin(),
    )
    .unwrap()
    .topology;
    let e = plan_with(&t, &SwitchGraph::build(&small), &DriverSet::builtin(), &job).unwrap_err();
    assert_eq!(
        e,
        PlanError::GraphMismatch {
            file: "two-tier.yaml".into(),
            why: "the graph has 1 switch(es), the topology 6".into(),
        }
    );
    // Same switches, links in another order: an edge stands for another link.
    let mut swapped = two_tier();
    swapped.links.swap(0, 2);
    let e = plan_with(
        &t,
        &SwitchGraph::build(&swapped),
        &DriverSet::builtin(),
        &job,
    )
    .unwrap_err();
    assert!(
        matches!(&e, PlanError::GraphMismatch { why, .. } if why.contains("the topology's link")),
        "{e:?}"
    );
}

/// Pictures only read; a link naming a switch the topology does not have is left out of them.
#[test]
fn pictures_leave_out_a_link_to_an_unknown_switch() {
    let mut t = two_tier();
    let g = SwitchGraph::build(&t);
    let p = plan_with(
        &t,
        &g,
        &DriverSet::builtin(),
        &request(&["cn001", "cn025"], Some("gw1")),
    )
    .unwrap();
    let ghost = Link {
        a: PortRef::parse("ghost:Ethernet9").unwrap(),
        b: PortRef::parse("leaf1:Ethernet60").unwrap(),
        ..t.links[0].clone()
    };
    t.links.push(ghost);
    for view in [render::View::Full, render::View::Job] {
        for plan in [None, Some(&p)] {
            let svg = render::svg_view(&t, plan, view);
            let dot = render::dot_view(&t, plan, view);
            assert!(svg.contains("leaf1") && !svg.contains("ghost"), "{svg}");
            assert!(dot.contains("leaf1") && !dot.contains("ghost"), "{dot}");
        }
    }
}

/// Issue 13: `plan` and `up` said "is already invalid ... OpenSM falls back to its default
/// configuration" also for a file OpenSM reads as written (a merge, text in jobnet's block).
#[test]
fn a_refused_partitions_conf_says_what_kind_of_refusal_it_is() {
    let t = two_tier();
    let g = SwitchGraph::build(&t);
    let drivers = DriverSet::builtin();
    let job8 = "Default=0x7fff, ipoib : ALL=full;\n# BEGIN jobnet managed: partitions of running jobs; edit outside this block only\n# jobnet job 8\njobnet_8=0x1000, ipoib :\n    0x0002c90300a1b001=full;\n# END jobnet managed\n";
    let merged = format!("{job8}storage=0x9000 : 0x0002c90300a1b0f1=full;\n");
    let inside = job8.replace(
        "# jobnet job 8\n",
        "storage=0x20 : 0x1=full;\n# jobnet job 8\n",
    );
    let open = job8.replace("# END jobnet managed\n", "");
    let grammar = format!("{job8}x=0x20 : 0x1\n ;\n");
    let reads = "/etc/opensm/partitions.conf is one OpenSM reads, but jobnet will not change it";
    for (text, kind, lead) in [
        (&grammar, Refusal::OpenSm, "/etc/opensm/partitions.conf is already invalid, so jobnet will not touch it: it breaks OpenSM's grammar or runs into one of its parser traps, so OpenSM would reject it (and fall back to its default configuration, dropping every custom partition) or may apply something else than it says; fix these first (`jobnet ib check /etc/opensm/partitions.conf`):\n/etc/opensm/partitions.conf:8:2: error: `;` is the first character".to_string()),
        (&merged, Refusal::Merge, format!("{reads}: OpenSM merges a job's partition in it with another partition of the same PKey, so that job is not isolated; fix these first")),
        (&inside, Refusal::Block, format!("{reads}: jobnet's managed block in it is broken or holds text jobnet did not write")),
        (&open, Refusal::Block, format!("{reads}: jobnet's managed block in it is broken or holds text jobnet did not write")),
    ] {
        let e = plan(
            Inputs {
                topology: &t,
                graph: &g,
                drivers: &drivers,
                held: &[],
                partitions_conf: Some(text),
                partitions_conf_path: None,
            },
            &request(&["cn001"], None),
        )
        .unwrap_err();
        assert!(
            matches!(&e, PlanError::InvalidPartitions { kind: k, .. } if *k == kind),
            "{e:?}"
        );
        assert_eq!(e.exit_code(), 2);
        let m = e.to_string();
        assert!(m.starts_with(&lead), "{m}");
        assert_eq!(m.contains("fall back"), kind == Refusal::OpenSm, "{m}");
    }
}
