//! What `up` and its dry run share before any device is touched: the request as `up` will carry
//! it out (no partition without a `reload`; an unverified gateway refused), the partitions.conf it
//! plans against, what other jobs and devices hold, and what an existing record of the job means.
//! Both go through these same functions, which is what makes the dry run show what `up` does.

use super::ApplyError;
use crate::base::hint::Hint;
use crate::base::hostlist;
use crate::base::types::{PKey, VlanId};
use crate::drivers::DriverSet;
use crate::plan::{self, Choice, Held, Inputs, JobRequest, PKeyChoice, Plan, PlanError};
use crate::state::{JobRow, JobState};
use crate::topology::{IbApply, PortMode};
use std::collections::{BTreeMap, BTreeSet};

use super::UpInputs;

/// The request as `up` will carry it out, the InfiniBand settings it will use, and what to tell
/// the user about it. `dry` (the dry run) shows an unverified gateway's plan with a warning where
/// `up` refuses it.
pub(super) fn normalise(
    drivers: &DriverSet,
    inp: &UpInputs,
    req: &JobRequest,
    dry: bool,
) -> Result<(JobRequest, Option<IbApply>, Vec<String>), ApplyError> {
    let mut warnings = Vec::new();
    if let Some(g) = req.gateway.as_deref().and_then(|n| inp.topology.gateway(n)) {
        // Never send commands nobody has checked against the vendor's manual to a real device;
        // the dry run shows them, for exactly that check.
        if let Some(p) = drivers.get(&g.driver).filter(|p| !p.verified) {
            if !dry {
                return Err(ApplyError::UnverifiedGateway {
                    from: req.origin.gateway,
                    gateway: g.name.clone(),
                    profile: p.name.clone(),
                    manual: p.source.clone(),
                });
            }
            warnings.push(format!(
                "`jobnet up` refuses this job as it is: {}",
                super::unverified(&p.name, &g.name, &p.source)
            ));
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
            return Err(ApplyError::NoReload {
                from: req.origin.pkey,
            })
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
pub(super) fn current_conf(
    settings: &Option<IbApply>,
    req: &JobRequest,
) -> Result<Option<String>, ApplyError> {
    use crate::base::limits::{read_text_if_exists, PARTITIONS_CONF};
    match settings {
        Some(s) if req.pkey != PKeyChoice::None => {
            let path = crate::ib::partitions::file::resolve(&s.partitions_conf)
                .map_err(|e| ApplyError::Invalid(e.to_string()))?;
            read_text_if_exists(&path, PARTITIONS_CONF).map_err(|e| match e.exit_code() {
                1 => ApplyError::UnreadablePartitions {
                    reason: e.to_string(),
                },
                _ => ApplyError::Invalid(format!("partitions.conf: {e}")),
            })
        }
        _ => Ok(None),
    }
}

/// What other jobs (and VLANs found on devices) hold, as the planner needs it.
pub(super) fn held_of(rows: &[JobRow], foreign: &BTreeMap<u16, String>) -> Vec<Held> {
    let mut held: Vec<Held> = rows
        .iter()
        .filter(|r| r.state != JobState::Down)
        .map(|r| Held::job(r.job.clone(), r.vlan, r.pkey))
        .collect();
    held.extend(foreign.iter().filter_map(|(&v, device)| {
        VlanId::new(v.into())
            .ok()
            .map(|v| Held::on_device(device, v))
    }));
    held
}

/// The planner, fed the same way for `up` and its dry run.
pub(super) fn plan_for(
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

/// In access mode a node port belongs to one job at a time.
pub(super) fn access_ports_free(
    inp: &UpInputs,
    req: &JobRequest,
    active: &[JobRow],
) -> Result<(), ApplyError> {
    if inp.topology.node_port_mode() != PortMode::Access || req.vlan == Choice::None {
        return Ok(());
    }
    let wanted: BTreeSet<&str> = req.nodes.iter().map(String::as_str).collect();
    for other in active
        .iter()
        .filter(|o| o.vlan.is_some() && o.job != req.job)
    {
        let shared: Vec<&str> = other
            .nodes
            .iter()
            .map(String::as_str)
            .filter(|n| wanted.contains(n))
            .collect();
        if !shared.is_empty() {
            let nodes = hostlist::fold_short(&shared, 12);
            let o = &other.job;
            return Err(ApplyError::Invalid(match other.state {
                // Nothing runs there: undoing that job failed, and only an admin ends it.
                JobState::FailedRollback => format!(
                    "node(s) {nodes} still hold job {o}'s network, whose undo failed (failed-rollback) and node ports are in access mode (one job per port); see `jobnet status --job {o}`, fix the device it names, then `jobnet down --job {o}`"
                ),
                _ => format!(
                    "node(s) {nodes} belong to running job {o} and node ports are in access mode (one job per port); wait for that job to end"
                ),
            }));
        }
    }
    Ok(())
}

/// What an existing record of the job means for a new `up`: `Some(row)` when it is already up
/// as asked (nothing to do); an error when it is up otherwise, busy, or needs attention.
pub(super) fn existing(
    row: Option<JobRow>,
    req: &JobRequest,
    alive: &dyn Fn(&JobRow) -> bool,
) -> Result<Option<JobRow>, ApplyError> {
    let Some(row) = row else { return Ok(None) };
    let job = req.job.as_str();
    match row.state {
        JobState::Down => Ok(None),
        JobState::Up => up_as_asked(row, req).map(Some),
        JobState::FailedRollback => Err(ApplyError::NeedsAttention {
            job: job.into(),
            initial: vec![],
            unwind: vec![super::Failure::Earlier(row.message.clone())],
        }),
        state if alive(&row) => Err(ApplyError::Busy {
            job: job.into(),
            pid: row.owner.map_or(0, |o| o.pid),
            state,
        }),
        state => Err(ApplyError::NeedsAttention {
            job: job.into(),
            initial: vec![],
            unwind: vec![super::Failure::Interrupting(state)],
        }),
    }
}

/// The job is up: the same nodes, VLAN, PKey and gateway are "nothing to do", anything else is
/// refused with what the job has.
fn up_as_asked(row: JobRow, req: &JobRequest) -> Result<JobRow, ApplyError> {
    let job = req.job.as_str();
    let mut want = req.nodes.clone();
    want.sort();
    want.dedup();
    let mut have = row.nodes.clone();
    have.sort();
    if want != have {
        return Err(ApplyError::Invalid(format!(
            "job {job} is already up on {}; run `jobnet down --job {job}` first",
            hostlist::fold_short(&row.nodes, 12)
        )));
    }
    let differs = |has: String, asked: String, from: &'static str, hint: Option<Hint>| {
        Err(ApplyError::AlreadyUp {
            job: job.to_string(),
            has,
            asked,
            from,
            hint,
        })
    };
    let vlan_differs = match req.vlan {
        Choice::Fixed(v) => row.vlan != Some(v),
        Choice::None => row.vlan.is_some(),
        Choice::Auto => false,
    };
    let no_vlan = |v: Option<VlanId>| v.map_or("no VLAN".to_string(), |v| format!("VLAN {v}"));
    if vlan_differs {
        let asked = match req.vlan {
            Choice::Fixed(v) => Some(v),
            _ => None,
        };
        return differs(
            no_vlan(row.vlan),
            no_vlan(asked),
            req.origin.vlan,
            Some(Hint::VlanDefault),
        );
    }
    let pkey_differs = match req.pkey {
        PKeyChoice::Fixed(k) => row.pkey != Some(k),
        PKeyChoice::None => row.pkey.is_some(),
        _ => false,
    };
    let no_pkey = |k: Option<PKey>| k.map_or("no partition".to_string(), |k| format!("PKey {k}"));
    if pkey_differs {
        let asked = match req.pkey {
            PKeyChoice::Fixed(k) => Some(k),
            _ => None,
        };
        return differs(
            no_pkey(row.pkey),
            no_pkey(asked),
            req.origin.pkey,
            Some(Hint::PKeyDefault),
        );
    }
    let no_gateway =
        |g: Option<&str>| g.map_or("no gateway".to_string(), |g| format!("gateway {g}"));
    if row.gateway != req.gateway {
        return differs(
            no_gateway(row.gateway.as_deref()),
            no_gateway(req.gateway.as_deref()),
            req.origin.gateway,
            None,
        );
    }
    Ok(row)
}

/// What releasing the job frees, for messages.
pub(super) fn released(plan: &Plan) -> String {
    match (plan.vlan, plan.pkey) {
        (Some(v), Some(k)) => format!("VLAN {v} and PKey {k} released"),
        (Some(v), None) => format!("VLAN {v} released"),
        (None, Some(k)) => format!("PKey {k} released"),
        (None, None) => "nothing was allocated".into(),
    }
}
