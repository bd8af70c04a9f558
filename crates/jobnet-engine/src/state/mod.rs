//! jobnet's state: jobs, their VLAN/PKey allocations, and a write-ahead journal of device
//! operations — behind the [`StateStore`] trait, so the executor never sees how it is stored.
//!
//! [`sqlite`] is the implementation for one controller host (one SQLite file shared by every
//! jobnet process). A store for HA controllers (etcd) fits the same trait: [`StateStore::begin`]
//! hands the decision to a pure closure that the store may call again after a compare-and-swap
//! conflict (etcd: read the job and allocation keys, decide, `txn` comparing their revisions,
//! retry on failure); [`Owner`] and [`StateStore::alive`] become a lease and its keep-alive;
//! [`StateStore::device_slot`] and [`StateStore::port_lock`] become leased lock keys.
//!
//! Everything read back is typed ([`JobId`], [`VlanId`], [`PKey`], [`JobState`], the journal's
//! [`JournalOp`]); a row that does not parse is a [`StateError::Corrupt`] naming it — never a
//! quiet default (an undo list read as empty would make `down` send nothing and report success).

pub mod sqlite;

use crate::base::fsutil::LockError;
use crate::base::types::{JobId, PKey, VlanId};
use crate::drivers::ops::Op;
use crate::topology::IbApply;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

pub use sqlite::SqliteStore;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {source}; check the state file's path and that this user may write there")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a jobnet state file (SQLite: {source}); check the state file's path")]
    NotState {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state file {path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "state file {path} has schema version {found}, newer than this jobnet ({}); upgrade jobnet",
        sqlite::SCHEMA_VERSION
    )]
    NewerSchema { path: String, found: i64 },
    #[error("state file {path}: {what} is corrupt: {why}; jobnet will not guess: inspect and repair the row with sqlite3 (the devices still carry what it undoes), then run the command again")]
    Corrupt {
        path: String,
        what: String,
        why: String,
    },
    #[error(
        "state file {path} {why} while this command was using it; nothing more is written there"
    )]
    Vanished { path: String, why: &'static str },
    #[error(
        "state file {path} is locked by another process{holder}; gave up after {secs} s{signal}"
    )]
    Locked {
        path: String,
        holder: String,
        secs: u64,
        /// " and a signal arrived" when a signal ended the wait.
        signal: &'static str,
    },
    #[error("state file {path}: disk full ({free} bytes free there); free space on that file system, then run the command again")]
    DiskFull { path: String, free: u64 },
    #[error("state file {path}: {kind} {value} is already allocated to job {holder}")]
    Taken {
        path: String,
        kind: AllocationKind,
        value: u16,
        holder: String,
    },
}

impl crate::base::hint::Hinted for StateError {
    fn hints(&self) -> Vec<crate::base::hint::Hint> {
        use crate::base::hint::Hint;
        match self {
            StateError::Io { .. } | StateError::NotState { .. } => vec![Hint::StatePath],
            // A signal ended the wait: a longer one would not have helped.
            StateError::Locked { signal: "", .. } => vec![Hint::Wait],
            StateError::Locked { .. }
            | StateError::Db { .. }
            | StateError::NewerSchema { .. }
            | StateError::Corrupt { .. }
            | StateError::Vanished { .. }
            | StateError::DiskFull { .. }
            | StateError::Taken { .. } => vec![],
        }
    }
}

use crate::base::jobstate::text_enum;
pub use crate::base::jobstate::{AllocationKind, JobState};

text_enum!(
    /// What became of one journaled operation.
    JournalStatus {
        /// Written before the device was touched; the outcome is unknown until the next status.
        Intent => "intent",
        Done => "done",
        Failed => "failed",
        Undone => "undone",
        UndoFailed => "undo-failed",
        /// Given up by `down --force`; recorded in the abandoned table.
        Abandoned => "abandoned",
    }
);

impl JournalStatus {
    /// The operation may be in effect on the device: undo must handle it.
    pub fn pending(self) -> bool {
        matches!(
            self,
            JournalStatus::Intent
                | JournalStatus::Done
                | JournalStatus::Failed
                | JournalStatus::UndoFailed
        )
    }

    /// The device acknowledged the operation (or its undo failed): it is in effect.
    pub fn certain(self) -> bool {
        matches!(self, JournalStatus::Done | JournalStatus::UndoFailed)
    }
}

/// The process working on a job: its pid and start time (so a reused pid is not mistaken for
/// it). A lease-based store (etcd) would put its lease here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub pid: u32,
    #[serde(skip)]
    pub start: u64,
}

/// A job as recorded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRow {
    pub job: JobId,
    pub state: JobState,
    pub vlan: Option<VlanId>,
    pub pkey: Option<PKey>,
    pub nodes: Vec<String>,
    pub gateway: Option<String>,
    /// The topology file the job came up with.
    pub topology: String,
    /// The process changing the job, while one does.
    #[serde(rename = "pid", serialize_with = "owner_pid")]
    pub owner: Option<Owner>,
    pub message: String,
    /// Seconds since the epoch (RFC 3339 text in JSON).
    #[serde(serialize_with = "crate::base::time::serialize_rfc3339")]
    pub created: f64,
    #[serde(serialize_with = "crate::base::time::serialize_rfc3339")]
    pub updated: f64,
}

fn owner_pid<S: serde::Serializer>(o: &Option<Owner>, s: S) -> Result<S::Ok, S::Error> {
    match o {
        Some(o) => s.serialize_u32(o.pid),
        None => s.serialize_none(),
    }
}

/// A job about to be worked on, as `up` records it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub job: JobId,
    pub vlan: Option<VlanId>,
    pub pkey: Option<PKey>,
    pub nodes: Vec<String>,
    pub gateway: Option<String>,
    pub topology: String,
}

/// A device as the journal records it: enough to reach it again for undo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    /// `device` in JSON (the journal rows of `status --job`).
    #[serde(rename = "device")]
    pub name: String,
    pub driver: String,
    pub address: String,
    /// The credentials entry's name (never a secret).
    pub credentials: Option<String>,
    pub legacy: bool,
}

/// A job's partition, as journaled: with the settings, so it can be removed again even when the
/// topology changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub job: String,
    pub partition: String,
    pub pkey: PKey,
    pub settings: IbApply,
}

/// The typed operation of a journal row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalOp {
    Device(Op),
    Partition(PartitionRecord),
}

impl JournalOp {
    pub fn to_json(&self) -> String {
        match self {
            JournalOp::Device(op) => serde_json::to_string(op).expect("op json"),
            JournalOp::Partition(p) => {
                let mut v = serde_json::to_value(p).expect("partition json");
                v["op"] = serde_json::json!("partition");
                v.to_string()
            }
        }
    }

    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        if v.get("op").and_then(|o| o.as_str()) == Some("partition") {
            serde_json::from_value(v).map(JournalOp::Partition)
        } else {
            serde_json::from_value(v).map(JournalOp::Device)
        }
    }
}

impl Serialize for JournalOp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v: serde_json::Value = serde_json::from_str(&self.to_json()).expect("json");
        v.serialize(s)
    }
}

/// One journaled device operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JournalRow {
    pub id: i64,
    pub job: JobId,
    #[serde(flatten)]
    pub device: DeviceRecord,
    pub seq: i64,
    pub op: JournalOp,
    /// The exact lines sent (or to be sent) and those that undo them.
    pub apply: Vec<String>,
    pub undo: Vec<String>,
    pub status: JournalStatus,
    pub message: String,
}

/// What `begin` shows the deciding closure: the job's record and every job that is not down.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub job: Option<JobRow>,
    pub active: Vec<JobRow>,
}

/// What the deciding closure of `begin` wants.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Nothing to record (the job is up as asked).
    Keep,
    /// Record the job as `applying`, owned by the caller, with its allocations.
    Start(NewJob),
}

/// A refusal from the deciding closure, passed through unchanged.
pub type Refusal = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why `begin` did not record the job.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Refused(Refusal),
}

/// What `claim` found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// The caller now owns the job, in state `tearing-down`.
    Claimed(JobRow),
    NotFound,
    AlreadyDown,
    /// Another live process is changing it (down), or it needs no recovery (recover).
    Busy(JobRow),
}

/// Who may claim a job for teardown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimFor {
    /// Any job not down, unless a live process is changing it.
    Down,
    /// Only a job whose changing process died.
    Recover,
}

/// An operation `down --force` gave up on: still configured on the device, as far as jobnet knows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Abandoned {
    pub job: String,
    pub device: String,
    pub address: String,
    /// The lines that would undo it, to run by hand.
    pub undo: Vec<String>,
    pub reason: String,
    /// Seconds since the epoch (RFC 3339 text in JSON).
    #[serde(serialize_with = "crate::base::time::serialize_rfc3339")]
    pub time: f64,
}

/// A held lock (a device's session slot, a port); released when dropped.
pub struct Held(#[allow(dead_code)] Box<dyn std::any::Any + Send>);

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

impl Held {
    pub fn new(inner: impl std::any::Any + Send) -> Self {
        Held(Box::new(inner))
    }
}

/// Where jobnet keeps its state; see the module documentation.
pub trait StateStore: Send + Sync {
    /// Where the state lives, for messages (`state file /var/lib/jobnet/state.db`).
    fn location(&self) -> String;

    /// The caller's identity as the owner of jobs it changes.
    fn owner(&self) -> Owner;
    /// Whether an owner still runs.
    fn alive(&self, owner: &Owner) -> bool;

    fn jobs(&self) -> Result<Vec<JobRow>, StateError>;
    /// Every job, each row typed or the error naming it: one damaged row does not hide the
    /// others (`status`, `recover`).
    fn jobs_each(&self) -> Result<Vec<Result<JobRow, StateError>>, StateError>;
    fn job(&self, job: &JobId) -> Result<Option<JobRow>, StateError>;
    /// Every allocation: (kind, value, job).
    fn allocations(&self) -> Result<Vec<(AllocationKind, u16, String)>, StateError>;

    /// Atomically looks at the job and every active job, lets `decide` plan, and records the job
    /// (`applying`, owned by the caller, its journal cleared, its VLAN/PKey allocated) when it
    /// says so. `decide` must be pure: a store may call it again after a conflict.
    fn begin(
        &self,
        job: &JobId,
        decide: &mut dyn FnMut(&Snapshot) -> Result<Decision, Refusal>,
    ) -> Result<Decision, BeginError>;
    /// Atomically takes over a job for teardown.
    fn claim(&self, job: &JobId, purpose: ClaimFor) -> Result<Claim, StateError>;
    fn set_state(&self, job: &JobId, state: JobState, message: &str) -> Result<(), StateError>;
    /// Makes sure the journal of `ops` operations can be written (disk space) before the first
    /// device command, so that a full disk fails before any change whenever possible.
    fn reserve(&self, ops: usize) -> Result<(), StateError> {
        let _ = ops;
        Ok(())
    }
    /// Marks the job down and frees its VLAN/PKey, atomically.
    fn release(&self, job: &JobId, message: &str) -> Result<(), StateError>;
    /// Forgets jobs that are down and were last changed before `before` (seconds since the
    /// epoch), with their journals; returns how many.
    fn prune(&self, before: f64) -> Result<usize, StateError>;

    fn journal(&self, job: &JobId) -> Result<Vec<JournalRow>, StateError>;
    /// Writes the intent to run an operation; returns the row id.
    #[allow(clippy::too_many_arguments)]
    fn journal_intent(
        &self,
        job: &JobId,
        device: &DeviceRecord,
        seq: usize,
        op: &JournalOp,
        apply: &[String],
        undo: &[String],
    ) -> Result<i64, StateError>;
    fn journal_set(&self, id: i64, status: JournalStatus, message: &str) -> Result<(), StateError>;
    /// Writes the intents of several operations of one device, the first its `first_seq`-th,
    /// each `(operation, lines, undo lines)`; returns their row ids in order. All or none: a
    /// store with transactions writes them in one (a short `up` journals a device's operations
    /// in one commit instead of one each).
    fn journal_intents(
        &self,
        job: &JobId,
        device: &DeviceRecord,
        first_seq: usize,
        items: &[(JournalOp, Vec<String>, Vec<String>)],
    ) -> Result<Vec<i64>, StateError> {
        items
            .iter()
            .enumerate()
            .map(|(i, (op, apply, undo))| {
                self.journal_intent(job, device, first_seq + i, op, apply, undo)
            })
            .collect()
    }
    /// Sets several rows' status and message (one transaction where the store has them).
    fn journal_set_many(&self, rows: &[(i64, JournalStatus, String)]) -> Result<(), StateError> {
        rows.iter()
            .try_for_each(|(id, status, message)| self.journal_set(*id, *status, message))
    }

    /// What a node port allowed before jobnet restricted it, if jobnet did.
    fn restriction(&self, device: &str, port: &str) -> Result<Option<String>, StateError>;
    fn restrict(&self, device: &str, port: &str, previous: &str) -> Result<(), StateError>;
    fn unrestrict(&self, device: &str, port: &str) -> Result<(), StateError>;

    /// Records journal rows `down --force` gave up on, and marks them abandoned.
    fn abandon(&self, rows: &[JournalRow], reason: &str) -> Result<(), StateError>;
    fn abandoned(&self) -> Result<Vec<Abandoned>, StateError>;

    /// Allocates to `job` the first value of `candidates` no other job holds (atomically), or
    /// returns the one of `kind` it already holds; `None` when every candidate is taken.
    /// Released with the job's other allocations.
    fn allocate(
        &self,
        job: &JobId,
        kind: AllocationKind,
        candidates: &mut dyn Iterator<Item = u16>,
    ) -> Result<Option<u16>, StateError>;

    /// Counts one more failed prolog of `job` (across requeues); returns the count.
    fn note_failure(&self, job: &JobId, message: &str) -> Result<u32, StateError>;
    fn failures(&self, job: &JobId) -> Result<u32, StateError>;
    fn clear_failures(&self, job: &JobId) -> Result<(), StateError>;

    /// The job's address list (JSON, as written to its files); `None` forgets it.
    fn set_addresses(&self, job: &JobId, json: Option<&str>) -> Result<(), StateError>;
    fn addresses(&self, job: &JobId) -> Result<Option<String>, StateError>;

    /// One of `slots` session slots of a device, waiting at most `wait`.
    fn device_slot(&self, device: &str, slots: usize, wait: Duration) -> Result<Held, LockError>;
    /// Exclusive use of one port of a device.
    fn port_lock(&self, device: &str, port: &str, wait: Duration) -> Result<Held, LockError>;
}
