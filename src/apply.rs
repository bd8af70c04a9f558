//! Applying plans to devices and reversing them: `up`, `down` and `recover`.
//!
//! `up` allocates and plans in one state transaction, then works on every device of the plan in
//! parallel, one session per device:
//! 1. connect, send the profile's setup lines, read the device: a VLAN that already exists there
//!    and is not this job's is never used (the allocation is retried with another VLAN), and the
//!    access VLAN an `access_set` will replace is recorded so undo restores it;
//! 2. enter configuration mode and, per operation: journal the intent (with its exact apply and
//!    undo lines), send the lines, journal the result.
//!
//! If any device fails, every device is unwound: the journaled operations are undone newest
//! first, the VLAN is released and the job is marked down ("rolled back"). If undo fails too, the
//! job is marked `failed-rollback` and its journal and allocation are kept for `down`/`recover`.
//! Unwinding keeps going past errors and reports all of them; operations whose outcome is unknown
//! (a crash between intent and result, a dropped connection) are undone too, and a refusal of
//! their undo is taken as "it never happened". `down` and `recover` use the same unwinding.

use crate::drivers::{DriverSet, Profile};
use crate::failpoint::Failpoints;
use crate::hostlist;
use crate::plan::{self, Held, Inputs, JobRequest, Op, PKeyChoice, Plan, PlanError};
use crate::state::{alive, JournalRow, Owner, StateError, Store};
use crate::topology::{PortMode, SwitchGraph, Topology};
use crate::transport::{Connector, DeviceError, DeviceLock, Session, Target};
use crate::types::VlanId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the executor works with.
pub struct Env<'a> {
    pub store: &'a Store,
    pub connector: &'a dyn Connector,
    pub drivers: &'a DriverSet,
    pub failpoints: &'a Failpoints,
    /// Directory of the per-device session lock files.
    pub lock_dir: PathBuf,
    /// Sessions all jobnet processes together may hold to one device.
    pub sessions_per_device: usize,
    /// How long to wait for a session slot or for another process working on the same job.
    pub wait: Duration,
    /// Send the profile's `save` lines after the changes (apply and undo), so they survive a reboot.
    pub save: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Invalid(String),
    #[error("job {job} is being changed by process {pid} (state {state}); wait for it or, if it hangs, stop it and run `jobnet recover`")]
    Busy {
        job: String,
        pid: u32,
        state: String,
    },
    #[error("job {job} failed and every change was undone: {failure}; VLAN {vlan} released")]
    RolledBack {
        job: String,
        failure: String,
        vlan: VlanId,
    },
    #[error("job {job} needs attention: {}; its journal is kept: fix the device(s), then run `jobnet down --job {job}` (see `jobnet status --job {job}`)", .errors.join("; "))]
    NeedsAttention { job: String, errors: Vec<String> },
}

impl ApplyError {
    /// Exit codes of docs/cli.md.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApplyError::Plan(e) => e.exit_code() as u8,
            ApplyError::State(_) => 1,
            ApplyError::Invalid(_) | ApplyError::Busy { .. } => 2,
            ApplyError::RolledBack { .. } => 4,
            ApplyError::NeedsAttention { .. } => 5,
        }
    }
}

/// What `up` did.
#[derive(Clone, Debug, Serialize)]
pub struct UpReport {
    pub job: String,
    pub state: String,
    pub vlan: VlanId,
    /// The job's partition key, when a partition was applied.
    pub pkey: Option<crate::types::PKey>,
    pub nodes: Vec<String>,
    pub devices: Vec<DeviceReport>,
    /// True when the job was already up on the same nodes and nothing was sent.
    pub unchanged: bool,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeviceReport {
    pub name: String,
    pub operations: usize,
}

/// What `down` or `recover` did for one job.
#[derive(Clone, Debug, Serialize)]
pub struct DownReport {
    pub job: String,
    /// `down`, or `not-found`/`already-down` when there was nothing to do.
    pub result: String,
    pub undone: usize,
    pub devices: Vec<String>,
}

/// The topology-side inputs of `up`.
pub struct UpInputs<'a> {
    pub topology: &'a Topology,
    pub graph: &'a SwitchGraph,
    /// The topology file, recorded with the job.
    pub topology_path: &'a str,
}

struct Prepared {
    target: Target,
    profile: Profile,
    vlan_name: String,
    ops: Vec<Op>,
    session: Box<dyn Session>,
    _lock: DeviceLock,
}

/// What one phase-1 worker found.
enum Prep {
    Ready(Box<Prepared>),
    /// The job's VLAN exists on this device; with every VLAN the device has.
    Foreign(String, Vec<u16>),
}

enum Phase1 {
    Ready(Vec<Prepared>),
    /// The VLAN exists on these devices and is not ours; with every VLAN each of them has.
    Foreign(Vec<(String, Vec<u16>)>),
    Failed(String),
}

/// Brings a job's network up; see the module documentation.
pub fn up(env: &Env, inp: &UpInputs, req: &JobRequest) -> Result<UpReport, ApplyError> {
    let started = Instant::now();
    if let Some(g) = req.gateway.as_deref().and_then(|n| inp.topology.gateway(n)) {
        // Never send commands nobody has checked against the vendor's manual to a real device.
        if let Some(p) = env.drivers.get(&g.driver).filter(|p| !p.verified) {
            return Err(ApplyError::Invalid(format!(
                "--gateway: driver profile {} of gateway {} is not verified against its vendor manual ({}); jobnet does not send unverified commands to devices: check the commands `jobnet plan` shows, then put a copy with `verified: true` in --drivers-dir",
                p.name, g.name, p.source
            )));
        }
    }
    let ib = inp
        .topology
        .infiniband
        .as_ref()
        .and_then(|ib| ib.apply_settings());
    let req = match (&ib, req.pkey) {
        (None, PKeyChoice::Auto | PKeyChoice::Fixed(_)) => {
            return Err(ApplyError::Invalid(
                "--pkey: the topology's infiniband section has no `reload`, so jobnet cannot make OpenSM apply a partition; add `reload: {pidfile: ...}` (docs/topology.md) or pass --pkey none".into(),
            ))
        }
        (None, _) => JobRequest { pkey: PKeyChoice::None, ..req.clone() },
        (Some(_), _) => req.clone(),
    };
    let job = req.job.to_string();
    let owner = Owner::current();
    let mut foreign: BTreeMap<u16, String> = BTreeMap::new();
    for _attempt in 0..16 {
        let Some(plan) = allocate(env, inp, &req, owner, &foreign)? else {
            let row = env.store.job(&job)?.expect("job exists");
            return Ok(UpReport {
                job,
                state: row.state,
                vlan: VlanId::new(row.vlan.unwrap_or(1).into()).expect("stored VLAN"),
                pkey: row
                    .pkey
                    .and_then(|k| crate::types::PKey::new(k.into()).ok()),
                nodes: row.nodes,
                devices: vec![],
                unchanged: true,
                seconds: started.elapsed().as_secs_f64(),
            });
        };
        match prepare(env, inp.topology, &plan) {
            Phase1::Foreign(devices) => {
                let names: Vec<&str> = devices.iter().map(|(d, _)| d.as_str()).collect();
                env.store.release(
                    &job,
                    &format!("VLAN {} exists on {}", plan.vlan, names.join(", ")),
                )?;
                // Skip every VLAN those devices already have, not only the one just tried.
                for (device, vlans) in &devices {
                    for v in vlans {
                        foreign.entry(*v).or_insert_with(|| device.clone());
                    }
                }
                continue;
            }
            Phase1::Failed(failure) => {
                env.store
                    .release(&job, &format!("rolled back: {failure}"))?;
                return Err(ApplyError::RolledBack {
                    job,
                    failure,
                    vlan: plan.vlan,
                });
            }
            Phase1::Ready(devices) => {
                let reports: Vec<DeviceReport> = devices
                    .iter()
                    .map(|d| DeviceReport {
                        name: d.target.name.clone(),
                        operations: d.ops.len(),
                    })
                    .collect();
                let mut failures = apply_all(env, &job, devices);
                if failures.is_empty() {
                    if let (Some(ibp), Some(settings)) = (&plan.infiniband, &ib) {
                        if let Err(e) = apply_partition(env, &job, settings, ibp) {
                            failures.push(e);
                        }
                    }
                }
                if failures.is_empty() {
                    env.store.set_state(&job, "up", "")?;
                    return Ok(UpReport {
                        job,
                        state: "up".into(),
                        vlan: plan.vlan,
                        pkey: plan.pkey,
                        nodes: plan.nodes,
                        devices: reports,
                        unchanged: false,
                        seconds: started.elapsed().as_secs_f64(),
                    });
                }
                let failure = failures.join("; ");
                env.store.set_state(&job, "rolling-back", &failure)?;
                let undo_errors = unwind(env, &job);
                if undo_errors.is_empty() {
                    env.store
                        .release(&job, &format!("rolled back: {failure}"))?;
                    return Err(ApplyError::RolledBack {
                        job,
                        failure,
                        vlan: plan.vlan,
                    });
                }
                let mut errors = vec![format!("applying failed: {failure}")];
                errors.extend(undo_errors.into_iter().map(|e| format!("undo failed: {e}")));
                env.store
                    .set_state(&job, "failed-rollback", &errors.join("; "))?;
                return Err(ApplyError::NeedsAttention { job, errors });
            }
        }
    }
    Err(ApplyError::Invalid(format!(
        "job {job}: every VLAN tried already exists on the switches ({}); clean them up or widen vlan_pool",
        foreign.iter().map(|(v, d)| format!("{v} on {d}")).collect::<Vec<_>>().join(", ")
    )))
}

/// Allocates and plans in one immediate transaction. `None`: the job is already up on these nodes.
fn allocate(
    env: &Env,
    inp: &UpInputs,
    req: &JobRequest,
    owner: Owner,
    foreign: &BTreeMap<u16, String>,
) -> Result<Option<Plan>, ApplyError> {
    let job = req.job.as_str();
    env.store.immediate(|tx| {
        if let Some(row) = tx.job(job)? {
            match row.state.as_str() {
                "down" => {}
                "up" => {
                    let mut want = req.nodes.clone();
                    want.sort();
                    want.dedup();
                    let mut have = row.nodes.clone();
                    have.sort();
                    if want == have {
                        return Ok(None);
                    }
                    return Err(ApplyError::Invalid(format!("job {job} is already up on {}; run `jobnet down --job {job}` first", hostlist::fold(&row.nodes))));
                }
                "failed-rollback" => {
                    return Err(ApplyError::NeedsAttention { job: job.into(), errors: vec![format!("an earlier run failed to undo: {}", row.message)] });
                }
                state if alive(row.pid, row.pid_start) => {
                    return Err(ApplyError::Busy { job: job.into(), pid: row.pid.unwrap_or(0), state: state.into() });
                }
                state => {
                    return Err(ApplyError::NeedsAttention { job: job.into(), errors: vec![format!("an earlier run was interrupted in state {state}; run `jobnet recover`")] });
                }
            }
        }
        let active = tx.active_jobs()?;
        if inp.topology.ethernet.node_port_mode == PortMode::Access {
            let wanted: BTreeSet<&str> = req.nodes.iter().map(String::as_str).collect();
            for other in &active {
                let shared: Vec<&str> = other.nodes.iter().map(String::as_str).filter(|n| wanted.contains(n)).collect();
                if !shared.is_empty() {
                    return Err(ApplyError::Invalid(format!(
                        "node(s) {} belong to running job {} and node ports are in access mode (one job per port); wait for that job to end",
                        hostlist::fold(&shared),
                        other.job
                    )));
                }
            }
        }
        let mut held: Vec<Held> = active
            .iter()
            .map(|r| Held {
                job: crate::types::JobId::parse(&r.job).expect("stored job id"),
                vlan: r.vlan.and_then(|v| VlanId::new(v.into()).ok()),
                pkey: r.pkey.and_then(|k| crate::types::PKey::new(k.into()).ok()),
            })
            .collect();
        // VLANs found on devices are held by a pseudo job so the planner skips them.
        let squatter = crate::types::JobId::parse("existing-on-device").expect("valid id");
        held.extend(foreign.keys().map(|&v| Held { job: squatter.clone(), vlan: VlanId::new(v.into()).ok(), pkey: None }));
        let conf_path = inp.topology.infiniband.as_ref().map(|ib| ib.partitions_conf.clone());
        let conf_text = match (&conf_path, req.pkey) {
            (Some(p), c) if c != PKeyChoice::None => match std::fs::read_to_string(p) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(ApplyError::Invalid(format!("cannot read partitions.conf {p}: {e}"))),
            },
            _ => None,
        };
        let inputs = Inputs { topology: inp.topology, graph: inp.graph, drivers: env.drivers, held: &held, partitions_conf: conf_text.as_deref(), partitions_conf_path: None };
        let plan = plan::plan(inputs, req)?;
        tx.put_job(job, "applying", Some(plan.vlan.get()), plan.pkey.map(|k| k.get()), &plan.nodes, None, inp.topology_path, owner)?;
        tx.clear_journal(job)?;
        if !tx.allocate("vlan", plan.vlan.get(), job)? {
            return Err(ApplyError::Invalid(format!("VLAN {} is allocated to another job", plan.vlan)));
        }
        if let Some(k) = plan.pkey {
            if !tx.allocate("pkey", k.get(), job)? {
                return Err(ApplyError::Invalid(format!("PKey {k} is allocated to another job")));
            }
        }
        Ok(Some(plan))
    })
}

fn target_of(t: &Topology, name: &str) -> Target {
    if let Some(g) = t.gateway(name) {
        return Target {
            name: g.name.clone(),
            driver: g.driver.clone(),
            address: g.address.clone(),
            credentials: g.credentials.clone(),
            legacy: g.ssh_legacy,
        };
    }
    let sw = &t.switches[t.switch_idx(name).expect("planned switch")];
    Target {
        name: sw.name.clone(),
        driver: sw.driver.clone(),
        address: sw.address.clone(),
        credentials: sw.credentials.clone(),
        legacy: sw.ssh_legacy,
    }
}

/// Every device of a plan: the subgraph's switches and the gateway, if any.
fn plan_devices(plan: &Plan) -> impl Iterator<Item = &plan::DevicePlan> {
    plan.ethernet.devices.iter().chain(plan.gateway.iter())
}

/// Phase 1: take every device's session slot in name order (a job never holds one device while
/// waiting for another out of order, so jobs cannot deadlock), then in parallel connect, send the
/// setup lines and read.
fn prepare(env: &Env, t: &Topology, plan: &Plan) -> Phase1 {
    let vlan = plan.vlan.get();
    let mut locks = Vec::new();
    let mut names: Vec<&str> = plan_devices(plan).map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    for name in &names {
        match DeviceLock::acquire(&env.lock_dir, name, env.sessions_per_device, env.wait) {
            Ok(l) => locks.push((name.to_string(), l)),
            Err(e) => return Phase1::Failed(format!("{name}: {e}")),
        }
    }
    let mut locks: BTreeMap<String, DeviceLock> = locks.into_iter().collect();
    let results: Vec<Result<Prep, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan_devices(plan)
            .map(|d| {
                let lock = locks.remove(&d.name).expect("locked above");
                s.spawn(move || -> Result<Prep, String> {
                    let target = target_of(t, &d.name);
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
                    let mut ops = d.ops.clone();
                    if let Some(r) = &profile.read_vlans {
                        let out = session
                            .run(&r.command_for(None))
                            .map_err(|e| e.to_string())?;
                        let existing = r.values(&out);
                        if existing.contains(&u64::from(vlan)) {
                            let vlans = existing
                                .into_iter()
                                .filter_map(|v| u16::try_from(v).ok())
                                .collect();
                            return Ok(Prep::Foreign(d.name.clone(), vlans));
                        }
                    }
                    for op in ops.iter_mut() {
                        if let (Op::AccessSet { port, replaces, .. }, Some(r)) =
                            (op, &profile.read_access_vlan)
                        {
                            let out = session
                                .run(&r.command_for(Some(port)))
                                .map_err(|e| e.to_string())?;
                            *replaces = r.values(&out).first().and_then(|&v| VlanId::new(v).ok());
                        }
                    }
                    let vlan_name = plan::vlan_name(&plan.job, &profile);
                    Ok(Prep::Ready(Box::new(Prepared {
                        target,
                        profile,
                        vlan_name,
                        ops,
                        session,
                        _lock: lock,
                    })))
                })
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
    let mut ready = Vec::new();
    let mut foreign = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(Prep::Ready(p)) => ready.push(*p),
            Ok(Prep::Foreign(device, vlans)) => foreign.push((device, vlans)),
            Err(e) => failed.push(e),
        }
    }
    if !failed.is_empty() {
        Phase1::Failed(failed.join("; "))
    } else if !foreign.is_empty() {
        Phase1::Foreign(foreign)
    } else {
        Phase1::Ready(ready)
    }
}

/// Phase 2, in parallel: every device's operations, journaled. Returns the failures.
fn apply_all(env: &Env, job: &str, devices: Vec<Prepared>) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .into_iter()
            .map(|d| s.spawn(move || apply_device(env, job, d)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a device worker panicked".into()))
                    .err()
            })
            .collect()
    })
}

fn apply_device(env: &Env, job: &str, mut d: Prepared) -> Result<(), String> {
    let p = &d.profile;
    for l in &p.begin {
        d.session.run(l).map_err(|e| e.to_string())?;
    }
    for (seq, op) in d.ops.iter().enumerate() {
        let (apply, undo) = plan::render_op(p, &d.vlan_name, op);
        let op_json = serde_json::to_string(op).expect("op json");
        let id = env
            .store
            .journal_intent(job, &d.target, seq, &op_json, &apply, &undo)
            .map_err(|e| e.to_string())?;
        let first = apply.first().map(String::as_str).unwrap_or("");
        let run = env
            .failpoints
            .hit("intent", &d.target.name, first)
            .and_then(|()| apply.iter().try_for_each(|l| d.session.run(l).map(drop)));
        if let Err(e) = run {
            let _ = env.store.journal_set(id, "failed", &e.to_string());
            return Err(e.to_string());
        }
        if let Err(e) = env.failpoints.hit("done", &d.target.name, first) {
            let _ = env.store.journal_set(id, "failed", &e.to_string());
            return Err(e.to_string());
        }
        env.store
            .journal_set(id, "done", "")
            .map_err(|e| e.to_string())?;
    }
    for l in &p.end {
        d.session.run(l).map_err(|e: DeviceError| e.to_string())?;
    }
    if env.save {
        for l in &p.save {
            d.session.run(l).map_err(|e: DeviceError| e.to_string())?;
        }
    }
    Ok(())
}

/// Undoes every journaled operation of `job` that may be in effect, newest first per device, all
/// devices in parallel; keeps going past errors and returns them all.
pub fn unwind(env: &Env, job: &str) -> Vec<String> {
    let rows = match env.store.journal(job) {
        Ok(r) => r,
        Err(e) => return vec![e.to_string()],
    };
    let mut by_device: BTreeMap<String, Vec<JournalRow>> = BTreeMap::new();
    for r in rows.into_iter().filter(|r| {
        matches!(
            r.status.as_str(),
            "intent" | "done" | "failed" | "undo-failed"
        )
    }) {
        by_device.entry(r.device.clone()).or_default().push(r);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = by_device
            .into_values()
            .map(|mut rows| {
                rows.sort_by_key(|r| std::cmp::Reverse(r.id));
                s.spawn(move || undo_device(env, rows))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a device worker panicked".into()])
            })
            .collect()
    })
}

fn undo_device(env: &Env, rows: Vec<JournalRow>) -> Vec<String> {
    if rows[0].driver == OPENSM {
        return undo_partition(env, rows);
    }
    let first = &rows[0];
    let target = Target {
        name: first.device.clone(),
        driver: first.driver.clone(),
        address: first.address.clone(),
        credentials: first.credentials.clone(),
        legacy: first.legacy,
    };
    let fail_all = |why: String| -> Vec<String> {
        for r in &rows {
            let _ = env.store.journal_set(r.id, "undo-failed", &why);
        }
        vec![why]
    };
    let Some(profile) = env.drivers.get(&target.driver) else {
        return fail_all(format!(
            "{}: driver profile {} is not known to this jobnet",
            target.name, target.driver
        ));
    };
    let _lock = match DeviceLock::acquire(
        &env.lock_dir,
        &target.name,
        env.sessions_per_device,
        env.wait,
    ) {
        Ok(l) => l,
        Err(e) => return fail_all(format!("{}: {e}", target.name)),
    };
    let mut session = match env.connector.connect(&target, profile) {
        Ok(s) => s,
        Err(e) => return fail_all(e.to_string()),
    };
    for l in profile.setup.iter().chain(&profile.begin) {
        if let Err(e) = session.run(l) {
            return fail_all(e.to_string());
        }
    }
    let mut errors = Vec::new();
    for r in &rows {
        let certain = matches!(r.status.as_str(), "done" | "undo-failed");
        let first = r.undo.first().map(String::as_str).unwrap_or("");
        let result = env
            .failpoints
            .hit("undo", &target.name, first)
            .and_then(|()| r.undo.iter().try_for_each(|l| session.run(l).map(drop)));
        match result {
            Ok(()) => {
                let _ = env.store.journal_set(r.id, "undone", "");
            }
            Err(e) if !certain => {
                // The operation may never have reached the device; its undo being refused says so.
                let _ = env.store.journal_set(
                    r.id,
                    "undone",
                    &format!("outcome was unknown; undo answered: {e}"),
                );
            }
            Err(e) => {
                let _ = env.store.journal_set(r.id, "undo-failed", &e.to_string());
                errors.push(e.to_string());
            }
        }
    }
    for l in &profile.end {
        if let Err(e) = session.run(l) {
            errors.push(e.to_string());
        }
    }
    if env.save {
        for l in &profile.save {
            if let Err(e) = session.run(l) {
                errors.push(e.to_string());
            }
        }
    }
    errors
}

/// Takes a job down (also a partial or failed one). Nothing to do is success.
pub fn down(env: &Env, job: &str) -> Result<DownReport, ApplyError> {
    let owner = Owner::current();
    let deadline = Instant::now() + env.wait;
    loop {
        let claimed =
            env.store
                .immediate(|tx| -> Result<Result<(), (u32, String)>, ApplyError> {
                    let Some(row) = tx.job(job)? else {
                        return Ok(Err((0, "not-found".into())));
                    };
                    if row.state == "down" {
                        return Ok(Err((0, "already-down".into())));
                    }
                    if matches!(
                        row.state.as_str(),
                        "applying" | "rolling-back" | "tearing-down"
                    ) && alive(row.pid, row.pid_start)
                    {
                        return Ok(Err((row.pid.unwrap_or(0), row.state)));
                    }
                    tx.claim(job, "tearing-down", owner)?;
                    Ok(Ok(()))
                })?;
        match claimed {
            Ok(()) => break,
            Err((0, result)) => {
                return Ok(DownReport {
                    job: job.into(),
                    result,
                    undone: 0,
                    devices: vec![],
                })
            }
            Err((pid, state)) if Instant::now() >= deadline => {
                return Err(ApplyError::Busy {
                    job: job.into(),
                    pid,
                    state,
                })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    finish_teardown(env, job)
}

fn finish_teardown(env: &Env, job: &str) -> Result<DownReport, ApplyError> {
    let rows = env.store.journal(job)?;
    let devices: BTreeSet<String> = rows.iter().map(|r| r.device.clone()).collect();
    let pending = rows
        .iter()
        .filter(|r| {
            matches!(
                r.status.as_str(),
                "intent" | "done" | "failed" | "undo-failed"
            )
        })
        .count();
    let errors = unwind(env, job);
    if errors.is_empty() {
        env.store.release(job, "down")?;
        Ok(DownReport {
            job: job.into(),
            result: "down".into(),
            undone: pending,
            devices: devices.into_iter().collect(),
        })
    } else {
        env.store
            .set_state(job, "failed-rollback", &errors.join("; "))?;
        Err(ApplyError::NeedsAttention {
            job: job.into(),
            errors,
        })
    }
}

/// Finishes every job whose process died mid-change: undoes what its journal shows and releases
/// it. Jobs whose process still runs are left alone.
pub fn recover(env: &Env) -> Result<Vec<Result<DownReport, ApplyError>>, ApplyError> {
    let owner = Owner::current();
    let mut out = Vec::new();
    for row in env.store.jobs()? {
        if !matches!(
            row.state.as_str(),
            "applying" | "rolling-back" | "tearing-down"
        ) {
            continue;
        }
        let claimed = env.store.immediate(|tx| -> Result<bool, ApplyError> {
            match tx.job(&row.job)? {
                Some(r)
                    if matches!(
                        r.state.as_str(),
                        "applying" | "rolling-back" | "tearing-down"
                    ) && !alive(r.pid, r.pid_start) =>
                {
                    tx.claim(&row.job, "tearing-down", owner)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })?;
        if claimed {
            out.push(finish_teardown(env, &row.job));
        }
    }
    Ok(out)
}

/// The journal's device name and driver for a job's partition in partitions.conf.
const OPENSM: &str = "opensm";

#[derive(serde::Serialize, serde::Deserialize)]
struct PartitionOp {
    op: String,
    job: String,
    partition: String,
    pkey: String,
    settings: crate::opensm::IbApply,
}

/// The job's partition: locked, checked, atomic write; coalesced reload; verification.
fn apply_partition(
    env: &Env,
    job: &str,
    settings: &crate::opensm::IbApply,
    ib: &plan::IbPlan,
) -> Result<(), String> {
    let target = Target {
        name: OPENSM.into(),
        driver: OPENSM.into(),
        address: settings.partitions_conf.display().to_string(),
        credentials: None,
        legacy: false,
    };
    let op = PartitionOp {
        op: "partition".into(),
        job: job.into(),
        partition: ib.partition.clone(),
        pkey: ib.pkey.to_string(),
        settings: settings.clone(),
    };
    let apply = vec![format!(
        "add partition {} {} with {} member(s) to {}",
        ib.partition,
        ib.pkey,
        ib.members.len(),
        target.address
    )];
    let undo = vec![format!(
        "remove partition {} from {}",
        ib.partition, target.address
    )];
    let id = env
        .store
        .journal_intent(
            job,
            &target,
            0,
            &serde_json::to_string(&op).expect("json"),
            &apply,
            &undo,
        )
        .map_err(|e| e.to_string())?;
    let result = (|| -> Result<(), String> {
        env.failpoints
            .hit("intent", OPENSM, &apply[0])
            .map_err(|e| e.to_string())?;
        let partition = crate::partitions::Partition {
            job: job.into(),
            name: ib.partition.clone(),
            pkey: ib.pkey,
            ipoib: ib.ipoib,
            flags: ib.flags.clone(),
            members: ib.members.clone(),
        };
        let updated = crate::partitions::file::update(&settings.partitions_conf, env.wait, |c| {
            c.with_partition(&partition)
        })
        .map_err(|e| e.to_string())?;
        crate::opensm::reload_coalesced(settings, updated.generation, &|text| {
            push_standbys(env, settings, text)
        })?;
        let guids: Vec<String> = ib.members.iter().map(|g| g.to_string()).collect();
        crate::opensm::verify(settings, &guids, &format!("{:#06x}", ib.pkey.full_member()))
            .map_err(|e| format!("opensm: {e}"))?;
        env.failpoints
            .hit("done", OPENSM, &apply[0])
            .map_err(|e| e.to_string())
    })();
    match &result {
        Ok(()) => env
            .store
            .journal_set(id, "done", "")
            .map_err(|e| e.to_string())?,
        Err(e) => {
            let _ = env.store.journal_set(id, "failed", e);
        }
    }
    result
}

/// Removes a job's partition again (keeps going, like every undo). Restoring the file is what
/// counts: OpenSM re-reads it on every heavy sweep, so a failed reload (OpenSM not running, say)
/// only delays when the partition disappears and is noted, not failed.
fn undo_partition(env: &Env, rows: Vec<JournalRow>) -> Vec<String> {
    let mut errors = Vec::new();
    for r in rows {
        let certain = matches!(r.status.as_str(), "done" | "undo-failed");
        let restored =
            (|| -> Result<(crate::opensm::IbApply, crate::partitions::file::Updated), String> {
                env.failpoints
                    .hit(
                        "undo",
                        OPENSM,
                        r.undo.first().map(String::as_str).unwrap_or(""),
                    )
                    .map_err(|e| e.to_string())?;
                let op: PartitionOp = serde_json::from_str(&r.op).map_err(|e| {
                    format!("journal row {} is not a partition operation: {e}", r.id)
                })?;
                let updated =
                    crate::partitions::file::update(&op.settings.partitions_conf, env.wait, |c| {
                        c.without_job(&op.job)
                    })
                    .map_err(|e| e.to_string())?;
                Ok((op.settings, updated))
            })();
        match restored {
            // Called even when the file was already restored: a standby copy may still lag.
            Ok((settings, updated)) => {
                match crate::opensm::reload_coalesced(&settings, updated.generation, &|text| {
                    push_standbys(env, &settings, text)
                }) {
                    Ok(_) => {
                        let _ = env.store.journal_set(r.id, "undone", "");
                    }
                    // A standby that still grants the PKey would bring it back on failover.
                    Err(e) if e.starts_with("standby SM:") && certain => {
                        let _ = env.store.journal_set(r.id, "undo-failed", &e);
                        errors.push(e);
                    }
                    Err(e) => {
                        let note = format!(
                            "file restored; {e}: OpenSM applies it at its next heavy sweep"
                        );
                        let _ = env.store.journal_set(r.id, "undone", &note);
                    }
                }
            }
            Err(e) if !certain => {
                let _ = env.store.journal_set(
                    r.id,
                    "undone",
                    &format!("outcome was unknown; undo answered: {e}"),
                );
            }
            Err(e) => {
                let _ = env.store.journal_set(r.id, "undo-failed", &e);
                errors.push(e);
            }
        }
    }
    errors
}

/// Installs `text` as partitions.conf on every standby SM, so a failover keeps the partitions.
fn push_standbys(env: &Env, settings: &crate::opensm::IbApply, text: &str) -> Result<(), String> {
    let errors: Vec<String> = settings
        .standbys
        .iter()
        .filter_map(|s| {
            env.connector
                .install_file(&s.target(), &s.partitions_conf, text)
                .err()
        })
        .map(|e| format!("standby SM: {e}"))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
