//! `jobnet completions SHELL` and `jobnet man`: shell completions and the manual page, generated
//! from the same command-line definition the binary parses (clap_complete, clap_mangen), so they
//! never drift from the flags. Install them with, e.g.,
//! `jobnet completions bash > /usr/share/bash-completion/completions/jobnet` and
//! `jobnet man > /usr/share/man/man1/jobnet.1`.

use super::output::{out, Fail};
use super::Cli;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn completions(a: &CompletionsArgs) -> Result<(), Fail> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "jobnet", &mut buf);
    out(&String::from_utf8_lossy(&buf))
}

/// The environment variables the options read (hooks set them instead of flags).
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "JOBNET_TOPOLOGY",
        "the topology file of plan, up and topology import-ib (--topology)",
    ),
    ("JOBNET_STATE", "the state file (--state)"),
    ("JOBNET_CREDENTIALS", "the device logins (--credentials)"),
    (
        "JOBNET_KNOWN_HOSTS",
        "the devices' SSH host keys (--known-hosts)",
    ),
    (
        "JOBNET_DRIVERS_DIR",
        "the site's driver profiles (--drivers-dir)",
    ),
    (
        "JOBNET_DAEMON",
        "jobnetd's socket (--daemon), /run/jobnet/jobnetd.sock when not set; off reaches devices directly",
    ),
    (
        "JOBNET_CONFIG",
        "the site's configuration, /etc/jobnet/jobnet.yaml when not set: the settings of hook and job (their --config); the other commands read the settings they share with them from it too, such as the programs: table",
    ),
    (
        "JOBNET_NODE_CONFIG",
        "the node's configuration of node attach, detach and show (--config), /etc/jobnet/node.yaml when not set",
    ),
];

/// Exit codes, as in docs/cli.md.
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "success (warnings, if any, on stderr)"),
    ("1", "environment or I/O problem not caused by the input"),
    (
        "2",
        "invalid input: the message names the value, where it came from and what to do",
    ),
    ("3", "pool exhausted: no free VLAN or PKey left"),
    ("4", "up failed and every change was undone"),
    (
        "5",
        "needs attention: undoing failed too; the job's journal is kept for down",
    ),
];

pub fn man() -> Result<(), Fail> {
    let mut buf = Vec::new();
    let fail = |e: std::io::Error| Fail::new(1, format!("rendering the manual page: {e}"));
    let page = clap_mangen::Man::new(Cli::command());
    page.render_title(&mut buf).map_err(fail)?;
    page.render_name_section(&mut buf).map_err(fail)?;
    page.render_synopsis_section(&mut buf).map_err(fail)?;
    page.render_description_section(&mut buf).map_err(fail)?;
    page.render_options_section(&mut buf).map_err(fail)?;
    let mut commands = Vec::new();
    walk(&Cli::command(), "jobnet", &mut commands);
    // The commands are sections of this page, not pages of their own.
    let mut text = String::from(".SH COMMANDS\n");
    for (name, cmd) in &commands {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        text += &format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_escape(name),
            roff_escape(&about)
        );
    }
    text += ".SH ENVIRONMENT\n";
    for (var, what) in ENVIRONMENT {
        text += &format!(".TP\n\\fB{}\\fR\n{}\n", roff_escape(var), roff_escape(what));
    }
    text += ".SH \"EXIT STATUS\"\n";
    for (code, what) in EXIT_STATUS {
        text += &format!(".TP\n{code}\n{}\n", roff_escape(what));
    }
    buf.extend_from_slice(text.as_bytes());
    // Every command's own options, so the one page documents each flag.
    for (name, cmd) in commands {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        buf.extend_from_slice(
            format!(
                ".SH \"{}\"\n{}\n",
                roff_escape(&name.to_uppercase()),
                roff_escape(&about)
            )
            .as_bytes(),
        );
        clap_mangen::Man::new(cmd)
            .render_options_section(&mut buf)
            .map_err(fail)?;
    }
    page.render_extra_section(&mut buf).map_err(fail)?;
    page.render_version_section(&mut buf).map_err(fail)?;
    out(&String::from_utf8_lossy(&buf))
}

/// The commands that run (leaves of the tree), with their full names.
fn walk(cmd: &clap::Command, name: &str, into: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let full = format!("{name} {}", sub.get_name());
        if sub.has_subcommands() {
            walk(sub, &full, into);
        } else {
            into.push((full, sub.clone()));
        }
    }
}

fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('-', "\\-")
        .replace('\n', " ")
}
