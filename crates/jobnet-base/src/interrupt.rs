//! Stopping cleanly on a signal. Slurm kills a hook that runs past PrologEpilogTimeout, systemd
//! and administrators send SIGTERM, a terminal sends SIGINT: `up` then starts no new operation,
//! undoes what it applied and exits with the rolled-back code (4). `down` and `recover` finish
//! their undo (stopping halfway would leave more behind). `kill -9` leaves the job to
//! `jobnet recover`.
//!
//! The handler only stores the signal number in an atomic (async-signal-safe); the executor
//! checks it between operations. Each run gets an [`Interrupt`] through its environment, so tests
//! raise one without sending real signals.

use std::sync::atomic::{AtomicI32, Ordering};

/// A signal stopped the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted {
    pub signal: i32,
    /// Nothing had been changed yet.
    pub before_change: bool,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}", name(self.signal))?;
        if self.before_change {
            f.write_str(" before any change")?;
        }
        Ok(())
    }
}

/// A raised signal, or none (0).
#[derive(Debug, Default)]
pub struct Interrupt(AtomicI32);

impl Interrupt {
    pub const fn new() -> Self {
        Interrupt(AtomicI32::new(0))
    }

    pub fn raise(&self, signal: i32) {
        self.0.store(signal, Ordering::SeqCst);
    }

    /// Forgets a raised signal (a daemon that handled SIGHUP and goes on).
    pub fn clear(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    pub fn raised(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// An error once a signal arrived (`interrupted by SIGTERM`).
    pub fn check(&self) -> Result<(), Interrupted> {
        match self.raised() {
            None => Ok(()),
            Some(signal) => Err(Interrupted {
                signal,
                before_change: false,
            }),
        }
    }

    /// The same, for a moment when nothing has been changed yet.
    pub fn check_before_change(&self) -> Result<(), Interrupted> {
        self.check().map_err(|i| Interrupted {
            before_change: true,
            ..i
        })
    }
}

/// The process-wide flag the signal handlers set.
pub static SIGNALS: Interrupt = Interrupt::new();

extern "C" fn on_signal(signal: libc::c_int) {
    SIGNALS.raise(signal);
    crate::deadline::note_signal();
}

/// Routes SIGTERM, SIGINT and SIGHUP to [`SIGNALS`] instead of ending the process.
pub fn install() -> std::io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an atomic; SA_RESTART
        // keeps blocking reads and writes of the sessions going.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `SIGTERM` for 15, and so on.
pub fn name(signal: i32) -> String {
    match signal {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        s => format!("signal {s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_signal_is_seen_and_named() {
        let i = Interrupt::new();
        assert!(i.check().is_ok());
        i.raise(libc::SIGTERM);
        assert_eq!(i.check().unwrap_err().to_string(), "interrupted by SIGTERM");
        assert_eq!(
            i.check_before_change().unwrap_err().to_string(),
            "interrupted by SIGTERM before any change"
        );
    }
}
