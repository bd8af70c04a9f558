//! Applying plans to devices and reversing them: `up`, `down` and `recover`, and the dry run of
//! `up` (`plan`, `up --dry-run`), which goes through the same request handling, allocation view
//! and planner as `up` itself ([`lifecycle`]).
//!
//! `up` allocates and plans in one state transaction ([`StateStore::begin`]), then works on every
//! device of the plan in parallel, one [`DeviceDriver`] per device:
//! 1. ([`prepare`]) open the device and read it: a VLAN that already exists there and is not this
//!    job's is never used (the allocation is retried with another VLAN); every port the job
//!    touches is read and the operation decided from what it shows — refused when the port is
//!    not what the job needs, with the vendor's fix; the access VLAN an `access_set` replaces is
//!    recorded so undo restores it;
//! 2. ([`device`]) per operation: journal the intent (typed operation and its exact lines), apply
//!    it, journal the result; then the commit.
//!
//! If any device fails, or a signal arrives ([`interrupt`]), every device is unwound: the
//! journaled operations are undone newest first, the VLAN is released and the job is marked down
//! ("rolled back"). If undo fails too, the job is marked `failed-rollback` and its journal and
//! allocation are kept for `down`/`recover`. Unwinding keeps going past errors and reports all of
//! them; operations whose outcome is unknown (a crash between intent and result, a dropped
//! connection) are undone too, and a refusal of their undo is taken as "it never happened".
//! `down` and `recover` use the same unwinding; `down` can reach devices at their current
//! address (`retarget`) and, with `force`, release a job whose leftovers cannot be undone,
//! recording them as abandoned. The job's partition is one more journaled operation
//! ([`partition`]).

mod device;
mod failure;
pub mod faults;
pub use crate::base::interrupt;
mod lifecycle;
mod partition;
mod prepare;
pub mod progress;
mod workers;

pub use failure::{Failure, Interrupted, PortProblem};
pub use faults::{Faults, NoFaults};
pub use interrupt::Interrupt;
pub use prepare::targets;
pub use progress::{Progress, Silent, Stage};

use crate::base::hint::{self, Hint, Hinted};
use crate::base::types::{PKey, VlanId};
use crate::drivers::transport::{Connector, Target};
use crate::drivers::DriverSet;
use crate::plan::{JobRequest, Plan, PlanError};
use crate::state::{
    BeginError, Claim, ClaimFor, Decision, JobRow, JobState, NewJob, StateError, StateStore,
};
use crate::topology::{SwitchGraph, Topology};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// What the executor works with.
pub struct Env<'a> {
    pub store: &'a dyn StateStore,
    pub connector: &'a dyn Connector,
    pub drivers: &'a DriverSet,
    /// Where the test kit makes things fail ([`NoFaults`] in every real run).
    pub faults: &'a dyn Faults,
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
    /// Told about every device as it is read, changed or undone ([`Silent`] to show nothing).
    pub progress: &'a dyn Progress,
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
    /// The gateway's driver profile was not checked against its vendor's manual: `up` sends it
    /// nothing (the dry run shows its commands, for that check). `from`: where the gateway was
    /// asked for ([`crate::plan::Origin`]).
    #[error("{from}: {}", unverified(.profile, .gateway, .manual))]
    UnverifiedGateway {
        from: &'static str,
        gateway: String,
        profile: String,
        /// The profile's `source:`, the manual it should be checked against.
        manual: String,
    },
    /// A partition was asked for (`from`) on a fabric whose OpenSM jobnet cannot reload.
    #[error("{from}: the topology's infiniband section has no `reload`, so jobnet cannot make OpenSM apply a partition; add `reload: {{pidfile: ...}}` (docs/topology.md) or ask for no partition")]
    NoReload { from: &'static str },
    /// The partitions.conf to plan against exists but this user cannot read it.
    #[error(
        "partitions.conf: {reason}; run as a user who can read it, or name another partitions.conf"
    )]
    UnreadablePartitions { reason: String },
    /// The job is up already with another VLAN, PKey or gateway than the request asks for
    /// (`from`); `hint`: leaving that part out of the request asks for what the job has.
    #[error("job {job} is already up with {has} on these nodes; {from} asks for {asked}: run `jobnet down --job {job}` first{}", if .hint.is_some() { ", or ask for what it has" } else { "" })]
    AlreadyUp {
        job: String,
        /// `VLAN 1000`, `no partition`, `gateway gw1`.
        has: String,
        asked: String,
        from: &'static str,
        hint: Option<Hint>,
    },
    /// A device of the plan cannot be logged in to as configured (no credentials file, no
    /// entry for it): refused before anything was changed.
    #[error("job {job}: {why}; nothing was changed")]
    NoLogin { job: String, why: String },
    #[error("job {job} is being changed by process {pid} (state {state}); wait for it or, if it hangs, stop it and run `jobnet recover`")]
    Busy {
        job: String,
        pid: u32,
        state: JobState,
    },
    #[error("job {job} failed and every change was undone: {}; {released}", failure::joined(.failures))]
    RolledBack {
        job: String,
        failures: Vec<Failure>,
        released: String,
    },
    #[error("job {job} needs attention: {}; its journal is kept: fix the device(s), then run `jobnet down --job {job}` (see `jobnet status --job {job}`; docs/operations.md for a moved or replaced switch and `down --force`)", attention(.initial, .unwind))]
    NeedsAttention {
        job: String,
        /// What made `up` roll back (empty for `down`/`recover`).
        initial: Vec<Failure>,
        /// Every undo that failed.
        unwind: Vec<Failure>,
    },
    /// The state file could not be written any more while `up` ran (deleted, replaced, disk
    /// full): everything this process applied was undone from what it held in memory, and the
    /// message says what could not be undone and what the file still records.
    #[error("job {job}: {source}; jobnet stopped sending and undid, from memory, what it had applied{}; then run `jobnet recover` (it finds the devices already clean and tidies the record) once the state file is writable again", lost_rest(.initial, .unwind))]
    StateLost {
        job: String,
        initial: Vec<Failure>,
        unwind: Vec<Failure>,
        #[source]
        source: Box<StateError>,
    },
    /// The job's journal cannot be read: nothing was sent, the job is kept (`failed-rollback`).
    #[error("job {job} needs attention: nothing was undone, because {source}")]
    CorruptJournal {
        job: String,
        #[source]
        source: StateError,
    },
}

/// Why `up` sends nothing to a gateway whose profile is not verified, and what to do.
pub(crate) fn unverified(profile: &str, gateway: &str, manual: &str) -> String {
    format!("driver profile {profile} of gateway {gateway} is not verified against its vendor manual ({manual}); jobnet does not send unverified commands to devices: check the commands `jobnet plan` shows, then put a copy with `verified: true` in the site's driver directory")
}

fn lost_rest(initial: &[Failure], unwind: &[Failure]) -> String {
    let initial: Vec<String> = initial
        .iter()
        .filter(|f| !matches!(f, Failure::State(_)))
        .map(|f| f.to_string())
        .collect();
    let mut out = String::new();
    if !initial.is_empty() {
        out.push_str(&format!(" (it had failed too: {})", initial.join("; ")));
    }
    if unwind.is_empty() {
        out.push_str("; nothing is left on the devices");
    } else {
        out.push_str(&format!(
            "; NOT undone, fix by hand: {}",
            unwind
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    out
}

fn attention(initial: &[Failure], unwind: &[Failure]) -> String {
    let mut parts: Vec<String> = initial
        .iter()
        .map(|f| format!("applying failed: {f}"))
        .collect();
    parts.extend(unwind.iter().map(|f| match f {
        Failure::Earlier(_) | Failure::Interrupting(_) => f.to_string(),
        f => format!("undo failed: {f}"),
    }));
    parts.join("; ")
}

impl ApplyError {
    /// The job the error is about, when it names one.
    pub fn job(&self) -> Option<&str> {
        match self {
            ApplyError::Busy { job, .. }
            | ApplyError::RolledBack { job, .. }
            | ApplyError::NeedsAttention { job, .. }
            | ApplyError::StateLost { job, .. }
            | ApplyError::CorruptJournal { job, .. } => Some(job),
            _ => None,
        }
    }

    /// Exit codes of docs/cli.md.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApplyError::Plan(e) => e.exit_code() as u8,
            ApplyError::State(_)
            | ApplyError::Environment(_)
            | ApplyError::UnreadablePartitions { .. } => 1,
            ApplyError::Invalid(_)
            | ApplyError::Busy { .. }
            | ApplyError::UnverifiedGateway { .. }
            | ApplyError::NoReload { .. }
            | ApplyError::AlreadyUp { .. }
            | ApplyError::NoLogin { .. } => 2,
            ApplyError::RolledBack { .. } => 4,
            ApplyError::NeedsAttention { .. }
            | ApplyError::StateLost { .. }
            | ApplyError::CorruptJournal { .. } => 5,
        }
    }
}

impl Hinted for ApplyError {
    fn hints(&self) -> Vec<Hint> {
        let failures = |fs: &[Failure]| hint::joined(fs.iter().map(Hinted::hints));
        match self {
            ApplyError::Plan(e) => e.hints(),
            ApplyError::State(e) => e.hints(),
            ApplyError::UnverifiedGateway { .. } => vec![Hint::DriversDir],
            ApplyError::NoReload { .. } => vec![Hint::PKeyNone],
            ApplyError::UnreadablePartitions { .. } => vec![Hint::PartitionsConf],
            ApplyError::AlreadyUp { hint, .. } => hint.iter().copied().collect(),
            ApplyError::NoLogin { .. } => vec![Hint::CredentialsPath],
            ApplyError::RolledBack { failures: f, .. } => failures(f),
            ApplyError::NeedsAttention {
                initial, unwind, ..
            } => hint::joined([failures(initial), failures(unwind)]),
            ApplyError::StateLost {
                initial,
                unwind,
                source,
                ..
            } => hint::joined([source.hints(), failures(initial), failures(unwind)]),
            ApplyError::Invalid(_)
            | ApplyError::Environment(_)
            | ApplyError::Busy { .. }
            | ApplyError::CorruptJournal { .. } => vec![],
        }
    }
}

/// What `up` did.
#[derive(Clone, Debug, Serialize)]
pub struct UpReport {
    pub job: String,
    pub state: JobState,
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

/// How `down` ended for one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownResult {
    Down,
    AlreadyDown,
    NotFound,
}

/// What `down` or `recover` did for one job.
#[derive(Clone, Debug, Serialize)]
pub struct DownReport {
    pub job: String,
    pub result: DownResult,
    pub undone: usize,
    pub devices: Vec<String>,
    /// What `down --force` gave up on (device: lines that would undo it); also kept in the state
    /// (`jobnet status --abandoned`).
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

/// `up --dry-run` and `plan`: the plan `up` would carry out now, against the allocations in the
/// state (`None`: no state yet) and the current partitions.conf. Touches nothing.
pub fn dry_run(
    store: Option<&dyn StateStore>,
    drivers: &DriverSet,
    inp: &UpInputs,
    req: &JobRequest,
) -> Result<Plan, ApplyError> {
    let (req, settings, mut warnings) = lifecycle::normalise(drivers, inp, req, true)?;
    let rows = match store {
        Some(s) => s.jobs()?,
        None => Vec::new(),
    };
    let alive = |r: &JobRow| store.is_some_and(|s| r.owner.is_some_and(|o| s.alive(&o)));
    let own = rows.iter().find(|r| r.job == req.job).cloned();
    if lifecycle::existing(own, &req, &alive)?.is_some() {
        warnings.push(format!(
            "job {} is already up as asked: `jobnet up` would send nothing",
            req.job
        ));
    }
    let conf = lifecycle::current_conf(&settings, &req)?;
    let held = lifecycle::held_of(&rows, &BTreeMap::new());
    let mut plan = lifecycle::plan_for(drivers, inp, &req, &settings, &held, conf.as_deref())?;
    // The planner's "profile not verified" note says less than the refusal above: keep one.
    plan.warnings.retain(|w| {
        let profile = w
            .strip_prefix("driver profile ")
            .and_then(|r| r.split_whitespace().next());
        !profile.is_some_and(|p| {
            warnings
                .iter()
                .any(|x| x.contains(&format!("driver profile {p} of ")))
        })
    });
    warnings.append(&mut plan.warnings);
    plan.warnings = warnings;
    Ok(plan)
}

/// Brings a job's network up; see the module documentation.
pub fn up(env: &Env, inp: &UpInputs, req: &JobRequest) -> Result<UpReport, ApplyError> {
    let started = Instant::now();
    let (req, settings, mut warnings) = lifecycle::normalise(env.drivers, inp, req, false)?;
    let job = req.job.to_string();
    warnings.extend(unwind_orphans(env, &req.job, &req.nodes)?);
    let mut foreign: BTreeMap<u16, String> = BTreeMap::new();
    for _attempt in 0..16 {
        let plan = match allocate(env, inp, &req, &settings, &foreign)? {
            Err(row) => {
                return Ok(UpReport {
                    job,
                    state: row.state,
                    vlan: row.vlan,
                    pkey: row.pkey,
                    nodes: row.nodes,
                    devices: vec![],
                    unchanged: true,
                    seconds: started.elapsed().as_secs_f64(),
                    warnings,
                })
            }
            Ok(plan) => plan,
        };
        let released = lifecycle::released(&plan);
        // Before any device is contacted: every device of the plan can be logged in to.
        if let Err(why) = prepare::preflight(env, inp.topology, &plan) {
            let _ = env.store.release(&req.job, &format!("refused: {why}"));
            return Err(ApplyError::NoLogin {
                job: job.to_string(),
                why,
            });
        }
        match prepare::prepare(env, inp.topology, &plan) {
            prepare::Phase1::Foreign(devices) => {
                let names: Vec<&str> = devices.iter().map(|(d, _)| d.as_str()).collect();
                let vlan = plan.vlan.map_or("-".into(), |v| v.to_string());
                env.store.release(
                    &req.job,
                    &format!("VLAN {vlan} exists on {}", names.join(", ")),
                )?;
                // Skip every VLAN those devices already have, not only the one just tried.
                for (device, vlans) in &devices {
                    for v in vlans {
                        foreign.entry(*v).or_insert_with(|| device.clone());
                    }
                }
                continue;
            }
            prepare::Phase1::Failed(failures) => {
                let failures = with_signal(env, failures);
                let message = format!("rolled back: {}", failure::joined(&failures));
                env.store.release(&req.job, &message)?;
                return Err(ApplyError::RolledBack {
                    job,
                    failures,
                    released,
                });
            }
            prepare::Phase1::Ready(devices, notes) => {
                warnings.extend(plan.warnings.iter().cloned());
                warnings.extend(notes);
                // A disk too full for this job's journal fails before any change.
                let ops: usize = devices.iter().map(|d| d.ops.len()).sum::<usize>()
                    + usize::from(plan.infiniband.is_some());
                if let Err(e) = env.store.reserve(ops) {
                    let message = format!("rolled back: {e}");
                    let _ = env.store.release(&req.job, &message);
                    return Err(ApplyError::State(e));
                }
                let devices = apply_ready(env, &req.job, &plan, &settings, devices);
                let reports = devices
                    .map_err(|failures| roll_back(env, &req.job, failures, released.clone()))?;
                // The record that it is up must land too, or everything is undone.
                if let Err(e) = env.store.set_state(&req.job, JobState::Up, "") {
                    return Err(roll_back(env, &req.job, vec![e.into()], released));
                }
                return Ok(UpReport {
                    job,
                    state: JobState::Up,
                    vlan: plan.vlan,
                    pkey: plan.pkey,
                    nodes: plan.nodes,
                    devices: reports,
                    unchanged: false,
                    seconds: started.elapsed().as_secs_f64(),
                    warnings,
                });
            }
        }
    }
    Err(ApplyError::Invalid(format!(
        "job {job}: every VLAN tried already exists on the switches ({}); clean them up or widen vlan_pool",
        foreign.iter().map(|(v, d)| format!("{v} on {d}")).collect::<Vec<_>>().join(", ")
    )))
}

/// Phase 2 on every device, then the partition: the devices changed, or every failure.
fn apply_ready(
    env: &Env,
    job: &crate::base::types::JobId,
    plan: &Plan,
    settings: &Option<crate::topology::IbApply>,
    devices: Vec<prepare::Prepared>,
) -> Result<Vec<DeviceReport>, Vec<Failure>> {
    let mut reports: Vec<DeviceReport> = devices
        .iter()
        .map(|d| DeviceReport {
            name: d.record.name.clone(),
            operations: d.ops.len(),
        })
        .collect();
    let mut failures = device::apply_all(env, job, devices);
    if failures.is_empty() {
        // A signal during the Ethernet part: unwind before touching OpenSM.
        if let Err(i) = env.interrupt.check() {
            failures.push(Failure::Interrupted(i));
        }
    }
    if failures.is_empty() {
        if let (Some(ibp), Some(s)) = (&plan.infiniband, settings) {
            match partition::apply(env, job, s, ibp) {
                Ok(()) => reports.push(DeviceReport {
                    name: format!("opensm ({})", s.partitions_conf.display()),
                    operations: 1,
                }),
                Err(e) => failures.push(e),
            }
        }
    }
    if failures.is_empty() {
        Ok(reports)
    } else {
        Err(failures)
    }
}

/// Records of jobs other than `job` on `nodes` that a process left half-done and died (its
/// owner is gone: a killed prolog, a slurmctld that forgot the job): they must not block `job`.
/// Each is finished from its journal as `jobnet recover` would, and said in a line. `up` does
/// this first; a hook does it before `up` too, so that its log has the lines even when `up`
/// then fails (an error carries no warnings).
pub fn unwind_orphans(
    env: &Env,
    job: &crate::base::types::JobId,
    nodes: &[String],
) -> Result<Vec<String>, ApplyError> {
    let wanted: std::collections::BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
    let mut said = Vec::new();
    for row in env.store.jobs()? {
        let dead = row.owner.is_some_and(|o| !env.store.alive(&o));
        let shares = row.nodes.iter().any(|n| wanted.contains(n.as_str()));
        if row.job == *job || !row.state.in_progress() || !dead || !shares {
            continue;
        }
        if let Claim::Claimed(_) = env.store.claim(&row.job, ClaimFor::Recover)? {
            let pid = row.owner.map_or(0, |o| o.pid);
            match finish_teardown(env, &row.job, false) {
                Ok(r) => said.push(format!(
                    "job {} was left {} on these nodes by process {pid}, which is gone: undone first from its journal ({} operation(s))",
                    row.job, row.state, r.undone
                )),
                Err(e) => said.push(format!(
                    "job {} was left {} on these nodes by process {pid}, which is gone; undoing it failed: {e}",
                    row.job, row.state
                )),
            }
        }
    }
    Ok(said)
}

/// The failures, led by the signal when one stopped the work (device waits it cut short say
/// only "abandoned").
fn with_signal(env: &Env, mut failures: Vec<Failure>) -> Vec<Failure> {
    if let Err(i) = env.interrupt.check() {
        if !failures
            .iter()
            .any(|f| matches!(f, Failure::Interrupted(_)))
        {
            failures.insert(0, Failure::Interrupted(i));
        }
    }
    failures
}

/// Unwinds a failed `up`: rolled back, or needs attention when undoing fails too.
fn roll_back(
    env: &Env,
    job: &crate::base::types::JobId,
    failures: Vec<Failure>,
    released: String,
) -> ApplyError {
    let failures = with_signal(env, failures);
    // From here on a signal no longer cuts device commands short: the undo must finish.
    crate::base::deadline::finish_work_after_signals();
    let message = failure::joined(&failures);
    // A state file that cannot be written any more (deleted, disk full) does not stop the
    // rollback: the store keeps what this process journaled in memory too, and the undo runs
    // from that; the error then says exactly what is left.
    let lost = env
        .store
        .set_state(job, JobState::RollingBack, &message)
        .err();
    let unwind = device::unwind(env, job);
    let lost = lost.or_else(|| {
        if unwind.is_empty() {
            env.store
                .release(job, &format!("rolled back: {message}"))
                .err()
        } else {
            None
        }
    });
    if let Some(source) = lost {
        return ApplyError::StateLost {
            job: job.to_string(),
            initial: failures,
            unwind,
            source: Box::new(source),
        };
    }
    if unwind.is_empty() {
        return ApplyError::RolledBack {
            job: job.to_string(),
            failures,
            released,
        };
    }
    let err = ApplyError::NeedsAttention {
        job: job.to_string(),
        initial: failures,
        unwind,
    };
    if let Err(source) = env
        .store
        .set_state(job, JobState::FailedRollback, &err.to_string())
    {
        let ApplyError::NeedsAttention {
            job,
            initial,
            unwind,
        } = err
        else {
            unreachable!("built above")
        };
        return ApplyError::StateLost {
            job,
            initial,
            unwind,
            source: Box::new(source),
        };
    }
    err
}

/// Allocates and plans in one atomic step of the store: the plan, or the job's row when it is
/// already up as asked.
fn allocate(
    env: &Env,
    inp: &UpInputs,
    req: &JobRequest,
    settings: &Option<crate::topology::IbApply>,
    foreign: &BTreeMap<u16, String>,
) -> Result<Result<Plan, JobRow>, ApplyError> {
    let conf = lifecycle::current_conf(settings, req)?;
    let mut planned: Option<Plan> = None;
    let mut unchanged: Option<JobRow> = None;
    let alive = |r: &JobRow| r.owner.is_some_and(|o| env.store.alive(&o));
    let decided = env.store.begin(&req.job, &mut |snap| {
        if let Some(row) = lifecycle::existing(snap.job.clone(), req, &alive)? {
            unchanged = Some(row);
            return Ok(Decision::Keep);
        }
        lifecycle::access_ports_free(inp, req, &snap.active)?;
        let held = lifecycle::held_of(&snap.active, foreign);
        let plan = lifecycle::plan_for(env.drivers, inp, req, settings, &held, conf.as_deref())
            .map_err(ApplyError::Plan)?;
        let new = NewJob {
            job: req.job.clone(),
            vlan: plan.vlan,
            pkey: plan.pkey,
            nodes: plan.nodes.clone(),
            gateway: req.gateway.clone(),
            topology: inp.topology_path.to_string(),
        };
        planned = Some(plan);
        Ok(Decision::Start(new))
    });
    match decided {
        Ok(Decision::Keep) => Ok(Err(unchanged.expect("set with Keep"))),
        Ok(Decision::Start(_)) => Ok(Ok(planned.expect("set with Start"))),
        Err(BeginError::State(e)) => Err(e.into()),
        Err(BeginError::Refused(r)) => Err(match r.downcast::<ApplyError>() {
            Ok(e) => *e,
            Err(other) => ApplyError::Invalid(other.to_string()),
        }),
    }
}

/// Takes a job down (also a partial or failed one). Nothing to do is success. With `force`,
/// operations whose undo still fails are recorded as abandoned and the job is released anyway.
pub fn down(
    env: &Env,
    job: &crate::base::types::JobId,
    force: bool,
) -> Result<DownReport, ApplyError> {
    let deadline = Instant::now() + env.wait;
    loop {
        let nothing = |result| DownReport {
            job: job.to_string(),
            result,
            undone: 0,
            devices: vec![],
            abandoned: vec![],
        };
        match env.store.claim(job, ClaimFor::Down)? {
            Claim::Claimed(_) => return finish_teardown(env, job, force),
            Claim::NotFound => return Ok(nothing(DownResult::NotFound)),
            Claim::AlreadyDown => return Ok(nothing(DownResult::AlreadyDown)),
            Claim::Busy(row) if Instant::now() >= deadline => {
                return Err(ApplyError::Busy {
                    job: job.to_string(),
                    pid: row.owner.map_or(0, |o| o.pid),
                    state: row.state,
                })
            }
            Claim::Busy(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn finish_teardown(
    env: &Env,
    job: &crate::base::types::JobId,
    force: bool,
) -> Result<DownReport, ApplyError> {
    let rows = match env.store.journal(job) {
        Ok(rows) => rows,
        // A damaged journal is never read as "nothing to undo": nothing is sent, the job is
        // kept for an administrator, and the error names the row.
        Err(source @ StateError::Corrupt { .. }) => {
            let err = ApplyError::CorruptJournal {
                job: job.to_string(),
                source,
            };
            env.store
                .set_state(job, JobState::FailedRollback, &err.to_string())?;
            return Err(err);
        }
        Err(e) => return Err(e.into()),
    };
    let pending: Vec<_> = rows.iter().filter(|r| r.status.pending()).collect();
    let errors = device::unwind(env, job);
    let mut abandoned = Vec::new();
    let mut left_ids = BTreeSet::new();
    if !errors.is_empty() && force {
        let left: Vec<_> = env
            .store
            .journal(job)?
            .into_iter()
            .filter(|r| r.status.pending())
            .collect();
        left_ids = left.iter().map(|r| r.id).collect();
        let reason = format!(
            "abandoned by `jobnet down --force`: {}",
            failure::joined(&errors)
        );
        env.store.abandon(&left, &reason)?;
        abandoned = left
            .iter()
            .map(|r| {
                format!(
                    "{} ({}): {}",
                    r.device.name,
                    r.device.address,
                    r.undo.join(" / ")
                )
            })
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
            job: job.to_string(),
            result: DownResult::Down,
            undone: pending.len() - abandoned.len(),
            // Where this run undid something: not the devices an earlier run already cleaned.
            devices: pending
                .iter()
                .filter(|r| !left_ids.contains(&r.id))
                .map(|r| r.device.name.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            abandoned,
        })
    } else {
        let err = ApplyError::NeedsAttention {
            job: job.to_string(),
            initial: vec![],
            unwind: errors,
        };
        env.store
            .set_state(job, JobState::FailedRollback, &err.to_string())?;
        Err(err)
    }
}

/// Finishes every job whose process died mid-change: undoes what its journal shows and releases
/// it. Jobs whose process still runs are left alone.
pub fn recover(env: &Env) -> Result<Vec<Result<DownReport, ApplyError>>, ApplyError> {
    let mut out = Vec::new();
    for row in env.store.jobs_each()? {
        let row = match row {
            Ok(r) => r,
            // A damaged row is this job's problem, not every other job's.
            Err(e) => {
                out.push(Err(e.into()));
                continue;
            }
        };
        if !row.state.in_progress() {
            continue;
        }
        if let Claim::Claimed(_) = env.store.claim(&row.job, ClaimFor::Recover)? {
            out.push(finish_teardown(env, &row.job, false));
        }
    }
    Ok(out)
}
