//! `POST /api/sandbox`: validates Daytona's create body, holds it to the per-sandbox maxima and
//! the organisation's quota, and creates the sandbox and its start in one transaction.

use super::auth::Org;
use super::error::DaytonaError;
use super::sandboxes::{admission, check_labels, over_quota, wait_started};
use super::settings::DaytonaState;
use super::view::Attributes;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::Operation;
use entity::outcome::{Limits, TaskParams};
use entity::store::specs;
use serde::Deserialize;
use std::collections::BTreeMap;
use worker::engine::Submission;

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
        face: Some("daytona"),
    };
    let params = TaskParams { name: Some(name.clone()), ..TaskParams::default() };
    let start = Submission {
        tenant_id: org.tenant.id,
        user_id: org.user_id,
        operation: Operation::StartWorkload,
        target_id: &id,
        params,
        owner: None,
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

/// An environment variable name `exec` can pass.
fn env_key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && !key.contains(['=', '\0'])
}
