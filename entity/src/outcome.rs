//! How a finished task ended, as facts: the engine records what happened, each face phrases it
//! in its vendor's words. Stored as JSON in `tasks.outcome`.
//!
//! Names (of the spec, of the workload) are part of the facts: they are what the task acted on,
//! as it was then, so that a face can phrase an outcome without looking anything up.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// A workload of the spec was started.
    Started { workload: String, spec_name: String },
    /// The spec already had an active workload; nothing was started.
    AlreadyRunning { workload: String, workload_name: String, spec_name: String },
    /// The spec's command could not be started.
    StartFailed { workload: String, spec_name: String, reason: String },
    /// The spec does not exist any more.
    SpecGone { spec: String },
    /// The spec had no active workload to stop.
    NothingToStop { spec_name: String },
    /// The spec was deleted (its active workload, if any, stopped first).
    SpecDeleted { spec_name: String },
    /// A delete asked only of a stopped spec found it running, and left it (see
    /// `TaskParams::only_if_stopped`).
    KeptRunning { spec_name: String },
    /// The workload does not exist.
    WorkloadGone { workload: String },
    /// The workload belongs to another runner, which alone may signal it.
    WrongRunner { workload: String, workload_name: String, owner: String },
    /// The workload was stopped; how.
    Stopped { workload: String, workload_name: String, how: StopHow },
    /// The workload had stopped before the task began.
    AlreadyStopped { workload: String, workload_name: String },
    /// Processes of the workload outlived SIGKILL.
    Survived { workload: String, workload_name: String, pids: Vec<i32> },
    /// Cancelled during the grace period: no SIGKILL was sent.
    StopAbandoned { workload: String, workload_name: String, alive: usize, state: crate::state::WorkloadState },
    /// Cancelled while another task still wanted the same stop, which goes on.
    LeftStop { workload: String, workload_name: String },
    /// The workload was stopped and its spec's working directory archived as the snapshot.
    Snapshotted { workload: String, spec_name: String, snapshot: String, size_bytes: i64 },
    /// The snapshot could not be taken; why.
    SnapshotFailed { snapshot: String, reason: String },
    /// The snapshot is deleted and its archive removed (or it was already).
    SnapshotDeleted { snapshot: String },
    /// Cancelled before it did anything: while queued (by its owner), or by its runner at start.
    CancelledBeforeStart { queued: bool, workload: Option<String> },
    /// Its runner stopped responding past the deadline; the operation did not complete.
    RunnerGone { runner: String, was_running: bool, deadline_ms: u64 },
    /// The operation kept failing on an internal error; the runner logged the cause.
    Internal { runner: String },
    /// Recorded as text by a release before outcomes were structured.
    Legacy { success: bool, message: String, workload: Option<String> },
}

/// How a stopped workload's processes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopHow {
    /// They exited after SIGTERM.
    ExitedAfterSigterm,
    /// They had exited before the signal.
    AlreadyExited,
    /// They ignored SIGTERM for the grace period and were killed with SIGKILL.
    Killed { grace_ms: u64 },
    /// The workload had no process.
    NoProcess,
}

/// What a task asks for beyond its operation. Stored as JSON in `tasks.params`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskParams {
    /// Stop: SIGKILL at once, without a grace period.
    pub force: bool,
    /// Stop: this grace period instead of the runner's.
    pub grace_ms: Option<u64>,
    /// Start: the name of the workload it creates (else the spec's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Delete: only a spec with no active workload; a running one is left as it is (a
    /// scheduled clean-up of something stopped, which may have been started again).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub only_if_stopped: bool,
    /// Delete: also remove the spec's working directory, a directory of its own (a sandbox's),
    /// with everything in it, once the spec is deleted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remove_files: bool,
    /// Snapshot: the snapshot (its row, `pending`) the archive is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Start: fill the spec's working directory from this archive first, if it has none yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<String>,
}

impl TaskParams {
    pub fn to_json(&self) -> Option<String> {
        (*self != Self::default()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    pub fn from_json(text: Option<&str>) -> Self {
        text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
    }

    /// The grace period a stop with these parameters gets, given the runner's.
    pub fn grace_ms(&self, default_ms: u64) -> u64 {
        if self.force { 0 } else { self.grace_ms.unwrap_or(default_ms) }
    }
}

/// The resources a workload may use, where the host's cgroup controllers can hold it to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU time per wall time, in thousandths of a CPU (1000 = one CPU).
    pub cpu_millis: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub max_processes: Option<u32>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What the kernel measured of a workload over its life, where its containment provides it:
/// CPU time (user + system, microseconds), peak memory, peak number of processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub cpu_usec: Option<i64>,
    pub memory_peak_bytes: Option<i64>,
    pub processes_peak: Option<i64>,
}

/// How a workload ended, as facts. Stored as JSON in the workload's `ending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum End {
    /// Stopped on request; how its processes ended.
    Stopped { how: StopHow },
    /// Its command ended: with an exit code, or by a signal (named); `during_stop` when a stop
    /// was under way.
    Exited { code: Option<i32>, signal: Option<String>, during_stop: bool },
    /// Its command could not be started.
    StartFailed { reason: String },
    /// Its end was not observed, and why.
    Unobserved { why: Unobserved },
    /// Recorded as text by a release before endings were structured.
    Legacy { message: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unobserved {
    /// It ended while its runner was restarting: its exit status is lost.
    RunnerRestarted { runner: String },
    /// Waiting for it failed.
    WaitFailed { error: String },
    /// Its runner lost its lease before the command ran; the command never ran.
    LeaseLost,
}

impl End {
    /// Whether the workload ran to a successful end by itself. (Earlier releases kept a message
    /// exactly for the ends that were not a success.)
    pub fn succeeded(&self) -> bool {
        matches!(self, End::Exited { code: Some(0), during_stop: false, .. } | End::Legacy { message: None })
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            End::Exited { code, .. } => *code,
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The stored JSON; what cannot be read is kept as text.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| End::Legacy { message: Some(text.to_owned()) })
    }
}

impl Outcome {
    /// Whether the operation achieved what was asked.
    pub fn success(&self) -> bool {
        match self {
            Outcome::Started { .. }
            | Outcome::NothingToStop { .. }
            | Outcome::SpecDeleted { .. }
            | Outcome::KeptRunning { .. }
            | Outcome::Stopped { .. }
            | Outcome::AlreadyStopped { .. }
            | Outcome::Snapshotted { .. }
            | Outcome::SnapshotDeleted { .. } => true,
            Outcome::Legacy { success, .. } => *success,
            _ => false,
        }
    }

    /// The task stopped because it was cancelled (its state is then Cancelled, not Finished).
    pub fn is_cancellation(&self) -> bool {
        matches!(self, Outcome::CancelledBeforeStart { .. } | Outcome::StopAbandoned { .. } | Outcome::LeftStop { .. })
    }

    /// The workload the task concerned, when there is one.
    pub fn workload(&self) -> Option<&str> {
        match self {
            Outcome::Started { workload, .. }
            | Outcome::AlreadyRunning { workload, .. }
            | Outcome::StartFailed { workload, .. }
            | Outcome::Stopped { workload, .. }
            | Outcome::AlreadyStopped { workload, .. }
            | Outcome::Survived { workload, .. }
            | Outcome::StopAbandoned { workload, .. }
            | Outcome::LeftStop { workload, .. }
            | Outcome::Snapshotted { workload, .. } => Some(workload),
            Outcome::Legacy { workload, .. } | Outcome::CancelledBeforeStart { workload, .. } => workload.as_deref(),
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing a plain enum of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The stored JSON; what cannot be read is kept as text.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| Outcome::Legacy {
            success: false,
            message: text.to_owned(),
            workload: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip_through_their_stored_form() {
        let outcome = Outcome::Stopped {
            workload: "w".into(),
            workload_name: "Job@x".into(),
            how: StopHow::Killed { grace_ms: 1500 },
        };
        assert_eq!(
            outcome.to_json(),
            r#"{"kind":"stopped","workload":"w","workload_name":"Job@x","how":{"kind":"killed","grace_ms":1500}}"#
        );
        assert_eq!(Outcome::from_json(&outcome.to_json()), outcome);
        assert!(outcome.success());
        assert_eq!(outcome.workload(), Some("w"));
        assert!(!Outcome::CancelledBeforeStart { queued: true, workload: None }.success());
        assert!(matches!(Outcome::from_json("not json"), Outcome::Legacy { success: false, .. }));
    }
}
