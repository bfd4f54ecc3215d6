//! Graceful shutdown: SIGTERM lets in-flight work finish, exits cleanly, and leaves workloads
//! running for the runner that comes back.

use std::time::Duration;
use tests::{ADMIN, EmbeddedServer, Options, Session, TestApp, live_members, short_id};

const T: Duration = Duration::from_secs(30);

#[actix_web::test]
async fn a_worker_given_sigterm_finishes_its_stop_exits_and_leaves_other_workloads_running() {
    let app = TestApp::spawn(Options { distributed: true, grace_period_ms: 2_000, ..Options::default() }).await;
    let runner = format!("w-{}", short_id());
    let mut worker = app.start_worker(&runner);
    let session = app.logon().await;
    let running = session.start_job(&app.job_id("Runs").await).await;
    let running_pid = session.pid_of(&app.db, &running).await;
    let stubborn = session.start_job(&app.job_id("Stubborn").await).await;
    let stubborn_pid = session.pid_of(&app.db, &stubborn).await;
    let stop = session.act(&format!("/api/backupSessions/{stubborn}?action=stop")).await;
    session.wait_session_state(&stubborn, "Stopping", T).await;

    worker.terminate();
    let status = worker.wait_exit(T).await.expect("the worker exits after SIGTERM");
    assert!(status.success(), "a clean exit: {status}");
    // The stop in flight was finished before the exit (SIGKILL after its grace period).
    let done = session.task(stop["TaskId"].as_str().expect("id")).await;
    assert_eq!(done["State"], "Finished", "{done}");
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(live_members(stubborn_pid).is_empty());
    assert!(!live_members(running_pid).is_empty(), "other workloads outlive their runner");

    let _back = app.start_worker(&runner);
    let stop = session.act(&format!("/api/backupSessions/{running}?action=stop")).await;
    let done = session.wait_finished(stop["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "re-adopted and stopped: {done}");
    assert!(live_members(running_pid).is_empty());
}

#[actix_web::test]
async fn an_embedded_server_given_sigterm_exits_cleanly_and_re_adopts_its_workloads_when_restarted() {
    let server = EmbeddedServer::new();
    let mut api = server.start().await;
    let session = Session::logon(&server.base(), ADMIN.0, ADMIN.1).await;
    let db = server.db().await;
    let job = entity::store::specs::list(&db).await.expect("jobs").into_iter().find(|j| j.name == "Runs").expect("job");
    let id = session.start_job(&job.id).await;
    let pid = session.pid_of(&db, &id).await;

    api.terminate();
    let status = api.wait_exit(T).await.expect("the server exits after SIGTERM");
    assert!(status.success(), "a clean exit: {status}");
    assert!(!live_members(pid).is_empty(), "the workload outlives the server");

    let _api = server.start().await;
    let stop = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let done = session.wait_finished(stop["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(live_members(pid).is_empty());
}
