//! `/api/tasks`: the caller's tasks, and the 202 + Task answer of every asynchronous operation.
//!
//! Tasks belong to the user who created them (across that user's logon sessions); another
//! user's task does not exist for you.

use super::auth::Caller;
use super::error::VeeamError;
use super::hrefs;
use super::render::{format, ok, render};
use super::views::{List, TaskView};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::state::{TaskEvent, TransitionError};
use entity::store::tasks::{self, NewTask};
use entity::{Operation, Role, TaskState, task};

/// Commits the task, then answers 202 with it; the run message is published after the commit
/// (and by the relay if that publish fails), so the task exists before the client hears of it.
/// Only Portal Administrators may start and stop: other roles get 403, and nothing is written.
pub async fn accept(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    caller: &Caller,
    operation: Operation,
    target_id: &str,
    route: Option<String>,
) -> Result<HttpResponse, VeeamError> {
    if caller.user.role != Role::PortalAdministrator {
        return Err(VeeamError::Forbidden);
    }
    let task = tasks::insert(&state.db, NewTask { user_id: caller.user.id, operation, target_id, route }).await?;
    let dispatcher = state.dispatcher.clone();
    let queued = task.clone();
    actix_web::rt::spawn(async move { dispatcher.publish_run(&queued).await });
    let hrefs = hrefs(req, state);
    let mut response = render(format(), StatusCode::ACCEPTED, &TaskView::new(&task, &hrefs));
    response.headers_mut().insert(LOCATION, hrefs.task(&task).parse().map_err(VeeamError::internal)?);
    Ok(response)
}

pub async fn list_tasks(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let hrefs = hrefs(&req, &state);
    let items =
        tasks::list_for_user(&state.db, caller.user.id).await?.iter().map(|t| TaskView::new(t, &hrefs)).collect();
    Ok(ok(&List { root: "Tasks", key: "Tasks", items }))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<task::Model, VeeamError> {
    let row_id = task::Model::parse_public_id(id).ok_or_else(|| VeeamError::no_such_task(id))?;
    tasks::find_for_user(&state.db, row_id, caller.user.id).await?.ok_or_else(|| VeeamError::no_such_task(id))
}

pub async fn get_task(
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let task = find(&state, &caller, &id).await?;
    Ok(ok(&TaskView::new(&task, &hrefs(&req, &state))))
}

/// Always 204 for a task of yours. Queued: cancelled at once, it never runs, and stays readable
/// (Finished, Success=false). Running: its runner is told at once. Finished: removed.
pub async fn delete_task(
    caller: Caller,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    // Each pass acts on the state it read; a lost race (the runner claimed or finished the task
    // meanwhile) is retried against the new state.
    for _ in 0..5 {
        let task = find(&state, &caller, &id).await?;
        match task.state {
            TaskState::Queued => {
                let message = "Task cancelled by user before it started; nothing was done.".to_owned();
                match tasks::transition(&state.db, &task, TaskEvent::Cancel { message }).await {
                    Ok(_) => break,
                    Err(TransitionError::Stale { .. } | TransitionError::Illegal { .. }) => {
                        continue;
                    }
                    Err(err) => return Err(VeeamError::internal(err)),
                }
            }
            TaskState::Running => {
                if tasks::request_cancel(&state.db, &task).await? {
                    // The flag in the database carries the cancel (the runner's heartbeat reads
                    // it); the message only makes it immediate, so the answer never waits on it.
                    let dispatcher = state.dispatcher.clone();
                    actix_web::rt::spawn(async move { dispatcher.publish_cancel(&task).await });
                    break;
                }
            }
            TaskState::Finished => {
                tasks::delete_finished(&state.db, task.id).await?;
                break;
            }
        }
    }
    Ok(HttpResponse::NoContent().finish())
}
