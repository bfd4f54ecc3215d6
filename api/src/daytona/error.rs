//! Daytona's error body, `{path, timestamp, statusCode, error, message}`, for every error of the
//! face (its `AllExceptionsFilter`): `error` is the status's reason phrase, `message` a string.

use crate::db_error::DbFault;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, body::MessageBody};
use serde_json::json;

tokio::task_local! {
    /// The path of the request being answered, for the error body.
    static PATH: String;
}

#[derive(Debug, thiserror::Error)]
pub enum DaytonaError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("The service is temporarily unavailable.")]
    Unavailable,
    #[error("An unexpected error occurred.")]
    Internal,
}

impl DaytonaError {
    pub fn no_sandbox(id_or_name: &str) -> Self {
        DaytonaError::NotFound(format!("Sandbox with ID or name {id_or_name} not found"))
    }
}

impl From<crate::query::QueryError> for DaytonaError {
    fn from(err: crate::query::QueryError) -> Self {
        DaytonaError::BadRequest(err.to_string())
    }
}

impl From<sea_orm::DbErr> for DaytonaError {
    fn from(err: sea_orm::DbErr) -> Self {
        match crate::db_error::classify(&err) {
            DbFault::Unavailable => DaytonaError::Unavailable,
            DbFault::UnstorableInput => DaytonaError::BadRequest(crate::db_error::UNSTORABLE.into()),
            DbFault::Bug => DaytonaError::Internal,
        }
    }
}

impl ResponseError for DaytonaError {
    fn status_code(&self) -> StatusCode {
        match self {
            DaytonaError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DaytonaError::Unauthorized => StatusCode::UNAUTHORIZED,
            DaytonaError::Forbidden(_) => StatusCode::FORBIDDEN,
            DaytonaError::NotFound(_) => StatusCode::NOT_FOUND,
            DaytonaError::Conflict(_) => StatusCode::CONFLICT,
            DaytonaError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            DaytonaError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let path = PATH.try_with(Clone::clone).unwrap_or_default();
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut response = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", crate::db_error::RETRY_AFTER_SECS.to_string()));
        }
        response.json(json!({
            "path": path, "timestamp": timestamp, "statusCode": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"), "message": self.to_string(),
        }))
    }
}

/// Runs `answer` with `path` as the error body's.
pub async fn with_path<T>(path: &str, answer: impl std::future::Future<Output = T>) -> T {
    PATH.scope(path.to_owned(), answer).await
}

/// Keeps the request's path for the error body of whatever the handlers answer.
pub async fn remember_path(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path().to_owned();
    PATH.scope(path, next.call(req)).await
}
