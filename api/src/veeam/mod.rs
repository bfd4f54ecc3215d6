//! The Veeam Enterprise Manager face (`/api/...`): logon sessions, jobs, backup job sessions,
//! tasks and the query service, in XML or JSON, as Enterprise Manager's legacy REST API (v1_4..v1_7) answers.

mod auth;
mod error;
pub mod ids;
mod jobs;
pub mod jobs_file;
mod logon;
pub mod logon_gate;
mod messages;
mod middleware;
mod negotiate;
mod query;
mod render;
mod roles;
mod sessions;
mod settings;
mod tasks;
mod views;
mod xml;

pub use error::VeeamError;
pub use middleware::normalize;
pub use roles::Role;
pub use settings::{VeeamSettings, VeeamState, start};

use crate::state::AppState;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, ResponseError, Route, web};
use views::Hrefs;

/// The face: its routes under `/api`, its format negotiation, and its own 404. Mount it with
/// `normalize` wrapped around the whole app (paths are matched case-insensitively).
pub fn scope(state: web::Data<VeeamState>) -> impl actix_web::dev::HttpServiceFactory {
    let resource = |path: &str, routes: Vec<Route>| {
        routes
            .into_iter()
            .fold(web::resource(path), |r, route| r.route(route))
            .default_service(web::to(method_not_allowed))
    };
    web::scope("/api")
        .app_data(state)
        .wrap(from_fn(middleware::negotiate_format))
        // First, as the path polled most: each pattern tried before it costs a match.
        .service(resource("/tasks/{id}", vec![web::get().to(tasks::get_task), web::delete().to(tasks::delete_task)]))
        .service(resource("", vec![web::get().to(logon::get_entry_point)]))
        .service(resource("/sessionmngr", vec![web::post().to(logon::create_logon_session)]))
        .service(resource("/logonsessions", vec![web::get().to(logon::list_logon_sessions)]))
        .service(resource(
            "/logonsessions/{id}",
            vec![web::get().to(logon::get_logon_session), web::delete().to(logon::delete_logon_session)],
        ))
        .service(resource("/jobs", vec![web::get().to(jobs::list_jobs)]))
        .service(resource("/jobs/{id}", vec![web::get().to(jobs::get_job), web::post().to(jobs::act_on_job)]))
        .service(resource("/jobs/{id}/backupsessions", vec![web::get().to(jobs::list_job_sessions)]))
        .service(resource("/backupsessions", vec![web::get().to(sessions::list_sessions)]))
        .service(resource(
            "/backupsessions/{id}",
            vec![web::get().to(sessions::get_session), web::post().to(sessions::act_on_session)],
        ))
        .service(resource("/tasks", vec![web::get().to(tasks::list_tasks)]))
        .service(resource("/query", vec![web::get().to(query::run_query)]))
    // No default service: a path under /api that no resource matches goes to the application's
    // (which tells a Veeam caller's from a token caller's); it calls `not_found` for Veeam's.
}

async fn method_not_allowed() -> Result<HttpResponse, VeeamError> {
    Err(VeeamError::MethodNotAllowed)
}

/// A path of the face that names nothing: Veeam's 404. (A path under `/api` that another face
/// owns, with that face absent, gets the plain 404 of no face.)
pub fn not_found(req: &HttpRequest) -> HttpResponse {
    if middleware::veeam_path(req.path()).is_none() {
        return HttpResponse::NotFound().finish();
    }
    VeeamError::NotFound("The requested resource does not exist.".into()).error_response()
}

fn hrefs(req: &HttpRequest, state: &AppState) -> Hrefs {
    Hrefs { base: crate::origin::base_url(req, state.public_base_url.as_deref(), &state.trusted_proxies) }
}

/// Query parameters, matched case-insensitively by name (Veeam clients vary the case).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn of(req: &HttpRequest) -> Result<Self, VeeamError> {
        web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(|q| Params(q.into_inner()))
            .map_err(|e| VeeamError::BadRequest(format!("Malformed query string: {e}")))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `?format=Entity` (or `Entities`), any case.
    pub fn wants_entities(&self) -> bool {
        self.get("format").is_some_and(|f| f.eq_ignore_ascii_case("entity") || f.eq_ignore_ascii_case("entities"))
    }

    pub fn action(&self) -> Result<String, VeeamError> {
        self.get("action")
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| VeeamError::BadRequest("The 'action' query parameter is required.".into()))
    }
}
