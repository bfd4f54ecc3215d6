//! Finished tasks, kept in memory: a finished (or cancelled) task never changes again, so a
//! poll of one needs no database read. The one thing that can still happen to it is its
//! deletion (Veeam's `DELETE` of a finished task), which every process hears of through the
//! task events (`events`: the deleting process signals it, and on PostgreSQL a trigger
//! notifies every process at commit).
//!
//! A deletion returns only once every `api` process has forgotten the task: the deleting
//! process forgets it at once, and on PostgreSQL the others hear it in order with the
//! credential notices, whose syncs and leases make a deletion wait for them (see
//! `entity::store::revocations`); a process without its lease reads the database (`gate`).
//!
//! What is kept follows `kept::Kept`: a read racing a deletion cannot put the task back.

use crate::events::{TaskEvents, TaskSignal};
use crate::kept::Kept;
use entity::task;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// How many finished tasks a process keeps.
pub const CAPACITY: usize = 100_000;

/// Whether what is kept may be used now (a process's lease; see `gate`).
type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
pub struct FinishedTasks {
    kept: Arc<Kept<i32, task::Model>>,
    gate: Arc<std::sync::OnceLock<Gate>>,
}

impl Default for FinishedTasks {
    fn default() -> Self {
        Self { kept: Arc::new(Kept::new(CAPACITY)), gate: Arc::default() }
    }
}

impl FinishedTasks {
    /// A cache that follows `events` until `shutdown`.
    pub fn following(events: &TaskEvents, shutdown: CancellationToken) -> Self {
        let cache = Self::default();
        let (mut signals, this) = (events.subscribe(), cache.clone());
        tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    signal = signals.recv() => signal,
                };
                match signal {
                    Ok(TaskSignal::Changed(id)) => this.invalidate(id),
                    Ok(TaskSignal::Resync) | Err(RecvError::Lagged(_)) => this.clear(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        cache
    }

    /// Uses what is kept only while `usable` holds (on PostgreSQL: while the process holds its
    /// lease, so that a deletion settled elsewhere is never missed); without a gate, always.
    pub fn gate(&self, usable: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.gate.set(Arc::new(usable));
    }

    pub fn get(&self, id: i32) -> Option<task::Model> {
        if self.gate.get().is_some_and(|usable| !usable()) {
            return None;
        }
        self.kept.get(&id)
    }

    /// The epoch to note before a database read (see `offer`).
    pub fn epoch(&self) -> u64 {
        self.kept.epoch()
    }

    /// Keeps `task`, read from the database after `epoch`, if it is final and nothing may have
    /// changed it since.
    pub fn offer(&self, task: &task::Model, epoch: u64) {
        if task.state.is_final() {
            self.kept.offer(task.id, task.clone(), epoch);
        }
    }

    /// Forgets task `id` (it was deleted), at once.
    pub fn invalidate(&self, id: i32) {
        self.kept.invalidate(&id);
    }

    /// Forgets every task (notices may have been missed).
    pub fn clear(&self) {
        self.kept.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::TaskState;

    fn task(id: i32, state: TaskState) -> task::Model {
        let now = chrono::Utc::now();
        let queued = task::Model::queued(id, entity::Operation::StopWorkload, "w", now);
        task::Model { state, attempt: 1, success: Some(true), finished_at: Some(now), ..queued }
    }

    #[test]
    fn keeps_only_final_tasks_and_never_one_invalidated_after_its_read_began() {
        let cache = FinishedTasks::default();
        cache.offer(&task(1, TaskState::Running), cache.epoch());
        assert!(cache.get(1).is_none(), "a running task changes: not kept");
        let read_at = cache.epoch();
        cache.invalidate(2);
        cache.offer(&task(2, TaskState::Finished), read_at);
        assert!(cache.get(2).is_none(), "deleted while it was being read: not put back");
        cache.offer(&task(2, TaskState::Finished), cache.epoch());
        assert!(cache.get(2).is_some(), "read after the deletion's signal: kept");
        cache.invalidate(2);
        assert!(cache.get(2).is_none(), "a deletion removes it");
        let read_at = cache.epoch();
        cache.clear();
        cache.offer(&task(3, TaskState::Finished), read_at);
        assert!(cache.get(3).is_none(), "a resync invalidates every read begun before it");
    }
}
