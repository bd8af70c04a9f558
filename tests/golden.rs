//! Golden files for everything jobnet generates: each shipped dialect profile's commands (apply
//! and undo) for a fixed set of operations, whole plans, and partitions.conf texts.
//!
//! On a difference the test prints both texts. After an intended change, refresh with
//! `JOBNET_BLESS=1 cargo test --test golden` and review the diff of tests/golden/ like code.

use jobnet::base::types::{JobId, PKey, VlanId};
use jobnet::drivers::{DeviceKind, DriverSet, OpKind, BUILTIN};
use jobnet::plan::render;
use jobnet::plan::{self, Choice, Inputs, JobRequest, Op, PKeyChoice};
use jobnet::topology::{self, SwitchGraph};
use std::path::Path;

fn golden(rel: &str, actual: &str) {
    let path = Path::new("tests/golden").join(rel);
    if std::env::var_os("JOBNET_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {}; create it with JOBNET_BLESS=1",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual);
        panic!(
            "{} differs from the generated text (JOBNET_BLESS=1 to accept):\n{}",
            path.display(),
            diff.unified_diff().header("golden", "generated")
        );
    }
}

fn vlan(v: u64) -> VlanId {
    VlanId::new(v).unwrap()
}

#[test]
fn every_profile_renders_its_golden_commands() {
    let set = DriverSet::builtin();
    for (name, _) in BUILTIN {
        let p = set.get(name).unwrap();
        let port = match *name {
            "mellanox-onyx" => ("1/49", "1/1"),
            "dell-os10" => ("ethernet1/1/49", "ethernet1/1/1"),
            "junos" => ("xe-0/0/48", "ge-0/0/1"),
            "cumulus-nvue" => ("swp49", "swp1"),
            "openvswitch" => ("leaf1-up1", "leaf1-h1"),
            _ => ("Ethernet49", "Ethernet1"),
        };
        let ops = match p.kind {
            DeviceKind::Ethernet => vec![
                Op::CreateVlan {
                    vlan: vlan(1000),
                    name: plan::vlan_name(&JobId::parse("1234+0").unwrap(), p),
                },
                Op::TrunkAdd {
                    port: port.0.into(),
                    vlan: vlan(1000),
                    peer: "spine1:Ethernet1".into(),
                },
                Op::TaggedAdd {
                    port: port.1.into(),
                    vlan: vlan(1000),
                    node: "cn001".into(),
                    restricts: false,
                },
                Op::AccessSet {
                    port: format!("{}2", &port.1[..port.1.len() - 1]),
                    vlan: vlan(1000),
                    node: "cn002".into(),
                    replaces: Some(vlan(7)),
                },
                Op::AccessSet {
                    port: format!("{}3", &port.1[..port.1.len() - 1]),
                    vlan: vlan(1000),
                    node: "cn003".into(),
                    replaces: None,
                },
            ],
            DeviceKind::Gateway => vec![Op::ProxyArpCreate {
                vlan: vlan(1000),
                pkey: PKey::new(0x1000).unwrap(),
            }],
        };
        let vname = plan::vlan_name(&JobId::parse("1234+0").unwrap(), p);
        let mut text = format!(
            "# profile {name}\n# source: {}\n# verified: {}\n## apply\n",
            p.source, p.verified
        );
        for c in plan::render_commands(p, &vname, &ops) {
            text += &format!("{c}\n");
        }
        text += "## undo\n";
        for c in plan::render_undo(p, &vname, &ops) {
            text += &format!("{c}\n");
        }
        if p.has(OpKind::RestrictPort) {
            let restrict = [Op::TaggedAdd {
                port: format!("{}4", &port.1[..port.1.len() - 1]),
                vlan: vlan(1000),
                node: "cn004".into(),
                restricts: true,
            }];
            text += "## restrict (a node port that allowed every VLAN, open_ports: restrict)\n";
            for c in plan::render_commands(p, &vname, &restrict) {
                text += &format!("{c}\n");
            }
            text += "## unrestrict (its last job leaves)\n";
            let vars = jobnet::drivers::Vars {
                port: Some(&restrict_port_name(port.1)),
                ..Default::default()
            };
            for c in p.render(OpKind::UnrestrictPort, &vars) {
                text += &format!("{c}\n");
            }
        }
        text += "## read\n";
        if let Some(r) = &p.read_vlans {
            text += &format!("{}  =~ {}\n", r.command, r.pattern);
        }
        if let Some(r) = &p.read_port {
            text += &format!(
                "{}  mode =~ {} (trunk: {}, access: {}), access VLAN =~ {}, allowed =~ {} (all: {})\n",
                r.command_for(port.1),
                r.mode.pattern,
                r.mode.trunk,
                r.mode.access,
                r.access_vlan.pattern,
                r.allowed.pattern,
                r.allowed.all
            );
        }
        if let Some(r) = &p.read_ports {
            text += &format!(
                "{}  blocks at {}{}\n",
                r.command,
                r.split,
                r.short
                    .iter()
                    .map(|(l, s)| format!(", {l}→{s}"))
                    .collect::<String>()
            );
        }
        if let Some(b) = &p.batch {
            text += &format!(
                "## batch (up to {})\n{}\n",
                b.max,
                b.combine(&[format!("{}one", b.prefix), format!("{}two", b.prefix)])
                    .unwrap_or_default()
            );
        }
        text += "## save\n";
        for c in &p.save {
            text += &format!("{c}\n");
        }
        golden(&format!("profiles/{name}.txt"), &text);
    }
    // Every profile file shipped in switch-drivers/ is compiled in (and so has a golden file).
    let mut files: Vec<String> = std::fs::read_dir("switch-drivers")
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    let built: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        files, built,
        "switch-drivers/ and drivers::BUILTIN disagree"
    );
}

/// What a device whose profile has `range:` receives for a job's operations, in plan order: a
/// tagged job on 51 node ports with a gap (48 a line at most, one run a line) and the trunk to
/// the next switch, then an access job on 4 ports. Each operation is still journaled with its
/// own lines (the profiles' golden files).
#[test]
fn ranged_profiles_render_their_golden_blocks() {
    let set = DriverSet::builtin();
    let mut n = 0;
    for (name, _) in BUILTIN {
        let p = set.get(name).unwrap();
        let Some(r) = &p.range else { continue };
        let (stem, trunk) = match *name {
            "cisco-nxos" => ("Ethernet1/", "Ethernet2/1"),
            "cisco-ios" => ("GigabitEthernet1/0/", "GigabitEthernet1/1/1"),
            other => panic!("{other} has range: give it ports here"),
        };
        let vname = plan::vlan_name(&JobId::parse("1234+0").unwrap(), p);
        let tagged: Vec<Op> = [Op::CreateVlan {
            vlan: vlan(1000),
            name: vname.clone(),
        }]
        .into_iter()
        .chain([Op::TrunkAdd {
            port: trunk.into(),
            vlan: vlan(1000),
            peer: "spine1:Ethernet1".into(),
        }])
        .chain((1..=52).filter(|n| *n != 51).map(|n| Op::TaggedAdd {
            port: format!("{stem}{n}"),
            vlan: vlan(1000),
            node: format!("cn{n:03}"),
            restricts: false,
        }))
        .collect();
        let access: Vec<Op> = (1..=4)
            .map(|n| Op::AccessSet {
                port: format!("{stem}{n}"),
                vlan: vlan(1000),
                node: format!("cn{n:03}"),
                replaces: (n != 3).then(|| vlan(7)),
            })
            .collect();
        let mut text = format!(
            "# profile {name}: what the device receives (range: {} a line at most, {} item(s) a line)\n",
            r.max_ports, r.max_items
        );
        for (title, ops) in [
            (
                format!("tagged job: VLAN, trunk {trunk}, node ports {stem}1-50 and 52"),
                tagged,
            ),
            (
                format!("access job: {stem}1-4 (their access VLANs before: 7, 7, none, 7)"),
                access,
            ),
        ] {
            text += &format!("## {title}\n");
            let rendered: Vec<Vec<String>> = ops
                .iter()
                .map(|op| plan::render_op(p, &vname, op).0)
                .collect();
            let view: Vec<(Option<&str>, &[String])> = ops
                .iter()
                .zip(&rendered)
                .map(|(op, l)| (op.port(), l.as_slice()))
                .collect();
            let mut at = 0;
            for size in r.blocks(&view) {
                let lines = if size == 1 {
                    rendered[at].clone()
                } else {
                    r.block(&view[at..at + size]).unwrap()
                };
                for l in lines {
                    text += &format!("{l}\n");
                }
                at += size;
            }
        }
        golden(&format!("ranges/{name}.txt"), &text);
        n += 1;
    }
    assert_eq!(n, 2, "cisco-nxos and cisco-ios have range:");
}

fn restrict_port_name(p: &str) -> String {
    format!("{}4", &p[..p.len() - 1])
}

fn plan_for(
    topo: &str,
    job: &str,
    nodes: &str,
    gateway: Option<&str>,
    conf: Option<&str>,
) -> (jobnet::plan::Plan, topology::Topology) {
    let set = DriverSet::builtin();
    let t = topology::load(Path::new(topo), &set).unwrap().topology;
    let g = SwitchGraph::build(&t);
    let req = JobRequest {
        job: JobId::parse(job).unwrap(),
        nodes: jobnet::base::hostlist::expand(nodes).unwrap(),
        vlan: Choice::Auto,
        pkey: PKeyChoice::Default,
        gateway: gateway.map(str::to_string),
        origin: Default::default(),
    };
    let p = plan::plan(
        Inputs {
            topology: &t,
            graph: &g,
            drivers: &set,
            held: &[],
            partitions_conf: conf,
            partitions_conf_path: None,
        },
        &req,
    )
    .unwrap();
    (p, t)
}

#[test]
fn plans_match_golden_files() {
    let (p, t) = plan_for(
        "topology/two-tier.yaml",
        "1234",
        "cn[001-004],cn[030-031],cn041",
        None,
        None,
    );
    golden("plans/two-tier-1234.txt", &render::plan_text(&p, &t));
    let (p, _) = plan_for(
        "topology/jscc.yaml",
        "88231",
        "vs[03-05],vs[17-18],vs40",
        Some("vpi-gw1"),
        None,
    );
    golden("plans/jscc-88231-gateway.json", &render::plan_json(&p));
}

#[test]
fn partitions_conf_texts_match_golden_files() {
    let admin = std::fs::read_to_string("tests/fixtures/partitions-admin.conf").unwrap();
    // A new file, an admin's file, and the same file with a second job added.
    let (p, _) = plan_for("topology/two-tier.yaml", "1234", "cn[001-003]", None, None);
    golden(
        "partitions/new-file.conf",
        &p.infiniband.unwrap().partitions_conf,
    );
    let (p, _) = plan_for(
        "topology/two-tier.yaml",
        "1234",
        "cn[001-003]",
        None,
        Some(&admin),
    );
    let one = p.infiniband.unwrap().partitions_conf;
    assert!(one.starts_with(&admin), "the admin's bytes are kept");
    assert!(
        one.contains("jobnet_1234=0x1001"),
        "0x1000 is the admin's storage partition"
    );
    golden("partitions/admin-plus-one-job.conf", &one);
    let (p, _) = plan_for(
        "topology/two-tier.yaml",
        "1235",
        "cn[004-005],login1",
        Some("gw1"),
        Some(&one),
    );
    let two = p.infiniband.unwrap().partitions_conf;
    assert!(
        two.contains("jobnet_1235=0x1002"),
        "0x1001 is held by job 1234's block"
    );
    golden("partitions/admin-plus-two-jobs.conf", &two);
}
