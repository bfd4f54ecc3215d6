//! `/api/tasks/{id}` for API-token callers (`Authorization: Bearer`): the engine tasks that the
//! organisation's tokens submitted, in JSON, which every Daytona answer that changes a sandbox names in its
//! `Operation-Location`. `GET` reads one; `DELETE` cancels it (a queued task never runs; a
//! running one's runner is told at once) and answers with it. A Veeam client (a logon session,
//! no bearer token) reaches the Veeam face's `/api/tasks` instead.

use super::auth::Org;
use super::error::DaytonaError;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use entity::store::tasks;
use entity::task;
use serde_json::{Value, json};

fn not_found(id: &str) -> DaytonaError {
    DaytonaError::NotFound(format!("Task with ID {id} not found"))
}

async fn find(state: &AppState, org: &Org, id: &str) -> Result<task::Model, DaytonaError> {
    // Only the canonical spelling of a task number names it.
    let number = id.parse::<i32>().ok().filter(|n| *n > 0 && n.to_string() == id).ok_or_else(|| not_found(id))?;
    // Only what a token of the organisation submitted (its tenant's token user): its Veeam
    // users' tasks stay theirs, as EM keeps tasks per user.
    tasks::find_of_user(&state.db, number, org.tenant.id, org.user_id).await?.ok_or_else(|| not_found(id))
}

/// A task as JSON: what it does to which target, where it is, and how it ended.
pub fn task_json(task: &task::Model) -> Value {
    let time = |at: Option<&chrono::DateTime<chrono::Utc>>| {
        at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    json!({
        "id": task.id,
        "operation": task.operation,
        "targetId": task.target_id,
        "state": task.state,
        "success": task.success,
        "cancelRequested": task.cancel_requested,
        "outcome": task.ended(),
        "notBefore": time(task.not_before.as_ref()),
        "createdAt": time(Some(&task.created_at)),
        "startedAt": time(task.started_at.as_ref()),
        "finishedAt": time(task.finished_at.as_ref()),
    })
}

/// The task; while it is not final, `Retry-After: 1` says when to ask again (the
/// long-running-operation convention; a scheduled task says when it is due).
pub async fn get(org: Org, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, DaytonaError> {
    let task = find(&state, &org, &path).await?;
    let mut response = HttpResponse::Ok();
    if !task.state.is_final() {
        let now = entity::store::now();
        let wait = task.not_before.filter(|at| *at > now).map_or(1, |at| (at - now).num_seconds().max(1));
        response.insert_header(("Retry-After", wait.to_string()));
    }
    Ok(response.json(task_json(&task)))
}

pub async fn cancel(
    org: Org,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DaytonaError> {
    let task = find(&state, &org, &path).await?;
    state.engine.cancel(&task, org.user_id).await?;
    let now = tasks::get(&state.db, task.id).await?.unwrap_or(task);
    Ok(HttpResponse::Ok().json(task_json(&now)))
}
