//! The runner: claims tasks from its deliveries and performs them.
//!
//! Deliveries are claimed concurrently (up to `CLAIMS_AT_ONCE`), each in its own tokio task,
//! and the claims and outcomes of many tasks are written a round to a statement (`batch`). A
//! run message is settled only after the database holds the claim (a compare-and-set
//! `Queued → Running` that opens a new attempt): ack-on-claim. Broker redelivery therefore covers only the window before the claim; after it,
//! the database owns the task, and the runner heartbeat is its lease. The operation then runs in
//! its own tokio task, so a long stop never holds a delivery unacknowledged (RabbitMQ's consumer
//! ack timeout cannot fire) and never blocks the next delivery (a cancel is seen at once).
//!
//! Every in-flight task has a `CancellationToken`, registered *before* its claim: a cancel
//! message (sent once the task is Running, so possibly while its claim is still being
//! acknowledged here) cancels it at once, and an operation starting with a cancelled token
//! does nothing. Duplicate deliveries of one task share its token. The heartbeat loop also
//! reads the `cancel_requested` flags of this runner's tasks, so a lost cancel message is still
//! honoured within one heartbeat.
//!
//! On start, the runner re-adopts what it owned before a crash: it watches its workloads' process
//! groups again, and re-runs its Running tasks under a new attempt, fencing out the old one.
//!
//! Shutdown (SIGTERM, SIGINT): the runner stops taking deliveries (those it held go back to the
//! queue when its connection closes), lets its in-flight operations finish for up to the
//! shutdown timeout while it keeps heartbeating, and returns. Workloads keep running; whatever
//! did not finish is re-adopted when the runner comes back with the same identity.

use crate::batch::Batch;
use crate::broker::{Broker, Delivery};
use crate::events::TaskEvents;
use crate::lease::Lease;
use crate::operations::{self, Ctx, OpError};
use crate::settings::RunnerSettings;
use entity::message::QueueMessage;
use entity::state::{Outcome, TaskEvent, TransitionError};
use entity::store::{runners, tasks, workloads};
use entity::task;
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How many deliveries are claimed at once (done one at a time, claims bounded the whole
/// pipeline); those waiting together are written in one round.
const CLAIMS_AT_ONCE: usize = 32;
/// At most this many outcomes recorded by one statement.
const FINISH_BATCH: usize = 128;
/// An operation that keeps failing on the database this long gives up with a failure outcome
/// (a database restart takes seconds; an error that lasts minutes is not going away).
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct Runner {
    ctx: Ctx,
    broker: Arc<dyn Broker>,
    heartbeat_interval: Duration,
    /// The token of each task being claimed or performed here, with how many deliveries of
    /// it hold it.
    in_flight: Arc<Mutex<HashMap<i32, (CancellationToken, usize)>>>,
    /// Every in-flight operation, so that shutdown can wait for them.
    operations: TaskTracker,
    shutdown_timeout: Duration,
    events: TaskEvents,
    claims: Batch<i32, Result<Option<task::Model>, DbErr>>,
    finishes: Batch<(task::Model, Outcome), Result<task::Model, TransitionError>>,
}

impl Runner {
    pub fn new(
        db: DatabaseConnection,
        broker: Arc<dyn Broker>,
        settings: &RunnerSettings,
        events: TaskEvents,
        mechanism: crate::contain::Mechanism,
    ) -> Self {
        let lease = Arc::new(Lease::new(settings.runner_deadline() / 2));
        let (claims, finishes, runner) = (db.clone(), db.clone(), settings.runner_id.clone());
        // A round of claims is one statement.
        let claims = Batch::start(CLAIMS_AT_ONCE, move |ids: Vec<i32>| {
            let (db, runner) = (claims.clone(), runner.clone());
            async move {
                match tasks::claim(&db, &ids, &runner).await {
                    Ok(claimed) => {
                        let mut claimed: HashMap<i32, task::Model> = claimed.into_iter().map(|t| (t.id, t)).collect();
                        ids.iter().map(|id| Ok(claimed.remove(id))).collect()
                    }
                    Err(err) => crate::batch::all_failed(&err, ids.len()),
                }
            }
        });
        let finishes = Batch::start(FINISH_BATCH, move |round: Vec<(task::Model, Outcome)>| {
            let db = finishes.clone();
            async move { finish_round(&db, &round).await }
        });
        let ctx = Ctx {
            db,
            mechanism: Arc::new(mechanism),
            samplers: Arc::default(),
            runner_id: settings.runner_id.clone(),
            grace: settings.grace_period(),
            lease,
            stops: Arc::default(),
            claims: Arc::default(),
        };
        Self {
            ctx,
            broker,
            heartbeat_interval: settings.heartbeat_interval(),
            in_flight: Arc::default(),
            operations: TaskTracker::new(),
            shutdown_timeout: settings.shutdown_timeout(),
            events,
            claims,
            finishes,
        }
    }

    pub fn id(&self) -> &str {
        &self.ctx.runner_id
    }

    /// Announces the runner (first heartbeat) and re-adopts what it owned before a restart.
    pub async fn register(&self) -> Result<(), DbErr> {
        runners::heartbeat(&self.ctx.db, self.id()).await?;
        runners::describe(&self.ctx.db, self.id(), &self.ctx.mechanism.describe()).await?;
        self.ctx.lease.renew();
        for workload in workloads::active_on(&self.ctx.db, self.id()).await? {
            if let Some(handle) = crate::contain::Handle::of(&workload) {
                tracing::info!(workload = %workload.id, containment = %handle.to_json(), "re-adopting a workload");
                operations::watch(self.ctx.clone(), workload.id.clone(), operations::Exit::Adopted(handle));
            }
        }
        for task in tasks::running_on(&self.ctx.db, self.id()).await? {
            let epoch = self.ctx.lease.epoch();
            match tasks::transition(&self.ctx.db, &task, TaskEvent::Readopt { runner: self.id().to_owned() }).await {
                Ok(task) => {
                    self.ctx.note_claim(task.id, epoch);
                    tracing::info!(task = task.id, attempt = task.attempt, "re-adopting a task");
                    let token = self.track(task.id);
                    self.spawn_execute(task, token);
                }
                Err(err) => tracing::warn!(task = task.id, %err, "could not re-adopt a task"),
            }
        }
        Ok(())
    }

    /// Consumes and heartbeats until `shutdown`, then drains its in-flight operations (see the
    /// module comment) and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::channel(64);
        let broker = self.broker.clone();
        let id = self.id().to_owned();
        let consumer_shutdown = shutdown.clone();
        tokio::spawn(async move { broker.consume(&id, tx, consumer_shutdown).await });
        let heartbeat_stop = CancellationToken::new();
        tokio::spawn(self.clone().heartbeat(heartbeat_stop.clone()));
        let claims = Arc::new(tokio::sync::Semaphore::new(CLAIMS_AT_ONCE));
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => break,
                delivery = rx.recv() => delivery,
            };
            let Some(delivery) = delivery else { break };
            let Ok(permit) = claims.clone().acquire_owned().await else { break };
            let this = self.clone();
            self.operations.spawn(async move {
                this.handle(delivery).await;
                drop(permit);
            });
        }
        drop(rx);
        self.operations.close();
        let left = self.in_flight.lock().map(|m| m.len()).unwrap_or_default();
        tracing::info!(runner = self.id(), in_flight = left, "shutting down: letting in-flight operations finish");
        if tokio::time::timeout(self.shutdown_timeout, self.operations.wait()).await.is_err() {
            let left: Vec<i32> = self.in_flight.lock().map(|m| m.keys().copied().collect()).unwrap_or_default();
            tracing::warn!(runner = self.id(), tasks = ?left, "shutdown timeout: these resume when the runner comes back");
        }
        heartbeat_stop.cancel();
    }

    async fn handle(&self, delivery: Delivery) {
        let message = match QueueMessage::from_bytes(&delivery.payload) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(%err, "unreadable message: dead-lettering it");
                delivery.acker.reject(false).await;
                return;
            }
        };
        match message {
            QueueMessage::Run { task_id } => {
                let token = self.track(task_id);
                match self.claim(task_id).await {
                    Ok(Some(task)) => {
                        delivery.acker.ack().await;
                        self.spawn_execute(task, token);
                    }
                    Ok(None) => {
                        self.untrack(task_id);
                        delivery.acker.ack().await;
                    }
                    Err(err) => {
                        self.untrack(task_id);
                        tracing::warn!(task_id, %err, "cannot claim now: returning the message");
                        tokio::time::sleep(RETRY_PAUSE).await;
                        delivery.acker.reject(true).await;
                    }
                }
            }
            QueueMessage::Cancel { task_id } => {
                self.cancel_local(task_id);
                delivery.acker.ack().await;
            }
        }
    }

    /// `Some(task)` when this delivery won the task; `None` when there is nothing to do
    /// (duplicate delivery, cancelled before start, deleted, or scheduled for later: the relay
    /// publishes it again when it is due).
    async fn claim(&self, task_id: i32) -> Result<Option<task::Model>, DbErr> {
        let epoch = self.ctx.lease.epoch();
        let claimed = self.claims.run(task_id).await??;
        if let Some(task) = &claimed {
            self.ctx.note_claim(task.id, epoch);
        }
        Ok(claimed)
    }

    /// Records the task's outcome (with others finishing at the same time: `batch`).
    async fn finish(&self, task: &task::Model, outcome: &Outcome) -> Result<task::Model, TransitionError> {
        self.finishes
            .run((task.clone(), outcome.clone()))
            .await
            .unwrap_or_else(|stopped| Err(TransitionError::Db(stopped.into())))
    }

    /// The task's token, shared by every delivery of it being handled here.
    fn track(&self, task_id: i32) -> CancellationToken {
        let Ok(mut in_flight) = self.in_flight.lock() else {
            return CancellationToken::new();
        };
        let entry = in_flight.entry(task_id).or_insert_with(|| (CancellationToken::new(), 0));
        entry.1 += 1;
        entry.0.clone()
    }

    /// One delivery of the task is done with its token.
    fn untrack(&self, task_id: i32) {
        if let Ok(mut in_flight) = self.in_flight.lock()
            && let Some(entry) = in_flight.get_mut(&task_id)
        {
            entry.1 -= 1;
            if entry.1 == 0 {
                in_flight.remove(&task_id);
            }
        }
    }

    fn cancel_local(&self, task_id: i32) {
        if let Some((token, _)) = self.in_flight.lock().ok().and_then(|m| m.get(&task_id).cloned()) {
            tracing::info!(task_id, "cancelling a running task");
            token.cancel();
        }
    }

    fn spawn_execute(&self, task: task::Model, token: CancellationToken) {
        let this = self.clone();
        let span = tracing::info_span!(
            "task",
            id = task.id,
            attempt = task.attempt,
            operation = %task.operation,
            workload = %task.target_id,
            runner = %self.id(),
        );
        self.operations.spawn(tracing::Instrument::instrument(
            async move {
                if task.cancel_requested {
                    token.cancel();
                }
                let started = tokio::time::Instant::now();
                let outcome = loop {
                    match operations::perform(&this.ctx, &task, &token).await {
                        Ok(outcome) => break Some(outcome),
                        Err(OpError::StandDown) => break None,
                        Err(err) if started.elapsed() > GIVE_UP_AFTER => {
                            tracing::error!(task = task.id, %err, "operation keeps failing; giving up");
                            break Some(Outcome::Internal { runner: this.id().to_owned() });
                        }
                        Err(err) => {
                            tracing::warn!(task = task.id, %err, "operation hit a database error; retrying");
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                    }
                };
                while let Some(outcome) = &outcome {
                    match this.finish(&task, outcome).await {
                        Ok(_) => {
                            this.events.changed(task.id);
                            break;
                        }
                        Err(err @ (TransitionError::Stale { .. } | TransitionError::Illegal { .. })) => {
                            tracing::warn!(task = task.id, %err, "outcome not recorded: the attempt was fenced out");
                            break;
                        }
                        Err(TransitionError::Db(err)) => {
                            tracing::warn!(task = task.id, %err, "cannot record the outcome yet; retrying");
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                    }
                }
                this.untrack(task.id);
                this.ctx.forget_claim(task.id);
            },
            span,
        ));
    }

    async fn heartbeat(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.heartbeat_interval) => {}
            }
            if let Err(err) = runners::heartbeat(&self.ctx.db, self.id()).await {
                tracing::warn!(%err, "heartbeat failed");
                continue;
            }
            self.ctx.lease.renew();
            match tasks::running_on(&self.ctx.db, self.id()).await {
                Ok(running) => running.iter().filter(|t| t.cancel_requested).for_each(|t| self.cancel_local(t.id)),
                Err(err) => tracing::warn!(%err, "cannot read cancel requests"),
            }
        }
    }
}

/// A round of outcomes, recorded by one statement. When the database refuses it, each is
/// recorded on its own, so that each gets its own answer; any other failure (the connection)
/// answers them all with it.
async fn finish_round(
    db: &DatabaseConnection,
    round: &[(task::Model, Outcome)],
) -> Vec<Result<task::Model, TransitionError>> {
    match tasks::finish(db, round).await {
        Ok(answers) => return answers,
        Err(err) if !crate::batch::refused(&err) => {
            return crate::batch::all_failed(&err, round.len());
        }
        Err(_) => {}
    }
    let mut answers = Vec::with_capacity(round.len());
    for (task, outcome) in round {
        answers.push(tasks::transition(db, task, TaskEvent::Finish(outcome.clone())).await);
    }
    answers
}
