//! What every face's handlers can reach: the database, the engine's front door, and how links are
//! made. Each face keeps its own state beside it (the Veeam face's: `veeam::VeeamState`).

use crate::origin::TrustedProxies;
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::sync::Mutex;
use worker::engine::Engine;

pub struct AppState {
    pub db: DatabaseConnection,
    pub engine: Engine,
    /// Base of every Href when set (e.g. behind a proxy); otherwise the request's own host.
    pub public_base_url: Option<String>,
    /// Peers whose forwarded headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Each tenant's token user (see `bearer`), once read: it is made once and never changes.
    pub token_users: Mutex<HashMap<i32, i32>>,
    /// Credentials checked once and kept while they stay valid (see `credentials`).
    pub credentials: crate::credentials::Credentials,
    /// Sandbox and session views kept while they stay current (see `views`).
    pub views: crate::views::Views,
    /// Finished tasks' answers, rendered once (see `answers`).
    pub answers: crate::answers::Answers,
}
