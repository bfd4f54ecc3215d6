//! `Authorization: Bearer <API token>`, the credential of the token faces (Daytona's, Vercel's,
//! and the task resource they share): the token names a tenant. Each face adds only its own
//! scoping check (`X-Daytona-Organization-ID`, `teamId`) and renders its own 401.

use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use entity::store::{tenants, users};

/// The bearer token a request carries, if any (the scheme in any case; blank is none).
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// Who calls with a live API token.
#[derive(Debug, Clone)]
pub struct TokenCaller {
    pub tenant: entity::tenant::Model,
    /// The user tasks are recorded for: the tenant's token user (a token has no user of its
    /// own), so a token reaches the tasks that tokens of its tenant submitted, and no others.
    pub user_id: i32,
}

/// The caller, if the request carries a live token (`None`: none, or not a live one): from
/// memory while it stays valid (`credentials`), else one read (the token and its tenant), the
/// tenant's token user being known after its first.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Option<TokenCaller>, sea_orm::DbErr> {
    let Some(token) = token(req.headers()) else {
        return Ok(None);
    };
    let hash = crate::passwords::token_hash(token);
    if let Some(caller) = state.credentials.token(&hash) {
        return Ok(Some(caller));
    }
    let epoch = state.credentials.epoch();
    let Some((_, tenant)) = tenants::authenticate(&state.db, &hash).await? else {
        return Ok(None);
    };
    let known = state.token_users.lock().ok().and_then(|users| users.get(&tenant.id).copied());
    let user_id = match known {
        Some(id) => id,
        None => {
            let id = users::token_user(&state.db, &tenant).await?.id;
            if let Ok(mut users) = state.token_users.lock() {
                users.insert(tenant.id, id);
            }
            id
        }
    };
    let caller = TokenCaller { tenant, user_id };
    state.credentials.keep_token(&hash, &caller, epoch);
    Ok(Some(caller))
}
