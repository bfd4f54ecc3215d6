//! A Veeam Enterprise Manager client: Basic logon, a logged-on session that sends its token,
//! and the task and session helpers the Veeam tests use.

use crate::http::{JSON, Resp, request};
use base64::Engine;
use serde_json::Value;
use std::time::Duration;

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A logged-on Veeam client: sends the token header on every request.
pub struct Session {
    pub base: String,
    pub token: String,
    pub logon: Resp,
}

impl Session {
    pub async fn logon(base: &str, user: &str, password: &str) -> Self {
        let logon =
            request("POST", &format!("{base}/api/sessionMngr/?v=latest"), &[("Authorization", &basic(user, password))])
                .await;
        assert_eq!(logon.status, 201, "logon failed: {}", logon.body);
        let token = logon.header("X-RestSvcSessionId").expect("token header").to_owned();
        Self { base: base.to_owned(), token, logon }
    }

    /// `path` is under the base URL (`/api/...`); `accept` may be empty for no Accept header.
    /// The same logon session, used against another `api` instance at `base`.
    pub fn on(&self, base: &str) -> Self {
        let logon =
            Resp { status: self.logon.status, headers: self.logon.headers.clone(), body: self.logon.body.clone() };
        Self { base: base.to_owned(), token: self.token.clone(), logon }
    }

    pub async fn call(&self, method: &str, path: &str, accept: &str) -> Resp {
        let mut headers = vec![("X-RestSvcSessionId", self.token.as_str())];
        if !accept.is_empty() {
            headers.push(("Accept", accept));
        }
        request(method, &format!("{}{path}", self.base), &headers).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.call("GET", path, JSON).await;
        assert_eq!(resp.status, 200, "GET {path}: {}", resp.body);
        resp.json()
    }

    /// POSTs an action and returns the 202 Task (JSON).
    pub async fn act(&self, path: &str) -> Value {
        let resp = self.call("POST", path, JSON).await;
        assert_eq!(resp.status, 202, "POST {path}: {}", resp.body);
        resp.json()
    }

    pub async fn task(&self, task_id: &str) -> Value {
        self.get_json(&format!("/api/tasks/{task_id}")).await
    }

    pub async fn session(&self, session_id: &str) -> Value {
        self.get_json(&format!("/api/backupSessions/{session_id}?format=Entity")).await
    }

    /// Waits for the task to be Finished and returns it.
    pub async fn wait_finished(&self, task_id: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let task = self.task(task_id).await;
            if task["State"] == "Finished" {
                return task;
            }
            assert!(std::time::Instant::now() < deadline, "task {task_id} not finished after {timeout:?}: {task}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts `job_id` and returns the new session's id once the start task has finished.
    pub async fn start_job(&self, job_id: &str) -> String {
        let task = self.act(&format!("/api/jobs/{job_id}?action=start")).await;
        let done = self.wait_finished(task["TaskId"].as_str().expect("TaskId"), Duration::from_secs(20)).await;
        assert_eq!(done["Result"]["Success"], true, "start failed: {done}");
        related_session(&done)
    }

    pub async fn wait_session_state(&self, session_id: &str, state: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let session = self.session(session_id).await;
            if session["State"] == state {
                return session;
            }
            assert!(std::time::Instant::now() < deadline, "session not {state} after {timeout:?}: {session}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The group leader's pid, read from the database through the store.
    pub async fn pid_of(&self, db: &sea_orm::DatabaseConnection, session_id: &str) -> i32 {
        entity::store::workloads::find(db, session_id).await.expect("db").expect("session").pid.expect("pid")
    }
}

/// The id of the session a finished task links with Rel="Related".
pub fn related_session(task: &Value) -> String {
    let links = task["Links"].as_array().expect("links");
    let related = links.iter().find(|l| l["Rel"] == "Related").unwrap_or_else(|| panic!("no Related link: {task}"));
    let href = related["Href"].as_str().expect("href");
    href.rsplit('/').next().expect("id").split('?').next().expect("id").to_owned()
}
