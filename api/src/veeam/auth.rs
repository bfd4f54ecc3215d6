//! The logon-session token: taken from the `X-RestSvcSessionId` cookie (which wins, as in EM) or
//! header; an empty cookie counts as none. Unknown or idle for longer than the timeout → 401.
//! Each request restarts the timer (written at most once a second: `logons::TOUCH_EVERY`). A
//! checked session is kept in memory while it stays valid (see `credentials`).
//!
//! Cross-site request forgery: a browser attaches the cookie to any request, even one a page
//! of another site makes (a form POST). A state-changing request (not GET, HEAD or OPTIONS)
//! authenticated by the cookie alone — no `X-RestSvcSessionId` header, which another site's page
//! cannot add — is refused with 403 when the browser says it comes from another site. The cookie
//! is also `HttpOnly` and `SameSite=Strict` (see `logon`).

use super::error::VeeamError;
use crate::origin;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use entity::store::logons;
use entity::{logon_session, user};
use futures_util::future::LocalBoxFuture;

pub const TOKEN: &str = "X-RestSvcSessionId";

pub struct Caller {
    pub user: user::Model,
    pub logon: logon_session::Model,
}

impl FromRequest for Caller {
    type Error = VeeamError;
    type Future = LocalBoxFuture<'static, Result<Self, VeeamError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header =
            req.headers().get(TOKEN).and_then(|v| v.to_str().ok()).map(str::to_owned).filter(|t| !t.is_empty());
        let cookie = req.cookie(TOKEN).map(|c| c.value().to_owned()).filter(|t| !t.is_empty());
        let forged = header.is_none()
            && cookie.is_some()
            && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
            && origin::is_cross_site(req.headers());
        let token = cookie.or(header);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let veeam = req.app_data::<web::Data<super::VeeamState>>().cloned();
        Box::pin(async move {
            if forged {
                return Err(VeeamError::CrossSite);
            }
            let (state, veeam) = state.zip(veeam).ok_or_else(|| VeeamError::internal("no application state"))?;
            let token = token.ok_or_else(|| {
                VeeamError::Unauthorized(
                    "The authorization header has been expected but not found (or found but is expired).".into(),
                )
            })?;
            let now = entity::store::now();
            let idle_since = now - veeam.session_idle_timeout;
            let hash = crate::passwords::token_hash(&token);
            // Kept in memory while valid, and until its idle timer is due to be written again.
            if let Some((logon, user)) = state.credentials.logon(&hash)
                && logon.last_seen_at >= idle_since
                && now - logon.last_seen_at < logons::TOUCH_EVERY
            {
                return Ok(Caller { user, logon });
            }
            let epoch = state.credentials.epoch();
            let (logon, user) = logons::authenticate(&state.db, &hash, idle_since).await?.ok_or_else(|| {
                VeeamError::Unauthorized("The session has expired or does not exist. Log on again.".into())
            })?;
            let user = user.ok_or_else(|| VeeamError::Unauthorized("The session's user no longer exists.".into()))?;
            state.credentials.keep_logon(&hash, &logon, &user, epoch);
            Ok(Caller { user, logon })
        })
    }
}
