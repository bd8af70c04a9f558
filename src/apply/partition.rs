//! The job's InfiniBand partition as one journaled operation of device `opensm`: a locked,
//! grammar-checked, atomic update of partitions.conf, a coalesced reload, verification on the
//! member ports; and its undo. Standby subnet managers get the file before each reload.

use super::Env;
use crate::plan;
use crate::state::JournalRow;
use crate::transport::Target;

/// The journal's device name and driver for a job's partition in partitions.conf.
pub(super) const OPENSM: &str = "opensm";

#[derive(serde::Serialize, serde::Deserialize)]
struct PartitionOp {
    op: String,
    job: String,
    partition: String,
    pkey: String,
    settings: crate::opensm::IbApply,
}

/// The job's partition: locked, checked, atomic write; coalesced reload; verification.
pub(super) fn apply(
    env: &Env,
    job: &str,
    settings: &crate::opensm::IbApply,
    ib: &plan::IbPlan,
) -> Result<(), String> {
    let target = Target {
        name: OPENSM.into(),
        driver: OPENSM.into(),
        address: settings.partitions_conf.display().to_string(),
        credentials: None,
        legacy: false,
    };
    let op = PartitionOp {
        op: "partition".into(),
        job: job.into(),
        partition: ib.partition.clone(),
        pkey: ib.pkey.to_string(),
        settings: settings.clone(),
    };
    let apply = vec![format!(
        "add partition {} {} with {} member(s) to {}",
        ib.partition,
        ib.pkey,
        ib.members.len(),
        target.address
    )];
    let undo = vec![format!(
        "remove partition {} from {}",
        ib.partition, target.address
    )];
    let id = env
        .store
        .journal_intent(
            job,
            &target,
            0,
            &serde_json::to_string(&op).expect("json"),
            &apply,
            &undo,
        )
        .map_err(|e| e.to_string())?;
    let result = (|| -> Result<(), String> {
        env.failpoints
            .hit("intent", OPENSM, &apply[0])
            .map_err(|e| e.to_string())?;
        let partition = crate::partitions::Partition {
            job: job.into(),
            name: ib.partition.clone(),
            pkey: ib.pkey,
            ipoib: ib.ipoib,
            flags: ib.flags.clone(),
            members: ib.members.clone(),
        };
        let updated = crate::partitions::file::update(&settings.partitions_conf, env.wait, |c| {
            c.with_partition(&partition)
        })
        .map_err(|e| e.to_string())?;
        crate::opensm::reload_coalesced(settings, updated.generation, &|text| {
            push_standbys(env, settings, text)
        })?;
        let guids: Vec<String> = ib.members.iter().map(|g| g.to_string()).collect();
        crate::opensm::verify(settings, &guids, &format!("{:#06x}", ib.pkey.full_member()))
            .map_err(|e| format!("opensm: {e}"))?;
        env.failpoints
            .hit("done", OPENSM, &apply[0])
            .map_err(|e| e.to_string())
    })();
    match &result {
        Ok(()) => env
            .store
            .journal_set(id, "done", "")
            .map_err(|e| e.to_string())?,
        Err(e) => {
            let _ = env.store.journal_set(id, "failed", e);
        }
    }
    result
}

/// Removes a job's partition again (keeps going, like every undo). Restoring the file is what
/// counts: OpenSM re-reads it on every heavy sweep, so a failed reload (OpenSM not running, say)
/// only delays when the partition disappears and is noted, not failed.
pub(super) fn undo(env: &Env, rows: Vec<JournalRow>) -> Vec<String> {
    let mut errors = Vec::new();
    for r in rows {
        let certain = matches!(r.status.as_str(), "done" | "undo-failed");
        let restored =
            (|| -> Result<(crate::opensm::IbApply, crate::partitions::file::Updated), String> {
                env.failpoints
                    .hit(
                        "undo",
                        OPENSM,
                        r.undo.first().map(String::as_str).unwrap_or(""),
                    )
                    .map_err(|e| e.to_string())?;
                let op: PartitionOp = serde_json::from_str(&r.op).map_err(|e| {
                    format!("journal row {} is not a partition operation: {e}", r.id)
                })?;
                let updated =
                    crate::partitions::file::update(&op.settings.partitions_conf, env.wait, |c| {
                        c.without_job(&op.job)
                    })
                    .map_err(|e| e.to_string())?;
                Ok((op.settings, updated))
            })();
        match restored {
            // Called even when the file was already restored: a standby copy may still lag.
            Ok((settings, updated)) => {
                match crate::opensm::reload_coalesced(&settings, updated.generation, &|text| {
                    push_standbys(env, &settings, text)
                }) {
                    Ok(_) => {
                        let _ = env.store.journal_set(r.id, "undone", "");
                    }
                    // A standby that still grants the PKey would bring it back on failover.
                    Err(e) if e.starts_with("standby SM:") && certain => {
                        let _ = env.store.journal_set(r.id, "undo-failed", &e);
                        errors.push(e);
                    }
                    Err(e) => {
                        let note = format!(
                            "file restored; {e}: OpenSM applies it at its next heavy sweep"
                        );
                        let _ = env.store.journal_set(r.id, "undone", &note);
                    }
                }
            }
            Err(e) => errors.extend(super::device::record_undo(env, &r, Err(e))),
        }
    }
    errors
}

/// Installs `text` as partitions.conf on every standby SM, so a failover keeps the partitions.
fn push_standbys(env: &Env, settings: &crate::opensm::IbApply, text: &str) -> Result<(), String> {
    let errors: Vec<String> = settings
        .standbys
        .iter()
        .filter_map(|s| {
            env.connector
                .install_file(&s.target(), &s.partitions_conf, text)
                .err()
        })
        .map(|e| format!("standby SM: {e}"))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
