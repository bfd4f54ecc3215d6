//! `Authorization: Bearer <API token>` (see `crate::bearer`): the token's tenant is the
//! organisation. An `X-Daytona-Organization-ID` that names another organisation is refused.

use super::error::DaytonaError;
use crate::state::AppState;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use std::future::Future;
use std::pin::Pin;

/// The caller's organisation: a tenant.
pub struct Org {
    pub tenant: entity::tenant::Model,
    /// The user tasks are recorded for (see `crate::bearer::TokenCaller`).
    pub user_id: i32,
    /// Where the organisation's sandboxes' toolbox is served, on the same base as the links of
    /// this request (`<base>/toolbox`; every Sandbox carries it as `toolboxProxyUrl`).
    pub toolbox_proxy_url: String,
}

impl FromRequest for Org {
    type Error = DaytonaError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().ok_or(DaytonaError::Internal)?;
            let caller = crate::bearer::authenticate(&req, state).await?.ok_or(DaytonaError::Unauthorized)?;
            if let Some(org) = req.headers().get("X-Daytona-Organization-ID") {
                let org = org.to_str().unwrap_or("");
                if org != caller.tenant.name && org != caller.tenant.id.to_string() {
                    return Err(DaytonaError::Forbidden("Invalid authentication context".into()));
                }
            }
            let toolbox_proxy_url = format!("{}/toolbox", crate::origin::BaseUrl::of(&req, state).0);
            Ok(Org { tenant: caller.tenant, user_id: caller.user_id, toolbox_proxy_url })
        })
    }
}
