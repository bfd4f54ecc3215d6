//! DeleteSpec: stops the spec's active workload, if it has one, then deletes the spec. The
//! deletion holds only while the spec has no active workload (`specs::mark_deleted`), and a
//! start that claims the spec meanwhile gives up when it finds it deleted, so no workload of a
//! deleted spec keeps running. Asked `only_if_stopped`, it leaves a running spec as it is.

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
            return Ok(Outcome::SpecDeleted { spec_name: spec.name });
        }
        // A start claimed it in between: stop that one too.
    }
}
