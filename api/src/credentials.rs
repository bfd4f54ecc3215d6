//! Credentials checked once, kept in memory: an API token's caller (`bearer`) and a logon
//! session with its user (`veeam::auth`), so that a poll needs no database read to know who
//! asks. On PostgreSQL the database tells every process at commit when a credential stops
//! being valid (`NOTIFY taskq_auth_changed`: a token revoked, a logon session deleted, a user or
//! tenant changed; see the migration that adds the triggers). On SQLite (one `api` process, but
//! `api token revoke` writes the file from another) the process reads the last sync number
//! every 25 ms instead and forgets everything when it has moved.
//!
//! What is kept is used only while this process listens and holds its lease, renewed every
//! second, and granted only while it has handled every revocation settled so far: a revocation
//! returns once every process has heard of it (`entity::store::revocations`), so a revoked
//! token or a deleted logon session is refused at once by every process. When the listener is
//! down, everything is forgotten and every request reads the database until it listens again;
//! a process that stalls loses its lease and reads the database until it has caught up.
//!
//! A read that races an invalidation must not put the old credential back: invalidations are
//! numbered, and a credential read from the database is kept only if none came after the read
//! began. A logon session's idle timer is still written at most once a second
//! (`logons::TOUCH_EVERY`): a kept session older than that is read (and touched) again.

use crate::bearer::TokenCaller;
use entity::store::revocations::{self, CHANNEL, LEASE};
use entity::{logon_session, user};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use worker::events::{Notice, Subscriptions};
/// At most this many of each kind are kept (then they are all forgotten and kept again).
const CAPACITY: usize = 100_000;

#[derive(Clone, Default)]
pub struct Credentials {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The finished tasks this process keeps: forgotten, and gated, with the credentials.
    finished: worker::finished::FinishedTasks,
    /// This process's lease (`api_processes.id`).
    id: String,
    /// Listening (on SQLite: reading the syncs): what is kept is kept coherent.
    listening: AtomicBool,
    /// The last sync handled: every revocation settled up to it is forgotten here.
    synced: AtomicI64,
    /// Until when the lease granted last holds (`None`: no lease).
    lease_until: Mutex<Option<Instant>>,
    /// Listening again: the last sync is to be announced, to learn that it is handled.
    announce: AtomicBool,
    /// Wakes the lease keeper (a sync heard, listening again).
    wake: Notify,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    epoch: u64,
    tokens: HashMap<String, TokenCaller>,
    logons: HashMap<String, (logon_session::Model, user::Model)>,
}

impl Credentials {
    /// Credentials kept coherent by the database's notifications (PostgreSQL) or by reading
    /// its syncs (SQLite), until `shutdown`.
    ///
    /// The finished tasks this process keeps (`finished`) are kept coherent the same way: a
    /// deleted one is forgotten when its notice comes, and they are used only within the lease.
    pub fn following(
        db: &sea_orm::DatabaseConnection,
        finished: &worker::finished::FinishedTasks,
        subscriptions: &mut Subscriptions,
        shutdown: CancellationToken,
    ) -> Self {
        let inner = Inner { id: uuid::Uuid::new_v4().to_string(), finished: finished.clone(), ..Default::default() };
        let credentials = Self { inner: Arc::new(inner) };
        let this = credentials.clone();
        let followed = subscriptions.on(CHANNEL, move |notice| match notice {
            Notice::Listening => {
                this.forget_all();
                this.inner.listening.store(true, Ordering::SeqCst);
                this.inner.announce.store(true, Ordering::SeqCst);
                this.inner.wake.notify_one();
            }
            Notice::Lost => {
                this.inner.listening.store(false, Ordering::SeqCst);
                if let Ok(mut lease) = this.inner.lease_until.lock() {
                    *lease = None;
                }
                this.forget_all();
            }
            Notice::Payload { payload, .. } => match payload.split_once(':') {
                Some(("task", id)) => match id.parse() {
                    Ok(id) => this.inner.finished.invalidate(id),
                    Err(_) => this.inner.finished.clear(),
                },
                Some(("sync", n)) => {
                    // Every notification committed before it has been handled (in order).
                    this.inner.synced.fetch_max(n.parse().unwrap_or(0), Ordering::SeqCst);
                    this.inner.wake.notify_one();
                }
                Some(("token", hash)) => this.forget(|kept| {
                    kept.tokens.remove(hash);
                }),
                Some(("logon", hash)) => this.forget(|kept| {
                    kept.logons.remove(hash);
                }),
                _ => this.forget_all(),
            },
        });
        let gate = credentials.clone();
        finished.gate(move || gate.usable());
        if followed.is_some() {
            tokio::spawn(credentials.clone().keep_lease(db.clone(), shutdown));
        } else {
            tokio::spawn(credentials.clone().poll_syncs(db.clone(), shutdown));
        }
        credentials
    }

    /// On SQLite (no notifications): reads the last sync every `SQLITE_POLL`, forgets
    /// everything kept when it has moved, and renews the lease every `LEASE / 3` and at once
    /// after forgetting, until `shutdown`.
    async fn poll_syncs(self, db: sea_orm::DatabaseConnection, shutdown: CancellationToken) {
        let inner = &self.inner;
        inner.listening.store(true, Ordering::SeqCst);
        let mut renewed: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(revocations::SQLITE_POLL) => {}
            }
            let last = match revocations::last_sync(&db).await {
                Ok(last) => last,
                Err(err) => {
                    tracing::warn!(%err, "could not read the last credential sync");
                    continue;
                }
            };
            // Read after the revocations it numbers committed; forgotten after: what is kept
            // from now on was read after them (or is refused by the epoch).
            let moved = last > inner.synced.load(Ordering::SeqCst);
            if moved {
                self.forget_all();
                inner.synced.store(last, Ordering::SeqCst);
            }
            if moved || renewed.is_none_or(|at| at.elapsed() >= LEASE / 3) {
                self.renew(&db).await;
                renewed = Some(Instant::now());
            }
        }
        self.give_up(&db).await;
    }

    /// Asks for the lease again, with the last sync handled.
    async fn renew(&self, db: &sea_orm::DatabaseConnection) {
        let inner = &self.inner;
        let asked = Instant::now();
        match revocations::hold(db, &inner.id, inner.synced.load(Ordering::SeqCst)).await {
            Ok(true) => {
                if let Ok(mut lease) = inner.lease_until.lock() {
                    *lease = Some(asked + LEASE);
                }
            }
            // A revocation this process has not handled yet is being settled.
            Ok(false) => {}
            Err(err) => tracing::warn!(%err, "could not renew the credential lease"),
        }
    }

    /// Stops using what is kept, and releases the lease (shutting down).
    async fn give_up(&self, db: &sea_orm::DatabaseConnection) {
        if let Ok(mut lease) = self.inner.lease_until.lock() {
            *lease = None;
        }
        if let Err(err) = revocations::release(db, &self.inner.id).await {
            tracing::warn!(%err, "could not release the credential lease");
        }
    }

    /// Renews this process's lease every `LEASE / 3`, and at once when a sync is heard (which
    /// is how a settling revocation learns it was heard here), until `shutdown`.
    async fn keep_lease(self, db: sea_orm::DatabaseConnection, shutdown: CancellationToken) {
        let inner = &self.inner;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(LEASE / 3) => {}
            }
            if !inner.listening.load(Ordering::SeqCst) {
                continue;
            }
            if inner.announce.swap(false, Ordering::SeqCst)
                && let Err(err) = revocations::announce(&db).await
            {
                tracing::warn!(%err, "could not announce the last credential sync");
                inner.announce.store(true, Ordering::SeqCst);
            }
            self.renew(&db).await;
        }
        self.give_up(&db).await;
    }

    /// What is kept may be used: listening, and within the lease.
    fn usable(&self) -> bool {
        self.inner.listening.load(Ordering::SeqCst)
            && self.inner.lease_until.lock().ok().and_then(|lease| *lease).is_some_and(|until| Instant::now() < until)
    }

    /// The epoch to note before reading a credential from the database (see `keep_*`).
    pub fn epoch(&self) -> u64 {
        self.inner.kept.lock().map(|k| k.epoch).unwrap_or(u64::MAX)
    }

    pub fn token(&self, hash: &str) -> Option<TokenCaller> {
        if !self.usable() {
            return None;
        }
        self.inner.kept.lock().ok()?.tokens.get(hash).cloned()
    }

    pub fn logon(&self, hash: &str) -> Option<(logon_session::Model, user::Model)> {
        if !self.usable() {
            return None;
        }
        self.inner.kept.lock().ok()?.logons.get(hash).cloned()
    }

    /// Keeps a token's caller read from the database after `epoch`, unless something was
    /// invalidated since.
    pub fn keep_token(&self, hash: &str, caller: &TokenCaller, epoch: u64) {
        self.keep(epoch, |kept| {
            if kept.tokens.len() >= CAPACITY {
                kept.tokens.clear();
            }
            kept.tokens.insert(hash.to_owned(), caller.clone());
        });
    }

    pub fn keep_logon(&self, hash: &str, session: &logon_session::Model, user: &user::Model, epoch: u64) {
        self.keep(epoch, |kept| {
            if kept.logons.len() >= CAPACITY {
                kept.logons.clear();
            }
            kept.logons.insert(hash.to_owned(), (session.clone(), user.clone()));
        });
    }

    fn keep(&self, epoch: u64, put: impl FnOnce(&mut Kept)) {
        if !self.inner.listening.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(mut kept) = self.inner.kept.lock()
            && kept.epoch == epoch
        {
            put(&mut kept);
        }
    }

    fn forget(&self, remove: impl FnOnce(&mut Kept)) {
        if let Ok(mut kept) = self.inner.kept.lock() {
            kept.epoch += 1;
            remove(&mut kept);
        }
    }

    fn forget_all(&self) {
        self.inner.finished.clear();
        self.forget(|kept| {
            kept.tokens.clear();
            kept.logons.clear();
        });
    }
}
