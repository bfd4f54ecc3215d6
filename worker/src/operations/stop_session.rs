//! StopJobSession: SIGTERM to the session's process group, SIGKILL after the grace period,
//! then the session is recorded Stopped.
//!
//! Safe points for cancellation: before SIGTERM (nothing is done), and while waiting out the
//! grace period (SIGKILL is not sent; the session goes back to Working if its processes
//! survived). Once SIGKILL is sent, the stop completes.

use super::{Ctx, Ended, OpError, POLL, cancelled_before_start, record_end};
use crate::process::{self, SIGKILL, SIGTERM};
use entity::job_session;
use entity::state::{Outcome, SessionEvent, TransitionError};
use entity::store::sessions;
use entity::{SessionState, task};
use sea_orm::DbErr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long to wait for a SIGKILLed group to vanish before reporting it.
const KILL_WAIT: Duration = Duration::from_secs(10);

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    match sessions::find(&ctx.db, &task.target_id).await? {
        Some(session) => stop(ctx, task, session, cancel).await,
        None => Ok(Outcome::failure(format!("Job Session {} does not exist.", task.target_id))),
    }
}

pub async fn stop(
    ctx: &Ctx,
    task: &task::Model,
    mut session: job_session::Model,
    cancel: &CancellationToken,
) -> Result<Outcome, OpError> {
    let name = session.name.clone();
    if session.runner_id != ctx.runner_id {
        return Ok(Outcome::failure(format!(
            "Job Session \"{name}\" belongs to runner \"{}\", not to this one.",
            session.runner_id
        )));
    }
    loop {
        match session.state {
            SessionState::Stopped => {
                return Ok(
                    Outcome::success(format!("Job Session \"{name}\" is already stopped.")).with_session(session.id)
                );
            }
            SessionState::Stopping => break,
            SessionState::Starting | SessionState::Working if cancel.is_cancelled() => {
                return Ok(cancelled_before_start());
            }
            SessionState::Starting => {
                tokio::time::sleep(POLL).await;
            }
            SessionState::Working => match sessions::transition(&ctx.db, &session, SessionEvent::StopRequested).await {
                Ok(next) => {
                    session = next;
                    break;
                }
                Err(TransitionError::Stale { .. } | TransitionError::Illegal { .. }) => {}
                Err(TransitionError::Db(err)) => return Err(DbErr::Custom(err.0).into()),
            },
        }
        session =
            sessions::find(&ctx.db, &session.id).await?.ok_or_else(|| DbErr::RecordNotFound(session.id.clone()))?;
    }
    let Some(pgid) = session.pid else {
        record_end(ctx, &session.id, Ended::Stopped("it had no process".into())).await;
        return Ok(
            Outcome::success(format!("Job Session \"{name}\" stopped: it had no process.")).with_session(session.id)
        );
    };

    ctx.guard(task).await?;
    let sent = process::signal_group(pgid, SIGTERM).unwrap_or(false);
    tracing::info!(session = %session.id, pgid, sent, "SIGTERM sent");
    let deadline = tokio::time::Instant::now() + ctx.grace;
    let how = loop {
        if !process::group_alive(pgid) {
            break if sent { "its processes exited after SIGTERM" } else { "its processes had already exited" }
                .to_owned();
        }
        if cancel.is_cancelled() {
            return Ok(abandon(ctx, &session, pgid).await);
        }
        if tokio::time::Instant::now() >= deadline {
            if let Err(err) = ctx.guard(task).await {
                abandon(ctx, &session, pgid).await;
                return Err(err);
            }
            let _ = process::signal_group(pgid, SIGKILL);
            tracing::info!(session = %session.id, pgid, "SIGKILL sent after the grace period");
            let kill_deadline = tokio::time::Instant::now() + KILL_WAIT;
            while process::group_alive(pgid) && tokio::time::Instant::now() < kill_deadline {
                tokio::time::sleep(POLL).await;
            }
            if process::group_alive(pgid) {
                return Ok(Outcome::failure(format!(
                    "Job Session \"{name}\": processes {:?} survived SIGKILL.",
                    process::group_members(pgid)
                ))
                .with_session(session.id));
            }
            break format!(
                "its processes ignored SIGTERM for {} ms and were killed with SIGKILL",
                ctx.grace.as_millis()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    record_end(ctx, &session.id, Ended::Stopped(how.clone())).await;
    Ok(Outcome::success(format!("Job Session \"{name}\" stopped: {how}.")).with_session(session.id))
}

/// Cancellation during the grace period: no SIGKILL, and the session reports its true state.
async fn abandon(ctx: &Ctx, session: &job_session::Model, pgid: i32) -> Outcome {
    let state = match sessions::transition(&ctx.db, session, SessionEvent::StopAbandoned).await {
        Ok(next) => next.state,
        Err(_) => sessions::find(&ctx.db, &session.id).await.ok().flatten().map_or(session.state, |s| s.state),
    };
    let alive = process::group_members(pgid).len();
    Outcome::failure(format!(
        "Task cancelled: the stop of Job Session \"{}\" was abandoned after SIGTERM without SIGKILL; {alive} process(es) still running, session is {state}.",
        session.name
    ))
    .with_session(session.id.clone())
}
