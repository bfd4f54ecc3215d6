//! The engine's front door, used by every face: submit a task, cancel it.
//!
//! - `submit` commits the task, then publishes its run message in the background (the relay
//!   publishes whatever did not get a broker confirm), so a task exists before any client hears
//!   of it and no request waits on the broker. The route is the engine's business, not the
//!   face's: work on a workload goes to the runner that owns it, derived here from the target.
//! - `cancel` acts on the state it reads and retries on a lost race (the runner claimed or
//!   finished the task meanwhile): a queued task is finished as cancelled and never runs; a
//!   running task gets its cancel flag (which the runner's heartbeat reads) and its runner a
//!   message (which makes it immediate, sent in the background); a finished task is left as it is.
//!
//! - `task` reads a task, a finished one from memory (`finished`); `delete_finished` removes one.
//! - `wait_finished` waits for a task to finish, up to a deadline, on task-state events (see
//!   `events`), never by polling: for faces whose vendor answers only once an operation is done.
//!
//! Faces authorise, call these, and render the result in their dialect.

use crate::batch::Batch;
use crate::dispatch::Dispatcher;
use crate::events::{TaskEvents, TaskSignal};
use crate::finished::FinishedTasks;
use chrono::{DateTime, Utc};
use entity::outcome::TaskParams;
use entity::state::{Outcome, TaskEvent, TransitionError};
use entity::store::specs::{OverQuota, Quota};
use entity::store::{specs, tasks, tenants, workloads};
use entity::{Operation, TaskState, task, workload_spec};
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, TransactionTrait};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How far ahead a task may be scheduled: later means never. (Every time stored is then well
/// inside what both databases compare in time order; SQLite compares the stored text, and a
/// year past 9999 is written `+10000-...`, which sorts before `2026-...`.)
pub const HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(100 * 366);

/// What a face asks for; the engine derives the rest.
pub struct Submission<'a> {
    /// The tenant it is for, whose target it must be (checked by the face).
    pub tenant_id: i32,
    pub user_id: i32,
    pub operation: Operation,
    /// The spec (StartWorkload, StopSpec, DeleteSpec) or the workload (StopWorkload).
    pub target_id: &'a str,
    pub params: TaskParams,
    /// The runner that owns the target workload, when the face has just read it (its
    /// `runner_id`, which never changes): the engine routes by it instead of reading the
    /// workload again. `None`: the engine reads it.
    pub owner: Option<&'a str>,
}

/// A quota a submission must stay within: the tenant's footprint of one face's specs (see
/// `specs::footprint`), counted with the submission, inside its transaction, under the tenant's
/// lock, so racing creates and starts are counted exactly.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// The face whose specs count (the key they carry in `meta`).
    pub face: &'static str,
    pub quota: Quota,
}

/// Why `submit_if_unchanged` submitted nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The spec changed since the caller read it.
    Modified,
    OverQuota(OverQuota),
}

/// Within the quota, counted in `txn` (which holds the tenant's lock), or which limit is passed.
async fn admit(
    txn: &impl sea_orm::ConnectionTrait,
    tenant_id: i32,
    admission: Option<&Admission>,
) -> Result<Result<(), OverQuota>, DbErr> {
    let Some(admission) = admission else {
        return Ok(Ok(()));
    };
    let footprint = specs::footprint(txn, tenant_id, admission.face).await?;
    Ok(admission.quota.check(&footprint))
}

/// What `cancel` did.
#[derive(Debug)]
pub enum Cancelled {
    /// The task had not started: it is Cancelled now and will never run.
    BeforeStart(task::Model),
    /// The task is running: its runner was told, and abandons it at its next safe point.
    RunnerTold(task::Model),
    /// The task was final already (Finished or Cancelled); nothing changed.
    AlreadyFinished(task::Model),
}

/// At most this many submitted tasks inserted by one statement.
const INSERT_BATCH: usize = 128;
/// At most this many tasks read by one statement.
const READ_BATCH: usize = 128;

#[derive(Clone)]
pub struct Engine {
    db: DatabaseConnection,
    dispatcher: Dispatcher,
    events: TaskEvents,
    finished: FinishedTasks,
    /// `submit`'s inserts, a round to a statement (`batch`).
    inserts: Batch<task::ActiveModel, Result<task::Model, DbErr>>,
    /// `task`'s reads of tasks not kept in memory, a round to a statement.
    reads: Batch<i32, Result<Option<task::Model>, DbErr>>,
}

impl Engine {
    /// Inside a runtime: it starts the writers of its inserts and its reads (`batch`).
    pub fn new(db: DatabaseConnection, dispatcher: Dispatcher, events: TaskEvents, finished: FinishedTasks) -> Self {
        let writer = db.clone();
        let inserts = Batch::start(INSERT_BATCH, move |round: Vec<task::ActiveModel>| {
            let db = writer.clone();
            async move { insert_round(&db, round).await }
        });
        let reader = db.clone();
        let reads = Batch::start(READ_BATCH, move |ids: Vec<i32>| {
            let db = reader.clone();
            async move {
                match tasks::get_many(&db, &ids).await {
                    Ok(found) => {
                        let found: std::collections::HashMap<i32, task::Model> =
                            found.into_iter().map(|t| (t.id, t)).collect();
                        ids.iter().map(|id| Ok(found.get(id).cloned())).collect()
                    }
                    Err(err) => crate::batch::all_failed(&err, ids.len()),
                }
            }
        });
        Self { db, dispatcher, events, finished, inserts, reads }
    }

    /// The task as it is: a finished one from memory once read (it never changes; see
    /// `finished`), any other from the database (with the reads of other requests waiting at
    /// the same time: `batch`).
    pub async fn task(&self, id: i32) -> Result<Option<task::Model>, DbErr> {
        if let Some(task) = self.finished.get(id) {
            return Ok(Some(task));
        }
        let epoch = self.finished.epoch();
        // A round begun after this request arrived: it sees every change committed before.
        let task = self.reads.run(id).await??;
        if let Some(task) = &task {
            self.finished.offer(task, epoch);
        }
        Ok(task)
    }

    /// Deletes a finished task (false: it is not finished, or gone). Returns once no process
    /// keeps it in memory: this one forgets it at once, and the others have heard of it
    /// (`revocations::settle`; see `finished`).
    pub async fn delete_finished(&self, id: i32) -> Result<bool, DbErr> {
        let deleted = tasks::delete_finished(&self.db, id).await?;
        self.finished.invalidate(id);
        self.events.changed(id);
        if deleted {
            entity::store::revocations::settle(&self.db).await?;
        }
        Ok(deleted)
    }

    /// The finished tasks this process keeps.
    pub fn finished(&self) -> &FinishedTasks {
        &self.finished
    }

    /// The task once it has finished, or as it is when `timeout` runs out; `None` if there is
    /// no such task.
    pub async fn wait_finished(&self, task_id: i32, timeout: Duration) -> Result<Option<task::Model>, DbErr> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before the first read: no change can fall between the read and the wait.
        let mut signals = self.events.subscribe();
        loop {
            let task = tasks::get(&self.db, task_id).await?;
            if task.as_ref().is_none_or(|t| t.state.is_final()) {
                return Ok(task);
            }
            loop {
                match tokio::time::timeout_at(deadline, signals.recv()).await {
                    // Out of time: the task as it is now (it may have moved on without finishing).
                    Err(_) | Ok(Err(RecvError::Closed)) => return tasks::get(&self.db, task_id).await,
                    Ok(Ok(TaskSignal::Changed(id))) if id != task_id => {}
                    Ok(Ok(_) | Err(RecvError::Lagged(_))) => break,
                }
            }
        }
    }

    /// Commits the task (routed to the runner that owns its target, if any), then publishes it.
    pub async fn submit(&self, submission: Submission<'_>) -> Result<task::Model, DbErr> {
        let route = route_of(&self.db, submission.operation, submission.target_id, submission.owner).await?;
        let task = self.inserts.run(tasks::new_row(new_task(&submission, route), None)).await??;
        self.publish(&task);
        Ok(task)
    }

    /// Commits the task only if its spec is still as `seen` (not changed since the caller read
    /// it and decided), marking the spec changed in the same transaction, then publishes it.
    /// Of requests that read the same spec and race to change it, exactly one submits: a loser
    /// either fails the compare-and-set or, reading the spec after the winner committed, sees
    /// the winner's task (`Refused::Modified`). With an `Admission`, the tenant's footprint
    /// with this task must stay within its quota (`Refused::OverQuota`).
    pub async fn submit_if_unchanged(
        &self,
        submission: Submission<'_>,
        seen: &workload_spec::Model,
        admission: Option<&Admission>,
    ) -> Result<Result<task::Model, Refused>, DbErr> {
        let route = route_of(&self.db, submission.operation, submission.target_id, submission.owner).await?;
        let txn = self.db.begin().await?;
        if admission.is_some() {
            tenants::lock(&txn, submission.tenant_id).await?;
        }
        if !specs::touch(&txn, seen, None).await? {
            txn.rollback().await?;
            return Ok(Err(Refused::Modified));
        }
        let task = tasks::insert(&txn, new_task(&submission, route)).await?;
        if let Err(over) = admit(&txn, submission.tenant_id, admission).await? {
            txn.rollback().await?;
            return Ok(Err(Refused::OverQuota(over)));
        }
        txn.commit().await?;
        self.publish(&task);
        Ok(Ok(task))
    }

    /// Creates the spec (of the submission's tenant, with the caller's id) and commits its task
    /// (a start) in one transaction, then publishes it: both or neither, so a failure leaves no
    /// spec that was never started. A taken name fails as `specs::create` does. With an
    /// `Admission`, the tenant's footprint with this spec must stay within its quota.
    pub async fn create_and_submit(
        &self,
        submission: Submission<'_>,
        spec: &specs::NewSpec,
        admission: Option<&Admission>,
    ) -> Result<Result<(workload_spec::Model, task::Model), OverQuota>, DbErr> {
        let txn = self.db.begin().await?;
        if admission.is_some() {
            tenants::lock(&txn, submission.tenant_id).await?;
        }
        let created = specs::create_with_id(&txn, submission.tenant_id, submission.target_id, spec).await?;
        let task = tasks::insert(&txn, new_task(&submission, None)).await?;
        if let Err(over) = admit(&txn, submission.tenant_id, admission).await? {
            txn.rollback().await?;
            return Ok(Err(over));
        }
        txn.commit().await?;
        self.publish(&task);
        Ok(Ok((created, task)))
    }

    /// Publishes the committed task's run message in the background (the relay redoes it if
    /// this fails).
    fn publish(&self, task: &task::Model) {
        let (dispatcher, queued) = (self.dispatcher.clone(), task.clone());
        tokio::spawn(async move { dispatcher.publish_run(&queued).await });
    }

    /// Commits the task to run at `at`, not before: until then it is neither published nor
    /// pending. The dispatchers' relay routes and publishes it when it comes due; claims make
    /// sure it runs once, however many processes relay it. A restart loses nothing: it is a row.
    ///
    /// Rescheduling moves, it does not add: a task of the same operation and parameters already
    /// scheduled for the target is moved to `at` (so schedules replaced on every use leave no
    /// rows behind). `None`: `at` is past the `HORIZON`, which means never.
    pub async fn schedule(&self, submission: Submission<'_>, at: DateTime<Utc>) -> Result<Option<task::Model>, DbErr> {
        if at > entity::store::now() + HORIZON {
            return Ok(None);
        }
        let new = new_task(&submission, None);
        let same = |t: &task::Model| {
            t.operation == new.operation
                && TaskParams::from_json(t.params.as_deref()) == new.params
                && t.tenant_id == new.tenant_id
        };
        for waiting in tasks::scheduled_for(&self.db, submission.target_id).await?.into_iter().filter(same) {
            if tasks::move_scheduled(&self.db, waiting.id, at).await? {
                return tasks::get(&self.db, waiting.id).await;
            }
        }
        tasks::insert_scheduled(&self.db, new, Some(at)).await.map(Some)
    }

    /// Cancels every task aimed at `target_id` that is scheduled for later, on behalf of `by`.
    pub async fn unschedule(&self, target_id: &str, by: i32) -> Result<(), DbErr> {
        self.unschedule_except(target_id, &[], by).await
    }

    /// Cancels every task aimed at `target_id` that is scheduled for later, but those of `keep`.
    pub async fn unschedule_except(&self, target_id: &str, keep: &[i32], by: i32) -> Result<(), DbErr> {
        for task in tasks::scheduled_for(&self.db, target_id).await?.iter().filter(|t| !keep.contains(&t.id)) {
            self.cancel(task, by).await?;
        }
        Ok(())
    }

    /// Cancels `task` on behalf of user `by` (who is recorded).
    pub async fn cancel(&self, task: &task::Model, by: i32) -> Result<Cancelled, DbErr> {
        let mut seen = task.clone();
        // Each lost race means the task moved on (Queued → Running → final), so this ends.
        for _ in 0..8 {
            if seen.state.is_final() {
                return Ok(Cancelled::AlreadyFinished(seen));
            }
            if tasks::request_cancel(&self.db, &seen, by).await? {
                if seen.state == TaskState::Running {
                    let (dispatcher, told) = (self.dispatcher.clone(), seen.clone());
                    tokio::spawn(async move { dispatcher.publish_cancel(&told).await });
                    return Ok(Cancelled::RunnerTold(seen));
                }
                let cancelled = Outcome::CancelledBeforeStart { queued: true, workload: None };
                match tasks::transition(&self.db, &seen, TaskEvent::Cancel(cancelled)).await {
                    Ok(done) => {
                        self.events.changed(done.id);
                        return Ok(Cancelled::BeforeStart(done));
                    }
                    Err(TransitionError::Db(err)) => return Err(err),
                    // Claimed meanwhile: the flag is set; tell its runner on the next pass.
                    Err(TransitionError::Stale { .. } | TransitionError::Illegal { .. }) => {}
                }
            }
            match tasks::get(&self.db, seen.id).await? {
                Some(now) => seen = now,
                // Final and removed meanwhile (by a concurrent DELETE).
                None => return Ok(Cancelled::AlreadyFinished(seen)),
            }
        }
        Err(DbErr::Custom(format!("task {} kept changing while it was being cancelled", seen.id)))
    }
}

/// A round of submitted tasks, inserted by one statement. When the database refuses it (one of
/// them breaks a constraint), each is inserted on its own, so that each gets its own answer.
async fn insert_round(db: &DatabaseConnection, rows: Vec<task::ActiveModel>) -> Vec<Result<task::Model, DbErr>> {
    if rows.len() > 1 {
        match task::Entity::insert_many(rows.clone()).exec_with_returning(db).await {
            Ok(inserted) => return answer_by_content(&rows, inserted),
            Err(err) if !crate::batch::refused(&err) => return crate::batch::all_failed(&err, rows.len()),
            Err(_) => {}
        }
    }
    let mut answers = Vec::with_capacity(rows.len());
    for row in rows {
        answers.push(row.insert(db).await);
    }
    answers
}

/// Each row asked for, with the task inserted for it: matched by content, in whatever order the
/// database returned them (both return them in the order asked; two rows alike would be
/// interchangeable).
fn answer_by_content(rows: &[task::ActiveModel], inserted: Vec<task::Model>) -> Vec<Result<task::Model, DbErr>> {
    let same = |row: &task::ActiveModel, task: &task::Model| {
        // PostgreSQL keeps microseconds.
        row.created_at.try_as_ref().map(|at| at.timestamp_micros()) == Some(task.created_at.timestamp_micros())
            && row.user_id.try_as_ref() == Some(&task.user_id)
            && row.tenant_id.try_as_ref() == Some(&task.tenant_id)
            && row.operation.try_as_ref() == Some(&task.operation)
            && row.target_id.try_as_ref() == Some(&task.target_id)
            && row.params.try_as_ref() == Some(&task.params)
            && row.route.try_as_ref() == Some(&task.route)
            && row.not_before.try_as_ref() == Some(&task.not_before)
    };
    let mut left: Vec<Option<task::Model>> = inserted.into_iter().map(Some).collect();
    rows.iter()
        .enumerate()
        .map(|(n, row)| {
            let alike = |t: &Option<task::Model>| t.as_ref().is_some_and(|t| same(row, t));
            let at = if left.get(n).is_some_and(alike) { Some(n) } else { left.iter().position(alike) };
            at.and_then(|at| left[at].take()).ok_or_else(|| DbErr::Custom("a task inserted but not returned".into()))
        })
        .collect()
}

fn new_task<'a>(submission: &Submission<'a>, route: Option<String>) -> tasks::NewTask<'a> {
    tasks::NewTask {
        tenant_id: submission.tenant_id,
        user_id: submission.user_id,
        operation: submission.operation,
        target_id: submission.target_id,
        route,
        params: submission.params.clone(),
    }
}

/// The runner that must perform `operation` on `target_id`: the owner of the workload it
/// stops (`owner` when the caller knows it); any runner for a start (or a stop of a spec that is
/// not running).
pub(crate) async fn route_of(
    db: &DatabaseConnection,
    operation: Operation,
    target_id: &str,
    owner: Option<&str>,
) -> Result<Option<String>, DbErr> {
    Ok(match operation {
        Operation::StartWorkload => None,
        Operation::StopSpec | Operation::DeleteSpec => {
            workloads::active_of_spec(db, target_id).await?.map(|s| s.runner_id)
        }
        Operation::StopWorkload | Operation::SnapshotWorkload => match owner {
            Some(owner) => Some(owner.to_owned()),
            None => workloads::find(db, target_id).await?.map(|s| s.runner_id),
        },
        // Any runner: snapshots are on the runners' shared sandbox storage.
        Operation::DeleteSnapshot => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row gets the task inserted for it, whatever order they come back in.
    #[test]
    fn inserted_tasks_are_given_back_by_content() {
        let row = |target: &str| {
            let new = tasks::NewTask {
                tenant_id: 1,
                user_id: 1,
                operation: Operation::StopWorkload,
                target_id: target,
                route: None,
                params: TaskParams::default(),
            };
            tasks::new_row(new, None)
        };
        let rows = [row("a"), row("b"), row("a")];
        let inserted = |row: &task::ActiveModel, id: i32| {
            let mut row = row.clone();
            row.id = sea_orm::ActiveValue::Set(id);
            sea_orm::TryIntoModel::try_into_model(row).expect("a whole row")
        };
        let returned = vec![inserted(&rows[2], 3), inserted(&rows[1], 2), inserted(&rows[0], 1)];
        let answers: Vec<i32> =
            answer_by_content(&rows, returned).into_iter().map(|t| t.expect("answered").id).collect();
        assert_eq!(answers, [1, 2, 3]);
        let answers = answer_by_content(&rows, vec![inserted(&rows[0], 1)]);
        assert!(answers[0].is_ok() && answers[1].is_err() && answers[2].is_err(), "{answers:?}");
    }
}
