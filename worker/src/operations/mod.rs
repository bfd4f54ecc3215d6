//! One module per operation. Each is idempotent: a re-adopted task runs it again from the top,
//! and it reads the database to find out how far the previous attempt got.
//!
//! `watch` follows a session's process group until it ends and records how it ended.

mod start_job;
mod stop_job;
mod stop_session;

use crate::process;
use entity::job_session;
use entity::state::{Outcome, SessionEvent, TransitionError};
use entity::store::sessions;
use entity::{Operation, SessionResult, SessionState, task};
use sea_orm::{DatabaseConnection, DbErr};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often process groups are polled for liveness.
pub const POLL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Ctx {
    pub db: DatabaseConnection,
    pub runner_id: String,
    pub grace: Duration,
}

pub async fn perform(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, DbErr> {
    match task.operation {
        Operation::StartJob => start_job::run(ctx, task, cancel).await,
        Operation::StopJob => stop_job::run(ctx, task, cancel).await,
        Operation::StopJobSession => stop_session::run(ctx, task, cancel).await,
    }
}

pub fn cancelled_before_start() -> Outcome {
    Outcome::failure("Task cancelled before it started; nothing was done.")
}

pub enum Exit {
    /// A process this runner spawned: its exit status is known.
    Child(tokio::process::Child),
    /// A process group re-adopted after a restart: it is polled, and its exit status is lost.
    Adopted(i32),
}

/// Waits for the session's process to end, then records the end.
pub fn watch(ctx: Ctx, session_id: String, exit: Exit) {
    tokio::spawn(async move {
        let ended = match exit {
            Exit::Child(mut child) => match child.wait().await {
                Ok(status) => Ended::Exited { how: process::describe_exit(&status), code: status.code() },
                Err(err) => Ended::Unknown(format!("could not wait for it: {err}")),
            },
            Exit::Adopted(pgid) => {
                while process::group_alive(pgid) {
                    tokio::time::sleep(POLL).await;
                }
                Ended::Unknown(format!(
                    "it ended while runner \"{}\" was restarting; its exit status is unknown",
                    ctx.runner_id
                ))
            }
        };
        record_end(&ctx, &session_id, ended).await;
    });
}

pub enum Ended {
    Exited { how: String, code: Option<i32> },
    Stopped(String),
    Unknown(String),
}

/// Moves the session to Stopped with a result that says how it ended. Whoever records first
/// wins (the watcher or the stop operation); a session already Stopped is left as it is.
pub async fn record_end(ctx: &Ctx, session_id: &str, ended: Ended) {
    loop {
        let session = match sessions::find(&ctx.db, session_id).await {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(%err, session_id, "cannot read the session; retrying");
                tokio::time::sleep(POLL * 5).await;
                continue;
            }
        };
        if session.state == SessionState::Stopped {
            return;
        }
        match sessions::transition(&ctx.db, &session, end_event(&session, &ended)).await {
            Ok(_) | Err(TransitionError::Illegal { .. }) => return,
            Err(TransitionError::Stale { .. }) => continue,
            Err(TransitionError::Db(err)) => {
                tracing::warn!(%err, session_id, "cannot record the session's end; retrying");
                tokio::time::sleep(POLL * 5).await;
            }
        }
    }
}

fn end_event(session: &job_session::Model, ended: &Ended) -> SessionEvent {
    let failed = |message: String, exit_code| SessionEvent::Ended {
        result: SessionResult::Failed,
        failure_message: Some(message),
        exit_code,
    };
    match ended {
        Ended::Stopped(how) => failed(format!("Stopped by user request: {how}."), None),
        Ended::Exited { how, code } if session.state == SessionState::Stopping => {
            failed(format!("Stopped by user request: the command {how}."), *code)
        }
        Ended::Exited { code: Some(0), .. } => {
            SessionEvent::Ended { result: SessionResult::Success, failure_message: None, exit_code: Some(0) }
        }
        Ended::Exited { how, code } => failed(format!("The job's command {how}."), *code),
        Ended::Unknown(how) => failed(format!("The job's command ended: {how}."), None),
    }
}
