//! The runner's lease: the right to act on its tasks, renewed by every successful heartbeat.
//!
//! The sweeper (any process) finishes the tasks of a runner whose heartbeat is older than the
//! runner deadline. A runner therefore treats its lease as held only for half that deadline after
//! its last successful heartbeat, measured on its own monotonic clock (which keeps running while
//! the process is paused). A renewal after a lapse starts a new *epoch*: whatever the runner
//! held in an earlier epoch may have been taken from it meanwhile.
//!
//! Before every side effect — spawning, signalling, recording a stop — an operation calls
//! `Ctx::guard`: when the lease is held and its task was claimed (or last verified) in the
//! current epoch, that is a clock read and a map lookup. Otherwise (a database outage, a paused
//! process) the operation stands down until a heartbeat succeeds, then goes on only if the
//! database says the task is still its own (Running, same attempt, this runner). So the
//! sweeper's verdict and a late write of the runner can never both stand.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub struct Lease {
    /// When it was last renewed, and the epoch.
    renewed: Mutex<(Instant, u64)>,
    valid_for: Duration,
    notify: Notify,
}

impl Lease {
    /// A lease renewed now, held for `valid_for` after each renewal.
    pub fn new(valid_for: Duration) -> Self {
        Self { renewed: Mutex::new((Instant::now(), 0)), valid_for, notify: Notify::new() }
    }

    pub fn renew(&self) {
        if let Ok(mut renewed) = self.renewed.lock() {
            let epoch = if renewed.0.elapsed() < self.valid_for { renewed.1 } else { renewed.1 + 1 };
            *renewed = (Instant::now(), epoch);
        }
        self.notify.notify_waiters();
    }

    pub fn held(&self) -> bool {
        self.renewed.lock().map(|renewed| renewed.0.elapsed() < self.valid_for).unwrap_or(false)
    }

    /// The current epoch: it changes with each renewal that follows a lapse.
    pub fn epoch(&self) -> u64 {
        self.renewed.lock().map(|renewed| renewed.1).unwrap_or(u64::MAX)
    }

    /// Returns once the lease is held again.
    pub async fn renewed(&self) {
        loop {
            let notified = self.notify.notified();
            if self.held() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lease_lapses_after_its_validity_and_is_held_again_after_a_renewal() {
        let lease = std::sync::Arc::new(Lease::new(Duration::from_millis(50)));
        assert!(lease.held());
        lease.renew();
        assert_eq!(lease.epoch(), 0, "a renewal in time keeps the epoch");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!lease.held(), "lapsed");
        let waiter = tokio::spawn({
            let lease = lease.clone();
            async move { lease.renewed().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "waits while lapsed");
        lease.renew();
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("woken").expect("join");
        assert_eq!(lease.epoch(), 1, "a renewal after a lapse starts a new epoch");
    }
}
