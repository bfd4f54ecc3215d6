//! What is kept in memory changes no answer: two `api` instances on one database (distributed
//! mode), each with its own memory of finished tasks, agree with the database. A poll never
//! reports a state older than one the client saw; a task deleted on one is gone on both;
//! another user's task stays a 404 however often it was read.

use std::time::Duration;
use tests::http::{JSON, request};
use tests::{Mode, Options, Session, TestApp, wait_until};

const T: Duration = Duration::from_secs(30);

/// The order a task's states come in: a poll may only ever move forward.
fn rank(state: &str) -> u8 {
    match state {
        "Queued" => 0,
        "Running" => 1,
        "Finished" => 2,
        other => panic!("unknown state {other}"),
    }
}

#[actix_web::test]
async fn two_api_processes_never_answer_an_older_state_and_forget_a_deleted_task_together() {
    let app = TestApp::in_mode(Mode::Distributed, Options::default()).await;
    let other_base = app.another_api().await;
    let a = app.logon().await;
    // The same logon session reaches the other instance (it is in the database).
    let b = a.on(&other_base);

    // A stop polled on both, alternately, from submission to its end: never backwards.
    let session = a.start_job(&app.job_id("Runs").await).await;
    let task = a.act(&format!("/api/backupSessions/{session}?action=stop")).await;
    let id = task["TaskId"].as_str().expect("id").to_owned();
    let mut seen = 0;
    let mut polls = 0;
    loop {
        let client = if polls % 2 == 0 { &a } else { &b };
        let state = client.task(&id).await["State"].as_str().expect("state").to_owned();
        assert!(rank(&state) >= seen, "poll {polls} went back to {state}");
        seen = rank(&state);
        polls += 1;
        if state == "Finished" {
            break;
        }
        assert!(polls < 2_000, "the stop did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Both now answer it from memory, many times over, the same.
    let fields = |task: serde_json::Value| (task["State"].clone(), task["Result"].clone(), task["Operation"].clone());
    for _ in 0..20 {
        assert_eq!(fields(a.task(&id).await), fields(b.task(&id).await));
    }

    // Another user never gets it, cached or not.
    api::passwords::add_user(
        &app.db,
        entity::tenant::DEFAULT,
        "eve",
        "eve-password",
        api::veeam::Role::PortalAdministrator,
    )
    .await
    .expect("user");
    for base in [&app.base, &other_base] {
        let eve = Session::logon(base, "eve", "eve-password").await;
        assert_eq!(eve.call("GET", &format!("/api/tasks/{id}"), JSON).await.status, 404);
    }

    // Deleted on one instance: gone there at once, and on the other once its database's
    // notification arrives (no time-based expiry: a finished task is kept for ever otherwise).
    assert_eq!(b.call("DELETE", &format!("/api/tasks/{id}"), "").await.status, 204);
    assert_eq!(b.call("GET", &format!("/api/tasks/{id}"), JSON).await.status, 404, "at once where deleted");
    let url = format!("{}/api/tasks/{id}", app.base);
    let token = a.token.clone();
    wait_until("the other instance forgets the deleted task", T, || {
        let (url, token) = (url.clone(), token.clone());
        async move { request("GET", &url, &[("X-RestSvcSessionId", &token), ("Accept", JSON)]).await.status == 404 }
    })
    .await;
}

/// Credentials stop working on every `api` process once they stop being valid: a token revoked
/// in the database (as `api token revoke` does, from another process), a logon session logged
/// off on one instance, each after it was used on both. (Credentials are read from the
/// database on every request, so that this holds at once: see docs/benchmarks.md.)
#[actix_web::test]
async fn a_revoked_token_and_a_deleted_logon_session_stop_working_on_every_api_process() {
    let app = TestApp::in_mode(Mode::Distributed, Options::default()).await;
    let other_base = app.another_api().await;
    let here = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let there = tests::daytona::Daytona { base: other_base.clone(), token: here.token.clone() };
    let kept = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    for client in [&here, &there] {
        for _ in 0..5 {
            assert_eq!(client.call("GET", "/api/sandbox", None).await.status, 200, "read, then kept");
        }
    }
    let hash = api::passwords::token_hash(&here.token);
    let (row, _) = entity::store::tenants::authenticate(&app.db, &hash).await.expect("db").expect("live");
    assert!(entity::store::tenants::revoke_token(&app.db, row.id).await.expect("db"));
    for client in [&here, &there] {
        wait_until("the revoked token is refused", T, || async {
            client.call("GET", "/api/sandbox", None).await.status == 401
        })
        .await;
    }
    // Another token of the tenant is untouched.
    let kept_there = tests::daytona::Daytona { base: other_base.clone(), token: kept.token.clone() };
    assert_eq!(kept.call("GET", "/api/sandbox", None).await.status, 200);
    assert_eq!(kept_there.call("GET", "/api/sandbox", None).await.status, 200);

    // A logon session used on both instances, logged off on one.
    let a = app.logon().await;
    let b = a.on(&other_base);
    for session in [&a, &b] {
        for _ in 0..5 {
            assert_eq!(session.call("GET", "/api/tasks", JSON).await.status, 200);
        }
    }
    let id = tests::xml::text(&a.logon.body, "SessionId").expect("id");
    assert_eq!(b.call("DELETE", &format!("/api/logonSessions/{id}"), "").await.status, 204);
    assert_eq!(b.call("GET", "/api/tasks", JSON).await.status, 401, "at once where it was deleted");
    wait_until("the other instance refuses the deleted session", T, || async {
        a.call("GET", "/api/tasks", JSON).await.status == 401
    })
    .await;
}
