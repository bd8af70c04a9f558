//! Phase 2 of `up` (journaled operations per device, in parallel) and the undo that `up`'s
//! rollback, `down` and `recover` share.
//!
//! Session rules: configuration-mode lines are sent before the operations; the profile's
//! `commit` lines (Junos `commit`, NVUE `nv config apply`) must succeed, while its `end` lines
//! only leave configuration mode — a refused `end` is noted, never a failure, because nothing it
//! does is a change (a timeout or lost connection there still means the device's state could not
//! be confirmed). A session that timed out or lost its connection is never used again: the undo
//! goes on over a fresh session, retrying the line whose answer was lost.
//!
//! Restricted ports (`open_ports: restrict`): undoing a job's tagged VLAN on a port that jobnet
//! restricted reads the port under its port lock; if only this job's VLAN (or none) is left, the
//! port gets every VLAN back (`unrestrict_port`) and the record is dropped, otherwise only this
//! job's VLAN is removed and the last job to leave restores it.

use super::prepare::{read_port, Prepared};
use super::{partition, Env};
use crate::drivers::read::Allowed;
use crate::drivers::{Profile, Vars};
use crate::plan::{self, Op};
use crate::state::JournalRow;
use crate::transport::{DeviceError, DeviceLock, PortLock, Session, Target};
use std::collections::BTreeMap;

/// Journal statuses of operations that may be in effect on a device.
pub(super) fn pending(status: &str) -> bool {
    matches!(status, "intent" | "done" | "failed" | "undo-failed")
}

/// Phase 2, in parallel: every device's operations, journaled. Returns the failures.
pub(super) fn apply_all(env: &Env, job: &str, devices: Vec<Prepared>) -> Vec<String> {
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
        env.interrupt.check()?;
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
            .and_then(|()| apply.iter().try_for_each(|l| d.session.run(l).map(drop)))
            .and_then(|()| env.failpoints.hit("done", &d.target.name, first));
        if let Err(e) = run {
            let _ = env.store.journal_set(id, "failed", &e.to_string());
            return Err(e.to_string());
        }
        env.store
            .journal_set(id, "done", "")
            .map_err(|e| e.to_string())?;
        if let Op::TaggedAdd {
            port,
            restricts: true,
            ..
        } = op
        {
            env.store
                .restrict(&d.target.name, port, "all")
                .map_err(|e| e.to_string())?;
        }
    }
    for l in &p.commit {
        d.session.run(l).map_err(|e| e.to_string())?;
    }
    // Leaving configuration mode changes nothing: a refusal is not a failure of the job.
    for l in &p.end {
        let _ = d.session.run(l);
    }
    if env.save {
        for l in &p.save {
            d.session.run(l).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Undoes every journaled operation of `job` that may be in effect, newest first per device, all
/// devices in parallel; keeps going past errors and returns them all.
pub(super) fn unwind(env: &Env, job: &str) -> Vec<String> {
    let rows = match env.store.journal(job) {
        Ok(r) => r,
        Err(e) => return vec![e.to_string()],
    };
    let mut by_device: BTreeMap<String, Vec<JournalRow>> = BTreeMap::new();
    for r in rows.into_iter().filter(|r| pending(&r.status)) {
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

/// A device's session for undo, reopened when a line's answer was lost.
struct UndoSession<'e> {
    env: &'e Env<'e>,
    target: Target,
    profile: &'e Profile,
    session: Option<Box<dyn Session>>,
}

impl UndoSession<'_> {
    fn open(&mut self) -> Result<&mut Box<dyn Session>, DeviceError> {
        if self.session.is_none() {
            let mut s = self.env.connector.connect(&self.target, self.profile)?;
            for l in self.profile.setup.iter().chain(&self.profile.begin) {
                s.run(l)?;
            }
            self.session = Some(s);
        }
        Ok(self.session.as_mut().expect("opened above"))
    }

    /// Sends `lines`; after a timeout or a lost connection, closes the session and sends them
    /// all again over a fresh one, once: the lost line may or may not have been carried out,
    /// and a CLI's context lines (`interface X`) belong to the session.
    fn run_lines(&mut self, lines: &[String]) -> Result<(), DeviceError> {
        let mut retried = false;
        loop {
            let result = lines
                .iter()
                .try_for_each(|l| self.open().and_then(|s| s.run(l)).map(drop));
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.session_broken() && !retried => {
                    self.session = None;
                    retried = true;
                }
                Err(e) => {
                    if e.session_broken() {
                        self.session = None;
                    }
                    return Err(e);
                }
            }
        }
    }
}

fn undo_device(env: &Env, rows: Vec<JournalRow>) -> Vec<String> {
    if rows[0].driver == partition::OPENSM {
        return partition::undo(env, rows);
    }
    let first = &rows[0];
    let target = env
        .retarget
        .get(&first.device)
        .cloned()
        .unwrap_or_else(|| Target {
            name: first.device.clone(),
            driver: first.driver.clone(),
            address: first.address.clone(),
            credentials: first.credentials.clone(),
            legacy: first.legacy,
        });
    let fail_all = |why: String| -> Vec<String> {
        for r in &rows {
            let _ = env.store.journal_set(r.id, "undo-failed", &why);
        }
        vec![why]
    };
    if target.driver != first.driver {
        return fail_all(format!(
            "{}: the topology now gives it driver {} but its journal was written in {}'s dialect; undo it by hand (jobnet status --job {}) and release the job with `jobnet down --force`",
            target.name, target.driver, first.driver, first.job
        ));
    }
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
    let mut s = UndoSession {
        env,
        target: target.clone(),
        profile,
        session: None,
    };
    if let Err(e) = s.open() {
        return fail_all(e.to_string());
    }
    let mut errors = Vec::new();
    for r in &rows {
        let first = r.undo.first().map(String::as_str).unwrap_or("");
        let result = env
            .failpoints
            .hit("undo", &target.name, first)
            .map_err(|e| e.to_string())
            .and_then(|()| undo_row(&mut s, r));
        errors.extend(record_undo(env, r, result));
    }
    errors.extend(finish(&mut s, env.save));
    errors
}

/// Journals how an undo went; returns the error to report, if any. An operation whose outcome was
/// unknown (a crash between intent and result) may never have reached the device: its undo
/// being refused says so, and is not an error.
pub(super) fn record_undo(env: &Env, r: &JournalRow, result: Result<(), String>) -> Option<String> {
    let certain = matches!(r.status.as_str(), "done" | "undo-failed");
    match result {
        Ok(()) => {
            let _ = env.store.journal_set(r.id, "undone", "");
            None
        }
        Err(e) if !certain => {
            let note = format!("outcome was unknown; undo answered: {e}");
            let _ = env.store.journal_set(r.id, "undone", &note);
            None
        }
        Err(e) => {
            let _ = env.store.journal_set(r.id, "undo-failed", &e);
            Some(e)
        }
    }
}

/// Commit, leave configuration mode, save. A refused mode-leaving line is fine; a commit that
/// fails, or an `end` whose answer never came, leaves the device's state unconfirmed.
fn finish(s: &mut UndoSession, save: bool) -> Vec<String> {
    let mut errors = Vec::new();
    let p = s.profile;
    if let Err(e) = s.run_lines(&p.commit) {
        errors.push(e.to_string());
    }
    for l in &p.end {
        match s.open().and_then(|sess| sess.run(l)) {
            Ok(_) | Err(DeviceError::Rejected { .. }) => {}
            Err(e) => errors.push(format!(
                "{e}; the device's state after the undo could not be confirmed"
            )),
        }
    }
    if save {
        if let Err(e) = s.run_lines(&p.save) {
            errors.push(e.to_string());
        }
    }
    errors
}

/// Undoes one journal row: its undo lines, or the restriction-aware undo of a tagged VLAN.
fn undo_row(s: &mut UndoSession, r: &JournalRow) -> Result<(), String> {
    if let Ok(Op::TaggedAdd {
        port,
        vlan,
        restricts,
        ..
    }) = serde_json::from_str::<Op>(&r.op)
    {
        let recorded = s
            .env
            .store
            .restriction(&s.target.name, &port)
            .map_err(|e| e.to_string())?;
        if restricts || recorded.is_some() {
            return undo_restricted(s, r, &port, vlan.get(), restricts);
        }
    }
    s.run_lines(&r.undo).map_err(|e| e.to_string())
}

/// Removes the job's VLAN from a port jobnet restricted; the last job gives the port every VLAN
/// back. Under the port's lock, so a job adding its VLAN meanwhile is never cut off.
fn undo_restricted(
    s: &mut UndoSession,
    r: &JournalRow,
    port: &str,
    vlan: u16,
    restricts: bool,
) -> Result<(), String> {
    let env = s.env;
    let device = s.target.name.clone();
    let _port = PortLock::acquire(&env.lock_dir, &device, port, env.wait)
        .map_err(|e| format!("{device}: {e}"))?;
    if restricts {
        env.store
            .restrict(&device, port, "all")
            .map_err(|e| e.to_string())?;
    }
    let profile = s.profile;
    let state = {
        let session = s.open().map_err(|e| e.to_string())?;
        read_port(session.as_mut(), profile, &device, port)?
    };
    match state.allowed {
        Some(Allowed::List(l))
            if l.ranges()
                .iter()
                .all(|&(a, b)| a == b && a == u64::from(vlan)) =>
        {
            if !s.profile.has("unrestrict_port") {
                s.run_lines(&r.undo).map_err(|e| e.to_string())?;
                return Err(format!("{device}: port {port} allowed every VLAN before jobnet restricted it, but driver profile {} has no `unrestrict_port` to give them back; its list is now empty: restore it by hand", s.profile.name));
            }
            let lines = s.profile.render(
                "unrestrict_port",
                &Vars {
                    port: Some(port),
                    ..Vars::default()
                },
            );
            s.run_lines(&lines).map_err(|e| e.to_string())?;
            env.store
                .unrestrict(&device, port)
                .map_err(|e| e.to_string())
        }
        // Nothing of ours is there (the restriction never reached the device).
        Some(Allowed::All) => env
            .store
            .unrestrict(&device, port)
            .map_err(|e| e.to_string()),
        _ => s.run_lines(&r.undo).map_err(|e| e.to_string()),
    }
}
