//! The engine's front door, driven as a face drives it: waiting for a task is event-driven, in
//! both modes (in distributed mode the task is finished by a `worker` in another process).

use std::time::{Duration, Instant};
use tests::{Mode, Options, TestApp, in_both_modes};
use worker::engine::Submission;

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
    assert_eq!(done.state, entity::TaskState::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

async fn admin_id(app: &TestApp) -> i32 {
    entity::store::users::find_by_name(&app.db, tests::ADMIN.0).await.expect("db").expect("admin").id
}

/// Task parameters: a forced stop kills at once, and a forced stop that joins a graceful one
/// in flight makes it kill at once too.
async fn a_forced_stop_kills_at_once_and_hurries_a_graceful_one_in_flight(mode: Mode) {
    let app = TestApp::in_mode(mode, Options { grace_period_ms: 60_000, ..Options::default() }).await;
    let session = app.logon().await;
    let user_id = admin_id(&app).await;
    let forced = |target: String| {
        let engine = app.engine.clone();
        async move {
            let params = entity::outcome::TaskParams { force: true, ..Default::default() };
            let submission = Submission {
                tenant_id: entity::tenant::DEFAULT,
                user_id,
                operation: entity::Operation::StopWorkload,
                target_id: &target,
                params,
                owner: None,
            };
            engine.submit(submission).await.expect("submit")
        }
    };
    let killed_at_once = |task: entity::task::Model| match task.ended() {
        Some(entity::outcome::Outcome::Stopped { how: entity::outcome::StopHow::Killed { grace_ms: 0 }, .. }) => {}
        other => panic!("{other:?}"),
    };

    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let task = forced(id.clone()).await;
    let done = app.engine.wait_finished(task.id, Duration::from_secs(20)).await.expect("db").expect("task");
    killed_at_once(done);
    assert!(tests::live_members(session.pid_of(&app.db, &id).await).is_empty());

    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let graceful = row_id(&session.act(&format!("/api/backupSessions/{id}?action=stop")).await);
    session.wait_session_state(&id, "Stopping", Duration::from_secs(20)).await;
    let task = forced(id.clone()).await;
    for task in [graceful, task.id] {
        let done = app.engine.wait_finished(task, Duration::from_secs(20)).await.expect("db").expect("task");
        killed_at_once(done);
    }
}

/// Cancelled is a final state of its own, not a failure, and records who asked and when; the
/// Veeam face still shows it as EM does (Finished, Success="false").
async fn a_cancelled_task_is_cancelled_not_failed_and_says_who_cancelled_it(mode: Mode) {
    let app = TestApp::in_mode(mode, Options { grace_period_ms: 60_000, ..Options::default() }).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Stubborn").await).await;
    let stop = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    session.wait_session_state(&id, "Stopping", Duration::from_secs(20)).await;
    let before = entity::store::now();
    let task_id = stop["TaskId"].as_str().expect("id");
    assert_eq!(session.call("DELETE", &format!("/api/tasks/{task_id}"), "").await.status, 204);
    let row = app.engine.wait_finished(row_id(&stop), Duration::from_secs(20)).await.expect("db").expect("task");
    assert_eq!(row.state, entity::TaskState::Cancelled);
    assert_eq!(row.cancel_requested_by, Some(admin_id(&app).await));
    assert!(row.cancel_requested_at.is_some_and(|at| at >= before), "{:?}", row.cancel_requested_at);
    let view = session.task(task_id).await;
    assert_eq!((view["State"].as_str(), view["Result"]["Success"].as_bool()), (Some("Finished"), Some(false)));

    // A failure is Finished, not Cancelled.
    let gone = app
        .engine
        .submit(Submission {
            tenant_id: entity::tenant::DEFAULT,
            user_id: admin_id(&app).await,
            operation: entity::Operation::StopWorkload,
            target_id: "00000000-0000-0000-0000-000000000000",
            params: Default::default(),
            owner: None,
        })
        .await
        .expect("submit");
    let failed = app.engine.wait_finished(gone.id, Duration::from_secs(20)).await.expect("db").expect("task");
    assert_eq!((failed.state, failed.success), (entity::TaskState::Finished, Some(false)));
}

/// Deleting a spec stops its running workload first, then deletes it: it is gone for its
/// tenant, its name is free again, its workload ended, and a second delete finds nothing. Starts
/// and deletes raced against each other leave no workload of a deleted spec running.
async fn deleting_a_spec_stops_its_workload_then_frees_its_name(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let user_id = admin_id(&app).await;
    let tenant = entity::tenant::DEFAULT;
    let submit = |operation: entity::Operation, target: String| {
        let engine = app.engine.clone();
        async move {
            let submission = Submission {
                tenant_id: tenant,
                user_id,
                operation,
                target_id: &target,
                params: Default::default(),
                owner: None,
            };
            let task = engine.submit(submission).await.expect("submit");
            engine.wait_finished(task.id, Duration::from_secs(30)).await.expect("db").expect("task")
        }
    };
    let new_spec = |name: &str| entity::store::specs::NewSpec {
        name: name.into(),
        command: vec!["sh".into(), "-c".into(), "setsid sleep 300 & sleep 300".into()],
        working_dir: app.dir.join("work").join(name).display().to_string(),
        meta: serde_json::json!({}),
        limits: Default::default(),
        env: Default::default(),
        disk_bytes: None,
        face: None,
    };
    let spec = entity::store::specs::create(&app.db, tenant, &new_spec("doomed")).await.expect("spec");
    let started = submit(entity::Operation::StartWorkload, spec.id.clone()).await;
    let workload = started.ended().and_then(|o| o.workload().map(str::to_owned)).expect("started");
    assert!(!tests::running_processes(&workload).await.is_empty());

    let deleted = submit(entity::Operation::DeleteSpec, spec.id.clone()).await;
    assert!(matches!(deleted.ended(), Some(entity::outcome::Outcome::SpecDeleted { .. })), "{deleted:?}");
    assert_eq!(tests::marked_processes(&workload), Vec::<i32>::new(), "its workload is stopped, all of it");
    assert_eq!(entity::store::specs::find_of(&app.db, tenant, &spec.id).await.expect("db"), None);
    assert_eq!(entity::store::specs::find_named(&app.db, tenant, "doomed").await.expect("db"), None);
    let again = submit(entity::Operation::DeleteSpec, spec.id.clone()).await;
    assert!(matches!(again.ended(), Some(entity::outcome::Outcome::SpecGone { .. })), "{again:?}");
    let restart = submit(entity::Operation::StartWorkload, spec.id.clone()).await;
    assert!(matches!(restart.ended(), Some(entity::outcome::Outcome::SpecGone { .. })), "{restart:?}");
    entity::store::specs::create(&app.db, tenant, &new_spec("doomed")).await.expect("the name is free again");

    // Starts and deletes at once, several rounds: whatever wins, nothing of a deleted spec runs.
    for round in 0..4 {
        let spec =
            entity::store::specs::create(&app.db, tenant, &new_spec(&format!("raced-{round}"))).await.expect("spec");
        let (a, b, c) = tokio::join!(
            submit(entity::Operation::StartWorkload, spec.id.clone()),
            submit(entity::Operation::DeleteSpec, spec.id.clone()),
            submit(entity::Operation::StartWorkload, spec.id.clone()),
        );
        let deleted = entity::store::specs::find(&app.db, &spec.id).await.expect("db").is_none();
        if deleted {
            // Workloads that ended as "its spec was deleted" may be recorded a moment later.
            tests::wait_until("no active workload of the deleted spec", Duration::from_secs(10), || {
                let (db, id) = (app.db.clone(), spec.id.clone());
                async move { entity::store::workloads::active_of_spec(&db, &id).await.expect("db").is_none() }
            })
            .await;
        }
        for task in [&a, &b, &c] {
            if let Some(workload) = task.ended().and_then(|o| o.workload().map(str::to_owned)) {
                let row = entity::store::workloads::find(&app.db, &workload).await.expect("db").expect("row");
                if deleted {
                    assert_eq!(row.state, entity::WorkloadState::Stopped, "round {round}: {task:?}");
                    assert_eq!(tests::marked_processes(&workload), Vec::<i32>::new(), "round {round}");
                }
            }
        }
        assert!(deleted || !matches!(b.ended(), Some(entity::outcome::Outcome::SpecDeleted { .. })), "round {round}");
    }
}

/// Scheduled tasks, as any face schedules them: held back (not pending, not claimed) until due,
/// then run once; cancelled by `unschedule` before; and a delete asked `only_if_stopped` leaves
/// a running spec. `submit_if_unchanged` lets one of several racing submitters through.
async fn scheduled_tasks_wait_for_their_time_and_guarded_submits_have_one_winner(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let user_id = admin_id(&app).await;
    let tenant = entity::tenant::DEFAULT;
    let create = |name: &'static str| {
        let new = entity::store::specs::NewSpec {
            name: name.into(),
            command: vec!["sleep".into(), "300".into()],
            working_dir: app.dir.join("work").join(name).display().to_string(),
            meta: serde_json::json!({}),
            limits: Default::default(),
            env: Default::default(),
            disk_bytes: None,
            face: None,
        };
        let db = app.db.clone();
        async move { entity::store::specs::create(&db, tenant, &new).await.expect("spec") }
    };
    let spec = create("scheduled").await;
    let submission = |operation, params| Submission {
        tenant_id: tenant,
        user_id,
        operation,
        target_id: &spec.id,
        params,
        owner: None,
    };
    let started =
        app.engine.submit(submission(entity::Operation::StartWorkload, Default::default())).await.expect("start");
    app.engine.wait_finished(started.id, Duration::from_secs(30)).await.expect("db");

    // A delete only of a stopped spec, due in 5 s; a stop a second later; a third task (a
    // forced stop), to be cancelled before its time.
    let schedule = |operation, params, at| {
        let engine = app.engine.clone();
        let submission = submission(operation, params);
        async move { engine.schedule(submission, at).await.expect("schedule").expect("within the horizon") }
    };
    let soon = entity::store::now() + chrono::TimeDelta::seconds(5);
    let guarded = entity::outcome::TaskParams { only_if_stopped: true, ..Default::default() };
    let delete = schedule(entity::Operation::DeleteSpec, guarded, soon).await;
    let stop_at = soon + chrono::TimeDelta::seconds(1);
    let stop = schedule(entity::Operation::StopSpec, Default::default(), stop_at).await;
    assert_eq!(entity::store::tasks::pending_for(&app.db, &spec.id).await.expect("db"), None, "not pending yet");
    let waiting = entity::store::tasks::get(&app.db, stop.id).await.expect("db").expect("task");
    assert_eq!((waiting.state, waiting.attempt), (entity::TaskState::Queued, 0), "not run before its time");
    let forced = entity::outcome::TaskParams { force: true, ..Default::default() };
    let never =
        schedule(entity::Operation::StopSpec, forced.clone(), entity::store::now() + chrono::TimeDelta::days(1)).await;
    let scheduled: Vec<i32> =
        entity::store::tasks::scheduled_for(&app.db, &spec.id).await.expect("db").iter().map(|t| t.id).collect();
    assert_eq!(scheduled, [delete.id, stop.id, never.id]);

    // Scheduling the same again moves it (no row is added); past the horizon is never, and what
    // is stored compares in time order in both databases (decades ahead: not due).
    let decades = entity::store::now() + chrono::TimeDelta::days(50 * 365);
    let moved = schedule(entity::Operation::StopSpec, forced.clone(), decades).await;
    assert_eq!(moved.id, never.id, "moved, not added");
    assert_eq!(moved.not_before.map(|at| at.timestamp()), Some(decades.timestamp()));
    let beyond = entity::store::now() + worker::engine::HORIZON + chrono::TimeDelta::days(1);
    let refused = app.engine.schedule(submission(entity::Operation::StopSpec, Default::default()), beyond).await;
    assert_eq!(refused.expect("db"), None, "past the horizon: never");
    let due = entity::store::tasks::due_for_publish(&app.db, None, 100).await.expect("db");
    assert!(due.iter().all(|t| t.id != never.id), "decades ahead is not due: {due:?}");
    let all = tests::daytona::tasks_of(&app.db, &spec.id).await;
    assert_eq!(all.len(), 4, "the start and three scheduled: {all:?}");

    let kept = app.engine.wait_finished(delete.id, Duration::from_secs(30)).await.expect("db").expect("task");
    assert!(kept.started_at.expect("ran") >= soon, "ran at its time, not before");
    assert_eq!(kept.ended(), Some(entity::outcome::Outcome::KeptRunning { spec_name: "scheduled".into() }));
    assert!(entity::store::specs::find(&app.db, &spec.id).await.expect("db").is_some(), "a running spec is kept");
    let stopped = app.engine.wait_finished(stop.id, Duration::from_secs(30)).await.expect("db").expect("task");
    assert!(stopped.started_at.expect("ran") >= stop_at, "ran at its time, not before");
    assert!(matches!(stopped.ended(), Some(entity::outcome::Outcome::Stopped { .. })), "{stopped:?}");
    assert_eq!((stopped.attempt, kept.attempt), (1, 1), "each ran once");
    app.engine.unschedule(&spec.id, user_id).await.expect("unschedule");
    let cancelled = entity::store::tasks::get(&app.db, never.id).await.expect("db").expect("task");
    assert_eq!(cancelled.state, entity::TaskState::Cancelled);

    // Four submitters that read the same spec: one goes through.
    let other = create("raced").await;
    let seen = other.clone();
    let tries = (0..4).map(|_| {
        let (engine, seen) = (app.engine.clone(), seen.clone());
        async move {
            let submission = Submission {
                tenant_id: tenant,
                user_id,
                operation: entity::Operation::StartWorkload,
                target_id: &seen.id,
                params: Default::default(),
                owner: None,
            };
            engine.submit_if_unchanged(submission, &seen, None).await.expect("db").is_ok()
        }
    });
    let through = futures_util::future::join_all(tries).await;
    assert_eq!(through.iter().filter(|t| **t).count(), 1, "{through:?}");
}

in_both_modes!(
    scheduled_tasks_wait_for_their_time_and_guarded_submits_have_one_winner,
    deleting_a_spec_stops_its_workload_then_frees_its_name,
    a_forced_stop_kills_at_once_and_hurries_a_graceful_one_in_flight,
    a_cancelled_task_is_cancelled_not_failed_and_says_who_cancelled_it,
);

/// A deletion and a claim (a start's insert of its workload) of one spec, interleaved as a
/// loaded PostgreSQL can interleave them. Each is held at one instant by a trigger that waits
/// on an advisory lock the test holds:
/// - the deletion has looked for an active workload and not yet written, while a claim runs;
/// - the claim has taken the spec and not yet inserted, while a deletion begins.
/// Exactly one wins each time: a spec is never deleted with an active workload (which once left
/// a workload running for a deleted spec).
#[actix_web::test]
async fn a_spec_is_never_deleted_under_a_workload_that_claimed_it_meanwhile() {
    use entity::store::{specs, workloads};
    use migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let url = tests::fresh_pg_database().await;
    let db = sea_orm::Database::connect(&url).await.expect("postgres");
    migration::Migrator::up(&db, None).await.expect("migrate");
    db.execute_unprepared(
        "CREATE FUNCTION held() RETURNS trigger AS $$ BEGIN PERFORM pg_advisory_xact_lock(7); RETURN NEW; END $$ LANGUAGE plpgsql",
    )
    .await
    .expect("function");
    let waiting_on_locks = || tests::backends_waiting(&db, "wait_event_type = 'Lock'");
    let at_the_write_of_a_deletion = "CREATE TRIGGER hold BEFORE UPDATE ON workload_specs FOR EACH ROW \
        WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL) EXECUTE FUNCTION held()";
    let at_the_insert_of_a_claim =
        "CREATE TRIGGER hold BEFORE INSERT ON workloads FOR EACH ROW EXECUTE FUNCTION held()";
    for (round, held_at) in [at_the_write_of_a_deletion, at_the_insert_of_a_claim].into_iter().enumerate() {
        let spec = specs::create(&db, entity::tenant::DEFAULT, &tests::plain_spec(&format!("raced-{round}")))
            .await
            .expect("spec");
        db.execute_unprepared(held_at).await.expect("trigger");
        let holder = db.begin().await.expect("begin");
        holder.execute_unprepared("SELECT pg_advisory_xact_lock(7)").await.expect("advisory lock");
        let delete = {
            let (db, spec) = (db.clone(), spec.clone());
            async move { specs::mark_deleted(&db, &spec).await.expect("delete") }
        };
        let claim = {
            let db = db.clone();
            let workload = tests::plain_workload(&spec.id, i32::try_from(round).expect("small"));
            async move { workloads::insert(&db, workload).await.expect("claim") }
        };
        // The held one first; then the other, which runs into the held one's row lock (or, as
        // it once did, through it).
        let (deleting, claiming) = if round == 0 {
            let deleting = tokio::spawn(delete);
            tests::wait_until("the deletion to be held", Duration::from_secs(10), || async {
                waiting_on_locks().await == 1
            })
            .await;
            (deleting, tokio::spawn(claim))
        } else {
            let claiming = tokio::spawn(claim);
            tests::wait_until("the claim to be held", Duration::from_secs(10), || async {
                waiting_on_locks().await == 1
            })
            .await;
            (tokio::spawn(delete), claiming)
        };
        tests::wait_until("the other to wait or be done", Duration::from_secs(10), || async {
            deleting.is_finished() || claiming.is_finished() || waiting_on_locks().await == 2
        })
        .await;
        holder.commit().await.expect("release");
        let (deleted, claimed) = (deleting.await.expect("delete"), claiming.await.expect("claim"));
        for table in ["workload_specs", "workloads"] {
            db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS hold ON {table}")).await.expect("drop");
        }
        let active = workloads::active_of_spec(&db, &spec.id).await.expect("db");
        let gone = specs::find(&db, &spec.id).await.expect("db").is_none();
        assert_eq!(gone, deleted, "round {round}");
        assert!(deleted != claimed.is_some(), "round {round}: one wins: deleted {deleted}, claimed {claimed:?}");
        assert!(!(gone && active.is_some()), "round {round}: a deleted spec with an active workload: {active:?}");
    }
    db.close().await.expect("close");
    tests::drop_pg_database(&url).await;
}
