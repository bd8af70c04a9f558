//! What a topology file is held to beyond its syntax (issue 13): the nodes one file may describe
//! in all, counted before any hostlist is expanded, the same bound on `--nodes`, and port names
//! in the form of their switch's profile.

use jobnet::base::hostlist::{self, MAX_EXPANSION};
use jobnet::base::limits::NODES;
use jobnet::drivers::DriverSet;
use jobnet::topology;
use std::path::PathBuf;

/// Every diagnostic of `text` as `topology validate` prints them, and whether it loaded.
fn check(text: &str) -> (bool, String) {
    match topology::parse(text, "t.yaml", &DriverSet::builtin()) {
        Ok(l) => (
            true,
            l.warnings
                .iter()
                .map(|w| format!("{w}\n"))
                .collect::<String>(),
        ),
        Err(e) => (false, e.to_string()),
    }
}

mod common;

/// Exit code and stderr of `jobnet ARGS`.
fn jobnet(args: &[&str]) -> (i32, String) {
    let o = common::jobnet(args);
    (o.code, o.stderr)
}

fn file(name: &str, text: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("topology_checks");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const HEAD: &str = "name: t\nethernet: {vlan_pool: \"100-199\"}\nswitches:\n  - {name: s1, driver: arista-eos, address: 192.0.2.1}\nnodes:\n";

/// The file: six `[1-1000000]` hostlists in three entries. The entry that takes the
/// file past the bound is named with its position, the running total and the bound; nothing is
/// expanded, so this is quick even in a debug build (it took 27 s and 2.5 GB in a release build
/// and validated).
#[test]
fn a_file_naming_more_nodes_than_the_bound_is_refused_at_the_entry_that_crosses_it() {
    let text = format!(
        "{HEAD}  - {{name: \"a[1-{NODES}]\", port: \"s1:Ethernet[1-{NODES}]\"}}\n  - {{name: \"b[1-{NODES}]\", port: \"s1:Et[1-{NODES}]\"}}\n  - {{name: \"c[1-{NODES}]\", port: \"s1:Po[1-{NODES}]\"}}\n"
    );
    let (ok, msg) = check(&text);
    assert!(!ok);
    assert_eq!(
        msg.trim_end(),
        format!(
            "t.yaml:7:12: error: `b[1-{NODES}]` names {NODES} nodes and brings this file to {}, \
             more than the {NODES} one topology may describe, check the range for a typo (a digit \
             too many?); a larger fabric needs one topology file per part, each with its own \
             switches (docs/topology.md)",
            2 * NODES
        )
    );
    // The issue's own numbers: the first entry alone is past the bound.
    let text = format!(
        "{HEAD}  - {{name: \"a[1-1000000]\", port: \"s1:Ethernet[1-1000000]\"}}\n  - {{name: \"b[1-1000000]\", port: \"s1:Et[1-1000000]\"}}\n  - {{name: \"c[1-1000000]\", port: \"s1:Po[1-1000000]\"}}\n"
    );
    let (ok, msg) = check(&text);
    assert!(!ok);
    assert!(
        msg.starts_with(&format!(
            "t.yaml:6:12: error: `a[1-1000000]` names 1000000 nodes, more than the {NODES} one topology may describe, check the range"
        )),
        "{msg}"
    );
    assert_eq!(msg.matches("error:").count(), 1, "{msg}");
    // The running total counts every entry before it, however small.
    let text = format!(
        "{HEAD}  - {{name: \"x[1-2]\", port: \"s1:Ethernet[1-2]\"}}\n  - {{name: \"y[1-{}]\", port: \"s1:Et[1-{}]\"}}\n",
        NODES - 1,
        NODES - 1
    );
    let (ok, msg) = check(&text);
    assert!(!ok);
    assert!(
        msg.contains(&format!(
            "t.yaml:7:12: error: `y[1-{}]` names {} nodes and brings this file to {}, more than the {NODES}",
            NODES - 1,
            NODES - 1,
            NODES + 1
        )),
        "{msg}"
    );
    // Past what a number holds: said once, without a second message about the port list.
    let (ok, msg) = check(&format!(
        "{HEAD}  - {{name: \"z[1-999999999999999999][1-999999999999999999]\", port: \"s1:Ethernet[1-2]\"}}\n"
    ));
    assert!(!ok);
    assert!(
        msg.contains("names at least 18446744073709551615 nodes"),
        "{msg}"
    );
    assert_eq!(msg.matches("error:").count(), 1, "{msg}");
}

/// Entries that are wrong in other ways are still reported when the bound is crossed.
#[test]
fn other_errors_are_still_reported_past_the_bound() {
    let text = format!(
        "{HEAD}  - {{name: \"a[1-{NODES}]\", port: \"s1:Ethernet[1-{NODES}]\"}}\n  - {{name: \"b[1-3]\", port: \"s1:Et[1-2]\"}}\n  - {{name: \"c[2-1]\", port: \"s1:Po1\"}}\n"
    );
    let (ok, msg) = check(&text);
    assert!(!ok);
    assert!(
        msg.contains("t.yaml:7:12: error: `b[1-3]` names 3 nodes and brings this file to"),
        "{msg}"
    );
    assert!(
        msg.contains("t.yaml:7:28: error: `b[1-3]` names 3 nodes but `s1:Et[1-2]` names 2 ports"),
        "{msg}"
    );
    assert!(
        msg.contains("t.yaml:8:12: error: hostlist `c[2-1]`: range `2-1` runs backwards"),
        "{msg}"
    );
}

/// `--nodes` (and SLURM_JOB_NODELIST) go through the same hostlist code with the same bound: a
/// job cannot name more nodes than a topology may hold. Refused before the topology is read.
#[test]
fn nodes_on_the_command_line_have_the_same_bound() {
    assert_eq!(MAX_EXPANSION, NODES);
    let over = format!("n[1-{}]", NODES + 1);
    assert_eq!(
        hostlist::expand(&over).unwrap_err().to_string(),
        format!(
            "hostlist `{over}`: expands to {} names, more than {NODES}",
            NODES + 1
        )
    );
    let (code, err) = jobnet(&[
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1",
        "--nodes",
        "cn[1-1000000000000]",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "--nodes: hostlist `cn[1-1000000000000]`: expands to 1000000000000 names, more than {NODES}"
        )),
        "{err}"
    );
}

/// The cases: an Arista/NX-OS-style name on an Onyx switch and an IOS-style name on a
/// Junos switch. Validation names the switch, the port, the profile, its form and an example.
#[test]
fn another_vendors_port_names_are_reported_with_the_profiles_form() {
    let text = "name: t\nethernet: {vlan_pool: \"100-199\"}\nswitches:\n  - {name: onyx1, driver: mellanox-onyx, address: 192.0.2.1}\n  - {name: jun1, driver: junos, address: 192.0.2.2}\nlinks:\n  - {a: onyx1:1/32, b: jun1:GigabitEthernet0/1}\nnodes:\n  - {name: \"n[1-4]\", port: \"onyx1:Ethernet1/[1-4]\"}\n  - {name: \"m[1-2]\", port: \"jun1:ge-0/0/[1-2]\"}\n";
    let p = file("wrong-vendor.yaml", text);
    let (code, err) = jobnet(&["topology", "validate", &p]);
    assert_eq!(code, 0, "port names are a warning: {err}");
    let want = [
        format!(
            "{p}:7:5: warning: port jun1:GigabitEthernet0/1 (link to onyx1:1/32) does not fit how \
             junos, the driver of switch jun1, names ports: `(fe|ge|mge|xe|et)-\\d+/\\d+/\\d+(:\\d+)?|ae\\d+`, \
             write it as junos does, e.g. jun1:ge-0/0/1; if the switch really names it so, widen \
             port_names in a copy of the profile in the site's driver directory (drivers_dir, docs/drivers.md)"
        ),
        format!(
            "{p}:9:12: warning: ports onyx1:Ethernet1/[1-4] (node(s) n[1-4]) do not fit how \
             mellanox-onyx, the driver of switch onyx1, names ports: `\\d+/\\d+(/\\d+)?`, write \
             them as mellanox-onyx does, e.g. onyx1:1/1; if the switch really names them so, \
             widen port_names in a copy of the profile in the site's driver directory (drivers_dir, docs/drivers.md)"
        ),
    ];
    for w in &want {
        assert!(
            err.contains(w.as_str()),
            "stderr lacks\n{w}\n--- stderr:\n{err}"
        );
    }
    assert_eq!(err.matches("warning:").count(), 2, "{err}");
    // Written in the vendors' forms, nothing is said.
    let fixed = text
        .replace("jun1:GigabitEthernet0/1", "jun1:ge-0/0/47")
        .replace("onyx1:Ethernet1/[1-4]", "onyx1:1/[1-4]");
    assert_eq!(check(&fixed), (true, String::new()));
}

/// A gateway's Ethernet port is its switch's, and is checked by that switch's profile.
#[test]
fn a_gateways_port_is_checked_by_its_switchs_profile() {
    let text = std::fs::read_to_string("topology/two-tier.yaml")
        .unwrap()
        .replace(
            "ethernet_port: leaf4:ethernet1/1/47",
            "ethernet_port: leaf4:Ethernet47",
        );
    let (ok, msg) = check(&text);
    assert!(ok, "{msg}");
    assert!(
        msg.contains("warning: port leaf4:Ethernet47 (gateway gw1) does not fit how dell-os10, the driver of switch leaf4, names ports"),
        "{msg}"
    );
    assert!(msg.contains("e.g. leaf4:ethernet1/1/1"), "{msg}");
}

/// The shipped topologies still validate. jscc.yaml writes its Onyx core LAG as `Po1`, which the
/// Onyx templates (`interface ethernet {port}`) cannot address: that is the one thing said.
#[test]
fn shipped_topologies_validate_and_only_jsccs_lag_is_named() {
    assert_eq!(
        check(&std::fs::read_to_string("topology/two-tier.yaml").unwrap()),
        (true, String::new())
    );
    let (ok, msg) = check(&std::fs::read_to_string("topology/jscc.yaml").unwrap());
    assert!(ok, "{msg}");
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 2, "{msg}");
    assert!(lines[0].starts_with("t.yaml:21:5: warning: port core-a:Po1 (link to core-b:Po1) does not fit how mellanox-onyx"), "{msg}");
    assert!(lines[1].starts_with("t.yaml:21:5: warning: port core-b:Po1 (link to core-a:Po1) does not fit how mellanox-onyx"), "{msg}");
}
