//! StopSpec: stops the job's (the spec's) active session, if it has one.

use super::{Ctx, OpError, stop_session};
use entity::state::Outcome;
use entity::store::{jobs, sessions};
use entity::task;
use tokio_util::sync::CancellationToken;

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    let Some(job) = jobs::find(&ctx.db, &task.target_id).await? else {
        return Ok(Outcome::SpecGone { spec: task.target_id.clone() });
    };
    match sessions::active_of_job(&ctx.db, &job.id).await? {
        Some(session) => stop_session::stop(ctx, task, session, cancel).await,
        None => Ok(Outcome::NothingToStop { spec_name: job.name }),
    }
}
