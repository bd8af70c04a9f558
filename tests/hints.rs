//! Library errors say what to do in their own words and name no flag of the command line; they
//! carry the setting that would fix them as a hint, which each caller words its own way: the
//! command line with its flag (`(hint: --vlan auto)`), the hooks with the job's network request
//! and jobnet.yaml (issue 15: "from --nodes" is CLI text, not library text). Three checks:
//! every string literal of the library, the errors as the library renders them, and the
//! command line's messages, which still name the flag.

mod common;

use jobnet::apply::{ApplyError, Failure};
use jobnet::base::fsutil::LockError;
use jobnet::base::hint::{Hint, Hinted};
use jobnet::base::types::{JobId, PKey, VlanId};
use jobnet::drivers::transport::credentials::CredentialsError;
use jobnet::drivers::transport::DeviceError;
use jobnet::plan::{Choice, JobRequest, Origin, PKeyChoice, PlanError};
use jobnet::state::StateError;
use jobnet::{Context, Options};
use std::path::{Path, PathBuf};

// ---- every string literal of the library ----

/// The string literals of Rust source `text` with the line each starts on; comments skipped.
fn literals(text: &str) -> Vec<(usize, String)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let line = |i: usize| c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            i = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let (mut j, mut depth) = (i + 2, 1);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            i = j;
        } else if !prev_ident && c[i] == 'r' && {
            let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
            c.get(i + 1 + hashes) == Some(&'"')
        } {
            let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
            let start = i + 2 + hashes;
            let mut j = start;
            while j < c.len() && !(c[j] == '"' && c[j + 1..].iter().take(hashes).all(|&h| h == '#'))
            {
                j += 1;
            }
            out.push((line(i), c[start..j.min(c.len())].iter().collect()));
            i = j + 1 + hashes;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            out.push((line(i), c[i + 1..j.min(c.len())].iter().collect()));
            i = j + 1;
        } else if c[i] == '\'' {
            // A char literal ('"', '\''), or a lifetime left as is.
            let end = if c.get(i + 1) == Some(&'\\') {
                (i + 2..c.len()).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            i = end.map_or(i + 1, |e| e + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Jobnet's commands, which a message may tell an administrator to run (`jobnet down --job 7`,
/// `down --force`), and other programs' command lines jobnet prints or runs (`qm set 101
/// --net0 ...`): not a flag of the caller's.
const COMMANDS: &[&str] = &[
    "jobnet", "down", "up", "status", "plan", "recover", "node", "topology", "qm",
];

/// The flags (`--word`) a literal names as advice: not an argument jobnet passes to a program
/// (the whole literal is the flag) and not part of a command line (`jobnet down --job 7`).
fn advice_flags(s: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for (p, _) in s.match_indices("--") {
        let rest = &s[p + 2..];
        let word: String = rest
            .chars()
            .take_while(|ch| ch.is_ascii_lowercase() || *ch == '-')
            .collect();
        let before = s[..p].chars().last();
        if !word.starts_with(|ch: char| ch.is_ascii_lowercase())
            || before.is_some_and(|b| b.is_alphanumeric() || b == '-')
        {
            continue;
        }
        // An argument jobnet passes to a program: the whole literal (`--if-exists`, `--db={d}`).
        if p == 0 && !s.contains(char::is_whitespace) {
            continue;
        }
        // A command line starts at the literal's start, a backtick, a parenthesis or after a
        // clause (`# Generated: jobnet topology generate ...`), with the command's name.
        let start = s[..p]
            .rfind(['`', '(', ')', ';', ',', ':'])
            .map_or(0, |i| i + 1);
        let first = s[start..p].split_whitespace().next();
        if !first.is_some_and(|w| COMMANDS.contains(&w)) {
            flags.push(format!("--{word}"));
        }
    }
    flags
}

/// Flags in files that another change is editing now, each to be worded by its caller too.
const KNOWN: &[(&str, &str)] = &[];

fn library_sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let rel = p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
        // The command line words its own flags; the test kit is never shipped.
        if [
            "src/cli",
            "src/bin",
            "src/main.rs",
            "src/testkit",
            "crates/jobnet-node/src/cli.rs",
            "crates/jobnet-node/src/main.rs",
        ]
        .iter()
        .any(|x| rel == Path::new(x))
        {
            continue;
        }
        if p.is_dir() {
            library_sources(&p, into);
        } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
            into.push(p);
        }
    }
}

#[test]
fn no_library_text_names_a_flag_of_the_command_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    library_sources(&root.join("src"), &mut files);
    // The workspace's library crates (docs/architecture.md).
    for e in std::fs::read_dir(root.join("crates")).unwrap() {
        library_sources(&e.unwrap().path().join("src"), &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // A file's test module is not the library's text.
        let code = text
            .find("#[cfg(test)]\nmod ")
            .map_or(text.as_str(), |i| &text[..i]);
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        for (line, s) in literals(code) {
            for flag in advice_flags(&s) {
                if !KNOWN.contains(&(rel.as_str(), flag.as_str())) {
                    found.push(format!("{rel}:{line}: {flag} in {s:?}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "library text names command-line flags; say the fix in the library's words and give \
         the error a jobnet::base::hint::Hint that the command line words (src/cli/output.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_advice_and_leaves_commands_alone() {
    let code = "fn f() { let c = '\"'; e(\"choose another VLAN or use --vlan auto\"); \
                e(\"gave up (--wait / wait:)\"); e(r#\"run `jobnet down --job 7` first\"#); \
                e(\"down --force: 2 abandoned\"); a(\"--if-exists\"); \
                q(\"qm set 101 --net0 virtio\"); p(\"<--- More --->\"); /* \"--in-comment\" */ \
                e(\"--gateway: not verified\"); e(\"slots busy (jobnet holds them); raise --wait\"); \
                w(\"# Generated: jobnet topology generate fat-tree --nodes 64\"); }";
    let flags: Vec<String> = literals(code)
        .iter()
        .flat_map(|(_, s)| advice_flags(s))
        .collect();
    assert_eq!(flags, ["--vlan", "--wait", "--gateway", "--wait"]);
}

// ---- the errors as the library renders them ----

/// Fails when `text` names a flag or a variable the command line reads.
#[track_caller]
fn neutral(text: &str) {
    assert!(
        advice_flags(text).is_empty() && !text.contains("$JOBNET_"),
        "names a flag: {text}"
    );
}

#[track_caller]
fn says(e: &(impl std::fmt::Display + Hinted), hints: &[Hint]) {
    neutral(&e.to_string());
    assert_eq!(e.hints(), hints, "{e}");
}

fn io(kind: std::io::ErrorKind) -> std::io::Error {
    std::io::Error::from(kind)
}

#[test]
fn errors_that_had_flag_text_say_the_fix_in_words_and_carry_the_setting() {
    use std::io::ErrorKind::PermissionDenied;
    let path = "/var/lib/jobnet/state.db".to_string();
    says(
        &StateError::Io {
            path: path.clone(),
            source: io(PermissionDenied),
        },
        &[Hint::StatePath],
    );
    says(
        &StateError::NotState {
            path: path.clone(),
            source: rusqlite::Error::InvalidQuery,
        },
        &[Hint::StatePath],
    );
    let locked = |signal| StateError::Locked {
        path: path.clone(),
        holder: " (pid 7: jobnet up)".into(),
        secs: 60,
        signal,
    };
    says(&locked(""), &[Hint::Wait]);
    // A signal ended the wait: waiting longer is no fix.
    says(&locked(" (a signal arrived)"), &[]);
    let slots = LockError::SlotsBusy {
        device: "leaf1".into(),
        slots: 4,
        secs: 60,
        dir: "/var/lib/jobnet/locks".into(),
    };
    says(&slots, &[Hint::SessionsPerDevice, Hint::Wait]);
    says(
        &CredentialsError::Io {
            path: "/etc/jobnet/credentials.yaml".into(),
            source: io(PermissionDenied),
        },
        &[Hint::CredentialsPath],
    );
    says(
        &CredentialsError::NotAFile {
            path: "/tmp".into(),
        },
        &[Hint::CredentialsPath],
    );
    let from = Origin::default();
    says(
        &ApplyError::UnverifiedGateway {
            from: from.gateway,
            gateway: "gw1".into(),
            profile: "mellanox-gateway".into(),
            manual: "MLNX-OS VPI".into(),
        },
        &[Hint::DriversDir],
    );
    says(&ApplyError::NoReload { from: from.pkey }, &[Hint::PKeyNone]);
    says(
        &ApplyError::UnreadablePartitions {
            reason: io(PermissionDenied).to_string(),
        },
        &[Hint::PartitionsConf],
    );
    says(
        &ApplyError::AlreadyUp {
            job: "7".into(),
            has: "VLAN 1000".into(),
            asked: "VLAN 1001".into(),
            from: from.vlan,
            hint: Some(Hint::VlanDefault),
        },
        &[Hint::VlanDefault],
    );
    says(
        &ApplyError::NoLogin {
            job: "7".into(),
            why: "cannot reach leaf1 (192.0.2.11): credentials file /x does not exist".into(),
        },
        &[Hint::CredentialsPath],
    );
    // Hints of the failures behind a rollback come along, once each.
    says(
        &ApplyError::RolledBack {
            job: "7".into(),
            failures: vec![
                Failure::Lock {
                    device: "leaf1".into(),
                    source: slots,
                },
                Failure::Device(DeviceError::Setup {
                    device: "leaf2".into(),
                    address: "192.0.2.12".into(),
                    reason: "host key of 192.0.2.12 is not in known_hosts".into(),
                    hint: Hint::TrustOnFirstUse,
                }),
                Failure::State(locked("")),
            ],
            released: "VLAN 1000 released".into(),
        },
        &[Hint::SessionsPerDevice, Hint::Wait, Hint::TrustOnFirstUse],
    );
    let state = PathBuf::from(&path);
    says(
        &jobnet::Error::StateMissing {
            path: state.clone(),
            trace: None,
        },
        &[Hint::StatePath],
    );
    says(
        &jobnet::Error::NoSuchJob {
            job: JobId::parse("42").unwrap(),
            state,
            exists: false,
        },
        &[Hint::StatePath],
    );
    says(
        &PlanError::UnknownDriver {
            device: "switch leaf1".into(),
            driver: "arista-eos".into(),
            known: "none".into(),
        },
        &[],
    );
    let shape = jobnet::topology::FatTreeSpec {
        hosts_per_leaf: 0,
        ..Default::default()
    }
    .check()
    .unwrap_err();
    neutral(&shape.to_string());
    assert!(shape
        .to_string()
        .starts_with("hosts_per_leaf 0 is out of range"));
    let cfg = jobnet::node::config::NodeConfig::parse(
        "jobs_dir: /tmp\nbackend: ovs\nbridge: br0\nuplink: eth1\ninterface: \"t{job}v{slot}\"\n",
        "node.yaml",
    )
    .unwrap();
    let long = JobId::parse("123456789.x+1").unwrap();
    let e = cfg
        .for_node("cn001")
        .unwrap()
        .interface_name(&long, "vs1", 1);
    let e = e.expect_err("longer than 15 characters");
    assert!(matches!(&e, jobnet::node::NodeError::InterfaceName { vm, .. } if vm == "vs1"));
    neutral(&e.to_string());
    let Err(e) = cfg.for_node("cn 1") else {
        panic!("a node name with a space is refused")
    };
    neutral(&e.to_string());
}

/// A small fabric: Ethernet with a pool and a reserved VLAN, InfiniBand whose nodes have no
/// port GUIDs, and the file it is written to.
fn fabric_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const ETHERNET: &str = "name: t\nethernet: {vlan_pool: \"100-199\", reserved_vlans: \"150\"}\nswitches:\n  - {name: s1, driver: arista-eos, address: 192.0.2.1, credentials: c}\nnodes:\n  - {name: \"n[1-2]\", port: \"s1:Ethernet[1-2]\"}\n";

fn with_ib(pool: &str, reload: &str) -> String {
    format!(
        "{ETHERNET}infiniband:\n  pkey_pool: \"{pool}\"\n  partitions_conf: /nonexistent/partitions.conf\n{reload}"
    )
}

const IB_ONLY: &str = "name: ib\ninfiniband:\n  pkey_pool: \"0x10-0x12\"\n  partitions_conf: /nonexistent/partitions.conf\n  reload: {command: \"true\"}\n  reload_window_ms: 10\nnodes:\n  - {name: \"n[1-2]\", ib_guids: [\"0x100001\", \"0x100002\"]}\n";

/// A request (topology, VLAN, PKey, gateway) and the hints its refusal carries.
type Case<'a> = (
    &'a Path,
    Choice<VlanId>,
    PKeyChoice,
    Option<&'a str>,
    &'a [Hint],
);

/// What the planner refuses, through the facade as a caller that names no origin sees it.
#[test]
fn the_planners_refusals_name_no_flag() {
    let dir = common::scratch("hints", "planner");
    let ctx = Context::new(Options {
        state: dir.join("none/state.db"),
        daemon: None,
        ..Options::default()
    })
    .unwrap();
    let eth = fabric_file(&dir, "eth.yaml", ETHERNET);
    let ib = fabric_file(
        &dir,
        "ib.yaml",
        &with_ib("0x1000-0x1fff", "  reload: {command: \"true\"}\n"),
    );
    let no_reload = fabric_file(&dir, "no-reload.yaml", &with_ib("0x1000-0x1fff", ""));
    let ib_only = fabric_file(&dir, "ib-only.yaml", IB_ONLY);
    let two_tier = Path::new(env!("CARGO_MANIFEST_DIR")).join("topology/two-tier.yaml");
    let vlan = |v: u16| Choice::Fixed(VlanId::new(v.into()).unwrap());
    let pkey = |k: &str| PKeyChoice::Fixed(PKey::parse(k).unwrap());
    let cases: Vec<Case> = vec![
        (
            &eth,
            vlan(150),
            PKeyChoice::Default,
            None,
            &[Hint::VlanAuto],
        ),
        (
            &eth,
            vlan(300),
            PKeyChoice::Default,
            None,
            &[Hint::VlanAuto],
        ),
        (
            &eth,
            Choice::Auto,
            PKeyChoice::Auto,
            None,
            &[Hint::PKeyNone],
        ),
        (&eth, Choice::None, PKeyChoice::Default, None, &[]),
        (&ib, Choice::Auto, PKeyChoice::Auto, None, &[Hint::PKeyNone]),
        (&ib, Choice::Auto, pkey("0x3000"), None, &[Hint::PKeyAuto]),
        (
            &no_reload,
            Choice::Auto,
            PKeyChoice::Auto,
            None,
            &[Hint::PKeyNone],
        ),
        (
            &ib_only,
            vlan(100),
            PKeyChoice::Default,
            None,
            &[Hint::VlanDefault],
        ),
        (
            &two_tier,
            Choice::Auto,
            PKeyChoice::None,
            Some("gw1"),
            &[Hint::PKeyDefault],
        ),
        (
            &two_tier,
            Choice::None,
            PKeyChoice::Default,
            Some("gw1"),
            &[],
        ),
    ];
    for (file, vlan, pkey, gateway, hints) in cases {
        let fabric = ctx.fabric(file).unwrap();
        let req = JobRequest {
            job: JobId::parse("7").unwrap(),
            nodes: vec!["n1".into()],
            vlan,
            pkey,
            gateway: gateway.map(str::to_string),
            origin: Origin::default(),
        };
        let req = if file == two_tier.as_path() {
            JobRequest {
                nodes: vec!["cn001".into()],
                ..req
            }
        } else {
            req
        };
        let e = ctx.plan(&fabric, &req, None).unwrap_err();
        says(&e, hints);
    }
}

// ---- the command line: the same errors name the flag ----

#[track_caller]
fn err_has(o: &common::Out, needles: &[&str]) {
    for n in needles {
        assert!(
            o.stderr.contains(n),
            "stderr lacks {n:?}\n--- stderr:\n{}",
            o.stderr
        );
    }
}

#[test]
fn the_command_line_names_the_flag_that_fixes_it() {
    let dir = common::scratch("hints", "cli");
    let eth = fabric_file(&dir, "eth.yaml", ETHERNET);
    let ib = fabric_file(
        &dir,
        "ib.yaml",
        &with_ib("0x1000-0x1fff", "  reload: {command: \"true\"}\n"),
    );
    let ib_only = fabric_file(&dir, "ib-only.yaml", IB_ONLY);
    let plan = |t: &Path, more: &[&str]| {
        let t = t.to_str().unwrap();
        let args = [
            &["plan", "--topology", t, "--job", "7", "--nodes", "n1"][..],
            more,
        ]
        .concat();
        common::jobnet(&args)
    };
    let o = plan(&eth, &["--vlan", "150"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    err_has(
        &o,
        &[
            "VLAN 150 (from --vlan) is not usable: it is in reserved_vlans 150 of",
            "; choose another VLAN or let jobnet choose one (hint: --vlan auto)",
        ],
    );
    err_has(
        &plan(&eth, &["--vlan", "300"]),
        &[
            "it is outside vlan_pool 100-199",
            "widen the pool, or let jobnet choose one (hint: --vlan auto)",
        ],
    );
    err_has(
        &plan(&eth, &["--pkey", "auto"]),
        &[
            "a partition was asked for (from --pkey) but the topology",
            "has no infiniband section",
            "(hint: --pkey none)",
        ],
    );
    err_has(
        &plan(&eth, &["--vlan", "none"]),
        &["no VLAN (none was asked for, from --vlan) and no partition"],
    );
    err_has(
        &plan(&ib, &["--pkey", "auto"]),
        &[
            "a partition was asked for (from --pkey) but none of the job's nodes has ib_guids",
            "ask for no partition (hint: --pkey none)",
        ],
    );
    err_has(
        &plan(&ib, &["--pkey", "0x3000"]),
        &[
            "PKey 0x3000 (from --pkey) is not usable: it is outside pkey_pool",
            "(hint: --pkey auto)",
        ],
    );
    err_has(
        &plan(&ib_only, &["--vlan", "100"]),
        &[
            "VLAN 100 (from --vlan) is not usable",
            "ask for no particular VLAN, or add the ethernet section (hint: drop --vlan)",
        ],
    );
    let two_tier = "topology/two-tier.yaml";
    let o = common::jobnet(&[
        "plan",
        "--topology",
        two_tier,
        "--job",
        "7",
        "--nodes",
        "cn001",
        "--gateway",
        "gw1",
        "--vlan",
        "none",
    ]);
    err_has(
        &o,
        &["the gateway (from --gateway) bridges the job's PKey to its VLAN, but the job has no VLAN (none was asked for, from --vlan)"],
    );
    // The state file: named with --state, it must exist for `down`; `status --job` says where
    // the job was looked for.
    let st = dir.join("no-such/state.db");
    let st = st.to_str().unwrap();
    let o = common::jobnet(&["--state", st, "down", "--job", "7"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    err_has(
        &o,
        &[
            "does not exist; it was named explicitly",
            "(hint: --state / $JOBNET_STATE)",
        ],
    );
    let not_a_db = fabric_file(
        &dir,
        "not-a-db",
        "this is no SQLite file, nor any database at all\n",
    );
    let o = common::jobnet(&["--state", not_a_db.to_str().unwrap(), "status"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    err_has(
        &o,
        &[
            "is not a jobnet state file",
            "check the state file's path (hint: --state / $JOBNET_STATE)",
        ],
    );
    // JSON errors carry the same words.
    let o = common::jobnet(&[
        "plan",
        "--topology",
        eth.to_str().unwrap(),
        "--job",
        "7",
        "--nodes",
        "n1",
        "--vlan",
        "150",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.ends_with("(hint: --vlan auto)"), "{message}");
}

/// `up` again with another PKey: the job's own, or `jobnet down` first.
#[test]
fn up_again_asking_for_something_else_names_the_flag() {
    let dir = common::scratch("hints", "again");
    let conf = dir.join("partitions.conf");
    std::fs::write(&conf, "Default=0x7fff, ipoib : ALL=full;\n").unwrap();
    let t = fabric_file(
        &dir,
        "t.yaml",
        &IB_ONLY.replace("/nonexistent/partitions.conf", conf.to_str().unwrap()),
    );
    let st = dir.join("state.db");
    let up = |pkey: &str| {
        common::jobnet(&[
            "--state",
            st.to_str().unwrap(),
            "up",
            "--topology",
            t.to_str().unwrap(),
            "--job",
            "1",
            "--nodes",
            "n1",
            "--pkey",
            pkey,
        ])
    };
    let o = up("0x10");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = up("0x11");
    assert_eq!(o.code, 2, "{}", o.stderr);
    err_has(
        &o,
        &["job 1 is already up with PKey 0x0010 on these nodes; --pkey asks for PKey 0x0011: run `jobnet down --job 1` first, or ask for what it has (hint: drop --pkey)"],
    );
    let o = common::jobnet(&["--state", st.to_str().unwrap(), "down", "--job", "1"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}
