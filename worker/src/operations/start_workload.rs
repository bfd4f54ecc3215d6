//! StartWorkload: creates a workload of the spec (Veeam: a job's new session) and spawns the
//! spec's command as a new process group.
//!
//! - One active workload per spec: inserting the workload claims the spec (a unique column, see
//!   `workloads::insert`), so racing starts of one idle spec start it once; the others finish
//!   with "already running".
//! - Idempotent through `workloads.start_task_id`: a re-run of the same task finds the workload
//!   the first attempt created instead of starting a second one.
//! - The handle is durable before the command runs: the process is spawned behind its gate
//!   (`process::spawn_gated`), its pid is recorded with the workload's `Started` transition, and
//!   only then is the gate released. A runner that dies in between leaves a gate that exits
//!   without running the command, so the re-run spawns it exactly once.

use super::{Ctx, Exit, OpError, cancelled_before_start, record_end, watch};
use crate::process;
use entity::outcome::{End, Unobserved};
use entity::state::{Outcome, WorkloadEvent};
use entity::store::{specs, workloads};
use entity::{WorkloadState, task, workload, workload_spec};
use std::path::Path;
use tokio_util::sync::CancellationToken;

pub async fn run(ctx: &Ctx, task: &task::Model, cancel: &CancellationToken) -> Result<Outcome, OpError> {
    let Some(spec) = specs::find(&ctx.db, &task.target_id).await? else {
        return Ok(Outcome::SpecGone { spec: task.target_id.clone() });
    };
    let started =
        |workload: &workload::Model| Outcome::Started { workload: workload.id.clone(), spec_name: spec.name.clone() };
    let workload = match workloads::find_by_start_task(&ctx.db, task.id).await? {
        Some(workload) if workload.state != WorkloadState::Starting => return verify(ctx, &spec, workload).await,
        Some(workload) => workload,
        None if cancel.is_cancelled() => return Ok(cancelled_before_start(None)),
        None => match claim_spec(ctx, task, &spec).await? {
            Claim::Mine(workload) => workload,
            Claim::Taken(running) => {
                return Ok(Outcome::AlreadyRunning {
                    workload: running.id,
                    workload_name: running.name,
                    spec_name: spec.name.clone(),
                });
            }
            // Deleted since it was read (see `delete_spec`): run nothing.
            Claim::SpecGone => return Ok(Outcome::SpecGone { spec: spec.id.clone() }),
        },
    };
    ctx.guard(std::slice::from_ref(task)).await?;
    let working_dir = Path::new(&spec.working_dir);
    if let Some(archive) = task.params().restore
        && let Err(err) = crate::archive::unpack_into_empty(Path::new(&archive), working_dir).await
    {
        let reason = format!("its snapshot could not be restored: {err}");
        let ended = WorkloadEvent::Ended(End::StartFailed { reason: reason.clone() }, Default::default());
        workloads::transition(&ctx.db, &workload, ended).await?;
        return Ok(Outcome::StartFailed { workload: workload.id, spec_name: spec.name, reason });
    }
    let log = working_dir.join(format!("{}.log", workload.id));
    let marker = (crate::contain::MARKER, workload.id.as_str());
    let spawned = spec.argv().and_then(|argv| Ok((argv, spec.environment()?))).map_err(std::io::Error::other).and_then(
        |(argv, env)| process::spawn_gated(process::Launch { argv: &argv, working_dir, env: &env, log: &log, marker }),
    );
    let gated = match spawned {
        Ok(gated) => gated,
        Err(err) => {
            let ended = WorkloadEvent::Ended(End::StartFailed { reason: err.to_string() }, Default::default());
            workloads::transition(&ctx.db, &workload, ended).await?;
            return Ok(Outcome::StartFailed { workload: workload.id, spec_name: spec.name, reason: err.to_string() });
        }
    };
    let pid = gated.pgid().get();
    // Contained before its command runs: everything it will start is inside.
    let handle = ctx.mechanism.contain(&workload.id, gated.pgid(), &spec.limits());
    let event = WorkloadEvent::Started { pid, containment: Some(handle.to_json()) };
    let recorded = match crate::fault_point("start_workload.spawned") {
        Ok(()) => workloads::transition(&ctx.db, &workload, event).await.map_err(OpError::from),
        Err(err) => Err(err.into()),
    };
    if let Err(err) = recorded {
        // The command has not run, and nothing records its process: end it; the re-run spawns anew.
        gated.abort().await;
        handle.discard();
        return Err(err);
    }
    if let Err(err) = ctx.guard(std::slice::from_ref(task)).await {
        gated.abort().await;
        record_end(ctx, &workload.id, End::Unobserved { why: Unobserved::LeaseLost }).await;
        return Err(err);
    }
    watch(ctx.clone(), workload.id.clone(), Exit::Child(gated.release().await, handle));
    tracing::info!(workload = %workload.id, pid, spec = %spec.name, "workload started");
    Ok(started(&workload))
}

/// Why a start that never ran its command failed.
const INTERRUPTED: &str = "the start was interrupted: its runner stopped before the command ran; start it again";

/// A re-run of a start whose workload got past `Starting` (an earlier attempt recorded its
/// process) believes only what it can verify, never the recorded pid alone:
/// - its gate passed (its log exists: the command ran) and a process of it is alive, by its
///   handle (its cgroup, or processes carrying its marker: never a reused pid) → started, and
///   watched by this runner if nobody watches it;
/// - its gate passed and nothing of it is left: it ran and ended unobserved → started, its end
///   recorded;
/// - its gate never passed (the runner died after writing the pid, before releasing the gate,
///   and the write committed late): the command never ran → the workload ends and the task
///   fails, saying so. Never `Running` without a process.
async fn verify(ctx: &Ctx, spec: &workload_spec::Model, workload: workload::Model) -> Result<Outcome, OpError> {
    let ran = process::passed_gate(&Path::new(&spec.working_dir).join(format!("{}.log", workload.id)));
    let started = Outcome::Started { workload: workload.id.clone(), spec_name: spec.name.clone() };
    let interrupted = Outcome::StartFailed {
        workload: workload.id.clone(),
        spec_name: spec.name.clone(),
        reason: INTERRUPTED.to_owned(),
    };
    if workload.state == WorkloadState::Stopped || workload.runner_id != ctx.runner_id {
        // Ended and recorded already, or another runner's to watch.
        return Ok(if ran { started } else { interrupted });
    }
    let handle = crate::contain::Handle::of(&workload);
    let alive = match &handle {
        Some(handle) => handle.verifiably_alive_async().await,
        None => false,
    };
    match handle {
        Some(handle) if alive && ran => {
            let watched = ctx.samplers.lock().is_ok_and(|s| s.contains_key(&workload.id));
            if !watched {
                tracing::info!(workload = %workload.id, "a re-run found its workload running: watching it");
                watch(ctx.clone(), workload.id.clone(), Exit::Adopted(handle));
            }
            return Ok(started);
        }
        // Only its gate, which gives up by itself (the runner that held it is gone): end it now.
        Some(handle) if alive => handle.kill_async().await,
        _ => {}
    }
    let end = if ran {
        End::Unobserved { why: Unobserved::RunnerRestarted { runner: ctx.runner_id.clone() } }
    } else {
        tracing::warn!(workload = %workload.id, "a re-run found its workload recorded running, but its command never ran");
        End::StartFailed { reason: INTERRUPTED.to_owned() }
    };
    record_end(ctx, &workload.id, end).await;
    Ok(if ran { started } else { interrupted })
}

enum Claim {
    /// This task's workload (inserted now, or by an earlier attempt).
    Mine(workload::Model),
    /// The spec's active workload, inserted by another start.
    Taken(workload::Model),
    SpecGone,
}

/// Inserts this task's workload, which claims the spec (a deleted spec cannot be claimed, and
/// a claimed one cannot be deleted: `workloads::insert`).
async fn claim_spec(ctx: &Ctx, task: &task::Model, spec: &workload_spec::Model) -> Result<Claim, OpError> {
    loop {
        let new = workload::Model {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: spec.tenant_id,
            spec_id: spec.id.clone(),
            spec_name: spec.name.clone(),
            name: task.params().name.unwrap_or_else(|| spec.name.clone()),
            state: WorkloadState::Starting,
            ending: None,
            succeeded: None,
            created_at: entity::store::now(),
            ended_at: None,
            runner_id: ctx.runner_id.clone(),
            pid: None,
            exit_code: None,
            start_task_id: task.id,
            active_spec_id: None,
            labels: "{}".to_owned(),
            containment: None,
            cpu_usec: None,
            memory_peak_bytes: None,
            processes_peak: None,
        };
        match workloads::insert(&ctx.db, new).await {
            Ok(Some(workload)) => return Ok(Claim::Mine(workload)),
            Ok(None) => return Ok(Claim::SpecGone),
            Err(err) if workloads::is_spec_taken(&err) => {
                // Another start holds the spec, or an earlier attempt of this task inserted first.
                if let Some(mine) = workloads::find_by_start_task(&ctx.db, task.id).await? {
                    return Ok(Claim::Mine(mine));
                }
                if let Some(running) = workloads::active_of_spec(&ctx.db, &spec.id).await? {
                    return Ok(Claim::Taken(running));
                }
                // The other workload ended in between: the spec is free again.
            }
            Err(err) => return Err(err.into()),
        }
    }
}
