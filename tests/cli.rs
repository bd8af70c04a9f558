//! End-to-end tests of the `jobnet` binary: every class of bad input gets its exact
//! `FILE:LINE:COL: error: ...` line and exit code, and good input gives the documented output.

mod common;

use std::path::PathBuf;
use std::process::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn err_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr:\n{}\n--- stdout:\n{}",
            self.stderr,
            self.stdout
        );
        self
    }
    #[track_caller]
    fn out_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    #[track_caller]
    fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stderr:\n{}\n--- stdout:\n{}",
            self.stderr, self.stdout
        );
        self
    }
}

fn jobnet(args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args(args)
        .env_remove("JOBNET_TOPOLOGY")
        .env_remove("JOBNET_DRIVERS_DIR")
        // Never a real state file: `plan` reads one when it exists.
        .env("JOBNET_STATE", "/nonexistent/jobnet-tests/state.db")
        .output()
        .expect("run jobnet");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Writes `text` to a file named `name` in the test scratch directory.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn validate(name: &str, text: &str) -> (Out, String) {
    let p = file(name, text);
    let p = p.to_str().unwrap().to_string();
    (jobnet(&["topology", "validate", &p]), p)
}

const BASE: &str = r#"name: t
ethernet:
  vlan_pool: "100-199"
switches:
  - {name: s1, driver: arista-eos, address: 192.0.2.1}
  - {name: s2, driver: arista-eos, address: 192.0.2.2}
links:
  - {a: s1:Ethernet1, b: s2:Ethernet1}
nodes:
  - {name: "n[1-2]", port: "s1:Ethernet[10-11]"}
  - {name: "n[3-4]", port: "s2:Ethernet[10-11]"}
"#;

#[test]
fn base_is_valid() {
    let (o, p) = validate("base.yaml", BASE);
    o.code(0).out_has(&format!(
        "{p}: valid (2 switches, 1 links, 4 nodes, 0 gateways; 0 warning(s))"
    ));
}

#[test]
fn yaml_syntax_error() {
    let (o, p) = validate(
        "syntax.yaml",
        &BASE.replace("address: 192.0.2.2}", "address: 192.0.2.2"),
    );
    // The parser notices the unclosed `{` of line 6 at the next list item.
    o.code(2).err_has(&format!(
        "{p}:8:3: error: YAML syntax: \"-\" is only valid inside a block"
    ));
}

#[test]
fn unknown_key_with_suggestion() {
    let (o, p) = validate("unknown-key.yaml", &BASE.replace("links:", "lnks:"));
    o.code(2).err_has(&format!(
        "{p}:7:1: error: unknown key `lnks` in the topology, did you mean `links`?"
    ));
    let (o, p) = validate(
        "unknown-key2.yaml",
        &BASE.replace("address: 192.0.2.1}", "adress: 192.0.2.1}"),
    );
    o.code(2).err_has(&format!(
        "{p}:5:36: error: unknown key `adress` in a switch, did you mean `address`?"
    ));
}

#[test]
fn secrets_are_refused() {
    let (o, p) = validate(
        "secret.yaml",
        &BASE.replace(
            "address: 192.0.2.1}",
            "address: 192.0.2.1, password: hunter2}",
        ),
    );
    o.code(2).err_has(&format!("{p}:5:56: error: `password` in a switch: secrets never go into topology files, put it in the credentials file"));
    assert!(
        !o.stderr.contains("hunter2"),
        "the secret itself must not be echoed"
    );
}

#[test]
fn duplicate_names() {
    let (o, p) = validate(
        "dup.yaml",
        &BASE.replace("name: s2, driver", "name: s1, driver"),
    );
    o.code(2).err_has(&format!(
        "{p}:6:12: error: duplicate name `s1`: a switch here and a switch at line 5"
    ));
    let (o, p) = validate("dup-node.yaml", &BASE.replace("\"n[3-4]\"", "\"n[2-3]\""));
    o.code(2).err_has(&format!(
        "{p}:11:12: error: duplicate name `n2`: a node here and a node at line 10"
    ));
}

#[test]
fn port_used_twice() {
    let (o, p) = validate(
        "port-twice.yaml",
        &BASE.replace("s2:Ethernet[10-11]", "s2:Ethernet[1-2]"),
    );
    o.code(2).err_has(&format!("{p}:11:12: error: port s2:Ethernet1 is used twice: by node n3 here and by link to s1:Ethernet1 at line 8"));
}

#[test]
fn link_to_unknown_switch() {
    let (o, p) = validate(
        "unknown-switch.yaml",
        &BASE.replace("b: s2:Ethernet1}", "b: s3:Ethernet1}"),
    );
    o.code(2).err_has(&format!("{p}:8:5: error: link to s1:Ethernet1 refers to unknown switch `s3` (in `s3:Ethernet1`), did you mean `s1`?"));
}

#[test]
fn hostlist_port_range_mismatch() {
    let (o, p) = validate(
        "mismatch.yaml",
        &BASE
            .replace("\"n[1-2]\"", "\"n[1-3]\"")
            .replace("\"n[3-4]\"", "\"n[5-6]\""),
    );
    o.code(2).err_has(&format!(
        "{p}:10:28: error: `n[1-3]` names 3 nodes but `s1:Ethernet[10-11]` names 2 ports"
    ));
    let (o, p) = validate(
        "bad-hostlist.yaml",
        &BASE.replace("\"n[1-2]\"", "\"n[1-2,]\""),
    );
    o.code(2).err_has(&format!(
        "{p}:10:12: error: hostlist `n[1-2,]`: empty item in `[1-2,]`"
    ));
}

#[test]
fn vlan_and_pkey_ranges_and_reserved_overlap() {
    let (o, p) = validate("vlan-range.yaml", &BASE.replace("100-199", "100-5000"));
    o.code(2).err_has(&format!(
        "{p}:3:14: error: vlan_pool: VLAN 5000 (0x1388) in `100-5000` is outside 1..4094"
    ));
    let (o, p) = validate("vlan-1.yaml", &BASE.replace("100-199", "1-199"));
    o.code(2).err_has(&format!("{p}:3:14: error: vlan_pool includes VLAN(s) 1: VLAN 1 is the default VLAN on every switch, remove them from vlan_pool or list them in reserved_vlans (\"1\")"));
    let ios = BASE
        .replace("100-199", "1000-1999")
        .replace("s2, driver: arista-eos", "s2, driver: cisco-ios");
    let (o, p) = validate("ios-reserved.yaml", &ios);
    o.code(2).err_has(&format!("{p}:3:14: error: vlan_pool includes VLAN(s) 1002-1005: cisco-ios reserves VLANs 1002-1005 (used by switch s2)"));
    let (o, _) = validate(
        "ios-reserved-ok.yaml",
        &ios.replace(
            "vlan_pool: \"1000-1999\"",
            "vlan_pool: \"1000-1999\"\n  reserved_vlans: \"1002-1005\"",
        ),
    );
    o.code(0);
    let (o, p) = validate(
        "pkey-range.yaml",
        &BASE.replace(
            "switches:",
            "infiniband:\n  pkey_pool: \"0x7000-0x8000\"\nswitches:",
        ),
    );
    o.code(2).err_has(&format!("{p}:5:14: error: pkey_pool: PKey 32768 (0x8000) in `0x7000-0x8000` is outside 1..32766 (0x1..0x7ffe)"));
    let (o, p) = validate(
        "pool-empty.yaml",
        &BASE.replace(
            "vlan_pool: \"100-199\"",
            "vlan_pool: \"100-101\"\n  reserved_vlans: \"100-101\"",
        ),
    );
    o.code(2).err_has(&format!(
        "{p}:3:14: error: vlan_pool 100-101 has no VLAN left after reserved_vlans 100-101"
    ));
}

#[test]
fn malformed_guid() {
    let text = BASE.replace(
        "port: \"s1:Ethernet[10-11]\"}",
        "port: \"s1:Ethernet[10-11]\", ib_guids: [\"0x0002c90300a1b001\", \"0002c90300a1b002\"]}",
    );
    let (o, p) = validate("guid.yaml", &text);
    o.code(2).err_has(&format!(
        "{p}:10:83: error: malformed GUID: `0002c90300a1b002` is not a port GUID"
    ));
}

#[test]
fn duplicate_guid_and_self_link() {
    let text = BASE
        .replace(
            "port: \"s1:Ethernet[10-11]\"}",
            "port: \"s1:Ethernet[10-11]\", ib_guids: [\"0x11\", \"0x12\"]}",
        )
        .replace(
            "port: \"s2:Ethernet[10-11]\"}",
            "port: \"s2:Ethernet[10-11]\", ib_guids: [\"0x13\", \"0x0011\"]}",
        );
    let (o, p) = validate("dup-guid.yaml", &text);
    o.code(2).err_has(&format!("{p}:11:12: error: port GUID 0x0000000000000011 of node n4 is also given to node n1 (line 10), every HCA port has its own GUID"));
    let (o, p) = validate(
        "self-link.yaml",
        &BASE.replace("b: s2:Ethernet1}", "b: s1:Ethernet2}"),
    );
    o.code(2).err_has(&format!("{p}:8:5: error: link s1:Ethernet1 -- s1:Ethernet2 joins switch s1 to itself, a link must join two different switches"));
}

#[test]
fn unknown_driver_profile() {
    let (o, p) = validate(
        "driver.yaml",
        &BASE.replace("s1, driver: arista-eos", "s1, driver: arista-eso"),
    );
    o.code(2).err_has(&format!("{p}:5:24: error: unknown driver profile `arista-eso` for switch s1, did you mean `arista-eos`?")).err_has("invalid: 1 error(s)");
    let (o, p) = validate(
        "driver-kind.yaml",
        &BASE.replace("s1, driver: arista-eos", "s1, driver: mellanox-gateway"),
    );
    o.code(2).err_has(&format!("{p}:5:24: error: driver `mellanox-gateway` of switch s1 is not a profile for an Ethernet switch"));
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = BASE
        .replace("links:", "lnks:")
        .replace("s1, driver: arista-eos", "s1, driver: nope")
        .replace("100-199", "100-5000");
    let (o, _) = validate("many.yaml", &text);
    o.code(2)
        .err_has("unknown key `lnks`")
        .err_has("unknown driver profile `nope`")
        .err_has("VLAN 5000")
        .err_has("invalid: 3 error(s)");
}

#[test]
fn warnings_do_not_fail_validation() {
    let text = format!(
        "{}  - {{a: s1:Ethernet2, b: s2:Ethernet2}}\n",
        BASE.replace(
            "switches:",
            "infiniband:\n  pkey_pool: \"0x10-0x20\"\nswitches:"
        )
        .replace("nodes:\n", "")
        .replace("  - {name: \"n[1-2]\"", "nodes:\n  - {name: \"n[1-2]\"")
    );
    // Move the extra link into the links section and add an island switch with a node.
    let text = text.replace("  - {a: s1:Ethernet2, b: s2:Ethernet2}\n", "");
    let text = text.replace(
        "  - {a: s1:Ethernet1, b: s2:Ethernet1}\n",
        "  - {a: s1:Ethernet1, b: s2:Ethernet1}\n  - {a: s1:Ethernet2, b: s2:Ethernet2}\n",
    );
    let text = text.replace("  - {name: s2, driver: arista-eos, address: 192.0.2.2}\n", "  - {name: s2, driver: arista-eos, address: 192.0.2.2}\n  - {name: s3, driver: arista-eos, address: 192.0.2.3}\n");
    let text = format!("{text}  - {{name: island1, port: s3:Ethernet1, ib_guids: [\"0x99\"]}}\n");
    let (o, p) = validate("warnings.yaml", &text);
    o.code(0)
        .out_has("valid (3 switches, 2 links, 5 nodes, 0 gateways; 3 warning(s))")
        .err_has(&format!("{p}:5:14: warning: infiniband is configured but 4 node(s) have no ib_guids: n[1-4]"))
        .err_has(&format!("{p}:9:12: warning: nodes island1 on switch s3 cannot reach the rest of the fabric"))
        .err_has(&format!("{p}:12:5: warning: 2 links join s1 and s2 (lines 11, 12) and are not all marked `lag: true`; they are treated as one edge"));
}

#[test]
fn every_shipped_example_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir("topology").unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            jobnet(&["topology", "validate", p.to_str().unwrap()])
                .code(0)
                .out_has("valid");
            n += 1;
        }
    }
    assert!(n >= 2, "expected the shipped examples in topology/");
}

// ---- plan ----

fn plan_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec![
        "plan",
        "--format",
        "json",
        "--partitions-conf",
        "/nonexistent/partitions.conf",
    ];
    all.extend_from_slice(args);
    let o = jobnet(&all);
    o.code(0);
    serde_json::from_str(&o.stdout).expect("plan JSON")
}

#[test]
fn plan_json_has_the_documented_shape() {
    let v = plan_json(&[
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1234",
        "--nodes",
        "cn[001-002],cn041",
        "--gateway",
        "gw1",
    ]);
    assert_eq!(v["job"], "1234");
    assert_eq!(v["vlan"], 1000);
    assert_eq!(v["pkey"], "0x1000");
    assert_eq!(v["nodes"], serde_json::json!(["cn001", "cn002", "cn041"]));
    assert_eq!(
        v["ethernet"]["switches"],
        serde_json::json!(["leaf1", "leaf3", "leaf4", "spine1", "spine2"])
    );
    let links: Vec<String> = v["ethernet"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{} {}", l["a"].as_str().unwrap(), l["b"].as_str().unwrap()))
        .collect();
    assert_eq!(
        links,
        [
            "spine1:Ethernet1 leaf1:Ethernet49",
            "spine2:Port-Channel3 leaf3:Port-Channel1",
            "spine1:Ethernet4 leaf4:ethernet1/1/49",
            "spine2:Ethernet4 leaf4:ethernet1/1/50"
        ]
    );
    let dev = &v["ethernet"]["devices"][0];
    assert_eq!(dev["name"], "leaf1");
    assert_eq!(dev["driver"], "arista-eos");
    assert_eq!(
        dev["ops"][0],
        serde_json::json!({"op": "create_vlan", "vlan": 1000, "name": "jobnet-1234"})
    );
    assert!(dev["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "switchport trunk allowed vlan add 1000"));
    let ib = &v["infiniband"];
    assert_eq!(ib["partition"], "jobnet_1234");
    assert_eq!(
        ib["members"],
        serde_json::json!([
            "0x0002c90300a1b001",
            "0x0002c90300a1b002",
            "0x0002c90300a1b029",
            "0x0002c903000abcd1"
        ])
    );
    assert!(ib["partitions_conf"]
        .as_str()
        .unwrap()
        .starts_with("Default=0x7fff, ipoib : ALL=full;\n# BEGIN jobnet managed"));
    assert_eq!(
        v["gateway"]["ops"][0],
        serde_json::json!({"op": "proxy_arp_create", "vlan": 1000, "pkey": "0x1000"})
    );
    // leaf4 carries the VLAN to the gateway's port.
    let leaf4 = v["ethernet"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "leaf4")
        .unwrap();
    assert!(leaf4["ops"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["port"] == "ethernet1/1/47" && o["peer"] == "gateway gw1"));
}

#[test]
fn plan_without_infiniband_has_null_sections() {
    let p = file("plain.yaml", BASE);
    let v = plan_json(&[
        "--topology",
        p.to_str().unwrap(),
        "--job",
        "9",
        "--nodes",
        "n[1-4]",
        "--vlan",
        "150",
    ]);
    assert_eq!(v["vlan"], 150);
    assert!(v["pkey"].is_null());
    assert!(v["infiniband"].is_null());
    assert!(v["gateway"].is_null());
    assert_eq!(
        v["ethernet"]["links"],
        serde_json::json!([{"a": "s1:Ethernet1", "b": "s2:Ethernet1"}])
    );
}

#[test]
fn plan_is_independent_of_file_order() {
    let reordered = {
        let mut lines: Vec<&str> = BASE.lines().collect();
        lines.swap(4, 5); // the two switches
        lines.swap(9, 10); // the two node entries
        lines.join("\n") + "\n"
    };
    let a = file("order-a.yaml", BASE);
    let b = file("order-b.yaml", &reordered);
    let va = plan_json(&[
        "--topology",
        a.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "n[1-4]",
    ]);
    let vb = plan_json(&[
        "--topology",
        b.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "n[1-4]",
    ]);
    assert_eq!(va["ethernet"], vb["ethernet"]);
    assert_eq!(va["nodes"], vb["nodes"]);
}

#[test]
fn access_mode_sets_access_vlans() {
    let p = file(
        "access.yaml",
        &BASE.replace(
            "vlan_pool: \"100-199\"",
            "vlan_pool: \"100-199\"\n  node_port_mode: access",
        ),
    );
    let v = plan_json(&[
        "--topology",
        p.to_str().unwrap(),
        "--job",
        "5",
        "--nodes",
        "n1",
    ]);
    assert_eq!(
        v["ethernet"]["devices"][0]["ops"][1],
        serde_json::json!({"op": "access_set", "port": "Ethernet10", "vlan": 100, "node": "n1", "replaces": null})
    );
    assert_eq!(v["ethernet"]["switches"], serde_json::json!(["s1"]));
    assert_eq!(v["ethernet"]["links"], serde_json::json!([]));
}

#[test]
fn plan_input_errors() {
    let t = "topology/two-tier.yaml";
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "1",
        "--nodes",
        "cn[001-002],cn999,cn998",
    ])
    .code(2)
    .err_has("unknown node(s) cn[998-999] (from --nodes): not in topology topology/two-tier.yaml");
    jobnet(&["plan", "--topology", t, "--job", "1", "--nodes", "cn0o1"])
        .code(2)
        .err_has("did you mean `cn001`?");
    jobnet(&["plan", "--topology", t, "--job", "1", "--nodes", "cn[1-2,]"])
        .code(2)
        .err_has("--nodes: hostlist `cn[1-2,]`: empty item");
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "1;reboot",
        "--nodes",
        "cn001",
    ])
    .code(2)
    .err_has("--job: job id `1;reboot` contains `;`");
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--vlan",
        "4095",
    ])
    .code(2)
    .err_has("--vlan: VLAN 4095 is out of range 1..4094");
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--vlan",
        "1003",
    ])
    .code(2)
    .err_has("VLAN 1003 (from --vlan) is not usable: it is in reserved_vlans 1,1002-1005")
    .err_has("choose another VLAN or let jobnet choose one (hint: --vlan auto)");
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--vlan",
        "2500",
    ])
    .code(2)
    .err_has("it is outside vlan_pool 1000-1999")
    .err_has("(hint: --vlan auto)");
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--pkey",
        "0x8001",
    ])
    .code(2)
    .err_has("--pkey: PKey 0x8001 is out of range");
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--gateway",
        "gw2",
    ])
    .code(2)
    .err_has("unknown gateway `gw2` (from --gateway)")
    .err_has("did you mean `gw1`?");
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--gateway",
        "gw1",
        "--pkey",
        "none",
    ])
    .code(2)
    .err_has("the gateway (from --gateway) needs the job's PKey, but no partition was asked for (from --pkey)")
    .err_has("(hint: drop --pkey)");
    jobnet(&[
        "plan",
        "--topology",
        "/nonexistent/topo.yaml",
        "--job",
        "1",
        "--nodes",
        "cn001",
    ])
    .code(2)
    .err_has("cannot read topology file /nonexistent/topo.yaml");
}

#[test]
fn topology_defaults_to_env() {
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args(["plan", "--job", "1", "--nodes", "cn001", "--pkey", "none"])
        .env("JOBNET_TOPOLOGY", "topology/two-tier.yaml")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("job 1 on demo-fabric"));
}

#[test]
fn disconnected_nodes_are_named() {
    let p = file(
        "split.yaml",
        &BASE.replace("b: s2:Ethernet1}", "b: s2:Ethernet1, state: down}"),
    );
    jobnet(&["plan", "--topology", p.to_str().unwrap(), "--job", "1", "--nodes", "n[1-4]"])
        .code(2)
        .err_has("cannot join the job's nodes: n[1-2] (on s1) and n[3-4] (on s2) are in separate parts of the fabric");
}

/// BASE with an infiniband section (`pool`, a reload command) and GUIDs for n1, n2.
fn with_infiniband(pool: &str) -> String {
    BASE.replace(
        "switches:",
        &format!(
            "infiniband:\n  pkey_pool: \"{pool}\"\n  reload: {{command: \"true\"}}\nswitches:"
        ),
    )
    .replace(
        "port: \"s1:Ethernet[10-11]\"}",
        "port: \"s1:Ethernet[10-11]\", ib_guids: [\"0x101\", \"0x102\"]}",
    )
}

#[test]
fn pkey_pool_exhausted_exits_3() {
    let topo = with_infiniband("0x10-0x11");
    let p = file("exhaust.yaml", &topo);
    let conf = file("exhaust.conf", "Default=0x7fff, ipoib : ALL=full;\nstorage=0x0010 : 0x1=full;\nbackup=0x8011, ipoib : 0x2=full;\n");
    jobnet(&[
        "plan",
        "--topology",
        p.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "n1",
        "--partitions-conf",
        conf.to_str().unwrap(),
    ])
    .code(3)
    .err_has("PKey pool exhausted: every PKey in 0x0010-0x0011")
    // Who holds them, named with the file actually read (here --partitions-conf's).
    .err_has(&format!(
        "is in use: 0x0010 by the admin partition `storage` in {}, 0x0011 by the admin partition `backup` in {}",
        conf.display(),
        conf.display()
    ));
    // An explicit PKey an admin partition uses is refused by name.
    jobnet(&[
        "plan",
        "--topology",
        p.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "n1",
        "--pkey",
        "0x11",
        "--partitions-conf",
        conf.to_str().unwrap(),
    ])
    .code(2)
    .err_has(&format!(
        "PKey 0x0011 (from --pkey) is not usable: the admin partition `backup` in {} uses it",
        conf.display()
    ));
}

#[test]
fn existing_partitions_conf_is_kept_byte_for_byte() {
    let admin = "# site file\nDefault=0x7fff, ipoib : ALL=full;\nstorage=0x1000 ,ipoib: 0x0002c90300a1b010=full ; # 0x1000 taken\n";
    let conf = file("keep.conf", admin);
    let o = jobnet(&[
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "77",
        "--nodes",
        "cn001",
        "--format",
        "json",
        "--partitions-conf",
        conf.to_str().unwrap(),
    ]);
    o.code(0);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["pkey"], "0x1001", "0x1000 belongs to the admin partition");
    let text = v["infiniband"]["partitions_conf"].as_str().unwrap();
    assert!(text.starts_with(admin));
    assert_eq!(
        v["infiniband"]["partitions_conf_old"].as_str().unwrap(),
        admin
    );
}

#[test]
fn broken_managed_region_is_refused() {
    let conf = file(
        "broken.conf",
        "Default=0x7fff : ALL=full;\n# BEGIN jobnet managed: x\njobnet_1=0x1000 : 0x1=full;\n",
    );
    jobnet(&[
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "7",
        "--nodes",
        "cn001",
        "--partitions-conf",
        conf.to_str().unwrap(),
    ])
    .code(2)
    .err_has(":2: `# BEGIN jobnet managed` has no matching `# END jobnet managed`");
}

#[test]
fn text_dot_and_svg_views() {
    let args = [
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1234",
        "--nodes",
        "cn[001-004],cn[030-031],cn041",
        "--partitions-conf",
        "/nonexistent/p.conf",
    ];
    let o = jobnet(&args);
    o.code(0)
        .out_has("subgraph: 4 switch(es), 3 link(s), cost 3")
        .out_has("== switch leaf3 (cisco-ios, 192.0.2.13:22)")
        .out_has("+jobnet_1234=0x1000, ipoib :");
    let mut dot = args.to_vec();
    dot.extend(["--format", "dot"]);
    jobnet(&dot).code(0).out_has("graph \"demo-fabric\" {").out_has("rankdir=TB").out_has("tooltip=\"spine2:Port-Channel3 -- leaf3:Port-Channel1 (cost 1, lag)\", penwidth=4.5, color=\"#d62728\"");
    let mut svg = args.to_vec();
    svg.extend(["--format", "svg"]);
    let o = jobnet(&svg);
    o.code(0)
        .out_has("<svg xmlns=\"http://www.w3.org/2000/svg\"")
        .out_has("job: cn[001-004]");
    assert!(o.stdout.trim_end().ends_with("</svg>"));
    jobnet(&["topology", "show", "topology/jscc.yaml"])
        .code(0)
        .out_has("5 switches, 7 links (7 up, 0 down), 48 nodes, 1 gateways");
    let o = jobnet(&["topology", "show", "topology/jscc.yaml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["counts"]["nodes"], 48);
    assert_eq!(v["switches"][2]["nodes"], "vs[01-16]");
}

#[test]
fn generated_fat_tree_validates_and_plans() {
    let o = jobnet(&["topology", "generate", "fat-tree", "--nodes", "500"]);
    o.code(0);
    let p = file("ft500.yaml", &o.stdout);
    jobnet(&["topology", "validate", p.to_str().unwrap()])
        .code(0)
        .out_has("valid (32 switches, 80 links, 500 nodes, 0 gateways; 0 warning(s))");
    let v = plan_json(&[
        "--topology",
        p.to_str().unwrap(),
        "--job",
        "42",
        "--nodes",
        "cn[0001-0100]",
    ]);
    let sw = v["ethernet"]["switches"].as_array().unwrap().len();
    let links = v["ethernet"]["links"].as_array().unwrap().len();
    assert_eq!(links + 1, sw, "a tree");
    assert_eq!(v["infiniband"]["members"].as_array().unwrap().len(), 100);
}

#[test]
fn site_driver_directory_overrides_and_is_checked() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("drivers-site");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ours = std::fs::read_to_string("switch-drivers/arista-eos.yaml")
        .unwrap()
        .replace("save: [\"write memory\"]", "save: []")
        .replace("name {name}", "name SITE-{name}");
    std::fs::write(dir.join("arista-eos.yaml"), ours).unwrap();
    let o = jobnet(&[
        "--drivers-dir",
        dir.to_str().unwrap(),
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "3",
        "--nodes",
        "cn001",
        "--pkey",
        "none",
    ]);
    o.code(0).out_has("name SITE-jobnet-3");
    std::fs::write(
        dir.join("broken.yaml"),
        "name: broken\nkind: ethernet\nops: {create_vlan: [\"vlan {oops}\"]}\n",
    )
    .unwrap();
    let o = jobnet(&[
        "--drivers-dir",
        dir.to_str().unwrap(),
        "topology",
        "validate",
        "topology/two-tier.yaml",
    ]);
    o.code(2)
        .err_has("broken.yaml:3:21: error: ops.create_vlan: unknown placeholder `{oops}`");
}

// ---- up / down / status / recover (devices that need no root; the OVS lab covers the rest) ----

fn state_dir(name: &str) -> String {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli-state")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    d.join("state.db").to_str().unwrap().to_string()
}

#[test]
fn lifecycle_commands_on_an_empty_state() {
    let st = state_dir("empty");
    jobnet(&["--state", &st, "status"])
        .code(0)
        .out_has("no jobs");
    // A state file named with --state that does not exist: an error for down and recover (a
    // typo in an epilog must not pass over a leak); the default path missing is only a warning.
    jobnet(&["--state", &st, "down", "--job", "42"])
        .code(1)
        .err_has("was named explicitly");
    jobnet(&["--state", &st, "recover"])
        .code(1)
        .err_has("was named explicitly");
    let default_missing = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
            .args(args)
            .env("JOBNET_STATE", &st)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = default_missing(&["down", "--job", "42"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("job 42 is not known; nothing to do"), "{out}");
    let (code, out) = default_missing(&["recover"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("nothing to recover"), "{out}");
    jobnet(&["--state", &st, "status", "--job", "42"])
        .code(2)
        .err_has("--job: no such job 42: state file")
        .err_has("(hint: --state / $JOBNET_STATE)");
    let o = jobnet(&["--state", &st, "status", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&o.stdout).unwrap(),
        serde_json::json!({"jobs": []})
    );
}

#[test]
fn up_without_credentials_is_refused_before_any_change() {
    // Found before any device is contacted (exit 2), not at the first connection (a rollback,
    // exit 4, which a scheduler would requeue): no traffic leaves this host.
    let st = state_dir("no-ssh");
    jobnet(&["--state", &st, "--credentials", "/nonexistent/credentials.yaml", "up", "--topology", "topology/two-tier.yaml", "--job", "1234", "--nodes", "cn[001-002]", "--pkey", "none"])
        .code(2)
        .err_has("job 1234: cannot reach leaf1 (192.0.2.11): credentials file /nonexistent/credentials.yaml does not exist")
        .err_has("nothing was changed (hint: --credentials / $JOBNET_CREDENTIALS)");
    let o = jobnet(&[
        "--state", &st, "status", "--job", "1234", "--format", "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["jobs"][0]["state"], "down", "released: {}", o.stdout);
    assert_eq!(
        v["jobs"][0]["journal"],
        serde_json::json!([]),
        "nothing was sent"
    );
    // A directory given as the credentials file says so (no chmod advice).
    jobnet(&[
        "--state",
        &st,
        "--credentials",
        "/tmp",
        "up",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1234",
        "--nodes",
        "cn[001-002]",
        "--pkey",
        "none",
    ])
    .code(2)
    .err_has("/tmp is a directory")
    .err_has("(hint: --credentials / $JOBNET_CREDENTIALS)");
}

#[test]
fn up_refuses_what_this_build_cannot_apply_and_bad_failpoints() {
    let st = state_dir("refuse");
    let shipped = std::fs::read_to_string("topology/two-tier.yaml").unwrap();
    let no_reload = file(
        "no-reload.yaml",
        &shipped.replace("  reload: {pidfile: /run/opensm.pid}", "  # no reload"),
    );
    jobnet(&[
        "--state",
        &st,
        "up",
        "--topology",
        no_reload.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--pkey",
        "auto",
    ])
    .code(2)
    .err_has("--pkey: the topology's infiniband section has no `reload`, so jobnet cannot make OpenSM apply a partition")
    .err_has("or ask for no partition (hint: --pkey none)");
    jobnet(&[
        "--state",
        &st,
        "up",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--gateway",
        "gw1",
    ])
    .code(2)
    .err_has("--gateway: driver profile mellanox-gateway of gateway gw1 is not verified against its vendor manual")
    .err_has("in the site's driver directory (hint: --drivers-dir / $JOBNET_DRIVERS_DIR)");
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args(["--state", &st, "down", "--job", "1"])
        .env("JOBNET_FAILPOINT", "intent:x:pause")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("JOBNET_FAILPOINT count `x` is not a number")
    );
}

#[test]
fn up_dry_run_plans_against_the_state() {
    let st = state_dir("dry");
    jobnet(&[
        "--state",
        &st,
        "up",
        "--dry-run",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "5",
        "--nodes",
        "cn001",
        "--pkey",
        "none",
    ])
    .code(0)
    .out_has("jobnet plan: job 5 on demo-fabric")
    .out_has("VLAN:     1000");
}

// ---- partitions.conf ----

#[test]
fn ib_check_reports_opensm_traps_with_positions() {
    let good = file(
        "good.conf",
        "Default=0x7fff, ipoib : ALL=full;\njob=0x1001, ipoib :\n    0x100001=full;\n",
    );
    jobnet(&["ib", "check", good.to_str().unwrap()])
        .code(0)
        .out_has("valid (2 partition(s); 0 warning(s))")
        .out_has("job                  0x1001       1 member(s)  line 2");
    let bad = file(
        "semicolon.conf",
        "Default=0x7fff : ALL=full;\njob=0x1001 :\n    0x100001=full\n  ;\n",
    );
    let p = bad.to_str().unwrap().to_string();
    jobnet(&["ib", "check", &p])
        .code(2)
        .err_has(&format!("{p}:4:3: error: `;` is the first character of the line: OpenSM's parser then reads stale bytes"))
        .err_has("would be rejected or misread by OpenSM: 1 error(s)");
    let o = jobnet(&["ib", "check", good.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        v["partitions"][1],
        serde_json::json!({"name": "job", "pkey": "0x1001", "line": 2, "members": 1, "flags": ["ipoib"]})
    );
}

#[test]
fn plan_refuses_an_already_broken_partitions_conf() {
    let conf = file(
        "admin-broken.conf",
        "Default=0x7fff : ALL=full;\nstorage=0x10 : 0x1, 0xnotaguid;\n",
    );
    let p = conf.to_str().unwrap().to_string();
    jobnet(&[
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "7",
        "--nodes",
        "cn001",
        "--partitions-conf",
        &p,
    ])
    .code(2)
    .err_has(&format!(
        "{p} is already invalid, so jobnet will not touch it"
    ))
    .err_has(&format!("{p}:2:21: error: bad PortGUID `0xnotaguid`"));
}

#[test]
fn import_ib_matches_hosts_and_reports_differences() {
    let topo = file(
        "import.yaml",
        "name: t\nethernet: {vlan_pool: \"100-199\"}\ninfiniband: {pkey_pool: \"0x10-0x20\"}\nswitches:\n  - {name: s1, driver: arista-eos, address: 192.0.2.1}\nnodes:\n  - {name: \"cn[001-004]\", port: \"s1:Ethernet[1-4]\", ib_guids: [\"0x1\", \"0x2c90300a1b011\", \"0x3\", \"0x4\"]}\n",
    );
    let o = jobnet(&[
        "topology",
        "import-ib",
        "tests/fixtures/ibnetdiscover/hand-written-mlnx.txt",
        "--topology",
        topo.to_str().unwrap(),
    ]);
    o.code(0)
        .out_has("4 HCA port(s) in tests/fixtures/ibnetdiscover/hand-written-mlnx.txt; 3 of 4 topology node(s) matched")
        .out_has("in the topology, not found by ibnetdiscover: cn004")
        .out_has("found by ibnetdiscover, not in the topology: stray9")
        .out_has("GUID in the topology differs from the discovered one: cn[001,003]")
        // cn004 was not discovered and keeps its GUID from the topology.
        .out_has("    ib_guids: [\"0x0002c90300a1b001\", \"0x0002c90300a1b011\", \"0x0002c90300a1b022\", \"0x0000000000000004\"]");
    let v: serde_json::Value = serde_json::from_str(
        &jobnet(&[
            "topology",
            "import-ib",
            "tests/fixtures/ibnetdiscover/hand-written-mlnx.txt",
            "--topology",
            topo.to_str().unwrap(),
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(
        v["matches"][2],
        serde_json::json!({"node": "cn003", "guid": "0x0002c90300a1b022", "current": "0x0000000000000003", "other_ports": []})
    );
    jobnet(&[
        "topology",
        "import-ib",
        "Cargo.toml",
        "--topology",
        topo.to_str().unwrap(),
    ])
    .code(2)
    .err_has("Cargo.toml:1:1: error: no Switch or Ca record found");
}

#[test]
fn partition_flags_reach_the_partition_header() {
    let topo = BASE.replace("switches:", "infiniband:\n  pkey_pool: \"0x10-0x20\"\n  reload: {command: \"true\"}\n  partition_flags: {mtu: 4, rate: 7, sl: 0, defmember: full}\nswitches:").replace(
        "port: \"s1:Ethernet[10-11]\"}",
        "port: \"s1:Ethernet[10-11]\", ib_guids: [\"0x101\", \"0x102\"]}",
    );
    let p = file("flags.yaml", &topo);
    let v = plan_json(&[
        "--topology",
        p.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "n1",
    ]);
    assert!(v["infiniband"]["partitions_conf"]
        .as_str()
        .unwrap()
        .contains("jobnet_1=0x0010, ipoib, mtu=4, rate=7, sl=0, defmember=full :"));
    let (o, f) = validate("flags-bad.yaml", &topo.replace("mtu: 4", "mtu: 9"));
    o.code(2).err_has(&format!(
        "{f}:7:26: error: partition_flags.mtu `9` is not valid, give an IB MTU code 1..5"
    ));
}

// ---- InfiniBand-only fabrics through the command line ----

fn ib_only(name: &str) -> (PathBuf, PathBuf) {
    let conf = file(
        &format!("{name}.conf"),
        "# admins\nDefault=0x7fff, ipoib : ALL=full;\n",
    );
    let topo = file(
        &format!("{name}.yaml"),
        &format!(
            "name: ib-only\ninfiniband:\n  pkey_pool: \"0x10-0x12\"\n  partitions_conf: {}\n  reload: {{command: \"true\"}}\n  reload_window_ms: 10\nnodes:\n  - {{name: \"n[1-3]\", ib_guids: [\"0x100001\", \"0x100004\", \"0x100007\"]}}\n",
            conf.display()
        ),
    );
    (topo, conf)
}

/// `up` of `job` on `node` of an InfiniBand-only topology `t` with state file `st`.
fn up_ib(st: &str, t: &str, job: &str, node: &str) -> Out {
    jobnet(&[
        "--state",
        st,
        "up",
        "--topology",
        t,
        "--job",
        job,
        "--nodes",
        node,
    ])
}

#[test]
fn infiniband_only_topologies_plan_and_apply_partitions() {
    let (topo, conf) = ib_only("ibonly");
    let t = topo.to_str().unwrap();
    jobnet(&["topology", "validate", t])
        .code(0)
        .out_has("valid (0 switches, 0 links, 3 nodes, 0 gateways");
    let v: serde_json::Value = serde_json::from_str(
        &jobnet(&[
            "plan",
            "--topology",
            t,
            "--job",
            "7",
            "--nodes",
            "n[1-2]",
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(v["vlan"], serde_json::Value::Null);
    assert_eq!(v["pkey"], "0x0010");
    assert_eq!(v["ethernet"]["devices"], serde_json::json!([]));
    jobnet(&[
        "plan",
        "--topology",
        t,
        "--job",
        "7",
        "--nodes",
        "n1",
        "--vlan",
        "100",
    ])
    .code(2)
    .err_has("VLAN 100 (from --vlan) is not usable: the topology")
    .err_has("has no `ethernet` section");
    // up/down through the real command line, and `--partitions-conf` is what `up` writes.
    let st = state_dir("ibonly");
    let other = file("ibonly-other.conf", "Default=0x7fff, ipoib : ALL=full;\n");
    let o = jobnet(&[
        "--state",
        &st,
        "up",
        "--topology",
        t,
        "--job",
        "7",
        "--nodes",
        "n[1-2]",
        "--partitions-conf",
        other.to_str().unwrap(),
        "--format",
        "json",
    ]);
    o.code(0);
    let up: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(up["pkey"], "0x0010", "hex text, as in plan");
    assert_eq!(up["vlan"], serde_json::Value::Null);
    assert!(std::fs::read_to_string(&other)
        .unwrap()
        .contains("jobnet_7=0x0010"));
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "# admins\nDefault=0x7fff, ipoib : ALL=full;\n",
        "the topology's file is not touched"
    );
    let s: serde_json::Value =
        serde_json::from_str(&jobnet(&["--state", &st, "status", "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(s["jobs"][0]["pkey"], "0x0010");
    jobnet(&["--state", &st, "down", "--job", "7"]).code(0);
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "Default=0x7fff, ipoib : ALL=full;\n"
    );
    let o = jobnet(&[
        "--state",
        &st,
        "up",
        "--topology",
        t,
        "--job",
        "8",
        "--nodes",
        "n3",
    ]);
    o.code(0)
        .out_has("job 8 up: no VLAN, PKey 0x0010 for n3 on 1 device(s) (opensm (");
}

#[test]
fn the_shipped_example_plans_what_up_would_do() {
    // Without `reload`, `up` applies no partition: neither does its dry run (and it says why).
    let shipped = std::fs::read_to_string("topology/two-tier.yaml").unwrap();
    let p = file(
        "no-reload-plan.yaml",
        &shipped.replace("  reload: {pidfile: /run/opensm.pid}", ""),
    );
    let o = jobnet(&[
        "plan",
        "--topology",
        p.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "cn001",
    ]);
    o.code(0)
        .out_has("PKey:     none")
        .out_has("has no `reload`: no partition is applied");
    // `plan` takes the running jobs' allocations into account, like `up --dry-run`.
    let (topo, _) = ib_only("ibonly-plan");
    let t = topo.to_str().unwrap();
    let st = state_dir("plan-allocations");
    jobnet(&[
        "--state",
        &st,
        "up",
        "--topology",
        t,
        "--job",
        "1",
        "--nodes",
        "n1",
    ])
    .code(0);
    for cmd in [&["plan"][..], &["up", "--dry-run"][..]] {
        let mut args = vec!["--state", st.as_str()];
        args.extend_from_slice(cmd);
        args.extend_from_slice(&["--topology", t, "--job", "2", "--nodes", "n2"]);
        jobnet(&args).code(0).out_has("PKey:     0x0011");
    }
    jobnet(&["--state", &st, "down", "--job", "1"]).code(0);
}

// ---- Files OpenSM reads otherwise than they look ----

#[test]
fn ib_check_rejects_what_opensm_rejects_or_misreads() {
    let cases: &[(&str, &str, &str)] = &[
        ("crlf", "Default=0x7fff, ipoib : ALL=full;\r\n", ":1:34: error: a CR (Windows line end)"),
        ("bom", "\u{feff}Default=0x7fff, ipoib : ALL=full;\n", ":1:1: error: the file starts with a UTF-8 byte order mark"),
        ("nul", "Default=0x7fff, ipoib : ALL=full;\nx=0x10 :\0 0x1=full;\n", ":2:9: error: a NUL byte"),
        ("caps", "Default=0x7fff, ipoib : ALL=FULL;\n", ":1:25: error: membership `FULL` of `ALL` is unknown: OpenSM silently makes the port a LIMITED member"),
        ("empty", "", ":1:1: error: no partition statements"),
        ("comments", "# nothing yet\n", ":1:1: error: no partition statements"),
        ("missing-semicolon", "Default=0x7fff : ALL=full\nstorage=0x10 : 0x1=full;\n", ":2:1: error: bad PortGUID `storage`, the partition `Default` that starts on line 1 has no `;`"),
    ];
    for (name, text, want) in cases {
        let f = file(&format!("check-{name}.conf"), text);
        jobnet(&["ib", "check", f.to_str().unwrap()])
            .code(2)
            .err_has(&format!("{}{want}", f.display()));
    }
    let latin1 = file("check-latin1.conf", "");
    std::fs::write(&latin1, b"# K\xf6ln\nDefault=0x7fff : ALL=full;\n").unwrap();
    jobnet(&["ib", "check", latin1.to_str().unwrap()])
        .code(2)
        .err_has(":1:4: error: byte 0xf6 is not UTF-8 text");
    // Unreadable (a directory) is an environment problem: 1; missing is bad input: 2.
    jobnet(&["ib", "check", "/"]).code(1);
    jobnet(&["ib", "check", "/nonexistent/p.conf"]).code(2);
}

/// The corpus the OpenSM lab proves against the real OpenSM: jobnet's verdicts, here without it.
#[test]
fn opensm_corpus_verdicts() {
    let mut seen = 0;
    for class in ["accept", "reject", "stricter", "misread"] {
        let Ok(dir) = std::fs::read_dir(format!("tests/opensm-cases/{class}")) else {
            continue;
        };
        for f in dir {
            let f = f.unwrap().path();
            let o = jobnet(&["ib", "check", f.to_str().unwrap()]);
            let want = if class == "accept" { 0 } else { 2 };
            assert_eq!(o.code, want, "{}: {}", f.display(), o.stderr);
            seen += 1;
        }
    }
    assert!(seen >= 25, "{seen} cases");
}

#[test]
fn unbounded_and_impossible_inputs_are_refused() {
    let o = jobnet(&["topology", "validate", "/dev/zero"]);
    o.code(2).err_has("/dev/zero is larger than 64 MiB");
    jobnet(&["ib", "check", "/dev/zero"])
        .code(2)
        .err_has("larger than 64 MiB");
    for (flag, value, want) in [
        (
            "--hosts-per-leaf",
            "0",
            "--hosts-per-leaf 0 is out of range 1..4096",
        ),
        ("--nodes", "0", "--nodes 0 is out of range 1..200000"),
        ("--aggs-per-pod", "1024", "links (more than 10000000)"),
    ] {
        let mut args = vec!["topology", "generate", "fat-tree", flag, value];
        if flag == "--aggs-per-pod" {
            args.extend_from_slice(&[
                "--nodes",
                "100000",
                "--cores-per-agg",
                "1024",
                "--hosts-per-leaf",
                "1",
            ]);
        }
        jobnet(&args).code(2).err_has(want);
    }
}

#[test]
fn read_only_commands_create_no_state() {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("typo-state");
    let _ = std::fs::remove_dir_all(&d);
    let st = d.join("dir").join("state.db");
    let o = jobnet(&["--state", st.to_str().unwrap(), "status"]);
    o.code(0).out_has("no jobs").err_has("does not exist");
    jobnet(&["--state", st.to_str().unwrap(), "status", "--job", "1"]).code(2);
    jobnet(&[
        "--state",
        st.to_str().unwrap(),
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1",
        "--nodes",
        "cn001",
    ])
    .code(0);
    assert!(!d.exists(), "read-only commands created {}", d.display());
}

#[test]
fn huge_lists_in_messages_are_folded() {
    let p = file("names.yaml", &with_infiniband("0x10-0x11"));
    // 90,000 unknown nodes: a readable line, not 20 KB.
    let o = jobnet(&[
        "plan",
        "--topology",
        p.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "a[1-300]b[1-300]",
    ]);
    o.code(2).err_has("more groups (90000 names in all)");
    assert!(o.stderr.len() < 2000, "{} bytes", o.stderr.len());
}

// ---- The command line as a new user meets it ----

#[test]
fn with_format_json_errors_are_json_too() {
    let (_, p) = validate("json-error.yaml", "name: x\nswitches: [\n");
    let o = jobnet(&["topology", "validate", &p, "--format", "json"]);
    o.code(2);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["error"]["code"], 2);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is invalid: 1 error(s)"));
    assert_eq!(v["error"]["diagnostics"][0]["severity"], "error");
    assert_eq!(v["error"]["diagnostics"][0]["file"], p.as_str());
    // A bad value of a flag, before any file is read.
    let o = jobnet(&[
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1",
        "--nodes",
        "cn[001-",
        "--format",
        "json",
    ]);
    o.code(2).err_has("--nodes:");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("--nodes:"));
    // An argument clap itself refuses.
    let o = jobnet(&["status", "--format", "json", "--no-such-flag"]);
    o.code(2);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag"),
        "{v}"
    );
    // Text mode keeps stdout clean.
    let o = jobnet(&["topology", "validate", &p]);
    o.code(2);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
}

#[test]
fn formats_are_only_what_a_command_prints() {
    for args in [
        &["status", "--format", "svg"][..],
        &["down", "--job", "1", "--format", "dot"],
        &["recover", "--format", "dot"],
        &["ib", "check", "x.conf", "--format", "svg"],
        &["up", "--job", "1", "--nodes", "cn001", "--format", "svg"],
    ] {
        jobnet(args).code(2).err_has("invalid value");
    }
}

#[test]
fn help_shows_own_flags_first_and_global_ones_apart() {
    let o = jobnet(&["down", "--help"]);
    o.code(0);
    let own = o.stdout.find("--force").unwrap();
    let heading = o.stdout.find("Global options:").unwrap();
    let global = o.stdout.find("--known-hosts").unwrap();
    assert!(own < heading && heading < global, "{}", o.stdout);
    // Every flag of every command has a description.
    for cmd in [
        &["plan"][..],
        &["up"],
        &["down"],
        &["status"],
        &["prune"],
        &["recover"],
        &["ib", "check"],
        &["topology", "validate"],
        &["topology", "show"],
        &["topology", "import-ib"],
        &["topology", "generate", "fat-tree"],
        &["completions"],
        &["hook", "slurm-prolog"],
        &["hook", "pbs-prologue"],
        &["job", "up"],
        &["job", "down"],
        &["node", "attach"],
        &["node", "detach"],
        &["node", "show"],
    ] {
        let mut a = cmd.to_vec();
        a.push("--help");
        let o = jobnet(&a);
        o.code(0);
        let lines: Vec<&str> = o.stdout.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let flag = l.trim();
            if flag.starts_with("--") || flag.starts_with("-h,") {
                // The description follows on the same line (short help) or the next (long help).
                let inline = flag
                    .split_once("  ")
                    .is_some_and(|(_, d)| !d.trim().is_empty());
                let next = lines.get(i + 1).map_or("", |n| n.trim());
                assert!(
                    inline || !next.is_empty(),
                    "{cmd:?}: `{flag}` has no description"
                );
            }
        }
    }
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let o = jobnet(&["completions", "bash"]);
    o.code(0).out_has("import-ib").out_has("--partitions-conf");
    let f = file("jobnet.bash", &o.stdout);
    let check = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(check.success(), "bash cannot parse the completions");
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p jobnet", f.display()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("jobnet"),
        "the completion is registered"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        jobnet(&["completions", shell]).code(0).out_has("jobnet");
    }
    let o = jobnet(&["man"]);
    o.code(0)
        .out_has(".TH jobnet 1")
        .out_has("JOBNET TOPOLOGY IMPORT\\-IB")
        .out_has(".SH ENVIRONMENT")
        .out_has("JOBNET_STATE")
        .out_has(".SH \"EXIT STATUS\"")
        .out_has("\\-\\-older\\-than\\-days");
}

#[test]
fn status_shows_live_jobs_and_prune_forgets_old_ones() {
    let (topo, _) = ib_only("status-live");
    let t = topo.to_str().unwrap();
    let st = state_dir("status-live");
    let up = |job: &str, node: &str| {
        up_ib(&st, t, job, node).code(0);
    };
    let long = "slurm-array-4242424242_17.batch-with-a-long-name";
    up("1", "n1");
    up(long, "n2");
    up("3", "n3");
    jobnet(&["--state", &st, "down", "--job", "3"]).code(0);
    let o = jobnet(&["--state", &st, "status"]);
    o.code(0).out_has(long);
    assert!(
        !o.stdout.lines().any(|l| l.starts_with("3 ")),
        "{}",
        o.stdout
    );
    // Columns line up under the header however long an id is.
    let lines: Vec<&str> = o.stdout.lines().collect();
    let col = lines[0].find("STATE").unwrap();
    assert!(
        lines[1..3].iter().all(|l| &l[col..col + 2] == "up"),
        "{}",
        o.stdout
    );
    let v: serde_json::Value = serde_json::from_str(
        &jobnet(&["--state", &st, "status", "--all", "--format", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(v["jobs"].as_array().unwrap().len(), 3);
    let created = v["jobs"][0]["created"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && &created[10..11] == "T",
        "RFC 3339: {created}"
    );
    assert_eq!(v["jobs"][0]["pkey"], "0x0010");
    let o = jobnet(&["--state", &st, "prune", "--older-than-days", "0"]);
    o.code(0)
        .out_has("1 job(s) down for more than 0 day(s) forgotten");
    let v: serde_json::Value = serde_json::from_str(
        &jobnet(&["--state", &st, "status", "--all", "--format", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(v["jobs"].as_array().unwrap().len(), 2, "live jobs are kept");
    jobnet(&["--state", &st, "down", "--job", "1"]).code(0);
    jobnet(&["--state", &st, "down", "--job", long]).code(0);
}

#[test]
fn an_unknown_job_state_in_the_database_is_an_error() {
    let (topo, _) = ib_only("bad-state");
    let st = state_dir("bad-state");
    up_ib(&st, topo.to_str().unwrap(), "9", "n1").code(0);
    let conn = rusqlite::Connection::open(&st).unwrap();
    conn.execute("UPDATE jobs SET state='upp' WHERE job='9'", [])
        .unwrap();
    drop(conn);
    jobnet(&["--state", &st, "status"])
        .code(1)
        .err_has("job \"9\" is corrupt")
        .err_has("`upp` is not a known JobState");
    jobnet(&["--state", &st, "down", "--job", "9"])
        .code(1)
        .err_has("`upp`");
}

#[test]
fn one_type_error_is_reported_once() {
    let shipped = std::fs::read_to_string("topology/two-tier.yaml").unwrap();
    // `switches` is not a list: every link and node names a switch that is now unknown.
    let (o, p) = validate(
        "switches-scalar.yaml",
        &shipped.replace("switches:\n", "switches: oops\nold_switches:\n"),
    );
    o.code(2)
        .err_has(&format!(
            "{p}:14:11: error: `switches` must be a list, found a scalar"
        ))
        .err_has("is invalid: 2 error(s)");
    assert!(!o.stderr.contains("unknown switch"), "{}", o.stderr);
    // One switch entry that is not a mapping.
    let (o, _) = validate(
        "switch-scalar.yaml",
        &shipped.replace(
            "  - {name: spine1, driver: arista-eos, address: 192.0.2.1, credentials: fabric-admin}",
            "  - spine1",
        ),
    );
    o.code(2)
        .err_has("error: a switch must be a mapping, found a scalar")
        .err_has("is invalid: 1 error(s)");
}

#[test]
fn read_only_commands_only_read_the_state_file() {
    let (topo, _) = ib_only("ro-state");
    let t = topo.to_str().unwrap();
    let st = state_dir("ro-state");
    up_ib(&st, t, "1", "n1").code(0);
    // Make it look like a version-1 file: status must neither upgrade nor write it.
    let conn = rusqlite::Connection::open(&st).unwrap();
    conn.execute_batch(
        "UPDATE meta SET value='1' WHERE key='schema_version'; DROP TABLE abandoned;",
    )
    .unwrap();
    drop(conn);
    let dir = std::path::Path::new(&st).parent().unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |dir_mode, file_mode| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        std::fs::set_permissions(&st, std::fs::Permissions::from_mode(file_mode)).unwrap();
    };
    // A user who may read the file but not write it: as root (who may write anything), nobody;
    // as anyone else, this user, with the file and its directory made read-only.
    let root = common::is_root();
    if root {
        mode(0o755, 0o644);
    } else {
        mode(0o555, 0o444);
    }
    // Writable again however the test ends: the next run removes the directory.
    struct Writable(std::path::PathBuf);
    impl Drop for Writable {
        fn drop(&mut self) {
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
    }
    let writable = Writable(dir.to_path_buf());
    let before = std::fs::read(&st).unwrap();
    let as_reader = |args: &[&str]| {
        let o = if root {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_jobnet"))
                .args(args)
                .output()
                .expect("setpriv (util-linux)")
        } else {
            Command::new(env!("CARGO_BIN_EXE_jobnet"))
                .args(args)
                .output()
                .expect("run jobnet")
        };
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    as_reader(&["--state", &st, "status"]).code(0).out_has("up");
    as_reader(&["--state", &st, "status", "--abandoned"])
        .code(0)
        .out_has("nothing abandoned");
    as_reader(&[
        "--state",
        &st,
        "plan",
        "--topology",
        t,
        "--job",
        "2",
        "--nodes",
        "n2",
    ])
    .code(0)
    .out_has("PKey:     0x0011");
    assert_eq!(
        std::fs::read(&st).unwrap(),
        before,
        "the file was not written"
    );
    drop(writable);
    mode(0o755, 0o644);
    jobnet(&["--state", &st, "down", "--job", "1"]).code(0);
}

#[test]
fn down_and_recover_never_create_a_state_file() {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("typo-state-down");
    let _ = std::fs::remove_dir_all(&d);
    let st = d.join("stat.db");
    let st = st.to_str().unwrap();
    jobnet(&["--state", st, "down", "--job", "42"])
        .code(1)
        .err_has("does not exist; it was named explicitly");
    jobnet(&["--state", st, "recover"])
        .code(1)
        .err_has("does not exist");
    jobnet(&["--state", st, "prune"]).code(0);
    assert!(!d.exists(), "created {}", d.display());
    // A state file that was deleted (its locks/ directory is still there) is an error even at
    // the default path: the jobs it recorded may still be on the devices.
    std::fs::create_dir_all(d.join("locks")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args(["down", "--job", "42"])
        .env("JOBNET_STATE", st)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("it was deleted"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn one_damaged_row_does_not_hide_the_other_jobs() {
    let (topo, _) = ib_only("damaged");
    let t = topo.to_str().unwrap();
    let st = state_dir("damaged");
    for (job, node) in [("1", "n1"), ("2", "n2"), ("3", "n3")] {
        up_ib(&st, t, job, node).code(0);
    }
    let conn = rusqlite::Connection::open(&st).unwrap();
    conn.execute("UPDATE jobs SET state='UP' WHERE job='2'", [])
        .unwrap();
    conn.execute("UPDATE journal SET undo='[' WHERE job='3'", [])
        .unwrap();
    // Job 1's process "died" while applying: recover must still finish it.
    conn.execute(
        "UPDATE jobs SET state='applying', pid=999999999 WHERE job='1'",
        [],
    )
    .unwrap();
    drop(conn);
    let o = jobnet(&["--state", &st, "status"]);
    o.code(1)
        .out_has("applying")
        .err_has("job \"2\" is corrupt: column `state`: `UP` is not a known JobState (one of: applying, up,")
        .err_has("journal row")
        .err_has("2 damaged row(s)");
    assert!(!o.stderr.contains("Conversion error"), "{}", o.stderr);
    let o = jobnet(&["--state", &st, "recover", "--format", "json"]);
    o.code(1);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let results = v.as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["job"] == "1" && r["result"] == "down"),
        "{v}"
    );
    assert!(results.iter().any(|r| r["error"]["code"] == 1), "{v}");
}

#[test]
fn global_options_are_refused_where_a_configuration_file_decides() {
    for args in [
        &["node", "detach", "--job", "5", "--state", "/x/state.db"][..],
        &["--state", "/x/state.db", "job", "down", "--job", "5"],
        &["hook", "slurm-prolog", "--credentials", "/x/c.yaml"],
    ] {
        jobnet(args)
            .code(2)
            .err_has("does not apply to `jobnet ")
            .err_has("configuration file (--config");
    }
}

// ---- partitions.conf text that belongs to the admin (issue 13) ----

fn text_of(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// An admin partition with a running job's PKey (0x8010 is 0x0010 to OpenSM) merges the two:
/// `ib check`, `up` and `down` refuse it alike, naming both lines; `down` of the job that is
/// merged ends the merge and is allowed.
#[test]
fn up_and_down_refuse_a_file_that_merges_a_job_with_an_admin_partition() {
    let (topo, conf) = ib_only("merge");
    let (t, c) = (topo.to_str().unwrap(), conf.to_str().unwrap().to_string());
    let st = state_dir("merge");
    up_ib(&st, t, "7", "n1").code(0);
    up_ib(&st, t, "8", "n2").code(0);
    let text = text_of(&conf).replacen("# BEGIN", "storage=0x8010 : 0x100007=full;\n# BEGIN", 1);
    std::fs::write(&conf, &text).unwrap();
    let both = format!("{c}:3:1: error: the partition `storage` (`storage=0x8010 : 0x100007=full;`) has PKey 0x0010, as job 7's partition `jobnet_7` at {c}:6 (`jobnet_7=0x0010, ipoib :`): OpenSM merges them into one partition");
    jobnet(&["ib", "check", &c])
        .code(2)
        .err_has(&both)
        .err_has("jobnet will not add or remove a job's partition in it: 1 error(s)");
    up_ib(&st, t, "9", "n3").code(2).err_has(&both);
    assert_eq!(text_of(&conf), text, "up wrote nothing");
    // Removing job 8 would write (and reload) the merge of job 7 too.
    jobnet(&["--state", &st, "down", "--job", "8"])
        .code(5)
        .err_has("nothing was written")
        .err_has(&both);
    assert_eq!(text_of(&conf), text, "down wrote nothing");
    jobnet(&["--state", &st, "down", "--job", "7"]).code(0);
    jobnet(&["--state", &st, "down", "--job", "8"]).code(0);
    assert_eq!(
        text_of(&conf),
        "# admins\nDefault=0x7fff, ipoib : ALL=full;\nstorage=0x8010 : 0x100007=full;\n"
    );
}

/// An admin partition written inside the block is never dropped: refused with its line and the
/// fix, and kept once moved outside the markers.
#[test]
fn text_inside_the_block_that_jobnet_did_not_write_is_refused_not_dropped() {
    let (topo, conf) = ib_only("inside");
    let (t, c) = (topo.to_str().unwrap(), conf.to_str().unwrap().to_string());
    let st = state_dir("inside");
    up_ib(&st, t, "7", "n1").code(0);
    let clean = text_of(&conf);
    let text = clean.replacen(
        "# END jobnet managed",
        "storage=0x20 : 0x100007=full;\n# END jobnet managed",
        1,
    );
    std::fs::write(&conf, &text).unwrap();
    let want = format!("{c}:7:1: error: 1 line(s) inside jobnet's managed block that jobnet did not write: line 7 `storage=0x20 : 0x100007=full;`");
    let fix = "move them outside the markers, above `# BEGIN jobnet managed` or below `# END jobnet managed`";
    jobnet(&["ib", "check", &c])
        .code(2)
        .err_has(&want)
        .err_has(fix);
    up_ib(&st, t, "8", "n2").code(2).err_has(&want).err_has(fix);
    jobnet(&["--state", &st, "down", "--job", "7"])
        .code(5)
        .err_has(&want);
    assert_eq!(text_of(&conf), text, "nothing written, nothing dropped");
    // The fix as told: below the END marker it is the admin's and stays.
    std::fs::write(&conf, format!("{clean}storage=0x20 : 0x100007=full;\n")).unwrap();
    jobnet(&["ib", "check", &c]).code(0);
    jobnet(&["--state", &st, "down", "--job", "7"]).code(0);
    assert_eq!(
        text_of(&conf),
        "# admins\nDefault=0x7fff, ipoib : ALL=full;\nstorage=0x20 : 0x100007=full;\n"
    );
}

/// A BEGIN without END: `ib check` says what `up` and `down` refuse, with the documented codes.
#[test]
fn ib_check_refuses_a_begin_without_end_as_up_and_down_do() {
    let (topo, conf) = ib_only("unterminated");
    let (t, c) = (topo.to_str().unwrap(), conf.to_str().unwrap().to_string());
    let st = state_dir("unterminated");
    up_ib(&st, t, "7", "n1").code(0);
    let whole = text_of(&conf);
    let text = whole.replace("# END jobnet managed\n", "");
    std::fs::write(&conf, &text).unwrap();
    jobnet(&["ib", "check", &c]).code(2).err_has(&format!(
        "{c}:3:1: error: `# BEGIN jobnet managed` has no matching `# END jobnet managed`"
    ));
    let same = format!("{c}:3: `# BEGIN jobnet managed` has no matching `# END jobnet managed`");
    // `up`: "fix these first (...)", `down`: "fix it first (...)".
    let first = format!("first (`jobnet ib check {c}`)");
    up_ib(&st, t, "8", "n2")
        .code(2)
        .err_has(&same)
        .err_has(&first);
    jobnet(&["--state", &st, "down", "--job", "7"])
        .code(5)
        .err_has(&same)
        .err_has(&first);
    assert_eq!(text_of(&conf), text);
    std::fs::write(&conf, &whole).unwrap();
    jobnet(&["--state", &st, "down", "--job", "7"]).code(0);
}

/// Text quoted from partitions.conf in errors is bounded: a line is cut, a list of lines counted.
#[test]
fn quotes_from_partitions_conf_in_errors_are_bounded() {
    let long = file(
        "long-line.conf",
        &format!("Default=0x7fff : ALL=full;\n{}\n", "x".repeat(4000)),
    );
    let o = jobnet(&["ib", "check", long.to_str().unwrap()]);
    o.code(2).err_has("... (3800 more characters)`");
    assert!(o.stderr.lines().all(|l| l.len() < 600), "{}", o.stderr);
    let (topo, conf) = ib_only("many-lines");
    let t = topo.to_str().unwrap();
    let st = state_dir("many-lines");
    up_ib(&st, t, "7", "n1").code(0);
    let notes: String = (0..40)
        .map(|i| format!("# note {i}: {}\n", "y".repeat(300)))
        .collect();
    let text = text_of(&conf).replacen(
        "# END jobnet managed",
        &format!("{notes}# END jobnet managed"),
        1,
    );
    std::fs::write(&conf, &text).unwrap();
    let o = up_ib(&st, t, "8", "n2");
    o.code(2)
        .err_has("40 line(s) inside jobnet's managed block")
        .err_has(", and 35 more;");
    assert!(o.stderr.len() < 3000, "{} bytes", o.stderr.len());
    assert!(!o.stderr.contains("# note 5"), "{}", o.stderr);
    std::fs::write(&conf, text.replace(&notes, "")).unwrap();
    jobnet(&["--state", &st, "down", "--job", "7"]).code(0);
}

/// The commands run by hand use jobnet.yaml's common part (state, wait, ...), say where each
/// value came from, and take a typo in the hooks' policy as a warning: an emergency `down` never
/// fails on it. An error in the common part is still exit 2.
#[test]
fn the_admin_commands_use_the_site_configuration() {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("site-config");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let st = d.join("from-config.db");
    let cfg = d.join("jobnet.yaml");
    std::fs::write(
        &cfg,
        format!(
            "state: {}\nwait: 7\ndaemon: off\npolicy:\n  - partitions: [gpu]\n    fail_opn: true\n",
            st.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
            .args(args)
            .env("JOBNET_CONFIG", &cfg)
            .env_remove("JOBNET_STATE")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["config", "show"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("{}  ({}:1:1)", st.display(), cfg.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("7 s  ({}:2:1)", cfg.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "off (devices reached directly)  ({}:3:1)",
            cfg.display()
        )),
        "{out}"
    );
    assert!(err.contains("unknown key `fail_opn`"), "{err}");
    assert!(err.contains("only the hooks use this part"), "{err}");
    // down and status use the file's state (which does not exist yet): a warning, exit 0.
    let (code, out, err) = run(&["down", "--job", "5"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("job 5 is not known"), "{out}");
    assert!(
        err.contains(&st.display().to_string()),
        "the file's state: {err}"
    );
    let (code, _, err) = run(&["status"]);
    assert_eq!(code, Some(0), "{err}");
    // A flag overrides the file, and says so.
    let (code, out, _) = run(&[
        "--state",
        "/tmp/other.db",
        "config",
        "show",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"]["value"], "/tmp/other.db");
    assert_eq!(v["state"]["source"], "--state");
    let (_, out, _) = run(&[
        "--daemon",
        "/run/x.sock",
        "config",
        "show",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["daemon"]["value"], "/run/x.sock");
    assert_eq!(v["daemon"]["source"], "--daemon");
    // An error in the part every command uses stops them (it could name the wrong state file).
    std::fs::write(&cfg, "stat: /x\n").unwrap();
    let (code, _, err) = run(&["status"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("did you mean `state`"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
