//! `jobnet status` (live jobs, or all with `--all`, one job with its journal, or what
//! `down --force` abandoned) and `jobnet prune` (forget old finished jobs). Read-only commands
//! create no state file.

use super::output::{invalid, json, out, table, warn, Fail, Format};
use clap::Args;
use jobnet::base::hostlist;
use jobnet::base::time::rfc3339;
use jobnet::base::types::JobId;
use jobnet::context::{JobStatus, StatusQuery};
use jobnet::Context;

#[derive(Args)]
pub struct StatusArgs {
    /// Only this job, with every journaled operation.
    #[arg(long)]
    job: Option<String>,
    /// Jobs that are down too (the history), not only live ones.
    #[arg(long)]
    all: bool,
    /// List the operations `down --force` abandoned instead.
    #[arg(long, conflicts_with_all = ["job", "all"])]
    abandoned: bool,
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Forget jobs that went down more than this many days ago (0: every job that is down).
    #[arg(long, default_value_t = 30)]
    older_than_days: u64,
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn status(ctx: &Context, a: &StatusArgs) -> Result<(), Fail> {
    if a.abandoned {
        return abandoned(ctx, a.format);
    }
    let job = match &a.job {
        Some(j) => Some(JobId::parse(j).map_err(|e| invalid(format!("--job: {e}")))?),
        None => None,
    };
    let report = ctx
        .status(&StatusQuery {
            job: job.clone(),
            all: a.all,
        })
        .map_err(|e| {
            // The job came from --job: the message says so.
            let from_flag = matches!(e, jobnet::Error::NoSuchJob { .. });
            let mut f = Fail::from(e);
            if from_flag {
                f.message = format!("--job: {}", f.message);
            }
            f
        })?;
    if !report.exists {
        warn([format!(
            "jobnet: state file {} does not exist: no job has run with it (check --state / $JOBNET_STATE)",
            ctx.options().state.display()
        )]);
    }
    let damaged: Vec<String> = report.damaged.iter().map(|e| e.to_string()).collect();
    // Every job that reads is listed; each damaged row fails the command (exit 1) by name.
    let failed = match damaged.first() {
        Some(first) => Err(Fail::new(
            1,
            format!(
                "{} damaged row(s) in the state file; the first: {first}",
                damaged.len()
            ),
        )),
        None => Ok(()),
    };
    if a.format == Format::Json {
        let items: Vec<_> = report
            .jobs
            .iter()
            .map(|s| job_json(s, job.is_some()))
            .collect();
        let mut v = serde_json::json!({ "jobs": items });
        if !damaged.is_empty() {
            v["damaged"] = serde_json::json!(damaged);
        }
        out(&json(&v))?;
        return failed.map_err(Fail::reported);
    }
    warn(damaged.iter().map(|d| format!("jobnet: {d}")));
    if report.jobs.is_empty() {
        failed?;
        return out(if a.all || !report.exists {
            "no jobs\n"
        } else {
            "no jobs (none live; `jobnet status --all` shows finished ones)\n"
        });
    }
    let mut text = jobs_table(&report.jobs);
    if job.is_some() {
        for s in &report.jobs {
            text.push_str(&addresses_text(s));
            text.push_str(&journal_text(s));
        }
    }
    out(&text)?;
    failed
}

fn job_json(s: &JobStatus, with_journal: bool) -> serde_json::Value {
    let mut v = serde_json::to_value(&s.row).expect("json");
    // The pid of the process changing the job: a job that is up or down has none, whatever
    // process last did (its pid may be another program's by now).
    if !s.row.state.in_progress() {
        v["pid"] = serde_json::Value::Null;
    }
    v["devices"] = serde_json::json!(s.devices);
    if let Some(a) = &s.addresses {
        v["addresses"] = serde_json::from_str(a).unwrap_or(serde_json::Value::Null);
    }
    if with_journal {
        v["journal"] = serde_json::to_value(&s.journal).expect("json");
    }
    v
}

fn jobs_table(jobs: &[JobStatus]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|s| {
            let r = &s.row;
            vec![
                r.job.to_string(),
                r.state.to_string(),
                r.vlan.map_or("-".into(), |v| v.to_string()),
                r.pkey.map_or("-".into(), |k| k.to_string()),
                hostlist::fold_short(&r.nodes, 8),
                rfc3339(r.updated),
                if s.devices.is_empty() {
                    "-".to_string()
                } else {
                    fold_names(&s.devices, 8)
                },
            ]
        })
        .collect();
    let mut text = table(
        &[
            "JOB", "STATE", "VLAN", "PKEY", "NODES", "UPDATED", "DEVICES",
        ],
        &rows,
    );
    for s in jobs.iter().filter(|s| !s.row.message.is_empty()) {
        text.push_str(&format!("  {}: {}\n", s.row.job, s.row.message));
    }
    text
}

/// The first `n` names and how many more.
fn fold_names(names: &[String], n: usize) -> String {
    if names.len() <= n {
        names.join(",")
    } else {
        format!("{},… ({} more)", names[..n].join(","), names.len() - n)
    }
}

/// The job's VMs, as its address files list them.
fn addresses_text(s: &JobStatus) -> String {
    let Some(v) = s
        .addresses
        .as_deref()
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
    else {
        return String::new();
    };
    let mut o = format!("  addresses in {}:\n", v["subnet"].as_str().unwrap_or("?"));
    for vm in v["vms"].as_array().into_iter().flatten() {
        o += &format!(
            "    {}  {}  {}  on {}\n",
            vm["name"].as_str().unwrap_or(""),
            vm["ip"].as_str().unwrap_or(""),
            vm["mac"].as_str().unwrap_or(""),
            vm["node"].as_str().unwrap_or("")
        );
    }
    o
}

fn journal_text(s: &JobStatus) -> String {
    let rows: Vec<Vec<String>> = s
        .journal
        .iter()
        .map(|j| {
            vec![
                format!("#{}", j.id),
                j.device.name.clone(),
                j.status.to_string(),
                format!(
                    "{}{}",
                    j.apply.join(" / "),
                    if j.message.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", j.message)
                    }
                ),
            ]
        })
        .collect();
    let t = table(&["OP", "DEVICE", "STATUS", "COMMANDS"], &rows);
    t.lines().map(|l| format!("    {l}\n")).collect()
}

fn abandoned(ctx: &Context, format: Format) -> Result<(), Fail> {
    let items = ctx.abandoned()?;
    if format == Format::Json {
        return out(&json(&serde_json::json!({ "abandoned": items })));
    }
    let mut text = String::new();
    if items.is_empty() {
        text.push_str("nothing abandoned\n");
    }
    for a in &items {
        text.push_str(&format!(
            "job {} {} ({}): undo by hand: {}\n    {}\n",
            a.job,
            a.device,
            a.address,
            a.undo.join(" / "),
            a.reason
        ));
    }
    out(&text)
}

pub fn prune(ctx: &Context, a: &PruneArgs) -> Result<(), Fail> {
    let age = std::time::Duration::from_secs(a.older_than_days.saturating_mul(86_400));
    let n = ctx.prune(age)?;
    out(&match a.format {
        Format::Json => {
            json(&serde_json::json!({"pruned": n, "older_than_days": a.older_than_days}))
        }
        Format::Text => format!(
            "{n} job(s) down for more than {} day(s) forgotten\n",
            a.older_than_days
        ),
    })
}
