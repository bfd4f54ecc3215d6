//! Restarts of the shared PostgreSQL and RabbitMQ with work in flight. These tests restart
//! services every other distributed test uses, so `scripts/test` runs this module on its own,
//! after the rest, one test at a time.

use std::time::Duration;
use tests::daytona::{Daytona, assert_error};
use tests::{Mode, Options, TestApp, live_members};

const T: Duration = Duration::from_secs(60);

#[actix_web::test]
async fn broker_restart_with_work_in_flight_loses_nothing_and_consumers_come_back() {
    let app = TestApp::in_mode(Mode::Distributed, Options::default()).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Runs").await).await;
    let pid = session.pid_of(&app.db, &id).await;

    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let sandbox = acme.ok("POST", "/api/sandbox", Some(&serde_json::json!({"name": "sb"}))).await;
    let sandbox = sandbox["id"].as_str().expect("id").to_owned();
    let workload = entity::store::workloads::active_of_spec(&app.db, &sandbox).await.expect("db").expect("active").id;

    run("rabbitmqctl", &["stop_app"]);
    // Accepted while the broker is down: committed now, published by the relay later.
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let stopping = acme.ok("POST", &format!("/api/sandbox/{sandbox}/stop"), None).await;
    run("rabbitmqctl", &["start_app"]);
    assert_eq!(stopping["state"], "stopping", "{stopping}");
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(live_members(pid).is_empty());
    acme.wait_state(&sandbox, "stopped", T).await;
    assert_eq!(tests::marked_processes(&workload), Vec::<i32>::new());
    // The worker's consumer reconnected and re-declared its queues.
    session.start_job(&app.job_id("Quick").await).await;
}

#[actix_web::test]
async fn database_restart_during_a_stop_loses_nothing_and_requests_meanwhile_get_503() {
    let app = TestApp::in_mode(Mode::Distributed, Options { grace_period_ms: 3_000, ..Options::default() }).await;
    let session = app.logon().await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    session.wait_session_state(&id, "Stopping", T).await;

    // While the runner waits out the grace period, and must then record the outcome.
    let version = cluster_version();
    run("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "stop"]);
    let url = format!("{}/api/tasks", app.base);
    let token = session.token.clone();
    // In its own task, so that PostgreSQL is started again even if the requests panic.
    let (base, bearer) = (app.base.clone(), acme.token.clone());
    let resps = actix_web::rt::spawn(async move {
        let veeam = tests::http::request(
            "GET",
            &url,
            &[("X-RestSvcSessionId", token.as_str()), ("Accept", "application/json")],
        )
        .await;
        let daytona = Daytona { base, token: bearer };
        let list = daytona.call("GET", "/api/sandbox", None).await;
        let create = daytona.call("POST", "/api/sandbox", Some(&serde_json::json!({"name": "during"}))).await;
        (veeam, list, create)
    })
    .await;
    run("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "start"]);
    let (resp, list, create) = resps.expect("the requests completed");
    assert_eq!(resp.status, 503, "the database is down, not the request wrong: {}", resp.body);
    assert_eq!(resp.header("retry-after"), Some("5"));
    assert_eq!(resp.json()["StatusCode"], 503);
    for daytona in [&list, &create] {
        assert_error(daytona, 503, "temporarily unavailable");
        assert_eq!(daytona.header("retry-after"), Some("5"));
    }

    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(live_members(pid).is_empty());
    assert_eq!(session.session(&id).await["State"], "Stopped");
    session.start_job(&app.job_id("Quick").await).await;
    // Nothing of the create refused during the outage was written: its name is free.
    assert_error(&acme.call("GET", "/api/sandbox/during", None).await, 404, "not found");
    acme.ok("POST", "/api/sandbox", Some(&serde_json::json!({"name": "during"}))).await;
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
