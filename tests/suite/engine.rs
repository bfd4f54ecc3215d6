//! The engine's front door, driven as a face drives it: waiting for a task is event-driven, in
//! both modes (in distributed mode the task is finished by a `worker` in another process).

use std::time::{Duration, Instant};
use tests::{Mode, Options, TestApp, in_both_modes};

fn row_id(task: &serde_json::Value) -> i32 {
    task["TaskId"].as_str().expect("TaskId")[5..].parse().expect("number")
}

async fn waiting_for_a_task_wakes_on_its_change_and_not_before(mode: Mode) {
    let app = TestApp::in_mode(mode, Options { grace_period_ms: 2_000, ..Options::default() }).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let stop = row_id(&session.act(&format!("/api/backupSessions/{id}?action=stop")).await);

    // Still in its grace period: the wait runs out and says so.
    let started = Instant::now();
    let running = app.engine.wait_finished(stop, Duration::from_millis(500)).await.expect("db").expect("task");
    assert_eq!(running.state, entity::TaskState::Running);
    assert!(started.elapsed() >= Duration::from_millis(500));

    // Then it finishes (SIGKILL after the grace period) and the waiter hears of it. Nothing
    // polls: without the event the wait would run to its deadline.
    let finished = app.engine.wait_finished(stop, Duration::from_secs(60)).await.expect("db").expect("task");
    assert_eq!(finished.state, entity::TaskState::Finished);
    assert_eq!(finished.success, Some(true), "{:?}", finished.outcome);
    let how = match finished.ended() {
        Some(entity::outcome::Outcome::Stopped { workload, how, .. }) if workload == id => how,
        other => panic!("{other:?}"),
    };
    assert_eq!(how, entity::outcome::StopHow::Killed { grace_ms: 2_000 }, "the engine records facts");
    assert!(started.elapsed() < Duration::from_secs(20), "woken by the change: {:?}", started.elapsed());

    assert!(app.engine.wait_finished(i32::MAX, Duration::from_secs(5)).await.expect("db").is_none(), "no such task");
}

in_both_modes!(waiting_for_a_task_wakes_on_its_change_and_not_before);

/// A queued task cancelled in one process wakes a waiter at once (no runner is running).
#[actix_web::test]
async fn a_cancel_before_start_wakes_the_waiter() {
    let app = TestApp::distributed().await;
    let session = app.logon().await;
    let task = session.act(&format!("/api/jobs/{}?action=start", app.job_id("Quick").await)).await;
    let waiter = {
        let engine = app.engine.clone();
        let id = row_id(&task);
        actix_web::rt::spawn(async move { engine.wait_finished(id, Duration::from_secs(60)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        session.call("DELETE", &format!("/api/tasks/{}", task["TaskId"].as_str().expect("id")), "").await.status,
        204
    );
    let started = Instant::now();
    let done = waiter.await.expect("join").expect("db").expect("task");
    assert_eq!(done.state, entity::TaskState::Finished);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}
