//! The `jobnet` command line: one module per command noun, each a thin caller of the library's
//! facade ([`jobnet::Context`]). Arguments become typed values before any I/O; every failure
//! becomes one exit code of docs/cli.md (0 ok, 1 environment/I/O, 2 invalid input, 3 pool
//! exhausted, 4 failed and rolled back, 5 needs attention), printed as text or, with
//! `--format json`, as a JSON object on stdout.

mod config;
mod down;
mod hook;
mod ib;
mod job;
mod output;
mod progress;
mod reference;
mod status;
mod topology;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use jobnet::{Context, Options};
use jobnet_node::cli as node;
use output::Fail;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "jobnet",
    version,
    about = "Per-job isolated networks (VLANs, InfiniBand partitions) for HPC batch jobs",
    long_about = "Per-job isolated networks (VLANs, InfiniBand partitions) for HPC batch jobs.\n\nFrom a topology file, jobnet computes the smallest loop-free part of the fabric that joins a job's nodes, puts a job VLAN on exactly those switch ports and links and an InfiniBand partition on the job's HCA ports, and takes both away when the job ends. Exit codes: 0 ok, 1 environment or I/O, 2 invalid input, 3 pool exhausted, 4 failed and rolled back, 5 needs attention.",
    after_help = "Start with a dry run: jobnet plan --topology /etc/jobnet/topology.yaml --job 1234 --nodes 'cn[001-004]'"
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Options every command takes: where the state and device logins are, and how long to wait.
#[derive(Args)]
struct Global {
    /// Directory of site driver profiles (*.yaml) added to the shipped ones.
    #[arg(long, global = true, env = "JOBNET_DRIVERS_DIR", help_heading = GLOBAL)]
    drivers_dir: Option<PathBuf>,
    /// State file (jobs, allocations, journal), shared by every jobnet process on the host
    /// (given with --state, a file that does not exist is an error for down/recover/status).
    #[arg(long, global = true, env = "JOBNET_STATE", default_value = "/var/lib/jobnet/state.db", help_heading = GLOBAL)]
    state: PathBuf,
    /// --state was given on the command line (not the default or the environment).
    #[arg(skip)]
    state_explicit: bool,
    /// The global options given as a flag or by their environment variable, and how ("--state",
    /// "$JOBNET_STATE"): these override jobnet.yaml.
    #[arg(skip)]
    given: std::collections::BTreeMap<String, String>,
    /// Sessions all jobnet processes together may open to one device.
    #[arg(long, global = true, default_value_t = 4, help_heading = GLOBAL)]
    sessions_per_device: usize,
    /// Seconds to wait for a busy device or another process working on the same job.
    #[arg(long, global = true, default_value_t = 60, help_heading = GLOBAL)]
    wait: u64,
    /// Device logins (YAML, mode 0600): entries named by the topology's `credentials:`.
    #[arg(long, global = true, env = "JOBNET_CREDENTIALS", default_value = "/etc/jobnet/credentials.yaml", help_heading = GLOBAL)]
    credentials: PathBuf,
    /// Known SSH host keys of the devices; an unknown or changed key refuses the connection.
    #[arg(long, global = true, env = "JOBNET_KNOWN_HOSTS", default_value = "/etc/jobnet/known_hosts", help_heading = GLOBAL)]
    known_hosts: PathBuf,
    /// Record unknown host keys in --known-hosts instead of refusing (first contact only).
    #[arg(long, global = true, help_heading = GLOBAL)]
    trust_on_first_use: bool,
    /// Seconds to wait for an SSH connection and login.
    #[arg(long, global = true, default_value_t = 10, help_heading = GLOBAL)]
    connect_timeout: u64,
    /// Seconds to wait for a device to answer one command.
    #[arg(long, global = true, default_value_t = 30, help_heading = GLOBAL)]
    command_timeout: u64,
    /// Also send each profile's save lines (e.g. `write memory`) after changing a device.
    #[arg(long, global = true, help_heading = GLOBAL)]
    save_config: bool,
    /// jobnetd's socket: reach devices through its warm sessions when it runs there, directly
    /// when not; `off` always goes directly (docs/jobnetd.md).
    #[arg(long, global = true, env = "JOBNET_DAEMON", default_value = jobnet::context::DAEMON_SOCKET, help_heading = GLOBAL)]
    daemon: String,
}

impl Global {
    fn options(&self) -> Options {
        jobnet::base::deadline::set_wait(Duration::from_secs(self.wait));
        Options {
            drivers_dir: self.drivers_dir.clone(),
            state: self.state.clone(),
            state_explicit: self.state_explicit,
            credentials: self.credentials.clone(),
            known_hosts: self.known_hosts.clone(),
            trust_on_first_use: self.trust_on_first_use,
            connect_timeout: Duration::from_secs(self.connect_timeout),
            command_timeout: Duration::from_secs(self.command_timeout),
            sessions_per_device: self.sessions_per_device,
            wait: Duration::from_secs(self.wait),
            save_config: self.save_config,
            service_user: None,
            daemon: jobnet::context::daemon_socket(Some(&self.daemon)),
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate, show or generate topology files; import InfiniBand GUIDs.
    #[command(subcommand)]
    Topology(topology::Cmd),
    /// Dry run: what exactly would be configured for a job (touches no device).
    Plan(job::PlanArgs),
    /// Configure a job's network on every device, all or nothing.
    Up(job::UpArgs),
    /// Remove a job's network: undo exactly what the journal says was applied.
    Down(down::DownArgs),
    /// Live jobs with their VLAN, PKey, nodes, devices and state (all jobs with --all).
    Status(status::StatusArgs),
    /// Forget jobs that went down long ago, with their journals.
    Prune(status::PruneArgs),
    /// Finish or undo every job whose jobnet process died mid-change.
    Recover(down::RecoverArgs),
    /// InfiniBand tools.
    #[command(subcommand)]
    Ib(ib::Cmd),
    /// The effective site configuration (jobnet.yaml, flags, environment).
    #[command(subcommand)]
    Config(config::Cmd),
    /// Batch-system hooks (Slurm PrologSlurmctld/EpilogSlurmctld, PBS prologue/epilogue),
    /// configured by /etc/jobnet/jobnet.yaml.
    #[command(subcommand)]
    Hook(hook::HookCmd),
    /// A job's network from a passport (SUPPZ-style prolog/epilog).
    #[command(subcommand)]
    Job(hook::JobCmd),
    /// On a node: the job's VMs/containers on its VLAN (per-node Prolog/Epilog, launchers),
    /// configured by /etc/jobnet/node.yaml.
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(reference::CompletionsArgs),
    /// Print the manual page (roff) to stdout.
    Man,
}

impl Cmd {
    /// Whether the command prints JSON (so its errors are JSON too).
    fn json(&self) -> bool {
        match self {
            Cmd::Topology(c) => c.json(),
            Cmd::Plan(a) => a.format == job::PlanFormat::Json,
            Cmd::Up(a) => a.format == output::Format::Json,
            Cmd::Down(a) => a.format == output::Format::Json,
            Cmd::Status(a) => a.format == output::Format::Json,
            Cmd::Prune(a) => a.format == output::Format::Json,
            Cmd::Recover(a) => a.format == output::Format::Json,
            Cmd::Ib(c) => c.json(),
            Cmd::Config(c) => c.json(),
            Cmd::Job(hook::JobCmd::Up(a)) => a.format == output::Format::Json,
            Cmd::Job(hook::JobCmd::Down(a)) => a.format == output::Format::Json,
            Cmd::Node(c) => c.json(),
            Cmd::Hook(_) | Cmd::Completions(_) | Cmd::Man => false,
        }
    }
}

pub fn main() -> ExitCode {
    // Called by a hook's name (a symbolic link, as slurm.conf takes no arguments): that hook.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| hook::ENTRY_POINTS.iter().find(|(name, _)| *name == n))
        .map(|(_, hook)| *hook);
    if let Some(hook) = called {
        args.splice(1..1, ["hook".into(), hook.into()]);
    }
    // Called as `jobnet-cni` by a container runtime: the CNI plugin (env + stdin, JSON out).
    let cni = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "jobnet-cni");
    if cni {
        return node::cni_main();
    }
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return output::usage_error(e),
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return output::usage_error(e),
    };
    cli.global.state_explicit = given_on_command_line(&matches, "state");
    cli.global.given = given_globals(&matches);
    let json = cli.cmd.json();
    if let Err(f) = globals_apply(&matches) {
        return f.report(json);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(json),
    }
}

/// The global options set by a flag or an environment variable, with how.
fn given_globals(m: &clap::ArgMatches) -> std::collections::BTreeMap<String, String> {
    let mut given = std::collections::BTreeMap::new();
    for arg in Cli::command().get_arguments().filter(|a| a.is_global_set()) {
        let id = arg.get_id().as_str().to_string();
        if given_on_command_line(m, &id) {
            given.insert(id.clone(), format!("--{}", arg.get_long().unwrap_or(&id)));
        } else if let Some(env) = arg.get_env() {
            if std::env::var_os(env).is_some() {
                given.insert(id, format!("${}", env.to_string_lossy()));
            }
        }
    }
    given
}

/// The commands that take their settings from a configuration file and refuse the global
/// options (see [`globals_apply`]).
const CONFIGURED: &[&str] = &["hook", "job", "node"];

/// The command line as parsed: [`Cli`]'s, with the global options left out of the help of the
/// commands that refuse them. They still parse there, to be refused by name: each of these
/// commands gets hidden copies, which clap passes on to its subcommands instead of the originals.
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.clone().hide(true))
        .collect();
    CONFIGURED.iter().fold(cmd, |c, noun| {
        c.mut_subcommand(*noun, |sub| sub.args(hidden.iter().cloned()))
    })
}

/// Whether the global option `id` was given on the command line (at any subcommand level).
fn given_on_command_line(m: &clap::ArgMatches, id: &str) -> bool {
    let mut level = Some(m);
    while let Some(l) = level {
        if l.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
            return true;
        }
        level = l.subcommand().map(|(_, sub)| sub);
    }
    false
}

/// The hooks, `job` and `node` take their settings from their configuration files: a global
/// option given to them would be ignored, so it is refused.
fn globals_apply(m: &clap::ArgMatches) -> Result<(), Fail> {
    let Some((noun, mut leaf)) = m.subcommand() else {
        return Ok(());
    };
    if !CONFIGURED.contains(&noun) {
        return Ok(());
    }
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    for arg in Cli::command().get_arguments().filter(|a| a.is_global_set()) {
        let id = arg.get_id().as_str();
        if leaf.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
            let flag = arg.get_long().unwrap_or(id);
            return Err(output::invalid(format!(
                "--{flag} does not apply to `jobnet {noun}`: it takes its settings from its configuration file ({})",
                if noun == "node" { "--config, $JOBNET_NODE_CONFIG, /etc/jobnet/node.yaml" } else { "--config, $JOBNET_CONFIG, /etc/jobnet/jobnet.yaml" }
            )));
        }
    }
    Ok(())
}

/// The facade with the one site configuration (see [`config`]): flags, then jobnet.yaml, then
/// the defaults.
fn context(g: &Global) -> Result<Context, Fail> {
    let r = config::resolve(g)?;
    output::warn(r.warnings.iter().map(|w| format!("jobnet: {w}")));
    jobnet::base::process::set_programs(r.programs);
    let ctx = Context::new(r.options)?;
    faults(ctx)
}

fn run(cli: Cli) -> Result<(), Fail> {
    let g = &cli.global;
    match cli.cmd {
        Cmd::Topology(c) => topology::run(c, g),
        Cmd::Plan(a) => job::plan(&context(g)?, &a),
        Cmd::Up(a) => job::up(&context(g)?, &a),
        Cmd::Down(a) => down::down(&context(g)?, &a),
        Cmd::Recover(a) => down::recover(&context(g)?, &a),
        Cmd::Status(a) => status::status(&context(g)?, &a),
        Cmd::Prune(a) => status::prune(&context(g)?, &a),
        Cmd::Ib(c) => ib::run(c),
        Cmd::Config(c) => config::run(c, g),
        Cmd::Hook(c) => hook::run(c),
        Cmd::Job(c) => hook::job(c),
        Cmd::Node(c) => node::run(c).map_err(|f| Fail::new(f.code, f.message)),
        Cmd::Completions(a) => reference::completions(&a),
        Cmd::Man => reference::man(),
    }
}

/// The executor's fault injection: failpoints from `JOBNET_FAILPOINT` in a test-kit build; a
/// shipped build has no failpoint code at all.
#[cfg(feature = "testkit")]
fn faults(ctx: Context) -> Result<Context, Fail> {
    let f = jobnet::testkit::failpoint::Failpoints::from_env()
        .map_err(|e| output::invalid(e.to_string()))?;
    Ok(ctx.with_faults(Box::new(f)))
}

#[cfg(not(feature = "testkit"))]
fn faults(ctx: Context) -> Result<Context, Fail> {
    Ok(ctx)
}

/// Routes SIGTERM/SIGINT/SIGHUP to the executor's interrupt flag (see `apply::interrupt`); for
/// the commands that change devices.
fn interrupts() -> Result<(), Fail> {
    jobnet::apply::interrupt::install()
        .map_err(|e| Fail::new(1, format!("cannot install signal handlers: {e}")))
}
