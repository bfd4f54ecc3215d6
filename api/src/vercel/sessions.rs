//! Sessions: list (of one named sandbox, or of a project), get, stop (answered once stopped), extend-timeout.
//! A session's timeout is a scheduled stop of its workload (`schedule_timeout`).

use super::auth::Team;
use super::error::VercelError;
use super::sandboxes::{name_ok, sort_order};
use super::view::{self, Attributes, SessionFacts};
use crate::origin::BaseUrl;
use crate::query::QueryPairs;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::outcome::TaskParams;
use entity::store::{specs, tasks, workloads};
use entity::{Operation, WorkloadState, workload, workload_spec};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// How long a stop (or a delete) waits for the session to be stopped before it answers with
/// the session as it is: well inside the SDK's 300 s headers timeout, whatever the grace period.
pub const STOP_WAIT: Duration = Duration::from_secs(120);

/// The facts of each of these sessions, from their stop tasks, in one read.
pub async fn facts(
    state: &AppState,
    sessions: &[workload::Model],
) -> Result<HashMap<String, SessionFacts>, VercelError> {
    let ids: Vec<&str> = sessions.iter().map(|w| w.id.as_str()).collect();
    let stops = tasks::of_targets(&state.db, &ids, &[Operation::StopWorkload, Operation::SnapshotWorkload]).await?;
    Ok(ids.iter().map(|id| ((*id).to_owned(), view::facts_of(&stops, id))).collect())
}

/// Schedules the session's stop `timeout_ms` after it started (moving the one there is).
pub async fn schedule_timeout(
    state: &AppState,
    team: &Team,
    session: &workload::Model,
    timeout_ms: i64,
) -> Result<(), VercelError> {
    let at = session.created_at + chrono::TimeDelta::milliseconds(timeout_ms);
    let stop = team.submission(Operation::StopWorkload, &session.id, TaskParams::default());
    state.engine.schedule(stop, at).await?;
    Ok(())
}

/// The team's session `id` and its sandbox, a spec of `face` (a v1 sandbox is no v2 session).
pub async fn find_of(
    state: &AppState,
    team: &Team,
    id: &str,
    face: &str,
) -> Result<(workload::Model, workload_spec::Model), VercelError> {
    let shown: String = id.chars().filter(|c| !c.is_control()).collect();
    let not_found = || {
        VercelError::NotFound(format!("{} {shown} not found", if face == view::FACE { "Session" } else { "Sandbox" }))
    };
    let workload_id = view::workload_id(id).ok_or_else(not_found)?;
    workloads::find_with_spec_of(&state.db, team.tenant.id, &workload_id)
        .await?
        .filter(|(_, spec)| spec.is_of_face(face))
        .ok_or_else(not_found)
}

async fn find(state: &AppState, team: &Team, id: &str) -> Result<(workload::Model, workload_spec::Model), VercelError> {
    find_of(state, team, id, view::FACE).await
}

/// The session as it is now, in JSON (v2's `session`, v1's `sandbox`): read again, after a
/// change.
pub async fn session_json(
    state: &AppState,
    spec: &workload_spec::Model,
    session: &workload::Model,
) -> Result<Value, VercelError> {
    let session = workloads::find(&state.db, &session.id).await?.unwrap_or_else(|| session.clone());
    session_view(state, spec, &session).await
}

/// The session as just read, in JSON, with its stops.
pub async fn session_view(
    state: &AppState,
    spec: &workload_spec::Model,
    session: &workload::Model,
) -> Result<Value, VercelError> {
    let facts = facts(state, std::slice::from_ref(session)).await?.remove(&session.id).unwrap_or_default();
    Ok(view::session(spec, session, &facts))
}

/// Submits a stop of the session unless it is stopped (nothing then: `None`), waiting up to
/// `wait` for it to finish.
pub async fn submit_stop(
    state: &AppState,
    team: &Team,
    session: &workload::Model,
    wait: Option<Duration>,
) -> Result<Option<entity::task::Model>, VercelError> {
    if session.state == WorkloadState::Stopped {
        return Ok(None);
    }
    let stop = worker::engine::Submission {
        owner: Some(&session.runner_id),
        ..team.submission(Operation::StopWorkload, &session.id, TaskParams::default())
    };
    let task = state.engine.submit(stop).await?;
    if let Some(wait) = wait {
        state.engine.wait_finished(task.id, wait).await?;
    }
    Ok(Some(task))
}

/// The current session (the newest workload) of each of these specs, by spec id, in one read.
pub async fn current_of(state: &AppState, spec_ids: &[&str]) -> Result<HashMap<String, workload::Model>, VercelError> {
    let newest = workloads::newest_of_specs(&state.db, spec_ids).await?;
    Ok(newest.into_iter().map(|w| (w.spec_id.clone(), w)).collect())
}

/// Grows the running session's timeout by `body.duration` ms (its scheduled stop moves). A
/// session that is not running: `not_running(its status)`.
pub async fn extend(
    state: &AppState,
    team: &Team,
    session: &workload::Model,
    spec: &workload_spec::Model,
    body: &Value,
    not_running: impl Fn(&str) -> VercelError,
) -> Result<(), VercelError> {
    let duration = body
        .get("duration")
        .and_then(Value::as_i64)
        .filter(|d| (1..=86_400_000).contains(d))
        .ok_or_else(|| VercelError::BadRequest("duration must be a number of ms from 1 to 86400000".into()))?;
    let facts = facts(state, std::slice::from_ref(session)).await?.remove(&session.id).unwrap_or_default();
    let status = view::status(session, &facts);
    if !matches!(status, "running" | "pending") {
        return Err(not_running(status));
    }
    let timeout = view::timeout(session, &facts, &Attributes::of(spec)) + duration;
    if timeout > 86_400_000 {
        return Err(VercelError::BadRequest("a session's timeout may not pass 24 hours".into()));
    }
    schedule_timeout(state, team, session, timeout).await
}

/// A session's answer, kept in `AppState::views` (under its spec) while it stays current.
struct KeptSession {
    session: workload::Model,
    spec: workload_spec::Model,
    body: web::Bytes,
}

/// `GET /v2/sandboxes/sessions/{id}`: from the view kept of it when there is one, else read,
/// and kept.
pub async fn get(team: Team, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, VercelError> {
    let kept = match view::workload_id(&path).and_then(|id| state.views.spec_of(&id).map(|spec| (id, spec))) {
        Some((id, spec)) => state.views.fresh::<KeptSession>(&spec).await.filter(|kept| {
            kept.session.id == id && kept.session.tenant_id == team.tenant.id && kept.spec.is_of_face(view::FACE)
        }),
        None => None,
    };
    if let Some(kept) = kept {
        return Ok(crate::views::json_answer(kept.body.clone()));
    }
    let epoch = state.views.epoch();
    let (session, spec) = find(&state, &team, &path).await?;
    let body = json!({"session": session_view(&state, &spec, &session).await?, "routes": []});
    let body = web::Bytes::from(body.to_string());
    state.views.remember_spec(&session.id, &spec.id);
    state.views.offer(&spec.id.clone(), KeptSession { session, spec, body: body.clone() }, epoch);
    Ok(crate::views::json_answer(body))
}

/// `GET /v2/sandboxes/sessions?name=...`: `{sessions, pagination: {count, next}}`, the named
/// sandbox's sessions by creation time (`sortOrder` desc by default; `limit` 1..50 default 20;
/// an opaque `cursor`). Without `name` (the SDK always sends it; Vercel leaves it undocumented),
/// the sessions of every sandbox of the `project` (of the team's, without it).
pub async fn list(team: Team, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, VercelError> {
    let query = QueryPairs::of(&req)?;
    let limit = query.number("limit", 1..=50, 20)?;
    let descending = sort_order(&query)?;
    let mut workload_query = workloads::WorkloadQuery { descending, ..Default::default() };
    match query.get("name") {
        Some(name) if !name_ok(name) => {
            return Err(VercelError::BadRequest("name must be letters, digits, '_' and '-', at most 128".into()));
        }
        Some(name) => {
            let spec = super::sandboxes::find(&state, &team, name, query.get("project")).await?;
            workload_query.spec_id = Some(spec.id);
        }
        None => {
            workload_query.of_specs = Some(specs::SpecQuery {
                face: Some(view::FACE),
                scope: query.get("project").map(str::to_owned),
                ..specs::SpecQuery::default()
            });
        }
    }
    let after = match query.get("cursor") {
        Some(text) if !text.is_empty() => {
            Some(workload_query.cursor(text).map_err(|_| VercelError::BadRequest("Invalid cursor".into()))?)
        }
        _ => None,
    };
    let page = workloads::page(&state.db, team.tenant.id, &workload_query, after.as_ref(), limit).await?;
    let spec_ids: Vec<&str> = page.items.iter().map(|w| w.spec_id.as_str()).collect();
    let specs: HashMap<String, workload_spec::Model> =
        specs::find_many(&state.db, &spec_ids).await?.into_iter().map(|s| (s.id.clone(), s)).collect();
    let mut facts = facts(&state, &page.items).await?;
    let sessions: Vec<Value> = page
        .items
        .iter()
        .filter_map(|w| Some(view::session(specs.get(&w.spec_id)?, w, &facts.remove(&w.id).unwrap_or_default())))
        .collect();
    let next = page.next.map(|c| c.encode());
    Ok(HttpResponse::Ok().json(json!({"sessions": sessions, "pagination": {"count": sessions.len(), "next": next}})))
}

/// `POST /v2/sandboxes/sessions/{id}/stop`: stops the session and answers once it is stopped
/// (or after `STOP_WAIT`, as it is) with `{session, sandbox}`, and for a persistent sandbox the
/// `snapshot` of its directory the stop took (`sandbox.currentSnapshotId`). Stops racing on one session
/// share one stop (the engine's stop flight): one effect, every answer the same stopped
/// session. A session already stopped is answered as it is (200, nothing done).
pub async fn stop(
    team: Team,
    base: BaseUrl,
    path: web::Path<String>,
    state: web::Data<AppState>,
    vercel: web::Data<super::VercelState>,
) -> Result<HttpResponse, VercelError> {
    let (session, spec) = find(&state, &team, &path).await?;
    let mut response = HttpResponse::Ok();
    let mut snapshot = None;
    if session.state != WorkloadState::Stopped && Attributes::of(&spec).persistent {
        // A persistent sandbox's stop keeps its directory as a snapshot.
        let expiration = Attributes::of(&spec).snapshot_expiration;
        let (taken, task) = super::snapshots::take(&state, &team, &vercel, &spec, &session, expiration).await?;
        response.insert_header(base.operation_location(task.id));
        snapshot = Some(super::snapshots::snapshot_json(&taken));
    } else if let Some(task) = submit_stop(&state, &team, &session, Some(STOP_WAIT)).await? {
        response.insert_header(base.operation_location(task.id));
    }
    let mut body = json!({
        "session": session_json(&state, &spec, &session).await?,
        "sandbox": super::sandboxes::answer(&state, &spec, None).await?["sandbox"].take(),
    });
    if let Some(snapshot) = snapshot {
        body["snapshot"] = snapshot;
    }
    Ok(response.json(body))
}

/// `POST /v2/sandboxes/sessions/{id}/extend-timeout` `{duration}` (ms): the session's timeout
/// grows by it (its scheduled stop moves); `{session}`. A stopped session: 410 (422 while it
/// stops), so that the SDK resumes its sandbox and retries.
pub async fn extend_timeout(
    team: Team,
    path: web::Path<String>,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let (session, spec) = find(&state, &team, &path).await?;
    extend(&state, &team, &session, &spec, &body, |status| match status {
        "stopping" => VercelError::SandboxStopping,
        _ => VercelError::SandboxStopped,
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"session": session_json(&state, &spec, &session).await?})))
}
