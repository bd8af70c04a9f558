//! `jobnet` processes against simulated switches served over real SSH (russh server on
//! 127.0.0.1): host-key checking (unknown, changed, trust on first use), logins, legacy
//! algorithms per switch, timeouts, dropped connections, strings refused before any connection,
//! and 50 concurrent `up`s and `down`s against one state file.

mod common;

use jobnet::drivers::DriverSet;
use jobnet::testkit::sim::{SimFabric, SimPort, SimState, SitePorts};
use jobnet::testkit::sim_server;
use jobnet::topology::{self, Topology};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

struct Lab {
    dir: PathBuf,
    fabric: SimFabric,
    /// The switches as the site configured them, before any job.
    baseline: BTreeMap<String, SimState>,
    topology: Topology,
    running: sim_server::Running,
    _runtime: tokio::runtime::Runtime,
}

const ENABLE: &str = "en-secret-7";

fn access(authorized: Vec<russh::keys::PublicKey>) -> sim_server::Access {
    sim_server::Access {
        username: "jobnet".into(),
        password: "pw-for-tests".into(),
        authorized_keys: authorized,
        enable_password: Some(ENABLE.into()),
    }
}

fn lab(name: &str, legacy_only: &[&str]) -> Lab {
    lab_with(name, "topology/two-tier.yaml", legacy_only, vec![])
}

fn lab_with(
    name: &str,
    topo: &str,
    legacy_only: &[&str],
    authorized: Vec<russh::keys::PublicKey>,
) -> Lab {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ssh")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let drivers = DriverSet::builtin();
    let t = match std::fs::read_to_string(topo) {
        Ok(_) => {
            topology::load(std::path::Path::new(topo), &drivers)
                .unwrap()
                .topology
        }
        Err(_) => {
            topology::parse(topo, "inline.yaml", &drivers)
                .unwrap()
                .topology
        }
    };
    let fabric = SimFabric::default();
    let names: Vec<String> = t.switches.iter().map(|s| s.name.clone()).collect();
    fabric.build(&t, &drivers, SitePorts::Prepared);
    let baseline = fabric.snapshot();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let legacy: Vec<String> = legacy_only.iter().map(|s| s.to_string()).collect();
    let acc = access(authorized);
    let running =
        sim_server::start_fabric(runtime.handle(), &fabric, &names, &legacy, &acc).unwrap();
    sim_server::write_lab(&dir, &t, &running, &acc, &[]).unwrap();
    Lab {
        dir,
        fabric,
        baseline,
        topology: t,
        running,
        _runtime: runtime,
    }
}

impl Lab {
    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_str().unwrap().to_string()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet"));
        c.args([
            "--state",
            &self.path("state.db"),
            "--credentials",
            &self.path("credentials.yaml"),
            "--known-hosts",
            &self.path("known_hosts"),
        ]);
        c.args(args);
        c.env_remove("JOBNET_FAILPOINT");
        c
    }

    fn jn(&self, args: &[&str]) -> (i32, String, String) {
        let o: Output = self.cmd(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn up(&self, job: &str, extra: &[&str]) -> (i32, String, String) {
        let topo = self.path("topology.yaml");
        let mut args = vec![
            "up",
            "--topology",
            &topo,
            "--job",
            job,
            "--nodes",
            "cn[001-004],cn[030-031],cn041",
            "--pkey",
            "none",
        ];
        args.extend_from_slice(extra);
        self.jn(&args)
    }

    fn snapshot(&self) -> BTreeMap<String, SimState> {
        self.fabric.snapshot()
    }

    /// Every switch as the site left it: no job's trace anywhere.
    fn empty(&self) -> bool {
        self.snapshot() == self.baseline
    }
}

#[test]
fn up_and_down_over_ssh() {
    let lab = lab("roundtrip", &[]);
    let (code, out, err) = lab.up("1234", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("job 1234 up: VLAN 1000"), "{out}");
    let s = lab.snapshot();
    for sw in ["leaf1", "leaf2", "leaf3", "spine2"] {
        assert!(s[sw].vlans.contains_key(&1000), "{sw}: {:?}", s[sw]);
    }
    assert!(s["spine1"].vlans.is_empty() && s["leaf4"].vlans.is_empty());
    let log = lab.fabric.get("leaf3").unwrap().log.lock().unwrap().clone();
    assert_eq!(
        log[..2],
        [
            "terminal length 0".to_string(),
            "show vlan brief".to_string()
        ],
        "setup, then the read, then the change"
    );
    assert!(log.contains(&"switchport trunk allowed vlan add 1000".to_string()));
    let (code, out, _) = lab.jn(&["down", "--job", "1234"]);
    assert_eq!(code, 0);
    assert!(out.contains("operation(s) undone"), "{out}");
    assert!(lab.empty(), "{:?}", lab.snapshot());
}

#[test]
fn unknown_and_changed_host_keys_are_refused() {
    let lab = lab("hostkeys", &[]);
    std::fs::write(lab.path("known_hosts"), "").unwrap();
    let (code, _, err) = lab.up("1", &[]);
    assert_eq!(code, 4, "{err}");
    // The transport says what to do in its words; the command line adds its flag.
    assert!(
        err.contains("is not in known_hosts")
            && err.contains("(hint: run once with --trust-on-first-use)"),
        "{err}"
    );
    assert!(lab.empty());
    // A different key recorded for leaf1's port: a changed key.
    let other = sim_server::host_key()
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    let mut kh = lab.running.known_hosts.clone();
    let port = lab.running.ports["leaf1"];
    kh = kh
        .lines()
        .map(|l| {
            if l.starts_with(&format!("[127.0.0.1]:{port} ")) {
                format!("[127.0.0.1]:{port} {other}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(lab.path("known_hosts"), kh).unwrap();
    let (code, _, err) = lab.up("2", &[]);
    assert_eq!(code, 4);
    assert!(
        err.contains(&format!("host key of [127.0.0.1]:{port} CHANGED"))
            && err.contains("man-in-the-middle"),
        "{err}"
    );
    assert!(
        lab.empty(),
        "nothing may be changed when any device is refused"
    );
}

#[test]
fn trust_on_first_use_only_when_asked() {
    let lab = lab("tofu", &[]);
    std::fs::write(lab.path("known_hosts"), "").unwrap();
    let (code, _, err) = lab.up("1", &["--trust-on-first-use"]);
    assert_eq!(code, 0, "{err}");
    let learned = std::fs::read_to_string(lab.path("known_hosts")).unwrap();
    let lines: Vec<&str> = learned.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "the four switches of the job: {learned}");
    for line in lines {
        assert!(
            lab.running.known_hosts.contains(line),
            "learned the real key: {line}"
        );
    }
    assert_eq!(lab.jn(&["down", "--job", "1"]).0, 0);
}

#[test]
fn legacy_algorithms_only_for_switches_marked_legacy() {
    let lab = lab("legacy", &["leaf3"]);
    let (code, _, err) = lab.up("1", &[]);
    assert_eq!(code, 4);
    assert!(
        err.contains("leaf3") && err.contains("ssh_legacy: true"),
        "{err}"
    );
    assert!(lab.empty());
    let legacy_topo = sim_server::rewrite_topology(
        &lab.topology,
        &lab.running.ports,
        "sim",
        &["leaf3".to_string()],
    );
    std::fs::write(lab.path("topology.yaml"), legacy_topo).unwrap();
    // Legacy key exchange (RSA, DH group 14) is slow in a debug build on a loaded machine.
    let (code, _, err) = lab.up("2", &["--connect-timeout", "60"]);
    assert_eq!(code, 0, "{err}");
    assert!(lab.snapshot()["leaf3"].vlans.contains_key(&1000));
    // The same slow key exchange for the down: its connect timeout as the up's.
    let (code, _, err) = lab.jn(&["--connect-timeout", "60", "down", "--job", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(lab.empty());
    // ssh-keyscan cannot record an old switch's key: the hint is the ssh command that can.
    let kh = std::fs::read_to_string(lab.path("known_hosts")).unwrap();
    let port = lab.running.ports["leaf3"];
    let without: String = kh
        .lines()
        .filter(|l| !l.starts_with(&format!("[127.0.0.1]:{port} ")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(lab.path("known_hosts"), without).unwrap();
    let (code, _, err) = lab.up("3", &["--connect-timeout", "60"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains(&format!("for this ssh_legacy switch: ssh -o KexAlgorithms=+diffie-hellman-group14-sha1 -o HostKeyAlgorithms=+ssh-rsa -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={} -o HashKnownHosts=no -p {port} USER@127.0.0.1", lab.path("known_hosts"))),
        "{err}"
    );
}

#[test]
fn logins_and_credentials_files() {
    let lab = lab("logins", &[]);
    let creds = lab.path("credentials.yaml");
    std::fs::remove_file(&creds).unwrap();
    std::fs::write(
        &creds,
        "sim: {username: jobnet, password: \"wrong-secret-42\"}\n",
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, err) = lab.up("1", &[]);
    assert_eq!(code, 4);
    assert!(
        err.contains("authentication refused for user jobnet (credentials entry `sim`)"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-secret-42"),
        "a secret was printed: {err}"
    );
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = lab.up("1", &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is readable by group or others (mode 0644); run `chmod 600"),
        "{err}"
    );
    assert!(lab.empty());
}

#[test]
fn timeouts_and_dropped_connections_roll_back() {
    let lab = lab("timeouts", &[]);
    lab.fabric.with_faults("leaf2", |f| {
        f.hang_at_line = Some(7);
        f.next_session_only = true;
    });
    let started = std::time::Instant::now();
    let (code, _, err) = lab.up("1", &["--command-timeout", "1"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("leaf2: `") && err.contains("got no answer within 1 s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(lab.empty(), "{:?}", lab.snapshot());
    lab.fabric.with_faults("leaf2", |f| f.hang_at_line = None);
    lab.fabric.with_faults("spine2", |f| {
        f.drop_at_line = Some(5);
        f.next_session_only = true;
    });
    let (code, _, err) = lab.up("2", &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("spine2: connection lost"), "{err}");
    assert!(lab.empty());
}

#[test]
fn injection_is_refused_before_any_connection() {
    let lab = lab("injection", &[]);
    for job in ["1;reload", "1\nreload", "$(reboot)", "a'b", "a\"b"] {
        let (code, _, err) = lab.up(job, &[]);
        assert_eq!(code, 2, "{job:?}: {err}");
    }
    for sw in ["leaf1", "leaf2", "leaf3", "spine1", "spine2", "leaf4"] {
        assert!(
            lab.fabric.get(sw).unwrap().log.lock().unwrap().is_empty(),
            "{sw} was contacted"
        );
    }
}

#[test]
fn fifty_concurrent_ups_then_downs() {
    let lab = lab("fifty", &[]);
    let topo = lab.path("topology.yaml");
    let children: Vec<_> = (0..50)
        .map(|i| {
            lab.cmd(&[
                "up",
                "--topology",
                &topo,
                "--job",
                &format!("c{i}"),
                "--nodes",
                "cn[001-004],cn[030-031],cn041",
                "--pkey",
                "none",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "up c{i}: {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let (_, out, _) = lab.jn(&["status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 50, "every job recorded");
    let vlans: std::collections::BTreeSet<u64> =
        jobs.iter().map(|j| j["vlan"].as_u64().unwrap()).collect();
    assert_eq!(vlans.len(), 50, "distinct VLANs");
    assert!(jobs.iter().all(|j| j["state"] == "up"));
    let s = lab.snapshot();
    for sw in ["leaf1", "leaf2", "leaf3", "spine2"] {
        let on: std::collections::BTreeSet<u64> =
            s[sw].vlans.keys().map(|&v| u64::from(v)).collect();
        assert_eq!(on, vlans, "{sw} carries exactly the 50 jobs' VLANs");
    }
    let children: Vec<_> = (0..50)
        .map(|i| {
            lab.cmd(&["down", "--job", &format!("c{i}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "down c{i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(lab.empty(), "{:?}", lab.snapshot());
}

fn write_credentials(lab: &Lab, text: &str) {
    let creds = lab.path("credentials.yaml");
    let _ = std::fs::remove_file(&creds);
    std::fs::write(&creds, text).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn privileged_mode_needs_the_enable_password() {
    let lab = lab("enable", &[]);
    write_credentials(&lab, "sim: {username: jobnet, password: pw-for-tests}\n");
    let (code, _, err) = lab.up("1", &[]);
    assert_eq!(code, 4);
    assert!(
        err.contains(
            "`enable` asks for a password; add `enable_password` to credentials entry `sim`"
        ),
        "{err}"
    );
    write_credentials(
        &lab,
        "sim: {username: jobnet, password: pw-for-tests, enable_password: nope}\n",
    );
    let (code, _, err) = lab.up("2", &[]);
    assert_eq!(code, 4);
    assert!(
        err.contains("`enable` was refused (wrong enable_password in credentials entry `sim`?)")
            && !err.contains("nope"),
        "{err}"
    );
    assert!(lab.empty());
    write_credentials(
        &lab,
        &format!("sim: {{username: jobnet, password: pw-for-tests, enable_password: {ENABLE}}}\n"),
    );
    assert_eq!(lab.up("3", &[]).0, 0);
    assert_eq!(lab.jn(&["down", "--job", "3"]).0, 0);
}

#[test]
fn refused_commands_over_ssh_name_the_answer_and_save_is_optional() {
    let lab = lab("refused", &[]);
    lab.fabric.with_faults("leaf2", |f| {
        f.reject_matching = Some("allowed vlan add".into())
    });
    let (code, _, err) = lab.up("1", &[]);
    assert_eq!(code, 4);
    assert!(err.contains("leaf2 refused `switchport trunk allowed vlan add 1000`: % Invalid input detected at '^' marker."), "{err}");
    assert!(lab.empty());
    lab.fabric
        .with_faults("leaf2", |f| f.reject_matching = None);
    assert_eq!(lab.up("2", &[]).0, 0);
    let saved = |sw: &str| {
        lab.fabric
            .get(sw)
            .unwrap()
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "write memory" || l == "copy running-config startup-config")
    };
    assert!(!saved("leaf3"), "no save unless asked");
    assert_eq!(lab.jn(&["--save-config", "down", "--job", "2"]).0, 0);
    assert!(
        saved("leaf3") && saved("leaf2"),
        "--save-config sends the profile's save lines"
    );
}

#[test]
fn pagers_are_paged_through() {
    let lab = lab("pager", &[]);
    {
        let leaf1 = lab.fabric.get("leaf1").unwrap();
        leaf1.faults.lock().unwrap().page_lines = Some(5);
        let mut st = leaf1.state.lock().unwrap();
        for v in 1000..1030 {
            st.vlans.insert(v, format!("other-{v}"));
        }
    }
    let (code, out, err) = lab.up("1", &[]);
    assert_eq!(code, 0, "{err}");
    // VLANs 1000-1029 exist on leaf1, several pages down its `show vlan` answer.
    assert!(out.contains("VLAN 1030"), "{out}");
    assert_eq!(lab.jn(&["down", "--job", "1"]).0, 0);
    assert_eq!(
        lab.snapshot()["leaf1"].vlans.len(),
        30,
        "the other VLANs are untouched"
    );
}

#[test]
fn key_login() {
    let key = sim_server::host_key().unwrap();
    let lab = lab_with(
        "keys",
        "topology/two-tier.yaml",
        &[],
        vec![key.public_key().clone()],
    );
    let key_path = lab.dir.join("id_ed25519");
    std::fs::write(
        &key_path,
        key.to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_credentials(
        &lab,
        &format!(
            "sim: {{username: jobnet, key_file: {}, enable_password: {ENABLE}}}\n",
            key_path.display()
        ),
    );
    let (code, _, err) = lab.up("1", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lab.jn(&["down", "--job", "1"]).0, 0);
    // Another key is refused.
    let other = sim_server::host_key().unwrap();
    std::fs::write(
        &key_path,
        other
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let (code, _, err) = lab.up("2", &[]);
    assert_eq!(code, 4);
    assert!(
        err.contains("authentication refused for user jobnet"),
        "{err}"
    );
}

const OVS_OVER_SSH: &str = r#"name: ovs-ssh
ethernet: {vlan_pool: "100-199", node_port_mode: access}
switches:
  - {name: br1, driver: openvswitch, address: 192.0.2.1, credentials: x}
  - {name: br2, driver: openvswitch, address: 192.0.2.2, credentials: x}
links:
  - {a: br1:up12, b: br2:up21}
nodes:
  - {name: h1, port: br1:h1p}
  - {name: h2, port: br2:h2p}
"#;

#[test]
fn exec_dialects_over_ssh() {
    let lab = lab_with("exec", OVS_OVER_SSH, &[], vec![]);
    lab.fabric
        .get("br1")
        .unwrap()
        .set_port("h1p", SimPort::access(4093));
    let before = lab.snapshot();
    let topo = lab.path("topology.yaml");
    let (code, _, err) = lab.jn(&["up", "--topology", &topo, "--job", "1", "--nodes", "h1,h2"]);
    assert_eq!(code, 0, "{err}");
    let s = lab.snapshot();
    assert_eq!(s["br1"].ports["h1p"], SimPort::access(100));
    let ovs = lab.fabric.get("br2").unwrap();
    assert!(s["br2"].carries(ovs.profile(), "up21", 100));
    let log = lab.fabric.get("br1").unwrap().log.lock().unwrap().clone();
    assert!(
        // br1's ports (h1p and the trunk up12) read with one command, not one each.
        log.contains(&"ovs-vsctl --columns=name,tag,trunks list port".to_string())
            && !log
                .iter()
                .any(|l| l.starts_with("ovs-vsctl --columns=name,tag,trunks list port "))
            // and changed with one run, one transaction (batch:), not a run per operation
            && log.contains(&"ovs-vsctl -- add port up12 trunks 100 -- set port h1p tag=100".to_string())
            && !log.contains(&"ovs-vsctl set port h1p tag=100".to_string()),
        "{log:?}"
    );
    let (code, _, err) = lab.jn(&["up", "--topology", &topo, "--job", "2", "--nodes", "h2"]);
    assert_eq!(code, 2, "h2 belongs to job 1 (access mode): {err}");
    assert_eq!(lab.jn(&["down", "--job", "1"]).0, 0);
    assert_eq!(lab.snapshot(), before, "h1p is back on VLAN 4093");
    // A refused exec request (non-zero exit status) rolls back.
    lab.fabric
        .with_faults("br2", |f| f.reject_matching = Some("h2p".into()));
    let (code, _, err) = lab.jn(&["up", "--topology", &topo, "--job", "3", "--nodes", "h1,h2"]);
    assert_eq!(code, 4);
    // Reads are answered; br2's one transaction is refused as a whole (nothing of it applied),
    // after br1 was already changed: rolled back.
    assert!(
        err.contains("br2 refused `ovs-vsctl -- add port up21 trunks 100 -- set port h2p tag=100`"),
        "{err}"
    );
    assert_eq!(lab.snapshot(), before);
}

#[test]
fn connect_timeout() {
    let lab = lab("connect-timeout", &[]);
    // A listener that accepts and never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut ports = lab.running.ports.clone();
    ports.insert("leaf1".into(), port);
    std::fs::write(
        lab.path("topology.yaml"),
        sim_server::rewrite_topology(&lab.topology, &ports, "sim", &[]),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (code, _, err) = lab.up("1", &["--connect-timeout", "1"]);
    assert_eq!(code, 4);
    assert!(
        err.contains(&format!(
            "cannot connect to leaf1 (127.0.0.1:{port}): no SSH connection within 1 s"
        )),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(lab.empty());
    drop(silent);
}

/// What Slurm does to a prolog that runs past PrologEpilogTimeout (SIGTERM), and a terminal's
/// `up` of job 1 on the shipped example's nodes, in the background, its output captured.
fn spawn_up(lab: &Lab, globals: &[&str]) -> std::process::Child {
    let topo = lab.path("topology.yaml");
    let mut args: Vec<&str> = globals.to_vec();
    args.extend([
        "up",
        "--topology",
        &topo,
        "--job",
        "1",
        "--nodes",
        "cn[001-004],cn[030-031],cn041",
        "--pkey",
        "none",
    ]);
    lab.cmd(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Ctrl-C: `up` stops, undoes what it applied, and exits 4; nothing is left on any switch.
#[test]
fn a_signal_during_up_unwinds_and_exits_4() {
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let lab = lab(&format!("signal-{name}"), &[]);
        for sw in ["leaf1", "leaf2", "leaf3", "spine2"] {
            lab.fabric
                .with_faults(sw, |f| f.command_latency = Duration::from_millis(60));
        }
        let child = spawn_up(&lab, &[]);
        common::wait_for_done(&lab.dir.join("state.db"), "1", 2);
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{name}: {err}");
        assert!(err.contains(&format!("interrupted by {name}")), "{err}");
        assert!(lab.empty(), "{name}: {:?}", lab.snapshot());
        let (_, out, _) = lab.jn(&["status", "--job", "1", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["jobs"][0]["state"], "down", "{out}");
    }
}

/// A device that does not answer for a long time (30 s a command, under a 60 s command
/// timeout): a SIGTERM during `up` still ends the wait within a second or so, and what was
/// applied elsewhere is undone (exit 4).
#[test]
fn a_signal_ends_a_wait_for_a_slow_device_at_once() {
    let lab = lab("signal-slow", &[]);
    lab.fabric
        .with_faults("leaf1", |f| f.command_latency = Duration::from_secs(30));
    let child = spawn_up(&lab, &["--command-timeout", "60"]);
    std::thread::sleep(Duration::from_millis(2500));
    let sent = std::time::Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    let after = sent.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(
        after < Duration::from_secs(5),
        "{after:?} after SIGTERM (the device would have answered after 30 s)"
    );
    assert!(lab.empty(), "{:?}", lab.snapshot());
}

/// A switch re-addressed (here: its simulator restarted on another port, with a new host key)
/// after a job came up: `down` at the old address fails and keeps the job; `down --topology`
/// with the current topology reaches it by name and cleans up.
#[test]
fn a_moved_switch_is_undone_where_the_topology_says_now() {
    let mut lab = lab("moved", &[]);
    let (code, _, err) = lab.up("1", &[]);
    assert_eq!(code, 0, "{err}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let names: Vec<String> = lab
        .topology
        .switches
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let acc = access(vec![]);
    let moved = sim_server::start_fabric(runtime.handle(), &lab.fabric, &names, &[], &acc).unwrap();
    drop(std::mem::replace(&mut lab._runtime, runtime)); // the old addresses go dark
    let now = lab.dir.join("now");
    sim_server::write_lab(&now, &lab.topology, &moved, &acc, &[]).unwrap();
    let kh = lab.path("known_hosts");
    let mut keys = std::fs::read_to_string(&kh).unwrap();
    keys.push_str(&moved.known_hosts);
    std::fs::write(&kh, keys).unwrap();
    let (code, _, err) = lab.jn(&["--connect-timeout", "2", "down", "--job", "1"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("cannot connect to leaf1"), "{err}");
    assert!(!lab.empty(), "nothing could be undone");
    let topo = now.join("topology.yaml");
    let (code, out, err) = lab.jn(&["down", "--job", "1", "--topology", topo.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("job 1 down"), "{out}");
    assert!(lab.empty(), "{:?}", lab.snapshot());
}

/// A device that refuses a shell (NETCONF-only) is reported as such at once, not after a
/// 30-second wait for a prompt.
#[test]
fn a_device_that_refuses_a_shell_is_reported_at_once() {
    let lab = lab("no-shell", &[]);
    lab.fabric.with_faults("leaf2", |f| f.refuse_shell = true);
    let started = std::time::Instant::now();
    let (code, _, err) = lab.up("1", &["--command-timeout", "30"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("cannot connect to leaf2") && err.contains("refused an interactive shell"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(lab.empty());
    let ovs = lab_with("no-exec", OVS_OVER_SSH, &[], vec![]);
    ovs.fabric.with_faults("br2", |f| f.refuse_shell = true);
    let topo = ovs.path("topology.yaml");
    let (code, _, err) = ovs.jn(&["up", "--topology", &topo, "--job", "1", "--nodes", "h1,h2"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("refused the exec request"), "{err}");
}

/// A damaged journal row (its undo list cut short) is a loud error: `down` exits 5 naming the job
/// and the row, sends nothing to any switch, and keeps the job for an administrator.
#[test]
fn a_corrupt_journal_row_stops_down_before_anything_is_sent() {
    let lab = lab("corrupt-journal", &[]);
    let (code, _, err) = lab.up("66", &[]);
    assert_eq!(code, 0, "{err}");
    let after_up = lab.snapshot();
    let sent = |lab: &Lab| -> usize {
        lab.topology
            .switches
            .iter()
            .map(|s| lab.fabric.get(&s.name).unwrap().log.lock().unwrap().len())
            .sum()
    };
    let sent_by_up = sent(&lab);
    let conn = rusqlite::Connection::open(lab.path("state.db")).unwrap();
    let row: i64 = conn
        .query_row(
            "SELECT id FROM journal WHERE job='66' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE journal SET undo='[\"no vlan 1000\"' WHERE id=?1",
        [row],
    )
    .unwrap();
    drop(conn);
    let (code, out, err) = lab.jn(&["down", "--job", "66"]);
    assert_eq!(code, 5, "{out}{err}");
    assert!(err.contains("job 66 needs attention"), "{err}");
    assert!(
        err.contains(&format!(
            "journal row {row} of job 66 is corrupt: its undo lines"
        )),
        "{err}"
    );
    assert_eq!(sent(&lab), sent_by_up, "no line was sent by down");
    assert_eq!(lab.snapshot(), after_up, "every switch keeps the job");
    let conn = rusqlite::Connection::open(lab.path("state.db")).unwrap();
    let state: String = conn
        .query_row("SELECT state FROM jobs WHERE job='66'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "failed-rollback", "kept, not released");
}
