//! Sandbox and session views kept in memory, so that polling a sandbox (Daytona) or a session
//! (Vercel) needs no database read in the common case.
//!
//! A view is kept under its spec and forgotten when the database announces a change of that
//! spec (migration 21: a change to the spec, a workload of it, or a task aimed at either).
//! Hearing of changes is not enough for "a poll never answers a state older than one the client
//! already saw", since a client may have seen the change from another process (or from this
//! one's database read) before this process hears of it. So a kept view is answered only after
//! a *barrier*: a round begun after the request arrived, which returns once every change
//! committed before it began has been applied here:
//! - PostgreSQL: the connection that hears the changes catches up (`Follower::sync`): every
//!   change committed before the barrier has been applied when it answers;
//! - SQLite (one writer at a time): it reads the specs whose `view_versions` row passed the last
//!   version it saw, and forgets them.
//!
//! One round serves every request that arrived before it began, so a busy process pays one
//! round trip per round, not per request. When a round fails or takes too long (the database is
//! unreachable, the listener is reconnecting), the request reads the database as before.
//! A view that depends on time (a task scheduled for later comes due) is kept only until then.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use worker::events::{Notice, Subscriptions};
use worker::kept::Kept;

/// The channel the triggers of migration 21 notify (PostgreSQL).
pub const CHANNEL: &str = "taskq_view_changed";
/// How many views a process keeps (a sandbox's is its spec, its progress and its JSON, a few
/// kilobytes: this bounds them to tens of megabytes; the oldest kept go first).
const CAPACITY: usize = 20_000;
/// How long a request waits for its barrier before it reads the database instead.
const WAIT: Duration = Duration::from_millis(500);
/// How long a round may take.
const ROUND: Duration = Duration::from_millis(250);

type View = Arc<dyn Any + Send + Sync>;

/// A 200 with a view's JSON, rendered when it was kept.
pub fn json_answer(body: actix_web::web::Bytes) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().content_type(actix_web::http::header::ContentType::json()).body(body)
}

#[derive(Clone)]
pub struct Views {
    inner: Arc<Inner>,
}

struct Inner {
    /// Views by spec id.
    kept: Kept<String, View>,
    /// The spec of each workload seen (a workload never changes spec).
    specs: Kept<String, String>,
    rounds: Mutex<Rounds>,
    wake: Notify,
    /// The last round done, and whether it succeeded.
    done: watch::Sender<(u64, bool)>,
}

#[derive(Default)]
struct Rounds {
    started: u64,
    wanted: u64,
}

impl Views {
    /// Views that follow the database's changes (once `subscriptions` are followed) until
    /// `shutdown`.
    pub fn following(db: &DatabaseConnection, subscriptions: &mut Subscriptions, shutdown: CancellationToken) -> Self {
        let views = Self {
            inner: Arc::new(Inner {
                kept: Kept::new(CAPACITY),
                specs: Kept::new(CAPACITY),
                rounds: Mutex::default(),
                wake: Notify::new(),
                done: watch::channel((0, false)).0,
            }),
        };
        let this = views.clone();
        let follower = subscriptions.on(CHANNEL, move |notice| match notice {
            Notice::Payload { payload, .. } => this.inner.kept.invalidate(&payload.to_owned()),
            Notice::Listening | Notice::Lost => this.inner.kept.clear(),
        });
        let (this, db) = (views.clone(), db.clone());
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                let round = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    round = this.next_round() => round,
                };
                // Bounded: a database that hangs instead of failing must not hold every later
                // round (and so every later request's half second) behind this one.
                let sync = async {
                    match &follower {
                        Some(follower) => follower.sync().await,
                        None => this.read_versions(&db, &mut seen).await,
                    }
                };
                let ok = tokio::time::timeout(ROUND, sync).await.unwrap_or(false);
                this.inner.done.send_replace((round, ok));
            }
        });
        views
    }

    /// The epoch to note before the database read whose view is offered.
    pub fn epoch(&self) -> u64 {
        self.inner.kept.epoch()
    }

    /// The view kept for `spec_id`, as of after every change committed before this call began;
    /// none when there is none, or the barrier could not be passed.
    pub async fn fresh<T: Any + Send + Sync>(&self, spec_id: &str) -> Option<Arc<T>> {
        let key = spec_id.to_owned();
        self.inner.kept.get(&key)?;
        if !self.barrier().await {
            return None;
        }
        self.inner.kept.get(&key)?.downcast().ok()
    }

    /// Keeps `view` of `spec_id`, read from the database after `epoch`.
    pub fn offer<T: Any + Send + Sync>(&self, spec_id: &str, view: T, epoch: u64) {
        self.inner.kept.offer(spec_id.to_owned(), Arc::new(view), epoch);
    }

    /// The spec of workload `id`, if seen.
    pub fn spec_of(&self, workload_id: &str) -> Option<String> {
        self.inner.specs.get(&workload_id.to_owned())
    }

    pub fn remember_spec(&self, workload_id: &str, spec_id: &str) {
        self.inner.specs.offer(workload_id.to_owned(), spec_id.to_owned(), 0);
    }

    /// Waits for a round begun after this call; true once it has succeeded.
    async fn barrier(&self) -> bool {
        let target = match self.inner.rounds.lock() {
            Ok(mut rounds) => {
                let target = rounds.started + 1;
                rounds.wanted = rounds.wanted.max(target);
                target
            }
            Err(_) => return false,
        };
        self.inner.wake.notify_one();
        let mut done = self.inner.done.subscribe();
        match tokio::time::timeout(WAIT, done.wait_for(|(round, _)| *round >= target)).await {
            Ok(Ok(done)) => done.1,
            _ => false,
        }
    }

    /// The next round wanted, once one is.
    async fn next_round(&self) -> u64 {
        loop {
            if let Ok(mut rounds) = self.inner.rounds.lock()
                && rounds.wanted > rounds.started
            {
                rounds.started += 1;
                return rounds.started;
            }
            self.inner.wake.notified().await;
        }
    }

    /// SQLite: forgets the views of the specs changed since the last version `seen` (everything,
    /// the first time).
    async fn read_versions(&self, db: &DatabaseConnection, seen: &mut Option<i64>) -> bool {
        let Some(last) = *seen else {
            let max =
                Statement::from_string(DbBackend::Sqlite, "SELECT COALESCE(MAX(version), 0) AS v FROM view_versions");
            let Ok(Some(row)) = db.query_one_raw(max).await else { return false };
            let Ok(max) = row.try_get::<i64>("", "v") else { return false };
            self.inner.kept.clear();
            *seen = Some(max);
            return true;
        };
        let changed = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT spec_id, version FROM view_versions WHERE version > ? ORDER BY version",
            [last.into()],
        );
        let Ok(rows) = db.query_all_raw(changed).await else { return false };
        for row in rows {
            let (Ok(spec), Ok(version)) = (row.try_get::<String>("", "spec_id"), row.try_get::<i64>("", "version"))
            else {
                return false;
            };
            self.inner.kept.invalidate(&spec);
            *seen = Some(version);
        }
        true
    }
}
