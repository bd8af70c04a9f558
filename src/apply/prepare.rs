//! Phase 1 of `up`: per device, in parallel, connect, read and decide — before anything changes.
//!
//! Every port the job touches is read first (mode, access VLAN, allowed list, as the profile's
//! `read.port` describes) and the operation is decided from what the port really is:
//! - an access-mode node port must be an access port; its current VLAN is recorded for undo;
//! - a tagged node port or a link end must be a trunk; a trunk that already lists the job's VLAN
//!   means the VLAN is in use there (another VLAN is chosen); a trunk allowing every VLAN (the
//!   factory default of many platforms, where `add` changes nothing and `remove` lists every
//!   other VLAN) is refused with the vendor's fix — or, with `open_ports: restrict`, a node port
//!   is restricted to the job's VLAN and a link end is left as it is.
//!
//! An answer that does not have the profile's shape fails the device, naming the command and
//! showing the answer: nothing is ever assumed from an answer jobnet could not read.

use super::Env;
use crate::drivers::read::{Allowed, Mode, PortState};
use crate::drivers::Profile;
use crate::plan::{self, Op, Plan};
use crate::topology::{OpenPorts, Topology};
use crate::transport::{DeviceError, DeviceLock, PortLock, Session, Target};
use std::collections::BTreeMap;

/// A device ready for phase 2: its session open, its operations decided, its locks held.
pub(super) struct Prepared {
    pub target: Target,
    pub profile: Profile,
    pub vlan_name: String,
    pub ops: Vec<Op>,
    pub session: Box<dyn Session>,
    pub _lock: DeviceLock,
    /// Ports this job may restrict, held until its operations on the device are journaled.
    pub _ports: Vec<PortLock>,
}

/// What one phase-1 worker found.
enum Prep {
    Ready(Box<Prepared>, Vec<String>),
    /// The job's VLAN exists on this device; with every VLAN the device has.
    Foreign(String, Vec<u16>),
}

pub(super) enum Phase1 {
    /// Every device ready, with notes for the user (ports left as they were).
    Ready(Vec<Prepared>, Vec<String>),
    /// The VLAN exists on these devices and is not ours; with every VLAN each of them has.
    Foreign(Vec<(String, Vec<u16>)>),
    Failed(String),
}

/// How to reach every switch and gateway of a topology, by name.
pub fn targets(t: &Topology) -> BTreeMap<String, Target> {
    let target =
        |name: &str, driver: &str, address: &str, credentials: &Option<String>, legacy| Target {
            name: name.to_string(),
            driver: driver.to_string(),
            address: address.to_string(),
            credentials: credentials.clone(),
            legacy,
        };
    let switches = t
        .switches
        .iter()
        .map(|s| target(&s.name, &s.driver, &s.address, &s.credentials, s.ssh_legacy));
    let gateways = t
        .gateways
        .iter()
        .map(|g| target(&g.name, &g.driver, &g.address, &g.credentials, g.ssh_legacy));
    switches
        .chain(gateways)
        .map(|x| (x.name.clone(), x))
        .collect()
}

/// Every device of a plan: the subgraph's switches and the gateway, if any.
fn plan_devices(plan: &Plan) -> impl Iterator<Item = &plan::DevicePlan> {
    plan.ethernet.devices.iter().chain(plan.gateway.iter())
}

/// Take every device's session slot in name order (a job never holds one device while waiting
/// for another out of order, so jobs cannot deadlock), then in parallel connect, read, decide.
pub(super) fn prepare(env: &Env, t: &Topology, plan: &Plan) -> Phase1 {
    let mut names: Vec<&str> = plan_devices(plan).map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    let mut locks = BTreeMap::new();
    let deadline = std::time::Instant::now() + env.wait;
    for name in &names {
        // Wait in short steps, so a signal is noticed while other jobs hold the device.
        let lock = loop {
            if let Err(e) = env.interrupt.check() {
                return Phase1::Failed(format!("{e} before any change"));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let step = left.min(std::time::Duration::from_millis(200));
            match DeviceLock::acquire(&env.lock_dir, name, env.sessions_per_device, step) {
                Ok(l) => break l,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut && !left.is_zero() => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Phase1::Failed(format!(
                        "{name}: all {} session slots stayed busy for {} s",
                        env.sessions_per_device,
                        env.wait.as_secs()
                    ))
                }
                Err(e) => return Phase1::Failed(format!("{name}: {e}")),
            }
        };
        locks.insert(name.to_string(), lock);
    }
    let targets = targets(t);
    let results: Vec<Result<Prep, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan_devices(plan)
            .map(|d| {
                let lock = locks.remove(&d.name).expect("locked above");
                let target = targets[&d.name].clone();
                s.spawn(move || prepare_device(env, t, plan, d, target, lock))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a device worker panicked".into()))
            })
            .collect()
    });
    let (mut ready, mut notes, mut foreign, mut failed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(Prep::Ready(p, mut n)) => {
                ready.push(*p);
                notes.append(&mut n);
            }
            Ok(Prep::Foreign(device, vlans)) => foreign.push((device, vlans)),
            Err(e) => failed.push(e),
        }
    }
    if !failed.is_empty() {
        Phase1::Failed(failed.join("; "))
    } else if !foreign.is_empty() {
        Phase1::Foreign(foreign)
    } else {
        Phase1::Ready(ready, notes)
    }
}

fn prepare_device(
    env: &Env,
    t: &Topology,
    plan: &Plan,
    d: &plan::DevicePlan,
    target: Target,
    lock: DeviceLock,
) -> Result<Prep, String> {
    env.interrupt
        .check()
        .map_err(|e| format!("{e} before any change"))?;
    let profile = env
        .drivers
        .get(&d.driver)
        .expect("validated driver")
        .clone();
    let mut session = env
        .connector
        .connect(&target, &profile)
        .map_err(|e| e.to_string())?;
    for l in &profile.setup {
        session.run(l).map_err(|e| e.to_string())?;
    }
    let vlan = plan.vlan.expect("devices are planned only with a VLAN");
    if let Some(r) = &profile.read_vlans {
        let answer = session.run(&r.command).map_err(|e| e.to_string())?;
        let existing = r
            .values(&answer)
            .map_err(|e| unreadable(&target.name, &r.command, e.expected, &answer))?;
        if existing.contains(&vlan.get()) {
            return Ok(Prep::Foreign(d.name.clone(), existing));
        }
    }
    let policy = t
        .ethernet
        .as_ref()
        .map_or(OpenPorts::Refuse, |e| e.open_ports);
    let mut ports = Vec::new();
    if policy == OpenPorts::Restrict {
        let mut tagged: Vec<&str> = d
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::TaggedAdd { port, .. } => Some(port.as_str()),
                _ => None,
            })
            .collect();
        tagged.sort_unstable();
        tagged.dedup();
        for port in tagged {
            ports.push(
                PortLock::acquire(&env.lock_dir, &target.name, port, env.wait)
                    .map_err(|e| format!("{}: {e}", target.name))?,
            );
        }
    }
    let mut ops = Vec::with_capacity(d.ops.len());
    let mut notes = Vec::new();
    for op in &d.ops {
        env.interrupt
            .check()
            .map_err(|e| format!("{e} before any change"))?;
        let Some(port) = port_of(op) else {
            ops.push(op.clone());
            continue;
        };
        let state = read_port(session.as_mut(), &profile, &target.name, port)?;
        match decide(op, &state, policy, &profile, &target.name)? {
            Decision::Keep(op) => ops.push(op),
            Decision::Skip(note) => notes.push(note),
            Decision::InUse => return Ok(Prep::Foreign(d.name.clone(), vec![vlan.get()])),
        }
    }
    Ok(Prep::Ready(
        Box::new(Prepared {
            vlan_name: plan::vlan_name(&plan.job, &profile),
            target,
            profile,
            ops,
            session,
            _lock: lock,
            _ports: ports,
        }),
        notes,
    ))
}

fn port_of(op: &Op) -> Option<&str> {
    match op {
        Op::TrunkAdd { port, .. } | Op::TaggedAdd { port, .. } | Op::AccessSet { port, .. } => {
            Some(port)
        }
        Op::CreateVlan { .. } | Op::ProxyArpCreate { .. } => None,
    }
}

fn unreadable(device: &str, command: &str, expected: String, answer: &str) -> String {
    DeviceError::Unreadable {
        device: device.into(),
        command: command.into(),
        expected,
        answer: answer.into(),
    }
    .to_string()
}

/// Reads one port with the profile's `read.port`.
pub(super) fn read_port(
    session: &mut dyn Session,
    profile: &Profile,
    device: &str,
    port: &str,
) -> Result<PortState, String> {
    let r = profile.read_port.as_ref().ok_or_else(|| {
        format!(
            "{device}: driver profile {} cannot read ports (no read.port)",
            profile.name
        )
    })?;
    let command = r.command_for(port);
    let answer = session.run(&command).map_err(|e| e.to_string())?;
    r.parse(&answer)
        .map_err(|e| unreadable(device, &command, e.expected, &answer))
}

enum Decision {
    Keep(Op),
    /// Nothing to send; the note says why.
    Skip(String),
    /// The port already allows the job's VLAN: it is in use on this device.
    InUse,
}

/// What to do with `op` on a port that reads as `state`.
fn decide(
    op: &Op,
    state: &PortState,
    policy: OpenPorts,
    profile: &Profile,
    device: &str,
) -> Result<Decision, String> {
    let fix = |advice: &str, port: &str| {
        if advice.is_empty() {
            format!(
                "see the {} profile's advice in docs/drivers.md",
                profile.name
            )
        } else {
            advice.replace("{port}", port)
        }
    };
    let a = &profile.advice;
    match op {
        Op::AccessSet { port, node, vlan, .. } => match &state.mode {
            Mode::Access => Ok(Decision::Keep(Op::AccessSet {
                port: port.clone(),
                vlan: *vlan,
                node: node.clone(),
                replaces: state.access_vlan,
            })),
            m => Err(format!(
                "{device}: port {port} (node {node}) is in mode `{m}`, not an access port: setting its access VLAN would not isolate the node; nothing was changed; configure it as an access port on {device}: {}",
                fix(&a.not_access, port)
            )),
        },
        Op::TaggedAdd { port, node, vlan, .. } | Op::TrunkAdd { port, peer: node, vlan } => {
            let tagged = matches!(op, Op::TaggedAdd { .. });
            let what = if tagged {
                format!("node port {port} (node {node})")
            } else {
                format!("port {port} (to {node})")
            };
            if state.mode != Mode::Trunk {
                return Err(format!(
                    "{device}: {what} is in mode `{}`, not a trunk: the job's VLAN would not reach it as configured; nothing was changed; make it a trunk that allows no VLAN yet on {device}: {}",
                    state.mode,
                    fix(&a.not_trunk, port)
                ));
            }
            match state.allowed.as_ref().expect("read for trunks") {
                Allowed::List(l) if l.contains(vlan.get().into()) => Ok(Decision::InUse),
                Allowed::List(_) => Ok(Decision::Keep(op.clone())),
                Allowed::All => match (tagged, policy) {
                    (_, OpenPorts::Refuse) => Err(format!(
                        "{device}: {what} is a trunk that allows every VLAN (the factory default): adding VLAN {vlan} would change nothing{} and removing it later would list every other VLAN explicitly; nothing was changed; give it an explicit list on {device} ({}), or set `open_ports: restrict` in the topology's ethernet section (docs/topology.md)",
                        if tagged { " — the node would see every other job's VLAN" } else { ", and the VLAN could loop over redundant links" },
                        fix(&a.open_trunk, port)
                    )),
                    (true, OpenPorts::Restrict) if profile.has("restrict_port") => {
                        Ok(Decision::Keep(Op::TaggedAdd {
                            port: port.clone(),
                            vlan: *vlan,
                            node: node.clone(),
                            restricts: true,
                        }))
                    }
                    (true, OpenPorts::Restrict) => Err(format!(
                        "{device}: {what} allows every VLAN and the {} profile has no `restrict_port` operation to make its list explicit; nothing was changed; configure it: {}",
                        profile.name,
                        fix(&a.open_trunk, port)
                    )),
                    (false, OpenPorts::Restrict) => Ok(Decision::Skip(format!(
                        "{device}: {what} allows every VLAN, so it already carries VLAN {vlan}: nothing sent there (open_ports: restrict)"
                    ))),
                },
            }
        }
        Op::CreateVlan { .. } | Op::ProxyArpCreate { .. } => Ok(Decision::Keep(op.clone())),
    }
}
