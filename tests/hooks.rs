//! The batch-system entry points as the batch systems call them: Slurm's controller hooks with
//! the environment Slurm 22.05 sets (and by the name of a symbolic link, as slurm.conf takes no
//! arguments), PBS's prologue/epilogue with their argv and node file, a SUPPZ-style passport —
//! on an InfiniBand-only fabric whose OpenSM "reload" is `true`, so no device or root is needed
//! (the Slurm lab in .ci/labs/slurm.sh runs the real thing).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("hooks")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A lab: a topology with nodes n1..n4 (IB only), its partitions.conf, a jobs directory, and a
/// jobnet.yaml.
struct Lab {
    dir: PathBuf,
}

impl Lab {
    fn new(name: &str, policy: &str, extra: &str) -> Lab {
        let dir = scratch(name);
        let conf = dir.join("partitions.conf");
        std::fs::write(&conf, "Default=0x7fff, ipoib : ALL=full;\n").unwrap();
        // The jobs' files (network.json, addresses) stay in the lab, never in the default
        // /var/lib/jobnet-jobs of this machine.
        std::fs::create_dir_all(dir.join("jobs")).unwrap();
        std::fs::write(
            dir.join("topology.yaml"),
            format!(
                "name: hooks\ninfiniband:\n  pkey_pool: \"0x10-0x12\"\n  partitions_conf: {}\n  reload: {{command: \"true\"}}\n  reload_window_ms: 10\nnodes:\n  - {{name: \"n[1-4]\", ib_guids: [\"0x100001\", \"0x100002\", \"0x100003\", \"0x100004\"]}}\n",
                conf.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("jobnet.yaml"),
            format!(
                "topology: {d}/topology.yaml\nstate: {d}/state/state.db\nlog: {d}/hooks.log\njobs_dir: {d}/jobs\npolicy:\n{policy}\n{extra}",
                d = dir.display()
            ),
        )
        .unwrap();
        Lab { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("hooks.log")).unwrap_or_default()
    }

    /// Runs `program` (jobnet or a link to it) as a hook: only the given environment.
    fn hook(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        let o = Command::new(program)
            .args(args)
            .env_clear()
            .env("JOBNET_CONFIG", self.path("jobnet.yaml"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn slurm(
        &self,
        hook: &str,
        job: &str,
        nodes: &str,
        partition: &str,
        comment: &str,
    ) -> (i32, String) {
        self.hook(
            Path::new(env!("CARGO_BIN_EXE_jobnet")),
            &["hook", hook],
            &[
                ("SLURM_JOB_ID", job),
                ("SLURM_JOB_NODELIST", nodes),
                ("SLURM_JOB_PARTITION", partition),
                ("SLURM_JOB_USER", "alice"),
                ("SLURM_JOB_COMMENT", comment),
                ("SLURM_SCRIPT_CONTEXT", "prolog_slurmctld"),
            ],
        )
    }

    /// A stand-in for scontrol at `scontrol` in the lab: every call is appended to
    /// `scontrol.calls` as `[arg][arg]...`; `update JobId=N K=V ...` appends each `K=V` to the job
    /// record `job-N` and `hold N` appends `Held=yes`, as slurmctld would change the job.
    fn fake_scontrol(&self) -> PathBuf {
        let d = self.dir.display();
        let path = self.path("scontrol");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done >> {d}/scontrol.calls\necho >> {d}/scontrol.calls\ncase \"$1\" in\n  update) id=${{2#JobId=}}; shift 2; for kv in \"$@\"; do printf '%s\\n' \"$kv\" >> {d}/job-$id; done ;;\n  hold) echo Held=yes >> {d}/job-$2 ;;\nesac\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn scontrol_calls(&self) -> String {
        std::fs::read_to_string(self.path("scontrol.calls")).unwrap_or_default()
    }

    /// The last value of `key` in the fake scontrol's record of `job`.
    fn job_field(&self, job: &str, key: &str) -> Option<String> {
        let record = std::fs::read_to_string(self.path(&format!("job-{job}"))).ok()?;
        record
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    }

    fn status(&self, job: &str) -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
            .args([
                "--state",
                self.path("state/state.db").to_str().unwrap(),
                "status",
                "--all",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job"] == job)
            .cloned()
            .unwrap_or_default()
    }
}

const POLICY: &str = "  - {partitions: [vm], network: {vlan: none, ib: yes, vms: 2}}\n  - {partitions: [\"*\"], requests: allow}";
const ADDRESSES: &str = "addresses: {template: \"192.168.{vlan}.0/24\"}\n";

#[test]
fn a_job_nobody_asked_for_is_left_alone_and_nothing_is_created() {
    let lab = Lab::new("untouched", POLICY, "");
    let (code, err) = lab.slurm("slurm-prolog", "1", "n[1-2]", "batch", "just a comment");
    assert_eq!(code, 0, "{err}");
    assert!(
        !lab.path("state").exists(),
        "no state file for an untouched job"
    );
    let (code, _) = lab.slurm("slurm-epilog", "1", "n[1-2]", "batch", "");
    assert_eq!(code, 0);
    assert!(!lab.path("state").exists());
}

#[test]
fn policy_partition_job_gets_its_partition_and_loses_it_at_the_end() {
    let lab = Lab::new(
        "policy",
        POLICY,
        "addresses: {pool: 10.64.0.0/16, prefix: 28, first: 2, gateway: 1}\n",
    );
    let (code, err) = lab.slurm("slurm-prolog", "7", "n[1-3]", "vm", "");
    assert_eq!(code, 0, "{err}");
    let conf = std::fs::read_to_string(lab.path("partitions.conf")).unwrap();
    assert!(conf.contains("jobnet_7=0x0010"), "{conf}");
    let s = lab.status("7");
    assert_eq!(s["state"], "up");
    // Two VMs on each of the three nodes, numbered in the job's subnet.
    let log = lab.log();
    assert!(
        log.contains("slurm-prolog job=7: up: no VLAN, PKey 0x0010"),
        "{log}"
    );
    assert!(log.contains("6 VM address(es) in 10.64.0.0/28"), "{log}");
    // Safe to run twice (slurmctld reruns a hook it killed): nothing changes.
    let (code, err) = lab.slurm("slurm-prolog", "7", "n[1-3]", "vm", "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(lab.path("partitions.conf")).unwrap(),
        conf
    );
    let (code, err) = lab.slurm("slurm-epilog", "7", "n[1-3]", "vm", "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(lab.status("7")["state"], "down");
    assert_eq!(
        std::fs::read_to_string(lab.path("partitions.conf")).unwrap(),
        "Default=0x7fff, ipoib : ALL=full;\n"
    );
    // Twice again: nothing to do.
    assert_eq!(lab.slurm("slurm-epilog", "7", "n[1-3]", "vm", "").0, 0);
}

#[test]
fn a_request_in_the_comment_and_its_address_files() {
    let lab = Lab::new(
        "comment",
        POLICY,
        &format!("addresses: {{pool: 10.64.0.0/16, prefix: 24, first: 64, gateway: 1, names: \"vs{{n}}\", dir: {}}}\n", scratch("comment-files").display()),
    );
    let (code, err) = lab.slurm(
        "slurm-prolog",
        "8",
        "n[2,4]",
        "batch",
        "run 3 jobnet:vlan=none,ib=yes,vms=1 (ticket)",
    );
    assert_eq!(code, 0, "{err}");
    let files = scratch_dir("comment-files").join("8");
    let list = std::fs::read_to_string(files.join("ip-list.txt")).unwrap();
    assert!(
        list.starts_with("Virtual machine ip list:\n************ vs1 ************\n10.64.0.64 "),
        "{list}"
    );
    assert!(
        list.contains("************ vs2 ************\n10.64.0.65 "),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(files.join("addresses.json")).unwrap())
            .unwrap();
    assert_eq!(json["vms"][1]["node"], "n4");
    assert!(std::fs::read_to_string(files.join("dnsmasq-hosts"))
        .unwrap()
        .starts_with("dhcp-host="));
    let ci = std::fs::read_to_string(files.join("cloud-init/vs2/network-config")).unwrap();
    assert!(
        ci.contains("addresses: [\"10.64.0.65/24\"]") && ci.contains("via: 10.64.0.1"),
        "{ci}"
    );
    let s = lab.status("8");
    assert_eq!(
        s["addresses"]["vms"][0]["ip"], "10.64.0.64",
        "status shows them: {s}"
    );
    // A second job gets the next subnet of the pool.
    assert_eq!(lab.slurm("slurm-prolog", "9", "n1", "batch", "jobnet").0, 0);
    let nine = std::fs::read_to_string(scratch_dir("comment-files").join("9").join("ip-list.txt"))
        .unwrap();
    assert!(nine.contains("10.64.1.64"), "{nine}");
    assert_eq!(lab.slurm("slurm-epilog", "8", "n[2,4]", "batch", "").0, 0);
    assert!(!files.exists(), "the job's files go with it");
    assert_eq!(lab.slurm("slurm-epilog", "9", "n1", "batch", "").0, 0);
}

/// `jobnet ARGS` with the lab's jobnet.yaml.
fn jn_job(lab: &Lab, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args(args)
        .env("JOBNET_CONFIG", lab.path("jobnet.yaml"))
        .output()
        .unwrap()
}

fn scratch_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("hooks")
        .join(name)
}

#[test]
fn bad_requests_and_failures_are_held_not_retried_forever() {
    let lab = Lab::new(
        "failures",
        POLICY,
        "failure: {hold_after: 2}\nprograms: {scontrol: /bin/true}\n",
    );
    // A typo in the request: held at once (a retry would not fix it), the reason logged.
    let (code, _) = lab.slurm("slurm-prolog", "20", "n1", "batch", "jobnet:vlan=5000");
    assert_eq!(code, 1);
    let log = lab.log();
    assert!(
        log.contains("job=20: failed (1 time(s) for this job): jobnet request vlan=5000"),
        "{log}"
    );
    assert!(
        log.contains("job=20: scontrol update: done") && log.contains("scontrol hold: done"),
        "{log}"
    );
    // An unknown node fails the prolog; the second failure holds the job.
    let (code, _) = lab.slurm("slurm-prolog", "21", "n9", "vm", "");
    assert_eq!(code, 1);
    assert!(
        !lab.log().contains("job=21: scontrol"),
        "not held after one failure"
    );
    let (code, _) = lab.slurm("slurm-prolog", "21", "n9", "vm", "");
    assert_eq!(code, 1);
    let log = lab.log();
    assert!(
        log.contains("job=21: failed (2 time(s) for this job)"),
        "{log}"
    );
    assert!(log.contains("job=21: scontrol hold: done"), "{log}");
    // The log names where the node came from: Slurm's variable, not a flag of the CLI.
    assert!(
        log.contains("unknown node(s) n9 (from SLURM_JOB_NODELIST)") && !log.contains("--nodes"),
        "{log}"
    );
}

/// A request the fabric cannot meet, and a state file that cannot be made: the log says what to
/// change in the words of the job's request and of jobnet.yaml, never a flag of the command line
/// (hooks take none).
#[test]
fn a_failed_prolog_says_the_fix_in_the_words_of_the_request_and_jobnet_yaml() {
    let lab = Lab::new("hints", POLICY, "programs: {scontrol: /bin/true}\n");
    let (code, _) = lab.slurm("slurm-prolog", "30", "n1", "batch", "jobnet:pkey=0x20");
    assert_eq!(code, 1);
    let log = lab.log();
    assert!(
        log.contains(
            "PKey 0x0020 (from the job's network request) is not usable: it is outside pkey_pool"
        ),
        "{log}"
    );
    assert!(
        log.contains("choose one inside the pool or let jobnet choose one (hint: PKey `auto` in the job's network request)"),
        "{log}"
    );
    let yaml = lab.path("jobnet.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let state = format!("state: {}/state/state.db", lab.dir.display());
    assert!(text.contains(&state), "{text}");
    std::fs::write(
        &yaml,
        text.replace(&state, "state: /proc/jobnet-none/state.db"),
    )
    .unwrap();
    let (code, _) = lab.slurm("slurm-prolog", "31", "n1", "vm", "");
    assert_eq!(code, 1);
    let log = lab.log();
    assert!(
        log.contains(&format!("(hint: `state:` in {})", yaml.display())),
        "{log}"
    );
    assert!(!log.contains("--pkey") && !log.contains("--state"), "{log}");
}

#[test]
fn a_requeued_job_gets_a_clean_network() {
    let lab = Lab::new("requeue", POLICY, "");
    assert_eq!(lab.slurm("slurm-prolog", "30", "n1", "vm", "").0, 0);
    // Requeued onto other nodes (the epilog may not have run yet): old network first.
    let (code, err) = lab.hook(
        Path::new(env!("CARGO_BIN_EXE_jobnet")),
        &["hook", "slurm-prolog"],
        &[
            ("SLURM_JOB_ID", "30"),
            ("SLURM_JOB_NODELIST", "n[3-4]"),
            ("SLURM_JOB_PARTITION", "vm"),
            ("SLURM_JOB_RESTART_COUNT", "1"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        lab.log().contains("taking its network down first"),
        "{}",
        lab.log()
    );
    let conf = std::fs::read_to_string(lab.path("partitions.conf")).unwrap();
    assert!(
        conf.contains("0x0000000000100003=full") && !conf.contains("0x0000000000100001=full"),
        "{conf}"
    );
    assert_eq!(lab.slurm("slurm-epilog", "30", "n[3-4]", "vm", "").0, 0);
}

/// A prolog killed half-way by a slurmctld crash, whose job slurmctld then forgot: the record
/// says `applying`, owned by a process that is gone (no rerun, no epilog will come).
fn orphan(lab: &Lab, job: &str, nodes: &str) {
    assert_eq!(lab.slurm("slurm-prolog", job, nodes, "vm", "").0, 0);
    let conn = rusqlite::Connection::open(lab.path("state/state.db")).unwrap();
    conn.execute(
        "UPDATE jobs SET state='applying', pid=999999999, pid_start=1 WHERE job=?1",
        [job],
    )
    .unwrap();
}

#[test]
fn the_next_prolog_on_its_nodes_undoes_a_dead_hooks_record_and_logs_it() {
    let lab = Lab::new("orphan", POLICY, "");
    orphan(&lab, "40", "n[1-2]");
    let (code, err) = lab.slurm("slurm-prolog", "41", "n2", "vm", "");
    assert_eq!(code, 0, "{err}");
    let log = lab.log();
    assert!(
        log.contains("slurm-prolog job=41: job 40 was left applying on these nodes by process 999999999, which is gone: undone first from its journal (1 operation(s))"),
        "{log}"
    );
    assert_eq!(lab.status("40")["state"], "down");
    let conf = std::fs::read_to_string(lab.path("partitions.conf")).unwrap();
    assert!(
        !conf.contains("jobnet_40") && conf.contains("jobnet_41"),
        "{conf}"
    );
    assert_eq!(lab.slurm("slurm-epilog", "41", "n2", "vm", "").0, 0);
}

/// What `up` warns about reaches the hook's log (its output goes nowhere).
#[test]
fn ups_warnings_are_logged() {
    let lab = Lab::new("warnings", POLICY, "");
    // A node without an IB port GUID: `up` gives the partition to the others, and says so.
    let mut topology = std::fs::read_to_string(lab.path("topology.yaml")).unwrap();
    topology.push_str("  - {name: n5}\n");
    std::fs::write(lab.path("topology.yaml"), topology).unwrap();
    let (code, err) = lab.slurm("slurm-prolog", "44", "n[1,5]", "vm", "");
    assert_eq!(code, 0, "{err}");
    let log = lab.log();
    assert!(
        log.contains("slurm-prolog job=44: warning: node(s) n5 have no ib_guids in "),
        "{log}"
    );
}

/// When the undo fails, the prolog that tried still says so, whatever becomes of its own job.
#[test]
fn a_failed_undo_of_a_dead_hooks_record_is_logged_too() {
    let lab = Lab::new("orphan-fails", POLICY, "");
    orphan(&lab, "42", "n[1-2]");
    // partitions.conf replaced by a directory: neither the undo nor the next job can use it.
    let conf = lab.path("partitions.conf");
    std::fs::remove_file(&conf).unwrap();
    std::fs::create_dir(&conf).unwrap();
    let (code, _) = lab.slurm("slurm-prolog", "43", "n1", "vm", "");
    assert_eq!(code, 1);
    let log = lab.log();
    assert!(
        log.contains("slurm-prolog job=43: job 42 was left applying on these nodes by process 999999999, which is gone; undoing it failed: "),
        "{log}"
    );
}

#[test]
fn called_by_a_hooks_name() {
    let lab = Lab::new("argv0", POLICY, "");
    let link = lab.path("jobnet-slurmctld-prolog");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_jobnet"), &link).unwrap();
    let (code, err) = lab.hook(
        &link,
        &[],
        &[
            ("SLURM_JOB_ID", "40"),
            ("SLURM_JOB_NODELIST", "n1"),
            ("SLURM_JOB_PARTITION", "vm"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        lab.log().contains("slurm-prolog job=40: up"),
        "{}",
        lab.log()
    );
    let link = lab.path("jobnet-slurmctld-epilog");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_jobnet"), &link).unwrap();
    let (code, _) = lab.hook(&link, &[], &[("SLURM_JOB_ID", "40")]);
    assert_eq!(code, 0);
    assert!(
        lab.log().contains("slurm-epilog job=40: down"),
        "{}",
        lab.log()
    );
}

#[test]
fn pbs_prologue_and_epilogue() {
    let lab = Lab::new(
        "pbs",
        "  - {partitions: [\"*\"], network: {vlan: none, ib: yes}}",
        "",
    );
    let home = lab.path("pbs");
    std::fs::create_dir_all(home.join("aux")).unwrap();
    std::fs::write(
        home.join("aux/77.server"),
        "n2.cluster\nn2.cluster\nn3.cluster\n",
    )
    .unwrap();
    let yaml = std::fs::read_to_string(lab.path("jobnet.yaml")).unwrap();
    std::fs::write(
        lab.path("jobnet.yaml"),
        format!("{yaml}pbs_home: {}\n", home.display()),
    )
    .unwrap();
    let jn = Path::new(env!("CARGO_BIN_EXE_jobnet"));
    let (code, err) = lab.hook(
        jn,
        &["hook", "pbs-prologue", "77.server", "alice", "users"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let conf = std::fs::read_to_string(lab.path("partitions.conf")).unwrap();
    assert!(
        conf.contains("0x0000000000100002=full") && conf.contains("0x0000000000100003=full"),
        "{conf}"
    );
    let epilogue = [
        "hook",
        "pbs-epilogue",
        "77.server",
        "alice",
        "users",
        "job",
        "123",
        "",
        "",
        "workq",
        "",
        "0",
    ];
    assert_eq!(lab.hook(jn, &epilogue, &[]).0, 0);
    assert!(!std::fs::read_to_string(lab.path("partitions.conf"))
        .unwrap()
        .contains("0x0000000000100002"));
    // No node file: exit 1 with the path named.
    let (code, _) = lab.hook(
        jn,
        &["hook", "pbs-prologue", "78.server", "alice", "users"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(lab.log().contains("aux/78.server"), "{}", lab.log());
}

#[test]
fn a_passport_brings_up_what_it_says() {
    let lab = Lab::new("passport", "  []", ADDRESSES);
    let p = lab.path("Passport.img");
    std::fs::write(&p, "[VM]\nTemplate=/mnt/pve/win11.qcow2\nVlan=160\nRam=2048\n[Network]\nVlan=none\nPkey=auto\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args([
            "job",
            "up",
            "--passport",
            p.to_str().unwrap(),
            "--job",
            "50",
            "--nodes",
            "n[1-2]",
        ])
        .env("JOBNET_CONFIG", lab.path("jobnet.yaml"))
        .output()
        .unwrap();
    // `Vlan=none` with a VLAN template: the addresses need a VLAN, so the job is refused and
    // nothing is left.
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs the job's VLAN"));
    assert_eq!(
        std::fs::read_to_string(lab.path("partitions.conf")).unwrap(),
        "Default=0x7fff, ipoib : ALL=full;\n"
    );
    // The same job numbered from a pool: up, and the VMs' list on stdout.
    let pool = Lab::new(
        "passport-pool",
        "  []",
        &format!("addresses: {{pool: 10.70.0.0/16, prefix: 24, first: 64, names: \"vs{{n}}\", dir: {}}}\n", scratch("passport-files").display()),
    );
    std::fs::write(pool.path("Passport.img"), std::fs::read(&p).unwrap()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args([
            "job",
            "up",
            "--passport",
            pool.path("Passport.img").to_str().unwrap(),
            "--job",
            "50",
            "--nodes",
            "n[1-2]",
        ])
        .env("JOBNET_CONFIG", pool.path("jobnet.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("Virtual machine ip list:\n************ vs1 ************\n10.70.0.64 "),
        "{out}"
    );
    assert!(std::fs::read_to_string(pool.path("partitions.conf"))
        .unwrap()
        .contains("jobnet_50="));
    let o = jn_job(&pool, &["job", "down", "--job", "50"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!scratch_dir("passport-files").join("50").exists());
    let bad = lab.path("bad.img");
    std::fs::write(&bad, "[VM]\nVlan=9999\n").unwrap();
    let o = jn_job(
        &lab,
        &[
            "job",
            "up",
            "--passport",
            bad.to_str().unwrap(),
            "--job",
            "51",
            "--nodes",
            "n1",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.img:2:1: error: [vm] vlan=9999"));
}

/// An administrator running jobnet as root in a state directory that belongs to the service user
/// (after a failed rollback, docs/operations.md) leaves nothing the hooks cannot open.
#[test]
fn root_keeps_the_state_usable_for_the_service_user() {
    // Not in a user namespace: its single-uid map has no uid 65534 to give the files to.
    if !common::needs_root(
        "root_keeps_the_state_usable_for_the_service_user",
        "checks the files root creates in a directory owned by uid 65534",
    ) {
        return;
    }
    let lab = Lab::new("owner", POLICY, "");
    let state = lab.path("state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    // As docs/slurm.md asks: the service user owns partitions.conf's directory too.
    std::os::unix::fs::chown(&lab.dir, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(lab.path("partitions.conf"), Some(65534), Some(65534)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args([
            "--state",
            state.join("state.db").to_str().unwrap(),
            "up",
            "--topology",
        ])
        .arg(lab.path("topology.yaml"))
        .args(["--job", "60", "--nodes", "n1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use std::os::unix::fs::MetadataExt;
    for dir in [&state, &lab.dir] {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains("partitions") || dir == &state {
                assert_eq!(
                    e.metadata().unwrap().uid(),
                    65534,
                    "{} belongs to root",
                    e.path().display()
                );
            }
        }
    }
    // The service user can go on using it.
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_jobnet"))
        .args([
            "--state",
            state.join("state.db").to_str().unwrap(),
            "down",
            "--job",
            "60",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `jobnet job up` with a configuration that is not jobnet.yaml: exit 2, every wrong key named
/// once on stderr.
#[test]
fn a_wrong_configuration_is_bad_input_said_once() {
    let d = scratch("wrong-config");
    std::fs::write(d.join("node.yaml"), "bridge: br0\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_jobnet"))
        .args(["job", "down", "--job", "1", "--config"])
        .arg(d.join("node.yaml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.matches("unknown key `bridge` in the jobnet configuration")
            .count(),
        1,
        "{err}"
    );
}

/// The job's `jobnet:` request is its own: a hold puts jobnet's reason in the AdminComment, and
/// once released the job gets exactly what it asked for (the fake scontrol keeps the job's
/// record as slurmctld would; the rerun reads its Comment from there).
#[test]
fn a_held_job_keeps_its_request_and_gets_exactly_it_once_released() {
    let d = scratch_dir("release");
    let lab = Lab::new(
        "release",
        POLICY,
        &format!(
            "failure: {{hold_after: 2}}\nprograms: {{scontrol: {d}/scontrol}}\naddresses: {{pool: 10.66.0.0/16, prefix: 24, dir: {d}/files}}\n",
            d = d.display()
        ),
    );
    lab.fake_scontrol();
    let request = "nightly jobnet:vlan=none,ib=0x0012,vms=2 (ticket 7)";
    std::fs::write(lab.path("job-31"), format!("Comment={request}\n")).unwrap();
    let run = |restarts: &str, fault: Option<&str>| {
        let comment = lab.job_field("31", "Comment").unwrap();
        let mut env = vec![
            ("SLURM_JOB_ID", "31"),
            ("SLURM_JOB_NODELIST", "n[1-2]"),
            ("SLURM_JOB_PARTITION", "batch"),
            ("SLURM_JOB_USER", "alice"),
            ("SLURM_JOB_COMMENT", comment.as_str()),
            ("SLURM_JOB_RESTART_COUNT", restarts),
        ];
        if let Some(f) = fault {
            env.push(("JOBNET_FAILPOINT", f));
        }
        lab.hook(
            Path::new(env!("CARGO_BIN_EXE_jobnet")),
            &["hook", "slurm-prolog"],
            &env,
        )
    };
    // A device fault, twice: requeued once, then held.
    assert_eq!(run("0", Some("intent:1:error")).0, 1);
    assert_eq!(lab.scontrol_calls(), "", "not held after one failure");
    assert_eq!(run("1", Some("intent:1:error")).0, 1);
    let calls = lab.scontrol_calls();
    assert!(
        calls.contains(
            "[update][JobId=31][AdminComment=jobnet: held after 2 failed network setup(s): "
        ) && calls.contains("[hold][31]"),
        "{calls}"
    );
    assert!(
        !calls.contains("[Comment="),
        "the user's comment is never written: {calls}"
    );
    assert_eq!(lab.job_field("31", "Comment").as_deref(), Some(request));
    assert!(
        lab.job_field("31", "AdminComment")
            .is_some_and(|c| c.contains("failure injected by JOBNET_FAILPOINT")),
        "{:?}",
        std::fs::read_to_string(lab.path("job-31"))
    );
    // Released by an administrator after the fault is gone: exactly the request.
    let (code, err) = run("2", None);
    assert_eq!(code, 0, "{err}");
    let conf = std::fs::read_to_string(lab.path("partitions.conf")).unwrap();
    assert!(conf.contains("jobnet_31=0x0012"), "{conf}");
    let s = lab.status("31");
    assert_eq!(
        (s["state"].as_str(), s["pkey"].as_str()),
        (Some("up"), Some("0x0012")),
        "{s}"
    );
    assert_eq!(
        s["addresses"]["vms"].as_array().map(Vec::len),
        Some(4),
        "two VMs on each of the two nodes: {s}"
    );
    assert_eq!(lab.slurm("slurm-epilog", "31", "n[1-2]", "batch", "").0, 0);
}

/// A configuration error goes to the log the file names (FILE:LINE:COL), not to a fixed path;
/// the Slurm prolog holds the job (a requeue would read the same file) with the reason in its
/// AdminComment, and exits 2; the epilog exits 2; PBS's prologue aborts the job (1).
#[test]
fn a_broken_configuration_is_reported_in_its_log_and_holds_the_job() {
    let d = scratch_dir("broken");
    let lab = Lab::new(
        "broken",
        POLICY,
        &format!(
            "programs: {{scontrol: {}/scontrol}}\nfailure: {{hold_aftr: 2}}\n",
            d.display()
        ),
    );
    lab.fake_scontrol();
    let yaml = lab.path("jobnet.yaml");
    let line = std::fs::read_to_string(&yaml)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("failure:"))
        .unwrap()
        + 1;
    let at = format!(
        "{}:{line}:11: error: unknown key `hold_aftr`",
        yaml.display()
    );
    let (code, err) = lab.slurm("slurm-prolog", "60", "n1", "batch", "jobnet:vms=2");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&at), "{err}");
    let log = lab.log();
    assert!(
        log.contains("slurm-prolog job=60: ") && log.contains(&at),
        "{log}"
    );
    let calls = lab.scontrol_calls();
    assert!(
        calls.contains("[update][JobId=60][AdminComment=jobnet: held (fix the site configuration, then scontrol release 60): ")
            && calls.contains(&at)
            && calls.contains("[hold][60]"),
        "{calls}"
    );
    // The epilog cannot do anything either: said, exit 2, no hold.
    let (code, _) = lab.slurm("slurm-epilog", "60", "n1", "batch", "");
    assert_eq!(code, 2);
    assert!(lab.log().contains("slurm-epilog job=60: "), "{}", lab.log());
    assert_eq!(
        lab.scontrol_calls().lines().count(),
        2,
        "{}",
        lab.scontrol_calls()
    );
    // PBS: 1 aborts the job; 2 would requeue it for ever.
    let (code, _) = lab.hook(
        Path::new(env!("CARGO_BIN_EXE_jobnet")),
        &["hook", "pbs-prologue", "61.server", "alice", "users"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        lab.log()
            .contains("pbs-prologue job=61.server: aborting the job"),
        "{}",
        lab.log()
    );
    // A file whose `log:` is wrong too: stderr (and syslog) have it, the job is still held.
    let text = std::fs::read_to_string(&yaml).unwrap();
    let log_line = text.lines().find(|l| l.starts_with("log:")).unwrap();
    std::fs::write(&yaml, text.replace(log_line, "log: hooks.log")).unwrap();
    let (code, err) = lab.slurm("slurm-prolog", "62", "n1", "batch", "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`hooks.log` is not an absolute path"), "{err}");
    assert!(
        lab.scontrol_calls().contains("[hold][62]"),
        "{}",
        lab.scontrol_calls()
    );
}

/// An environment the prolog cannot read is the same on a retry: held at once.
#[test]
fn a_job_environment_the_prolog_cannot_read_holds_the_job() {
    let d = scratch_dir("no-nodes");
    let lab = Lab::new(
        "no-nodes",
        POLICY,
        &format!("programs: {{scontrol: {}/scontrol}}\n", d.display()),
    );
    lab.fake_scontrol();
    let (code, _) = lab.hook(
        Path::new(env!("CARGO_BIN_EXE_jobnet")),
        &["hook", "slurm-prolog"],
        &[("SLURM_JOB_ID", "70"), ("SLURM_JOB_PARTITION", "vm")],
    );
    assert_eq!(code, 1);
    let calls = lab.scontrol_calls();
    assert!(
        calls.contains("[AdminComment=jobnet: held: SLURM_JOB_NODELIST is not set")
            && calls.contains("[hold][70]"),
        "{calls}"
    );
    assert!(
        lab.log().contains("job=70: SLURM_JOB_NODELIST is not set"),
        "{}",
        lab.log()
    );
}
