//! `GET /api/`, `POST /api/sessionMngr/?v=…`, and `/api/logonSessions`.

use super::VeeamState;
use super::auth::{Caller, TOKEN};
use super::error::VeeamError;
use super::hrefs;
use super::logon_gate::Refusal;
use super::render::{format, ok, render};
use super::views::{EnterpriseManagerView, List, LogonSessionView};
use crate::origin;
use crate::passwords;
use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use entity::logon_session;
use entity::store::{logons, users};

pub async fn get_entry_point(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    ok(&EnterpriseManagerView { hrefs: &hrefs(&req, &state) })
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let header = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, password) =
        String::from_utf8(decoded).ok()?.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    Some((user, password))
}

/// Logon: Basic credentials through the logon gate (bounded password work, throttled failures;
/// see `logon_gate`), then a new logon session whose token comes back as header and cookie.
pub async fn create_logon_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    veeam: web::Data<VeeamState>,
) -> Result<HttpResponse, VeeamError> {
    let (name, password) = basic_credentials(&req)
        .ok_or_else(|| VeeamError::BadCredentials("HTTP Basic credentials are required to log on.".into()))?;
    let address = origin::client_ip(&req, &state.trusted_proxies);
    let gate = &veeam.logon_gate;
    gate.admit(&name, address).map_err(refused)?;
    // A name the database cannot hold (a NUL) names nobody; it still costs the same work.
    let user = if name.contains('\0') { None } else { users::find_by_name(&state.db, &name).await? };
    let valid = gate.verify(password, user.as_ref().map(|u| u.password_hash.clone())).await.map_err(refused)?;
    let Some(user) = user.filter(|_| valid) else {
        gate.record_failure(&name, address);
        return Err(VeeamError::BadCredentials("Invalid user name or password.".into()));
    };
    let token = passwords::random_secret().map_err(VeeamError::internal)?;
    let logon =
        logons::create(&state.db, &uuid::Uuid::new_v4().to_string(), &passwords::token_hash(&token), user.id).await?;
    let mut response = render(
        format(),
        StatusCode::CREATED,
        &LogonSessionView { logon: &logon, user_name: &user.name, hrefs: &hrefs(&req, &state) },
    );
    response.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("x-restsvcsessionid"),
        token.parse().map_err(VeeamError::internal)?,
    );
    let cookie = Cookie::build(TOKEN, token)
        .path("/api")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(hrefs(&req, &state).base.starts_with("https:"))
        .finish();
    response.add_cookie(&cookie).map_err(VeeamError::internal)?;
    Ok(response)
}

fn refused(refusal: Refusal) -> VeeamError {
    match refusal {
        Refusal::Busy => {
            tracing::warn!("logon refused: the password checks are saturated");
            VeeamError::Unavailable
        }
        Refusal::Throttled(wait) => VeeamError::TooManyRequests(wait),
    }
}

pub async fn list_logon_sessions(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let mut sessions = logons::list_for_user(&state.db, caller.user.id).await?;
    // The caller's own session first: the `veeam` client's logout deletes the first entry.
    sessions.sort_by_key(|s| s.id != caller.logon.id);
    let hrefs = hrefs(&req, &state);
    let items =
        sessions.iter().map(|logon| LogonSessionView { logon, user_name: &caller.user.name, hrefs: &hrefs }).collect();
    Ok(ok(&List { root: "LogonSessions", key: "LogonSessions", items }))
}

pub async fn get_logon_session(
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let logon = find_logon(&state, &caller, &id).await?;
    Ok(ok(&LogonSessionView { logon: &logon, user_name: &caller.user.name, hrefs: &hrefs(&req, &state) }))
}

pub async fn delete_logon_session(
    caller: Caller,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let logon = find_logon(&state, &caller, &id).await?;
    logons::delete(&state.db, &logon.id).await?;
    let mut response = HttpResponse::NoContent().finish();
    if logon.id == caller.logon.id {
        // Logging off: the browser forgets the cookie too.
        let mut expired = Cookie::build(TOKEN, "").path("/api").http_only(true).same_site(SameSite::Strict).finish();
        expired.make_removal();
        response.add_cookie(&expired).map_err(VeeamError::internal)?;
    }
    Ok(response)
}

async fn find_logon(state: &AppState, caller: &Caller, id: &str) -> Result<logon_session::Model, VeeamError> {
    let not_found = || VeeamError::NotFound(format!("There is no logon session with id [{id}]."));
    let id = crate::ids::canonical_uuid(id).ok_or_else(not_found)?;
    logons::find_for_user(&state.db, id, caller.user.id).await?.ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::basic_credentials;
    use actix_web::test::TestRequest;
    use base64::Engine;

    proptest::proptest! {
        #[test]
        fn any_authorization_header_is_read_or_refused_without_panicking(header in "[ -~]{0,300}") {
            let _ = basic_credentials(&TestRequest::default().insert_header(("Authorization", header)).to_http_request());
        }

        #[test]
        fn basic_credentials_round_trip(user in "[^:\\x00]{0,40}", password in "\\PC{0,40}") {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let req = TestRequest::default().insert_header(("Authorization", format!("Basic {encoded}"))).to_http_request();
            proptest::prop_assert_eq!(basic_credentials(&req), Some((user, password)));
        }
    }
}
