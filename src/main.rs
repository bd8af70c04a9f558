//! The `jobnet` command line: a thin edge over the library. Arguments are first turned into typed
//! values with no I/O; then files are read, the library is called, and every failure is mapped to
//! the exit codes documented in docs/cli.md (0 ok, 1 environment/I/O, 2 invalid input, 3 pool
//! exhausted, 4 failed and rolled back, 5 needs attention).

use clap::{Args, Parser, Subcommand, ValueEnum};
use jobnet::apply::{self, ApplyError, Env, UpInputs};
use jobnet::base::hostlist;
use jobnet::base::types::{JobId, PKey, VlanId};
use jobnet::drivers::transport::ssh::{SshConnector, SshOptions};
use jobnet::drivers::transport::RealConnector;
use jobnet::drivers::DriverSet;
use jobnet::plan::render;
use jobnet::plan::{Choice, JobRequest, PKeyChoice};
use jobnet::state::sqlite::SqliteStore as Store;
use jobnet::state::StateStore;
use jobnet::topology::{self, FatTreeSpec, LoadError, SwitchGraph};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "jobnet",
    version,
    about = "Per-job isolated networks (VLANs, InfiniBand partitions) for HPC batch jobs"
)]
struct Cli {
    /// Directory of site driver profiles (*.yaml) added to the shipped ones.
    #[arg(long, global = true, env = "JOBNET_DRIVERS_DIR")]
    drivers_dir: Option<PathBuf>,
    /// State file (jobs, allocations, journal); shared by every jobnet process on the host.
    #[arg(
        long,
        global = true,
        env = "JOBNET_STATE",
        default_value = "/var/lib/jobnet/state.db"
    )]
    state: PathBuf,
    /// Sessions all jobnet processes together may open to one device.
    #[arg(long, global = true, default_value_t = 4)]
    sessions_per_device: usize,
    /// Seconds to wait for a busy device or another process working on the same job.
    #[arg(long, global = true, default_value_t = 60)]
    wait: u64,
    /// Device logins (YAML, mode 0600): entries named by the topology's `credentials:`.
    #[arg(
        long,
        global = true,
        env = "JOBNET_CREDENTIALS",
        default_value = "/etc/jobnet/credentials.yaml"
    )]
    credentials: PathBuf,
    /// Known SSH host keys of the devices; an unknown or changed key refuses the connection.
    #[arg(
        long,
        global = true,
        env = "JOBNET_KNOWN_HOSTS",
        default_value = "/etc/jobnet/known_hosts"
    )]
    known_hosts: PathBuf,
    /// Record unknown host keys in --known-hosts instead of refusing (first contact only).
    #[arg(long, global = true)]
    trust_on_first_use: bool,
    /// Seconds to wait for an SSH connection and login.
    #[arg(long, global = true, default_value_t = 10)]
    connect_timeout: u64,
    /// Seconds to wait for a device to answer one command.
    #[arg(long, global = true, default_value_t = 30)]
    command_timeout: u64,
    /// Also send each profile's save lines (e.g. `write memory`) after changing a device.
    #[arg(long, global = true)]
    save_config: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate, show or generate topology files.
    #[command(subcommand)]
    Topology(TopologyCmd),
    /// Dry run: what exactly would be configured for a job (touches no device).
    Plan(JobArgs),
    /// Configure a job's network on every device, all or nothing.
    Up {
        #[command(flatten)]
        job: JobArgs,
        /// Show the plan with the state's allocations instead of applying it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a job's network: undo exactly what the journal says was applied.
    Down {
        #[arg(long)]
        job: String,
        /// Reach the job's devices where this topology says (same device names): for a switch
        /// that was re-addressed or replaced since the job came up.
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Release the job even if some of its operations cannot be undone; they are recorded
        /// as abandoned (`jobnet status --abandoned`) for an administrator to clean up.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Jobs, their VLAN/PKey, nodes, devices and state.
    Status {
        #[arg(long)]
        job: Option<String>,
        /// List the operations `down --force` abandoned instead.
        #[arg(long)]
        abandoned: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// InfiniBand tools.
    #[command(subcommand)]
    Ib(IbCmd),
    /// Finish or undo every job whose jobnet process died mid-change.
    Recover {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand)]
enum IbCmd {
    /// Check a partitions.conf against OpenSM's grammar and its traps; exit 0 when OpenSM would
    /// accept it as meant (warnings on stderr), 2 when not.
    Check {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand)]
enum TopologyCmd {
    /// Check a topology file; exit 0 when valid (warnings on stderr), 2 when not.
    Validate { file: PathBuf },
    /// Counts, switches, links and nodes per switch.
    Show {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write a synthetic topology (for benchmarks and scale tests) to stdout.
    #[command(subcommand)]
    Generate(GenerateCmd),
    /// Match `ibnetdiscover` output with the topology's nodes: a report and the `nodes:` section
    /// with the discovered HCA port GUIDs.
    ImportIb {
        /// A file with the output of `ibnetdiscover`.
        ibnetdiscover: PathBuf,
        #[arg(
            long,
            env = "JOBNET_TOPOLOGY",
            default_value = "/etc/jobnet/topology.yaml"
        )]
        topology: PathBuf,
        /// text: report and nodes section; yaml: only the nodes section; json: the report.
        #[arg(long, value_enum, default_value_t = ImportFormat::Text)]
        format: ImportFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ImportFormat {
    Text,
    Yaml,
    Json,
}

#[derive(Subcommand)]
enum GenerateCmd {
    /// A 3-tier fat tree: leaves, aggregation switches in pods, core switches.
    FatTree {
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        #[arg(long, default_value_t = 32)]
        hosts_per_leaf: usize,
        #[arg(long, default_value_t = 8)]
        leaves_per_pod: usize,
        #[arg(long, default_value_t = 4)]
        aggs_per_pod: usize,
        #[arg(long, default_value_t = 2)]
        cores_per_agg: usize,
        /// Leave out the infiniband section and node GUIDs.
        #[arg(long)]
        no_ib: bool,
    },
}

#[derive(Args)]
struct JobArgs {
    /// Topology file.
    #[arg(
        long,
        env = "JOBNET_TOPOLOGY",
        default_value = "/etc/jobnet/topology.yaml"
    )]
    topology: PathBuf,
    /// Job id (e.g. Slurm's $SLURM_JOB_ID).
    #[arg(long)]
    job: String,
    /// The job's nodes as a hostlist, e.g. cn[001-040].
    #[arg(long)]
    nodes: String,
    /// VLAN id, `auto` (lowest free in the pool) or `none` (no Ethernet for this job).
    #[arg(long, default_value = "auto")]
    vlan: String,
    /// PKey (0x0001..0x7ffe), `auto` or `none`. Default: auto when the topology has InfiniBand.
    #[arg(long)]
    pkey: Option<String>,
    /// Gateway to bridge the job's PKey and VLAN through.
    #[arg(long)]
    gateway: Option<String>,
    /// Use this partitions.conf instead of the topology's `infiniband.partitions_conf` (read by
    /// `plan`, read and written by `up`).
    #[arg(long)]
    partitions_conf: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    Dot,
    Svg,
}

/// A failure with its exit code; the message is printed as is.
struct Fail {
    code: u8,
    message: String,
}

fn invalid(message: impl Into<String>) -> Fail {
    Fail {
        code: 2,
        message: message.into(),
    }
}

impl From<ApplyError> for Fail {
    fn from(e: ApplyError) -> Self {
        Fail {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

impl From<jobnet::state::StateError> for Fail {
    fn from(e: jobnet::state::StateError) -> Self {
        Fail {
            code: 1,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "jobnet: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn out(text: &str) -> Result<(), Fail> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        // A closed pipe (`jobnet plan ... | head`) is not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Fail {
            code: 1,
            message: format!("writing to stdout: {e}"),
        }),
    }
}

fn warn(lines: impl IntoIterator<Item = String>) {
    let mut err = std::io::stderr().lock();
    for l in lines {
        let _ = writeln!(err, "{l}");
    }
}

fn drivers(dir: Option<&Path>) -> Result<DriverSet, Fail> {
    match dir {
        None => Ok(DriverSet::builtin()),
        Some(d) => DriverSet::with_dir(d).map_err(|e| match e {
            jobnet::drivers::DriverError::Io { .. } => Fail {
                code: 1,
                message: e.to_string(),
            },
            _ => invalid(e.to_string()),
        }),
    }
}

fn load(path: &Path, drivers: &DriverSet) -> Result<topology::Loaded, Fail> {
    topology::load(path, drivers).map_err(|e| match &e {
        LoadError::File(f) => Fail {
            code: f.exit_code(),
            message: e.to_string(),
        },
        LoadError::Invalid(d) => {
            let errors = d
                .iter()
                .filter(|x| x.severity == jobnet::base::diag::Severity::Error)
                .count();
            warn(d.iter().map(|x| x.to_string()));
            invalid(format!("{} is invalid: {errors} error(s)", path.display()))
        }
    })
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("json") + "\n"
}

fn run(cli: Cli) -> Result<(), Fail> {
    let opts = RunOpts::of(&cli);
    let dir = cli.drivers_dir.as_deref();
    match cli.cmd {
        Cmd::Topology(TopologyCmd::Generate(GenerateCmd::FatTree {
            nodes,
            hosts_per_leaf,
            leaves_per_pod,
            aggs_per_pod,
            cores_per_agg,
            no_ib,
        })) => {
            let spec = FatTreeSpec {
                nodes,
                hosts_per_leaf,
                leaves_per_pod,
                aggs_per_pod,
                cores_per_agg,
                infiniband: !no_ib,
            };
            spec.check().map_err(invalid)?;
            out(&topology::fat_tree(&spec))
        }
        Cmd::Topology(TopologyCmd::Validate { file }) => {
            let set = drivers(dir)?;
            let loaded = load(&file, &set)?;
            let t = &loaded.topology;
            warn(loaded.warnings.iter().map(|w| w.to_string()));
            out(&format!(
                "{}: valid ({} switches, {} links, {} nodes, {} gateways; {} warning(s))\n",
                file.display(),
                t.switches.len(),
                t.links.len(),
                t.nodes.len(),
                t.gateways.len(),
                loaded.warnings.len()
            ))
        }
        Cmd::Topology(TopologyCmd::Show { file, format }) => {
            let set = drivers(dir)?;
            let loaded = load(&file, &set)?;
            warn(loaded.warnings.iter().map(|w| w.to_string()));
            let t = &loaded.topology;
            out(&match format {
                Format::Text => render::topology_text(t),
                Format::Json => render::topology_json(t),
                Format::Dot => render::dot(t, None),
                Format::Svg => render::svg(t, None),
            })
        }
        Cmd::Topology(TopologyCmd::ImportIb {
            ibnetdiscover,
            topology,
            format,
        }) => import_ib(&ibnetdiscover, &topology, format, dir),
        Cmd::Plan(args) => plan_cmd(&args, dir, &cli.state),
        Cmd::Ib(IbCmd::Check { file, format }) => ib_check(&file, format),
        Cmd::Up { job, dry_run: true } => plan_cmd(&job, dir, &cli.state),
        Cmd::Up {
            job,
            dry_run: false,
        } => {
            interrupts()?;
            up_cmd(&opts, &job, dir)
        }
        Cmd::Down {
            job,
            topology,
            force,
            format,
        } => {
            interrupts()?;
            down_cmd(&opts, dir, &job, topology.as_deref(), force, format)
        }
        Cmd::Status {
            job,
            abandoned,
            format,
        } => match Store::open_existing(&cli.state)? {
            Some(store) if abandoned => abandoned_cmd(&store, format),
            Some(store) => status_cmd(&store, job.as_deref(), format),
            None => match job {
                Some(j) => Err(invalid(format!(
                    "--job {j}: no such job: state file {} does not exist (check --state / $JOBNET_STATE)",
                    cli.state.display()
                ))),
                None => {
                    warn([format!(
                        "jobnet: state file {} does not exist: no job has run with it (check --state / $JOBNET_STATE)",
                        cli.state.display()
                    )]);
                    out(if format == Format::Json {
                        "{\"jobs\": []}\n"
                    } else {
                        "no jobs\n"
                    })
                }
            },
        },
        Cmd::Recover { format } => {
            interrupts()?;
            recover_cmd(&opts, dir, format)
        }
    }
}

/// Routes SIGTERM/SIGINT/SIGHUP to the executor's interrupt flag (see `apply::interrupt`).
fn interrupts() -> Result<(), Fail> {
    apply::interrupt::install().map_err(|e| Fail {
        code: 1,
        message: format!("cannot install signal handlers: {e}"),
    })
}

fn down_cmd(
    opts: &RunOpts,
    dir: Option<&Path>,
    job: &str,
    topology: Option<&Path>,
    force: bool,
    format: Format,
) -> Result<(), Fail> {
    let job = JobId::parse(job).map_err(|e| invalid(format!("--job: {e}")))?;
    let retarget = match topology {
        Some(path) => {
            let set = drivers(dir)?;
            let loaded = load(path, &set)?;
            apply::targets(&loaded.topology)
        }
        None => Default::default(),
    };
    with_env(opts, dir, retarget, |env| {
        let r = apply::down(env, &job, force)?;
        if !r.abandoned.is_empty() {
            warn(r.abandoned.iter().map(|a| {
                format!("jobnet: warning: abandoned (still configured, undo it by hand): {a}")
            }));
        }
        out(&match (format, r.result) {
            (Format::Json, _) => json(&r),
            (_, apply::DownResult::Down) => format!(
                "job {} down: {} operation(s) undone on {}{}\n",
                r.job,
                r.undone,
                if r.devices.is_empty() {
                    "no device".into()
                } else {
                    r.devices.join(", ")
                },
                if r.abandoned.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} abandoned (jobnet status --abandoned)",
                        r.abandoned.len()
                    )
                }
            ),
            (_, apply::DownResult::AlreadyDown) => {
                format!("job {} is already down; nothing to do\n", r.job)
            }
            _ => format!("job {} is not known; nothing to do\n", r.job),
        })
    })
}

fn recover_cmd(opts: &RunOpts, dir: Option<&Path>, format: Format) -> Result<(), Fail> {
    with_env(opts, dir, Default::default(), |env| {
        let results = apply::recover(env)?;
        let mut failed: Option<Fail> = None;
        let mut lines = Vec::new();
        let mut reports = Vec::new();
        for r in results {
            match r {
                Ok(rep) => {
                    lines.push(format!(
                        "job {} recovered: {} operation(s) undone, VLAN released\n",
                        rep.job, rep.undone
                    ));
                    reports.push(
                        serde_json::json!({"job": rep.job, "result": "down", "undone": rep.undone}),
                    );
                }
                Err(e) => {
                    lines.push(format!("{e}\n"));
                    reports.push(serde_json::json!({"error": e.to_string()}));
                    failed = Some(e.into());
                }
            }
        }
        if lines.is_empty() {
            lines.push("nothing to recover\n".into());
        }
        out(&if format == Format::Json {
            json(&reports)
        } else {
            lines.concat()
        })?;
        failed.map_or(Ok(()), Err)
    })
}

/// Settings of runs that touch devices.
struct RunOpts {
    state: PathBuf,
    sessions: usize,
    wait: u64,
    credentials: PathBuf,
    known_hosts: PathBuf,
    tofu: bool,
    connect_timeout: u64,
    command_timeout: u64,
    save: bool,
}

impl RunOpts {
    fn of(cli: &Cli) -> Self {
        RunOpts {
            state: cli.state.clone(),
            sessions: cli.sessions_per_device,
            wait: cli.wait,
            credentials: cli.credentials.clone(),
            known_hosts: cli.known_hosts.clone(),
            tofu: cli.trust_on_first_use,
            connect_timeout: cli.connect_timeout,
            command_timeout: cli.command_timeout,
            save: cli.save_config,
        }
    }
}

fn with_env(
    o: &RunOpts,
    dir: Option<&Path>,
    retarget: std::collections::BTreeMap<String, jobnet::drivers::transport::Target>,
    f: impl FnOnce(&Env) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let failpoints = faults()?;
    let set = drivers(dir)?;
    let store = Store::open(&o.state)?;
    // A missing credentials file only matters once an SSH device is contacted (it says so then).
    let credentials =
        match jobnet::drivers::transport::credentials::Credentials::load(&o.credentials) {
            Ok(c) => Some(std::sync::Arc::new(c)),
            Err(jobnet::drivers::transport::credentials::CredentialsError::Io {
                source, ..
            }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e @ jobnet::drivers::transport::credentials::CredentialsError::Io { .. }) => {
                return Err(Fail {
                    code: 1,
                    message: e.to_string(),
                })
            }
            Err(e) => return Err(invalid(e.to_string())),
        };
    let command_timeout = Duration::from_secs(o.command_timeout);
    let ssh = SshConnector::new(SshOptions {
        credentials,
        credentials_path: o.credentials.clone(),
        known_hosts: o.known_hosts.clone(),
        trust_on_first_use: o.tofu,
        connect_timeout: Duration::from_secs(o.connect_timeout),
        command_timeout,
    })
    .map_err(|e| Fail {
        code: 1,
        message: format!("cannot start the SSH runtime: {e}"),
    })?;
    let connector = RealConnector {
        command_timeout,
        ssh,
    };
    let env = Env {
        store: &store,
        connector: &connector,
        drivers: &set,
        faults: &*failpoints,
        sessions_per_device: o.sessions,
        wait: Duration::from_secs(o.wait),
        save: o.save,
        interrupt: &apply::interrupt::SIGNALS,
        retarget,
    };
    f(&env)
}

/// Stage 1 of `plan`/`up`: arguments to typed values, no I/O.
fn request(args: &JobArgs) -> Result<JobRequest, Fail> {
    let job = JobId::parse(&args.job).map_err(|e| invalid(format!("--job: {e}")))?;
    let nodes = hostlist::expand(&args.nodes)
        .map_err(|e| invalid(format!("--nodes: {e}; write e.g. cn[001-040]")))?;
    let vlan = match args.vlan.as_str() {
        "auto" => Choice::Auto,
        "none" => Choice::None,
        v => Choice::Fixed(
            VlanId::parse(v)
                .map_err(|e| invalid(format!("--vlan: {e}; give 1..4094, auto or none")))?,
        ),
    };
    let pkey = match args.pkey.as_deref() {
        None => PKeyChoice::Default,
        Some("auto") => PKeyChoice::Auto,
        Some("none") => PKeyChoice::None,
        Some(p) => PKeyChoice::Fixed(
            PKey::parse(p)
                .map_err(|e| invalid(format!("--pkey: {e}; give e.g. 0x1000, auto or none")))?,
        ),
    };
    Ok(JobRequest {
        job,
        nodes,
        vlan,
        pkey,
        gateway: args.gateway.clone(),
    })
}

/// What `plan` and `up` both start from: the request, the drivers, the loaded topology and its
/// graph (warnings printed).
struct JobSetup {
    req: JobRequest,
    drivers: DriverSet,
    loaded: topology::Loaded,
    graph: SwitchGraph,
    topology_path: String,
}

impl JobSetup {
    fn new(args: &JobArgs, drivers_dir: Option<&Path>) -> Result<Self, Fail> {
        let req = request(args)?;
        let set = drivers(drivers_dir)?;
        let loaded = load(&args.topology, &set)?;
        warn(loaded.warnings.iter().map(|w| w.to_string()));
        let graph = SwitchGraph::build(&loaded.topology);
        Ok(JobSetup {
            req,
            drivers: set,
            loaded,
            graph,
            topology_path: args.topology.display().to_string(),
        })
    }

    fn inputs<'a>(&'a self, args: &'a JobArgs) -> UpInputs<'a> {
        UpInputs {
            topology: &self.loaded.topology,
            graph: &self.graph,
            topology_path: &self.topology_path,
            partitions_conf: args.partitions_conf.as_deref(),
        }
    }
}

/// `plan` and `up --dry-run`: the plan `up` would carry out, against the state file's
/// allocations when it exists (it is never created here).
fn plan_cmd(args: &JobArgs, drivers_dir: Option<&Path>, state: &Path) -> Result<(), Fail> {
    let s = JobSetup::new(args, drivers_dir)?;
    let t = &s.loaded.topology;
    let store = Store::open_existing(state)?;
    let p = apply::dry_run(
        store.as_ref().map(|s| s as &dyn StateStore),
        &s.drivers,
        &s.inputs(args),
        &s.req,
    )?;
    let text = match args.format {
        Format::Text => render::plan_text(&p, t),
        Format::Json => render::plan_json(&p),
        Format::Dot => render::dot(t, Some(&p)),
        Format::Svg => render::svg(t, Some(&p)),
    };
    if args.format != Format::Text {
        warn(p.warnings.iter().map(|w| format!("warning: {w}")));
    }
    out(&text)
}

fn up_cmd(opts: &RunOpts, args: &JobArgs, drivers_dir: Option<&Path>) -> Result<(), Fail> {
    if matches!(args.format, Format::Dot | Format::Svg) {
        return Err(invalid("--format: `up` prints text or json"));
    }
    let s = JobSetup::new(args, drivers_dir)?;
    with_env(opts, drivers_dir, Default::default(), |env| {
        let r = apply::up(env, &s.inputs(args), &s.req)?;
        warn(r.warnings.iter().map(|w| format!("warning: {w}")));
        let vlan = r
            .vlan
            .map_or("no VLAN".to_string(), |v| format!("VLAN {v}"));
        out(&match args.format {
            Format::Json => json(&r),
            _ if r.unchanged => format!(
                "job {} is already up on {} ({vlan}{}); nothing sent\n",
                r.job,
                hostlist::fold_short(&r.nodes, 12),
                r.pkey.map(|k| format!(", PKey {k}")).unwrap_or_default(),
            ),
            _ => format!(
                "job {} up: {vlan}{} for {} on {} device(s) ({}) in {:.2} s\n",
                r.job,
                r.pkey.map(|k| format!(", PKey {k}")).unwrap_or_default(),
                hostlist::fold_short(&r.nodes, 12),
                r.devices.len(),
                r.devices
                    .iter()
                    .map(|d| format!("{} {} op(s)", d.name, d.operations))
                    .collect::<Vec<_>>()
                    .join(", "),
                r.seconds
            ),
        })
    })
}

fn status_cmd(store: &Store, job: Option<&str>, format: Format) -> Result<(), Fail> {
    let mut rows = store.jobs()?;
    if let Some(j) = job {
        rows.retain(|r| r.job.as_str() == j);
        if rows.is_empty() {
            return Err(invalid(format!(
                "--job {j}: no such job in {}",
                store.path().display()
            )));
        }
    }
    let mut items = Vec::new();
    let mut text = String::new();
    if rows.is_empty() {
        text.push_str("no jobs\n");
    }
    for r in &rows {
        let journal = store.journal(&r.job)?;
        let devices: std::collections::BTreeSet<&str> =
            journal.iter().map(|j| j.device.name.as_str()).collect();
        let devices: Vec<&str> = devices.into_iter().collect();
        text.push_str(&format!(
            "{:<12} {:<16} vlan {:<5} pkey {:<7} nodes {:<24} devices {}{}\n",
            r.job,
            r.state,
            r.vlan.map_or("-".into(), |v| v.to_string()),
            r.pkey.map_or("-".into(), |k| k.to_string()),
            hostlist::fold(&r.nodes),
            if devices.is_empty() {
                "-".to_string()
            } else {
                devices.join(",")
            },
            if r.message.is_empty() {
                String::new()
            } else {
                format!("\n             {}", r.message)
            }
        ));
        if job.is_some() {
            for j in &journal {
                text.push_str(&format!(
                    "    #{:<5} {:<10} {:<12} {}{}\n",
                    j.id,
                    j.device.name,
                    j.status,
                    j.apply.join(" / "),
                    if j.message.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", j.message)
                    }
                ));
            }
        }
        let mut v = serde_json::to_value(r).expect("json");
        v["devices"] = serde_json::json!(devices);
        if job.is_some() {
            v["journal"] = serde_json::to_value(&journal).expect("json");
        }
        items.push(v);
    }
    out(&if format == Format::Json {
        json(&serde_json::json!({"jobs": items}))
    } else {
        text
    })
}

fn abandoned_cmd(store: &Store, format: Format) -> Result<(), Fail> {
    let items = store.abandoned()?;
    if format == Format::Json {
        return out(&json(&serde_json::json!({ "abandoned": items })));
    }
    let mut text = String::new();
    if items.is_empty() {
        text.push_str("nothing abandoned\n");
    }
    for a in &items {
        text.push_str(&format!(
            "job {:<12} {} ({}): undo by hand: {}\n    {}\n",
            a.job,
            a.device,
            a.address,
            a.undo.join(" / "),
            a.reason
        ));
    }
    out(&text)
}

/// Reads a file for `ib check`: bounded, and as UTF-8 (with the position of the first byte that
/// is not).
fn read_checked(file: &Path, limit: u64) -> Result<String, Fail> {
    let bytes = jobnet::base::limits::read_bytes(file, limit).map_err(|e| Fail {
        code: e.exit_code(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = at - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        invalid(format!(
            "{}:{line}:{col}: error: byte {:#04x} is not UTF-8 text; jobnet only edits UTF-8 files (convert it, e.g. `iconv -f KOI8-R -t UTF-8`)",
            file.display(),
            e.as_bytes()[at]
        ))
    })
}

fn ib_check(file: &Path, format: Format) -> Result<(), Fail> {
    let text = read_checked(file, jobnet::base::limits::PARTITIONS_CONF)?;
    let checked = jobnet::ib::partitions::grammar::check_file(&text, &file.display().to_string());
    let n = checked.diagnostics.error_count();
    let diags = checked.diagnostics.sorted();
    warn(diags.iter().map(|d| d.to_string()));
    if n > 0 {
        return Err(invalid(format!(
            "{} would be rejected or misread by OpenSM: {n} error(s)",
            file.display()
        )));
    }
    if format == Format::Json {
        let parts: Vec<_> = checked
            .statements
            .iter()
            .map(|s| serde_json::json!({"name": s.name, "pkey": s.pkey.map(|k| format!("{k:#06x}")), "line": s.loc.line, "members": s.members.len(), "flags": s.flags.iter().map(|(f, v)| match v { Some(v) => format!("{f}={v}"), None => f.clone() }).collect::<Vec<_>>()}))
            .collect();
        return out(&json(
            &serde_json::json!({"file": file.display().to_string(), "valid": true, "partitions": parts, "warnings": diags.len()}),
        ));
    }
    let mut text = format!(
        "{}: valid ({} partition(s); {} warning(s))\n",
        file.display(),
        checked.statements.len(),
        diags.len()
    );
    for s in &checked.statements {
        text.push_str(&format!(
            "  {:<20} {:<8} {:>5} member(s)  line {}\n",
            s.name,
            s.pkey.map_or("-".to_string(), |k| format!("{k:#06x}")),
            s.members.len(),
            s.loc.line
        ));
    }
    out(&text)
}

fn import_ib(
    output: &Path,
    topology: &Path,
    format: ImportFormat,
    dir: Option<&Path>,
) -> Result<(), Fail> {
    let text = read_checked(output, jobnet::base::limits::IBNETDISCOVER)?;
    let ports = jobnet::ib::import::parse(&text, &output.display().to_string()).map_err(|d| {
        warn(d.sorted().iter().map(|x| x.to_string()));
        invalid(format!(
            "{} is not usable ibnetdiscover output",
            output.display()
        ))
    })?;
    let set = drivers(dir)?;
    let loaded = load(topology, &set)?;
    let t = &loaded.topology;
    let report = jobnet::ib::import::compare(t, &ports);
    match format {
        ImportFormat::Json => out(&json(&report)),
        ImportFormat::Yaml => out(&jobnet::ib::import::nodes_yaml(t, &report)),
        ImportFormat::Text => {
            let found = report.matches.iter().filter(|m| m.guid.is_some()).count();
            let mut o = format!("{} HCA port(s) in {}; {found} of {} topology node(s) matched by node description\n", ports.len(), output.display(), t.nodes.len());
            let list = |names: &[String]| hostlist::fold(names);
            if !report.missing.is_empty() {
                o += &format!(
                    "  in the topology, not found by ibnetdiscover: {}\n",
                    list(&report.missing)
                );
            }
            if !report.unknown.is_empty() {
                o += &format!(
                    "  found by ibnetdiscover, not in the topology: {}\n",
                    list(&report.unknown)
                );
            }
            if !report.changed.is_empty() {
                o += &format!(
                    "  GUID in the topology differs from the discovered one: {}\n",
                    list(&report.changed)
                );
            }
            for c in &report.conflicts {
                o += &format!("  conflict: {c}\n");
            }
            if !report.dropped.is_empty() {
                o += &format!(
                    "  GUID left out below (now on another host; find the node's new GUID or remove it): {}\n",
                    report.dropped.join(", ")
                );
            }
            for m in report.matches.iter().filter(|m| !m.other_ports.is_empty()) {
                o += &format!(
                    "  {} has more connected ports, not used: {}\n",
                    m.node,
                    m.other_ports
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            o += &format!(
                "\n# the nodes section of {} with the discovered GUIDs:\n",
                topology.display()
            );
            o += &jobnet::ib::import::nodes_yaml(t, &report);
            out(&o)
        }
    }
}

/// The executor's fault injection: failpoints from `JOBNET_FAILPOINT` in a test-kit build, none
/// in a shipped one.
#[cfg(feature = "testkit")]
fn faults() -> Result<Box<dyn apply::faults::Faults>, Fail> {
    let f =
        jobnet::testkit::failpoint::Failpoints::from_env().map_err(|e| invalid(e.to_string()))?;
    Ok(Box::new(f))
}

#[cfg(not(feature = "testkit"))]
fn faults() -> Result<Box<dyn apply::faults::Faults>, Fail> {
    Ok(Box::new(apply::faults::NoFaults))
}
