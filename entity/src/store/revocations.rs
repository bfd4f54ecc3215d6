//! Revocations that every `api` process has heard of before they return.
//!
//! Each `api` process keeps the credentials it has checked in memory (`api::credentials`) and
//! forgets one when the database notifies, at commit, that it changed (`NOTIFY
//! taskq_auth_changed`, sent by triggers; see the migration that adds them). A notification
//! reaches each process a little later, so on its own it would leave a window in which a
//! revoked token still works somewhere. This closes it with numbered syncs and leases:
//!
//! - After committing a revocation, `settle` takes the next sync number `n` and notifies
//!   `sync:n` (`auth_sync` holds the last number). PostgreSQL delivers notifications in commit
//!   order, so a process that has handled `sync:n` has handled every revocation committed
//!   before it.
//! - A process answers from memory only while it holds a lease (`api_processes`: until when,
//!   and the highest sync it has handled), renewed every second for `LEASE` (`hold`). A lease
//!   is granted only to a process that has handled the last sync taken: while a revocation is
//!   being settled, the processes that have not heard of it cannot renew.
//! - `settle` returns when every process with a lease has handled `sync:n`, or lost its lease.
//!   That takes one notification round trip, and at most `LEASE` when a process is stuck.
//!   Whether a lease has lapsed is judged by the database's clock (SQLite: the machine's),
//!   while the process stops using it by its own monotonic clock, counted from before it
//!   asked: a database clock stepped forward by more than a lease could end a wait early.
//!
//! So once a revocation returns, no process accepts what it revoked.
//!
//! SQLite has no notifications (its one `api` process shares the file with the CLI, which
//! revokes tokens from another process): the process reads the last sync number every
//! `SQLITE_POLL` instead (`last_sync`), forgets everything it keeps when it has moved, and holds
//! a lease the same way, ending at a time in milliseconds since the epoch (one machine, one
//! clock).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::time::{Duration, Instant};

/// The PostgreSQL channel the credential triggers, and the syncs, notify.
pub const CHANNEL: &str = "taskq_auth_changed";
/// How long a granted lease lasts (it is renewed every `LEASE / 3`).
pub const LEASE: Duration = Duration::from_secs(3);
/// How often a process on SQLite reads the last sync number.
pub const SQLITE_POLL: Duration = Duration::from_millis(25);

fn postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// Now, in milliseconds since the epoch (SQLite's lease times).
fn now_ms() -> i64 {
    super::now().timestamp_millis()
}

fn lease_ms() -> i64 {
    i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX)
}

/// Returns once no `api` process keeps in memory a credential revoked before this call (see
/// the module's comment). Call it after the revocation has committed, never inside its
/// transaction.
pub async fn settle(db: &DatabaseConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sync = if postgres(db) {
        "WITH s AS (UPDATE auth_sync SET n = n + 1 RETURNING n)
         SELECT n FROM s, pg_notify('taskq_auth_changed', 'sync:' || s.n)"
    } else {
        "UPDATE auth_sync SET n = n + 1 RETURNING n"
    };
    let row = db.query_one_raw(Statement::from_string(backend, sync)).await?;
    let n: i64 = row.ok_or_else(|| DbErr::RecordNotFound("auth_sync".into()))?.try_get("", "n")?;
    // Leases end within LEASE of the last sync (none is renewed without it): past that, the
    // clocks disagree.
    let deadline = Instant::now() + LEASE * 2;
    loop {
        let waiting = behind(db, n).await?;
        if waiting == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(DbErr::Custom(format!(
                "{waiting} api process(es) neither heard of sync {n} nor lost their lease"
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How many processes hold a lease but have not handled sync `n` yet.
pub async fn behind(db: &impl ConnectionTrait, n: i64) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let statement = if postgres(db) {
        Statement::from_sql_and_values(
            backend,
            "SELECT count(*) AS waiting FROM api_processes WHERE synced < $1 AND expires_at > clock_timestamp()",
            [n.into()],
        )
    } else {
        Statement::from_sql_and_values(
            backend,
            "SELECT count(*) AS waiting FROM api_processes WHERE synced < ? AND expires_at > ?",
            [n.into(), now_ms().into()],
        )
    };
    Ok(db.query_one_raw(statement).await?.map(|row| row.try_get::<i64>("", "waiting")).transpose()?.unwrap_or(0))
}

/// The last sync number taken.
pub async fn last_sync(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT n FROM auth_sync")).await?;
    row.ok_or_else(|| DbErr::RecordNotFound("auth_sync".into()))?.try_get("", "n")
}

/// Notifies the last sync taken again, without taking one: a process that has just started
/// listening learns, when it hears it, that it has handled every revocation before.
pub async fn announce(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT pg_notify('taskq_auth_changed', 'sync:' || n) FROM auth_sync").await?;
    Ok(())
}

/// Grants or renews process `id`'s lease for `LEASE` from now, if it has handled the last sync
/// taken (`synced`); false when it has not (no lease is renewed until it has).
pub async fn hold(db: &impl ConnectionTrait, id: &str, synced: i64) -> Result<bool, DbErr> {
    // The row lock orders this against `settle`'s sync: either the lease is granted first, and
    // `settle` sees it, or the sync is taken first, and this sees its number. (SQLite has one
    // writer at a time.)
    let statement = if postgres(db) {
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO api_processes (id, synced, expires_at)
             SELECT $1, $2, now() + make_interval(secs => $3) FROM auth_sync WHERE n <= $2 FOR SHARE
             ON CONFLICT (id) DO UPDATE SET synced = EXCLUDED.synced, expires_at = EXCLUDED.expires_at
             RETURNING id",
            [id.into(), synced.into(), LEASE.as_secs_f64().into()],
        )
    } else {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO api_processes (id, synced, expires_at)
             SELECT ?, ?, ? FROM auth_sync WHERE n <= ?
             ON CONFLICT (id) DO UPDATE SET synced = excluded.synced, expires_at = excluded.expires_at
             RETURNING id",
            [id.into(), synced.into(), (now_ms() + lease_ms()).into(), synced.into()],
        )
    };
    Ok(db.query_one_raw(statement).await?.is_some())
}

/// Gives up process `id`'s lease (it is shutting down), and forgets leases long over.
pub async fn release(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    let statement = if postgres(db) {
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM api_processes WHERE id = $1 OR expires_at < now() - interval '1 hour'",
            [id.into()],
        )
    } else {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "DELETE FROM api_processes WHERE id = ? OR expires_at < ?",
            [id.into(), (now_ms() - 3_600_000).into()],
        )
    };
    db.execute_raw(statement).await?;
    Ok(())
}
