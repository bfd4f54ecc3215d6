//! The queue between publishers and runners, behind one trait with two transports:
//! `memory` (embedded mode: one in-process runner) and `amqp` (distributed mode: RabbitMQ).
//!
//! Publishing returns only once the transport holds the message (for RabbitMQ: a publisher
//! confirm). Consuming pushes `Delivery`s into a channel the runner drains; the runner settles
//! each delivery only after the database holds the claim (see `runner`).

pub mod amqp;
pub mod memory;

use entity::message::{QueueMessage, Route};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    #[error("broker refused the message: {0}")]
    Refused(String),
}

pub struct Delivery {
    pub payload: Vec<u8>,
    pub acker: Acker,
}

pub enum Acker {
    Memory,
    Amqp(lapin::Acker),
}

impl Acker {
    pub async fn ack(self) {
        // If the channel is gone, the broker redelivers, and the claim's compare-and-set turns
        // the redelivery into a no-op.
        if let Acker::Amqp(acker) = self
            && let Err(err) = acker.ack(lapin::options::BasicAckOptions::default()).await
        {
            tracing::warn!(%err, "could not ack a delivery");
        }
    }

    /// Gives the message back (`requeue`) or dead-letters it.
    pub async fn reject(self, requeue: bool) {
        if let Acker::Amqp(acker) = self
            && let Err(err) = acker.reject(lapin::options::BasicRejectOptions { requeue }).await
        {
            tracing::warn!(%err, "could not reject a delivery");
        }
    }
}

#[async_trait::async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Returns once the transport has durably accepted the message.
    async fn publish(&self, route: &Route, message: QueueMessage) -> Result<(), BrokerError>;

    /// How many messages wait on the shared queue, not yet delivered to any runner; `None` where
    /// the transport cannot tell or has no runners to stall (the in-process queue).
    async fn shared_ready(&self) -> Option<u32> {
        None
    }

    /// Feeds `sink` with the messages for `runner_id` (its own queue and the any-runner queue)
    /// until `shutdown`, reconnecting and re-declaring the topology whenever the transport drops.
    async fn consume(&self, runner_id: &str, sink: mpsc::Sender<Delivery>, shutdown: CancellationToken);
}
