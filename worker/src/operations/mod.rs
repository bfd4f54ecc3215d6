//! One module per operation. Each is idempotent: a re-adopted task runs it again from the top,
//! and it reads the database to find out how far the previous attempt got.
//!
//! `watch` follows a workload's process group until it ends and records how it ended.

mod delete_snapshot;
mod delete_spec;
mod flights;
mod snapshot_workload;
mod start_workload;
mod stop_spec;
mod stop_workload;

use crate::contain::{Handle, Sampler};
use crate::lease::Lease;
use crate::process;
use entity::outcome::{End, Unobserved};
use entity::state::{Outcome, TransitionError, WorkloadEvent};
use entity::store::{tasks, workloads};
use entity::{Operation, TaskState, WorkloadState, task};
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often process groups are polled for liveness.
pub const POLL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Ctx {
    pub db: DatabaseConnection,
    /// How this runner contains the workloads it starts.
    pub mechanism: Arc<crate::contain::Mechanism>,
    /// CPU time samplers of the process-tree workloads being watched (see `contain::Sampler`).
    pub samplers: Arc<Mutex<HashMap<String, Arc<crate::contain::Sampler>>>>,
    pub runner_id: String,
    pub grace: Duration,
    pub lease: Arc<Lease>,
    /// The stop in flight for each workload being stopped (see `flights`).
    pub stops: Arc<flights::Flights<stop_workload::StopReport>>,
    /// The lease epoch in which each task this runner holds was claimed or last verified.
    pub claims: Arc<Mutex<HashMap<i32, u64>>>,
}

/// Why an operation produced no outcome, and what the runner does next.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The database failed: run the operation again shortly (it is idempotent).
    #[error(transparent)]
    Db(#[from] DbErr),
    /// This runner's lease lapsed and the task is no longer its own: write nothing more.
    #[error("the runner's lease lapsed and the task is no longer held by it")]
    StandDown,
}

impl From<TransitionError> for OpError {
    fn from(err: TransitionError) -> Self {
        match err {
            TransitionError::Db(err) => OpError::Db(err),
            // A lost compare-and-set: run the operation again from what the database says now.
            other => OpError::Db(DbErr::Custom(other.to_string())),
        }
    }
}

impl Ctx {
    /// Call before every side effect: returns at once while the lease is held; otherwise waits
    /// until it is renewed, then lets the operation go on only if one of `on_behalf_of` is still
    /// this runner's current attempt of that task (see `lease`).
    pub async fn guard(&self, on_behalf_of: &[task::Model]) -> Result<(), OpError> {
        let epoch = self.lease.epoch();
        let current = |task: &task::Model| self.claims.lock().is_ok_and(|c| c.get(&task.id) == Some(&epoch));
        if self.lease.held() && on_behalf_of.iter().any(current) {
            return Ok(());
        }
        let ids: Vec<i32> = on_behalf_of.iter().map(|t| t.id).collect();
        tracing::warn!(tasks = ?ids, "the runner's lease lapsed: standing down until it is renewed");
        self.lease.renewed().await;
        for task in on_behalf_of {
            let epoch = self.lease.epoch();
            let current = loop {
                match tasks::get(&self.db, task.id).await {
                    Ok(current) => break current,
                    Err(err) => {
                        tracing::warn!(task = task.id, %err, "cannot read the task back; retrying");
                        tokio::time::sleep(POLL * 5).await;
                    }
                }
            };
            if current.is_some_and(|t| {
                t.state == TaskState::Running
                    && t.attempt == task.attempt
                    && t.runner_id.as_deref() == Some(&self.runner_id)
            }) {
                tracing::info!(task = task.id, "lease renewed and the task is still ours: going on");
                self.note_claim(task.id, epoch);
                return Ok(());
            }
        }
        tracing::warn!(tasks = ?ids, "lease renewed, but the tasks were finished or re-assigned meanwhile");
        Err(OpError::StandDown)
    }
}

impl Ctx {
    /// Records that `task_id` is held in lease `epoch` (read before the claim was written).
    pub fn note_claim(&self, task_id: i32, epoch: u64) {
        if let Ok(mut claims) = self.claims.lock() {
            claims.insert(task_id, epoch);
        }
    }

    pub fn forget_claim(&self, task_id: i32) {
        if let Ok(mut claims) = self.claims.lock() {
            claims.remove(&task_id);
        }
    }
}

pub async fn perform(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    match task.operation {
        Operation::StartWorkload => start_workload::run(ctx, task, cancel).await,
        Operation::StopSpec => stop_spec::run(ctx, task, cancel).await,
        Operation::StopWorkload => stop_workload::run(ctx, task, cancel).await,
        Operation::DeleteSpec => delete_spec::run(ctx, task, cancel).await,
        Operation::SnapshotWorkload => snapshot_workload::run(ctx, task, cancel).await,
        Operation::DeleteSnapshot => delete_snapshot::run(ctx, task).await,
    }
}

/// The runner found the task cancelled before it did anything.
pub fn cancelled_before_start(workload: Option<String>) -> Outcome {
    Outcome::CancelledBeforeStart { queued: false, workload }
}

pub enum Exit {
    /// A process this runner spawned (the leader), and what contains it: the exit status is known.
    Child(tokio::process::Child, Handle),
    /// A workload re-adopted after a restart: it is polled, and its exit status is lost.
    Adopted(Handle),
}

/// Waits until the workload has ended — its leader exited and no process of it is left (what
/// it started in the background keeps it running) — then records the end.
pub fn watch(ctx: Ctx, workload_id: String, exit: Exit) {
    let span = tracing::info_span!("watch", workload = %workload_id, runner = %ctx.runner_id);
    let sampler = Arc::new(Sampler::default());
    if let Ok(mut samplers) = ctx.samplers.lock() {
        samplers.insert(workload_id.clone(), sampler.clone());
    }
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let (handle, ended) = match exit {
                Exit::Child(mut child, handle) => {
                    let leader = child.id();
                    // Sampled while it runs, unless its cgroup counts for it: then only its
                    // exit wakes this (a thousand live workloads must not cost ten thousand
                    // wake-ups a second).
                    let status = if Sampler::needed(&handle) {
                        loop {
                            sampler.sample_async(&handle).await;
                            tokio::select! {
                                status = child.wait() => break status,
                                () = tokio::time::sleep(POLL) => {}
                            }
                        }
                    } else {
                        child.wait().await
                    };
                    if let Some(pid) = leader.and_then(|pid| i32::try_from(pid).ok()) {
                        process::forget_spawned(pid);
                    }
                    let ended = match status {
                        Ok(status) => {
                            let (code, signal) = process::exit_facts(&status);
                            End::Exited { code, signal, during_stop: false }
                        }
                        Err(err) => End::Unobserved { why: Unobserved::WaitFailed { error: err.to_string() } },
                    };
                    (handle, ended)
                }
                Exit::Adopted(handle) => {
                    (handle, End::Unobserved { why: Unobserved::RunnerRestarted { runner: ctx.runner_id.clone() } })
                }
            };
            while handle.alive_async().await {
                sampler.sample_async(&handle).await;
                tokio::time::sleep(POLL).await;
            }
            record_end(&ctx, &workload_id, ended).await;
        },
        span,
    ));
}

/// Moves the workload to Stopped with how it ended. Whoever records first wins (the watcher or
/// the stop operation); a workload already Stopped is left as it is. A command that exits while
/// a stop is under way is recorded as ended during the stop.
pub async fn record_end(ctx: &Ctx, workload_id: &str, end: End) {
    loop {
        let workload = match workloads::find(&ctx.db, workload_id).await {
            Ok(Some(workload)) => workload,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(%err, workload_id, "cannot read the workload; retrying");
                tokio::time::sleep(POLL * 5).await;
                continue;
            }
        };
        let handle = Handle::of(&workload);
        if workload.state == WorkloadState::Stopped {
            release(ctx, workload_id, handle.as_ref()).await;
            return;
        }
        let sampled = ctx.samplers.lock().ok().and_then(|s| s.get(workload_id).and_then(|s| s.total_usec()));
        let usage = handle.as_ref().map(|h| h.usage(sampled)).unwrap_or_default();
        let end = match end.clone() {
            End::Exited { code, signal, .. } => {
                End::Exited { code, signal, during_stop: workload.state == WorkloadState::Stopping }
            }
            other => other,
        };
        match workloads::transition(&ctx.db, &workload, WorkloadEvent::Ended(end, usage)).await {
            Ok(_) | Err(TransitionError::Illegal { .. }) => {
                release(ctx, workload_id, handle.as_ref()).await;
                return;
            }
            Err(TransitionError::Stale { .. }) => continue,
            Err(TransitionError::Db(err)) => {
                tracing::warn!(%err, workload_id, "cannot record the workload's end; retrying");
                tokio::time::sleep(POLL * 5).await;
            }
        }
    }
}

/// Once the workload is recorded Stopped: its cgroup goes, and its sampler.
async fn release(ctx: &Ctx, workload_id: &str, handle: Option<&Handle>) {
    if let Some(handle) = handle {
        handle.release_async().await;
    }
    if let Ok(mut samplers) = ctx.samplers.lock() {
        samplers.remove(workload_id);
    }
}
