//! What every handler can reach: the database, the engine's front door, and settings.

use crate::logon_gate::LogonGate;
use crate::origin::TrustedProxies;
use sea_orm::DatabaseConnection;
use std::time::Duration;
use worker::engine::Engine;

pub struct AppState {
    pub db: DatabaseConnection,
    pub engine: Engine,
    /// Base of every Href when set (e.g. behind a proxy); otherwise the request's own host.
    pub public_base_url: Option<String>,
    /// Peers whose forwarded headers are believed.
    pub trusted_proxies: TrustedProxies,
    pub session_idle_timeout: Duration,
    pub logon_gate: LogonGate,
}
