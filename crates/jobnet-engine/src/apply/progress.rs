//! Progress of long work, per device, for whoever shows it: the command line draws a line on a
//! terminal (and nothing on a pipe, a log or a hook); the library and the tests pass [`Silent`].
//! The executor calls it from its worker threads, so implementations are `Sync`.

/// A stage of the executor's work on a set of devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Connecting to and reading the devices of a plan.
    Read,
    /// Sending a job's operations.
    Apply,
    /// Undoing a job's operations (rollback, `down`, `recover`).
    Undo,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "reading",
            Stage::Apply => "applying",
            Stage::Undo => "undoing",
        }
    }
}

/// Receives the executor's progress.
pub trait Progress: Sync {
    /// A stage starts on `devices` devices.
    fn start(&self, stage: Stage, devices: usize);
    /// One device finished the stage (`ok`: without failure).
    fn device(&self, stage: Stage, device: &str, ok: bool);
}

/// Shows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: Stage, _: usize) {}
    fn device(&self, _: Stage, _: &str, _: bool) {}
}
