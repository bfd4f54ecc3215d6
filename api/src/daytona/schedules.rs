//! A sandbox's schedules (auto-stop, auto-delete) as scheduled engine tasks, and the endpoints
//! that move them: `last-activity`, `autostop/{n}`, `autodelete/{n}`.

use super::auth::Org;
use super::error::DaytonaError;
use super::sandboxes::{deletion, find, modified, render, states, submission};
use super::settings::DaytonaState;
use super::view::{self, Attributes, SandboxState};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use entity::Operation;
use entity::outcome::TaskParams;
use entity::store::specs;
use entity::workload_spec;

/// How a sandbox's schedules are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Started (created, started, or used while started): an auto-stop after
    /// `autoStopInterval` (for an ephemeral sandbox a delete) and a delete `autoDeleteInterval`
    /// after that; nothing else.
    Started,
    /// Stopped just now: a delete `autoDeleteInterval` from now, beside what is there. The
    /// auto-stop stays: should the stop be cancelled, the sandbox still stops when idle; on a
    /// stopped sandbox it does nothing.
    Stopping,
    /// Stopped, and used or changed: a delete `autoDeleteInterval` from now; nothing else.
    Stopped,
}

/// A sandbox's schedules are scheduled engine tasks, counted in its minutes (`minute_ms`). A
/// schedule replaced is moved, not added (see `Engine::schedule`), so activity leaves no rows
/// behind; one past the engine's horizon (or what a date can hold) means never. Every
/// scheduled delete of a non-ephemeral sandbox is `only_if_stopped`: a sandbox started again,
/// or whose stop was cancelled, is not deleted.
pub async fn schedule(
    state: &AppState,
    daytona: &DaytonaState,
    org: &Org,
    spec: &workload_spec::Model,
    from: Standing,
) -> Result<(), DaytonaError> {
    let a = Attributes::of(spec);
    // `n` minutes after `from`; `None` (never) past what a date can hold.
    let after = |from: chrono::DateTime<chrono::Utc>, n: i64| {
        i32::try_from(n).ok().and_then(|n| daytona.minute.checked_mul(n)).and_then(|d| from.checked_add_signed(d))
    };
    let mut keep = Vec::new();
    let mut stopped_at = Some(chrono::Utc::now());
    if from == Standing::Started {
        stopped_at = None;
        if let Some(at) = after(chrono::Utc::now(), a.auto_stop_interval).filter(|_| a.auto_stop_interval > 0) {
            let (operation, params) = match a.auto_delete_interval {
                0 => (Operation::DeleteSpec, deletion(TaskParams::default())),
                _ => (Operation::StopSpec, TaskParams::default()),
            };
            let task = state.engine.schedule(submission(org, spec, operation, params), at).await?;
            keep.extend(task.map(|t| t.id));
            stopped_at = Some(at);
        }
    }
    let delete_at = stopped_at.filter(|_| a.auto_delete_interval > 0).and_then(|at| after(at, a.auto_delete_interval));
    if let Some(at) = delete_at {
        let params = deletion(TaskParams { only_if_stopped: true, ..TaskParams::default() });
        let task = state.engine.schedule(submission(org, spec, Operation::DeleteSpec, params), at).await?;
        keep.extend(task.map(|t| t.id));
    }
    if from != Standing::Stopping {
        state.engine.unschedule_except(&spec.id, &keep, org.user_id).await?;
    }
    Ok(())
}

/// The sandbox's schedules, counted from now as it stands (started or stopped); none are
/// touched while a change is under way (the change sets its own).
async fn schedule_from_now(
    state: &AppState,
    daytona: &DaytonaState,
    org: &Org,
    spec: &workload_spec::Model,
    now: view::States,
) -> Result<(), DaytonaError> {
    if now.changing {
        return Ok(());
    }
    let from = if now.stored == SandboxState::Started { Standing::Started } else { Standing::Stopped };
    schedule(state, daytona, org, spec, from).await
}

/// `POST /api/sandbox/{idOrName}/last-activity`: the sandbox was used now, so its auto-stop
/// (and the auto-delete after it) counts from now. 201 without a body, as Daytona answers.
pub async fn last_activity(
    org: Org,
    path: web::Path<String>,
    state: web::Data<AppState>,
    daytona: web::Data<DaytonaState>,
) -> Result<HttpResponse, DaytonaError> {
    let spec = find(&state, &org, &path).await?;
    let now = states(&state, &spec).await?;
    if !specs::touch(&state.db, &spec, None).await? {
        return Err(modified());
    }
    schedule_from_now(&state, &daytona, &org, &spec, now).await?;
    Ok(HttpResponse::Created().finish())
}

/// Which schedule `POST /api/sandbox/{idOrName}/auto{stop,delete}/{interval}` sets.
#[derive(Debug, Clone, Copy)]
pub enum Interval {
    /// Minutes idle before a stop; 0 = never. Negative: a 400.
    AutoStop,
    /// Minutes stopped before a delete; 0 = ephemeral, negative = never.
    AutoDelete,
}

/// `POST /api/sandbox/{idOrName}/autostop/{interval}` and `.../autodelete/{interval}`: sets the
/// interval and schedules from now by it; 200 with the sandbox (what Daytona's current
/// clients read).
pub async fn set_interval(
    org: Org,
    path: web::Path<(String, String)>,
    which: web::Data<Interval>,
    state: web::Data<AppState>,
    daytona: web::Data<DaytonaState>,
) -> Result<HttpResponse, DaytonaError> {
    let (id_or_name, text) = path.into_inner();
    // A whole number of minutes; clients that send numbers as floats send `5.0`.
    let minutes = text
        .parse::<i64>()
        .ok()
        .or_else(|| text.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64))
        .ok_or_else(|| DaytonaError::BadRequest(format!("interval must be a whole number of minutes, not {text}")))?;
    let spec = find(&state, &org, &id_or_name).await?;
    let mut attributes = Attributes::of(&spec);
    match **which {
        Interval::AutoStop if minutes < 0 => {
            return Err(DaytonaError::BadRequest("Auto-stop interval must be a non-negative integer".into()));
        }
        Interval::AutoStop => attributes.auto_stop_interval = minutes,
        Interval::AutoDelete => attributes.auto_delete_interval = minutes,
    }
    let now = states(&state, &spec).await?;
    if !specs::touch(&state.db, &spec, Some(&attributes.into_meta(&spec)?)).await? {
        return Err(modified());
    }
    let spec = specs::find(&state.db, &spec.id).await?.ok_or_else(|| DaytonaError::no_sandbox(&id_or_name))?;
    schedule_from_now(&state, &daytona, &org, &spec, now).await?;
    render(&state, &org, &spec).await
}
