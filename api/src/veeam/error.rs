//! The Veeam face's errors: one variant per outcome, rendered as a Veeam `Error` resource in the
//! request's negotiated format. Internal errors carry a fixed message; the cause goes to the log.

use super::negotiate::Format;
use super::render::{FORMAT, render};
use super::views::ErrorView;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum VeeamError {
    #[error("{0}")]
    BadRequest(String),
    /// Bad logon credentials: answered with the Basic challenge.
    #[error("{0}")]
    BadCredentials(String),
    /// A missing, unknown or expired session token.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("The HTTP method is not allowed for this resource.")]
    MethodNotAllowed,
    #[error("The server can answer only in application/xml or application/json.")]
    NotAcceptable,
    #[error("An internal error occurred. It has been logged.")]
    Internal,
}

impl VeeamError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        VeeamError::Internal
    }

    pub fn no_such_task(id: &str) -> Self {
        VeeamError::NotFound(format!("There is no backup task with id [{id}] in current rest session"))
    }
}

impl From<sea_orm::DbErr> for VeeamError {
    fn from(err: sea_orm::DbErr) -> Self {
        VeeamError::internal(err)
    }
}

impl ResponseError for VeeamError {
    fn status_code(&self) -> StatusCode {
        match self {
            VeeamError::BadRequest(_) => StatusCode::BAD_REQUEST,
            VeeamError::BadCredentials(_) | VeeamError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            VeeamError::NotFound(_) => StatusCode::NOT_FOUND,
            VeeamError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            VeeamError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            VeeamError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let format = FORMAT.try_with(|f| *f).unwrap_or(Format::Xml);
        let mut response = render(format, status, &ErrorView { status: status.as_u16(), message: self.to_string() });
        if matches!(self, VeeamError::BadCredentials(_)) {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic Realm=RestSvc"));
        }
        response
    }
}
