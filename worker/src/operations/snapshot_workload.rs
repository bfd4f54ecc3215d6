//! SnapshotWorkload: stops the workload (joining its stop flight, like StopWorkload), then
//! archives its spec's working directory as the task's snapshot (`TaskParams::snapshot`, a
//! `pending` row the face wrote), and marks the snapshot `created` with its size, or `failed`.
//! A re-run finds the snapshot no longer pending and reports what it became. One deleted while
//! it was being taken keeps no archive.

use super::{Ctx, OpError, stop_workload};
use entity::state::Outcome;
use entity::store::{snapshots, specs, workloads};
use entity::{WorkloadState, task};
use std::path::Path;
use tokio_util::sync::CancellationToken;

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    let id = task.params().snapshot.unwrap_or_default();
    let failed = |reason: &str| Outcome::SnapshotFailed { snapshot: id.clone(), reason: reason.to_owned() };
    let Some(snapshot) = snapshots::find(&ctx.db, &id).await? else {
        return Ok(failed("no such snapshot"));
    };
    let Some(workload) = workloads::find(&ctx.db, &task.target_id).await? else {
        snapshots::set_status(&ctx.db, &id, snapshots::PENDING, snapshots::FAILED, None).await?;
        return Ok(Outcome::WorkloadGone { workload: task.target_id.clone() });
    };
    let Some(spec) = specs::find(&ctx.db, &workload.spec_id).await? else {
        snapshots::set_status(&ctx.db, &id, snapshots::PENDING, snapshots::FAILED, None).await?;
        return Ok(Outcome::SpecGone { spec: workload.spec_id.clone() });
    };
    let taken = |size_bytes| Outcome::Snapshotted {
        workload: workload.id.clone(),
        spec_name: spec.name.clone(),
        snapshot: id.clone(),
        size_bytes,
    };
    match snapshot.status.as_str() {
        snapshots::PENDING => {}
        snapshots::CREATED => return Ok(taken(snapshot.size_bytes)),
        _ => return Ok(failed("it was not taken")),
    }
    if workload.state != WorkloadState::Stopped {
        let stopped = stop_workload::stop(ctx, task, workload.clone(), cancel).await?;
        if !stopped.success() {
            // Cancelled, or processes survived: nothing is archived of a live directory.
            snapshots::set_status(&ctx.db, &id, snapshots::PENDING, snapshots::FAILED, None).await?;
            return Ok(stopped);
        }
    }
    ctx.guard(std::slice::from_ref(task)).await?;
    match crate::archive::pack(Path::new(&spec.working_dir), Path::new(&snapshot.path)).await {
        Ok(size) => {
            let size = i64::try_from(size).unwrap_or(i64::MAX);
            if !snapshots::set_status(&ctx.db, &id, snapshots::PENDING, snapshots::CREATED, Some(size)).await? {
                // Deleted while it was being taken (its expiry came first): nothing is kept.
                super::delete_snapshot::remove_archive(&snapshot.path).await;
                return Ok(failed("it was deleted while it was being taken"));
            }
            Ok(taken(size))
        }
        Err(err) => {
            tracing::warn!(%err, snapshot = %id, "could not archive the working directory");
            snapshots::set_status(&ctx.db, &id, snapshots::PENDING, snapshots::FAILED, None).await?;
            Ok(failed(&err.to_string()))
        }
    }
}
