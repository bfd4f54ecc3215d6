//! The sandbox endpoints: create, get, stop, start, delete. Each answers 200 with the `Sandbox`
//! (Daytona's clients deserialise only a 200); errors are Daytona's (`error`).

use super::auth::Org;
use super::error::DaytonaError;
use super::settings::DaytonaState;
use super::view::{self, Attributes};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::outcome::{Limits, TaskParams};
use entity::store::{specs, tasks, workloads};
use entity::{Operation, workload_spec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use worker::engine::Submission;

/// How long start and create wait for the sandbox to be started, as Daytona's controller does.
const START_WAIT: Duration = Duration::from_secs(30);

/// The tenant's sandbox with that id, else with that name.
async fn find(state: &AppState, org: &Org, id_or_name: &str) -> Result<workload_spec::Model, DaytonaError> {
    let tenant = org.tenant.id;
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

/// The sandbox's JSON: its spec with its active workload and pending task.
async fn sandbox_json(
    state: &AppState,
    org: &Org,
    spec: &workload_spec::Model,
) -> Result<serde_json::Value, DaytonaError> {
    let (active, pending) = progress(state, spec).await?;
    Ok(view::sandbox(spec, active.as_ref(), pending.as_ref(), &org.tenant.name))
}

/// The sandbox's active workload and its pending task, which its states are derived from.
async fn progress(
    state: &AppState,
    spec: &workload_spec::Model,
) -> Result<(Option<entity::workload::Model>, Option<entity::task::Model>), DaytonaError> {
    Ok((workloads::active_of_spec(&state.db, &spec.id).await?, tasks::pending_for(&state.db, &spec.id).await?))
}

/// `GET /api/sandbox`: `{items, nextCursor}`, a keyset page (`cursor`, `limit` 1..200 default
/// 100, `id`/`name` prefixes, `states`, `labels`, `sort` name|createdAt|lastActivityAt, `order`).
pub async fn list(org: Org, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DaytonaError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| DaytonaError::BadRequest("The query string is malformed".into()))?;
    let one = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let limit = match one("limit") {
        None => 100,
        Some(text) => text.parse::<u64>().ok().filter(|n| (1..=200).contains(n)).ok_or_else(|| {
            DaytonaError::BadRequest("limit must not be greater than 200, limit must not be less than 1".into())
        })?,
    };
    let mut states = Vec::new();
    let mut asked_states = false;
    for (_, name) in pairs.iter().filter(|(k, _)| k == "states" || k == "states[]") {
        asked_states = true;
        // A Daytona state this engine never reports matches nothing.
        if let Some(state) = view::workload_state_of(name)? {
            states.push(state);
        }
    }
    if asked_states && states.is_empty() {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"items": [], "nextCursor": null})));
    }
    let labels = match one("labels") {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<BTreeMap<String, String>>(text)
            .map_err(|_| DaytonaError::BadRequest("Invalid labels JSON format".into()))?
            .into_iter()
            .collect(),
    };
    if labels.iter().any(|(key, _): &(String, String)| !label_key_ok(key)) {
        return Err(DaytonaError::BadRequest("Invalid labels JSON format".into()));
    }
    let sort = match one("sort").unwrap_or("lastActivityAt") {
        "lastActivityAt" => specs::SpecSort::UpdatedAt,
        "createdAt" => specs::SpecSort::CreatedAt,
        "name" => specs::SpecSort::Name,
        other => {
            return Err(DaytonaError::BadRequest(format!(
                "sort by {other} is not supported: use name, createdAt or lastActivityAt"
            )));
        }
    };
    let descending = match one("order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => return Err(DaytonaError::BadRequest(format!("order must be asc or desc, not {other}"))),
    };
    let query = specs::SpecQuery {
        face: Some("daytona"),
        id_prefix: one("id").map(str::to_owned),
        name_prefix: one("name").map(str::to_owned),
        states,
        labels,
        sort,
        descending,
    };
    let after = match one("cursor") {
        Some(text) if !text.is_empty() => {
            Some(query.cursor(text).map_err(|_| DaytonaError::BadRequest("Invalid cursor".into()))?)
        }
        _ => None,
    };
    let page = specs::page(&state.db, org.tenant.id, &query, after.as_ref(), limit).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for spec in &page.items {
        items.push(sandbox_json(&state, &org, spec).await?);
    }
    let next = page.next.map(|c| c.encode());
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items, "nextCursor": next})))
}

/// Submits `operation` on the sandbox for the organisation; the task.
async fn submit(
    state: &AppState,
    org: &Org,
    spec: &workload_spec::Model,
    operation: Operation,
    params: TaskParams,
) -> Result<entity::task::Model, DaytonaError> {
    let submission =
        Submission { tenant_id: org.tenant.id, user_id: org.user_id, operation, target_id: &spec.id, params };
    let task = state.engine.submit(submission).await?;
    specs::touch(&state.db, &spec.id).await?;
    Ok(task)
}

/// The stored and desired state, and whether a change is under way.
async fn states(state: &AppState, spec: &workload_spec::Model) -> Result<(&'static str, &'static str), DaytonaError> {
    let (active, pending) = progress(state, spec).await?;
    let stored = view::stored_state(active.as_ref());
    Ok((stored, view::desired_state(stored, pending.as_ref())))
}

fn in_progress() -> DaytonaError {
    DaytonaError::Conflict("Sandbox state change in progress".into())
}

pub async fn get(org: Org, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, DaytonaError> {
    let spec = find(&state, &org, &path).await?;
    render(&state, &org, &spec).await
}

/// `POST /api/sandbox/{idOrName}/stop[?force=true]`: 200 with the sandbox already `stopping`.
pub async fn stop(
    org: Org,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DaytonaError> {
    let force = bool_param(&req, "force")?.unwrap_or(false);
    let spec = find(&state, &org, &path).await?;
    let (stored, desired) = states(&state, &spec).await?;
    if stored != desired {
        return Err(in_progress());
    }
    if stored != "started" {
        return Err(DaytonaError::BadRequest("Sandbox is not in a stoppable state".into()));
    }
    submit(&state, &org, &spec, Operation::StopSpec, TaskParams { force, ..TaskParams::default() }).await?;
    render(&state, &org, &spec).await
}

/// `POST /api/sandbox/{idOrName}/start`: waits up to 30 s for `started`, then answers with what is.
pub async fn start(
    org: Org,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DaytonaError> {
    let spec = find(&state, &org, &path).await?;
    let (stored, desired) = states(&state, &spec).await?;
    if stored == "started" && desired == "started" {
        return render(&state, &org, &spec).await;
    }
    if stored != desired {
        return Err(in_progress());
    }
    if stored != "stopped" {
        return Err(DaytonaError::BadRequest("Sandbox is not in valid state".into()));
    }
    let params = TaskParams { name: Some(spec.name.clone()), ..TaskParams::default() };
    let task = submit(&state, &org, &spec, Operation::StartWorkload, params).await?;
    state.engine.wait_finished(task.id, START_WAIT).await?;
    render(&state, &org, &spec).await
}

/// `DELETE /api/sandbox/{idOrName}`: 200 with the sandbox `destroying`; once deleted, it is a 404.
pub async fn delete(
    org: Org,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DaytonaError> {
    let spec = find(&state, &org, &path).await?;
    if tasks::pending_for(&state.db, &spec.id).await?.is_some() {
        return Err(in_progress());
    }
    submit(&state, &org, &spec, Operation::DeleteSpec, TaskParams::default()).await?;
    render(&state, &org, &spec).await
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
    body: web::Json<CreateSandbox>,
    state: web::Data<AppState>,
    daytona: web::Data<DaytonaState>,
) -> Result<HttpResponse, DaytonaError> {
    let body = body.into_inner();
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
        env: body.env,
        labels: body.labels,
        public: body.public.unwrap_or(false),
        network_block_all: body.network_block_all.unwrap_or(false),
        target: body.target.unwrap_or(defaults.target),
        cpu: size("cpu", body.cpu, defaults.cpu)?,
        gpu: body.gpu.filter(|g| *g >= 0).unwrap_or(0),
        memory: size("memory", body.memory, defaults.memory)?,
        disk: size("disk", body.disk, defaults.disk)?,
        auto_stop_interval: body.auto_stop_interval.filter(|n| *n >= 0).unwrap_or(defaults.auto_stop_interval),
        auto_archive_interval: body.auto_archive_interval.filter(|n| *n >= 0).unwrap_or(defaults.auto_archive_interval),
        auto_delete_interval: body.auto_delete_interval.unwrap_or(defaults.auto_delete_interval),
    };
    if !attributes.labels.keys().all(|key| label_key_ok(key)) {
        return Err(DaytonaError::BadRequest("label keys must be 1 to 255 characters, without '\"' or '\\'".into()));
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
    };
    let spec = match specs::create(&state.db, org.tenant.id, &new).await {
        Ok(spec) => spec,
        Err(err) if specs::is_name_taken(&err) => {
            return Err(DaytonaError::Conflict(format!("Sandbox with name {name} already exists")));
        }
        Err(err) => return Err(err.into()),
    };
    let params = TaskParams { name: Some(spec.name.clone()), ..TaskParams::default() };
    let task = submit(&state, &org, &spec, Operation::StartWorkload, params).await?;
    state.engine.wait_finished(task.id, START_WAIT).await?;
    render(&state, &org, &spec).await
}

/// A boolean query parameter: only `true` or `false` (Nest's `ParseBoolPipe`), else a 400.
fn bool_param(req: &HttpRequest, name: &str) -> Result<Option<bool>, DaytonaError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| DaytonaError::BadRequest("The query string is malformed".into()))?;
    match pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(DaytonaError::BadRequest("Validation failed (boolean string is expected)".into())),
    }
}

/// A label key that a JSON path can name (no quote, no backslash).
fn label_key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && !key.contains(['"', '\\']) && !key.chars().any(char::is_control)
}
