//! Listing sandboxes: `GET /api/sandbox` (keyset pages) and the deprecated
//! `GET /api/sandbox/paginated` (numbered pages), with Daytona's filters and orders.

use super::auth::Org;
use super::error::DaytonaError;
use super::sandboxes::sandboxes_json;
use super::view;
use crate::query::QueryPairs;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::store::specs;
use std::collections::BTreeMap;

/// The most labels a listing filters by (each is a condition of its query; the databases bound
/// how many one query may hold).
const MAX_LABEL_FILTERS: usize = 100;

/// The listing's filters and order (`id`/`name` prefixes, `states`, `labels`, `sort`, `order`);
/// `None` when the states asked for are ones this engine never reports (nothing matches).
fn query_of(pairs: &QueryPairs) -> Result<Option<specs::SpecQuery>, DaytonaError> {
    let mut states = Vec::new();
    let mut asked_states = false;
    for name in pairs.all(&["states", "states[]"]) {
        asked_states = true;
        // A Daytona state this engine never reports matches nothing; one asked twice, once.
        if let Some(state) = view::workload_state_of(name)?
            && !states.contains(&state)
        {
            states.push(state);
        }
    }
    let labels: Vec<(String, String)> = match pairs.get("labels") {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<BTreeMap<String, String>>(text)
            .map_err(|_| DaytonaError::BadRequest("Invalid labels JSON format".into()))?
            .into_iter()
            .collect(),
    };
    if labels.iter().any(|(key, _)| !super::sandboxes::label_key_ok(key)) {
        return Err(DaytonaError::BadRequest("Invalid labels JSON format".into()));
    }
    if labels.len() > MAX_LABEL_FILTERS {
        return Err(DaytonaError::BadRequest(format!("labels may filter by at most {MAX_LABEL_FILTERS} labels")));
    }
    let sort = match pairs.get("sort").unwrap_or("lastActivityAt") {
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
    let descending = match pairs.get("order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => return Err(DaytonaError::BadRequest(format!("order must be asc or desc, not {other}"))),
    };
    if asked_states && states.is_empty() {
        return Ok(None);
    }
    Ok(Some(specs::SpecQuery {
        face: Some("daytona"),
        id_prefix: pairs.get("id").map(str::to_owned),
        name_prefix: pairs.get("name").map(str::to_owned),
        states,
        labels,
        sort,
        descending,
        ..specs::SpecQuery::default()
    }))
}

/// `GET /api/sandbox`: `{items, nextCursor}`, a keyset page (`cursor`, `limit` 1..200 default
/// 100, and the filters and order of `query_of`).
pub async fn list(org: Org, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DaytonaError> {
    let pairs = QueryPairs::of(&req)?;
    let limit = pairs.number("limit", 1..=200, 100)?;
    let Some(query) = query_of(&pairs)? else {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"items": [], "nextCursor": null})));
    };
    let after = match pairs.get("cursor") {
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
    let pairs = QueryPairs::of(&req)?;
    let page = pairs.number("page", 1..=u64::from(u32::MAX), 1)?;
    let limit = pairs.number("limit", 1..=200, 100)?;
    let (rows, total) = match query_of(&pairs)? {
        Some(query) => specs::numbered_page(&state.db, org.tenant.id, &query, page, limit).await?,
        None => (Vec::new(), 0),
    };
    let items = sandboxes_json(&state, &org, &rows).await?;
    let body = serde_json::json!({"items": items, "total": total, "page": page, "totalPages": total.div_ceil(limit)});
    Ok(HttpResponse::Ok().json(body))
}
