//! `/api/backupSessions`: backup job sessions, and their stop action.

use super::auth::Caller;
use super::error::VeeamError;
use super::render::ok;
use super::views::{BackupJobSessionView, EntityRefView, Hrefs, JobTypes, List, references};
use super::{Params, hrefs, tasks};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::outcome::TaskParams;
use entity::store::{specs, workloads};
use entity::{Operation, workload};

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<workload::Model, VeeamError> {
    let not_found = || VeeamError::NotFound(format!("There is no backup job session with id [{id}]."));
    let id = crate::ids::canonical_uuid(id).ok_or_else(not_found)?;
    workloads::find_of(&state.db, caller.user.tenant_id, id).await?.ok_or_else(not_found)
}

pub async fn list_sessions(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let params = Params::of(&req)?;
    let all = workloads::list_of(&state.db, caller.user.tenant_id).await?;
    let job_types = JobTypes::of(&state.db, caller.user.tenant_id).await?;
    Ok(session_list(params.wants_entities(), &all, &job_types, &hrefs(&req, &state)))
}

/// A list of sessions: `BackupJobSessions` entities with `?format=Entity`, else references.
pub fn session_list(entities: bool, all: &[workload::Model], job_types: &JobTypes, hrefs: &Hrefs) -> HttpResponse {
    if entities {
        let items = all
            .iter()
            .map(|session| BackupJobSessionView { session, job_type: job_types.of_session(session), hrefs })
            .collect();
        ok(&List { root: "BackupJobSessions", key: "BackupJobSessions", items })
    } else {
        ok(&references(all.iter().map(|s| EntityRefView::session(s, hrefs)).collect()))
    }
}

pub async fn get_session(
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let params = Params::of(&req)?;
    let session = find(&state, &caller, &id).await?;
    let hrefs = hrefs(&req, &state);
    Ok(if params.wants_entities() {
        let spec = specs::find(&state.db, &session.spec_id).await?;
        let job_type = spec.as_ref().map_or_else(|| "Backup".to_owned(), super::views::job_type);
        ok(&BackupJobSessionView { session: &session, job_type: &job_type, hrefs: &hrefs })
    } else {
        ok(&EntityRefView::session(&session, &hrefs))
    })
}

/// `POST /api/backupSessions/{id}?action=stop` → 202 + Task (StopJobSession); the engine routes
/// it to the runner that owns the session's processes.
pub async fn act_on_session(
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let action = Params::of(&req)?.action()?;
    let session = find(&state, &caller, &id).await?;
    match action.as_str() {
        "stop" => {
            let owner = Some(session.runner_id.as_str());
            tasks::accept(&req, &state, &caller, Operation::StopWorkload, &session.id, TaskParams::default(), owner)
                .await
        }
        other => {
            Err(VeeamError::BadRequest(format!("Action '{other}' is not supported for backup sessions; use stop.")))
        }
    }
}
