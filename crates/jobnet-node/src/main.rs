//! `jobnet-node`: the node side alone, for the compute nodes — `prepare`, `attach`, `detach` and
//! `show`, the same commands and exit codes as `jobnet node …` (docs/nodes.md), and the CNI
//! plugin when called as `jobnet-cni`. Built from the `jobnet-node` crate, it carries no SSH
//! client, no state store and no planner: a node needs none of them.

use clap::{CommandFactory, FromArgMatches, Parser};
use jobnet_node::cli::{self, NodeCmd};
use std::process::ExitCode;

/// On a node: the job's VMs/containers on its VLAN (per-node Prolog/Epilog, launchers),
/// configured by /etc/jobnet/node.yaml.
#[derive(Parser)]
#[command(name = "jobnet-node", version)]
struct Args {
    #[command(subcommand)]
    cmd: NodeCmd,
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Called as `jobnet-cni` by a container runtime: the CNI plugin (env + stdin, JSON out).
    let cni = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "jobnet-cni");
    if cni {
        return cli::cni_main();
    }
    let parsed = Args::command()
        .try_get_matches_from(args)
        .and_then(|m| Args::from_arg_matches(&m));
    let args = match parsed {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = args.cmd.json();
    match cli::run(args.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report("jobnet-node", json),
    }
}
