//! `jobnet ib check`: a partitions.conf against OpenSM's grammar and its traps, and jobnet's
//! block in it; the same verdict `plan`, `up` and `down` use.

use super::output::{invalid, json, out, warn, Fail, Format};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Cmd {
    /// Check a partitions.conf against OpenSM's grammar and its traps, and jobnet's block in it;
    /// exit 0 when OpenSM would read it as meant and jobnet can change it (warnings on stderr),
    /// 2 when not.
    Check {
        /// The partitions.conf to check.
        file: PathBuf,
        /// Output: text or json.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

impl Cmd {
    pub fn json(&self) -> bool {
        match self {
            Cmd::Check { format, .. } => *format == Format::Json,
        }
    }
}

pub fn run(cmd: Cmd) -> Result<(), Fail> {
    match cmd {
        Cmd::Check { file, format } => check(&file, format),
    }
}

/// Reads a file to check: bounded, and as UTF-8 (with the position of the first byte that is
/// not).
pub fn read_checked(file: &Path, limit: u64) -> Result<String, Fail> {
    let bytes = jobnet::base::limits::read_bytes(file, limit)
        .map_err(|e| Fail::new(e.exit_code(), e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = at - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        invalid(format!(
            "{}:{line}:{col}: error: byte {:#04x} is not UTF-8 text; jobnet only edits UTF-8 files (convert it, e.g. `iconv -f KOI8-R -t UTF-8`)",
            file.display(),
            e.as_bytes()[at]
        ))
    })
}

fn check(file: &Path, format: Format) -> Result<(), Fail> {
    let text = read_checked(file, jobnet::base::limits::PARTITIONS_CONF)?;
    let verdict = jobnet::ib::partitions::check_file(&text, &file.display().to_string());
    let checked = verdict.checked;
    let n = checked.diagnostics.error_count();
    let diags = checked.diagnostics.sorted();
    if n > 0 {
        let mut f = invalid(if verdict.opensm_errors > 0 {
            format!(
                "{} would be rejected or misread by OpenSM: {n} error(s)",
                file.display()
            )
        } else {
            format!(
                "{}: jobnet will not add or remove a job's partition in it: {n} error(s)",
                file.display()
            )
        });
        f.diagnostics = diags;
        return Err(f);
    }
    warn(diags.iter().map(|d| d.to_string()));
    if format == Format::Json {
        let parts: Vec<_> = checked
            .statements
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "pkey": s.pkey.map(|k| format!("{k:#06x}")),
                    "line": s.loc.line,
                    "members": s.members.len(),
                    "flags": s.flags.iter().map(|(f, v)| match v {
                        Some(v) => format!("{f}={v}"),
                        None => f.clone(),
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        let warnings: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        return out(&json(&serde_json::json!({
            "file": file.display().to_string(),
            "valid": true,
            "partitions": parts,
            "warnings": warnings,
        })));
    }
    let mut text = format!(
        "{}: valid ({} partition(s); {} warning(s))\n",
        file.display(),
        checked.statements.len(),
        diags.len()
    );
    // Partition names may be long (`jobnet_` + a job id): the column is as wide as the longest.
    let w = checked
        .statements
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(20);
    for s in &checked.statements {
        text.push_str(&format!(
            "  {:<w$} {:<8} {:>5} member(s)  line {}\n",
            s.name,
            s.pkey.map_or("-".to_string(), |k| format!("{k:#06x}")),
            s.members.len(),
            s.loc.line
        ));
    }
    out(&text)
}
