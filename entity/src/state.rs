//! The task and workload state machines.
//!
//! Legality lives here as pure functions (`TaskEvent::legal_from`, `WorkloadEvent::legal_from`);
//! the compare-and-set that applies an event is `store::tasks::transition` and
//! `store::workloads::transition`, the only code that changes a task's or a workload's state,
//! but for a claim: `store::tasks::claim` applies `Claim` in one statement, without reading the
//! task first (its effects are `TaskEvent::apply`'s, which a test checks).
//!
//! Task:    Queued --Claim--> Running --Finish--> Finished | Cancelled (by its outcome)
//!          Running --Readopt--> Running (the same runner, back after a crash: a new attempt)
//!          Queued --Cancel--> Cancelled  (cancelled before it started: never runs)
//!          Queued | Running --Abandon--> Finished (its runner stayed gone past the deadline)
//!          Finished and Cancelled are final. A cancelled task is not a failed one: a running
//!          task ends Cancelled when its operation stopped at a safe point because of the cancel.
//!
//! Workload: Starting --Started--> Running --StopRequested--> Stopping --Ended--> Stopped
//!           Stopping --StopAbandoned--> Running (a cancelled stop whose processes survived)
//!           Starting | Running | Stopping --Ended--> Stopped

pub use crate::outcome::Outcome;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum TaskState {
    #[sea_orm(string_value = "Queued")]
    Queued,
    #[sea_orm(string_value = "Running")]
    Running,
    #[sea_orm(string_value = "Finished")]
    Finished,
    #[sea_orm(string_value = "Cancelled")]
    Cancelled,
}

impl TaskState {
    /// Finished or Cancelled: nothing changes a task any more.
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Finished | TaskState::Cancelled)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Operation {
    /// Start a workload of a spec (Veeam: a job's new session).
    #[sea_orm(string_value = "start_workload")]
    StartWorkload,
    /// Stop the active workload of a spec, if it has one.
    #[sea_orm(string_value = "stop_spec")]
    StopSpec,
    /// Stop a workload.
    #[sea_orm(string_value = "stop_workload")]
    StopWorkload,
    /// Stop the spec's active workload, if any, then delete the spec.
    #[sea_orm(string_value = "delete_spec")]
    DeleteSpec,
    /// Stop a workload, then archive its spec's working directory (`TaskParams::snapshot`).
    #[sea_orm(string_value = "snapshot_workload")]
    SnapshotWorkload,
    /// Delete a snapshot (its target) and its archive.
    #[sea_orm(string_value = "delete_snapshot")]
    DeleteSnapshot,
}

/// A workload's state. (The Veeam face calls Running "Working".)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum WorkloadState {
    #[sea_orm(string_value = "Starting")]
    Starting,
    #[sea_orm(string_value = "Stopping")]
    Stopping,
    #[sea_orm(string_value = "Running")]
    Running,
    #[sea_orm(string_value = "Stopped")]
    Stopped,
}

macro_rules! display_as_db_value {
    ($($ty:ty),*) => {$(
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_value())
            }
        }
    )*};
}
display_as_db_value!(TaskState, Operation, WorkloadState);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    Claim {
        runner: String,
    },
    Readopt {
        runner: String,
    },
    Finish(Outcome),
    /// Cancelled while queued: it never runs.
    Cancel(Outcome),
    /// Its runner is gone.
    Abandon(Outcome),
}

impl TaskEvent {
    pub fn name(&self) -> &'static str {
        match self {
            TaskEvent::Claim { .. } => "Claim",
            TaskEvent::Readopt { .. } => "Readopt",
            TaskEvent::Finish(_) => "Finish",
            TaskEvent::Cancel(_) => "Cancel",
            TaskEvent::Abandon(_) => "Abandon",
        }
    }

    /// The row after the event, from the row the caller saw: its effects, as a pure function
    /// (`store::tasks::transition` writes them with a compare-and-set).
    pub fn apply(self, seen: &crate::task::Model, now: chrono::DateTime<chrono::Utc>) -> crate::task::Model {
        let mut next = seen.clone();
        next.state = self.target();
        next.updated_at = now;
        if self.opens_attempt() {
            next.attempt += 1;
        }
        match self {
            TaskEvent::Claim { runner } => {
                next.runner_id = Some(runner);
                next.started_at = Some(now);
            }
            TaskEvent::Readopt { runner } => next.runner_id = Some(runner),
            TaskEvent::Finish(outcome) | TaskEvent::Cancel(outcome) | TaskEvent::Abandon(outcome) => {
                next.success = Some(outcome.success());
                next.outcome = Some(outcome.to_json());
                next.finished_at = Some(now);
            }
        }
        next
    }

    pub fn legal_from(&self, from: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, from),
            (TaskEvent::Claim { .. }, Queued)
                | (TaskEvent::Readopt { .. }, Running)
                | (TaskEvent::Finish(_), Running)
                | (TaskEvent::Cancel { .. }, Queued)
                | (TaskEvent::Abandon { .. }, Queued | Running)
        )
    }

    pub fn target(&self) -> TaskState {
        match self {
            TaskEvent::Claim { .. } | TaskEvent::Readopt { .. } => TaskState::Running,
            TaskEvent::Finish(outcome) if outcome.is_cancellation() => TaskState::Cancelled,
            TaskEvent::Cancel(_) => TaskState::Cancelled,
            TaskEvent::Finish(_) | TaskEvent::Abandon(_) => TaskState::Finished,
        }
    }

    /// Claims open a new attempt, which fences out every write of the previous holder.
    pub fn opens_attempt(&self) -> bool {
        matches!(self, TaskEvent::Claim { .. } | TaskEvent::Readopt { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadEvent {
    /// Its process runs, with this pid (the process group id) and containment handle (JSON).
    Started {
        pid: i32,
        containment: Option<String>,
    },
    StopRequested,
    StopAbandoned,
    /// How it ended, and what was measured of it.
    Ended(crate::outcome::End, crate::outcome::Usage),
}

impl WorkloadEvent {
    pub fn name(&self) -> &'static str {
        match self {
            WorkloadEvent::Started { .. } => "Started",
            WorkloadEvent::StopRequested => "StopRequested",
            WorkloadEvent::StopAbandoned => "StopAbandoned",
            WorkloadEvent::Ended(..) => "Ended",
        }
    }

    pub fn legal_from(&self, from: WorkloadState) -> bool {
        use WorkloadState::*;
        matches!(
            (self, from),
            (WorkloadEvent::Started { .. }, Starting)
                | (WorkloadEvent::StopRequested, Running)
                | (WorkloadEvent::StopAbandoned, Stopping)
                | (WorkloadEvent::Ended(..), Starting | Running | Stopping)
        )
    }

    pub fn target(&self) -> WorkloadState {
        match self {
            WorkloadEvent::Started { .. } | WorkloadEvent::StopAbandoned => WorkloadState::Running,
            WorkloadEvent::StopRequested => WorkloadState::Stopping,
            WorkloadEvent::Ended(..) => WorkloadState::Stopped,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("{event} is not allowed from {from}")]
    Illegal { event: &'static str, from: String },
    /// Zero rows matched: someone else changed the row first (or the holder was fenced out).
    #[error("the row changed under us (expected {expected})")]
    Stale { expected: String },
    /// The database failed; kept typed, so callers can tell "unreachable" from a bug.
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    fn task_events() -> Vec<TaskEvent> {
        vec![
            TaskEvent::Claim { runner: "r".into() },
            TaskEvent::Readopt { runner: "r".into() },
            TaskEvent::Finish(Outcome::NothingToStop { spec_name: "j".into() }),
            TaskEvent::Cancel(Outcome::CancelledBeforeStart { queued: true, workload: None }),
            TaskEvent::Abandon(Outcome::Internal { runner: "r".into() }),
        ]
    }

    #[test]
    fn the_task_transition_table_is_exactly_the_documented_one() {
        use TaskState::*;
        let expected = [
            ("Claim", vec![Queued]),
            ("Readopt", vec![Running]),
            ("Finish", vec![Running]),
            ("Cancel", vec![Queued]),
            ("Abandon", vec![Queued, Running]),
        ];
        for (event, (name, allowed)) in task_events().iter().zip(expected) {
            for from in TaskState::iter() {
                assert_eq!(event.legal_from(from), allowed.contains(&from), "{name} from {from}");
            }
            assert_ne!(event.target(), Queued, "{name}: nothing goes back to Queued");
        }
    }

    fn queued() -> crate::task::Model {
        crate::task::Model::queued(7, Operation::StopWorkload, "w", chrono::DateTime::UNIX_EPOCH)
    }

    #[test]
    fn each_task_event_has_exactly_its_documented_effects() {
        let now = chrono::Utc::now();
        let claimed = TaskEvent::Claim { runner: "r".into() }.apply(&queued(), now);
        assert_eq!((claimed.state, claimed.attempt, claimed.runner_id.as_deref()), (TaskState::Running, 1, Some("r")));
        assert_eq!((claimed.started_at, claimed.updated_at, claimed.finished_at), (Some(now), now, None));
        let readopted = TaskEvent::Readopt { runner: "r".into() }.apply(&claimed, now);
        assert_eq!((readopted.attempt, readopted.started_at), (2, Some(now)), "a new attempt, the same start");
        let outcome = Outcome::NothingToStop { spec_name: "j".into() };
        let finished = TaskEvent::Finish(outcome.clone()).apply(&readopted, now);
        assert_eq!((finished.state, finished.attempt, finished.success), (TaskState::Finished, 2, Some(true)));
        assert_eq!((finished.ended(), finished.finished_at), (Some(outcome), Some(now)));
        let cancelled =
            TaskEvent::Cancel(Outcome::CancelledBeforeStart { queued: true, workload: None }).apply(&queued(), now);
        assert_eq!((cancelled.state, cancelled.attempt, cancelled.success), (TaskState::Cancelled, 0, Some(false)));
        assert_eq!(cancelled.started_at, None, "it never started");
        let abandoned = TaskEvent::Abandon(Outcome::Internal { runner: "r".into() }).apply(&claimed, now);
        assert_eq!((abandoned.state, abandoned.runner_id.as_deref()), (TaskState::Finished, Some("r")));
    }

    #[test]
    fn finished_and_cancelled_are_final_for_tasks() {
        for event in task_events() {
            for state in [TaskState::Finished, TaskState::Cancelled] {
                assert!(state.is_final());
                assert!(!event.legal_from(state), "{event:?} from {state}");
            }
        }
    }

    #[test]
    fn a_task_ends_cancelled_only_by_a_cancel() {
        let finish = |outcome| TaskEvent::Finish(outcome).target();
        assert_eq!(finish(Outcome::NothingToStop { spec_name: "j".into() }), TaskState::Finished);
        assert_eq!(finish(Outcome::Internal { runner: "r".into() }), TaskState::Finished, "a failure is not a cancel");
        assert_eq!(finish(Outcome::CancelledBeforeStart { queued: false, workload: None }), TaskState::Cancelled);
        let left = Outcome::LeftStop { workload: "w".into(), workload_name: "n".into() };
        assert_eq!(finish(left), TaskState::Cancelled);
        assert_eq!(
            TaskEvent::Cancel(Outcome::CancelledBeforeStart { queued: true, workload: None }).target(),
            TaskState::Cancelled
        );
    }

    #[test]
    fn the_workload_transition_table_is_exactly_the_documented_one() {
        use WorkloadState::*;
        let cases = [
            (WorkloadEvent::Started { pid: 1, containment: None }, vec![Starting], Running),
            (WorkloadEvent::StopRequested, vec![Running], Stopping),
            (WorkloadEvent::StopAbandoned, vec![Stopping], Running),
            (
                WorkloadEvent::Ended(
                    crate::outcome::End::Exited { code: Some(0), signal: None, during_stop: false },
                    Default::default(),
                ),
                vec![Starting, Running, Stopping],
                Stopped,
            ),
        ];
        for (event, allowed, target) in cases {
            for from in WorkloadState::iter() {
                assert_eq!(event.legal_from(from), allowed.contains(&from), "{event:?} from {from}");
            }
            assert_eq!(event.target(), target);
        }
    }
}
