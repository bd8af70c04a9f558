//! Failpoints: deterministic places where a test can make jobnet fail, crash or stop, set with
//! `JOBNET_FAILPOINT=POINT:N:ACTION[,POINT:N:ACTION...]`.
//!
//! Points: `intent` (the N-th journal intent was written, the device not yet touched), `done` (the
//! N-th operation succeeded on the device, its result not yet journaled), `undo` (before the N-th
//! undo). Actions: `error` (the operation fails as if the device refused it), `abort` (the process
//! dies at once, no cleanup), `pause` (the process writes its pid to `$JOBNET_FAILPOINT_FILE` and
//! sleeps, so a test can `kill -9` it exactly there). Counting is per point, across devices.

use crate::apply::faults::{Faults, Point};
use crate::drivers::transport::DeviceError;
use std::sync::Mutex;

/// A `JOBNET_FAILPOINT` value that cannot be understood.
#[derive(Debug, thiserror::Error)]
#[error("JOBNET_FAILPOINT {0}")]
pub struct FailpointError(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Error,
    Abort,
    Pause,
}

#[derive(Debug, Default)]
pub struct Failpoints {
    rules: Vec<(Point, usize, Action)>,
    counters: Mutex<[usize; 3]>,
}

impl Failpoints {
    /// Reads `JOBNET_FAILPOINT`; none when unset.
    pub fn from_env() -> Result<Self, FailpointError> {
        match std::env::var("JOBNET_FAILPOINT") {
            Ok(spec) if !spec.is_empty() => Self::parse(&spec),
            _ => Ok(Self::default()),
        }
    }

    pub fn parse(spec: &str) -> Result<Self, FailpointError> {
        let mut rules = Vec::new();
        for item in spec.split(',') {
            let parts: Vec<&str> = item.split(':').collect();
            let [point, n, action] = parts[..] else {
                return Err(FailpointError(format!(
                    "item `{item}` is not POINT:N:ACTION"
                )));
            };
            let point = match point {
                "intent" => Point::Intent,
                "done" => Point::Done,
                "undo" => Point::Undo,
                _ => {
                    return Err(FailpointError(format!(
                        "point `{point}` is unknown; use intent, done or undo"
                    )))
                }
            };
            let n: usize = n
                .parse()
                .map_err(|_| FailpointError(format!("count `{n}` is not a number")))?;
            let action = match action {
                "error" => Action::Error,
                "abort" => Action::Abort,
                "pause" => Action::Pause,
                _ => {
                    return Err(FailpointError(format!(
                        "action `{action}` is unknown; use error, abort or pause"
                    )))
                }
            };
            rules.push((point, n, action));
        }
        Ok(Failpoints {
            rules,
            counters: Mutex::default(),
        })
    }
}

fn point_name(point: Point) -> &'static str {
    match point {
        Point::Intent => "intent",
        Point::Done => "done",
        Point::Undo => "undo",
    }
}

impl Faults for Failpoints {
    /// Counts a pass through `point` and acts if a rule says so.
    fn hit(&self, point: Point, device: &str, command: &str) -> Result<(), DeviceError> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let n = {
            let mut c = self.counters.lock().expect("failpoint counters");
            let e = &mut c[point as usize];
            *e += 1;
            *e
        };
        for (p, at, action) in &self.rules {
            if *p == point && *at == n {
                let point = point_name(point);
                match action {
                    Action::Error => {
                        return Err(DeviceError::Rejected {
                            device: device.to_string(),
                            command: command.to_string(),
                            answer: format!(
                                "failure injected by JOBNET_FAILPOINT={point}:{n}:error"
                            ),
                        })
                    }
                    Action::Abort => std::process::abort(),
                    Action::Pause => {
                        if let Ok(file) = std::env::var("JOBNET_FAILPOINT_FILE") {
                            let _ = std::fs::write(file, std::process::id().to_string());
                        }
                        loop {
                            std::thread::sleep(std::time::Duration::from_secs(3600));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_counts() {
        let f = Failpoints::parse("intent:2:error").unwrap();
        assert!(f.hit(Point::Intent, "sw1", "x").is_ok());
        assert!(f.hit(Point::Done, "sw1", "x").is_ok());
        assert!(
            matches!(f.hit(Point::Intent, "sw2", "y"), Err(DeviceError::Rejected { ref device, .. }) if device == "sw2")
        );
        assert!(f.hit(Point::Intent, "sw1", "x").is_ok());
        assert!(Failpoints::parse("intent:x:error").is_err());
        assert!(Failpoints::parse("somewhere:1:error").is_err());
        assert!(Failpoints::parse("intent:1").is_err());
    }
}
