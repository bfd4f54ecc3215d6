//! The Veeam face's errors: one variant per outcome, rendered as a Veeam `Error` resource in the
//! request's negotiated format. Internal errors carry a fixed message; the cause goes to the log.

use super::negotiate::current;
use super::render::render;
use super::views::ErrorView;
use crate::db_error::DbFault;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
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
    /// The caller's role may not do this.
    #[error("Access denied.")]
    Forbidden,
    /// A state-changing request from another site, authenticated by the session cookie alone.
    #[error(
        "Cross-site requests authenticated only by the session cookie are refused; send the X-RestSvcSessionId header."
    )]
    CrossSite,
    /// Too many failed logons for this user name or from this address lately.
    #[error("Too many failed logon attempts. Retry after {} seconds.", .0.as_secs() + 1)]
    TooManyRequests(std::time::Duration),
    #[error("{0}")]
    NotFound(String),
    #[error("The HTTP method is not allowed for this resource.")]
    MethodNotAllowed,
    #[error("The server can answer only in application/xml or application/json.")]
    NotAcceptable,
    #[error("An internal error occurred. It has been logged.")]
    Internal,
    /// The database cannot be reached: nothing was done; the request may be retried.
    #[error("The service is temporarily unavailable. Retry the request later.")]
    Unavailable,
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
        match crate::db_error::classify(&err) {
            DbFault::Unavailable => VeeamError::Unavailable,
            DbFault::UnstorableInput => {
                VeeamError::BadRequest("The request holds characters that cannot be stored or searched for.".into())
            }
            DbFault::Bug => VeeamError::Internal,
        }
    }
}

impl ResponseError for VeeamError {
    fn status_code(&self) -> StatusCode {
        match self {
            VeeamError::BadRequest(_) => StatusCode::BAD_REQUEST,
            VeeamError::BadCredentials(_) | VeeamError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            VeeamError::Forbidden | VeeamError::CrossSite => StatusCode::FORBIDDEN,
            VeeamError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            VeeamError::NotFound(_) => StatusCode::NOT_FOUND,
            VeeamError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            VeeamError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            VeeamError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            VeeamError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let format = current();
        let mut response = render(format, status, &ErrorView { status: status.as_u16(), message: self.to_string() });
        match self {
            VeeamError::Unavailable => {
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(crate::db_error::RETRY_AFTER_SECS));
            }
            VeeamError::TooManyRequests(wait) => {
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(wait.as_secs() + 1));
            }
            _ => {}
        }
        if matches!(self, VeeamError::BadCredentials(_)) {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic Realm=RestSvc"));
        }
        response
    }
}
