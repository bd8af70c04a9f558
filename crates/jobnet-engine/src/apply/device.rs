//! Phase 2 of `up` (journaled operations per device, in parallel) and the undo that `up`'s
//! rollback, `down` and `recover` share.
//!
//! Per operation: journal the intent (the typed operation and its exact lines), apply it through
//! the device's driver, journal the result. Where the dialect carries several operations in one
//! block (one atomic command, one ranged interface block), per block: every operation's intent,
//! the block, every operation's result — each operation keeps its own journal row, lines and
//! undo (`apply_blocks` says what happens to a block the device refuses). Undo goes newest
//! first per device, all devices in parallel, keeps going past errors and returns them all; the
//! driver reopens a session that broke and sends the operation's undo again.
//!
//! Restricted ports (`open_ports: restrict`): undoing a job's tagged VLAN on a port that jobnet
//! restricted reads the port under its port lock; if only this job's VLAN (or none) is left, the
//! port gets every VLAN back and the record is dropped, otherwise only this job's VLAN is removed
//! and the last job to leave restores it.

use super::faults::Point;
use super::prepare::{record_of, Prepared};
use super::progress::Stage;
use super::{partition, workers, Env, Failure, PortProblem};
use crate::base::types::JobId;
use crate::drivers::cli::{self, DeviceDriver, Rendered, UndoRecord};
use crate::drivers::merge::{self, Outcome, Submission};
use crate::drivers::profile::read::Allowed;
use crate::drivers::transport::Target;
use crate::drivers::transport::{DeviceError, Unmerged};
use crate::plan::Op;
use crate::state::{JournalOp, JournalRow, JournalStatus};
use std::collections::BTreeMap;

/// Phase 2, in parallel: every device's operations, journaled. Returns the failures.
pub(super) fn apply_all(env: &Env, job: &JobId, devices: Vec<Prepared>) -> Vec<Failure> {
    env.progress.start(Stage::Apply, devices.len());
    let results = workers::each(
        devices,
        workers::MAX_WORKERS,
        |d| {
            let name = d.record.name.clone();
            let r = apply_device(env, job, d);
            env.progress.device(Stage::Apply, &name, r.is_ok());
            r
        },
        || Err(Failure::Panicked),
    );
    results.into_iter().filter_map(Result::err).collect()
}

fn apply_device(env: &Env, job: &JobId, mut d: Prepared) -> Result<(), Failure> {
    if d.merged {
        return apply_merged(env, job, d);
    }
    let device = d.record.name.clone();
    d.driver.begin()?;
    let blocks = d.driver.blocks(&d.ops);
    if blocks.iter().any(|&n| n > 1) {
        apply_blocks(env, job, &mut d, &blocks)?;
        d.driver.finish(env.save, false)?;
        return Ok(());
    }
    for (seq, op) in d.ops.iter().enumerate() {
        env.interrupt.check().map_err(Failure::Interrupted)?;
        let (id, rendered) = intend(env, job, &d, seq, op)?;
        let first = rendered.apply.first().map(String::as_str).unwrap_or("");
        let run = env
            .faults
            .hit(Point::Intent, &device, first)
            .and_then(|()| d.driver.apply(op, &rendered))
            .and_then(|()| env.faults.hit(Point::Done, &device, first));
        if let Err(e) = run {
            let _ = env
                .store
                .journal_set(id, JournalStatus::Failed, &e.to_string());
            return Err(e.into());
        }
        env.store.journal_set(id, JournalStatus::Done, "")?;
        if let Op::TaggedAdd {
            port,
            restricts: true,
            ..
        } = op
        {
            env.store.restrict(&device, port, "all")?;
        }
    }
    d.driver.finish(env.save, false)?;
    Ok(())
}

/// Journals `rows` failed, with `why`.
fn fail_rows(env: &Env, rows: &[(i64, Rendered)], why: &str) {
    for (id, _) in rows {
        let _ = env.store.journal_set(*id, JournalStatus::Failed, why);
    }
}

/// The `intent` failpoint of every journaled operation (before anything is sent); a hit fails
/// them all.
fn intent_faults(env: &Env, device: &str, rows: &[(i64, Rendered)]) -> Result<(), Failure> {
    let first = |r: &Rendered| r.apply.first().cloned().unwrap_or_default();
    if let Err(e) = rows
        .iter()
        .try_for_each(|(_, r)| env.faults.hit(Point::Intent, device, &first(r)))
    {
        let e = Failure::from(e);
        fail_rows(env, rows, &e.to_string());
        return Err(e);
    }
    Ok(())
}

/// Journals the intent of the device's `seq`-th operation (its lines and undo, as rendered).
fn intend(
    env: &Env,
    job: &JobId,
    d: &Prepared,
    seq: usize,
    op: &Op,
) -> Result<(i64, Rendered), Failure> {
    let rendered = d.driver.render(op);
    let id = env.store.journal_intent(
        job,
        &d.record,
        seq,
        &JournalOp::Device(op.clone()),
        &rendered.apply,
        &rendered.undo,
    )?;
    Ok((id, rendered))
}

/// Journals the intents of the device's operations `ops`, the first its `first_seq`-th, in one
/// write of the store (see [`intend`]).
fn intend_all(
    env: &Env,
    job: &JobId,
    d: &Prepared,
    first_seq: usize,
    ops: &[Op],
) -> Result<Vec<(i64, Rendered)>, Failure> {
    let rendered: Vec<Rendered> = ops.iter().map(|op| d.driver.render(op)).collect();
    let items: Vec<(JournalOp, Vec<String>, Vec<String>)> = ops
        .iter()
        .zip(&rendered)
        .map(|(op, r)| {
            (
                JournalOp::Device(op.clone()),
                r.apply.clone(),
                r.undo.clone(),
            )
        })
        .collect();
    let ids = env
        .store
        .journal_intents(job, &d.record, first_seq, &items)?;
    Ok(ids.into_iter().zip(rendered).collect())
}

/// A device whose operations jobnetd sends, merged with other jobs' on the same device
/// ([`crate::drivers::merge`]). Every operation's intent is journaled (its own lines and undo),
/// the operations are handed over, and each is journaled as jobnetd reports it: done (with the
/// list line it shared, if any), failed with the device's answer, or not sent. A lost answer
/// (jobnetd died, the wait ran out) leaves them failed, outcome unknown, for unwinding.
fn apply_merged(env: &Env, job: &JobId, d: Prepared) -> Result<(), Failure> {
    let device = d.record.name.clone();
    let r = &d.record;
    let target = Target::new(
        &r.name,
        &r.driver,
        &r.address,
        r.credentials.as_deref(),
        r.legacy,
    );
    let lost = |why: String| Failure::Driver {
        device: device.clone(),
        why,
    };
    let profile = env
        .drivers
        .get(&r.driver)
        .ok_or_else(|| lost(format!("driver profile `{}` is not loaded", r.driver)))?;
    env.interrupt.check().map_err(Failure::Interrupted)?;
    let rows = intend_all(env, job, &d, 0, &d.ops)?;
    let fail = |rows: &[(i64, Rendered)], why: &str| fail_rows(env, rows, why);
    intent_faults(env, &device, &rows)?;
    let Some(merger) = env.connector.merger(&target, profile) else {
        let e = lost("jobnetd stopped answering before the job's changes were handed over; nothing was sent, and the job is undone (run it again)".into());
        fail(&rows, &e.to_string());
        return Err(e);
    };
    let sub = Submission {
        job: job.to_string(),
        vlan_name: d.vlan_name.clone(),
        ops: d.ops.clone(),
        save: env.save,
        undo: false,
    };
    let merged = match merger.apply_merged(&target, profile, sub, env.wait) {
        Ok(m) if m.outcomes.len() == d.ops.len() => m,
        Ok(m) => {
            let e = lost(format!(
                "jobnetd reported {} outcome(s) for {} operation(s)",
                m.outcomes.len(),
                d.ops.len()
            ));
            fail(&rows, &e.to_string());
            return Err(e);
        }
        Err(Unmerged::Unreachable(why)) => {
            let e = lost(format!("jobnetd did not take the job's changes ({why}); nothing was sent, and the job is undone (run it again)"));
            fail(&rows, &e.to_string());
            return Err(e);
        }
        Err(Unmerged::Lost(e)) => {
            let e = Failure::from(e);
            fail(&rows, &format!("outcome unknown: {e}"));
            return Err(e);
        }
    };
    // Every outcome in one write: done (with the list line it shared), or failed.
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for (k, outcome) in merged.outcomes.iter().enumerate() {
        let (id, _) = &rows[k];
        match outcome {
            Outcome::Done { sent } => {
                let note = if sent.is_empty() {
                    String::new()
                } else {
                    format!(
                        "sent by jobnetd with other jobs' VLANs on the same port: {}",
                        sent.join(" / ")
                    )
                };
                done.push((k, note));
            }
            Outcome::Failed { error } => {
                failed.push((*id, JournalStatus::Failed, error.to_string()));
            }
            Outcome::NotSent { why } => failed.push((*id, JournalStatus::Failed, why.clone())),
        }
    }
    let recorded = record_outcomes(env, &device, &d.ops, &rows, &done);
    let _ = env.store.journal_set_many(&failed);
    recorded?;
    match merged.error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// A device whose dialect carries several operations in one block (`DeviceDriver::blocks`):
/// one atomic command (`batch:`, Open vSwitch) or one ranged block (`range:`, `interface
/// Ethernet1/1-48` and the body once). Per block, every operation's intent is journaled (with
/// its own lines and undo), then the block goes, then every operation is journaled done.
///
/// A block the device refuses:
/// - atomic: it applied none of its operations; every one is journaled failed, and their undo
///   (safe to repeat) is what unwinding sends.
/// - ranged: a ranged line is carried out port by port, so some may have applied. Each
///   operation is sent again on its own, in order (harmless where it applied: it sets or adds
///   its own value): one the device takes is done; the first it refuses is failed with the
///   device's answer to its own line (the exact port and line), the rest failed as not
///   confirmed, and unwinding sends the undo of every failed one. When the device takes every
///   one, it does not take the ranged form: the device's remaining operations go one by one.
///
/// A lost connection or a timeout leaves the block's operations failed (outcome unknown), for
/// unwinding.
fn apply_blocks(env: &Env, job: &JobId, d: &mut Prepared, blocks: &[usize]) -> Result<(), Failure> {
    let ops = d.ops.clone();
    let mut one_by_one = false;
    let mut start = 0;
    for &size in blocks {
        let sizes = if one_by_one {
            vec![1; size]
        } else {
            vec![size]
        };
        for n in sizes {
            if apply_block(env, job, d, start, &ops[start..start + n])? == Block::Replayed {
                one_by_one = true;
            }
            start += n;
        }
    }
    Ok(())
}

/// How a block went.
#[derive(PartialEq, Eq)]
enum Block {
    Applied,
    /// The ranged block was refused, and every operation was then taken on its own.
    Replayed,
}

/// One block: operations `ops`, the first the device's `seq`-th.
fn apply_block(
    env: &Env,
    job: &JobId,
    d: &mut Prepared,
    seq: usize,
    ops: &[Op],
) -> Result<Block, Failure> {
    let device = d.record.name.clone();
    env.interrupt.check().map_err(Failure::Interrupted)?;
    let rows = intend_all(env, job, d, seq, ops)?;
    let fail = |rows: &[(i64, Rendered)], why: &str| fail_rows(env, rows, why);
    intent_faults(env, &device, &rows)?;
    let block: Vec<(&Op, &Rendered)> = ops.iter().zip(rows.iter().map(|(_, r)| r)).collect();
    let sent = d.driver.apply_batch(&block);
    let mut outcome = Block::Applied;
    let mut note = String::new();
    match sent {
        Ok(()) => {}
        Err(e @ DeviceError::Rejected { .. }) if ops.len() > 1 && !d.driver.blocks_atomic() => {
            // Which of them applied is not known: each goes again on its own.
            note = format!("sent on its own after the device refused the ranged block: {e}");
            for (k, (op, r)) in block.iter().enumerate() {
                if let Err(again) = d.driver.apply(op, r) {
                    let again = Failure::from(again);
                    fail(&rows[k..k + 1], &again.to_string());
                    let port = op.port().unwrap_or_default();
                    fail(
                        &rows[k + 1..],
                        &format!("not confirmed: the device refused the ranged block ({e}), then {port} on its own"),
                    );
                    record_done(env, &device, &ops[..k], &rows[..k], &note)?;
                    return Err(again);
                }
            }
            outcome = Block::Replayed;
        }
        Err(e) => {
            let e = Failure::from(e);
            fail(&rows, &e.to_string());
            return Err(e);
        }
    }
    record_done(env, &device, ops, &rows, &note)?;
    Ok(outcome)
}

/// Journals operations the device took as done (after the `done` failpoint), and the ports
/// they restricted.
fn record_done(
    env: &Env,
    device: &str,
    ops: &[Op],
    rows: &[(i64, Rendered)],
    note: &str,
) -> Result<(), Failure> {
    let all: Vec<(usize, String)> = (0..ops.len()).map(|k| (k, note.to_string())).collect();
    record_outcomes(env, device, ops, rows, &all)
}

/// Journals the operations `done` (their index in `ops`/`rows`, and a note) as done, in one
/// write of the store; a port an operation restricted is recorded after. A `done` failpoint
/// fails its operation and stops there: those before it are recorded done.
fn record_outcomes(
    env: &Env,
    device: &str,
    ops: &[Op],
    rows: &[(i64, Rendered)],
    done: &[(usize, String)],
) -> Result<(), Failure> {
    let mut set = Vec::with_capacity(done.len());
    let mut hit = None;
    for (k, note) in done {
        let (id, r) = &rows[*k];
        let first = r.apply.first().map(String::as_str).unwrap_or("");
        if let Err(e) = env.faults.hit(Point::Done, device, first) {
            let e = Failure::from(e);
            set.push((*id, JournalStatus::Failed, e.to_string()));
            hit = Some((*k, e));
            break;
        }
        set.push((*id, JournalStatus::Done, note.clone()));
    }
    let written = env.store.journal_set_many(&set);
    if hit.is_none() {
        written?;
    }
    let applied = done
        .iter()
        .map(|(k, _)| *k)
        .take_while(|k| hit.as_ref().is_none_or(|(h, _)| k != h));
    for k in applied {
        if let Op::TaggedAdd {
            port,
            restricts: true,
            ..
        } = &ops[k]
        {
            env.store.restrict(device, port, "all")?;
        }
    }
    match hit {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Undoes every journaled operation of `job` that may be in effect, newest first per device, all
/// devices in parallel; keeps going past errors and returns them all.
pub(super) fn unwind(env: &Env, job: &JobId) -> Vec<Failure> {
    let rows = match env.store.journal(job) {
        Ok(r) => r,
        Err(e) => return vec![e.into()],
    };
    let mut by_device: BTreeMap<String, Vec<JournalRow>> = BTreeMap::new();
    for r in rows.into_iter().filter(|r| r.status.pending()) {
        by_device.entry(r.device.name.clone()).or_default().push(r);
    }
    env.progress.start(Stage::Undo, by_device.len());
    let results = workers::each(
        by_device.into_iter().collect(),
        workers::MAX_WORKERS,
        |(name, mut rows): (String, Vec<JournalRow>)| {
            rows.sort_by_key(|r| std::cmp::Reverse(r.id));
            let failures = undo_device(env, rows);
            env.progress.device(Stage::Undo, &name, failures.is_empty());
            failures
        },
        || vec![Failure::Panicked],
    );
    results.into_iter().flatten().collect()
}

/// Journals how an undo went; returns the failure to report, if any. An operation whose outcome
/// was unknown (a crash between intent and result) may never have reached the device: its undo
/// being refused says so, and is not a failure.
pub(super) fn record_undo(
    env: &Env,
    r: &JournalRow,
    result: Result<(), Failure>,
) -> Option<Failure> {
    match result {
        Ok(()) => {
            let _ = env.store.journal_set(r.id, JournalStatus::Undone, "");
            None
        }
        Err(e) if !r.status.certain() => {
            let note = format!("outcome was unknown; undo answered: {e}");
            let _ = env.store.journal_set(r.id, JournalStatus::Undone, &note);
            None
        }
        Err(e) => {
            let _ = env
                .store
                .journal_set(r.id, JournalStatus::UndoFailed, &e.to_string());
            Some(e)
        }
    }
}

/// The device as it is reached now: the current topology's (`down --topology`) or the journal's.
fn target_of(env: &Env, r: &JournalRow) -> Target {
    env.retarget
        .get(&r.device.name)
        .cloned()
        .unwrap_or_else(|| {
            let d = &r.device;
            Target::new(
                &d.name,
                &d.driver,
                &d.address,
                d.credentials.as_deref(),
                d.legacy,
            )
        })
}

/// Hands a device's undo to jobnetd, which sends it with other jobs' (list lines for the same
/// removal on one port): when every row is a device operation whose journaled undo lines are
/// the lines jobnetd will render from the profile, and none is a restricted port (their undo
/// reads the state). `Err(())`: not handed over, nothing sent. Otherwise each row is journaled
/// as its outcome says, as an undo on the job's own session would be.
fn undo_merged(
    env: &Env,
    merger: &dyn crate::drivers::transport::Merger,
    target: &Target,
    profile: &crate::drivers::Profile,
    rows: &[JournalRow],
) -> Result<Vec<Failure>, ()> {
    if !merge::mergeable(profile) {
        return Err(());
    }
    let mut ops = Vec::with_capacity(rows.len());
    for r in rows {
        let JournalOp::Device(op) = &r.op else {
            return Err(());
        };
        let restricted = match op {
            Op::TaggedAdd {
                port, restricts, ..
            } => *restricts || !matches!(env.store.restriction(&target.name, port), Ok(None)),
            _ => false,
        };
        if restricted || merge::undo_lines(profile, op) != r.undo {
            return Err(());
        }
        ops.push(op.clone());
    }
    // The failpoints an undo on the job's own session would pass, row by row: a row they stop
    // is not handed over and is journaled as failed.
    let mut errors = Vec::new();
    let mut sent = Vec::with_capacity(rows.len());
    let mut hit = false;
    for (r, op) in rows.iter().zip(ops) {
        let first = r.undo.first().map(String::as_str).unwrap_or("");
        match env.faults.hit(Point::Undo, &target.name, first) {
            Ok(()) => sent.push((r, op)),
            Err(e) => {
                hit = true;
                errors.extend(record_undo(env, r, Err(e.into())));
            }
        }
    }
    if sent.is_empty() {
        return Ok(errors);
    }
    let sub = Submission {
        job: rows[0].job.to_string(),
        vlan_name: merge::UNDO_NAME.into(),
        ops: sent.iter().map(|(_, op)| op.clone()).collect(),
        save: env.save,
        undo: true,
    };
    // An undo that was not sent, or whose answer was lost, is not done whatever the row's
    // outcome was: `UndoFailed`, for the next `down` to send again (undo is safe to repeat).
    let not_undone = |errors: &mut Vec<Failure>, r: &JournalRow, why: String| {
        let _ = env.store.journal_set(r.id, JournalStatus::UndoFailed, &why);
        errors.push(Failure::Driver {
            device: target.name.clone(),
            why,
        });
    };
    match merger.apply_merged(target, profile, sub, env.wait) {
        Ok(m) if m.outcomes.len() == sent.len() => {
            for ((r, _), outcome) in sent.iter().zip(m.outcomes) {
                match outcome {
                    Outcome::Done { .. } => errors.extend(record_undo(env, r, Ok(()))),
                    // The device's answer to the undo itself.
                    Outcome::Failed { error } => {
                        errors.extend(record_undo(env, r, Err(error.into())))
                    }
                    Outcome::NotSent { why } => not_undone(
                        &mut errors,
                        r,
                        format!(
                            "jobnetd did not send the undo ({why}); run the same command again"
                        ),
                    ),
                }
            }
            errors.extend(m.error.map(Failure::from));
            Ok(errors)
        }
        Ok(m) => {
            let why = format!(
                "jobnetd reported {} outcome(s) for {} undo(s); run the same command again",
                m.outcomes.len(),
                sent.len()
            );
            for (r, _) in &sent {
                not_undone(&mut errors, r, why.clone());
            }
            Ok(errors)
        }
        // Nothing sent and nothing journaled: the job undoes on its own session.
        Err(Unmerged::Unreachable(_)) if !hit => Err(()),
        Err(Unmerged::Unreachable(why)) => {
            let why = format!(
                "jobnetd did not take the undo ({why}); nothing was sent: run the same command again"
            );
            for (r, _) in &sent {
                not_undone(&mut errors, r, why.clone());
            }
            Ok(errors)
        }
        Err(Unmerged::Lost(e)) => {
            let why = format!("the undo's outcome is unknown ({e}); run the same command again");
            for (r, _) in &sent {
                not_undone(&mut errors, r, why.clone());
            }
            Ok(errors)
        }
    }
}

fn undo_device(env: &Env, rows: Vec<JournalRow>) -> Vec<Failure> {
    if rows[0].device.driver == partition::OPENSM {
        return partition::undo(env, rows);
    }
    let target = target_of(env, &rows[0]);
    let fail_all = |why: Failure| -> Vec<Failure> {
        for r in &rows {
            let _ = env
                .store
                .journal_set(r.id, JournalStatus::UndoFailed, &why.to_string());
        }
        vec![why]
    };
    let driver_failure = |why: String| Failure::Driver {
        device: target.name.clone(),
        why,
    };
    if target.driver != rows[0].device.driver {
        return fail_all(driver_failure(format!(
            "the topology now gives it driver {} but its journal was written in {}'s dialect; undo it by hand (jobnet status --job {}) and release the job with `jobnet down --force`",
            target.driver, rows[0].device.driver, rows[0].job
        )));
    }
    let Some(profile) = env.drivers.get(&target.driver) else {
        return fail_all(driver_failure(format!(
            "driver profile {} is not known to this jobnet",
            target.driver
        )));
    };
    // Changes of the job that jobnetd may still be sending (a signal or a kill ended the
    // wait for them): the undo goes after them, never before.
    if let Some(merger) = env.connector.merger(&target, profile) {
        if let Ok(false) = merger.settle(&target, profile, &rows[0].job.to_string(), env.wait) {
            return fail_all(driver_failure(format!(
                "jobnetd was still sending the job's changes after {} s; run the same command again to undo them",
                env.wait.as_secs()
            )));
        }
        // Otherwise not for jobnetd (see `undo_merged`), or jobnetd did not take it: nothing
        // was sent, the job undoes on its own session.
        if let Ok(errors) = undo_merged(env, merger, &target, profile, &rows) {
            return errors;
        }
    }
    let _slot = match env
        .store
        .device_slot(&target.name, env.sessions_per_device, env.wait)
    {
        Ok(s) => s,
        Err(source) => {
            return fail_all(Failure::Lock {
                device: target.name.clone(),
                source,
            })
        }
    };
    let record = record_of(&target);
    let mut driver = match cli::open(env.connector, target, profile, "") {
        Ok(d) => d,
        Err(e) => return fail_all(e.into()),
    };
    if let Err(e) = driver.begin() {
        return fail_all(e.into());
    }
    let mut errors = Vec::new();
    for r in &rows {
        let first = r.undo.first().map(String::as_str).unwrap_or("");
        let result = env
            .faults
            .hit(Point::Undo, &record.name, first)
            .map_err(Failure::from)
            .and_then(|()| undo_row(env, driver.as_mut(), &record.name, r));
        errors.extend(record_undo(env, r, result));
    }
    if let Err(e) = driver.finish(env.save, true) {
        errors.push(e.into());
    }
    errors
}

/// Undoes one journal row: its undo, or the restriction-aware undo of a tagged VLAN.
fn undo_row(
    env: &Env,
    driver: &mut dyn DeviceDriver,
    device: &str,
    r: &JournalRow,
) -> Result<(), Failure> {
    let JournalOp::Device(op) = &r.op else {
        return Err(Failure::Driver {
            device: device.into(),
            why: format!(
                "journal row {} holds a partition operation for a switch",
                r.id
            ),
        });
    };
    if let Op::TaggedAdd {
        port,
        vlan,
        restricts,
        ..
    } = op
    {
        if *restricts || env.store.restriction(device, port)?.is_some() {
            return undo_restricted(env, driver, device, r, op, port, vlan.get(), *restricts);
        }
    }
    driver.undo(&UndoRecord { op, lines: &r.undo })?;
    Ok(())
}

/// Removes the job's VLAN from a port jobnet restricted; the last job gives the port every VLAN
/// back. Under the port's lock, so a job adding its VLAN meanwhile is never cut off.
#[allow(clippy::too_many_arguments)]
fn undo_restricted(
    env: &Env,
    driver: &mut dyn DeviceDriver,
    device: &str,
    r: &JournalRow,
    op: &Op,
    port: &str,
    vlan: u16,
    restricts: bool,
) -> Result<(), Failure> {
    let _port = env
        .store
        .port_lock(device, port, env.wait)
        .map_err(|source| Failure::Lock {
            device: device.into(),
            source,
        })?;
    if restricts {
        env.store.restrict(device, port, "all")?;
    }
    let state = driver.read_port(port)?;
    match state.allowed {
        Some(Allowed::List(l))
            if l.ranges()
                .iter()
                .all(|&(a, b)| a == b && a == u64::from(vlan)) =>
        {
            if !driver.can_unrestrict() {
                driver.undo(&UndoRecord { op, lines: &r.undo })?;
                return Err(Failure::Port {
                    device: device.into(),
                    problem: PortProblem::CannotUnrestrict {
                        port: port.into(),
                        profile: r.device.driver.clone(),
                    },
                });
            }
            driver.unrestrict(port)?;
            Ok(env.store.unrestrict(device, port)?)
        }
        // Nothing of ours is there (the restriction never reached the device).
        Some(Allowed::All) => Ok(env.store.unrestrict(device, port)?),
        _ => Ok(driver.undo(&UndoRecord { op, lines: &r.undo })?),
    }
}
