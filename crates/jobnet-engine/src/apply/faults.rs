//! Places where the test kit can make `up`, `down` and `recover` fail, crash or stop: before an
//! operation reaches a device (`intent`), after the device accepted it but before the journal
//! says so (`done`), and before an undo (`undo`). The shipped binary passes [`NoFaults`]; the
//! failpoints that implement [`Faults`] live in the test kit (feature `testkit`), so nothing of
//! them is compiled into a production build.

use crate::drivers::transport::DeviceError;

/// A place in the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    Intent,
    Done,
    Undo,
}

/// Decides whether to fail at a point (`device`, the operation's first line).
pub trait Faults: Sync {
    fn hit(&self, point: Point, device: &str, command: &str) -> Result<(), DeviceError>;
}

/// No faults: what every real run uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFaults;

impl Faults for NoFaults {
    fn hit(&self, _: Point, _: &str, _: &str) -> Result<(), DeviceError> {
        Ok(())
    }
}
