//! The JSON of Vercel's v2 API, as `@vercel/sandbox` 3.x validates it with zod: timestamps are
//! numbers (ms), optional fields are omitted (never `null`), statuses are from its closed enum.
//!
//! A named sandbox is a workload spec of the team's tenant with Vercel's attributes in
//! `meta.vercel` (its project is the spec query's `scope`, its tags are `labels`). A session is
//! one of its workloads: `sbx_` and the workload's id without hyphens. The current session is
//! the newest. A session's timeout is its scheduled stop's time less its start (else the
//! sandbox's), so extending it is moving that task.

use entity::outcome::End;
use entity::{WorkloadState, task, workload, workload_spec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What every session reports as its working directory (it is `<sandbox_dir>/<spec id>` here).
pub const CWD: &str = "/vercel/sandbox";
pub const REGION: &str = "iad1";
/// The `meta` key of v2's named sandboxes, and of v1's sandboxes (kept apart: neither API
/// lists the other's).
pub const FACE: &str = "vercel";
pub const FACE_V1: &str = "vercel_v1";

/// Vercel's attributes of a named sandbox, as stored in `meta.vercel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attributes {
    /// The project (the listing scope).
    pub scope: String,
    pub persistent: bool,
    /// Its tags.
    pub labels: BTreeMap<String, String>,
    pub vcpus: i64,
    /// MB.
    pub memory: i64,
    /// ms: a new session's timeout.
    pub timeout: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// ms: how long the snapshots its stops take are kept (none or 0: for ever).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_expiration: Option<i64>,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            scope: String::new(),
            persistent: true,
            labels: BTreeMap::new(),
            vcpus: 2,
            memory: 4096,
            timeout: 300_000,
            runtime: None,
            snapshot_expiration: None,
        }
    }
}

impl Attributes {
    pub fn of(spec: &workload_spec::Model) -> Self {
        spec.face_meta(FACE).or_else(|| spec.face_meta(FACE_V1)).unwrap_or_default()
    }
}

/// Whether a spec is a named sandbox (made by this face).
pub fn is_sandbox(spec: &workload_spec::Model) -> bool {
    spec.is_of_face(FACE)
}

/// A session's id: `sbx_` and its workload's id without hyphens.
pub fn session_id(workload_id: &str) -> String {
    format!("sbx_{}", workload_id.replace('-', ""))
}

/// The workload id a session id names, if it is one's canonical spelling.
pub fn workload_id(session_id: &str) -> Option<String> {
    let simple = session_id.strip_prefix("sbx_")?;
    let uuid = uuid::Uuid::try_parse(simple).ok()?;
    (uuid.simple().to_string() == simple).then(|| uuid.hyphenated().to_string())
}

fn ms(at: &chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

/// What a session's JSON is made of: its workload, its stops (requested and pending) and its
/// scheduled stop.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts {
    pub stop_requested_at: Option<chrono::DateTime<chrono::Utc>>,
    pub stop_pending: bool,
    pub timeout_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A session's status, from the closed enum of the SDK.
pub fn status(workload: &workload::Model, facts: &SessionFacts) -> &'static str {
    match workload.state {
        WorkloadState::Starting => "pending",
        WorkloadState::Running if facts.stop_pending => "stopping",
        WorkloadState::Running => "running",
        WorkloadState::Stopping => "stopping",
        WorkloadState::Stopped => match workload.ended() {
            Some(End::StartFailed { .. }) => "failed",
            _ => "stopped",
        },
    }
}

/// A session's timeout (ms): its scheduled stop's time less its start, else the sandbox's.
pub fn timeout(workload: &workload::Model, facts: &SessionFacts, attributes: &Attributes) -> i64 {
    facts.timeout_at.map_or(attributes.timeout, |at| (at - workload.created_at).num_milliseconds().max(0))
}

pub fn session(spec: &workload_spec::Model, workload: &workload::Model, facts: &SessionFacts) -> Value {
    let a = Attributes::of(spec);
    let mut json = json!({
        "id": session_id(&workload.id),
        "memory": a.memory,
        "vcpus": a.vcpus,
        "region": REGION,
        "runtime": a.runtime.clone().unwrap_or_else(|| "node24".to_owned()),
        "timeout": timeout(workload, facts, &a),
        "status": status(workload, facts),
        "requestedAt": ms(&workload.created_at),
        "createdAt": ms(&workload.created_at),
        "updatedAt": ms(workload.ended_at.as_ref().unwrap_or(&workload.created_at)),
        "cwd": CWD,
        "projectId": a.scope,
        "sourceSandboxName": spec.name,
    });
    if workload.state != WorkloadState::Starting {
        json["startedAt"] = json!(ms(&workload.created_at));
    }
    if let Some(at) = facts.stop_requested_at {
        json["requestedStopAt"] = json!(ms(&at));
    }
    if let Some(ended) = &workload.ended_at {
        json["stoppedAt"] = json!(ms(ended));
        json["duration"] = json!((*ended - workload.created_at).num_milliseconds().max(0));
        // Measured by the kernel (the cgroup's CPU time, or the process tree's); network
        // transfer is not measured here, so it is 0.
        json["activeCpuDurationMs"] = json!(workload.cpu_usec.unwrap_or(0) / 1000);
        json["networkTransfer"] = json!({"ingress": 0, "egress": 0});
    }
    json
}

pub fn sandbox(spec: &workload_spec::Model, current: &workload::Model, facts: &SessionFacts) -> Value {
    let a = Attributes::of(spec);
    let session_updated = current.ended_at.as_ref().unwrap_or(&current.created_at);
    let mut json = json!({
        "name": spec.name,
        "persistent": a.persistent,
        "createdAt": ms(&spec.created_at),
        "updatedAt": ms(&spec.updated_at),
        "currentSessionId": session_id(&current.id),
        "status": status(current, facts),
        "statusUpdatedAt": ms(session_updated),
        "region": REGION,
        "vcpus": a.vcpus,
        "memory": a.memory,
        "timeout": a.timeout,
        "cwd": CWD,
        "tags": a.labels,
    });
    if let Some(runtime) = &a.runtime {
        json["runtime"] = json!(runtime);
    }
    if let Some(expiration) = a.snapshot_expiration {
        json["snapshotExpiration"] = json!(expiration);
    }
    json
}

/// `SessionFacts` of each of these workloads, from their stop tasks (oldest first).
pub fn facts_of(stops: &[task::Model], workload_id: &str) -> SessionFacts {
    let mine = || stops.iter().filter(move |t| t.target_id == workload_id);
    SessionFacts {
        stop_requested_at: mine().filter(|t| t.not_before.is_none()).map(|t| t.created_at).next(),
        stop_pending: mine().any(|t| t.not_before.is_none() && !t.state.is_final()),
        timeout_at: mine().filter_map(|t| t.not_before.filter(|_| t.state != entity::TaskState::Cancelled)).next_back(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_name_workloads_in_one_spelling() {
        let workload = "0b9d2b1e-7c6f-4f3e-9a51-2f1c0c3b5d11";
        let id = session_id(workload);
        assert_eq!(id, "sbx_0b9d2b1e7c6f4f3e9a512f1c0c3b5d11");
        assert_eq!(workload_id(&id).as_deref(), Some(workload));
        for other in
            ["sbx_0B9D2B1E7C6F4F3E9A512F1C0C3B5D11", workload, "sbx_", "sbx_x", "0b9d2b1e7c6f4f3e9a512f1c0c3b5d11"]
        {
            assert_eq!(workload_id(other), None, "{other}");
        }
    }
}
