//! One site configuration for every command: the commands an administrator runs by hand use the
//! same state file, credentials, known hosts, driver directory, service user, programs and wait
//! as the hooks, from jobnet.yaml (`$JOBNET_CONFIG`, default /etc/jobnet/jobnet.yaml); a flag or
//! its environment variable overrides the file. `jobnet config show` prints each effective value
//! and where it came from. An error in the part of the file only the hooks use (policy, failure,
//! addresses, log, pbs_home, jobs_dir) is a warning for these commands.

use super::output::{json, out, warn, Fail, Format};
use super::Global;
use clap::{Args, Subcommand};
use jobnet::jobs::site::{Site, SiteError, DEFAULT_CONFIG};
use jobnet::Options;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Cmd {
    /// Print the effective settings and where each came from (flag, environment, jobnet.yaml,
    /// default).
    Show(ShowArgs),
}

#[derive(Args)]
pub struct ShowArgs {
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl Cmd {
    pub fn json(&self) -> bool {
        match self {
            Cmd::Show(a) => a.format == Format::Json,
        }
    }
}

/// One effective setting: its name, value and where it came from.
pub struct Setting {
    pub name: &'static str,
    pub value: String,
    pub source: String,
}

/// The effective options, where each came from, and the file's warnings.
pub struct Resolved {
    pub options: Options,
    pub settings: Vec<Setting>,
    pub programs: std::collections::BTreeMap<String, PathBuf>,
    pub warnings: Vec<String>,
}

/// The site configuration's path: `$JOBNET_CONFIG` or the default.
fn config_path() -> PathBuf {
    std::env::var_os("JOBNET_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_CONFIG.into())
}

/// Flags (or their environment variables) first, then jobnet.yaml, then the defaults.
pub fn resolve(g: &Global) -> Result<Resolved, Fail> {
    let path = config_path();
    let site = if path.exists() {
        Some(Site::load_common(&path).map_err(|e| match e {
            SiteError::Invalid { diagnostics, .. } => {
                let mut f = super::output::invalid(format!(
                    "{} is invalid (the part every command uses)",
                    path.display()
                ));
                f.diagnostics = diagnostics;
                f
            }
            other => Fail::new(1, other.to_string()),
        })?)
    } else {
        None
    };
    let (site, warnings) = match site {
        Some((s, w)) => (Some(s), w.iter().map(|d| d.to_string()).collect()),
        None => (None, Vec::new()),
    };
    let mut o = g.options();
    let file_source = |key: &str| -> Option<String> {
        let s = site.as_ref()?;
        let loc = s.locs.get(key)?;
        Some(format!("{}:{loc}", s.file))
    };
    // Where a setting came from: its flag (or variable), else the file, else the default.
    let source = |key: &str| {
        g.given
            .get(key)
            .cloned()
            .or_else(|| file_source(key))
            .unwrap_or_else(|| "default".into())
    };
    // The file's values, for the settings no flag gave.
    if let Some(s) = &site {
        let from_file = |key: &str| !g.given.contains_key(key) && s.locs.contains_key(key);
        if from_file("state") {
            o.state = s.state.clone();
        }
        if from_file("credentials") {
            o.credentials = s.credentials.clone();
        }
        if from_file("known_hosts") {
            o.known_hosts = s.known_hosts.clone();
        }
        if from_file("drivers_dir") {
            o.drivers_dir = s.drivers_dir.clone();
        }
        if from_file("wait") {
            o.wait = s.wait;
        }
        if from_file("daemon") {
            o.daemon = s.daemon.clone();
        }
    }
    let mut settings: Vec<Setting> = [
        ("state", o.state.display().to_string()),
        ("credentials", o.credentials.display().to_string()),
        ("known_hosts", o.known_hosts.display().to_string()),
        (
            "drivers_dir",
            o.drivers_dir
                .as_ref()
                .map_or("(shipped profiles only)".into(), |d| {
                    d.display().to_string()
                }),
        ),
        ("wait", format!("{} s", o.wait.as_secs())),
        (
            "daemon",
            o.daemon
                .as_ref()
                .map_or("off (devices reached directly)".into(), |d| {
                    d.display().to_string()
                }),
        ),
    ]
    .into_iter()
    .map(|(name, value)| Setting {
        name,
        value,
        source: source(name),
    })
    .collect();
    let service = site.as_ref().and_then(|s| s.service_user.clone());
    if let Some(name) = &service {
        o.service_user = jobnet::base::users::by_name(name);
    }
    settings.push(Setting {
        name: "service_user",
        value: service.clone().unwrap_or_else(|| "(none)".into()),
        source: file_source("service_user").unwrap_or_else(|| "default".into()),
    });
    let programs = site
        .as_ref()
        .map(|s| s.programs.clone())
        .unwrap_or_default();
    settings.push(Setting {
        name: "programs",
        value: if programs.is_empty() {
            "(none: /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin, /bin)".into()
        } else {
            programs
                .iter()
                .map(|(k, v)| format!("{k}={}", v.display()))
                .collect::<Vec<_>>()
                .join(", ")
        },
        source: file_source("programs").unwrap_or_else(|| "default".into()),
    });
    settings.push(Setting {
        name: "config",
        value: path.display().to_string(),
        source: if std::env::var_os("JOBNET_CONFIG").is_some() {
            "$JOBNET_CONFIG".into()
        } else if site.is_some() {
            "default".into()
        } else {
            "default (the file does not exist)".into()
        },
    });
    jobnet::base::deadline::set_wait(o.wait);
    Ok(Resolved {
        options: o,
        settings,
        programs,
        warnings,
    })
}

pub fn run(cmd: Cmd, g: &Global) -> Result<(), Fail> {
    let Cmd::Show(a) = cmd;
    let r = resolve(g)?;
    warn(r.warnings.iter().map(|w| format!("jobnet: {w}")));
    match a.format {
        Format::Json => {
            let v: serde_json::Map<String, serde_json::Value> = r
                .settings
                .iter()
                .map(|s| {
                    (
                        s.name.to_string(),
                        serde_json::json!({"value": s.value, "source": s.source}),
                    )
                })
                .collect();
            out(&json(&v))
        }
        Format::Text => {
            let width = r.settings.iter().map(|s| s.name.len()).max().unwrap_or(0);
            let text: String = r
                .settings
                .iter()
                .map(|s| format!("{:width$}  {}  ({})\n", s.name, s.value, s.source))
                .collect();
            out(&text)
        }
    }
}
