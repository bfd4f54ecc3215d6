//! The Veeam face's request handling around its routes.
//!
//! - `normalize` runs for every request, before routing: a path that belongs to the Veeam face
//!   (`/api` and below, except what other faces own) is matched case-insensitively by lowering it
//!   (every id we issue is lower-case) and loses a trailing slash, as EM's clients expect.
//! - `negotiate_format` runs inside the face's scope: it negotiates the format (406 when neither
//!   XML nor JSON is acceptable) and runs the rest of the request inside a task-local scope
//!   holding it, so that errors raised anywhere (extractors included) render in it.

use super::error::VeeamError;
use super::negotiate::{FORMAT, negotiate};
use actix_web::ResponseError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::middleware::Next;

/// First segments under `/api/` that belong to other faces (Daytona's `/api/sandbox`).
const OTHER_FACES: [&str; 1] = ["sandbox"];

/// The normalized path, if `path` belongs to the Veeam face.
pub fn veeam_path(path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    let rest = lower.strip_prefix("/api")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    if OTHER_FACES.contains(&first) {
        return None;
    }
    Some(lower.trim_end_matches('/').to_owned())
}

pub async fn normalize(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(path) = veeam_path(req.path())
        && path != req.path()
    {
        rewrite_path(&mut req, path);
    }
    next.call(req).await
}

pub async fn negotiate_format(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if veeam_path(req.path()).is_none() {
        // Under /api but another face's path, with that face absent: not ours to answer.
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    }
    let Some(format) = negotiate(req.headers()) else {
        return Ok(req.into_response(VeeamError::NotAcceptable.error_response()));
    };
    FORMAT.scope(format, async move { next.call(req).await.map(ServiceResponse::map_into_boxed_body) }).await
}

fn rewrite_path(req: &mut ServiceRequest, path: String) {
    let path_and_query = match req.query_string() {
        "" => path,
        query => format!("{path}?{query}"),
    };
    let mut parts = req.head().uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            req.match_info_mut().get_mut().update(&uri);
            req.head_mut().uri = uri;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::veeam_path;

    #[test]
    fn veeam_paths_are_matched_case_insensitively_and_other_faces_are_left_alone() {
        assert_eq!(veeam_path("/api/sessionMngr/").as_deref(), Some("/api/sessionmngr"));
        assert_eq!(veeam_path("/api/").as_deref(), Some("/api"));
        assert_eq!(veeam_path("/API/Tasks/Task-3").as_deref(), Some("/api/tasks/task-3"));
        assert_eq!(veeam_path("/api/nothing-here").as_deref(), Some("/api/nothing-here"));
        assert_eq!(veeam_path("/api/sandbox/AbC"), None);
        assert_eq!(veeam_path("/apis"), None);
        assert_eq!(veeam_path("/v1/sandboxes"), None);
    }
}
