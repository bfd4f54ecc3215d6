//! What a process keeps in memory of what the database holds, until it hears the row changed.
//!
//! A read that races a change must not put back what the change replaced: every invalidation is
//! numbered (an epoch), a reader notes the epoch before its database read, and its value is kept
//! only if no invalidation of that key (and no `clear`, which invalidates everything) came
//! after that epoch. Bounded: past its capacity, the oldest go first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

/// How many recent invalidations are remembered; a read that started before the oldest of them
/// is not kept (it might have missed one).
const REMEMBERED: usize = 4_096;

pub struct Kept<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
}

struct Inner<K, V> {
    values: HashMap<K, V>,
    /// Insertion order, for eviction (keys may be stale: removed values are skipped).
    order: VecDeque<K>,
    epoch: u64,
    /// (epoch, key) of the latest invalidations.
    recent: VecDeque<(u64, K)>,
    /// Reads that started before this epoch are not kept (a clear, or a forgotten invalidation).
    floor: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Kept<K, V> {
    pub fn new(capacity: usize) -> Self {
        let inner =
            Inner { values: HashMap::new(), order: VecDeque::new(), epoch: 0, recent: VecDeque::new(), floor: 0 };
        Self { inner: Mutex::new(inner), capacity }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.inner.lock().ok()?.values.get(key).cloned()
    }

    /// The epoch to note before a database read (see `offer`).
    pub fn epoch(&self) -> u64 {
        self.inner.lock().map(|i| i.epoch).unwrap_or(u64::MAX)
    }

    /// Keeps `value`, read from the database after `epoch`, unless `key` may have changed since.
    pub fn offer(&self, key: K, value: V, epoch: u64) {
        let Ok(mut inner) = self.inner.lock() else { return };
        if epoch < inner.floor || inner.recent.iter().any(|(at, k)| *k == key && *at > epoch) {
            return;
        }
        if inner.values.insert(key.clone(), value).is_none() {
            inner.order.push_back(key);
        }
        while inner.values.len() > self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.values.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Forgets `key`, at once.
    pub fn invalidate(&self, key: &K) {
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.epoch += 1;
        let epoch = inner.epoch;
        inner.values.remove(key);
        inner.recent.push_back((epoch, key.clone()));
        if inner.recent.len() > REMEMBERED
            && let Some((forgotten, _)) = inner.recent.pop_front()
        {
            inner.floor = inner.floor.max(forgotten);
        }
    }

    /// Forgets everything (changes may have been missed).
    pub fn clear(&self) {
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.epoch += 1;
        inner.floor = inner.epoch;
        inner.values.clear();
        inner.order.clear();
        inner.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_keeps_a_value_invalidated_after_its_read_began() {
        let kept = Kept::new(10);
        let read_at = kept.epoch();
        kept.invalidate(&2);
        kept.offer(2, "old", read_at);
        assert!(kept.get(&2).is_none(), "changed while it was being read: not put back");
        kept.offer(2, "new", kept.epoch());
        assert_eq!(kept.get(&2), Some("new"), "read after the change's signal: kept");
        kept.invalidate(&2);
        assert!(kept.get(&2).is_none(), "a change removes it");
        let read_at = kept.epoch();
        kept.clear();
        kept.offer(3, "old", read_at);
        assert!(kept.get(&3).is_none(), "a clear invalidates every read begun before it");
    }

    #[test]
    fn a_read_older_than_every_remembered_invalidation_is_not_kept() {
        let kept = Kept::new(10);
        let read_at = kept.epoch();
        for key in 0..=(REMEMBERED as i32) {
            kept.invalidate(&(1_000_000 + key));
        }
        kept.offer(7, (), read_at);
        assert!(kept.get(&7).is_none(), "it may have missed an invalidation that is forgotten");
        kept.offer(7, (), kept.epoch());
        assert!(kept.get(&7).is_some());
    }

    #[test]
    fn keeps_at_most_its_capacity_the_oldest_going_first() {
        let kept = Kept::new(2);
        for key in 1..=3 {
            kept.offer(key, key, kept.epoch());
        }
        assert_eq!((kept.get(&1), kept.get(&2), kept.get(&3)), (None, Some(2), Some(3)));
    }
}
