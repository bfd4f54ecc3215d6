//! StartJob: creates a backup job session and spawns the job's command as a new process group.
//!
//! Idempotent through `job_sessions.start_task_id`: a re-run of the same task finds the session
//! the first attempt created instead of starting a second one.

use super::{Ctx, Exit, cancelled_before_start, watch};
use crate::process;
use entity::job_session;
use entity::state::{Outcome, SessionEvent};
use entity::store::{jobs, sessions};
use entity::{SessionResult, SessionState, task};
use sea_orm::DbErr;
use std::path::Path;
use tokio_util::sync::CancellationToken;

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, DbErr> {
    let Some(job) = jobs::find(&ctx.db, &task.target_id).await? else {
        return Ok(Outcome::failure(format!("Job {} does not exist any more.", task.target_id)));
    };
    let triggered = Outcome::success(format!("Job \"{}\" triggered to start.", job.name));
    let session = match sessions::find_by_start_task(&ctx.db, task.id).await? {
        Some(session) if session.state != SessionState::Starting => {
            return Ok(triggered.with_session(session.id));
        }
        Some(session) => session,
        None => {
            if cancel.is_cancelled() {
                return Ok(cancelled_before_start());
            }
            if let Some(running) = sessions::active_of_job(&ctx.db, &job.id).await? {
                return Ok(Outcome::failure(format!(
                    "Job \"{}\" is already running (session \"{}\").",
                    job.name, running.name
                ))
                .with_session(running.id));
            }
            let now = entity::store::now();
            sessions::insert(
                &ctx.db,
                job_session::Model {
                    id: uuid::Uuid::new_v4().to_string(),
                    job_id: job.id.clone(),
                    job_name: job.name.clone(),
                    job_type: job.job_type.clone(),
                    name: format!("{}@{}", job.name, now.format("%Y-%m-%d %H:%M:%S")),
                    state: SessionState::Starting,
                    result: SessionResult::None,
                    progress: 0,
                    failure_message: None,
                    creation_time: now,
                    end_time: None,
                    runner_id: ctx.runner_id.clone(),
                    pid: None,
                    exit_code: None,
                    start_task_id: task.id,
                },
            )
            .await?
        }
    };
    let working_dir = Path::new(&job.working_dir);
    let log = working_dir.join(format!("{}.log", session.id));
    match process::spawn(&job.argv(), working_dir, &log) {
        Ok(child) => {
            let pid = child.id().and_then(|pid| i32::try_from(pid).ok()).unwrap_or_default();
            // The watcher must exist before the transition: a command that exits at once is still reaped.
            watch(ctx.clone(), session.id.clone(), Exit::Child(child));
            if let Err(err) = sessions::transition(&ctx.db, &session, SessionEvent::Started { pid }).await {
                tracing::warn!(%err, session = %session.id, "could not record the start");
            }
            tracing::info!(session = %session.id, pid, job = %job.name, "job started");
            Ok(triggered.with_session(session.id))
        }
        Err(err) => {
            let message = format!("Job \"{}\" could not start: {err}.", job.name);
            let ended = SessionEvent::Ended {
                result: SessionResult::Failed,
                failure_message: Some(message.clone()),
                exit_code: None,
            };
            if let Err(err) = sessions::transition(&ctx.db, &session, ended).await {
                tracing::warn!(%err, session = %session.id, "could not record the failed start");
            }
            Ok(Outcome::failure(message).with_session(session.id))
        }
    }
}
