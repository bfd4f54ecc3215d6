//! StopJob: stops the job's running session.

use super::{Ctx, OpError, stop_session};
use entity::state::Outcome;
use entity::store::{jobs, sessions};
use entity::task;
use tokio_util::sync::CancellationToken;

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    let Some(job) = jobs::find(&ctx.db, &task.target_id).await? else {
        return Ok(Outcome::failure(format!("Job {} does not exist any more.", task.target_id)));
    };
    match sessions::active_of_job(&ctx.db, &job.id).await? {
        Some(session) => stop_session::stop(ctx, task, session, cancel).await,
        None => Ok(Outcome::success(format!("Job \"{}\" is not running; nothing to stop.", job.name))),
    }
}
