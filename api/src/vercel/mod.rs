//! The Vercel Sandbox face: v2 (`@vercel/sandbox` 3.x), named sandboxes that own sessions, and
//! v1 (1.x, `v1`), sandboxes that are one session each. A
//! named sandbox is a workload spec of the team's tenant running `[vercel] session_command` in
//! its own working directory (reported as `/vercel/sandbox`), and a session is one of its
//! workloads. Create, resume and stop are engine tasks; where Vercel answers only once the work
//! is done (a stop), the handler waits on the engine's `wait_finished` with a deadline, holding
//! no database connection. A session's timeout is a scheduled stop of its workload, and
//! `extend-timeout` moves it. Authentication is by API token (`Authorization: Bearer`);
//! `teamId` must name the token's tenant, and the project scopes every sandbox.

mod auth;
mod error;
mod sandboxes;
mod sessions;
mod snapshots;
mod v1;
mod view;

pub use error::VercelError;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VercelSettings {
    /// What a session runs: a long-lived command.
    pub session_command: Vec<String>,
    /// Where named sandboxes get their working directories (kept across sessions); default
    /// `<data_dir>/vercel`.
    pub sandbox_dir: Option<PathBuf>,
}

impl Default for VercelSettings {
    fn default() -> Self {
        Self { session_command: vec!["sleep".into(), "infinity".into()], sandbox_dir: None }
    }
}

/// What the face's handlers need beside `AppState`.
pub struct VercelState {
    pub session_command: Vec<String>,
    pub sandbox_dir: PathBuf,
}

/// The face's state from its settings.
pub fn start(settings: &VercelSettings, data_dir: &std::path::Path) -> Result<VercelState, String> {
    let dir = settings.sandbox_dir.clone().unwrap_or_else(|| data_dir.join("vercel"));
    Ok(VercelState {
        session_command: settings.session_command.clone(),
        sandbox_dir: std::path::absolute(&dir).map_err(|e| format!("{}: {e}", dir.display()))?,
    })
}

/// The face's routes (`/v1/sandboxes...`, `/v2/sandboxes...`, and `POST /v3/sandboxes`), with its error body for
/// bad JSON and for methods a path does not answer. (Paths under them that name nothing get its
/// 404 from the application's default service: see `owns`.)
pub fn configure(state: web::Data<VercelState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let json = web::JsonConfig::default()
            .limit(64 * 1024)
            .content_type_required(false)
            .error_handler(|err, _| VercelError::BadRequest(err.to_string()).into());
        let resource = |path: &str| {
            web::resource(path).app_data(state.clone()).app_data(json.clone()).default_service(web::to(not_found))
        };
        // Under static scopes, so that the router matches a path of another face with a prefix
        // comparison instead of trying each of these patterns (a regular expression each).
        let v1 = web::scope("/v1/sandboxes")
            .service(resource("").route(web::post().to(v1::create)).route(web::get().to(v1::list)))
            .service(resource("/snapshots").route(web::get().to(v1::list_snapshots)))
            .service(
                resource("/snapshots/{id}")
                    .route(web::get().to(v1::get_snapshot))
                    .route(web::delete().to(v1::delete_snapshot)),
            )
            .service(resource("/{id}").route(web::get().to(v1::get)))
            .service(resource("/{id}/snapshot").route(web::post().to(v1::snapshot)))
            .service(resource("/{id}/stop").route(web::post().to(v1::stop)))
            .service(resource("/{id}/extend-timeout").route(web::post().to(v1::extend_timeout)));
        let v2 = web::scope("/v2/sandboxes")
            .service(resource("").route(web::post().to(sandboxes::create)).route(web::get().to(sandboxes::list)))
            .service(resource("/sessions").route(web::get().to(sessions::list)))
            .service(resource("/snapshots").route(web::get().to(snapshots::list)))
            .service(
                resource("/snapshots/{id}")
                    .route(web::get().to(snapshots::get))
                    .route(web::delete().to(snapshots::delete)),
            )
            .service(resource("/sessions/{id}/snapshot").route(web::post().to(snapshots::create)))
            .service(resource("/sessions/{id}").route(web::get().to(sessions::get)))
            .service(resource("/sessions/{id}/stop").route(web::post().to(sessions::stop)))
            .service(resource("/sessions/{id}/extend-timeout").route(web::post().to(sessions::extend_timeout)))
            .service(
                resource("/{name}")
                    .route(web::get().to(sandboxes::get))
                    .route(web::patch().to(sandboxes::update))
                    .route(web::delete().to(sandboxes::delete)),
            );
        cfg.service(v1).service(resource("/v3/sandboxes").route(web::post().to(sandboxes::create))).service(v2);
    }
}

/// The paths of this face (a path under them that names nothing gets its 404).
pub fn owns(path: &str) -> bool {
    ["/v1/sandboxes", "/v2/sandboxes", "/v3/sandboxes"]
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, VercelError> {
    Err(VercelError::NotFound(format!("Cannot {} {}", req.method(), req.path())))
}
