//! Runs each command line as a process on this host, for devices with `address: local` (Open
//! vSwitch bridges driven by ovs-vsctl). Lines are split at white space into argv and executed
//! directly, never through a shell: every value in them was validated as a strict word.

use super::{check_answer, DeviceError, Session};
use crate::drivers::Profile;
use std::time::Duration;

pub struct LocalSession {
    device: String,
    profile: Profile,
    timeout: Duration,
}

impl LocalSession {
    pub fn new(device: &str, profile: &Profile, timeout: Duration) -> Self {
        LocalSession {
            device: device.to_string(),
            profile: profile.clone(),
            timeout,
        }
    }
}

impl Session for LocalSession {
    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        if line.split_whitespace().next().is_none() {
            return Ok(String::new());
        }
        let rejected = |answer: String| DeviceError::Rejected {
            device: self.device.clone(),
            command: line.to_string(),
            answer,
        };
        let done = match crate::base::process::run(line, None, self.timeout) {
            Ok(done) => done,
            Err(crate::base::process::RunError::Timeout(_)) => {
                return Err(DeviceError::Timeout {
                    device: self.device.clone(),
                    command: line.to_string(),
                    secs: self.timeout.as_secs(),
                })
            }
            Err(e) => return Err(rejected(e.to_string())),
        };
        if !done.status.success() {
            let answer = if done.stderr.trim().is_empty() {
                format!("exit status {}", done.status)
            } else {
                done.stderr.trim().to_string()
            };
            return Err(rejected(answer));
        }
        check_answer(&self.profile, &self.device, line, done.stdout)
    }
}
