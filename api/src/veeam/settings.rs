//! The Veeam face's settings (`[veeam]` in the settings file), and what it runs on start.

use super::logon_gate::LogonGate;
use entity::store::logons;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VeeamSettings {
    /// The account created on an empty database (a Portal Administrator).
    pub admin_user: String,
    /// Its password; generated (and printed once) if unset.
    pub admin_password: Option<String>,
    /// Logon sessions expire after this long without a request (EM: 15 minutes).
    pub session_idle_timeout_secs: u64,
    /// Threads checking logon passwords at once; 0 = one per core.
    pub logon_concurrency: usize,
    /// The jobs file (see `jobs_file`); default `config/jobs.toml` when it exists.
    pub jobs_file: Option<std::path::PathBuf>,
}

impl Default for VeeamSettings {
    fn default() -> Self {
        Self {
            admin_user: "admin".to_owned(),
            admin_password: None,
            session_idle_timeout_secs: 15 * 60,
            logon_concurrency: 0,
            jobs_file: None,
        }
    }
}

/// What the face's handlers share: its settings in force and its logon gate.
pub struct VeeamState {
    pub session_idle_timeout: Duration,
    pub logon_gate: LogonGate,
}

/// Loads the jobs file, bootstraps the admin account, starts pruning expired logon sessions,
/// and returns the face's state.
pub async fn start(
    db: &DatabaseConnection,
    settings: &VeeamSettings,
    shutdown: &CancellationToken,
) -> Result<VeeamState, String> {
    let default_jobs = std::path::Path::new("config/jobs.toml");
    let jobs_file = settings.jobs_file.clone().or_else(|| default_jobs.exists().then(|| default_jobs.to_owned()));
    if let Some(path) = jobs_file {
        let count = super::jobs_file::load(db, &path).await?;
        tracing::info!("{count} job(s) loaded from {}", path.display());
    }
    crate::passwords::bootstrap_admin(db, &settings.admin_user, settings.admin_password.as_deref()).await?;
    let idle = Duration::from_secs(settings.session_idle_timeout_secs);
    tokio::spawn(prune_logon_sessions(db.clone(), idle, shutdown.clone()));
    let threads = match settings.logon_concurrency {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    Ok(VeeamState { session_idle_timeout: idle, logon_gate: LogonGate::new(threads) })
}

/// Expired logon sessions are refused as soon as they expire; this removes their rows, once
/// per idle-timeout period.
async fn prune_logon_sessions(db: DatabaseConnection, idle: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(idle.max(Duration::from_secs(1))) => {}
        }
        match logons::delete_idle_since(&db, entity::store::now() - idle).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} expired logon session(s) removed"),
            Err(err) => tracing::warn!(%err, "cannot prune logon sessions"),
        }
    }
}
