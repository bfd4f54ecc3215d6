//! StopWorkload: SIGTERM to every process of the workload, SIGKILL to all of them after the
//! grace period (`contain`), then the workload is recorded Stopped once none is left.
//!
//! One stop per workload at a time: every stop task of a workload joins the workload's stop flight
//! (`flights`), which performs the stop once, and all of them report its one outcome.
//!
//! Safe points for abandoning (when the last task of the flight is cancelled): before SIGTERM
//! (nothing is sent; a workload already recorded Stopping goes back to Running), and while
//! waiting out the grace period (SIGKILL is not sent; the workload goes back to Running if its
//! processes survived). Once SIGKILL is sent, the stop completes.
//! Before each signal the flight checks the runner's lease (`Ctx::guard`).

use super::flights::{Flight, Landing};
use super::{Ctx, OpError, POLL, cancelled_before_start, record_end};
use crate::contain::Handle;
use entity::outcome::{End, StopHow};
use entity::state::{Outcome, TransitionError, WorkloadEvent};
use entity::store::workloads;
use entity::workload;
use entity::{WorkloadState, task};
use sea_orm::DbErr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long to wait for a SIGKILLed group to vanish before reporting it.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What a stop flight did.
#[derive(Clone, Debug)]
pub enum StopReport {
    /// The workload was Stopped already (when the stop read it, or when its flight began).
    AlreadyStopped,
    /// Abandoned before anything was sent (the workload is as it was before the stop).
    NotStarted,
    /// The workload is Stopped now; how its processes ended.
    Stopped(StopHow),
    /// Abandoned in the grace period: no SIGKILL; processes still alive, and the workload's state.
    Abandoned { alive: usize, state: WorkloadState },
    /// Processes that outlived SIGKILL.
    Survived(Vec<i32>),
}

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    match workloads::find(&ctx.db, &task.target_id).await? {
        Some(workload) => stop(ctx, task, workload, cancel).await,
        None => Ok(Outcome::WorkloadGone { workload: task.target_id.clone() }),
    }
}

/// Joins (or starts) the workload's stop flight and reports its outcome. A cancelled task leaves
/// the flight; if it was the last one there, it waits for the flight to abandon and reports that.
pub async fn stop(
    ctx: &Ctx,
    task: &task::Model,
    workload: workload::Model,
    cancel: &CancellationToken,
) -> Result<Outcome, OpError> {
    if workload.runner_id != ctx.runner_id {
        return Ok(Outcome::WrongRunner {
            workload: workload.id,
            workload_name: workload.name,
            owner: workload.runner_id,
        });
    }
    if workload.state == WorkloadState::Stopped {
        // Final: a stopped workload never runs again (a start makes a new one).
        return Ok(outcome(workload, StopReport::AlreadyStopped));
    }
    if cancel.is_cancelled() {
        return Ok(cancelled_before_start(None));
    }
    let driver = ctx.clone();
    let workload_id = workload.id.clone();
    let flight = ctx.stops.join(&workload.id, task, move |flight| async move {
        match drive(&driver, &workload_id, &flight).await {
            Ok(report) => Landing::Done(report),
            Err(OpError::Db(err)) => Landing::Failed(err.to_string()),
            Err(OpError::StandDown) => Landing::StandDown,
        }
    });
    let landing = tokio::select! {
        landing = flight.landing() => landing,
        _ = cancel.cancelled() => {
            if !ctx.stops.leave(&flight, task.id) {
                return Ok(Outcome::LeftStop { workload: workload.id, workload_name: workload.name });
            }
            flight.landing().await
        }
    };
    match landing {
        Landing::Done(report) => Ok(outcome(workload, report)),
        Landing::Failed(err) => Err(DbErr::Custom(err).into()),
        Landing::StandDown => Err(OpError::StandDown),
    }
}

fn outcome(workload: workload::Model, report: StopReport) -> Outcome {
    let (workload, workload_name) = (workload.id, workload.name);
    match report {
        StopReport::AlreadyStopped => Outcome::AlreadyStopped { workload, workload_name },
        StopReport::NotStarted => cancelled_before_start(Some(workload)),
        StopReport::Stopped(how) => Outcome::Stopped { workload, workload_name, how },
        StopReport::Abandoned { alive, state } => Outcome::StopAbandoned { workload, workload_name, alive, state },
        StopReport::Survived(pids) => Outcome::Survived { workload, workload_name, pids },
    }
}

/// The stop itself, run once per flight.
async fn drive(ctx: &Ctx, workload_id: &str, flight: &Arc<Flight<StopReport>>) -> Result<StopReport, OpError> {
    let abandon = flight.abandon_token();
    let mut workload =
        workloads::find(&ctx.db, workload_id).await?.ok_or_else(|| DbErr::RecordNotFound(workload_id.into()))?;
    loop {
        match workload.state {
            WorkloadState::Stopped => return Ok(StopReport::AlreadyStopped),
            WorkloadState::Stopping => break,
            WorkloadState::Starting | WorkloadState::Running if abandon.is_cancelled() => {
                return Ok(StopReport::NotStarted);
            }
            WorkloadState::Starting => tokio::time::sleep(POLL).await,
            WorkloadState::Running => {
                match workloads::transition(&ctx.db, &workload, WorkloadEvent::StopRequested).await {
                    Ok(next) => {
                        workload = next;
                        break;
                    }
                    Err(TransitionError::Stale { .. } | TransitionError::Illegal { .. }) => {}
                    Err(TransitionError::Db(err)) => return Err(err.into()),
                }
            }
        }
        workload =
            workloads::find(&ctx.db, workload_id).await?.ok_or_else(|| DbErr::RecordNotFound(workload_id.into()))?;
    }
    let Some(handle) = Handle::of(&workload) else {
        record_end(ctx, &workload.id, End::Stopped { how: StopHow::NoProcess }).await;
        return Ok(StopReport::Stopped(StopHow::NoProcess));
    };

    crate::pause_point("stop_workload.stopping").await;
    if !may_signal(ctx, flight).await? {
        // Abandoned before anything was sent: the workload goes back to Running, as it was.
        give_up(ctx, &workload, &handle).await;
        return Ok(StopReport::NotStarted);
    }
    let sent = handle.terminate_async().await;
    tracing::info!(workload = %workload.id, sent, "SIGTERM sent");
    let sent_at = tokio::time::Instant::now();
    let how = loop {
        // The shortest grace any member asks for (a forced stop: none); it can shrink while the
        // stop is under way, when a forced stop joins.
        let grace_ms = grace_ms(ctx, flight);
        if !handle.alive_async().await {
            break if sent { StopHow::ExitedAfterSigterm } else { StopHow::AlreadyExited };
        }
        if abandon.is_cancelled() {
            return Ok(give_up(ctx, &workload, &handle).await);
        }
        if sent_at.elapsed() >= Duration::from_millis(grace_ms) {
            match may_signal(ctx, flight).await {
                Ok(true) => {}
                Ok(false) => return Ok(give_up(ctx, &workload, &handle).await),
                Err(err) => {
                    give_up(ctx, &workload, &handle).await;
                    return Err(err);
                }
            }
            handle.kill_async().await;
            tracing::info!(workload = %workload.id, "SIGKILL sent after the grace period");
            let kill_deadline = tokio::time::Instant::now() + KILL_WAIT;
            while handle.alive_async().await && tokio::time::Instant::now() < kill_deadline {
                // Without cgroup.kill, processes forked since the last round get theirs now.
                handle.kill_async().await;
                tokio::time::sleep(POLL).await;
            }
            if handle.alive_async().await {
                return Ok(StopReport::Survived(handle.members_async().await));
            }
            break StopHow::Killed { grace_ms };
        }
        tokio::time::sleep(POLL).await;
    };
    record_end(ctx, &workload.id, End::Stopped { how }).await;
    Ok(StopReport::Stopped(how))
}

/// Whether the flight may send its next signal: the lease allows it on behalf of a member
/// (`Ctx::guard`). `false` once the last member has left: the flight is abandoned and has no one
/// to act for, which is a cancel to honour, not a lost lease to stand down for.
async fn may_signal(ctx: &Ctx, flight: &Flight<StopReport>) -> Result<bool, OpError> {
    let members = flight.members();
    if members.is_empty() {
        return Ok(false);
    }
    ctx.guard(&members).await?;
    Ok(true)
}

fn grace_ms(ctx: &Ctx, flight: &Flight<StopReport>) -> u64 {
    let default_ms = u64::try_from(ctx.grace.as_millis()).unwrap_or(u64::MAX);
    flight.members().iter().map(|t| t.params().grace_ms(default_ms)).min().unwrap_or(default_ms)
}

/// Abandoning in the grace period: no SIGKILL, and the workload reports its true state.
async fn give_up(ctx: &Ctx, workload: &workload::Model, handle: &Handle) -> StopReport {
    let state = match workloads::transition(&ctx.db, workload, WorkloadEvent::StopAbandoned).await {
        Ok(next) => next.state,
        Err(_) => workloads::find(&ctx.db, &workload.id).await.ok().flatten().map_or(workload.state, |s| s.state),
    };
    StopReport::Abandoned { alive: handle.members_async().await.len(), state }
}
