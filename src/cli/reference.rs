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

pub fn man() -> Result<(), Fail> {
    let mut buf = Vec::new();
    let fail = |e: std::io::Error| Fail::new(1, format!("rendering the manual page: {e}"));
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(fail)?;
    // Every command's own options, so the one page documents each flag.
    let mut commands = Vec::new();
    walk(&Cli::command(), "jobnet", &mut commands);
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
