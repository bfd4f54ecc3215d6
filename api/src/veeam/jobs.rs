//! `/api/jobs`: the jobs of the jobs file, and their start and stop actions.

use super::auth::Caller;
use super::error::VeeamError;
use super::render::ok;
use super::views::{EntityRefView, JobTypes, JobView, List, references};
use super::{Params, hrefs, tasks};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::outcome::TaskParams;
use entity::store::{specs, workloads};
use entity::{Operation, workload_spec};

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<workload_spec::Model, VeeamError> {
    let not_found = || VeeamError::NotFound(format!("There is no job with id [{id}]."));
    let id = crate::ids::canonical_uuid(id).ok_or_else(not_found)?;
    specs::find_of(&state.db, caller.user.tenant_id, id).await?.ok_or_else(not_found)
}

pub async fn list_jobs(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let params = Params::of(&req)?;
    let hrefs = hrefs(&req, &state);
    let all = specs::list_of(&state.db, caller.user.tenant_id).await?;
    Ok(if params.wants_entities() {
        ok(&List { root: "Jobs", key: "Jobs", items: all.iter().map(|job| JobView { job, hrefs: &hrefs }).collect() })
    } else {
        ok(&references(all.iter().map(|j| EntityRefView::job(j, &hrefs)).collect()))
    })
}

pub async fn get_job(
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let params = Params::of(&req)?;
    let job = find(&state, &caller, &id).await?;
    let hrefs = hrefs(&req, &state);
    Ok(if params.wants_entities() {
        ok(&JobView { job: &job, hrefs: &hrefs })
    } else {
        ok(&EntityRefView::job(&job, &hrefs))
    })
}

/// `POST /api/jobs/{id}?action=start|stop` → 202 + Task (StartJob, StopJob).
pub async fn act_on_job(
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let action = Params::of(&req)?.action()?;
    let job = find(&state, &caller, &id).await?;
    match action.as_str() {
        "start" => {
            // Enterprise Manager names a session after its job and the time it was asked for.
            let name = format!("{}@{}", job.name, entity::store::now().format("%Y-%m-%d %H:%M:%S"));
            let params = TaskParams { name: Some(name), ..TaskParams::default() };
            tasks::accept(&req, &state, &caller, Operation::StartWorkload, &job.id, params, None).await
        }
        "stop" => tasks::accept(&req, &state, &caller, Operation::StopSpec, &job.id, TaskParams::default(), None).await,
        other => Err(VeeamError::BadRequest(format!("Action '{other}' is not supported for jobs; use start or stop."))),
    }
}

pub async fn list_job_sessions(
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let params = Params::of(&req)?;
    let job = find(&state, &caller, &id).await?;
    let all = workloads::list_for_spec(&state.db, caller.user.tenant_id, &job.id).await?;
    let job_types = JobTypes::of(&state.db, caller.user.tenant_id).await?;
    Ok(super::sessions::session_list(params.wants_entities(), &all, &job_types, &hrefs(&req, &state)))
}
