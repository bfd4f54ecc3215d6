//! `Authorization: Bearer <API token>` (see `crate::bearer`): the token's tenant is the team.
//! `teamId` (or `slug`), which the SDK sends on every request, must name it (its name or its
//! id), else a 403.

use super::error::VercelError;
use crate::query::QueryPairs;
use crate::state::AppState;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use std::future::Future;
use std::pin::Pin;

/// The caller's team: a tenant.
pub struct Team {
    pub tenant: entity::tenant::Model,
    /// The user tasks are recorded for (see `crate::bearer::TokenCaller`).
    pub user_id: i32,
}

impl Team {
    /// What the engine is asked to do on this team's behalf.
    pub fn submission<'a>(
        &self,
        operation: entity::Operation,
        target_id: &'a str,
        params: entity::outcome::TaskParams,
    ) -> worker::engine::Submission<'a> {
        worker::engine::Submission {
            tenant_id: self.tenant.id,
            user_id: self.user_id,
            operation,
            target_id,
            params,
            owner: None,
        }
    }
}

impl FromRequest for Team {
    type Error = VercelError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().ok_or(VercelError::Internal)?;
            let caller = crate::bearer::authenticate(&req, state).await?.ok_or(VercelError::Unauthorized)?;
            let query = QueryPairs::of(&req)?;
            for team in [query.get("teamId"), query.get("slug")].into_iter().flatten() {
                if team != caller.tenant.name && team != caller.tenant.id.to_string() {
                    return Err(VercelError::Forbidden("The token has no access to this team".into()));
                }
            }
            Ok(Team { tenant: caller.tenant, user_id: caller.user_id })
        })
    }
}
