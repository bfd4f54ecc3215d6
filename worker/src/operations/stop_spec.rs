//! StopSpec: stops the spec's (the spec's) active workload, if it has one.

use super::{Ctx, OpError, stop_workload};
use entity::state::Outcome;
use entity::store::{specs, workloads};
use entity::task;
use tokio_util::sync::CancellationToken;

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    let Some(spec) = specs::find(&ctx.db, &task.target_id).await? else {
        return Ok(Outcome::SpecGone { spec: task.target_id.clone() });
    };
    match workloads::active_of_spec(&ctx.db, &spec.id).await? {
        Some(workload) => stop_workload::stop(ctx, task, workload, cancel).await,
        None => Ok(Outcome::NothingToStop { spec_name: spec.name }),
    }
}
