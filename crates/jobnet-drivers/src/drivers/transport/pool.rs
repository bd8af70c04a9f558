//! Warm sessions: a [`Connector`] that keeps the sessions its callers are done with open, per
//! device, and hands them to the next caller for the same device instead of logging in again.
//!
//! A long-running process (jobnetd) holds one pool; a burst of jobs then costs one login per
//! device session, not one per job. A session goes back to the pool only when its driver says
//! it is reusable ([`Session::release`]: every line answered as expected, configuration mode
//! left); anything else is closed. A session that sat idle longer than `probe_after` is probed
//! before it is handed out (an empty line must bring the prompt back) and replaced by a fresh
//! login when it does not answer; [`SessionPool::maintain`] probes idle sessions on a timer
//! (keep-alive against the device's idle timeout) and closes those idle longer than
//! `idle_max`. At most `per_device` sessions of one device are kept idle; opening one more
//! closes an idle session of that device first when it would exceed the bound.
//!
//! Sessions are keyed by everything that makes them differ: the device's name, address, login
//! entry and SSH algorithms, and the driver profile's text (its prompt, pager and setup lines).
//!
//! At most `per_device` sessions of one device are in use at once ([`SessionPool::connect_within`]
//! waits for one to come back): jobnetd is then what keeps a device within its session limit
//! (often 4–16 VTY lines) for all the jobs that use it.

use super::{Connector, DeviceError, Session, Target};
use crate::drivers::Profile;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`Connector::connect`] waits for one of a device's sessions.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// What makes two sessions interchangeable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    device: String,
    address: String,
    credentials: Option<String>,
    legacy: bool,
    profile: u64,
}

impl Key {
    fn of(target: &Target, profile: &Profile) -> Self {
        let mut h = DefaultHasher::new();
        profile.name.hash(&mut h);
        profile.text.hash(&mut h);
        Key {
            device: target.name.clone(),
            address: target.address.clone(),
            credentials: target.credentials.clone(),
            legacy: target.legacy,
            profile: h.finish(),
        }
    }
}

struct Idle {
    key: Key,
    session: Box<dyn Session>,
    since: Instant,
}

/// Counters of a pool, for metrics.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Sessions opened (logins).
    pub logins: AtomicU64,
    /// Sessions handed out warm.
    pub reused: AtomicU64,
    /// Warm sessions that failed their probe and were replaced.
    pub dead: AtomicU64,
    /// Sessions closed instead of kept (not reusable, over the bound, idle too long).
    pub closed: AtomicU64,
}

struct Shared {
    idle: Mutex<Vec<Idle>>,
    /// Sessions lent out, per device.
    in_use: Mutex<HashMap<String, usize>>,
    returned: std::sync::Condvar,
    /// Replaced by another pool: sessions handed back are closed, not kept.
    retired: std::sync::atomic::AtomicBool,
    per_device: usize,
    stats: PoolStats,
    logins_by_device: Mutex<HashMap<String, u64>>,
}

/// A connector that keeps sessions warm; see the module documentation.
pub struct SessionPool {
    inner: Box<dyn Connector + Send>,
    shared: Arc<Shared>,
    probe_after: Duration,
    idle_max: Duration,
}

impl SessionPool {
    /// Keeps at most `per_device` idle sessions per device; probes a session idle longer than
    /// `probe_after` before reuse; closes sessions idle longer than `idle_max`.
    pub fn new(
        inner: Box<dyn Connector + Send>,
        per_device: usize,
        probe_after: Duration,
        idle_max: Duration,
    ) -> Self {
        SessionPool {
            inner,
            shared: Arc::new(Shared {
                idle: Mutex::new(Vec::new()),
                in_use: Mutex::new(HashMap::new()),
                returned: std::sync::Condvar::new(),
                retired: std::sync::atomic::AtomicBool::new(false),
                per_device: per_device.max(1),
                stats: PoolStats::default(),
                logins_by_device: Mutex::new(HashMap::new()),
            }),
            probe_after,
            idle_max,
        }
    }

    pub fn stats(&self) -> &PoolStats {
        &self.shared.stats
    }

    /// Logins per device since the pool started.
    pub fn logins_by_device(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .shared
            .logins_by_device
            .lock()
            .expect("pool lock")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort();
        v
    }

    /// Idle sessions per device.
    pub fn idle_by_device(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<String, usize> = HashMap::new();
        for i in self.shared.idle.lock().expect("pool lock").iter() {
            *m.entry(i.key.device.clone()).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = m.into_iter().collect();
        v.sort();
        v
    }

    /// Keep-alive: closes sessions idle longer than `idle_max`, probes those idle longer than
    /// `probe_after` and closes the ones that do not answer. Call it on a timer.
    pub fn maintain(&self) {
        let taken: Vec<Idle> = {
            let mut idle = self.shared.idle.lock().expect("pool lock");
            let (old, keep): (Vec<Idle>, Vec<Idle>) = idle
                .drain(..)
                .partition(|i| i.since.elapsed() >= self.probe_after);
            *idle = keep;
            old
        };
        for mut i in taken {
            if i.since.elapsed() >= self.idle_max {
                self.shared.stats.closed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match i.session.probe() {
                Ok(()) => self.shared.put(i.key, i.session, true),
                Err(_) => {
                    self.shared.stats.dead.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Closes every idle session, and every lent one when it comes back (a pool replaced by
    /// another, a daemon that stops).
    pub fn retire(&self) {
        self.shared.retired.store(true, Ordering::SeqCst);
        self.close_all();
    }

    /// Closes every idle session.
    pub fn close_all(&self) {
        let n = {
            let mut idle = self.shared.idle.lock().expect("pool lock");
            let n = idle.len();
            idle.clear();
            n
        };
        self.shared
            .stats
            .closed
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A warm session for `key`, probed when it sat idle long enough to be in doubt.
    fn take_warm(&self, key: &Key) -> Option<Box<dyn Session>> {
        loop {
            let found = {
                let mut idle = self.shared.idle.lock().expect("pool lock");
                // Most recently used first: the one least likely to have timed out.
                let at = idle.iter().rposition(|i| &i.key == key)?;
                idle.remove(at)
            };
            let mut session = found.session;
            if found.since.elapsed() < self.probe_after || session.probe().is_ok() {
                self.shared.stats.reused.fetch_add(1, Ordering::Relaxed);
                return Some(session);
            }
            self.shared.stats.dead.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Shared {
    /// Takes one of `device`'s `per_device` sessions, waiting at most `wait` for one to come
    /// back; false when none did.
    fn take_turn(&self, device: &str, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        let mut in_use = self.in_use.lock().expect("pool lock");
        loop {
            let n = in_use.get(device).copied().unwrap_or(0);
            if n < self.per_device {
                in_use.insert(device.to_string(), n + 1);
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            in_use = self
                .returned
                .wait_timeout(in_use, left)
                .expect("pool lock")
                .0;
        }
    }

    fn end_turn(&self, device: &str) {
        let mut in_use = self.in_use.lock().expect("pool lock");
        if let Some(n) = in_use.get_mut(device) {
            *n = n.saturating_sub(1);
        }
        self.returned.notify_all();
    }

    /// Keeps `session` idle for the next caller (or closes it when it is not reusable or the
    /// device already has its bound of idle sessions).
    fn put(&self, key: Key, session: Box<dyn Session>, reusable: bool) {
        if !reusable || self.retired.load(Ordering::SeqCst) {
            self.stats.closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut idle = self.idle.lock().expect("pool lock");
        let of_device = idle.iter().filter(|i| i.key.device == key.device).count();
        if of_device >= self.per_device {
            // Drop the oldest idle session of the device to stay within its bound.
            if let Some(at) = idle.iter().position(|i| i.key.device == key.device) {
                idle.remove(at);
                self.stats.closed.fetch_add(1, Ordering::Relaxed);
            }
        }
        idle.push(Idle {
            key,
            session,
            since: Instant::now(),
        });
    }

    /// Makes room for one more session of `device` (its turn already taken): closes its
    /// oldest idle sessions while those and the ones in use would exceed the bound.
    fn room_for(&self, device: &str) {
        let busy = self
            .in_use
            .lock()
            .expect("pool lock")
            .get(device)
            .copied()
            .unwrap_or(1);
        let mut idle = self.idle.lock().expect("pool lock");
        while idle.iter().filter(|i| i.key.device == device).count() + busy > self.per_device {
            let Some(at) = idle.iter().position(|i| i.key.device == device) else {
                break;
            };
            idle.remove(at);
            self.stats.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A session lent by the pool: back to the pool when released reusable, closed otherwise.
struct Lent {
    key: Key,
    session: Option<Box<dyn Session>>,
    shared: Arc<Shared>,
    warm: bool,
}

impl Session for Lent {
    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        self.session.as_mut().expect("lent session").run(line)
    }

    fn probe(&mut self) -> Result<(), DeviceError> {
        self.session.as_mut().expect("lent session").probe()
    }

    fn warm(&self) -> bool {
        self.warm
    }

    fn release(mut self: Box<Self>, reusable: bool) {
        if let Some(s) = self.session.take() {
            self.shared.put(self.key.clone(), s, reusable);
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if self.session.take().is_some() {
            self.shared.stats.closed.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.end_turn(&self.key.device);
    }
}

impl SessionPool {
    /// A session to `target`: warm when one is idle, else a new login; waits at most `wait`
    /// while the device's `per_device` sessions are all in use.
    pub fn connect_within(
        &self,
        target: &Target,
        profile: &Profile,
        wait: Duration,
    ) -> Result<Box<dyn Session>, DeviceError> {
        if !self.shared.take_turn(&target.name, wait) {
            return Err(DeviceError::ran_out(
                &target.name,
                &format!(
                    "<one of its {} sessions, all in use>",
                    self.shared.per_device
                ),
                wait.as_secs(),
            ));
        }
        let key = Key::of(target, profile);
        let warm = self.take_warm(&key);
        let was_warm = warm.is_some();
        let session = match warm {
            Some(s) => s,
            None => {
                self.shared.room_for(&target.name);
                let s = match self.inner.connect(target, profile) {
                    Ok(s) => s,
                    Err(e) => {
                        self.shared.end_turn(&target.name);
                        return Err(e);
                    }
                };
                self.shared.stats.logins.fetch_add(1, Ordering::Relaxed);
                *self
                    .shared
                    .logins_by_device
                    .lock()
                    .expect("pool lock")
                    .entry(target.name.clone())
                    .or_default() += 1;
                s
            }
        };
        Ok(Box::new(Lent {
            key,
            session: Some(session),
            shared: Arc::clone(&self.shared),
            warm: was_warm,
        }))
    }
}

impl Connector for SessionPool {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        self.connect_within(target, profile, DEFAULT_WAIT)
    }

    fn preflight(&self, target: &Target) -> Result<(), String> {
        self.inner.preflight(target)
    }

    fn install_file(&self, target: &Target, path: &str, text: &str) -> Result<(), DeviceError> {
        self.inner.install_file(target, path, text)
    }
}
