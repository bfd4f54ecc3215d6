//! DeleteSpec: stops the spec's active workload, if it has one, then deletes the spec. The
//! deletion holds only while the spec has no active workload (`specs::mark_deleted`), and a
//! start that claims the spec meanwhile gives up when it finds it deleted, so no workload of a
//! deleted spec keeps running. Asked `only_if_stopped`, it leaves a running spec as it is.
//! Asked `remove_files`, it then removes the spec's working directory (its workloads' logs
//! are in it): nothing of a deleted sandbox stays on disk.

use super::{Ctx, OpError, stop_workload};
use entity::state::Outcome;
use entity::store::{specs, workloads};
use entity::task;
use tokio_util::sync::CancellationToken;

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    loop {
        let Some(spec) = specs::find(&ctx.db, &task.target_id).await? else {
            return Ok(Outcome::SpecGone { spec: task.target_id.clone() });
        };
        if let Some(workload) = workloads::active_of_spec(&ctx.db, &spec.id).await? {
            if task.params().only_if_stopped {
                return Ok(Outcome::KeptRunning { spec_name: spec.name });
            }
            let stopped = stop_workload::stop(ctx, task, workload, cancel).await?;
            if !stopped.success() {
                // Cancelled, or its processes survived: the spec stays.
                return Ok(stopped);
            }
        }
        ctx.guard(std::slice::from_ref(task)).await?;
        if specs::mark_deleted(&ctx.db, &spec).await? {
            if task.params().remove_files {
                remove_dir(spec.working_dir.clone()).await;
            }
            return Ok(Outcome::SpecDeleted { spec_name: spec.name });
        }
        // A start claimed it in between: stop that one too.
    }
}

/// Removes a deleted spec's working directory; a failure is logged (the spec is deleted all the
/// same, and a re-run finds it gone).
async fn remove_dir(dir: String) {
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err((dir, err)),
        _ => Ok(()),
    })
    .await;
    if let Ok(Err((dir, err))) = removed {
        tracing::warn!(%err, dir, "could not remove the deleted spec's working directory");
    }
}
