//! Distributed mode: PostgreSQL + RabbitMQ, the API in-process, runners as `worker` processes.

use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::time::Duration;
use tests::{Options, TestApp, amqp_url, live_members, wait_until};

const T: Duration = Duration::from_secs(30);

fn runner_id() -> String {
    format!("w-{}", tests::short_id())
}

async fn queue_depth(queue: &str) -> u32 {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ is required (TEST_AMQP_URL)");
    let channel = connection.create_channel().await.expect("channel");
    let options = QueueDeclareOptions { passive: true, ..Default::default() };
    channel.queue_declare(queue.into(), options, FieldTable::default()).await.map(|q| q.message_count()).unwrap_or(0)
}

#[actix_web::test]
async fn a_stop_goes_through_rabbitmq_to_the_worker_that_owns_the_session() {
    let app = TestApp::distributed().await;
    let (first, second) = (runner_id(), runner_id());
    let _w1 = app.start_worker(&first);
    let _w2 = app.start_worker(&second);
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Runs").await).await;
    let row = entity::store::workloads::find(&app.db, &id).await.expect("db").expect("session");
    assert!([&first, &second].contains(&&row.runner_id), "owned by one of the runners: {}", row.runner_id);
    let pid = row.pid.expect("pid");
    assert!(!live_members(pid).is_empty());
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    let stop_row = entity::store::tasks::get(&app.db, done["TaskId"].as_str().expect("id")[5..].parse().expect("n"))
        .await
        .expect("db")
        .expect("row");
    assert_eq!(stop_row.runner_id.as_deref(), Some(row.runner_id.as_str()), "routed to the owner");
    assert!(live_members(pid).is_empty());
    assert_eq!(session.session(&id).await["State"], "Stopped");
    // The runner's log lines carry the task's span: task, attempt, workload and runner.
    let log = std::fs::read_to_string(app.dir.join(format!("worker-{}.log", row.runner_id))).expect("worker log");
    let line = log.lines().find(|l| l.contains("SIGTERM sent")).unwrap_or_else(|| panic!("{log}"));
    let task = done["TaskId"].as_str().expect("id")[5..].to_owned();
    for field in [format!("task{{id={task} attempt=1"), format!("workload={id}"), format!("runner={}", row.runner_id)] {
        assert!(line.contains(&field), "{field} missing from: {line}");
    }
    assert!(!line.contains('\u{1b}'), "no colour codes in a log file: {line}");
}

#[actix_web::test]
async fn a_worker_killed_mid_stop_re_adopts_its_processes_and_finishes_when_it_comes_back() {
    let app = TestApp::spawn(Options { distributed: true, grace_period_ms: 3_000, ..Options::default() }).await;
    let runner = runner_id();
    let mut worker = app.start_worker(&runner);
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    session.wait_session_state(&id, "Stopping", T).await;

    worker.kill9();
    assert!(!live_members(pid).is_empty(), "the workload outlives its runner");
    assert_eq!(session.task(task["TaskId"].as_str().expect("id")).await["State"], "Running", "not lost, not failed");
    let _back = app.start_worker(&runner);
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(live_members(pid).is_empty(), "left: {:?}", live_members(pid));
    assert_eq!(session.session(&id).await["State"], "Stopped");
}

#[actix_web::test]
async fn a_runner_gone_past_the_deadline_makes_its_tasks_fail_with_a_message_naming_it() {
    let app = TestApp::spawn(Options { distributed: true, runner_deadline_ms: 2_000, ..Options::default() }).await;
    let runner = runner_id();
    let mut worker = app.start_worker(&runner);
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Runs").await).await;
    worker.kill9();
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], false, "{done}");
    let message = done["Result"]["Message"].as_str().expect("message");
    assert!(message.contains(&runner), "{message}");
}

#[actix_web::test]
async fn a_queued_task_cancelled_before_any_worker_took_it_never_runs() {
    let app = TestApp::distributed().await;
    let session = app.logon().await;
    let job = app.job_id("Quick").await;
    let task = session.act(&format!("/api/jobs/{job}?action=start")).await;
    let task_id = task["TaskId"].as_str().expect("id");
    assert_eq!(session.call("DELETE", &format!("/api/tasks/{task_id}"), "").await.status, 204);
    let cancelled = session.task(task_id).await;
    assert_eq!(cancelled["State"], "Finished");
    assert_eq!(cancelled["Result"]["Success"], false);
    assert!(cancelled["Result"]["Message"].as_str().expect("message").contains("cancelled"));

    let _worker = app.start_worker(&runner_id());
    // The shared queue is FIFO: once a later start has run, the cancelled one was delivered first.
    session.start_job(&job).await;
    let sessions = session.get_json(&format!("/api/jobs/{job}/backupSessions")).await;
    assert_eq!(sessions["Refs"].as_array().expect("refs").len(), 1, "the cancelled start never ran");
}

#[actix_web::test]
async fn an_unreadable_message_is_dead_lettered_and_the_worker_goes_on() {
    let app = TestApp::distributed().await;
    let _worker = app.start_worker(&runner_id());
    let prefix = app.settings.runner.queue_prefix.clone();
    let session = app.logon().await;
    session.start_job(&app.job_id("Quick").await).await;
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await.expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .basic_publish(
            "".into(),
            format!("{prefix}.tasks").as_str().into(),
            BasicPublishOptions::default(),
            b"not json",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    let dead = format!("{prefix}.dead");
    wait_until("the message in the dead-letter queue", T, || async { queue_depth(&dead).await == 1 }).await;
    session.start_job(&app.job_id("Runs").await).await;
}

#[actix_web::test]
async fn a_long_stop_holds_no_unacknowledged_delivery() {
    let app = TestApp::spawn(Options { distributed: true, grace_period_ms: 60_000, ..Options::default() }).await;
    let _worker = app.start_worker(&runner_id());
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    session.wait_session_state(&id, "Stopping", T).await;
    // The stop runs for up to a minute; its delivery was acked once the claim was committed,
    // so RabbitMQ's consumer ack timeout can never fire on it.
    let prefix = format!("{}.", app.settings.runner.queue_prefix);
    let output = std::process::Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "name", "messages_unacknowledged", "messages_ready"])
        .output()
        .expect("rabbitmqctl");
    let listing = String::from_utf8_lossy(&output.stdout);
    let ours: Vec<&str> = listing.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert!(ours.len() >= 3, "{listing}");
    for line in ours {
        let counts: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert_eq!(counts, ["0", "0"], "{line}");
    }
}
