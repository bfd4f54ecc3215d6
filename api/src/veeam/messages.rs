//! Enterprise Manager's words for the engine's facts: a finished task's `Result` message and
//! success, and a stopped session's `FailureMessage`.

use super::views::{operation_name, state_name};
use entity::outcome::{End, Outcome, StopHow, Unobserved};
use entity::{task, workload};

/// `(Success, Message)` of a finished task, in EM's words.
pub fn result(outcome: &Outcome, task: &task::Model) -> (bool, String) {
    (outcome.success(), message(outcome, task))
}

fn message(outcome: &Outcome, task: &task::Model) -> String {
    match outcome {
        Outcome::Started { spec_name, .. } => format!("Job \"{spec_name}\" triggered to start."),
        Outcome::AlreadyRunning { workload_name, spec_name, .. } => {
            format!("Job \"{spec_name}\" is already running (session \"{workload_name}\").")
        }
        Outcome::StartFailed { spec_name, reason, .. } => format!("Job \"{spec_name}\" could not start: {reason}."),
        Outcome::SpecGone { spec } => format!("Job {spec} does not exist any more."),
        Outcome::NothingToStop { spec_name } => format!("Job \"{spec_name}\" is not running; nothing to stop."),
        Outcome::KeptRunning { spec_name } => format!("Job \"{spec_name}\" is running; it was not deleted."),
        Outcome::SpecDeleted { spec_name } => format!("Job \"{spec_name}\" was deleted."),
        Outcome::WorkloadGone { workload } => format!("Job Session {workload} does not exist."),
        Outcome::WrongRunner { workload_name, owner, .. } => {
            format!("Job Session \"{workload_name}\" belongs to runner \"{owner}\", not to this one.")
        }
        Outcome::Stopped { workload_name, how, .. } => {
            format!("Job Session \"{workload_name}\" stopped: {}.", stop_how(*how))
        }
        Outcome::AlreadyStopped { workload_name, .. } => format!("Job Session \"{workload_name}\" is already stopped."),
        Outcome::Survived { workload_name, pids, .. } => {
            format!("Job Session \"{workload_name}\": processes {pids:?} survived SIGKILL.")
        }
        Outcome::StopAbandoned { workload_name, alive, state, .. } => {
            let state = state_name(*state);
            format!(
                "Task cancelled: the stop of Job Session \"{workload_name}\" was abandoned after SIGTERM without SIGKILL; {alive} process(es) still running, session is {state}."
            )
        }
        Outcome::LeftStop { workload_name, .. } => {
            format!("Task cancelled: the stop of Job Session \"{workload_name}\" goes on for another stop task.")
        }
        Outcome::CancelledBeforeStart { queued: true, .. } => {
            "Task cancelled by user before it started; nothing was done.".to_owned()
        }
        Outcome::CancelledBeforeStart { queued: false, .. } => {
            "Task cancelled before it started; nothing was done.".to_owned()
        }
        Outcome::RunnerGone { runner, was_running, deadline_ms } => {
            let doing = if *was_running { "was running it" } else { "was to run it" };
            format!(
                "Runner \"{runner}\", which {doing}, stopped responding and did not come back within {deadline_ms} ms; the {} operation did not complete.",
                operation_name(task.operation)
            )
        }
        Outcome::Internal { runner } => {
            format!(
                "The {} operation failed on an internal error; runner \"{runner}\" logged the cause.",
                operation_name(task.operation)
            )
        }
        Outcome::Snapshotted { spec_name, snapshot, .. } => {
            format!("Job \"{spec_name}\" was saved as snapshot {snapshot}.")
        }
        Outcome::SnapshotFailed { snapshot, reason } => format!("Snapshot {snapshot} could not be taken: {reason}."),
        Outcome::SnapshotDeleted { snapshot } => format!("Snapshot {snapshot} was deleted."),
        Outcome::Legacy { message, .. } => message.clone(),
    }
}

fn stop_how(how: StopHow) -> String {
    match how {
        StopHow::ExitedAfterSigterm => "its processes exited after SIGTERM".to_owned(),
        StopHow::AlreadyExited => "its processes had already exited".to_owned(),
        StopHow::Killed { grace_ms } => {
            format!("its processes ignored SIGTERM for {grace_ms} ms and were killed with SIGKILL")
        }
        StopHow::NoProcess => "it had no process".to_owned(),
    }
}

/// A stopped session's `FailureMessage`: none when its command succeeded by itself.
pub fn failure_message(session: &workload::Model) -> Option<String> {
    let exited = |code: Option<i32>, signal: &Option<String>| match (code, signal) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("terminated by {signal}"),
        (None, None) => "ended".to_owned(),
    };
    Some(match session.ended()? {
        End::Stopped { how } => format!("Stopped by user request: {}.", stop_how(how)),
        End::Exited { code: Some(0), during_stop: false, .. } => return None,
        End::Exited { code, signal, during_stop: true } => {
            format!("Stopped by user request: the command {}.", exited(code, &signal))
        }
        End::Exited { code, signal, during_stop: false } => format!("The job's command {}.", exited(code, &signal)),
        End::StartFailed { reason } => format!("Job \"{}\" could not start: {reason}.", session.spec_name),
        End::Unobserved { why } => {
            let why = match why {
                Unobserved::RunnerRestarted { runner } => {
                    format!("it ended while runner \"{runner}\" was restarting; its exit status is unknown")
                }
                Unobserved::WaitFailed { error } => format!("could not wait for it: {error}"),
                Unobserved::LeaseLost => "its runner lost its lease before the command ran".to_owned(),
            };
            format!("The job's command ended: {why}.")
        }
        End::Legacy { message } => return message,
    })
}
