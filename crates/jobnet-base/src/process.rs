//! Running a local program the way jobnet runs every program: argv split at white space (no
//! shell, so no quoting, pipes or variables), stdin closed, both output pipes drained while it
//! runs (a child blocked on a full pipe would never exit) and capped, killed after a time limit.
//!
//! A program named without a `/` is found by its absolute path: the site's `programs:` table
//! ([`set_programs`], from /etc/jobnet/jobnet.yaml) first, then the system directories
//! ([`SYSTEM_DIRS`]) — never `$PATH`, which batch-system hooks do not set (and which a caller
//! could point anywhere).

use crate::limits::ANSWER;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// What a finished program left.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("empty command")]
    Empty,
    #[error("program `{program}` is not in the site's `programs:` table (/etc/jobnet/jobnet.yaml) nor in /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin, /bin; give its absolute path there")]
    NotFound { program: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("did not finish within {:.1} s and was killed", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("was killed: a signal asked jobnet to stop")]
    Interrupted,
    #[error("{0}")]
    Wait(std::io::Error),
}

/// Where a program named without a path is looked for, in order, after the `programs:` table.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

static PROGRAMS: std::sync::OnceLock<BTreeMap<String, PathBuf>> = std::sync::OnceLock::new();

/// The site's absolute paths of external programs by name (`ovs-vsctl`, `scontrol`, ...); set
/// once, before any program runs.
pub fn set_programs(programs: BTreeMap<String, PathBuf>) {
    let _ = PROGRAMS.set(programs);
}

/// The absolute path of `program`: as given when it has a `/`, else from the `programs:` table,
/// else the first of [`SYSTEM_DIRS`] that has it.
pub fn resolve(program: &str) -> Result<PathBuf, RunError> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    if let Some(p) = PROGRAMS.get().and_then(|m| m.get(program)) {
        return Ok(p.clone());
    }
    SYSTEM_DIRS
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| RunError::NotFound {
            program: program.to_string(),
        })
}

/// Runs `line` (split at white space), in `cwd` when given, for at most `timeout`.
pub fn run(line: &str, cwd: Option<&Path>, timeout: Duration) -> Result<Finished, RunError> {
    let argv: Vec<&str> = line.split_whitespace().collect();
    run_argv(&argv, cwd, timeout)
}

/// Runs the program `argv[0]` with exactly the arguments `argv[1..]` (no splitting, no shell),
/// in `cwd` when given, for at most `timeout`.
pub fn run_argv(
    argv: &[&str],
    cwd: Option<&Path>,
    timeout: Duration,
) -> Result<Finished, RunError> {
    let (program, args) = argv.split_first().ok_or(RunError::Empty)?;
    let path = resolve(program)?;
    let mut cmd = Command::new(&path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        program: program.to_string(),
        source,
    })?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(ANSWER as u64).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    // The command's own limit, cut to what is left of the whole command's deadline; a signal
    // ends the wait at once.
    let deadline = crate::deadline::Deadline::within_command(timeout);
    let status = loop {
        match child.try_wait().map_err(RunError::Wait)? {
            Some(s) => break s,
            None if crate::deadline::work_interrupted() => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Interrupted);
            }
            None if !deadline.passed() => std::thread::sleep(Duration::from_millis(1)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Timeout(timeout.min(deadline.budget())));
            }
        }
    };
    Ok(Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}
