//! Applying plans to devices and reversing them: `up`, `down` and `recover`, and the dry run of
//! `up` (`plan`, `up --dry-run`), which goes through the same request handling, allocation view
//! and planner as `up` itself.
//!
//! `up` allocates and plans in one state transaction, then works on every device of the plan in
//! parallel, one session per device ([`prepare`], [`device`]):
//! 1. connect, send the profile's setup lines, read the device: a VLAN that already exists there
//!    and is not this job's is never used (the allocation is retried with another VLAN); every
//!    port the job touches is read (mode, access VLAN, allowed list) and the operation decided
//!    from what it shows — refused when the port is not what the job needs, with the vendor's
//!    fix; the access VLAN an `access_set` replaces is recorded so undo restores it;
//! 2. enter configuration mode and, per operation: journal the intent (with its exact apply and
//!    undo lines), send the lines, journal the result; then the commit lines.
//!
//! If any device fails, or a signal arrives ([`interrupt`]), every device is unwound: the
//! journaled operations are undone newest first, the VLAN is released and the job is marked down
//! ("rolled back"). If undo fails too, the job is marked `failed-rollback` and its journal and
//! allocation are kept for `down`/`recover`. Unwinding keeps going past errors and reports all of
//! them; operations whose outcome is unknown (a crash between intent and result, a dropped
//! connection) are undone too, and a refusal of their undo is taken as "it never happened".
//! `down` and `recover` use the same unwinding; `down` can reach devices at their current
//! address (`retarget`) and, with `force`, release a job whose leftovers cannot be undone,
//! recording them as abandoned.

mod device;
pub mod interrupt;
mod partition;
mod prepare;

use crate::drivers::DriverSet;
use crate::failpoint::Failpoints;
use crate::hostlist;
use crate::opensm::IbApply;
use crate::plan::{self, Choice, Held, Inputs, JobRequest, PKeyChoice, Plan, PlanError};
use crate::state::{alive, JobRow, Owner, StateError, Store};
use crate::topology::{PortMode, SwitchGraph, Topology};
use crate::transport::{Connector, Target};
use crate::types::{PKey, VlanId};
pub use interrupt::Interrupt;
pub use prepare::targets;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the executor works with.
pub struct Env<'a> {
    pub store: &'a Store,
    pub connector: &'a dyn Connector,
    pub drivers: &'a DriverSet,
    pub failpoints: &'a Failpoints,
    /// Directory of the per-device session and per-port lock files.
    pub lock_dir: PathBuf,
    /// Sessions all jobnet processes together may hold to one device.
    pub sessions_per_device: usize,
    /// How long to wait for a session slot or for another process working on the same job.
    pub wait: Duration,
    /// Send the profile's `save` lines after the changes (apply and undo), so they survive a reboot.
    pub save: bool,
    /// Set by SIGTERM/SIGINT/SIGHUP: `up` stops starting operations and unwinds.
    pub interrupt: &'a Interrupt,
    /// Devices to reach where the current topology says, not at the journal's address
    /// (`down --topology`): a re-addressed or replaced switch of the same name.
    pub retarget: BTreeMap<String, Target>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Environment(String),
    #[error("job {job} is being changed by process {pid} (state {state}); wait for it or, if it hangs, stop it and run `jobnet recover`")]
    Busy {
        job: String,
        pid: u32,
        state: String,
    },
    #[error("job {job} failed and every change was undone: {failure}; {released}")]
    RolledBack {
        job: String,
        failure: String,
        released: String,
    },
    #[error("job {job} needs attention: {}; its journal is kept: fix the device(s), then run `jobnet down --job {job}` (see `jobnet status --job {job}`; docs/operations.md for a moved or replaced switch and `down --force`)", .errors.join("; "))]
    NeedsAttention { job: String, errors: Vec<String> },
}

impl ApplyError {
    /// Exit codes of docs/cli.md.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApplyError::Plan(e) => e.exit_code() as u8,
            ApplyError::State(_) | ApplyError::Environment(_) => 1,
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
    /// `None` for a job without Ethernet.
    pub vlan: Option<VlanId>,
    /// The job's partition key, when a partition was applied (hex text, as in `plan`).
    pub pkey: Option<PKey>,
    pub nodes: Vec<String>,
    /// Every device changed, the OpenSM partition included.
    pub devices: Vec<DeviceReport>,
    /// True when the job was already up on the same nodes and nothing was sent.
    pub unchanged: bool,
    pub seconds: f64,
    /// The plan's warnings, and notes from the devices (ports left as they were).
    pub warnings: Vec<String>,
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
    /// What `down --force` gave up on (device: lines that would undo it); also kept in the state
    /// file (`jobnet status --abandoned`).
    pub abandoned: Vec<String>,
}

/// The topology-side inputs of `up`.
pub struct UpInputs<'a> {
    pub topology: &'a Topology,
    pub graph: &'a SwitchGraph,
    /// The topology file, recorded with the job.
    pub topology_path: &'a str,
    /// partitions.conf to use instead of the topology's `infiniband.partitions_conf`.
    pub partitions_conf: Option<&'a Path>,
}

/// The request as `up` will carry it out, the InfiniBand settings it will use, and what to tell
/// the user about it. `up` and its dry run both start here.
fn normalise(
    env_drivers: &DriverSet,
    inp: &UpInputs,
    req: &JobRequest,
    dry: bool,
) -> Result<(JobRequest, Option<IbApply>, Vec<String>), ApplyError> {
    let mut warnings = Vec::new();
    if let Some(g) = req.gateway.as_deref().and_then(|n| inp.topology.gateway(n)) {
        // Never send commands nobody has checked against the vendor's manual to a real device;
        // the dry run shows them, for exactly that check.
        if let Some(p) = env_drivers.get(&g.driver).filter(|p| !p.verified) {
            let why = format!(
                "driver profile {} of gateway {} is not verified against its vendor manual ({}); jobnet does not send unverified commands to devices: check the commands `jobnet plan` shows, then put a copy with `verified: true` in --drivers-dir",
                p.name, g.name, p.source
            );
            if !dry {
                return Err(ApplyError::Invalid(format!("--gateway: {why}")));
            }
            warnings.push(format!("`jobnet up` refuses this job as it is: {why}"));
        }
    }
    let ib = inp.topology.infiniband.as_ref();
    let settings = ib.and_then(|ib| ib.apply_settings()).map(|mut s| {
        if let Some(p) = inp.partitions_conf {
            s.partitions_conf = p.to_path_buf();
        }
        s
    });
    let req = match (ib, &settings, req.pkey) {
        (Some(_), None, PKeyChoice::Auto | PKeyChoice::Fixed(_)) => {
            return Err(ApplyError::Invalid(
                "--pkey: the topology's infiniband section has no `reload`, so jobnet cannot make OpenSM apply a partition; add `reload: {pidfile: ...}` (docs/topology.md) or pass --pkey none".into(),
            ))
        }
        (Some(_), None, PKeyChoice::Default) => {
            warnings.push("the topology's infiniband section has no `reload`: no partition is applied (add `reload: {pidfile: ...}`, docs/topology.md, to apply one)".to_string());
            JobRequest {
                pkey: PKeyChoice::None,
                ..req.clone()
            }
        }
        _ => req.clone(),
    };
    Ok((req, settings, warnings))
}

/// The partitions.conf text the plan is made against (`None`: no file), when the job may get a
/// partition.
fn current_conf(
    settings: &Option<IbApply>,
    req: &JobRequest,
) -> Result<Option<String>, ApplyError> {
    match settings {
        Some(s) if req.pkey != PKeyChoice::None => {
            crate::limits::read_text_if_exists(&s.partitions_conf, crate::limits::PARTITIONS_CONF)
                .map_err(|e| match e.exit_code() {
                    1 => ApplyError::Environment(format!(
                "partitions.conf: {e}; run as a user who can read it or pass --partitions-conf"
            )),
                    _ => ApplyError::Invalid(format!("partitions.conf: {e}")),
                })
        }
        _ => Ok(None),
    }
}

/// What other jobs (and devices) hold, as the planner needs it.
fn held_of(rows: &[JobRow], foreign: &BTreeMap<u16, String>) -> Vec<Held> {
    let mut held: Vec<Held> = rows
        .iter()
        .filter(|r| r.state != "down")
        .map(|r| {
            Held::job(
                crate::types::JobId::parse(&r.job).expect("stored job id"),
                r.vlan.and_then(|v| VlanId::new(v.into()).ok()),
                r.pkey.and_then(|k| PKey::new(k.into()).ok()),
            )
        })
        .collect();
    held.extend(foreign.iter().filter_map(|(&v, device)| {
        VlanId::new(v.into())
            .ok()
            .map(|v| Held::on_device(device, v))
    }));
    held
}

/// The planner, fed the same way for `up` and its dry run.
fn plan_for(
    drivers: &DriverSet,
    inp: &UpInputs,
    req: &JobRequest,
    settings: &Option<IbApply>,
    held: &[Held],
    conf: Option<&str>,
) -> Result<Plan, PlanError> {
    let path = settings
        .as_ref()
        .map(|s| s.partitions_conf.display().to_string())
        .or_else(|| inp.partitions_conf.map(|p| p.display().to_string()));
    plan::plan(
        Inputs {
            topology: inp.topology,
            graph: inp.graph,
            drivers,
            held,
            partitions_conf: conf,
            partitions_conf_path: path.as_deref(),
        },
        req,
    )
}

/// What an existing record of the job means for a new `up`: `Some(row)` when it is already up
/// as asked (nothing to do); an error when it is up otherwise, busy, or needs attention.
fn existing(row: Option<JobRow>, req: &JobRequest) -> Result<Option<JobRow>, ApplyError> {
    let Some(row) = row else { return Ok(None) };
    let job = req.job.as_str();
    match row.state.as_str() {
        "down" => Ok(None),
        "up" => {
            let mut want = req.nodes.clone();
            want.sort();
            want.dedup();
            let mut have = row.nodes.clone();
            have.sort();
            let first = format!("run `jobnet down --job {job}` first");
            if want != have {
                return Err(ApplyError::Invalid(format!(
                    "job {job} is already up on {}; {first}",
                    hostlist::fold_short(&row.nodes, 12)
                )));
            }
            let vlan_differs = match req.vlan {
                Choice::Fixed(v) => row.vlan != Some(v.get()),
                Choice::None => row.vlan.is_some(),
                Choice::Auto => false,
            };
            let shown = |v: Option<u16>| v.map_or("no VLAN".to_string(), |v| format!("VLAN {v}"));
            if vlan_differs {
                let asked = match req.vlan {
                    Choice::Fixed(v) => format!("--vlan {v}"),
                    _ => "--vlan none".into(),
                };
                return Err(ApplyError::Invalid(format!("job {job} is already up with {} on these nodes; {asked} asks for something else: {first}, or drop --vlan", shown(row.vlan))));
            }
            let pkey_differs = match req.pkey {
                PKeyChoice::Fixed(k) => row.pkey != Some(k.get()),
                PKeyChoice::None => row.pkey.is_some(),
                _ => false,
            };
            if pkey_differs {
                return Err(ApplyError::Invalid(format!(
                    "job {job} is already up with {} on these nodes; --pkey asks for something else: {first}, or drop --pkey",
                    row.pkey.map_or("no partition".into(), |k| format!("PKey {k:#06x}"))
                )));
            }
            if row.gateway != req.gateway {
                return Err(ApplyError::Invalid(format!(
                    "job {job} is already up {}; --gateway asks for something else: {first}",
                    row.gateway
                        .as_deref()
                        .map_or("without a gateway".into(), |g| format!("with gateway {g}"))
                )));
            }
            Ok(Some(row))
        }
        "failed-rollback" => Err(ApplyError::NeedsAttention {
            job: job.into(),
            errors: vec![format!("an earlier run failed to undo: {}", row.message)],
        }),
        state if alive(row.pid, row.pid_start) => Err(ApplyError::Busy {
            job: job.into(),
            pid: row.pid.unwrap_or(0),
            state: state.into(),
        }),
        state => Err(ApplyError::NeedsAttention {
            job: job.into(),
            errors: vec![format!(
                "an earlier run was interrupted in state {state}; run `jobnet recover`"
            )],
        }),
    }
}

/// `up --dry-run` and `plan`: the plan `up` would carry out now, against the allocations in the
/// state file (`None`: no state file yet) and the current partitions.conf. Touches nothing.
pub fn dry_run(
    store: Option<&Store>,
    drivers: &DriverSet,
    inp: &UpInputs,
    req: &JobRequest,
) -> Result<Plan, ApplyError> {
    let (req, settings, mut warnings) = normalise(drivers, inp, req, true)?;
    let rows = match store {
        Some(s) => s.jobs()?,
        None => Vec::new(),
    };
    if existing(
        rows.iter().find(|r| r.job == req.job.as_str()).cloned(),
        &req,
    )?
    .is_some()
    {
        warnings.push(format!(
            "job {} is already up as asked: `jobnet up` would send nothing",
            req.job
        ));
    }
    let conf = current_conf(&settings, &req)?;
    let mut plan = plan_for(
        drivers,
        inp,
        &req,
        &settings,
        &held_of(&rows, &BTreeMap::new()),
        conf.as_deref(),
    )?;
    warnings.append(&mut plan.warnings);
    plan.warnings = warnings;
    Ok(plan)
}

/// Brings a job's network up; see the module documentation.
pub fn up(env: &Env, inp: &UpInputs, req: &JobRequest) -> Result<UpReport, ApplyError> {
    let started = Instant::now();
    let (req, settings, mut warnings) = normalise(env.drivers, inp, req, false)?;
    let job = req.job.to_string();
    let owner = Owner::current();
    let mut foreign: BTreeMap<u16, String> = BTreeMap::new();
    for _attempt in 0..16 {
        let plan = match allocate(env, inp, &req, &settings, owner, &foreign)? {
            Allocated::Unchanged(row) => {
                return Ok(UpReport {
                    job,
                    state: row.state,
                    vlan: row.vlan.and_then(|v| VlanId::new(v.into()).ok()),
                    pkey: row.pkey.and_then(|k| PKey::new(k.into()).ok()),
                    nodes: row.nodes,
                    devices: vec![],
                    unchanged: true,
                    seconds: started.elapsed().as_secs_f64(),
                    warnings,
                })
            }
            Allocated::Plan(p) => *p,
        };
        let released = released(&plan);
        match prepare::prepare(env, inp.topology, &plan) {
            prepare::Phase1::Foreign(devices) => {
                let names: Vec<&str> = devices.iter().map(|(d, _)| d.as_str()).collect();
                env.store.release(
                    &job,
                    &format!(
                        "VLAN {} exists on {}",
                        show_vlan(plan.vlan),
                        names.join(", ")
                    ),
                )?;
                // Skip every VLAN those devices already have, not only the one just tried.
                for (device, vlans) in &devices {
                    for v in vlans {
                        foreign.entry(*v).or_insert_with(|| device.clone());
                    }
                }
                continue;
            }
            prepare::Phase1::Failed(failure) => {
                env.store
                    .release(&job, &format!("rolled back: {failure}"))?;
                return Err(ApplyError::RolledBack {
                    job,
                    failure,
                    released,
                });
            }
            prepare::Phase1::Ready(devices, notes) => {
                warnings.extend(plan.warnings.iter().cloned());
                warnings.extend(notes);
                let mut reports: Vec<DeviceReport> = devices
                    .iter()
                    .map(|d| DeviceReport {
                        name: d.target.name.clone(),
                        operations: d.ops.len(),
                    })
                    .collect();
                let mut failures = device::apply_all(env, &job, devices);
                if failures.is_empty() {
                    // A signal during the Ethernet part: unwind before touching OpenSM.
                    if let Err(e) = env.interrupt.check() {
                        failures.push(e);
                    }
                }
                if failures.is_empty() {
                    if let (Some(ibp), Some(s)) = (&plan.infiniband, &settings) {
                        match partition::apply(env, &job, s, ibp) {
                            Ok(()) => reports.push(DeviceReport {
                                name: format!("opensm ({})", s.partitions_conf.display()),
                                operations: 1,
                            }),
                            Err(e) => failures.push(e),
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
                        warnings,
                    });
                }
                return Err(roll_back(env, &job, failures.join("; "), released));
            }
        }
    }
    Err(ApplyError::Invalid(format!(
        "job {job}: every VLAN tried already exists on the switches ({}); clean them up or widen vlan_pool",
        foreign.iter().map(|(v, d)| format!("{v} on {d}")).collect::<Vec<_>>().join(", ")
    )))
}

fn show_vlan(v: Option<VlanId>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// What releasing the job frees, for messages.
fn released(plan: &Plan) -> String {
    match (plan.vlan, plan.pkey) {
        (Some(v), Some(k)) => format!("VLAN {v} and PKey {k} released"),
        (Some(v), None) => format!("VLAN {v} released"),
        (None, Some(k)) => format!("PKey {k} released"),
        (None, None) => "nothing was allocated".into(),
    }
}

/// Unwinds a failed `up`: rolled back, or needs attention when undoing fails too.
fn roll_back(env: &Env, job: &str, failure: String, released: String) -> ApplyError {
    if let Err(e) = env.store.set_state(job, "rolling-back", &failure) {
        return e.into();
    }
    let undo_errors = device::unwind(env, job);
    if undo_errors.is_empty() {
        return match env.store.release(job, &format!("rolled back: {failure}")) {
            Ok(()) => ApplyError::RolledBack {
                job: job.into(),
                failure,
                released,
            },
            Err(e) => e.into(),
        };
    }
    let mut errors = vec![format!("applying failed: {failure}")];
    errors.extend(undo_errors.into_iter().map(|e| format!("undo failed: {e}")));
    if let Err(e) = env
        .store
        .set_state(job, "failed-rollback", &errors.join("; "))
    {
        return e.into();
    }
    ApplyError::NeedsAttention {
        job: job.into(),
        errors,
    }
}

enum Allocated {
    /// The job is already up as asked.
    Unchanged(JobRow),
    Plan(Box<Plan>),
}

/// Allocates and plans in one immediate transaction.
fn allocate(
    env: &Env,
    inp: &UpInputs,
    req: &JobRequest,
    settings: &Option<IbApply>,
    owner: Owner,
    foreign: &BTreeMap<u16, String>,
) -> Result<Allocated, ApplyError> {
    let job = req.job.as_str();
    let conf = current_conf(settings, req)?;
    env.store.immediate(|tx| {
        if let Some(row) = existing(tx.job(job)?, req)? {
            return Ok(Allocated::Unchanged(row));
        }
        let active = tx.active_jobs()?;
        if inp.topology.node_port_mode() == PortMode::Access && req.vlan != Choice::None {
            let wanted: BTreeSet<&str> = req.nodes.iter().map(String::as_str).collect();
            for other in active.iter().filter(|o| o.vlan.is_some()) {
                let shared: Vec<&str> = other.nodes.iter().map(String::as_str).filter(|n| wanted.contains(n)).collect();
                if !shared.is_empty() {
                    return Err(ApplyError::Invalid(format!(
                        "node(s) {} belong to running job {} and node ports are in access mode (one job per port); wait for that job to end",
                        hostlist::fold_short(&shared, 12),
                        other.job
                    )));
                }
            }
        }
        let plan = plan_for(env.drivers, inp, req, settings, &held_of(&active, foreign), conf.as_deref())?;
        tx.put_job(job, "applying", plan.vlan.map(VlanId::get), plan.pkey.map(|k| k.get()), &plan.nodes, req.gateway.as_deref(), inp.topology_path, owner)?;
        tx.clear_journal(job)?;
        if let Some(v) = plan.vlan {
            if !tx.allocate("vlan", v.get(), job)? {
                return Err(ApplyError::Invalid(format!("VLAN {v} is allocated to another job")));
            }
        }
        if let Some(k) = plan.pkey {
            if !tx.allocate("pkey", k.get(), job)? {
                return Err(ApplyError::Invalid(format!("PKey {k} is allocated to another job")));
            }
        }
        Ok(Allocated::Plan(Box::new(plan)))
    })
}

/// Takes a job down (also a partial or failed one). Nothing to do is success. With `force`,
/// operations whose undo still fails are recorded as abandoned and the job is released anyway.
pub fn down(env: &Env, job: &str, force: bool) -> Result<DownReport, ApplyError> {
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
                    abandoned: vec![],
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
    finish_teardown(env, job, force)
}

fn finish_teardown(env: &Env, job: &str, force: bool) -> Result<DownReport, ApplyError> {
    let rows = env.store.journal(job)?;
    let devices: BTreeSet<String> = rows.iter().map(|r| r.device.clone()).collect();
    let pending = rows.iter().filter(|r| device::pending(&r.status)).count();
    let errors = device::unwind(env, job);
    let mut abandoned = Vec::new();
    if !errors.is_empty() && force {
        let left: Vec<_> = env
            .store
            .journal(job)?
            .into_iter()
            .filter(|r| device::pending(&r.status))
            .collect();
        let reason = format!("abandoned by `jobnet down --force`: {}", errors.join("; "));
        env.store.abandon(&left, &reason)?;
        abandoned = left
            .iter()
            .map(|r| format!("{} ({}): {}", r.device, r.address, r.undo.join(" / ")))
            .collect();
    }
    if errors.is_empty() || force {
        let message = if abandoned.is_empty() {
            "down".to_string()
        } else {
            format!("down --force: {} operation(s) abandoned", abandoned.len())
        };
        env.store.release(job, &message)?;
        Ok(DownReport {
            job: job.into(),
            result: "down".into(),
            undone: pending - abandoned.len(),
            devices: devices.into_iter().collect(),
            abandoned,
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
            out.push(finish_teardown(env, &row.job, false));
        }
    }
    Ok(out)
}
