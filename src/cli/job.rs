//! `jobnet plan` and `jobnet up`: a job request from the arguments (typed, no I/O), then the
//! facade's dry run or `up`. `up --dry-run` is `plan`.

use super::output::{invalid, json, out, warn, Fail, Format};
use super::{interrupts, progress};
use clap::{Args, ValueEnum};
use jobnet::base::hostlist;
use jobnet::base::types::{JobId, PKey, VlanId};
use jobnet::context::Fabric;
use jobnet::plan::render::{self, View};
use jobnet::plan::{Choice, JobRequest, Origin, PKeyChoice};
use jobnet::Context;
use std::path::PathBuf;

/// Where `--topology` comes from, for a file that cannot be read.
pub const TOPOLOGY_HINT: &str =
    "check the path (--topology, $JOBNET_TOPOLOGY, /etc/jobnet/topology.yaml)";

/// What names a job and where it runs.
#[derive(Args)]
pub struct JobArgs {
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
}

/// What `plan` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Per device the operations and exact commands, the partitions.conf diff, warnings.
    Text,
    /// The plan as one JSON document.
    Json,
    /// Graphviz DOT of the fabric with the job's subgraph.
    Dot,
    /// A self-contained SVG picture of the fabric with the job's subgraph.
    Svg,
}

/// Which part of the fabric a picture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ViewArg {
    /// The job's part on fabrics of more than 40 switches, else the whole fabric.
    Auto,
    /// The whole fabric.
    Full,
    /// The job's subgraph plus one ring of neighbouring switches.
    Job,
}

impl ViewArg {
    pub fn pick(self, t: &jobnet::topology::Topology, plan: Option<&jobnet::plan::Plan>) -> View {
        match self {
            ViewArg::Auto => View::auto(t, plan),
            ViewArg::Full => View::Full,
            ViewArg::Job => View::Job,
        }
    }
}

#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Output: text, json, or a picture (dot, svg).
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// For dot and svg: the whole fabric or the job's part of it.
    #[arg(long, value_enum, default_value_t = ViewArg::Auto)]
    view: ViewArg,
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Print the plan `up` would carry out now (as `jobnet plan`) and touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output: text or json (with --dry-run: the plan in text or json).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Arguments to typed values, no I/O.
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
        origin: FLAGS,
    })
}

/// Where a command line's request comes from, as messages name it.
const FLAGS: Origin = Origin {
    nodes: "--nodes",
    vlan: "--vlan",
    pkey: "--pkey",
    gateway: "--gateway",
};

/// The request and the loaded topology (its warnings printed).
fn setup(ctx: &Context, args: &JobArgs) -> Result<(JobRequest, Fabric), Fail> {
    let req = request(args)?;
    let fabric = super::output::fabric(ctx, &args.topology, TOPOLOGY_HINT)?;
    warn(jobnet::base::diag::printed(&fabric.warnings));
    Ok((req, fabric))
}

pub fn plan(ctx: &Context, a: &PlanArgs) -> Result<(), Fail> {
    print_plan(ctx, &a.job, a.format, a.view)
}

fn print_plan(ctx: &Context, a: &JobArgs, format: PlanFormat, view: ViewArg) -> Result<(), Fail> {
    let (req, fabric) = setup(ctx, a)?;
    let p = ctx.plan(&fabric, &req, a.partitions_conf.as_deref())?;
    let t = &fabric.topology;
    let text = match format {
        PlanFormat::Text => render::plan_text(&p, t),
        PlanFormat::Json => render::plan_json(&p),
        PlanFormat::Dot => render::dot_view(t, Some(&p), view.pick(t, Some(&p))),
        PlanFormat::Svg => render::svg_view(t, Some(&p), view.pick(t, Some(&p))),
    };
    if format != PlanFormat::Text {
        warn(p.warnings.iter().map(|w| format!("warning: {w}")));
    }
    let printed = out(&text);
    // The process ends here: a large fabric's model and plan are hundreds of thousands of
    // allocations, freed by the exit at once instead of one by one (issue 15, P3).
    std::mem::forget((req, fabric, p));
    printed
}

pub fn up(ctx: &Context, a: &UpArgs) -> Result<(), Fail> {
    if a.dry_run {
        let format = match a.format {
            Format::Text => PlanFormat::Text,
            Format::Json => PlanFormat::Json,
        };
        return print_plan(ctx, &a.job, format, ViewArg::Auto);
    }
    let (req, mut fabric) = setup(ctx, &a.job)?;
    // Recorded with the job: absolute, so that `status` run from anywhere names the file.
    fabric.path = std::path::absolute(&fabric.path).unwrap_or(fabric.path);
    interrupts()?;
    let bar = progress::for_terminal(&format!("up {}", req.job));
    let r = ctx.up(
        &fabric,
        &req,
        a.job.partitions_conf.as_deref(),
        bar.as_ref(),
    );
    drop(bar);
    let r = r?;
    warn(r.warnings.iter().map(|w| format!("warning: {w}")));
    let vlan = r
        .vlan
        .map_or("no VLAN".to_string(), |v| format!("VLAN {v}"));
    let pkey = r.pkey.map(|k| format!(", PKey {k}")).unwrap_or_default();
    let nodes = hostlist::fold_short(&r.nodes, 12);
    out(&match a.format {
        Format::Json => json(&r),
        Format::Text if r.unchanged => {
            format!(
                "job {} is already up on {nodes} ({vlan}{pkey}); nothing sent\n",
                r.job
            )
        }
        Format::Text => format!(
            "job {} up: {vlan}{pkey} for {nodes} on {} device(s) ({}) in {:.2} s\n",
            r.job,
            r.devices.len(),
            r.devices
                .iter()
                .map(|d| format!("{} {} op(s)", d.name, d.operations))
                .collect::<Vec<_>>()
                .join(", "),
            r.seconds
        ),
    })
}
