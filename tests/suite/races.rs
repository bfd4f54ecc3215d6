//! Races and faults: the same request several times at once, a runner killed between two
//! writes or paused past its deadline, a broker link that goes silent.

use std::time::{Duration, Instant};
use tests::http::JSON;
use tests::proxy::Proxy;
use tests::{
    EmbeddedServer, Mode, Options, Session, TestApp, in_both_modes, live_members, short_id, wait_until,
    workload_processes,
};

const T: Duration = Duration::from_secs(30);

fn task_id(task: &serde_json::Value) -> String {
    task["TaskId"].as_str().expect("TaskId").to_owned()
}

/// Lines of `terms.log`, which the Counter job writes once per SIGTERM it receives.
fn sigterms(app_dir: &std::path::Path) -> usize {
    std::fs::read_to_string(app_dir.join("work/terms.log")).map(|log| log.lines().count()).unwrap_or(0)
}

async fn concurrent_starts_of_one_idle_job_start_it_once(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    // In distributed mode, three runners race (the one `in_mode` starts, and two more).
    let _more: Vec<_> = match mode {
        Mode::Distributed => (0..2).map(|_| app.start_worker(&format!("w-{}", short_id()))).collect(),
        Mode::Embedded => Vec::new(),
    };
    let session = app.logon().await;
    let job = app.job_id("Runs").await;
    let start = format!("/api/jobs/{job}?action=start");
    // A race is a matter of chance: several rounds, each ending with a stop.
    for round in 0..3 {
        let tasks = futures_util::future::join_all((0..12).map(|_| session.act(&start))).await;
        let mut done = Vec::new();
        for task in &tasks {
            done.push(session.wait_finished(&task_id(task), T).await);
        }
        let won: Vec<_> = done.iter().filter(|t| t["Result"]["Success"] == true).collect();
        assert_eq!(won.len(), 1, "round {round}: one start wins: {done:?}");
        let winner = tests::veeam::related_session(won[0]);
        for lost in done.iter().filter(|t| t["Result"]["Success"] == false) {
            assert!(lost["Result"]["Message"].as_str().expect("message").contains("already running"), "{lost}");
            assert_eq!(tests::veeam::related_session(lost), winner, "names the running session");
        }
        let sessions = session.get_json(&format!("/api/jobs/{job}/backupSessions")).await;
        assert_eq!(sessions["Refs"].as_array().expect("refs").len(), round + 1, "one session a round: {sessions}");
        let pid = session.pid_of(&app.db, &winner).await;
        wait_until("the one group's three processes", T, || async { live_members(pid).len() == 3 }).await;
        assert_eq!(workload_processes(&app.dir).len(), 3, "nothing else runs");
        let stop = session.act(&format!("/api/backupSessions/{winner}?action=stop")).await;
        session.wait_finished(&task_id(&stop), T).await;
        assert!(workload_processes(&app.dir).is_empty());
    }
}

async fn duplicate_stops_signal_the_workload_once_and_all_tell_its_true_outcome(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Counter").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let stop = format!("/api/backupSessions/{id}?action=stop");
    let mut tasks = futures_util::future::join_all((0..3).map(|_| session.act(&stop))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    tasks.push(session.act(&stop).await);
    let mut messages = Vec::new();
    for task in &tasks {
        let done = session.wait_finished(&task_id(task), T).await;
        assert_eq!(done["Result"]["Success"], true, "{done}");
        messages.push(done["Result"]["Message"].as_str().expect("message").to_owned());
    }
    assert!(messages[0].contains("killed with SIGKILL"), "{messages:?}");
    assert!(messages.iter().all(|m| *m == messages[0]), "one story: {messages:?}");
    assert_eq!(sigterms(&app.dir), 1, "signalled once");
    let stopped = session.session(&id).await;
    assert_eq!(stopped["State"], "Stopped");
    assert!(stopped["FailureMessage"].as_str().expect("message").contains("SIGKILL"), "{stopped}");
    assert!(live_members(pid).is_empty());
}

/// Waits until the runner has claimed `task` (the row is Running), then a moment more: a claimed
/// stop joins its session's flight within milliseconds, which nothing outside the runner can see.
async fn claimed(app: &TestApp, task: &str) {
    let id: i32 = task[5..].parse().expect("number");
    wait_until("the runner to claim the task", T, || async {
        entity::store::tasks::get(&app.db, id).await.expect("db").is_some_and(|t| t.state == entity::TaskState::Running)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn cancelling_one_of_two_stops_leaves_the_other_to_finish_the_stop(mode: Mode) {
    let app = TestApp::in_mode(mode, Options { grace_period_ms: 3_000, ..Options::default() }).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Counter").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let stop = format!("/api/backupSessions/{id}?action=stop");
    let first = task_id(&session.act(&stop).await);
    session.wait_session_state(&id, "Stopping", T).await;
    let second = task_id(&session.act(&stop).await);
    wait_until("the first SIGTERM", T, || async { sigterms(&app.dir) == 1 }).await;
    claimed(&app, &second).await;
    assert_eq!(session.call("DELETE", &format!("/api/tasks/{first}"), "").await.status, 204);
    let cancelled = session.wait_finished(&first, T).await;
    assert_eq!(cancelled["Result"]["Success"], false, "{cancelled}");
    assert!(cancelled["Result"]["Message"].as_str().expect("message").contains("goes on"), "{cancelled}");
    assert_eq!(session.session(&id).await["State"], "Stopping", "the other stop still proceeds");
    let done = session.wait_finished(&second, T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(done["Result"]["Message"].as_str().expect("message").contains("SIGKILL"), "{done}");
    assert_eq!(sigterms(&app.dir), 1);
    assert!(live_members(pid).is_empty());

    // Cancelling every stop abandons it: no SIGKILL, the session Working again, its processes alive.
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let stop = format!("/api/backupSessions/{id}?action=stop");
    let (a, b) = (task_id(&session.act(&stop).await), task_id(&session.act(&stop).await));
    session.wait_session_state(&id, "Stopping", T).await;
    claimed(&app, &a).await;
    claimed(&app, &b).await;
    for task in [&a, &b] {
        assert_eq!(session.call("DELETE", &format!("/api/tasks/{task}"), "").await.status, 204);
    }
    let (a, b) = (session.wait_finished(&a, T).await, session.wait_finished(&b, T).await);
    assert_eq!((a["Result"]["Success"].as_bool(), b["Result"]["Success"].as_bool()), (Some(false), Some(false)));
    let abandoned =
        [&a, &b].iter().filter(|t| t["Result"]["Message"].as_str().is_some_and(|m| m.contains("abandoned"))).count();
    assert_eq!(abandoned, 1, "the last one out reports the abandon: {a} {b}");
    assert_eq!(session.session(&id).await["State"], "Working");
    assert!(!live_members(pid).is_empty());
}

/// A runner killed between spawning a workload and recording its pid: the command never ran
/// untracked, and the re-run starts it exactly once.
async fn a_runner_killed_between_spawn_and_record_starts_the_workload_exactly_once(mode: Mode) {
    const CRASH: [(&str, &str); 1] = [("TASKQ_CRASH_AT", "start_workload.spawned")];
    match mode {
        Mode::Distributed => {
            let app = TestApp::spawn(Options { distributed: true, ..Options::default() }).await;
            let runner = format!("w-{}", short_id());
            let first = app.start_worker_with(&runner, &CRASH);
            let session = app.logon().await;
            crash_then_restart(&session, &app.db, &app.dir, first, async { app.start_worker(&runner) }).await;
        }
        Mode::Embedded => {
            let server = EmbeddedServer::new();
            let mut command = server.command();
            command.env("ADMIN_PASSWORD", tests::ADMIN.1).envs(CRASH);
            let first = server.start_with(command).await;
            let session = Session::logon(&server.base(), tests::ADMIN.0, tests::ADMIN.1).await;
            crash_then_restart(&session, &server.db().await, &server.dir, first, server.start()).await;
        }
    }
}

async fn crash_then_restart(
    session: &Session,
    db: &sea_orm::DatabaseConnection,
    dir: &std::path::Path,
    mut crashing: tests::Proc,
    restart: impl std::future::Future<Output = tests::Proc>,
) {
    let job = entity::store::specs::list(db).await.expect("jobs").into_iter().find(|j| j.name == "Runs").expect("job");
    let task = session.act(&format!("/api/jobs/{}?action=start", job.id)).await;
    wait_until("the runner to crash after the spawn", T, || {
        let exited = crashing.exited();
        async move { exited }
    })
    .await;
    // Its gate saw the pipe close and gave up: the command never ran.
    wait_until("no workload process", Duration::from_secs(5), || async { workload_processes(dir).is_empty() }).await;
    let _back = restart.await;
    let id = started_exactly_once(session, db, dir, &task).await;
    let stop = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    assert_eq!(session.wait_finished(&task_id(&stop), T).await["Result"]["Success"], true);
    assert!(workload_processes(dir).is_empty(), "nothing survives the stop");
}

/// The database fails just as a spawned workload's pid is to be recorded: the gated process is
/// ended without running the command, the operation runs again, and the start succeeds with
/// exactly one tracked process group (never a Success over an untracked process).
async fn a_start_whose_pid_cannot_be_recorded_is_retried_and_runs_nothing_untracked(mode: Mode) {
    const FAIL: [(&str, &str); 1] = [("TASKQ_FAIL_ONCE_AT", "start_workload.spawned")];
    match mode {
        Mode::Distributed => {
            let app = TestApp::spawn(Options { distributed: true, ..Options::default() }).await;
            let _worker = app.start_worker_with(&format!("w-{}", short_id()), &FAIL);
            let session = app.logon().await;
            start_exactly_once(&session, &app.db, &app.dir).await;
        }
        Mode::Embedded => {
            let server = EmbeddedServer::new();
            let mut command = server.command();
            command.env("ADMIN_PASSWORD", tests::ADMIN.1).envs(FAIL);
            let _api = server.start_with(command).await;
            let session = Session::logon(&server.base(), tests::ADMIN.0, tests::ADMIN.1).await;
            start_exactly_once(&session, &server.db().await, &server.dir).await;
        }
    }
}

async fn start_exactly_once(session: &Session, db: &sea_orm::DatabaseConnection, dir: &std::path::Path) {
    let job = entity::store::specs::list(db).await.expect("jobs").into_iter().find(|j| j.name == "Runs").expect("job");
    let task = session.act(&format!("/api/jobs/{}?action=start", job.id)).await;
    started_exactly_once(session, db, dir, &task).await;
}

/// Waits for the start `task`; checks that its session is Working and that every workload
/// process belongs to the one group it recorded. The session's id.
async fn started_exactly_once(
    session: &Session,
    db: &sea_orm::DatabaseConnection,
    dir: &std::path::Path,
    task: &serde_json::Value,
) -> String {
    let done = session.wait_finished(&task_id(task), T).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    let id = tests::veeam::related_session(&done);
    assert_eq!(session.session(&id).await["State"], "Working");
    let pid = session.pid_of(db, &id).await;
    wait_until("the group's three processes", T, || async { live_members(pid).len() == 3 }).await;
    let mut all = workload_processes(dir);
    let mut group = live_members(pid);
    all.sort_unstable();
    group.sort_unstable();
    assert_eq!(all, group, "every workload process belongs to the recorded group");
    id
}

/// A runner paused past its deadline: the sweeper fails its stop, and the runner, waking up,
/// stands down instead of completing it, so the two records agree.
#[actix_web::test]
async fn a_runner_paused_past_its_deadline_stands_down_instead_of_finishing_the_stop() {
    let options =
        Options { distributed: true, runner_deadline_ms: 2_000, grace_period_ms: 2_500, ..Options::default() };
    let app = TestApp::spawn(options).await;
    let runner = format!("w-{}", short_id());
    let worker = app.start_worker(&runner);
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Counter").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let stop = task_id(&session.act(&format!("/api/backupSessions/{id}?action=stop")).await);
    wait_until("the SIGTERM", T, || async { sigterms(&app.dir) == 1 }).await;
    worker.pause();
    let failed = session.wait_finished(&stop, T).await;
    assert_eq!(failed["Result"]["Success"], false, "{failed}");
    assert!(failed["Result"]["Message"].as_str().expect("message").contains(&runner), "{failed}");
    worker.resume();
    wait_until("the runner to put the session back to Working", T, || async {
        session.session(&id).await["State"] == "Working"
    })
    .await;
    // Well past the grace period: no SIGKILL came, and the task's record stands.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!live_members(pid).is_empty(), "the workload was not killed after the lease lapsed");
    assert_eq!(session.task(&stop).await["Result"], failed["Result"], "the sweeper's verdict stands alone");
    assert_eq!(session.session(&id).await["State"], "Working");
    // The runner is back in business: a new stop completes.
    let again = task_id(&session.act(&format!("/api/backupSessions/{id}?action=stop")).await);
    assert_eq!(session.wait_finished(&again, T).await["Result"]["Success"], true);
    assert!(live_members(pid).is_empty());
}

/// A stop cancelled in the instant between recording its workload Stopping and sending SIGTERM
/// (the runner is held there, and resumed once it has heard the cancel): the stop has no one
/// left to act for, so it sends nothing, its task ends cancelled (it was once left Running for
/// good, as if the runner had lost its lease), and the session is Working again.
#[actix_web::test]
async fn a_stop_cancelled_just_before_its_sigterm_sends_nothing_and_its_task_ends() {
    let app = TestApp::spawn(Options { distributed: true, grace_period_ms: 1_000, ..Options::default() }).await;
    let runner = format!("w-{}", short_id());
    let resume = app.dir.join("resume");
    let hold = [("TASKQ_PAUSE_AT", "stop_workload.stopping"), ("TASKQ_RESUME_WHEN", &resume.display().to_string())];
    let _worker = app.start_worker_with(&runner, &hold);
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Counter").await).await;
    let pid = session.pid_of(&app.db, &id).await;
    let stop = task_id(&session.act(&format!("/api/backupSessions/{id}?action=stop")).await);
    session.wait_session_state(&id, "Stopping", T).await;
    let log = app.dir.join(format!("worker-{runner}.log"));
    let said = |what: &'static str| {
        let log = log.clone();
        move || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            async move { text.contains(what) }
        }
    };
    wait_until("the runner to be held before its SIGTERM", T, said("TASKQ_PAUSE_AT: paused here")).await;

    assert_eq!(session.call("DELETE", &format!("/api/tasks/{stop}"), JSON).await.status, 204);
    wait_until("the runner to hear the cancel", T, said("cancelling a running task")).await;
    std::fs::write(&resume, "").expect("resume");
    let cancelled = session.wait_finished(&stop, T).await;
    assert_eq!(cancelled["Result"]["Success"], false, "{cancelled}");
    let message = cancelled["Result"]["Message"].as_str().expect("message");
    assert!(message.contains("cancelled") && message.contains("nothing was done"), "{message}");
    assert_eq!(session.session(&id).await["State"], "Working");
    assert_eq!(sigterms(&app.dir), 0, "no signal was sent");
    assert!(!live_members(pid).is_empty());
    // The runner goes on: a new stop completes.
    let again = task_id(&session.act(&format!("/api/backupSessions/{id}?action=stop")).await);
    assert_eq!(session.wait_finished(&again, T).await["Result"]["Success"], true);
}

/// The api's link to RabbitMQ goes silent (no error, no data): a DELETE of a running task still
/// answers at once, and the cancel still reaches the runner through the database.
#[actix_web::test]
async fn a_silent_broker_link_does_not_hang_a_cancel_and_the_cancel_still_lands() {
    let proxy = Proxy::start("127.0.0.1:5672".parse().expect("addr")).await;
    let options = Options {
        distributed: true,
        grace_period_ms: 20_000,
        api_amqp_url: Some(proxy.amqp_url()),
        ..Options::default()
    };
    let app = TestApp::spawn(options).await;
    let _worker = app.start_worker(&format!("w-{}", short_id()));
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let stop = task_id(&session.act(&format!("/api/backupSessions/{id}?action=stop")).await);
    session.wait_session_state(&id, "Stopping", T).await;
    proxy.freeze();
    let started = Instant::now();
    let resp = session.call("DELETE", &format!("/api/tasks/{stop}"), JSON).await;
    assert_eq!(resp.status, 204, "{}", resp.body);
    assert!(started.elapsed() < Duration::from_secs(2), "DELETE took {:?}", started.elapsed());
    let start = session.call("POST", &format!("/api/jobs/{}?action=start", app.job_id("Quick").await), JSON).await;
    assert_eq!(start.status, 202, "accepting work does not wait on the broker either");
    let cancelled = session.wait_finished(&stop, T).await;
    assert_eq!(cancelled["Result"]["Success"], false, "{cancelled}");
    assert_eq!(session.session(&id).await["State"], "Working");
    proxy.thaw();
    let quick = session.wait_finished(&task_id(&start.json()), Duration::from_secs(60)).await;
    assert_eq!(quick["Result"]["Success"], true, "published once the link works again: {quick}");
}

/// A paused runner holds at most one start, and only until the broker notices it is silent.
#[actix_web::test]
async fn a_paused_runner_does_not_hoard_start_tasks() {
    let app = TestApp::spawn(Options { distributed: true, amqp_heartbeat_secs: 2, ..Options::default() }).await;
    let paused = app.start_worker(&format!("w-{}", short_id()));
    let _other = app.start_worker(&format!("w-{}", short_id()));
    let session = app.logon().await;
    session.start_job(&app.job_id("Quick").await).await;
    paused.pause();
    let mut tasks = Vec::new();
    for job in ["Runs", "Broken", "Stubborn", "Counter", "Quick"] {
        tasks.push(task_id(&session.act(&format!("/api/jobs/{}?action=start", app.job_id(job).await)).await));
    }
    for task in &tasks {
        session.wait_finished(task, Duration::from_secs(15)).await;
    }
    paused.resume();
}

in_both_modes!(
    concurrent_starts_of_one_idle_job_start_it_once,
    duplicate_stops_signal_the_workload_once_and_all_tell_its_true_outcome,
    cancelling_one_of_two_stops_leaves_the_other_to_finish_the_stop,
    a_runner_killed_between_spawn_and_record_starts_the_workload_exactly_once,
    a_start_whose_pid_cannot_be_recorded_is_retried_and_runs_nothing_untracked,
);
