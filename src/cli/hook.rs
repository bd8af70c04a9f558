//! `jobnet hook …` — the batch systems' entry points (slurm.conf's PrologSlurmctld /
//! EpilogSlurmctld, PBS's prologue / epilogue) — and `jobnet job up|down --passport` for
//! SUPPZ-style prologs. Hooks take no flags: everything comes from the site's jobnet.yaml
//! (/etc/jobnet/jobnet.yaml: slurmctld starts its hooks with SLURM_* variables only, so
//! `$JOBNET_CONFIG` reaches them only through a wrapper). Their stdout and stderr go nowhere, so
//! every line is also appended to the configured log with the time, the hook and the job id
//! (syslog when there is no usable log).
//!
//! Exit codes are the batch system's (docs/slurm.md, docs/pbs.md): Slurm requeues a batch job on
//! any non-zero prolog exit, so a failure that a retry would repeat (a refused request, an
//! unreadable job environment, a broken site configuration, the `hold_after`-th failed setup)
//! also holds the job; PBS aborts the job on 1 and requeues it on other non-zero codes.

use super::output::{Fail, Format};
use clap::{Args, Subcommand};
use jobnet::base::time::rfc3339;
use jobnet::base::types::JobId;
use jobnet::jobs::flow::{self, EpilogOutcome, PrologOutcome};
use jobnet::jobs::site::{Site, SiteError, DEFAULT_CONFIG};
use jobnet::jobs::{passport, pbs, slurm, JobMeta};
use jobnet::{Context, Options};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Names the binary may be called by (symbolic links), and the hook each one is.
pub const ENTRY_POINTS: &[(&str, &str)] = &[
    ("jobnet-slurmctld-prolog", "slurm-prolog"),
    ("jobnet-slurmctld-epilog", "slurm-epilog"),
    ("jobnet-pbs-prologue", "pbs-prologue"),
    ("jobnet-pbs-epilogue", "pbs-epilogue"),
];

#[derive(Subcommand)]
pub enum HookCmd {
    /// Slurm PrologSlurmctld: the job's network before it starts (env: SLURM_JOB_*).
    SlurmProlog(HookArgs),
    /// Slurm EpilogSlurmctld: the job's network away when it ends (env: SLURM_JOB_*).
    SlurmEpilog(HookArgs),
    /// PBS prologue: argv JOBID USER GROUP; nodes from $PBS_HOME/aux/JOBID.
    PbsPrologue(PbsArgs),
    /// PBS epilogue: argv JOBID USER GROUP NAME SESSION LIMITS RESOURCES QUEUE ACCOUNT EXIT.
    PbsEpilogue(PbsArgs),
}

#[derive(Args)]
pub struct HookArgs {
    /// The site's hook configuration.
    #[arg(long, env = "JOBNET_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
}

#[derive(Args)]
pub struct PbsArgs {
    /// The site's hook configuration.
    #[arg(long, env = "JOBNET_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// What PBS passes: the job id first, then user, group, ...
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
pub enum JobCmd {
    /// Bring up the network a passport asks for (a SUPPZ-style prolog).
    Up(PassportArgs),
    /// Take a job's network away (a SUPPZ-style epilog).
    Down(PassportDownArgs),
}

#[derive(Args)]
pub struct PassportArgs {
    /// The job's passport (INI: [VM] and [Network]).
    #[arg(long)]
    passport: PathBuf,
    /// Job id.
    #[arg(long)]
    job: String,
    /// The job's nodes as a hostlist, e.g. cn[001-040].
    #[arg(long)]
    nodes: String,
    /// The job's user (its address files are readable by it).
    #[arg(long)]
    user: Option<String>,
    /// The site's hook configuration.
    #[arg(long, env = "JOBNET_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args)]
pub struct PassportDownArgs {
    /// Job id.
    #[arg(long)]
    job: String,
    /// The site's hook configuration.
    #[arg(long, env = "JOBNET_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Where a hook's lines go: the site's `log:` file, or syslog (facility daemon) when that file
/// cannot be opened or the configuration could not be read far enough to name it; and stderr,
/// for a person running the hook by hand (slurmctld 22.05 discards a PrologSlurmctld's output,
/// PBS's MoM a prologue's).
struct Log {
    hook: String,
    job: String,
    file: Option<std::fs::File>,
    /// Also on stderr (for a person running the hook by hand).
    to_stderr: bool,
}

impl Log {
    fn open(path: Option<&Path>, hook: &str, job: &str) -> Log {
        let mut log = Log {
            hook: hook.to_string(),
            job: job.to_string(),
            file: None,
            to_stderr: true,
        };
        if let Some(p) = path {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                Ok(f) => log.file = Some(f),
                Err(e) => log.line(&format!(
                    "cannot open the log {}: {e}; logging to syslog instead",
                    p.display()
                )),
            }
        }
        log
    }

    fn line(&mut self, message: &str) {
        self.write(libc::LOG_NOTICE, message);
    }

    fn error(&mut self, message: &str) {
        self.write(libc::LOG_ERR, message);
    }

    fn write(&mut self, priority: libc::c_int, message: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let event = format!("{} job={}: {}", self.hook, self.job, one_line(message));
        let text = format!("{} jobnet[{}] {event}\n", rfc3339(now), std::process::id());
        let written = match &mut self.file {
            Some(f) => f.write_all(text.as_bytes()).is_ok(),
            None => false,
        };
        if !written {
            syslog(priority, &event);
        }
        if self.to_stderr {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
}

/// A message on one line: its lines joined with ` | `, no other control characters.
fn one_line(message: &str) -> String {
    message
        .trim_end()
        .replace('\n', " | ")
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// One line to syslog as `jobnet[PID]`, facility daemon. Without a syslog daemon it is lost;
/// stderr still has it.
fn syslog(priority: libc::c_int, line: &str) {
    let Ok(text) = std::ffi::CString::new(line.replace('\0', "")) else {
        return;
    };
    // SAFETY: the identity is a static C string (openlog keeps the pointer) and the message a
    // valid C string passed through "%s", so it is never read as a format.
    unsafe {
        libc::openlog(c"jobnet".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON);
        libc::syslog(priority, c"%s".as_ptr(), text.as_ptr());
    }
}

/// The site's configuration and the hook's log (its warnings logged).
///
/// A configuration that cannot be used is reported in the log it names, if the file can be
/// read that far (else syslog), and on stderr once (by the failure the caller returns). The
/// site's `programs:` are set either way (of a broken file, the entries that read cleanly), so
/// a hook that holds a job runs the site's scontrol (else the one in the system directories).
/// The caller decides the exit code.
fn site(config: &Path, hook: &str, job: &str) -> Result<(Site, Log), Box<Unusable>> {
    match Site::load(config) {
        Ok(site) => {
            jobnet::base::process::set_programs(site.programs.clone());
            let mut log = Log::open(Some(&site.log), hook, job);
            for w in &site.warnings {
                log.line(&w.to_string());
            }
            Ok((site, log))
        }
        Err(e) => {
            let salvage = Site::salvage(config);
            jobnet::base::process::set_programs(salvage.programs);
            let mut log = Log::open(salvage.log.as_deref(), hook, job);
            log.to_stderr = false;
            log.error(&e.to_string());
            log.to_stderr = true;
            Err(Box::new(Unusable { error: e, log }))
        }
    }
}

/// A site configuration the hook cannot use, and the log it was reported in.
struct Unusable {
    error: SiteError,
    log: Log,
}

/// A configuration error as the exit code of docs/cli.md (for `jobnet job up|down`): 2 for a
/// file that is wrong or missing, 1 for one that cannot be read.
fn config_fail(e: &SiteError) -> Fail {
    let code = match e {
        SiteError::Io { source, .. } => source.exit_code(),
        SiteError::Invalid { .. } => 2,
    };
    Fail::new(code, e.to_string())
}

/// The facade, configured from the site's file (its `programs:` were set by [`site`]).
fn context(site: &Site) -> Result<Context, Fail> {
    jobnet::base::deadline::set_wait(site.wait);
    if let Some(d) = site.deadline {
        jobnet::base::deadline::set_command_budget(d);
    }
    let service_user = site
        .service_user
        .as_deref()
        .and_then(jobnet::base::users::by_name);
    let ctx = Context::new(Options {
        drivers_dir: site.drivers_dir.clone(),
        state: site.state.clone(),
        state_explicit: true,
        credentials: site.credentials.clone(),
        known_hosts: site.known_hosts.clone(),
        wait: site.wait,
        // $JOBNET_DAEMON over the file's `daemon:`, as for the commands run by hand.
        daemon: match std::env::var("JOBNET_DAEMON") {
            Ok(v) => jobnet::context::daemon_socket(Some(&v)),
            Err(_) => site.daemon.clone(),
        },
        service_user,
        ..Options::default()
    })?;
    super::faults(ctx)
}

pub fn run(cmd: HookCmd) -> Result<(), Fail> {
    match cmd {
        HookCmd::SlurmProlog(a) => slurm_prolog(&a.config),
        HookCmd::SlurmEpilog(a) => slurm_epilog(&a.config),
        HookCmd::PbsPrologue(a) => pbs_prologue(&a.config, &a.args),
        HookCmd::PbsEpilogue(a) => pbs_epilogue(&a.config, &a.args),
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn slurm_prolog(config: &Path) -> Result<(), Fail> {
    let job = env("SLURM_JOB_ID").unwrap_or_else(|| "?".into());
    // Without its site configuration the hook cannot tell what the job needs, and a requeued
    // job reads the same file: the job is held until an administrator fixes it.
    let (site, mut log) = site(config, "slurm-prolog", &job).map_err(|u| {
        let Unusable { error: e, mut log } = *u;
        if let Ok(id) = JobId::parse(&job) {
            let reason = format!(
                "jobnet: held (fix the site configuration, then scontrol release {id}): {e}"
            );
            hold_slurm_job(&id, &reason, &mut log);
        }
        Fail::new(2, e.to_string()).reported()
    })?;
    // Slurm sets the same environment on a retry: held, as for a bad configuration.
    let meta = slurm::from_env(&env).map_err(|e| {
        log.error(&e.0);
        if let Ok(id) = JobId::parse(&job) {
            hold_slurm_job(&id, &format!("jobnet: held: {}", e.0), &mut log);
        }
        Fail::new(1, e.0).reported()
    })?;
    match prolog(&site, &meta, &mut log)? {
        Some(failure) => {
            if failure.hold {
                let reason = format!(
                    "jobnet: held after {} failed network setup(s): {}",
                    failure.failures, failure.error
                );
                hold_slurm_job(&meta.id, &reason, &mut log);
            }
            Err(Fail::new(1, failure.error).reported())
        }
        None => Ok(()),
    }
}

fn slurm_epilog(config: &Path) -> Result<(), Fail> {
    let job = env("SLURM_JOB_ID").unwrap_or_else(|| "?".into());
    let (site, mut log) = site(config, "slurm-epilog", &job)
        .map_err(|u| Fail::new(2, u.error.to_string()).reported())?;
    let id = JobId::parse(&job).map_err(|e| {
        log.error(&format!("SLURM_JOB_ID `{job}`: {e}"));
        Fail::new(1, e.to_string()).reported()
    })?;
    epilog(&site, &id, &mut log)
}

fn pbs_prologue(config: &Path, args: &[String]) -> Result<(), Fail> {
    let job = args.first().cloned().unwrap_or_else(|| "?".into());
    // PBS: 1 aborts the job, any other non-zero exit requeues it; a requeued job would read the
    // same broken configuration.
    let (site, mut log) = site(config, "pbs-prologue", &job).map_err(|u| {
        let Unusable { error, mut log } = *u;
        log.error("aborting the job: the site configuration cannot be used");
        Fail::new(1, error.to_string()).reported()
    })?;
    // Topologies name nodes by PBS's short host names.
    let short = |n: &str| !n.contains('.');
    let meta = pbs::from_hook(args, &site.pbs_home, &short).map_err(|e| {
        log.error(&e.0);
        Fail::new(1, e.0).reported()
    })?;
    match prolog(&site, &meta, &mut log)? {
        // PBS: 1 aborts the job (after `hold_after` failures), 2 requeues it.
        Some(f) if f.hold => {
            log.line(&format!(
                "aborting the job after {} failed network setups",
                f.failures
            ));
            Err(Fail::new(1, f.error).reported())
        }
        Some(f) => Err(Fail::new(2, f.error).reported()),
        None => Ok(()),
    }
}

fn pbs_epilogue(config: &Path, args: &[String]) -> Result<(), Fail> {
    let job = args.first().cloned().unwrap_or_else(|| "?".into());
    let (site, mut log) = site(config, "pbs-epilogue", &job)
        .map_err(|u| Fail::new(2, u.error.to_string()).reported())?;
    let id = JobId::parse(&job).map_err(|e| {
        log.error(&format!("PBS job id `{job}`: {e}"));
        Fail::new(1, e.to_string()).reported()
    })?;
    epilog(&site, &id, &mut log)
}

/// A prolog that failed.
struct Failure {
    error: String,
    /// The exit code of docs/cli.md (for `jobnet job up`).
    code: u8,
    failures: u32,
    hold: bool,
}

/// Runs the prolog flow and logs what happened; `Some` when the job must not start.
fn prolog(site: &Site, meta: &JobMeta, log: &mut Log) -> Result<Option<Failure>, Fail> {
    let ctx = context(site)?;
    super::interrupts()?;
    let outcome = flow::prolog(&ctx, site, meta, &mut |m| log.line(m));
    Ok(match outcome {
        PrologOutcome::Untouched => None,
        PrologOutcome::Up { report, addresses } => {
            let vlan = report
                .vlan
                .map_or("no VLAN".to_string(), |v| format!("VLAN {v}"));
            let pkey = report
                .pkey
                .map(|k| format!(", PKey {k}"))
                .unwrap_or_default();
            let devices: Vec<String> = report.devices.iter().map(|d| d.name.clone()).collect();
            log.line(&format!(
                "up: {vlan}{pkey} on {} in {:.2} s{}",
                if devices.is_empty() {
                    "no device".to_string()
                } else {
                    devices.join(", ")
                },
                report.seconds,
                addresses.map_or(String::new(), |(a, dir)| format!(
                    "; {} VM address(es) in {} written to {}",
                    a.vms.len(),
                    a.subnet,
                    dir.display()
                ))
            ));
            None
        }
        PrologOutcome::FailOpen { error } => {
            log.error(&format!(
                "FAIL-OPEN: the job runs WITHOUT its isolated network (policy fail_open): {error}"
            ));
            None
        }
        PrologOutcome::Failed {
            error,
            code,
            failures,
            hold,
        } => {
            log.error(&format!(
                "failed ({failures} time(s) for this job): {error}"
            ));
            Some(Failure {
                error,
                code,
                failures,
                hold,
            })
        }
    })
}

fn epilog(site: &Site, job: &JobId, log: &mut Log) -> Result<(), Fail> {
    let ctx = context(site)?;
    super::interrupts()?;
    jobnet::base::deadline::finish_work_after_signals();
    match flow::epilog(&ctx, site, job, &mut |m| log.line(m)) {
        EpilogOutcome::Untouched => Ok(()),
        EpilogOutcome::Down(r) => {
            log.line(&format!(
                "down: {} operation(s) undone on {}",
                r.undone,
                if r.devices.is_empty() {
                    "no device".into()
                } else {
                    r.devices.join(", ")
                }
            ));
            Ok(())
        }
        EpilogOutcome::Failed { error } => {
            log.error(&format!("down failed: {error}"));
            Err(Fail::new(1, error).reported())
        }
    }
}

/// Stops Slurm from retrying a job: it is held (JobHeldAdmin) with jobnet's `reason` in its
/// AdminComment, where Slurm keeps administrators' notes. Never in its Comment: that holds the
/// user's `jobnet:` request, which a released job must find again. Run from the failing prolog,
/// before its non-zero exit; as SlurmUser, which may set AdminComment (Slurm 22.05, the lab).
fn hold_slurm_job(job: &JobId, reason: &str, log: &mut Log) {
    let reason: String = one_line(reason).chars().take(400).collect();
    let scontrol = match jobnet::base::process::resolve("scontrol") {
        Ok(p) => p,
        Err(e) => {
            log.error(&format!("cannot hold the job: {e}"));
            return;
        }
    };
    let run = |args: &[&str]| {
        std::process::Command::new(&scontrol)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
    };
    let note = format!("AdminComment={reason}");
    // Tried on Slurm 22.05 (the lab): `scontrol hold` from the failing prolog leaves the job
    // PENDING with Reason=JobHeldAdmin after the prolog's non-zero exit requeues it;
    // `requeuehold` raced with that requeue and the job was retried once more.
    for args in [
        vec!["update", &format!("JobId={job}") as &str, &note],
        vec!["hold", job.as_str()],
    ] {
        match run(&args) {
            Ok(o) if o.status.success() => log.line(&format!("scontrol {}: done", args[0])),
            Ok(o) => {
                let stderr = String::from_utf8_lossy(&o.stderr);
                let said = match stderr.trim() {
                    "" => "(no output)",
                    text => text,
                };
                log.error(&format!(
                    "scontrol {} failed ({}): {said}",
                    args[0], o.status
                ))
            }
            Err(e) => log.error(&format!("cannot run {}: {e}", scontrol.display())),
        }
    }
}

/// `jobnet job up|down`: a passport's network, for batch systems without Slurm/PBS hooks.
pub fn job(cmd: JobCmd) -> Result<(), Fail> {
    match cmd {
        JobCmd::Up(a) => passport_up(&a),
        JobCmd::Down(a) => {
            let (site, mut log) =
                site(&a.config, "job-down", &a.job).map_err(|u| config_fail(&u.error))?;
            let id = JobId::parse(&a.job).map_err(|e| Fail::new(2, format!("--job: {e}")))?;
            epilog(&site, &id, &mut log)
        }
    }
}

fn passport_up(a: &PassportArgs) -> Result<(), Fail> {
    let (site, mut log) = site(&a.config, "job-up", &a.job).map_err(|u| config_fail(&u.error))?;
    let id = JobId::parse(&a.job).map_err(|e| Fail::new(2, format!("--job: {e}")))?;
    let nodes = jobnet::base::hostlist::expand(&a.nodes)
        .map_err(|e| Fail::new(2, format!("--nodes: {e}; write e.g. cn[001-040]")))?;
    let text = jobnet::base::limits::read_text(&a.passport, 1 << 20)
        .map_err(|e| Fail::new(e.exit_code(), e.to_string()))?;
    let p = passport::parse(&text, &a.passport.display().to_string()).map_err(|d| {
        let mut f = Fail::new(
            2,
            format!("{} is not a usable passport", a.passport.display()),
        );
        f.diagnostics = d.sorted();
        f
    })?;
    let ids = a.user.as_deref().and_then(jobnet::base::users::by_name);
    let meta = JobMeta {
        id,
        nodes,
        nodes_from: "--nodes",
        partition: None,
        user: a.user.clone(),
        uid: ids.map(|i| i.0),
        gid: ids.map(|i| i.1),
        account: None,
        texts: Vec::new(),
        restart_count: 0,
    };
    // The passport is the request: the site's policy does not decide for this path.
    let mut passport_site = site.clone();
    passport_site.policy = vec![jobnet::jobs::site::Rule {
        partitions: vec!["*".into()],
        network: Some(p.request),
        ..Default::default()
    }];
    match prolog(&passport_site, &meta, &mut log)? {
        Some(f) => Err(Fail::new(f.code, f.error)),
        None => {
            let addresses = context(&site)?
                .addresses(&meta.id)
                .map_err(|e| Fail::new(e.exit_code(), site.explain(&e)))?;
            if let Some(json) = addresses {
                let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                super::output::out(&match a.format {
                    Format::Json => super::output::json(&v),
                    Format::Text => ip_list(&v),
                })?;
            }
            Ok(())
        }
    }
}

/// The "Virtual machine ip list" from the recorded JSON.
fn ip_list(v: &serde_json::Value) -> String {
    let mut o = String::from("Virtual machine ip list:\n");
    for vm in v["vms"].as_array().into_iter().flatten() {
        o += &format!(
            "************ {} ************\n{} {}\n",
            vm["name"].as_str().unwrap_or(""),
            vm["ip"].as_str().unwrap_or(""),
            vm["mac"].as_str().unwrap_or("")
        );
    }
    o
}
