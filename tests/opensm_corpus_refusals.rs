//! Issue 13: the corpus of partitions.conf files (tests/opensm-cases/) holds the refusals that
//! are about jobnet's managed block rather than OpenSM's grammar — a job's partition with an
//! admin partition's PKey, admin text inside the block, BEGIN without END — as `stricter` cases
//! (OpenSM reads them as written; `.ci/labs/opensm.sh` shows their `# opensm:` lines on the real
//! ports), and `plan` names the kind of every refusal of the corpus: only files OpenSM would
//! reject or misread are called invalid.

use std::path::{Path, PathBuf};

mod common;
use common::{jobnet, Out};

fn plan_with(conf: &Path) -> Out {
    jobnet(&[
        "plan",
        "--topology",
        "topology/two-tier.yaml",
        "--job",
        "1",
        "--nodes",
        "cn001",
        "--partitions-conf",
        conf.to_str().unwrap(),
    ])
}

fn cases(class: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(format!("tests/opensm-cases/{class}"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    v.sort();
    v
}

const INVALID: &str = "is already invalid, so jobnet will not touch it: it breaks OpenSM's grammar";
const READS: &str = "is one OpenSM reads, but jobnet will not change it";

/// The block and merge refusals: in `stricter/`, refused by `ib check` for what they are, and
/// by `plan` without calling the file invalid.
#[test]
fn block_and_merge_refusals_are_stricter_cases() {
    let dir = Path::new("tests/opensm-cases/stricter");
    for (name, check_says, plan_says) in [
        (
            "job-partition-with-an-admin-pkey.conf",
            ":2:1: error: the partition `storage` (`storage=0x8010 : 0x0000000000100007=full;`) has PKey 0x0010, as job 7's partition `jobnet_7`",
            "OpenSM merges a job's partition in it with another partition of the same PKey",
        ),
        (
            "admin-partition-inside-the-managed-block.conf",
            ":3:1: error: 1 line(s) inside jobnet's managed block that jobnet did not write: line 3 `storage=0x0020 : 0x0000000000100007=full;`",
            "jobnet's managed block in it is broken or holds text jobnet did not write",
        ),
        (
            "begin-without-end.conf",
            ":2:1: error: `# BEGIN jobnet managed` has no matching `# END jobnet managed`",
            "jobnet's managed block in it is broken or holds text jobnet did not write",
        ),
    ] {
        let f = dir.join(name);
        assert!(f.is_file(), "{} is missing", f.display());
        let o = jobnet(&["ib", "check", f.to_str().unwrap()]);
        assert_eq!(o.code, 2, "{name}: {}", o.stderr);
        assert!(o.stderr.contains(check_says), "{name}: {}", o.stderr);
        assert!(
            o.stderr.contains("jobnet will not add or remove a job's partition in it"),
            "{name}: not an OpenSM verdict: {}",
            o.stderr
        );
        let o = plan_with(&f);
        assert_eq!(o.code, 2, "{name}: {}", o.stderr);
        let lead = format!("{} {READS}: {plan_says}", f.display());
        assert!(o.stderr.contains(&lead), "{name}: want {lead}\n{}", o.stderr);
        assert!(!o.stderr.contains(INVALID), "{name}: {}", o.stderr);
        assert!(!o.stderr.contains("fall back"), "{name}: {}", o.stderr);
        // What OpenSM makes of it, for the lab to show with smpquery: HCA port GUIDs of the
        // lab's fabric and full-member PKeys.
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("# opensm: ")).collect();
        assert!(!lines.is_empty(), "{name}: no `# opensm:` line");
        for l in lines {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert!(
                w.len() == 5
                    && ["0x100001", "0x100004", "0x100007", "0x10000a", "0x10000d", "0x100010"]
                        .contains(&w[2])
                    && ["shows", "lacks"].contains(&w[3])
                    && w[4].len() == 6
                    && w[4].starts_with("0x8"),
                "{name}: `{l}` is not `# opensm: GUID shows|lacks PKEY`"
            );
        }
    }
}

/// Every other file of the corpus that `plan` refuses is refused as invalid for OpenSM; the
/// ones it takes have no statement (it writes the Default partition first) or are accepted.
#[test]
fn plan_calls_only_opensm_refusals_invalid() {
    let mut refused = 0;
    for class in ["accept", "reject", "misread", "stricter"] {
        for f in cases(class) {
            let o = plan_with(&f);
            let name = f.display().to_string();
            let ours = std::fs::read_to_string(&f)
                .map(|t| t.lines().any(|l| l.starts_with("# opensm: ")))
                .unwrap_or(false);
            match (class, o.code) {
                ("accept", code) => assert_eq!(code, 0, "{name}: {}", o.stderr),
                (_, 0) => assert!(
                    format!("{}{}", o.stdout, o.stderr).contains("has no partition statements"),
                    "{name} was planned on: {}{}",
                    o.stdout,
                    o.stderr
                ),
                (_, 2) if ours => assert!(o.stderr.contains(READS), "{name}: {}", o.stderr),
                (_, 2) => {
                    refused += 1;
                    assert!(
                        o.stderr.contains(&format!("{name} {INVALID}")),
                        "{name}: {}",
                        o.stderr
                    );
                    assert!(!o.stderr.contains(READS), "{name}: {}", o.stderr);
                }
                (_, code) => panic!("{name}: exit {code}: {}", o.stderr),
            }
        }
    }
    assert!(refused >= 30, "{refused} refusals");
}
