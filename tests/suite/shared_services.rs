//! Restarts of the shared PostgreSQL and RabbitMQ with work in flight. These tests restart
//! services every other distributed test uses, so `scripts/test` runs this module on its own,
//! after the rest, one test at a time.

use std::time::Duration;
use tests::{Mode, Options, TestApp, live_members};

const T: Duration = Duration::from_secs(60);

#[actix_web::test]
async fn broker_restart_with_work_in_flight_loses_nothing_and_consumers_come_back() {
    let app = TestApp::in_mode(Mode::Distributed, Options::default()).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Runs").await).await;
    let pid = session.pid_of(&app.db, &id).await;

    run("rabbitmqctl", &["stop_app"]);
    // Accepted while the broker is down: committed now, published by the relay later.
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    run("rabbitmqctl", &["start_app"]);
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(live_members(pid).is_empty());
    // The worker's consumer reconnected and re-declared its queues.
    session.start_job(&app.job_id("Quick").await).await;
}

#[actix_web::test]
async fn database_restart_during_a_stop_loses_nothing_and_requests_meanwhile_get_503() {
    let app = TestApp::in_mode(Mode::Distributed, Options { grace_period_ms: 3_000, ..Options::default() }).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    session.wait_session_state(&id, "Stopping", T).await;

    // While the runner waits out the grace period, and must then record the outcome.
    let version = cluster_version();
    run("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "stop"]);
    let url = format!("{}/api/tasks", app.base);
    let token = session.token.clone();
    // In its own task, so that PostgreSQL is started again even if the request panics.
    let resp = actix_web::rt::spawn(async move {
        tests::http::request("GET", &url, &[("X-RestSvcSessionId", token.as_str()), ("Accept", "application/json")])
            .await
    })
    .await;
    run("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "start"]);
    let resp = resp.expect("the request completed");
    assert_eq!(resp.status, 503, "the database is down, not the request wrong: {}", resp.body);
    assert_eq!(resp.header("retry-after"), Some("5"));
    assert_eq!(resp.json()["StatusCode"], 503);

    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(live_members(pid).is_empty());
    assert_eq!(session.session(&id).await["State"], "Stopped");
    session.start_job(&app.job_id("Quick").await).await;
}

/// A database outage longer than the runner deadline, during a stop's grace period: whichever
/// wins afterwards — the sweeper failing the task, or the runner (its lease renewed, the task
/// still its own) completing it — the task and the session tell the same story.
#[actix_web::test]
async fn a_database_outage_past_the_runner_deadline_leaves_task_and_session_agreeing() {
    let options = Options { grace_period_ms: 2_500, runner_deadline_ms: 2_000, ..Options::default() };
    let app = TestApp::in_mode(Mode::Distributed, options).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Counter").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    session.wait_session_state(&id, "Stopping", T).await;

    let version = cluster_version();
    run("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "stop"]);
    // Longer than the deadline and the grace period: the lease lapses before SIGKILL is due.
    tokio::time::sleep(Duration::from_secs(4)).await;
    run("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "start"]);

    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    // A runner that stood down puts the session back; one that went on has stopped it.
    tests::wait_until("the session to leave Stopping", T, || async {
        session.session(&id).await["State"] != "Stopping"
    })
    .await;
    let state = session.session(&id).await["State"].as_str().expect("state").to_owned();
    if done["Result"]["Success"] == true {
        assert_eq!(state, "Stopped", "{done}");
        assert!(live_members(pid).is_empty());
    } else {
        assert!(done["Result"]["Message"].as_str().expect("message").contains("stopped responding"), "{done}");
        assert_eq!(state, "Working", "the runner did not finish a stop the sweeper failed: {done}");
        assert!(!live_members(pid).is_empty(), "no SIGKILL after the task was failed");
    }
}

fn cluster_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max()
        .expect("a cluster version")
}

fn run(program: &str, args: &[&str]) {
    let status =
        std::process::Command::new(program).args(args).stdout(std::process::Stdio::null()).status().expect(program);
    assert!(status.success(), "{program} {args:?} failed");
}
