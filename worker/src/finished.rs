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
//! A read that races a deletion must not put the deleted task back: every invalidation is
//! numbered (an epoch), a reader notes the epoch before its database read, and its row is kept
//! only if no invalidation of that task (and no `Resync`, which invalidates everything) came
//! after that epoch. Bounded: past `CAPACITY` tasks, the oldest go first.

use crate::events::{TaskEvents, TaskSignal};
use entity::task;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// How many finished tasks a process keeps.
pub const CAPACITY: usize = 100_000;
/// How many recent invalidations are remembered; a read that started before the oldest of them
/// is not kept (it might have missed one).
const REMEMBERED: usize = 4_096;

/// Whether what is kept may be used now (a process's lease; see `gate`).
type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone, Default)]
pub struct FinishedTasks {
    inner: Arc<Mutex<Inner>>,
    gate: Arc<std::sync::OnceLock<Gate>>,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<i32, task::Model>,
    /// Insertion order, for eviction (ids may be stale: removed tasks are skipped).
    order: VecDeque<i32>,
    epoch: u64,
    /// (epoch, task id) of the latest invalidations.
    recent: VecDeque<(u64, i32)>,
    /// Reads that started before this epoch are not kept (a resync, or a forgotten invalidation).
    floor: u64,
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
        self.inner.lock().ok()?.tasks.get(&id).cloned()
    }

    /// The epoch to note before a database read (see `offer`).
    pub fn epoch(&self) -> u64 {
        self.inner.lock().map(|i| i.epoch).unwrap_or(u64::MAX)
    }

    /// Keeps `task`, read from the database after `epoch`, if it is final and nothing may have
    /// changed it since.
    pub fn offer(&self, task: &task::Model, epoch: u64) {
        if !task.state.is_final() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        if epoch < inner.floor || inner.recent.iter().any(|(at, id)| *id == task.id && *at > epoch) {
            return;
        }
        if inner.tasks.insert(task.id, task.clone()).is_none() {
            inner.order.push_back(task.id);
        }
        while inner.tasks.len() > CAPACITY {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.tasks.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Forgets task `id` (it was deleted), at once.
    pub fn invalidate(&self, id: i32) {
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.epoch += 1;
        let epoch = inner.epoch;
        inner.tasks.remove(&id);
        inner.recent.push_back((epoch, id));
        if inner.recent.len() > REMEMBERED
            && let Some((forgotten, _)) = inner.recent.pop_front()
        {
            inner.floor = inner.floor.max(forgotten);
        }
    }

    /// Forgets every task (notices may have been missed).
    pub fn clear(&self) {
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.epoch += 1;
        inner.floor = inner.epoch;
        inner.tasks.clear();
        inner.order.clear();
        inner.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::TaskState;

    fn task(id: i32, state: TaskState) -> task::Model {
        let now = chrono::Utc::now();
        task::Model {
            id,
            tenant_id: 1,
            user_id: 1,
            operation: entity::Operation::StopWorkload,
            target_id: "w".into(),
            state,
            attempt: 1,
            route: None,
            runner_id: None,
            cancel_requested: false,
            cancel_requested_by: None,
            cancel_requested_at: None,
            params: None,
            success: Some(true),
            outcome: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: Some(now),
            published_at: None,
            not_before: None,
        }
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

    #[test]
    fn a_read_older_than_every_remembered_invalidation_is_not_kept() {
        let cache = FinishedTasks::default();
        let read_at = cache.epoch();
        for id in 0..=(REMEMBERED as i32) {
            cache.invalidate(1_000_000 + id);
        }
        cache.offer(&task(7, TaskState::Finished), read_at);
        assert!(cache.get(7).is_none(), "it may have missed an invalidation that is forgotten");
        cache.offer(&task(7, TaskState::Finished), cache.epoch());
        assert!(cache.get(7).is_some());
    }
}
