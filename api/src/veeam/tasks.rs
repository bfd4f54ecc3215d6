//! `/api/tasks`: the caller's tasks, and the 202 + Task answer of every asynchronous operation.
//!
//! Tasks belong to the user who created them (across that user's logon sessions); another
//! user's task does not exist for you.

use super::auth::Caller;
use super::error::VeeamError;
use super::hrefs;
use super::render::{format, ok, render, text};
use super::roles::Role;
use super::views::{List, TaskView};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{ETag, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use entity::outcome::TaskParams;
use entity::store::tasks;
use entity::{Operation, task};
use worker::engine::{Cancelled, Submission};

/// Submits the task to the engine, then answers 202 with it (the task is committed before the
/// answer leaves). Only Portal Administrators may start and stop: other roles get 403, and
/// nothing is written.
pub async fn accept(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    caller: &Caller,
    operation: Operation,
    target_id: &str,
    params: TaskParams,
    owner: Option<&str>,
) -> Result<HttpResponse, VeeamError> {
    if !Role::may_operate(&caller.user.role) {
        return Err(VeeamError::Forbidden);
    }
    let submission =
        Submission { tenant_id: caller.user.tenant_id, user_id: caller.user.id, operation, target_id, params, owner };
    let task = state.engine.submit(submission).await?;
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
    let row_id = super::ids::parse_task_id(id).ok_or_else(|| VeeamError::no_such_task(id))?;
    let task = state.engine.task(row_id).await?.filter(|t| t.user_id == caller.user.id);
    task.ok_or_else(|| VeeamError::no_such_task(id))
}

pub async fn get_task(
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let task = find(&state, &caller, &id).await?;
    let format = format();
    let tag = crate::tasks::etag(&task, format.name());
    if let Some(unchanged) = crate::tasks::not_modified(&req, &tag) {
        return Ok(unchanged);
    }
    let hrefs = hrefs(&req, &state);
    let body = state.answers.of(&task, format.name(), &hrefs.base, || text(format, &TaskView::new(&task, &hrefs)));
    Ok(HttpResponse::Ok().content_type(format.content_type()).insert_header(ETag(tag)).body(body))
}

/// Always 204 for a task of yours. Queued: cancelled at once, it never runs, and stays readable
/// (Finished, Success=false). Running: its runner is told at once. Finished: removed (EM's DELETE).
pub async fn delete_task(
    caller: Caller,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let task = find(&state, &caller, &id).await?;
    if let Cancelled::AlreadyFinished(task) = state.engine.cancel(&task, caller.user.id).await? {
        state.engine.delete_finished(task.id).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
