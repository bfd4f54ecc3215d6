//! A Vercel Sandbox client over raw HTTP, as `@vercel/sandbox` calls the API: `Authorization:
//! Bearer <API token>`, `teamId` on every request, `content-type: application/json` always.

use crate::http::{Resp, request_with_body};
use serde_json::Value;

pub struct Vercel {
    pub base: String,
    pub token: String,
    pub team: String,
}

impl Vercel {
    /// A client of `team` with a new API token of that tenant.
    pub async fn for_team(base: &str, db: &sea_orm::DatabaseConnection, team: &str) -> Self {
        let daytona = crate::daytona::Daytona::for_tenant(base, db, team).await;
        Self { base: base.to_owned(), token: daytona.token, team: team.to_owned() }
    }

    /// `path` (with or without a query) with this client's `teamId` added.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let join = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{join}teamId={}", self.base, self.team);
        let auth = format!("Bearer {}", self.token);
        let headers = [("Authorization", auth.as_str()), ("content-type", "application/json")];
        let text = body.map(Value::to_string);
        request_with_body(method, &url, &headers, text.as_deref()).await
    }

    /// A call that must answer 200 with JSON; the JSON.
    pub async fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let resp = self.call(method, path, body).await;
        assert_eq!(resp.status, 200, "{method} {path}: {}", resp.body);
        resp.json()
    }
}

/// Asserts Vercel's error body: `{"error": {"code", "message"}}`.
pub fn assert_error(resp: &Resp, status: u16, code: &str) {
    assert_eq!(resp.status, status, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// Asserts what the SDK's zod schema of a session requires: numbers for sizes and times, the
/// closed status enum, `cwd`, and no `null` anywhere.
pub fn assert_strict_session(session: &Value) {
    for key in ["id", "region", "status", "cwd", "runtime"] {
        assert!(session[key].is_string(), "{key}: {session}");
    }
    for key in ["memory", "vcpus", "timeout", "requestedAt", "createdAt", "updatedAt"] {
        assert!(session[key].is_number(), "{key}: {session}");
    }
    let statuses = ["pending", "running", "stopping", "stopped", "failed", "aborted", "snapshotting"];
    assert!(statuses.contains(&session["status"].as_str().unwrap_or_default()), "{session}");
    assert!(session.as_object().is_some_and(|o| o.values().all(|v| !v.is_null())), "no null: {session}");
}
