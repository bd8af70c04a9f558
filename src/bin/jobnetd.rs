//! `jobnetd`: the optional daemon that keeps device sessions warm for `jobnet` commands and
//! scheduler hooks (docs/jobnetd.md). It only wires its command line to
//! [`jobnet_daemon::daemon`]: it links the daemon crate alone (no state store, planner or executor).

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Keeps device sessions warm for jobnet commands and hooks on this host.
#[derive(Parser)]
#[command(name = "jobnetd", version)]
struct Args {
    /// The Unix socket to listen on (mode 0600; jobnet finds it by the same option or
    /// $JOBNET_DAEMON).
    #[arg(long, env = "JOBNET_DAEMON", default_value = jobnet_daemon::drivers::transport::daemon::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The service user that owns the socket when jobnetd runs as root (root can always
    /// connect).
    #[arg(long)]
    service_user: Option<String>,
    /// Seconds between keep-alive probes of idle sessions (against the devices' idle timeout).
    #[arg(long, default_value_t = 30)]
    keepalive: u64,
    /// Seconds a session may sit idle and still be lent without a probe first (a new login
    /// when the probe finds it gone).
    #[arg(long, default_value_t = 5)]
    probe_after: u64,
    /// Seconds after which an idle session is closed.
    #[arg(long, default_value_t = 600)]
    idle_max: u64,
    /// Seconds a stop waits for lent sessions to come back.
    #[arg(long, default_value_t = 120)]
    drain: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let owner = match &args.service_user {
        None => None,
        Some(name) => match jobnet_daemon::base::users::by_name(name) {
            Some(ids) => Some(ids),
            None => {
                eprintln!("jobnetd: --service-user {name}: no such user; create it or give an existing one");
                return ExitCode::from(2);
            }
        },
    };
    let opts = jobnet_daemon::daemon::ServeOptions {
        socket: args.socket,
        socket_owner: owner,
        keepalive: Duration::from_secs(args.keepalive.max(1)),
        probe_after: Duration::from_secs(args.probe_after),
        idle_max: Duration::from_secs(args.idle_max.max(1)),
        drain: Duration::from_secs(args.drain),
    };
    match jobnet_daemon::daemon::serve(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobnetd: {e}");
            ExitCode::from(1)
        }
    }
}
