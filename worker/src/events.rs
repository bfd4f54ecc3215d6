//! Task-state events: how the engine waits for a task without polling the database.
//!
//! Every process keeps one broadcast channel of "task N changed" signals, fed by
//! - its own writes: the runner finishing a task, the sweeper abandoning one, a cancel;
//! - on PostgreSQL, the database itself: a trigger on `tasks` sends `NOTIFY taskq_task_changed`
//!   with the task id whenever a task reaches a final state or is deleted (what waiters and the
//!   finished-task cache need; a claim is not announced), and every process `LISTEN`s. The
//!   notification is delivered at commit, so it can neither precede the change nor announce one
//!   that was rolled back, and every writer (any `api`, any `worker`) is covered without asking
//!   it to. We chose this over a RabbitMQ fanout exchange for that atomicity, and because it
//!   needs no new broker topology; the broker stays the work queue only.
//!
//! A waiter subscribes *before* it reads the row, so a change cannot slip between its read and
//! its wait. Whenever signals may have been missed (the listener reconnected, or a slow waiter
//! lagged behind the channel), a `Resync` wakes every waiter to read its row again.

use sea_orm::{DatabaseConnection, DbBackend};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The PostgreSQL channel the `tasks` trigger notifies (see the migration that creates it).
pub const CHANNEL: &str = "taskq_task_changed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSignal {
    Changed(i32),
    /// Signals may have been missed: read again.
    Resync,
}

#[derive(Clone)]
pub struct TaskEvents {
    tx: broadcast::Sender<TaskSignal>,
}

impl Default for TaskEvents {
    fn default() -> Self {
        Self { tx: broadcast::channel(1024).0 }
    }
}

impl TaskEvents {
    pub fn changed(&self, task_id: i32) {
        let _ = self.tx.send(TaskSignal::Changed(task_id));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TaskSignal> {
        self.tx.subscribe()
    }

    /// On PostgreSQL, relays the database's notifications into this process until `shutdown`.
    pub fn listen(&self, db: &DatabaseConnection, shutdown: CancellationToken) {
        let events = self.clone();
        follow(db, &[CHANNEL], shutdown, move |notice| match notice {
            Notice::Payload { payload, .. } => match payload.parse() {
                Ok(id) => events.changed(id),
                Err(_) => tracing::warn!(payload, "odd task notification"),
            },
            Notice::Listening | Notice::Lost => {
                let _ = events.tx.send(TaskSignal::Resync);
            }
        });
    }
}

/// What a followed notification channel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// A notification on `channel`.
    Payload { channel: &'a str, payload: &'a str },
    /// Listening (again): what was notified before is unknown.
    Listening,
    /// Not listening: notifications are missed until `Listening`.
    Lost,
}

/// On PostgreSQL, follows `channels` (on one connection, so in commit order across them) until
/// `shutdown`, telling `on` each notification, and when it starts and stops listening
/// (reconnecting with a backoff); false on SQLite, which has no notifications (its one process
/// signals its own changes).
pub fn follow(
    db: &DatabaseConnection,
    channels: &[&str],
    shutdown: CancellationToken,
    on: impl Fn(Notice<'_>) + Send + Sync + 'static,
) -> bool {
    if db.get_database_backend() != DbBackend::Postgres {
        return false;
    }
    let pool = db.get_postgres_connection_pool().clone();
    let channels: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Err(err) = relay(&pool, &channels, &on) => {
                    tracing::warn!(%err, ?channels, "notifications lost; listening again in {backoff:?}");
                }
            }
            on(Notice::Lost);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    true
}

/// Relays the `channels`' notifications to `on` until the listener fails.
async fn relay(
    pool: &sea_orm::sqlx::PgPool,
    channels: &[String],
    on: &impl Fn(Notice<'_>),
) -> Result<std::convert::Infallible, sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen_all(channels.iter().map(String::as_str)).await?;
    on(Notice::Listening);
    loop {
        match listener.try_recv().await? {
            Some(notification) => {
                on(Notice::Payload { channel: notification.channel(), payload: notification.payload() })
            }
            // The connection dropped; the listener reconnects on the next call.
            None => {
                on(Notice::Lost);
                on(Notice::Listening);
            }
        }
    }
}
