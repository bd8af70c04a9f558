//! What the command line prints: results on stdout (a closed pipe is not an error), warnings and
//! diagnostics on stderr, and failures with their exit code, as text or, when the command was
//! asked for JSON, as `{"error": {...}}` on stdout (the text still goes to stderr for logs).

use clap::ValueEnum;
use jobnet::base::diag::Diagnostic;
use jobnet::base::hint::{self, Hint, Hinted};
use std::io::Write;
use std::process::ExitCode;

/// `--format` of commands that print a report: text for people, JSON for programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document.
    Json,
}

/// A failure with its exit code (docs/cli.md) and the file diagnostics behind it.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
    pub diagnostics: Vec<Diagnostic>,
    /// Already part of the command's JSON output: not printed on stdout again.
    pub in_output: bool,
}

impl Fail {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Fail {
            code,
            message: message.into(),
            diagnostics: Vec::new(),
            in_output: false,
        }
    }

    /// The failure is in the command's JSON output already.
    pub fn reported(self) -> Self {
        Fail {
            in_output: true,
            ..self
        }
    }

    /// Prints the failure (diagnostics first) and gives its exit code.
    pub fn report(self, json_out: bool) -> ExitCode {
        // At most a hundred for a person; the JSON below keeps every one.
        warn(jobnet::base::diag::printed(&self.diagnostics));
        let _ = writeln!(std::io::stderr(), "jobnet: {}", self.message);
        if json_out && !self.in_output {
            let v = serde_json::json!({"error": {
                "code": self.code,
                "message": self.message,
                "diagnostics": self.diagnostics.iter().map(diagnostic_json).collect::<Vec<_>>(),
            }});
            let _ = out(&json(&v));
        }
        ExitCode::from(self.code)
    }
}

/// A diagnostic as JSON: where, how bad, what and what to do.
pub fn diagnostic_json(d: &Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "file": d.file,
        "line": d.loc.line,
        "column": d.loc.col,
        "severity": match d.severity {
            jobnet::base::diag::Severity::Error => "error",
            jobnet::base::diag::Severity::Warning => "warning",
        },
        "message": d.message,
        "help": d.help,
    })
}

/// Loads a topology file; a file that cannot be read gets `hint` (where the path came from).
pub fn fabric(
    ctx: &jobnet::Context,
    path: &std::path::Path,
    hint: &str,
) -> Result<jobnet::context::Fabric, Fail> {
    ctx.fabric(path).map_err(|e| {
        let unreadable = matches!(e, jobnet::Error::TopologyFile(_));
        let mut f = Fail::from(e);
        if unreadable {
            f.message = format!("{}; {hint}", f.message);
        }
        f
    })
}

/// Bad input (exit 2).
pub fn invalid(message: impl Into<String>) -> Fail {
    Fail::new(2, message)
}

/// A library error's hint in the command line's words: the flag (and the variable) that sets
/// what would fix it. The library's message says the fix without naming any.
fn flag_hint(h: Hint) -> Option<String> {
    Some(
        match h {
            Hint::VlanAuto => "--vlan auto",
            Hint::VlanDefault => "drop --vlan",
            Hint::PKeyAuto => "--pkey auto",
            Hint::PKeyNone => "--pkey none",
            Hint::PKeyDefault => "drop --pkey",
            Hint::StatePath => "--state / $JOBNET_STATE",
            Hint::Wait => "raise --wait",
            Hint::SessionsPerDevice => "raise --sessions-per-device",
            Hint::CredentialsPath => "--credentials / $JOBNET_CREDENTIALS",
            Hint::TrustOnFirstUse => "run once with --trust-on-first-use",
            Hint::DriversDir => "--drivers-dir / $JOBNET_DRIVERS_DIR",
            Hint::PartitionsConf => "--partitions-conf",
        }
        .to_string(),
    )
}

/// A library error as the command line says it: its message and the flags that fix it.
pub fn text(e: &(impl std::fmt::Display + Hinted)) -> String {
    hint::worded(&e.to_string(), &e.hints(), flag_hint)
}

impl From<jobnet::Error> for Fail {
    fn from(e: jobnet::Error) -> Self {
        Fail {
            code: e.exit_code(),
            message: text(&e),
            diagnostics: e.diagnostics().to_vec(),
            in_output: false,
        }
    }
}

impl From<jobnet::apply::ApplyError> for Fail {
    fn from(e: jobnet::apply::ApplyError) -> Self {
        jobnet::Error::from(e).into()
    }
}

/// A command line clap could not parse: its message (exit 2), as JSON too when the arguments ask
/// for JSON. `--help` and `--version` print as usual (exit 0).
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                2
            } else {
                0
            },
        );
    }
    let args: Vec<String> = std::env::args().collect();
    let wants_json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json");
    if wants_json {
        // The error and its details (e.g. which arguments are missing, a tip), not the usage.
        let text = e.render().to_string();
        let message = text
            .lines()
            .take_while(|l| !l.starts_with("Usage:"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let message = message.trim_start_matches("error: ");
        let _ = out(&json(
            &serde_json::json!({"error": {"code": 2, "message": message, "diagnostics": []}}),
        ));
    }
    let _ = e.print();
    ExitCode::from(2)
}

pub fn out(text: &str) -> Result<(), Fail> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        // A closed pipe (`jobnet plan ... | head`) is not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Fail::new(1, format!("writing to stdout: {e}"))),
    }
}

pub fn warn(lines: impl IntoIterator<Item = String>) {
    let mut err = std::io::stderr().lock();
    for l in lines {
        let _ = writeln!(err, "{l}");
    }
}

pub fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("json") + "\n"
}

/// Text columns as wide as their widest cell (long job ids and node lists do not shift the
/// others); the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut o = line(header.to_vec());
    for r in rows {
        o.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    o
}
