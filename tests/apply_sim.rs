//! The executor against simulated switches (the test kit's in-memory switches that speak the
//! shipped dialects): all-or-nothing `up`, complete and idempotent `down`, rollback with a fault at
//! every position, undo failures, recorded access VLANs, VLANs that exist on a switch, and many
//! `up`s at once against one state file.

mod common;

use jobnet::apply::DownResult;
use jobnet::apply::Interrupt;
use jobnet::apply::{self, ApplyError, Env, UpInputs};
use jobnet::base::types::{JobId, PKey, VlanId};
use jobnet::drivers::DriverSet;
use jobnet::plan::{Choice, JobRequest, PKeyChoice};
use jobnet::state::sqlite::SqliteStore as Store;
use jobnet::state::{JobState, JournalStatus, StateStore};
use jobnet::testkit::failpoint::Failpoints;
use jobnet::testkit::sim::{SimFabric, SimPort, SimState, SitePorts};
use jobnet::topology::{self, SwitchGraph, Topology};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn j(id: &str) -> JobId {
    JobId::parse(id).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("apply-sim")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Lab {
    dir: PathBuf,
    /// The lab runs on the shipped topology/two-tier.yaml.
    shipped: bool,
    topology: Topology,
    graph: SwitchGraph,
    drivers: DriverSet,
    fabric: SimFabric,
    store: Store,
}

impl Lab {
    /// A lab whose ports are configured as docs/topology.md asks a site to.
    fn new(name: &str, topo_text: Option<&str>) -> Self {
        Self::with_ports(name, topo_text, SitePorts::Prepared)
    }

    fn with_ports(name: &str, topo_text: Option<&str>, ports: SitePorts) -> Self {
        let dir = scratch(name);
        let drivers = DriverSet::builtin();
        let topology = match topo_text {
            Some(t) => topology::parse(t, "lab.yaml", &drivers).unwrap().topology,
            None => {
                topology::load(std::path::Path::new("topology/two-tier.yaml"), &drivers)
                    .unwrap()
                    .topology
            }
        };
        let graph = SwitchGraph::build(&topology);
        let store = Store::open(&dir.join("state.db")).unwrap();
        // Create every switch so snapshots compare whole fabrics.
        let fabric = SimFabric::default();
        fabric.build(&topology, &drivers, ports);
        Lab {
            dir,
            shipped: topo_text.is_none(),
            topology,
            graph,
            drivers,
            fabric,
            store,
        }
    }

    fn env<'a>(&'a self, fp: &'a Failpoints) -> Env<'a> {
        Env {
            store: &self.store,
            connector: &self.fabric,
            drivers: &self.drivers,
            faults: fp,
            sessions_per_device: 4,
            wait: Duration::from_secs(10),
            save: false,
            interrupt: &NO_SIGNAL,
            retarget: BTreeMap::new(),
            progress: &apply::Silent,
        }
    }

    fn inputs(&self) -> UpInputs<'_> {
        UpInputs {
            topology: &self.topology,
            graph: &self.graph,
            topology_path: "lab.yaml",
            partitions_conf: None,
        }
    }

    /// Whether switch `sw` passes `vlan` tagged on `port`.
    fn carries(&self, sw: &str, port: &str, vlan: u16) -> bool {
        let s = self.fabric.get(sw).unwrap();
        let profile = s.profile().clone();
        let state = s.state.lock().unwrap().clone();
        state.carries(&profile, port, vlan)
    }

    fn up(&self, fp: &Failpoints, job: &str, nodes: &str) -> Result<apply::UpReport, ApplyError> {
        let req = JobRequest {
            job: JobId::parse(job).unwrap(),
            nodes: jobnet::base::hostlist::expand(nodes).unwrap(),
            vlan: Choice::Auto,
            // The shipped example's partitions.conf is /etc/opensm's: tests never write there.
            pkey: if self.shipped {
                PKeyChoice::None
            } else {
                PKeyChoice::Default
            },
            gateway: None,
            origin: Default::default(),
        };
        apply::up(
            &self.env(fp),
            &UpInputs {
                topology: &self.topology,
                graph: &self.graph,
                topology_path: "lab.yaml",
                partitions_conf: None,
            },
            &req,
        )
    }

    fn snapshot(&self) -> BTreeMap<String, SimState> {
        self.fabric.snapshot()
    }
}

const NODES: &str = "cn[001-004],cn[030-031],cn041";
static NO_SIGNAL: Interrupt = Interrupt::new();

fn request(job: &str, nodes: &str, vlan: Choice<VlanId>, pkey: PKeyChoice) -> JobRequest {
    JobRequest {
        job: JobId::parse(job).unwrap(),
        nodes: jobnet::base::hostlist::expand(nodes).unwrap(),
        vlan,
        pkey,
        gateway: None,
        origin: Default::default(),
    }
}

#[test]
fn up_configures_exactly_the_plan_and_down_restores_everything() {
    let lab = Lab::new("roundtrip", None);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let r = lab.up(&none, "1234", NODES).unwrap();
    assert_eq!(r.vlan, Some(VlanId::new(1000).unwrap()));
    let names: Vec<&str> = r.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["leaf1", "leaf2", "leaf3", "spine2"]);
    let s = lab.snapshot();
    for sw in ["leaf1", "leaf2", "leaf3", "spine2"] {
        assert_eq!(
            s[sw].vlans.get(&1000).map(String::as_str),
            Some("jobnet-1234"),
            "{sw}"
        );
    }
    assert!(
        s["spine1"].vlans.is_empty() && !lab.carries("spine1", "Ethernet2", 1000),
        "spine1 is outside the subgraph"
    );
    assert!(s["leaf4"].vlans.is_empty());
    assert!(lab.carries("leaf3", "Port-Channel1", 1000));
    assert!(lab.carries("spine2", "Port-Channel3", 1000));
    assert!(lab.carries("leaf1", "Ethernet51", 1000));
    assert!(lab.carries("leaf2", "Ethernet1/51", 1000));
    for p in ["Ethernet1", "Ethernet2", "Ethernet3", "Ethernet4"] {
        assert!(lab.carries("leaf1", p, 1000), "node port {p}");
    }
    assert!(
        !lab.carries("leaf1", "Ethernet5", 1000),
        "not on other nodes' ports"
    );
    assert_eq!(
        lab.store.job(&j("1234")).unwrap().unwrap().state,
        JobState::Up
    );
    // Up again with the same nodes changes nothing.
    let again = lab.up(&none, "1234", NODES).unwrap();
    assert!(again.unchanged);
    assert!(matches!(
        lab.up(&none, "1234", "cn001"),
        Err(ApplyError::Invalid(_))
    ));

    let d = apply::down(&lab.env(&none), &j("1234"), false).unwrap();
    assert_eq!(d.result, DownResult::Down);
    assert_eq!(lab.snapshot(), baseline);
    assert!(lab.store.allocations().unwrap().is_empty());
    // Twice, and for a job that never existed: success, nothing to do.
    assert_eq!(
        apply::down(&lab.env(&none), &j("1234"), false)
            .unwrap()
            .result,
        DownResult::AlreadyDown
    );
    assert_eq!(
        apply::down(&lab.env(&none), &j("999"), false)
            .unwrap()
            .result,
        DownResult::NotFound
    );
    assert_eq!(lab.snapshot(), baseline);
}

#[test]
fn a_fault_at_every_position_rolls_everything_back() {
    let lab = Lab::new("every-position", None);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    // Count the operations of the job once.
    let total: usize = lab
        .up(&none, "1", NODES)
        .unwrap()
        .devices
        .iter()
        .map(|d| d.operations)
        .sum();
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert!(total >= 12, "a multi-device plan ({total} operations)");
    for k in 1..=total {
        for point in ["intent", "done"] {
            let fp = Failpoints::parse(&format!("{point}:{k}:error")).unwrap();
            let job = format!("f{point}{k}");
            match lab.up(&fp, &job, NODES) {
                Err(ApplyError::RolledBack { failures, .. }) => {
                    let failure = format!("{failures:?}");
                    assert!(failure.contains("injected"), "{failure}")
                }
                other => panic!("{point}:{k}: expected a rollback, got {other:?}"),
            }
            assert_eq!(
                lab.snapshot(),
                baseline,
                "fault {point}:{k} left changes behind"
            );
            assert!(
                lab.store.allocations().unwrap().is_empty(),
                "fault {point}:{k} kept the VLAN"
            );
            assert_eq!(
                lab.store.job(&j(&job)).unwrap().unwrap().state,
                JobState::Down
            );
        }
    }
}

#[test]
fn device_refusals_and_dropped_connections_roll_back_with_the_devices_answer() {
    let lab = Lab::new("device-faults", None);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    // leaf3 (cisco-ios) refuses to add VLANs to trunks.
    lab.fabric.with_faults("leaf3", |f| {
        f.reject_matching = Some("allowed vlan add".into())
    });
    match lab.up(&none, "7", NODES) {
        Err(e @ ApplyError::RolledBack { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("leaf3 refused `switchport trunk allowed vlan add 1000`: % Invalid input detected"), "{msg}");
            assert_eq!(e.exit_code(), 4);
        }
        other => panic!("expected rollback, got {other:?}"),
    }
    assert_eq!(lab.snapshot(), baseline);
    lab.fabric
        .with_faults("leaf3", |f| f.reject_matching = None);
    // spine2 drops the connection in the middle.
    lab.fabric
        .with_faults("spine2", |f| f.drop_at_line = Some(6));
    let e = lab.up(&none, "8", NODES).unwrap_err();
    assert!(e.to_string().contains("spine2: connection lost"), "{e}");
    assert_eq!(lab.snapshot(), baseline);
    lab.fabric.with_faults("spine2", |f| f.drop_at_line = None);
    // A switch that refuses the login: nothing was touched anywhere.
    lab.fabric.with_faults("leaf2", |f| f.refuse_login = true);
    let e = lab.up(&none, "9", NODES).unwrap_err();
    assert!(e.to_string().contains("cannot connect to leaf2"), "{e}");
    assert_eq!(lab.snapshot(), baseline);
}

#[test]
fn failed_undo_keeps_the_journal_until_down_succeeds() {
    let lab = Lab::new("undo-fails", None);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    // leaf1 refuses a trunk change (apply fails); leaf3 refuses to delete the VLAN it created
    // (undo of a completed operation fails). Device faults, so the outcome does not depend on
    // which parallel worker gets there first.
    lab.fabric.with_faults("leaf1", |f| {
        f.reject_matching = Some("allowed vlan add".into())
    });
    lab.fabric
        .with_faults("leaf3", |f| f.reject_matching = Some("no vlan 1000".into()));
    let e = lab.up(&none, "55", NODES).unwrap_err();
    assert!(matches!(e, ApplyError::NeedsAttention { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 5);
    let row = lab.store.job(&j("55")).unwrap().unwrap();
    assert_eq!(row.state, JobState::FailedRollback);
    assert_eq!(
        lab.store.allocations().unwrap().len(),
        1,
        "the VLAN stays allocated"
    );
    assert_ne!(lab.snapshot(), baseline, "one change could not be undone");
    let msg = e.to_string();
    assert!(
        msg.contains("applying failed: leaf1 refused `switchport trunk allowed vlan add 1000`"),
        "{msg}"
    );
    assert!(
        msg.contains("undo failed: leaf3 refused `no vlan 1000`"),
        "{msg}"
    );
    // A new up for the same job refuses; once the devices behave, down finishes the job.
    assert!(matches!(
        lab.up(&none, "55", NODES),
        Err(ApplyError::NeedsAttention { .. })
    ));
    lab.fabric
        .with_faults("leaf1", |f| f.reject_matching = None);
    lab.fabric
        .with_faults("leaf3", |f| f.reject_matching = None);
    assert_eq!(
        apply::down(&lab.env(&none), &j("55"), false)
            .unwrap()
            .result,
        DownResult::Down
    );
    assert_eq!(lab.snapshot(), baseline);
    assert!(lab.store.allocations().unwrap().is_empty());
}

const ACCESS: &str = r#"name: access-lab
ethernet: {vlan_pool: "100-110", node_port_mode: access}
switches:
  - {name: a1, driver: arista-eos, address: 192.0.2.1}
  - {name: a2, driver: cisco-ios, address: 192.0.2.2}
links:
  - {a: a1:Ethernet48, b: a2:GigabitEthernet1/0/48}
nodes:
  - {name: "n[1-2]", port: "a1:Ethernet[1-2]"}
  - {name: "n[3-4]", port: "a2:GigabitEthernet1/0/[1-2]"}
"#;

#[test]
fn access_mode_records_and_restores_the_previous_vlan() {
    let lab = Lab::new("access", Some(ACCESS));
    let none = Failpoints::default();
    lab.fabric
        .get("a1")
        .unwrap()
        .set_port("Ethernet1", SimPort::access(7));
    let baseline = lab.snapshot();
    lab.up(&none, "1", "n1,n3").unwrap();
    let s = lab.snapshot();
    assert_eq!(s["a1"].ports["Ethernet1"], SimPort::access(100));
    assert_eq!(s["a2"].ports["GigabitEthernet1/0/1"], SimPort::access(100));
    let journal = lab.store.journal(&j("1")).unwrap();
    assert!(
        journal
            .iter()
            .any(|r| r.undo.contains(&"switchport access vlan 7".to_string())),
        "undo restores VLAN 7"
    );
    // Access ports belong to one job at a time.
    let e = lab.up(&none, "2", "n1").unwrap_err();
    assert!(
        e.to_string().contains("node(s) n1 belong to running job 1"),
        "{e}"
    );
    // A job whose undo failed runs nowhere: the refusal says what ends it.
    lab.store
        .set_state(&j("1"), JobState::FailedRollback, "test")
        .unwrap();
    let e = lab.up(&none, "2", "n1").unwrap_err().to_string();
    assert!(
        e.contains("node(s) n1 still hold job 1's network, whose undo failed (failed-rollback)")
            && e.contains("then `jobnet down --job 1`")
            && !e.contains("running"),
        "{e}"
    );
    lab.store.set_state(&j("1"), JobState::Up, "test").unwrap();
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
}

#[test]
fn vlans_that_exist_on_a_switch_are_skipped() {
    let lab = Lab::new("foreign", Some(ACCESS));
    let none = Failpoints::default();
    lab.fabric
        .get("a2")
        .unwrap()
        .state
        .lock()
        .unwrap()
        .vlans
        .insert(100, "someone-else".into());
    lab.fabric
        .get("a1")
        .unwrap()
        .state
        .lock()
        .unwrap()
        .vlans
        .insert(101, "legacy".into());
    // Asked for by number, a VLAN configured on a switch is refused naming the switch.
    let req = request(
        "0",
        "n1,n3",
        Choice::Fixed(VlanId::new(100).unwrap()),
        PKeyChoice::None,
    );
    let inputs = lab.inputs();
    let e = apply::up(&lab.env(&none), &inputs, &req)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "VLAN 100 (from the job's request) is not usable: switch a2 (it is configured there) holds it"
        ),
        "{e}"
    );
    let r = lab.up(&none, "1", "n1,n3").unwrap();
    assert_eq!(r.vlan, Some(VlanId::new(102).unwrap()));
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    let s = lab.snapshot();
    assert_eq!(
        s["a2"].vlans.get(&100).map(String::as_str),
        Some("someone-else"),
        "never touched"
    );
    assert_eq!(s["a1"].vlans.get(&101).map(String::as_str), Some("legacy"));
}

#[test]
fn concurrent_ups_get_distinct_vlans() {
    let lab = Lab::new("concurrent", None);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let path = lab.dir.join("state.db");
    std::thread::scope(|s| {
        for i in 0..16 {
            let (lab, path, none) = (&lab, &path, &none);
            s.spawn(move || {
                // Each worker has its own connection to the state file, as processes do.
                let store = Store::open(path).unwrap();
                let env = Env {
                    store: &store,
                    ..lab.env(none)
                };
                let req = JobRequest {
                    job: JobId::parse(&format!("c{i}")).unwrap(),
                    nodes: jobnet::base::hostlist::expand(NODES).unwrap(),
                    vlan: Choice::Auto,
                    pkey: PKeyChoice::None,
                    gateway: None,
                    origin: Default::default(),
                };
                apply::up(&env, &lab.inputs(), &req).unwrap();
            });
        }
    });
    let vlans: std::collections::BTreeSet<u16> = lab
        .store
        .allocations()
        .unwrap()
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(vlans.len(), 16, "distinct VLANs: {vlans:?}");
    let s = lab.snapshot();
    assert_eq!(s["leaf1"].vlans.len(), 16);
    for i in 0..16 {
        apply::down(&lab.env(&none), &j(&format!("c{i}")), false).unwrap();
    }
    assert_eq!(
        lab.snapshot(),
        baseline,
        "every switch back to the site's baseline"
    );
}

/// The IB lab topology: one switch, three nodes with GUIDs, partitions.conf with the admin's
/// file; `ib_extra` is more of the infiniband section, `tail` more of the file.
fn ib_topology(conf: &std::path::Path, reload: &str, ib_extra: &str, tail: &str) -> String {
    format!(
        r#"name: ib
ethernet: {{vlan_pool: "100-110"}}
infiniband:
  pkey_pool: "0x10-0x12"
  partitions_conf: {}
  reload: {{command: "{reload}"}}
  reload_window_ms: 10
{ib_extra}switches:
  - {{name: a1, driver: arista-eos, address: 192.0.2.1}}
nodes:
  - {{name: "n[1-3]", port: "a1:Ethernet[1-3]", ib_guids: ["0x100001", "0x100004", "0x100007"]}}
{tail}"#,
        conf.display()
    )
}

fn ib_conf(name: &str) -> PathBuf {
    let conf = scratch(&format!("{name}-conf")).join("partitions.conf");
    std::fs::write(&conf, ADMIN).unwrap();
    conf
}

fn ib_lab(name: &str, reload: &str) -> (Lab, PathBuf) {
    let conf = ib_conf(name);
    (
        Lab::new(name, Some(&ib_topology(&conf, reload, "", ""))),
        conf,
    )
}

const ADMIN: &str =
    "# admins\nDefault=0x7fff, ipoib : ALL=full;\nstorage=0x0010 : 0x10000a=full;\n";

#[test]
fn partitions_are_applied_and_removed_with_the_job() {
    let (lab, conf) = ib_lab("ib-roundtrip", "true");
    let none = Failpoints::default();
    lab.up(&none, "1", "n[1-2]").unwrap();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with(ADMIN), "admin bytes kept");
    assert!(
        text.contains(
            "jobnet_1=0x0011, ipoib :\n    0x0000000000100001=full,\n    0x0000000000100004=full;"
        ),
        "0x0010 is the admin's: {text}"
    );
    assert_eq!(
        lab.store.job(&j("1")).unwrap().unwrap().pkey,
        Some(PKey::new(0x11).unwrap())
    );
    assert_eq!(
        jobnet::ib::partitions::file::Generations::read(&conf).reloads,
        1
    );
    let journal = lab.store.journal(&j("1")).unwrap();
    assert!(journal
        .iter()
        .any(|r| r.device.name == "opensm" && r.status == JournalStatus::Done));
    lab.up(&none, "2", "n3").unwrap();
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("jobnet_2=0x0012"));
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    let after = std::fs::read_to_string(&conf).unwrap();
    assert!(!after.contains("jobnet_1") && after.contains("jobnet_2"));
    apply::down(&lab.env(&none), &j("2"), false).unwrap();
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        ADMIN,
        "byte for byte"
    );
    assert!(lab.store.allocations().unwrap().is_empty());
}

#[test]
fn a_failed_reload_rolls_everything_back() {
    let (lab, conf) = ib_lab("ib-reload-fails", "false");
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let e = lab.up(&none, "1", "n[1-2]").unwrap_err();
    assert!(matches!(e, ApplyError::RolledBack { .. }), "{e:?}");
    assert!(e.to_string().contains("opensm: `false` failed"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        ADMIN,
        "file restored"
    );
    assert_eq!(lab.snapshot(), baseline, "switches restored");
    assert!(
        lab.store.allocations().unwrap().is_empty(),
        "VLAN and PKey released"
    );
}

#[test]
fn an_invalid_admin_file_is_refused_before_anything_changes() {
    let (lab, conf) = ib_lab("ib-invalid", "true");
    let broken = "Default=0x7fff : ALL=full;\nstorage=0x10 : 0x10000a\n ;\n";
    std::fs::write(&conf, broken).unwrap();
    let baseline = lab.snapshot();
    let e = lab.up(&Failpoints::default(), "1", "n1").unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(
        e.to_string()
            .contains(":3:2: error: `;` is the first character"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), broken);
    assert_eq!(lab.snapshot(), baseline);
    assert!(
        lab.fabric.get("a1").unwrap().log.lock().unwrap().is_empty(),
        "no device contacted"
    );
}

#[test]
fn gateways_need_a_verified_profile_and_join_the_journal() {
    let (mut lab, conf) = ib_lab("ib-gateway", "true");
    let text = ib_topology(
        &conf,
        "true",
        "",
        "gateways:\n  - {name: gw1, driver: mellanox-gateway, address: 192.0.2.50, ethernet_port: a1:Ethernet48, ib_guid: \"0x20000a\"}\n",
    );
    lab.topology = topology::parse(&text, "gw.yaml", &lab.drivers)
        .unwrap()
        .topology;
    lab.graph = SwitchGraph::build(&lab.topology);
    lab.fabric
        .build(&lab.topology, &lab.drivers, SitePorts::Prepared);
    let baseline = lab.snapshot();
    let none = Failpoints::default();
    let req = |job: &str| JobRequest {
        job: JobId::parse(job).unwrap(),
        nodes: jobnet::base::hostlist::expand("n1").unwrap(),
        vlan: Choice::Auto,
        pkey: PKeyChoice::Default,
        gateway: Some("gw1".into()),
        origin: Default::default(),
    };
    let inputs = UpInputs {
        topology: &lab.topology,
        graph: &lab.graph,
        topology_path: "gw.yaml",
        partitions_conf: None,
    };
    // The shipped profile is a draft (verified: false): refused before anything is touched.
    let e = apply::up(&lab.env(&none), &inputs, &req("1")).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("is not verified against its vendor manual"),
        "{e}"
    );
    assert_eq!(lab.snapshot(), baseline);
    // A site's checked copy is used.
    let text = jobnet::drivers::BUILTIN
        .iter()
        .find(|(n, _)| *n == "mellanox-gateway")
        .unwrap()
        .1
        .replace("verified: false", "verified: true");
    lab.drivers
        .insert(jobnet::drivers::parse_profile(&text, "site/mellanox-gateway.yaml").unwrap());
    let r = apply::up(&lab.env(&none), &inputs, &req("2")).unwrap();
    assert!(r.devices.iter().any(|d| d.name == "gw1"));
    let s = lab.snapshot();
    assert_eq!(
        s["gw1"].proxy_arp.get(&100).map(String::as_str),
        Some("0x8011"),
        "proxy-arp binds VLAN 100 to PKey 0x0011 (full; 0x0010 is the admin's)"
    );
    assert!(
        lab.carries("a1", "Ethernet48", 100),
        "the VLAN reaches the gateway's port"
    );
    assert!(
        std::fs::read_to_string(&conf)
            .unwrap()
            .contains("0x000000000020000a=full"),
        "the gateway joins the partition"
    );
    apply::down(&lab.env(&none), &j("2"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
    // A failing gateway rolls the switches and the partition back.
    lab.fabric
        .with_faults("gw1", |f| f.reject_matching = Some("proxy-arp".into()));
    let e = apply::up(&lab.env(&none), &inputs, &req("3")).unwrap_err();
    assert!(matches!(e, ApplyError::RolledBack { .. }), "{e:?}");
    assert_eq!(lab.snapshot(), baseline);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), ADMIN);
}

#[test]
fn standby_sms_get_every_version_of_the_file() {
    let conf = ib_conf("ib-standby");
    let topo = ib_topology(
        &conf,
        "true",
        "  standby_sms:\n    - {name: sm2, address: 192.0.2.99, credentials: sm, partitions_conf: /etc/opensm/partitions.conf}\n",
        "",
    );
    let lab = Lab::new("ib-standby", Some(&topo));
    let none = Failpoints::default();
    let standby = || {
        lab.fabric
            .files
            .lock()
            .unwrap()
            .get(&("sm2".to_string(), "/etc/opensm/partitions.conf".to_string()))
            .cloned()
    };
    lab.up(&none, "1", "n1").unwrap();
    assert_eq!(
        standby().as_deref(),
        Some(std::fs::read_to_string(&conf).unwrap().as_str()),
        "the standby has the new file"
    );
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(standby().as_deref(), Some(ADMIN), "and the restored one");
    // A standby that cannot be reached: the job is rolled back (a failover would lose it).
    lab.fabric.unreachable.lock().unwrap().insert("sm2".into());
    let e = lab.up(&none, "2", "n1").unwrap_err();
    assert!(
        matches!(e, ApplyError::RolledBack { .. })
            || matches!(e, ApplyError::NeedsAttention { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("standby SM: cannot connect to sm2"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        ADMIN,
        "the primary's file is restored"
    );
    lab.fabric.unreachable.lock().unwrap().clear();
    // Up while reachable, then the standby goes away during down: needs attention until it is back.
    lab.up(&none, "3", "n1").unwrap();
    lab.fabric.unreachable.lock().unwrap().insert("sm2".into());
    let e = apply::down(&lab.env(&none), &j("3"), false).unwrap_err();
    assert_eq!(e.exit_code(), 5, "{e}");
    lab.fabric.unreachable.lock().unwrap().clear();
    apply::down(&lab.env(&none), &j("3"), false).unwrap();
    assert_eq!(standby().as_deref(), Some(ADMIN), "the standby catches up");
    assert!(lab.store.allocations().unwrap().is_empty());
}

#[test]
fn a_failed_verification_rolls_everything_back() {
    // The verify command never shows the PKey: as if OpenSM never applied it.
    let conf = ib_conf("ib-verify");
    let topo = ib_topology(
        &conf,
        "true",
        "  verify: {command: \"echo {guid} 0xffff\", timeout_ms: 300}\n",
        "",
    );
    let lab = Lab::new("ib-verify", Some(&topo));
    let baseline = lab.snapshot();
    let e = lab.up(&Failpoints::default(), "1", "n[1-2]").unwrap_err();
    assert!(matches!(e, ApplyError::RolledBack { .. }), "{e:?}");
    assert!(e.to_string().contains("PKey 0x8011 did not appear on port(s) 0x0000000000100001, 0x0000000000100004 within 300 ms"), "{e}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), ADMIN);
    assert_eq!(lab.snapshot(), baseline);
    assert!(lab.store.allocations().unwrap().is_empty());
}

// ---- Ports as the vendors ship them (issue: factory-default ports carry every VLAN) ----

/// Every port of `sw` named here: a trunk allowing ALL (the factory default of a trunk).
fn open_trunk() -> SimPort {
    SimPort {
        mode: jobnet::testkit::sim::SimMode::Trunk,
        access: 1,
        allowed: jobnet::drivers::read::Allowed::All,
    }
}

/// Configuration lines a switch received (reads and session lines left out).
fn changes(lab: &Lab, sw: &str) -> Vec<String> {
    let s = lab.fabric.get(sw).unwrap();
    let p = s.profile().clone();
    let log = s.log.lock().unwrap().clone();
    log.into_iter()
        .filter(|l| {
            !l.starts_with("show ")
                && !p.setup.contains(l)
                && !p.begin.contains(l)
                && !p.end.contains(l)
        })
        .collect()
}

#[test]
fn factory_default_node_ports_are_refused_with_the_vendors_fix() {
    let lab = Lab::with_ports("factory-refuse", None, SitePorts::FactoryNodePorts);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    // leaf3 (Cisco IOS) ships its ports in `dynamic auto`: not a trunk.
    let e = lab.up(&none, "1", "cn041").unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("leaf3: node port GigabitEthernet1/0/1 (node cn041) is in mode `dynamic auto`, not a trunk"), "{msg}");
    assert!(
        msg.contains("switchport mode trunk / switchport trunk allowed vlan none"),
        "{msg}"
    );
    // leaf1 (Arista): a trunk still allowing ALL.
    lab.fabric
        .get("leaf1")
        .unwrap()
        .set_port("Ethernet1", open_trunk());
    let baseline_open = lab.snapshot();
    let e = lab.up(&none, "2", "cn001").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("leaf1: node port Ethernet1 (node cn001) is a trunk that allows every VLAN (the factory default)"), "{msg}");
    assert!(
        msg.contains("the node would see every other job's VLAN"),
        "{msg}"
    );
    assert!(msg.contains("open_ports: restrict"), "{msg}");
    assert_eq!(lab.snapshot(), baseline_open, "nothing changed");
    for sw in ["leaf1", "leaf3"] {
        assert!(
            changes(&lab, sw).is_empty(),
            "{sw} got config lines: {:?}",
            changes(&lab, sw)
        );
    }
    assert!(lab.store.allocations().unwrap().is_empty());
    let _ = baseline;
}

/// The access lab's fabric with tagged node ports and `open_ports: restrict`.
fn restrict_topology() -> String {
    ACCESS.replace("node_port_mode: access", "open_ports: restrict")
}

#[test]
fn open_ports_restrict_makes_node_ports_explicit_and_the_last_job_gives_them_back() {
    let lab = Lab::new("restrict", Some(&restrict_topology()));
    let none = Failpoints::default();
    let a1 = lab.fabric.get("a1").unwrap();
    let a2 = lab.fabric.get("a2").unwrap();
    for (sw, port) in [
        (&a1, "Ethernet1"),
        (&a2, "GigabitEthernet1/0/1"),
        (&a1, "Ethernet48"),
        (&a2, "GigabitEthernet1/0/48"),
    ] {
        sw.set_port(port, open_trunk());
    }
    let baseline = lab.snapshot();
    let allowed = |sw: &jobnet::testkit::sim::SimSwitch, port: &str| {
        sw.state.lock().unwrap().port(sw.profile(), port).allowed
    };
    let list = |v: &[(u64, u64)]| {
        jobnet::drivers::read::Allowed::List(jobnet::base::types::RangeSet::from_ranges(v.to_vec()))
    };
    let a = lab.up(&none, "A", "n1,n3").unwrap();
    assert_eq!(a.vlan, Some(VlanId::new(100).unwrap()));
    assert_eq!(
        allowed(&a1, "Ethernet1"),
        list(&[(100, 100)]),
        "only the job's VLAN"
    );
    assert!(
        !lab.carries("a1", "Ethernet1", 999),
        "no other VLAN reaches the node"
    );
    assert_eq!(allowed(&a2, "GigabitEthernet1/0/1"), list(&[(100, 100)]));
    // The open inter-switch trunk already carries the VLAN: nothing is sent there, and it says so.
    assert_eq!(
        allowed(&a1, "Ethernet48"),
        jobnet::drivers::read::Allowed::All
    );
    assert!(
        a.warnings
            .iter()
            .any(|w| w
                .contains("a1: port Ethernet48 (to a2:GigabitEthernet1/0/48) allows every VLAN")),
        "{:?}",
        a.warnings
    );
    // A second job on the same node port (tagged mode shares ports).
    lab.up(&none, "B", "n1,n4").unwrap();
    assert_eq!(allowed(&a1, "Ethernet1"), list(&[(100, 101)]));
    // The first job leaves: the port keeps B's VLAN and stays restricted.
    apply::down(&lab.env(&none), &j("A"), false).unwrap();
    assert_eq!(
        allowed(&a1, "Ethernet1"),
        list(&[(101, 101)]),
        "B keeps its VLAN, nothing else opens"
    );
    assert_eq!(
        allowed(&a2, "GigabitEthernet1/0/1"),
        jobnet::drivers::read::Allowed::All,
        "A's other port is given back at once"
    );
    // The last job leaves: every VLAN again, byte for byte the site's configuration.
    apply::down(&lab.env(&none), &j("B"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
    assert_eq!(
        lab.store.restriction("a1", "Ethernet1").unwrap(),
        None,
        "no record left"
    );
    // A failure after restricting rolls the restriction back too.
    lab.fabric
        .with_faults("a2", |f| f.reject_matching = Some("name jobnet".into()));
    let e = lab.up(&none, "C", "n1,n3").unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert_eq!(lab.snapshot(), baseline);
}

#[test]
fn an_answer_that_cannot_be_read_fails_the_device_before_any_change() {
    let lab = Lab::new("garbled", Some(ACCESS));
    let none = Failpoints::default();
    lab.fabric
        .get("a1")
        .unwrap()
        .set_port("Ethernet1", SimPort::access(5));
    let baseline = lab.snapshot();
    // The port read answers empty, as a confused CLI might.
    lab.fabric.with_faults("a1", |f| {
        f.garble_matching = Some(("Ethernet1 switchport".into(), String::new()))
    });
    let e = lab.up(&none, "1", "n1,n3").unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("a1: cannot understand the answer to `show interfaces Ethernet1 switchport` (expected a line matching `(?m)^Name: `"), "{msg}");
    assert!(msg.contains("it answered: (nothing)"), "{msg}");
    assert_eq!(lab.snapshot(), baseline, "VLAN 5 is untouched");
    assert!(changes(&lab, "a1").is_empty() && changes(&lab, "a2").is_empty());
    // An answer of another shape is shown.
    lab.fabric.with_faults("a1", |f| {
        f.garble_matching = Some(("show vlan".into(), "Unknown command".into()))
    });
    let e = lab.up(&none, "2", "n1,n3").unwrap_err().to_string();
    assert!(
        e.contains("cannot understand the answer to `show vlan`")
            && e.contains("it answered: `Unknown command`"),
        "{e}"
    );
    assert_eq!(lab.snapshot(), baseline);
}

#[test]
fn a_refused_end_does_not_turn_a_clean_rollback_into_a_failure() {
    let lab = Lab::new("refused-end", None);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    for sw in ["leaf1", "leaf2", "leaf3", "spine2"] {
        lab.fabric.with_faults(sw, |f| f.refuse_end = true);
    }
    // Up works (leaving configuration mode is not a change) ...
    lab.up(&none, "1", NODES).unwrap();
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
    // ... and a failure is rolled back cleanly: exit 4, not 5.
    let fp = Failpoints::parse("intent:5:error").unwrap();
    let e = lab.up(&fp, "2", NODES).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert_eq!(lab.snapshot(), baseline);
}

#[test]
fn an_undo_that_times_out_goes_on_over_a_fresh_session() {
    let lab = Lab::new("undo-timeout", None);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    lab.up(&none, "1", NODES).unwrap();
    // The next session to leaf1 never answers its 5th line; the undo must not keep typing into it.
    lab.fabric.with_faults("leaf1", |f| {
        f.hang_at_line = Some(5);
        f.next_session_only = true;
    });
    let d = apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(d.result, DownResult::Down);
    assert_eq!(lab.snapshot(), baseline);
    let journal = lab.store.journal(&j("1")).unwrap();
    assert!(
        journal.iter().all(|r| r.status == JournalStatus::Undone),
        "{journal:?}"
    );
}

#[test]
fn down_force_releases_what_cannot_be_undone_and_records_it() {
    let lab = Lab::new("force", None);
    let none = Failpoints::default();
    lab.up(&none, "1", NODES).unwrap();
    // leaf3 is gone for good (replaced, never coming back).
    lab.fabric.with_faults("leaf3", |f| f.refuse_login = true);
    let e = apply::down(&lab.env(&none), &j("1"), false).unwrap_err();
    assert_eq!(e.exit_code(), 5);
    assert_eq!(
        lab.store.job(&j("1")).unwrap().unwrap().state,
        JobState::FailedRollback
    );
    let d = apply::down(&lab.env(&none), &j("1"), true).unwrap();
    assert_eq!(d.result, DownResult::Down);
    assert!(
        !d.abandoned.is_empty() && d.abandoned.iter().all(|a| a.starts_with("leaf3 (")),
        "{:?}",
        d.abandoned
    );
    assert!(
        lab.store.allocations().unwrap().is_empty(),
        "the VLAN is released"
    );
    let abandoned = lab.store.abandoned().unwrap();
    assert_eq!(abandoned.len(), d.abandoned.len());
    assert!(abandoned
        .iter()
        .all(|a| a.job == "1" && a.device == "leaf3" && a.reason.contains("down --force")));
    assert!(
        abandoned
            .iter()
            .any(|a| a.undo.contains(&"no vlan 1000".to_string())),
        "{abandoned:?}"
    );
    // The other switches were cleaned up.
    let s = lab.snapshot();
    assert!(s["leaf1"].vlans.is_empty() && s["spine2"].vlans.is_empty());
    // A later job may reuse the id; the audit record stays.
    lab.fabric.with_faults("leaf3", |f| f.refuse_login = false);
    lab.up(&none, "1", "cn001").unwrap();
    assert_eq!(lab.store.abandoned().unwrap().len(), abandoned.len());
}

#[test]
fn up_again_with_another_vlan_or_pkey_is_refused_with_the_facts() {
    let lab = Lab::new("again-other-vlan", None);
    let none = Failpoints::default();
    lab.up(&none, "1", "cn001").unwrap();
    let req = request(
        "1",
        "cn001",
        Choice::Fixed(VlanId::new(3000).unwrap()),
        PKeyChoice::None,
    );
    let inputs = lab.inputs();
    let e = apply::up(&lab.env(&none), &inputs, &req).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("job 1 is already up with VLAN 1000 on these nodes; the job's request asks for VLAN 3000: run `jobnet down --job 1` first, or ask for what it has"), "{e}");
    let same = JobRequest {
        vlan: Choice::Fixed(VlanId::new(1000).unwrap()),
        ..req
    };
    assert!(
        apply::up(&lab.env(&none), &inputs, &same)
            .unwrap()
            .unchanged
    );
}

#[test]
fn a_signal_stops_up_and_unwinds_what_was_applied() {
    let lab = Lab::new("signal", None);
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let interrupt = Interrupt::new();
    // The signal arrives while the 3rd operation is being journaled.
    lab.fabric
        .with_faults("spine2", |f| f.command_latency = Duration::from_millis(30));
    let env = Env {
        interrupt: &interrupt,
        ..lab.env(&none)
    };
    let req = request("1", NODES, Choice::Auto, PKeyChoice::None);
    let inputs = lab.inputs();
    let e = std::thread::scope(|s| {
        let h = s.spawn(|| apply::up(&env, &inputs, &req));
        while lab.store.journal(&j("1")).map(|j| j.len()).unwrap_or(0) < 3 {
            std::thread::sleep(Duration::from_millis(2));
        }
        interrupt.raise(libc_sigterm());
        h.join().unwrap()
    })
    .unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert!(e.to_string().contains("interrupted by SIGTERM"), "{e}");
    assert_eq!(lab.snapshot(), baseline);
    assert_eq!(
        lab.store.job(&j("1")).unwrap().unwrap().state,
        JobState::Down
    );
    assert!(lab.store.allocations().unwrap().is_empty());
}

fn libc_sigterm() -> i32 {
    15
}

/// The dry run is the plan `up` carries out: same VLAN and PKey, the same lines on every device
/// (as journaled), the same new partitions.conf.
#[test]
fn the_dry_run_is_what_up_applies() {
    let (lab, conf) = ib_lab("dry-run", "true");
    let none = Failpoints::default();
    lab.up(&none, "first", "n1").unwrap();
    let req = request("second", "n[2-3]", Choice::Auto, PKeyChoice::Default);
    let inputs = lab.inputs();
    let plan = apply::dry_run(Some(&lab.store), &lab.drivers, &inputs, &req).unwrap();
    assert_eq!(
        plan.vlan,
        Some(VlanId::new(101).unwrap()),
        "the running job's VLAN is taken"
    );
    let planned_conf = plan.infiniband.as_ref().unwrap().partitions_conf.clone();
    let r = apply::up(&lab.env(&none), &inputs, &req).unwrap();
    assert_eq!((r.vlan, r.pkey), (plan.vlan, plan.pkey));
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        planned_conf,
        "the file up wrote"
    );
    let journal = lab.store.journal(&j("second")).unwrap();
    for d in &plan.ethernet.devices {
        let profile = lab.drivers.get(&d.driver).unwrap();
        let name = jobnet::plan::vlan_name(&plan.job, profile);
        let planned: Vec<String> = d
            .ops
            .iter()
            .flat_map(|op| jobnet::plan::render_op(profile, &name, op).0)
            .collect();
        let applied: Vec<String> = journal
            .iter()
            .filter(|j| j.device.name == d.name)
            .flat_map(|j| j.apply.clone())
            .collect();
        assert_eq!(applied, planned, "device {}", d.name);
        // The plan's command list is those lines inside the profile's session lines.
        assert!(d
            .commands
            .windows(planned.len())
            .any(|w| w == planned.as_slice()));
    }
    assert!(journal.iter().any(|j| j.device.name == "opensm"));
}

// ---- InfiniBand-only fabrics and jobs ----

#[test]
fn infiniband_only_jobs_touch_no_switch() {
    let conf = ib_conf("ib-only");
    let topo = format!(
        "name: ib-only\ninfiniband:\n  pkey_pool: \"0x10-0x12\"\n  partitions_conf: {}\n  reload: {{command: \"true\"}}\n  reload_window_ms: 10\nnodes:\n  - {{name: \"n[1-3]\", ib_guids: [\"0x100001\", \"0x100004\", \"0x100007\"]}}\n",
        conf.display()
    );
    let lab = Lab::new("ib-only", Some(&topo));
    let none = Failpoints::default();
    let r = lab.up(&none, "1", "n[1-2]").unwrap();
    assert_eq!(r.vlan, None);
    assert_eq!(r.pkey.map(|k| k.get()), Some(0x11));
    assert_eq!(r.devices.len(), 1, "only the partition: {:?}", r.devices);
    assert!(r.devices[0].name.starts_with("opensm ("));
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("jobnet_1=0x0011"));
    let journal = lab.store.journal(&j("1")).unwrap();
    assert_eq!(journal.len(), 1);
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), ADMIN);
    // A failing reload rolls the partition back, as on a mixed fabric.
    let (lab2, conf2) = {
        let conf = ib_conf("ib-only-fails");
        let t = topo
            .replace(
                &ib_conf("ib-only").display().to_string(),
                &conf.display().to_string(),
            )
            .replace("command: \"true\"", "command: \"false\"");
        (Lab::new("ib-only-fails", Some(&t)), conf)
    };
    let e = lab2.up(&none, "2", "n1").unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert_eq!(std::fs::read_to_string(&conf2).unwrap(), ADMIN);
}

#[test]
fn a_job_can_ask_for_no_ethernet() {
    let (lab, conf) = ib_lab("vlan-none", "true");
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let req = request("1", "n[1-2]", Choice::None, PKeyChoice::Default);
    let inputs = lab.inputs();
    let r = apply::up(&lab.env(&none), &inputs, &req).unwrap();
    assert_eq!(r.vlan, None);
    assert_eq!(lab.snapshot(), baseline, "no switch touched");
    assert!(lab.fabric.get("a1").unwrap().log.lock().unwrap().is_empty());
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("jobnet_1="));
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), ADMIN);
    // Nothing at all is refused.
    let nothing = JobRequest {
        pkey: PKeyChoice::None,
        ..req
    };
    let e = apply::up(&lab.env(&none), &inputs, &nothing).unwrap_err();
    assert!(
        e.to_string().contains("nothing to configure for job 1"),
        "{e}"
    );
}

// ---- partitions.conf files OpenSM reads otherwise than they look ----

#[test]
fn an_empty_or_comments_only_partitions_conf_keeps_the_default_partition() {
    for (name, text) in [("empty", ""), ("comments", "# site partitions: none yet\n")] {
        let (lab, conf) = ib_lab(&format!("conf-{name}"), "true");
        std::fs::write(&conf, text).unwrap();
        let r = lab.up(&Failpoints::default(), "1", "n1").unwrap();
        let after = std::fs::read_to_string(&conf).unwrap();
        assert!(
            after.starts_with(&format!(
                "{text}Default=0x7fff, ipoib : ALL=full;\n# BEGIN jobnet managed"
            )),
            "{name}: {after}"
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("has no partition statements")),
            "{:?}",
            r.warnings
        );
        apply::down(&lab.env(&Failpoints::default()), &j("1"), false).unwrap();
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            format!("{text}Default=0x7fff, ipoib : ALL=full;\n")
        );
    }
}

#[test]
fn a_partitions_conf_opensm_would_misread_is_never_touched_or_reloaded() {
    for (name, text) in [
        (
            "crlf",
            "Default=0x7fff, ipoib : ALL=full;\r\nstorage=0x0010 : 0x10000a=full;\r\n",
        ),
        (
            "bom",
            "\u{feff}# admins\nDefault=0x7fff, ipoib : ALL=full;\n",
        ),
        ("full-caps", "Default=0x7fff, ipoib : ALL=FULL;\n"),
    ] {
        let (lab, conf) = ib_lab(&format!("conf-{name}"), "true");
        std::fs::write(&conf, text).unwrap();
        let baseline = lab.snapshot();
        let e = lab.up(&Failpoints::default(), "1", "n1").unwrap_err();
        assert_eq!(e.exit_code(), 2, "{name}: {e}");
        assert!(
            e.to_string()
                .contains("is already invalid, so jobnet will not touch it"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            text,
            "{name}: untouched"
        );
        assert_eq!(
            jobnet::ib::partitions::file::Generations::read(&conf).reloads,
            0,
            "{name}: never reloaded"
        );
        assert_eq!(lab.snapshot(), baseline);
    }
}

/// 20 jobs at once on the same two open node ports of two switches under `open_ports:
/// restrict`: port locks are taken in one global order after the session slots, so every job
/// comes up (waiting its turn), none times out, and the last one out gives the ports back.
#[test]
fn twenty_concurrent_jobs_on_shared_open_ports_all_come_up() {
    let topo = restrict_topology().replace("\"100-110\"", "\"100-199\"");
    let lab = Lab::new("restrict-20", Some(&topo));
    let none = Failpoints::default();
    let a1 = lab.fabric.get("a1").unwrap();
    let a2 = lab.fabric.get("a2").unwrap();
    a1.set_port("Ethernet1", open_trunk());
    a2.set_port("GigabitEthernet1/0/1", open_trunk());
    let baseline = lab.snapshot();
    let path = lab.dir.join("state.db");
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (lab, path, none) = (&lab, &path, &none);
                s.spawn(move || {
                    let store = Store::open(path).unwrap();
                    let env = Env {
                        store: &store,
                        wait: Duration::from_secs(60),
                        ..lab.env(none)
                    };
                    let req = request(&format!("r{i}"), "n1,n3", Choice::Auto, PKeyChoice::None);
                    apply::up(&env, &lab.inputs(), &req)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of 20 failed: {failed:?}",
        failed.len()
    );
    for i in 0..20 {
        apply::down(&lab.env(&none), &j(&format!("r{i}")), false).unwrap();
    }
    assert_eq!(lab.snapshot(), baseline, "the ports are given back");
}

/// Runs `action` once, at the `n`-th journal intent.
struct At<F: Fn() + Sync> {
    n: usize,
    seen: std::sync::atomic::AtomicUsize,
    action: F,
}

impl<F: Fn() + Sync> jobnet::apply::faults::Faults for At<F> {
    fn hit(
        &self,
        point: jobnet::apply::faults::Point,
        _device: &str,
        _command: &str,
    ) -> Result<(), jobnet::drivers::transport::DeviceError> {
        if matches!(point, jobnet::apply::faults::Point::Intent)
            && self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.n
        {
            (self.action)();
        }
        Ok(())
    }
}

/// The state file deleted (with its -wal/-shm) in the middle of `up`: `up` notices that the file
/// it journals into is gone, undoes what it applied from memory and fails (exit 5) saying so;
/// the fabric is as before, and a later `down` does not say "nothing to do".
#[test]
fn a_state_file_deleted_during_up_is_noticed_and_everything_is_undone() {
    let lab = Lab::new("deleted-state", None);
    let baseline = lab.snapshot();
    // At every position: the first intent, one in the middle, the last ones.
    for n in 1..=8 {
        let dir = lab.dir.join(format!("own{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        let store = Store::open(&path).unwrap();
        let at = At {
            n,
            seen: Default::default(),
            action: || {
                for s in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{s}", path.display()));
                }
            },
        };
        let fp = Failpoints::default();
        let env = Env {
            store: &store,
            faults: &at,
            ..lab.env(&fp)
        };
        let req = request(&format!("gone{n}"), NODES, Choice::Auto, PKeyChoice::None);
        let e = apply::up(&env, &lab.inputs(), &req).unwrap_err();
        assert_eq!(e.exit_code(), 5, "at intent {n}: {e}");
        let text = e.to_string();
        assert!(text.contains("was deleted"), "at intent {n}: {text}");
        assert!(
            text.contains("nothing is left on the devices"),
            "at intent {n}: {text}"
        );
        assert!(text.contains("jobnet recover"), "{text}");
        assert_eq!(
            lab.snapshot(),
            baseline,
            "at intent {n}: every change undone from memory"
        );
    }
}

/// A full disk in the middle of `up` (a small tmpfs: as root, or in a user namespace): jobnet
/// stops sending, undoes from memory what it applied, and says "disk full" with `jobnet
/// recover`; a disk already full fails before any change, saying "disk full".
#[test]
fn a_full_disk_during_up_undoes_everything_and_says_disk_full() {
    if !common::root_or_namespace(
        "a_full_disk_during_up_undoes_everything_and_says_disk_full",
        "mounts a tmpfs",
    ) {
        return;
    }
    let lab = Lab::new("disk-full", None);
    let baseline = lab.snapshot();
    let mnt = lab.dir.join("tmpfs");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=2m",
            "jobnet-test",
            mnt.to_str().unwrap(),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let path = mnt.join("state.db");
    let fill = |name: &str| {
        use std::io::Write;
        let mut f = std::fs::File::create(mnt.join(name)).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    };
    let fp = Failpoints::default();
    {
        let store = Store::open(&path).unwrap();
        let at = At {
            n: 3,
            seen: Default::default(),
            action: || fill("filler"),
        };
        let env = Env {
            store: &store,
            faults: &at,
            ..lab.env(&fp)
        };
        let req = request("full", NODES, Choice::Auto, PKeyChoice::None);
        let e = apply::up(&env, &lab.inputs(), &req).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.exit_code(), 5, "{text}");
        assert!(text.contains("disk full"), "{text}");
        assert!(text.contains("jobnet recover"), "{text}");
        assert_eq!(lab.snapshot(), baseline, "every change undone from memory");
    }
    // Already full before `up`: refused before any change, in words.
    let store = Store::open(&path).unwrap();
    let env = Env {
        store: &store,
        ..lab.env(&fp)
    };
    let req = request("full2", NODES, Choice::Auto, PKeyChoice::None);
    let e = apply::up(&env, &lab.inputs(), &req).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("disk full"), "{text}");
    assert!(!text.contains("disk I/O error"), "{text}");
    assert_eq!(lab.snapshot(), baseline, "nothing changed");
}

/// A record left `applying` by a process that is gone (a killed prolog, a slurmctld that forgot
/// the job) does not block the next job on its nodes: `up` finishes it from its journal first,
/// and says so.
#[test]
fn a_record_whose_owner_died_is_undone_by_the_next_up_on_its_nodes() {
    let lab = Lab::new("orphan", Some(ACCESS));
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    lab.up(&none, "7", "n1,n3").unwrap();
    // Its process died mid-apply: the record says applying, owned by a pid that does not run.
    let conn = rusqlite::Connection::open(lab.dir.join("state.db")).unwrap();
    conn.execute(
        "UPDATE jobs SET state='applying', pid=999999999, pid_start=1 WHERE job='7'",
        [],
    )
    .unwrap();
    let r = lab.up(&none, "8", "n1").unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("job 7 was left applying") && w.contains("undone first")),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        lab.store.job(&j("7")).unwrap().unwrap().state,
        JobState::Down
    );
    apply::down(&lab.env(&none), &j("8"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline, "nothing of job 7 or 8 is left");
}

/// A device whose dialect reads every port with one command (`read.ports`: IOS, NX-OS, Open
/// vSwitch) is asked once for a job's twelve ports, not twelve times; one without it port by
/// port. Either way the job gets exactly its ports, and down gives the fabric back.
#[test]
fn ports_are_read_with_one_command_where_the_dialect_has_one() {
    const MANY: &str = r#"
name: many-ports
ethernet: {vlan_pool: "100-199", node_port_mode: tagged}
switches:
  - {name: ios, driver: cisco-ios, address: 192.0.2.1, credentials: x}
  - {name: nx, driver: cisco-nxos, address: 192.0.2.2, credentials: x}
  - {name: eos, driver: arista-eos, address: 192.0.2.3, credentials: x}
links:
  - {a: "ios:GigabitEthernet1/0/48", b: "nx:Ethernet1/48"}
  - {a: "nx:Ethernet1/47", b: "eos:Ethernet48"}
nodes:
  - {name: "a[01-12]", port: "ios:GigabitEthernet1/0/[1-12]"}
  - {name: "b[01-12]", port: "nx:Ethernet1/[1-12]"}
  - {name: "c[01-12]", port: "eos:Ethernet[1-12]"}
"#;
    let lab = Lab::new("bulk-reads", Some(MANY));
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let r = lab.up(&none, "1", "a[01-12],b[01-12],c[01-12]").unwrap();
    let vlan = r.vlan.unwrap().get();
    for (sw, port) in [
        ("ios", "GigabitEthernet1/0/7"),
        ("nx", "Ethernet1/12"),
        ("eos", "Ethernet1"),
        ("ios", "GigabitEthernet1/0/48"),
    ] {
        assert!(lab.carries(sw, port, vlan), "{sw} {port}");
    }
    let reads = |sw: &str| lab.fabric.get(sw).unwrap().reads();
    // IOS and NX-OS: one read of all ports (12 node ports and the inter-switch trunks).
    assert_eq!(reads("ios"), (0, 1), "ios: (single reads, bulk reads)");
    assert_eq!(reads("nx"), (0, 1), "nx");
    // Arista (no read.ports yet): port by port.
    assert_eq!(reads("eos"), (13, 0), "eos");
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
}

/// The state each port is decided on is its own block of the one answer: an IOS node port that
/// is an access port (read in the middle of the answer) refuses the tagged job, naming it; a
/// port the answer leaves out is read on its own.
#[test]
fn each_port_is_decided_on_its_own_block_of_the_answer() {
    const TWO: &str = r#"
name: bulk-blocks
ethernet: {vlan_pool: "100-199", node_port_mode: tagged}
switches:
  - {name: ios, driver: cisco-ios, address: 192.0.2.1, credentials: x}
  - {name: nx, driver: cisco-nxos, address: 192.0.2.2, credentials: x}
links:
  - {a: "ios:GigabitEthernet1/0/48", b: "nx:Ethernet1/48"}
nodes:
  - {name: "a[01-12]", port: "ios:GigabitEthernet1/0/[1-12]"}
  - {name: "b[01-12]", port: "nx:Ethernet1/[1-12]"}
"#;
    let lab = Lab::new("bulk-blocks", Some(TWO));
    let none = Failpoints::default();
    lab.fabric
        .get("ios")
        .unwrap()
        .set_port("GigabitEthernet1/0/5", SimPort::access(7));
    let baseline = lab.snapshot();
    let e = lab.up(&none, "1", "a[01-12]").unwrap_err().to_string();
    assert!(
        e.contains("GigabitEthernet1/0/5") && !e.contains("GigabitEthernet1/0/4 "),
        "{e}"
    );
    assert_eq!(lab.snapshot(), baseline);
    assert_eq!(lab.fabric.get("ios").unwrap().reads(), (0, 1));
    // Ethernet1/3 missing from NX-OS's answer: read on its own, the job goes on.
    lab.fabric
        .with_faults("nx", |f| f.hide_in_bulk = vec!["Ethernet1/3".into()]);
    let r = lab.up(&none, "2", "b[01-12]").unwrap();
    assert!(lab.carries("nx", "Ethernet1/3", r.vlan.unwrap().get()));
    assert_eq!(lab.fabric.get("nx").unwrap().reads(), (1, 1));
    apply::down(&lab.env(&none), &j("2"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
    // A device that refuses the whole-answer command (command authorization): port by port.
    lab.fabric.with_faults("nx", |f| {
        f.hide_in_bulk.clear();
        f.garble_matching = Some((
            "show interface switchport".into(),
            "% Permission denied for the role".into(),
        ));
    });
    let r = lab.up(&none, "3", "b[01-03]").unwrap();
    assert!(lab.carries("nx", "Ethernet1/2", r.vlan.unwrap().get()));
    // (the refused command never reached the simulator's reads: one bulk read, from job 2)
    assert_eq!(lab.fabric.get("nx").unwrap().reads(), (1 + 3, 1));
    apply::down(&lab.env(&none), &j("3"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
}

/// Open vSwitch takes a device's operations as one `ovs-vsctl -- … -- …` transaction (`batch:`):
/// one run per bridge; a transaction the device refuses applies none of its operations, and the
/// job is rolled back; a fault at any operation's intent or result leaves nothing behind.
#[test]
fn open_vswitch_operations_go_as_one_transaction_per_bridge() {
    const OVS: &str = r#"
name: ovs-batch
ethernet: {vlan_pool: "100-199", node_port_mode: tagged}
switches:
  - {name: br1, driver: openvswitch, address: local}
  - {name: br2, driver: openvswitch, address: local}
links:
  - {a: "br1:up12", b: "br2:up21"}
nodes:
  - {name: "a[1-6]", port: "br1:a[1-6]p"}
  - {name: "b[1-6]", port: "br2:b[1-6]p"}
"#;
    let lab = Lab::new("ovs-batch", Some(OVS));
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let r = lab.up(&none, "1", "a[1-6],b[1-6]").unwrap();
    let vlan = r.vlan.unwrap().get();
    assert!(lab.carries("br1", "a4p", vlan) && lab.carries("br2", "up21", vlan));
    let changes = |sw: &str| -> Vec<String> {
        lab.fabric
            .get(sw)
            .unwrap()
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("ovs-vsctl -- ") || l.starts_with("ovs-vsctl add"))
            .cloned()
            .collect()
    };
    let br1 = changes("br1");
    assert_eq!(br1.len(), 1, "one run for br1's 7 operations: {br1:?}");
    assert_eq!(br1[0].matches(" -- ").count(), 7, "{}", br1[0]);
    let total: usize = r.devices.iter().map(|d| d.operations).sum();
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
    // br2 refuses one of its operations: none of br2's applies, br1's are undone.
    lab.fabric
        .with_faults("br2", |f| f.reject_matching = Some("b3p".into()));
    let e = lab.up(&none, "2", "a[1-6],b[1-6]").unwrap_err();
    assert!(matches!(e, ApplyError::RolledBack { .. }), "{e:?}");
    assert!(e.to_string().contains("br2 refused `ovs-vsctl -- "), "{e}");
    assert_eq!(lab.snapshot(), baseline);
    lab.fabric.with_faults("br2", |f| f.reject_matching = None);
    // A fault at every operation's intent and result.
    for k in 1..=total {
        for point in ["intent", "done"] {
            let fp = Failpoints::parse(&format!("{point}:{k}:error")).unwrap();
            let job = format!("o{point}{k}");
            assert!(
                matches!(
                    lab.up(&fp, &job, "a[1-6],b[1-6]"),
                    Err(ApplyError::RolledBack { .. })
                ),
                "{point}:{k}"
            );
            assert_eq!(
                lab.snapshot(),
                baseline,
                "fault {point}:{k} left changes behind"
            );
            assert!(lab.store.allocations().unwrap().is_empty(), "{point}:{k}");
        }
    }
}

// ---- Interface ranges (issue 15): one ranged block per run of ports, journaled per port ----

/// An NX-OS leaf and an IOS leaf with 60 and 48 tagged node ports.
const RANGES: &str = r#"
name: ranges
ethernet: {vlan_pool: "100-199", node_port_mode: tagged}
switches:
  - {name: nx, driver: cisco-nxos, address: 192.0.2.1, credentials: x}
  - {name: ios, driver: cisco-ios, address: 192.0.2.2, credentials: x}
links:
  - {a: "nx:Ethernet2/1", b: "ios:GigabitEthernet1/1/1"}
nodes:
  - {name: "a[01-60]", port: "nx:Ethernet1/[1-60]"}
  - {name: "b[01-48]", port: "ios:GigabitEthernet1/0/[1-48]"}
"#;

/// Runs `check` once, before the first undo: the journal as `up` left it, the fabric as the
/// devices had it.
struct BeforeUndo<F: Fn() + Sync> {
    done: std::sync::Once,
    check: F,
}

impl<F: Fn() + Sync> jobnet::apply::faults::Faults for BeforeUndo<F> {
    fn hit(
        &self,
        point: jobnet::apply::faults::Point,
        _device: &str,
        _command: &str,
    ) -> Result<(), jobnet::drivers::transport::DeviceError> {
        if matches!(point, jobnet::apply::faults::Point::Undo) {
            self.done.call_once(&self.check);
        }
        Ok(())
    }
}

/// A 48-port job on one NX-OS leaf sends one ranged block (`interface Ethernet1/1-48`), each
/// port journaled with its own lines and undo; `down` undoes port by port and gives every port
/// back exactly as it was (one of them also carried a VLAN of the site's). On IOS the same with
/// `interface range GigabitEthernet1/0/1 - 48`, next to the inter-switch trunk on its own.
#[test]
fn a_48_port_job_goes_as_one_ranged_block_and_down_restores_each_port() {
    let lab = Lab::new("ranges", Some(RANGES));
    let none = Failpoints::default();
    lab.fabric
        .get("nx")
        .unwrap()
        .set_port("Ethernet1/10", SimPort::trunk(&[5]));
    lab.fabric
        .get("ios")
        .unwrap()
        .set_port("GigabitEthernet1/0/7", SimPort::trunk(&[7, 8]));
    let baseline = lab.snapshot();
    let v = lab.up(&none, "1", "a[01-48]").unwrap().vlan.unwrap().get();
    let name = "jobnet-1";
    assert_eq!(
        changes(&lab, "nx"),
        [
            format!("vlan {v}"),
            format!("name {name}"),
            "exit".into(),
            "interface Ethernet1/1-48".into(),
            format!("switchport trunk allowed vlan add {v}"),
            "exit".into(),
        ]
    );
    for n in 1..=60 {
        let port = format!("Ethernet1/{n}");
        assert_eq!(lab.carries("nx", &port, v), n <= 48, "{port}");
    }
    assert!(lab.carries("nx", "Ethernet1/10", 5));
    let journal = lab.store.journal(&j("1")).unwrap();
    assert_eq!(journal.len(), 49, "the VLAN and 48 ports, a row each");
    for (n, row) in journal.iter().skip(1).enumerate() {
        let port = format!("Ethernet1/{}", n + 1);
        assert_eq!(row.status, JournalStatus::Done, "{port}");
        assert_eq!(row.apply[0], format!("interface {port}"));
        assert_eq!(row.undo[0], format!("interface {port}"));
    }
    let log_len = lab.fabric.get("nx").unwrap().log.lock().unwrap().len();
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline, "every port as it was");
    let undo = lab.fabric.get("nx").unwrap().log.lock().unwrap()[log_len..].to_vec();
    let remove = format!("switchport trunk allowed vlan remove {v}");
    assert_eq!(
        undo.iter().filter(|l| **l == remove).count(),
        48,
        "undone port by port"
    );
    assert!(undo
        .windows(2)
        .any(|w| w[0] == "interface Ethernet1/10" && w[1] == remove));

    // Both leaves and the trunk between them: the trunk's line on its own (NX-OS writes one
    // run a line), the node ports as one block per switch.
    let v = lab
        .up(&none, "2", "a[01-04],b[01-48]")
        .unwrap()
        .vlan
        .unwrap()
        .get();
    let nx: Vec<String> = changes(&lab, "nx")
        .into_iter()
        .filter(|l| l.starts_with("interface "))
        .collect();
    assert_eq!(
        &nx[nx.len() - 2..],
        ["interface Ethernet2/1", "interface Ethernet1/1-4"]
    );
    let ios: Vec<String> = changes(&lab, "ios")
        .into_iter()
        .filter(|l| l.starts_with("interface "))
        .collect();
    assert_eq!(
        ios,
        [
            "interface GigabitEthernet1/1/1",
            "interface range GigabitEthernet1/0/1 - 48"
        ]
    );
    assert!(lab.carries("ios", "GigabitEthernet1/0/48", v));
    assert!(lab.carries("ios", "GigabitEthernet1/0/7", 8));
    apply::down(&lab.env(&none), &j("2"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
}

/// Ethernet1/20 refuses the job's line in the middle of the ranged block `interface
/// Ethernet1/1-48` (the switch configured Ethernet1/1-19 and stopped there): `up` sends each
/// port again on its own, and the journal says what the device has — 1-19 done, 20 failed
/// with the device's answer to its own line, 21-48 failed as not confirmed — before the
/// rollback leaves nothing. A connection lost on the ranged line leaves every port of the block
/// failed (unknown), and nothing either.
#[test]
fn a_fault_in_the_middle_of_a_range_is_journaled_truthfully_and_rolled_back() {
    let lab = Lab::new("range-faults", Some(RANGES));
    let baseline = lab.snapshot();
    lab.fabric
        .with_faults("nx", |f| f.refuse_ports = vec!["Ethernet1/20".into()]);
    let job = j("7");
    let checked = std::sync::atomic::AtomicBool::new(false);
    let truth = || {
        let rows = lab.store.journal(&job).unwrap();
        let vlan = rows
            .iter()
            .find_map(|r| match &r.op {
                jobnet::state::JournalOp::Device(jobnet::plan::Op::CreateVlan { vlan, .. }) => {
                    Some(vlan.get())
                }
                _ => None,
            })
            .unwrap();
        for r in rows.iter().skip(1) {
            let jobnet::state::JournalOp::Device(op) = &r.op else {
                panic!("{r:?}")
            };
            let port = op.port().unwrap();
            let n: usize = port.trim_start_matches("Ethernet1/").parse().unwrap();
            // Done exactly where the device has it.
            assert_eq!(
                r.status == JournalStatus::Done,
                lab.carries("nx", port, vlan),
                "{port}: {:?} {}",
                r.status,
                r.message
            );
            match n {
                1..=19 => {
                    assert_eq!(r.status, JournalStatus::Done, "{port}");
                    assert!(r.message.contains("sent on its own"), "{}", r.message);
                }
                20 => {
                    assert_eq!(r.status, JournalStatus::Failed);
                    assert!(
                        r.message.contains(&format!(
                            "refused `switchport trunk allowed vlan add {vlan}`"
                        )),
                        "{}",
                        r.message
                    );
                }
                _ => {
                    assert_eq!(r.status, JournalStatus::Failed, "{port}");
                    assert!(
                        r.message.starts_with("not confirmed")
                            && r.message.contains("then Ethernet1/20 on its own"),
                        "{}",
                        r.message
                    );
                }
            }
        }
        checked.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let faults = BeforeUndo {
        done: std::sync::Once::new(),
        check: truth,
    };
    let fp = Failpoints::default();
    let env = Env {
        faults: &faults,
        ..lab.env(&fp)
    };
    let req = request("7", "a[01-48]", Choice::Auto, PKeyChoice::None);
    let e = apply::up(&env, &lab.inputs(), &req).unwrap_err();
    assert!(matches!(e, ApplyError::RolledBack { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("nx refused `switchport trunk allowed vlan add"),
        "{e}"
    );
    assert!(checked.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(lab.snapshot(), baseline, "nothing left");
    assert!(lab.store.allocations().unwrap().is_empty());

    // The connection lost when the ranged block's body arrives.
    lab.fabric.with_faults("nx", |f| f.refuse_ports.clear());
    let none = Failpoints::default();
    lab.up(&none, "8", "a[01-48]").unwrap();
    let log = lab.fabric.get("nx").unwrap().log.lock().unwrap().clone();
    let session = log.iter().rposition(|l| l == "terminal length 0").unwrap();
    let body = log[session..]
        .iter()
        .position(|l| l.starts_with("switchport trunk allowed vlan add"))
        .unwrap();
    apply::down(&lab.env(&none), &j("8"), false).unwrap();
    lab.fabric.with_faults("nx", |f| {
        f.drop_at_line = Some(body + 1);
        f.next_session_only = true;
    });
    checked.store(false, std::sync::atomic::Ordering::SeqCst);
    let lost = BeforeUndo {
        done: std::sync::Once::new(),
        check: || {
            let rows = lab.store.journal(&j("9")).unwrap();
            assert_eq!(rows.len(), 49);
            assert!(rows[1..].iter().all(
                |r| r.status == JournalStatus::Failed && r.message.contains("connection lost")
            ));
            checked.store(true, std::sync::atomic::Ordering::SeqCst);
        },
    };
    let env = Env {
        faults: &lost,
        ..lab.env(&fp)
    };
    let req = request("9", "a[01-48]", Choice::Auto, PKeyChoice::None);
    let e = apply::up(&env, &lab.inputs(), &req).unwrap_err();
    assert!(e.to_string().contains("nx: connection lost"), "{e}");
    assert!(checked.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(lab.snapshot(), baseline);
}

/// A device that refuses the ranged line itself but takes every port on its own: the job comes
/// up (each port sent again on its own, journaled so), and the device's further blocks go port
/// by port.
#[test]
fn a_device_that_refuses_the_ranged_form_gets_every_port_on_its_own() {
    let lab = Lab::new("range-refused", Some(RANGES));
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    lab.fabric
        .with_faults("nx", |f| f.reject_matching = Some("Ethernet1/1-".into()));
    let v = lab.up(&none, "1", "a[01-60]").unwrap().vlan.unwrap().get();
    for n in 1..=60 {
        assert!(lab.carries("nx", &format!("Ethernet1/{n}"), v), "{n}");
    }
    let ranged: Vec<String> = changes(&lab, "nx")
        .into_iter()
        .filter(|l| l.starts_with("interface Ethernet1/") && l.contains('-'))
        .collect();
    assert_eq!(
        ranged,
        ["interface Ethernet1/1-48"],
        "tried once, then port by port"
    );
    let rows = lab.store.journal(&j("1")).unwrap();
    assert!(rows[1..49].iter().all(|r| r.status == JournalStatus::Done
        && r.message
            .contains("sent on its own after the device refused the ranged block")));
    assert!(rows[49..]
        .iter()
        .all(|r| r.status == JournalStatus::Done && r.message.is_empty()));
    apply::down(&lab.env(&none), &j("1"), false).unwrap();
    assert_eq!(lab.snapshot(), baseline);
}

/// A fault at every operation's intent and result of a job sent as ranged blocks (NX-OS and
/// IOS, with the trunk between them) leaves nothing behind.
#[test]
fn a_fault_at_every_position_of_ranged_blocks_rolls_everything_back() {
    let lab = Lab::new("range-every-position", Some(RANGES));
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let nodes = "a[01-06],b[01-06]";
    let total: usize = lab
        .up(&none, "0", nodes)
        .unwrap()
        .devices
        .iter()
        .map(|d| d.operations)
        .sum();
    apply::down(&lab.env(&none), &j("0"), false).unwrap();
    assert_eq!(total, 2 * (1 + 1 + 6), "VLAN, trunk and 6 ports on each");
    for k in 1..=total {
        for point in ["intent", "done"] {
            let fp = Failpoints::parse(&format!("{point}:{k}:error")).unwrap();
            let job = format!("r{point}{k}");
            assert!(
                matches!(lab.up(&fp, &job, nodes), Err(ApplyError::RolledBack { .. })),
                "{point}:{k}"
            );
            assert_eq!(
                lab.snapshot(),
                baseline,
                "fault {point}:{k} left changes behind"
            );
            assert!(lab.store.allocations().unwrap().is_empty(), "{point}:{k}");
        }
    }
}
