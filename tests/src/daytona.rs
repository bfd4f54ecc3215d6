//! A Daytona client over raw HTTP, as the generated clients call the API: `Authorization:
//! Bearer <API token>`, `Accept: application/json`, JSON bodies.

use crate::http::{Resp, request_with_body};
use serde_json::Value;
use std::time::Duration;

pub struct Daytona {
    pub base: String,
    pub token: String,
}

impl Daytona {
    /// A client with a new API token of `tenant` (created in the store, as `api token create` does).
    pub async fn for_tenant(base: &str, db: &sea_orm::DatabaseConnection, tenant: &str) -> Self {
        let tenant = entity::store::tenants::find_or_create(db, tenant).await.expect("tenant");
        let token = api::passwords::api_token().expect("token");
        entity::store::tenants::create_token(db, tenant.id, "tests", &api::passwords::token_hash(&token))
            .await
            .expect("token row");
        Self { base: base.to_owned(), token }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", auth.as_str()), ("Accept", "application/json")];
        let text = body.map(Value::to_string);
        if text.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        request_with_body(method, &format!("{}{path}", self.base), &headers, text.as_deref()).await
    }

    /// A call that must answer 200 with JSON; the JSON.
    pub async fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let resp = self.call(method, path, body).await;
        assert_eq!(resp.status, 200, "{method} {path}: {}", resp.body);
        assert!(resp.header("Content-Type").is_some_and(|t| t.starts_with("application/json")), "{:?}", resp.headers);
        resp.json()
    }

    /// Polls `GET /api/sandbox/{id}` until its state is `state` (Daytona's SDK does the same).
    pub async fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let sandbox = self.ok("GET", &format!("/api/sandbox/{id}"), None).await;
            if sandbox["state"] == state {
                return sandbox;
            }
            assert!(std::time::Instant::now() < deadline, "not {state} after {timeout:?}: {sandbox}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The engine tasks aimed at a sandbox, oldest first.
pub async fn tasks_of(db: &sea_orm::DatabaseConnection, id: &str) -> Vec<entity::task::Model> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    entity::task::Entity::find()
        .filter(entity::task::Column::TargetId.eq(id))
        .order_by_asc(entity::task::Column::Id)
        .all(db)
        .await
        .expect("db")
}

/// Makes the sandbox's scheduled tasks due now, as if their time had come (so that a test need
/// not race a short schedule); how many.
pub async fn make_due(db: &sea_orm::DatabaseConnection, id: &str) -> u64 {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let scheduled = entity::store::tasks::scheduled_for(db, id).await.expect("db");
    let ids: Vec<i32> = scheduled.iter().map(|t| t.id).collect();
    entity::task::Entity::update_many()
        .col_expr(entity::task::Column::NotBefore, Expr::value(chrono::Utc::now() - chrono::TimeDelta::seconds(1)))
        .filter(entity::task::Column::Id.is_in(ids))
        .exec(db)
        .await
        .expect("db")
        .rows_affected
}

/// Asserts that `sandbox` has every field Daytona's strict Python client requires, non-null and
/// of the exact type (integers for sizes, strings for times, objects for env and labels).
pub fn assert_strict_sandbox(sandbox: &Value) {
    for key in ["id", "organizationId", "name", "user", "target", "toolboxProxyUrl", "state", "desiredState"] {
        assert!(sandbox[key].is_string(), "{key}: {sandbox}");
    }
    for key in ["public", "networkBlockAll", "kvm"] {
        assert!(sandbox[key].is_boolean(), "{key}: {sandbox}");
    }
    for key in ["cpu", "gpu", "memory", "disk"] {
        assert!(sandbox[key].is_i64() && !sandbox[key].to_string().contains('.'), "{key}: {sandbox}");
    }
    for key in ["env", "labels"] {
        assert!(sandbox[key].is_object(), "{key}: {sandbox}");
    }
    let toolbox = sandbox["toolboxProxyUrl"].as_str().unwrap_or_default();
    assert!(toolbox.starts_with("http") && toolbox.ends_with("/toolbox"), "absolute, never empty: {sandbox}");
    for key in ["createdAt", "updatedAt", "lastActivityAt"] {
        let text = sandbox[key].as_str().unwrap_or_else(|| panic!("{key}: {sandbox}"));
        assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{key}: {text}");
    }
}

/// Asserts the task resource's error body, RFC 9457 problem details (`application/problem+json`:
/// `{type, title, status, detail}`), in no vendor's dialect.
pub fn assert_problem(resp: &Resp, status: u16, detail_has: &str) {
    assert_eq!(resp.status, status, "{}", resp.body);
    assert!(resp.header("Content-Type").is_some_and(|t| t == "application/problem+json"), "{:?}", resp.headers);
    let body = resp.json();
    assert_eq!(
        (body["status"].as_u64(), body["type"].as_str()),
        (Some(u64::from(status)), Some("about:blank")),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    let detail = body["detail"].as_str().unwrap_or_else(|| panic!("detail: {body}"));
    assert!(detail.contains(detail_has), "{detail:?} should say {detail_has:?}");
}

/// Asserts Daytona's error body: `{path, timestamp, statusCode, error, message}`.
pub fn assert_error(resp: &Resp, status: u16, message_has: &str) {
    assert_eq!(resp.status, status, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(body["path"].as_str().is_some_and(|p| p.starts_with("/api/")), "{body}");
    assert!(body["timestamp"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()), "{body}");
    assert!(body["error"].is_string(), "{body}");
    let message = body["message"].as_str().unwrap_or_else(|| panic!("message: {body}"));
    assert!(message.contains(message_has), "{message:?} should say {message_has:?}");
}
