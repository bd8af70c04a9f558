//! PBS Pro / OpenPBS / Torque `prologue` and `epilogue`: run as root on the mother superior with
//! the job id as argv[1] (then user, group; the epilogue adds name, session, limits, resources,
//! queue, account, exit code). The hook has no PBS_NODEFILE: the job's nodes are in
//! `$PBS_HOME/aux/<job id>`, one line per allocated CPU or vnode (repeated host names, maybe fully
//! qualified). Exit 1 aborts the job, other non-zero requeues it, 30 s limit (OpenPBS).

use super::{JobMeta, MetaError};
use crate::base::types::JobId;
use std::path::Path;

/// The job of a PBS prologue/epilogue: `args` are the hook's arguments after the program name.
/// Node names are the node file's, in order, once each; `known` decides between a fully
/// qualified name and its first label (topologies usually name nodes by their short name).
pub fn from_hook(
    args: &[String],
    pbs_home: &Path,
    known: &dyn Fn(&str) -> bool,
) -> Result<JobMeta, MetaError> {
    let id_text = args.first().ok_or_else(|| {
        MetaError(
            "PBS passes the job id as the first argument; run this as PBS's prologue/epilogue"
                .into(),
        )
    })?;
    let id = JobId::parse(id_text)
        .map_err(|e| MetaError(format!("PBS job id `{}`: {e}", id_text.escape_debug())))?;
    let file = pbs_home.join("aux").join(id_text);
    let text = crate::base::limits::read_text(&file, 16 << 20).map_err(|e| {
        MetaError(format!("{e}: the job's node file (check pbs_home in jobnet.yaml; PBS writes aux/<job id> on the mother superior)"))
    })?;
    let mut nodes: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let short = line.split('.').next().unwrap_or(line);
        let name = if known(line) || !known(short) {
            line
        } else {
            short
        };
        if !nodes.iter().any(|n| n == name) {
            nodes.push(name.to_string());
        }
    }
    if nodes.is_empty() {
        return Err(MetaError(format!("{} lists no node", file.display())));
    }
    let arg = |i: usize| args.get(i).filter(|v| !v.is_empty()).cloned();
    Ok(JobMeta {
        id,
        nodes,
        nodes_from: "the job's PBS node file",
        // The epilogue's argv: id user group name session limits resources queue account exit.
        partition: arg(7),
        user: arg(1),
        uid: None,
        gid: None,
        account: arg(8),
        texts: Vec::new(),
        restart_count: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_file_in_order_once_each_short_names() {
        let dir = std::env::temp_dir().join(format!("jobnet-pbs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("aux")).unwrap();
        std::fs::write(
            dir.join("aux").join("42.server"),
            "cn002.cluster.local\ncn002.cluster.local\ncn001.cluster.local\n",
        )
        .unwrap();
        let args: Vec<String> = ["42.server", "alice", "users"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let known = |n: &str| n.starts_with("cn") && !n.contains('.');
        let m = from_hook(&args, &dir, &known).unwrap();
        assert_eq!(m.nodes, ["cn002", "cn001"]);
        assert_eq!(m.user.as_deref(), Some("alice"));
        let e = from_hook(&["7.server".to_string()], &dir, &known).unwrap_err();
        assert!(e.0.contains("aux/7.server"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
