//! Messages and help text as people read them (issue 13): each test runs the binaries and checks
//! one wording that was wrong, incomplete or buried.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{jobnet, jobnet_in, run};

fn scratch(name: &str) -> PathBuf {
    common::scratch("messages", name)
}

/// An InfiniBand-only topology `t.yaml` in `dir` whose OpenSM "reload" is `reload` (no switch,
/// no root needed), and its partitions.conf.
fn ib_topology(dir: &Path, reload: &str) {
    let conf = dir.join("partitions.conf");
    std::fs::write(&conf, "Default=0x7fff, ipoib : ALL=full;\n").unwrap();
    std::fs::write(
        dir.join("t.yaml"),
        format!(
            "name: ib-only\ninfiniband:\n  pkey_pool: \"0x10-0x12\"\n  partitions_conf: {}\n  reload: {{command: \"{reload}\"}}\n  reload_window_ms: 10\nnodes:\n  - {{name: \"n[1-3]\", ib_guids: [\"0x100001\", \"0x100004\", \"0x100007\"]}}\n",
            conf.display()
        ),
    )
    .unwrap();
}

// ---- help and the manual page ----

#[test]
fn help_ends_with_a_path_an_installation_has() {
    let o = jobnet(&["--help"]);
    assert_eq!(o.code, 0);
    let last = o.stdout.trim_end().lines().last().unwrap_or_default();
    assert!(!last.contains("topology/two-tier.yaml"), "{last}");
    assert!(last.contains("/etc/jobnet/topology.yaml"), "{last}");
}

#[test]
fn help_of_hook_job_and_node_lists_no_option_they_refuse() {
    for args in [
        &["node", "--help"][..],
        &["node", "attach", "--help"],
        &["hook", "--help"],
        &["hook", "slurm-prolog", "--help"],
        &["job", "up", "--help"],
    ] {
        let o = jobnet(args);
        assert_eq!(o.code, 0, "{args:?}");
        for refused in ["Global options", "--state", "--credentials", "--wait"] {
            assert!(
                !o.stdout.contains(refused),
                "{args:?}: {refused}\n{}",
                o.stdout
            );
        }
    }
    // Still refused when given, and still listed where they apply.
    let o = jobnet(&["node", "show", "--job", "1", "--state", "/tmp/x.db"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("--state does not apply to `jobnet node`"),
        "{}",
        o.stderr
    );
    assert!(jobnet(&["up", "--help"]).stdout.contains("--state"));
}

/// The commands below `args` (their `Commands:` block), without `help`.
fn subcommands(args: &[&str]) -> Vec<String> {
    let help = jobnet(&[args, &["--help"]].concat()).stdout;
    help.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every `[env: NAME=]` of every command's help.
fn variables(args: &mut Vec<String>, into: &mut std::collections::BTreeSet<String>) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let help = jobnet(&[&refs[..], &["--help"]].concat()).stdout;
    for part in help.split("[env: ").skip(1) {
        into.insert(part.split('=').next().unwrap_or_default().to_string());
    }
    for sub in subcommands(&refs) {
        args.push(sub);
        variables(args, into);
        args.pop();
    }
}

#[test]
fn the_manual_page_names_every_variable_an_option_reads() {
    let mut found = std::collections::BTreeSet::new();
    variables(&mut Vec::new(), &mut found);
    for v in ["JOBNET_CONFIG", "JOBNET_NODE_CONFIG", "JOBNET_TOPOLOGY"] {
        assert!(found.contains(v), "{v} not found in any --help: {found:?}");
    }
    let man = jobnet(&["man"]).stdout;
    let environment: String = man
        .split(".SH ENVIRONMENT\n")
        .nth(1)
        .and_then(|rest| rest.split("\n.SH ").next())
        .expect("an ENVIRONMENT section")
        .to_string();
    for v in &found {
        assert!(
            environment.contains(&format!("\\fB{}\\fR", v.replace('-', "\\-"))),
            "ENVIRONMENT lacks {v}:\n{environment}"
        );
    }
}

// ---- status ----

#[test]
fn status_shows_no_pid_once_nobody_works_on_a_job_and_the_topology_absolute() {
    let dir = scratch("status");
    ib_topology(&dir, "true");
    let st = dir.join("state.db");
    let st = st.to_str().unwrap();
    // `up` run with a topology path relative to its working directory.
    let o = jobnet_in(
        Some(&dir),
        &[
            "--state",
            st,
            "up",
            "--topology",
            "t.yaml",
            "--job",
            "1",
            "--nodes",
            "n1",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let elsewhere = scratch("status-elsewhere");
    let status = |args: &[&str]| -> serde_json::Value {
        let o = jobnet_in(
            Some(&elsewhere),
            &[&["--state", st, "status", "--format", "json"], args].concat(),
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        serde_json::from_str(&o.stdout).unwrap()
    };
    let v = status(&[]);
    let job = &v["jobs"][0];
    assert_eq!(job["state"], "up");
    assert_eq!(
        job["pid"],
        serde_json::Value::Null,
        "the `up` has ended: {job}"
    );
    assert_eq!(
        job["topology"],
        dir.join("t.yaml").to_str().unwrap(),
        "as `up` found it, from anywhere"
    );
    assert_eq!(jobnet(&["--state", st, "down", "--job", "1"]).code, 0);
    let v = status(&["--all"]);
    assert_eq!(v["jobs"][0]["state"], "down");
    assert_eq!(v["jobs"][0]["pid"], serde_json::Value::Null);
}

#[test]
fn status_shows_no_pid_of_a_process_that_died_mid_change() {
    let dir = scratch("status-dead-owner");
    ib_topology(&dir, "true");
    let st = dir.join("state.db");
    let st = st.to_str().unwrap();
    let o = jobnet(&[
        "--state",
        st,
        "up",
        "--topology",
        dir.join("t.yaml").to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "n1",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // As if the `up` had died while applying: the state says so, the pid is of no live process.
    let conn = rusqlite::Connection::open(st).unwrap();
    conn.execute(
        "UPDATE jobs SET state='applying', pid=?1, pid_start=1 WHERE job='1'",
        [i64::from(i32::MAX)],
    )
    .unwrap();
    drop(conn);
    let o = jobnet(&["--state", st, "status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["jobs"][0]["state"], "applying");
    assert_eq!(v["jobs"][0]["pid"], serde_json::Value::Null, "{v}");
}

// ---- input messages ----

#[test]
fn an_empty_node_list_is_called_empty() {
    let o = jobnet(&[
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1",
        "--nodes",
        "",
    ]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("--nodes: hostlist ``: the list is empty"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("two commas"), "{}", o.stderr);
}

#[test]
fn a_letter_outside_ascii_is_refused_as_such() {
    let dir = scratch("ascii");
    let t = dir.join("t.yaml");
    std::fs::write(
        &t,
        "name: t\nethernet:\n  vlan_pool: \"100-199\"\nswitches:\n  - {name: leafл1, driver: arista-eos, address: 192.0.2.1}\nnodes:\n  - {name: n1, port: \"leafл1:Ethernet1\"}\n",
    )
    .unwrap();
    let o = jobnet(&["topology", "validate", t.to_str().unwrap()]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("`leafл1` contains `л`; allowed are ASCII letters, digits and `-_.`"),
        "{}",
        o.stderr
    );
}

#[test]
fn every_duplicate_key_of_a_configuration_is_reported() {
    let dir = scratch("duplicates");
    let config = dir.join("node.yaml");
    std::fs::write(
        &config,
        "jobs_dir: /var/lib/jobnet/jobs\njobs_dir: /srv/jobs\nstate_dir: /var/lib/jobnet/node\nstate_dir: /srv/node\n",
    )
    .unwrap();
    let o = jobnet(&[
        "node",
        "show",
        "--job",
        "1",
        "--node",
        "n1",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let file = config.display();
    for (line, key) in [(2, "jobs_dir"), (4, "state_dir")] {
        assert!(
            o.stderr.contains(&format!(
                "{file}:{line}:1: error: duplicate key `{key}` (first at line {})",
                line - 1
            )),
            "{}",
            o.stderr
        );
    }
}

#[test]
fn every_duplicate_key_of_a_topology_is_reported() {
    let dir = scratch("duplicates-topology");
    let t = dir.join("t.yaml");
    std::fs::write(
        &t,
        "name: t\nname: u\nethernet:\n  vlan_pool: \"100-199\"\n  vlan_pool: \"200-299\"\nnodes: []\n",
    )
    .unwrap();
    let o = jobnet(&["topology", "validate", t.to_str().unwrap()]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains(":2:1: error: duplicate key `name`"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(":5:3: error: duplicate key `vlan_pool`"),
        "{}",
        o.stderr
    );
}

#[test]
fn fifty_thousand_errors_print_a_hundred_lines_and_a_count() {
    let dir = scratch("many-errors");
    let mut text = String::from("name: t\nethernet:\n  vlan_pool: \"100-199\"\nswitches:\n  - {name: s1, driver: arista-eos, address: 192.0.2.1}\nnodes:\n");
    for i in 0..50_000 {
        text.push_str(&format!(
            "  - {{name: n{i}, port: \"nosuch:Ethernet{i}\"}}\n"
        ));
    }
    let t = dir.join("many.yaml");
    std::fs::write(&t, text).unwrap();
    let o = jobnet(&["topology", "validate", t.to_str().unwrap()]);
    assert_eq!(o.code, 2);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        102,
        "{}",
        &o.stderr[..o.stderr.len().min(2000)]
    );
    assert!(
        lines[99].contains(":106:12: error: node n99 refers to unknown switch"),
        "{}",
        lines[99]
    );
    assert_eq!(lines[100], "... and 49900 more error(s)");
    assert!(
        lines[101].ends_with("is invalid: 50000 error(s)"),
        "{}",
        lines[101]
    );
    // Programs still get every one.
    let o = jobnet(&[
        "topology",
        "validate",
        t.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["error"]["diagnostics"].as_array().unwrap().len(), 50_000);
}

// ---- what commands that ran something say ----

#[test]
fn a_program_that_failed_silently_says_no_output() {
    let dir = scratch("silent-reload");
    ib_topology(&dir, "false");
    let st = dir.join("state.db");
    let o = jobnet(&[
        "--state",
        st.to_str().unwrap(),
        "up",
        "--topology",
        dir.join("t.yaml").to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "n1",
    ]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("`false` failed (exit status: 1): (no output)"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("): ;"), "{}", o.stderr);
}

#[test]
fn a_failed_scontrol_that_said_nothing_says_no_output() {
    let dir = scratch("silent-scontrol");
    ib_topology(&dir, "true");
    std::fs::write(
        dir.join("jobnet.yaml"),
        format!(
            "topology: {d}/t.yaml\nstate: {d}/state.db\nlog: {d}/hooks.log\npolicy:\n  - {{partitions: [\"*\"], requests: allow}}\nfailure: {{hold_after: 2}}\nprograms: {{scontrol: /bin/false}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    // A request that cannot be met: the job is held at once, and scontrol fails without a word.
    let o = run({
        let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet"));
        c.args(["hook", "slurm-prolog"])
            .env_clear()
            .env("JOBNET_CONFIG", dir.join("jobnet.yaml"))
            .envs([
                ("SLURM_JOB_ID", "20"),
                ("SLURM_JOB_NODELIST", "n1"),
                ("SLURM_JOB_PARTITION", "batch"),
                ("SLURM_JOB_USER", "alice"),
                ("SLURM_JOB_COMMENT", "jobnet:vlan=5000"),
                ("SLURM_SCRIPT_CONTEXT", "prolog_slurmctld"),
            ]);
        c
    });
    assert_eq!(o.code, 1, "{}", o.stderr);
    let log = std::fs::read_to_string(dir.join("hooks.log")).unwrap_or_default();
    assert!(
        log.contains("scontrol update failed (exit status: 1): (no output)"),
        "{log}"
    );
    assert!(!log.contains("failed: \n"), "{log}");
}

#[test]
fn down_names_only_the_devices_it_undid_something_on() {
    let dir = scratch("undone-on");
    ib_topology(&dir, "true");
    let st = dir.join("state.db");
    let st = st.to_str().unwrap();
    let t = dir.join("t.yaml");
    let o = jobnet(&[
        "--state",
        st,
        "up",
        "--topology",
        t.to_str().unwrap(),
        "--job",
        "1",
        "--nodes",
        "n1",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // An earlier run already undid what it had done on leaf1 (its journal rows say `undone`).
    let conn = rusqlite::Connection::open(st).unwrap();
    let n = conn
        .execute(
            "INSERT INTO journal(job, device, driver, address, credentials, legacy, seq, op, apply, undo, status, message, ts)
             SELECT job, 'leaf1', driver, address, credentials, legacy, seq + 100, op, apply, undo, 'undone', message, ts
             FROM journal WHERE job = '1'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let o = jobnet(&["--state", st, "down", "--job", "1"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "job 1 down: 1 operation(s) undone on opensm\n");
}

// ---- the switch simulator of the test kit ----

#[test]
fn the_switch_simulator_prints_its_usage_when_asked() {
    for flag in ["--help", "-h"] {
        let o = run({
            let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet-switch-sim"));
            c.arg(flag);
            c
        });
        assert_eq!(o.code, 0, "{flag}: {}", o.stderr);
        assert!(
            o.stdout
                .contains("usage: jobnet-switch-sim --topology FILE --out DIR"),
            "{}",
            o.stdout
        );
        assert!(o.stderr.is_empty(), "{}", o.stderr);
    }
    let o = run({
        let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet-switch-sim"));
        c.arg("--no-such-flag");
        c
    });
    assert_eq!(o.code, 2);
    assert!(o.stderr.starts_with("usage: "), "{}", o.stderr);
}
