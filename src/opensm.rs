//! Making OpenSM apply partitions.conf: reloading it, coalescing reloads when many jobs change
//! the file at once, and checking that member ports really carry a job's PKey.
//!
//! Reload methods (topology `infiniband.reload`): `{pidfile: PATH}` sends SIGHUP to the pid in
//! the file — only after checking that the pid is OpenSM (its `/proc/PID/comm` or executable is
//! `opensm`) and that the process started before the pidfile was written, because a pidfile can
//! outlive OpenSM and its pid be reused by anything; `{systemd_unit: NAME}` runs `systemctl kill
//! -s HUP NAME` (Debian's `opensm@GUID` units have no reload action); `{command: "..."}` runs a
//! site's command. SIGHUP makes OpenSM do a heavy sweep, which re-reads partitions.conf.
//!
//! Commands (`systemctl`, a `reload.command`, `verify.command`) are split at white space into a
//! program and its arguments and run without a shell (no quoting, no pipes, no variables), with
//! `/` as working directory, stdin closed, the environment of jobnet (hooks have no PATH: give
//! absolute paths), and a time limit; a non-zero exit status is a failure whose stderr is shown.
//!
//! Coalescing: every write bumps a generation counter kept beside partitions.conf (under the
//! partitions.conf lock). A writer waits `reload_window_ms`, then reloads only if no reload has
//! covered its generation yet; so a burst of jobs gives one reload per window, and every job
//! still verifies its own ports afterwards.

use crate::partitions::file::lock_path;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How to make OpenSM re-read partitions.conf.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reload {
    Pidfile(PathBuf),
    SystemdUnit(String),
    Command(String),
}

/// The InfiniBand apply settings of a topology.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IbApply {
    pub partitions_conf: PathBuf,
    pub reload: Reload,
    pub window_ms: u64,
    /// A command template with `{guid}` whose output must contain the job's full-member PKey
    /// (e.g. `smpquery -G pkeys {guid} 1`), checked for every member port.
    pub verify_command: Option<String>,
    pub verify_timeout_ms: u64,
    /// Standby subnet managers that get a copy of the file before each reload.
    #[serde(default)]
    pub standbys: Vec<Standby>,
}

/// A standby SM host: it reads its own partitions.conf when it takes over.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Standby {
    pub name: String,
    pub address: String,
    pub credentials: Option<String>,
    pub ssh_legacy: bool,
    /// The file on that host (default: the same path as the primary's).
    pub partitions_conf: String,
}

impl Standby {
    pub fn target(&self) -> crate::transport::Target {
        crate::transport::Target {
            name: self.name.clone(),
            driver: "opensm".into(),
            address: self.address.clone(),
            credentials: self.credentials.clone(),
            legacy: self.ssh_legacy,
        }
    }
}

/// How long a reload command may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `argv` (split at white space, no shell) in `/`, killing it after `timeout`.
fn run(argv: &str, timeout: Duration) -> Result<String, String> {
    let done = crate::process::run(argv, Some(Path::new("/")), timeout)
        .map_err(|e| format!("`{argv}`: {e}"))?;
    if done.status.success() {
        Ok(done.stdout)
    } else {
        Err(format!(
            "`{argv}` failed ({}): {}",
            done.status,
            done.stderr.trim()
        ))
    }
}

/// Seconds since the epoch at which process `pid` started (from /proc/PID/stat and the boot time).
fn started_at(pid: u32) -> Option<f64> {
    let ticks = crate::state::process_start(pid)? as f64;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: f64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf with a valid name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| btime + ticks / hz as f64)
}

/// Checks that `pid` (read from `pidfile`) is the OpenSM that wrote the file.
fn check_opensm(pid: u32, pidfile: &Path) -> Result<(), String> {
    let stale = |what: String| {
        format!(
            "OpenSM pidfile {} is stale: {what}; jobnet sends no signal to it. Is OpenSM running? Start it (it rewrites its pidfile) or point `reload` at the right pidfile",
            pidfile.display()
        )
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_string())
        .map_err(|_| stale(format!("pid {pid} does not exist")))?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    if comm != "opensm" && exe.as_deref() != Some("opensm") {
        return Err(stale(format!(
            "pid {pid} is `{comm}`, not opensm (OpenSM died and its pid was reused)"
        )));
    }
    let written = std::fs::metadata(pidfile)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    if let (Some(start), Some(written)) = (started_at(pid), written) {
        // Clock ticks and file times differ by rounding: allow two seconds.
        if start > written + 2.0 {
            return Err(stale(format!(
                "the opensm with pid {pid} started {:.0} s after the file was written, so another OpenSM wrote it",
                start - written
            )));
        }
    }
    Ok(())
}

/// Makes OpenSM re-read partitions.conf now.
pub fn reload(r: &Reload) -> Result<(), String> {
    match r {
        Reload::Pidfile(p) => {
            let text = crate::limits::read_text(p, crate::limits::PIDFILE)
                .map_err(|e| format!("OpenSM pidfile: {e}; is OpenSM running?"))?;
            let pid: u32 = text.trim().parse().map_err(|_| {
                format!(
                    "OpenSM pidfile {} does not hold a pid: `{}`",
                    p.display(),
                    text.trim()
                )
            })?;
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!(
                    "OpenSM is not running: pid {pid} from {} does not exist",
                    p.display()
                ));
            }
            check_opensm(pid, p)?;
            // SAFETY: kill(2) with a pid read from the pidfile and a valid signal number.
            let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
            if rc != 0 {
                return Err(format!(
                    "cannot signal OpenSM (pid {pid}): {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(())
        }
        Reload::SystemdUnit(unit) => {
            run(&format!("systemctl kill -s HUP {unit}"), RELOAD_TIMEOUT).map(drop)
        }
        Reload::Command(c) => run(c, RELOAD_TIMEOUT).map(drop),
    }
}

fn gen_path(conf: &Path) -> PathBuf {
    let name = conf
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    conf.with_file_name(format!(".{name}.jobnet-gen"))
}

fn with_lock<T>(conf: &Path, f: impl FnOnce() -> T) -> Result<T, String> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(conf))
        .map_err(|e| format!("{}: {e}", conf.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", conf.display()))?;
    Ok(f())
}

fn read_gen(conf: &Path) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(gen_path(conf)).unwrap_or_default();
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (
        v.first().copied().unwrap_or(0),
        v.get(1).copied().unwrap_or(0),
        v.get(2).copied().unwrap_or(0),
    )
}

fn write_gen(conf: &Path, written: u64, reloaded: u64, reloads: u64) -> Result<(), String> {
    std::fs::write(gen_path(conf), format!("{written} {reloaded} {reloads}\n"))
        .map_err(|e| format!("{}: {e}", gen_path(conf).display()))
}

/// Records a write of partitions.conf; call while holding the partitions.conf lock. Returns the
/// write's generation.
pub fn note_write_locked(conf: &Path) -> Result<u64, String> {
    let (w, r, n) = read_gen(conf);
    write_gen(conf, w + 1, r, n)?;
    Ok(w + 1)
}

/// The generation of the last write.
pub fn current_generation(conf: &Path) -> u64 {
    read_gen(conf).0
}

/// How many reloads jobnet has sent for this file (for tests and the lab).
pub fn reload_count(conf: &Path) -> u64 {
    read_gen(conf).2
}

/// Waits the coalescing window, then, unless a later reload already covered `generation`:
/// copies the current file to the standby SMs with `push` (before the reload, so a failover keeps
/// what the primary applies), then reloads. Returns whether this call reloaded. A failed push or
/// reload leaves the generation uncovered, so every job it would have covered tries again.
pub fn reload_coalesced(
    s: &IbApply,
    generation: u64,
    push: &dyn Fn(&str) -> Result<(), String>,
) -> Result<bool, String> {
    std::thread::sleep(Duration::from_millis(s.window_ms));
    with_lock(&s.partitions_conf, || {
        let (w, r, n) = read_gen(&s.partitions_conf);
        if r >= generation {
            return Ok(false);
        }
        if !s.standbys.is_empty() {
            let text = std::fs::read_to_string(&s.partitions_conf)
                .map_err(|e| format!("cannot read {}: {e}", s.partitions_conf.display()))?;
            push(&text)?;
        }
        reload(&s.reload).map_err(|e| format!("opensm: {e}"))?;
        write_gen(&s.partitions_conf, w, w, n + 1)?;
        Ok(true)
    })?
}

/// Checks that every port in `guids` shows `pkey_full` (e.g. `0x9001`), retrying until the
/// timeout. Returns the ports that never did.
pub fn verify(s: &IbApply, guids: &[String], pkey_full: &str) -> Result<(), String> {
    let Some(template) = &s.verify_command else {
        return Ok(());
    };
    let deadline = Instant::now() + Duration::from_millis(s.verify_timeout_ms);
    let mut pending: Vec<&String> = guids.iter().collect();
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        pending.retain(|g| {
            !run(&template.replace("{guid}", g), left).is_ok_and(|out| out.contains(pkey_full))
        });
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "PKey {pkey_full} did not appear on port(s) {} within {} ms (checked with `{template}`)",
                pending.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", "),
                s.verify_timeout_ms
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A stale pidfile whose pid now belongs to another process: no signal is sent.
    #[test]
    fn a_reused_pid_is_never_signalled() {
        let dir = std::env::temp_dir().join(format!("jobnet-osm-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("opensm.pid");
        let mut other = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(&pidfile, format!("{}\n", other.id())).unwrap();
        let e = reload(&Reload::Pidfile(pidfile.clone())).unwrap_err();
        assert!(
            e.contains("is stale") && e.contains("is `sleep`, not opensm"),
            "{e}"
        );
        assert!(
            other.try_wait().unwrap().is_none(),
            "the unrelated process still runs"
        );
        let _ = other.kill();
        let _ = other.wait();

        // A process named opensm that started after the pidfile was written is another OpenSM.
        let fake = dir.join("opensm");
        std::fs::copy("/bin/sleep", &fake).unwrap();
        std::fs::write(&pidfile, "1\n").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&pidfile)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut later = Command::new(&fake).arg("30").spawn().unwrap();
        std::fs::write(dir.join("other.pid"), format!("{}\n", later.id())).unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.join("other.pid"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let e = reload(&Reload::Pidfile(dir.join("other.pid"))).unwrap_err();
        assert!(
            e.contains("started") && e.contains("after the file was written"),
            "{e}"
        );
        assert!(later.try_wait().unwrap().is_none());

        // The real one: written after it started; SIGHUP reaches it (sleep dies of it).
        std::fs::write(&pidfile, format!("{}\n", later.id())).unwrap();
        reload(&Reload::Pidfile(pidfile)).unwrap();
        let status = later.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGHUP)
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn settings(dir: &Path, reload: Reload) -> IbApply {
        IbApply {
            partitions_conf: dir.join("partitions.conf"),
            reload,
            window_ms: 100,
            verify_command: None,
            verify_timeout_ms: 500,
            standbys: vec![],
        }
    }

    #[test]
    fn a_burst_of_writes_gives_few_reloads() {
        let dir = std::env::temp_dir().join(format!("jobnet-osm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = settings(&dir, Reload::Command("true".into()));
        let reloaded: Vec<bool> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let s = &s;
                    sc.spawn(move || {
                        let g =
                            with_lock(&s.partitions_conf, || note_write_locked(&s.partitions_conf))
                                .unwrap()
                                .unwrap();
                        reload_coalesced(s, g, &|_| Ok(())).unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let n = reload_count(&s.partitions_conf);
        assert!((1..=3).contains(&n), "{n} reloads for 10 writes");
        assert_eq!(reloaded.iter().filter(|r| **r).count() as u64, n);
        let (w, r, _) = read_gen(&s.partitions_conf);
        assert_eq!((w, r), (10, 10), "every write is covered by a reload");
    }

    #[test]
    fn reload_failures_name_the_cause() {
        let dir = std::env::temp_dir().join(format!("jobnet-osm-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("opensm.pid");
        assert!(reload(&Reload::Pidfile(pidfile.clone()))
            .unwrap_err()
            .contains("is OpenSM running?"));
        std::fs::write(&pidfile, "999999999\n").unwrap();
        assert!(reload(&Reload::Pidfile(pidfile))
            .unwrap_err()
            .contains("OpenSM is not running: pid 999999999"));
        assert!(reload(&Reload::Command("false".into()))
            .unwrap_err()
            .contains("`false` failed"));
        let e = run("sleep 5", Duration::from_millis(200)).unwrap_err();
        assert!(
            e.contains("did not finish within 0.2 s and was killed"),
            "{e}"
        );
        assert_eq!(
            run("pwd", Duration::from_secs(5)).unwrap().trim(),
            "/",
            "commands run in /"
        );
        let s = IbApply {
            verify_command: Some("echo {guid} 0x8001".into()),
            ..settings(&dir, Reload::Command("true".into()))
        };
        assert!(verify(&s, &["0x1".into()], "0x8001").is_ok());
        let e = verify(&s, &["0x1".into()], "0x9001").unwrap_err();
        assert!(
            e.contains("PKey 0x9001 did not appear on port(s) 0x1 within 500 ms"),
            "{e}"
        );
    }
}
