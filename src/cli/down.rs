//! `jobnet down` and `jobnet recover`: undo what the journal says was applied, for one job or
//! for every job whose jobnet process died mid-change.

use super::output::{invalid, json, out, warn, Fail, Format};
use super::{interrupts, progress};
use clap::Args;
use jobnet::apply::{DownReport, DownResult};
use jobnet::base::types::JobId;
use jobnet::Context;
use std::path::PathBuf;

#[derive(Args)]
pub struct DownArgs {
    /// Job id, as given to `up`.
    #[arg(long)]
    job: String,
    /// Reach the job's devices where this topology says (same device names): for a switch that
    /// was re-addressed or replaced since the job came up.
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Release the job even if some of its operations cannot be undone; they are recorded as
    /// abandoned (`jobnet status --abandoned`) for an administrator to clean up.
    #[arg(long)]
    force: bool,
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args)]
pub struct RecoverArgs {
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn down(ctx: &Context, a: &DownArgs) -> Result<(), Fail> {
    let job = JobId::parse(&a.job).map_err(|e| invalid(format!("--job: {e}")))?;
    let fabric = match &a.topology {
        Some(path) => Some(super::output::fabric(
            ctx,
            path,
            "check the path given to --topology",
        )?),
        None => None,
    };
    interrupts()?;
    jobnet::base::deadline::finish_work_after_signals();
    missing_state(ctx)?;
    let bar = progress::for_terminal(&format!("down {job}"));
    let r = ctx.down(&job, fabric.as_ref(), a.force, bar.as_ref());
    drop(bar);
    let r = r?;
    warn(
        r.abandoned.iter().map(|a| {
            format!("jobnet: warning: abandoned (still configured, undo it by hand): {a}")
        }),
    );
    out(&match a.format {
        Format::Json => json(&r),
        Format::Text => down_text(&r),
    })
}

fn down_text(r: &DownReport) -> String {
    match r.result {
        DownResult::Down => format!(
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
        DownResult::AlreadyDown => format!("job {} is already down; nothing to do\n", r.job),
        DownResult::NotFound => format!("job {} is not known; nothing to do\n", r.job),
    }
}

pub fn recover(ctx: &Context, a: &RecoverArgs) -> Result<(), Fail> {
    interrupts()?;
    jobnet::base::deadline::finish_work_after_signals();
    missing_state(ctx)?;
    let bar = progress::for_terminal("recover");
    let results = ctx.recover(bar.as_ref());
    drop(bar);
    let mut failed: Option<Fail> = None;
    let mut lines = Vec::new();
    let mut reports = Vec::new();
    for r in results? {
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
                let message = super::output::text(&e);
                lines.push(format!("{message}\n"));
                reports.push(serde_json::json!({
                    "job": e.job(),
                    "error": {"code": e.exit_code(), "message": message},
                }));
                failed = Some(e.into());
            }
        }
    }
    if lines.is_empty() {
        lines.push("nothing to recover\n".into());
    }
    out(&match a.format {
        Format::Json => json(&reports),
        Format::Text => lines.concat(),
    })?;
    // The JSON report above already holds the errors: stdout stays one JSON document.
    failed.map_or(Ok(()), |f| Err(f.reported()))
}

/// A state file that does not exist has no jobs: said on stderr, so a mistyped `--state` in an
/// epilog does not pass unnoticed (the file is not created). A state path named explicitly, or a
/// state file that was deleted, is an error (exit 1): an epilog must not pass over a leak.
fn missing_state(ctx: &Context) -> Result<(), Fail> {
    if let Some(e) = ctx.missing_state_error() {
        return Err(e.into());
    }
    if !ctx.state_exists() {
        warn([format!(
            "jobnet: warning: state file {} does not exist: no job has run with it (check --state / $JOBNET_STATE)",
            ctx.options().state.display()
        )]);
    }
    Ok(())
}
