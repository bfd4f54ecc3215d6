//! The v1 API (`@vercel/sandbox` 1.x): a sandbox is one session with no name of its own (a spec
//! of the `vercel_v1` key, named `v1-<id>`, and its one workload); its id is the session's.
//! Create, get, list (newest first, paged by creation time), stop (answered at once: the SDK's
//! `stop({blocking: true})` polls get), extend-timeout. `runtime` is in every sandbox.

use super::VercelState;
use super::auth::Team;
use super::error::VercelError;
use super::sandboxes::{create_spec, wait_session};
use super::sessions::{current_of, extend, facts, find_of, session_json, session_view, submit_stop};
use super::view;
use crate::origin::BaseUrl;
use crate::query::QueryPairs;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::store::specs;
use entity::{workload, workload_spec};
use serde_json::{Value, json};

/// The team's v1 sandbox `id` (its session's id), and its spec.
async fn find(state: &AppState, team: &Team, id: &str) -> Result<(workload::Model, workload_spec::Model), VercelError> {
    find_of(state, team, id, view::FACE_V1).await
}

/// `POST /v1/sandboxes`: `{sandbox, routes}`, answered once the sandbox runs (or after 30 s).
pub async fn create(
    team: Team,
    base: BaseUrl,
    body: web::Json<Value>,
    state: web::Data<AppState>,
    vercel: web::Data<VercelState>,
) -> Result<HttpResponse, VercelError> {
    let mut body = body.into_inner();
    if let Some(object) = body.as_object_mut() {
        // v1 sandboxes have no names, and are not persistent.
        object.remove("name");
        object.insert("persistent".into(), json!(false));
    }
    let (spec, task) = create_spec(&state, &team, &vercel, view::FACE_V1, body).await?;
    let session = wait_session(&state, &team, &spec, &task).await?.ok_or(VercelError::Internal)?;
    let body = json!({"sandbox": session_json(&state, &spec, &session).await?, "routes": []});
    Ok(HttpResponse::Ok().insert_header(base.operation_location(task.id)).json(body))
}

/// `GET /v1/sandboxes/{id}`: `{sandbox, routes}`.
pub async fn get(team: Team, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, VercelError> {
    let (session, spec) = find(&state, &team, &path).await?;
    Ok(HttpResponse::Ok().json(json!({"sandbox": session_view(&state, &spec, &session).await?, "routes": []})))
}

/// `POST /v1/sandboxes/{id}/stop`: `{sandbox}` at once, `stopping` (a stop already done or
/// under way is answered as it is).
pub async fn stop(
    team: Team,
    base: BaseUrl,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let (session, spec) = find(&state, &team, &path).await?;
    let mut response = HttpResponse::Ok();
    if let Some(task) = submit_stop(&state, &team, &session, None).await? {
        response.insert_header(base.operation_location(task.id));
    }
    Ok(response.json(json!({"sandbox": session_json(&state, &spec, &session).await?})))
}

/// `POST /v1/sandboxes/{id}/extend-timeout` `{duration}`: `{sandbox}` with the new timeout. A
/// sandbox that is stopped or stopping: 400 (v1 knows no resume).
pub async fn extend_timeout(
    team: Team,
    path: web::Path<String>,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let (session, spec) = find(&state, &team, &path).await?;
    extend(&state, &team, &session, &spec, &body, |status| {
        VercelError::BadRequest(format!("The sandbox is {status}, not running"))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"sandbox": session_json(&state, &spec, &session).await?})))
}

/// `GET /v1/sandboxes?project=&limit=&since=&until=`: the project's sandboxes, newest first,
/// `{sandboxes, pagination: {count, next, prev}}`. `until` (exclusive) and `since` (exclusive)
/// are ms; `next` is the `until` of the next page, `prev` the `since` of the previous one.
/// Sandboxes created in the same millisecond are never split across pages: none is lost or
/// repeated however pages fall.
pub async fn list(team: Team, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, VercelError> {
    let query = QueryPairs::of(&req)?;
    let limit = query.number("limit", 1..=100, 20)?;
    let time = |name: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, VercelError> {
        let Some(text) = query.get(name) else { return Ok(None) };
        let ms = text.parse::<i64>().ok().filter(|ms| (0..=253_402_300_799_999).contains(ms));
        let at = ms.and_then(chrono::DateTime::from_timestamp_millis);
        at.map(Some).ok_or_else(|| VercelError::BadRequest(format!("{name} must be a time in ms since the epoch")))
    };
    let (since, until) = (time("since")?, time("until")?);
    let spec_query = specs::SpecQuery {
        face: Some(view::FACE_V1),
        scope: query.get("project").map(str::to_owned),
        created_from: since.map(|at| at + chrono::TimeDelta::milliseconds(1)),
        created_before: until,
        sort: specs::SpecSort::CreatedAt,
        descending: true,
        ..specs::SpecQuery::default()
    };
    let ms = |spec: &workload_spec::Model| spec.created_at.timestamp_millis();
    let rows = specs::page(&state.db, team.tenant.id, &spec_query, None, limit + 1).await?.items;
    let (items, next) = match rows.get(usize::try_from(limit).unwrap_or(usize::MAX)) {
        None => (rows, None),
        Some(first_left) => {
            let boundary = ms(first_left);
            let newer: Vec<workload_spec::Model> = rows.iter().filter(|s| ms(s) > boundary).cloned().collect();
            if newer.is_empty() {
                // One millisecond holds more than a page: all of it, then what is older.
                let at = chrono::DateTime::from_timestamp_millis(boundary).ok_or(VercelError::Internal)?;
                let group = specs::SpecQuery {
                    created_from: Some(at),
                    created_before: Some(at + chrono::TimeDelta::milliseconds(1)),
                    ..spec_query.clone()
                };
                let all =
                    specs::page(&state.db, team.tenant.id, &group, None, entity::store::page::MAX_LIMIT).await?.items;
                (all, Some(boundary))
            } else {
                (newer, Some(boundary + 1))
            }
        }
    };
    let prev = items.first().map(ms);
    let ids: Vec<&str> = items.iter().map(|s| s.id.as_str()).collect();
    let sessions = current_of(&state, &ids).await?;
    let found: Vec<workload::Model> = sessions.values().cloned().collect();
    let mut facts = facts(&state, &found).await?;
    let sandboxes: Vec<Value> = items
        .iter()
        .filter_map(|spec| {
            let session = sessions.get(&spec.id)?;
            Some(view::session(spec, session, &facts.remove(&session.id).unwrap_or_default()))
        })
        .collect();
    let body = json!({"sandboxes": sandboxes, "pagination": {"count": sandboxes.len(), "next": next, "prev": prev}});
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /v1/sandboxes/{id}/snapshot`: stops the sandbox and archives its directory (an engine
/// task); `{snapshot, sandbox}` once done. A sandbox that is not running: 400.
pub async fn snapshot(
    team: Team,
    base: BaseUrl,
    path: web::Path<String>,
    state: web::Data<AppState>,
    vercel: web::Data<VercelState>,
    body: web::Bytes,
) -> Result<HttpResponse, VercelError> {
    let expiration = super::snapshots::requested_expiration(&body)?;
    let (session, spec) = find(&state, &team, &path).await?;
    if session.state == entity::WorkloadState::Stopped {
        return Err(VercelError::BadRequest("The sandbox is stopped".into()));
    }
    let (taken, task) = super::snapshots::take(&state, &team, &vercel, &spec, &session, expiration).await?;
    let body = json!({
        "snapshot": super::snapshots::snapshot_json_v1(&taken),
        "sandbox": session_json(&state, &spec, &session).await?,
    });
    Ok(HttpResponse::Ok().insert_header(base.operation_location(task.id)).json(body))
}

/// `GET /v1/sandboxes/snapshots/{id}`: `{snapshot}`.
pub async fn get_snapshot(
    team: Team,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let snapshot = super::snapshots::find(&state, &team, &path).await?;
    Ok(HttpResponse::Ok().json(json!({"snapshot": super::snapshots::snapshot_json_v1(&snapshot)})))
}

/// `DELETE /v1/sandboxes/snapshots/{id}`: `{snapshot}`, `deleted`.
pub async fn delete_snapshot(
    team: Team,
    base: BaseUrl,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let (snapshot, mut response) = super::snapshots::remove(&state, &team, &base, &path).await?;
    Ok(response.json(json!({"snapshot": super::snapshots::snapshot_json_v1(&snapshot)})))
}

/// `GET /v1/sandboxes/snapshots?project=&limit=&until=&since=`: the project's snapshots newest
/// first, one page; `next` is the `until` of the next page (exclusive, ms).
pub async fn list_snapshots(
    team: Team,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VercelError> {
    let query = QueryPairs::of(&req)?;
    let limit = query.number("limit", 1..=100, 20)?;
    let ms = |name: &str| -> Result<Option<i64>, VercelError> {
        query
            .get(name)
            .map(|t| t.parse::<i64>().ok().filter(|ms| (0..=253_402_300_799_999).contains(ms)))
            .map(|ms| ms.ok_or_else(|| VercelError::BadRequest(format!("{name} must be a time in ms since the epoch"))))
            .transpose()
    };
    let (since, until) = (ms("since")?, ms("until")?);
    // Strictly before `until`: a cursor at that instant with the lowest id.
    let after = until.and_then(chrono::DateTime::from_timestamp_millis).map(|at| entity::store::page::Cursor {
        sort: entity::store::snapshots::CURSOR_SORT.to_owned(),
        descending: true,
        value: at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        id: String::new(),
    });
    let page =
        entity::store::snapshots::page(&state.db, team.tenant.id, query.get("project"), None, after.as_ref(), limit)
            .await?;
    let items: Vec<&entity::snapshot::Model> =
        page.items.iter().filter(|s| since.is_none_or(|since| s.created_at.timestamp_millis() > since)).collect();
    let next = page.next.as_ref().and(items.last()).map(|s| s.created_at.timestamp_millis());
    let prev = items.first().map(|s| s.created_at.timestamp_millis());
    let snapshots: Vec<Value> = items.iter().map(|s| super::snapshots::snapshot_json_v1(s)).collect();
    Ok(HttpResponse::Ok().json(json!({
        "snapshots": snapshots,
        "pagination": {"count": snapshots.len(), "next": next, "prev": prev},
    })))
}
