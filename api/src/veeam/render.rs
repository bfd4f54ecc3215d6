//! Turning views into responses, and the per-request middleware of the Veeam face.
//!
//! The middleware runs before routing: it matches Veeam paths case-insensitively (by lowering
//! them; every id we issue is lower-case) and drops a trailing slash, negotiates the format
//! (406 when neither XML nor JSON is acceptable), and runs the rest of the request inside a
//! task-local scope holding that format, so that errors raised anywhere (extractors included)
//! render in it.

use super::error::VeeamError;
use super::negotiate::{Format, negotiate};
use super::views::Representation;
use super::xml::Xml;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

tokio::task_local! {
    pub static FORMAT: Format;
}

pub fn render(format: Format, status: StatusCode, view: &impl Representation) -> HttpResponse {
    let body = match format {
        Format::Json => view.json().to_string(),
        Format::Xml => {
            let mut x = Xml::document();
            view.xml(&mut x);
            x.finish()
        }
    };
    HttpResponse::build(status).content_type(format.content_type()).body(body)
}

/// The format of the current request (XML outside a request scope).
pub fn format() -> Format {
    FORMAT.try_with(|f| *f).unwrap_or(Format::Xml)
}

pub fn ok(view: &impl Representation) -> HttpResponse {
    render(format(), StatusCode::OK, view)
}

/// The first path segments under `/api/` that belong to the Veeam face.
const VEEAM_COLLECTIONS: [&str; 7] = ["", "sessionmngr", "logonsessions", "jobs", "backupsessions", "tasks", "query"];

fn veeam_path(path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    let rest = lower.strip_prefix("/api")?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let first = rest.split('/').next().unwrap_or("");
    if !VEEAM_COLLECTIONS.contains(&first) {
        return None;
    }
    let trimmed = lower.trim_end_matches('/');
    Some(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
}

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let format = match veeam_path(req.path()) {
        Some(path) => {
            if path != req.path() {
                rewrite_path(&mut req, path);
            }
            match negotiate(req.headers()) {
                Some(format) => format,
                None => {
                    let response = VeeamError::NotAcceptable.error_response();
                    return Ok(req.into_response(response));
                }
            }
        }
        // Not a Veeam route: its 404 still speaks the format asked for, when it can.
        None => negotiate(req.headers()).unwrap_or(Format::Xml),
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
        assert_eq!(veeam_path("/api/sandbox/AbC"), None);
        assert_eq!(veeam_path("/v1/sandboxes"), None);
    }
}
