//! Several jobs' operations on one device as one session's stream, as jobnetd sends them when
//! jobs start at once (a Slurm job-array burst on a shared spine).
//!
//! Each job hands over its device's decided operations (a [`Submission`]); a batch of them goes
//! out on one session: configuration mode entered once, every job's VLANs created, then the
//! port operations — where the dialect takes a VLAN list (`vlan_lists:`), the same operation of
//! several jobs on one port as one line (`switchport trunk allowed vlan add 101,102,107`),
//! otherwise each job's own lines — then configuration mode left and the configuration saved
//! once. Every job learns exactly what happened to each of its operations ([`Outcome`]):
//! - a list line the device refuses is sent again per job, so the refusal lands on the job
//!   whose VLAN the device refused, with the device's own answer to that job's own line;
//! - a job's operation that fails stops that job's remaining operations in the batch (they are
//!   not sent); the other jobs go on;
//! - a lost session fails the operations whose lines were in flight (outcome unknown: their
//!   jobs undo them); the next lines go over a new session.
//!
//! What is not merged: dialects with a commit (one commit would fail every job at once), an
//! atomic `batch:` (Open vSwitch) and ranged blocks (`range:`): see [`mergeable`].

use super::cli::{DeviceDriver, Rendered};
use super::ops::render_op;
use super::ops::Op;
use super::transport::DeviceError;
use super::{OpKind, Profile};
use crate::base::types::VlanId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One job's decided operations on one device.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    /// The job (jobnetd lets an undo of the job on the device wait for it).
    #[serde(default)]
    pub job: String,
    /// The job's VLAN name (`{name}` in templates).
    pub vlan_name: String,
    pub ops: Vec<Op>,
    /// Save the configuration after the batch (`session.save`).
    pub save: bool,
}

/// What happened to one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The device took it. `sent`: the lines it went in when they were shared with other jobs'
    /// operations (a VLAN list); empty when it went as its own lines.
    Done {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sent: Vec<String>,
    },
    /// The device refused it, or its outcome is unknown (a lost session): its undo is due.
    Failed { error: DeviceError },
    /// Never sent (an earlier operation of the job failed, or configuration mode could not be
    /// entered).
    NotSent { why: String },
}

/// What a batch did for one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    /// One per operation, in the submission's order.
    pub outcomes: Vec<Outcome>,
    /// The device error that fails the job here: one of its operations', or entering or leaving
    /// configuration mode, or saving.
    pub error: Option<DeviceError>,
    /// Notes to show (a refused `end`).
    pub notes: Vec<String>,
    /// How many jobs' operations shared this session's stream (1: this job's alone).
    pub jobs: usize,
}

/// Whether jobnetd merges this dialect's operations with other jobs': a line-by-line CLI whose
/// lines take effect as they are entered (no commit, no atomic batch, no ranged blocks).
pub fn mergeable(profile: &Profile) -> bool {
    profile.commit.is_empty()
        && profile.batch.is_none()
        && profile.range.is_none()
        && profile.driver == super::DriverKind::Cli
}

/// The operation kind and port under which `op` may share a list line with other jobs'.
fn list_key<'a>(profile: &Profile, op: &'a Op) -> Option<(OpKind, &'a str)> {
    let kind = op.template();
    let lists = profile.vlan_lists.as_ref()?;
    // A template with the job's VLAN name cannot carry another job's VLAN.
    let named = profile
        .ops
        .get(&kind)
        .is_some_and(|l| l.iter().any(|t| t.contains("{name}")));
    (lists.ops.contains(&kind) && !named).then_some(())?;
    Some((kind, op.port()?))
}

fn vlan_of(op: &Op) -> Option<VlanId> {
    match op {
        Op::TrunkAdd { vlan, .. } | Op::TaggedAdd { vlan, .. } => Some(*vlan),
        _ => None,
    }
}

/// Runs `subs` on `driver` (a session to the device, not yet in configuration mode) as one
/// stream; one [`Merged`] per submission, in order.
pub fn run(driver: &mut dyn DeviceDriver, profile: &Profile, subs: &[Submission]) -> Vec<Merged> {
    let jobs = subs.len();
    let mut out: Vec<Merged> = subs
        .iter()
        .map(|s| Merged {
            outcomes: vec![Outcome::NotSent { why: String::new() }; s.ops.len()],
            error: None,
            notes: Vec::new(),
            jobs,
        })
        .collect();
    if let Err(e) = driver.begin() {
        for m in &mut out {
            for o in &mut m.outcomes {
                *o = Outcome::NotSent {
                    why: format!("configuration mode could not be entered: {e}"),
                };
            }
            m.error = Some(e.clone());
        }
        return out;
    }
    // Units, in the order they go: every job's VLANs first (ports need them), then the other
    // operations, those sharing an operation kind and port as one unit at the first's place.
    let mut units: Vec<Vec<(usize, usize)>> = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        for (k, op) in s.ops.iter().enumerate() {
            if matches!(op, Op::CreateVlan { .. }) {
                units.push(vec![(i, k)]);
            }
        }
    }
    let mut at: HashMap<(OpKind, &str), usize> = HashMap::new();
    for (i, s) in subs.iter().enumerate() {
        for (k, op) in s.ops.iter().enumerate() {
            if matches!(op, Op::CreateVlan { .. }) {
                continue;
            }
            match list_key(profile, op) {
                Some(key) if at.contains_key(&key) => units[at[&key]].push((i, k)),
                Some(key) => {
                    at.insert(key, units.len());
                    units.push(vec![(i, k)]);
                }
                None => units.push(vec![(i, k)]),
            }
        }
    }
    let max = profile.vlan_lists.as_ref().map_or(1, |l| l.max);
    for unit in units {
        let live: Vec<(usize, usize)> = unit
            .into_iter()
            .filter(|&(i, k)| {
                if let Some(e) = &out[i].error {
                    out[i].outcomes[k] = Outcome::NotSent {
                        why: format!("not sent: an earlier operation of the job failed ({e})"),
                    };
                }
                out[i].error.is_none()
            })
            .collect();
        for chunk in live.chunks(max) {
            send_unit(driver, profile, subs, chunk, &mut out);
        }
    }
    let save = subs.iter().any(|s| s.save);
    match driver.finish(save, false) {
        Ok(notes) => out.iter_mut().for_each(|m| m.notes.extend(notes.clone())),
        Err(e) => out
            .iter_mut()
            .filter(|m| m.error.is_none())
            .for_each(|m| m.error = Some(e.clone())),
    }
    out
}

/// One unit: one operation, or the same operation of several jobs on one port as list lines.
fn send_unit(
    driver: &mut dyn DeviceDriver,
    profile: &Profile,
    subs: &[Submission],
    unit: &[(usize, usize)],
    out: &mut [Merged],
) {
    if let [(i, k), _, ..] = unit {
        let op = &subs[*i].ops[*k];
        let vlans: Option<Vec<VlanId>> = unit
            .iter()
            .map(|&(i, k)| vlan_of(&subs[i].ops[k]))
            .collect();
        let lines = match (list_key(profile, op), vlans) {
            (Some((kind, port)), Some(vlans)) => {
                profile.render_list(kind, port, &subs[*i].vlan_name, &vlans)
            }
            _ => None,
        };
        if let Some(lines) = lines {
            let rendered = Rendered {
                apply: lines.clone(),
                undo: Vec::new(),
            };
            match driver.apply(op, &rendered) {
                Ok(()) => {
                    for &(i, k) in unit {
                        out[i].outcomes[k] = Outcome::Done {
                            sent: lines.clone(),
                        };
                    }
                    return;
                }
                // Which job's VLAN the device refused is not known: each again on its own
                // (adding or removing its own VLAN again is harmless where it applied).
                Err(DeviceError::Rejected { .. }) => {}
                Err(e) => {
                    for &(i, k) in unit {
                        out[i].outcomes[k] = Outcome::Failed { error: e.clone() };
                        out[i].error = Some(e.clone());
                    }
                    return;
                }
            }
        }
    }
    for &(i, k) in unit {
        if out[i].error.is_some() {
            continue;
        }
        let op = &subs[i].ops[k];
        let (apply, undo) = render_op(profile, &subs[i].vlan_name, op);
        match driver.apply(op, &Rendered { apply, undo }) {
            Ok(()) => out[i].outcomes[k] = Outcome::Done { sent: Vec::new() },
            Err(e) => {
                out[i].outcomes[k] = Outcome::Failed { error: e.clone() };
                out[i].error = Some(e);
            }
        }
    }
}
