//! Transports: how command lines reach a device. A dialect profile (data) says what to send; a
//! transport (code) sends it and returns the device's answer.
//!
//! - [`local`]: runs each line as a command on this host (`address: local`), used for Open
//!   vSwitch driven with ovs-vsctl.
//! - the test kit's `sim` (feature `testkit`): an in-memory switch that interprets a profile's own templates, with state and
//!   injectable faults, for tests and benchmarks.
//!
//! - [`pool`]: keeps sessions open between jobs (warm sessions) for a long-running process.
//! - [`daemon`]: sessions borrowed from a running `jobnetd` over its Unix socket, so that short
//!   `jobnet` processes reuse its warm sessions instead of logging in themselves.
//!
//! A [`Connector`] opens one [`Session`] per device per apply; every line of that device goes
//! through it. How many sessions all jobnet processes together hold to one device is bounded by
//! the state store (`StateStore::device_slot`).

pub mod credentials;
pub mod daemon;
pub mod local;
pub mod pool;
pub mod ssh;

use crate::drivers::Profile;
use std::time::Duration;

/// A device failure, naming the device, what was sent and what the device answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceError {
    #[error("cannot connect to {device} ({address}): {reason}")]
    Connect {
        device: String,
        address: String,
        reason: String,
    },
    /// Connecting failed on a setting of the caller's (an unknown host key, no credentials
    /// file); `hint` names it. Nothing was sent.
    #[error("cannot connect to {device} ({address}): {reason}")]
    Setup {
        device: String,
        address: String,
        reason: String,
        hint: crate::base::hint::Hint,
    },
    #[error("{device} refused `{command}`: {answer}")]
    Rejected {
        device: String,
        command: String,
        answer: String,
    },
    #[error("{device}: `{command}` got no answer within {secs} s")]
    Timeout {
        device: String,
        command: String,
        secs: u64,
    },
    #[error("{device}: connection lost during `{command}`: {reason}")]
    Lost {
        device: String,
        command: String,
        reason: String,
    },
    /// A signal asked jobnet to stop (`up` unwinds): the wait for the device was abandoned.
    #[error("{device}: `{command}` abandoned: a signal asked jobnet to stop")]
    Interrupted { device: String, command: String },
    /// The device answered a read in a shape its profile does not describe: nothing is assumed.
    #[error("{device}: cannot understand the answer to `{command}` (expected {expected}); it answered: {}; nothing is assumed from it: the device's output does not look like what its driver profile expects (docs/drivers.md)", excerpt(.answer))]
    Unreadable {
        device: String,
        command: String,
        expected: String,
        answer: String,
    },
}

/// The first lines of an answer, for messages.
fn excerpt(answer: &str) -> String {
    let lines: Vec<&str> = answer.lines().take(8).collect();
    let more = answer.lines().count().saturating_sub(lines.len());
    let text = lines.join(" | ");
    match (text.is_empty(), more) {
        (true, _) => "(nothing)".into(),
        (false, 0) => format!("`{text}`"),
        (false, n) => format!("`{text}` (and {n} more lines)"),
    }
}

impl DeviceError {
    /// A wait for `device` that ran out: a timeout, or abandoned because a signal arrived.
    pub fn ran_out(device: &str, command: &str, secs: u64) -> Self {
        if crate::base::deadline::work_interrupted() {
            DeviceError::Interrupted {
                device: device.to_string(),
                command: command.to_string(),
            }
        } else {
            DeviceError::Timeout {
                device: device.to_string(),
                command: command.to_string(),
                secs,
            }
        }
    }

    /// A timeout or a lost connection: the device may have acted on the line or not, and the
    /// session can no longer be trusted to keep answers and lines in step.
    pub fn session_broken(&self) -> bool {
        matches!(
            self,
            DeviceError::Timeout { .. }
                | DeviceError::Lost { .. }
                | DeviceError::Interrupted { .. }
        )
    }
}

impl crate::base::hint::Hinted for DeviceError {
    fn hints(&self) -> Vec<crate::base::hint::Hint> {
        match self {
            DeviceError::Setup { hint, .. } => vec![*hint],
            DeviceError::Connect { .. }
            | DeviceError::Rejected { .. }
            | DeviceError::Timeout { .. }
            | DeviceError::Lost { .. }
            | DeviceError::Interrupted { .. }
            | DeviceError::Unreadable { .. } => vec![],
        }
    }
}

/// One open session to a device.
pub trait Session: Send {
    /// Sends one line and returns the device's answer, or the device's refusal as an error.
    fn run(&mut self, line: &str) -> Result<String, DeviceError>;

    /// Whether a session that sat idle still answers (a shell answers an empty line with its
    /// prompt; an exec session's connection is still open), without changing anything.
    fn probe(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }

    /// The session was used before and handed over warm: its profile's setup lines were sent
    /// on it already.
    fn warm(&self) -> bool {
        false
    }

    /// The driver is done with the session. `reusable`: every line was answered as expected and
    /// the session is back at the prompt it started at, so a pool ([`pool`]) may hand it to the
    /// next job; otherwise it is closed.
    fn release(self: Box<Self>, reusable: bool) {
        let _ = reusable;
    }
}

/// Where and how to reach a device.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub name: String,
    pub driver: String,
    pub address: String,
    pub credentials: Option<String>,
    /// Old SSH algorithms allowed (topology `ssh_legacy: true`).
    pub legacy: bool,
}

impl Target {
    pub fn new(
        name: &str,
        driver: &str,
        address: &str,
        credentials: Option<&str>,
        legacy: bool,
    ) -> Self {
        Target {
            name: name.to_string(),
            driver: driver.to_string(),
            address: address.to_string(),
            credentials: credentials.map(str::to_string),
            legacy,
        }
    }

    /// `address: local`: the device is this host (commands run here, e.g. Open vSwitch's
    /// ovs-vsctl), not reached over SSH. Which driver speaks to it is the profile's `driver:`.
    pub fn is_local(&self) -> bool {
        self.address == "local"
    }
}

/// Opens sessions.
pub trait Connector: Sync {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError>;

    /// Whether `target` can be reached as configured, without contacting it (credentials
    /// present for it): checked before any change, so a missing login is bad input, not a
    /// rollback.
    fn preflight(&self, _target: &Target) -> Result<(), String> {
        Ok(())
    }

    /// Replaces the file `path` on the device with `text`, atomically on the device's side
    /// (used for partitions.conf on standby subnet managers).
    fn install_file(&self, target: &Target, path: &str, _text: &str) -> Result<(), DeviceError> {
        Err(DeviceError::Connect {
            device: target.name.clone(),
            address: target.address.clone(),
            reason: format!("this transport cannot install {path}"),
        })
    }

    /// A broker that sends this device's operations together with other jobs' on its own
    /// sessions (jobnetd, [`crate::drivers::merge`]), and bounds the sessions to the device
    /// itself; `None` (the default) when the job sends them on its own session.
    fn merger(&self, _target: &Target, _profile: &Profile) -> Option<&dyn Merger> {
        None
    }

    /// Sessions for reads only, which a broker may answer together with other jobs' identical
    /// reads (jobnetd's read queue); `None` (the default): reads go over `connect`'s sessions.
    fn reads(&self) -> Option<&dyn Connector> {
        None
    }
}

/// Sends one job's operations on a device merged with other jobs' ([`Connector::merger`]).
pub trait Merger: Sync {
    /// Hands `sub` over and waits (at most `wait` for a session, then the lines' own time) for
    /// what happened to each operation. `Err(Unmerged::Unreachable)`: the broker is gone and
    /// nothing was sent; the job sends its operations itself.
    fn apply_merged(
        &self,
        target: &Target,
        profile: &Profile,
        sub: crate::drivers::merge::Submission,
        wait: Duration,
    ) -> Result<crate::drivers::merge::Merged, Unmerged>;

    /// Waits (at most `wait`) until nothing of `job` waits or is being sent on `target`: an
    /// undo must not overtake the changes it undoes. `Ok(false)`: the wait ran out.
    fn settle(
        &self,
        target: &Target,
        profile: &Profile,
        job: &str,
        wait: Duration,
    ) -> Result<bool, String>;
}

/// Why a merged apply gave no per-operation answer.
#[derive(Debug)]
pub enum Unmerged {
    /// The broker did not take it: nothing was sent.
    Unreachable(String),
    /// The broker took it and then the answer was lost (it died, or the wait ran out): the
    /// operations may or may not have been sent.
    Lost(DeviceError),
}

/// The connector of a real run: `address: local` runs commands on this host, every other
/// address is reached over SSH.
pub struct RealConnector {
    pub command_timeout: Duration,
    pub ssh: ssh::SshConnector,
}

/// Why a [`RealConnector`] cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    #[error("cannot start the SSH runtime: {0}")]
    Runtime(std::io::Error),
}

impl RealConnector {
    /// SSH with the logins of the credentials file and the host keys of `known_hosts`, local
    /// commands for `address: local`. A credentials file that does not exist only matters once
    /// an SSH device is contacted (the login says so then).
    pub fn new(
        credentials: &std::path::Path,
        known_hosts: &std::path::Path,
        trust_on_first_use: bool,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<Self, SetupError> {
        let logins = match credentials::Credentials::load(credentials) {
            Ok(c) => Some(std::sync::Arc::new(c)),
            Err(credentials::CredentialsError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        let ssh = ssh::SshConnector::new(ssh::SshOptions {
            credentials: logins,
            credentials_path: credentials.to_path_buf(),
            known_hosts: known_hosts.to_path_buf(),
            trust_on_first_use,
            connect_timeout,
            command_timeout,
        })
        .map_err(SetupError::Runtime)?;
        Ok(RealConnector {
            command_timeout,
            ssh,
        })
    }
}

impl Connector for RealConnector {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        if target.is_local() {
            return Ok(Box::new(local::LocalSession::new(
                &target.name,
                profile,
                self.command_timeout,
            )));
        }
        self.ssh.connect(target, profile)
    }

    fn preflight(&self, target: &Target) -> Result<(), String> {
        if target.is_local() {
            return Ok(());
        }
        self.ssh.preflight(target)
    }

    fn install_file(&self, target: &Target, path: &str, text: &str) -> Result<(), DeviceError> {
        if target.is_local() {
            let fail = |e: std::io::Error| DeviceError::Rejected {
                device: target.name.clone(),
                command: format!("write {path}"),
                answer: e.to_string(),
            };
            return crate::base::fsutil::replace_file(
                std::path::Path::new(path),
                text.as_bytes(),
                0o644,
            )
            .map_err(fail);
        }
        self.ssh.install_file(target, path, text)
    }
}

/// Checks an answer against the profile's error patterns.
pub fn check_answer(
    profile: &Profile,
    device: &str,
    command: &str,
    answer: String,
) -> Result<String, DeviceError> {
    match profile
        .errors
        .iter()
        .find(|re| answer.lines().any(|l| re.is_match(l)))
    {
        Some(_) => Err(DeviceError::Rejected {
            device: device.to_string(),
            command: command.to_string(),
            answer: answer.trim().to_string(),
        }),
        None => Ok(answer),
    }
}
