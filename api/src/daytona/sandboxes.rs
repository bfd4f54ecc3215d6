//! A sandbox: how it is found and shown, how a change of it is submitted to the engine, and the
//! endpoints that read or change one: get, stop, start, delete, labels, toolbox-proxy-url. (The
//! listing, the schedules and create have their own files.) Each answers 200 with the
//! `Sandbox` (Daytona's clients deserialise only a 200); errors are Daytona's (`error`).

use super::auth::Org;
use super::error::DaytonaError;
use super::schedules::{Standing, schedule};
use super::settings::DaytonaState;
use super::view::{self, Attributes, SandboxState};
use crate::origin::BaseUrl;
use crate::query::QueryPairs;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use entity::outcome::TaskParams;
use entity::store::specs::OverQuota;
use entity::store::{specs, tasks, workloads};
use entity::{Operation, workload_spec};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use worker::engine::{Admission, Refused, Submission};

/// How long start and create wait for the sandbox to be started, as Daytona's controller does.
const START_WAIT: Duration = Duration::from_secs(30);

/// The tenant's sandbox with that id, else with that name.
pub(super) async fn find(state: &AppState, org: &Org, id_or_name: &str) -> Result<workload_spec::Model, DaytonaError> {
    let tenant = org.tenant.id;
    // No sandbox's name holds a control character (create refuses them), and the database
    // cannot hold a NUL: such a name names nothing, without a query.
    if id_or_name.chars().any(char::is_control) {
        return Err(DaytonaError::no_sandbox(id_or_name));
    }
    let mut found = match crate::ids::canonical_uuid(id_or_name) {
        Some(id) => specs::find_of(&state.db, tenant, id).await?,
        None => None,
    };
    if found.is_none() {
        found = specs::find_named(&state.db, tenant, id_or_name).await?;
    }
    found.filter(view::is_sandbox).ok_or_else(|| DaytonaError::no_sandbox(id_or_name))
}

pub(super) async fn render(
    state: &AppState,
    org: &Org,
    spec: &workload_spec::Model,
) -> Result<HttpResponse, DaytonaError> {
    Ok(HttpResponse::Ok().json(json_of(state, org, spec).await?))
}

/// The sandbox's JSON as it is now (its spec read again: a submit touched it), with its
/// progress.
async fn json_of(state: &AppState, org: &Org, spec: &workload_spec::Model) -> Result<serde_json::Value, DaytonaError> {
    let spec = specs::find(&state.db, &spec.id).await?.unwrap_or_else(|| spec.clone());
    Ok(view::sandbox(&spec, &progress(state, &spec).await?, org))
}

/// The JSON of each sandbox, from three reads whatever their number.
pub(super) async fn sandboxes_json(
    state: &AppState,
    org: &Org,
    specs: &[workload_spec::Model],
) -> Result<Vec<serde_json::Value>, DaytonaError> {
    let (mut progress, _) = progress_of(state, specs).await?;
    Ok(specs.iter().map(|spec| view::sandbox(spec, &progress.remove(&spec.id).unwrap_or_default(), org)).collect())
}

/// What the sandbox's states are derived from.
async fn progress(state: &AppState, spec: &workload_spec::Model) -> Result<view::Progress, DaytonaError> {
    Ok(progress_of(state, std::slice::from_ref(spec)).await?.0.remove(&spec.id).unwrap_or_default())
}

/// `progress` of each sandbox, by its id, in three reads: the pending tasks first, then the
/// active workloads, then the last workload of those with none active. The reads are not one
/// snapshot, and in this order a change between them cannot make a sandbox look idle: a task
/// seen finished had done its work on the workload before (the other order could miss both a
/// start's new workload and its task, finished in between, and let a second start through).
/// And when a task scheduled for later comes due (the progress changes then, with no write).
async fn progress_of(
    state: &AppState,
    specs: &[workload_spec::Model],
) -> Result<(HashMap<String, view::Progress>, Option<DateTime<Utc>>), DaytonaError> {
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    let mut progress: HashMap<String, view::Progress> = HashMap::new();
    let (pending, comes_due) = tasks::pending_for_each(&state.db, &ids).await?;
    for task in pending {
        let id = task.target_id.clone();
        progress.entry(id).or_default().pending = Some(task);
    }
    for workload in workloads::active_of_specs(&state.db, &ids).await? {
        let id = workload.spec_id.clone();
        progress.entry(id).or_default().active = Some(workload);
    }
    let idle: Vec<&str> = ids.iter().copied().filter(|id| !progress.contains_key(*id)).collect();
    for workload in workloads::last_ended_of_specs(&state.db, &idle).await? {
        let id = workload.spec_id.clone();
        progress.entry(id).or_default().last = Some(workload);
    }
    Ok((progress, comes_due))
}

/// Submits `operation` on the sandbox for the organisation, if the sandbox is still as `spec`
/// (read before the caller checked its state); else Daytona's 409 "modified by another
/// operation": of requests racing to change a sandbox, one wins.
async fn submit(
    state: &AppState,
    org: &Org,
    spec: &workload_spec::Model,
    operation: Operation,
    params: TaskParams,
) -> Result<entity::task::Model, DaytonaError> {
    submitted(state.engine.submit_if_unchanged(submission(org, spec, operation, params), spec, None).await?)
}

/// A refused submission in Daytona's words.
pub(super) fn submitted(result: Result<entity::task::Model, Refused>) -> Result<entity::task::Model, DaytonaError> {
    result.map_err(|refused| match refused {
        Refused::Modified => modified(),
        Refused::OverQuota(over) => over_quota(over),
    })
}

/// Daytona's 403 for an organisation over one of its limits.
pub(super) fn over_quota(over: OverQuota) -> DaytonaError {
    let gib = |bytes: i64| bytes >> 30;
    DaytonaError::Forbidden(match over {
        OverQuota::Running(max) => format!("Total running sandboxes limit exceeded. Maximum allowed: {max}."),
        OverQuota::CpuMillis(max) => format!("Total CPU limit exceeded. Maximum allowed: {}.", max / 1000),
        OverQuota::MemoryBytes(max) => format!("Total memory limit exceeded. Maximum allowed: {}GiB.", gib(max)),
        OverQuota::DiskBytes(max) => format!("Total disk limit exceeded. Maximum allowed: {}GiB.", gib(max)),
    })
}

/// The organisation's quota, which a create or a start must stay within.
pub(super) fn admission(daytona: &DaytonaState) -> Admission {
    Admission { face: "daytona", quota: daytona.quota }
}

/// A sandbox's delete: its working directory (its own) goes with it.
pub(super) fn deletion(params: TaskParams) -> TaskParams {
    TaskParams { remove_files: true, ..params }
}

pub(super) fn modified() -> DaytonaError {
    DaytonaError::Conflict("Sandbox was modified by another operation".into())
}

pub(super) fn submission<'a>(
    org: &Org,
    spec: &'a workload_spec::Model,
    operation: Operation,
    params: TaskParams,
) -> Submission<'a> {
    Submission { tenant_id: org.tenant.id, user_id: org.user_id, operation, target_id: &spec.id, params, owner: None }
}

/// What an answer that submitted a task shows.
enum Shown {
    /// The sandbox as the request left it, its task pending (a stop, a delete): Daytona answers
    /// `stopping` or `destroying`, however fast the change then is.
    AsLeft,
    /// The sandbox as it is now (a start, answered once started).
    Now,
}

/// 200 with the sandbox, and the `Operation-Location` of the task that changes it
/// (`/api/tasks/{id}`, readable with the same token).
async fn accepted(
    req: &HttpRequest,
    state: &AppState,
    org: &Org,
    spec: &workload_spec::Model,
    task: &entity::task::Model,
    shown: Shown,
) -> Result<HttpResponse, DaytonaError> {
    let location = BaseUrl::of(req, state).operation_location(task.id);
    let body = match shown {
        Shown::Now => json_of(state, org, spec).await?,
        Shown::AsLeft => {
            let spec = specs::find(&state.db, &spec.id).await?.unwrap_or_else(|| spec.clone());
            let active = workloads::active_of_spec(&state.db, &spec.id).await?;
            view::sandbox(&spec, &view::Progress { active, pending: Some(task.clone()), last: None }, org)
        }
    };
    Ok(HttpResponse::Ok().insert_header(location).json(body))
}

/// The sandbox's states now.
pub(super) async fn states(state: &AppState, spec: &workload_spec::Model) -> Result<view::States, DaytonaError> {
    Ok(view::States::of(&progress(state, spec).await?))
}

fn in_progress() -> DaytonaError {
    DaytonaError::Conflict("Sandbox state change in progress".into())
}

/// What a sandbox is shown from, kept in `AppState::views` while it stays current (and until a
/// task scheduled for it comes due); with its JSON, as shown to requests whose toolbox link is
/// `toolbox_proxy_url` (the link follows the request's base).
struct KeptSandbox {
    spec: workload_spec::Model,
    progress: view::Progress,
    until: Option<DateTime<Utc>>,
    toolbox_proxy_url: String,
    body: web::Bytes,
}

/// `GET /api/sandbox/{idOrName}`: from the view kept of it when there is one (by id), else
/// read, and kept.
pub async fn get(org: Org, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, DaytonaError> {
    if let Some(kept) = state.views.fresh::<KeptSandbox>(&path).await
        && kept.spec.tenant_id == org.tenant.id
        && kept.until.is_none_or(|at| entity::store::now() < at)
    {
        if kept.toolbox_proxy_url == org.toolbox_proxy_url {
            return Ok(crate::views::json_answer(kept.body.clone()));
        }
        return Ok(HttpResponse::Ok().json(view::sandbox(&kept.spec, &kept.progress, &org)));
    }
    let epoch = state.views.epoch();
    let spec = find(&state, &org, &path).await?;
    let (mut progress, until) = progress_of(&state, std::slice::from_ref(&spec)).await?;
    let progress = progress.remove(&spec.id).unwrap_or_default();
    let body = web::Bytes::from(view::sandbox(&spec, &progress, &org).to_string());
    let toolbox_proxy_url = org.toolbox_proxy_url.clone();
    let kept = KeptSandbox { spec, progress, until, toolbox_proxy_url, body: body.clone() };
    state.views.offer(&kept.spec.id.clone(), kept, epoch);
    Ok(crate::views::json_answer(body))
}

/// `GET /api/sandbox/{idOrName}/toolbox-proxy-url`: `{url}`, where the sandbox's toolbox is
/// served (the SDKs ask when a Sandbox's `toolboxProxyUrl` is empty; this face never sends one
/// empty).
pub async fn toolbox_proxy_url(
    org: Org,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DaytonaError> {
    find(&state, &org, &path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "url": org.toolbox_proxy_url })))
}

/// `PUT /api/sandbox/{idOrName}/labels`: replaces the whole label set (as Daytona's
/// `replaceLabels`; it does not merge) and answers 200 with the sandbox. The schedules are left
/// as they are: a label is not activity.
pub async fn replace_labels(
    org: Org,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DaytonaError> {
    // `{"labels": {"key": "value", ...}}` (Daytona's `SandboxLabels`), else a 400 that says so.
    let labels = body
        .get("labels")
        .cloned()
        .and_then(|labels| serde_json::from_value::<BTreeMap<String, String>>(labels).ok())
        .ok_or_else(|| DaytonaError::BadRequest("labels must be an object of string values".into()))?;
    check_labels(&labels)?;
    let spec = find(&state, &org, &path).await?;
    let mut attributes = Attributes::of(&spec);
    attributes.labels = labels;
    if !specs::touch(&state.db, &spec, Some(&attributes.into_meta(&spec)?)).await? {
        return Err(modified());
    }
    render(&state, &org, &spec).await
}

/// `POST /api/sandbox/{idOrName}/stop[?force=true]`: 200 with the sandbox already `stopping`
/// (an ephemeral one, `autoDeleteInterval` 0, is deleted instead: `destroying`).
pub async fn stop(
    org: Org,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
    daytona: web::Data<DaytonaState>,
) -> Result<HttpResponse, DaytonaError> {
    let force = QueryPairs::of(&req)?.bool("force")?.unwrap_or(false);
    let spec = find(&state, &org, &path).await?;
    let now = states(&state, &spec).await?;
    if now.changing {
        return Err(in_progress());
    }
    if now.stored != SandboxState::Started {
        return Err(DaytonaError::BadRequest("Sandbox is not in a stoppable state".into()));
    }
    let params = TaskParams { force, ..TaskParams::default() };
    let task = if Attributes::of(&spec).auto_delete_interval == 0 {
        let task = submit(&state, &org, &spec, Operation::DeleteSpec, deletion(params)).await?;
        state.engine.unschedule(&spec.id, org.user_id).await?;
        task
    } else {
        let task = submit(&state, &org, &spec, Operation::StopSpec, params).await?;
        schedule(&state, &daytona, &org, &spec, Standing::Stopping).await?;
        task
    };
    accepted(&req, &state, &org, &spec, &task, Shown::AsLeft).await
}

/// `POST /api/sandbox/{idOrName}/start`: waits up to 30 s for `started`, then answers with what is.
pub async fn start(
    org: Org,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
    daytona: web::Data<DaytonaState>,
) -> Result<HttpResponse, DaytonaError> {
    let spec = find(&state, &org, &path).await?;
    let now = states(&state, &spec).await?;
    if now.reported == SandboxState::Started {
        return render(&state, &org, &spec).await;
    }
    if now.changing {
        return Err(in_progress());
    }
    if now.stored != SandboxState::Stopped {
        return Err(DaytonaError::BadRequest("Sandbox is not in valid state".into()));
    }
    start_and_wait(&req, &state, &daytona, &org, &spec).await
}

/// Submits the sandbox's start, schedules its auto-stop, and answers once it is started (or
/// after 30 s, with what is).
async fn start_and_wait(
    req: &HttpRequest,
    state: &AppState,
    daytona: &DaytonaState,
    org: &Org,
    spec: &workload_spec::Model,
) -> Result<HttpResponse, DaytonaError> {
    let params = TaskParams { name: Some(spec.name.clone()), ..TaskParams::default() };
    let start = submission(org, spec, Operation::StartWorkload, params);
    let task = submitted(state.engine.submit_if_unchanged(start, spec, Some(&admission(daytona))).await?)?;
    wait_started(req, state, daytona, org, spec, task).await
}

/// Schedules the auto-stop of a sandbox whose start is submitted, and answers once it is
/// started (or after 30 s, with what is).
pub(super) async fn wait_started(
    req: &HttpRequest,
    state: &AppState,
    daytona: &DaytonaState,
    org: &Org,
    spec: &workload_spec::Model,
    task: entity::task::Model,
) -> Result<HttpResponse, DaytonaError> {
    schedule(state, daytona, org, spec, Standing::Started).await?;
    state.engine.wait_finished(task.id, START_WAIT).await?;
    accepted(req, state, org, spec, &task, Shown::Now).await
}

/// `DELETE /api/sandbox/{idOrName}`: 200 with the sandbox `destroying`; once deleted, it is a 404.
pub async fn delete(
    org: Org,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DaytonaError> {
    let spec = find(&state, &org, &path).await?;
    if states(&state, &spec).await?.changing {
        return Err(in_progress());
    }
    let task = submit(&state, &org, &spec, Operation::DeleteSpec, deletion(TaskParams::default())).await?;
    state.engine.unschedule(&spec.id, org.user_id).await?;
    accepted(&req, &state, &org, &spec, &task, Shown::AsLeft).await
}

/// Labels a sandbox can carry: keys a JSON path can name, no NUL anywhere (PostgreSQL holds
/// none, in text or in JSON).
pub(super) fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), DaytonaError> {
    if labels.iter().any(|(key, value)| key.contains('\0') || value.contains('\0')) {
        return Err(DaytonaError::BadRequest("strings must not contain NUL".into()));
    }
    if !labels.keys().all(|key| label_key_ok(key)) {
        return Err(DaytonaError::BadRequest("label keys must be 1 to 255 characters, without '\"' or '\\'".into()));
    }
    Ok(())
}

/// A label key that a JSON path can name (no quote, no backslash).
pub(super) fn label_key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && !key.contains(['"', '\\']) && !key.chars().any(char::is_control)
}
