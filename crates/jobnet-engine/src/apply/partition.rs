//! The job's InfiniBand partition as one journaled operation of device `opensm`: a locked,
//! grammar-checked, atomic update of partitions.conf, a coalesced reload, verification on the
//! member ports; and its undo. Standby subnet managers get the file before each reload.

use super::faults::Point;
use super::{Env, Failure};
use crate::base::types::JobId;
use crate::drivers::transport::Target;
use crate::ib::opensm::{self, OpenSmError};
use crate::ib::partitions::{self, file};
use crate::plan;
use crate::state::{DeviceRecord, JournalOp, JournalRow, JournalStatus, PartitionRecord};
use crate::topology::{IbApply, Standby};

/// The journal's device name and driver for a job's partition in partitions.conf.
pub(super) const OPENSM: &str = "opensm";

fn record(settings: &IbApply) -> DeviceRecord {
    DeviceRecord {
        name: OPENSM.into(),
        driver: OPENSM.into(),
        address: settings.partitions_conf.display().to_string(),
        credentials: None,
        legacy: false,
    }
}

/// The job's partition: locked, checked, atomic write; coalesced reload; verification.
pub(super) fn apply(
    env: &Env,
    job: &JobId,
    settings: &IbApply,
    ib: &plan::IbPlan,
) -> Result<(), Failure> {
    let device = record(settings);
    let op = JournalOp::Partition(PartitionRecord {
        job: job.to_string(),
        partition: ib.partition.clone(),
        pkey: ib.pkey,
        settings: settings.clone(),
    });
    let apply = vec![format!(
        "add partition {} {} with {} member(s) to {}",
        ib.partition,
        ib.pkey,
        ib.members.len(),
        device.address
    )];
    let undo = vec![format!(
        "remove partition {} from {}",
        ib.partition, device.address
    )];
    let id = env
        .store
        .journal_intent(job, &device, 0, &op, &apply, &undo)?;
    let result = (|| -> Result<(), Failure> {
        env.faults.hit(Point::Intent, OPENSM, &apply[0])?;
        let partition = partitions::Partition {
            job: job.to_string(),
            name: ib.partition.clone(),
            pkey: ib.pkey,
            ipoib: ib.ipoib,
            flags: ib.flags.clone(),
            members: ib.members.clone(),
        };
        let updated = file::update(&settings.partitions_conf, env.wait, |c| {
            c.with_partition(&partition)
        })
        .map_err(OpenSmError::from)?;
        opensm::reload_coalesced(settings, updated.generation, env.wait, &|text| {
            push_standbys(env, settings, text)
        })?;
        let guids: Vec<String> = ib.members.iter().map(|g| g.to_string()).collect();
        opensm::verify(settings, &guids, &format!("{:#06x}", ib.pkey.full_member()))?;
        env.faults.hit(Point::Done, OPENSM, &apply[0])?;
        Ok(())
    })();
    match &result {
        Ok(()) => env.store.journal_set(id, JournalStatus::Done, "")?,
        Err(e) => {
            let _ = env
                .store
                .journal_set(id, JournalStatus::Failed, &e.to_string());
        }
    }
    result
}

/// Removes a job's partition again (keeps going, like every undo). Restoring the file is what
/// counts: OpenSM re-reads it on every heavy sweep, so a failed reload (OpenSM not running, say)
/// only delays when the partition disappears and is noted, not failed — except for a standby SM
/// that still has the old file: it would bring the partition back on failover.
pub(super) fn undo(env: &Env, rows: Vec<JournalRow>) -> Vec<Failure> {
    let mut errors = Vec::new();
    for r in rows {
        let restored = (|| -> Result<(IbApply, file::Updated), Failure> {
            env.faults.hit(
                Point::Undo,
                OPENSM,
                r.undo.first().map(String::as_str).unwrap_or(""),
            )?;
            let JournalOp::Partition(p) = &r.op else {
                return Err(Failure::Driver {
                    device: OPENSM.into(),
                    why: format!("journal row {} is not a partition operation", r.id),
                });
            };
            let updated = file::update(&p.settings.partitions_conf, env.wait, |c| {
                c.without_job(&p.job)
            })
            .map_err(OpenSmError::from)?;
            Ok((p.settings.clone(), updated))
        })();
        match restored {
            // Called even when the file was already restored: a standby copy may still lag.
            Ok((settings, updated)) => {
                let reloaded =
                    opensm::reload_coalesced(&settings, updated.generation, env.wait, &|text| {
                        push_standbys(env, &settings, text)
                    });
                match reloaded {
                    Ok(_) => {
                        let _ = env.store.journal_set(r.id, JournalStatus::Undone, "");
                    }
                    Err(e) if e.is_standby() && r.status.certain() => {
                        let _ =
                            env.store
                                .journal_set(r.id, JournalStatus::UndoFailed, &e.to_string());
                        errors.push(e.into());
                    }
                    Err(e) => {
                        let note = format!(
                            "file restored; {e}: OpenSM applies it at its next heavy sweep"
                        );
                        let _ = env.store.journal_set(r.id, JournalStatus::Undone, &note);
                    }
                }
            }
            Err(e) => errors.extend(super::device::record_undo(env, &r, Err(e))),
        }
    }
    errors
}

fn standby_target(s: &Standby) -> Target {
    Target::new(
        &s.name,
        OPENSM,
        &s.address,
        s.credentials.as_deref(),
        s.ssh_legacy,
    )
}

/// Installs `text` as partitions.conf on every standby SM, so a failover keeps the partitions.
fn push_standbys(env: &Env, settings: &IbApply, text: &str) -> Result<(), OpenSmError> {
    let errors: Vec<_> = settings
        .standbys
        .iter()
        .filter_map(|s| {
            env.connector
                .install_file(&standby_target(s), &s.partitions_conf, text)
                .err()
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(OpenSmError::Standby(errors))
    }
}
