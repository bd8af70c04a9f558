//! The node side without Open vSwitch (the OVS backend and the CNI plugin's data path are proven
//! by .ci/labs/nodes.sh): Linux bridge backends against this kernel (which lacks bridge VLAN
//! filtering and 802.1Q: the kernel's refusal is reported and nothing is left), Proxmox and
//! libvirt configuration from a job's network.json, and the CNI plugin's VERSION and errors as
//! a runtime sees them.

use std::path::{Path, PathBuf};
use std::process::Command;

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
    std::fs::create_dir_all(dir.join(job)).unwrap();
    std::fs::write(
        dir.join(job).join("network.json"),
        format!(
            r#"{{"job": "{job}", "vlan": 160, "pkey": null, "nodes": ["cn001"],
  "addresses": {{"job": "{job}", "subnet": "192.168.160.0/24", "gateway": "192.168.160.1", "dns": [],
    "vms": [{{"name": "vs1", "node": "cn001", "ip": "192.168.160.64", "mac": "02:00:c0:a8:a0:40"}},
            {{"name": "vs2", "node": "cn001", "ip": "192.168.160.65", "mac": "02:00:c0:a8:a0:41"}}]}}}}"#
        ),
    )
    .unwrap();
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

fn sh(line: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .status()
        .unwrap()
        .success()
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

/// This kernel has a Linux bridge but no bridge VLAN filtering and no 802.1Q: both Linux
/// backends report the kernel's answer with the command, and leave the node as it was.
#[test]
fn linux_bridge_backends_report_what_the_kernel_refuses() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (CI runs as root)"
    );
    let d = scratch("linux");
    network(&d, "9");
    let (br, up, tap) = ("jnt9br", "jnt9up", "jnt9tap");
    let _ = sh(&format!(
        "ip link del {br} 2>/dev/null; ip link del {up} 2>/dev/null; ip link del {tap} 2>/dev/null"
    ));
    assert!(sh(&format!(
        "ip link add {br} type bridge && ip link add {up} type veth peer name {up}p && ip link add {tap} type veth peer name {tap}p && ip link set {up} master {br} && ip link set {tap} master {br}"
    )));
    for (backend, want) in [
        ("bridge-vlan", "`bridge vlan add dev jnt9up vid 160` failed: RTNETLINK answers: Operation not supported"),
        ("bridge-classic", "`ip link add link jnt9up name jnt9up.160 type vlan id 160` failed: Error: Unknown device type."),
    ] {
        let cfg = d.join(format!("{backend}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "jobs_dir: {d}\nstate_dir: {d}/state-{backend}\nbackend: {backend}\nbridge: {br}\nuplink: {up}\n",
                d = d.display()
            ),
        )
        .unwrap();
        let (code, _, err) = jobnet(&["node", "attach", "--job", "9", "--node", "cn001", "--vm", &format!("vs1={tap}")], &cfg);
        assert_eq!(code, 1, "{backend}: {err}");
        assert!(err.contains(want), "{backend}: {err}");
        let leftovers: Vec<_> = walk(&d.join(format!("state-{backend}")));
        assert!(leftovers.is_empty(), "{backend} recorded a change it did not make: {leftovers:?}");
        assert!(!Path::new("/sys/class/net/jnt9up.160").exists() && !Path::new("/sys/class/net/vmbr0v160").exists());
        // Nothing attached, nothing to detach.
        let (code, out, _) = jobnet(&["node", "detach", "--job", "9", "--node", "cn001"], &cfg);
        assert_eq!(code, 0);
        assert!(out.contains("not attached"), "{out}");
    }
    let _ = sh(&format!(
        "ip link del {br}; ip link del {up}; ip link del {tap}"
    ));
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
