//! The Veeam face's errors: one variant per outcome, rendered as a Veeam `Error` resource in the
//! request's negotiated format. Internal errors carry a fixed message; the cause goes to the log.

use super::negotiate::current;
use super::render::render;
use super::views::ErrorView;
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
        if database_unreachable(&err) {
            tracing::warn!(%err, "database unavailable");
            VeeamError::Unavailable
        } else if unstorable_input(&err) {
            VeeamError::BadRequest("The request holds characters that cannot be stored or searched for.".into())
        } else {
            VeeamError::internal(err)
        }
    }
}

/// The database refused a client's string (PostgreSQL cannot hold a NUL character, for one):
/// the request is wrong, not the server.
fn unstorable_input(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            matches!(&**e, Sqlx::Database(db) if db.code().is_some_and(|code| code == "22021" || code == "22P05"))
        }
        _ => false,
    }
}

/// Errors that mean "the database cannot be reached now", not "this request is wrong".
fn database_unreachable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            matches!(**e, Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed)
                || matches!(&**e, Sqlx::Database(db) if db.code().is_some_and(|code| code.starts_with("57P") || code.starts_with("08")))
        }
        _ => false,
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
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
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
