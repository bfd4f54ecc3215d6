//! Snapshots (v2): an archive of a named sandbox's working directory, taken by an engine task
//! that stops the session first (`POST .../sessions/{id}/snapshot`, and a persistent sandbox's
//! stop), read and listed here, deleted by an engine task (asked for, or scheduled by its
//! `expiration`), and restored into a new sandbox created from it (`source: {type: "snapshot"}`).

use super::VercelState;
use super::auth::Team;
use super::error::VercelError;
use super::view;
use crate::origin::BaseUrl;
use crate::query::QueryPairs;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::outcome::TaskParams;
use entity::store::snapshots;
use entity::{Operation, snapshot, workload, workload_spec};
use serde_json::{Value, json};

/// A snapshot as the SDK 3.x validates it.
pub fn snapshot_json(snapshot: &snapshot::Model) -> Value {
    let status = match snapshot.status.as_str() {
        _ if snapshot.is_gone() => snapshots::DELETED,
        snapshots::CREATED => snapshots::CREATED,
        _ => "failed",
    };
    let mut json = json!({
        "id": snapshot.id,
        "sourceSessionId": view::session_id(&snapshot.workload_id),
        "region": view::REGION,
        "status": status,
        "sizeBytes": snapshot.size_bytes,
        "createdAt": snapshot.created_at.timestamp_millis(),
        "updatedAt": snapshot.updated_at.timestamp_millis(),
        "creationMethod": "manual",
    });
    if let Some(at) = snapshot.expires_at {
        json["expiresAt"] = json!(at.timestamp_millis());
    }
    json
}

/// The most a snapshot may be kept before it expires: the engine's scheduling horizon.
const MAX_EXPIRATION_MS: i64 = 100 * 365 * 86_400_000;

/// A requested `expiration` (ms; 0: never), or a 400.
pub fn expiration(ms: i64) -> Result<i64, VercelError> {
    if (0..=MAX_EXPIRATION_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(VercelError::BadRequest(format!("expiration must be from 0 (never) to {MAX_EXPIRATION_MS} ms")))
    }
}

/// The `expiration` of a snapshot request: no body (what the SDK sends without one), or
/// `{"expiration": ms}`.
pub fn requested_expiration(body: &[u8]) -> Result<Option<i64>, VercelError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let bad = || VercelError::BadRequest("The body must be a JSON object, with expiration in ms".into());
    let body: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    match body.as_object().ok_or_else(bad)?.get("expiration") {
        None | Some(Value::Null) => Ok(None),
        Some(ms) => expiration(ms.as_i64().ok_or_else(bad)?).map(Some),
    }
}

/// A snapshot as the SDK 1.x validates it: its source is the (v1) sandbox.
pub fn snapshot_json_v1(snapshot: &snapshot::Model) -> Value {
    let mut json = snapshot_json(snapshot);
    if let Some(object) = json.as_object_mut() {
        let source = object.remove("sourceSessionId").unwrap_or_default();
        object.insert("sourceSandboxId".into(), source);
    }
    json
}

/// Takes a snapshot of the session (stopping it) as an engine task, and waits for it: the
/// snapshot as it ended (`created`, or `failed`), and the task. Of requests racing to snapshot
/// one sandbox, one submits (a compare-and-set on its spec) and the others wait for that one's
/// snapshot: one archive, every answer the same. With an `expiration` (ms, 0: never), its
/// deletion is scheduled first, so no snapshot outlives its expiry whatever happens next.
pub async fn take(
    state: &AppState,
    team: &Team,
    vercel: &VercelState,
    spec: &workload_spec::Model,
    session: &workload::Model,
    expiration: Option<i64>,
) -> Result<(snapshot::Model, entity::task::Model), VercelError> {
    let id = format!("snap_{}", uuid::Uuid::new_v4().simple());
    let path = vercel.sandbox_dir.join(".snapshots").join(format!("{id}.tar.gz"));
    let scope = view::Attributes::of(spec).scope;
    let expires_at = expiration
        .filter(|ms| *ms > 0)
        .and_then(chrono::TimeDelta::try_milliseconds)
        .and_then(|ms| entity::store::now().checked_add_signed(ms));
    let path = path.display().to_string();
    snapshots::insert(&state.db, &id, team.tenant.id, session, &scope, &path, expires_at).await?;
    if let Some(at) = expires_at {
        let delete = team.submission(Operation::DeleteSnapshot, &id, TaskParams::default());
        state.engine.schedule(delete, at).await?;
    }
    let params = TaskParams { snapshot: Some(id.clone()), ..TaskParams::default() };
    let submission = team.submission(Operation::SnapshotWorkload, &session.id, params);
    let task = match state.engine.submit_if_unchanged(submission, spec, None).await? {
        Ok(task) => task,
        Err(_) => {
            // Another request got there first: its snapshot is this one's.
            state.engine.unschedule(&id, team.user_id).await?;
            snapshots::remove_pending(&state.db, &id).await?;
            let ids = [session.id.as_str()];
            let snapshots = entity::store::tasks::of_targets(&state.db, &ids, &[Operation::SnapshotWorkload]).await?;
            snapshots
                .into_iter()
                .next_back()
                .ok_or_else(|| VercelError::Conflict("The sandbox was changed by another request; try again".into()))?
        }
    };
    state.engine.wait_finished(task.id, super::sessions::STOP_WAIT).await?;
    let id = task.params().snapshot.unwrap_or(id);
    let taken = snapshots::find(&state.db, &id).await?.ok_or(VercelError::Internal)?;
    Ok((taken, task))
}

/// The sandbox's newest snapshot (its `currentSnapshotId`).
pub async fn current_of(
    state: &AppState,
    tenant_id: i32,
    spec: &workload_spec::Model,
) -> Result<Option<String>, VercelError> {
    let page = snapshots::page(&state.db, tenant_id, None, Some(&spec.id), None, 1).await?;
    Ok(page.items.into_iter().find(|s| s.status == snapshots::CREATED && !s.is_gone()).map(|s| s.id))
}

/// `POST /v2/sandboxes/sessions/{id}/snapshot`: `{snapshot, session}`, once the session is
/// stopped and its directory archived; `{"expiration": ms}` (0: never, the default) deletes it
/// by itself that long after. A session that is not running: 410 (422 while stopping),
/// so that the SDK resumes and retries.
pub async fn create(
    team: Team,
    base: BaseUrl,
    path: web::Path<String>,
    state: web::Data<AppState>,
    vercel: web::Data<VercelState>,
    body: web::Bytes,
) -> Result<HttpResponse, VercelError> {
    let expiration = requested_expiration(&body)?;
    let (session, spec) = super::sessions::find_of(&state, &team, &path, view::FACE).await?;
    let facts =
        super::sessions::facts(&state, std::slice::from_ref(&session)).await?.remove(&session.id).unwrap_or_default();
    match view::status(&session, &facts) {
        "running" | "pending" => {}
        "stopping" => return Err(VercelError::SandboxStopping),
        _ => return Err(VercelError::SandboxStopped),
    }
    let (taken, task) = take(&state, &team, &vercel, &spec, &session, expiration).await?;
    let body = json!({
        "snapshot": snapshot_json(&taken),
        "session": super::sessions::session_json(&state, &spec, &session).await?,
    });
    Ok(HttpResponse::Ok().insert_header(base.operation_location(task.id)).json(body))
}

pub async fn find(state: &AppState, team: &Team, id: &str) -> Result<snapshot::Model, VercelError> {
    let shown: String = id.chars().filter(|c| !c.is_control()).collect();
    let not_found = || VercelError::NotFound(format!("Snapshot {shown} not found"));
    if !super::sandboxes::name_ok(id) {
        return Err(not_found());
    }
    snapshots::find_of(&state.db, team.tenant.id, id).await?.ok_or_else(not_found)
}

/// The team's snapshot to create a sandbox from: created (not deleted, not expired, not
/// failed), else 410 `snapshot_not_found`, as Vercel answers.
pub async fn source(state: &AppState, team: &Team, id: &str) -> Result<snapshot::Model, VercelError> {
    match find(state, team, id).await {
        Ok(snapshot) if snapshot.status == snapshots::CREATED && !snapshot.is_gone() => Ok(snapshot),
        Ok(_) | Err(VercelError::NotFound(_)) => Err(VercelError::SnapshotNotFound),
        Err(err) => Err(err),
    }
}

/// `GET /v2/sandboxes/snapshots/{id}`: `{snapshot}`.
pub async fn get(team: Team, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, VercelError> {
    let snapshot = find(&state, &team, &path).await?;
    Ok(HttpResponse::Ok().json(json!({"snapshot": snapshot_json(&snapshot)})))
}

/// `DELETE /v2/sandboxes/snapshots/{id}`: `{snapshot}`, `deleted`, its archive removed.
pub async fn delete(
    team: Team,
    base: BaseUrl,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let (snapshot, mut response) = remove(&state, &team, &base, &path).await?;
    Ok(response.json(json!({"snapshot": snapshot_json(&snapshot)})))
}

/// Deletes the team's snapshot as an engine task (its archive removed), answering once it is
/// done: the snapshot now, and a response carrying the task's `Operation-Location`. One
/// already deleted is answered as it is, with no task.
pub async fn remove(
    state: &AppState,
    team: &Team,
    base: &BaseUrl,
    id: &str,
) -> Result<(snapshot::Model, actix_web::HttpResponseBuilder), VercelError> {
    let snapshot = find(state, team, id).await?;
    let mut response = HttpResponse::Ok();
    if snapshot.status != snapshots::DELETED {
        let delete = team.submission(Operation::DeleteSnapshot, &snapshot.id, TaskParams::default());
        let task = state.engine.submit(delete).await?;
        state.engine.unschedule(&snapshot.id, team.user_id).await?;
        state.engine.wait_finished(task.id, super::sessions::STOP_WAIT).await?;
        response.insert_header(base.operation_location(task.id));
    }
    Ok((snapshots::find(&state.db, &snapshot.id).await?.unwrap_or(snapshot), response))
}

/// `GET /v2/sandboxes/snapshots?project=&name=&limit=&cursor=`: `{snapshots, pagination}`,
/// newest first (`limit` 1..50, default 20).
pub async fn list(team: Team, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, VercelError> {
    let query = QueryPairs::of(&req)?;
    let limit = query.number("limit", 1..=50, 20)?;
    if query.get("sortOrder").is_some_and(|o| o != "desc") {
        return Err(VercelError::BadRequest("snapshots are listed newest first: sortOrder may only be desc".into()));
    }
    let spec = match query.get("name") {
        Some(name) => Some(super::sandboxes::find(&state, &team, name, query.get("project")).await?),
        None => None,
    };
    let after = match query.get("cursor") {
        Some(text) if !text.is_empty() => Some(
            entity::store::page::Cursor::decode(text, snapshots::CURSOR_SORT, true)
                .map_err(|_| VercelError::BadRequest("Invalid cursor".into()))?,
        ),
        _ => None,
    };
    let spec_id = spec.as_ref().map(|s| s.id.as_str());
    let page = snapshots::page(&state.db, team.tenant.id, query.get("project"), spec_id, after.as_ref(), limit).await?;
    let items: Vec<Value> = page.items.iter().map(snapshot_json).collect();
    let next = page.next.map(|c| c.encode());
    Ok(HttpResponse::Ok().json(json!({"snapshots": items, "pagination": {"count": items.len(), "next": next}})))
}
