//! `api` settings. Layering: defaults < config file (`--config`, TOML) < environment < flags.

use crate::daytona::DaytonaSettings;
use crate::veeam::VeeamSettings;
use crate::vercel::VercelSettings;
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use std::path::PathBuf;
use worker::settings::{RunnerArgs, RunnerSettings};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; default: one a core.
    pub http_workers: Option<usize>,
    /// Embedded mode keeps its SQLite file here.
    pub data_dir: PathBuf,
    /// PostgreSQL (or SQLite) URL; default: `sqlite://<data_dir>/taskq.sqlite`.
    pub database_url: Option<String>,
    /// RabbitMQ URL: set = distributed mode (separate `worker` runners); unset = embedded runner.
    pub amqp_url: Option<String>,
    /// Base of every Href (e.g. `https://em.example.com:9398`); default: the request's host.
    pub public_base_url: Option<String>,
    /// Proxies (addresses or networks) whose `Forwarded` / `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<String>,
    pub runner: RunnerSettings,
    /// The Veeam face's own settings (`[veeam]` in the file).
    pub veeam: VeeamSettings,
    /// The Daytona face's own settings (`[daytona]` in the file).
    pub daytona: DaytonaSettings,
    /// The Vercel face's own settings (`[vercel]` in the file).
    pub vercel: VercelSettings,
}

impl ApiSettings {
    /// The HTTP worker threads: as set, else one a core.
    pub fn http_workers(&self) -> usize {
        self.http_workers
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 9399,
            http_workers: None,
            data_dir: PathBuf::from("data"),
            database_url: None,
            amqp_url: None,
            public_base_url: None,
            trusted_proxies: Vec::new(),
            runner: RunnerSettings::default(),
            veeam: VeeamSettings::default(),
            daytona: DaytonaSettings::default(),
            vercel: VercelSettings::default(),
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    about = "Asynchronous task-queue backend: Veeam Enterprise Manager's REST task API, Daytona's and Vercel's sandbox APIs, on real processes"
)]
pub struct Cli {
    /// TOML file with any of the settings (snake_case keys; runner keys under [runner], the
    /// Veeam face's under [veeam], the Daytona face's under [daytona], the Vercel face's under [vercel]).
    #[arg(long, env = "API_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Adds a user who can log on (password from --password, NEW_USER_PASSWORD, or stdin).
    AddUser {
        name: String,
        #[arg(long, env = "NEW_USER_PASSWORD")]
        password: Option<String>,
        /// PortalAdministrator (may start and stop), PortalUser or RestoreOperator (may read).
        #[arg(long, default_value = "PortalAdministrator")]
        role: crate::veeam::Role,
        /// The tenant the user belongs to (created if new).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// API tokens for the bearer-token faces.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Creates a token for a tenant (created if new) and prints it, once.
    Create {
        #[arg(long)]
        tenant: String,
        /// What the token is for, to recognise it in `token list`.
        #[arg(long)]
        name: String,
    },
    /// Lists tokens (never the tokens themselves).
    List,
    /// Revokes a token by its id.
    Revoke { id: i32 },
}

#[derive(Debug, Default, Args)]
pub struct Overrides {
    #[arg(long, env = "HOST", global = true)]
    pub host: Option<String>,
    #[arg(long, env = "PORT", global = true)]
    pub port: Option<u16>,
    #[arg(long, env = "HTTP_WORKERS", global = true)]
    pub http_workers: Option<usize>,
    #[arg(long, env = "DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "AMQP_URL", global = true)]
    pub amqp_url: Option<String>,
    #[arg(long, env = "PUBLIC_BASE_URL", global = true)]
    pub public_base_url: Option<String>,
    #[arg(long, env = "TRUSTED_PROXIES", global = true, value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    #[arg(long, env = "LOGON_CONCURRENCY", global = true)]
    pub logon_concurrency: Option<usize>,
    #[arg(long, env = "JOBS_FILE", global = true)]
    pub jobs_file: Option<PathBuf>,
    #[arg(long, env = "ADMIN_USER", global = true)]
    pub admin_user: Option<String>,
    #[arg(long, env = "ADMIN_PASSWORD", global = true, hide_env_values = true)]
    pub admin_password: Option<String>,
    #[arg(long, env = "SESSION_IDLE_TIMEOUT_SECS", global = true)]
    pub session_idle_timeout_secs: Option<u64>,
    #[command(flatten)]
    pub runner: RunnerArgs,
}

impl Cli {
    pub fn settings(&mut self) -> Result<ApiSettings, String> {
        let mut s: ApiSettings =
            self.config.as_deref().map(worker::settings::read_toml).transpose()?.unwrap_or_default();
        let o = std::mem::take(&mut self.overrides);
        if let Some(v) = o.host {
            s.host = v;
        }
        if let Some(v) = o.port {
            s.port = v;
        }
        if o.http_workers.is_some() {
            s.http_workers = o.http_workers;
        }
        if let Some(v) = o.data_dir {
            s.data_dir = v;
        }
        if o.database_url.is_some() {
            s.database_url = o.database_url;
        }
        if o.amqp_url.is_some() {
            s.amqp_url = o.amqp_url;
        }
        if o.public_base_url.is_some() {
            s.public_base_url = o.public_base_url;
        }
        if let Some(v) = o.trusted_proxies {
            s.trusted_proxies = v;
        }
        if let Some(v) = o.logon_concurrency {
            s.veeam.logon_concurrency = v;
        }
        if o.jobs_file.is_some() {
            s.veeam.jobs_file = o.jobs_file;
        }
        if let Some(v) = o.admin_user {
            s.veeam.admin_user = v;
        }
        if o.admin_password.is_some() {
            s.veeam.admin_password = o.admin_password;
        }
        if let Some(v) = o.session_idle_timeout_secs {
            s.veeam.session_idle_timeout_secs = v;
        }
        o.runner.apply(&mut s.runner);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::ApiSettings;

    #[test]
    fn each_face_keeps_its_settings_in_its_own_table() {
        let file = std::env::temp_dir().join(format!("taskq-settings-{}.toml", std::process::id()));
        std::fs::write(&file, "port = 8080\n[runner]\ngrace_period_ms = 5\n[veeam]\nsession_idle_timeout_secs = 60\nadmin_user = \"root\"\n")
            .expect("write");
        let settings: ApiSettings = worker::settings::read_toml(&file).expect("valid");
        assert_eq!((settings.port, settings.runner.grace_period_ms), (8080, 5));
        assert_eq!((settings.veeam.session_idle_timeout_secs, settings.veeam.admin_user.as_str()), (60, "root"));
        std::fs::write(&file, "session_idle_timeout_secs = 60\n").expect("write");
        assert!(worker::settings::read_toml::<ApiSettings>(&file).is_err(), "a face's key is not a top-level key");
        let _ = std::fs::remove_file(&file);
    }
}
