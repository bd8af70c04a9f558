//! The node side without Open vSwitch (the OVS backend and the CNI plugin's data path are proven
//! by .ci/labs/nodes.sh, the two Linux bridge backends on a real kernel by
//! .ci/labs/linux-nodes.sh): Proxmox and libvirt configuration from a job's network.json for
//! each backend, the network.json documented in docs/nodes.md as the nodes read it, and the CNI
//! plugin's VERSION and errors as a runtime sees them. Then the `jobnet` binary on the test
//! kit's simulated node (`$JOBNET_NODE_SIM`): twenty CNI ADDs and DELs at once, a process killed
//! after any command on the node, interfaces that are never a VM's, and interface names per job.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A job's network.json as the controller leaves it: its directory 0755, the file 0644,
/// whatever the umask (a node refuses one that others could have written).
fn write_network(dir: &Path, job: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let jd = dir.join(job);
    std::fs::create_dir_all(&jd).unwrap();
    for d in [dir, jd.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let f = jd.join("network.json");
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("nodes")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A job's network.json as the controller writes it.
fn network(dir: &Path, job: &str) {
    write_network(
        dir,
        job,
        &format!(
            r#"{{"job": "{job}", "vlan": 160, "pkey": null, "nodes": ["cn001"],
  "addresses": {{"job": "{job}", "subnet": "192.168.160.0/24", "gateway": "192.168.160.1", "dns": [],
    "vms": [{{"name": "vs1", "node": "cn001", "ip": "192.168.160.64", "mac": "02:00:c0:a8:a0:40"}},
            {{"name": "vs2", "node": "cn001", "ip": "192.168.160.65", "mac": "02:00:c0:a8:a0:41"}}]}}}}"#
        ),
    );
}

fn jobnet(args: &[&str], config: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args(args)
        .env("JOBNET_NODE_CONFIG", config)
        .env_remove("SLURMD_NODENAME")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn proxmox_and_libvirt_configuration_for_the_nodes_vms() {
    let d = scratch("show");
    network(&d, "7");
    let cfg = d.join("node.yaml");
    std::fs::write(
        &cfg,
        format!("jobs_dir: {}\nbridge: vmbr0\nuplink: eth1\n", d.display()),
    )
    .unwrap();
    let (code, out, err) = jobnet(
        &[
            "node",
            "show",
            "--job",
            "7",
            "--node",
            "cn001",
            "--format",
            "proxmox",
            "--vmid",
            "vs1=101:0",
            "--vmid",
            "vs2=102:1",
        ],
        &cfg,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "qm set 101 --net0 virtio=02:00:C0:A8:A0:40,bridge=vmbr0,tag=160\nqm set 102 --net1 virtio=02:00:C0:A8:A0:41,bridge=vmbr0,tag=160\n"
    );
    let (code, out, _) = jobnet(
        &[
            "node", "show", "--job", "7", "--node", "cn001", "--format", "libvirt",
        ],
        &cfg,
    );
    assert_eq!(code, 0);
    assert_eq!(out.matches("<tag id='160'/>").count(), 2, "{out}");
    // A node without VMs of the job gets none; a job the controller never told is named.
    let (code, _, err) = jobnet(&["node", "show", "--job", "8", "--node", "cn001"], &cfg);
    assert_eq!(code, 2);
    assert!(
        err.contains("8/network.json does not exist: job 8 has no network from the controller"),
        "{err}"
    );
}

/// `jobnet node show` for the two Linux bridge backends: the Proxmox lines say what Proxmox does
/// with the node's bridge, the libvirt interfaces name each VM's tap as attach finds it and
/// carry no `<vlan>` (libvirt does not honour it on a Linux bridge).
#[test]
fn show_prints_each_linux_backends_configuration() {
    let d = scratch("show-linux");
    network(&d, "7");
    for backend in ["bridge-vlan", "bridge-classic"] {
        let cfg = d.join(format!("{backend}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "jobs_dir: {}\nbackend: {backend}\nbridge: vmbr0\nuplink: eth1\ninterface: \"t{{job}}v{{slot}}\"\n",
                d.display()
            ),
        )
        .unwrap();
        let (code, out, err) = jobnet(
            &[
                "node",
                "show",
                "--job",
                "7",
                "--node",
                "cn001",
                "--format",
                "proxmox",
                "--vmid",
                "vs1=101:0",
                "--vmid",
                "vs2=102:0",
            ],
            &cfg,
        );
        assert_eq!(code, 0, "{backend}: {err}");
        let note = if backend == "bridge-vlan" {
            "# vmbr0 is VLAN-aware: Proxmox makes each tap an untagged member of VLAN 160 only\n"
        } else {
            "# vmbr0 is not VLAN-aware: Proxmox puts each tap on vmbr0v160 over eth1.160, the names jobnet uses\n"
        };
        assert_eq!(
            out,
            format!("{note}qm set 101 --net0 virtio=02:00:C0:A8:A0:40,bridge=vmbr0,tag=160\nqm set 102 --net0 virtio=02:00:C0:A8:A0:41,bridge=vmbr0,tag=160\n"),
            "{backend}"
        );
        let (code, out, err) = jobnet(
            &[
                "node", "show", "--job", "7", "--node", "cn001", "--format", "libvirt",
            ],
            &cfg,
        );
        assert_eq!(code, 0, "{backend}: {err}");
        assert!(
            out.contains("<source bridge='vmbr0'/>\n  <target dev='t7v1'/>")
                && out.contains("<target dev='t7v2'/>")
                && !out.contains("<vlan>")
                && !out.contains("openvswitch")
                && out.contains("once the VM runs, jobnet node attach for job 7"),
            "{backend}: {out}"
        );
    }
}

/// The network.json docs/nodes.md shows is exactly what the nodes read: taken from the page and
/// read as `jobnet node attach` reads it, so the two cannot drift apart.
#[test]
fn the_documented_network_json_is_what_the_nodes_read() {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/nodes.md")).unwrap();
    let section = &page[page
        .find("## How a node learns the job's network")
        .expect("the section")..];
    let start = section.find("```json\n").expect("a json block") + "```json\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let v: serde_json::Value = serde_json::from_str(example)
        .unwrap_or_else(|e| panic!("docs/nodes.md's network.json is not JSON: {e}\n{example}"));
    let job = v["job"].as_str().expect("a job id");
    let d = scratch("docs-network");
    write_network(&d, job, example);
    let n = jobnet::jobs::network::JobNetwork::read(
        &d,
        &jobnet::base::types::JobId::parse(job).unwrap(),
    )
    .unwrap_or_else(|e| panic!("docs/nodes.md's network.json is refused: {e}"));
    assert_eq!(n.vlan, Some(160));
    assert!(n.addresses.is_some_and(|a| a.vms.len() >= 2));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn cni(command: &str, stdin: &str) -> (i32, serde_json::Value) {
    let dir = scratch(&format!("cni-{command}"));
    let link = dir.join("jobnet-cni");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_jobnet"), &link).unwrap();
    let mut c = Command::new(&link)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "ctr1")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", "/var/run/netns/none")
        .env("CNI_PATH", dir.display().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    }
    let o = c.wait_with_output().unwrap();
    let v = serde_json::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap_or_default();
    (o.status.code().unwrap_or(-1), v)
}

#[test]
fn the_cni_plugin_answers_as_the_spec_says() {
    let (code, v) = cni("VERSION", "");
    assert_eq!(code, 0);
    assert!(
        v["supportedVersions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "1.0.0"),
        "{v}"
    );
    let (code, v) = cni("ADD", "{not json");
    assert_eq!((code, v["code"].as_u64()), (1, Some(6)), "{v}");
    let (code, v) = cni(
        "ADD",
        r#"{"cniVersion":"9.9.9","name":"x","type":"jobnet-cni"}"#,
    );
    assert_eq!((code, v["code"].as_u64()), (1, Some(1)), "{v}");
    let (code, v) = cni(
        "ADD",
        r#"{"cniVersion":"1.0.0","name":"x","type":"jobnet-cni","job":"1;rm","bridge":"b","uplink":"u"}"#,
    );
    assert_eq!((code, v["code"].as_u64()), (1, Some(7)), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("\"job\""), "{v}");
    let d = scratch("cni-missing");
    let conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"job-5","type":"jobnet-cni","job":"5","jobs_dir":"{}","state_dir":"{}/state","bridge":"br-vm","uplink":"eth1","node":"cn001"}}"#,
        d.display(),
        d.display()
    );
    let (code, v) = cni("ADD", &conf);
    assert_eq!((code, v["code"].as_u64()), (1, Some(7)), "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("job 5 has no network from the controller"),
        "{v}"
    );
    // DEL of a container never added: success, nothing printed.
    let (code, _) = cni("DEL", &conf);
    assert_eq!(code, 0);
}

// --- on the test kit's simulated node ---

use jobnet::node::sim::World;

/// A job's network.json with `vms` VMs on cn001 in 10.N.0.0/24 (N = `net`).
fn network_of(dir: &Path, job: &str, vlan: u16, net: u8, vms: u8) {
    let list: Vec<String> = (1..=vms)
        .map(|i| {
            format!(
                r#"{{"name": "vs{i}", "node": "cn001", "ip": "10.{net}.0.{}", "mac": "02:00:0a:{net:02x}:00:{:02x}"}}"#,
                10 + i,
                10 + i
            )
        })
        .collect();
    write_network(
        dir,
        job,
        &format!(
            r#"{{"job": "{job}", "vlan": {vlan}, "pkey": null, "nodes": ["cn001"],
  "addresses": {{"job": "{job}", "subnet": "10.{net}.0.0/24", "gateway": "10.{net}.0.1", "dns": [], "vms": [{}]}}}}"#,
            list.join(", ")
        ),
    );
}

/// An Open vSwitch node: bridge br-vm, uplink up0 (trunks 4094), management port mgmt0, VM
/// taps `taps`, namespaces /run/netns/c1..cN.
fn ovs_world(taps: &[&str], namespaces: usize) -> World {
    let mut w = World::default();
    w.ovs_bridge("br-vm")
        .ovs_port("br-vm", "up0", None, &[4094])
        .ovs_port("br-vm", "mgmt0", Some(4000), &[]);
    for t in taps {
        w.link(t, "tap");
    }
    for i in 1..=namespaces {
        w.namespace(&format!("/run/netns/c{i}"));
    }
    w
}

/// A Linux node for the two bridge backends: bridge br-vm, uplink up0, management mgmt0, taps.
fn linux_world(taps: &[&str]) -> World {
    let mut w = World::default();
    w.link("br-vm", "bridge")
        .link("up0", "veth")
        .link("mgmt0", "veth");
    for t in taps {
        w.link(t, "tap");
    }
    // As the kernel leaves a new port of a VLAN-aware bridge: VLAN 1, PVID, egress untagged.
    for l in w.links.values_mut() {
        if l.kind != "bridge" {
            l.master = Some("br-vm".into());
            l.vlans = [1].into();
            l.pvid = Some(1);
            l.untagged = [1].into();
        }
    }
    w
}

fn node_yaml(d: &Path, backend: &str, interface: &str) -> PathBuf {
    let cfg = d.join(format!("node-{backend}.yaml"));
    std::fs::write(
        &cfg,
        format!(
            "jobs_dir: {d}\nstate_dir: {d}/state\nbackend: {backend}\nbridge: br-vm\nuplink: up0\nmanagement: mgmt0\ninterface: \"{interface}\"\nnodes:\n  cn002: {{uplink: up2}}\n",
            d = d.display()
        ),
    )
    .unwrap();
    cfg
}

/// `jobnet ARGS` on the simulated node `world`, dying after its `crash_after`-th command there.
fn sim_jobnet(
    args: &[&str],
    config: &Path,
    world: &Path,
    crash_after: Option<usize>,
) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet"));
    c.args(args)
        .env("JOBNET_NODE_CONFIG", config)
        .env("JOBNET_NODE_SIM", world)
        .env_remove("SLURMD_NODENAME")
        .env_remove("JOBNET_FAILPOINT_NODE");
    if let Some(n) = crash_after {
        c.env("JOBNET_FAILPOINT_NODE", n.to_string());
    }
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The CNI plugin (the binary called `jobnet-cni`) on the simulated node, started, not waited for.
fn sim_cni(
    dir: &Path,
    world: &Path,
    command: &str,
    container: &str,
    netns: &str,
    conf: &str,
    crash_after: Option<usize>,
) -> std::process::Child {
    let link = dir.join("jobnet-cni");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_jobnet"), &link).unwrap();
    }
    let mut c = Command::new(&link);
    c.env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", netns)
        .env("CNI_PATH", dir.display().to_string())
        .env("JOBNET_NODE_SIM", world)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(n) = crash_after {
        c.env("JOBNET_FAILPOINT_NODE", n.to_string());
    }
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
    }
    child
}

fn finish(c: std::process::Child) -> (i32, serde_json::Value, String) {
    let o = c.wait_with_output().unwrap();
    let v = serde_json::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap_or_default();
    (
        o.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn cni_conf(d: &Path, job: &str) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"job-{job}","type":"jobnet-cni","job":"{job}","jobs_dir":"{d}","state_dir":"{d}/state","bridge":"br-vm","uplink":"up0","node":"cn001"}}"#,
        d = d.display()
    )
}

fn records(d: &Path) -> Vec<PathBuf> {
    walk(&d.join("state"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

/// Container runtimes call ADD in parallel: twenty at once for two jobs on one node get twenty
/// different VM slots (MAC and address), every veth is recorded, and twenty DELs at once remove
/// every one and give the uplink back.
#[test]
fn twenty_parallel_cni_adds_and_dels_for_two_jobs_take_twenty_slots_and_leave_nothing() {
    let d = scratch("cni-parallel");
    network_of(&d, "A", 160, 1, 10);
    network_of(&d, "B", 161, 2, 10);
    let wf = d.join("world.json");
    let mut w = ovs_world(&[], 20);
    // Every command takes a little while, as on a real node: wide windows for a race.
    w.delay_ms = 1;
    w.save(&wf).unwrap();
    let before = w.state();
    let who = |i: usize| {
        (
            if i.is_multiple_of(2) { "A" } else { "B" },
            format!("ctr{i}"),
            format!("/run/netns/c{i}"),
        )
    };
    let adds: Vec<_> = (1..=20)
        .map(|i| {
            let (job, ctr, ns) = who(i);
            sim_cni(&d, &wf, "ADD", &ctr, &ns, &cni_conf(&d, job), None)
        })
        .collect();
    let mut slots = std::collections::BTreeSet::new();
    for (i, c) in (1..=20).zip(adds) {
        let (code, v, err) = finish(c);
        assert_eq!(code, 0, "ADD {i}: {v} {err}");
        let ip = v["ips"][0]["address"].as_str().unwrap().to_string();
        let mac = v["interfaces"][1]["mac"].as_str().unwrap().to_string();
        assert!(
            slots.insert(ip.clone()),
            "ADD {i}: address {ip} given twice"
        );
        assert!(slots.insert(mac.clone()), "ADD {i}: MAC {mac} given twice");
    }
    assert_eq!(slots.len(), 40, "{slots:?}");
    let w = World::load(&wf).unwrap();
    let veths: Vec<_> = w.links.keys().filter(|l| l.starts_with("jn")).collect();
    assert_eq!(veths.len(), 20, "{veths:?}");
    assert_eq!(w.ports["up0"].trunks, [160, 161, 4094].into());
    for i in 1..=20 {
        let (job, ..) = who(i);
        let eth0 = &w.netns[&format!("/run/netns/c{i}")]["eth0"];
        let mac = eth0.mac.as_deref().unwrap();
        assert!(
            mac.starts_with(if job == "A" {
                "02:00:0a:01"
            } else {
                "02:00:0a:02"
            }),
            "container {i} of job {job} has {mac}"
        );
    }
    for job in ["A", "B"] {
        let r: jobnet::node::Record = serde_json::from_slice(
            &std::fs::read(d.join("state/cn001").join(format!("{job}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            r.changes.len(),
            21,
            "job {job}: the uplink, 10 veths, 10 ports: {r:?}"
        );
    }
    let dels: Vec<_> = (1..=20)
        .map(|i| {
            let (job, ctr, ns) = who(i);
            sim_cni(&d, &wf, "DEL", &ctr, &ns, &cni_conf(&d, job), None)
        })
        .collect();
    for (i, c) in (1..=20).zip(dels) {
        let (code, v, err) = finish(c);
        assert_eq!(code, 0, "DEL {i}: {v} {err}");
    }
    assert_eq!(
        World::load(&wf).unwrap().state(),
        before,
        "the node is not as before"
    );
    assert!(records(&d).is_empty(), "{:?}", records(&d));
}

/// Record, then change, as a killed process sees it: `attach` and a CNI ADD die right after
/// their N-th command on the node, for every N; whatever they changed is recorded, and detach
/// (or the container's DEL) gives the node back exactly what it had.
#[test]
fn a_process_killed_after_any_command_leaves_a_record_that_undoes_it() {
    let d = scratch("killed");
    network_of(&d, "7", 160, 1, 2);
    let cfg = node_yaml(&d, "ovs", "{node}v{slot}");
    let wf = d.join("world.json");
    let fresh = || {
        let _ = std::fs::remove_dir_all(d.join("state"));
        let mut w = ovs_world(&["cn001v1"], 1);
        w.ovs_port("br-vm", "cn001v2", Some(4012), &[]);
        w.save(&wf).unwrap();
        w.state()
    };
    // The node as one clean attach leaves it.
    fresh();
    assert_eq!(
        sim_jobnet(
            &["node", "attach", "--job", "7", "--node", "cn001"],
            &cfg,
            &wf,
            None
        )
        .0,
        0
    );
    let attached = World::load(&wf).unwrap().state();
    for n in 1.. {
        let before = fresh();
        let (code, _, err) = sim_jobnet(
            &["node", "attach", "--job", "7", "--node", "cn001"],
            &cfg,
            &wf,
            Some(n),
        );
        let killed = code == -1;
        assert!(
            killed || code == 0,
            "attach with a kill after command {n}: {code} {err}"
        );
        if World::load(&wf).unwrap().state() != before {
            assert!(
                !records(&d).is_empty(),
                "killed after command {n}: a change no record names"
            );
        }
        // Odd N: the launcher tries again (re-attach finishes the job's node side exactly as
        // one clean attach does); even N: the epilog detaches what the killed one left.
        if killed && n % 2 == 1 {
            let (code, _, err) = sim_jobnet(
                &["node", "attach", "--job", "7", "--node", "cn001"],
                &cfg,
                &wf,
                None,
            );
            assert_eq!(code, 0, "re-attach after a kill after command {n}: {err}");
            assert_eq!(
                World::load(&wf).unwrap().state(),
                attached,
                "re-attach after a kill after command {n}"
            );
        }
        let (code, _, err) = sim_jobnet(
            &["node", "detach", "--job", "7", "--node", "cn001"],
            &cfg,
            &wf,
            None,
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            World::load(&wf).unwrap().state(),
            before,
            "attach killed after command {n}"
        );
        if !killed {
            assert!(n > 5, "attach ran only {n} command(s)");
            break;
        }
    }
    for n in 1.. {
        let before = fresh();
        let (code, v, err) = finish(sim_cni(
            &d,
            &wf,
            "ADD",
            "ctr1",
            "/run/netns/c1",
            &cni_conf(&d, "7"),
            Some(n),
        ));
        let killed = code == -1;
        assert!(
            killed || code == 0,
            "ADD with a kill after command {n}: {code} {v} {err}"
        );
        let (code, v, err) = finish(sim_cni(
            &d,
            &wf,
            "DEL",
            "ctr1",
            "/run/netns/c1",
            &cni_conf(&d, "7"),
            None,
        ));
        assert_eq!(code, 0, "{v} {err}");
        assert_eq!(
            World::load(&wf).unwrap().state(),
            before,
            "ADD killed after command {n}"
        );
        assert!(records(&d).is_empty());
        if !killed {
            assert!(n > 10, "ADD ran only {n} command(s)");
            break;
        }
    }
}

/// The uplink, the bridge, a management port and an interface the configuration names for
/// another node are refused as a VM interface by every backend, with exit 2, before anything
/// changes.
#[test]
fn interfaces_the_node_configuration_names_are_never_a_vm_interface() {
    let d = scratch("reserved");
    network_of(&d, "7", 160, 1, 2);
    for backend in ["ovs", "bridge-vlan", "bridge-classic"] {
        let cfg = node_yaml(&d, backend, "{node}v{slot}");
        let wf = d.join(format!("world-{backend}.json"));
        let mut w = if backend == "ovs" {
            ovs_world(&["tap1"], 0)
        } else {
            linux_world(&["tap1"])
        };
        w.link("up2", "veth")
            .link("eno9", "physical")
            .link("bond0", "bond");
        w.save(&wf).unwrap();
        for (iface, why) in [
            ("up0", "interface up0 is node cn001's uplink (`uplink:` in the node configuration); it is never a VM interface: nothing was changed"),
            ("br-vm", "interface br-vm is node cn001's bridge"),
            ("mgmt0", "interface mgmt0 is a management port of node cn001 (`management:` in the node configuration)"),
            ("up2", "interface up2 is named by `nodes.cn002.uplink` in the node configuration"),
            // Not named anywhere, and still the node's.
            ("eno9", "interface eno9 is a physical network interface of node cn001; a VM's interface is a tap or a veth: nothing was changed"),
            ("bond0", "interface bond0 is a bond of node cn001"),
        ] {
            let (code, _, err) = sim_jobnet(
                &["node", "attach", "--job", "7", "--node", "cn001", "--vm", "vs1=tap1", "--vm", &format!("vs2={iface}")],
                &cfg,
                &wf,
                None,
            );
            assert_eq!(code, 2, "{backend} {iface}: {err}");
            assert!(err.contains(why), "{backend} {iface}: {err}");
            assert_eq!(World::load(&wf).unwrap().state(), w.state(), "{backend} {iface}: the node changed");
            assert!(records(&d).is_empty(), "{backend} {iface}");
        }
    }
}

/// VM names and slots restart in every job: `tap{vm}` gives two jobs the same names (the second
/// is refused, the interface named), `{job}` keeps them apart; a name past Linux's 15 bytes is
/// refused before any change, and an unknown placeholder when the configuration is read.
#[test]
fn the_job_placeholder_keeps_two_jobs_taps_apart() {
    let d = scratch("placeholders");
    network_of(&d, "7", 160, 1, 2);
    network_of(&d, "8", 161, 2, 2);
    network_of(&d, "123456789.x+1", 162, 3, 1);
    let wf = d.join("world.json");
    let run = |cfg: &Path, job: &str| {
        sim_jobnet(
            &["node", "attach", "--job", job, "--node", "cn001"],
            cfg,
            &wf,
            None,
        )
    };
    // Without {job}: the second job's taps are the first's.
    ovs_world(&["tapvs1", "tapvs2"], 0).save(&wf).unwrap();
    let cfg = node_yaml(&d, "ovs", "tap{vm}");
    assert_eq!(run(&cfg, "7").0, 0);
    let (code, _, err) = run(&cfg, "8");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("interface tapvs1 is attached to job 7"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(d.join("state"));
    // With {job}: each job its own.
    ovs_world(&["t7v1", "t7v2", "t8v1", "t8v2"], 0)
        .save(&wf)
        .unwrap();
    let cfg = node_yaml(&d, "ovs", "t{job}v{slot}");
    for job in ["7", "8"] {
        let (code, out, err) = run(&cfg, job);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("t{job}v1, t{job}v2")), "{out}");
    }
    let w = World::load(&wf).unwrap();
    assert_eq!(
        (w.ports["t7v2"].tag, w.ports["t8v1"].tag),
        (Some(160), Some(161))
    );
    // A job id that does not fit: refused, named, nothing changed.
    let before = w.state();
    let (code, _, err) = run(&cfg, "123456789.x+1");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`interface: t{job}v{slot}` gives `t123456789_x_1v1` for job 123456789.x+1, VM vs1 on node cn001: interface `t123456789_x_1v1` is longer than 15 characters"),
        "{err}"
    );
    // The library says what to do; the command line names its flag for it.
    assert!(
        err.contains("or name the VM's interface explicitly (hint: --vm vs1=IFACE)"),
        "{err}"
    );
    // A node name that cannot name a directory, with where the command line took it from.
    let (code, _, err) = sim_jobnet(
        &["node", "attach", "--job", "7", "--node", "cn 1"],
        &cfg,
        &wf,
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("node name `cn 1` contains ` `") && err.contains("; it came from --node"),
        "{err}"
    );
    assert_eq!(World::load(&wf).unwrap().state(), before);
    let cfg = node_yaml(&d, "ovs", "tap{jobid}");
    let (code, _, err) = run(&cfg, "7");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("has the unknown placeholder `{jobid}`")
            && err.contains("{job}, {vm}, {slot}, {node}"),
        "{err}"
    );
}

/// The per-node Prolog runs before the job's VMs exist: `prepare` makes the uplink carry the
/// VLAN and nothing else; `attach` before a VM's interface exists is refused with nothing
/// changed (exit 2: Slurm drains a node whose prolog fails, so the prolog never runs it), and
/// succeeds once the launcher made it; detach gives everything back. A job the controller wrote
/// no network for: `prepare` has nothing to do (exit 0, every job runs the prolog), `attach`
/// exits 3 with nothing changed, so a launcher never starts a VM off the job network unaware.
#[test]
fn the_prolog_prepares_the_uplink_and_the_launcher_attaches_each_vm() {
    let d = scratch("prepare");
    network_of(&d, "7", 160, 1, 2);
    for backend in ["ovs", "bridge-vlan", "bridge-classic"] {
        let cfg = node_yaml(&d, backend, "t{job}v{slot}");
        let wf = d.join(format!("world-{backend}.json"));
        let fresh = if backend == "ovs" {
            ovs_world(&[], 0)
        } else {
            linux_world(&[])
        };
        fresh.save(&wf).unwrap();
        let before = fresh.state();
        let run = |args: &[&str]| sim_jobnet(args, &cfg, &wf, None);
        let (code, out, err) = run(&["node", "prepare", "--job", "7", "--node", "cn001"]);
        assert_eq!(code, 0, "{backend}: {err}");
        assert!(
            out.contains("the uplink up0 carries VLAN 160"),
            "{backend}: {out}"
        );
        let prepared = World::load(&wf).unwrap().state();
        assert_ne!(prepared, before, "{backend}: prepare changed nothing");
        assert_eq!(records(&d).len(), 1, "{backend}");
        // The VMs are not there yet.
        let (code, _, err) = run(&["node", "attach", "--job", "7", "--node", "cn001"]);
        assert_eq!(code, 2, "{backend}: {err}");
        assert!(
            err.contains("interface t7v1 does not exist on this node"),
            "{backend}: {err}"
        );
        assert_eq!(World::load(&wf).unwrap().state(), prepared, "{backend}");
        // The launcher made the taps.
        let add_taps = |w: &mut World| {
            for t in ["t7v1", "t7v2"] {
                w.link(t, "tap");
                if backend != "ovs" {
                    let l = w.links.get_mut(t).unwrap();
                    l.master = Some("br-vm".into());
                    l.vlans = [1].into();
                }
            }
        };
        let mut w = World::load(&wf).unwrap();
        add_taps(&mut w);
        w.save(&wf).unwrap();
        let mut with_taps = fresh.clone();
        add_taps(&mut with_taps);
        let with_taps = with_taps.state();
        let (code, out, err) = run(&["node", "attach", "--job", "7", "--node", "cn001"]);
        assert_eq!(code, 0, "{backend}: {err}");
        assert!(out.contains("VLAN 160 on t7v1, t7v2"), "{backend}: {out}");
        let (code, _, err) = run(&["node", "detach", "--job", "7", "--node", "cn001"]);
        assert_eq!(code, 0, "{backend}: {err}");
        assert_eq!(World::load(&wf).unwrap().state(), with_taps, "{backend}");
        assert!(records(&d).is_empty(), "{backend}");
        // No network.json for job 99.
        let (code, out, err) = run(&["node", "prepare", "--job", "99", "--node", "cn001"]);
        assert_eq!(code, 0, "{backend}: {err}");
        assert!(out.contains("job 99 has no jobnet network"), "{out}");
        let (code, _, err) = run(&[
            "node", "attach", "--job", "99", "--node", "cn001", "--vm", "vs1=t7v1",
        ]);
        assert_eq!(code, 3, "{backend}: {err}");
        assert!(
            err.contains("job 99 has no network from the controller")
                && err.contains(
                    "a VM attached now would not be on a job network: nothing was changed"
                ),
            "{err}"
        );
        assert_eq!(World::load(&wf).unwrap().state(), with_taps, "{backend}");
        assert!(records(&d).is_empty(), "{backend}");
    }
}

/// A container (the CNI plugin, and `attach --netns`) on the two Linux backends: the node's end
/// of the veth becomes a port of the job's VLAN only (a VLAN-aware bridge's port, or the
/// per-VLAN bridge's), CHECK reads it through the backend, DEL gives the node back exactly.
#[test]
fn containers_on_the_linux_bridge_backends() {
    let d = scratch("cni-linux");
    network_of(&d, "7", 160, 1, 2);
    for backend in ["bridge-vlan", "bridge-classic"] {
        let wf = d.join(format!("world-{backend}.json"));
        let mut w = linux_world(&[]);
        w.namespace("/run/netns/c1").namespace("/run/netns/c2");
        w.save(&wf).unwrap();
        let before = w.state();
        let conf = cni_conf(&d, "7").replace(
            r#""node":"cn001""#,
            &format!(r#""node":"cn001","backend":"{backend}""#),
        );
        let (code, v, err) = finish(sim_cni(
            &d,
            &wf,
            "ADD",
            "ctr1",
            "/run/netns/c1",
            &conf,
            None,
        ));
        assert_eq!(code, 0, "{backend}: {v} {err}");
        let host = v["interfaces"][0]["name"].as_str().unwrap().to_string();
        let w = World::load(&wf).unwrap();
        let l = &w.links[&host];
        assert!(l.up, "{backend}: {l:?}");
        match backend {
            "bridge-vlan" => {
                assert_eq!(l.master.as_deref(), Some("br-vm"), "{backend}");
                assert_eq!(l.vlans, [160].into(), "{backend}");
                assert!(w.links["up0"].vlans.contains(&160), "{backend}");
            }
            _ => {
                assert_eq!(l.master.as_deref(), Some("br-vmv160"), "{backend}: {l:?}");
                assert!(w.links.contains_key("up0.160"), "{backend}");
            }
        }
        let (code, v, err) = finish(sim_cni(
            &d,
            &wf,
            "CHECK",
            "ctr1",
            "/run/netns/c1",
            &conf,
            None,
        ));
        assert_eq!(code, 0, "{backend}: CHECK {v} {err}");
        // `attach --netns` for a second container, then detach of the whole job.
        let cfg = node_yaml(&d, backend, "t{job}v{slot}");
        let (code, _, err) = sim_jobnet(
            &[
                "node",
                "attach",
                "--job",
                "7",
                "--node",
                "cn001",
                "--vm",
                "vs2",
                "--netns",
                "/run/netns/c2",
            ],
            &cfg,
            &wf,
            None,
        );
        assert_eq!(code, 0, "{backend}: {err}");
        let (code, v, err) = finish(sim_cni(
            &d,
            &wf,
            "DEL",
            "ctr1",
            "/run/netns/c1",
            &conf,
            None,
        ));
        assert_eq!(code, 0, "{backend}: DEL {v} {err}");
        let (code, _, err) = sim_jobnet(
            &["node", "detach", "--job", "7", "--node", "cn001"],
            &cfg,
            &wf,
            None,
        );
        assert_eq!(code, 0, "{backend}: {err}");
        assert_eq!(World::load(&wf).unwrap().state(), before, "{backend}");
        assert!(records(&d).is_empty(), "{backend}");
    }
}

/// Root on the node puts VMs on the VLAN network.json names: a file or job directory that
/// anybody but the controller (root, or the owner of jobs_dir) could have written is refused,
/// naming it, and nothing is done from it.
#[test]
fn a_network_json_others_could_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let d = scratch("untrusted");
    network(&d, "7");
    let read = || {
        jobnet::jobs::network::JobNetwork::read(
            &d,
            &jobnet::base::types::JobId::parse("7").unwrap(),
        )
    };
    read().unwrap();
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    for (p, m) in [(d.join("7"), 0o775), (d.join("7/network.json"), 0o666)] {
        mode(&p, m);
        let e = read().unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "{} is writable by its group or by others",
                p.display()
            )) && e.contains("nothing is done from it"),
            "{e}"
        );
        mode(&p, if m == 0o775 { 0o755 } else { 0o644 });
    }
    read().unwrap();
    // Owned by another user (needs root to make such a file).
    if common::needs_root(
        "a_network_json_others_could_write_is_refused",
        "gives network.json to uid 65534",
    ) {
        std::os::unix::fs::chown(d.join("7/network.json"), Some(65534), Some(65534)).unwrap();
        let e = read().unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534, neither root nor"), "{e}");
    }
}
