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
//! Where the dialect has ranged blocks (`range:`), each job's own port operations (those no
//! other job shares a list line with) go as that job's ranged blocks, as without jobnetd: a
//! refused ranged line is sent again operation by operation, so the refusal names the exact
//! port, and that job's later blocks go one by one.
//!
//! Undo goes the same way (a burst of epilogs when a job array ends): a submission marked
//! `undo` names the operations to take back, newest first; after every applying job's lines,
//! the same removal of several jobs on one port goes as one list line (`switchport trunk
//! allowed vlan remove 101,102`), then each job's other undo lines in its order (VLANs deleted
//! last). An undo that fails does not stop the job's other undos (as when a job undoes on its
//! own session): each outcome is reported, and the job journals it.
//!
//! What is not merged: dialects with a commit (one commit would fail every job at once) and an
//! atomic `batch:` (Open vSwitch): see [`mergeable`].

use super::cli::{DeviceDriver, Rendered, UndoRecord};
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
    /// Undo these operations (a `down`, `recover` or rollback; `ops` newest first) instead of
    /// applying them. Their lines are the profile's undo of each operation, rendered by
    /// jobnetd from the typed operation (the job sends no undo lines); the job checks that they
    /// are the lines it journaled before it hands an undo over ([`undo_lines`]).
    #[serde(default)]
    pub undo: bool,
}

/// The VLAN name an undo hand-over carries (an undo line never names the VLAN in the shipped
/// dialects; where a site's does, the re-rendered lines differ from the journal's and the job
/// undoes on its own session instead).
pub const UNDO_NAME: &str = "jobnet";

/// The lines that undo `op` in `profile`, as a merged undo sends them.
pub fn undo_lines(profile: &Profile, op: &Op) -> Vec<String> {
    render_op(profile, UNDO_NAME, op).1
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
/// lines take effect as they are entered (no commit, no atomic batch).
pub fn mergeable(profile: &Profile) -> bool {
    profile.commit.is_empty() && profile.batch.is_none() && profile.driver == super::DriverKind::Cli
}

/// Whether a submission's text may go into a stream shared with other jobs: its VLAN name and
/// port names are plain words (letters, digits and `-_.` for a name; also `/:` for a port), so
/// no job's values can add a line or change the context of another job's lines. The values come
/// from a validated topology, but jobnetd checks what reaches it over its socket again.
pub fn check(profile: &Profile, sub: &Submission) -> Result<(), String> {
    let word = |s: &str, extra: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c) || extra.contains(c))
    };
    if !word(&sub.vlan_name, "") || sub.vlan_name.len() > profile.vlan_name_max.max(1) {
        return Err(format!(
            "VLAN name `{}` is not a plain name of at most {} characters",
            sub.vlan_name.escape_debug(),
            profile.vlan_name_max
        ));
    }
    for op in &sub.ops {
        if let Some(port) = op.port() {
            if !word(port, "/:") {
                return Err(format!("port `{}` is not a port name", port.escape_debug()));
            }
        }
    }
    Ok(())
}

/// The operation kind and port under which `op` (or its undo) may share a list line with other
/// jobs'.
fn list_key<'a>(profile: &Profile, op: &'a Op, undo: bool) -> Option<(OpKind, &'a str)> {
    let kind = if undo {
        op.inverse_template()
    } else {
        op.template()
    };
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

/// Operations (submission, operation) grouped by the list line they may share: the same
/// operation kind on the same port, in the order each group first appears.
#[derive(Default)]
struct Units<'a> {
    units: Vec<Vec<(usize, usize)>>,
    at: HashMap<(OpKind, &'a str), usize>,
}

impl<'a> Units<'a> {
    fn add(&mut self, key: (OpKind, &'a str), op: (usize, usize)) {
        match self.at.get(&key) {
            Some(&u) => self.units[u].push(op),
            None => {
                self.at.insert(key, self.units.len());
                self.units.push(vec![op]);
            }
        }
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
    // In the order they go: every job's VLANs first (ports need them); then the operations
    // that several jobs share as one list line (same operation kind and port); then each job's
    // other operations, in its own order, in ranged blocks where the dialect has them.
    let mut shared = Units::default();
    for (i, s) in subs.iter().enumerate().filter(|(_, s)| !s.undo) {
        for (k, op) in s.ops.iter().enumerate() {
            if matches!(op, Op::CreateVlan { .. }) {
                send_unit(driver, profile, subs, &[(i, k)], &mut out);
                continue;
            }
            if let Some(key) = list_key(profile, op, false) {
                shared.add(key, (i, k));
            }
        }
    }
    let shared = shared.units;
    let max = profile.vlan_lists.as_ref().map_or(1, |l| l.max);
    let mut own: Vec<Vec<usize>> = vec![Vec::new(); subs.len()];
    for unit in &shared {
        let live: Vec<(usize, usize)> = unit
            .iter()
            .copied()
            .filter(|&(i, _)| out[i].error.is_none())
            .collect();
        if live.len() < 2 {
            // Nobody to share a line with: it goes with its job's own operations.
            live.iter().for_each(|&(i, k)| own[i].push(k));
            continue;
        }
        for chunk in live.chunks(max) {
            send_unit(driver, profile, subs, chunk, &mut out);
        }
    }
    for (i, s) in subs.iter().enumerate().filter(|(_, s)| !s.undo) {
        for (k, op) in s.ops.iter().enumerate() {
            if !matches!(op, Op::CreateVlan { .. }) && list_key(profile, op, false).is_none() {
                own[i].push(k);
            }
        }
        own[i].sort_unstable();
        send_own(driver, profile, &subs[i], &own[i], &mut out[i]);
    }
    undo_all(driver, profile, subs, &mut out);
    // Operations never reached: their job failed before them.
    for m in &mut out {
        if let Some(e) = m.error.clone() {
            for o in &mut m.outcomes {
                if matches!(o, Outcome::NotSent { why } if why.is_empty()) {
                    *o = Outcome::NotSent {
                        why: format!("not sent: an earlier operation of the job failed ({e})"),
                    };
                }
            }
        }
    }
    let save = subs.iter().any(|s| s.save);
    // jobnetd's batches apply or undo, never both (its queue takes them apart): after an undo
    // an `end` whose answer never came is an error, after changes a note.
    let undoing = subs.iter().all(|s| s.undo);
    match driver.finish(save, undoing) {
        Ok(notes) => out.iter_mut().for_each(|m| m.notes.extend(notes.clone())),
        Err(e) => out
            .iter_mut()
            .filter(|m| m.error.is_none())
            .for_each(|m| m.error = Some(e.clone())),
    }
    out
}

/// One job's own operations `ks` (indexes into its submission), in ranged blocks where the
/// dialect has them: a refused ranged line is sent again operation by operation (the first
/// refused fails the job there), and the job's later blocks go one by one.
fn send_own(
    driver: &mut dyn DeviceDriver,
    profile: &Profile,
    sub: &Submission,
    ks: &[usize],
    out: &mut Merged,
) {
    let rendered: Vec<Rendered> = ks
        .iter()
        .map(|&k| {
            let (apply, undo) = render_op(profile, &sub.vlan_name, &sub.ops[k]);
            Rendered { apply, undo }
        })
        .collect();
    let view: Vec<(Option<&str>, &[String])> = ks
        .iter()
        .zip(&rendered)
        .map(|(&k, r)| (sub.ops[k].port(), r.apply.as_slice()))
        .collect();
    let mut one_by_one = false;
    let mut start = 0;
    for size in super::ops::blocks(profile, &view) {
        if out.error.is_some() {
            return;
        }
        let block = start..start + size;
        start += size;
        let lines = (!one_by_one)
            .then(|| super::ops::block_lines(profile, &view[block.clone()]))
            .flatten();
        if let Some(lines) = lines {
            let op = &sub.ops[ks[block.start]];
            let ranged = Rendered {
                apply: lines.clone(),
                undo: Vec::new(),
            };
            match driver.apply(op, &ranged) {
                Ok(()) => {
                    for j in block {
                        out.outcomes[ks[j]] = Outcome::Done {
                            sent: lines.clone(),
                        };
                    }
                    continue;
                }
                // Which members applied is not known: each again on its own.
                Err(DeviceError::Rejected { .. }) => one_by_one = true,
                Err(e) => {
                    for j in block {
                        out.outcomes[ks[j]] = Outcome::Failed { error: e.clone() };
                    }
                    out.error = Some(e);
                    return;
                }
            }
        }
        for j in block {
            if out.error.is_some() {
                return;
            }
            let k = ks[j];
            match driver.apply(&sub.ops[k], &rendered[j]) {
                Ok(()) => out.outcomes[k] = Outcome::Done { sent: Vec::new() },
                Err(e) => {
                    out.outcomes[k] = Outcome::Failed { error: e.clone() };
                    out.error = Some(e);
                }
            }
        }
    }
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
        let lines = match (list_key(profile, op, subs[*i].undo), vlans) {
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
            let sent = if subs[*i].undo {
                driver.undo(&UndoRecord { op, lines: &lines })
            } else {
                driver.apply(op, &rendered)
            };
            match sent {
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
                        if !subs[i].undo {
                            out[i].error = Some(e.clone());
                        }
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
        if subs[i].undo {
            undo_one(driver, profile, op, &mut out[i].outcomes[k]);
            continue;
        }
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

/// Sends one operation's undo on its own; a failure is its outcome and stops nothing else.
fn undo_one(driver: &mut dyn DeviceDriver, profile: &Profile, op: &Op, outcome: &mut Outcome) {
    let lines = undo_lines(profile, op);
    *outcome = match driver.undo(&UndoRecord { op, lines: &lines }) {
        Ok(()) => Outcome::Done { sent: Vec::new() },
        Err(error) => Outcome::Failed { error },
    };
}

/// The undo submissions of a batch: the same removal of several jobs on one port as list lines,
/// then each job's other undos in its order (newest first: its VLANs last).
fn undo_all(
    driver: &mut dyn DeviceDriver,
    profile: &Profile,
    subs: &[Submission],
    out: &mut [Merged],
) {
    let mut shared = Units::default();
    for (i, s) in subs.iter().enumerate().filter(|(_, s)| s.undo) {
        for (k, op) in s.ops.iter().enumerate() {
            if let Some(key) = list_key(profile, op, true) {
                shared.add(key, (i, k));
            }
        }
    }
    let shared = shared.units;
    let max = profile.vlan_lists.as_ref().map_or(1, |l| l.max);
    let mut listed = std::collections::HashSet::new();
    for unit in shared.iter().filter(|u| u.len() >= 2) {
        for chunk in unit.chunks(max) {
            send_unit(driver, profile, subs, chunk, out);
        }
        listed.extend(unit.iter().copied());
    }
    for (i, s) in subs.iter().enumerate().filter(|(_, s)| s.undo) {
        for (k, op) in s.ops.iter().enumerate() {
            if !listed.contains(&(i, k)) {
                undo_one(driver, profile, op, &mut out[i].outcomes[k]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only plain names reach a shared stream: a port or VLAN name that could add a line or
    /// change another job's context is refused.
    #[test]
    fn only_plain_names_reach_a_shared_stream() {
        let set = crate::drivers::DriverSet::builtin();
        let eos = set.get("arista-eos").unwrap();
        let vlan = VlanId::new(100).unwrap();
        let sub = |name: &str, port: &str| Submission {
            job: "1".into(),
            vlan_name: name.into(),
            ops: vec![Op::TrunkAdd {
                port: port.into(),
                vlan,
                peer: "x".into(),
            }],
            save: false,
            undo: false,
        };
        assert!(check(eos, &sub("jobnet-1", "Ethernet1/2")).is_ok());
        for (name, port) in [
            ("jobnet-1", "Ethernet1\nend"),
            ("jobnet-1", "Ethernet1 ; reload"),
            ("jobnet-1", ""),
            ("job net", "Ethernet1"),
            ("jobnet-1\rexit", "Ethernet1"),
            (&"x".repeat(40), "Ethernet1"),
        ] {
            assert!(check(eos, &sub(name, port)).is_err(), "{name:?} {port:?}");
        }
    }
}
