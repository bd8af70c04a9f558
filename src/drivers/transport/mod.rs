//! Transports: how command lines reach a device. A dialect profile (data) says what to send; a
//! transport (code) sends it and returns the device's answer.
//!
//! - [`local`]: runs each line as a command on this host (`address: local`), used for Open
//!   vSwitch driven with ovs-vsctl.
//! - the test kit's `sim` (feature `testkit`): an in-memory switch that interprets a profile's own templates, with state and
//!   injectable faults, for tests and benchmarks.
//!
//! A [`Connector`] opens one [`Session`] per device per apply; every line of that device goes
//! through it. [`DeviceLock`] bounds how many sessions all jobnet processes together hold to one
//! device.

pub mod credentials;
pub mod local;
pub mod ssh;

use crate::drivers::Profile;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A device failure, naming the device, what was sent and what the device answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("cannot connect to {device} ({address}): {reason}")]
    Connect {
        device: String,
        address: String,
        reason: String,
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
    /// A timeout or a lost connection: the device may have acted on the line or not, and the
    /// session can no longer be trusted to keep answers and lines in step.
    pub fn session_broken(&self) -> bool {
        matches!(self, DeviceError::Timeout { .. } | DeviceError::Lost { .. })
    }
}

/// One open session to a device.
pub trait Session: Send {
    /// Sends one line and returns the device's answer, or the device's refusal as an error.
    fn run(&mut self, line: &str) -> Result<String, DeviceError>;
}

/// Where and how to reach a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub driver: String,
    pub address: String,
    pub credentials: Option<String>,
    /// Old SSH algorithms allowed (topology `ssh_legacy: true`).
    pub legacy: bool,
}

/// Opens sessions.
pub trait Connector: Sync {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError>;

    /// Replaces the file `path` on the device with `text`, atomically on the device's side
    /// (used for partitions.conf on standby subnet managers).
    fn install_file(&self, target: &Target, path: &str, _text: &str) -> Result<(), DeviceError> {
        Err(DeviceError::Connect {
            device: target.name.clone(),
            address: target.address.clone(),
            reason: format!("this transport cannot install {path}"),
        })
    }
}

/// The connector of a real run: `address: local` runs commands on this host, every other
/// address is reached over SSH.
pub struct RealConnector {
    pub command_timeout: Duration,
    pub ssh: ssh::SshConnector,
}

impl Connector for RealConnector {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        if target.address == "local" {
            return Ok(Box::new(local::LocalSession::new(
                &target.name,
                profile,
                self.command_timeout,
            )));
        }
        self.ssh.connect(target, profile)
    }

    fn install_file(&self, target: &Target, path: &str, text: &str) -> Result<(), DeviceError> {
        if target.address == "local" {
            let fail = |e: std::io::Error| DeviceError::Rejected {
                device: target.name.clone(),
                command: format!("write {path}"),
                answer: e.to_string(),
            };
            let tmp = format!("{path}.jobnet-tmp");
            std::fs::write(&tmp, text).map_err(fail)?;
            return std::fs::rename(&tmp, path).map_err(fail);
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

/// Exclusive use of one port of one device across all jobnet processes on this host: held while
/// a job reads a port it may restrict and changes it, and while an undo decides whether a port
/// gets every VLAN back (`open_ports: restrict`).
#[derive(Debug)]
pub struct PortLock {
    _file: File,
}

impl PortLock {
    pub fn acquire(
        dir: &Path,
        device: &str,
        port: &str,
        wait: Duration,
    ) -> Result<Self, std::io::Error> {
        std::fs::create_dir_all(dir)?;
        // Port names hold `/` and `:`; encode every byte outside [A-Za-z0-9._-].
        let encoded: String = port
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let path = dir.join(format!("{device}.port.{encoded}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(PortLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("port {port} of {device} stayed locked by another jobnet process for {} s ({})", wait.as_secs(), path.display()),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// One of a device's session slots, held through an exclusive file lock: all jobnet processes on
/// this host together hold at most `limit` sessions to one device. Released on drop (and by the
/// kernel when a process dies).
#[derive(Debug)]
pub struct DeviceLock {
    _file: File,
    pub path: PathBuf,
}

impl DeviceLock {
    pub fn acquire(
        dir: &Path,
        device: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Self, std::io::Error> {
        std::fs::create_dir_all(dir)?;
        let start = Instant::now();
        loop {
            for slot in 0..limit.max(1) {
                let path = dir.join(format!("{device}.{slot}.lock"));
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)?;
                match file.try_lock() {
                    Ok(()) => return Ok(DeviceLock { _file: file, path }),
                    Err(std::fs::TryLockError::WouldBlock) => {}
                    Err(std::fs::TryLockError::Error(e)) => return Err(e),
                }
            }
            if start.elapsed() >= wait {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "all {limit} session slots of {device} stayed busy for {} s",
                        wait.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_slots_are_bounded() {
        let dir = std::env::temp_dir().join(format!("jobnet-locks-{}", std::process::id()));
        let a = DeviceLock::acquire(&dir, "sw1", 2, Duration::from_millis(50)).unwrap();
        let b = DeviceLock::acquire(&dir, "sw1", 2, Duration::from_millis(50)).unwrap();
        assert_ne!(a.path, b.path);
        let e = DeviceLock::acquire(&dir, "sw1", 2, Duration::from_millis(50)).unwrap_err();
        assert!(
            e.to_string()
                .contains("all 2 session slots of sw1 stayed busy"),
            "{e}"
        );
        assert!(
            DeviceLock::acquire(&dir, "sw2", 2, Duration::from_millis(50)).is_ok(),
            "other devices are independent"
        );
        drop(a);
        assert!(
            DeviceLock::acquire(&dir, "sw1", 2, Duration::from_millis(50)).is_ok(),
            "a freed slot is reused"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
