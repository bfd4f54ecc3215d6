//! What every handler can reach: the database, the dispatcher (to publish), and settings.

use sea_orm::DatabaseConnection;
use std::time::Duration;
use worker::dispatch::Dispatcher;

pub struct AppState {
    pub db: DatabaseConnection,
    pub dispatcher: Dispatcher,
    /// Base of every Href when set (e.g. behind a proxy); otherwise the request's own host.
    pub public_base_url: Option<String>,
    pub session_idle_timeout: Duration,
}
