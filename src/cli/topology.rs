//! `jobnet topology validate|show|generate|import-ib`: what network engineers run on topology
//! files.

use super::ib::read_checked;
use super::job::ViewArg;
use super::output::{invalid, json, out, warn, Fail, Format};
use super::Global;
use clap::{Subcommand, ValueEnum};
use jobnet::base::hostlist;
use jobnet::context::Fabric;
use jobnet::ib::import;
use jobnet::plan::render;
use jobnet::topology::{self, FatTreeSpec};
use jobnet::Context;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Cmd {
    /// Check a topology file; exit 0 when valid (warnings on stderr), 2 when not.
    Validate {
        /// The topology file to check.
        file: PathBuf,
        /// Output: text or json.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Counts, switches, links and nodes per switch; or a picture of the fabric.
    Show {
        /// The topology file to show.
        file: PathBuf,
        /// Output: text, json, or a picture (dot, svg).
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Write a synthetic topology (for benchmarks and scale tests) to stdout.
    #[command(subcommand)]
    Generate(GenerateCmd),
    /// Match `ibnetdiscover` output with the topology's nodes: a report and the `nodes:` section
    /// with the discovered HCA port GUIDs.
    ImportIb {
        /// A file with the output of `ibnetdiscover`.
        ibnetdiscover: PathBuf,
        /// Topology file whose nodes are matched.
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

/// What `topology show` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// Counts, switches, links and nodes per switch.
    Text,
    /// The same as one JSON document.
    Json,
    /// Graphviz DOT of the fabric.
    Dot,
    /// A self-contained SVG picture of the fabric.
    Svg,
}

/// What `topology import-ib` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// The report and the nodes section.
    Text,
    /// Only the nodes section, to paste into the topology.
    Yaml,
    /// The report as JSON.
    Json,
}

#[derive(Subcommand)]
pub enum GenerateCmd {
    /// A 3-tier fat tree: leaves, aggregation switches in pods, core switches.
    FatTree {
        /// Compute nodes in all.
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        /// Nodes on each leaf switch.
        #[arg(long, default_value_t = 32)]
        hosts_per_leaf: usize,
        /// Leaf switches in each pod.
        #[arg(long, default_value_t = 8)]
        leaves_per_pod: usize,
        /// Aggregation switches in each pod.
        #[arg(long, default_value_t = 4)]
        aggs_per_pod: usize,
        /// Core switches each aggregation switch links to.
        #[arg(long, default_value_t = 2)]
        cores_per_agg: usize,
        /// Leave out the infiniband section and node GUIDs.
        #[arg(long)]
        no_ib: bool,
    },
}

impl Cmd {
    pub fn json(&self) -> bool {
        match self {
            Cmd::Validate { format, .. } => *format == Format::Json,
            Cmd::Show { format, .. } => *format == ShowFormat::Json,
            Cmd::ImportIb { format, .. } => *format == ImportFormat::Json,
            Cmd::Generate(_) => false,
        }
    }
}

pub fn run(cmd: Cmd, g: &Global) -> Result<(), Fail> {
    match cmd {
        Cmd::Generate(GenerateCmd::FatTree {
            nodes,
            hosts_per_leaf,
            leaves_per_pod,
            aggs_per_pod,
            cores_per_agg,
            no_ib,
        }) => {
            let spec = FatTreeSpec {
                nodes,
                hosts_per_leaf,
                leaves_per_pod,
                aggs_per_pod,
                cores_per_agg,
                infiniband: !no_ib,
            };
            spec.check().map_err(|e| invalid(shape_error(&e)))?;
            out(&topology::fat_tree(&spec))
        }
        Cmd::Validate { file, format } => validate(&super::context(g)?, &file, format),
        Cmd::Show { file, format } => show(&super::context(g)?, &file, format),
        Cmd::ImportIb {
            ibnetdiscover,
            topology,
            format,
        } => import_ib(&super::context(g)?, &ibnetdiscover, &topology, format),
    }
}

fn load(ctx: &Context, file: &Path, hint: &str) -> Result<Fabric, Fail> {
    let f = super::output::fabric(ctx, file, hint)?;
    warn(jobnet::base::diag::printed(&f.warnings));
    Ok(f)
}

fn validate(ctx: &Context, file: &Path, format: Format) -> Result<(), Fail> {
    let f = load(ctx, file, "check the path")?;
    let t = &f.topology;
    out(&match format {
        Format::Json => json(&serde_json::json!({
            "file": file.display().to_string(),
            "valid": true,
            "counts": {
                "switches": t.switches.len(),
                "links": t.links.len(),
                "nodes": t.nodes.len(),
                "gateways": t.gateways.len(),
            },
            "warnings": f.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        })),
        Format::Text => format!(
            "{}: valid ({} switches, {} links, {} nodes, {} gateways; {} warning(s))\n",
            file.display(),
            t.switches.len(),
            t.links.len(),
            t.nodes.len(),
            t.gateways.len(),
            f.warnings.len()
        ),
    })
}

fn show(ctx: &Context, file: &Path, format: ShowFormat) -> Result<(), Fail> {
    let f = load(ctx, file, "check the path")?;
    let t = &f.topology;
    out(&match format {
        ShowFormat::Text => render::topology_text(t),
        ShowFormat::Json => {
            let mut v: serde_json::Value =
                serde_json::from_str(&render::topology_json(t)).expect("own json");
            v["warnings"] = f.warnings.iter().map(|w| w.to_string()).collect();
            json(&v)
        }
        ShowFormat::Dot => render::dot_view(t, None, ViewArg::Full.pick(t, None)),
        ShowFormat::Svg => render::svg_view(t, None, ViewArg::Full.pick(t, None)),
    })
}

fn import_ib(
    ctx: &Context,
    output: &Path,
    topology: &Path,
    format: ImportFormat,
) -> Result<(), Fail> {
    let text = read_checked(output, jobnet::base::limits::IBNETDISCOVER)?;
    let ports = import::parse(&text, &output.display().to_string()).map_err(|d| {
        let mut f = invalid(format!(
            "{} is not usable ibnetdiscover output",
            output.display()
        ));
        f.diagnostics = d.sorted();
        f
    })?;
    let f = load(ctx, topology, super::job::TOPOLOGY_HINT)?;
    let t = &f.topology;
    let report = import::compare(t, &ports);
    out(&match format {
        ImportFormat::Json => json(&report),
        ImportFormat::Yaml => import::nodes_yaml(t, &report),
        ImportFormat::Text => {
            let mut o = import_text(&report, ports.len(), output, t.nodes.len());
            o += &format!(
                "\n# the nodes section of {} with the discovered GUIDs:\n",
                topology.display()
            );
            o + &import::nodes_yaml(t, &report)
        }
    })
}

fn import_text(report: &import::Report, ports: usize, output: &Path, nodes: usize) -> String {
    let found = report.matches.iter().filter(|m| m.guid.is_some()).count();
    let mut o = format!(
        "{ports} HCA port(s) in {}; {found} of {nodes} topology node(s) matched by node description\n",
        output.display()
    );
    let mut list = |what: &str, names: &[String]| {
        if !names.is_empty() {
            o += &format!("  {what}: {}\n", hostlist::fold(names));
        }
    };
    list(
        "in the topology, not found by ibnetdiscover",
        &report.missing,
    );
    list(
        "found by ibnetdiscover, not in the topology",
        &report.unknown,
    );
    list(
        "GUID in the topology differs from the discovered one",
        &report.changed,
    );
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
    o
}

/// A refused shape, named by the flag that gave the value (the library names the spec's field).
fn shape_error(e: &topology::ShapeError) -> String {
    use topology::ShapeError;
    match e {
        ShapeError::OutOfRange { field, value, max } => {
            format!(
                "--{} {value} is out of range 1..{max}",
                field.replace('_', "-")
            )
        }
        ShapeError::TooManyLinks { .. } => e.to_string(),
    }
}
