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
//! Coalescing: every write of partitions.conf bumps a generation counter beside it (see
//! [`crate::ib::partitions::file`]). A writer waits `reload_window_ms`, then reloads only if no
//! reload has covered its generation yet; so a burst of jobs gives one reload per window, and
//! every job still verifies its own ports afterwards.

use crate::base::process::RunError;
use crate::ib::partitions::file::{self, Generations};
use crate::topology::{IbApply, Reload};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a reload command may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Why OpenSM could not be made to apply the file, or did not.
#[derive(Debug, thiserror::Error)]
pub enum OpenSmError {
    #[error("OpenSM pidfile: {0}; is OpenSM running?")]
    Pidfile(crate::base::limits::FileError),
    #[error("OpenSM pidfile {path} does not hold a pid: `{text}`")]
    NotAPid { path: PathBuf, text: String },
    #[error("OpenSM is not running: pid {pid} from {} does not exist", .path.display())]
    NotRunning { pid: u32, path: PathBuf },
    #[error("OpenSM pidfile {} is stale: {why}; jobnet sends no signal to it. Is OpenSM running? Start it (it rewrites its pidfile) or point `reload` at the right pidfile", .path.display())]
    Stale { path: PathBuf, why: String },
    #[error("cannot signal OpenSM (pid {pid}): {source}")]
    Signal {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("`{argv}`: {source}")]
    Run {
        argv: String,
        #[source]
        source: RunError,
    },
    #[error("`{argv}` failed ({status}): {}", if .stderr.is_empty() { "(no output)" } else { .stderr.as_str() })]
    Failed {
        argv: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("PKey {pkey} did not appear on port(s) {} within {timeout_ms} ms (checked with `{template}`)", .ports.join(", "))]
    NotVerified {
        pkey: String,
        ports: Vec<String>,
        timeout_ms: u64,
        template: String,
    },
    #[error("standby SM: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Standby(Vec<crate::drivers::transport::DeviceError>),
    #[error(transparent)]
    File(#[from] file::WriteError),
}

impl OpenSmError {
    /// A standby SM did not get the file: a failover would bring back what the primary dropped.
    pub fn is_standby(&self) -> bool {
        matches!(self, OpenSmError::Standby(_))
    }
}

/// Runs `argv` (split at white space, no shell) in `/`, killing it after `timeout`.
fn run(argv: &str, timeout: Duration) -> Result<String, OpenSmError> {
    let done =
        crate::base::process::run(argv, Some(Path::new("/")), timeout).map_err(|source| {
            OpenSmError::Run {
                argv: argv.into(),
                source,
            }
        })?;
    if done.status.success() {
        Ok(done.stdout)
    } else {
        Err(OpenSmError::Failed {
            argv: argv.into(),
            status: done.status,
            stderr: done.stderr.trim().to_string(),
        })
    }
}

/// Seconds since the epoch at which process `pid` started (from /proc/PID/stat and the boot time).
fn started_at(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: f64 = boot
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
fn check_opensm(pid: u32, pidfile: &Path) -> Result<(), OpenSmError> {
    let stale = |why: String| OpenSmError::Stale {
        path: pidfile.to_path_buf(),
        why,
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

fn signal_pidfile(p: &Path) -> Result<(), OpenSmError> {
    let text = crate::base::limits::read_text(p, crate::base::limits::PIDFILE)
        .map_err(OpenSmError::Pidfile)?;
    let pid: u32 = text.trim().parse().map_err(|_| OpenSmError::NotAPid {
        path: p.to_path_buf(),
        text: text.trim().to_string(),
    })?;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(OpenSmError::NotRunning {
            pid,
            path: p.to_path_buf(),
        });
    }
    check_opensm(pid, p)?;
    // SAFETY: kill(2) with a pid read from the pidfile and a valid signal number.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) } != 0 {
        return Err(OpenSmError::Signal {
            pid,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Makes OpenSM re-read partitions.conf now.
pub fn reload(r: &Reload) -> Result<(), OpenSmError> {
    match r {
        Reload::Pidfile(p) => signal_pidfile(p),
        Reload::SystemdUnit(unit) => {
            run(&format!("systemctl kill -s HUP {unit}"), RELOAD_TIMEOUT).map(drop)
        }
        Reload::Command(c) => run(c, RELOAD_TIMEOUT).map(drop),
    }
}

/// How long a job leaves its reload to later writers while writes keep coming, and the least
/// time between two reloads: this many coalescing windows.
pub const DEFER_WINDOWS: u32 = 10;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Waits the coalescing window, then, unless a later reload already covered `generation`:
/// copies the current file to the standby SMs with `push` (before the reload, so a failover keeps
/// what the primary applies), then reloads. Returns whether this call reloaded. A failed push or
/// reload leaves the generation uncovered, so every job it would have covered tries again.
///
/// While other jobs keep writing (a burst), the reload is left to the latest writer, whose own
/// reload covers this write too; and while reloads come close together, two are at least
/// [`DEFER_WINDOWS`] windows apart (OpenSM sweeps the fabric on each). After that many more windows without a reload that
/// covers its write, a job reloads itself. So a burst of writes costs about one reload per
/// `DEFER_WINDOWS` windows (and a writer that died before its reload delays the others by that
/// much at most), while a lone job reloads after one window as before.
pub fn reload_coalesced(
    s: &IbApply,
    generation: u64,
    wait: Duration,
    push: &dyn Fn(&str) -> Result<(), OpenSmError>,
) -> Result<bool, OpenSmError> {
    let window = Duration::from_millis(s.window_ms);
    std::thread::sleep(window);
    let defer_until = Instant::now() + window * DEFER_WINDOWS;
    loop {
        let _lock = file::lock(&s.partitions_conf, wait)?;
        let g = Generations::read(&s.partitions_conf);
        if g.reloaded >= generation {
            return Ok(false);
        }
        let later_writes = g.written > generation;
        let min_gap = u64::try_from((window * DEFER_WINDOWS).as_millis()).unwrap_or(u64::MAX);
        // Spaced only while reloads come close together (a burst): a job after a lone reload
        // (another job's `down`) is not held.
        let in_burst = g.reloaded_at_ms.saturating_sub(g.reloaded_before_ms) < min_gap;
        let too_soon = in_burst && now_ms() < g.reloaded_at_ms.saturating_add(min_gap);
        if (later_writes || too_soon)
            && Instant::now() < defer_until
            && !crate::base::deadline::work_interrupted()
        {
            drop(_lock);
            std::thread::sleep((window / 4).max(Duration::from_millis(10)));
            continue;
        }
        if !s.standbys.is_empty() {
            let text = crate::base::limits::read_text(
                &s.partitions_conf,
                crate::base::limits::PARTITIONS_CONF,
            )
            .map_err(|e| file::WriteError::Io {
                path: s.partitions_conf.display().to_string(),
                op: "read it",
                source: e.into_io(),
            })?;
            push(&text)?;
        }
        reload(&s.reload)?;
        Generations {
            reloaded: g.written,
            reloads: g.reloads + 1,
            reloaded_at_ms: now_ms(),
            reloaded_before_ms: g.reloaded_at_ms,
            ..g
        }
        .write(&s.partitions_conf)?;
        return Ok(true);
    }
}

/// Checks that every port in `guids` shows `pkey_full` (e.g. `0x9001`), retrying until the
/// timeout.
pub fn verify(s: &IbApply, guids: &[String], pkey_full: &str) -> Result<(), OpenSmError> {
    let Some(template) = &s.verify_command else {
        return Ok(());
    };
    // The verification's own timeout, never past the command's deadline.
    let deadline = Instant::now()
        + crate::base::deadline::Deadline::within_command(Duration::from_millis(
            s.verify_timeout_ms,
        ))
        .left();
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
        if Instant::now() >= deadline || crate::base::deadline::work_interrupted() {
            return Err(OpenSmError::NotVerified {
                pkey: pkey_full.into(),
                ports: pending.iter().map(|g| g.to_string()).collect(),
                timeout_ms: s.verify_timeout_ms,
                template: template.clone(),
            });
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
        // Until the child has exec'd, it is still a copy of this test binary.
        let comm = format!("/proc/{}/comm", other.id());
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::write(&pidfile, format!("{}\n", other.id())).unwrap();
        let e = reload(&Reload::Pidfile(pidfile.clone()))
            .unwrap_err()
            .to_string();
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
        let e = reload(&Reload::Pidfile(dir.join("other.pid")))
            .unwrap_err()
            .to_string();
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
                        let g = {
                            let _l =
                                file::lock(&s.partitions_conf, Duration::from_secs(5)).unwrap();
                            Generations::note_write(&s.partitions_conf).unwrap()
                        };
                        reload_coalesced(s, g, Duration::from_secs(5), &|_| Ok(())).unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let n = Generations::read(&s.partitions_conf).reloads;
        assert!((1..=3).contains(&n), "{n} reloads for 10 writes");
        assert_eq!(reloaded.iter().filter(|r| **r).count() as u64, n);
        let g = Generations::read(&s.partitions_conf);
        assert_eq!(
            (g.written, g.reloaded),
            (10, 10),
            "every write is covered by a reload"
        );
    }

    /// Writes that keep coming (one every 40 ms for 1.6 s, windows of 100 ms): the reload is
    /// left to later writers, and reloads are DEFER_WINDOWS windows apart, so 40 writes cost a
    /// few reloads, not one per window; every write is covered, and none waits much longer than
    /// the deferral.
    #[test]
    fn a_steady_stream_of_writes_is_reloaded_rarely_and_completely() {
        let dir = std::env::temp_dir().join(format!("jobnet-osm-stream-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = settings(&dir, Reload::Command("true".into()));
        let waited: Vec<Duration> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..40)
                .map(|i| {
                    let s = &s;
                    sc.spawn(move || {
                        std::thread::sleep(Duration::from_millis(40 * i));
                        let g = {
                            let _l =
                                file::lock(&s.partitions_conf, Duration::from_secs(5)).unwrap();
                            Generations::note_write(&s.partitions_conf).unwrap()
                        };
                        let t = Instant::now();
                        reload_coalesced(s, g, Duration::from_secs(5), &|_| Ok(())).unwrap();
                        t.elapsed()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let g = Generations::read(&s.partitions_conf);
        assert_eq!((g.written, g.reloaded), (40, 40), "every write is covered");
        assert!(
            g.reloads <= 3,
            "{} reloads for 40 writes over 1.6 s",
            g.reloads
        );
        let longest = waited.iter().max().unwrap();
        assert!(
            *longest < Duration::from_millis(100) * (DEFER_WINDOWS + 4),
            "{longest:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Writes with gaps longer than the window (every 250 ms, windows of 100 ms): once reloads
    /// come close together they are at least DEFER_WINDOWS windows (1 s) apart; a lone write
    /// after a lone reload is reloaded after one window.
    #[test]
    fn reloads_are_spaced_and_a_lone_write_is_not_held() {
        let dir = std::env::temp_dir().join(format!("jobnet-osm-spaced-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = settings(&dir, Reload::Command("true".into()));
        let write = |s: &IbApply| {
            let _l = file::lock(&s.partitions_conf, Duration::from_secs(5)).unwrap();
            Generations::note_write(&s.partitions_conf).unwrap()
        };
        std::thread::scope(|sc| {
            for i in 0..10u64 {
                let s = &s;
                sc.spawn(move || {
                    std::thread::sleep(Duration::from_millis(250 * i));
                    let g = write(s);
                    reload_coalesced(s, g, Duration::from_secs(5), &|_| Ok(())).unwrap();
                });
            }
        });
        let g = Generations::read(&s.partitions_conf);
        assert_eq!((g.written, g.reloaded), (10, 10));
        assert!(
            g.reloads <= 5,
            "{} reloads for 10 writes over 2.5 s",
            g.reloads
        );
        // A lone job's reload, then another job 300 ms later: neither is held for the spacing.
        std::thread::sleep(Duration::from_millis(1100));
        for pause in [300, 0] {
            let g = write(&s);
            let t = Instant::now();
            assert!(reload_coalesced(&s, g, Duration::from_secs(5), &|_| Ok(())).unwrap());
            assert!(
                t.elapsed() < Duration::from_millis(400),
                "{:?}",
                t.elapsed()
            );
            std::thread::sleep(Duration::from_millis(pause));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reload_failures_name_the_cause() {
        let dir = std::env::temp_dir().join(format!("jobnet-osm-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("opensm.pid");
        assert!(reload(&Reload::Pidfile(pidfile.clone()))
            .unwrap_err()
            .to_string()
            .contains("is OpenSM running?"));
        std::fs::write(&pidfile, "999999999\n").unwrap();
        assert!(reload(&Reload::Pidfile(pidfile))
            .unwrap_err()
            .to_string()
            .contains("OpenSM is not running: pid 999999999"));
        assert!(reload(&Reload::Command("false".into()))
            .unwrap_err()
            .to_string()
            .contains("`false` failed"));
        let e = run("sleep 5", Duration::from_millis(200))
            .unwrap_err()
            .to_string();
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
        let e = verify(&s, &["0x1".into()], "0x9001")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("PKey 0x9001 did not appear on port(s) 0x1 within 500 ms"),
            "{e}"
        );
    }
}
