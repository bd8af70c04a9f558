//! The `jobnet` command line: a thin edge over the library. Argument parsing happens first with
//! no I/O; then files are read, the library is called, and every failure is mapped to the exit
//! codes documented in docs/cli.md (0 ok, 1 environment/I/O, 2 invalid input, 3 pool exhausted).

use clap::{Args, Parser, Subcommand, ValueEnum};
use jobnet::drivers::DriverSet;
use jobnet::plan::{self, Choice, Inputs, JobRequest, PKeyChoice};
use jobnet::topology::{self, FatTreeSpec, LoadError, SwitchGraph};
use jobnet::types::{JobId, PKey, VlanId};
use jobnet::{hostlist, render};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate, show or generate topology files.
    #[command(subcommand)]
    Topology(TopologyCmd),
    /// Dry run: what exactly would be configured for a job (touches no device).
    Plan(PlanArgs),
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
struct PlanArgs {
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
    /// VLAN id or `auto` (lowest free in the pool).
    #[arg(long, default_value = "auto")]
    vlan: String,
    /// PKey (0x0001..0x7ffe), `auto` or `none`. Default: auto when the topology has InfiniBand.
    #[arg(long)]
    pkey: Option<String>,
    /// Gateway to bridge the job's PKey and VLAN through.
    #[arg(long)]
    gateway: Option<String>,
    /// Read this partitions.conf instead of the topology's `infiniband.partitions_conf`.
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

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Self {
        Fail {
            code: 1,
            message: format!("{e:#}"),
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
        Err(e) => Err(anyhow::Error::from(e).context("writing to stdout").into()),
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
    topology::load(path, drivers).map_err(|e| match e {
        LoadError::Io { .. } => invalid(e.to_string()),
        LoadError::Invalid(d) => {
            let errors = d
                .iter()
                .filter(|x| x.severity == jobnet::diag::Severity::Error)
                .count();
            warn(d.iter().map(|x| x.to_string()));
            invalid(format!("{} is invalid: {errors} error(s)", path.display()))
        }
    })
}

fn run(cli: Cli) -> Result<(), Fail> {
    match cli.cmd {
        Cmd::Topology(TopologyCmd::Generate(GenerateCmd::FatTree {
            nodes,
            hosts_per_leaf,
            leaves_per_pod,
            aggs_per_pod,
            cores_per_agg,
            no_ib,
        })) => {
            if nodes == 0 || nodes > 1_000_000 {
                return Err(invalid(format!(
                    "--nodes {nodes} is out of range 1..1000000"
                )));
            }
            out(&topology::fat_tree(&FatTreeSpec {
                nodes,
                hosts_per_leaf,
                leaves_per_pod,
                aggs_per_pod,
                cores_per_agg,
                infiniband: !no_ib,
            }))
        }
        Cmd::Topology(TopologyCmd::Validate { file }) => {
            let set = drivers(cli.drivers_dir.as_deref())?;
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
            let set = drivers(cli.drivers_dir.as_deref())?;
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
        Cmd::Plan(args) => plan_cmd(args, cli.drivers_dir.as_deref()),
    }
}

fn plan_cmd(args: PlanArgs, drivers_dir: Option<&Path>) -> Result<(), Fail> {
    // Stage 1: arguments to typed values, no I/O.
    let job = JobId::parse(&args.job).map_err(|e| invalid(format!("--job: {e}")))?;
    let nodes = hostlist::expand(&args.nodes)
        .map_err(|e| invalid(format!("--nodes: {e}; write e.g. cn[001-040]")))?;
    let vlan = match args.vlan.as_str() {
        "auto" => Choice::Auto,
        v => Choice::Fixed(
            VlanId::parse(v).map_err(|e| invalid(format!("--vlan: {e}; give 1..4094 or auto")))?,
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
    let gateway = args.gateway.clone();

    // Stage 2: read inputs.
    let set = drivers(drivers_dir)?;
    let loaded = load(&args.topology, &set)?;
    warn(loaded.warnings.iter().map(|w| w.to_string()));
    let t = &loaded.topology;
    let conf_path = args.partitions_conf.clone().or_else(|| {
        t.infiniband
            .as_ref()
            .map(|ib| PathBuf::from(&ib.partitions_conf))
    });
    let conf_text = match (&conf_path, pkey) {
        (Some(p), c) if c != PKeyChoice::None => match std::fs::read_to_string(p) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context(format!("cannot read partitions.conf {}; run as a user who can read it or pass --partitions-conf", p.display()))
                    .into())
            }
        },
        _ => None,
    };
    let graph = SwitchGraph::build(t);
    let req = JobRequest {
        job,
        nodes,
        vlan,
        pkey,
        gateway,
    };
    let conf_path = conf_path.map(|p| p.display().to_string());
    let inputs = Inputs {
        topology: t,
        graph: &graph,
        drivers: &set,
        held: &[],
        partitions_conf: conf_text.as_deref(),
        partitions_conf_path: conf_path.as_deref(),
    };
    let p = plan::plan(inputs, &req).map_err(|e| Fail {
        code: e.exit_code() as u8,
        message: e.to_string(),
    })?;
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
