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

/// A runner killed while PostgreSQL is still committing the pid of the workload it is starting
/// (a slow commit: here a trigger that sleeps on that write): the command never ran (its gate
/// held it), and the record commits after the runner is gone. The restarted runner's re-run
/// believes only what it can verify: the task fails saying the start was interrupted, the
/// workload has ended, and no process of it is alive. Never `Running` without a process.
#[actix_web::test]
async fn a_start_whose_pid_commits_after_its_runner_died_is_never_running_without_a_process() {
    phantom_start(false).await;
}

/// The same, with the runner back before the late commit lands (it re-adopts the task while the
/// workload still reads `Starting`).
#[actix_web::test]
async fn a_start_whose_pid_commits_after_its_runner_came_back_is_never_running_without_a_process() {
    phantom_start(true).await;
}

async fn phantom_start(back_before_the_commit: bool) {
    use sea_orm::ConnectionTrait;
    let app = TestApp::distributed().await;
    app.db
        .execute_unprepared(
            "CREATE FUNCTION slow_pid() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$ \
             LANGUAGE plpgsql; CREATE TRIGGER slow_pid BEFORE UPDATE ON workloads FOR EACH ROW \
             WHEN (OLD.pid IS NULL AND NEW.pid IS NOT NULL) EXECUTE FUNCTION slow_pid();",
        )
        .await
        .expect("trigger");
    let runner = runner_id();
    let mut worker = app.start_worker(&runner);
    let session = app.logon().await;
    let task = session.act(&format!("/api/jobs/{}?action=start", app.job_id("Runs").await)).await;
    let task_id = task["TaskId"].as_str().expect("id").to_owned();
    wait_until("the runner's write of the pid to be committing", T, || async {
        tests::backends_waiting(&app.db, "wait_event = 'PgSleep'").await == 1
    })
    .await;
    worker.kill9();
    app.db.execute_unprepared("DROP TRIGGER slow_pid ON workloads").await.expect("drop");
    let number: i32 = task_id[5..].parse().expect("number");
    let workload = wait_for_workload_of(&app, number).await;
    let _back = back_before_the_commit.then(|| app.start_worker(&runner));
    wait_until("the pid to be committed after the runner died", T, || async {
        entity::store::workloads::find(&app.db, &workload).await.expect("db").is_some_and(|w| w.pid.is_some())
    })
    .await;
    if !back_before_the_commit {
        let recorded = entity::store::workloads::find(&app.db, &workload).await.expect("db").expect("workload");
        assert_eq!(recorded.state, entity::WorkloadState::Running, "the phantom: recorded running");
        assert!(tests::marked_processes(&workload).is_empty(), "and nothing of it runs");
    }
    let _back = _back.unwrap_or_else(|| app.start_worker(&runner));
    let done = session.wait_finished(&task_id, T).await;
    assert_eq!(done["Result"]["Success"], false, "{done}");
    assert!(done["Result"]["Message"].as_str().expect("message").contains("interrupted"), "{done}");
    let row = entity::store::tasks::get(&app.db, number).await.expect("db").expect("task");
    assert_eq!(row.attempt, 2, "the restarted runner's re-run decided it");
    let ended = entity::store::workloads::find(&app.db, &workload).await.expect("db").expect("workload");
    assert_eq!(ended.state, entity::WorkloadState::Stopped, "{ended:?}");
    assert!(tests::marked_processes(&workload).is_empty());
    // The job can be started again, once.
    let again = session.start_job(&app.job_id("Runs").await).await;
    assert!(!tests::running_processes(&again).await.is_empty());
}

/// The workload that the start task `number` created.
async fn wait_for_workload_of(app: &TestApp, number: i32) -> String {
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(workload) = entity::store::workloads::find_by_start_task(&app.db, number).await.expect("db") {
            return workload.id;
        }
        assert!(std::time::Instant::now() < deadline, "the start created no workload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A runner paused (SIGSTOP) holds the one shared-queue delivery its prefetch allows, and its
/// connection stays up far longer than the test (a 60 s AMQP heartbeat): yet every start
/// accepted meanwhile is taken by the other runner, the held one within `claim_within_ms`
/// (3 s) of its publish, and each runs once; the paused runner's copy changes nothing when it
/// wakes.
#[actix_web::test]
async fn starts_held_by_a_paused_runner_are_taken_by_another_and_run_once() {
    let app = TestApp::spawn(Options { distributed: true, amqp_heartbeat_secs: 60, ..Options::default() }).await;
    let (frozen_id, live_id) = (runner_id(), runner_id());
    let frozen = app.start_worker(&frozen_id);
    let _live = app.start_worker(&live_id);
    let session = app.logon().await;
    session.start_job(&app.job_id("Quick").await).await;
    frozen.pause();
    let jobs = ["Runs", "Broken", "Stubborn", "Counter"];
    let mut tasks = Vec::new();
    for job in jobs {
        let task = session.act(&format!("/api/jobs/{}?action=start", app.job_id(job).await)).await;
        tasks.push(task["TaskId"].as_str().expect("id")[5..].parse::<i32>().expect("number"));
    }
    // Well within the 30 s after which any unclaimed task is published again, and the 120 s
    // after which RabbitMQ would drop the paused runner.
    for task in &tasks {
        session.wait_finished(&format!("task-{task}"), Duration::from_secs(15)).await;
        let row = entity::store::tasks::get(&app.db, *task).await.expect("db").expect("task");
        assert_eq!((row.runner_id.as_deref(), row.attempt), (Some(live_id.as_str()), 1), "the live runner, once");
    }
    frozen.resume();
    // The woken runner handles its copy first (its deliveries are in order): the claim fails.
    let woken = entity::store::now();
    wait_until("the woken runner to heartbeat", T, || async {
        let runners = entity::store::runners::silent_since(&app.db, woken).await.expect("db");
        !runners.iter().any(|r| r.id == frozen_id)
    })
    .await;
    for job in jobs {
        let sessions = session.get_json(&format!("/api/jobs/{}/backupSessions", app.job_id(job).await)).await;
        let count = sessions["Refs"].as_array().map(Vec::len);
        assert_eq!(count, Some(1), "{job}: nothing started twice: {sessions}");
    }
}
