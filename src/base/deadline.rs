//! One deadline per command, and the word that a signal arrived.
//!
//! Every wait of a command (the state database's lock, device session slots, port locks, the
//! partitions.conf lock, reload and verify commands, SSH) ends by one deadline derived from
//! `--wait` / `wait:` and the overall `deadline:`, and every wait gives up within a second once
//! SIGTERM, SIGINT or SIGHUP arrived. The signal handler (in [`crate::apply::interrupt`]) only
//! stores into an atomic here, which is async-signal-safe; the process-wide deadline lets waits
//! that cannot be handed a value (SQLite's busy handler) end in time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
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

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Whether a signal also ends device commands and reloads (not only waits for locks): true for
/// `up` (it unwinds), false for `down` and `recover`, which finish their undo.
static SIGNAL_ENDS_WORK: AtomicBool = AtomicBool::new(true);
/// Milliseconds after [`epoch`] at which the command must be done (0: none set).
static COMMAND_DEADLINE_MS: AtomicU64 = AtomicU64::new(0);
static COMMAND_BUDGET_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// Called from the signal handler: async-signal-safe (one atomic store).
pub fn note_signal() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// A signal arrived: waits give up.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `down` and `recover` finish what they started after a signal: device commands and reloads
/// are not cut short (waits for locks still are).
pub fn finish_work_after_signals() {
    SIGNAL_ENDS_WORK.store(false, Ordering::SeqCst);
}

/// A signal arrived and it ends device commands and reloads too (see
/// [`finish_work_after_signals`]).
pub fn work_interrupted() -> bool {
    interrupted() && SIGNAL_ENDS_WORK.load(Ordering::SeqCst)
}

/// Sets the whole command's deadline, `budget` from now.
pub fn set_command_budget(budget: Duration) {
    let e = epoch();
    let at = (Instant::now() + budget).saturating_duration_since(e);
    COMMAND_DEADLINE_MS.store((at.as_millis() as u64).max(1), Ordering::SeqCst);
    COMMAND_BUDGET_MS.store((budget.as_millis() as u64).max(1), Ordering::SeqCst);
}

static WAIT_MS: AtomicU64 = AtomicU64::new(0);

/// Sets how long one wait may last (`--wait`, `wait:`), for waits that cannot be handed it.
pub fn set_wait(wait: Duration) {
    WAIT_MS.store((wait.as_millis() as u64).max(1), Ordering::SeqCst);
}

/// How long one wait may last (`None`: not set).
pub fn wait() -> Option<Duration> {
    match WAIT_MS.load(Ordering::SeqCst) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// The budget the command's deadline was set with.
pub fn command_budget() -> Option<Duration> {
    match COMMAND_BUDGET_MS.load(Ordering::SeqCst) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// What is left of the command's deadline (`None`: none set).
pub fn command_left() -> Option<Duration> {
    match COMMAND_DEADLINE_MS.load(Ordering::SeqCst) {
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
}
