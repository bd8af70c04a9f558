//! What a batch system's prolog and epilog do, for every batch system alike (Slurm, PBS, a
//! passport): decide from the site's policy and the job's request, bring the network up through
//! the facade (a requeued or half-done job gets a clean network first), number the VMs and write
//! their files, count failures so the caller can hold a job instead of requeueing it forever; and
//! take it all away again. Both are safe to run twice (a batch system reruns a hook that was
//! killed): `up` of a job that is up as asked sends nothing, `down` of a job that is down is done.

use super::addresses::{AddressPlan, JobAddresses, Subnets};
use super::request::NetworkRequest;
use super::site::{Decision, Site};
use super::JobMeta;
use crate::apply::{DownReport, Silent, UpReport};
use crate::base::fsutil;
use crate::base::jobstate::{AllocationKind, JobState};
use crate::base::types::JobId;
use crate::context::Context;
use crate::plan::{JobRequest, Origin};
use std::path::PathBuf;

/// A job's VM addresses and the directory of their files.
pub type Numbered = (JobAddresses, PathBuf);

/// A prolog failure: the message and its exit code (docs/cli.md).
type Failed = (String, u8);

/// How a prolog ended.
#[derive(Debug)]
pub enum PrologOutcome {
    /// Not the policy's and nothing asked: nothing was touched.
    Untouched,
    /// The network is up; the VMs' addresses and where their files are, when the site numbers.
    Up {
        report: Box<UpReport>,
        addresses: Option<Numbered>,
    },
    /// Failed, and the policy lets this job run without a network (`fail_open`); nothing of it is
    /// left on the devices (or what is left is in the journal, for `down`).
    FailOpen { error: String },
    /// Failed (`failures` times for this job, counted across requeues); `hold`: stop retrying.
    /// `code` is the exit code of docs/cli.md for the failure.
    Failed {
        error: String,
        code: u8,
        failures: u32,
        hold: bool,
    },
}

/// How an epilog ended.
#[derive(Debug)]
pub enum EpilogOutcome {
    /// The job has no network (never had, or it is down already).
    Untouched,
    Down(DownReport),
    Failed {
        error: String,
    },
}

/// The prolog: `log` receives one line per step worth knowing.
pub fn prolog(
    ctx: &Context,
    site: &Site,
    meta: &JobMeta,
    log: &mut dyn FnMut(&str),
) -> PrologOutcome {
    let texts: Vec<&str> = meta.texts.iter().map(|(_, t)| t.as_str()).collect();
    let decision = site.decide(
        meta.partition.as_deref(),
        meta.user.as_deref(),
        meta.account.as_deref(),
        &texts,
    );
    let (request, fail_open) = match decision {
        Decision::Untouched => return PrologOutcome::Untouched,
        Decision::Refused(why) => {
            // A request that cannot be met will not be met on a retry either: hold at once.
            let failures = ctx.note_failure(&meta.id, &why).unwrap_or(site.hold_after);
            return PrologOutcome::Failed {
                error: why,
                code: 2,
                failures,
                hold: true,
            };
        }
        Decision::Network {
            request,
            fail_open,
            note,
            ..
        } => {
            if let Some(n) = note {
                log(&n);
            }
            (request, fail_open)
        }
    };
    match bring_up(ctx, site, meta, &request, log) {
        Ok((report, addresses)) => {
            if let Err(e) = ctx.clear_failures(&meta.id) {
                log(&format!(
                    "could not reset the failure count: {}",
                    site.explain(&e)
                ));
            }
            PrologOutcome::Up {
                report: Box::new(report),
                addresses,
            }
        }
        Err((error, _)) if fail_open => PrologOutcome::FailOpen { error },
        Err((error, code)) => {
            let failures = match ctx.note_failure(&meta.id, &error) {
                Ok(n) => n,
                Err(e) => {
                    log(&format!(
                        "could not count the failure: {}",
                        site.explain(&e)
                    ));
                    1
                }
            };
            PrologOutcome::Failed {
                error,
                code,
                failures,
                hold: failures >= site.hold_after,
            }
        }
    }
}

/// A clean network for the job, then `up`, then its addresses.
fn bring_up(
    ctx: &Context,
    site: &Site,
    meta: &JobMeta,
    request: &NetworkRequest,
    log: &mut dyn FnMut(&str),
) -> Result<(UpReport, Option<Numbered>), Failed> {
    // Fixes in the hooks' words (jobnet.yaml, the job's request), not the command line's.
    let e = |e: crate::Error| (site.explain(&e), e.exit_code());
    let row = ctx.job(&meta.id).map_err(e)?;
    if let Some(row) = row.filter(|r| r.state != JobState::Down) {
        // Requeued (restart count > 0), or a hook that died mid-change: start from nothing.
        if meta.restart_count > 0 || row.state != JobState::Up {
            log(&format!(
                "job is {} from an earlier run (restart count {}): taking its network down first",
                row.state, meta.restart_count
            ));
            ctx.down(&meta.id, None, false, &Silent).map_err(e)?;
        }
    }
    // What a dead process left half-done on these nodes (a prolog killed with a slurmctld that
    // then forgot the job) goes first, each said in the log whatever becomes of this job.
    for line in ctx.unwind_orphans(&meta.id, &meta.nodes).map_err(e)? {
        log(&line);
    }
    let fabric = ctx.fabric(&site.topology).map_err(e)?;
    for w in &fabric.warnings {
        log(&format!("topology warning: {w}"));
    }
    let req = JobRequest {
        job: meta.id.clone(),
        nodes: meta.nodes.clone(),
        vlan: request.vlan,
        pkey: request.pkey,
        gateway: request.gateway.clone(),
        origin: Origin {
            nodes: meta.nodes_from,
            vlan: "the job's network request",
            pkey: "the job's network request",
            gateway: "the job's network request",
        },
    };
    let report = ctx.up(&fabric, &req, None, &Silent).map_err(e)?;
    for w in &report.warnings {
        log(&format!("warning: {w}"));
    }
    let numbered = match &site.addresses {
        Some(plan) => number(ctx, plan, meta, &report, request.vms_per_node).map(Some),
        None => Ok(None),
    };
    let told = numbered.and_then(|n| {
        tell_nodes(site, meta, &report, n.as_ref().map(|(a, _)| a))
            .map(|()| n)
            .map_err(|e| format!("cannot write the job's network.json for the nodes: {e}"))
    });
    match told {
        Ok(a) => Ok((report, a)),
        Err(why) => {
            // The job cannot run without its addresses: take the network away again.
            if let Err(d) = ctx.down(&meta.id, None, false, &Silent) {
                let code = d.exit_code();
                return Err((
                    format!(
                        "{why}; and taking the network down again failed: {}",
                        site.explain(&d)
                    ),
                    code,
                ));
            }
            Err((why, 4))
        }
    }
}

/// `<jobs_dir>/<job>/network.json`: what `jobnet node attach` and the CNI plugin read.
fn tell_nodes(
    site: &Site,
    meta: &JobMeta,
    report: &UpReport,
    addresses: Option<&JobAddresses>,
) -> std::io::Result<()> {
    let n = super::network::JobNetwork {
        job: meta.id.to_string(),
        vlan: report.vlan.map(|v| v.get()),
        pkey: report.pkey.map(|k| k.to_string()),
        nodes: meta.nodes.clone(),
        addresses: addresses.cloned(),
    };
    match &site.jobs_dir {
        Some(dir) => n.write(dir, &meta.id).map(|_| ()),
        None => Ok(()),
    }
}

/// Allocates the job's subnet, numbers its VMs, writes their files, records the list.
fn number(
    ctx: &Context,
    plan: &AddressPlan,
    meta: &JobMeta,
    report: &UpReport,
    vms_per_node: u32,
) -> Result<Numbered, String> {
    let index = match &plan.subnets {
        Subnets::Pool { .. } => {
            let size = plan.pool_size().unwrap_or(0).min(u32::from(u16::MAX) + 1);
            let mut all = (0..size).map(|i| i as u16);
            ctx.allocate(&meta.id, AllocationKind::Subnet, &mut all)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!("every subnet of the address pool ({size}) is in use by a live job; widen addresses.pool in jobnet.yaml")
                })?
        }
        Subnets::Template(_) => 0,
    };
    let subnet = plan
        .subnet(index, report.vlan.map(|v| v.get()))
        .map_err(|e| e.to_string())?;
    let a = plan
        .assign(meta.id.as_str(), subnet, &meta.nodes, vms_per_node)
        .map_err(|e| e.to_string())?;
    let owner = meta.uid.and_then(|u| {
        meta.gid
            .or_else(|| crate::base::users::primary_group(u))
            .map(|g| (u, g))
    });
    let dir = write_files(plan, &a, &meta.id, owner).map_err(|e| e.to_string())?;
    ctx.set_addresses(&meta.id, Some(&a.json()))
        .map_err(|e| e.to_string())?;
    Ok((a, dir))
}

/// The job's directory of address files: `plan.dir/<job id>`.
pub fn job_dir(plan: &AddressPlan, job: &JobId) -> PathBuf {
    super::network::job_dir(&plan.dir, job)
}

/// Writes the job's files. Run as root, they are root's with the job's user's group (`owner`'s
/// gid), 0750/0640: the user reads them, others do not, and nobody but root changes them — the
/// job's directory may also hold the network.json that root on the nodes trusts. Otherwise
/// (Slurm's controller hooks run as SlurmUser) they are the writer's, readable by all.
fn write_files(
    plan: &AddressPlan,
    a: &JobAddresses,
    job: &JobId,
    owner: Option<(u32, u32)>,
) -> std::io::Result<PathBuf> {
    let dir = job_dir(plan, job);
    let root = fsutil::euid() == 0;
    let owner = owner.filter(|_| root).map(|(_, gid)| (0, gid));
    let (dmode, fmode) = if owner.is_some() {
        (0o750, 0o640)
    } else {
        (0o755, 0o644)
    };
    // The configured directory is the site's; everything below it is opened without following
    // a link (another user may write there), and owners and modes change on descriptors.
    let base = fsutil::Dir::ensure(&plan.dir, 0o755, None)?;
    let name = dir.file_name().unwrap_or_default();
    let jd = base.sub(name, dmode, owner, true)?;
    let write = |d: &fsutil::Dir, n: &str, text: &str| {
        d.replace(std::ffi::OsStr::new(n), text.as_bytes(), fmode, owner)
    };
    write(&jd, "ip-list.txt", &a.ip_list())?;
    write(&jd, "addresses.json", &a.json())?;
    write(&jd, "dnsmasq-hosts", &a.dnsmasq())?;
    if !a.vms.is_empty() {
        let ci = jd.sub(std::ffi::OsStr::new("cloud-init"), dmode, owner, true)?;
        for vm in &a.vms {
            let d = ci.sub(std::ffi::OsStr::new(&vm.name), dmode, owner, true)?;
            write(&d, "network-config", &a.cloud_init(vm))?;
        }
    }
    Ok(dir)
}

/// The epilog: the job's network and address files go; the failure count stays (a requeued job
/// keeps counting).
pub fn epilog(ctx: &Context, site: &Site, job: &JobId, log: &mut dyn FnMut(&str)) -> EpilogOutcome {
    if !ctx.state_exists() {
        return EpilogOutcome::Untouched;
    }
    let live = match ctx.job(job) {
        Ok(row) => row.is_some_and(|r| r.state != JobState::Down),
        Err(e) => {
            return EpilogOutcome::Failed {
                error: site.explain(&e),
            }
        }
    };
    let report = if live {
        match ctx.down(job, None, false, &Silent) {
            Ok(r) => Some(r),
            Err(e) => {
                return EpilogOutcome::Failed {
                    error: site.explain(&e),
                }
            }
        }
    } else {
        None
    };
    let dirs = site.addresses.iter().map(|plan| job_dir(plan, job)).chain(
        site.jobs_dir
            .iter()
            .map(|d| super::network::job_dir(d, job)),
    );
    for dir in dirs {
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                log(&format!("could not remove {}: {e}", dir.display()));
            }
        }
    }
    if let Err(e) = ctx.set_addresses(job, None) {
        log(&format!(
            "could not forget the address list: {}",
            site.explain(&e)
        ));
    }
    report.map_or(EpilogOutcome::Untouched, EpilogOutcome::Down)
}
