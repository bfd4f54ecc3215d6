//! What a database error means for the client, the same for every face: the database cannot be
//! reached (503, with `Retry-After`), the client sent what it cannot store (400), or a fault of
//! ours (500). `classify` logs the cause once; a face renders only the verdict, in its dialect.

use sea_orm::sqlx::Error as Sqlx;
use sea_orm::{DbErr, RuntimeErr};

/// What a face tells a client whose string the database refused.
pub const UNSTORABLE: &str = "The request holds characters that cannot be stored or searched for";

/// What a face tells a client to do after a 503: retry in this many seconds.
pub const RETRY_AFTER_SECS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFault {
    /// The database cannot be reached now; nothing was done, and the request may be retried.
    Unavailable,
    /// The database refused a client's string (PostgreSQL holds no NUL character, for one).
    UnstorableInput,
    /// Anything else: a fault of the server.
    Bug,
}

/// The fault `err` is; its cause is logged here, once.
pub fn classify(err: &DbErr) -> DbFault {
    if unreachable(err) {
        tracing::warn!(%err, "database unavailable");
        DbFault::Unavailable
    } else if unstorable(err) {
        tracing::info!(%err, "the database refused a client's input");
        DbFault::UnstorableInput
    } else {
        tracing::error!(%err, "database error");
        DbFault::Bug
    }
}

fn sqlx_error(err: &DbErr) -> Option<&Sqlx> {
    match err {
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

fn unstorable(err: &DbErr) -> bool {
    matches!(sqlx_error(err), Some(Sqlx::Database(db)) if db.code().is_some_and(|code| code == "22021" || code == "22P05"))
}

fn unreachable(err: &DbErr) -> bool {
    if matches!(err, DbErr::Conn(_) | DbErr::ConnectionAcquire(_)) {
        return true;
    }
    match sqlx_error(err) {
        Some(Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed) => true,
        Some(Sqlx::Database(db)) => db.code().is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
        _ => false,
    }
}
