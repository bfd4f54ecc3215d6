//! The `Sandbox` JSON of Daytona's API: every field its strict clients require, non-null, with
//! their exact types (integers for sizes, ISO strings for times, objects for env and labels).
//!
//! A sandbox's attributes live in its spec's `meta.daytona` (its env is the spec's own). Its stored state is its active
//! workload's (none: stopped); its desired state is its pending task's, else the stored state;
//! the reported state is derived from both as Daytona derives it (`stopping`, `starting`,
//! `destroying`). Its last activity is its spec's last change (every start, stop and delete
//! touches it).

use entity::{Operation, WorkloadState, task, workload, workload_spec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Daytona's attributes of a sandbox, as stored in `meta.daytona`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attributes {
    pub snapshot: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub public: bool,
    pub network_block_all: bool,
    pub target: String,
    pub cpu: i64,
    pub gpu: i64,
    /// GiB.
    pub memory: i64,
    /// GiB.
    pub disk: i64,
    pub auto_stop_interval: i64,
    pub auto_archive_interval: i64,
    pub auto_delete_interval: i64,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            snapshot: "daytonaio/sandbox:latest".into(),
            user: "daytona".into(),
            labels: BTreeMap::new(),
            public: false,
            network_block_all: false,
            target: "local".into(),
            cpu: 1,
            gpu: 0,
            memory: 1,
            disk: 3,
            auto_stop_interval: 15,
            auto_archive_interval: 10080,
            auto_delete_interval: -1,
        }
    }
}

impl Attributes {
    pub fn of(spec: &workload_spec::Model) -> Self {
        serde_json::from_str::<Value>(&spec.meta)
            .ok()
            .and_then(|meta| meta.get("daytona").cloned())
            .and_then(|daytona| serde_json::from_value(daytona).ok())
            .unwrap_or_default()
    }
}

/// Whether a spec is a sandbox (made by this face), not a Veeam job of the same tenant.
pub fn is_sandbox(spec: &workload_spec::Model) -> bool {
    serde_json::from_str::<Value>(&spec.meta).is_ok_and(|meta| meta.get("daytona").is_some())
}

/// Stored state: the active workload's.
pub fn stored_state(active: Option<&workload::Model>) -> &'static str {
    match active.map(|w| w.state) {
        Some(WorkloadState::Starting) => "starting",
        Some(WorkloadState::Running) => "started",
        Some(WorkloadState::Stopping) => "stopping",
        Some(WorkloadState::Stopped) | None => "stopped",
    }
}

/// The engine state a Daytona state filter means: `Ok(Some(None))` for `stopped` (no active
/// workload), `Ok(None)` for a state this engine never reports, a 400 for no Daytona state.
pub fn workload_state_of(name: &str) -> Result<Option<Option<WorkloadState>>, super::error::DaytonaError> {
    const ALL: [&str; 22] = [
        "creating",
        "restoring",
        "destroyed",
        "destroying",
        "started",
        "stopped",
        "starting",
        "stopping",
        "error",
        "build_failed",
        "pending_build",
        "building_snapshot",
        "unknown",
        "pulling_snapshot",
        "archived",
        "archiving",
        "resizing",
        "snapshotting",
        "forking",
        "pausing",
        "paused",
        "resuming",
    ];
    Ok(match name {
        "started" => Some(Some(WorkloadState::Running)),
        "starting" => Some(Some(WorkloadState::Starting)),
        "stopping" => Some(Some(WorkloadState::Stopping)),
        "stopped" => Some(None),
        "destroyed" => {
            return Err(super::error::DaytonaError::BadRequest("states must not include destroyed".into()));
        }
        other if ALL.contains(&other) => None,
        other => return Err(super::error::DaytonaError::BadRequest(format!("{other} is not a sandbox state"))),
    })
}

/// Desired state: what the pending task (if any) will bring it to.
pub fn desired_state(stored: &'static str, pending: Option<&task::Model>) -> &'static str {
    match pending.map(|t| t.operation) {
        Some(Operation::StartWorkload) => "started",
        Some(Operation::StopSpec | Operation::StopWorkload) => "stopped",
        Some(Operation::DeleteSpec) => "destroyed",
        None if stored == "started" || stored == "starting" => "started",
        None => "stopped",
    }
}

/// Reported state, derived from the stored and the desired state as Daytona's DTO derives it.
pub fn reported_state(stored: &'static str, desired: &'static str) -> &'static str {
    match (stored, desired) {
        ("started", "stopped") => "stopping",
        ("started" | "stopped" | "stopping" | "starting", "destroyed") => "destroying",
        ("stopped", "started") => "starting",
        _ => stored,
    }
}

fn timestamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The full `Sandbox` of a spec, with its active workload and pending task.
pub fn sandbox(
    spec: &workload_spec::Model,
    active: Option<&workload::Model>,
    pending: Option<&task::Model>,
    org: &str,
) -> Value {
    let a = Attributes::of(spec);
    let stored = stored_state(active);
    let desired = desired_state(stored, pending);
    json!({
        "id": spec.id, "organizationId": org, "name": spec.name, "snapshot": a.snapshot, "user": a.user,
        "env": spec.environment().unwrap_or_default(), "labels": a.labels, "public": a.public, "networkBlockAll": a.network_block_all, "kvm": false,
        "target": a.target, "cpu": a.cpu, "gpu": a.gpu, "memory": a.memory, "disk": a.disk,
        "state": reported_state(stored, desired), "desiredState": desired, "recoverable": false, "backupState": "None",
        "autoStopInterval": a.auto_stop_interval, "autoArchiveInterval": a.auto_archive_interval,
        "autoDeleteInterval": a.auto_delete_interval, "volumes": [],
        "createdAt": timestamp(&spec.created_at), "updatedAt": timestamp(&spec.updated_at),
        "lastActivityAt": timestamp(&spec.updated_at), "sandboxClass": "container",
        "runnerId": active.map(|w| w.runner_id.clone()), "toolboxProxyUrl": "",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reported_state_is_derived_as_daytona_derives_it() {
        assert_eq!(reported_state("started", "stopped"), "stopping");
        assert_eq!(reported_state("started", "destroyed"), "destroying");
        assert_eq!(reported_state("stopped", "destroyed"), "destroying");
        assert_eq!(reported_state("stopped", "started"), "starting");
        assert_eq!(reported_state("started", "started"), "started");
        assert_eq!(reported_state("stopped", "stopped"), "stopped");
        assert_eq!(desired_state("started", None), "started");
        assert_eq!(desired_state("stopped", None), "stopped");
    }
}
