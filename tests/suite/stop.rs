//! Start and stop on real processes: 202 + Task, polling, session states, the process group.

use std::time::Duration;
use tests::http::JSON;
use tests::veeam::related_session;
use tests::{Mode, Options, Session, TestApp, in_both_modes, live_members, wait_until, xml};

const T: Duration = Duration::from_secs(20);

async fn started(app: &TestApp, session: &Session, job: &str) -> (String, i32) {
    let id = session.start_job(&app.job_id(job).await).await;
    let pid = session.pid_of(&app.db, &id).await;
    (id, pid)
}

async fn start_runs_a_real_process_group_and_stop_in_xml_terminates_all_of_it(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let (id, pid) = started(&app, &session, "Runs").await;
    let entity = session.session(&id).await;
    assert_eq!((entity["State"].as_str(), entity["Result"].as_str()), (Some("Working"), Some("None")));
    assert!(entity["Name"].as_str().expect("name").starts_with("Runs@20"), "{entity}");
    wait_until("the shell and its two sleeps", T, || async { live_members(pid).len() == 3 }).await;

    let resp = session.call("POST", &format!("/api/backupSessions/{id}?action=stop"), "").await;
    assert_eq!(resp.status, 202, "{}", resp.body);
    assert_eq!(xml::root_namespace(&resp.body).as_deref(), Some("http://www.veeam.com/ent/v1.0"));
    assert_eq!(xml::text(&resp.body, "Operation").as_deref(), Some("StopJobSession"));
    assert_eq!(xml::text(&resp.body, "State").as_deref(), Some("Running"));
    assert_eq!(xml::text(&resp.body, "Result"), None, "no Result while running");
    assert_eq!(xml::attr(&resp.body, "Link", "Rel").as_deref(), Some("Delete"));
    let task_id = xml::text(&resp.body, "TaskId").expect("TaskId");
    assert!(task_id.starts_with("task-"));
    assert_eq!(resp.header("location"), Some(format!("{}/api/tasks/{task_id}", app.base).as_str()));
    assert_eq!(xml::element_names(&resp.body)[..6], ["Task", "Links", "Link", "TaskId", "State", "Operation"]);

    let done = session.wait_finished(&task_id, T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(done["Result"]["Message"].as_str().expect("message").contains("exited after SIGTERM"), "{done}");
    let stopped = session.session(&id).await;
    assert_eq!(stopped["State"], "Stopped");
    assert!(stopped["EndTimeUTC"].is_string(), "{stopped}");
    assert!(live_members(pid).is_empty(), "processes left: {:?}", live_members(pid));
    let xml = session.call("GET", &format!("/api/tasks/{task_id}"), "").await.body;
    assert_eq!(xml::attr(&xml, "Result", "Success").as_deref(), Some("true"));
}

async fn stop_in_json_answers_202_with_a_json_task_and_finishes(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let (id, pid) = started(&app, &session, "Runs").await;
    let resp = session.call("POST", &format!("/api/backupSessions/{id}?action=stop"), JSON).await;
    assert_eq!(resp.status, 202);
    assert!(resp.content_type().starts_with("application/json"));
    let task = resp.json();
    assert_eq!(task["State"], "Running");
    assert_eq!(task["Operation"], "StopJobSession");
    assert_eq!(task["Type"], "Task");
    assert!(task["Result"].is_null());
    assert_eq!(task["Links"][0]["Rel"], "Delete");
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true);
    assert_eq!(related_session(&done), id);
    assert!(live_members(pid).is_empty());
}

async fn stop_of_a_session_that_ignores_sigterm_kills_it_after_grace(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let (id, pid) = started(&app, &session, "Stubborn").await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let stopping = session.wait_session_state(&id, "Stopping", T).await;
    assert!(stopping["EndTimeUTC"].is_null());
    assert!(!live_members(pid).is_empty(), "SIGTERM is ignored, so it is still alive during the grace period");
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    let message = done["Result"]["Message"].as_str().expect("message");
    assert!(message.contains("SIGKILL"), "{message}");
    assert!(live_members(pid).is_empty());
    let stopped = session.session(&id).await;
    assert_eq!((stopped["State"].as_str(), stopped["Result"].as_str()), (Some("Stopped"), Some("Failed")));
    assert!(stopped["FailureMessage"].as_str().expect("why").contains("SIGKILL"));
}

async fn a_job_that_exits_by_itself_leaves_its_session_stopped_with_the_result_of_its_exit(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let quick = session.start_job(&app.job_id("Quick").await).await;
    let done = session.wait_session_state(&quick, "Stopped", T).await;
    assert_eq!(done["Result"], "Success");
    assert!(done["FailureMessage"].is_null());
    let broken = session.start_job(&app.job_id("Broken").await).await;
    let failed = session.wait_session_state(&broken, "Stopped", T).await;
    assert_eq!(failed["Result"], "Failed");
    assert!(failed["FailureMessage"].as_str().expect("why").contains("exited with code 3"), "{failed}");
}

async fn stopping_an_already_stopped_session_finishes_the_task_with_a_clear_message(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Quick").await).await;
    session.wait_session_state(&id, "Stopped", T).await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true);
    assert!(done["Result"]["Message"].as_str().expect("message").contains("already stopped"), "{done}");
}

async fn stop_job_stops_the_jobs_running_session_and_start_job_links_the_new_session(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let job = app.job_id("Runs").await;
    let task = session.act(&format!("/api/jobs/{job}?action=start")).await;
    assert_eq!(task["Operation"], "StartJob");
    let started = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(started["Result"]["Message"], "Job \"Runs\" triggered to start.");
    let id = related_session(&started);
    let pid = session.pid_of(&app.db, &id).await;
    let again = session.act(&format!("/api/jobs/{job}?action=start")).await;
    let refused = session.wait_finished(again["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(refused["Result"]["Success"], false, "a running job is not started twice: {refused}");

    let stop = session.act(&format!("/api/jobs/{job}?action=stop")).await;
    assert_eq!(stop["Operation"], "StopJob");
    let done = session.wait_finished(stop["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert_eq!(session.session(&id).await["State"], "Stopped");
    assert!(live_members(pid).is_empty());
    let sessions = session.get_json(&format!("/api/jobs/{job}/backupSessions?format=Entity")).await;
    assert_eq!(sessions["BackupJobSessions"].as_array().expect("list").len(), 1);
}

in_both_modes!(
    start_runs_a_real_process_group_and_stop_in_xml_terminates_all_of_it,
    stop_in_json_answers_202_with_a_json_task_and_finishes,
    stop_of_a_session_that_ignores_sigterm_kills_it_after_grace,
    a_job_that_exits_by_itself_leaves_its_session_stopped_with_the_result_of_its_exit,
    stopping_an_already_stopped_session_finishes_the_task_with_a_clear_message,
    stop_job_stops_the_jobs_running_session_and_start_job_links_the_new_session,
);
