//! jobnetd's per-device queues: jobs that hand over their decided operations on a device
//! (`POST /v1/devices/apply`) wait in the device's queue; up to the device's session bound of
//! workers each take every submission waiting at that moment and send them as one session's
//! stream ([`crate::drivers::merge`]). A burst of jobs on a shared spine thus costs one
//! configuration-mode entry, one save and one list line per port for many jobs, instead of all
//! of that per job; a lone job waits for nothing (its batch is itself).
//!
//! A submission whose requester went away before its batch started (its process died) is
//! dropped unsent. One already sent finishes; its requester learns nothing, and its journal
//! says the outcome is unknown, which its unwind (`down`, `recover`, or the same `up` after a
//! signal) undoes — after asking jobnetd to settle the job on the device
//! (`POST /v1/devices/settle`: wait until nothing of the job waits or is being sent there), so
//! an undo never overtakes the changes it undoes.

use super::{Counters, State};
use crate::drivers::cli::CliDriver;
use crate::drivers::merge::{self, Merged, Outcome, Submission};
use crate::drivers::transport::pool::SessionPool;
use crate::drivers::transport::{Connector, DeviceError, Session, Target};
use crate::drivers::Profile;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Submissions one worker takes at most at once.
const MAX_BATCH: usize = 64;

/// A submission and where its answer goes.
pub(super) struct Waiting {
    pub sub: Submission,
    pub reply: tokio::sync::oneshot::Sender<Merged>,
}

/// One device's queue: waiting submissions, how many workers send them, and the jobs whose
/// submissions are being sent.
#[derive(Default)]
pub(super) struct DeviceQueue {
    inner: Mutex<Queue>,
    settled: Condvar,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    workers: usize,
    sending: Vec<String>,
}

/// What a worker needs to reach the device.
pub(super) struct Device {
    pub pool: Arc<SessionPool>,
    pub target: Target,
    pub profile: Profile,
    pub wait: Duration,
}

impl DeviceQueue {
    /// Queues `w`; true when the caller must start a worker (fewer than `bound` run).
    pub fn push(&self, w: Waiting, bound: usize) -> bool {
        let mut q = self.inner.lock().expect("queue");
        q.waiting.push(w);
        if q.workers < bound.max(1) {
            q.workers += 1;
            true
        } else {
            false
        }
    }

    /// The next batch (its jobs now being sent), or `None` (and one worker fewer) when nothing
    /// waits.
    fn take(&self) -> Option<Vec<Waiting>> {
        let mut q = self.inner.lock().expect("queue");
        if q.waiting.is_empty() {
            q.workers -= 1;
            return None;
        }
        // A batch applies or undoes, never both: an undo's `end` must be confirmed (its loss
        // is the undo's failure), an applying job's need not be.
        let undo = q.waiting[0].sub.undo;
        let mut batch = Vec::new();
        let mut rest = Vec::new();
        for w in q.waiting.drain(..) {
            if w.sub.undo == undo && batch.len() < MAX_BATCH {
                batch.push(w);
            } else {
                rest.push(w);
            }
        }
        q.waiting = rest;
        q.sending.extend(batch.iter().map(|w| w.sub.job.clone()));
        Some(batch)
    }

    /// The batch of these jobs was sent.
    fn sent(&self, jobs: &[String]) {
        let mut q = self.inner.lock().expect("queue");
        for j in jobs {
            if let Some(at) = q.sending.iter().position(|s| s == j) {
                q.sending.remove(at);
            }
        }
        self.settled.notify_all();
    }

    /// Waits (at most `wait`) until nothing of `job` waits or is being sent on this device:
    /// an undo must not overtake the changes it undoes. False when the wait ran out.
    pub fn settle(&self, job: &str, wait: Duration) -> bool {
        let until = std::time::Instant::now() + wait;
        let mut q = self.inner.lock().expect("queue");
        loop {
            let busy =
                q.sending.iter().any(|j| j == job) || q.waiting.iter().any(|w| w.sub.job == job);
            let left = until.saturating_duration_since(std::time::Instant::now());
            if !busy {
                return true;
            }
            if left.is_zero() {
                return false;
            }
            q = self.settled.wait_timeout(q, left).expect("queue").0;
        }
    }
}

/// The pool, waiting at most `wait` for one of the device's sessions.
struct Within<'a> {
    pool: &'a SessionPool,
    wait: Duration,
}

impl Connector for Within<'_> {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        self.pool.connect_within(target, profile, self.wait)
    }
}

/// Sends batches from `queue` until it is empty.
pub(super) fn work(state: &State, queue: &DeviceQueue, device: &Device) {
    let c: &Counters = &state.counters;
    c.merge_workers.fetch_add(1, Ordering::SeqCst);
    while let Some(batch) = queue.take() {
        // Requesters gone before anything was sent: nothing to send for them.
        let (batch, gone): (Vec<Waiting>, Vec<Waiting>) =
            batch.into_iter().partition(|w| !w.reply.is_closed());
        queue.sent(&gone.iter().map(|w| w.sub.job.clone()).collect::<Vec<_>>());
        if batch.is_empty() {
            continue;
        }
        let subs: Vec<Submission> = batch.iter().map(|w| w.sub.clone()).collect();
        let jobs: Vec<String> = subs.iter().map(|s| s.job.clone()).collect();
        let results = send(device, &subs);
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.merged_jobs
            .fetch_add(subs.len() as u64, Ordering::Relaxed);
        for (w, m) in batch.into_iter().zip(results) {
            if m.error.is_some() {
                state.count_error(&device.target.name);
            }
            let _ = w.reply.send(m);
        }
        queue.sent(&jobs);
    }
    c.merge_workers.fetch_sub(1, Ordering::SeqCst);
}

fn send(device: &Device, subs: &[Submission]) -> Vec<Merged> {
    let within = Within {
        pool: &device.pool,
        wait: device.wait,
    };
    let opened = CliDriver::open(&within, device.target.clone(), &device.profile, "");
    match opened {
        Ok(mut driver) => merge::run(&mut driver, &device.profile, subs),
        Err(e) => subs
            .iter()
            .map(|s| Merged {
                outcomes: vec![
                    Outcome::NotSent {
                        why: format!("no session to {}: {e}", device.target.name),
                    };
                    s.ops.len()
                ],
                error: Some(e.clone()),
                notes: Vec::new(),
                jobs: subs.len(),
            })
            .collect(),
    }
}

/// A read and where its answer goes.
pub(super) struct ReadWaiting {
    pub line: String,
    pub reply: tokio::sync::oneshot::Sender<Result<String, DeviceError>>,
}

/// One device's queue of reads: every read waiting when a worker starts is sent once per
/// distinct line and its answer given to each job that asked. Each read starts after every
/// request it answers arrived, so an answer is never older than its question.
#[derive(Default)]
pub(super) struct ReadQueue {
    inner: Mutex<(Vec<ReadWaiting>, usize)>,
}

impl ReadQueue {
    /// Queues `w`; true when the caller must start a worker (fewer than `bound` run).
    pub fn push(&self, w: ReadWaiting, bound: usize) -> bool {
        let mut q = self.inner.lock().expect("queue");
        q.0.push(w);
        if q.1 < bound.max(1) {
            q.1 += 1;
            true
        } else {
            false
        }
    }

    fn take(&self) -> Option<Vec<ReadWaiting>> {
        let mut q = self.inner.lock().expect("queue");
        if q.0.is_empty() {
            q.1 -= 1;
            return None;
        }
        Some(std::mem::take(&mut q.0))
    }
}

/// Sends the reads waiting in `queue` until it is empty.
pub(super) fn read_work(state: &State, queue: &ReadQueue, device: &Device) {
    let c: &Counters = &state.counters;
    while let Some(batch) = queue.take() {
        let batch: Vec<ReadWaiting> = batch.into_iter().filter(|w| !w.reply.is_closed()).collect();
        if batch.is_empty() {
            continue;
        }
        let within = Within {
            pool: &device.pool,
            wait: device.wait,
        };
        let mut driver = CliDriver::open(&within, device.target.clone(), &device.profile, "");
        let mut answers: std::collections::HashMap<String, Result<String, DeviceError>> =
            std::collections::HashMap::new();
        for w in &batch {
            if !answers.contains_key(&w.line) {
                let answer = match &mut driver {
                    Ok(d) => d.send(&w.line),
                    Err(e) => Err(e.clone()),
                };
                c.reads_sent.fetch_add(1, Ordering::Relaxed);
                answers.insert(w.line.clone(), answer);
            }
        }
        drop(driver);
        c.reads_answered
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for w in batch {
            let answer = answers[&w.line].clone();
            if answer.is_err() {
                state.count_error(&device.target.name);
            }
            let _ = w.reply.send(answer);
        }
    }
}
