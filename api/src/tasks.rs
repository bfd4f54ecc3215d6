//! `/api/tasks/{n}` for API-token callers (`Authorization: Bearer`), whatever face they use:
//! the long-running-operation resource that every token face's `Operation-Location` names.
//! `GET` reads a task in JSON, with its `ETag` (`If-None-Match` → 304) and `Retry-After` while
//! it is not final; `DELETE` cancels it (a
//! queued task never runs; a running one's runner is told at once) and answers with it. A token
//! reaches only the tasks that tokens of its tenant submitted. Errors are RFC 9457 problem
//! details (`application/problem+json`), in no vendor's dialect. A caller without a bearer
//! token (a Veeam client, with its logon session) reaches the Veeam face's `/api/tasks`.

use crate::bearer::TokenCaller;
use crate::db_error::{DbFault, RETRY_AFTER_SECS};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, ETag, EntityTag, IfNoneMatch};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use entity::store::tasks;
use entity::task;
use serde_json::{Value, json};

/// The resource, for requests that carry a bearer token.
pub fn resource() -> impl actix_web::dev::HttpServiceFactory {
    web::resource("/api/tasks/{id}")
        .guard(actix_web::guard::fn_guard(|ctx| crate::bearer::token(ctx.head().headers()).is_some()))
        .route(web::get().to(get))
        .route(web::delete().to(cancel))
        .default_service(web::to(|| async { Err::<HttpResponse, _>(TaskError::MethodNotAllowed) }))
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("The bearer token is not a live API token.")]
    Unauthorized,
    #[error("Task with ID {0} not found")]
    NotFound(String),
    #[error("Only GET and DELETE are allowed on a task.")]
    MethodNotAllowed,
    #[error("The request holds characters that cannot be stored or searched for.")]
    BadRequest,
    #[error("The service is temporarily unavailable.")]
    Unavailable,
    #[error("An unexpected error occurred.")]
    Internal,
}

impl From<sea_orm::DbErr> for TaskError {
    fn from(err: sea_orm::DbErr) -> Self {
        match crate::db_error::classify(&err) {
            DbFault::Unavailable => TaskError::Unavailable,
            DbFault::UnstorableInput => TaskError::BadRequest,
            DbFault::Bug => TaskError::Internal,
        }
    }
}

impl ResponseError for TaskError {
    fn status_code(&self) -> StatusCode {
        match self {
            TaskError::Unauthorized => StatusCode::UNAUTHORIZED,
            TaskError::NotFound(_) => StatusCode::NOT_FOUND,
            TaskError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            TaskError::BadRequest => StatusCode::BAD_REQUEST,
            TaskError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            TaskError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        match self {
            TaskError::Unavailable => {
                response.insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()));
            }
            TaskError::Unauthorized => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            TaskError::MethodNotAllowed => {
                response.insert_header(("Allow", "GET, DELETE"));
            }
            _ => {}
        }
        let body = json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        response.body(body.to_string())
    }
}

async fn caller(req: &HttpRequest, state: &AppState) -> Result<TokenCaller, TaskError> {
    crate::bearer::authenticate(req, state).await?.ok_or(TaskError::Unauthorized)
}

async fn find(state: &AppState, caller: &TokenCaller, id: &str) -> Result<task::Model, TaskError> {
    let not_found = || TaskError::NotFound(id.chars().filter(|c| !c.is_control()).collect());
    let number = crate::ids::task_number(id).ok_or_else(not_found)?;
    let task = state.engine.task(number).await?;
    task.filter(|t| t.tenant_id == caller.tenant.id && t.user_id == caller.user_id).ok_or_else(not_found)
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

/// The entity tag of a task's representation `variant` (its format, for a face that has
/// several): it changes whenever the task does (every change moves its `updated_at`).
pub fn etag(task: &task::Model, variant: &str) -> EntityTag {
    EntityTag::new_strong(format!("{}.{}.{variant}", task.id, task.updated_at.timestamp_micros()))
}

/// A 304 when the request's `If-None-Match` names `tag` (the client's copy is current).
pub fn not_modified(req: &HttpRequest, tag: &EntityTag) -> Option<HttpResponse> {
    let matches = match req.get_header::<IfNoneMatch>()? {
        IfNoneMatch::Any => true,
        IfNoneMatch::Items(tags) => tags.iter().any(|t| t.weak_eq(tag)),
    };
    matches.then(|| HttpResponse::NotModified().insert_header(ETag(tag.clone())).finish())
}

/// The task, with its `ETag` (`If-None-Match` → 304); while it is not final, `Retry-After: 1`
/// says when to ask again (the long-running-operation convention; a scheduled task says when
/// it is due).
async fn get(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, TaskError> {
    let caller = caller(&req, &state).await?;
    let task = find(&state, &caller, &path).await?;
    let tag = etag(&task, "json");
    if let Some(unchanged) = not_modified(&req, &tag) {
        return Ok(unchanged);
    }
    let mut response = HttpResponse::Ok();
    response.content_type(ContentType::json()).insert_header(ETag(tag));
    if !task.state.is_final() {
        let now = entity::store::now();
        let wait = task.not_before.filter(|at| *at > now).map_or(1, |at| (at - now).num_seconds().max(1));
        response.insert_header(("Retry-After", wait.to_string()));
    }
    // The answer has no link in it: one base for all.
    Ok(response.body(state.answers.of(&task, "bearer-json", "", || task_json(&task).to_string())))
}

async fn cancel(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TaskError> {
    let caller = caller(&req, &state).await?;
    let task = find(&state, &caller, &path).await?;
    state.engine.cancel(&task, caller.user_id).await?;
    let now = tasks::get(&state.db, task.id).await?.unwrap_or(task);
    Ok(HttpResponse::Ok().json(task_json(&now)))
}
