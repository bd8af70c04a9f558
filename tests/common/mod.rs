//! What the integration tests that run the `jobnet` binary share: running it with none of the
//! caller's `JOBNET_*` variables (never a real state file or site configuration), its output, and
//! a scratch directory per test. Each test file takes what it needs (`mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A finished run: exit code (-1 when killed by a signal), stdout and stderr.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `c` to the end.
pub fn run(mut c: Command) -> Out {
    let o = c.output().expect("run");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `jobnet ARGS` in `dir` (or here), with no `JOBNET_*` variable of the caller's environment and
/// a state file and site configuration that do not exist.
pub fn jobnet_in(dir: Option<&Path>, args: &[&str]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet"));
    c.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("JOBNET_") {
            c.env_remove(k);
        }
    }
    c.env("JOBNET_STATE", "/nonexistent/jobnet-tests/state.db");
    c.env("JOBNET_CONFIG", "/nonexistent/jobnet-tests/jobnet.yaml");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    run(c)
}

/// `jobnet ARGS` as [`jobnet_in`], in the package's directory.
pub fn jobnet(args: &[&str]) -> Out {
    jobnet_in(None, args)
}

/// A fresh scratch directory `group/name` under the test target directory.
pub fn scratch(group: &str, name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
