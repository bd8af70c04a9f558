//! What can go wrong while applying or undoing, typed: every failure names the device (or the
//! partition step), and the executor passes them on as they are — `RolledBack` carries the
//! failures that made `up` roll back, `NeedsAttention` those and every undo failure
//! (`{ initial, unwind }`, as dendrite's `Unwind`).

use crate::base::fsutil::LockError;
use crate::base::hint::{Hint, Hinted};
use crate::drivers::transport::DeviceError;
use crate::ib::opensm::OpenSmError;
use crate::state::StateError;
use std::fmt;

/// A port that is not what the job needs, as configured; the message carries the vendor's fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortProblem {
    /// An access-mode node port that is not an access port.
    NotAccess {
        port: String,
        node: String,
        mode: String,
        fix: String,
    },
    /// A tagged node port or link end that is not a trunk.
    NotTrunk {
        what: String,
        mode: String,
        fix: String,
    },
    /// A trunk that allows every VLAN, refused (`open_ports: refuse`).
    OpenTrunk {
        what: String,
        vlan: u16,
        tagged: bool,
        fix: String,
    },
    /// A node port allowing every VLAN that the profile cannot restrict.
    CannotRestrict {
        what: String,
        profile: String,
        fix: String,
    },
    /// A restricted port whose profile cannot give it every VLAN back.
    CannotUnrestrict { port: String, profile: String },
}

impl fmt::Display for PortProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortProblem::NotAccess { port, node, mode, fix } => write!(f, "port {port} (node {node}) is in mode `{mode}`, not an access port: setting its access VLAN would not isolate the node; nothing was changed; configure it as an access port: {fix}"),
            PortProblem::NotTrunk { what, mode, fix } => write!(f, "{what} is in mode `{mode}`, not a trunk: the job's VLAN would not reach it as configured; nothing was changed; make it a trunk that allows no VLAN yet: {fix}"),
            PortProblem::OpenTrunk { what, vlan, tagged, fix } => write!(
                f,
                "{what} is a trunk that allows every VLAN (the factory default): adding VLAN {vlan} would change nothing{} and removing it later would list every other VLAN explicitly; nothing was changed; give it an explicit list ({fix}), or set `open_ports: restrict` in the topology's ethernet section (docs/topology.md)",
                if *tagged { " — the node would see every other job's VLAN" } else { ", and the VLAN could loop over redundant links" }
            ),
            PortProblem::CannotRestrict { what, profile, fix } => write!(f, "{what} allows every VLAN and the {profile} profile has no `restrict_port` operation to make its list explicit; nothing was changed; configure it: {fix}"),
            PortProblem::CannotUnrestrict { port, profile } => write!(f, "port {port} allowed every VLAN before jobnet restricted it, but driver profile {profile} has no `unrestrict_port` to give them back; its list is now empty: restore it by hand"),
        }
    }
}

pub use crate::base::interrupt::Interrupted;

/// One failure of one device or of the partition step.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("{device}: {problem}")]
    Port {
        device: String,
        problem: PortProblem,
    },
    #[error("{0}")]
    Interrupted(Interrupted),
    #[error("{device}: {source}")]
    Lock {
        device: String,
        #[source]
        source: LockError,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("opensm: {0}")]
    OpenSm(#[from] OpenSmError),
    #[error("{device}: {why}")]
    Driver { device: String, why: String },
    #[error("an earlier run failed to undo: {0}")]
    Earlier(String),
    #[error("an earlier run was interrupted in state {0}; run `jobnet recover`")]
    Interrupting(crate::state::JobState),
    #[error("a device worker panicked")]
    Panicked,
}

impl Failure {
    /// A standby SM that could not be given the file (a failover would undo the change).
    pub fn is_standby(&self) -> bool {
        matches!(self, Failure::OpenSm(e) if e.is_standby())
    }
}

impl Hinted for Failure {
    fn hints(&self) -> Vec<Hint> {
        match self {
            Failure::Device(e) => e.hints(),
            Failure::Lock { source, .. } => source.hints(),
            Failure::State(e) => e.hints(),
            Failure::Port { .. }
            | Failure::Interrupted(_)
            | Failure::OpenSm(_)
            | Failure::Driver { .. }
            | Failure::Earlier(_)
            | Failure::Interrupting(_)
            | Failure::Panicked => vec![],
        }
    }
}

/// Failures joined for a message.
pub fn joined(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
