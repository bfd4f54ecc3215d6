//! The `Sandbox` JSON of Daytona's API: every field its strict clients require, non-null, with
//! their exact types (integers for sizes, ISO strings for times, objects for env and labels).
//!
//! A sandbox's attributes live in its spec's `meta.daytona` (its env is the spec's own). Its stored state is its active
//! workload's (none: stopped); its desired state is its pending task's, else the stored state;
//! the reported state is derived from both as Daytona derives it (`stopping`, `starting`,
//! `destroying`). Its last activity is its spec's last change (every start, stop and delete
//! touches it).

use super::auth::Org;
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
    /// The spec's `meta` with these as its `daytona` attributes.
    pub fn into_meta(self, spec: &workload_spec::Model) -> Result<Value, super::error::DaytonaError> {
        let mut meta = serde_json::from_str::<Value>(&spec.meta).unwrap_or_else(|_| json!({}));
        meta["daytona"] = serde_json::to_value(self).map_err(|_| super::error::DaytonaError::Internal)?;
        Ok(meta)
    }

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

/// A sandbox's states, derived from its active workload and its pending task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct States {
    /// Its workload's: `started`, `starting`, `stopping` or `stopped` (none).
    pub stored: &'static str,
    /// What the pending task (if any) brings it to; else what it is heading to on its own.
    pub desired: &'static str,
    /// What Daytona reports: while a task is pending, the transition it makes (`starting`,
    /// `stopping`, `destroying`), however far its workload has got: a sandbox is `stopped` only
    /// once its stop has finished, as on Daytona, where the job's completion sets the state.
    pub reported: &'static str,
    /// A change is under way (Daytona's `pending`): stop, start and delete are refused (409).
    pub changing: bool,
}

impl States {
    pub fn of(active: Option<&workload::Model>, pending: Option<&task::Model>) -> Self {
        let stored = stored_state(active);
        let heading = match pending.map(|t| t.operation) {
            Some(Operation::StartWorkload) => Some("started"),
            Some(Operation::StopSpec | Operation::StopWorkload) => Some("stopped"),
            Some(Operation::DeleteSpec) => Some("destroyed"),
            None => None,
        };
        let (desired, reported) = match heading {
            Some("started") => ("started", "starting"),
            Some("stopped") => ("stopped", "stopping"),
            Some(_) => ("destroyed", "destroying"),
            None if stored == "started" || stored == "starting" => ("started", stored),
            None => ("stopped", stored),
        };
        States {
            stored,
            desired,
            reported,
            changing: pending.is_some() || stored == "starting" || stored == "stopping",
        }
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
    org: &Org,
) -> Value {
    let a = Attributes::of(spec);
    let states = States::of(active, pending);
    json!({
        "id": spec.id, "organizationId": org.tenant.name, "name": spec.name, "snapshot": a.snapshot, "user": a.user,
        "env": spec.environment().unwrap_or_default(), "labels": a.labels, "public": a.public, "networkBlockAll": a.network_block_all, "kvm": false,
        "target": a.target, "cpu": a.cpu, "gpu": a.gpu, "memory": a.memory, "disk": a.disk,
        "state": states.reported, "desiredState": states.desired, "recoverable": false, "backupState": "None",
        "autoStopInterval": a.auto_stop_interval, "autoArchiveInterval": a.auto_archive_interval,
        "autoDeleteInterval": a.auto_delete_interval, "volumes": [],
        "createdAt": timestamp(&spec.created_at), "updatedAt": timestamp(&spec.updated_at),
        "lastActivityAt": timestamp(&spec.updated_at), "sandboxClass": "container",
        "runnerId": active.map(|w| w.runner_id.clone()), "toolboxProxyUrl": org.toolbox_proxy_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::TaskState;

    fn workload(state: WorkloadState) -> workload::Model {
        workload::Model {
            id: "w".into(),
            tenant_id: 1,
            spec_id: "s".into(),
            spec_name: "s".into(),
            name: "s".into(),
            state,
            ending: None,
            succeeded: None,
            created_at: chrono::Utc::now(),
            ended_at: None,
            runner_id: "r".into(),
            pid: None,
            exit_code: None,
            start_task_id: 1,
            active_spec_id: Some("s".into()),
            labels: "{}".into(),
            containment: None,
            cpu_usec: None,
            memory_peak_bytes: None,
            processes_peak: None,
        }
    }

    fn task(operation: Operation) -> task::Model {
        task::Model {
            id: 1,
            tenant_id: 1,
            user_id: 1,
            operation,
            target_id: "s".into(),
            state: TaskState::Running,
            attempt: 1,
            route: None,
            runner_id: None,
            cancel_requested: false,
            cancel_requested_by: None,
            cancel_requested_at: None,
            params: None,
            success: None,
            outcome: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            published_at: None,
            not_before: None,
        }
    }

    #[test]
    fn the_reported_state_is_the_pending_tasks_transition_as_daytona_derives_it() {
        let running = workload(WorkloadState::Running);
        let of = |active: Option<&workload::Model>, pending: Option<Operation>| {
            let s = States::of(active, pending.map(task).as_ref());
            (s.reported, s.desired, s.changing)
        };
        assert_eq!(of(Some(&running), None), ("started", "started", false));
        assert_eq!(of(None, None), ("stopped", "stopped", false));
        assert_eq!(of(Some(&running), Some(Operation::StopSpec)), ("stopping", "stopped", true));
        // The workload has ended but its stop has not finished: still stopping, as on Daytona.
        assert_eq!(of(None, Some(Operation::StopSpec)), ("stopping", "stopped", true));
        assert_eq!(of(None, Some(Operation::StartWorkload)), ("starting", "started", true));
        assert_eq!(of(Some(&running), Some(Operation::StartWorkload)), ("starting", "started", true));
        assert_eq!(of(Some(&running), Some(Operation::DeleteSpec)), ("destroying", "destroyed", true));
        assert_eq!(of(None, Some(Operation::DeleteSpec)), ("destroying", "destroyed", true));
        // A workload that is stopping on its own (its command exits) is changing too.
        let stopping = workload(WorkloadState::Stopping);
        assert_eq!(of(Some(&stopping), None), ("stopping", "stopped", true));
    }
}
