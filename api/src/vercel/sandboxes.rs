//! Named sandboxes: create (`POST /v3/sandboxes`, and `POST /v2/sandboxes` with a `runtime`),
//! get (with `resume`), list, delete.

use super::VercelState;
use super::auth::Team;
use super::error::VercelError;
use super::sessions::{facts, schedule_timeout};
use super::view::{self, Attributes};
use crate::origin::BaseUrl;
use crate::query::QueryPairs;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::outcome::{Limits, TaskParams};
use entity::store::{specs, workloads};
use entity::{Operation, workload, workload_spec};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use worker::engine::Refused;

/// How long create and resume wait for the session to run.
const START_WAIT: Duration = Duration::from_secs(30);
/// Names that collide with the sub-routes of `/v2/sandboxes`.
const RESERVED: [&str; 3] = ["sessions", "snapshots", "drives"];

/// A sandbox or session name: `^[a-zA-Z0-9_-]+$`, at most 128.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The team's named sandbox `name` in `project` (any project when the caller gave none).
pub async fn find(
    state: &AppState,
    team: &Team,
    name: &str,
    project: Option<&str>,
) -> Result<workload_spec::Model, VercelError> {
    let not_found = || VercelError::NotFound(format!("Sandbox {name} not found"));
    if !name_ok(name) {
        return Err(not_found());
    }
    let spec =
        specs::find_named(&state.db, team.tenant.id, name).await?.filter(view::is_sandbox).ok_or_else(not_found)?;
    match project {
        Some(project) if Attributes::of(&spec).scope != project => Err(not_found()),
        _ => Ok(spec),
    }
}

/// `{sandbox, session, routes}` of the sandbox and its current session (and `resumed`).
pub async fn answer(
    state: &AppState,
    spec: &workload_spec::Model,
    resumed: Option<bool>,
) -> Result<Value, VercelError> {
    let spec = specs::find(&state.db, &spec.id).await?.unwrap_or_else(|| spec.clone());
    let current = workloads::newest_of_spec(&state.db, &spec.id).await?.ok_or(VercelError::Internal)?;
    let facts = facts(state, std::slice::from_ref(&current)).await?.remove(&current.id).unwrap_or_default();
    let mut body = json!({
        "sandbox": view::sandbox(&spec, &current, &facts),
        "session": view::session(&spec, &current, &facts),
        "routes": [],
    });
    if let Some(snapshot) = super::snapshots::current_of(state, spec.tenant_id, &spec).await? {
        body["sandbox"]["currentSnapshotId"] = json!(snapshot);
    }
    if let Some(resumed) = resumed {
        body["resumed"] = json!(resumed);
    }
    Ok(body)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Resources {
    vcpus: Option<i64>,
}

/// What a create accepts (unknown fields are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CreateSandbox {
    project_id: Option<String>,
    name: Option<String>,
    persistent: Option<bool>,
    timeout: Option<i64>,
    resources: Resources,
    runtime: Option<String>,
    source: Option<Value>,
    env: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    snapshot_expiration: Option<i64>,
}

/// `POST /v3/sandboxes` (and `/v2/sandboxes`): creates the named sandbox and its first session,
/// answering once the session runs (or after 30 s, as it is) with `{sandbox, session, routes}`.
pub async fn create(
    team: Team,
    base: BaseUrl,
    body: web::Json<Value>,
    state: web::Data<AppState>,
    vercel: web::Data<VercelState>,
) -> Result<HttpResponse, VercelError> {
    let (spec, task) = create_spec(&state, &team, &vercel, view::FACE, body.into_inner()).await?;
    started(&state, &team, &base, &spec, task, None).await
}

/// Validates a create body (v1's or v2's: v1's has no name, and gets one) and commits the
/// sandbox (a spec of `face`) with the start of its first session.
pub async fn create_spec(
    state: &AppState,
    team: &Team,
    vercel: &VercelState,
    face: &'static str,
    body: Value,
) -> Result<(workload_spec::Model, entity::task::Model), VercelError> {
    if !body.is_object() {
        return Err(VercelError::BadRequest("The body must be a JSON object".into()));
    }
    let body: CreateSandbox = serde_json::from_value(body).map_err(|err| VercelError::BadRequest(err.to_string()))?;
    let project = body.project_id.filter(|p| name_ok(p)).ok_or_else(|| {
        VercelError::BadRequest("projectId is required: letters, digits, '_' and '-', at most 128".into())
    })?;
    // A snapshot of the team's to start from (git and tarball sources are not fetched here).
    let restore = match &body.source {
        None => None,
        Some(source) if source.get("type").and_then(Value::as_str) == Some("snapshot") => {
            let id = source.get("snapshotId").and_then(Value::as_str).unwrap_or_default();
            Some(super::snapshots::source(state, team, id).await?.path)
        }
        Some(_) => return Err(VercelError::BadRequest("Only a snapshot source is supported".into())),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let name = match face {
        view::FACE_V1 => format!("v1-{id}"),
        _ => body.name.unwrap_or_else(|| format!("sandbox-{}", &id[..8])),
    };
    if !name_ok(&name) || RESERVED.contains(&name.as_str()) {
        return Err(VercelError::BadRequest(format!(
            "name must be letters, digits, '_' and '-', at most 128, and not {}",
            RESERVED.join(", ")
        )));
    }
    let timeout = body.timeout.unwrap_or(300_000);
    if !(1_000..=86_400_000).contains(&timeout) {
        return Err(VercelError::BadRequest("timeout must be from 1000 to 86400000 ms".into()));
    }
    let vcpus = body.resources.vcpus.unwrap_or(2);
    if !(1..=8).contains(&vcpus) {
        return Err(VercelError::BadRequest("resources.vcpus must be from 1 to 8".into()));
    }
    for (key, value) in body.env.iter().chain(&body.tags) {
        if key.is_empty() || key.contains(['\0', '=']) || value.contains('\0') {
            return Err(VercelError::BadRequest("env and tags names must be non-empty, without '=' or NUL".into()));
        }
    }
    if let Some((name, why)) = body.env.keys().find_map(|n| entity::environment::refused(n).map(|why| (n, why))) {
        return Err(VercelError::BadRequest(format!("env {name} is not allowed: {why}")));
    }
    if body.tags.keys().any(|k| k.contains(['"', '\\', ':']) || k.chars().any(char::is_control)) {
        return Err(VercelError::BadRequest("tag names must not hold '\"', '\\\\', ':' or control characters".into()));
    }
    let attributes = Attributes {
        scope: project,
        persistent: body.persistent.unwrap_or(true),
        labels: body.tags,
        vcpus,
        memory: vcpus * 2048,
        timeout,
        runtime: body.runtime,
        snapshot_expiration: body.snapshot_expiration.map(super::snapshots::expiration).transpose()?,
    };
    let new = specs::NewSpec {
        name: name.clone(),
        command: vercel.session_command.clone(),
        working_dir: vercel.sandbox_dir.join(&id).display().to_string(),
        meta: json!({ face: attributes }),
        limits: Limits {
            cpu_millis: u32::try_from(vcpus * 1000).ok(),
            memory_bytes: u64::try_from(attributes.memory).ok().map(|mb| mb << 20),
            max_processes: None,
        },
        env: body.env,
        disk_bytes: None,
        face: Some(face),
    };
    let params = TaskParams { name: Some(name.clone()), restore, ..TaskParams::default() };
    let start = team.submission(Operation::StartWorkload, &id, params);
    match state.engine.create_and_submit(start, &new, None).await {
        Ok(Ok(created)) => Ok(created),
        Ok(Err(_)) => Err(VercelError::Internal),
        Err(err) if specs::is_name_taken(&err) => {
            Err(VercelError::Conflict(format!("A sandbox named {name} already exists")))
        }
        Err(err) => Err(err.into()),
    }
}

/// Waits for the session a start creates and schedules its timeout; the session.
pub async fn wait_session(
    state: &AppState,
    team: &Team,
    spec: &workload_spec::Model,
    task: &entity::task::Model,
) -> Result<Option<workload::Model>, VercelError> {
    state.engine.wait_finished(task.id, START_WAIT).await?;
    let session = workloads::find_by_start_task(&state.db, task.id).await?;
    if let Some(session) = &session {
        schedule_timeout(state, team, session, Attributes::of(spec).timeout).await?;
    }
    Ok(session)
}

/// Waits for the session a start creates, schedules its timeout, and answers with it (and the
/// start's `Operation-Location`).
async fn started(
    state: &AppState,
    team: &Team,
    base: &BaseUrl,
    spec: &workload_spec::Model,
    task: entity::task::Model,
    resumed: Option<bool>,
) -> Result<HttpResponse, VercelError> {
    wait_session(state, team, spec, &task).await?;
    Ok(HttpResponse::Ok().insert_header(base.operation_location(task.id)).json(answer(state, spec, resumed).await?))
}

/// `GET /v2/sandboxes/{name}[?resume=true]`: the sandbox and its current session; with
/// `resume=true` and that session over, a new session first (`resumed: true`), in the same
/// working directory (its files are intact).
pub async fn get(
    team: Team,
    base: BaseUrl,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let query = QueryPairs::of(&req)?;
    let spec = find(&state, &team, &path, query.get("projectId")).await?;
    if query.bool("resume")? != Some(true) {
        return Ok(HttpResponse::Ok().json(answer(&state, &spec, None).await?));
    }
    let current = workloads::newest_of_spec(&state.db, &spec.id).await?;
    if current.as_ref().is_some_and(|w| w.state != entity::WorkloadState::Stopped) {
        return Ok(HttpResponse::Ok().json(answer(&state, &spec, Some(false)).await?));
    }
    let name = spec.name.clone();
    let params = TaskParams { name: Some(name), ..TaskParams::default() };
    let start = team.submission(Operation::StartWorkload, &spec.id, params);
    match state.engine.submit_if_unchanged(start, &spec, None).await? {
        Ok(task) => started(&state, &team, &base, &spec, task, Some(true)).await,
        // Resumed by a racing request: its session is the current one.
        Err(Refused::Modified) => Ok(HttpResponse::Ok().json(answer(&state, &spec, Some(true)).await?)),
        Err(Refused::OverQuota(_)) => Err(VercelError::Internal),
    }
}

/// `GET /v2/sandboxes`: `{sandboxes, pagination: {count, next}}`, keyset pages of the project's
/// sandboxes (`limit` 1..50 default 20, `cursor`, `sortBy` createdAt|name|statusUpdatedAt,
/// `sortOrder` asc|desc default desc, `namePrefix`, one `tags` filter `key:value`).
pub async fn list(team: Team, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, VercelError> {
    let query = QueryPairs::of(&req)?;
    let limit = query.number("limit", 1..=50, 20)?;
    let sort = match query.get("sortBy").unwrap_or("createdAt") {
        "createdAt" => specs::SpecSort::CreatedAt,
        "name" => specs::SpecSort::Name,
        "statusUpdatedAt" => specs::SpecSort::UpdatedAt,
        other => {
            return Err(VercelError::BadRequest(format!(
                "sortBy must be createdAt, name or statusUpdatedAt, not {other}"
            )));
        }
    };
    let labels = match query.get("tags") {
        None => Vec::new(),
        Some(tag) => {
            let (key, value) = tag
                .split_once(':')
                .filter(|(k, _)| !k.is_empty() && !k.contains(['"', '\\']))
                .ok_or_else(|| VercelError::BadRequest("tags must be one key:value".into()))?;
            vec![(key.to_owned(), value.to_owned())]
        }
    };
    let spec_query = specs::SpecQuery {
        face: Some(view::FACE),
        name_prefix: query.get("namePrefix").map(str::to_owned),
        labels,
        scope: query.get("project").map(str::to_owned),
        sort,
        descending: sort_order(&query)?,
        ..specs::SpecQuery::default()
    };
    let after = match query.get("cursor") {
        Some(text) if !text.is_empty() => {
            Some(spec_query.cursor(text).map_err(|_| VercelError::BadRequest("Invalid cursor".into()))?)
        }
        _ => None,
    };
    let page = specs::page(&state.db, team.tenant.id, &spec_query, after.as_ref(), limit).await?;
    let ids: Vec<&str> = page.items.iter().map(|s| s.id.as_str()).collect();
    let current = super::sessions::current_of(&state, &ids).await?;
    let sessions: Vec<workload::Model> = current.values().cloned().collect();
    let mut facts = facts(&state, &sessions).await?;
    let sandboxes: Vec<Value> = page
        .items
        .iter()
        .filter_map(|spec| {
            let session = current.get(&spec.id)?;
            Some(view::sandbox(spec, session, &facts.remove(&session.id).unwrap_or_default()))
        })
        .collect();
    let next = page.next.map(|c| c.encode());
    Ok(HttpResponse::Ok().json(json!({"sandboxes": sandboxes, "pagination": {"count": sandboxes.len(), "next": next}})))
}

/// What a `PATCH` may change (unknown fields are ignored, as are `ports`, `networkPolicy` and
/// the rest this face does not enforce).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct UpdateSandbox {
    persistent: Option<bool>,
    resources: Resources,
    timeout: Option<i64>,
    tags: Option<BTreeMap<String, String>>,
    snapshot_expiration: Option<i64>,
}

/// `PATCH /v2/sandboxes/{name}`: changes the sandbox's `persistent`, `resources.vcpus` (and its
/// memory, 2048 MB a vCPU), `timeout`, `snapshotExpiration` and `tags` (replaced whole), for
/// its next sessions; `{sandbox, routes}`. Racing changes: one wins, the others get a 409.
pub async fn update(
    team: Team,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let query = QueryPairs::of(&req)?;
    if !body.is_object() {
        return Err(VercelError::BadRequest("The body must be a JSON object".into()));
    }
    let body: UpdateSandbox =
        serde_json::from_value(body.into_inner()).map_err(|err| VercelError::BadRequest(err.to_string()))?;
    let spec = find(&state, &team, &path, query.get("projectId")).await?;
    let mut attributes = Attributes::of(&spec);
    if let Some(persistent) = body.persistent {
        attributes.persistent = persistent;
    }
    if let Some(vcpus) = body.resources.vcpus {
        if !(1..=8).contains(&vcpus) {
            return Err(VercelError::BadRequest("resources.vcpus must be from 1 to 8".into()));
        }
        attributes.vcpus = vcpus;
        attributes.memory = vcpus * 2048;
    }
    if let Some(timeout) = body.timeout {
        if !(1_000..=86_400_000).contains(&timeout) {
            return Err(VercelError::BadRequest("timeout must be from 1000 to 86400000 ms".into()));
        }
        attributes.timeout = timeout;
    }
    if let Some(expiration) = body.snapshot_expiration {
        attributes.snapshot_expiration = Some(super::snapshots::expiration(expiration)?);
    }
    if let Some(tags) = body.tags {
        if tags.iter().any(|(k, v)| k.is_empty() || k.contains(['"', '\\', ':', '\0']) || v.contains('\0')) {
            return Err(VercelError::BadRequest("tag names must be non-empty, without '\"', '\\', ':' or NUL".into()));
        }
        attributes.labels = tags;
    }
    let limits = Limits {
        cpu_millis: u32::try_from(attributes.vcpus * 1000).ok(),
        memory_bytes: u64::try_from(attributes.memory).ok().map(|mb| mb << 20),
        max_processes: None,
    };
    let mut meta = serde_json::from_str::<Value>(&spec.meta).unwrap_or_else(|_| json!({}));
    meta[view::FACE] = serde_json::to_value(&attributes).map_err(|_| VercelError::Internal)?;
    if !specs::touch_with_limits(&state.db, &spec, &meta, &limits).await? {
        return Err(VercelError::Conflict("The sandbox was changed by another request".into()));
    }
    let mut body = answer(&state, &spec, None).await?;
    let sandbox = body["sandbox"].take();
    Ok(HttpResponse::Ok().json(json!({"sandbox": sandbox, "routes": []})))
}

/// `sortOrder`: `desc` (the default) or `asc`.
pub fn sort_order(query: &QueryPairs) -> Result<bool, VercelError> {
    match query.get("sortOrder").unwrap_or("desc") {
        "desc" => Ok(true),
        "asc" => Ok(false),
        other => Err(VercelError::BadRequest(format!("sortOrder must be asc or desc, not {other}"))),
    }
}

/// `DELETE /v2/sandboxes/{name}`: deletes the sandbox (its session stopped, its files removed),
/// answering once it is done with `{sandbox}` as it was last.
pub async fn delete(
    team: Team,
    base: BaseUrl,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let query = QueryPairs::of(&req)?;
    let spec = find(&state, &team, &path, query.get("projectId")).await?;
    let params = TaskParams { remove_files: true, ..TaskParams::default() };
    let delete = team.submission(Operation::DeleteSpec, &spec.id, params);
    let task = state.engine.submit(delete).await?;
    state.engine.unschedule(&spec.id, team.user_id).await?;
    state.engine.wait_finished(task.id, super::sessions::STOP_WAIT).await?;
    let current = workloads::newest_of_spec(&state.db, &spec.id).await?.ok_or(VercelError::Internal)?;
    let facts = facts(&state, std::slice::from_ref(&current)).await?.remove(&current.id).unwrap_or_default();
    let body = json!({"sandbox": view::sandbox(&spec, &current, &facts)});
    Ok(HttpResponse::Ok().insert_header(base.operation_location(task.id)).json(body))
}
