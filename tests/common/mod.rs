//! What the integration tests that run the `jobnet` binary share: running it with none of the
//! caller's `JOBNET_*` variables (never a real state file or site configuration), its output, and
//! a scratch directory per test, and the one rule for tests that need root. Each test file
//! takes what it needs (`mod common;`).
#![allow(dead_code)]

use std::io::Write;
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

/// Where skipped tests are listed, one line each: `target/skipped-tests.txt` (next to
/// `target/tmp`). `.ci/run` removes it before the tests and fails when they leave it non-empty.
pub fn skipped_list() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("skipped-tests.txt")
}

/// Says that `test` of this test binary was not run, and why, in one line that stays visible:
/// written to the process's stderr directly, past the test harness's capture (which would hide
/// an `eprintln!` of a passing test), and added to [`skipped_list`].
pub fn skip(test: &str, why: &str) {
    let line = format!("SKIPPED ({why}): {}::{test}", env!("CARGO_CRATE_NAME"));
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    let list = skipped_list();
    let known = std::fs::read_to_string(&list).unwrap_or_default();
    if !known.lines().any(|l| l == line) {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&list);
        if let Ok(mut f) = f {
            // One write per line: lines of tests running at once do not interleave.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// Whether this process is root (uid 0, also root of a user namespace).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The one rule for a test that needs root: true when it may run (this process is root). Not
/// root: in jobnet's CI (`.ci/run` sets `JOBNET_CI`; a generic `CI` of some other runner does not
/// count) the test fails, because that CI runs as root and runs every test;
/// elsewhere it is skipped with one visible line saying what was not run and how to run it.
/// `test` is the test function's name, `what` what it needs root for.
pub fn needs_root(test: &str, what: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("JOBNET_CI").is_none(),
        "{}::{test} must run as root in CI: {what}",
        env!("CARGO_CRATE_NAME")
    );
    skip(
        test,
        &format!(
            "needs root: {what}; run as root: sudo -E cargo test --locked --test {} {test}",
            env!("CARGO_CRATE_NAME")
        ),
    );
    false
}

/// Set in the copy of a test that [`root_or_namespace`] runs inside the new namespaces.
const IN_NAMESPACE: &str = "JOBNET_TEST_IN_NAMESPACE";

/// For a test that needs root only for what a user namespace gives an ordinary user (its own
/// network namespace: links, bridges; its own mount namespace: a tmpfs): true when the test's
/// body is to run in this process — as root, or already inside the namespaces. Not root, it
/// runs this one test again in this test binary under `unshare --user --map-root-user --net
/// --mount` with a sysfs of that network namespace on /sys, fails when that copy fails, and
/// returns false (the body has run there). Where user namespaces are not available,
/// [`needs_root`] decides.
pub fn root_or_namespace(test: &str, what: &str) -> bool {
    if is_root() || std::env::var_os(IN_NAMESPACE).is_some() {
        return true;
    }
    let unshare = ["--user", "--map-root-user", "--net", "--mount"];
    let works = Command::new("unshare")
        .args(unshare)
        .args(["mount", "-t", "sysfs", "sysfs", "/sys"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        return needs_root(
            test,
            &format!("{what}; `unshare {}` is refused here", unshare.join(" ")),
        );
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut c = Command::new("unshare");
    // A sysfs of its own: /sys/class/net shows the network namespace /sys was mounted in.
    c.args(unshare)
        .args([
            "sh",
            "-c",
            "mount -t sysfs sysfs /sys && exec \"$0\" \"$@\"",
        ])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1");
    let o = run(c);
    assert!(
        o.code == 0 && o.stdout.contains("test result: ok. 1 passed"),
        "{test} in a user namespace (`unshare {}`), exit {}:\n{}\n{}",
        unshare.join(" "),
        o.code,
        o.stdout,
        o.stderr
    );
    // Its own lines (a skip, a note) are passed on.
    let _ = std::io::stderr().lock().write_all(o.stderr.as_bytes());
    false
}

/// Waits (up to 30 s) until job `job` in the state file `state` has at least `n` journaled
/// operations done: a running `up` got going.
pub fn wait_for_done(state: &Path, job: &str, n: usize) {
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(store)) = jobnet::state::sqlite::SqliteStore::open_existing(state) {
            let job = jobnet::base::types::JobId::parse(job).unwrap();
            let done = jobnet::state::StateStore::journal(&store, &job)
                .map(|j| {
                    j.iter()
                        .filter(|r| r.status == jobnet::state::JournalStatus::Done)
                        .count()
                })
                .unwrap_or(0);
            if done >= n {
                return;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the job never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
