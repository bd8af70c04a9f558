//! One deadline per command (or request), and the word that it was cancelled.
//!
//! Every wait of a command (the state database's lock, device session slots, port locks, the
//! partitions.conf lock, reload and verify commands, SSH) ends by one deadline derived from
//! `--wait` / `wait:` and the overall `deadline:`, and every wait gives up within a second once
//! SIGTERM, SIGINT or SIGHUP arrived. The signal handler (in [`crate::interrupt`]) only
//! stores into an atomic here, which is async-signal-safe. These live in a [`Scope`]: the
//! process's for a command line, or one per request in a long-running caller, found through
//! the current thread (so waits that cannot be handed a value, SQLite's busy handler, still end
//! in time and by the right request's rules).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A point in time by which a wait must end, and the budget it came from (for messages).
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Deadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// The earlier of `budget` from now and the command's deadline, if one is set.
    pub fn within_command(budget: Duration) -> Self {
        let own = Deadline::after(budget);
        match command_left() {
            Some(left) if left < budget => Deadline {
                at: Instant::now() + left,
                budget,
            },
            _ => own,
        }
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }
}

/// What bounds one request's waits and work: whether it was cancelled (its own token, or a
/// signal to the process it follows), whether a signal ends its device commands and reloads too,
/// the whole request's deadline and one wait's length.
///
/// The process has one scope (what a command line sets: `--wait`, `deadline:`, the signal
/// handler). A long-running caller (jobnetd, a test running several jobs in one process) runs
/// each request in a scope of its own ([`Scope::request`], [`enter`]): cancelling one request
/// ([`Scope::cancel`]) ends that request's waits only, and each request has its own deadline
/// and wait. Every function of this module reads the current thread's scope (the process's
/// when none was entered); the executor's worker threads take the scope of the thread that
/// started them ([`current`], [`enter`]).
#[derive(Debug)]
pub struct Scope {
    cancelled: AtomicBool,
    /// A signal to the process also cancels this scope.
    follows_signals: bool,
    /// Whether a cancellation also ends device commands and reloads (not only waits for
    /// locks): true for `up` (it unwinds), false for `down` and `recover`, which finish their
    /// undo.
    ends_work: AtomicBool,
    /// Milliseconds after [`epoch`] at which the request must be done (0: none set).
    deadline_ms: AtomicU64,
    budget_ms: AtomicU64,
    wait_ms: AtomicU64,
}

impl Scope {
    const fn new(follows_signals: bool) -> Self {
        Scope {
            cancelled: AtomicBool::new(false),
            follows_signals,
            ends_work: AtomicBool::new(true),
            deadline_ms: AtomicU64::new(0),
            budget_ms: AtomicU64::new(0),
            wait_ms: AtomicU64::new(0),
        }
    }

    /// A request's own scope: cancelled by [`Scope::cancel`] (and by a signal to the process
    /// when `follows_signals`), with its own deadline and wait; a signal ends its work as the
    /// process's scope says at this moment.
    pub fn request(follows_signals: bool) -> Arc<Scope> {
        let s = Scope::new(follows_signals);
        s.ends_work
            .store(PROCESS.ends_work.load(Ordering::SeqCst), Ordering::SeqCst);
        Arc::new(s)
    }

    /// Cancels the request: its waits give up (and its device commands, unless it finishes its
    /// work after a cancellation).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
            || (self.follows_signals && PROCESS.cancelled.load(Ordering::SeqCst))
    }
}

/// The process's scope (command-line runs): the signal handler cancels it.
static PROCESS: Scope = Scope::new(false);

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Arc<Scope>>> = const { std::cell::RefCell::new(None) };
}

/// The scope entered on this thread, if any (to hand to threads this one starts).
pub fn current() -> Option<Arc<Scope>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `f` in `scope` on this thread (`None`: the process's), then restores the scope that was.
pub fn enter<R>(scope: Option<Arc<Scope>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Scope>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let back = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = back);
        }
    }
    let _restore = Restore(CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), scope)));
    f()
}

/// The current thread's scope.
fn with<R>(f: impl FnOnce(&Scope) -> R) -> R {
    CURRENT.with(|c| match c.borrow().as_deref() {
        Some(s) => f(s),
        None => f(&PROCESS),
    })
}

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// Called from the signal handler: async-signal-safe (one atomic store).
pub fn note_signal() {
    PROCESS.cancelled.store(true, Ordering::SeqCst);
}

/// A signal arrived (or this request was cancelled): waits give up.
pub fn interrupted() -> bool {
    with(Scope::is_cancelled)
}

/// `down` and `recover` finish what they started after a signal: device commands and reloads
/// are not cut short (waits for locks still are).
pub fn finish_work_after_signals() {
    with(|s| s.ends_work.store(false, Ordering::SeqCst));
}

/// A signal arrived and it ends device commands and reloads too (see
/// [`finish_work_after_signals`]).
pub fn work_interrupted() -> bool {
    with(|s| s.is_cancelled() && s.ends_work.load(Ordering::SeqCst))
}

/// Sets the whole command's (request's) deadline, `budget` from now.
pub fn set_command_budget(budget: Duration) {
    let e = epoch();
    let at = (Instant::now() + budget).saturating_duration_since(e);
    with(|s| {
        s.deadline_ms
            .store((at.as_millis() as u64).max(1), Ordering::SeqCst);
        s.budget_ms
            .store((budget.as_millis() as u64).max(1), Ordering::SeqCst);
    });
}

/// Sets how long one wait may last (`--wait`, `wait:`), for waits that cannot be handed it.
pub fn set_wait(wait: Duration) {
    with(|s| {
        s.wait_ms
            .store((wait.as_millis() as u64).max(1), Ordering::SeqCst)
    });
}

/// How long one wait may last (`None`: not set).
pub fn wait() -> Option<Duration> {
    match with(|s| s.wait_ms.load(Ordering::SeqCst)) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// The budget the command's deadline was set with.
pub fn command_budget() -> Option<Duration> {
    match with(|s| s.budget_ms.load(Ordering::SeqCst)) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// What is left of the command's deadline (`None`: none set).
pub fn command_left() -> Option<Duration> {
    match with(|s| s.deadline_ms.load(Ordering::SeqCst)) {
        0 => None,
        ms => Some((epoch() + Duration::from_millis(ms)).saturating_duration_since(Instant::now())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_ends_and_keeps_its_budget() {
        let d = Deadline::after(Duration::from_millis(20));
        assert!(!d.passed());
        std::thread::sleep(Duration::from_millis(25));
        assert!(d.passed());
        assert_eq!(d.left(), Duration::ZERO);
        assert_eq!(d.budget(), Duration::from_millis(20));
    }

    /// Two requests in one process: cancelling one ends its waits and work only; each has its
    /// own deadline and wait; the process's scope is untouched by either.
    #[test]
    fn requests_are_cancelled_and_bounded_each_on_their_own() {
        let (a, b) = (Scope::request(false), Scope::request(false));
        enter(Some(a.clone()), || {
            set_command_budget(Duration::from_secs(3))
        });
        enter(Some(b.clone()), || set_wait(Duration::from_millis(700)));
        a.cancel();
        enter(Some(a.clone()), || {
            assert!(interrupted() && work_interrupted());
            assert!(command_left().is_some_and(|l| l <= Duration::from_secs(3)));
            assert_eq!(wait(), None);
        });
        enter(Some(b.clone()), || {
            assert!(!interrupted() && !work_interrupted());
            assert_eq!(command_left(), None);
            assert_eq!(wait(), Some(Duration::from_millis(700)));
            // A scope entered inside another is left again.
            enter(Some(a.clone()), || assert!(interrupted()));
            assert!(!interrupted());
        });
        assert!(!interrupted(), "the process's scope is not cancelled");
        // A request that finishes its work after a cancellation: its waits end, its work not.
        let c = Scope::request(false);
        enter(Some(c.clone()), finish_work_after_signals);
        c.cancel();
        enter(Some(c), || assert!(interrupted() && !work_interrupted()));
    }

    /// A lock wait in a cancelled request gives up at once; the same wait in another request
    /// of the same process waits its full time.
    #[test]
    fn a_cancelled_request_stops_waiting_and_the_other_does_not() {
        use crate::fsutil::FileLock;
        let dir = std::env::temp_dir().join(format!("jobnet-scope-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("held.lock");
        let _held = FileLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let (a, b) = (Scope::request(false), Scope::request(false));
        a.cancel();
        let wait = |scope: Arc<Scope>| {
            let path = path.clone();
            std::thread::spawn(move || {
                enter(Some(scope), || {
                    let t = Instant::now();
                    let r = FileLock::acquire(&path, Duration::from_millis(600));
                    (t.elapsed(), r.err().map(|e| e.to_string()))
                })
            })
        };
        let (ta, tb) = (wait(a), wait(b));
        let (ea, ra) = ta.join().unwrap();
        let (eb, rb) = tb.join().unwrap();
        assert!(ea < Duration::from_millis(300), "{ea:?}");
        assert!(ra.unwrap().contains("interrupted"));
        assert!(eb >= Duration::from_millis(600), "{eb:?}");
        assert!(rb.unwrap().contains("held by another jobnet process"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
