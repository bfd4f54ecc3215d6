//! The queue message contract between whoever publishes (api, relay) and the runners.
//!
//! Messages carry ids only: the database is the source of truth, so a duplicate or stale message
//! can never carry stale data, and a runner always re-reads the row it is told about.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueMessage {
    /// Perform the task if it is still queued.
    Run { task_id: i32 },
    /// The task's owner asked to cancel it; the runner that holds it abandons it.
    Cancel { task_id: i32 },
}

/// Where a message goes: to any runner, or to the runner that owns the workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    AnyRunner,
    Runner(String),
}

impl Route {
    pub fn from_column(route: Option<&str>) -> Self {
        match route {
            Some(runner) => Route::Runner(runner.to_owned()),
            None => Route::AnyRunner,
        }
    }
}

impl QueueMessage {
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a two-variant enum of integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_their_wire_form() {
        for message in [QueueMessage::Run { task_id: 7 }, QueueMessage::Cancel { task_id: 9 }] {
            assert_eq!(QueueMessage::from_bytes(&message.to_bytes()).ok(), Some(message));
        }
        assert_eq!(
            String::from_utf8(QueueMessage::Run { task_id: 3 }.to_bytes()).ok().as_deref(),
            Some(r#"{"kind":"run","task_id":3}"#)
        );
        assert!(QueueMessage::from_bytes(b"{\"kind\":\"explode\"}").is_err());
    }
}
