//! The `Sandbox` JSON of Daytona's API: every field its strict clients require, non-null, with
//! their exact types (integers for sizes, ISO strings for times, objects for env and labels).
//!
//! A sandbox's attributes live in its spec's `meta.daytona` (its env is the spec's own). Its stored state is its active
//! workload's (none: stopped); its desired state is its pending task's, else the stored state;
//! the reported state is derived from both as Daytona derives it (`stopping`, `starting`,
//! `destroying`). Its last activity is its spec's last change (every start, stop and delete
//! touches it).

use super::auth::Org;
use entity::outcome::End;
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
        spec.face_meta("daytona").unwrap_or_default()
    }
}

/// Whether a spec is a sandbox (made by this face), not a Veeam job of the same tenant.
pub fn is_sandbox(spec: &workload_spec::Model) -> bool {
    spec.is_of_face("daytona")
}

/// The Daytona states this face reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Started,
    Starting,
    Stopping,
    Stopped,
    Destroying,
    Destroyed,
    /// Its last workload ended on its own with a failure (its command could not start, or
    /// exited with an error or a signal): `errorReason` says how.
    Error,
}

impl SandboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Started => "started",
            SandboxState::Starting => "starting",
            SandboxState::Stopping => "stopping",
            SandboxState::Stopped => "stopped",
            SandboxState::Destroying => "destroying",
            SandboxState::Destroyed => "destroyed",
            SandboxState::Error => "error",
        }
    }
}

/// What a sandbox's states are derived from: its active workload, its pending task, and its
/// last workload (when none is active).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub active: Option<workload::Model>,
    pub pending: Option<task::Model>,
    pub last: Option<workload::Model>,
}

/// Stored state: the active workload's.
pub fn stored_state(active: Option<&workload::Model>) -> SandboxState {
    match active.map(|w| w.state) {
        Some(WorkloadState::Starting) => SandboxState::Starting,
        Some(WorkloadState::Running) => SandboxState::Started,
        Some(WorkloadState::Stopping) => SandboxState::Stopping,
        Some(WorkloadState::Stopped) | None => SandboxState::Stopped,
    }
}

/// Why a workload that ended on its own failed (Daytona's `errorReason`); `None` when it was
/// stopped, or ended well.
fn error_reason(last: &workload::Model) -> Option<String> {
    match last.ended()? {
        End::StartFailed { reason } => Some(format!("the sandbox could not start: {reason}")),
        End::Exited { code, signal, during_stop: false } if code != Some(0) => Some(match (code, signal) {
            (_, Some(signal)) => format!("the sandbox's process was killed by {signal}"),
            (Some(code), None) => format!("the sandbox's process exited with code {code}"),
            (None, None) => "the sandbox's process ended".to_owned(),
        }),
        _ => None,
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

/// A sandbox's states, derived from its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct States {
    /// Its workload's: `started`, `starting`, `stopping` or `stopped` (none).
    pub stored: SandboxState,
    /// What the pending task (if any) brings it to; else what it is heading to on its own.
    pub desired: SandboxState,
    /// What Daytona reports: while a task is pending, the transition it makes (`starting`,
    /// `stopping`, `destroying`), however far its workload has got: a sandbox is `stopped` only
    /// once its stop has finished, as on Daytona, where the job's completion sets the state.
    /// Stopped because its last workload failed on its own: `error`.
    pub reported: SandboxState,
    /// A change is under way (Daytona's `pending`): stop, start and delete are refused (409).
    pub changing: bool,
    /// With `error`: how its last workload failed.
    pub error_reason: Option<String>,
}

impl States {
    pub fn of(progress: &Progress) -> Self {
        use SandboxState::*;
        let stored = stored_state(progress.active.as_ref());
        let heading = progress.pending.as_ref().and_then(|t| match t.operation {
            Operation::StartWorkload => Some(Started),
            Operation::StopSpec | Operation::StopWorkload | Operation::SnapshotWorkload => Some(Stopped),
            Operation::DeleteSpec => Some(Destroyed),
            // Not a sandbox's task.
            Operation::DeleteSnapshot => None,
        });
        let error_reason = match (stored, heading) {
            (Stopped, None) => progress.last.as_ref().and_then(error_reason),
            _ => None,
        };
        let (desired, reported) = match heading {
            Some(Started) => (Started, Starting),
            Some(Stopped) => (Stopped, Stopping),
            Some(_) => (Destroyed, Destroying),
            None if stored == Started || stored == Starting => (Started, stored),
            None if error_reason.is_some() => (Stopped, Error),
            None => (Stopped, stored),
        };
        States {
            stored,
            desired,
            reported,
            changing: progress.pending.is_some() || stored == Starting || stored == Stopping,
            error_reason,
        }
    }
}

fn timestamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The full `Sandbox` of a spec, with its progress.
pub fn sandbox(spec: &workload_spec::Model, progress: &Progress, org: &Org) -> Value {
    let a = Attributes::of(spec);
    let states = States::of(progress);
    let active = progress.active.as_ref();
    let mut json = json!({
        "id": spec.id, "organizationId": org.tenant.name, "name": spec.name, "snapshot": a.snapshot, "user": a.user,
        "env": spec.environment().unwrap_or_default(), "labels": a.labels, "public": a.public, "networkBlockAll": a.network_block_all, "kvm": false,
        "target": a.target, "cpu": a.cpu, "gpu": a.gpu, "memory": a.memory, "disk": a.disk,
        "state": states.reported.as_str(), "desiredState": states.desired.as_str(), "recoverable": false, "backupState": "None",
        "autoStopInterval": a.auto_stop_interval, "autoArchiveInterval": a.auto_archive_interval,
        "autoDeleteInterval": a.auto_delete_interval, "volumes": [],
        "createdAt": timestamp(&spec.created_at), "updatedAt": timestamp(&spec.updated_at),
        "lastActivityAt": timestamp(&spec.updated_at), "sandboxClass": "container",
        "runnerId": active.map(|w| w.runner_id.clone()), "toolboxProxyUrl": org.toolbox_proxy_url,
    });
    if let Some(reason) = states.error_reason {
        json["errorReason"] = Value::String(reason);
    }
    json
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
        let queued = task::Model::queued(1, operation, "s", chrono::Utc::now());
        task::Model { state: TaskState::Running, attempt: 1, ..queued }
    }

    #[test]
    fn the_reported_state_is_the_pending_tasks_transition_as_daytona_derives_it() {
        let running = workload(WorkloadState::Running);
        let of = |active: Option<&workload::Model>, pending: Option<Operation>| {
            let progress = Progress { active: active.cloned(), pending: pending.map(task), last: None };
            let s = States::of(&progress);
            (s.reported.as_str(), s.desired.as_str(), s.changing)
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

    #[test]
    fn a_sandbox_whose_last_workload_failed_on_its_own_is_in_error_and_says_why() {
        let ended = |end: End| workload::Model {
            ending: Some(serde_json::to_string(&end).expect("json")),
            ..workload(WorkloadState::Stopped)
        };
        let of = |last: workload::Model, pending: Option<Operation>| {
            States::of(&Progress { active: None, pending: pending.map(task), last: Some(last) })
        };
        let failed = of(ended(End::StartFailed { reason: "command \"x\" not found".into() }), None);
        assert_eq!((failed.reported, failed.desired), (SandboxState::Error, SandboxState::Stopped));
        assert!(failed.error_reason.is_some_and(|r| r.contains("not found")) && !failed.changing);
        let exited = of(ended(End::Exited { code: Some(3), signal: None, during_stop: false }), None);
        assert_eq!(
            (exited.reported, exited.error_reason.as_deref()),
            (SandboxState::Error, Some("the sandbox's process exited with code 3"))
        );
        let killed = of(ended(End::Exited { code: None, signal: Some("SIGKILL".into()), during_stop: false }), None);
        assert_eq!(killed.reported, SandboxState::Error);
        for fine in [
            End::Exited { code: Some(0), signal: None, during_stop: false },
            End::Exited { code: None, signal: Some("SIGTERM".into()), during_stop: true },
            End::Stopped { how: entity::outcome::StopHow::NoProcess },
        ] {
            assert_eq!(of(ended(fine.clone()), None).reported, SandboxState::Stopped, "{fine:?}");
        }
        let restarting = of(ended(End::StartFailed { reason: "x".into() }), Some(Operation::StartWorkload));
        assert_eq!(restarting.reported, SandboxState::Starting, "a start under way shows, not the old error");
    }
}
