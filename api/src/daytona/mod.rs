//! The Daytona face (`/api/sandbox...`): sandboxes as Daytona's API serves them, so that its own
//! generated clients work unmodified. A sandbox is a workload spec of the caller's tenant (the
//! organisation), with Daytona's attributes in its `meta`; its state is its active workload's,
//! and its desired state is that of its pending engine task. Start, stop and delete are engine
//! tasks, and every answer that submits one names it in `Operation-Location` (`/api/tasks/{id}`,
//! served to the same token by the shared `crate::tasks`). A sandbox's auto-stop and auto-delete are scheduled
//! engine tasks (`schedules`). Authentication is by API token (`Authorization:
//! Bearer`).

mod auth;
mod create;
mod error;
mod listing;
mod sandboxes;
mod schedules;
mod settings;
mod view;

pub use error::DaytonaError;
pub use settings::{DaytonaSettings, DaytonaState, start};

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

/// The face's routes, its error body and its own 404.
pub fn scope(state: web::Data<DaytonaState>) -> impl actix_web::dev::HttpServiceFactory {
    let json = web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _| DaytonaError::BadRequest(err.to_string()).into());
    // A method a path does not answer is a 404, as Nest answers it ("Cannot GET ...").
    let resource = |path: &str| web::resource(path).default_service(web::to(not_found));
    web::scope("/api/sandbox")
        .app_data(state)
        .app_data(json)
        .wrap(from_fn(error::remember_path))
        .service(resource("").route(web::post().to(create::create)).route(web::get().to(listing::list)))
        .service(resource("/paginated").route(web::get().to(listing::list_paginated)))
        .service(
            resource("/{id_or_name}").route(web::get().to(sandboxes::get)).route(web::delete().to(sandboxes::delete)),
        )
        .service(resource("/{id_or_name}/toolbox-proxy-url").route(web::get().to(sandboxes::toolbox_proxy_url)))
        .service(resource("/{id_or_name}/labels").route(web::put().to(sandboxes::replace_labels)))
        .service(resource("/{id_or_name}/stop").route(web::post().to(sandboxes::stop)))
        .service(resource("/{id_or_name}/start").route(web::post().to(sandboxes::start)))
        .service(resource("/{id_or_name}/last-activity").route(web::post().to(schedules::last_activity)))
        .service(
            resource("/{id_or_name}/autostop/{interval}")
                .app_data(web::Data::new(schedules::Interval::AutoStop))
                .route(web::post().to(schedules::set_interval)),
        )
        .service(
            resource("/{id_or_name}/autodelete/{interval}")
                .app_data(web::Data::new(schedules::Interval::AutoDelete))
                .route(web::post().to(schedules::set_interval)),
        )
        .default_service(web::to(not_found))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, DaytonaError> {
    Err(DaytonaError::NotFound(format!("Cannot {} {}", req.method(), req.path())))
}

/// Daytona's 404 for a path under `/api` that no face serves, answered to a bearer-token caller
/// (a Daytona SDK's `/api/socket.io` connect): its JSON, not the Veeam face's XML.
pub async fn unserved(req: &HttpRequest) -> HttpResponse {
    let err = DaytonaError::NotFound(format!("Cannot {} {}", req.method(), req.path()));
    error::with_path(req.path(), async move { err.error_response() }).await
}
