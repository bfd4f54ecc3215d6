//! RabbitMQ transport (lapin).
//!
//! Topology, all under one prefix so that tests and deployments can share a broker:
//! - `<prefix>.tasks`: run messages any runner may take;
//! - `<prefix>.runner.<id>`: messages for the runner that owns a workload (stops, cancels);
//! - `<prefix>.dlx` (fanout exchange) → `<prefix>.dead`: messages rejected as unprocessable or
//!   delivered more than `DELIVERY_LIMIT` times.
//!
//! Work queues are durable quorum queues with a delivery limit and a dead-letter exchange;
//! messages are persistent and published with `mandatory` and publisher confirms.
//!
//! lapin does not reconnect by itself. Publishing keeps one confirm-mode channel and drops it on
//! any error, so the next publish reconnects (the relay retries what failed). Consuming runs a
//! loop: connect, declare the topology, set the prefetch, consume both queues; when the stream
//! ends or errs, wait with capped backoff and do it all again.
//!
//! Nothing waits on the broker without a bound: connecting and each publish (up to its confirm)
//! time out after `BROKER_TIMEOUT`, and AMQP heartbeats (`amqp_heartbeat_secs`) make both ends
//! notice a link that silently stopped passing data, or a peer that stopped answering (a paused
//! runner: RabbitMQ then closes its connection and hands what it held to other runners). The
//! shared queue is consumed with a small prefetch of its own, so a stalled runner holds little.

use super::{Acker, Broker, BrokerError, Delivery};
use crate::settings::RunnerSettings;
use entity::message::{QueueMessage, Route};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// Deliveries past this count are dead-lettered by RabbitMQ (quorum queues count crash
/// redeliveries too, which is what keeps a poison message from looping forever).
const DELIVERY_LIMIT: i64 = 10;
/// The longest a connect, or a publish up to its confirm, may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

pub struct AmqpBroker {
    url: String,
    prefix: String,
    prefetch: u16,
    shared_prefetch: u16,
    expires_ms: Option<u64>,
    publisher: Mutex<Option<Publisher>>,
}

struct Publisher {
    _connection: Connection,
    channel: Channel,
    declared: HashSet<String>,
    /// Which connection this is (a publish that failed drops only the one it used).
    generation: u64,
}

/// Numbers publisher connections.
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl AmqpBroker {
    pub fn new(url: &str, settings: &RunnerSettings) -> Self {
        Self {
            url: with_default_query(
                url,
                &[
                    ("heartbeat", settings.amqp_heartbeat_secs.to_string()),
                    ("connection_timeout", BROKER_TIMEOUT.as_millis().to_string()),
                ],
            ),
            prefix: settings.queue_prefix.clone(),
            prefetch: settings.prefetch,
            shared_prefetch: settings.shared_prefetch,
            expires_ms: settings.queue_expires_ms,
            publisher: Mutex::new(None),
        }
    }

    pub fn shared_queue(&self) -> String {
        format!("{}.tasks", self.prefix)
    }

    pub fn runner_queue(&self, runner_id: &str) -> String {
        format!("{}.runner.{runner_id}", self.prefix)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    fn queue_for(&self, route: &Route) -> String {
        match route {
            Route::AnyRunner => self.shared_queue(),
            Route::Runner(id) => self.runner_queue(id),
        }
    }

    async fn connect(&self) -> Result<Connection, BrokerError> {
        match tokio::time::timeout(BROKER_TIMEOUT, Connection::connect(&self.url, ConnectionProperties::default()))
            .await
        {
            Ok(connected) => connected.map_err(unavailable),
            Err(_) => Err(BrokerError::Unavailable(format!("no connection within {BROKER_TIMEOUT:?}"))),
        }
    }

    fn quorum_args(&self, dead_letter_exchange: Option<&str>) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        if let Some(dlx) = dead_letter_exchange {
            args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dlx.into()));
            args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(DELIVERY_LIMIT));
        }
        if let Some(ms) = self.expires_ms.and_then(|ms| i64::try_from(ms).ok()) {
            args.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
        }
        args
    }

    /// Declares the dead-letter exchange and queue, and `queue` with its arguments.
    async fn declare(&self, channel: &Channel, queue: &str) -> Result<(), lapin::Error> {
        let dlx = format!("{}.dlx", self.prefix);
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        channel
            .exchange_declare(
                dlx.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
        channel.queue_declare(self.dead_letter_queue().as_str().into(), durable, self.quorum_args(None)).await?;
        channel
            .queue_bind(
                self.dead_letter_queue().as_str().into(),
                dlx.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel.queue_declare(queue.into(), durable, self.quorum_args(Some(&dlx))).await?;
        Ok(())
    }

    /// The publishing channel, connected and with `queue` declared (under the publisher lock),
    /// and its connection's generation.
    async fn channel_for(&self, publisher: &mut Option<Publisher>, queue: &str) -> Result<(Channel, u64), BrokerError> {
        if publisher.as_ref().is_none_or(|p| !p.channel.status().connected()) {
            let connection = self.connect().await?;
            let channel = connection.create_channel().await.map_err(unavailable)?;
            channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(unavailable)?;
            let generation = GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *publisher = Some(Publisher { _connection: connection, channel, declared: HashSet::new(), generation });
        }
        let Some(p) = publisher.as_mut() else {
            return Err(BrokerError::Unavailable("no channel".into()));
        };
        if !p.declared.contains(queue) {
            self.declare(&p.channel, queue).await.map_err(unavailable)?;
            p.declared.insert(queue.to_owned());
        }
        Ok((p.channel.clone(), p.generation))
    }

    /// Publishes persistently on `channel` and waits for the broker's confirm. Many of these run
    /// at once on one channel: confirms are pipelined, not one message at a time.
    async fn publish_confirmed(channel: &Channel, queue: &str, payload: &[u8]) -> Result<(), BrokerError> {
        let properties = BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into());
        let confirmation = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions { mandatory: true, ..Default::default() },
                payload,
                properties,
            )
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        if !confirmation.is_ack() {
            return Err(BrokerError::Refused(format!("nack for {queue}")));
        }
        if confirmation.take_message().is_some() {
            return Err(BrokerError::Refused(format!("{queue} is not routable")));
        }
        Ok(())
    }

    /// One connection's worth of consuming: returns on shutdown, errs when the connection drops.
    async fn consume_session(
        &self,
        runner_id: &str,
        sink: &mpsc::Sender<Delivery>,
        shutdown: &CancellationToken,
    ) -> Result<(), BrokerError> {
        let connection = self.connect().await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        let shared = self.shared_queue();
        let own = self.runner_queue(runner_id);
        self.declare(&channel, &shared).await.map_err(unavailable)?;
        self.declare(&channel, &own).await.map_err(unavailable)?;
        // A qos applies to the consumers started after it on the channel.
        channel.basic_qos(self.shared_prefetch.max(1), BasicQosOptions::default()).await.map_err(unavailable)?;
        let tag = |queue: &str| format!("{runner_id}@{queue}");
        let from_shared = channel
            .basic_consume(
                shared.as_str().into(),
                tag(&shared).as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        channel.basic_qos(self.prefetch.max(1), BasicQosOptions::default()).await.map_err(unavailable)?;
        let from_own = channel
            .basic_consume(
                own.as_str().into(),
                tag(&own).as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        tracing::info!(runner = runner_id, "consuming from {shared} and {own}");
        let mut deliveries = futures_util::stream::select(from_shared, from_own);
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                next = deliveries.next() => next,
            };
            match next {
                Some(Ok(delivery)) => {
                    let delivery = Delivery { payload: delivery.data, acker: Acker::Amqp(delivery.acker) };
                    if sink.send(delivery).await.is_err() {
                        return Ok(());
                    }
                }
                Some(Err(err)) => return Err(unavailable(err)),
                None => return Err(BrokerError::Unavailable("the consumer stream ended".into())),
            }
        }
    }
}

/// `url` with each `(key, value)` added to its query unless the query sets that key already.
fn with_default_query(url: &str, defaults: &[(&str, String)]) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query.split('&').filter(|p| !p.is_empty()).map(str::to_owned).collect();
    for (key, value) in defaults {
        if !pairs.iter().any(|p| p.split('=').next() == Some(key)) {
            pairs.push(format!("{key}={value}"));
        }
    }
    format!("{base}?{}", pairs.join("&"))
}

fn unavailable(err: lapin::Error) -> BrokerError {
    BrokerError::Unavailable(err.to_string())
}

#[async_trait::async_trait]
impl Broker for AmqpBroker {
    async fn publish(&self, route: &Route, message: QueueMessage) -> Result<(), BrokerError> {
        let queue = self.queue_for(route);
        let publishing = async {
            // The lock covers connecting and declaring only; the publish and its confirm run
            // beside the others'.
            let (channel, generation) = {
                let mut publisher = self.publisher.lock().await;
                let channel = self.channel_for(&mut publisher, &queue).await;
                if channel.is_err() {
                    *publisher = None;
                }
                channel?
            };
            let published = Self::publish_confirmed(&channel, &queue, &message.to_bytes()).await;
            if published.is_err() {
                // Start from a fresh connection next time (unless another publish already did).
                let mut publisher = self.publisher.lock().await;
                if publisher.as_ref().is_some_and(|p| p.generation == generation) {
                    *publisher = None;
                }
            }
            published
        };
        match tokio::time::timeout(BROKER_TIMEOUT, publishing).await {
            Ok(result) => result,
            Err(_) => {
                *self.publisher.lock().await = None;
                Err(BrokerError::Unavailable(format!("no publisher confirm within {BROKER_TIMEOUT:?}")))
            }
        }
    }

    async fn shared_ready(&self) -> Option<u32> {
        let queue = self.shared_queue();
        let mut publisher = self.publisher.lock().await;
        let probe = async {
            let p = publisher.as_ref().filter(|p| p.channel.status().connected())?;
            let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            p.channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await.ok()
        };
        match tokio::time::timeout(BROKER_TIMEOUT, probe).await {
            Ok(Some(declared)) => Some(declared.message_count()),
            _ => {
                // No channel yet, or it failed (a passive declare of a missing queue closes it).
                *publisher = None;
                None
            }
        }
    }

    async fn consume(&self, runner_id: &str, sink: mpsc::Sender<Delivery>, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            match self.consume_session(runner_id, &sink, &shutdown).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(%err, "RabbitMQ consumer lost; reconnecting in {backoff:?}")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn heartbeat_and_connection_timeout_are_added_unless_the_url_sets_them() {
        let defaults = [("heartbeat", "10".to_owned()), ("connection_timeout", "5000".to_owned())];
        assert_eq!(
            super::with_default_query("amqp://guest:guest@host:5672/%2f", &defaults),
            "amqp://guest:guest@host:5672/%2f?heartbeat=10&connection_timeout=5000"
        );
        assert_eq!(
            super::with_default_query("amqp://host/%2f?heartbeat=3&frame_max=8192", &defaults),
            "amqp://host/%2f?heartbeat=3&frame_max=8192&connection_timeout=5000"
        );
    }
}
