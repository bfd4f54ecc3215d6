//! The sandbox endpoints: create, get, stop, start, delete. Each answers 200 with the `Sandbox`
//! (Daytona's clients deserialise only a 200); errors are Daytona's (`error`).

use super::auth::Org;
use super::error::DaytonaError;
use super::settings::DaytonaState;
use super::view::{self, Attributes, SandboxState};
use crate::origin::BaseUrl;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::outcome::{Limits, TaskParams};
use entity::store::specs::OverQuota;
use entity::store::{specs, tasks, workloads};
use entity::{Operation, workload_spec};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use worker::engine::{Admission, Refused, Submission};

/// How long start and create wait for the sandbox to be started, as Daytona's controller does.
const START_WAIT: Duration = Duration::from_secs(30);

/// The tenant's sandbox with that id, else with that name.
async fn find(state: &AppState, org: &Org, id_or_name: &str) -> Result<workload_spec::Model, DaytonaError> {
    let tenant = org.tenant.id;
    // No sandbox's name holds a control character (create refuses them), and the database
    // cannot hold a NUL: such a name names nothing, without a query.
    if id_or_name.chars().any(char::is_control) {
        return Err(DaytonaError::no_sandbox(id_or_name));
    }
    let mut found = match crate::veeam::canonical_uuid(id_or_name) {
        Some(id) => specs::find_of(&state.db, tenant, id).await?,
        None => None,
    };
    if found.is_none() {
        found = specs::find_named(&state.db, tenant, id_or_name).await?;
    }
    found.filter(view::is_sandbox).ok_or_else(|| DaytonaError::no_sandbox(id_or_name))
}

async fn render(state: &AppState, org: &Org, spec: &workload_spec::Model) -> Result<HttpResponse, DaytonaError> {
    Ok(HttpResponse::Ok().json(json_of(state, org, spec).await?))
}

/// The sandbox's JSON as it is now (its spec read again: a submit touched it).
async fn json_of(state: &AppState, org: &Org, spec: &workload_spec::Model) -> Result<serde_json::Value, DaytonaError> {
    let spec = specs::find(&state.db, &spec.id).await?.unwrap_or_else(|| spec.clone());
    sandbox_json(state, org, &spec).await
}

/// The sandbox's JSON: its spec with its progress.
async fn sandbox_json(
    state: &AppState,
    org: &Org,
    spec: &workload_spec::Model,
) -> Result<serde_json::Value, DaytonaError> {
    Ok(view::sandbox(spec, &progress(state, spec).await?, org))
}

/// The JSON of each sandbox, from three reads whatever their number.
async fn sandboxes_json(
    state: &AppState,
    org: &Org,
    specs: &[workload_spec::Model],
) -> Result<Vec<serde_json::Value>, DaytonaError> {
    let mut progress = progress_of(state, specs).await?;
    Ok(specs.iter().map(|spec| view::sandbox(spec, &progress.remove(&spec.id).unwrap_or_default(), org)).collect())
}

/// What the sandbox's states are derived from.
async fn progress(state: &AppState, spec: &workload_spec::Model) -> Result<view::Progress, DaytonaError> {
    Ok(progress_of(state, std::slice::from_ref(spec)).await?.remove(&spec.id).unwrap_or_default())
}

/// `progress` of each sandbox, by its id, in three reads: the pending tasks first, then the
/// active workloads, then the last workload of those with none active. The reads are not one
/// snapshot, and in this order a change between them cannot make a sandbox look idle: a task
/// seen finished had done its work on the workload before (the other order could miss both a
/// start's new workload and its task, finished in between, and let a second start through).
async fn progress_of(
    state: &AppState,
    specs: &[workload_spec::Model],
) -> Result<HashMap<String, view::Progress>, DaytonaError> {
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    let mut progress: HashMap<String, view::Progress> = HashMap::new();
    for task in tasks::pending_for_each(&state.db, &ids).await? {
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
    Ok(progress)
}

/// The query string's pairs; a NUL (which no stored text holds) is a 400.
fn pairs_of(req: &HttpRequest) -> Result<Vec<(String, String)>, DaytonaError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| DaytonaError::BadRequest("The query string is malformed".into()))?;
    if pairs.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
        return Err(DaytonaError::BadRequest("The query string must not hold a NUL".into()));
    }
    Ok(pairs)
}

fn one<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A whole number in `range`, `default` when absent; else a 400 naming it.
fn number(
    pairs: &[(String, String)],
    name: &str,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
) -> Result<u64, DaytonaError> {
    match one(pairs, name) {
        None => Ok(default),
        Some(text) => text.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            DaytonaError::BadRequest(format!(
                "{name} must not be greater than {}, {name} must not be less than {}",
                range.end(),
                range.start()
            ))
        }),
    }
}

/// The most labels a listing filters by (each is a condition of its query; the databases bound
/// how many one query may hold).
const MAX_LABEL_FILTERS: usize = 100;

/// The listing's filters and order (`id`/`name` prefixes, `states`, `labels`, `sort`, `order`);
/// `None` when the states asked for are ones this engine never reports (nothing matches).
fn query_of(pairs: &[(String, String)]) -> Result<Option<specs::SpecQuery>, DaytonaError> {
    let mut states = Vec::new();
    let mut asked_states = false;
    for (_, name) in pairs.iter().filter(|(k, _)| k == "states" || k == "states[]") {
        asked_states = true;
        // A Daytona state this engine never reports matches nothing; one asked twice, once.
        if let Some(state) = view::workload_state_of(name)?
            && !states.contains(&state)
        {
            states.push(state);
        }
    }
    let labels: Vec<(String, String)> = match one(pairs, "labels") {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<BTreeMap<String, String>>(text)
            .map_err(|_| DaytonaError::BadRequest("Invalid labels JSON format".into()))?
            .into_iter()
            .collect(),
    };
    if labels.iter().any(|(key, _)| !label_key_ok(key)) {
        return Err(DaytonaError::BadRequest("Invalid labels JSON format".into()));
    }
    if labels.len() > MAX_LABEL_FILTERS {
        return Err(DaytonaError::BadRequest(format!("labels may filter by at most {MAX_LABEL_FILTERS} labels")));
    }
    let sort = match one(pairs, "sort").unwrap_or("lastActivityAt") {
        "lastActivityAt" => specs::SpecSort::UpdatedAt,
        "createdAt" => specs::SpecSort::CreatedAt,
        "name" => specs::SpecSort::Name,
        "cpu" => specs::SpecSort::CpuMillis,
        "memoryGib" => specs::SpecSort::MemoryBytes,
        "diskGib" => specs::SpecSort::DiskBytes,
        other => {
            return Err(DaytonaError::BadRequest(format!(
                "sort by {other} is not supported: use name, cpu, memoryGib, diskGib, createdAt or lastActivityAt"
            )));
        }
    };
    let descending = match one(pairs, "order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => return Err(DaytonaError::BadRequest(format!("order must be asc or desc, not {other}"))),
    };
    if asked_states && states.is_empty() {
        return Ok(None);
    }
    Ok(Some(specs::SpecQuery {
        face: Some("daytona"),
        id_prefix: one(pairs, "id").map(str::to_owned),
        name_prefix: one(pairs, "name").map(str::to_owned),
        states,
        labels,
        sort,
        descending,
    }))
}

/// `GET /api/sandbox`: `{items, nextCursor}`, a keyset page (`cursor`, `limit` 1..200 default
/// 100, and the filters and order of `query_of`).
pub async fn list(org: Org, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DaytonaError> {
    let pairs = pairs_of(&req)?;
    let limit = number(&pairs, "limit", 1..=200, 100)?;
    let Some(query) = query_of(&pairs)? else {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"items": [], "nextCursor": null})));
    };
    let after = match one(&pairs, "cursor") {
        Some(text) if !text.is_empty() => {
            Some(query.cursor(text).map_err(|_| DaytonaError::BadRequest("Invalid cursor".into()))?)
        }
        _ => None,
    };
    let page = specs::page(&state.db, org.tenant.id, &query, after.as_ref(), limit).await?;
    let items = sandboxes_json(&state, &org, &page.items).await?;
    let next = page.next.map(|c| c.encode());
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items, "nextCursor": next})))
}

/// `GET /api/sandbox/paginated` (deprecated by Daytona, still called by its clients up to
/// 0.210): numbered pages (`page` from 1, `limit` 1..200 default 100) of full sandboxes, as
/// `{items, total, page, totalPages}`, with the filters and order of `query_of`.
pub async fn list_paginated(
    org: Org,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DaytonaError> {
    let pairs = pairs_of(&req)?;
    let page = number(&pairs, "page", 1..=u64::from(u32::MAX), 1)?;
    let limit = number(&pairs, "limit", 1..=200, 100)?;
    let (rows, total) = match query_of(&pairs)? {
        Some(query) => specs::numbered_page(&state.db, org.tenant.id, &query, page, limit).await?,
        None => (Vec::new(), 0),
    };
    let items = sandboxes_json(&state, &org, &rows).await?;
    let body = serde_json::json!({"items": items, "total": total, "page": page, "totalPages": total.div_ceil(limit)});
    Ok(HttpResponse::Ok().json(body))
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
fn submitted(result: Result<entity::task::Model, Refused>) -> Result<entity::task::Model, DaytonaError> {
    result.map_err(|refused| match refused {
        Refused::Modified => modified(),
        Refused::OverQuota(over) => over_quota(over),
    })
}

/// Daytona's 403 for an organisation over one of its limits.
fn over_quota(over: OverQuota) -> DaytonaError {
    let gib = |bytes: i64| bytes >> 30;
    DaytonaError::Forbidden(match over {
        OverQuota::Running(max) => format!("Total running sandboxes limit exceeded. Maximum allowed: {max}."),
        OverQuota::CpuMillis(max) => format!("Total CPU limit exceeded. Maximum allowed: {}.", max / 1000),
        OverQuota::MemoryBytes(max) => format!("Total memory limit exceeded. Maximum allowed: {}GiB.", gib(max)),
        OverQuota::DiskBytes(max) => format!("Total disk limit exceeded. Maximum allowed: {}GiB.", gib(max)),
    })
}

/// The organisation's quota, which a create or a start must stay within.
fn admission(daytona: &DaytonaState) -> Admission {
    Admission { face: "daytona", quota: daytona.quota }
}

/// A sandbox's delete: its working directory (its own) goes with it.
fn deletion(params: TaskParams) -> TaskParams {
    TaskParams { remove_files: true, ..params }
}

fn modified() -> DaytonaError {
    DaytonaError::Conflict("Sandbox was modified by another operation".into())
}

fn submission<'a>(
    org: &Org,
    spec: &'a workload_spec::Model,
    operation: Operation,
    params: TaskParams,
) -> Submission<'a> {
    Submission { tenant_id: org.tenant.id, user_id: org.user_id, operation, target_id: &spec.id, params }
}

/// How a sandbox's schedules are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Started (created, started, or used while started): an auto-stop after
    /// `autoStopInterval` (for an ephemeral sandbox a delete) and a delete `autoDeleteInterval`
    /// after that; nothing else.
    Started,
    /// Stopped just now: a delete `autoDeleteInterval` from now, beside what is there. The
    /// auto-stop stays: should the stop be cancelled, the sandbox still stops when idle; on a
    /// stopped sandbox it does nothing.
    Stopping,
    /// Stopped, and used or changed: a delete `autoDeleteInterval` from now; nothing else.
    Stopped,
}

/// A sandbox's schedules are scheduled engine tasks, counted in its minutes (`minute_ms`). A
/// schedule replaced is moved, not added (see `Engine::schedule`), so activity leaves no rows
/// behind; one past the engine's horizon (or what a date can hold) means never. Every
/// scheduled delete of a non-ephemeral sandbox is `only_if_stopped`: a sandbox started again,
/// or whose stop was cancelled, is not deleted.
async fn schedule(
    state: &AppState,
    daytona: &DaytonaState,
    org: &Org,
    spec: &workload_spec::Model,
    from: Standing,
) -> Result<(), DaytonaError> {
    let a = Attributes::of(spec);
    // `n` minutes after `from`; `None` (never) past what a date can hold.
    let after = |from: chrono::DateTime<chrono::Utc>, n: i64| {
        i32::try_from(n).ok().and_then(|n| daytona.minute.checked_mul(n)).and_then(|d| from.checked_add_signed(d))
    };
    let mut keep = Vec::new();
    let mut stopped_at = Some(chrono::Utc::now());
    if from == Standing::Started {
        stopped_at = None;
        if let Some(at) = after(chrono::Utc::now(), a.auto_stop_interval).filter(|_| a.auto_stop_interval > 0) {
            let (operation, params) = match a.auto_delete_interval {
                0 => (Operation::DeleteSpec, deletion(TaskParams::default())),
                _ => (Operation::StopSpec, TaskParams::default()),
            };
            let task = state.engine.schedule(submission(org, spec, operation, params), at).await?;
            keep.extend(task.map(|t| t.id));
            stopped_at = Some(at);
        }
    }
    let delete_at = stopped_at.filter(|_| a.auto_delete_interval > 0).and_then(|at| after(at, a.auto_delete_interval));
    if let Some(at) = delete_at {
        let params = deletion(TaskParams { only_if_stopped: true, ..TaskParams::default() });
        let task = state.engine.schedule(submission(org, spec, Operation::DeleteSpec, params), at).await?;
        keep.extend(task.map(|t| t.id));
    }
    if from != Standing::Stopping {
        state.engine.unschedule_except(&spec.id, &keep, org.user_id).await?;
    }
    Ok(())
}

/// The sandbox's schedules, counted from now as it stands (started or stopped); none are
/// touched while a change is under way (the change sets its own).
async fn schedule_from_now(
    state: &AppState,
    daytona: &DaytonaState,
    org: &Org,
    spec: &workload_spec::Model,
    now: view::States,
) -> Result<(), DaytonaError> {
    if now.changing {
        return Ok(());
    }
    let from = if now.stored == SandboxState::Started { Standing::Started } else { Standing::Stopped };
    schedule(state, daytona, org, spec, from).await
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
    Ok(HttpResponse::Ok().insert_header(("Operation-Location", location)).json(body))
}

/// The sandbox's states now.
async fn states(state: &AppState, spec: &workload_spec::Model) -> Result<view::States, DaytonaError> {
    Ok(view::States::of(&progress(state, spec).await?))
}

fn in_progress() -> DaytonaError {
    DaytonaError::Conflict("Sandbox state change in progress".into())
}

pub async fn get(org: Org, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, DaytonaError> {
    let spec = find(&state, &org, &path).await?;
    render(&state, &org, &spec).await
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
    let force = bool_param(&req, "force")?.unwrap_or(false);
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
async fn wait_started(
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

/// `POST /api/sandbox/{idOrName}/last-activity`: the sandbox was used now, so its auto-stop
/// (and the auto-delete after it) counts from now. 201 without a body, as Daytona answers.
pub async fn last_activity(
    org: Org,
    path: web::Path<String>,
    state: web::Data<AppState>,
    daytona: web::Data<DaytonaState>,
) -> Result<HttpResponse, DaytonaError> {
    let spec = find(&state, &org, &path).await?;
    let now = states(&state, &spec).await?;
    if !specs::touch(&state.db, &spec, None).await? {
        return Err(modified());
    }
    schedule_from_now(&state, &daytona, &org, &spec, now).await?;
    Ok(HttpResponse::Created().finish())
}

/// Which schedule `POST /api/sandbox/{idOrName}/auto{stop,delete}/{interval}` sets.
#[derive(Debug, Clone, Copy)]
pub enum Interval {
    /// Minutes idle before a stop; 0 = never. Negative: a 400.
    AutoStop,
    /// Minutes stopped before a delete; 0 = ephemeral, negative = never.
    AutoDelete,
}

/// `POST /api/sandbox/{idOrName}/autostop/{interval}` and `.../autodelete/{interval}`: sets the
/// interval and schedules from now by it; 200 with the sandbox (what Daytona's current
/// clients read).
pub async fn set_interval(
    org: Org,
    path: web::Path<(String, String)>,
    which: web::Data<Interval>,
    state: web::Data<AppState>,
    daytona: web::Data<DaytonaState>,
) -> Result<HttpResponse, DaytonaError> {
    let (id_or_name, text) = path.into_inner();
    // A whole number of minutes; clients that send numbers as floats send `5.0`.
    let minutes = text
        .parse::<i64>()
        .ok()
        .or_else(|| text.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64))
        .ok_or_else(|| DaytonaError::BadRequest(format!("interval must be a whole number of minutes, not {text}")))?;
    let spec = find(&state, &org, &id_or_name).await?;
    let mut attributes = Attributes::of(&spec);
    match **which {
        Interval::AutoStop if minutes < 0 => {
            return Err(DaytonaError::BadRequest("Auto-stop interval must be a non-negative integer".into()));
        }
        Interval::AutoStop => attributes.auto_stop_interval = minutes,
        Interval::AutoDelete => attributes.auto_delete_interval = minutes,
    }
    let now = states(&state, &spec).await?;
    if !specs::touch(&state.db, &spec, Some(&attributes.into_meta(&spec)?)).await? {
        return Err(modified());
    }
    let spec = specs::find(&state.db, &spec.id).await?.ok_or_else(|| DaytonaError::no_sandbox(&id_or_name))?;
    schedule_from_now(&state, &daytona, &org, &spec, now).await?;
    render(&state, &org, &spec).await
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

/// What `POST /api/sandbox` accepts (unknown fields are ignored, as Daytona's DTO does).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateSandbox {
    name: Option<String>,
    snapshot: Option<String>,
    user: Option<String>,
    env: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    public: Option<bool>,
    network_block_all: Option<bool>,
    target: Option<String>,
    cpu: Option<i64>,
    gpu: Option<i64>,
    memory: Option<i64>,
    disk: Option<i64>,
    auto_stop_interval: Option<i64>,
    auto_archive_interval: Option<i64>,
    auto_delete_interval: Option<i64>,
}

/// `POST /api/sandbox`: creates the sandbox and starts it (waiting up to 30 s for `started`).
pub async fn create(
    org: Org,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
    state: web::Data<AppState>,
    daytona: web::Data<DaytonaState>,
) -> Result<HttpResponse, DaytonaError> {
    // An object (a JSON array would fill the fields in order, as serde reads a struct).
    if !body.is_object() {
        return Err(DaytonaError::BadRequest("the body must be a JSON object".into()));
    }
    let body: CreateSandbox =
        serde_json::from_value(body.into_inner()).map_err(|err| DaytonaError::BadRequest(err.to_string()))?;
    if !body.env.keys().all(|key| env_key_ok(key)) {
        return Err(DaytonaError::BadRequest("env names must be 1 to 255 characters, without '=' or NUL".into()));
    }
    if let Some((name, why)) =
        body.env.keys().find_map(|name| entity::environment::refused(name).map(|why| (name, why)))
    {
        return Err(DaytonaError::BadRequest(format!("env {name} is not allowed: {why}")));
    }
    // PostgreSQL holds no NUL, in text or in JSON (`\u0000`): refused in every string.
    let texts = [&body.name, &body.snapshot, &body.user, &body.target].into_iter().flatten();
    let maps = body.env.iter().flat_map(|(k, v)| [k, v]);
    if texts.chain(maps).any(|text| text.contains('\0')) {
        return Err(DaytonaError::BadRequest("strings must not contain NUL".into()));
    }
    check_labels(&body.labels)?;
    let defaults = Attributes::default();
    let size = |name: &str, value: Option<i64>, default: i64| -> Result<i64, DaytonaError> {
        match value {
            None => Ok(default),
            Some(n) if (1..=1024).contains(&n) => Ok(n),
            Some(n) => Err(DaytonaError::BadRequest(format!("{name} must be a whole number from 1 to 1024, not {n}"))),
        }
    };
    let attributes = Attributes {
        snapshot: body.snapshot.unwrap_or(defaults.snapshot),
        user: body.user.unwrap_or(defaults.user),
        labels: body.labels,
        public: body.public.unwrap_or(false),
        network_block_all: body.network_block_all.unwrap_or(false),
        target: body.target.unwrap_or(defaults.target),
        cpu: size("cpu", body.cpu, defaults.cpu)?,
        gpu: non_negative("gpu", body.gpu, 0)?,
        memory: size("memory", body.memory, defaults.memory)?,
        disk: size("disk", body.disk, defaults.disk)?,
        auto_stop_interval: non_negative("autoStopInterval", body.auto_stop_interval, defaults.auto_stop_interval)?,
        auto_archive_interval: non_negative(
            "autoArchiveInterval",
            body.auto_archive_interval,
            defaults.auto_archive_interval,
        )?,
        auto_delete_interval: body.auto_delete_interval.unwrap_or(defaults.auto_delete_interval),
    };
    let [max_cpu, max_memory, max_disk] = daytona.per_sandbox;
    let per_sandbox = if attributes.cpu > max_cpu {
        Some(format!("CPU request {} exceeds maximum allowed per sandbox ({max_cpu}).", attributes.cpu))
    } else if attributes.memory > max_memory {
        Some(format!("Memory request {}GB exceeds maximum allowed per sandbox ({max_memory}GB).", attributes.memory))
    } else if attributes.disk > max_disk {
        Some(format!("Disk request {}GB exceeds maximum allowed per sandbox ({max_disk}GB).", attributes.disk))
    } else {
        None
    };
    if let Some(message) = per_sandbox {
        return Err(DaytonaError::Forbidden(message));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let name = body.name.unwrap_or_else(|| id.clone());
    if name.is_empty() || name.len() > 255 || name.contains('/') || name.chars().any(char::is_control) {
        return Err(DaytonaError::BadRequest("name must be 1 to 255 characters, without '/'".into()));
    }
    let new = specs::NewSpec {
        name: name.clone(),
        command: daytona.sandbox_command.clone(),
        working_dir: daytona.sandbox_dir.join(&id).display().to_string(),
        meta: serde_json::json!({ "daytona": attributes }),
        limits: Limits {
            cpu_millis: u32::try_from(attributes.cpu * 1000).ok(),
            memory_bytes: u64::try_from(attributes.memory).ok().map(|gib| gib << 30),
            max_processes: None,
        },
        env: body.env,
        disk_bytes: u64::try_from(attributes.disk).ok().map(|gib| gib << 30),
    };
    let params = TaskParams { name: Some(name.clone()), ..TaskParams::default() };
    let start = Submission {
        tenant_id: org.tenant.id,
        user_id: org.user_id,
        operation: Operation::StartWorkload,
        target_id: &id,
        params,
    };
    let (spec, task) = match state.engine.create_and_submit(start, &new, Some(&admission(&daytona))).await {
        Ok(Ok(created)) => created,
        Ok(Err(over)) => return Err(over_quota(over)),
        Err(err) if specs::is_name_taken(&err) => {
            return Err(DaytonaError::Conflict(format!("Sandbox with name {name} already exists")));
        }
        Err(err) => return Err(err.into()),
    };
    wait_started(&req, &state, &daytona, &org, &spec, task).await
}

/// A count that may not be negative (`default` when absent); else a 400 naming it. (A negative
/// `autoDeleteInterval` is allowed: it means never.)
fn non_negative(name: &str, value: Option<i64>, default: i64) -> Result<i64, DaytonaError> {
    match value {
        Some(n) if n < 0 => Err(DaytonaError::BadRequest(format!("{name} must be a non-negative integer, not {n}"))),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// A boolean query parameter: only `true` or `false` (Nest's `ParseBoolPipe`), else a 400.
fn bool_param(req: &HttpRequest, name: &str) -> Result<Option<bool>, DaytonaError> {
    match one(&pairs_of(req)?, name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(DaytonaError::BadRequest("Validation failed (boolean string is expected)".into())),
    }
}

/// An environment variable name `exec` can pass.
fn env_key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && !key.contains(['=', '\0'])
}

/// Labels a sandbox can carry: keys a JSON path can name, no NUL anywhere (PostgreSQL holds
/// none, in text or in JSON).
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), DaytonaError> {
    if labels.iter().any(|(key, value)| key.contains('\0') || value.contains('\0')) {
        return Err(DaytonaError::BadRequest("strings must not contain NUL".into()));
    }
    if !labels.keys().all(|key| label_key_ok(key)) {
        return Err(DaytonaError::BadRequest("label keys must be 1 to 255 characters, without '\"' or '\\'".into()));
    }
    Ok(())
}

/// A label key that a JSON path can name (no quote, no backslash).
fn label_key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && !key.contains(['"', '\\']) && !key.chars().any(char::is_control)
}
