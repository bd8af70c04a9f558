//! `jobnet-switch-sim`: serves every switch of a topology as a simulated switch over SSH on
//! 127.0.0.1, each speaking its driver profile's dialect, with optional latency, and writes a lab
//! directory (`topology.yaml` pointing at the simulators, `credentials.yaml`, `known_hosts`,
//! `ready` with the pid, `logins` with the logins accepted so far) for `jobnet up/down` to use.
//! Runs until killed. For benchmarks and
//! trying jobnet out without switches; never a substitute for real devices.
//!
//! Ports start as a site prepares them for jobnet (`--ports site`, the default: link ends and node
//! ports trunks allowing no VLAN, access-mode node ports in access mode), or as the vendors ship
//! them (`--ports factory`: Cisco IOS `dynamic auto`, Arista `static access`, trunks allowing ALL).

use jobnet::drivers::DriverSet;
use jobnet::testkit::sim::{SimFabric, SitePorts};
use jobnet::testkit::sim_server;
use jobnet::topology;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage: jobnet-switch-sim --topology FILE --out DIR [--login-latency-ms N] [--command-latency-ms N] [--legacy-only SW,SW] [--ports site|factory]\n";

/// Asked for (`--help`): what it does and the usage on stdout, exit 0.
fn help() -> ! {
    let text = format!(
        "jobnet-switch-sim: serves every switch of a topology as a simulated switch over SSH on \
         127.0.0.1 and writes a lab directory (topology.yaml, credentials.yaml, known_hosts, ready) \
         for `jobnet up/down`; runs until killed. Test kit only, never a real device.\n\n{USAGE}\n\
         --ports site     ports as a site prepares them for jobnet (default)\n\
         --ports factory  ports as the vendors ship them\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    std::process::exit(0)
}

/// A command line it cannot use: the usage on stderr, exit 2.
fn usage() -> ! {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), USAGE.as_bytes());
    std::process::exit(2)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut topo, mut out, mut login, mut command, mut legacy) =
        (None, None, 0u64, 0u64, Vec::new());
    let mut ports = SitePorts::Prepared;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--topology" => topo = Some(PathBuf::from(val())),
            "--out" => out = Some(PathBuf::from(val())),
            "--login-latency-ms" => login = val().parse()?,
            "--command-latency-ms" => command = val().parse()?,
            "--legacy-only" => legacy = val().split(',').map(str::to_string).collect(),
            "-h" | "--help" => help(),
            "--ports" => {
                ports = match val().as_str() {
                    "site" => SitePorts::Prepared,
                    "factory" => SitePorts::Factory,
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    let (Some(topo), Some(out)) = (topo, out) else {
        usage()
    };
    let drivers = DriverSet::builtin();
    let t = topology::load(&topo, &drivers)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .topology;
    let fabric = SimFabric::default();
    fabric.build(&t, &drivers, ports);
    let mut names = Vec::new();
    for (name, driver) in t
        .switches
        .iter()
        .map(|s| (&s.name, &s.driver))
        .chain(t.gateways.iter().map(|g| (&g.name, &g.driver)))
    {
        let sw = fabric.switch(name, drivers.get(driver).expect("validated"));
        let mut f = sw.faults.lock().expect("faults");
        f.login_latency = Duration::from_millis(login);
        f.command_latency = Duration::from_millis(command);
        names.push(name.clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let access = sim_server::Access {
        username: "jobnet".into(),
        password: sim_server::random_password()?,
        authorized_keys: Vec::new(),
        enable_password: Some(sim_server::random_password()?),
    };
    let running = sim_server::start_fabric(runtime.handle(), &fabric, &names, &legacy, &access)?;
    sim_server::write_lab(&out, &t, &running, &access, &legacy)?;
    std::fs::write(out.join("ready"), std::process::id().to_string())?;
    // `logins`: how many logins every switch accepted so far (benchmarks count them).
    runtime.block_on(async {
        let mut written = u64::MAX;
        loop {
            let n = running.logins();
            if n != written && std::fs::write(out.join("logins"), format!("{n}\n")).is_ok() {
                written = n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    Ok(())
}
