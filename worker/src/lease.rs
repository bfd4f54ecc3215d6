//! The runner's lease: the right to act on its tasks, renewed by every successful heartbeat.
//!
//! The sweeper (any process) finishes the tasks of a runner whose heartbeat is older than the
//! runner deadline. A runner therefore treats its lease as held only for half that deadline after
//! its last successful heartbeat, measured on its own monotonic clock (which keeps running while
//! the process is paused). Before every side effect — spawning, signalling, recording a stop — an
//! operation calls `Ctx::guard`: with the lease held that is one clock read; with the lease
//! lapsed (a database outage, a paused process) the operation stands down until a heartbeat
//! succeeds again, then goes on only if the task is still its own (Running, same attempt, this
//! runner). So the sweeper's verdict and a late write of the runner can never both stand.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub struct Lease {
    renewed: Mutex<Instant>,
    valid_for: Duration,
    notify: Notify,
}

impl Lease {
    /// A lease renewed now, held for `valid_for` after each renewal.
    pub fn new(valid_for: Duration) -> Self {
        Self { renewed: Mutex::new(Instant::now()), valid_for, notify: Notify::new() }
    }

    pub fn renew(&self) {
        if let Ok(mut renewed) = self.renewed.lock() {
            *renewed = Instant::now();
        }
        self.notify.notify_waiters();
    }

    pub fn held(&self) -> bool {
        self.renewed.lock().map(|renewed| renewed.elapsed() < self.valid_for).unwrap_or(false)
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
    }
}
