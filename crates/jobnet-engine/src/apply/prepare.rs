//! Phase 1 of `up`: per device, in parallel, open, read and decide — before anything changes.
//!
//! Every port the job touches is read first (mode, access VLAN, allowed list) and the operation
//! is decided from what the port really is:
//! - an access-mode node port must be an access port; its current VLAN is recorded for undo;
//! - a tagged node port or a link end must be a trunk; a trunk that already lists the job's VLAN
//!   means the VLAN is in use there (another VLAN is chosen); a trunk allowing every VLAN (the
//!   factory default of many platforms, where `add` changes nothing and `remove` lists every
//!   other VLAN) is refused with the vendor's fix — or, with `open_ports: restrict`, a node port
//!   is restricted to the job's VLAN and a link end is left as it is.
//!
//! An answer that does not have the profile's shape fails the device (the driver says which
//! command and shows the answer): nothing is ever assumed from an answer jobnet could not read.

use super::progress::Stage;
use super::{Env, Failure, PortProblem};
use crate::base::fsutil::LockError;
use crate::base::types::VlanId;
use crate::drivers::cli::{self, DeviceDriver};
use crate::drivers::profile::read::{Allowed, Mode, PortState};
use crate::drivers::transport::Target;
use crate::drivers::{OpKind, Profile};
use crate::plan::{self, Op, Plan};
use crate::state::{DeviceRecord, Held};
use crate::topology::{OpenPorts, Topology};
use std::collections::{BTreeMap, BTreeSet};

/// A device ready for phase 2: its driver open, its operations decided, its locks held.
pub(super) struct Prepared<'a> {
    pub record: DeviceRecord,
    pub ops: Vec<Op>,
    pub driver: Box<dyn DeviceDriver + 'a>,
    /// Its operations go to jobnetd's queue for the device ([`crate::drivers::merge`]): no
    /// slot and no session held (jobnetd bounds the device's sessions).
    pub merged: bool,
    /// The job's VLAN name in the device's dialect.
    pub vlan_name: String,
    pub _slot: Held,
    /// Ports this job may restrict, held until its operations on the device are journaled.
    pub _ports: Vec<Held>,
}

/// What one phase-1 worker found.
enum Prep<'a> {
    Ready(Box<Prepared<'a>>, Vec<String>),
    /// The job's VLAN exists on this device; with every VLAN the device has.
    Foreign(String, Vec<u16>),
}

pub(super) enum Phase1<'a> {
    /// Every device ready, with notes for the user (ports left as they were).
    Ready(Vec<Prepared<'a>>, Vec<String>),
    /// The VLAN exists on these devices and is not ours; with every VLAN each of them has.
    Foreign(Vec<(String, Vec<u16>)>),
    Failed(Vec<Failure>),
}

/// How to reach every switch and gateway of a topology, by name.
pub fn targets(t: &Topology) -> BTreeMap<String, Target> {
    let switches = t.switches.iter().map(|s| {
        Target::new(
            &s.name,
            &s.driver,
            &s.address,
            s.credentials.as_deref(),
            s.ssh_legacy,
        )
    });
    let gateways = t.gateways.iter().map(|g| {
        Target::new(
            &g.name,
            &g.driver,
            &g.address,
            g.credentials.as_deref(),
            g.ssh_legacy,
        )
    });
    switches
        .chain(gateways)
        .map(|x| (x.name.clone(), x))
        .collect()
}

/// The journal's record of a device.
pub(super) fn record_of(t: &Target) -> DeviceRecord {
    DeviceRecord {
        name: t.name.clone(),
        driver: t.driver.clone(),
        address: t.address.clone(),
        credentials: t.credentials.clone(),
        legacy: t.legacy,
    }
}

/// Whether every device of the plan can be reached as configured (its login is there), asked
/// of the connector without contacting any device.
pub(super) fn preflight(env: &Env, t: &Topology, plan: &Plan) -> Result<(), String> {
    let targets = targets(t);
    let mut problems = Vec::new();
    for d in plan_devices(plan) {
        if let Some(target) = targets.get(&d.name) {
            if let Err(why) = env.connector.preflight(target) {
                problems.push(format!(
                    "cannot reach {} ({}): {why}",
                    d.name, target.address
                ));
            }
        }
    }
    match problems.first() {
        None => Ok(()),
        Some(first) if problems.len() == 1 => Err(first.clone()),
        Some(first) => Err(format!(
            "{first} (and {} more device(s))",
            problems.len() - 1
        )),
    }
}

/// Every device of a plan: the subgraph's switches and the gateway, if any.
fn plan_devices(plan: &Plan) -> impl Iterator<Item = &plan::DevicePlan> {
    plan.ethernet.devices.iter().chain(plan.gateway.iter())
}

/// Takes every device's session slot in name order (a job never holds one device while waiting
/// for another out of order, so jobs cannot deadlock), waiting in short steps so a signal is
/// noticed while other jobs hold a device.
fn take_slots(
    env: &Env,
    plan: &Plan,
    merged: &BTreeSet<String>,
    deadline: std::time::Instant,
) -> Result<BTreeMap<String, Held>, Failure> {
    let mut names: Vec<&str> = plan_devices(plan).map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    let mut slots = BTreeMap::new();
    for name in names {
        if merged.contains(name) {
            // jobnetd bounds this device's sessions; the job holds none while it waits.
            slots.insert(name.to_string(), Held::new(()));
            continue;
        }
        let slot = loop {
            env.interrupt
                .check_before_change()
                .map_err(Failure::Interrupted)?;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let step = left.min(std::time::Duration::from_millis(200));
            match env.store.device_slot(name, env.sessions_per_device, step) {
                Ok(s) => break s,
                Err(LockError::Busy { .. } | LockError::SlotsBusy { .. }) if !left.is_zero() => {}
                // Waited in steps: the message gives the whole wait.
                Err(LockError::SlotsBusy {
                    device, slots, dir, ..
                }) => {
                    return Err(Failure::Lock {
                        device: name.into(),
                        source: LockError::SlotsBusy {
                            device,
                            slots,
                            secs: env.wait.as_secs(),
                            dir,
                        },
                    })
                }
                Err(source) => {
                    return Err(Failure::Lock {
                        device: name.into(),
                        source,
                    })
                }
            }
        };
        slots.insert(name.to_string(), slot);
    }
    Ok(slots)
}

/// Phase 1 on every device of the plan, in parallel.
pub(super) fn prepare<'a>(env: &'a Env, t: &Topology, plan: &Plan) -> Phase1<'a> {
    let deadline = std::time::Instant::now()
        + crate::base::deadline::Deadline::within_command(env.wait).left();
    let policy = t
        .ethernet
        .as_ref()
        .map_or(OpenPorts::Refuse, |e| e.open_ports);
    // Slots, then port locks, each in name order: one global order for every job, so two
    // jobs never each hold what the other waits for.
    let targets = targets(t);
    // Devices whose operations jobnetd sends merged with other jobs'.
    let merged: BTreeSet<String> = plan_devices(plan)
        .filter(
            |d| match (targets.get(&d.name), env.drivers.get(&d.driver)) {
                (Some(target), Some(profile)) => env.connector.merger(target, profile).is_some(),
                _ => false,
            },
        )
        .map(|d| d.name.clone())
        .collect();
    let mut slots = match take_slots(env, plan, &merged, deadline) {
        Ok(s) => s,
        Err(f) => return Phase1::Failed(vec![f]),
    };
    let mut ports = if policy == OpenPorts::Restrict {
        match take_ports(env, plan, deadline) {
            Ok(p) => p,
            Err(f) => return Phase1::Failed(vec![f]),
        }
    } else {
        BTreeMap::new()
    };
    env.progress.start(Stage::Read, plan_devices(plan).count());
    let work: Vec<_> = plan_devices(plan)
        .map(|d| {
            let slot = slots.remove(&d.name);
            let held = ports.remove(&d.name).unwrap_or_default();
            (d, slot, held, targets.get(&d.name).cloned())
        })
        .collect();
    let results: Vec<Result<Prep, Failure>> = super::workers::each(
        work,
        super::workers::MAX_WORKERS,
        |(d, slot, held, target)| {
            let r = match (slot, target) {
                (Some(slot), Some(target)) => {
                    let merged = merged.contains(&d.name);
                    prepare_device(env, plan, d, target, (slot, held), policy, merged)
                }
                _ => Err(Failure::Driver {
                    device: d.name.clone(),
                    why: "not in the topology the plan was made from".into(),
                }),
            };
            env.progress.device(Stage::Read, &d.name, r.is_ok());
            r
        },
        || Err(Failure::Panicked),
    );
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
        Phase1::Failed(failed)
    } else if !foreign.is_empty() {
        Phase1::Foreign(foreign)
    } else {
        Phase1::Ready(ready, notes)
    }
}

/// Up to how many switches a job reads a merged device's VLANs and ports at once.
const PARALLEL_READS_UP_TO: usize = 16;

fn prepare_device<'a>(
    env: &'a Env,
    plan: &Plan,
    d: &plan::DevicePlan,
    target: Target,
    (slot, ports): (Held, Vec<Held>),
    policy: OpenPorts,
    merged: bool,
) -> Result<Prep<'a>, Failure> {
    env.interrupt
        .check_before_change()
        .map_err(Failure::Interrupted)?;
    let profile = env.drivers.get(&d.driver).ok_or_else(|| Failure::Driver {
        device: d.name.clone(),
        why: format!(
            "driver profile `{}` is not among the loaded profiles (was the topology validated with another driver directory?)",
            d.driver
        ),
    })?;
    let record = record_of(&target);
    let vlan_name = plan::vlan_name(&plan.job, profile);
    // A device whose changes jobnetd sends is read through its read queue too: identical
    // reads of jobs that start together are answered once.
    let connector = match merged {
        true => env.connector.reads().unwrap_or(env.connector),
        false => env.connector,
    };
    let vlan = plan.vlan.expect("devices are planned only with a VLAN");
    // Every port the device's operations touch, read before any change — with one command
    // where the dialect has one.
    let touched: Vec<&str> = d.ops.iter().filter_map(Op::port).collect();
    let (mut driver, vlans, port_read) =
        if merged && plan.ethernet.devices.len() <= PARALLEL_READS_UP_TO {
            // Through jobnetd's read queue the two reads go at once, each on a session of its
            // own (a job then waits for one read's round trip, not two). A job over many devices
            // keeps its workers busy already: there the second session per device costs more
            // (logins, threads) than the round trip it saves.
            let scope = crate::base::deadline::current();
            std::thread::scope(|s| {
                let reading = s.spawn(|| {
                    crate::base::deadline::enter(scope, || {
                        let mut reader = cli::open(connector, target.clone(), profile, &vlan_name)?;
                        reader.read_ports(&touched)
                    })
                });
                let mut driver = cli::open(connector, target.clone(), profile, &vlan_name);
                let vlans = match &mut driver {
                    Ok(d) => d.read_vlans(),
                    Err(e) => Err(e.clone()),
                };
                let read = reading
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                driver.map(|d| (d, vlans, Some(read)))
            })?
        } else {
            let mut driver = cli::open(connector, target, profile, &vlan_name)?;
            let vlans = driver.read_vlans();
            (driver, vlans, None)
        };
    if let Some(existing) = vlans? {
        if existing.contains(&vlan.get()) {
            return Ok(Prep::Foreign(d.name.clone(), existing));
        }
    }
    let mut ops = Vec::with_capacity(d.ops.len());
    let mut notes = Vec::new();
    env.interrupt
        .check_before_change()
        .map_err(Failure::Interrupted)?;
    let states = match port_read {
        Some(read) => read?,
        None => driver.read_ports(&touched)?,
    };
    env.interrupt
        .check_before_change()
        .map_err(Failure::Interrupted)?;
    if states.len() != touched.len() {
        return Err(Failure::Driver {
            device: d.name.clone(),
            why: format!(
                "reading {} port(s) gave {} state(s)",
                touched.len(),
                states.len()
            ),
        });
    }
    let mut states = states.into_iter();
    for op in &d.ops {
        if op.port().is_none() {
            ops.push(op.clone());
            continue;
        }
        let state = states.next().expect("one state per port read");
        match decide(op, &state, policy, profile).map_err(|problem| Failure::Port {
            device: record.name.clone(),
            problem,
        })? {
            Decision::Keep(op) => ops.push(op),
            Decision::Skip(note) => notes.push(format!("{}: {note}", record.name)),
            Decision::InUse => return Ok(Prep::Foreign(d.name.clone(), vec![vlan.get()])),
        }
    }
    if merged {
        // Read; the changes go through jobnetd's own session: hold none meanwhile.
        driver.release();
    }
    Ok(Prep::Ready(
        Box::new(Prepared {
            record,
            ops,
            driver,
            merged,
            vlan_name,
            _slot: slot,
            _ports: ports,
        }),
        notes,
    ))
}

/// The port locks of every tagged port of every device, in (device, port) order, waiting in
/// short steps until `deadline` so a signal is noticed.
fn take_ports(
    env: &Env,
    plan: &Plan,
    deadline: std::time::Instant,
) -> Result<BTreeMap<String, Vec<Held>>, Failure> {
    let mut wanted: Vec<(&str, &str)> = plan_devices(plan)
        .flat_map(|d| {
            d.ops.iter().filter_map(move |op| match op {
                Op::TaggedAdd { port, .. } => Some((d.name.as_str(), port.as_str())),
                _ => None,
            })
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut held: BTreeMap<String, Vec<Held>> = BTreeMap::new();
    for (device, port) in wanted {
        let lock = loop {
            env.interrupt
                .check_before_change()
                .map_err(Failure::Interrupted)?;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let step = left.min(std::time::Duration::from_millis(200));
            match env.store.port_lock(device, port, step) {
                Ok(l) => break l,
                Err(LockError::Busy { .. }) if !left.is_zero() => {}
                Err(LockError::Busy { path, holder, .. }) => {
                    return Err(Failure::Lock {
                        device: device.into(),
                        source: LockError::Busy {
                            path,
                            holder,
                            secs: env.wait.as_secs(),
                        },
                    })
                }
                Err(source) => {
                    return Err(Failure::Lock {
                        device: device.into(),
                        source,
                    })
                }
            }
        };
        held.entry(device.to_string()).or_default().push(lock);
    }
    Ok(held)
}

enum Decision {
    Keep(Op),
    /// Nothing to send; the note says why.
    Skip(String),
    /// The port already allows the job's VLAN: it is in use on this device.
    InUse,
}

fn fix(profile: &Profile, advice: &str, port: &str) -> String {
    if advice.is_empty() {
        format!(
            "see the {} profile's advice in docs/drivers.md",
            profile.name
        )
    } else {
        advice.replace("{port}", port)
    }
}

/// What to do with `op` on a port that reads as `state`.
fn decide(
    op: &Op,
    state: &PortState,
    policy: OpenPorts,
    profile: &Profile,
) -> Result<Decision, PortProblem> {
    let a = &profile.advice;
    match op {
        Op::AccessSet {
            port, node, vlan, ..
        } => match &state.mode {
            Mode::Access => Ok(Decision::Keep(Op::AccessSet {
                port: port.clone(),
                vlan: *vlan,
                node: node.clone(),
                replaces: state.access_vlan,
            })),
            m => Err(PortProblem::NotAccess {
                port: port.clone(),
                node: node.clone(),
                mode: m.to_string(),
                fix: fix(profile, &a.not_access, port),
            }),
        },
        Op::TaggedAdd {
            port, node, vlan, ..
        }
        | Op::TrunkAdd {
            port,
            peer: node,
            vlan,
        } => {
            let tagged = matches!(op, Op::TaggedAdd { .. });
            let what = if tagged {
                format!("node port {port} (node {node})")
            } else {
                format!("port {port} (to {node})")
            };
            if state.mode != Mode::Trunk {
                return Err(PortProblem::NotTrunk {
                    what,
                    mode: state.mode.to_string(),
                    fix: fix(profile, &a.not_trunk, port),
                });
            }
            match state.allowed.as_ref().expect("read for trunks") {
                Allowed::List(l) if l.contains(vlan.get().into()) => Ok(Decision::InUse),
                Allowed::List(_) => Ok(Decision::Keep(op.clone())),
                Allowed::All => {
                    // With `open_ports: restrict`, a node port becomes exactly this job's.
                    let restricted = tagged.then(|| Op::TaggedAdd {
                        port: port.clone(),
                        vlan: *vlan,
                        node: node.clone(),
                        restricts: true,
                    });
                    open_trunk(port, *vlan, what, restricted, policy, profile)
                }
            }
        }
        Op::CreateVlan { .. } | Op::ProxyArpCreate { .. } => Ok(Decision::Keep(op.clone())),
    }
}

/// A trunk that allows every VLAN: refused, restricted (a node port: `restricted` is the
/// operation that does it) or left as it is (an inter-switch trunk).
fn open_trunk(
    port: &str,
    vlan: VlanId,
    what: String,
    restricted: Option<Op>,
    policy: OpenPorts,
    profile: &Profile,
) -> Result<Decision, PortProblem> {
    let tagged = restricted.is_some();
    let vlan = vlan.get();
    match (restricted, policy) {
        (_, OpenPorts::Refuse) => Err(PortProblem::OpenTrunk {
            what,
            vlan,
            tagged,
            fix: fix(profile, &profile.advice.open_trunk, port),
        }),
        (Some(op), OpenPorts::Restrict) if profile.has(OpKind::RestrictPort) => {
            Ok(Decision::Keep(op))
        }
        (Some(_), OpenPorts::Restrict) => Err(PortProblem::CannotRestrict {
            what,
            profile: profile.name.clone(),
            fix: fix(profile, &profile.advice.open_trunk, port),
        }),
        (None, OpenPorts::Restrict) => Ok(Decision::Skip(format!(
            "{what} allows every VLAN, so it already carries VLAN {vlan}: nothing sent there (open_ports: restrict)"
        ))),
    }
}
