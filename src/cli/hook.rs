//! `jobnet hook …` — the batch systems' entry points (slurm.conf's PrologSlurmctld /
//! EpilogSlurmctld, PBS's prologue / epilogue) — and `jobnet job up|down --passport` for
//! SUPPZ-style prologs. Hooks take no flags: everything comes from the site's jobnet.yaml
//! (`$JOBNET_CONFIG`). Their stdout and stderr go nowhere, so every line is also appended to the
//! configured log with the time, the hook and the job id.
//!
//! Exit codes are the batch system's: Slurm requeues a batch job on any non-zero prolog exit;
//! PBS aborts the job on 1 and requeues it on other non-zero codes.

use super::output::{Fail, Format};
use clap::{Args, Subcommand};
use jobnet::base::time::rfc3339;
use jobnet::base::types::JobId;
use jobnet::jobs::flow::{self, EpilogOutcome, PrologOutcome};
use jobnet::jobs::site::{Site, DEFAULT_CONFIG};
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

/// Appends hook lines to the site's log (and stderr, for a person running the hook by hand).
struct Log {
    hook: String,
    job: String,
    file: Option<std::fs::File>,
    /// Also on stderr (for a person running the hook by hand).
    to_stderr: bool,
}

impl Log {
    fn open(path: Option<&Path>, hook: &str, job: &str) -> Log {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        Log {
            hook: hook.to_string(),
            job: job.to_string(),
            file,
            to_stderr: true,
        }
    }

    fn line(&mut self, message: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let text = format!(
            "{} jobnet[{}] {} job={}: {}\n",
            rfc3339(now),
            std::process::id(),
            self.hook,
            self.job,
            message.replace('\n', " | ")
        );
        if let Some(f) = &mut self.file {
            let _ = f.write_all(text.as_bytes());
        }
        if self.to_stderr {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
}

/// The site's configuration; a hook that cannot read it logs where it can (the default log;
/// the failure itself goes to stderr once) and fails: 2 for a file that is wrong or missing, 1
/// for one that cannot be read.
fn site(config: &Path, hook: &str, job: &str) -> Result<Site, Fail> {
    Site::load(config).map_err(|e| {
        let mut log = Log::open(Some(Path::new("/var/log/jobnet/hooks.log")), hook, job);
        log.to_stderr = false;
        log.line(&e.to_string());
        let code = match &e {
            jobnet::jobs::site::SiteError::Io { source, .. } => source.exit_code(),
            jobnet::jobs::site::SiteError::Invalid { .. } => 2,
        };
        Fail::new(code, e.to_string())
    })
}

/// The facade, configured from the site's file.
fn context(site: &Site) -> Result<Context, Fail> {
    jobnet::base::process::set_programs(site.programs.clone());
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
    let site = site(config, "slurm-prolog", &job)?;
    let mut log = Log::open(Some(&site.log), "slurm-prolog", &job);
    for w in &site.warnings {
        log.line(&w.to_string());
    }
    let meta = slurm::from_env(&env).map_err(|e| {
        log.line(&e.0);
        Fail::new(1, e.0).reported()
    })?;
    match prolog(&site, &meta, &mut log)? {
        Some(failure) => {
            if failure.hold {
                hold_slurm_job(&meta.id, &failure.error, failure.failures, &mut log);
            }
            Err(Fail::new(1, failure.error).reported())
        }
        None => Ok(()),
    }
}

fn slurm_epilog(config: &Path) -> Result<(), Fail> {
    let job = env("SLURM_JOB_ID").unwrap_or_else(|| "?".into());
    let site = site(config, "slurm-epilog", &job)?;
    let mut log = Log::open(Some(&site.log), "slurm-epilog", &job);
    for w in &site.warnings {
        log.line(&w.to_string());
    }
    let id = JobId::parse(&job).map_err(|e| {
        log.line(&format!("SLURM_JOB_ID `{job}`: {e}"));
        Fail::new(1, e.to_string()).reported()
    })?;
    epilog(&site, &id, &mut log)
}

fn pbs_prologue(config: &Path, args: &[String]) -> Result<(), Fail> {
    let job = args.first().cloned().unwrap_or_else(|| "?".into());
    let site = site(config, "pbs-prologue", &job)?;
    let mut log = Log::open(Some(&site.log), "pbs-prologue", &job);
    for w in &site.warnings {
        log.line(&w.to_string());
    }
    // Topologies name nodes by PBS's short host names.
    let short = |n: &str| !n.contains('.');
    let meta = pbs::from_hook(args, &site.pbs_home, &short).map_err(|e| {
        log.line(&e.0);
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
    let site = site(config, "pbs-epilogue", &job)?;
    let mut log = Log::open(Some(&site.log), "pbs-epilogue", &job);
    for w in &site.warnings {
        log.line(&w.to_string());
    }
    let id = JobId::parse(&job).map_err(|e| {
        log.line(&format!("PBS job id `{job}`: {e}"));
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
            log.line(&format!(
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
            log.line(&format!(
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
            log.line(&format!("down failed: {error}"));
            Err(Fail::new(1, error).reported())
        }
    }
}

/// Stops Slurm from retrying a job whose network cannot be set up: it is held (JobHeldAdmin)
/// with the reason in its comment. Run from the failing prolog, before its non-zero exit.
fn hold_slurm_job(job: &JobId, error: &str, failures: u32, log: &mut Log) {
    let reason: String = format!("jobnet: held after {failures} failed network setup(s): {error}")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let scontrol = match jobnet::base::process::resolve("scontrol") {
        Ok(p) => p,
        Err(e) => {
            log.line(&format!("cannot hold the job: {e}"));
            return;
        }
    };
    let run = |args: &[&str]| {
        std::process::Command::new(&scontrol)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
    };
    let comment = format!("Comment={reason}");
    // Tried on Slurm 22.05 (the lab): `scontrol hold` from the failing prolog leaves the job
    // PENDING with Reason=JobHeldAdmin after the prolog's non-zero exit requeues it;
    // `requeuehold` raced with that requeue and the job was retried once more.
    for args in [
        vec!["update", &format!("JobId={job}") as &str, &comment],
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
                log.line(&format!(
                    "scontrol {} failed ({}): {said}",
                    args[0], o.status
                ))
            }
            Err(e) => log.line(&format!("cannot run {}: {e}", scontrol.display())),
        }
    }
}

/// `jobnet job up|down`: a passport's network, for batch systems without Slurm/PBS hooks.
pub fn job(cmd: JobCmd) -> Result<(), Fail> {
    match cmd {
        JobCmd::Up(a) => passport_up(&a),
        JobCmd::Down(a) => {
            let site = site(&a.config, "job-down", &a.job)?;
            let mut log = Log::open(Some(&site.log), "job-down", &a.job);
            for w in &site.warnings {
                log.line(&w.to_string());
            }
            let id = JobId::parse(&a.job).map_err(|e| Fail::new(2, format!("--job: {e}")))?;
            epilog(&site, &id, &mut log)
        }
    }
}

fn passport_up(a: &PassportArgs) -> Result<(), Fail> {
    let site = site(&a.config, "job-up", &a.job)?;
    let mut log = Log::open(Some(&site.log), "job-up", &a.job);
    for w in &site.warnings {
        log.line(&w.to_string());
    }
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
            if let Some(json) = context(&site)?.addresses(&meta.id)? {
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
