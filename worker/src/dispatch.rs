//! The dispatcher keeps the queue in step with the database; every `api` and `worker` process
//! runs one (their work is idempotent, so several at once only cost duplicate messages, which
//! claims turn into no-ops).
//!
//! - Relay (transactional outbox): a task row is committed before its message is published. The
//!   API publishes at once; whatever did not get a broker confirm (API killed between commit and
//!   publish, broker down) has `published_at IS NULL` and is published by the relay. The first
//!   pass after start republishes every queued task (an in-process queue starts empty after a
//!   restart); later passes republish tasks confirmed long ago and still unclaimed.
//!   A scheduled task (`not_before`) is held back until due, then routed and published.
//! - Unclaimed on the shared queue: a runner that stalls (paused, swapping, a hung claim) holds
//!   the delivery its prefetch allows, which RabbitMQ hands on only once it drops the runner's
//!   connection (twice the AMQP heartbeat). So when the shared queue has nothing waiting yet a
//!   task published to it is still unclaimed `claim_within_ms` later, the relay publishes it
//!   again and another runner takes it (claims are compare-and-set: it runs once; the stalled
//!   runner's copy becomes a no-op). With messages waiting, the queue is merely busy: nothing is
//!   republished, so a backlog is never multiplied.
//! - Sweeper: a runner silent for longer than the deadline is gone; every task running on it or
//!   queued for its queue is finished with a failure that names it, so nothing stays Running.

use crate::batch::Batch;
use crate::broker::Broker;
use crate::events::TaskEvents;
use crate::settings::RunnerSettings;
use entity::message::{QueueMessage, Route};
use entity::state::{Outcome, TaskEvent};
use entity::store::{runners, tasks};
use entity::{TaskState, task};
use sea_orm::{DatabaseConnection, DbErr};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const RELAY_BATCH: u64 = 200;
/// At most this many confirms recorded by one statement.
const MARK_BATCH: usize = 256;

#[derive(Clone)]
pub struct Dispatcher {
    db: DatabaseConnection,
    broker: Arc<dyn Broker>,
    settings: RunnerSettings,
    events: TaskEvents,
    marks: Marks,
}

impl Dispatcher {
    /// Inside a runtime: it starts the writer of the publishes' confirms.
    pub fn new(db: DatabaseConnection, broker: Arc<dyn Broker>, settings: RunnerSettings, events: TaskEvents) -> Self {
        let marks = Marks::start(db.clone());
        Self { db, broker, settings, events, marks }
    }

    /// Publishes the task's run message and records the confirm; false if the broker failed.
    pub async fn publish_run(&self, task: &task::Model) -> bool {
        let route = Route::from_column(task.route.as_deref());
        match self.broker.publish(&route, QueueMessage::Run { task_id: task.id }).await {
            Ok(()) => {
                if let Err(err) = self.marks.record(task.id).await {
                    tracing::warn!(task = task.id, %err, "published, but not recorded: the relay will publish it again");
                }
                true
            }
            Err(err) => {
                tracing::warn!(task = task.id, %err, "publish failed: the relay will retry");
                false
            }
        }
    }

    /// Tells the runner holding `task` to cancel it, now.
    pub async fn publish_cancel(&self, task: &task::Model) {
        let Some(runner) = task.runner_id.clone() else {
            return;
        };
        if let Err(err) = self.broker.publish(&Route::Runner(runner), QueueMessage::Cancel { task_id: task.id }).await {
            // The runner's heartbeat reads the cancel flag from the database as well.
            tracing::warn!(task = task.id, %err, "cancel message not delivered; the runner will see the flag");
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut first_pass = true;
        loop {
            match self.relay(first_pass).await {
                Ok(()) => first_pass = false,
                Err(err) => tracing::warn!(%err, "relay pass failed"),
            }
            if let Err(err) = self.republish_unclaimed().await {
                tracing::warn!(%err, "republishing unclaimed tasks failed");
            }
            if let Err(err) = self.sweep().await {
                tracing::warn!(%err, "sweep failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.settings.relay_interval()) => {}
            }
        }
    }

    async fn relay(&self, everything: bool) -> Result<(), DbErr> {
        let now = entity::store::now();
        let stale_before = if everything { now } else { now - self.settings.republish_after() };
        loop {
            let due = tasks::due_for_publish(&self.db, Some(stale_before), RELAY_BATCH).await?;
            let full = due.len() as u64 == RELAY_BATCH;
            for task in &due {
                let Some(task) = self.route_scheduled(task).await? else { continue };
                if !self.publish_run(&task).await {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Publishes again the shared queue's tasks that a stalled runner holds (see the module's
    /// header); at most once per `claim_within_ms` each (a publish stamps `published_at`).
    async fn republish_unclaimed(&self) -> Result<(), DbErr> {
        if self.broker.shared_ready().await != Some(0) {
            return Ok(());
        }
        let published_before = entity::store::now() - self.settings.claim_within();
        for task in tasks::unclaimed_on_shared_queue(&self.db, published_before, RELAY_BATCH).await? {
            tracing::warn!(task = task.id, "unclaimed on the shared queue: a runner holds it; publishing it again");
            if !self.publish_run(&task).await {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A scheduled task that comes due is routed now, to the runner that owns its target now;
    /// `None` when it left the queue meanwhile.
    async fn route_scheduled(&self, task: &task::Model) -> Result<Option<task::Model>, DbErr> {
        if task.not_before.is_none() || task.published_at.is_some() {
            return Ok(Some(task.clone()));
        }
        let route = crate::engine::route_of(&self.db, task.operation, &task.target_id, None).await?;
        if route != task.route && !tasks::set_route(&self.db, task.id, route.clone()).await? {
            return Ok(None);
        }
        Ok(Some(task::Model { route, ..task.clone() }))
    }

    async fn sweep(&self) -> Result<(), DbErr> {
        let deadline = self.settings.runner_deadline();
        let gone: Vec<String> =
            runners::silent_since(&self.db, entity::store::now() - deadline).await?.into_iter().map(|r| r.id).collect();
        for task in tasks::stranded_on(&self.db, &gone).await? {
            let runner = task.runner_id.clone().or(task.route.clone()).unwrap_or_default();
            let outcome = Outcome::RunnerGone {
                runner: runner.clone(),
                was_running: task.state == TaskState::Running,
                deadline_ms: self.settings.runner_deadline_ms,
            };
            match tasks::transition(&self.db, &task, TaskEvent::Abandon(outcome)).await {
                Ok(_) => {
                    tracing::warn!(task = task.id, runner, "task abandoned: its runner is gone");
                    self.events.changed(task.id);
                }
                Err(err) => tracing::debug!(task = task.id, %err, "task changed while sweeping"),
            }
        }
        Ok(())
    }
}

/// Records the publishes' confirms (`published_at`), a round of them to a statement (`batch`).
#[derive(Clone)]
struct Marks(Batch<i32, Result<(), DbErr>>);

impl Marks {
    fn start(db: DatabaseConnection) -> Self {
        Self(Batch::start(MARK_BATCH, move |ids: Vec<i32>| {
            let db = db.clone();
            async move {
                match tasks::mark_published(&db, &ids).await {
                    Ok(()) => vec![Ok(()); ids.len()],
                    Err(err) => crate::batch::all_failed(&err, ids.len()),
                }
            }
        }))
    }

    /// Records task `id`'s confirm; returns once it is written.
    async fn record(&self, id: i32) -> Result<(), DbErr> {
        self.0.run(id).await?
    }
}
