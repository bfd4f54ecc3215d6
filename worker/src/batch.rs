//! Writes that many callers make at once, done many to a round: each caller waits for the round
//! that does its write, and the writes that arrive while one round runs share the next. No
//! timer: when the system is idle a write is done at once; under load, one round does a whole
//! batch of them instead of one each.
//!
//! A round is one statement: the publishes' confirms, the submitted tasks' inserts, the claims,
//! the outcomes, the reads of tasks not kept in memory. On PostgreSQL one commit then serves the
//! whole round: one WAL flush, and one turn at the database-wide lock that every notifying
//! transaction holds from just before its commit until the commit is flushed. Done one by one,
//! those commits queued on that lock (measured: 42% of the busy backends' samples waited on it
//! under load; see docs/benchmarks.md). On SQLite, whose one connection the accepts and the
//! runner share, a round is one write transaction instead of one per task.
//!
//! A round that fails answers each of its items with the database's own error (`all_failed`),
//! so that a face still tells an unreachable database (503) from a fault of ours (500).

use sea_orm::{DbErr, RuntimeErr};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// A writer that does its callers' writes many to a round.
pub struct Batch<I, O> {
    queue: mpsc::UnboundedSender<(I, oneshot::Sender<O>)>,
}

impl<I, O> Clone for Batch<I, O> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

/// The writer is gone (its runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the batch writer has stopped")]
pub struct Stopped;

impl From<Stopped> for DbErr {
    fn from(err: Stopped) -> Self {
        DbErr::Custom(err.to_string())
    }
}

impl<I: Send + 'static, O: Send + 'static> Batch<I, O> {
    /// Starts the writer (inside a runtime). `write` does a round of at most `max` items and
    /// answers each, in their order. It ends once every handle is dropped.
    pub fn start<W, F>(max: usize, mut write: W) -> Self
    where
        W: FnMut(Vec<I>) -> F + Send + 'static,
        F: Future<Output = Vec<O>> + Send,
    {
        let (queue, mut items) = mpsc::unbounded_channel::<(I, oneshot::Sender<O>)>();
        tokio::spawn(async move {
            let mut round = Vec::with_capacity(max);
            while items.recv_many(&mut round, max).await > 0 {
                let (inputs, replies): (Vec<I>, Vec<oneshot::Sender<O>>) = round.drain(..).unzip();
                for (reply, output) in replies.into_iter().zip(write(inputs).await) {
                    let _ = reply.send(output);
                }
            }
        });
        Self { queue }
    }

    /// Does `item`'s write; returns once its round is done.
    pub async fn run(&self, item: I) -> Result<O, Stopped> {
        let (reply, output) = oneshot::channel();
        self.queue.send((item, reply)).map_err(|_| Stopped)?;
        output.await.map_err(|_| Stopped)
    }
}

/// Every item of a round of `n`, answered with `err` (as the round's own error type).
pub fn all_failed<T, E: From<DbErr>>(err: &DbErr, n: usize) -> Vec<Result<T, E>> {
    (0..n).map(|_| Err(err.clone().into())).collect()
}

/// Whether the database refused the statement (a constraint, a type): it did nothing, so its
/// items may be written again one by one. Any other failure (the connection) may have come
/// after the commit.
pub fn refused(err: &DbErr) -> bool {
    matches!(err, DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
        if matches!(**e, sea_orm::sqlx::Error::Database(_)))
}
