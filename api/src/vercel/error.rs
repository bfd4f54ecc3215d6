//! Vercel's error body, `{"error": {"code", "message"}}`, with the codes the SDK branches on.
//! Never a 429 or a 5xx for a client's mistake: the SDK retries those, POSTs included.

use crate::db_error::{DbFault, RETRY_AFTER_SECS};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum VercelError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The bearer token is missing or not a live API token.")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The session has stopped: the SDK resumes its sandbox and retries.
    #[error("Sandbox has stopped execution and is no longer available")]
    SandboxStopped,
    /// No such snapshot to create or resume from (or it was deleted).
    #[error("Cannot resume sandbox: no snapshot available.")]
    SnapshotNotFound,
    /// The session is stopping: the SDK resumes and retries, too.
    #[error("Sandbox is stopping")]
    SandboxStopping,
    #[error("The service is temporarily unavailable.")]
    Unavailable,
    #[error("An unexpected error occurred.")]
    Internal,
}

impl VercelError {
    pub fn code(&self) -> &'static str {
        match self {
            VercelError::BadRequest(_) => "bad_request",
            VercelError::Unauthorized => "unauthorized",
            VercelError::Forbidden(_) => "forbidden",
            VercelError::NotFound(_) => "not_found",
            VercelError::Conflict(_) => "conflict",
            VercelError::SandboxStopped => "sandbox_stopped",
            VercelError::SnapshotNotFound => "snapshot_not_found",
            VercelError::SandboxStopping => "sandbox_stopping",
            VercelError::Unavailable => "service_unavailable",
            VercelError::Internal => "internal_server_error",
        }
    }
}

impl From<sea_orm::DbErr> for VercelError {
    fn from(err: sea_orm::DbErr) -> Self {
        match crate::db_error::classify(&err) {
            DbFault::Unavailable => VercelError::Unavailable,
            DbFault::UnstorableInput => VercelError::BadRequest(crate::db_error::UNSTORABLE.into()),
            DbFault::Bug => VercelError::Internal,
        }
    }
}

impl From<crate::query::QueryError> for VercelError {
    fn from(err: crate::query::QueryError) -> Self {
        VercelError::BadRequest(err.to_string())
    }
}

impl ResponseError for VercelError {
    fn status_code(&self) -> StatusCode {
        match self {
            VercelError::BadRequest(_) => StatusCode::BAD_REQUEST,
            VercelError::Unauthorized => StatusCode::UNAUTHORIZED,
            VercelError::Forbidden(_) => StatusCode::FORBIDDEN,
            VercelError::NotFound(_) => StatusCode::NOT_FOUND,
            VercelError::Conflict(_) => StatusCode::CONFLICT,
            VercelError::SandboxStopped | VercelError::SnapshotNotFound => StatusCode::GONE,
            VercelError::SandboxStopping => StatusCode::UNPROCESSABLE_ENTITY,
            VercelError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            VercelError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, VercelError::Unavailable) {
            response.insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()));
        }
        response.json(json!({"error": {"code": self.code(), "message": self.to_string()}}))
    }
}
