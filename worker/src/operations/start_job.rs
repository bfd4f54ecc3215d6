//! StartWorkload: creates a job session (a workload of the job, its spec) and spawns the job's
//! command as a new process group.
//!
//! - One active session per job: inserting the session claims the job (a unique column, see
//!   `sessions::insert`), so racing starts of one idle job start it once; the others finish
//!   with "already running".
//! - Idempotent through `job_sessions.start_task_id`: a re-run of the same task finds the session
//!   the first attempt created instead of starting a second one.
//! - The handle is durable before the command runs: the process is spawned behind its gate
//!   (`process::spawn_gated`), its pid is recorded with the session's `Started` transition, and
//!   only then is the gate released. A runner that dies in between leaves a gate that exits
//!   without running the command, so the re-run spawns it exactly once.

use super::{Ctx, Exit, OpError, cancelled_before_start, record_end, watch};
use crate::process;
use entity::outcome::{End, Unobserved};
use entity::state::{Outcome, SessionEvent};
use entity::store::{jobs, sessions};
use entity::{WorkloadState, job, job_session, task};
use std::path::Path;
use tokio_util::sync::CancellationToken;

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    let Some(job) = jobs::find(&ctx.db, &task.target_id).await? else {
        return Ok(Outcome::SpecGone { spec: task.target_id.clone() });
    };
    let started =
        |session: &job_session::Model| Outcome::Started { workload: session.id.clone(), spec_name: job.name.clone() };
    let session = match sessions::find_by_start_task(&ctx.db, task.id).await? {
        Some(session) if session.state != WorkloadState::Starting => return Ok(started(&session)),
        Some(session) => session,
        None if cancel.is_cancelled() => return Ok(cancelled_before_start(None)),
        None => match claim_job(ctx, task, &job).await? {
            Ok(session) => session,
            Err(running) => {
                return Ok(Outcome::AlreadyRunning {
                    workload: running.id,
                    workload_name: running.name,
                    spec_name: job.name.clone(),
                });
            }
        },
    };

    ctx.guard(std::slice::from_ref(task)).await?;
    let working_dir = Path::new(&job.working_dir);
    let log = working_dir.join(format!("{}.log", session.id));
    let spawned =
        job.argv().map_err(std::io::Error::other).and_then(|argv| process::spawn_gated(&argv, working_dir, &log));
    let gated = match spawned {
        Ok(gated) => gated,
        Err(err) => {
            let ended = SessionEvent::Ended(End::StartFailed { reason: err.to_string() });
            sessions::transition(&ctx.db, &session, ended).await?;
            return Ok(Outcome::StartFailed { workload: session.id, spec_name: job.name, reason: err.to_string() });
        }
    };
    let pid = gated.pgid().get();
    let recorded = match crate::fault_point("start_job.spawned") {
        Ok(()) => sessions::transition(&ctx.db, &session, SessionEvent::Started { pid }).await.map_err(OpError::from),
        Err(err) => Err(err.into()),
    };
    if let Err(err) = recorded {
        // The command has not run, and nothing records its process: end it; the re-run spawns anew.
        gated.abort().await;
        return Err(err);
    }
    if let Err(err) = ctx.guard(std::slice::from_ref(task)).await {
        gated.abort().await;
        record_end(ctx, &session.id, End::Unobserved { why: Unobserved::LeaseLost }).await;
        return Err(err);
    }
    watch(ctx.clone(), session.id.clone(), Exit::Child(gated.release().await));
    tracing::info!(session = %session.id, pid, job = %job.name, "job started");
    Ok(started(&session))
}

/// Inserts this task's session, which claims the job. `Err(session)`: the job's active session,
/// inserted by another start.
async fn claim_job(
    ctx: &Ctx,
    task: &task::Model,
    job: &job::Model,
) -> Result<Result<job_session::Model, job_session::Model>, OpError> {
    loop {
        let now = entity::store::now();
        let new = job_session::Model {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: job.tenant_id,
            job_id: job.id.clone(),
            job_name: job.name.clone(),
            job_type: job.job_type.clone(),
            name: format!("{}@{}", job.name, now.format("%Y-%m-%d %H:%M:%S")),
            state: WorkloadState::Starting,
            ending: None,
            creation_time: now,
            end_time: None,
            runner_id: ctx.runner_id.clone(),
            pid: None,
            exit_code: None,
            start_task_id: task.id,
            active_job_id: None,
        };
        match sessions::insert(&ctx.db, new).await {
            Ok(session) => return Ok(Ok(session)),
            Err(err) if sessions::is_job_taken(&err) => {
                // Another start holds the job, or an earlier attempt of this task inserted first.
                if let Some(mine) = sessions::find_by_start_task(&ctx.db, task.id).await? {
                    return Ok(Ok(mine));
                }
                if let Some(running) = sessions::active_of_job(&ctx.db, &job.id).await? {
                    return Ok(Err(running));
                }
                // The other session ended in between: the job is free again.
            }
            Err(err) => return Err(err.into()),
        }
    }
}
