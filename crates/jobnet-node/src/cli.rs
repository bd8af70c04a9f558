//! The node side's command line, shared by both binaries that carry it: `jobnet node
//! prepare|attach|detach|show` in the controller's `jobnet`, and the small `jobnet-node` built
//! from this crate alone (no SSH, no state store) for the nodes — `prepare` and `detach` for the
//! per-node Prolog/Epilog (root, every job), `attach` for VM or container launchers once a VM's
//! interface exists; and `jobnet-cni` (either binary called by that name) for CNI runtimes.
//! Configured by `/etc/jobnet/node.yaml` (`$JOBNET_NODE_CONFIG`).

use crate::base::types::JobId;
use crate::jobs::addresses::Vm;
use crate::jobs::network::JobNetwork;
use crate::node::config::{NodeConfig, NodeConfigError, NodeSettings, DEFAULT_CONFIG};
use crate::node::{self, Host, NodeError, Session};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `--format` of the node commands: text for people, JSON for programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document.
    Json,
}

/// A failure of a node command with its exit code (docs/cli.md).
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Fail {
            code,
            message: message.into(),
        }
    }

    /// Prints the failure as `PROGRAM: message` on stderr (and as `{"error": {...}}` on stdout
    /// when the command was asked for JSON) and gives its exit code.
    pub fn report(self, program: &str, json_out: bool) -> ExitCode {
        let _ = writeln!(std::io::stderr(), "{program}: {}", self.message);
        if json_out {
            let v = serde_json::json!({"error": {
                "code": self.code,
                "message": self.message,
                "diagnostics": [],
            }});
            let _ = out(&json(&v));
        }
        ExitCode::from(self.code)
    }
}

fn invalid(message: impl Into<String>) -> Fail {
    Fail::new(2, message)
}

/// Writes `text` to stdout; a closed pipe is not an error of ours.
fn out(text: &str) -> Result<(), Fail> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Fail::new(1, format!("writing to stdout: {e}"))),
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("json") + "\n"
}

#[derive(Subcommand)]
pub enum NodeCmd {
    /// Make the node ready for the job before its VMs exist: the uplink carries the job's VLAN
    /// (per-node Prolog; a job without a jobnet network: nothing to do, exit 0).
    Prepare(CommonArgs),
    /// Put the job's VM/container interfaces on its VLAN, and the uplink in it (VM launcher,
    /// once the interfaces exist; a job without a jobnet network: exit 3, nothing changed).
    Attach(AttachArgs),
    /// Give the node back what it had before the job (safe to repeat).
    Detach(CommonArgs),
    /// Print the job's VM configuration for this node (Proxmox `qm set`, libvirt XML, JSON).
    Show(ShowArgs),
}

#[derive(Args)]
pub struct CommonArgs {
    /// Job id.
    #[arg(long)]
    job: String,
    /// This node's name as the batch system knows it (default: $SLURMD_NODENAME, else the host name).
    #[arg(long)]
    node: Option<String>,
    /// The node configuration.
    #[arg(long, env = "JOBNET_NODE_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args)]
pub struct AttachArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// A VM of the job and its interface on the node bridge, NAME=IFACE (repeatable); without
    /// it, every VM of the job on this node, named by the configuration's `interface:`.
    #[arg(long = "vm", value_name = "NAME=IFACE")]
    vms: Vec<String>,
    /// A network namespace (a container without CNI): a veth goes into it for the one --vm NAME.
    #[arg(long)]
    netns: Option<String>,
    /// The interface's name inside --netns.
    #[arg(long, default_value = "eth0")]
    ifname: String,
}

/// What `node show` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// The job's VMs on this node with their VLAN, MAC and address.
    Json,
    /// `qm set` lines (needs --vmid).
    Proxmox,
    /// libvirt `<interface>` elements.
    Libvirt,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Job id.
    #[arg(long)]
    job: String,
    /// This node's name (default: $SLURMD_NODENAME, else the host name).
    #[arg(long)]
    node: Option<String>,
    /// The node configuration.
    #[arg(long, env = "JOBNET_NODE_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Output.
    #[arg(long, value_enum, default_value_t = ShowFormat::Json)]
    format: ShowFormat,
    /// For proxmox: a VM's Proxmox id and net index, NAME=VMID:N (repeatable).
    #[arg(long = "vmid", value_name = "NAME=VMID:N")]
    vmids: Vec<String>,
}

impl NodeCmd {
    pub fn json(&self) -> bool {
        match self {
            NodeCmd::Prepare(a) => a.format == Format::Json,
            NodeCmd::Attach(a) => a.common.format == Format::Json,
            NodeCmd::Detach(a) => a.format == Format::Json,
            NodeCmd::Show(a) => a.format == ShowFormat::Json,
        }
    }
}

/// The node's name and where it came from (for messages).
fn node_name_from(given: Option<&str>) -> (String, &'static str) {
    if let Some(n) = given {
        return (n.to_string(), "--node");
    }
    match std::env::var("SLURMD_NODENAME") {
        Ok(n) if !n.is_empty() => (n, "$SLURMD_NODENAME"),
        _ => (node::cni::hostname(), "the host name"),
    }
}

fn settings(config: &std::path::Path, node: Option<&str>) -> Result<NodeSettings, Fail> {
    let cfg = NodeConfig::load(config).map_err(|e| Fail::new(2, e.to_string()))?;
    crate::base::process::set_programs(cfg.programs.clone());
    let (name, from) = node_name_from(node);
    cfg.for_node(&name).map_err(|e| match e {
        NodeConfigError::NodeName(_) => invalid(format!("{e}; it came from {from}")),
        e => invalid(e.to_string()),
    })
}

/// This node; in a test-kit build, the simulated node `$JOBNET_NODE_SIM` names when it is set,
/// and the real node dying after `$JOBNET_FAILPOINT_NODE` commands when only that is.
fn host() -> Box<dyn Host> {
    #[cfg(feature = "testkit")]
    {
        if let Some(sim) = node::sim::SimHost::from_env() {
            return Box::new(sim);
        }
        if let Some(h) = node::sim::CrashAfter::from_env(node::host::System) {
            return Box::new(h);
        }
    }
    Box::new(node::host::System)
}

fn fail(e: NodeError) -> Fail {
    Fail::new(e.exit_code(), e.to_string())
}

fn job_id(text: &str) -> Result<JobId, Fail> {
    JobId::parse(text).map_err(|e| invalid(format!("--job: {e}")))
}

pub fn run(cmd: NodeCmd) -> Result<(), Fail> {
    match cmd {
        NodeCmd::Prepare(a) => prepare(&a),
        NodeCmd::Attach(a) => attach(&a),
        NodeCmd::Detach(a) => detach(&a),
        NodeCmd::Show(a) => show(&a),
    }
}

/// Exit code of `attach` for a job the controller wrote no network for: the launcher's VM would
/// start off the job network, and must know (nothing was changed).
pub const NO_NETWORK: u8 = 3;

/// The uplink only: what the per-node Prolog does for every job, before any VM exists.
fn prepare(c: &CommonArgs) -> Result<(), Fail> {
    let job = job_id(&c.job)?;
    let s = settings(&c.config, c.node.as_deref())?;
    let net = match JobNetwork::read(&s.jobs_dir, &job) {
        Ok(n) => n,
        // Most jobs have no jobnet network: a prolog run for every job must not fail them.
        Err(crate::jobs::network::NetworkFileError::Missing { path, .. }) => {
            return no_network(c.format, &job, &s, &path);
        }
        Err(e) => return Err(Fail::new(2, e.to_string())),
    };
    let mut h = host();
    let mut session = Session::open(&s, h.as_mut()).map_err(fail)?;
    let r = session.attach(&job, &net, &[], None).map_err(fail)?;
    out(&match c.format {
        Format::Json => json(&r),
        Format::Text => attached_text(&job, &s, &r),
    })
}

fn attach(a: &AttachArgs) -> Result<(), Fail> {
    let c = &a.common;
    let job = job_id(&c.job)?;
    let s = settings(&c.config, c.node.as_deref())?;
    let net = JobNetwork::read(&s.jobs_dir, &job).map_err(|e| match e {
        // A VM started now would be on no job network: say so with a code of its own.
        crate::jobs::network::NetworkFileError::Missing { .. } => Fail::new(
            NO_NETWORK,
            format!("{e}; a VM attached now would not be on a job network: nothing was changed (exit {NO_NETWORK})"),
        ),
        _ => Fail::new(2, e.to_string()),
    })?;
    let mine: Vec<_> = net
        .addresses
        .iter()
        .flat_map(|ad| &ad.vms)
        .filter(|v| v.node == s.node)
        .cloned()
        .collect();
    let (ports, veth) = if let Some(ns) = &a.netns {
        (vec![], Some(netns_veth(a, ns, &s, &job, &net, &mine)?))
    } else if !a.vms.is_empty() {
        (named_ports(&a.vms, &s, &job, &net, &mine)?, None)
    } else if mine.is_empty() && net.vlan.is_some() {
        let from = node_name_from(c.node.as_deref()).1;
        return Err(invalid(format!(
            "job {job} has no VMs on node {} (the node's name from {from}) in its network.json: name the VM's interface with --vm NAME=IFACE (or the node with --node), or run `jobnet node prepare --job {job}` for the uplink alone: nothing was changed",
            s.node
        )));
    } else {
        (configured_ports(&s, &job, &mine)?, None)
    };
    let mut h = host();
    let mut session = Session::open(&s, h.as_mut()).map_err(fail)?;
    let r = session
        .attach(&job, &net, &ports, veth.as_ref())
        .map_err(fail)?;
    out(&match c.format {
        Format::Json => json(&r),
        Format::Text => attached_text(&job, &s, &r),
    })
}

/// Reports (without failing: `prepare` runs for every job) that the controller wrote no network
/// for the job.
fn no_network(format: Format, job: &JobId, s: &NodeSettings, path: &str) -> Result<(), Fail> {
    eprintln!("jobnet: job {job} has no network from the controller ({path} does not exist): nothing to do on {}", s.node);
    out(&match format {
        Format::Json => json(
            &serde_json::json!({"job": job.as_str(), "vlan": null, "interfaces": [], "note": "no network.json"}),
        ),
        Format::Text => format!(
            "job {job} has no jobnet network; nothing to do on {}\n",
            s.node
        ),
    })
}

/// The veth into `ns` for the one `--vm` (made, after it is recorded, by attach).
fn netns_veth(
    a: &AttachArgs,
    ns: &str,
    s: &NodeSettings,
    job: &JobId,
    net: &JobNetwork,
    mine: &[Vm],
) -> Result<node::Veth, Fail> {
    let [name] = a.vms.as_slice() else {
        return Err(invalid(
            "--netns takes exactly one --vm NAME (the job's VM slot it is)",
        ));
    };
    let vm = mine
        .iter()
        .find(|v| &v.name == name)
        .ok_or_else(|| invalid(format!("job {job} has no VM {name} on node {}", s.node)))?;
    let ad = net.addresses.as_ref().expect("a VM was found");
    Ok(node::Veth {
        host: node::veth_name(&format!("{ns}/{name}")),
        netns: ns.to_string(),
        ifname: a.ifname.clone(),
        vm: vm.name.clone(),
        mac: vm.mac.clone(),
        ip: Some((vm.ip, ad.subnet.prefix())),
        gateway: ad.gateway,
    })
}

/// The interfaces given as `--vm NAME=IFACE`, each checked to be a VM of the job on this node.
fn named_ports(
    vms: &[String],
    s: &NodeSettings,
    job: &JobId,
    net: &JobNetwork,
    mine: &[Vm],
) -> Result<Vec<String>, Fail> {
    let mut ports = Vec::new();
    for v in vms {
        let Some((name, iface)) = v.split_once('=') else {
            return Err(invalid(format!(
                "--vm {v}: write NAME=IFACE, e.g. vs1=tap101i0"
            )));
        };
        if !mine.iter().any(|m| m.name == name) && net.addresses.is_some() {
            return Err(invalid(format!(
                "--vm {v}: job {job} has no VM {name} on node {}",
                s.node
            )));
        }
        ports.push(iface.to_string());
    }
    Ok(ports)
}

/// The interfaces of the job's VMs on this node, named by the configuration's `interface:`;
/// every name is checked before anything changes.
fn configured_ports(s: &NodeSettings, job: &JobId, mine: &[Vm]) -> Result<Vec<String>, Fail> {
    mine.iter()
        .enumerate()
        .map(|(slot, vm)| {
            s.interface_name(job, &vm.name, slot + 1)
                .map_err(|e| match &e {
                    NodeError::InterfaceName { vm, .. } => {
                        Fail::new(e.exit_code(), format!("{e} (hint: --vm {vm}=IFACE)"))
                    }
                    _ => fail(e),
                })
        })
        .collect()
}

/// The text report of what attach did.
fn attached_text(job: &JobId, s: &NodeSettings, r: &node::Attached) -> String {
    match (&r.note, r.vlan) {
        (Some(n), _) => format!("job {job} on {}: {n}\n", s.node),
        (None, Some(v)) if r.interfaces.is_empty() => format!(
            "job {job} on {}: the uplink {} carries VLAN {v}; its VMs' interfaces are attached when they exist\n",
            s.node, s.uplink
        ),
        (None, Some(v)) => format!(
            "job {job} attached on {}: VLAN {v} on {} (uplink {})\n",
            s.node,
            r.interfaces.join(", "),
            s.uplink
        ),
        (None, None) => String::new(),
    }
}

fn detach(c: &CommonArgs) -> Result<(), Fail> {
    let job = job_id(&c.job)?;
    let s = settings(&c.config, c.node.as_deref())?;
    let mut h = host();
    let n = Session::open(&s, h.as_mut())
        .and_then(|mut session| session.detach(&job))
        .map_err(fail)?;
    out(&match c.format {
        Format::Json => {
            json(&serde_json::json!({"job": job.as_str(), "node": s.node, "undone": n}))
        }
        Format::Text if n == 0 => {
            format!("job {job} is not attached on {}; nothing to do\n", s.node)
        }
        Format::Text => format!("job {job} detached on {}: {n} change(s) undone\n", s.node),
    })
}

fn show(a: &ShowArgs) -> Result<(), Fail> {
    let job = job_id(&a.job)?;
    let s = settings(&a.config, a.node.as_deref())?;
    let net = JobNetwork::read(&s.jobs_dir, &job).map_err(|e| Fail::new(2, e.to_string()))?;
    let vlan = net
        .vlan
        .ok_or_else(|| invalid(format!("job {job} has no VLAN")))?;
    let vms: Vec<_> = net
        .addresses
        .iter()
        .flat_map(|ad| &ad.vms)
        .filter(|v| v.node == s.node)
        .collect();
    let text = match a.format {
        ShowFormat::Json => json(
            &serde_json::json!({"job": job.as_str(), "node": s.node, "vlan": vlan, "vms": vms}),
        ),
        // A VM's slot is its place among the job's VMs on this node, as attach counts them.
        ShowFormat::Libvirt => vms
            .iter()
            .enumerate()
            .map(|(i, v)| node::render::libvirt(&s, &job, v, i + 1, vlan))
            .collect::<Result<String, _>>()
            .map_err(fail)?,
        ShowFormat::Proxmox => {
            let mut o = node::render::proxmox_note(&s, vlan);
            for v in &vms {
                let spec = a
                    .vmids
                    .iter()
                    .find_map(|x| x.strip_prefix(&format!("{}=", v.name)))
                    .ok_or_else(|| {
                        invalid(format!(
                            "--vmid {}=VMID:N is missing for VM {}",
                            v.name, v.name
                        ))
                    })?;
                let (id, n) = spec.split_once(':').unwrap_or((spec, "0"));
                let (Ok(id), Ok(n)) = (id.parse::<u32>(), n.parse::<u8>()) else {
                    return Err(invalid(format!(
                        "--vmid {}={spec}: write VMID:N, e.g. 101:0",
                        v.name
                    )));
                };
                o += &node::render::proxmox(v, id, n, &s.bridge, vlan);
            }
            o
        }
    };
    out(&text)
}

/// `jobnet-cni`: a CNI plugin invocation (env + stdin → JSON on stdout).
pub fn cni_main() -> std::process::ExitCode {
    use std::io::Read;
    let mut stdin = String::new();
    let _ = std::io::stdin().take(1 << 20).read_to_string(&mut stdin);
    let env = |k: &str| std::env::var(k).ok();
    let (result, version) = match node::cni::Invocation::read(&env, &stdin) {
        Ok(inv) => (node::cni::run(&inv, host().as_mut()), inv.version()),
        Err(e) => (Err(e), "1.0.0".to_string()),
    };
    match result {
        Ok(Some(v)) => {
            let _ = out(&json(&v));
            std::process::ExitCode::SUCCESS
        }
        Ok(None) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = out(&json(&e.json(&version)));
            std::process::ExitCode::from(1)
        }
    }
}
