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
    /// Per organisation: sandboxes running (or starting) at once.
    pub max_running_sandboxes: u32,
    /// Per organisation: the CPUs and the memory (GiB) of its running sandboxes, and the disk
    /// (GiB) of all of them.
    pub max_total_cpu: u32,
    pub max_total_memory_gib: u32,
    pub max_total_disk_gib: u32,
    /// Per sandbox.
    pub max_cpu_per_sandbox: u32,
    pub max_memory_per_sandbox_gib: u32,
    pub max_disk_per_sandbox_gib: u32,
}

impl Default for DaytonaSettings {
    fn default() -> Self {
        Self {
            sandbox_command: vec!["sleep".into(), "infinity".into()],
            sandbox_dir: None,
            minute_ms: 60_000,
            max_running_sandboxes: 20,
            max_total_cpu: 40,
            max_total_memory_gib: 80,
            max_total_disk_gib: 500,
            max_cpu_per_sandbox: 8,
            max_memory_per_sandbox_gib: 16,
            max_disk_per_sandbox_gib: 100,
        }
    }
}

/// What the face's handlers need beside `AppState`.
pub struct DaytonaState {
    pub sandbox_command: Vec<String>,
    pub sandbox_dir: PathBuf,
    pub minute: chrono::TimeDelta,
    /// What an organisation's sandboxes may hold together (`Engine`'s admission).
    pub quota: entity::store::specs::Quota,
    /// What one sandbox may ask for: CPUs, memory GiB, disk GiB.
    pub per_sandbox: [i64; 3],
}

/// The face's state from its settings.
pub fn start(settings: &DaytonaSettings, data_dir: &std::path::Path) -> Result<DaytonaState, String> {
    let sandbox_dir = settings.sandbox_dir.clone().unwrap_or_else(|| data_dir.join("sandboxes"));
    let gib = |n: u32| i64::from(n) << 30;
    Ok(DaytonaState {
        sandbox_command: settings.sandbox_command.clone(),
        sandbox_dir: std::path::absolute(&sandbox_dir).map_err(|e| format!("{}: {e}", sandbox_dir.display()))?,
        minute: chrono::TimeDelta::try_milliseconds(settings.minute_ms.clamp(1, 3_600_000) as i64)
            .unwrap_or(chrono::TimeDelta::minutes(1)),
        quota: entity::store::specs::Quota {
            running: i64::from(settings.max_running_sandboxes),
            cpu_millis: i64::from(settings.max_total_cpu) * 1000,
            memory_bytes: gib(settings.max_total_memory_gib),
            disk_bytes: gib(settings.max_total_disk_gib),
        },
        per_sandbox: [
            i64::from(settings.max_cpu_per_sandbox),
            i64::from(settings.max_memory_per_sandbox_gib),
            i64::from(settings.max_disk_per_sandbox_gib),
        ],
    })
}
