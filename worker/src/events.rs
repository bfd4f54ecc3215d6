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
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
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

    /// On PostgreSQL, relays the database's notifications into this process (once `subscriptions`
    /// are followed).
    pub fn listen(&self, subscriptions: &mut Subscriptions) {
        let events = self.clone();
        subscriptions.on(CHANNEL, move |notice| match notice {
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

/// A followed listener, which can be asked to catch up (see `Follower::sync`).
#[derive(Clone)]
pub struct Follower {
    syncs: mpsc::UnboundedSender<oneshot::Sender<()>>,
    /// What the last sync heard back left (see `Quiet`), kept by the relay.
    quiet: Shared,
    pool: sea_orm::sqlx::PgPool,
}

type Shared = Arc<Mutex<Option<Quiet>>>;

impl Follower {
    /// True once every notification committed before this call began has been told to `on`
    /// (in order); false when the listener lost its connection meanwhile.
    ///
    /// The listening connection itself notifies a channel of its own, which it listens to, and
    /// waits to hear it: PostgreSQL delivers notifications in the order their transactions
    /// committed, so every one committed before has been heard by then. One round trip on one
    /// connection (PostgreSQL hands a backend that notified the notifications due to it before
    /// its answer), and the other listeners have nothing to forward. When nothing has committed
    /// since the last one heard (`Quiet`), a read of the current snapshot on a pooled connection
    /// tells so first: no notification, which would wake every listening backend, and no turn
    /// on the listening connection.
    pub async fn sync(&self) -> bool {
        if self.quiet_since().await {
            return true;
        }
        let (done, heard) = oneshot::channel();
        self.syncs.send(done).is_ok() && heard.await.is_ok()
    }

    /// Whether nothing has committed since the last sync heard back.
    async fn quiet_since(&self) -> bool {
        let Some(then) = self.quiet.lock().ok().and_then(|quiet| quiet.clone()) else { return false };
        let now =
            sea_orm::sqlx::query_scalar::<_, String>("SELECT pg_current_snapshot()::text").fetch_one(&self.pool).await;
        now.is_ok_and(|now| then.still(&now))
    }
}

type Handler = Box<dyn Fn(Notice<'_>) + Send + Sync>;
type Asked = mpsc::UnboundedReceiver<oneshot::Sender<()>>;

/// The channels a process follows, each with its handler, all on one listening connection.
///
/// Every notifying commit wakes every backend that listens in the database (PostgreSQL 15 does
/// not look at their channels), so a process listens once, whatever it follows: each
/// connection more costs the database a wake-up per notifying commit, and each kept-view
/// barrier round one too.
pub struct Subscriptions {
    db: DatabaseConnection,
    handlers: Vec<(String, Handler)>,
    syncs: mpsc::UnboundedSender<oneshot::Sender<()>>,
    asked: Asked,
    quiet: Shared,
}

impl Subscriptions {
    pub fn new(db: &DatabaseConnection) -> Self {
        let (syncs, asked) = mpsc::unbounded_channel();
        Self { db: db.clone(), handlers: Vec::new(), syncs, asked, quiet: Shared::default() }
    }

    /// Tells `on` each notification of `channel`, and when listening starts and stops, once
    /// followed. The follower (none on SQLite) catches up with every channel followed.
    pub fn on(&mut self, channel: &str, on: impl Fn(Notice<'_>) + Send + Sync + 'static) -> Option<Follower> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return None;
        }
        self.handlers.push((channel.to_owned(), Box::new(on)));
        let pool = self.db.get_postgres_connection_pool().clone();
        Some(Follower { syncs: self.syncs.clone(), quiet: self.quiet.clone(), pool })
    }

    /// Follows every channel subscribed to until `shutdown`, reconnecting with a backoff. On
    /// SQLite, which has no notifications, nothing is followed (its one process signals its own
    /// changes).
    pub fn follow(self, shutdown: CancellationToken) {
        if self.handlers.is_empty() {
            return;
        }
        let channels: Vec<String> = self.handlers.iter().map(|(channel, _)| channel.clone()).collect();
        let handlers = self.handlers;
        // Each channel's notifications to its own handlers, in commit order across them.
        let on = move |notice: Notice<'_>| match notice {
            Notice::Payload { channel, .. } => {
                for (_, on) in handlers.iter().filter(|(followed, _)| followed == channel) {
                    on(notice);
                }
            }
            Notice::Listening | Notice::Lost => handlers.iter().for_each(|(_, on)| on(notice)),
        };
        let (mut asked, quiet) = (self.asked, self.quiet);
        let pool = self.db.get_postgres_connection_pool().clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            while !shutdown.is_cancelled() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Err(err) = relay(&pool, &channels, &on, &mut asked, &quiet) => {
                        tracing::warn!(%err, ?channels, "notifications lost; listening again in {backoff:?}");
                    }
                }
                on(Notice::Lost);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                // Whoever asked meanwhile is told no, rather than kept waiting.
                while asked.try_recv().is_ok() {}
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }
}

/// Relays the `channels`' notifications to `on`, and answers the syncs `asked`, until the
/// listener fails.
async fn relay(
    pool: &sea_orm::sqlx::PgPool,
    channels: &[String],
    on: &impl Fn(Notice<'_>),
    asked: &mut Asked,
    quiet: &Shared,
) -> Result<std::convert::Infallible, sea_orm::sqlx::Error> {
    use sea_orm::sqlx::postgres::{PgListener, PgNotification};
    // The backend listening: when it changes, notifications were missed in between.
    async fn backend(listener: &mut PgListener) -> Result<i32, sea_orm::sqlx::Error> {
        sea_orm::sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(listener).await
    }
    let mut listener = PgListener::connect_with(pool).await?;
    // `try_recv` is raced against syncs below, and a reconnection dropped halfway (after the
    // pooled connection was taken, before its LISTEN) breaks the listener; so it reconnects
    // only when asked to, outside the race (`backend` after a `None`).
    listener.eager_reconnect(false);
    let own = format!("taskq_sync_{}", uuid::Uuid::new_v4().simple());
    listener.listen_all(channels.iter().map(String::as_str).chain([own.as_str()])).await?;
    let mut listening_on = backend(&mut listener).await?;
    on(Notice::Listening);
    // The syncs sent and not yet heard back, each with those it answers and what the database
    // looked like when it began, oldest first.
    let mut sent = 0_u64;
    type Waiting = std::collections::VecDeque<(u64, Vec<oneshot::Sender<()>>, Option<Quiet>)>;
    let mut waiting = Waiting::new();
    let set_quiet = |then: Option<Quiet>| {
        if let Ok(mut quiet) = quiet.lock() {
            *quiet = then;
        }
    };
    // A sync heard before this listener began would not account for what it missed.
    set_quiet(None);
    let tell = |notification: PgNotification, waiting: &mut Waiting| {
        if notification.channel() != own {
            return on(Notice::Payload { channel: notification.channel(), payload: notification.payload() });
        }
        let heard = notification.payload().parse().unwrap_or(0);
        while waiting.front().is_some_and(|(sync, ..)| *sync <= heard) {
            let Some((_, asked, then)) = waiting.pop_front() else { break };
            set_quiet(then);
            for done in asked {
                let _ = done.send(());
            }
        }
    };
    loop {
        tokio::select! {
            received = listener.try_recv() => match received? {
                Some(notification) => tell(notification, &mut waiting),
                // The connection dropped: what was sent is not heard (those asking are told
                // no); connect again.
                None => {
                    waiting.clear();
                    set_quiet(None);
                    on(Notice::Lost);
                    listening_on = backend(&mut listener).await?;
                    on(Notice::Listening);
                }
            },
            Some(first) = asked.recv() => {
                // Only those asked before the notification is sent are answered by it.
                let mut asking = vec![first];
                while let Ok(more) = asked.try_recv() {
                    asking.push(more);
                }
                sent += 1;
                let (backend, snapshot, xid): (i32, String, String) = sea_orm::sqlx::query_as(
                    "SELECT pg_backend_pid(), pg_current_snapshot()::text, pg_current_xact_id()::text \
                     FROM pg_notify($1, $2)",
                )
                .bind(&own)
                .bind(sent.to_string())
                .fetch_one(&mut listener)
                .await?;
                waiting.push_back((sent, asking, Quiet::after(&snapshot, &xid)));
                if backend != listening_on {
                    on(Notice::Lost);
                    listening_on = backend;
                    on(Notice::Listening);
                }
                while let Some(notification) = listener.next_buffered() {
                    tell(notification, &mut waiting);
                }
            }
        }
    }
}

/// The database as a sync left it, to tell later that nothing else has committed since.
///
/// A sync reads its statement's snapshot, then takes a transaction id (`xid`) and commits its
/// notification. When no transaction id was handed out between the two (the snapshot's `xmax`
/// is `xid`), and a later snapshot has `xmax` = `xid` + 1 and the same transactions in
/// progress, then the transactions it sees committed are those the sync's snapshot saw, plus
/// the sync's own: every one committed before the later snapshot committed before the sync's
/// notification, so it was heard before it. Anything written in between (in any database of
/// the server) takes an id and ends the quiet, and the next sync notifies again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quiet {
    xmax: u64,
    in_progress: Vec<u64>,
}

impl Quiet {
    /// After a sync whose statement's snapshot was `snapshot` (`pg_snapshot` text,
    /// `xmin:xmax:xip,...`) and whose transaction was `xid`; none unless no other id came
    /// between them.
    pub fn after(snapshot: &str, xid: &str) -> Option<Self> {
        let (xmax, in_progress) = parse_snapshot(snapshot)?;
        let xid: u64 = xid.parse().ok()?;
        (xmax == xid).then(|| Self { xmax: xid + 1, in_progress })
    }

    /// Whether `snapshot` sees nothing committed that the sync did not.
    pub fn still(&self, snapshot: &str) -> bool {
        parse_snapshot(snapshot).is_some_and(|(xmax, in_progress)| xmax == self.xmax && in_progress == self.in_progress)
    }
}

/// A `pg_snapshot`'s `xmax` and its transactions in progress, sorted.
fn parse_snapshot(snapshot: &str) -> Option<(u64, Vec<u64>)> {
    let mut parts = snapshot.split(':');
    let (_xmin, xmax, xip) = (parts.next()?, parts.next()?.parse().ok()?, parts.next()?);
    let mut in_progress =
        xip.split(',').filter(|xid| !xid.is_empty()).map(str::parse).collect::<Result<Vec<u64>, _>>().ok()?;
    in_progress.sort_unstable();
    (parts.next().is_none()).then_some((xmax, in_progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_sync_holds_only_while_no_other_transaction_id_is_handed_out_and_none_ends() {
        // Another id was handed out between the sync's snapshot and its own id.
        assert_eq!(Quiet::after("100:100:", "101"), None);
        assert_eq!(Quiet::after("garbage", "100"), None);
        let quiet = Quiet::after("95:100:95,97", "100").expect("nothing between");
        assert!(quiet.still("95:101:95,97"), "nothing since");
        assert!(quiet.still("95:101:97,95"), "in any order");
        assert!(!quiet.still("97:101:97"), "95 ended (committed or not) since");
        assert!(!quiet.still("95:102:95,97"), "another id handed out since");
        assert!(!quiet.still("95:102:95,97,101"), "another transaction in progress");
        assert!(!quiet.still("95:101:95,97:"), "not a snapshot");
        assert!(!quiet.still(""), "not a snapshot");
        let idle = Quiet::after("100:100:", "100").expect("nothing between");
        assert!(idle.still("101:101:"));
        assert!(!idle.still("101:102:"));
    }
}
