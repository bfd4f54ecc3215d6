//! In-process transport for embedded mode: an unbounded channel to the single in-process
//! runner. Nothing here is durable; durability comes from the database, whose relay republishes
//! every queued task after a restart (`dispatch`).

use super::{Acker, Broker, BrokerError, Delivery};
use entity::message::{QueueMessage, Route};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

pub struct MemoryBroker {
    tx: mpsc::UnboundedSender<QueueMessage>,
    rx: Mutex<mpsc::UnboundedReceiver<QueueMessage>>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, rx: Mutex::new(rx) }
    }
}

#[async_trait::async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, _route: &Route, message: QueueMessage) -> Result<(), BrokerError> {
        self.tx.send(message).map_err(|_| BrokerError::Unavailable("the in-process runner has stopped".into()))
    }

    async fn consume(&self, _runner_id: &str, sink: mpsc::Sender<Delivery>, shutdown: CancellationToken) {
        let mut rx = self.rx.lock().await;
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => return,
                message = rx.recv() => message,
            };
            let Some(message) = message else { return };
            let delivery = Delivery { payload: message.to_bytes(), acker: Acker::Memory };
            if sink.send(delivery).await.is_err() {
                return;
            }
        }
    }
}
