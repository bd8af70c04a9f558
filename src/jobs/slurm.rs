//! Slurm's PrologSlurmctld / EpilogSlurmctld: the job from the hook's environment (no arguments,
//! no PATH; field notes list what Slurm 22.05 sets). SLURM_JOB_NODELIST is a compressed hostlist
//! (`node[001,003-004]`). A request may be in `--comment` (SLURM_JOB_COMMENT) or, on newer Slurm,
//! `--extra` (SLURM_JOB_EXTRA).

use super::{JobMeta, MetaError};
use crate::base::hostlist;
use crate::base::types::JobId;

/// The job of a Slurm controller hook, from `env` (the environment). Slurm writes `(null)` for
/// a value it does not have (SLURM_JOB_ACCOUNT without `-A`): that is no value.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<JobMeta, MetaError> {
    let get = |k: &str| env(k).filter(|v| v != "(null)");
    let need = |k: &str| {
        get(k).filter(|v| !v.is_empty()).ok_or_else(|| {
            MetaError(format!(
                "{k} is not set: run this as Slurm's PrologSlurmctld/EpilogSlurmctld (slurm.conf), not by hand"
            ))
        })
    };
    let id_text = need("SLURM_JOB_ID")?;
    let id = JobId::parse(&id_text)
        .map_err(|e| MetaError(format!("SLURM_JOB_ID `{}`: {e}", id_text.escape_debug())))?;
    let list = need("SLURM_JOB_NODELIST")?;
    let nodes = hostlist::expand(&list)
        .map_err(|e| MetaError(format!("SLURM_JOB_NODELIST `{}`: {e}", list.escape_debug())))?;
    let number = |k: &str| get(k).and_then(|v| v.parse::<u32>().ok());
    let texts = [
        "SLURM_JOB_COMMENT",
        "SLURM_JOB_EXTRA",
        "SLURM_JOB_CONSTRAINTS",
    ]
    .iter()
    .filter_map(|k| get(k).filter(|v| !v.is_empty()).map(|v| (k.to_string(), v)))
    .collect();
    Ok(JobMeta {
        id,
        nodes,
        nodes_from: "SLURM_JOB_NODELIST",
        partition: get("SLURM_JOB_PARTITION").filter(|v| !v.is_empty()),
        user: get("SLURM_JOB_USER").filter(|v| !v.is_empty()),
        uid: number("SLURM_JOB_UID"),
        gid: number("SLURM_JOB_GID"),
        account: get("SLURM_JOB_ACCOUNT").filter(|v| !v.is_empty()),
        texts,
        restart_count: number("SLURM_JOB_RESTART_COUNT").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_slurm_sets() {
        let env = |k: &str| {
            match k {
                "SLURM_JOB_ID" => Some("1234"),
                "SLURM_JOB_NODELIST" => Some("node[001,003-004]"),
                "SLURM_JOB_PARTITION" => Some("vm"),
                "SLURM_JOB_USER" => Some("alice"),
                "SLURM_JOB_UID" => Some("1001"),
                "SLURM_JOB_COMMENT" => Some("run 3 jobnet:vms=2"),
                "SLURM_JOB_RESTART_COUNT" => Some("2"),
                _ => None,
            }
            .map(str::to_string)
        };
        let m = from_env(&env).unwrap();
        assert_eq!(m.nodes, ["node001", "node003", "node004"]);
        assert_eq!((m.uid, m.restart_count), (Some(1001), 2));
        assert_eq!(
            m.texts,
            [(
                "SLURM_JOB_COMMENT".to_string(),
                "run 3 jobnet:vms=2".to_string()
            )]
        );
        let none = |_: &str| None;
        assert!(from_env(&none)
            .unwrap_err()
            .0
            .contains("SLURM_JOB_ID is not set"));
    }
}
