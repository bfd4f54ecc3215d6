//! Runner settings, shared by the `worker` binary and the runner embedded in `api`.
//!
//! Layering: defaults < config file (TOML) < environment < flags. Clap reads the environment
//! and the flags (`RunnerArgs`); `apply` lays them over what the file said.

use clap::Args;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerSettings {
    /// Stable identity: a runner that restarts with the same id re-adopts its processes.
    pub runner_id: String,
    /// How long a stop waits after SIGTERM before it sends SIGKILL.
    pub grace_period_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// A runner silent for longer than this is gone: its tasks finish with a failure naming it.
    pub runner_deadline_ms: u64,
    /// On SIGTERM or SIGINT, how long in-flight operations may take to finish before the process
    /// exits anyway (what is left is re-adopted when the runner comes back).
    pub shutdown_timeout_ms: u64,
    /// How often the relay looks for unpublished tasks and the sweeper for gone runners.
    pub relay_interval_ms: u64,
    /// A queued task whose message was confirmed this long ago but never claimed is published again.
    pub republish_after_ms: u64,
    /// A task on the shared queue that no runner has claimed this long after its publish, while
    /// the queue has nothing else waiting (so a runner holds it: paused, stalled), is published
    /// again for the other runners; claims are compare-and-set, so it still runs once.
    pub claim_within_ms: u64,
    /// RabbitMQ prefetch of the runner's own queue (unacknowledged deliveries).
    pub prefetch: u16,
    /// RabbitMQ prefetch of the shared queue: what one runner may hold before it claims. Kept
    /// small, so that a runner that stalls (paused, swapping) hoards little.
    pub shared_prefetch: u16,
    /// AMQP heartbeat: a dead link, or a paused runner, is detected after about twice this, and
    /// the deliveries it held go to other runners. Used unless the AMQP URL sets `heartbeat`.
    pub amqp_heartbeat_secs: u16,
    /// Prefix of every queue and exchange name.
    pub queue_prefix: String,
    /// RabbitMQ deletes a queue unused (no consumer, no declare) for this long (`x-expires`):
    /// for the queues of retired runners, and for tests. Unset: queues live forever. A queue
    /// keeps the arguments it was declared with, so change this only together with the prefix.
    pub queue_expires_ms: Option<u64>,
    /// How workloads are contained: `auto` (cgroup v2 when usable, else the process tree),
    /// `cgroup` (refuse to start without it) or `process-tree`. See `contain`.
    pub containment: String,
    /// A directory of a cgroup2 hierarchy to contain workloads under, instead of the mounts found.
    pub cgroup_root: Option<String>,
    /// The directory made under the cgroup root for workloads: `<root>/<prefix>/<workload id>`.
    pub cgroup_prefix: String,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            runner_id: default_runner_id(),
            grace_period_ms: 10_000,
            heartbeat_interval_ms: 1_000,
            runner_deadline_ms: 60_000,
            shutdown_timeout_ms: 15_000,
            relay_interval_ms: 500,
            republish_after_ms: 30_000,
            claim_within_ms: 3_000,
            prefetch: 32,
            shared_prefetch: 1,
            amqp_heartbeat_secs: 10,
            queue_prefix: "taskq".to_owned(),
            queue_expires_ms: None,
            containment: "auto".to_owned(),
            cgroup_root: None,
            cgroup_prefix: "taskq".to_owned(),
        }
    }
}

impl RunnerSettings {
    /// The containment mechanism these settings choose (an error when `cgroup` is demanded and
    /// not usable, or the choice is unknown).
    pub fn mechanism(&self) -> Result<crate::contain::Mechanism, String> {
        crate::contain::Mechanism::detect(
            &self.containment,
            self.cgroup_root.as_deref().map(std::path::Path::new),
            &self.cgroup_prefix,
        )
    }

    pub fn grace_period(&self) -> Duration {
        Duration::from_millis(self.grace_period_ms)
    }
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
    pub fn runner_deadline(&self) -> Duration {
        Duration::from_millis(self.runner_deadline_ms)
    }
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
    pub fn relay_interval(&self) -> Duration {
        Duration::from_millis(self.relay_interval_ms)
    }
    pub fn republish_after(&self) -> Duration {
        Duration::from_millis(self.republish_after_ms)
    }

    pub fn claim_within(&self) -> Duration {
        Duration::from_millis(self.claim_within_ms)
    }
}

/// The host name: the default identity of a distributed runner.
fn default_runner_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "runner".to_owned())
}

/// Environment variables and flags for the runner settings.
#[derive(Debug, Clone, Default, Args)]
pub struct RunnerArgs {
    #[arg(long, env = "RUNNER_ID")]
    pub runner_id: Option<String>,
    #[arg(long, env = "GRACE_PERIOD_MS")]
    pub grace_period_ms: Option<u64>,
    #[arg(long, env = "HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    #[arg(long, env = "RUNNER_DEADLINE_MS")]
    pub runner_deadline_ms: Option<u64>,
    #[arg(long, env = "SHUTDOWN_TIMEOUT_MS")]
    pub shutdown_timeout_ms: Option<u64>,
    #[arg(long, env = "RELAY_INTERVAL_MS")]
    pub relay_interval_ms: Option<u64>,
    #[arg(long, env = "REPUBLISH_AFTER_MS")]
    pub republish_after_ms: Option<u64>,
    #[arg(long, env = "CLAIM_WITHIN_MS")]
    pub claim_within_ms: Option<u64>,
    #[arg(long, env = "PREFETCH")]
    pub prefetch: Option<u16>,
    #[arg(long, env = "SHARED_PREFETCH")]
    pub shared_prefetch: Option<u16>,
    #[arg(long, env = "AMQP_HEARTBEAT_SECS")]
    pub amqp_heartbeat_secs: Option<u16>,
    #[arg(long, env = "QUEUE_PREFIX")]
    pub queue_prefix: Option<String>,
    #[arg(long, env = "QUEUE_EXPIRES_MS")]
    pub queue_expires_ms: Option<u64>,
    #[arg(long, env = "CONTAINMENT")]
    pub containment: Option<String>,
    #[arg(long, env = "CGROUP_ROOT")]
    pub cgroup_root: Option<String>,
    #[arg(long, env = "CGROUP_PREFIX")]
    pub cgroup_prefix: Option<String>,
}

impl RunnerArgs {
    pub fn apply(self, settings: &mut RunnerSettings) {
        if let Some(v) = self.runner_id {
            settings.runner_id = v;
        }
        if let Some(v) = self.grace_period_ms {
            settings.grace_period_ms = v;
        }
        if let Some(v) = self.heartbeat_interval_ms {
            settings.heartbeat_interval_ms = v;
        }
        if let Some(v) = self.runner_deadline_ms {
            settings.runner_deadline_ms = v;
        }
        if let Some(v) = self.shutdown_timeout_ms {
            settings.shutdown_timeout_ms = v;
        }
        if let Some(v) = self.relay_interval_ms {
            settings.relay_interval_ms = v;
        }
        if let Some(v) = self.republish_after_ms {
            settings.republish_after_ms = v;
        }
        if let Some(v) = self.claim_within_ms {
            settings.claim_within_ms = v;
        }
        if let Some(v) = self.prefetch {
            settings.prefetch = v;
        }
        if let Some(v) = self.shared_prefetch {
            settings.shared_prefetch = v;
        }
        if let Some(v) = self.amqp_heartbeat_secs {
            settings.amqp_heartbeat_secs = v;
        }
        if let Some(v) = self.queue_prefix {
            settings.queue_prefix = v;
        }
        if self.queue_expires_ms.is_some() {
            settings.queue_expires_ms = self.queue_expires_ms;
        }
        if let Some(v) = self.containment {
            settings.containment = v;
        }
        if self.cgroup_root.is_some() {
            settings.cgroup_root = self.cgroup_root;
        }
        if let Some(v) = self.cgroup_prefix {
            settings.cgroup_prefix = v;
        }
    }
}

/// Reads a TOML settings file into `T`, naming the file in the error.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
