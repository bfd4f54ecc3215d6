//! Credentials checked once, kept in memory: an API token's caller (`bearer`) and a logon
//! session with its user (`veeam::auth`), so that a poll needs no database read to know who
//! asks. Kept only on PostgreSQL, where the database tells every process at commit when a
//! credential stops being valid (`NOTIFY taskq_auth_changed`: a token revoked, a logon session
//! deleted or expired, a user or tenant changed; see the migration that adds the triggers), and
//! only while this process is listening: when the listener is down, everything is forgotten
//! and every request reads the database until it listens again. On SQLite (one `api` process,
//! but `api token revoke` writes the file from another), nothing is kept.
//!
//! A read that races an invalidation must not put the old credential back: invalidations are
//! numbered, and a credential read from the database is kept only if none came after the read
//! began. A logon session's idle timer is still written at most once a second
//! (`logons::TOUCH_EVERY`): a kept session older than that is read (and touched) again.

use crate::bearer::TokenCaller;
use entity::{logon_session, user};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use worker::events::Notice;

/// The PostgreSQL channel the credential triggers notify.
pub const CHANNEL: &str = "taskq_auth_changed";
/// At most this many of each kind are kept (then they are all forgotten and kept again).
const CAPACITY: usize = 100_000;

#[derive(Clone, Default)]
pub struct Credentials {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Listening: what is kept is kept coherent. Never set on SQLite.
    listening: AtomicBool,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    epoch: u64,
    tokens: HashMap<String, TokenCaller>,
    logons: HashMap<String, (logon_session::Model, user::Model)>,
}

impl Credentials {
    /// Credentials kept coherent by the database's notifications (PostgreSQL), until
    /// `shutdown`; on SQLite, a cache that keeps nothing.
    pub fn following(db: &sea_orm::DatabaseConnection, shutdown: CancellationToken) -> Self {
        let credentials = Self::default();
        let this = credentials.clone();
        worker::events::follow(db, CHANNEL, shutdown, move |notice| match notice {
            Notice::Listening => {
                this.forget_all();
                this.inner.listening.store(true, Ordering::SeqCst);
            }
            Notice::Lost => {
                this.inner.listening.store(false, Ordering::SeqCst);
                this.forget_all();
            }
            Notice::Payload(payload) => match payload.split_once(':') {
                Some(("token", hash)) => this.forget(|kept| {
                    kept.tokens.remove(hash);
                }),
                Some(("logon", hash)) => this.forget(|kept| {
                    kept.logons.remove(hash);
                }),
                _ => this.forget_all(),
            },
        });
        credentials
    }

    fn listening(&self) -> bool {
        self.inner.listening.load(Ordering::SeqCst)
    }

    /// The epoch to note before reading a credential from the database (see `keep_*`).
    pub fn epoch(&self) -> u64 {
        self.inner.kept.lock().map(|k| k.epoch).unwrap_or(u64::MAX)
    }

    pub fn token(&self, hash: &str) -> Option<TokenCaller> {
        if !self.listening() {
            return None;
        }
        self.inner.kept.lock().ok()?.tokens.get(hash).cloned()
    }

    pub fn logon(&self, hash: &str) -> Option<(logon_session::Model, user::Model)> {
        if !self.listening() {
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

    /// Forgets a logon session this process deleted (at once here; the others hear it from the
    /// database).
    pub fn forget_logon(&self, hash: &str) {
        self.forget(|kept| {
            kept.logons.remove(hash);
        });
    }

    fn keep(&self, epoch: u64, put: impl FnOnce(&mut Kept)) {
        if !self.listening() {
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
        self.forget(|kept| {
            kept.tokens.clear();
            kept.logons.clear();
        });
    }
}
