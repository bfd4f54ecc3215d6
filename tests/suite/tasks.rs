//! Tasks as resources: committed before the 202, per-user, listed, removed once finished.

use std::time::Duration;
use tests::http::{JSON, XML, request};
use tests::{Mode, Options, Session, TestApp, in_both_modes, wait_until};

async fn the_task_row_exists_before_the_202_leaves(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let job = app.job_id("Runs").await;
    for _ in 0..5 {
        let task = session.act(&format!("/api/jobs/{job}?action=start")).await;
        let id: i32 = task["TaskId"].as_str().expect("id").trim_start_matches("task-").parse().expect("number");
        // Read straight from the database, as soon as the 202 is in hand.
        assert!(entity::store::tasks::get(&app.db, id).await.expect("db").is_some(), "task {id} not committed");
    }
}

async fn tasks_belong_to_their_user_across_logon_sessions_and_others_get_404(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    api::passwords::add_user(
        &app.db,
        entity::tenant::DEFAULT,
        "bob",
        "bob-password",
        api::veeam::Role::PortalAdministrator,
    )
    .await
    .expect("user");
    let alice = app.logon().await;
    let task = alice.act(&format!("/api/jobs/{}?action=start", app.job_id("Quick").await)).await;
    let id = task["TaskId"].as_str().expect("id");
    let alice_again = app.logon().await;
    assert_eq!(alice_again.task(id).await["TaskId"], id, "same user, another logon session");
    let bob = Session::logon(&app.base, "bob", "bob-password").await;
    assert_eq!(bob.call("GET", &format!("/api/tasks/{id}"), JSON).await.status, 404);
    assert_eq!(bob.call("DELETE", &format!("/api/tasks/{id}"), JSON).await.status, 404);
    assert_eq!(bob.get_json("/api/tasks").await["Tasks"].as_array().expect("list").len(), 0);
    assert_eq!(
        bob.get_json("/api/query?type=Task").await["Resources"]["Tasks"]["Tasks"].as_array().expect("list").len(),
        0
    );
    assert_eq!(alice.get_json("/api/tasks").await["Tasks"].as_array().expect("list").len(), 1);
}

async fn deleting_a_finished_task_removes_it(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let task = session.act(&format!("/api/jobs/{}?action=start", app.job_id("Quick").await)).await;
    let id = task["TaskId"].as_str().expect("id");
    session.wait_finished(id, Duration::from_secs(20)).await;
    assert_eq!(session.call("DELETE", &format!("/api/tasks/{id}"), "").await.status, 204);
    assert_eq!(session.call("GET", &format!("/api/tasks/{id}"), JSON).await.status, 404);
}

async fn a_task_committed_but_never_published_is_published_by_the_relay(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    // The crash point "API killed between commit and publish": the row exists, no message does.
    let session = app.logon().await;
    let admin = entity::store::users::find_by_name(&app.db, tests::ADMIN.0).await.expect("db").expect("admin");
    let job = app.job_id("Quick").await;
    let new = entity::store::tasks::NewTask {
        tenant_id: entity::tenant::DEFAULT,
        user_id: admin.id,
        operation: entity::Operation::StartWorkload,
        target_id: &job,
        route: None,
        params: Default::default(),
    };
    let task = entity::store::tasks::insert(&app.db, new).await.expect("insert");
    let done = session.wait_finished(&api::veeam::ids::task_id(&task), Duration::from_secs(20)).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    wait_until("the published mark", Duration::from_secs(5), || async {
        entity::store::tasks::get(&app.db, task.id).await.expect("db").is_some_and(|t| t.attempt == 1)
    })
    .await;
}

/// Task GETs carry an `ETag` per representation; `If-None-Match` with the current one is a
/// 304 with no body, and once the task changes the old tag gets the new task (200). The same
/// for the bearer `/api/tasks/{n}`.
async fn task_gets_answer_304_while_the_task_is_unchanged(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let task = session.act(&format!("/api/jobs/{}?action=start", app.job_id("Runs").await)).await;
    let id = task["TaskId"].as_str().expect("id").to_owned();
    let url = format!("{}/api/tasks/{id}", app.base);
    let get = |accept: &'static str, tag: Option<String>| {
        let (url, token) = (url.clone(), session.token.clone());
        async move {
            let mut headers = vec![("X-RestSvcSessionId", token.as_str()), ("Accept", accept)];
            if let Some(tag) = &tag {
                headers.push(("If-None-Match", tag.as_str()));
            }
            request("GET", &url, &headers).await
        }
    };
    session.wait_finished(&id, Duration::from_secs(20)).await;
    let json = get(JSON, None).await;
    let tag = json.header("ETag").expect("ETag").to_owned();
    let xml = get(XML, None).await;
    assert_ne!(xml.header("ETag"), Some(tag.as_str()), "one tag per representation");
    let unchanged = get(JSON, Some(tag.clone())).await;
    assert_eq!((unchanged.status, unchanged.body.as_str(), unchanged.header("ETag")), (304, "", Some(tag.as_str())));
    let listed = get(JSON, Some(format!("\"other\", {tag}"))).await;
    assert_eq!(listed.status, 304, "any tag of the list");
    assert_eq!(get(XML, Some(tag.clone())).await.status, 200, "the JSON tag is not the XML one");

    // The bearer resource: a token's task (a sandbox's scheduled auto-stop, which waits),
    // tagged the same way; cancelling it changes it, and the old tag gets the new task.
    let daytona = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let sandbox = daytona.ok("POST", "/api/sandbox", Some(&serde_json::json!({"autoStopInterval": 5}))).await;
    let sandbox = sandbox["id"].as_str().expect("id");
    let scheduled = entity::store::tasks::scheduled_for(&app.db, sandbox).await.expect("db");
    let url = format!("{}/api/tasks/{}", app.base, scheduled.first().expect("the auto-stop").id);
    let auth = format!("Bearer {}", daytona.token);
    let first = request("GET", &url, &[("Authorization", &auth)]).await;
    let tag = first.header("ETag").expect("ETag").to_owned();
    let again = request("GET", &url, &[("Authorization", &auth), ("If-None-Match", &tag)]).await;
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    assert_eq!(request("DELETE", &url, &[("Authorization", &auth)]).await.status, 200);
    let changed = request("GET", &url, &[("Authorization", &auth), ("If-None-Match", &tag)]).await;
    assert_eq!(changed.status, 200, "the task changed since that tag");
    assert_ne!(changed.header("ETag"), Some(tag.as_str()));
}

/// Every publish's confirm is recorded (`published_at`, which keeps the relay from publishing it
/// again), however many arrive at once: here more than one statement records (they are
/// written many to a statement), and a task claimed before its confirm is left as its runner
/// made it.
#[actix_web::test]
async fn every_confirmed_publish_is_recorded_and_a_claimed_task_is_left_alone() {
    use entity::store::tasks;
    use std::sync::Arc;
    for (db, url) in tests::migrated_databases().await {
        let tenant = entity::tenant::DEFAULT;
        let user = entity::store::users::create(&db, tenant, "publisher", "-", "").await.expect("user").id;
        let dispatcher = worker::dispatch::Dispatcher::new(
            db.clone(),
            Arc::new(worker::broker::memory::MemoryBroker::default()),
            worker::settings::RunnerSettings::default(),
            worker::events::TaskEvents::default(),
        );
        let mut queued = Vec::new();
        for _ in 0..600 {
            let new = tasks::NewTask {
                tenant_id: tenant,
                user_id: user,
                operation: entity::Operation::StartWorkload,
                target_id: "no-such-spec",
                route: None,
                params: Default::default(),
            };
            queued.push(tasks::insert(&db, new).await.expect("insert"));
        }
        let claimed = tasks::claim(&db, &[queued[0].id], "runner").await.expect("claim").pop().expect("claimed");
        let published = futures_util::future::join_all(queued.iter().map(|task| dispatcher.publish_run(task))).await;
        assert!(published.iter().all(|ok| *ok), "every publish confirmed");
        for task in &queued[1..] {
            let task = tasks::get(&db, task.id).await.expect("db").expect("task");
            assert!(task.published_at.is_some(), "task {} published but not recorded", task.id);
        }
        assert_eq!(tasks::get(&db, claimed.id).await.expect("db"), Some(claimed), "the claimed task untouched");
        if let Some(url) = url {
            drop((db, dispatcher));
            tests::drop_pg_database(&url).await;
        }
    }
}

/// An engine on `db` (its broker in memory), its tenant, and a user of it.
async fn engine_with_a_user(db: &sea_orm::DatabaseConnection) -> (worker::engine::Engine, i32, i32) {
    let tenant = entity::tenant::DEFAULT;
    let user = entity::store::users::create(db, tenant, "submitter", "-", "").await.expect("user").id;
    let events = worker::events::TaskEvents::default();
    let dispatcher = worker::dispatch::Dispatcher::new(
        db.clone(),
        std::sync::Arc::new(worker::broker::memory::MemoryBroker::default()),
        worker::settings::RunnerSettings::default(),
        events.clone(),
    );
    let engine =
        worker::engine::Engine::new(db.clone(), dispatcher, events, worker::finished::FinishedTasks::default());
    (engine, tenant, user)
}

/// Tasks submitted at once are inserted many to a statement (`worker::batch`), and read so:
/// each caller gets its own task, and a submission that fails (here: for a user that does not
/// exist) fails alone, while the others of its round are inserted, as if each had been alone.
#[actix_web::test]
async fn tasks_submitted_at_once_get_their_own_rows_and_a_failing_one_fails_alone() {
    use entity::store::tasks;
    use sea_orm::ConnectionTrait;
    use worker::engine::Submission;
    for (db, url) in tests::migrated_databases().await {
        let (engine, tenant, user) = engine_with_a_user(&db).await;
        let targets: Vec<String> = (0..400).map(|n| format!("target-{n}")).collect();
        let user_of = |n: usize| if n % 40 == 7 { 999_999 } else { user };
        let submitted = futures_util::future::join_all(targets.iter().enumerate().map(|(n, target)| {
            engine.submit(Submission {
                tenant_id: tenant,
                user_id: user_of(n),
                operation: entity::Operation::StartWorkload,
                target_id: target,
                params: Default::default(),
                owner: None,
            })
        }))
        .await;
        let mut ids = std::collections::HashSet::new();
        for (n, answer) in submitted.into_iter().enumerate() {
            if user_of(n) != user {
                assert!(answer.is_err(), "submission {n} is for no user, yet it was inserted: {answer:?}");
                continue;
            }
            let task = answer.unwrap_or_else(|err| panic!("submission {n} failed with its round: {err}"));
            assert_eq!((task.target_id.as_str(), task.user_id), (targets[n].as_str(), user), "submission {n}'s answer");
            // As answered, but for its publish's confirm, recorded in the background meanwhile.
            let stored =
                tasks::get(&db, task.id).await.expect("db").map(|t| entity::task::Model { published_at: None, ..t });
            assert_eq!(stored.as_ref(), Some(&task), "task {} as answered", task.id);
            assert!(ids.insert(task.id), "task {} answered twice", task.id);
        }
        assert_eq!(tasks::list_for_user(&db, user).await.expect("db").len(), ids.len(), "one row per submission");
        assert_eq!(ids.len(), 390);
        // Read back at once (a round to a statement too): each its own, and none for an id
        // that is no task.
        let asked: Vec<i32> = ids.iter().copied().chain([0, -1, 1_000_000]).collect();
        let read = futures_util::future::join_all(asked.iter().map(|id| engine.task(*id))).await;
        for (id, task) in asked.iter().zip(read) {
            let task = task.expect("read");
            assert_eq!(task.as_ref().map(|t| t.id), ids.contains(id).then_some(*id), "task {id} read");
        }
        if let Some(url) = url {
            // The rows were written many to a statement (else this test shows nothing about
            // rounds): on PostgreSQL, rows of one transaction share their `xmin`.
            let rounds = db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT count(DISTINCT xmin::text)::bigint AS n FROM tasks",
                ))
                .await
                .expect("db")
                .expect("row");
            let rounds: i64 = rounds.try_get("", "n").expect("n");
            assert!(rounds < 200, "{rounds} transactions for 390 tasks: they were not batched");
            drop((db, engine));
            tests::drop_pg_database(&url).await;
        }
    }
}

/// A round that fails answers each of its requests with the database's own error, so that a
/// face still tells an unreachable database (503 with `Retry-After`) from a fault of ours (500):
/// here every connection is gone, and submissions and reads made at once all say so.
#[actix_web::test]
async fn a_failed_round_answers_each_request_with_the_databases_own_error() {
    use worker::engine::Submission;
    for (db, url) in tests::migrated_databases().await {
        let (engine, tenant, user) = engine_with_a_user(&db).await;
        db.clone().close().await.expect("close");
        let submitted = futures_util::future::join_all((0..20).map(|_| {
            engine.submit(Submission {
                tenant_id: tenant,
                user_id: user,
                operation: entity::Operation::StartWorkload,
                target_id: "t",
                params: Default::default(),
                owner: None,
            })
        }))
        .await;
        let read = futures_util::future::join_all((1..=20).map(|id| engine.task(id))).await;
        for answer in
            submitted.iter().map(|a| a.as_ref().map(|_| ())).chain(read.iter().map(|a| a.as_ref().map(|_| ())))
        {
            let err = answer.expect_err("no database, no answer");
            assert_eq!(api::db_error::classify(err), api::db_error::DbFault::Unavailable, "{err}");
        }
        if let Some(url) = url {
            drop((db, engine));
            tests::drop_pg_database(&url).await;
        }
    }
}

/// Outcomes recorded many to a statement (`tasks::finish`, as the runner's rounds record them)
/// are each a compare-and-set, as `transition` makes them: the current attempt finishes with its
/// own outcome (a cancellation as Cancelled); a fenced-out attempt, a task given twice and a task
/// that is not running change nothing; the rows stored are as answered.
#[actix_web::test]
async fn outcomes_recorded_together_are_each_a_compare_and_set() {
    use entity::state::{Outcome, TaskEvent, TransitionError};
    use entity::store::tasks;
    for (db, url) in tests::migrated_databases().await {
        let tenant = entity::tenant::DEFAULT;
        let user = entity::store::users::create(&db, tenant, "finisher", "-", "").await.expect("user").id;
        let mut queued = Vec::new();
        for n in 0..4 {
            let target = format!("w-{n}");
            let new = tasks::NewTask {
                tenant_id: tenant,
                user_id: user,
                operation: entity::Operation::StopWorkload,
                target_id: &target,
                route: None,
                params: Default::default(),
            };
            queued.push(tasks::insert(&db, new).await.expect("insert"));
        }
        let ids: Vec<i32> = queued[..3].iter().map(|t| t.id).collect();
        let mut running = tasks::claim(&db, &ids, "r1").await.expect("claim");
        running.sort_by_key(|t| t.id);
        let (a, b_old, c) = (running[0].clone(), running[1].clone(), running[2].clone());
        let b = tasks::transition(&db, &b_old, TaskEvent::Readopt { runner: "r1".into() }).await.expect("readopt");
        let done = Outcome::AlreadyStopped { workload: "w-0".into(), workload_name: "w-0".into() };
        let left = Outcome::LeftStop { workload: "w-1".into(), workload_name: "w-1".into() };
        let answers = tasks::finish(
            &db,
            &[
                (a.clone(), done.clone()),
                (b_old.clone(), done.clone()),
                (b.clone(), left.clone()),
                (a.clone(), left.clone()),
                (queued[3].clone(), done.clone()),
            ],
        )
        .await
        .expect("db");
        let stored = |id: i32| {
            let db = db.clone();
            async move { tasks::get(&db, id).await.expect("db").expect("row") }
        };
        // PostgreSQL keeps microseconds.
        let facts = |t: &entity::task::Model| {
            let at = t.finished_at.map(|at| at.timestamp_micros());
            (t.state, t.attempt, t.runner_id.clone(), t.success, t.outcome.clone(), at)
        };
        let a_done = answers[0].as_ref().expect("the current attempt finishes");
        assert_eq!((a_done.state, a_done.outcome.clone()), (entity::TaskState::Finished, Some(done.to_json())));
        assert_eq!(facts(&stored(a.id).await), facts(a_done), "stored as answered");
        assert!(matches!(answers[1], Err(TransitionError::Stale { .. })), "fenced out: {:?}", answers[1]);
        let b_done = answers[2].as_ref().expect("the new attempt finishes");
        assert_eq!((b_done.state, b_done.attempt), (entity::TaskState::Cancelled, 2));
        assert_eq!(facts(&stored(b.id).await), facts(b_done), "stored as answered");
        assert!(matches!(answers[3], Err(TransitionError::Stale { .. })), "given twice: {:?}", answers[3]);
        assert!(matches!(answers[4], Err(TransitionError::Illegal { .. })), "not running: {:?}", answers[4]);
        assert_eq!(stored(queued[3].id).await, queued[3], "the queued task untouched");
        assert_eq!(stored(c.id).await, c, "a task not given untouched");
        if let Some(url) = url {
            drop(db);
            tests::drop_pg_database(&url).await;
        }
    }
}

in_both_modes!(
    task_gets_answer_304_while_the_task_is_unchanged,
    the_task_row_exists_before_the_202_leaves,
    tasks_belong_to_their_user_across_logon_sessions_and_others_get_404,
    deleting_a_finished_task_removes_it,
    a_task_committed_but_never_published_is_published_by_the_relay,
);
