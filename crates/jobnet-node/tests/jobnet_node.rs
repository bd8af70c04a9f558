//! The nodes' own binary, `jobnet-node`, as a node's Prolog, a VM launcher and a container
//! runtime run it: the same commands, words and exit codes as `jobnet node …` (whose behaviour
//! the root crate's tests/nodes.rs and the nodes labs prove in depth), on the test kit's
//! simulated node (`$JOBNET_NODE_SIM`), and the CNI plugin when called as `jobnet-cni`.

use jobnet_node::node::sim::World;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("jobnet-node")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A job's network.json as the controller leaves it (directories 0755, the file 0644).
fn network(dir: &Path, job: &str, vlan: u16) {
    use std::os::unix::fs::PermissionsExt;
    let jd = dir.join(job);
    std::fs::create_dir_all(&jd).unwrap();
    for d in [dir, jd.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let f = jd.join("network.json");
    std::fs::write(
        &f,
        format!(
            r#"{{"job": "{job}", "vlan": {vlan}, "pkey": null, "nodes": ["cn001"],
  "addresses": {{"job": "{job}", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1", "dns": [],
    "vms": [{{"name": "vs1", "node": "cn001", "ip": "10.1.0.11", "mac": "02:00:0a:01:00:0b"}}]}}}}"#
        ),
    )
    .unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn node_yaml(d: &Path) -> PathBuf {
    let cfg = d.join("node.yaml");
    std::fs::write(
        &cfg,
        format!(
            "jobs_dir: {d}\nstate_dir: {d}/state\nbackend: ovs\nbridge: br-vm\nuplink: up0\nmanagement: mgmt0\ninterface: \"t{{job}}v{{slot}}\"\n",
            d = d.display()
        ),
    )
    .unwrap();
    cfg
}

/// `jobnet-node ARGS` on the simulated node `world`.
fn run(args: &[&str], config: &Path, world: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet-node"))
        .args(args)
        .env("JOBNET_NODE_CONFIG", config)
        .env("JOBNET_NODE_SIM", world)
        .env_remove("SLURMD_NODENAME")
        .env_remove("JOBNET_FAILPOINT_NODE")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn prolog_launcher_and_epilog_through_the_nodes_binary() {
    let d = scratch("flow");
    network(&d, "7", 160);
    let cfg = node_yaml(&d);
    let wf = d.join("world.json");
    let mut w = World::default();
    w.ovs_bridge("br-vm")
        .ovs_port("br-vm", "up0", None, &[4094])
        .ovs_port("br-vm", "mgmt0", Some(4000), &[]);
    w.link("t7v1", "tap");
    w.save(&wf).unwrap();
    let before = World::load(&wf).unwrap().state();

    let (code, out, err) = run(&["prepare", "--job", "7", "--node", "cn001"], &cfg, &wf);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the uplink up0 carries VLAN 160"), "{out}");
    let (code, out, err) = run(
        &[
            "attach", "--job", "7", "--node", "cn001", "--format", "json",
        ],
        &cfg,
        &wf,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["vlan"], 160, "{out}");
    assert_eq!(v["interfaces"], serde_json::json!(["t7v1"]), "{out}");
    assert_ne!(World::load(&wf).unwrap().state(), before);
    let (code, out, err) = run(&["detach", "--job", "7", "--node", "cn001"], &cfg, &wf);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("job 7 detached on cn001"), "{out}");
    assert_eq!(
        World::load(&wf).unwrap().state(),
        before,
        "detach gave back"
    );

    // A job the controller wrote no network for: the launcher's exit code of its own, nothing
    // changed, and the message names the program.
    let (code, _, err) = run(
        &[
            "attach", "--job", "99", "--node", "cn001", "--vm", "vs1=t7v1",
        ],
        &cfg,
        &wf,
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with("jobnet-node: ")
            && err.contains("job 99 has no network from the controller")
            && err.contains("nothing was changed (exit 3)"),
        "{err}"
    );
    assert_eq!(World::load(&wf).unwrap().state(), before);
    // Bad input: exit 2, as JSON when JSON was asked for.
    let (code, out, err) = run(
        &["prepare", "--job", "no/such", "--format", "json"],
        &cfg,
        &wf,
    );
    assert_eq!(code, 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], 2, "{out}");
    assert!(err.contains("--job"), "{err}");
}

#[test]
fn it_offers_the_node_commands_and_nothing_of_the_controller() {
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet-node"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for c in ["prepare", "attach", "detach", "show"] {
        assert!(help.contains(c), "{c} missing:\n{help}");
    }
    for c in ["  up ", "  plan ", "  down ", "  recover "] {
        assert!(!help.contains(c), "{c} offered:\n{help}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet-node"))
        .arg("up")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown command is a usage error"
    );
}

#[test]
fn called_jobnet_cni_it_is_the_cni_plugin() {
    let d = scratch("cni");
    let link = d.join("jobnet-cni");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_jobnet-node"), &link).unwrap();
    let mut c = Command::new(&link)
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(br#"{"cniVersion": "1.0.0"}"#)
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let versions = v["supportedVersions"]
        .as_array()
        .expect("supportedVersions");
    assert!(versions.iter().any(|x| x == "1.0.0"), "{v}");
}
