//! Waits that end when they should: with the state database locked by another process, `up
//! --wait 2` gives up after about 2 s (not SQLite's 60 s) naming the holder, and a SIGTERM ends
//! the wait within a second.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

fn scratch(name: &str) -> PathBuf {
    common::scratch("waits", name)
}

/// An InfiniBand-only fabric (no switch to reach) and a state file with one job in it.
fn setup(name: &str) -> (PathBuf, PathBuf) {
    let d = scratch(name);
    let conf = d.join("partitions.conf");
    std::fs::write(&conf, "Default=0x7fff, ipoib : ALL=full;\n").unwrap();
    let topo = d.join("t.yaml");
    std::fs::write(
        &topo,
        format!(
            "name: ib-only\ninfiniband:\n  pkey_pool: \"0x10-0x12\"\n  partitions_conf: {}\n  reload: {{command: \"true\"}}\n  reload_window_ms: 10\nnodes:\n  - {{name: \"n[1-3]\", ib_guids: [\"0x100001\", \"0x100004\", \"0x100007\"]}}\n",
            conf.display()
        ),
    )
    .unwrap();
    let st = d.join("state.db");
    let o = up(&st, &topo, "1", "n1").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (st, topo)
}

fn up(st: &std::path::Path, topo: &std::path::Path, job: &str, node: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet"));
    c.args([
        "--state",
        st.to_str().unwrap(),
        "--wait",
        "2",
        "up",
        "--topology",
    ])
    .arg(topo)
    .args(["--job", job, "--nodes", node]);
    c
}

/// Holds the state database's write lock, as a hung jobnet process would.
fn hold(st: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(st).unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    c
}

#[test]
fn a_locked_state_ends_the_wait_at_wait_naming_the_holder() {
    let (st, topo) = setup("locked");
    let _held = hold(&st);
    let t = Instant::now();
    let o = up(&st, &topo, "2", "n2").output().unwrap();
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is locked by another process"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "names the holder: {err}"
    );
    assert!(err.contains("after 2 s"), "{err}");
    // The library's message names no flag; the command line adds its own.
    assert!(err.contains("(hint: raise --wait)"), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(20),
        "ended after {took:?}, not at --wait 2"
    );
}

#[test]
fn a_signal_ends_a_wait_for_the_state_lock_within_a_second() {
    let (st, topo) = setup("signal");
    let _held = hold(&st);
    let c = up(&st, &topo, "2", "n2");
    // --wait 2 would end it anyway: a longer one shows the signal is what ends it.
    let args: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args: Vec<String> = args
        .into_iter()
        .map(|a| if a == "2" { "30".to_string() } else { a })
        .collect();
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet"));
    c.args(&args);
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    let after = sent.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("a signal arrived"), "{err}");
    assert!(
        after < Duration::from_secs(2),
        "took {after:?} after SIGTERM"
    );
}
