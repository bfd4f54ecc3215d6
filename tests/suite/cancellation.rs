//! DELETE /api/tasks/{id} on a running stop: the runner is told at once and does not escalate.

use std::time::Duration;
use tests::{Mode, Options, TestApp, in_both_modes, live_members};

async fn cancelling_a_stop_during_its_grace_period_sends_no_sigkill_and_the_session_reports_working(mode: Mode) {
    // A 30 s heartbeat: the runner's fallback poll of cancel flags cannot explain a fast cancel.
    let options = Options { grace_period_ms: 60_000, heartbeat_interval_ms: 30_000, ..Options::default() };
    let app = TestApp::in_mode(mode, options).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let task_id = task["TaskId"].as_str().expect("id");
    session.wait_session_state(&id, "Stopping", Duration::from_secs(10)).await;

    assert_eq!(session.call("DELETE", &format!("/api/tasks/{task_id}"), "").await.status, 204);
    // Far sooner than the grace period or the next heartbeat: the runner was told at once.
    let done = session.wait_finished(task_id, Duration::from_secs(5)).await;
    assert_eq!(done["Result"]["Success"], false, "{done}");
    let message = done["Result"]["Message"].as_str().expect("message");
    assert!(message.contains("cancelled") && message.contains("without SIGKILL"), "{message}");
    assert!(!live_members(pid).is_empty(), "no SIGKILL was sent");
    assert_eq!(session.session(&id).await["State"], "Working", "the session reports its true state");
    assert_eq!(session.task(task_id).await["State"], "Finished", "the cancelled task stays readable");
}

/// The cancel message is lost (here: never sent; only the database flag is set): the runner's
/// heartbeat reads the flag and cancels all the same.
async fn a_lost_cancel_message_is_made_up_for_by_the_runners_heartbeat(mode: Mode) {
    let app = TestApp::in_mode(mode, Options { grace_period_ms: 60_000, ..Options::default() }).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let task_id = task["TaskId"].as_str().expect("id");
    session.wait_session_state(&id, "Stopping", Duration::from_secs(10)).await;
    let row = entity::store::tasks::get(&app.db, task_id[5..].parse().expect("n")).await.expect("db").expect("row");
    assert!(entity::store::tasks::request_cancel(&app.db, &row, row.user_id).await.expect("flag"));
    let done = session.wait_finished(task_id, Duration::from_secs(10)).await;
    assert_eq!(done["Result"]["Success"], false, "{done}");
    assert_eq!(session.session(&id).await["State"], "Working");
}

in_both_modes!(
    cancelling_a_stop_during_its_grace_period_sends_no_sigkill_and_the_session_reports_working,
    a_lost_cancel_message_is_made_up_for_by_the_runners_heartbeat,
);
