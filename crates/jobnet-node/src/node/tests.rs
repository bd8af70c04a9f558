//! The node side against the simulated node ([`super::sim`]), for all three backends: each
//! change is recorded before it is made (a crash after any command leaves a record detach
//! undoes), every recorded change has its undo and teardown goes on past a failure, and the
//! interfaces the configuration names are never a VM's.

use super::config::{BackendKind, NodeConfig, NodeSettings};
use super::sim::{SimHost, World};
use super::*;
use std::path::{Path, PathBuf};

const BACKENDS: [(&str, BackendKind); 3] = [
    ("ovs", BackendKind::Ovs),
    ("bridge-vlan", BackendKind::BridgeVlan),
    ("bridge-classic", BackendKind::BridgeClassic),
];

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jobnet-node-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Node cn001's settings from a configuration that also names a management port and another
/// node's interfaces.
fn settings(dir: &Path, backend: &str) -> NodeSettings {
    NodeConfig::parse(
        &format!(
            "jobs_dir: {d}\nstate_dir: {d}/state\nbackend: {backend}\nbridge: br-vm\nuplink: up0\nmanagement: mgmt0\ninterface: \"tap{{job}}v{{slot}}\"\nnodes:\n  cn002: {{uplink: up2, management: [m2]}}\n",
            d = dir.display()
        ),
        "node.yaml",
    )
    .unwrap()
    .for_node("cn001")
    .unwrap()
}

/// A node as each backend finds it: the bridge, the uplink, a management port, two VM taps
/// (the second with something of its own to give back), another node's uplink, a namespace.
fn world(kind: BackendKind) -> World {
    let mut w = World::default();
    match kind {
        BackendKind::Ovs => {
            w.ovs_bridge("br-vm")
                .ovs_port("br-vm", "up0", None, &[4094])
                .ovs_port("br-vm", "mgmt0", Some(4000), &[])
                .link("tap1", "tap")
                .ovs_port("br-vm", "tap2", Some(4012), &[]);
        }
        BackendKind::BridgeVlan => {
            w.link("br-vm", "bridge")
                .link("up0", "veth")
                .link("mgmt0", "veth")
                .link("tap1", "tap")
                .link("tap2", "tap");
            // As the kernel leaves a new port: VLAN 1 (the bridge's default) PVID and egress
            // untagged; the uplink trunks 4094 too, tap2 has a tagged VLAN and an untagged range.
            for (port, vlans, untagged) in [
                ("up0", vec![1, 4094], vec![1]),
                ("tap1", vec![1], vec![1]),
                ("tap2", vec![1, 5, 7, 8, 9], vec![1, 7, 8, 9]),
            ] {
                let l = w.links.get_mut(port).unwrap();
                l.master = Some("br-vm".into());
                l.vlans = vlans.into_iter().collect();
                l.pvid = Some(1);
                l.untagged = untagged.into_iter().collect();
            }
        }
        BackendKind::BridgeClassic => {
            // Proxmox's layout: the uplink and tap2 on the node bridge, tap1 on none.
            w.link("up0", "veth")
                .link("mgmt0", "veth")
                .link("br-vm", "bridge")
                .link("tap1", "tap")
                .link("tap2", "tap");
            for port in ["up0", "tap2"] {
                w.links.get_mut(port).unwrap().master = Some("br-vm".into());
            }
        }
    }
    w.link("up2", "veth").namespace("/run/netns/c1");
    w
}

fn network(vlan: u16) -> JobNetwork {
    let vm = |n: u8| crate::jobs::addresses::Vm {
        name: format!("vs{n}"),
        node: "cn001".into(),
        ip: format!("10.1.0.{}", 10 + n).parse().unwrap(),
        mac: format!("02:00:0a:01:00:{:02x}", 10 + n),
    };
    JobNetwork {
        job: "7".into(),
        vlan: Some(vlan),
        pkey: None,
        nodes: vec!["cn001".into()],
        addresses: Some(crate::jobs::addresses::JobAddresses {
            job: "7".into(),
            subnet: "10.1.0.0/24".parse().unwrap(),
            gateway: Some("10.1.0.1".parse().unwrap()),
            dns: vec![],
            vms: vec![vm(1), vm(2)],
        }),
    }
}

fn veth() -> Veth {
    Veth {
        host: veth_name("c1/eth0"),
        netns: "/run/netns/c1".into(),
        ifname: "eth0".into(),
        vm: "vs1".into(),
        mac: "02:00:0a:01:00:0b".into(),
        ip: Some(("10.1.0.11".parse().unwrap(), 24)),
        gateway: Some("10.1.0.1".parse().unwrap()),
    }
}

fn job() -> JobId {
    JobId::parse("7").unwrap()
}

/// A lab: its directory, the world file (saved), the settings.
fn lab(name: &str, backend: &str, kind: BackendKind) -> (PathBuf, PathBuf, NodeSettings) {
    let dir = scratch(name);
    let wf = dir.join("world.json");
    world(kind).save(&wf).unwrap();
    let cfg = settings(&dir, backend);
    (dir, wf, cfg)
}

fn state(wf: &Path) -> World {
    World::load(wf).unwrap().state()
}

fn ports() -> Vec<String> {
    vec!["tap1".into(), "tap2".into()]
}

/// What the veth adds to a backend's attach: only Open vSwitch can put a veth on the bridge
/// without a tap of the launcher's.
fn with_veth(kind: BackendKind) -> Option<Veth> {
    (kind == BackendKind::Ovs).then(veth)
}

#[test]
fn every_change_kind_is_undone_and_the_node_is_as_before() {
    for (name, kind) in BACKENDS {
        let (_d, wf, cfg) = lab(&format!("inverse-{name}"), name, kind);
        let before = state(&wf);
        let mut h = SimHost::new(&wf);
        let mut s = Session::open(&cfg, &mut h).unwrap();
        let v = with_veth(kind);
        s.attach(&job(), &network(160), &ports(), v.as_ref())
            .unwrap();
        // Attach twice is harmless.
        s.attach(&job(), &network(160), &ports(), v.as_ref())
            .unwrap();
        let during = state(&wf);
        assert_ne!(during, before, "{name}: attach changed nothing");
        let recorded = s.records().load(&job()).unwrap().unwrap();
        let uplinks = recorded.changes.iter().filter(|c| c.is_uplink()).count();
        assert_eq!(uplinks, 1, "{name}: {recorded:?}");
        match kind {
            BackendKind::Ovs => {
                assert!(during.ports["up0"].trunks.contains(&160));
                assert_eq!(during.ports["tap1"].tag, Some(160));
                assert_eq!(during.ports["tap2"].tag, Some(160));
                assert_eq!(during.ports[&veth().host].tag, Some(160));
                assert_eq!(
                    during.netns["/run/netns/c1"]["eth0"].mac.as_deref(),
                    Some("02:00:0a:01:00:0b")
                );
            }
            BackendKind::BridgeVlan => {
                assert!(during.links["up0"].vlans.contains(&160));
                let tap2 = &during.links["tap2"];
                assert_eq!(
                    (&tap2.vlans, tap2.pvid, &tap2.untagged),
                    (&[160].into(), Some(160), &[160].into())
                );
            }
            BackendKind::BridgeClassic => {
                // Named after the configured bridge, as Proxmox names it.
                assert_eq!(during.links["br-vmv160"].kind, "bridge");
                assert_eq!(during.links["up0.160"].master.as_deref(), Some("br-vmv160"));
                for tap in ["tap1", "tap2"] {
                    assert_eq!(during.links[tap].master.as_deref(), Some("br-vmv160"));
                }
            }
        }
        let undone = s.detach(&job()).unwrap();
        assert_eq!(undone, recorded.changes.len(), "{name}");
        assert_eq!(
            state(&wf),
            before,
            "{name}: detach did not give back what was there"
        );
        assert!(s.records().load(&job()).unwrap().is_none(), "{name}");
        assert_eq!(s.detach(&job()).unwrap(), 0, "{name}: detach twice");
    }
}

#[test]
fn teardown_goes_on_past_failures_and_reports_every_one() {
    let (_d, wf, cfg) = lab("teardown", "ovs", BackendKind::Ovs);
    let before = state(&wf);
    let mut h = SimHost::new(&wf);
    let mut s = Session::open(&cfg, &mut h).unwrap();
    let v = veth();
    s.attach(&job(), &network(160), &ports(), Some(&v)).unwrap();
    let mut w = World::load(&wf).unwrap();
    // Two undos fail: tap1's (newer than the uplink's) and the uplink's (the oldest).
    w.fail = vec![
        "del-port br-vm tap1".into(),
        "remove port up0 trunks".into(),
    ];
    w.save(&wf).unwrap();
    let e = s.detach(&job()).unwrap_err();
    let NodeError::Teardown {
        undone, ref failed, ..
    } = e
    else {
        panic!("{e}")
    };
    assert_eq!((undone, failed.len()), (3, 2), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("2 of job 7's change(s) could not be undone (3 undone)"),
        "{text}"
    );
    assert!(text.contains("port tap1 of br-vm"), "{text}");
    assert!(
        text.contains("VLAN 160 in the trunks of the uplink up0"),
        "{text}"
    );
    assert!(
        text.contains("refused by the simulated node (del-port br-vm tap1)"),
        "{text}"
    );
    assert_eq!(e.exit_code(), 1);
    // Everything else was given back; what failed stays recorded, nothing more.
    let now = state(&wf);
    assert_eq!(now.ports["tap2"].tag, Some(4012));
    assert_eq!(now.ports["tap1"].tag, Some(160));
    assert!(!now.ports.contains_key(&v.host) && !now.links.contains_key(&v.host));
    let left = s.records().load(&job()).unwrap().unwrap();
    assert_eq!(left.changes.len(), 2, "{left:?}");
    assert!(left.changes[0].is_uplink());
    assert_eq!(change_port(&left.changes[1]), Some("tap1"));
    // Fixed: the next detach finishes.
    let mut w = World::load(&wf).unwrap();
    w.fail.clear();
    w.save(&wf).unwrap();
    assert_eq!(s.detach(&job()).unwrap(), 2);
    assert_eq!(state(&wf), before);
}

fn set_faults(wf: &Path, fail: &[&str]) {
    let mut w = World::load(wf).unwrap();
    w.fail = fail.iter().map(|f| f.to_string()).collect();
    w.save(wf).unwrap();
}

#[test]
fn a_change_that_fails_is_undone_and_not_left_recorded() {
    for (name, kind) in BACKENDS {
        let (_d, wf, cfg) = lab(&format!("fails-{name}"), name, kind);
        let before = state(&wf);
        let mut h = SimHost::new(&wf);
        let mut s = Session::open(&cfg, &mut h).unwrap();
        s.attach(&job(), &network(160), &["tap1".into()], None)
            .unwrap();
        // tap2's change fails (after its first command, for bridge-vlan); the uplink's and
        // tap1's, made before, stay recorded for detach.
        set_faults(
            &wf,
            &[match kind {
                BackendKind::Ovs => "set port tap2 tag=160",
                BackendKind::BridgeVlan => "tap2 vid 160 pvid",
                BackendKind::BridgeClassic => "set tap2 master br-vmv160",
            }],
        );
        let e = s.attach(&job(), &network(160), &ports(), None).unwrap_err();
        assert_eq!(e.exit_code(), 1, "{name}: {e}");
        assert!(matches!(e, NodeError::Command { .. }), "{name}: {e}");
        let r = s.records().load(&job()).unwrap().unwrap();
        assert_eq!(r.changes.len(), 2, "{name}: {r:?}");
        assert!(
            r.changes.iter().all(|c| change_port(c) != Some("tap2")),
            "{name}: a change that was undone stays recorded: {r:?}"
        );
        set_faults(&wf, &[]);
        s.detach(&job()).unwrap();
        assert_eq!(state(&wf), before, "{name}");
    }
    // The change fails and so does its undo: it stays recorded, both failures are named.
    let (_d, wf, cfg) = lab("fails-unwind", "ovs", BackendKind::Ovs);
    let before = state(&wf);
    set_faults(&wf, &["set port tap2"]);
    let mut h = SimHost::new(&wf);
    let mut s = Session::open(&cfg, &mut h).unwrap();
    let e = s.attach(&job(), &network(160), &ports(), None).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, NodeError::Unwind { .. })
            && text.contains("set port tap2 tag=160` failed")
            && text.contains(
                "undoing it failed too: `ovs-vsctl --timeout=10 set port tap2 tag=4012` failed"
            )
            && text.contains("jobnet node detach --job 7"),
        "{text}"
    );
    let r = s.records().load(&job()).unwrap().unwrap();
    assert_eq!(change_port(r.changes.last().unwrap()), Some("tap2"));
    set_faults(&wf, &[]);
    s.detach(&job()).unwrap();
    assert_eq!(state(&wf), before);
}

/// A host that dies (a panic standing for `kill -9`) right after its `after`-th command, once
/// that command has changed the node.
struct Crashing {
    inner: SimHost,
    after: usize,
    ran: usize,
}

impl Host for Crashing {
    fn run(&mut self, argv: &[&str]) -> Result<String, NodeError> {
        let out = self.inner.run(argv);
        self.ran += 1;
        if self.ran == self.after {
            std::panic::panic_any(Crash);
        }
        out
    }
    fn exists(&mut self, name: &str) -> bool {
        self.inner.exists(name)
    }
    fn master_of(&mut self, port: &str) -> Option<String> {
        self.inner.master_of(port)
    }
    fn vlan_filtering(&mut self, bridge: &str) -> Option<bool> {
        self.inner.vlan_filtering(bridge)
    }
    fn kind(&mut self, name: &str) -> Option<crate::node::host::LinkKind> {
        self.inner.kind(name)
    }
}

struct Crash;

/// Record, then change: whichever command the process dies after, what it changed is recorded,
/// and a detach (another process) gives the node back exactly what it had.
#[test]
fn a_crash_after_any_command_leaves_a_record_that_detach_undoes() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<Crash>().is_none() {
            hook(info);
        }
    }));
    for (name, kind) in BACKENDS {
        for after in 1.. {
            let (_d, wf, cfg) = lab(&format!("crash-{name}-{after}"), name, kind);
            let before = state(&wf);
            let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut h = Crashing {
                    inner: SimHost::new(&wf),
                    after,
                    ran: 0,
                };
                let mut s = Session::open(&cfg, &mut h).unwrap();
                s.attach(&job(), &network(160), &ports(), with_veth(kind).as_ref())
                    .unwrap();
            }))
            .is_err();
            let at_crash = state(&wf);
            let recorded = Records::for_node(&cfg).load(&job()).unwrap();
            if at_crash != before {
                assert!(
                    recorded.is_some(),
                    "{name}: the process died after command {after} and left a change no record names"
                );
            }
            // The kernel released the lock of the dead process; detach runs as another would.
            let mut h = SimHost::new(&wf);
            let mut s = Session::open(&cfg, &mut h).unwrap();
            s.detach(&job()).unwrap();
            assert_eq!(
                state(&wf),
                before,
                "{name}: after a crash after command {after}, detach left the node changed"
            );
            if !crashed {
                break;
            }
        }
    }
    let _ = std::panic::take_hook();
}

#[test]
fn the_uplink_the_bridge_and_management_ports_are_never_a_vm_interface() {
    for (name, kind) in BACKENDS {
        let (_d, wf, cfg) = lab(&format!("reserved-{name}"), name, kind);
        let before = World::load(&wf).unwrap();
        for (port, why) in [
            (
                "up0",
                "is node cn001's uplink (`uplink:` in the node configuration)",
            ),
            (
                "br-vm",
                "is node cn001's bridge (`bridge:` in the node configuration)",
            ),
            ("mgmt0", "is a management port of node cn001 (`management:`"),
            (
                "up2",
                "is named by `nodes.cn002.uplink` in the node configuration",
            ),
            ("m2", "is named by `nodes.cn002.management`"),
        ] {
            let mut h = SimHost::new(&wf);
            let mut s = Session::open(&cfg, &mut h).unwrap();
            let e = s
                .attach(&job(), &network(160), &["tap1".into(), port.into()], None)
                .unwrap_err();
            assert_eq!(e.exit_code(), 2, "{name} {port}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(&format!("interface {port} {why}"))
                    && text.contains("nothing was changed"),
                "{name} {port}: {text}"
            );
            // Refused before any command reached the node, nothing recorded.
            assert_eq!(World::load(&wf).unwrap(), before, "{name} {port}");
            assert!(s.records().load(&job()).unwrap().is_none());
        }
    }
}

#[test]
fn the_lock_is_waited_for_and_a_holder_past_the_wait_is_named() {
    let (_d, wf, cfg) = lab("lock", "ovs", BackendKind::Ovs);
    let mut h = SimHost::new(&wf);
    let held = Session::open(&cfg, &mut h).unwrap();
    let mut h2 = SimHost::new(&wf);
    let e = Session::open_within(&cfg, &mut h2, Duration::from_millis(50))
        .err()
        .unwrap();
    assert!(matches!(e, NodeError::Lock(_)), "{e}");
    assert!(
        e.to_string()
            .contains("node.lock: held by another jobnet process"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 1);
    drop(held);
    assert!(Session::open_within(&cfg, &mut h2, Duration::from_millis(50)).is_ok());
}

/// A VM port's VLANs come back exactly: its PVID and egress-untagged VLANs included (without
/// the PVID the VM's untagged frames would be dropped), a range as a range; the uplink loses
/// only the VLAN jobnet added, and one it carried before stays as it was.
#[test]
fn bridge_vlan_detach_gives_back_every_vlan_with_its_flags() {
    let (_d, wf, cfg) = lab("flags", "bridge-vlan", BackendKind::BridgeVlan);
    let before = state(&wf);
    let mut h = SimHost::new(&wf);
    let mut s = Session::open(&cfg, &mut h).unwrap();
    s.attach(&job(), &network(160), &ports(), None).unwrap();
    let r = s.records().load(&job()).unwrap().unwrap();
    let previous = r
        .changes
        .iter()
        .find_map(|c| match c {
            Change::BridgePort { port, previous, .. } if port == "tap2" => Some(previous.clone()),
            _ => None,
        })
        .unwrap();
    let pv = |vlan, end, pvid, untagged| linux::PortVlan {
        vlan,
        end,
        pvid,
        untagged,
    };
    assert_eq!(
        previous,
        [
            pv(1, None, true, true),
            pv(5, None, false, false),
            pv(7, Some(9), false, true)
        ]
    );
    s.detach(&job()).unwrap();
    let after = state(&wf);
    let tap2 = &after.links["tap2"];
    assert_eq!(tap2.pvid, Some(1), "tap2 lost its PVID");
    assert_eq!(tap2.untagged, [1, 7, 8, 9].into());
    assert_eq!(after.links["up0"].vlans, [1, 4094].into());
    assert_eq!(
        (after.links["up0"].pvid, &after.links["up0"].untagged),
        (Some(1), &[1].into())
    );
    assert_eq!(after, before);

    // The uplink carries the job's VLAN already (untagged, as someone set it): no change is
    // recorded for it, and detach leaves it, flags included.
    let mut w = World::load(&wf).unwrap();
    let up0 = w.links.get_mut("up0").unwrap();
    up0.vlans.insert(160);
    up0.untagged.insert(160);
    w.save(&wf).unwrap();
    let before = state(&wf);
    s.attach(&job(), &network(160), &ports(), None).unwrap();
    let r = s.records().load(&job()).unwrap().unwrap();
    assert!(!r.changes.iter().any(Change::is_uplink), "{r:?}");
    s.detach(&job()).unwrap();
    assert_eq!(state(&wf), before);
}

/// A record written before the flags were kept (`"previous": [1]`) is still read, and its
/// VLAN 1 is given back as the kernel gives it to a new port: PVID, egress untagged.
#[test]
fn an_old_record_of_plain_vlan_ids_is_undone() {
    let (dir, wf, cfg) = lab("old-record", "bridge-vlan", BackendKind::BridgeVlan);
    let mut w = World::load(&wf).unwrap();
    let tap1 = w.links.get_mut("tap1").unwrap();
    tap1.vlans = [160].into();
    tap1.pvid = Some(160);
    tap1.untagged = [160].into();
    w.links.get_mut("up0").unwrap().vlans.insert(160);
    w.save(&wf).unwrap();
    std::fs::create_dir_all(dir.join("state/cn001")).unwrap();
    std::fs::write(
        dir.join("state/cn001/7.json"),
        r#"{"job": "7", "vlan": 160, "changes": [
  {"kind": "bridge_uplink", "uplink": "up0", "vlan": 160},
  {"kind": "bridge_port", "port": "tap1", "vlan": 160, "previous": [1]}]}"#,
    )
    .unwrap();
    let mut h = SimHost::new(&wf);
    let mut s = Session::open(&cfg, &mut h).unwrap();
    assert_eq!(s.detach(&job()).unwrap(), 2);
    let now = state(&wf);
    let tap1 = &now.links["tap1"];
    assert_eq!(
        (&tap1.vlans, tap1.pvid, &tap1.untagged),
        (&[1].into(), Some(1), &[1].into())
    );
    assert_eq!(now.links["up0"].vlans, [1, 4094].into());
}

/// Node cn001 of the configuration `settings` writes, with another bridge name.
fn settings_bridge(dir: &Path, backend: &str, bridge: &str) -> NodeSettings {
    NodeConfig::parse(
        &format!(
            "jobs_dir: {d}\nstate_dir: {d}/state\nbackend: {backend}\nbridge: {bridge}\nuplink: up0\nmanagement: mgmt0\n",
            d = dir.display()
        ),
        "node.yaml",
    )
    .unwrap()
    .for_node("cn001")
    .unwrap()
}

/// The classic layout's bridge is `<bridge>vV`, as Proxmox names it; one past Linux's 15 bytes
/// is refused with its name before anything changes (exit 2), and the per-VLAN interfaces are
/// never a VM's.
#[test]
fn the_classic_vlan_bridge_is_named_after_the_node_bridge() {
    let (dir, wf, _) = lab(
        "classic-names",
        "bridge-classic",
        BackendKind::BridgeClassic,
    );
    let mut w = World::load(&wf).unwrap();
    w.link("vmbr0", "bridge");
    w.save(&wf).unwrap();
    let before = state(&wf);
    let cfg = settings_bridge(&dir, "bridge-classic", "vmbr0");
    let mut h = SimHost::new(&wf);
    let mut s = Session::open(&cfg, &mut h).unwrap();
    s.attach(&job(), &network(5), &["tap1".into()], None)
        .unwrap();
    let during = state(&wf);
    assert_eq!(during.links["tap1"].master.as_deref(), Some("vmbr0v5"));
    assert_eq!(during.links["up0.5"].master.as_deref(), Some("vmbr0v5"));
    for (port, why) in [
        ("up0.5", "a VLAN interface of node cn001's uplink"),
        ("up0.77", "a VLAN interface of node cn001's uplink"),
        ("vmbr0v5", "a VLAN's bridge of node cn001"),
    ] {
        let e = s
            .attach(&job(), &network(5), &[port.into()], None)
            .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{port}: {e}");
        assert!(
            e.to_string()
                .contains(&format!("interface {port} is {why}")),
            "{port}: {e}"
        );
    }
    assert_eq!(state(&wf), during);
    s.detach(&job()).unwrap();
    assert_eq!(state(&wf), before);
    drop(s);

    let cfg = settings_bridge(&dir, "bridge-classic", "vmbr-cluster1");
    let mut h = SimHost::new(&wf);
    let mut s = Session::open(&cfg, &mut h).unwrap();
    let e = s
        .attach(&job(), &network(160), &["tap1".into()], None)
        .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(
        e.to_string()
            .contains("the bridge for VLAN 160 would be `vmbr-cluster1v160`"),
        "{e}"
    );
    assert_eq!(World::load(&wf).unwrap().state(), before);
    assert!(s.records().load(&job()).unwrap().is_none());
}

/// A VLAN interface `UPLINK.V` that was there before attach (made for something else) is used
/// and stays at detach; only what jobnet made goes. A record of an older jobnet, which made
/// both, still deletes both.
#[test]
fn the_classic_layout_keeps_a_vlan_interface_it_did_not_make() {
    let (_d, wf, cfg) = lab("classic-kept", "bridge-classic", BackendKind::BridgeClassic);
    let mut w = World::load(&wf).unwrap();
    w.link("up0.160", "vlan");
    w.links.get_mut("up0.160").unwrap().up = true;
    w.save(&wf).unwrap();
    let before = state(&wf);
    let mut h = SimHost::new(&wf);
    let mut s = Session::open(&cfg, &mut h).unwrap();
    s.attach(&job(), &network(160), &ports(), None).unwrap();
    let r = s.records().load(&job()).unwrap().unwrap();
    assert!(
        r.changes.contains(&Change::ClassicVlanBridge {
            uplink: "up0".into(),
            bridge: "br-vmv160".into(),
            vlan: 160,
            made_vlan_interface: false,
        }),
        "{r:?}"
    );
    assert_eq!(
        state(&wf).links["up0.160"].master.as_deref(),
        Some("br-vmv160")
    );
    s.detach(&job()).unwrap();
    assert_eq!(state(&wf), before);
    let old: Change = serde_json::from_str(
        r#"{"kind": "classic_vlan_bridge", "uplink": "up0", "bridge": "br-vmv160", "vlan": 160}"#,
    )
    .unwrap();
    assert!(matches!(
        old,
        Change::ClassicVlanBridge {
            made_vlan_interface: true,
            ..
        }
    ));
}

/// bridge-vlan on a bridge that does not filter by VLAN would isolate nothing though every
/// command succeeds, and an uplink that is not the bridge's port would carry nothing: both are
/// refused before any change, naming the fix.
#[test]
fn bridge_vlan_refuses_a_bridge_without_vlan_filtering_and_a_foreign_uplink() {
    for (case, tweak, want) in [
        (
            "no-filtering",
            (|w: &mut World| w.links.get_mut("br-vm").unwrap().vlan_filtering = false)
                as fn(&mut World),
            "the bridge br-vm does not filter by VLAN (vlan_filtering 0)",
        ),
        (
            "foreign-uplink",
            |w: &mut World| w.links.get_mut("up0").unwrap().master = None,
            "the uplink up0 is on no bridge, not a port of the bridge br-vm",
        ),
        (
            "not-a-bridge",
            |w: &mut World| w.links.get_mut("br-vm").unwrap().kind = "veth".into(),
            "br-vm is not a Linux bridge",
        ),
    ] {
        let (_d, wf, cfg) = lab(case, "bridge-vlan", BackendKind::BridgeVlan);
        let mut w = World::load(&wf).unwrap();
        tweak(&mut w);
        w.save(&wf).unwrap();
        let before = state(&wf);
        let mut h = SimHost::new(&wf);
        let mut s = Session::open(&cfg, &mut h).unwrap();
        let e = s.attach(&job(), &network(160), &ports(), None).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{case}: {e}");
        assert!(
            e.to_string().contains(want) && e.to_string().contains("nothing was changed"),
            "{case}: {e}"
        );
        assert_eq!(state(&wf), before, "{case}");
        assert!(s.records().load(&job()).unwrap().is_none(), "{case}");
    }
}
