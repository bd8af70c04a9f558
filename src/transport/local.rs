//! Runs each command line as a process on this host, for devices with `address: local` (Open
//! vSwitch bridges driven by ovs-vsctl). Lines are split at white space into argv and executed
//! directly, never through a shell: every value in them was validated as a strict word.

use super::{check_answer, DeviceError, Session};
use crate::drivers::Profile;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        let argv: Vec<&str> = line.split_whitespace().collect();
        let Some((program, args)) = argv.split_first() else {
            return Ok(String::new());
        };
        let rejected = |answer: String| DeviceError::Rejected {
            device: self.device.clone(),
            command: line.to_string(),
            answer,
        };
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| rejected(format!("cannot run {program}: {e}")))?;
        // Drain both pipes while waiting: a child blocked on a full pipe would never exit.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(p) = pipe {
                    let _ = p.take(crate::limits::ANSWER as u64).read_to_end(&mut buf);
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let out_reader = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err_reader = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| rejected(e.to_string()))? {
                break status;
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DeviceError::Timeout {
                    device: self.device.clone(),
                    command: line.to_string(),
                    secs: self.timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if !status.success() {
            let answer = if err.trim().is_empty() {
                format!("exit status {status}")
            } else {
                err.trim().to_string()
            };
            return Err(rejected(answer));
        }
        check_answer(&self.profile, &self.device, line, out)
    }
}
