//! The Daytona face's settings (`[daytona]` in the settings file).

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaytonaSettings {
    /// What a sandbox runs: a long-lived command (the image is recorded, not pulled).
    pub sandbox_command: Vec<String>,
    /// Where sandboxes get their working directories (kept across stop and start); default:
    /// `<data_dir>/sandboxes`.
    pub sandbox_dir: Option<PathBuf>,
    /// How long one minute of `autoStopInterval` and `autoDeleteInterval` lasts, in ms (60000;
    /// tests shorten it; 1 to 3600000).
    pub minute_ms: u64,
}

impl Default for DaytonaSettings {
    fn default() -> Self {
        Self { sandbox_command: vec!["sleep".into(), "infinity".into()], sandbox_dir: None, minute_ms: 60_000 }
    }
}

/// What the face's handlers need beside `AppState`.
pub struct DaytonaState {
    pub sandbox_command: Vec<String>,
    pub sandbox_dir: PathBuf,
    pub minute: chrono::TimeDelta,
}
